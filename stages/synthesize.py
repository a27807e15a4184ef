"""DVC stage `synthesize`: generate the built-in street-scene dataset into `synthetic.out`."""

from pipeline.config import load_config
from pipeline.errors import reported_as_one_line
from pipeline.synthesize import generate_dataset

if __name__ == "__main__":
    with reported_as_one_line():
        cfg = load_config("params.yaml")
        summary = generate_dataset(cfg.synthetic, cfg.seed)
        print(f"synthesize: {summary['frames']} frames, instances {summary['instances']}")
