"""The ground plane of a frame without a camera file, fitted from the frame's own persons and cars.

The scale rule of ``pipeline.rules`` reads two numbers of a camera: the horizon row and
the camera height. Real Cityscapes frames come with camera files, but a COCO image or a sample without
them does not; there the same two numbers are fitted from the objects the frame already shows. Inference
(the augment stage's scale rule) and evaluation (the placement figures) both take a frame's camera from
``frame_camera``.
"""

from __future__ import annotations

import numpy as np

from pipeline.labels import INSTANCE_FACTOR, MEAN_HEIGHT_M, TARGET_CLASSES
from pipeline.scene import Camera, Scene

MIN_FIT_OBJECTS = 3


def rows_inside_frame(mask: np.ndarray) -> tuple[int, int] | None:
    """The first and last row of an object's ``mask``; None when it is empty or touches the frame's border -
    cut off there, its height and contact row are not its own."""
    m = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0 or rows[0] == 0 or cols[0] == 0 or rows[-1] == m.shape[0] - 1 or cols[-1] == m.shape[1] - 1:
        return None
    return int(rows[0]), int(rows[-1])


def fit_ground_plane(objects: list[tuple[np.ndarray, int]]) -> Camera | None:
    """A camera for the scale rule fitted from a frame's own objects (frames without a camera file).

    Each object (mask, label id) gives one point of the ground-plane rule ``h / Hm = (v_b + 1 - v_h) / z``:
    a line in the contact row whose slope is ``1 / z`` and whose root is the horizon ``v_h``. The line is
    the Theil-Sen fit (median of the pairwise slopes, median intercept), so a few occluded or truncated
    objects - too short for their row - do not bend it. Objects touching the image border are left out
    (cut off). Returns a camera with that horizon and height (``horizon_row`` and ``height`` are all the
    rule reads), or None with fewer than ``MIN_FIT_OBJECTS`` usable objects or a line that does not rise
    toward the camera."""
    xs, ys = [], []
    for mask, label_id in objects:
        rows = rows_inside_frame(mask) if label_id in MEAN_HEIGHT_M else None
        if rows is None:
            continue
        top, bottom = rows
        xs.append(bottom + 1.0)
        ys.append((bottom - top + 1) / MEAN_HEIGHT_M[label_id])
    line = fit_line(np.array(xs), np.array(ys))
    if line is None:
        return None
    horizon, height = line
    return Camera(fx=1.0, fy=1.0, u0=0.0, v0=horizon, height=height)


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """The ground-plane rule ``y = (x - horizon) / height`` through points (contact row, height / mean
    height) by Theil-Sen (median pairwise slope, median intercept): (horizon, height), or None with fewer
    than ``MIN_FIT_OBJECTS`` points or a line that does not rise toward the camera."""
    if len(x) < MIN_FIT_OBJECTS:
        return None
    i, j = np.triu_indices(len(x), 1)
    distinct = x[i] != x[j]
    if not distinct.any():
        return None
    slope = float(np.median((y[j] - y[i])[distinct] / (x[j] - x[i])[distinct]))
    if slope <= 0:
        return None
    intercept = float(np.median(y - slope * x))
    return -intercept / slope, 1.0 / slope


def scene_objects(instance_ids: np.ndarray, exclude: int | None = None) -> list[tuple[np.ndarray, int]]:
    """The frame's persons and cars (not crowd regions) as (mask, label id), ``exclude`` left out."""
    out = []
    for value in np.unique(instance_ids).tolist():
        if value < INSTANCE_FACTOR or value == exclude or value // INSTANCE_FACTOR not in TARGET_CLASSES:
            continue
        out.append((instance_ids == value, value // INSTANCE_FACTOR))
    return out


def frame_camera(scene: Scene, exclude: int | None = None) -> Camera | None:
    """The frame's camera file, else a ground plane fitted to its objects (``exclude`` left out); None when
    neither exists (too few objects to fit)."""
    if scene.camera is not None:
        return scene.camera
    return fit_ground_plane(scene_objects(scene.instance_ids, exclude))
