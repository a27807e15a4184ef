"""The placement rules of docs/synthetic-scenes.md, as functions any stage can use to score an object.

An object (a person or a car) placed in a street scene is plausible when

- **support**: the ground under its contact pixels is a class it can stand on
  (``labels.SUPPORT``: a person on sidewalk, road, terrain, parking or ground; a car on road or parking);
- **scale**: its pixel height matches the ground-plane rule for the class mean height,
  ``h / (Hm_class * (v_b + 1 - v_h) / z)`` within ``scale_band`` (default [0.75, 1.33]);
- **overlap**: it does not land mostly on top of an existing person or car (share under ``max_overlap``).

Pixel convention (shared with the generator in ``pipeline.datasets.synthetic``): image row ``v`` covers
the continuous interval ``[v, v + 1)`` and ``camera.horizon_row`` is a continuous row. An object whose
lowest mask row is ``v_b`` touches the ground at the *bottom edge* of that row, ``v_b + 1``; its mask
spans ``h = v_b - v_top + 1`` rows, and an object of real height ``Hm`` there is
``Hm * (v_b + 1 - v_h) / z`` pixels tall. (``Camera.pixel_height(Hm, v_b + 1)`` gives the same number.)

All functions take boolean (or 0/1) ``H x W`` masks in image coordinates. Pass the object's *whole*
mask (before nearer objects carve it), or the scale is measured on a truncated silhouette. The functions
work for an object already painted into ``labels`` (the band under it lies outside its mask) and for a
candidate mask over a "before" label map.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import Config, RulesConfig
from pipeline.errors import DatasetError
from pipeline.ground_plane import fit_line, frame_camera, rows_inside_frame
from pipeline.io import atomic_write_json, read_json
from pipeline.labels import BY_ID, BY_NAME, INSTANCE_IDS, MEAN_HEIGHT_M, SUPPORT, TARGET_CLASSES
from pipeline.scene import Camera, Scene

# The thresholds are params (``rules`` in params.yaml, ``config.RulesConfig``); these are its defaults.
DEFAULT_SCALE_BAND: tuple[float, float] = tuple(RulesConfig().scale_band)
DEFAULT_MAX_OVERLAP: float = RulesConfig().max_overlap
# Columns whose lowest mask pixel lies within this share of the object's pixel height above the contact
# row are its contact columns (feet, wheels); a hand, the gap between striding legs or a car's sill do not
# vote on the support.
DEFAULT_CONTACT_TOLERANCE = 0.08
# Rows below the contact pixels that make up the support band.
SUPPORT_BAND = (1, 2)

_INSTANCE_LUT = np.zeros(256, dtype=bool)
_INSTANCE_LUT[sorted(INSTANCE_IDS)] = True
_TARGET_LUT = np.zeros(256, dtype=bool)
_TARGET_LUT[list(TARGET_CLASSES)] = True


def _rows(mask: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(np.asarray(mask).any(axis=1))
    if rows.size == 0:
        raise ValueError("empty mask: an object needs at least one pixel")
    return rows


def contact_row(mask: np.ndarray) -> int:
    """Lowest image row of the mask (where the object touches the ground). Raises on an empty mask."""
    return int(_rows(mask)[-1])


def top_row(mask: np.ndarray) -> int:
    """Highest image row of the mask. Raises on an empty mask."""
    return int(_rows(mask)[0])


def pixel_height(mask: np.ndarray) -> int:
    """Rows the mask spans: ``contact_row - top_row + 1``."""
    rows = _rows(mask)
    return int(rows[-1] - rows[0] + 1)


def contact_columns(mask: np.ndarray, tolerance: float | None = DEFAULT_CONTACT_TOLERANCE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The columns the object stands on, and the lowest mask row in each.

    A column counts when its lowest mask pixel lies within ``max(1, round(tolerance * h))`` rows of the
    contact row (``h`` = pixel height); ``tolerance=None`` keeps every column of the mask.
    """
    m = np.asarray(mask, dtype=bool)
    cols = np.flatnonzero(m.any(axis=0))
    if cols.size == 0:
        raise ValueError("empty mask: an object needs at least one pixel")
    height = m.shape[0]
    bottoms = height - 1 - np.argmax(m[::-1, cols], axis=0)
    if tolerance is not None:
        v_b = int(bottoms.max())
        tol = max(1, int(round(tolerance * pixel_height(m))))
        keep = bottoms >= v_b - tol
        cols, bottoms = cols[keep], bottoms[keep]
    return cols, bottoms


