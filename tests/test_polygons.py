"""Label maps -> Cityscapes polygons, checked against PIL's polygon fill (what cityscapesscripts uses)."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from pipeline.labels import BY_NAME, label_of
from pipeline.polygons import coco_polygons, painter_polygons

STUFF = [7, 8, 11, 17, 21, 23]


def paint(objects, shape):
    """Render polygons the way json2labelImg / json2instanceImg do (PIL, list order, k per class)."""
    labels = Image.new("L", shape[::-1], 0)
    instances = Image.new("I", shape[::-1], 0)
    dl, di = ImageDraw.Draw(labels), ImageDraw.Draw(instances)
    counts = {}
    for obj in objects:
        name = obj.label[: -len("group")] if obj.label.endswith("group") else obj.label
        label = BY_NAME[name]
        value = label.id
        if label.has_instances and not obj.label.endswith("group"):
            value = label.id * 1000 + counts.get(label.id, 0)
            counts[label.id] = counts.get(label.id, 0) + 1
        points = [tuple(p) for p in obj.polygon]
        dl.polygon(points, fill=label.id)
        di.polygon(points, fill=value)
    return np.array(labels), np.array(instances).astype(np.int32)


def _random_map(h: int, w: int, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random polygons (stuff, persons, cars, crowds) on a stuff background, some cut by thin lines."""
    rng = np.random.default_rng(seed)
    instance_ids = np.full((h, w), rng.choice(STUFF), np.int32)
    counts = {}
    for _ in range(n):
        kind = rng.choice(["stuff", "person", "car", "crowd"])
        pts = rng.integers([0, 0], [w, h], (rng.integers(3, 8), 2)).astype(np.int32)
        if kind == "stuff":
            value = int(rng.choice(STUFF))
        elif kind == "crowd":
            value = 24
        else:
            label_id = 24 if kind == "person" else 26
            value = label_id * 1000 + counts.get(label_id, 0)
            counts[label_id] = counts.get(label_id, 0) + 1
        cv2.fillPoly(instance_ids, [pts], value)
        if rng.random() < 0.3:  # thin occluders split objects into pieces
            a, b = rng.integers([0, 0], [w, h], (2, 2))
            cv2.line(instance_ids, tuple(int(v) for v in a), tuple(int(v) for v in b), int(rng.choice(STUFF)), 2)
    labels = np.where(instance_ids >= 1000, instance_ids // 1000, instance_ids).astype(np.uint8)
    return labels, instance_ids


@st.composite
def scenes(draw):
    h, w = draw(st.integers(24, 80)), draw(st.integers(24, 120))
    seed, n = draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, 12))
    return _random_map(h, w, seed, n)


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_polygons_paint_back_the_label_map(scene):
    labels, instance_ids = scene
    result = painter_polygons(labels, instance_ids)
    objects, renumber = result.objects, result.renumber
    painted_labels, painted_instances = paint(objects, labels.shape)
    expected = instance_ids.copy()
    for old, new in renumber.items():
        expected[instance_ids == old] = new
    agreement = (painted_labels == labels).mean()
    # Interlocked shapes can leave no order that satisfies every constraint (random maps make them
    # often; real frames seldom); a broken cycle costs pixels, but never many.
    assert agreement >= (0.995 if result.broken_cycles == 0 else 0.95)
    if result.broken_cycles:
        return
    for value in np.unique(expected[expected >= 1000]):
        ours, theirs = expected == value, painted_instances == value
        if ours.sum() >= 100:
            assert (ours & theirs).sum() / (ours | theirs).sum() >= 0.95
    # Renumbering keeps classes and gives each class k = 0, 1, 2, ... in paint order.
    assert all(label_of(old) == label_of(new) for old, new in renumber.items())
    for label_id in (24, 26):
        ks = sorted(v % 1000 for v in renumber.values() if v // 1000 == label_id)
        assert ks == list(range(len(ks)))


def test_split_object_is_one_polygon_and_occluder_painted_after():
    instance_ids = np.full((40, 60), 7, np.int32)
    instance_ids[10:30, 5:55] = 26000  # a car
    instance_ids[:, 28:32] = 17  # a pole in front splits it in two
    labels = np.where(instance_ids >= 1000, instance_ids // 1000, instance_ids).astype(np.uint8)
    objects = painter_polygons(labels, instance_ids).objects
    names = [o.label for o in objects]
    assert names.count("car") == 1
    assert names.index("car") < names.index("pole")
    painted_labels, painted_instances = paint(objects, labels.shape)
    assert np.array_equal(painted_labels, labels)
    assert np.array_equal(painted_instances, instance_ids)


def test_hole_contents_painted_after_the_surrounding_region():
    instance_ids = np.full((50, 50), 11, np.int32)
    instance_ids[10:40, 10:40] = 8
    instance_ids[20:30, 20:30] = 24000
    labels = np.where(instance_ids >= 1000, instance_ids // 1000, instance_ids).astype(np.uint8)
    objects = painter_polygons(labels, instance_ids, order=[24000]).objects
    assert [o.label for o in objects] == ["building", "sidewalk", "person"]
    assert np.array_equal(paint(objects, labels.shape)[0], labels)


def test_holes_are_cut_out_so_unlabeled_pixels_need_no_polygon():
    instance_ids = np.full((30, 30), 21, np.int32)
    instance_ids[10:20, 10:20] = 0
    labels = instance_ids.astype(np.uint8)
    result = painter_polygons(labels, instance_ids)
    objects = result.objects
    assert [o.label for o in objects] == ["vegetation"]
    assert result.renumber == {0: 0, 21: 21}
    assert np.array_equal(paint(objects, labels.shape)[0], labels)


def test_coco_polygons_are_close_to_the_mask():
    rng = np.random.default_rng(0)
    for _ in range(60):  # self-intersecting fills: holes and several pieces
        mask = np.zeros((60, 80), np.uint8)
        cv2.fillPoly(mask, [rng.integers([0, 0], [80, 60], (6, 2)).astype(np.int32)], 1)
        if mask.sum() < 50:
            continue
        rings = coco_polygons(mask)
        assert all(len(r) >= 6 for r in rings)
        drawn = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(rings, 60, 80)))
        assert (drawn & mask).sum() / (drawn | mask).sum() >= 0.99


def test_coco_polygons_of_a_single_pixel():
    mask = np.zeros((5, 5), np.uint8)
    mask[2, 3] = 1
    (ring,) = coco_polygons(mask)
    assert len(ring) >= 6
    drawn = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([ring], 5, 5)))
    assert drawn[2, 3] == 1


@pytest.mark.xfail(strict=True, reason="known weakness: on this random map of 12 interlocked polygons the painter "
                   "order breaks 14 cycles and paints back 93.6% of the pixels, under the 95% the property allows; "
                   "found by `--hypothesis-profile=explore`, not yet fixed")
def test_interlocked_random_map_found_by_exploration():
    labels, instance_ids = _random_map(73, 64, 3281299114, 12)
    result = painter_polygons(labels, instance_ids)
    painted_labels, _ = paint(result.objects, labels.shape)
    assert (painted_labels == labels).mean() >= (0.995 if result.broken_cycles == 0 else 0.95)
