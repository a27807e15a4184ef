"""Small facts about binary masks that several stages need: the tight box, the normalised square, the
COCO run-length encoding."""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as mask_utils


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x, y, w, h) of a non-empty binary mask. Raises ValueError on an empty one."""
    m = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        raise ValueError("empty mask: it has no box")
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0]) + 1, int(rows[-1] - rows[0]) + 1


def square_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A binary mask's tight box resized to ``size`` x ``size`` (area-averaged, kept where >= half):
    0/1 uint8. The model's and the crop bank's representation of a shape; an empty mask stays empty."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.zeros((size, size), np.uint8)
    x, y, w, h = mask_bbox(m)
    crop = m[y : y + h, x : x + w].astype(np.uint8) * 255
    return (cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) >= 128).astype(np.uint8)


def encode_rle(mask: np.ndarray) -> dict:
    """A binary mask as a COCO compressed RLE with a text ``counts`` (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle
