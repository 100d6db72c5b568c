"""Numbers that summarize a loss surface (2-D slice) or a loss curve (1-D line).

The surface is `loss[i, j] = L(xs[j], ys[i])` on a grid with strictly increasing `xs` and `ys` (as returned by
`core.geometry.landscape.evaluate_plane`); a curve is `loss[j] = L(xs[j])`. Definitions:

- Non-finite values (NaN, +-inf) are excluded from every number below and counted in `n_nan`.
- Centre: the grid point nearest (0, 0); `centre_loss` is its value (it must be finite). Every "increase" is
  L - centre_loss.
- Threshold: `threshold` if given (absolute, in loss units), else `rel_threshold * |centre_loss|`.
- Increase at radius r: the mean increase over 32 points evenly spaced in angle (starting at angle 0) on the
  circle of radius r around the centre, each sampled by bilinear interpolation of the grid; samples whose grid
  cell has a non-finite corner are left out of the mean. NaN if the circle leaves the grid or no sample is
  usable. On a line: the mean of the linearly interpolated increase at -r and +r.
- Basin extent along an axis direction (-x, +x, -y, +y): walking from the centre along the grid row / column
  through it, the distance at which the increase first reaches the threshold, linearly interpolated between the
  last grid point under it and the first at or over it; a non-finite point stops the walk at the last finite
  point; if the walk reaches the grid edge, the extent is the distance to the edge (`basin_at_edge` True: the
  true extent is at least that). Basin width along an axis: min of its two extents, i.e. the largest a such
  that the increase stays under the threshold on the whole segment [-a, a]. `basin_width` is the mean over axes.
- Flat fraction: the fraction of finite grid points whose increase is under the threshold.
- Curvature: least-squares fit of a + b x + c y + d x^2 + e xy + f y^2 (x, y relative to the centre) to the
  finite points within `fit_radius` of the centre (at least the centre's 3x3 neighbourhood is used: the radius
  is raised to sqrt(2) grid steps if smaller); the fit's Hessian [[2d, e], [e, 2f]] has eigenvalues
  `curvature_min` <= `curvature_max`. NaN if fewer than 6 points. On a line: a + b x + c x^2, curvature 2c.
- Convex fraction: among interior grid points whose 3x3 stencil is finite, the fraction where the central
  finite-difference Hessian [[fxx, fxy], [fxy, fyy]] is positive definite (fxx > 0 and fxx fyy - fxy^2 > 0).
  On a line: interior points with a positive second difference.
"""

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from core.errors import LandscapeError

N_ANGLES = 32
DEFAULT_RADII = (0.1, 0.25, 0.5)
DEFAULT_FIT_RADIUS = 0.25


def _fmt_radius(r: float) -> str:
    return f"{r:g}"


@dataclasses.dataclass(frozen=True)
class SurfaceMetrics:
    """Summary numbers of a 2-D loss surface (definitions in the module docstring)."""

    centre_loss: float
    centre_xy: tuple[float, float]
    threshold: float
    radii: tuple[float, ...]
    increase_at_radius: tuple[float, ...]
    basin_extents: tuple[float, float, float, float]  # -x, +x, -y, +y
    basin_at_edge: tuple[bool, bool, bool, bool]
    basin_width_x: float
    basin_width_y: float
    basin_width: float
    flat_fraction: float
    curvature_min: float
    curvature_max: float
    fit_radius: float
    fit_points: int
    convex_fraction: float
    n_points: int
    n_nan: int

    def to_dict(self) -> dict[str, float | int | bool]:
        """A flat dict of scalars (for tables and JSON): one `increase_r<r>` key per radius, the basin extents as
        `basin_extent_{-x,+x,-y,+y}`, and the remaining fields by name."""
        out: dict[str, float | int | bool] = {
            "centre_loss": self.centre_loss,
            "centre_x": self.centre_xy[0],
            "centre_y": self.centre_xy[1],
            "threshold": self.threshold,
        }
        for r, v in zip(self.radii, self.increase_at_radius, strict=True):
            out[f"increase_r{_fmt_radius(r)}"] = v
        for side, v, edge in zip(("-x", "+x", "-y", "+y"), self.basin_extents, self.basin_at_edge, strict=True):
            out[f"basin_extent_{side}"] = v
            out[f"basin_at_edge_{side}"] = edge
        for name in (
            "basin_width_x",
            "basin_width_y",
            "basin_width",
            "flat_fraction",
            "curvature_min",
            "curvature_max",
            "fit_radius",
            "fit_points",
            "convex_fraction",
            "n_points",
            "n_nan",
        ):
            out[name] = getattr(self, name)
        return out


