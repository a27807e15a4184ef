"""The insertion GAN's networks and losses (pipeline/models): shapes, affine conventions, hinge losses, joint
gradients, size validation, and that a few steps of training move the supervised terms."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import LossConfig, ModelConfig, PrepareConfig
from pipeline.encoding import IN_CHANNELS, LABEL_CHANNELS, channel_of, encode
from pipeline.errors import ConfigError
from pipeline.labels import BY_NAME
from pipeline.models.affine import box_mask, box_to_theta, theta_to_box, warp
from pipeline.models.blocks import TiledConv, tile
from pipeline.models.discriminators import PlacementDiscriminator
from pipeline.models.insertion_gan import (
    D_TERMS,
    G_TERMS,
    InsertionGAN,
    coord_loss,
    ground_distance,
    occupancy_loss,
    support_loss,
    theta_loss,
)

# Small widths: the sizes are what these tests are about, and they must run in seconds on 2 cores.
# The reference's where module (the density where model has its own tests: test_where_density.py).
TINY = ModelConfig(where_model="gan", z_where=4, where_widths=[8, 8, 16, 16], where_embed=16,
                   what_widths=[8, 8, 16, 16, 16], what_embed=16, shape_widths=[16, 16, 8, 8], d_widths=[8, 16, 16])
DEFAULT_SIZES = PrepareConfig(where_size=[128, 64], what_size=[256, 128], mask_size=64)
BIG_SIZES = PrepareConfig(where_size=[256, 128], what_size=[512, 256], mask_size=128)
BIG = ModelConfig(where_model="gan", z_where=4, where_widths=[8, 8, 8, 16, 16], where_embed=16,
                  what_widths=[8, 8, 8, 8, 16, 16], what_embed=16, shape_widths=[16, 16, 8, 8, 8], d_widths=[8, 8, 16])
MIN_SCALE = [0.05, 0.1]


def make_model(model: ModelConfig = TINY, prepare: PrepareConfig = DEFAULT_SIZES, seed: int = 0) -> InsertionGAN:
    torch.manual_seed(seed)
    return InsertionGAN(model, prepare, LossConfig(), MIN_SCALE)


def scene(b: int, size: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """Random one-hot label maps (blocky, like street scenes) + sparse edges: [B, 30, H, W]."""
    h, w = size
    ids = torch.randint(0, 29, (b, 1, h // 8, w // 8), generator=gen)
    ids = ids.repeat_interleave(8, 2).repeat_interleave(8, 3)
    onehot = torch.zeros(b, IN_CHANNELS - 1, h, w).scatter_(1, ids, 1.0)
    edges = (torch.rand(b, 1, h, w, generator=gen) < 0.05).float()
    return torch.cat([onehot, edges], 1)


def make_batch(prepare: PrepareConfig = DEFAULT_SIZES, b: int = 3, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    where = (prepare.where_size[1], prepare.where_size[0])
    what = (prepare.what_size[1], prepare.what_size[0])
    s = prepare.mask_size
    boxes = torch.tensor([[0.2, 0.5, 0.3, 0.9], [0.6, 0.55, 0.8, 0.7], [0.1, 0.3, 0.15, 0.45]]).repeat(b, 1)[:b]
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, s), torch.linspace(-1, 1, s), indexing="ij")
    ellipse = ((xx / 0.6) ** 2 + (yy / 0.95) ** 2 <= 1).float()
    return {
        "x_where": scene(b, where, gen), "x_what": scene(b, what, gen),
        "xp_where": scene(b, where, gen), "xp_what": scene(b, what, gen),
        "theta_real": box_to_theta(boxes),
        "mask_real": ellipse.expand(b, 1, s, s).clone(),
        "cls": torch.arange(b) % 2,
        "ground": torch.zeros(b, LABEL_CHANNELS).index_fill_(1, torch.tensor([channel_of(7), channel_of(8)]), 1),
    }


# ---------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("model, prepare", [(TINY, DEFAULT_SIZES), (BIG, BIG_SIZES)], ids=["default", "big"])
def test_output_shapes(model, prepare):
    net = make_model(model, prepare)
    batch = make_batch(prepare, b=2)
    hw, ww = prepare.where_size[1], prepare.where_size[0]
    ht, wt = prepare.what_size[1], prepare.what_size[0]
    s = prepare.mask_size

    total, terms, images = net.generator_loss(batch)
    assert total.shape == ()
    assert images["box"].shape == (2, 1, hw, ww)
    assert images["shape"].shape == (2, 1, s, s)
    assert images["shape_vae"].shape == (2, 1, s, s)
    assert images["placed"].shape == (2, 1, ht, wt)

    out = net.sample(batch["x_where"], batch["x_what"], batch["cls"])
    assert out["theta"].shape == (2, 2, 3)
    assert out["box"].shape == (2, 4)
    assert out["shape"].shape == (2, 1, s, s)
    assert out["placed"].shape == (2, 1, ht, wt)
    assert 0 <= out["shape"].min() and out["shape"].max() <= 1


def test_default_widths_build_and_run():
    """The params defaults (not just the tiny test widths) fit together."""
    net = make_model(ModelConfig(), PrepareConfig())
    total, terms, _ = net.generator_loss(make_batch(PrepareConfig(), b=1))
    assert torch.isfinite(total)


# ---------------------------------------------------------------------------------------------- affine


def test_encode_is_one_hot_by_channel_plus_edges():
    # Every id (void 0-5, the labelled 6-33, unknown ones above) lands in its channel_of channel and nowhere
    # else; the last channel is the edge map; NCHW contiguous floats, as the networks are fed.
    labels = torch.arange(256, dtype=torch.uint8).view(1, 16, 16).repeat(2, 1, 1)
    edge = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.3
    x = encode(labels, edge)
    assert x.shape == (2, IN_CHANNELS, 16, 16) and x.dtype == torch.float32 and x.is_contiguous()
    hot = x[:, :LABEL_CHANNELS]
    assert torch.equal(hot.sum(1), torch.ones(2, 16, 16))
    channels = torch.tensor([channel_of(i) for i in range(256)]).view(16, 16)
    assert torch.equal(hot.argmax(1), channels.expand(2, 16, 16))
    assert torch.equal(x[:, LABEL_CHANNELS], edge.float())


def test_box_theta_round_trip():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.9], [0.45, 0.6, 0.5, 0.62]])
    theta = box_to_theta(boxes)
    assert torch.allclose(theta[0], torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    assert (theta[:, 0, 1] == 0).all() and (theta[:, 1, 0] == 0).all()
    assert torch.allclose(theta_to_box(theta), boxes, atol=1e-6)


def test_warping_ones_gives_the_box():
    h, w = 64, 128
    boxes = torch.tensor([[0.1, 0.2, 0.3, 0.9], [0.5, 0.05, 0.9, 0.4], [0.42, 0.5, 0.47, 0.7]])
    masks = warp(torch.ones(3, 1, 32, 32), box_to_theta(boxes), (h, w))[:, 0]
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.tolist(), strict=True):
        assert abs(mask.sum().item() - (x1 - x0) * w * (y1 - y0) * h) <= (x1 - x0) * w + (y1 - y0) * h
        ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
        assert abs(xs.min().item() - x0 * w) <= 1 and abs(xs.max().item() + 1 - x1 * w) <= 1
        assert abs(ys.min().item() - y0 * h) <= 1 and abs(ys.max().item() + 1 - y1 * h) <= 1


def test_tiled_conv_equals_concatenation():
    """The first-layer trick is exactly conv(cat([x, tile(v)])) with zero padding, borders included."""
    torch.manual_seed(0)
    layer = TiledConv(5, 3, 7)
    x, v = torch.randn(2, 5, 16, 24), torch.randn(2, 3)
    weight = torch.cat([layer.maps.weight, layer.vecs.weight], 1)
    expected = torch.nn.functional.conv2d(torch.cat([x, tile(v, (16, 24))], 1), weight, layer.maps.bias, 2, 1)
    assert torch.allclose(layer(x, v), expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------- transformer


def test_transformer_starts_at_identity_and_keeps_rotation_zero():
    net = make_model()
    batch = make_batch()
    identity = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(3, 2, 3)
    for seed in range(2):
        out = net.sample(batch["x_where"] * seed, batch["x_what"], batch["cls"])
        assert torch.equal(out["theta"], identity)

    opt = torch.optim.Adam(net.generator_parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        net.generator_loss(batch)[0].backward()
        opt.step()
    theta = net.sample(batch["x_where"], batch["x_what"], batch["cls"])["theta"]
    assert not torch.equal(theta, identity)  # it did train
    assert (theta[:, 0, 1] == 0).all() and (theta[:, 1, 0] == 0).all()


# ---------------------------------------------------------------------------------------------- hinge losses


def test_coord_loss_zero_inside_grows_outside():
    inside = box_to_theta(torch.tensor([[0.1, 0.2, 0.3, 0.9], [0.0, 0.0, 1.0, 1.0]]))
    assert coord_loss(inside).item() == 0
    losses = [coord_loss(box_to_theta(torch.tensor([[x0, 0.2, x0 + 0.2, 0.6]]))).item() for x0 in (0.85, 0.9, 1.0)]
    assert 0 < losses[0] < losses[1] < losses[2]
    above = coord_loss(box_to_theta(torch.tensor([[0.4, -0.1, 0.5, 0.3]]))).item()
    assert above > 0


def test_occupancy_loss_free_on_empty_ground_and_pushes_boxes_off_objects():
    occupied = torch.zeros(1, 1, 32, 64)
    occupied[..., 10:30, 20:30] = 1  # an existing car
    def loss_at(x0, requires_grad=False):
        theta = box_to_theta(torch.tensor([[x0, 0.4, x0 + 0.1, 0.8]])).requires_grad_(requires_grad)
        return occupancy_loss(box_mask(theta, (32, 64)), occupied), theta
    assert loss_at(0.7)[0].item() == 0  # on free ground
    on_car, theta = loss_at(0.33, requires_grad=True)
    assert on_car.item() > 0.5
    assert loss_at(0.33)[0].item() > loss_at(0.42)[0].item() > 0  # less cover, less cost
    on_car.backward()
    # A box overlapping the car's edge is pushed sideways (the blur gives the gradient a reach of 2 px).
    assert theta.grad[0, 0, 2].abs().item() > 0


def test_support_loss_zero_on_ground_and_pulls_the_bottom_edge_toward_it():
    labels = torch.full((1, 32, 64), 23, dtype=torch.long)  # sky ...
    labels[:, 20:, :] = 8  # ... over sidewalk from row 20
    scene = encode(labels, torch.zeros_like(labels, dtype=torch.bool))
    ground = torch.zeros(1, LABEL_CHANNELS)
    ground[0, channel_of(8)] = 1
    dist = ground_distance(scene, ground, 16)
    assert dist[0, 0, 25].max() == 0 and dist[0, 0, 19].min() == 1 and dist[0, 0, 10].min() == 10

    def loss_at(y1, requires_grad=False):
        theta = box_to_theta(torch.tensor([[0.4, y1 - 0.3, 0.5, y1]])).requires_grad_(requires_grad)
        return support_loss(theta, scene, ground, 16), theta
    assert loss_at(0.8)[0].item() == 0  # standing on sidewalk
    # Feet in the sky: the farther from the kerb, the more it costs, and the gradient moves the box down.
    assert loss_at(0.3)[0].item() > loss_at(0.4)[0].item() > loss_at(0.5)[0].item() > 0
    in_sky, theta = loss_at(0.4, requires_grad=True)
    in_sky.backward()
    down = box_to_theta(torch.tensor([[0.4, 0.15, 0.5, 0.45]]))
    assert ((down - theta.detach()) * -theta.grad).sum().item() > 0  # a step against the gradient goes down
    other_class = torch.zeros(1, LABEL_CHANNELS)
    other_class[0, channel_of(7)] = 1  # a class that only stands on road: there is none in this scene
    flat = support_loss(box_to_theta(torch.tensor([[0.4, 0.5, 0.5, 0.8]])), scene, other_class, 16).item()
    assert flat == 16  # the reach everywhere


def test_theta_loss_bounds():
    min_scale = torch.tensor([0.1])
    ok = box_to_theta(torch.tensor([[0.2, 0.2, 0.5, 0.6]]))
    assert theta_loss(ok, min_scale).item() == 0
    flipped = ok.clone()
    flipped[:, 0, 0] *= -1
    assert theta_loss(flipped, min_scale).item() > 0
    small, smaller = (box_to_theta(torch.tensor([[0.2, 0.2, 0.2 + s, 0.6]])) for s in (0.05, 0.02))
    assert 0 < theta_loss(small, min_scale).item() < theta_loss(smaller, min_scale).item()
    assert theta_loss(small, torch.tensor([0.04])).item() == 0  # the bound is the class's own
    too_big = box_to_theta(torch.tensor([[-0.2, 0.0, 1.1, 1.0]]))
    assert theta_loss(too_big, min_scale).item() > 0


# ---------------------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("route", ["painted box", "placement"])
def test_what_side_losses_train_the_where_encoder(route):
    """Joint training: the what side's adversarial terms reach the where encoder by both routes - the box
    painted into the what net's input (D_shape sees only that one), and the warp that places the shape in
    the scene for D_what (isolated here by cutting the what net's input off the graph)."""
    net = make_model()
    batch = make_batch()
    # At initialisation the transformer's last layer is zero (identity), which blocks every gradient to the
    # encoder below it; one ordinary step makes it non-zero.
    opt = torch.optim.Adam(net.generator_parameters(), lr=1e-3)
    net.generator_loss(batch)[0].backward()
    opt.step()
    net.zero_grad(set_to_none=True)
    if route == "placement":
        forward = net.what.forward
        net.what.forward = lambda x, z, c: forward(x.detach(), z, c)
    terms, _ = net.generator_terms(batch)
    terms["g_adv_shape" if route == "painted box" else "g_adv_what"].backward()
    grad = net.where.encoder.first.maps.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_gradients_go_where_they_belong():
    """Generator step: every generator parameter gets a gradient (DDP needs them used), no discriminator
    parameter does; discriminator step: the reverse."""
    net = make_model()
    batch = make_batch()
    net.generator_loss(batch)[0].backward()
    assert all(p.grad is not None for p in net.generator_parameters())
    assert all(p.grad is None for p in net.discriminator_parameters())
    net.zero_grad(set_to_none=True)
    net.discriminator_loss(batch)[0].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.discriminator_parameters())
    assert all(p.grad is None for p in net.generator_parameters())


