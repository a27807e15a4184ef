"""benchmarks/anchored_sizes.py: the density where model's size field held to the learned ground plane."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from conftest import benchmark_module

from pipeline.config import Config, ModelConfig, RulesConfig
from pipeline.prepare import prepare

HORIZON, CAMERA_HEIGHT = 0.4, 2.0


class FieldAt:
    """A stand-in where module: all position mass on one cell (row, col) of an 8 x 4 map, mu_h given there."""

    def __init__(self, row: int, mu_h: float):
        self.logits = torch.full((1, 1, 8, 4), -30.0, requires_grad=True)
        with torch.no_grad():
            self.logits[0, 0, row, 1] = 30.0
        self.mu = torch.full((1, 1, 8, 4), mu_h, requires_grad=True)

    def __call__(self, x, c):
        zeros = torch.zeros(1, 1, 8, 4)
        return torch.cat([self.logits, self.mu, zeros, zeros, zeros], 1)


def _expected(row: int, typical: float) -> float:
    return typical * ((row + 0.5) / 8 - HORIZON) / CAMERA_HEIGHT


def test_the_cost_is_the_hinge_of_the_field_against_the_plane_where_the_model_draws():
    az = benchmark_module("anchored_sizes")
    typical = torch.tensor([1.7])
    row = 6  # centre at 0.8125 of the frame: below the horizon
    log_expected = math.log(_expected(row, 1.7))

    def cost(where):
        return az.plane_cost(where(None, None), HORIZON, CAMERA_HEIGHT, typical, free=0.15)

    assert float(cost(FieldAt(row, log_expected))) == pytest.approx(0.0, abs=1e-6)
    assert float(cost(FieldAt(row, log_expected + 0.1))) == pytest.approx(0.0, abs=1e-6)  # inside the free band
    assert float(cost(FieldAt(row, log_expected - 0.5))) == pytest.approx(0.35, abs=1e-4)
    where = FieldAt(row, log_expected + 0.5)
    value = cost(where)
    assert float(value) == pytest.approx(0.35, abs=1e-4)
    value.backward()
    assert float(where.mu.grad[0, 0, row, 1]) == pytest.approx(1.0, abs=1e-4)  # only the field feels it
    assert where.logits.grad is None or float(where.logits.grad.abs().sum()) == 0.0
    # A cell on or above the horizon costs nothing, whatever the field says there.
    assert float(cost(FieldAt(2, 5.0))) == pytest.approx(0.0, abs=1e-12)


def _field_of_aspects(log_aspects: list[float]) -> torch.Tensor:
    """A stand-in density output [B, 5, 8, 4]: sample i's position mass on cell (6, 1), mu_h -2 everywhere and
    mu_w = mu_h + log_aspects[i] there (elsewhere mu_w = mu_h + 3: mass-free cells must not count)."""
    b = len(log_aspects)
    logits = torch.full((b, 1, 8, 4), -30.0)
    logits[:, 0, 6, 1] = 30.0
    mu_h = torch.full((b, 1, 8, 4), -2.0)
    mu_w = mu_h + 3.0
    mu_w[:, 0, 6, 1] = mu_h[:, 0, 6, 1] + torch.tensor(log_aspects)
    zeros = torch.zeros(b, 1, 8, 4)
    return torch.cat([logits, mu_h, zeros, mu_w, zeros], 1).requires_grad_(True)


def test_the_aspect_gap_matches_each_class_s_mean_drawn_log_aspect_to_its_median():
    az = benchmark_module("anchored_sizes")
    target = torch.tensor([-1.5, -0.3])
    person, car = torch.tensor([0, 0]), torch.tensor([1, 1])
    assert float(az.aspect_gap(_field_of_aspects([-1.5, -1.5]), person, target)) == pytest.approx(0.0, abs=1e-6)
    # A moment match: one scene's wide draw and another's narrow one around the median cost nothing.
    assert float(az.aspect_gap(_field_of_aspects([-1.2, -1.8]), person, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(az.aspect_gap(_field_of_aspects([-0.8, -0.8]), car, target)) == pytest.approx(0.25, abs=1e-5)
    # Two classes in a batch: each against its own median, the squared gaps averaged over the classes.
    both = az.aspect_gap(_field_of_aspects([-1.5, -0.8]), torch.tensor([0, 1]), target)
    assert float(both) == pytest.approx(0.125, abs=1e-5)
    out = _field_of_aspects([-0.8, -0.8])
    az.aspect_gap(out, car, target).backward()
    grad = out.grad
    assert float(grad[:, 3, 6, 1].sum()) == pytest.approx(-1.0, abs=1e-4)  # d/d mu_w of (mean - t)^2 = 2 x -0.5
    assert float(grad[:, 1].abs().sum()) == 0.0  # the height field is the plane's: untouched
    assert float(grad[:, 0].abs().sum()) == 0.0  # and the positions


def test_only_a_density_model_with_learned_rules_and_a_positive_weight_is_anchored(tmp_path):
    az = benchmark_module("anchored_sizes")
    learned = Config(rules=RulesConfig(learned=True))
    with pytest.raises(az.ConfigError, match="model.where_model"):
        az.anchored_config(dataclasses.replace(learned, model=ModelConfig(where_model="gan", z_where=4)),
                           tmp_path / "m", 1.0)
    with pytest.raises(az.ConfigError, match="rules.learned"):
        az.anchored_config(Config(), tmp_path / "m", 1.0)
    with pytest.raises(az.ConfigError, match="--weight"):
        az.anchored_config(learned, tmp_path / "m", 0.0)
    cfg = az.anchored_config(learned, tmp_path / "m", 2.0)
    assert cfg.train.losses.ground_scale == 2.0 and cfg.train.out == str(tmp_path / "m")
    assert {cfg.train.checkpoint_dir, cfg.train.log_dir} == {str(tmp_path / "m-checkpoints"), str(tmp_path / "m-log")}


def test_a_run_trains_with_the_term_and_leaves_the_model_class_as_it_was(synthetic_root, tmp_path):
    from test_training import tiny_config

    az = benchmark_module("anchored_sizes")
    cfg = tiny_config(synthetic_root, tmp_path, steps=4)
    cfg = dataclasses.replace(cfg, rules=RulesConfig(learned=True))
    prepare(cfg, workers=1, progress=False)
    with pytest.raises(az.ConfigError, match="--aspect-weight"):
        az.train_anchored(cfg, tmp_path / "anchored", 1.0, aspect_weight=-1.0)
    medians = az.median_log_aspects(cfg)  # persons taller than wide, cars wider than persons
    assert medians.shape == (2,) and float(medians[0]) < 0 and float(medians[0]) < float(medians[1])
    with pytest.raises(az.ConfigError, match="train.npz: missing"):
        az.median_log_aspects(dataclasses.replace(cfg, prepare=dataclasses.replace(cfg.prepare, out=str(tmp_path))))
    metrics = az.train_anchored(cfg, tmp_path / "anchored", 1.0, aspect_weight=0.5)
    assert metrics["train"]["steps"] == 4 and (tmp_path / "anchored" / "model.safetensors").exists()
    scored = json.loads((tmp_path / "anchored-metrics.json").read_text())
    assert set(scored["where_raw"]) == set(cfg.prepare.classes) and scored["train"]["steps"] == 4
    assert az.InsertionGAN.generator_terms is az.STAGE_GENERATOR_TERMS
    logged = (tmp_path / "anchored-log" / "plots" / "metrics" / "train" / "ground_scale.tsv").read_text().split()
    assert any(float(v) > 0 for v in logged[3::2])  # the term was computed (the stage's density model logs 0)
    gaps = (tmp_path / "anchored-log" / "plots" / "metrics" / "train" / "aspect_gap.tsv").read_text().split()
    assert all(float(v) >= 0 for v in gaps[3::2]) and len(gaps) > 3
    assert not (tmp_path / "model").exists()  # nothing in the stage's own folders


def test_the_reference_schedule_holds_the_rates_then_falls_linearly_to_zero_and_survives_a_resume():
    az = benchmark_module("anchored_sizes")
    net = torch.nn.Linear(2, 1)
    idle = torch.nn.Parameter(torch.zeros(1))  # first in the optimizer, never given a gradient: holds no count
    opt_g = torch.optim.Adam([{"params": [idle, net.weight]}, {"params": [net.bias], "lr": 1e-2}], lr=1e-3)
    d = torch.nn.Linear(2, 1)
    opt_d = torch.optim.Adam(d.parameters(), lr=4e-3)
    seen = []

    def stage_step(model, batch, g, dd, update_d, autocast):  # one generator update, as the loop's own
        seen.append([group["lr"] for group in g.param_groups] + [dd.param_groups[0]["lr"]])
        g.zero_grad()
        net(torch.ones(1, 2)).sum().backward()
        g.step()
        return {}

    step = az.decayed_steps(stage_step, steps=10, start=0.6)  # constant for 6 updates, then 4/4 .. 1/4
    for _ in range(7):
        step(None, None, opt_g, opt_d, False, None)
    # Resumed at update 7 from the optimizer's saved state: the count and the initial rates come back with it.
    saved = opt_g.state_dict(), opt_d.state_dict()
    opt_g = torch.optim.Adam([{"params": [idle, net.weight]}, {"params": [net.bias], "lr": 1e-2}], lr=1e-3)
    opt_d = torch.optim.Adam(d.parameters(), lr=4e-3)
    opt_g.load_state_dict(saved[0])
    opt_d.load_state_dict(saved[1])
    for _ in range(3):
        step(None, None, opt_g, opt_d, False, None)
    factors = [1, 1, 1, 1, 1, 1, 1.0, 0.75, 0.5, 0.25]
    expected = [rate * f for f in factors for rate in (1e-3, 1e-2, 4e-3)]
    assert [rate for rates in seen for rate in rates] == pytest.approx(expected)
    # Every factor is checked: a schedule off by one update, or restarted by the resume, fails.


def test_a_schedule_is_recorded_and_checkpoints_of_another_are_refused(tmp_path):
    az = benchmark_module("anchored_sizes")
    with pytest.raises(az.ConfigError, match="--lr-decay-start"):
        az.check_schedule(tmp_path / "m", 1.5)
    az.check_schedule(tmp_path / "m", 0.5)
    (tmp_path / "m-checkpoints").mkdir()
    az.check_schedule(tmp_path / "m", 0.5)  # the same schedule resumes
    with pytest.raises(az.ConfigError, match="m-checkpoints: made with --lr-decay-start 0.5, asked 1.0"):
        az.check_schedule(tmp_path / "m", 1.0)
    (tmp_path / "m-schedule.json").unlink()  # checkpoints from before the record: the constant schedule's
    with pytest.raises(az.ConfigError, match="made with --lr-decay-start 1.0, asked 0.5"):
        az.check_schedule(tmp_path / "m", 0.5)
