"""The landscape engine: the loss at theta0 + sum_k c_k * d_k for many coefficient vectors c, fast and restorable.

Speed (REFERENCE.md section 7): the centre weights theta0 are cloned once, and only for the parameters that some
direction moves; directions are moved to the parameter device once; each point sets the moved parameters in place
with `torch._foreach` ops, computed from theta0 every time (theta = theta0 + a*d1 + b*d2, never incrementally, so
nothing drifts and a point's value does not depend on which points came before); one host read per point. The
parameters are restored bit for bit from theta0 in a `finally`, also when the loss function raises or a stop is
requested. The engine never changes the model's train/eval mode (the caller sets eval mode).

Loss functions: `loss_fn(model) -> scalar tensor`, called under `torch.no_grad`. If `loss_fn` has a method
`evaluate(model) -> dict[str, float]` (at least "loss", maybe "acc"), the engine calls that instead, once per
point, and records every key. Non-finite values (NaN, +-inf) are stored as NaN and counted, never raised.

Grids: axes are `grid_axis(span, n)`; points are visited coarse to fine (`nested_order`, `plane_order`), so with
n = 2**k + 1 points per axis the 3-, 5-, 9-point grids over the same span are complete early and can be shown
while the rest fills in.
"""

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.func import functional_call, vmap

from core.errors import LandscapeError
from core.geometry.attention import attention_for_second_derivatives

OnPoint = Callable[[int, dict[str, float]], None]
Progress = Callable[[int, int], None]
CheckStop = Callable[[], bool]


# --------------------------------------------------------------------------------------------------------------
# Grids and visiting orders
# --------------------------------------------------------------------------------------------------------------


def grid_axis(span: float, n: int) -> np.ndarray:
    """`n` evenly spaced coordinates over [-span, span] (float64); a single point is the centre, [0.0]."""
    if n < 1:
        raise LandscapeError(f"a grid axis needs at least 1 point, got {n}")
    if not (span > 0 and math.isfinite(span)):
        raise LandscapeError(f"the grid span must be a positive number, got {span}")
    if n == 1:
        return np.zeros(1)
    return np.linspace(-span, span, n, dtype=np.float64)


def _levels_and_order(n: int) -> tuple[np.ndarray, np.ndarray]:
    # Bisection, level by level: level 0 is the centre (mid of [0, n-1]) and both ends, each later level adds the
    # midpoints of the gaps left. For n = 2**k + 1 the first 2**m + 1 indices visited are the (2**m + 1)-point grid.
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    level = np.full(n, -1, dtype=np.int64)
    order: list[int] = []

    def visit(i: int, lev: int) -> None:
        if level[i] < 0:
            level[i] = lev
            order.append(i)

    if n <= 2:
        for i in range(n):
            visit(i, 0)
        return level, np.array(order, dtype=np.int64)
    mid = (n - 1) // 2
    for i in (mid, 0, n - 1):
        visit(i, 0)
    gaps = [(0, mid), (mid, n - 1)]
    lev = 0
    while gaps:
        lev += 1
        next_gaps = []
        for lo, hi in gaps:
            if hi - lo < 2:
                continue
            m = (lo + hi) // 2
            visit(m, lev)
            next_gaps += [(lo, m), (m, hi)]
        gaps = next_gaps
    return level, np.array(order, dtype=np.int64)


def nested_levels(n: int) -> np.ndarray:
    """Refinement level of each index 0..n-1: 0 for the 3-point grid (ends and centre), 1 for the points the
    5-point grid adds, and so on (for n = 2**k + 1; other n get the same bisection scheme)."""
    return _levels_and_order(n)[0]


def nested_order(n: int) -> np.ndarray:
    """The indices 0..n-1, each once, coarse to fine.

    For n = 2**k + 1: centre and both ends first (the 3-point grid), then the indices the 5-point grid adds,
    then the 9-point grid's, and so on; so the first 2**m + 1 indices are exactly a coarser grid over the same
    span. Other n are bisected the same way (ends and centre, then midpoints of the gaps), which is still
    coarse first.
    """
    return _levels_and_order(n)[1]