def test_class_conditions_the_shape():
    net = make_model()
    batch = make_batch(b=1)
    z_where, z_what = torch.zeros(1, TINY.z_where), torch.zeros(1, TINY.z_what)
    shapes = [net.sample(batch["x_where"], batch["x_what"], torch.tensor([c]), z_where, z_what)["shape"]
              for c in (0, 1)]
    assert not torch.allclose(shapes[0], shapes[1])


def test_the_box_is_painted_as_the_target_class():
    net = make_model()
    batch = make_batch(b=2)
    target = net.targets[batch["cls"]]
    assert target[0].argmax().item() == channel_of(BY_NAME["person"].id)
    assert target[1].argmax().item() == channel_of(BY_NAME["car"].id)
    painted = net._generate(batch)["what_in"][4:]  # the VAE path, painted with the real box
    boxes = box_mask(batch["theta_real"], (128, 256))
    for i in range(2):
        inside = boxes[i, 0] == 1
        assert inside.sum() > 10
        assert torch.allclose(painted[i][:, inside], target[i][:, None].expand(-1, int(inside.sum())))


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("model, prepare, message", [
    (ModelConfig(where_widths=[8, 8, 8, 8, 8, 8]), DEFAULT_SIZES,
     r"model.where_widths has 6 entries, so prepare.where_size must be 2\*\*6 times a map of 2 to 16 cells a side "
     r"\(e.g. 512x256 for 2:1 frames"),
    (ModelConfig(), PrepareConfig(what_size=[512, 256]),
     r"model.what_widths has 4 entries, so prepare.what_size must be .* \(e.g. 128x64 for 2:1 frames, 128x96 for 4:3"),
    (ModelConfig(), PrepareConfig(mask_size=128), "model.shape_widths has 3 entries, so prepare.mask_size must be 32"),
    (ModelConfig(d_widths=[]), DEFAULT_SIZES, "model.d_widths"),
])
def test_constructor_refuses_inconsistent_sizes(model, prepare, message):
    with pytest.raises(ConfigError, match=message):
        InsertionGAN(model, prepare, LossConfig(), MIN_SCALE)


