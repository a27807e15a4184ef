"""How well the built-in dataset obeys its own placement rules (docs/synthetic-scenes.md).

    python benchmarks/scene_rules_report.py [--params params.yaml]

Regenerates every frame of the configured dataset in memory (the generator is deterministic, so
these are the frames `dvc repro` writes) and, for every fully visible person and car (nothing in
front, not cut by the border), reports the share standing on a plausible support and the share whose
pixel height is within the `rules.scale_band` (default [0.75, 1.33]) of the camera-predicted height.
"""

from __future__ import annotations

import argparse

from pipeline import labels as lb
from pipeline.config import load_config
from pipeline.datasets.synthetic import frame_ids, generate_scene
from pipeline.rules import scale_ratio, support_label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    cfg = load_config(args.params)
    counts = {c: {"n": 0, "support": 0, "scale": 0} for c in lb.TARGET_CLASSES}
    frames = frame_ids(cfg.synthetic)
    lo, hi = cfg.rules.scale_band
    for frame in frames:
        scene = generate_scene(cfg.synthetic, cfg.seed, frame)
        height, width = scene.size
        for inst in scene.instances:
            x, y, w, h = inst.bbox
            border = x == 0 or y == 0 or x + w == width or y + h == height
            if inst.label_id not in counts or inst.meta.get("visible_fraction") != 1.0 or border:
                continue
            mask = scene.mask(inst)
            c = counts[inst.label_id]
            c["n"] += 1
            c["support"] += support_label(scene.labels, mask) in lb.SUPPORT[inst.label_id]
            c["scale"] += lo <= scale_ratio(mask, scene.camera, inst.label_id) <= hi
    print(f"frames {len(frames)} ({cfg.synthetic.width}x{cfg.synthetic.height})")
    for label_id, c in counts.items():
        n = max(c["n"], 1)
        print(f"{lb.BY_ID[label_id].name:<7} fully visible {c['n']:5d}  on plausible support {c['support'] / n:.2%}  "
              f"scale within [{lo}, {hi}] {c['scale'] / n:.2%}")


if __name__ == "__main__":
    main()
