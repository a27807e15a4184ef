"""A gallery for people who would rather look: frames before and after, inserted objects outlined.

``reports/gallery.png`` stacks one row per frame (before | after); ``reports/gallery.html`` shows the
same pairs as separate images (``reports/gallery/``) with the metrics beside them. Each inserted object
is outlined where it is visible and labelled with its class and manifest id.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from pipeline.augment import augmented_frame
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


def _fit(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (WIDTH, round(h * WIDTH / w)), interpolation=cv2.INTER_AREA)


def gallery_pairs(source_root: str | Path, out: str | Path, frames: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(frame stem, before, after) for ``frames`` source frames spread over an augment run's manifest."""
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
        before = read_scene(Path(source_root), frame)
        after = read_scene(out / "cityscapes", augmented_frame(frame))
        pairs.append((stem, _fit(before.image), _fit(outlined(after, by_frame[keys[k]]))))
    return pairs


def write_gallery(pairs: list[tuple[str, np.ndarray, np.ndarray]], reports: str | Path, metrics: dict) -> None:
    """``gallery.png`` (rows of before | after), ``gallery.html`` and its images under ``gallery/``."""
    reports = Path(reports)
    if not pairs:
        return
    gap = np.full((pairs[0][1].shape[0], 8, 3), 255, np.uint8)
    rows = []
    for _, before, after in pairs:
        h = max(before.shape[0], after.shape[0])
        pad = [np.pad(im, ((0, h - im.shape[0]), (0, 0), (0, 0)), constant_values=255) for im in (before, after)]
        rows.append(np.concatenate([pad[0], gap[:h], pad[1]], 1))
        rows.append(np.full((8, rows[-1].shape[1], 3), 255, np.uint8))
    atomic_write_bytes(reports / "gallery.png", encode_png(np.concatenate(rows[:-1], 0), rgb=True))
    cells = []
    for stem, before, after in pairs:
        for tag, im in (("before", before), ("after", after)):
            atomic_write_bytes(reports / "gallery" / f"{stem}_{tag}.png", encode_png(im, rgb=True))
        cells.append(f"<tr><td>{html.escape(stem)}</td><td><img src='gallery/{html.escape(stem)}_before.png'></td>"
                     f"<td><img src='gallery/{html.escape(stem)}_after.png'></td></tr>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Augmentation gallery</title>"
        "<style>body{font-family:sans-serif} td{vertical-align:top;padding:4px} pre{font-size:12px}</style>"
        "</head><body><h1>Augmentation gallery</h1>"
        "<p>Before | after; inserted persons outlined in yellow, cars in cyan, labelled with their manifest id.</p>"
        f"<table><tr><th>frame</th><th>before</th><th>after</th></tr>{''.join(cells)}</table>"
        f"<h2>Metrics</h2><pre>{html.escape(json.dumps(metrics, indent=2))}</pre></body></html>"
    )
    atomic_write_bytes(reports / "gallery.html", page.encode())
