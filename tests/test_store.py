"""Tests for core.store.store: atomic results, corruption handling, point logs, locks across processes, a full disk.

Content hashing is tested in tests/test_keys.py, the file helpers in tests/test_files.py, the point-log line format and
fsync policy in tests/test_points.py."""

import csv
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import core.store.store as store_mod
from core.errors import LandscapeError
from core.store.files import atomic_write_bytes, atomic_write_json, read_json
from core.store.keys import content_hash
from core.store.store import CacheWarning, Store

REPO = Path(__file__).resolve().parent.parent


def _same_float(a: float, b: float) -> bool:
    """Bit-level equality up to NaN payloads: NaN == NaN, and -0.0 != 0.0."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _run_py(code: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "cache")


# ---------------------------------------------------------------------------------------------------------------
# Store basics


def test_cache_dir_env_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "envcache"))
    s = Store()
    assert s.root == (tmp_path / "envcache").resolve()
    e = s.entry("landscape", {"a": 1})
    assert e.path == s.root / "landscape" / content_hash({"a": 1})[:20]
    assert e.key_hash == content_hash({"a": 1})
    assert not e.path.exists()  # looking creates nothing
    e.save_result({"x": np.zeros(2)})
    assert e.path.is_dir()


def test_bad_kind_and_key(store):
    for kind in ["", "Landscape", "../x", "a/b", "x" * 40]:
        with pytest.raises(LandscapeError):
            store.entry(kind, {"a": 1})
    with pytest.raises(TypeError):
        store.entry("landscape", [1, 2])


def test_save_load_round_trip(store):
    rng = np.random.default_rng(0)
    arrays = {
        "loss": rng.normal(size=(3, 4)).astype(np.float32),
        "steps": np.arange(5, dtype=np.int64),
        "ok": np.array([True, False]),
        "centre": np.array(0.25),
    }
    e = store.entry("landscape", {"model": "mae", "grid": (3, 4)})
    assert e.result() is None
    e.save_result(arrays, {"note": "hi", "radius": np.float64(0.5)}, code_version="0.1.0+abc")
    r = e.result()
    assert r is not None
    assert sorted(r.arrays) == sorted(arrays)
    for k, a in arrays.items():
        assert r.arrays[k].dtype == a.dtype and r.arrays[k].shape == a.shape
        np.testing.assert_array_equal(r.arrays[k], a)
    assert r.meta == {"note": "hi", "radius": 0.5}
    assert r.code_version == "0.1.0+abc"
    assert abs(r.created - time.time()) < 60
    # Files on disk are what the docs say: a plain npz and a meta.json holding its checksum and the key.
    meta = json.loads((e.path / "meta.json").read_text())
    assert meta["npz_sha256"] == hashlib.sha256((e.path / "results.npz").read_bytes()).hexdigest()
    assert meta["key"] == {"model": "mae", "grid": [3, 4]} and meta["key_hash"] == e.key_hash
    with np.load(e.path / "results.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["loss"], arrays["loss"])
    # Reopening the same key from a fresh store finds it.
    assert Store(store.root).entry("landscape", {"grid": [3, 4], "model": "mae"}).result() is not None


def test_save_rejects_object_arrays_and_bad_names(store):
    e = store.entry("landscape", {"a": 1})
    with pytest.raises(TypeError):
        e.save_result({"x": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ValueError):
        e.save_result({"../x": np.zeros(1)})
    assert e.result() is None


# ---------------------------------------------------------------------------------------------------------------
# Corruption


def _saved(store: Store, key: dict | None = None):
    e = store.entry("flatness", key or {"model": "vit", "seed": 1})
    arrays = {"x": np.linspace(0, 1, 50), "y": np.arange(12.0).reshape(3, 4)}
    e.save_result(arrays, {"m": 1})
    assert e.result() is not None
    return e, arrays


def _expect_set_aside(e) -> None:
    with pytest.warns(CacheWarning):
        assert e.result() is None
    corrupt = list((e.path / ".corrupt").iterdir())
    assert len(corrupt) == 1 and (corrupt[0] / "meta.json").exists()
    # Moved aside: the next look reports missing without another warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert e.result() is None
    assert not (e.path / "meta.json").exists()


def _recomputable(e, arrays) -> None:
    with e.lock(timeout=5):
        assert e.result() is None
        e.save_result(arrays, {"m": 2})
    r = e.result()
    assert r is not None and r.meta == {"m": 2}
    np.testing.assert_array_equal(r.arrays["y"], arrays["y"])


def test_truncated_npz_is_detected(store):
    e, arrays = _saved(store)
    npz = e.path / "results.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    _expect_set_aside(e)
    _recomputable(e, arrays)


def test_flipped_byte_is_detected(store):
    e, arrays = _saved(store)
    npz = e.path / "results.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0x01
    npz.write_bytes(bytes(data))
    _expect_set_aside(e)
    _recomputable(e, arrays)


def test_valid_npz_of_another_result_is_detected(store):
    # Only the checksum can tell: the npz itself is intact, it just is not the one meta.json vouches for.
    e, arrays = _saved(store)
    old_npz = (e.path / "results.npz").read_bytes()
    e.save_result({"x": arrays["x"] + 1, "y": arrays["y"]}, {"m": 1})
    (e.path / "results.npz").write_bytes(old_npz)
    _expect_set_aside(e)
    _recomputable(e, arrays)


def test_crash_while_replacing_a_result_reads_as_missing(store, monkeypatch):
    e, arrays = _saved(store)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies after the new npz is in place, before its meta.json

    monkeypatch.setattr(store_mod, "atomic_write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        e.save_result({"x": arrays["x"] * 2, "y": arrays["y"]})
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cleanly missing: the old meta.json never vouches for the new npz
        assert e.result() is None
    _recomputable(e, arrays)


@pytest.mark.parametrize("field", ["key", "key_hash"])
def test_wrong_key_in_meta_is_detected(store, field):
    e, arrays = _saved(store)
    meta = json.loads((e.path / "meta.json").read_text())
    if field == "key":
        meta["key"]["seed"] = 2
    else:
        meta["key_hash"] = content_hash({"other": 1})
    (e.path / "meta.json").write_text(json.dumps(meta))
    _expect_set_aside(e)
    _recomputable(e, arrays)


def test_garbage_meta_is_detected_even_under_own_lock(store):
    e, arrays = _saved(store)
    (e.path / "meta.json").write_text('{"format": 1, "key": ')
    with e.lock(timeout=5):
        with pytest.warns(CacheWarning):
            assert e.result() is None
        assert not (e.path / "meta.json").exists()
        e.save_result(arrays)
    assert e.result() is not None


def test_half_written_result_and_leftover_temp_files(store):
    e, arrays = _saved(store)
    dead = _dead_pid()
    # A crash mid-write leaves a temp file: it is ignored while a good result exists...
    stale = e.path / f".results.npz.{dead}.deadbeef.tmp"
    stale.write_bytes(b"partial garbage")
    assert e.result() is not None
    # ...and a crash between the npz and the meta.json (no commit marker) reads as missing, without alarm.
    (e.path / "meta.json").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert e.result() is None
    live = e.path / f".meta.json.{os.getpid()}.cafe.tmp"  # a temp file of a live writer must be left alone
    live.write_bytes(b"{")
    _recomputable(e, arrays)
    assert not stale.exists() and live.exists()


# ---------------------------------------------------------------------------------------------------------------
# Point logs


def test_torn_last_line_is_ignored_and_writers_merge(store):
    e = store.entry("landscape", {"p": 3})
    e.append_points([(i, {"loss": i / 10}) for i in range(3)])
    (log,) = e.path.glob("points-*.jsonl")
    with open(log, "ab") as f:
        f.write(b'{"i":3,"v":{"loss":0.3')  # a write cut short by a crash
    assert list(e.load_points()) == [0, 1, 2]
    with open(log, "ab") as f:
        f.write(b"}}")  # complete JSON but no newline: still not committed
    assert list(e.load_points()) == [0, 1, 2]
    # A second writer (another Entry object, as another process would be) gets its own file; logs merge.
    other = Store(store.root).entry("landscape", {"p": 3})
    time.sleep(0.01)  # the newer log wins a duplicate index; make "newer" visible in mtime
    other.append_points([(3, {"loss": 0.3}), (4, {"loss": 0.4}), (2, {"loss": 2.0})])
    assert len(list(e.path.glob("points-*.jsonl"))) == 2
    pts = e.load_points()
    assert list(pts) == [0, 1, 2, 3, 4] and pts[4] == {"loss": 0.4} and pts[2] == {"loss": 2.0}
    e.clear_points()
    assert e.load_points() == {} and not list(e.path.glob("points-*.jsonl"))
    other.append_points([(7, {"loss": 0.7})])  # its old file is gone: it starts a new one
    assert e.load_points() == {7: {"loss": 0.7}}


# ---------------------------------------------------------------------------------------------------------------
# Locks and processes


def test_lock_excludes_and_times_out(store):
    a = store.entry("landscape", {"a": 1})
    b = store.entry("landscape", {"b": 1})
    with a.lock():
        assert a.try_lock() is None
        assert Store(store.root).entry("landscape", {"a": 1}).try_lock() is None
        t0 = time.monotonic()
        with pytest.raises(LandscapeError, match="timed out"):
            a.lock(timeout=0.1)
        assert time.monotonic() - t0 < 2
        other = b.try_lock()  # different entries never block each other
        assert other is not None
        other.release()
    lk = a.try_lock()
    assert lk is not None and lk.held
    lk.release()
    assert not lk.held


def test_waiter_survives_entry_deletion(store):
    e = store.entry("landscape", {"a": 1})
    got = []
    with e.lock():
        t = threading.Thread(target=lambda: got.append(store.entry("landscape", {"a": 1}).lock(timeout=5)))
        t.start()
        time.sleep(0.1)
        # What Store.delete does while holding the lock: the entry directory goes away.
        os.replace(e.path, e.path.with_name(".trash"))
    t.join(5)
    assert got and got[0].held
    # The waiter re-created the entry and holds the lock on the live lock file, not on the deleted one.
    assert os.path.samestat(os.fstat(got[0]._fd), os.stat(e.path / ".lock"))
    assert read_json(e.path / "key.json")["key"] == {"a": 1}
    assert e.try_lock() is None
    got[0].release()


WORKER = """
import hashlib, json, os, sys, time
import numpy as np
from core.store.store import Store

