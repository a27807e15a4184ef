"""The four discriminators of the insertion GAN (vanilla GAN: they return logits, the loss is BCE).

- ``AffineDiscriminator``: is this box (the affine) a plausible box for the class, whatever the scene?
- ``PatchDiscriminator``: used twice. D_where sees (scene, edges, box mask) at the where resolution - is the
  box plausible *here*; D_what sees (scene with the object pasted, edges) at the what resolution - does the
  object fit its surroundings. Patch logits: every output pixel judges its receptive field.
- ``ShapeDiscriminator``: is this S x S mask a plausible shape for the class (one global logit, since a
  silhouette is judged as a whole).
All are conditioned on the class: the one-hot is concatenated to vectors or tiled as extra channels.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.affine import box_features
from pipeline.models.blocks import Encoder, TiledConv, down, float32, mlp


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
