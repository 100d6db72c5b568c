"""Tests for core.studies.roi and core.studies.roi_report: the plateau rule on constructed histories, the FLOPs
estimate, the micro ladder (each rung is the run its epochs name, costs recorded, controls with equal steps, the
report and a cache-only reread), and a killed rung that resumes bit for bit."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.app import roi_facts
from core.errors import LandscapeError
from core.models import load_checkpoint, preset, train_model
from core.models.train import resume_path
from core.report import roi_sentence
from core.studies import RoiSpec, plateau, pretrain_flops, quick_roi, roi_markdown, run_roi
from core.studies.roi import control_config
from core.studies.roi_report import add_roi_to_findings, to_dict

ROOT = Path(__file__).resolve().parents[1]


def _hist(values: dict[int, float]) -> list[dict]:
    """A history with `val_loss` at the given epochs and training rows at every epoch up to the last."""
    last = max(values)
    return [
        {"epoch": e, "train_loss": 1.0} | ({"val_loss": values[e]} if e in values else {}) for e in range(1, last + 1)
    ]


def test_plateau_rule_on_constructed_histories():
    # still falling: 1.0 at epoch 80 -> 0.9 at 100 is 10% over the last fifth
    falling = plateau(_hist({e: 1.0 - 0.005 * (e - 80) if e >= 80 else 2.0 for e in range(1, 101)}))
    assert (
        not falling.reached and falling.improvement == pytest.approx(0.1) and (falling.start, falling.end) == (80, 100)
    )
    # flat: 1% over the last fifth
    flat = plateau(_hist({e: 1.0 - 0.0005 * max(0, e - 80) for e in range(1, 101)}))
    assert flat.reached and flat.improvement == pytest.approx(0.01)
    # a sparse schedule: the window starts at the last evaluation at or before 80% (epoch 240 of 300)
    sparse = plateau(_hist({**{e: 1.0 for e in range(1, 101)}, **{e: 0.5 - e / 1e4 for e in range(110, 301, 10)}}))
    assert sparse.start == 240 and sparse.end == 300 and sparse.improvement == pytest.approx(0.006 / 0.476)
    assert sparse.reached
    # rising loss is no improvement (reached), one evaluation or a NaN decides nothing
    assert plateau(_hist({1: 1.0, 10: 1.2})).reached
    assert not plateau(_hist({5: 1.0})).reached and math.isnan(plateau(_hist({5: 1.0})).improvement)
    assert not plateau(_hist({1: 1.0, 5: math.nan})).reached


def test_flops_estimate_and_the_teachers_share():
    cfg = preset("tiny", img_size=16, in_chans=1, num_classes=10)
    mae, rc = pretrain_flops(cfg, 0.75, "mae"), pretrain_flops(cfg, 0.75, "rcmae")
    assert mae["teacher"] == 0 and mae["train"] == 3 * mae["forward"]
    assert rc["train"] == pytest.approx(4 / 3 * mae["train"]) and rc["teacher"] == mae["forward"]
    assert pretrain_flops(cfg, 0.5, "mae")["forward"] > mae["forward"]  # more visible patches, more encoder work


def test_bad_ladders():
    for bad in ({"pretrain_epochs": (100, 30)}, {"pretrain_epochs": (30, 30)}, {"pretrain_epochs": (0,)}):
        with pytest.raises(LandscapeError, match="pretrain-epochs"):
            RoiSpec(**bad)
    with pytest.raises(LandscapeError, match="control budgets"):
        RoiSpec(budgets=(5,), control_budgets=(10,))
    with pytest.raises(LandscapeError, match="seeds"):
        RoiSpec(seeds=0)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_micro_ladder(cache):
    spec = replace(quick_roi(seeds=1), pretrain_epochs=(1, 2), surface=replace(quick_roi().surface, grid=3))
    logs: list[str] = []
    r = run_roi(spec, log=logs.append)
    assert r.rungs == (1, 2) and r.seeds() == (0,) and len(r.cells) == 2
    for c in r.cells:
        study = spec.study(c.epochs)
        for kind in ("mae", "rcmae"):
            # each rung's checkpoint is the run its epochs name: a complete run of that length, its own config
            ck = load_checkpoint(train_model(study.train_config(kind, c.seed)))  # cached: returns the file
            assert ck.meta["train"]["epochs"] == c.epochs and len(ck.meta["history"]) == c.epochs
            assert ck.meta["train"]["seed"] == c.seed and "eval_schedule" in ck.meta["train"]
            cost = c.cost[kind]
            assert cost["epochs"] == c.epochs and cost["steps"] == c.epochs * (410 // 32)
            assert cost["wall_s"] > 0 and cost["cpu_s"] > 0 and cost["flops"] > 0
            assert (cost["teacher_flops"] > 0) == (kind == "rcmae")
            assert math.isfinite(c.basin[kind]) and c.basin[kind] > 0
        # scratch, equal steps: at least pre-training + fine-tuning steps, fewer than one more epoch of them
        need = c.cost["mae"]["steps"] + spec.finetune.steps
        got = c.control["4"]["steps"]
        assert (
            need <= got < need + spec.finetune.epochs
            and got == control_config(spec, c.cost["mae"]["steps"], 4, 0).steps
        )
        assert {r.kind for r in c.runs} == {"mae", "rcmae", "scratch"}
    # a 2-epoch rung never reuses the 1-epoch run's weights
    w = {e: load_checkpoint(train_model(spec.study(e).train_config("mae", 0))).model.state_dict() for e in (1, 2)}
    assert not torch.equal(w[1]["blocks.0.attn.qkv.weight"], w[2]["blocks.0.attn.qkv.weight"])
    # scratch does not depend on the rung: one run serves both
    assert r.acc("scratch", 1, 4) == r.acc("scratch", 2, 4)
    text = roi_markdown(r)
    assert "Plateau rule" in text and "scratch, equal steps" in text and "| 2 |" in text
    d = to_dict(r)
    assert [x["epochs"] for x in d["rungs"]] == [1, 2] and d["rungs"][0]["budgets"]["4"]["verdict"]
    # rereading the cache computes nothing and gives the same numbers
    again = run_roi(spec, log=logs.append, cached_only=True)
    assert to_dict(again) == d
    # the Overview's facts and sentence from the cached ladder (budget: the spec's smallest, 10 is not in it)
    facts = roi_facts(spec=spec)
    assert [x["epochs"] for x in facts["rungs"]] == [1, 2] and facts["budget"] == 4 and facts["seeds"] == 1
    assert "MAE pre-training for 1 epochs" in roi_sentence(facts) and "(1 seed)" in roi_sentence(facts)


def test_a_half_cached_ladder_reads_what_exists(cache):
    spec = replace(quick_roi(seeds=1), pretrain_epochs=(1, 2), flatness=False, control_budgets=())
    assert run_roi(spec, log=print, cached_only=True).cells == ()
    run_roi(replace(spec, pretrain_epochs=(1,)), log=print)
    got = run_roi(spec, log=print, cached_only=True)
    assert got.rungs == (1,) and "1 of 2 (rung, seed) jobs" in roi_markdown(got)


KILL_RUNG = """
import os, signal, sys
import torch
torch.set_num_threads(1)
import core.models.train as train_mod
train_mod.EVAL_DENSE_EPOCHS, train_mod.EVAL_SPARSE_EVERY = 1, 2  # the sparse schedule matters in 4 epochs
cfg = train_mod.TrainConfig("rcmae", data="synthetic", preset="micro", epochs=4, batch_size=32, warmup_epochs=1,
                            n_snapshots=3, max_train=128)
