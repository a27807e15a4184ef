"""Generate the built-in synthetic dataset on disk: every frame, in parallel, deterministically.

The dataset is built in a temporary folder beside ``out`` and moved into place only when every frame
is written, so ``out`` is either the previous complete dataset or the new complete one. Each frame
depends only on (seed, split, index), so the bytes do not depend on the number of workers.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from pipeline.config import SyntheticConfig
from pipeline.datasets import LOOKALIKES_FILE
from pipeline.datasets.synthetic import build_scene, frame_ids
from pipeline.datasets.synthetic.decoys import lookalike_records
from pipeline.io import atomic_directory, atomic_write_json
from pipeline.scene import FrameId
from pipeline.writers.cityscapes_writer import write_scene


def _write_frame(args: tuple[SyntheticConfig, int, FrameId, str]) -> tuple[dict[str, int], list[dict]]:
    """Write one frame; its instance counts by class and its look-alikes (``decoys.lookalike_records``)."""
    cfg, seed, frame, root = args
    scene, builder = build_scene(cfg, seed, frame)
    scene = write_scene(root, scene)
    counts: dict[str, int] = {}
    for inst in scene.instances:
        counts[inst.name] = counts.get(inst.name, 0) + 1
    return counts, lookalike_records(builder.decoys, scene.size)


def generate_dataset(cfg: SyntheticConfig, seed: int, out: str | Path | None = None,
                     workers: int | None = None, progress: bool = True) -> dict:
    """Write the dataset to ``out`` (default ``cfg.out``); returns a summary (frames, instances)."""
    out = Path(out or cfg.out)
    frames = frame_ids(cfg)
    workers = workers if workers is not None else (cfg.workers or os.cpu_count() or 1)
    totals: dict[str, int] = {}
    lookalikes: dict[str, dict[str, list[dict]]] = {split: {} for split in cfg.splits}
    with atomic_directory(out) as tmp:
        jobs = [(cfg, seed, frame, str(tmp)) for frame in frames]
        bar = tqdm(total=len(jobs), desc="synthesize", unit="frame", disable=not progress)
        with contextlib.ExitStack() as stack:
            if workers <= 1:
                results = map(_write_frame, jobs)
            else:
                results = stack.enter_context(ProcessPoolExecutor(workers)).map(_write_frame, jobs, chunksize=8)
            for frame, (counts, records) in zip(frames, results, strict=True):
                _add(totals, counts)
                lookalikes[frame.split][frame.stem] = records
                bar.update()
        bar.close()
        summary = {
            "frames": {split: n for split, n in cfg.splits.items()},
            "instances": dict(sorted(totals.items())),
            "size": [cfg.width, cfg.height],
            "seed": seed,
        }
        atomic_write_json(tmp / "dataset.json", summary, indent=2)
        # What no label map says (they are building there): for the downstream probe (evaluation/instances.py).
        atomic_write_json(tmp / LOOKALIKES_FILE, {"splits": lookalikes})
    return summary


def _add(totals: dict[str, int], counts: dict[str, int]) -> None:
    for key, n in counts.items():
        totals[key] = totals.get(key, 0) + n