def plane_order(nx: int, ny: int) -> np.ndarray:
    """All (i, j) index pairs of an ny x nx grid, each once, coarse to fine.

    i indexes the rows (ys, 0..ny-1) and j the columns (xs, 0..nx-1), as in `loss[i, j]` of `evaluate_plane`.
    A pair's level is the larger of its row's and column's `nested_levels`; pairs are sorted by level (the whole
    3x3 sub-grid first, then the rest of the 5x5, the 9x9, ...) and, within a level, by their positions in
    `nested_order`, so the centre comes first.

    Returns:
        Integer array (nx * ny, 2) of (i, j).
    """
    lx, ox = _levels_and_order(nx)
    ly, oy = _levels_and_order(ny)
    rank_x = np.empty(nx, dtype=np.int64)
    rank_x[ox] = np.arange(nx)
    rank_y = np.empty(ny, dtype=np.int64)
    rank_y[oy] = np.arange(ny)
    ii, jj = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    ri, rj = rank_y[ii], rank_x[jj]
    keys = (rj, ri, np.maximum(ri, rj), np.maximum(ly[ii], lx[jj]))  # np.lexsort: last key is the primary one
    idx = np.lexsort(keys)
    return np.stack([ii[idx], jj[idx]], axis=1)


# --------------------------------------------------------------------------------------------------------------
# Applying perturbations
# --------------------------------------------------------------------------------------------------------------


class _Perturber:
    """Sets theta0 + sum_k c_k d_k in place and restores theta0 exactly. Use under torch.no_grad."""

    def __init__(self, model: torch.nn.Module, directions: Sequence[Mapping[str, torch.Tensor]]) -> None:
        named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        nonzero: list[dict[str, torch.Tensor]] = []
        for k, d in enumerate(directions):
            keep = {}
            for name, t in d.items():
                p = named.get(name)
                if p is None:
                    if not bool(t.any()):
                        continue  # a zero entry for a frozen or unknown parameter moves nothing
                    why = "is frozen" if name in frozen else "is not a parameter of the model"
                    raise LandscapeError(f"direction {k + 1} moves {name}, which {why}")
                if tuple(t.shape) != tuple(p.shape):
                    raise LandscapeError(
                        f"direction {k + 1} does not fit the model: {name} has shape {tuple(t.shape)}, "
                        f"the parameter {tuple(p.shape)}"
                    )
                if bool(t.any()):  # all-zero tensors are skipped
                    keep[name] = t
            nonzero.append(keep)
        active = [n for n in named if any(n in keep for keep in nonzero)]
        self.params = [named[n] for n in active]
        with torch.no_grad():
            self.theta0 = [p.detach().clone() for p in self.params]
        # fp32 parameters are updated directly; others (bf16, fp16, fp64) through fp32 scratch buffers.
        self.direct = all(p.dtype == torch.float32 for p in self.params)
        if self.direct:
            self.base, self.targets = self.theta0, self.params
        else:
            self.base = [t.to(torch.float32) for t in self.theta0]
            self.targets = [torch.empty_like(b) for b in self.base]
        pos = {n: i for i, n in enumerate(active)}
        self.axes: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []
        for keep in nonzero:
            idx = [pos[n] for n in keep]
            tensors = [
                t.detach().to(device=self.targets[i].device, dtype=torch.float32)
                for i, t in zip(idx, keep.values(), strict=True)
            ]
            self.axes.append(([self.targets[i] for i in idx], tensors))

    def apply(self, coeffs: Sequence[float]) -> None:
        if not self.params:
            return
        torch._foreach_copy_(self.targets, self.base)
        for (targets, tensors), c in zip(self.axes, coeffs, strict=True):
            c = float(c)
            if c != 0.0 and targets:
                torch._foreach_add_(targets, tensors, alpha=c)
        if not self.direct:
            torch._foreach_copy_(self.params, self.targets)

    def restore(self) -> None:
        if self.params:
            torch._foreach_copy_(self.params, self.theta0)


