"""Tests for core/studies/claims.py: the landscape numbers of a known surface, relative and with one absolute
threshold. The tables' choice of function is tested in tests/test_comparison.py, an end-to-end report in
tests/test_reproduce.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.studies.claims import landscape_numbers
from core.studies.measuring import Measured, ReproduceSpec


def test_landscape_numbers_of_a_known_quadratic():
    xs = np.linspace(-0.5, 0.5, 65)
    X, Y = np.meshgrid(xs, xs)
    c = 2.0
    loss = c * (1.0 + X**2 + 4.0 * Y**2)  # Hessian [[2c, 0], [0, 8c]]
    m = Measured(xs, xs, loss, {"centre_loss": 4.0, "lambda_max": 12.0, "trace": 20.0, "converged": True})
    spec = ReproduceSpec(rel_threshold=0.1)
    rel = landscape_numbers(m, spec, relative=True)
    assert rel["curvature_max"] == pytest.approx(8.0, rel=1e-6)
    assert rel["curvature_min"] == pytest.approx(2.0, rel=1e-6)
    # Increase under 0.1 c: |x| < sqrt(0.1), |y| < sqrt(0.1) / 2; the mean over the 4 axis directions.
    assert rel["basin_width"] == pytest.approx((math.sqrt(0.1) + math.sqrt(0.1) / 2) / 2, abs=0.005)
    assert rel["lambda_max"] == pytest.approx(3.0) and rel["trace"] == pytest.approx(5.0)
    assert rel["increase_r0.1"] == pytest.approx(0.01 * 2.5, rel=0.02)  # mean of x^2 + 4 y^2 on the circle
    ab = landscape_numbers(m, spec, relative=False, threshold=0.4)  # the same as 0.2 c
    assert ab["curvature_max"] == pytest.approx(16.0, rel=1e-6)
    assert ab["basin_width"] == pytest.approx((math.sqrt(0.2) + math.sqrt(0.2) / 2) / 2, abs=0.005)
    assert ab["basin_width_own"] == pytest.approx(rel["basin_width"])
    assert ab["lambda_max"] == 12.0 and ab["lambda_max_rel"] == pytest.approx(3.0)
