"""Tests for core.app.zoo: the default trio's configs, labels, checkpoint listing and memoization, the facts the
executive summary reads, and preparing the defaults.

Everything runs on copies of the session checkpoints in a private cache folder (listing needs a folder with
garbage in it, and model_facts writes latency and probe results).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path

import pytest
from conftest import tiny_train_config

import core.app.cli
import core.app.zoo as zoo
import core.models.train
from core.app.cli import main as cli_main
from core.errors import LandscapeError
from core.measure.flatness import FlatnessSpec, compute_flatness
from core.measure.surfaces import SurfaceSpec, compute_surface
from core.models.checkpoints import load_checkpoint
from core.models.train import ProbeConfig, TrainConfig, probe_path
from core.models.vit import encoder_flops_per_image
from core.store.store import Store


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def copies(cache, trained_ckpts) -> dict[str, Path]:
    """kind -> copy of the session checkpoint (mae, rcmae, sup, probe) in `<cache>/checkpoints`."""
    folder = cache / "checkpoints"
    folder.mkdir(parents=True)
    return {k: Path(shutil.copy2(p, folder / p.name)) for k, p in trained_ckpts.items()}


# ---------------------------------------------------------------------------------------------------------------
# Default configs and labels


def test_default_configs_are_the_train_config_defaults():
    cfgs = zoo.default_configs()
    assert list(cfgs) == ["mae", "rcmae", "sup"]
    for kind, cfg in cfgs.items():
        assert cfg == TrainConfig(kind=kind)
    for kind, cfg in zoo.default_configs(epochs=5, seed=3).items():
        assert cfg == dataclasses.replace(TrainConfig(kind=kind), epochs=5, seed=3)


@pytest.mark.parametrize("kind", ["mae", "rcmae", "sup"])
def test_cli_train_without_options_trains_the_default(kind, cache, monkeypatch):
    """The module docstring's promise: `python -m core train --model KIND` reproduces the default."""
    seen = []

    def fake_train(cfg, **kwargs):
        seen.append(cfg)
        return cache / "fake.pt"

    monkeypatch.setattr(core.app.cli, "train_model", fake_train)  # where the CLI looks it up
    assert cli_main(["train", "--model", kind]) == 0
    assert seen == [zoo.default_configs()[kind]]


def test_describe_label_names_what_differs():
    def label(kind, **changes):
        return zoo.describe_label(kind, dataclasses.asdict(TrainConfig(kind=kind, **changes)))

    assert label("mae") == "MAE · seed 0"
    assert label("rcmae", seed=2) == "RC-MAE · seed 2"
    assert label("sup") == "Sup-ViT · seed 0"
    text = label("mae", epochs=5, mask_ratio=0.5, data="synthetic", preset="micro", max_train=100)
    assert text.split(" · ") == ["MAE", "synthetic", "micro", "seed 0", "ep 5", "mask 0.5", "n 100"]
    text = label("rcmae", ema_momentum=0.99, gamma=2.0)
    assert "m 0.99" in text and "γ 2.0" in text and "mask" not in text and "ep " not in text
    # Fields a kind does not use are not shown, and a folder spec shows its kind, not the path.
    text = label("sup", mask_ratio=0.5, data="folder:/some/where")
    assert "mask" not in text and "folder" in text and "/some" not in text
    # The kind-trimmed key (what the dashboard passes) works too.
    assert zoo.describe_label("sup", TrainConfig(kind="sup", epochs=7).key()) == "Sup-ViT · seed 0 · ep 7"


# ---------------------------------------------------------------------------------------------------------------
# Listing and describing checkpoints


def test_list_checkpoints_kinds_order_and_skips_garbage(copies, trained_configs):
    folder = copies["mae"].parent
    (folder / "garbage.pt").write_bytes(b"not a checkpoint at all" * 10)
    (folder / "notes.txt").write_text("ignored")
    # Newest first: set the modification times explicitly.
    for age, kind in enumerate(["sup", "probe", "rcmae", "mae"]):
        os.utime(copies[kind], (1e9 - age * 100, 1e9 - age * 100))

    infos = zoo.list_checkpoints()
    assert [i.kind for i in infos] == ["sup", "rcmae", "mae"]  # no probe, no garbage
    for info in infos:
        assert Path(info.path) == copies[info.kind].resolve() and info.name == copies[info.kind].name
        config = dataclasses.asdict(trained_configs[info.kind])
        assert {k: info.train[k] for k in config} == config  # plus RC-MAE's resolved momentum (tests/test_train.py)
        assert info.label == zoo.describe_label(info.kind, info.train)
        assert info.n_params == sum(p.numel() for p in load_checkpoint(info.path).model.parameters())
        assert len(info.history) == trained_configs[info.kind].epochs
        assert info.epoch_time == pytest.approx(sum(h["time_s"] for h in info.history) / len(info.history))
    by_kind = {i.kind: i for i in infos}
    assert by_kind["sup"].probe_acc == by_kind["sup"].history[-1]["val_acc"]
    assert by_kind["mae"].probe_acc is None  # no default probe trained yet (the session probe is a tiny one)

    with_probes = zoo.list_checkpoints(include_probes=True)
    assert [i.kind for i in with_probes] == ["sup", "probe", "rcmae", "mae"]
    probe = with_probes[1]
    assert probe.probe_acc == load_checkpoint(copies["probe"]).meta["history"][-1]["val_acc"]


