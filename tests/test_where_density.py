"""The density where model (``model.where_model: density``): a distribution over the scene's positions,
trained by likelihood of real boxes, sampled from z."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from test_models import DEFAULT_SIZES, MIN_SCALE, TINY, make_batch

from pipeline.config import LossConfig
from pipeline.encoding import IN_CHANNELS, channel_of
from pipeline.errors import ConfigError
from pipeline.labels import BY_NAME
from pipeline.models.affine import box_to_theta, theta_to_box
from pipeline.models.insertion_gan import D_TERMS, G_TERMS, InsertionGAN
from pipeline.models.where_net import WhereDensity, _bottom_row_sum, _box_share, _mean_box_bounds

DENSITY = dataclasses.replace(TINY, where_model="density", z_where=5)
H, W = 32, 64  # where resolution of these tests (the bottom map is 4x8 after 3 halvings)
ROAD, CAR, SKY = (channel_of(BY_NAME[name].id) for name in ("road", "car", "sky"))


def street(b: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes: sky above row 16, road below, one parked car block at a random column on the road.
    Real boxes stand on the road, off the car: -> (scenes [B, 30, H, W], boxes [B, 4])."""
    x = torch.zeros(b, IN_CHANNELS, H, W)
    x[:, SKY, :16] = 1
    x[:, ROAD, 16:] = 1
    car_col = torch.randint(0, W - 16, (b,), generator=gen)
    boxes = []
    for i, c0 in enumerate(car_col.tolist()):
        x[i, :, 18:28, c0:c0 + 16] = 0
        x[i, CAR, 18:28, c0:c0 + 16] = 1
        while True:  # a bottom centre on the road, not under the car
            cx = int(torch.randint(2, W - 2, (1,), generator=gen))
            bottom = int(torch.randint(20, H, (1,), generator=gen))
            if not (c0 - 3 <= cx < c0 + 19 and bottom < 30):
                break
        hgt = 0.1 + 0.02 * (bottom - 20)  # taller when nearer (lower in the frame)
        boxes.append([(cx - 1.5) / W, (bottom + 0.5) / H - hgt, (cx + 1.5) / W, (bottom + 0.5) / H])
    return x, torch.tensor(boxes)


