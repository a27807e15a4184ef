"""The raw placements' intervals: frames, not samples, are what the bootstrap resamples."""

import numpy as np
import pytest

from pipeline.evaluation.where_quality import ratio_of_shares, share_interval


def frames(plausible_per_frame: list[int], per_frame: int = 4) -> np.ndarray:
    """[frames, 2] counts: each frame's plausible samples out of ``per_frame``."""
    return np.array([[k, per_frame] for k in plausible_per_frame], dtype=float)


def test_samples_of_one_frame_move_together_so_their_interval_is_wider():
    # The same share, 0.75 of 400 samples: spread evenly (3 of 4 in every frame) or clustered (whole frames
    # plausible or not). Only clustering makes the share uncertain over frames; a bootstrap over samples
    # would give both the same interval.
    even = share_interval(frames([3] * 100))
    clustered = share_interval(frames([4] * 75 + [0] * 25))
    assert even == [0.75, 0.75]
    assert clustered[0] < 0.72 and clustered[1] > 0.78 and clustered[0] < 0.75 < clustered[1]


def test_raw_over_real_is_paired_on_the_same_frames():
    rng = np.random.default_rng(0)
    real = frames(rng.integers(3, 5, 120))
    model = real.copy()  # a model as plausible as the real objects in every frame
    same = ratio_of_shares(model, real)
    assert same["ratio"] == 1.0 and same["ci95"] == [1.0, 1.0]  # paired: no frame draw can tell them apart
    worse = frames(np.maximum(real[:, 0] - rng.integers(0, 2, 120), 0))
    row = ratio_of_shares(worse, real)
    assert row["ratio"] == pytest.approx(worse[:, 0].sum() / real[:, 0].sum(), abs=1e-4)  # rounded to 4 places
    assert row["ci95"][0] < row["ratio"] < row["ci95"][1] < 1.0


def test_too_few_frames_or_no_real_object_give_no_interval():
    assert share_interval(frames([2])) is None
    assert ratio_of_shares(frames([2, 3]), np.zeros((2, 2))) == {"ratio": None, "ci95": None}
