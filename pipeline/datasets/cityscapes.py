"""Read a dataset in the official Cityscapes layout into ``Scene`` objects.

Layout (``root`` = the folder holding ``leftImg8bit/`` and ``gtFine/``)::

    leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_labelIds.png      (8-bit label ids)
    gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png   (16-bit, id * 1000 + k)
    gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_polygons.json     (optional: painter's order)
    gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_partIds.png       (optional, built-in dataset)
    camera/{split}/{city}/{city}_{seq}_{frame}_camera.json              (optional)

Frames are the images under ``leftImg8bit``; each must have its labelIds and instanceIds. Every
problem - a missing or truncated file, sizes that differ, a label id Cityscapes does not have, an
instanceIds map that disagrees with the labelIds - raises ``DatasetError`` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import DatasetError
from pipeline.io import read_json, read_rgb, read_single_channel
from pipeline.labels import BY_ID, BY_NAME, INSTANCE_FACTOR, INSTANCE_IDS
from pipeline.scene import Camera, FrameId, Scene

IMAGE_SUFFIX = "_leftImg8bit.png"


@dataclass(frozen=True)
class FramePaths:
    frame: FrameId
    image: Path
    label_ids: Path
    instance_ids: Path
    polygons: Path
    parts: Path
    camera: Path


def frame_paths(root: Path, frame: FrameId) -> FramePaths:
    """Where each file of ``frame`` lives in a Cityscapes tree rooted at ``root``."""
    root = Path(root)
    gt = root / "gtFine" / frame.split / frame.city / f"{frame.stem}_gtFine"
    return FramePaths(
        frame=frame,
        image=root / "leftImg8bit" / frame.split / frame.city / f"{frame.stem}{IMAGE_SUFFIX}",
        label_ids=Path(f"{gt}_labelIds.png"),
        instance_ids=Path(f"{gt}_instanceIds.png"),
        polygons=Path(f"{gt}_polygons.json"),
        parts=Path(f"{gt}_partIds.png"),
        camera=root / "camera" / frame.split / frame.city / f"{frame.stem}_camera.json",
    )


class CityscapesDataset:
    """The frames of a Cityscapes tree, read lazily: ``len(ds)``, ``ds[i]``, iteration."""

    def __init__(self, root: str | Path, splits: list[str] | None = None):
        self.root = Path(root)
        image_root = self.root / "leftImg8bit"
        if not image_root.is_dir():
            raise DatasetError(self.root, "not a Cityscapes tree (no leftImg8bit/ folder)")
        found = sorted(p.name for p in image_root.iterdir() if p.is_dir())
        self.splits = [s for s in (splits or found) if s in found]
        self.frames: list[FrameId] = []
        for split in self.splits:
            for path in sorted((image_root / split).glob(f"*/*{IMAGE_SUFFIX}")):
                stem = path.name[: -len(IMAGE_SUFFIX)]
                try:
                    frame = FrameId.parse(split, stem)
                except ValueError as exc:
                    raise DatasetError(path, str(exc)) from None
                if frame.city != path.parent.name:
                    raise DatasetError(path, f"file name says city {frame.city!r}, folder says {path.parent.name!r}")
                self.frames.append(frame)
        if not self.frames:
            wanted = ", ".join(splits) if splits else "any split"
            raise DatasetError(
                self.root, f"empty dataset: no leftImg8bit/{{split}}/{{city}}/*{IMAGE_SUFFIX} in {wanted}"
            )

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> Scene:
        return read_scene(self.root, self.frames[i])

    def frame_id(self, i: int) -> FrameId:
        return self.frames[i]

    def __iter__(self):
        for frame in self.frames:
            yield read_scene(self.root, frame)

    def paths(self, i: int) -> FramePaths:
        return frame_paths(self.root, self.frames[i])


def read_scene(root: Path, frame: FrameId) -> Scene:
    paths = frame_paths(root, frame)
    image = read_rgb(paths.image)
    for required in (paths.label_ids, paths.instance_ids):
        if not required.is_file():
            kind = "labelIds" if required == paths.label_ids else "instanceIds"
            raise DatasetError(required, f"missing {kind} file for frame {frame.stem}")
    labels = read_single_channel(paths.label_ids, np.uint8)
    instance_ids = read_single_channel(paths.instance_ids, np.uint16).astype(np.int32)
    for path, array in ((paths.label_ids, labels), (paths.instance_ids, instance_ids)):
        if array.shape[:2] != image.shape[:2]:
            raise DatasetError(
                path, f"size {array.shape[1]}x{array.shape[0]} differs from the image's "
                f"{image.shape[1]}x{image.shape[0]} ({paths.image.name})"
            )
    check_label_ids(labels, paths.label_ids)
    check_instance_ids(instance_ids, labels, paths.instance_ids)

    parts = None
    if paths.parts.is_file():
        parts = read_single_channel(paths.parts, np.uint8)
        if parts.shape != labels.shape:
            raise DatasetError(paths.parts, "size differs from the labelIds")
    camera = None
    if paths.camera.is_file():
        try:
            camera = Camera.from_json(read_json(paths.camera))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(paths.camera, f"not a Cityscapes camera file ({exc!r})") from None
    order = _polygon_order(paths.polygons) if paths.polygons.is_file() else None
    scene = Scene(frame, image, labels, instance_ids, camera, parts)
    return scene.index(order)


def check_label_ids(labels: np.ndarray, path: Path) -> None:
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    bad = [int(v) for v in present if int(v) not in BY_ID]
    if bad:
        raise DatasetError(path, f"label ids {bad[:5]} are not Cityscapes label ids (0-33)")


def check_instance_ids(instance_ids: np.ndarray, labels: np.ndarray, path: Path) -> None:
    """instanceIds must encode the labelIds: ``value // 1000`` (or the value itself) is the label."""
    decoded = np.where(instance_ids >= INSTANCE_FACTOR, instance_ids // INSTANCE_FACTOR, instance_ids)
    wrong = decoded != labels
    if wrong.any():
        y, x = (int(v[0]) for v in np.nonzero(wrong))
        raise DatasetError(
            path, f"disagrees with the labelIds at {int(wrong.sum())} pixels (first at x={x}, y={y}: "
            f"instance value {int(instance_ids[y, x])}, label {int(labels[y, x])})"
        )
    objects = np.unique(instance_ids[instance_ids >= INSTANCE_FACTOR]) // INSTANCE_FACTOR
    stray = sorted(set(objects.tolist()) - INSTANCE_IDS)
    if stray:
        raise DatasetError(path, f"instance values for label ids {stray}, which have no instances")


def _polygon_order(path: Path) -> list[int]:
    """Instance values in the order the polygons JSON paints them (its painter's order)."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise DatasetError(path, "not a Cityscapes polygons file (no 'objects' list)")
    counts: dict[int, int] = {}
    order = []
    for obj in data["objects"]:
        label = BY_NAME.get(str(obj.get("label", "")))
        if obj.get("deleted") or label is None or not label.has_instances:
            continue
        k = counts.get(label.id, 0)
        counts[label.id] = k + 1
        order.append(label.id * INSTANCE_FACTOR + k)
    return order