root, ready_dir, go, log = sys.argv[1:5]
entry = Store(root).entry("demo", {"n": 6, "seed": 3})
open(os.path.join(ready_dir, str(os.getpid())), "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
with entry.lock(timeout=20):
    r = entry.result()
    computed = r is None
    if computed:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{os.getpid()}\\n".encode())
        os.close(fd)
        time.sleep(0.3)  # long enough for the other process to be waiting on the lock
        entry.save_result({"x": np.random.default_rng(3).normal(size=(6, 6))}, {"by": os.getpid()})
        r = entry.result()
sha = hashlib.sha256(r.arrays["x"].tobytes()).hexdigest()
print(json.dumps({"computed": computed, "sha": sha, "by": r.meta["by"]}))
"""


def test_two_processes_compute_once(store, tmp_path):
    ready, go, log = tmp_path / "ready", tmp_path / "go", tmp_path / "computed.log"
    ready.mkdir()
    procs = [_run_py(WORKER, str(store.root), str(ready), str(go), str(log)) for _ in range(2)]
    deadline = time.monotonic() + 15
    while len(list(ready.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    assert sorted(o["computed"] for o in outs) == [False, True]
    assert len(log.read_text().split()) == 1
    expected = hashlib.sha256(np.random.default_rng(3).normal(size=(6, 6)).tobytes()).hexdigest()
    assert outs[0]["sha"] == outs[1]["sha"] == expected
    assert outs[0]["by"] == outs[1]["by"] == int(log.read_text())
    e = store.entry("demo", {"seed": 3, "n": 6})
    assert e.result() is not None
    assert not list(e.path.glob(".*.tmp")) and not (e.path / ".corrupt").exists()


VALUE = """
import math
def value(i):
    special = [math.nan, math.inf, -math.inf, -0.0]
    return {"loss": math.sin(i) / 7 if i % 5 else special[i // 5 % 4], "acc": i / 3}
"""

KILLED = (
    VALUE
    + """
import sys, time
from core.store.store import Store
entry = Store(sys.argv[1]).entry("grid", {"n": 60})
lock = entry.lock(timeout=10)
for i in range(60):
    entry.append_points([(i, value(i))])
    print(i, flush=True)
    time.sleep(0.002 if i < 20 else 0.2)
"""
)


def test_sigkill_mid_append_then_resume(store):
    ns: dict = {}
    exec(VALUE, ns)
    value = ns["value"]
    p = _run_py(KILLED, str(store.root))
    reported = -1
    for line in p.stdout:
        reported = int(line)
        if reported >= 20:
            break
    os.kill(p.pid, signal.SIGKILL)
    p.wait(10)
    assert p.returncode == -signal.SIGKILL and reported == 20
    e = store.entry("grid", {"n": 60})
    done = e.load_points()
    assert set(range(21)) <= set(done) and len(done) < 60  # everything it reported, exactly
    for i, vals in done.items():
        assert all(_same_float(vals[k], v) for k, v in value(i).items()), i
    # Resume: the lock died with the process; only the missing points are computed.
    computed = []
    with e.lock(timeout=5):
        assert e.result() is None
        have = e.load_points()
        for i in range(60):
            if i not in have:
                have[i] = value(i)
                computed.append(i)
                e.append_points([(i, have[i])])
        loss = np.array([have[i]["loss"] for i in range(60)])
        e.save_result({"loss": loss})
        e.clear_points()
    assert len(computed) == 60 - len(done)
    r = e.result()
    assert all(_same_float(float(r.arrays["loss"][i]), value(i)["loss"]) for i in range(60))
    assert e.load_points() == {}


# ---------------------------------------------------------------------------------------------------------------
# list / get / delete / export


def _dir_size(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def test_list_get_delete(store, tmp_path):
    done = store.entry("landscape", {"model": "mae", "n": 3})
    done.save_result({"loss": np.ones((3, 3))}, {"tag": "a"}, code_version="v1")
    partial = store.entry("flatness", {"model": "vit"})
    partial.append_points([(0, {"loss": 1.0}), (1, {"loss": 2.0}), (1, {"loss": 2.5})])
    partial.flush_points()

    infos = store.list()
    assert {(i.kind, i.key_hash) for i in infos} == {("landscape", done.key_hash), ("flatness", partial.key_hash)}
    (d,) = store.list("landscape")
    assert d.finished and d.key == {"model": "mae", "n": 3} and d.meta["meta"] == {"tag": "a"}
    assert d.meta["code_version"] == "v1" and d.path == done.path and d.n_points_logged == 0
    assert d.size_bytes == _dir_size(done.path)
    (p,) = store.list("flatness")
    assert not p.finished and p.meta is None and p.n_points_logged == 2
    assert store.list("nothing_here") == []

    for h in (d.key_hash, d.key_hash[:20], d.key_hash[:8]):
        again = store.get("landscape", h)
        assert again.key == d.key and again.key_hash == d.key_hash
        np.testing.assert_array_equal(again.result().arrays["loss"], np.ones((3, 3)))
    with pytest.raises(LandscapeError):
        store.get("landscape", "0" * 20)
    with pytest.raises(LandscapeError):
        store.get("landscape", "../../etc")
    for name in ("abcdef" + "0" * 14, "abcdef" + "1" * 14):
        (store.root / "landscape" / name).mkdir()
    with pytest.raises(LandscapeError, match="ambiguous"):
        store.get("landscape", "abcdef")

    with partial.lock():
        with pytest.raises(LandscapeError, match="in use"):
            store.delete("flatness", p.key_hash)
    store.delete("flatness", p.key_hash)
    assert not partial.path.exists()
    assert [i.kind for i in store.list()] == ["landscape"]
    with pytest.raises(LandscapeError):
        store.delete("flatness", p.key_hash)
    for kind, h in [("..", d.key_hash), ("landscape", "../" + d.key_hash), ("landscape", "zz")]:
        with pytest.raises(LandscapeError):
            store.delete(kind, h)

    # An entry folder that is a symlink to somewhere else is refused, and the target survives.
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    (store.root / "landscape" / ("a" * 20)).symlink_to(outside)
    with pytest.raises(LandscapeError):
        store.delete("landscape", "a" * 20)
    assert (outside / "keep.txt").exists()


def test_export_npz_and_csv(store, tmp_path):
    rng = np.random.default_rng(1)
    arrays = {
        "grid": rng.normal(size=(2, 3)),
        "line": np.array([0.1, math.nan, -math.inf]),
        "count": np.array([1, 2], dtype=np.int32),
        "centre": np.array(1 / 3),
        "cube": np.zeros((2, 2, 2)),
    }
    e = store.entry("landscape", {"x": 1})
    with pytest.raises(LandscapeError, match="no finished"):
        e.export_csv(tmp_path / "early.csv")
    e.save_result(arrays)

    npz = e.export_npz(tmp_path / "out.npz")
    with np.load(npz, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(arrays)
        for k, a in arrays.items():
            np.testing.assert_array_equal(z[k], a)

    rows = list(csv.DictReader(open(e.export_csv(tmp_path / "out.csv"), newline="")))
    assert rows and set(rows[0]) == {"array", "i", "j", "value"}
    assert not any(r["array"] == "cube" for r in rows)  # >2-D arrays are left out
    rebuilt = {
        "grid": np.full((2, 3), np.nan),
        "line": np.full(3, 0.0),
        "count": np.zeros(2, dtype=np.int32),
        "centre": np.array(0.0),
    }
    for r in rows:
        a = rebuilt[r["array"]]
        idx = tuple(int(r[c]) for c in ("i", "j") if r[c] != "")
        a[idx] = float(r["value"]) if a.dtype.kind == "f" else int(r["value"])
    assert len(rows) == 6 + 3 + 2 + 1
    for k, a in rebuilt.items():
        np.testing.assert_array_equal(a, arrays[k])  # exact: floats are written by repr
    with pytest.raises(LandscapeError):
        e.export_csv(tmp_path / "missing_dir" / "x.csv")


# ---------------------------------------------------------------------------------------------------------------
# A full disk: os.write fails with ENOSPC from the N-th write into the cache on (deterministic), and once on a real
# small tmpfs (root only). Each case gives one `error: no space left on ...` line, leaves no half-written entry, and
# the same command resumes after space returns and equals a clean run.

import errno as _errno  # noqa: E402 - this section's own imports
import re as _re  # noqa: E402

from core.app.cli import main as cli_main  # noqa: E402
from core.errors import DiskFull, WriteFailed  # noqa: E402

DISK_FULL_LINE = _re.compile(
    r"^error: no space left on \S+ \([0-9.]+ (B|KiB|MiB|GiB|TiB) free\); the finished points are kept$"
)


class FillingDisk:
    """Makes `os.write` into files under `root` fail with ENOSPC once `budget` writes there have succeeded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
        self.root = str(Path(root).resolve())
        self.budget: int | None = None
        self.failures = 0
        real = os.write

        def write(fd: int, data) -> int:
            if self.budget is not None:
                try:
                    target = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    target = ""
                if target.startswith(self.root):
                    if self.budget <= 0:
                        self.failures += 1
                        raise OSError(_errno.ENOSPC, "No space left on device")
                    self.budget -= 1
            return real(fd, data)

        monkeypatch.setattr(os, "write", write)

    def fill_after(self, n: int) -> None:
        self.budget = n

    def free(self) -> None:
        self.budget = None


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _report(capsys, text: str) -> None:
    """Show what a case printed (with -s), outside the captured output the test reads."""
    with capsys.disabled():
        print(f"\n  {text}")


def assert_disk_full(rc: int, err: str) -> str:
    """Exit 1, no traceback, and the last stderr line is the one disk-full line."""
    assert rc == 1, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert DISK_FULL_LINE.match(last), last
    return last


def assert_nothing_half_written(root: Path) -> None:
    """Every entry that has a commit marker verifies; no temp file, no entry set aside as corrupt."""
    store = Store(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # a damaged entry would warn
        for info in store.list():
            if info.finished:
                assert store.get(info.kind, info.key_hash).result() is not None, info.path
    assert not list(root.rglob(".corrupt")), list(root.rglob(".corrupt"))
    assert not [p for p in root.rglob("*.tmp")], list(root.rglob("*.tmp"))


def test_write_errors_are_one_line_user_errors(tmp_path, monkeypatch):
    disk = FillingDisk(monkeypatch, tmp_path)
    disk.fill_after(0)
    with pytest.raises(DiskFull, match=r"no space left on .*x\.json \(.* free\); the finished points are kept"):
        atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert not list(tmp_path.iterdir())  # the temp file is gone too
    disk.free()
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(WriteFailed, match="cannot write .*Permission denied"):
            atomic_write_bytes(tmp_path / "ro" / "f", b"x")
    e = Store(tmp_path / "c").entry("landscape", {"k": 1})
    e.append_points([(0, {"loss": 1.0})])
    disk.fill_after(0)
    with pytest.raises(DiskFull):
        e.append_points([(1, {"loss": 2.0})])
    disk.free()
    e.append_points([(2, {"loss": 3.0})])  # a fresh log after the failed one: never appends after a torn line
    assert e.load_points() == {0: {"loss": 1.0}, 2: {"loss": 3.0}}


LANDSCAPE_ARGS = ["--grid", "9", "--span", "0.5", "--samples", "32"]


def test_full_disk_under_a_landscape_resumes_equal(trained_ckpts, tmp_path, monkeypatch, capsys):
    clean = tmp_path / "clean"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(clean))
    rc, out, err = _cli(["landscape", trained_ckpts["mae"], *LANDSCAPE_ARGS], capsys)
    assert rc == 0, err
    with np.load(out.strip().splitlines()[-1]) as z:
        want = z["loss"].copy()

    cache = tmp_path / "full"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    disk = FillingDisk(monkeypatch, cache)
    disk.fill_after(40)  # key.json and 39 grid points, then the disk is full
    rc, out, err = _cli(["landscape", trained_ckpts["mae"], *LANDSCAPE_ARGS], capsys)
    line = assert_disk_full(rc, err)
    _report(capsys, f"landscape: {line}")
    assert not out
    assert_nothing_half_written(cache)
    (info,) = Store(cache).list("landscape")
    assert not info.finished and info.n_points_logged == 39

    disk.free()
    rc, out, err = _cli(["landscape", trained_ckpts["mae"], *LANDSCAPE_ARGS], capsys)
    assert rc == 0, err
    assert "81 points, 39 from the cache" in err
    with np.load(out.strip().splitlines()[-1]) as z:
        np.testing.assert_array_equal(z["loss"], want)  # bit for bit


def _flatness_numbers(report_json: str) -> dict:
    d = json.loads(report_json)
    return {k: d[k] for k in ("top_eigenvalues", "trace", "sharpness", "robustness") if k in d}


FLATNESS_ARGS = ["--samples", "32", "--top-k", "1", "--max-iter", "6", "--probes", "3", "--sharpness-samples", "2"]
FLATNESS_ARGS += ["--draws", "1", "--sigmas", "0", "0.1", "--json"]


def test_full_disk_under_a_flatness_report_resumes_equal(trained_ckpts, tmp_path, monkeypatch, capsys):
    clean = tmp_path / "clean"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(clean))
    rc, out, err = _cli(["flatness", trained_ckpts["sup"], *FLATNESS_ARGS], capsys)
    assert rc == 0, err
    want = _flatness_numbers(out.strip().splitlines()[-1])

    cache = tmp_path / "full"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    disk = FillingDisk(monkeypatch, cache)
    disk.fill_after(9)  # the eigenvalue stage's key file and journal steps, then the disk is full mid-stage
    rc, out, err = _cli(["flatness", trained_ckpts["sup"], *FLATNESS_ARGS], capsys)
    line = assert_disk_full(rc, err)
    _report(capsys, f"flatness: {line}")
    assert "journal.bin" in line
    assert_nothing_half_written(cache)
    assert any(not i.finished and i.n_steps_logged > 0 for i in Store(cache).list("flatness"))

    disk.free()
    rc, out, err = _cli(["flatness", trained_ckpts["sup"], *FLATNESS_ARGS], capsys)
    assert rc == 0, err
    got = json.loads(out.strip().splitlines()[-1])
    assert sum(got["meta"]["reused_steps"].values()) > 0  # it resumed from the journal
    assert _flatness_numbers(out.strip().splitlines()[-1]) == want


def test_full_disk_under_training_resumes_equal(tmp_path, monkeypatch, capsys):
    import torch

    args = ["train", "--model", "mae", "--preset", "micro", "--data", "synthetic", "--epochs", "3"]
    args += ["--batch-size", "64", "--max-train", "128"]
    clean = tmp_path / "clean"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(clean))
    rc, out, err = _cli(args, capsys)
    assert rc == 0, err
    want = torch.load(out.strip().splitlines()[-1], weights_only=True)

    cache = tmp_path / "full"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    disk = FillingDisk(monkeypatch, cache)
    disk.fill_after(1)  # the state after epoch 1 is written, the one after epoch 2 is not
    rc, out, err = _cli(args, capsys)
    line = assert_disk_full(rc, err)
    _report(capsys, f"training: {line}")
    assert ".resume" in line
    assert not list((cache / "checkpoints").glob("*.pt"))  # no half-written checkpoint
    assert not list(cache.rglob("*.tmp"))

    disk.free()
    rc, out, err = _cli(args, capsys)
    assert rc == 0, err
    assert "resumed after epoch 1" in err
    got = torch.load(out.strip().splitlines()[-1], weights_only=True)
    for name in ("model", "teacher") if "teacher" in want else ("model",):
        for k, v in want[name].items():
            assert torch.equal(got[name][k], v), k


def test_full_disk_under_an_export_leaves_no_file(trained_ckpts, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    rc, out, err = _cli(["landscape", trained_ckpts["sup"], "--grid", "5", "--samples", "32"], capsys)
    assert rc == 0, err
    (info,) = Store(tmp_path / "cache").list("landscape")
    exports = tmp_path / "exports"
    exports.mkdir()
    disk = FillingDisk(monkeypatch, exports)
    for name in ("s.csv", "s.npz"):
        disk.fill_after(0)
        rc, out, err = _cli(["cache", "export", info.key_hash, exports / name], capsys)
        line = assert_disk_full(rc, err)
        _report(capsys, f"export: {line}")
        assert not (exports / name).exists() and not list(exports.glob(".*.tmp"))  # no file, no temp file
        disk.free()
        rc, out, err = _cli(["cache", "export", info.key_hash, exports / name], capsys)
        assert rc == 0, err
    # The landscape command's own --out export, into a full folder: the result stays in the cache.
    disk.fill_after(0)
    rc, out, err = _cli(
        ["landscape", trained_ckpts["sup"], "--grid", "5", "--samples", "32", "--out", exports / "o.csv"], capsys
    )
    assert_disk_full(rc, err)
    disk.free()
    assert_nothing_half_written(tmp_path / "cache")
    clean = Store(tmp_path / "cache").get("landscape", info.key_hash).export_csv(tmp_path / "clean.csv")
    assert (exports / "s.csv").read_bytes() == clean.read_bytes()


def test_a_dashboard_job_on_a_full_disk_fails_with_the_line_and_the_registry_goes_on(
    trained_ckpts, tmp_path, monkeypatch
):
    from core.app.profiles import default_surface_spec
    from core.app.registry import JobRegistry
    from core.app.tasks import surfaces_task, train_task
    from core.models.train import TrainConfig

    cache = tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    disk = FillingDisk(monkeypatch, cache)
    reg = JobRegistry()
    try:
        disk.fill_after(3)
        spec = default_surface_spec(str(trained_ckpts["sup"]), grid=5, samples=32)
        job = reg.submit("s", "surface", surfaces_task({"Sup": spec}))
        assert job.wait(120)
        assert job.ok and DISK_FULL_LINE.match("error: " + job.result.errors["Sup"]), job.result.errors
        cfg = TrainConfig(kind="sup", preset="micro", data="synthetic", epochs=2, batch_size=64, max_train=64)
        disk.fill_after(0)
        job = reg.submit("t", "train", train_task(cfg, "Sup"))
        assert job.wait(120)
        assert job.status == "failed" and DISK_FULL_LINE.match("error: " + job.error), job.error
        disk.free()  # space returns: the same requests now succeed on the same registry
        reg.forget("s")  # what the pages' retry does with a finished job that holds an error
        job = reg.submit("s", "surface", surfaces_task({"Sup": spec}))
        assert job.wait(120) and job.ok and not job.result.errors, job.result.errors
    finally:
        reg.shutdown()
    assert_nothing_half_written(cache)


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or sys.platform != "linux":
        return False
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return res.returncode == 0


def test_a_real_full_tmpfs_under_a_landscape(trained_ckpts, tmp_path, monkeypatch, capsys):
    """The same on a real 1 MiB tmpfs filled up to 8 KiB (root only): the estimate refuses the job without --yes,
    with --yes the OS's own ENOSPC gives the line; freed, the rerun resumes and equals a clean run."""
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "1m"):
        pytest.skip("needs root and mount -t tmpfs")
    try:
        filler = mnt / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * (shutil_free(mnt) - 8192))
        monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(mnt / "cache"))
        argv = ["landscape", trained_ckpts["mae"], *LANDSCAPE_ARGS]
        rc, out, err = _cli(argv, capsys)
        assert rc == 1 and "disk" in err and "not started" in err.strip().splitlines()[-1], err
        _report(capsys, "tmpfs, no --yes: " + " | ".join(err.strip().splitlines()[-3:]))
        rc, out, err = _cli([*argv, "--yes"], capsys)
        line = assert_disk_full(rc, err)
        _report(capsys, f"tmpfs: {line}")
        assert_nothing_half_written(mnt / "cache")
        filler.unlink()
        rc, out, err = _cli(argv, capsys)
        assert rc == 0, err
        with np.load(out.strip().splitlines()[-1]) as z:
            got = z["loss"].copy()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "clean"))
    rc, out, err = _cli(argv, capsys)
    with np.load(out.strip().splitlines()[-1]) as z:
        np.testing.assert_array_equal(z["loss"], got)


