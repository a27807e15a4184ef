"""The memory bank of real object crops and the selector that picks one for a generated shape.

The bank is the ``prepare`` stage's ``crops/{split}/``: ``index.jsonl`` (one real instance per line:
file, class, box, colour statistics), ``masks.npy`` (each crop's mask resized to a square, row i =
line i) and the RGBA PNGs. Each crop also serves mirrored, so the bank holds twice its lines.

Selection scores every crop of the class against the generated object at once:

    score = IoU(shapes at normalised size) - scale_weight * |log(h_target / h_crop)|
            - aspect_weight * |log(aspect change)| - colour_weight * |context_target - context_crop| / 255

(shape fit, little resampling, similar surroundings), and the frame's random generator picks one of the
``top_k`` best - the same frame and seed always get the same crop.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from pipeline.config import AppearanceConfig
from pipeline.errors import DatasetError
from pipeline.io import decode_image, read_bytes


@dataclass(frozen=True)
class Crop:
    """One selected crop: where it came from, whether it is mirrored, and how well it fitted."""

    file: str
    frame: str
    flipped: bool
    score: float
    iou: float
    context_rgb: tuple[float, float, float]


@dataclass(frozen=True)
class _ClassBank:
    """One class's crops as arrays, each crop twice (as is, mirrored)."""

    rows: np.ndarray  # line of index.jsonl
    masks: np.ndarray  # [2n, S*S] float 0/1
    flipped: np.ndarray
    frames: np.ndarray  # source frame stem
    wh: np.ndarray  # crop box width, height (pixels)
    context: np.ndarray  # mean RGB around the crop's object


class CropBank:
    def __init__(self, directory: str | Path, cfg: AppearanceConfig, frames: Collection[str] | None = None):
        """The bank in ``directory``; with ``frames`` (frame stems), only the crops of those frames."""
        self.directory = Path(directory)
        self.cfg = cfg
        index, masks = self.directory / "index.jsonl", self.directory / "masks.npy"
        for path in (index, masks):
            if not path.is_file():
                raise DatasetError(path, "missing: the crop bank comes from the prepare stage (dvc repro prepare)")
        self.entries = [json.loads(line) for line in index.read_text().splitlines() if line.strip()]
        self._by_file = {e["file"]: e for e in self.entries}
        squares = np.load(masks, allow_pickle=False)
        if len(squares) != len(self.entries):
            raise DatasetError(masks, f"{len(squares)} masks for {len(self.entries)} index lines: re-run prepare")
        self.size = squares.shape[-1] if len(squares) else 0
        self._by_class: dict[str, _ClassBank] = {}
        for name in sorted({e["class"] for e in self.entries}):
            rows = np.array([i for i, e in enumerate(self.entries)
                             if e["class"] == name and (frames is None or e["frame"] in frames)], dtype=np.int64)
            if rows.size == 0:
                continue
            flat = squares[rows].reshape(len(rows), -1).astype(np.float32)
            mirrored = squares[rows][:, :, ::-1].reshape(len(rows), -1).astype(np.float32)
            both = np.concatenate([rows, rows])  # bank rows 0..n-1: the crops as they are; n..2n-1 mirrored
            self._by_class[name] = _ClassBank(
                rows=both,
                masks=np.concatenate([flat, mirrored]),
                flipped=np.repeat([False, True], len(rows)),
                frames=np.array([self.entries[r]["frame"] for r in both]),
                wh=np.array([self.entries[r]["box"][2:4] for r in both], np.float32),
                context=np.array([self.entries[r]["context_rgb"] for r in both], np.float32),
            )

    def classes(self) -> list[str]:
        return sorted(self._by_class)

    def select(self, name: str, shape: np.ndarray, size: tuple[int, int], context: np.ndarray,
               rng: np.random.Generator, exclude_frame: str | None = None) -> Crop | None:
        """The crop for a generated object of class ``name``: binary ``shape`` (any square size), target
        ``size`` = (w, h) in pixels, target context colour (RGB). Crops from ``exclude_frame`` are not
        used (an object pasted into its own frame would be a clone). None when the class has no crop."""
        if name not in self._by_class:
            return None
        b = self._by_class[name]
        keep = b.frames != exclude_frame if exclude_frame is not None else np.ones(len(b.rows), bool)
        if not keep.any():
            return None
        target = cv2.resize(shape.astype(np.uint8), (self.size, self.size), interpolation=cv2.INTER_NEAREST)
        target = target.reshape(-1).astype(np.float32)
        inter = b.masks @ target
        iou = inter / np.maximum(b.masks.sum(1) + target.sum() - inter, 1.0)
        w, h = max(size[0], 1), max(size[1], 1)
        scale = np.abs(np.log(h / b.wh[:, 1]))
        aspect = np.abs(np.log((h / w) / (b.wh[:, 1] / b.wh[:, 0])))
        colour = np.linalg.norm(b.context - np.asarray(context, np.float32), axis=1) / 255.0
        c = self.cfg
        score = iou - c.scale_weight * scale - c.aspect_weight * aspect - c.colour_weight * colour
        score = np.where(keep, score, -np.inf)
        k = min(c.top_k, int(keep.sum()))
        # Stable order (score, then bank position) so ties never depend on the sort algorithm.
        best = np.lexsort((np.arange(len(score)), -score))[:k]
        pick = int(best[rng.integers(k)])
        entry = self.entries[b.rows[pick]]
        return Crop(entry["file"], entry["frame"], bool(b.flipped[pick]), float(score[pick]), float(iou[pick]),
                    tuple(entry["context_rgb"]))

    def crop(self, file: str, flipped: bool) -> Crop:
        """The bank's crop stored as ``file`` (as a manifest names it), mirrored or not."""
        entry = self._by_file.get(file)
        if entry is None:
            raise DatasetError(self.directory / file, "not in the crop bank's index.jsonl: re-run prepare")
        return Crop(entry["file"], entry["frame"], bool(flipped), 0.0, 0.0, tuple(entry["context_rgb"]))

    def rgba(self, crop: Crop) -> np.ndarray:
        """The crop's pixels as H x W x 4 (RGB + mask alpha), mirrored when selected so."""
        rgba = _read_rgba(str(self.directory / crop.file))
        return rgba[:, ::-1] if crop.flipped else rgba


@lru_cache(maxsize=512)
def _read_rgba(path: str) -> np.ndarray:
    p = Path(path)
    image = decode_image(read_bytes(p), p)
    if image.ndim != 3 or image.shape[2] != 4:
        raise DatasetError(p, "a crop must be an RGBA PNG")
    rgba = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    rgba.setflags(write=False)
    return rgba
