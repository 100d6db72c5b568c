"""Tests for core.models.checkpoints: our own files, official MAE / RC-MAE / timm layouts, and every way a file can be
bad."""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import shutil
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer

from core.errors import LandscapeError
from core.models.checkpoints import (
    FORMAT,
    _config_from_state,
    code_version,
    load_checkpoint,
    probe_state,
    read_state_file,
    save_checkpoint,
)
from core.models.vit import MAE, RCMAE, LinearProbe, build_model, preset

MICRO = preset("micro")  # dim 32, 2 heads; decoder 16-d, 1 block, 2 heads


def _seeded(build, seed: int = 0):
    torch.manual_seed(seed)
    return build()


def _perturbed(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Move every trainable tensor off its initial value, so a loader that re-initializes cannot pass."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def _imgs(cfg, n: int = 2) -> torch.Tensor:
    return torch.randn(n, cfg.in_chans, cfg.img_size, cfg.img_size, generator=torch.Generator().manual_seed(3))


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _error(path, match: str, **kwargs) -> str:
    """load_checkpoint must fail with a one-line LandscapeError matching `match`."""
    with pytest.raises(LandscapeError, match=match) as info:
        load_checkpoint(path, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, msg
    return msg


# ---------------------------------------------------------------------------------------------------------------
# Our own format


@pytest.mark.parametrize("kind", ["mae", "rcmae", "sup"])
def test_round_trip_of_our_format(tmp_path, kind):
    cfg = preset("micro", num_classes=4, norm_pix_loss=(kind == "rcmae"))
    model = _perturbed(_seeded(lambda: build_model(kind, cfg, momentum=0.99, gamma=0.5)))
    trained = model.student if kind == "rcmae" else model
    snaps = [(0, {k: v.clone() for k, v in trained.state_dict().items() if k.startswith("blocks.0")}), (2, {})]
    train = {"kind": kind, "epochs": 2, "lr": 1e-3, "seed": 7}
    data = {"spec": "synthetic", "n_train": 10}
    history = [{"epoch": 1, "train_loss": 1.5, "time_s": 0.1}, {"epoch": 2, "train_loss": 1.2, "time_s": 0.1}]
    path = save_checkpoint(
        tmp_path / "sub" / "m.pt", model, kind, cfg, train=train, data=data, history=history, snapshots=snaps
    )
    assert path == tmp_path / "sub" / "m.pt" and path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temporary file left behind

    loaded = load_checkpoint(path)
    assert loaded.kind == kind and loaded.source == "ours" and loaded.config == cfg
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.meta["seed"] == 7 and loaded.meta["data"] == data and loaded.meta["history"] == history
    assert loaded.meta["code_version"] == code_version() and loaded.meta["code_version"]
    assert {k: loaded.meta["train"][k] for k in train} == train
    assert not loaded.model.training
    if kind == "rcmae":
        assert isinstance(loaded.model, RCMAE) and loaded.landscape_module is loaded.model.student
        _assert_same_state(loaded.model.student.state_dict(), model.student.state_dict())
        _assert_same_state(loaded.model.teacher.state_dict(), model.teacher.state_dict())
        assert (loaded.model.momentum, loaded.model.gamma) == (0.99, 0.5)  # recorded from the model
        assert not any(p.requires_grad for p in loaded.model.teacher.parameters())
    else:
        assert loaded.landscape_module is loaded.model
        _assert_same_state(loaded.model.state_dict(), model.state_dict())
    assert isinstance(loaded.model, VisionTransformer if kind == "sup" else (RCMAE if kind == "rcmae" else MAE))
    assert [e for e, _ in loaded.snapshots] == [0, 2]
    _assert_same_state(loaded.snapshots[0][1], snaps[0][1])

    # the same outputs as the saved model
    model.eval()
    with torch.no_grad():
        x = _imgs(cfg)
        if kind == "sup":
            torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)
        else:
            noise = torch.rand(2, cfg.num_patches, generator=torch.Generator().manual_seed(0))
            torch.testing.assert_close(loaded.model(x, 0.75, noise)[0], model(x, 0.75, noise)[0], rtol=0, atol=0)
    text = loaded.describe()
    assert kind in text and "parameters" in text and "snapshots at epochs [0, 2]" in text


def test_probe_round_trip(trained_ckpts):
    loaded = load_checkpoint(trained_ckpts["probe"])
    base = load_checkpoint(trained_ckpts["mae"])
    assert loaded.kind == "probe" and isinstance(loaded.model, LinearProbe)
    assert loaded.config == base.config and loaded.meta["encoder_kind"] == "mae"
    assert {"probe", "encoder", "history", "seed", "code_version", "data"} <= set(loaded.meta)
    assert loaded.meta["encoder"]["sha256"] == base.sha256
    _assert_same_state(loaded.model.encoder.state_dict(), base.model.state_dict())
    raw = torch.load(trained_ckpts["probe"], weights_only=True)
    assert raw["format"] == FORMAT and raw["kind"] == "probe"
    _assert_same_state(probe_state(loaded.model), raw["head"])
    assert "bn.running_mean" in raw["head"] and "head.weight" in raw["head"]


def test_probe_with_a_missing_or_changed_encoder(tmp_path, trained_ckpts):
    enc = shutil.copy(trained_ckpts["mae"], tmp_path / trained_ckpts["mae"].name)
    probe = Path(shutil.copy(trained_ckpts["probe"], tmp_path / trained_ckpts["probe"].name))
    assert load_checkpoint(probe).kind == "probe"  # the encoder is found next to the probe
    raw = torch.load(enc, weights_only=True)
    raw["model"]["norm.bias"] += 1.0
    torch.save(raw, enc)
    _error(probe, "changed since the probe was trained")
    os.remove(enc)
    _error(probe, "encoder checkpoint .* is missing")
    raw = torch.load(probe, weights_only=True)
    raw["encoder"]["path"] = "."  # a folder, not a file
    torch.save(raw, probe)
    _error(probe, "encoder checkpoint .* is missing")


# ---------------------------------------------------------------------------------------------------------------
# Official layouts


def _mae_full_file(tmp_path: Path, args=None, name: str = "mae_full.pth") -> tuple[Path, MAE]:
    model = _perturbed(_seeded(lambda: MAE(preset("micro", in_chans=3)))).eval()
    obj = {"model": model.state_dict(), "epoch": 799}
    if args is not None:
        obj["args"] = args
    torch.save(obj, tmp_path / name)
    return tmp_path / name, model


def test_official_mae_full(tmp_path):
    path, model = _mae_full_file(tmp_path, argparse.Namespace(norm_pix_loss=True, model="mae_vit_micro", lr=None))
    loaded = load_checkpoint(path, num_heads=2, decoder_num_heads=2)
    assert loaded.kind == "mae" and loaded.source == "official-mae"
    c = loaded.config
    assert (c.img_size, c.patch_size, c.in_chans, c.embed_dim, c.depth, c.num_heads, c.mlp_ratio) == (
        16,
        4,
        3,
        32,
        2,
        2,
        4.0,
    )
    assert (c.decoder_embed_dim, c.decoder_depth, c.decoder_num_heads, c.norm_pix_loss) == (16, 1, 2, True)
    _assert_same_state(loaded.model.state_dict(), model.state_dict())
    x, noise = _imgs(c), torch.rand(2, c.num_patches, generator=torch.Generator().manual_seed(0))
    model.norm_pix_loss = True  # the file says the targets were normalized
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x, 0.75, noise)[0], model(x, 0.75, noise)[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("args", "override", "expected"),
    [
        (argparse.Namespace(norm_pix_loss=False), None, False),
        (argparse.Namespace(norm_pix_loss=True), None, True),
        (None, None, True),  # no args: the official `_full` files were trained with normalized targets
        (argparse.Namespace(norm_pix_loss=True), False, False),
    ],
)
def test_official_mae_norm_pix_loss_from_args(tmp_path, args, override, expected):
    path, _ = _mae_full_file(tmp_path, args)
    loaded = load_checkpoint(path, norm_pix_loss=override, num_heads=2, decoder_num_heads=2)  # 32 wide: not official
    assert loaded.config.norm_pix_loss is expected and loaded.model.norm_pix_loss is expected


