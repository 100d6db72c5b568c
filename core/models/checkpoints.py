"""Saving and loading checkpoints: our own self-describing files, official MAE / RC-MAE files, timm ViTs, and (through
`core.models.hub`) transformers / timm model folders and `hf:` / `timm:` hub names.

Nothing is ever unpickled with code execution: `.pt/.pth` files go through `torch.load(weights_only=True)` (with
`argparse.Namespace`, which official MAE files contain, allowed explicitly), `.safetensors` through safetensors.

Nothing is guessed silently: every architecture value of a file without our description records where it came from
(`LoadedCheckpoint.sources`: the file's config, an official table, the command line), and so does the image
normalization the model expects (`LoadedCheckpoint.normalization`: the checkpoint's own mean / std, ImageNet's for
official MAE / RC-MAE files, or None for the dataset's own statistics, which our checkpoints record and use).
`--num-heads` / `--decoder-num-heads` / `--norm-pix-loss` reach every load of a command through `checkpoint_overrides`.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import io
import os
import pickle
import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

import core
from core.errors import LandscapeError
from core.models.hub import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FolderModel,
    check_heads,
    describe_sources,
    folder_files,
    from_timm,
    from_transformers,
    is_hub_reference,
    pick_heads,
    resolve_reference,
)
from core.models.vit import (
    MAE,
    RCMAE,
    LinearProbe,
    ViTConfig,
    build_model,
    build_supervised,
    ema_description,
    encoder_of,
)
from core.store import atomic_write_bytes, content_hash, ensure_folder, file_hash

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
        source: 'ours', 'official-mae', 'official-rcmae', 'timm', 'transformers' or 'timm-hub'.
        snapshots: weight snapshots along training (ours only), oldest first: list of (epoch, state_dict).
        sources: where each architecture value came from, by ViTConfig field (files without our description).
        normalization: the image mean / std the model was trained with and their source, or None: the dataset's own
            statistics (our checkpoints, and files that state none).
        reference: what the user gave (a path, a folder, `hf:...`, `timm:...`); `path` is the local file or folder.
    """

    kind: str
    model: nn.Module
    config: ViTConfig
    meta: dict[str, Any]
    path: Path
    sha256: str
    source: str = "ours"
    snapshots: list[tuple[int, dict[str, torch.Tensor]]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    normalization: dict[str, Any] | None = None
    reference: str = ""

    @property
    def image_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """(mean, std) per channel to standardize [0, 1] images with, or None for the dataset's own statistics."""
        n = self.normalization
        return None if n is None else (tuple(n["mean"]), tuple(n["std"]))

    @property
    def normalization_text(self) -> str:
        """How images are normalized for this model, in one phrase (info, result metadata)."""
        n = self.normalization
        if n is None:
            return "the dataset's own mean / std"
        fmt = ", ".join
        return f"mean ({fmt(f'{v:.4g}' for v in n['mean'])}), std ({fmt(f'{v:.4g}' for v in n['std'])}) ({n['source']})"

    @property
    def landscape_module(self) -> nn.Module:
        """The module whose weights a landscape or Hessian moves: the MAE, RC-MAE's student, the ViT, the probe."""
        return self.model.student if isinstance(self.model, RCMAE) else self.model

    def describe(self) -> str:
        name = self.reference if is_hub_reference(self.reference) else self.path.name
        lines = [f"{name}: {self.kind} ({self.source})", f"  sha256 {self.sha256[:16]}"]
        if is_hub_reference(self.reference):
            lines.append(f"  files: {self.path}")
        c = self.config
        if self.kind in ("mae", "rcmae") and c.decoder_depth == 0:
            decoder = "; encoder only (no decoder: no pre-training loss, probe it)"
        elif self.kind in ("mae", "rcmae"):
            decoder = f"; decoder dim {c.decoder_embed_dim}, depth {c.decoder_depth}, heads {c.decoder_num_heads}"
        else:
            decoder = ""
        lines.append(
            f"  architecture: {c.img_size}px, patch {c.patch_size}, {c.in_chans} ch, dim {c.embed_dim}, depth "
            f"{c.depth}, heads {c.num_heads}, MLP ratio {c.mlp_ratio:g}, LayerNorm eps {c.layer_norm_eps:g}{decoder}"
        )
        if self.sources:
            shown = describe_sources(c, self.sources, self.meta.get("train") if isinstance(self.meta, dict) else None)
            text = "values: " + ", ".join(f"{k} {v}" for k, v in shown.items())
            lines += textwrap.wrap(text, 116, initial_indent="  ", subsequent_indent="    ")
        lines.append(f"  images normalized with {self.normalization_text}")
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

_OVERRIDES: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("checkpoint_overrides", default=None)
_OVERRIDE_FLAGS = {
    "num_heads": "--num-heads",
    "decoder_num_heads": "--decoder-num-heads",
    "norm_pix_loss": "--norm-pix-loss",
}


@contextlib.contextmanager
def checkpoint_overrides(
    num_heads: int | None = None, decoder_num_heads: int | None = None, norm_pix_loss: bool | None = None
) -> Iterator[None]:
    """Within the block, every `load_checkpoint` (also the ones deep inside a measurement) uses these values where a
    file does not describe itself: how the CLI's `--num-heads` / `--decoder-num-heads` / `--norm-pix-loss` reach
    every checkpoint a command reads. Values given to `load_checkpoint` itself take precedence."""
    given = {"num_heads": num_heads, "decoder_num_heads": decoder_num_heads, "norm_pix_loss": norm_pix_loss}
    for k, v in given.items():
        if k != "norm_pix_loss" and v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise LandscapeError(f"{_OVERRIDE_FLAGS[k]} must be a positive whole number, got {v!r}")
    token = _OVERRIDES.set({k: v for k, v in given.items() if v is not None})
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def checkpoint_id(ref: str | os.PathLike) -> str:
    """The content hash of a checkpoint reference without loading it: a file's sha256, or for a model folder (or a hub
    id, resolved through the local cache) the hash of its config, weight and preprocessor files."""
    path = resolve_reference(ref)
    if path.is_dir():
        _, weights, _ = folder_files(path)
        return _folder_sha(path, weights)
    return file_sha256(path)


def _folder_sha(folder: Path, weights: Path) -> str:
    files = [folder / "config.json", weights, folder / "preprocessor_config.json"]
    return content_hash({f.name: file_sha256(f) for f in files if f.is_file()})


def load_checkpoint(
    path: str | os.PathLike,
    *,
    num_heads: int | None = None,
    decoder_num_heads: int | None = None,
    norm_pix_loss: bool | None = None,
) -> LoadedCheckpoint:
    """A ready model (eval mode, CPU) from any supported file, folder or hub name.

    Supported: our own checkpoints (any kind, probes included); official MAE files `{'model': ...}`, encoder-only
    and `_full`; RC-MAE files with 'student' / 'teacher'; timm ViT state dicts (.pth or .safetensors); transformers
    ViTMAE / ViT folders and timm snapshot folders; `hf:org/name[@rev]`, `hf-hub:org/name` and `timm:name` hub ids
    (`core.models.hub`). For files without a description the architecture is inferred from tensor shapes; head
    counts come from the file's config, the official table of ViT widths, or the arguments (or
    `checkpoint_overrides`), and are refused otherwise.

    Raises:
        LandscapeError: with a one-line reason for anything that is not a loadable checkpoint.
    """
    reference = str(path)
    path = resolve_reference(path)
    given = {"num_heads": num_heads, "decoder_num_heads": decoder_num_heads, "norm_pix_loss": norm_pix_loss}
    overrides = (_OVERRIDES.get() or {}) | {k: v for k, v in given.items() if v is not None}
    if path.is_dir():
        ck = _load_folder(path, overrides)
    else:
        ck = _load_file(path, overrides)
    ck.reference = reference
    used = {k: v for k, v in overrides.items() if ck.sources.get(k, "").startswith("--")}
    if used:  # the model differs from what the file alone gives: so must every key made from it
        ck.sha256 = content_hash({"file": ck.sha256, "overrides": used})
    return ck


def _load_file(path: Path, overrides: dict[str, Any]) -> LoadedCheckpoint:
    raw = read_state_file(path)
    sha = file_sha256(path)
    if raw.get("format") == FORMAT:
        return _load_ours(path, raw, sha, overrides)
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
        hint = ""
        if any(k.startswith(("vit.embeddings.", "embeddings.patch_embeddings")) for k in sd):
            hint = ": a transformers weight file; give its folder (with config.json) instead"
        raise LandscapeError(f"{path.name} is not a ViT checkpoint (no patch_embed.proj.weight){hint}")
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


def _config_from_state(
    mode: str, sd: dict[str, torch.Tensor], overrides: dict, args: Any = None
) -> tuple[ViTConfig, dict[str, str]]:
    """Architecture of a ViT / MAE from tensor shapes, and the source of each value.

    Head counts come from the overrides or the official table of widths, never from dividing an unofficial width.
    """
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
    heads, heads_src = pick_heads(dim, None, "", overrides.get("num_heads"))
    dec_dim = sd["decoder_embed.weight"].shape[0] if "decoder_embed.weight" in sd else 0
    dec_depth = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r"decoder_blocks\.(\d+)\.", k))), default=-1)
    sources = dict.fromkeys(("img_size", "patch_size", "in_chans", "embed_dim", "depth", "mlp_ratio"), "shapes")
    sources["num_heads"] = heads_src
    sources["layer_norm_eps"] = "timm / official MAE default"
    dec_heads = 1
    if dec_dim:
        dec_heads, sources["decoder_num_heads"] = pick_heads(
            dec_dim, None, "", overrides.get("decoder_num_heads"), decoder=True
        )
        sources["decoder_embed_dim"] = sources["decoder_depth"] = "shapes"
    npl = overrides.get("norm_pix_loss")
    if mode == "mae" and dec_dim:
        found = _official_arg(args, "norm_pix_loss")
        if npl is not None:
            sources["norm_pix_loss"] = "--norm-pix-loss"
        elif found is not None:
            npl, sources["norm_pix_loss"] = bool(found), "the file's args"
        else:
            # Official `_full` files reconstruct normalized pixels; an assumption, so said as one.
            npl, sources["norm_pix_loss"] = True, "assumed: MAE's recipe; say --norm-pix-loss / --no-norm-pix-loss"
    npl = bool(npl) if mode == "mae" else False
    cfg = ViTConfig(
        img_size=grid * patch,
        patch_size=patch,
        in_chans=in_chans,
        embed_dim=dim,
        depth=depth,
        num_heads=heads,
        mlp_ratio=mlp_ratio,
        decoder_embed_dim=dec_dim or 1,
        decoder_depth=dec_depth,
        decoder_num_heads=dec_heads,
        norm_pix_loss=npl,
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
    )
    check_heads(cfg)
    return cfg, sources


