"""The insertion GAN's training loop: single process or ``torchrun`` (DDP), CPU or CUDA, resumable.

One step is one generator update (where + what nets and the two VAE encoders); every
``g_steps_per_d``-th step is followed by one discriminator update on the same batch, as in the
reference design. Each step's batch and latent draws are seeded from (seed, step, rank), so a run
killed and restarted from its last checkpoint continues exactly as if it had never stopped.

Launch: ``python -m stages.train`` (one process) or ``torchrun --nproc_per_node N -m stages.train``
(DDP: gloo on CPU, NCCL on GPU; each rank draws its own batches, gradients are averaged by
``DistributedDataParallel``). On CUDA the model runs in channels_last with bf16 autocast.

Outputs (``train.out``): ``model.safetensors`` (the weights, with the config they were trained with in
the metadata) and ``config.json``. Checkpoints go to ``train.checkpoint_dir`` (``pipeline/checkpoints.py``):
a run resumes from one only when its params, prepared arrays and training code are those it was made
with (``run_key``); otherwise it starts over and says why. dvclive logs every loss term and a grid of
samples.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from pipeline.checkpoints import (
    files_digest,
    load_checkpoint,
    save_checkpoint,
    work_key,
)
from pipeline.config import Config
from pipeline.encoding import ID_OF_CHANNEL, LABEL_CHANNELS
from pipeline.labels import BY_NAME, color_lut
from pipeline.models.insertion_gan import InsertionGAN
from pipeline.runtime import keep_freed_memory, live_log, runtime, step_seed
from pipeline.trained_gan import build_model, model_signature, save_trained
from pipeline.training_data import PreparedData

# ------------------------------------------------------------------------------------------- model


# ------------------------------------------------------------------------------- config signatures


def run_key(cfg: Config) -> dict:
    """The work key of a training run (``checkpoints``): a checkpoint is resumed only under the same
    params (the number of steps may grow: a finished run can be extended), the same prepared arrays and
    the same training code."""
    train = dataclasses.asdict(cfg.train)
    # train.seed enters as the key's "seed" (the one the GAN trains with), so an unset one keeps the key.
    for key in ("seed", "steps", "log_every", "sample_every", "checkpoint_every", "device", "eval_samples_per_frame",
                "out", "checkpoint_dir", "log_dir"):
        train.pop(key, None)
    prepared = Path(cfg.prepare.out)
    inputs = {"prepared": files_digest([prepared / f"{s}.npz" for s in cfg.prepare.splits], prepared)}
    prepare = dataclasses.asdict(cfg.prepare)
    prepare.pop("out")  # where the arrays are does not matter; what they hold does (inputs)
    params = {"seed": cfg.gan_seed, **model_signature(cfg), "prepare": prepare, "train": train}
    return work_key(params, inputs, __name__)


# ------------------------------------------------------------------------------------------- loop


def training_step(model: nn.Module, batch: dict, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                  update_d: bool, autocast) -> dict[str, float]:
    """One generator update, then (``update_d``) one discriminator update on the same batch, under
    ``autocast``; returns every loss term. ``model`` is the InsertionGAN or its DDP wrapper."""
    batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}
    with autocast:
        g_total, terms, _ = model(batch, "generator")
    opt_g.zero_grad(set_to_none=True)
    g_total.backward()
    opt_g.step()
    if update_d:
        with autocast:
            d_total, d_terms = model(batch, "discriminator")
        opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        opt_d.step()
        terms = {**terms, **d_terms}
    return terms


def train(cfg: Config, progress: bool = True, stop_after: int | None = None) -> dict:
    """Train (or resume) the insertion GAN; returns a summary. ``stop_after`` ends the run after that
    many steps of this call (for tests that interrupt a run)."""
    rt = runtime(cfg.train.device)
    tc = cfg.train
    keep_freed_memory()
    torch.manual_seed(cfg.gan_seed)
    data = PreparedData(Path(cfg.prepare.out) / "train.npz", rt.device, tc.flip_prob, tc.losses.support_min_share)
    val = PreparedData(Path(cfg.prepare.out) / "val.npz", rt.device, 0.0) if "val" in cfg.prepare.splits else data
    gan = build_model(cfg).to(rt.device)
    cuda = rt.device.type == "cuda"
    gan = gan.to(memory_format=torch.channels_last)  # NHWC: faster convolutions on CPU and GPU
    opt_g = torch.optim.Adam(gan.generator_param_groups(tc.density_lr), lr=tc.lr, betas=tuple(tc.betas))
    opt_d = torch.optim.Adam(gan.discriminator_parameters(), lr=tc.lr, betas=tuple(tc.betas))
    work = run_key(cfg)
    ckpt_dir = Path(tc.checkpoint_dir)
    optimizers = {"g": opt_g, "d": opt_d}
    # Every rank reads the checkpoint; rank 0 also restores the run's log to that step.
    start = load_checkpoint(ckpt_dir, gan, optimizers, work, rt.device, "train", Path(tc.log_dir) if rt.main else None)
    # DDP averages gradients of work done inside forward(): InsertionGAN.forward dispatches to either
    # side's loss. Each side leaves the other's parameters unused, hence find_unused_parameters.
    step_module: nn.Module = gan
    if rt.world > 1:
        step_module = nn.parallel.DistributedDataParallel(
            gan, device_ids=[rt.device.index] if cuda else None, find_unused_parameters=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    live = live_log(tc.log_dir, resume=start > 0) if rt.main else None
    end = tc.steps if stop_after is None else min(tc.steps, start + stop_after)
    bar = tqdm(total=tc.steps, initial=start, desc="train", unit="step", disable=not (progress and rt.main))
    window: dict[str, list[float]] = {}
    t0, samples = time.perf_counter(), 0
    for step in range(start, end):
        generator = torch.Generator(device=rt.device).manual_seed(step_seed(cfg.gan_seed, step, rt.rank))
        torch.manual_seed(step_seed(cfg.gan_seed + 1, step, rt.rank))
        batch = data.batch(tc.batch_size, generator)
        terms = training_step(step_module, batch, opt_g, opt_d, (step + 1) % tc.g_steps_per_d == 0, autocast)
        for key, value in terms.items():
            window.setdefault(key, []).append(float(value))
        samples += tc.batch_size * rt.world
        bar.update()
        done = step + 1
        if live is not None and (done % tc.log_every == 0 or done == end):
            live.step = done
            for key, values in window.items():
                live.log_metric(f"train/{key}", float(np.mean(values)))
            g, d = np.mean(window.get("g_total", [0])), np.mean(window.get("d_total", [0]))
            bar.set_postfix(g=f"{g:.3f}", d=f"{d:.3f}")
            window = {}
            if done % tc.sample_every == 0 or done == end:
                live.log_image("samples.png", sample_grid(gan, val, cfg))
            live.next_step()
        if done % tc.checkpoint_every == 0 or done == tc.steps:
            if rt.main:
                save_checkpoint(ckpt_dir, gan, optimizers, done, work, Path(tc.log_dir))
            if rt.world > 1:
                dist.barrier()
    bar.close()
    elapsed = time.perf_counter() - t0
    summary = {"steps": end, "resumed_from": start, "seconds": round(elapsed, 1),
               "samples_per_second": round(samples / elapsed, 2) if elapsed > 0 else None,
               "world_size": rt.world, "device": str(rt.device), "param_digest": param_digest(gan)}
    if rt.main and end == tc.steps:
        save_trained(gan, cfg, tc.out, summary)
    if live is not None:
        live.end()
    return summary


def param_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter's bytes: equal digests mean identical replicas."""
    import hashlib

    digest = hashlib.sha256()
    for _, p in sorted(model.named_parameters()):
        digest.update(p.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


# -------------------------------------------------------------------------------------- samples


def sample_grid(gan: InsertionGAN, data: PreparedData, cfg: Config, n: int = 8) -> np.ndarray:
    """Val scenes with one sampled object each: colour label map, box outline, the shape filled in."""
    generator = torch.Generator(device=data.device).manual_seed(cfg.seed)
    index = torch.arange(min(n, len(data)), device=data.device) * max(1, len(data) // n)
    batch = data.batch(len(index), generator, index=index)
    was_training = gan.training
    gan.eval()
    with torch.no_grad():
        out = gan.sample(batch["x_where"], batch["x_what"], batch["cls"])
    gan.train(was_training)
    lut = color_lut()
    tiles = []
    for i in range(len(index)):
        labels = ID_OF_CHANNEL[batch["x_what"][i, :LABEL_CHANNELS].argmax(0).cpu().numpy()]
        tile = lut[labels].astype(np.float32)
        placed = out["placed"][i, 0].float().cpu().numpy()[..., None]
        colour = np.array(BY_NAME[cfg.prepare.classes[int(batch["cls"][i])]].color, np.float32)
        tile = tile * (1 - 0.8 * placed) + colour * 0.8 * placed
        h, w = labels.shape
        x0, y0, x1, y1 = (out["box"][i].float().cpu().numpy() * [w, h, w, h]).astype(int)
        tile[max(y0, 0) : min(y1, h), np.clip([x0, x1 - 1], 0, w - 1)] = 255
        tile[np.clip([y0, y1 - 1], 0, h - 1), max(x0, 0) : min(x1, w)] = 255
        tiles.append(tile.astype(np.uint8))
    rows = [np.concatenate(tiles[i : i + 4], axis=1) for i in range(0, len(tiles), 4)]
    if len(rows) > 1 and rows[-1].shape != rows[0].shape:
        rows[-1] = np.pad(rows[-1], ((0, 0), (0, rows[0].shape[1] - rows[-1].shape[1]), (0, 0)))
    return np.concatenate(rows, axis=0)
