"""DVC stage `downstream_test`: the downstream experiment's test split, written as Cityscapes + COCO.

`python -m stages.downstream_test` -> {evaluate.downstream.out}/test.
"""

from pipeline.config import load_config
from pipeline.downstream import downstream_test_stage
from pipeline.errors import reported_as_one_line

if __name__ == "__main__":
    with reported_as_one_line():
        downstream_test_stage(load_config("params.yaml"))
