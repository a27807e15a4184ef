"""The paired bootstrap over seeds and test images (pipeline/evaluation/paired.py), and over replicates (GAN
trainings) of the whole experiment (pipeline/downstream.py's replicated_differences)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from pipeline.config import Config, DownstreamConfig, EvaluateConfig
from pipeline.downstream import replicated_differences, run_folder_config
from pipeline.errors import ConfigError
from pipeline.evaluation.paired import (
    crossed_t_interval,
    paired_difference,
    pooled_ratio,
    replicated_difference,
)


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


def replicates(rng, n_rep: int, seeds: int, images: int, gan_sd: float, union_mean: float = 100.0,
               seed_sd: float = 0.0):
    """[replicates, seeds, images, 2] counts of two arms of the same quality on average, where each replicate
    (a GAN trained afresh) moves arm a by its own offset (sd ``gan_sd``), shared by all its seeds, and each seed
    moves arm a by its own offset (sd ``seed_sd``), shared by all replicates (seed s: the same initial weights
    and batches in every replicate)."""
    union = rng.poisson(union_mean, size=images).astype(int)
    seed_offset = rng.normal(0, seed_sd, size=seeds)
    a, b = [], []
    for offset in rng.normal(0, gan_sd, size=n_rep):
        base = rng.normal(0.5, 0.05, size=seeds)  # the seed effect, shared by both arms
        ia = rng.binomial(union[None].repeat(seeds, 0), np.clip(base + offset + seed_offset, 0, 1)[:, None])
        ib = rng.binomial(union[None].repeat(seeds, 0), np.clip(base, 0, 1)[:, None])
        a.append(np.stack([ia, np.broadcast_to(union, ia.shape)], -1))
        b.append(np.stack([ib, np.broadcast_to(union, ib.shape)], -1))
    return np.array(a, float), np.array(b, float)


def test_one_gan_per_replicate_is_what_the_interval_over_replicates_holds():
    """Arms equal on average, but each trained GAN moves ours by its own offset (sd 0.03, larger than the
    seeds' and images' noise): drawn afresh 200 times with 3 replicates of 3 seeds, the two-way t interval
    over replicates and seeds holds 0 in 88-100% of them, the bootstrap over replicates and seeds more often
    than the interval over seeds that pools the 9 runs as one GAN's (which misses the GANs' noise: far below
    95%)."""
    rng = np.random.default_rng(5)
    held_t = held_boot = held_pooled = 0
    for _ in range(200):
        a, b = replicates(rng, 3, 3, 40, gan_sd=0.03)
        d = replicated_difference(a, b, draws=300, seed=int(rng.integers(1 << 31)))
        pooled = paired_difference(a.reshape(9, 40, 2), b.reshape(9, 40, 2), draws=300)
        held_t += d.t_low <= 0 <= d.t_high
        held_boot += d.low <= 0 <= d.high
        held_pooled += pooled.low <= 0 <= pooled.high
    assert 176 <= held_t <= 200, held_t
    assert held_pooled < 150, held_pooled
    assert held_boot > held_pooled + 20, (held_boot, held_pooled)


def test_a_seed_shared_by_every_replicate_is_what_the_two_way_interval_holds():
    """Arms equal on average, but each seed moves ours by its own offset in every replicate alike (sd 0.04:
    seed s is the same initial weights and batches in each): drawn afresh 200 times with 4 replicates of 4
    seeds, the two-way t interval holds 0 in 88-100% of them; a t interval over the replicates' own
    differences (which treats the four seeds as fixed) far less often, and the bootstrap that draws the seeds
    once for all replicates more often than it."""
    rng = np.random.default_rng(11)
    held_t = held_boot = held_one_way = 0
    for _ in range(200):
        a, b = replicates(rng, 4, 4, 40, gan_sd=0.0, seed_sd=0.04)
        d = replicated_difference(a, b, draws=300, seed=int(rng.integers(1 << 31)))
        per_rep = np.array(d.per_replicate)
        one_way = stats.t.interval(0.95, 3, loc=per_rep.mean(), scale=stats.sem(per_rep))
        held_t += d.t_low <= 0 <= d.t_high
        held_boot += d.low <= 0 <= d.high
        held_one_way += one_way[0] <= 0 <= one_way[1]
    assert 176 <= held_t <= 200, held_t
    assert held_one_way < 130, held_one_way
    assert held_boot > held_one_way + 30, (held_boot, held_one_way)


def test_the_two_way_interval_on_a_table_worked_by_hand():
    """cells [[0, 1], [2, 3]]: replicate means 0.5, 2.5 (MS 4), seed means 1, 2 (MS 1), no rest: the mean's
    variance (4 + 1) / 4 on Satterthwaite's 25 / 17 degrees of freedom; with one seed, the one-way t."""
    low, high, components = crossed_t_interval(np.array([[0.0, 1.0], [2.0, 3.0]]))
    want = stats.t.interval(0.95, 25 / 17, loc=1.5, scale=np.sqrt(5 / 4))
    assert (low, high) == pytest.approx(want)
    assert components == pytest.approx({"gan": 2.0, "seed": 0.5, "residual": 0.0})
    column = np.array([[0.1], [0.3], [0.2]])
    low, high, _ = crossed_t_interval(column)
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 2, loc=0.2, scale=stats.sem(column[:, 0])))
    # a factor whose mean square is below the rest's adds nothing: the replicates' alone (MS 1.5), on R - 1 df
    noisy = np.array([[0.0, 0.1, -0.1], [1.0, 0.9, 1.1]])
    low, high, components = crossed_t_interval(noisy)
    assert components["seed"] == 0.0 and components["gan"] > 0
    assert (low, high) == pytest.approx(stats.t.interval(0.95, 1, loc=0.5, scale=np.sqrt(1.5 / 6)))


