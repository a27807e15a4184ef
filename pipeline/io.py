"""File input/output with the two guarantees the pipeline relies on.

Reading: a PNG/JPEG that is missing, unreadable or truncated raises ``DatasetError`` naming the file.
Writing: every file goes to a temporary name in the same folder and is renamed into place, so a killed
run never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import DatasetError

# Image decoding uses one thread per process; the stages parallelise over frames instead.
cv2.setNumThreads(1)

_PNG_END = b"IEND\xaeB`\x82"


def read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetError(path, "file not found") from None
    except OSError as exc:
        raise DatasetError(path, f"cannot read file ({exc.strerror})") from None


def decode_image(data: bytes, path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decode image bytes; a truncated or corrupt file raises ``DatasetError``."""
    if not data:
        raise DatasetError(path, "empty file")
    # libpng decodes a PNG cut short in its last chunk without complaint; the end marker tells.
    if data[:8] == b"\x89PNG\r\n\x1a\n" and not data.rstrip(b"\0").endswith(_PNG_END):
        raise DatasetError(path, "truncated PNG (no IEND chunk)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise DatasetError(path, "not a readable image (corrupt or unsupported format)")
    return image


def read_rgb(path: Path) -> np.ndarray:
    """An 8-bit RGB image (grey and alpha are converted)."""
    image = decode_image(read_bytes(path), path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint8:
        raise DatasetError(path, f"expected an 8-bit image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_single_channel(path: Path, dtype: type) -> np.ndarray:
    """A one-channel PNG of the given integer type (uint8 labelIds, uint16 instanceIds)."""
    image = decode_image(read_bytes(path), path, cv2.IMREAD_UNCHANGED)
    if image.ndim != 2:
        raise DatasetError(path, f"expected a one-channel image, got {image.shape[2]} channels")
    if image.dtype == np.uint8 and dtype == np.uint16:
        return image.astype(np.uint16)
    if image.dtype != dtype:
        raise DatasetError(path, f"expected {np.dtype(dtype).name} pixels, got {image.dtype}")
    return image


def encode_png(image: np.ndarray, rgb: bool = False) -> bytes:
    if rgb and image.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(image, code)
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dumps_json(data: object, indent: int | None = None) -> bytes:
    """Deterministic JSON: same data, same bytes."""
    return json.dumps(data, indent=indent, sort_keys=False, ensure_ascii=False).encode() + b"\n"


def atomic_write_json(path: Path, data: object, indent: int | None = None) -> None:
    atomic_write_bytes(path, dumps_json(data, indent))


def read_json(path: Path) -> object:
    try:
        return json.loads(read_bytes(path))
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Build a directory under a temporary name; it replaces ``final`` only if the block succeeds.

    On any error the temporary directory is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
