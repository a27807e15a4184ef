"""How plausible the inserted objects are, against random placement of the very same shapes and against
the real objects of the same frames.

Each line of an augment run's ``manifest.jsonl`` carries the inserted object's whole mask (before
nearer objects covered it). That mask is judged on its source frame - the scene before insertion - by the
rules of ``pipeline.rules`` (support, scale, overlap). Three arms per class:

- ``ours``: the inserted objects;
- ``random``: the same masks moved to ``random_per_object`` uniformly random positions inside the same
  frame (copy-paste without a placement model);
- ``real``: the frame's own persons and cars, each judged on its frame with itself removed (the
  ceiling: what the rules make of real placements, visible masks - occluded objects look short).

Frames without a camera file get the scale rule from a ground plane fitted to their own objects
(``ground_plane.fit_ground_plane``; for a real object, fitted without it); with too few objects to fit,
the scale rule is skipped for that frame and ``plausible`` means support and overlap.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.config import Config
from pipeline.datasets import open_dataset
from pipeline.label_surgery import remove_object
from pipeline.labels import BY_NAME, TARGET_CLASSES
from pipeline.masks import mask_bbox
from pipeline.rules import Yardstick, scale_ratio
from pipeline.scene import Camera, Scene

RULES = ("support", "scale", "overlap", "plausible")


def shifted(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same shape at a uniformly random position where its box lies inside the image."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = mask.shape
    y = int(rng.integers(0, height - crop.shape[0] + 1))
    x = int(rng.integers(0, width - crop.shape[1] + 1))
    out = np.zeros_like(mask)
    out[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
    return out


class Tally:
    """Counts of rule verdicts per (arm, class), summarised as shares."""

    def __init__(self) -> None:
        self.counts: dict = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        self.heights: dict = defaultdict(list)  # (arm, class) -> pixel heights of whole masks
        self.aspects: dict = defaultdict(list)  # (arm, class) -> width over height of the masks' boxes
        self.scales: dict = defaultdict(list)  # (arm, class) -> heights over the ground plane's at the contact row

    def add(self, arm: str, name: str, verdicts: dict[str, bool], mask: np.ndarray | None = None,
            scale: float | None = None) -> None:
        for rule, ok in verdicts.items():
            t = self.counts[(arm, name)][rule]
            t[0] += int(ok)
            t[1] += 1
        if mask is not None:
            _, _, width, height = mask_bbox(mask)
            self.heights[(arm, name)].append(height)
            self.aspects[(arm, name)].append(width / height)
        if scale is not None and not np.isnan(scale):
            self.scales[(arm, name)].append(scale)

    def summary(self) -> dict:
        """{class: {arm: {rule: share, "objects": n}, "ours_vs_random": ratio}}."""
        result: dict = {}
        for (arm, name), rules in sorted(self.counts.items()):
            result.setdefault(name, {})[arm] = {r: round(ok / n, 4) for r, (ok, n) in rules.items()} | {
                "objects": rules["plausible"][1]}
        for arms in result.values():
            if "ours" in arms and arms.get("random", {}).get("plausible", 0) > 0:
                arms["ours_vs_random"] = round(arms["ours"]["plausible"] / arms["random"]["plausible"], 2)
        # Sizes: the median pixel height of the inserted objects and of the same frames' real ones.
        for (arm, name), heights in sorted(self.heights.items()):
            result[name].setdefault("median_height", {})[arm] = float(np.median(heights))
        # Shape of the box: a where model can get the height right and draw the class too narrow or too wide.
        for (arm, name), aspects in sorted(self.aspects.items()):
            result[name].setdefault("median_aspect", {})[arm] = round(float(np.median(aspects)), 3)
        # Size where they stand: a height gap with equal scales is a gap in where (nearer or farther rows).
        for (arm, name), scales in sorted(self.scales.items()):
            result[name].setdefault("median_scale", {})[arm] = round(float(np.median(scales)), 3)
        return result


def scale_at_contact(mask: np.ndarray, camera: Camera | None, label_id: int, yardstick: Yardstick) -> float | None:
    """The mask's height over the ground plane's for its class at its contact row (None without a plane)."""
    return None if camera is None else scale_ratio(mask, yardstick.class_camera(camera, label_id), label_id)


def judge_real(scene: Scene, tally: Tally, min_area: int, yardstick: Yardstick) -> None:
    """Tally the frame's own persons and cars (``real`` arm), each on its frame with itself removed."""
    for inst in scene.instances:
        if inst.iscrowd or inst.label_id not in TARGET_CLASSES or inst.area < min_area:
            continue
        labels_before, _ = remove_object(scene.labels, scene.instance_ids, inst.value)
        mask, camera = scene.instance_ids == inst.value, yardstick.camera(scene, exclude=inst.value)
        verdicts = yardstick.verdicts(labels_before, mask, inst.label_id, camera)
        tally.add("real", inst.name, verdicts, mask, scale_at_contact(mask, camera, inst.label_id, yardstick))


def read_manifest(out: str | Path) -> list[dict]:
    path = Path(out) / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def inserted_by_frame(lines: list[dict], data, coco) -> Iterator[tuple[Scene, list[tuple[dict, int, np.ndarray]]]]:
    """Each source frame of manifest ``lines`` read once (split by split, frames in name order), with its inserted
    objects as (manifest line, label id, whole mask)."""
    by_frame: dict = defaultdict(list)
    for m in lines:
        by_frame[(m["split"], m["source_frame"])].append(m)
    for split in sorted({s for s, _ in by_frame}):
        dataset = open_dataset(data, split, coco)
        stems = {dataset.frame_id(i).stem: i for i in range(len(dataset))}
        for (s, stem), items in sorted(by_frame.items()):
            if s == split:
                yield dataset[stems[stem]], [
                    (m, BY_NAME[m["class"]].id, mask_utils.decode(m["whole_mask"]).astype(bool)) for m in items]


def evaluate_inserted(cfg: Config, out: str | Path | None = None, random_per_object: int = 4, seed: int = 0,
                      data=None, splits: list[str] | None = None) -> dict:
    """Per class: the share of inserted objects (``ours``), of randomly placed copies of their shapes
    (``random``) and of the same frames' real objects (``real``) meeting each rule, how many times
    more plausible ours are than random, and the median heights, widths over heights and scales of ours and the
    real objects. ``data`` overrides ``cfg.data`` (the dataset the run augmented); ``splits``: only the frames of
    these splits."""
    lines = [m for m in read_manifest(out or cfg.augment.out) if splits is None or m["split"] in splits]
    yardstick = Yardstick.of(cfg)
    rng = np.random.default_rng(seed)
    tally = Tally()
    for scene, objects in inserted_by_frame(lines, data or cfg.data, cfg.coco):
        camera = yardstick.camera(scene)
        for m, label_id, mask in objects:
            tally.add("ours", m["class"], yardstick.verdicts(scene.labels, mask, label_id, camera), mask,
                      scale_at_contact(mask, camera, label_id, yardstick))
            for _ in range(random_per_object):
                shifted_verdicts = yardstick.verdicts(scene.labels, shifted(mask, rng), label_id, camera)
                tally.add("random", m["class"], shifted_verdicts)
        judge_real(scene, tally, cfg.augment.min_area, yardstick)
    return tally.summary()
