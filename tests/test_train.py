"""Tests for core.models.train: learning, determinism, history, snapshots, caching, progress, stopping, linear
probes."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from conftest import TINY_PROBE, tiny_train_config

from core.errors import LandscapeError
from core.models.checkpoints import load_checkpoint
from core.models.data import load_dataset
from core.models.train import (
    EpochRun,
    ProbeConfig,
    Progress,
    TrainConfig,
    checkpoint_path,
    cosine_lr,
    ema_momentum_at,
    ema_record,
    encoder_dataset,
    eval_epochs,
    eval_schedule_text,
    probe_accuracy,
    resolve_ema_momentum,
    resume_path,
    train_model,
    train_probe,
)
from core.models.vit import RCMAE, build_model, preset
from core.paths import cache_root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache folder for tests that train or save."""
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _trainable(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach() for k, p in module.named_parameters() if p.requires_grad}


def _files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# A run of a second or less: 64 training images, 16 per batch (4 steps per epoch).
def _quick(kind: str, **overrides) -> TrainConfig:
    return tiny_train_config(kind, **({"epochs": 1, "max_train": 64, "batch_size": 16, "n_snapshots": 2} | overrides))


# ---------------------------------------------------------------------------------------------------------------
# Learning and history (on the session checkpoints: micro, synthetic, 3 epochs)


@pytest.mark.parametrize("kind", ["mae", "rcmae", "sup"])
def test_loss_goes_down_and_history_is_complete(trained_ckpts, trained_configs, kind):
    cfg = trained_configs[kind]
    loaded = load_checkpoint(trained_ckpts[kind])
    hist = loaded.meta["history"]
    assert [h["epoch"] for h in hist] == list(range(1, cfg.epochs + 1))
    for h in hist:
        assert {"epoch", "train_loss", "val_loss", "time_s"} <= set(h)
        assert h["time_s"] > 0 and all(isinstance(h[k], float) for k in ("train_loss", "val_loss"))
        assert ("val_acc" in h) == (kind == "sup") and ("probe_acc" in h) == (kind != "sup")
    assert hist[-1]["train_loss"] < 0.9 * hist[0]["train_loss"]
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    if kind == "sup":
        assert hist[-1]["val_acc"] > 0.4  # 4 balanced classes: chance is 0.25
    else:
        assert all(0.0 <= h["probe_acc"] <= 1.0 for h in hist)
    # what the file says about the run
    ds = load_dataset("synthetic")
    steps = len(ds.train_y) // cfg.batch_size  # 12
    recorded = dataclasses.asdict(cfg) | ema_record(cfg, steps) | {"eval_schedule": eval_schedule_text()}
    assert loaded.meta["train"] == recorded and loaded.meta["seed"] == cfg.seed
    if kind == "rcmae":  # "auto" by default, resolved for this run's 12 steps per epoch and recorded
        assert cfg.ema_momentum == "auto" and loaded.meta["train"]["steps_per_epoch"] == steps == 12
        assert loaded.meta["train"]["ema_momentum_resolved"] == pytest.approx(0.996 ** (312 / 12), rel=1e-12)
        assert loaded.model.momentum == loaded.meta["train"]["ema_momentum_resolved"]
        assert "Busbridge" in loaded.meta["train"]["ema_rule"] and "auto = 0.901" in loaded.describe()
    else:
        assert not {"ema_momentum_resolved", "ema_rule"} & set(loaded.meta["train"])
    data = loaded.meta["data"]
    assert data["spec"] == "synthetic" and data["fingerprint"] == ds.fingerprint()
    assert (data["n_train"], data["n_val"], data["num_classes"]) == (len(ds.train_y), len(ds.val_y), 4)
    assert loaded.config == preset("micro", num_classes=4, img_size=16, in_chans=1)