def test_a_4_by_3_frame_keeps_its_aspect_through_every_network():
    """Inputs of a 4:3 frame (CamVid's 480x360 at 64x48 / 128x96) are not squashed: the encoders end on a 6x8
    map, and a training step and sampling run at those sizes."""
    prepare = PrepareConfig(where_size=[64, 48], what_size=[128, 96], mask_size=32)
    gan = InsertionGAN(ModelConfig(), prepare, LossConfig(), MIN_SCALE)
    assert gan.where.context.kernel_size == (6, 8)
    assert gan.what.encoder.project.kernel_size == (6, 8)
    x_where, x_what = torch.zeros(2, IN_CHANNELS, 48, 64), torch.zeros(2, IN_CHANNELS, 96, 128)
    out = gan.sample(x_where, x_what, torch.tensor([0, 1]))
    assert out["box"].shape == (2, 4) and out["shape"].shape == (2, 1, 32, 32)
    h = gan.what(x_what, torch.zeros(2, 16), torch.eye(2))[1]
    assert gan.what.reconstruct(h).shape == (2, IN_CHANNELS, 96, 128)


def test_constructor_refuses_wrong_min_scale():
    with pytest.raises(ConfigError, match="min_scale"):
        InsertionGAN(TINY, DEFAULT_SIZES, LossConfig(), [0.1])


