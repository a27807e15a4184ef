"""Saved work, and whether it is still valid: one rule for every stage that reuses what it saved.

Three stages keep work between runs: ``train`` and ``train_renderer`` (training checkpoints, resumed after
an interruption or extended to more steps) and ``augment`` (finished frames, kept when a run restarts).
Each stores a *work key* beside what it saved and reuses the work only under an equal key:

- ``params``: the params the work reads, less bookkeeping that does not change it (step counts, where
  outputs and logs go, the device);
- ``inputs``: a SHA-256 per input it was made from, of the content as read (the prepared arrays, the
  frames, the crop bank, the weights it loads);
- ``code``: a SHA-256 of the library source it runs: the modules of ``pipeline`` that its entry module
  imports, directly or not (``code_files``). Left out are the modules whose effect on the work enters the
  key another way or not at all (``KEYED_ELSEWHERE``): ``config`` (its defaults are the params),
  ``errors`` and ``io`` (messages and how files are written).

A difference in any part starts the work over and the stage says which part (``changes``); nothing else
does. A training checkpoint (``save_checkpoint``) holds the weights (safetensors), the optimisers' state
(loaded with ``weights_only=True``: no pickle), the run's dvclive log so far, and ``state.json`` (step and
key), written last: a checkpoint is complete once it names its step.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from pipeline.errors import ConfigError
from pipeline.io import atomic_write_bytes, atomic_write_json, dumps_json

PACKAGE = Path(__file__).parent
KEYED_ELSEWHERE = ("pipeline.config", "pipeline.errors", "pipeline.io")

# ------------------------------------------------------------------------------------------ digests


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_digest(paths: Iterable[Path], root: Path) -> str:
    """One SHA-256 over files: each one's path relative to ``root`` and its content, in path order."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(str(path.relative_to(root)).encode() + b"\0" + file_digest(path).encode())
    return h.hexdigest()


def tree_digest(root: Path) -> str:
    """Every file under ``root`` (``files_digest``); a missing folder digests as empty."""
    return files_digest((p for p in Path(root).rglob("*") if p.is_file()), Path(root))


def array_digest(arrays: Iterable[np.ndarray | torch.Tensor | None]) -> str:
    """One SHA-256 over arrays as read: dtype, shape and bytes of each (None counts as a marker)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- code


def code_files(module: str) -> list[Path]:
    """The source files of ``module`` and every ``pipeline`` module it imports, directly or not - also
    imports inside functions: they run too - less ``KEYED_ELSEWHERE``. Sorted, relative to the package."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen or name in KEYED_ELSEWHERE:
            continue
        path = _module_path(name)
        if path is None:
            continue
        seen.add(name)
        todo += _imported(ast.parse(path.read_text()), name, path.name == "__init__.py")
    return sorted(_module_path(n).relative_to(PACKAGE) for n in seen)


def code_digest(module: str) -> str:
    """SHA-256 of ``code_files(module)``: names and contents."""
    return files_digest((PACKAGE / p for p in code_files(module)), PACKAGE)


