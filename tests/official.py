"""Judges from the official tools: cityscapesscripts renders our polygons, pycocotools scores our COCO."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np


def render_polygons(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """labelIds and instanceIds as ``json2labelImg`` / ``json2instanceImg`` paint them from the JSON."""
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
    from cityscapesscripts.preparation.json2labelImg import createLabelImage

    annotation = Annotation()
    annotation.fromJsonFile(str(path))
    # createInstanceImage returns a 32-bit image; saving it fails under Pillow >= 13, so we compare
    # the arrays the tools produce, not the files they would save.
    labels = np.array(createLabelImage(annotation, "ids"))
    instances = np.array(createInstanceImage(annotation, "ids")).astype(np.int32)
    return labels, instances


def coco_self_ap(annotation_file: Path) -> dict[str, float]:
    """COCOeval AP of the ground truth scored against itself (each annotation a result, score 1)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotation_file))
        data = json.loads(Path(annotation_file).read_text())
        results = [
            {"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
             "bbox": a["bbox"], "score": 1.0}
            for a in data["annotations"] if not a["iscrowd"]
        ]
        assert results, "no annotations to score"
        out = {}
        for iou_type in ("segm", "bbox"):
            dt = gt.loadRes([dict(r) for r in results])
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[iou_type] = float(ev.stats[0])
    return out
