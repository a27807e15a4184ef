"""A scene being built: its layout painted, street furniture, cars and persons placed where they fit,
composited far to near, numbered as instances. ``generate_scene`` drives it; ``render.py`` draws the image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline import labels as lb
from pipeline.config import SyntheticConfig
from pipeline.datasets.synthetic.canvas import (
    _SHIFT,
    BUILDING,
    CAR,
    CODE_LABEL,
    CODE_PART,
    MIN_OBJECT_PX,
    N_CODES,
    PARKING,
    PERSON,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    VEGETATION,
    C,
    _clamp_pt,
    _disc,
    _ellipse,
    _fix,
    _limb,
    _poly,
    _rect,
    windows,
)
from pipeline.datasets.synthetic.geometry import _View, make_camera
from pipeline.datasets.synthetic.layout import _facade_plan, _make_layout
from pipeline.datasets.synthetic.sprites import (
    PERSON_POSES,
    _car_canvas,
    _car_colours,
    _furniture_colours,
    _Obj,
    _person_canvas,
    _person_colours,
    _shade_canvas,
)

# ------------------------------------------------------------------------------------------- the scene


class Builder:
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
        # The look-alikes' layer (decoys.py), in the image only; render_image lays it over the facades.
        self.decoy_rgb = np.zeros((self.H, self.W, 3), np.float32)
        self.decoy_shade = np.ones((self.H, self.W), np.float32)
        self.decoy_mask = np.zeros((self.H, self.W), bool)
        self.decoys: list = []  # decoys.Decoy records, one per look-alike drawn

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
            placed = windows(obj.codes.shape, obj.y0, obj.x0, (H, W))
            if placed is None:
                continue
            at, cut = placed
            sub = obj.codes[cut]
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
            lab[at][m] = CODE_LABEL[codes]
            self.parts[at][m] = CODE_PART[codes]
            self.objmap[at][m] = obj.index
            self.app[at][m] = codes.astype(np.int32) + offset
            self.obj_shade[at][m] = obj.shade[cut][m]
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
