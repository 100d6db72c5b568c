"""Content hashing for the cache: the canonical JSON encoding of a plain-value key, its sha256, and the memoized
hash of a file's bytes (a checkpoint in a key is named by its content, not its path).

A key is plain values only (dict with str keys, list, str, int, float, bool, None; tuples and numpy values are
converted), so a key and its JSON round trip hash the same, and every change of value changes the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LandscapeError
from core.paths import cache_root


def to_plain(obj: Any) -> Any:
    """Convert a key-like structure to plain JSON values (dict with str keys, list, str, int, float, bool, None).

    Tuples become lists and numpy scalars / arrays become Python numbers / nested lists, so a key and its JSON round
    trip hash the same.

    Raises:
        TypeError: for anything else (sets, bytes, paths, objects, complex numbers, non-str dict keys).
    """
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, np.generic):
        if isinstance(obj, np.bool_ | np.integer | np.floating | np.str_):
            return to_plain(obj.item())
        raise TypeError(f"unsupported numpy scalar type in a cache key: {type(obj).__name__}")
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"unsupported numpy array dtype in a cache key: {obj.dtype}")
        return to_plain(obj.tolist())
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"cache key dicts need str keys, got {type(k).__name__}: {k!r}")
            out[str.__str__(k)] = to_plain(v)
        return out
    raise TypeError(f"unsupported type in a cache key: {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """The canonical JSON text of `obj`: sorted keys, no spaces, floats by repr (NaN/Infinity allowed)."""
    return json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def content_hash(obj: Any) -> str:
    """The sha256 hex digest of the canonical JSON encoding of a plain-value structure.

    Key order does not matter; tuples hash like lists, numpy values like their Python equivalents; floats are
    encoded by repr, so any change in value (0.1 vs 0.1000001, 0.0 vs -0.0) changes the hash.

    Raises:
        TypeError: for unsupported types (see `to_plain`).
    """
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()


_file_hash_memo: dict[tuple[str, int, int], str] = {}
_file_hash_lock = threading.Lock()


_USE_MARK_EVERY_S = 60.0
_use_marked: dict[str, float] = {}


def _mark_used(resolved: Path, st: os.stat_result) -> None:
    """Set the access time of a file in the cache (a checkpoint being used) to now, keeping its mtime to the
    nanosecond (the hash memo and listings rely on it): `core.store.housekeeping` prunes least recently used first.
    At most once a minute per file; files outside the cache are never touched."""
    now = time.monotonic()
    name = str(resolved)
    if now - _use_marked.get(name, -_USE_MARK_EVERY_S) < _USE_MARK_EVERY_S:
        return
    _use_marked[name] = now
    try:
        if resolved.is_relative_to(cache_root()):
            os.utime(resolved, ns=(time.time_ns(), st.st_mtime_ns))
    except OSError:
        pass


def file_hash(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes, memoized in-process by (resolved path, size, mtime_ns).

    Raises:
        LandscapeError: if the file cannot be read.
    """
    p = Path(path).expanduser()
    try:
        resolved = p.resolve(strict=True)
        st = resolved.stat()
    except OSError as exc:
        raise LandscapeError(f"cannot read {p}: {exc.strerror or exc}") from None
    memo_key = (str(resolved), st.st_size, st.st_mtime_ns)
    _mark_used(resolved, st)
    with _file_hash_lock:
        hit = _file_hash_memo.get(memo_key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    try:
        with open(resolved, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise LandscapeError(f"cannot read {p}: {exc.strerror or exc}") from None
    digest = h.hexdigest()
    with _file_hash_lock:
        _file_hash_memo[memo_key] = digest
    return digest