def test_official_mae_encoder_only(tmp_path):
    _, model = _mae_full_file(tmp_path)
    decoder = ("decoder_", "mask_token")
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith(decoder)}
    torch.save({"model": sd}, tmp_path / "mae_pretrain.pth")
    loaded = load_checkpoint(tmp_path / "mae_pretrain.pth", num_heads=2)
    assert loaded.kind == "mae" and "encoder only" in loaded.meta["layout"]
    assert loaded.config.decoder_depth == 0 and not loaded.model.has_decoder
    _assert_same_state(loaded.model.state_dict(), sd)
    with torch.no_grad():
        x = _imgs(loaded.config)
        torch.testing.assert_close(loaded.model.forward_features(x), model.forward_features(x), rtol=0, atol=0)
    with pytest.raises(LandscapeError, match="encoder-only"):
        loaded.model(x)


def test_official_rcmae(tmp_path):
    rc = _seeded(lambda: RCMAE(MICRO))
    _perturbed(rc.student, seed=1)
    _perturbed(rc.teacher, seed=2)
    args = argparse.Namespace(norm_pix_loss=False, ema_op="per_iter")
    torch.save(
        {"student": rc.student.state_dict(), "teacher": rc.teacher.state_dict(), "args": args}, tmp_path / "r.pth"
    )
    loaded = load_checkpoint(tmp_path / "r.pth", num_heads=2, decoder_num_heads=2)
    assert loaded.kind == "rcmae" and loaded.source == "official-rcmae" and isinstance(loaded.model, RCMAE)
    assert loaded.config.norm_pix_loss is False and loaded.config.embed_dim == 32
    _assert_same_state(loaded.model.student.state_dict(), rc.student.state_dict())
    _assert_same_state(loaded.model.teacher.state_dict(), rc.teacher.state_dict())
    assert not torch.equal(loaded.model.student.norm.bias, loaded.model.teacher.norm.bias)


