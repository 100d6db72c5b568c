"""Tests for core.store.points: the point-log line format (exact float round-trip, strict JSON) and the writer's
one-write-per-batch and fsync policy, driven through `Entry.append_points` / `Entry.load_points`.

Merging several writers' logs and torn lines are the entry's business: tests/test_store.py."""

import json
import math
import os
from pathlib import Path

import pytest

import core.store.points as points_mod
from core.store.store import Store


def _same_float(a: float, b: float) -> bool:
    """Bit-level equality up to NaN payloads: NaN == NaN, and -0.0 != 0.0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache")


TRICKY = [0.1, 1 / 3, -0.0, 0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, math.nan, math.inf, -math.inf]


def test_points_round_trip_exactly(store):
    e = store.entry("landscape", {"p": 1})
    items = [(i, {"loss": v, "acc": -v}) for i, v in enumerate(TRICKY)]
    e.append_points(items[:4])
    e.append_points(items[4:])
    loaded = e.load_points()
    assert list(loaded) == list(range(len(TRICKY)))
    for i, vals in items:
        assert loaded[i].keys() == vals.keys()
        for k in vals:
            assert _same_float(loaded[i][k], vals[k]), (i, k, loaded[i][k], vals[k])
    # Every line is strict JSON (NaN / inf spelled out explicitly, not as bare NaN tokens).
    (log,) = e.path.glob("points-*.jsonl")

    def no_constants(name):
        raise AssertionError(f"bare {name} in log")

    for line in log.read_text().splitlines():
        json.loads(line, parse_constant=no_constants)
    with pytest.raises(TypeError):
        e.append_points([(0, {"loss": "high"})])
    with pytest.raises(TypeError):
        e.append_points([(1.5, {"loss": 1.0})])


def test_one_write_per_batch_and_periodic_fsync(store, monkeypatch):
    e = store.entry("landscape", {"p": 2})
    e.append_points([(0, {"loss": 1.0})])  # opens the log
    writes, syncs = [], []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(os, "write", lambda fd, b: writes.append(len(b)) or real_write(fd, b))
    monkeypatch.setattr(os, "fsync", lambda fd: syncs.append(fd) or real_fsync(fd))
    e.append_points([(i, {"loss": float(i)}) for i in range(1, 11)])
    assert len(writes) == 1
    for i in range(11, 11 + 2 * points_mod.FSYNC_EVERY_POINTS):
        e.append_points([(i, {"loss": float(i)})])
    assert len(syncs) >= 2  # at least every FSYNC_EVERY_POINTS points
    n = len(syncs)
    e.append_points([(999, {"loss": 0.0})], sync=True)
    assert len(syncs) == n + 1
    # The time rule alone: with the count rule out of reach, a due interval syncs and a fresh one does not.
    monkeypatch.setattr(points_mod, "FSYNC_EVERY_POINTS", 10**9)
    monkeypatch.setattr(points_mod, "FSYNC_EVERY_SECONDS", 3600.0)
    n = len(syncs)
    e.append_points([(1000, {"loss": 0.0})])
    assert len(syncs) == n
    monkeypatch.setattr(points_mod, "FSYNC_EVERY_SECONDS", 0.0)
    e.append_points([(1001, {"loss": 0.0})])
    assert len(syncs) == n + 1
