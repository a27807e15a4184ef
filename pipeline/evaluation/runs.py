"""One run of the downstream experiment: every arm of an N-frame subset, one seed, a segmenter (and a detector).

Per arm (``arms.py``) the segmenter (``downstream.py``) trains on the arm's Cityscapes tree and, with
``evaluate.downstream.detector.enabled``, the detector (``detection.py``) on its COCO file, with the same seed
(so the same initial weights and batches) in every arm; both are scored on the test set that ``write_test_set``
wrote (Cityscapes + COCO), with the context probe: how much of the impossible regions (sky, building facades,
vegetation) the segmenter labels person or car, how many confident detections lie mostly inside them, and the
detector's recall on small (far) objects (COCOeval AR_small).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils
from tqdm import tqdm

from pipeline.checkpoints import weights_bytes
from pipeline.config import Config
from pipeline.convert import convert
from pipeline.datasets import LOOKALIKES_FILE, open_dataset
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.encoding import resize_nearest
from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.arm_layout import ARMS, SPLIT, arm_files
from pipeline.evaluation.detection import CocoInstances, coco_scores, detect, train_detector
from pipeline.evaluation.downstream import (
    OUT_OF_CONTEXT,
    Frame,
    image_counts,
    iou_scores,
    out_of_context_pixels,
    predict,
    shrink,
    train_segmenter,
)
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
)
from pipeline.io import atomic_write_json, read_json
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
    source = Path(cfg.data.root) / LOOKALIKES_FILE
    if cfg.data.format == "cityscapes" and source.is_file():  # the built-in dataset's look-alikes: for the probe
        records = read_json(source).get("splits", {}).get(dc.test_split, {})
        written = [frame.stem for frame in CityscapesDataset(Path(out), [dc.test_split]).frames]
        atomic_write_json(Path(out) / LOOKALIKES_FILE,
                          {"splits": {dc.test_split: {stem: records.get(stem, []) for stem in written}}})
    return n


@dataclass
class ScoredSplit:
    """The written test split: frames at the segmenter's size, the COCO view, full-size label maps."""

    frames: list[Frame]
    coco: CocoInstances
    labels: dict[int, np.ndarray]  # COCO image id -> label ids at full size
    # Per frame of ``frames``: (class shown, figure mask at the segmenter's size) of each look-alike; None when
    # the test set came without them (any dataset but the built-in one).
    lookalikes: list[list[tuple[str, np.ndarray]]] | None = None
    targets: np.ndarray = field(init=False)  # [N, H, W] train ids of ``frames``: every arm's segmenter target
    instance_ids: np.ndarray = field(init=False)  # [N, H, W] their instance ids, for the instance figures

    def __post_init__(self) -> None:
        empty = np.zeros((0, 0, 0), np.uint8)
        self.targets = np.stack([f.target for f in self.frames]) if self.frames else empty
        self.instance_ids = np.stack([f.instance_ids for f in self.frames]) if self.frames else empty


def test_frames(cfg: Config, root: str | Path) -> int:
    """How many frames the test set written under ``root`` has."""
    return len(CityscapesDataset(Path(root), [cfg.evaluate.downstream.test_split]))


def read_test_set(cfg: Config, root: str | Path) -> ScoredSplit:
    dc = cfg.evaluate.downstream
    root = Path(root)
    dataset = CityscapesDataset(root, [dc.test_split])
    scenes = [dataset[i] for i in range(len(dataset))]
    coco = CocoInstances(coco_file(root, dc.test_split), root / "leftImg8bit" / dc.test_split)
    by_name = {img["file_name"]: img["id"] for img in coco.coco.dataset["images"]}
    lookalikes = None
    if (root / LOOKALIKES_FILE).is_file():
        records = read_json(root / LOOKALIKES_FILE).get("splits", {}).get(dc.test_split, {})
        lookalikes = [[(r["shows"], resize_nearest(mask_utils.decode(r["figure"]), tuple(dc.size)).astype(bool))
                       for r in records.get(s.frame.stem, [])] for s in scenes]
    return ScoredSplit([shrink(s, tuple(dc.size)) for s in scenes], coco,
                       {by_name[cityscapes_file_name(s)]: s.labels for s in scenes}, lookalikes)


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


def models(cfg: Config) -> tuple[str, ...]:
    """The models each arm trains: the segmenter, and the detector when enabled."""
    return ("segmenter", "detector") if cfg.evaluate.downstream.detector.enabled else ("segmenter",)