@pytest.mark.parametrize("as_dict", [False, True])
def test_official_rcmae_recipe_comes_from_its_args(tmp_path, as_dict):
    from core.models.objectives import Objective, ObjectiveSpec

    rc = _seeded(lambda: RCMAE(MICRO))
    _perturbed(rc.student, seed=1)
    args = {"gamma": 0.5, "momentum_teacher": 0.999, "mask_ratio": 0.6, "norm_pix_loss": True, "epochs": 1600}
    torch.save(
        {
            "student": rc.student.state_dict(),
            "teacher": rc.teacher.state_dict(),
            "args": args if as_dict else argparse.Namespace(**args),
        },
        tmp_path / "r.pth",
    )
    loaded = load_checkpoint(tmp_path / "r.pth", num_heads=2, decoder_num_heads=2)
    assert (loaded.model.gamma, loaded.model.momentum) == (0.5, 0.999)
    assert loaded.config.norm_pix_loss is True and loaded.model.student.norm_pix_loss is True
    assert loaded.meta["train"] == {"mask_ratio": 0.6, "gamma": 0.5, "ema_momentum": 0.999, "norm_pix_loss": True}
    assert "mask_ratio, gamma, momentum_teacher, norm_pix_loss read from the file's args" in loaded.meta["recipe"]
    assert "recipe: mask_ratio, gamma" in loaded.describe()
    # The landscape's objective uses the file's mask ratio, and the full loss its gamma.
    assert Objective(loaded, ObjectiveSpec(loss="pretrain", data="synthetic", samples=4)).mask_ratio == 0.6
    x, noise = _imgs(MICRO), torch.rand(2, MICRO.num_patches, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mae_loss, consistency = loaded.model.forward_parts(x, 0.6, noise)
        assert consistency > 0
        torch.testing.assert_close(loaded.model(x, 0.6, noise)[0], mae_loss + 0.5 * consistency)


def test_official_rcmae_without_args_assumes_the_defaults(tmp_path):
    rc = _seeded(lambda: RCMAE(MICRO))
    torch.save({"student": rc.student.state_dict(), "teacher": rc.teacher.state_dict()}, tmp_path / "r.pth")
    loaded = load_checkpoint(tmp_path / "r.pth", num_heads=2, decoder_num_heads=2)
    assert (loaded.model.gamma, loaded.model.momentum) == (1.0, 0.996)
    assert loaded.meta["train"]["mask_ratio"] == 0.75 and "no args in the file" in loaded.meta["recipe"]
    torch.save(
        {"student": rc.student.state_dict(), "teacher": rc.teacher.state_dict(), "args": {"mask_ratio": 1.5}},
        tmp_path / "bad.pth",
    )
    assert "out of range" in _error(tmp_path / "bad.pth", "args", num_heads=2, decoder_num_heads=2)


def _timm_vit(global_pool: str = "token") -> VisionTransformer:
    """A ViT built by timm itself (not by our code): ViT-Ti widths (192-d, 3 heads of 64), 2 blocks, 32 px."""
    torch.manual_seed(0)
    model = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        img_size=32,
        patch_size=8,
        depth=2,
        num_classes=5,
        global_pool=global_pool,
    )
    return _perturbed(model).eval()