def _official_normalization(cfg: ViTConfig) -> dict[str, Any] | None:
    """Official MAE / RC-MAE files were trained on ImageNet with its mean / std (a 3-channel file only: any other
    channel count is not an ImageNet model, and keeps the dataset's statistics)."""
    if cfg.in_chans != 3:
        return None
    return {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "source": "ImageNet: the official MAE recipe"}


def _load_official_mae(path: Path, sd, sha: str, overrides: dict, full: bool, args) -> LoadedCheckpoint:
    cfg, sources = _config_from_state("mae", sd, overrides, args)
    model = MAE(cfg)
    load_weights(model, sd, f"MAE checkpoint {path.name}")
    meta = {"layout": "official MAE " + ("(encoder + decoder)" if full else "(encoder only)")}
    return LoadedCheckpoint(
        "mae",
        model.eval(),
        cfg,
        meta,
        path,
        sha,
        source="official-mae",
        sources=sources,
        normalization=_official_normalization(cfg),
    )


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
    cfg, sources = _config_from_state("mae", teacher, overrides, args)
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
    return LoadedCheckpoint(
        "rcmae",
        model.eval(),
        cfg,
        meta,
        path,
        sha,
        source="official-rcmae",
        sources=sources,
        normalization=_official_normalization(cfg),
    )