def test_val_loss_is_the_recorded_one(trained_ckpts, trained_configs):
    """The last recorded val loss is the MAE loss of the saved weights on the val set under seed-0 masks."""
    loaded = load_checkpoint(trained_ckpts["mae"])
    ds = load_dataset("synthetic")
    noise = loaded.model.draw_noise(len(ds.val_x), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        loss, _, _ = loaded.model(ds.val_x, trained_configs["mae"].mask_ratio, noise)
    assert float(loss) == pytest.approx(loaded.meta["history"][-1]["val_loss"], rel=1e-4)


@pytest.mark.parametrize("kind", ["mae", "rcmae", "sup"])
def test_snapshots(trained_ckpts, trained_configs, kind):
    cfg = trained_configs[kind]
    loaded = load_checkpoint(trained_ckpts[kind])
    epochs = [e for e, _ in loaded.snapshots]
    assert epochs[0] == 0 and epochs[-1] == cfg.epochs and epochs == sorted(set(epochs))
    assert 2 <= len(epochs) <= cfg.n_snapshots
    trained = loaded.landscape_module
    _assert_equal(loaded.snapshots[-1][1], _trainable(trained))  # the last snapshot is the saved weights
    # the first is the initialization: a fresh model built under the run's seed
    torch.manual_seed(cfg.seed)
    fresh = build_model(kind, loaded.config)
    fresh = fresh.student if isinstance(fresh, RCMAE) else fresh
    _assert_equal(loaded.snapshots[0][1], _trainable(fresh))
    assert not torch.equal(loaded.snapshots[0][1]["blocks.0.attn.qkv.weight"], trained.blocks[0].attn.qkv.weight)


def test_rcmae_teacher_follows_the_student(trained_ckpts):
    model = load_checkpoint(trained_ckpts["rcmae"]).model
    s, t = model.student.blocks[0].mlp.fc1.weight, model.teacher.blocks[0].mlp.fc1.weight
    assert not torch.equal(s, t)
    start = load_checkpoint(trained_ckpts["rcmae"]).snapshots[0][1]["blocks.0.mlp.fc1.weight"]
    # auto's momentum (0.901 at 12 steps per epoch: a horizon of ~10 steps) over 36 steps: the teacher went most of
    # the way the student went, and lags behind it
    assert 0.5 * (s - start).norm() < (t - start).norm() < (s - start).norm()
    assert 0 < (t - s).norm() < 0.5 * (s - start).norm()


def test_an_explicit_momentum_keeps_the_teacher_behind(cache):
    """0.996 over 12 steps (the paper's value on a run 26x shorter per epoch): the teacher barely moves."""
    cfg = _quick("rcmae", epochs=3, ema_momentum=0.996)
    loaded = load_checkpoint(train_model(cfg, device="cpu"))
    assert loaded.model.momentum == 0.996 and loaded.meta["train"]["ema_rule"] == "explicit value"
    s, t = loaded.model.student.blocks[0].mlp.fc1.weight, loaded.model.teacher.blocks[0].mlp.fc1.weight
    start = loaded.snapshots[0][1]["blocks.0.mlp.fc1.weight"]
    assert 0 < (t - start).norm() < 0.1 * (s - start).norm()  # 1 - 0.996**12 = 4.7 % of the way, at most


@pytest.mark.parametrize(
    ("steps", "expected"), [(312, 0.996), (11, 0.8925416841781574), (1, 0.996**312), (3120, 0.996**0.1)]
)
def test_auto_momentum_keeps_the_papers_horizon_in_epochs(steps, expected):
    m = resolve_ema_momentum("auto", steps)
    assert m == pytest.approx(expected, rel=1e-12)
    # the horizon in epochs, -1 / (S ln m), is the paper's -1 / (312 ln 0.996) = 0.80 epochs at every S
    assert -1 / (steps * math.log(m)) == pytest.approx(-1 / (312 * math.log(0.996)), rel=1e-9)
    assert resolve_ema_momentum(0.99, steps) == 0.99 and resolve_ema_momentum(1, steps) == 1.0
    with pytest.raises(LandscapeError, match="steps per epoch"):
        resolve_ema_momentum("auto", 0)


def test_cosine_momentum_schedule():
    total, m = 100, 0.9
    values = [ema_momentum_at(m, k, total, "cosine") for k in range(total)]
    assert (
        values[0] == m
        and values[50] == pytest.approx(0.95)
        and values[-1] == pytest.approx(1 - 0.1 * 0.5 * (1 + math.cos(math.pi * 0.99)))
    )
    assert all(a < b for a, b in zip(values, values[1:], strict=False)) and values[-1] < 1.0
    assert values[25] == pytest.approx(1 - 0.1 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert {ema_momentum_at(m, k, total, "constant") for k in range(total)} == {m}
    with pytest.raises(LandscapeError, match="unknown EMA schedule"):
        ema_momentum_at(m, 0, total, "linear")


def test_a_cosine_run_differs_and_records_its_last_momentum(cache):
    """The schedule reaches the EMA update (the teacher ends elsewhere) and is part of the run's key."""
    const, cos = _quick("rcmae", epochs=2), _quick("rcmae", epochs=2, ema_schedule="cosine")
    assert checkpoint_path(const) != checkpoint_path(cos) and "ema_schedule" not in const.key()
    a, b = load_checkpoint(train_model(const, device="cpu")), load_checkpoint(train_model(cos, device="cpu"))
    assert not torch.equal(a.model.teacher.blocks[0].mlp.fc1.weight, b.model.teacher.blocks[0].mlp.fc1.weight)
    m = b.meta["train"]["ema_momentum_resolved"]  # 4 steps per epoch, 8 in all
    assert b.meta["train"]["ema_momentum_final"] == pytest.approx(1 - (1 - m) * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert "cosine to 1" in b.describe() and "ema_momentum_final" not in a.meta["train"]


def _assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------------------------------------------------------
# Determinism, caching, paths


@pytest.mark.parametrize("kind", ["rcmae", "sup"])
def test_same_config_gives_identical_weights(cache, kind):
    cfg = _quick(kind)
    path = train_model(cfg, device="cpu")
    first = load_checkpoint(path)
    again = train_model(cfg, device="cpu", force=True)
    assert again == path
    second = load_checkpoint(again)
    _assert_equal(first.model.state_dict(), second.model.state_dict())
    drop = lambda hist: [{k: v for k, v in h.items() if k not in ("time_s", "eval_s", "cpu_s")} for h in hist]  # noqa: E731
    assert drop(first.meta["history"]) == drop(second.meta["history"])
    other = load_checkpoint(train_model(dataclasses.replace(cfg, seed=1), device="cpu"))
    assert not torch.equal(other.landscape_module.cls_token, first.landscape_module.cls_token)


def test_second_call_returns_the_cached_file(trained_ckpts, trained_configs, trained_cache_dir, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(trained_cache_dir))
    path = trained_ckpts["sup"]
    stamp = path.stat().st_mtime_ns
    calls = []
    assert train_model(trained_configs["sup"], device="cpu", progress=calls.append) == path
    assert calls == [] and path.stat().st_mtime_ns == stamp


def test_a_broken_cached_file_is_retrained(cache):
    cfg = _quick("sup")
    path = checkpoint_path(cfg)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    assert train_model(cfg, device="cpu") == path
    assert load_checkpoint(path).kind == "sup"


def test_an_explicit_path_holding_another_run_is_not_reused(cache, tmp_path):
    cfg = _quick("sup")
    path = train_model(cfg, device="cpu", path=tmp_path / "mine.pt")
    assert train_model(dataclasses.replace(cfg, gamma=0.1), device="cpu", path=path) == path  # unused by sup
    other = dataclasses.replace(cfg, lr=1e-3)
    with pytest.raises(LandscapeError, match="already holds another"):
        train_model(other, device="cpu", path=path)
    with pytest.raises(LandscapeError, match="already holds another"):
        train_model(dataclasses.replace(cfg, kind="mae"), device="cpu", path=path)
    assert train_model(other, device="cpu", path=path, force=True) == path
    assert load_checkpoint(path).meta["train"]["lr"] == 1e-3
    # the same for probes
    probe = train_probe(path, ProbeConfig(epochs=1), device="cpu", path=tmp_path / "probe.pt")
    with pytest.raises(LandscapeError, match="already holds another"):
        train_probe(path, ProbeConfig(epochs=2), device="cpu", path=probe)


def test_checkpoint_path_is_keyed_by_what_changes_the_weights(cache):
    cfg = TrainConfig(kind="mae", data="synthetic", preset="micro")
    path = checkpoint_path(cfg)
    assert path.parent == cache_root() / "checkpoints" and cache_root() == cache.resolve()
    assert path.name.startswith("mae_synthetic_micro_s0_") and path.suffix == ".pt"
    assert checkpoint_path(dataclasses.replace(cfg, gamma=0.3, ema_momentum=0.9)) == path  # unused by MAE
    for change in ({"lr": 1e-3}, {"epochs": 2}, {"max_train": 50}, {"mask_ratio": 0.5}, {"seed": 1}):
        assert checkpoint_path(dataclasses.replace(cfg, **change)) != path, change
    rc = dataclasses.replace(cfg, kind="rcmae")
    assert checkpoint_path(dataclasses.replace(rc, gamma=0.3)) != checkpoint_path(rc)
    assert checkpoint_path(dataclasses.replace(rc, ema_momentum=0.996)) != checkpoint_path(rc)  # auto by default
    assert checkpoint_path(dataclasses.replace(rc, ema_schedule="cosine")) != checkpoint_path(rc)
    assert checkpoint_path(dataclasses.replace(cfg, ema_schedule="cosine", ema_momentum=0.9)) == path  # not MAE's
    sup = dataclasses.replace(cfg, kind="sup")
    assert checkpoint_path(dataclasses.replace(sup, mask_ratio=0.5)) == checkpoint_path(sup)


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "dino"},
        {"epochs": 0},
        {"batch_size": 0},
        {"mask_ratio": 1.0},
        {"mask_ratio": 0.0},
        {"ema_momentum": 2},
        {"ema_momentum": "fast"},
        {"ema_schedule": "linear"},
    ],
)
def test_bad_configs(bad):
    with pytest.raises(LandscapeError):
        TrainConfig(**bad)


