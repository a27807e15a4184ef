"""Training of the learned appearance path: the pix2pixHD-style renderer and the part network.

The renderer (``pipeline/models/renderer.py``) learns label map -> image on the training frames at
``renderer.size``, on ``crop`` x ``crop`` windows around their persons and cars (the pixels it draws in
augmented frames; ``crop: 0`` = whole frames). Its input is the one-hot label map with the instance
boundary channel (``encoding.encode``), the part map one-hot (person head/torso/arm/leg, car
body/window/wheel/light) and, with ``feature_channels`` > 0, the per-instance style code from the feature
encoder. On ``part_dropout`` of the steps the part channels are zero: the same renderer then serves
``render.mode: gan`` (no parts) and ``gan+parts``.

Each step (``renderer_step``): one generator update (LSGAN + ``feature_matching`` x discriminator feature
matching + ``reconstruction`` x L1 to the real frame; the feature encoder trains with the generator) and
one discriminator update; Adam, constant lr, then linear decay to 0 from ``decay_from`` of the run.
Batches and windows are seeded from (seed, step): a resumed run continues as if never stopped. After
training, with the feature encoder, k-means over the training instances' style codes gives ``clusters``
styles per class (``styles.json``).

The part network (``pipeline/models/part_net.py``) learns part maps from object shapes, on the person/car
instances of the dataset's own part maps or - when the dataset has none (Cityscapes and COCO ship no
``partIds``) - of the built-in dataset's (``renderer.part_net.source``): parts inferred from shape are
iPOSE's point, and the network works on normalised squares, so it carries over to real shapes. It trains
first; on a dataset without part maps it then gives the renderer's training objects their parts, so the
renderer learns the part channels it is given in ``gan+parts`` mode.
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

from pipeline.checkpoints import (
    array_digest,
    load_checkpoint,
    load_weights,
    read_weights_config,
    save_checkpoint,
    weights_bytes,
    work_key,
)
from pipeline.config import CocoConfig, Config, DataConfig, RendererConfig
from pipeline.datasets import open_dataset
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.encoding import IN_CHANNELS, edges, encode, resize_nearest
from pipeline.errors import ConfigError
from pipeline.io import atomic_write_bytes, atomic_write_json
from pipeline.labels import BY_ID, INSTANCE_FACTOR, TARGET_CLASSES
from pipeline.masks import mask_bbox
from pipeline.models.part_net import N_PARTS, PartNet, part_loss
from pipeline.models.renderer import (
    FeatureEncoder,
    GlobalGenerator,
    MultiscaleDiscriminator,
    feature_matching_loss,
    lsgan_loss,
)
from pipeline.runtime import keep_freed_memory, live_log, runtime, step_seed

LABEL_INPUT = IN_CHANNELS + N_PARTS  # one-hot labels + boundaries + part one-hot


def generator_channels(rc: RendererConfig) -> int:
    return LABEL_INPUT + rc.feature_channels


@dataclasses.dataclass
class Renderer:
    """The trained networks: generator, feature encoder (or None) and the styles per class."""

    generator: GlobalGenerator
    encoder: FeatureEncoder | None
    styles: dict[int, np.ndarray]  # label id -> [k, feature_channels] cluster centres


def build_networks(rc: RendererConfig) -> tuple[GlobalGenerator, FeatureEncoder | None, MultiscaleDiscriminator]:
    g = GlobalGenerator(generator_channels(rc), rc.width, rc.downs, rc.blocks, upsample=rc.upsample)
    e = FeatureEncoder(rc.feature_channels, rc.width, rc.downs, rc.upsample) if rc.feature_channels else None
    d = MultiscaleDiscriminator(LABEL_INPUT + 3, rc.num_d, rc.d_width)
    return g, e, d


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


def label_input(labels: torch.Tensor, ids: torch.Tensor, parts: torch.Tensor, with_parts: torch.Tensor) -> torch.Tensor:
    """[B, H, W] label ids, instance ids, part ids -> the renderer's label input [B, LABEL_INPUT, H, W]."""
    onehot = encode(labels, edges(ids))
    part = F.one_hot(parts.long(), N_PARTS + 1)[..., 1:].permute(0, 3, 1, 2).float()
    return torch.cat([onehot, part * with_parts[:, None, None, None].float()], 1)


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
    rc = dataclasses.asdict(cfg.renderer)
    for key in ("out", "checkpoint_dir", "log_dir", "steps", "checkpoint_every", "log_every", "device", "part_net"):
        rc.pop(key)
    out = {"seed": cfg.seed, "renderer": rc, "data": dataclasses.asdict(cfg.data)}
    if inferred_parts:
        source, _ = part_source(cfg)
        out["inferred_parts"] = {"part_net": dataclasses.asdict(cfg.renderer.part_net),
                                 "source": dataclasses.asdict(source)}
    return out


