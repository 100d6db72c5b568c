"""The background job registry: deduplication, FIFO order, failures, cancellation, partial results, threads."""

from __future__ import annotations

import threading
import time

import pytest

from core.app.registry import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobContext, JobRegistry, error_line
from core.errors import LandscapeError

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
