"""Dataset readers. ``open_dataset`` picks the reader from the ``data`` params."""

from __future__ import annotations

from pipeline.config import CocoConfig, DataConfig
from pipeline.datasets.cityscapes import CityscapesDataset
from pipeline.datasets.coco import CocoDataset
from pipeline.datasets.semantic import SemanticDataset
from pipeline.errors import ConfigError

# The built-in dataset's look-alikes (posters, mannequins, statues: no label map shows them), beside its tree:
# {"splits": {split: {frame stem: [{kind, shows, box, figure (COCO RLE)}]}}} (datasets/synthetic/decoys.py).
LOOKALIKES_FILE = "lookalikes.json"


def open_dataset(data: DataConfig, split: str, coco: CocoConfig | None = None):
    """The frames of one split of the configured dataset (Cityscapes tree, COCO json + images, or a
    semantic-label dataset's images and label maps)."""
    if data.format == "coco":
        if split not in data.coco_annotations:
            raise ConfigError(f"params data.coco_annotations has no entry for split {split!r}")
        return CocoDataset(data.image_root(split), data.coco_annotations[split], split, coco)
    if data.format == "semantic":
        return SemanticDataset(data.root, split, data.semantic)
    return CityscapesDataset(data.root, [split])
