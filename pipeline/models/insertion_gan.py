"""The joint insertion GAN: where + what generators, their VAE encoders, four discriminators, every loss.

One model serves every class in ``prepare.classes``: the class index ``cls`` [B] becomes a one-hot that is
tiled as extra input channels of every conv net and concatenated to every vector the MLPs and heads see.

Each training step runs three paths through the generators, batched together (3B samples):

- ``u``  (unsupervised): random z_where on a scene x -> box; random z_what on x with that box -> shape.
- ``p``  (random z on x+): the same on x+, the scene that held a real instance (removed by the data stage).
- ``vae`` (supervised): z_where encoded from the real box, z_what from the real mask; the where net on x+
  must give back the real box and the what net (shown x+ with the real box) the real mask (L1).

The random-z paths (u, p) are trained by the adversarial terms, the hinge losses on theta and the latent
reconstructions (the input reconstructions use path u: one path keeps the context in the embedding, and a
30-channel reconstruction at the what resolution is a large share of a step); the VAE path by its L1 terms
only, and the VAE encoders by those L1 terms + KL (as in the design: no adversarial gradient reaches them).
All three paths are fakes for D_affine and D_shape; D_where and D_what judge path u (real: x+ with its
real box / its real object pasted back, through the same warp and paste as the fakes). Nothing is
detached between where and what: the box painted into the what input and the warp that places the shape
both carry gradient back to the where net.

Generator steps see the discriminators with detached weights (gradients reach the generated inputs only),
so a generator step neither wastes work on discriminator weight gradients nor leaves them in ``.grad``.
Under DistributedDataParallel call ``ddp(batch, "generator")`` / ``ddp(batch, "discriminator")`` with
``find_unused_parameters=True``: each step uses only its own side's parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from pipeline.config import LossConfig, ModelConfig, PrepareConfig, check_sizes
from pipeline.encoding import IN_CHANNELS, LABEL_CHANNELS, channel_of
from pipeline.errors import ConfigError
from pipeline.labels import BY_NAME, MEAN_HEIGHT_M, TARGET_CLASSES
from pipeline.models.affine import box_mask, free_params, paint, theta_to_box, warp
from pipeline.models.blocks import bce, kl_divergence, l1, reparameterize
from pipeline.models.discriminators import (
    AffineDiscriminator,
    PatchDiscriminator,
    PlacementDiscriminator,
    ShapeDiscriminator,
)
from pipeline.models.what_net import MaskEncoder, WhatNet
from pipeline.models.where_net import AffineEncoder, WhereDensity, WhereNet

G_TERMS = ("g_adv_affine", "g_adv_where", "g_adv_shape", "g_adv_what", "coord", "theta", "occupancy", "support",
           "ground_scale", "rec_where", "rec_what", "latent_where", "latent_what", "sup_affine", "sup_mask",
           "kl_where", "kl_what", "g_adv_vae", "mode_seeking", "g_adv_place", "where_nll")
D_TERMS = ("d_affine", "d_where", "d_shape", "d_what", "d_where_occupied", "d_place")


def coord_loss(theta: torch.Tensor) -> torch.Tensor:
    """Hinge: the object lies fully inside the image.

    The image spans source coordinates [t - a, t + a] per axis; the object is the source square [-1, 1], so it
    is inside when the image's sampling range covers it: t - a <= -1 and t + a >= 1. Zero inside, linear
    outside; summed over x and y, averaged over the batch."""
    a = torch.stack([theta[:, 0, 0], theta[:, 1, 1]], 1).float()
    t = torch.stack([theta[:, 0, 2], theta[:, 1, 2]], 1).float()
    return (F.relu(t - a + 1) + F.relu(1 - t - a)).sum(1).mean()


def occupancy_loss(box: torch.Tensor, occupied: torch.Tensor, free: float = 0.25) -> torch.Tensor:
    """Hinge on the share of each soft box [B, 1, H, W] that lies on ``occupied`` [B, 1, H, W] pixels
    (existing persons and cars): zero up to ``free`` (``train.losses.occupancy_free``: real objects do
    overlap - parked rows, crowds), linear above; batch mean.

    The occupancy map is blurred over 5x5 pixels so that a box sitting inside a larger object still feels
    which way is free (the box's own gradient lives only on its edges)."""
    occupied = F.avg_pool2d(occupied.float(), 5, stride=1, padding=2, count_include_pad=False)
    box = box.float()
    share = (box * occupied).sum((1, 2, 3)) / box.sum((1, 2, 3)).clamp_min(1e-6)
    return F.relu(share - free).mean()


# Points sampled along a box's bottom edge by the support loss.
SUPPORT_POINTS = 8


def ground_distance(scene: torch.Tensor, ground: torch.Tensor, reach: int) -> torch.Tensor:
    """[B, 1, H, W] chessboard distance (pixels, capped at ``reach``: ``train.losses.support_reach``) to the
    nearest pixel of a ``ground`` [B, LABEL_CHANNELS] label channel in the one-hot ``scene`` [B, C, H, W];
    0 on ground."""
    on = (scene[:, :LABEL_CHANNELS].float() * ground[:, :, None, None].float()).sum(1, keepdim=True).clamp(0, 1)
    dist = torch.zeros_like(on)
    for _ in range(reach):  # grow the ground one pixel at a time; each step adds 1 off it
        dist = dist + (1 - on)
        on = F.max_pool2d(on, 3, stride=1, padding=1)
    return dist


def support_loss(theta: torch.Tensor, scene: torch.Tensor, ground: torch.Tensor, reach: int) -> torch.Tensor:
    """Mean distance (where-resolution pixels) from the points of each box's bottom edge to ground its
    class stands on; batch mean. Zero when the box stands on such ground.

    ``scene`` [B, C, H, W] is the one-hot input the box is placed in, ``ground`` [B, LABEL_CHANNELS] the
    0/1 label channels of the sample's class (learned from the data: ``PreparedData.ground_channels``).
    The distance field (``ground_distance``) is sampled bilinearly a quarter pixel below the bottom edge
    at SUPPORT_POINTS points across the box, so the loss is differentiable in theta and its gradient
    points toward the nearest ground from anywhere within ``reach`` pixels."""
    dist = ground_distance(scene, ground, reach)
    x0, _, x1, y1 = theta_to_box(theta).unbind(1)
    t = (torch.arange(SUPPORT_POINTS, device=theta.device, dtype=torch.float32) + 0.5) / SUPPORT_POINTS
    xs = x0[:, None] + t * (x1 - x0)[:, None]
    ys = (y1 + 0.25 / scene.shape[2])[:, None].expand_as(xs)
    grid = torch.stack([xs, ys], -1)[:, None] * 2 - 1  # [B, 1, K, 2] in grid_sample's [-1, 1]
    return F.grid_sample(dist, grid, align_corners=False, padding_mode="border").mean()


def ground_scale_loss(theta: torch.Tensor, plane: torch.Tensor, mean_height: torch.Tensor, free: float
                      ) -> torch.Tensor:
    """Hinge on each box's height against the height a mean-sized object of its class has where the box
    stands, under its frame's ground plane: ``|log(h / expected)|`` beyond ``free``, mean over the frames
    that have a plane.

    ``plane`` [B, 2] is (horizon row, 1 / camera height) in frame-height units (``PreparedData``: the
    frame's camera, else a plane fitted to its own objects; NaN without one), ``mean_height`` [B] the
    class's mean height in metres; expected = mean_height * (bottom - horizon) / camera height. A box
    whose bottom is above the horizon is expected to be tiny, so its cost pulls it down and shrinks it."""
    _, y0, _, y1 = theta_to_box(theta.float()).unbind(1)
    horizon, inv_height = plane[:, 0].float(), plane[:, 1].float()
    valid = torch.isfinite(horizon) & torch.isfinite(inv_height)
    expected = mean_height.float() * (y1 - horizon.nan_to_num()).clamp_min(1e-3) * inv_height.nan_to_num()
    ratio = (y1 - y0).clamp_min(1e-4) / expected.clamp_min(1e-6)
    cost = F.relu(ratio.log().abs() - free)
    return torch.where(valid, cost, torch.zeros_like(cost)).sum() / valid.sum().clamp_min(1)


def theta_loss(theta: torch.Tensor, min_scale: torch.Tensor) -> torch.Tensor:
    """Hinge on the scales a = 1 / (box size as a fraction of the image): 1 <= a <= 1 / min_scale.

    a >= 1 keeps the box no larger than the image and positive (no flips: a flipped box has a < 0, which
    costs 1 - a > 1); a <= 1 / min_scale keeps it no smaller than the class minimum. ``min_scale`` [B] is the
    minimum size of each sample's class. Zero inside, linear outside; summed over x and y, batch mean."""
    a = torch.stack([theta[:, 0, 0], theta[:, 1, 1]], 1).float()
    max_a = 1 / min_scale.float()[:, None]
    return (F.relu(1 - a) + F.relu(a - max_a)).sum(1).mean()


def map_size(hw: tuple[int, int], widths: list[int]) -> tuple[int, int]:
    """(H, W) of the map an encoder of ``widths`` (one halving each) ends on for an input of ``hw``."""
    return hw[0] >> len(widths), hw[1] >> len(widths)


class InsertionGAN(nn.Module):
    def __init__(self, model: ModelConfig, prepare: PrepareConfig, losses: LossConfig, min_scale: list[float]):
        super().__init__()
        check_sizes(model, prepare, "params")
        n = len(prepare.classes)
        if len(min_scale) != n or not all(0 < m <= 1 for m in min_scale):
            raise ConfigError(f"train.min_scale: one value in (0, 1] per class of prepare.classes {prepare.classes}, "
                             f"got {min_scale}")
        self.n_classes = n
        self.losses = losses
        self.z_where, self.z_what = model.z_where, model.z_what
        self.where_hw = (prepare.where_size[1], prepare.where_size[0])
        self.what_hw = (prepare.what_size[1], prepare.what_size[0])
        self.mask_size = prepare.mask_size

        # The density where model (not in the reference) is trained by likelihood alone: it has no VAE
        # encoder and no discriminator of its own (D_affine, D_where, the placement discriminator).
        self.density = model.where_model == "density"
        if self.density and model.z_where < 5:
            raise ConfigError(f"model.z_where: the density where model reads 5 numbers of z, got {model.z_where}")
        # The encoders end on the input halved once per width: 4x8 for a 2:1 frame, 6x8 for a 4:3 one.
        where_map = map_size(self.where_hw, model.where_widths)
        what_map = map_size(self.what_hw, model.what_widths)
        self.where: WhereNet | WhereDensity = (
            WhereDensity(IN_CHANNELS, n, model.where_widths, model.where_embed, where_map) if self.density
            else WhereNet(IN_CHANNELS, n, model.z_where, model.where_widths, model.where_embed, where_map))
        self.what = WhatNet(IN_CHANNELS, n, model.z_what, model.what_widths, model.what_embed, model.shape_widths,
                            model.z_what_to_shape, what_map)
        self.where_vae = None if self.density else AffineEncoder(n, model.z_where)
        self.what_vae = MaskEncoder(n, model.z_what, model.shape_widths[::-1])

        self.d_affine = None if self.density else AffineDiscriminator(n)
        self.d_where = None if self.density else PatchDiscriminator(IN_CHANNELS + 1, n, model.d_widths)
        self.d_shape = ShapeDiscriminator(n, model.d_widths, prepare.mask_size)
        self.d_what = PatchDiscriminator(IN_CHANNELS, n, model.d_widths)
        # Built only when its loss is on: the reference's model keeps its parameters (and init draws) as they are.
        self.d_place = (PlacementDiscriminator(IN_CHANNELS, n, model.d_widths[min(1, len(model.d_widths) - 1)])
                        if losses.placement_adversarial > 0 and not self.density else None)

        # Class c is painted into its Cityscapes label channel; derived from the config, so not saved.
        channels = torch.tensor([channel_of(BY_NAME[name].id) for name in prepare.classes])
        self.register_buffer("targets", F.one_hot(channels, IN_CHANNELS).float(), persistent=False)
        self.register_buffer("min_scale", torch.tensor(min_scale, dtype=torch.float32), persistent=False)
        heights = [MEAN_HEIGHT_M.get(BY_NAME[name].id, float("nan")) for name in prepare.classes]
        self.register_buffer("mean_height", torch.tensor(heights, dtype=torch.float32), persistent=False)
        # Existing objects a new one should not be stacked on: every person/car label channel.
        occupied = [channel_of(label_id) for label_id in TARGET_CLASSES]
        self.register_buffer("occupied_channels", torch.tensor(occupied), persistent=False)

    # ------------------------------------------------------------------ parameters
    def generators(self) -> list[nn.Module]:
        return [m for m in (self.where, self.what, self.where_vae, self.what_vae) if m is not None]

    def discriminators(self) -> list[nn.Module]:
        return [m for m in (self.d_affine, self.d_where, self.d_shape, self.d_what, self.d_place) if m is not None]

    def generator_parameters(self) -> list[nn.Parameter]:
        """Where + what nets and the two VAE encoders (one optimiser)."""
        return [p for m in self.generators() for p in m.parameters()]

    def generator_param_groups(self, density_lr: float) -> list:
        """The generator optimiser's parameters: one group, or two with the density where model, which has
        its own learning rate (``train.density_lr``)."""
        if not self.density:
            return self.generator_parameters()
        others = [p for m in self.generators() if m is not self.where for p in m.parameters()]
        return [{"params": others}, {"params": list(self.where.parameters()), "lr": density_lr}]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.discriminators() for p in m.parameters()]

    def forward(self, batch: dict, mode: str = "generator"):
        """Dispatch for DistributedDataParallel, which only syncs gradients of work done inside forward():
        ``ddp(batch, "generator")`` / ``ddp(batch, "discriminator")``."""
        if mode == "generator":
            return self.generator_loss(batch)
        if mode == "discriminator":
            return self.discriminator_loss(batch)
        raise ValueError(f"mode must be 'generator' or 'discriminator', got {mode!r}")

    # ------------------------------------------------------------------ the three paths
    def _generate(self, batch: dict) -> dict[str, torch.Tensor]:
        """Run paths u, p, vae (in that order along the batch) through where and what. Returns every
        intermediate the losses need; slices [:2B] are the random-z paths, [2B:] the VAE path."""
        cls = batch["cls"]
        b = cls.shape[0]
        c = F.one_hot(cls, self.n_classes).float()
        c3 = c.repeat(3, 1)
        target3 = self.targets[cls].repeat(3, 1)

        x_where = torch.cat([batch["x_where"], batch["xp_where"], batch["xp_where"]])
        if self.density:
            mu_s, logvar_s = self.what_vae(batch["mask_real"], c)
            z_what = torch.cat([torch.randn(2 * b, self.z_what, device=c.device), reparameterize(mu_s, logvar_s)])
            # Random-z boxes drawn from the density (no gradient); the VAE path's is the real one.
            mu_w = logvar_w = h_where = None
            z_where = torch.randn(2 * b, self.z_where, device=c.device)
            theta = torch.cat([self.where.sample(x_where[: 2 * b], z_where, c3[: 2 * b]),
                               batch["theta_real"].float()])
        else:  # (this order of random draws reproduces earlier trainings)
            mu_w, logvar_w = self.where_vae(batch["theta_real"], c)
            mu_s, logvar_s = self.what_vae(batch["mask_real"], c)
            z_where = torch.cat([torch.randn(2 * b, self.z_where, device=c.device), reparameterize(mu_w, logvar_w)])
            z_what = torch.cat([torch.randn(2 * b, self.z_what, device=c.device), reparameterize(mu_s, logvar_s)])
            theta, h_where = self.where(x_where, z_where, c3)
        # The VAE path's what input gets the real box (teacher forcing): its mask belongs to that box.
        box_theta = torch.cat([theta[: 2 * b], batch["theta_real"].float()])
        x_what = torch.cat([batch["x_what"], batch["xp_what"], batch["xp_what"]])
        what_in = paint(x_what, box_mask(box_theta, self.what_hw), target3)
        logits, h_what = self.what(what_in, z_what, c3)
        return dict(c=c, c3=c3, mu_w=mu_w, logvar_w=logvar_w, mu_s=mu_s, logvar_s=logvar_s, z_where=z_where,
                    z_what=z_what, x_where=x_where, theta=theta, h_where=h_where, what_in=what_in,
                    shape=torch.sigmoid(logits), h_what=h_what)

    def _fakes_u(self, batch: dict, theta_u: torch.Tensor, shape_u: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Path u's inputs to D_where (x ++ box) and D_what (x with the shape pasted), and the box/placed maps."""
        box = box_mask(theta_u, self.where_hw)
        placed = warp(shape_u, theta_u, self.what_hw)
        fake_where = torch.cat([batch["x_where"], box.to(batch["x_where"].dtype)], 1)
        fake_what = paint(batch["x_what"], placed, self.targets[batch["cls"]])
        return fake_where, fake_what, box, placed

    @staticmethod
    def _frozen(module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
        """Call a discriminator with detached weights: the generator's gradient flows through it to the
        inputs, none is computed for (or accumulated into) the discriminator's own parameters."""
        params = {name: p.detach() for name, p in module.named_parameters()}
        return functional_call(module, params, args)

    # ------------------------------------------------------------------ losses
    def generator_terms(self, batch: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Every generator-side loss term as a tensor (unweighted), and the images (see generator_loss)."""
        g = self._generate(batch)
        b = batch["cls"].shape[0]
        u, r = slice(0, b), slice(0, 2 * b)  # path u; the random-z paths u and p
        theta, shape, c, c3 = g["theta"], g["shape"], g["c"], g["c3"]
        fake_where, fake_what, box, placed = self._fakes_u(batch, theta[u], shape[u])
        # The where generator's terms come first: their dropout draws precede the what module's.
        if self.density:
            xp = batch["xp_where"]
            occupied = xp.index_select(1, self.occupied_channels).sum(1, keepdim=True)
            ground = (xp[:, :LABEL_CHANNELS].float() * batch["ground"][:, :, None, None].float()).sum(1, keepdim=True)
            nll, occupancy, support = self.where.losses(xp, batch["theta_real"], c, occupied,
                                                        self.losses.occupancy_free, ground)
            terms = {"where_nll": nll, "occupancy": occupancy, "support": support}
        else:
            terms = self._where_gan_terms(batch, g, fake_where)
        vae_affine = terms.pop("g_adv_vae_affine", None)
        terms |= {
            "g_adv_shape": bce(self._frozen(self.d_shape, shape[r], c3[r]), True),
            "g_adv_what": bce(self._frozen(self.d_what, fake_what, c), True),
            # The reconstruction target is a target: the where net should not shrink boxes to ease it.
            "rec_what": l1(self.what.reconstruct(g["h_what"][u]), g["what_in"][u].detach()),
            "latent_what": l1(self.what.predict_z(g["h_what"][r]), g["z_what"][r]),
            "sup_mask": l1(shape[2 * b:], batch["mask_real"]),
            "mode_seeking": self._mode_seeking(g, u) if self.losses.mode_seeking > 0 else theta.new_zeros(()),
            "kl_what": kl_divergence(g["mu_s"], g["logvar_s"], self.losses.kl_reduction, self.losses.kl_free_bits),
            # The VAE path's mask must fool D_shape too (the reference's cVAE-GAN; its affine: below).
            "g_adv_vae": bce(self._frozen(self.d_shape, shape[2 * b:], c), True),
        }
        if vae_affine is not None:
            terms["g_adv_vae"] = vae_affine + terms["g_adv_vae"]
        zero = theta.new_zeros((), dtype=torch.float32)
        terms = {name: terms.get(name, zero) for name in G_TERMS}
        images = {"box": box, "shape": shape[u], "placed": placed, "shape_vae": shape[2 * b:]}
        return terms, {k: v.detach().float() for k, v in images.items()}

    def _where_gan_terms(self, batch: dict, g: dict, fake_where: torch.Tensor) -> dict[str, torch.Tensor]:
        """The where generator's terms (the reference's where module and its VAE encoder)."""
        b = batch["cls"].shape[0]
        u, r = slice(0, b), slice(0, 2 * b)
        theta, c, c3 = g["theta"], g["c"], g["c3"]
        cls_r = batch["cls"].repeat(2)
        return {
            "g_adv_affine": bce(self._frozen(self.d_affine, theta[r], c3[r]), True),
            "g_adv_where": bce(self._frozen(self.d_where, fake_where, c), True),
            "coord": coord_loss(theta[r]),
            "theta": theta_loss(theta[r], self.min_scale[cls_r]),
            "occupancy": occupancy_loss(
                box_mask(theta[r], self.where_hw),
                g["x_where"][r].index_select(1, self.occupied_channels).sum(1, keepdim=True),
                self.losses.occupancy_free),
            "support": support_loss(theta[r], g["x_where"][r], batch["ground"].repeat(2, 1), self.losses.support_reach),
            "ground_scale": ground_scale_loss(theta[r], _planes(batch, theta), self.mean_height[cls_r],
                                              self.losses.ground_scale_free),
            # Input reconstruction on path u (one path keeps the context in the embedding; at the what
            # resolution each path's 30-channel reconstruction is a large share of a step).
            "rec_where": l1(self.where.reconstruct(g["h_where"][u]), batch["x_where"]),
            "latent_where": l1(self.where.predict_z(g["h_where"][r]), g["z_where"][r]),
            # L1 on the raw affine entries, as the reference. (Measured: in (log scale, centre) space the
            # supervised term no longer outweighs the adversarial ones and raw placements got worse.)
            "sup_affine": l1(free_params(theta[2 * b:]), free_params(batch["theta_real"])),
            "kl_where": kl_divergence(g["mu_w"], g["logvar_w"], self.losses.kl_reduction),
            "g_adv_vae_affine": bce(self._frozen(self.d_affine, theta[2 * b:], c), True),
            "g_adv_place": (bce(self._frozen(self.d_place, g["x_where"][r], theta[r], c3[r]), True)
                            if self.d_place is not None else theta.new_zeros((), dtype=torch.float32)),
        }

    def _mode_seeking(self, g: dict, u: slice) -> torch.Tensor:
        """Not in the reference (a diversity term, as in mode-seeking GANs): path u's scenes and boxes drawn
        again with other z_what; 1 / (mean |shape change| / mean |z change|). Small when shapes follow z."""
        z2 = torch.randn_like(g["z_what"][u])
        logits, _ = self.what(g["what_in"][u], z2, g["c3"][u])
        shape_change = (torch.sigmoid(logits) - g["shape"][u]).abs().flatten(1).mean(1)
        z_change = (z2 - g["z_what"][u]).abs().mean(1)
        return 1 / ((shape_change / z_change).mean() + 1e-5)

    def generator_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor]]:
        """Total generator-side loss (where + what + VAE encoders), every named term as a float, and images
        for sample grids: "box" [B,1,Hw,Ww], "shape" [B,1,S,S], "placed" [B,1,Ht,Wt] (path u on x), and
        "shape_vae" [B,1,S,S] (the supervised path's mask, to compare with mask_real)."""
        t, images = self.generator_terms(batch)
        w = self.losses
        total = (
            w.adversarial * (t["g_adv_affine"] + t["g_adv_where"] + t["g_adv_shape"] + t["g_adv_what"])
            + w.coord * t["coord"]
            + w.theta * t["theta"]
            + w.occupancy * t["occupancy"]
            + w.support * t["support"]
            + w.ground_scale * t["ground_scale"]
            + w.reconstruction * (t["rec_where"] + t["rec_what"] + t["latent_where"] + t["latent_what"])
            + w.supervised * (t["sup_affine"] + t["sup_mask"])
            + w.kl * (t["kl_where"] + t["kl_what"])
            + w.vae_adversarial * t["g_adv_vae"]
            + w.mode_seeking * t["mode_seeking"]
            + w.placement_adversarial * t["g_adv_place"]
            + w.where_nll * t["where_nll"]
        )
        return total, _floats({**t, "g_total": total}), images

    def discriminator_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Sum of the four discriminators' BCE losses: real vs the generators' fakes (made without grad)."""
        b = batch["cls"].shape[0]
        with torch.no_grad():
            g = self._generate(batch)
            fake_where, fake_what, _, _ = self._fakes_u(batch, g["theta"][:b], g["shape"][:b])
        c, c3, theta_real = g["c"], g["c3"], batch["theta_real"]
        real_what = paint(batch["xp_what"], warp(batch["mask_real"], theta_real, self.what_hw),
                          self.targets[batch["cls"]])
        # Extra fakes for D_where (not in the reference): x with the box of one of its own persons/cars - a
        # box on an existing object, which no real example shows.
        zero = theta_real.new_zeros((), dtype=torch.float32)
        if not self.density and "theta_occupied" in batch:  # (the density where model has no discriminator)
            occupied_box = box_mask(batch["theta_occupied"], self.where_hw).to(fake_where.dtype)
            logits = self.d_where(torch.cat([batch["x_where"], occupied_box], 1), c).float()
            occupied_bce = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
            occupied_bce = occupied_bce.flatten(1).mean(1)
            valid = batch["occupied_valid"].float()
        else:  # the density where model, or a batch without those boxes (built by hand)
            occupied_bce = valid = theta_real.new_zeros(b, dtype=torch.float32)
        t = {
            "d_affine": zero if self.density else _d_loss(self.d_affine, theta_real, g["theta"], c, c3),
            "d_where": zero if self.density else _d_loss(self.d_where, self._real_where(batch), fake_where, c, c),
            "d_shape": _d_loss(self.d_shape, batch["mask_real"], g["shape"], c, c3),
            "d_what": _d_loss(self.d_what, real_what, fake_what, c, c),
            "d_where_occupied": (occupied_bce * valid).sum() / valid.sum().clamp_min(1),
            "d_place": self._d_place_loss(batch, g) if self.d_place is not None else zero,
        }
        total = t["d_affine"] + t["d_where"] + t["d_shape"] + t["d_what"] + t["d_place"]
        total = total + self.losses.occupied_negatives * t["d_where_occupied"]
        t["d_total"] = total
        return total, _floats(t)

    def _real_where(self, batch: dict) -> torch.Tensor:
        """D_where's real input: x+ ++ its real box."""
        box = box_mask(batch["theta_real"], self.where_hw).to(batch["xp_where"].dtype)
        return torch.cat([batch["xp_where"], box], 1)

    def _d_place_loss(self, batch: dict, g: dict) -> torch.Tensor:
        """The placement discriminator: real = x+ with its real box; fake = the random-z boxes (paths u, p)
        on their scenes."""
        b = batch["cls"].shape[0]
        scenes = torch.cat([batch["xp_where"].to(g["x_where"].dtype), g["x_where"][: 2 * b]])
        thetas = torch.cat([batch["theta_real"].float(), g["theta"][: 2 * b].float()])
        logits = self.d_place(scenes, thetas, g["c3"])
        return bce(logits[:b], True) + bce(logits[b:], False)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def sample(self, x_where: torch.Tensor, x_what: torch.Tensor, cls: torch.Tensor,
               z_where: torch.Tensor | None = None, z_what: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Placements and shapes for scenes x: z ~ N(0, I) unless given. Returns "theta" [B,2,3], "box" [B,4]
        (x0, y0, x1, y1 in [0, 1]), "shape" [B,1,S,S] probabilities, "placed" [B,1,Ht,Wt] (the shape warped
        into the what-resolution frame), and the "z_where", "z_what" used. Batch many candidates per frame by
        repeating the frame."""
        b, dev = cls.shape[0], cls.device
        c = F.one_hot(cls, self.n_classes).float()
        z_where = torch.randn(b, self.z_where, device=dev) if z_where is None else z_where
        z_what = torch.randn(b, self.z_what, device=dev) if z_what is None else z_what
        theta = self.where.sample(x_where, z_where, c) if self.density else self.where(x_where, z_where, c)[0]
        what_in = paint(x_what, box_mask(theta, self.what_hw), self.targets[cls])
        logits, _ = self.what(what_in, z_what, c)
        shape = torch.sigmoid(logits)
        return {"theta": theta, "box": theta_to_box(theta), "shape": shape,
                "placed": warp(shape, theta, self.what_hw), "z_where": z_where, "z_what": z_what}


def _planes(batch: dict, theta: torch.Tensor) -> torch.Tensor:
    """The ground planes of paths u and p (x, then x+); NaN (no scale cost) for a batch without them."""
    if "plane_x" in batch:
        return torch.cat([batch["plane_x"], batch["plane_xp"]])
    return theta.new_full((theta.shape[0] // 3 * 2, 2), float("nan"), dtype=torch.float32)


def _d_loss(d: nn.Module, real: torch.Tensor, fake: torch.Tensor, c_real: torch.Tensor, c_fake: torch.Tensor):
    """BCE(D(real), 1) + BCE(D(fake), 0), with real and fake in one batched call."""
    n = real.shape[0]
    logits = d(torch.cat([real.to(fake.dtype), fake]), torch.cat([c_real, c_fake]))
    return bce(logits[:n], True) + bce(logits[n:], False)


def _floats(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """All terms as Python floats with one device sync."""
    values = torch.stack([v.detach().float() for v in terms.values()]).tolist()
    return dict(zip(terms, values, strict=True))
