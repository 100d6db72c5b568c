"""Small file helpers that never leave a half-written file: atomic writes (temp file, fsync, rename, fsync of the
folder), JSON read and write, folder creation whose failure is a one-line user error, and a cheap state of the
finished files in a folder.

An OS error while writing (a full disk, permissions) becomes `WriteFailed` / `DiskFull` (`core.errors.write_error`),
and nothing of the new file is left behind.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LandscapeError, write_error
from core.store.keys import to_plain


def fsync_dir(path: Path) -> None:
    """Make a rename / file creation in `path` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old file or the complete new one.

    Writes a temp file `.<name>.<pid>.<token>.tmp` in the same directory, fsyncs it, `os.replace`s it over `path`
    and fsyncs the directory.

    Raises:
        DiskFull: the filesystem is full (ENOSPC / EDQUOT); nothing of the new file is left behind.
        WriteFailed: any other OS error (missing folder, permissions, read-only filesystem).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise write_error(exc, path) from None
    fsync_dir(path.parent)


def ensure_folder(path: str | os.PathLike[str]) -> Path:
    """`mkdir -p` whose failure (a full disk, permissions) is a one-line `WriteFailed` / `DiskFull`."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, path, "create folder") from None
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic | np.ndarray):
        return to_plain(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write `obj` as indented JSON (numpy values and paths converted; NaN/inf written as NaN/Infinity).

    Raises:
        WriteFailed: if the file cannot be written (`DiskFull` when the disk is full).
        TypeError: if `obj` holds values JSON cannot represent.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=True, default=_json_default) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file.

    Raises:
        LandscapeError: if the file is missing, unreadable or not valid JSON.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LandscapeError(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LandscapeError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LandscapeError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None


def files_state(folder: str | os.PathLike[str], pattern: str) -> tuple[int, int]:
    """(count, newest mtime in ns) of the files matching `pattern` in `folder`: changes whenever one is added,
    rewritten or removed, at the cost of one stat per file ((0, 0) for a missing folder). Match a file written last
    (an atomic rename, a store entry's meta.json) so that what is half written does not count."""
    n, newest = 0, 0
    for f in Path(folder).glob(pattern):
        try:
            newest = max(newest, f.stat().st_mtime_ns)
        except OSError:  # removed while listing
            continue
        n += 1
    return n, newest
