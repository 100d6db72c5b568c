"""The models: MAE, RC-MAE (student + EMA teacher), supervised ViT and a linear probe.

MAE follows facebookresearch/mae `models_mae.py` (structure and parameter names), so official checkpoints load into
it as they are; the supervised ViT is timm's `VisionTransformer`, so timm checkpoints load as they are too.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace
from functools import partial

import numpy as np
import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from core.errors import LandscapeError

MODEL_KINDS = ("mae", "rcmae", "sup")
DEFAULT_LAYER_NORM_EPS = 1e-6

# Head counts of the official ViT widths (Dosovitskiy et al. 2021; MAE's decoder): the only widths whose head count
# may be taken from a table. Any other width needs the count from a config or the command line.
OFFICIAL_HEADS: dict[int, tuple[str, int]] = {
    192: ("ViT-Ti", 3),
    384: ("ViT-S", 6),
    768: ("ViT-B", 12),
    1024: ("ViT-L", 16),
    1280: ("ViT-H", 16),
}
OFFICIAL_DECODER_HEADS: dict[int, tuple[str, int]] = {512: ("MAE decoder", 16)}


@dataclass(frozen=True)
class ViTConfig:
    """Architecture of one ViT (the MAE encoder and decoder, or the supervised model).

    The defaults are the `tiny` preset for the embedded digits: small enough to train in about a minute on 2 CPU
    cores, big enough to learn the task.
    """

    img_size: int = 16  # digits are 8x8, upsampled so that a 4-pixel patch still holds a stroke
    patch_size: int = 4  # 16 patches: at 75% masking 4 stay visible, enough to reconstruct a digit
    in_chans: int = 1  # digits are grey
    embed_dim: int = 64  # ~200k encoder parameters: a landscape point costs milliseconds on a CPU
    depth: int = 4
    num_heads: int = 4  # 16-dim heads
    mlp_ratio: float = 4.0  # as ViT-B
    decoder_embed_dim: int = 32  # MAE's decoder is narrower than its encoder (512 vs 768 for ViT-B)
    decoder_depth: int = 2  # 0 builds an encoder-only MAE (official `mae_pretrain_vit_*.pth` files)
    decoder_num_heads: int = 4
    norm_pix_loss: bool = False  # official `_full` checkpoints were trained with True
    num_classes: int = 10  # supervised ViT only
    layer_norm_eps: float = 1e-6  # as timm and the official MAE; Hugging Face configs say 1e-12

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["layer_norm_eps"] == DEFAULT_LAYER_NORM_EPS:
            # Left out at its default, so that keys made of configs written before the field existed do not change.
            del d["layer_norm_eps"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ViTConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


PRESETS: dict[str, ViTConfig] = {
    "tiny": ViTConfig(),
    # A smaller one for fast tests.
    "micro": ViTConfig(embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2),
    # The official MAE shapes (decoder 512-d, 8 blocks, 16 heads).
    "vit_base_patch16": ViTConfig(224, 16, 3, 768, 12, 12, 4.0, 512, 8, 16, True, 1000),
    "vit_large_patch16": ViTConfig(224, 16, 3, 1024, 24, 16, 4.0, 512, 8, 16, True, 1000),
    "vit_huge_patch14": ViTConfig(224, 14, 3, 1280, 32, 16, 4.0, 512, 8, 16, True, 1000),
}


def preset(name: str, **overrides) -> ViTConfig:
    """A named architecture, optionally with some fields changed (e.g. `in_chans`, `num_classes`)."""
    if name not in PRESETS:
        raise LandscapeError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


# --------------------------------------------------------------------------------------------------------------------
# Position tables and masking


def sincos_pos_embed(embed_dim: int, grid_size: int, cls_token: bool = True) -> np.ndarray:
    """The fixed 2-D sin-cos position table of MAE: (grid_size**2 [+1], embed_dim), a zero row for the cls token."""
    grid_h, grid_w = np.meshgrid(np.arange(grid_size, dtype=np.float64), np.arange(grid_size, dtype=np.float64))
    # As the official code: the first half of the channels encodes one axis, the second half the other.
    emb = np.concatenate([_sincos_1d(embed_dim // 2, grid_h), _sincos_1d(embed_dim // 2, grid_w)], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)
    return emb


def _sincos_1d(embed_dim: int, pos: np.ndarray) -> np.ndarray:
    omega = 1.0 / 10000 ** (np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2.0))
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def random_masking(
    x: torch.Tensor, mask_ratio: float, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image random masking by argsort of noise, exactly as the official `random_masking`.

    Args:
        x: patch tokens (N, L, D).
        mask_ratio: fraction of patches removed.
        noise: (N, L) in [0, 1); the patches with the smallest noise are kept.

    Returns:
        x_kept (N, L_keep, D), mask (N, L) with 0 kept / 1 removed in the original order, ids_restore (N, L),
        ids_shuffle (N, L).
    """
    n, length, d = x.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small is keep
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_kept = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).expand(-1, -1, d))
    mask = torch.ones(n, length, device=x.device, dtype=x.dtype)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return x_kept, mask, ids_restore, ids_shuffle


