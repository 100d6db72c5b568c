"""Content-addressed result cache.

Everything the CLI or the dashboard computes (landscapes, flatness numbers, data derived from checkpoints) is kept
under `cache_root()` by a hash of every input that changes the numbers. The store is generic: it knows nothing about
models, only plain-value keys, numpy arrays and small JSON metadata.

Layout of one entry, `<root>/<kind>/<key_hash[:20]>/`:
- `key.json`: the canonical key, written when the directory is first created (lets `Store.get` reopen it).
- `results.npz` + `meta.json`: the finished result. The npz is written first and `meta.json` (holding the npz's
  sha256) last, each atomically, so `meta.json` is the commit marker: a result without it, or whose checksum or key
  does not match, is never served.
- `points-<pid>-<token>.jsonl`: append-only logs of finished points (one per writer process), for resuming.
- `.lock`: the advisory lock file (`fcntl.flock`).
- `.corrupt/<stamp>/`: results that failed verification, moved aside for inspection.

Caller pattern::

    entry = Store().entry("landscape", key)
    with entry.lock():
        result = entry.result()
        if result is None:
            done = entry.load_points()          # resume
            ...compute the rest, entry.append_points([(i, {"loss": x}), ...]) as points finish...
            entry.save_result(arrays, meta)
            entry.clear_points()
            result = entry.result()

No pickle anywhere: arrays go through `np.savez` / `np.load(allow_pickle=False)`, everything else is JSON.
Content hashing lives in `core.store.keys`, atomic writes and JSON files in `core.store.files`, the point-log
format and writer in `core.store.points`, the entry lock in `core.store.locks`.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LandscapeError, write_error
from core.paths import cache_root
from core.store.files import atomic_write_bytes, atomic_write_json, fsync_dir, read_json
from core.store.journal import JOURNAL_FILE, count_steps
from core.store.keys import content_hash, to_plain
from core.store.locks import EntryLock, held_in_this_process
from core.store.points import PointWriter, decode_point, encode_point

HASH_DIR_LEN = 20
FORMAT_VERSION = 1

_KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_HASH_RE = re.compile(r"^[0-9a-f]{6,64}$")
_DIR_RE = re.compile(rf"^[0-9a-f]{{{HASH_DIR_LEN}}}$")
_ARRAY_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_TMP_RE = re.compile(r"^\..+\.(\d+)\.[0-9a-f]+\.tmp$")
_POINTS_GLOB = "points-*.jsonl"
_KEY_FILE = "key.json"
_META_FILE = "meta.json"
_NPZ_FILE = "results.npz"
_LOCK_FILE = ".lock"
_CORRUPT_DIR = ".corrupt"


class CacheWarning(RuntimeWarning):
    """A cached file was found damaged and was set aside (it will be recomputed, never served)."""


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------------------------
# Results and entries


@dataclass(frozen=True)
class Result:
    """A finished, verified result.

    Attributes:
        arrays: the saved arrays by name.
        meta: the caller's metadata as saved (plain JSON values).
        created: when it was saved (seconds since the epoch).
        code_version: the code version string given at save time, or None.
        key_hash: the full content hash of the entry key.
    """

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    created: float
    code_version: str | None
    key_hash: str


@dataclass(frozen=True)
class EntryInfo:
    """One cache entry as listed by `Store.list` (cheap: the npz checksum is not verified here).

    Attributes:
        kind: the entry kind ("landscape", "flatness", ...).
        key_hash: the full content hash of the key.
        path: the entry directory.
        key: the canonical key.
        meta: the stored meta.json (store fields plus the caller's `meta`), or None if unfinished.
        size_bytes: bytes used by everything in the entry directory.
        created: when the result was saved, or when the entry was started if unfinished.
        finished: whether a result is present (meta.json readable, npz present with the recorded size).
        n_points_logged: distinct points in the progress logs.
        n_steps_logged: finished steps in the entry's step journal (`core.store.journal`; flatness stages).
    """

    kind: str
    key_hash: str
    path: Path
    key: Any
    meta: dict[str, Any] | None
    size_bytes: int
    created: float
    finished: bool
    n_points_logged: int
    n_steps_logged: int = 0


def _journal_steps(folder: Path) -> int:

    if not (folder / JOURNAL_FILE).exists():
        return 0
    try:
        return count_steps(folder / JOURNAL_FILE)
    except LandscapeError:
        return 0


class _Corrupt(Exception):
    """Internal: a stored result failed verification."""


class Entry:
    """One cache slot: a kind plus a plain-value key. Get it from `Store.entry` or `Store.get`.

    Attributes:
        path: the entry directory (created on first lock / save / append, not by merely looking).
        kind: the entry kind.
        key: the canonical key (tuples as lists, numpy values as Python values).
        key_hash: the full sha256 content hash of the key.
    """

    def __init__(self, path: Path, kind: str, key: Any, key_hash: str) -> None:
        self.path = path
        self.kind = kind
        self.key = key
        self.key_hash = key_hash
        self._writer: PointWriter | None = None
        self._writer_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"Entry(kind={self.kind!r}, key_hash={self.key_hash[:HASH_DIR_LEN]!r}, path={str(self.path)!r})"

    # -- directory ------------------------------------------------------------------------------------------

    @property
    def _meta_path(self) -> Path:
        return self.path / _META_FILE

    @property
    def _npz_path(self) -> Path:
        return self.path / _NPZ_FILE

    def _ensure_dir(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, self.path, "create cache folder") from None
        if not (self.path / _KEY_FILE).exists():
            atomic_write_json(self.path / _KEY_FILE, {"kind": self.kind, "key": self.key, "key_hash": self.key_hash})

    # -- locking --------------------------------------------------------------------------------------------

    def _acquire(self, blocking: bool, timeout: float | None) -> EntryLock | None:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        lock_path = self.path / _LOCK_FILE
        while True:
            self._ensure_dir()
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except FileNotFoundError:
                continue  # the entry was deleted between mkdir and open: recreate it
            except OSError as exc:
                raise LandscapeError(f"cannot open lock file {lock_path}: {exc.strerror or exc}") from None
            try:
                got = self._flock(fd, blocking, deadline)
                if got:
                    # A deleter may have removed the directory while we waited: then our lock guards nothing.
                    try:
                        same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
                    except FileNotFoundError:
                        same = False
                    if same:
                        return EntryLock(fd, self.path)
                    fcntl.flock(fd, fcntl.LOCK_UN)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            if not got:
                if not blocking:
                    return None
                raise LandscapeError(f"timed out after {timeout:g} s waiting for the lock on {self.path}")

    @staticmethod
    def _flock(fd: int, blocking: bool, deadline: float | None) -> bool:
        if blocking and deadline is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise
            if not blocking or deadline is None or time.monotonic() >= deadline:
                return False
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.1)

    def lock(self, timeout: float | None = None) -> EntryLock:
        """Take the entry's exclusive lock, waiting for it; use as `with entry.lock(): ...`.

        Args:
            timeout: seconds to wait at most; None waits forever.

        Raises:
            LandscapeError: on timeout.
        """
        lock = self._acquire(blocking=True, timeout=timeout)
        assert lock is not None
        return lock

    def try_lock(self) -> EntryLock | None:
        """Take the lock if it is free right now, else return None (never waits)."""
        return self._acquire(blocking=False, timeout=None)

    def _held_here(self) -> bool:
        return held_in_this_process(self.path)

    # -- results --------------------------------------------------------------------------------------------

    def _load(self) -> tuple[Result, bytes] | None:
        """Read and verify the result; None if absent; raises _Corrupt if present but damaged."""
        try:
            meta_bytes = self._meta_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _Corrupt(f"cannot read meta.json: {exc}") from None
        try:
            meta = json.loads(meta_bytes)
        except (ValueError, UnicodeDecodeError):
            raise _Corrupt("meta.json is not valid JSON") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise _Corrupt("meta.json has an unknown format")
        try:
            stored_key_hash = content_hash(meta.get("key"))
        except TypeError:
            raise _Corrupt("meta.json holds an invalid key") from None
        if meta.get("key_hash") != self.key_hash or stored_key_hash != self.key_hash:
            raise _Corrupt("the key in meta.json does not match this entry")
        try:
            npz_bytes = self._npz_path.read_bytes()
        except FileNotFoundError:
            raise _Corrupt("results.npz is missing") from None
        except OSError as exc:
            raise _Corrupt(f"cannot read results.npz: {exc}") from None
        if hashlib.sha256(npz_bytes).hexdigest() != meta.get("npz_sha256"):
            raise _Corrupt("results.npz does not match its checksum")
        try:
            with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
        except Exception as exc:  # any decoding failure means damage; never pass it on
            raise _Corrupt(f"results.npz cannot be read: {exc}") from None
        if sorted(arrays) != sorted(meta.get("arrays", {})):
            raise _Corrupt("results.npz holds other arrays than meta.json lists")
        user_meta = meta.get("meta") if isinstance(meta.get("meta"), dict) else {}
        result = Result(
            arrays=arrays,
            meta=user_meta,
            created=float(meta.get("created", 0.0)),
            code_version=meta.get("code_version"),
            key_hash=self.key_hash,
        )
        return result, npz_bytes

    def _verified(self) -> tuple[Result, bytes] | None:
        try:
            return self._load()
        except _Corrupt as first:
            reason = str(first)
        # A writer replacing the result may have swapped files between our two reads: look again before judging.
        try:
            return self._load()
        except _Corrupt as again:
            reason = str(again)
        return self._set_aside(reason)

    def _set_aside(self, reason: str) -> tuple[Result, bytes] | None:
        """Move a damaged result out of the way (under the lock, so a concurrent writer is never disturbed).

        Returns the result if, re-read under the lock, it turned out fine after all (a writer just finished).
        """
        held_here = self._held_here()
        lock = None if held_here else self.try_lock()
        if lock is None and not held_here:
            # Someone else holds the entry (probably rewriting it): report missing, leave the files to them.
            warnings.warn(f"cache entry {self.path} is damaged ({reason}); ignoring it", CacheWarning, stacklevel=4)
            return None
        try:
            try:  # re-check under the lock: a writer may have finished in the meantime
                loaded = self._load()
                if loaded is not None:
                    return loaded
            except _Corrupt:
                pass
            dest = self.path / _CORRUPT_DIR / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
            try:
                dest.mkdir(parents=True, exist_ok=True)
            except OSError:  # a full disk: unlink the commit marker instead, so the result is never served
                try:
                    self._meta_path.unlink()
                except OSError:
                    pass
                warnings.warn(f"cache entry {self.path} is damaged ({reason}); ignoring it", CacheWarning, stacklevel=4)
                return None
            for name in (_META_FILE, _NPZ_FILE):  # meta first: it is the commit marker
                try:
                    os.replace(self.path / name, dest / name)
                except FileNotFoundError:
                    pass
            fsync_dir(self.path)
            warnings.warn(
                f"cache entry {self.path} was damaged ({reason}); moved it to {dest} and will recompute",
                CacheWarning,
                stacklevel=4,
            )
            return None
        finally:
            if lock is not None:
                lock.release()

    def result(self) -> Result | None:
        """The finished, verified result, or None if there is none.

        A damaged result (bad checksum, truncated, wrong key, unreadable) is never served: it is moved to
        `.corrupt/` with a `CacheWarning` and None is returned, so the caller recomputes.
        """
        loaded = self._verified()
        if loaded is None:
            return None
        self.touch()
        return loaded[0]

    def touch(self) -> None:
        """Mark the entry as used now (its folder's mtime: one metadata write, no new file, works on a full disk).
        `core.store.housekeeping` prunes the least recently used entries first."""
        try:
            os.utime(self.path)
        except OSError:
            pass

    def has_result(self) -> bool:
        """Whether a verified result is present."""
        return self.result() is not None

    def save_result(
        self, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, code_version: str | None = None
    ) -> None:
        """Atomically store the finished result (replacing any previous one). Hold the entry's lock when calling.

        Args:
            arrays: named arrays (numeric / bool / str dtypes; names of letters, digits, `_`, `.`, `-`).
            meta: the caller's small metadata (plain JSON values).
            code_version: a string identifying the code that computed it, recorded in meta.json.

        Raises:
            TypeError: for object arrays or unsupported meta values.
            ValueError: for bad array names.
            LandscapeError: if the files cannot be written.
        """
        if not isinstance(arrays, dict):
            raise TypeError(f"arrays must be a dict of name -> array, got {type(arrays).__name__}")
        clean: dict[str, np.ndarray] = {}
        for name, arr in arrays.items():
            if not isinstance(name, str) or not _ARRAY_NAME_RE.match(name):
                raise ValueError(f"bad array name {name!r}: use letters, digits, '_', '.', '-'")
            a = np.asarray(arr)
            if a.dtype.hasobject:
                raise TypeError(f"array {name!r} has object dtype; only plain numeric/str arrays can be stored")
            clean[name] = a
        user_meta = to_plain(meta or {})
        buf = io.BytesIO()
        np.savez(buf, **clean)
        npz_bytes = buf.getvalue()
        self._ensure_dir()
        self._remove_stale_temp_files()
        # Remove the old commit marker first so no reader pairs an old meta.json with the new npz.
        try:
            self._meta_path.unlink()
        except FileNotFoundError:
            pass
        atomic_write_bytes(self._npz_path, npz_bytes)
        now = time.time()
        record = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "key": self.key,
            "key_hash": self.key_hash,
            "created": now,
            "created_utc": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            "code_version": code_version,
            "npz_sha256": hashlib.sha256(npz_bytes).hexdigest(),
            "npz_size": len(npz_bytes),
            "arrays": {n: {"dtype": a.dtype.str, "shape": list(a.shape)} for n, a in clean.items()},
            "meta": user_meta,
        }
        atomic_write_json(self._meta_path, record)

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files left by writers that died mid-write (their pid is gone)."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return
        for name in names:
            m = _TMP_RE.match(name)
            if m and not _pid_alive(int(m.group(1))):
                try:
                    os.unlink(self.path / name)
                except OSError:
                    pass

    # -- partial progress -----------------------------------------------------------------------------------

    def append_points(self, items: Iterable[tuple[int, dict[str, float]]], sync: bool = False) -> None:
        """Append finished points to this process's progress log (one JSON line each, one `os.write` per call).

        The log is fsync'd every `FSYNC_EVERY_POINTS` points or `FSYNC_EVERY_SECONDS` (checked on each call), and
        whenever `sync` is true. A killed process loses nothing already appended; a machine crash loses at most
        the unsynced tail. Floats round-trip exactly, NaN / inf / -0.0 included.

        Args:
            items: (index, {name: value}) pairs.
            sync: fsync now.

        Raises:
            TypeError: for non-int indices or non-number values.
        """
        data = b"".join(encode_point(i, v) for i, v in items)
        if not data and not sync:
            return
        with self._writer_guard:
            w = self._writer
            if w is None or w.pid != os.getpid() or not w.path.exists():
                # After a fork, or after clear_points / delete elsewhere: start a fresh file of our own.
                self._ensure_dir()
                name = f"points-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
                try:
                    w = self._writer = PointWriter(self.path / name)
                except OSError as exc:
                    raise write_error(exc, self.path / name) from None
            try:
                w.write(data, sync)
            except LandscapeError:
                # Never append after a torn line: the next call (after space is freed) starts a fresh log.
                self._writer = None
                w.close()
                raise

    def flush_points(self) -> None:
        """fsync and close this process's progress log (later appends open a new one)."""
        with self._writer_guard:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def _point_files(self) -> list[Path]:
        try:
            files = list(self.path.glob(_POINTS_GLOB))
        except OSError:
            return []
        stamped = []
        for f in files:
            try:
                stamped.append((f.stat().st_mtime_ns, f.name, f))
            except FileNotFoundError:
                pass
        return [f for _, _, f in sorted(stamped)]

    def load_points(self) -> dict[int, dict[str, float]]:
        """All logged points of every writer, merged by index (later logs win), sorted by index.

        A torn last line (a write cut short by a crash) is ignored, as is any line that does not parse.
        """
        merged: dict[int, dict[str, float]] = {}
        for f in self._point_files():
            try:
                data = f.read_bytes()
            except FileNotFoundError:
                continue
            lines = data.split(b"\n")
            # The segment after the last newline is either empty or a torn write: never trust it.
            for line in lines[:-1]:
                point = decode_point(line)
                if point is not None:
                    merged[point[0]] = point[1]
        return dict(sorted(merged.items()))

    def clear_points(self) -> None:
        """Delete all progress logs (call after the final result is saved)."""
        self.flush_points()
        for f in self._point_files():
            try:
                f.unlink()
            except FileNotFoundError:
                pass
        if self.path.exists():
            fsync_dir(self.path)

    # -- export ---------------------------------------------------------------------------------------------

    def _require(self) -> tuple[Result, bytes]:
        loaded = self._verified()
        if loaded is None:
            raise LandscapeError(f"no finished {self.kind} result for {self.key_hash[:HASH_DIR_LEN]}")
        return loaded

    def export_npz(self, path: str | os.PathLike[str]) -> Path:
        """Write a copy of the verified result's npz (arrays only) to `path`.

        Raises:
            LandscapeError: if there is no finished result or the file cannot be written.
        """
        _, npz_bytes = self._require()
        out = Path(path).expanduser()
        atomic_write_bytes(out, npz_bytes)
        return out

    def export_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the result's arrays to a long-format CSV at `path`.

        Columns `array,i,j,value`, one row per array element: `i` is the index for 1-D arrays, `i,j` the row and
        column for 2-D arrays, both empty for scalars (0-D). Arrays with more than 2 dimensions are left out (use
        the npz export). Floats are written by repr (exact; `nan`, `inf`, `-inf`), booleans as 0/1.

        Raises:
            LandscapeError: if there is no finished result or the file cannot be written.
        """
        result, _ = self._require()
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["array", "i", "j", "value"])
        for name in sorted(result.arrays):
            a = result.arrays[name]
            if a.ndim > 2:
                continue
            for idx, v in _iter_elements(a):
                w.writerow([name, *idx, _csv_value(v)])
        out = Path(path).expanduser()
        atomic_write_bytes(out, buf.getvalue().encode("utf-8"))
        return out


def _iter_elements(a: np.ndarray) -> Iterator[tuple[tuple[Any, Any], Any]]:
    if a.ndim == 0:
        yield ("", ""), a.item()
    elif a.ndim == 1:
        for i, v in enumerate(a.tolist()):
            yield (i, ""), v
    else:
        for i, row in enumerate(a.tolist()):
            for j, v in enumerate(row):
                yield (i, j), v


def _csv_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float):
        return repr(v)
    return str(v)


# ---------------------------------------------------------------------------------------------------------------
# The store


class Store:
    """The result cache rooted at `root` (default `core.paths.cache_root()`, i.e. env `LANDSCAPE_CACHE_DIR`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            self.root = cache_root()
        else:
            self.root = Path(root).expanduser().resolve()
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise write_error(exc, self.root, "create cache folder") from None

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @staticmethod
    def _check_kind(kind: str) -> str:
        if not isinstance(kind, str) or not _KIND_RE.match(kind):
            raise LandscapeError(f"bad cache kind {kind!r}: use a short lowercase word like 'landscape'")
        return kind

    def _entry_dir(self, kind: str, key_hash: str) -> Path:
        path = (self.root / kind / key_hash[:HASH_DIR_LEN]).resolve()
        if path.parent.parent != self.root:
            raise LandscapeError(f"refusing a cache path outside {self.root}: {path}")
        return path

    def entry(self, kind: str, key: dict[str, Any]) -> Entry:
        """The entry for `key` (every input that changes the numbers) under `kind`. Creates nothing on disk yet.

        Raises:
            LandscapeError: for a bad kind.
            TypeError: if the key is not a dict of plain values.
        """
        self._check_kind(kind)
        if not isinstance(key, dict):
            raise TypeError(f"a cache key must be a dict, got {type(key).__name__}")
        plain = to_plain(key)
        key_hash = content_hash(plain)
        return Entry(self._entry_dir(kind, key_hash), kind, plain, key_hash)

    def _find_dir(self, kind: str, key_hash: str) -> Path:
        """The entry folder for a full hash, its first 20 hex digits, or a shorter unique prefix (6+ digits)."""
        self._check_kind(kind)
        if not isinstance(key_hash, str) or not _HASH_RE.match(key_hash):
            raise LandscapeError(f"bad entry id {key_hash!r}: expected 6 to 64 lowercase hex digits")
        if len(key_hash) >= HASH_DIR_LEN:
            path = self._entry_dir(kind, key_hash)
        else:
            kdir = self.root / kind
            names = [d.name for d in kdir.iterdir() if _DIR_RE.match(d.name)] if kdir.is_dir() else []
            matches = [n for n in names if n.startswith(key_hash)]
            if len(matches) > 1:
                raise LandscapeError(f"entry id {key_hash} is ambiguous: {len(matches)} {kind} entries start with it")
            path = self._entry_dir(kind, matches[0] if matches else key_hash)
        if not path.is_dir():
            raise LandscapeError(f"no cached {kind} entry {key_hash[:HASH_DIR_LEN]}")
        return path

    def get(self, kind: str, key_hash: str) -> Entry:
        """Reopen a listed entry by kind and key hash (full, its first 20 hex digits, or a unique 6+ digit prefix).

        Raises:
            LandscapeError: if there is no such entry, the id is ambiguous, or its key file is damaged.
        """
        path = self._find_dir(kind, key_hash)
        entry = self._open_dir(kind, path)
        if entry is None or not entry.key_hash.startswith(key_hash):
            raise LandscapeError(f"cached {kind} entry {key_hash[:HASH_DIR_LEN]} has a damaged key file")
        return entry

    def _open_dir(self, kind: str, path: Path) -> Entry | None:
        for name in (_KEY_FILE, _META_FILE):
            try:
                rec = read_json(path / name)
                key = to_plain(rec["key"])
            except (LandscapeError, KeyError, TypeError):
                continue
            key_hash = content_hash(key)
            if key_hash[:HASH_DIR_LEN] == path.name:
                return Entry(path, kind, key, key_hash)
        return None

    def list(self, kind: str | None = None) -> list[EntryInfo]:
        """All entries (of one kind, if given), newest first.

        Raises:
            LandscapeError: for a bad kind.
        """
        kinds = (
            [self._check_kind(kind)]
            if kind is not None
            else sorted(p.name for p in self.root.iterdir() if p.is_dir() and _KIND_RE.match(p.name))
        )
        infos = []
        for k in kinds:
            kdir = self.root / k
            if not kdir.is_dir():
                continue
            for d in sorted(kdir.iterdir()):
                if not d.is_dir() or not _DIR_RE.match(d.name):
                    continue
                entry = self._open_dir(k, d)
                if entry is not None:
                    infos.append(self._info(entry))
        infos.sort(key=lambda e: e.created, reverse=True)
        return infos

    @staticmethod
    def _info(entry: Entry) -> EntryInfo:
        meta = None
        try:
            rec = json.loads((entry.path / _META_FILE).read_bytes())
            if isinstance(rec, dict) and (entry.path / _NPZ_FILE).stat().st_size == rec.get("npz_size"):
                meta = rec
        except (OSError, ValueError):
            pass
        size = 0
        for dirpath, _, files in os.walk(entry.path):
            for f in files:
                try:
                    size += os.lstat(os.path.join(dirpath, f)).st_size
                except OSError:
                    pass
        if meta is not None:
            created = float(meta.get("created", 0.0))
        else:
            try:
                created = (entry.path / _KEY_FILE).stat().st_mtime
            except OSError:
                created = 0.0
        return EntryInfo(
            kind=entry.kind,
            key_hash=entry.key_hash,
            path=entry.path,
            key=entry.key,
            meta=meta,
            size_bytes=size,
            created=created,
            finished=meta is not None,
            n_points_logged=len(entry.load_points()),
            n_steps_logged=_journal_steps(entry.path),
        )

    def delete(self, kind: str, key_hash: str) -> None:
        """Delete one entry and everything in it (id as for `get`).

        Raises:
            LandscapeError: for a bad or ambiguous id, a path outside the root, a missing entry, or one in use.
        """
        path = self._find_dir(kind, key_hash)
        entry = self._open_dir(kind, path) or Entry(path, kind, None, key_hash)
        lock = entry.try_lock()
        if lock is None:
            raise LandscapeError(f"cached {kind} entry {key_hash[:HASH_DIR_LEN]} is in use by another process")
        try:
            # Rename first so nobody sees a half-deleted entry; waiters notice the lock file is gone and retry.
            trash = path.with_name(f".trash-{path.name}-{secrets.token_hex(4)}")
            os.replace(path, trash)
            shutil.rmtree(trash, ignore_errors=True)
            fsync_dir(path.parent)
        except OSError as exc:
            raise LandscapeError(f"cannot delete {path}: {exc.strerror or exc}") from None
        finally:
            lock.release()