@contextlib.contextmanager
def perturbed(
    model: torch.nn.Module, directions: Sequence[Mapping[str, torch.Tensor]], coeffs: Sequence[float]
) -> Iterator[torch.nn.Module]:
    """Context manager: the model's parameters are theta0 + sum_k coeffs[k] * directions[k] inside the block and
    restored bit for bit on exit (also on an exception).

    The parameters are set under `torch.no_grad`; the block itself runs with the caller's grad mode, so gradients
    at the perturbed point can be taken inside it.

    Yields:
        The model.
    """
    if len(coeffs) != len(directions):
        raise ValueError(f"{len(coeffs)} coefficients for {len(directions)} directions")
    with torch.no_grad():
        pert = _Perturber(model, directions)
    try:
        with torch.no_grad():
            pert.apply(coeffs)
        yield model
    finally:
        with torch.no_grad():
            pert.restore()


# --------------------------------------------------------------------------------------------------------------
# Evaluating points
# --------------------------------------------------------------------------------------------------------------


class PointValues(dict):
    """The values of `evaluate_points`: key -> array (P,), NaN where skipped, not reached or not finite.

    Attributes:
        n_evaluated: points evaluated in this call.
        n_nonfinite: evaluated points whose loss was NaN or infinite (stored as NaN).
        stopped: True if `check_stop` ended the run early.
    """

    n_evaluated: int = 0
    n_nonfinite: int = 0
    stopped: bool = False


def _point_values(model: torch.nn.Module, loss_fn: Callable) -> dict[str, float]:
    evaluate = getattr(loss_fn, "evaluate", None)
    if callable(evaluate):
        raw = evaluate(model)
        values = {str(k): float(v) for k, v in raw.items()}
        if "loss" not in values:
            raise ValueError("loss_fn.evaluate must return a dict with a 'loss' key")
    else:
        out = loss_fn(model)
        values = {"loss": float(out.item()) if torch.is_tensor(out) else float(out)}  # the one host read
    return {k: (v if math.isfinite(v) else math.nan) for k, v in values.items()}


class _LossOf(torch.nn.Module):
    """`forward()` = the loss function's tensors at the wrapped model: lets torch.func call it with other weights."""

    def __init__(self, model: torch.nn.Module, loss_fn: Callable) -> None:
        super().__init__()
        self.model = model
        self._loss_fn = loss_fn

    def forward(self) -> torch.Tensor:
        outputs = getattr(self._loss_fn, "outputs", None)
        if callable(outputs):
            vals = outputs(self.model)
            return torch.stack([vals["loss"].float()] + [v.float() for k, v in vals.items() if k != "loss"])
        return self._loss_fn(self.model).float().reshape(1)


def _batched_values(
    model: torch.nn.Module, loss_fn: Callable, pert: _Perturber, names: list[str], coords: np.ndarray
) -> list[dict[str, float]]:
    """Values at several points in one vectorized call: the weights of every point stacked along a new leading
    dimension and `torch.func.vmap` over `functional_call` (pays on GPUs, where one small model underuses the chip)."""
    c = torch.as_tensor(coords, dtype=torch.float32, device=pert.base[0].device)  # (B, k)
    stacked = {}
    for i, name in enumerate(names):
        w = pert.base[i].unsqueeze(0).expand(len(c), *pert.base[i].shape).clone()
        for k, (targets, tensors) in enumerate(pert.axes):
            for t, d in zip(targets, tensors, strict=True):
                if t is pert.targets[i]:
                    w += c[:, k].view(-1, *([1] * d.ndim)) * d
        stacked[f"model.{name}"] = w.to(pert.params[i].dtype)
    wrapper = _LossOf(model, loss_fn)
    # Explicit-matmul attention: vmap batches it natively (fused attention kernels may lack batching rules).
    with attention_for_second_derivatives(model):
        out = vmap(lambda p: functional_call(wrapper, p, ()))(stacked)  # (B, n_values)
    keys = ["loss"]
    outputs = getattr(loss_fn, "outputs", None)
    if callable(outputs):
        keys += [k for k in loss_fn.output_keys if k != "loss"]
    rows = out.tolist()  # the one host read for the whole batch
    return [{k: (v if math.isfinite(v) else math.nan) for k, v in zip(keys, row, strict=True)} for row in rows]