def support_label(labels: np.ndarray, mask: np.ndarray,
                  tolerance: float | None = DEFAULT_CONTACT_TOLERANCE) -> int:
    """The label the object stands on: the majority label just below its contact pixels.

    The band is the pixels 1-2 rows below the lowest mask pixel of each contact column (see
    ``contact_columns``), inside the image and outside the mask. Pixels of classes with instances
    (``labels.INSTANCE_IDS``: another person or car) are ignored whenever any other pixel is in the band.
    When the band lies entirely outside the image (the object touches the bottom border), the labels
    under the mask's own contact pixels are used instead, again without instance classes; if nothing is
    left, 0 (unlabeled) is returned. Ties go to the smaller label id.
    """
    m = np.asarray(mask, dtype=bool)
    labels = np.asarray(labels)
    cols, bottoms = contact_columns(m, tolerance)
    height = m.shape[0]
    band = []
    for d in SUPPORT_BAND:
        rows = bottoms + d
        inside = rows < height
        rr, cc = rows[inside], cols[inside]
        outside_mask = ~m[rr, cc]
        band.append(labels[rr[outside_mask], cc[outside_mask]])
    values = np.concatenate(band).astype(np.int64)
    if values.size:
        stuff = values[~_INSTANCE_LUT[values]]
        if stuff.size:
            values = stuff
    else:
        values = labels[bottoms, cols].astype(np.int64)
        values = values[~_INSTANCE_LUT[values]]
        if values.size == 0:
            return 0
    return int(np.argmax(np.bincount(values, minlength=256)))


def expected_height(camera: Camera, label_id: int, contact: int) -> float:
    """Pixel height of a mean-sized object of class ``label_id`` whose lowest mask row is ``contact``."""
    return MEAN_HEIGHT_M[label_id] * (contact + 1 - camera.horizon_row) / camera.height


def scale_ratio(mask: np.ndarray, camera: Camera, label_id: int) -> float:
    """Pixel height over the ground-plane rule's height for the class mean (1.0 = a mean-sized object).

    ``h / (MEAN_HEIGHT_M[label_id] * (v_b + 1 - v_h) / z)`` with ``h = v_b - v_top + 1``; ``nan`` when the
    contact row is not below the horizon (``v_b <= v_h``), where the rule does not apply.
    """
    rows = _rows(mask)
    return rows_scale_ratio(int(rows[0]), int(rows[-1]), camera, label_id)


def rows_scale_ratio(top: int, bottom: int, camera: Camera, label_id: int) -> float:
    """``scale_ratio`` of an object spanning image rows ``top`` to ``bottom`` (inclusive): the scale rule
    reads nothing else of the mask."""
    if bottom <= camera.horizon_row:
        return math.nan
    return float(bottom - top + 1) / expected_height(camera, label_id, bottom)


def overlap_share(mask: np.ndarray, labels_before: np.ndarray) -> float:
    """Share of the mask's pixels that cover a person or car (``labels.TARGET_CLASSES``) in ``labels_before``.

    0.0 for an empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    n = int(m.sum())
    if n == 0:
        return 0.0
    covered = _TARGET_LUT[np.asarray(labels_before)[m]]
    return float(covered.sum()) / n


@dataclass(frozen=True)
class PlacementCheck:
    """The three facts of a placement, and whether each passes."""

    support: int  # label id under the contact pixels
    scale: float  # scale_ratio (nan above the horizon)
    overlap: float  # overlap_share with existing persons/cars
    support_ok: bool
    scale_ok: bool
    overlap_ok: bool

    @property
    def plausible(self) -> bool:
        return self.support_ok and self.scale_ok and self.overlap_ok


def check_placement(labels_before: np.ndarray, mask: np.ndarray, camera: Camera, label_id: int,
                    scale_band: tuple[float, float] = DEFAULT_SCALE_BAND,
                    max_overlap: float = DEFAULT_MAX_OVERLAP,
                    tolerance: float | None = DEFAULT_CONTACT_TOLERANCE) -> PlacementCheck:
    """Score a placement: ``mask`` (class ``label_id``) over ``labels_before`` seen by ``camera``.

    An empty mask fails every rule. ``label_id`` must be a class with a support set and a mean height
    (``labels.TARGET_CLASSES``).
    """
    if label_id not in SUPPORT or label_id not in MEAN_HEIGHT_M:
        raise ValueError(f"no placement rules for label id {label_id} (known: {sorted(SUPPORT)})")
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return PlacementCheck(0, math.nan, 0.0, False, False, False)
    support = support_label(labels_before, m, tolerance)
    scale = scale_ratio(m, camera, label_id)
    overlap = overlap_share(m, labels_before)
    lo, hi = scale_band
    return PlacementCheck(
        support=support, scale=scale, overlap=overlap,
        support_ok=support in SUPPORT[label_id],
        scale_ok=not math.isnan(scale) and lo <= scale <= hi,
        overlap_ok=overlap < max_overlap,
    )


def is_plausible(labels_before: np.ndarray, mask: np.ndarray, camera: Camera, label_id: int,
                 scale_band: tuple[float, float] = DEFAULT_SCALE_BAND,
                 max_overlap: float = DEFAULT_MAX_OVERLAP) -> bool:
    """True when the placement passes the support, scale and overlap rules (see ``check_placement``)."""
    return check_placement(labels_before, mask, camera, label_id, scale_band, max_overlap).plausible


def rule_verdicts(labels_before: np.ndarray, mask: np.ndarray, label_id: int, camera: Camera | None,
                  rules: RulesConfig) -> dict[str, bool]:
    """Each rule's verdict for a non-empty ``mask`` over ``labels_before`` under ``rules``' thresholds, and
    ``plausible`` (all of them); without a camera the scale rule does not apply and has no entry. The fixed
    rules' ``Yardstick.verdicts``."""
    return Yardstick.fixed(rules).verdicts(labels_before, mask, label_id, camera)


