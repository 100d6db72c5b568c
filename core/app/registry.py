"""Background jobs that outlive a Streamlit rerun, a page switch or a closed browser tab.

A `JobRegistry` runs callables on worker threads, first in first out, and keeps what they report (progress, a
partial result, the result or a one-line error) where any session can read it. Jobs are deduplicated by key: two
sessions asking for the same landscape share one job. Nothing here imports streamlit; the dashboard keeps one
registry in `st.cache_resource` and polls it from a fragment.

    reg = JobRegistry()
    job = reg.submit("surface:abc", "MAE landscape", lambda ctx: compute(..., progress=ctx.progress))
    ...
    reg.get("surface:abc").status  # queued | running | done | failed | cancelled
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import LandscapeError, is_disk_full, write_error

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED, CANCELLED)


def error_line(exc: BaseException) -> str:
    """The one line a user sees for an exception: a LandscapeError's own text, anything else marked internal."""
    if isinstance(exc, OSError) and is_disk_full(exc):  # a full disk met outside core.store.files' helpers
        exc = write_error(exc)
    if isinstance(exc, LandscapeError):
        text = str(exc).strip().splitlines()
        return text[0] if text else "failed"
    msg = (str(exc).strip().splitlines() or [""])[0]
    return f"internal error: {type(exc).__name__}: {msg}"[:300]


@dataclass
class Job:
    """One unit of background work and what it has reported so far.

    Attributes:
        key: the deduplication key.
        label: a short human description.
        status: queued, running, done, failed or cancelled.
        fraction: progress in [0, 1].
        message: the latest progress message.
        result: the function's return value once done.
        error: one line once failed (a LandscapeError's text as is; other exceptions "internal error: ...").
        partial: the latest partial result the function published (e.g. a coarse surface).
        created, started, finished: `time.time()` stamps (None until reached).
        partial_version: how many partial results were published (a cheap "has it changed" for pollers).
    """

    key: str
    label: str
    status: str = QUEUED
    fraction: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    partial: Any = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    partial_version: int = 0  # bumped by each published partial: pages key what they draw from it by this
    _fn: Callable[[JobContext], Any] | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def ok(self) -> bool:
        return self.status == DONE

    @property
    def elapsed(self) -> float:
        """Seconds since it started (until it finished), 0 while queued."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (any way); True if it did within `timeout`."""
        return self._done.wait(timeout)


