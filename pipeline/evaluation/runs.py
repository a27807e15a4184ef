"""One run of the downstream experiment: every arm of an N-frame subset, one seed, a segmenter and a detector.

Per arm (``arms.py``) the segmenter (``downstream.py``) trains on the arm's Cityscapes tree and the
detector (``detection.py``) on its COCO file, with the same seed (so the same initial weights and batches)
in every arm; both are scored on the test set that ``write_test_set`` wrote (Cityscapes + COCO), with the
context probe: how much of the impossible regions (sky, building facades, vegetation) the segmenter
labels person or car, how many confident detections lie mostly inside them, and the detector's recall on
small (far) objects (COCOeval AR_small).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils

from pipeline.config import Config
from pipeline.convert import convert
from pipeline.datasets import open_dataset
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.errors import ConfigError
from pipeline.evaluation.arms import ARMS, SPLIT, arm_files
from pipeline.evaluation.detection import CocoInstances, coco_scores, detect, train_detector
from pipeline.evaluation.downstream import (
    OUT_OF_CONTEXT,
    Frame,
    iou_scores,
    out_of_context_pixels,
    predict,
    shrink,
    train_segmenter,
)
from pipeline.labels import BY_NAME, train_id_lut
from pipeline.writers.coco_writer import cityscapes_file_name, coco_file

_REGION_IDS = [BY_NAME[n].id for n in OUT_OF_CONTEXT]
_TRAIN_ID = train_id_lut()


class _First:
    """The first ``n`` frames of a dataset."""

    def __init__(self, dataset, n: int):
        self.dataset, self.n = dataset, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return self.dataset[i]


def write_test_set(cfg: Config, out: str | Path, progress: bool = True) -> int:
    """Write ``evaluate.downstream.test_split`` (its first ``test_frames``; 0 = all) as Cityscapes + COCO
    under ``out``. A split without a single labelled pixel - Cityscapes' test split, whose label maps are
    empty - is refused: scores on it would mean nothing. Returns the frames written."""
    dc = cfg.evaluate.downstream
    dataset = open_dataset(cfg.data, dc.test_split, cfg.coco)
    n = len(dataset) if dc.test_frames == 0 else min(dc.test_frames, len(dataset))
    if not any((_TRAIN_ID[dataset[i].labels] != 255).any() for i in range(n)):  # 255: void, not scored
        raise ConfigError(f"evaluate.downstream.test_split: split {dc.test_split!r} of {cfg.data.root} has no "
                          "labelled pixels (Cityscapes' test labels are empty); name a labelled split, e.g. val")
    convert({dc.test_split: _First(dataset, n)}, out, to="both", progress=progress)
    return n


@dataclass
class ScoredSplit:
    """The written test split: frames at the segmenter's size, the COCO view, full-size label maps."""

    frames: list[Frame]
    coco: CocoInstances
    labels: dict[int, np.ndarray]  # COCO image id -> label ids at full size
    targets: np.ndarray = field(init=False)  # [N, H, W] train ids of ``frames``: every arm's segmenter target

    def __post_init__(self) -> None:
        self.targets = np.stack([f.target for f in self.frames]) if self.frames else np.zeros((0, 0, 0), np.uint8)


def read_test_set(cfg: Config, root: str | Path) -> ScoredSplit:
    dc = cfg.evaluate.downstream
    root = Path(root)
    dataset = CityscapesDataset(root, [dc.test_split])
    scenes = [dataset[i] for i in range(len(dataset))]
    coco = CocoInstances(coco_file(root, dc.test_split), root / "leftImg8bit" / dc.test_split)
    by_name = {img["file_name"]: img["id"] for img in coco.coco.dataset["images"]}
    return ScoredSplit([shrink(s, tuple(dc.size)) for s in scenes], coco,
                   {by_name[cityscapes_file_name(s)]: s.labels for s in scenes})


def out_of_context_detections(results: list[dict], test: ScoredSplit, min_score: float) -> dict[str, float | None]:
    """Per class: the share of detections scoring ``min_score`` or more whose mask lies mostly (over half
    its pixels) on impossible regions of the true label map; None when there is no such detection."""
    out = {}
    for name, cat in zip(test.coco.classes, test.coco.category_ids, strict=True):
        confident = [r for r in results if r["category_id"] == cat and r["score"] >= min_score]
        bad = 0
        for r in confident:
            m = mask_utils.decode(r["segmentation"]).astype(bool)
            area = int(m.sum())
            inside = int(np.isin(test.labels[r["image_id"]][m], _REGION_IDS).sum())
            bad += area > 0 and inside * 2 > area
        out[f"{name}_out_of_context_detections"] = round(bad / len(confident), 4) if confident else None
        out[f"{name}_confident_detections"] = len(confident)
    return out


def run_arm(cfg: Config, root: str | Path, arm: str, seed: int, test: ScoredSplit, device: torch.device,
            progress: bool = True) -> tuple[dict, torch.nn.Module]:
    """Train and score the segmenter and the detector of one arm; returns the figures and the segmenter."""
    dc = cfg.evaluate.downstream
    annotations, images = arm_files(root, arm)
    start = time.perf_counter()
    tree = CityscapesDataset(Path(root) / arm / "cityscapes", [SPLIT])
    frames = [shrink(tree[i], tuple(dc.size)) for i in range(len(tree))]
    segmenter, seg_curve = train_segmenter(frames, dc, seed, device, progress, desc=f"segmenter {arm}")
    pred, _ = predict(segmenter, test.frames, device)
    segment = iou_scores(pred, test.targets) | out_of_context_pixels(pred, test.targets)
    seg_seconds = time.perf_counter() - start

    start = time.perf_counter()
    data = CocoInstances(annotations, images)
    detector, det_curve = train_detector(data, dc.detector, seed, device, progress, desc=f"detector {arm}")
    results = detect(detector, test.coco, device, dc.detector.score_threshold, progress)
    detection = {"scores": coco_scores(test.coco, results),
                 **out_of_context_detections(results, test, dc.detector.probe_score)}
    figures = {"train_frames": len(frames), "segmenter": segment, "detector": detection,
               "loss": {"segmenter": [round(v, 5) for v in seg_curve], "detector": [round(v, 5) for v in det_curve]},
               "seconds": {"segmenter": round(seg_seconds, 1), "detector": round(time.perf_counter() - start, 1)}}
    return figures, segmenter


def run_arms(cfg: Config, root: str | Path, seed: int, test: ScoredSplit, device: torch.device,
             progress: bool = True) -> tuple[dict, torch.nn.Module]:
    """Every arm under ``root`` with one seed; returns {arm: figures} and the subset arm's segmenter."""
    figures, subset_segmenter = {}, None
    for arm in ARMS:
        figures[arm], segmenter = run_arm(cfg, root, arm, seed, test, device, progress)
        if arm == "subset":
            subset_segmenter = segmenter
    return figures, subset_segmenter
