"""Label maps to polygons: Cityscapes painter's-order polygons and COCO polygons.

Cityscapes polygons JSON lists objects that the official tools paint in order (later objects cover
earlier ones, ``k`` of an instance = its position among the polygons of its class). Going the other
way - from a label map to such a list - needs three decisions:

* Each connected piece of stuff becomes one polygon.
* A countable object must be exactly one polygon (the tools count polygons to number instances), so
  an object split in pieces by an occluder is joined by zero-width bridges. A bridge paints a
  one-pixel line, which the occluder, painted later, covers again.
* Holes are cut out of every polygon through the same zero-width bridges (the tools fill polygons
  even-odd), so what lies in a hole need not be painted after its surroundings.
* The order: object ``i`` must come before object ``j`` wherever ``i``'s filled polygon covers
  pixels of ``j``. That is a graph; a topological order of it (ties broken by stuff before objects,
  larger stuff first, then the scene's own instance order) reproduces the label map. A cycle, which
  only interlocked shapes make, is broken where the fewest pixels are lost.

Contours pass through boundary pixel centres: ``PIL.ImageDraw.polygon`` (what cityscapesscripts uses)
fills such a polygon to exactly the pixels it was traced from.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from pipeline.labels import BY_ID, INSTANCE_FACTOR, INSTANCE_IDS


@dataclass
class PolygonObject:
    label: str  # Cityscapes label name ("persongroup" for a crowd region)
    polygon: list[list[int]]  # [[x, y], ...] through boundary pixel centres
    value: int  # the instanceIds value of the pixels it stands for


@dataclass
class Polygons:
    objects: list[PolygonObject]  # in paint order
    renumber: dict[int, int]  # old instanceIds value -> value the official tools will assign
    broken_cycles: int  # times no order could satisfy every constraint (some pixels come out wrong)


@dataclass
class _Piece:
    value: int
    label_id: int
    contour: np.ndarray  # N x 2 int32, image coordinates
    filled: np.ndarray  # bool raster of the filled polygon over the bbox below
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of ``filled``
    key: tuple


def painter_polygons(
    labels: np.ndarray, instance_ids: np.ndarray, order: list[int] | None = None
) -> Polygons:
    """Polygons that the Cityscapes tools paint back into ``labels`` / ``instance_ids``.

    ``order``: instanceIds values of the objects in the scene's painter order (far to near), used to
    break ties. Returns the polygons in paint order and the renumbering ``old value -> new value``
    that makes each object's ``k`` its position among the polygons of its class (values of stuff and
    crowd regions map to themselves).
    """
    del labels  # the instanceIds value determines the label; kept in the signature for clarity
    height, width = instance_ids.shape
    rank = {v: i for i, v in enumerate(order or [])}
    owner = np.full((height, width), -1, dtype=np.int32)
    depth = _depth_map(instance_ids, rank)
    pieces: list[_Piece] = []

    boxes = _bboxes(instance_ids)
    for value, (x0, y0, x1, y1) in boxes.items():
        label_id = value // INSTANCE_FACTOR if value >= INSTANCE_FACTOR else value
        if label_id not in BY_ID:
            continue
        crop = (instance_ids[y0:y1, x0:x1] == value).astype(np.uint8)
        countable = value >= INSTANCE_FACTOR and label_id in INSTANCE_IDS
        if countable:
            shapes = [crop.astype(bool)]
        else:
            n, comps = cv2.connectedComponents(crop, connectivity=8)
            shapes = [comps == c for c in range(1, n)]
        crossing = _crossing_cost(depth[y0:y1, x0:x1], crop, rank.get(value, -1) if countable else -1)
        for own in shapes:
            idx = len(pieces)
            owner[y0:y1, x0:x1][own] = idx
            contour, filled, bbox = _polygon_for(own, x0, y0, crossing)
            if countable or value in rank:
                key = (1, rank.get(value, len(rank)), value)
            else:
                key = (0, -int(filled.sum()), value)
            pieces.append(_Piece(value, label_id, contour, filled, bbox, key))

    # Edges: piece i before piece j, weighted by the pixels of j that i's polygon covers.
    edges: list[dict[int, int]] = [dict() for _ in pieces]
    indegree = np.zeros(len(pieces), dtype=np.int64)
    covered = np.zeros(len(pieces), dtype=bool)
    for i, piece in enumerate(pieces):
        x0, y0, x1, y1 = piece.bbox
        hit = owner[y0:y1, x0:x1][piece.filled]
        hit = hit[(hit != i) & (hit >= 0)]
        if hit.size:
            js, counts = np.unique(hit, return_counts=True)
            for j, c in zip(js.tolist(), counts.tolist(), strict=True):
                edges[i][j] = c
                indegree[j] += 1
                covered[j] = True

    emitted, broken = _topological_order(pieces, edges, indegree)
    # Unlabeled pieces are only written where another polygon would paint over them.
    emitted = [i for i in emitted if pieces[i].label_id != 0 or covered[i]]

    renumber: dict[int, int] = {value: value for value in boxes}
    counts: dict[int, int] = {}
    objects = []
    for i in emitted:
        piece = pieces[i]
        name = BY_ID[piece.label_id].name
        if piece.value >= INSTANCE_FACTOR:
            k = counts.get(piece.label_id, 0)
            counts[piece.label_id] = k + 1
            renumber[piece.value] = piece.label_id * INSTANCE_FACTOR + k
        elif piece.label_id in INSTANCE_IDS:
            name += "group"
        objects.append(PolygonObject(name, _as_points(piece.contour), piece.value))
    return Polygons(objects, renumber, broken)


def _topological_order(
    pieces: list[_Piece], edges: list[dict[int, int]], indegree: np.ndarray
) -> tuple[list[int], int]:
    """Kahn's algorithm by priority key; a cycle is broken at the piece with the least covered weight."""
    indegree = indegree.copy()
    incoming_weight = np.zeros(len(pieces), dtype=np.int64)
    for out in edges:
        for j, w in out.items():
            incoming_weight[j] += w
    done = np.zeros(len(pieces), dtype=bool)
    ready = [(p.key, i) for i, p in enumerate(pieces) if indegree[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    broken = 0
    while len(order) < len(pieces):
        if not ready:
            broken += 1
            rest = np.flatnonzero(~done)
            i = int(min(rest, key=lambda r: (incoming_weight[r], pieces[r].key)))
            heapq.heappush(ready, (pieces[i].key, i))
            indegree[i] = 0
        _, i = heapq.heappop(ready)
        if done[i]:
            continue
        done[i] = True
        order.append(i)
        for j, w in edges[i].items():
            if done[j]:
                continue
            indegree[j] -= 1
            incoming_weight[j] -= w
            if indegree[j] == 0:
                heapq.heappush(ready, (pieces[j].key, j))
    return order, broken


def _bboxes(instance_ids: np.ndarray) -> dict[int, tuple[int, int, int, int]]:
    """value -> (x0, y0, x1, y1) exclusive, for every value in the map, in two bincount passes."""
    height, width = instance_ids.shape
    hist = np.bincount(instance_ids.ravel().astype(np.int64))
    present = np.flatnonzero(hist)
    lut = np.zeros(hist.size, dtype=np.int64)
    lut[present] = np.arange(present.size)
    compact = lut[instance_ids]
    n = present.size
    rows = np.bincount((compact * height + np.arange(height)[:, None]).ravel(), minlength=n * height)
    cols = np.bincount((compact * width + np.arange(width)[None, :]).ravel(), minlength=n * width)
    rows = rows.reshape(n, height) > 0
    cols = cols.reshape(n, width) > 0
    out = {}
    for c, value in enumerate(present.tolist()):
        r = np.flatnonzero(rows[c])
        q = np.flatnonzero(cols[c])
        out[value] = (int(q[0]), int(r[0]), int(q[-1]) + 1, int(r[-1]) + 1)
    return out


def _depth_map(instance_ids: np.ndarray, rank: dict[int, int]) -> np.ndarray:
    """Per pixel: the paint position of its object (0 = farthest), -1 for stuff, crowd and unranked."""
    values = np.array(sorted(rank), dtype=np.int64)
    depth = np.full(instance_ids.shape, -1, dtype=np.int32)
    if values.size:
        pos = np.searchsorted(values, instance_ids).clip(0, values.size - 1)
        hit = values[pos] == instance_ids
        ranks = np.array([rank[v] for v in values.tolist()], dtype=np.int32)
        depth[hit] = ranks[pos[hit]]
    return depth


def _crossing_cost(depth: np.ndarray, own: np.ndarray, mine: int) -> np.ndarray:
    """What it costs a bridge of a piece at paint position ``mine`` to paint over each pixel.

    A bridge forces whatever it crosses to be painted after the piece. That is natural for objects
    nearer than the piece (painted later anyway) and cheap for stuff in front (a pole), but crossing
    a farther object contradicts the depth order and can leave no valid order at all. The piece's own
    pixels are free.
    """
    cost = np.where(depth > mine, 0.5, 2.0).astype(np.float32)
    cost[(depth >= 0) & (depth < mine)] = 50.0
    cost[own.astype(bool)] = 0.0
    return cost


def _polygon_for(own: np.ndarray, x0: int, y0: int, crossing: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """One polygon for the pixels ``own`` (a crop whose corner is at ``x0, y0``), with its PIL fill.

    First choice: holes cut out. A bridge can meet a scanline exactly at a shared vertex, where PIL's
    fill miscounts; the fill is checked, and if it misses pixels of the piece the next cheapest
    bridges are tried, and last the outer outline alone (holes filled, to be painted over by what
    lies in them); the candidate that misses fewest pixels wins.
    """
    mask = own.astype(np.uint8)
    best = None
    # Holes cut with the cheapest bridges, then with the next cheapest, then the outline alone.
    for cut_holes, choice in ((True, 0), (True, 1), (True, 2), (True, 3), (False, 0)):
        rings = _rings(mask, cut_holes, crossing, choice)
        contour = rings[0]
        for ring in rings[1:]:
            contour = _bridge(contour, ring, crossing, choice)
        contour = contour + np.array([x0, y0], dtype=np.int32)
        filled, bbox = _fill(contour)
        canvas = np.zeros(own.shape, dtype=bool)
        bx0, by0, bx1, by1 = bbox
        canvas[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0] = filled
        missing = int((own & ~canvas).sum())
        if best is None or missing < best[0]:
            best = (missing, contour, filled, bbox)
        if missing == 0:
            break
    return best[1], best[2], best[3]


def _rings(mask: np.ndarray, cut_holes: bool = True, crossing: np.ndarray | None = None,
           choice: int = 0) -> list[np.ndarray]:
    """One ring per outer contour of ``mask`` (largest first), its holes cut out through bridges.

    Contours pass through the mask's own boundary pixels, so under PIL's even-odd fill a ring paints
    exactly its piece: the hole's border pixels are painted, its inside is not.
    """
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    rings = []
    for i, (_, _, child, parent) in enumerate(hierarchy[0]):
        if parent >= 0:
            continue
        ring = contours[i][:, 0, :]
        while cut_holes and child >= 0:
            ring = _bridge(ring, contours[child][:, 0, :], crossing, choice)
            child = hierarchy[0][child][0]
        rings.append(ring)
    rings.sort(key=lambda r: -len(r))
    return rings


def _bridge(ring: np.ndarray, other: np.ndarray, crossing: np.ndarray | None = None,
            choice: int = 0, candidates: int = 24) -> np.ndarray:
    """Splice ``other`` into ``ring`` through a zero-width bridge.

    The bridge is walked there and back, so it encloses no area: under the even-odd rule the spliced
    ring fills both pieces (disjoint contours) or cuts ``other`` out (a hole inside ``ring``).
    Among the ``candidates`` shortest point pairs, the bridge crossing the cheapest pixels
    (``crossing``, same coordinates as the rings) wins - or the ``choice``-th cheapest. It is never
    horizontal when any other choice exists: along a scanline PIL's fill miscounts the doubled edge
    and leaves the row's run unpainted.
    """
    dx = ring[:, None, 0].astype(np.float64) - other[None, :, 0]
    dy = ring[:, None, 1].astype(np.float64) - other[None, :, 1]
    d = np.sqrt(dx * dx + dy * dy)
    d[dy == 0] += 1e6
    flat = d.ravel()
    best = [int(np.argmin(flat))]
    if crossing is not None:
        # The k shortest pairs, ties at the k-th distance taken by position: np.argpartition's order among
        # ties follows the CPU features numpy dispatches, and the written polygons would follow the machine.
        k = min(candidates, flat.size)
        kth = np.partition(flat, k - 1)[k - 1]
        below = np.flatnonzero(flat < kth)
        best = np.concatenate([below, np.flatnonzero(flat == kth)[: k - below.size]])
        # Every candidate's line at once, sampled as np.linspace(start, stop, n) samples it (its last point
        # exactly ``stop``): the crossing costs are halves and small integers, so their sums are exact in
        # any order.
        a, b = np.unravel_index(best, d.shape)
        start, stop = ring[a].astype(np.float64), other[b].astype(np.float64)  # k x 2
        n = np.maximum(np.abs(dx[a, b]), np.abs(dy[a, b])).astype(np.int64) + 1
        t = np.arange(int(n.max()), dtype=np.float64)[None, :, None]  # 1 x L x 1
        step = (stop - start) / np.maximum(n - 1, 1)[:, None]
        points = t * step[:, None, :] + start[:, None, :]  # k x L x 2
        last = n[:, None] - 1 == t[..., 0]
        points[last] = stop
        points = np.rint(points).astype(np.int64)
        inside = t[..., 0] < n[:, None]
        points[~inside] = 0
        crossed = (crossing[points[..., 1], points[..., 0]] * inside).sum(axis=1)
        costs = flat[best] * 0.01 + crossed.astype(np.float64)
        best = [best[np.argsort(costs, kind="stable")[min(choice, len(costs) - 1)]]]
    a, b = np.unravel_index(int(best[0]), d.shape)
    tour = np.concatenate([other[b:], other[: b + 1]])  # around the piece, back to where it started
    return np.concatenate([ring[: a + 1], tour, ring[a:]])


def _fill(contour: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The pixels PIL paints for the polygon (the same fill cityscapesscripts uses), over its bbox."""
    x0, y0 = contour.min(0)
    x1, y1 = contour.max(0) + 1
    canvas = Image.new("L", (int(x1 - x0), int(y1 - y0)), 0)
    points = [tuple(p) for p in (contour - np.array([x0, y0])).tolist()]
    ImageDraw.Draw(canvas).polygon(points if len(points) > 1 else points * 2, fill=1)
    return np.asarray(canvas, dtype=bool), (int(x0), int(y0), int(x1), int(y1))


def _as_points(contour: np.ndarray) -> list[list[int]]:
    points = contour.tolist()
    while len(points) < 3:  # a one- or two-pixel piece still needs a polygon the tools accept
        points.append(points[-1])
    return points


def coco_polygons(mask: np.ndarray, tolerance: float = 0.25, offset: tuple[int, int] = (0, 0),
                  size: tuple[int, int] | None = None) -> list[list[float]]:
    """COCO polygon rings (``[x1, y1, x2, y2, ...]``) tracing the outer edges of a binary mask's pixels.

    COCO treats coordinates as continuous (pixel ``x`` spans ``[x, x + 1]``), so a contour through
    pixel centres loses half a pixel all round (IoU ~0.91 on typical shapes). Traced at twice the
    resolution, the polygon runs a quarter pixel inside the true edge, and pycocotools paints it back
    to the very pixels of the mask (IoU 1.0 on random shapes, ``tests/test_polygons.py``). Holes (an
    object seen around a nearer one) are cut out through zero-width bridges, which pycocotools'
    even-odd fill honours. Rings of fewer than three points are dropped; a mask with no ring left (one
    or two pixels) gets its bounding box.

    ``mask`` may be a window of the image: ``offset`` (x, y) is its position and ``size`` (height,
    width) the image's, which the coordinates are clipped to (default: the mask is the whole image).
    """
    mask = mask.astype(np.uint8)
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return []
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    crop = mask[y0:y1, x0:x1]
    x0, y0, x1, y1 = x0 + offset[0], y0 + offset[1], x1 + offset[0], y1 + offset[1]
    big = cv2.resize(crop, (crop.shape[1] * 2, crop.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    big = cv2.copyMakeBorder(big, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    contours, hierarchy = cv2.findContours(big, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    simplified = [cv2.approxPolyDP(c, tolerance * 2, True)[:, 0, :] for c in contours]
    height, width = mask.shape if size is None else size
    rings = []
    for i, (_, _, first_child, parent) in enumerate(hierarchy[0] if hierarchy is not None else []):
        ring = simplified[i]
        if parent >= 0 or len(ring) < 3:
            continue
        child = first_child
        while child >= 0:
            if len(simplified[child]) >= 3:
                ring = _bridge(ring, simplified[child])
            child = hierarchy[0][child][0]
        pts = (ring.astype(np.float64) - 1 + 0.5) / 2 + np.array([x0, y0])
        pts[:, 0] = pts[:, 0].clip(0, width)
        pts[:, 1] = pts[:, 1].clip(0, height)
        rings.append([round(float(v), 2) for v in pts.ravel()])
    if not rings:
        rings = [[float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1)]]
    return rings
