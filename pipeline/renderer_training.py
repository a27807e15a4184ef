"""Training of the learned appearance path: the pix2pixHD-style renderer (and, first, the part network).

The renderer (``pipeline/models/renderer.py``) learns label map -> image on the training frames at
``renderer.size``, on ``crop`` x ``crop`` windows around their persons and cars (the pixels it draws in
augmented frames; ``crop: 0`` = whole frames). Its input is the one-hot label map with the instance
boundary channel (``encoding.encode``), the part map one-hot (person head/torso/arm/leg, car
body/window/wheel/light) and, with ``feature_channels`` > 0, the per-instance style code from the feature
encoder. On ``part_dropout`` of the steps the part channels are zero: the same renderer then serves
``augment.appearance.mode: gan`` (no parts) and ``gan+parts``.

Each step (``renderer_step``): one generator update (LSGAN + ``feature_matching`` x discriminator feature
matching + ``reconstruction`` x L1 to the real frame; the feature encoder trains with the generator) and
one discriminator update; Adam, constant lr, then linear decay to 0 from ``decay_from`` of the run.
Batches and windows are seeded from (seed, step): a resumed run continues as if never stopped. After
training, with the feature encoder, k-means over the training instances' style codes gives ``clusters``
styles per class (``styles.json``).

The stage (``train_renderer_stage``) trains the part network first (``part_training.py``); on a dataset
without part maps it then gives the renderer's training objects their parts, so the renderer learns the
part channels it is given in ``gan+parts`` mode. The weights are written and read by ``trained.py``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.cluster.vq import kmeans2
from tqdm import tqdm

from pipeline.checkpoints import array_digest, load_checkpoint, save_checkpoint, weights_bytes, work_key
from pipeline.config import Config, RendererConfig
from pipeline.datasets import open_dataset
from pipeline.encoding import check_aspect, resize_nearest
from pipeline.io import atomic_write_bytes, atomic_write_json
from pipeline.labels import INSTANCE_FACTOR, TARGET_CLASSES
from pipeline.masks import mask_bbox
from pipeline.models.part_net import PartNet, inferred_parts
from pipeline.models.renderer import (
    FeatureEncoder,
    GlobalGenerator,
    MultiscaleDiscriminator,
    feature_matching_loss,
    label_input,
    lsgan_loss,
)
from pipeline.part_training import has_part_maps, part_source, train_part_net
from pipeline.runtime import keep_freed_memory, live_log, resolve_device, runtime, step_seed
from pipeline.trained_renderer import build_networks, renderer_params, save_renderer

# ------------------------------------------------------------------------------------------- data


class RenderFrames:
    """Training frames at the renderer's size, in memory: RGB, labels, instance ids, part ids.

    A frame without a part map gets its persons' and cars' parts from ``part_net`` when one is given
    (at the renderer's size), else none."""

    def __init__(self, cfg: Config, split: str = "train", device: torch.device | str = "cpu",
                 part_net: PartNet | None = None):
        size = tuple(cfg.renderer.size)
        dataset = open_dataset(cfg.data, split, cfg.coco)
        images, labels, ids, parts = [], [], [], []
        for i in tqdm(range(len(dataset)), desc=f"renderer frames {split}", leave=False):
            scene = dataset[i]
            check_aspect(scene.size, size, "renderer.size", scene.frame.stem)
            images.append(cv2.resize(scene.image, size, interpolation=cv2.INTER_AREA))
            labels.append(resize_nearest(scene.labels, size))
            ids.append(resize_nearest(scene.instance_ids, size).astype(np.int32))
            if scene.parts is not None:
                parts.append(resize_nearest(scene.parts, size))
            elif part_net is not None:
                parts.append(inferred_parts(part_net, ids[-1], cfg.renderer.part_net.size))
            else:
                parts.append(np.zeros(labels[-1].shape, np.uint8))
        self.device = torch.device(device)
        self.images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(self.device)
        self.labels = torch.from_numpy(np.stack(labels)).to(self.device)
        self.ids = torch.from_numpy(np.stack(ids)).to(self.device)
        self.parts = torch.from_numpy(np.stack(parts)).to(self.device)
        self.objects = [frame_objects(i) for i in ids]  # per frame: [K, 3] (instance id, row, column)

    def __len__(self) -> int:
        return len(self.labels)

    def windows(self, index: torch.Tensor, crop: int, gen: torch.Generator) -> list[tuple[int, int]]:
        """Per frame of ``index``: the top-left corner of a ``crop`` x ``crop`` window around one of its
        persons/cars (chosen by ``gen``, centre jittered by up to a quarter window), kept inside the frame;
        anywhere in a frame without one."""
        h, w = self.labels.shape[1:]
        out = []
        for i in index.tolist():
            u = torch.rand(3, generator=gen).tolist()
            centres = self.objects[i][:, 1:]
            if len(centres):
                cy, cx = centres[min(int(u[0] * len(centres)), len(centres) - 1)]
                cy, cx = cy + (u[1] - 0.5) * crop / 2, cx + (u[2] - 0.5) * crop / 2
            else:
                cy, cx = u[1] * h, u[2] * w
            out.append(centred_window(cy, cx, crop, h, w))
        return out

    def inputs(self, index: torch.Tensor, with_parts: torch.Tensor,
               windows: list[tuple[int, int]] | None = None, crop: int = 0) -> tuple[torch.Tensor, ...]:
        """Label input [B, LABEL_INPUT, H, W] (parts zeroed where ``with_parts`` is False), the image in
        [-1, 1] and the instance ids of frames ``index`` - whole, or their ``crop`` x ``crop`` ``windows``."""
        labels, ids, parts, images = self.labels[index], self.ids[index], self.parts[index], self.images[index]
        if windows is not None:
            def cut(t: torch.Tensor) -> torch.Tensor:
                return torch.stack([t[b, ..., y : y + crop, x : x + crop] for b, (y, x) in enumerate(windows)])
            labels, ids, parts, images = cut(labels), cut(ids), cut(parts), cut(images)
        return label_input(labels, ids, parts, with_parts), images.float() / 127.5 - 1, ids


def frame_objects(ids: np.ndarray) -> np.ndarray:
    """[K, 3] (instance id, row, column of its box centre) of the person/car instances in an id map."""
    objects = []
    for value in np.unique(ids):
        if value >= INSTANCE_FACTOR and value // INSTANCE_FACTOR in TARGET_CLASSES:
            x, y, w, h = mask_bbox(ids == value)
            objects.append((value, y + (h - 1) / 2, x + (w - 1) / 2))
    return np.array(objects, np.float64).reshape(-1, 3)


def centred_window(cy: float, cx: float, crop: int, height: int, width: int) -> tuple[int, int]:
    """Top-left corner of the ``crop`` x ``crop`` window centred on (cy, cx), kept inside the frame."""
    y, x = round(cy - crop / 2), round(cx - crop / 2)
    return int(np.clip(y, 0, height - crop)), int(np.clip(x, 0, width - crop))


# -------------------------------------------------------------------------------------- training


def lr_factor(step: int, rc: RendererConfig) -> float:
    """1 until ``decay_from`` of the run, then linear to 0 at the last step."""
    start = int(rc.decay_from * rc.steps)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(1, rc.steps - start))


