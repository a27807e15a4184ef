"""Generate the built-in synthetic dataset on disk: every frame, in parallel, deterministically.

The dataset is built in a temporary folder beside ``out`` and moved into place only when every frame
is written, so ``out`` is either the previous complete dataset or the new complete one. Each frame
depends only on (seed, split, index), so the bytes do not depend on the number of workers.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from pipeline.config import SyntheticConfig
from pipeline.datasets.synthetic import frame_ids, generate_scene
from pipeline.io import atomic_directory, atomic_write_json
from pipeline.scene import FrameId
from pipeline.writers.cityscapes_writer import write_scene


def _write_frame(args: tuple[SyntheticConfig, int, FrameId, str]) -> dict[str, int]:
    cfg, seed, frame, root = args
    scene = write_scene(root, generate_scene(cfg, seed, frame))
    counts: dict[str, int] = {}
    for inst in scene.instances:
        counts[inst.name] = counts.get(inst.name, 0) + 1
    return counts


def generate_dataset(cfg: SyntheticConfig, seed: int, out: str | Path | None = None,
                     workers: int | None = None, progress: bool = True) -> dict:
    """Write the dataset to ``out`` (default ``cfg.out``); returns a summary (frames, instances)."""
    out = Path(out or cfg.out)
    frames = frame_ids(cfg)
    workers = workers if workers is not None else (cfg.workers or os.cpu_count() or 1)
    totals: dict[str, int] = {}
    with atomic_directory(out) as tmp:
        jobs = [(cfg, seed, frame, str(tmp)) for frame in frames]
        bar = tqdm(total=len(jobs), desc="synthesize", unit="frame", disable=not progress)
        if workers <= 1:
            results = map(_write_frame, jobs)
            for counts in results:
                _add(totals, counts)
                bar.update()
        else:
            with ProcessPoolExecutor(workers) as pool:
                for counts in pool.map(_write_frame, jobs, chunksize=8):
                    _add(totals, counts)
                    bar.update()
        bar.close()
        summary = {
            "frames": {split: n for split, n in cfg.splits.items()},
            "instances": dict(sorted(totals.items())),
            "size": [cfg.width, cfg.height],
            "seed": seed,
        }
        atomic_write_json(tmp / "dataset.json", summary, indent=2)
    return summary


def _add(totals: dict[str, int], counts: dict[str, int]) -> None:
    for key, n in counts.items():
        totals[key] = totals.get(key, 0) + n
