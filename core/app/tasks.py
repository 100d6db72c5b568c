"""The dashboard's tasks: plain functions of plain values that return a `fn(ctx)` for `JobRegistry.submit`
(landscapes, flatness reports, training, inspecting a checkpoint, what-if variants), and the cached points they read.
They report progress as i18n message keys (`core.report.i18n.msg`), so the dashboard shows them in the user's language.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.app.profiles import default_flatness_spec, default_surface_spec, nested_levels
from core.app.registry import JobContext, error_line
from core.app.zoo import list_checkpoints
from core.errors import LandscapeError
from core.measure import STAGES, compute_flatness, compute_surface, prepare_checkpoint
from core.models import (
    ProbeConfig,
    Progress,
    TrainConfig,
    is_hub_reference,
    load_checkpoint,
    train_model,
    train_probe,
)
from core.paths import PROJECT_ROOT, cache_root
from core.report import msg
from core.store import Store

log = logging.getLogger(__name__)


def coarse_view(surface: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The finest fully computed sub-grid of a (partial) surface: (xs, ys or None, loss).

    A partial surface is NaN where not computed yet; drawing it as is shows scattered dots. Nested levels (stride
    (n - 1) / (m - 1)) that are complete make a clean coarse picture instead. A complete surface is returned whole.
    """
    xs = np.asarray(surface.xs, dtype=float)
    loss = np.asarray(surface.loss, dtype=float)
    two_d = loss.ndim == 2
    ys = np.asarray(surface.ys, dtype=float) if two_d else None
    n = len(xs)
    if np.isfinite(loss).all() or getattr(surface, "complete", False):
        return xs, ys, loss
    best = None
    m = 3
    while m < n:
        if (n - 1) % (m - 1) == 0:
            step = (n - 1) // (m - 1)
            sub = loss[::step, ::step] if two_d else loss[::step]
            if np.isfinite(sub).all():
                best = step
        m = 2 * m - 1
    if best is None:
        return xs, ys, loss
    return xs[::best], (ys[::best] if two_d else None), (loss[::best, ::best] if two_d else loss[::best])


@dataclass
class SurfaceBatch:
    """Surfaces of several models on one spec (the same directions seed, grid, data and masks).

    Attributes:
        surfaces: label -> Surface (partial ones while running).
        specs: label -> the SurfaceSpec asked for.
        errors: label -> one-line reason a model could not be computed.
    """

    surfaces: dict[str, Any] = field(default_factory=dict)
    specs: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def copy(self) -> SurfaceBatch:
        return SurfaceBatch(dict(self.surfaces), dict(self.specs), dict(self.errors))


def surfaces_into(
    ctx: JobContext,
    specs: dict[str, Any],
    batch: SurfaceBatch,
    lo: float,
    hi: float,
    publish: Callable[[], None],
    max_seconds: float | None = None,
) -> None:
    """Compute every spec coarse level by coarse level (all models at 5x5, then 9x9, ...) into `batch`.

    A level whose estimate exceeds `max_seconds` is not started (the model's error says why)."""
    ready: dict[str, Any] = {}
    for label, spec in specs.items():
        batch.specs[label] = spec
        if spec.loss == "probe":
            ctx.progress(lo, msg("job.probe", model=label))
            try:
                spec = replace(spec, checkpoint=prepare_checkpoint(spec.checkpoint, "probe"))
            except LandscapeError as e:
                batch.errors[label] = error_line(e)
                continue
        ready[label] = spec
    grids = sorted({g for s in ready.values() for g in nested_levels(s.grid)})
    steps = [(g, label) for g in grids for label, s in ready.items() if g in nested_levels(s.grid)]
    # Cost of a step: its new points (a nested level reuses the coarser level's points).
    cost = []
    for g, label in steps:
        levels = nested_levels(ready[label].grid)
        prev = levels[levels.index(g) - 1] if levels.index(g) else 0
        cost.append(g**2 - prev**2 if ready[label].dim == 2 else g - prev)
    total = float(sum(cost)) or 1.0
    done = 0.0
    for (g, label), c in zip(steps, cost, strict=True):
        if label in batch.errors:
            done += c  # a model that failed at a coarser level is skipped
            continue
        if ctx.should_stop():
            raise LandscapeError("stopped")
        spec = replace(ready[label], grid=g)
        base = done
        first: list[int] = []  # points already cached when the level started (reused from coarser levels)

        def prog(d: int, t: int, base=base, c=c, label=label, g=g, first=first) -> None:
            if not first:
                first.append(d)
            share = (d - first[0]) / max(1, t - first[0]) if t > first[0] else 1.0
            f = lo + (hi - lo) * (base + c * share) / total
            ctx.progress(f, msg("job.surface", model=label, grid=g, done=d, total=t))

        def partial(s: Any, label=label) -> None:
            batch.surfaces[label] = s
            publish()

        def estimate(est: Any, label=label, g=g, base=base) -> bool:
            # Say what is coming before the first new point (the estimate times one evaluation).
            f = lo + (hi - lo) * base / total
            ctx.progress(f, msg("job.estimate", model=label, grid=g, points=est.points, seconds=round(est.seconds)))
            return not est.disk_short and (max_seconds is None or est.seconds <= max_seconds)

        try:
            batch.surfaces[label] = compute_surface(
                spec, progress=prog, on_partial=partial, check_stop=ctx.should_stop, confirm=estimate
            )
        except LandscapeError as e:
            if ctx.should_stop():
                raise
            batch.errors[label] = error_line(e)
        publish()
        done += c
    ctx.progress(hi, msg("job.surfaces_done"))


