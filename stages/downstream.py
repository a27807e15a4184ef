"""DVC stage `downstream@N-SEED`: every arm's segmenter (and Mask R-CNN, enabled), trained with one seed and scored.

`python -m stages.downstream N SEED` -> metrics/downstream/N-SEED.json and
models/downstream/N-SEED-subset.safetensors. N and SEED come from evaluate.downstream.sizes and seeds.
"""

import sys

from pipeline.config import load_config
from pipeline.downstream import downstream_stage
from pipeline.errors import ConfigError, reported_as_one_line

if __name__ == "__main__":
    with reported_as_one_line():
        if len(sys.argv) != 3 or not all(a.lstrip("-").isdigit() for a in sys.argv[1:]):
            raise ConfigError("usage: python -m stages.downstream N SEED (from evaluate.downstream.sizes and seeds)")
        downstream_stage(load_config("params.yaml"), int(sys.argv[1]), int(sys.argv[2]))