def test_the_plan_asks_for_seeds_when_the_seeds_spread():
    """Seeds spread (component 0.004), GANs do not: the interval's variance is 0.004 / S on S - 1 degrees of
    freedom, so +-0.02 takes 41 seeds (t(40) sqrt(0.004 / 41) = 0.0200, t(39) sqrt(0.004 / 40) = 0.0202; the
    normal quantile would say 39) at any number of GANs, and no number of GANs at the four seeds measured."""
    rng = np.random.default_rng(12)
    a, b = replicates(rng, 3, 4, 30, gan_sd=0.0)
    d = dataclasses.replace(replicated_difference(a, b, draws=20),
                            components={"gan": 0.0, "seed": 0.004, "residual": 0.0})
    assert d.needed(0.02) == {"seeds_needed": 41, "replicates_needed": None}
    assert d.half_width(3, 41) <= 0.02 < d.half_width(3, 40)
    with pytest.raises(ValueError, match="half_width"):
        d.needed(0.0)


def test_the_plan_at_the_measured_design_is_the_measured_interval():
    """Where both components are above zero they give back the table's mean squares, so the plan for the
    design measured is the t interval measured; and where the GANs differ, few GANs widen the plan through
    their degrees of freedom, which a normal quantile would miss (four GANs: 3 df)."""
    rng = np.random.default_rng(3)
    a, b = replicates(rng, 4, 12, 60, gan_sd=0.02, seed_sd=0.02)
    d = replicated_difference(a, b, draws=20)
    assert d.components["gan"] > 0 and d.components["seed"] > 0
    assert d.half_width(4, 12) == pytest.approx((d.t_high - d.t_low) / 2)
    planned = dataclasses.replace(d, components={"gan": 0.0004, "seed": 0.0004, "residual": 0.0})
    var = 0.0004 / 4 + 0.0004 / 12  # gan / R + seed / S, on about 5 df (the GANs' mean square dominates)
    assert planned.half_width(4, 12) == pytest.approx(stats.t.ppf(0.975, 5.18) * np.sqrt(var), rel=1e-3)
    assert planned.half_width(4, 12) > stats.norm.ppf(0.975) * np.sqrt(var) * 1.25
    assert planned.half_width(40, 12) < planned.half_width(4, 120)  # the GANs' term shrinks only with GANs


def test_replicates_agreeing_on_a_real_difference_resolve_it():
    rng = np.random.default_rng(6)
    a, b = replicates(rng, 3, 3, 100, gan_sd=0.0)
    b[..., 0] = np.floor(a[..., 0] * 0.85)  # b finds 15% fewer of the same pixels in every replicate
    d = replicated_difference(a, b, draws=500)
    assert d.resolved and d.low <= d.difference <= d.high and d.t_low <= d.difference <= d.t_high
    assert len(d.per_replicate) == 3 and min(d.per_replicate) > 0
    assert d.difference == pytest.approx(np.mean(d.per_replicate)) == pytest.approx(d.a - d.b)
    # one replicate's own difference is the paired difference of its runs
    one = paired_difference(a[1], b[1], draws=50)
    assert d.per_replicate[1] == pytest.approx(one.difference)


def test_replicated_counts_of_another_shape_are_refused():
    rng = np.random.default_rng(7)
    a, b = replicates(rng, 2, 3, 20, gan_sd=0.0)
    with pytest.raises(ValueError, match="not paired"):
        replicated_difference(a, b[:, :2])
    with pytest.raises(ValueError, match="2 or more replicates"):
        replicated_difference(a[:1], b[:1])
    with pytest.raises(ValueError, match="2 or more replicates"):
        replicated_difference(a[0], b[0])


def write_replicate(folder: Path, per_seed: dict[int, dict[str, dict[str, list]]]) -> Config:
    """A recorded run folder's per-image counts (runs/25-SEED.json) and the config that reads them."""
    for seed, arms in per_seed.items():
        path = folder / "runs" / f"25-{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"seed": seed, "arms": arms}))
    down = DownstreamConfig(out=str(folder), sizes=[25], seeds=sorted(per_seed))
    return Config(evaluate=EvaluateConfig(downstream=down))


