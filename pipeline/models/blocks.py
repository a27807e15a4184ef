"""Small building blocks shared by the insertion GAN's networks.

Every network here is a stack of the same few pieces: 4x4 stride-2 convolutions that halve the map
(InstanceNorm without affine after all but the first, LeakyReLU 0.2), transposed convolutions that double
it, and a conv over the whole remaining map that turns it into a vector. Conditioning vectors (a latent
``z``, the class one-hot) are tiled over the image as extra input channels of a conv net's first layer
(``TiledConv`` computes exactly that, without materialising the tiles), or concatenated to vectors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def instance_norm(c: int) -> nn.GroupNorm:
    """InstanceNorm without affine, as the reference uses; written as GroupNorm with one group per channel
    (the same function) because that kernel is 2x faster on CPU and runs in float32 under CUDA autocast."""
    return nn.GroupNorm(c, c, affine=False)


def down(cin: int, cout: int, norm: bool = True) -> nn.Sequential:
    """Halve the map: conv 4x4 stride 2 (+ InstanceNorm) + LeakyReLU 0.2. No bias before a norm (it cancels)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(instance_norm(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def up(cin: int, cout: int) -> nn.Sequential:
    """Double the map: transposed conv 4x4 stride 2 + InstanceNorm + ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), instance_norm(cout), nn.ReLU(True))


def mlp(dims: list[int]) -> nn.Sequential:
    """Linear layers with LeakyReLU 0.2 between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def tile(v: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, D] -> [B, D, H, W]: a vector repeated at every pixel (a view, no copy)."""
    return v[:, :, None, None].expand(-1, -1, *size)


class TiledConv(nn.Module):
    """The first layer of a conv net with vectors tiled over its input: ``conv(cat([x, tile(v)]))``, a 4x4
    stride-2 conv, computed without building the tiled channels.

    A conv over a constant map is constant except where the zero padding enters, i.e. on the first and last
    output row and column. So the vector part is convolved on a 6x6 map (giving 3x3 outputs: border,
    interior, border) and stretched to the output size. Same function and parameters as the concatenation;
    at the what resolution it saves 18 of 48 input channels, the costliest layer of the model."""

    def __init__(self, cin: int, cvec: int, cout: int, bias: bool = True):
        super().__init__()
        self.maps = nn.Conv2d(cin, cout, 4, 2, 1, bias=bias)
        self.vecs = nn.Conv2d(cvec, cout, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        small = self.vecs(tile(v.to(x.dtype), (6, 6)))  # [B, O, 3, 3]
        return self.maps(x) + _stretch(_stretch(small, h, 2), w, 3)


def _stretch(t: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """Size 3 along ``dim`` -> size n: first, the middle repeated n - 2 times, last (cat of views, cheap to
    differentiate, unlike an index)."""
    first, middle, last = t.split(1, dim)
    size = list(middle.shape)
    size[dim] = n - 2
    return torch.cat([first, middle.expand(size), last], dim)


def float32(device_type: str):
    """A region where autocast is off: small affine MLPs whose outputs are coordinates stay in float32
    (bf16 keeps 8 bits of mantissa: a scale of 20 would be off by 0.1, i.e. whole pixels)."""
    return torch.autocast(device_type, enabled=False)


class Encoder(nn.Module):
    """Map ++ tiled vector -> vector: ``len(widths)`` halving convs down to ``map_size`` (H, W), then one conv
    over that map.

    The first block has no norm (as in the reference) and takes the conditioning vector ``v`` (latent and/or
    class one-hot, ``cvec`` numbers) as tiled channels. The output is linear: callers add an activation when
    it is an embedding, and use it raw when it is mean/log-variance or a logit."""

    def __init__(self, cin: int, cvec: int, widths: list[int], out: int, map_size: tuple[int, int]):
        super().__init__()
        self.first = TiledConv(cin, cvec, widths[0])
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.features = nn.Sequential(*(down(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.project = nn.Conv2d(widths[-1], out, map_size)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(self.act(self.first(x, v)))).flatten(1)


class Decoder(nn.Module):
    """Vector -> map: a transposed conv from 1x1 to ``map_size`` (H, W) with ``widths[0]`` channels, then one
    doubling transposed conv per entry of ``widths`` (the i-th goes widths[i] -> widths[i+1], the last to
    ``out`` channels). Output size = map_size * 2 ** len(widths). Returns logits."""

    def __init__(self, cin: int, widths: list[int], out: int, map_size: tuple[int, int]):
        super().__init__()
        self.project = nn.Sequential(
            nn.ConvTranspose2d(cin, widths[0], map_size, bias=False), instance_norm(widths[0]), nn.ReLU(True)
        )
        self.ups = nn.Sequential(*(up(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))
        self.out = nn.ConvTranspose2d(widths[-1], out, 4, 2, 1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.out(self.ups(self.project(v[:, :, None, None])))


class LatentHead(nn.Module):
    """Predicts the latent back from an embedding (dropout + a 1x1 conv, i.e. a linear layer on a vector).

    Latent reconstruction stops the generator from ignoring z (mode collapse onto one placement/shape)."""

    def __init__(self, cin: int, z_dim: int, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, z_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) drawn with torch on mu's device (seedable, no Python randomness)."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "sum", free_bits: float = 0.0
                  ) -> torch.Tensor:
    """KL(N(mu, sigma) || N(0, I)) averaged over the batch, then summed (or averaged: ``reduction="mean"``)
    over latent dims (float32). With ``free_bits`` > 0 each dim's batch-mean KL counts as at least that many
    nats: below it the encoder pays nothing, so it has no reason to leave a dim unused (posterior collapse)."""
    mu, logvar = mu.float(), logvar.float()
    per_dim = (-0.5 * (1 + logvar - mu.square() - logvar.exp())).mean(0)
    if free_bits > 0:
        per_dim = per_dim.clamp_min(free_bits)
    return per_dim.sum() if reduction == "sum" else per_dim.mean()


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla GAN loss: BCE with logits against all-real or all-fake targets, in float32."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(a.float(), b.float())


class ConditionedEncoder(nn.Module):
    """Scene + z + class -> an embedding that carries the class on to the heads (where and what nets).

    The z and class one-hot are tiled over the scene (first layer of ``Encoder``); the class is also
    appended to the embedding, so every head reading it stays class-conditioned."""

    def __init__(self, in_channels: int, n_classes: int, z_dim: int, widths: list[int], embed: int,
                 map_size: tuple[int, int]):
        super().__init__()
        self.z_dim = z_dim
        self.encoder = Encoder(in_channels, z_dim + n_classes, widths, embed, map_size)
        self.act = nn.LeakyReLU(0.2)

    def encode(self, x: torch.Tensor, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Scene [B, C, H, W], z [B, z_dim], class one-hot [B, n] -> h ++ class [B, embed + n]."""
        h = self.act(self.encoder(x, torch.cat([z, c], 1)))
        return torch.cat([h, c.to(h.dtype)], 1)
