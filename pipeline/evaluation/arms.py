"""The downstream experiment's training sets ("arms"), written as datasets a user's script would read.

For a subset of N training frames spread evenly over the train split, each arm is a Cityscapes tree
(``{arm}/cityscapes``) with a COCO instances file beside it (``{arm}/coco/annotations/instances_train.json``,
``file_name`` relative to ``{arm}/cityscapes/leftImg8bit/train``) - the augment stage's layout:

- ``subset``: the N original frames;
- ``ours``: the same + ``evaluate.downstream.copies`` augmented versions of each, with
  ``evaluate.downstream.per_frame`` objects each, made by the augment stage's code and trained model (the
  first version of a frame is the augment stage's own when ``per_frame`` is the augment stage's);
- ``copy_paste``: the same + a version of each of ours' with its very objects (shape, size, crop, blend) moved
  to uniformly random positions (``Relocate``);
- ``rules``: the same, random positions kept only when they pass the placement rules
  (``Relocate(rules=True)``): what a user could do without the learned model.

So the inserted arms differ only in where the objects stand; ``arms.json`` says how many objects each
holds and what share of its persons and cars are inserted (the dose).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.appearance import CropBank
from pipeline.augmentation import augmented_frame, build_inserter, copy_scene, copy_seed
from pipeline.config import Config
from pipeline.datasets import open_dataset
from pipeline.datasets.cityscapes import frame_paths
from pipeline.errors import ConfigError
from pipeline.evaluation.arm_layout import ARMS, SPLIT, arm_files
from pipeline.evaluation.copy_paste import Relocate
from pipeline.io import atomic_directory, atomic_write_json
from pipeline.runtime import resolve_device
from pipeline.scene import Scene
from pipeline.writers.cityscapes_writer import copy_frame, write_scene
from pipeline.writers.coco_writer import CocoWriter, cityscapes_file_name


def subset_indices(total: int, n: int) -> list[int]:
    """``n`` frame indices spread evenly over ``total`` frames (all of them when n >= total)."""
    if n >= total:
        return list(range(total))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, n)})


def dosed(cfg: Config) -> Config:
    """``cfg`` with the downstream dose's objects per version (``evaluate.downstream.per_frame``, when set)
    as the inserter's ``augment.per_frame``."""
    per_frame = cfg.evaluate.downstream.per_frame
    return dataclasses.replace(cfg, augment=dataclasses.replace(cfg.augment, per_frame=dict(per_frame))) \
        if per_frame else cfg


def write_arms(cfg: Config, n: int, out: str | Path, progress: bool = True) -> dict:
    """Write the four arms of the N-frame subset under ``out`` (replaced atomically); returns per arm the
    frames, the persons and cars it holds and how many of them are inserted (also ``out/arms.json``)."""
    if cfg.augment.appearance.mode != "paste":
        raise ConfigError("augment.appearance.mode: the downstream arms move ours' crops (paste); "
                          f"got {cfg.augment.appearance.mode!r}")
    copies = cfg.evaluate.downstream.copies
    dataset = open_dataset(cfg.data, SPLIT, cfg.coco)
    bank = CropBank(cfg.augment.appearance.crops, cfg.augment.appearance)
    inserter = build_inserter(dosed(cfg), resolve_device(cfg.augment.device, "augment.device"), bank)
    pasters = {"copy_paste": Relocate(bank, cfg), "rules": Relocate(bank, cfg, rules=True)}
    writers = {arm: CocoWriter() for arm in ARMS}
    frames, objects, inserted = Counter(), {arm: Counter() for arm in ARMS}, {arm: Counter() for arm in ARMS}

    def add(arm: str, scene, written=None) -> Scene:
        """Write ``scene`` into the arm - or, given the ``written`` (renumbered) scene of another arm's
        identical frame, copy that arm's files (one polygon tracing per frame); returns the written scene."""
        if written is None:
            written = write_scene(tmp / arm / "cityscapes", scene)
        else:
            copy_frame(frame_paths(tmp / ARMS[0] / "cityscapes", written.frame),
                       frame_paths(tmp / arm / "cityscapes", written.frame))
        writers[arm].add(written, cityscapes_file_name(written))
        frames[arm] += 1
        for inst in written.instances:
            if not inst.iscrowd:
                objects[arm][inst.name] += 1
                inserted[arm][inst.name] += "insert_id" in inst.meta
        return written

    with atomic_directory(Path(out)) as tmp:
        for i in tqdm(subset_indices(len(dataset), n), desc=f"arms {n}", unit="frame", disable=not progress):
            scene, frame = dataset[i], dataset.frame_id(i)
            written = add(ARMS[0], scene)
            for arm in ARMS[1:]:
                add(arm, scene, written)
            for k in range(copies):
                ours = copy_scene(scene, augmented_frame(frame, k))
                report = inserter.insert(ours, copy_seed(cfg.seed, SPLIT, frame.stem, k), exclude_frame=frame.stem)
                add("ours", ours)
                for arm, paster in pasters.items():  # ours' objects, in the order they went in, moved
                    moved = copy_scene(scene, augmented_frame(frame, k))
                    paster.insert(moved, report.inserted, copy_seed(cfg.seed, SPLIT, f"{frame.stem}/{arm}", k))
                    add(arm, moved)
        for arm in ARMS:
            writers[arm].write(arm_files(tmp, arm)[0])
        summary = {"subset_frames": n, "copies": copies, "per_frame": dict(dosed(cfg).augment.per_frame),
                   "frames": dict(frames),
                   "objects": {arm: dict(sorted(c.items())) for arm, c in objects.items()},
                   "inserted": {arm: dict(sorted(c.items())) for arm, c in inserted.items() if arm != ARMS[0]},
                   "inserted_share": {arm: {name: round(c[name] / objects[arm][name], 4)
                                            for name in sorted(c) if objects[arm][name]}
                                      for arm, c in inserted.items() if arm != ARMS[0]}}
        atomic_write_json(tmp / "arms.json", summary, indent=2)
    return summary
