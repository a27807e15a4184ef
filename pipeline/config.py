"""Typed configuration, loaded from ``params.yaml``: one place for every default.

Each section is a dataclass; ``load_config`` fills them from the YAML file and refuses unknown keys and
wrongly typed values with a message that names the file and the key (``params.yaml: synthetic.width:
expected int, got 'wide'``). Stages read only their sections, so DVC tracks exactly those params.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.errors import ConfigError


@dataclass
class SyntheticConfig:
    """The built-in street-scene dataset (synthetic-scenes.md)."""

    out: str = "data/synthetic"
    width: int = 512
    height: int = 256
    splits: dict[str, int] = field(default_factory=lambda: {"train": 600, "val": 100, "test": 100})
    cities: list[str] = field(default_factory=lambda: ["simtown", "simville", "simburg"])
    persons_per_frame: list[int] = field(default_factory=lambda: [2, 9])  # inclusive range
    cars_per_frame: list[int] = field(default_factory=lambda: [1, 6])
    crosswalk_prob: float = 0.15  # share of frames where a few persons cross the road
    workers: int = 0  # processes for generation; 0 = one per CPU core

    def validate(self, where: str) -> None:
        if self.width < 64 or self.height < 32:
            raise ConfigError(f"{where}.width/height: at least 64x32 needed, got {self.width}x{self.height}")
        for key, (lo, hi) in {"persons_per_frame": self.persons_per_frame,
                              "cars_per_frame": self.cars_per_frame}.items():
            if not 0 <= lo <= hi:
                raise ConfigError(f"{where}.{key}: expected [min, max] with 0 <= min <= max, got {[lo, hi]}")
        if any(n < 0 for n in self.splits.values()):
            raise ConfigError(f"{where}.splits: frame counts must be >= 0, got {self.splits}")
        if not self.cities:
            raise ConfigError(f"{where}.cities: at least one city name is needed")


@dataclass
class CocoConfig:
    """How a COCO dataset's categories map onto the pipeline's (Cityscapes) classes.

    ``category_map`` maps a COCO category name to a Cityscapes label name. A category not in the map
    whose name is a Cityscapes label name keeps that class (so Cityscapes-as-COCO files read back as
    they were written); any other category becomes ``unmapped`` (a Cityscapes label name, or
    ``unlabeled`` to ignore it).
    """

    category_map: dict[str, str] = field(default_factory=lambda: {"person": "person", "car": "car"})
    unmapped: str = "dynamic"


@dataclass
class DataConfig:
    """The dataset the pipeline learns from and augments."""

    root: str = "data/synthetic"  # a Cityscapes tree, or the image root of a COCO dataset
    format: str = "cityscapes"  # cityscapes | coco
    coco_annotations: dict[str, str] = field(default_factory=dict)  # split -> instances json (coco)

    def validate(self, where: str) -> None:
        if self.format not in ("cityscapes", "coco"):
            raise ConfigError(f"{where}.format: expected 'cityscapes' or 'coco', got {self.format!r}")
        if self.format == "coco" and not self.coco_annotations:
            raise ConfigError(f"{where}.coco_annotations: a COCO dataset needs split -> json paths")


@dataclass
class Config:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    coco: CocoConfig = field(default_factory=CocoConfig)


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read ``params.yaml`` into a ``Config``; missing keys take their defaults."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return from_dict(Config, raw, str(path))


def from_dict(cls: type, raw: object, where: str):
    """Build dataclass ``cls`` from a mapping, checking keys and types; ``where`` prefixes errors."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
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
