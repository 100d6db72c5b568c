"""Tests of core.geometry.hessian against independently computed answers: full Hessians from
torch.autograd.functional.hessian, finite differences, and quadratics with a known spectrum."""

import json
import math

import numpy as np
import pytest
import torch
from curvature_models import (
    SPECTRUM,
    Quadratic,
    check_leaves_no_trace,
    check_weights_restored_when_the_loss_raises,
    full_hessian,
    make_mlp,
    quad_loss,
    tiny_vit,
)

from core.errors import LandscapeError
from core.geometry.directions import random_direction
from core.geometry.hessian import (
    convexity_map,
    default_groups,
    group_of,
    hessian_eigenvalues,
    hessian_extreme_eigenvalues,
    hessian_trace,
    per_block_breakdown,
    spectral_density,
)

# --------------------------------------------------------------------------------------------------------------
# Eigenvalues
# --------------------------------------------------------------------------------------------------------------


def test_top_eigenvalues_and_vectors_match_full_hessian(mlp):
    model, loss, h = mlp
    exact = torch.linalg.eigvalsh(h).numpy()
    res = hessian_eigenvalues(model, loss, k=3, return_vectors=True)
    assert all(res.converged) and res.n_hvp == res.iterations <= 50
    np.testing.assert_allclose(res.values, exact[::-1][:3], rtol=1e-3)
    # The top vector: Rayleigh quotient and H u = lambda u, and the second derivative along it by finite differences.
    u = torch.cat([res.vectors[0][n].reshape(-1) for n, _ in model.named_parameters()])
    assert float(u.norm()) == pytest.approx(1.0, abs=1e-10)
    assert float(torch.linalg.norm(h @ u - res.values[0] * u)) < 1e-3 * abs(res.values[0])
    params = {n: p.detach() for n, p in model.named_parameters()}
    step = 1e-3

    def at(t):
        return float(loss.functional(model, {n: p + t * res.vectors[0][n] for n, p in params.items()}))

    curvature = (at(step) - 2 * at(0.0) + at(-step)) / step**2
    assert curvature == pytest.approx(exact[-1], rel=1e-3)


def test_long_lanczos_run_has_no_ghost_eigenvalues(mlp):
    model, loss, h = mlp
    exact = torch.linalg.eigvalsh(h).numpy()[::-1]
    res = hessian_eigenvalues(model, loss, k=8, max_iter=h.shape[0], tol=1e-9, return_vectors=True)
    np.testing.assert_allclose(res.values, exact[:8], rtol=1e-6)
    u = torch.stack([torch.cat([v[n].reshape(-1) for n, _ in model.named_parameters()]) for v in res.vectors])
    torch.testing.assert_close(u @ u.T, torch.eye(8, dtype=u.dtype), atol=1e-6, rtol=0)


def test_most_negative_eigenvalue(mlp):
    model, loss, h = mlp
    exact = torch.linalg.eigvalsh(h).numpy()
    assert exact[0] < -1e-3 * exact[-1]  # the check below is about a real negative eigenvalue
    sa = hessian_eigenvalues(model, loss, k=1, which="SA", max_iter=124)
    assert sa.values[0] == pytest.approx(exact[0], rel=1e-3)
    lmax, lmin = hessian_extreme_eigenvalues(model, loss, max_iter=124)
    assert lmax == pytest.approx(exact[-1], rel=1e-3)
    assert lmin == pytest.approx(exact[0], rel=1e-3)


def test_quadratic_known_spectrum():
    model = Quadratic(SPECTRUM)
    la = hessian_eigenvalues(model, quad_loss, k=3)
    np.testing.assert_allclose(la.values, [10.0, 4.0, 2.5], rtol=1e-6)
    sa = hessian_eigenvalues(model, quad_loss, k=2, which="SA")
    np.testing.assert_allclose(sa.values, [-0.5, -2.0], rtol=1e-6)
    lm = hessian_eigenvalues(model, quad_loss, k=2, which="LM")
    np.testing.assert_allclose(lm.values, [10.0, 4.0], rtol=1e-6)
    assert hessian_extreme_eigenvalues(model, quad_loss) == pytest.approx((10.0, -2.0), rel=1e-6)
    # k larger than the dimension: every eigenvalue, through the Krylov-exhaustion restart.
    allv = hessian_eigenvalues(model, quad_loss, k=20, tol=1e-8)
    np.testing.assert_allclose(allv.values, sorted(SPECTRUM, reverse=True), rtol=1e-6, atol=1e-8)


def test_unconverged_lanczos_says_so(mlp):
    model, loss, _ = mlp
    res = hessian_eigenvalues(model, loss, k=3, max_iter=3, tol=1e-12)
    assert res.iterations == 3 and not all(res.converged) and len(res.values) == 3


