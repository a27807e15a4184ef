"""Parts from shape, in the iPOSE spirit: infer an object's part map from its mask alone.

The object's mask is cropped to its box, padded to a square, resized to S x S and given x/y coordinate
channels and the class one-hot; a small U-Net predicts one logit per part id (``labels.PARTS``). Only
the parts of the object's own class may win, and only inside the mask: ``part_map`` returns part ids
on exactly the mask's pixels and 0 everywhere else. (iPOSE also attends to a few support examples of
the class; on the built-in dataset the shape alone carries the parts.) ``infer_parts`` applies the net
to one object of a full frame, ``inferred_parts`` to every person and car of an instance map.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.labels import BY_ID, INSTANCE_FACTOR, PARTS, TARGET_CLASSES
from pipeline.masks import mask_bbox

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


# ------------------------------------------------------------------- applying it to an object
def square_window(mask: np.ndarray) -> tuple[int, tuple[slice, slice], tuple[slice, slice]]:
    """The object's box padded to a square around its centre: the side, and the matching windows of the
    image and of the square (the square may reach past the image border, those parts stay empty)."""
    x, y, w, h = mask_bbox(mask)
    side = max(w, h)
    x0, y0 = x + w // 2 - side // 2, y + h // 2 - side // 2
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + side, mask.shape[0]), min(x0 + side, mask.shape[1])
    return side, (slice(sy0, sy1), slice(sx0, sx1)), (slice(sy0 - y0, sy1 - y0), slice(sx0 - x0, sx1 - x0))


def object_square(mask: np.ndarray, parts: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The object's mask and part ids in its box padded to a square (centred), resized to ``size``."""
    side, image_window, square_window_ = square_window(mask)
    canvas_m = np.zeros((side, side), np.uint8)
    canvas_p = np.zeros((side, side), np.uint8)
    window = mask[image_window]
    canvas_m[square_window_] = window
    canvas_p[square_window_] = np.where(window, parts[image_window], 0)
    m = cv2.resize(canvas_m, (size, size), interpolation=cv2.INTER_NEAREST)
    p = cv2.resize(canvas_p, (size, size), interpolation=cv2.INTER_NEAREST)
    return m, np.where(m > 0, p, 0).astype(np.uint8)


def place_parts(square: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The inverse of ``object_square`` for a part map: [S, S] ids back onto the object's pixels."""
    side, image_window, square_window_ = square_window(mask)
    big = cv2.resize(square, (side, side), interpolation=cv2.INTER_NEAREST)
    out = np.zeros(mask.shape, np.uint8)
    out[image_window] = big[square_window_]
    return np.where(mask, out, 0).astype(np.uint8)


def infer_parts(net: PartNet, mask: np.ndarray, label_id: int, size: int) -> np.ndarray:
    """Part ids on the pixels of ``mask`` (an object of class ``label_id``) from the part network, which
    sees the object as a ``size`` x ``size`` square (``renderer.part_net.size``)."""
    device = next(net.parameters()).device
    square, _ = object_square(mask, np.zeros(mask.shape, np.uint8), size)
    cls = torch.tensor([net.class_names.index(BY_ID[label_id].name)], device=device)
    # Every pixel of the square gets a part: ``mask``, not the square's coarser copy, decides which pixels
    # are the object.
    with torch.no_grad():
        pred = net.part_map(torch.from_numpy(square)[None, None].float().to(device), cls, everywhere=True)[0]
    return place_parts(pred.cpu().numpy(), mask)


def inferred_parts(net: PartNet, ids: np.ndarray, size: int) -> np.ndarray:
    """A part map for an instance-id map: each person/car instance's parts from the part network."""
    parts = np.zeros(ids.shape, np.uint8)
    for value in np.unique(ids).tolist():
        if value >= INSTANCE_FACTOR and value // INSTANCE_FACTOR in TARGET_CLASSES:
            mask = ids == value
            parts[mask] = infer_parts(net, mask, value // INSTANCE_FACTOR, size)[mask]
    return parts
