"""How plausible the inserted objects are, against random placement of the very same shapes.

Each line of an augment run's ``manifest.jsonl`` carries the inserted object's whole mask (before
nearer objects covered it). That mask is judged on its source frame - the scene before insertion -
by the rules of ``pipeline.evaluation.placement`` (support, scale, overlap); the baseline moves the same
mask to ``random_per_object`` uniformly random positions inside the same frame and judges those.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.config import Config
from pipeline.datasets import open_dataset
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.evaluation.placement import check_placement
from pipeline.labels import BY_NAME

RULES = ("support", "scale", "overlap", "plausible")


def _judge(scene, mask: np.ndarray, label_id: int) -> dict[str, bool]:
    check = check_placement(scene.labels, mask, scene.camera, label_id) if scene.camera is not None else None
    if check is None:  # no camera file: the scale rule does not apply
        from pipeline.evaluation.placement import overlap_share, support_label
        from pipeline.labels import SUPPORT

        support = support_label(scene.labels, mask) in SUPPORT[label_id]
        overlap = overlap_share(mask, scene.labels) < 0.5
        return {"support": support, "overlap": overlap, "plausible": support and overlap}
    return {"support": check.support_ok, "scale": check.scale_ok, "overlap": check.overlap_ok,
            "plausible": check.plausible}


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


def evaluate_inserted(cfg: Config, out: str | Path | None = None, random_per_object: int = 4, seed: int = 0) -> dict:
    """Per class: the share of inserted objects (``model``) and of randomly placed copies of their
    shapes (``random``) meeting each rule, and how many times more plausible the model's are."""
    out = Path(out or cfg.augment.out)
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(seed)
    tallies: dict = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    by_frame: dict = defaultdict(list)
    for m in lines:
        by_frame[(m["split"], m["source_frame"])].append(m)
    for split in sorted({s for s, _ in by_frame}):
        dataset = open_dataset(cfg.data, split, cfg.coco)
        stems = {(dataset.frames[i] if isinstance(dataset, CityscapesDataset) else dataset.frame_id(i)).stem: i
                 for i in range(len(dataset))}
        for (s, stem), items in sorted(by_frame.items()):
            if s != split:
                continue
            scene = dataset[stems[stem]]
            for m in items:
                label_id = BY_NAME[m["class"]].id
                mask = mask_utils.decode(m["whole_mask"]).astype(bool)
                arms = [("model", mask)] + [("random", shifted(mask, rng)) for _ in range(random_per_object)]
                for arm, placed in arms:
                    for rule, ok in _judge(scene, placed, label_id).items():
                        t = tallies[(arm, m["class"])][rule]
                        t[0] += int(ok)
                        t[1] += 1
    result: dict = {}
    for (arm, name), rules in sorted(tallies.items()):
        result.setdefault(name, {})[arm] = {r: round(ok / n, 4) for r, (ok, n) in rules.items()} | {
            "objects": rules["plausible"][1]}
    for _, arms in result.items():
        if "random" in arms and arms["random"]["plausible"] > 0:
            arms["plausible_vs_random"] = round(arms["model"]["plausible"] / arms["random"]["plausible"], 2)
    return result
