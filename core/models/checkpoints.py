"""Saving and loading checkpoints: our own self-describing files, official MAE / RC-MAE files and timm ViTs.

Nothing is ever unpickled with code execution: `.pt/.pth` files go through `torch.load(weights_only=True)` (with
`argparse.Namespace`, which official MAE files contain, allowed explicitly), `.safetensors` through safetensors.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

import core
from core.errors import LandscapeError
from core.models.vit import (
    MAE,
    PRESETS,
    RCMAE,
    LinearProbe,
    ViTConfig,
    build_model,
    build_supervised,
    ema_description,
    encoder_of,
)
from core.store import atomic_write_bytes, ensure_folder, file_hash

FORMAT = "vit-landscape/1"


@dataclass
class LoadedCheckpoint:
    """A ready model plus what its file says about it.

    Attributes:
        kind: 'mae', 'rcmae', 'sup' or 'probe'.
        model: the model in eval mode on the CPU (an MAE, RCMAE, timm VisionTransformer or LinearProbe).
        config: the architecture (of the encoder, for a probe).
        meta: everything else the file describes: train config, data, history, seed, code version (ours); source
            layout (official files).
        path: the file.
        sha256: content hash of the file (cache keys use it).
        source: 'ours', 'official-mae', 'official-rcmae' or 'timm'.
        snapshots: weight snapshots along training (ours only), oldest first: list of (epoch, state_dict).
    """

    kind: str
    model: nn.Module
    config: ViTConfig
    meta: dict[str, Any]
    path: Path
    sha256: str
    source: str = "ours"
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)

    @property
    def landscape_module(self) -> nn.Module:
        """The module whose weights a landscape or Hessian moves: the MAE, RC-MAE's student, the ViT, the probe."""
        return self.model.student if isinstance(self.model, RCMAE) else self.model

    def describe(self) -> str:
        lines = [f"{self.path.name}: {self.kind} ({self.source})", f"  sha256 {self.sha256[:16]}"]
        c = self.config
        lines.append(
            f"  architecture: {c.img_size}px, patch {c.patch_size}, {c.in_chans} ch, dim {c.embed_dim}, depth "
            f"{c.depth}, heads {c.num_heads}"
            + (f"; decoder dim {c.decoder_embed_dim}, depth {c.decoder_depth}" if self.kind in ("mae", "rcmae") else "")
        )
        n_params = sum(p.numel() for p in self.model.parameters())
        lines.append(f"  parameters: {n_params:,}")
        for key in ("data", "train", "probe"):
            if key in self.meta and isinstance(self.meta[key], dict):
                items = ", ".join(f"{k}={v}" for k, v in self.meta[key].items() if k not in ("classes", "ema_rule"))
                lines.append(f"  {key}: {items}")
        if self.kind == "rcmae" and isinstance(self.meta.get("train"), dict):
            rule = self.meta["train"].get("ema_rule")
            ema = ema_description(self.meta["train"])
            lines.append(f"  EMA teacher momentum: {ema}" + (f"; {rule}" if rule else ""))
        if self.meta.get("recipe"):
            lines.append(f"  recipe: {self.meta['recipe']}")
        ft = self.meta.get("finetune")
        if isinstance(ft, dict):  # core.models.finetune
            b, s = ft.get("base") or {}, ft.get("subset") or {}
            start = (
                f"trained from scratch ({ft.get('family')} architecture)"
                if ft.get("from_scratch")
                else f"fine-tuned from {b.get('kind')} {str(b.get('sha256'))[:12]}"
                + (f" ({b['use']})" if b.get("use") else "")
            )
            lines.append(
                f"  {start}; {s.get('n_labels')} labeled images ({s.get('labels_per_class') or 'all'} per class, "
                f"seed {s.get('seed')}), {ft.get('steps')} steps"
            )
        hist = self.meta.get("history") or []
        if hist:
            last = hist[-1]
            total = sum(h.get("time_s", 0.0) for h in hist)
            vals = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float) and k != "time_s")
            lines.append(f"  history: {len(hist)} epochs, {total:.1f} s; last: {vals}")
        if self.snapshots:
            lines.append(f"  snapshots at epochs {[e for e, _ in self.snapshots]}")
        return "\n".join(lines)


