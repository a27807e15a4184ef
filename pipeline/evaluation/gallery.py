"""A gallery for people who would rather look: frames before and after, inserted objects outlined.

``reports/gallery.png`` stacks one row per frame (before | after); ``reports/gallery.html`` shows the
same pairs as separate images (``reports/gallery/``) with the metrics beside them. Each inserted object
is outlined where it is visible and labelled with its class and manifest id.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from pipeline.augmentation import augmented_frame
from pipeline.config import CocoConfig, DataConfig
from pipeline.datasets import open_dataset
from pipeline.datasets.cityscapes import read_scene
from pipeline.io import atomic_write_bytes, encode_png
from pipeline.scene import FrameId, Scene

OUTLINE_RGB = {"person": (255, 230, 0), "car": (0, 255, 255)}
WIDTH = 512  # of each image in the gallery


def outlined(after: Scene, items: list[dict]) -> np.ndarray:
    """The augmented image with each inserted object's visible pixels outlined and labelled."""
    image = after.image.copy()
    for m in items:
        whole = mask_utils.decode(m["whole_mask"]).astype(bool)
        visible = after.instance_ids == m["instance_id"]
        colour = OUTLINE_RGB.get(m["class"], (255, 255, 255))
        contours, _ = cv2.findContours(visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        thickness = max(1, image.shape[1] // 512)
        cv2.drawContours(image, contours, -1, colour, thickness)
        ys, xs = np.nonzero(whole)
        if ys.size:
            text = f"{m['class']} {m['id'].rsplit('/', 1)[-1]}"
            org = (int(xs.min()), max(10 * thickness, int(ys.min()) - 3))
            cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.35 * thickness, colour, thickness, cv2.LINE_AA)
    return image


def fit_width(image: np.ndarray) -> np.ndarray:
    """The image scaled to the gallery's column width."""
    h, w = image.shape[:2]
    return cv2.resize(image, (WIDTH, round(h * WIDTH / w)), interpolation=cv2.INTER_AREA)


def gallery_pairs(read_source: Callable[[FrameId], Scene], out: str | Path,
                  frames: int) -> list[tuple[str, list[np.ndarray]]]:
    """(frame stem, [before, after]) for ``frames`` source frames spread over an augment run's manifest;
    ``read_source`` reads a source frame (``dataset_reader``)."""
    out = Path(out)
    by_frame: dict = defaultdict(list)
    for line in (out / "manifest.jsonl").read_text().splitlines():
        if line.strip():
            m = json.loads(line)
            by_frame[(m["split"], m["source_frame"])].append(m)
    keys = sorted(by_frame)
    if not keys:
        return []
    picks = sorted({int(round(i)) for i in np.linspace(0, len(keys) - 1, min(frames, len(keys)))})
    pairs = []
    for k in picks:
        split, stem = keys[k]
        frame = FrameId.parse(split, stem)
        before = read_source(frame)
        after = read_scene(out / "cityscapes", augmented_frame(frame))
        pairs.append((stem, [fit_width(before.image), fit_width(outlined(after, by_frame[keys[k]]))]))
    return pairs


def dataset_reader(data: DataConfig, coco: CocoConfig) -> Callable[[FrameId], Scene]:
    """Reads a frame of the configured dataset, in either format (each split opened once, when first asked)."""
    opened: dict[str, tuple] = {}

    def read(frame: FrameId) -> Scene:
        if frame.split not in opened:
            dataset = open_dataset(data, frame.split, coco)
            opened[frame.split] = dataset, {dataset.frame_id(i).stem: i for i in range(len(dataset))}
        dataset, index = opened[frame.split]
        return dataset[index[frame.stem]]

    return read


def write_gallery(rows: list[tuple[str, list[np.ndarray]]], reports: str | Path, metrics: dict) -> None:
    """``gallery.png`` (one row of images per entry: before | after, or one image per render mode),
    ``gallery.html`` with the same rows and the metrics, its images under ``gallery/``."""
    reports = Path(reports)
    if not rows:
        return
    gap = 8
    width = max(len(images) for _, images in rows) * (WIDTH + gap) - gap
    strips = []
    for _, images in rows:
        h = max(im.shape[0] for im in images)
        strip = np.full((h, width, 3), 255, np.uint8)
        for k, im in enumerate(images):
            strip[: im.shape[0], k * (WIDTH + gap) : k * (WIDTH + gap) + im.shape[1]] = im
        strips += [strip, np.full((gap, width, 3), 255, np.uint8)]
    atomic_write_bytes(reports / "gallery.png", encode_png(np.concatenate(strips[:-1], 0), rgb=True))
    cells = []
    for r, (caption, images) in enumerate(rows):
        tags = []
        for k, im in enumerate(images):
            name = f"row{r:02d}_{k}.png"
            atomic_write_bytes(reports / "gallery" / name, encode_png(im, rgb=True))
            tags.append(f"<td><img src='gallery/{name}'></td>")
        cells.append(f"<tr><td>{html.escape(caption)}</td>{''.join(tags)}</tr>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Augmentation gallery</title>"
        "<style>body{font-family:sans-serif} td{vertical-align:top;padding:4px} pre{font-size:12px}</style>"
        "</head><body><h1>Augmentation gallery</h1>"
        "<p>Frames before | after insertion (inserted persons outlined in yellow, cars in cyan, labelled with "
        "their manifest id), then the same frames drawn by each render mode (paste | gan | gan+parts).</p>"
        f"<table>{''.join(cells)}</table>"
        f"<h2>Metrics</h2><pre>{html.escape(json.dumps(metrics, indent=2))}</pre></body></html>"
    )
    atomic_write_bytes(reports / "gallery.html", page.encode())
