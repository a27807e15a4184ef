"""DVC stage `evaluate`: placement, shape, diversity, downstream gain and real frames; the gallery.

`python -m stages.evaluate` -> metrics/evaluate.json, plots/evaluate/, reports/gallery.png|html.
"""

from pipeline.config import load_config
from pipeline.errors import reported_as_one_line
from pipeline.evaluate import evaluate_stage

if __name__ == "__main__":
    with reported_as_one_line():
        evaluate_stage(load_config("params.yaml"))