def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    return f"{core.__version__}+{rev}" if rev else core.__version__


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a checkpoint file (memoized per path, size and mtime by the store)."""
    return file_hash(path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save to memory, then an atomic write: readers never see a half-written file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    ensure_folder(path.parent)
    atomic_write_bytes(path, buf.getvalue())


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the module's state dict (parameters and buffers)."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    kind: str,
    config: ViTConfig,
    *,
    train: dict | None = None,
    data: dict | None = None,
    history: list[dict] | None = None,
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write one of our self-describing checkpoints atomically and return its path.

    For 'rcmae' the file holds 'student' and 'teacher' (as the official RC-MAE files) plus our description.
    """
    path = Path(path)
    obj: dict[str, Any] = {
        "format": FORMAT,
        "kind": kind,
        "config": config.to_dict(),
        "train": dict(train or {}),
        "data": dict(data or {}),
        "history": list(history or []),
        "seed": (train or {}).get("seed"),
        "code_version": code_version(),
        "snapshots": [{"epoch": int(e), "state_dict": sd} for e, sd in (snapshots or [])],
    }
    if isinstance(model, RCMAE):
        obj["student"] = cpu_state(model.student)
        obj["teacher"] = cpu_state(model.teacher)
        obj["train"].setdefault("ema_momentum", model.momentum)
        obj["train"].setdefault("gamma", model.gamma)
    else:
        obj["model"] = cpu_state(model)
    obj.update(extra or {})
    atomic_torch_save(obj, path)
    return path


# --------------------------------------------------------------------------------------------------------------------
# Reading files safely


