"""Where the downstream experiment's arms live: their names and each arm's COCO file and image folder.

Apart from ``arms.py`` (which writes the arms, and so imports the augment stage's code) so that the runs
that only read the arms (``runs.py``) depend on none of it: a change to the insertion code re-runs the
augment and arms stages, and the downstream runs only when the arms they read have changed.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.writers.coco_writer import augmented_coco_files

ARMS = ("subset", "ours", "copy_paste", "rules")
SPLIT = "train"


def arm_files(root: str | Path, arm: str) -> tuple[Path, Path]:
    """An arm's COCO instances file and the image folder its ``file_name``s are relative to."""
    return augmented_coco_files(Path(root) / arm, SPLIT)
