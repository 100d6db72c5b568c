"""Accuracy of any classifier on the same validation images under common corruptions (`core.measure.corruptions`),
cached by content hash and resumable.

A classifier is a checkpoint with a head: a supervised ViT (the default Sup-ViT, any fine-tuned MAE / RC-MAE or
scratch run of `core.models.finetune`, all of kind `sup`) or a linear probe on any encoder (kind `probe`). An MAE or
RC-MAE checkpoint has no head and is refused in one line.

Every model is evaluated on the same images: the first `samples` of a seeded permutation of the validation split
(`core.models.data.eval_subset`, `data_seed`), corrupted in pixel space (the standardization undone, the corruption
applied in [0, 1], the standardization redone) with the draws of `seed`. The cache key holds the checkpoint's content
hash, the data's content, the images, the seed, and every corruption with the physical levels of the severities
asked for: changing the suite, a level or the severities is a new entry. Each (corruption, severity) cell is logged
as it finishes (`core.store` point logs): a killed run resumes with the cells left.

Numbers (`InputRobustness`): clean accuracy; accuracy and cross-entropy per corruption x severity; the mean
corruption accuracy (over every cell); the relative drop (clean - mean corrupted) / clean; per corruption the same.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from core.device import pick_device
from core.errors import LandscapeError
from core.measure.corruptions import (
    CORRUPTIONS,
    NAMES,
    SEVERITIES,
    check_names,
    check_severity,
    corrupt,
    from_pixels,
    to_pixels,
)
from core.measure.surfaces import Estimate, available_memory
from core.models import LoadedCheckpoint, code_version, dataset_of, eval_subset, load_checkpoint
from core.store import Store

KIND = "input_robustness"  # the store kind
FORMAT_VERSION = 1  # bump when the evaluation changes the numbers (it is part of the key)
CLASSIFIER_KINDS = ("sup", "probe")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class InputRobustnessSpec:
    """What to evaluate: a classifier checkpoint, the corruptions, severities, images and draws."""

    checkpoint: str
    corruptions: tuple[str, ...] = NAMES
    severities: tuple[int, ...] = SEVERITIES
    samples: int = 512  # validation images (the whole split when smaller: digits has 360)
    data: str | None = None  # data spec; None: the checkpoint's own
    data_seed: int = 0  # which images
    seed: int = 0  # the corruptions' random draws
    batch_size: int = 256  # images per forward; not part of the key
    device: str = "auto"  # not part of the key

    def __post_init__(self):
        object.__setattr__(self, "corruptions", check_names(self.corruptions))
        sev = tuple(self.severities)
        if not sev:
            raise LandscapeError("no severity given: use 1 2 3 4 5")
        for s in sev:
            if check_severity(s) == 0:
                raise LandscapeError("severity 0 is the clean image, always measured: give severities 1 to 5")
        if len(set(sev)) != len(sev):
            raise LandscapeError(f"a severity is named twice in {sev}")
        object.__setattr__(self, "severities", tuple(sorted(sev)))
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise LandscapeError(f"samples must be a positive number of images, got {self.samples!r}")

    @property
    def cells(self) -> list[tuple[str, int]]:
        """(corruption, severity) in the order they are computed and logged."""
        return [(n, s) for n in self.corruptions for s in self.severities]


@dataclass
class InputRobustness:
    """Accuracy under corruptions of one classifier (plain values; `acc[i][j]`: corruption i, severity j)."""

    corruptions: list[str]
    severities: list[int]
    levels: list[list[float]]  # the physical level of each (corruption, severity)
    units: list[str]
    clean_acc: float
    clean_loss: float
    acc: list[list[float]]
    loss: list[list[float]]
    n_images: int
    meta: dict = field(default_factory=dict)

    @property
    def mean_acc(self) -> float:
        """Mean corruption accuracy: the mean over every (corruption, severity) cell."""
        return float(np.mean(self.acc)) if self.acc else math.nan

    @property
    def relative_drop(self) -> float:
        """(clean - mean corrupted) / clean; NaN when the clean accuracy is 0."""
        return (self.clean_acc - self.mean_acc) / self.clean_acc if self.clean_acc > 0 else math.nan

    @property
    def kept(self) -> float:
        """Share of the clean accuracy kept under corruptions: 1 - relative drop."""
        return 1.0 - self.relative_drop

    def corruption_acc(self, name: str) -> list[float]:
        return list(self.acc[self.corruptions.index(name)])

    def corruption_drop(self, name: str) -> float:
        """The relative drop under one corruption (mean over its severities)."""
        a = float(np.mean(self.corruption_acc(name)))
        return (self.clean_acc - a) / self.clean_acc if self.clean_acc > 0 else math.nan

    def numbers(self) -> dict:
        """The plain numbers a study keeps per run: clean / mean accuracy, relative drop, accuracy per cell."""
        return {
            "clean_acc": self.clean_acc,
            "mean_acc": self.mean_acc,
            "relative_drop": self.relative_drop,
            "n_images": self.n_images,
            "severities": list(self.severities),
            "acc": {n: self.corruption_acc(n) for n in self.corruptions},
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d |= {"mean_acc": self.mean_acc, "relative_drop": self.relative_drop}
        return d

    def format_table(self) -> str:
        """Accuracy per corruption (rows) and severity (columns), the level in its unit, then the summary."""
        head = f"{'corruption':>15} | " + " | ".join(f"{'sev ' + str(s):>6}" for s in self.severities)
        lines = [
            f"accuracy under input corruptions: {self.n_images} validation images, clean accuracy {self.clean_acc:.4f}",
            head + " | rel. drop | levels (unit)",
        ]
        for i, n in enumerate(self.corruptions):
            cells = " | ".join(f"{a:>6.3f}" for a in self.acc[i])
            levels = " ".join(f"{v:g}" for v in self.levels[i])
            lines.append(f"{n:>15} | {cells} | {self.corruption_drop(n):>+9.3f} | {levels} ({self.units[i]})")
        lines += [
            "",
            f"mean corruption accuracy {self.mean_acc:.4f}; relative drop (clean - mean) / clean "
            f"{self.relative_drop:+.4f}; kept {self.kept:.1%} of the clean accuracy",
        ]
        return "\n".join(lines)


def require_classifier(ckpt: LoadedCheckpoint) -> None:
    """A one-line error for a checkpoint without a classification head."""
    if ckpt.kind not in CLASSIFIER_KINDS:
        raise LandscapeError(
            f"{ckpt.path.name} is a {ckpt.kind} checkpoint without a classifier: fine-tune it "
            "(python -m core finetune CKPT) or train a linear probe on it (python -m core probe CKPT)"
        )


def robustness_key(spec: InputRobustnessSpec, ckpt: LoadedCheckpoint, fingerprint: str, n_images: int) -> dict:
    """Every input that changes the numbers: the checkpoint's content, the data, the images, the draws, and each
    corruption with the physical levels of the severities asked for."""
    return {
        "v": FORMAT_VERSION,
        "checkpoint": ckpt.sha256,
        "kind": ckpt.kind,
        "data": fingerprint,
        "split": "val",
        "images": n_images,
        "data_seed": spec.data_seed,
        "seed": spec.seed,
        "severities": list(spec.severities),
        "suite": [
            {"name": n, "levels": [CORRUPTIONS[n].levels[s - 1] for s in spec.severities]} for n in spec.corruptions
        ],
    }


@torch.no_grad()
def _evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, device) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of the model on x, y, in batches."""
    correct, total = 0, 0.0
    for i in range(0, len(x), batch):
        xb, yb = x[i : i + batch].to(device), y[i : i + batch].to(device)
        logits = model(xb).float()
        total += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return correct / len(x), total / len(x)


