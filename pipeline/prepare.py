"""The ``prepare`` stage: training examples for the insertion GAN, and the crop bank.

For each split, one ``{split}.npz`` under ``prepare.out`` holds every frame's label and instance maps
at the where and what resolutions (nearest neighbour only) and its ground plane (``frame_ground``), and
one row per usable real instance
(``inst_*``): its frame, class, box (normalised x0, y0, x1, y1), mask (tight box resized to a square)
and - with ``remove_object`` - the frame's label maps with that object filled in from the stuff
around it, which is the scene x+ the supervised path learns from. Instances pass the filters of
``PrepareConfig`` (area, fill ratio, aspect, width, height; crowd regions never count).

The crop bank (``crops/{split}/``) keeps each usable instance's RGB pixels and mask as an RGBA PNG,
indexed in ``crops/{split}/index.jsonl`` with its box, size and colour context, and its mask resized to
a square in ``crops/{split}/masks.npy`` (row i = line i), for the augment stage to retrieve appearance
from.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.config import Config, PrepareConfig
from pipeline.datasets import open_dataset
from pipeline.encoding import check_aspect as check_size_aspect
from pipeline.encoding import resize_nearest
from pipeline.ground_plane import frame_camera
from pipeline.io import atomic_directory, atomic_write_bytes, atomic_write_json, dumps_json, encode_png
from pipeline.label_surgery import remove_object
from pipeline.labels import BY_NAME
from pipeline.masks import square_mask
from pipeline.rules import YARDSTICK_FILE, learn_yardstick, object_facts, save_yardstick
from pipeline.scene import Instance, Scene


@dataclass
class FrameExamples:
    stem: str
    maps: dict[str, np.ndarray]  # labels/instances at where and what resolution
    instances: list[dict]  # rows of the instance table
    crops: list[tuple[str, bytes, dict]]  # (relative path, RGBA PNG, index entry)
    rejected: Counter
    facts: list[dict]  # what the learned rules read of each training example (rules.object_facts)


def instance_filter(inst: Instance, cfg: PrepareConfig, classes: list[int]) -> str | None:
    """Why an instance is not a training example (None when it is)."""
    if inst.iscrowd:
        return "crowd"
    if inst.label_id not in classes:
        return "class"
    _, _, w, h = inst.bbox
    if inst.area < cfg.min_area:
        return "area"
    if inst.area / (w * h) < cfg.min_fill:
        return "fill"
    if not cfg.aspect[0] <= h / w <= cfg.aspect[1]:
        return "aspect"
    if w < cfg.min_width or h < cfg.min_height:
        return "size"
    return None


def frame_ground(scene: Scene) -> np.ndarray:
    """[horizon row / frame height, 1 / camera height] of the frame's ground plane - its camera file, else
    the plane fitted to its own persons and cars (``ground_plane.frame_camera``) - or NaNs without one. A
    mean-sized object of class c whose bottom is at row fraction y then stands
    ``MEAN_HEIGHT_M[c] * (y - horizon) / camera height`` frame heights tall."""
    camera = frame_camera(scene)
    if camera is None:
        return np.full(2, np.nan, np.float32)
    return np.array([camera.horizon_row / scene.size[0], 1 / camera.height], np.float32)


def check_aspect(scene: Scene, cfg: PrepareConfig) -> None:
    """Refuse GAN input sizes of another aspect than the frame's (one line naming the key and a size that fits)."""
    for key in ("where_size", "what_size"):
        check_size_aspect(scene.size, tuple(getattr(cfg, key)), f"prepare.{key}", scene.frame.stem)


