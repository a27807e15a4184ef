"""The detector arm: train torchvision's Mask R-CNN on COCO files, score it with COCOeval.

Read the way a user's training script reads our output: ``pycocotools.coco.COCO`` on the instances json,
categories found by name, crowd regions left out of the targets, instance masks from ``annToMask``,
images from the folder the json's ``file_name``s are relative to. Scores: COCOeval's mask and box AP and
AP50 per class, and its recall on small objects (area under 32x32 pixels: the far persons and cars).
"""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from pipeline.config import DetectorConfig
from pipeline.errors import DatasetError
from pipeline.io import read_rgb
from pipeline.masks import encode_rle
from pipeline.models.detector import build_detector

CLASSES = ("person", "car")


def quiet_coco(path: str | Path) -> COCO:
    """pycocotools' COCO on ``path``, without its progress prints; a missing file is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "COCO annotations not found")
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


class CocoInstances(torch.utils.data.Dataset):
    """The images of a COCO file with their person / car instances as torchvision detection targets.

    ``item(i)`` -> (RGB uint8 [H, W, 3], {"boxes" [K, 4] xyxy float, "labels" [K] int64 (1 = first of
    ``classes``), "masks" [K, H, W] uint8}). Crowd annotations and zero-size boxes are left out."""

    def __init__(self, annotations: str | Path, image_root: str | Path, classes: tuple[str, ...] = CLASSES):
        self.coco = quiet_coco(annotations)
        self.image_root = Path(image_root)
        by_name = {c["name"]: c["id"] for c in self.coco.loadCats(self.coco.getCatIds())}
        missing = [c for c in classes if c not in by_name]
        if missing:
            raise DatasetError(annotations, f"no category named {missing[0]!r}")
        self.classes = classes
        self.category_ids = [by_name[c] for c in classes]
        self.label_of = {cat: k + 1 for k, cat in enumerate(self.category_ids)}
        self.ids = sorted(self.coco.getImgIds())

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, i: int) -> np.ndarray:
        info = self.coco.loadImgs(self.ids[i])[0]
        return read_rgb(self.image_root / info["file_name"])

    def target(self, i: int) -> dict[str, torch.Tensor]:
        info = self.coco.loadImgs(self.ids[i])[0]
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=self.ids[i], catIds=self.category_ids, iscrowd=False))
        boxes, labels, masks = [], [], []
        for a in anns:
            x, y, w, h = a["bbox"]
            if w < 1 or h < 1:
                continue
            boxes.append([x, y, x + w, y + h])
            labels.append(self.label_of[a["category_id"]])
            masks.append(self.coco.annToMask(a))
        empty = torch.zeros(0, info["height"], info["width"], dtype=torch.uint8)
        return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.int64),
                "masks": torch.from_numpy(np.stack(masks)) if masks else empty}

    def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
        return self.image(i), self.target(i)


def _as_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).to(device).float() / 255


def _flipped(image: torch.Tensor, target: dict) -> tuple[torch.Tensor, dict]:
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    return image.flip(-1), {"boxes": boxes, "labels": target["labels"], "masks": target["masks"].flip(-1)}


def warmup_cosine(warmup: int, steps: int):
    """The learning-rate factor at a step: linear warm-up over ``warmup`` steps, then cosine to zero."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))
    return factor


def train_detector(data: CocoInstances, cfg: DetectorConfig, seed: int, device: torch.device,
                   progress: bool = True, desc: str = "detector") -> tuple[torch.nn.Module, list[float]]:
    """A fresh detector trained on ``data`` (random batches, random left-right flips); returns it and its
    total loss averaged over every 10 steps. The same seed gives every arm the same initial weights."""
    torch.manual_seed(seed)
    model = build_detector(cfg, len(data.classes)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(cfg.warmup, cfg.steps))
    gen = torch.Generator().manual_seed(seed)
    curve, running = [], []
    model.train()
    for _ in tqdm(range(cfg.steps), desc=desc, disable=not progress):
        idx = torch.randint(len(data), (cfg.batch_size,), generator=gen).tolist()
        flips = (torch.rand(cfg.batch_size, generator=gen) < 0.5).tolist()
        images, targets = [], []
        for i, flip in zip(idx, flips, strict=True):  # read from disk per step: any dataset size fits in memory
            image = _as_tensor(data.image(i), device)
            target = {k: v.to(device) for k, v in data.target(i).items()}
            if flip:
                image, target = _flipped(image, target)
            images.append(image)
            targets.append(target)
        loss = sum(model(images, targets).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if len(running) == 10:
            curve.append(float(np.mean(running)))
            running = []
    return model.eval(), curve


@torch.no_grad()
def detect(model: torch.nn.Module, data: CocoInstances, device: torch.device, score_threshold: float,
           progress: bool = True) -> list[dict]:
    """COCO results (``loadRes`` format, masks as RLE) of ``model`` on every image of ``data``."""
    model.eval()
    results = []
    for i in tqdm(range(len(data)), desc="detect", disable=not progress):
        out = model([_as_tensor(data.image(i), device)])[0]
        keep = out["scores"] >= score_threshold
        masks = (out["masks"][keep, 0] >= 0.5).cpu().numpy()
        for box, label, score, m in zip(out["boxes"][keep].tolist(), out["labels"][keep].tolist(),
                                        out["scores"][keep].tolist(), masks, strict=True):
            x0, y0, x1, y1 = box
            results.append({"image_id": data.ids[i], "category_id": data.category_ids[label - 1],
                            "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score),
                            "segmentation": encode_rle(m)})
    return results


def coco_scores(data: CocoInstances, results: list[dict]) -> dict[str, dict[str, float | None]]:
    """Per class: COCOeval mask AP and AP50, box AP and AP50, and mask recall on small objects (AR_small,
    up to 100 detections). A class without ground truth in ``data`` scores None; no detections score 0."""
    out: dict[str, dict[str, float | None]] = {}
    for name, cat in zip(data.classes, data.category_ids, strict=True):
        if not data.coco.getAnnIds(catIds=[cat], iscrowd=False):
            out[name] = {k: None for k in ("mask_ap", "mask_ap50", "box_ap", "box_ap50", "ar_small")}
            continue
        mine = [r for r in results if r["category_id"] == cat]
        scores: dict[str, float | None] = {}
        for iou_type, prefix in (("segm", "mask"), ("bbox", "box")):
            if not mine:
                scores |= {f"{prefix}_ap": 0.0, f"{prefix}_ap50": 0.0}
                if iou_type == "segm":
                    scores["ar_small"] = 0.0
                continue
            with contextlib.redirect_stdout(io.StringIO()):
                ev = COCOeval(data.coco, data.coco.loadRes(mine), iou_type)
                ev.params.catIds = [cat]
                ev.evaluate()
                ev.accumulate()
                ev.summarize()
            # stats: 0 AP, 1 AP50, 9 AR_small; -1 means "no ground truth of that kind" (no small objects)
            scores[f"{prefix}_ap"] = round(max(float(ev.stats[0]), 0.0), 4)
            scores[f"{prefix}_ap50"] = round(max(float(ev.stats[1]), 0.0), 4)
            if iou_type == "segm":
                scores["ar_small"] = round(float(ev.stats[9]), 4) if ev.stats[9] >= 0 else None
        out[name] = scores
    return out
