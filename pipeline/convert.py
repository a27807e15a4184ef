"""Convert a dataset between the formats the pipeline speaks (used by ``ctxaug convert``).

The output folder is built under a temporary name and appears only when every frame is written: a
bad input file stops the run with the file named and nothing half-written.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from pipeline.io import atomic_directory
from pipeline.writers.cityscapes_writer import write_scene
from pipeline.writers.coco_writer import CocoWriter, cityscapes_file_name, coco_file


def convert(datasets: dict, out: str | Path, to: str = "both", progress: bool = True) -> dict:
    """Write ``datasets`` (split -> dataset) as a Cityscapes tree and/or Cityscapes-as-COCO json.

    ``to``: ``cityscapes`` (full gtFine + leftImg8bit tree), ``coco`` (leftImg8bit images +
    ``annotations/instancesonly_filtered_gtFine_{split}.json``), or ``both``.
    """
    written = {}
    with atomic_directory(Path(out)) as tmp:
        for split, dataset in datasets.items():
            coco = CocoWriter()
            for i in tqdm(range(len(dataset)), desc=f"convert {split}", unit="frame", disable=not progress):
                scene = write_scene(tmp, dataset[i])
                coco.add(scene, cityscapes_file_name(scene))
            if to in ("coco", "both"):
                coco.write(coco_file(tmp, split))
            written[split] = len(dataset)
        if to == "coco":
            # Keep only what a COCO consumer reads: the images and the annotations.
            import shutil

            for folder in ("gtFine", "camera"):
                shutil.rmtree(tmp / folder, ignore_errors=True)
    return written
