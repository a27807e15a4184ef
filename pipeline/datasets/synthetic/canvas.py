"""The codes objects are drawn with, and the fixed-point drawing primitives every canvas uses.

An object is drawn into its own small canvas of codes (``C``): each code maps to a label id (``CODE_LABEL``), a part
id (``CODE_PART``) and a colour slot of the object. Drawing is integer cv2 at ``_SHIFT`` bits of sub-pixel
precision, so the canvases are the same on every machine.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline import labels as lb

MIN_OBJECT_PX = 10  # persons and cars are at least this many rows tall

_ID = {name: lb.BY_NAME[name].id for name in (
    "road", "sidewalk", "parking", "building", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "car")}
ROAD, SIDEWALK, PARKING, BUILDING = _ID["road"], _ID["sidewalk"], _ID["parking"], _ID["building"]
POLE, LIGHT, SIGN, VEGETATION = _ID["pole"], _ID["traffic light"], _ID["traffic sign"], _ID["vegetation"]
TERRAIN, SKY, PERSON, CAR = _ID["terrain"], _ID["sky"], _ID["person"], _ID["car"]

# Codes drawn into an object's canvas: each maps to a label id, a part id and a colour slot of the object.
_CODES: tuple[tuple[str, int, str | None], ...] = (
    ("hair", PERSON, "person.head"),
    ("face", PERSON, "person.head"),
    ("shirt", PERSON, "person.torso"),
    ("bag", PERSON, "person.torso"),
    ("sleeve", PERSON, "person.arm"),
    ("forearm", PERSON, "person.arm"),
    ("hand", PERSON, "person.arm"),
    ("trousers", PERSON, "person.leg"),
    ("shoe", PERSON, "person.leg"),
    ("paint", CAR, "car.body"),
    ("trim", CAR, "car.body"),
    ("plate", CAR, "car.body"),
    ("glass", CAR, "car.window"),
    ("tyre", CAR, "car.wheel"),
    ("rim", CAR, "car.wheel"),
    ("taillight", CAR, "car.light"),
    ("headlight", CAR, "car.light"),
    ("pole", POLE, None),
    ("sign", SIGN, None),
    ("sign_inner", SIGN, None),
    ("light_box", LIGHT, None),
    ("lamp", LIGHT, None),
    ("trunk", VEGETATION, None),
    ("canopy", VEGETATION, None),
)
C = {name: i + 1 for i, (name, _, _) in enumerate(_CODES)}
N_CODES = len(_CODES) + 1
CODE_LABEL = np.array([0] + [lab for _, lab, _ in _CODES], dtype=np.uint8)
CODE_PART = np.array([0] + [lb.PARTS[p] if p else 0 for _, _, p in _CODES], dtype=np.uint8)


# ------------------------------------------------------------------------------------- drawing helpers

_SHIFT = 4
_ONE = 1 << _SHIFT


def windows(canvas_hw: tuple[int, int], y0: int, x0: int, frame_hw: tuple[int, int]):
    """Where a canvas of ``canvas_hw`` = (h, w) placed with its top-left at (``y0``, ``x0``) meets a frame of
    ``frame_hw``: (the frame's window, the canvas' window), each a pair of slices, or None when it lies
    wholly outside. Canvases may reach past any edge of the frame: what lies outside is cut off."""
    (h, w), (H, W) = canvas_hw, frame_hw
    ys, ye, xs, xe = max(0, y0), min(H, y0 + h), max(0, x0), min(W, x0 + w)
    if ys >= ye or xs >= xe:
        return None
    return (slice(ys, ye), slice(xs, xe)), (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))


def _fix(x: float, y: float) -> tuple[int, int]:
    """Continuous image coordinates -> cv2 fixed point (cv2 puts pixel centres on integers)."""
    return int(math.floor((x - 0.5) * _ONE + 0.5)), int(math.floor((y - 0.5) * _ONE + 0.5))


def _clamp_pt(x: float, y: float, lim: float = 60000.0) -> tuple[float, float]:
    return min(max(x, -lim), lim), min(max(y, -lim), lim)


def _poly(img: np.ndarray, pts, value: int) -> None:
    arr = np.array([_fix(*_clamp_pt(x, y)) for x, y in pts], dtype=np.int32)
    cv2.fillPoly(img, [arr], int(value), cv2.LINE_8, _SHIFT)


def _disc(img: np.ndarray, x: float, y: float, r: float, value: int) -> None:
    cv2.circle(img, _fix(x, y), max(1, int(r * _ONE + 0.5)), int(value), -1, cv2.LINE_8, _SHIFT)


def _ellipse(img: np.ndarray, x: float, y: float, rx: float, ry: float, value: int) -> None:
    axes = (max(1, int(rx * _ONE + 0.5)), max(1, int(ry * _ONE + 0.5)))
    cv2.ellipse(img, _fix(x, y), axes, 0, 0, 360, int(value), -1, cv2.LINE_8, _SHIFT)


def _rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
    _poly(img, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], value)


def _limb(img: np.ndarray, p: tuple[float, float], q: tuple[float, float], w0: float, w1: float,
          value: int) -> None:
    """A tapered segment from ``p`` (width ``w0``) to ``q`` (width ``w1``) with round ends."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    n = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / n, dx / n
    _poly(img, [(p[0] + nx * w0 / 2, p[1] + ny * w0 / 2), (q[0] + nx * w1 / 2, q[1] + ny * w1 / 2),
                (q[0] - nx * w1 / 2, q[1] - ny * w1 / 2), (p[0] - nx * w0 / 2, p[1] - ny * w0 / 2)], value)
    _disc(img, p[0], p[1], w0 / 2, value)
    _disc(img, q[0], q[1], w1 / 2, value)


def _from_angle(p: tuple[float, float], angle: float, length: float, out: float) -> tuple[float, float]:
    """Point ``length`` away from ``p``; ``angle`` from straight down, positive towards ``out`` (+1/-1)."""
    return p[0] + out * math.sin(angle) * length, p[1] + math.cos(angle) * length


def _exact_rows(img: np.ndarray, top_code: int, top_x: float, bottom_code: int, bottom_x: float) -> None:
    """Make sure the first and last canvas rows are covered (the silhouette spans exactly its rows)."""
    w = img.shape[1]
    if not img[0].any():
        img[0, min(w - 1, max(0, int(top_x)))] = top_code
    if not img[-1].any():
        img[-1, min(w - 1, max(0, int(bottom_x)))] = bottom_code
