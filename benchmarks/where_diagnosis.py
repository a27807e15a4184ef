"""Where do the where module's raw placements fail, and could they pass at all?

    python benchmarks/where_diagnosis.py [--model models/insertion] [--per-frame 8]

On the val split, three figures under the placement rules of ``metrics/train.json`` (``rules``):

- **real boxes**: each real person/car that passes prepare's filters, as a box, on its frame with the
  object removed - the ceiling a model that imitates the data can reach;
- **raw samples by rule**: the model's boxes (no filter), with the overlap shares, the scale ratios and the
  support labels of the failures, and how far a frame's boxes spread (centre x, std);
- **truncated z_where**: the same with ``z_where`` scaled by 0.75, 0.5, 0.25 and 0: if the misses sat in
  the prior's tails, shrinking z would remove them; if they stay, the scene conditioning is at fault. (For
  the density where model, z0 picks the cell by inverse CDF over cells in row-major order: shrinking it
  draws cells near the median row, so only the sizes' part of this figure reads as a tail test.)
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import torch

from pipeline.config import load_config
from pipeline.datasets import open_dataset
from pipeline.evaluation.where_quality import box_mask, judge, real_box_verdicts
from pipeline.labels import BY_ID, BY_NAME
from pipeline.rules import Yardstick, check_placement
from pipeline.trained_gan import load_trained
from pipeline.training_data import PreparedData


def real_boxes(cfg, dataset) -> dict:
    tally = collections.defaultdict(list)
    yardstick = Yardstick.of(cfg)
    for i in range(len(dataset)):
        for inst, verdicts in real_box_verdicts(dataset[i], cfg, yardstick):
            tally[inst.name].append(verdicts["plausible"])
    return {name: (round(float(np.mean(v)), 3), len(v)) for name, v in tally.items()}


def raw_samples(cfg, gan, dataset, prepared, per_frame: int, z_scale: float = 1.0, detail: bool = False) -> dict:
    torch.manual_seed(cfg.seed)
    yardstick = Yardstick.of(cfg)
    stats = {name: collections.defaultdict(list) for name in cfg.prepare.classes}
    for i in range(len(dataset)):
        scene = dataset[i]
        camera, (height, width) = yardstick.camera(scene), scene.size
        x_where, x_what = prepared.scene_inputs(torch.full((per_frame,), i, dtype=torch.long))
        for c, name in enumerate(cfg.prepare.classes):
            z = torch.randn(per_frame, gan.z_where) * z_scale
            boxes = gan.sample(x_where, x_what, torch.full((per_frame,), c, dtype=torch.long), z_where=z)["box"]
            boxes = boxes.numpy()
            st = stats[name]
            st["centre_std"].append(float(np.std((boxes[:, 0] + boxes[:, 2]) / 2)))
            for box in boxes:
                st["plausible"].append(judge(scene, box, BY_NAME[name].id, camera, yardstick)["plausible"])
                mask = box_mask(box, height, width)
                if detail and mask.any() and camera is not None:
                    check = check_placement(scene.labels, mask, camera, BY_NAME[name].id,
                                            tuple(cfg.rules.scale_band), cfg.rules.max_overlap)
                    st["overlap"].append(check.overlap)
                    st["scale"].append(check.scale)
                    if not check.support_ok:
                        st["support_fail"].append(BY_ID[check.support].name)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="trained model folder (default: train.out)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--per-frame", type=int, default=8)
    args = parser.parse_args()
    cfg = load_config(args.params)
    dataset = open_dataset(cfg.data, "val", cfg.coco)
    print("real boxes, all three rules (share, count):", real_boxes(cfg, dataset))
    gan = load_trained(args.model or cfg.train.out, cfg)
    prepared = PreparedData(f"{cfg.prepare.out}/val.npz", "cpu", flip_prob=0.0)
    stats = raw_samples(cfg, gan, dataset, prepared, args.per_frame, detail=True)
    for name, st in stats.items():
        overlap, scale = np.array(st["overlap"]), np.array(st["scale"])
        print(f"raw {name}: plausible {np.mean(st['plausible']):.3f}; overlap >= {cfg.rules.max_overlap} "
              f"{np.mean(overlap >= cfg.rules.max_overlap):.3f}; scale below / above the band "
              f"{np.mean(scale < cfg.rules.scale_band[0]):.3f} / {np.mean(scale > cfg.rules.scale_band[1]):.3f}; "
              f"support failures {collections.Counter(st['support_fail']).most_common(4)}; "
              f"centre x spread in a frame {np.mean(st['centre_std']):.3f}")
    for z_scale in (0.75, 0.5, 0.25, 0.0):
        stats = raw_samples(cfg, gan, dataset, prepared, args.per_frame, z_scale)
        print(f"z_where x {z_scale}: " + ", ".join(f"{n} {np.mean(s['plausible']):.3f}" for n, s in stats.items()))


if __name__ == "__main__":
    main()
