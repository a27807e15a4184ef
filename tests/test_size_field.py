"""benchmarks/size_field.py: the density where model's size field at the real objects' places and at its draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import benchmark_module


def test_bands_hold_a_quarter_of_the_rows_each_and_medians_are_read_per_band():
    sf = benchmark_module("size_field")
    contacts = np.arange(1, 101) / 100.0  # 0.01 .. 1.00
    edges = sf.row_quarters(contacts)
    assert edges[0] == 0.0 and edges[-1] == 1.0 and edges[1:4] == pytest.approx([0.2575, 0.505, 0.7525])
    values = np.where(contacts < 0.5, 1.0, 3.0)
    bands = sf.by_band(contacts, values, edges)
    assert [b["n"] for b in bands] == [25, 25, 25, 25]  # the last band holds 1.0 itself
    assert [b["median"] for b in bands] == [1.0, 1.0, 3.0, 3.0]
    assert sf.by_band(contacts, values, [0.0, 0.001, 1.0])[0] == {"rows": [0.0, 0.001], "n": 0, "median": None}


def test_spread_is_the_median_absolute_deviation_of_the_residuals():
    sf = benchmark_module("size_field")
    rows = np.zeros((5, 5))
    rows[:, 1] = [0.1, 0.2, 0.3, 0.4, 1.3]
    assert sf.spread_of(rows) == {"examples": 5, "log_h_residual": 0.3, "log_h_residual_mad": 0.1}
    assert sf.spread_of(rows[:0]) == {"examples": 0}


def test_the_field_is_read_at_every_example_and_draws_are_scored_beside_the_real_objects(trained_tiny):
    sf = benchmark_module("size_field")
    cfg = trained_tiny
    result = sf.measure(cfg, cfg.train.out, "train", every=1, per_frame=2)
    prepared = sf.PreparedData(Path(cfg.prepare.out) / "train.npz", "cpu", flip_prob=0.0)
    assert set(result["classes"]) <= set(cfg.prepare.classes) and result["classes"]
    counts = np.bincount(prepared.inst_class.numpy(), minlength=len(cfg.prepare.classes))
    beside = sf.beside_another(prepared)
    for name, r in result["classes"].items():
        c = cfg.prepare.classes.index(name)
        fit = r["fit"]
        assert fit["examples"] == counts[c] == fit["beside_another"]["examples"] + fit["alone"]["examples"]
        assert fit["beside_another"]["examples"] == int(beside[prepared.inst_class.numpy() == c].sum())
        assert np.isfinite(fit["log_h_residual"]) and fit["sd_log_h"] > 0
        for arm in ("model", "real"):
            draws = r["draws"][arm]
            assert sum(b["n"] for b in draws["scale_by_rows"]) == draws["n"] > 0 and draws["median_scale"] > 0
            assert sum(b["n"] for b in draws["aspect_by_columns"]) == draws["n"]
            bands = [b["columns"] for b in draws["aspect_by_columns"]]
            assert bands == [list(pair) for pair in zip(sf.COLUMNS[:-1], sf.COLUMNS[1:], strict=True)]
            assert sum(b["n"] for b in draws["aspect_by_rows"]) == draws["n"]
        model = r["draws"]["model"]
        assert 0.0 <= model["cut_by_side"] <= 1.0 and model["median_field_aspect"] > 0
        assert 0.0 <= model["at_width_floor"] <= 1.0
        assert model["cut_by_side"] == 1.0 or model["median_aspect_inside"] > 0


def test_the_field_at_an_examples_own_place_is_what_the_likelihood_reads(trained_tiny):
    """The residual is log(real height) - mu_h where the NLL reads mu_h: a field shifted by d moves it by -d."""
    sf = benchmark_module("size_field")
    cfg = trained_tiny
    gan = sf.load_trained(cfg.train.out, cfg).eval()
    prepared = sf.PreparedData(Path(cfg.prepare.out) / "train.npz", "cpu", flip_prob=0.0)
    before = sf.field_fit(gan, prepared, cfg.prepare.classes)
    head = gan.where.head
    head.bias.data[1] += 0.5  # mu_h everywhere + 0.5
    after = sf.field_fit(gan, prepared, cfg.prepare.classes)
    for name in before:
        np.testing.assert_allclose(after[name][:, 1], before[name][:, 1] - 0.5, atol=1e-4)
        np.testing.assert_allclose(after[name][:, 2], before[name][:, 2], atol=1e-5)


@pytest.mark.parametrize("every,per_frame", [(0, 8), (2, 0)])
def test_bad_counts_are_refused(trained_tiny, every, per_frame):
    sf = benchmark_module("size_field")
    with pytest.raises(sf.ConfigError, match="--every and --per-frame"):
        sf.measure(trained_tiny, trained_tiny.train.out, "train", every, per_frame)


def test_draws_at_the_sampler_s_least_width_are_counted(trained_tiny, monkeypatch):
    """A box one where-map cell wide is at the floor ``WhereDensity.sample`` clamps widths to; a wider one is not."""
    sf = benchmark_module("size_field")
    cfg = trained_tiny
    load = sf.load_trained
    cell = 1 / cfg.prepare.where_size[0]

    def with_boxes(widths):
        def loaded(model, config):
            gan = load(model, config)

            def sample(x_where, x_what, cls):
                w = torch.tensor(widths * (len(cls) // len(widths)))
                return {"box": torch.stack([0.5 - w / 2, torch.full_like(w, 0.5), 0.5 + w / 2,
                                            torch.full_like(w, 0.8)], 1)}

            gan.sample = sample
            return gan
        return loaded

    monkeypatch.setattr(sf, "load_trained", with_boxes([cell, cell]))
    classes = sf.measure(cfg, cfg.train.out, "train", every=1, per_frame=2)["classes"]
    assert classes
    for r in classes.values():
        assert r["draws"]["model"]["at_width_floor"] == 1.0
    monkeypatch.setattr(sf, "load_trained", with_boxes([cell, 3 * cell]))
    for r in sf.measure(cfg, cfg.train.out, "train", every=1, per_frame=2)["classes"].values():
        assert r["draws"]["model"]["at_width_floor"] == pytest.approx(0.5)
