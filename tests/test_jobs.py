"""The background job registry: deduplication, FIFO order, failures, cancellation, partial results, threads."""

from __future__ import annotations

import os
import threading
import time

import pytest

from core.errors import LandscapeError
from core.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobContext, JobRegistry, error_line

TIMEOUT = 10.0


@pytest.fixture
def reg():
    r = JobRegistry(max_workers=1)
    yield r
    r.shutdown(cancel=True, timeout=2.0)


def _blocker() -> tuple[threading.Event, threading.Event, callable]:
    """A job function that signals when it starts and waits for a release."""
    started, release = threading.Event(), threading.Event()

    def fn(ctx: JobContext) -> str:
        started.set()
        release.wait(TIMEOUT)
        return "released"

    return started, release, fn


def test_result_and_progress(reg):
    def fn(ctx: JobContext) -> int:
        ctx.progress(0.5, "half")
        ctx.progress(7, "clamped")  # out of range: clamped
        return 6 * 7

    job = reg.submit("a", "answer", fn)
    assert job.wait(TIMEOUT)
    assert job.status == DONE and job.ok and not job.active
    assert job.result == 42
    assert job.fraction == 1.0
    assert job.message == "clamped"
    assert job.error is None
    assert job.created <= job.started <= job.finished
    assert reg.get("a") is job
    assert reg.get("missing") is None


def test_progress_fraction_is_clamped_while_running(reg):
    seen = []
    gate = threading.Event()

    def fn(ctx: JobContext) -> None:
        ctx.progress(-3, "neg")
        seen.append(reg.get("c").fraction)
        ctx.progress(0.25)
        seen.append((reg.get("c").fraction, reg.get("c").message))
        ctx.progress(float("nan"))
        seen.append(reg.get("c").fraction)
        gate.set()

    reg.submit("c", "clamp", fn).wait(TIMEOUT)
    assert gate.is_set()
    assert seen == [0.0, (0.25, "neg"), 0.0]


def test_dedup_returns_the_same_job_while_queued_running_or_done(reg):
    started, release, fn = _blocker()
    calls = []

    def counted(ctx: JobContext) -> str:
        calls.append(1)
        return fn(ctx)

    j1 = reg.submit("k", "first", counted)
    assert started.wait(TIMEOUT)
    assert j1.status == RUNNING
    assert reg.submit("k", "second", counted) is j1  # running
    j_other = reg.submit("other", "queued", lambda ctx: "x")
    assert j_other.status == QUEUED
    assert reg.submit("other", "again", lambda ctx: "y") is j_other  # queued
    release.set()
    assert j1.wait(TIMEOUT) and j_other.wait(TIMEOUT)
    assert reg.submit("k", "third", counted) is j1  # done: cached
    assert len(calls) == 1
    assert j_other.result == "x"
    assert j1.label == "first"


def test_failed_job_is_resubmitted(reg):
    attempts = []

    def flaky(ctx: JobContext) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise LandscapeError("the checkpoint is broken\nsecond line is dropped")
        return "ok"

    j1 = reg.submit("f", "flaky", flaky)
    j1.wait(TIMEOUT)
    assert j1.status == FAILED
    assert j1.error == "the checkpoint is broken"
    j2 = reg.submit("f", "flaky", flaky)
    assert j2 is not j1
    j2.wait(TIMEOUT)
    assert j2.status == DONE and j2.result == "ok"
    assert len(attempts) == 2


def test_internal_errors_are_one_line_and_marked(reg):
    def bad(ctx: JobContext) -> None:
        raise ZeroDivisionError("division by zero\nmore")

    job = reg.submit("z", "bad", bad)
    job.wait(TIMEOUT)
    assert job.status == FAILED
    assert job.error == "internal error: ZeroDivisionError: division by zero"
    assert "\n" not in job.error
    # The worker survived the failure.
    assert reg.submit("after", "after", lambda ctx: 1).wait(TIMEOUT)
    assert reg.get("after").result == 1


def test_error_line():
    assert error_line(LandscapeError("plain reason")) == "plain reason"
    assert error_line(KeyError("x")) == "internal error: KeyError: 'x'"
    assert error_line(LandscapeError("")) == "failed"