# ---------------------------------------------------------------------------------------------------------------
# max_train, progress, stopping


def test_max_train_and_progress(cache):
    cfg = _quick("mae", epochs=2, max_train=40, batch_size=16)
    seen: list[Progress] = []
    path = train_model(cfg, device="cpu", progress=seen.append)
    data = load_checkpoint(path).meta["data"]
    assert data["n_train"] == 40 and data["max_train"] == 40
    steps = 40 // 16  # the last partial batch is dropped
    assert [(p.epoch, p.step) for p in seen] == [(e, s) for e in (1, 2) for s in range(1, steps + 1)]
    assert all(p.steps == steps and p.epochs == 2 and p.loss > 0 for p in seen)
    assert seen[-1].fraction == 1.0 and seen[0].fraction == pytest.approx(1 / (2 * steps))
    assert [p.elapsed for p in seen] == sorted(p.elapsed for p in seen)


@pytest.mark.parametrize("after", [0, 3])
def test_check_stop_aborts_and_writes_nothing(cache, after):
    polls = []

    def stop() -> bool:
        polls.append(1)
        return len(polls) > after

    cfg = _quick("rcmae", epochs=2)
    with pytest.raises(LandscapeError, match="stopped") as info:
        train_model(cfg, device="cpu", check_stop=stop)
    assert "\n" not in str(info.value)
    assert len(polls) == after + 1
    assert _files(cache) == []
    assert not checkpoint_path(cfg).exists()


