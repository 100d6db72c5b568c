"""Tests for core.models.vit: MAE against the official semantics, RC-MAE's EMA teacher, timm ViT, linear probe,
presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.errors import LandscapeError
from core.models.vit import (
    MAE,
    PRESETS,
    RCMAE,
    LinearProbe,
    ViTConfig,
    build_model,
    build_supervised,
    encode,
    encoder_flops_per_image,
    encoder_of,
    masked_patch_mse,
    preset,
    random_masking,
    sincos_pos_embed,
)

MICRO = preset("micro")  # 16x16 images, patch 4 (16 patches), dim 32, 2 blocks; decoder 16-d, 1 block


def _seeded(build, seed: int = 0):
    torch.manual_seed(seed)
    return build()


def _imgs(cfg: ViTConfig, n: int = 3, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, cfg.in_chans, cfg.img_size, cfg.img_size, generator=g)


def _noise(n: int, length: int, seed: int = 2) -> torch.Tensor:
    return torch.rand(n, length, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------------------
# Independent references of the official facebookresearch/mae code (written from its description, in numpy/loops)


def ref_random_masking(x: np.ndarray, mask_ratio: float, noise: np.ndarray):
    """Official semantics: sort noise ascending, keep the first int(L * (1 - r)); mask 1 = removed, original order."""
    n, length, _ = x.shape
    keep = int(length * (1 - mask_ratio))
    kept, masks, restores = [], [], []
    for i in range(n):
        order = sorted(range(length), key=lambda j: noise[i, j])
        kept.append(x[i, order[:keep]])
        m = np.ones(length)
        m[order[:keep]] = 0
        masks.append(m)
        restore = np.empty(length, dtype=np.int64)
        restore[order] = np.arange(length)  # position of each patch in the shuffled order
        restores.append(restore)
    return np.stack(kept), np.stack(masks), np.stack(restores)


def ref_sincos_table(embed_dim: int, grid_size: int) -> np.ndarray:
    """Official get_2d_sincos_pos_embed(cls_token=True): first half of the channels from the column index
    (meshgrid(w, h)[0]), second half from the row index; each half is [sin(pos * omega), cos(pos * omega)] with
    omega_k = 1 / 10000 ** (k / (embed_dim / 4))."""
    quarter = embed_dim // 4
    table = np.zeros((grid_size * grid_size + 1, embed_dim))
    for r in range(grid_size):
        for c in range(grid_size):
            row = 1 + r * grid_size + c
            for half, pos in enumerate((c, r)):
                for k in range(quarter):
                    omega = 1.0 / 10000 ** (k / quarter)
                    table[row, half * 2 * quarter + k] = np.sin(pos * omega)
                    table[row, half * 2 * quarter + quarter + k] = np.cos(pos * omega)
    return table


def ref_patchify(imgs: np.ndarray, p: int) -> np.ndarray:
    """Patches in row-major order; within a patch, (row, col, channel) with the channel fastest (official layout)."""
    n, c, h, w = imgs.shape
    out = np.zeros((n, (h // p) * (w // p), p * p * c))
    for i in range(h // p):
        for j in range(w // p):
            for pr in range(p):
                for pc in range(p):
                    for ch in range(c):
                        out[:, i * (w // p) + j, (pr * p + pc) * c + ch] = imgs[:, ch, i * p + pr, j * p + pc]
    return out


def official_mae_names(depth: int, decoder_depth: int) -> set[str]:
    """Parameter names of facebookresearch/mae MaskedAutoencoderViT (timm Blocks)."""

    def block(prefix: str) -> list[str]:
        subs = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]
        return [f"{prefix}.{s}.{wb}" for s in subs for wb in ("weight", "bias")]

    names = ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias"]
    for i in range(depth):
        names += block(f"blocks.{i}")
    if decoder_depth:
        names += ["decoder_embed.weight", "decoder_embed.bias", "mask_token", "decoder_pos_embed"]
        names += ["decoder_norm.weight", "decoder_norm.bias", "decoder_pred.weight", "decoder_pred.bias"]
        for i in range(decoder_depth):
            names += block(f"decoder_blocks.{i}")
    return set(names)


# ---------------------------------------------------------------------------------------------------------------
# MAE


def test_mae_forward_shapes():
    cfg = MICRO
    model = _seeded(lambda: MAE(cfg))
    imgs, noise = _imgs(cfg, 3), _noise(3, cfg.num_patches)
    length, ppc = cfg.num_patches, cfg.patch_size**2 * cfg.in_chans
    keep = int(length * 0.25)

    latent, mask, ids_restore = model.forward_encoder(imgs, 0.75, noise)
    assert latent.shape == (3, 1 + keep, cfg.embed_dim)
    assert mask.shape == ids_restore.shape == (3, length)
    assert torch.equal(mask.sum(1), torch.full((3,), float(length - keep)))

    pred = model.forward_decoder(latent, ids_restore)
    assert pred.shape == (3, length, ppc)

    loss, pred2, mask2 = model(imgs, 0.75, noise)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert torch.allclose(pred2, pred) and torch.equal(mask2, mask)

    for pool in ("cls", "mean"):
        assert model.forward_features(imgs, pool).shape == (3, cfg.embed_dim)
    assert model.draw_noise(5).shape == (5, length)


@pytest.mark.parametrize("mask_ratio", [0.75, 0.5, 0.6])
def test_random_masking_matches_official_reference(mask_ratio):
    x = torch.randn(4, 16, 5, generator=torch.Generator().manual_seed(3))
    noise = _noise(4, 16)
    kept, mask, ids_restore, ids_shuffle = random_masking(x, mask_ratio, noise)
    r_kept, r_mask, r_restore = ref_random_masking(x.numpy(), mask_ratio, noise.numpy())
    assert kept.shape[1] == int(16 * (1 - mask_ratio))
    np.testing.assert_array_equal(kept.numpy(), r_kept)
    np.testing.assert_array_equal(mask.numpy(), r_mask)
    np.testing.assert_array_equal(ids_restore.numpy(), r_restore)
    # ids_restore undoes ids_shuffle
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), torch.arange(16).expand(4, -1))


def test_encoder_keeps_the_patches_with_smallest_noise():
    """The encoder's latent equals a hand-built pass over exactly the reference's kept tokens."""
    cfg = MICRO
    model = _seeded(lambda: MAE(cfg)).eval()
    imgs, noise = _imgs(cfg, 2), _noise(2, cfg.num_patches, seed=7)
    latent, mask, _ = model.forward_encoder(imgs, 0.75, noise)
    with torch.no_grad():
        tokens = model.patch_embed(imgs) + model.pos_embed[:, 1:]
        r_kept, r_mask, _ = ref_random_masking(tokens.numpy(), 0.75, noise.numpy())
        x = torch.cat([(model.cls_token + model.pos_embed[:, :1]).expand(2, -1, -1), torch.from_numpy(r_kept)], 1)
        for blk in model.blocks:
            x = blk(x)
        expected = model.norm(x)
    np.testing.assert_array_equal(mask.numpy(), r_mask)
    torch.testing.assert_close(latent, expected)
    # the same noise gives the same mask and the same loss; other noise another mask
    with torch.no_grad():
        l1, _, m1 = model(imgs, 0.75, noise)
        l2, _, m2 = model(imgs, 0.75, noise.clone())
        _, _, m3 = model(imgs, 0.75, _noise(2, cfg.num_patches, seed=8))
    assert torch.equal(m1, m2) and float(l1) == float(l2)
    assert not torch.equal(m1, m3)


def test_patchify_official_layout_and_round_trip():
    cfg = preset("micro", in_chans=3, img_size=8, patch_size=4)
    model = MAE(cfg)
    imgs = _imgs(cfg, 2)
    patches = model.patchify(imgs)
    assert patches.shape == (2, 4, 4 * 4 * 3)
    np.testing.assert_allclose(patches.numpy(), ref_patchify(imgs.numpy(), 4), rtol=0, atol=0)
    torch.testing.assert_close(model.unpatchify(patches), imgs, rtol=0, atol=0)


def test_patchify_order_matches_patch_embed_tokens():
    """Patch l of patchify is the patch that patch_embed turns into token l (same row-major order)."""
    cfg = preset("micro", in_chans=3)
    model = MAE(cfg)
    imgs = _imgs(cfg, 2)
    with torch.no_grad():
        w = model.patch_embed.proj.weight  # (D, C, p, p) -> (p*p*C, D) in the channel-last layout
        w_flat = w.permute(2, 3, 1, 0).reshape(-1, cfg.embed_dim)
        expected = model.patchify(imgs) @ w_flat + model.patch_embed.proj.bias
        torch.testing.assert_close(model.patch_embed(imgs), expected, rtol=1e-5, atol=1e-5)


def test_patchify_rejects_wrong_images():
    model = MAE(MICRO)
    with pytest.raises(LandscapeError, match="do not fit"):
        model.patchify(torch.zeros(2, 3, 16, 16))
    with pytest.raises(LandscapeError, match="do not fit"):
        model.patchify(torch.zeros(2, 1, 8, 8))


@pytest.mark.parametrize("norm_pix", [True, False])
def test_reconstruction_target(norm_pix):
    cfg = preset("micro", norm_pix_loss=norm_pix)
    model = MAE(cfg)
    imgs = _imgs(cfg, 2)
    raw = ref_patchify(imgs.numpy().astype(np.float64), cfg.patch_size)
    if norm_pix:
        var = raw.var(axis=-1, ddof=1, keepdims=True)  # unbiased, as torch.var in the official code
        expected = (raw - raw.mean(axis=-1, keepdims=True)) / np.sqrt(var + 1e-6)
    else:
        expected = raw
    np.testing.assert_allclose(model.target(imgs).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_loss_counts_only_removed_patches():
    cfg = preset("micro", norm_pix_loss=True)
    model = _seeded(lambda: MAE(cfg)).eval()
    imgs, noise = _imgs(cfg, 3), _noise(3, cfg.num_patches)
    with torch.no_grad():
        loss, pred, mask = model(imgs, 0.75, noise)
        target = model.target(imgs)
        per_patch = ((pred - target) ** 2).mean(-1).numpy()
        expected = per_patch[mask.numpy() == 1].mean()
        assert float(loss) == pytest.approx(expected, rel=1e-5)
        kept = (mask == 0).unsqueeze(-1)
        changed_kept = torch.where(kept, pred + 100.0, pred)
        assert float(model.forward_loss(imgs, changed_kept, mask)) == pytest.approx(float(loss), rel=1e-6)
        changed_removed = torch.where(kept, pred, pred + 1.0)
        assert float(model.forward_loss(imgs, changed_removed, mask)) > float(loss) + 0.5
    # the helper itself: weighted mean over mask == 1
    p, t = torch.zeros(1, 2, 3), torch.tensor([[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]])
    assert float(masked_patch_mse(p, t, torch.tensor([[0.0, 1.0]]))) == pytest.approx(4.0)


def test_position_tables_are_frozen_sincos():
    cfg = MICRO
    model = _seeded(lambda: MAE(cfg))
    grid = cfg.img_size // cfg.patch_size
    for name, dim in (("pos_embed", cfg.embed_dim), ("decoder_pos_embed", cfg.decoder_embed_dim)):
        param = getattr(model, name)
        assert isinstance(param, nn.Parameter) and not param.requires_grad
        np.testing.assert_allclose(param[0].detach().numpy(), ref_sincos_table(dim, grid), atol=1e-6)
    np.testing.assert_allclose(sincos_pos_embed(8, 3), ref_sincos_table(8, 3), atol=1e-12)
    assert sincos_pos_embed(8, 3, cls_token=False).shape == (9, 8)

    # A training step leaves them as they were and gives them no gradient.
    before = (model.pos_embed.detach().clone(), model.decoder_pos_embed.detach().clone())
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss, _, _ = model(_imgs(cfg), 0.75, _noise(3, cfg.num_patches))
    loss.backward()
    opt.step()
    assert model.pos_embed.grad is None and model.decoder_pos_embed.grad is None
    assert torch.equal(model.pos_embed, before[0]) and torch.equal(model.decoder_pos_embed, before[1])
    assert model.cls_token.requires_grad and model.mask_token.requires_grad


def test_parameter_names_are_the_official_ones():
    cfg = MICRO
    full = MAE(cfg)
    assert set(full.state_dict()) == official_mae_names(cfg.depth, cfg.decoder_depth)
    sd = full.state_dict()
    d, dd, p = cfg.embed_dim, cfg.decoder_embed_dim, cfg.patch_size
    assert sd["blocks.0.attn.qkv.weight"].shape == (3 * d, d)
    assert sd["patch_embed.proj.weight"].shape == (d, cfg.in_chans, p, p)
    assert sd["decoder_embed.weight"].shape == (dd, d)
    assert sd["mask_token"].shape == (1, 1, dd)
    assert sd["decoder_pred.weight"].shape == (p * p * cfg.in_chans, dd)
    assert sd["pos_embed"].shape == (1, cfg.num_patches + 1, d)

    encoder_only = MAE(preset("micro", decoder_depth=0))
    assert set(encoder_only.state_dict()) == official_mae_names(cfg.depth, 0)
    with pytest.raises(LandscapeError, match="encoder-only"):
        encoder_only(_imgs(cfg), 0.75, _noise(3, cfg.num_patches))


def _block_params(d: int, ratio: float) -> int:
    h = int(d * ratio)
    return 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * h + h) + (h * d + d)


def test_official_presets_on_meta_device():
    cfg = preset("vit_base_patch16")
    assert (cfg.img_size, cfg.patch_size, cfg.in_chans) == (224, 16, 3)
    with torch.device("meta"):  # shapes only: no 440 MB allocation
        mae = MAE(cfg)
        vit = build_supervised(cfg)
    assert len(mae.blocks) == 12 and mae.blocks[0].attn.num_heads == 12
    assert mae.blocks[0].attn.qkv.in_features == 768 and mae.blocks[0].mlp.fc1.out_features == 3072
    assert len(mae.decoder_blocks) == 8 and mae.decoder_blocks[0].attn.num_heads == 16
    assert mae.decoder_embed.out_features == 512 and mae.decoder_pred.out_features == 16 * 16 * 3
    assert mae.norm_pix_loss and mae.norm.eps == 1e-6

    n_tok = 197
    encoder = 768 * 3 * 16 * 16 + 768 + 768 + n_tok * 768 + 12 * _block_params(768, 4.0) + 2 * 768
    decoder = (768 * 512 + 512) + 512 + n_tok * 512 + 8 * _block_params(512, 4.0) + 2 * 512 + (512 * 768 + 768)
    assert sum(p.numel() for p in mae.parameters()) == encoder + decoder
    # timm's vit_base_patch16_224 has 86,567,656 parameters (published): encoder plus a 1000-way head
    assert sum(p.numel() for p in vit.parameters()) == encoder + 768 * 1000 + 1000 == 86_567_656

    large = preset("vit_large_patch16")
    shape = (large.embed_dim, large.depth, large.num_heads, large.decoder_embed_dim, large.decoder_depth)
    assert shape == (1024, 24, 16, 512, 8)
    assert set(PRESETS) >= {"tiny", "micro", "vit_base_patch16"}


def test_preset_overrides_and_errors():
    assert preset("micro", in_chans=3).in_chans == 3 and PRESETS["micro"].in_chans == 1
    with pytest.raises(LandscapeError, match="unknown preset"):
        preset("vit_gigantic")
    with pytest.raises(LandscapeError, match="unknown model kind"):
        build_model("dino", MICRO)
    cfg = ViTConfig.from_dict(MICRO.to_dict() | {"not_a_field": 1})
    assert cfg == MICRO


def test_encoder_flops_match_a_flop_counter():
    cfg = preset("micro", in_chans=3, mlp_ratio=2.0)
    model = MAE(cfg).eval()
    for blk in model.blocks:
        blk.attn.fused_attn = False  # explicit matmuls, which the counter sees
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.forward_features(_imgs(cfg, 1))
    assert encoder_flops_per_image(cfg) == counter.get_total_flops()


# ---------------------------------------------------------------------------------------------------------------
# RC-MAE


def test_rcmae_teacher_starts_as_copy_and_is_frozen():
    model = _seeded(lambda: RCMAE(MICRO))
    s, t = model.student.state_dict(), model.teacher.state_dict()
    assert s.keys() == t.keys() and all(torch.equal(s[k], t[k]) for k in s)
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert model.teacher.cls_token.data_ptr() != model.student.cls_token.data_ptr()  # a copy, not shared


def test_rcmae_ema_update_formula():
    model = _seeded(lambda: RCMAE(MICRO, momentum=0.9))
    with torch.no_grad():  # make student and teacher differ
        for p in model.student.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    s0 = {k: v.clone() for k, v in model.student.state_dict().items()}
    t0 = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    trainable = {n for n, p in model.student.named_parameters() if p.requires_grad}

    model.ema_update()  # the configured momentum, 0.9
    t1 = model.teacher.state_dict()
    for k in t0:
        expected = 0.9 * t0[k] + 0.1 * s0[k] if k in trainable else t0[k]
        torch.testing.assert_close(t1[k], expected, rtol=1e-6, atol=1e-7)
    assert {k for k in s0 if not torch.equal(s0[k], model.student.state_dict()[k])} == set()  # student untouched

    model.ema_update(momentum=0.0)  # an explicit momentum wins: the teacher becomes the student
    for k in trainable:
        assert torch.equal(model.teacher.state_dict()[k], s0[k])
    assert torch.equal(model.teacher.pos_embed, t0["pos_embed"])


def test_rcmae_backward_touches_only_the_student():
    model = _seeded(lambda: RCMAE(MICRO))
    with torch.no_grad():
        for p in model.teacher.parameters():
            p.add_(0.01 * torch.randn_like(p))  # a teacher that differs, so the consistency term is non-zero
    t0 = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    loss, _, _ = model(_imgs(MICRO), 0.75, _noise(3, MICRO.num_patches))
    loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(torch.equal(v, t0[k]) for k, v in model.teacher.state_dict().items())
    assert model.student.blocks[0].attn.qkv.weight.grad is not None
    assert model.student.decoder_pred.weight.grad.abs().sum() > 0


def test_rcmae_teacher_sees_the_same_mask_and_loss_adds_consistency():
    gamma = 0.5
    model = _seeded(lambda: RCMAE(MICRO, gamma=gamma)).eval()
    with torch.no_grad():
        for p in model.teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    imgs, noise = _imgs(MICRO), _noise(3, MICRO.num_patches)

    seen = []
    original = model.teacher.forward_encoder

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append(out[1])
        return out

    model.teacher.forward_encoder = spy
    with torch.no_grad():
        loss, pred, mask = model(imgs, 0.75, noise)
        mae_loss, consistency = model.forward_parts(imgs, 0.75, noise)
    assert len(seen) == 2 and all(torch.equal(m, mask) for m in seen)

    with torch.no_grad():  # independent: student's MAE loss, teacher's reconstruction under the same noise
        s_loss, s_pred, s_mask = model.student(imgs, 0.75, noise)
        _, t_pred, _ = model.teacher(imgs, 0.75, noise)
    per_patch = ((s_pred - t_pred) ** 2).mean(-1)
    expected_consistency = float(per_patch[s_mask == 1].mean())
    assert expected_consistency > 0
    assert float(mae_loss) == pytest.approx(float(s_loss), rel=1e-6)
    assert float(consistency) == pytest.approx(expected_consistency, rel=1e-5)
    assert float(loss) == pytest.approx(float(s_loss) + gamma * expected_consistency, rel=1e-5)
    assert torch.equal(pred, s_pred)


def test_rcmae_draws_one_noise_for_both_when_none_given():
    """Without noise the forward draws one mask for both: with teacher == student the consistency is then 0."""
    model = _seeded(lambda: RCMAE(MICRO)).eval()
    imgs = _imgs(MICRO)
    torch.manual_seed(5)
    with torch.no_grad():
        loss, _, mask = model(imgs)
    torch.manual_seed(5)
    noise = model.student.draw_noise(3)
    with torch.no_grad():
        s_loss, _, s_mask = model.student(imgs, 0.75, noise)
    assert torch.equal(mask, s_mask)
    assert float(loss) == pytest.approx(float(s_loss), rel=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Supervised ViT, encoders and linear probe


def test_supervised_model_is_a_timm_vit():
    cfg = preset("micro", num_classes=7)
    model = build_model("sup", cfg)
    assert isinstance(model, VisionTransformer)
    assert model(_imgs(cfg, 4)).shape == (4, 7)
    assert model.embed_dim == cfg.embed_dim and len(model.blocks) == cfg.depth
    assert model.blocks[0].attn.num_heads == cfg.num_heads and model.norm.eps == 1e-6
    assert {"cls_token", "pos_embed", "patch_embed.proj.weight", "head.weight"} <= set(model.state_dict())
    avg = build_supervised(cfg, global_pool="avg")
    assert "fc_norm.weight" in avg.state_dict() and avg(_imgs(cfg, 2)).shape == (2, 7)


def test_encoder_of_and_encode():
    cfg = MICRO
    rc = RCMAE(cfg)
    assert encoder_of(rc) is rc.teacher
    mae = MAE(cfg)
    assert encoder_of(mae) is mae
    probe = LinearProbe(mae, 4)
    assert encoder_of(probe) is mae
    vit = build_supervised(cfg).eval()
    imgs = _imgs(cfg, 2)
    with torch.no_grad():
        tokens = vit.forward_features(imgs)
        torch.testing.assert_close(encode(vit, imgs, "cls"), tokens[:, 0])
        torch.testing.assert_close(encode(vit, imgs, "mean"), tokens[:, 1:].mean(1))
    with pytest.raises(LandscapeError, match="cannot read features"):
        encode(nn.Linear(2, 2), imgs)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_linear_probe_shapes(pool):
    cfg = MICRO
    for encoder in (MAE(cfg), build_supervised(cfg)):
        probe = LinearProbe(encoder, 5, pool=pool).eval()
        assert probe(_imgs(cfg, 4)).shape == (4, 5)
        assert probe.features(_imgs(cfg, 4)).shape == (4, cfg.embed_dim)
    assert probe.bn.weight is None and probe.bn.eps == 1e-6  # BatchNorm without affine, as MAE's probe
    with pytest.raises(LandscapeError, match="pooling"):
        LinearProbe(MAE(cfg), 5, pool="max")


def test_training_the_probe_head_leaves_the_encoder_untouched():
    cfg = MICRO
    encoder = _seeded(lambda: MAE(cfg))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    probe = LinearProbe(encoder, 3)
    head0 = probe.head.weight.detach().clone()
    opt = torch.optim.SGD(probe.head.parameters(), lr=0.5)
    imgs, y = _imgs(cfg, 8), torch.arange(8) % 3
    for _ in range(3):
        loss = nn.functional.cross_entropy(probe(imgs), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(probe.head.weight, head0)
    after = encoder.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)