# --------------------------------------------------------------------------------------------------------------
# Trace and density
# --------------------------------------------------------------------------------------------------------------


def test_trace_hutchinson_and_hutchpp(mlp):
    model, loss, h = mlp
    exact = float(torch.trace(h))
    hutch = hessian_trace(model, loss, n_probes=200)
    assert hutch.stderr > 0 and hutch.n_hvp == 200
    assert abs(hutch.estimate - exact) < 4 * hutch.stderr
    # Hutch++ whose sketch spans the whole space is exact.
    n = h.shape[0]
    exact_pp = hessian_trace(model, loss, n_probes=3 * n, method="hutch++")
    assert exact_pp.estimate == pytest.approx(exact, rel=1e-8)
    small_pp = hessian_trace(model, loss, n_probes=60, method="hutch++")
    assert abs(small_pp.estimate - exact) < 4 * small_pp.stderr + 1e-9


def test_trace_on_quadratic_subset_and_errors():
    model = Quadratic(SPECTRUM)
    res = hessian_trace(model, quad_loss, n_probes=400, seed=5)
    assert abs(res.estimate - sum(SPECTRUM)) < 4 * res.stderr
    with pytest.raises(LandscapeError):
        hessian_trace(model, quad_loss, method="exact")
    with pytest.raises(LandscapeError):
        hessian_trace(model, quad_loss, names=["nope"])


def test_spectral_density(mlp):
    model, loss, h = mlp
    exact = torch.linalg.eigvalsh(h).numpy()
    dens = spectral_density(model, loss, n_iter=20, n_vectors=3)
    assert np.trapezoid(dens.density, dens.grid) == pytest.approx(1.0, abs=1e-3)
    assert (dens.density >= 0).all() and dens.n_hvp == 60
    for nodes, weights in zip(dens.nodes, dens.weights, strict=True):
        assert weights.sum() == pytest.approx(1.0, abs=1e-10)
        assert nodes.min() >= exact[0] - 1e-8 and nodes.max() <= exact[-1] + 1e-8  # Ritz values interlace
    # Mass only where the eigenvalues are.
    outside = (dens.grid < exact[0] - 5 * dens.sigma) | (dens.grid > exact[-1] + 5 * dens.sigma)
    assert dens.density[outside].sum() * (dens.grid[1] - dens.grid[0]) < 1e-6
    # The top Ritz value of 20 steps has converged to lambda_max.
    assert max(n.max() for n in dens.nodes) == pytest.approx(exact[-1], rel=1e-3)


def test_spectral_density_quadrature_on_quadratic():
    model = Quadratic(SPECTRUM)
    dens = spectral_density(model, quad_loss, n_iter=50, n_vectors=64, seed=2)
    assert dens.n_iter == 10
    for nodes in dens.nodes:  # a full Lanczos run recovers the whole spectrum
        np.testing.assert_allclose(nodes, sorted(SPECTRUM), atol=1e-8)
    # The density-weighted mean estimates trace / n (Hutchinson with normalized Rademacher probes).
    means = np.array([(n * w).sum() for n, w in zip(dens.nodes, dens.weights, strict=True)])
    target = sum(SPECTRUM) / len(SPECTRUM)
    assert abs(means.mean() - target) < 4 * means.std(ddof=1) / math.sqrt(len(means))
    grid_mean = np.trapezoid(dens.grid * dens.density, dens.grid)
    assert grid_mean == pytest.approx(means.mean(), abs=1e-3)


# --------------------------------------------------------------------------------------------------------------
# Per-block breakdown
# --------------------------------------------------------------------------------------------------------------


