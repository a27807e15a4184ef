"""Stage `train_renderer`: the pix2pixHD-style renderer and the part network (learned appearance).

`python -m stages.train_renderer` -> models/renderer/, metrics/renderer.json, dvclive/renderer/.
Killed and re-run, it continues from its last checkpoint.
"""

from pipeline.config import load_config
from pipeline.errors import reported_as_one_line
from pipeline.renderer_training import train_renderer_stage

if __name__ == "__main__":
    with reported_as_one_line():
        train_renderer_stage(load_config("params.yaml"))
