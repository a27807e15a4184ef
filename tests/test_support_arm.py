"""benchmarks/support_arm.py: the rules arm with its persons' ground narrowed, read against a recorded run seed by
seed."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import benchmark_module
from scipy import stats

from pipeline.config import Config
from pipeline.labels import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "support_arm.py"
ARMS = ("subset", "ours", "copy_paste", "rules")


def test_the_narrowed_rules_let_persons_stand_only_on_the_ground_given():
    ground_only = benchmark_module("support_arm").ground_only
    person, car, sidewalk = (BY_NAME[n].id for n in ("person", "car", "sidewalk"))
    relocate = ground_only(["sidewalk"])(None, Config(), rules=True)
    assert relocate.rules.support[person] == frozenset({sidewalk})
    assert relocate.rules.support[car] == frozenset({BY_NAME["road"].id, BY_NAME["parking"].id})
    assert ground_only(["sidewalk"])(None, Config()).rules is None  # the copy-paste arm has no rules to narrow


def test_ours_on_road_keeps_only_the_persons_the_gan_stands_on_road(trained_tiny, synthetic_root):
    """``--arm ours``: the inserter built by ``ours_on`` inserts persons only on the ground given (the support rule
    rejects the others) and rejects no car for its ground."""
    from pycocotools import mask as mask_utils

    from pipeline.appearance import CropBank
    from pipeline.datasets.cityscapes import CityscapesDataset
    from pipeline.rules import support_label

    ours_on = benchmark_module("support_arm").ours_on
    cfg = trained_tiny
    inserter = ours_on(["road"])(cfg, torch.device("cpu"), CropBank(cfg.augment.appearance.crops,
                                                                     cfg.augment.appearance))
    dataset = CityscapesDataset(synthetic_root, ["train"])
    grounds, rejected = [], Counter()
    for index in range(len(dataset)):
        scene = dataset[index]
        before = scene.labels.copy()
        report = inserter.insert(scene, seed=index)
        rejected.update({name: n for (name, reason), n in report.rejected.items() if reason == "support"})
        grounds += [support_label(before, mask_utils.decode(item["whole_mask"]).astype(bool))
                    for item in report.inserted if item["class"] == "person"]
    assert grounds and set(grounds) == {BY_NAME["road"].id}
    assert rejected["person"] > 0 and rejected["car"] == 0
    # Where the support rule was on (the CamVid profile), the cars keep their ground; the candidates are asked for.
    supported = dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, support=True))
    kept = ours_on(["road"], candidates=40)(supported, torch.device("cpu"), inserter.bank)
    car = BY_NAME["car"].id
    assert kept.yardstick.support[car] == frozenset({BY_NAME["road"].id, BY_NAME["parking"].id}) != \
        inserter.yardstick.support[car]
    assert kept.cfg.augment.candidates == 40 and inserter.cfg.augment.candidates == cfg.augment.candidates


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


def test_compare_takes_the_seeds_the_recorded_run_lacks_from_more_seeds(tmp_path):
    """``--more``: seeds 2 and 3, which the recorded run lacks, come from more_seeds.py's seeds.jsonl (its arms
    only); a seed the recorded run has keeps the recorded figures; other arms than the recorded run's: one line."""
    variant, rules = [0.55, 0.57, 0.52, 0.50], [0.60, 0.59, 0.58, 0.56]
    out, recorded, more = tmp_path / "variant", tmp_path / "recorded", tmp_path / "more"
    for folder in (out, more, recorded / "metrics" / "downstream", recorded / "arms" / "40"):
        folder.mkdir(parents=True)
    (out / "runs.jsonl").write_text("".join(json.dumps({"n": 40, "arm": "rules", "seed": s, "segmenter": segmenter(
        v, {"sidewalk": 9})}) + "\n" for s, v in enumerate(variant)))
    for s in (0, 1):
        arms = {a: {"segmenter": segmenter(0.5, {"road": 2})} for a in ARMS}
        arms["rules"] = {"segmenter": segmenter(rules[s], {"road": 4})}
        (recorded / "metrics" / "downstream" / f"40-{s}.json").write_text(json.dumps({"seed": s, "arms": arms}))
    further = [{"n": 40, "arm": arm, "seed": s, "segmenter": segmenter(rules[s] if arm == "rules" else 0.4,
                                                                       {"road": 6})}
               for s in (2, 3) for arm in ("ours", "rules")]
    further.append({"n": 40, "arm": "rules", "seed": 0, "segmenter": segmenter(0.0, {"road": 6})})  # not taken
    (more / "seeds.jsonl").write_text("".join(json.dumps(line) + "\n" for line in further))
    (recorded / "arms" / "40" / "arms.json").write_text(json.dumps({"inserted": {"ours": {"person": 7}}}))
    (more / "arms.json").write_text(json.dumps({"inserted": {"ours": {"person": 7}}}))
    command = [sys.executable, str(SCRIPT), "compare", "40", "--out", str(out), "--against", str(recorded),
               "--more", str(more)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "N = 40, seeds [0, 1, 2, 3]" in result.stdout
    d = np.subtract(variant, rules)
    ci = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    person = next(line for line in result.stdout.splitlines() if "person IoU" in line)
    assert f"minus rules ({np.mean(rules):.4f}) {d.mean():+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]" in person
    assert "minus ours (0.4500)" in person and "copy_paste" not in person and "subset" not in person
    assert "variant / ours / rules" in result.stdout
    (more / "arms.json").write_text(json.dumps({"inserted": {"ours": {"person": 8}}}))
    other = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert other.returncode != 0 and other.stderr.count("\n") == 1 and "not the arms of" in other.stderr


# (variant folder, arm, N, seeds, recorded run, what compare prints, what docs/history.md quotes, inserted persons)
RECORDED = [
    ("builtin-steps600-support-sidewalk", "rules", 40, list(range(13)), "builtin-steps600-gan0",
     ["minus rules (0.5886) -0.035 [-0.045, -0.025]", "    road: 56 / 58 / 77 / 75 / 87",
      "    sidewalk: 154 / 85 / 155 / 65 / 107"],
     ["-0.035 [-0.045, -0.025]", "on road 56 (the rules' 87)"], 273),
    ("builtin-steps600-ours-road", "ours", 40, list(range(13)), "builtin-steps600-gan0",
     ["minus rules (0.5886) -0.016 [-0.026, -0.006]", "minus ours (0.5694) +0.003 [-0.009, +0.015]",
      "    road: 91 / 58 / 77 / 75 / 87", "    sidewalk: 125 / 85 / 155 / 65 / 107"],
     ["minus ours **+0.003 [-0.009, +0.015]**", "**-0.016 [-0.026, -0.006]**"], 311),
    ("camvid-native-ours-road", "ours", 25, list(range(8)), "camvid-native-gan0",
     ["minus rules (0.0917) -0.000 [-0.005, +0.004]", "minus ours (0.1047) -0.013 [-0.024, -0.002]",
      "    road: 105 / 5 / 29 / 116 / 328"],
     ["minus ours **-0.013 [-0.024, -0.002]**", "on road 105 a seed (ours 29, the rules 328)"], 139),
]


@pytest.mark.parametrize(("folder", "arm", "n", "seeds", "against", "printed", "quoted", "persons"), RECORDED)
def test_a_recorded_variant_reads_as_the_docs_quote_it(folder, arm, n, seeds, against, printed, quoted, persons):
    """A recorded variant against its recorded run: the differences and false blobs that docs/history.md quotes are
    what ``compare`` prints of the recorded lines, and its arms.json holds the dose the docs give."""
    runs = ROOT / "docs" / "runs"
    result = subprocess.run([sys.executable, str(SCRIPT), "compare", str(n), "--arm", arm, "--out",
                             str(runs / folder), "--against", str(runs / against)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert f"N = {n}, seeds {seeds}" in result.stdout
    for line in printed:
        assert line in result.stdout
    history = " ".join((ROOT / "docs" / "history.md").read_text().split())
    for quote in quoted:
        assert quote in history
    assert json.loads((runs / folder / "arms" / str(n) / "arms.json").read_text())["inserted"][arm]["person"] == persons