class _Prepared:
    """The model, images and key of one spec (loading them is most of a cached lookup's cost)."""

    def __init__(self, spec: InputRobustnessSpec):
        self.ckpt = load_checkpoint(spec.checkpoint)
        require_classifier(self.ckpt)
        ds = dataset_of(self.ckpt, spec.data)
        self.x, self.y = eval_subset(ds, spec.samples, seed=spec.data_seed)
        self.mean, self.std = ds.mean, ds.std
        self.key = robustness_key(spec, self.ckpt, ds.fingerprint(), len(self.y))


def estimate_input_robustness(spec: InputRobustnessSpec, model=None, prep: _Prepared | None = None) -> Estimate:
    """Rough cost before it runs: one timed pass over the images (clean) times the cells, plus the corruptions."""
    prep = prep or _Prepared(spec)
    device = pick_device(spec.device)
    model = model or prep.ckpt.model.eval().to(device)
    t0 = time.perf_counter()
    _evaluate(model, prep.x, prep.y, spec.batch_size, device)
    t_eval = time.perf_counter() - t0
    t0 = time.perf_counter()
    corrupt(to_pixels(prep.x[:64], prep.mean, prep.std), "rotate", 1, spec.seed)
    t_corrupt = (time.perf_counter() - t0) * len(prep.x) / min(64, len(prep.x))
    n = len(spec.cells)
    params = sum(p.numel() for p in model.parameters())
    need = params * 4 + prep.x.numel() * 4 * 3
    return Estimate(n + 1, (n + 1) * t_eval + n * t_corrupt, int(need), available_memory(device))


