"""The trained renderer and part network on disk (``renderer.out``): ``generator.safetensors``,
``encoder.safetensors`` (with a feature encoder), ``styles.json`` (k-means styles per class),
``part_net.safetensors`` and ``config.json``. How the networks are built from the params, saved, and
loaded back - refused with a one-line error when files are missing or broken or the weights do not fit
the current params. The renderer's training writes them; the learned appearance, augment and evaluation
read them through this module only.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from pipeline.checkpoints import load_weights, read_weights_config, weights_bytes
from pipeline.config import Config, RendererConfig
from pipeline.errors import ConfigError
from pipeline.io import atomic_write_bytes, atomic_write_json
from pipeline.models.part_net import PartNet
from pipeline.models.renderer import LABEL_INPUT, FeatureEncoder, GlobalGenerator, MultiscaleDiscriminator

# What a renderer's weights depend on: its params less bookkeeping (where it writes, for how long, on what).
RENDERER_BOOKKEEPING = ("out", "checkpoint_dir", "log_dir", "steps", "checkpoint_every", "log_every", "device",
                        "part_net")


def renderer_params(cfg: Config) -> dict:
    """The renderer params its weights depend on (``renderer`` less ``RENDERER_BOOKKEEPING``)."""
    rc = dataclasses.asdict(cfg.renderer)
    for key in RENDERER_BOOKKEEPING:
        rc.pop(key)
    return rc


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


def save_renderer(directory: Path, signature: dict, g, e, styles: dict[int, np.ndarray], summary: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"signature": json.dumps(signature)}
    atomic_write_bytes(directory / "generator.safetensors", weights_bytes(g, meta))
    if e is not None:
        atomic_write_bytes(directory / "encoder.safetensors", weights_bytes(e, meta))
    atomic_write_json(directory / "styles.json", {str(k): v.tolist() for k, v in styles.items()}, indent=1)
    atomic_write_json(directory / "config.json", {"signature": signature, "summary": summary}, indent=2)


RETRAIN_RENDERER = "retrain (dvc repro train_renderer)"


def load_renderer(directory: str | Path, cfg: Config, device: torch.device | str = "cpu") -> Renderer:
    """The trained renderer in ``directory``; refused with a clear message if it does not fit ``cfg``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no trained renderer (run the train_renderer stage)")
    stored = read_weights_config(directory, RETRAIN_RENDERER)["signature"].get("renderer")
    current = renderer_params(cfg)
    changed = sorted(k for k in current if not isinstance(stored, dict) or stored.get(k) != current[k])
    if changed:
        raise ConfigError(f"{directory}: trained with other renderer params ({', '.join(changed)}); retrain")
    g, e, _ = build_networks(cfg.renderer)
    load_weights(g, directory / "generator.safetensors", device, RETRAIN_RENDERER)
    if e is not None:
        load_weights(e, directory / "encoder.safetensors", device, RETRAIN_RENDERER)
    styles_file = directory / "styles.json"
    try:
        styles = {int(k): np.array(v, np.float32) for k, v in json.loads(styles_file.read_text()).items()}
    except FileNotFoundError:
        raise ConfigError(f"{styles_file}: missing; {RETRAIN_RENDERER}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, ValueError, TypeError):
        raise ConfigError(f"{styles_file}: not a styles file (label id -> list of style codes); "
                          f"{RETRAIN_RENDERER}") from None
    return Renderer(g.to(device).eval(), e.to(device).eval() if e is not None else None, styles)


def load_part_net(directory: str | Path, cfg: Config, device: torch.device | str = "cpu") -> PartNet:
    """The part network trained beside the renderer in ``directory``."""
    weights = Path(directory) / "part_net.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{weights}: no trained part network (run the train_renderer stage)")
    net = PartNet(["person", "car"], tuple(cfg.renderer.part_net.widths))
    load_weights(net, weights, device, RETRAIN_RENDERER)
    return net.to(device).eval()
