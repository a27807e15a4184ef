"""Paired comparisons of two downstream arms: the difference with a 95% interval from a bootstrap over
training seeds and test images, and over GAN trainings, seeds and images with the seeds and GANs a wanted
interval needs.

The arms of one run share everything but their training set: the same seed gives every arm the same
initial weights and batches, and every arm is scored on the same test images. So a difference between two
arms is read pairwise: one bootstrap draw resamples the seeds and, independently, the test images (with
replacement), and both arms are scored on that same draw. Both sources of noise are in the interval - a
new seed trains another model, a new test set holds other images - and neither arm gets a luckier draw.

IoU is a ratio of sums (intersection and union summed over the test images, then divided), so what is
resampled are each image's two counts, not per-image IoUs (an image without the class would have none).
The other figures compared this way are ratios of per-image sums too: recall (objects found, objects), the
share of look-alike pixels labelled as what they show (so labelled, pixels), false positives per frame
(false positives, 1). An arm's figure on a draw is its ratio per resampled seed over the resampled images,
averaged over the seeds. ``scipy.stats.bootstrap`` resamples one axis; this draws two, so it is written
out here, with the percentile interval scipy calls ``method="percentile"``.

One trained GAN is one draw too: two GANs trained the same way give other inserted objects, and the arms'
difference can move by more than the interval over seeds (docs/findings.md, CamVid N = 25). So the same
experiment repeated over replicates - each a GAN trained afresh, scored on the same test images - is read by
``replicated_difference``. Its replicates and seeds are crossed, not nested: seed s is the same initial weights
and batches in every replicate, so a seed that suits one arm suits it under every GAN (on the built-in data
segmenter seed 0 puts ours 0.09-0.21 below copy-paste under each of four GANs, seed 2 0.02-0.06). An interval
over the replicates' own differences treats the seeds as fixed and misses that; the two intervals here treat
both as random: a bootstrap that draws replicates and seeds independently (the same seeds for every drawn
replicate) and the test images, and the two-way t interval of the replicates x seeds table
(``crossed_t_interval``). With a handful of either the bootstrap runs narrow (it draws from the few there are)
and the t interval leaves out the test images' noise (the same images in every cell); a difference is read as
resolved when both exclude zero on the same side (``ReplicatedDifference.resolved``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PairedDifference:
    """Arm a minus arm b: the figure on the data as measured and its bootstrap interval."""

    difference: float
    low: float
    high: float
    a: float
    b: float
    seeds: int
    images: int

    def to_json(self) -> dict:
        return {"difference": round(self.difference, 4), "ci95": [round(self.low, 4), round(self.high, 4)],
                "a": round(self.a, 4), "b": round(self.b, 4), "seeds": self.seeds, "images": self.images}

    @property
    def resolved(self) -> bool:
        """Whether the interval excludes zero (the sign of the difference is what the data says)."""
        return self.low > 0 or self.high < 0


def check_counts(counts: np.ndarray, name: str, share: bool = True) -> np.ndarray:
    """``counts`` as float [seeds, images, 2] (numerator, denominator: intersection and union for IoU), or a
    ValueError naming it. ``share``: the numerator is a part of the denominator (IoU, recall), so never larger."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 3 or counts.shape[2] != 2 or counts.shape[0] < 1 or counts.shape[1] < 1:
        raise ValueError(f"{name}: expected [seeds, images, 2] counts, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError(f"{name}: a count is negative")
    if share and (counts[..., 0] > counts[..., 1]).any():
        raise ValueError(f"{name}: a numerator (intersection) is larger than its denominator (union)")
    return counts


def resampled_counts(rng: np.random.Generator, n: int, draws: int) -> np.ndarray:
    """[draws, n] float: how many times each of n units a bootstrap draw of n with replacement holds."""
    picks = rng.integers(n, size=(draws, n))
    return np.stack([np.bincount(d, minlength=n) for d in picks]).astype(np.float64)


def pooled_ratio(counts: np.ndarray, seed_weights: np.ndarray, image_weights: np.ndarray) -> np.ndarray:
    """Per draw: each seed's ratio of sums over the weighted images (its IoU, for IoU counts), averaged with the
    seed weights.

    ``counts`` [S, I, 2]; ``seed_weights`` [B, S] and ``image_weights`` [B, I] are how many times each seed
    and image a draw holds. A seed whose images sum to a zero denominator in a draw (no pixel of the class,
    for IoU) counts as 0."""
    inter = image_weights @ counts[..., 0].T  # [B, S]
    union = image_weights @ counts[..., 1].T
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return (seed_weights * iou).sum(1) / seed_weights.sum(1)


def paired_difference(counts_a: np.ndarray, counts_b: np.ndarray, draws: int = 4000, seed: int = 0,
                      confidence: float = 0.95, share: bool = True) -> PairedDifference:
    """Arm a minus arm b, each given as [seeds, images, 2] counts of the same seeds and test images (``share``:
    as ``check_counts``)."""
    a, b = check_counts(counts_a, "arm a", share), check_counts(counts_b, "arm b", share)
    if a.shape != b.shape:
        raise ValueError(f"the arms are not paired: counts of shape {a.shape} and {b.shape}")
    n_seeds, n_images = a.shape[:2]
    rng = np.random.default_rng(seed)
    seed_weights, image_weights = resampled_counts(rng, n_seeds, draws), resampled_counts(rng, n_images, draws)
    boot = pooled_ratio(a, seed_weights, image_weights) - pooled_ratio(b, seed_weights, image_weights)
    ones_s, ones_i = np.ones((1, n_seeds)), np.ones((1, n_images))
    fig_a, fig_b = float(pooled_ratio(a, ones_s, ones_i)[0]), float(pooled_ratio(b, ones_s, ones_i)[0])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return PairedDifference(fig_a - fig_b, float(low), float(high), fig_a, fig_b, n_seeds, n_images)


@dataclass(frozen=True)
class ReplicatedDifference(PairedDifference):
    """Arm a minus arm b over replicates (GAN trainings) crossed with seeds: the figure and the 95% interval of
    the bootstrap over replicates, seeds and images (``low``, ``high``), the t interval of the replicates x
    seeds table (``t_low``, ``t_high``), each replicate's and each seed's difference, and the table's
    variance components (``gan``: between replicates, ``seed``: between seeds, ``residual``: one cell's rest;
    ``seed`` is None with one seed)."""

    t_low: float
    t_high: float
    per_replicate: tuple[float, ...]
    per_seed: tuple[float, ...]
    components: dict

    def to_json(self) -> dict:
        return super().to_json() | {"t_ci95": [round(self.t_low, 4), round(self.t_high, 4)],
                                    "per_replicate": [round(d, 4) for d in self.per_replicate],
                                    "per_seed": [round(d, 4) for d in self.per_seed],
                                    "variance_components": {k: None if v is None else round(v, 6)
                                                            for k, v in self.components.items()},
                                    "replicates": len(self.per_replicate)}

    @property
    def resolved(self) -> bool:
        """Whether both intervals exclude zero on the same side."""
        return (self.low > 0 and self.t_low > 0) or (self.high < 0 and self.t_high < 0)

    def half_width(self, replicates: int, seeds: int, confidence: float = 0.95) -> float:
        """``planned_half_width`` at this difference's measured variance components."""
        return planned_half_width(self.components, replicates, seeds, confidence)

    def needed(self, half_width: float, most: int = 1000) -> dict:
        """How many seeds (with this many replicates) and how many replicates (with this many seeds) a
        ``half_width`` interval would take at the measured components; None where no count up to ``most``
        reaches it (the other factor's term alone is wider)."""
        if half_width <= 0:
            raise ValueError(f"half_width must be > 0, got {half_width}")
        n_rep, n_seeds = len(self.per_replicate), len(self.per_seed)
        seeds = next((s for s in range(2, most + 1) if self.half_width(n_rep, s) <= half_width), None)
        reps = next((r for r in range(2, most + 1) if self.half_width(r, n_seeds) <= half_width), None)
        return {"seeds_needed": seeds, "replicates_needed": reps}


def planned_half_width(components: dict, replicates: int, seeds: int, confidence: float = 0.95) -> float:
    """The half-width of ``crossed_t_interval`` for a design of ``replicates`` GANs x ``seeds`` seeds whose mean
    squares are the ones the variance ``components`` expect (a plan, not an interval): the mean's variance and
    Satterthwaite's degrees of freedom as the interval computes them, so a factor with few levels and a large
    component (four GANs that differ) widens the plan as it widens the interval."""
    residual, seed = components["residual"], components["seed"] or 0.0
    ms_rep, ms_seed = residual + seeds * components["gan"], residual + replicates * seed
    return _t_half_width(_mean_terms(ms_rep, ms_seed, residual, replicates, seeds), replicates * seeds, confidence)


def crossed_t_interval(cells: np.ndarray, confidence: float = 0.95) -> tuple[float, float, dict]:
    """The t interval of the mean of a replicates x seeds table of differences, both factors random and
    crossed (seed s gives every replicate's arms the same initial weights and batches): two-way ANOVA without
    repeats, the mean's variance (MS_rep + MS_seed - MS_rest) / (R S) with components below zero set to zero,
    and Satterthwaite's degrees of freedom. With one seed, the one-way t interval over the replicates.
    Returns (low, high, variance components)."""
    n_rep, n_seeds = cells.shape
    mean = float(cells.mean())
    rep_means, seed_means = cells.mean(1), cells.mean(0)
    ms_rep = n_seeds * float(((rep_means - mean) ** 2).sum()) / (n_rep - 1)
    if n_seeds == 1:
        terms, components = [(ms_rep, n_rep - 1)], {"gan": ms_rep, "seed": None, "residual": 0.0}
    else:
        ms_seed = n_rep * float(((seed_means - mean) ** 2).sum()) / (n_seeds - 1)
        rest = cells - rep_means[:, None] - seed_means[None, :] + mean
        df_rest = (n_rep - 1) * (n_seeds - 1)
        ms_rest = float((rest ** 2).sum()) / df_rest
        components = {"gan": max(ms_rep - ms_rest, 0.0) / n_seeds, "seed": max(ms_seed - ms_rest, 0.0) / n_rep,
                      "residual": ms_rest}
        terms = _mean_terms(ms_rep, ms_seed, ms_rest, n_rep, n_seeds)
    half = _t_half_width(terms, n_rep * n_seeds, confidence)
    return mean - half, mean + half, components


def _mean_terms(ms_rep: float, ms_seed: float, ms_rest: float, n_rep: int, n_seeds: int) -> list[tuple[float, int]]:
    """The mean's variance x R S as (mean square, degrees of freedom) terms: each factor whose mean square is
    above the rest's adds its own, and the rest's enters 1 - (how many did): MS_rest, MS_rep, MS_seed or
    MS_rep + MS_seed - MS_rest."""
    df_rest = (n_rep - 1) * (n_seeds - 1)
    terms = [(ms, df) for ms, df in ((ms_rep, n_rep - 1), (ms_seed, n_seeds - 1)) if ms > ms_rest]
    if len(terms) != 1:
        terms.append(((1 - len(terms)) * ms_rest, df_rest))
    return terms


def _t_half_width(terms: list[tuple[float, int]], cells: int, confidence: float) -> float:
    """Half the t interval of a mean over ``cells`` whose variance x cells is the terms' sum, on Satterthwaite's
    degrees of freedom; 0 when that sum is not above zero."""
    total = sum(m for m, _ in terms)
    if total <= 0:
        return 0.0
    df = total ** 2 / sum(m ** 2 / d for m, d in terms)
    return float(stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(total / cells))


def replicated_difference(counts_a: np.ndarray, counts_b: np.ndarray, draws: int = 4000, seed: int = 0,
                          confidence: float = 0.95, share: bool = True) -> ReplicatedDifference:
    """Arm a minus arm b, each given as [replicates, seeds, images, 2] counts (``share``: as ``check_counts``):
    every replicate with the same seeds, all scored on the same test images.

    Replicates and seeds are crossed - seed s is the same initial weights and batches in every replicate - so
    a bootstrap draw takes R replicates and S seeds with replacement, the same seeds for every drawn replicate
    (the pigeonhole bootstrap of crossed factors), and the images once for all; an arm's figure is the mean
    over the drawn (replicate, seed) cells of the ratio over the drawn images. The t interval is the two-way
    one of ``crossed_t_interval`` over the cells' differences (each cell: one seed of one replicate, all
    images)."""
    a, b = (np.asarray(c, dtype=np.float64) for c in (counts_a, counts_b))
    if a.ndim != 4 or a.shape[0] < 2:
        raise ValueError(f"expected [replicates, seeds, images, 2] counts of 2 or more replicates, got {a.shape}")
    if a.shape != b.shape:
        raise ValueError(f"the arms are not paired: counts of shape {a.shape} and {b.shape}")
    n_rep, n_seeds, n_images = a.shape[:3]
    flat_a = check_counts(a.reshape(n_rep * n_seeds, n_images, 2), "arm a", share)
    flat_b = check_counts(b.reshape(n_rep * n_seeds, n_images, 2), "arm b", share)
    rng = np.random.default_rng(seed)
    rep_weights, seed_weights = resampled_counts(rng, n_rep, draws), resampled_counts(rng, n_seeds, draws)
    weights = (rep_weights[:, :, None] * seed_weights[:, None, :]).reshape(draws, n_rep * n_seeds)
    image_weights = resampled_counts(rng, n_images, draws)
    boot = pooled_ratio(flat_a, weights, image_weights) - pooled_ratio(flat_b, weights, image_weights)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    each_cell = np.eye(n_rep * n_seeds)  # one row per (replicate, seed): that run alone, all images
    all_images = np.ones((n_rep * n_seeds, n_images))
    cell_a, cell_b = (pooled_ratio(c, each_cell, all_images).reshape(n_rep, n_seeds) for c in (flat_a, flat_b))
    cells = cell_a - cell_b
    t_low, t_high, components = crossed_t_interval(cells, confidence)
    return ReplicatedDifference(float(cells.mean()), float(low), float(high), float(cell_a.mean()),
                                float(cell_b.mean()),
                                n_seeds, n_images, t_low=t_low, t_high=t_high,
                                per_replicate=tuple(float(d) for d in cells.mean(1)),
                                per_seed=tuple(float(d) for d in cells.mean(0)), components=components)