# --------------------------------------------------------------------------------------------------------------------
# MAE


class MAE(nn.Module):
    """Masked autoencoder with a ViT encoder over the visible patches and a light decoder (official names)."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        norm_layer = partial(nn.LayerNorm, eps=cfg.layer_norm_eps)
        self.patch_embed = PatchEmbed(cfg.img_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        # Fixed sin-cos table, stored as a parameter (as the official code) but never trained nor perturbed.
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, cfg.embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList(
            [
                Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, qkv_bias=True, norm_layer=norm_layer)
                for _ in range(cfg.depth)
            ]
        )
        self.norm = norm_layer(cfg.embed_dim)
        self.has_decoder = cfg.decoder_depth > 0
        if self.has_decoder:
            self.decoder_embed = nn.Linear(cfg.embed_dim, cfg.decoder_embed_dim, bias=True)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_embed_dim))
            self.decoder_pos_embed = nn.Parameter(
                torch.zeros(1, num_patches + 1, cfg.decoder_embed_dim), requires_grad=False
            )
            self.decoder_blocks = nn.ModuleList(
                [
                    Block(
                        cfg.decoder_embed_dim,
                        cfg.decoder_num_heads,
                        cfg.mlp_ratio,
                        qkv_bias=True,
                        norm_layer=norm_layer,
                    )
                    for _ in range(cfg.decoder_depth)
                ]
            )
            self.decoder_norm = norm_layer(cfg.decoder_embed_dim)
            self.decoder_pred = nn.Linear(cfg.decoder_embed_dim, cfg.patch_size**2 * cfg.in_chans, bias=True)
        self.norm_pix_loss = cfg.norm_pix_loss
        self.initialize_weights()

    def initialize_weights(self) -> None:
        grid = int(self.patch_embed.num_patches**0.5)
        self.pos_embed.data.copy_(torch.from_numpy(sincos_pos_embed(self.cfg.embed_dim, grid)).float().unsqueeze(0))
        if self.has_decoder:
            table = sincos_pos_embed(self.cfg.decoder_embed_dim, grid)
            self.decoder_pos_embed.data.copy_(torch.from_numpy(table).float().unsqueeze(0))
            torch.nn.init.normal_(self.mask_token, std=0.02)
        w = self.patch_embed.proj.weight.data
        torch.nn.init.xavier_uniform_(w.view([w.shape[0], -1]))  # as a Linear, not a conv
        torch.nn.init.normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    # imgs: (N, C, H, W) -> (N, L, p*p*C), channel last within a patch (official layout)
    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        p, c = self.cfg.patch_size, self.cfg.in_chans
        if imgs.ndim != 4 or imgs.shape[1] != c or imgs.shape[2] != self.cfg.img_size or imgs.shape[3] != imgs.shape[2]:
            raise LandscapeError(
                f"images of shape {tuple(imgs.shape)} do not fit this model "
                f"(expects (N, {c}, {self.cfg.img_size}, {self.cfg.img_size}))"
            )
        h = w = imgs.shape[2] // p
        x = imgs.reshape(imgs.shape[0], c, h, p, w, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(imgs.shape[0], h * w, p * p * c)

    # x: (N, L, p*p*C) -> imgs: (N, C, H, W)
    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        p, c = self.cfg.patch_size, self.cfg.in_chans
        h = w = int(x.shape[1] ** 0.5)
        x = x.reshape(x.shape[0], h, w, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], c, h * p, h * p)

    def draw_noise(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Masking noise (N, L) in [0, 1); fix it to fix the mask."""
        noise = torch.rand(n, self.patch_embed.num_patches, generator=generator)
        return noise.to(device) if device is not None else noise

    def forward_encoder(
        self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode the visible patches.

        Returns:
            latent (N, 1 + L_keep, D) after the final norm, mask (N, L), ids_restore (N, L).
        """
        x = self.patch_embed(imgs)  # (N, L, D)
        x = x + self.pos_embed[:, 1:, :]
        if noise is None:
            noise = torch.rand(x.shape[0], x.shape[1], device=x.device)
        x, mask, ids_restore, _ = random_masking(x, mask_ratio, noise)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Reconstruct every patch from the latent of the visible ones: (N, L, p*p*C)."""
        if not self.has_decoder:
            raise LandscapeError("this MAE is encoder-only (no decoder weights): it has no pre-training loss")
        x = self.decoder_embed(latent)
        n, length = ids_restore.shape
        mask_tokens = self.mask_token.expand(n, length + 1 - x.shape[1], -1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # no cls token
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))  # unshuffle
        x = torch.cat([x[:, :1, :], x_], dim=1)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        return self.decoder_pred(x)[:, 1:, :]

    def target(self, imgs: torch.Tensor) -> torch.Tensor:
        """The reconstruction target (N, L, p*p*C): pixels, normalized per patch with norm_pix_loss."""
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error per patch, averaged over the removed patches only."""
        return masked_patch_mse(pred, self.target(imgs), mask)

    def forward(
        self, imgs: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask

    def forward_features(self, imgs: torch.Tensor, pool: str = "cls") -> torch.Tensor:
        """Encoder features of whole images (no masking): (N, D), the cls token or the mean of the patch tokens."""
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=1)

    @property
    def feature_dim(self) -> int:
        return self.cfg.embed_dim


def masked_patch_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-patch MSE (N, L) averaged over the patches where mask == 1."""
    loss = ((pred - target) ** 2).mean(dim=-1)
    return (loss * mask).sum() / mask.sum()


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        torch.nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0)
        nn.init.constant_(m.weight, 1.0)


