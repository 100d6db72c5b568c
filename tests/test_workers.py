"""Tests for core/studies/workers.py: (seed) jobs over worker processes give the same numbers as one process."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from core.errors import LandscapeError
from core.studies import quick_spec
from core.studies.measuring import MEASURES, run_measurements
from core.studies.workers import JOB_THREADS, fixed_threads, map_jobs, resolve_workers


def _square(x: int, *, log) -> int:
    log(f"square {x}")
    if x < 0:
        raise LandscapeError(f"negative: {x}")
    return x * x


def test_map_jobs_keeps_order_and_errors_in_and_out_of_process():
    lines: list[str] = []
    assert map_jobs(_square, [(3,), (1,), (2,)], 1, lines.append) == [9, 1, 4]
    assert lines == ["square 3", "square 1", "square 2"]  # in this process: this process's log
    # in worker processes (one pool: starting one costs seconds): a worker's error keeps its one-line message
    with pytest.raises(LandscapeError, match="negative: -1"):
        map_jobs(_square, [(2,), (-1,), (3,)], 2, lines.append, ["a", "b", "c"])
    with pytest.raises(LandscapeError, match="--workers"):
        resolve_workers(-1)
    assert resolve_workers(0) >= 1 and resolve_workers(3) == 3


def test_fixed_threads_restores():
    before = torch.get_num_threads()
    with fixed_threads():
        assert torch.get_num_threads() == JOB_THREADS
    assert torch.get_num_threads() == before


def test_two_workers_measure_the_same_bits_as_one(tmp_path, monkeypatch):
    spec = replace(quick_spec(seeds=2), epochs=1, grid=3, samples=16, convexity_grid=0, hessian_iter=4, trace_probes=2)
    spec = replace(spec, probe=replace(spec.probe, epochs=2))
    out = {}
    for workers in (1, 2):
        monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / f"cache{workers}"))
        out[workers] = run_measurements(replace(spec, workers=workers), lambda _: None)
    one, two = out[1], out[2]
    assert one.probe_acc == two.probe_acc and one.classifier_acc == two.classifier_acc
    for m in MEASURES:
        for s in one.seeds:
            a, b = one.measured[m.key, s], two.measured[m.key, s]
            assert np.array_equal(a.loss, b.loss), (m.key, s)
            assert a.hessian == b.hessian, (m.key, s)
    # the seeds measure with their own directions and images: seed 1's numbers are not seed 0's
    assert not np.array_equal(one.measured["mae_own", 0].loss, one.measured["mae_own", 1].loss)
