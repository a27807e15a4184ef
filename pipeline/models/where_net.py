"""The where module: given a scene and a class, where could an instance of it go (location and scale).

scene (one-hot + edges) ++ tiled z_where ++ tiled class one-hot
  -> Encoder (stride-2 convs down to a small map - 4x8 for a 2:1 frame - then a conv over it) -> embedding h
  -> transformer MLP(h ++ class) -> (ax, tx, ay, ty) -> theta [B, 2, 3]   (the box / placement)
  -> latent head(h ++ class) -> z_where back                             (keeps z in use)
  -> reconstructor(h ++ class) -> the input maps                         (keeps the context in h)

``AffineEncoder`` is the supervised (VAE) path's encoder: a real box's affine -> (mu, logvar) of z_where.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.affine import box_features, box_to_theta, theta_from_features, theta_to_box
from pipeline.models.blocks import ConditionedEncoder, Decoder, LatentHead, TiledConv, down, float32, mlp, up

MAP = (4, 8)  # (H, W) of the map the encoders end on for a 2:1 input (``map_size``: the input's size / 2**n)
TRANSFORMER_HIDDEN = [64, 32]  # the reference's 128-64-32-6, with the embedding as first width


class Transformer(nn.Module):
    """Embedding -> theta [B, 2, 3] with rotation/shear structurally zero (only 4 numbers are free).

    The reference's MLP (embedding-64-32-6) outputs the six entries directly and zeroes rotation/shear. Ours
    outputs the four free numbers as (log x-scale, x-centre, log y-scale, y-centre) and builds theta from
    them: the same boxes, but the MLP works in numbers of order 1 (a small object's raw scale is 20 or more,
    far from the identity's 1, a long way for Adam at lr 2e-4), and scales are positive by construction. The
    last layer starts at zero, so theta is the identity (the whole image) for any input at initialisation.
    Runs in float32 (coordinates)."""

    def __init__(self, cin: int):
        super().__init__()
        self.net = mlp([cin, *TRANSFORMER_HIDDEN, 4])
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        with float32(h.device.type):
            return theta_from_features(self.net(h.float()))


class WhereNet(ConditionedEncoder):
    def __init__(self, in_channels: int, n_classes: int, z_dim: int, widths: list[int], embed: int,
                 map_size: tuple[int, int] = MAP):
        super().__init__(in_channels, n_classes, z_dim, widths, embed, map_size)
        self.transformer = Transformer(embed + n_classes)
        self.latent = LatentHead(embed + n_classes, z_dim)
        self.reconstructor = Decoder(embed + n_classes, widths[::-1], in_channels, map_size)

    def forward(self, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (theta [B, 2, 3] float32, conditioned embedding for the heads)."""
        h = self.encode(x, z, c)
        return self.transformer(h), h

    def predict_z(self, h: torch.Tensor) -> torch.Tensor:
        return self.latent(h)

    def reconstruct(self, h: torch.Tensor) -> torch.Tensor:
        """The input maps back, as probabilities (sigmoid), float32."""
        return torch.sigmoid(self.reconstructor(h).float())


class AffineEncoder(nn.Module):
    """VAE encoder of the supervised where path: a real affine ++ class -> (mu, logvar) of z_where.

    It reads the affine's free numbers as ``box_features`` (log scale, centre: order 1, unlike raw scales
    up to 1 / min_scale; rotation/shear are always 0). Runs in float32 (coordinates)."""

    def __init__(self, n_classes: int, z_dim: int, hidden: tuple[int, ...] = (64, 32)):
        super().__init__()
        self.net = mlp([4 + n_classes, *hidden, 2 * z_dim])

    def forward(self, theta: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with float32(theta.device.type):
            mu, logvar = self.net(torch.cat([box_features(theta), c.float()], 1)).chunk(2, 1)
        return mu, logvar


# Channels of the density net's output at each position: the logit of "a box's bottom centre lies in this
# cell", then the Gaussian of the box's log height and log width (fractions of the frame) standing there.
DENSITY_CHANNELS = ("logit", "mu_log_h", "log_sd_h", "mu_log_w", "log_sd_w")
LOG_SD_RANGE = (-4.0, 1.5)  # sd of a log size: from 2% to a factor e^4.5 (a clamp that only bounds the NLL)


class WhereDensity(nn.Module):
    """Not in the reference (``model.where_model: density``): where an instance could go, as a distribution
    over the scene's positions rather than one box per z.

    scene ++ tiled class -> a U-Net at the where resolution (the same halving convs as ``Encoder``; one
    global context vector from the smallest map, tiled back; skips at every level) -> per position: the
    logit of the box's bottom centre lying in that cell, and a Gaussian over the log height and log width of
    a box standing there. Trained by maximum likelihood of the real boxes of x+ (``nll``): the position is a
    softmax over every cell, so the net can put no mass on existing objects or the sky, which a regressor
    from z can only approach by moving its one box.

    ``sample`` reads its randomness from a z_where [B, >= 5] ~ N(0, I), so seeded draws, fixed and truncated
    z work as for the GAN's where module: Phi(z0) picks the cell by inverse CDF (cells in row-major order),
    Phi(z3) and Phi(z4) place the bottom centre across and down the cell, and z1 and z2 scale the sd of the
    log height and width read there.
    """

    def __init__(self, in_channels: int, n_classes: int, widths: list[int], embed: int,
                 map_size: tuple[int, int] = MAP):
        super().__init__()
        n = len(widths)
        self.first = TiledConv(in_channels, n_classes, widths[0])
        self.act = nn.LeakyReLU(0.2)
        self.downs = nn.ModuleList(down(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.context = nn.Conv2d(widths[-1], embed, map_size)
        self.fuse = nn.Sequential(nn.Conv2d(widths[-1] + embed + n_classes, widths[-1], 1), nn.ReLU(True))
        # ups[k] doubles the map of level k (the bottom one alone, the others with their skip).
        self.ups = nn.ModuleList(
            up(widths[k] * (1 if k == n - 1 else 2), widths[max(k - 1, 0)]) for k in range(n))
        self.head = nn.Conv2d(widths[0], len(DENSITY_CHANNELS), 1)
        with torch.no_grad():  # start at boxes a tenth of the frame, sd e^0 (the NLL moves them fast)
            self.head.bias.copy_(torch.tensor([0.0, math.log(0.1), 0.0, math.log(0.1), 0.0]))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Scene [B, C, H, W], class one-hot [B, n] -> [B, 5, H, W] (``DENSITY_CHANNELS``), float32."""
        feats = [self.act(self.first(x, c))]
        for layer in self.downs:
            feats.append(layer(feats[-1]))
        g = torch.cat([self.act(self.context(feats[-1])), c[:, :, None, None].to(feats[-1].dtype)], 1)
        y = self.fuse(torch.cat([feats[-1], g.expand(-1, -1, *feats[-1].shape[-2:])], 1))
        for k in reversed(range(len(feats))):
            y = self.ups[k](y if k == len(feats) - 1 else torch.cat([y, feats[k]], 1))
        out = self.head(y).float()
        return torch.cat([out[:, :1], out[:, 1:2], out[:, 2:3].clamp(*LOG_SD_RANGE),
                          out[:, 3:4], out[:, 4:5].clamp(*LOG_SD_RANGE)], 1)

    @staticmethod
    def _sizes_at(out: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
        """The 4 size numbers of ``out`` [B, 5, H, W] read bilinearly at points (px, py) [B] in [0, 1] -> [B, 4].

        Read at the exact bottom centre, not at its cell's centre: near the horizon a box's height changes by
        a large factor within one cell's rows, and the field can follow that between neighbouring cells."""
        grid = torch.stack([px * 2 - 1, py * 2 - 1], 1)[:, None, None, :].to(out.dtype)
        return F.grid_sample(out[:, 1:], grid, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0, 0]

    @staticmethod
    def _bottom_cell(cx: torch.Tensor, bottom: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """Row-major index of the cell of an (h, w) map that holds the bottom centre (cx, bottom) in [0, 1]."""
        col = (cx * w).floor().long().clamp(0, w - 1)
        row = (bottom * h).floor().long().clamp(0, h - 1)
        return row * w + col

    def nll(self, x: torch.Tensor, theta: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood (nats) of the real boxes ``theta`` [B, 2, 3] on their scenes x:
        -log p(cell of the bottom centre) - log N(log h) - log N(log w) (the 0.5 log 2 pi constants left out;
        the position within the cell is uniform)."""
        return self.losses(x, theta, c)[0]

    def losses(self, x: torch.Tensor, theta: torch.Tensor, c: torch.Tensor, occupied: torch.Tensor | None = None,
               free: float = 0.25, ground: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """(``nll`` of the real boxes, ``occupancy`` cost, ``support`` cost) from one pass of the net over x.

        Both costs read the box of the mean size at every cell (no gradient: only the position logits feel
        them), standing on the cell's centre, and are the density's expectation of a per-cell cost: mass
        moves off cells where an object of the usual size would stand badly. ``occupied`` [B, 1, H, W]
        (existing persons and cars in x): the box's share on them above ``free``, scaled to [0, 1].
        ``ground`` [B, 1, H, W] (the labels the class stands on in x): the share of the box's bottom row
        that is neither ground nor an existing object. Each cost is 0 when its map is not given."""
        out = self(x, c)
        h, w = out.shape[-2:]
        x0, y0, x1, y1 = theta_to_box(theta).unbind(1)
        cx = (x0 + x1) / 2
        logits = out[:, 0].flatten(1)
        position = F.cross_entropy(logits, self._bottom_cell(cx, y1, h, w))
        mu_h, log_sd_h, mu_w, log_sd_w = self._sizes_at(out, cx, y1).unbind(1)
        size_h = (y1 - y0).clamp_min(1e-4).log()
        size_w = (x1 - x0).clamp_min(1e-4).log()
        gauss = (0.5 * ((size_h - mu_h) / log_sd_h.exp()).square() + log_sd_h
                 + 0.5 * ((size_w - mu_w) / log_sd_w.exp()).square() + log_sd_w)
        zero = logits.new_zeros(())
        if occupied is None and ground is None:
            return position + gauss.mean(), zero, zero
        probs = torch.softmax(logits, 1)
        bounds = _mean_box_bounds(out[:, 1].detach(), out[:, 3].detach())
        occupancy = support = zero
        if occupied is not None:
            cost = F.relu(_box_share(occupied.float(), *bounds) - free) / (1 - free)
            occupancy = (probs * cost.flatten(1)).sum(1).mean()
        if ground is not None:
            valid = 1 - (occupied.float().clamp(0, 1) if occupied is not None else torch.zeros_like(ground.float()))
            bad = (1 - ground.float().clamp(0, 1)) * valid
            cost = _bottom_row_sum(bad, *bounds) / _bottom_row_sum(valid, *bounds).clamp_min(1)
            support = (probs * cost.flatten(1)).sum(1).mean()
        return position + gauss.mean(), occupancy, support

    def sample(self, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Boxes drawn for scenes x with randomness z [B, >= 5] -> theta [B, 2, 3] float32 (no gradient:
        a cell is a discrete choice). Boxes are cut to the frame, as real boxes of truncated objects are."""
        with torch.no_grad():
            out = self(x, c)
            h, w = out.shape[-2:]
            u = torch.special.ndtr(z.float())
            probs = torch.softmax(out[:, 0].flatten(1), 1)
            cdf = probs.cumsum(1)
            idx = torch.searchsorted(cdf, (u[:, :1] * cdf[:, -1:]).contiguous()).clamp_max(h * w - 1)[:, 0]
            # (the inverse of _bottom_cell: the cell's corner plus a uniform offset inside it)
            cx = ((idx % w).float() + u[:, 3]) / w
            bottom = ((idx // w).float() + u[:, 4]) / h
            mu_h, log_sd_h, mu_w, log_sd_w = self._sizes_at(out, cx, bottom).unbind(1)
            box_h = (mu_h + log_sd_h.exp() * z[:, 1].float()).exp().clamp(1 / h, 1)
            box_w = (mu_w + log_sd_w.exp() * z[:, 2].float()).exp().clamp(1 / w, 1)
            x0, x1 = (cx - box_w / 2).clamp(0, 1 - 1 / w), (cx + box_w / 2).clamp(1 / w, 1)
            x1 = torch.maximum(x1, x0 + 1 / w)
            y0 = (bottom - box_h).clamp_min(0)
            return box_to_theta(torch.stack([x0, y0, x1, torch.maximum(bottom, y0 + 1 / h)], 1))



def _mean_box_bounds(mu_log_h: torch.Tensor, mu_log_w: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows [r0, r1) and columns [c0, c1) (each [B, H, W], long) of the box whose bottom centre is each
    cell's centre, of height exp(mu_log_h) and width exp(mu_log_w) (fractions of the frame, read at that
    cell: [B, H, W]); rounded to whole cells, cut to the frame, at least one cell."""
    b, h, w = mu_log_h.shape
    dev = mu_log_h.device
    rows = torch.arange(h, device=dev, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, device=dev, dtype=torch.float32)[None, :].expand(h, w)
    box_h = (mu_log_h.float().exp() * h).clamp(1, h)
    half_w = (mu_log_w.float().exp() * w).clamp(1, w) / 2
    r1 = (rows + 1).long().expand(b, h, w)
    r0 = torch.minimum((rows + 1 - box_h).round().long().clamp(0, h - 1), r1 - 1)
    c0 = (cols + 0.5 - half_w).round().long().clamp(0, w - 1)
    c1 = torch.maximum((cols + 0.5 + half_w).round().long().clamp(1, w), c0 + 1)
    return r0, r1, c0, c1


def _box_share(occupied: torch.Tensor, r0: torch.Tensor, r1: torch.Tensor, c0: torch.Tensor, c1: torch.Tensor
               ) -> torch.Tensor:
    """[B, H, W]: the mean of ``occupied`` [B, 1, H, W] over each cell's box (``_mean_box_bounds``), from a
    summed-area table: one lookup per corner."""
    b, _, h, w = occupied.shape
    table = F.pad(occupied[:, 0].float().cumsum(1).cumsum(2), (1, 0, 1, 0)).flatten(1)  # [B, (H+1)(W+1)]

    def at(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return table.gather(1, (r * (w + 1) + c).flatten(1)).view(b, h, w)

    covered = at(r1, c1) - at(r0, c1) - at(r1, c0) + at(r0, c0)
    return covered / ((r1 - r0) * (c1 - c0)).float()


def _bottom_row_sum(values: torch.Tensor, r0: torch.Tensor, r1: torch.Tensor, c0: torch.Tensor, c1: torch.Tensor
                    ) -> torch.Tensor:
    """[B, H, W]: the sum of ``values`` [B, 1, H, W] along each cell's box's bottom row (the cell's own
    row), columns [c0, c1)."""
    b, _, h, w = values.shape
    table = F.pad(values[:, 0].float().cumsum(2), (1, 0)).flatten(1)  # [B, H * (W + 1)]
    row = r1 - 1

    def at(c: torch.Tensor) -> torch.Tensor:
        return table.gather(1, (row * (w + 1) + c).flatten(1)).view(b, h, w)

    return at(c1) - at(c0)
