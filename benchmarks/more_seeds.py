"""More seeds for some arms of a recorded downstream run: the paired interval that needs more seeds than the
other comparisons (CamVid N = 25: ours minus the subset, whose persons are learned in some seeds and not in others)
narrowed without training every arm again.

    python benchmarks/more_seeds.py run 25 8 9 10 --arms ours subset --out runs/more-seeds
    python benchmarks/more_seeds.py compare 25 --out runs/more-seeds --against docs/runs/camvid-native-gan0 [--write]

run (in the workspace that wrote the recorded run: its arms and test split, ``dvc repro arms@N downstream_test``):
per seed and arm, the arm's segmenter trained and scored as the downstream runs do it (``train_and_score`` with
``evaluate.downstream.threads`` torch threads; the seed's initial weights and batches), in
``evaluate.downstream.workers`` processes side by side; one JSON line per model appended to OUT/seeds.jsonl as it
finishes (figures and per-image counts), so a stopped run goes on where it stopped. The workspace's arms.json is
copied to OUT beside it.
compare: per metric with per-image counts, ours minus each other arm over the recorded run's seeds and OUT's
together - the bootstrap over seeds and test images of the downstream summaries (``paired_difference``) and the t
interval over the seeds' own differences - with the seeds a half-width of 0.02 would take at this spread. Refused
in one line when OUT's arms are not the recorded run's (arms.json), when its test images differ, or when a seed in
both does not give the recorded figures again (the pairing check: rerun one recorded seed). ``--write``: the same
figures to OUT/paired-N.json, which ``results_report.py`` reads for docs/results.md and the README.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from support_arm import SEEDS_FILE, WORKER, checked_arms, init_worker, seeds_lines  # noqa: E402

from pipeline.config import Config, load_config  # noqa: E402
from pipeline.downstream import arms_root, paired_metric, run_counts, run_folder_config  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.evaluation.arm_layout import ARMS  # noqa: E402
from pipeline.evaluation.paired import paired_difference  # noqa: E402
from pipeline.evaluation.runs import train_and_score, worker_count  # noqa: E402
from pipeline.io import atomic_write_json, read_json  # noqa: E402

HALF_WIDTH = 0.02  # the target on person IoU


def _train(n: int, arm: str, seed: int) -> dict:
    cfg = WORKER["cfg"]
    figures, _ = train_and_score(cfg, arms_root(cfg, n), arm, "segmenter", seed, WORKER["test"],
                                 torch.device("cpu"), progress=False)
    return {"n": n, "arm": arm, "seed": seed, "threads": cfg.evaluate.downstream.threads, **figures}


def run(cfg: Config, n: int, arms: list[str], seeds: list[int], out: Path) -> None:
    root = arms_root(cfg, n)
    for arm in arms:
        if not (root / arm).is_dir():
            raise ConfigError(f"{root / arm}: missing (run `dvc repro arms@{n}`)")
    done = seeds_lines(out, n)
    jobs = [(arm, seed) for seed in seeds for arm in arms if (arm, seed) not in done]
    if not jobs:
        print(f"{out / SEEDS_FILE}: every arm and seed asked for is there")
        return
    if (out / "arms.json").is_file() and read_json(out / "arms.json") != read_json(root / "arms.json"):
        raise ConfigError(f"{out / 'arms.json'}: runs of other arms than {root} (a new OUT for these)")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "arms.json", out / "arms.json")  # what compare checks the pairing by
    dc = cfg.evaluate.downstream
    workers = worker_count(dc.workers, dc.threads, torch.device("cpu"), len(jobs))
    spawn = multiprocessing.get_context("spawn")  # as the downstream runs: a fresh interpreter, no forked OpenMP state
    with ProcessPoolExecutor(workers, mp_context=spawn, initializer=init_worker, initargs=(cfg,)) as pool:
        for line in pool.map(_train, [n] * len(jobs), *zip(*jobs, strict=True)):
            with open(out / SEEDS_FILE, "a") as f:
                f.write(json.dumps(line) + "\n")
            seg = line["segmenter"]
            print(f"{line['arm']} seed {line['seed']}: person IoU {seg['person_iou']:.4f}, car IoU "
                  f"{seg['car_iou']:.4f}, {line['seconds']:.0f} s", flush=True)


def seed_ratios(counts: np.ndarray) -> np.ndarray:
    """Per seed: the ratio of the summed counts over the test images ([seeds, images, 2] -> [seeds])."""
    sums = counts.sum(1)
    return np.divide(sums[:, 0], sums[:, 1], out=np.zeros(len(sums)), where=sums[:, 1] > 0)


def combined_counts(n: int, out: Path, against: Path) -> tuple[dict, list[int], Config]:
    """Per metric and arm of OUT, the recorded run's per-image counts followed by OUT's further seeds', as
    [seeds, images, 2]; the seeds in that order; the recorded run's params."""
    checked_arms(out, against, n)
    cfg = run_folder_config(against)
    recorded = run_counts(cfg, n)
    recorded_seeds = list(cfg.evaluate.downstream.seeds)
    lines = seeds_lines(out, n)
    arms = [a for a in ARMS if any(arm == a for arm, _ in lines)]
    if "ours" not in arms or len(arms) < 2:
        raise ConfigError(f"{out / SEEDS_FILE}: needs ours and at least one other arm (has {arms})")
    extra = sorted({s for _, s in lines if s not in recorded_seeds and all((a, s) in lines for a in arms)})
    for (arm, seed), line in lines.items():  # the pairing check: a recorded seed trained again gives its figures
        if seed in recorded_seeds:
            row = recorded[paired_metric("person")][arm][recorded_seeds.index(seed)]
            if not np.array_equal(row, np.array(line["per_image"]["person"], np.float64)):
                raise ConfigError(f"{out / SEEDS_FILE}: {arm} seed {seed} does not give the recorded run's person "
                                  f"counts again (other arms, code or threads than {against})")
    if not extra:
        raise ConfigError(f"{out / SEEDS_FILE}: no seed beyond the recorded run's with every one of {arms}")
    keys = {paired_metric(k): k for k in lines[("ours", extra[0])]["per_image"]}
    counts = {}
    for metric, per_arm in recorded.items():
        if metric not in keys:  # counted by the recorded run's code only
            continue
        key = keys[metric]
        more = {a: np.array([lines[(a, s)]["per_image"][key] for s in extra], np.float64) for a in arms}
        if any(m.shape[1:] != per_arm[a].shape[1:] for a, m in more.items()):
            raise ConfigError(f"{out / SEEDS_FILE}: {metric} counts other test images than {against}")
        counts[metric] = {a: np.concatenate([per_arm[a], more[a]]) for a in arms}
    return counts, recorded_seeds + extra, cfg


