"""The lattice-points driver (core.measure.lattice) with a fake per-point function: coarse-to-fine order, reuse of
nested grids and of the entry's own log, partial results, stop and resume, refusals, NaN points, the cache."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core.errors import LandscapeError
from core.measure.lattice import LatticeJob, compute_lattice, evaluate_one_by_one, lattice_coords, lattice_size
from core.measure.surfaces import Estimate
from core.store.store import Store


@dataclass(frozen=True)
class FakeSpec:
    dim: int = 2
    grid: int = 5
    span: float = 1.0


def value(c: list[float]) -> dict[str, float]:
    """The fake point: a bowl and its first coordinate; NaN where the first coordinate is +span (the far edge)."""
    x = c[0]
    y = c[1] if len(c) > 1 else 0.0
    if x == 1.0:
        return {"f": float("nan"), "x": float("nan")}
    return {"f": x * x + 2 * y * y, "x": x}


class Fake:
    """One fake job: counts what the driver asks of it."""

    def __init__(self, available: int | None = None) -> None:
        self.points: list[list[float]] = []
        self.estimates: list[tuple[int, int]] = []
        self.directions = 0
        self.available = available

    def job(self) -> LatticeJob:
        def point(dirs, c):
            assert dirs == ["axes"]
            self.points.append(c)
            return value(c)

        def estimate(points: int, world: int) -> Estimate:
            self.estimates.append((points, world))
            return Estimate(points, 0.5 * points, 1 << 20, self.available)

        def directions():
            self.directions += 1
            return ["axes"], None

        def finish(arrays, path_coords):
            assert path_coords is None
            return {"n_nan": int(np.sum(~np.isfinite(arrays["f"])))}

        return LatticeJob(
            kind="fake",
            fields=("f", "x"),
            what="fake map",
            unsaved="rank 0 did not save the fake map",
            to_result=lambda arrays, meta, path: SimpleNamespace(arrays=dict(arrays), meta=meta, path=path),
            estimate=estimate,
            disk_bytes=lambda new, total: 10 * new + total,
            directions=directions,
            evaluate=evaluate_one_by_one(point),
            finish=finish,
        )


def run(store: Store, fake: Fake, spec: FakeSpec, **kw):
    key = {"v": 1, "what": "bowl", "dim": spec.dim, "grid": spec.grid, "span": spec.span, "lattice": 1024}
    objective = SimpleNamespace(key=lambda: {"fake": 1}, loss_kind="bowl")
    return compute_lattice(
        fake.job(),
        spec,
        spec,
        key,
        store=store,
        objective=objective,
        model_kind="fake",
        device=torch.device("cpu"),
        **kw,
    )


def expected(spec: FakeSpec) -> np.ndarray:
    _, xs = lattice_coords(spec.grid, spec.span)
    if spec.dim == 1:
        return np.array([value([float(x)])["f"] for x in xs])
    return np.array([[value([float(x), float(y)])["f"] for x in xs] for y in xs])


def test_a_fresh_grid_goes_coarse_to_fine_reports_partials_and_is_cached(tmp_path):
    store, fake, spec = Store(tmp_path), Fake(), FakeSpec()
    events = []
    res = run(
        store,
        fake,
        spec,
        progress=lambda d, t: events.append(("progress", d, t)),
        on_partial=lambda r: events.append(("partial", r.meta["n_done"], int(np.isfinite(r.arrays["x"]).sum()))),
        partial_every=10,
        confirm=lambda est: events.append(("confirm", est.points, est.disk_bytes)) or True,
    )
    np.testing.assert_array_equal(res.arrays["f"], expected(spec))
    assert fake.estimates == [(25, 1)] and fake.directions == 1 and len(fake.points) == 25
    assert events[0] == ("confirm", 25, 10 * 25 + 25)
    assert {tuple(c) for c in fake.points[:9]} == {(x, y) for x in (-1.0, 0.0, 1.0) for y in (-1.0, 0.0, 1.0)}
    assert [e for e in events if e[0] == "progress"] == [("progress", d, 25) for d in range(26)]
    # Partials at the 3x3 level, every 10 points and at 5x5; points with NaN (x = +1) are not counted finite.
    assert [e[1] for e in events if e[0] == "partial"] == [9, 10, 20, 25]
    m = res.meta
    assert m["complete"] and m["n_points"] == 25 and m["n_reused"] == 0 and m["n_nan"] == 5 and len(m["nan_ids"]) == 5
    assert (
        m["family"]
        and m["model_kind"] == "fake"
        and m["loss_kind"] == "bowl"
        and m["spec"] == {"dim": 2, "grid": 5, "span": 1.0}
    )
    assert res.arrays["ids"].shape == (5, 5) and res.arrays["ys"].shape == (5,)
    entry = store.entry("fake", m["key"])
    assert entry.load_points() == {}  # the log is cleared once the result is saved

    again = Fake()
    seen = []
    cached = run(store, again, spec, progress=lambda d, t: seen.append((d, t)))
    assert cached.meta["cached"] and cached.meta["n_reused"] == 25 and seen == [(25, 25)]
    assert again.points == [] and again.estimates == [] and again.directions == 0
    np.testing.assert_array_equal(cached.arrays["f"], res.arrays["f"])
    assert run(store, Fake(), FakeSpec(grid=9), cached_only=True) is None


def test_nested_grids_reuse_points_nan_ones_included(tmp_path):
    store = Store(tmp_path)
    run(store, Fake(), FakeSpec(grid=3))
    fake = Fake()
    res = run(store, fake, FakeSpec(grid=5), on_partial=lambda r: None)
    assert res.meta["n_reused"] == 9 and len(fake.points) == 16 and fake.estimates == [(16, 1)]
    np.testing.assert_array_equal(res.arrays["f"], expected(FakeSpec(grid=5)))
    # Every point of a 3x3 is known from the 5x5 (the NaN ones through nan_ids): nothing to estimate or compute.
    store2 = Store(tmp_path / "other")
    run(store2, Fake(), FakeSpec(grid=5))
    fake3 = Fake()
    res3 = run(store2, fake3, FakeSpec(grid=3))
    assert res3.meta["n_reused"] == 9 and fake3.points == [] and fake3.estimates == [] and res3.meta["n_nan"] == 3
    np.testing.assert_array_equal(res3.arrays["f"], expected(FakeSpec(grid=3)))


def test_stop_keeps_points_and_the_same_call_resumes_to_the_same_result(tmp_path):
    store, spec = Store(tmp_path), FakeSpec(dim=1, grid=9)
    calls = [0]

    def stop() -> bool:
        calls[0] += 1
        return calls[0] > 4

    fake = Fake()
    with pytest.raises(LandscapeError, match="stopped after 4 of 9 points; rerun the same request to resume"):
        run(store, fake, spec, check_stop=stop)
    key = {"v": 1, "what": "bowl", "dim": 1, "grid": 9, "span": 1.0, "lattice": lattice_size(9)}
    assert len(store.entry("fake", key).load_points()) == 4 and len(fake.points) == 4
    resumed = Fake()
    res = run(store, resumed, spec)
    assert res.meta["n_reused"] == 4 and len(resumed.points) == 5
    assert not {tuple(c) for c in resumed.points} & {tuple(c) for c in fake.points}
    clean = run(Store(tmp_path / "clean"), Fake(), spec)
    for k in ("f", "x", "ids", "xs"):
        np.testing.assert_array_equal(res.arrays[k], clean.arrays[k])
    assert res.arrays["f"].shape == (9,) and "ys" not in res.arrays


def test_refusals_compute_nothing(tmp_path):
    store = Store(tmp_path)
    small = Fake(available=1000)
    with pytest.raises(LandscapeError, match=r"^this fake map cannot fit in memory: 25 points, .*; use fewer samples$"):
        run(store, small, FakeSpec())
    assert small.points == [] and small.directions == 0
    no = Fake()
    with pytest.raises(LandscapeError, match=r"^not started: 25 points, .* \(confirm to run it\)$"):
        run(store, no, FakeSpec(), confirm=lambda est: False)
    assert no.points == [] and no.directions == 0
