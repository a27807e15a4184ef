"""Plausibility of an augment run's inserted objects against random placement of the same shapes.

    python benchmarks/inserted_placement_report.py [--out data/augmented] [--random 4]

Reads ``params.yaml`` (the dataset the run augmented) and the run's ``manifest.jsonl``.
"""

from __future__ import annotations

import argparse
import json

from pipeline.config import load_config
from pipeline.evaluation.inserted import evaluate_inserted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="augment output folder (default: augment.out)")
    parser.add_argument("--random", type=int, default=4, help="random placements per inserted object")
    args = parser.parse_args()
    print(json.dumps(evaluate_inserted(load_config("params.yaml"), args.out, args.random), indent=2))


if __name__ == "__main__":
    main()
