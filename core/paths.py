"""Where the project keeps things on disk."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """The cache folder: env `LANDSCAPE_CACHE_DIR` if set, else `<project>/cache`. Created on demand."""
    root = Path(os.environ.get("LANDSCAPE_CACHE_DIR") or PROJECT_ROOT / "cache").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root