def frame_examples(scene: Scene, cfg: PrepareConfig, facts: bool = False) -> FrameExamples:
    """The frame's maps, training examples and crops; with ``facts``, what the learned rules read of each
    example (only ``rules.learned`` needs them: a support look-up per object)."""
    classes = [BY_NAME[name].id for name in cfg.classes]
    where, what = tuple(cfg.where_size), tuple(cfg.what_size)
    check_aspect(scene, cfg)
    height, width = scene.size
    maps = {
        "labels_where": resize_nearest(scene.labels, where),
        "instances_where": resize_nearest(scene.instance_ids, where).astype(np.uint16),
        "labels_what": resize_nearest(scene.labels, what),
        "instances_what": resize_nearest(scene.instance_ids, what).astype(np.uint16),
        "frame_ground": frame_ground(scene),
    }
    rows, crops, rejected, object_rows = [], [], Counter(), []
    for inst in scene.instances:
        reason = instance_filter(inst, cfg, classes)
        if reason == "crowd" and inst.label_id in classes and {"group", "fragment"} & set(inst.meta):
            # A semantic dataset's crowd region: the groups and fragments it gathers (datasets/semantic.py).
            rejected.update({k: inst.meta[k] for k in ("group", "fragment") if k in inst.meta})
            continue
        if reason:
            rejected[reason] += 1
            continue
        x, y, w, h = inst.bbox
        mask = scene.instance_ids[y : y + h, x : x + w] == inst.value
        row = {
            "class": classes.index(inst.label_id),
            "value": inst.value,
            "box": np.array([x / width, y / height, (x + w) / width, (y + h) / height], np.float32),
            "mask": square_mask(mask, cfg.mask_size),
            "height": h,  # pixels: the split's median is the size the where module learns
        }
        if cfg.remove_object:
            labels_xp, _ = remove_object(scene.labels, scene.instance_ids, inst.value)
            row["xp_where"] = resize_nearest(labels_xp, where)
            row["xp_what"] = resize_nearest(labels_xp, what)
        rows.append(row)
        crops.append(_crop(scene, inst, mask))
        fact = object_facts(scene, inst.value) if facts else None
        if fact is not None:
            object_rows.append(fact)
    return FrameExamples(scene.frame.stem, maps, rows, crops, rejected, object_rows)