def run_arms(rng, images: int, objects: np.ndarray) -> dict[str, dict[str, list]]:
    def rows(total):
        return np.stack([rng.binomial(total, 0.5), total], -1).tolist()
    union = rng.poisson(300, size=images)
    return {arm: {"person": rows(union), "recall_32px_up_person": rows(objects),
                  "false_positives_person": np.stack([rng.poisson(3, images), np.ones(images, int)], -1).tolist()}
            for arm in ("subset", "ours", "copy_paste", "rules")}


def test_replicated_differences_read_the_runs_of_each_replicate(tmp_path):
    rng = np.random.default_rng(8)
    objects = rng.integers(0, 4, size=12)
    cfgs = {name: write_replicate(tmp_path / name, {s: run_arms(rng, 12, objects) for s in (0, 1)})
            for name in ("gan-a", "gan-b", "gan-c")}
    out = replicated_differences(cfgs, 25)
    assert out["replicates"] == ["gan-a", "gan-b", "gan-c"]
    assert set(out["metrics"]) == {"segmenter_iou_person", "recall_32px_up_person", "false_positives_person"}
    row = out["metrics"]["segmenter_iou_person"]["paired"]["ours_minus_rules"]
    assert row["replicates"] == 3 and row["seeds"] == 2 and row["images"] == 12
    # IoU gets a plan: a few more seeds; no number of GANs, since the seeds' term rides on the two seeds' 1 df
    assert row["variance_components"]["seed"] > 0 and row["seeds_needed"] >= 3 and row["replicates_needed"] is None
    fp = out["metrics"]["false_positives_person"]["paired"]["ours_minus_rules"]
    assert fp["seeds_needed"] is None and fp["replicates_needed"] is None  # no plan: +-0.02 is in IoU's units
    # each replicate's difference is that replicate's own paired difference over its seeds and images
    b = read_back(tmp_path / "gan-b", "person")
    own = paired_difference(b["ours"], b["rules"], draws=10)
    assert row["per_replicate"][1] == pytest.approx(own.difference, abs=1e-4)
    assert out["metrics"]["segmenter_iou_person"]["mean"]["ours"] == pytest.approx(row["a"])


def read_back(folder: Path, key: str) -> dict[str, np.ndarray]:
    runs = [json.loads((folder / "runs" / f"25-{s}.json").read_text())["arms"] for s in (0, 1)]
    return {arm: np.array([r[arm][key] for r in runs], float) for arm in runs[0]}


def test_replicates_scored_on_other_test_images_are_refused(tmp_path):
    rng = np.random.default_rng(9)
    objects = rng.integers(0, 4, size=12)
    a = write_replicate(tmp_path / "a", {s: run_arms(rng, 12, objects) for s in (0, 1)})
    other = write_replicate(tmp_path / "other", {s: run_arms(rng, 12, objects[::-1] + 1) for s in (0, 1)})
    with pytest.raises(ConfigError, match="not the same test images"):
        replicated_differences({"a": a, "other": other}, 25)
    fewer = write_replicate(tmp_path / "fewer", {s: run_arms(rng, 10, objects[:10]) for s in (0, 1)})
    with pytest.raises(ConfigError, match="differ in seeds or test images"):
        replicated_differences({"a": a, "fewer": fewer}, 25)
    other_seeds = write_replicate(tmp_path / "other-seeds", {s: run_arms(rng, 12, objects) for s in (1, 2)})
    with pytest.raises(ConfigError, match="other seeds"):  # seed s must be the same weights in every replicate
        replicated_differences({"a": a, "other-seeds": other_seeds}, 25)
    missing = write_replicate(tmp_path / "missing", {0: run_arms(rng, 12, objects)})
    missing = dataclasses.replace(missing, evaluate=EvaluateConfig(
        downstream=DownstreamConfig(out=str(tmp_path / "missing"), sizes=[25], seeds=[0, 1])))
    with pytest.raises(ConfigError, match="25-1.json: missing"):
        replicated_differences({"a": a, "missing": missing}, 25)


def test_a_run_folder_reads_its_own_counts_before_a_folder_named_runs(tmp_path):
    recorded = tmp_path / "recorded"  # docs/runs/NAME: params.yaml beside runs/
    (recorded / "runs").mkdir(parents=True)
    (recorded / "params.yaml").write_text("evaluate:\n  downstream:\n    out: data/downstream\n")
    assert run_folder_config(recorded).evaluate.downstream.out == str(recorded)
    workspace = tmp_path / "workspace"  # a workspace whose user keeps a folder of their own named runs
    (workspace / "data" / "downstream" / "runs").mkdir(parents=True)
    (workspace / "runs").mkdir()
    (workspace / "params.yaml").write_text("evaluate:\n  downstream:\n    out: data/downstream\n")
    assert run_folder_config(workspace).evaluate.downstream.out == str(workspace / "data" / "downstream")
