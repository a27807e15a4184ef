"""Read a COCO instances dataset (JSON + image folder) into ``Scene`` objects.

COCO has objects but no stuff: pixels outside every annotation are ``unlabeled`` (0). Categories map
onto Cityscapes classes through ``CocoConfig`` (params ``coco``): the explicit ``category_map`` first,
then a category named like a Cityscapes label keeps that label (so Cityscapes-as-COCO files, whose
category ids are Cityscapes ids, read back as written), and anything else becomes ``unmapped``.

Annotations are painted largest first, so a small object in front of a large one stays visible;
objects of classes with instances get ``id * 1000 + k`` in that order, crowd annotations
(``iscrowd: 1``) the plain label id. Segmentations may be polygons, uncompressed RLE (``counts`` a
list) or compressed RLE (``counts`` a string). Every problem raises ``DatasetError`` naming the file:
an invalid segmentation, a ``file_name`` that leaves the image root, an image whose size disagrees with
its entry, an empty dataset.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from pipeline.config import CocoConfig
from pipeline.errors import DatasetError
from pipeline.io import read_json, read_rgb
from pipeline.labels import BY_NAME, INSTANCE_FACTOR, INSTANCE_IDS
from pipeline.scene import FrameId, Scene

_IMAGE_SUFFIX = "_leftImg8bit"


# The largest image the readers take: JPEG's side limit, and OpenCV's default pixel limit for decoding.
MAX_SIDE = 65535
MAX_PIXELS = 2**30


class CocoDataset:
    """Frames of one COCO split: ``len(ds)``, ``ds[i]``, iteration (images read lazily)."""

    def __init__(self, image_root: str | Path, annotations: str | Path, split: str = "train",
                 cfg: CocoConfig | None = None):
        self.image_root = Path(image_root)
        self.json_path = Path(annotations)
        self.split = split
        cfg = cfg or CocoConfig()
        data = read_json(self.json_path)
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise DatasetError(self.json_path, "not a COCO instances file (no 'images' list)")
        if not data["images"]:
            raise DatasetError(self.json_path, "empty dataset: the 'images' list is empty")
        self.category_label = self._map_categories(data.get("categories", []), cfg)
        self.images = []
        seen_images: set[int] = set()
        root = self.image_root.resolve()
        for entry in data["images"]:
            try:
                image_id, file_name = int(entry["id"]), str(entry["file_name"])
                size = (int(entry["height"]), int(entry["width"]))
            except (KeyError, TypeError, ValueError):
                raise DatasetError(self.json_path, f"image entry {entry!r} lacks id/file_name/height/width") from None
            if not (1 <= size[0] <= MAX_SIDE and 1 <= size[1] <= MAX_SIDE and size[0] * size[1] <= MAX_PIXELS):
                # Checked before any mask is decoded at that size (pycocotools would allocate or crash).
                raise DatasetError(self.json_path, f"image {image_id}: {size[1]}x{size[0]} is not an image size "
                                   f"(1 to {MAX_SIDE} pixels a side, at most {MAX_PIXELS} pixels)")
            if image_id in seen_images:
                raise DatasetError(self.json_path, f"image id {image_id} appears twice in 'images'")
            seen_images.add(image_id)
            path = (self.image_root / file_name).resolve()
            if Path(file_name).is_absolute() or not path.is_relative_to(root):
                raise DatasetError(self.json_path, f"image {image_id}: file_name {file_name!r} escapes the "
                                   f"image root {self.image_root}")
            self.images.append((image_id, file_name, size))
        self.annotations: dict[int, list[dict]] = {image_id: [] for image_id, _, _ in self.images}
        seen_annotations: set[str] = set()
        for ann in data.get("annotations", []):
            image_id = ann.get("image_id") if isinstance(ann, dict) else None
            if image_id not in self.annotations:
                raise DatasetError(self.json_path, f"annotation {ann.get('id') if isinstance(ann, dict) else ann!r}:"
                                   f" image_id {image_id!r} is not in 'images'")
            # COCOeval indexes annotations by id: a repeated id silently mis-scores, so it is refused.
            if "id" in ann:
                if str(ann["id"]) in seen_annotations:
                    raise DatasetError(self.json_path, f"annotation id {ann['id']} appears twice in 'annotations'")
                seen_annotations.add(str(ann["id"]))
            self.annotations[image_id].append(ann)
        # Check every segmentation now, so a bad file fails before any output is written.
        for image_id, _, (height, width) in self.images:
            for ann in self.annotations[image_id]:
                _decode(ann, height, width, self.json_path)

    def _map_categories(self, categories: list, cfg: CocoConfig) -> dict[int, int]:
        out = {}
        for cat in categories:
            try:
                cat_id, name = int(cat["id"]), str(cat["name"])
            except (KeyError, TypeError, ValueError):
                raise DatasetError(self.json_path, f"category {cat!r} lacks id/name") from None
            target = cfg.category_map.get(name, name if name in BY_NAME else cfg.unmapped)
            if target not in BY_NAME or BY_NAME[target].id < 0:
                raise DatasetError(self.json_path, f"category {name!r} maps to {target!r}, "
                                   "which is not a Cityscapes label name (params coco.category_map/unmapped)")
            out[cat_id] = BY_NAME[target].id
        return out

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def frame_id(self, i: int) -> FrameId:
        image_id, file_name, _ = self.images[i]
        stem = Path(file_name).stem
        if stem.endswith(_IMAGE_SUFFIX):
            stem = stem[: -len(_IMAGE_SUFFIX)]
        try:
            return FrameId.parse(self.split, stem)
        except ValueError:
            return FrameId(self.split, "coco", image_id, 0)

    def __getitem__(self, i: int) -> Scene:
        image_id, file_name, (height, width) = self.images[i]
        path = self.image_root / file_name
        image = read_rgb(path)
        if image.shape[:2] != (height, width):
            raise DatasetError(path, f"image is {image.shape[1]}x{image.shape[0]} but {self.json_path.name} "
                               f"says {width}x{height}")
        labels = np.zeros((height, width), np.uint8)
        instance_ids = np.zeros((height, width), np.int32)
        counts: dict[int, int] = {}
        order = []
        anns = sorted(self.annotations[image_id], key=lambda a: -float(a.get("area", 0) or 0))
        for ann in anns:
            label_id = self.category_label.get(int(ann.get("category_id", -1)))
            if label_id is None:
                raise DatasetError(self.json_path, f"annotation {ann.get('id')}: category_id "
                                   f"{ann.get('category_id')!r} is not in 'categories'")
            if label_id == 0:
                continue
            mask = _decode(ann, height, width, self.json_path)
            if not mask.any():
                continue
            labels[mask] = label_id
            if label_id in INSTANCE_IDS and not ann.get("iscrowd", 0):
                k = counts.get(label_id, 0)
                counts[label_id] = k + 1
                value = label_id * INSTANCE_FACTOR + k
                order.append(value)
            else:
                value = label_id
            instance_ids[mask] = value
        scene = Scene(self.frame_id(i), image, labels, instance_ids)
        return scene.index(order)



def _decode(ann: dict, height: int, width: int, path: Path) -> np.ndarray:
    """The annotation's binary mask; an invalid segmentation raises ``DatasetError``."""
    seg = ann.get("segmentation")
    where = f"annotation {ann.get('id')}"
    if isinstance(seg, list):
        if not seg:
            raise DatasetError(path, f"{where}: invalid segmentation (empty polygon list)")
        for ring in seg:
            if (not isinstance(ring, list) or len(ring) < 6 or len(ring) % 2
                    or not all(isinstance(v, int | float) and math.isfinite(v) for v in ring)):
                raise DatasetError(path, f"{where}: invalid segmentation (a polygon needs an even number "
                                   ">= 6 of finite coordinates)")
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        if list(seg["size"]) != [height, width]:
            raise DatasetError(path, f"{where}: invalid segmentation (RLE size {seg['size']} but the image is "
                               f"{height}x{width})")
        counts = seg["counts"]
        try:
            if isinstance(counts, list):
                if not all(isinstance(c, int) and c >= 0 for c in counts) or sum(counts) != height * width:
                    raise ValueError("uncompressed RLE counts must be non-negative and sum to height*width")
                rle = mask_utils.frPyObjects(seg, height, width)
            elif isinstance(counts, str):
                runs = _compressed_counts(counts)
                if min(runs, default=0) < 0 or sum(runs) != height * width:
                    raise ValueError("compressed counts do not cover height*width pixels")
                rle = {"size": [height, width], "counts": counts.encode("ascii")}
            else:
                raise ValueError("counts must be a list or a string")
            mask = mask_utils.decode(rle)
        except (ValueError, UnicodeEncodeError, TypeError) as exc:
            raise DatasetError(path, f"{where}: invalid segmentation (bad RLE: {exc})") from None
        return mask.astype(bool)
    else:
        raise DatasetError(path, f"{where}: invalid segmentation (neither polygons nor RLE)")
    return mask_utils.decode(rle).astype(bool)


def _compressed_counts(text: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string, to validate it before pycocotools trusts it.

    Each run is a little-endian sequence of 5-bit groups in characters offset by 48; bit 0x20 says
    another group follows, bit 0x10 of the last group is the sign; from the third run on, values are
    stored as differences to the run two places back.
    """
    runs: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise ValueError("compressed counts end in the middle of a run")
            c = ord(text[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {text[pos]!r} cannot appear in compressed counts")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs
