"""Convexity maps of checkpoints: |lambda_min / lambda_max| of the full Hessian at every point of a 2-D loss slice.

Li et al. (2018) draw the convex region of a loss landscape this way: at each point w + a*d1 + b*d2 of the slice,
the extreme eigenvalues of the Hessian of the loss in all (selected) parameters, not only in the two plotted
directions. A ratio near 0 means the negative curvature there is negligible next to the positive one (locally
convex); near 1 or above it, strongly non-convex. `core.geometry.surface_metrics`' `convex_fraction` is a different
number: the share of points where the plotted 2-D surface itself curves up (finite differences in the slice only).

`compute_convexity(ConvexitySpec(surface=SurfaceSpec(...)))` uses the surface's own directions, span and lattice
(`core.measure.surfaces`), so a 9x9 map sits exactly on grid points of the 9x9, 17x17 or 33x33 loss surface of the
same spec. Every point is one Lanczos run (`core.geometry.convexity_point`: both ends of the spectrum from one Krylov
space, up to `max_iter` Hessian-vector products) and is kept in the store like a surface point:
- every finished point is appended to the entry's log at once (a SIGKILL loses only the point in flight; the same
  call resumes, `meta["n_reused"]`);
- nested grids (2**k + 1 points over one span) share lattice points: a 9x9 map reuses a 5x5 one;
- under `torchrun` each rank takes every world_size-th lattice point; rank 0 assembles and saves.

The key is the surface's key (checkpoint hash, objective, directions, grid) plus the Lanczos settings; the store kind
is `convexity`.
"""

from __future__ import annotations

import functools
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.device import pick_device
from core.errors import LandscapeError
from core.geometry import HvpOperator, convexity_point, select_parameters, surface_metrics
from core.measure.lattice import LatticeJob, compute_lattice, evaluate_one_by_one
from core.measure.surfaces import (
    RESULT_FIXED_BYTES,
    Estimate,
    SurfaceSpec,
    available_memory,
    human_seconds,
    make_directions,
    surface_key,
    working_memory,
)
from core.models import LoadedCheckpoint, Objective, build_objective, load_checkpoint
from core.report import ConvexityPanel, Row, Table, plot_convexity
from core.store import Store, atomic_write_bytes

KIND = "convexity"
FIELDS = ("lambda_max", "lambda_min", "ratio", "loss", "iterations", "converged")  # per point; lambda_max decides
# A point counts as convex when its most negative curvature is under a tenth of its largest positive one. Fixed
# before any measurement (not tuned): an order of magnitude is where the negative curvature stops mattering for the
# picture Li et al. draw (their colour scale saturates well below 1).
CONVEX_RATIO = 0.1
REPRODUCE_GRID = 9  # the grid `python -m core reproduce` counts the convex area on: 81 Lanczos runs per objective


@dataclass(frozen=True)
class ConvexitySpec:
    """One convexity map: the loss slice it lives on and the Lanczos run at each point."""

    surface: SurfaceSpec  # checkpoint, objective, directions, span, grid: the points of the loss surface
    max_iter: int = 20  # Lanczos steps (Hessian-vector products) per point, at most: both ends from one run
    tol: float = 1e-3  # relative Ritz residual at which a point stops early: a ratio read on a colour scale
    lanczos_seed: int = 0  # the start vector, the same at every point (points differ only by their weights)

    def validate(self) -> None:
        self.surface.validate()
        if self.surface.dim != 2:
            raise LandscapeError("a convexity map is 2-D (dim 2)")
        if self.surface.dtype != "fp32":
            raise LandscapeError("a convexity map needs fp32 (bf16 autocast is for wide plots, not Hessians)")
        if not 2 <= self.max_iter <= 1000:
            raise LandscapeError(f"max_iter must be 2 to 1000 Lanczos steps, got {self.max_iter}")
        if not (self.tol > 0 and np.isfinite(self.tol)):
            raise LandscapeError(f"tol must be a positive number, got {self.tol}")


