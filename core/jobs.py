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
import os
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LandscapeError

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED, CANCELLED)


def error_line(exc: BaseException) -> str:
    """The one line a user sees for an exception: a LandscapeError's own text, anything else marked internal."""
    from core.errors import is_disk_full, write_error

    if isinstance(exc, OSError) and is_disk_full(exc):  # a full disk met outside core.store's helpers
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
    show the "preparing" state without training anything.
    """

    def __init__(self, max_workers: int = 1) -> None:
        if max_workers < 0:
            raise ValueError("max_workers must be 0 or more")
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"landscape-job-{i}", daemon=True) for i in range(max_workers)
        ]
        for t in self._threads:
            t.start()
        _LIVE.add(self)

    # -- public API ------------------------------------------------------------------------------------------------

    def submit(self, key: str, label: str, fn: Callable[[JobContext], Any]) -> Job:
        """Queue `fn(ctx)` under `key`, or return the job already queued, running or finished well under it.

        A failed or cancelled job with the same key is replaced by a fresh one (a retry).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the job registry is shut down")
            old = self._jobs.get(key)
            if old is not None and old.status in (QUEUED, RUNNING, DONE):
                return old
            job = Job(key=key, label=label, _fn=fn)
            self._jobs[key] = job
            self._queue.append(job)
            self._wake.notify()
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

    def _next(self) -> Job | None:
        with self._lock:
            while True:
                while self._queue:
                    job = self._queue.popleft()
                    if job.status == QUEUED:  # cancelled or replaced jobs are skipped
                        job.status = RUNNING
                        job.started = time.time()
                        return job
                if self._closed:
                    return None
                self._wake.wait()

    def _worker(self) -> None:
        while True:
            job = self._next()
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
                _apply_cache_cap(job)
                with self._lock:
                    if stopped:
                        self._finish(job, CANCELLED, message="cancelled")
                    else:
                        self._finish(job, FAILED, error=error_line(exc))
                if not isinstance(exc, Exception):
                    raise
                continue
            _apply_cache_cap(job)
            with self._lock:
                if job._stop.is_set():
                    self._finish(job, CANCELLED, result=result, message="cancelled")
                else:
                    self._finish(job, DONE, result=result)


def _apply_cache_cap(job: Job) -> None:
    """The size cap `LANDSCAPE_CACHE_MAX` after each job (before it is marked finished, so a waiter sees the pruned
    cache); what the job used is kept. Housekeeping never fails a job (`core.housekeeping.apply_cache_cap`)."""
    if not os.environ.get("LANDSCAPE_CACHE_MAX"):
        return
    from core.housekeeping import apply_cache_cap

    try:
        res = apply_cache_cap(job_started=job.started, overview=overview_defaults())
    except Exception:  # noqa: BLE001 - housekeeping must never kill a worker
        log.error("cache cap after job %s failed:\n%s", job.key, traceback.format_exc())
        return
    if res is not None and res.removed:
        log.info("cache cap after job %s: %s", job.key, res.describe())


_LIVE: weakref.WeakSet[JobRegistry] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    """Stop every registry's workers before the interpreter finalizes: a daemon thread that is still inside torch
    (or merely holds torch's thread-local pools) when the process exits can abort it ("terminate called ...")."""
    for reg in list(_LIVE):
        reg.shutdown(cancel=True, timeout=5.0)


# ======================================================================================================================
# The dashboard's tasks: plain functions of plain values that return a `fn(ctx)` for `JobRegistry.submit`.
# They report progress as i18n message keys (`core.i18n.msg`), so the dashboard shows them in the user's language.
# ======================================================================================================================

DEFAULT_GRID = 17  # 2**4 + 1: the 5x5 and 9x9 pictures come first and are reused by the 17x17
# Measured on the default trio (1-D, span 1): the loss is 1.6-2.9x its centre value at |alpha| = 0.5 and 4-9x at 1,
# with basins ~0.11 wide; span 0.5 keeps the basin and its walls in view instead of wasting the grid on the cliffs.
DEFAULT_SPAN = 0.5
COARSE_LEVELS = (5, 9, 17, 33, 65, 129)


