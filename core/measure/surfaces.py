"""Cached loss surfaces of checkpoints: the one entry point the CLI, the dashboard and torchrun share.

`compute_surface(SurfaceSpec(...))` loads the checkpoint, builds the objective (fixed data and masks), draws the
directions, evaluates the grid coarse-to-fine, and keeps everything in the store:
- every finished point is appended to the entry's log at once, so a killed run loses only the point in flight and
  the same call resumes (`meta["n_reused"]` counts points taken from the cache);
- grids of 2**k + 1 points over one span are nested: their points sit on a shared lattice of 1025 points per axis,
  so a 9x9 request reuses a finished (or half-finished) 5x5 of the same family and computes only the new points;
- the finished surface is saved atomically; a second identical request returns it at once;
- under `torchrun` each rank takes every world_size-th lattice point, rank 0 assembles and saves the result.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.device import pick_device
from core.errors import LandscapeError, free_bytes, human_bytes
from core.geometry import (
    IGNORES,
    NORMS,
    SCOPES,
    attention_for_second_derivatives,
    evaluate_points,
    hessian_eigenvalues,
    interpolation_direction,
    line_metrics,
    orthogonalize,
    pca_directions,
    plane_through,
    random_direction,
    scale,
    select_parameters,
    surface_metrics,
)
from core.measure.lattice import LatticeJob, compute_lattice, lattice_size
from core.measure.lattice import family_hash as family_hash  # re-exported: the surface family (nested grid sizes)
from core.measure.lattice import lattice_coords as lattice_coords  # re-exported: a grid's lattice coordinates
from core.models import (
    LoadedCheckpoint,
    Objective,
    ObjectiveFields,
    ObjectiveSpec,
    ProbeConfig,
    build_objective,
    checkpoint_id,
    load_checkpoint,
    train_probe,
)
from core.store import Store, atomic_write_bytes, ensure_folder

MAX_GRID = {1: 1025, 2: 129}  # beyond this a grid is refused: 129**2 = 16,641 points is hours for ViT-B
DIRECTION_METHODS = ("random", "pca", "hessian", "interpolate", "plane")
SECOND_AXIS_OFFSET = 7919  # the second random axis uses seed + this: a different, equally fixed stream

PartialFn = Callable[["Surface"], None]


@dataclass(frozen=True)
class SurfaceSpec(ObjectiveFields):
    """One loss surface (2-D) or curve (1-D) of one checkpoint; the objective's fields (loss, samples, data_seed,
    mask_seed, data, split, rcmae_terms) are inherited, keyword-only."""

    checkpoint: str  # path to any loadable checkpoint
    dim: int = 2  # 1: a curve along d1; 2: a surface over (d1, d2)
    grid: int = 21  # points per axis; 2**k + 1 (5, 9, 17, 33, 65) refine each other without recomputation
    span: float = 1.0  # coordinates run over [-span, span] in units of the (filter-normalized) directions
    directions: str = "random"  # random: seeded Gaussian; pca: training-trajectory axes; hessian: top-2 eigenvectors;
    # interpolate: the line to others[0] (at coordinate 1); plane: through others[0] (1, 0) and others[1] (0, 1)
    others: tuple[str, ...] = ()  # checkpoints of the same architecture for interpolate / plane
    norm: str = "filter"  # filter | layer | weight | none (Li et al. 2018)
    ignore: str = "biasbn"  # biasbn: biases and norm scales do not move; none: they move too
    scope: str = "all"  # all | encoder | decoder | head: which parameters move
    include: tuple[str, ...] = ()  # only parameters whose names match (substring or glob)
    exclude: tuple[str, ...] = ()  # e.g. ("pos_embed", "cls_token")
    seed: int = 0  # direction seed: the same seed gives the same raw directions for the same architecture
    orthogonal: bool = False  # make d2 orthogonal to d1
    dtype: str = "fp32"  # fp32 | bf16 (autocast; wide plots only)
    device: str = "auto"  # auto | cpu | cuda; not part of the cache key
    batch_points: int = 0  # grid points per vectorized forward; 0: 16 on CUDA, 1 on CPU (no gain measured there)

    def validate(self) -> None:
        if self.dim not in (1, 2):
            raise LandscapeError(f"dim must be 1 or 2, got {self.dim}")
        if not 3 <= self.grid <= MAX_GRID[self.dim]:
            raise LandscapeError(
                f"a {self.dim}-D grid must have 3 to {MAX_GRID[self.dim]} points per axis, got {self.grid}"
            )
        if not (self.span > 0 and np.isfinite(self.span)):
            raise LandscapeError(f"span must be a positive number, got {self.span}")
        if self.norm not in NORMS:
            raise LandscapeError(f"unknown normalization {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.ignore not in IGNORES:
            raise LandscapeError(f"unknown ignore rule {self.ignore!r}; choose one of {', '.join(IGNORES)}")
        if self.scope not in SCOPES:
            raise LandscapeError(f"unknown scope {self.scope!r}; choose one of {', '.join(SCOPES)}")
        if self.directions not in DIRECTION_METHODS:
            raise LandscapeError(
                f"unknown directions {self.directions!r}; choose one of {', '.join(DIRECTION_METHODS)}"
            )
        need = {"interpolate": (1, 1), "plane": (2, 2)}.get(self.directions)
        if need is not None and (len(self.others), self.dim) != need:
            raise LandscapeError(
                f"directions={self.directions} needs dim {need[1]} and {need[0]} other checkpoint(s) (--other)"
            )
        if self.dtype not in ("fp32", "bf16"):
            raise LandscapeError(f"dtype must be fp32 or bf16, got {self.dtype!r}")

    def objective_spec(self, **overrides: Any) -> ObjectiveSpec:
        """The objective's spec: autocast for dtype bf16, and the moved scope as `prefix_scope` (the unmoved prefix of
        the network is then computed once)."""
        return super().objective_spec(**({"autocast": self.dtype == "bf16", "prefix_scope": self.scope} | overrides))


@dataclass
class Surface:
    """A (possibly partial) loss surface.

    Attributes:
        xs: (nx,) coordinates along d1. ys: (ny,) along d2 (empty for a curve).
        loss: (ny, nx) for a surface, (nx,) for a curve; NaN where not computed yet or not finite.
        acc: same shape as loss, or None when the loss has no labels.
        meta: every input plus n_points, n_reused, n_nan, n_done, timing, the objective's key.
        metrics: landscape numbers (core.geometry.surface_metrics) once complete.
        path: the cache entry's folder.
        path_coords: (S, 2) projected training trajectory for PCA directions, else None.
    """

    xs: np.ndarray
    ys: np.ndarray
    loss: np.ndarray
    acc: np.ndarray | None
    meta: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    path_coords: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete"))


@dataclass(frozen=True)
class Estimate:
    """What a surface will cost before it starts (rough: one timed evaluation times the points left).

    Attributes:
        points: points still to compute (cached ones excluded).
        seconds: estimated wall time on this machine and device.
        bytes: estimated peak memory of the computation (weights, directions, one batch of activations).
        available: memory available now on the device (bytes), or None if unknown.
        disk_bytes: bytes the job will write to the cache at its peak (progress logs or journal plus the result).
        disk_free: free bytes on the cache's filesystem now, or None if unknown (or not asked).
    """

    points: int
    seconds: float
    bytes: int
    available: int | None
    disk_bytes: int = 0  # 0: not estimated (a caller that only times the work)
    disk_free: int | None = None

    @property
    def disk_short(self) -> bool:
        """Whether what the job will write exceeds the free space in the cache (it would stop with DiskFull)."""
        return self.disk_free is not None and self.disk_bytes > self.disk_free

    def with_disk(self, need: int, folder: str | os.PathLike) -> Estimate:
        """This estimate with the disk counted: `need` bytes to write against the free space under `folder`."""
        return replace(self, disk_bytes=int(need), disk_free=free_bytes(folder))

    def describe(self) -> str:

        mem = f"~{self.bytes / 2**30:.2f} GiB"
        if self.available is not None:
            mem += f" of {self.available / 2**30:.1f} GiB available"
        if self.disk_bytes:
            mem += f", disk ~{human_bytes(self.disk_bytes)}"
            if self.disk_free is not None:
                mem += f" of {human_bytes(self.disk_free)} free"
        return f"{self.points} points, ~{human_seconds(self.seconds)}, {mem}"


# Bytes on disk per point: its line in a progress log (~60 B of JSON) and its values in the result (loss, acc, id
# as float64 / int64) plus the result's fixed part (key, meta with the spec and metrics, npz headers).
POINT_LOG_BYTES, POINT_RESULT_BYTES, RESULT_FIXED_BYTES = 64, 24, 16 << 10


def surface_disk_bytes(new_points: int, total_points: int) -> int:
    """What a surface writes at its peak: the progress lines of the new points plus the finished result."""
    return new_points * POINT_LOG_BYTES + total_points * POINT_RESULT_BYTES + RESULT_FIXED_BYTES


def human_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


def available_memory(device: torch.device) -> int | None:
    """Free memory on the device now (CUDA: mem_get_info; CPU: MemAvailable from /proc/meminfo)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def estimate_cost(objective: Objective, n_directions: int, points: int, world: int = 1) -> Estimate:
    """Time one evaluation (the centre) and extrapolate; estimate memory from the shapes."""
    objective.evaluate(objective.module)  # warm-up: the first call pays for allocations and kernel selection
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        objective.evaluate(objective.module)
        times.append(time.perf_counter() - t0)
    per_point = min(times)
    n_params, acts, data = working_memory(objective)
    # Weights + a copy of the moving ones + the directions, fp32; one batch of activations; data and prefixes.
    need = int(n_params * 4 * (2 + n_directions) + acts + data)
    return Estimate(points, per_point * points / max(1, world), need, available_memory(objective.device))