class JobContext:
    """What a job function gets: report progress and partial results, and ask whether to stop."""

    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self._job = job
        self._lock = lock

    @property
    def key(self) -> str:
        return self._job.key

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress; `fraction` is clamped to [0, 1]."""
        try:
            f = float(fraction)
        except (TypeError, ValueError):
            f = 0.0
        f = 0.0 if f != f else min(1.0, max(0.0, f))  # NaN -> 0
        with self._lock:
            self._job.fraction = f
            if message:
                self._job.message = str(message)

    def set_partial(self, obj: Any) -> None:
        """Publish a partial result (readers get the latest one; `Job.partial_version` counts them)."""
        with self._lock:
            self._job.partial = obj
            self._job.partial_version += 1

    def should_stop(self) -> bool:
        """True once the job was cancelled: the function should return or raise soon."""
        return self._job._stop.is_set()


class JobRegistry:
    """Runs submitted functions on `max_workers` daemon threads, FIFO, deduplicated by key.

    `max_workers=0` makes a registry that only queues (nothing runs): a read-only dashboard, or tests that must
    show the "preparing" state without training anything. `after_job(job)` runs on the worker after each job and
    before it is marked finished (the dashboard's cache cap, `core.app.profiles.cache_cap_after_job`); whatever it
    raises is logged, never fails the job or the worker.
    """

    def __init__(self, max_workers: int = 1, after_job: Callable[[Job], None] | None = None) -> None:
        if max_workers < 0:
            raise ValueError("max_workers must be 0 or more")
        self._after_job = after_job
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._light: deque[Job] = deque()  # light jobs (describe a checkpoint, read the cache): their own lane
        self._closed = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"landscape-job-{i}", daemon=True) for i in range(max_workers)
        ]
        if max_workers:  # one more thread serves the light lane only, so a long study never queues a lookup
            self._threads.append(
                threading.Thread(target=self._worker, args=(True,), name="landscape-light", daemon=True)
            )
        for t in self._threads:
            t.start()
        _LIVE.add(self)

    # -- public API ------------------------------------------------------------------------------------------------

    def submit(self, key: str, label: str, fn: Callable[[JobContext], Any], light: bool = False) -> Job:
        """Queue `fn(ctx)` under `key`, or return the job already queued, running or finished well under it.

        A failed or cancelled job with the same key is replaced by a fresh one (a retry). A `light` job (seconds of
        work: describe a checkpoint, read a cached result) goes to its own lane, served by its own thread and by any
        idle worker, so it never waits behind a long study.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the job registry is shut down")
            old = self._jobs.get(key)
            if old is not None and old.status in (QUEUED, RUNNING, DONE):
                return old
            job = Job(key=key, label=label, _fn=fn)
            self._jobs[key] = job
            (self._light if light else self._queue).append(job)
            self._wake.notify_all()
            return job

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        """Every job known, oldest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created)

    def cancel(self, key: str) -> bool:
        """Ask a job to stop: a queued job is cancelled at once, a running one when its function next checks.

        Returns True if the job was still queued or running.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is None or job.status not in ACTIVE:
                return False
            job._stop.set()
            if job.status == QUEUED:
                self._finish(job, CANCELLED, message="cancelled before it started")
            return True

    def forget(self, key: str) -> None:
        """Drop a finished job from the registry (its result is released); active jobs are kept."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.status in FINISHED:
                del self._jobs[key]

    def wait(self, key: str, timeout: float | None = None) -> Job | None:
        """Block until the job under `key` has finished (or `timeout` passes); returns it."""
        job = self.get(key)
        if job is not None:
            job.wait(timeout)
        return job

    def shutdown(self, cancel: bool = True, timeout: float | None = 5.0) -> None:
        """Stop accepting work, optionally cancel everything, and let the workers exit."""
        with self._lock:
            self._closed = True
            if cancel:
                for job in self._jobs.values():
                    if job.status in ACTIVE:
                        job._stop.set()
                        if job.status == QUEUED:
                            self._finish(job, CANCELLED, message="cancelled before it started")
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout)

    # -- workers ---------------------------------------------------------------------------------------------------

    def _finish(
        self, job: Job, status: str, *, result: Any = None, error: str | None = None, message: str = ""
    ) -> None:
        # Called with the lock held.
        job.status = status
        job.result = result
        job.error = error
        job.finished = time.time()
        if message:
            job.message = message
        if status == DONE:
            job.fraction = 1.0
        job._fn = None  # release the closure (it may hold models)
        job._done.set()

    def _next(self, light_only: bool = False) -> Job | None:
        with self._lock:
            while True:
                for queue in (self._light,) if light_only else (self._light, self._queue):
                    while queue:
                        job = queue.popleft()
                        if job.status == QUEUED:  # cancelled or replaced jobs are skipped
                            job.status = RUNNING
                            job.started = time.time()
                            return job
                if self._closed:
                    return None
                self._wake.wait()

    def _after(self, job: Job) -> None:
        if self._after_job is None:
            return
        try:
            self._after_job(job)
        except Exception:  # noqa: BLE001 - an after-job hook must never kill a worker
            log.error("after-job hook for %s failed:\n%s", job.key, traceback.format_exc())

    def _worker(self, light_only: bool = False) -> None:
        while True:
            job = self._next(light_only)
            if job is None:
                return
            ctx = JobContext(job, self._lock)
            fn = job._fn
            try:
                result = fn(ctx) if fn is not None else None
            except BaseException as exc:  # noqa: BLE001 - a job must never kill its worker
                stopped = job._stop.is_set()
                if not isinstance(exc, LandscapeError) and not stopped:
                    log.error("job %s failed:\n%s", job.key, traceback.format_exc())
                self._after(job)
                with self._lock:
                    if stopped:
                        self._finish(job, CANCELLED, message="cancelled")
                    else:
                        self._finish(job, FAILED, error=error_line(exc))
                if not isinstance(exc, Exception):
                    raise
                continue
            self._after(job)
            with self._lock:
                if job._stop.is_set():
                    self._finish(job, CANCELLED, result=result, message="cancelled")
                else:
                    self._finish(job, DONE, result=result)


_LIVE: weakref.WeakSet[JobRegistry] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    """Stop every registry's workers before the interpreter finalizes: a daemon thread that is still inside torch
    (or merely holds torch's thread-local pools) when the process exits can abort it ("terminate called ...")."""
    for reg in list(_LIVE):
        reg.shutdown(cancel=True, timeout=5.0)