@dataclass(frozen=True)
class Profile:
    """What the dashboard prepares on first run: changes to the default trio's training, landscapes and flatness.

    Attributes:
        name: "full" (the real defaults) or "quick" (micro models on synthetic data: demos, CI, browser tests).
        train: TrainConfig fields changed from `core.zoo.default_configs()`.
        surface: SurfaceSpec fields for the default landscapes (grid, span, samples).
        flatness: FlatnessSpec fields for the default flatness numbers.
    """

    name: str
    train: dict
    surface: dict
    flatness: dict


PROFILES = {
    "full": Profile("full", {}, {"grid": DEFAULT_GRID, "span": DEFAULT_SPAN, "samples": 256}, {}),
    # The same runs as tests/conftest.py's `trained_ckpts` (micro, synthetic, 3 epochs): tests reuse those files.
    "quick": Profile(
        "quick",
        {"preset": "micro", "data": "synthetic", "epochs": 3, "batch_size": 32, "warmup_epochs": 1, "n_snapshots": 3},
        {"grid": 5, "span": DEFAULT_SPAN, "samples": 64},
        {
            "samples": 32,
            "top_k": 2,
            "max_iter": 10,
            "trace_probes": 4,
            "sharpness_samples": 2,
            "robustness_draws": 2,
            "sigmas": (0.0, 0.1, 0.3),
        },
    ),
}


