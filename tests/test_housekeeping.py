"""Cache housekeeping (core/store/housekeeping.py): listing with sizes and last use, pruning least recently used first,
never an entry in use or the Overview's defaults (unless asked), --dry-run deletes nothing, the LANDSCAPE_CACHE_MAX
cap after each job, and the CLI's `cache list --all` / `cache prune`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core.app.cli import main as cli_main
from core.app.profiles import overview_defaults
from core.errors import LandscapeError
from core.store.housekeeping import apply_cache_cap, list_items, parse_age, parse_size, prune
from core.store.store import Store

REPO = Path(__file__).resolve().parent.parent
DAY = 86400.0


def items_of(root) -> list:
    """`list_items` with the Overview's defaults marked (as the CLI and the Runs page call it)."""
    return list_items(root, overview_defaults())


def prune_(root, **kw):
    """`prune` as the CLI and the Runs page call it (knowing what the Overview's defaults are)."""
    return prune(root, overview=overview_defaults(), **kw)


def test_parse_size_and_age():
    assert parse_size("5GB") == 5 * 10**9 and parse_size("2GiB") == 2 * 2**30 and parse_size("1.5m") == 1_500_000
    assert parse_size("123") == 123 and parse_size(" 10 KiB ") == 10240
    assert parse_age("30d") == 30 * DAY and parse_age("12h") == 12 * 3600 and parse_age("90m") == 5400
    assert parse_age("2w") == 14 * DAY and parse_age("3600") == 3600
    for bad in ("", "five", "5XB", "-1GB"):
        with pytest.raises(LandscapeError, match="not a size"):
            parse_size(bad)
    with pytest.raises(LandscapeError, match="not an age"):
        parse_age("soon")


