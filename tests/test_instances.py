"""Instance-level figures from a segmenter's label maps (pipeline/evaluation/instances.py)."""

from __future__ import annotations

import numpy as np

from pipeline.evaluation.instances import (
    false_positive_components,
    false_positive_image_counts,
    false_positives,
    image_sums,
    lookalike_image_counts,
    lookalikes_taken,
    object_image_counts,
    recall_by_height,
    recall_image_counts,
    recall_share,
)
from pipeline.labels import BY_NAME, train_id_lut

PERSON, CAR, ROAD, BUILDING = (BY_NAME[n] for n in ("person", "car", "road", "building"))


def frame(size=(64, 96)):
    labels = np.full(size, ROAD.id, np.uint8)
    labels[:20] = BUILDING.id
    return labels, np.zeros(size, np.int32)


def put(labels, ids, label, value, rows, cols):
    labels[rows, cols] = label.id
    ids[rows, cols] = value


def test_recall_counts_objects_by_height_and_the_found_share():
    labels, ids = frame()
    put(labels, ids, PERSON, 24000, slice(30, 40), slice(5, 9))    # 10 px tall: bucket 0-16
    put(labels, ids, PERSON, 24001, slice(30, 50), slice(20, 26))  # 20 px: 16-32
    put(labels, ids, CAR, 26000, slice(20, 60), slice(40, 80))     # 40 px: 32-64
    put(labels, ids, PERSON, 24, slice(50, 60), slice(85, 90))     # a crowd region: not an object
    pred = np.full(labels.shape, ROAD.train_id, np.uint8)
    pred[30:40, 5:9] = PERSON.train_id                  # the small person: all of it
    pred[30:39, 20:26] = PERSON.train_id                # the other: 9 of 20 rows, under half
    pred[20:60, 40:60] = CAR.train_id                   # the car: exactly half
    # Two frames: the one above, and a second with no object found (the car predicted as road).
    pred2 = pred.copy()
    pred2[20:60, 40:80] = ROAD.train_id
    counts = object_image_counts(np.stack([pred, pred2]), np.stack([ids, ids]))
    assert counts["car"]["32-64"] == [[1, 1], [0, 1]] and counts["person"]["0-16"] == [[1, 1], [1, 1]]
    r = recall_by_height(counts)
    assert r["person"]["0-16"] == {"found": 2, "objects": 2, "recall": 1.0}
    assert r["person"]["16-32"] == {"found": 0, "objects": 2, "recall": 0.0}
    assert r["car"]["32-64"] == {"found": 1, "objects": 2, "recall": 0.5}
    assert r["person"]["64+"]["objects"] == 0 and r["person"]["64+"]["recall"] is None
    # Per image, under and from 32 px: what the paired bootstrap resamples; the run's recall is their sums.
    rows = recall_image_counts(counts)
    assert rows["recall_under_32px_person"] == [[1, 2], [1, 2]] and rows["recall_32px_up_person"] == [[0, 0], [0, 0]]
    assert rows["recall_32px_up_car"] == [[1, 1], [0, 1]] and rows["recall_under_32px_car"] == [[0, 0], [0, 0]]
    assert recall_share(r, "person", tall=False) == 0.5 and recall_share(r, "car", tall=True) == 0.5
    assert recall_share(r, "person", tall=True) is None  # no person 32 px or taller


def test_false_positives_are_components_named_by_what_lies_under_them():
    labels, ids = frame()
    put(labels, ids, PERSON, 24000, slice(30, 50), slice(20, 26))
    pred = np.full(labels.shape, ROAD.train_id, np.uint8)
    pred[30:50, 20:26] = PERSON.train_id   # the real person: not a false positive
    pred[2:12, 60:64] = PERSON.train_id    # on the facade
    pred[40:46, 80:84] = PERSON.train_id   # on the road
    pred[5, 5] = PERSON.train_id           # one stray pixel: left out
    pred[50:58, 40:50] = CAR.train_id      # a car on the road
    targets = train_id_lut()[labels]
    clean = np.full(labels.shape, ROAD.train_id, np.uint8)  # a third frame without a false positive
    components = false_positive_components(np.stack([pred, pred, clean]), np.stack([targets] * 3))
    fp = false_positives(components)
    assert fp["person"] == {"per_frame": round(4 / 3, 4), "under": {"building": 2, "road": 2}}
    assert fp["car"] == {"per_frame": round(2 / 3, 4), "under": {"road": 2}}
    rows = false_positive_image_counts(components)  # per image: [false positives, 1]
    assert rows == {"false_positives_person": [[2, 1], [2, 1], [0, 1]], "false_positives_car": [[1, 1], [1, 1], [0, 1]]}


def test_lookalikes_are_counted_when_labelled_as_what_they_show():
    pred = np.full((2, 40, 40), ROAD.train_id, np.uint8)
    poster, statue, billboard, speck = (np.zeros((40, 40), bool) for _ in range(4))
    poster[2:12, 2:6] = True      # 40 px, shows a person: 24 labelled person -> taken
    statue[20:30, 30:34] = True   # 40 px, shows a person: 16 labelled person -> not taken (under half)
    billboard[5:10, 20:30] = True  # 50 px, shows a car: labelled person, not car -> not taken as a car
    pred[0, 2:8, 2:6] = PERSON.train_id
    pred[1, 20:24, 30:34] = PERSON.train_id
    pred[1, 5:10, 20:30] = PERSON.train_id
    lookalikes = [[("person", poster), ("car", speck)], [("person", statue), ("car", billboard)]]
    counts = lookalike_image_counts(pred, lookalikes)  # per image and look-alike: [labelled as shown, pixels]
    assert counts == {"lookalike_person": [[[24, 40]], [[16, 40]]], "lookalike_car": [[[0, 0]], [[0, 50]]]}
    assert lookalikes_taken(counts["lookalike_person"]) == {"taken": 1, "total": 2, "pixel_share": 0.5}  # 40 / 80
    # the empty figure is not counted
    assert lookalikes_taken(counts["lookalike_car"]) == {"taken": 0, "total": 1, "pixel_share": 0.0}
    assert lookalikes_taken([[], []]) == {"taken": 0, "total": 0, "pixel_share": None}
    # Per image, what the paired bootstrap resamples: the sums.
    assert image_sums(counts["lookalike_car"]) == [[0, 0], [0, 50]]
    assert image_sums([[[3, 5], [1, 4]], []]) == [[4, 9], [0, 0]]
