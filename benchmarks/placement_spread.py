"""Is ours' downstream figure a matter of how narrowly its placements spread? Ours' arm made again with the where
model's position logits divided by a temperature T: T > 1 spreads the boxes' bottom centres over more of the frame
(T = 1 is ours; a large T nears a uniform choice of the cell), the box's size still the density's Gaussian at the
chosen cell and every candidate still under the augment stage's rules. Trained and read with support_arm.py's code,
against the same workspace's or a recorded run's arms seed by seed.

    python benchmarks/placement_spread.py write 40 --temperature 3 --out runs/spread-t3
    python benchmarks/support_arm.py run 40 0 1 2 --arm ours --out runs/spread-t3
    python benchmarks/support_arm.py compare 40 --arm ours --out runs/spread-t3 --against .
    python benchmarks/inserted_context.py runs/spread-t3/arms/40      # what the spread objects stand on

write: the arms of N by the arms stage's code (``write_arms``: ``params.yaml``, the workspace's trained GAN and crop
bank) with ours' inserter at temperature T, under OUT/arms/N, and the workspace's test split linked as OUT/test.
The subset comes out as the stage writes it; copy-paste and the rules move the new (spread) objects. Printed: how
many objects each arm holds inserted (the dose: T spreads some candidates off the rules, so fewer may pass; more
``--candidates`` per class and frame keep it) and the mean entropy, in bits, of the where model's position
distribution over the frames' cells before and after the temperature, beside a uniform choice's (how much it
spread).

relocate: the other half of the question - ours' very objects (shape, size, crop, blend) at the where model's
draws. The rules arm made again with each try's position drawn from the density (a cell by the position
softmax at temperature T, the bottom centre uniform inside it; the object's own size kept) instead of uniformly
over the frame, and judged by the same rules; the other three arms as the stage writes them. So this rules arm
differs from the recorded rules arm only in where its tries land, and from ours in the rules' filter in place of
the augment stage's and in the shapes having been made for other spots.

    python benchmarks/placement_spread.py relocate 40 --temperature 1 --out runs/relocate-t1
    python benchmarks/support_arm.py run 40 0 1 2 --arm rules --out runs/relocate-t1
    python benchmarks/support_arm.py compare 40 --arm rules --out runs/relocate-t1 --against .
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from support_arm import checked_test_split, write_variant  # noqa: E402

from pipeline.augmentation import build_inserter  # noqa: E402
from pipeline.config import Config, load_config  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.evaluation import arms as arms_module  # noqa: E402
from pipeline.evaluation.copy_paste import Relocate  # noqa: E402
from pipeline.insertion import scene_inputs  # noqa: E402
from pipeline.models.where_net import WhereDensity  # noqa: E402
from pipeline.scene import Scene  # noqa: E402


def entropy_bits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of the softmax over each row of ``logits`` [B, cells]."""
    log_p = torch.log_softmax(logits.double(), 1)
    return -(log_p.exp() * log_p).sum(1) / np.log(2)


def density(where: torch.nn.Module) -> WhereDensity:
    """``where``, refused in one line where it is not the density where module."""
    if not isinstance(where, WhereDensity):
        raise ConfigError("model.where_model: the temperature spreads the density where model's cells; "
                          "this GAN's where module is the reference's (gan)")
    return where


