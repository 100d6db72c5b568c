"""End-to-end fine-tuning of any encoder with a new classification head, and the same ViT trained from scratch.

Public API (plain functions and frozen dataclasses; nothing here imports streamlit):

- `FinetuneConfig`: one fine-tuning run (recipe, labeled budget, seed, pre-trained or from scratch).
- `finetune(base_ckpt, cfg, *, progress, device, force, check_stop, path) -> Path`: train (or find cached) and
  return the checkpoint's path. Cached by content hash under `<cache>/finetune/`; resumes after a kill from its
  last finished epoch (the same `<checkpoint>.resume` mechanism as `core.models.train`) and then ends bit for bit like
  an uninterrupted run.
- `finetune_path(base_ckpt, cfg) -> Path`: where that run's checkpoint is (or will be), without training; a page
  can show what `exists()` at once and compute the rest on demand.
- `finetune_summary(ckpt) -> dict`: the final numbers of a fine-tuned checkpoint (`val_acc`, `val_loss`,
  `train_acc`, `train_loss`, `gap_acc`, `gap_loss`, `n_labels`, `steps`, ...).
- `finetune_key(base, cfg, ds) -> dict`: everything that changes the fine-tuned weights (the cache key).

What is fine-tuned: the encoder of any checkpoint `core.models.checkpoints.load_checkpoint` reads (our MAE, our RC-MAE:
its EMA teacher by default, `use="student"` for the student; our supervised ViT; official MAE / RC-MAE files; timm
ViTs) becomes a timm `VisionTransformer` (the supervised ViT of `core.models.vit.build_supervised`) with a new linear
head. Every encoder weight trains, the RC-MAE teacher's too (stored with requires_grad=False, it is copied into
trainable parameters); MAE's fixed sin-cos position table stays fixed. The result is an ordinary supervised-ViT
checkpoint (kind `sup`) plus a `finetune` description, so landscapes and flatness (`loss="supervised"`) work on it
as on any supervised ViT; with `ObjectiveSpec(split="labeled")` they read the labeled subset it was trained on.

From scratch (`from_scratch=True`): the same architecture, built by the checkpoint's own model family with random
weights (an MAE-family checkpoint: a freshly initialized MAE's encoder, with the fixed sin-cos table; a supervised
one: a fresh timm ViT), trained on exactly the same labeled images, with the same number of steps and the same
recipe. Its cache key holds the architecture and data, not the checkpoint's weights: every checkpoint of one
architecture shares one scratch run per (budget, seed).

The recipe is MAE's fine-tuning recipe (He et al. 2022, appendix A.2) scaled to tiny models: AdamW, linear warm-up
then half-cosine decay, layer-wise learning-rate decay, weight decay on matrices only (not on biases, norms, the
cls token or the position table), drop-path and label smoothing (both optional). Not used: RandAugment, mixup,
cutmix and random erasing (the embedded digits are 8x8 pixels upsampled) and MAE's global average pooling (the cls
token keeps every pre-trained weight, the final norm included, and matches the linear probe's feature).

Steps: an epoch here is a fixed number of optimizer steps (`steps_per_epoch`), not a pass over the labeled images,
so every budget and every model kind gets the same number of updates (`epochs * steps_per_epoch`). Batches are
drawn from one stream of seeded permutations of the labeled subset (every image seen equally often), of
`min(batch_size, n_labels)` images. After every epoch the history records the training accuracy and cross-entropy
on the labeled subset (at most `train_eval_max` images, a class-balanced prefix) and on the whole validation split
(eval mode, no label smoothing), and the generalization gap: train - validation, for the accuracy and for the loss
(so the loss gap is usually negative).

Pre-training (when there is one) used every training image without labels; fine-tuning uses only the labeled
subset: the semi-supervised setting. Say so wherever these numbers are shown (`SETTING_NOTE`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

from core.device import pick_device
from core.errors import LandscapeError
from core.models.checkpoints import LoadedCheckpoint, load_checkpoint, save_checkpoint
from core.models.data import Dataset
from core.models.subsets import check_budget, describe_subset, labeled_subset
from core.models.train import (
    EpochRun,
    ProgressFn,
    dataset_record,
    encoder_dataset,
    reusable_checkpoint,
    supervised_metrics,
)
from core.models.vit import MAE, build_supervised, encoder_of
from core.paths import cache_root
from core.store import content_hash

USES = ("teacher", "student")
FORMAT_VERSION = 1  # bump when the training code changes the numbers (it is part of the cache key)
SETTING_NOTE = (
    "pre-training used every training image without labels; fine-tuning and training from scratch used only the "
    "labeled subset (the semi-supervised setting)"
)


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning (or from-scratch) run on a labeled subset."""

    labels_per_class: int | None = None  # the labeled budget; None: every training image (standard fine-tuning)
    seed: int = 0  # the labeled subset, the head's initialization (scratch: all weights), batch order, drop-path
    from_scratch: bool = False  # the checkpoint's architecture and data only, random weights: the fair baseline
    use: str = "teacher"  # RC-MAE: the EMA teacher (deployed, the official downstream use) or the student
    epochs: int = 20  # history points; 200 steps in all with the default 10 per epoch (~10 s for a tiny ViT)
    steps_per_epoch: int = 10  # fixed: every budget and model kind gets the same number of updates
    batch_size: int = 32  # at most; the whole subset when it is smaller (2 per class on digits: 20 images)
    lr: float = 1e-3  # peak AdamW rate (the head's); MAE's rule 5e-4 * batch / 256 gives 6e-5 here: too slow for
    # 200 steps, and tiny ViTs tolerate a larger rate (pre-training uses 2e-3)
    layer_decay: float = 0.75  # MAE: 0.65 for ViT-B (12 blocks), 0.75 for ViT-L; block i of 4 gets 0.75**(4-i)
    weight_decay: float = 0.05  # as MAE, on matrices only
    warmup_epochs: int = 2  # linear warm-up over the first 10% of the steps (MAE: 5 of 100 epochs)
    drop_path: float = 0.1  # stochastic depth, linear over the blocks up to this rate (MAE ViT-B: 0.1)
    label_smoothing: float = 0.1  # as MAE's fine-tuning
    data: str | None = None  # data spec; None: the checkpoint's own training data (digits for official files)
    train_eval_max: int = 512  # per-epoch training numbers on at most this many labeled images (a balanced prefix
    # of the subset): every labeled image up to 50 per class on digits, and evaluation stays cheaper than training

    def __post_init__(self):
        if self.use not in USES:
            raise LandscapeError(f"--use must be teacher or student, got {self.use!r}")
        for name in ("epochs", "steps_per_epoch", "batch_size", "train_eval_max"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise LandscapeError(f"{name.replace('_', ' ')} must be a positive whole number, got {v!r}")
        if self.labels_per_class is not None:
            v = self.labels_per_class
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise LandscapeError(f"labels per class must be a positive whole number or all, got {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LandscapeError(f"the learning rate must be positive, got {self.lr}")
        if not 0.0 < self.layer_decay <= 1.0:
            raise LandscapeError(f"layer decay must be in (0, 1], got {self.layer_decay}")
        if not 0.0 <= self.drop_path < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise LandscapeError("drop-path and label smoothing must be in [0, 1)")
        if self.weight_decay < 0 or self.warmup_epochs < 0:
            raise LandscapeError("weight decay and warm-up epochs must not be negative")

    @property
    def steps(self) -> int:
        """Optimizer steps of the whole run (the same for every budget and every model kind)."""
        return self.epochs * self.steps_per_epoch


# --------------------------------------------------------------------------------------------------------------------
# The base checkpoint: data, identity, architecture


def family_of(base: LoadedCheckpoint) -> str:
    """'mae' for MAE / RC-MAE checkpoints (fixed sin-cos table, MAE's initialization), 'sup' for supervised ViTs.

    Raises:
        LandscapeError: a checkpoint without an encoder to fine-tune (a linear probe).
    """
    if base.kind in ("mae", "rcmae"):
        return "mae"
    if base.kind == "sup":
        return "sup"
    raise LandscapeError(
        f"{base.path.name} is a {base.kind} file, not an encoder checkpoint: give the MAE, RC-MAE or ViT checkpoint"
    )


def finetune_dataset(base: LoadedCheckpoint, cfg: FinetuneConfig) -> Dataset:
    """The data a run uses: `cfg.data` or the checkpoint's own, with its own train/validation split.

    The labeled pool is the whole training split (a pre-training `max_train` cap limits only the unlabeled
    pre-training), so fine-tuned checkpoints are evaluated on the same images by `core.models.objectives`.
    """
    return encoder_dataset(base, cfg.data or (base.meta.get("data") or {}).get("spec") or "digits")


def finetune_key(base: LoadedCheckpoint, cfg: FinetuneConfig, ds: Dataset) -> dict:
    """Everything that changes the fine-tuned weights.

    Pre-trained: the checkpoint's content hash (and, for RC-MAE, which encoder); from scratch: the architecture and
    model family only. Always: the recipe, the budget and seed, the data's content and split.
    """
    recipe = asdict(cfg)
    recipe.pop("data")  # the data's content is keyed below (the same data by two specs shares a key)
    if cfg.from_scratch or base.kind != "rcmae":
        recipe.pop("use")  # no choice of encoder there
    if cfg.from_scratch:
        src = {"scratch": family_of(base), "arch": base.config.to_dict(), "global_pool": _global_pool(base)}
    else:
        src = {"sha256": base.sha256, "kind": base.kind}
    dmeta = base.meta.get("data") or {}
    data = {
        "fingerprint": ds.fingerprint(),
        "val_fraction": dmeta.get("val_fraction", 0.2),
        "split_seed": dmeta.get("split_seed", 0),
    }
    return {"v": FORMAT_VERSION, "recipe": recipe, "base": src, "data": data}


def _global_pool(base: LoadedCheckpoint) -> str:
    if family_of(base) == "sup":
        return "avg" if getattr(base.model, "global_pool", "token") == "avg" else "token"
    return "token"


def _run_name(base: LoadedCheckpoint, cfg: FinetuneConfig, ds: Dataset) -> str:
    what = (
        f"scratch-{family_of(base)}"
        if cfg.from_scratch
        else base.kind + ("-student" if _uses_student(base, cfg) else "")
    )
    data = "".join(c if c.isalnum() else "-" for c in ds.spec.split(":")[0])
    budget = "all" if cfg.labels_per_class is None else f"{cfg.labels_per_class}pc"
    return f"{what}_{data}_{budget}_s{cfg.seed}"


def _uses_student(base: LoadedCheckpoint, cfg: FinetuneConfig) -> bool:
    return base.kind == "rcmae" and cfg.use == "student" and not cfg.from_scratch


def finetune_path(base_ckpt: str | Path | LoadedCheckpoint, cfg: FinetuneConfig = FinetuneConfig()) -> Path:
    """Where the run's checkpoint lives: `<cache>/finetune/<what>_<data>_<budget>_s<seed>_<hash>.pt`."""
    base = base_ckpt if isinstance(base_ckpt, LoadedCheckpoint) else load_checkpoint(base_ckpt)
    ds = finetune_dataset(base, cfg)
    return _path_for(base, cfg, ds, finetune_key(base, cfg, ds))


def _path_for(base: LoadedCheckpoint, cfg: FinetuneConfig, ds: Dataset, key: dict) -> Path:
    return cache_root() / "finetune" / f"{_run_name(base, cfg, ds)}_{content_hash(key)[:10]}.pt"


def build_classifier(base: LoadedCheckpoint, cfg: FinetuneConfig, num_classes: int) -> tuple[nn.Module, bool]:
    """The ViT to fine-tune and whether its position table is fixed.

    Pre-trained: the checkpoint's encoder weights (RC-MAE: the teacher or the student) in a timm ViT with a new head.
    From scratch: the same, from a freshly built model of the checkpoint's family (call under a seeded RNG).

    Raises:
        LandscapeError: a probe (no encoder of its own), or weights that do not fit the ViT.
    """
    family = family_of(base)
    pool = _global_pool(base)
    if family == "mae":
        src = MAE(base.config) if cfg.from_scratch else None
        if src is None:
            src = base.model.student if _uses_student(base, cfg) else encoder_of(base.model)
    else:
        src = build_supervised(base.config, global_pool=pool) if cfg.from_scratch else base.model
    vit = build_supervised(replace(base.config, num_classes=num_classes), global_pool=pool)
    own = vit.state_dict()
    sd = {k: v for k, v in src.state_dict().items() if k in own and not k.startswith("head.")}
    missing = sorted(k for k in own if k not in sd and not k.startswith("head."))
    shapes = [k for k, v in sd.items() if v.shape != own[k].shape]
    if missing or shapes:
        raise LandscapeError(
            f"{base.path.name}: the encoder does not fit a ViT (missing {missing[:3]}, shapes {shapes[:3]})"
        )
    vit.load_state_dict(sd, strict=False)
    nn.init.trunc_normal_(vit.head.weight, std=2e-5)  # as MAE's fine-tuning: the new head starts near zero
    nn.init.zeros_(vit.head.bias)
    fixed = family == "mae"
    if fixed:
        vit.pos_embed.requires_grad_(False)  # MAE's sin-cos table stays fixed, as in pre-training
    for p in vit.parameters():
        if p is not vit.pos_embed or not fixed:
            p.requires_grad_(True)  # every encoder weight trains, an RC-MAE teacher's included
    depth = len(vit.blocks)
    for i, blk in enumerate(vit.blocks):
        rate = cfg.drop_path * i / max(1, depth - 1)
        blk.drop_path1 = DropPath(rate) if rate > 0 else nn.Identity()
        blk.drop_path2 = DropPath(rate) if rate > 0 else nn.Identity()
    return vit, fixed


def layer_id(name: str, depth: int) -> int:
    """MAE's layer index for layer-wise lr decay: 0 embeddings, i + 1 for block i, depth + 1 the norm and head."""
    if name in ("cls_token", "pos_embed") or name.startswith("patch_embed"):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


def param_groups(model: nn.Module, cfg: FinetuneConfig) -> list[dict]:
    """AdamW groups: lr scale `layer_decay ** (depth + 1 - layer)`, weight decay on matrices only."""
    depth = len(model.blocks)
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lid = layer_id(name, depth)
        decay = p.ndim >= 2 and name not in ("cls_token", "pos_embed")
        g = groups.setdefault(
            (lid, decay),
            {
                "params": [],
                "weight_decay": cfg.weight_decay if decay else 0.0,
                "lr_scale": cfg.layer_decay ** (depth + 1 - lid),
            },
        )
        g["params"].append(p)
    return [groups[k] for k in sorted(groups)]


def batch_indices(n: int, batch: int, step: int, seed: int) -> torch.Tensor:
    """Positions in the labeled subset of one step's batch: a stream of seeded permutations, cut in batches.

    Stateless (a function of the step), so a resumed run draws exactly the batches an uninterrupted one draws.
    """
    out, pos, end = [], step * batch, (step + 1) * batch
    while pos < end:
        k, off = divmod(pos, n)
        g = torch.Generator().manual_seed(int(content_hash(["finetune-batches", int(seed), int(k)])[:15], 16))
        take = min(end - pos, n - off)
        out.append(torch.randperm(n, generator=g)[off : off + take])
        pos += take
    return torch.cat(out)


# --------------------------------------------------------------------------------------------------------------------
# Training


def finetune(
    base_ckpt: str | Path,
    cfg: FinetuneConfig = FinetuneConfig(),
    *,
    progress: ProgressFn | None = None,
    device: str = "auto",
    force: bool = False,
    check_stop: Callable[[], bool] | None = None,
    path: Path | None = None,
) -> Path:
    """Fine-tune one encoder (or train its architecture from scratch) and return the checkpoint's path.

    Args:
        base_ckpt: any checkpoint with an encoder (MAE, RC-MAE, supervised ViT; ours, official or timm).
        cfg: the run.
        progress: called after every step with a `core.models.train.Progress` (and once with a message on resume).
        device: 'auto' (CUDA when present), 'cpu' or 'cuda'.
        force: train again even if the checkpoint exists.
        check_stop: polled between steps; True stops the run with a LandscapeError (finished epochs are kept in the
            resume file, so asking again continues).
        path: where to write (default: `finetune_path(base_ckpt, cfg)` under the cache).

    Raises:
        LandscapeError: a probe or unreadable checkpoint, a budget larger than the data, a diverged or stopped run.
    """
    base_path = Path(base_ckpt)
    base = load_checkpoint(base_path)
    family_of(base)
    ds = finetune_dataset(base, cfg)
    check_budget(ds.train_y, cfg.labels_per_class)
    key = finetune_key(base, cfg, ds)
    path = Path(path) if path is not None else _path_for(base, cfg, ds, key)

    def same(found: LoadedCheckpoint) -> bool:
        return found.kind == "sup" and (found.meta.get("finetune") or {}).get("key") == key

    if path.exists() and not force and reusable_checkpoint(path, same):
        return path
    dev = pick_device(device)
    idx = labeled_subset(ds.train_y, cfg.labels_per_class, cfg.seed)
    sub_x, sub_y = ds.train_x[idx].contiguous(), ds.train_y[idx].contiguous()
    n = len(idx)
    batch = min(cfg.batch_size, n)
    run = EpochRun(
        path, key, cfg.epochs, cfg.steps_per_epoch, dev, what="fine-tuning", progress=progress, check_stop=check_stop
    )
    with torch.random.fork_rng(devices=[]):  # drop-path draws from the global generator: seeded, never leaked
        torch.manual_seed(cfg.seed)
        model, fixed = build_classifier(base, cfg, ds.num_classes)
        model.to(dev)
        opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, betas=(0.9, 0.999))
        history: list[dict] = []
        seen = ""  # a running hash of the dataset indices of every batch: same images, same order, same steps
        state = run.resume(model, opt, "step_loss") if not force else None
        if state is not None:
            torch.set_rng_state(state["rng"])
            history, seen = list(state["history"]), str(state["seen"])
        seen = _train_epochs(model, opt, cfg, run, (sub_x, sub_y, idx, batch), ds, history, seen)
    model.eval().cpu()
    for blk in model.blocks:  # the file describes the plain ViT (drop-path is a training-time regularizer)
        blk.drop_path1 = nn.Identity()
        blk.drop_path2 = nn.Identity()
    info = {
        "key": key,
        "base": {
            "path": str(base_path.resolve()),
            "sha256": base.sha256,
            "kind": base.kind,
            "source": base.source,
            "use": ("student" if _uses_student(base, cfg) else "teacher") if base.kind == "rcmae" else None,
        },
        "from_scratch": cfg.from_scratch,
        "family": family_of(base),
        "recipe": asdict(cfg),
        "subset": describe_subset(ds.train_y, idx, cfg.labels_per_class, cfg.seed),
        "steps": cfg.steps,
        "batch_size": batch,
        "seen_sha256": seen,
        "fixed_pos_embed": fixed,
        "global_pool": _global_pool(base),
        "note": SETTING_NOTE,
    }
    data = dataset_record(ds) | {
        "n_labels": n,
        "val_fraction": key["data"]["val_fraction"],
        "split_seed": key["data"]["split_seed"],
    }
    arch = replace(base.config, num_classes=ds.num_classes)
    saved = save_checkpoint(
        path, model, "sup", arch, train=asdict(cfg), data=data, history=history, extra={"finetune": info}
    )
    run.finish()
    return saved


def _train_epochs(model, opt, cfg, run: EpochRun, subset, ds, history, seen) -> str:
    """The epochs `run` has left, in place (history appended, resume state written); returns the seen-batches hash."""
    sub_x, sub_y, idx, batch = subset
    per, dev = cfg.steps_per_epoch, run.dev
    for epoch in run.epochs_left():
        model.train()
        t0 = time.perf_counter()
        losses = []
        for s in range(per):
            run.poll_stop(epoch)
            step = (epoch - 1) * per + s
            lr = run.set_lr(opt, step, cfg.warmup_epochs, cfg.lr)
            pos = batch_indices(len(idx), batch, step, cfg.seed)
            seen = hashlib.sha256((seen + "," + ",".join(map(str, idx[pos].tolist()))).encode()).hexdigest()
            x, y = sub_x[pos].to(dev, non_blocking=True), sub_y[pos].to(dev)
            with run.autocast():
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
            run.optimizer_step(opt, loss, epoch, s)
            losses.append(float(loss.detach()))
            run.report(epoch, s, losses[-1])
        train_time = time.perf_counter() - t0
        m = cfg.train_eval_max  # the subset is interleaved by class: a prefix is balanced
        train_loss, train_acc = supervised_metrics(model, sub_x[:m], sub_y[:m], dev)
        val_loss, val_acc = supervised_metrics(model, ds.val_x, ds.val_y, dev)
        history.append(
            {
                "epoch": epoch,
                "step": epoch * per,
                "step_loss": sum(losses) / len(losses),  # the training objective (label smoothing, drop-path)
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "gap_loss": train_loss - val_loss,
                "gap_acc": train_acc - val_acc,
                "lr": lr,
                "time_s": train_time,
            }
        )
        run.save_state(epoch, model, opt, rng=torch.get_rng_state(), history=history, seen=seen)
    return seen


# --------------------------------------------------------------------------------------------------------------------
# Reading results


def finetune_summary(ckpt: str | Path | LoadedCheckpoint) -> dict:
    """The final numbers of a fine-tuned checkpoint (plain values, JSON-able).

    Keys: val_acc, val_loss, train_acc, train_loss, gap_acc, gap_loss (train - validation), n_labels,
    labels_per_class, steps, epochs, seed, from_scratch, base_kind, use, data, path.

    Raises:
        LandscapeError: a checkpoint that was not made by `finetune`.
    """
    ck = ckpt if isinstance(ckpt, LoadedCheckpoint) else load_checkpoint(ckpt)
    info = ck.meta.get("finetune")
    hist = ck.meta.get("history") or []
    if not isinstance(info, dict) or not hist:
        raise LandscapeError(f"{ck.path.name} is not a fine-tuned checkpoint (python -m core finetune CKPT)")
    last = hist[-1]
    out = {k: float(last[k]) for k in ("val_acc", "val_loss", "train_acc", "train_loss", "gap_acc", "gap_loss")}
    sub = info.get("subset") or {}
    out |= {
        "n_labels": int(sub.get("n_labels", 0)),
        "labels_per_class": sub.get("labels_per_class"),
        "steps": int(info.get("steps", 0)),
        "epochs": len(hist),
        "seed": (info.get("recipe") or {}).get("seed"),
        "from_scratch": bool(info.get("from_scratch")),
        "base_kind": (info.get("base") or {}).get("kind"),
        "use": (info.get("base") or {}).get("use"),
        "data": (ck.meta.get("data") or {}).get("spec"),
        "path": str(ck.path),
    }
    return out
