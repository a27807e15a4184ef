"""How much does a GAN's raw placement move between the steps of one training, against between trainings? The
train stage keeps the weights of its last step only, and the CamVid trainings of one config clear or miss a
figure by training (raw where samples over the real objects' own plausibility: 0.87-0.97 for persons over seven
trainings). This scores weights kept along one training with the train stage's own scoring, and the uniform mean
of several of them:

    python benchmarks/anchored_sizes.py --weight 1.0 --keep-from 1600 --out models/A --params P   # keeps steps
    python benchmarks/step_spread.py score --split train --out steps.jsonl --params P models/A-steps/step-*
    python benchmarks/step_spread.py average --out models/A-mean models/A-steps/step-{2600,2800,3000,3200,3400,3600}

``score``: per model folder, the raw where samples' plausibility, the real objects' (the ceiling) and the ratio of
the two with its 95% interval, exactly as ``metrics/train.json`` holds them (``evaluation/where_quality.py``'s
``evaluate_where``: ``train.eval_samples_per_frame`` samples per frame and class, 4 by default, the draws seeded
by ``--seed``, default the params' ``seed``),
a line of JSON per model appended to ``--out`` (a stopped run goes on; models scored already are skipped).
``--seed`` other than the params' reads the sampling noise of one model beside the spread between steps.
``average``: the element-wise mean of the weights of several folders of one config (their ``config.json``
signatures must agree) into a new model folder - the uniform weight average of the steps given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.checkpoints import read_weights_config  # noqa: E402
from pipeline.config import Config, load_config  # noqa: E402
from pipeline.errors import ConfigError, reported_as_one_line  # noqa: E402
from pipeline.evaluation.where_quality import evaluate_where  # noqa: E402
from pipeline.io import atomic_write_bytes, atomic_write_json  # noqa: E402
from pipeline.trained_gan import load_trained  # noqa: E402


def score(cfg: Config, models: list[str], split: str, out: Path, seed: int | None = None) -> list[dict]:
    """Score each model folder's raw where samples on ``split``; append a line per model to ``out``."""
    seed = cfg.seed if seed is None else seed
    done = set()
    if out.exists():
        done = {(r["model"], r["split"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
    rows = []
    for folder in models:
        if (folder, split, seed) in done:
            continue
        q = evaluate_where(load_trained(folder, cfg, "cpu"), cfg, split, per_frame=cfg.train.eval_samples_per_frame,
                           seed=seed)
        row = {"model": folder, "split": split, "seed": seed,
               "raw": {c: v["plausible"] for c, v in q["model"].items()},
               "real": {c: v["plausible"] for c, v in q.get("real", {}).items()},
               "raw_over_real": q.get("raw_over_real", {})}
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
    return rows


def average(models: list[str], out: Path) -> None:
    """The uniform mean of the weights in ``models`` (one signature) into the model folder ``out``."""
    if len(models) < 2:
        raise ConfigError(f"average: at least two model folders, got {len(models)}")
    configs = [read_weights_config(Path(m)) for m in models]
    if any(c["signature"] != configs[0]["signature"] for c in configs):
        raise ConfigError(f"average: {models[0]} and the others were trained under different params (signatures)")
    states = [load_file(Path(m) / "model.safetensors") for m in models]
    if any(s.keys() != states[0].keys() for s in states):
        raise ConfigError(f"average: {models[0]} and the others hold different weights")
    mean = {k: torch.stack([s[k].double() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
            for k, v in states[0].items()}
    out.mkdir(parents=True, exist_ok=True)
    signature = configs[0]["signature"]
    atomic_write_bytes(out / "model.safetensors", save(mean, {"signature": json.dumps(signature)}))
    atomic_write_json(out / "config.json", {"signature": signature, "summary": {"averaged": models}}, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="score model folders' raw where samples as the train stage does")
    s.add_argument("models", nargs="+", help="trained model folders")
    s.add_argument("--split", default="val")
    s.add_argument("--seed", type=int, default=None, help="the draws' seed (default: the params' seed)")
    s.add_argument("--out", type=Path, required=True, help="JSON lines, appended")
    s.add_argument("--params", default="params.yaml")
    a = sub.add_parser("average", help="the uniform mean of several model folders' weights")
    a.add_argument("models", nargs="+")
    a.add_argument("--out", type=Path, required=True, help="the averaged model's folder")
    args = parser.parse_args()
    with reported_as_one_line():
        if args.command == "average":
            average(args.models, args.out)
            print(f"{args.out}: the mean of {len(args.models)} models' weights")
            return
        for row in score(load_config(args.params), args.models, args.split, args.out, args.seed):
            ratio = {c: r["ratio"] for c, r in row["raw_over_real"].items()}
            print(f"{row['model']} {row['split']} seed {row['seed']}: raw {row['raw']}, over the real {ratio}")


if __name__ == "__main__":
    main()
