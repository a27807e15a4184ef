"""Label surgery on random scenes (hypothesis): the maps, the instance list, the polygons JSON (as the
official tools render it) and the COCO JSON (as pycocotools decodes it) agree after every insertion."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from official import render_polygons
from pycocotools import mask as mask_utils

from pipeline.label_surgery import insert_object
from pipeline.labels import CAR, PERSON
from pipeline.scene import FrameId, Scene
from pipeline.writers.cityscapes_writer import write_scene
from pipeline.writers.coco_writer import scene_annotations

H, W = 48, 64
ROAD, SIDEWALK, BUILDING = 7, 8, 11


def random_scene(draw) -> Scene:
    """Stuff bands and a few persons/cars (ellipses and boxes) painted far to near."""
    labels = np.full((H, W), BUILDING, np.uint8)
    labels[H // 2 :] = SIDEWALK
    labels[H // 2 + 8 :] = ROAD
    ids = labels.astype(np.int32).copy()
    n = draw(st.integers(0, 5))
    k = {PERSON: 0, CAR: 0}
    objects = []
    for _ in range(n):
        cls = draw(st.sampled_from([PERSON, CAR]))
        x, y = draw(st.integers(0, W - 4)), draw(st.integers(8, H - 4))
        w, h = draw(st.integers(3, 24)), draw(st.integers(3, 24))
        objects.append((y + h, cls, x, y, w, h, draw(st.booleans())))
    for _, cls, x, y, w, h, ellipse in sorted(objects):
        m = np.zeros((H, W), np.uint8)
        if ellipse:
            cv2.ellipse(m, (x + w // 2, y + h // 2), (max(1, w // 2), max(1, h // 2)), 0, 0, 360, 1, -1)
        else:
            m[y : y + h, x : x + w] = 1
        m = m.astype(bool)
        if not m.any():
            continue
        labels[m] = cls
        ids[m] = cls * 1000 + k[cls]
        k[cls] += 1
    scene = Scene(FrameId("train", "testcity", 0, 0), np.zeros((H, W, 3), np.uint8), labels, ids)
    return scene.index()


@st.composite
def scene_and_insertion(draw):
    scene = random_scene(draw)
    cls = draw(st.sampled_from([PERSON, CAR]))
    x, y = draw(st.integers(-4, W - 2)), draw(st.integers(0, H - 2))
    w, h = draw(st.integers(2, 30)), draw(st.integers(2, 30))
    mask = np.zeros((H, W), bool)
    mask[max(y, 0) : y + h, max(x, 0) : x + w] = True
    floors = draw(st.sampled_from([(0, 0.0), (20, 0.25), (100, 0.5)]))
    return scene, cls, mask, floors


def _snapshot(scene: Scene):
    return scene.labels.copy(), scene.instance_ids.copy(), {i.value: i.area for i in scene.instances}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scene_and_insertion())
def test_insertion_keeps_every_format_in_agreement(case, tmp_path_factory):
    scene, cls, mask, (min_px, min_share) = case
    labels0, ids0, areas0 = _snapshot(scene)
    done = insert_object(scene, mask, cls, keep_min_pixels=min_px, keep_min_share=min_share, meta={"new": True})
    if done is None:
        # Nothing was visible: the scene is untouched.
        assert np.array_equal(scene.labels, labels0) and np.array_equal(scene.instance_ids, ids0)
        return

    # The instance list is exactly what the maps say (boxes and areas of the carved masks).
    listed = {i.value: (i.label_id, i.bbox, i.area) for i in scene.instances}
    fresh = Scene(scene.frame, scene.image, scene.labels, scene.instance_ids).index()
    assert listed == {i.value: (i.label_id, i.bbox, i.area) for i in fresh.instances}
    # labelIds and instanceIds agree everywhere (one instance per pixel is the map itself).
    ids = scene.instance_ids
    assert np.array_equal(np.where(ids >= 1000, ids // 1000, ids), scene.labels.astype(np.int32))
    # The new object is exactly its visible pixels; originals are untouched outside them, except that
    # dropped objects' remains became crowd regions of their own class.
    assert np.array_equal(ids == done.value, done.visible)
    assert np.array_equal(scene.labels[~done.visible], labels0[~done.visible])
    changed = (ids != ids0) & ~done.visible
    assert set(np.unique(ids0[changed]).tolist()) <= set(done.dropped)
    # A fully covered instance disappears; a covered one below the floors is no longer an instance.
    for value, area in areas0.items():
        left = int((ids == value).sum())
        if value >= 1000 and 0 < left < area:  # covered in part: kept only above the floors
            assert left >= min_px and left >= min_share * area
    assert set(done.dropped).isdisjoint(listed)

    # Polygons JSON (rendered by cityscapesscripts) and COCO JSON (decoded by pycocotools) agree.
    root = tmp_path_factory.mktemp("surgery")
    written = write_scene(root, scene)
    polygons = root / "gtFine" / "train" / "testcity" / "testcity_000000_000000_gtFine_polygons.json"
    rendered_labels, rendered_ids = render_polygons(polygons)
    assert (rendered_labels == written.labels).mean() >= 0.995
    for inst in written.instances:
        own = written.instance_ids == inst.value
        if not inst.iscrowd and own.sum() >= 20:
            iou = (own & (rendered_ids == inst.value)).sum() / (own | (rendered_ids == inst.value)).sum()
            assert iou >= 0.9, (inst, iou)
    anns = scene_annotations(written)
    by_mask = {}
    for ann in anns:
        seg = ann["segmentation"]
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, H, W)) if isinstance(seg, list) else seg
        decoded = mask_utils.decode(rle).astype(bool)
        assert ann["area"] == int(decoded.sum()) == int(mask_utils.area(rle))
        assert ann["bbox"] == [float(v) for v in mask_utils.toBbox(rle)]
        assert all(len(ring) >= 6 for ring in seg) if isinstance(seg, list) else True
        by_mask[len(by_mask)] = decoded
    instance_masks = [written.instance_ids == i.value for i in written.instances if i.label_id in (PERSON, CAR)]
    assert len(by_mask) == len(instance_masks)
    for decoded, own in zip(by_mask.values(), instance_masks, strict=True):
        assert np.array_equal(decoded, own)
    json.dumps(anns)  # serialisable as is


def test_depth_order_by_contact_row():
    labels = np.full((40, 40), 7, np.uint8)
    ids = labels.astype(np.int32).copy()
    near = np.zeros((40, 40), bool)
    near[20:35, 10:20] = True  # a person standing low in the image: near
    labels[near], ids[near] = PERSON, PERSON * 1000
    scene = Scene(FrameId("train", "c", 0, 0), np.zeros((40, 40, 3), np.uint8), labels, ids).index()
    far = np.zeros((40, 40), bool)
    far[10:30, 15:25] = True  # contact row 29 < 34: farther, so behind the person
    done = insert_object(scene, far, CAR)
    assert done.occluders == [PERSON * 1000]
    assert not (done.visible & near).any()
    assert (scene.instance_ids[near] == PERSON * 1000).all()
    nearer = np.zeros((40, 40), bool)
    nearer[25:38, 5:15] = True  # contact row 37: in front of the person, carves it
    done = insert_object(scene, nearer, CAR)
    assert done.carved == [PERSON * 1000]
    assert (scene.instance_ids[nearer] == done.value).all()


def test_fully_covered_instance_disappears_and_mostly_covered_becomes_crowd():
    labels = np.full((40, 40), 7, np.uint8)
    ids = labels.astype(np.int32).copy()
    labels[10:14, 10:14], ids[10:14, 10:14] = PERSON, PERSON * 1000  # small, far
    labels[5:15, 25:35], ids[5:15, 25:35] = CAR, CAR * 1000
    scene = Scene(FrameId("train", "c", 0, 0), np.zeros((40, 40, 3), np.uint8), labels, ids).index()
    cover = np.zeros((40, 40), bool)
    cover[8:20, 8:16] = True
    cover[4:20, 25:34] = True  # leaves a 1-pixel-wide column of the car: under the share floor
    done = insert_object(scene, cover, PERSON, keep_min_pixels=20, keep_min_share=0.25)
    assert PERSON * 1000 not in [i.value for i in scene.instances]  # fully covered: gone
    assert done.dropped == [CAR * 1000]
    crowd = [i for i in scene.instances if i.iscrowd]
    assert [c.value for c in crowd] == [CAR] and crowd[0].area == 10
    assert (scene.labels[5:15, 34] == CAR).all()


def test_insertion_refused_when_hidden_or_empty():
    labels = np.full((30, 30), 7, np.uint8)
    ids = labels.astype(np.int32).copy()
    labels[0:30, 0:30], ids[0:30, 0:30] = CAR, CAR * 1000  # one car filling the frame, contact row 29
    scene = Scene(FrameId("train", "c", 0, 0), np.zeros((30, 30, 3), np.uint8), labels, ids).index()
    behind = np.zeros((30, 30), bool)
    behind[5:20, 5:10] = True
    assert insert_object(scene, behind, PERSON) is None
    assert insert_object(scene, np.zeros((30, 30), bool), PERSON) is None
    assert (scene.instance_ids == CAR * 1000).all()
    with pytest.raises(ValueError, match="not a class with instances"):
        insert_object(scene, behind, 7)
