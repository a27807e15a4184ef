"""The RGB image of a built scene: class and instance colours, shading, texture, a mild blur and sensor
noise - every step bit-exact (see the package docstring).
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.datasets.synthetic.builder import Builder
from pipeline.datasets.synthetic.canvas import (
    BUILDING,
    CAR,
    LIGHT,
    PARKING,
    PERSON,
    POLE,
    ROAD,
    SIDEWALK,
    SIGN,
    SKY,
    TERRAIN,
    VEGETATION,
)
from pipeline.datasets.synthetic.sprites import _jit


def render_image(builder: Builder) -> np.ndarray:
    """The RGB image: class and instance colours, shading, texture, a mild blur and sensor noise."""
    rng, v, H, W = builder.rng, builder.view, builder.H, builder.W
    stuff, lab = builder.stuff, builder.lab
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
    r_sky = min(H, builder.r0)
    if r_sky > 0:
        t = np.clip((np.arange(r_sky, dtype=np.float32) + 0.5) / max(1.0, v.vh), 0.0, 1.0)[:, None]
        sky_rows = top[None, :] * (1 - t) + hor[None, :] * t
        sky = stuff[:r_sky] == SKY
        col[:r_sky][sky] = np.broadcast_to(sky_rows[:, None, :], (r_sky, W, 3))[sky]

    # ground (rows closer than 90 m): darker near the camera, lane markings, zebra, curbs, parking lines
    rv = builder.r0 + int(np.searchsorted(-builder.D_row, -90.0))  # first row whose ground is nearer than 90 m
    if rv < H:
        lay = builder.lay
        g = stuff[rv:]
        X, dist = builder.X[rv - builder.r0:], builder.D_row[rv - builder.r0:, None]
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
    idx = np.flatnonzero(builder.fac)
    if idx.size:
        fid = builder.fac.ravel()[idx]
        n_f = len(builder.facades)
        table = np.zeros((n_f, 8), np.float32)  # kind, X, D, floor, bay, win, win_h, height
        colours = np.zeros((n_f, 3), np.float32)
        fshade = np.ones(n_f, np.float32)
        for i, info in enumerate(builder.facades[1:], start=1):
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
    obj = np.flatnonzero(builder.app)
    flat_col[obj] = np.take(builder.palette, builder.app.ravel()[obj], axis=0)
    shade.ravel()[obj] = builder.obj_shade.ravel()[obj]
    # look-alikes on the facades (decoys.py): in the image only, the labels stay building
    decoy = builder.decoy_mask
    if decoy.any():
        col[decoy] = builder.decoy_rgb[decoy]
        shade[decoy] = builder.decoy_shade[decoy]

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
