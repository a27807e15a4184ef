"""Look-alikes: things that look like persons or cars but are none, painted into the RGB image only.

Cityscapes labels a person on a poster, a mannequin behind a shop window or a statue as the stuff it
belongs to, never as person; a detector that learns from appearance alone fires on them, one that learns
context (a facade is no place to stand) need not. Three kinds, each drawn inside one facade's visible
pixels (label ``building``, nothing drawn in front), so the label, instance and part maps stay exactly as
they were:

* ``poster``: a framed board 2.2-4.5 m up a facade (1.2-2.6 m tall; billboards of cars 2-3.5 m) showing a
  person or a car in their usual colours;
* ``mannequin``: a dark shop-window pane at the facade's foot with a life-size dressed figure behind the
  glass (plastic skin, no hair);
* ``statue``: a life-size figure in one stone or bronze colour on a plinth, against the facade's foot.

They come from their own random stream (``scene_rng(..., stream=1)``), so the rest of a frame - layout,
objects, colours, noise - is bit-identical with and without them. ``add_decoys`` returns one record per
look-alike drawn (kind, what it shows, its box, the pixels of the figure itself); the builder keeps them as
``decoys``, and the synthesize stage writes them out (``datasets.LOOKALIKES_FILE``) for the downstream probe,
which counts the look-alikes a segmenter labels as what they show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.datasets.synthetic.builder import Builder
from pipeline.datasets.synthetic.canvas import BUILDING, MIN_OBJECT_PX, N_CODES, SIDEWALK, TERRAIN, C, windows
from pipeline.datasets.synthetic.sprites import (
    PERSON_POSES,
    _car_canvas,
    _car_colours,
    _jit,
    _person_canvas,
    _person_colours,
    _shade_canvas,
)

KINDS = ("poster", "mannequin", "statue")
KIND_P = (0.45, 0.3, 0.25)
POSTER_SHOWS_PERSON = 0.6  # the rest show a car
ATTEMPTS = 12  # random facade spots tried per look-alike
ON_FACADE = 0.9  # share of a look-alike's rectangle that must be free pixels of its facade


@dataclass
class Decoy:
    kind: str  # poster | mannequin | statue
    shows: str  # person | car
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the whole look-alike, pixels
    # The figure's own pixels inside ``box`` (not the board, pane or plinth): what looks like a person or car.
    figure: np.ndarray = field(repr=False, compare=False)


def add_decoys(b: Builder, rng: np.random.Generator, n: int) -> list[Decoy]:
    """Draw up to ``n`` look-alikes into builder ``b``'s decoy layer (``b.decoy_rgb``, ``b.decoy_shade``,
    ``b.decoy_mask``; ``render_image`` lays it over the facades). A look-alike is skipped when no spot of
    its kind fits after ``ATTEMPTS`` tries (small or no facades)."""
    H, W = b.H, b.W
    free = (b.lab == BUILDING) & (b.app == 0) & (b.fac > 0)
    out: list[Decoy] = []
    for _ in range(n):
        kind = KINDS[int(rng.choice(len(KINDS), p=KIND_P))]
        for _ in range(ATTEMPTS):
            spot = _facade_foot(b, rng, free)
            if spot is None:
                break
            drawn = _draw(b, rng, kind, *spot)
            if drawn is None:
                continue
            rgb, mask, shade, figure, y0, x0, shows = drawn
            h, w = mask.shape
            if y0 < 0 or x0 < 0 or y0 + h > H or x0 + w > W:
                continue
            fid = b.fac[spot[0], spot[1]]
            region = free[y0:y0 + h, x0:x0 + w] & (b.fac[y0:y0 + h, x0:x0 + w] == fid)
            if region.mean() < ON_FACADE:
                continue
            paint = region & mask
            b.decoy_rgb[y0:y0 + h, x0:x0 + w][paint] = rgb[paint]
            b.decoy_shade[y0:y0 + h, x0:x0 + w][paint] = shade[paint]
            b.decoy_mask[y0:y0 + h, x0:x0 + w] |= paint
            free[y0:y0 + h, x0:x0 + w] = False  # look-alikes do not overlap
            out.append(Decoy(kind, shows, (x0, y0, x0 + w, y0 + h), paint & figure))
            break
    return out


def lookalike_records(decoys: list[Decoy], size: tuple[int, int]) -> list[dict]:
    """The look-alikes of a frame of ``size`` (H, W) as JSON: kind, what it shows, its box and its figure's
    pixels as a COCO RLE over the frame (what ``lookalikes.json`` holds per frame)."""
    records = []
    for d in decoys:
        x0, y0, x1, y1 = d.box
        whole = np.zeros(size, np.uint8)
        whole[y0:y1, x0:x1] = d.figure
        rle = mask_utils.encode(np.asfortranarray(whole))
        records.append({"kind": d.kind, "shows": d.shows, "box": [int(v) for v in d.box],
                        "figure": {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}})
    return records


def _facade_foot(b, rng: np.random.Generator, free: np.ndarray) -> tuple[int, int, float] | None:
    """A random free facade pixel's column and the row where that facade meets the ground in it, with the
    pixels per metre of an upright thing standing there; None when there is no free facade pixel or that
    column's facade foot is hidden (by a nearer facade, or below the frame)."""
    idx = np.flatnonzero(free)
    if idx.size == 0:
        return None
    r, c = divmod(int(idx[int(rng.integers(idx.size))]), b.W)
    rows = np.flatnonzero(b.fac[:, c] == b.fac[r, c])
    foot = int(rows.max())
    if foot + 1 >= b.H or b.stuff[foot + 1, c] not in (SIDEWALK, TERRAIN) or foot + 1 <= b.view.vh:
        return None
    return foot, c, b.view.px_per_m(foot)


