"""Step journals: exact round trips, replay instead of recompute, torn and corrupt tails, the size limit."""

import math

import numpy as np
import pytest
import torch

from core.store.journal import NO_JOURNAL, Journal


def test_values_round_trip_exactly_and_both_paths_return_the_same(tmp_path):
    value = {
        "f": -0.0,
        "nan": math.nan,
        "inf": -math.inf,
        "tiny": 5e-324,
        "i": 2**40,
        "b": True,
        "t32": torch.randn(3, 4),
        "bf16": torch.randn(5).to(torch.bfloat16),
        "empty": torch.zeros(0),
        "state": torch.Generator().manual_seed(3).get_state(),
        "arr": np.arange(6, dtype=np.int16).reshape(2, 3),
    }
    j = Journal(tmp_path / "j.bin")
    computed = j.step("a", lambda: value)
    assert not j.last_replayed and j.n_recorded == 1
    replayed = Journal(tmp_path / "j.bin").step("a", lambda: pytest.fail("recomputed a recorded step"))
    for got in (computed, replayed):
        assert got.keys() == value.keys()
        assert math.copysign(1, got["f"]) == -1 and math.isnan(got["nan"]) and got["inf"] == -math.inf
        assert got["tiny"] == 5e-324 and got["i"] == 2**40 and got["b"] is True
        for name in ("t32", "bf16", "empty", "state"):
            assert got[name].dtype == value[name].dtype and torch.equal(got[name], value[name])
        assert got["arr"].dtype == np.int16 and np.array_equal(got["arr"], value["arr"])


def test_replay_counts_and_scopes(tmp_path):
    path = tmp_path / "j.bin"
    j = Journal(path)
    s = j.scope("run/")
    for i in range(3):
        s.step(f"{i}", lambda i=i: {"v": float(i)})
    calls = []
    j2 = Journal(path)
    assert len(j2) == 3 and "run/1" in j2
    out = [j2.scope("run/").step(f"{i}", lambda i=i: calls.append(i) or {"v": 10.0 + i})["v"] for i in range(5)]
    assert out == [0.0, 1.0, 2.0, 13.0, 14.0] and calls == [3, 4]
    assert (j2.n_replayed, j2.n_recorded) == (3, 2)
    j2.discard()
    assert not path.exists() and len(Journal(path)) == 0


@pytest.mark.parametrize("damage", ["torn", "flipped", "garbage"])
def test_a_damaged_tail_ends_the_valid_prefix_and_is_overwritten(tmp_path, damage):
    path = tmp_path / "j.bin"
    j = Journal(path)
    for i in range(3):
        j.step(str(i), lambda i=i: {"x": torch.full((100,), float(i))})
    j.close()
    data = bytearray(path.read_bytes())
    third = len(data) * 2 // 3
    if damage == "torn":
        data = data[: len(data) - 7]  # a kill in the middle of the last write
    elif damage == "flipped":
        data[-10] ^= 0xFF  # the last record's payload no longer matches its checksum
    else:
        data += b"\x00garbage"
    path.write_bytes(bytes(data))
    j2 = Journal(path)
    assert len(j2) == (3 if damage == "garbage" else 2)
    j2.step("3", lambda: {"x": torch.ones(2)})
    j3 = Journal(path)
    assert len(j3) == len(j2) and torch.equal(j3.step("3", dict)["x"], torch.ones(2))
    if damage != "garbage":
        assert path.stat().st_size > third  # the damaged record was replaced, not kept in front of the new one


def test_size_limit_stops_recording_but_not_computing(tmp_path):
    j = Journal(tmp_path / "j.bin", max_bytes=1500)
    out = [j.step(str(i), lambda i=i: {"x": np.full(100, i, dtype=np.float32)})["x"][0] for i in range(5)]
    assert out == [0, 1, 2, 3, 4]
    assert 1 <= j.n_recorded < 5 and (tmp_path / "j.bin").stat().st_size <= 1500
    assert len(Journal(tmp_path / "j.bin")) == j.n_recorded


def test_unsupported_values_are_refused_and_no_journal_just_computes(tmp_path):
    with pytest.raises(TypeError, match="unsupported"):
        Journal(tmp_path / "j.bin").step("a", lambda: {"x": object()})
    assert NO_JOURNAL.scope("p/").step("a", lambda: {"v": 1}) == {"v": 1}


def test_a_crafted_header_is_never_trusted(tmp_path):
    """A record whose checksum is right but whose header names something other than a dtype is recomputed."""
    import json
    import struct
    import zlib

    from core.store.journal import _CRC, _HEAD, MAGIC

    path = tmp_path / "j.bin"
    for dtype, t in (("save", "T"), ("O", "A"), ("x", "Z")):
        header = json.dumps({"key": "a", "fields": {"x": {"t": t, "dtype": dtype, "shape": [1], "off": 0, "len": 8}}})
        body = header.encode() + bytes(8)
        path.write_bytes(_HEAD.pack(MAGIC, len(header), 8) + body + _CRC.pack(zlib.crc32(body)))
        j = Journal(path)
        assert j.step("a", lambda: {"x": 1.0}) == {"x": 1.0} and not j.last_replayed
        j.close()
    assert struct.calcsize("<4sIQ") == _HEAD.size


def test_count_steps_reads_headers_only(tmp_path):
    from core.store.journal import count_steps

    path = tmp_path / "j.bin"
    assert count_steps(path) == 0
    j = Journal(path)
    for i in range(3):
        j.step(str(i), lambda i=i: {"x": torch.full((50,), float(i))})
    j.close()
    assert count_steps(path) == 3
    path.write_bytes(path.read_bytes()[:-5])  # a torn last record is not counted
    assert count_steps(path) == 2


def test_a_full_disk_stops_with_one_line_and_keeps_the_recorded_steps(tmp_path, monkeypatch):
    """ENOSPC in the middle of a record (half of it written): DiskFull, the steps before stay, the torn record is
    cut off by the next writer, and the rerun replays the kept steps and computes the rest."""
    import errno
    import os

    from core.errors import DiskFull

    path = tmp_path / "j.bin"
    j = Journal(path)
    for i in range(3):
        j.step(f"s{i}", lambda i=i: {"v": float(i), "t": torch.full((64,), float(i))})
    real = os.write

    def half_then_full(fd, data):
        n = real(fd, bytes(data[: len(data) // 2]))  # a short write, then the disk is full
        if n < len(data):
            monkeypatch.setattr(os, "write", lambda *_: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
        return n

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(DiskFull, match=r"no space left on .*j\.bin \(.* free\); the finished points are kept"):
        j.step("s3", lambda: {"v": 3.0, "t": torch.full((64,), 3.0)})
    monkeypatch.setattr(os, "write", real)
    again = Journal(path)
    assert len(again) == 3  # the torn record is not a step
    calls = []
    for i in range(5):
        got = again.step(f"s{i}", lambda i=i: calls.append(i) or {"v": float(i), "t": torch.full((64,), float(i))})
        assert got["v"] == float(i) and torch.equal(got["t"], torch.full((64,), float(i)))
    assert calls == [3, 4] and again.n_replayed == 3
    assert len(Journal(path)) == 5
