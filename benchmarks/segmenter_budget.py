"""Train one arm's downstream segmenter under changed params and print its figures on the test split - how
much training the downstream experiment's segmenter needs on a dataset before its arms can be compared.

    python benchmarks/segmenter_budget.py N ARM SEED [-S evaluate.downstream.KEY=VALUE ...]

Reads the arms (``dvc repro arms@N``) and the test split (``dvc repro downstream_test``) the pipeline wrote;
trains the arm's segmenter with ``params.yaml`` plus the ``-S`` overrides (dotted keys, YAML values; e.g.
``-S evaluate.downstream.steps=1200``, ``-S 'evaluate.downstream.size=[480,360]'``) on this machine's CPU
threads (or ``--device``) and prints one JSON line: person and car IoU, mIoU, person recall by height, seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from model_quality import overridden

from pipeline.config import Config, from_dict
from pipeline.downstream import arms_root, test_root
from pipeline.errors import reported_as_one_line
from pipeline.evaluation.runs import read_test_set, train_and_score
from pipeline.runtime import resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="the subset size whose arms to read (data/downstream/arms/N)")
    parser.add_argument("arm", choices=["subset", "ours", "copy_paste", "rules"])
    parser.add_argument("seed", type=int)
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="key=value (repeatable)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = parser.parse_args()
    with reported_as_one_line():
        cfg = from_dict(Config, overridden(Path(args.params), args.overrides), "params")
        device = resolve_device(args.device, "--device")
        start = time.perf_counter()
        test = read_test_set(cfg, test_root(cfg))
        figures, _ = train_and_score(cfg, arms_root(cfg, args.n), args.arm, "segmenter", args.seed, test, device,
                                     progress=True)
    seg, dc = figures["segmenter"], cfg.evaluate.downstream
    print(json.dumps({"n": args.n, "arm": args.arm, "seed": args.seed, "size": dc.size, "steps": dc.steps,
                      "crop": dc.crop, "overrides": args.overrides, "person_iou": seg["person_iou"],
                      "car_iou": seg["car_iou"], "miou": seg["miou"],
                      "person_recall_by_height": {h: r["recall"] for h, r in seg["recall_by_height"]["person"].items()},
                      "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
