"""The dashboard's tasks and profiles: coarse-first surfaces, flatness batches, confined paths, what-if variants,
the first run and its cache (core/app/tasks.py, core/app/profiles.py, core/app/first_run.py)."""

from __future__ import annotations

import importlib
import os
import threading

# ----------------------------------------------------------------------------------------------------------------------
# The dashboard's task helpers
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest

import core.app.first_run as first_run
import core.app.profiles as profiles
import core.app.tasks as tasks
from core.app.registry import JobContext
from core.errors import LandscapeError


def test_nested_levels():
    assert profiles.nested_levels(17) == [5, 9, 17]
    assert profiles.nested_levels(5) == [5]
    assert profiles.nested_levels(33) == [5, 9, 17, 33]
    assert profiles.nested_levels(21) == [21]  # not 2**k + 1: no shared coarse levels


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
    xs, ys, loss = tasks.coarse_view(s)
    assert loss.shape == (5, 5) and np.isfinite(loss).all()
    np.testing.assert_allclose(xs, np.linspace(-0.5, 0.5, 5))
    np.testing.assert_allclose(loss, full[::4, ::4])
    s, full = _fake_surface(17, 2)  # the 9x9 level is done
    assert tasks.coarse_view(s)[2].shape == (9, 9)
    s, full = _fake_surface(17, None)  # complete: the whole grid
    xs, ys, loss = tasks.coarse_view(s)
    assert loss.shape == (17, 17) and ys is not None
    s, full = _fake_surface(9, 2, dim=1)
    xs, ys, loss = tasks.coarse_view(s)
    assert ys is None and loss.shape == (5,)
    np.testing.assert_allclose(loss, full[::2])
    s, _ = _fake_surface(17, 8)  # only the 3x3 level (corners, edge midpoints, centre)
    assert tasks.coarse_view(s)[2].shape == (3, 3)


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
    assert tasks.confined_path(str(allowed / "a.pt")) == (allowed / "a.pt").resolve()
    assert tasks.confined_path(f"  {allowed / 'a.pt'}  ") == (allowed / "a.pt").resolve()
    for bad, why in [
        (outside / "b.pt", "outside the allowed folders"),
        (allowed / "link.pt", "outside the allowed folders"),  # a symlink out of the root
        (allowed / ".." / "outside" / "b.pt", "outside the allowed folders"),
        (allowed / "missing.pt", "does not exist"),
        (allowed, "is not a file"),
        ("", "no path given"),
    ]:
        with pytest.raises(LandscapeError, match=why):
            tasks.confined_path(str(bad))
    # The project folder is always allowed; relative paths are taken from it.
    from core.paths import PROJECT_ROOT

    assert tasks.confined_path("pyproject.toml") == (PROJECT_ROOT / "pyproject.toml").resolve()
    monkeypatch.delenv("LANDSCAPE_ALLOWED_ROOTS")
    with pytest.raises(LandscapeError, match="outside"):
        tasks.confined_path(str(allowed / "a.pt"))


def test_variant_config():
    from dataclasses import asdict

    from core.models.train import TrainConfig

    base = TrainConfig(kind="rcmae", epochs=7, seed=3)
    v = tasks.variant_config(asdict(base) | {"unknown_field": 1}, mask_ratio=0.5, epochs=2, max_train=100)
    assert (v.kind, v.seed, v.mask_ratio, v.epochs, v.max_train) == ("rcmae", 3, 0.5, 2, 100)
    assert v.ema_momentum == base.ema_momentum
    with pytest.raises(LandscapeError, match="mask ratio"):
        tasks.variant_config(asdict(base), mask_ratio=1.5)
    with pytest.raises(LandscapeError, match="no training record"):
        tasks.variant_config({})


def test_profiles_and_task_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("LANDSCAPE_DASHBOARD_PROFILE", raising=False)
    assert profiles.dashboard_profile().name == "full"
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    assert profiles.dashboard_profile().name == "quick"
    trio = profiles.default_trio()
    assert set(trio) == {"mae", "rcmae", "sup"} and all(c.preset == "micro" for c in trio.values())
    assert profiles.default_surface_spec("x.pt").grid == 5
    assert profiles.default_surface_spec("x.pt", grid=9).grid == 9
    with pytest.raises(LandscapeError, match="unknown dashboard profile"):
        profiles.dashboard_profile("nope")
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "a"))
    k1 = profiles.task_key("surfaces", {"grid": 5})
    assert k1 == profiles.task_key("surfaces", {"grid": 5}) and k1.startswith("surfaces:")
    assert k1 != profiles.task_key("surfaces", {"grid": 9})
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "b"))
    assert k1 != profiles.task_key("surfaces", {"grid": 5})  # another cache is other work


def _context() -> tuple[JobContext, list]:
    """A JobContext outside a registry that records what it publishes."""
    from core.app.registry import Job

    seen: list = []
    ctx = JobContext(Job("k", "k"), threading.Lock())
    orig = ctx.set_partial

    def record(obj):
        seen.append(obj)
        orig(obj)

    ctx.set_partial = record
    return ctx, seen


