"""Read a semantic-label dataset - an image folder and a label-map folder per split, or a list file of
``image label`` pairs - into ``Scene`` objects (``data.format: semantic``; CamVid, BDD100K, Mapillary,
KITTI, ADE20K and most in-house sets come this way).

Layout, per split (``data.semantic``; paths relative to ``data.root``)::

    lists:  {train: train.txt}            # one line per frame: "image label" (CamVid's train.txt)
    images: {train: train}                # or: an image folder ...
    labels: {train: trainannot}           # ... and a label folder: label = image stem + label_suffix

Label maps hold one dataset class id per pixel (8- or 16-bit, one channel). ``data.semantic.classes``
maps each id to a pipeline class by name (a Cityscapes label name) or to ``ignore`` (unlabeled, 0); an id
it does not name stops the read with one line naming the file and the id.

Instances: the label maps have none, so every connected component (8-connected) of a class with
instances (person, car, rider, ...) is one candidate object, and the blob policy decides what it is:

- **fragment**: fewer than ``fragment_area`` pixels - a sliver the labelling left (a hand behind a pole, a
  wheel under a car). Written as a crowd region (the plain label id): it counts as an existing object for
  placement and overlap (its pixels are person/car), never as a training example.
- **group**: wider than ``single_max_aspect[class]`` times its height, less solid (area over its convex
  hull's) than ``single_min_solidity[class]``, or with two or more peaks on its top outline (heads side by
  side) whose prominence is at least ``group_peaks[class]`` of its height: a row of parked cars, people
  walking side by side. A crowd region too, as Cityscapes labels a group it cannot split - present for
  placement and overlap, never a training example of one object's shape, scale or appearance.
- **single**: anything else: an object, ``id * 1000 + k``, numbered far to near (by its bottom row), which
  is also the painter's order.

The counts of each kind are carried on the crowd instance (``meta``), so the prepare stage reports what it
dropped and why. Frames have no camera: the scale rule reads a ground plane fitted to the dataset's own
single objects (``rules.learned``; ``pipeline.rules.Yardstick``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage, signal

from pipeline.config import SemanticConfig
from pipeline.errors import DatasetError
from pipeline.io import read_rgb, read_single_channel
from pipeline.labels import BY_ID, BY_NAME, INSTANCE_FACTOR, INSTANCE_IDS
from pipeline.scene import FrameId, Scene

IGNORE = "ignore"
_EIGHT = np.ones((3, 3), bool)
_STEM_RE = re.compile(r"^(?P<city>.*?)[_-]?(?P<frame>\d+)$")


@dataclass(frozen=True)
class SemanticFrame:
    frame: FrameId
    image: Path
    label: Path


def frame_id_of(split: str, stem: str, index: int) -> FrameId:
    """A Cityscapes frame id for any file name: ``city_seq_frame`` as it is; ``NAME_123`` (CamVid's
    ``0001TP_006690``) becomes city NAME, frame 123; anything else city ``frame``, frame = its index."""
    try:
        return FrameId.parse(split, stem)
    except ValueError:
        pass
    match = _STEM_RE.match(stem)
    if match:
        city = re.sub(r"[^A-Za-z0-9-]", "-", match["city"]) or "frame"
        return FrameId(split, city, 0, int(match["frame"]))
    return FrameId(split, "frame", 0, index)


def class_lut(cfg: SemanticConfig) -> np.ndarray:
    """Dataset id -> Cityscapes label id (0 for ``ignore``), -1 for ids the class map does not name."""
    lut = np.full(65536, -1, np.int32)
    for dataset_id, name in cfg.classes.items():
        lut[dataset_id] = 0 if name == IGNORE else BY_NAME[name].id
    return lut


def classify_component(mask: np.ndarray, label_id: int, cfg: SemanticConfig) -> str:
    """``fragment``, ``group`` or ``single`` for one connected component (its mask cut to its box)."""
    area = int(mask.sum())
    if area < cfg.fragment_area:
        return "fragment"
    name = BY_ID[label_id].name
    h, w = mask.shape
    if name in cfg.single_max_aspect and w > cfg.single_max_aspect[name] * h:
        return "group"
    if name in cfg.single_min_solidity:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = cv2.convexHull(np.concatenate(contours))
        # Pixel area against the hull through pixel centres: half a pixel of border counts on each side.
        hull_area = cv2.contourArea(hull) + cv2.arcLength(hull, True) / 2 + 1
        if area / hull_area < cfg.single_min_solidity[name]:
            return "group"
    if name in cfg.group_peaks and top_peaks(mask, cfg.group_peaks[name]) > 1:
        return "group"
    return "single"


def top_peaks(mask: np.ndarray, prominence: float) -> int:
    """Peaks of the mask's top outline (its height in each column) at least ``prominence`` of its height
    above what separates them: one for a person's head, two or more for people side by side."""
    profile = np.where(mask.any(axis=0), mask.shape[0] - np.argmax(mask, axis=0), 0)
    peaks, _ = signal.find_peaks(np.pad(profile, 1), prominence=prominence * mask.shape[0])
    return len(peaks)


