"""How many of the built-in dataset's own persons and cars would the augment stage's overlap rule accept?

    python benchmarks/real_overlap_ceiling.py [--split train] [--frames 600]

The augment stage rejects a candidate whose whole mask lies on existing persons/cars for
``augment.max_overlap`` (0.25) or more of its pixels; the placement rules judge raw samples at
``rules.max_overlap`` (0.5). A where model that imitates the data places objects where the data has them,
so the data's own pass rate under the same rule bounds what imitation alone reaches. For every person and
car the generator drew (the built-in dataset only: it knows each object's whole, unoccluded mask), the
frame is composited again without it - the exact label map it would be inserted into - and the rule is
applied to its whole mask. Prints, per class, the share that passes each threshold, over all objects and
over those prepare keeps as training examples (area, fill, aspect, size filters on the visible mask).
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from pipeline.config import load_config
from pipeline.datasets.synthetic import build_scene, frame_ids
from pipeline.datasets.synthetic.canvas import windows
from pipeline.labels import BY_ID, BY_NAME
from pipeline.prepare import instance_filter
from pipeline.rules import overlap_share


def whole_mask(obj, height: int, width: int) -> np.ndarray:
    """An object's whole canvas mask placed in the frame (cut to it)."""
    mask = np.zeros((height, width), bool)
    placed = windows(obj.codes.shape, obj.y0, obj.x0, (height, width))
    if placed is not None:
        at, cut = placed
        mask[at] = obj.codes[cut] > 0
    return mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--split", default="train")
    parser.add_argument("--frames", type=int, default=600)
    args = parser.parse_args()
    cfg = load_config(args.params)
    thresholds = (cfg.augment.max_overlap, cfg.rules.max_overlap)
    classes = [BY_NAME[n].id for n in cfg.prepare.classes]
    shares = {scope: collections.defaultdict(list) for scope in ("all", "kept by prepare")}
    frames = [f for f in frame_ids(cfg.synthetic) if f.split == args.split][: args.frames]
    for frame in frames:
        scene, builder = build_scene(cfg.synthetic, cfg.seed, frame)
        kept = {inst.value for inst in scene.instances if not instance_filter(inst, cfg.prepare, classes)}
        # object -> its instance value, read where it is visible (objects hidden everywhere have none)
        values = {}
        for obj in builder.order:
            at = builder.objmap == obj.index
            if obj.index and at.any():
                values[id(obj)] = int(scene.instance_ids[at][0])
        everyone = list(builder.objects)
        for obj in [o for o in everyone if id(o) in values]:
            builder.lab = builder.stuff.copy()
            builder.objects = [o for o in everyone if o is not obj]
            builder.composite()  # the frame without this object: what an insertion would be judged against
            share = overlap_share(whole_mask(obj, *scene.size), builder.lab)
            name = BY_ID[obj.label].name
            shares["all"][name].append(share)
            if values[id(obj)] in kept:
                shares["kept by prepare"][name].append(share)
        builder.objects = everyone
    print(f"{args.split}: {len(frames)} frames; share of real objects whose whole mask lies on other persons/cars "
          f"for less than the threshold (augment {thresholds[0]}, rules {thresholds[1]})")
    for scope, by_class in shares.items():
        for name, values in sorted(by_class.items()):
            v = np.array(values)
            print(f"  {scope:<16} {name:<7} n {v.size:5d}: pass augment {np.mean(v < thresholds[0]):.3f}, "
                  f"pass rules {np.mean(v < thresholds[1]):.3f}, median share {np.median(v):.3f}")


if __name__ == "__main__":
    main()