# ---------------------------------------------------------------------------------------------- losses


def test_losses_are_finite_and_named():
    net = make_model()
    batch = make_batch()
    total, terms, _ = net.generator_loss(batch)
    assert set(terms) == {*G_TERMS, "g_total"}
    assert all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in terms.values())
    d_total, d_terms = net.discriminator_loss(batch)
    assert set(d_terms) == {*D_TERMS, "d_total"}
    assert all(torch.isfinite(torch.tensor(v)) for v in d_terms.values())
    assert torch.isfinite(total) and torch.isfinite(d_total)


def test_the_placement_discriminator_reads_the_scene_inside_and_under_the_box_only():
    """The opt-in placement discriminator (``train.losses.placement_adversarial``) judges a box by the scene at
    points inside it and one where-pixel under its bottom edge: a change of the scene there moves its logit, a
    change far from the box does not (two 3x3 convs see 2 pixels around a point), and the box's position and
    size get gradient through the sampling."""
    torch.manual_seed(0)
    d = PlacementDiscriminator(IN_CHANNELS, n_classes=2, width=8).eval()
    x = scene(1, (32, 64), torch.Generator().manual_seed(0))
    theta = box_to_theta(torch.tensor([[0.25, 0.25, 0.5, 0.75]])).requires_grad_()  # x 16-32, y 8-24 px
    person = torch.tensor([[1.0, 0.0]])
    with torch.no_grad():
        logit = d(x, theta, person)
        far = x.clone()
        far[:, :, :, 44:] = torch.roll(far[:, :, :, 44:], 1, dims=1)  # another label everywhere right of x = 44
        assert torch.equal(d(far, theta, person), logit)
        under = x.clone()
        under[:, :, 24:28, 16:32] = torch.roll(under[:, :, 24:28, 16:32], 1, dims=1)  # the ground under it
        assert not torch.allclose(d(under, theta, person), logit)
        assert not torch.allclose(d(x, theta, torch.tensor([[0.0, 1.0]])), logit)  # conditioned on the class
    d(x, theta, person).sum().backward()
    grad = theta.grad[0]
    assert all(grad[i, j].abs() > 0 for i, j in ((0, 0), (0, 2), (1, 1), (1, 2)))  # x/y scale and position


