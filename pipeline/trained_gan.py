"""The trained insertion GAN on disk (``train.out``): how it is built from the params, saved
(``model.safetensors`` with the signature it was trained under - the model's widths and the prepared
sizes - and ``config.json``), and loaded back: refused with a one-line error when the files are missing or
broken or the weights do not fit the current params. The training loop writes it; inference, augment and
evaluation read it through this module only.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from pipeline.checkpoints import changes, load_weights, read_weights_config, weights_bytes
from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.io import atomic_write_bytes, atomic_write_json
from pipeline.models.insertion_gan import InsertionGAN

# ------------------------------------------------------------------------------------ insertion GAN


def build_model(cfg: Config) -> InsertionGAN:
    min_scale = [cfg.train.min_scale.get(name, 0.0) for name in cfg.prepare.classes]
    return InsertionGAN(cfg.model, cfg.prepare, cfg.train.losses, min_scale)


def model_signature(cfg: Config) -> dict:
    """What the weights depend on: loading weights trained under another signature is refused."""
    p = cfg.prepare
    return {
        "model": dataclasses.asdict(cfg.model),
        "classes": list(p.classes),
        "where_size": list(p.where_size),
        "what_size": list(p.what_size),
        "mask_size": p.mask_size,
    }


def mismatches(stored: dict, current: dict) -> list[str]:
    """Each value that differs between two signatures: ``model.z_what: trained with 8, params say 16``."""
    def at(tree: object, name: str) -> object:
        for part in name.split("."):
            tree = tree.get(part) if isinstance(tree, dict) else None
        return tree

    return [f"{name}: trained with {at(stored, name)!r}, params say {at(current, name)!r}"
            for name in changes(stored, current)]


RETRAIN_GAN = "retrain (dvc repro train)"


def load_trained(directory: str | Path, cfg: Config, device: torch.device | str = "cpu") -> InsertionGAN:
    """The trained model in ``directory``; refused with a one-line error if it is missing, unreadable or
    does not fit ``cfg``."""
    directory = Path(directory)
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{weights}: no trained model (run the train stage: dvc repro train)")
    stored = read_weights_config(directory, RETRAIN_GAN)["signature"]
    differences = mismatches(stored, model_signature(cfg))
    if differences:
        raise ConfigError(f"{weights}: weights do not fit the current params ({'; '.join(differences[:3])}); "
                          "retrain (dvc repro train) or restore those params")
    model = build_model(cfg)
    load_weights(model, weights, device, RETRAIN_GAN)
    return model.to(device).eval()


def save_trained(model: InsertionGAN, cfg: Config, directory: str | Path, summary: dict) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    signature = model_signature(cfg)
    atomic_write_bytes(directory / "model.safetensors", weights_bytes(model, {"signature": json.dumps(signature)}))
    atomic_write_json(directory / "config.json", {"signature": signature, "summary": summary}, indent=2)
