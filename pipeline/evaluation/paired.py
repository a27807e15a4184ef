"""Paired comparisons of two downstream arms: the difference with a 95% interval from a bootstrap over
training seeds and test images, and the number of seeds a wanted interval needs.

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
experiment repeated over replicates - each a GAN trained afresh with its own seeds of the arms' random draws,
scored on the same test images - is read by ``replicated_difference``: a bootstrap that draws the replicates,
then the seeds within each drawn replicate, and the test images (shared by all), and beside it the t interval
over the replicates' own differences. Neither holds everything with a handful of replicates: the bootstrap
runs narrow over the GANs (it draws from the few there are), the t interval (R - 1 degrees of freedom) holds
the GANs' and seeds' spread but not the test images' (the same images in every replicate). A difference is
read as resolved when both intervals exclude zero on the same side (``ReplicatedDifference.resolved``).
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
    seed_draw = rng.integers(n_seeds, size=(draws, n_seeds))
    image_draw = rng.integers(n_images, size=(draws, n_images))
    seed_weights = np.stack([np.bincount(d, minlength=n_seeds) for d in seed_draw]).astype(np.float64)
    image_weights = np.stack([np.bincount(d, minlength=n_images) for d in image_draw]).astype(np.float64)
    boot = pooled_ratio(a, seed_weights, image_weights) - pooled_ratio(b, seed_weights, image_weights)
    ones_s, ones_i = np.ones((1, n_seeds)), np.ones((1, n_images))
    fig_a, fig_b = float(pooled_ratio(a, ones_s, ones_i)[0]), float(pooled_ratio(b, ones_s, ones_i)[0])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return PairedDifference(fig_a - fig_b, float(low), float(high), fig_a, fig_b, n_seeds, n_images)


@dataclass(frozen=True)
class ReplicatedDifference(PairedDifference):
    """Arm a minus arm b over replicates (GAN trainings): the figure and the 95% interval of the bootstrap over
    replicates, seeds and images (``low``, ``high``), the t interval over the replicates' differences, and each
    replicate's difference."""

    t_low: float
    t_high: float
    per_replicate: tuple[float, ...]

    def to_json(self) -> dict:
        return super().to_json() | {"t_ci95": [round(self.t_low, 4), round(self.t_high, 4)],
                                    "per_replicate": [round(d, 4) for d in self.per_replicate],
                                    "replicates": len(self.per_replicate)}

    @property
    def resolved(self) -> bool:
        """Whether both intervals exclude zero on the same side."""
        return (self.low > 0 and self.t_low > 0) or (self.high < 0 and self.t_high < 0)


def replicated_difference(counts_a: np.ndarray, counts_b: np.ndarray, draws: int = 4000, seed: int = 0,
                          confidence: float = 0.95, share: bool = True) -> ReplicatedDifference:
    """Arm a minus arm b, each given as [replicates, seeds, images, 2] counts (``share``: as ``check_counts``):
    every replicate with the same number of seeds, all scored on the same test images.

    A bootstrap draw takes R replicates with replacement, for each of them S of its seeds with replacement
    (afresh each time a replicate is drawn again), and the images once for all; an arm's figure is the mean
    over the drawn replicates of the mean over their drawn seeds of the ratio over the drawn images."""
    a, b = (np.asarray(c, dtype=np.float64) for c in (counts_a, counts_b))
    if a.ndim != 4 or a.shape[0] < 2:
        raise ValueError(f"expected [replicates, seeds, images, 2] counts of 2 or more replicates, got {a.shape}")
    if a.shape != b.shape:
        raise ValueError(f"the arms are not paired: counts of shape {a.shape} and {b.shape}")
    n_rep, n_seeds, n_images = a.shape[:3]
    flat_a = check_counts(a.reshape(n_rep * n_seeds, n_images, 2), "arm a", share)
    flat_b = check_counts(b.reshape(n_rep * n_seeds, n_images, 2), "arm b", share)
    rng = np.random.default_rng(seed)
    rep_draw = rng.integers(n_rep, size=(draws, n_rep))
    seed_draw = rng.integers(n_seeds, size=(draws, n_rep, n_seeds))
    weights = np.zeros((draws, n_rep, n_seeds))
    np.add.at(weights, (np.arange(draws)[:, None, None], rep_draw[..., None], seed_draw), 1.0)
    weights = weights.reshape(draws, n_rep * n_seeds)
    image_draw = rng.integers(n_images, size=(draws, n_images))
    image_weights = np.stack([np.bincount(d, minlength=n_images) for d in image_draw]).astype(np.float64)
    boot = pooled_ratio(flat_a, weights, image_weights) - pooled_ratio(flat_b, weights, image_weights)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    own_seeds = np.kron(np.eye(n_rep), np.ones((1, n_seeds)))  # one row per replicate: its seeds, all images
    all_images = np.ones((n_rep, n_images))
    per_rep_a = pooled_ratio(flat_a, own_seeds, all_images)
    per_rep_b = pooled_ratio(flat_b, own_seeds, all_images)
    diffs = per_rep_a - per_rep_b
    mean = float(diffs.mean())
    sem = float(stats.sem(diffs))
    t_low, t_high = stats.t.interval(confidence, n_rep - 1, loc=mean, scale=sem) if sem > 0 else (mean, mean)
    return ReplicatedDifference(mean, float(low), float(high), float(per_rep_a.mean()), float(per_rep_b.mean()),
                                n_seeds, n_images, t_low=float(t_low), t_high=float(t_high),
                                per_replicate=tuple(float(d) for d in diffs))


def seeds_needed(paired_sd: float, half_width: float, confidence: float = 0.95, most: int = 1000) -> int:
    """The fewest seeds whose t interval of a mean paired difference is at most ``half_width`` wide on each
    side, when the per-seed differences spread with standard deviation ``paired_sd``."""
    if half_width <= 0:
        raise ValueError(f"half_width must be > 0, got {half_width}")
    if paired_sd == 0:
        return 2
    for n in range(2, most + 1):
        if stats.t.ppf(0.5 + confidence / 2, n - 1) * paired_sd / math.sqrt(n) <= half_width:
            return n
    return most
