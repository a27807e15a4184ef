"""The placement figures of one or more pipeline runs as one markdown table, a column per run and class.

    python benchmarks/placement_report.py RUN [RUN ...]

RUN is a project folder (or a `dvc exp` workspace) holding `metrics/evaluate.json` and `metrics/prepare.json`
as the stages wrote them, e.g. the CamVid profile run with two training seeds. Rows, the model's raw figures
first: raw where samples (no rule applied) beside random boxes and the data's own objects as boxes (the
ceiling), each with its 95% interval over frames where the run measured one, the raw share over the
ceiling with its paired interval, the augment stage's acceptance, the inserted objects beside random copies
of their shapes and the real objects (as masks), the median heights (and the train objects'), the median
scale where they stand (height over the ground plane's at the contact row: equal scales with unequal heights
mean other rows), shape diversity against real pairs, and what prepare dropped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml


def load(run: Path, name: str) -> dict:
    path = run / "metrics" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def share(row: dict | None) -> str:
    """The plausible share, with its 95% interval over the frames where the run measured one."""
    if not row:
        return "-"
    ci = row.get("plausible_ci95")
    return f"{row['plausible']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def raw_over_real(p: dict) -> str:
    """The raw samples' plausible share over the real objects', with its paired 95% interval where measured."""
    row = p.get("raw_over_real")
    if row and row.get("ratio") is not None:
        ci = row.get("ci95")
        return f"{row['ratio']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    if p.get("raw_where") and p.get("real_boxes"):  # a run of older code: no interval
        return f"{p['raw_where']['plausible'] / p['real_boxes']['plausible']:.2f}"
    return "-"


def placement_table(runs: list[Path]) -> list[str]:
    """The table (a column per run and class) and the prepare notes, as lines of markdown."""
    columns, rows, notes = [], {}, []
    for run in runs:
        ev, prep = load(run, "evaluate"), load(run, "prepare")
        params = yaml.safe_load((run / "params.yaml").read_text()) if (run / "params.yaml").is_file() else {}
        seed = params.get("seed", "-")
        for name, p in ev.get("placement", {}).items():
            columns.append(f"{name} ({run.name})")
            f = p.get("filtered", {})
            d = ev.get("diversity", {}).get(name, {})
            heights = f.get("median_height", {})
            cells = {
                "raw where samples, plausible": share(p.get("raw_where")),
                "random boxes": share(p.get("random_boxes")),
                "real objects as boxes (ceiling)": share(p.get("real_boxes")),
                "raw / real [95% interval, frames resampled]": raw_over_real(p),
                "acceptance": "-" if p.get("acceptance_rate") is None else f"{p['acceptance_rate']:.3f}",
                "inserted objects (filtered)": share(f.get("ours")),
                "random copies of their shapes": share(f.get("random")),
                "real objects as masks": share(f.get("real")),
                "median height inserted / real (px)": (f"{heights['ours']:.0f} / {heights['real']:.0f}"
                                                       if {"ours", "real"} <= set(heights) else "-"),
                "median width / height inserted / real": (
                    f"{f['median_aspect']['ours']:.2f} / {f['median_aspect']['real']:.2f}"
                    if {"ours", "real"} <= set(f.get("median_aspect", {})) else "-"),
                "median scale at contact row inserted / real": (
                    f"{f['median_scale']['ours']:.2f} / {f['median_scale']['real']:.2f}"
                    if {"ours", "real"} <= set(f.get("median_scale", {})) else "-"),
                "median height of the train objects (px)": (
                    f"{prep['splits']['train']['median_height'][name]:.0f}"
                    if name in prep.get("splits", {}).get("train", {}).get("median_height", {}) else "-"),
                "shape IoU over z / real pairs": (f"{d['shape_iou_within']:.3f} / {d['shape_iou_real']:.3f}"
                                                  if "shape_iou_within" in d else "-"),
                "seed": str(seed),
            }
            for key, value in cells.items():
                rows.setdefault(key, []).append(value)
        for split, info in prep.get("splits", {}).items():
            notes.append(f"prepare ({run.name}) {split}: kept {info['instances']}, dropped {info['rejected']}")
    return ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|",
            *(f"| {key} | " + " | ".join(values) + " |" for key, values in rows.items()), "",
            *(f"- {note}" for note in notes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    print("\n".join(placement_table(parser.parse_args().runs)))


if __name__ == "__main__":
    main()