def surfaces_task(specs: dict[str, Any], max_seconds: float | None = None) -> Callable[[JobContext], SurfaceBatch]:
    """A job computing one surface per model (label -> SurfaceSpec), coarse first; partial: a `SurfaceBatch`.

    A model whose estimated time exceeds `max_seconds` is not started (its error says so); None: no limit."""

    def run(ctx: JobContext) -> SurfaceBatch:
        batch = SurfaceBatch()
        surfaces_into(ctx, specs, batch, 0.0, 1.0, lambda: ctx.set_partial(batch.copy()), max_seconds)
        return batch

    return run


@dataclass
class FlatnessBatch:
    """Flatness reports of several models: label -> FlatnessReport, and label -> one-line error."""

    reports: dict[str, Any] = field(default_factory=dict)
    specs: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def copy(self) -> FlatnessBatch:
        return FlatnessBatch(dict(self.reports), dict(self.specs), dict(self.errors))


def flatness_into(
    ctx: JobContext,
    specs: dict[str, Any],
    batch: FlatnessBatch,
    lo: float,
    hi: float,
    publish: Callable[[], None],
    max_seconds: float | None = None,
) -> None:

    n = max(1, len(specs))
    for i, (label, spec) in enumerate(specs.items()):
        batch.specs[label] = spec
        if ctx.should_stop():
            raise LandscapeError("stopped")

        def prog(stage: str, d: int, t: int, i=i, label=label) -> None:
            k = STAGES.index(stage) if stage in STAGES else 0
            f = lo + (hi - lo) * (i + (k + d / max(1, t)) / len(STAGES)) / n
            ctx.progress(f, msg("job.flatness", model=label, stage=stage, done=d, total=t))

        try:
            batch.reports[label] = compute_flatness(
                spec,
                progress=prog,
                check_stop=ctx.should_stop,
                confirm=lambda est: not est.disk_short and (max_seconds is None or est.seconds <= max_seconds),
            )
        except LandscapeError as e:
            if ctx.should_stop():
                raise
            batch.errors[label] = error_line(e)
        publish()


def flatness_task(specs: dict[str, Any], max_seconds: float | None = None) -> Callable[[JobContext], FlatnessBatch]:
    """A job computing a flatness report per model (label -> FlatnessSpec); partial: a `FlatnessBatch`.

    A model whose report is estimated over `max_seconds` is not started (its error says so); None: no limit."""

    def run(ctx: JobContext) -> FlatnessBatch:
        batch = FlatnessBatch()
        flatness_into(ctx, specs, batch, 0.0, 1.0, lambda: ctx.set_partial(batch.copy()), max_seconds)
        return batch

    return run


def train_into(ctx: JobContext, cfg: Any, label: str, lo: float, hi: float, probe: bool = True) -> str:
    """Train (or find) one model and, for encoders, its default probe; returns the checkpoint path."""

    def prog(p: Progress) -> None:
        f = lo + (hi - lo) * 0.95 * p.fraction
        ctx.progress(f, msg("job.train", model=label, epoch=p.epoch, epochs=p.epochs, loss=round(p.loss, 4)))

    ctx.progress(lo, msg("job.train_start", model=label))
    path = train_model(cfg, progress=prog, check_stop=ctx.should_stop)
    if probe and cfg.kind != "sup":
        ctx.progress(lo + (hi - lo) * 0.95, msg("job.probe", model=label))
        train_probe(path, ProbeConfig())
    ctx.progress(hi, msg("job.trained", model=label))
    return str(path)