def _signature(cfg: Config, inferred_parts: bool = False) -> dict:
    """What a renderer run depends on; with ``inferred_parts`` (the part network draws the training frames'
    parts) the part network's params and source too."""
    out = {"seed": cfg.seed, "renderer": renderer_params(cfg), "data": dataclasses.asdict(cfg.data)}
    if inferred_parts:
        source, _ = part_source(cfg)
        out["inferred_parts"] = {"part_net": dataclasses.asdict(cfg.renderer.part_net),
                                 "source": dataclasses.asdict(source)}
    return out


def run_key(cfg: Config, data: RenderFrames) -> dict:
    """The work key of a renderer run (``checkpoints``): its params, the training frames as the renderer
    holds them (parts inferred by the part network included) and the renderer's training code."""
    inputs = {"frames": array_digest([data.images, data.labels, data.ids, data.parts])}
    return work_key({"seed": cfg.seed, "renderer": renderer_params(cfg)}, inputs, __name__)


def renderer_step(g: GlobalGenerator, e: FeatureEncoder | None, d: MultiscaleDiscriminator,
                  opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, cond: torch.Tensor,
                  real: torch.Tensor, ids: torch.Tensor, rc: RendererConfig) -> dict[str, torch.Tensor]:
    """One generator update, then one discriminator update, on a batch (label input, image in [-1, 1],
    instance ids); returns the losses and the generated batch (``fake``)."""
    style = [e(real, ids)] if e is not None else []
    fake = g(torch.cat([cond, *style], 1))
    # Generator: fool every discriminator, match their features on the real frame.
    real_out = [[f.detach() for f in feats] for feats in d(torch.cat([cond, real], 1))]
    fake_out = d(torch.cat([cond, fake], 1))
    g_adv = lsgan_loss(fake_out, True)
    g_fm = feature_matching_loss(fake_out, real_out)
    # L1 to the real frame stands in for the reference's VGG loss (no pretrained weights offline): it
    # steadies the colours of a short CPU run, where adversarial + matching alone stay noisy.
    g_rec = F.l1_loss(fake, real)
    g_total = g_adv + rc.feature_matching * g_fm + rc.reconstruction * g_rec
    opt_g.zero_grad(set_to_none=True)
    g_total.backward()
    opt_g.step()
    # Discriminator: real vs the (detached) fake.
    d_real = lsgan_loss(d(torch.cat([cond, real], 1)), True)
    d_fake = lsgan_loss(d(torch.cat([cond, fake.detach()], 1)), False)
    d_total = 0.5 * (d_real + d_fake)
    opt_d.zero_grad(set_to_none=True)
    d_total.backward()
    opt_d.step()
    return {"g_adv": g_adv, "g_fm": g_fm, "g_rec": g_rec, "g_total": g_total, "d_real": d_real, "d_fake": d_fake,
            "fake": fake}