def working_memory(objective: Objective) -> tuple[int, int, int]:
    """What cost estimates start from: (parameters, bytes of one batch of activations, bytes of the data).

    Activations: the widest layer (a few live tensors) plus the attention maps of one batch, fp32; data: the
    evaluation images and their cached targets / prefixes."""
    cfg = objective.ckpt.config
    n_params = sum(p.numel() for p in objective.module.parameters())
    batch = min(objective.batch_size, len(objective.x))
    tokens = cfg.num_patches + 1
    width = max(cfg.embed_dim * cfg.mlp_ratio, cfg.embed_dim)
    acts = batch * tokens * width * 4 * 6 + batch * cfg.num_heads * tokens**2 * 4 * 2
    return n_params, int(acts), objective.x.numel() * 4 * 3


# --------------------------------------------------------------------------------------------------------------------


def surface_key(spec: SurfaceSpec, objective: Objective) -> dict:
    """Everything that changes the numbers: the objective (checkpoint hash, data, masks), directions, grid."""
    d = asdict(spec)
    # The objective's fields are keyed by what they resolve to (`objective.key()`), the checkpoint by its content.
    for k in ("checkpoint", *(f.name for f in fields(ObjectiveFields)), "device", "batch_points"):
        d.pop(k)
    d["lattice"] = lattice_size(spec.grid)
    d["others"] = [checkpoint_id(o) for o in spec.others]  # the other checkpoints by content (files, folders, hub ids)
    return {"v": 1, "objective": objective.key(), **d}


