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
from pipeline.models.where_net import WhereDensity  # noqa: E402


def entropy_bits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of the softmax over each row of ``logits`` [B, cells]."""
    log_p = torch.log_softmax(logits.double(), 1)
    return -(log_p.exp() * log_p).sum(1) / np.log(2)


def spread(temperature: float, candidates: int | None, entropies: dict[str, list[float]]) -> Callable:
    """``build_inserter`` whose where model's position logits are divided by ``temperature`` (its density net's
    channel 0, which ``WhereDensity.sample`` turns into the cell's probability), with ``candidates`` draws per
    class and frame (default ``augment.candidates``); each forward pass's mean entropy before and after goes into
    ``entropies``."""

    def build(cfg: Config, device: torch.device, bank=None):
        inserter = build_inserter(dataclasses.replace(cfg, augment=dataclasses.replace(
            cfg.augment, candidates=candidates or cfg.augment.candidates)), device, bank)
        where = inserter.gan.where
        if not isinstance(where, WhereDensity):
            raise ConfigError("model.where_model: the temperature spreads the density where model's cells; "
                              "this GAN's where module is the reference's (gan)")
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


def write(cfg: Config, n: int, temperature: float, out: Path, candidates: int | None = None) -> None:
    if not temperature > 0:
        raise ConfigError(f"--temperature: expected > 0, got {temperature}")
    if candidates is not None and candidates < 1:
        raise ConfigError(f"--candidates: expected >= 1, got {candidates}")
    workspace_test = checked_test_split(cfg)
    entropies: dict[str, list[float]] = {"before": [], "after": []}
    arms_module.build_inserter = spread(temperature, candidates, entropies)
    summary = write_variant(cfg, n, out, workspace_test)
    print(json.dumps({"temperature": temperature, "candidates": candidates, "inserted": summary["inserted"],
                      "position_entropy_bits": {k: round(float(np.mean(v)), 3) for k, v in entropies.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the arms with ours' placements spread by a temperature")
    w.add_argument("n", type=int)
    w.add_argument("--temperature", type=float, required=True, help="divides the position logits (1 = ours)")
    w.add_argument("--candidates", type=int, help="the GAN's draws per class and frame (default: augment.candidates)")
    w.add_argument("--out", type=Path, required=True, help="the variant's folder, e.g. runs/spread-t3")
    w.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    with reported_as_one_line():
        write(load_config(args.params), args.n, args.temperature, args.out, args.candidates)


if __name__ == "__main__":
    main()