def _load_timm(path: Path, sd, sha: str, overrides: dict) -> LoadedCheckpoint:
    cfg, sources = _config_from_state("sup", sd, overrides)
    model = build_supervised(cfg, global_pool="avg" if "fc_norm.weight" in sd else "token")
    load_weights(model, sd, f"timm ViT checkpoint {path.name}")
    meta = {"layout": "timm VisionTransformer"}
    return LoadedCheckpoint("sup", model.eval(), cfg, meta, path, sha, source="timm", sources=sources)


def _load_folder(folder: Path, overrides: dict) -> LoadedCheckpoint:
    """A transformers or timm model folder (what `hf:` / `timm:` ids resolve to as well)."""
    cfg_json, weights, pre = folder_files(folder)
    sd = read_state_file(weights)
    if not sd or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise LandscapeError(f"{folder.name}/{weights.name} is not a plain state dict")
    if "architecture" in cfg_json:
        fm: FolderModel = from_timm(cfg_json, _strip_prefix(sd), overrides)
    elif "model_type" in cfg_json:
        fm = from_transformers(cfg_json, sd, pre, overrides)
    else:
        raise LandscapeError(f"{folder.name}/config.json is neither a transformers config nor a timm config")
    what = f"{fm.layout} weights in {folder.name}"
    if fm.kind == "sup":
        model = build_supervised(fm.config, global_pool=fm.global_pool)
    else:
        model = MAE(fm.config)
    load_weights(model, fm.state, what)
    meta: dict[str, Any] = {"layout": fm.layout}
    if fm.train:
        meta["train"] = fm.train
    if fm.dropped:
        meta["unused_weights"] = fm.dropped
    return LoadedCheckpoint(
        fm.kind,
        model.eval(),
        fm.config,
        meta,
        folder,
        _folder_sha(folder, weights),
        source=fm.source,
        sources=fm.sources,
        normalization=fm.normalization,
    )