def evaluate_points(
    model: torch.nn.Module,
    loss_fn: Callable,
    directions: Sequence[Mapping[str, torch.Tensor]],
    coords: np.ndarray,
    *,
    on_point: OnPoint | None = None,
    progress: Progress | None = None,
    skip: Iterable[int] | None = None,
    check_stop: CheckStop | None = None,
    points_per_batch: int = 1,
) -> PointValues:
    """The loss at theta0 + sum_k coords[p, k] * directions[k] for every point p, in the order of `coords`.

    Args:
        model: the model, already in the mode it should be evaluated in (the engine does not change it).
        loss_fn: `loss_fn(model) -> scalar tensor`, or an object with `evaluate(model) -> dict` (module docstring).
        directions: k directions (dicts of tensors keyed by parameter name; see `core.geometry.directions`).
        coords: array (P, k) of coefficients.
        on_point: called as on_point(p, values) right after point p is evaluated, values a dict of floats with
            non-finite values already turned into NaN (what the result holds), e.g. to persist it.
        progress: called as progress(done, P), done counting skipped plus evaluated points; once at the start and
            after every point.
        skip: indices of points already known: not evaluated, NaN in the result.
        check_stop: called before every point; returning True ends the run cleanly (parameters restored,
            partial values returned, `stopped` set).
        points_per_batch: evaluate this many points per vectorized call (torch.func.vmap over the stacked weights
            of the points). Pays on GPUs; on CPUs it measured no gain, so 1 (one point at a time) is the default.
            Falls back to one point at a time, with a warning, if the model cannot be vectorized.

    Returns:
        A `PointValues` dict: "loss" and any other key `evaluate` gives -> float64 array (P,).
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim == 1 and len(directions) == 1:
        coords = coords[:, None]
    if coords.ndim != 2 or coords.shape[1] != len(directions):
        raise ValueError(f"coords must have shape (P, {len(directions)}), got {coords.shape}")
    n_points = coords.shape[0]
    skipped = np.zeros(n_points, dtype=bool)
    if skip is not None:
        idx = np.fromiter((int(i) for i in skip), dtype=np.int64)
        skipped[idx[(idx >= 0) & (idx < n_points)]] = True
    result = PointValues(loss=np.full(n_points, np.nan))
    done = int(skipped.sum())
    if progress is not None:
        progress(done, n_points)
    with torch.no_grad():
        pert = _Perturber(model, directions)
        active = [n for n, p in model.named_parameters() if any(p is q for q in pert.params)]
        todo = [p for p in range(n_points) if not skipped[p]]
        batched: dict[int, dict[str, float]] = {}
        try:
            for pos, p in enumerate(todo):
                if check_stop is not None and check_stop():
                    result.stopped = True
                    break
                if points_per_batch > 1 and p not in batched and pert.params:
                    chunk = todo[pos : pos + points_per_batch]
                    try:
                        batched.update(
                            zip(chunk, _batched_values(model, loss_fn, pert, active, coords[chunk]), strict=True)
                        )
                    except (RuntimeError, NotImplementedError, TypeError, ValueError) as e:
                        warnings.warn(
                            f"grid points cannot be batched for this model ({e}); one at a time", stacklevel=2
                        )
                        points_per_batch = 1
                if p in batched:
                    values = batched.pop(p)
                else:
                    pert.apply(coords[p])
                    values = _point_values(model, loss_fn)
                for key, v in values.items():
                    if key not in result:
                        result[key] = np.full(n_points, np.nan)
                    result[key][p] = v
                result.n_evaluated += 1
                if math.isnan(values["loss"]):
                    result.n_nonfinite += 1
                if on_point is not None:
                    on_point(p, values)
                done += 1
                if progress is not None:
                    progress(done, n_points)
        finally:
            pert.restore()
    return result


def evaluate_plane(
    model: torch.nn.Module,
    loss_fn: Callable,
    d1: Mapping[str, torch.Tensor],
    d2: Mapping[str, torch.Tensor],
    xs: Sequence[float] | np.ndarray,
    ys: Sequence[float] | np.ndarray,
    *,
    return_all: bool = False,
    **kw,
) -> np.ndarray | PointValues:
    """The loss over a plane: `loss[i, j] = L(theta0 + xs[j] * d1 + ys[i] * d2)`, visited in `plane_order`.

    Point indices given to `on_point` and taken by `skip` are flat indices of the returned array, row-major:
    p = i * len(xs) + j.

    Args:
        model: the model (see `evaluate_points`).
        loss_fn: the loss (see `evaluate_points`).
        d1: the x axis direction.
        d2: the y axis direction.
        xs: coefficients of d1 (columns).
        ys: coefficients of d2 (rows).
        return_all: return every recorded key as (len(ys), len(xs)) arrays in a `PointValues` instead of the
            loss array alone.
        **kw: on_point, progress, skip, check_stop, points_per_batch as in `evaluate_points`.

    Returns:
        Array (len(ys), len(xs)), NaN where skipped, not reached or not finite; or a `PointValues` of such arrays.
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    nx, ny = len(xs), len(ys)
    pairs = plane_order(nx, ny)
    flat = pairs[:, 0] * nx + pairs[:, 1]  # visiting position -> flat index
    coords = np.stack([xs[pairs[:, 1]], ys[pairs[:, 0]]], axis=1)
    values = _evaluate_reordered(model, loss_fn, [d1, d2], coords, flat, **kw)
    shaped = PointValues({k: v.reshape(ny, nx) for k, v in values.items()})
    shaped.n_evaluated, shaped.n_nonfinite, shaped.stopped = values.n_evaluated, values.n_nonfinite, values.stopped
    return shaped if return_all else shaped["loss"]