@dataclasses.dataclass(frozen=True)
class LineMetrics:
    """Summary numbers of a 1-D loss curve (definitions in the module docstring)."""

    centre_loss: float
    centre_x: float
    threshold: float
    radii: tuple[float, ...]
    increase_at_radius: tuple[float, ...]
    basin_extents: tuple[float, float]  # -x, +x
    basin_at_edge: tuple[bool, bool]
    basin_width: float
    flat_fraction: float
    curvature: float
    fit_radius: float
    fit_points: int
    convex_fraction: float
    n_points: int
    n_nan: int

    def to_dict(self) -> dict[str, float | int | bool]:
        """A flat dict of scalars: one `increase_r<r>` key per radius, `basin_extent_{-x,+x}`, other fields by name."""
        out: dict[str, float | int | bool] = {
            "centre_loss": self.centre_loss,
            "centre_x": self.centre_x,
            "threshold": self.threshold,
        }
        for r, v in zip(self.radii, self.increase_at_radius, strict=True):
            out[f"increase_r{_fmt_radius(r)}"] = v
        for side, v, edge in zip(("-x", "+x"), self.basin_extents, self.basin_at_edge, strict=True):
            out[f"basin_extent_{side}"] = v
            out[f"basin_at_edge_{side}"] = edge
        for name in (
            "basin_width",
            "flat_fraction",
            "curvature",
            "fit_radius",
            "fit_points",
            "convex_fraction",
            "n_points",
            "n_nan",
        ):
            out[name] = getattr(self, name)
        return out


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def _axis(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or len(a) < 1:
        raise ValueError(f"{name} must be a non-empty 1-D array")
    if len(a) > 1 and not np.all(np.diff(a) > 0):
        raise ValueError(f"{name} must be strictly increasing")
    return a


def _threshold(centre: float, threshold: float | None, rel_threshold: float) -> float:
    return float(threshold) if threshold is not None else float(rel_threshold) * abs(centre)


def _walk(coord: np.ndarray, inc: np.ndarray, c: int, step: int, thr: float) -> tuple[float, bool]:
    # Distance from coord[c] to where inc first reaches thr walking by `step`; (extent, reached_edge).
    k = c
    while True:
        nxt = k + step
        if nxt < 0 or nxt >= len(coord):
            return abs(coord[k] - coord[c]), True
        v = inc[nxt]
        if not np.isfinite(v):
            return abs(coord[k] - coord[c]), False
        if v >= thr:
            prev = inc[k]
            frac = 1.0 if v == prev else (thr - prev) / (v - prev)
            frac = min(max(frac, 0.0), 1.0)
            return abs(coord[k] + frac * (coord[nxt] - coord[k]) - coord[c]), False
        k = nxt


def _cell(coord: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Left cell index and fractional position of each q inside [coord[0], coord[-1]]; `inside` flags the rest.
    inside = (q >= coord[0]) & (q <= coord[-1])
    if len(coord) == 1:
        return np.zeros(len(q), dtype=np.int64), np.zeros(len(q)), inside
    k = np.clip(np.searchsorted(coord, q, side="right") - 1, 0, len(coord) - 2)
    t = (q - coord[k]) / (coord[k + 1] - coord[k])
    return k, t, inside


def _bilinear(xs: np.ndarray, ys: np.ndarray, z: np.ndarray, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, bool]:
    # Bilinear samples of z (NaN where a corner is non-finite) and whether every point lies inside the grid.
    kx, tx, in_x = _cell(xs, px)
    ky, ty, in_y = _cell(ys, py)
    if not np.all(in_x & in_y) or len(xs) < 2 or len(ys) < 2:
        return np.full(len(px), np.nan), False
    z00, z01 = z[ky, kx], z[ky, kx + 1]
    z10, z11 = z[ky + 1, kx], z[ky + 1, kx + 1]
    corners = np.stack([z00, z01, z10, z11])
    with np.errstate(invalid="ignore"):
        val = (1 - ty) * ((1 - tx) * z00 + tx * z01) + ty * ((1 - tx) * z10 + tx * z11)
    val[~np.all(np.isfinite(corners), axis=0)] = np.nan
    return val, True


def _mean_or_nan(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def _second_diff(coord: np.ndarray, fm: np.ndarray, f0: np.ndarray, fp: np.ndarray) -> np.ndarray:
    # Central second difference at the interior points of a possibly non-uniform axis (coord may be a column).
    hm = coord[1:-1] - coord[:-2]
    hp = coord[2:] - coord[1:-1]
    return 2.0 * ((fp - f0) / hp - (f0 - fm) / hm) / (hp + hm)


# --------------------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------------------


def surface_metrics(
    xs: Sequence[float] | np.ndarray,
    ys: Sequence[float] | np.ndarray,
    loss: np.ndarray,
    *,
    radii: Sequence[float] = DEFAULT_RADII,
    threshold: float | None = None,
    rel_threshold: float = 0.1,
    fit_radius: float = DEFAULT_FIT_RADIUS,
) -> SurfaceMetrics:
    """Summary numbers of a loss surface `loss[i, j] = L(xs[j], ys[i])` (definitions in the module docstring).

    Args:
        xs: strictly increasing x coordinates (columns).
        ys: strictly increasing y coordinates (rows).
        loss: array (len(ys), len(xs)); NaN / inf allowed.
        radii: radii for the increase over the centre.
        threshold: absolute loss increase defining the basin and the flat area.
        rel_threshold: used when `threshold` is None, as a fraction of |centre loss|.
        fit_radius: radius of the neighbourhood for the quadratic fit.

    Raises:
        LandscapeError: the loss at the centre is not finite.
    """
    xs, ys = _axis(xs, "xs"), _axis(ys, "ys")
    z = np.asarray(loss, dtype=np.float64)
    if z.shape != (len(ys), len(xs)):
        raise ValueError(f"loss has shape {z.shape}, expected {(len(ys), len(xs))}")
    finite = np.isfinite(z)
    z = np.where(finite, z, np.nan)
    ci, cj = int(np.argmin(np.abs(ys))), int(np.argmin(np.abs(xs)))
    x0, y0 = float(xs[cj]), float(ys[ci])
    centre = float(z[ci, cj])
    if not math.isfinite(centre):
        raise LandscapeError("the loss at the centre of the surface is not finite")
    thr = _threshold(centre, threshold, rel_threshold)
    inc = z - centre

    angles = 2 * np.pi * np.arange(N_ANGLES) / N_ANGLES
    increases = []
    for r in radii:
        samples, inside = _bilinear(xs, ys, inc, x0 + r * np.cos(angles), y0 + r * np.sin(angles))
        increases.append(_mean_or_nan(samples) if inside else math.nan)

    row, col = inc[ci, :], inc[:, cj]
    walks = (
        _walk(xs, row, cj, -1, thr),
        _walk(xs, row, cj, +1, thr),
        _walk(ys, col, ci, -1, thr),
        _walk(ys, col, ci, +1, thr),
    )
    extents = tuple(float(w[0]) for w in walks)
    at_edge = tuple(bool(w[1]) for w in walks)
    width_x, width_y = min(extents[0], extents[1]), min(extents[2], extents[3])

    n_finite = int(finite.sum())
    flat = float(np.sum(inc[finite] < thr) / n_finite)

    # Quadratic fit around the centre.
    steps = [np.max(np.diff(a)) for a in (xs, ys) if len(a) > 1]
    radius = max(float(fit_radius), math.sqrt(2) * max(steps) * (1 + 1e-9) if steps else 0.0)
    gx, gy = np.meshgrid(xs - x0, ys - y0)
    sel = finite & (gx**2 + gy**2 <= radius**2)
    cmin = cmax = math.nan
    n_fit = int(sel.sum())
    if n_fit >= 6:
        px, py = gx[sel], gy[sel]
        design = np.stack([np.ones_like(px), px, py, px**2, px * py, py**2], axis=1)
        coef, _, rank, _ = np.linalg.lstsq(design, z[sel], rcond=None)
        if rank == 6:
            hess = np.array([[2 * coef[3], coef[4]], [coef[4], 2 * coef[5]]])
            cmin, cmax = (float(v) for v in np.linalg.eigvalsh(hess))

    # Finite-difference convexity at interior points.
    convex = math.nan
    if len(xs) >= 3 and len(ys) >= 3:
        inner = slice(1, -1)
        fxx = _second_diff(xs, z[inner, :-2], z[inner, 1:-1], z[inner, 2:])
        fyy = _second_diff(ys[:, None], z[:-2, inner], z[1:-1, inner], z[2:, inner])
        dx2 = (xs[2:] - xs[:-2])[None, :]
        dy2 = (ys[2:] - ys[:-2])[:, None]
        fxy = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (dx2 * dy2)
        stencil_ok = np.ones_like(fxy, dtype=bool)
        for di in range(3):
            for dj in range(3):
                stencil_ok &= finite[di : di + len(ys) - 2, dj : dj + len(xs) - 2]
        if stencil_ok.any():
            with np.errstate(invalid="ignore"):
                pd = (fxx > 0) & (fxx * fyy - fxy**2 > 0)
            convex = float(np.sum(pd & stencil_ok) / np.sum(stencil_ok))

    return SurfaceMetrics(
        centre_loss=centre,
        centre_xy=(x0, y0),
        threshold=thr,
        radii=tuple(float(r) for r in radii),
        increase_at_radius=tuple(increases),
        basin_extents=extents,
        basin_at_edge=at_edge,
        basin_width_x=float(width_x),
        basin_width_y=float(width_y),
        basin_width=float((width_x + width_y) / 2),
        flat_fraction=flat,
        curvature_min=cmin,
        curvature_max=cmax,
        fit_radius=radius,
        fit_points=n_fit,
        convex_fraction=convex,
        n_points=int(z.size),
        n_nan=int(z.size - n_finite),
    )


def line_metrics(
    xs: Sequence[float] | np.ndarray,
    loss: np.ndarray,
    *,
    radii: Sequence[float] = DEFAULT_RADII,
    threshold: float | None = None,
    rel_threshold: float = 0.1,
    fit_radius: float = DEFAULT_FIT_RADIUS,
) -> LineMetrics:
    """Summary numbers of a loss curve `loss[j] = L(xs[j])` (definitions in the module docstring).

    Args:
        xs: strictly increasing coordinates.
        loss: array (len(xs),); NaN / inf allowed.
        radii: radii for the increase over the centre.
        threshold: absolute loss increase defining the basin and the flat fraction.
        rel_threshold: used when `threshold` is None, as a fraction of |centre loss|.
        fit_radius: half-width of the neighbourhood for the quadratic fit (raised to one grid step if smaller).

    Raises:
        LandscapeError: the loss at the centre is not finite.
    """
    xs = _axis(xs, "xs")
    z = np.asarray(loss, dtype=np.float64)
    if z.shape != (len(xs),):
        raise ValueError(f"loss has shape {z.shape}, expected {(len(xs),)}")
    finite = np.isfinite(z)
    z = np.where(finite, z, np.nan)
    c = int(np.argmin(np.abs(xs)))
    x0, centre = float(xs[c]), float(z[c])
    if not math.isfinite(centre):
        raise LandscapeError("the loss at the centre of the line is not finite")
    thr = _threshold(centre, threshold, rel_threshold)
    inc = z - centre

    increases = []
    for r in radii:
        q = np.array([x0 - r, x0 + r])
        k, t, inside = _cell(xs, q)
        if not inside.all() or len(xs) < 2:
            increases.append(math.nan)
            continue
        left, right = inc[k], inc[k + 1]
        with np.errstate(invalid="ignore"):
            val = (1 - t) * left + t * right
        val[~(np.isfinite(left) & np.isfinite(right))] = np.nan
        increases.append(_mean_or_nan(val))

    walks = (_walk(xs, inc, c, -1, thr), _walk(xs, inc, c, +1, thr))
    extents = (float(walks[0][0]), float(walks[1][0]))
    at_edge = (bool(walks[0][1]), bool(walks[1][1]))

    n_finite = int(finite.sum())
    flat = float(np.sum(inc[finite] < thr) / n_finite)

    step = float(np.max(np.diff(xs))) if len(xs) > 1 else 0.0
    radius = max(float(fit_radius), step * (1 + 1e-9))
    px = xs - x0
    sel = finite & (np.abs(px) <= radius)
    n_fit = int(sel.sum())
    curvature = math.nan
    if n_fit >= 3:
        design = np.stack([np.ones(n_fit), px[sel], px[sel] ** 2], axis=1)
        coef, _, rank, _ = np.linalg.lstsq(design, z[sel], rcond=None)
        if rank == 3:
            curvature = float(2 * coef[2])

    convex = math.nan
    if len(xs) >= 3:
        d2 = _second_diff(xs, z[:-2], z[1:-1], z[2:])
        ok = finite[:-2] & finite[1:-1] & finite[2:]
        if ok.any():
            with np.errstate(invalid="ignore"):
                convex = float(np.sum((d2 > 0) & ok) / np.sum(ok))

    return LineMetrics(
        centre_loss=centre,
        centre_x=x0,
        threshold=thr,
        radii=tuple(float(r) for r in radii),
        increase_at_radius=tuple(increases),
        basin_extents=extents,
        basin_at_edge=at_edge,
        basin_width=float(min(extents)),
        flat_fraction=flat,
        curvature=curvature,
        fit_radius=radius,
        fit_points=n_fit,
        convex_fraction=convex,
        n_points=int(z.size),
        n_nan=int(z.size - n_finite),
    )