def progress(p):
    if p.epoch == 4 and p.step == 2:
        os.kill(os.getpid(), signal.SIGKILL)
train_mod.train_model(cfg, device="cpu", progress=progress)
"""


def test_a_killed_rung_resumes_bit_for_bit(cache, tmp_path, monkeypatch):
    import core.models.train as train_mod

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", KILL_RUNG], env=env, cwd=ROOT, capture_output=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-800:]
    monkeypatch.setattr(train_mod, "EVAL_DENSE_EPOCHS", 1)
    monkeypatch.setattr(train_mod, "EVAL_SPARSE_EVERY", 2)
    cfg = replace(quick_roi().study(4).train_config("rcmae", 0), max_train=128)  # the rung's run, on fewer images
    path = train_mod.checkpoint_path(cfg)
    assert resume_path(path).exists() and not path.exists()
    seen = []
    resumed = load_checkpoint(train_mod.train_model(cfg, device="cpu", progress=seen.append))
    assert seen[0].message == "resumed after epoch 3" and {p.epoch for p in seen[1:]} == {4}
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "fresh"))
    fresh = load_checkpoint(train_mod.train_model(cfg, device="cpu"))
    for k, v in fresh.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    drop = ("time_s", "eval_s", "cpu_s")
    h = [{k: v for k, v in row.items() if k not in drop} for row in resumed.meta["history"]]
    assert h == [{k: v for k, v in row.items() if k not in drop} for row in fresh.meta["history"]]
    assert [("val_loss" in row) for row in h] == [True, True, False, True]  # epochs 1, 2, 4: the schedule


def test_reproduce_section_points_to_the_command(cache):
    from core.report import Findings
    from core.studies import ReproduceSpec
    from core.studies.measuring import RunResults

    results = RunResults(ReproduceSpec(seeds=2), (0, 1), {}, {}, {}, {}, {}, {}, {})
    f = add_roi_to_findings(Findings("t", "c", (), ()), results, cache / "out", print)
    title, text = f.sections[-1]
    assert "pre-training" in title and "python -m core roi --seeds 2" in text and "Nothing measured yet" in text