def evaluate_line(
    model: torch.nn.Module,
    loss_fn: Callable,
    d: Mapping[str, torch.Tensor],
    xs: Sequence[float] | np.ndarray,
    *,
    return_all: bool = False,
    **kw,
) -> np.ndarray | PointValues:
    """The loss along a line: `loss[j] = L(theta0 + xs[j] * d)`, visited in `nested_order`.

    Point indices given to `on_point` and taken by `skip` are indices into xs. Arguments as in `evaluate_plane`.
    """
    xs = np.asarray(xs, dtype=np.float64)
    order = nested_order(len(xs))
    values = _evaluate_reordered(model, loss_fn, [d], xs[order][:, None], order, **kw)
    return values if return_all else values["loss"]


def _evaluate_reordered(
    model: torch.nn.Module,
    loss_fn: Callable,
    directions: Sequence[Mapping[str, torch.Tensor]],
    coords: np.ndarray,
    index: np.ndarray,
    *,
    on_point: OnPoint | None = None,
    progress: Progress | None = None,
    skip: Iterable[int] | None = None,
    check_stop: CheckStop | None = None,
    points_per_batch: int = 1,
) -> PointValues:
    # Evaluates coords in the given (visiting) order while callers see output indices: index[q] is the output
    # index of visiting position q.
    n = len(index)
    position = np.empty(n, dtype=np.int64)
    position[index] = np.arange(n)
    skip_pos = None
    if skip is not None:
        out_idx = np.fromiter((int(i) for i in skip), dtype=np.int64)
        skip_pos = position[out_idx[(out_idx >= 0) & (out_idx < n)]]
    callback = None if on_point is None else (lambda q, values: on_point(int(index[q]), values))
    values = evaluate_points(
        model,
        loss_fn,
        directions,
        coords,
        on_point=callback,
        progress=progress,
        skip=skip_pos,
        check_stop=check_stop,
        points_per_batch=points_per_batch,
    )
    out = PointValues()
    for key, arr in values.items():
        back = np.empty_like(arr)
        back[index] = arr
        out[key] = back
    out.n_evaluated, out.n_nonfinite, out.stopped = values.n_evaluated, values.n_nonfinite, values.stopped
    return out
