"""The label-map-to-image renderer, in the pix2pixHD design.

Input (``label_input``): the one-hot label map + the instance boundary map + the part map one-hot
(+ optionally a per-instance feature map, the style code). Networks:

- ``GlobalGenerator``: 7x7 conv, ``downs`` stride-2 convs (width doubling), ``blocks`` residual blocks
  with InstanceNorm, as many 2x upsamplings (transposed convs as in the reference, or resize + conv),
  7x7 conv, tanh.
- ``LocalEnhancer``: a narrower full-resolution branch around a global generator that runs at half
  resolution; their features are summed (2x the global generator's resolution).
- ``MultiscaleDiscriminator``: ``num_d`` PatchGANs (4x4 convs, 3 stride-2 + 2 stride-1, LeakyReLU 0.2,
  InstanceNorm) on the (label, boundary, image) stack at 1x, 1/2, 1/4 ...; each returns every layer's
  features so the generator can match them.
- ``FeatureEncoder``: an encoder-decoder whose output is averaged within each instance
  (``instance_average``): one feature vector per instance, the style the generator is conditioned on;
  k-means over the training instances' features per class gives the styles to choose from at inference.

Losses: LSGAN (``lsgan_loss``) and discriminator feature matching (``feature_matching_loss``). No VGG
loss: no pretrained weights are available offline (the reference's ``no_vgg_loss`` mode); the training
step (``renderer_training.renderer_step``) adds an L1 term to the real frame in its place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.encoding import IN_CHANNELS, edges, encode
from pipeline.models.part_net import N_PARTS

LABEL_INPUT = IN_CHANNELS + N_PARTS  # one-hot labels + boundaries + part one-hot


def label_input(labels: torch.Tensor, ids: torch.Tensor, parts: torch.Tensor, with_parts: torch.Tensor) -> torch.Tensor:
    """[B, H, W] label ids, instance ids, part ids -> the renderer's label input [B, LABEL_INPUT, H, W]."""
    onehot = encode(labels, edges(ids))
    part = F.one_hot(parts.long(), N_PARTS + 1)[..., 1:].permute(0, 3, 1, 2).float()
    return torch.cat([onehot, part * with_parts[:, None, None, None].float()], 1)


def _norm(c: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(c, affine=False)


class ResBlock(nn.Module):
    """x + (reflect-pad 3x3 conv, IN, ReLU, reflect-pad 3x3 conv, IN)(x)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _head(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, cout, 7), _norm(cout), nn.ReLU(True))


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), _norm(cout), nn.ReLU(True))


UPSAMPLE = ("transpose", "resize")


def _up(cin: int, cout: int, upsample: str = "transpose") -> nn.Sequential:
    """2x upsampling: a stride-2 transposed conv (the reference), or nearest resize + 3x3 conv, which
    cannot leave the transposed conv's checkerboard pattern (uneven kernel overlap) in a short run."""
    if upsample == "transpose":
        conv: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)]
    elif upsample == "resize":
        conv = [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    else:
        raise ValueError(f"upsample must be one of {UPSAMPLE}, got {upsample!r}")
    return nn.Sequential(*conv, _norm(cout), nn.ReLU(True))


def _to_rgb(cin: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, 3, 7), nn.Tanh())


