"""Cache housekeeping: what the cache holds, and pruning it least recently used first.

A long-lived demo server keeps every what-if, landscape, flatness report and checkpoint it ever computed. `prune`
removes the least recently used items until the cache fits a size (`--max-size`) and/or everything unused for a
while (`--older-than`), and never touches:
- an item in use: a store entry whose lock is held (a job computing it, in this process or another), a checkpoint
  whose training is under way (its `.resume` state written in the last `TRAINING_GRACE_S`), a file being written;
- the default models the Overview needs (the default trio of `core.app.zoo` / `core.app.profiles`, their probes,
  their default landscapes, flatness numbers and latency measurements, and the first-run job's fine-tuned runs of
  them with whatever is keyed by those), unless `include_defaults`.

Items: a store entry (`<root>/<kind>/<hash20>/`, see `core.store.store`) or, in the other folders (`checkpoints/`,
`finetune/`, `briefing/`, ...), a group of files sharing a stem (`mae_..._bf80be38c0.pt` with its probes
`mae_..._bf80be38c0.probe_*.pt` and its `.resume`). Last use: a store entry's folder mtime, which `Entry.result()`
touches on every read; a file group's newest access or modification time (atime follows the filesystem's relatime
rule: about once a day, enough for least-recently-used order at this scale).

`LANDSCAPE_CACHE_MAX` (e.g. `5GB`) caps the cache after each dashboard job and each CLI command
(`apply_cache_cap`); what that job itself used is kept.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import LandscapeError, human_bytes
from core.paths import cache_root
from core.store.files import read_json
from core.store.keys import file_hash

CAP_ENV = "LANDSCAPE_CACHE_MAX"
TRAINING_GRACE_S = 6 * 3600.0  # a .resume newer than this is a training under way (epochs of tiny models: seconds)
WRITE_GRACE_S = 600.0  # a temp file newer than this is a write in flight
_ENTRY_DIR = re.compile(r"^[0-9a-f]{20}$")
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_AGE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 2**10, "m": 1e6, "mb": 1e6, "mib": 2**20}
_UNITS |= {"g": 1e9, "gb": 1e9, "gib": 2**30, "t": 1e12, "tb": 1e12, "tib": 2**40, "ki": 2**10, "mi": 2**20}
_UNITS |= {"gi": 2**30, "ti": 2**40}
_AGES = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """`5GB`, `500MB`, `2GiB`, `1.5g`, `123` (bytes) -> bytes (decimal units for kB/MB/GB, binary for KiB/...).

    Raises:
        LandscapeError: for anything else.
    """
    m = _SIZE_RE.match(str(text))
    unit = (m.group(2) or "").lower() if m else ""
    if not m or unit not in _UNITS:
        raise LandscapeError(f"not a size: {text!r} (use e.g. 5GB, 500MB, 2GiB)")
    return int(float(m.group(1)) * _UNITS[unit])


def parse_age(text: str) -> float:
    """`30d`, `12h`, `90m`, `2w`, `3600` (seconds) -> seconds.

    Raises:
        LandscapeError: for anything else.
    """
    m = _AGE_RE.match(str(text))
    if not m:
        raise LandscapeError(f"not an age: {text!r} (use e.g. 30d, 12h, 90m)")
    return float(m.group(1)) * _AGES[m.group(2).lower()]


@dataclass(frozen=True)
class CacheItem:
    """One removable unit of the cache.

    Attributes:
        kind: the store kind ("landscape", "flatness", ...) or the folder of a file group ("checkpoints", ...).
        name: the entry's 20-digit hash, or the file group's stem.
        paths: what removing it deletes (the entry folder, or the group's files).
        size_bytes: bytes on disk (file sizes).
        last_used: seconds since the epoch (see the module docstring).
        in_use: a held lock, a training under way or a write in flight: never removed.
        default: part of what the Overview shows for the default models.
        finished: a store entry with a result, or a file group with a final file (not only a `.resume`).
        label: a short description for listings (the checkpoint file, or the entry's stage / grid).
    """

    kind: str
    name: str
    paths: tuple[Path, ...]
    size_bytes: int
    last_used: float
    in_use: bool
    default: bool
    finished: bool
    label: str = ""


@dataclass
class PruneResult:
    """What `prune` removed (or, with dry_run, would remove) and what it left, and why.

    Attributes:
        removed: the items removed (or to remove), least recently used first.
        kept_in_use: candidates left because they were in use.
        kept_default: candidates left because they are the Overview's defaults.
        size_before: bytes of all items before.
        dry_run: nothing was deleted.
        failed: name -> reason for items that could not be removed (taken in use meanwhile, permissions).
    """

    removed: list[CacheItem] = field(default_factory=list)
    kept_in_use: list[CacheItem] = field(default_factory=list)
    kept_default: list[CacheItem] = field(default_factory=list)
    size_before: int = 0
    dry_run: bool = False
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def freed_bytes(self) -> int:
        return sum(i.size_bytes for i in self.removed if i.name not in self.failed)

    @property
    def size_after(self) -> int:
        return self.size_before - self.freed_bytes

    def describe(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        text = (
            f"{verb} {len(self.removed) - len(self.failed)} items ({human_bytes(self.freed_bytes)}); cache "
            f"{human_bytes(self.size_before)} -> {human_bytes(self.size_after)}"
        )
        kept = []
        if self.kept_in_use:
            kept.append(f"{len(self.kept_in_use)} in use")
        if self.kept_default:
            kept.append(f"{len(self.kept_default)} defaults")
        if self.failed:
            kept.append(f"{len(self.failed)} could not be removed")
        return text + (f"; kept {', '.join(kept)}" if kept else "")


# ---------------------------------------------------------------------------------------------------------------
# Listing


def _size(paths: Iterable[Path]) -> int:
    total = 0
    for p in paths:
        try:
            if p.is_dir() and not p.is_symlink():
                for dirpath, _, files in os.walk(p):
                    for f in files:
                        try:
                            total += os.lstat(os.path.join(dirpath, f)).st_size
                        except OSError:
                            pass
            else:
                total += os.lstat(p).st_size
        except OSError:
            pass
    return total


def _lock_free(lock_path: Path) -> bool:
    """Whether nobody (this process included) holds the flock on `lock_path` right now."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return False
        raise
    finally:
        os.close(fd)  # closing drops our probe lock
    return True


class _Defaults:
    """What the Overview needs: the default checkpoints' file stems and content hashes, and the default specs.

    Built from `core.app.profiles.overview_defaults()` (passed in by the callers: housekeeping does not import
    `core.app`, which runs the size cap after each job)."""

    def __init__(self, root: Path, overview: dict[str, Any]) -> None:
        self.stems: set[str] = {Path(p).name.split(".")[0] for trio in overview["trios"] for p in trio.values()}
        self.surfaces = list(overview["surfaces"])
        self.flatness = list(overview["flatness"])
        self._trios = list(overview["trios"])
        self._root = root
        self._shas: set[str] | None = None
        self.derived: set[Path] = set()  # files made from the defaults that the Overview reads (fine-tuned runs)
        self.derived_shas: set[str] = set()
        # The caller found them in the default cache (`overview["derived"]`): they count for that cache only.
        if root == cache_root():
            self._find_derived(overview.get("derived", ()))

    def _find_derived(self, paths: Any) -> None:
        """The files made from the defaults that the Overview reads (the first-run job's fine-tuned runs), hashed
        so that what is keyed by them is kept too."""
        for path in map(Path, paths):
            try:
                if path.exists():
                    self.derived.add(path.resolve())
                    self.derived_shas.add(file_hash(path))
            except LandscapeError:  # unreadable: nothing to keep it for
                continue

    @property
    def shas(self) -> set[str]:
        """Content hashes of the default checkpoints and their probes present in the cache (hashed once)."""
        if self._shas is None:
            self._shas = set()
            folder = self._root / "checkpoints"
            for stem in self.stems:
                for f in folder.glob(f"{stem}.*pt"):
                    try:
                        self._shas.add(file_hash(f))
                    except LandscapeError:
                        pass
        return self._shas

    def needs_entry(self, kind: str, key: Any) -> bool:
        if not isinstance(key, dict):
            return False
        obj = key.get("objective") if isinstance(key.get("objective"), dict) else {}
        pair = key.get("a"), key.get("b")  # a measurement of two models at once (the paired latency)
        if all(isinstance(x, str) for x in pair):
            return all(x in self.shas for x in pair)
        sha = obj.get("checkpoint", key.get("checkpoint"))
        if isinstance(sha, str) and sha in self.derived_shas:
            return True
        if not isinstance(sha, str) or sha not in self.shas:
            return False
        if kind == "landscape":
            return any(
                key.get("dim") == s.dim
                and key.get("span") == s.span
                and key.get("directions") == s.directions
                and key.get("seed") == s.seed
                and obj.get("samples") == s.samples
                for s in self.surfaces
            )
        if kind == "flatness":
            return any(
                obj.get("samples") == f.samples and key.get("seed") == f.seed and key.get("scope") == f.scope
                for f in self.flatness
            )
        return True  # latency measurements and anything else keyed by a default checkpoint alone


def _entry_items(kdir: Path, defaults: _Defaults | None) -> list[CacheItem]:

    items = []
    for d in sorted(kdir.iterdir()):
        if not d.is_dir() or not _ENTRY_DIR.match(d.name):
            continue
        try:
            key = read_json(d / "key.json").get("key")
        except (LandscapeError, AttributeError):
            key = None
        try:
            last = d.stat().st_mtime
        except OSError:
            continue  # removed while listing
        finished = (d / "meta.json").exists()
        label = ""
        if isinstance(key, dict):
            if kdir.name == "landscape":
                label = f"{key.get('dim')}-D grid {key.get('grid')} span {key.get('span')}"
            elif kdir.name == "flatness":
                label = str(key.get("stage", ""))
        items.append(
            CacheItem(
                kind=kdir.name,
                name=d.name,
                paths=(d,),
                size_bytes=_size([d]),
                last_used=last,
                in_use=not _lock_free(d / ".lock"),
                default=defaults is not None and defaults.needs_entry(kdir.name, key),
                finished=finished,
                label=label,
            )
        )
    return items


def _file_items(folder: Path, defaults: _Defaults | None, now: float) -> list[CacheItem]:
    groups: dict[str, list[Path]] = {}
    for f in folder.iterdir():
        if f.is_file() and not f.name.startswith("."):
            groups.setdefault(f.name.split(".")[0], []).append(f)
        elif f.is_file() and f.name.endswith(".tmp"):  # `.<name>.<pid>.<token>.tmp`: an atomic write in flight
            groups.setdefault(f.name[1:].split(".")[0], []).append(f)
    items = []
    for stem, files in sorted(groups.items()):
        stats = []
        for f in files:
            try:
                stats.append((f, f.stat()))
            except OSError:
                pass
        if not stats:
            continue
        in_use = False
        for f, st in stats:
            if f.name.endswith(".resume") and now - st.st_mtime < TRAINING_GRACE_S:
                in_use = True
            if f.name.endswith(".tmp") and now - st.st_mtime < WRITE_GRACE_S:
                in_use = True
            if f.name.endswith(".lock") and not _lock_free(f):
                in_use = True
        finished = any(not f.name.endswith((".resume", ".tmp", ".lock")) for f, _ in stats)
        main = min((f.name for f, _ in stats), key=len)
        items.append(
            CacheItem(
                kind=folder.name,
                name=stem,
                paths=tuple(sorted(f for f, _ in stats)),
                size_bytes=sum(st.st_size for _, st in stats),
                last_used=max(max(st.st_atime, st.st_mtime) for _, st in stats),
                in_use=in_use,
                default=defaults is not None
                and (
                    (folder.name == "checkpoints" and stem in defaults.stems)
                    or any(f.resolve() in defaults.derived for f, _ in stats)
                ),
                finished=finished,
                label=main,
            )
        )
    return items


def list_items(root: str | os.PathLike[str] | None = None, overview: dict[str, Any] | None = None) -> list[CacheItem]:
    """Every removable item of the cache, least recently used first.

    Args:
        root: the cache folder (default `core.paths.cache_root()`).
        overview: `core.app.profiles.overview_defaults()`, to mark the Overview's defaults (hashes the default
        checkpoints
            once per process); None marks nothing.
    """
    root = Path(root).resolve() if root is not None else cache_root()
    defaults = _Defaults(root, overview) if overview is not None else None
    now = time.time()
    items: list[CacheItem] = []
    if not root.is_dir():
        return items
    for d in sorted(root.iterdir()):
        if not d.is_dir() or d.name.startswith("."):
            continue
        try:
            subdirs = [s for s in d.iterdir() if s.is_dir() and _ENTRY_DIR.match(s.name)]
        except OSError:
            continue
        if subdirs:
            items += _entry_items(d, defaults)
        else:
            items += _file_items(d, defaults, now)
    items.sort(key=lambda i: (i.last_used, i.kind, i.name))
    return items


def cache_size(root: str | os.PathLike[str] | None = None) -> int:
    """Bytes of every file under the cache folder (what `du` would count, roughly)."""
    return _size([Path(root) if root is not None else cache_root()])


# ---------------------------------------------------------------------------------------------------------------
# Pruning


def _remove_entry(item: CacheItem) -> None:
    """Delete a store entry under its lock (as `Store.delete` does): renamed away first, so nobody sees it half
    deleted; a waiter for the lock notices the lock file is gone and starts afresh."""
    d = item.paths[0]
    lock_path = d / ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileNotFoundError:
        return  # gone already
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise LandscapeError("in use") from None
            raise
        trash = d.with_name(f".trash-{d.name}-{secrets.token_hex(4)}")
        os.replace(d, trash)
        shutil.rmtree(trash, ignore_errors=True)
    finally:
        os.close(fd)


def _remove_files(item: CacheItem) -> None:
    # The final files first, the resume state last: a reader never finds a probe without its encoder.
    for p in sorted(item.paths, key=lambda p: (".probe_" not in p.name, p.name.endswith(".resume"))):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def prune(
    root: str | os.PathLike[str] | None = None,
    *,
    max_size: int | None = None,
    older_than: float | None = None,
    dry_run: bool = False,
    include_defaults: bool = False,
    keep_used_since: float | None = None,
    overview: dict[str, Any] | None = None,
) -> PruneResult:
    """Remove least recently used items until the cache is at most `max_size` bytes, and every item unused for
    more than `older_than` seconds. In-use items are never removed; the Overview's defaults only if
    `include_defaults`; items used at or after `keep_used_since` (a job's start) are kept. `overview` is
    `core.app.profiles.overview_defaults()` (what the defaults are); it is required unless `include_defaults`.

    Raises:
        LandscapeError: neither a size nor an age given.
        ValueError: no `overview` while the defaults are to be kept.
    """
    if max_size is None and older_than is None:
        raise LandscapeError("cache prune needs --max-size and/or --older-than (e.g. --max-size 5GB --older-than 30d)")
    if overview is None and not include_defaults:
        raise ValueError("prune needs overview=core.app.profiles.overview_defaults() to keep the Overview's defaults")
    items = list_items(root, overview)
    result = PruneResult(size_before=sum(i.size_bytes for i in items), dry_run=dry_run)
    now = time.time()
    size = result.size_before
    for item in items:  # least recently used first
        old = older_than is not None and item.last_used < now - older_than
        big = max_size is not None and size > max_size
        if not (old or big):
            continue
        if keep_used_since is not None and item.last_used >= keep_used_since:
            continue
        if item.in_use:
            result.kept_in_use.append(item)
            continue
        if item.default and not include_defaults:
            result.kept_default.append(item)
            continue
        result.removed.append(item)
        size -= item.size_bytes
        if dry_run:
            continue
        try:
            _remove_entry(item) if len(item.paths) == 1 and item.paths[0].is_dir() else _remove_files(item)
        except (LandscapeError, OSError) as exc:
            result.failed[item.name] = str(exc) if isinstance(exc, LandscapeError) else (exc.strerror or str(exc))
            size += item.size_bytes
    return result


def cache_cap() -> int | None:
    """The size cap from env `LANDSCAPE_CACHE_MAX` (e.g. `5GB`), or None when unset or empty.

    Raises:
        LandscapeError: a value that is not a size.
    """
    text = os.environ.get(CAP_ENV, "").strip()
    return parse_size(text) if text else None


def apply_cache_cap(job_started: float | None = None, overview: dict[str, Any] | None = None) -> PruneResult | None:
    """Prune to `LANDSCAPE_CACHE_MAX` if it is set (after a job: what the job used since `job_started` is kept).

    Returns None when no cap is set. Never raises for a bad cap or a vanished folder: a job's own result matters
    more than housekeeping (a bad value is reported by `python -m core cache prune` and the Runs page instead).
    """
    try:
        cap = cache_cap()
        if cap is None:
            return None
        if overview is None:  # the callers pass `core.app.profiles.overview_defaults()`: never prune the defaults blind
            return None
        return prune(max_size=cap, keep_used_since=job_started, overview=overview)
    except (LandscapeError, OSError):
        return None
