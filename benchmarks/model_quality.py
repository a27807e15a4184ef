"""Train the insertion GAN under changed params and print the model's own figures - the way the defaults'
departures from the reference were chosen (docs/insertion-gan.md, docs/history.md).

    python benchmarks/model_quality.py NAME [-S key=value ...] [--augment]

Trains with ``params.yaml`` plus the ``-S`` overrides (dotted keys, YAML values) into ``runs/NAME/``
(weights, checkpoints, dvclive log), then scores on the val split: the where module's raw samples on the
three rules (and random boxes), the what-VAE's posterior health, shape precision and recall, diversity
over z; with ``--augment``, the augment stage's acceptance rate and rejections on the train split (its
output under ``runs/NAME/augmented``). Writes ``runs/NAME.json`` and prints one line per class. Uses the
prepared data of ``prepare.out`` (run ``dvc repro prepare`` first). Training is not bit-reproducible
across machines: compare runs made on one machine, and over seeds (``-S seed=1``) before trusting a gap.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import yaml

from pipeline.augment import augment
from pipeline.config import Config, from_dict
from pipeline.evaluation.shapes import evaluate_diversity, evaluate_shapes
from pipeline.train import train_stage
from pipeline.trained_gan import load_trained


def overridden(params: Path, overrides: list[str]) -> dict:
    raw = yaml.safe_load(params.read_text())
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: -S {item!r}: expected key=value")
        *path, last = key.split(".")
        node = raw
        for part in path:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the run's folder under --out")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="key=value (repeatable)")
    parser.add_argument("--augment", action="store_true", help="also run augment and report its acceptance")
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--out", default="runs", type=Path)
    args = parser.parse_args()
    run = args.out / args.name
    raw = overridden(args.params, args.overrides)
    raw["train"].update(out=str(run / "model"), checkpoint_dir=str(run / "checkpoint"), log_dir=str(run / "live"))
    cfg = from_dict(Config, raw, "params")
    start = time.perf_counter()
    # The train stage itself: training, then raw placements and posterior health (its metrics file in the run).
    result: dict = {"overrides": args.overrides, **train_stage(cfg, run / "train.json")}
    gan = load_trained(cfg.train.out, cfg, "cpu")
    result |= {"shape": evaluate_shapes(gan, cfg, "val", cfg.evaluate.samples_per_frame, cfg.seed),
               "diversity": evaluate_diversity(gan, cfg, "val", cfg.evaluate.diversity_frames,
                                               cfg.evaluate.diversity_draws, cfg.seed)}
    if args.augment:
        augmented = dataclasses.replace(cfg.augment, model=cfg.train.out, out=str(run / "augmented"))
        classes = augment(dataclasses.replace(cfg, augment=augmented), progress=False)["summary"]["classes"]
        result["acceptance"] = {c: {"rate": v["acceptance_rate"], "rejected": v["rejected"]}
                                for c, v in classes.items()}
    result["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    for c in cfg.prepare.classes:
        w, p, d = result["where_raw"][c], result["what_posterior"][c], result["diversity"][c]
        print(f"{args.name} {c}: raw plausible {w['plausible']} (support {w['support']}, overlap {w['overlap']}, "
              f"scale {w.get('scale')}) | acceptance {result.get('acceptance', {}).get(c, {}).get('rate')} | "
              f"KL {p['kl_what']} nats, L1 {p['l1_posterior_mean']} vs z=0 {p['l1_z_zero']} | shape IoU within "
              f"{d['shape_iou_within']} (real pairs {d['shape_iou_real']}), precision "
              f"{result['shape'][c]['raw']['precision']}")


if __name__ == "__main__":
    main()
