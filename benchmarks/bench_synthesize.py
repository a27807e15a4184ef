"""Generation speed of the built-in dataset: frames/s and peak memory.

    python benchmarks/bench_synthesize.py [--frames 200] [--width 512 --height 256] [--workers 1]

Prints the time split between generating scenes (geometry, labels, RGB) and writing them (polygons,
PNG encoding, files), the end-to-end frames/s of the real runner, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from pipeline.config import SyntheticConfig
from pipeline.datasets.synthetic import frame_ids, generate_scene
from pipeline.synthesize import generate_dataset
from pipeline.writers.cityscapes_writer import canonical_scene, frame_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    cfg = SyntheticConfig(splits={"train": args.frames}, width=args.width, height=args.height)
    frames = frame_ids(cfg)

    generate_scene(cfg, 0, frames[0])  # warm-up (imports, caches)
    t0 = time.perf_counter()
    scenes = [generate_scene(cfg, 0, f) for f in frames[:50]]
    t_gen = (time.perf_counter() - t0) / len(scenes)
    t0 = time.perf_counter()
    for scene in scenes:
        frame_files(*canonical_scene(scene))
    t_enc = (time.perf_counter() - t0) / len(scenes)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_dataset(cfg, 0, Path(tmp) / "ds", workers=args.workers, progress=False)
        wall = time.perf_counter() - t0
    peak_mib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(f"resolution          {args.width}x{args.height}")
    print(f"generate scene      {t_gen * 1000:7.1f} ms/frame")
    print(f"polygons + encode   {t_enc * 1000:7.1f} ms/frame")
    print(f"end to end          {args.frames / wall:7.1f} frames/s  ({args.frames} frames, {args.workers} worker(s), "
          f"files written)")
    print(f"peak memory         {peak_mib:7.0f} MiB (largest process)")


if __name__ == "__main__":
    main()
