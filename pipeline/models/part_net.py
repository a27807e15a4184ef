"""Parts from shape, in the iPOSE spirit: infer an object's part map from its mask alone.

The object's mask is cropped to its box, padded to a square, resized to S x S and given x/y coordinate
channels and the class one-hot; a small U-Net predicts one logit per part id (``labels.PARTS``). Only
the parts of the object's own class may win, and only inside the mask: ``part_map`` returns part ids
on exactly the mask's pixels and 0 everywhere else. (iPOSE also attends to a few support examples of
the class; on the built-in dataset the shape alone carries the parts.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.labels import PARTS

N_PARTS = len(PARTS)  # part ids 1..N_PARTS; channel k is part id k + 1


def class_part_mask(class_names: list[str]) -> torch.Tensor:
    """[n_classes, N_PARTS] 1 where part id k + 1 belongs to the class (``person.head`` -> person)."""
    out = torch.zeros(len(class_names), N_PARTS)
    for name, pid in PARTS.items():
        owner = name.split(".")[0]
        if owner in class_names:
            out[class_names.index(owner), pid - 1] = 1
    return out


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(min(8, cout), cout), nn.ReLU(True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(min(8, cout), cout), nn.ReLU(True))


class PartNet(nn.Module):
    """Mask [B, 1, S, S] (0/1) + class index [B] -> part logits [B, N_PARTS, S, S]."""

    def __init__(self, class_names: list[str], widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.register_buffer("allowed", class_part_mask(class_names), persistent=False)
        n = len(class_names)
        self.class_names = list(class_names)
        chans = [1 + 2 + n, *widths]
        self.encoder = nn.ModuleList(_block(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.decoder = nn.ModuleList(_block(widths[i] + widths[i - 1], widths[i - 1])
                                     for i in reversed(range(1, len(widths))))
        self.head = nn.Conv2d(widths[0], N_PARTS, 1)
        self.n_classes = n

    def forward(self, mask: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        b, _, s, _ = mask.shape
        ramp = torch.linspace(-1, 1, s, device=mask.device)
        yy, xx = torch.meshgrid(ramp, ramp, indexing="ij")
        coords = torch.stack([xx, yy])[None].expand(b, -1, -1, -1)
        onehot = F.one_hot(cls, self.n_classes).float()[:, :, None, None].expand(-1, -1, s, s)
        x = torch.cat([mask.float(), coords, onehot], 1)
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        logits = self.head(x)
        # Parts of other classes can never win.
        return logits.masked_fill(self.allowed[cls][:, :, None, None] == 0, -1e4)

    @torch.no_grad()
    def part_map(self, mask: torch.Tensor, cls: torch.Tensor, everywhere: bool = False) -> torch.Tensor:
        """[B, S, S] part ids (uint8): the most likely allowed part on the mask's pixels, 0 elsewhere
        (``everywhere``: on every pixel, for callers that cut the map with a finer mask of their own)."""
        ids = (self(mask, cls).argmax(1) + 1).to(torch.uint8)
        return ids if everywhere else torch.where(mask[:, 0] > 0.5, ids, torch.zeros_like(ids))


def part_loss(logits: torch.Tensor, parts: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the mask's pixels: ``parts`` [B, S, S] ids 1..N_PARTS there (0 = unknown, ignored)."""
    target = (parts.long() - 1).masked_fill((mask[:, 0] < 0.5) | (parts == 0), -100)
    return F.cross_entropy(logits, target, ignore_index=-100)
