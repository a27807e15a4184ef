"""Training and inference speed of the insertion GAN: samples/s at the reference and default sizes.

    python benchmarks/bench_train.py [--profile reference|default|default-gan|both] [--batch 1 4 16] [--iters 3]
    python benchmarks/bench_train.py --data data/prepared/train.npz --batch 16   # + drawing real batches

One training iteration is the reference schedule's unit: two generator updates and one
discriminator update (Adam), on a batch of random street-like label maps. The reference
implementation was measured at ~43 s per single-sample step on a 2-core CPU; the speed-up printed is
samples/s against that. ``default-gan`` is the default sizes with the reference's where module
(``model.where_model: gan``) instead of the density where model: the two side by side in one run.
On CUDA the model runs in channels_last with bf16 autocast, as in training. ``--data`` also times what the
training loop does before each step: drawing a batch (gathers, flips, one-hot encoding) from the prepare
stage's arrays, ms a batch.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from pipeline.config import Config, ModelConfig, PrepareConfig, TrainConfig
from pipeline.encoding import IN_CHANNELS
from pipeline.runtime import keep_freed_memory
from pipeline.trained_gan import build_model
from pipeline.training_data import PreparedData

REFERENCE_SECONDS_PER_SAMPLE = 43.0

PROFILES = {
    "reference": (PrepareConfig(where_size=[256, 128], what_size=[1024, 512], mask_size=128),
                  ModelConfig(where_model="gan", z_where=4,
                              where_widths=[32, 64, 128, 256, 256], where_embed=128,
                              what_widths=[32, 64, 128, 256, 256, 256, 256], what_embed=512,
                              shape_widths=[256, 256, 128, 64, 32], d_widths=[64, 128, 256])),
    "default": (PrepareConfig(), ModelConfig()),
    "default-gan": (PrepareConfig(), ModelConfig(where_model="gan", z_where=4)),
    "small": (PrepareConfig(where_size=[64, 32], what_size=[128, 64], mask_size=32),
              ModelConfig(where_widths=[16, 32, 64], where_embed=128, what_widths=[16, 32, 64, 64], what_embed=128,
                          shape_widths=[64, 32, 16], d_widths=[16, 32, 64])),
}


def fake_batch(prepare: PrepareConfig, size: int, device: torch.device) -> dict:
    def scene(w: int, h: int) -> torch.Tensor:
        x = torch.zeros(size, IN_CHANNELS, h, w, device=device)
        x[:, 1] = 1  # one label channel on, as a one-hot map has
        return x

    (ww, wh), (tw, th), s = prepare.where_size, prepare.what_size, prepare.mask_size
    box = torch.tensor([[0.4, 0.5, 0.5, 0.9]], device=device).repeat(size, 1)
    from pipeline.models.affine import box_to_theta

    return {"x_where": scene(ww, wh), "x_what": scene(tw, th), "xp_where": scene(ww, wh), "xp_what": scene(tw, th),
            "theta_real": box_to_theta(box), "mask_real": (torch.rand(size, 1, s, s, device=device) > 0.5).float(),
            "cls": torch.zeros(size, dtype=torch.long, device=device),
            "ground": torch.nn.functional.one_hot(torch.ones(size, dtype=torch.long, device=device), IN_CHANNELS - 1
                                                  ).float(),
            "plane_x": torch.tensor([[0.4, 0.8]], device=device).repeat(size, 1),
            "plane_xp": torch.tensor([[0.4, 0.8]], device=device).repeat(size, 1),
            "theta_occupied": box_to_theta(box), "occupied_valid": torch.ones(size, dtype=torch.bool, device=device)}


def bench(profile: str, batch: int, iters: int, device: torch.device, bf16: bool = True) -> tuple[float, float]:
    """Training and inference samples/s of ``profile`` at ``batch`` (on CUDA: bf16 autocast unless ``bf16``
    is False, which measures plain fp32)."""
    prepare, model_cfg = PROFILES[profile]
    cfg = Config(prepare=prepare, model=model_cfg)
    gan = build_model(cfg).to(device)
    cuda = device.type == "cuda"
    gan = gan.to(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and bf16 else contextlib.nullcontext()
    tc = TrainConfig()  # the training stage's optimiser settings
    opt_g = torch.optim.Adam(gan.generator_param_groups(tc.density_lr), lr=tc.lr, betas=tuple(tc.betas))
    opt_d = torch.optim.Adam(gan.discriminator_parameters(), lr=tc.lr, betas=tuple(tc.betas))
    data = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
            for k, v in fake_batch(prepare, batch, device).items()}

    def iteration() -> None:
        for _ in range(2):
            with autocast:
                loss, _, _ = gan.generator_loss(data)
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
        with autocast:
            loss, _ = gan.discriminator_loss(data)
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    iteration()  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        iteration()
    sync()
    # Conservative: a whole iteration (two generator updates and one discriminator update) counts as
    # one step of the reference per sample.
    train_sps = batch * iters / (time.perf_counter() - t0)
    gan.eval()
    with torch.no_grad(), autocast:
        gan.sample(data["x_where"], data["x_what"], data["cls"])
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            gan.sample(data["x_where"], data["x_what"], data["cls"])
        sync()
    infer_sps = batch * iters / (time.perf_counter() - t0)
    return train_sps, infer_sps


def bench_batches(path: str, batch: int, iters: int, device: torch.device) -> float:
    """ms to draw one training batch of ``batch`` from the prepared split at ``path``."""
    data = PreparedData(path, device, flip_prob=0.5)
    data.batch(batch, torch.Generator(device=device).manual_seed(0))  # warm-up
    t0 = time.perf_counter()
    for i in range(iters):
        data.batch(batch, torch.Generator(device=device).manual_seed(i + 1))
    return (time.perf_counter() - t0) / iters * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=["reference", "default", "default-gan", "small", "both"], default="both")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", help="a prepared split (e.g. data/prepared/train.npz): also time drawing its batches")
    args = parser.parse_args()
    keep_freed_memory()  # as the training loop does
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          (args.device if args.device != "auto" else "cpu"))
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    for profile in (["reference", "default"] if args.profile == "both" else [args.profile]):
        for batch in args.batch:
            train_sps, infer_sps = bench(profile, batch, args.iters, device)
            print(f"{profile:<9} batch {batch:>3}: train {train_sps:8.2f} samples/s "
                  f"({train_sps * REFERENCE_SECONDS_PER_SAMPLE:6.1f}x the reference's 1/43 s), "
                  f"inference {infer_sps:8.2f} samples/s")
    if args.data:
        for batch in args.batch:
            ms = bench_batches(args.data, batch, max(args.iters, 20), device)
            print(f"batches of {batch:>3} from {args.data}: {ms:.1f} ms each (one per training step)")


if __name__ == "__main__":
    main()
