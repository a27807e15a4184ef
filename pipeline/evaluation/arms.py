"""The downstream experiment's training sets ("arms"), written as datasets a user's script would read.

For a subset of N training frames spread evenly over the train split, each arm is a Cityscapes tree
(``{arm}/cityscapes``) with a COCO instances file beside it (``{arm}/coco/annotations/instances_train.json``,
``file_name`` relative to ``{arm}/cityscapes/leftImg8bit/train``) - the augment stage's layout:

- ``subset``: the N original frames;
- ``ours``: the same + the augment stage's augmented version of each, files and COCO entries copied as the
  augment stage wrote them (the trained model's placements, shapes and the augment stage's appearance);
- ``copy_paste``: the same + a version of each with ours' very objects (shape, size, crop, blend) moved to
  uniformly random positions (``Relocate``);
- ``rules``: the same, random positions kept only when they pass the placement rules
  (``Relocate(rules=True)``): what a user could do without the learned model.

So the inserted arms differ only in where the objects stand.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.appearance import CropBank
from pipeline.augmentation import augmented_frame, copy_scene, frame_seed
from pipeline.config import Config
from pipeline.datasets import open_dataset
from pipeline.datasets.cityscapes import frame_paths
from pipeline.evaluation.arm_layout import ARMS, SPLIT, arm_files
from pipeline.evaluation.copy_paste import Relocate
from pipeline.evaluation.detection import quiet_coco
from pipeline.evaluation.inserted import read_manifest
from pipeline.io import atomic_directory, atomic_write_json
from pipeline.labels import BY_ID
from pipeline.scene import FrameId
from pipeline.writers.cityscapes_writer import copy_frame, write_scene
from pipeline.writers.coco_writer import CocoWriter, cityscapes_file_name


def subset_indices(total: int, n: int) -> list[int]:
    """``n`` frame indices spread evenly over ``total`` frames (all of them when n >= total)."""
    if n >= total:
        return list(range(total))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, n)})


def augment_coco(cfg: Config) -> Path:
    return Path(cfg.augment.out) / "coco" / "annotations" / f"instances_{SPLIT}.json"


def _copy_frame(src_root: Path, dst_root: Path, frame: FrameId) -> None:
    copy_frame(frame_paths(src_root, frame), frame_paths(dst_root, frame))


def write_arms(cfg: Config, n: int, out: str | Path, progress: bool = True) -> dict:
    """Write the four arms of the N-frame subset under ``out`` (replaced atomically); returns per arm the
    frames and the inserted instances per class (also written to ``out/arms.json``)."""
    dataset = open_dataset(cfg.data, SPLIT, cfg.coco)
    aug_root = Path(cfg.augment.out) / "cityscapes"
    aug = quiet_coco(augment_coco(cfg))
    aug_images = {img["file_name"]: img for img in aug.dataset["images"]}
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    pasters = {"copy_paste": Relocate(bank, cfg), "rules": Relocate(bank, cfg, rules=True)}
    manifest: dict = {}
    for m in read_manifest(cfg.augment.out):
        if m["split"] == SPLIT:
            manifest.setdefault(m["source_frame"], []).append(m)
    writers = {arm: CocoWriter() for arm in ARMS}
    frames = Counter()
    inserted = {arm: Counter() for arm in ARMS[1:]}
    with atomic_directory(Path(out)) as tmp:
        for i in tqdm(subset_indices(len(dataset), n), desc=f"arms {n}", unit="frame", disable=not progress):
            scene, frame = dataset[i], dataset.frame_id(i)
            written = write_scene(tmp / ARMS[0] / "cityscapes", scene)  # encoded once, copied into every arm
            for arm in ARMS:
                if arm != ARMS[0]:
                    _copy_frame(tmp / ARMS[0] / "cityscapes", tmp / arm / "cityscapes", frame)
                writers[arm].add(written, cityscapes_file_name(written))
                frames[arm] += 1
            aug_frame = augmented_frame(frame)
            image = aug_images.get(f"{aug_frame.city}/{aug_frame.stem}_leftImg8bit.png")
            if image is None:  # the augment run skipped this frame (on_error: skip): no inserted version anywhere
                continue
            anns = [{k: v for k, v in a.items() if k not in ("id", "image_id")}
                    for a in aug.loadAnns(aug.getAnnIds(imgIds=image["id"]))]
            counts = Counter(BY_ID[a["category_id"]].name for a in anns if a.get("inserted"))
            _copy_frame(aug_root, tmp / "ours" / "cityscapes", aug_frame)
            writers["ours"].add_image(image["file_name"], image["height"], image["width"], anns)
            frames["ours"] += 1
            inserted["ours"].update(counts)
            objects = sorted(manifest.get(frame.stem, []), key=lambda m: int(m["id"].rsplit("/", 1)[1]))
            for arm, paster in pasters.items():
                pasted = copy_scene(scene, aug_frame)
                paster.insert(pasted, objects, frame_seed(cfg.seed, SPLIT, f"{frame.stem}/{arm}"))
                written = write_scene(tmp / arm / "cityscapes", pasted)
                writers[arm].add(written, cityscapes_file_name(written))
                frames[arm] += 1
                inserted[arm].update(inst.name for inst in written.instances if "insert_id" in inst.meta)
        for arm in ARMS:
            writers[arm].write(arm_files(tmp, arm)[0])
        summary = {"subset_frames": n, "frames": dict(frames),
                   "inserted": {arm: dict(sorted(c.items())) for arm, c in inserted.items()}}
        atomic_write_json(tmp / "arms.json", summary, indent=2)
    return summary