def test_default_groups_for_vit_names():
    vit, _ = tiny_vit()
    groups = default_groups([n for n, _ in vit.named_parameters()])
    assert list(groups) == ["embed", "block 0", "norm", "head"]
    assert set(groups["embed"]) == {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"}
    assert group_of("encoder.blocks.11.attn.qkv.weight") == "block 11"
    assert group_of("decoder_blocks.0.mlp.fc1.weight") == "decoder"
    assert group_of("mask_token") == "decoder"
    assert group_of("encoder.norm.weight") == "norm"
    assert group_of("head.1.weight") == "head"
    assert group_of("something.else") == "other"


def test_per_block_breakdown_matches_diagonal_blocks(mlp):
    model, loss, h = mlp
    groups = {"first": ["0.weight", "0.bias"], "second": ["2.weight", "2.bias"]}
    done = []
    out = per_block_breakdown(model, loss, groups, k=2, n_probes=200, progress=lambda d, t: done.append((d, t)))
    assert [b.group for b in out] == ["first", "second"] and done[-1] == (2, 2)
    n_first = 5 * 12 + 12
    for b, block in zip(out, [h[:n_first, :n_first], h[n_first:, n_first:]], strict=True):
        exact = torch.linalg.eigvalsh(block).numpy()[::-1]
        assert b.n_params == block.shape[0]
        np.testing.assert_allclose(b.eigenvalues, exact[:2], rtol=1e-3)
        assert abs(b.trace - float(torch.trace(block))) < 4 * b.trace_stderr
    json.dumps([b.to_dict() for b in out])


def test_per_block_default_groups_on_vit_and_frozen_parameters():
    vit, loss = tiny_vit()
    vit.pos_embed.requires_grad_(False)
    out = per_block_breakdown(vit, loss, k=1, n_probes=2, max_iter=5)
    assert [b.group for b in out] == ["embed", "block 0", "norm", "head"]
    assert "pos_embed" not in out[0].names
    assert sum(b.n_params for b in out) == sum(p.numel() for p in vit.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------------------------------
# Convexity map
# --------------------------------------------------------------------------------------------------------------


def test_convexity_map_matches_exact_ratio():
    model, loss = make_mlp(hidden=6, d_in=3, d_out=2, dtype=torch.float32, seed=1)
    d1, d2 = random_direction(model, 1), random_direction(model, 2)
    xs, ys = [-0.5, 0.5], [0.0, 0.3]
    done = []
    got = convexity_map(model, loss, d1, d2, xs, ys, max_iter=38, tol=1e-6, progress=lambda d, t: done.append(d))
    assert got.shape == (2, 2) and done == [1, 2, 3, 4]
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            moved, _ = make_mlp(hidden=6, d_in=3, d_out=2, dtype=torch.float32, seed=1)
            with torch.no_grad():
                for n, p in moved.named_parameters():
                    p.add_(x * d1[n] + y * d2[n])
            ev = torch.linalg.eigvalsh(full_hessian(moved, loss)).numpy()
            assert got[i, j] == pytest.approx(abs(ev[0] / ev[-1]), rel=1e-3, abs=1e-5)


# --------------------------------------------------------------------------------------------------------------
# No trace on the model, determinism, serialization
# --------------------------------------------------------------------------------------------------------------


CALLS = {
    "eigs": lambda m, lf: hessian_eigenvalues(m, lf, k=2, max_iter=10, return_vectors=True),
    "extreme": lambda m, lf: hessian_extreme_eigenvalues(m, lf, max_iter=10),
    "trace": lambda m, lf: hessian_trace(m, lf, n_probes=6, method="hutch++"),
    "density": lambda m, lf: spectral_density(m, lf, n_iter=5, n_vectors=2),
    "blocks": lambda m, lf: per_block_breakdown(m, lf, n_probes=2, max_iter=5),
    "convexity": lambda m, lf: convexity_map(
        m, lf, random_direction(m, 1), random_direction(m, 2), [0.0, 0.1], [0.1], max_iter=5
    ),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_weights_grads_and_flags_untouched(name):
    check_leaves_no_trace(CALLS[name])


@pytest.mark.parametrize("name", ["convexity", "eigs"])
def test_weights_restored_when_the_loss_raises(name):
    check_weights_restored_when_the_loss_raises(CALLS[name])


def test_deterministic_for_a_seed(mlp):
    model, loss, _ = mlp
    t1 = hessian_trace(model, loss, n_probes=8, seed=3)
    assert t1 == hessian_trace(model, loss, n_probes=8, seed=3)
    assert t1.estimate != hessian_trace(model, loss, n_probes=8, seed=4).estimate
    e1 = hessian_eigenvalues(model, loss, k=2, max_iter=6, seed=1)
    assert e1.to_dict() == hessian_eigenvalues(model, loss, k=2, max_iter=6, seed=1).to_dict()
    d1 = spectral_density(model, loss, n_iter=4, n_vectors=2, seed=1)
    d2 = spectral_density(model, loss, n_iter=4, n_vectors=2, seed=1)
    np.testing.assert_array_equal(d1.density, d2.density)


def test_results_serialize_to_plain_json(mlp):
    model, loss, _ = mlp
    eig = hessian_eigenvalues(model, loss, k=1, max_iter=5, return_vectors=True)
    d = eig.to_dict()
    assert "vectors" not in d and isinstance(d["values"], list)
    dens = spectral_density(model, loss, n_iter=4, n_vectors=2, grid_points=11)
    dd = json.loads(json.dumps(dens.to_dict()))
    assert len(dd["grid"]) == 11 and len(dd["nodes"]) == 2


def test_user_errors_are_landscape_errors(mlp):
    model, loss, _ = mlp
    with pytest.raises(LandscapeError):
        hessian_eigenvalues(model, loss, which="XX")
    with pytest.raises(LandscapeError):
        hessian_eigenvalues(model, lambda m: loss(m) * float("nan"))
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with pytest.raises(LandscapeError):
            hessian_trace(model, loss)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