def test_the_placement_adversarial_term_is_trained_only_when_weighted():
    """Off (the default), the model has no placement discriminator and the term is zero; weighted, the random-z
    boxes are trained against it and it against them, with finite losses and gradient in its parameters."""
    off = make_model()
    assert off.d_place is None
    assert off.generator_loss(make_batch())[1]["g_adv_place"] == 0.0
    torch.manual_seed(0)
    on = InsertionGAN(TINY, DEFAULT_SIZES, LossConfig(placement_adversarial=0.5), MIN_SCALE)
    assert on.d_place is not None and on.d_place in on.discriminators()
    batch = make_batch()
    total, terms, _ = on.generator_loss(batch)
    assert terms["g_adv_place"] > 0 and torch.isfinite(total)
    d_total, d_terms = on.discriminator_loss(batch)
    assert d_terms["d_place"] > 0
    d_total.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in on.d_place.parameters())
    assert any(p.grad.abs().sum() > 0 for p in on.d_place.parameters())


def test_bf16_autocast_runs():
    net = make_model()
    batch = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, terms, _ = net.generator_loss(batch)
        d_total, _ = net.discriminator_loss(batch)
    (total + d_total).backward()
    assert all(torch.isfinite(torch.tensor(v)) for v in terms.values())
    theta = net.sample(batch["x_where"], batch["x_what"], batch["cls"])["theta"]
    assert theta.dtype == torch.float32


