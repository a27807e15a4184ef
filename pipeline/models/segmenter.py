"""A compact U-Net for semantic segmentation: the downstream model the evaluate stage trains per arm.

Small on purpose: it must train three times inside the evaluate stage on two CPU cores, and all it has
to show is whether a training set with inserted objects teaches it persons and cars better. Each level
is two 3x3 conv + BatchNorm + ReLU; the decoder upsamples bilinearly and concatenates the skip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class Segmenter(nn.Module):
    """RGB [B, 3, H, W] in [0, 1] -> class logits [B, n_classes, H, W]; H and W divisible by 2**len(widths)."""

    def __init__(self, n_classes: int, widths: list[int]):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        chans = [3, *widths]
        self.encoder = nn.ModuleList(conv_block(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.bottleneck = conv_block(widths[-1], widths[-1])
        # Decoder level i takes the level below (widths[i]) plus the skip of level i (widths[i]).
        self.decoder = nn.ModuleList(conv_block(2 * widths[i], widths[max(i - 1, 0)])
                                     for i in reversed(range(len(widths))))
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for block, skip in zip(self.decoder, reversed(skips), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x)
