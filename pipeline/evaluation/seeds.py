"""The downstream figures over seeds: mean, standard deviation, and ours' verdict against each baseline.

A verdict says what a reader may claim: ``beats`` / ``loses`` when ours' mean is better / worse than the
baseline's by more than twice the larger of the two standard deviations (ddof 1), else ``within 2 std``.
Beside it, the paired t-test's p (the same seed trains every arm from the same initial weights and
batches, so seeds pair up; scipy's ``ttest_rel``). For the context probe's out-of-context rates,
look-alikes and false positives lower is better; for every other metric higher is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

from pipeline.evaluation.instances import TALL, recall_share

BASELINES = ("copy_paste", "rules")


def _recall(name: str, tall: bool) -> Callable[[dict], float | None]:
    """Reads an arm's recall of ``name`` objects at least (``tall``) or under ``TALL`` px from its figures."""
    return lambda figures: recall_share(figures.get("segmenter", {}).get("recall_by_height", {}), name, tall)


# The metrics reported over seeds, with how to read them from one run's figures of an arm: a path of keys, or a
# function of the arm's figures.
METRICS: dict[str, tuple[str, ...] | Callable[[dict], float | None]] = {
    "detector_mask_ap50_person": ("detector", "scores", "person", "mask_ap50"),
    "detector_mask_ap50_car": ("detector", "scores", "car", "mask_ap50"),
    "detector_box_ap50_person": ("detector", "scores", "person", "box_ap50"),
    "detector_box_ap50_car": ("detector", "scores", "car", "box_ap50"),
    "detector_mask_ap_person": ("detector", "scores", "person", "mask_ap"),
    "detector_mask_ap_car": ("detector", "scores", "car", "mask_ap"),
    "detector_ar_small_person": ("detector", "scores", "person", "ar_small"),
    "detector_ar_small_car": ("detector", "scores", "car", "ar_small"),
    "segmenter_iou_person": ("segmenter", "person_iou"),
    "segmenter_iou_car": ("segmenter", "car_iou"),
    "segmenter_miou": ("segmenter", "miou"),
    "out_of_context_pixels_person": ("segmenter", "person_out_of_context_pixels"),
    "out_of_context_pixels_car": ("segmenter", "car_out_of_context_pixels"),
    "out_of_context_detections_person": ("detector", "person_out_of_context_detections"),
    "out_of_context_detections_car": ("detector", "car_out_of_context_detections"),
    # The built-in test frames' look-alikes (posters, mannequins, statues): share of their figures' pixels
    # labelled as the class they show.
    "lookalike_pixels_person": ("segmenter", "lookalikes", "person", "pixel_share"),
    "lookalike_pixels_car": ("segmenter", "lookalikes", "car", "pixel_share"),
    # The instance figures (``instances.py``): recall of the objects at least and under TALL px tall (at the
    # segmenter's size), and false-positive components per frame.
    **{f"recall_{TALL}px_up_{c}": _recall(c, tall=True) for c in ("person", "car")},
    **{f"recall_under_{TALL}px_{c}": _recall(c, tall=False) for c in ("person", "car")},
    "false_positives_person": ("segmenter", "false_positives", "person", "per_frame"),
    "false_positives_car": ("segmenter", "false_positives", "car", "per_frame"),
}


def lower_is_better(metric: str) -> bool:
    return metric.startswith(("out_of_context", "lookalike", "false_positives"))


def read_metric(figures: dict, metric: str) -> float | None:
    spec = METRICS[metric]
    if callable(spec):
        return spec(figures)
    node = figures
    for key in spec:
        node = node.get(key) if isinstance(node, dict) else None
    return None if node is None else float(node)


def mean_std(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof 1; None with fewer than two values)."""
    return {"mean": round(float(np.mean(values)), 4) if values else None,
            "std": round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None,
            "n": len(values)}


def verdict(ours: list[float], other: list[float], lower_better: bool = False) -> dict:
    """Ours against a baseline over paired seeds (see the module docstring)."""
    if len(ours) < 2 or len(other) < 2:
        return {"verdict": "too few seeds", "difference": None, "p": None}
    diff = float(np.mean(ours) - np.mean(other))
    spread = 2 * max(float(np.std(ours, ddof=1)), float(np.std(other, ddof=1)))
    better = -diff if lower_better else diff
    word = "beats" if better > spread else "loses" if better < -spread else "within 2 std"
    p = None
    differences = np.round(np.subtract(ours, other), 6)  # figures carry 4-6 decimals: equal means equal
    if len(ours) == len(other) and np.ptp(differences) > 0:
        p = float(stats.ttest_rel(ours, other).pvalue)
    return {"verdict": word, "difference": round(diff, 4), "two_std": round(spread, 4),
            "p": None if p is None or math.isnan(p) else round(p, 4)}


def summarize(runs: dict[int, dict[str, dict]]) -> dict:
    """``runs``: seed -> arm -> one run's figures (``runs.run_arms``). Per metric: each arm's mean and std
    over the seeds, and ours' verdict against each baseline. A seed whose figure is None (e.g. no
    confident detection to rate) is left out of that metric for every arm, keeping the seeds paired."""
    arms = sorted({arm for figures in runs.values() for arm in figures})
    out: dict = {"seeds": sorted(runs), "metrics": {}}
    for metric in METRICS:
        values = {arm: {seed: read_metric(runs[seed][arm], metric) for seed in runs if arm in runs[seed]}
                  for arm in arms}
        seeds = [s for s in sorted(runs) if all(values[arm].get(s) is not None for arm in arms)]
        if not any(v is not None for arm in arms for v in values[arm].values()):
            continue  # a model the runs did not train (the detector unless enabled)
        row: dict = {arm: mean_std([values[arm][s] for s in seeds]) for arm in arms}
        if "ours" in values:
            for base in BASELINES:
                if base in values:
                    row[f"ours_vs_{base}"] = verdict([values["ours"][s] for s in seeds],
                                                     [values[base][s] for s in seeds], lower_is_better(metric))
        out["metrics"][metric] = row
    return out


def plot_rows(summary: dict, metric: str) -> list[dict]:
    """One DVC plot's rows: per arm the mean and the band mean +- std (std 0 with one seed)."""
    rows = []
    for arm, cell in summary["metrics"][metric].items():
        if arm.startswith("ours_vs_") or cell["mean"] is None:
            continue
        std = cell["std"] or 0.0
        rows.append({"arm": arm, "mean": cell["mean"], "low": round(cell["mean"] - std, 4),
                     "high": round(cell["mean"] + std, 4), "seeds": cell["n"]})
    return rows
