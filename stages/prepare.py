"""DVC stage `prepare`: training examples and the crop bank from the configured dataset."""

from pipeline.config import load_config
from pipeline.errors import reported_as_one_line
from pipeline.io import atomic_write_json
from pipeline.prepare import prepare

if __name__ == "__main__":
    with reported_as_one_line():
        summary = prepare(load_config("params.yaml"))
        # What was kept and what was dropped, and why (a semantic dataset's groups and fragments too).
        atomic_write_json("metrics/prepare.json", summary, indent=2)
        for split, info in summary["splits"].items():
            print(f"prepare {split}: {info['frames']} frames, instances {info['instances']}, "
                  f"rejected {info['rejected']}")