def test_fifo_order_with_one_worker(reg):
    started, release, fn = _blocker()
    order = []
    reg.submit("block", "block", fn)
    assert started.wait(TIMEOUT)
    keys = [f"j{i}" for i in range(6)]
    for k in keys:
        reg.submit(k, k, lambda ctx, k=k: order.append(k))
    assert [j.status for j in reg.jobs()[1:]] == [QUEUED] * 6
    release.set()
    for k in keys:
        assert reg.wait(k, TIMEOUT).status == DONE
    assert order == keys
    assert [j.key for j in reg.jobs()] == ["block", *keys]  # oldest first


def test_cancel_queued_job_never_runs(reg):
    started, release, fn = _blocker()
    ran = []
    reg.submit("block", "block", fn)
    assert started.wait(TIMEOUT)
    queued = reg.submit("q", "queued", lambda ctx: ran.append(1))
    assert reg.cancel("q") is True
    assert queued.status == CANCELLED and queued.finished is not None
    release.set()
    reg.wait("block", TIMEOUT)
    reg.submit("after", "after", lambda ctx: None).wait(TIMEOUT)
    assert ran == []
    assert reg.cancel("q") is False  # already finished
    assert reg.cancel("nope") is False
    # A cancelled key can be submitted again and then runs.
    again = reg.submit("q", "queued", lambda ctx: ran.append(2))
    assert again is not queued
    again.wait(TIMEOUT)
    assert ran == [2]


def test_cancel_running_job_cooperatively(reg):
    started = threading.Event()
    steps = []

    def loop(ctx: JobContext) -> str:
        started.set()
        for i in range(1000):
            if ctx.should_stop():
                raise LandscapeError("stopped")
            steps.append(i)
            time.sleep(0.005)
        return "finished"

    job = reg.submit("loop", "loop", loop)
    assert started.wait(TIMEOUT)
    time.sleep(0.05)
    assert reg.cancel("loop") is True
    assert job.wait(TIMEOUT)
    assert job.status == CANCELLED
    assert job.error is None  # a requested stop is not a failure
    assert 0 < len(steps) < 1000


def test_cancel_running_job_that_returns(reg):
    started = threading.Event()

    def polite(ctx: JobContext) -> str:
        started.set()
        while not ctx.should_stop():
            time.sleep(0.005)
        return "partial work"

    job = reg.submit("p", "polite", polite)
    assert started.wait(TIMEOUT)
    reg.cancel("p")
    job.wait(TIMEOUT)
    assert job.status == CANCELLED


def test_partial_results_are_visible_while_running(reg):
    step = threading.Event()
    proceed = threading.Event()

    def fn(ctx: JobContext) -> list[int]:
        ctx.set_partial([1])
        ctx.progress(0.3, "coarse")
        step.set()
        proceed.wait(TIMEOUT)
        ctx.set_partial([1, 2])
        return [1, 2, 3]

    job = reg.submit("s", "surface", fn)
    assert step.wait(TIMEOUT)
    assert job.status == RUNNING
    assert job.partial == [1] and job.fraction == pytest.approx(0.3) and job.message == "coarse"
    assert job.elapsed >= 0.0
    proceed.set()
    job.wait(TIMEOUT)
    assert job.partial == [1, 2]
    assert job.result == [1, 2, 3]


