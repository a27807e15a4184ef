"""Summarise a dataset: frames, classes, instance counts and sizes, and the problems found.

Used by ``ctxaug inspect``. Every frame is read with the same readers the pipeline trains on, so a
frame that would stop a stage is reported here (file and problem), and the rest are still counted.

Sizes are also given per split, with a note where a class's median height in one split differs from the
first split's by more than ``SHIFT`` (20%): the GAN learns where and how large objects stand from the
training split, so a held-out split whose objects are larger or smaller than the training split's (CamVid's
val persons are about 1.7x train's at a similar foot row) is a shift between the splits that no placement
model fitted on the training split reproduces - worth knowing before reading inserted sizes against it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from pipeline.errors import DatasetError
from pipeline.labels import BY_ID, TARGET_CLASSES

SHIFT = 0.2  # a split's median object height off the first split's by more than this share: noted


@dataclass
class Report:
    frames: Counter = field(default_factory=Counter)  # split -> readable frames
    pixels: Counter = field(default_factory=Counter)  # label name -> pixels
    instances: Counter = field(default_factory=Counter)  # label name -> objects (crowd excluded)
    crowd: Counter = field(default_factory=Counter)  # label name -> crowd regions
    areas: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    # split -> label name -> (height px, foot row as a share of the frame's height) per object
    by_split: dict[str, dict[str, list[tuple[int, float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    with_camera: int = 0
    with_parts: int = 0
    sizes: Counter = field(default_factory=Counter)  # "WxH" -> frames
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        total = sum(self.pixels.values()) or 1
        sizes = self.split_sizes()
        def stats(values: list[int]) -> dict:
            a = np.asarray(values)
            return {"p5": float(np.percentile(a, 5)), "median": float(np.median(a)),
                    "p95": float(np.percentile(a, 95))}
        return {
            "frames": dict(self.frames),
            "image_sizes": dict(self.sizes),
            "frames_with_camera": self.with_camera,
            "frames_with_parts": self.with_parts,
            "class_pixel_share": {k: round(v / total, 4) for k, v in self.pixels.most_common()},
            "instances": dict(self.instances.most_common()),
            "crowd_regions": dict(self.crowd.most_common()),
            "instance_height_px": {k: stats(v) for k, v in sorted(self.heights().items())},
            "instance_area_px": {k: stats(v) for k, v in sorted(self.areas.items())},
            "instances_by_split": sizes,
            "size_shifts": size_shifts(sizes),
            "problems": self.problems,
        }

    def heights(self) -> dict[str, list[int]]:
        """Label name -> the heights in pixels of its objects over every split."""
        out: dict[str, list[int]] = defaultdict(list)
        for classes in self.by_split.values():
            for name, rows in classes.items():
                out[name].extend(h for h, _ in rows)
        return out

    def split_sizes(self) -> dict:
        """Per split and class: objects, their median height in pixels and median foot row (share of the
        frame's height: where they stand)."""
        return {split: {name: {"objects": len(rows), "median_height_px": float(np.median([h for h, _ in rows])),
                               "median_foot_row": round(float(np.median([f for _, f in rows])), 3)}
                        for name, rows in sorted(classes.items())}
                for split, classes in self.by_split.items()}


def size_shifts(sizes: dict) -> list[str]:
    """From ``Report.split_sizes``: one line per later split and class whose median height is off the first
    split's by over ``SHIFT``."""
    if len(sizes) < 2:
        return []
    (first, base), *others = sizes.items()
    lines = []
    for split, classes in others:
        for name, cell in classes.items():
            if name not in base:
                continue
            ratio = cell["median_height_px"] / base[name]["median_height_px"]
            if abs(ratio - 1) > SHIFT:
                lines.append(f"{split}'s {name}s are {ratio:.2f}x as tall as {first}'s (median "
                             f"{cell['median_height_px']:.0f} px against {base[name]['median_height_px']:.0f}, "
                             f"feet at {cell['median_foot_row']:.2f} against {base[name]['median_foot_row']:.2f} "
                             "of the frame's height)")
    return lines


def inspect_dataset(datasets: dict, progress: bool = True) -> Report:
    """``datasets``: split -> dataset (``len`` + ``[i]``). Unreadable frames become problems."""
    report = Report()
    for split, dataset in datasets.items():
        for i in tqdm(range(len(dataset)), desc=f"inspect {split}", unit="frame", disable=not progress):
            try:
                scene = dataset[i]
            except DatasetError as exc:
                report.problems.append(str(exc))
                continue
            report.frames[split] += 1
            height, width = scene.size
            report.sizes[f"{width}x{height}"] += 1
            report.with_camera += scene.camera is not None
            report.with_parts += scene.parts is not None
            counts = np.bincount(scene.labels.ravel(), minlength=256)
            for label_id in np.flatnonzero(counts).tolist():
                report.pixels[BY_ID[label_id].name] += int(counts[label_id])
            targets = 0
            for inst in scene.instances:
                if inst.iscrowd:
                    report.crowd[inst.name] += 1
                    continue
                report.instances[inst.name] += 1
                report.areas[inst.name].append(inst.area)
                x, y, w, h = inst.bbox
                report.by_split[split][inst.name].append((h, (y + h) / height))
                targets += inst.label_id in TARGET_CLASSES
            if targets == 0:
                report.problems.append(f"{split}/{scene.frame.stem}: no person or car to learn from")
    if not sum(report.frames.values()) and not report.problems:
        report.problems.append("no frames")
    return report


def format_report(report: Report) -> str:
    d = report.as_dict()
    lines = [f"frames: {', '.join(f'{k} {v}' for k, v in d['frames'].items()) or 'none'}"]
    lines.append(f"image sizes: {', '.join(f'{k} ({v})' for k, v in d['image_sizes'].items())}")
    lines.append(f"with camera: {d['frames_with_camera']}, with part maps: {d['frames_with_parts']}")
    lines.append("classes (pixel share): " + ", ".join(
        f"{k} {v:.1%}" for k, v in d["class_pixel_share"].items() if v >= 0.001))
    lines.append("instances:")
    for name, n in d["instances"].items():
        h, a = d["instance_height_px"][name], d["instance_area_px"][name]
        lines.append(f"  {name:<12} {n:>6}  height px p5/median/p95 {h['p5']:.0f}/{h['median']:.0f}/{h['p95']:.0f}"
                     f"  area px median {a['median']:.0f}")
    if len(d["instances_by_split"]) > 1:
        lines.append("instances by split (objects, median height px, median foot row / frame height):")
        for split, classes in d["instances_by_split"].items():
            lines.append(f"  {split:<12} " + ", ".join(
                f"{name} {c['objects']} {c['median_height_px']:.0f} px {c['median_foot_row']:.2f}"
                for name, c in classes.items()))
    lines += [f"size shift: {line}" for line in d["size_shifts"]]
    if d["crowd_regions"]:
        lines.append("crowd regions: " + ", ".join(f"{k} {v}" for k, v in d["crowd_regions"].items()))
    lines.append(f"problems: {len(d['problems'])}")
    lines += [f"  {p}" for p in d["problems"][:50]]
    if len(d["problems"]) > 50:
        lines.append(f"  ... and {len(d['problems']) - 50} more")
    return "\n".join(lines)