@dataclass
class ConvexityMap:
    """A (possibly partial) convexity map.

    Attributes:
        xs: (nx,) coordinates along d1. ys: (ny,) along d2.
        ratio: (ny, nx) |lambda_min / lambda_max|; NaN where not computed yet, the loss is not finite or
            lambda_max is 0.
        lambda_min, lambda_max: (ny, nx) the extreme Hessian eigenvalues (Ritz values) at each point.
        loss: (ny, nx) the loss at each point (from the Hessian's forward).
        converged: (ny, nx) 1 where both ends met `tol` within `max_iter` steps, 0 where not, NaN not computed.
        meta: every input plus n_points, n_reused, n_unconverged, hvp, timing, the key.
        path: the cache entry's folder.
    """

    xs: np.ndarray
    ys: np.ndarray
    ratio: np.ndarray
    lambda_min: np.ndarray
    lambda_max: np.ndarray
    loss: np.ndarray
    converged: np.ndarray
    meta: dict[str, Any]
    path: str = ""

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete"))

    def convex_area(self, threshold: float = CONVEX_RATIO) -> float:
        """Share of the computed (finite) points whose ratio is below `threshold` (NaN when none is finite)."""
        return convex_area(self.ratio, threshold)


def convex_area(ratio: np.ndarray, threshold: float = CONVEX_RATIO) -> float:
    """Share of the finite entries of a ratio map below `threshold` (NaN when none is finite)."""
    ratio = np.asarray(ratio, dtype=float)
    finite = np.isfinite(ratio)
    return float(np.sum(ratio[finite] < threshold) / finite.sum()) if finite.any() else float("nan")


@dataclass(frozen=True)
class ConvexityEstimate(Estimate):
    """The cost of a map before it starts: points x Hessian-vector products per point (at most)."""

    hvp_per_point: int = 0

    def describe(self) -> str:
        return (
            f"{self.points * self.hvp_per_point} Hessian-vector products at most ({self.points} points x "
            f"{self.hvp_per_point}): {super().describe()}"
        )


def convexity_key(spec: ConvexitySpec, objective: Objective) -> dict:
    """The surface's key (everything that places the points) plus what changes the eigenvalues at a point."""
    lanczos = {"v": 1, "max_iter": spec.max_iter, "tol": spec.tol, "seed": spec.lanczos_seed}
    return {**surface_key(spec.surface, objective), "convexity": lanczos}


def hessian_names(spec: SurfaceSpec, module: torch.nn.Module) -> list[str]:
    """The parameters the Hessian is taken over: the surface's scope, include and exclude (biases and norms too,
    moving or not: the full Hessian of the selected block)."""
    names = select_parameters(module, spec.scope, spec.include, spec.exclude)
    if not names:
        raise LandscapeError(f"no trainable parameters in scope {spec.scope!r}")
    return names


def estimate_convexity(
    spec: ConvexitySpec, objective: Objective, names: list[str], points: int, world: int = 1
) -> ConvexityEstimate:
    """One timed gradient graph and Hessian-vector product at the centre, times `max_iter` products per point."""
    module = objective.module
    firsts, hvps = [], []  # the minimum of a few timings: the machine may be shared
    with HvpOperator(module, objective, names) as op:
        v = torch.ones(op.n, dtype=op.dtype, device=op.device)
        op(v)  # warm-up: allocations and kernel selection
        for _ in range(2):
            op.release()
            t0 = time.perf_counter()
            op(v)  # the forward, the gradient graph and one product
            firsts.append(time.perf_counter() - t0)
            for _ in range(2):
                t0 = time.perf_counter()
                op(v)
                hvps.append(time.perf_counter() - t0)
        n = op.n
    t_first, t_hvp = min(firsts), min(hvps)
    per_point = t_first + (spec.max_iter - 1) * t_hvp
    n_params, acts, data = working_memory(objective)
    # Weights, a copy of the moved ones, two directions, the Lanczos vectors kept (fp32); the double-backward graph
    # holds about three times one batch of activations.
    need = int(n_params * 4 * 4 + n * 4 * (spec.max_iter + 4) + 3 * acts + data)
    seconds = per_point * points / max(1, world)
    return ConvexityEstimate(points, seconds, need, available_memory(objective.device), hvp_per_point=spec.max_iter)


