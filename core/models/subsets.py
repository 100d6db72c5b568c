"""Labeled subsets for fine-tuning: class-balanced, seeded and nested across budgets.

`labeled_subset(labels, per_class, seed)` picks `per_class` training images of every class. Each class's images are
put in one seeded random order (`class_orders`) and a budget takes the first `per_class` of every class, so for one
seed the 10-per-class subset lies inside the 20-per-class one, which lies inside the 50-per-class one, and so on.
The subset depends only on the labels, the budget and the seed: every model kind (pre-trained or from scratch)
fine-tuned with the same (budget, seed) on the same data sees the same images. `per_class=None` is every training
image. The images come back interleaved by rank (one of each class, then a second of each class, ...), so any
prefix of the subset is as balanced as it can be.
"""

from __future__ import annotations

import numpy as np
import torch

from core.errors import LandscapeError
from core.store import content_hash


def class_orders(labels: torch.Tensor, seed: int) -> list[np.ndarray]:
    """Per class (in label order), that class's indices into `labels` in one seeded random order."""
    y = np.asarray(labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EB5E7]))
    return [rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)]


def check_budget(labels: torch.Tensor, per_class: int | None) -> None:
    """A one-line error for a budget that is not a positive whole number or is larger than the smallest class."""
    if per_class is None:
        return
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise LandscapeError(f"labels per class must be a positive whole number or all (got {per_class!r})")
    y = np.asarray(labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels, dtype=np.int64)
    classes, counts = np.unique(y, return_counts=True)
    small = int(np.argmin(counts))
    if per_class > counts[small]:
        raise LandscapeError(
            f"{per_class} labels per class is more than the data has: class {int(classes[small])} has only "
            f"{int(counts[small])} training images"
        )


def labeled_subset(labels: torch.Tensor, per_class: int | None, seed: int) -> torch.Tensor:
    """Indices (int64) of a class-balanced labeled subset of the training images.

    Args:
        labels: (N,) training labels.
        per_class: images per class; None takes every training image (in the same interleaved order).
        seed: chooses the images; the same seed gives nested subsets across budgets.

    Raises:
        LandscapeError: a budget that is not positive or larger than the smallest class.
    """
    check_budget(labels, per_class)
    orders = class_orders(labels, seed)
    longest = max(len(o) for o in orders)
    k = longest if per_class is None else per_class
    picked = [o[r] for r in range(k) for o in orders if r < len(o)]
    return torch.as_tensor(np.asarray(picked, dtype=np.int64))


def describe_subset(labels: torch.Tensor, idx: torch.Tensor, per_class: int | None, seed: int) -> dict:
    """What a checkpoint records about its labeled subset (plain values)."""
    counts = np.bincount(np.asarray(labels[idx].cpu().numpy(), dtype=np.int64))
    return {
        "labels_per_class": per_class,
        "seed": int(seed),
        "n_labels": int(len(idx)),
        "per_class_counts": [int(c) for c in counts],
        "indices_sha256": content_hash([int(i) for i in idx.tolist()]),
        "rule": "class-balanced; per class the first N of one seeded order (nested across budgets)",
    }


def recorded_subset(meta: dict, labels: torch.Tensor, name: str = "checkpoint") -> torch.Tensor:
    """The labeled subset a fine-tuned checkpoint recorded (`meta["finetune"]["subset"]`), rebuilt on `labels`.

    Raises:
        LandscapeError: the checkpoint has no labeled subset, or these labels give other images than it was trained
            on (other data, or another split).
    """
    sub = (meta.get("finetune") or {}).get("subset") if isinstance(meta, dict) else None
    if not isinstance(sub, dict) or "seed" not in sub:
        raise LandscapeError(f"{name} was not fine-tuned on a labeled subset (split 'labeled' needs a fine-tuned ViT)")
    idx = labeled_subset(labels, sub.get("labels_per_class"), int(sub["seed"]))
    if sub.get("indices_sha256") and content_hash([int(i) for i in idx.tolist()]) != sub["indices_sha256"]:
        raise LandscapeError(f"{name}: this data gives other labeled images than the checkpoint was fine-tuned on")
    return idx


def labeled_eval_subset(
    meta: dict, x: torch.Tensor, y: torch.Tensor, n: int, seed: int = 0, name: str = "checkpoint"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `n` images of a fine-tuned checkpoint's labeled subset (training images `x`, labels `y`): the first n
    of a seeded permutation of the subset, as `core.models.data.eval_subset` does for a whole split."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LandscapeError(f"the evaluation subset needs at least 1 image (got n={n!r})")
    idx = recorded_subset(meta, y, name)
    order = torch.randperm(len(idx), generator=torch.Generator().manual_seed(int(seed)))[: min(n, len(idx))]
    pick = idx[order]
    return x.index_select(0, pick).contiguous(), y.index_select(0, pick).contiguous()
