"""Does a size field anchored on the ground plane draw sizes that hold away from the real objects' places? The
density where model (``model.where_model: density``) fits its size field by likelihood at the real objects' own
bottom centres only; elsewhere nothing holds it, and it drifts by training (``size_field.py``). This trains the
insertion GAN as the train stage does with one more generator term that holds the field to the dataset's ground
plane wherever the model would draw a box:

    python benchmarks/anchored_sizes.py --weight 1.0 --out models/insertion-anchored [--params params.yaml]
    python benchmarks/size_field.py --model models/insertion-anchored --split train     # decide on train

The term: over the cells of each random scene x of a batch, the hinge |mu_h - log(expected height)| beyond
``train.losses.ground_scale_free`` (the field's mean log height, read at the cell's centre row, against the height
the class's typical object has there under the plane the rules learned: ``rules.learned``, its ``class_scale``
included), weighted by the model's own position softmax on x with its gradient stopped, so only the size field feels
it and where the model draws nothing costs nothing; rows on or above the horizon are left out. ``--weight`` goes
into the ``train.losses.ground_scale`` slot, which the density model otherwise leaves at zero. ``--aspect-weight W``
adds W x ``aspect_gap``: the widths the model would draw, held in the mean to the class's median aspect over the
train examples (the field fits widths at the real objects' places, yet on CamVid draws cars narrower than the real
ones: ``size_field.py``'s ``median_aspect``). Everything else is the train stage's: params, data, steps, seeds,
schedule (unless ``--lr-decay-start``, below), and the scoring after it (the raw where samples on the val split
against random boxes and the real objects, as ``metrics/train.json`` holds them). The model, its checkpoints, its
log and its metrics go beside ``--out`` (``OUT``, ``OUT-checkpoints``, ``OUT-log``, ``OUT-metrics.json``), never
into the stage's folders; a run stopped part way resumes from ``OUT-checkpoints``, and a finished one is only
scored again.

``--lr-decay-start S`` (< 1) trains under the reference's schedule instead of the stage's constant learning rates:
every rate constant for the first S x ``train.steps`` steps, then linear to 0 at the last (pix2pixHD and the
insertion GAN: S = 0.5). The rate of a step follows the generator optimizer's own update count, which its
checkpoint restores, so a resumed run keeps the schedule; ``OUT-schedule.json`` records S, and checkpoints made
under another S are refused. ``--keep-from K`` also keeps the weights of every checkpoint from step K on, each a
model folder ``OUT-steps/step-N`` (read by ``benchmarks/step_spread.py``: how the placement moves between steps).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import training  # noqa: E402
from pipeline.config import Config, load_config  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.labels import BY_NAME, MEAN_HEIGHT_M  # noqa: E402
from pipeline.models.insertion_gan import InsertionGAN  # noqa: E402
from pipeline.rules import Yardstick  # noqa: E402
from pipeline.train import train_stage  # noqa: E402
from pipeline.trained_gan import save_trained  # noqa: E402

STAGE_GENERATOR_TERMS = InsertionGAN.generator_terms  # the model's own, which ``anchored_terms`` wraps
STAGE_TRAINING_STEP = training.training_step  # the loop's own, which ``decayed_steps`` wraps
STAGE_SAVE_CHECKPOINT = training.save_checkpoint  # the loop's own, which ``kept_checkpoints`` wraps


def plane_cost(out: torch.Tensor, horizon: float, camera_height: float, typical_height: torch.Tensor,
               free: float) -> torch.Tensor:
    """Mean over the batch of the position-weighted hinge of the size field against the plane's heights.

    ``out`` [B, 5, H, W] the density where model's output on the batch's scenes, ``typical_height`` [B] each
    sample's class's typical height (metres x the learned class scale); the plane in frame heights: a typical
    object standing at row fraction y is ``typical_height * (y - horizon) / camera_height`` frame heights tall."""
    b, _, h, w = out.shape
    rows = (torch.arange(h, device=out.device, dtype=torch.float32) + 0.5) / h
    expected = typical_height.float()[:, None] * (rows[None, :] - horizon) / camera_height  # [B, H]
    below = (rows > horizon).float()[None, :, None]  # [1, H, 1]
    log_expected = expected.clamp_min(1e-4).log()[:, :, None]
    cost = F.relu((out[:, 1] - log_expected).abs() - free) * below
    return (position_weights(out) * cost).sum((1, 2)).mean()


def position_weights(out: torch.Tensor) -> torch.Tensor:
    """The model's own position softmax [B, H, W] over the cells of ``out``, its gradient stopped: a term weighted
    by it moves the size field where the model would draw, never the positions."""
    b, _, h, w = out.shape
    return torch.softmax(out[:, 0].flatten(1), 1).view(b, h, w).detach()


def aspect_gap(out: torch.Tensor, cls: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per class of the batch, the squared gap between the mean log aspect the model would draw and the class's
    median over the training examples, averaged over the classes present.

    The drawn log aspect at a cell is ``mu_w - mu_h`` (log width less log height, both in frame fractions; the
    draws' noise is symmetric about it), averaged by the position softmax over each scene and then over the
    class's samples of the batch: a moment match, so the field keeps its spread from cell to cell and from
    scene to scene (a wide parked row, a narrow car cut by the frame) and only its mean where the model draws
    is held. The height field's gradient is stopped: the plane holds heights, this moves widths.
    ``target`` [n_classes]: each class's median log aspect in frame fractions."""
    drawn = (position_weights(out) * (out[:, 3] - out[:, 1].detach())).sum((1, 2))  # [B]
    gaps = [(drawn[cls == k].mean() - target[k]).square() for k in cls.unique()]
    return torch.stack(gaps).mean()


