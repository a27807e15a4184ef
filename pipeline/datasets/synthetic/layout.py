"""The stuff layout of a street: the road, the bands beside it, the facades, an optional cross street."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.datasets.synthetic.canvas import PARKING, SIDEWALK, TERRAIN
from pipeline.datasets.synthetic.geometry import _View

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
