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
docs/results.md and the README's summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.downstream import replicated_differences, run_folder_config  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.io import atomic_write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="recorded run folders, one per replicate (2 or more)")
    parser.add_argument("--size", type=int, required=True, help="the subset size N the replicates share")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    args = parser.parse_args()
    with reported_as_one_line():
        if len(args.folders) < 2:
            raise ConfigError("replicates_summary: give 2 or more run folders")
        cfgs = {folder.name: run_folder_config(folder) for folder in args.folders}
        summary = {"size": args.size} | replicated_differences(cfgs, args.size)
        atomic_write_json(args.out, summary, indent=2)
    for metric in ("segmenter_iou_person", "segmenter_iou_car"):
        for other, row in summary["metrics"].get(metric, {}).get("paired", {}).items():
            print(f"N = {args.size}, {len(cfgs)} replicates, {metric}, {other}: {row['difference']:+.4f} "
                  f"bootstrap [{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}], t [{row['t_ci95'][0]:+.4f}, "
                  f"{row['t_ci95'][1]:+.4f}], per replicate {row['per_replicate']}, per seed {row['per_seed']}; "
                  f"for +-0.02: {row['seeds_needed'] or '-'} seeds at {len(cfgs)} replicates, "
                  f"{row['replicates_needed'] or '-'} replicates at {row['seeds']} seeds")


if __name__ == "__main__":
    main()
