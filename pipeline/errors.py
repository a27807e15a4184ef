"""Errors the pipeline reports to people: one line, naming the file and the problem."""

from __future__ import annotations


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
