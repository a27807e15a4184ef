"""Where ours' segmenter errs against each other arm: its IoU split into false-positive and missed pixels, and
its false blobs by what lies under them - the why behind a downstream difference.

    python benchmarks/downstream_errors.py docs/runs/builtin-steps600-gan0 [--size 40] [--class person]
    python benchmarks/downstream_errors.py .        # the workspace's own runs (dvc repro)

Reads a run folder's per-image counts (``runs/N-SEED.json``, or ``data/downstream/runs/`` in a workspace: each
test image's [intersection, union] per arm and class) and the runs' figures (``metrics/downstream/N-SEED.json``).
Every arm is scored on the same test images, so the ground truth is the same in each: per image union minus
ground truth is the false-positive pixels and ground truth minus intersection the missed ones, and between two
arms they differ by the unions and (negated) the intersections. Printed per class: each arm's intersection,
union and pooled IoU (per seed, summed over the images); ours minus each arm in false-positive and missed pixels
per seed, with the t 95% interval over the seeds; the false blobs a frame and, per class under them, their
count per seed (``segmenter.false_positives``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.evaluation.arm_layout import ARMS  # noqa: E402

OURS_FIRST = ("ours", *(a for a in ARMS if a != "ours"))


def run_files(folder: Path, size: int) -> list[tuple[dict, dict]]:
    """Per seed the (figures, per-image counts) of ``folder``'s runs of ``size`` frames, in seed order."""
    metrics = folder / "metrics" / "downstream"
    images = next((d for d in (folder / "runs", folder / "data" / "downstream" / "runs") if d.is_dir()), None)
    if not metrics.is_dir() or images is None:
        raise ConfigError(f"{folder}: no metrics/downstream/ and runs/ (or data/downstream/runs/): not a run folder")
    seeds = sorted(int(p.stem.split("-")[1]) for p in metrics.glob(f"{size}-*.json"))
    if not seeds:
        raise ConfigError(f"{metrics}: no runs of N = {size}")
    pairs = []
    for s in seeds:
        counts = images / f"{size}-{s}.json"
        if not counts.is_file():
            raise ConfigError(f"{counts}: missing (the per-image counts of run {size}-{s})")
        pairs.append((json.loads((metrics / f"{size}-{s}.json").read_text()), json.loads(counts.read_text())))
    return pairs


def t_cell(values: np.ndarray) -> str:
    """Mean and t 95% interval over seeds, in pixels."""
    if len(values) < 2 or np.ptp(values) == 0:  # one seed, or no spread: no interval to give
        return f"{values.mean():+.0f}"
    ci = stats.ttest_1samp(values, 0).confidence_interval(0.95)
    return f"{values.mean():+.0f} [{ci.low:+.0f}, {ci.high:+.0f}]"


def report(pairs: list[tuple[dict, dict]], cls: str) -> list[str]:
    """The printed lines for class ``cls``."""
    # seeds x arms x (intersection, union), summed over the test images
    totals = np.array([[np.asarray(counts["arms"][a][cls], float).sum(0) for a in OURS_FIRST] for _, counts in pairs])
    images = len(pairs[0][1]["arms"]["ours"][cls])
    lines = [f"{cls}: {len(pairs)} seeds, {images} test images; pixels per seed, summed over the images"]
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
    for figures, _ in pairs:
        for a in OURS_FIRST:
            fp = figures["arms"][a]["segmenter"]["false_positives"][cls]
            under[a].update(fp["under"])
            per_frame[a] += fp["per_frame"] / len(pairs)
    lines.append("  false blobs a frame: " + ", ".join(f"{a} {per_frame[a]:.2f}" for a in OURS_FIRST))
    lines.append("  under them, blobs per seed: " + " / ".join(OURS_FIRST))
    for what in sorted(set().union(*under.values()), key=lambda w: -under["ours"][w]):
        lines.append(f"    {what}: " + " / ".join(f"{under[a][what] / len(pairs):.0f}" for a in OURS_FIRST))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a recorded run folder (docs/runs/NAME) or a workspace root")
    parser.add_argument("--size", type=int, default=40, help="the subset size N of the runs (default 40)")
    parser.add_argument("--class", dest="classes", action="append", choices=["person", "car"],
                        help="the class to report (repeatable; default both)")
    args = parser.parse_args()
    with reported_as_one_line():
        pairs = run_files(args.folder, args.size)
        for cls in args.classes or ["person", "car"]:
            print("\n".join(report(pairs, cls)))


if __name__ == "__main__":
    main()
