"""benchmarks/downstream_errors.py: ours' IoU difference split into false-positive and missed pixels, and the false
blobs by what lies under them, from a run folder's per-image counts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "downstream_errors.py"
ARMS = ("subset", "ours", "copy_paste", "rules")


def write_run(folder: Path, seed: int, counts: dict[str, list[list[int]]], under: dict[str, dict[str, int]]) -> None:
    """One recorded run of N = 40: per arm the per-image [intersection, union] of persons (cars a constant) and
    the false person blobs by what lies under them."""
    (folder / "metrics" / "downstream").mkdir(parents=True, exist_ok=True)
    (folder / "runs").mkdir(exist_ok=True)
    per_image = {a: {"person": counts[a], "car": [[90, 100], [90, 100]]} for a in ARMS}
    (folder / "runs" / f"40-{seed}.json").write_text(json.dumps({"seed": seed, "arms": per_image}))
    fp = {a: {"person": {"per_frame": sum(under[a].values()) / 2, "under": under[a]},
              "car": {"per_frame": 0.0, "under": {}}} for a in ARMS}
    figures = {"seed": seed, "arms": {a: {"segmenter": {"false_positives": fp[a]}} for a in ARMS}}
    (folder / "metrics" / "downstream" / f"40-{seed}.json").write_text(json.dumps(figures))


def test_the_error_split_reads_extra_false_positives_and_misses(tmp_path):
    """Two test images, ground truth 100 + 50 person pixels. Ours finds every pixel and paints 30 + 10 false ones;
    copy-paste misses 20 and paints 10: ours minus copy-paste is +30 false-positive and -20 missed pixels."""
    truth = (100, 50)

    def image_counts(found: tuple[int, int], false: tuple[int, int]) -> list[list[int]]:
        return [[f, t + fp] for f, t, fp in zip(found, truth, false, strict=True)]

    counts = {"ours": image_counts((100, 50), (30, 10)), "subset": image_counts((90, 40), (0, 0)),
              "copy_paste": image_counts((80, 50), (10, 0)), "rules": image_counts((100, 50), (30, 10))}
    under = {"ours": {"sidewalk": 3, "building": 1}, "subset": {"building": 1}, "copy_paste": {"building": 2},
             "rules": {"sidewalk": 2}}
    for seed in (0, 1):
        write_run(tmp_path, seed, counts, under)
    params = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(re.sub(r"(?m)^    seeds: \[[0-9, ]*\]", "    seeds: [0, 1]", params, count=1))
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--class", "person"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("person: 2 seeds, 2 test images")
    assert "pooled IoU 0.7895" in next(line for line in lines if line.strip().startswith("ours:"))  # 150 / 190
    cp = next(line for line in lines if "ours minus copy_paste" in line)
    assert "false-positive pixels +30" in cp and "missed pixels -20" in cp
    rules = next(line for line in lines if "ours minus rules" in line)
    assert "false-positive pixels +0" in rules and "missed pixels +0" in rules
    blobs = next(line for line in lines if "blobs a frame" in line)
    assert "ours 2.00, subset 0.50, copy_paste 1.00, rules 1.00" in blobs
    assert next(line for line in lines if line.strip().startswith("sidewalk:")).split(":")[1].strip() == "3 / 0 / 0 / 2"


def test_the_error_split_refuses_a_folder_without_runs_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "not a run folder" in result.stderr
    assert "Traceback" not in result.stderr