def train_renderer(cfg: Config, progress: bool = True, stop_after: int | None = None,
                   part_net: PartNet | None = None) -> dict:
    """Train (or resume) the renderer; returns a summary. ``stop_after`` ends the call after that many steps;
    ``part_net`` draws the parts of training frames that have no part map."""
    rc = cfg.renderer
    rt = runtime(rc.device, "renderer.device")
    keep_freed_memory()
    torch.manual_seed(cfg.seed)
    data = RenderFrames(cfg, "train", rt.device, part_net)
    g, e, d = (m.to(rt.device) if m is not None else None for m in build_networks(rc))
    g_params = list(g.parameters()) + (list(e.parameters()) if e is not None else [])
    opt_g = torch.optim.Adam(g_params, lr=rc.lr, betas=tuple(rc.betas))
    opt_d = torch.optim.Adam(d.parameters(), lr=rc.lr, betas=tuple(rc.betas))
    # One module for the GAN's checkpoint helpers: weights, optimiser state and state.json in one folder.
    modules = torch.nn.ModuleDict({"generator": g, "discriminator": d, **({"encoder": e} if e is not None else {})})
    ckpt = Path(rc.checkpoint_dir)
    signature = _signature(cfg, inferred_parts=part_net is not None)
    work = run_key(cfg, data)
    optimizers = {"g": opt_g, "d": opt_d}
    start = load_checkpoint(ckpt, modules, optimizers, work, rt.device, "train_renderer", Path(rc.log_dir))
    live = live_log(rc.log_dir, resume=start > 0)
    end = rc.steps if stop_after is None else min(rc.steps, start + stop_after)
    bar = tqdm(total=rc.steps, initial=start, desc="train renderer", unit="step", disable=not progress)
    window: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for step in range(start, end):
        gen = torch.Generator().manual_seed(step_seed(cfg.seed, step, 0))
        index = torch.randint(len(data), (rc.batch_size,), generator=gen).to(rt.device)
        with_parts = (torch.rand(rc.batch_size, generator=gen) >= rc.part_dropout).to(rt.device)
        flip = bool(torch.rand(1, generator=gen) < 0.5)
        windows = data.windows(index, rc.crop, gen) if rc.crop else None
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = rc.lr * lr_factor(step, rc)
        cond, real, ids = data.inputs(index, with_parts, windows, rc.crop)
        if flip:
            cond, real, ids = cond.flip(-1), real.flip(-1), ids.flip(-1)
        losses = renderer_step(g, e, d, opt_g, opt_d, cond, real, ids, rc)
        fake = losses.pop("fake")
        for key, value in losses.items():
            window.setdefault(key, []).append(float(value.detach()))
        bar.update()
        done = step + 1
        if done % rc.log_every == 0 or done == end:
            live.step = done
            for key, values in window.items():
                live.log_metric(f"renderer/{key}", float(np.mean(values)))
            bar.set_postfix(g=f"{np.mean(window['g_total']):.3f}", d=f"{np.mean(window['d_real']):.3f}")
            window = {}
            live.log_image("samples.png", _sample_strip(real, fake))
            live.next_step()
        if done % rc.checkpoint_every == 0 or done == rc.steps:
            save_checkpoint(ckpt, modules, optimizers, done, work, Path(rc.log_dir))
    bar.close()
    elapsed = time.perf_counter() - t0
    summary = {"steps": end, "resumed_from": start, "seconds": round(elapsed, 1),
               "steps_per_second": round((end - start) / elapsed, 2) if elapsed > 0 else None,
               "device": str(rt.device)}
    if end == rc.steps:
        styles = fit_styles(e, data, rc, cfg.seed) if e is not None else {}
        save_renderer(Path(rc.out), signature, g, e, styles, summary)
    live.end()
    return summary


