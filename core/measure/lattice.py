"""Lattice points of a slice: nested grids, their reuse, and the resumable per-point driver.

A slice's grid of 2**k + 1 points per axis over [-span, span] sits on a shared lattice of 1025 points per axis, so
every grid point has a lattice id that does not depend on the grid size. `compute_lattice` runs one cached result
made of per-point values over such a grid (a loss surface in `core.measure.surfaces`, a convexity map in
`core.measure.convexity`), and does for both everything around the computation at a point:
- the finished result is returned from the cache at once; `cached_only` computes nothing;
- the entry's lock is held while computing (on rank 0), so two processes never compute the same entry;
- points are taken from nested grids of the same family (`family_hash`) and from the entry's own log, counted in
  `meta["n_reused"]`; the cost estimate, the memory refusal and `confirm` come before any new point;
- points are visited coarse-to-fine (3x3, 5x5, ... first), every finished point is appended to the entry's log at
  once (a SIGKILL loses only the point in flight), progress and partial results are reported, `check_stop` stops;
- under `torchrun` each rank takes every world_size-th lattice point, rank 0 assembles and saves the result.

What differs between the results (the per-point computation, its estimate, the result's type and meta) is a
`LatticeJob`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from core.errors import LandscapeError
from core.geometry import nested_order, plane_order
from core.models import code_version
from core.store import Entry, Store, content_hash

LATTICE = 1024  # nested grids (2**k + 1 points, k <= 10) share this lattice

R = TypeVar("R")
Directions = list[dict[str, torch.Tensor]]
OnPoint = Callable[[int, dict[str, float]], None]
CheckStop = Callable[[], bool]


class LatticeSpec(Protocol):
    """What places the points (a `core.measure.surfaces.SurfaceSpec` is one)."""

    @property
    def dim(self) -> int: ...  # 1: a line, 2: a plane

    @property
    def grid(self) -> int: ...  # points per axis

    @property
    def span(self) -> float: ...  # coordinates over [-span, span]


# --------------------------------------------------------------------------------------------------------------------
# Grid bookkeeping: lattice ids shared by nested grids


def lattice_size(n: int) -> int:
    """Lattice intervals per axis: 1024 for nested grids (2**k + 1 points), else the grid's own n - 1."""
    return LATTICE if LATTICE % (n - 1) == 0 else n - 1


