"""Train the downstream segmenter of some arms over many seeds under one param set, scored on a development
split (``val``: the test split stays for the verdict), and report how often and how far it fails - how the
downstream experiment's segmenter training is chosen so that no arm's seed learns nothing.

    python benchmarks/segmenter_stability.py run NAME N --seeds 0-19 [--arms subset ours] [-S KEY=VALUE ...]
    python benchmarks/segmenter_stability.py summary

``run`` reads the arms ``dvc repro arms@N`` wrote, writes the development split once (Cityscapes + COCO,
under ``--work``), and trains each (arm, seed) with ``params.yaml`` plus the ``-S`` overrides (dotted keys,
YAML values; e.g. ``-S evaluate.downstream.steps=600``) in ``evaluate.downstream.workers`` processes of
``threads`` torch threads, as the downstream stage does; one JSON line per model is appended to ``--out``,
and a rerun skips the (NAME, arm, seed) already there (resumable). ``summary`` prints, per NAME and arm,
person and car IoU over the seeds (mean, sd, lowest), the seeds that learned no person (IoU under
``--failed``), the mean loss of the last five logged points and the person recall from 32 px, and per NAME
the paired difference of ours against each other arm with its t interval over seeds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch
from model_quality import overridden
from scipy import stats

from pipeline.config import Config, from_dict
from pipeline.downstream import arms_root
from pipeline.errors import ConfigError, reported_as_one_line
from pipeline.evaluation.arm_layout import ARMS
from pipeline.evaluation.runs import read_test_set, train_and_score, worker_count, write_test_set

_WORKER: dict = {}


def seed_list(text: str) -> list[int]:
    """``0-19`` or ``0,3,5``."""
    first, sep, last = text.partition("-")
    return list(range(int(first), int(last) + 1)) if sep else [int(s) for s in text.split(",")]


def _init(cfg: Config, root: str, dev_root: str) -> None:
    torch.set_num_threads(cfg.evaluate.downstream.threads)
    _WORKER.update(cfg=cfg, root=root, dev=read_test_set(cfg, dev_root))


def _job(arm: str, seed: int) -> dict:
    w = _WORKER
    start = time.perf_counter()
    figures, _ = train_and_score(w["cfg"], w["root"], arm, "segmenter", seed, w["dev"], torch.device("cpu"),
                                 progress=False)
    seg = figures["segmenter"]
    return {"arm": arm, "seed": seed, "person_iou": seg["person_iou"], "car_iou": seg["car_iou"],
            "miou": seg["miou"], "late_loss": float(np.mean(figures["loss"][-5:])),
            "person_recall_by_height": {h: r["recall"] for h, r in seg["recall_by_height"]["person"].items()},
            "seconds": round(time.perf_counter() - start, 1)}


def run(args: argparse.Namespace) -> None:
    raw = overridden(Path(args.params), args.overrides)
    if args.split == raw["evaluate"]["downstream"]["test_split"]:
        raise ConfigError(f"--split {args.split}: that is evaluate.downstream.test_split, the split the verdict is "
                          "read on; choose the segmenter on a development split (e.g. val)")
    raw["evaluate"]["downstream"]["test_split"] = args.split
    cfg = from_dict(Config, raw, "params")
    arms = arms_root(cfg, args.n)
    missing = [arm for arm in args.arms if not (arms / arm).is_dir()]
    if missing:
        raise ConfigError(f"{arms}: no arm {', '.join(missing)} there; run `dvc repro arms@{args.n}` first")
    dev_root = Path(args.work) / args.split
    if not (dev_root / "done").is_file():
        write_test_set(cfg, dev_root)
        (dev_root / "done").write_text("")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seen = set()
    if out.is_file():
        seen = {(r["name"], r["arm"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
    jobs = [(arm, seed) for seed in seed_list(args.seeds) for arm in args.arms if (args.name, arm, seed) not in seen]
    dc = cfg.evaluate.downstream
    workers = worker_count(dc.workers, dc.threads, torch.device("cpu"), len(jobs))
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_init,
                             initargs=(cfg, str(arms), str(dev_root))) as pool:
        futures = [pool.submit(_job, arm, seed) for arm, seed in jobs]
        for future in as_completed(futures):
            record = {"name": args.name, "n": args.n, "split": args.split, "overrides": args.overrides,
                      "steps": dc.steps, "threads": dc.threads} | future.result()
            with out.open("a") as f:  # one line per model as it ends: a killed run keeps what it finished
                f.write(json.dumps(record) + "\n")
            print(json.dumps({k: record[k] for k in ("name", "arm", "seed", "person_iou", "car_iou", "seconds")}),
                  flush=True)


def summary(args: argparse.Namespace) -> None:
    records = [json.loads(line) for line in Path(args.out).read_text().splitlines()]
    for name in dict.fromkeys(r["name"] for r in records):
        mine = [r for r in records if r["name"] == name]
        print(f"{name}  ({' '.join(mine[0]['overrides']) or 'params.yaml'}; split {mine[0]['split']})")
        by_arm = {arm: {r["seed"]: r for r in mine if r["arm"] == arm} for arm in ARMS}
        for arm, runs in by_arm.items():
            if not runs:
                continue
            person = np.array([r["person_iou"] for r in runs.values()])
            car = np.array([r["car_iou"] for r in runs.values()])
            failed = sorted(s for s, r in runs.items() if r["person_iou"] < args.failed)
            seconds = np.mean([r["seconds"] for r in runs.values()])
            loss = np.mean([r["late_loss"] for r in runs.values()])
            recall = {h: np.mean([r["person_recall_by_height"][h] for r in runs.values()]) for h in ("32-64", "64+")
                      if all(h in r["person_recall_by_height"] for r in runs.values())}
            print(f"  {arm:<10} seeds {len(runs):>2}  person IoU mean {person.mean():.3f} sd {person.std(ddof=1):.3f} "
                  f"min {person.min():.3f}  car IoU mean {car.mean():.3f} min {car.min():.3f}  "
                  f"no person (< {args.failed}): {failed or 'none'}  {seconds:.0f} s a model")
            print(f"  {'':<10} late loss {loss:.3f}  person recall " + (
                ", ".join(f"{h} px {v:.3f}" for h, v in recall.items()) or "-"))
        ours = by_arm["ours"]
        for arm, runs in by_arm.items():
            common = sorted(set(runs) & set(ours))
            if arm == "ours" or len(common) < 2:
                continue
            diff = np.array([ours[s]["person_iou"] - runs[s]["person_iou"] for s in common])
            low, high = stats.ttest_1samp(diff, 0).confidence_interval(0.95)
            print(f"  ours minus {arm}, person IoU over {len(common)} paired seeds: {diff.mean():+.3f} "
                  f"sd {diff.std(ddof=1):.3f}, t 95% [{low:+.3f}, {high:+.3f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/segmenter_stability.jsonl", help="the JSON lines file")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and score (arm, seed) models under one param set")
    r.add_argument("name", help="this param set's name in --out")
    r.add_argument("n", type=int, help="the subset size whose arms to read (data/downstream/arms/N)")
    r.add_argument("--seeds", default="0-19", help="0-19 or 0,3,5")
    r.add_argument("--arms", nargs="+", default=["subset", "ours"], choices=ARMS)
    r.add_argument("--split", default="val", help="the development split to score on (never the test split)")
    r.add_argument("--work", default="runs/segmenter_stability", help="where the development split is written")
    r.add_argument("-S", dest="overrides", action="append", default=[], help="key=value (repeatable)")
    r.add_argument("--params", default="params.yaml")
    s = sub.add_parser("summary", help="print the figures of every param set in --out")
    s.add_argument("--failed", type=float, default=0.05, help="person IoU under which a seed learned no person")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with reported_as_one_line():
        run(args) if args.command == "run" else summary(args)


if __name__ == "__main__":
    main()