@pytest.mark.parametrize(("suffix", "pool"), [(".pth", "token"), (".safetensors", "token"), (".pth", "avg")])
def test_timm_vit_state_dicts(tmp_path, suffix, pool):
    vit = _timm_vit(pool)
    path = tmp_path / f"vit{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(path))
    else:
        torch.save(vit.state_dict(), path)
    loaded = load_checkpoint(path)
    assert loaded.kind == "sup" and loaded.source == "timm" and isinstance(loaded.model, VisionTransformer)
    c = loaded.config
    assert (c.img_size, c.patch_size, c.in_chans, c.embed_dim, c.depth, c.num_heads, c.num_classes) == (
        32,
        8,
        3,
        192,
        2,
        3,
        5,
    )
    _assert_same_state(loaded.model.state_dict(), vit.state_dict())
    x = _imgs(c, 3)
    with torch.no_grad():  # same outputs: the inferred architecture (heads, pooling) is the right one
        torch.testing.assert_close(loaded.model(x), vit(x), rtol=1e-6, atol=1e-6)


def test_wrapped_and_prefixed_state_dicts(tmp_path):
    vit = _timm_vit()
    torch.save({"state_dict": {f"module.{k}": v for k, v in vit.state_dict().items()}}, tmp_path / "ddp.pth")
    loaded = load_checkpoint(tmp_path / "ddp.pth")
    _assert_same_state(loaded.model.state_dict(), vit.state_dict())


def test_head_counts_of_official_shapes_are_inferred():
    with torch.device("meta"):  # shapes only
        sd = MAE(preset("vit_base_patch16")).state_dict()
    cfg, _ = _config_from_state("mae", sd, {})
    ref = preset("vit_base_patch16")
    for field in ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio"):
        assert getattr(cfg, field) == getattr(ref, field), field
    assert (cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads) == (512, 8, 16)
    with pytest.raises(LandscapeError, match="does not divide"):
        _config_from_state("mae", sd, {"num_heads": 7})


# ---------------------------------------------------------------------------------------------------------------
# Bad files


