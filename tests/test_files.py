"""Tests for core.store.files: atomic writes leave no temp file, JSON reads fail with one-line errors.

Write errors on a full disk or a read-only folder are tested with the store in tests/test_store.py."""

import numpy as np
import pytest

from core.errors import LandscapeError
from core.store.files import atomic_write_bytes, atomic_write_json, read_json

# ---------------------------------------------------------------------------------------------------------------
# Atomic JSON and bytes


def test_atomic_json_helpers(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": np.float32(0.5), "n": np.int64(3), "l": [1, 2]})
    assert read_json(p) == {"x": 0.5, "n": 3, "l": [1, 2]}
    assert [q.name for q in tmp_path.iterdir()] == ["a.json"]  # no temp file left
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LandscapeError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(LandscapeError, match="not found"):
        read_json(tmp_path / "nope.json")
    with pytest.raises(LandscapeError, match="cannot write"):
        atomic_write_bytes(tmp_path / "no_dir" / "f.bin", b"x")
