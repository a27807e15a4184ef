"""Training batches for the insertion GAN, drawn from the ``prepare`` stage's arrays.

Everything is tensor indexing on arrays held in memory (on the training device), so a batch costs a
few gathers, no Python loop over samples. A batch depends only on the ``torch.Generator`` it is drawn
with; the training loop seeds that generator from (seed, step, rank), so a resumed run sees exactly
the batches an uninterrupted one would have seen, and every DDP rank sees different ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.config import LossConfig
from pipeline.encoding import CHANNEL_OF_ID, LABEL_CHANNELS, edges, encode
from pipeline.errors import DatasetError
from pipeline.labels import INSTANCE_IDS
from pipeline.models.affine import box_to_theta


class PreparedData:
    """One split of ``data/prepared``: frames and real instances, ready to batch."""

    def __init__(self, path: str | Path, device: torch.device | str = "cpu", flip_prob: float = 0.5,
                 ground_share: float = LossConfig.support_min_share):
        """``ground_share``: ``train.losses.support_min_share``, the share of a class's contacts that makes a
        label its ground (``ground_channels``)."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(path, "missing: run the prepare stage first (dvc repro prepare)")
        with np.load(path) as z:
            def t(key: str, dtype: torch.dtype) -> torch.Tensor:
                return torch.from_numpy(z[key].astype(np.int64 if dtype == torch.long else z[key].dtype)).to(
                    device=device, dtype=dtype)

            self.frames = z["frames"].tolist()
            self.labels_where = t("labels_where", torch.uint8)
            self.instances_where = t("instances_where", torch.int32)
            self.labels_what = t("labels_what", torch.uint8)
            self.instances_what = t("instances_what", torch.int32)
            self.inst_frame = t("inst_frame", torch.long)
            self.inst_class = t("inst_class", torch.long)
            self.inst_value = t("inst_value", torch.int32)
            self.inst_box = t("inst_box", torch.float32)
            self.inst_mask = t("inst_mask", torch.float32)
            self.xp_where = t("xp_where", torch.uint8) if "xp_where" in z else None
            self.xp_what = t("xp_what", torch.uint8) if "xp_what" in z else None
            # Each frame's ground plane (horizon, 1 / camera height; NaN without one): the scale loss.
            self.frame_ground = (t("frame_ground", torch.float32) if "frame_ground" in z
                                 else torch.full((len(self.frames), 2), float("nan"), device=device))
        if len(self.inst_frame) == 0:
            raise DatasetError(path, "no training instances: every instance failed the prepare filters")
        # Instances are stored frame by frame: each frame's first row and count, to draw one of its objects.
        counts = torch.bincount(self.inst_frame, minlength=len(self.frames))
        self.frame_count = counts
        self.frame_first = torch.cumsum(counts, 0) - counts
        self.device = torch.device(device)
        self.flip_prob = flip_prob
        self.ground = self.ground_channels(ground_share).to(self.device)

    def __len__(self) -> int:
        return len(self.inst_frame)

    def ground_channels(self, min_share: float) -> torch.Tensor:
        """[n_classes, LABEL_CHANNELS] 0/1: the label channels each class is seen standing on.

        Learned from the data: the labels in the row just below each real instance's box (at the what
        resolution, in x+ when the object was removed), instance classes excluded (standing on another
        person or car is not ground). Instances touching the bottom border have no row below and do not
        vote. A label gets in with ``min_share`` of the class's votes."""
        height, width = self.labels_what.shape[1:]
        n = len(self.inst_class)
        rows = torch.floor(self.inst_box[:, 3] * height + 0.5).long()
        voting = rows < height
        rows = rows.clamp_max(height - 1)
        if self.xp_what is not None:
            row_labels = self.xp_what[torch.arange(n, device=rows.device), rows].long()  # [N, W]
        else:
            row_labels = self.labels_what[self.inst_frame, rows].long()
        xs = torch.arange(width, device=rows.device)
        x0 = torch.floor(self.inst_box[:, 0:1] * width)
        x1 = torch.maximum(torch.ceil(self.inst_box[:, 2:3] * width), x0 + 1)
        instance_lut = torch.zeros(256, dtype=torch.bool, device=rows.device)
        instance_lut[sorted(INSTANCE_IDS)] = True
        ok = (xs >= x0) & (xs < x1) & voting[:, None] & ~instance_lut[row_labels]
        channel = CHANNEL_OF_ID.to(rows.device)[row_labels]
        n_classes = int(self.inst_class.max()) + 1
        slot = (self.inst_class[:, None] * LABEL_CHANNELS + channel)[ok]
        votes = torch.bincount(slot, minlength=n_classes * LABEL_CHANNELS).view(n_classes, LABEL_CHANNELS)
        share = votes.double() / votes.sum(1, keepdim=True).clamp_min(1)
        return (share >= min_share).float()

    def scene_inputs(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (indices [B]) as network inputs at the where and what resolutions, unflipped."""
        return (encode(self.labels_where[frame], edges(self.instances_where[frame])),
                encode(self.labels_what[frame], edges(self.instances_what[frame])))

    def batch(self, size: int, generator: torch.Generator, index: torch.Tensor | None = None) -> dict:
        """A batch in the layout ``InsertionGAN`` takes (see ``pipeline/models/insertion_gan.py``).

        x+ is the frame of a real instance (with that instance removed when prepared so); x is a
        random frame; each is flipped left-right with ``flip_prob``, x+ together with its box and mask.
        """
        d = self.device
        idx = index.to(d) if index is not None else torch.randint(len(self), (size,), generator=generator, device=d)
        size = len(idx)
        other = torch.randint(len(self.frames), (size,), generator=generator, device=d)
        flip_p = torch.rand(size, generator=generator, device=d) < self.flip_prob
        flip_x = torch.rand(size, generator=generator, device=d) < self.flip_prob

        frame, value = self.inst_frame[idx], self.inst_value[idx]
        xp = {}
        for res, removed in (("where", self.xp_where), ("what", self.xp_what)):
            labels = getattr(self, f"labels_{res}")[frame] if removed is None else removed[idx]
            instances = getattr(self, f"instances_{res}")[frame]
            if removed is not None:  # the removed object's pixels now hold the stuff that filled them
                instances = torch.where(instances == value[:, None, None], labels.int(), instances)
            xp[res] = _encode_flipped(labels, instances, flip_p)
        box = self.inst_box[idx].clone()
        box[flip_p] = torch.stack([1 - box[flip_p, 2], box[flip_p, 1], 1 - box[flip_p, 0], box[flip_p, 3]], 1)
        mask = self.inst_mask[idx]
        mask = torch.where(flip_p[:, None, None], mask.flip(-1), mask).unsqueeze(1)
        return {
            "x_where": _encode_flipped(self.labels_where[other], self.instances_where[other], flip_x),
            "x_what": _encode_flipped(self.labels_what[other], self.instances_what[other], flip_x),
            "xp_where": xp["where"],
            "xp_what": xp["what"],
            "theta_real": box_to_theta(box),
            "mask_real": mask,
            "cls": self.inst_class[idx],
            "ground": self.ground[self.inst_class[idx]],
            "plane_x": self.frame_ground[other],
            "plane_xp": self.frame_ground[frame],
            **self._occupied(other, flip_x, generator),
            "box_real": box,
        }


    def _occupied(self, frame: torch.Tensor, flip: torch.Tensor, generator: torch.Generator) -> dict:
        """A real object's box in each of ``frame`` (flipped with ``flip``), as "theta_occupied", and
        "occupied_valid" (False for a frame without one): a box on an existing object, a negative for
        D_where. Drawn last, so the rest of a batch is the same with or without it."""
        u = torch.rand(len(frame), generator=generator, device=self.device)
        count = self.frame_count[frame]
        j = self.frame_first[frame] + (u * count).long().clamp_max((count - 1).clamp_min(0))
        j = j.clamp_max(len(self) - 1)
        box = self.inst_box[j].clone()
        box[flip] = torch.stack([1 - box[flip, 2], box[flip, 1], 1 - box[flip, 0], box[flip, 3]], 1)
        return {"theta_occupied": box_to_theta(box), "occupied_valid": count > 0}


def _encode_flipped(labels: torch.Tensor, instances: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
    instances = torch.where(flip[:, None, None], instances.flip(-1), instances)
    return encode(labels, edges(instances))