def _draw(b, rng: np.random.Generator, kind: str, foot: int, col: int, ppm: float):
    """(rgb, mask, shade, figure, y0, x0, shows) of one look-alike standing on row ``foot`` centred on column
    ``col`` (``figure``: the pixels of the person or car in ``mask``), or None when it would be too small to
    look like anything."""
    if kind == "poster":
        return _poster(b, rng, foot, col, ppm)
    figure_m = float(rng.uniform(1.7, 1.9)) if kind == "mannequin" else float(rng.uniform(1.8, 2.4))
    base_m = float(rng.uniform(0.4, 0.7)) if kind == "mannequin" else float(rng.uniform(0.4, 1.0))
    h = int(round(figure_m * ppm))
    if h < MIN_OBJECT_PX:
        return None
    codes, cx = _person_canvas(rng, h, 0.0, _view(rng), _pose(rng))
    pal = _person_colours(rng)
    base = int(round(base_m * ppm))
    if kind == "mannequin":
        plastic = _jit(rng, ((235, 232, 225), (200, 198, 195), (60, 60, 62))[int(rng.integers(3))], 0.04)
        pal[[C["face"], C["hand"], C["forearm"], C["hair"]]] = plastic
        glass = _jit(rng, (38, 48, 58), 0.2)
        pal = 0.7 * pal + 0.3 * glass  # seen through the pane
        pane_h = int(round(float(rng.uniform(2.3, 2.8)) * ppm))
        pane_w = max(codes.shape[1] + 4, int(round(float(rng.uniform(1.2, 2.4)) * ppm)))
        back, back_h, back_w, top = glass, pane_h, pane_w, h + base - pane_h
    else:
        stone = _jit(rng, ((150, 148, 140), (175, 170, 160), (105, 85, 55))[int(rng.integers(3))], 0.06)
        pal = np.broadcast_to(stone, (N_CODES, 3)).copy()
        back, back_h, back_w, top = stone * 0.92, base, max(3, int(round(float(rng.uniform(0.8, 1.3)) * ppm))), h
    # canvas: the backing (pane or plinth) and the figure standing on the backing's base line
    hh = max(h + base, top + back_h) - min(0, top)
    ww = max(codes.shape[1], back_w)
    y_fig = -min(0, top)
    rgb, mask, shade = _blank(hh, ww)
    bx = (ww - back_w) // 2
    by = y_fig + top
    rgb[by:by + back_h, bx:bx + back_w] = back
    mask[by:by + back_h, bx:bx + back_w] = True
    if kind == "mannequin":  # a frame around the pane
        rgb[by:by + back_h, [bx, bx + back_w - 1]] = back * 0.5
        rgb[[by, by + back_h - 1], bx:bx + back_w] = back * 0.5
    fig_shade = _shade_canvas(codes, cx, b.light, 1.05, 0.9)
    figure = _stamp(rgb, mask, shade, codes, pal, y_fig, (ww - codes.shape[1]) // 2, fig_shade)
    return rgb, mask, shade, figure, foot + 1 - hh, col - ww // 2, "person"


def _poster(b, rng: np.random.Generator, foot: int, col: int, ppm: float):
    shows = "person" if rng.random() < POSTER_SHOWS_PERSON else "car"
    board_h = int(round(float(rng.uniform(1.2, 2.6) if shows == "person" else rng.uniform(2.0, 3.5)) * ppm))
    lift = int(round(float(rng.uniform(2.2, 4.5)) * ppm))
    if shows == "person":
        h = int(round(board_h * float(rng.uniform(0.7, 0.88))))
        if h < MIN_OBJECT_PX:
            return None
        codes, cx = _person_canvas(rng, h, 0.0, _view(rng), _pose(rng))
        pal = _person_colours(rng)
        board_w = max(codes.shape[1] + 4, int(round(board_h * float(rng.uniform(0.6, 0.9)))))
    else:
        h = int(round(board_h * float(rng.uniform(0.35, 0.55))))
        if h < MIN_OBJECT_PX:
            return None
        view = ("side", "front", "rear")[int(rng.integers(3))]
        width_px = h * (2.8 if view == "side" else 1.2)
        codes, cx = _car_canvas(h, width_px, 0.0, view, 1 if rng.random() < 0.5 else -1)
        pal = _car_colours(rng)
        board_w = max(codes.shape[1] + 4, int(round(board_h * float(rng.uniform(1.4, 2.0)))))
    rgb, mask, shade = _blank(board_h, board_w)
    rgb[:] = _jit(rng, ((235, 230, 215), (200, 220, 235), (240, 200, 120), (180, 200, 170))[int(rng.integers(4))],
                  0.08)
    rgb[:, [0, -1]] = (40, 40, 42)  # the frame
    rgb[[0, -1], :] = (40, 40, 42)
    mask[:] = True
    margin = max(1, (board_h - h) // 3)
    figure = _stamp(rgb, mask, shade, codes, pal, board_h - margin - h, (board_w - codes.shape[1]) // 2,
                    _shade_canvas(codes, cx, 0.0, 1.0, 0.95))
    return rgb, mask, shade, figure, foot + 1 - lift - board_h, col - board_w // 2, shows


def _blank(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((h, w, 3), np.float32), np.zeros((h, w), bool), np.ones((h, w), np.float32)


def _stamp(rgb: np.ndarray, mask: np.ndarray, shade: np.ndarray, codes: np.ndarray, pal: np.ndarray,
           y0: int, x0: int, fig_shade: np.ndarray) -> np.ndarray:
    """Paint a canvas of codes with its palette into (rgb, mask, shade) at (y0, x0), cut to their shape;
    returns the painted pixels (a mask of ``mask``'s shape)."""
    painted = np.zeros(mask.shape, bool)
    placed = windows(codes.shape, y0, x0, mask.shape)
    if placed is None:
        return painted
    at, cut = placed
    sub = codes[cut]
    on = sub > 0
    rgb[at][on] = pal[sub[on]]
    shade[at][on] = fig_shade[cut][on]
    mask[at] |= on
    painted[at] = on
    return painted


def _view(rng: np.random.Generator) -> str:
    return ("front", "rear", "side")[int(rng.integers(3))]


def _pose(rng: np.random.Generator) -> str:
    return PERSON_POSES[int(rng.integers(len(PERSON_POSES)))]


def decoy_count(rng: np.random.Generator, per_frame: list[int]) -> int:
    """How many look-alikes a frame tries: uniform in the inclusive range ``per_frame``."""
    lo, hi = per_frame
    return int(rng.integers(lo, hi + 1))

