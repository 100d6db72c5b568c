"""Tests of core.geometry.sharpness against independently computed answers: quadratics whose expected and
worst-case increases are known in closed form."""

import json

import numpy as np
import pytest
import torch
from curvature_models import (
    PD_SPECTRUM,
    Quadratic,
    check_leaves_no_trace,
    check_weights_restored_when_the_loss_raises,
    quad_loss,
)

from core.errors import LandscapeError
from core.geometry.sharpness import robustness_curve, sharpness_average, sharpness_worst

# --------------------------------------------------------------------------------------------------------------
# Sharpness and robustness
# --------------------------------------------------------------------------------------------------------------


def test_sharpness_average_on_quadratic():
    model = Quadratic(PD_SPECTRUM)
    a = model.A.double()
    w = model.x.detach().double()
    assert sharpness_average(model, quad_loss, 0.0).mean == pytest.approx(0.0, abs=1e-12)
    s1 = sharpness_average(model, quad_loss, 0.05, n_samples=6)
    s2 = sharpness_average(model, quad_loss, 0.1, n_samples=6)
    assert s1.mean > 0 and s2.mean == pytest.approx(4 * s1.mean, rel=1e-5)  # exactly quadratic in rho, same draws
    # Expectation: each row (filter) r moves uniformly on a sphere of radius rho ||w_r||.
    rho = 0.1
    many = sharpness_average(model, quad_loss, rho, n_samples=300, seed=1)
    blocks = [float(torch.trace(a[5 * r : 5 * r + 5, 5 * r : 5 * r + 5])) for r in range(2)]
    expect = 0.5 * rho**2 * sum(float(w[r].norm()) ** 2 * blocks[r] / 5 for r in range(2))
    assert abs(many.mean - expect) < 4 * many.stderr
    adaptive = sharpness_average(model, quad_loss, rho, n_samples=300, seed=1, adaptive=True)
    expect_ad = 0.5 * rho**2 * float((torch.diagonal(a) * w.reshape(-1) ** 2).sum()) / 10
    assert abs(adaptive.mean - expect_ad) < 4 * adaptive.stderr


def test_sharpness_worst_on_quadratic_bounds_and_beats_average():
    model = Quadratic(PD_SPECTRUM)
    a = model.A.double()
    w = model.x.detach().double().reshape(-1)
    rho = 0.1
    bound = 0.5 * 10.0 * rho**2 * float(w.norm()) ** 2
    worst = sharpness_worst(model, quad_loss, rho, steps=20)
    assert worst.mean <= bound * (1 + 1e-5) and worst.mean >= 0.9 * bound
    avg = sharpness_average(model, quad_loss, rho, n_samples=8)
    assert sharpness_worst(model, quad_loss, rho, steps=5).mean >= avg.mean
    d = torch.diag(w.abs())
    bound_ad = 0.5 * rho**2 * float(torch.linalg.eigvalsh(d @ a @ d)[-1])
    worst_ad = sharpness_worst(model, quad_loss, rho, steps=20, adaptive=True)
    assert bound_ad * 0.9 <= worst_ad.mean <= bound_ad * (1 + 1e-5)
    assert worst_ad.mean >= sharpness_average(model, quad_loss, rho, adaptive=True).mean
    assert sharpness_worst(model, quad_loss, 0.0).mean == pytest.approx(0.0, abs=1e-12)


def test_sharpness_grows_with_rho_on_mlp(mlp):
    model, loss, _ = mlp
    avgs = [sharpness_average(model, loss, r, n_samples=4).mean for r in (0.01, 0.05, 0.2)]
    worsts = [sharpness_worst(model, loss, r, steps=3).mean for r in (0.01, 0.05, 0.2)]
    assert worsts[0] < worsts[1] < worsts[2]
    assert all(wc >= av for wc, av in zip(worsts, avgs, strict=True))


def test_robustness_curve():
    model = Quadratic(PD_SPECTRUM, dtype=torch.float32)
    sig = [0.0, 0.05, 0.1, 0.2]
    res = robustness_curve(model, quad_loss, sig, n_draws=4)
    assert res.loss_mean[0] == float(quad_loss(model)) == res.clean_loss and res.loss_std[0] == 0.0
    assert res.acc_mean is None and res.clean_acc is None
    # At the minimum of a quadratic, L(w + s d) = s^2 L(w + d) for every draw: the curve is exactly quadratic.
    scaled = [m / s**2 for m, s in zip(res.loss_mean[1:], sig[1:], strict=True)]
    np.testing.assert_allclose(scaled, scaled[0], rtol=1e-3)
    assert res.loss_std[1] > 0
    json.dumps(res.to_dict())


def test_robustness_curve_with_accuracy(mlp):
    model, loss, _ = mlp
    res = robustness_curve(model, loss, [0.0, 0.5], n_draws=2)
    clean = loss.evaluate(model)
    assert res.clean_loss == clean["loss"] and res.acc_mean[0] == clean["acc"] == res.clean_acc
    assert res.loss_mean[1] != res.loss_mean[0] and len(res.acc_std) == 2


# --------------------------------------------------------------------------------------------------------------
# No trace on the model, determinism, serialization
# --------------------------------------------------------------------------------------------------------------


CALLS = {
    "avg": lambda m, lf: sharpness_average(m, lf, 0.1, n_samples=2),
    "avg_ad": lambda m, lf: sharpness_average(m, lf, 0.1, n_samples=2, adaptive=True),
    "worst": lambda m, lf: sharpness_worst(m, lf, 0.1, steps=2),
    "robust": lambda m, lf: robustness_curve(m, lf, [0.0, 0.1], n_draws=2),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_weights_grads_and_flags_untouched(name):
    check_leaves_no_trace(CALLS[name])


@pytest.mark.parametrize("name", ["avg", "worst", "robust"])
def test_weights_restored_when_the_loss_raises(name):
    check_weights_restored_when_the_loss_raises(CALLS[name])


def test_deterministic_for_a_seed(mlp):
    model, loss, _ = mlp
    for adaptive in (False, True):
        s1 = sharpness_average(model, loss, 0.1, n_samples=3, seed=7, adaptive=adaptive)
        assert s1 == sharpness_average(model, loss, 0.1, n_samples=3, seed=7, adaptive=adaptive)
        assert s1 != sharpness_average(model, loss, 0.1, n_samples=3, seed=8, adaptive=adaptive)
    r = robustness_curve(model, loss, [0.1], n_draws=2, seed=1)
    assert r == robustness_curve(model, loss, [0.1], n_draws=2, seed=1)


def test_results_serialize_to_plain_json(mlp):
    model, loss, _ = mlp
    json.dumps(sharpness_worst(model, loss, 0.05, steps=1).to_dict())


def test_user_errors_are_landscape_errors(mlp):
    model, loss, _ = mlp
    with pytest.raises(LandscapeError, match="moves none"):
        sharpness_average(model, loss, 0.1, names=["0.bias"])
    assert sharpness_average(model, loss, 0.1, names=["0.bias"], adaptive=True).mean != 0.0