def _drop_times(hist: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in ("time_s", "eval_s", "cpu_s")} for h in hist]


@pytest.mark.parametrize("kind", ["rcmae", "sup"])
def test_a_stopped_run_continues_from_its_last_epoch(cache, tmp_path, monkeypatch, kind):
    """Stopped in epoch 3 of 4: epochs 1-2 are kept (resume file), asking again runs only epochs 3-4 and ends with
    the weights, history and snapshots of an uninterrupted run, bit for bit; the resume file is then gone."""
    cfg = _quick(kind, epochs=4, n_snapshots=3)
    polls = []
    with pytest.raises(LandscapeError, match="2 finished epoch"):
        train_model(cfg, device="cpu", check_stop=lambda: polls.append(1) or len(polls) > 9)  # 4 steps per epoch
    path = checkpoint_path(cfg)
    assert not path.exists() and resume_path(path).exists()
    seen: list[Progress] = []
    resumed = load_checkpoint(train_model(cfg, device="cpu", progress=seen.append))
    assert seen[0].epoch == 2 and seen[0].message.startswith("resumed") and {p.epoch for p in seen[1:]} == {3, 4}
    assert not resume_path(path).exists()
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "fresh"))
    fresh = load_checkpoint(train_model(cfg, device="cpu"))
    _assert_equal(resumed.model.state_dict(), fresh.model.state_dict())
    assert _drop_times(resumed.meta["history"]) == _drop_times(fresh.meta["history"])
    assert [e for e, _ in resumed.snapshots] == [e for e, _ in fresh.snapshots]
    for (_, a), (_, b) in zip(resumed.snapshots, fresh.snapshots, strict=True):
        _assert_equal(a, b)


