"""The segmenter arm of the downstream experiment: a compact U-Net trained on an arm's frames, scored by IoU.

``runs.py`` trains one per arm and seed, beside the detector (``detection.py``), with the same schedule,
seed and initial weights in every arm. Frames are shrunk to ``evaluate.downstream.size``; scores are
per-class IoU of person and car and the mIoU over the classes present in the test labels, and the context
probe's share of impossible regions (sky, building, vegetation) predicted as person or car.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.config import DownstreamConfig
from pipeline.encoding import resize_nearest
from pipeline.labels import BY_NAME, train_id_lut
from pipeline.models.segmenter import Segmenter
from pipeline.scene import Scene

N_CLASSES = 19
SCORED = ("person", "car")
# Where no person or car can be: the context probe's regions (labelled by the test split's ground truth).
OUT_OF_CONTEXT = ("sky", "building", "vegetation")
_TRAIN_ID = train_id_lut()


@dataclass
class Frame:
    """A frame at the segmenter's size: RGB, train ids (255 = ignored), instance ids."""

    image: np.ndarray
    target: np.ndarray
    instance_ids: np.ndarray


def shrink(scene: Scene, size: tuple[int, int]) -> Frame:
    """The scene at ``size`` = (W, H): area-averaged RGB, nearest-neighbour labels and instances."""
    image = cv2.resize(scene.image, size, interpolation=cv2.INTER_AREA)
    return Frame(image, _TRAIN_ID[resize_nearest(scene.labels, size)], resize_nearest(scene.instance_ids, size))


def _tensors(frames: list[Frame], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).contiguous().to(device)
    y = torch.from_numpy(np.stack([f.target for f in frames]).astype(np.int64)).to(device)
    return x, y


def train_segmenter(frames: list[Frame], dc: DownstreamConfig, seed: int, device: torch.device,
                    progress: bool = True, desc: str = "segmenter") -> tuple[Segmenter, list[float]]:
    """Train a fresh segmenter on ``frames`` (random windows of ``crop`` pixels, random left-right flips,
    cross-entropy weighted by ``dc.class_weights``); returns it and the mean loss of every ``dc.log_every``
    steps."""
    torch.manual_seed(seed)  # the same initial weights in every arm
    model = Segmenter(N_CLASSES, dc.widths).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=dc.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=dc.lr, total_steps=dc.steps, pct_start=0.1)
    x_all, y_all = _tensors(frames, device)
    weight = torch.ones(N_CLASSES, device=device)
    for name, w in dc.class_weights.items():
        weight[BY_NAME[name].train_id] = w
    gen = torch.Generator().manual_seed(seed)
    losses, running = [], []
    model.train()
    for _ in tqdm(range(dc.steps), desc=desc, disable=not progress):
        idx = torch.randint(len(frames), (dc.batch_size,), generator=gen)
        flip = torch.rand(dc.batch_size, generator=gen) < 0.5
        x = x_all[idx.to(device)].float() / 255
        y = y_all[idx.to(device)]
        if dc.crop:  # a random window per sample: the same cost for every arm
            tops = torch.randint(y.shape[1] - dc.crop + 1, (dc.batch_size,), generator=gen).tolist()
            lefts = torch.randint(y.shape[2] - dc.crop + 1, (dc.batch_size,), generator=gen).tolist()
            windows = list(enumerate(zip(tops, lefts, strict=True)))
            x = torch.stack([x[i, :, t : t + dc.crop, c : c + dc.crop] for i, (t, c) in windows])
            y = torch.stack([y[i, t : t + dc.crop, c : c + dc.crop] for i, (t, c) in windows])
        f = flip.to(device)
        x = torch.where(f[:, None, None, None], x.flip(-1), x)
        y = torch.where(f[:, None, None], y.flip(-1), y)
        loss = F.cross_entropy(model(x), y, weight=weight, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if len(running) == dc.log_every:
            losses.append(float(np.mean(running)))
            running = []
    return model.eval(), losses


@torch.no_grad()
def predict(model: Segmenter, frames: list[Frame], device: torch.device,
            batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Predicted train ids [N, H, W] and class probabilities of person and car [N, 2, H, W]."""
    labels, probs = [], []
    scored = [BY_NAME[n].train_id for n in SCORED]
    for i in range(0, len(frames), batch):
        x, _ = _tensors(frames[i : i + batch], device)
        p = model(x.float() / 255).softmax(1)
        labels.append(p.argmax(1).cpu().numpy().astype(np.uint8))
        probs.append(p[:, scored].cpu().numpy())
    return np.concatenate(labels), np.concatenate(probs)


def iou_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """IoU of person and car, and the mean IoU over the classes present in ``target``."""
    valid = target != 255
    cm = np.bincount(N_CLASSES * target[valid].astype(np.int64) + pred[valid], minlength=N_CLASSES**2)
    cm = cm.reshape(N_CLASSES, N_CLASSES)
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    present = cm.sum(1) > 0
    out = {f"{n}_iou": round(float(iou[BY_NAME[n].train_id]), 4) for n in SCORED}
    out["miou"] = round(float(np.nanmean(iou[present])), 4)
    return out


def image_counts(pred: np.ndarray, target: np.ndarray) -> dict[str, list[list[int]]]:
    """Per scored class and test image: [intersection, union] pixel counts (void pixels left out) - what a
    bootstrap over images resamples (``paired.py``): IoU is a ratio of sums, not a mean of per-image IoUs."""
    valid = target != 255
    out = {}
    for n in SCORED:
        t, p = (target == BY_NAME[n].train_id) & valid, (pred == BY_NAME[n].train_id) & valid
        inter, union = (t & p).sum((1, 2)), (t | p).sum((1, 2))
        out[n] = np.stack([inter, union], 1).astype(int).tolist()
    return out


def out_of_context_pixels(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Per class: the share of the test frames' impossible-region pixels (``OUT_OF_CONTEXT``, by their
    true label) that the segmenter labels with that class."""
    region = np.isin(target, [BY_NAME[n].train_id for n in OUT_OF_CONTEXT])
    total = max(int(region.sum()), 1)
    return {f"{n}_out_of_context_pixels": round(float((region & (pred == BY_NAME[n].train_id)).sum() / total), 6)
            for n in SCORED}
