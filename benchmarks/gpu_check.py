"""One command for a machine with a CUDA GPU: is the CUDA path right, and how fast is it?

    python benchmarks/gpu_check.py [--quick] [--json FILE] [--skip TESTS|TRAIN|RENDERER|AUGMENT ...]

Prints, in order:
1. correctness - the test suite's CUDA-marked tests (``tests/test_cuda.py``: GAN and renderer training
   steps in bf16 and fp32 give finite losses, the stage's training loop runs, a trained model gives the
   same candidates on CPU and GPU, augment on CUDA);
2. training throughput of the insertion GAN at the reference sizes and widths (where 256x128, what
   1024x512, mask 128): samples/s at batch 1 and at the largest batch that fits (doubling until out of
   memory or ``--max-batch``), bf16 autocast on and off; against the targets of 100 samples/s and the
   reference implementation's one sample per 43 s;
3. renderer training steps/s at 512x256 and 1024x512, reference widths, whole frames, batch 1;
4. augment frames/s at 2048x1024 on the GPU, one process and one process per CPU core, against the PNG
   I/O floor measured in the same run (read inputs, write every output, no model); target 0.8x the floor.

It needs torch, numpy, opencv, safetensors, pyyaml, tqdm, scipy and pycocotools; dvc, dvclive and
albumentations are not needed (the CUDA tests stand in for dvclive when it is absent). On a GPU image
without pycocotools, carry its wheel (see the README's performance section). Without CUDA it runs its
CPU fallback: every part at small sizes (``--quick`` is then implied), to show that each works end to end.
The augment part uses ``models/insertion`` and ``data/prepared/crops/train`` when present (``dvc repro
prepare train``), else an untrained default-profile model and a crop bank prepared here (said in the output).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

import bench_augment  # noqa: E402
import bench_renderer  # noqa: E402
import bench_train  # noqa: E402

TRAIN_TARGET = 100.0  # samples/s at the reference sizes
AUGMENT_TARGET = 0.8  # of the I/O floor


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run_tests() -> dict:
    """The CUDA-marked tests, in a child pytest; their closing line."""
    t0 = time.perf_counter()
    # One process, without pyproject's `-n auto` (pytest-xdist may be missing on a GPU image; one GPU is
    # one worker's)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                           "-m", "cuda", "tests/test_cuda.py"], cwd=REPO, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    closing = lines[-1] if lines else ""
    if done.returncode not in (0, 5):
        print("\n".join(lines[-60:]))
    print(f"pytest -m cuda: {closing} (exit {done.returncode}, {time.perf_counter() - t0:.0f} s)")
    return {"exit": done.returncode, "summary": closing}


def largest_batch(profile: str, device: torch.device, bf16: bool, max_batch: int, iters: int) -> tuple[int, float]:
    """The largest batch (doubling from 2) that trains without running out of memory, and its samples/s."""
    best = (1, None)
    batch = 2
    while batch <= max_batch:
        try:
            sps, _ = bench_train.bench(profile, batch, iters, device, bf16=bf16)
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        best = (batch, sps)
        batch *= 2
    return best


def train_figures(device: torch.device, quick: bool, max_batch: int) -> list[dict]:
    profile = "small" if quick else "reference"
    rows = []
    for bf16 in ((True, False) if device.type == "cuda" else (False,)):
        one, _ = bench_train.bench(profile, 1, 2 if quick else 5, device, bf16=bf16)
        batch, many = largest_batch(profile, device, bf16, max_batch, 2 if quick else 3)
        row = {"profile": profile, "bf16": bf16, "batch1_sps": round(one, 2), "largest_batch": batch,
               "largest_batch_sps": round(many, 2) if many else None}
        rows.append(row)
        best = max(one, many or 0)
        print(f"{profile} sizes, {'bf16' if bf16 else 'fp32'}: batch 1 {one:8.2f} samples/s "
              f"({one * bench_train.REFERENCE_SECONDS_PER_SAMPLE:.0f}x the reference) | largest batch {batch}: "
              f"{many or 0:8.2f} samples/s | target {TRAIN_TARGET:.0f}: {'met' if best >= TRAIN_TARGET else 'NOT met'}",
              flush=True)
    return rows


def renderer_figures(device: torch.device, quick: bool) -> list[dict]:
    from pipeline.config import RendererConfig

    rows = []
    if quick:
        sizes, rc = [(64, 32), (128, 64)], RendererConfig(crop=0, batch_size=1, width=8, downs=2, blocks=1)
    else:
        sizes = [(512, 256), (1024, 512)]
        rc = RendererConfig(crop=0, batch_size=1, width=64, downs=4, blocks=9, d_width=64, num_d=3)
    for size in sizes:
        cfg = dataclasses.replace(rc, size=list(size))
        s = bench_renderer.seconds_per_step(cfg, 3 if quick else 10, device)
        rows.append({"size": list(size), "width": cfg.width, "steps_per_second": round(1 / s, 2)})
        print(f"renderer {size[0]}x{size[1]}, width {cfg.width}, {cfg.blocks} blocks, batch 1: {1 / s:7.2f} steps/s",
              flush=True)
    return rows


def model_and_crops(tmp: Path, model: Path = REPO / "models" / "insertion",
                    crops: Path = REPO / "data" / "prepared" / "crops" / "train") -> tuple[str, str, str]:
    """The pipeline's trained model and crop bank when present, else an untrained default-profile model and
    a crop bank prepared from a few built-in frames; and which of the two it is."""
    if (model / "model.safetensors").is_file() and (crops / "index.jsonl").is_file():
        return str(model), str(crops), "the trained model (models/insertion)"
    from pipeline.config import Config, DataConfig, SyntheticConfig, load_config
    from pipeline.prepare import prepare
    from pipeline.synthesize import generate_dataset
    from pipeline.trained_gan import build_model, save_trained

    params = load_config(REPO / "params.yaml")
    generate_dataset(SyntheticConfig(splits={"train": 24, "val": 2}), 0, tmp / "synthetic", workers=2, progress=False)
    cfg = Config(data=DataConfig(root=str(tmp / "synthetic")),
                 prepare=dataclasses.replace(params.prepare, out=str(tmp / "prepared")),
                 model=params.model, train=params.train)
    prepare(cfg, workers=1, progress=False)
    torch.manual_seed(0)
    save_trained(build_model(cfg), cfg, tmp / "model", {"steps": 0})
    return str(tmp / "model"), str(tmp / "prepared" / "crops" / "train"), "an UNTRAINED default-profile model"


def augment_figures(device: torch.device, quick: bool) -> dict:
    cores = os.cpu_count() or 1
    size, frames = ("512x256", 4) if quick else ("2048x1024", 16)
    with tempfile.TemporaryDirectory() as tmp:
        model, crops, which = model_and_crops(Path(tmp))
        print(f"augment with {which}; {cores} CPU cores", flush=True)
        m = bench_augment.measure(size, frames, device.type, threads=cores, memory=False,
                                  synth_workers=min(cores, 8), model=model, crops=crops)
    m["model"] = which
    print(f"augment {size}, {frames} frames on {device.type}: I/O floor {m['floor_fps']:.2f} frames/s | one process "
          f"{m['augment_fps']:.2f} frames/s = {m['ratio']:.2f}x the floor (target {AUGMENT_TARGET}: "
          f"{'met' if m['ratio'] >= AUGMENT_TARGET else 'NOT met'}) | one process per core: "
          f"{m['workers_fps']:.2f} frames/s", flush=True)
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (implied without CUDA)")
    parser.add_argument("--max-batch", type=int, default=256, help="stop the batch search here")
    parser.add_argument("--skip", nargs="+", default=[], choices=["tests", "train", "renderer", "augment"])
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    quick = args.quick or not cuda
    start = time.perf_counter()
    name = torch.cuda.get_device_name(0) if cuda else "no CUDA device: CPU fallback at small sizes"
    print(f"gpu_check: {name}; torch {torch.__version__}; {os.cpu_count()} CPU cores", flush=True)
    figures: dict = {"device": name, "torch": torch.__version__, "cpu_cores": os.cpu_count(), "quick": quick}
    if cuda:
        torch.backends.cudnn.benchmark = True
    parts = [("tests", "1. correctness: CUDA-marked tests", run_tests),
             ("train", "2. insertion GAN training throughput",
              lambda: train_figures(device, quick, 4 if quick else args.max_batch)),
             ("renderer", "3. renderer training throughput", lambda: renderer_figures(device, quick)),
             ("augment", "4. augment throughput against the I/O floor", lambda: augment_figures(device, quick))]
    for key, title, run in parts:
        if key in args.skip:
            continue
        section(title)
        t0 = time.perf_counter()
        figures[key] = run()
        print(f"({time.perf_counter() - t0:.0f} s)")
    figures["seconds"] = round(time.perf_counter() - start, 1)
    print(f"\ngpu_check done in {figures['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
