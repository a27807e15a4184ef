"""Instance-level figures read from a segmenter's label maps: which real objects it finds, by size, and what
its false persons and cars stand on.

A semantic segmenter has no instances, but the test frames do. A real object counts as found when at least
``FOUND_SHARE`` of its pixels are predicted as its class; recall is reported per height bucket, since far
(small) objects are where augmentation should help and where pixel IoU, dominated by near objects, does not
look. A false positive is a connected component (8-connected, ``scipy.ndimage.label``) of pixels predicted
as a class of which less than ``FOUND_SHARE`` lies on that class's true pixels; each is named by the true
label most of it lies on (a person on a facade - a poster, a statue - differs from a person on the road),
and counted per frame. Where the test frames come with their look-alikes (the built-in dataset's posters,
mannequins and statues, labelled as the facade they are on: ``lookalikes.json``), the look-alikes labelled as
what they show are counted too. Each figure is counted per test image first (the ``*_image_counts``
functions): the paired bootstrap (``paired.py``) resamples those rows, and a run's figure is their sum.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import ndimage

from pipeline.labels import BY_ID, BY_NAME

FOUND_SHARE = 0.5
# Pixel heights at the segmenter's resolution: [lo, hi) per bucket.
HEIGHT_BUCKETS = ((0, 16), (16, 32), (32, 64), (64, 1 << 30))
# Objects at least this tall (a bucket edge) are the ones the segmenter's resolution shows whole: the recall
# read for "does it learn the class", beside the recall of the smaller ones.
TALL = 32


def bucket_name(lo: int, hi: int) -> str:
    return f"{lo}+" if hi >= 1 << 30 else f"{lo}-{hi}"


_LOW = {bucket_name(lo, hi): lo for lo, hi in HEIGHT_BUCKETS}  # bucket name -> its lowest height
_EIGHT = np.ones((3, 3), bool)
_TRAIN_NAMES = {label.train_id: label.name for label in BY_ID.values() if 0 <= label.train_id < 255}


def object_image_counts(pred: np.ndarray, instance_ids: np.ndarray,
                        classes: tuple[str, ...] = ("person", "car")) -> dict[str, dict[str, list[list[int]]]]:
    """Per class and height bucket, per frame of [N, H, W]: [real objects found, real objects].

    ``pred``: predicted train ids; ``instance_ids``: Cityscapes instance ids (``label_id * 1000 + k``; crowd
    regions, without an instance id, are not objects here)."""
    out = {name: {bucket_name(*b): [] for b in HEIGHT_BUCKETS} for name in classes}
    for frame_pred, frame_ids in zip(pred, instance_ids, strict=True):
        frame = {name: {bucket: [0, 0] for bucket in buckets} for name, buckets in out.items()}
        for value in np.unique(frame_ids[frame_ids >= 1000]):
            label = BY_ID.get(int(value) // 1000)
            if label is None or label.name not in out:
                continue
            mask = frame_ids == value
            rows = np.flatnonzero(mask.any(1))
            height = int(rows[-1] - rows[0] + 1)
            found = (frame_pred[mask] == label.train_id).mean() >= FOUND_SHARE
            for lo, hi in HEIGHT_BUCKETS:
                if lo <= height < hi:
                    cell = frame[label.name][bucket_name(lo, hi)]
                    cell[0] += int(found)
                    cell[1] += 1
        for name, buckets in frame.items():
            for bucket, cell in buckets.items():
                out[name][bucket].append(cell)
    return out


def recall_by_height(counts: dict[str, dict[str, list[list[int]]]]) -> dict:
    """From ``object_image_counts``: per class and height bucket, the objects found, their number and recall."""
    out = {}
    for name, buckets in counts.items():
        out[name] = {}
        for bucket, rows in buckets.items():
            f, n = sum(r[0] for r in rows), sum(r[1] for r in rows)
            out[name][bucket] = {"found": f, "objects": n, "recall": round(f / n, 4) if n else None}
    return out


def recall_image_counts(counts: dict[str, dict[str, list[list[int]]]]) -> dict[str, list[list[int]]]:
    """From ``object_image_counts``: per class, per image [found, objects] of the objects under and at least
    ``TALL`` pixels tall (keys ``recall_under_32px_<class>``, ``recall_32px_up_<class>``): what the paired
    bootstrap resamples (recall is a ratio of per-image sums)."""
    out = {}
    for name, buckets in counts.items():
        for key, tall in ((f"recall_under_{TALL}px_{name}", False), (f"recall_{TALL}px_up_{name}", True)):
            chosen = [rows for bucket, rows in buckets.items() if (_LOW[bucket] >= TALL) == tall]
            out[key] = image_sums(zip(*chosen, strict=True))
    return out


def recall_share(by_height: dict, name: str, tall: bool) -> float | None:
    """From one run's ``recall_by_height``: the recall of class ``name``'s objects at least (``tall``) or under
    ``TALL`` pixels tall; None without such objects."""
    cells = [cell for bucket, cell in by_height.get(name, {}).items() if (_LOW[bucket] >= TALL) == tall]
    objects = sum(c["objects"] for c in cells)
    return round(sum(c["found"] for c in cells) / objects, 4) if objects else None


def false_positive_components(pred: np.ndarray, targets: np.ndarray, classes: tuple[str, ...] = ("person", "car"),
                              min_pixels: int = 4) -> dict[str, list[Counter]]:
    """Per class and frame: the frame's false-positive components counted by the true label under them.

    ``pred`` and ``targets``: predicted and true train ids [N, H, W] (255: void). Components under
    ``min_pixels`` are left out (single stray pixels say little about context)."""
    out: dict[str, list[Counter]] = {name: [] for name in classes}
    for frame_pred, frame_targets in zip(pred, targets, strict=True):
        for name in classes:
            cls, under_labels = BY_NAME[name], Counter()
            components, n = ndimage.label(frame_pred == cls.train_id, structure=_EIGHT)
            for k in range(1, n + 1):
                part = components == k
                if part.sum() < min_pixels or (frame_targets[part] == cls.train_id).mean() >= FOUND_SHARE:
                    continue
                under = int(np.bincount(frame_targets[part].astype(np.int64)).argmax())
                under_labels[_TRAIN_NAMES.get(under, "void")] += 1
            out[name].append(under_labels)
    return out


def false_positives(components: dict[str, list[Counter]]) -> dict:
    """From ``false_positive_components``: per class, false-positive components per frame and their number by
    the true label under them."""
    out = {}
    for name, frames in components.items():
        total = sum(frames, Counter())
        out[name] = {"per_frame": round(sum(total.values()) / max(len(frames), 1), 4),
                     "under": dict(total.most_common())}
    return out


def false_positive_image_counts(components: dict[str, list[Counter]]) -> dict[str, list[list[int]]]:
    """From ``false_positive_components``: per class (key ``false_positives_<class>``), per image [false
    positives, 1]: the bootstrap's per-image rows of the mean per frame."""
    return {f"false_positives_{name}": [[sum(c.values()), 1] for c in frames] for name, frames in components.items()}


