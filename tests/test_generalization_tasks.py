"""core/app/generalization_tasks.py: the dashboard's study job, its fast cached reads, and the first-run measurement.

Micro models on synthetic data (tests/conftest.py `trained_ckpts`, the quick profile's seed-0 MAE / RC-MAE), copied
into a fresh cache per test module, fine-tuned for 16 steps.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import core.app.generalization_tasks as gj
from core.app.first_run import DefaultsResult, gather_facts
from core.app.profiles import dashboard_profile, default_trio
from core.app.registry import JobRegistry
from core.models.train import checkpoint_path
from core.studies.generalization import KINDS, SPLITS, run_study, study_series

QUICK = dashboard_profile("quick")


@pytest.fixture(scope="module")
def study_cache(trained_ckpts: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with the quick profile's MAE / RC-MAE (seed 0) copied in, nothing fine-tuned yet."""
    root = tmp_path_factory.mktemp("gen_jobs_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(root))
        for kind in ("mae", "rcmae"):
            target = checkpoint_path(default_trio(QUICK)[kind])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(trained_ckpts[kind], target)
    return root


@pytest.fixture
def cache(study_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(study_cache))
    return study_cache


def small_spec(**kw):
    """The quick study at one budget and one seed (3 runs of 16 steps), light flatness."""
    return gj.dashboard_study(QUICK, **({"budgets": (4,), "seeds": 1} | kw))


def test_the_dashboard_study_pretrains_the_default_trio_for_seed_0():
    """Seed 0 of the page's study is the Overview's MAE / RC-MAE (the same cache files), for both profiles."""
    for name in ("full", "quick"):
        profile = dashboard_profile(name)
        spec = gj.dashboard_study(profile)
        trio = default_trio(profile)
        for kind in ("mae", "rcmae"):
            assert spec.train_config(kind, 0) == trio[kind], (name, kind)
        assert spec.seeds == gj.DEFAULT_SEEDS >= 3
        assert gj.first_run_budget(spec) in spec.budgets
    assert gj.first_run_budget(gj.dashboard_study(dashboard_profile("full"))) == 10


def test_study_job_reports_progress_and_matches_the_engines_cached_read(cache: Path):
    spec = small_spec(flatness=True)
    assert not gj.cached_study(spec).runs  # nothing fine-tuned yet
    messages: list[str] = []
    reg = JobRegistry()
    try:
        job = reg.submit("gen", gj.study_label(spec), gj.generalization_task(spec))
        while not job.wait(0.05):
            messages.append(job.message)
        assert job.ok, job.error
    finally:
        reg.shutdown()
    res = job.result
    assert sorted(r.kind for r in res.runs) == sorted(KINDS) and {r.budget for r in res.runs} == {4}
    assert any(m.startswith("job.gen_finetune|") for m in messages) or any(
        m.startswith("job.gen_flatness|") for m in messages
    ), messages
    # The engine reads the same runs, numbers and flatness from the cache (models built, data loaded).
    eng = run_study(spec, cached_only=True)
    cells = [(r.kind, r.budget, r.seed, r.path) for r in res.runs]
    assert cells == [(r.kind, r.budget, r.seed, r.path) for r in eng.runs]
    for a, b in zip(res.runs, eng.runs, strict=True):
        assert a.summary == b.summary
        assert set(a.flatness) == set(SPLITS) == set(b.flatness)
        for split in SPLITS:
            assert a.flatness[split] == pytest.approx(b.flatness[split], nan_ok=True)
    assert res.facts["steps"] == spec.finetune.steps and res.facts["num_classes"] >= 2
    # A rerun of the same job is all cache: same result.
    reg = JobRegistry()
    try:
        again = reg.submit("gen2", "again", gj.generalization_task(spec))
        assert again.wait(120) and again.ok, again.error
    finally:
        reg.shutdown()
    assert [r.path for r in again.result.runs] == [r.path for r in res.runs]


def test_flatness_lookup_fills_what_a_fresh_process_does_not_know(cache: Path, monkeypatch: pytest.MonkeyPatch):
    spec = small_spec(flatness=True)
    reg = JobRegistry()
    try:
        assert reg.submit("gen", "study", gj.generalization_task(spec)).wait(300)
        monkeypatch.setattr(gj, "_FLAT", {})  # a restarted server: the numbers are on disk, not in memory
        monkeypatch.setattr(gj, "_FLAT_MISS", {})
        res = gj.cached_study(spec)
        assert res.runs and not any(r.flatness for r in res.runs)
        unknown = gj.flatness_unknown(spec, res)
        assert sorted(unknown) == sorted(r.path for r in res.runs)
        job = reg.submit("lookup", "lookup", gj.flatness_lookup_task(spec, unknown))
        assert job.wait(120) and job.ok, job.error
        assert job.result == len(unknown) * len(SPLITS)
    finally:
        reg.shutdown()
    res = gj.cached_study(spec)
    assert all(set(r.flatness) == set(SPLITS) for r in res.runs)
    assert gj.flatness_unknown(spec, res) == []
    # Other flatness settings, never measured: looked up once, then remembered as missing (the page does not
    # resubmit the lookup on every rerun) until the flatness store changes.
    other = replace(spec, flat_iter=spec.flat_iter + 1)
    unknown = gj.flatness_unknown(other, gj.cached_study(other))
    assert len(unknown) == len(res.runs)
    reg = JobRegistry()
    try:
        job = reg.submit("lookup2", "lookup", gj.flatness_lookup_task(other, unknown))
        assert job.wait(120) and job.ok and job.result == 0, job.error
    finally:
        reg.shutdown()
    assert gj.flatness_unknown(other, gj.cached_study(other)) == []


def test_first_run_measurement_has_the_contract_shape(cache: Path):
    trio = {k: str(checkpoint_path(c)) for k, c in default_trio(QUICK).items() if k in ("mae", "rcmae")}
    reg = JobRegistry()
    try:
        job = reg.submit("first", "first", lambda ctx: gj.first_run_generalization(ctx, trio, QUICK, 0.0, 1.0))
        assert job.wait(300) and job.ok, job.error
    finally:
        reg.shutdown()
    gen = gj.generalization_facts(trio, QUICK)
    assert set(gen) == {"labels_per_class", "seeds", "val_acc", "gap_acc", "epochs", "steps", "data", "note"}
    assert gen["labels_per_class"] == gj.first_run_budget(gj.dashboard_study(QUICK)) and isinstance(
        gen["labels_per_class"], int
    )
    assert gen["seeds"] == list(gj.FIRST_RUN_SEEDS)
    for key in ("val_acc", "gap_acc"):
        assert set(gen[key]) == {"scratch", "mae", "rcmae"}
        for vals in gen[key].values():
            assert len(vals) == len(gen["seeds"]) and all(isinstance(v, float) and math.isfinite(v) for v in vals)
    assert all(0.0 <= v <= 1.0 for vals in gen["val_acc"].values() for v in vals)
    spec = gj.dashboard_study(QUICK)
    assert (gen["epochs"], gen["steps"], gen["data"]) == (spec.finetune.epochs, spec.finetune.steps, spec.data)
    assert "without labels" in gen["note"]
    # The numbers are the cached runs' own (train - validation for the gap).
    res = gj.cached_study(gj.first_run_spec(QUICK), {(k, 0): p for k, p in trio.items()})
    for r in res.runs:
        assert gen["val_acc"][r.kind] == [r.summary["val_acc"]]
        assert gen["gap_acc"][r.kind] == [pytest.approx(r.summary["train_acc"] - r.summary["val_acc"])]
    # gather_facts carries it under "generalization" (the Overview reads it from there).
    facts = gather_facts(DefaultsResult(paths=trio, labels={"mae": "MAE", "rcmae": "RC-MAE"}), QUICK)
    assert facts["generalization"] == gen


def test_gather_facts_says_nothing_when_fine_tuning_was_not_measured(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "empty"))
    assert gj.generalization_facts({}, QUICK) is None
    assert "generalization" not in gather_facts(DefaultsResult(), QUICK)


