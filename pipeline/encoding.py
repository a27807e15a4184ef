"""How label maps become network inputs: one-hot channels plus an instance-edge channel.

Channels: the void ids 0-5 share channel 0; every other Cityscapes id from 6 (ground) to 33
(bicycle) has its own, so 29 label channels, then one edge channel (30 in all, as in the reference
design). Label maps are only ever resized with nearest neighbour: interpolating ids corrupts them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from pipeline.errors import ConfigError

LABEL_CHANNELS = 29
IN_CHANNELS = LABEL_CHANNELS + 1  # + edges

_LUT = np.zeros(256, dtype=np.int64)
_LUT[6:34] = np.arange(1, 29)
CHANNEL_OF_ID = torch.from_numpy(_LUT)
# Back from a channel to a label id (channel 0, the void ids, to 0 = unlabeled): for pictures of inputs.
ID_OF_CHANNEL = np.zeros(LABEL_CHANNELS, dtype=np.uint8)
ID_OF_CHANNEL[_LUT[6:34]] = np.arange(6, 34)


def channel_of(label_id: int) -> int:
    return int(_LUT[label_id])


# A frame whose aspect differs from a network's input size by more than this factor is refused: squashed
# inputs would teach boxes, shapes and appearance of the wrong proportions.
ASPECT_TOLERANCE = 1.1


def check_aspect(frame_hw: tuple[int, int], size: tuple[int, int], key: str, frame: str) -> None:
    """Refuse an input ``size`` (W, H; the params key ``key``) of another aspect than the frame's, in one
    line naming the key and a size that fits."""
    height, width = frame_hw
    w, h = size
    if abs(math.log((width / height) / (w / h))) > math.log(ASPECT_TOLERANCE):
        fit = max(8, round(w * height / width / 8) * 8)
        raise ConfigError(f"{key}: {w}x{h} would squash the frames ({width}x{height}, e.g. {frame}): use a size "
                          f"of their aspect, e.g. [{w}, {fit}]")


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label or instance map to ``size`` = (width, height) with nearest neighbour only."""
    if array.shape[1] == size[0] and array.shape[0] == size[1]:
        return array
    if array.dtype in (np.int32, np.int64, np.uint32):
        # cv2 resizes 32-bit ints via float; index explicitly to stay exact.
        ys = (np.arange(size[1]) * array.shape[0] / size[1]).astype(np.int64)
        xs = (np.arange(size[0]) * array.shape[1] / size[0]).astype(np.int64)
        return array[ys[:, None], xs[None, :]]
    return cv2.resize(array, size, interpolation=cv2.INTER_NEAREST)


def edges(instance_ids: torch.Tensor) -> torch.Tensor:
    """[B, H, W] instance ids -> bool edges: a pixel differs from one of its 4 neighbours (this also
    marks class boundaries, since stuff pixels hold their label id)."""
    out = torch.zeros_like(instance_ids, dtype=torch.bool)
    dy = instance_ids[:, 1:, :] != instance_ids[:, :-1, :]
    dx = instance_ids[:, :, 1:] != instance_ids[:, :, :-1]
    out[:, 1:, :] |= dy
    out[:, :-1, :] |= dy
    out[:, :, 1:] |= dx
    out[:, :, :-1] |= dx
    return out


def encode(labels: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """[B, H, W] label ids (uint8/long) + [B, H, W] edges -> [B, 30, H, W] float one-hot + edge."""
    channels = CHANNEL_OF_ID.to(labels.device)[labels.long()]
    # Scattered into one float tensor: one_hot's int64 [B, H, W, 29], its permute and the concatenation
    # cost about a tenth of a training step; this gives the same values in the same (NCHW) layout.
    out = torch.zeros(labels.shape[0], IN_CHANNELS, *labels.shape[1:], device=labels.device)
    out.scatter_(1, channels.unsqueeze(1), 1.0)
    out[:, LABEL_CHANNELS] = edges
    return out