def run_key(cfg: Config, data: RenderFrames) -> dict:
    """The work key of a renderer run (``checkpoints``): its params, the training frames as the renderer
    holds them (parts inferred by the part network included) and the renderer's training code."""
    rc = dataclasses.asdict(cfg.renderer)
    for key in ("out", "checkpoint_dir", "log_dir", "steps", "checkpoint_every", "log_every", "device", "part_net"):
        rc.pop(key)
    inputs = {"frames": array_digest([data.images, data.labels, data.ids, data.parts])}
    return work_key({"seed": cfg.seed, "renderer": rc}, inputs, __name__)


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
    rt = runtime(rc.device)
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


def save_renderer(directory: Path, signature: dict, g, e, styles: dict[int, np.ndarray], summary: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"signature": json.dumps(signature)}
    atomic_write_bytes(directory / "generator.safetensors", weights_bytes(g, meta))
    if e is not None:
        atomic_write_bytes(directory / "encoder.safetensors", weights_bytes(e, meta))
    atomic_write_json(directory / "styles.json", {str(k): v.tolist() for k, v in styles.items()}, indent=1)
    atomic_write_json(directory / "config.json", {"signature": signature, "summary": summary}, indent=2)


RETRAIN = "retrain (dvc repro train_renderer)"


def load_renderer(directory: str | Path, cfg: Config, device: torch.device | str = "cpu") -> Renderer:
    """The trained renderer in ``directory``; refused with a clear message if it does not fit ``cfg``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no trained renderer (run the train_renderer stage)")
    stored = read_weights_config(directory, RETRAIN)["signature"].get("renderer")
    current = _signature(cfg)["renderer"]
    changed = sorted(k for k in current if not isinstance(stored, dict) or stored.get(k) != current[k])
    if changed:
        raise ConfigError(f"{directory}: trained with other renderer params ({', '.join(changed)}); retrain")
    g, e, _ = build_networks(cfg.renderer)
    load_weights(g, directory / "generator.safetensors", device, RETRAIN)
    if e is not None:
        load_weights(e, directory / "encoder.safetensors", device, RETRAIN)
    styles_file = directory / "styles.json"
    try:
        styles = {int(k): np.array(v, np.float32) for k, v in json.loads(styles_file.read_text()).items()}
    except FileNotFoundError:
        raise ConfigError(f"{styles_file}: missing; {RETRAIN}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, ValueError, TypeError):
        raise ConfigError(f"{styles_file}: not a styles file (label id -> list of style codes); {RETRAIN}") from None
    return Renderer(g.to(device).eval(), e.to(device).eval() if e is not None else None, styles)


def load_part_net(directory: str | Path, cfg: Config, device: torch.device | str = "cpu") -> PartNet:
    """The part network trained beside the renderer in ``directory``."""
    weights = Path(directory) / "part_net.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{weights}: no trained part network (run the train_renderer stage)")
    net = PartNet(["person", "car"], tuple(cfg.renderer.part_net.widths))
    load_weights(net, weights, device, RETRAIN)
    return net.to(device).eval()


# ------------------------------------------------------------------------------------ part network


def has_part_maps(data: DataConfig) -> bool:
    """Whether the dataset's train split has part maps (``_gtFine_partIds.png``; COCO has none). Only the
    file names are looked at: no frame is read."""
    if data.format != "cityscapes":
        return False
    dataset = CityscapesDataset(data.root, ["train"])
    return any(dataset.paths(i).parts.is_file() for i in range(len(dataset)))


def part_source(cfg: Config) -> tuple[DataConfig, str]:
    """The dataset the part network learns from (``renderer.part_net.source``), and why that one."""
    source = cfg.renderer.part_net.source
    builtin = DataConfig(root=cfg.synthetic.out, format="cityscapes")
    if source == "builtin":
        return builtin, "renderer.part_net.source: builtin"
    if source == "data":
        return cfg.data, "renderer.part_net.source: data"
    if has_part_maps(cfg.data):
        return cfg.data, "the dataset has part maps"
    return builtin, f"{cfg.data.root} has no part maps: the built-in dataset's ({cfg.synthetic.out})"


def part_examples(data: DataConfig, coco: CocoConfig, split: str,
                  size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every person/car instance of ``split`` with part ids: masks [N, 1, S, S], parts [N, S, S], class [N]
    (0 person, 1 car). Each object's box is padded to a square around its centre, then resized (nearest)."""
    dataset = open_dataset(data, split, coco)
    masks, parts, classes = [], [], []
    for i in range(len(dataset)):
        scene = dataset[i]
        if scene.parts is None:
            continue
        for inst in scene.instances:
            if inst.iscrowd or inst.label_id not in TARGET_CLASSES or inst.area < 50:
                continue
            mask = scene.instance_ids == inst.value
            m, p = object_square(mask, scene.parts, size)
            if not (p > 0).any():
                continue
            masks.append(m)
            parts.append(p)
            classes.append(TARGET_CLASSES.index(inst.label_id))
    if not masks:
        raise ConfigError(f"{data.root}: no person/car instances with part maps in split {split!r} "
                          "(renderer.part_net.source)")
    return (torch.from_numpy(np.stack(masks))[:, None].float(), torch.from_numpy(np.stack(parts)),
            torch.tensor(classes))


