import os
from pathlib import Path

import pytest

from pipeline.config import SyntheticConfig

REPO = Path(__file__).resolve().parents[1]
# Real Cityscapes frames shipped beside the project (never inside it); tests using them skip without.
SAMPLE = Path(os.environ.get("CTXAUG_CITYSCAPES_SAMPLE", REPO.parent / "shared" / "data" / "cityscapes-sample"))

SMALL = SyntheticConfig(splits={"train": 10, "val": 4}, width=512, height=256)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small built-in dataset on disk (written by the real runner)."""
    from pipeline.synthesize import generate_dataset

    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate_dataset(SMALL, seed=0, out=root, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def sample_root() -> Path:
    if not (SAMPLE / "leftImg8bit").is_dir():
        pytest.skip(f"real Cityscapes sample not found at {SAMPLE}")
    return SAMPLE


@pytest.fixture(scope="session")
def sample_written(sample_root, tmp_path_factory) -> Path:
    """The real sample frames read by our reader and written back by our writers (both formats)."""
    from pipeline.convert import convert
    from pipeline.datasets.cityscapes import CityscapesDataset

    out = tmp_path_factory.mktemp("sample") / "out"
    convert({"train": CityscapesDataset(sample_root, ["train"])}, out, "both", progress=False)
    return out