class GlobalGenerator(nn.Module):
    """[B, in_ch, H, W] -> [B, 3, H, W] in [-1, 1]; H and W divisible by 2**downs."""

    def __init__(self, in_ch: int, width: int = 16, downs: int = 3, blocks: int = 4, max_width: int = 1024,
                 upsample: str = "transpose"):
        super().__init__()
        layers: list[nn.Module] = [_head(in_ch, width)]
        c = width
        for _ in range(downs):
            layers.append(_down(c, min(2 * c, max_width)))
            c = min(2 * c, max_width)
        layers += [ResBlock(c) for _ in range(blocks)]
        for _ in range(downs):
            layers.append(_up(c, max(c // 2, width), upsample))
            c = max(c // 2, width)
        self.body = nn.Sequential(*layers)
        self.out_channels, self.upsample = c, upsample
        self.to_rgb = _to_rgb(c)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map before the RGB layer (what a local enhancer adds its features to)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_rgb(self.body(x))


class LocalEnhancer(nn.Module):
    """A full-resolution branch around ``global_gen``, which sees the input at half resolution."""

    def __init__(self, in_ch: int, global_gen: GlobalGenerator, width: int = 8, blocks: int = 3):
        super().__init__()
        self.global_gen = global_gen
        c = global_gen.out_channels
        self.down = nn.Sequential(_head(in_ch, width), _down(width, c))
        self.blocks = nn.Sequential(*[ResBlock(c) for _ in range(blocks)])
        self.up = _up(c, width, global_gen.upsample)
        self.to_rgb = _to_rgb(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        return self.to_rgb(self.up(self.blocks(self.down(x) + self.global_gen.features(half))))


class PatchDiscriminator(nn.Module):
    """PatchGAN: 4x4 convs, ``n_layers`` stride-2 then 2 stride-1, width doubling (capped); returns the
    output of every layer, the last being the [B, 1, h, w] real/fake map."""

    def __init__(self, in_ch: int, width: int = 64, n_layers: int = 3, max_width: int = 512):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(in_ch, width, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        c = width
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            nxt = min(2 * c, max_width)
            layers.append(nn.Sequential(nn.Conv2d(c, nxt, 4, stride, 2), _norm(nxt), nn.LeakyReLU(0.2, True)))
            c = nxt
        layers.append(nn.Conv2d(c, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """``num_d`` PatchGANs on the input at 1x, 1/2, 1/4 ...: a list (per scale) of lists of features."""

    def __init__(self, in_ch: int, num_d: int = 2, width: int = 64, n_layers: int = 3):
        super().__init__()
        self.nets = nn.ModuleList(PatchDiscriminator(in_ch, width, n_layers) for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(net(x))
        return out


def lsgan_loss(outputs: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Least-squares GAN loss over every discriminator's final map, averaged over discriminators."""
    target = 1.0 if real else 0.0
    return sum(F.mse_loss(feats[-1], torch.full_like(feats[-1], target)) for feats in outputs) / len(outputs)


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the discriminators' intermediate features on fake and on real (detached) inputs,
    averaged over layers and discriminators (the final real/fake maps are not matched)."""
    total, n = 0.0, 0
    for f_feats, r_feats in zip(fake, real, strict=True):
        for f, r in zip(f_feats[:-1], r_feats[:-1], strict=True):
            total = total + F.l1_loss(f, r.detach())
            n += 1
    return total / max(n, 1)


def instance_average(features: torch.Tensor, instance_ids: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] features, [B, H, W] instance ids -> each pixel gets the mean feature of its instance
    (its id within its image: stuff pixels of one class form one region)."""
    b, c, h, w = features.shape
    offset = torch.arange(b, device=features.device)[:, None] * (int(instance_ids.max()) + 1)
    keys = (instance_ids.reshape(b, -1).long() + offset).reshape(-1)
    uniq, inverse = torch.unique(keys, return_inverse=True)
    flat = features.permute(0, 2, 3, 1).reshape(-1, c)
    sums = torch.zeros(len(uniq), c, device=features.device, dtype=flat.dtype).index_add_(0, inverse, flat)
    counts = torch.bincount(inverse, minlength=len(uniq)).clamp_min(1).to(flat.dtype)
    means = sums / counts[:, None]
    return means[inverse].reshape(b, h, w, c).permute(0, 3, 1, 2)


class FeatureEncoder(nn.Module):
    """Image [B, 3, H, W] + instance ids [B, H, W] -> [B, out_ch, H, W], constant within each instance."""

    def __init__(self, out_ch: int = 3, width: int = 16, downs: int = 3, upsample: str = "transpose"):
        super().__init__()
        layers: list[nn.Module] = [_head(3, width)]
        c = width
        for _ in range(downs):
            layers.append(_down(c, 2 * c))
            c *= 2
        for _ in range(downs):
            layers.append(_up(c, c // 2, upsample))
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, out_ch, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, instance_ids: torch.Tensor) -> torch.Tensor:
        return instance_average(self.body(image), instance_ids)
