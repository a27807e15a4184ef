"""The built-in dataset: procedural street scenes in Cityscapes format (synthetic-scenes.md).

``generate_scene(cfg, seed, frame)`` builds one frame from ``(seed, frame.split, frame.seq)`` alone:

1. a pinhole camera (Cityscapes intrinsics scaled to the image) over a flat ground plane, with a random
   height and pitch, so the horizon row ``v_h`` varies per scene;
2. the stuff layout in label ids: a road towards the vanishing point, per side a band of sidewalk /
   terrain / parking strips, building facades (vertical planes parallel to the road, with set-backs,
   gaps and hedges), an optional cross street, crosswalk and end-of-street building, sky above;
3. objects standing on the ground, each drawn in its own small canvas: street lamps, traffic signs and
   lights, trees, cars (rear / front / side views) and persons (articulated, front / rear / side views,
   several poses), composited far to near (painter's order by contact row) so nearer ones occlude;
4. instance ids (``label * 1000 + k``, ``k`` gapless per class in painter's order over the objects that
   stay visible), a part map (``labels.PARTS``) and the RGB image rendered from all of it.

Geometry: a ground point at lateral offset ``X`` and distance ``D`` projects to ``u = u0 + fx X / D``,
``v = v_h + fy z / D`` (``z`` = camera height); a point at height ``Y`` above it to
``v_h + fy (z - Y) / D``. Image row ``r`` covers ``[r, r + 1)``: an object whose lowest mask row is ``r``
stands at the bottom edge ``r + 1`` of that row, so its distance is ``fy z / (r + 1 - v_h)`` and it is
exactly ``round(Hm (r + 1 - v_h) / z)`` rows tall (head top to foot bottom, roof to tyre) - the
convention of ``pipeline.evaluation.placement``.

Each person/car ``Instance.meta`` holds ``height_m`` (the real height it was drawn with),
``visible_fraction`` (visible pixels / pixels it would have inside the image with nothing in front),
``view`` (``front`` | ``side`` | ``rear``), ``pose`` (persons: ``standing``, ``walking``, ``striding``,
``phone``, ``hands-on-hips``, ``carrying``; cars: ``driving``, ``parked``, ``parked-perpendicular``,
``crossing``), and also ``distance_m`` (ground distance of its contact row) and ``truncated`` (part of it
lies outside the image, left or right). Persons and cars are at least ``MIN_OBJECT_PX`` rows tall, have
their contact row inside the image (at most ``H - 3``, so the support band below them is visible) and
their head / roof inside it too.

Determinism: every random number comes from one ``np.random.Generator`` seeded with
``SeedSequence([seed, crc32(split), seq])`` (a non-negative ``seed``); per-pixel work uses only elementwise
IEEE arithmetic (no transcendental numpy functions), integer cv2 drawing at fixed-point coordinates and
OpenCV's bit-exact 8-bit resize and Gaussian blur, so the arrays do not depend on threads or CPU. (Scalar
geometry uses Python's ``math``, i.e. the platform libm; its results agree to the last bit on the usual
platforms.)
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline import labels as lb
from pipeline.config import SyntheticConfig
from pipeline.scene import Camera, FrameId, Scene

FRAME_NUMBER = 19  # the annotated frame of a Cityscapes snippet
MIN_OBJECT_PX = 10  # persons and cars are at least this many rows tall

# Cityscapes' own camera (2048 x 1024); focal lengths and u0 scale with the width, v0 with the height.
_CS_WIDTH, _CS_HEIGHT = 2048.0, 1024.0
_CS_FX, _CS_FY, _CS_U0, _CS_V0 = 2262.52, 2265.30, 1096.98, 513.137

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

PERSON_POSES = ("standing", "walking", "striding", "phone", "hands-on-hips", "carrying")


# --------------------------------------------------------------------------------------------- frames


def frame_ids(cfg: SyntheticConfig) -> list[FrameId]:
    """Every frame of the dataset: per split (in ``cfg.splits`` order) indices ``0..n-1``, cities in turn."""
    return [FrameId(split, cfg.cities[i % len(cfg.cities)], i, FRAME_NUMBER)
            for split, n in cfg.splits.items() for i in range(n)]


def scene_rng(seed: int, split: str, seq: int) -> np.random.Generator:
    """The generator of one frame: a function of ``(seed, split, seq)`` only (never Python's ``hash``)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(split.encode()), int(seq)]))


# ------------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _View:
    """Image size and the ground-plane projection (continuous coordinates, row ``r`` = ``[r, r + 1)``)."""

    W: int
    H: int
    fx: float
    fy: float
    u0: float
    z: float
    vh: float

    def u(self, X: float, D: float) -> float:
        return self.u0 + self.fx * X / D

    def v(self, Y: float, D: float) -> float:
        return self.vh + self.fy * (self.z - Y) / D

    def contact_row(self, D: float) -> int:
        """Row whose bottom edge is nearest to the ground line at distance ``D``."""
        return int(math.floor(self.v(0.0, D) + 0.5)) - 1

    def distance(self, row: int) -> float:
        """Distance of the ground under the bottom edge of ``row`` (``row + 1 > v_h``)."""
        return self.fy * self.z / (row + 1 - self.vh)

    def px_per_m(self, row: int) -> float:
        """Vertical pixels per metre of an upright object standing at ``row``."""
        return (row + 1 - self.vh) / self.z

    def min_row(self, height_m: float) -> int:
        """Smallest contact row at which an object ``height_m`` tall is at least ``MIN_OBJECT_PX`` rows."""
        return int(math.ceil(self.vh - 1 + MIN_OBJECT_PX * self.z / height_m))


def make_camera(rng: np.random.Generator, width: int, height: int) -> Camera:
    """Cityscapes intrinsics scaled to ``width x height``; height 1.2-1.8 m; pitch puts v_h at 36-53% of H."""
    s = width / _CS_WIDTH
    fx, fy, u0 = _CS_FX * s, _CS_FY * s, _CS_U0 * s
    v0 = _CS_V0 * height / _CS_HEIGHT
    z = float(rng.uniform(1.2, 1.8))
    vh = float(rng.uniform(0.36, 0.53)) * height
    pitch = math.atan((v0 - vh) / fy)
    return Camera(fx=fx, fy=fy, u0=u0, v0=v0, height=z, pitch=pitch, roll=0.0, yaw=0.0,
                  x=1.7, y=0.1, baseline=0.22)


# ---------------------------------------------------------------------------------------------- layout


@dataclass
class _Side:
    sign: int  # -1: left of the camera, +1: right
    edge: float  # distance of the road edge from the camera axis (m)
    strips: list[tuple[int, float]]  # (label, width) outwards from the road edge
    buildings: bool

    @property
    def out(self) -> float:
        """Distance of the corridor's outer bound (the nominal facade line)."""
        return self.edge + sum(w for _, w in self.strips)

    def strip(self, label: int) -> tuple[float, float] | None:
        t = self.edge
        for lab, w in self.strips:
            if lab == label:
                return t, t + w
            t += w
        return None

    def furniture_t(self) -> float:
        """Lateral distance where poles and trees stand: just inside the first non-parking strip."""
        t = self.edge
        for lab, w in self.strips:
            if lab != PARKING:
                return t + min(0.5, w / 3)
            t += w
        return self.out - 0.4


@dataclass
class _Layout:
    road_l: float  # left road edge X (< 0)
    road_r: float  # right road edge X (> 0)
    sides: tuple[_Side, _Side]
    lanes: list[tuple[float, int]]  # (centre X, +1 moving away = rear view, -1 oncoming = front view)
    lane_w: float
    two_way: bool
    cross: tuple[float, float] | None  # D range of a cross street
    crosswalk: tuple[float, float] | None  # D range of a zebra crossing
    end_wall: float | None  # distance of a building closing the street
    facades: list[dict] = field(default_factory=list)


_SIDE_KINDS = ("sidewalk", "parking-strip", "terrain", "parking-lot", "sidewalk-terrain", "verge")
_SIDE_P = (0.47, 0.14, 0.11, 0.1, 0.09, 0.09)


def _make_side(rng: np.random.Generator, sign: int, edge: float) -> _Side:
    kind = _SIDE_KINDS[int(rng.choice(len(_SIDE_KINDS), p=_SIDE_P))]
    u = rng.uniform
    strips = {
        "sidewalk": [(SIDEWALK, u(1.8, 5.0))],
        "parking-strip": [(PARKING, u(2.1, 2.5)), (SIDEWALK, u(1.8, 4.0))],
        "terrain": [(TERRAIN, u(2.5, 7.0))],
        "parking-lot": [(PARKING, u(5.8, 8.0)), (SIDEWALK, u(1.2, 2.5))],
        "sidewalk-terrain": [(SIDEWALK, u(1.6, 3.2)), (TERRAIN, u(1.5, 4.0))],
        "verge": [(TERRAIN, u(1.0, 2.5)), (SIDEWALK, u(1.8, 3.5))],
    }[kind]
    buildings = bool(rng.random() < (0.6 if kind == "terrain" else 0.9))
    return _Side(sign, edge, [(lab, float(w)) for lab, w in strips], buildings)


def _make_layout(rng: np.random.Generator, view: _View, crosswalk_prob: float) -> _Layout:
    width = float(rng.uniform(5.5, 15.0))
    n_lanes = int(min(4, max(1, round(width / 3.2))))
    lane_w = width / n_lanes
    two_way = n_lanes >= 2 and rng.random() < 0.75
    ego_choices = list(range(n_lanes // 2, n_lanes)) if two_way else list(range(n_lanes))
    ego = ego_choices[int(rng.integers(len(ego_choices)))]
    a = (ego + 0.5) * lane_w + float(rng.uniform(-0.4, 0.4))
    road_l, road_r = -a, width - a
    lanes = [(road_l + (i + 0.5) * lane_w, -1 if two_way and i < n_lanes // 2 else 1) for i in range(n_lanes)]
    sides = (_make_side(rng, -1, a), _make_side(rng, 1, width - a))
    d_bottom = view.distance(view.H - 1)
    cross = None
    if rng.random() < 0.3:
        d0 = float(rng.uniform(max(12.0, d_bottom + 6), 40.0))
        cross = (d0, d0 + float(rng.uniform(8.0, 14.0)))
    crosswalk = None
    if rng.random() < crosswalk_prob:
        length = float(rng.uniform(3.0, 4.5))
        if cross is not None:
            crosswalk = (cross[0] - 0.6 - length, cross[0] - 0.6)
        else:
            d0 = float(rng.uniform(max(7.0, d_bottom + 1.5), 25.0))
            crosswalk = (d0, d0 + length)
    end_wall = float(rng.uniform(90.0, 240.0)) if rng.random() < 0.5 else None
    return _Layout(road_l, road_r, sides, lanes, lane_w, two_way, cross, crosswalk, end_wall)


_FACADE_COLOURS = np.array([
    (196, 178, 150), (160, 158, 152), (150, 86, 64), (214, 208, 196), (96, 90, 86), (178, 150, 120),
    (120, 128, 140), (200, 190, 160), (140, 110, 90), (185, 185, 175),
], dtype=np.float32)


def _facade_plan(rng: np.random.Generator, lay: _Layout) -> list[dict]:
    """Facade, front-wall and hedge polygons in world units, one dict each (drawn far to near)."""
    plan: list[dict] = []
    d_max = lay.end_wall if lay.end_wall is not None else 260.0
    for side in lay.sides:
        d = 1.0
        while d < d_max:
            if lay.cross is not None and lay.cross[0] <= d < lay.cross[1]:
                d = lay.cross[1]
                continue
            length = float(rng.uniform(7.0, 32.0))
            d_end = min(d + length, d_max)
            if lay.cross is not None and d < lay.cross[0] < d_end:
                d_end = lay.cross[0]
            r = rng.random()
            if side.buildings:
                kind = "building" if r < 0.8 else ("gap" if r < 0.9 else "hedge")
            else:
                kind = "hedge" if r < 0.45 else ("gap" if r < 0.7 else "far")
            colour = _FACADE_COLOURS[int(rng.integers(len(_FACADE_COLOURS)))] * rng.uniform(0.85, 1.12, 3)
            common = {"sign": side.sign, "d0": d, "d1": d_end, "colour": colour.astype(np.float32),
                      "floor": float(rng.uniform(2.8, 3.6)), "bay": float(rng.uniform(2.4, 4.0)),
                      "win": float(rng.uniform(0.35, 0.6)), "win_h": float(rng.uniform(0.35, 0.6))}
            if kind == "building" or (kind in ("gap", "far") and rng.random() < 0.6):
                setback = 0.0 if kind == "building" and rng.random() < 0.6 else float(rng.uniform(0.5, 5.0))
                if kind != "building":
                    setback = float(rng.uniform(8.0, 30.0))
                plan.append({**common, "kind": "building", "t": side.out + setback,
                             "height": float(rng.uniform(5.0, 28.0))})
            elif kind == "hedge":
                plan.append({**common, "kind": "hedge", "t": side.out + float(rng.uniform(0.0, 1.0)),
                             "height": float(rng.uniform(1.2, 4.0)),
                             "jitter": rng.uniform(0.6, 1.4, 8).astype(np.float64)})
            d = d_end
    if lay.end_wall is not None:
        colour = _FACADE_COLOURS[int(rng.integers(len(_FACADE_COLOURS)))] * rng.uniform(0.85, 1.12, 3)
        plan.append({"kind": "end", "sign": 0, "d0": lay.end_wall, "d1": lay.end_wall,
                     "t0": -(lay.sides[0].out + 25.0), "t1": lay.sides[1].out + 25.0,
                     "height": float(rng.uniform(6.0, 22.0)), "colour": colour.astype(np.float32),
                     "floor": float(rng.uniform(2.8, 3.6)), "bay": float(rng.uniform(2.4, 4.0)),
                     "win": float(rng.uniform(0.35, 0.6)), "win_h": float(rng.uniform(0.35, 0.6))})
    return plan


# ------------------------------------------------------------------------------------- drawing helpers

_SHIFT = 4
_ONE = 1 << _SHIFT


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


# ------------------------------------------------------------------------------------------- objects


@dataclass
class _Obj:
    kind: str  # person | car | pole | sign | light | tree
    D: float
    X: float
    row: int  # contact row (street furniture may stand below the image)
    y0: int
    x0: int
    codes: np.ndarray  # canvas of codes (0 = empty)
    shade: np.ndarray  # float32, canvas shape
    colours: np.ndarray  # N_CODES x 3 float32
    label: int = 0  # PERSON / CAR for instances, 0 for street furniture
    meta: dict = field(default_factory=dict)
    index: int = 0  # 1-based among persons and cars
    full_px: int = 0


def _person_canvas(rng: np.random.Generator, h: int, frac: float, view: str, pose: str) -> tuple[np.ndarray, float]:
    """Codes of an articulated person exactly ``h`` rows tall; returns (canvas, centre column)."""
    u = float(h)
    w_c = int(0.78 * u) + 5
    cx = w_c // 2 + frac
    img = np.zeros((h, w_c), dtype=np.uint8)
    bulk = float(rng.uniform(0.88, 1.15))
    facing = 1 if rng.random() < 0.5 else -1
    long_sleeves = rng.random() < 0.55
    dress = view != "side" and rng.random() < 0.1
    bag = rng.random() < 0.2
    fore = C["sleeve"] if long_sleeves else C["forearm"]
    hr_y = 0.068 * u
    hr_x = (0.054 if view == "side" else 0.047) * u
    head_cy = hr_y - 0.5  # the head's top lies half a pixel above the canvas: row 0 is always covered
    sh_y, hip_y = 0.2 * u, 0.49 * u
    ankle_y = u - 0.035 * u
    bottom = u + 0.5
    la, lf = 0.165 * u, 0.15 * u
    w_ua, w_fa = 0.052 * u * bulk, 0.042 * u
    w_th, w_sh = 0.078 * u * bulk, 0.058 * u
    foot_x = cx

    if view == "side":
        f = facing
        stride = {"walking": 0.24, "striding": 0.34, "carrying": 0.2}.get(pose, float(rng.uniform(0.0, 0.06))) * u
        lift = {"walking": 0.02, "striding": 0.035, "carrying": 0.015}.get(pose, 0.0) * u
        swing = {"walking": 0.35, "striding": 0.5, "carrying": 0.3}.get(pose, 0.06)
        near_forward = rng.random() < 0.5
        hip = (cx - f * 0.005 * u, hip_y)

        def leg(forward: bool) -> None:
            ax = cx + (f if forward else -f) * stride / 2
            ay = ankle_y - (0.0 if forward else lift)
            knee = ((hip[0] + ax) / 2 + f * (0.012 if forward else 0.03) * u, (hip[1] + ay) / 2)
            _limb(img, hip, knee, w_th, w_sh * 1.1, C["trousers"])
            _limb(img, knee, (ax, ay), w_sh * 1.1, w_sh, C["trousers"])
            b = bottom - (0.0 if forward else lift)
            _poly(img, [(ax - f * 0.035 * u, ay - 0.015 * u), (ax + f * 0.11 * u, ay + 0.005 * u),
                        (ax + f * 0.11 * u, b), (ax - f * 0.035 * u, b)], C["shoe"])

        def arm(angle: float, bend: float, phone: bool) -> None:
            sh = (cx + f * 0.005 * u, sh_y)
            if phone:
                elbow = (sh[0] + f * 0.07 * u, sh_y + 0.12 * u)
                hand = (cx + f * 0.05 * u, 0.1 * u)
            else:
                elbow = _from_angle(sh, angle, la, f)
                hand = _from_angle(elbow, angle + bend, lf, f)
            _limb(img, sh, elbow, w_ua, w_fa * 1.05, C["sleeve"])
            _limb(img, elbow, hand, w_fa * 1.05, w_fa, fore)
            _disc(img, hand[0], hand[1], 0.026 * u, C["hand"])

        near_leg_fwd = near_forward
        arm_angles = (swing if not near_leg_fwd else -swing, -swing if not near_leg_fwd else swing)
        far_bend = 1.45 if pose == "carrying" else 0.25
        # far arm and far leg first, then torso and head, then the near leg and arm
        arm(arm_angles[0], far_bend, False)
        leg(not near_leg_fwd)
        if bag:
            _poly(img, [(cx - f * 0.05 * u, 0.2 * u), (cx - f * 0.135 * u * bulk, 0.22 * u),
                        (cx - f * 0.13 * u * bulk, 0.42 * u), (cx - f * 0.05 * u, 0.42 * u)], C["bag"])
        torso = [(-0.045, 0.165), (0.04, 0.165), (0.068, 0.26), (0.056, 0.5), (-0.06, 0.52), (-0.062, 0.28)]
        _poly(img, [(cx + f * dx * u * bulk, dy * u) for dx, dy in torso], C["shirt"])
        _limb(img, (cx, head_cy + 0.6 * hr_y), (cx + f * 0.005 * u, 0.18 * u), 0.045 * u, 0.05 * u, C["face"])
        _ellipse(img, cx - f * 0.006 * u, head_cy, hr_x, hr_y, C["hair"])
        _ellipse(img, cx + f * 0.014 * u, head_cy + 0.012 * u, hr_x * 0.78, hr_y * 0.8, C["face"])
        leg(near_leg_fwd)
        arm(arm_angles[1], 0.25, pose == "phone")
        foot_x = cx + (f if near_leg_fwd else -f) * stride / 2
    else:
        sw, hw = 0.112 * u * bulk, 0.083 * u * bulk
        spread = float(rng.uniform(0.0, 0.035)) * u if pose in ("standing", "phone", "hands-on-hips") else 0.01 * u
        lifted = (1 if rng.random() < 0.5 else -1) if pose in ("walking", "striding", "carrying") else 0
        lift = (0.035 if pose == "striding" else 0.022) * u
        for side in (-1, 1):
            hip = (cx + side * 0.045 * u * bulk, hip_y - 0.01 * u)
            ax = cx + side * (0.045 * u * bulk + spread)
            ay = ankle_y - (lift if side == lifted else 0.0)
            knee = ((hip[0] + ax) / 2 + side * 0.004 * u, (hip[1] + ay) / 2 - (0.01 * u if side == lifted else 0.0))
            _limb(img, hip, knee, w_th, w_sh * 1.1, C["trousers"])
            _limb(img, knee, (ax, ay), w_sh * 1.1, w_sh, C["trousers"])
            b = bottom - (lift if side == lifted else 0.0)
            _poly(img, [(ax - 0.032 * u, ay - 0.012 * u), (ax + 0.032 * u, ay - 0.012 * u),
                        (ax + 0.036 * u, b), (ax - 0.036 * u, b)], C["shoe"])
            if side != lifted:
                foot_x = ax
        if dress:
            torso = [(-0.85 * sw, 0.165 * u), (0.85 * sw, 0.165 * u), (sw, 0.2 * u), (hw, 0.45 * u),
                     (1.6 * hw, 0.7 * u), (-1.6 * hw, 0.7 * u), (-hw, 0.45 * u), (-sw, 0.2 * u)]
        else:
            torso = [(-0.85 * sw, 0.165 * u), (0.85 * sw, 0.165 * u), (sw, 0.2 * u), (1.05 * hw, 0.52 * u),
                     (-1.05 * hw, 0.52 * u), (-sw, 0.2 * u)]
        _poly(img, [(cx + dx, y) for dx, y in torso], C["shirt"])
        if bag and view == "rear":
            _rect(img, cx - 0.075 * u * bulk, 0.21 * u, cx + 0.075 * u * bulk, 0.43 * u, C["bag"])
        swing_side = 1 if rng.random() < 0.5 else -1
        for side in (-1, 1):
            sh = (cx + side * (sw - 0.022 * u), sh_y)
            if pose == "phone" and side == swing_side:
                elbow = (sh[0] + side * 0.05 * u, sh_y + 0.14 * u)
                hand = (cx + side * 0.06 * u, 0.1 * u)
            elif pose == "hands-on-hips":
                elbow = (sh[0] + side * 0.1 * u, sh_y + 0.13 * u)
                hand = (cx + side * 1.05 * hw, 0.45 * u)
            else:
                out = 0.09 if pose == "standing" else 0.05
                short = 0.85 if pose in ("walking", "striding") and side == swing_side else 1.0
                elbow = _from_angle(sh, out, la * short, side)
                hand = _from_angle(elbow, out * 0.4, lf * short, side)
                if pose == "carrying" and side == swing_side:
                    hand = (elbow[0] + side * 0.02 * u, elbow[1] + 0.06 * u)
            _limb(img, sh, elbow, w_ua, w_fa * 1.05, C["sleeve"])
            _limb(img, elbow, hand, w_fa * 1.05, w_fa, fore)
            _disc(img, hand[0], hand[1], 0.026 * u, C["hand"])
        _limb(img, (cx, head_cy + 0.6 * hr_y), (cx, 0.18 * u), 0.045 * u, 0.05 * u, C["face"])
        _ellipse(img, cx, head_cy, hr_x * 1.04, hr_y, C["hair"])
        if view == "front":
            _ellipse(img, cx, head_cy + 0.014 * u, hr_x * 0.86, hr_y * 0.82, C["face"])
    _exact_rows(img, C["hair"], cx, C["shoe"], foot_x)
    return img, cx


def _car_canvas(h: int, width_px: float, frac: float, view: str, facing: int) -> tuple[np.ndarray, float]:
    """Codes of a car exactly ``h`` rows tall, ``width_px`` wide (rear/front) or long (side)."""
    w = width_px
    span = w * (1.12 if view != "side" else 1.02)
    w_c = int(span) + 5
    cx = w_c // 2 + frac
    img = np.zeros((h, w_c), dtype=np.uint8)
    top, bottom = -0.5, h + 0.5

    def P(xn: float, yn: float) -> tuple[float, float]:  # noqa: N802 - normalised point
        return cx + xn * w, yn * h

    if view == "side":
        f = facing

        def Q(xn: float, yn: float) -> tuple[float, float]:  # noqa: N802
            return cx + f * xn * w, yn * h

        body = [Q(-0.5, 0.84), Q(-0.5, 0.5), Q(-0.47, 0.42), Q(-0.31, 0.38), Q(-0.215, 0.05),
                (Q(-0.19, 0)[0], top), (Q(0.07, 0)[0], top), Q(0.095, 0.05), Q(0.25, 0.37),
                Q(0.46, 0.43), Q(0.5, 0.52), Q(0.5, 0.84)]
        _poly(img, body, C["paint"])
        _poly(img, [Q(-0.28, 0.37), Q(-0.195, 0.08), Q(0.065, 0.08), Q(0.21, 0.36)], C["glass"])
        _poly(img, [Q(-0.065, 0.06), Q(-0.04, 0.06), Q(-0.04, 0.38), Q(-0.065, 0.38)], C["paint"])
        _poly(img, [Q(-0.5, 0.73), Q(0.5, 0.73), Q(0.5, 0.84), Q(-0.5, 0.84)], C["trim"])
        _poly(img, [Q(0.465, 0.46), Q(0.505, 0.47), Q(0.505, 0.55), Q(0.465, 0.55)], C["headlight"])
        _poly(img, [Q(-0.505, 0.47), Q(-0.465, 0.47), Q(-0.465, 0.57), Q(-0.505, 0.57)], C["taillight"])
        r = 0.2 * h
        for xn in (-0.32, 0.31):
            wx = cx + f * xn * w
            _disc(img, wx, bottom - r, r, C["tyre"])
            _disc(img, wx, bottom - r, r * 0.55, C["rim"])
        _exact_rows(img, C["paint"], cx, C["tyre"], cx + f * 0.31 * w)
        return img, cx

    _poly(img, [(P(-0.3, 0)[0], top), (P(0.3, 0)[0], top), P(0.345, 0.05), P(0.44, 0.42), P(-0.44, 0.42),
                P(-0.345, 0.05)], C["paint"])
    _poly(img, [P(-0.29, 0.08), P(0.29, 0.08), P(0.385, 0.38), P(-0.385, 0.38)], C["glass"])
    _poly(img, [P(-0.47, 0.4), P(0.47, 0.4), P(0.5, 0.47), P(0.5, 0.86), P(-0.5, 0.86), P(-0.5, 0.47)], C["paint"])
    for s in (-1, 1):
        _poly(img, [P(s * 0.46, 0.4), P(s * 0.555, 0.38), P(s * 0.555, 0.45), P(s * 0.47, 0.46)], C["paint"])
    _poly(img, [P(-0.5, 0.75), P(0.5, 0.75), P(0.49, 0.88), P(-0.49, 0.88)], C["trim"])
    for s in (-1, 1):
        xa, xb = sorted((cx + s * 0.3 * w, cx + s * 0.455 * w))
        _rect(img, xa, 0.78 * h, xb, bottom, C["tyre"])
    if view == "rear":
        for s in (-1, 1):
            x0, x1 = sorted((P(s * 0.34, 0)[0], P(s * 0.485, 0)[0]))
            _rect(img, x0, 0.48 * h, x1, 0.59 * h, C["taillight"])
        _rect(img, *P(-0.1, 0.61), *P(0.1, 0.7), C["plate"])
    else:
        for s in (-1, 1):
            x0, x1 = sorted((P(s * 0.3, 0)[0], P(s * 0.47, 0)[0]))
            _rect(img, x0, 0.5 * h, x1, 0.585 * h, C["headlight"])
        _rect(img, *P(-0.2, 0.54), *P(0.2, 0.68), C["trim"])
        _rect(img, *P(-0.1, 0.7), *P(0.1, 0.78), C["plate"])
    _exact_rows(img, C["paint"], cx, C["tyre"], cx + 0.38 * w)
    return img, cx


def _shade_canvas(codes: np.ndarray, cx: float, light: float, top: float, bottom: float) -> np.ndarray:
    """Separable shading: a horizontal gradient towards the light side and a vertical one."""
    h, w = codes.shape
    half = max(1.0, w / 3.0)
    sx = 1.0 + light * np.clip((np.arange(w, dtype=np.float32) + 0.5 - cx) / half, -1.0, 1.0)
    sy = np.linspace(top, bottom, h, dtype=np.float32) if h > 1 else np.full(1, top, np.float32)
    return (sy[:, None] * sx[None, :]).astype(np.float32)


# --------------------------------------------------------------------------------------------- colours

_SKIN = np.array([(236, 196, 170), (214, 168, 130), (180, 130, 95), (140, 95, 65), (96, 64, 44)], np.float32)
_HAIR = np.array([(30, 24, 20), (70, 48, 30), (120, 86, 50), (200, 170, 110), (150, 150, 150)], np.float32)
_TROUSERS = np.array([(50, 70, 110), (30, 30, 35), (90, 90, 95), (180, 160, 120), (70, 60, 50),
                      (110, 40, 40)], np.float32)
_PAINT = np.array([(225, 225, 228), (25, 25, 28), (160, 163, 168), (95, 98, 102), (150, 20, 25),
                   (30, 50, 120), (20, 30, 60), (40, 80, 50), (220, 180, 40), (120, 70, 40)], np.float32)
_PAINT_P = np.array([0.2, 0.18, 0.16, 0.12, 0.09, 0.08, 0.06, 0.05, 0.03, 0.03])


def _vivid(rng: np.random.Generator) -> np.ndarray:
    """A random clothing colour: random hue, varied saturation and value (no trig, no colour library)."""
    base = rng.uniform(0.0, 1.0, 3)
    sat = rng.uniform(0.2, 0.9)
    val = rng.uniform(40.0, 230.0)
    grey = base.mean()
    c = grey + (base - grey) * (1.0 + 2.5 * sat)
    c = np.clip(c - c.min() + (1.0 - sat) * 0.3, 0.0, None)
    return (val * c / max(1e-6, c.max())).astype(np.float32)


def _jit(rng: np.random.Generator, colour, amount: float = 0.12) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) * rng.uniform(1 - amount, 1 + amount, 3), 0, 255).astype(np.float32)


def _person_colours(rng: np.random.Generator) -> np.ndarray:
    pal = np.zeros((N_CODES, 3), np.float32)
    skin = _jit(rng, _SKIN[int(rng.integers(len(_SKIN)))], 0.06)
    shirt = _vivid(rng)
    pal[C["hair"]] = _jit(rng, _HAIR[int(rng.integers(len(_HAIR)))], 0.1)
    pal[C["face"]] = skin
    pal[C["shirt"]] = shirt
    pal[C["bag"]] = _vivid(rng) * 0.7
    pal[C["sleeve"]] = shirt * 0.93
    pal[C["forearm"]] = skin * 0.97
    pal[C["hand"]] = skin
    pal[C["trousers"]] = _jit(rng, _TROUSERS[int(rng.integers(len(_TROUSERS)))]) if rng.random() < 0.8 \
        else _vivid(rng)
    pal[C["shoe"]] = _jit(rng, (40, 36, 34), 0.3) if rng.random() < 0.7 else _jit(rng, (220, 220, 220), 0.05)
    return pal


def _car_colours(rng: np.random.Generator) -> np.ndarray:
    pal = np.zeros((N_CODES, 3), np.float32)
    paint = _jit(rng, _PAINT[int(rng.choice(len(_PAINT), p=_PAINT_P))], 0.08)
    pal[C["paint"]] = paint
    pal[C["trim"]] = _jit(rng, (38, 38, 40), 0.2)
    pal[C["plate"]] = _jit(rng, (225, 225, 215), 0.04)
    pal[C["glass"]] = _jit(rng, (45, 58, 72), 0.2)
    pal[C["tyre"]] = _jit(rng, (22, 22, 24), 0.2)
    pal[C["rim"]] = _jit(rng, (130, 132, 136), 0.2)
    pal[C["taillight"]] = _jit(rng, (190, 25, 30), 0.1)
    pal[C["headlight"]] = _jit(rng, (235, 232, 210), 0.05)
    return pal


def _furniture_colours(rng: np.random.Generator) -> np.ndarray:
    pal = np.zeros((N_CODES, 3), np.float32)
    pal[C["pole"]] = _jit(rng, (128, 128, 126) if rng.random() < 0.7 else (60, 80, 70), 0.15)
    pal[C["sign"]] = [(200, 30, 30), (30, 70, 170), (230, 230, 230), (235, 190, 20)][int(rng.integers(4))]
    pal[C["sign_inner"]] = [(240, 240, 240), (30, 30, 30), (200, 30, 30)][int(rng.integers(3))]
    pal[C["light_box"]] = _jit(rng, (40, 40, 38), 0.2)
    pal[C["lamp"]] = [(230, 40, 30), (250, 190, 30), (40, 220, 90)][int(rng.integers(3))]
    pal[C["trunk"]] = _jit(rng, (85, 65, 45), 0.15)
    pal[C["canopy"]] = _jit(rng, (70, 110, 40), 0.2)
    return pal


# ------------------------------------------------------------------------------------------- the scene


class _Builder:
    """Everything one frame needs while it is being built (one instance per ``generate_scene`` call)."""

    def __init__(self, cfg: SyntheticConfig, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.rng = rng
        self.W, self.H = int(cfg.width), int(cfg.height)
        self.camera = make_camera(rng, self.W, self.H)
        cam = self.camera
        self.view = _View(self.W, self.H, cam.fx, cam.fy, cam.u0, cam.height, cam.horizon_row)
        self.lay = _make_layout(rng, self.view, float(cfg.crosswalk_prob))
        self.objects: list[_Obj] = []
        self.footprints: list[tuple[float, float, float, float]] = []
        self.light = 0.1 if rng.random() < 0.5 else -0.1  # which side objects are lit from

    # ---------------------------------------------------------------- stuff layout

    def layout(self) -> None:
        v, H, W = self.view, self.H, self.W
        lab = np.full((H, W), SKY, dtype=np.uint8)
        r0 = max(0, int(math.floor(v.vh - 0.5)) + 1)  # first row whose centre lies below the horizon
        self.r0 = r0
        vc = np.arange(r0, H, dtype=np.float64) + 0.5
        self.D_row = (v.fy * v.z / (vc - v.vh)).astype(np.float32)  # ground distance of each row below r0
        uc = (np.arange(W, dtype=np.float64) + 0.5 - v.u0).astype(np.float32)
        self.X = uc[None, :] * (self.D_row[:, None] / np.float32(v.fx))  # lateral offset of each ground pixel
        ground = np.full(self.X.shape, ROAD, dtype=np.uint8)
        for side in self.lay.sides:
            t = self.X * side.sign
            pos = side.edge
            for label, width in side.strips:
                ground[(t >= pos) & (t < pos + width)] = label
                pos += width
            ground[t >= pos] = SIDEWALK if side.buildings else TERRAIN
        if self.lay.cross is not None:
            rows = (self.D_row >= self.lay.cross[0]) & (self.D_row < self.lay.cross[1])
            ground[rows] = ROAD
        lab[r0:] = ground
        fac = np.zeros((H, W), dtype=np.uint8)
        self.facades = [{}]  # facade id 0: none
        polys = []
        for item in _facade_plan(self.rng, self.lay):
            polys.extend(self._facade_polys(item))
        polys.sort(key=lambda p: -p[0])  # far to near
        for _, label, pts, info in polys:
            if len(self.facades) >= 255:
                break
            fid = len(self.facades)
            self.facades.append(info)
            arr = [np.array([_fix(*_clamp_pt(x, y)) for x, y in pts], dtype=np.int32)]
            cv2.fillPoly(lab, arr, int(label), cv2.LINE_8, _SHIFT)
            cv2.fillPoly(fac, arr, fid, cv2.LINE_8, _SHIFT)
        self.lab = lab
        self.fac = fac
        self.stuff = lab.copy()

    def _facade_polys(self, item: dict) -> list:
        v = self.view
        d0, d1 = max(1.0, item["d0"]), max(1.0, item["d1"])
        out = []
        if item["kind"] == "end":
            t0, t1, hgt = item["t0"], item["t1"], item["height"]
            pts = [(v.u(t0, d0), v.v(0, d0)), (v.u(t0, d0), v.v(hgt, d0)), (v.u(t1, d0), v.v(hgt, d0)),
                   (v.u(t1, d0), v.v(0, d0))]
            out.append((d0, BUILDING, pts, {**item, "type": "wall", "D": d0, "shade": 0.92}))
            return out
        s, t, hgt = item["sign"], item["t"], item["height"]
        X = s * t
        if item["kind"] == "hedge":
            n = len(item["jitter"])
            ds = [d0 + (d1 - d0) * i / (n - 1) for i in range(n)]
            top = [(v.u(X, d), v.v(hgt * j, d)) for d, j in zip(ds, item["jitter"], strict=True)]
            pts = [(v.u(X, d0), v.v(0, d0))] + top + [(v.u(X, d1), v.v(0, d1))]
            out.append((d0, VEGETATION, pts, {**item, "type": "hedge", "X": X, "shade": 1.0}))
            return out
        lit = 1.0 if (s < 0) == (self.light > 0) else 0.8
        pts = [(v.u(X, d0), v.v(0, d0)), (v.u(X, d0), v.v(hgt, d0)), (v.u(X, d1), v.v(hgt, d1)),
               (v.u(X, d1), v.v(0, d1))]
        out.append((d0, BUILDING, pts, {**item, "type": "facade", "X": X, "shade": lit}))
        X2 = s * (t + 25.0)
        wall = [(v.u(X, d0), v.v(0, d0)), (v.u(X, d0), v.v(hgt, d0)), (v.u(X2, d0), v.v(hgt, d0)),
                (v.u(X2, d0), v.v(0, d0))]
        # the front wall (facing the camera) sits at the same distance: draw it before the facade
        out.insert(0, (d0 + 1e-6, BUILDING, wall, {**item, "type": "wall", "D": d0, "shade": 0.7 + 0.2 * lit}))
        return out

    # ---------------------------------------------------------------- placement helpers

    def _free(self, box: tuple[float, float, float, float], margin: float = 0.25) -> bool:
        x0, x1, d0, d1 = box
        return all(x1 + margin <= a0 or b1 + margin <= x0 or d1 + margin <= c0 or e1 + margin <= d0
                   for a0, b1, c0, e1 in self.footprints)

    def _row_sample(self, height_m: float, power: float) -> int | None:
        lo, hi = self.view.min_row(height_m), self.H - 3
        lo = max(lo, int(math.floor(self.view.vh)) + 1)
        if lo > hi:
            return None
        return lo + int((hi - lo + 1) * self.rng.random() ** power)

    def _fits_top(self, row: int, h: int) -> bool:
        return row - h + 1 >= 0

    def _add(self, obj: _Obj, box: tuple[float, float, float, float] | None) -> None:
        self.objects.append(obj)
        if box is not None:
            self.footprints.append(box)

    # ---------------------------------------------------------------- street furniture

    def furniture(self) -> None:
        rng, lay = self.rng, self.lay
        for side in lay.sides:
            t = side.furniture_t()
            if rng.random() < 0.6:  # street lamps
                spacing = float(rng.uniform(18.0, 35.0))
                d = float(rng.uniform(3.0, 3.0 + spacing))
                while d < 90.0:
                    self._pole(side.sign * t, d, "lamp", side.sign)
                    d += spacing * float(rng.uniform(0.85, 1.15))
            if rng.random() < 0.45:  # a row of trees
                spacing = float(rng.uniform(7.0, 15.0))
                tt = t + 0.3
                if side.strip(TERRAIN) is not None and rng.random() < 0.6:
                    a, b = side.strip(TERRAIN)
                    tt = (a + b) / 2
                d = float(rng.uniform(6.0, 6.0 + spacing))
                while d < 80.0:
                    self._tree(side.sign * tt, d)
                    d += spacing * float(rng.uniform(0.8, 1.2))
            for _ in range(int(rng.integers(0, 3))):
                self._pole(side.sign * (t + 0.1), float(rng.uniform(5.0, 50.0)), "sign", side.sign)
        if lay.crosswalk is not None or lay.cross is not None:
            d = lay.crosswalk[0] - 0.5 if lay.crosswalk is not None else lay.cross[0] - 1.0
            for side in lay.sides:
                if rng.random() < 0.7:
                    self._pole(side.sign * (side.furniture_t() + 0.1), d, "light", side.sign)

    def _window(self, y0: int, x0: int, h: int, w: int) -> tuple[int, int, int, int] | None:
        """The part of an object's box inside the image: (top, left, rows, cols), or None."""
        ys, ye = max(0, y0), min(self.H, y0 + h)
        xs, xe = max(0, x0), min(self.W, x0 + w)
        if ys >= ye or xs >= xe:
            return None
        return ys, xs, ye - ys, xe - xs

    def _pole(self, X: float, D: float, kind: str, sign: int) -> None:
        """A street lamp, traffic sign or traffic light on its pole (drawn only where it is in the image)."""
        rng, v = self.rng, self.view
        box = (X - 0.15, X + 0.15, D - 0.15, D + 0.15)
        if D < 2.5 or not self._free(box, 0.4):
            return
        row = v.contact_row(D)
        D = v.distance(row)
        k = v.px_per_m(row)
        height = {"lamp": rng.uniform(5.5, 8.0), "sign": rng.uniform(2.3, 3.2), "light": rng.uniform(2.8, 4.2)}[kind]
        arm = float(rng.uniform(1.0, 1.8)) if kind == "lamp" else 0.0
        plate = float(rng.uniform(0.28, 0.42)) if kind == "sign" else 0.0
        extra = max(arm + 0.4, plate + 0.1, 0.35 if kind == "light" else 0.0)
        pw = max(1.0, float(rng.uniform(0.12, 0.2)) * k)
        shape, lamp = int(rng.integers(3)), int(rng.integers(3))
        colours = _furniture_colours(rng)
        h = int(round((height + plate) * k))
        uc = v.u(X, D)
        w_c = int(2 * (extra * k + 3)) + 4
        win = self._window(row - h + 1, int(math.floor(uc)) - w_c // 2, h, w_c)
        if h < 3 or win is None:
            return
        ys, xs, hh, ww = win
        oy = row - h + 1 - ys  # object row 0 in canvas coordinates
        cx = uc - xs
        img = np.zeros((hh, ww), np.uint8)
        top = oy + plate * k
        _rect(img, cx - pw / 2, top, cx + pw / 2, oy + h + 0.5, C["pole"])
        if kind == "lamp":
            d = -sign  # the arm reaches over the road
            _limb(img, (cx, top + 0.2 * k), (cx + d * arm * k, top + 0.05 * k), max(1.0, 0.09 * k),
                  max(1.0, 0.07 * k), C["pole"])
            _rect(img, cx + d * arm * k - 0.25 * k, top, cx + d * arm * k + 0.25 * k, top + 0.12 * k, C["pole"])
        elif kind == "sign":
            r = plate * k
            if shape == 0:
                _disc(img, cx, top, r, C["sign"])
                _disc(img, cx, top, r * 0.72, C["sign_inner"])
            elif shape == 1:
                _poly(img, [(cx - r, top + 0.8 * r), (cx + r, top + 0.8 * r), (cx, top - r)], C["sign"])
                _poly(img, [(cx - 0.6 * r, top + 0.55 * r), (cx + 0.6 * r, top + 0.55 * r), (cx, top - 0.45 * r)],
                      C["sign_inner"])
            else:
                _rect(img, cx - r, top - 0.7 * r, cx + r, top + 0.7 * r, C["sign"])
                _rect(img, cx - 0.8 * r, top - 0.5 * r, cx + 0.8 * r, top + 0.5 * r, C["sign_inner"])
        else:
            bw, bh = 0.32 * k, 0.9 * k
            _rect(img, cx - bw / 2, top - 0.5, cx + bw / 2, top + bh, C["light_box"])
            _disc(img, cx, top + bh * (0.2 + 0.3 * lamp), bw * 0.3, C["lamp"])
        shade = _shade_canvas(img, cx, 2 * self.light, 1.0, 1.0)
        self._add(_Obj(kind, D, X, row, ys, xs, img, shade, colours), box)

    def _tree(self, X: float, D: float) -> None:
        """A tree: a trunk and a canopy of a few overlapping ellipses."""
        rng, v = self.rng, self.view
        box = (X - 0.3, X + 0.3, D - 0.3, D + 0.3)
        if D < 5.0 or not self._free(box, 0.5):
            return
        row = v.contact_row(D)
        D = v.distance(row)
        k = v.px_per_m(row)
        radius = float(rng.uniform(1.5, 3.0))
        crown_h = float(rng.uniform(max(3.5, 1.1 * radius + 2.3), 7.5))  # the canopy clears 2.3 m
        tw = max(1.0, float(rng.uniform(0.22, 0.4)) * k)
        blobs = [(rng.uniform(-0.5, 0.5), rng.uniform(-0.4, 0.3), rng.uniform(0.55, 0.9), rng.uniform(0.5, 0.8))
                 for _ in range(int(rng.integers(3, 6)))]
        colours = _furniture_colours(rng)
        h = int(round((crown_h + radius * 1.25) * k))
        w_c = int(2 * (radius * 1.5 * k + 3)) + 4
        uc = v.u(X, D)
        win = self._window(row - h + 1, int(math.floor(uc)) - w_c // 2, h, w_c)
        if h < 3 or win is None:
            return
        ys, xs, hh, ww = win
        oy = row - h + 1 - ys
        cx = uc - xs
        img = np.zeros((hh, ww), np.uint8)
        cy = oy + h - crown_h * k
        _rect(img, cx - tw / 2, cy, cx + tw / 2, oy + h + 0.5, C["trunk"])
        for ox, oyb, rx, ry in blobs:
            _ellipse(img, cx + ox * radius * k, cy + oyb * radius * k, rx * radius * k, ry * radius * k, C["canopy"])
        shade = _shade_canvas(img, cx, 2 * self.light, 1.08, 0.85)
        self._add(_Obj("tree", D, X, row, ys, xs, img, shade, colours), box)

    # ---------------------------------------------------------------- cars

    def cars(self, n: int) -> None:
        lay = self.lay
        modes = ["lane", "parked"]
        weights = [0.5, 0.3]
        if any(s.strips[0][0] == PARKING and s.strips[0][1] < 3 for s in lay.sides):
            modes.append("strip")
            weights.append(0.25)
        if any(s.strips[0][0] == PARKING and s.strips[0][1] >= 5.5 for s in lay.sides):
            modes.append("lot")
            weights.append(0.3)
        if lay.cross is not None:
            modes.append("cross")
            weights.append(0.15)
        p = np.array(weights) / sum(weights)
        for _ in range(n):
            for _attempt in range(25):
                if self._try_car(modes[int(self.rng.choice(len(modes), p=p))]):
                    break

    def _try_car(self, mode: str) -> bool:
        rng, v, lay = self.rng, self.view, self.lay
        hm = float(rng.uniform(1.4, 1.7))
        wm = float(rng.uniform(1.7, 1.95))
        lm = float(rng.uniform(3.9, 4.8))
        facing = 1 if rng.random() < 0.5 else -1
        if mode == "cross":
            d = float(rng.uniform(lay.cross[0] + 1.5, max(lay.cross[0] + 1.6, lay.cross[1] - wm - 0.5)))
            row = v.contact_row(d)
        else:
            row = self._row_sample(hm, 1.8)
            if row is None:
                return False
        if row > self.H - 3 or row < v.min_row(hm):
            return False
        D = v.distance(row)
        if mode == "lane":
            xc, direction = lay.lanes[int(rng.integers(len(lay.lanes)))]
            X = xc + float(rng.uniform(-0.3, 0.3))
            view = "rear" if direction > 0 else "front"
        elif mode == "parked":
            side = lay.sides[int(rng.integers(2))]
            X = side.sign * (side.edge - wm / 2 - float(rng.uniform(0.15, 0.35)))
            oncoming_side = side.sign < 0 and lay.two_way
            view = ("front" if rng.random() < 0.75 else "rear") if oncoming_side else \
                ("rear" if rng.random() < 0.8 else "front")
        elif mode == "strip":
            cands = [s for s in lay.sides if s.strips[0][0] == PARKING and s.strips[0][1] < 3]
            side = cands[int(rng.integers(len(cands)))]
            X = side.sign * (side.edge + side.strips[0][1] / 2 + float(rng.uniform(-0.1, 0.1)))
            view = "rear" if rng.random() < 0.6 else "front"
        elif mode == "lot":
            cands = [s for s in lay.sides if s.strips[0][0] == PARKING and s.strips[0][1] >= 5.5]
            side = cands[int(rng.integers(len(cands)))]
            lo, hi = side.edge + lm / 2 + 0.3, side.edge + side.strips[0][1] - lm / 2 - 0.3
            X = side.sign * float(rng.uniform(lo, max(lo, hi)))
            view = "side"
        else:  # crossing the main road in the cross street
            X = float(rng.uniform(lay.road_l - 4.0, lay.road_r + 4.0))
            view = "side"
        if view == "side":
            box = (X - lm / 2, X + lm / 2, D, D + wm)
            along = lm
        else:
            box = (X - wm / 2, X + wm / 2, D, D + lm)
            along = wm
        if mode in ("lane", "parked", "strip") and not (lay.road_l - 2.6 <= box[0] and box[1] <= lay.road_r + 2.6):
            return False
        h = int(round(hm * v.px_per_m(row)))
        if h < MIN_OBJECT_PX or not self._fits_top(row, h) or not self._free(box, 0.6):
            return False
        uc = v.u(X, D)
        width_px = along * v.fx / D
        if not 0 <= uc < self.W or min(uc + width_px / 2, self.W) - max(uc - width_px / 2, 0) < 0.5 * width_px:
            return False
        below = self.stuff[min(row + 1, self.H - 1), int(uc)]
        if below not in lb.SUPPORT[CAR]:
            return False
        codes, cx = _car_canvas(h, width_px, uc - math.floor(uc), view, facing)
        x0 = int(math.floor(uc)) - codes.shape[1] // 2
        shade = _shade_canvas(codes, cx, self.light, 1.12, 0.82)
        meta = {"height_m": hm, "visible_fraction": 0.0, "view": view,
                "pose": {"lane": "driving", "cross": "crossing", "lot": "parked-perpendicular"}.get(mode, "parked")}
        self._add(_Obj("car", D, X, row, row - h + 1, x0, codes, shade, _car_colours(rng), CAR, meta), box)
        return True

    # ---------------------------------------------------------------- persons

    def persons(self, n: int) -> None:
        lay, rng = self.lay, self.rng
        n_cross = min(n, int(rng.integers(1, 4))) if lay.crosswalk is not None else 0
        grounds = [SIDEWALK]
        weights = [0.8]
        if any(s.strip(TERRAIN) for s in lay.sides):
            grounds.append(TERRAIN)
            weights.append(0.12)
        if any(s.strip(PARKING) for s in lay.sides):
            grounds.append(PARKING)
            weights.append(0.1)
        p = np.array(weights) / sum(weights)
        for i in range(n):
            for attempt in range(30):
                crossing = i < n_cross and attempt < 12  # then fall back to the sidewalks
                if self._try_person(None if crossing else grounds[int(rng.choice(len(grounds), p=p))]):
                    break

    def _try_person(self, ground: int | None) -> bool:
        rng, v, lay = self.rng, self.view, self.lay
        hm = float(rng.uniform(1.5, 1.95))
        if ground is None:  # crossing the road on the zebra
            d = float(rng.uniform(lay.crosswalk[0] + 0.4, lay.crosswalk[1] - 0.3))
            row = v.contact_row(d)
            if row > self.H - 3 or row < v.min_row(hm):
                return False
            D = v.distance(row)
            X = float(rng.uniform(lay.road_l + 0.4, lay.road_r - 0.4))
            view = "side" if rng.random() < 0.75 else ("front" if rng.random() < 0.5 else "rear")
            pose = "walking" if rng.random() < 0.7 else "striding"
        else:
            row = self._row_sample(hm, 1.5)
            if row is None:
                return False
            D = v.distance(row)
            line = self.stuff[row]
            cols = np.flatnonzero(line == ground)
            if cols.size == 0:
                return False
            c = int(cols[int(rng.integers(cols.size))])
            X = (c + float(rng.random()) - v.u0) * D / v.fx
            side = lay.sides[0] if X < 0 else lay.sides[1]
            t = X * side.sign
            if not side.edge - 0.1 <= t <= side.out - 0.45:
                return False
            for r in (row + 1, row + 2):
                if r < self.H and self.stuff[r, c] not in lb.SUPPORT[PERSON]:
                    return False
            view = ("front", "rear", "side")[int(rng.choice(3, p=(0.34, 0.28, 0.38)))]
            pose = PERSON_POSES[int(rng.choice(len(PERSON_POSES), p=(0.28, 0.36, 0.1, 0.1, 0.06, 0.1)))]
        box = (X - 0.3, X + 0.3, D - 0.3, D + 0.3)
        h = int(round(hm * v.px_per_m(row)))
        if h < MIN_OBJECT_PX or not self._fits_top(row, h) or not self._free(box, 0.15):
            return False
        uc = v.u(X, D)
        if not 0 <= uc < self.W:
            return False
        codes, cx = _person_canvas(rng, h, uc - math.floor(uc), view, pose)
        x0 = int(math.floor(uc)) - codes.shape[1] // 2
        shade = _shade_canvas(codes, cx, self.light, 1.06, 0.9)
        meta = {"height_m": hm, "visible_fraction": 0.0, "view": view, "pose": pose}
        self._add(_Obj("person", D, X, row, row - h + 1, x0, codes, shade, _person_colours(rng), PERSON, meta),
                  box)
        return True

    # ---------------------------------------------------------------- compositing

    def composite(self) -> None:
        H, W = self.H, self.W
        lab = self.lab
        self.objmap = np.zeros((H, W), np.int16)
        self.parts = np.zeros((H, W), np.uint8)
        self.app = np.zeros((H, W), np.int32)
        self.obj_shade = np.ones((H, W), np.float32)
        order = sorted(range(len(self.objects)), key=lambda i: (self.objects[i].row, -self.objects[i].D, i))
        self.order = [self.objects[i] for i in order]
        palettes = [np.zeros((N_CODES, 3), np.float32)]
        n_inst = 0
        for obj in self.order:
            h, w = obj.codes.shape
            ys, ye = max(0, obj.y0), min(H, obj.y0 + h)
            xs, xe = max(0, obj.x0), min(W, obj.x0 + w)
            if ys >= ye or xs >= xe:
                continue
            sub = obj.codes[ys - obj.y0:ye - obj.y0, xs - obj.x0:xe - obj.x0]
            m = sub > 0
            obj.full_px = int(m.sum())
            if obj.full_px == 0:
                continue
            if obj.label:
                n_inst += 1
                obj.index = n_inst
            offset = len(palettes) * N_CODES
            palettes.append(obj.colours)
            codes = sub[m]
            lab[ys:ye, xs:xe][m] = CODE_LABEL[codes]
            self.parts[ys:ye, xs:xe][m] = CODE_PART[codes]
            self.objmap[ys:ye, xs:xe][m] = obj.index
            self.app[ys:ye, xs:xe][m] = codes.astype(np.int32) + offset
            self.obj_shade[ys:ye, xs:xe][m] = obj.shade[ys - obj.y0:ye - obj.y0, xs - obj.x0:xe - obj.x0][m]
        self.palette = np.concatenate(palettes).astype(np.float32)
        self.n_inst = n_inst

    def instances(self) -> tuple[np.ndarray, list[int], dict[int, dict]]:
        visible = np.bincount(self.objmap.ravel(), minlength=self.n_inst + 1)
        values = np.zeros(self.n_inst + 1, np.int32)
        counters = {PERSON: 0, CAR: 0}
        order, metas = [], {}
        for obj in self.order:
            if not obj.index or visible[obj.index] == 0:
                continue
            value = obj.label * lb.INSTANCE_FACTOR + counters[obj.label]
            counters[obj.label] += 1
            values[obj.index] = value
            order.append(value)
            truncated = int(np.count_nonzero(obj.codes)) > obj.full_px  # part of it lies outside the image
            metas[value] = {**obj.meta, "visible_fraction": float(visible[obj.index]) / obj.full_px,
                            "distance_m": round(float(obj.D), 3), "truncated": truncated}
        inst = np.where(self.objmap > 0, values[self.objmap], self.lab.astype(np.int32)).astype(np.int32)
        return inst, order, metas

    # ---------------------------------------------------------------- RGB

    def render(self) -> np.ndarray:
        """The RGB image: class and instance colours, shading, texture, a mild blur and sensor noise."""
        rng, v, H, W = self.rng, self.view, self.H, self.W
        stuff, lab = self.stuff, self.lab
        gain = float(rng.uniform(0.82, 1.15))
        tint = rng.uniform(0.93, 1.07, 3).astype(np.float32)
        base = np.zeros((256, 3), np.float32)
        grey = float(rng.uniform(70, 110))
        base[ROAD] = _jit(rng, (grey, grey * 0.97, grey * 1.03), 0.05)
        base[SIDEWALK] = _jit(rng, (175, 165, 168), 0.1)
        base[PARKING] = _jit(rng, (125, 122, 128), 0.08)
        base[BUILDING] = (150, 150, 150)
        base[VEGETATION] = _jit(rng, (72, 112, 44), 0.15)
        base[TERRAIN] = _jit(rng, (128, 150, 80), 0.12)
        base[SKY] = (180, 200, 220)
        col = np.take(base, stuff, axis=0)
        flat_col = col.reshape(-1, 3)
        shade = np.ones((H, W), np.float32)

        # sky: a vertical gradient, clear or overcast
        clear = rng.random() < 0.6
        top = _jit(rng, (90, 140, 210) if clear else (175, 180, 188), 0.08)
        hor = _jit(rng, (200, 215, 230) if clear else (215, 218, 222), 0.04)
        r_sky = min(H, self.r0)
        if r_sky > 0:
            t = np.clip((np.arange(r_sky, dtype=np.float32) + 0.5) / max(1.0, v.vh), 0.0, 1.0)[:, None]
            sky_rows = top[None, :] * (1 - t) + hor[None, :] * t
            sky = stuff[:r_sky] == SKY
            col[:r_sky][sky] = np.broadcast_to(sky_rows[:, None, :], (r_sky, W, 3))[sky]

        # ground (rows closer than 90 m): darker near the camera, lane markings, zebra, curbs, parking lines
        rv = self.r0 + int(np.searchsorted(-self.D_row, -90.0))  # first row whose ground is nearer than 90 m
        if rv < H:
            lay = self.lay
            g = stuff[rv:]
            X, dist = self.X[rv - self.r0:], self.D_row[rv - self.r0:, None]
            gshade = shade[rv:]
            near = (0.8 + 0.2 * np.minimum(dist / 40.0, 1.0)).astype(np.float32)
            gshade[:] = np.where((g == ROAD) | (g == SIDEWALK) | (g == PARKING) | (g == TERRAIN), near, np.float32(1))
            paint = np.zeros(g.shape, bool)
            for i in range(1, len(lay.lanes)):
                xl = lay.road_l + i * lay.lane_w
                centre = lay.two_way and i == len(lay.lanes) // 2
                line = np.abs(X - xl) < 0.075
                paint |= line if centre and rng.random() < 0.5 else line & (np.mod(dist, 9.0) < 3.0)
            if rng.random() < 0.7:
                paint |= (np.abs(X - (lay.road_l + 0.3)) < 0.07) | (np.abs(X - (lay.road_r - 0.3)) < 0.07)
            if lay.crosswalk is not None:
                a, b = lay.crosswalk
                rows = (dist[:, 0] >= a - 1.8) & (dist[:, 0] < b)
                zebra = (dist[rows] >= a) & (np.mod(X[rows] - lay.road_l, 1.0) < 0.5)
                stop = (dist[rows] < a - 1.5) & (X[rows] > 0)
                paint[rows] |= zebra | stop
            paint &= g == ROAD
            col[rv:][paint] = _jit(rng, (225, 225, 220), 0.04)
            for side in lay.sides:
                tt = X * side.sign
                if side.strips[0][0] == SIDEWALK:
                    gshade[(tt >= side.edge) & (tt < side.edge + 0.22) & (g == SIDEWALK)] *= 1.18
                lot = side.strip(PARKING)
                if lot is not None:
                    bays = 2.6 if lot[1] - lot[0] > 5 else 5.5
                    lines = (np.mod(dist, bays) < 0.12) & (tt >= lot[0]) & (tt < lot[1]) & (g == PARKING)
                    col[rv:][lines] = (200, 200, 195)

        # buildings: per-facade colour, windows on a perspective-correct grid, lit or shaded sides
        idx = np.flatnonzero(self.fac)
        if idx.size:
            fid = self.fac.ravel()[idx]
            n_f = len(self.facades)
            table = np.zeros((n_f, 8), np.float32)  # kind, X, D, floor, bay, win, win_h, height
            colours = np.zeros((n_f, 3), np.float32)
            fshade = np.ones(n_f, np.float32)
            for i, info in enumerate(self.facades[1:], start=1):
                table[i] = ({"facade": 0, "wall": 1, "hedge": 2}[info["type"]], info.get("X", 0.0),
                            info.get("D", 1.0), info["floor"], info["bay"], info["win"], info["win_h"], info["height"])
                colours[i] = base[VEGETATION] * 0.9 if info["type"] == "hedge" else info["colour"]
                fshade[i] = info["shade"]
            p = np.take(table, fid, axis=0)
            k = p[:, 0]
            fy = idx // W
            uc = (idx - fy * W).astype(np.float32) + np.float32(0.5 - v.u0)
            vc = fy.astype(np.float32) + np.float32(0.5 - v.vh)
            den = np.where(np.abs(uc) < 1e-3, np.float32(1e-3), uc)
            dist = np.where(k == 1, p[:, 2], np.abs(np.float32(v.fx) * p[:, 1] / den))
            along = np.where(k == 1, uc * dist / np.float32(v.fx), dist)
            y = np.float32(v.z) - vc * dist / np.float32(v.fy)
            in_floor = np.mod(y, p[:, 3]) / p[:, 3]
            in_bay = np.mod(along, p[:, 4]) / p[:, 4]
            window = (k != 2) & (y > 1.2) & (y < p[:, 7] - 0.8) & (in_floor > 0.3) & (in_floor < 0.3 + p[:, 6]) & \
                (in_bay > 0.2) & (in_bay < 0.2 + p[:, 5]) & (dist * 3 < p[:, 4] * np.float32(v.fx))
            c = np.take(colours, fid, axis=0)
            c[window] = c[window] * 0.35 + np.array([25, 35, 50], np.float32)
            flat_col[idx] = c
            shade.ravel()[idx] = np.take(fshade, fid)

        # objects: their own colours and shading
        obj = np.flatnonzero(self.app)
        flat_col[obj] = np.take(self.palette, self.app.ravel()[obj], axis=0)
        shade.ravel()[obj] = self.obj_shade.ravel()[obj]

        # texture: two smooth random fields (bit-exact integer upsampling), amplitudes per class
        a1 = np.zeros(256, np.float32)
        a2 = np.zeros(256, np.float32)
        for label, c1, c2 in ((ROAD, 0.07, 0.05), (SIDEWALK, 0.05, 0.05), (PARKING, 0.06, 0.05),
                              (BUILDING, 0.06, 0.04), (POLE, 0.02, 0.03), (LIGHT, 0.02, 0.02), (SIGN, 0.02, 0.02),
                              (VEGETATION, 0.18, 0.22), (TERRAIN, 0.12, 0.14), (SKY, 0.05, 0.0),
                              (PERSON, 0.03, 0.05), (CAR, 0.02, 0.03)):
            a1[label], a2[label] = c1, c2
        centred = (np.arange(256, dtype=np.float32) - 127.5) / 127.5
        n1 = np.take(centred, _noise_field(rng, H, W, 16))
        n2 = np.take(centred, _noise_field(rng, H, W, 3))
        n1 *= np.take(a1, lab)
        n2 *= np.take(a2, lab)
        n1 += n2
        n1 += 1.0
        shade *= n1
        shade *= np.float32(gain)
        col *= shade[:, :, None]
        col *= tint
        col += 0.5
        np.clip(col, 0, 255, out=col)
        q = cv2.GaussianBlur(col.astype(np.uint8), (3, 3), 0, borderType=cv2.BORDER_REPLICATE)
        amp = int(rng.integers(2, 6))
        out = q.astype(np.int16)
        out += rng.integers(0, 2 * amp + 1, size=(H, W, 3), dtype=np.uint8)
        out -= amp
        np.clip(out, 0, 255, out=out)
        return out.astype(np.uint8)


def _noise_field(rng: np.random.Generator, H: int, W: int, cell: int) -> np.ndarray:
    """A smooth uint8 random field: a coarse grid upsampled with OpenCV's bit-exact bilinear resize."""
    grid = rng.integers(0, 256, size=(H // cell + 2, W // cell + 2), dtype=np.uint8)
    big = cv2.resize(grid, (grid.shape[1] * cell, grid.shape[0] * cell), interpolation=cv2.INTER_LINEAR_EXACT)
    return big[cell // 2:cell // 2 + H, cell // 2:cell // 2 + W]


def generate_scene(cfg: SyntheticConfig, seed: int, frame: FrameId) -> Scene:
    """One synthetic frame, a function of ``(seed, frame.split, frame.seq)`` and the config only.

    Uses ``cfg.width`` x ``cfg.height``, ``cfg.persons_per_frame`` / ``cfg.cars_per_frame`` (inclusive
    ``[min, max]`` of objects *attempted*: one is skipped when no free, valid spot is found) and
    ``cfg.crosswalk_prob``. The returned ``Scene`` has its ``instances`` in painter's order (far to
    near) with the ``meta`` described in the module docstring.
    """
    rng = scene_rng(seed, frame.split, frame.seq)
    b = _Builder(cfg, rng)
    b.layout()
    b.furniture()
    lo, hi = cfg.cars_per_frame
    b.cars(int(rng.integers(lo, hi + 1)))
    lo, hi = cfg.persons_per_frame
    b.persons(int(rng.integers(lo, hi + 1)))
    b.composite()
    inst, order, metas = b.instances()
    image = b.render()
    scene = Scene(frame=frame, image=image, labels=b.lab, instance_ids=inst, camera=b.camera, parts=b.parts)
    scene.index(order)
    for instance in scene.instances:
        instance.meta = metas[instance.value]
    return scene
