"""Downstream gain: does a segmenter trained with our inserted objects see persons and cars better?

Three arms, each training the same compact segmenter (``pipeline.models.segmenter``) with the same
schedule, seed and initial weights, scored on the same test frames:

- ``subset`` (a): ``downstream.frames`` training frames, spread evenly over the train split;
- ``ours`` (b): the same frames + ``copies`` augmented versions of each (the trained insertion GAN,
  the augment stage's rules and appearance);
- ``copy_paste`` (c): the same frames + as many random copy-paste versions, each with exactly the number
  of inserted objects per class that the matching ``ours`` version got.

Pasted pixels in (b) and (c) come only from crops of the subset's own frames (never the frame itself),
so neither arm sees objects from outside the subset. Scores: per-class IoU of person and car and the
mIoU over the classes present in the test labels, plus instance AP (pycocotools, segm) of person and car
with connected components of the predicted class as instances.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from pipeline.appearance import CropBank
from pipeline.augmentation import copy_scene, frame_seed
from pipeline.config import Config, DownstreamConfig
from pipeline.datasets import open_dataset
from pipeline.encoding import resize_nearest
from pipeline.errors import ConfigError
from pipeline.evaluation.copy_paste import CopyPaste
from pipeline.insertion import Inserter
from pipeline.labels import BY_ID, BY_NAME, INSTANCE_FACTOR, train_id_lut
from pipeline.models.segmenter import Segmenter
from pipeline.scene import Scene

N_CLASSES = 19
ARMS = ("subset", "ours", "copy_paste")
SCORED = ("person", "car")
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


def subset_indices(total: int, n: int) -> list[int]:
    """``n`` frame indices spread evenly over ``total`` frames (all of them when n >= total)."""
    if n >= total:
        return list(range(total))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, n)})


def build_training_sets(cfg: Config, gan, device: torch.device, progress: bool = True) -> tuple[dict, dict]:
    """The three arms' training frames, and how many objects each inserted arm got per class."""
    dc = cfg.evaluate.downstream
    size = tuple(dc.size)
    dataset = open_dataset(cfg.data, "train", cfg.coco)
    indices = subset_indices(len(dataset), dc.frames)
    stems = {dataset.frame_id(i).stem for i in indices}
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance, frames=stems)
    inserter = Inserter(gan, bank, cfg, device)
    copier = CopyPaste(bank, cfg)
    sets: dict[str, list[Frame]] = {arm: [] for arm in ARMS}
    inserted = {arm: Counter() for arm in ARMS[1:]}
    for i in tqdm(indices, desc="downstream frames", disable=not progress):
        scene, stem = dataset[i], dataset.frame_id(i).stem
        small = shrink(scene, size)
        for arm in ARMS:
            sets[arm].append(small)
        for copy in range(dc.copies):
            seed = frame_seed(cfg.seed, "train", f"{stem}/downstream{copy}")
            ours = copy_scene(scene, scene.frame)
            report = inserter.insert(ours, seed, exclude_frame=stem)
            counts = Counter(m["class"] for m in report.inserted)
            rand = copy_scene(scene, scene.frame)
            copier.insert(rand, dict(counts), seed, exclude_frame=stem)
            for arm, s in (("ours", ours), ("copy_paste", rand)):
                sets[arm].append(shrink(s, size))
                inserted[arm].update(i.name for i in s.instances if "insert_id" in i.meta)
    return sets, {arm: dict(sorted(c.items())) for arm, c in inserted.items()}


def _tensors(frames: list[Frame], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).contiguous().to(device)
    y = torch.from_numpy(np.stack([f.target for f in frames]).astype(np.int64)).to(device)
    return x, y


def train_segmenter(frames: list[Frame], dc: DownstreamConfig, seed: int, device: torch.device,
                    progress: bool = True, desc: str = "segmenter") -> tuple[Segmenter, list[float]]:
    """Train a fresh segmenter on ``frames`` (random windows of ``crop`` pixels, random left-right flips);
    returns it and the mean loss of every ``dc.log_every`` steps."""
    torch.manual_seed(seed)  # the same initial weights in every arm
    model = Segmenter(N_CLASSES, dc.widths).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=dc.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=dc.lr, total_steps=dc.steps, pct_start=0.1)
    x_all, y_all = _tensors(frames, device)
    gen = torch.Generator().manual_seed(seed)
    losses, running = [], []
    model.train()
    for _ in tqdm(range(dc.steps), desc=desc, disable=not progress):
        idx = torch.randint(len(frames), (dc.batch_size,), generator=gen)
        flip = torch.rand(dc.batch_size, generator=gen) < 0.5
        x = x_all[idx.to(device)].float() / 255
        y = y_all[idx.to(device)]
        if dc.crop:  # one random window per batch: the same cost for every arm
            top = int(torch.randint(y.shape[1] - dc.crop + 1, (1,), generator=gen))
            left = int(torch.randint(y.shape[2] - dc.crop + 1, (1,), generator=gen))
            x = x[..., top : top + dc.crop, left : left + dc.crop]
            y = y[..., top : top + dc.crop, left : left + dc.crop]
        f = flip.to(device)
        x = torch.where(f[:, None, None, None], x.flip(-1), x)
        y = torch.where(f[:, None, None], y.flip(-1), y)
        loss = F.cross_entropy(model(x), y, ignore_index=255)
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


