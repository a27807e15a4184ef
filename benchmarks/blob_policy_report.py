"""How well the semantic format's blob policy (datasets/semantic.py) tells single objects from groups, on
frames whose instances are known: every connected component of person / car in the label maps of a
Cityscapes tree is classified by the policy and compared with the instanceIds, where a component is truly
one object when one instance holds 90% or more of its pixels.

    python benchmarks/blob_policy_report.py [ROOT] [--params params.yaml] [--min-area 20]

Prints per class: components, truly single, kept as single (and how many of those are truly single: the
precision of what the what module learns from), and dropped as groups / fragments.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
from scipy import ndimage

from pipeline.config import load_config
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.datasets.semantic import classify_component
from pipeline.labels import BY_NAME, INSTANCE_FACTOR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", default="../shared/data/cityscapes-sample")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--min-area", type=int, default=20, help="components below this are not counted")
    args = parser.parse_args()
    policy = load_config(args.params).data.semantic
    tally: collections.Counter = collections.Counter()
    for scene in CityscapesDataset(Path(args.root)):
        for name in ("person", "car"):
            label_id = BY_NAME[name].id
            comp, _ = ndimage.label(scene.labels == label_id, structure=np.ones((3, 3), bool))
            for k, box in enumerate(ndimage.find_objects(comp), start=1):
                mask = comp[box] == k
                if mask.sum() < args.min_area:
                    continue
                _, counts = np.unique(scene.instance_ids[box][mask], return_counts=True)
                values = np.unique(scene.instance_ids[box][mask])
                single = counts.max() / counts.sum() >= 0.9 and values[counts.argmax()] >= INSTANCE_FACTOR
                tally[(name, "components")] += 1
                tally[(name, "truly single")] += int(single)
                kind = classify_component(mask, label_id, policy)
                tally[(name, kind)] += 1
                if kind == "single":
                    tally[(name, "kept and truly single")] += int(single)
    for name in ("person", "car"):
        kept, right = tally[(name, "single")], tally[(name, "kept and truly single")]
        base = tally[(name, "truly single")] / max(1, tally[(name, "components")])
        print(f"{name}: {tally[(name, 'components')]} components, {tally[(name, 'truly single')]} truly single "
              f"(base rate {base:.2f}); kept {kept}, of which truly single {right} (precision "
              f"{right / max(1, kept):.2f}); dropped as group {tally[(name, 'group')]}, "
              f"fragment {tally[(name, 'fragment')]}")


if __name__ == "__main__":
    main()
