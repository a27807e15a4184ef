"""Training of the part network (``models/part_net.py``): parts from shape, iPOSE's point.

It learns on the person/car instances of the dataset's own part maps or - when the dataset has none
(Cityscapes and COCO ship no ``partIds``) - of the built-in dataset's (``renderer.part_net.source``). The
network works on normalised squares, so it carries over to real shapes. The train_renderer stage trains
it first; on a dataset without part maps it then gives the renderer's training objects their parts.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from pipeline.config import CocoConfig, Config, DataConfig
from pipeline.datasets import open_dataset
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.errors import ConfigError
from pipeline.labels import TARGET_CLASSES
from pipeline.models.part_net import PartNet, object_square, part_loss


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
