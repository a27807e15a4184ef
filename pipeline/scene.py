"""The in-memory frame every reader yields and every writer takes.

A ``Scene`` holds the RGB image, the label ids, the instance ids (Cityscapes encoding: ``id * 1000 + k``
for a countable object, the plain label id for stuff and for crowd regions), the camera when one is
known, the optional part map, and the instances in painter's order (far to near: later ones cover
earlier ones). The maps are the truth; ``instances`` is derived from them by ``Scene.index()`` and may
carry facts a generator knows (``meta``), such as an object's real height.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from pipeline.labels import BY_ID, INSTANCE_FACTOR, INSTANCE_IDS

_CITY_RE = re.compile(r"^[A-Za-z0-9\-]+$")


@dataclass(frozen=True, order=True)
class FrameId:
    """A frame's place in a Cityscapes tree: ``{split}/{city}/{city}_{seq:06d}_{frame:06d}``."""

    split: str
    city: str
    seq: int
    frame: int

    def __post_init__(self) -> None:
        if not _CITY_RE.match(self.city):
            # The official tools split file names on "_": a city name must not contain one.
            raise ValueError(f"city name {self.city!r} must use letters, digits and '-' only")

    @property
    def stem(self) -> str:
        return f"{self.city}_{self.seq:06d}_{self.frame:06d}"

    @classmethod
    def parse(cls, split: str, stem: str) -> FrameId:
        """Parse ``city_seq_frame`` (the part of a Cityscapes file name before the suffix)."""
        parts = stem.split("_")
        if len(parts) < 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise ValueError(f"{stem!r} is not a Cityscapes frame name (city_000000_000000)")
        return cls(split, parts[0], int(parts[1]), int(parts[2]))


@dataclass(frozen=True)
class Camera:
    """Cityscapes camera: extrinsics (metres, radians) and pinhole intrinsics (pixels)."""

    fx: float
    fy: float
    u0: float
    v0: float
    height: float  # extrinsic z: camera height above the ground plane
    pitch: float = 0.0
    roll: float = 0.0
    yaw: float = 0.0
    x: float = 1.7
    y: float = 0.0
    baseline: float = 0.22

    @property
    def horizon_row(self) -> float:
        """Image row of the horizon (``v0 - fy * tan(pitch)``)."""
        return self.v0 - self.fy * math.tan(self.pitch)

    def pixel_height(self, height_m: float, contact_row: float) -> float:
        """Pixel height of an object of real height ``height_m`` standing at ``contact_row``."""
        return height_m * (contact_row - self.horizon_row) / self.height

    def to_json(self) -> dict:
        return {
            "extrinsic": {
                "baseline": self.baseline, "pitch": self.pitch, "roll": self.roll,
                "x": self.x, "y": self.y, "yaw": self.yaw, "z": self.height,
            },
            "intrinsic": {"fx": self.fx, "fy": self.fy, "u0": self.u0, "v0": self.v0},
        }

    @classmethod
    def from_json(cls, data: dict) -> Camera:
        ext, intr = data["extrinsic"], data["intrinsic"]
        return cls(
            fx=float(intr["fx"]), fy=float(intr["fy"]), u0=float(intr["u0"]), v0=float(intr["v0"]),
            height=float(ext["z"]), pitch=float(ext.get("pitch", 0.0)), roll=float(ext.get("roll", 0.0)),
            yaw=float(ext.get("yaw", 0.0)), x=float(ext.get("x", 0.0)), y=float(ext.get("y", 0.0)),
            baseline=float(ext.get("baseline", 0.0)),
        )


@dataclass
class Instance:
    """One object or crowd region: its value in the instanceIds map and derived geometry."""

    value: int  # instanceIds value: id * 1000 + k, or the plain label id for a crowd region
    label_id: int
    bbox: tuple[int, int, int, int]  # x, y, w, h of the visible mask
    area: int
    meta: dict = field(default_factory=dict)

    @property
    def iscrowd(self) -> bool:
        return self.value < INSTANCE_FACTOR

    @property
    def name(self) -> str:
        return BY_ID[self.label_id].name


@dataclass
class Scene:
    frame: FrameId
    image: np.ndarray  # H x W x 3 uint8, RGB
    labels: np.ndarray  # H x W uint8 label ids
    instance_ids: np.ndarray  # H x W int32, Cityscapes encoding
    camera: Camera | None = None
    parts: np.ndarray | None = None  # H x W uint8 part ids (labels.PARTS), optional
    instances: list[Instance] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.labels.shape[:2]

    def mask(self, instance: Instance | int) -> np.ndarray:
        value = instance.value if isinstance(instance, Instance) else instance
        return self.instance_ids == value

    def index(self, order: list[int] | None = None) -> Scene:
        """Rebuild ``instances`` from the maps, keeping ``meta`` of surviving instances.

        Order: the values in ``order`` first (in that order), then the remaining instances of the
        current list, then any new ones by value. Crowd regions (a class with instances stored with
        its plain label id) are included with ``iscrowd``.
        """
        old_meta = {inst.value: inst.meta for inst in self.instances}
        prior = list(order) if order is not None else [inst.value for inst in self.instances]
        found = _instance_geometry(self.instance_ids)
        ordered = [v for v in dict.fromkeys(prior) if v in found]
        ordered += sorted(v for v in found if v not in set(ordered))
        self.instances = [
            Instance(v, found[v][0], found[v][1], found[v][2], dict(old_meta.get(v, {})))
            for v in ordered
        ]
        return self


def _instance_geometry(instance_ids: np.ndarray) -> dict[int, tuple[int, tuple[int, int, int, int], int]]:
    """value -> (label id, bbox, area) for every object or crowd region in an instanceIds map."""
    values = np.unique(instance_ids)
    out: dict[int, tuple[int, tuple[int, int, int, int], int]] = {}
    for v in values.tolist():
        label_id = v // INSTANCE_FACTOR if v >= INSTANCE_FACTOR else v
        if label_id not in INSTANCE_IDS:
            continue
        ys, xs = np.nonzero(instance_ids == v)
        x0, y0 = int(xs.min()), int(ys.min())
        out[v] = (label_id, (x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1), int(xs.size))
    return out
