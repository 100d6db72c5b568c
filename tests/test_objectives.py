"""Objectives: fixed data and masks, the right loss per kind, prefix caching that changes no number."""

import pytest
import torch
import torch.nn.functional as F

from core.errors import LandscapeError
from core.geometry.landscape import perturbed
from core.models.checkpoints import load_checkpoint
from core.models.objectives import ObjectiveSpec, build_objective, resolve_loss
from core.models.vit import masked_patch_mse


@pytest.fixture()
def ckpts(trained_ckpts, trained_cache_dir, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(trained_cache_dir))
    return {k: load_checkpoint(p) for k, p in trained_ckpts.items()}


def test_pretrain_loss_is_the_mae_loss_with_the_fixed_noise(ckpts):
    ck = ckpts["mae"]
    obj = build_objective(ck, ObjectiveSpec(samples=40, mask_seed=3))
    g = torch.Generator().manual_seed(3)
    noise = ck.model.draw_noise(40, generator=g)
    assert torch.equal(noise, obj.noise)
    with torch.no_grad():
        expected, _, _ = ck.model(obj.x, 0.75, noise)
    assert obj.evaluate(obj.module)["loss"] == pytest.approx(float(expected), rel=1e-6)
    # Every call gives the same number: the masks do not change between grid points.
    assert obj.evaluate(obj.module)["loss"] == obj.evaluate(obj.module)["loss"]


def test_same_mask_seed_gives_the_same_masks_for_every_model(ckpts):
    a = build_objective(ckpts["mae"], ObjectiveSpec(samples=32, mask_seed=1))
    b = build_objective(ckpts["rcmae"], ObjectiveSpec(samples=32, mask_seed=1))
    c = build_objective(ckpts["mae"], ObjectiveSpec(samples=32, mask_seed=2))
    assert torch.equal(a.noise, b.noise) and torch.equal(a.x, b.x)
    assert not torch.equal(a.noise, c.noise)


def test_rcmae_objective_adds_consistency_to_a_fixed_teacher(ckpts):
    ck = ckpts["rcmae"]
    full = build_objective(ck, ObjectiveSpec(samples=32))
    mae_only = build_objective(ck, ObjectiveSpec(samples=32, rcmae_terms="mae"))
    assert full.module is ck.model.student
    with torch.no_grad():
        mae_loss, cons = ck.model.forward_parts(full.x, 0.75, full.noise)
    assert full.evaluate(full.module)["loss"] == pytest.approx(float(mae_loss + ck.model.gamma * cons), rel=1e-5)
    assert mae_only.evaluate(mae_only.module)["loss"] == pytest.approx(float(mae_loss), rel=1e-5)
    # Moving the student leaves the teacher's reconstruction where it was.
    teacher_before = [p.clone() for p in ck.model.teacher.parameters()]
    d = {n: torch.randn_like(p) * 0.05 for n, p in full.module.named_parameters() if p.requires_grad}
    with perturbed(full.module, [d], [1.0]):
        moved = full.evaluate(full.module)["loss"]
    assert moved != full.evaluate(full.module)["loss"]
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, ck.model.teacher.parameters(), strict=True))


def test_supervised_and_probe_losses_match_a_direct_computation(ckpts):
    for kind in ("sup", "probe"):
        ck = ckpts[kind]
        obj = build_objective(ck, ObjectiveSpec(samples=50, batch_size=16))
        with torch.no_grad():
            logits = ck.model(obj.x)
        vals = obj.evaluate(obj.module)
        assert vals["loss"] == pytest.approx(float(F.cross_entropy(logits, obj.y)), rel=1e-5)
        assert vals["acc"] == pytest.approx(float((logits.argmax(1) == obj.y).float().mean()), abs=1e-6)
        assert not ck.model.training