def test_a_broken_or_foreign_resume_file_is_ignored(cache):
    cfg = _quick("mae", epochs=2)
    path = checkpoint_path(cfg)
    path.parent.mkdir(parents=True)
    resume_path(path).write_bytes(b"not a pickle")
    first = load_checkpoint(train_model(cfg, device="cpu"))
    other = _quick("mae", epochs=2, seed=5)
    with pytest.raises(LandscapeError):
        train_model(other, device="cpu", check_stop=lambda: True)
    # Another run's state under this run's name (say, a renamed file) is not used either.
    path.unlink()
    torch.save({"format": "vit-landscape-resume/1", "config": other.key(), "epoch": 1}, resume_path(path))
    again = load_checkpoint(train_model(cfg, device="cpu"))
    _assert_equal(first.model.state_dict(), again.model.state_dict())


KILL_SCRIPT = """
import os, signal, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, "tests")
from conftest import tiny_train_config
from core.models.train import train_model
cfg = tiny_train_config("mae", epochs=3, max_train=64, batch_size=16, n_snapshots=2)
def progress(p):
    if p.epoch == 3 and p.step == 2:
        os.kill(os.getpid(), signal.SIGKILL)
train_model(cfg, device="cpu", progress=progress)
"""


def test_a_killed_run_resumes_bit_for_bit(cache, tmp_path, monkeypatch):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", KILL_SCRIPT], env=env, cwd=root, capture_output=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-800:]
    cfg = _quick("mae", epochs=3)
    assert resume_path(checkpoint_path(cfg)).exists() and not checkpoint_path(cfg).exists()
    seen: list[Progress] = []
    resumed = load_checkpoint(train_model(cfg, device="cpu", progress=seen.append))
    assert seen[0].epoch == 2 and {p.epoch for p in seen[1:]} == {3}
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "fresh"))
    fresh = load_checkpoint(train_model(cfg, device="cpu"))
    _assert_equal(resumed.model.state_dict(), fresh.model.state_dict())
    assert _drop_times(resumed.meta["history"]) == _drop_times(fresh.meta["history"])


def test_eval_schedule_is_dense_early_sparse_later_and_keeps_the_last():
    assert eval_epochs(30) == tuple(range(1, 31)) and eval_epochs(90) == tuple(
        range(1, 91)
    )  # runs read for convergence
    long = eval_epochs(305)
    assert long[:100] == tuple(range(1, 101)) and long[100:] == (*range(110, 301, 10), 305)
    assert eval_epochs(300)[-1] == 300 and eval_epochs(7, "every") == tuple(range(1, 8))
    assert "every epoch to 100" in eval_schedule_text() and eval_schedule_text("every") == "every epoch"
    with pytest.raises(LandscapeError, match="schedule"):
        eval_epochs(5, "never")


@pytest.mark.parametrize("kind", ["mae", "sup"])
def test_a_sparse_schedule_keeps_the_weights_and_the_values_where_it_evaluates(cache, tmp_path, monkeypatch, kind):
    """Dense to epoch 2, then every 2nd and the last (5): the same weights as every-epoch evaluation, the same values
    at epochs 1, 2, 4, 5, none at 3; the same cache key (the schedule changes no weight)."""
    import core.models.train as train_mod

    monkeypatch.setattr(train_mod, "EVAL_DENSE_EPOCHS", 2)
    monkeypatch.setattr(train_mod, "EVAL_SPARSE_EVERY", 2)
    cfg = _quick(kind, epochs=5, max_train=32)
    sparse = load_checkpoint(train_model(cfg, device="cpu"))
    every = load_checkpoint(train_model(cfg, device="cpu", path=tmp_path / "every.pt", eval_schedule="every"))
    _assert_equal(sparse.model.state_dict(), every.model.state_dict())
    val = "val_acc" if kind == "sup" else "probe_acc"
    got = {h["epoch"]: (h.get("val_loss"), h.get(val)) for h in sparse.meta["history"]}
    ref = {h["epoch"]: (h["val_loss"], h[val]) for h in every.meta["history"]}
    assert [e for e, (v, _) in got.items() if v is not None] == [1, 2, 4, 5]
    assert all(got[e] == ref[e] for e in (1, 2, 4, 5)) and got[3] == (None, None)
    assert all(h["eval_s"] >= 0 and h["cpu_s"] > 0 for h in sparse.meta["history"])
    assert sparse.meta["train"]["eval_schedule"] != every.meta["train"]["eval_schedule"]
    assert train_model(cfg, device="cpu", eval_schedule="every") == checkpoint_path(cfg)  # cached whatever the schedule


