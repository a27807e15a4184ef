"""benchmarks/step_spread.py and anchored_sizes.py's kept steps: the placement read along one training."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from conftest import benchmark_module
from safetensors.torch import load_file

from pipeline.config import RulesConfig
from pipeline.prepare import prepare


@pytest.fixture(scope="module")
def kept_run(synthetic_root, tmp_path_factory):
    """A tiny anchored training under the reference's schedule, keeping its checkpoints' weights (steps 2, 4)."""
    from test_training import tiny_config

    tmp = tmp_path_factory.mktemp("steps")
    cfg = dataclasses.replace(tiny_config(synthetic_root, tmp, steps=4), rules=RulesConfig(learned=True))
    prepare(cfg, workers=1, progress=False)
    az = benchmark_module("anchored_sizes")
    az.train_anchored(cfg, tmp / "m", 1.0, lr_decay_start=0.5, keep_from=2)
    assert az.training.save_checkpoint is az.STAGE_SAVE_CHECKPOINT  # the loop's own again
    assert az.training.training_step is az.STAGE_TRAINING_STEP
    return cfg, tmp


def test_kept_steps_are_model_folders_and_the_last_is_the_trained_model(kept_run):
    cfg, tmp = kept_run
    assert sorted(p.name for p in (tmp / "m-steps").iterdir()) == ["step-2", "step-4"]
    last = load_file(tmp / "m-steps" / "step-4" / "model.safetensors")
    final = load_file(tmp / "m" / "model.safetensors")
    assert all(torch.equal(last[k], final[k]) for k in final)
    earlier = load_file(tmp / "m-steps" / "step-2" / "model.safetensors")
    assert any(not torch.equal(earlier[k], final[k]) for k in final)
    # The schedule ran in the real loop: the last update (the 4th, after 3 done) used 1/2 of each rate.
    optim = torch.load(tmp / "m-checkpoints" / "optim.pt", weights_only=True)
    rates = [g["lr"] for g in optim["g"]["param_groups"]]
    assert rates == pytest.approx([cfg.train.lr / 2, cfg.train.density_lr / 2])
    assert json.loads((tmp / "m-schedule.json").read_text()) == {"lr_decay_start": 0.5}


def test_score_reads_each_folder_as_the_train_stage_does_and_skips_what_is_done(kept_run):
    cfg, tmp = kept_run
    ss = benchmark_module("step_spread")
    out = tmp / "steps.jsonl"
    folders = [str(tmp / "m-steps" / "step-2"), str(tmp / "m-steps" / "step-4")]
    rows = ss.score(cfg, folders, "val", out)
    assert [r["model"] for r in rows] == folders and {r["seed"] for r in rows} == {cfg.seed}
    stage = json.loads((tmp / "m-metrics.json").read_text())  # the train stage's scoring of the final weights
    assert rows[1]["raw"] == {c: v["plausible"] for c, v in stage["where_raw"].items()}
    assert rows[1]["raw_over_real"] == stage["where_raw_over_real"]
    assert ss.score(cfg, folders, "val", out) == []  # all scored already
    assert len(ss.score(cfg, folders[:1], "val", out, seed=cfg.seed + 1)) == 1  # another seed is another reading
    assert len(out.read_text().splitlines()) == 3


def test_average_is_the_element_wise_mean_and_refuses_a_mix(kept_run, tmp_path):
    cfg, tmp = kept_run
    ss = benchmark_module("step_spread")
    a, b = tmp / "m-steps" / "step-2", tmp / "m-steps" / "step-4"
    ss.average([str(a), str(b)], tmp_path / "mean")
    mean = load_file(tmp_path / "mean" / "model.safetensors")
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    key = next(k for k in wa if wa[k].is_floating_point() and not torch.equal(wa[k], wb[k]))
    assert torch.allclose(mean[key], (wa[key] + wb[key]) / 2)
    from pipeline.trained_gan import load_trained

    load_trained(tmp_path / "mean", cfg)  # a model folder the stages load
    with pytest.raises(ss.ConfigError, match="at least two"):
        ss.average([str(a)], tmp_path / "one")
    other = tmp_path / "other"
    other.mkdir()
    stored = json.loads((a / "config.json").read_text())
    stored["signature"]["mask_size"] = 99
    (other / "config.json").write_text(json.dumps(stored))
    (other / "model.safetensors").write_bytes((a / "model.safetensors").read_bytes())
    with pytest.raises(ss.ConfigError, match="different params"):
        ss.average([str(a), str(other)], tmp_path / "mix")