def train_and_score(cfg: Config, root: str | Path, arm: str, model: str, seed: int, test: ScoredSplit,
                    device: torch.device, progress: bool = True) -> tuple[dict, bytes | None]:
    """Train one model of one arm (``segmenter`` or ``detector``) and score it on ``test``: its figures, and
    the segmenter's weights (safetensors bytes) for the subset arm, which the evaluate stage reads."""
    dc = cfg.evaluate.downstream
    start = time.perf_counter()
    if model == "segmenter":
        tree = CityscapesDataset(Path(root) / arm / "cityscapes", [SPLIT])
        frames = [shrink(tree[i], tuple(dc.size)) for i in range(len(tree))]
        segmenter, curve = train_segmenter(frames, dc, seed, device, progress, desc=f"segmenter {arm}")
        pred, _ = predict(segmenter, test.frames, device)
        looks = lookalike_image_counts(pred, test.lookalikes) if test.lookalikes is not None else {}
        objects, wrong = object_image_counts(pred, test.instance_ids), false_positive_components(pred, test.targets)
        figures = {"train_frames": len(frames),
                   "segmenter": iou_scores(pred, test.targets) | out_of_context_pixels(pred, test.targets)
                   | {"recall_by_height": recall_by_height(objects), "false_positives": false_positives(wrong)}
                   | ({"lookalikes": {k.removeprefix("lookalike_"): lookalikes_taken(v) for k, v in looks.items()}}
                      if looks else {}),
                   "per_image": image_counts(pred, test.targets) | recall_image_counts(objects)
                   | false_positive_image_counts(wrong) | {k: image_sums(v) for k, v in looks.items()}}
        weights = weights_bytes(segmenter) if arm == ARMS[0] else None
    else:
        detector, curve = train_detector(CocoInstances(*arm_files(root, arm)), dc.detector, seed, device, progress,
                                         desc=f"detector {arm}")
        results = detect(detector, test.coco, device, dc.detector.score_threshold, progress)
        figures = {"detector": {"scores": coco_scores(test.coco, results),
                                **out_of_context_detections(results, test, dc.detector.probe_score)}}
        weights = None
    figures |= {"loss": [round(v, 5) for v in curve], "seconds": round(time.perf_counter() - start, 1)}
    return figures, weights


def worker_count(workers: int, threads: int, device: torch.device, jobs: int) -> int:
    """Processes to train side by side: ``workers`` (0 = the CPU cores / ``threads``; 1 on a GPU), at most
    one per job."""
    if workers == 0:
        workers = 1 if device.type == "cuda" else max(1, (os.cpu_count() or 1) // threads)
    return max(1, min(workers, jobs))


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to ``n`` for the block (the figures depend on it: sums split over
    threads round differently), then back."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_WORKER: dict = {}


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """Ends this worker once its parent is gone. A stage killed by a signal to its own process (a scheduler's
    SIGTERM, ``kill PID``) leaves its pool's workers behind; unwatched, each trains its model to the end for
    nobody, on cores the next run needs."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _init_worker(cfg: Config, root: str, seed: int, test_root: str, device: str) -> None:
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="exit-with-parent").start()
    torch.set_num_threads(cfg.evaluate.downstream.threads)
    _WORKER.update(cfg=cfg, root=root, seed=seed, test_root=test_root, device=torch.device(device))


def _worker_job(arm: str, model: str) -> tuple[dict, bytes | None]:
    w = _WORKER
    try:
        if "test" not in w:  # read in the first job, not the initializer: a bad file is that job's one-line error
            w["test"] = read_test_set(w["cfg"], w["test_root"])
        return train_and_score(w["cfg"], w["root"], arm, model, w["seed"], w["test"], w["device"], progress=False)
    except PipelineError as e:  # its one line, as a type that crosses the process boundary whatever its fields
        raise PipelineError(str(e)) from None


def run_arms(cfg: Config, root: str | Path, seed: int, test_root: str | Path, device: torch.device,
             progress: bool = True) -> tuple[dict, bytes]:
    """Every arm under ``root`` with one seed, scored on the test set written under ``test_root``; returns
    {arm: figures} and the subset arm's segmenter (safetensors bytes).

    The arms' eight models train in ``evaluate.downstream.workers`` processes side by side, each on
    ``threads`` torch threads: on a small CPU two one-thread models do more work than one two-thread model
    (measured in docs/history.md, "Downstream: measured grids"). Every model runs with the same thread count
    whatever the worker count, so the figures do not depend on it."""
    dc = cfg.evaluate.downstream
    jobs = [(arm, model) for arm in ARMS for model in models(cfg)]
    workers = worker_count(dc.workers, dc.threads, device, len(jobs))
    done: dict[tuple[str, str], tuple[dict, bytes | None]] = {}
    if workers == 1:
        test = read_test_set(cfg, test_root)
        with torch_threads(dc.threads):
            for arm, model in jobs:
                done[arm, model] = train_and_score(cfg, root, arm, model, seed, test, device, progress)
    else:
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked OpenMP state
        with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init_worker,
                                 initargs=(cfg, str(root), seed, str(test_root), str(device))) as pool:
            futures = {pool.submit(_worker_job, arm, model): (arm, model) for arm, model in jobs}
            try:
                for future in tqdm(as_completed(futures), total=len(jobs), desc=f"arms' models ({workers} workers)",
                                   unit="model", disable=not progress):
                    done[futures[future]] = future.result()
            except BaseException as e:
                pool.shutdown(cancel_futures=True)  # the first failure ends the run: no queued model starts
                if isinstance(e, BrokenProcessPool):
                    raise PipelineError("evaluate.downstream.workers: a worker process died (out of memory?); "
                                        "try fewer, e.g. -S evaluate.downstream.workers=1") from None
                raise
    figures = {}
    for arm in ARMS:
        figures[arm] = {"loss": {}, "seconds": {}}
        for model in models(cfg):
            result = done[arm, model][0]
            figures[arm] |= {k: v for k, v in result.items() if k not in ("loss", "seconds")}
            figures[arm]["loss"][model], figures[arm]["seconds"][model] = result["loss"], result["seconds"]
    return figures, done[ARMS[0], "segmenter"][1]
