"""The what module: given a scene with a box painted in as the target class, what shape goes there.

scene with the box painted in (edges zeroed inside) ++ tiled z_what ++ tiled class one-hot
  -> Encoder (stride-2 convs down to 4x8, then a conv over that map) -> embedding h
  -> shape generator(h ++ class): 4x4 map, one doubling transposed conv per shape width -> S x S mask logits
  -> latent head(h ++ class) -> z_what back
  -> reconstructor(h ++ class) -> the input maps

``MaskEncoder`` is the supervised (VAE) path's encoder: a real S x S mask ++ class -> (mu, logvar) of z_what.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.blocks import ConditionedEncoder, Decoder, Encoder, LatentHead
from pipeline.models.where_net import MAP

SHAPE_MAP = (4, 4)


class WhatNet(ConditionedEncoder):
    def __init__(self, in_channels: int, n_classes: int, z_dim: int, widths: list[int], embed: int,
                 shape_widths: list[int], z_to_shape: bool = False, map_size: tuple[int, int] = MAP):
        super().__init__(in_channels, n_classes, z_dim, widths, embed, map_size)
        self.z_to_shape = z_to_shape
        self.generator = Decoder(embed + n_classes + (z_dim if z_to_shape else 0), shape_widths, 1, SHAPE_MAP)
        self.latent = LatentHead(embed + n_classes, z_dim)
        self.reconstructor = Decoder(embed + n_classes, widths[::-1], in_channels, map_size)

    def forward(self, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (shape logits [B, 1, S, S] float32, conditioned embedding for the heads)."""
        h = self.encode(x, z, c)
        shape_in = torch.cat([h, z.to(h.dtype)], 1) if self.z_to_shape else h
        return self.generator(shape_in).float(), h

    def predict_z(self, h: torch.Tensor) -> torch.Tensor:
        return self.latent(h)

    def reconstruct(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.reconstructor(h).float())


class MaskEncoder(nn.Module):
    """VAE encoder of the supervised what path: mask [B, 1, S, S] ++ tiled class -> (mu, logvar) of z_what.
    Mirrors the shape generator: one halving conv per shape width, down to 4x4, then a conv over it."""

    def __init__(self, n_classes: int, z_dim: int, widths: list[int]):
        super().__init__()
        self.encoder = Encoder(1, n_classes, widths, 2 * z_dim, SHAPE_MAP)

    def forward(self, mask: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(mask, c).float().chunk(2, 1)
        return mu, logvar