def make_directions(
    spec: SurfaceSpec, ckpt: LoadedCheckpoint, objective: Objective
) -> tuple[list[dict[str, torch.Tensor]], np.ndarray | None]:
    """The axes of the slice (on the module's device) and, for PCA, the projected trajectory."""
    module = objective.module
    kw = dict(norm=spec.norm, ignore=spec.ignore, scope=spec.scope, include=spec.include, exclude=spec.exclude)
    if spec.directions == "random":
        dirs = [random_direction(module, spec.seed, **kw)]
        if spec.dim == 2:
            d2 = random_direction(module, spec.seed + SECOND_AXIS_OFFSET, **kw)
            dirs.append(orthogonalize(d2, dirs[0]) if spec.orthogonal else d2)
        return dirs, None
    if spec.directions == "hessian":
        return _hessian_directions(spec, objective), None
    if spec.directions in ("interpolate", "plane"):
        return _checkpoint_directions(spec, module), None
    snaps = [sd for _, sd in ckpt.snapshots]
    if len(snaps) < 3:
        raise LandscapeError(f"{ckpt.path.name} has {len(snaps)} weight snapshots; PCA directions need at least 3")
    dev = next(module.parameters()).device
    center = {k: p.detach() for k, p in module.named_parameters() if p.requires_grad}
    snaps = [{k: v.to(dev) for k, v in s.items() if k in center} for s in snaps]
    d1, d2, path, _ = pca_directions(snaps, center=center)
    return ([d1, d2] if spec.dim == 2 else [d1]), path


