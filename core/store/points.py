"""Point logs: the append-only progress files `points-<pid>-<token>.jsonl` of a cache entry.

One JSON object per line, `{"i": index, "v": {name: value}}`; NaN / inf spelled as strings so the line stays strict
JSON and every float round-trips exactly (json writes finite floats by repr). `PointWriter` is one process's log
file for one entry, fsync'd every `FSYNC_EVERY_POINTS` points or `FSYNC_EVERY_SECONDS`. The entry that owns the logs
(naming, merging, clearing) is `core.store.store.Entry`.
"""

from __future__ import annotations

import json
import math
import os
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import write_error
from core.store.files import fsync_dir

FSYNC_EVERY_POINTS = 64
FSYNC_EVERY_SECONDS = 1.0

_SPECIAL_OUT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _encode_value(v: Any) -> float | str:
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
        raise TypeError(f"point values must be numbers, got {type(v).__name__}: {v!r}")
    x = float(v)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def encode_point(index: Any, values: dict[str, Any]) -> bytes:
    if isinstance(index, bool | np.bool_) or not isinstance(index, int | np.integer):
        raise TypeError(f"point index must be an int, got {type(index).__name__}: {index!r}")
    if not isinstance(values, dict):
        raise TypeError(f"point values must be a dict, got {type(values).__name__}")
    enc = {}
    for name, v in values.items():
        if not isinstance(name, str):
            raise TypeError(f"point value names must be str, got {name!r}")
        enc[name] = _encode_value(v)
    line = json.dumps({"i": int(index), "v": enc}, separators=(",", ":"), allow_nan=False)
    return line.encode("ascii") + b"\n"


def decode_point(line: bytes) -> tuple[int, dict[str, float]] | None:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("i"), int) or not isinstance(obj.get("v"), dict):
        return None
    out: dict[str, float] = {}
    for name, v in obj["v"].items():
        if isinstance(v, str):
            if v not in _SPECIAL_OUT:
                return None
            out[name] = _SPECIAL_OUT[v]
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[name] = float(v)
        else:
            return None
    return obj["i"], out


class PointWriter:
    """This process's append-only log file for one entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pid = os.getpid()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        self.fd = os.open(path, flags, 0o644)
        fsync_dir(path.parent)  # the file's name must survive a crash too
        self.unsynced = 0
        self.last_sync = time.monotonic()
        self._finalizer = weakref.finalize(self, _close_fd, self.fd)

    def write(self, data: bytes, force_sync: bool) -> None:
        """Append `data`; an OS error (a full disk) raises `WriteFailed` / `DiskFull`. The caller then drops this
        writer: a write cut short leaves at most a torn last line, which `load_points` ignores."""
        # One write per batch: O_APPEND puts it at the end in one piece; a crash can only tear the last line.
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
            self.unsynced += data.count(b"\n")
            now = time.monotonic()
            if force_sync or self.unsynced >= FSYNC_EVERY_POINTS or now - self.last_sync >= FSYNC_EVERY_SECONDS:
                os.fsync(self.fd)
                self.unsynced = 0
                self.last_sync = now
        except OSError as exc:
            raise write_error(exc, self.path) from None

    def close(self) -> None:
        if self._finalizer.alive:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            self._finalizer()


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