def _load_ours(path: Path, raw: dict, sha: str, overrides: dict | None = None) -> LoadedCheckpoint:
    kind = raw.get("kind")
    try:
        cfg = ViTConfig.from_dict(raw["config"])
    except (KeyError, TypeError) as e:
        raise LandscapeError(f"{path.name}: broken description ({_first_line(e)})") from None
    checked = ("num_heads", "decoder_num_heads", "norm_pix_loss") if kind in ("mae", "rcmae") else ("num_heads",)
    for name in checked:  # our files describe themselves: a flag may only repeat them
        said, flag = (overrides or {}).get(name), _OVERRIDE_FLAGS[name]
        if said is not None and said != getattr(cfg, name):
            raise LandscapeError(f"{path.name} says {name} = {getattr(cfg, name)}; {flag} {said} contradicts it")
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
    enc_path: str | Path = Path(enc.get("path", ""))
    if is_hub_reference(enc.get("path", "")):
        enc_path = enc["path"]  # a hub id stays one (resolved through the local Hugging Face cache)
    elif not enc_path.is_absolute():
        enc_path = path.parent / enc_path
    found = Path(enc_path).is_file() or (Path(enc_path) / "config.json").is_file()  # a file or a model folder
    if not enc.get("path") or not (is_hub_reference(enc_path) or found):
        raise LandscapeError(f"probe {path.name}: its encoder checkpoint {enc_path} is missing")
    base = load_checkpoint(enc_path)
    if enc.get("sha256") and base.sha256 != enc["sha256"]:
        raise LandscapeError(
            f"probe {path.name}: encoder {Path(enc_path).name} changed since the probe was trained (or is loaded with "
            "other --num-heads / --decoder-num-heads than then)"
        )
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
    return LoadedCheckpoint(
        "probe",
        probe.eval(),
        base.config,
        meta,
        path,
        sha,
        "ours",
        sources=base.sources,
        normalization=base.normalization,
    )


class _HeadView(nn.Module):
    """The probe's own parameters and buffers (BatchNorm statistics, head) without the encoder's."""

    def __init__(self, probe: LinearProbe):
        super().__init__()
        self.bn = probe.bn
        self.head = probe.head


def probe_state(probe: LinearProbe) -> dict[str, torch.Tensor]:
    return cpu_state(_HeadView(probe))
