"""COCO output judged by pycocotools, and the COCO reader on every segmentation encoding."""

import contextlib
import io
import json

import numpy as np
import pytest
from official import coco_self_ap
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from pipeline.config import CocoConfig
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.datasets.coco import CocoDataset
from pipeline.writers.cityscapes_writer import canonical_scene
from pipeline.writers.coco_writer import CocoWriter, cityscapes_file_name, coco_file


@pytest.fixture(scope="module")
def synthetic_coco(synthetic_root, tmp_path_factory):
    writer = CocoWriter()
    for scene in CityscapesDataset(synthetic_root, ["train"]):
        writer.add(scene, cityscapes_file_name(scene))
    path = tmp_path_factory.mktemp("coco") / "instances.json"
    writer.write(path)
    return path


def check_document(path):
    data = json.loads(path.read_text())
    assert data["annotations"], "no annotations"
    assert min(a["id"] for a in data["annotations"]) == 1
    assert min(i["id"] for i in data["images"]) == 1
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"])
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(path))  # the official loader accepts the file
    for ann in data["annotations"]:
        if not ann["iscrowd"]:
            assert all(len(ring) >= 6 and len(ring) % 2 == 0 for ring in ann["segmentation"])
        img = gt.imgs[ann["image_id"]]
        for ring in ann["segmentation"] if isinstance(ann["segmentation"], list) else []:
            xs, ys = ring[0::2], ring[1::2]
            assert 0 <= min(xs) and max(xs) <= img["width"] and 0 <= min(ys) and max(ys) <= img["height"]
        assert ann["category_id"] in {24, 25, 26, 27, 28, 31, 32, 33}
    return data


def test_synthetic_coco_scores_ap_one_against_itself(synthetic_coco):
    check_document(synthetic_coco)
    ap = coco_self_ap(synthetic_coco)
    assert ap == {"segm": 1.0, "bbox": 1.0}


def test_real_frames_coco_scores_ap_one_against_itself(sample_written):
    path = coco_file(sample_written, "train")
    data = check_document(path)
    assert len(data["images"]) == 8
    assert (sample_written / "leftImg8bit" / "train" / data["images"][0]["file_name"]).is_file()
    ap = coco_self_ap(path)
    assert ap == {"segm": 1.0, "bbox": 1.0}


def test_area_and_bbox_are_those_of_the_pixel_mask(synthetic_root):
    scene, _ = canonical_scene(CityscapesDataset(synthetic_root, ["train"])[1])
    writer = CocoWriter()
    writer.add(scene, "x.png")
    for ann, inst in zip(writer.annotations, [i for i in scene.instances if i.label_id in (24, 26)], strict=True):
        mask = scene.mask(inst)
        ys, xs = np.nonzero(mask)
        assert ann["area"] == mask.sum()
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        # The polygons approximate the mask closely (traced at twice the resolution).
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], *mask.shape))
        drawn = mask_utils.decode(rle).astype(bool)
        if mask.sum() >= 100:
            assert (drawn & mask).sum() / (drawn | mask).sum() >= 0.85


def test_coco_reader_reads_back_what_the_writer_wrote(synthetic_root, synthetic_coco):
    images = synthetic_root / "leftImg8bit" / "train"
    coco = CocoDataset(images, synthetic_coco, "train")
    city = CityscapesDataset(synthetic_root, ["train"])
    assert len(coco) == len(city)
    for i in range(3):
        a, b = city[i], coco[i]
        assert a.frame == b.frame
        assert np.array_equal(a.image, b.image)
        objects_a = [x for x in a.instances if not x.iscrowd]
        objects_b = [x for x in b.instances if not x.iscrowd]
        assert len(objects_a) == len(objects_b)
        for inst in objects_a:
            if inst.area < 100:
                continue
            mask = a.mask(inst)
            values, counts = np.unique(b.instance_ids[mask], return_counts=True)
            best = values[np.argmax(counts)]
            assert best // 1000 == inst.label_id
            other = b.instance_ids == best
            # Depth order is rebuilt by area in COCO; heavily occluded objects may lose a little.
            assert (mask & other).sum() / (mask | other).sum() >= 0.8


