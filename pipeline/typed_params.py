"""Typed params: dataclass fields whose type carries its rule, and the loader that enforces them.

A field's type says what values it takes: ``Positive`` (an int >= 1), ``Share`` (a float in [0, 1]),
``Device`` (one of auto, cpu, cuda), ``Size`` (two ints >= 1), ...: ``typing.Annotated`` with a ``Range``,
``Length`` or ``OneOf``. ``from_dict`` builds a dataclass from a mapping, refusing unknown keys, wrongly
typed values and values outside their rules with a message that names the file and the key
(``params.yaml: train.steps: expected >= 1, got -5``), then runs the dataclass's own ``validate`` (what
ties several fields together). The sections themselves are in ``config.py``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """A number (or every number of a list or mapping) in [lo, hi]; ``above``: strictly greater."""

    lo: float | None = None
    hi: float | None = None
    above: float | None = None

    def check(self, value, where: str) -> None:
        for v in value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]:
            if self.above is not None and not v > self.above:
                raise ConfigError(f"{where}: expected > {self.above}, got {v}")
            if self.lo is not None and self.hi is not None and not self.lo <= v <= self.hi:
                raise ConfigError(f"{where}: expected a value in [{self.lo}, {self.hi}], got {v}")
            if self.lo is not None and not v >= self.lo:
                raise ConfigError(f"{where}: expected >= {self.lo}, got {v}")
            if self.hi is not None and not v <= self.hi:
                raise ConfigError(f"{where}: expected <= {self.hi}, got {v}")


@dataclass(frozen=True)
class Length:
    """A list of exactly ``n`` items."""

    n: int

    def check(self, value, where: str) -> None:
        if len(value) != self.n:
            raise ConfigError(f"{where}: expected {self.n} values, got {len(value)} ({value!r})")


@dataclass(frozen=True)
class OneOf:
    """One of ``options``."""

    options: tuple

    def check(self, value, where: str) -> None:
        if value not in self.options:
            raise ConfigError(f"{where}: expected one of {', '.join(map(str, self.options))}, got {value!r}")


Count = typing.Annotated[int, Range(lo=0)]  # >= 0


Positive = typing.Annotated[int, Range(lo=1)]  # >= 1


Share = typing.Annotated[float, Range(0, 1)]  # in [0, 1]


Weight = typing.Annotated[float, Range(lo=0)]  # >= 0


Rate = typing.Annotated[float, Range(above=0)]  # > 0 (learning rates)


Size = typing.Annotated[list[int], Length(2), Range(lo=1)]  # [W, H]


Widths = typing.Annotated[list[int], Range(lo=1)]


Betas = typing.Annotated[list[float], Length(2), Range(0, 1)]


Device = typing.Annotated[str, OneOf(("auto", "cpu", "cuda"))]


def from_dict(cls: type, raw: object, where: str):
    """Build dataclass ``cls`` from a mapping, checking keys and types; ``where`` prefixes errors."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(names))})")
    sep = ": " if where.endswith((".yaml", ".yml")) else "."
    values = {k: _convert(hints[k], v, f"{where}{sep}{k}") for k, v in raw.items()}
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate(where)
    return obj


def _convert(tp, value, where: str):
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:  # a type with its range, length or choices
        inner, *rules = typing.get_args(tp)
        value = _convert(inner, value, where)
        for rule in rules:
            rule.check(value, where)
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value
