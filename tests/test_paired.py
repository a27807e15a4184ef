"""The paired bootstrap over seeds and test images (pipeline/evaluation/paired.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation.paired import paired_difference, pooled_ratio, seeds_needed


def counts(rng, seeds: int, images: int, iou: np.ndarray | float, union_mean: float = 400.0) -> np.ndarray:
    """[seeds, images, 2] counts: unions drawn per image (the same images in every seed), intersections
    binomial around ``iou`` (a number or one per seed)."""
    union = rng.poisson(union_mean, size=images).astype(float)
    iou = np.broadcast_to(np.asarray(iou, float).reshape(-1, 1) if np.ndim(iou) else iou, (seeds, images))
    inter = rng.binomial(union.astype(int)[None].repeat(seeds, 0), iou)
    return np.stack([inter, np.broadcast_to(union, (seeds, images))], -1).astype(float)


def test_an_arm_against_itself_differs_by_nothing():
    c = counts(np.random.default_rng(0), 3, 50, 0.5)
    d = paired_difference(c, c, draws=500)
    assert d.difference == 0 and d.low == 0 and d.high == 0 and not d.resolved


def test_the_pooled_figure_is_a_ratio_of_sums():
    c = np.array([[[1, 2], [0, 0], [3, 6]]], float)  # one seed, three images (the second has no pixel)
    one = np.ones((1, 1)), np.ones((1, 3))
    assert pooled_ratio(c, *one)[0] == pytest.approx(4 / 8)
    twice_first = pooled_ratio(c, np.ones((1, 1)), np.array([[2.0, 0, 1]]))
    assert twice_first[0] == pytest.approx(5 / 10)


def test_a_real_difference_is_resolved_and_inside_its_interval():
    rng = np.random.default_rng(1)
    a = counts(rng, 5, 100, 0.55)
    b = a.copy()
    b[..., 0] = np.floor(a[..., 0] * 0.9)  # b finds 10% fewer of the same pixels
    d = paired_difference(a, b, draws=1000)
    assert d.resolved and d.low <= d.difference <= d.high
    assert d.difference == pytest.approx(0.055, abs=0.01)


def test_pairing_removes_what_both_arms_share():
    """Seeds that move both arms together (a lucky initialisation helps both) widen each arm's spread,
    not the paired difference."""
    rng = np.random.default_rng(2)
    per_seed = np.array([0.3, 0.5, 0.7, 0.4, 0.6])  # a large seed effect, shared
    a = counts(rng, 5, 200, per_seed + 0.02)
    b = a.copy()
    b[..., 0] = np.round(a[..., 0] * (per_seed / (per_seed + 0.02))[:, None])
    d = paired_difference(a, b, draws=1000)
    assert d.high - d.low < 0.01  # the shared seed effect (std 0.16) is not in it
    assert d.resolved


def test_the_interval_covers_a_null_difference_about_95_in_100_times():
    """Two arms of the same quality, drawn afresh 200 times: the 95% interval holds 0 in 88-100% of them
    (a percentile bootstrap on 3 seeds runs a little narrow; far below 88% would be a broken interval)."""
    rng = np.random.default_rng(3)
    held = 0
    for _ in range(200):
        seed_effect = rng.normal(0.5, 0.05, size=3)
        a = counts(rng, 3, 40, seed_effect + rng.normal(0, 0.02, size=3), union_mean=100)
        b = a.copy()
        b[..., 0] = rng.binomial(a[..., 1].astype(int), np.clip(seed_effect + rng.normal(0, 0.02, 3), 0, 1)[:, None])
        d = paired_difference(a, b, draws=400, seed=int(rng.integers(1 << 31)))
        held += d.low <= 0 <= d.high
    assert 176 <= held <= 200, held


def test_unpaired_or_impossible_counts_are_refused():
    c = counts(np.random.default_rng(4), 2, 10, 0.5)
    with pytest.raises(ValueError, match="not paired"):
        paired_difference(c, c[:, :5])
    bad = c.copy()
    bad[0, 0, 0] = bad[0, 0, 1] + 1
    with pytest.raises(ValueError, match="larger than its denominator"):
        paired_difference(bad, c)
    # A count that is not a share (false positives per frame: [false positives, 1]) passes when so declared ...
    assert paired_difference(bad, c, draws=50, share=False).difference > 0
    bad[0, 0, 0] = -1  # ... a negative one never does
    with pytest.raises(ValueError, match="negative"):
        paired_difference(bad, c, share=False)
    with pytest.raises(ValueError, match="seeds, images, 2"):
        paired_difference(c[..., 0], c[..., 0])


def test_seeds_needed_follows_the_t_interval():
    from scipy import stats

    n = seeds_needed(0.03, 0.02)
    half = lambda k: stats.t.ppf(0.975, k - 1) * 0.03 / np.sqrt(k)  # noqa: E731
    assert half(n) <= 0.02 < half(n - 1)
    assert seeds_needed(0.06, 0.02) > n > seeds_needed(0.01, 0.02) >= 2