def bottoms(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(column, row) of each box's bottom centre at the where resolution."""
    x0, _, x1, y1 = theta_to_box(theta).unbind(1)
    return ((x0 + x1) / 2 * W).floor().long().clamp(0, W - 1), (y1 * H).floor().long().clamp(0, H - 1)


def on_free_road(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    col, row = bottoms(theta)
    idx = torch.arange(x.shape[0])
    return (x[idx, ROAD, row, col] == 1) & (x[idx, CAR, (row - 1).clamp_min(0), col] == 0)


def test_learns_where_objects_stand_far_above_chance():
    """Trained on scenes whose real boxes stand on free road, its samples stand on free road - on scenes
    it has not seen - far more often than random positions do (which the test also measures)."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = WhereDensity(IN_CHANNELS, 1, [8, 16, 16], 32)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    c = torch.ones(16, 1)
    for _ in range(150):
        x, boxes = street(16, gen)
        loss = net.nll(x, box_to_theta(boxes), c)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # 256 scenes: with 64 the share moved by +-0.05 between machines' float rounding (binomial noise alone).
    x, _ = street(256, torch.Generator().manual_seed(99))
    sampled = net.sample(x, torch.randn(256, 5, generator=gen), torch.ones(256, 1))
    random_boxes = torch.rand(256, 2, generator=gen)
    random_theta = box_to_theta(torch.stack([random_boxes[:, 0] - 0.02, random_boxes[:, 1] - 0.1,
                                             random_boxes[:, 0] + 0.02, random_boxes[:, 1]], 1).clamp(0.001, 1))
    learned, chance = on_free_road(x, sampled).float().mean(), on_free_road(x, random_theta).float().mean()
    assert learned >= 0.85 and chance <= 0.6, (learned, chance)
    # Size follows the row: boxes lower in the frame are taller, as in the data.
    col, row = bottoms(sampled)
    height = (theta_to_box(sampled)[:, 3] - theta_to_box(sampled)[:, 1])
    assert torch.corrcoef(torch.stack([row.float(), height]))[0, 1] > 0.5


def test_sample_is_a_function_of_z_inside_the_frame():
    torch.manual_seed(0)
    net = WhereDensity(IN_CHANNELS, 2, [8, 16, 16], 32)
    x = torch.rand(6, IN_CHANNELS, H, W)
    c = torch.eye(2)[[0, 1, 0, 1, 0, 1]]
    z = torch.randn(6, 5)
    a, b = net.sample(x, z, c), net.sample(x, z, c)
    assert torch.equal(a, b)
    boxes = theta_to_box(a)
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    # z0 picks the cell: across its range the bottom centres move.
    sweep = torch.zeros(5, 5)
    sweep[:, 0] = torch.linspace(-2, 2, 5)
    col, row = bottoms(net.sample(x[:1].expand(5, -1, -1, -1), sweep, c[:1].expand(5, -1)))
    assert len(set(zip(col.tolist(), row.tolist(), strict=True))) >= 4


def test_gan_with_density_where_has_no_where_discriminators_and_trains_it_by_likelihood():
    torch.manual_seed(0)
    net = InsertionGAN(DENSITY, DEFAULT_SIZES, LossConfig(), MIN_SCALE)
    assert isinstance(net.where, WhereDensity)
    assert net.where_vae is None and net.d_affine is None and net.d_where is None
    batch = make_batch()
    total, terms, _ = net.generator_loss(batch)
    assert set(terms) == {*G_TERMS, "g_total"}
    assert terms["where_nll"] > 0 and terms["g_adv_where"] == 0 and terms["sup_affine"] == 0
    total.backward()
    assert all(p.grad is not None for p in net.where.parameters())
    # The what side's terms do not reach the density (a sampled cell has no gradient): only its own do.
    net.zero_grad(set_to_none=True)
    t, _ = net.generator_terms(batch)
    (t["g_adv_what"] + t["sup_mask"]).backward()
    assert all(p.grad is None for p in net.where.parameters())
    d_total, d_terms = net.discriminator_loss(batch)
    assert set(d_terms) == {*D_TERMS, "d_total"} and d_terms["d_where"] == 0 and torch.isfinite(d_total)
    out = net.sample(batch["x_where"], batch["x_what"], batch["cls"])
    assert out["theta"].shape == (3, 2, 3) and out["placed"].shape[-2:] == net.what_hw


def test_density_needs_five_numbers_of_z_where():
    with pytest.raises(ConfigError, match="z_where"):
        InsertionGAN(dataclasses.replace(DENSITY, z_where=4), DEFAULT_SIZES, LossConfig(), MIN_SCALE)


def test_box_share_is_the_covered_share_of_the_box_standing_on_each_cell():
    occupied = torch.zeros(1, 1, 8, 16)
    occupied[0, 0, 2:6, 4:8] = 1  # a 4x4 object
    log_h = torch.full((1, 8, 16), math.log(4 / 8))  # boxes 4 cells high and 4 wide
    log_w = torch.full((1, 8, 16), math.log(4 / 16))
    share = _box_share(occupied, *_mean_box_bounds(log_h, log_w))[0]
    assert share[5, 5] == 1  # rows 2-5, columns 4-7 (the centre 5.5 +- 2): the object exactly
    assert share[5, 3] == 0.5  # columns 2-5: half of it on the object
    assert share[2, 5] == pytest.approx(1 / 3)  # cut at the top of the frame: rows 0-2, one of them covered
    assert share[:, 12:].sum() == 0 and share[0].sum() == 0


def untrained_on_streets(seed: int) -> tuple[WhereDensity, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fresh one-class density, 8 street scenes drawn with ``seed``, their boxes and the class one-hot."""
    torch.manual_seed(0)
    x, boxes = street(8, torch.Generator().manual_seed(seed))
    return WhereDensity(IN_CHANNELS, 1, [8, 16, 16], 32), x, boxes, torch.ones(8, 1)


def descend(net: WhereDensity, cost, steps: int = 40) -> None:
    """Adam steps on ``cost()`` alone."""
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(steps):
        loss = cost()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_occupancy_term_moves_the_density_off_existing_objects():
    """The occupancy cost alone (no real boxes needed) drains the mass from cells where a box of the mean
    size would stand on the parked car, and costs nothing on a scene without objects."""
    net, x, boxes, c = untrained_on_streets(1)
    occupied = x[:, CAR:CAR + 1]

    def mass_on_objects() -> float:
        with torch.no_grad():
            out = net(x, c)
            cost = _box_share(occupied, *_mean_box_bounds(out[:, 1], out[:, 3])) > 0.25
            return float((torch.softmax(out[:, 0].flatten(1), 1) * cost.flatten(1)).sum(1).mean())

    before = mass_on_objects()
    descend(net, lambda: net.losses(x, box_to_theta(boxes), c, occupied, free=0.25)[1])
    assert before > 0.05 and mass_on_objects() < before / 3, (before, mass_on_objects())
    _, none, _ = net.losses(x, box_to_theta(boxes), c, torch.zeros_like(occupied))
    assert none == 0


def test_bottom_row_sum_reads_the_box_bottom_row():
    values = torch.zeros(1, 1, 8, 16)
    values[0, 0, 5, 4:8] = 1
    log_h = torch.full((1, 8, 16), math.log(4 / 8))
    log_w = torch.full((1, 8, 16), math.log(4 / 16))
    total = _bottom_row_sum(values, *_mean_box_bounds(log_h, log_w))[0]
    assert total[5, 5] == 4 and total[5, 3] == 2 and total[4, 5] == 0 and total[5, 12] == 0


def test_support_term_moves_the_density_onto_the_ground_of_its_class():
    """The support cost alone drains the mass from cells whose box would stand on the sky (here: not the
    class's ground), without real boxes; a scene that is all ground costs nothing."""
    net, x, boxes, c = untrained_on_streets(2)
    ground = x[:, ROAD:ROAD + 1]

    def mass_off_ground() -> float:
        with torch.no_grad():
            return float(torch.softmax(net(x, c)[:, 0].flatten(1), 1).view(8, H, W)[:, :16].sum((1, 2)).mean())

    before = mass_off_ground()
    descend(net, lambda: net.losses(x, box_to_theta(boxes), c, x[:, CAR:CAR + 1], ground=ground)[2])
    assert before > 0.3 and mass_off_ground() < before / 3, (before, mass_off_ground())
    _, _, none = net.losses(x, box_to_theta(boxes), c, ground=torch.ones_like(ground))
    assert none == 0
