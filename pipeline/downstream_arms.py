"""The DVC stage ``arms@N``: the downstream experiment's four training sets of the N-frame subset.

Apart from ``downstream.py`` because writing the arms runs the augment stage's code (the ``ours`` arm's
frames, the copy-paste arms' insertion): the downstream runs, which only read the arms, depend on none of it.
"""

from __future__ import annotations

from pipeline.config import Config
from pipeline.downstream import arms_root, check_run
from pipeline.evaluation.arms import write_arms


def arms_stage(cfg: Config, n: int, progress: bool = True) -> dict:
    """Write the arms of subset size ``n`` (one of ``evaluate.downstream.sizes``) under ``{out}/arms/n``."""
    check_run(cfg, n)
    summary = write_arms(cfg, n, arms_root(cfg, n), progress)
    print(f"arms {n}: frames {summary['frames']}, inserted {summary['inserted']}")
    return summary
