"""The ``train`` stage: train the insertion GAN (``training.py``), then score its raw placements on the
val frames (``evaluation/where_quality.py``) and the health of its what-VAE (``evaluation/posterior.py``)
into ``metrics/train.json``.

Kept apart from the training loop so that the checkpoint's code key (``checkpoints.code_files``) covers
the code that makes the weights, not the scoring that reads them.
"""

from __future__ import annotations

from pathlib import Path

import torch.distributed as dist

from pipeline.config import Config
from pipeline.encoding import ID_OF_CHANNEL
from pipeline.evaluation.posterior import posterior_health
from pipeline.evaluation.where_quality import evaluate_where
from pipeline.io import atomic_write_json
from pipeline.labels import BY_ID
from pipeline.runtime import runtime
from pipeline.trained_gan import load_trained
from pipeline.training import train
from pipeline.training_data import PreparedData


def learned_ground(cfg: Config) -> dict[str, list[str]]:
    """Per class, the labels the support loss counts as its ground (``PreparedData.ground_channels``: the
    labels under the training split's real boxes)."""
    data = PreparedData(Path(cfg.prepare.out) / "train.npz", "cpu", 0.0, cfg.train.losses.support_min_share)
    return {name: [BY_ID[int(ID_OF_CHANNEL[ch])].name for ch in data.ground[c].nonzero().flatten().tolist()]
            for c, name in enumerate(cfg.prepare.classes)}


def train_stage(cfg: Config, metrics_path: str | Path = "metrics/train.json") -> dict:
    """The DVC stage: train, then score the where module's raw samples on the val split (rank 0)."""
    summary = train(cfg)
    rt = runtime(cfg.train.device)
    metrics = {"train": summary}
    if rt.main:
        gan = load_trained(cfg.train.out, cfg, rt.device)
        split = "val" if "val" in cfg.prepare.splits else cfg.prepare.splits[0]
        quality = evaluate_where(gan, cfg, split, per_frame=cfg.train.eval_samples_per_frame, seed=cfg.seed)
        data = PreparedData(Path(cfg.prepare.out) / f"{split}.npz", rt.device, flip_prob=0.0)
        # The model's own samples lead (no filter applied), random boxes beside them; then whether the
        # what-VAE's posterior carries the shape (posterior collapse shows as KL ~ 0, equal L1s).
        metrics = {"where_raw": quality["model"], "where_random": quality["random"],
                   "where_real": quality.get("real", {}),  # the ceiling: the split's own objects as boxes
                   "where_raw_over_real": quality.get("raw_over_real", {}),  # with its paired 95% interval
                   "what_posterior": posterior_health(gan, data, cfg.prepare.classes, seed=cfg.seed),
                   "learned_ground": learned_ground(cfg), **metrics}
        atomic_write_json(Path(metrics_path), metrics, indent=2)
        print("learned_ground " + "; ".join(f"{k}: {', '.join(v)}" for k, v in metrics["learned_ground"].items()))
        for arm in ("where_raw", "where_random", "where_real", "what_posterior"):
            for name, rules in metrics[arm].items():
                print(f"{arm:<14} {name:<7} " + "  ".join(f"{k} {v}" for k, v in rules.items()))
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return metrics