def disk_bytes(new_points: int, total_points: int) -> int:
    """What a map writes at its peak: a log line per new point (six values, ~200 B of JSON) and the result (seven
    float64 / int64 arrays per point, plus the meta and headers)."""
    return new_points * 200 + total_points * 7 * 8 + RESULT_FIXED_BYTES


def _to_map(arrays: dict[str, np.ndarray], meta: dict, path: str) -> ConvexityMap:
    return ConvexityMap(
        arrays["xs"],
        arrays["ys"],
        arrays["ratio"],
        arrays["lambda_min"],
        arrays["lambda_max"],
        arrays["loss"],
        arrays["converged"],
        meta,
        path,
    )


def compute_convexity(
    spec: ConvexitySpec,
    *,
    store: Store | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_partial: Callable[[ConvexityMap], None] | None = None,
    partial_every: int = 4,
    check_stop: Callable[[], bool] | None = None,
    ckpt: LoadedCheckpoint | None = None,
    cached_only: bool = False,
    confirm: Callable[[Estimate], bool] | None = None,
) -> ConvexityMap | None:
    """Compute (or fetch from the cache, or resume) one convexity map.

    Args:
        spec: what to compute.
        store: the cache (default: `Store()` under the cache root).
        progress: progress(done, total) per point; points from the cache count as done.
        on_partial: called with the partial map every `partial_every` points and when a coarse level finishes.
        check_stop: polled between points; True stops (the points done so far stay in the cache) with
            LandscapeError("stopped ...").
        ckpt: an already loaded checkpoint for `spec.surface.checkpoint` (moved and restored, never changed).
        cached_only: return the finished map if the cache has it, else None (computes nothing).
        confirm: called with the `ConvexityEstimate` before any new point; False stops with a LandscapeError.
            A map that cannot fit in memory is refused whatever it says.

    Raises:
        LandscapeError: bad spec, unreadable checkpoint, a non-finite loss at the centre, stopped.
    """
    spec.validate()
    sspec = spec.surface
    store = store or Store()
    ckpt = ckpt or load_checkpoint(sspec.checkpoint)
    device = pick_device(sspec.device)
    objective = build_objective(ckpt, sspec.objective_spec(), device)
    module = objective.module
    # The Hessian's parameters, selected (or refused) once the cache has no finished map: before the estimate, or
    # before the directions when every point is known.
    names = functools.cache(lambda: hessian_names(sspec, module))

    def estimate(points: int, world: int) -> ConvexityEstimate:
        return estimate_convexity(spec, objective, names(), points, world)

    def directions() -> tuple[list[dict[str, torch.Tensor]], np.ndarray | None]:
        names()
        return make_directions(sspec, ckpt, objective)

    def point(dirs: list[dict[str, torch.Tensor]], coeffs: list[float]) -> dict[str, float]:
        kw = dict(names=names(), max_iter=spec.max_iter, tol=spec.tol, seed=spec.lanczos_seed)
        return convexity_point(module, objective, dirs, coeffs, **kw)

    def finish(arrays: dict[str, np.ndarray], path_coords: np.ndarray | None) -> dict[str, Any]:
        c = sspec.grid // 2
        if not np.isfinite(arrays["loss"][c, c]):
            raise LandscapeError(
                f"the loss at the centre (the checkpoint's own weights) is not finite: the checkpoint "
                f"{ckpt.path.name} is broken or does not fit the data"
            )
        finite = np.isfinite(arrays["lambda_max"])
        return {
            "n_params": int(sum(module.get_parameter(n).numel() for n in names())),
            "n_nan": int(np.sum(~np.isfinite(arrays["ratio"]))),
            "n_unconverged": int(np.sum(finite & (arrays["converged"] == 0))),
            "hvp": int(np.nansum(arrays["iterations"])),
            "threshold": CONVEX_RATIO,
            "convex_area": convex_area(arrays["ratio"]),
        }

    job = LatticeJob(
        kind=KIND,
        fields=FIELDS,
        what="convexity map",
        unsaved="rank 0 did not save the convexity map",
        to_result=_to_map,
        estimate=estimate,
        disk_bytes=disk_bytes,
        directions=directions,
        evaluate=evaluate_one_by_one(point),
        finish=finish,
    )
    return compute_lattice(
        job,
        spec,
        sspec,
        convexity_key(spec, objective),
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


def export_convexity(m: ConvexityMap, out: str | Path) -> Path:
    """Write a map to FILE.npz: xs, ys, ratio, lambda_min, lambda_max (len(ys), len(xs)), loss, converged and meta
    (a JSON string)."""
    out = Path(out)
    if out.suffix != ".npz":
        raise LandscapeError(f"--out must end in .npz, got {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in m.meta.items() if k != "nan_ids"}
    arrays = {
        "xs": m.xs,
        "ys": m.ys,
        "ratio": m.ratio,
        "lambda_min": m.lambda_min,
        "lambda_max": m.lambda_max,
        "loss": m.loss,
        "converged": m.converged,
        "meta": np.array(json.dumps(meta, default=str)),
    }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(out, buf.getvalue())
    return out


def describe_map(m: ConvexityMap) -> str:
    """One line for the CLI: points, cache, convergence, convex area, time."""
    meta = m.meta
    reused = meta["n_points"] if meta.get("cached") else meta.get("n_reused", 0)
    return (
        f"{meta.get('model_kind')} / {meta.get('loss_kind')} loss: {meta['n_points']} points, {reused} from the cache, "
        f"{meta.get('n_nan', 0)} not finite, {meta.get('n_unconverged', 0)} not converged in "
        f"{meta['spec']['max_iter']} Lanczos steps, {meta.get('hvp', 0)} Hessian-vector products, "
        f"{human_seconds(float(meta.get('seconds', 0.0)))}; convex area (|lambda_min/lambda_max| < "
        f"{meta.get('threshold', CONVEX_RATIO):g}) {m.convex_area():.3f}"
        + (" (cached result)" if meta.get("cached") else "")
    )


# --------------------------------------------------------------------------------------------------------------------
# Claim 2 in `python -m core reproduce`: the convex area beside the slice's convex fraction

# (RC-MAE measure, MAE measure, what): the two same-function comparisons of claim 2 (`core.studies.measuring.MEASURES`).
CLAIM2_PAIRS = (
    ("rcmae_mae", "mae_own", "pre-training loss"),
    ("rcmae_probe", "mae_probe", "linear-probe loss"),
)


def reproduce_maps(slices: dict, spec: Any, log: Callable[[str], None]) -> dict:
    """Convexity maps of claim 2's objectives (`CLAIM2_PAIRS`), every seed, on the slices the landscapes of
    `core.studies.reproduce` are measured on, at the coarser grid `spec.convexity_grid` (2**k + 1: the lattice is
    shared).

    Args:
        slices: (measure key, seed) -> the landscape's SurfaceSpec (other measures are skipped).
        spec: the ReproduceSpec (`convexity_grid`, 0 skips; `convexity_iter`).
        log: progress lines.

    Returns:
        (measure key, seed) -> ConvexityMap (cached like any map).
    """
    if not spec.convexity_grid:
        return {}
    wanted = {k for a, b, _ in CLAIM2_PAIRS for k in (a, b)}
    out = {}
    for (key, seed), sspec in slices.items():
        if key not in wanted:
            continue
        sspec = replace(sspec, grid=spec.convexity_grid)
        what = f"convexity map {key}, seed {seed}"
        log(f"{what} ({sspec.grid}x{sspec.grid}, at most {spec.convexity_iter} Lanczos steps per point)")
        quarters = [-1]

        def progress(done: int, total: int, what=what, quarters=quarters) -> None:
            if done * 4 // max(1, total) != quarters[0]:
                quarters[0] = done * 4 // max(1, total)
                log(f"{what}: {done}/{total} points")

        # The Lanczos start vector follows the seed, as the slice's directions do (seed 0: the dashboard's).
        cspec = ConvexitySpec(sspec, max_iter=spec.convexity_iter, lanczos_seed=seed)
        out[key, seed] = compute_convexity(cspec, progress=progress)
    return out


def convexity_table(r: Any) -> tuple[Table, ...]:
    """Claim 2's convex area of the full Hessian beside the slice's convex fraction, RC-MAE as A and MAE as B, per
    seed, from a `core.studies.measuring.RunResults`: one table, or none when no maps were measured."""
    if not r.convexity:
        return ()

    spec = r.spec
    g = spec.convexity_grid
    seeds = tuple(r.seeds)
    rows = []
    for a, b, what in CLAIM2_PAIRS:
        maps = {k: [r.convexity[k, s] for s in r.seeds] for k in (a, b)}
        slices = {
            k: [surface_metrics(r.measured[k, s].xs, r.measured[k, s].ys, r.measured[k, s].loss) for s in r.seeds]
            for k in (a, b)
        }
        rows += [
            Row(
                name=f"convex area, {what} (share of the {g}x{g} points with abs(λmin/λmax) < {CONVEX_RATIO:g})",
                a=tuple(m.convex_area() for m in maps[a]),
                b=tuple(m.convex_area() for m in maps[b]),
                better="higher",
                primary=True,
                margin="fraction",
                seeds=seeds,
            ),
            Row(
                name=f"convex fraction of the 2-D slice, {what} ({spec.grid}x{spec.grid}, as above)",
                a=tuple(x.convex_fraction for x in slices[a]),
                b=tuple(x.convex_fraction for x in slices[b]),
                better="higher",
                margin="fraction",
                seeds=seeds,
            ),
            Row(
                name=f"median abs(λmin/λmax), {what}",
                a=tuple(float(np.nanmedian(m.ratio)) for m in maps[a]),
                b=tuple(float(np.nanmedian(m.ratio)) for m in maps[b]),
                better="lower",
                seeds=seeds,
            ),
            Row(
                name=f"points whose Lanczos run did not converge in {spec.convexity_iter} steps, {what}",
                a=tuple(float(m.meta.get("n_unconverged", 0)) for m in maps[a]),
                b=tuple(float(m.meta.get("n_unconverged", 0)) for m in maps[b]),
                fmt=".0f",
                seeds=seeds,
            ),
        ]
    # Row names go into markdown table cells: no "|" in them.
    note = (
        "Two different measures of convexity. The convex area is Li et al.'s (2018): at each of the "
        f"{g}x{g} points of the same slice (the same directions; a sub-grid of the landscape's points), the extreme "
        "eigenvalues of the Hessian in every moving parameter (one Lanczos run, at most "
        f"{spec.convexity_iter} steps, start vector seed k for seed k), and the share of points where |λmin/λmax| < "
        f"{CONVEX_RATIO:g}: negative curvature under a tenth of the positive one, a threshold fixed before measuring. "
        "The convex fraction (shown, also in the tables above) asks only whether the plotted 2-D surface curves up "
        "(finite differences within the slice), blind to the other directions. Where a Lanczos run stops before "
        "converging, its |λmin| is a lower bound (Ritz values lie inside the spectrum), so the convex area is an "
        "upper bound there. Measured on the default regime only (the regime grid below does not repeat it)."
    )
    return (Table("Convex region of the full Hessian", "RC-MAE", "MAE", tuple(rows), note),)


def convexity_figures(r: Any) -> list[tuple[Any, str, str]]:
    """(figure, file stem, caption) of claim 2's convexity maps for the first seed (loss contours from the
    landscape of the same slice), or [] when none were measured."""
    if not r.convexity:
        return []

    s0 = r.seeds[0]
    out = []
    for a, b, what in CLAIM2_PAIRS:
        panels = []
        for key, label in ((b, "MAE"), (a, "RC-MAE")):
            m, s = r.convexity[key, s0], r.measured[key, s0]
            cap = (
                f"{len(m.xs)}x{len(m.xs)} points, at most {r.spec.convexity_iter} Lanczos steps each, "
                f"{m.meta.get('n_unconverged', 0)} not converged; contours: the {len(s.xs)}x{len(s.xs)} landscape"
            )
            panels.append(ConvexityPanel(f"{label}, {what}", m.xs, m.ys, m.ratio, s.xs, s.ys, s.loss, caption=cap))
        stem = "claim2_convexity_" + ("pretrain" if a == "rcmae_mae" else "probe")
        caption = f"Convexity maps, {what}: |λmin/λmax| of the Hessian with the loss contours, seed {s0}"
        out.append((plot_convexity(panels, CONVEX_RATIO), stem, caption))
    return out
