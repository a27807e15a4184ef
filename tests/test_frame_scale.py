"""benchmarks/frame_scale.py: how much of an object's size its frame shares, and candidates scaled by it."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import benchmark_module

from pipeline.appearance import CropBank
from pipeline.augmentation import build_inserter
from pipeline.config import Config
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.insertion import scene_inputs
from pipeline.labels import BY_NAME

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "frame_scale.py"



def _frames(rng: np.random.Generator, between_sd: float, within_sd: float, frames: int = 600) -> list[np.ndarray]:
    """Log ratios of 1-6 objects a frame: a level per frame, noise per object, around 0.2."""
    return [0.2 + rng.normal(0, between_sd) + rng.normal(0, within_sd, rng.integers(1, 7)) for _ in range(frames)]


def test_the_frames_share_is_told_from_the_objects_own_spread():
    """Frames whose objects share a level (sd 0.3) with their own noise (sd 0.2): the method of moments finds both
    variances, and a frame's scale, read from its objects, foretells a new object better than the dataset's mean.
    Frames without a level of their own: nothing between them, and every frame's scale is 1."""
    fs = benchmark_module("frame_scale")
    rng = np.random.default_rng(0)
    shared = _frames(rng, 0.3, 0.2)
    spread = fs.learn_spread(shared)
    assert spread.mean == pytest.approx(0.2, abs=0.03)
    assert spread.between == pytest.approx(0.09, rel=0.2) and spread.within == pytest.approx(0.04, rel=0.1)
    assert 0 < spread.weight(1) < spread.weight(5) < 1 and spread.weight(0) == 0
    told = fs.foretold(shared, spread)
    assert told["mse_frame_scale"] < 0.7 * told["mse_dataset_mean"] and told["slope_on_mates"] > 0.4
    level = np.full(4, spread.mean + 0.5)  # four objects half a log unit above the dataset's
    assert 1.0 < spread.factor(level) < math.exp(0.5) and spread.factor(np.array([])) == 1.0
    alone = fs.learn_spread(_frames(rng, 0.0, 0.2))
    assert alone.between < 0.005
    assert fs.foretold(_frames(rng, 0.0, 0.2), alone)["mse_frame_scale"] == pytest.approx(
        fs.foretold(_frames(np.random.default_rng(1), 0.0, 0.2), alone)["mse_dataset_mean"], rel=0.25)
    with pytest.raises(fs.ConfigError, match="too few"):
        fs.learn_spread([np.array([0.1]), np.array([])])


def test_scales_are_told_by_the_frame_names_prefix():
    fs = benchmark_module("frame_scale")
    frames = {"seqA_000001": np.log([0.5, 0.5]), "seqA_000002": np.log([2.0]), "seqB_000001": np.array([]),
              "seqC_000001": np.log([1.2])}
    assert fs.by_prefix(frames) == {"seqA": {"objects": 3, "median_scale": 0.5},
                                    "seqC": {"objects": 1, "median_scale": 1.2}}


def test_heights_under_the_plane_are_the_real_heights_over_their_scale():
    """Objects twice their class's typical size stand under the plane at half their height; the medians are per
    class over every frame."""
    fs = benchmark_module("frame_scale")
    person, car = BY_NAME["person"].id, BY_NAME["car"].id
    frames = {"a": [(person, 40, 2.0), (car, 30, 1.0)], "b": [(person, 20, 2.0), (person, 60, 2.0)], "c": []}
    assert fs.under_the_plane(frames) == {
        "person": {"objects": 3, "median_height": 40.0, "median_height_under_plane": 20.0},
        "car": {"objects": 1, "median_height": 30.0, "median_height_under_plane": 30.0}}


def test_boxes_scale_about_their_bottom_centre():
    fs = benchmark_module("frame_scale")
    box = torch.tensor([[0.2, 0.3, 0.4, 0.7]])
    out = fs.scaled_boxes(box, 1.5)[0].tolist()
    assert out == pytest.approx([0.15, 0.1, 0.45, 0.7])  # centre 0.3, bottom 0.7 kept; 0.3 wide, 0.6 tall


def test_candidates_take_the_scale_of_the_frame_they_are_inserted_into(trained_tiny, synthetic_root):
    """The wrapped inserter reads the frame's scale from its objects as the frame was (before anything went in)
    and scales every candidate box the GAN draws for that frame, and the filter's band, by it; the stage's
    inserter is left as it was."""
    fs = benchmark_module("frame_scale")
    cfg = trained_tiny
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    plain = build_inserter(cfg, torch.device("cpu"), bank)
    spread = fs.FrameSpread(mean=-1.0, within=0.05, between=0.2)  # every frame's objects stand "big"
    factors: list[float] = []
    scaled = fs.frame_scaled(spread, factors)(cfg, torch.device("cpu"), bank)
    dataset = CityscapesDataset(synthetic_root, ["train"])
    scene = dataset[0]
    logs = fs.frame_logs(scene, plain.yardstick, cfg.prepare.min_area)
    assert len(logs) >= 1
    scaled.insert(dataset[0], seed=3)  # a copy of the frame takes the insertions; ``scene`` stays as it was
    assert factors == [pytest.approx(spread.factor(logs))] and factors[0] > 1.2
    assert scaled.cfg.augment.scale_band == pytest.approx([b * factors[0] for b in cfg.augment.scale_band])
    assert plain.cfg.augment.scale_band == cfg.augment.scale_band
    inputs = [x.expand(16, -1, -1, -1) for x in scene_inputs(scene, cfg, torch.device("cpu"))]
    z_where, z_what = torch.randn(16, plain.gan.z_where), torch.randn(16, plain.gan.z_what)
    person = torch.zeros(16, dtype=torch.long)
    with torch.no_grad():
        raw = plain.gan.sample(*inputs, person, z_where, z_what)["box"]
        wrapped = scaled.gan.sample(*inputs, person, z_where, z_what)["box"]
    torch.testing.assert_close(wrapped, fs.scaled_boxes(raw, factors[0]))
    assert fs.augmentation.build_inserter is fs.STAGE_BUILD_INSERTER
    # With a share, only that power of the frame's scale: the boxes and the band move by it.
    part: list[float] = []
    partly = fs.frame_scaled(spread, part, share=0.3)(cfg, torch.device("cpu"), bank)
    partly.insert(dataset[0], seed=3)
    assert part == [pytest.approx(factors[0] ** 0.3)] and 1.0 < part[0] < factors[0]
    assert partly.cfg.augment.scale_band == pytest.approx([b * part[0] for b in cfg.augment.scale_band])


def test_a_dataset_with_cameras_is_refused_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "learn"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "rules.learned" in result.stderr


def test_a_subset_of_frames_is_only_read_from_a_semantic_dataset(tmp_path):
    fs = benchmark_module("frame_scale")
    with pytest.raises(fs.ConfigError, match="--every"):
        fs.run_arm(Config(), "val", 4, tmp_path / "arm", None)
    assert not (tmp_path / "arm").exists()


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_share_outside_zero_to_one_is_refused(tmp_path, share):
    fs = benchmark_module("frame_scale")
    with pytest.raises(fs.ConfigError, match="--share"):
        fs.compare(Config(), "val", 1, tmp_path / "out", share=share)
    assert not (tmp_path / "out").exists()
