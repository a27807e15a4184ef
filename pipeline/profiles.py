"""Dataset profiles: a YAML file of params keys (``profiles/camvid.yaml``) written into ``params.yaml``.

A profile is what a user would otherwise type as a dozen ``dvc exp run -S`` flags: the dataset's folders
and class map, GAN input sizes of its aspect, pixel floors for its objects. ``apply_profile`` merges it
into the params file key by key (comments and order kept, as ``dvc exp run -S`` keeps them), checks the
result loads as a valid config, and only then replaces the file.
"""

from __future__ import annotations

import dataclasses
import io
import typing
from pathlib import Path

from ruamel.yaml import YAML

from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.io import atomic_write_bytes
from pipeline.typed_params import from_dict

PROFILE_DIR = Path("profiles")


def profile_path(name: str) -> Path:
    """``name`` as a path to a YAML file, or the profile of that name under ``profiles/``."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return path
    return PROFILE_DIR / f"{name}.yaml"


def _merge(target, source, prefix: str, changed: list[str], section: type = Config) -> None:
    """Write ``source`` into ``target`` key by key where the key is a params section (a dataclass of
    ``section``); any other value - a list, a class map, ``augment.per_frame`` - is replaced whole, its
    keys and their order included (a class map merged into another would keep the other's stale ids)."""
    hints = typing.get_type_hints(section) if dataclasses.is_dataclass(section) else {}
    for key, value in source.items():
        name = f"{prefix}{key}"
        field_type = hints.get(key)
        if (isinstance(value, dict) and isinstance(target.get(key), dict) and target[key]
                and dataclasses.is_dataclass(field_type)):
            _merge(target[key], value, f"{name}.", changed, field_type)
        elif _plain(target.get(key)) != _plain(value):
            target[key] = value
            changed.append(name)


def _plain(value):
    """A value as nested lists and pairs: mappings compare with their key order."""
    if isinstance(value, dict):
        return [(k, _plain(v)) for k, v in value.items()]
    return [_plain(v) for v in value] if isinstance(value, list) else value


def apply_profile(name: str, params: str | Path = "params.yaml") -> list[str]:
    """Write profile ``name`` into ``params``; the keys it changed (dotted)."""
    path, params = profile_path(name), Path(params)
    yaml = YAML()  # round trip: comments and key order stay
    yaml.width = 120
    if not path.is_file():
        known = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")) if PROFILE_DIR.is_dir() else []
        raise ConfigError(f"{path}: no such profile" + (f" (known: {', '.join(known)})" if known else ""))
    if not params.is_file():
        raise ConfigError(f"{params}: file not found")
    profile, base = yaml.load(path.read_text()), yaml.load(params.read_text())
    if not isinstance(profile, dict):
        raise ConfigError(f"{path}: a profile is a mapping of params sections")
    changed: list[str] = []
    _merge(base, profile, "", changed)
    buffer = io.StringIO()
    yaml.dump(base, buffer)
    from_dict(Config, YAML(typ="safe").load(buffer.getvalue()), f"{params} with {path}")  # refuse before writing
    atomic_write_bytes(params, buffer.getvalue().encode())
    return changed