def test_cuda_without_gpu_is_a_user_error(cache):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(LandscapeError, match="CUDA"):
        train_model(_quick("sup"), device="cuda")


def test_cosine_schedule():
    assert cosine_lr(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert cosine_lr(9, 100, 10, 1.0) == pytest.approx(1.0)
    assert cosine_lr(10, 100, 10, 1.0) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 10, 1.0) == pytest.approx(0.5)
    assert cosine_lr(100, 100, 10, 1.0, final=0.1) == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------------------------
# EpochRun: the bookkeeping train_model and core.models.finetune share


def _run(tmp_path, seen: list, **kw) -> EpochRun:
    args = dict(what="fine-tuning", progress=seen.append, check_stop=None) | kw
    return EpochRun(tmp_path / "run.pt", {"k": 1}, 3, 4, torch.device("cpu"), **args)


def test_epoch_run_rates_scale_per_group_and_a_nan_loss_is_refused(tmp_path):
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.AdamW([{"params": [w], "lr_scale": 0.5}, {"params": [torch.nn.Parameter(torch.ones(1))]}])
    run = _run(tmp_path, [])
    lr = run.set_lr(opt, 7, 1, 2e-3)
    assert lr == cosine_lr(7, 12, 4, 2e-3)
    assert [g["lr"] for g in opt.param_groups] == [lr * 0.5, lr]
    with pytest.raises(LandscapeError, match=r"^fine-tuning diverged at epoch 2 step 3 \(loss nan\)$"):
        run.optimizer_step(opt, (w * math.nan).sum(), 2, 2)
    assert w.grad is None and torch.equal(w.detach(), torch.ones(2))  # nothing stepped


def test_epoch_run_state_round_trip(tmp_path):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters())
    seen: list[Progress] = []
    run = _run(tmp_path, seen)
    run.save_state(3, model, opt, gen="g", history=[])  # the last epoch: the checkpoint follows, no state
    assert not resume_path(run.path).exists()
    run.save_state(2, model, opt, gen="g", history=[{"step_loss": 0.25}])
    state = torch.load(resume_path(run.path), weights_only=True)
    assert list(state) == ["format", "config", "epoch", "model", "opt", "gen", "history"]
    other = torch.nn.Linear(2, 1)
    again = _run(tmp_path, seen)
    assert again.resume(other, torch.optim.AdamW(other.parameters()), "step_loss")["gen"] == "g"
    assert torch.equal(other.weight, model.weight) and list(again.epochs_left()) == [3]
    assert (seen[0].epoch, seen[0].step, seen[0].loss, seen[0].message) == (2, 4, 0.25, "resumed after epoch 2")
    foreign = EpochRun(run.path, {"k": 2}, 3, 4, torch.device("cpu"), what="x", progress=None, check_stop=None)
    assert foreign.resume(other, torch.optim.AdamW(other.parameters()), "step_loss") is None
    assert list(foreign.epochs_left()) == [1, 2, 3]
    with pytest.raises(LandscapeError, match="^x stopped before it finished; nothing kept$"):
        EpochRun(run.path, {}, 3, 4, torch.device("cpu"), what="x", progress=None, check_stop=lambda: True).poll_stop(1)
    again.finish()
    assert not resume_path(run.path).exists()


def test_encoder_dataset_refuses_other_channels(trained_ckpts):
    base = load_checkpoint(trained_ckpts["mae"])
    assert encoder_dataset(base, "synthetic").fingerprint() == base.meta["data"]["fingerprint"]
    wide = dataclasses.replace(base, config=dataclasses.replace(base.config, in_chans=3))
    with pytest.raises(LandscapeError, match="^data synthetic has 1 channels, the encoder expects 3$"):
        encoder_dataset(wide, "synthetic")