def anchored_terms(plane: tuple[float, float], typical: torch.Tensor, aspect: torch.Tensor | None = None,
                   aspect_share: float = 0.0):
    """``InsertionGAN.generator_terms`` with the density model's ``ground_scale`` term made ``plane_cost`` on x
    (``typical`` [n_classes]: each model class's typical height), plus ``aspect_share`` x ``aspect_gap`` against
    ``aspect`` [n_classes] when given (logged on its own as ``aspect_gap``)."""

    def generator_terms(self: InsertionGAN, batch: dict):
        terms, images = STAGE_GENERATOR_TERMS(self, batch)
        if self.density and self.losses.ground_scale > 0:
            cls = batch["cls"]
            out = self.where(batch["x_where"], F.one_hot(cls, self.n_classes).float())
            cost = plane_cost(out, plane[0], plane[1], typical.to(cls.device)[cls], self.losses.ground_scale_free)
            if aspect is not None:
                gap = aspect_gap(out, cls, aspect.to(cls.device))
                terms["aspect_gap"] = gap.detach()
                cost = cost + aspect_share * gap
            terms["ground_scale"] = cost
        return terms, images

    return generator_terms


def decayed_steps(step_fn, steps: int, start: float):
    """``training.training_step`` with every learning rate set, before the step, to its initial value x the
    reference's factor: 1 until ``start`` x ``steps`` generator updates, then falling linearly to 0 at ``steps``.
    The count is the generator optimizer's own (the most updates any of its parameters has had, ``state['step']``:
    restored with it; a parameter that gets no gradient in some step does not hold the count back)."""
    first = int(round(start * steps))

    def training_step(model, batch, opt_g, opt_d, update_d, autocast):
        done = max((int(state["step"]) for state in opt_g.state.values() if "step" in state), default=0)
        factor = 1.0 if done < first else max(steps - done, 0) / max(steps - first, 1)
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
        return step_fn(model, batch, opt_g, opt_d, update_d, autocast)

    return training_step


def kept_checkpoints(save_fn, cfg: Config, keep_from: int):
    """``training.save_checkpoint`` that also writes the weights of each checkpoint from step ``keep_from`` on as a
    model folder ``{train.out}-steps/step-N`` (the train stage keeps its last step only)."""

    def save_checkpoint(directory, module, optimizers, step, key, log_dir=None):
        save_fn(directory, module, optimizers, step, key, log_dir)
        if step >= keep_from:
            save_trained(module, cfg, f"{cfg.train.out}-steps/step-{step}", {"steps": step})

    return save_checkpoint


def median_log_aspects(cfg: Config) -> torch.Tensor:
    """Each model class's median log aspect (log width less log height, in frame fractions) over the train
    split's prepared examples - the boxes the where model's likelihood is fitted to."""
    path = Path(cfg.prepare.out) / "train.npz"
    if not path.exists():
        raise ConfigError(f"{path}: missing (run the prepare stage)")
    with np.load(path) as z:
        box, cls = z["inst_box"].astype(np.float64), z["inst_class"].astype(np.int64)
    log_aspect = np.log((box[:, 2] - box[:, 0]) / (box[:, 3] - box[:, 1]))
    medians = []
    for k, name in enumerate(cfg.prepare.classes):
        if not (cls == k).any():
            raise ConfigError(f"{path}: no {name} examples to take the median aspect of")
        medians.append(float(np.median(log_aspect[cls == k])))
    return torch.tensor(medians)