def test_training_reduces_the_supervised_terms():
    """40 steps of the schedule (2 generator updates, 1 discriminator update) on a fixed batch, at small sizes.

    The terms are measured with the same noise (seeded z) before and over the last steps: the training
    values themselves swing with the random z of each step."""
    sizes = PrepareConfig(where_size=[64, 32], what_size=[128, 64], mask_size=32)
    widths = ModelConfig(where_model="gan", z_where=4, where_widths=[8, 16, 16], where_embed=16,
                         what_widths=[8, 8, 16, 16], what_embed=16,
                         shape_widths=[16, 8, 8], d_widths=[8, 16])
    net = make_model(widths, sizes, seed=1)
    batch = make_batch(sizes, b=3, seed=1)

    def supervised() -> torch.Tensor:
        torch.manual_seed(123)
        with torch.no_grad():
            terms = net.generator_loss(batch)[1]
        return torch.tensor([terms["sup_affine"], terms["sup_mask"]])

    opt_g = torch.optim.Adam(net.generator_parameters(), lr=2e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net.discriminator_parameters(), lr=2e-3, betas=(0.5, 0.999))
    torch.manual_seed(0)
    before, late = supervised(), []
    for step in range(40):
        opt_g.zero_grad(set_to_none=True)
        net.generator_loss(batch)[0].backward()
        opt_g.step()
        if step % 2:
            opt_d.zero_grad(set_to_none=True)
            net.discriminator_loss(batch)[0].backward()
            opt_d.step()
        if step >= 35:
            late.append(supervised())
    ratio = torch.stack(late).mean(0) / before
    assert (ratio < 0.9).all(), f"sup_affine, sup_mask after / before: {ratio.tolist()}"
