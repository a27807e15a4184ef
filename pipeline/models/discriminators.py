"""The four discriminators of the insertion GAN (vanilla GAN: they return logits, the loss is BCE).

- ``AffineDiscriminator``: is this box (the affine) a plausible box for the class, whatever the scene?
- ``PatchDiscriminator``: used twice. D_where sees (scene, edges, box mask) at the where resolution - is the
  box plausible *here*; D_what sees (scene with the object pasted, edges) at the what resolution - does the
  object fit its surroundings. Patch logits: every output pixel judges its receptive field.
- ``ShapeDiscriminator``: is this S x S mask a plausible shape for the class (one global logit, since a
  silhouette is judged as a whole).
- ``PlacementDiscriminator`` (not in the reference; ``train.losses.placement_adversarial``): is this box
  plausible in *this* scene, read from the scene's features at points of the box.
All are conditioned on the class: the one-hot is concatenated to vectors or tiled as extra channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.affine import box_features, theta_to_box
from pipeline.models.blocks import Encoder, TiledConv, down, float32, mlp

# Where the placement discriminator reads the scene, in box units (0..1 across, 0..1 down): a 3x3 grid
# inside the box (is anything already there?) and four points on its bottom edge, which are read one
# where-pixel lower (the ground it stands on).
INSIDE_POINTS = [(u, v) for v in (1 / 6, 1 / 2, 5 / 6) for u in (1 / 6, 1 / 2, 5 / 6)]
GROUND_POINTS = [(u, 1.0) for u in (1 / 8, 3 / 8, 5 / 8, 7 / 8)]


class AffineDiscriminator(nn.Module):
    """theta [B, 2, 3] ++ class -> logit [B, 1].

    Reads the affine as ``box_features`` (log scale and centre of its 4 free numbers; the other 2 are
    always 0): the same information for positive scales, in numbers of order 1 rather than raw scales up
    to 1 / min_scale, which would saturate the logits. Float32: its inputs are coordinates."""

    def __init__(self, n_classes: int, hidden: tuple[int, ...] = (128, 64)):
        super().__init__()
        self.net = mlp([4 + n_classes, *hidden, 1])

    def forward(self, theta: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        with float32(theta.device.type):
            return self.net(torch.cat([box_features(theta), c.float()], 1))


class PlacementDiscriminator(nn.Module):
    """(scene [B, C, H, W], theta [B, 2, 3], class) -> logit [B, 1]. Not in the reference.

    D_affine judges a box whatever the scene and D_where sees the box only as a mask, whose gradient lives
    on its soft edges. This one computes per-pixel scene features (two 3x3 convs, full where resolution)
    and samples them bilinearly at the box's points (``INSIDE_POINTS``, ``GROUND_POINTS``), next to the
    box's own numbers: what lies under and inside the box decides, and the gradient reaches the box's
    position and size through the sampling. Samples and head run in float32 (coordinates)."""

    def __init__(self, in_channels: int, n_classes: int, width: int, hidden: tuple[int, ...] = (128, 64)):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
                                      nn.Conv2d(width, width, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))
        points = INSIDE_POINTS + GROUND_POINTS
        self.register_buffer("points", torch.tensor(points, dtype=torch.float32), persistent=False)
        self.head = mlp([len(points) * width + 4 + n_classes, *hidden, 1])

    def forward(self, scene: torch.Tensor, theta: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        features = self.features(scene)
        with float32(theta.device.type):
            x0, y0, x1, y1 = theta_to_box(theta).unbind(1)
            u, v = self.points.unbind(1)
            xs = x0[:, None] + u * (x1 - x0)[:, None]
            below = (v >= 1).float() / scene.shape[2]  # ground points: one where-pixel under the bottom edge
            ys = y0[:, None] + v * (y1 - y0)[:, None] + below
            grid = torch.stack([xs, ys], -1)[:, None] * 2 - 1  # [B, 1, K, 2] in grid_sample's [-1, 1]
            sampled = F.grid_sample(features.float(), grid, align_corners=False, padding_mode="zeros")
            return self.head(torch.cat([sampled.flatten(1), box_features(theta), c.float()], 1))


class PatchDiscriminator(nn.Module):
    """Maps ++ tiled class -> patch logits: one halving conv per width (no norm on the first), then a 3x3
    conv to one channel."""

    def __init__(self, in_channels: int, n_classes: int, widths: list[int]):
        super().__init__()
        self.first = TiledConv(in_channels, n_classes, widths[0])
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.features = nn.Sequential(*(down(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.out = nn.Conv2d(widths[-1], 1, 3, 1, 1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(self.act(self.first(x, c))))


class ShapeDiscriminator(nn.Module):
    """Mask [B, 1, S, S] ++ tiled class -> logit [B, 1]: halving convs down to 4x4, then a conv over it.

    Uses ``widths`` (the model's d_widths) for the first layers and repeats the last width for the rest,
    so that any S reaches 4x4."""

    def __init__(self, n_classes: int, widths: list[int], size: int):
        super().__init__()
        n_down = (size // 4).bit_length() - 1  # log2(S / 4)
        widths = (widths + [widths[-1]] * n_down)[:n_down]
        self.net = Encoder(1, n_classes, widths, 1, (4, 4))

    def forward(self, mask: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(mask, c)