YARDSTICK_FILE = "yardstick.json"
FIT_POINTS = 3000


@dataclass(frozen=True)
class Yardstick:
    """The rules as one object: the labels each class stands on, the ground plane a frame is judged by,
    the scale band and the overlap ceiling.

    Fixed (``rules.learned: false``): ``labels.SUPPORT``, each frame's camera file or the plane fitted to its
    own objects (``ground_plane.frame_camera``), ``rules.scale_band``. Learned (``rules.learned: true``, for
    real datasets without cameras): ``learn_yardstick`` reads the train split's single objects - the labels
    at least ``rules.support_min_share`` of a class stand on; one ground plane for the whole dataset (the
    Theil-Sen line of height over contact row, in frame heights, so frames of any size share it); per class,
    the median scale ratio under it (``class_scale``: 1.0 is then the class's typical real object at that
    row, so ``augment.scale_band`` keeps its meaning) and the band holding ``rules.scale_coverage`` of the
    ratios. Every figure then says how the model's placements compare with the dataset's own objects, and
    the real objects' score is reported beside it (the ceiling)."""

    support: dict[int, frozenset[int]]
    scale_band: tuple[float, float]
    max_overlap: float
    plane: tuple[float, float] | None = None  # learned: (horizon, camera height), in frame heights
    class_scale: dict[int, float] = dataclasses.field(default_factory=dict)  # learned: median ratio per class

    @classmethod
    def fixed(cls, rules: RulesConfig) -> Yardstick:
        return cls(dict(SUPPORT), tuple(rules.scale_band), rules.max_overlap)

    @classmethod
    def of(cls, cfg: Config) -> Yardstick:
        """The yardstick ``cfg`` asks for: fixed, or learned by the prepare stage (its ``yardstick.json``)."""
        if not cfg.rules.learned:
            return cls.fixed(cfg.rules)
        path = Path(cfg.prepare.out) / YARDSTICK_FILE
        if not path.is_file():
            raise DatasetError(path, "missing: rules.learned needs the prepare stage's learned rules "
                               "(dvc repro prepare)")
        return cls.from_json(read_json(path), cfg.rules.max_overlap)

    def camera(self, scene: Scene, exclude: int | None = None) -> Camera | None:
        """The ground plane ``scene`` is judged by: the dataset's (learned), else the frame's own."""
        if self.plane is None:
            return frame_camera(scene, exclude)
        horizon, height = self.plane
        return Camera(fx=1.0, fy=1.0, u0=0.0, v0=horizon * scene.size[0], height=height)

    def class_camera(self, camera: Camera, label_id: int) -> Camera:
        """``camera`` with the class's typical real object as the mean size (identity when fixed)."""
        scale = self.class_scale.get(label_id, 1.0)
        return camera if scale == 1.0 else dataclasses.replace(camera, height=camera.height / scale)

    def verdicts(self, labels_before: np.ndarray, mask: np.ndarray, label_id: int,
                 camera: Camera | None) -> dict[str, bool]:
        """Each rule's verdict for a non-empty ``mask`` over ``labels_before``, and ``plausible``; without a
        camera the scale rule does not apply and has no entry."""
        support = support_label(labels_before, mask) in self.support[label_id]
        overlap = overlap_share(mask, labels_before) < self.max_overlap
        out = {"support": support, "overlap": overlap}
        if camera is not None:
            rows = _rows(mask)
            out["scale"] = self.scale_fits(int(rows[0]), int(rows[-1]), label_id, camera)
        return out | {"plausible": all(out.values())}

    def scale_fits(self, top: int, bottom: int, label_id: int, camera: Camera) -> bool:
        """The scale rule's verdict for an object of class ``label_id`` spanning image rows ``top`` to
        ``bottom``."""
        ratio = rows_scale_ratio(top, bottom, self.class_camera(camera, label_id), label_id)
        return not math.isnan(ratio) and self.scale_band[0] <= ratio <= self.scale_band[1]

    def to_json(self) -> dict:
        return {"support": {BY_ID[c].name: sorted(BY_ID[i].name for i in ids) for c, ids in self.support.items()},
                "scale_band": list(self.scale_band),
                "plane": None if self.plane is None else {"horizon": self.plane[0], "camera_height": self.plane[1]},
                "class_scale": {BY_ID[c].name: v for c, v in self.class_scale.items()}}

    @classmethod
    def from_json(cls, data: dict, max_overlap: float) -> Yardstick:
        plane = data.get("plane")
        return cls({BY_NAME[c].id: frozenset(BY_NAME[n].id for n in names) for c, names in data["support"].items()},
                   tuple(data["scale_band"]), max_overlap,
                   None if plane is None else (plane["horizon"], plane["camera_height"]),
                   {BY_NAME[c].id: v for c, v in data.get("class_scale", {}).items()})