def test_many_submits_from_threads():
    reg = JobRegistry(max_workers=2)
    runs: dict[str, int] = {}
    runs_lock = threading.Lock()

    def make(key: str):
        def fn(ctx: JobContext) -> str:
            with runs_lock:
                runs[key] = runs.get(key, 0) + 1
            time.sleep(0.001)
            return key

        return fn

    returned: list[list] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def client(i: int) -> None:
        barrier.wait()
        for n in range(50):
            key = f"k{n % 10}"  # ten distinct keys, each asked for 40 times in all
            returned[i].append(reg.submit(key, key, make(key)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        jobs = reg.jobs()
        assert sorted(j.key for j in jobs) == sorted(f"k{n}" for n in range(10))
        for j in jobs:
            assert j.wait(TIMEOUT)
            assert j.status == DONE and j.result == j.key
        assert runs == {f"k{n}": 1 for n in range(10)}  # each key ran exactly once
        by_key = {j.key: j for j in jobs}
        for lst in returned:
            for j in lst:
                assert j is by_key[j.key]  # every caller got the one shared job
    finally:
        reg.shutdown()


def test_two_workers_run_in_parallel():
    reg = JobRegistry(max_workers=2)
    both = threading.Barrier(2, timeout=TIMEOUT)

    def fn(ctx: JobContext) -> bool:
        both.wait()  # only passes if two jobs run at the same time
        return True

    try:
        a, b = reg.submit("a", "a", fn), reg.submit("b", "b", fn)
        assert a.wait(TIMEOUT) and b.wait(TIMEOUT)
        assert a.result is True and b.result is True
    finally:
        reg.shutdown()


def test_forget_and_shutdown():
    reg = JobRegistry()
    started, release, fn = _blocker()
    reg.submit("run", "run", fn)
    assert started.wait(TIMEOUT)
    queued = reg.submit("q", "q", lambda ctx: 1)
    reg.forget("run")  # active: kept
    assert reg.get("run") is not None
    release.set()
    reg.wait("run", TIMEOUT)
    reg.wait("q", TIMEOUT)
    reg.forget("run")
    assert reg.get("run") is None
    reg.shutdown()
    assert queued.status == DONE
    with pytest.raises(RuntimeError):
        reg.submit("late", "late", lambda ctx: 1)


def test_shutdown_cancels_queued_work():
    reg = JobRegistry()
    started, release, fn = _blocker()

    def stoppable(ctx: JobContext) -> None:
        started.set()
        while not ctx.should_stop():
            time.sleep(0.005)

    reg.submit("run", "run", stoppable)
    assert started.wait(TIMEOUT)
    q = reg.submit("q", "q", lambda ctx: 1)
    reg.shutdown(cancel=True, timeout=TIMEOUT)
    assert q.status == CANCELLED
    assert reg.get("run").status == CANCELLED
    release.set()


def test_queue_only_registry_runs_nothing():
    reg = JobRegistry(max_workers=0)
    job = reg.submit("k", "k", lambda ctx: 1)
    assert not job.wait(0.2)
    assert job.status == QUEUED
    assert reg.cancel("k") and job.status == CANCELLED
    reg.shutdown()
    with pytest.raises(ValueError):
        JobRegistry(max_workers=-1)


# ----------------------------------------------------------------------------------------------------------------------
# The dashboard's task helpers

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

from core import jobs  # noqa: E402


def test_nested_levels():
    assert jobs.nested_levels(17) == [5, 9, 17]
    assert jobs.nested_levels(5) == [5]
    assert jobs.nested_levels(33) == [5, 9, 17, 33]
    assert jobs.nested_levels(21) == [21]  # not 2**k + 1: no shared coarse levels


def _fake_surface(n: int, finite_step: int | None, dim: int = 2):
    xs = np.linspace(-0.5, 0.5, n)
    full = np.add.outer(xs**2, 2 * xs**2) if dim == 2 else xs**2
    loss = np.full_like(full, np.nan)
    if finite_step is None:
        loss = full.copy()
    elif dim == 2:
        loss[::finite_step, ::finite_step] = full[::finite_step, ::finite_step]
        loss[1, 2] = 7.0  # a stray finished point of the next level must not break the coarse picture
    else:
        loss[::finite_step] = full[::finite_step]
    return SimpleNamespace(xs=xs, ys=xs if dim == 2 else np.zeros(0), loss=loss, complete=finite_step is None), full


def test_coarse_view_picks_the_finest_complete_level():
    s, full = _fake_surface(17, 4)  # the 5x5 level is done
    xs, ys, loss = jobs.coarse_view(s)
    assert loss.shape == (5, 5) and np.isfinite(loss).all()
    np.testing.assert_allclose(xs, np.linspace(-0.5, 0.5, 5))
    np.testing.assert_allclose(loss, full[::4, ::4])
    s, full = _fake_surface(17, 2)  # the 9x9 level is done
    assert jobs.coarse_view(s)[2].shape == (9, 9)
    s, full = _fake_surface(17, None)  # complete: the whole grid
    xs, ys, loss = jobs.coarse_view(s)
    assert loss.shape == (17, 17) and ys is not None
    s, full = _fake_surface(9, 2, dim=1)
    xs, ys, loss = jobs.coarse_view(s)
    assert ys is None and loss.shape == (5,)
    np.testing.assert_allclose(loss, full[::2])
    s, _ = _fake_surface(17, 8)  # only the 3x3 level (corners, edge midpoints, centre)
    assert jobs.coarse_view(s)[2].shape == (3, 3)


def test_confined_path(tmp_path, monkeypatch):
    allowed = tmp_path / "models"
    allowed.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "a.pt").write_bytes(b"x")
    (outside / "b.pt").write_bytes(b"x")
    (allowed / "link.pt").symlink_to(outside / "b.pt")
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LANDSCAPE_ALLOWED_ROOTS", f"{allowed}{os.pathsep}")
    assert jobs.confined_path(str(allowed / "a.pt")) == (allowed / "a.pt").resolve()
    assert jobs.confined_path(f"  {allowed / 'a.pt'}  ") == (allowed / "a.pt").resolve()
    for bad, why in [
        (outside / "b.pt", "outside the allowed folders"),
        (allowed / "link.pt", "outside the allowed folders"),  # a symlink out of the root
        (allowed / ".." / "outside" / "b.pt", "outside the allowed folders"),
        (allowed / "missing.pt", "does not exist"),
        (allowed, "is not a file"),
        ("", "no path given"),
    ]:
        with pytest.raises(LandscapeError, match=why):
            jobs.confined_path(str(bad))
    # The project folder is always allowed; relative paths are taken from it.
    from core.paths import PROJECT_ROOT

    assert jobs.confined_path("pyproject.toml") == (PROJECT_ROOT / "pyproject.toml").resolve()
    monkeypatch.delenv("LANDSCAPE_ALLOWED_ROOTS")
    with pytest.raises(LandscapeError, match="outside"):
        jobs.confined_path(str(allowed / "a.pt"))


def test_variant_config():
    from dataclasses import asdict

    from core.train import TrainConfig

    base = TrainConfig(kind="rcmae", epochs=7, seed=3)
    v = jobs.variant_config(asdict(base) | {"unknown_field": 1}, mask_ratio=0.5, epochs=2, max_train=100)
    assert (v.kind, v.seed, v.mask_ratio, v.epochs, v.max_train) == ("rcmae", 3, 0.5, 2, 100)
    assert v.ema_momentum == base.ema_momentum
    with pytest.raises(LandscapeError, match="mask ratio"):
        jobs.variant_config(asdict(base), mask_ratio=1.5)
    with pytest.raises(LandscapeError, match="no training record"):
        jobs.variant_config({})


def test_profiles_and_task_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("LANDSCAPE_DASHBOARD_PROFILE", raising=False)
    assert jobs.dashboard_profile().name == "full"
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    assert jobs.dashboard_profile().name == "quick"
    trio = jobs.default_trio()
    assert set(trio) == {"mae", "rcmae", "sup"} and all(c.preset == "micro" for c in trio.values())
    assert jobs.default_surface_spec("x.pt").grid == 5
    assert jobs.default_surface_spec("x.pt", grid=9).grid == 9
    with pytest.raises(LandscapeError, match="unknown dashboard profile"):
        jobs.dashboard_profile("nope")
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "a"))
    k1 = jobs.task_key("surfaces", {"grid": 5})
    assert k1 == jobs.task_key("surfaces", {"grid": 5}) and k1.startswith("surfaces:")
    assert k1 != jobs.task_key("surfaces", {"grid": 9})
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "b"))
    assert k1 != jobs.task_key("surfaces", {"grid": 5})  # another cache is other work