def instance_ap(pred: np.ndarray, probs: np.ndarray, frames: list[Frame]) -> dict[str, float]:
    """COCO mask AP of person and car: connected components of each predicted class are its instances,
    scored by their mean class probability; ground truth from the frames' instance maps (crowd regions
    as iscrowd)."""
    height, width = pred.shape[1:]
    images, gts, dts = [], [], []
    for k, f in enumerate(frames):
        images.append({"id": k + 1, "height": height, "width": width})
        for value in np.unique(f.instance_ids).tolist():
            label_id = value // INSTANCE_FACTOR if value >= INSTANCE_FACTOR else value
            if BY_ID[label_id].name not in SCORED:
                continue
            rle = mask_utils.encode(np.asfortranarray((f.instance_ids == value).astype(np.uint8)))
            gts.append({"id": len(gts) + 1, "image_id": k + 1, "category_id": label_id, "segmentation": rle,
                        "area": float(mask_utils.area(rle)), "bbox": mask_utils.toBbox(rle).tolist(),
                        "iscrowd": int(value < INSTANCE_FACTOR)})
        for j, name in enumerate(SCORED):
            n, comp = cv2.connectedComponents((pred[k] == BY_NAME[name].train_id).astype(np.uint8), connectivity=8)
            for c in range(1, n):
                m = comp == c
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                dts.append({"image_id": k + 1, "category_id": BY_NAME[name].id, "segmentation": rle,
                            "score": float(probs[k, j][m].mean()), "bbox": mask_utils.toBbox(rle).tolist(),
                            "area": float(m.sum())})
    out = {}
    for name in SCORED:
        cat = BY_NAME[name].id
        if not any(g["category_id"] == cat and not g["iscrowd"] for g in gts):
            out[f"{name}_ap"] = None
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = {"images": images, "annotations": gts,
                          "categories": [{"id": BY_NAME[n].id, "name": n} for n in SCORED]}
            gt.createIndex()
            mine = [d for d in dts if d["category_id"] == cat]
            dt = gt.loadRes(mine) if mine else None
            if dt is None:
                out[f"{name}_ap"] = 0.0
                continue
            ev = COCOeval(gt, dt, "segm")
            ev.params.catIds = [cat]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        out[f"{name}_ap"] = round(max(float(ev.stats[0]), 0.0), 4)
    return out


def test_frames(cfg: Config) -> list[Frame]:
    """The frames every arm is scored on (``evaluate.downstream.test_split``) at the segmenter's size.
    A split without a single labelled pixel - Cityscapes' test split, whose label maps are empty - is
    refused: scores on it would mean nothing."""
    dc = cfg.evaluate.downstream
    test_set = open_dataset(cfg.data, dc.test_split, cfg.coco)
    n_test = len(test_set) if dc.test_frames == 0 else min(dc.test_frames, len(test_set))
    test = [shrink(test_set[i], tuple(dc.size)) for i in range(n_test)]
    if all((f.target == 255).all() for f in test):
        raise ConfigError(f"evaluate.downstream.test_split: split {dc.test_split!r} of {cfg.data.root} has no "
                          "labelled pixels (Cityscapes' test labels are empty); name a labelled split, e.g. val")
    return test


def run_downstream(cfg: Config, gan, device: torch.device, progress: bool = True,
                   test: list[Frame] | None = None) -> tuple[dict, dict, dict]:
    """Train and score every arm on ``test`` (default: ``test_frames(cfg)``). Returns the metrics, the loss
    curves {arm: [mean loss of every ``log_every`` steps]} and the trained segmenters {arm: model}."""
    dc = cfg.evaluate.downstream
    test = test_frames(cfg) if test is None else test
    sets, inserted = build_training_sets(cfg, gan, device, progress)
    target = np.stack([f.target for f in test])
    metrics: dict = {"test_frames": len(test), "split": dc.test_split,
                     "train_frames": {arm: len(sets[arm]) for arm in ARMS}, "inserted": inserted}
    curves, models = {}, {}
    for arm in ARMS:
        start = time.perf_counter()
        model, curves[arm] = train_segmenter(sets[arm], dc, cfg.seed, device, progress, desc=f"segmenter {arm}")
        models[arm] = model
        pred, probs = predict(model, test, device)
        metrics[arm] = iou_scores(pred, target) | instance_ap(pred, probs, test) | {
            "seconds": round(time.perf_counter() - start, 1)}
    for key in ("person_iou", "car_iou", "miou"):
        metrics.setdefault("gain_ours_vs_subset", {})[key] = round(metrics["ours"][key] - metrics["subset"][key], 4)
        metrics.setdefault("gain_ours_vs_copy_paste", {})[key] = round(
            metrics["ours"][key] - metrics["copy_paste"][key], 4)
    return metrics, curves, models