def test_list_checkpoints_of_an_empty_cache(cache):
    assert zoo.list_checkpoints() == []


def test_checkpoint_info_memoizes_and_notices_changes(copies, monkeypatch):
    calls = []
    real_load = zoo.load_checkpoint

    def counting_load(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(zoo, "load_checkpoint", counting_load)
    first = zoo.checkpoint_info(copies["mae"])
    assert calls == [copies["mae"].name]
    assert zoo.checkpoint_info(str(copies["mae"])) is first
    assert len(calls) == 1

    # A default probe trained later shows up without reloading the model.
    core.models.train.train_probe(copies["mae"], ProbeConfig(epochs=3), device="cpu")  # other config: not the default
    assert zoo.checkpoint_info(copies["mae"]).probe_acc is None
    p = core.models.train.train_probe(copies["mae"], ProbeConfig(), device="cpu")
    acc = load_checkpoint(p).meta["history"][-1]["val_acc"]
    assert zoo.checkpoint_info(copies["mae"]).probe_acc == acc
    assert copies["mae"].name not in calls[1:]

    # A rewritten file (new mtime) is described afresh.
    os.utime(copies["mae"], (2e9, 2e9))
    zoo.checkpoint_info(copies["mae"])
    assert calls.count(copies["mae"].name) == 2

    with pytest.raises(LandscapeError, match="not found"):
        zoo.checkpoint_info(copies["mae"].with_name("missing.pt"))


# ---------------------------------------------------------------------------------------------------------------
# Facts for the summary

SMALL_FLATNESS = dict(
    samples=16, top_k=1, max_iter=10, trace_probes=4, sharpness_samples=2, sigmas=(0.0, 0.1), robustness_draws=2
)
SMALL_SURFACE = dict(grid=5, span=0.5, samples=16)


def test_model_facts_counts_and_costs(copies, trained_configs):
    facts = {k: zoo.model_facts(copies[k]) for k in ("mae", "rcmae", "sup")}
    mae = load_checkpoint(copies["mae"]).model
    encoder_only = (
        sum(p.numel() for m in (mae.patch_embed, mae.blocks, mae.norm) for p in m.parameters())
        + mae.cls_token.numel()
        + mae.pos_embed.numel()
    )
    all_mae = sum(p.numel() for p in mae.parameters())
    assert facts["mae"].params_deployed == facts["rcmae"].params_deployed == encoder_only
    assert facts["mae"].params_training == all_mae
    assert facts["rcmae"].params_training == 2 * all_mae  # student + EMA teacher
    sup = load_checkpoint(copies["sup"])
    all_sup = sum(p.numel() for p in sup.model.parameters())
    assert facts["sup"].params_deployed == facts["sup"].params_training == all_sup
    for kind, f in facts.items():
        assert f.kind == kind
        assert f.label == zoo.describe_label(kind, dataclasses.asdict(trained_configs[kind]))
        assert f.flops_per_image == encoder_flops_per_image(sup.config) > 0  # one architecture for all three
        mean, std = f.latency_ms
        assert math.isfinite(mean) and mean > 0 and std >= 0
        assert len(f.epoch_times) == trained_configs[kind].epochs and min(f.epoch_times) > 0
        assert f.top_eigenvalue is f.trace is f.sharpness is f.robustness is f.basin_width is None
    assert facts["sup"].probe_acc == load_checkpoint(copies["sup"]).meta["history"][-1]["val_acc"]
    # The latency is measured once per checkpoint and then read from the cache.
    assert len(Store().list("inference")) == 3
    assert zoo.model_facts(copies["sup"]).latency_ms == facts["sup"].latency_ms


def test_model_facts_reads_flatness_and_basin_once_computed(copies):
    path = copies["mae"]
    before = zoo.model_facts(path, surface_spec=SMALL_SURFACE, flatness_spec=SMALL_FLATNESS)
    assert before.top_eigenvalue is before.trace is before.sharpness is before.robustness is None
    assert before.basin_width is None and before.probe_acc is None

    report = compute_flatness(FlatnessSpec(checkpoint=str(path), device="cpu", **SMALL_FLATNESS))
    surface = compute_surface(SurfaceSpec(checkpoint=str(path), device="cpu", **SMALL_SURFACE))
    after = zoo.model_facts(path, surface_spec=SMALL_SURFACE, flatness_spec=SMALL_FLATNESS)
    assert after.top_eigenvalue == report.top_eigenvalues[0]
    assert after.trace == report.trace
    assert after.sharpness == report.sharpness["average"]
    assert after.robustness == report.robustness
    assert after.basin_width == surface.metrics["basin_width"]
    # The robustness stage trained the default probe: its accuracy is now known too.
    ck = load_checkpoint(path)
    probe = load_checkpoint(probe_path(path.resolve(), ck.sha256, ProbeConfig()))
    assert after.probe_acc == probe.meta["history"][-1]["val_acc"]
    # Other specs are still not computed.
    other = zoo.model_facts(path, flatness_spec=SMALL_FLATNESS | {"top_k": 2}, surface_spec=SMALL_SURFACE | {"grid": 9})
    assert other.top_eigenvalue is None and other.basin_width is None


# ---------------------------------------------------------------------------------------------------------------
# Preparing the defaults


def _quick_defaults(epochs=None, seed=0):
    return {k: tiny_train_config(k, epochs=1, max_train=64, batch_size=16, n_snapshots=2) for k in zoo.DEFAULT_KINDS}
