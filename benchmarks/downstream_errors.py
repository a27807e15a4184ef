"""Where ours' segmenter errs against each other arm: its IoU split into false-positive and missed pixels, and
its false blobs by what lies under them - the why behind a downstream difference.

    python benchmarks/downstream_errors.py docs/runs/builtin-steps600-gan0 [--size 40] [--class person]
    python benchmarks/downstream_errors.py .        # the workspace's own runs (dvc repro)

Reads the runs its ``params.yaml`` lists (``evaluate.downstream.seeds``): their per-image counts (``runs/N-SEED.json``,
or ``data/downstream/runs/`` in a workspace: each test image's [intersection, union] per arm and class) and their
figures (``metrics/downstream/N-SEED.json``).
Every arm is scored on the same test images, so the ground truth is the same in each: per image union minus
ground truth is the false-positive pixels and ground truth minus intersection the missed ones, and between two
arms they differ by the unions and (negated) the intersections. Printed per class: each arm's intersection,
union and pooled IoU (per seed, summed over the images); ours minus each arm in false-positive and missed pixels
per seed, with the t 95% interval over the seeds; the false blobs a frame and, per class under them, their
count per seed (``segmenter.false_positives``).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results_report import OURS_FIRST  # noqa: E402

from pipeline.downstream import METRICS_DIR, run_counts, run_folder_config, run_name  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.io import read_json  # noqa: E402


def run_files(folder: Path, size: int) -> tuple[list[dict], dict[str, dict[str, np.ndarray]]]:
    """The runs of ``size`` frames that ``folder``'s params list: per seed the figures, and per metric and arm the
    per-image counts as [seeds, images, 2] (``pipeline.downstream.run_counts``)."""
    if not (folder / "params.yaml").is_file():
        raise ConfigError(f"{folder}: no params.yaml: not a run folder")
    cfg = run_folder_config(folder)
    counts = run_counts(cfg, size)
    return recorded_figures(folder, size, cfg.evaluate.downstream.seeds), counts


def recorded_figures(folder: Path, size: int, seeds: list[int]) -> list[dict]:
    """The figures of ``folder``'s runs of ``size`` frames and the given seeds (``metrics/downstream/N-SEED.json``);
    a missing one is refused in one line."""
    figures = []
    for seed in seeds:
        path = folder / METRICS_DIR / f"{run_name(size, seed)}.json"
        if not path.is_file():
            raise ConfigError(f"{path}: missing (the figures of run {run_name(size, seed)})")
        figures.append(read_json(path))
    return figures


def t_cell(values: np.ndarray, digits: int = 0) -> str:
    """Mean and t 95% interval over seeds (in pixels: ``digits`` 0)."""
    if len(values) < 2 or np.ptp(values) == 0:  # one seed, or no spread: no interval to give
        return f"{values.mean():+.{digits}f}"
    ci = stats.ttest_1samp(values, 0).confidence_interval(0.95)
    return f"{values.mean():+.{digits}f} [{ci.low:+.{digits}f}, {ci.high:+.{digits}f}]"


def report(figures: list[dict], counts: dict[str, dict[str, np.ndarray]], cls: str) -> list[str]:
    """The printed lines for class ``cls`` of the runs ``run_files`` read."""
    iou = counts[f"segmenter_iou_{cls}"]
    # seeds x arms x (intersection, union), summed over the test images
    totals = np.stack([iou[a].sum(1) for a in OURS_FIRST], axis=1)
    images = iou["ours"].shape[1]
    lines = [f"{cls}: {len(figures)} seeds, {images} test images; pixels per seed, summed over the images"]
    for k, arm in enumerate(OURS_FIRST):
        inter, union = totals[:, k].mean(0)
        lines.append(f"  {arm}: intersection {inter:.0f}, union {union:.0f}, pooled IoU {inter / union:.4f}")
    for k, arm in enumerate(OURS_FIRST[1:], start=1):
        extra_fp = totals[:, 0, 1] - totals[:, k, 1]
        extra_missed = totals[:, k, 0] - totals[:, 0, 0]
        lines.append(f"  ours minus {arm}: false-positive pixels {t_cell(extra_fp)}, "
                     f"missed pixels {t_cell(extra_missed)}")
    under = {a: Counter() for a in OURS_FIRST}
    per_frame = {a: 0.0 for a in OURS_FIRST}
    for run in figures:
        for a in OURS_FIRST:
            fp = run["arms"][a]["segmenter"]["false_positives"][cls]
            under[a].update(fp["under"])
            per_frame[a] += fp["per_frame"] / len(figures)
    lines.append("  false blobs a frame: " + ", ".join(f"{a} {per_frame[a]:.2f}" for a in OURS_FIRST))
    lines.append("  under them, blobs per seed: " + " / ".join(OURS_FIRST))
    for what in sorted(set().union(*under.values()), key=lambda w: -under["ours"][w]):
        lines.append(f"    {what}: " + " / ".join(f"{under[a][what] / len(figures):.0f}" for a in OURS_FIRST))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a recorded run folder (docs/runs/NAME) or a workspace root")
    parser.add_argument("--size", type=int, default=40, help="the subset size N of the runs (default 40)")
    parser.add_argument("--class", dest="classes", action="append", choices=["person", "car"],
                        help="the class to report (repeatable; default both)")
    args = parser.parse_args()
    with reported_as_one_line():
        figures, counts = run_files(args.folder, args.size)
        for cls in args.classes or ["person", "car"]:
            print("\n".join(report(figures, counts, cls)))


if __name__ == "__main__":
    main()
