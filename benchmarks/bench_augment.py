"""Augment speed against the I/O floor, and peak memory against dataset size.

    python benchmarks/bench_augment.py [--sizes 512x256 2048x1024] [--frames 24 8] [--device cpu]

Needs a trained model and crop bank (``dvc repro train``: ``models/insertion``, ``data/prepared``); the
model reads any resolution (its inputs are resized), so each size gets a fresh built-in dataset.

For each size, in fresh processes on the same frames:
- the I/O floor: read every input file and write every output (the original frame copied, the frame
  written again as its augmented copy with polygons, COCO annotations for both, the frame's record) -
  the augment code path with the model and the insertion taken out - in one process;
- augment: the real run (``pipeline.augment.augment``), model on ``--device``, in one process (the
  comparison with the floor) and with ``augment.workers: 0`` (one process per core, the default);
and the peak resident memory of a one-process augment over N and 2N frames (it must not grow with the
dataset).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _child(args: argparse.Namespace) -> None:
    import torch

    from pipeline.augment import Context, _guarded, augment, key_digest, run_key
    from pipeline.config import DataConfig, load_config
    from pipeline.datasets import open_dataset
    from pipeline.insertion import FrameInsertions

    cfg = load_config(REPO / "params.yaml")
    cfg.data = DataConfig(root=args.root)
    cfg.augment = dataclasses.replace(
        cfg.augment, out=args.out, device=args.device, model=args.model or str(REPO / cfg.augment.model),
        workers=args.workers, appearance=dataclasses.replace(
            cfg.augment.appearance, crops=args.crops or str(REPO / cfg.augment.appearance.crops)))
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.mode == "floor":
        class NoInsertion:
            protect_existing = False

            def insert(self, scene, seed, exclude_frame=None):
                return FrameInsertions()

        device = torch.device(args.device)
        key = run_key(cfg, device)
        ctx = Context(cfg, NoInsertion(), key_digest(key), key["inputs"]["model"], Path(args.out), {})
        dataset = open_dataset(cfg.data, "train")
        for i in range(len(dataset)):
            _guarded(ctx, "train", i)
        frames = len(dataset)
    else:
        result = augment(cfg, progress=False)
        frames = result["frames_done"]
    seconds = time.perf_counter() - t0
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024  # largest process
    print(json.dumps({"frames": frames, "seconds": seconds, "peak_mib": peak}))


def _run(mode: str, root: Path, out: Path, device: str, threads: int, workers: int = 1,
         model: str | None = None, crops: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--root", str(root), "--out", str(out), "--device", device,
           "--threads", str(threads), "--workers", str(workers)]
    cmd += ["--model", model] if model else []
    cmd += ["--crops", crops] if crops else []
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(size: str, n: int, device: str, threads: int, memory: bool = True, synth_workers: int = 2,
            model: str | None = None, crops: str | None = None) -> dict:
    """Frames/s of the I/O floor and of augment (one process; and one process per core) on ``n`` fresh
    built-in frames of ``size`` ("WxH"); with ``memory``, also the peak RSS over ``n`` and ``2n`` frames.
    ``model`` and ``crops`` default to the pipeline's (``models/insertion``, ``data/prepared/crops/train``)."""
    from pipeline.config import SyntheticConfig
    from pipeline.synthesize import generate_dataset

    width, height = (int(v) for v in size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roots = {}
        for count in (n, 2 * n) if memory else (n,):
            roots[count] = tmp / f"data{count}"
            generate_dataset(SyntheticConfig(splits={"train": count}, width=width, height=height), 0,
                             roots[count], workers=synth_workers, progress=False)
        floor = _run("floor", roots[n], tmp / "floor", device, threads, 1, model, crops)
        aug = _run("augment", roots[n], tmp / "aug", device, threads, 1, model, crops)
        aug2 = _run("augment", roots[2 * n], tmp / "aug2", device, threads, 1, model, crops) if memory else None
        par = _run("augment", roots[n], tmp / "par", device, threads, 0, model, crops)
    floor_fps, aug_fps = floor["frames"] / floor["seconds"], aug["frames"] / aug["seconds"]
    return {"size": size, "frames": n, "floor_fps": floor_fps, "augment_fps": aug_fps, "ratio": aug_fps / floor_fps,
            "workers_fps": par["frames"] / par["seconds"], "peak_mib": aug["peak_mib"],
            "peak_mib_2n": aug2["peak_mib"] if aug2 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["512x256", "2048x1024"])
    parser.add_argument("--frames", nargs="+", type=int, default=[24, 8], help="frames per size (N; memory uses 2N)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["floor", "augment"])
    parser.add_argument("--root")
    parser.add_argument("--out")
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--crops", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.mode = args.child
        _child(args)
        return
    print(f"device {args.device}, {args.threads} threads; frames/s over N frames; peak RSS of the augment process")
    for size, n in zip(args.sizes, args.frames, strict=True):
        m = measure(size, n, args.device, args.threads)
        print(f"{size:>10}  one process: I/O floor {m['floor_fps']:6.2f} frames/s | augment {m['augment_fps']:6.2f} "
              f"frames/s = {m['ratio']:4.2f}x the floor | augment.workers 0 (one per core): "
              f"{m['workers_fps']:6.2f} frames/s")
        print(f"{'':>10}  peak memory of augment (one process): {m['peak_mib']:.0f} MiB over {n} frames, "
              f"{m['peak_mib_2n']:.0f} MiB over {2 * n}")

if __name__ == "__main__":
    main()
