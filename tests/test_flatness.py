"""Tests for core.measure.flatness: report fields per flag, per-stage caching, cached_only, agreement with
the core.geometry kernels called directly, robustness at sigma 0, format_report, and weights left untouched.

The session checkpoints are copied into private folders first: the robustness stage trains a default linear probe
next to an encoder checkpoint, which must not land in the shared fixture folder.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import core.measure.flatness as fr
from core.errors import LandscapeError
from core.geometry.attention import attention_for_second_derivatives
from core.geometry.hessian import hessian_eigenvalues
from core.geometry.params import select_parameters
from core.measure.flatness import STAGES, FlatnessSpec, compute_flatness, format_report
from core.models.checkpoints import file_sha256, load_checkpoint
from core.models.objectives import ObjectiveSpec, build_objective
from core.models.train import ProbeConfig, probe_path
from core.store.journal import Journal
from core.store.store import Store

# Small enough for a fraction of a second per stage on the micro models.
SMALL = dict(
    samples=16, top_k=2, max_iter=20, trace_probes=4, sharpness_samples=2, sigmas=(0.0, 0.1), robustness_draws=2
)
STAGE_FUNCS = (
    "hessian_eigenvalues",
    "hessian_extreme_eigenvalues",
    "hessian_trace",
    "spectral_density",
    "per_block_breakdown",
    "sharpness_average",
    "sharpness_worst",
    "robustness_curve",
)


def copy_models(trained_ckpts: dict[str, Path], cache: Path, kinds=("mae", "rcmae", "sup")) -> dict[str, Path]:
    """Copies of the session checkpoints in `<cache>/checkpoints` (same file names, so same hashes)."""
    folder = cache / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return {k: Path(shutil.copy2(trained_ckpts[k], folder / trained_ckpts[k].name)) for k in kinds}


def spec_for(path: Path, **overrides) -> FlatnessSpec:
    return FlatnessSpec(checkpoint=str(path), device="cpu", **(SMALL | overrides))


def values(report) -> dict:
    """A report's numbers without the bookkeeping (which says whether they came from the cache)."""
    d = report.to_dict()
    d.pop("meta")
    return d


@pytest.fixture(scope="module")
def flat_cache(tmp_path_factory, trained_ckpts) -> tuple[Path, dict[str, Path]]:
    cache = tmp_path_factory.mktemp("flatness_cache")
    return cache, copy_models(trained_ckpts, cache)


@pytest.fixture
def env(flat_cache, monkeypatch) -> dict[str, Path]:
    """The module's private cache as LANDSCAPE_CACHE_DIR; returns kind -> its checkpoint copies."""
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(flat_cache[0]))
    return flat_cache[1]


@pytest.fixture(scope="module")
def full(flat_cache):
    """Every stage on the MAE copy, computed once: (spec, report, seconds, progress calls, checkpoints loaded)."""
    cache, paths = flat_cache
    spec = spec_for(paths["mae"], density=True, density_iter=8, density_vectors=2, per_block=True)
    loaded, calls = [], []

    def recording_load(path, *args, **kwargs):
        ck = load_checkpoint(path, *args, **kwargs)
        loaded.append(ck)
        return ck

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(cache))
        mp.setattr(fr, "load_checkpoint", recording_load)
        t0 = time.perf_counter()
        report = compute_flatness(spec, progress=lambda stage, d, t: calls.append((stage, d, t)))
        seconds = time.perf_counter() - t0
    return spec, report, seconds, calls, loaded


# ---------------------------------------------------------------------------------------------------------------
# What a report holds