# --------------------------------------------------------------------------------------------------------------------
# RC-MAE's EMA teacher: its momentum

EMA_REFERENCE_MOMENTUM = 0.996  # RC-MAE's (and BYOL's) teacher momentum in the paper's recipe
EMA_REFERENCE_STEPS = 312  # the paper's steps per epoch: ImageNet-1k (1.28M images) at batch 4096
EMA_SCHEDULES = ("constant", "cosine")
EMA_RULE = (
    f"auto: m = {EMA_REFERENCE_MOMENTUM} ** ({EMA_REFERENCE_STEPS} / S), S = optimizer steps per epoch of this run "
    f"({EMA_REFERENCE_STEPS} = ImageNet-1k at batch 4096): the paper's teacher horizon in epochs, by the EMA scaling "
    "rule of Busbridge et al. 2023 (How to Scale Your EMA)"
)


def resolve_ema_momentum(value: float | str, steps_per_epoch: int) -> float:
    """The teacher momentum a run uses: a float as it is; "auto" keeps the paper's horizon in epochs.

    The EMA scaling rule (Busbridge et al. 2023): a run with k times fewer optimizer steps per epoch uses m ** k, so
    the teacher averages over the same share of an epoch. With the paper's m = 0.996 at 312 steps per epoch, auto
    gives m = 0.996 ** (312 / S); S = 11 (the default digits run) gives ~0.8925, a horizon 1 / (1 - m) of ~9 steps
    or ~0.85 epochs, as the paper's 250 steps are 0.8 epochs (0.996 here would be ~250 steps: most of a 330-step run).
    """
    if value == "auto":
        if steps_per_epoch < 1:
            raise LandscapeError(f"steps per epoch must be at least 1, got {steps_per_epoch}")
        return EMA_REFERENCE_MOMENTUM ** (EMA_REFERENCE_STEPS / steps_per_epoch)
    return float(value)


