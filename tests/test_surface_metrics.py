import math

import numpy as np
import pytest

from core.errors import LandscapeError
from core.geometry.surface_metrics import LineMetrics, SurfaceMetrics, line_metrics, surface_metrics


def grid(f, nx=41, ny=31, span_x=1.0, span_y=0.75):
    # Different sizes and spans per axis so that a transposed array or swapped axis fails the checks.
    xs, ys = np.linspace(-span_x, span_x, nx), np.linspace(-span_y, span_y, ny)
    x, y = np.meshgrid(xs, ys)
    return xs, ys, f(x, y)


def test_paraboloid_quadratic_fit_is_exact_and_convex():
    a, b, c = 1.5, 0.7, 0.4  # L = 2 + a x^2 + b y^2 + c xy, Hessian [[2a, c], [c, 2b]]
    xs, ys, z = grid(lambda x, y: 2 + a * x**2 + b * y**2 + c * x * y + 0.3 * x - 0.1 * y)
    m = surface_metrics(xs, ys, z, threshold=0.1)
    expected = np.linalg.eigvalsh(np.array([[2 * a, c], [c, 2 * b]]))
    assert (m.curvature_min, m.curvature_max) == pytest.approx(tuple(expected), rel=1e-8)
    assert m.convex_fraction == 1.0
    assert m.centre_loss == pytest.approx(2.0) and m.centre_xy == (0.0, 0.0)
    assert m.n_nan == 0 and m.n_points == z.size and m.fit_points >= 9


def test_saddle_has_no_convex_points():
    xs, ys, z = grid(lambda x, y: x**2 - 3 * y**2)
    m = surface_metrics(xs, ys, z, threshold=0.1)
    assert m.convex_fraction == 0.0
    assert (m.curvature_min, m.curvature_max) == pytest.approx((-6.0, 2.0), rel=1e-8)
    # Positive second derivatives along both axes, yet a saddle: Hessian [[2, 3], [3, 2]], eigenvalues -1 and 5.
    xs, ys, z = grid(lambda x, y: x**2 + y**2 + 3 * x * y)
    m = surface_metrics(xs, ys, z, threshold=0.1)
    assert m.convex_fraction == 0.0
    assert (m.curvature_min, m.curvature_max) == pytest.approx((-1.0, 5.0), rel=1e-8)


def test_increase_at_radius_is_the_circle_mean():
    a, b = 1.0, 3.0
    xs, ys, z = grid(lambda x, y: a * x**2 + b * y**2)
    m = surface_metrics(xs, ys, z, radii=(0.1, 0.5, 2.0), threshold=0.1)
    h = xs[1] - xs[0]
    for r, got in zip(m.radii[:2], m.increase_at_radius[:2], strict=True):
        # Mean of a r^2 cos^2 + b r^2 sin^2 over the circle; bilinear error is at most max|L''| h^2 / 8 per sample.
        assert got == pytest.approx((a + b) * r**2 / 2, abs=2 * b * h**2 / 8 + 1e-12)
    assert math.isnan(m.increase_at_radius[2])  # the circle leaves the grid


def test_basin_width_for_a_given_threshold():
    xs, ys, z = grid(lambda x, y: 1.0 + x**2 + 4 * y**2, nx=41, ny=41, span_y=1.0)
    m = surface_metrics(xs, ys, z, threshold=0.25)
    # x^2 = 0.25 at |x| = 0.5 and 4 y^2 = 0.25 at |y| = 0.25, both grid points: exact.
    assert m.basin_extents == pytest.approx((0.5, 0.5, 0.25, 0.25))
    assert m.basin_width_x == pytest.approx(0.5) and m.basin_width_y == pytest.approx(0.25)
    assert m.basin_width == pytest.approx(0.375)
    assert m.basin_at_edge == (False, False, False, False)
    # Off-grid crossing: linear interpolation between grid points, error below one step.
    m = surface_metrics(xs, ys, z, threshold=0.2)
    assert m.basin_width_x == pytest.approx(math.sqrt(0.2), abs=5e-3)
    assert m.basin_width_y == pytest.approx(math.sqrt(0.05), abs=5e-3)
    # Relative threshold: 0.1 * |centre loss| = 0.1.
    m = surface_metrics(xs, ys, z, rel_threshold=0.1)
    assert m.threshold == pytest.approx(0.1)