@pytest.mark.parametrize(
    ("kind", "scope"), [("probe", "head"), ("sup", "head"), ("mae", "decoder"), ("rcmae", "decoder")]
)
def test_prefix_caching_changes_no_number(ckpts, kind, scope):
    ck = ckpts[kind]
    plain = build_objective(ck, ObjectiveSpec(samples=40, batch_size=16))
    cached = build_objective(ck, ObjectiveSpec(samples=40, batch_size=16, prefix_scope=scope))
    assert cached._prefix is not None
    from core.geometry.params import select_parameters

    names = select_parameters(plain.module, scope)
    assert names
    g = torch.Generator().manual_seed(0)
    d = {
        n: torch.randn(p.shape, generator=g) * 0.1 if n in names else torch.zeros_like(p)
        for n, p in plain.module.named_parameters()
        if p.requires_grad
    }
    for coeff in (0.0, 1.0):
        with perturbed(plain.module, [d], [coeff]):
            a = plain.evaluate(plain.module)["loss"]
            b = cached.evaluate(cached.module)["loss"]
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7)
    # The cached objective is also differentiable (Hessians use it).
    loss = cached(cached.module)
    grads = torch.autograd.grad(loss, [cached.module.get_parameter(n) for n in names])
    assert all(torch.isfinite(g).all() for g in grads)


def test_batching_does_not_change_the_loss(ckpts):
    ck = ckpts["mae"]
    a = build_objective(ck, ObjectiveSpec(samples=45, batch_size=512)).evaluate(ck.model)["loss"]
    b = build_objective(ck, ObjectiveSpec(samples=45, batch_size=7)).evaluate(ck.model)["loss"]
    assert a == pytest.approx(b, rel=1e-5)


def test_key_tracks_every_input_that_changes_numbers(ckpts):
    ck = ckpts["mae"]
    base = build_objective(ck, ObjectiveSpec(samples=16)).key()
    assert base == build_objective(ck, ObjectiveSpec(samples=16, batch_size=4)).key()
    for change in (dict(samples=17), dict(mask_seed=1), dict(data_seed=1), dict(split="train"), dict(mask_ratio=0.5)):
        spec = ObjectiveSpec(**({"samples": 16} | change))
        assert build_objective(ck, spec).key() != base, change
    assert base["checkpoint"] == ck.sha256


def test_impossible_pairs_are_clear_errors(ckpts):
    assert resolve_loss("mae", "own") == "pretrain"
    assert resolve_loss("sup", "own") == "supervised"
    with pytest.raises(LandscapeError, match="no MAE pre-training loss"):
        resolve_loss("sup", "pretrain")
    with pytest.raises(LandscapeError, match="no classifier head"):
        resolve_loss("mae", "supervised")
    with pytest.raises(LandscapeError, match="probe checkpoint"):
        resolve_loss("rcmae", "probe")
    with pytest.raises(LandscapeError, match="unknown loss"):
        resolve_loss("mae", "bogus")
    with pytest.raises(LandscapeError, match="at least one image"):
        build_objective(ckpts["mae"], ObjectiveSpec(samples=0))
    with pytest.raises(LandscapeError, match="nonexistent"):
        build_objective(ckpts["mae"], ObjectiveSpec(samples=4, data="folder:/nonexistent"))


def test_masked_patch_mse_ignores_kept_patches():
    pred = torch.randn(2, 4, 3)
    target = torch.randn(2, 4, 3)
    mask = torch.tensor([[1.0, 0, 1, 0], [0, 1, 1, 0]])
    pred2 = pred.clone()
    pred2[mask == 0] += 5.0
    assert torch.equal(masked_patch_mse(pred, target, mask), masked_patch_mse(pred2, target, mask))


def test_probe_encoder_weights_are_landscape_parameters_even_for_the_rcmae_teacher(
    trained_cache_dir, monkeypatch, trained_ckpts
):
    from conftest import TINY_PROBE

    from core.geometry.params import select_parameters
    from core.models.train import train_probe

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(trained_cache_dir))
    probe = load_checkpoint(train_probe(trained_ckpts["rcmae"], TINY_PROBE, device="cpu"))
    names = select_parameters(probe.model, "encoder")
    assert "encoder.blocks.0.attn.qkv.weight" in names
    assert not any("pos_embed" in n or "decoder" in n or "mask_token" in n for n in names)
    obj = build_objective(probe, ObjectiveSpec(samples=16))
    d = {
        n: torch.randn_like(p) * 0.1 if n in names else torch.zeros_like(p)
        for n, p in probe.model.named_parameters()
        if p.requires_grad
    }
    clean = obj.evaluate(obj.module)["loss"]
    with perturbed(obj.module, [d], [1.0]):
        assert obj.evaluate(obj.module)["loss"] != clean