def _context() -> tuple[JobContext, list]:
    """A JobContext outside a registry that records what it publishes."""
    from core.jobs import Job

    seen: list = []
    ctx = JobContext(Job("k", "k"), threading.Lock())
    orig = ctx.set_partial

    def record(obj):
        seen.append(obj)
        orig(obj)

    ctx.set_partial = record
    return ctx, seen


def test_surfaces_task_coarse_first_and_per_model_errors(trained_ckpts, tmp_path, monkeypatch):
    from core.surfaces import SurfaceSpec

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    good = SurfaceSpec(str(trained_ckpts["mae"]), grid=9, span=0.5, samples=16, device="cpu")
    bad = SurfaceSpec(str(trained_ckpts["mae"]), loss="supervised", grid=9, samples=16, device="cpu")
    ctx, seen = _context()
    batch = jobs.surfaces_task({"MAE": good, "wrong loss": bad})(ctx)
    assert set(batch.surfaces) == {"MAE"}
    assert "no classifier head" in batch.errors["wrong loss"]
    s = batch.surfaces["MAE"]
    assert s.complete and s.loss.shape == (9, 9) and np.isfinite(s.loss).all()
    # Partial pictures came coarse first: a complete 5x5 before the 9x9, and never a finer level before a coarser one.
    levels = []
    for b in seen:
        if "MAE" in b.surfaces:
            view = jobs.coarse_view(b.surfaces["MAE"])[2]
            if np.isfinite(view).all():  # a clean picture (before the 3x3 is done the raw grid is shown)
                levels.append(view.shape[0])
    assert levels[0] == 3 and 5 in levels and levels == sorted(levels) and levels[-1] == 9, levels
    # The numbers are the direct computation's (the task only schedules).
    from core.surfaces import compute_surface

    direct = compute_surface(good)
    np.testing.assert_allclose(s.loss, direct.loss)
    assert ctx._job.fraction == pytest.approx(1.0)