def test_asymmetric_basin_takes_the_narrow_side():
    xs, ys, z = grid(lambda x, y: np.where(x > 0, 4 * x**2, x**2) + y**2, nx=41, ny=41, span_y=1.0)
    m = surface_metrics(xs, ys, z, threshold=0.25)
    assert m.basin_extents[:2] == pytest.approx((0.5, 0.25))
    assert m.basin_width_x == pytest.approx(0.25)


def test_flat_surface_reaches_the_edge():
    xs, ys, z = grid(lambda x, y: 0 * x + 5.0)
    m = surface_metrics(xs, ys, z)
    assert m.basin_at_edge == (True, True, True, True)
    assert m.basin_extents == pytest.approx((1.0, 1.0, 0.75, 0.75))
    assert m.flat_fraction == 1.0


def test_flat_fraction_approximates_the_disc_area():
    xs, ys, z = grid(lambda x, y: x**2 + y**2, nx=81, ny=81, span_y=1.0)
    m = surface_metrics(xs, ys, z, threshold=0.25)
    assert m.flat_fraction == pytest.approx(math.pi * 0.25 / 4, abs=0.01)


def test_nan_handling():
    xs, ys, z = grid(lambda x, y: x**2 + y**2, nx=41, ny=41, span_y=1.0)
    z = z.copy()
    z[0, 0] = np.nan
    z[-1, -1] = np.inf
    z[20, 26] = np.nan  # on the +x axis at x = 0.3
    m = surface_metrics(xs, ys, z, threshold=0.25)
    assert m.n_nan == 3
    assert m.basin_extents[1] == pytest.approx(0.25) and not m.basin_at_edge[1]  # walk stops at the last finite
    assert m.basin_extents[0] == pytest.approx(0.5)
    assert m.convex_fraction == 1.0  # stencils touching a NaN are left out, the rest stay convex
    assert m.flat_fraction == pytest.approx(np.sum(np.isfinite(z) & (z < 0.25)) / np.isfinite(z).sum())
    assert math.isfinite(m.increase_at_radius[0]) and math.isfinite(m.curvature_max)
    z[20, 20] = np.nan
    with pytest.raises(LandscapeError):
        surface_metrics(xs, ys, z)


def test_to_dict_is_flat():
    xs, ys, z = grid(lambda x, y: x**2 + y**2)
    m = surface_metrics(xs, ys, z, radii=(0.1, 0.25))
    d = m.to_dict()
    assert isinstance(m, SurfaceMetrics)
    assert d["increase_r0.1"] == m.increase_at_radius[0] and d["increase_r0.25"] == m.increase_at_radius[1]
    assert d["basin_extent_+y"] == m.basin_extents[3]
    assert all(isinstance(v, int | float | bool) for v in d.values())
    with pytest.raises(ValueError):
        surface_metrics(xs, ys, z.T)


def test_line_metrics_on_a_parabola():
    xs = np.linspace(-1, 1, 41)
    z = 2.0 + 3.0 * xs**2
    m = line_metrics(xs, z, radii=(0.1, 0.5, 1.5), threshold=0.75)
    assert isinstance(m, LineMetrics)
    assert m.curvature == pytest.approx(6.0, rel=1e-8)
    assert m.convex_fraction == 1.0
    h = xs[1] - xs[0]
    assert m.increase_at_radius[0] == pytest.approx(0.03, abs=6 * h**2 / 8)
    assert m.increase_at_radius[1] == pytest.approx(0.75, abs=6 * h**2 / 8)
    assert math.isnan(m.increase_at_radius[2])
    assert m.basin_extents == pytest.approx((0.5, 0.5)) and m.basin_width == pytest.approx(0.5)
    concave = line_metrics(xs, -(xs**2), threshold=0.1)
    assert concave.convex_fraction == 0.0 and concave.curvature == pytest.approx(-2.0)
    z_nan = z.copy()
    z_nan[[0, 35]] = [np.nan, np.inf]
    m = line_metrics(xs, z_nan, threshold=0.75)
    assert m.n_nan == 2 and m.basin_extents[1] == pytest.approx(0.5)
    assert m.to_dict()["basin_width"] == m.basin_width
    z_nan[20] = np.nan
    with pytest.raises(LandscapeError):
        line_metrics(xs, z_nan)
