"""Objects drawn in their own canvases - persons (articulated, several poses and views), cars (rear, front,
side), and their colours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.datasets.synthetic.canvas import (
    N_CODES,
    C,
    _disc,
    _ellipse,
    _exact_rows,
    _from_angle,
    _limb,
    _poly,
    _rect,
)

PERSON_POSES = ("standing", "walking", "striding", "phone", "hands-on-hips", "carrying")


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
