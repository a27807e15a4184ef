"""Paste vs gan vs gan+parts, scored the pix2pixHD way, with the trained models of the project.

Trains the downstream experiment's `subset` segmenter (real training frames only, evaluate.downstream
params), then renders `--frames` val frames in each mode and prints the segmenter's mIoU and its accuracy on
the inserted objects' pixels, and the part network's accuracy; `--gallery` writes the frames side by side.

    python benchmarks/render_modes_report.py [--frames 30] [--gallery reports/render_modes]
"""

import argparse
import json
import time

import numpy as np

from pipeline.config import load_config
from pipeline.datasets import open_dataset
from pipeline.evaluation.arms import subset_indices
from pipeline.evaluation.downstream import shrink, train_segmenter
from pipeline.evaluation.gallery import fit_width, write_gallery
from pipeline.evaluation.render_quality import evaluate_render_modes
from pipeline.runtime import resolve_device
from pipeline.trained_gan import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--gallery", default=None, help="folder for a gallery of the modes side by side")
    args = parser.parse_args()
    cfg = load_config("params.yaml")
    device = resolve_device(cfg.evaluate.device)
    dc = cfg.evaluate.downstream
    t0 = time.perf_counter()
    train = open_dataset(cfg.data, "train", cfg.coco)
    frames = [shrink(train[i], tuple(dc.size)) for i in subset_indices(len(train), dc.sizes[0])]
    segmenter, _ = train_segmenter(frames, dc, cfg.seed, device, desc="segmenter (real frames)")
    gan = load_trained(cfg.augment.model, cfg, device)
    result, rows = evaluate_render_modes(cfg, gan, segmenter, device, args.frames)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2))
    if args.gallery:
        write_gallery([(f"{stem} (paste | gan | gan+parts)", [fit_width(np.asarray(im)) for im in images])
                       for stem, images in rows], args.gallery, result)
        print(f"gallery in {args.gallery}/gallery.png")


if __name__ == "__main__":
    main()
