"""Write scenes as a COCO instances JSON, in the Cityscapes-as-COCO convention.

Category ids are the Cityscapes label ids of the eight evaluated instance classes (person 24, rider
25, car 26, truck 27, bus 28, train 31, motorcycle 32, bicycle 33); ``file_name`` is relative to
``leftImg8bit/{split}``; the file is ``annotations/instancesonly_filtered_gtFine_{split}.json``.
Image and annotation ids start at 1 (COCOeval reads an id of 0 as "unmatched"). Objects get polygons,
crowd regions (``persongroup`` ...) RLE with ``iscrowd: 1``; ``area`` and ``bbox`` are always those of
the pixel mask (``pycocotools.mask.area`` / ``toBbox``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.io import atomic_write_json
from pipeline.labels import BY_ID, BY_NAME
from pipeline.masks import encode_rle, mask_bbox
from pipeline.polygons import coco_polygons
from pipeline.scene import Instance, Scene

COCO_CLASSES: tuple[int, ...] = tuple(
    BY_NAME[n].id for n in ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
)


def coco_file(root: str | Path, split: str) -> Path:
    """The COCO file inside a Cityscapes tree (``ctxaug convert``'s layout)."""
    return Path(root) / "annotations" / f"instancesonly_filtered_gtFine_{split}.json"


def augmented_coco_files(root: str | Path, split: str) -> tuple[Path, Path]:
    """The augment stage's layout, each downstream arm's too: the COCO file beside the Cityscapes tree, and the
    image folder its ``file_name``s are relative to."""
    root = Path(root)
    return root / "coco" / "annotations" / f"instances_{split}.json", root / "cityscapes" / "leftImg8bit" / split


class CocoWriter:
    """Collects images and annotations; ``document()`` is the JSON, ``write(path)`` saves it."""

    def __init__(self, classes: tuple[int, ...] = COCO_CLASSES):
        self.classes = classes
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, scene: Scene, file_name: str, extra: Callable[[Instance], dict] | None = None) -> int:
        """Add one frame; ``extra(instance)`` may add fields (e.g. ``inserted``) to its annotation."""
        height, width = scene.size
        return self.add_image(file_name, height, width, scene_annotations(scene, self.classes, extra))

    def add_image(self, file_name: str, height: int, width: int, annotations: list[dict]) -> int:
        """Add one image with annotations made by ``scene_annotations``; ids are assigned here."""
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for ann in annotations:
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id, **ann})
        return image_id

    def document(self) -> dict:
        categories = [
            {"id": c, "name": BY_ID[c].name, "supercategory": BY_ID[c].category} for c in self.classes
        ]
        return {"images": self.images, "annotations": self.annotations, "categories": categories}

    def write(self, path: str | Path) -> None:
        atomic_write_json(Path(path), self.document())


def scene_annotations(scene: Scene, classes: tuple[int, ...] = COCO_CLASSES,
                      extra: Callable[[Instance], dict] | None = None) -> list[dict]:
    """The COCO annotations of a scene's instances of ``classes``, without ids (``CocoWriter.add_image``
    numbers them), so a frame's annotations can be made in a worker and numbered when merged."""
    out = []
    for inst in scene.instances:
        if inst.label_id not in classes:
            continue
        x, y, w, h = inst.bbox
        window = scene.instance_ids[y : y + h, x : x + w] == inst.value  # the bbox holds every pixel
        area = int(window.sum())
        if area == 0:
            continue
        # What pycocotools.mask.area / toBbox give for this mask, without encoding the whole image.
        bx, by, bw, bh = mask_bbox(window)
        bbox = [float(x + bx), float(y + by), float(bw), float(bh)]
        if inst.iscrowd:
            mask = np.zeros(scene.size, bool)
            mask[y : y + h, x : x + w] = window
            segmentation = encode_rle(mask)
        else:
            segmentation = coco_polygons(window, offset=(x, y), size=scene.size)
        ann = {"category_id": inst.label_id, "segmentation": segmentation, "area": area, "bbox": bbox,
               "iscrowd": int(inst.iscrowd)}
        if extra is not None:
            ann.update(extra(inst))
        out.append(ann)
    return out


def cityscapes_file_name(scene: Scene) -> str:
    """``file_name`` relative to ``leftImg8bit/{split}``, as Cityscapes-as-COCO tools expect."""
    return f"{scene.frame.city}/{scene.frame.stem}_leftImg8bit.png"