def _tiny_coco(tmp_path, segmentation, iscrowd=0, name="person", extra_images=()):
    import cv2

    (tmp_path / "img").mkdir(exist_ok=True)
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.zeros((20, 30, 3), np.uint8))
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "height": 20, "width": 30}, *extra_images],
        "categories": [{"id": 1, "name": name}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": segmentation,
                         "area": 10, "bbox": [0, 0, 1, 1], "iscrowd": iscrowd}],
    }
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    return path


def _box_mask():
    mask = np.zeros((20, 30), np.uint8)
    mask[5:12, 3:9] = 1
    return mask


def test_coco_reader_polygons(tmp_path):
    path = _tiny_coco(tmp_path, [[3, 5, 9, 5, 9, 12, 3, 12]])
    scene = CocoDataset(tmp_path / "img", path)[0]
    assert scene.labels.max() == 24 and scene.instances[0].value == 24000


def test_coco_reader_uncompressed_rle(tmp_path):
    mask = _box_mask()
    flat = mask.ravel(order="F")
    runs, current, n = [], 0, 0
    for v in flat:
        if v != current:
            runs.append(n)
            current, n = v, 0
        n += 1
    runs.append(n)
    path = _tiny_coco(tmp_path, {"size": [20, 30], "counts": [int(r) for r in runs]})
    scene = CocoDataset(tmp_path / "img", path)[0]
    assert np.array_equal(scene.labels == 24, mask.astype(bool))


def test_coco_reader_compressed_rle_crowd(tmp_path):
    rle = mask_utils.encode(np.asfortranarray(_box_mask()))
    path = _tiny_coco(tmp_path, {"size": [20, 30], "counts": rle["counts"].decode()}, iscrowd=1)
    scene = CocoDataset(tmp_path / "img", path)[0]
    assert np.array_equal(scene.labels == 24, _box_mask().astype(bool))
    assert scene.instances[0].iscrowd and scene.instances[0].value == 24


def test_category_mapping(tmp_path):
    path = _tiny_coco(tmp_path, [[3, 5, 9, 5, 9, 12, 3, 12]], name="dog")
    assert CocoDataset(tmp_path / "img", path)[0].labels.max() == 5  # unmapped -> dynamic
    cfg = CocoConfig(category_map={"dog": "person"})
    assert CocoDataset(tmp_path / "img", path, cfg=cfg)[0].labels.max() == 24
    cfg = CocoConfig(unmapped="unlabeled")
    assert CocoDataset(tmp_path / "img", path, cfg=cfg)[0].labels.max() == 0
    path = _tiny_coco(tmp_path, [[3, 5, 9, 5, 9, 12, 3, 12]], name="bicycle")
    assert CocoDataset(tmp_path / "img", path)[0].labels.max() == 33  # Cityscapes names keep their class


def test_repeated_image_or_annotation_ids_are_refused(tmp_path):
    """COCOeval indexes by id: a file with a repeated id would be mis-scored, so the reader refuses it."""
    from pipeline.errors import DatasetError

    path = _tiny_coco(tmp_path, [[3, 5, 9, 5, 9, 12, 3, 12]],
                      extra_images=[{"id": 1, "file_name": "a.png", "height": 20, "width": 30}])
    with pytest.raises(DatasetError, match="image id 1 appears twice"):
        CocoDataset(tmp_path / "img", path)
    doc = json.loads(_tiny_coco(tmp_path, [[3, 5, 9, 5, 9, 12, 3, 12]]).read_text())
    doc["annotations"].append({**doc["annotations"][0]})
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match="annotation id 1 appears twice"):
        CocoDataset(tmp_path / "img", path)
