"""The one exception type a user sees.

Anything the user can cause (a missing file, a hostile checkpoint, a grid too large, a NaN at the centre) raises
`LandscapeError` with a one-line reason. The CLI prints it as `error: <reason>` and exits 1; the dashboard shows it
in an error box. Everything else is a bug and may surface as a traceback.

A failed write (a full disk, a quota, a read-only folder) is a `WriteFailed`, and a full disk its subclass
`DiskFull`, whose one line names the path and the space left: `no space left on <path> (12.0 KiB free); the
finished points are kept`. The atomic-write helpers of `core.store.files` raise them; `write_error` turns any `OSError`
from a write into one, so every writer (and the CLI's and the job registry's last-resort catch) says the same.
"""

import errno
import os
import shutil
from pathlib import Path


class LandscapeError(Exception):
    """A user-facing failure with a one-line, plain-language reason."""


class WriteFailed(LandscapeError):
    """A file could not be written (permissions, a read-only or missing folder, an I/O error, a full disk).

    Attributes:
        path: the file (or folder) that was being written.
    """

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


class DiskFull(WriteFailed):
    """The filesystem (or the user's quota) is full. Nothing half-written is kept as a result; finished progress
    (grid points, journal steps, epochs) stays on disk, and the same command resumes once space is freed.

    Attributes:
        path: the file that was being written.
        free: bytes free on its filesystem when the write failed (None if unknown).
    """

    def __init__(self, path: str | os.PathLike[str], free: int | None = None) -> None:
        self.free = free
        left = "unknown space" if free is None else human_bytes(free)
        super().__init__(f"no space left on {path} ({left} free); the finished points are kept", path)


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def human_bytes(n: float) -> str:
    """`n` bytes as a short human string: 512 B, 12.0 KiB, 3.4 MiB, 1.2 GiB."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes (for an unprivileged user) on the filesystem holding `path` or its nearest existing parent."""
    p = Path(path).absolute()
    for candidate in (p, *p.parents):
        try:
            return int(shutil.disk_usage(candidate).free)
        except OSError:
            continue
    return None


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception is the OS saying the disk (or quota) is full."""
    return isinstance(exc, DiskFull) or (isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS)


def write_error(exc: OSError, path: str | os.PathLike[str] | None = None, what: str | None = "write") -> WriteFailed:
    """The user-facing error for an `OSError` raised while writing `path` (default: the exception's own filename).

    Returns a `DiskFull` for ENOSPC / EDQUOT, else a `WriteFailed` `cannot <what> <path>: <reason>` (what=None:
    `<path>: <reason>`, for a last-resort catch that does not know whether it was a write).
    """
    if path is None:
        path = exc.filename if exc.filename is not None else "the cache"
    if exc.errno in DISK_FULL_ERRNOS:
        return DiskFull(path, free_bytes(path))
    reason = exc.strerror or str(exc) or type(exc).__name__
    return WriteFailed(f"cannot {what} {path}: {reason}" if what else f"{path}: {reason}", path)