def ema_momentum_at(base: float, step: int, total: int, schedule: str = "constant") -> float:
    """The momentum of the EMA update after optimizer step `step` (0-based) of `total`.

    "constant": `base` at every step. "cosine": 1 - (1 - base) * (1 + cos(pi * step / total)) / 2, from `base` at
    the first step towards 1 at the last, over the whole run (DINO's / RC-MAE's cosine_scheduler indexed by the
    global step). RC-MAE's official code indexes that schedule by the step within the epoch instead, so there the
    momentum never leaves ~`base`; this is the schedule its paper describes, not what its code does.
    """
    if schedule == "constant":
        return base
    if schedule == "cosine":
        return 1.0 - (1.0 - base) * 0.5 * (1.0 + math.cos(math.pi * step / max(1, total)))
    raise LandscapeError(f"unknown EMA schedule {schedule!r}; choose one of {', '.join(EMA_SCHEDULES)}")


def ema_description(train: dict) -> str:
    """How a checkpoint's recorded train config set the teacher momentum, for labels and captions.

    E.g. "auto = 0.8925 (11 steps/epoch), constant" or "0.996, cosine to 1"; "" for a record without one.
    """
    value = train.get("ema_momentum")
    if value is None:
        return ""
    resolved = train.get("ema_momentum_resolved")
    if value == "auto":
        text = "auto"
        if resolved is not None:
            text += f" = {float(resolved):.4g}"
            if train.get("steps_per_epoch"):
                text += f" ({train['steps_per_epoch']} steps/epoch)"
    else:
        text = f"{float(value):g}"
    schedule = train.get("ema_schedule", "constant")
    return text + (", cosine to 1" if schedule == "cosine" else ", constant")


# --------------------------------------------------------------------------------------------------------------------
# RC-MAE


