"""Shape realism and coverage, and how much the latent codes change placements and shapes.

Shapes are compared at a normalised size: a mask's tight box resized to S x S (the model's mask size,
the way ``prepare`` stores real instances). Against the real shapes of a class (the prepared ``split``
instances):

- **precision** (realism): mean over generated shapes of the IoU with the nearest real shape;
- **recall** (coverage): mean over real shapes of the IoU with the nearest generated shape.

Both sets are cut to the same size first (recall grows with the number of generated shapes). Reference
rows: the training split's real shapes against the same real shapes (the ceiling), and a filled box
(what pasting a rectangle would give).

Diversity, per class, over the first ``frames`` frames of the split and ``draws`` latent draws each:

- ``box_iou_within``: mean pairwise IoU of the boxes drawn for one frame (1 = z is ignored);
- ``centre_within``: mean pairwise distance of their centres (image fractions), and ``centre_across``
  the same for one fixed z across different frames, so the two spreads can be compared;
- ``shape_iou_within``: mean pairwise IoU of the shapes drawn for one frame and one fixed box (z_what
  only), beside ``shape_iou_real`` for random pairs of real shapes of the class.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.config import Config
from pipeline.masks import square_mask
from pipeline.training_data import PreparedData


def nearest_iou(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For [N, S, S] and [M, S, S] binary masks: each of a's best IoU in b [N], each of b's best in a [M]."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return iou.max(1), iou.max(0)


def precision_recall(generated: np.ndarray, real: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Precision and recall of ``generated`` against ``real`` (see the module doc), equal-sized sets."""
    n = min(len(generated), len(real))
    if n == 0:
        return {"precision": float("nan"), "recall": float("nan"), "shapes": 0}
    g = generated[rng.choice(len(generated), n, replace=False)]
    r = real[rng.choice(len(real), n, replace=False)]
    best_g, best_r = nearest_iou(g, r)
    return {"precision": round(float(best_g.mean()), 4), "recall": round(float(best_r.mean()), 4), "shapes": n}


def _pairwise_box_iou(boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y0 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x1 = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    y1 = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)


def _mean_offdiag(m: np.ndarray) -> float:
    n = len(m)
    return float((m.sum() - np.trace(m)) / max(n * (n - 1), 1))


def _pairwise_iou(shapes: np.ndarray) -> np.ndarray:
    f = shapes.reshape(len(shapes), -1).astype(np.float32)
    inter = f @ f.T
    union = f.sum(1)[:, None] + f.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _centre_distances(boxes: np.ndarray) -> np.ndarray:
    c = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    return np.linalg.norm(c[:, None] - c[None, :], axis=-1)


@torch.no_grad()
def evaluate_shapes(gan, cfg: Config, split: str, per_frame: int, seed: int,
                    inserted: dict[str, np.ndarray] | None = None) -> dict:
    """Per class: precision/recall of the model's raw shapes (random z on every frame of ``split``), of
    the ``inserted`` whole masks (already square, per class) when given, and the reference rows."""
    device = next(gan.parameters()).device
    data = PreparedData(f"{cfg.prepare.out}/{split}.npz", device, flip_prob=0.0)
    train = PreparedData(f"{cfg.prepare.out}/train.npz", "cpu", flip_prob=0.0)
    size = cfg.prepare.mask_size
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    result = {}
    for c, name in enumerate(cfg.prepare.classes):
        raw = []
        for i in range(len(data.frames)):
            frame = torch.full((per_frame,), i, dtype=torch.long, device=device)
            x_where, x_what = data.scene_inputs(frame)
            z_where = torch.randn(per_frame, gan.z_where, generator=gen).to(device)
            z_what = torch.randn(per_frame, gan.z_what, generator=gen).to(device)
            cls = torch.full((per_frame,), c, dtype=torch.long, device=device)
            shapes = gan.sample(x_where, x_what, cls, z_where, z_what)["shape"][:, 0].float().cpu().numpy()
            raw.extend(square_mask(s >= 0.5, size) for s in shapes)
        real = data.inst_mask[data.inst_class == c].cpu().numpy().astype(np.uint8)
        real_train = train.inst_mask[train.inst_class == c].numpy().astype(np.uint8)
        box = np.ones((len(real), size, size), np.uint8)
        row = {"raw": precision_recall(np.array(raw), real, rng),
               "real_train": precision_recall(real_train, real, rng),
               "box": precision_recall(box, real, rng)}
        if inserted is not None and name in inserted:
            row["inserted"] = precision_recall(inserted[name], real, rng)
        result[name] = row
    return result


@torch.no_grad()
def evaluate_diversity(gan, cfg: Config, split: str, frames: int, draws: int, seed: int) -> dict:
    """Per class: how the boxes and shapes drawn for one frame spread with z (see the module doc)."""
    device = next(gan.parameters()).device
    data = PreparedData(f"{cfg.prepare.out}/{split}.npz", device, flip_prob=0.0)
    n_frames = min(frames, len(data.frames))
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    result = {}
    for c, name in enumerate(cfg.prepare.classes):
        cls = torch.full((draws,), c, dtype=torch.long, device=device)
        box_iou, centre, shape_iou, per_frame_boxes = [], [], [], []
        fixed_where = torch.randn(1, gan.z_where, generator=gen).to(device)
        fixed_what = torch.randn(1, gan.z_what, generator=gen).to(device)
        for i in range(n_frames):
            frame = torch.full((draws,), i, dtype=torch.long, device=device)
            x_where, x_what = data.scene_inputs(frame)
            z_where = torch.randn(draws, gan.z_where, generator=gen).to(device)
            z_what = torch.randn(draws, gan.z_what, generator=gen).to(device)
            boxes = gan.sample(x_where, x_what, cls, z_where, fixed_what.expand(draws, -1))["box"].float().cpu().numpy()
            box_iou.append(_mean_offdiag(_pairwise_box_iou(boxes)))
            centre.append(_mean_offdiag(_centre_distances(boxes)))
            # One box (the fixed z_where), every z_what: only the shape may change.
            shapes = gan.sample(x_where, x_what, cls, fixed_where.expand(draws, -1), z_what)["shape"][:, 0]
            shape_iou.append(_mean_offdiag(_pairwise_iou((shapes >= 0.5).cpu().numpy())))
            one = gan.sample(x_where[:1], x_what[:1], cls[:1], fixed_where, fixed_what)["box"].float().cpu().numpy()
            per_frame_boxes.append(one[0])
        real = data.inst_mask[data.inst_class == c].cpu().numpy()
        pairs = real[rng.choice(len(real), min(len(real), 200), replace=False)] if len(real) else real
        result[name] = {
            "box_iou_within": round(float(np.mean(box_iou)), 4),
            "centre_within": round(float(np.mean(centre)), 4),
            "centre_across": round(_mean_offdiag(_centre_distances(np.array(per_frame_boxes))), 4),
            "shape_iou_within": round(float(np.mean(shape_iou)), 4),
            "shape_iou_real": round(_mean_offdiag(_pairwise_iou(pairs)), 4) if len(pairs) > 1 else None,
            "frames": n_frames, "draws": draws,
        }
    return result
