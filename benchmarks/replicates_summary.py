"""The downstream experiment over replicates: the same N-frame runs repeated with GANs trained afresh.

    python benchmarks/replicates_summary.py docs/runs/camvid-steps1200 docs/runs/camvid-gan1 \
        docs/runs/camvid-gan2 --size 25 --out docs/runs/camvid-replicates-25.json

Each FOLDER is one replicate - one GAN training with its own random draws of the arms, scored on the same
test images as the others: a recorded run (docs/runs/README.md: its params.yaml and its runs' per-image counts
FOLDER/runs/N-SEED.json) or a workspace where `dvc repro` ran (its params.yaml, the counts under its
`evaluate.downstream.out`). The replicates must share their seeds (seed s: the same initial weights and batches in
each), so replicates and seeds are read as crossed random factors. Writes, per metric, each arm's figure over the
replicates and ours minus each other arm with the 95% interval of the bootstrap over replicates, seeds and images,
the two-way t interval of the replicates x seeds table, each replicate's and seed's difference, the variance
components and (IoU) the seeds and replicates a +-0.02 interval would take
(``pipeline.downstream.replicated_differences``); benchmarks/results_report.py reads the file for
docs/results.md and the README's summary. ``--plan 5x30`` (repeatable) prints, for IoU, the t interval's
half-width a design of 5 replicates x 30 seeds would have at the measured variance components
(``ReplicatedDifference.half_width``), to choose the next replicates and seeds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.downstream import replicated_differences, run_folder_config  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.evaluation.paired import planned_half_width  # noqa: E402
from pipeline.io import atomic_write_json  # noqa: E402

IOU = ("segmenter_iou_person", "segmenter_iou_car")


def design(text: str) -> tuple[int, int]:
    """``RxS``: R replicates (2 or more) x S seeds (2 or more)."""
    try:
        reps, seeds = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not REPLICATESxSEEDS, e.g. 5x30") from None
    if reps < 2 or seeds < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: 2 or more replicates and 2 or more seeds")
    return reps, seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="recorded run folders, one per replicate (2 or more)")
    parser.add_argument("--size", type=int, required=True, help="the subset size N the replicates share")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--plan", type=design, action="append", default=[], metavar="RxS",
                        help="also print the IoU t half-width of R replicates x S seeds at the measured components")
    args = parser.parse_args()
    with reported_as_one_line():
        if len(args.folders) < 2:
            raise ConfigError("replicates_summary: give 2 or more run folders")
        cfgs = {folder.name: run_folder_config(folder) for folder in args.folders}
        summary = {"size": args.size} | replicated_differences(cfgs, args.size)
        atomic_write_json(args.out, summary, indent=2)
    for metric in IOU:
        for other, row in summary["metrics"].get(metric, {}).get("paired", {}).items():
            print(f"N = {args.size}, {len(cfgs)} replicates, {metric}, {other}: {row['difference']:+.4f} "
                  f"bootstrap [{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}], t [{row['t_ci95'][0]:+.4f}, "
                  f"{row['t_ci95'][1]:+.4f}], per replicate {row['per_replicate']}, per seed {row['per_seed']}; "
                  f"for +-0.02: {row['seeds_needed'] or '-'} seeds at {len(cfgs)} replicates, "
                  f"{row['replicates_needed'] or '-'} replicates at {row['seeds']} seeds")
            for reps, seeds in args.plan:
                half = planned_half_width(row["variance_components"], reps, seeds)
                print(f"  plan {reps}x{seeds}: +-{half:.4f}")


if __name__ == "__main__":
    main()