@torch.no_grad()
def fit_styles(e: FeatureEncoder, data: RenderFrames, rc: RendererConfig, seed: int) -> dict[int, np.ndarray]:
    """k-means (``rc.clusters`` per class) over the style codes of the training frames' persons and cars,
    each read as the encoder saw it in training: in its ``crop`` window (InstanceNorm statistics of that
    extent; measured: better styles than codes read over whole frames), or in the whole frame."""
    codes: dict[int, list[np.ndarray]] = {c: [] for c in TARGET_CLASSES}
    h, w = data.labels.shape[1:]
    for i in range(len(data)):
        objects = data.objects[i]
        if not len(objects):
            continue
        # One window per object, or the whole frame once for all of them.
        n = len(objects) if rc.crop else 1
        index = torch.full((n,), i, device=data.device)
        windows = [centred_window(cy, cx, rc.crop, h, w) for _, cy, cx in objects] if rc.crop else None
        _, real, ids = data.inputs(index, torch.zeros(n, dtype=torch.bool, device=data.device), windows, rc.crop)
        feats = e(real, ids)
        for b, value in enumerate(objects[:, 0].astype(np.int64).tolist()):
            b = b if rc.crop else 0
            region = ids[b] == value
            if region.any():
                codes[value // INSTANCE_FACTOR].append(feats[b][:, region][:, 0].cpu().numpy())
    styles = {}
    for label, vectors in codes.items():
        if not vectors:
            continue
        x = np.stack(vectors).astype(np.float64)
        k = min(rc.clusters, len(x))
        centres, _ = kmeans2(x, k, minit="++", seed=seed)
        styles[label] = centres.astype(np.float32)
    return styles


def _sample_strip(real: torch.Tensor, fake: torch.Tensor) -> np.ndarray:
    both = torch.cat([real[:1], fake[:1].detach()], -1)[0]
    return ((both.permute(1, 2, 0).float().cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ weights and checkpoints


# ------------------------------------------------------------------------------------ part network


def train_renderer_stage(cfg: Config, metrics_path: str | Path = "metrics/renderer.json") -> dict:
    """The stage: train the part network, then the renderer (resumable; on a dataset without part maps the
    part network gives its training objects their parts); write their figures."""
    resolve_device(cfg.renderer.device, "renderer.device")  # refused before the part network trains, not after
    net, parts = train_part_net(cfg)
    summary = train_renderer(cfg, part_net=None if has_part_maps(cfg.data) else net)
    out = Path(cfg.renderer.out)
    atomic_write_bytes(out / "part_net.safetensors", weights_bytes(net, {"signature": json.dumps(_signature(cfg))}))
    metrics = {"renderer": summary, "part_net": parts}
    atomic_write_json(Path(metrics_path), metrics, indent=2)
    return metrics
