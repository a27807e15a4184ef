"""benchmarks/placement_spread.py: ours' inserter with the where model's position logits divided by a temperature."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import benchmark_module

from pipeline.appearance import CropBank
from pipeline.augmentation import build_inserter
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.evaluation.copy_paste import Relocate
from pipeline.insertion import scene_inputs

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "placement_spread.py"
COMPARE = ROOT / "benchmarks" / "support_arm.py"


def _benchmark(name: str):
    return getattr(benchmark_module("placement_spread"), name)


def test_temperature_one_is_ours_and_a_high_one_spreads_the_boxes(trained_tiny, synthetic_root):
    spread = _benchmark("spread")
    cfg = trained_tiny
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    ours = build_inserter(cfg, torch.device("cpu"), bank)
    entropies = {"before": [], "after": []}
    same = spread(1.0, None, entropies)(cfg, torch.device("cpu"), bank)
    hot = {"before": [], "after": []}
    flat = spread(20.0, 40, hot)(cfg, torch.device("cpu"), bank)
    assert flat.cfg.augment.candidates == 40 and same.cfg.augment.candidates == cfg.augment.candidates
    scene = CityscapesDataset(synthetic_root, ["train"])[0]
    inputs = scene_inputs(scene, cfg, torch.device("cpu"))
    z_where, z_what = torch.randn(64, ours.gan.z_where), torch.randn(64, ours.gan.z_what)
    boxes = {name: np.array([c.box for c in inserter._sample(scene, inputs, 0, "person", z_where, z_what)])
             for name, inserter in (("ours", ours), ("same", same), ("flat", flat))}
    np.testing.assert_array_equal(boxes["same"], boxes["ours"])
    assert entropies["before"] == entropies["after"]
    # Divided by 20 the position logits are nearly flat: the entropy nears a uniform choice of the cell's, and
    # the boxes' bottom centres spread over more of the frame.
    assert hot["after"][0] > hot["before"][0] + 0.5 and hot["after"][0] <= hot["uniform"][0] + 1e-9
    centres = {name: np.stack([b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3]], 1) for name, b in boxes.items()}  # x, y, w, h
    assert centres["flat"].std(0).sum() > centres["ours"].std(0).sum()


def test_relocate_draws_the_rules_arms_tries_from_the_density(trained_tiny, synthetic_root):
    """The relocated rules arm reads the where model's position softmax (at the temperature) on the frame as it
    was, and each try's bottom centre lands in a cell drawn from it; copy-paste's tries stay uniform."""
    drawn_from_density = _benchmark("drawn_from_density")
    cfg = trained_tiny
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    scene = CityscapesDataset(synthetic_root, ["train"])[0]
    entropies = {"before": [], "after": []}
    at_draws = drawn_from_density(2.0, entropies)(bank, cfg, rules=True)
    assert at_draws.insert(scene, [], seed=0) == 0  # reads the frame's density, inserts nothing
    person = cfg.prepare.classes.index("person")
    with torch.no_grad():
        c = torch.nn.functional.one_hot(torch.tensor([person]), len(cfg.prepare.classes)).float()
        logits = at_draws.where(scene_inputs(scene, cfg, torch.device("cpu"))[0], c)[0, 0].double()
    expected = torch.softmax(logits.flatten() / 2.0, 0).reshape(logits.shape).numpy()
    np.testing.assert_allclose(at_draws.cells["person"], expected, rtol=1e-6, atol=1e-12)
    assert all(a > b for a, b in zip(entropies["after"], entropies["before"], strict=True))  # T = 2 spreads
    # All the mass on one cell: every try's bottom centre lands in it.
    rows, cols = expected.shape
    height, width = scene.size
    cell = np.zeros_like(expected)
    cell[rows // 2, cols // 3] = 1.0
    at_draws.cells["person"] = cell
    w, h, rng = 6, 10, np.random.default_rng(0)
    for nx, ny in (at_draws.position(scene, {"class": "person"}, w, h, rng) for _ in range(50)):
        assert abs((nx + w / 2) * cols / width - (cols // 3 + 0.5)) <= 0.5 + cols / width
        assert abs((ny + h) * rows / height - (rows // 2 + 0.5)) <= 0.5 + rows / height
    # copy-paste keeps the uniform positions, draw for draw
    uniform = Relocate(bank, cfg, rules=True)
    copy_paste = drawn_from_density(1.0, {"before": [], "after": []})(bank, cfg)
    assert copy_paste.where is None
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    assert [copy_paste.position(scene, {"class": "person"}, w, h, a) for _ in range(50)] == \
        [uniform.position(scene, {"class": "person"}, w, h, b) for _ in range(50)]


@pytest.mark.parametrize("command", ["write", "relocate"])
def test_bad_temperature_is_one_line(tmp_path, command):
    result = subprocess.run([sys.executable, str(SCRIPT), command, "40", "--temperature", "0", "--out",
                             str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert "--temperature: expected > 0, got 0.0" in result.stderr
    assert not (tmp_path / "x").exists()


# (variant folder, what support_arm.py compare prints, what docs/history.md quotes, inserted persons)
RECORDED = [
    ("builtin-spread-t3",
     ["minus ours (0.5755) -0.008 [-0.037, +0.022]", "minus rules (0.5883) -0.021 [-0.056, +0.015]"],
     ["**-0.008 [-0.037, +0.022]** (T = 3)", "-0.021 [-0.056, +0.015]"], 319),
    ("builtin-spread-t20",
     ["minus ours (0.5755) -0.008 [-0.022, +0.007]", "minus rules (0.5883) -0.020 [-0.068, +0.028]",
      "    terrain: 144 / 43 / 84 / 45 / 118", "    void: 61 / 5 / 18 / 9 / 22"],
     ["**-0.008 [-0.022, +0.007]** (T = 20)", "+0.020 [+0.015, +0.025] to copy-paste"], 289),
]


@pytest.mark.parametrize(("folder", "printed", "quoted", "persons"), RECORDED)
def test_a_recorded_spread_reads_as_the_docs_quote_it(folder, printed, quoted, persons):
    """A recorded spread variant against the recorded default run of 7 December: the differences docs/history.md
    quotes are what ``support_arm.py compare`` prints of the recorded lines, with the dose the arms.json holds."""
    runs = ROOT / "docs" / "runs"
    result = subprocess.run([sys.executable, str(COMPARE), "compare", "40", "--arm", "ours", "--out",
                             str(runs / folder), "--against", str(runs / "builtin-default-7dec")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "N = 40, seeds [0, 1, 2]" in result.stdout
    for line in printed:
        assert line in result.stdout
    history = " ".join((ROOT / "docs" / "history.md").read_text().split())
    for quote in quoted:
        assert quote in history
    dose = json.loads((runs / folder / "arms" / "40" / "arms.json").read_text())["inserted"]
    assert dose["ours"]["person"] == persons


def test_the_recorded_relocation_reads_as_the_docs_quote_it():
    """Ours' objects at the GAN's draws against the recorded run of 7 December and its arms carried to seeds 3-7:
    what docs/history.md and the README quote is what ``support_arm.py compare --more`` prints of the recorded
    lines, with the dose its arms.json holds."""
    runs = ROOT / "docs" / "runs"
    result = subprocess.run([sys.executable, str(COMPARE), "compare", "40", "--arm", "rules", "--out",
                             str(runs / "builtin-relocate-t1"), "--against", str(runs / "builtin-default-7dec"),
                             "--more", str(runs / "builtin-default-7dec-more-seeds")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "N = 40, seeds [0, 1, 2, 3, 4, 5, 6, 7]" in result.stdout
    assert "minus rules (0.5879) -0.020 [-0.036, -0.004]; minus ours (0.5712) -0.003 [-0.014, +0.007]" in result.stdout
    history = " ".join((ROOT / "docs" / "history.md").read_text().split())
    readme = " ".join((ROOT / "README.md").read_text().split())
    for quote in ("minus the rules **-0.020 [-0.036, -0.004]**", "minus ours **-0.003 [-0.014, +0.007]**"):
        assert quote in history
    assert "lose 0.020 [-0.036, -0.004] to the rules and tie ours (-0.003 [-0.014, +0.007]" in readme
    dose = json.loads((runs / "builtin-relocate-t1" / "arms" / "40" / "arms.json").read_text())["inserted"]
    assert dose["rules"] == {"car": 155, "person": 320}