def _entries(root: Path, n: int, size: int = 10_000) -> list:
    """n finished store entries, entry i last used i days ago (the folder's mtime), each ~`size` bytes."""
    store = Store(root)
    out = []
    now = time.time()
    for i in range(n):
        e = store.entry("landscape", {"i": i})
        with e.lock():
            e.save_result({"x": np.zeros(size // 8)}, {"i": i})
        t = now - i * DAY
        os.utime(e.path, (t, t))
        out.append(e)
    return out


def test_lru_order_max_size_and_dry_run(tmp_path):
    entries = _entries(tmp_path, 5)
    items = items_of(tmp_path)
    assert [i.name for i in items] == [e.path.name for e in reversed(entries)]  # least recently used first
    total = sum(i.size_bytes for i in items)
    fit = total - items[0].size_bytes - items[1].size_bytes  # room for all but the two least recently used

    before = sorted(p for p in tmp_path.rglob("*"))
    plan = prune_(tmp_path, max_size=fit, dry_run=True)
    assert [i.name for i in plan.removed] == [entries[4].path.name, entries[3].path.name]
    assert sorted(p for p in tmp_path.rglob("*")) == before  # --dry-run deletes nothing
    assert "would remove 2 items" in plan.describe()

    done = prune_(tmp_path, max_size=fit)
    assert [i.name for i in done.removed] == [i.name for i in plan.removed]
    assert done.size_after <= fit and not done.failed
    assert [e.path.exists() for e in entries] == [True, True, True, False, False]
    assert not list(tmp_path.glob("landscape/.trash-*"))

    # By age: everything unused for over 1.5 days (entry 2); entries 0 and 1 stay.
    res = prune_(tmp_path, older_than=1.5 * DAY)
    assert [i.name for i in res.removed] == [entries[2].path.name]
    assert Store(tmp_path).entry("landscape", {"i": 0}).result() is not None
    with pytest.raises(LandscapeError, match="needs --max-size"):
        prune_(tmp_path)
    with pytest.raises(ValueError, match="overview"):
        prune(tmp_path, max_size=0)  # never blind to the defaults


def test_a_read_marks_the_entry_used(tmp_path):
    (old, new) = _entries(tmp_path, 2)
    os.utime(old.path, (time.time() - 9 * DAY,) * 2)
    os.utime(new.path, (time.time() - 5 * DAY,) * 2)
    assert Store(tmp_path).entry("landscape", {"i": 0}).result() is not None  # a read of the older one
    assert [i.name for i in items_of(tmp_path)] == [new.path.name, old.path.name]
    assert prune_(tmp_path, max_size=1).removed[0].name == new.path.name


_HOLDER = """
import sys, time
from core.store.store import Store
lock = Store(sys.argv[1]).entry("landscape", {"i": int(sys.argv[2])}).lock()
print("locked", flush=True)
time.sleep(60)
"""


def test_prune_never_removes_a_locked_entry(tmp_path):
    entries = _entries(tmp_path, 3)
    here = entries[2].lock()  # held in this process (a dashboard job's thread)
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path), "1"], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"  # held by another process
        res = prune_(tmp_path, max_size=0, older_than=0)
        assert [i.name for i in res.removed] == [entries[0].path.name]
        assert {i.name for i in res.kept_in_use} == {entries[1].path.name, entries[2].path.name}
        assert entries[1].path.exists() and entries[2].path.exists()
        assert "2 in use" in res.describe()
    finally:
        proc.kill()
        proc.wait()
        here.release()
    assert [i.name for i in prune_(tmp_path, max_size=0).removed] == [entries[2].path.name, entries[1].path.name]


def test_defaults_are_kept_unless_asked(dashboard_cache_pristine, trained_ckpts, tmp_path, monkeypatch, capsys):
    """On a copy of the prepared quick-profile cache plus unrelated work: pruning everything leaves exactly what
    the Overview needs, proven by replaying the first-run job, which then computes nothing new."""
    from core.app.first_run import prepare_defaults_task
    from core.app.profiles import dashboard_profile
    from core.app.registry import JobRegistry

    cache = tmp_path / "cache"
    shutil.copytree(dashboard_cache_pristine, cache)
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    other = cache / "checkpoints" / "mae_other_run_0123456789.pt"  # a model of someone's what-if
    shutil.copy2(trained_ckpts["mae"], other)
    assert cli_main(["landscape", str(other), "--dim", "1", "--grid", "5", "--samples", "16"]) == 0
    stale = Store(cache).entry("landscape", {"stale": True})
    stale.append_points([(0, {"loss": 1.0})])  # an unfinished entry of a job killed long ago
    capsys.readouterr()

    items = items_of(cache)
    defaults = {(i.kind, i.name) for i in items if i.default}
    kinds = {k for k, _ in defaults}
    assert {"checkpoints", "landscape", "flatness", "inference"} <= kinds, kinds
    assert not any(i.default for i in items if i.name in (other.stem, stale.path.name))

    assert cli_main(["cache", "prune", "--max-size", "0", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"would remove checkpoints {other.stem}" in err and "defaults" in err, err
    assert {(i.kind, i.name) for i in items_of(cache)} == {(i.kind, i.name) for i in items}

    res = prune_(cache, max_size=0)
    assert {(i.kind, i.name) for i in items_of(cache)} == defaults
    assert not other.exists() and not stale.path.exists() and res.freed_bytes > 0

    n_dirs = sum(1 for _ in cache.rglob("*"))
    reg = JobRegistry()
    try:
        job = reg.submit("prepare", "prepare", prepare_defaults_task(dashboard_profile()))
        assert job.wait(120) and job.ok, job.error
        assert not job.result.errors and not job.result.surfaces.errors and not job.result.flatness.errors
    finally:
        reg.shutdown()
    assert sum(1 for _ in cache.rglob("*")) == n_dirs  # nothing was recomputed: the Overview had all it needs

    res = prune_(cache, max_size=0, include_defaults=True)
    assert not items_of(cache) and len(res.removed) == len(defaults)


def test_cli_list_all_and_prune_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    entries = _entries(tmp_path, 2)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "x_run.pt").write_bytes(b"\0" * 2048)
    assert cli_main(["cache", "list", "--all"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path.resolve())
    lines = err.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("total ")
    assert lines[0].split()[:2] == ["landscape", entries[1].path.name]  # least recently used first
    assert "used " in lines[0] and "KiB" in lines[0] and any("x_run" in ln and "2.0 KiB" in ln for ln in lines)
    assert cli_main(["cache", "list"]) == 0  # the store entries, with last use
    assert all("used " in ln for ln in capsys.readouterr().err.strip().splitlines())
    for argv, match in (
        (["cache", "prune"], "needs --max-size"),
        (["cache", "prune", "--max-size", "lots"], "not a size"),
        (["cache", "prune", "--older-than", "soon"], "not an age"),
    ):
        assert cli_main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and match in err[0], err


def test_cache_cap_after_each_job(tmp_path, monkeypatch):
    from core.app.profiles import cache_cap_after_job
    from core.app.registry import JobRegistry

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    entries = _entries(tmp_path, 3)
    assert apply_cache_cap(overview=overview_defaults()) is None  # no cap set: nothing happens
    monkeypatch.setenv("LANDSCAPE_CACHE_MAX", "15KB")  # room for about one entry

    def job(ctx):
        e = Store().entry("landscape", {"new": 1})
        with e.lock():
            e.save_result({"x": np.zeros(10_000 // 8)})
        return str(e.path)

    reg = JobRegistry(after_job=cache_cap_after_job)  # the dashboard's registry (pages/_ui.py)
    try:
        j = reg.submit("k", "new entry", job)
        assert j.wait(60) and j.ok, j.error
    finally:
        reg.shutdown()
    assert Path(j.result).exists()  # what the job made is kept even though it alone nearly fills the cap
    assert [e.path.exists() for e in entries] == [False, False, False]
    monkeypatch.setenv("LANDSCAPE_CACHE_MAX", "a lot")
    assert apply_cache_cap(overview=overview_defaults()) is None  # a bad cap never fails a job


def test_runs_page_shows_the_size_and_prunes_after_a_preview(dashboard_cache_pristine, tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.report.i18n import t

    cache = tmp_path / "cache"
    shutil.copytree(dashboard_cache_pristine, cache)
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    stale = _entries(cache, 2)[1]  # not a default, last used a day ago
    defaults_before = {(i.kind, i.name) for i in items_of(cache) if i.default}
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.switch_page("pages/runs.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("The cache holds" in c.value and "free on its disk" in c.value for c in at.caption)
    at.text_input(key="runs.max_size").set_value("0").run()  # preview: everything that may go
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("would remove 2 items" in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert stale.path.exists()  # the preview deleted nothing
    assert at.button(key="runs.prune_now").disabled  # needs the confirmation first
    at.checkbox(key="runs.prune_confirm").check().run()
    at.button(key="runs.prune_now").click().run()
    assert not at.exception and not at.error
    assert any("removed 2 items" in s.value for s in at.success), [s.value for s in at.success]
    assert not stale.path.exists()
    assert {(i.kind, i.name) for i in items_of(cache)} == defaults_before
    assert t("runs.prune_now", "ja") != t("runs.prune_now", "en")
    st.cache_data.clear()
    st.cache_resource.clear()