def test_surfaces_task_coarse_first_and_per_model_errors(trained_ckpts, tmp_path, monkeypatch):
    from core.measure.surfaces import SurfaceSpec

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    good = SurfaceSpec(str(trained_ckpts["mae"]), grid=9, span=0.5, samples=16, device="cpu")
    bad = SurfaceSpec(str(trained_ckpts["mae"]), loss="supervised", grid=9, samples=16, device="cpu")
    ctx, seen = _context()
    batch = tasks.surfaces_task({"MAE": good, "wrong loss": bad})(ctx)
    assert set(batch.surfaces) == {"MAE"}
    assert "no classifier head" in batch.errors["wrong loss"]
    s = batch.surfaces["MAE"]
    assert s.complete and s.loss.shape == (9, 9) and np.isfinite(s.loss).all()
    # Partial pictures came coarse first: a complete 5x5 before the 9x9, and never a finer level before a coarser one.
    levels = []
    for b in seen:
        if "MAE" in b.surfaces:
            view = tasks.coarse_view(b.surfaces["MAE"])[2]
            if np.isfinite(view).all():  # a clean picture (before the 3x3 is done the raw grid is shown)
                levels.append(view.shape[0])
    assert levels[0] == 3 and 5 in levels and levels == sorted(levels) and levels[-1] == 9, levels
    # The numbers are the direct computation's (the task only schedules).
    from core.measure.surfaces import compute_surface

    direct = compute_surface(good)
    np.testing.assert_allclose(s.loss, direct.loss)
    assert ctx._job.fraction == pytest.approx(1.0)


def test_surfaces_task_does_not_start_what_exceeds_the_time_limit(trained_ckpts, tmp_path, monkeypatch):
    from core.measure.surfaces import SurfaceSpec

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    spec = SurfaceSpec(str(trained_ckpts["mae"]), grid=5, span=0.5, samples=16, device="cpu")
    ctx, _ = _context()
    batch = tasks.surfaces_task({"MAE": spec}, max_seconds=0.0)(ctx)
    assert not batch.surfaces and "not started" in batch.errors["MAE"]
    ctx, _ = _context()
    batch = tasks.surfaces_task({"MAE": spec}, max_seconds=3600.0)(ctx)
    assert batch.surfaces["MAE"].complete


def test_flatness_task_does_not_start_what_exceeds_the_time_limit(trained_ckpts, tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path))
    spec = profiles.default_flatness_spec(
        str(trained_ckpts["mae"]), samples=16, top_k=1, max_iter=5, trace=False, sharpness_rho=None, robustness=False
    )
    ctx, _ = _context()
    batch = tasks.flatness_task({"MAE": spec}, max_seconds=0.0)(ctx)
    assert not batch.reports and "not started" in batch.errors["MAE"]
    ctx, _ = _context()
    batch = tasks.flatness_task({"MAE": spec}, max_seconds=3600.0)(ctx)
    assert batch.reports["MAE"].top_eigenvalues


def test_flatness_points_match_the_reports(dashboard_cache, monkeypatch):
    from core.measure.flatness import compute_flatness

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    points = tasks.flatness_points()
    assert sorted(p["kind"] for p in points) == ["mae", "rcmae", "sup"]
    for p in points:
        path = next(
            i.path for i in importlib.import_module("core.app.zoo").list_checkpoints() if i.sha256 == p["sha256"]
        )
        rep = compute_flatness(profiles.default_flatness_spec(path))  # cached: read back
        assert p["top_eigenvalue"] == pytest.approx(rep.top_eigenvalues[0])
        assert p["trace"] == pytest.approx(rep.trace)
        assert p["sharpness"] == pytest.approx(rep.sharpness["average"])
        assert p["clean_acc"] == pytest.approx(rep.probe_acc)  # accuracy without noise on the report's images
        # the scatter's accuracy is the Models page's: the linear probe on the whole validation split
        assert p["linear_probe_acc"] == importlib.import_module("core.app.zoo").checkpoint_info(path).probe_acc
        assert p["acc_drop"] == pytest.approx(rep.robustness_drop)
        assert p["basin_width"] > 0


def test_prepare_defaults_second_run_is_cached(dashboard_cache, monkeypatch):
    import time as _time

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
    ctx, seen = _context()
    t0 = _time.perf_counter()
    res = first_run.prepare_defaults_task(profiles.dashboard_profile("quick"))(ctx)
    assert _time.perf_counter() - t0 < 30
    assert res.stage == "done" and not res.errors
    # RC-MAE also on its MAE term: compared with MAE on one function (core.report.comparison)
    labels = {"MAE", "RC-MAE", "Sup-ViT", "RC-MAE · MAE term"}
    assert set(res.surfaces.surfaces) == labels
    assert all(s.complete and s.meta.get("cached") for s in res.surfaces.surfaces.values())
    assert set(res.flatness.reports) == labels and not res.flatness.errors
    assert all(all(r.meta["cached"].values()) for r in res.flatness.reports.values())
    # fine-tuning, its accuracy under input corruptions and the interleaved latency: cached too
    assert set(res.facts) == {"mae", "rcmae", "sup", "rcmae@rcmae_mae", "generalization", "stability", "latency_pair"}
    assert len(res.facts["latency_pair"]["rcmae_ms"]) == len(res.facts["latency_pair"]["mae_ms"]) >= 2
    assert res.facts["stability"]["seeds"] == [0]
    assert res.facts["rcmae"].top_eigenvalue == pytest.approx(res.flatness.reports["RC-MAE"].top_eigenvalues[0])
    term = res.facts["rcmae@rcmae_mae"]
    assert term.function == "rcmae_mae" and term.robustness == res.facts["rcmae"].robustness
    assert term.top_eigenvalue == pytest.approx(res.flatness.reports["RC-MAE · MAE term"].top_eigenvalues[0])
    assert term.top_eigenvalue != pytest.approx(res.facts["rcmae"].top_eigenvalue)  # another function
    stages = [b.stage for b in seen]
    assert stages.index("landscapes") < stages.index("flatness") < stages.index("generalization")
    assert stages.index("generalization") < stages.index("summary")