def paired_summary(n: int, out: Path, against: Path) -> dict:
    """Per metric, each arm's figure (the mean over seeds of its ratio of per-image sums) and ours minus each other
    arm: the bootstrap over seeds and test images with its half-width, the t interval over the seeds' own
    differences, and (IoU only: the target is in its units) the seeds a half-width of 0.02 would take."""
    counts, seeds, cfg = combined_counts(n, out, against)
    metrics = {}
    for metric, arms in counts.items():
        share = not metric.startswith("false_positives")
        paired = {}
        for other in (a for a in arms if a != "ours"):
            d = paired_difference(arms["ours"], arms[other], seed=cfg.seed, share=share)
            t = stats.ttest_1samp(seed_ratios(arms["ours"]) - seed_ratios(arms[other]), 0).confidence_interval(0.95)
            half = (d.high - d.low) / 2
            paired[f"ours_minus_{other}"] = d.to_json() | {
                "half_width": round(half, 4), "t_ci95": [round(float(t.low), 4), round(float(t.high), 4)],
                "seeds_needed": (int(np.ceil(len(seeds) * (half / HALF_WIDTH) ** 2))
                                 if metric.startswith("segmenter_iou_") else None)}
        metrics[metric] = {"mean": {a: round(float(seed_ratios(c).mean()), 4) for a, c in arms.items()},
                           "paired": paired}
    return {"size": n, "seeds": seeds, "recorded": against.name, "metrics": metrics}


def compare(n: int, out: Path, against: Path, write: bool = False) -> None:
    summary = paired_summary(n, out, against)
    seeds = summary["seeds"]
    print(f"{out} with {against}: N = {n}, {len(seeds)} seeds ({seeds[0]}-{seeds[-1]})")
    for metric, m in summary["metrics"].items():
        print(f"  {metric}: " + ", ".join(f"{a} {v:.4f}" for a, v in m["mean"].items()))
        for key, d in m["paired"].items():
            line = (f"    {key.replace('_minus_', ' minus ')}: {d['difference']:+.4f} bootstrap [{d['ci95'][0]:+.4f}, "
                    f"{d['ci95'][1]:+.4f}] (half-width {d['half_width']:.4f}), t over seeds "
                    f"[{d['t_ci95'][0]:+.4f}, {d['t_ci95'][1]:+.4f}]")
            if d["seeds_needed"] is not None:
                line += f"; seeds for +-{HALF_WIDTH}: about {d['seeds_needed']}"
            print(line)
    if write:
        atomic_write_json(out / summary_name(n), summary, indent=2)
        print(f"wrote {out / summary_name(n)}")


def summary_name(n: int) -> str:
    return f"paired-{n}.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and score the arms' segmenters at more seeds")
    r.add_argument("n", type=int)
    r.add_argument("seeds", type=int, nargs="+")
    r.add_argument("--arms", nargs="+", default=["ours", "subset"], choices=ARMS)
    r.add_argument("--params", default="params.yaml")
    c = sub.add_parser("compare", help="ours minus the other arms over the recorded seeds and these")
    c.add_argument("n", type=int)
    c.add_argument("--against", type=Path, required=True, help="the recorded run folder, e.g. "
                   "docs/runs/camvid-native-gan0")
    c.add_argument("--write", action="store_true", help="also write the figures to OUT/paired-N.json (what "
                   "docs/results.md and the README read)")
    for p in (r, c):
        p.add_argument("--out", type=Path, required=True, help="the further seeds' folder, e.g. runs/more-seeds")
    args = parser.parse_args()
    with reported_as_one_line():
        if args.command == "compare":
            compare(args.n, args.out, args.against, args.write)
        else:
            run(load_config(args.params), args.n, args.arms, args.seeds, args.out)


if __name__ == "__main__":
    main()