def dashboard_profile(name: str | None = None) -> Profile:
    """The profile named, or env `LANDSCAPE_DASHBOARD_PROFILE` ("full" by default).

    Raises:
        LandscapeError: an unknown profile name.
    """
    name = name or os.environ.get("LANDSCAPE_DASHBOARD_PROFILE") or "full"
    if name not in PROFILES:
        raise LandscapeError(f"unknown dashboard profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def default_trio(profile: Profile | None = None) -> dict[str, Any]:
    """kind -> TrainConfig of the default MAE, RC-MAE and Sup-ViT under a profile."""
    from dataclasses import replace

    from core.zoo import default_configs

    profile = profile or dashboard_profile()
    return {kind: replace(cfg, **profile.train) for kind, cfg in default_configs().items()}


def overview_defaults() -> dict[str, Any]:
    """What the Overview needs, for `core.housekeeping` (which never prunes it unless asked): the profiles ("full"
    and the one the dashboard runs), their default trios' checkpoint paths, the default surface and flatness specs."""
    from core.train import checkpoint_path

    profiles = {"full": PROFILES["full"]}
    try:
        current = dashboard_profile()
        profiles[current.name] = current
    except LandscapeError:
        pass
    return {
        "profiles": list(profiles.values()),
        "trios": [{k: checkpoint_path(c) for k, c in default_trio(p).items()} for p in profiles.values()],
        "surfaces": [default_surface_spec("-", **p.surface) for p in profiles.values()],
        "flatness": [default_flatness_spec("-", **p.flatness) for p in profiles.values()],
    }


def task_key(kind: str, *parts: Any) -> str:
    """A job key from plain values: two sessions asking for the same work get the same key."""
    from core.paths import cache_root
    from core.store import content_hash, to_plain

    return f"{kind}:{content_hash(to_plain([str(cache_root()), *parts]))[:24]}"


def default_surface_spec(checkpoint: str, **overrides: Any):
    """The landscape the overview shows for a model: own loss, 2-D, the profile's grid, span and images."""
    from core.surfaces import SurfaceSpec

    base = dict(checkpoint=str(checkpoint), loss="own", dim=2) | dashboard_profile().surface
    return SurfaceSpec(**(base | overrides))


def default_flatness_spec(checkpoint: str, **overrides: Any):
    """The flatness numbers the overview shows (Hessian top eigenvalues, trace, sharpness, robustness) under the
    profile's settings."""
    from core.flatness_run import FlatnessSpec

    return FlatnessSpec(**({"checkpoint": str(checkpoint)} | dashboard_profile().flatness | overrides))


def nested_levels(grid: int) -> list[int]:
    """Grid sizes computed one after another for a coarse-first picture: 5, 9, ... up to `grid` when `grid` is
    2**k + 1 (the coarse levels share their points with it), else `grid` alone."""
    if grid in COARSE_LEVELS:
        return [g for g in COARSE_LEVELS if g <= grid]
    return [grid]


def coarse_view(surface: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The finest fully computed sub-grid of a (partial) surface: (xs, ys or None, loss).

    A partial surface is NaN where not computed yet; drawing it as is shows scattered dots. Nested levels (stride
    (n - 1) / (m - 1)) that are complete make a clean coarse picture instead. A complete surface is returned whole.
    """
    xs = np.asarray(surface.xs, dtype=float)
    loss = np.asarray(surface.loss, dtype=float)
    two_d = loss.ndim == 2
    ys = np.asarray(surface.ys, dtype=float) if two_d else None
    n = len(xs)
    if np.isfinite(loss).all() or getattr(surface, "complete", False):
        return xs, ys, loss
    best = None
    m = 3
    while m < n:
        if (n - 1) % (m - 1) == 0:
            step = (n - 1) // (m - 1)
            sub = loss[::step, ::step] if two_d else loss[::step]
            if np.isfinite(sub).all():
                best = step
        m = 2 * m - 1
    if best is None:
        return xs, ys, loss
    return xs[::best], (ys[::best] if two_d else None), (loss[::best, ::best] if two_d else loss[::best])


@dataclass
class SurfaceBatch:
    """Surfaces of several models on one spec (the same directions seed, grid, data and masks).

    Attributes:
        surfaces: label -> Surface (partial ones while running).
        specs: label -> the SurfaceSpec asked for.
        errors: label -> one-line reason a model could not be computed.
    """

    surfaces: dict[str, Any] = field(default_factory=dict)
    specs: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def copy(self) -> SurfaceBatch:
        return SurfaceBatch(dict(self.surfaces), dict(self.specs), dict(self.errors))


def _surfaces_into(
    ctx: JobContext,
    specs: dict[str, Any],
    batch: SurfaceBatch,
    lo: float,
    hi: float,
    publish: Callable[[], None],
    max_seconds: float | None = None,
) -> None:
    """Compute every spec coarse level by coarse level (all models at 5x5, then 9x9, ...) into `batch`.

    A level whose estimate exceeds `max_seconds` is not started (the model's error says why)."""
    from dataclasses import replace

    from core.i18n import msg
    from core.surfaces import compute_surface, prepare_checkpoint

    ready: dict[str, Any] = {}
    for label, spec in specs.items():
        batch.specs[label] = spec
        if spec.loss == "probe":
            ctx.progress(lo, msg("job.probe", model=label))
            try:
                spec = replace(spec, checkpoint=prepare_checkpoint(spec.checkpoint, "probe"))
            except LandscapeError as e:
                batch.errors[label] = error_line(e)
                continue
        ready[label] = spec
    grids = sorted({g for s in ready.values() for g in nested_levels(s.grid)})
    steps = [(g, label) for g in grids for label, s in ready.items() if g in nested_levels(s.grid)]
    # Cost of a step: its new points (a nested level reuses the coarser level's points).
    cost = []
    for g, label in steps:
        levels = nested_levels(ready[label].grid)
        prev = levels[levels.index(g) - 1] if levels.index(g) else 0
        cost.append(g**2 - prev**2 if ready[label].dim == 2 else g - prev)
    total = float(sum(cost)) or 1.0
    done = 0.0
    for (g, label), c in zip(steps, cost, strict=True):
        if label in batch.errors:
            done += c  # a model that failed at a coarser level is skipped
            continue
        if ctx.should_stop():
            raise LandscapeError("stopped")
        spec = replace(ready[label], grid=g)
        base = done
        first: list[int] = []  # points already cached when the level started (reused from coarser levels)

        def prog(d: int, t: int, base=base, c=c, label=label, g=g, first=first) -> None:
            if not first:
                first.append(d)
            share = (d - first[0]) / max(1, t - first[0]) if t > first[0] else 1.0
            f = lo + (hi - lo) * (base + c * share) / total
            ctx.progress(f, msg("job.surface", model=label, grid=g, done=d, total=t))

        def partial(s: Any, label=label) -> None:
            batch.surfaces[label] = s
            publish()

        def estimate(est: Any, label=label, g=g, base=base) -> bool:
            # Say what is coming before the first new point (the estimate times one evaluation).
            f = lo + (hi - lo) * base / total
            ctx.progress(f, msg("job.estimate", model=label, grid=g, points=est.points, seconds=round(est.seconds)))
            return not est.disk_short and (max_seconds is None or est.seconds <= max_seconds)

        try:
            batch.surfaces[label] = compute_surface(
                spec, progress=prog, on_partial=partial, check_stop=ctx.should_stop, confirm=estimate
            )
        except LandscapeError as e:
            if ctx.should_stop():
                raise
            batch.errors[label] = error_line(e)
        publish()
        done += c
    ctx.progress(hi, msg("job.surfaces_done"))


def surfaces_task(specs: dict[str, Any], max_seconds: float | None = None) -> Callable[[JobContext], SurfaceBatch]:
    """A job computing one surface per model (label -> SurfaceSpec), coarse first; partial: a `SurfaceBatch`.

    A model whose estimated time exceeds `max_seconds` is not started (its error says so); None: no limit."""

    def run(ctx: JobContext) -> SurfaceBatch:
        batch = SurfaceBatch()
        _surfaces_into(ctx, specs, batch, 0.0, 1.0, lambda: ctx.set_partial(batch.copy()), max_seconds)
        return batch

    return run


@dataclass
class FlatnessBatch:
    """Flatness reports of several models: label -> FlatnessReport, and label -> one-line error."""

    reports: dict[str, Any] = field(default_factory=dict)
    specs: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def copy(self) -> FlatnessBatch:
        return FlatnessBatch(dict(self.reports), dict(self.specs), dict(self.errors))


def _flatness_into(
    ctx: JobContext,
    specs: dict[str, Any],
    batch: FlatnessBatch,
    lo: float,
    hi: float,
    publish: Callable[[], None],
    max_seconds: float | None = None,
) -> None:
    from core.flatness_run import STAGES, compute_flatness
    from core.i18n import msg

    n = max(1, len(specs))
    for i, (label, spec) in enumerate(specs.items()):
        batch.specs[label] = spec
        if ctx.should_stop():
            raise LandscapeError("stopped")

        def prog(stage: str, d: int, t: int, i=i, label=label) -> None:
            k = STAGES.index(stage) if stage in STAGES else 0
            f = lo + (hi - lo) * (i + (k + d / max(1, t)) / len(STAGES)) / n
            ctx.progress(f, msg("job.flatness", model=label, stage=stage, done=d, total=t))

        try:
            batch.reports[label] = compute_flatness(
                spec,
                progress=prog,
                check_stop=ctx.should_stop,
                confirm=lambda est: not est.disk_short and (max_seconds is None or est.seconds <= max_seconds),
            )
        except LandscapeError as e:
            if ctx.should_stop():
                raise
            batch.errors[label] = error_line(e)
        publish()


def flatness_task(specs: dict[str, Any], max_seconds: float | None = None) -> Callable[[JobContext], FlatnessBatch]:
    """A job computing a flatness report per model (label -> FlatnessSpec); partial: a `FlatnessBatch`.

    A model whose report is estimated over `max_seconds` is not started (its error says so); None: no limit."""

    def run(ctx: JobContext) -> FlatnessBatch:
        batch = FlatnessBatch()
        _flatness_into(ctx, specs, batch, 0.0, 1.0, lambda: ctx.set_partial(batch.copy()), max_seconds)
        return batch

    return run


def _train_into(ctx: JobContext, cfg: Any, label: str, lo: float, hi: float, probe: bool = True) -> str:
    """Train (or find) one model and, for encoders, its default probe; returns the checkpoint path."""
    from core.i18n import msg
    from core.train import ProbeConfig, Progress, train_model, train_probe

    def prog(p: Progress) -> None:
        f = lo + (hi - lo) * 0.95 * p.fraction
        ctx.progress(f, msg("job.train", model=label, epoch=p.epoch, epochs=p.epochs, loss=round(p.loss, 4)))

    ctx.progress(lo, msg("job.train_start", model=label))
    path = train_model(cfg, progress=prog, check_stop=ctx.should_stop)
    if probe and cfg.kind != "sup":
        ctx.progress(lo + (hi - lo) * 0.95, msg("job.probe", model=label))
        train_probe(path, ProbeConfig())
    ctx.progress(hi, msg("job.trained", model=label))
    return str(path)


def train_task(cfg: Any, label: str) -> Callable[[JobContext], str]:
    """A job training one model (`TrainConfig`) plus its default linear probe; result: the checkpoint path."""

    def run(ctx: JobContext) -> str:
        return _train_into(ctx, cfg, label, 0.0, 1.0)

    return run


@dataclass
class DefaultsResult:
    """What the overview shows: the default trio, its landscapes, flatness numbers and summary facts.

    Attributes:
        paths: kind -> checkpoint path.
        labels: kind -> display label.
        surfaces: the default landscapes (`SurfaceBatch`, keyed by label).
        flatness: the default flatness reports (`FlatnessBatch`, keyed by label).
        facts: kind -> `core.summary.ModelFacts` (empty when they could not be gathered).
        errors: stage -> one-line reason for a stage that failed (the others still show).
        stage: "train", "landscapes", "flatness", "generalization", "summary" or "done".
    """

    paths: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    surfaces: SurfaceBatch = field(default_factory=SurfaceBatch)
    flatness: FlatnessBatch = field(default_factory=FlatnessBatch)
    facts: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stage: str = "train"

    def copy(self) -> DefaultsResult:
        return DefaultsResult(
            dict(self.paths),
            dict(self.labels),
            self.surfaces.copy(),
            self.flatness.copy(),
            dict(self.facts),
            dict(self.errors),
            self.stage,
        )


# Shares of the whole preparation, from measured times on 2 CPU cores (training dominates; then the fine-tuning
# runs of the generalization measurement, core.generalization_jobs.first_run_generalization).
_SHARE_TRAIN, _SHARE_SURF, _SHARE_FLAT, _SHARE_GEN = 0.55, 0.10, 0.12, 0.21


def prepare_defaults_task(profile: Profile | None = None) -> Callable[[JobContext], DefaultsResult]:
    """The first-run job: train the default MAE / RC-MAE / Sup-ViT (and probes), compute their default
    landscapes (all three at 5x5 first, then finer) and flatness numbers, and gather the summary facts. Everything
    is cached, so a second run finishes in seconds.

    Args:
        profile: what to prepare (default: `dashboard_profile()`).
    """
    from core.i18n import msg

    profile = profile or dashboard_profile()

    def run(ctx: JobContext) -> DefaultsResult:
        from core.comparison import same_function_specs
        from core.zoo import KIND_LABEL

        out = DefaultsResult()

        def publish() -> None:
            ctx.set_partial(out.copy())

        cfgs = default_trio(profile)
        n = len(cfgs)
        for i, (kind, cfg) in enumerate(cfgs.items()):
            label = KIND_LABEL.get(kind, kind)
            out.labels[kind] = label
            lo, hi = _SHARE_TRAIN * i / n, _SHARE_TRAIN * (i + 1) / n
            out.paths[kind] = _train_into(ctx, cfg, label, lo, hi)
            publish()
        out.stage = "landscapes"
        publish()
        specs = {out.labels[k]: default_surface_spec(p, **profile.surface) for k, p in out.paths.items()}
        # RC-MAE also on MAE's loss (its MAE term), so that the two are compared on one function (core.comparison).
        specs |= same_function_specs(out.paths, out.labels, default_surface_spec, **profile.surface)
        hi = _SHARE_TRAIN + _SHARE_SURF
        _surfaces_into(ctx, specs, out.surfaces, _SHARE_TRAIN, hi, publish)
        out.stage = "flatness"
        publish()
        fspecs = {out.labels[k]: default_flatness_spec(p, **profile.flatness) for k, p in out.paths.items()}
        # The accuracy under weight noise reads the probe, the same for every loss: not computed twice.
        no_noise = profile.flatness | {"robustness": False}
        fspecs |= same_function_specs(out.paths, out.labels, default_flatness_spec, **no_noise)
        _flatness_into(ctx, fspecs, out.flatness, hi, hi + _SHARE_FLAT, publish)
        # Fine-tuning at a few labels per class vs the same ViT from scratch: the Overview's generalization sentence.
        out.stage = "generalization"
        publish()
        lo = hi + _SHARE_FLAT
        try:
            from core.generalization_jobs import first_run_generalization

            first_run_generalization(ctx, out.paths, profile, lo, lo + _SHARE_GEN)
        except LandscapeError as e:
            if ctx.should_stop():
                raise
            out.errors["generalization"] = error_line(e)
        out.stage = "summary"
        ctx.progress(lo + _SHARE_GEN, msg("job.summary"))
        publish()
        out.facts = gather_facts(out, profile)
        out.stage = "done"
        ctx.progress(1.0, msg("job.ready"))
        return out

    return run


def gather_facts(res: DefaultsResult, profile: Profile | None = None) -> dict[str, Any]:
    """kind -> ModelFacts for the summary (`core.zoo.model_facts` on the profile's specs), completed from `res`;
    plus "generalization" (a plain dict, `core.generalization_jobs.generalization_facts`) once fine-tuning at a few
    labels per class is cached."""
    from dataclasses import replace

    from core import zoo

    profile = profile or dashboard_profile()
    surface_spec = {"loss": "own", "dim": 2, **profile.surface}
    facts: dict[str, Any] = {}
    for kind, path in res.paths.items():
        f = None
        if hasattr(zoo, "model_facts"):
            try:
                f = zoo.model_facts(path, surface_spec=surface_spec, flatness_spec=dict(profile.flatness))
            except LandscapeError as e:
                res.errors[res.labels.get(kind, kind)] = error_line(e)
        if f is None:
            continue
        fill: dict[str, Any] = {}
        label = res.labels.get(kind, kind)
        rep = res.flatness.reports.get(label)
        if rep is not None:
            if f.top_eigenvalue is None and rep.top_eigenvalues:
                fill["top_eigenvalue"] = float(rep.top_eigenvalues[0])
            if f.trace is None and rep.trace is not None:
                fill["trace"] = float(rep.trace)
            if f.sharpness is None and rep.sharpness:
                fill["sharpness"] = float(rep.sharpness["average"])
            if f.robustness is None and rep.robustness:
                fill["robustness"] = rep.robustness
        surf = res.surfaces.surfaces.get(label)
        for key in ("basin_width", "centre_loss"):
            if getattr(f, key) is None and surf is not None and surf.metrics.get(key) is not None:
                fill[key] = float(surf.metrics[key])
        facts[kind] = replace(f, **fill) if fill else f
    facts |= same_function_facts(res, facts, profile)
    from core.generalization_jobs import generalization_facts

    try:
        gen = generalization_facts(res.paths, profile)  # read from the cache: None until measured
    except LandscapeError as e:
        res.errors["generalization"] = error_line(e)
        gen = None
    if gen is not None:
        facts["generalization"] = gen
    return facts


def same_function_facts(res: DefaultsResult, facts: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Extra facts for the models compared on a function other than their own objective (RC-MAE on its MAE term,
    `core.comparison`): "<kind>@<function>" -> ModelFacts with that function's cached flatness numbers."""
    from dataclasses import replace

    from core import zoo
    from core.comparison import needs_extra, overrides

    out: dict[str, Any] = {}
    for kind, path in res.paths.items():
        extra, own = needs_extra(kind), facts.get(kind)
        if not extra or own is None:
            continue
        surface = {"loss": "own", "dim": 2, **profile.surface, **overrides(extra)}
        flat = {**profile.flatness, **overrides(extra), "robustness": False}
        try:
            f = zoo.model_facts(path, surface_spec=surface, flatness_spec=flat)
        except LandscapeError as e:
            res.errors[f"{res.labels.get(kind, kind)} ({extra})"] = error_line(e)
            continue
        out[f"{kind}@{extra}"] = replace(f, function=extra, robustness=own.robustness)
    return out


def flatness_points(store: Any = None) -> list[dict]:
    """One dict per checkpoint with cached flatness numbers (every cached flatness result), for the scatter.

    Keys: label, kind, sha256, top_eigenvalue, lambda_min, trace, sharpness, acc_drop (clean minus noisiest
    accuracy), probe_acc (from the robustness stage, else the checkpoint's recorded probe accuracy) and
    basin_width (from the newest complete 2-D own-loss landscape, if any). The newest entry of each stage wins.
    """
    from core.store import Store
    from core.zoo import list_checkpoints

    store = store or Store()
    infos = {c.sha256: c for c in list_checkpoints()}
    points: dict[str, dict] = {}
    for e in reversed(store.list("flatness")):  # oldest first: newer entries overwrite
        if not e.finished or not isinstance(e.key, dict):
            continue
        obj = e.key.get("objective") or {}
        sha = obj.get("checkpoint")
        value = ((e.meta or {}).get("meta") or {}).get("value")
        if not sha or not isinstance(value, dict) or obj.get("rcmae_terms", "full") != "full":
            continue  # (RC-MAE's MAE-term numbers, for the same-function comparison, are not its own objective)
        p = points.setdefault(sha, {"sha256": sha})
        stage = e.key.get("stage")
        if stage == "eigenvalues" and value.get("values"):
            p["top_eigenvalue"] = float(value["values"][0])
            p["lambda_min"] = value.get("lambda_min")
        elif stage == "trace":
            p["trace"] = value.get("estimate")
        elif stage == "sharpness":
            p["sharpness"] = value.get("average")
        elif stage == "robustness":
            acc = value.get("acc_mean")
            if acc:
                p["probe_acc"] = value.get("clean_acc", acc[0])
                p["acc_drop"] = float(acc[0] - acc[-1])
    for e in reversed(store.list("landscape")):
        meta = ((e.meta or {}).get("meta") or {}) if e.finished else {}
        sha = ((meta.get("objective") or {}) if isinstance(meta, dict) else {}).get("checkpoint")
        spec = meta.get("spec") or {}
        obj = (meta.get("objective") or {}) if meta else {}
        terms = {spec.get("rcmae_terms", "full"), obj.get("rcmae_terms", "full")}
        own = spec.get("loss") == "own" and terms == {"full"}
        if sha in points and spec.get("dim") == 2 and own:
            bw = (meta.get("metrics") or {}).get("basin_width")
            if bw is not None:
                points[sha]["basin_width"] = float(bw)
    out = []
    for sha, p in points.items():
        info = infos.get(sha)
        if info is None:
            continue  # its checkpoint was deleted
        p["label"], p["kind"] = info.label, info.kind
        if p.get("probe_acc") is None and info.probe_acc is not None:
            p["probe_acc"] = info.probe_acc
        out.append(p)
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoints from server paths


def allowed_roots() -> list[Path]:
    """Folders a dashboard user may load checkpoints from: the cache, the project, and env
    `LANDSCAPE_ALLOWED_ROOTS` (os.pathsep-separated)."""
    from core.paths import PROJECT_ROOT, cache_root

    roots = [cache_root(), PROJECT_ROOT]
    for r in os.environ.get("LANDSCAPE_ALLOWED_ROOTS", "").split(os.pathsep):
        if r.strip():
            roots.append(Path(r.strip()).expanduser())
    out: list[Path] = []
    for r in roots:
        r = r.resolve()
        if r not in out:
            out.append(r)
    return out


def confined_path(text: str) -> Path:
    """The checkpoint file a user typed, resolved (symlinks followed) and checked to lie inside an allowed root.

    Raises:
        LandscapeError: empty, outside every allowed root, missing, or not a file.
    """
    text = (text or "").strip()
    if not text:
        raise LandscapeError("no path given")
    if "\x00" in text:
        raise LandscapeError("the path contains a NUL character")
    p = Path(text).expanduser()
    if not p.is_absolute():
        from core.paths import PROJECT_ROOT

        p = PROJECT_ROOT / p
    real = p.resolve()
    roots = allowed_roots()
    if not any(real == r or real.is_relative_to(r) for r in roots):
        where = ", ".join(str(r) for r in roots)
        raise LandscapeError(
            f"{real} is outside the allowed folders ({where}); add its folder to LANDSCAPE_ALLOWED_ROOTS"
        )
    if not real.exists():
        raise LandscapeError(f"{real} does not exist")
    if not real.is_file():
        raise LandscapeError(f"{real} is not a file")
    return real


@dataclass(frozen=True)
class Inspection:
    """What a checkpoint file is: its kind, the describe() text and the resolved path."""

    path: str
    kind: str
    description: str


def inspect_task(path: str) -> Callable[[JobContext], Inspection]:
    """A job loading a checkpoint (confined to the allowed roots) and describing it."""

    def run(ctx: JobContext) -> Inspection:
        from core.checkpoints import load_checkpoint
        from core.i18n import msg

        real = confined_path(path)
        ctx.progress(0.1, msg("job.loading", name=real.name))
        ck = load_checkpoint(real)
        return Inspection(str(real), ck.kind, ck.describe())

    return run


# ----------------------------------------------------------------------------------------------------------------------
# What-if: a variant of a trained model, compared with its base on the same directions, data and masks


def variant_config(train: dict, **changes: Any):
    """The TrainConfig of a checkpoint's recorded `train` dict with some fields changed (unknown keys dropped).

    Raises:
        LandscapeError: the checkpoint has no training record, or a changed value is invalid.
    """
    from dataclasses import fields

    from core.train import TrainConfig

    if not train or "kind" not in train:
        raise LandscapeError("this checkpoint has no training record (not trained here), so it cannot be retrained")
    names = {f.name for f in fields(TrainConfig)}
    base = {k: v for k, v in train.items() if k in names}
    return TrainConfig(**(base | {k: v for k, v in changes.items() if k in names}))


@dataclass
class WhatIfResult:
    """A base model and its variant: paths, labels, surfaces on one spec, flatness reports."""

    paths: dict[str, str] = field(default_factory=dict)
    surfaces: SurfaceBatch = field(default_factory=SurfaceBatch)
    flatness: FlatnessBatch = field(default_factory=FlatnessBatch)
    stage: str = "train"

    def copy(self) -> WhatIfResult:
        return WhatIfResult(dict(self.paths), self.surfaces.copy(), self.flatness.copy(), self.stage)


def whatif_task(
    base_path: str,
    variant: Any,
    labels: tuple[str, str],
    surface: dict | None = None,
    flatness: dict | None = None,
) -> Callable[[JobContext], WhatIfResult]:
    """A job training `variant` (a TrainConfig) and comparing it with the checkpoint at `base_path`.

    Both get the same landscape spec (direction seed, grid, images, masks) and the same flatness spec, so the
    pictures differ only by the weights.

    Args:
        base_path: the base checkpoint.
        variant: the variant's TrainConfig.
        labels: (base label, variant label).
        surface: SurfaceSpec overrides (default: the overview's landscape).
        flatness: FlatnessSpec overrides; None skips flatness.
    """

    def run(ctx: JobContext) -> WhatIfResult:
        out = WhatIfResult()
        base_label, var_label = labels
        out.paths[base_label] = str(base_path)
        out.paths[var_label] = _train_into(ctx, variant, var_label, 0.0, 0.6)
        out.stage = "landscapes"
        ctx.set_partial(out.copy())
        specs = {lab: default_surface_spec(p, **(surface or {})) for lab, p in out.paths.items()}
        hi = 0.85 if flatness is not None else 1.0
        _surfaces_into(ctx, specs, out.surfaces, 0.6, hi, lambda: ctx.set_partial(out.copy()))
        if flatness is not None:
            out.stage = "flatness"
            fspecs = {lab: default_flatness_spec(p, **flatness) for lab, p in out.paths.items()}
            _flatness_into(ctx, fspecs, out.flatness, hi, 1.0, lambda: ctx.set_partial(out.copy()))
        out.stage = "done"
        return out

    return run