def compute_input_robustness(
    spec: InputRobustnessSpec,
    *,
    store: Store | None = None,
    progress: Progress | None = None,
    check_stop: Callable[[], bool] | None = None,
    cached_only: bool = False,
    announce: Callable[[Estimate], None] | None = None,
) -> InputRobustness | None:
    """Accuracy under every (corruption, severity) of the spec, from the cache or computed (and cached).

    Args:
        spec: what to evaluate.
        store: the cache (default `Store()`).
        progress: progress(cells done, cells in all).
        check_stop: polled after each cell; True stops with a LandscapeError (finished cells stay logged).
        cached_only: return the cached result or None; compute nothing.
        announce: called with the cost `Estimate` before an uncached evaluation starts (the CLI prints it).

    Raises:
        LandscapeError: a checkpoint without a classifier, an unknown corruption, data that does not fit the model.
    """
    store = store or Store()
    prep = _Prepared(spec)
    entry = store.entry(KIND, prep.key)
    res = entry.result()
    if res is None and cached_only:
        return None
    if res is None:
        device = pick_device(spec.device)
        model = prep.ckpt.model.eval().to(device)
        if announce is not None:
            announce(estimate_input_robustness(spec, model, prep))
        with entry.lock():
            res = entry.result()
            if res is None:
                _compute(spec, prep, model, entry, device, progress, check_stop)
                res = entry.result()
    out = _from_result(spec, res)
    out.meta["entry"] = str(entry.path)  # the cached result's folder (the CLI prints it last)
    return out


def _compute(spec, prep: _Prepared, model, entry, device, progress, check_stop) -> None:
    t0 = time.perf_counter()
    done = entry.load_points()  # cells of a killed run
    cells = spec.cells
    clean_acc, clean_loss = _evaluate(model, prep.x, prep.y, spec.batch_size, device)
    pixels = to_pixels(prep.x, prep.mean, prep.std)
    reused = sum(1 for i in range(len(cells)) if i in done)
    for i, (name, sev) in enumerate(cells):
        if i not in done:
            xc = from_pixels(corrupt(pixels, name, sev, spec.seed), prep.mean, prep.std)
            acc, loss = _evaluate(model, xc, prep.y, spec.batch_size, device)
            done[i] = {"acc": acc, "loss": loss}
            entry.append_points([(i, done[i])])
        if progress is not None:
            progress(i + 1, len(cells))
        if check_stop is not None and check_stop():
            entry.flush_points()
            raise LandscapeError("stopped; finished cells are kept, rerun to continue")
    shape = (len(spec.corruptions), len(spec.severities))
    acc = np.array([done[i]["acc"] for i in range(len(cells))], dtype=np.float64).reshape(shape)
    loss = np.array([done[i]["loss"] for i in range(len(cells))], dtype=np.float64).reshape(shape)
    meta = {
        "clean_acc": clean_acc,
        "clean_loss": clean_loss,
        "n_images": len(prep.y),
        "model_kind": prep.ckpt.kind,
        "checkpoint": str(prep.ckpt.path),
        "seconds": time.perf_counter() - t0,
        "reused_cells": reused,
    }
    entry.save_result({"acc": acc, "loss": loss}, meta, code_version=code_version())
    entry.clear_points()


def _from_result(spec: InputRobustnessSpec, res) -> InputRobustness:
    m = res.meta
    return InputRobustness(
        corruptions=list(spec.corruptions),
        severities=list(spec.severities),
        levels=[[float(CORRUPTIONS[n].levels[s - 1]) for s in spec.severities] for n in spec.corruptions],
        units=[CORRUPTIONS[n].unit for n in spec.corruptions],
        clean_acc=float(m["clean_acc"]),
        clean_loss=float(m["clean_loss"]),
        acc=np.asarray(res.arrays["acc"], dtype=float).tolist(),
        loss=np.asarray(res.arrays["loss"], dtype=float).tolist(),
        n_images=int(m["n_images"]),
        meta={k: m.get(k) for k in ("model_kind", "checkpoint", "seconds", "reused_cells")},
    )