def spread(temperature: float, candidates: int | None, entropies: dict[str, list[float]]) -> Callable:
    """``build_inserter`` whose where model's position logits are divided by ``temperature`` (its density net's
    channel 0, which ``WhereDensity.sample`` turns into the cell's probability), with ``candidates`` draws per
    class and frame (default ``augment.candidates``); each forward pass's mean entropy before and after goes into
    ``entropies``."""

    def build(cfg: Config, device: torch.device, bank=None):
        inserter = build_inserter(dataclasses.replace(cfg, augment=dataclasses.replace(
            cfg.augment, candidates=candidates or cfg.augment.candidates)), device, bank)
        where = density(inserter.gan.where)
        forward = where.forward

        def flattened(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            out = forward(x, c).clone()
            entropies["before"].append(float(entropy_bits(out[:, 0].flatten(1)).mean()))
            out[:, 0] = out[:, 0] / temperature
            entropies["uniform"] = [float(np.log2(out[0, 0].numel()))]
            entropies["after"].append(float(entropy_bits(out[:, 0].flatten(1)).mean()))
            return out

        where.forward = flattened  # an instance attribute: nn.Module.__call__ finds it before the class's
        return inserter

    return build


def drawn_from_density(temperature: float, entropies: dict[str, list[float]]) -> type[Relocate]:
    """``Relocate`` whose rules arm draws each try's position from the where model's density at ``temperature``
    for the object's class, read on the frame as it was (before any object went in); copy-paste keeps its
    uniform positions. Each frame's and class's entropy before and after the temperature goes into
    ``entropies``."""

    class RelocateAtDraws(Relocate):
        def __init__(self, bank, cfg: Config, rules: bool = False):
            super().__init__(bank, cfg, rules)
            self.where = density(build_inserter(cfg, torch.device("cpu"), bank).gan.where) if rules else None
            self.cells: dict[str, np.ndarray] = {}

        def insert(self, scene: Scene, objects: list[dict], seed: int) -> int:
            if self.where is not None:
                x_where, _ = scene_inputs(scene, self.cfg, torch.device("cpu"))
                classes = self.cfg.prepare.classes
                c = torch.eye(len(classes))
                with torch.no_grad():
                    logits = self.where(x_where.expand(len(classes), -1, -1, -1), c)[:, 0]
                for k, name in enumerate(classes):
                    entropies["before"].append(float(entropy_bits(logits[k].flatten()[None])))
                    entropies["after"].append(float(entropy_bits(logits[k].flatten()[None] / temperature)))
                    p = torch.softmax(logits[k].double().flatten() / temperature, 0)
                    entropies["uniform"] = [float(np.log2(p.numel()))]
                    self.cells[name] = p.reshape(logits[k].shape).numpy()
            return super().insert(scene, objects, seed)

        def position(self, scene: Scene, m: dict, w: int, h: int, rng: np.random.Generator) -> tuple[int, int]:
            if self.where is None:
                return super().position(scene, m, w, h, rng)
            cells = self.cells[m["class"]]
            rows, cols = cells.shape
            p = cells.ravel()
            cell = int(rng.choice(p.size, p=p / p.sum()))
            u = rng.random(2)
            height, width = scene.size
            cx = (cell % cols + u[0]) / cols * width
            bottom = (cell // cols + u[1]) / rows * height
            nx = int(np.clip(round(cx - w / 2), 0, width - w))
            ny = int(np.clip(round(bottom) - h, 0, height - h))
            return nx, ny

    return RelocateAtDraws


def checked_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ConfigError(f"--temperature: expected > 0, got {temperature}")


def write_and_report(cfg: Config, n: int, out: Path, workspace_test: Path, entropies: dict[str, list[float]],
                     **head) -> None:
    """``write_variant`` with whatever the caller patched, then one JSON line: ``head``, the dose the arms hold
    inserted and the mean position entropies (bits) the patch collected."""
    summary = write_variant(cfg, n, out, workspace_test)
    print(json.dumps({**head, "inserted": summary["inserted"],
                      "position_entropy_bits": {k: round(float(np.mean(v)), 3) for k, v in entropies.items()}}))


def relocate(cfg: Config, n: int, temperature: float, out: Path) -> None:
    checked_temperature(temperature)
    workspace_test = checked_test_split(cfg)
    entropies: dict[str, list[float]] = {"before": [], "after": []}
    arms_module.Relocate = drawn_from_density(temperature, entropies)
    write_and_report(cfg, n, out, workspace_test, entropies, relocate=True, temperature=temperature)


def write(cfg: Config, n: int, temperature: float, out: Path, candidates: int | None = None) -> None:
    checked_temperature(temperature)
    if candidates is not None and candidates < 1:
        raise ConfigError(f"--candidates: expected >= 1, got {candidates}")
    workspace_test = checked_test_split(cfg)
    entropies: dict[str, list[float]] = {"before": [], "after": []}
    arms_module.build_inserter = spread(temperature, candidates, entropies)
    write_and_report(cfg, n, out, workspace_test, entropies, temperature=temperature, candidates=candidates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the arms with ours' placements spread by a temperature")
    w.add_argument("n", type=int)
    w.add_argument("--temperature", type=float, required=True, help="divides the position logits (1 = ours)")
    w.add_argument("--candidates", type=int, help="the GAN's draws per class and frame (default: augment.candidates)")
    w.add_argument("--out", type=Path, required=True, help="the variant's folder, e.g. runs/spread-t3")
    w.add_argument("--params", default="params.yaml")
    r = sub.add_parser("relocate", help="write the arms with the rules arm's tries at the where model's draws")
    r.add_argument("n", type=int)
    r.add_argument("--temperature", type=float, default=1.0, help="divides the position logits (default 1: "
                   "the where model's own draws)")
    r.add_argument("--out", type=Path, required=True, help="the variant's folder, e.g. runs/relocate-t1")
    r.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    with reported_as_one_line():
        if args.command == "relocate":
            relocate(load_config(args.params), args.n, args.temperature, args.out)
        else:
            write(load_config(args.params), args.n, args.temperature, args.out, args.candidates)


if __name__ == "__main__":
    main()
