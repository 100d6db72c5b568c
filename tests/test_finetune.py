"""Tests for core.models.finetune and core.models.subsets: every encoder weight trains (the RC-MAE teacher's too), the
scratch baseline sees the same images and steps, nested balanced subsets, determinism, caching and keys, resume after
SIGKILL, the `labeled` split of the objectives, errors."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.errors import LandscapeError
from core.geometry.params import select_parameters
from core.models.checkpoints import checkpoint_overrides, load_checkpoint
from core.models.data import load_dataset
from core.models.finetune import (
    FinetuneConfig,
    build_classifier,
    finetune,
    finetune_dataset,
    finetune_key,
    finetune_path,
    finetune_summary,
    param_groups,
)
from core.models.objectives import ObjectiveSpec, build_objective
from core.models.subsets import check_budget, labeled_subset
from core.models.train import Progress, resume_path
from core.models.vit import encoder_of

# A second or so: 4 labels per class (16 images of synthetic's 4 classes), 2 epochs of 3 steps, batches of 8.
FT = FinetuneConfig(labels_per_class=4, epochs=2, steps_per_epoch=3, batch_size=8, warmup_epochs=1)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _encoder_state(base_path: Path, use: str = "teacher") -> dict[str, torch.Tensor]:
    base = load_checkpoint(base_path)
    enc = base.model.student if (base.kind == "rcmae" and use == "student") else encoder_of(base.model)
    return {k: v.detach().clone() for k, v in enc.state_dict().items() if not k.startswith(("decoder", "mask_token"))}


def _no_time(hist: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "time_s"} for h in hist]


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------------------------------------------------
# Subsets


def test_subsets_nest_are_balanced_and_seeded():
    y = load_dataset("synthetic").train_y
    subsets = {n: labeled_subset(y, n, seed=3) for n in (1, 2, 5, 20)}
    for small, big in ((1, 2), (2, 5), (5, 20)):
        assert set(subsets[small].tolist()) <= set(subsets[big].tolist())
    for n, idx in subsets.items():
        assert len(set(idx.tolist())) == len(idx) == 4 * n
        assert torch.bincount(y[idx]).tolist() == [n] * 4
        # interleaved by rank: every prefix of whole rounds is balanced too
        assert torch.bincount(y[idx[: 4 * (n // 2 or 1)]]).tolist() == [n // 2 or 1] * 4
    assert labeled_subset(y, 5, seed=3).tolist() == subsets[5].tolist()
    assert set(labeled_subset(y, 5, seed=4).tolist()) != set(subsets[5].tolist())
    everything = labeled_subset(y, None, seed=3)
    assert sorted(everything.tolist()) == list(range(len(y)))
    with pytest.raises(LandscapeError, match="more than the data has"):
        check_budget(y, int(torch.bincount(y).min()) + 1)
    with pytest.raises(LandscapeError):
        labeled_subset(y, 0, seed=0)


# --------------------------------------------------------------------------------------------------------------------
# What trains


@pytest.mark.parametrize("kind", ["mae", "rcmae", "sup"])
def test_finetuning_starts_from_the_encoder_and_changes_every_weight(trained_ckpts, cache, kind):
    base = load_checkpoint(trained_ckpts[kind])
    start, fixed = build_classifier(base, FT, num_classes=4)
    enc = _encoder_state(trained_ckpts[kind])
    own = start.state_dict()
    for k, v in enc.items():
        if not k.startswith("head."):
            assert torch.equal(own[k], v), k  # the RC-MAE teacher's weights, not the student's
    assert fixed == (kind != "sup")
    if kind == "rcmae":
        assert all(not p.requires_grad for p in base.model.teacher.parameters())  # stored frozen ...
    ft = load_checkpoint(finetune(trained_ckpts[kind], FT, device="cpu"))
    assert ft.kind == "sup" and ft.meta["finetune"]["base"]["sha256"] == base.sha256
    after = ft.model.state_dict()
    for k, v in enc.items():
        if k.startswith("head."):
            continue
        if k == "pos_embed" and fixed:
            assert torch.equal(after[k], v)  # MAE's sin-cos table stays fixed
            assert not ft.model.pos_embed.requires_grad
        else:
            assert not torch.equal(after[k], v), f"{k} did not train"  # ... and trained here
    names = select_parameters(ft.model, "all")
    assert ("pos_embed" in names) == (kind == "sup")
    assert "head.weight" in names


def test_rcmae_student_is_another_run(trained_ckpts, cache):
    base = load_checkpoint(trained_ckpts["rcmae"])
    student = dataclasses.replace(FT, use="student")
    start, _ = build_classifier(base, student, 4)
    s = _encoder_state(trained_ckpts["rcmae"], "student")
    assert torch.equal(start.state_dict()["blocks.0.attn.qkv.weight"], s["blocks.0.attn.qkv.weight"])
    assert finetune_path(trained_ckpts["rcmae"], student) != finetune_path(trained_ckpts["rcmae"], FT)
    assert finetune_path(trained_ckpts["mae"], student) == finetune_path(trained_ckpts["mae"], FT)  # no choice


def test_scratch_sees_the_same_images_and_steps(trained_ckpts, cache):
    pre = load_checkpoint(finetune(trained_ckpts["mae"], FT, device="cpu"))
    scratch = load_checkpoint(finetune(trained_ckpts["mae"], dataclasses.replace(FT, from_scratch=True), device="cpu"))
    a, b = pre.meta["finetune"], scratch.meta["finetune"]
    assert b["from_scratch"] and not a["from_scratch"]
    assert a["subset"] == b["subset"] and a["subset"]["n_labels"] == 16
    assert a["seen_sha256"] == b["seen_sha256"] and a["steps"] == b["steps"] == FT.steps
    assert a["batch_size"] == b["batch_size"] == 8
    assert [h["step"] for h in pre.meta["history"]] == [h["step"] for h in scratch.meta["history"]] == [3, 6]
    # random weights: the scratch model did not start from the MAE
    base = load_checkpoint(trained_ckpts["mae"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        start, _ = build_classifier(base, dataclasses.replace(FT, from_scratch=True), 4)
    enc = _encoder_state(trained_ckpts["mae"])
    assert not torch.equal(start.state_dict()["blocks.0.mlp.fc1.weight"], enc["blocks.0.mlp.fc1.weight"])
    assert torch.equal(start.state_dict()["pos_embed"], enc["pos_embed"])  # the same fixed table
    # the scratch run depends on the architecture, not on the weights: RC-MAE's checkpoint gives the same run
    rc_scratch = finetune_path(trained_ckpts["rcmae"], dataclasses.replace(FT, from_scratch=True))
    assert rc_scratch.name.split("_")[-1] == scratch.path.name.split("_")[-1]


def test_history_and_summary(trained_ckpts, cache):
    ck = load_checkpoint(finetune(trained_ckpts["sup"], FT, device="cpu"))
    hist = ck.meta["history"]
    assert len(hist) == FT.epochs
    for h in hist:
        assert h["gap_acc"] == pytest.approx(h["train_acc"] - h["val_acc"])
        assert h["gap_loss"] == pytest.approx(h["train_loss"] - h["val_loss"])
        assert 0.0 <= h["val_acc"] <= 1.0
    assert (
        "fine-tuned from sup" in ck.describe() and "16 labeled images (4 per class, seed 0), 6 steps" in ck.describe()
    )
    s = finetune_summary(ck)
    assert s["n_labels"] == 16 and s["steps"] == 6 and s["val_acc"] == hist[-1]["val_acc"]
    with pytest.raises(LandscapeError, match="not a fine-tuned"):
        finetune_summary(trained_ckpts["sup"])


def test_layer_decay_and_weight_decay_groups(trained_ckpts):
    base = load_checkpoint(trained_ckpts["mae"])
    model, _ = build_classifier(base, FT, 4)
    groups = param_groups(model, FT)
    by_param = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    depth = len(model.blocks)
    assert by_param[id(named["head.weight"])]["lr_scale"] == 1.0
    assert by_param[id(named["blocks.0.mlp.fc1.weight"])]["lr_scale"] == pytest.approx(FT.layer_decay**depth)
    assert by_param[id(named["patch_embed.proj.weight"])]["lr_scale"] == pytest.approx(FT.layer_decay ** (depth + 1))
    assert by_param[id(named["blocks.0.mlp.fc1.weight"])]["weight_decay"] == FT.weight_decay
    for name in ("blocks.0.mlp.fc1.bias", "norm.weight", "cls_token"):
        assert by_param[id(named[name])]["weight_decay"] == 0.0
    assert id(named["pos_embed"]) not in by_param  # fixed


# --------------------------------------------------------------------------------------------------------------------
# Determinism, caching, keys


def test_deterministic_and_cached(trained_ckpts, cache, tmp_path):
    cfg = dataclasses.replace(FT, drop_path=0.2, label_smoothing=0.1)
    a = finetune(trained_ckpts["mae"], cfg, device="cpu")
    mtime = a.stat().st_mtime_ns
    assert finetune(trained_ckpts["mae"], cfg, device="cpu") == a and a.stat().st_mtime_ns == mtime
    b = finetune(trained_ckpts["mae"], cfg, device="cpu", path=tmp_path / "again.pt")
    la, lb = load_checkpoint(a), load_checkpoint(b)
    _assert_same(la.model.state_dict(), lb.model.state_dict())
    assert _no_time(la.meta["history"]) == _no_time(lb.meta["history"])
    other = load_checkpoint(finetune(trained_ckpts["mae"], dataclasses.replace(cfg, seed=1), device="cpu"))
    assert other.meta["finetune"]["subset"] != la.meta["finetune"]["subset"]


# Every FinetuneConfig field: a changed value that must change the key (None: the field is not keyed, with why).
KEY_TABLE = {
    "labels_per_class": 5,
    "seed": 1,
    "from_scratch": True,
    "use": "student",  # keyed for a pre-trained RC-MAE only (checked below)
    "epochs": 3,
    "steps_per_epoch": 4,
    "batch_size": 4,
    "lr": 2e-3,
    "layer_decay": 0.5,
    "weight_decay": 0.0,
    "warmup_epochs": 0,
    "drop_path": 0.0,
    "label_smoothing": 0.0,
    "train_eval_max": 8,
    "data": None,  # replaced by the data's content hash: the same data by another spec is the same run
}


def test_every_config_field_that_changes_numbers_changes_the_key(trained_ckpts):
    assert set(KEY_TABLE) == {f.name for f in dataclasses.fields(FinetuneConfig)}, "classify the new field"
    for kind in ("mae", "rcmae"):
        base = load_checkpoint(trained_ckpts[kind])
        ds = finetune_dataset(base, FT)
        ref = finetune_key(base, FT, ds)
        for name, value in KEY_TABLE.items():
            if value is None:
                continue
            key = finetune_key(base, dataclasses.replace(FT, **{name: value}), ds)
            if name == "use" and kind == "mae":
                assert key == ref
            else:
                assert key != ref, name
    base = load_checkpoint(trained_ckpts["mae"])
    other_data = dataclasses.replace(FT, data="digits")
    assert finetune_key(base, other_data, finetune_dataset(base, other_data)) != finetune_key(
        base, FT, finetune_dataset(base, FT)
    )
    # from scratch: the weights do not matter, the architecture does
    scratch = dataclasses.replace(FT, from_scratch=True)
    rc = load_checkpoint(trained_ckpts["rcmae"])
    assert finetune_key(base, scratch, ds) == finetune_key(rc, scratch, ds)
    assert finetune_key(base, scratch, ds) != finetune_key(load_checkpoint(trained_ckpts["sup"]), scratch, ds)


# --------------------------------------------------------------------------------------------------------------------
# Stop and resume

KILL_SCRIPT = """
import os, signal, sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, "tests")
from test_finetune import FT
import dataclasses
from core.models.finetune import finetune
cfg = dataclasses.replace(FT, epochs=3, drop_path=0.2)
def progress(p):
    if p.epoch == 3 and p.step == 2:
        os.kill(os.getpid(), signal.SIGKILL)
