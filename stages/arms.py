"""DVC stage `arms@N`: the downstream experiment's four training sets for an N-frame subset.

`python -m stages.arms N` -> {evaluate.downstream.out}/arms/N/{subset,ours,copy_paste,rules} (Cityscapes +
COCO each) and arms.json. N is one of evaluate.downstream.sizes.
"""

import sys

from pipeline.config import load_config
from pipeline.downstream_arms import arms_stage
from pipeline.errors import ConfigError, reported_as_one_line

if __name__ == "__main__":
    with reported_as_one_line():
        if len(sys.argv) != 2 or not sys.argv[1].isdigit():
            raise ConfigError("usage: python -m stages.arms N (N: a subset size of evaluate.downstream.sizes)")
        arms_stage(load_config("params.yaml"), int(sys.argv[1]))
