"""The suite's own set-up: parallel workers that do not oversubscribe the cores."""

import os

import pytest


def test_each_parallel_worker_runs_one_torch_thread():
    """Under pytest-xdist (pyproject's `-n auto`) every worker, and every command it starts, runs one torch
    thread: two workers of two OpenMP threads each on 2 cores run several times slower, with no error to say so."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("one process (pytest -n 0): torch keeps its own thread count")
    import torch

    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert torch.get_num_threads() == 1
