"""Put a retrieved crop's pixels into a scene: warp to the box, harmonise colour, blend.

Only the object's visible pixels change: whatever the blend, a pixel outside ``visible`` keeps its
value, so the emitted label (``visible``) is exactly the set of pixels that now show the object.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.labels import INSTANCE_FACTOR

# The colour gain of harmonisation is kept within this range: a crop from a dark street is brightened,
# not turned into a different object.
GAIN_RANGE = (0.6, 1.6)


def context_colour(image: np.ndarray, instance_ids: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Mean RGB of the ring of half a box around ``box`` (x, y, w, h), objects excluded - the same
    statistic the crop bank stores for each crop (``context_rgb``). The box's own mean without any."""
    x, y, w, h = box
    height, width = instance_ids.shape
    x0, y0 = max(0, x - w // 2), max(0, y - h // 2)
    x1, y1 = min(width, x + w + w // 2), min(height, y + h + h // 2)
    window = image[y0:y1, x0:x1]
    ring = instance_ids[y0:y1, x0:x1] < INSTANCE_FACTOR
    pixels = window[ring] if ring.any() else window.reshape(-1, 3)
    return pixels.reshape(-1, 3).mean(0) if pixels.size else np.full(3, 127.0)


def harmonized(rgb: np.ndarray, crop_context: np.ndarray, target_context: np.ndarray, strength: float) -> np.ndarray:
    """The crop's colours scaled per channel toward the light of the target context.

    Gain = (target context / crop context) ** strength, clipped to ``GAIN_RANGE``: the crop was lit like
    its own surroundings, and moves that far toward being lit like the new ones."""
    if strength == 0:
        return rgb
    gain = ((np.asarray(target_context, np.float32) + 1) / (np.asarray(crop_context, np.float32) + 1)) ** strength
    gain = np.clip(gain, *GAIN_RANGE)
    return np.clip(rgb.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def paste(image: np.ndarray, crop_rgb: np.ndarray, box: tuple[int, int, int, int], visible: np.ndarray,
          blend: str = "gaussian", feather: float = 1.0) -> np.ndarray:
    """``image`` with ``crop_rgb`` resized into ``box`` (x, y, w, h, inside the image), shown on ``visible``.

    blend: ``none`` copies the pixels; ``gaussian`` feathers the object's edge inward (sigma
    ``feather`` pixels); ``poisson`` solves for the crop's gradients with the scene's colours on the
    border (``cv2.seamlessClone``). Returns a new image."""
    x, y, w, h = box
    out = image.copy()
    vis = visible[y : y + h, x : x + w]
    if not vis.any():
        return out
    interp = cv2.INTER_AREA if w * h < crop_rgb.shape[0] * crop_rgb.shape[1] else cv2.INTER_LINEAR
    rgb = cv2.resize(np.ascontiguousarray(crop_rgb), (w, h), interpolation=interp)
    region = out[y : y + h, x : x + w]
    if blend == "none":
        region[vis] = rgb[vis]
    elif blend == "gaussian":
        alpha = cv2.GaussianBlur(vis.astype(np.float32), (0, 0), feather) if feather > 0 else vis.astype(np.float32)
        alpha = (alpha * vis)[..., None]
        mixed = alpha * rgb.astype(np.float32) + (1 - alpha) * region.astype(np.float32)
        region[vis] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)[vis]
    elif blend == "poisson":
        region[vis] = _poisson(region, rgb, vis)[vis]
    else:
        raise ValueError(f"blend must be none, gaussian or poisson, got {blend!r}")
    return out


def _poisson(region: np.ndarray, rgb: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """Seamless cloning of ``rgb`` into ``region`` on ``vis``, in a padded window (OpenCV needs the mask
    off the border) placed so that the clone lands exactly where it was cut from."""
    pad = 3
    dst = cv2.copyMakeBorder(region, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    mask = cv2.copyMakeBorder(vis.astype(np.uint8) * 255, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    bx, by, bw, bh = cv2.boundingRect(mask)
    # seamlessClone puts the mask's bounding box with its top-left at center - (w // 2, h // 2).
    center = (bx + bw // 2, by + bh // 2)
    cloned = cv2.seamlessClone(src, dst, mask, center, cv2.NORMAL_CLONE)
    return cloned[pad:-pad, pad:-pad]
