"""The downstream summary of a recorded run folder (docs/runs/NAME), as the evaluate stage makes it.

    python benchmarks/recorded_runs_summary.py docs/runs/builtin-gpu

Reads NAME/params.yaml (its evaluate.downstream sizes and seeds), the runs' figures NAME/metrics/downstream/N-SEED.json
and their per-image counts NAME/runs/N-SEED.json; writes the per-arm figures over seeds and the paired differences
with their 95% intervals (``pipeline.downstream.summarize_runs``) to NAME/metrics/evaluate.json, key ``downstream``
(the file's other keys - a recorded run's placement figures - are kept), which benchmarks/results_report.py reads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.downstream import run_folder_config, summarize_runs  # noqa: E402
from pipeline.errors import reported_as_one_line  # noqa: E402
from pipeline.io import atomic_write_json, read_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a recorded run folder, e.g. docs/runs/builtin-gpu")
    args = parser.parse_args()
    with reported_as_one_line():
        cfg = run_folder_config(args.folder)  # per-image counts: FOLDER/runs
        summary = summarize_runs(cfg, args.folder / "metrics" / "downstream")
        path = args.folder / "metrics" / "evaluate.json"
        kept = read_json(path) if path.is_file() else {}
        atomic_write_json(path, kept | {"downstream": summary}, indent=2)
    for n, s in summary.items():
        for name, rows in s["paired"].items():
            for other, row in rows.items():
                print(f"N = {n}, {len(s['seeds'])} seeds, {name}, {other}: {row['difference']:+.4f} "
                      f"[{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}]")


if __name__ == "__main__":
    main()