def object_facts(scene: Scene, value: int) -> dict | None:
    """What ``learn_yardstick`` reads of one real object: its class, the label it stands on, its contact
    row and pixel height in frame heights; None when it touches the frame's border (cut off)."""
    mask = scene.instance_ids == value
    rows = rows_inside_frame(mask)
    if rows is None:
        return None
    top, bottom = rows
    height = scene.size[0]
    return {"label_id": value // 1000, "support": support_label(scene.labels, mask),
            "contact": (bottom + 1) / height, "height": (bottom - top + 1) / height}


def learn_yardstick(facts: list[dict], rules: RulesConfig, classes: list[int]) -> Yardstick:
    """The learned yardstick of a dataset from its train split's single objects (``object_facts``)."""
    support, class_scale, bands = {}, {}, []
    for label_id in classes:
        mine = [f for f in facts if f["label_id"] == label_id]
        if not mine:
            raise DatasetError(BY_ID[label_id].name, "no single object of the class to learn the rules from")
        counts = np.bincount([f["support"] for f in mine], minlength=256) / len(mine)
        # Stuff only: an object "standing on" a car is one in front of it, whose ground the car hides.
        counts[list(INSTANCE_IDS)] = 0
        support[label_id] = frozenset(int(i) for i in np.flatnonzero(counts >= rules.support_min_share))
    # Theil-Sen reads every pair: a fixed sample of FIT_POINTS objects bounds it on large datasets.
    sample = facts if len(facts) <= FIT_POINTS else [
        facts[i] for i in sorted(np.random.default_rng(0).choice(len(facts), FIT_POINTS, replace=False))]
    x = np.array([f["contact"] for f in sample])
    y = np.array([f["height"] / MEAN_HEIGHT_M[f["label_id"]] for f in sample])
    line = fit_line(x, y)
    if line is None:
        raise DatasetError("rules.learned", "the train split's objects do not fit a ground plane (their height "
                           "does not grow toward the bottom of the frame)")
    horizon, height = line
    lo_q, hi_q = (1 - rules.scale_coverage) / 2, (1 + rules.scale_coverage) / 2
    for label_id in classes:
        ratios = np.array([f["height"] / (MEAN_HEIGHT_M[label_id] * (f["contact"] - horizon) / height)
                           for f in facts if f["label_id"] == label_id and f["contact"] > horizon])
        class_scale[label_id] = float(np.median(ratios))
        bands.append(np.quantile(ratios / class_scale[label_id], [lo_q, hi_q]))
    # One band for every class (the rules' band is one pair): the widest of the classes' bands.
    band = (round(float(min(b[0] for b in bands)), 4), round(float(max(b[1] for b in bands)), 4))
    return Yardstick(support, band, rules.max_overlap, (float(horizon), float(height)), class_scale)


def save_yardstick(yardstick: Yardstick, path: Path) -> None:
    atomic_write_json(path, yardstick.to_json(), indent=2)
