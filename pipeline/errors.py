"""Errors the pipeline reports to people: one line, naming the file and the problem."""

from __future__ import annotations

import contextlib
import sys


class PipelineError(Exception):
    """An error with a message fit for a user: the CLI prints it on one line and exits non-zero."""


class ConfigError(PipelineError):
    """``params.yaml`` (or a config given to a command) is wrong."""


class DatasetError(PipelineError):
    """A dataset file is missing, unreadable or inconsistent."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # Raised in a worker process (a frame read in a pool) it crosses back pickled: rebuilt from both parts.
        return type(self), (self.path, self.problem)


@contextlib.contextmanager
def reported_as_one_line():
    """Around a stage entry point (what ``dvc repro`` runs): a ``PipelineError`` - bad params or input -
    ends the process with ``error: <file or key>: <problem>`` on stderr and exit status 1, no traceback.
    Any other exception is a bug and keeps its traceback."""
    try:
        yield
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