def _module_path(name: str) -> Path | None:
    if name != "pipeline" and not name.startswith("pipeline."):
        return None
    base = PACKAGE.joinpath(*name.split(".")[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(tree: ast.AST, name: str, is_package: bool) -> list[str]:
    """Module names an AST imports (``from pipeline.x import y`` yields pipeline.x and pipeline.x.y, in case
    y is a module; relative imports resolved against ``name``)."""
    package = name if is_package else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.append(base)
            out += [f"{base}.{alias.name}" for alias in node.names]
    # A submodule's parents run on import too (package __init__ files).
    return out + [".".join(n.split(".")[:i]) for n in out for i in range(1, n.count(".") + 1)]


# ------------------------------------------------------------------------------------------ the key


def work_key(params: dict, inputs: dict[str, str], entry_module: str) -> dict:
    """The key of work made by ``entry_module``'s code from ``inputs`` (name -> digest) under ``params``."""
    return json.loads(dumps_json({"params": params, "inputs": inputs, "code": code_digest(entry_module)}))


def changes(stored: dict | None, current: dict) -> list[str]:
    """What differs between two keys, as dotted names (``params.train.lr``, ``inputs.prepared``, ``code``)."""
    if not isinstance(stored, dict):
        return ["no key"]
    return _diff(stored, current)


def _diff(a: object, b: object, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def say_starting_over(what: str, stored: dict | None, current: dict) -> None:
    """One line on stderr: which parts of the key differ, or that the saved work has none."""
    if not isinstance(stored, dict):
        print(f"{what}: saved work has no key (an older version made it) - starting over", file=sys.stderr)
        return
    differences = changes(stored, current)
    shown = ", ".join(differences[:4]) + (f" and {len(differences) - 4} more" if len(differences) > 4 else "")
    print(f"{what}: saved work was made from other {shown} - starting over", file=sys.stderr)


# ------------------------------------------------------------------------------------------ weights


def weights_bytes(module: nn.Module, metadata: dict[str, str] | None = None) -> bytes:
    """A module's state dict as safetensors bytes (written atomically by the callers)."""
    return save({k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}, metadata)


def load_weights(module: nn.Module, path: Path, device: torch.device | str = "cpu", retrain: str = "") -> None:
    """Load ``path`` into ``module``; a missing, unreadable or misfitting file is a one-line ``ConfigError``
    naming it (``retrain``: the command that writes it again)."""
    hint = f"; {retrain}" if retrain else ""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: missing{hint}")
    try:
        state = load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable safetensors file ({exc}){hint}") from None
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ConfigError(f"{path}: weights do not fit the network the params build "
                          f"({first[-1].strip() if first else exc}){hint}") from None


def read_weights_config(directory: Path, retrain: str = "") -> dict:
    """``config.json`` beside saved weights (their signature and summary); one-line errors naming it."""
    path = Path(directory) / "config.json"
    hint = f"; {retrain}" if retrain else ""
    try:
        data = json.loads(path.read_text())
        signature = data["signature"]
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing: saved weights need the config.json written with them{hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not the config.json of saved weights ({type(exc).__name__}){hint}") from None
    if not isinstance(signature, dict):
        raise ConfigError(f"{path}: not the config.json of saved weights (signature is not a mapping){hint}")
    return data


# -------------------------------------------------------------------------------------- checkpoints


def save_checkpoint(directory: Path, module: nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                    step: int, key: dict, log_dir: Path | None = None) -> None:
    """Weights, optimiser state and a copy of the dvclive log at ``step``; ``state.json`` last."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / "model.safetensors", weights_bytes(module))
    buf = io.BytesIO()
    torch.save({name: opt.state_dict() for name, opt in optimizers.items()}, buf)
    atomic_write_bytes(directory / "optim.pt", buf.getvalue())
    if log_dir is not None and Path(log_dir).is_dir():
        _replace_tree(Path(log_dir), directory / "live")
    atomic_write_json(directory / "state.json", {"step": step, "key": key}, indent=2)


def load_checkpoint(directory: Path, module: nn.Module, optimizers: dict[str, torch.optim.Optimizer], key: dict,
                    device, what: str, log_dir: Path | None = None) -> int:
    """Restore the checkpoint in ``directory`` when its key equals ``key`` (and its dvclive log into
    ``log_dir``); returns the step to continue from, 0 for a fresh start (said on stderr when a checkpoint
    of other work was there)."""
    state_file = directory / "state.json"
    if not state_file.is_file():
        return 0
    try:
        state = json.loads(state_file.read_text())
        stored = state.get("key")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        stored = None
    if stored != key:
        say_starting_over(what, stored, key)
        return 0
    load_weights(module, directory / "model.safetensors", device, retrain=f"delete {directory} to start over")
    optim = torch.load(directory / "optim.pt", map_location=device, weights_only=True)
    for name, opt in optimizers.items():
        opt.load_state_dict(optim[name])
    if log_dir is not None:
        if (directory / "live").is_dir():
            _replace_tree(directory / "live", Path(log_dir))
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    return int(state["step"])


def _replace_tree(src: Path, dst: Path) -> None:
    """``dst`` becomes a copy of ``src`` (copied beside it first, then swapped in)."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
