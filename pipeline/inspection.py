"""Summarise a dataset: frames, classes, instance counts and sizes, and the problems found.

Used by ``ctxaug inspect``. Every frame is read with the same readers the pipeline trains on, so a
frame that would stop a stage is reported here (file and problem), and the rest are still counted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from pipeline.errors import DatasetError
from pipeline.labels import BY_ID, TARGET_CLASSES


@dataclass
class Report:
    frames: Counter = field(default_factory=Counter)  # split -> readable frames
    pixels: Counter = field(default_factory=Counter)  # label name -> pixels
    instances: Counter = field(default_factory=Counter)  # label name -> objects (crowd excluded)
    crowd: Counter = field(default_factory=Counter)  # label name -> crowd regions
    heights: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    areas: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    with_camera: int = 0
    with_parts: int = 0
    sizes: Counter = field(default_factory=Counter)  # "WxH" -> frames
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        total = sum(self.pixels.values()) or 1
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
            "instance_height_px": {k: stats(v) for k, v in sorted(self.heights.items())},
            "instance_area_px": {k: stats(v) for k, v in sorted(self.areas.items())},
            "problems": self.problems,
        }


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
                report.heights[inst.name].append(inst.bbox[3])
                report.areas[inst.name].append(inst.area)
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
    if d["crowd_regions"]:
        lines.append("crowd regions: " + ", ".join(f"{k} {v}" for k, v in d["crowd_regions"].items()))
    lines.append(f"problems: {len(d['problems'])}")
    lines += [f"  {p}" for p in d["problems"][:50]]
    if len(d["problems"]) > 50:
        lines.append(f"  ... and {len(d['problems']) - 50} more")
    return "\n".join(lines)