def _crop(scene: Scene, inst: Instance, mask: np.ndarray) -> tuple[str, bytes, dict]:
    """The instance's pixels as an RGBA PNG, with an index entry describing it and its context."""
    x, y, w, h = inst.bbox
    rgba = np.dstack([scene.image[y : y + h, x : x + w], mask.astype(np.uint8) * 255])
    # Context: a ring of one box-size around the object, objects excluded, for colour matching.
    height, width = scene.size
    cx0, cy0 = max(0, x - w // 2), max(0, y - h // 2)
    cx1, cy1 = min(width, x + w + w // 2), min(height, y + h + h // 2)
    ring = scene.instance_ids[cy0:cy1, cx0:cx1] < 1000
    context = scene.image[cy0:cy1, cx0:cx1][ring]
    pixels = rgba[..., :3][mask]
    name = f"{inst.name}/{scene.frame.stem}_{inst.value}.png"
    entry = {
        "file": name,
        "frame": scene.frame.stem,
        "class": inst.name,
        "value": inst.value,
        "box": [x, y, w, h],
        "image_size": [width, height],
        "area": inst.area,
        "mean_rgb": [round(float(v), 1) for v in pixels.mean(0)],
        "context_rgb": [round(float(v), 1) for v in (context.mean(0) if len(context) else pixels.mean(0))],
        "bottom_row": y + h,
    }
    return name, encode_png(rgba, rgb=True), entry



def _frame_job(args: tuple[Config, str, int]) -> FrameExamples:
    cfg, split, i = args
    dataset = _dataset_cache(cfg, split)
    return frame_examples(dataset[i], cfg.prepare, facts=cfg.rules.learned)


_DATASETS: dict = {}


def _dataset_cache(cfg: Config, split: str):
    key = (split, cfg.data.root)
    if key not in _DATASETS:
        _DATASETS[key] = open_dataset(cfg.data, split, cfg.coco)
    return _DATASETS[key]


def prepare(cfg: Config, out: str | Path | None = None, workers: int | None = None, progress: bool = True) -> dict:
    """Write ``{split}.npz``, the crop bank and ``summary.json`` to ``out`` (default ``prepare.out``)."""
    out = Path(out or cfg.prepare.out)
    workers = workers or os.cpu_count() or 1
    summary: dict = {"splits": {}}
    with atomic_directory(out) as tmp:
        for split in cfg.prepare.splits:
            n = len(_dataset_cache(cfg, split))
            jobs = [(cfg, split, i) for i in range(n)]
            frames: list[FrameExamples] = []
            # The bar is closed (its line ended) before an error in a frame reaches the one-line report.
            with tqdm(total=n, desc=f"prepare {split}", unit="frame", disable=not progress) as bar:
                if workers <= 1:
                    for job in jobs:
                        frames.append(_frame_job(job))
                        bar.update()
                else:
                    with ProcessPoolExecutor(workers) as pool:
                        for result in pool.map(_frame_job, jobs, chunksize=8):
                            frames.append(result)
                            bar.update()
            summary["splits"][split] = _write_split(tmp, split, frames, cfg.prepare)
            if cfg.rules.learned and split == cfg.prepare.splits[0]:
                # The rules real frames are judged by, learned from the first (training) split's objects.
                yardstick = learn_yardstick([fact for f in frames for fact in f.facts], cfg.rules,
                                            [BY_NAME[name].id for name in cfg.prepare.classes])
                save_yardstick(yardstick, tmp / YARDSTICK_FILE)
                summary["yardstick"] = yardstick.to_json() | {"learned_from": split}
        summary["classes"] = cfg.prepare.classes
        atomic_write_json(tmp / "summary.json", summary, indent=2)
    return summary


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` whose bytes depend on the arrays only (``np.savez_compressed`` stamps each
    member with the current time, so the same data would hash differently and retrigger training)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buf.getvalue()


def _write_split(root: Path, split: str, frames: list[FrameExamples], cfg: PrepareConfig) -> dict:
    arrays = {key: np.stack([f.maps[key] for f in frames]) for key in frames[0].maps}
    rows = [(i, row) for i, f in enumerate(frames) for row in f.instances]
    s = cfg.mask_size
    arrays["frames"] = np.array([f.stem for f in frames])
    arrays["inst_frame"] = np.array([i for i, _ in rows], np.int32)
    arrays["inst_class"] = np.array([r["class"] for _, r in rows], np.uint8)
    arrays["inst_value"] = np.array([r["value"] for _, r in rows], np.int32)
    arrays["inst_box"] = np.array([r["box"] for _, r in rows], np.float32).reshape(-1, 4)
    arrays["inst_mask"] = np.array([r["mask"] for _, r in rows], np.uint8).reshape(-1, s, s)
    if cfg.remove_object:
        w, h = cfg.where_size
        tw, th = cfg.what_size
        arrays["xp_where"] = np.array([r["xp_where"] for _, r in rows], np.uint8).reshape(-1, h, w)
        arrays["xp_what"] = np.array([r["xp_what"] for _, r in rows], np.uint8).reshape(-1, th, tw)
    atomic_write_bytes(root / f"{split}.npz", npz_bytes(arrays))
    index = bytearray()
    for f in frames:
        for name, png, entry in f.crops:
            atomic_write_bytes(root / "crops" / split / name, png)
            index += dumps_json(entry)
    atomic_write_bytes(root / "crops" / split / "index.jsonl", bytes(index))
    # Each crop's mask as a square (the rows of index.jsonl, in order): what retrieval compares shapes on.
    masks = io.BytesIO()
    np.save(masks, arrays["inst_mask"], allow_pickle=False)
    atomic_write_bytes(root / "crops" / split / "masks.npy", masks.getvalue())
    rejected = sum((f.rejected for f in frames), Counter())
    per_class = Counter(cfg.classes[r["class"]] for _, r in rows)
    heights = {name: float(np.median([r["height"] for _, r in rows if cfg.classes[r["class"]] == name]))
               for name in per_class}
    return {"frames": len(frames), "instances": dict(per_class), "rejected": dict(sorted(rejected.items())),
            "median_height": heights}