def square_window(mask: np.ndarray) -> tuple[int, tuple[slice, slice], tuple[slice, slice]]:
    """The object's box padded to a square around its centre: the side, and the matching windows of the
    image and of the square (the square may reach past the image border, those parts stay empty)."""
    x, y, w, h = mask_bbox(mask)
    side = max(w, h)
    x0, y0 = x + w // 2 - side // 2, y + h // 2 - side // 2
    sy0, sx0 = max(y0, 0), max(x0, 0)
    sy1, sx1 = min(y0 + side, mask.shape[0]), min(x0 + side, mask.shape[1])
    return side, (slice(sy0, sy1), slice(sx0, sx1)), (slice(sy0 - y0, sy1 - y0), slice(sx0 - x0, sx1 - x0))


def object_square(mask: np.ndarray, parts: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The object's mask and part ids in its box padded to a square (centred), resized to ``size``."""
    side, image_window, square_window_ = square_window(mask)
    canvas_m = np.zeros((side, side), np.uint8)
    canvas_p = np.zeros((side, side), np.uint8)
    window = mask[image_window]
    canvas_m[square_window_] = window
    canvas_p[square_window_] = np.where(window, parts[image_window], 0)
    m = cv2.resize(canvas_m, (size, size), interpolation=cv2.INTER_NEAREST)
    p = cv2.resize(canvas_p, (size, size), interpolation=cv2.INTER_NEAREST)
    return m, np.where(m > 0, p, 0).astype(np.uint8)


def place_parts(square: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The inverse of ``object_square`` for a part map: [S, S] ids back onto the object's pixels."""
    side, image_window, square_window_ = square_window(mask)
    big = cv2.resize(square, (side, side), interpolation=cv2.INTER_NEAREST)
    out = np.zeros(mask.shape, np.uint8)
    out[image_window] = big[square_window_]
    return np.where(mask, out, 0).astype(np.uint8)


def infer_parts(net: PartNet, mask: np.ndarray, label_id: int, size: int) -> np.ndarray:
    """Part ids on the pixels of ``mask`` (an object of class ``label_id``) from the part network, which
    sees the object as a ``size`` x ``size`` square (``renderer.part_net.size``)."""
    device = next(net.parameters()).device
    square, _ = object_square(mask, np.zeros(mask.shape, np.uint8), size)
    cls = torch.tensor([net.class_names.index(BY_ID[label_id].name)], device=device)
    # Every pixel of the square gets a part: ``mask``, not the square's coarser copy, decides which pixels
    # are the object.
    with torch.no_grad():
        pred = net.part_map(torch.from_numpy(square)[None, None].float().to(device), cls, everywhere=True)[0]
    return place_parts(pred.cpu().numpy(), mask)


def inferred_parts(net: PartNet, ids: np.ndarray, size: int) -> np.ndarray:
    """A part map for an instance-id map: each person/car instance's parts from the part network."""
    parts = np.zeros(ids.shape, np.uint8)
    for value in np.unique(ids).tolist():
        if value >= INSTANCE_FACTOR and value // INSTANCE_FACTOR in TARGET_CLASSES:
            mask = ids == value
            parts[mask] = infer_parts(net, mask, value // INSTANCE_FACTOR, size)[mask]
    return parts


def train_part_net(cfg: Config, progress: bool = True) -> tuple[PartNet, dict]:
    """Train the part network on the train split's objects of its source dataset (``part_source``); part
    accuracy on that dataset's val split."""
    pc = cfg.renderer.part_net
    source, reason = part_source(cfg)
    torch.manual_seed(cfg.seed)
    masks, parts, classes = part_examples(source, cfg.coco, "train", pc.size)
    net = PartNet(["person", "car"], tuple(pc.widths))
    opt = torch.optim.Adam(net.parameters(), lr=pc.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    for _ in tqdm(range(pc.steps), desc="train part net", disable=not progress):
        idx = torch.randint(len(masks), (pc.batch_size,), generator=gen)
        loss = part_loss(net(masks[idx], classes[idx]), parts[idx], masks[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    metrics = {"seconds": round(time.perf_counter() - t0, 1), "train_objects": len(masks)}
    if source != cfg.data:
        metrics["source"] = {"root": source.root, "why": reason}
    try:
        metrics |= part_accuracy(net, *part_examples(source, cfg.coco, "val", pc.size))
    except ConfigError:
        metrics["accuracy"] = None
    return net, metrics


@torch.no_grad()
def part_accuracy(net: PartNet, masks: torch.Tensor, parts: torch.Tensor, classes: torch.Tensor) -> dict:
    """Share of object pixels whose predicted part is the true one, overall and per class."""
    device = next(net.parameters()).device
    pred = torch.cat([net.part_map(masks[i : i + 256].to(device), classes[i : i + 256].to(device)).cpu()
                      for i in range(0, len(masks), 256)])
    on = (masks[:, 0] > 0) & (parts > 0)
    ok = (pred == parts) & on
    out = {"accuracy": round(float(ok.sum() / on.sum().clamp_min(1)), 4), "val_objects": len(masks)}
    for c, name in enumerate(("person", "car")):
        sel = classes == c
        out[f"{name}_accuracy"] = round(float(ok[sel].sum() / on[sel].sum().clamp_min(1)), 4)
    return out


def train_renderer_stage(cfg: Config, metrics_path: str | Path = "metrics/renderer.json") -> dict:
    """The stage: train the part network, then the renderer (resumable; on a dataset without part maps the
    part network gives its training objects their parts); write their figures."""
    net, parts = train_part_net(cfg)
    summary = train_renderer(cfg, part_net=None if has_part_maps(cfg.data) else net)
    out = Path(cfg.renderer.out)
    atomic_write_bytes(out / "part_net.safetensors", weights_bytes(net, {"signature": json.dumps(_signature(cfg))}))
    metrics = {"renderer": summary, "part_net": parts}
    atomic_write_json(Path(metrics_path), metrics, indent=2)
    return metrics
