"""Tests for core.models.hub (through core.models.checkpoints.load_checkpoint): transformers ViTMAE / ViT folders, hub
ids from a local Hugging Face cache with HF_HUB_OFFLINE=1, timm snapshot folders and `timm:` names, head-count
sources and the refusal without the flag, the model's normalization in the objective's key, and the pre-training loss
equal to transformers' own. Tiny models made here; no network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import timm
import torch
from timm.models._hub import save_for_hf

from core.app.cli import main
from core.errors import LandscapeError
from core.models import MAE, ObjectiveSpec, build_objective, checkpoint_overrides, load_checkpoint, preset
from core.models.checkpoints import _config_from_state

transformers = pytest.importorskip("transformers")

# 64 wide with 4 heads: not width / 64 (= 1), so a wrong head count would show in the numbers.
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, image_size=16)
TINY |= dict(patch_size=4, num_channels=1)
DECODER = dict(decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2)
DECODER |= dict(decoder_intermediate_size=64)


def _perturb(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial weights everywhere (LayerNorms and biases included), so any misplaced tensor shows."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


def _hf_mae(folder: Path, norm_pix_loss: bool = False, preprocessor: bool = True, **extra) -> Path:
    torch.manual_seed(0)
    cfg = transformers.ViTMAEConfig(**TINY, **DECODER, norm_pix_loss=norm_pix_loss, **extra)
    _perturb(transformers.ViTMAEForPreTraining(cfg)).save_pretrained(folder)
    if preprocessor:
        pre = {"image_mean": [0.5], "image_std": [0.25], "do_normalize": True}
        (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    return folder


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_pretraining_loss_equals_transformers(tmp_path, norm_pix_loss):
    """The project's objective (its images, its --mask-seed noise) gives ViTMAEForPreTraining's own loss."""
    folder = _hf_mae(tmp_path / "mae", norm_pix_loss)
    ck = load_checkpoint(folder)
    assert ck.kind == "mae" and ck.source == "transformers" and ck.config.norm_pix_loss is norm_pix_loss
    assert (ck.config.num_heads, ck.config.decoder_num_heads, ck.config.layer_norm_eps) == (4, 2, 1e-12)
    assert ck.sources["num_heads"] == "config.json" and "heads 4 (config.json)" in ck.describe().replace("\n    ", " ")
    obj = build_objective(ck, ObjectiveSpec(loss="pretrain", samples=12, data="synthetic", mask_seed=3))
    # --mask-seed K: one torch.rand(N, L) from a generator seeded with K, images in the subset's order (README).
    assert torch.equal(obj.noise, torch.rand(12, 16, generator=torch.Generator().manual_seed(3)))
    hf = transformers.ViTMAEForPreTraining.from_pretrained(folder).eval()
    with torch.no_grad():
        theirs = hf(pixel_values=obj.x, noise=obj.noise).loss
    ours = obj.evaluate(obj.module)["loss"]
    torch.testing.assert_close(torch.tensor(ours), theirs, rtol=1e-6, atol=1e-6)
    # the preprocessor's mean / std standardized the images, and the key (hence every result's meta) says so
    assert obj.dataset.mean == (0.5,) and obj.dataset.std == (0.25,)
    assert obj.key()["normalization"]["source"] == "preprocessor_config.json"


def test_normalization_changes_the_key(tmp_path):
    with_pre = load_checkpoint(_hf_mae(tmp_path / "a"))
    without = load_checkpoint(_hf_mae(tmp_path / "b", preprocessor=False))
    assert without.normalization is None and with_pre.normalization["mean"] == [0.5]
    spec = ObjectiveSpec(loss="pretrain", samples=4, data="synthetic")
    k1, k2 = build_objective(with_pre, spec).key(), build_objective(without, spec).key()
    assert k1["data"] != k2["data"] and "normalization" not in k2


def test_encoder_only_and_supervised_folders(tmp_path):
    torch.manual_seed(0)
    enc = _perturb(transformers.ViTMAEModel(transformers.ViTMAEConfig(**TINY, mask_ratio=0.0)))
    enc.save_pretrained(tmp_path / "enc")
    ck = load_checkpoint(tmp_path / "enc")
    assert ck.kind == "mae" and ck.config.decoder_depth == 0 and "encoder only" in ck.meta["layout"]
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad():  # the cls token does not depend on the order of the (all visible) patches
        torch.testing.assert_close(ck.model.forward_features(x), enc(x).last_hidden_state[:, 0], rtol=1e-5, atol=1e-5)
    vcfg = transformers.ViTConfig(**TINY, num_labels=5)
    clf = _perturb(transformers.ViTForImageClassification(vcfg))
    clf.save_pretrained(tmp_path / "clf")
    sup = load_checkpoint(tmp_path / "clf")
    assert sup.kind == "sup" and sup.config.num_classes == 5
    with torch.no_grad():
        torch.testing.assert_close(sup.model(x), clf(x).logits, rtol=1e-5, atol=1e-5)


def _hub_cache(root: Path, repo: str, folder: Path) -> Path:
    """A Hugging Face cache holding `folder` as repo's `main` snapshot (the layout huggingface_hub reads)."""
    base = root / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / "0123abcd"
    shutil.copytree(folder, snap)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text("0123abcd")
    return snap