finetune(os.environ["BASE_CKPT"], cfg, device="cpu", progress=progress)
"""


def test_a_killed_run_resumes_bit_for_bit(trained_ckpts, cache, tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1", BASE_CKPT=str(trained_ckpts["rcmae"]))
    r = subprocess.run([sys.executable, "-c", KILL_SCRIPT], env=env, cwd=root, capture_output=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-800:]
    cfg = dataclasses.replace(FT, epochs=3, drop_path=0.2)
    path = finetune_path(trained_ckpts["rcmae"], cfg)
    assert resume_path(path).exists() and not path.exists()
    seen: list[Progress] = []
    resumed = load_checkpoint(finetune(trained_ckpts["rcmae"], cfg, device="cpu", progress=seen.append))
    assert seen[0].message.startswith("resumed after epoch 2") and {p.epoch for p in seen[1:]} == {3}
    assert not resume_path(path).exists()
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "fresh"))
    fresh = load_checkpoint(finetune(trained_ckpts["rcmae"], cfg, device="cpu"))
    _assert_same(resumed.model.state_dict(), fresh.model.state_dict())
    assert _no_time(resumed.meta["history"]) == _no_time(fresh.meta["history"])
    assert resumed.meta["finetune"]["seen_sha256"] == fresh.meta["finetune"]["seen_sha256"]


def test_a_stopped_run_keeps_its_epochs(trained_ckpts, cache):
    polls = []
    with pytest.raises(LandscapeError, match="1 finished epoch"):
        finetune(trained_ckpts["mae"], FT, device="cpu", check_stop=lambda: polls.append(1) or len(polls) > 4)
    path = finetune_path(trained_ckpts["mae"], FT)
    assert resume_path(path).exists() and not path.exists()
    assert finetune(trained_ckpts["mae"], FT, device="cpu") == path and not resume_path(path).exists()


# --------------------------------------------------------------------------------------------------------------------
# The labeled split of the objectives, errors


def test_objective_on_the_labeled_subset(trained_ckpts, cache):
    ck = load_checkpoint(finetune(trained_ckpts["mae"], FT, device="cpu"))
    obj = build_objective(ck, ObjectiveSpec(loss="supervised", split="labeled", samples=64), "cpu")
    ds = obj.dataset
    idx = labeled_subset(ds.train_y, 4, seed=0)
    assert len(obj.x) == 16  # the whole subset (fewer than `samples`)
    assert {tuple(v.flatten()[:8].tolist()) for v in obj.x} == {
        tuple(v.flatten()[:8].tolist()) for v in ds.train_x[idx]
    }
    key = obj.key()
    assert (
        key["split"] == "labeled" and key["subset"]["indices_sha256"] == ck.meta["finetune"]["subset"]["indices_sha256"]
    )
    train_key = build_objective(ck, ObjectiveSpec(loss="supervised", split="train", samples=64), "cpu").key()
    assert train_key != key
    out = obj.evaluate(obj.module)
    assert 0.0 <= out["acc"] <= 1.0 and out["loss"] > 0
    with pytest.raises(LandscapeError, match="not fine-tuned on a labeled subset"):
        build_objective(load_checkpoint(trained_ckpts["sup"]), ObjectiveSpec(loss="supervised", split="labeled"))


def test_errors(trained_ckpts, cache):
    with pytest.raises(LandscapeError, match="not an encoder checkpoint"):
        finetune(trained_ckpts["probe"], FT, device="cpu")
    with pytest.raises(LandscapeError, match="more than the data has"):
        finetune(trained_ckpts["mae"], dataclasses.replace(FT, labels_per_class=10_000), device="cpu")
    for bad in (dict(use="both"), dict(epochs=0), dict(labels_per_class=0), dict(layer_decay=0.0), dict(lr=-1.0)):
        with pytest.raises(LandscapeError):
            dataclasses.replace(FT, **bad)
    assert not list(cache.glob("finetune/*.pt"))


@pytest.mark.parametrize("layout", ["official-mae", "official-rcmae", "timm"])
def test_official_and_timm_files_fine_tune(trained_ckpts, cache, tmp_path, layout):
    """Files without our description (the architecture inferred from shapes) fine-tune on the data given."""
    if layout == "timm":
        sup = load_checkpoint(trained_ckpts["sup"])
        raw, src = sup.model.state_dict(), sup.model
    elif layout == "official-rcmae":
        rc = load_checkpoint(trained_ckpts["rcmae"])
        raw = {"student": rc.model.student.state_dict(), "teacher": rc.model.teacher.state_dict()}
        src = rc.model.teacher
    else:
        mae = load_checkpoint(trained_ckpts["mae"]).model
        keep = {k: v for k, v in mae.state_dict().items() if not k.startswith(("decoder", "mask_token"))}
        raw, src = {"model": keep}, mae
    f = tmp_path / f"{layout}.pth"
    torch.save(raw, f)
    with checkpoint_overrides(num_heads=2, decoder_num_heads=2):  # micro's 32-wide blocks: not an official width
        assert load_checkpoint(f).source == layout
        ck = load_checkpoint(finetune(f, dataclasses.replace(FT, data="synthetic"), device="cpu"))
    assert ck.meta["finetune"]["base"]["source"] == layout
    before = src.state_dict()["blocks.1.attn.proj.weight"]
    assert not torch.equal(ck.model.state_dict()["blocks.1.attn.proj.weight"], before)
    assert ck.model.pos_embed.requires_grad == (layout == "timm")