# ---------------------------------------------------------------------------------------------------------------
# Linear probes


def test_probe_beats_chance(trained_ckpts):
    loaded = load_checkpoint(trained_ckpts["probe"])
    hist = loaded.meta["history"]
    assert [h["epoch"] for h in hist] == list(range(1, TINY_PROBE.epochs + 1))
    assert {"epoch", "train_loss", "val_loss", "val_acc", "time_s"} <= set(hist[-1])
    # our own evaluation of the saved probe on the validation images agrees with the record, and beats chance
    ds = load_dataset("synthetic")
    with torch.no_grad():
        acc = float((loaded.model(ds.val_x).argmax(1) == ds.val_y).float().mean())
    assert acc == pytest.approx(hist[-1]["val_acc"], abs=1e-6) == probe_accuracy(loaded)
    assert acc > 0.5  # chance is 0.25
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


def test_probe_is_cached_and_leaves_the_encoder_alone(trained_ckpts):
    enc = trained_ckpts["mae"]
    sha = load_checkpoint(enc).sha256
    stamp = trained_ckpts["probe"].stat().st_mtime_ns
    calls = []
    assert train_probe(enc, TINY_PROBE, device="cpu", progress=calls.append) == trained_ckpts["probe"]
    assert calls == [] and trained_ckpts["probe"].stat().st_mtime_ns == stamp
    assert load_checkpoint(enc).sha256 == sha
    assert trained_ckpts["probe"].parent == enc.parent


def test_probe_on_rcmae_reads_the_teacher_or_the_student(trained_ckpts, tmp_path):
    rc = load_checkpoint(trained_ckpts["rcmae"]).model
    ds = load_dataset("synthetic")
    cfg = ProbeConfig(epochs=2, batch_size=128)
    for use, expected in (("teacher", rc.teacher), ("student", rc.student)):
        path = train_probe(trained_ckpts["rcmae"], dataclasses.replace(cfg, use=use), device="cpu", path=tmp_path / use)
        loaded = load_checkpoint(path)
        _assert_equal(loaded.model.encoder.state_dict(), expected.state_dict())
        # the head was fitted on the features of that same encoder: the recorded val loss is reproduced
        with torch.no_grad():
            val_loss = torch.nn.functional.cross_entropy(loaded.model(ds.val_x), ds.val_y)
        assert float(val_loss) == pytest.approx(loaded.meta["history"][-1]["val_loss"], rel=1e-5)


def test_probe_on_other_data_is_another_probe(trained_ckpts, tmp_path):
    enc = tmp_path / trained_ckpts["sup"].name
    enc.write_bytes(trained_ckpts["sup"].read_bytes())
    cfg = ProbeConfig(epochs=1)
    own = train_probe(enc, cfg, device="cpu")
    digits = train_probe(enc, cfg, data="digits", device="cpu")
    assert own != digits
    assert load_checkpoint(own).meta["data"]["spec"] == "synthetic"
    assert load_checkpoint(digits).meta["data"]["num_classes"] == 10
    assert train_probe(enc, cfg, data="synthetic", device="cpu") == own  # the encoder's own data, said explicitly


def test_probe_errors(trained_ckpts):
    with pytest.raises(LandscapeError, match="already a probe"):
        train_probe(trained_ckpts["probe"], TINY_PROBE, device="cpu")
    with pytest.raises(LandscapeError, match="not found"):
        train_probe(trained_ckpts["mae"].with_name("missing.pt"), TINY_PROBE, device="cpu")


def test_cli_momentum_and_schedule_options(capsys):
    from core.app.cli import build_parser

    def parsed(*extra):
        return build_parser().parse_args(["train", "--model", "rcmae", *extra])

    assert (parsed().ema_momentum, parsed().ema_schedule) == ("auto", "constant")
    assert (
        parsed("--ema-momentum", "0.996").ema_momentum == 0.996
        and parsed("--ema-momentum", "AUTO").ema_momentum == "auto"
    )
    assert parsed("--ema-schedule", "cosine").ema_schedule == "cosine"
    for bad in (["--ema-momentum", "fast"], ["--ema-schedule", "linear"]):
        with pytest.raises(SystemExit) as e:
            parsed(*bad)
        assert e.value.code == 2
    assert "expected 'auto' or a number, got 'fast'" in capsys.readouterr().err