def train_task(cfg: Any, label: str) -> Callable[[JobContext], str]:
    """A job training one model (`TrainConfig`) plus its default linear probe; result: the checkpoint path."""

    def run(ctx: JobContext) -> str:
        return train_into(ctx, cfg, label, 0.0, 1.0)

    return run


def flatness_points(store: Any = None) -> list[dict]:
    """One dict per checkpoint with cached flatness numbers (every cached flatness result), for the scatter.

    Keys: label, kind, sha256, top_eigenvalue, lambda_min, trace, sharpness, acc_drop (clean minus noisiest
    accuracy), clean_acc (the robustness stage's accuracy without noise, on its evaluation images),
    linear_probe_acc (the checkpoint's linear probe on the whole validation split, the supervised ViT's
    classifier: the Models page's number; `core.report.naming`) and basin_width (from the newest complete 2-D
    own-loss landscape, if any). The newest entry of each stage wins.
    """
    store = store or Store()
    infos = {c.sha256: c for c in list_checkpoints()}
    points: dict[str, dict] = {}
    for e in reversed(store.list("flatness")):  # oldest first: newer entries overwrite
        if not e.finished or not isinstance(e.key, dict):
            continue
        obj = e.key.get("objective") or {}
        sha = obj.get("checkpoint")
        value = ((e.meta or {}).get("meta") or {}).get("value")
        if not sha or not isinstance(value, dict) or obj.get("rcmae_terms", "full") != "full":
            continue  # (RC-MAE's MAE-term numbers, for the same-function comparison, are not its own objective)
        p = points.setdefault(sha, {"sha256": sha})
        stage = e.key.get("stage")
        if stage == "eigenvalues" and value.get("values"):
            p["top_eigenvalue"] = float(value["values"][0])
            p["lambda_min"] = value.get("lambda_min")
        elif stage == "trace":
            p["trace"] = value.get("estimate")
        elif stage == "sharpness":
            p["sharpness"] = value.get("average")
        elif stage == "robustness":
            acc = value.get("acc_mean")
            if acc:
                p["clean_acc"] = value.get("clean_acc", acc[0])
                p["acc_drop"] = float(acc[0] - acc[-1])
    for e in reversed(store.list("landscape")):
        meta = ((e.meta or {}).get("meta") or {}) if e.finished else {}
        sha = ((meta.get("objective") or {}) if isinstance(meta, dict) else {}).get("checkpoint")
        spec = meta.get("spec") or {}
        obj = (meta.get("objective") or {}) if meta else {}
        terms = {spec.get("rcmae_terms", "full"), obj.get("rcmae_terms", "full")}
        own = spec.get("loss") == "own" and terms == {"full"}
        if sha in points and spec.get("dim") == 2 and own:
            bw = (meta.get("metrics") or {}).get("basin_width")
            if bw is not None:
                points[sha]["basin_width"] = float(bw)
    out = []
    for sha, p in points.items():
        info = infos.get(sha)
        if info is None:
            continue  # its checkpoint was deleted
        p["label"], p["kind"] = info.label, info.kind
        p["linear_probe_acc"] = info.probe_acc  # one measure on every page: never mixed with clean_acc
        out.append(p)
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoints from server paths


def allowed_roots() -> list[Path]:
    """Folders a dashboard user may load checkpoints from: the cache, the project, and env
    `LANDSCAPE_ALLOWED_ROOTS` (os.pathsep-separated)."""
    roots = [cache_root(), PROJECT_ROOT]
    for r in os.environ.get("LANDSCAPE_ALLOWED_ROOTS", "").split(os.pathsep):
        if r.strip():
            roots.append(Path(r.strip()).expanduser())
    out: list[Path] = []
    for r in roots:
        r = r.resolve()
        if r not in out:
            out.append(r)
    return out


