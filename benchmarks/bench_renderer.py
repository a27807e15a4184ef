"""Renderer training speed: seconds per step and frames (or windows) per second of the renderer's training
step (`renderer_training.renderer_step`: generator, discriminators and, when `renderer.feature_channels`
> 0, the feature encoder; one G and one D update) on random inputs of the training shape -
`renderer.crop` windows, or whole frames of `renderer.size` with `--crop 0`.

    python benchmarks/bench_renderer.py [--steps 10] [--size 512 256] [--crop 0] [--batch 1] [--reference]
"""

import argparse
import dataclasses
import time

import torch

from pipeline.config import load_config
from pipeline.models.renderer import LABEL_INPUT
from pipeline.renderer_training import renderer_step
from pipeline.runtime import runtime
from pipeline.trained_renderer import build_networks


def seconds_per_step(rc, steps: int, device: torch.device) -> float:
    g, e, d = (m.to(device) if m is not None else None for m in build_networks(rc))
    params = list(g.parameters()) + (list(e.parameters()) if e is not None else [])
    opt_g = torch.optim.Adam(params, lr=rc.lr, betas=tuple(rc.betas))
    opt_d = torch.optim.Adam(d.parameters(), lr=rc.lr, betas=tuple(rc.betas))
    w, h = (rc.crop, rc.crop) if rc.crop else rc.size
    cond = torch.rand(rc.batch_size, LABEL_INPUT, h, w, device=device)
    real = torch.rand(rc.batch_size, 3, h, w, device=device) * 2 - 1
    ids = torch.randint(3, (rc.batch_size, h, w), device=device)
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        renderer_step(g, e, d, opt_g, opt_d, cond, real, ids, rc)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def report(name: str, rc, steps: int, device: torch.device) -> None:
    s = seconds_per_step(rc, steps, device)
    shape = f"{rc.crop}x{rc.crop} windows" if rc.crop else f"{rc.size[0]}x{rc.size[1]} frames"
    print(f"{name}: {shape}, batch {rc.batch_size}: {s:.3f} s/step, {rc.batch_size / s:.1f} {shape.split()[1]}/s, "
          f"{rc.steps} steps = {rc.steps * s / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="frame size (default: renderer.size)")
    parser.add_argument("--crop", type=int, help="training window (default: renderer.crop; 0 = whole frames)")
    parser.add_argument("--batch", type=int, help="batch size (default: renderer.batch_size)")
    parser.add_argument("--reference", action="store_true", help="also time the reference widths (slow on CPU)")
    args = parser.parse_args()
    rc = load_config("params.yaml").renderer
    rc = dataclasses.replace(rc, size=args.size or rc.size, crop=rc.crop if args.crop is None else args.crop,
                             batch_size=args.batch or rc.batch_size)
    rc.validate("renderer")
    device = runtime("auto").device
    print(f"device {device}, threads {torch.get_num_threads()}")
    report("default renderer", rc, args.steps, device)
    if args.reference:
        ref = dataclasses.replace(rc, width=64, downs=4, blocks=9, d_width=64, num_d=3)
        report("reference widths", ref, max(2, args.steps // 5), device)


if __name__ == "__main__":
    main()