def _checkpoint_directions(spec: SurfaceSpec, module: torch.nn.Module) -> list[dict[str, torch.Tensor]]:
    """The line to another checkpoint, or the plane through two others (their weights at coordinate 1)."""
    w0 = {n: p.detach() for n, p in module.named_parameters() if p.requires_grad}
    others = []
    for path in spec.others:
        other = load_checkpoint(path).landscape_module
        ow = {n: p.detach().to(w0[n].device) for n, p in other.named_parameters() if n in w0}
        if set(ow) != set(w0):
            raise LandscapeError(f"{Path(path).name} does not have the same parameters as the checkpoint")
        others.append(ow)
    if spec.directions == "interpolate":
        dirs = [interpolation_direction(w0, others[0])]
    else:
        dirs = list(plane_through(w0, others[0], others[1], orthogonal=spec.orthogonal))
    moving = set(select_parameters(module, spec.scope, spec.include, spec.exclude))
    return [{n: (t if n in moving else torch.zeros_like(t)) for n, t in d.items()} for d in dirs]


def _hessian_directions(spec: SurfaceSpec, objective: Objective) -> list[dict[str, torch.Tensor]]:
    """The top Hessian eigenvectors of the objective (unit norm), the axes of largest curvature (Boettcher &
    Wheeler 2022: random slices mostly show the trace; these show the sharpest directions). Scaled to the norm of
    the in-scope weights so that spans mean the same relative size as for filter-normalized directions."""
    module = objective.module
    names = select_parameters(module, spec.scope, spec.include, spec.exclude)
    if not names:
        raise LandscapeError(f"no trainable parameters in scope {spec.scope!r}")
    with attention_for_second_derivatives(module):
        res = hessian_eigenvalues(module, objective, k=spec.dim, names=names, seed=spec.seed, return_vectors=True)
    w_norm = float(torch.sqrt(sum((module.get_parameter(n).detach() ** 2).sum() for n in names)))
    out = []
    for v in res.vectors:
        full = {n: torch.zeros_like(p) for n, p in module.named_parameters() if p.requires_grad}
        full.update({n: t.detach() for n, t in v.items()})
        out.append(scale(full, w_norm))
    return out


def _to_surface(arrays: dict[str, np.ndarray], meta: dict, path: str) -> Surface:
    ys = arrays.get("ys", np.zeros(0))
    return Surface(
        arrays["xs"], ys, arrays["loss"], arrays.get("acc"), meta, meta.get("metrics", {}), path, arrays.get("path")
    )


