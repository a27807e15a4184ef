"""The where module: given a scene and a class, where could an instance of it go (location and scale).

scene (one-hot + edges) ++ tiled z_where ++ tiled class one-hot
  -> Encoder (stride-2 convs down to 4x8, then a conv over that map) -> embedding h
  -> transformer MLP(h ++ class) -> (ax, tx, ay, ty) -> theta [B, 2, 3]   (the box / placement)
  -> latent head(h ++ class) -> z_where back                             (keeps z in use)
  -> reconstructor(h ++ class) -> the input maps                         (keeps the context in h)

``AffineEncoder`` is the supervised (VAE) path's encoder: a real box's affine -> (mu, logvar) of z_where.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.affine import box_features, theta_from_features
from pipeline.models.blocks import ConditionedEncoder, Decoder, LatentHead, float32, mlp

MAP = (4, 8)  # (H, W) of the map the encoders end on
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
    def __init__(self, in_channels: int, n_classes: int, z_dim: int, widths: list[int], embed: int):
        super().__init__(in_channels, n_classes, z_dim, widths, embed, MAP)
        self.transformer = Transformer(embed + n_classes)
        self.latent = LatentHead(embed + n_classes, z_dim)
        self.reconstructor = Decoder(embed + n_classes, widths[::-1], in_channels, MAP)

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
