"""`dvc repro` in a fresh copy of the project regenerates the dataset from params.yaml."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow


def project_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    return [f for f in out if (REPO / f).is_file()]


def tiny_params(params: dict) -> dict:
    """``params`` with every stage sized for seconds: tiny networks, a few steps, a small built-in dataset."""
    params["synthetic"]["splits"] = {"train": 6, "val": 2, "test": 1}
    params["synthetic"]["width"], params["synthetic"]["height"] = 256, 128
    params["prepare"].update(where_size=[32, 16], what_size=[64, 32], mask_size=16, min_area=40, min_height=6)
    params["model"].update(where_widths=[8, 16], where_embed=16, what_widths=[8, 16, 16], what_embed=16,
                           shape_widths=[8, 8], d_widths=[8, 16])
    params["train"].update(steps=4, batch_size=2, checkpoint_every=2, log_every=2, sample_every=2,
                           eval_samples_per_frame=1)
    params["renderer"].update(size=[64, 32], width=4, downs=2, blocks=1, d_width=4, clusters=2, crop=16, steps=4,
                              checkpoint_every=2, log_every=2)
    params["renderer"]["part_net"].update(size=16, widths=[4, 8], steps=4, batch_size=8)
    params["evaluate"].update(samples_per_frame=1, random_per_object=1, diversity_frames=1, diversity_draws=2,
                              gallery_frames=2, render_frames=2, real_root="")
    params["evaluate"]["downstream"].update(sizes=[3], seeds=[0, 1], size=[64, 32], widths=[8, 16], crop=32, steps=4,
                                            batch_size=2, rules_tries=200)
    params["evaluate"]["downstream"]["detector"].update(widths=[8, 8, 16, 16], fpn_channels=16, min_size=64,
                                                        max_size=128, steps=2, batch_size=2, warmup=1)
    return params


def project_copy(clone, edit_params) -> dict:
    """The project's files copied into ``clone`` as a fresh git repository, ``edit_params`` applied to its
    params.yaml; returns the environment to run DVC there."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    for name in project_files():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, clone / name)
    params = edit_params(yaml.safe_load((clone / "params.yaml").read_text()))
    (clone / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(clone)}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=clone, check=True, env=env)
    return env


def dvc(clone, env, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_dvc_repro_in_a_fresh_copy(tmp_path):
    clone = tmp_path / "clone"
    env = project_copy(clone, tiny_params)
    result = dvc(clone, env, "repro")
    assert result.returncode == 0, result.stdout + result.stderr
    images = sorted((clone / "data" / "synthetic" / "leftImg8bit").rglob("*.png"))
    assert len(images) == 9
    assert (clone / "dvc.lock").is_file()
    assert (clone / "data" / "prepared" / "train.npz").is_file()
    assert (clone / "models" / "insertion" / "model.safetensors").is_file()
    metrics = json.loads((clone / "metrics" / "train.json").read_text())
    assert set(metrics["where_raw"]) == {"person", "car"} and metrics["train"]["steps"] == 4
    assert (clone / "dvclive" / "train" / "plots" / "images" / "samples.png").is_file()
    augmented = clone / "data" / "augmented"
    coco = json.loads((augmented / "coco" / "annotations" / "instances_train.json").read_text())
    assert len(coco["images"]) == 12  # 6 originals + 6 augmented
    assert (augmented / "manifest.jsonl").is_file()
    summary = json.loads((clone / "metrics" / "augment.json").read_text())
    assert set(summary["classes"]) == {"person", "car"} and not summary["errors"]
    evaluation = json.loads((clone / "metrics" / "evaluate.json").read_text())
    assert set(evaluation["placement"]) == {"person", "car"}
    down = evaluation["downstream"]["3"]
    assert down["train_frames"] == {"subset": 3, "ours": 9, "copy_paste": 9, "rules": 9} and down["seeds"] == [0, 1]
    assert down["split"] == "test" and down["test_frames"] == 1
    assert down["metrics"]["segmenter_iou_car"]["ours"]["n"] == 2
    assert "detector_mask_ap50_car" not in down["metrics"]  # the detector is opt-in
    assert set(down["paired"]["segmenter_iou_person"]) == {"ours_minus_subset", "ours_minus_copy_paste",
                                                           "ours_minus_rules"}
    assert (clone / "models" / "downstream" / "3-1-subset.safetensors").is_file()
    renderer = json.loads((clone / "metrics" / "renderer.json").read_text())
    assert renderer["renderer"]["steps"] == 4 and renderer["part_net"]["accuracy"] is not None
    assert (clone / "models" / "renderer" / "generator.safetensors").is_file()
    modes = evaluation["render_modes"]
    assert all(0 <= modes[m]["miou"] <= 1 for m in ("paste", "gan", "gan+parts")) and modes["part_net"]["accuracy"]
    assert (clone / "reports" / "gallery.png").is_file() and (clone / "reports" / "gallery.html").is_file()
    status = dvc(clone, env, "status", timeout=120)
    assert "up to date" in status.stdout, status.stdout
    shown = dvc(clone, env, "metrics", "show", timeout=120)
    assert shown.returncode == 0 and "metrics/evaluate.json" in shown.stdout, shown.stdout + shown.stderr
    plots = dvc(clone, env, "plots", "show", "-o", str(tmp_path / "plots"), timeout=120)
    assert plots.returncode == 0, plots.stdout + plots.stderr
    page = (tmp_path / "plots" / "index.html").read_text()
    assert "segmenter_iou_person" in page and "placement" in page

    # Saved work survives DVC: the same params again, stages forced to run, the checkpoints (persist: true)
    # at their last step are resumed (nothing trained) and the logs come back with them. That other inputs
    # start over is the stages' own check (tests/test_saved_work.py, tests/test_augment.py).
    forced = dvc(clone, env, "repro", "-f", "-s", "train", "train_renderer")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert json.loads((clone / "metrics" / "train.json").read_text())["train"]["resumed_from"] == 4
    assert json.loads((clone / "metrics" / "renderer.json").read_text())["renderer"]["resumed_from"] == 4
    assert (clone / "dvclive" / "train" / "plots" / "metrics").is_dir()