def test_full_report_has_every_stage(full):
    spec, r, _, calls, _ = full
    assert len(r.top_eigenvalues) == spec.top_k
    assert r.top_eigenvalues[0] >= r.top_eigenvalues[1] > 0
    assert r.lambda_min <= r.top_eigenvalues[-1]
    assert isinstance(r.eig_converged, bool)
    assert math.isfinite(r.trace) and r.trace_stderr >= 0
    assert len(r.density["grid"]) == len(r.density["density"]) > 1
    assert min(r.density["density"]) >= 0
    # The per-block groups partition the parameters the Hessian is taken over.
    assert {"block 0", "block 1", "decoder"} <= {b["group"] for b in r.per_block}
    assert sum(b["n_params"] for b in r.per_block) == r.meta["n_params"]
    assert r.sharpness["rho"] == spec.sharpness_rho
    assert {"average", "worst", "adaptive_average", "base_loss"} <= set(r.sharpness)
    assert r.sharpness["worst"] >= r.sharpness["average"] - 3 * r.sharpness["average_stderr"]
    assert r.robustness["sigmas"] == list(spec.sigmas)
    assert r.robustness["loss"] == "probe"  # an MAE's robustness is measured through its linear probe
    assert r.meta["model_kind"] == "mae" and r.meta["loss_kind"] == "pretrain"
    assert r.meta["cached"] == dict.fromkeys(STAGES, False)
    # Every stage reports its start and end.
    for stage in STAGES:
        assert (stage, 0, 1) in calls and (stage, 1, 1) in calls


def test_stages_not_asked_for_stay_none(env, full):
    spec = replace(full[0], trace=False, density=False, per_block=False, sharpness_rho=None, robustness=False)
    r = compute_flatness(spec)
    assert r.trace is r.trace_stderr is r.density is r.per_block is r.sharpness is r.robustness is None
    assert r.probe_acc is None and r.robustness_drop is None
    # The eigenvalue stage has the same settings as in the full run: it comes from the cache.
    assert r.meta["cached"] == {"eigenvalues": True}
    assert r.top_eigenvalues == full[1].top_eigenvalues


def test_weights_and_files_are_unchanged(full):
    loaded = full[4]
    assert {ck.kind for ck in loaded} == {"mae", "probe"}  # the model and the probe used for robustness
    for ck in loaded:
        fresh = load_checkpoint(ck.path)
        assert fresh.sha256 == ck.sha256 == file_sha256(ck.path)
        after, before = ck.model.state_dict(), fresh.model.state_dict()
        assert after.keys() == before.keys()
        for k, v in before.items():
            assert torch.equal(after[k].cpu(), v), k


# ---------------------------------------------------------------------------------------------------------------
# Caching


def test_second_call_is_served_from_the_cache(env, full, monkeypatch):
    spec, first, first_seconds, _, _ = full

    def must_not_run(*args, **kwargs):
        raise AssertionError("recomputed a cached stage")

    for name in STAGE_FUNCS:
        monkeypatch.setattr(fr, name, must_not_run)
    t0 = time.perf_counter()
    again = compute_flatness(spec)
    seconds = time.perf_counter() - t0
    assert again.meta["cached"] == dict.fromkeys(STAGES, True)
    assert values(again) == values(first)
    assert seconds < first_seconds