class _RunsCode:
    """Unpickling this runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_missing_empty_and_directory(tmp_path):
    _error(tmp_path / "nope.pt", "not found")
    (tmp_path / "empty.pth").write_bytes(b"")
    _error(tmp_path / "empty.pth", "empty")
    _error(tmp_path, "not a file")


@pytest.mark.parametrize(
    "content",
    [
        os.urandom(300),
        b"hello, this is a text file and not a checkpoint\n",
        b"\x80\x02}q\x00",  # a pickle that stops halfway
        b"PK\x03\x04" + bytes(100),  # a zip header and nothing else
    ],
    ids=["random", "text", "cut-pickle", "zip-header"],
)
def test_garbage_bytes(tmp_path, content):
    (tmp_path / "x.pt").write_bytes(content)
    msg = _error(tmp_path / "x.pt", "not a readable checkpoint")
    assert "run code" not in msg  # garbage is not reported as a hostile file


def test_garbage_safetensors(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(os.urandom(300))
    _error(tmp_path / "x.safetensors", "not a readable safetensors")
    vit = _timm_vit()
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(tmp_path / "ok.safetensors"))
    data = (tmp_path / "ok.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    _error(tmp_path / "cut.safetensors", "not a readable safetensors")


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_truncated_file(tmp_path, cut):
    path, _ = _mae_full_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    _error(path, "not a readable checkpoint")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["pickle-protocol-2", "pickle-default", "torch-save-nested", "in-args"])
def test_pickle_that_would_run_code_is_refused(tmp_path, how):
    marker = tmp_path / "PWNED"
    evil = _RunsCode(marker)
    path = tmp_path / "evil.pth"
    if how == "pickle-protocol-2":
        path.write_bytes(pickle.dumps(evil, protocol=2))
    elif how == "pickle-default":
        path.write_bytes(pickle.dumps({"model": evil}))
    elif how == "torch-save-nested":
        torch.save({"model": {"w": torch.zeros(2), "x": evil}}, path)
    else:
        torch.save({"model": MAE(MICRO).state_dict(), "args": argparse.Namespace(hook=evil)}, path)
    with pytest.raises(LandscapeError) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    if how != "pickle-default":  # protocol >= 4 framing is refused before any global is even read
        assert "run code" in str(info.value) and "posix.system" in str(info.value)


def test_only_argparse_namespace_is_allowed_besides_tensors(tmp_path):
    torch.save({"model": MAE(MICRO).state_dict(), "args": argparse.Namespace(output_dir=Path("/x"))}, tmp_path / "a.pt")
    _error(tmp_path / "a.pt", "would import or run code .*PosixPath")
    torch.save({"model": MAE(MICRO).state_dict(), "args": argparse.Namespace(output_dir="/x")}, tmp_path / "b.pt")
    assert read_state_file(tmp_path / "b.pt")["args"].output_dir == "/x"


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ([torch.zeros(1)], "a list, not a dict"),
        ({"lr": 0.1, "name": "x"}, "unknown checkpoint layout"),
        ({"model": {"w": [1, 2]}}, "unknown checkpoint layout"),
        ({}, "unknown checkpoint layout"),
        ({"fc.weight": torch.zeros(2, 2)}, "not a ViT checkpoint"),
        ({"patch_embed.proj.weight": torch.zeros(8, 1, 4, 4)}, "cannot infer the ViT architecture"),
    ],
    ids=["list", "non-tensors", "nested-non-tensors", "empty-dict", "not-vit", "incomplete-vit"],
)
def test_wrong_layouts(tmp_path, obj, match):
    torch.save(obj, tmp_path / "w.pt")
    _error(tmp_path / "w.pt", match)


def test_shape_mismatch_names_the_key(tmp_path):
    # an official file whose decoder head does not fit the inferred decoder
    sd = MAE(MICRO).state_dict()
    sd["decoder_pred.weight"] = torch.zeros(5, MICRO.decoder_embed_dim)
    torch.save({"model": sd}, tmp_path / "o.pth")
    _error(tmp_path / "o.pth", "pass --num-heads")  # 32 wide: the head count is not in the file nor in a table
    _error(
        tmp_path / "o.pth",
        r"shape mismatch decoder_pred\.weight \(5, 16\) vs \(16, 16\)",
        num_heads=2,
        decoder_num_heads=2,
    )

    # one of our files whose weights do not fit its description
    path = save_checkpoint(tmp_path / "ours.pt", MAE(MICRO), "mae", MICRO)
    raw = torch.load(path, weights_only=True)
    raw["model"]["blocks.1.mlp.fc1.weight"] = torch.zeros(3, 3)
    del raw["model"]["norm.bias"]
    torch.save(raw, path)
    msg = _error(path, "does not match the architecture")
    assert "blocks.1.mlp.fc1.weight" in msg and "missing norm.bias" in msg


def test_unknown_kind_and_broken_description(tmp_path):
    path = save_checkpoint(tmp_path / "k.pt", MAE(MICRO), "mae", MICRO)
    raw = torch.load(path, weights_only=True)
    torch.save(raw | {"kind": "dino"}, tmp_path / "kind.pt")
    _error(tmp_path / "kind.pt", "unknown model kind 'dino'")
    torch.save({k: v for k, v in raw.items() if k != "config"}, tmp_path / "cfg.pt")
    _error(tmp_path / "cfg.pt", "broken description")