def shutil_free(path: Path) -> int:
    import shutil

    return shutil.disk_usage(path).free


def test_the_estimate_counts_the_disk_and_refuses_what_cannot_fit(trained_ckpts, tmp_path, monkeypatch, capsys):
    """With 1000 bytes free in the cache, a landscape and a flatness report are refused before any work (the CLI
    unless --yes, a dashboard job always); the estimate names both numbers; nothing is written but the key."""
    # this test's imports stay here, with the test they serve
    import core.errors
    import core.measure.flatness
    import core.measure.surfaces
    from core.app.profiles import default_surface_spec
    from core.app.registry import JobRegistry
    from core.app.tasks import surfaces_task

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    # the estimates look the free space up where they are computed (a full disk everywhere they ask)
    for module in (core.errors, core.measure.surfaces, core.measure.flatness):
        monkeypatch.setattr(module, "free_bytes", lambda path: 1000)
    rc, out, err = _cli(["landscape", trained_ckpts["sup"], "--grid", "5", "--samples", "16"], capsys)
    lines = err.strip().splitlines()
    assert rc == 1 and "disk ~" in lines[0] and "of 1000 B free" in lines[0], err
    assert lines[-1].startswith("error: not started: 25 points") and "of 1000 B free" in lines[-1], err
    _report(capsys, f"estimate: {lines[0]} | {lines[-1]}")
    rc, out, err = _cli(["flatness", trained_ckpts["sup"], *FLATNESS_ARGS], capsys)
    assert rc == 1 and "error: not started" in err.strip().splitlines()[-1] and "of 1000 B free" in err, err
    assert not [i for i in Store(tmp_path / "cache").list() if i.finished or i.n_points_logged]
    reg = JobRegistry()
    try:
        spec = default_surface_spec(str(trained_ckpts["sup"]), grid=5, samples=16)
        job = reg.submit("s", "surface", surfaces_task({"Sup": spec}))
        assert job.wait(120) and job.ok and "not started" in job.result.errors["Sup"], job.result.errors
    finally:
        reg.shutdown()
    rc, out, err = _cli(["landscape", trained_ckpts["sup"], "--grid", "5", "--samples", "16", "--yes"], capsys)
    assert rc == 0, err  # --yes runs it (here the disk is not really full)
