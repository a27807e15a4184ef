"""benchmarks/segmenter_stability.py: how the downstream segmenter's training is chosen on a development split -
its summary's figures and its refusal of the test split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent


def test_the_segmenter_stability_summary_reads_failures_and_paired_seeds(tmp_path):
    """``segmenter_stability.py summary`` names the seeds that learned no person and gives ours' paired difference
    against each other arm with the t interval over seeds; ``run`` refuses to choose on the test split, and to
    start without the arms, in one line each."""
    script = ROOT / "benchmarks" / "segmenter_stability.py"
    subset, ours = [0.50, 0.01, 0.46, 0.48], [0.30, 0.25, 0.47, 0.44]
    records = [{"name": "base", "n": 40, "split": "val", "overrides": [], "steps": 300, "threads": 1, "arm": arm,
                "seed": seed, "person_iou": iou, "car_iou": 0.8, "miou": 0.6, "late_loss": 0.3,
                "person_recall_by_height": {}, "seconds": 60.0}
               for arm, ious in (("subset", subset), ("ours", ours)) for seed, iou in enumerate(ious)]
    out = tmp_path / "runs.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = subprocess.run([sys.executable, str(script), "--out", str(out), "summary"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "no person (< 0.05): [1]" in next(line for line in lines if line.strip().startswith("subset"))
    assert "no person (< 0.05): none" in next(line for line in lines if line.strip().startswith("ours "))
    diff = [o - s for o, s in zip(ours, subset, strict=True)]
    half = stats.t.ppf(0.975, 3) * np.std(diff, ddof=1) / 2
    paired = next(line for line in lines if "ours minus subset" in line)
    assert f"{np.mean(diff):+.3f}" in paired and f"[{np.mean(diff) - half:+.3f}, {np.mean(diff) + half:+.3f}]" in paired
    refused = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "x.jsonl"), "run", "x", "40",
                              "--split", "test"], capture_output=True, text=True, cwd=ROOT)
    assert refused.returncode == 1 and "--split test: that is evaluate.downstream.test_split" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "x.jsonl").exists()
    params = tmp_path / "params.yaml"  # the arms' folder of another N: none written there
    params.write_text((ROOT / "params.yaml").read_text().replace("out: data/downstream", f"out: {tmp_path / 'ds'}"))
    no_arms = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "x.jsonl"), "run", "x", "40",
                              "--params", str(params)], capture_output=True, text=True, cwd=ROOT)
    assert no_arms.returncode == 1 and "run `dvc repro arms@40` first" in no_arms.stderr, no_arms.stderr
    assert "Traceback" not in no_arms.stderr and not (tmp_path / "x.jsonl").exists()
