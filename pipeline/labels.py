"""The Cityscapes label table and the class sets the pipeline cares about.

The table is the dataset's own definition (name, id, trainId, category, instances, ignored in
evaluation, colour); ``tests/test_labels.py`` checks it against ``cityscapesscripts``. Label ids are
what the pipeline stores (``labelIds`` PNGs); train ids are only for losses and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Label:
    name: str
    id: int
    train_id: int
    category: str
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


LABELS: tuple[Label, ...] = (
    Label("unlabeled", 0, 255, "void", False, True, (0, 0, 0)),
    Label("ego vehicle", 1, 255, "void", False, True, (0, 0, 0)),
    Label("rectification border", 2, 255, "void", False, True, (0, 0, 0)),
    Label("out of roi", 3, 255, "void", False, True, (0, 0, 0)),
    Label("static", 4, 255, "void", False, True, (0, 0, 0)),
    Label("dynamic", 5, 255, "void", False, True, (111, 74, 0)),
    Label("ground", 6, 255, "void", False, True, (81, 0, 81)),
    Label("road", 7, 0, "flat", False, False, (128, 64, 128)),
    Label("sidewalk", 8, 1, "flat", False, False, (244, 35, 232)),
    Label("parking", 9, 255, "flat", False, True, (250, 170, 160)),
    Label("rail track", 10, 255, "flat", False, True, (230, 150, 140)),
    Label("building", 11, 2, "construction", False, False, (70, 70, 70)),
    Label("wall", 12, 3, "construction", False, False, (102, 102, 156)),
    Label("fence", 13, 4, "construction", False, False, (190, 153, 153)),
    Label("guard rail", 14, 255, "construction", False, True, (180, 165, 180)),
    Label("bridge", 15, 255, "construction", False, True, (150, 100, 100)),
    Label("tunnel", 16, 255, "construction", False, True, (150, 120, 90)),
    Label("pole", 17, 5, "object", False, False, (153, 153, 153)),
    Label("polegroup", 18, 255, "object", False, True, (153, 153, 153)),
    Label("traffic light", 19, 6, "object", False, False, (250, 170, 30)),
    Label("traffic sign", 20, 7, "object", False, False, (220, 220, 0)),
    Label("vegetation", 21, 8, "nature", False, False, (107, 142, 35)),
    Label("terrain", 22, 9, "nature", False, False, (152, 251, 152)),
    Label("sky", 23, 10, "sky", False, False, (70, 130, 180)),
    Label("person", 24, 11, "human", True, False, (220, 20, 60)),
    Label("rider", 25, 12, "human", True, False, (255, 0, 0)),
    Label("car", 26, 13, "vehicle", True, False, (0, 0, 142)),
    Label("truck", 27, 14, "vehicle", True, False, (0, 0, 70)),
    Label("bus", 28, 15, "vehicle", True, False, (0, 60, 100)),
    Label("caravan", 29, 255, "vehicle", True, True, (0, 0, 90)),
    Label("trailer", 30, 255, "vehicle", True, True, (0, 0, 110)),
    Label("train", 31, 16, "vehicle", True, False, (0, 80, 100)),
    Label("motorcycle", 32, 17, "vehicle", True, False, (0, 0, 230)),
    Label("bicycle", 33, 18, "vehicle", True, False, (119, 11, 32)),
    Label("license plate", -1, -1, "vehicle", False, True, (0, 0, 142)),
)

BY_NAME: dict[str, Label] = {label.name: label for label in LABELS}
BY_ID: dict[int, Label] = {label.id: label for label in LABELS if label.id >= 0}

# Ids a labelIds PNG may hold (license plate, -1, is never drawn).
VALID_IDS = np.array(sorted(BY_ID), dtype=np.int64)
# Classes whose pixels carry an instance number (instanceIds = id * 1000 + k).
INSTANCE_IDS: frozenset[int] = frozenset(label.id for label in LABELS if label.has_instances)
INSTANCE_FACTOR = 1000

# The classes the pipeline inserts, and the ground each may stand on (docs/synthetic-scenes.md).
PERSON = BY_NAME["person"].id
CAR = BY_NAME["car"].id
TARGET_CLASSES: tuple[int, ...] = (PERSON, CAR)
SUPPORT: dict[int, frozenset[int]] = {
    PERSON: frozenset(BY_NAME[n].id for n in ("sidewalk", "road", "terrain", "parking", "ground")),
    CAR: frozenset(BY_NAME[n].id for n in ("road", "parking")),
}
# Mean real height in metres, for the ground-plane scale rule.
MEAN_HEIGHT_M: dict[int, float] = {PERSON: 1.72, CAR: 1.55}

# Part ids of the ``_gtFine_partIds.png`` maps (0 = not part of a person or car).
PARTS: dict[str, int] = {
    "person.head": 1,
    "person.torso": 2,
    "person.arm": 3,
    "person.leg": 4,
    "car.body": 5,
    "car.window": 6,
    "car.wheel": 7,
    "car.light": 8,
}
PART_NAMES: dict[int, str] = {v: k for k, v in PARTS.items()}


def color_lut() -> np.ndarray:
    """256x3 uint8 table: label id -> Cityscapes colour (unknown ids are black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for label in BY_ID.values():
        lut[label.id] = label.color
    return lut


def train_id_lut() -> np.ndarray:
    """256 uint8 table: label id -> train id (255 = ignored)."""
    lut = np.full(256, 255, dtype=np.uint8)
    for label in BY_ID.values():
        lut[label.id] = label.train_id if label.train_id >= 0 else 255
    return lut


def label_of(value: int) -> int:
    """Label id of an instanceIds value (``id * 1000 + k`` or a plain label id)."""
    return value // INSTANCE_FACTOR if value >= INSTANCE_FACTOR else value
