"""DVC stage `augment`: insert persons and cars into every frame; write the Cityscapes tree, COCO, manifest.

Single process: `python -m stages.augment`; several: `torchrun --nproc_per_node N -m stages.augment`
(each rank takes every N-th frame; rank 0 merges). Killed and re-run, it continues where it stopped.
"""

from pipeline.augment import augment_stage
from pipeline.config import load_config
from pipeline.errors import reported_as_one_line

if __name__ == "__main__":
    with reported_as_one_line():
        augment_stage(load_config("params.yaml"))
