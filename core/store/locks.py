"""Entry locks: an exclusive advisory `fcntl.flock` on an entry's `.lock` file, and the count of locks this process
holds per entry (so an entry can tell whether its own process holds the lock). `Entry.lock` takes them.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

_held_locks: dict[str, int] = {}  # entry dir -> number of locks this process holds on it
_held_guard = threading.Lock()


def held_in_this_process(entry_path: Path) -> bool:
    """Whether this process holds an `EntryLock` on the entry directory `entry_path`."""
    with _held_guard:
        return str(entry_path) in _held_locks


class EntryLock:
    """An exclusive advisory lock on one entry (an open, flock'ed `.lock` file). Release it or use it in `with`."""

    def __init__(self, fd: int, entry_path: Path) -> None:
        self._fd: int | None = fd
        self._key = str(entry_path)
        with _held_guard:
            _held_locks[self._key] = _held_locks.get(self._key, 0) + 1

    @property
    def held(self) -> bool:
        """Whether this lock is still held."""
        return self._fd is not None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with _held_guard:
            n = _held_locks.get(self._key, 1) - 1
            if n:
                _held_locks[self._key] = n
            else:
                _held_locks.pop(self._key, None)
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> EntryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()