def test_cached_only_computes_nothing_until_computed(tmp_path, trained_ckpts, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    path = copy_models(trained_ckpts, cache, kinds=("mae",))["mae"]
    spec = spec_for(path, sharpness_rho=None)
    sha = file_sha256(path)

    assert compute_flatness(spec, cached_only=True) is None
    assert Store().list() == []
    assert not probe_path(path, sha, ProbeConfig()).exists()  # the robustness probe was not trained either

    # Every stage but robustness cached: still None, and still no probe trained.
    compute_flatness(replace(spec, robustness=False))
    assert compute_flatness(spec, cached_only=True) is None
    assert not probe_path(path, sha, ProbeConfig()).exists()

    computed = compute_flatness(spec)
    assert computed.meta["cached"] == {"eigenvalues": True, "trace": True, "robustness": False}
    assert probe_path(path, sha, ProbeConfig()).exists()
    fetched = compute_flatness(spec, cached_only=True)
    assert fetched is not None and all(fetched.meta["cached"].values())
    assert values(fetched) == values(computed)
    # A stage with other settings is not cached: the whole report is not available.
    assert compute_flatness(replace(spec, sigmas=(0.0, 0.2)), cached_only=True) is None
    assert compute_flatness(replace(spec, trace_probes=6), cached_only=True) is None


def test_each_stage_is_keyed_by_its_own_settings(env):
    base = spec_for(env["sup"], max_iter=5, trace_probes=4, per_block=True, sharpness_rho=None, robustness=False)
    first = compute_flatness(base)
    assert first.meta["cached"] == {"eigenvalues": False, "trace": False, "per_block": False}
    # More trace probes: only the trace is recomputed (per-block uses max(4, probes // 4) probes: still 4).
    more_probes = compute_flatness(replace(base, trace_probes=6))
    assert more_probes.meta["cached"] == {"eigenvalues": True, "trace": False, "per_block": True}
    assert more_probes.top_eigenvalues == first.top_eigenvalues
    # More Lanczos steps change the eigenvalues and the per-block numbers, not the trace.
    more_steps = compute_flatness(replace(base, max_iter=8))
    assert more_steps.meta["cached"] == {"eigenvalues": False, "trace": True, "per_block": False}
    # Another seed changes everything; another device changes nothing.
    assert not any(compute_flatness(replace(base, seed=1)).meta["cached"].values())
    assert all(compute_flatness(replace(base, device="auto")).meta["cached"].values())


# ---------------------------------------------------------------------------------------------------------------
# Agreement with independent computations


def test_top_eigenvalue_matches_lanczos_called_directly(env, full):
    spec, report = full[0], full[1]
    ck = load_checkpoint(spec.checkpoint)
    objective = build_objective(ck, ObjectiveSpec(loss="own", samples=spec.samples), "cpu")
    module = objective.module
    names = select_parameters(module, "all")
    with attention_for_second_derivatives(module):
        # Another start vector and more steps: the converged top eigenvalue must not depend on either.
        direct = hessian_eigenvalues(module, objective, k=1, names=names, max_iter=40, seed=123)
    assert direct.converged[0]
    assert report.meta["n_params"] == sum(module.get_parameter(n).numel() for n in names)
    assert report.top_eigenvalues[0] == pytest.approx(direct.values[0], rel=1e-3)


@pytest.mark.parametrize("kind", ["mae", "sup"])
def test_robustness_at_sigma_zero_is_the_clean_accuracy(env, full, kind):
    spec = spec_for(env[kind], trace=False, sharpness_rho=None, max_iter=10)
    r = compute_flatness(spec)
    ck = load_checkpoint(env[kind])
    if kind == "sup":
        clean = build_objective(ck, ObjectiveSpec(loss="supervised", samples=spec.samples), "cpu")
    else:
        probe = load_checkpoint(probe_path(env[kind], ck.sha256, ProbeConfig()))
        clean = build_objective(probe, ObjectiveSpec(loss="probe", samples=spec.samples), "cpu")
    expect = clean.evaluate(clean.module)
    assert r.robustness["acc_mean"][0] == pytest.approx(expect["acc"])
    assert r.robustness["loss_mean"][0] == pytest.approx(expect["loss"], rel=1e-5)
    assert r.probe_acc == pytest.approx(expect["acc"])
    assert r.robustness_drop == pytest.approx(r.robustness["acc_mean"][0] - r.robustness["acc_mean"][-1])


def test_rcmae_robustness_and_probe_hessian_cover_the_teacher_encoder(env):
    """The RC-MAE probe reads the EMA teacher, whose parameters are frozen: they must still be perturbed."""
    r = compute_flatness(spec_for(env["rcmae"], trace=False, sharpness_rho=None, max_iter=10))
    assert r.robustness["loss"] == "probe"
    noisy = r.robustness["loss_mean"][1]
    assert noisy != r.robustness["loss_mean"][0]  # noise on the encoder changes the loss

    ck = load_checkpoint(env["rcmae"])
    probe = probe_path(env["rcmae"], ck.sha256, ProbeConfig())
    p = compute_flatness(spec_for(probe, trace=False, sharpness_rho=None, robustness=False, max_iter=10))
    encoder = sum(ck.model.student.get_parameter(n).numel() for n in select_parameters(ck.model.student, "encoder"))
    head = sum(t.numel() for t in load_checkpoint(probe).model.head.parameters())
    assert p.meta["loss_kind"] == "probe"
    assert p.meta["n_params"] == encoder + head


# ---------------------------------------------------------------------------------------------------------------
# Formatting, stopping, bad specs


def test_format_report_shows_the_numbers(full):
    r = full[1]
    text = format_report(r)
    assert text.splitlines()[0].startswith("flatness of a mae model, pretrain loss")
    assert f"{r.meta['n_params']:,}" in text
    for v in r.top_eigenvalues:
        assert f"{v:.5g}" in text
    for needle in (
        f"{r.lambda_min:.5g}",
        f"{r.trace:.5g}",
        f"{r.sharpness['average']:.5g}",
        f"{r.sharpness['worst']:.5g}",
        f"{r.robustness['loss_mean'][1]:.5g}",
        f"{r.robustness['acc_mean'][1]:.4f}",
        "block 0",
        "spectral density",
    ):
        assert needle in text
    bare = fr.FlatnessReport(top_eigenvalues=r.top_eigenvalues, lambda_min=r.lambda_min, eig_converged=False)
    bare_text = format_report(bare)
    assert "not converged" in bare_text
    assert "trace" not in bare_text and "weight noise" not in bare_text and "sharpness" not in bare_text


def test_check_stop_and_bad_specs(env):
    with pytest.raises(LandscapeError, match="stopped"):
        compute_flatness(spec_for(env["sup"], max_iter=7), check_stop=lambda: True)
    with pytest.raises(LandscapeError):
        compute_flatness(spec_for(env["sup"], samples=0))
    with pytest.raises(LandscapeError):
        compute_flatness(spec_for(env["sup"], top_k=0))
    with pytest.raises(LandscapeError, match="not found"):
        compute_flatness(spec_for(env["sup"].with_name("missing.pt")))


def test_estimate_before_starting_and_refusal(tmp_path, trained_ckpts, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    path = copy_models(trained_ckpts, cache, kinds=("mae",))["mae"]
    spec = spec_for(path, robustness=False)
    seen = []
    with pytest.raises(LandscapeError, match="not started"):
        compute_flatness(spec, confirm=lambda est: seen.append(est) or False)
    assert seen and seen[0].points > 0 and seen[0].seconds > 0 and seen[0].bytes > 0
    assert Store().list("flatness") == []  # nothing computed
    # More work, a larger estimate.
    bigger = []
    with pytest.raises(LandscapeError):
        compute_flatness(replace(spec, trace_probes=spec.trace_probes * 8), confirm=lambda e: bigger.append(e) or False)
    assert bigger[0].points > seen[0].points
    report = compute_flatness(spec, confirm=lambda est: True)
    assert report.top_eigenvalues
    # A cached report is not estimated again.
    compute_flatness(spec, confirm=lambda est: pytest.fail("estimated a cached report"))


# ---------------------------------------------------------------------------------------------------------------
# Resume inside a stage: stops and kills lose at most the step in flight


def stopped_eigenvalues(tmp_path: Path, trained_ckpts, monkeypatch, after: int) -> FlatnessSpec:
    """An eigenvalue-only report of the Sup-ViT copy in a fresh cache, stopped after `after` progress ticks."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    path = copy_models(trained_ckpts, cache, kinds=("sup",))["sup"]
    spec = spec_for(path, trace=False, sharpness_rho=None, robustness=False, max_iter=12)
    seen = []
    with pytest.raises(LandscapeError, match="stopped"):
        compute_flatness(spec, progress=lambda s, d, t: seen.append(d), check_stop=lambda: len(seen) >= after)
    return spec


def test_stop_inside_a_stage_keeps_its_steps(tmp_path, trained_ckpts, monkeypatch):
    spec = stopped_eigenvalues(tmp_path, trained_ckpts, monkeypatch, after=6)
    resumed = compute_flatness(spec)
    assert resumed.meta["reused_steps"]["eigenvalues"] >= 5
    assert "resumed an interrupted run" in format_report(resumed)
    fresh = compute_flatness(spec, store=Store(tmp_path / "fresh"))
    assert values(resumed) == values(fresh) and fresh.meta["reused_steps"]["eigenvalues"] == 0


KILL_SCRIPT = """
import os, signal, sys, json
import torch
torch.set_num_threads(1)
from core.measure.flatness import FlatnessSpec, compute_flatness
spec = FlatnessSpec(**json.loads(sys.argv[1]))
stage, at = sys.argv[2], int(sys.argv[3])
def progress(s, done, total):
    if s == stage and done >= at:
        os.kill(os.getpid(), signal.SIGKILL)
compute_flatness(spec, progress=progress)
"""


def test_resume_after_sigkill_is_bit_for_bit(tmp_path, trained_ckpts, monkeypatch):
    """Killed in the middle of the eigenvalues, then of the trace, then of the sharpness draws: the final report
    equals an uninterrupted run's, each rerun replays the killed run's steps, and no journal is left behind."""
    import json
    import os
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    cache = tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    path = copy_models(trained_ckpts, cache, kinds=("mae",))["mae"]
    spec = spec_for(path, robustness=False, trace_probes=8, sharpness_samples=4)
    args = {k: list(v) if isinstance(v, tuple) else v for k, v in spec.__dict__.items()}
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    journals = lambda: sorted(cache.rglob("journal.bin"))  # noqa: E731
    for stage, at in (("eigenvalues", 6), ("trace", 5), ("sharpness", 6)):
        r = subprocess.run(
            [sys.executable, "-c", KILL_SCRIPT, json.dumps(args), stage, str(at)],
            env=env,
            cwd=root,
            capture_output=True,
            timeout=300,
        )
        assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-800:]
        # The killed stage's steps are in its journal; finished stages' journals are gone.
        assert len(journals()) == 1 and len(Journal(journals()[0])) >= at
    torch.set_num_threads(1)
    resumed = compute_flatness(spec)
    assert resumed.meta["cached"] == {"eigenvalues": True, "trace": True, "sharpness": False}
    assert resumed.meta["reused_steps"]["sharpness"] >= 5 and journals() == []
    fresh = compute_flatness(spec, store=Store(tmp_path / "fresh"))
    assert values(resumed) == values(fresh)


RUN_SCRIPT = """
import json, sys
import torch
torch.set_num_threads(1)
from core.measure.flatness import FlatnessSpec, compute_flatness
r = compute_flatness(FlatnessSpec(**json.loads(sys.argv[1])))
d = r.to_dict()
print(json.dumps({"values": {k: v for k, v in d.items() if k != "meta"}, "cached": d["meta"]["cached"]}))
"""


def test_two_processes_computing_the_same_report_agree(tmp_path, trained_ckpts, monkeypatch):
    """Started together on one cache: both finish with the same numbers, each stage is computed once (the other
    process waits on the entry's lock and reads it) and the store holds one clean entry per stage."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    cache = tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    path = copy_models(trained_ckpts, cache, kinds=("sup",))["sup"]
    spec = spec_for(path, trace_probes=6)
    args = json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in spec.__dict__.items()})
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, args], env=env, cwd=root, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0]["values"] == outs[1]["values"]
    for stage in outs[0]["cached"]:  # one process computed each stage, the other read it
        assert sorted([outs[0]["cached"][stage], outs[1]["cached"][stage]]) == [False, True], stage
    entries = Store().list("flatness")
    assert len(entries) == len(outs[0]["cached"]) and all(e.finished for e in entries)
    assert values(compute_flatness(spec)) == outs[0]["values"]


def test_an_interrupted_stage_is_listed_with_its_steps(tmp_path, trained_ckpts, monkeypatch):
    stopped_eigenvalues(tmp_path, trained_ckpts, monkeypatch, after=4)
    (entry,) = Store().list("flatness")
    assert not entry.finished and entry.n_steps_logged >= 3