def confined_path(text: str) -> Path:
    """The checkpoint file (or transformers / timm model folder) a user typed, resolved (symlinks followed) and
    checked to lie inside an allowed root.

    Raises:
        LandscapeError: empty, outside every allowed root, missing, or neither a file nor a model folder.
    """
    text = (text or "").strip()
    if not text:
        raise LandscapeError("no path given")
    if "\x00" in text:
        raise LandscapeError("the path contains a NUL character")
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = PROJECT_ROOT / p
    real = p.resolve()
    roots = allowed_roots()
    if not any(real == r or real.is_relative_to(r) for r in roots):
        where = ", ".join(str(r) for r in roots)
        raise LandscapeError(
            f"{real} is outside the allowed folders ({where}); add its folder to LANDSCAPE_ALLOWED_ROOTS"
        )
    if not real.exists():
        raise LandscapeError(f"{real} does not exist")
    if not real.is_file() and not (real / "config.json").is_file():
        raise LandscapeError(f"{real} is not a file (nor a model folder with a config.json)")
    return real


def typed_checkpoint(text: str) -> str:
    """What a user typed as a checkpoint: a hub id (`hf:org/name`, `timm:name`; read from the Hugging Face cache)
    as it is, else the confined path of a file or model folder (`confined_path`)."""
    text = (text or "").strip()
    return text if is_hub_reference(text) else str(confined_path(text))


@dataclass(frozen=True)
class Inspection:
    """What a checkpoint file is: its kind, the describe() text and the resolved path."""

    path: str
    kind: str
    description: str


def inspect_task(path: str) -> Callable[[JobContext], Inspection]:
    """A job loading a checkpoint (confined to the allowed roots) and describing it."""

    def run(ctx: JobContext) -> Inspection:

        real = typed_checkpoint(path)
        ctx.progress(0.1, msg("job.loading", name=Path(real).name))
        ck = load_checkpoint(real)
        return Inspection(real, ck.kind, ck.describe())

    return run


# ----------------------------------------------------------------------------------------------------------------------
# What-if: a variant of a trained model, compared with its base on the same directions, data and masks


def variant_config(train: dict, **changes: Any):
    """The TrainConfig of a checkpoint's recorded `train` dict with some fields changed (unknown keys dropped).

    Raises:
        LandscapeError: the checkpoint has no training record, or a changed value is invalid.
    """
    if not train or "kind" not in train:
        raise LandscapeError("this checkpoint has no training record (not trained here), so it cannot be retrained")
    names = {f.name for f in fields(TrainConfig)}
    base = {k: v for k, v in train.items() if k in names}
    return TrainConfig(**(base | {k: v for k, v in changes.items() if k in names}))


@dataclass
class WhatIfResult:
    """A base model and its variant: paths, labels, surfaces on one spec, flatness reports."""

    paths: dict[str, str] = field(default_factory=dict)
    surfaces: SurfaceBatch = field(default_factory=SurfaceBatch)
    flatness: FlatnessBatch = field(default_factory=FlatnessBatch)
    stage: str = "train"

    def copy(self) -> WhatIfResult:
        return WhatIfResult(dict(self.paths), self.surfaces.copy(), self.flatness.copy(), self.stage)


def whatif_task(
    base_path: str,
    variant: Any,
    labels: tuple[str, str],
    surface: dict | None = None,
    flatness: dict | None = None,
) -> Callable[[JobContext], WhatIfResult]:
    """A job training `variant` (a TrainConfig) and comparing it with the checkpoint at `base_path`.

    Both get the same landscape spec (direction seed, grid, images, masks) and the same flatness spec, so the
    pictures differ only by the weights.

    Args:
        base_path: the base checkpoint.
        variant: the variant's TrainConfig.
        labels: (base label, variant label).
        surface: SurfaceSpec overrides (default: the overview's landscape).
        flatness: FlatnessSpec overrides; None skips flatness.
    """

    def run(ctx: JobContext) -> WhatIfResult:
        out = WhatIfResult()
        base_label, var_label = labels
        out.paths[base_label] = str(base_path)
        out.paths[var_label] = train_into(ctx, variant, var_label, 0.0, 0.6)
        out.stage = "landscapes"
        ctx.set_partial(out.copy())
        specs = {lab: default_surface_spec(p, **(surface or {})) for lab, p in out.paths.items()}
        hi = 0.85 if flatness is not None else 1.0
        surfaces_into(ctx, specs, out.surfaces, 0.6, hi, lambda: ctx.set_partial(out.copy()))
        if flatness is not None:
            out.stage = "flatness"
            fspecs = {lab: default_flatness_spec(p, **flatness) for lab, p in out.paths.items()}
            flatness_into(ctx, fspecs, out.flatness, hi, 1.0, lambda: ctx.set_partial(out.copy()))
        out.stage = "done"
        return out

    return run
