"""Which appearance is better: paste, gan or gan+parts? Scored the pix2pixHD way.

A segmenter trained on real training frames only (the downstream experiment's ``subset`` arm) is run
on frames whose inserted objects were drawn by each mode - the same frames, seeds and insertion model -
and scored against the label maps they were made from: the mIoU over the whole frame, and the share of
the inserted objects' visible pixels it labels with their class (``inserted_accuracy``: does the object
look like what its label says?). The part network's accuracy on the val split's objects is reported
beside them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from pipeline.appearance import CropBank
from pipeline.augmentation import copy_scene, frame_seed, learned_appearance
from pipeline.config import Config
from pipeline.datasets import open_dataset
from pipeline.errors import ConfigError
from pipeline.evaluation.downstream import iou_scores, predict, shrink
from pipeline.insertion import Inserter
from pipeline.labels import train_id_lut
from pipeline.part_training import part_accuracy, part_examples, part_source
from pipeline.trained_renderer import load_part_net

MODES = ("paste", "gan", "gan+parts")
_TRAIN_ID = train_id_lut()


def evaluate_render_modes(cfg: Config, gan, segmenter, device: torch.device, frames: int,
                          gallery_frames: int = 3) -> tuple[dict, list[tuple[str, list[np.ndarray]]]]:
    """Per mode: mIoU and inserted-object accuracy of ``segmenter`` on rendered val frames; and the
    gallery rows (frame, [paste, gan, gan+parts] images) of the first ``gallery_frames`` frames."""
    split = cfg.evaluate.split
    dataset = open_dataset(cfg.data, split, cfg.coco)
    n = min(frames, len(dataset))
    size = tuple(cfg.evaluate.downstream.size)
    inserters = {}
    for mode in MODES:
        mode_cfg = dataclasses.replace(cfg, augment=dataclasses.replace(
            cfg.augment, appearance=dataclasses.replace(cfg.augment.appearance, mode=mode)))
        if mode == "paste":
            bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
            inserters[mode] = Inserter(gan, bank, mode_cfg, device)
        else:
            inserters[mode] = Inserter(gan, None, mode_cfg, device, look=learned_appearance(mode_cfg, device))
    shrunk: dict[str, list] = {m: [] for m in MODES}
    inserted_masks: dict[str, list[np.ndarray]] = {m: [] for m in MODES}
    gallery = []
    for i in range(n):
        scene, stem = dataset[i], dataset.frame_id(i).stem
        seed = frame_seed(cfg.seed, split, stem)
        row = []
        for mode in MODES:
            s = copy_scene(scene, scene.frame)
            inserters[mode].insert(s, seed, exclude_frame=stem)
            small = shrink(s, size)
            shrunk[mode].append(small)
            values = [inst.value for inst in s.instances if "insert_id" in inst.meta]
            inserted_masks[mode].append(np.isin(small.instance_ids, values))
            if i < gallery_frames:
                row.append(s.image)
        if row:
            gallery.append((stem, row))
    result: dict = {"frames": n, "split": split}
    for mode in MODES:
        pred, _ = predict(segmenter, shrunk[mode], device)
        target = np.stack([f.target for f in shrunk[mode]])
        mask = np.stack(inserted_masks[mode])
        hit = (pred == target) & mask
        result[mode] = {"miou": iou_scores(pred, target)["miou"],
                        "inserted_accuracy": round(float(hit.sum() / max(mask.sum(), 1)), 4),
                        "inserted_pixels": int(mask.sum())}
    try:
        net = load_part_net(cfg.augment.appearance.renderer, cfg, device)
        source, why = part_source(cfg)  # the dataset it learned from: the only one with part maps to score
        result["part_net"] = part_accuracy(net, *part_examples(source, cfg.coco, split, cfg.renderer.part_net.size))
        if source != cfg.data:
            result["part_net"]["source"] = {"root": source.root, "why": why}
    except ConfigError as exc:  # no part network, or no part maps in the data: say so
        result["part_net"] = {"accuracy": None, "why": str(exc)}
    return result, gallery
