"""Saved work is reused only while it is still valid (``pipeline/checkpoints.py``): training checkpoints of
the insertion GAN and the renderer, and augment's finished frames, each keyed by params, inputs and code."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO
from safetensors.torch import load_file
from test_renderer import tiny_renderer
from test_training import at, prepared_tiny  # noqa: F401 (fixture)

import pipeline.checkpoints as checkpoints
from pipeline.checkpoints import code_files
from pipeline.errors import ConfigError, PipelineError
from pipeline.trained_gan import load_trained
from pipeline.training import train

# ---------------------------------------------------------------------------------------------- code


def test_code_keys_cover_what_each_stage_runs_and_nothing_above_it():
    gan = {str(p) for p in code_files("pipeline.training")}
    assert {"training.py", "training_data.py", "models/insertion_gan.py", "models/what_net.py",
            "models/where_net.py", "checkpoints.py"} <= gan
    assert not {p for p in gan if p.startswith(("evaluation/", "datasets/", "writers/"))}
    assert "config.py" not in gan  # its defaults enter the key as params
    renderer = {str(p) for p in code_files("pipeline.renderer_training")}
    assert {"renderer_training.py", "models/renderer.py", "models/part_net.py", "datasets/cityscapes.py"} <= renderer
    assert not renderer & {"training.py", "models/insertion_gan.py"}  # the GAN's code does not retrain it
    aug = {str(p) for p in code_files("pipeline.augment")}
    assert {"augment.py", "augmentation.py", "insertion.py", "trained_gan.py", "models/insertion_gan.py",
            "writers/coco_writer.py"} <= aug
    assert not aug & {"training.py", "renderer_training.py"}  # inference loads weights, it does not train
    runs = {str(p) for p in code_files("pipeline.downstream")}
    assert {"evaluation/runs.py", "evaluation/detection.py", "models/detector.py", "models/segmenter.py"} <= runs
    assert not runs & {"insertion.py", "augmentation.py", "models/insertion_gan.py", "evaluation/arms.py"}


def test_code_digest_changes_with_a_file_the_stage_runs_only(tmp_path, monkeypatch):
    package = tmp_path / "pipeline"
    shutil.copytree(REPO / "pipeline", package, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(checkpoints, "PACKAGE", package)
    before = checkpoints.code_digest("pipeline.training")
    (package / "evaluation" / "gallery.py").write_text("# not run by training\n")
    assert checkpoints.code_digest("pipeline.training") == before
    what_net = package / "models" / "what_net.py"
    what_net.write_text(what_net.read_text() + "\n# changed\n")
    assert checkpoints.code_digest("pipeline.training") != before


@pytest.mark.parametrize("stage, module", [("synthesize", "pipeline.synthesize"), ("prepare", "pipeline.prepare"),
                                           ("train", "pipeline.training"), ("train", "pipeline.train"),
                                           ("train_renderer", "pipeline.renderer_training"),
                                           ("augment", "pipeline.augment"), ("evaluate", "pipeline.evaluate"),
                                           ("downstream_test", "pipeline.downstream"),
                                           ("arms", "pipeline.downstream_arms"),
                                           ("downstream", "pipeline.downstream")])
def test_dvc_reruns_a_stage_whenever_its_code_or_its_saved_works_key_changes(stage, module):
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]
    deps = spec.get("do", spec)["deps"]  # foreach stages keep theirs under do
    for path in code_files(module):
        full = f"pipeline/{path}"
        assert any(full == d or full.startswith(d.rstrip("/") + "/") for d in deps), f"{stage}: {full} not a dep"


# ------------------------------------------------------------------------------------ the insertion GAN


@pytest.fixture()
def finished(prepared_tiny, tmp_path):  # noqa: F811
    cfg = at(prepared_tiny, tmp_path / "run")
    train(cfg, progress=False)
    return cfg


def test_an_unchanged_rerun_resumes_and_brings_back_its_log(finished, capsys):
    weights = load_file(Path(finished.train.out) / "model.safetensors")
    shutil.rmtree(finished.train.log_dir)  # what dvc repro does to a stage's outputs before running it
    again = train(finished, progress=False)
    assert again["resumed_from"] == again["steps"] == finished.train.steps
    assert (Path(finished.train.log_dir) / "plots" / "metrics").is_dir()
    rows = (Path(finished.train.log_dir) / "plots" / "metrics" / "train" / "g_total.tsv").read_text().splitlines()
    assert len(rows) == 1 + finished.train.steps // finished.train.log_every  # header + every logged step once
    reloaded = load_file(Path(finished.train.out) / "model.safetensors")
    assert all(torch.equal(weights[k], reloaded[k]) for k in weights)
    assert "starting over" not in capsys.readouterr().err


def test_other_prepared_data_starts_over(finished, tmp_path, capsys):
    prepared = tmp_path / "other"
    shutil.copytree(finished.prepare.out, prepared)
    with np.load(prepared / "train.npz") as z:
        arrays = dict(z)
    arrays["inst_mask"] = arrays["inst_mask"][:, :, ::-1].copy()  # the same frames, other shapes
    np.savez(prepared / "train.npz", **arrays)
    other = dataclasses.replace(finished, prepare=dataclasses.replace(finished.prepare, out=str(prepared)))
    assert train(other, progress=False)["resumed_from"] == 0
    assert "train: saved work was made from other inputs.prepared - starting over" in capsys.readouterr().err


def test_the_same_data_elsewhere_resumes(finished, tmp_path):
    prepared = tmp_path / "moved"
    shutil.copytree(finished.prepare.out, prepared)
    moved = dataclasses.replace(finished, prepare=dataclasses.replace(finished.prepare, out=str(prepared)))
    assert train(moved, progress=False)["resumed_from"] == finished.train.steps


def test_other_training_code_starts_over(finished, monkeypatch, capsys):
    real = checkpoints.code_digest
    monkeypatch.setattr(checkpoints, "code_digest", lambda module: real(module) + "-edited")
    assert train(finished, progress=False)["resumed_from"] == 0
    assert "other code" in capsys.readouterr().err


def test_other_params_start_over_but_more_steps_extend(finished, capsys):
    longer = dataclasses.replace(finished, train=dataclasses.replace(finished.train, steps=finished.train.steps + 2))
    assert train(longer, progress=False)["resumed_from"] == finished.train.steps
    other = dataclasses.replace(finished, train=dataclasses.replace(
        finished.train, losses=dataclasses.replace(finished.train.losses, kl=0.5)))
    assert train(other, progress=False)["resumed_from"] == 0
    assert "params.train.losses.kl" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- the renderer


def test_renderer_resumes_on_the_same_frames_and_starts_over_on_changed_ones(synthetic_root, tmp_path, capsys):
    from pipeline.renderer_training import train_renderer

    cfg = tiny_renderer(synthetic_root, tmp_path)
    train_renderer(cfg, progress=False)
    moved = tmp_path / "moved"
    shutil.copytree(synthetic_root, moved)
    same = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(moved)))
    assert train_renderer(same, progress=False)["resumed_from"] == cfg.renderer.steps
    image = sorted((moved / "leftImg8bit" / "train").rglob("*.png"))[0]
    cv2.imwrite(str(image), 255 - cv2.imread(str(image)))
    assert train_renderer(same, progress=False)["resumed_from"] == 0
    assert "train_renderer: saved work was made from other inputs.frames" in capsys.readouterr().err


# -------------------------------------------------------------------------------------- loading weights


def test_broken_weights_are_one_line_errors(finished, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(finished.train.out, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"model.safetensors: not a readable safetensors file .*retrain"):
        load_trained(broken, finished)
    shutil.copy(Path(finished.train.out) / "model.safetensors", broken / "model.safetensors")
    (broken / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"config.json: missing"):
        load_trained(broken, finished)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json: not the config.json of saved weights"):
        load_trained(broken, finished)


def test_augment_workers_with_broken_weights_fail_in_one_line(trained_tiny, tmp_path):
    from pipeline.augment import augment

    model = tmp_path / "model"
    shutil.copytree(trained_tiny.train.out, model)
    (model / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}")
    cfg = dataclasses.replace(trained_tiny, augment=dataclasses.replace(
        trained_tiny.augment, model=str(model), out=str(tmp_path / "aug"), workers=2))
    with pytest.raises(PipelineError, match="model.safetensors: not a readable safetensors file"):
        augment(cfg, progress=False)
