"""Official-tool agreement over a whole Cityscapes tree (needs the dev extras).

    python benchmarks/roundtrip_report.py data/synthetic [--split train]

For every frame: the share of pixels where cityscapesscripts' rendering of our polygons JSON equals
our labelIds PNG, and the IoU of every instance >= 100 px against its rendering; then the COCO json
of the split (written here) scored by COCOeval against itself. Prints the worst and mean figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from official import coco_self_ap, render_polygons  # noqa: E402

from pipeline.datasets.cityscapes import CityscapesDataset  # noqa: E402
from pipeline.io import read_single_channel  # noqa: E402
from pipeline.writers.coco_writer import CocoWriter, cityscapes_file_name  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--split", action="append")
    args = parser.parse_args()
    probe = CityscapesDataset(args.root, args.split)
    for split in probe.splits:
        dataset = CityscapesDataset(args.root, [split])
        agreements, ious, consistent = [], [], 0
        coco = CocoWriter()
        for i in range(len(dataset)):
            paths = dataset.paths(i)
            labels = read_single_channel(paths.label_ids, np.uint8)
            instances = read_single_channel(paths.instance_ids, np.uint16).astype(np.int32)
            consistent += bool((np.where(instances >= 1000, instances // 1000, instances) == labels).all())
            rendered_labels, rendered_instances = render_polygons(paths.polygons)
            agreements.append(float((rendered_labels == labels).mean()))
            for value in np.unique(instances[instances >= 1000]).tolist():
                ours, theirs = instances == value, rendered_instances == value
                if ours.sum() >= 100:
                    ious.append(float((ours & theirs).sum() / (ours | theirs).sum()))
            scene = dataset[i]
            coco.add(scene, cityscapes_file_name(scene))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "instances.json"
            coco.write(path)
            ap = coco_self_ap(path)
        a, q = np.array(agreements), np.array(ious)
        print(f"[{split}] frames {len(a)}: labelIds agreement min {a.min():.5%} mean {a.mean():.5%}; "
              f"frames with instanceIds == labelIds everywhere {consistent}/{len(a)}")
        print(f"[{split}] instances >= 100 px: {q.size}, IoU min {q.min():.4f} mean {q.mean():.5f}, "
              f"share >= 0.95: {(q >= 0.95).mean():.2%}")
        print(f"[{split}] COCOeval ground truth vs itself: AP segm {ap['segm']:.3f}, bbox {ap['bbox']:.3f} "
              f"({len(coco.annotations)} annotations)")


if __name__ == "__main__":
    main()