def test_series_points_and_landscape_specs(cache: Path):
    spec = small_spec(budgets=(4, None))  # flatness only at 4 labels per class (below): cheaper
    flat = small_spec(flatness=True)
    reg = JobRegistry()
    try:
        job = reg.submit("gen", "study", gj.generalization_task(spec))
        assert job.wait(300) and job.ok, job.error
        with_flat = reg.submit("flat", "study", gj.generalization_task(flat))
        assert with_flat.wait(300) and with_flat.ok, with_flat.error
    finally:
        reg.shutdown()
    res = job.result
    s = study_series(res, "val_acc", all_label="alle")
    assert set(s) == set(KINDS)
    mae = s["mae"]
    assert mae["x"][0] == 4.0 and mae["tick"][0] == "4" and mae["n"] == [1, 1]
    n_all = next(r.summary["n_labels"] for r in res.runs if r.budget is None)
    assert mae["x"][1] == pytest.approx(n_all / res.facts["num_classes"]) and mae["tick"][1].startswith("alle (~")
    assert all(math.isnan(v) for v in mae["std"])  # one seed: no spread, never a made-up one
    assert mae["mean"] == list(res.values("mae", 4, "val_acc")) + list(res.values("mae", None, "val_acc"))
    pts, stat = gj.gap_points(with_flat.result, "lambda_max", "labeled", "gap_acc")
    assert len(pts) == 3 and stat["n"] == 3 and 0 < stat["p_spearman"] <= 1
    assert {p["kind"] for p in pts} == set(KINDS)
    assert [p["y"] for p in pts] == [r.summary["gap_acc"] for r in with_flat.result.runs]
    assert [p["x"] for p in pts] == [r.flatness["labeled"]["lambda_max"] for r in with_flat.result.runs]
    specs = gj.landscape_specs(res, 4, 0, "val", grid=5)
    assert len(specs) == 3 and len({s.seed for s in specs.values()}) == 1
    assert {(s.loss, s.split, s.grid, s.dim) for s in specs.values()} == {("supervised", "val", 5, 2)}
    with pytest.raises(Exception, match="no cached run"):
        gj.landscape_specs(res, 16, 0)