def lattice_coords(n: int, span: float) -> tuple[np.ndarray, np.ndarray]:
    """Lattice indices of an n-point axis and their coordinates (computed from the index, identical across n)."""
    m = lattice_size(n)
    idx = np.arange(n) * (m // (n - 1))
    return idx, span * (2.0 * idx / m - 1.0)


def family_hash(key: dict) -> str:
    """Hash of a result's key without its grid size: entries of one family share lattice points."""
    return content_hash({k: v for k, v in key.items() if k != "grid"})


def _point_ids(spec: LatticeSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For every grid point in coarse-to-fine order: lattice id, flat index into the result, coordinates.

    Returns (ids (P,), flat (P,), coords (P, dim), xs)."""
    lat, xs = lattice_coords(spec.grid, spec.span)
    m1 = lattice_size(spec.grid) + 1
    if spec.dim == 1:
        order = nested_order(spec.grid)
        return lat[order], order, xs[order][:, None], xs
    ij = plane_order(spec.grid, spec.grid)  # (P, 2): i over ys, j over xs
    ids = lat[ij[:, 0]] * m1 + lat[ij[:, 1]]
    flat = ij[:, 0] * spec.grid + ij[:, 1]
    coords = np.stack([xs[ij[:, 1]], xs[ij[:, 0]]], axis=1)
    return ids, flat, coords, xs


def _level_sizes(spec: LatticeSpec) -> set[int]:
    """Cumulative point counts at which a coarse nested level is complete (3x3, 5x5, ...)."""
    sizes, k = set(), 3
    while k <= spec.grid:
        sizes.add(k if spec.dim == 1 else k * k)
        k = 2 * k - 1
    return sizes


def _assemble(values, flat, shape, xs, spec: LatticeSpec, ids) -> dict[str, np.ndarray]:
    """The result's arrays: xs (and ys for a plane), the lattice ids and every per-point value in grid shape."""
    arrays: dict[str, np.ndarray] = {"xs": xs.astype(np.float64)}
    if spec.dim == 2:
        arrays["ys"] = xs.astype(np.float64)
    ordered_ids = np.empty(len(ids), dtype=np.int64)
    ordered_ids[flat] = ids
    arrays["ids"] = ordered_ids.reshape(shape)
    for k, v in values.items():
        grid = np.full(len(flat), np.nan)
        grid[flat] = v
        arrays[k] = grid.reshape(shape)
    return arrays


def _fill_known(values: dict[str, np.ndarray], ids: np.ndarray, known: dict[int, dict[str, float]]) -> None:
    """Copy the values of known lattice points into the per-point arrays (in grid visiting order)."""
    for p, lid in enumerate(ids.tolist()):
        for k, v in known.get(lid, {}).items():
            if k in values:
                values[k][p] = v


def _sibling_points(
    store: Store, entry: Entry, key: dict, *, kind: str = "landscape", fields: tuple[str, ...] = ("loss", "acc")
) -> dict[int, dict[str, float]]:
    """Points of other entries of the same family (other nested grid sizes), by lattice id.

    `kind`: the store kind; `fields`: the per-point arrays of a finished result (the first one decides: a point
    counts where it is finite or listed in the result's `nan_ids`)."""
    fam = family_hash(key)
    found: dict[int, dict[str, float]] = {}
    for info in store.list(kind):
        if info.key_hash == entry.key_hash or not isinstance(info.key, dict) or family_hash(info.key) != fam:
            continue
        other = store.get(kind, info.key_hash)
        found.update(other.load_points())
        res = other.result()
        if res is not None and "ids" in res.arrays:
            ids = res.arrays["ids"].reshape(-1)
            cols = {f: res.arrays[f].reshape(-1) for f in fields if f in res.arrays}
            main = cols[fields[0]]
            nan_ids = set(res.meta.get("nan_ids") or ())
            for p, lid in enumerate(ids.tolist()):
                if np.isfinite(main[p]) or lid in nan_ids:
                    found[int(lid)] = {f: float(c[p]) for f, c in cols.items()}
    return found


# --------------------------------------------------------------------------------------------------------------------
# torchrun


def _dist() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless torchrun started several processes (the process group is joined once)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


# --------------------------------------------------------------------------------------------------------------------
# The driver


@dataclass(frozen=True)
class LatticeJob(Generic[R]):
    """What one kind of per-point result computes, and how it is estimated, assembled and returned.

    Attributes:
        kind: the store kind ("landscape", "convexity").
        fields: the per-point values the result keeps (NaN where not computed); the first one decides whether a
            point of a finished sibling is known (finite, or listed in its `nan_ids`) and fills `meta["nan_ids"]`.
        what: the result in the memory refusal: "this {what} cannot fit in memory".
        unsaved: what a rank > 0 raises when rank 0 saved nothing.
        to_result: (arrays, meta, entry folder) -> the result (a finished one, or a partial one for `on_partial`).
        estimate: (points to compute, world size) -> the cost `core.measure.surfaces.Estimate` (the disk not counted).
        disk_bytes: (points to compute, all points) -> bytes written at the peak.
        directions: () -> (the slice's axes, the projected trajectory or None); called once the job is confirmed.
        evaluate: (axes, coords (Q, dim) of this rank's new points in visiting order, on_point(q, values) right
            after point q, check_stop polled before every point) -> True when stopped early.
        finish: rank 0, every point in: (arrays, the trajectory) -> the meta beyond the common part; it checks the
            centre (raises) and may add arrays.
    """

    kind: str
    fields: tuple[str, ...]
    what: str
    unsaved: str
    to_result: Callable[[dict[str, np.ndarray], dict[str, Any], str], R]
    estimate: Callable[[int, int], Any]
    disk_bytes: Callable[[int, int], int]
    directions: Callable[[], tuple[Directions, np.ndarray | None]]
    evaluate: Callable[[Directions, np.ndarray, OnPoint, CheckStop | None], bool]
    finish: Callable[[dict[str, np.ndarray], np.ndarray | None], dict[str, Any]]


def compute_lattice(
    job: LatticeJob[R],
    spec: Any,
    lattice: LatticeSpec,
    key: dict,
    *,
    store: Store,
    objective: Any,
    model_kind: str,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
    on_partial: Callable[[R], None] | None = None,
    partial_every: int = 8,
    check_stop: CheckStop | None = None,
    cached_only: bool = False,
    confirm: Callable[[Any], bool] | None = None,
) -> R | None:
    """Compute (or fetch from the cache, or resume) one result of per-point values over a grid.

    Args:
        job: what is computed at a point and how the result is built (`LatticeJob`).
        spec: the request (a dataclass: `meta["spec"]` is `asdict(spec)`).
        lattice: the grid the points lie on (dim, grid, span).
        key: the cache key (everything that changes the numbers); its grid-less hash is the family.
        store: the cache.
        objective: what is evaluated (`key()` and `loss_kind` go into the meta).
        model_kind: the checkpoint's kind, for the meta.
        device: where it runs, for the meta.
        progress, on_partial, partial_every, check_stop, cached_only, confirm: as in
            `core.measure.surfaces.compute_surface`.

    Raises:
        LandscapeError: too big for memory, not confirmed, stopped, rank 0 saved nothing, and what `job` raises.
    """
    entry = store.entry(job.kind, key)
    rank, world = _dist()
    ids, flat, coords, xs = _point_ids(lattice)
    total = len(ids)
    shape = (lattice.grid,) if lattice.dim == 1 else (lattice.grid, lattice.grid)

    def finished() -> R | None:
        res = entry.result()
        if res is None:
            return None
        meta = dict(res.meta)
        meta["cached"] = True
        meta["n_reused"] = meta.get("n_points", total)  # every point of a finished result comes from the cache
        return job.to_result(res.arrays, meta, str(entry.path))

    done = finished()
    if done is not None:
        if progress:
            progress(total, total)
        return done
    if cached_only:
        return None

    with entry.lock() if rank == 0 else contextlib.nullcontext():  # the lock on rank 0 only
        _barrier(world)  # rank 0 holds the lock before anyone reads the known points
        done = finished()
        if done is not None:
            return done
        known = {**_sibling_points(store, entry, key, kind=job.kind, fields=job.fields), **entry.load_points()}
        n_reused = sum(1 for i in ids.tolist() if i in known)
        if n_reused < total:
            est = job.estimate(total - n_reused, world)
            est = est.with_disk(job.disk_bytes(total - n_reused, total), store.root)
            if est.available is not None and est.bytes > est.available:
                raise LandscapeError(f"this {job.what} cannot fit in memory: {est.describe()}; use fewer samples")
            if confirm is not None and not confirm(est):
                raise LandscapeError(f"not started: {est.describe()} (confirm to run it)")
        dirs, path_coords = job.directions()
        mine = np.array([p for p in range(total) if ids[p] % world == rank and int(ids[p]) not in known], dtype=int)
        values = {f: np.full(total, np.nan) for f in job.fields}
        _fill_known(values, ids, known)
        n_done = [n_reused]
        levels = _level_sizes(lattice)

        def partial() -> R:
            meta = {"spec": asdict(spec), "complete": False, "n_points": total, "n_done": n_done[0]}
            return job.to_result(_assemble(values, flat, shape, xs, lattice, ids), meta, str(entry.path))

        def on_point(q: int, vals: dict[str, float]) -> None:
            p = int(mine[q])
            entry.append_points([(int(ids[p]), vals)])
            for k, v in vals.items():
                if k in values:
                    values[k][p] = v
            n_done[0] += 1
            if progress:
                progress(n_done[0], total)
            if on_partial and (n_done[0] % partial_every == 0 or n_done[0] in levels):
                on_partial(partial())

        if progress:
            progress(n_done[0], total)
        if on_partial and n_reused:
            on_partial(partial())
        start = time.perf_counter()
        stopped = job.evaluate(dirs, coords[mine], on_point, check_stop)
        elapsed = time.perf_counter() - start
        entry.flush_points()
        if stopped:
            raise LandscapeError(f"stopped after {n_done[0]} of {total} points; rerun the same request to resume")
        _barrier(world)
        if rank != 0:
            _barrier(world)
            done = finished()
            if done is None:
                raise LandscapeError(job.unsaved)
            return done
        # Rank 0: take every rank's points from the logs (they are the source of truth), then save.
        _fill_known(values, ids, entry.load_points())
        arrays = _assemble(values, flat, shape, xs, lattice, ids)
        extra = job.finish(arrays, path_coords)
        meta = {
            "spec": asdict(spec),
            "key": key,
            "family": family_hash(key),
            "objective": objective.key(),
            "loss_kind": objective.loss_kind,
            "model_kind": model_kind,
            "complete": True,
            "n_points": total,
            "n_reused": n_reused,
            "n_done": total,
            "nan_ids": [
                int(i) for i, v in zip(ids.tolist(), values[job.fields[0]].tolist(), strict=True) if not np.isfinite(v)
            ],
            "seconds": elapsed,
            "world_size": world,
            "device": str(device),
            **extra,
        }
        entry.save_result(arrays, meta, code_version=code_version())
        entry.clear_points()
        _barrier(world)
        res = entry.result()
        return job.to_result(res.arrays, dict(res.meta), str(entry.path))


def evaluate_one_by_one(
    point: Callable[[Directions, list[float]], dict[str, float]],
) -> Callable[[Directions, np.ndarray, OnPoint, CheckStop | None], bool]:
    """A `LatticeJob.evaluate` that computes one point at a time: point(axes, coordinates as floats) -> its values."""

    def evaluate(dirs: Directions, coords: np.ndarray, on_point: OnPoint, check_stop: CheckStop | None) -> bool:
        for q in range(len(coords)):
            if check_stop is not None and check_stop():
                return True
            on_point(q, point(dirs, [float(c) for c in coords[q]]))
        return False

    return evaluate
