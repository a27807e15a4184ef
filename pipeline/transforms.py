"""``InsertInstances``: the insertion GAN as an albumentations 2.x transform, for online augmentation.

Contract (targets of an ``A.Compose``):

- ``image``: H x W x 3 uint8 RGB - gets the new objects' pixels.
- ``mask``: H x W Cityscapes labelIds - required: it is the scene the model reads; new objects are
  written into it.
- ``masks`` (optional): one binary mask per existing object, the persons/cars (and other objects) of
  the image. Existing masks are carved where a new object covers them; one mask per new object is
  appended. Without ``masks``, existing objects are the connected regions of each object class.
- ``bboxes`` (optional): with ``masks``, the boxes of the same objects in the same order - they are
  recomputed from the carved masks - and one box per new object is appended, labelled with the class
  name (``labels="name"``) or its Cityscapes id (``labels="id"``) in every label field.

An insertion that would hide an existing object entirely, or leave it under the visibility floors, is
not made, so existing masks and boxes keep their count and order. Randomness comes from the transform's
generator (``Compose(seed=...)`` makes it reproducible). Frames have no camera file here: the scale rule
uses a ground plane fitted to the frame's own persons and cars (skipped with fewer than three usable
ones); the overlap, size and visibility rules apply (``augment`` params).

    transform = A.Compose([
        InsertInstances.from_trained("models/insertion", params="params.yaml", p=0.5),
        A.HorizontalFlip(p=0.5),
        A.RandomCrop(256, 256),
    ], bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]), seed=0)
    out = transform(image=image, mask=label_ids, masks=instance_masks, bboxes=boxes, labels=names)
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from albumentations.core.transforms_interface import DualTransform

from pipeline.appearance import CropBank
from pipeline.config import load_config
from pipeline.insertion import Inserter
from pipeline.labels import BY_ID, INSTANCE_FACTOR, INSTANCE_IDS
from pipeline.masks import mask_bbox
from pipeline.scene import FrameId, Scene
from pipeline.trained_gan import load_trained

_FRAME = FrameId("train", "online", 0, 0)


class InsertInstances(DualTransform):
    """Insert new persons and cars where they fit, with their shapes, pixels, masks and boxes."""

    def __init__(self, inserter: Inserter, labels: str = "name", p: float = 0.5):
        super().__init__(p=p)
        if labels not in ("name", "id"):
            raise ValueError(f"labels must be 'name' or 'id', got {labels!r}")
        self.inserter = inserter
        self.inserter.protect_existing = True
        self.labels = labels

    @classmethod
    def from_trained(cls, model: str = "models/insertion", params: str = "params.yaml", device: str = "cpu",
                     labels: str = "name", p: float = 0.5) -> InsertInstances:
        """Load the trained model and crop bank named in ``params`` (``augment`` section)."""
        cfg = load_config(params)
        gan = load_trained(model, cfg, torch.device(device))
        bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
        return cls(Inserter(gan, bank, cfg, device), labels=labels, p=p)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("labels",)

    # ---------------------------------------------------------------------------------- params
    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        image, labels = data.get("image"), data.get("mask")
        if image is None or labels is None:
            raise ValueError("InsertInstances needs image= and mask= (the labelIds map) in the call")
        labels = np.asarray(labels)
        if labels.ndim == 3:
            labels = labels[..., 0]
        masks = data.get("masks")
        given = masks is not None and len(masks) > 0
        existing = [np.asarray(m).astype(bool) for m in masks] if given else _components(labels)
        ids, _ = _instance_map(labels.astype(np.uint8), existing)
        scene = Scene(_FRAME, np.ascontiguousarray(image), labels.astype(np.uint8).copy(), ids)
        scene.index()
        seed = int(self.random_generator.integers(2**63))
        report = self.inserter.insert(scene, seed)
        new_ids = [inst.value for inst in scene.instances if "insert_id" in inst.meta]
        new_masks = [scene.instance_ids == v for v in new_ids]
        covered = np.logical_or.reduce(new_masks) if new_masks else None
        return {
            "inserted_image": scene.image,
            "inserted_labels": scene.labels,
            "existing_masks": [m & ~covered for m in existing] if given and new_masks else None,
            "new_masks": new_masks,
            "new_classes": [v // INSTANCE_FACTOR for v in new_ids],
            "report": report,
        }

    def apply_with_params(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        # albumentations skips an empty ``masks`` list; new objects still need their masks.
        if "masks" in kwargs and len(kwargs["masks"]) == 0 and params.get("new_masks"):
            h, w = params["inserted_labels"].shape
            kwargs["masks"] = np.zeros((0, h, w), np.uint8)
        return super().apply_with_params(params, *args, **kwargs)

    # ----------------------------------------------------------------------------------- apply
    def apply(self, img: np.ndarray, inserted_image: np.ndarray | None = None, **params: Any) -> np.ndarray:
        return img if inserted_image is None else inserted_image

    def apply_to_mask(self, mask: np.ndarray, inserted_labels: np.ndarray | None = None, **params: Any) -> np.ndarray:
        if inserted_labels is None:
            return mask
        return inserted_labels.astype(mask.dtype).reshape(mask.shape) if mask.ndim == 2 else \
            np.broadcast_to(inserted_labels[..., None], mask.shape).astype(mask.dtype)

    def apply_to_masks(self, masks: np.ndarray, existing_masks=None, new_masks=None, **params: Any) -> np.ndarray:
        if not new_masks:
            return masks
        old = np.stack(existing_masks).astype(masks.dtype) if existing_masks else np.asarray(masks)
        new = np.stack(new_masks).astype(masks.dtype if len(masks) else np.uint8)
        return np.concatenate([old.reshape(-1, *new.shape[1:]), new], 0)

    def apply_to_bboxes(self, bboxes: np.ndarray, existing_masks=None, new_masks=None, new_classes=None,
                        **params: Any) -> np.ndarray:
        if not new_masks:
            return bboxes
        h, w = new_masks[0].shape
        columns = self._label_columns(new_classes)
        width = 4 + len(columns[0]) if columns else 4
        bboxes = np.asarray(bboxes, np.float32)
        if bboxes.ndim != 2 or bboxes.shape[1] != width:
            bboxes = np.zeros((0, width), np.float32)
        if existing_masks is not None and len(existing_masks) == len(bboxes):
            bboxes = bboxes.copy()
            for row, m in zip(bboxes, existing_masks, strict=True):
                if m.any():
                    row[:4] = _normalised_box(m, w, h)
        rows = [np.r_[_normalised_box(m, w, h), cols] for m, cols in zip(new_masks, columns, strict=True)]
        return np.concatenate([bboxes, np.array(rows, np.float32).reshape(-1, width)], 0)

    def _label_columns(self, classes: list[int]) -> list[list[float]]:
        """Each new box's label fields, encoded the way the Compose's bbox processor stores them."""
        processor = self.get_processor("bboxes") if hasattr(self, "get_processor") else None
        fields = list(processor.params.label_fields or []) if processor is not None else []
        out = []
        for c in classes:
            value = BY_ID[c].name if self.labels == "name" else c
            out.append([float(processor.label_manager.process_field("bboxes", f, [value])[0, 0]) for f in fields])
        return out


def _normalised_box(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    x, y, w, h = mask_bbox(mask)
    return np.array([x / width, y / height, (x + w) / width, (y + h) / height], np.float32)


def _components(labels: np.ndarray) -> list[np.ndarray]:
    """Existing objects when no instance masks are given: the connected regions of each object class."""
    out = []
    for label_id in sorted(INSTANCE_IDS):
        region = (labels == label_id).astype(np.uint8)
        if not region.any():
            continue
        n, comp = cv2.connectedComponents(region, connectivity=8)
        out += [comp == i for i in range(1, n)]
    return out


def _instance_map(labels: np.ndarray, masks: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """An instanceIds map from labelIds and one mask per object (class: the mask's majority label);
    the value given to each mask, in order (-1 for a mask with no object pixels)."""
    ids = labels.astype(np.int32).copy()
    counters: dict[int, int] = {}
    values = []
    for m in masks:
        under = labels[m]
        under = under[np.isin(under, list(INSTANCE_IDS))]
        if under.size == 0:
            values.append(-1)
            continue
        label_id = int(np.bincount(under).argmax())
        k = counters.get(label_id, 0)
        counters[label_id] = k + 1
        value = label_id * INSTANCE_FACTOR + k
        ids[m & (labels == label_id)] = value
        values.append(value)
    return ids, values
