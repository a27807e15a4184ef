"""Augmenting one frame: the job the augment stage (``augment.py``) runs for every frame, in any order, in
any process.

A frame's result depends only on (seed, split, frame name) and its inputs: ``frame_seed`` gives it its own
seed, the inserter (``insertion.py``) draws its objects, and ``augment_frame`` writes the augmented frame
(and, with ``copy_originals``, the original) into the Cityscapes tree and returns the frame's record - its
COCO image entries, manifest lines and tallies - for the runner to write last, atomically. Augmented
frames live in the city ``{city}-aug`` (``AUG_SUFFIX``; docs/formats.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.appearance import CropBank
from pipeline.appearance.learned import LearnedAppearance
from pipeline.checkpoints import array_digest
from pipeline.config import Config
from pipeline.datasets import open_dataset
from pipeline.datasets.cityscapes import CityscapesDataset, frame_paths
from pipeline.insertion import Inserter
from pipeline.io import dumps_json
from pipeline.scene import FrameId, Instance, Scene
from pipeline.trained_gan import load_trained
from pipeline.trained_renderer import load_part_net, load_renderer
from pipeline.writers.cityscapes_writer import copy_frame, write_scene
from pipeline.writers.coco_writer import cityscapes_file_name, scene_annotations

AUG_SUFFIX = "-aug"


def frame_seed(seed: int, split: str, stem: str) -> int:
    """The seed of one frame: a function of the global seed and the frame's name only."""
    digest = hashlib.sha256(f"{split}/{stem}".encode()).digest()
    return int(np.random.SeedSequence([seed, int.from_bytes(digest[:8], "little")]).generate_state(1)[0])


def key_digest(key: dict) -> str:
    return hashlib.sha256(dumps_json(key)).hexdigest()


def frame_digest(scene: Scene) -> str:
    """A frame as read: its maps, image and camera."""
    camera = dumps_json(dataclasses.asdict(scene.camera)) if scene.camera is not None else None
    return array_digest([scene.image, scene.labels, scene.instance_ids, scene.parts,
                         np.frombuffer(camera, np.uint8) if camera else None])


@dataclass
class Context:
    """What a process needs to augment frames: built once per process."""

    cfg: Config
    inserter: Inserter
    key: str  # key_digest of the run's work key
    model_hash: str
    out: Path
    datasets: dict

    def dataset(self, split: str):
        if split not in self.datasets:
            self.datasets[split] = open_dataset(self.cfg.data, split, self.cfg.coco)
        return self.datasets[split]


def build_context(cfg: Config, device: torch.device, key: dict) -> Context:
    return Context(cfg, build_inserter(cfg, device), key_digest(key), key["inputs"]["model"], Path(cfg.augment.out),
                   {})


def build_inserter(cfg: Config, device: torch.device, bank: CropBank | None = None) -> Inserter:
    """The trained GAN with the augment stage's appearance (``bank``: a crop bank already open, paste mode)."""
    gan = load_trained(cfg.augment.model, cfg, device)
    gan = gan.to(memory_format=torch.channels_last)
    if cfg.augment.appearance.mode == "paste":
        return Inserter(gan, bank or CropBank(cfg.augment.appearance.crops, cfg.augment.appearance), cfg, device)
    return Inserter(gan, None, cfg, device, look=learned_appearance(cfg, device))


def learned_appearance(cfg: Config, device: torch.device):
    """The trained renderer (and part network for ``gan+parts``) as the augment stage's appearance."""
    look = cfg.augment.appearance
    renderer = load_renderer(look.renderer, cfg, device)
    part_net = load_part_net(look.renderer, cfg, device) if look.mode == "gan+parts" else None
    return LearnedAppearance(renderer, part_net, tuple(cfg.renderer.size), look.mode,
                             part_size=cfg.renderer.part_net.size, feather=cfg.augment.appearance.feather,
                             device=device)


def frame_name(dataset, index: int) -> FrameId:
    return dataset.frame_id(index)


def record_path(out: Path, frame: FrameId) -> Path:
    return out / "records" / frame.split / f"{frame.stem}.json"