def read_state_file(path: str | os.PathLike) -> dict[str, Any]:
    """The raw contents of a checkpoint file as plain containers and tensors, without running any code.

    Raises:
        LandscapeError: missing file, a pickle that would run code, garbage or truncated bytes.
    """
    path = Path(path)
    if not path.exists():
        raise LandscapeError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise LandscapeError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise LandscapeError(f"checkpoint is empty: {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise LandscapeError(f"not a readable safetensors file: {path} ({_first_line(e)})") from None
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch wraps every weights-only failure in the same long text: only a GLOBAL means "would import code";
        # anything else (e.g. "Unsupported operand 231") is just bytes that are not a checkpoint.
        if "GLOBAL " in str(e):
            raise LandscapeError(
                f"refusing to load {path.name}: it would import or run code ({_unsafe_name(str(e))})"
            ) from None
        raise LandscapeError(
            f"not a readable checkpoint (corrupt, or not a PyTorch file): {path.name} ({_unpickler_reason(e)})"
        ) from None
    except Exception as e:  # corrupt bytes reach the deserializer's internals: KeyError, IndexError, struct.error ...
        raise LandscapeError(
            f"not a readable checkpoint (truncated, corrupt or not a PyTorch file): {path.name} ({_first_line(e)})"
        ) from None
    if not isinstance(obj, dict):
        raise LandscapeError(f"unknown checkpoint layout in {path.name}: a {type(obj).__name__}, not a dict")
    return obj


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def _unsafe_name(msg: str) -> str:
    m = re.search(r"GLOBAL ([\w.]+)", msg)
    return f"global {m.group(1)}" if m else "a disallowed pickle instruction"


def _unpickler_reason(e: BaseException) -> str:
    """The weights-only unpickler's own reason, without torch's advice paragraphs around it."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    reasons = [ln for ln in lines if not ln.startswith(("Weights only load failed", "Please file", "Check the doc"))]
    return (reasons[0] if reasons else type(e).__name__)[:200]


# --------------------------------------------------------------------------------------------------------------------
# Loading


def load_checkpoint(
    path: str | os.PathLike,
    *,
    num_heads: int | None = None,
    decoder_num_heads: int | None = None,
    norm_pix_loss: bool | None = None,
) -> LoadedCheckpoint:
    """A ready model (eval mode, CPU) from any supported file.

    Supported: our own checkpoints (any kind, probes included); official MAE files `{'model': ...}`, encoder-only
    and `_full`; RC-MAE files with 'student' / 'teacher'; timm ViT state dicts (.pth or .safetensors).
    For files without a description the architecture is inferred from tensor shapes; head counts come from the
    official presets and can be overridden.

    Raises:
        LandscapeError: with a one-line reason for anything that is not a loadable checkpoint.
    """
    path = Path(path)
    raw = read_state_file(path)
    sha = file_sha256(path)
    if raw.get("format") == FORMAT:
        return _load_ours(path, raw, sha)
    overrides = {"num_heads": num_heads, "decoder_num_heads": decoder_num_heads, "norm_pix_loss": norm_pix_loss}
    if isinstance(raw.get("student"), dict) and isinstance(raw.get("teacher"), dict):
        return _load_official_rcmae(path, raw, sha, overrides)
    sd = raw
    for key in ("model", "state_dict", "model_ema"):
        if isinstance(raw.get(key), dict):
            sd = raw[key]
            break
    if not sd or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise LandscapeError(
            f"unknown checkpoint layout in {path.name}: expected a state dict, {{'model': ...}}, or 'student'/'teacher'"
        )
    sd = _strip_prefix(sd)
    if "patch_embed.proj.weight" not in sd:
        raise LandscapeError(f"{path.name} is not a ViT checkpoint (no patch_embed.proj.weight)")
    if "decoder_embed.weight" in sd:
        return _load_official_mae(path, sd, sha, overrides, full=True, args=raw.get("args"))
    if "head.weight" in sd:
        return _load_timm(path, sd, sha, overrides)
    return _load_official_mae(path, sd, sha, overrides, full=False, args=raw.get("args"))


def _strip_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def load_weights(module: nn.Module, sd: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict with a one-line error naming the offending keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in sd and sd[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch {_few(shapes)}")
    if problems:
        raise LandscapeError(f"{what} does not match the architecture: " + "; ".join(problems))
    module.load_state_dict(sd, strict=True)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _config_from_state(mode: str, sd: dict[str, torch.Tensor], overrides: dict, args: Any = None) -> ViTConfig:
    """Architecture of a ViT / MAE from tensor shapes (head counts from the official presets unless overridden)."""
    try:
        w = sd["patch_embed.proj.weight"]  # (D, C, p, p)
        dim, in_chans, patch = w.shape[0], w.shape[1], w.shape[2]
        n_tokens = sd["pos_embed"].shape[1]
        depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
        mlp_ratio = sd["blocks.0.mlp.fc1.weight"].shape[0] / dim
    except (KeyError, ValueError, IndexError, AttributeError) as e:
        raise LandscapeError(f"cannot infer the ViT architecture from the tensors ({_first_line(e)})") from None
    grid = int(round((n_tokens - 1) ** 0.5))
    if grid * grid != n_tokens - 1:
        raise LandscapeError(f"pos_embed has {n_tokens} tokens: not a square grid plus a cls token")
    official = {p.embed_dim: p.num_heads for p in PRESETS.values() if p.img_size == 224}
    heads = overrides.get("num_heads") or official.get(dim) or max(1, dim // 64)
    dec_dim = sd["decoder_embed.weight"].shape[0] if "decoder_embed.weight" in sd else 0
    dec_depth = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r"decoder_blocks\.(\d+)\.", k))), default=-1)
    dec_heads = overrides.get("decoder_num_heads") or (16 if dec_dim == 512 else max(1, dec_dim // 32))
    npl = overrides.get("norm_pix_loss")
    if npl is None:
        # Official `_full` files reconstruct normalized pixels; their args say so when present.
        found = _official_arg(args, "norm_pix_loss")
        npl = bool(found if found is not None else True) if mode == "mae" else False
    for name, d, h in (("num_heads", dim, heads), ("decoder_num_heads", dec_dim, dec_heads)):
        if d and d % h:
            raise LandscapeError(f"{name}={h} does not divide the width {d}; pass the right head count")
    return ViTConfig(
        img_size=grid * patch,
        patch_size=patch,
        in_chans=in_chans,
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=mlp_ratio,
        decoder_embed_dim=dec_dim or 1,
        decoder_depth=dec_depth,
        decoder_num_heads=dec_heads if dec_dim else 1,
        norm_pix_loss=npl,
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
    )


def _load_official_mae(path: Path, sd, sha: str, overrides: dict, full: bool, args) -> LoadedCheckpoint:
    cfg = _config_from_state("mae", sd, overrides, args)
    model = MAE(cfg)
    load_weights(model, sd, f"MAE checkpoint {path.name}")
    meta = {"layout": "official MAE " + ("(encoder + decoder)" if full else "(encoder only)")}
    return LoadedCheckpoint("mae", model.eval(), cfg, meta, path, sha, source="official-mae")


def _official_arg(args: Any, name: str) -> Any:
    """One training argument of an official file's `args` (an argparse.Namespace or a dict), or None."""
    if isinstance(args, argparse.Namespace):
        return getattr(args, name, None)
    if isinstance(args, dict):
        return args.get(name)
    return None


# RC-MAE's training arguments that change its objective, with run_pretrain.py's defaults (assumed when absent).
OFFICIAL_RCMAE_ARGS = {"mask_ratio": 0.75, "gamma": 1.0, "momentum_teacher": 0.996}


def _official_recipe(args: Any, cfg: ViTConfig) -> tuple[dict, list[str]]:
    """An official RC-MAE file's recipe as our train-config names, and the names that were read from its args.

    `mask_ratio` and `gamma` set the objective a landscape measures; `momentum_teacher` (RC-MAE's base momentum,
    cosine-scheduled to 1 in its paper) is recorded as `ema_momentum`; `norm_pix_loss` is in `cfg` already.
    """
    recipe, read = {}, []
    for name, default in OFFICIAL_RCMAE_ARGS.items():
        found = _official_arg(args, name)
        try:
            value = float(found) if found is not None and not isinstance(found, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is not None:
            read.append(name)
        recipe["ema_momentum" if name == "momentum_teacher" else name] = default if value is None else value
    if _official_arg(args, "norm_pix_loss") is not None:
        read.append("norm_pix_loss")
    recipe["norm_pix_loss"] = cfg.norm_pix_loss
    if not 0.0 < recipe["mask_ratio"] < 1.0 or not 0.0 <= recipe["ema_momentum"] <= 1.0:
        raise LandscapeError(
            f"the file's args are out of range: mask_ratio {recipe['mask_ratio']}, momentum_teacher "
            f"{recipe['ema_momentum']}"
        )
    return recipe, read


def _load_official_rcmae(path: Path, raw: dict, sha: str, overrides: dict) -> LoadedCheckpoint:
    student, teacher = _strip_prefix(raw["student"]), _strip_prefix(raw["teacher"])
    args = raw.get("args")
    cfg = _config_from_state("mae", teacher, overrides, args)
    recipe, read = _official_recipe(args, cfg)
    model = RCMAE(cfg, momentum=recipe["ema_momentum"], gamma=recipe["gamma"])
    load_weights(model.student, student, f"RC-MAE student in {path.name}")
    load_weights(model.teacher, teacher, f"RC-MAE teacher in {path.name}")
    from_args = f"{', '.join(read)} read from the file's args" if read else "no args in the file"
    meta = {
        "layout": "official RC-MAE (student + teacher)",
        "train": recipe,
        "recipe": f"{from_args}; RC-MAE's defaults for the rest",
    }
    return LoadedCheckpoint("rcmae", model.eval(), cfg, meta, path, sha, source="official-rcmae")


def _load_timm(path: Path, sd, sha: str, overrides: dict) -> LoadedCheckpoint:
    cfg = _config_from_state("sup", sd, overrides)
    model = build_supervised(cfg, global_pool="avg" if "fc_norm.weight" in sd else "token")
    load_weights(model, sd, f"timm ViT checkpoint {path.name}")
    return LoadedCheckpoint("sup", model.eval(), cfg, {"layout": "timm VisionTransformer"}, path, sha, source="timm")


def _load_ours(path: Path, raw: dict, sha: str) -> LoadedCheckpoint:
    kind = raw.get("kind")
    try:
        cfg = ViTConfig.from_dict(raw["config"])
    except (KeyError, TypeError) as e:
        raise LandscapeError(f"{path.name}: broken description ({_first_line(e)})") from None
    meta = {k: raw.get(k) for k in ("train", "data", "history", "seed", "code_version", "probe", "encoder", "finetune")}
    meta = {k: v for k, v in meta.items() if v is not None}
    if kind == "probe":
        return _load_probe(path, raw, sha, cfg, meta)
    if kind not in ("mae", "rcmae", "sup"):
        raise LandscapeError(f"{path.name}: unknown model kind {kind!r}")
    train = raw.get("train") or {}
    model = build_model(kind, cfg, momentum=_recorded_momentum(train), gamma=train.get("gamma", 1.0))
    if kind == "rcmae":
        load_weights(model.student, raw.get("student") or {}, f"RC-MAE student in {path.name}")
        load_weights(model.teacher, raw.get("teacher") or {}, f"RC-MAE teacher in {path.name}")
    else:
        finetuned = raw.get("finetune") if kind == "sup" and isinstance(raw.get("finetune"), dict) else {}
        if (
            finetuned
        ):  # a fine-tuned ViT (core.models.finetune): its pooling, and whether its sin-cos table stayed fixed
            model = build_supervised(cfg, global_pool=finetuned.get("global_pool", "token"))
        load_weights(model, raw.get("model") or {}, f"{kind} checkpoint {path.name}")
        if finetuned.get("fixed_pos_embed"):
            model.pos_embed.requires_grad_(False)
    snaps = [(int(s["epoch"]), s["state_dict"]) for s in raw.get("snapshots") or []]
    return LoadedCheckpoint(kind, model.eval(), cfg, meta, path, sha, "ours", snaps)


def _recorded_momentum(train: dict) -> float:
    """The teacher momentum a run of ours used: the resolved value its file records ("auto" resolves per run), the
    explicit value of older files, or RC-MAE's 0.996 when neither is there."""
    resolved = train.get("ema_momentum_resolved")
    if isinstance(resolved, (int, float)) and not isinstance(resolved, bool):
        return float(resolved)
    value = train.get("ema_momentum", 0.996)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.996


def _load_probe(path: Path, raw: dict, sha: str, cfg: ViTConfig, meta: dict) -> LoadedCheckpoint:
    enc = raw.get("encoder") or {}
    enc_path = Path(enc.get("path", ""))
    if not enc_path.is_absolute():
        enc_path = path.parent / enc_path
    if not enc.get("path") or not enc_path.is_file():
        raise LandscapeError(f"probe {path.name}: its encoder checkpoint {enc_path} is missing")
    if enc.get("sha256") and file_sha256(enc_path) != enc["sha256"]:
        raise LandscapeError(f"probe {path.name}: encoder {enc_path.name} changed since the probe was trained")
    base = load_checkpoint(enc_path)
    probe_cfg = raw.get("probe") or {}
    encoder = base.model.student if (base.kind == "rcmae" and probe_cfg.get("use") == "student") else None
    encoder = encoder if encoder is not None else encoder_of(base.model)
    state = raw.get("head") or {}
    try:
        num_classes = state["head.weight"].shape[0]
    except (KeyError, AttributeError):
        raise LandscapeError(f"probe {path.name}: no head weights") from None
    probe = LinearProbe(encoder, num_classes, pool=probe_cfg.get("pool", "cls"))
    load_weights(_HeadView(probe), state, f"probe head in {path.name}")
    meta["encoder_kind"] = base.kind
    meta["encoder_meta"] = base.meta
    return LoadedCheckpoint("probe", probe.eval(), base.config, meta, path, sha, "ours")


class _HeadView(nn.Module):
    """The probe's own parameters and buffers (BatchNorm statistics, head) without the encoder's."""

    def __init__(self, probe: LinearProbe):
        super().__init__()
        self.bn = probe.bn
        self.head = probe.head


def probe_state(probe: LinearProbe) -> dict[str, torch.Tensor]:
    return cpu_state(_HeadView(probe))