def test_hub_ids_from_the_local_cache_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snap = _hub_cache(tmp_path / "hub", "org/tiny-mae", _hf_mae(tmp_path / "mae"))
    ck = load_checkpoint("hf:org/tiny-mae")
    assert ck.path == snap and ck.reference == "hf:org/tiny-mae" and ck.config.num_heads == 4
    # a timm snapshot: timm's own model, saved as timm pushes it to the hub
    torch.manual_seed(0)
    vit = _perturb(timm.create_model("vit_base_patch16_224.mae", embed_dim=64, depth=1, num_heads=4, img_size=16,
                                     patch_size=4, num_classes=0))  # fmt: skip
    save_for_hf(vit, tmp_path / "timm_snap")
    _hub_cache(tmp_path / "hub", "timm/vit_base_patch16_224.mae", tmp_path / "timm_snap")
    for ref in ("timm:vit_base_patch16_224.mae", tmp_path / "timm_snap"):
        t = load_checkpoint(ref)
        assert t.kind == "mae" and t.source == "timm-hub" and t.config.num_heads == 4
        assert t.normalization["source"] == "timm pretrained_cfg"
        x = torch.randn(2, 3, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(t.model.forward_features(x), vit.forward_features(x)[:, 0])
    # JSON only on stdout, the path inside it
    assert main(["info", "hf:org/tiny-mae", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == str(snap) and out["sources"]["num_heads"] == "config.json"
    # missing offline: one line
    assert main(["info", "hf:facebook/vit-mae-base"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: hf:facebook/vit-mae-base is not in the local Hugging Face cache (HF_HUB_OFFLINE")
    assert "\n" not in err


def test_head_count_sources_and_the_refusal(tmp_path, capsys):
    with torch.device("meta"):  # an official width: the table says it
        sd = MAE(preset("vit_base_patch16")).state_dict()
    cfg, sources = _config_from_state("mae", sd, {})
    assert (cfg.num_heads, sources["num_heads"]) == (12, "ViT-B table")
    assert sources["decoder_num_heads"] == "MAE decoder table"
    assert sources["norm_pix_loss"].startswith("assumed")  # said, not silent
    torch.manual_seed(0)
    mae = MAE(preset("tiny", in_chans=3)).eval()  # 64 wide, 4 heads: nothing in the file says 4
    torch.save({"model": mae.state_dict()}, tmp_path / "mae.pth")
    with pytest.raises(LandscapeError, match="not an official ViT width: pass --num-heads"):
        load_checkpoint(tmp_path / "mae.pth")
    assert main(["info", str(tmp_path / "mae.pth")]) == 1
    assert "--num-heads" in capsys.readouterr().err
    with checkpoint_overrides(num_heads=4, decoder_num_heads=4, norm_pix_loss=False):
        ck = load_checkpoint(tmp_path / "mae.pth")
    assert ck.sources["num_heads"] == "--num-heads" and ck.config.num_heads == 4
    assert ck.normalization["source"].startswith("ImageNet")  # an official 3-channel layout
    plain = load_checkpoint(tmp_path / "mae.pth", num_heads=1, decoder_num_heads=1)
    assert plain.sha256 != ck.sha256  # another model, another key
    x, noise = torch.randn(2, 3, 16, 16), torch.rand(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(ck.model(x, 0.75, noise)[0], mae(x, 0.75, noise)[0], rtol=0, atol=0)


def test_unrepresentable_configs_are_refused_in_one_line(tmp_path):
    folder = _hf_mae(tmp_path / "m")
    cfg = json.loads((folder / "config.json").read_text())
    for change, words in (
        ({"decoder_intermediate_size": 96}, "MLP ratio"),
        ({"hidden_act": "relu"}, "hidden_act"),
        ({"model_type": "bert"}, "not supported"),
    ):
        (folder / "config.json").write_text(json.dumps(cfg | change))
        with pytest.raises(LandscapeError, match=words) as e:
            load_checkpoint(folder)
        assert "\n" not in str(e.value)