class RCMAE(nn.Module):
    """RC-MAE: a student MAE and an EMA teacher MAE that sees the same mask (Lee et al., ICLR 2023).

    loss = MAE loss of the student + gamma * consistency, where consistency is the per-patch MSE between the
    student's and the (detached) teacher's reconstructions on the removed patches. The teacher is never trained by
    gradients: `ema_update()` after each optimizer step moves it towards the student.
    """

    def __init__(self, cfg: ViTConfig, momentum: float = 0.996, gamma: float = 1.0):
        super().__init__()
        self.cfg = cfg
        self.momentum = momentum
        self.gamma = gamma
        self.student = MAE(cfg)
        self.teacher = copy.deepcopy(self.student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def ema_update(self, momentum: float | None = None) -> None:
        """t = m * t + (1 - m) * s over every parameter the student trains."""
        m = self.momentum if momentum is None else momentum
        t = [
            pt for pt, ps in zip(self.teacher.parameters(), self.student.parameters(), strict=True) if ps.requires_grad
        ]
        s = [ps for ps in self.student.parameters() if ps.requires_grad]
        torch._foreach_mul_(t, m)
        torch._foreach_add_(t, s, alpha=1 - m)

    def forward(
        self, imgs: torch.Tensor, mask_ratio: float = 0.75, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if noise is None:
            noise = self.student.draw_noise(imgs.shape[0], device=imgs.device)
        mae_loss, pred, mask = self.student(imgs, mask_ratio, noise)
        with torch.no_grad():
            t_latent, _, t_restore = self.teacher.forward_encoder(imgs, mask_ratio, noise)  # same mask
            t_pred = self.teacher.forward_decoder(t_latent, t_restore)
        return mae_loss + self.gamma * masked_patch_mse(pred, t_pred, mask), pred, mask

    def forward_parts(
        self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two loss terms separately: (MAE loss, consistency)."""
        mae_loss, pred, mask = self.student(imgs, mask_ratio, noise)
        with torch.no_grad():
            t_latent, _, t_restore = self.teacher.forward_encoder(imgs, mask_ratio, noise)
            t_pred = self.teacher.forward_decoder(t_latent, t_restore)
        return mae_loss, masked_patch_mse(pred, t_pred, mask)


# --------------------------------------------------------------------------------------------------------------------
# Supervised ViT and linear probe


def build_supervised(cfg: ViTConfig, global_pool: str = "token") -> VisionTransformer:
    """timm's VisionTransformer with the given shape (LayerNorm eps from the config), so timm files load as they are.

    `global_pool="avg"` matches MAE's fine-tuned files (mean-pooled tokens through `fc_norm`).
    """
    return VisionTransformer(
        img_size=cfg.img_size,
        patch_size=cfg.patch_size,
        in_chans=cfg.in_chans,
        num_classes=cfg.num_classes,
        embed_dim=cfg.embed_dim,
        depth=cfg.depth,
        num_heads=cfg.num_heads,
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=True,
        global_pool=global_pool,
        norm_layer=partial(nn.LayerNorm, eps=cfg.layer_norm_eps),
    )


def build_model(kind: str, cfg: ViTConfig, *, momentum: float = 0.996, gamma: float = 1.0) -> nn.Module:
    """A freshly initialized model of a kind ('mae', 'rcmae' or 'sup')."""
    if kind == "mae":
        return MAE(cfg)
    if kind == "rcmae":
        return RCMAE(cfg, momentum=momentum, gamma=gamma)
    if kind == "sup":
        return build_supervised(cfg)
    raise LandscapeError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def encoder_of(model: nn.Module) -> nn.Module:
    """The module whose features a probe reads and that is deployed: the MAE, RC-MAE's teacher, or the ViT."""
    if isinstance(model, RCMAE):
        return model.teacher  # RC-MAE deploys the teacher (official downstream use)
    if isinstance(model, LinearProbe):
        return model.encoder
    return model


def encode(encoder: nn.Module, imgs: torch.Tensor, pool: str = "cls") -> torch.Tensor:
    """Features (N, D) of whole images from an MAE or a timm ViT encoder."""
    if isinstance(encoder, MAE):
        return encoder.forward_features(imgs, pool)
    if isinstance(encoder, VisionTransformer):
        x = encoder.forward_features(imgs)  # (N, 1 + L, D), normed
        return x[:, 0] if pool == "cls" else x[:, encoder.num_prefix_tokens :].mean(dim=1)
    raise LandscapeError(f"cannot read features from a {type(encoder).__name__}")


def feature_dim(encoder: nn.Module) -> int:
    return encoder.feature_dim if isinstance(encoder, MAE) else encoder.embed_dim


class LinearProbe(nn.Module):
    """Frozen encoder feature -> BatchNorm1d(affine=False) -> Linear, as MAE's linear probing.

    The encoder keeps its own requires_grad flags (so landscapes may perturb it); training optimizes only `head`
    and reads the features under no_grad.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, pool: str = "cls"):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise LandscapeError(f"unknown pooling {pool!r}; choose cls or mean")
        self.encoder = encoder
        # The encoder's weights are landscape / Hessian parameters of the probe (never trained by it): mark them
        # trainable, also for RC-MAE's EMA teacher (frozen for gradients during pre-training), except MAE's fixed
        # sin-cos tables and the decoder, which the probe does not use.
        for name, p in encoder.named_parameters():
            fixed = isinstance(encoder, MAE) and name in ("pos_embed", "decoder_pos_embed")
            unused = name.startswith("decoder") or name == "mask_token"
            p.requires_grad_(not (fixed or unused))
        self.pool = pool
        dim = feature_dim(encoder)
        self.bn = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.01)  # as MAE's linear probing
        nn.init.zeros_(self.head.bias)

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        return encode(self.encoder, imgs, self.pool)

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn(feats))

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.features(imgs))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def encoder_flops_per_image(cfg: ViTConfig) -> int:
    """Multiply-accumulates x2 of a full-image encoder pass (patch embedding, attention, MLP), the deployed cost."""
    n = cfg.num_patches + 1
    d = cfg.embed_dim
    embed = 2 * cfg.num_patches * (cfg.patch_size**2 * cfg.in_chans) * d
    per_block = 2 * n * d * 3 * d + 2 * 2 * n * n * d + 2 * n * d * d + 2 * 2 * n * d * int(d * cfg.mlp_ratio)
    return int(embed + cfg.depth * per_block)