def augmented_frame(frame: FrameId, copy: int = 0) -> FrameId:
    """The frame id of a frame's augmented version (``copy`` k > 0: its (k+1)-th, in ``{city}-aug{k+1}``)."""
    return FrameId(frame.split, frame.city + AUG_SUFFIX + (str(copy + 1) if copy else ""), frame.seq, frame.frame)


def copy_seed(seed: int, split: str, stem: str, copy: int = 0) -> int:
    """The seed of a frame's ``copy``-th augmented version; the first is the augment stage's (``frame_seed``)."""
    return frame_seed(seed, split, stem if copy == 0 else f"{stem}/copy{copy}")


def augment_frame(ctx: Context, split: str, index: int) -> dict:
    """Augment one frame, write its files, and return its record (written by the caller, last)."""
    dataset = ctx.dataset(split)
    frame = frame_name(dataset, index)
    tree = ctx.out / "cityscapes"
    scene = dataset[index]
    inputs = frame_digest(scene)
    seed = frame_seed(ctx.cfg.seed, split, frame.stem)
    images = []
    if ctx.cfg.augment.copy_originals:
        images.append(_write_original(tree, dataset, index, scene))
    aug = copy_scene(scene, augmented_frame(frame))
    report = ctx.inserter.insert(aug, seed, exclude_frame=frame.stem)
    written = write_scene(tree, aug)
    aug_stem = written.frame.stem

    def extra(inst: Instance) -> dict:
        if "insert_id" in inst.meta:
            return {"inserted": True, "insert_id": f"{aug_stem}/{inst.meta['insert_id']}"}
        return {"inserted": False}

    height, width = written.size
    images.append({"file_name": cityscapes_file_name(written), "height": height, "width": width,
                   "annotations": scene_annotations(written, extra=extra)})
    by_insert = {inst.meta["insert_id"]: inst for inst in written.instances if "insert_id" in inst.meta}
    manifest = []
    for item in report.inserted:
        inst = by_insert[item["insert_id"]]
        manifest.append({
            "id": f"{aug_stem}/{item['insert_id']}", "split": split,
            "file_name": cityscapes_file_name(written), "source_frame": frame.stem,
            "class": item["class"], "instance_id": inst.value, "box": list(inst.bbox), "area": inst.area,
            "whole_box": item["whole_box"], "whole_area": item["whole_area"], "whole_mask": item["whole_mask"],
            "seed": seed, "draw": item["draw"],
            "model": ctx.model_hash, "crop": item["crop"],
            **({"crop_flipped": item["crop_flipped"], "crop_iou": item["crop_iou"]} if item["crop"] is not None
               else {"render": item["render"]}),
        })
    inserted = Counter(m["class"] for m in manifest)
    return {
        "key": ctx.key, "inputs": inputs, "split": split, "frame": frame.stem, "error": None,
        "images": images,
        "manifest": manifest,
        "stats": {"inserted": dict(sorted(inserted.items())), "drawn": dict(sorted(report.drawn.items())),
                  "rejected": {f"{c}/{r}": n for (c, r), n in sorted(report.rejected.items())}},
    }


def copy_scene(scene: Scene, frame: FrameId) -> Scene:
    instances = [Instance(i.value, i.label_id, i.bbox, i.area, dict(i.meta)) for i in scene.instances]
    parts = scene.parts.copy() if scene.parts is not None else None
    return Scene(frame, scene.image.copy(), scene.labels.copy(), scene.instance_ids.copy(), scene.camera, parts,
                 instances)


def _write_original(tree: Path, dataset, index: int, scene: Scene) -> dict:
    """The original frame in the output tree: its files copied as they are when it comes from a
    Cityscapes tree, written from the scene otherwise; returns its COCO image entry."""
    if isinstance(dataset, CityscapesDataset):
        copy_frame(dataset.paths(index), frame_paths(tree, scene.frame))
        written = scene
    else:
        written = write_scene(tree, scene)
    height, width = written.size
    return {"file_name": cityscapes_file_name(written), "height": height, "width": width,
            "annotations": scene_annotations(written, extra=lambda inst: {"inserted": False})}
