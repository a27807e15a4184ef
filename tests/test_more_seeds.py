"""benchmarks/more_seeds.py: further seeds of some arms read with a recorded run's seeds, paired seed by seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.evaluation.paired import paired_difference

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "more_seeds.py"
ARMS = ("subset", "ours", "copy_paste", "rules")
IMAGES = 5


def person_counts(rng: np.random.Generator, iou: float) -> list[list[int]]:
    union = rng.integers(50, 200, IMAGES)
    return [[int(u * iou * rng.uniform(0.8, 1.0)), int(u)] for u in union]


def recorded_folder(path: Path, rng: np.random.Generator, seeds: list[int]) -> dict:
    """A recorded run's folder as the downstream stages leave it: params naming the seeds, per-image counts per
    seed and arm, the arms' arms.json."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["evaluate"]["downstream"] |= {"sizes": [25], "seeds": seeds}
    (path / "runs").mkdir(parents=True)
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    (path / "arms" / "25").mkdir(parents=True)
    (path / "arms" / "25" / "arms.json").write_text(json.dumps({"inserted": {"ours": {"person": 7}}}))
    counts = {}
    for s in seeds:
        arms = {a: {"person": person_counts(rng, 0.3 + 0.05 * i)} for i, a in enumerate(ARMS)}
        (path / "runs" / f"25-{s}.json").write_text(json.dumps({"seed": s, "arms": arms}))
        counts[s] = arms
    return counts


def further(path: Path, lines: list[dict], arms_json: Path) -> None:
    path.mkdir()
    (path / "seeds.jsonl").write_text("".join(json.dumps({"n": 25, **line}) + "\n" for line in lines))
    (path / "arms.json").write_text(arms_json.read_text())


def compare(out: Path, against: Path, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "compare", "25", "--out", str(out), "--against", str(against),
                           *more], capture_output=True, text=True, cwd=ROOT)


def test_further_seeds_join_the_recorded_ones_in_the_paired_interval(tmp_path):
    """Recorded seeds 0-1 with four arms, further seeds 2-4 of ours and the subset (and seed 0 again, the pairing
    check): ours minus the subset is the bootstrap over all five seeds, the arms that have no further seeds are
    not read."""
    rng = np.random.default_rng(0)
    recorded = recorded_folder(tmp_path / "recorded", rng, [0, 1])
    lines = [{"arm": a, "seed": 0, "per_image": recorded[0][a]} for a in ("ours", "subset")]
    more = {s: {a: person_counts(rng, 0.3 + 0.05 * s) for a in ("ours", "subset")} for s in (2, 3, 4)}
    lines += [{"arm": a, "seed": s, "per_image": {"person": c}} for s, arms in more.items() for a, c in arms.items()]
    further(tmp_path / "more", lines, tmp_path / "recorded" / "arms" / "25" / "arms.json")
    result = compare(tmp_path / "more", tmp_path / "recorded", "--write")
    assert result.returncode == 0, result.stderr
    assert "5 seeds (0-4)" in result.stdout
    ours, subset = ([recorded[s][a]["person"] for s in (0, 1)] + [more[s][a] for s in (2, 3, 4)]
                    for a in ("ours", "subset"))
    d = paired_difference(np.array(ours, float), np.array(subset, float), seed=0)
    assert f"ours minus subset: {d.difference:+.4f} bootstrap [{d.low:+.4f}, {d.high:+.4f}]" in result.stdout
    assert "minus rules" not in result.stdout and "minus copy_paste" not in result.stdout
    written = json.loads((tmp_path / "more" / "paired-25.json").read_text())
    assert written["seeds"] == [0, 1, 2, 3, 4]
    row = written["metrics"]["segmenter_iou_person"]["paired"]["ours_minus_subset"]
    assert row["ci95"] == [round(d.low, 4), round(d.high, 4)] and row["seeds"] == 5 and row["images"] == IMAGES


@pytest.mark.parametrize("broken", ["arms", "pairing", "images"])
def test_further_seeds_that_are_not_the_recorded_runs_are_refused(tmp_path, broken):
    """Other arms (arms.json), a recorded seed that does not come out the same again, other test images: one line."""
    rng = np.random.default_rng(1)
    recorded = recorded_folder(tmp_path / "recorded", rng, [0, 1])
    arms_json = tmp_path / "recorded" / "arms" / "25" / "arms.json"
    seed0 = recorded[0]["subset"]["person"]
    lines = [{"arm": "subset", "seed": 0, "per_image": {"person": seed0 if broken != "pairing" else seed0[::-1]}}]
    per_seed = person_counts(rng, 0.4)[: IMAGES - 1 if broken == "images" else IMAGES]
    lines += [{"arm": a, "seed": 2, "per_image": {"person": per_seed}} for a in ("ours", "subset")]
    if broken == "arms":
        arms_json = tmp_path / "other.json"
        arms_json.write_text(json.dumps({"inserted": {"ours": {"person": 8}}}))
    further(tmp_path / "more", lines, arms_json)
    result = compare(tmp_path / "more", tmp_path / "recorded")
    assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
    assert {"arms": "not the arms of", "pairing": "does not give the recorded run's person counts again",
            "images": "other test images"}[broken] in result.stderr


def test_the_recorded_further_seeds_are_remade_from_their_lines():
    """docs/runs/*/paired-N.json (what docs/results.md and the README read) is what ``compare --write`` makes of
    the folder's seeds.jsonl and its recorded run with the current code; the recorded seed trained again there
    (the pairing check) passes."""
    from pipeline.downstream import run_folder_config

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from more_seeds import paired_summary
    finally:
        sys.path.remove(str(SCRIPT.parent))
    files = sorted((ROOT / "docs" / "runs").glob("*/paired-*.json"))
    assert files  # camvid-native-gan0-more-seeds
    for path in files:
        stored = json.loads(path.read_text())
        recorded_seeds = run_folder_config(ROOT / "docs" / "runs" / stored["recorded"]).evaluate.downstream.seeds
        lines = [json.loads(line) for line in (path.parent / "seeds.jsonl").read_text().splitlines()]
        assert {line["seed"] for line in lines} & set(recorded_seeds), path  # a recorded seed again: the pairing
        remade = paired_summary(stored["size"], path.parent, ROOT / "docs" / "runs" / stored["recorded"])
        assert json.loads(json.dumps(remade)) == stored, path


def test_run_refuses_missing_arms_and_a_folder_of_other_arms(tmp_path):
    """``run`` before the arms exist, and into a folder whose runs were of other arms: one line, nothing trained."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["evaluate"]["downstream"] |= {"sizes": [25], "out": str(tmp_path / "downstream")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    def run(*more: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(SCRIPT), "run", "25", "8", "--out", str(tmp_path / "more"),
                               "--params", str(tmp_path / "params.yaml"), *more],
                              capture_output=True, text=True, cwd=ROOT)

    missing = run()
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1, missing.stderr
    assert "arms/25/ours: missing" in missing.stderr
    arms = tmp_path / "downstream" / "arms" / "25"
    for arm in ("ours", "subset"):
        (arms / arm).mkdir(parents=True)
    (arms / "arms.json").write_text(json.dumps({"inserted": {"ours": {"person": 7}}}))
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "arms.json").write_text(json.dumps({"inserted": {"ours": {"person": 8}}}))
    other = run()
    assert other.returncode != 0 and other.stderr.count("\n") == 1, other.stderr
    assert "runs of other arms" in other.stderr and not (tmp_path / "more" / "seeds.jsonl").exists()
