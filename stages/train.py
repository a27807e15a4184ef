"""DVC stage `train`: train the insertion GAN, then score its raw placements on the val frames.

Single process: `python -m stages.train`; several: `torchrun --nproc_per_node N -m stages.train`.
"""

from pipeline.config import load_config
from pipeline.errors import reported_as_one_line
from pipeline.train import train_stage

if __name__ == "__main__":
    with reported_as_one_line():
        train_stage(load_config("params.yaml"))
