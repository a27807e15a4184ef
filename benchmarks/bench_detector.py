"""Speed of the downstream detector arm: Mask R-CNN training steps and scoring, per image size.

    python benchmarks/bench_detector.py [--steps 10] [--min-size 128 256] [--batch 4] [--device cpu]

Reads the augment stage's COCO file and images (``dvc repro augment`` first), as the downstream stages
do, and for each ``--min-size`` (torchvision's resize of the shorter side; the longer is capped at twice
it) trains ``params.yaml``'s detector for ``--steps`` steps after two warm-up steps, then scores 16
images. Prints steps/s and images/s of training and images/s of scoring, and the parameter count: the
figures that size the downstream grid (``evaluate.downstream.detector``) for a machine.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time

import torch

from pipeline.config import load_config
from pipeline.evaluation.arm_layout import SPLIT
from pipeline.evaluation.detection import CocoInstances, detect, train_detector
from pipeline.models.detector import build_detector, count_parameters
from pipeline.runtime import resolve_device
from pipeline.writers.coco_writer import augmented_coco_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--min-size", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=None, help="default: evaluate.downstream.detector.batch_size")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cfg = load_config("params.yaml")
    device = resolve_device(args.device)
    base = cfg.evaluate.downstream.detector
    data = CocoInstances(*augmented_coco_files(cfg.augment.out, SPLIT))
    data.ids = data.ids[:32]  # read once per training run: included in its time (about 0.3 s)
    rows = []
    for size in args.min_size:
        det = dataclasses.replace(base, min_size=size, max_size=2 * size, batch_size=args.batch or base.batch_size)
        warm = dataclasses.replace(det, steps=2, warmup=1)
        train_detector(data, warm, 0, device, progress=False)
        timed = dataclasses.replace(det, steps=args.steps, warmup=1)
        start = time.perf_counter()
        model, _ = train_detector(data, timed, 0, device, progress=False)
        train_s = time.perf_counter() - start
        scored = copy.copy(data)
        scored.ids = data.ids[:16]
        start = time.perf_counter()
        detect(model, scored, device, det.score_threshold, progress=False)
        detect_s = time.perf_counter() - start
        rows.append({"min_size": size, "batch": det.batch_size, "steps": args.steps,
                     "train_steps_per_s": round(args.steps / train_s, 2),
                     "train_images_per_s": round(args.steps * det.batch_size / train_s, 1),
                     "detect_images_per_s": round(16 / detect_s, 1),
                     "parameters": count_parameters(build_detector(det, 2)),
                     "threads": torch.get_num_threads(), "device": str(device)})
        print(json.dumps(rows[-1]))


if __name__ == "__main__":
    main()