def components(labels: np.ndarray, cfg: SemanticConfig) -> tuple[np.ndarray, list[int], Counter]:
    """The instanceIds map of a label map (Cityscapes encoding), the single objects' values far to near, and
    per (class name, kind) the count of components."""
    instance_ids = labels.astype(np.int32)
    singles: list[tuple[int, int, np.ndarray]] = []  # (bottom row, label id, pixel index)
    counts: Counter = Counter()
    for label_id in sorted(set(np.unique(labels).tolist()) & INSTANCE_IDS):
        comp, _ = ndimage.label(labels == label_id, structure=_EIGHT)
        for k, box in enumerate(ndimage.find_objects(comp), start=1):
            mask = comp[box] == k
            kind = classify_component(mask, label_id, cfg)
            counts[(BY_ID[label_id].name, kind)] += 1
            if kind == "single":
                ys, xs = np.nonzero(mask)
                singles.append((box[0].start + int(ys.max()), label_id,
                                (ys + box[0].start, xs + box[1].start)))
    numbered: Counter = Counter()
    order = []
    for _, label_id, pixels in sorted(singles, key=lambda s: (s[0], s[1])):
        value = label_id * INSTANCE_FACTOR + numbered[label_id]
        numbered[label_id] += 1
        instance_ids[pixels] = value
        order.append(value)
    return instance_ids, order, counts


class SemanticDataset:
    """The frames of one split of a semantic-label dataset, read lazily: ``len(ds)``, ``ds[i]``, iteration."""

    def __init__(self, root: str | Path, split: str, cfg: SemanticConfig):
        self.root = Path(root)
        self.split = split
        self.cfg = cfg
        self.lut = class_lut(cfg)
        if not self.root.is_dir():
            raise DatasetError(self.root, "not found (data.root of a semantic-label dataset)")
        pairs = self._pairs(split)
        if not pairs:
            raise DatasetError(self._source(split), f"empty dataset: no frames in split {split!r}")
        self.frames: list[SemanticFrame] = []
        seen: dict[FrameId, Path] = {}
        for i, (image, label) in enumerate(pairs):
            frame = frame_id_of(split, image.stem, i)
            if frame in seen:
                raise DatasetError(image, f"names the same frame ({frame.stem}) as {seen[frame]}: rename one")
            seen[frame] = image
            if not image.is_file():
                raise DatasetError(image, f"missing image (listed in {self._source(split)})")
            if not label.is_file():
                raise DatasetError(label, f"missing label map for {image.name}")
            self.frames.append(SemanticFrame(frame, image, label))

    def _source(self, split: str) -> Path:
        s = self.cfg
        return self.root / (s.lists.get(split) or s.images.get(split) or split)

    def _pairs(self, split: str) -> list[tuple[Path, Path]]:
        s = self.cfg
        if split in s.lists:
            path = self.root / s.lists[split]
            if not path.is_file():
                raise DatasetError(path, f"missing list file of split {split!r} (data.semantic.lists)")
            pairs = []
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2:
                    raise DatasetError(path, f"line {n}: expected 'image label', got {line.strip()!r}")
                pairs.append((self._inside(fields[0], path), self._inside(fields[1], path)))
            return pairs
        if split not in s.images or split not in s.labels:
            raise DatasetError(self.root, f"split {split!r} has no list file and no image + label folders "
                               "(data.semantic.lists, or data.semantic.images and .labels)")
        images, labels = self.root / s.images[split], self.root / s.labels[split]
        for folder in (images, labels):
            if not folder.is_dir():
                raise DatasetError(folder, f"missing folder of split {split!r} (data.semantic)")
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        return [(p, labels / f"{p.stem}{s.label_suffix}") for p in files]

    def _inside(self, name: str, listed_in: Path) -> Path:
        path = (self.root / name).resolve()
        if Path(name).is_absolute() or not path.is_relative_to(self.root.resolve()):
            raise DatasetError(listed_in, f"{name!r} lies outside data.root {self.root}")
        return self.root / name

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def frame_id(self, i: int) -> FrameId:
        return self.frames[i].frame

    def __getitem__(self, i: int) -> Scene:
        f = self.frames[i]
        image = read_rgb(f.image)
        raw = read_single_channel(f.label, np.uint16)
        if raw.shape != image.shape[:2]:
            raise DatasetError(f.label, f"size {raw.shape[1]}x{raw.shape[0]} differs from the image's "
                               f"{image.shape[1]}x{image.shape[0]} ({f.image.name})")
        mapped = self.lut[raw]
        if (mapped < 0).any():
            bad = sorted(set(raw[mapped < 0].tolist()))
            raise DatasetError(f.label, f"label id {bad[0]} is not in data.semantic.classes"
                               + (f" (nor {bad[1:5]})" if len(bad) > 1 else "") + ": map it to a class or 'ignore'")
        labels = mapped.astype(np.uint8)
        instance_ids, order, counts = components(labels, self.cfg)
        scene = Scene(f.frame, image, labels, instance_ids).index(order)
        for inst in scene.instances:
            if inst.iscrowd:  # one crowd region per class: what it gathers
                inst.meta.update({kind: n for (name, kind), n in counts.items()
                                  if name == inst.name and kind != "single"})
        return scene