def lookalike_image_counts(pred: np.ndarray, lookalikes: list[list[tuple[str, np.ndarray]]],
                           classes: tuple[str, ...] = ("person", "car")) -> dict[str, list[list[list[int]]]]:
    """Per class shown (key ``lookalike_<class>``), test image and look-alike showing it: [figure pixels
    labelled as the class, figure pixels]. ``pred``: predicted train ids [N, H, W]; ``lookalikes``: per frame,
    (class shown, figure mask [H, W]) at ``pred``'s size."""
    out = {}
    for name in classes:
        train_id = BY_NAME[name].train_id
        out[f"lookalike_{name}"] = [[[int((frame_pred[f] == train_id).sum()), int(f.sum())]
                                     for shows, f in frame_lookalikes if shows == name]
                                    for frame_pred, frame_lookalikes in zip(pred, lookalikes, strict=True)]
    return out


def image_sums(counts) -> list[list[int]]:
    """Per image, its [hit, total] pairs summed (one class's ``lookalike_image_counts``, or the height buckets'
    [found, objects]): what the paired bootstrap resamples for a share that is a ratio of per-image sums."""
    return [[sum(hit for hit, _ in image), sum(n for _, n in image)] for image in counts]


def lookalikes_taken(counts: list[list[list[int]]]) -> dict:
    """From one class's ``lookalike_image_counts``: the look-alikes the segmenter labels as the class they
    show (at least ``FOUND_SHARE`` of the figure's pixels), their number, and the share of all their figure
    pixels so labelled. A figure that vanished at the segmenter's size is not counted."""
    figures = [(hit, n) for image in counts for hit, n in image if n > 0]
    pixels = sum(n for _, n in figures)
    return {"taken": sum(hit >= FOUND_SHARE * n for hit, n in figures), "total": len(figures),
            "pixel_share": round(sum(hit for hit, _ in figures) / pixels, 4) if pixels else None}
