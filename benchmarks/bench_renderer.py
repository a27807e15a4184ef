"""Renderer training speed: seconds per step of the default (CPU-profile) renderer, and of the reference
size, at the configured resolution - generator + feature encoder + discriminators, one G and one D update.

    python benchmarks/bench_renderer.py [--steps 10] [--reference]
"""

import argparse
import dataclasses
import time

import torch

from pipeline.config import load_config
from pipeline.models.renderer import feature_matching_loss, lsgan_loss
from pipeline.renderer_training import LABEL_INPUT, build_networks


def seconds_per_step(rc, steps: int, device: torch.device) -> float:
    g, e, d = (m.to(device) for m in build_networks(rc))
    opt_g = torch.optim.Adam(list(g.parameters()) + list(e.parameters()), lr=rc.lr)
    opt_d = torch.optim.Adam(d.parameters(), lr=rc.lr)
    w, h = rc.size
    cond = torch.rand(rc.batch_size, LABEL_INPUT, h, w, device=device)
    real = torch.rand(rc.batch_size, 3, h, w, device=device) * 2 - 1
    ids = torch.randint(3, (rc.batch_size, h, w), device=device)
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        fake = g(torch.cat([cond, e(real, ids)], 1))
        real_out = [[f.detach() for f in x] for x in d(torch.cat([cond, real], 1))]
        fake_out = d(torch.cat([cond, fake], 1))
        loss = lsgan_loss(fake_out, True) + rc.feature_matching * feature_matching_loss(fake_out, real_out)
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        d_loss = (lsgan_loss(d(torch.cat([cond, real], 1)), True)
                  + lsgan_loss(d(torch.cat([cond, fake.detach()], 1)), False))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--reference", action="store_true", help="also time the reference size (slow on CPU)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rc = load_config("params.yaml").renderer
    s = seconds_per_step(rc, args.steps, device)
    print(f"device {device}, threads {torch.get_num_threads()}, size {rc.size[0]}x{rc.size[1]}, batch {rc.batch_size}")
    print(f"default renderer: {s:.3f} s/step, {rc.steps} steps = {rc.steps * s / 60:.1f} min")
    if args.reference:
        ref = dataclasses.replace(rc, width=64, downs=4, blocks=9, d_width=64, num_d=3)
        r = seconds_per_step(ref, max(2, args.steps // 5), device)
        print(f"reference size: {r:.3f} s/step")


if __name__ == "__main__":
    main()
