"""Independent jobs of a study, (kind, seed) or (cell, seed), in parallel worker processes.

A standard process pool (`concurrent.futures.ProcessPoolExecutor`, spawned processes: torch and fork do not mix),
not a scheduler of our own: the jobs share nothing but the cache, whose entries are locked per entry, and each
returns plain values that the parent assembles in a fixed order.

Results do not depend on the number of workers: every job runs with `JOB_THREADS` torch threads, in a worker or in
this process (`workers=1`), and seeds its own random sources, so a job computes the same bits wherever it runs
(tests/test_workers.py checks a study with 1 and 2 workers). The cost: one worker uses one core, so `workers=1` on
a many-core machine is slower than a single process with every thread; use the default (one worker per core).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch

from core.errors import LandscapeError

# Threads per job. One: a matrix product split over another number of threads sums in another order and can move
# the last bits, which the cache would then keep; and jobs, not threads, are what scales on a many-core machine.
JOB_THREADS = 1


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int) -> int:
    """`workers`, or the default for 0; a one-line error for a negative number."""
    if workers < 0:
        raise LandscapeError(f"--workers must be 0 (one per core) or a positive number, got {workers}")
    return workers or default_workers()


@contextmanager
def fixed_threads(n: int = JOB_THREADS) -> Iterator[None]:
    """Run the body with `n` torch threads, restoring the previous number after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _worker_start(threads: int) -> None:
    torch.set_num_threads(threads)


def worker_log(prefix: str, msg: str) -> None:
    """A worker's progress line, on stderr (the parent's log function does not cross processes)."""
    print(f"{prefix} {msg}", file=sys.stderr, flush=True)


def _run(fn: Callable[..., Any], args: tuple, prefix: str) -> Any:
    return fn(*args, log=partial(worker_log, prefix))


def map_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    workers: int,
    log: Callable[[str], None],
    names: Sequence[str] | None = None,
) -> list[Any]:
    """`[fn(*args, log=...) for args in jobs]`, in order, over `workers` processes.

    Args:
        fn: a module-level function (it is pickled by name) taking a `log` keyword; its result must pickle.
        jobs: the positional arguments of each call.
        workers: processes (resolved with `resolve_workers`); 1 runs every job in this process.
        log: progress lines of this process; workers print theirs to stderr, prefixed with the job's name.
        names: a short name per job for those prefixes (default: its index).

    Raises:
        The first job's error in job order (a `LandscapeError` keeps its one-line message); finished jobs' results
        stay cached, so a rerun resumes.
    """
    workers = min(resolve_workers(workers), max(1, len(jobs)))
    if workers == 1:
        with fixed_threads():
            return [fn(*args, log=log) for args in jobs]
    names = list(names) if names is not None else [str(i) for i in range(len(jobs))]
    log(f"{len(jobs)} jobs on {workers} worker processes ({JOB_THREADS} torch thread each)")
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_start, initargs=(JOB_THREADS,)) as pool:
        futures = [pool.submit(_run, fn, args, f"[{name}]") for args, name in zip(jobs, names, strict=True)]
        try:
            results = []
            for f, name in zip(futures, names, strict=True):
                results.append(f.result())
                log(f"job {name} done")
            return results
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