def test_surfaces_task_does_not_start_what_exceeds_the_time_limit(trained_ckpts, tmp_path, monkeypatch):
    from core.surfaces import SurfaceSpec

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    spec = SurfaceSpec(str(trained_ckpts["mae"]), grid=5, span=0.5, samples=16, device="cpu")
    ctx, _ = _context()
    batch = jobs.surfaces_task({"MAE": spec}, max_seconds=0.0)(ctx)
    assert not batch.surfaces and "not started" in batch.errors["MAE"]
    ctx, _ = _context()
    batch = jobs.surfaces_task({"MAE": spec}, max_seconds=3600.0)(ctx)
    assert batch.surfaces["MAE"].complete


def test_flatness_task_does_not_start_what_exceeds_the_time_limit(trained_ckpts, tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    spec = jobs.default_flatness_spec(
        str(trained_ckpts["mae"]), samples=16, top_k=1, max_iter=5, trace=False, sharpness_rho=None, robustness=False
    )
    ctx, _ = _context()
    batch = jobs.flatness_task({"MAE": spec}, max_seconds=0.0)(ctx)
    assert not batch.reports and "not started" in batch.errors["MAE"]
    ctx, _ = _context()
    batch = jobs.flatness_task({"MAE": spec}, max_seconds=3600.0)(ctx)
    assert batch.reports["MAE"].top_eigenvalues


def test_flatness_points_match_the_reports(dashboard_cache, monkeypatch):
    from core.flatness_run import compute_flatness

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    points = jobs.flatness_points()
    assert sorted(p["kind"] for p in points) == ["mae", "rcmae", "sup"]
    for p in points:
        path = next(i.path for i in __import__("core.zoo").zoo.list_checkpoints() if i.sha256 == p["sha256"])
        rep = compute_flatness(jobs.default_flatness_spec(path))  # cached: read back
        assert p["top_eigenvalue"] == pytest.approx(rep.top_eigenvalues[0])
        assert p["trace"] == pytest.approx(rep.trace)
        assert p["sharpness"] == pytest.approx(rep.sharpness["average"])
        assert p["probe_acc"] == pytest.approx(rep.probe_acc)
        assert p["acc_drop"] == pytest.approx(rep.robustness_drop)
        assert p["basin_width"] > 0


def test_prepare_defaults_second_run_is_cached(dashboard_cache, monkeypatch):
    import time as _time

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
    ctx, seen = _context()
    t0 = _time.perf_counter()
    res = jobs.prepare_defaults_task(jobs.dashboard_profile("quick"))(ctx)
    assert _time.perf_counter() - t0 < 30
    assert res.stage == "done" and not res.errors
    # RC-MAE also on its MAE term: compared with MAE on one function (core.comparison)
    labels = {"MAE", "RC-MAE", "Sup-ViT", "RC-MAE · MAE term"}
    assert set(res.surfaces.surfaces) == labels
    assert all(s.complete and s.meta.get("cached") for s in res.surfaces.surfaces.values())
    assert set(res.flatness.reports) == labels and not res.flatness.errors
    assert all(all(r.meta["cached"].values()) for r in res.flatness.reports.values())
    assert set(res.facts) == {"mae", "rcmae", "sup", "rcmae@rcmae_mae", "generalization"}  # fine-tuning: cached too
    assert res.facts["rcmae"].top_eigenvalue == pytest.approx(res.flatness.reports["RC-MAE"].top_eigenvalues[0])
    term = res.facts["rcmae@rcmae_mae"]
    assert term.function == "rcmae_mae" and term.robustness == res.facts["rcmae"].robustness
    assert term.top_eigenvalue == pytest.approx(res.flatness.reports["RC-MAE · MAE term"].top_eigenvalues[0])
    assert term.top_eigenvalue != pytest.approx(res.facts["rcmae"].top_eigenvalue)  # another function
    stages = [b.stage for b in seen]
    assert stages.index("landscapes") < stages.index("flatness") < stages.index("generalization")
    assert stages.index("generalization") < stages.index("summary")
