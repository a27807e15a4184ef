"""The downstream runs over seeds as Markdown tables: each arm's mean +- std, ours' verdicts.

    python benchmarks/downstream_report.py [--sizes 20 40] [--seeds 0 1 2] [--runs metrics/downstream]

Reads ``metrics/downstream/N-SEED.json`` (the ``downstream@N-SEED`` stages; sizes and seeds default to
``params.yaml``'s) and prints one table per subset size: per metric each arm's mean +- standard deviation
over the seeds, and ours' verdict against copy_paste and rules (``beats`` / ``loses`` by more than two
standard deviations, else ``within``; the paired t-test's p in brackets) - the figures the README quotes.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pipeline.config import load_config
from pipeline.downstream import METRICS_DIR, summarize_runs
from pipeline.evaluation.arm_layout import ARMS
from pipeline.evaluation.seeds import BASELINES


def cell(row: dict) -> str:
    if row["mean"] is None:
        return "-"
    digits = 4 if abs(row["mean"]) < 0.01 else 3  # the out-of-context pixel rates are small
    return f"{row['mean']:.{digits}f}" + (f" +- {row['std']:.{digits}f}" if row["std"] is not None else "")


def word(v: dict) -> str:
    short = {"within 2 std": "within", "too few seeds": "-"}.get(v["verdict"], v["verdict"])
    return short + (f" (p {v['p']:.2f})" if v.get("p") is not None else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--runs", type=Path, default=METRICS_DIR)
    args = parser.parse_args()
    cfg = load_config("params.yaml")
    dc = cfg.evaluate.downstream
    dc = dataclasses.replace(dc, sizes=args.sizes or dc.sizes, seeds=args.seeds or dc.seeds)
    cfg = dataclasses.replace(cfg, evaluate=dataclasses.replace(cfg.evaluate, downstream=dc))
    for n, summary in summarize_runs(cfg, args.runs).items():
        print(f"\nN = {n} training frames, seeds {summary['seeds']}, {summary['test_frames']} test frames "
              f"({summary['split']}); training frames per arm {summary['train_frames']}\n")
        print("| metric | " + " | ".join(ARMS) + " | ours vs " + " | ours vs ".join(BASELINES) + " |")
        print("|---" * (1 + len(ARMS) + len(BASELINES)) + "|")
        for metric, row in summary["metrics"].items():
            cells = [cell(row[a]) for a in ARMS] + [word(row[f"ours_vs_{b}"]) for b in BASELINES]
            print(f"| {metric} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