def anchored_config(cfg: Config, out: Path, weight: float) -> Config:
    """The train stage's config with the term's weight and every output under ``out``."""
    if cfg.model.where_model != "density":
        raise ConfigError(f"model.where_model: {cfg.model.where_model!r} has no size field; this anchors the "
                          "density where model's")
    if not cfg.rules.learned:
        raise ConfigError("rules.learned: false - the anchor is the ground plane the rules learn from the dataset "
                          "(set rules.learned: true and run the prepare stage)")
    if weight <= 0:
        raise ConfigError(f"--weight: expected > 0, got {weight}")
    losses = dataclasses.replace(cfg.train.losses, ground_scale=weight)
    return dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, out=str(out), checkpoint_dir=f"{out}-checkpoints", log_dir=f"{out}-log", losses=losses))


def check_schedule(out: Path, lr_decay_start: float) -> None:
    """Record the run's schedule beside ``out`` (``OUT-schedule.json``); refuse checkpoints made under another."""
    if not 0 <= lr_decay_start <= 1:
        raise ConfigError(f"--lr-decay-start: expected a share in [0, 1], got {lr_decay_start}")
    record = Path(f"{out}-schedule.json")
    stored = json.loads(record.read_text()) if record.exists() else {"lr_decay_start": 1.0}
    if Path(f"{out}-checkpoints").exists() and stored.get("lr_decay_start") != lr_decay_start:
        raise ConfigError(f"{out}-checkpoints: made with --lr-decay-start {stored.get('lr_decay_start')}, asked "
                          f"{lr_decay_start}; delete it or choose another --out")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"lr_decay_start": lr_decay_start}) + "\n")


def train_anchored(cfg: Config, out: Path, weight: float, aspect_weight: float = 0.0,
                   lr_decay_start: float = 1.0, keep_from: int | None = None) -> dict:
    """Train with the anchor (``anchored_config``) and, when ``aspect_weight`` > 0, the widths' moment match
    (``aspect_gap`` at that weight), under the reference's decaying learning rates from ``lr_decay_start`` (1:
    the stage's constant ones), then score the model as the train stage does (its metrics into
    ``OUT-metrics.json``); returns them. ``keep_from``: keep the weights of the checkpoints from that step on."""
    if aspect_weight < 0:
        raise ConfigError(f"--aspect-weight: expected >= 0, got {aspect_weight}")
    run_cfg = anchored_config(cfg, out, weight)
    check_schedule(out, lr_decay_start)
    yardstick = Yardstick.of(run_cfg)
    if yardstick.plane is None:
        raise ConfigError(f"{run_cfg.prepare.out}: no learned ground plane (run the prepare stage with rules.learned)")
    label_ids = [BY_NAME[n].id for n in run_cfg.prepare.classes]
    typical = torch.tensor([MEAN_HEIGHT_M[i] * yardstick.class_scale.get(i, 1.0) for i in label_ids])
    aspect = median_log_aspects(run_cfg) if aspect_weight > 0 else None
    # The term rides in the ground_scale slot (weighted by --weight there), so its share is the ratio.
    InsertionGAN.generator_terms = anchored_terms(yardstick.plane, typical, aspect, aspect_weight / weight)
    if lr_decay_start < 1:
        training.training_step = decayed_steps(STAGE_TRAINING_STEP, run_cfg.train.steps, lr_decay_start)
    if keep_from is not None:
        training.save_checkpoint = kept_checkpoints(STAGE_SAVE_CHECKPOINT, run_cfg, keep_from)
    try:
        return train_stage(run_cfg, metrics_path=f"{out}-metrics.json")
    finally:
        InsertionGAN.generator_terms = STAGE_GENERATOR_TERMS
        training.training_step = STAGE_TRAINING_STEP
        training.save_checkpoint = STAGE_SAVE_CHECKPOINT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weight", type=float, required=True, help="the term's weight (train.losses.ground_scale)")
    parser.add_argument("--aspect-weight", type=float, default=0.0,
                        help="the weight of the widths' moment match (aspect_gap); 0: off, heights only")
    parser.add_argument("--lr-decay-start", type=float, default=1.0,
                        help="share of the steps after which every learning rate falls linearly to 0 (the "
                             "reference: 0.5); 1: constant, as the train stage")
    parser.add_argument("--keep-from", type=int, default=None,
                        help="also keep the weights of every checkpoint from this step on (OUT-steps/step-N)")
    parser.add_argument("--out", type=Path, required=True, help="the trained model's folder")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    with reported_as_one_line():
        metrics = train_anchored(load_config(args.params), args.out, args.weight, args.aspect_weight,
                                 args.lr_decay_start, args.keep_from)
    print(json.dumps(metrics["train"]))


if __name__ == "__main__":
    main()
