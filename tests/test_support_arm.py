"""benchmarks/support_arm.py: the rules arm with its persons' ground narrowed, read against a recorded run seed by
seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from pipeline.config import Config
from pipeline.labels import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "support_arm.py"
ARMS = ("subset", "ours", "copy_paste", "rules")


def test_the_narrowed_rules_let_persons_stand_only_on_the_ground_given():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from support_arm import ground_only
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    person, car, sidewalk = (BY_NAME[n].id for n in ("person", "car", "sidewalk"))
    relocate = ground_only(["sidewalk"])(None, Config(), rules=True)
    assert relocate.rules.support[person] == frozenset({sidewalk})
    assert relocate.rules.support[car] == frozenset({BY_NAME["road"].id, BY_NAME["parking"].id})
    assert ground_only(["sidewalk"])(None, Config()).rules is None  # the copy-paste arm has no rules to narrow


def segmenter(person: float, under: dict[str, int]) -> dict:
    return {"person_iou": person, "car_iou": 0.9, "false_positives": {"person": {"under": under}}}


def test_compare_reads_the_arm_against_the_recorded_arms_of_the_same_seeds(tmp_path):
    """Three seeds: the variant's person IoU minus the recorded rules' with the t interval over the seeds, and its
    false person blobs by ground beside each recorded arm's."""
    variant, rules = [0.55, 0.57, 0.52], [0.60, 0.59, 0.58]
    out, recorded = tmp_path / "variant", tmp_path / "recorded"
    out.mkdir()
    (recorded / "metrics" / "downstream").mkdir(parents=True)
    lines = [{"n": 40, "arm": "rules", "seed": s, "segmenter": segmenter(v, {"sidewalk": 9 + s})}
             for s, v in enumerate(variant)]
    (out / "runs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    for s, r in enumerate(rules):
        arms = {a: {"segmenter": segmenter(0.5, {"road": 2})} for a in ARMS}
        arms["rules"] = {"segmenter": segmenter(r, {"road": 4, "sidewalk": 3})}
        (recorded / "metrics" / "downstream" / f"40-{s}.json").write_text(json.dumps({"seed": s, "arms": arms}))
    result = subprocess.run([sys.executable, str(SCRIPT), "compare", "40", "--out", str(out), "--against",
                             str(recorded)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    d = np.subtract(variant, rules)
    ci = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    person = next(line for line in result.stdout.splitlines() if "person IoU" in line)
    assert f"minus rules ({np.mean(rules):.4f}) {d.mean():+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]" in person
    assert "minus ours (0.5000) +0.047" in person
    blobs = result.stdout.split("what lies under them")[1].splitlines()
    assert "    sidewalk: 10 / 0 / 0 / 0 / 3" in blobs and "    road: 0 / 2 / 2 / 2 / 4" in blobs
    missing = subprocess.run([sys.executable, str(SCRIPT), "compare", "40", "--out", str(out), "--against",
                              str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1 and "40-0.json: missing" in missing.stderr


def test_the_recorded_variant_reads_as_the_docs_quote_it():
    """docs/runs/builtin-steps600-support-sidewalk against builtin-steps600-gan0: the difference to the rules and the
    false blobs on road and sidewalk that docs/history.md quotes are what ``compare`` prints of the recorded lines."""
    runs = ROOT / "docs" / "runs"
    result = subprocess.run([sys.executable, str(SCRIPT), "compare", "40", "--out",
                             str(runs / "builtin-steps600-support-sidewalk"), "--against",
                             str(runs / "builtin-steps600-gan0")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "seeds [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]" in result.stdout
    assert "minus rules (0.5886) -0.035 [-0.045, -0.025]" in result.stdout
    assert "    road: 56 / 58 / 77 / 75 / 87" in result.stdout
    assert "    sidewalk: 154 / 85 / 155 / 65 / 107" in result.stdout
    history = (ROOT / "docs" / "history.md").read_text()
    assert "-0.035 [-0.045, -0.025]" in history and "on road 56 (the rules' 87)" in " ".join(history.split())
