import importlib
import os
import sys
from pathlib import Path

# The suite runs on every core (pytest-xdist, `-n auto` in pyproject.toml): one torch thread a worker, set
# before torch loads and inherited by the commands the tests start, so that two workers never share two
# cores among four OpenMP threads (oversubscribed, each runs several times slower). `pytest -n 0` runs it
# in one process with torch's own thread count.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from pipeline.config import SyntheticConfig  # noqa: E402

# Property tests draw the same examples on every run, so a commit that passes CI passes it again;
# `pytest --hypothesis-profile=explore` draws new random examples (the way to hunt for counterexamples).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")

REPO = Path(__file__).resolve().parents[1]
# Real Cityscapes frames shipped beside the project (never inside it); tests using them skip without.
SAMPLE = Path(os.environ.get("CTXAUG_CITYSCAPES_SAMPLE", REPO.parent / "shared" / "data" / "cityscapes-sample"))

# Each worker builds its own copy of the session fixtures (the tiny trained GAN: about 20 s), and the suite's
# time is measured on 2 cores only: a cap, not a measured optimum.
MAX_WORKERS = 4


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: pytest without it (`-p no:xdist`) skips it
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per logical core (xdist's own count is the physical cores, half of them on a
    machine with two hardware threads a core), at most MAX_WORKERS."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def pytest_collection_modifyitems(config, items):
    """The end-to-end runs (marked slow, a minute or two each) first, so that they start at once and the
    short tests fill in around them, instead of one long run finishing alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


# Augment rules loosened for a model trained for seconds: the tests using it are about mechanics and formats.
LOOSE = dict(candidates=16, max_overlap=0.5, min_area=30, scale_band=[0.3, 3.0], min_visible=0.3, device="cpu",
             workers=1)


@pytest.fixture(scope="session")
def trained_tiny(synthetic_root, tmp_path_factory):
    """A tiny insertion GAN trained briefly on ``synthetic_root``, with an augment config around it."""
    import dataclasses

    from test_training import tiny_config

    from pipeline.config import AugmentConfig
    from pipeline.prepare import prepare
    from pipeline.training import train

    tmp = tmp_path_factory.mktemp("trained")
    cfg = tiny_config(synthetic_root, tmp, steps=120)
    prepare(cfg, workers=1, progress=False)
    train(cfg, progress=False)
    aug = AugmentConfig(out=str(tmp / "aug"), model=cfg.train.out, **LOOSE)
    aug.appearance = dataclasses.replace(aug.appearance, crops=str(tmp / "prepared" / "crops" / "train"))
    return dataclasses.replace(cfg, augment=aug)


@pytest.fixture(scope="session")
def augmented_tiny(trained_tiny, tmp_path_factory):
    """``trained_tiny`` with its augment stage run (Cityscapes tree + COCO files under ``augment.out``): the
    config and the run's figures. Shared: tests must not write into its output."""
    import dataclasses

    from pipeline.augment import augment

    aug = dataclasses.replace(trained_tiny.augment, out=str(tmp_path_factory.mktemp("augmented") / "aug"))
    cfg = dataclasses.replace(trained_tiny, augment=aug)
    return cfg, augment(cfg, progress=False)


def benchmark_module(name: str):
    """A script of ``benchmarks/`` imported as a module (the folder is not a package, so it is put on the path
    only for the import)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
