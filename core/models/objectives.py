"""Loss functions over a fixed evaluation subset: what a landscape or a Hessian is computed of.

An `Objective` is called as `objective(module) -> scalar tensor` (differentiable) and has
`objective.evaluate(module) -> {"loss": ..., "acc": ...}`. It always evaluates in eval mode, on the same images, and,
for MAE losses, with masking noise drawn once from a seed and reused at every call, so that grid points (and models
compared side by side) differ only by their weights.

Kinds:
- `pretrain`: MAE's masked-patch reconstruction loss. For RC-MAE: the student's MAE loss plus gamma * consistency
  with the teacher held fixed at its checkpoint weights (`rcmae_terms="mae"` keeps the MAE term alone). The module
  moved is the MAE (RC-MAE: the student).
- `supervised`: cross-entropy of the supervised ViT.
- `probe`: cross-entropy of encoder + linear probe (any encoder kind).
- `own`: each model's own training objective (pretrain for MAE / RC-MAE, supervised for the ViT, probe for a probe).

When only a suffix of the network is perturbed (`prefix_scope`: 'head' for supervised / probe, 'decoder' for
pretrain), the unperturbed prefix is computed once and reused: same numbers, far fewer FLOPs per point.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import LandscapeError
from core.models.checkpoints import LoadedCheckpoint
from core.models.data import Dataset, eval_subset, load_dataset
from core.models.subsets import labeled_eval_subset
from core.models.vit import MAE, RCMAE, LinearProbe, masked_patch_mse

LOSS_KINDS = ("own", "pretrain", "supervised", "probe")
OWN_LOSS = {"mae": "pretrain", "rcmae": "pretrain", "sup": "supervised", "probe": "probe"}
# On the CPU, forwards of at most this many images: the tiny models' activations then stay in cache, measured ~10%
# faster per point than one batch of 256 (bench/run.py, docs/BENCHMARKS.md); large models are unaffected.
CPU_BATCH = 128


@dataclass(frozen=True)
class ObjectiveSpec:
    """What a loss is measured on."""

    loss: str = "own"  # one of LOSS_KINDS
    samples: int = 256  # evaluation images: enough for a stable mean, a few ms per point for the tiny models
    data_seed: int = 0  # which images
    mask_seed: int = 0  # MAE masking noise, shared by every grid point and every model compared
    split: str = "val"  # held-out images by default; "train", or "labeled": a fine-tuned ViT's labeled subset
    data: str | None = None  # data spec; None: the checkpoint's own training data
    mask_ratio: float | None = None  # None: the checkpoint's own (0.75 for official files)
    rcmae_terms: str = "full"  # RC-MAE pre-training loss: 'full' (MAE + gamma * consistency) or 'mae'
    batch_size: int = 512  # most images per forward; bounds activation memory (the CPU uses at most CPU_BATCH)
    autocast: bool = False  # bf16 autocast: fine for wide plots, not for small radii or Hessians
    prefix_scope: str = "all"  # the scope that will be perturbed; 'head' / 'decoder' enable prefix caching


@dataclass(frozen=True, kw_only=True)
class ObjectiveFields:
    """The objective fields every measurement spec shares (`SurfaceSpec`, `FlatnessSpec` inherit them).

    Keyword-only, so a spec's own fields stay positional (`SurfaceSpec(checkpoint, ...)`). `objective_spec` turns
    them into the `ObjectiveSpec` the measurement's loss is built from.
    """

    loss: str = "own"  # own | pretrain | supervised | probe (LOSS_KINDS)
    samples: int = 256  # evaluation images
    data_seed: int = 0  # which images
    mask_seed: int = 0  # MAE masks, shared by every point and every model compared
    data: str | None = None  # data spec; None: the checkpoint's own
    split: str = "val"  # val | train | labeled (a fine-tuned ViT's own labeled subset)
    rcmae_terms: str = "full"  # RC-MAE: full (MAE + consistency) or mae (MAE term alone)

    def objective_spec(self, **overrides: Any) -> ObjectiveSpec:
        """The `ObjectiveSpec` of these fields.

        Args:
            **overrides: `ObjectiveSpec` fields the measurement sets itself (a surface's autocast and prefix scope)
                or replaces (the loss of a flatness report's robustness curve).
        """
        own = {f.name: getattr(self, f.name) for f in fields(ObjectiveFields)}
        return ObjectiveSpec(**(own | overrides))


def resolve_loss(kind: str, loss: str) -> str:
    """The concrete loss kind for a checkpoint kind, with a clear error for impossible pairs."""
    if loss not in LOSS_KINDS:
        raise LandscapeError(f"unknown loss {loss!r}; choose one of {', '.join(LOSS_KINDS)}")
    loss = OWN_LOSS[kind] if loss == "own" else loss
    if loss == "pretrain" and kind not in ("mae", "rcmae"):
        raise LandscapeError(f"a {kind} model has no MAE pre-training loss; use --loss {OWN_LOSS[kind]} or probe")
    if loss == "supervised" and kind != "sup":
        raise LandscapeError(f"a {kind} model has no classifier head; use --loss probe (a linear probe) instead")
    if loss == "probe" and kind != "probe":
        raise LandscapeError("the probe loss needs a probe checkpoint (train one with `python -m core probe CKPT`)")
    return loss


@functools.lru_cache(maxsize=4)
def _dataset(spec: str, image_size: int, val_fraction: float, split_seed: int, normalize=None) -> Dataset:
    return load_dataset(spec, image_size=image_size, val_fraction=val_fraction, seed=split_seed, normalize=normalize)


def dataset_of(ckpt: LoadedCheckpoint, spec: str | None = None) -> Dataset:
    """The dataset a checkpoint is evaluated on (its own training data unless another spec is given), normalized as
    the model expects (`ckpt.image_stats`: the checkpoint's own mean / std, else the dataset's)."""
    dmeta = ckpt.meta.get("data") or {}
    enc_meta = ckpt.meta.get("encoder_meta") or {}
    spec = spec or dmeta.get("spec") or (enc_meta.get("data") or {}).get("spec")
    if spec is None:
        raise LandscapeError(f"{ckpt.path.name} does not say what data it was trained on: pass a data spec (--data)")
    base = dmeta if "split_seed" in dmeta else (enc_meta.get("data") or {})
    split = (base.get("val_fraction", 0.2), base.get("split_seed", 0))
    ds = _dataset(spec, ckpt.config.img_size, *split, ckpt.image_stats)
    if ds.in_chans != ckpt.config.in_chans:
        raise LandscapeError(f"data {spec} has {ds.in_chans} channels but the model expects {ckpt.config.in_chans}")
    recorded = dmeta.get("fingerprint")
    if recorded and spec == dmeta.get("spec") and recorded != ds.fingerprint():
        warnings.warn(f"{ckpt.path.name}: the data '{spec}' differs from what it was trained on", stacklevel=2)
    return ds


class Objective:
    """A fixed-data loss of one model. Build it with `build_objective`."""

    def __init__(self, ckpt: LoadedCheckpoint, spec: ObjectiveSpec, device: str | torch.device = "cpu"):
        self.ckpt = ckpt
        self.spec = spec
        self.loss_kind = resolve_loss(ckpt.kind, spec.loss)
        self.device = torch.device(device)
        self.batch_size = min(spec.batch_size, CPU_BATCH) if self.device.type == "cpu" else spec.batch_size
        ckpt.model.to(self.device).eval()
        self.module: nn.Module = ckpt.landscape_module
        self.dataset = dataset_of(ckpt, spec.data)
        if spec.split == "labeled":  # a fine-tuned ViT's own labeled training images (core.models.subsets)
            tr = self.dataset
            x, y = labeled_eval_subset(ckpt.meta, tr.train_x, tr.train_y, spec.samples, spec.data_seed, ckpt.path.name)
        else:
            x, y = eval_subset(self.dataset, spec.samples, spec.data_seed, spec.split)
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.has_labels = self.loss_kind in ("supervised", "probe")
        train = ckpt.meta.get("train") or {}
        self.mask_ratio = spec.mask_ratio if spec.mask_ratio is not None else train.get("mask_ratio", 0.75)
        self._prefix: list[Any] | None = None
        if self.loss_kind == "pretrain":
            mae: MAE = self.module
            g = torch.Generator().manual_seed(spec.mask_seed)
            self.noise = mae.draw_noise(len(self.x), generator=g).to(self.device)
            with torch.no_grad():
                self.targets = [mae.target(xb) for xb in self._batches(self.x)]
                self.teacher_pred = self._teacher_predictions() if isinstance(ckpt.model, RCMAE) else None
        if spec.prefix_scope in ("head", "decoder"):
            self._prefix = self._compute_prefix(spec.prefix_scope)

    # ---------------------------------------------------------------------------------------------------------------
    def key(self) -> dict:
        """Everything that changes this objective's numbers (for cache keys)."""
        s = asdict(self.spec)
        s.pop("batch_size")  # changes float summation order only marginally; not part of the identity
        s.pop("prefix_scope")  # the same numbers either way
        return {
            "checkpoint": self.ckpt.sha256,
            "loss": self.loss_kind,
            "data": self.dataset.fingerprint(),
            "mask_ratio": self.mask_ratio if self.loss_kind == "pretrain" else None,
            **{k: v for k, v in s.items() if k not in ("loss", "data", "mask_ratio")},
            **({"subset": self.ckpt.meta["finetune"]["subset"]} if self.spec.split == "labeled" else {}),
            # The model's own image normalization (hub / official files), said in every result's key and meta; the
            # dataset's statistics (our checkpoints) leave the key as it always was.
            **({"normalization": self.ckpt.normalization} if self.ckpt.normalization is not None else {}),
        }

    def _batches(self, t: torch.Tensor) -> list[torch.Tensor]:
        bs = self.batch_size
        return [t[i : i + bs] for i in range(0, len(t), bs)]

    @torch.no_grad()
    def _teacher_predictions(self) -> list[torch.Tensor]:
        teacher: MAE = self.ckpt.model.teacher
        out = []
        for xb, nb in zip(self._batches(self.x), self._batches(self.noise), strict=True):
            latent, _, restore = teacher.forward_encoder(xb, self.mask_ratio, nb)
            out.append(teacher.forward_decoder(latent, restore))
        return out

    @torch.no_grad()
    def _compute_prefix(self, scope: str) -> list[Any] | None:
        if scope == "decoder" and self.loss_kind == "pretrain":
            mae: MAE = self.module
            return [
                mae.forward_encoder(xb, self.mask_ratio, nb)
                for xb, nb in zip(self._batches(self.x), self._batches(self.noise), strict=True)
            ]
        if scope == "head" and self.loss_kind == "probe":
            probe: LinearProbe = self.module
            return [probe.features(xb) for xb in self._batches(self.x)]
        if scope == "head" and self.loss_kind == "supervised":
            return [self.module.forward_features(xb) for xb in self._batches(self.x)]
        return None

    # ---------------------------------------------------------------------------------------------------------------
    def _outputs(self, module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(loss, correct count or None) summed over batches with the right weights."""
        n = len(self.x)
        total = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device) if self.has_labels else None
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.spec.autocast):
            for b, xb in enumerate(self._batches(self.x)):
                w = len(xb) / n
                if self.loss_kind == "pretrain":
                    total = total + w * self._pretrain_batch(module, b, xb)
                    continue
                yb = self.y[b * self.batch_size : b * self.batch_size + len(xb)]
                logits = self._logits_batch(module, b, xb)
                total = total + w * F.cross_entropy(logits.float(), yb)
                correct = correct + (logits.argmax(1) == yb).sum()
        return total, correct

    def _pretrain_batch(self, mae: MAE, b: int, xb: torch.Tensor) -> torch.Tensor:
        if self._prefix is not None:
            latent, mask, restore = self._prefix[b]
        else:
            latent, mask, restore = mae.forward_encoder(xb, self.mask_ratio, self._batches(self.noise)[b])
        pred = mae.forward_decoder(latent, restore).float()
        loss = masked_patch_mse(pred, self.targets[b], mask)
        if self.teacher_pred is not None and self.spec.rcmae_terms == "full":
            loss = loss + self.ckpt.model.gamma * masked_patch_mse(pred, self.teacher_pred[b], mask)
        return loss

    def _logits_batch(self, module: nn.Module, b: int, xb: torch.Tensor) -> torch.Tensor:
        if self.loss_kind == "probe":
            feats = self._prefix[b] if self._prefix is not None else module.features(xb)
            return module.forward_head(feats)
        if self._prefix is not None:
            return module.forward_head(self._prefix[b])
        return module(xb)

    def __call__(self, module: nn.Module) -> torch.Tensor:
        return self._outputs(module)[0]

    @property
    def output_keys(self) -> tuple[str, ...]:
        return ("loss", "acc") if self.has_labels else ("loss",)

    def outputs(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """The loss (and accuracy where labels exist) as tensors: what batched grid points vectorize over."""
        loss, correct = self._outputs(module)
        out = {"loss": loss}
        if correct is not None:
            out["acc"] = correct.float() / len(self.x)
        return out

    @torch.no_grad()
    def evaluate(self, module: nn.Module) -> dict[str, float]:
        loss, correct = self._outputs(module)
        if correct is None:
            return {"loss": float(loss)}
        vals = torch.stack([loss.float(), correct.float() / len(self.x)]).tolist()  # one host read per point
        return {"loss": vals[0], "acc": vals[1]}


def build_objective(
    ckpt: LoadedCheckpoint, spec: ObjectiveSpec = ObjectiveSpec(), device: str | torch.device = "cpu"
) -> Objective:
    """The loss function of a loaded checkpoint over a fixed evaluation subset; moves the model to `device`."""
    if spec.rcmae_terms not in ("full", "mae"):
        raise LandscapeError(f"rcmae_terms must be 'full' or 'mae', got {spec.rcmae_terms!r}")
    if spec.samples < 1:
        raise LandscapeError("the evaluation subset needs at least one image")
    return Objective(ckpt, spec, device)