def compute_surface(
    spec: SurfaceSpec,
    *,
    store: Store | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_partial: PartialFn | None = None,
    partial_every: int = 8,
    check_stop: Callable[[], bool] | None = None,
    ckpt: LoadedCheckpoint | None = None,
    cached_only: bool = False,
    confirm: Callable[[Estimate], bool] | None = None,
) -> Surface | None:
    """Compute (or fetch from the cache, or resume) one surface.

    Args:
        spec: what to compute.
        store: the cache (default: `Store()` under the cache root).
        progress: progress(done, total) per point; points from the cache count as done.
        on_partial: called with the partial `Surface` every `partial_every` points and when a coarse level finishes
            (the dashboard draws the coarse grid first and refines it).
        check_stop: polled between points; True stops early (the points done so far stay in the cache) and raises
            LandscapeError("stopped").
        ckpt: an already loaded checkpoint for `spec.checkpoint` (its model is moved and restored, never changed).
        cached_only: return the finished result if the cache has it, else None (computes nothing).
        confirm: called with the cost `Estimate` before any new point is computed; returning False stops with a
            LandscapeError (nothing is computed). A job that cannot fit in memory is refused whatever it says.

    Raises:
        LandscapeError: bad spec, unreadable checkpoint, NaN at the centre, stopped.
    """
    spec.validate()
    store = store or Store()
    ckpt = ckpt or load_checkpoint(spec.checkpoint)
    device = pick_device(spec.device)
    objective = build_objective(ckpt, spec.objective_spec(), device)
    per_batch = spec.batch_points or (16 if device.type == "cuda" else 1)

    def evaluate(dirs, coords: np.ndarray, on_point, check_stop) -> bool:
        out = evaluate_points(
            objective.module,
            objective,
            dirs,
            coords,
            on_point=on_point,
            check_stop=check_stop,
            points_per_batch=per_batch,
        )
        return out.stopped

    def finish(arrays: dict[str, np.ndarray], path_coords: np.ndarray | None) -> dict[str, Any]:
        if path_coords is not None:
            arrays["path"] = np.asarray(path_coords, dtype=np.float64)
        c = spec.grid // 2
        centre = arrays["loss"][c] if spec.dim == 1 else arrays["loss"][c, c]
        if not np.isfinite(centre):
            raise LandscapeError(
                f"the loss at the centre (the checkpoint's own weights) is {centre}: the checkpoint "
                f"{ckpt.path.name} is broken or does not fit the data"
            )
        xs = arrays["xs"]
        metrics = line_metrics(xs, arrays["loss"]) if spec.dim == 1 else surface_metrics(xs, xs, arrays["loss"])
        return {"n_nan": int(np.sum(~np.isfinite(arrays["loss"]))), "metrics": metrics.to_dict()}

    job = LatticeJob(
        kind="landscape",
        fields=("loss", "acc") if objective.has_labels else ("loss",),
        what="landscape",
        unsaved="rank 0 did not save the result",
        to_result=_to_surface,
        estimate=lambda points, world: estimate_cost(objective, spec.dim, points, world),
        disk_bytes=surface_disk_bytes,
        directions=lambda: make_directions(spec, ckpt, objective),
        evaluate=evaluate,
        finish=finish,
    )
    return compute_lattice(
        job,
        spec,
        spec,
        surface_key(spec, objective),
        store=store,
        objective=objective,
        model_kind=ckpt.kind,
        device=device,
        progress=progress,
        on_partial=on_partial,
        partial_every=partial_every,
        check_stop=check_stop,
        cached_only=cached_only,
        confirm=confirm,
    )


def prepare_checkpoint(path: str, loss: str, progress=None) -> str:
    """The checkpoint a loss is computed on: for `probe` on an encoder checkpoint, its default (cached) probe."""
    if loss != "probe":
        return str(path)
    ck = load_checkpoint(path)
    if ck.kind == "probe":
        return str(path)

    return str(train_probe(path, ProbeConfig(), progress=progress))


def export_surface(s: Surface, out: str | os.PathLike) -> Path:
    """Write a surface to FILE.npz (xs, ys, loss, acc, meta as a JSON string) or FILE.csv (x, y, loss, acc rows)."""
    out = Path(out)
    ensure_folder(out.parent)
    meta = {k: v for k, v in s.meta.items() if k != "nan_ids"}
    if out.suffix == ".npz":
        arrays = {"xs": s.xs, "ys": s.ys, "loss": s.loss, "meta": np.array(json.dumps(meta, default=str))}
        if s.acc is not None:
            arrays["acc"] = s.acc
        if s.path_coords is not None:
            arrays["path"] = s.path_coords
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(out, buf.getvalue())
    elif out.suffix == ".csv":
        lines = ["x,y,loss" + (",acc" if s.acc is not None else "")]
        if s.loss.ndim == 1:
            for j, x in enumerate(s.xs):
                row = [repr(float(x)), "", repr(float(s.loss[j]))]
                if s.acc is not None:
                    row.append(repr(float(s.acc[j])))
                lines.append(",".join(row))
        else:
            for i, y in enumerate(s.ys):
                for j, x in enumerate(s.xs):
                    row = [repr(float(x)), repr(float(y)), repr(float(s.loss[i, j]))]
                    if s.acc is not None:
                        row.append(repr(float(s.acc[i, j])))
                    lines.append(",".join(row))
        atomic_write_bytes(out, ("\n".join(lines) + "\n").encode())
    else:
        raise LandscapeError(f"--out must end in .npz or .csv, got {out.name}")
    return out
