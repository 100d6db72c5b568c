"""Step journals: an append-only record of the finished steps of a long computation, so that a job killed midway
replays what it had done instead of recomputing it, and ends bit for bit where an uninterrupted run would.

A flatness stage (a Lanczos run, Hutchinson probes, sharpness draws, robustness evaluations) is a sequence of
expensive, deterministic steps. Each step runs through `Journal.step(key, compute)`: the first time, `compute()`
runs and its result (floats, ints, bools, numpy arrays, torch tensors) is appended to the file; on a rerun the
recorded result is returned exactly (raw bytes) without computing. Randomness drawn *outside* steps is drawn again
on replay, which keeps seeded generators in step; a step that draws inside records the generator state itself.

File layout: records `MAGIC | u32 header length | u64 payload length | header JSON | payload | u32 crc32`, the
crc over header and payload. A record cut short by a kill (or corrupted) ends the valid prefix; it and anything
after it are dropped on the next write. Only one process writes a journal at a time (the caller holds the cache
entry's lock); readers need no lock.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import LandscapeError, write_error

JOURNAL_FILE = "journal.bin"  # the name a cache entry's journal has (core.measure.flatness, core.store.store)
MAGIC = b"JRN1"
_HEAD = struct.Struct("<4sIQ")
_CRC = struct.Struct("<I")
DEFAULT_MAX_BYTES = 4 << 30  # stop recording (keep computing) beyond this; a resume then recomputes the rest

Value = dict[str, Any]


def _encode(key: str, value: Value) -> bytes:
    fields: dict[str, Any] = {}
    payload = bytearray()
    for name, v in value.items():
        if isinstance(v, bool):
            fields[name] = {"t": "b", "v": v}
        elif isinstance(v, int):
            fields[name] = {"t": "i", "v": v}
        elif isinstance(v, float):
            fields[name] = {"t": "f", "v": float.hex(v)}
        elif isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
            fields[name] = {"t": "T", "dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)}
            fields[name] |= {"off": len(payload), "len": len(raw)}
            payload += raw
        elif isinstance(v, np.ndarray | np.generic):
            a = np.ascontiguousarray(v)
            if a.dtype.hasobject:
                raise TypeError(f"journal field {name!r} has object dtype")
            raw = a.tobytes()
            fields[name] = {"t": "A", "dtype": a.dtype.str, "shape": list(a.shape), "off": len(payload)}
            fields[name]["len"] = len(raw)
            payload += raw
        else:
            raise TypeError(f"journal field {name!r} has unsupported type {type(v).__name__}")
    header = json.dumps({"key": key, "fields": fields}, separators=(",", ":")).encode()
    body = header + bytes(payload)
    return _HEAD.pack(MAGIC, len(header), len(payload)) + body + _CRC.pack(zlib.crc32(body))


def _decode(header: dict, payload: bytes) -> Value:
    out: Value = {}
    for name, f in header["fields"].items():
        t = f["t"]
        if t in ("b", "i"):
            out[name] = f["v"]
        elif t == "f":
            out[name] = float.fromhex(f["v"])
        elif t == "A":
            dtype = np.dtype(f["dtype"])
            if dtype.hasobject:
                raise ValueError("object arrays are never read from a journal")
            raw = payload[f["off"] : f["off"] + f["len"]]
            out[name] = np.frombuffer(raw, dtype=dtype).reshape(f["shape"]).copy()
        elif t == "T":
            dtype = getattr(torch, str(f["dtype"]), None)
            if not isinstance(dtype, torch.dtype):  # a name from the file: only ever a dtype, nothing callable
                raise ValueError(f"not a torch dtype: {f['dtype']!r}")
            raw = bytearray(payload[f["off"] : f["off"] + f["len"]])
            flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
            out[name] = flat.view(dtype).reshape(f["shape"]).clone()
        else:
            raise ValueError(f"unknown journal field type {t!r}")
    return out


_CHUNK = 1 << 24


def _scan(path: Path, verify: bool = True) -> tuple[dict[str, tuple[dict, int, int]], int]:
    """Index the valid records of a journal file: key -> (header, payload offset, payload length), and the length
    of the valid prefix. Payloads are checked (crc32, read in chunks) but not kept: memory stays small however
    large the journal is. verify=False skips the payloads (headers and framing only): a cheap count for
    listings, which may include a record whose payload a replay would reject."""
    index: dict[str, tuple[dict, int, int]] = {}
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return index, 0
    except OSError as exc:
        raise LandscapeError(f"cannot read the step journal {path}: {exc.strerror or exc}") from None
    pos = 0
    with f:
        size = os.fstat(f.fileno()).st_size
        while pos + _HEAD.size <= size:
            f.seek(pos)
            magic, hlen, plen = _HEAD.unpack(f.read(_HEAD.size))
            end = pos + _HEAD.size + hlen + plen + _CRC.size
            if magic != MAGIC or end > size:
                break
            raw_header = f.read(hlen)
            if verify:
                crc = zlib.crc32(raw_header)
                left = plen
                while left:
                    chunk = f.read(min(left, _CHUNK))
                    if not chunk:
                        break
                    crc = zlib.crc32(chunk, crc)
                    left -= len(chunk)
                if left or _CRC.unpack(f.read(_CRC.size))[0] != crc:
                    break
            try:
                header = json.loads(raw_header)
                index[header["key"]] = (header, pos + _HEAD.size + hlen, plen)
            except (ValueError, KeyError, TypeError):
                break
            pos = end
    return index, pos


def count_steps(path: str | os.PathLike[str]) -> int:
    """How many steps a journal file holds, reading only its record headers (for cache listings: a multi-GB
    journal is not read through on every listing)."""
    return len(_scan(Path(path), verify=False)[0])


class Journal:
    """Finished steps of one computation, kept in `path` until `discard()`.

    Args:
        path: the journal file (its folder must exist or be creatable).
        max_bytes: stop recording new steps once the file would exceed this (the computation goes on; a resume
            recomputes the unrecorded steps). Default: 4 GiB or a quarter of the free disk, the smaller.

    Attributes:
        n_replayed: steps served from the file in this run.
        n_recorded: steps computed and appended in this run.
        last_replayed: whether the latest `step` came from the file.
    """

    def __init__(self, path: str | os.PathLike[str], max_bytes: int | None = None) -> None:
        self.path = Path(path)
        self._index, self._size = _scan(self.path)
        if max_bytes is None:
            try:
                free = shutil.disk_usage(self.path.parent if self.path.parent.exists() else Path.cwd()).free
            except OSError:
                free = DEFAULT_MAX_BYTES
            max_bytes = min(DEFAULT_MAX_BYTES, free // 4)
        self.max_bytes = int(max_bytes)
        self.n_replayed = 0
        self.n_recorded = 0
        self.last_replayed = False
        self._fd: int | None = None
        self._full = False

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def _load(self, key: str) -> Value | None:
        header, offset, length = self._index[key]
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                payload = f.read(length)
            return _decode(header, payload)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError):
            return None  # vanished or unreadable since the scan: compute the step again

    def step(self, key: str, compute: Callable[[], Value]) -> Value:
        """The recorded result of step `key`, or `compute()`'s result, recorded before it is returned.

        Both paths return the same decoded values (floats, ints, bools, numpy arrays, CPU torch tensors), so the
        code after a step behaves identically whether it was replayed or computed.
        """
        if key in self._index:
            value = self._load(key)
            if value is not None:
                self.n_replayed += 1
                self.last_replayed = True
                return value
        self.last_replayed = False
        blob = _encode(key, compute())
        header_len = _HEAD.unpack_from(blob)[1]
        header = json.loads(blob[_HEAD.size : _HEAD.size + header_len])
        value = _decode(header, blob[_HEAD.size + header_len : -_CRC.size])
        if key not in self._index and not self._full:
            if self._size + len(blob) > self.max_bytes:
                self._full = True  # from here on the run computes without recording
            else:
                offset = self._size + _HEAD.size + header_len
                if self._append(blob):
                    self._index[key] = (header, offset, len(blob) - _HEAD.size - header_len - _CRC.size)
                    self.n_recorded += 1
        return value

    def scope(self, prefix: str) -> JournalScope:
        """A view whose keys are prefixed, for a sub-computation (one Lanczos run of several)."""
        return JournalScope(self, prefix)

    def _append(self, blob: bytes) -> bool:
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
                os.ftruncate(self._fd, self._size)  # drop a torn tail left by a killed writer
                os.lseek(self._fd, self._size, os.SEEK_SET)
            view = memoryview(blob)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            # A full disk (or any write error) stops the job with a one-line error: the steps recorded so far are
            # kept (a torn record at the end is cut off by the next writer), and a rerun replays them. Computing on
            # without a journal would only fail later, at the result's save, with the work since then lost.
            self._full = True
            self.close()
            raise write_error(exc, self.path) from None
        self._size += len(blob)
        return True

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None

    def discard(self) -> None:
        """Delete the file (call once the final result is saved)."""
        self.close()
        self._index = {}
        self._size = 0
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __del__(self) -> None:
        self.close()


class JournalScope:
    """A prefixed view of a `Journal` (see `Journal.scope`)."""

    def __init__(self, journal: Journal, prefix: str) -> None:
        self.journal = journal
        self.prefix = prefix

    def step(self, key: str, compute: Callable[[], Value]) -> Value:
        return self.journal.step(self.prefix + key, compute)

    def scope(self, prefix: str) -> JournalScope:
        return JournalScope(self.journal, self.prefix + prefix)

    @property
    def last_replayed(self) -> bool:
        return self.journal.last_replayed


class NoJournal:
    """Runs every step; records nothing (the default of the flatness functions)."""

    last_replayed = False

    def step(self, key: str, compute: Callable[[], Value]) -> Value:
        return compute()

    def scope(self, prefix: str) -> NoJournal:
        return self


NO_JOURNAL = NoJournal()
