"""``InsertInstances`` inside albumentations pipelines: masks, boxes, labels and label map stay aligned."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from pipeline.appearance import CropBank
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.insertion import Inserter
from pipeline.labels import BY_NAME, INSTANCE_IDS
from pipeline.trained_gan import load_trained
from pipeline.transforms import InsertInstances


@pytest.fixture(scope="module")
def transform_parts(trained_tiny, synthetic_root):
    cfg = trained_tiny
    gan = load_trained(cfg.augment.model, cfg)
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    frames = [CityscapesDataset(synthetic_root, ["val"])[i] for i in range(4)]
    return cfg, gan, bank, frames


def make(parts, labels="name", p=1.0):
    cfg, gan, bank, _ = parts
    return InsertInstances(Inserter(gan, bank, cfg), labels=labels, p=p)


def targets(scene):
    objs = [i for i in scene.instances if not i.iscrowd]
    masks = [(scene.instance_ids == i.value).astype(np.uint8) for i in objs]
    boxes = [[i.bbox[0], i.bbox[1], i.bbox[0] + i.bbox[2], i.bbox[1] + i.bbox[3]] for i in objs]
    return dict(image=scene.image, mask=scene.labels, masks=masks, bboxes=boxes, labels=[i.name for i in objs])


def box_of(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


def check_aligned(out, n_before):
    masks, boxes, labels = out["masks"], out["bboxes"], out["labels"]
    assert len(masks) == len(boxes) == len(labels)
    for m, b in zip(masks, boxes, strict=True):
        m = np.asarray(m).astype(bool)
        if m.any():
            assert np.allclose(b, box_of(m), atol=1e-3), (b, box_of(m))
    for m, name in list(zip(masks, labels, strict=True))[n_before:]:  # new objects: label map agrees
        m = np.asarray(m).astype(bool)
        assert m.any() and (out["mask"][m] == BY_NAME[name].id).all()
    # No pixel is claimed by two objects.
    if len(masks):
        assert (np.sum([np.asarray(m).astype(np.int32) for m in masks], 0) <= 1).all()


def test_inserts_inside_compose_with_flips_and_crops(transform_parts):
    _, _, _, frames = transform_parts
    # A box-safe crop: a plain random crop drops boxes it cuts away but not their masks (albumentations).
    pipeline = A.Compose([make(transform_parts), A.HorizontalFlip(p=1.0), A.BBoxSafeRandomCrop(p=1.0)],
                         bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]), seed=3)
    added = 0
    for scene in frames:
        data = targets(scene)
        out = pipeline(**data)
        n_before = len(data["masks"])
        added += len(out["masks"]) - n_before
        assert out["image"].shape[:2] == out["mask"].shape
        check_aligned(out, n_before)
    assert added > 0


def test_same_seed_same_result_and_p_zero_is_identity(transform_parts):
    _, _, _, frames = transform_parts
    data = targets(frames[0])
    runs = [A.Compose([make(transform_parts)], bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
                      seed=7)(**data) for _ in range(2)]
    assert np.array_equal(runs[0]["image"], runs[1]["image"]) and runs[0]["labels"] == runs[1]["labels"]
    off = A.Compose([make(transform_parts, p=0.0)],
                    bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]))(**data)
    assert np.array_equal(off["image"], data["image"]) and len(off["masks"]) == len(data["masks"])


def test_image_without_instances_and_numeric_labels(transform_parts):
    _, _, _, frames = transform_parts
    scene = frames[1]
    labels = scene.labels.copy()
    labels[np.isin(labels, list(INSTANCE_IDS))] = 7  # no objects at all
    pipeline = A.Compose([make(transform_parts, labels="id"), A.HorizontalFlip(p=0.5)],
                         bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]), seed=1)
    out = pipeline(image=scene.image, mask=labels, masks=[], bboxes=np.zeros((0, 4)), labels=np.zeros(0, int))
    assert len(out["masks"]) == len(out["bboxes"]) == len(out["labels"]) > 0
    assert set(np.asarray(out["labels"]).tolist()) <= {BY_NAME["person"].id, BY_NAME["car"].id}
    check_aligned({**out, "labels": [BY_NAME["person"].name if v == 24 else "car" for v in out["labels"]]}, 0)
    # Only a label map: existing objects are found as connected regions; nothing else is required.
    only = A.Compose([make(transform_parts)], seed=2)(image=scene.image, mask=scene.labels)
    assert only["mask"].shape == scene.labels.shape


def test_missing_label_map_is_a_clear_error(transform_parts):
    _, _, _, frames = transform_parts
    with pytest.raises(ValueError, match="mask="):
        A.Compose([make(transform_parts)])(image=frames[0].image)


def test_the_library_and_the_transform_run_without_dvc(trained_tiny, synthetic_root, tmp_path):
    """A user who only imports the library (``InsertInstances`` in their own albumentations pipeline) needs
    neither DVC nor dvclive: both are blocked here, and the transform loads the model and inserts objects."""
    import dataclasses
    import subprocess
    import sys

    import yaml
    from conftest import REPO

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(dataclasses.asdict(trained_tiny)))
    script = f"""
import sys
sys.modules["dvc"] = sys.modules["dvclive"] = None  # any import of them fails
import pipeline, pipeline.augment, pipeline.transforms
from pipeline.transforms import InsertInstances
from pipeline.datasets.cityscapes import CityscapesDataset
scene = CityscapesDataset({str(synthetic_root)!r}, ["val"])[0]
t = InsertInstances.from_trained({trained_tiny.augment.model!r}, params={str(params)!r}, p=1.0)
out = t(image=scene.image, mask=scene.labels)
print("inserted", int((out["mask"] != scene.labels).sum()))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 0
