"""Checkpoints that are folders or hub names: `transformers` ViTMAE / ViT folders, timm snapshot folders, `hf:` ids
and `timm:` names, resolved through `huggingface_hub` and mapped onto the project's MAE and ViT layouts.

Forms a checkpoint reference may take besides a file (`core.models.checkpoints.load_checkpoint` accepts them all):
- a folder written by `save_pretrained`: `config.json` (+ `model.safetensors` or `pytorch_model.bin`, usually
  `preprocessor_config.json`) of a `ViTMAEForPreTraining` (full MAE), `ViTMAEModel` (encoder only), `ViTModel` (encoder
  only) or `ViTForImageClassification` (supervised ViT with its classifier);
- a timm snapshot folder: `config.json` with an `architecture` + `model.safetensors` (or `pytorch_model.bin`);
- `hf:org/name[@revision]` (also timm's own `hf-hub:org/name`): a hub repository holding either of the above;
- `timm:name[.tag]`, e.g. `timm:vit_base_patch16_224.mae`: timm's hub repository of that name (`timm/<name>.<tag>`).

Hub ids are looked up in the local Hugging Face cache first (`HF_HUB_CACHE`, `models--org--name/snapshots/<rev>/`), so
nothing touches the network when the files are cached; only a missing snapshot is downloaded, and never with
`HF_HUB_OFFLINE` set.

Every architecture value says where it came from (`sources`): the file's config, an official table, or the command
line; a head count is never divided out of a width that is not an official one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from huggingface_hub import snapshot_download

from core.errors import LandscapeError
from core.models.vit import OFFICIAL_DECODER_HEADS, OFFICIAL_HEADS, ViTConfig

HUB_PREFIXES = ("hf:", "hf-hub:", "timm:")
CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_HUB_PATTERNS = [CONFIG_FILE, PREPROCESSOR_FILE, *WEIGHT_FILES]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_TRUE = ("1", "on", "yes", "true")


@dataclass
class FolderModel:
    """What a folder describes, mapped onto the project's layouts (built into a model by the checkpoint loader).

    Attributes:
        kind: 'mae' (an encoder, with a decoder when `config.decoder_depth` > 0) or 'sup' (a ViT with a classifier).
        config: the architecture.
        sources: where each architecture value came from, by ViTConfig field name.
        state: the weights under the project's names (MAE: official MAE names; 'sup': timm's VisionTransformer).
        layout: a one-line description, e.g. "transformers ViTMAEForPreTraining".
        source: 'transformers' or 'timm-hub'.
        normalization: the image mean / std the model was trained with and where that came from, or None.
        global_pool: 'token' or 'avg' (supervised ViTs).
        train: the recipe the config states (mask_ratio, norm_pix_loss), as our train-config names.
        dropped: names of weights the project does not use (a ViTModel's pooler), for the description.
    """

    kind: str
    config: ViTConfig
    sources: dict[str, str]
    state: dict[str, torch.Tensor]
    layout: str
    source: str
    normalization: dict[str, Any] | None
    global_pool: str = "token"
    train: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------------------
# References


def is_hub_reference(ref: str | os.PathLike) -> bool:
    """Whether a checkpoint reference names a hub repository (`hf:`, `hf-hub:`, `timm:`) rather than a path (an
    existing file or folder of that name stays a path)."""
    return str(ref).startswith(HUB_PREFIXES) and not Path(ref).exists()


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub reads it, but read now (the library reads it once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hub_repository(ref: str) -> tuple[str, str | None]:
    """(repo id, revision or None) of an `hf:` / `hf-hub:` / `timm:` reference.

    Raises:
        LandscapeError: an empty or malformed name.
    """
    prefix = next(p for p in HUB_PREFIXES if ref.startswith(p))
    name, _, revision = ref[len(prefix) :].strip().partition("@")
    if prefix == "timm:":
        if not re.fullmatch(r"[\w.\-]+", name):
            raise LandscapeError(f"{ref}: a timm name looks like timm:vit_base_patch16_224.mae")
        if "." not in name:  # no tag: timm's default pretrained tag of the architecture
            try:
                hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id
            except (RuntimeError, AttributeError, KeyError):  # unknown names give None or raise
                hub_id = None
            if not hub_id:
                raise LandscapeError(f"{ref}: timm knows no pretrained weights of that name on the hub")
            return hub_id, revision or None
        return f"timm/{name}", revision or None
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", name):
        raise LandscapeError(f"{ref}: a hub id looks like hf:facebook/vit-mae-base (optionally @revision)")
    return name, revision or None


def resolve_reference(ref: str | os.PathLike) -> Path:
    """The local file or folder a checkpoint reference stands for; hub ids through the local Hugging Face cache.

    A cached snapshot is used as it is (no network); a missing one is downloaded unless HF_HUB_OFFLINE is set.

    Raises:
        LandscapeError: a hub id that is not cached while offline, or that cannot be downloaded.
    """
    if not is_hub_reference(ref):
        return Path(ref).expanduser()
    ref = str(ref)
    repo, revision = hub_repository(ref)
    cache_dir = os.environ.get("HF_HUB_CACHE") or None
    kwargs = {"revision": revision, "cache_dir": cache_dir, "allow_patterns": _HUB_PATTERNS}
    try:
        return Path(snapshot_download(repo, local_files_only=True, **kwargs))
    except Exception:  # noqa: BLE001 - any miss in the local cache falls through to the download (or the refusal)
        pass
    if hub_offline():
        raise LandscapeError(
            f"{ref} is not in the local Hugging Face cache (HF_HUB_OFFLINE is set): download it once with network "
            f"access (`hf download {repo}`), or point HF_HUB_CACHE at a cache that has it"
        )
    try:
        return Path(snapshot_download(repo, **kwargs))
    except Exception as e:  # noqa: BLE001 - network, auth and missing repos all end in one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise LandscapeError(f"cannot download {ref} from the Hugging Face hub ({first})") from None


def folder_files(folder: Path) -> tuple[dict[str, Any], Path, dict[str, Any] | None]:
    """(config.json, the weight file, preprocessor_config.json or None) of a model folder.

    Raises:
        LandscapeError: no config.json, no weight file, or a config that is not JSON.
    """
    cfg = _read_json(folder / CONFIG_FILE, folder)
    if cfg is None:
        raise LandscapeError(
            f"not a file: {folder} (a folder is read only as a transformers / timm model folder, with {CONFIG_FILE})"
        )
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
    if weights is None:
        if any(folder.glob("*.index.json")):
            raise LandscapeError(f"{folder.name}: sharded weights are not supported; save with a single weight file")
        raise LandscapeError(f"{folder.name}: no weights ({' or '.join(WEIGHT_FILES)}) next to {CONFIG_FILE}")
    return cfg, weights, _read_json(folder / PREPROCESSOR_FILE, folder)


def _read_json(path: Path, folder: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        reason = str(e).splitlines()[0][:120]
        raise LandscapeError(f"{folder.name}/{path.name} is not readable JSON ({reason})") from None
    if not isinstance(obj, dict):
        raise LandscapeError(f"{folder.name}/{path.name} is not a JSON object")
    return obj


# --------------------------------------------------------------------------------------------------------------------
# Head counts and their sources


def pick_heads(
    width: int, stated: int | None, stated_by: str, override: int | None, *, decoder: bool = False
) -> tuple[int, str]:
    """A head count and where it came from: the command line, the file's config, or the official table of widths.

    Raises:
        LandscapeError: no count stated and a width that is not an official one (the flag is then required).
    """
    flag = "--decoder-num-heads" if decoder else "--num-heads"
    if override:
        return int(override), flag
    if stated:
        return int(stated), stated_by
    table = OFFICIAL_DECODER_HEADS if decoder else OFFICIAL_HEADS
    if width in table:
        name, heads = table[width]
        return heads, f"{name} table"
    what = "decoder" if decoder else "encoder"
    raise LandscapeError(
        f"the file does not say how many attention heads its {width}-wide {what} has, and {width} is not an official "
        f"ViT width: pass {flag}"
    )


def check_heads(cfg: ViTConfig) -> None:
    """Refuse head counts that do not divide their width (one line)."""
    pairs = [("num_heads", cfg.embed_dim, cfg.num_heads)]
    if cfg.decoder_depth:
        pairs.append(("decoder_num_heads", cfg.decoder_embed_dim, cfg.decoder_num_heads))
    for name, d, h in pairs:
        if h < 1 or d % h:
            raise LandscapeError(f"{name}={h} does not divide the width {d}; pass the right head count")


# --------------------------------------------------------------------------------------------------------------------
# transformers folders

_HF_KINDS = {
    "ViTMAEForPreTraining": "MAE (encoder + decoder)",
    "ViTMAEModel": "MAE encoder",
    "ViTModel": "ViT encoder",
    "ViTForImageClassification": "supervised ViT",
}
# One transformer layer: transformers' on-disk (v4) and in-memory (v5) names -> timm Block names.
_LAYER_PARTS = {
    "attention.attention.query": "q",
    "attention.attention.key": "k",
    "attention.attention.value": "v",
    "attention.q_proj": "q",
    "attention.k_proj": "k",
    "attention.v_proj": "v",
    "attention.output.dense": "attn.proj",
    "attention.o_proj": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "mlp.fc1": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "mlp.fc2": "mlp.fc2",
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
}
_ENCODER_LAYER = re.compile(r"^(?:encoder\.layers?|layers)\.(\d+)\.(.+)\.(weight|bias)$")
# The decoder's layers under either name transformers writes (`decoder_layers` in v4, `decoder_encoder.layer` in v5).
_DECODER_LAYER = re.compile(r"^decoder\.(?:decoder_layers|decoder_encoder\.layers?)\.(\d+)\.(.+)\.(weight|bias)$")
_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
    "decoder.mask_token": "mask_token",
    "decoder.decoder_pos_embed": "decoder_pos_embed",
}
_UNUSED = ("pooler.", "embeddings.mask_token")  # a ViTModel's pooler and its optional mask token: never read


def map_transformers_state(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """transformers ViT / ViTMAE weights under the project's names (query/key/value fused into qkv), and the names
    that were dropped as unused. Unknown names are kept as they are, so loading reports them."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    dropped = []
    for key, t in sd.items():
        k = key[len("vit.") :] if key.startswith("vit.") else key
        if k.startswith(_UNUSED):
            dropped.append(key)
            continue
        m = _ENCODER_LAYER.match(k)
        dm = _DECODER_LAYER.match(k)
        if m or dm:
            i, part, leaf = (m or dm).groups()
            block = f"{'decoder_blocks' if dm else 'blocks'}.{i}"
            name = _LAYER_PARTS.get(part)
            if name in ("q", "k", "v"):
                qkv.setdefault((block, leaf), {})[name] = t
            else:
                out[f"{block}.{name}.{leaf}" if name else key] = t
            continue
        if k in _TOP:
            out[_TOP[k]] = t
        elif k.startswith("decoder.decoder_"):  # decoder_embed / decoder_norm / decoder_pred
            out[k[len("decoder.") :]] = t
        else:
            out[key] = t
    for (block, leaf), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise LandscapeError(f"{block}: query, key and value are not all there ({', '.join(sorted(parts))})")
        # timm's fused qkv is [q; k; v] along the output dimension, each head-major as transformers' projections.
        out[f"{block}.attn.qkv.{leaf}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out, dropped


def _size(value: Any, what: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise LandscapeError(f"non-square {what} {list(value)} is not supported")
        value = value[0]
    return int(value)


def from_transformers(
    cfg: dict[str, Any], sd: dict[str, torch.Tensor], pre: dict[str, Any] | None, overrides: dict[str, Any]
) -> FolderModel:
    """A transformers ViTMAE / ViT folder (its config.json, weights, preprocessor config) in the project's layout.

    Raises:
        LandscapeError: a model type or setting the project cannot represent exactly (one line, never approximated).
    """
    model_type = cfg.get("model_type")
    if model_type not in ("vit_mae", "vit"):
        raise LandscapeError(f"config.json: model_type {model_type!r} is not supported (vit_mae or vit)")
    archs = cfg.get("architectures") or []
    arch = archs[0] if archs else ("ViTMAEForPreTraining" if model_type == "vit_mae" else "ViTModel")
    if arch not in _HF_KINDS:
        raise LandscapeError(f"config.json: {arch} is not supported ({', '.join(_HF_KINDS)})")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise LandscapeError(f"config.json: hidden_act {cfg.get('hidden_act')!r} cannot be represented (only gelu)")
    if not cfg.get("qkv_bias", True):
        raise LandscapeError("config.json: qkv_bias false cannot be represented (the project's blocks have it)")
    state, dropped = map_transformers_state(sd)
    try:
        dim, depth = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
        mlp_ratio = int(cfg["intermediate_size"]) / dim
        img, patch = _size(cfg["image_size"], "image size"), _size(cfg["patch_size"], "patch size")
        chans = int(cfg.get("num_channels", 3))
    except (KeyError, TypeError, ValueError) as e:
        raise LandscapeError(f"config.json lacks a readable architecture value ({e})") from None
    src = "config.json"
    heads, heads_src = pick_heads(dim, cfg.get("num_attention_heads"), src, overrides.get("num_heads"))
    sources = dict.fromkeys(("img_size", "patch_size", "in_chans", "embed_dim", "depth", "mlp_ratio"), src)
    sources["num_heads"] = heads_src
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    sources["layer_norm_eps"] = src if "layer_norm_eps" in cfg else "transformers' default"
    has_decoder = "decoder_embed.weight" in state
    values = {
        "img_size": img,
        "patch_size": patch,
        "in_chans": chans,
        "embed_dim": dim,
        "depth": depth,
        "num_heads": heads,
        "mlp_ratio": mlp_ratio,
        "layer_norm_eps": eps,
        "decoder_embed_dim": 1,
        "decoder_depth": 0,
        "decoder_num_heads": 1,
        "num_classes": 0,
        "norm_pix_loss": False,
    }
    train: dict[str, Any] = {}
    if model_type == "vit_mae":
        train["mask_ratio"] = float(cfg.get("mask_ratio", 0.75))
        sources["mask_ratio"] = src if "mask_ratio" in cfg else "transformers' default"
    if has_decoder:
        try:
            ddim, ddepth = int(cfg["decoder_hidden_size"]), int(cfg["decoder_num_hidden_layers"])
            dratio = int(cfg["decoder_intermediate_size"]) / ddim
        except (KeyError, TypeError, ValueError) as e:
            raise LandscapeError(f"config.json lacks a readable decoder value ({e})") from None
        if dratio != mlp_ratio:
            raise LandscapeError(
                f"config.json: the decoder's MLP ratio {dratio:g} differs from the encoder's {mlp_ratio:g}, which the "
                "project's MAE cannot represent"
            )
        dheads, dsrc = pick_heads(
            ddim, cfg.get("decoder_num_attention_heads"), src, overrides.get("decoder_num_heads"), decoder=True
        )
        npl = overrides.get("norm_pix_loss")
        values |= {"decoder_embed_dim": ddim, "decoder_depth": ddepth, "decoder_num_heads": dheads}
        values["norm_pix_loss"] = bool(cfg.get("norm_pix_loss", False)) if npl is None else bool(npl)
        sources |= dict.fromkeys(("decoder_embed_dim", "decoder_depth"), src) | {"decoder_num_heads": dsrc}
        sources["norm_pix_loss"] = (
            "--norm-pix-loss" if npl is not None else src if "norm_pix_loss" in cfg else "transformers' default"
        )
        train["norm_pix_loss"] = values["norm_pix_loss"]
    kind = "mae"
    if "head.weight" in state:
        kind = "sup"
        values["num_classes"] = int(state["head.weight"].shape[0])
        sources["num_classes"] = "classifier weights"
    config = ViTConfig(**values)
    check_heads(config)
    return FolderModel(
        kind=kind,
        config=config,
        sources=sources,
        state=state,
        layout=f"transformers {arch}" + ("" if has_decoder or kind == "sup" else " (encoder only, no decoder)"),
        source="transformers",
        normalization=_preprocessor_normalization(pre, chans),
        train=train,
        dropped=dropped,
    )


def _preprocessor_normalization(pre: dict[str, Any] | None, chans: int) -> dict[str, Any] | None:
    if pre is None:
        return None
    if pre.get("do_normalize") is False:
        return {"mean": [0.0] * chans, "std": [1.0] * chans, "source": f"{PREPROCESSOR_FILE} (do_normalize false)"}
    mean, std = pre.get("image_mean"), pre.get("image_std")
    if mean is None or std is None:
        return None
    return _stats(mean, std, chans, PREPROCESSOR_FILE)


def _stats(mean: Any, std: Any, chans: int, source: str) -> dict[str, Any]:
    mean = [float(mean)] * chans if isinstance(mean, (int, float)) else [float(v) for v in mean]
    std = [float(std)] * chans if isinstance(std, (int, float)) else [float(v) for v in std]
    if len(mean) != chans or len(std) != chans or min(std) <= 0:
        raise LandscapeError(f"{source}: image mean {mean} / std {std} do not fit a {chans}-channel model")
    return {"mean": mean, "std": std, "source": source}


# --------------------------------------------------------------------------------------------------------------------
# timm snapshot folders


def from_timm(cfg: dict[str, Any], sd: dict[str, torch.Tensor], overrides: dict[str, Any]) -> FolderModel:
    """A timm snapshot folder (config.json with `architecture`, timm-named weights) in the project's layout.

    The architecture is timm's own model of that name with the folder's `model_args`, built on the meta device (no
    weights) to read its head count, widths and norms; anything a plain ViT cannot represent is refused.

    Raises:
        LandscapeError: an unknown architecture, or one that is not a plain ViT.
    """
    arch = cfg.get("architecture")
    args = dict(cfg.get("model_args") or {})
    if overrides.get("num_heads"):
        args["num_heads"] = int(overrides["num_heads"])
    num_classes = int(cfg.get("num_classes", args.get("num_classes", 0)) or 0)
    args["num_classes"] = num_classes
    if cfg.get("global_pool") is not None:
        args.setdefault("global_pool", cfg["global_pool"])
    try:
        with torch.device("meta"):  # shapes only: nothing allocated, nothing downloaded
            model = timm.create_model(arch, pretrained=False, **args)
    except Exception as e:  # noqa: BLE001 - timm raises RuntimeError / TypeError / KeyError for unknown names or args
        raise LandscapeError(f"config.json: timm cannot build {arch!r} ({str(e).splitlines()[0][:150]})") from None
    name = type(model).__name__
    if name != "VisionTransformer":
        raise LandscapeError(f"config.json: timm's {arch} is a {name}, not a plain VisionTransformer")
    blk = model.blocks[0]
    plain = (
        getattr(model, "num_reg_tokens", 0) == 0
        and getattr(model, "cls_token", None) is not None
        and not getattr(model, "no_embed_class", False)
        and isinstance(blk.ls1, torch.nn.Identity)
        and isinstance(blk.attn.q_norm, torch.nn.Identity)
        and isinstance(getattr(blk.attn, "norm", torch.nn.Identity()), torch.nn.Identity)
        and isinstance(model.norm_pre, torch.nn.Identity)
        and isinstance(model.norm, torch.nn.LayerNorm)
        and model.blocks[0].attn.qkv.bias is not None
    )
    if not plain:
        raise LandscapeError(
            f"timm's {arch} is not a plain ViT (register tokens, layer scale, qk-norm, no class token or a pre-norm "
            "cannot be represented)"
        )
    src = "timm config.json" if "model_args" in cfg else f"timm architecture {arch}"
    dim = int(model.embed_dim)
    heads = int(blk.attn.num_heads)
    heads_src = "--num-heads" if overrides.get("num_heads") else src
    img = _size(model.patch_embed.img_size, "image size")
    patch = _size(model.patch_embed.patch_size, "patch size")
    in_chans = int(model.patch_embed.proj.weight.shape[1])
    config = ViTConfig(
        img_size=img,
        patch_size=patch,
        in_chans=in_chans,
        embed_dim=dim,
        depth=len(model.blocks),
        num_heads=heads,
        mlp_ratio=blk.mlp.fc1.out_features / dim,
        decoder_embed_dim=1,
        decoder_depth=0,
        decoder_num_heads=1,
        norm_pix_loss=False,
        num_classes=num_classes,
        layer_norm_eps=float(model.norm.eps),
    )
    check_heads(config)
    sources = dict.fromkeys(
        ("img_size", "patch_size", "in_chans", "embed_dim", "depth", "mlp_ratio", "layer_norm_eps", "num_classes"), src
    )
    sources["num_heads"] = heads_src
    pcfg = cfg.get("pretrained_cfg") or {}
    norm = None
    if pcfg.get("mean") is not None and pcfg.get("std") is not None:
        norm = _stats(pcfg["mean"], pcfg["std"], in_chans, "timm pretrained_cfg")
    tag = pcfg.get("tag") or ""
    kind = "sup" if num_classes else "mae"
    state = {k: v for k, v in sd.items()}
    return FolderModel(
        kind=kind,
        config=config,
        sources=sources,
        state=state,
        layout=f"timm {arch}" + (f".{tag}" if tag else "") + ("" if num_classes else " (encoder only, no head)"),
        source="timm-hub",
        normalization=norm,
        global_pool=str(getattr(model, "global_pool", "token") or "token"),
    )


_LABELS = {
    "img_size": "image size",
    "patch_size": "patch",
    "in_chans": "channels",
    "embed_dim": "dim",
    "num_heads": "heads",
    "mlp_ratio": "MLP ratio",
    "layer_norm_eps": "LayerNorm eps",
    "decoder_embed_dim": "decoder dim",
    "decoder_depth": "decoder depth",
    "decoder_num_heads": "decoder heads",
    "num_classes": "classes",
    "norm_pix_loss": "norm_pix_loss",
    "mask_ratio": "mask ratio",
}


def describe_sources(cfg: ViTConfig, sources: dict[str, str], train: dict[str, Any] | None = None) -> dict[str, str]:
    """`value (source)` per architecture field, e.g. {"heads": "4 (config.json)"}, for `info` (fields without a
    recorded source are left out)."""
    out = {}
    for k, src in sources.items():
        v = getattr(cfg, k) if hasattr(cfg, k) else (train or {}).get(k)
        k = _LABELS.get(k, k)
        out[k] = f"{v:g} ({src})" if isinstance(v, float) and not isinstance(v, bool) else f"{v} ({src})"
    return out
