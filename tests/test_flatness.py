"""Tests of core.flatness against independently computed answers: full Hessians from
torch.autograd.functional.hessian, finite differences, and quadratics with a known spectrum."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from core import flatness as fl
from core.attention import attention_for_second_derivatives
from core.directions import random_direction
from core.errors import LandscapeError

# --------------------------------------------------------------------------------------------------------------
# Small models and independent reference computations
# --------------------------------------------------------------------------------------------------------------


class Loss:
    """loss_fn(model) = crit(model(x)); `outputs(model, params)` evaluates the same loss functionally."""

    def __init__(self, x: torch.Tensor, crit, with_acc: bool = False, y: torch.Tensor | None = None):
        self.x, self.crit, self.y = x, crit, y
        if with_acc:
            self.evaluate = self._evaluate

    def __call__(self, model: nn.Module) -> torch.Tensor:
        return self.crit(model(self.x))

    def functional(self, model: nn.Module, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.crit(torch.func.functional_call(model, params, (self.x,)))

    def _evaluate(self, model: nn.Module) -> dict[str, float]:
        out = model(self.x)
        return {"loss": float(self.crit(out)), "acc": float((out.argmax(1) == self.y).float().mean())}


def make_mlp(hidden: int = 12, d_in: int = 5, d_out: int = 4, dtype=torch.float64, seed: int = 0, n: int = 24):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Linear(hidden, d_out)).to(dtype)
    x = torch.randn(n, d_in, dtype=dtype)
    y = torch.randint(0, d_out, (n,))
    return model.eval(), Loss(x, lambda out: F.cross_entropy(out, y), with_acc=True, y=y)


class Quadratic(nn.Module):
    """L(x) = 0.5 (x - c)^T A (x - c) over a (2, n/2) parameter (two "filters"), Hessian exactly A."""

    def __init__(self, spectrum, dtype=torch.float64, seed: int = 0, at_minimum: bool = True):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        n = len(spectrum)
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
        self.register_buffer("A", (q @ torch.diag(torch.tensor(spectrum, dtype=torch.float64)) @ q.T).to(dtype))
        self.x = nn.Parameter(torch.randn(2, n // 2, generator=gen, dtype=torch.float64).to(dtype))
        shift = 0.0 if at_minimum else torch.randn(n, generator=gen, dtype=torch.float64).to(dtype)
        self.register_buffer("c", self.x.detach().reshape(-1).clone() + shift)

    def forward(self) -> torch.Tensor:
        r = self.x.reshape(-1) - self.c
        return 0.5 * r @ self.A @ r


def quad_loss(model: nn.Module) -> torch.Tensor:
    return model()


def full_hessian(model: nn.Module, loss: Loss, names: list[str] | None = None) -> torch.Tensor:
    """The exact Hessian, by torch.autograd.functional.hessian of the functional loss (float64)."""
    params = dict(model.named_parameters())
    names = names or [n for n, p in params.items() if p.requires_grad]
    shapes = [params[n].shape for n in names]
    flat0 = torch.cat([params[n].detach().reshape(-1) for n in names]).double()

    def f(flat):
        d, off = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = math.prod(s)
            d[n] = flat[off : off + k].reshape(s).to(params[n].dtype)
            off += k
        return loss.functional(model, d).double()

    return torch.autograd.functional.hessian(f, flat0)


def snapshot(model: nn.Module):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_same_weights(model: nn.Module, snap) -> None:
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), snap[n]), n


def tiny_vit(dtype=torch.float64) -> tuple[nn.Module, Loss]:
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=16, depth=1, num_heads=2, num_classes=3)
    vit = vit.to(dtype).eval()
    for m in vit.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = True  # the fused path has no double backward on the CPU; the context must switch it off
    x = torch.randn(4, 1, 8, 8, dtype=dtype)
    y = torch.tensor([0, 1, 2, 1])
    return vit, Loss(x, lambda out: F.cross_entropy(out, y))


@pytest.fixture(scope="module")
def mlp():
    model, loss = make_mlp()
    return model, loss, full_hessian(model, loss)


SPECTRUM = [-2.0, -0.5, 0.1, 0.3, 0.7, 1.0, 1.5, 2.5, 4.0, 10.0]
PD_SPECTRUM = [0.05, 0.1, 0.3, 0.7, 1.0, 1.5, 2.5, 4.0, 6.0, 10.0]


# --------------------------------------------------------------------------------------------------------------
# Attention and Hessian-vector products
# --------------------------------------------------------------------------------------------------------------


def test_attention_context_switches_fused_attention_off_and_restores():
    vit, _ = tiny_vit()
    attn = [m for m in vit.modules() if hasattr(m, "fused_attn")]
    assert attn
    with pytest.raises(KeyError), attention_for_second_derivatives(vit):
        assert all(m.fused_attn is False for m in attn)
        raise KeyError("boom")
    assert all(m.fused_attn is True for m in attn)


def test_attention_context_gives_double_backward_through_sdpa():
    q = torch.randn(1, 2, 4, 8, requires_grad=True)

    def hv():
        loss = (F.scaled_dot_product_attention(q, 2 * q, 3 * q) ** 2).sum()
        (g,) = torch.autograd.grad(loss, q, create_graph=True)
        return torch.autograd.grad(g, q, torch.ones_like(g))[0]

    with attention_for_second_derivatives(nn.Linear(1, 1)):
        inside = hv()
    assert torch.isfinite(inside).all() and inside.abs().sum() > 0


def test_hvp_matches_full_hessian(mlp):
    model, loss, h = mlp
    gen = torch.Generator().manual_seed(1)
    v = {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in model.named_parameters()}
    flat_v = torch.cat([t.reshape(-1) for t in v.values()])
    expect = h @ flat_v
    for method in ("double_backward", "forward_over_reverse", "auto"):
        out = fl.hvp(model, loss, v, method=method)
        got = torch.cat([out[n].reshape(-1) for n, _ in model.named_parameters()])
        torch.testing.assert_close(got, expect, rtol=1e-9, atol=1e-11)
    # A missing entry counts as zero; the result covers every parameter considered.
    only = fl.hvp(model, loss, {"2.weight": v["2.weight"]})
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    start = sum(sizes[: names.index("2.weight")])
    cols = slice(start, start + sizes[names.index("2.weight")])
    expect_only = h[:, cols] @ v["2.weight"].reshape(-1)
    torch.testing.assert_close(torch.cat([only[n].reshape(-1) for n in names]), expect_only, rtol=1e-9, atol=1e-11)
    # A subset of names gives the diagonal block.
    sub = fl.hvp(model, loss, v, names=["2.weight"])
    assert list(sub) == ["2.weight"]
    torch.testing.assert_close(sub["2.weight"].reshape(-1), h[cols, cols] @ v["2.weight"].reshape(-1))


def test_hvp_through_tiny_vit_matches_finite_differences():
    vit, loss = tiny_vit()
    names = [n for n, p in vit.named_parameters() if p.requires_grad]
    params = [p for p in vit.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(3)
    v = {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in zip(names, params, strict=True)}
    scale = math.sqrt(sum(float(t.pow(2).sum()) for t in v.values()))
    v = {n: t / scale for n, t in v.items()}  # unit v keeps the O(h^2) finite-difference error small
    snap = snapshot(vit)
    out = fl.hvp(vit, loss, v)
    assert all(m.fused_attn is True for m in vit.modules() if hasattr(m, "fused_attn"))
    assert_same_weights(vit, snap)

    def grad_at(h: float) -> torch.Tensor:
        d = {n: p.detach() + h * v[n] for n, p in zip(names, params, strict=True)}
        with torch.enable_grad():
            d = {n: t.requires_grad_() for n, t in d.items()}
            g = torch.autograd.grad(loss.functional(vit, d), list(d.values()))
        return torch.cat([t.reshape(-1) for t in g])

    h = 1e-5
    fd = (grad_at(h) - grad_at(-h)) / (2 * h)
    got = torch.cat([out[n].reshape(-1) for n in names])
    assert got.abs().max() > 1e-3
    torch.testing.assert_close(got, fd, rtol=1e-5, atol=1e-7)
    fwd = fl.hvp(vit, loss, v, method="forward_over_reverse")
    torch.testing.assert_close(torch.cat([fwd[n].reshape(-1) for n in names]), got, rtol=1e-8, atol=1e-10)


def test_hvp_operator_reuses_one_graph_and_counts():
    model, loss = make_mlp(hidden=4)
    calls = []

    def counting(m):
        calls.append(1)
        return loss(m)

    with fl.HvpOperator(model, counting) as op:
        for _ in range(3):
            op(torch.ones(op.n, dtype=op.dtype))
        assert op.n_hvp == 3 and len(calls) == 1 and op.loss == pytest.approx(float(loss(model).detach()))
    assert op._grads is None


# --------------------------------------------------------------------------------------------------------------
# Eigenvalues
# --------------------------------------------------------------------------------------------------------------


def test_top_eigenvalues_and_vectors_match_full_hessian(mlp):
    model, loss, h = mlp
    exact = torch.linalg.eigvalsh(h).numpy()
    res = fl.hessian_eigenvalues(model, loss, k=3, return_vectors=True)
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
    res = fl.hessian_eigenvalues(model, loss, k=8, max_iter=h.shape[0], tol=1e-9, return_vectors=True)
    np.testing.assert_allclose(res.values, exact[:8], rtol=1e-6)
    u = torch.stack([torch.cat([v[n].reshape(-1) for n, _ in model.named_parameters()]) for v in res.vectors])
    torch.testing.assert_close(u @ u.T, torch.eye(8, dtype=u.dtype), atol=1e-6, rtol=0)


def test_most_negative_eigenvalue(mlp):
    model, loss, h = mlp
    exact = torch.linalg.eigvalsh(h).numpy()
    assert exact[0] < -1e-3 * exact[-1]  # the check below is about a real negative eigenvalue
    sa = fl.hessian_eigenvalues(model, loss, k=1, which="SA", max_iter=124)
    assert sa.values[0] == pytest.approx(exact[0], rel=1e-3)
    lmax, lmin = fl.hessian_extreme_eigenvalues(model, loss, max_iter=124)
    assert lmax == pytest.approx(exact[-1], rel=1e-3)
    assert lmin == pytest.approx(exact[0], rel=1e-3)


def test_quadratic_known_spectrum():
    model = Quadratic(SPECTRUM)
    la = fl.hessian_eigenvalues(model, quad_loss, k=3)
    np.testing.assert_allclose(la.values, [10.0, 4.0, 2.5], rtol=1e-6)
    sa = fl.hessian_eigenvalues(model, quad_loss, k=2, which="SA")
    np.testing.assert_allclose(sa.values, [-0.5, -2.0], rtol=1e-6)
    lm = fl.hessian_eigenvalues(model, quad_loss, k=2, which="LM")
    np.testing.assert_allclose(lm.values, [10.0, 4.0], rtol=1e-6)
    assert fl.hessian_extreme_eigenvalues(model, quad_loss) == pytest.approx((10.0, -2.0), rel=1e-6)
    # k larger than the dimension: every eigenvalue, through the Krylov-exhaustion restart.
    allv = fl.hessian_eigenvalues(model, quad_loss, k=20, tol=1e-8)
    np.testing.assert_allclose(allv.values, sorted(SPECTRUM, reverse=True), rtol=1e-6, atol=1e-8)


def test_unconverged_lanczos_says_so(mlp):
    model, loss, _ = mlp
    res = fl.hessian_eigenvalues(model, loss, k=3, max_iter=3, tol=1e-12)
    assert res.iterations == 3 and not all(res.converged) and len(res.values) == 3


# --------------------------------------------------------------------------------------------------------------
# Trace and density
# --------------------------------------------------------------------------------------------------------------


def test_trace_hutchinson_and_hutchpp(mlp):
    model, loss, h = mlp
    exact = float(torch.trace(h))
    hutch = fl.hessian_trace(model, loss, n_probes=200)
    assert hutch.stderr > 0 and hutch.n_hvp == 200
    assert abs(hutch.estimate - exact) < 4 * hutch.stderr
    # Hutch++ whose sketch spans the whole space is exact.
    n = h.shape[0]
    exact_pp = fl.hessian_trace(model, loss, n_probes=3 * n, method="hutch++")
    assert exact_pp.estimate == pytest.approx(exact, rel=1e-8)
    small_pp = fl.hessian_trace(model, loss, n_probes=60, method="hutch++")
    assert abs(small_pp.estimate - exact) < 4 * small_pp.stderr + 1e-9


def test_trace_on_quadratic_subset_and_errors():
    model = Quadratic(SPECTRUM)
    res = fl.hessian_trace(model, quad_loss, n_probes=400, seed=5)
    assert abs(res.estimate - sum(SPECTRUM)) < 4 * res.stderr
    with pytest.raises(LandscapeError):
        fl.hessian_trace(model, quad_loss, method="exact")
    with pytest.raises(LandscapeError):
        fl.hessian_trace(model, quad_loss, names=["nope"])


def test_spectral_density(mlp):
    model, loss, h = mlp
    exact = torch.linalg.eigvalsh(h).numpy()
    dens = fl.spectral_density(model, loss, n_iter=20, n_vectors=3)
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
    dens = fl.spectral_density(model, quad_loss, n_iter=50, n_vectors=64, seed=2)
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
    groups = fl.default_groups([n for n, _ in vit.named_parameters()])
    assert list(groups) == ["embed", "block 0", "norm", "head"]
    assert set(groups["embed"]) == {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"}
    assert fl.group_of("encoder.blocks.11.attn.qkv.weight") == "block 11"
    assert fl.group_of("decoder_blocks.0.mlp.fc1.weight") == "decoder"
    assert fl.group_of("mask_token") == "decoder"
    assert fl.group_of("encoder.norm.weight") == "norm"
    assert fl.group_of("head.1.weight") == "head"
    assert fl.group_of("something.else") == "other"


def test_per_block_breakdown_matches_diagonal_blocks(mlp):
    model, loss, h = mlp
    groups = {"first": ["0.weight", "0.bias"], "second": ["2.weight", "2.bias"]}
    done = []
    out = fl.per_block_breakdown(model, loss, groups, k=2, n_probes=200, progress=lambda d, t: done.append((d, t)))
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
    out = fl.per_block_breakdown(vit, loss, k=1, n_probes=2, max_iter=5)
    assert [b.group for b in out] == ["embed", "block 0", "norm", "head"]
    assert "pos_embed" not in out[0].names
    assert sum(b.n_params for b in out) == sum(p.numel() for p in vit.parameters() if p.requires_grad)


# --------------------------------------------------------------------------------------------------------------
# Sharpness and robustness
# --------------------------------------------------------------------------------------------------------------


def test_sharpness_average_on_quadratic():
    model = Quadratic(PD_SPECTRUM)
    a = model.A.double()
    w = model.x.detach().double()
    assert fl.sharpness_average(model, quad_loss, 0.0).mean == pytest.approx(0.0, abs=1e-12)
    s1 = fl.sharpness_average(model, quad_loss, 0.05, n_samples=6)
    s2 = fl.sharpness_average(model, quad_loss, 0.1, n_samples=6)
    assert s1.mean > 0 and s2.mean == pytest.approx(4 * s1.mean, rel=1e-5)  # exactly quadratic in rho, same draws
    # Expectation: each row (filter) r moves uniformly on a sphere of radius rho ||w_r||.
    rho = 0.1
    many = fl.sharpness_average(model, quad_loss, rho, n_samples=300, seed=1)
    blocks = [float(torch.trace(a[5 * r : 5 * r + 5, 5 * r : 5 * r + 5])) for r in range(2)]
    expect = 0.5 * rho**2 * sum(float(w[r].norm()) ** 2 * blocks[r] / 5 for r in range(2))
    assert abs(many.mean - expect) < 4 * many.stderr
    adaptive = fl.sharpness_average(model, quad_loss, rho, n_samples=300, seed=1, adaptive=True)
    expect_ad = 0.5 * rho**2 * float((torch.diagonal(a) * w.reshape(-1) ** 2).sum()) / 10
    assert abs(adaptive.mean - expect_ad) < 4 * adaptive.stderr


def test_sharpness_worst_on_quadratic_bounds_and_beats_average():
    model = Quadratic(PD_SPECTRUM)
    a = model.A.double()
    w = model.x.detach().double().reshape(-1)
    rho = 0.1
    bound = 0.5 * 10.0 * rho**2 * float(w.norm()) ** 2
    worst = fl.sharpness_worst(model, quad_loss, rho, steps=20)
    assert worst.mean <= bound * (1 + 1e-5) and worst.mean >= 0.9 * bound
    avg = fl.sharpness_average(model, quad_loss, rho, n_samples=8)
    assert fl.sharpness_worst(model, quad_loss, rho, steps=5).mean >= avg.mean
    d = torch.diag(w.abs())
    bound_ad = 0.5 * rho**2 * float(torch.linalg.eigvalsh(d @ a @ d)[-1])
    worst_ad = fl.sharpness_worst(model, quad_loss, rho, steps=20, adaptive=True)
    assert bound_ad * 0.9 <= worst_ad.mean <= bound_ad * (1 + 1e-5)
    assert worst_ad.mean >= fl.sharpness_average(model, quad_loss, rho, adaptive=True).mean
    assert fl.sharpness_worst(model, quad_loss, 0.0).mean == pytest.approx(0.0, abs=1e-12)


def test_sharpness_grows_with_rho_on_mlp(mlp):
    model, loss, _ = mlp
    avgs = [fl.sharpness_average(model, loss, r, n_samples=4).mean for r in (0.01, 0.05, 0.2)]
    worsts = [fl.sharpness_worst(model, loss, r, steps=3).mean for r in (0.01, 0.05, 0.2)]
    assert worsts[0] < worsts[1] < worsts[2]
    assert all(wc >= av for wc, av in zip(worsts, avgs, strict=True))


def test_robustness_curve():
    model = Quadratic(PD_SPECTRUM, dtype=torch.float32)
    sig = [0.0, 0.05, 0.1, 0.2]
    res = fl.robustness_curve(model, quad_loss, sig, n_draws=4)
    assert res.loss_mean[0] == float(quad_loss(model)) == res.clean_loss and res.loss_std[0] == 0.0
    assert res.acc_mean is None and res.clean_acc is None
    # At the minimum of a quadratic, L(w + s d) = s^2 L(w + d) for every draw: the curve is exactly quadratic.
    scaled = [m / s**2 for m, s in zip(res.loss_mean[1:], sig[1:], strict=True)]
    np.testing.assert_allclose(scaled, scaled[0], rtol=1e-3)
    assert res.loss_std[1] > 0
    json.dumps(res.to_dict())


def test_robustness_curve_with_accuracy(mlp):
    model, loss, _ = mlp
    res = fl.robustness_curve(model, loss, [0.0, 0.5], n_draws=2)
    clean = loss.evaluate(model)
    assert res.clean_loss == clean["loss"] and res.acc_mean[0] == clean["acc"] == res.clean_acc
    assert res.loss_mean[1] != res.loss_mean[0] and len(res.acc_std) == 2


# --------------------------------------------------------------------------------------------------------------
# Convexity map
# --------------------------------------------------------------------------------------------------------------


def test_convexity_map_matches_exact_ratio():
    model, loss = make_mlp(hidden=6, d_in=3, d_out=2, dtype=torch.float32, seed=1)
    d1, d2 = random_direction(model, 1), random_direction(model, 2)
    xs, ys = [-0.5, 0.5], [0.0, 0.3]
    done = []
    got = fl.convexity_map(model, loss, d1, d2, xs, ys, max_iter=38, tol=1e-6, progress=lambda d, t: done.append(d))
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
    "hvp": lambda m, lf: fl.hvp(m, lf, {n: torch.ones_like(p) for n, p in m.named_parameters()}),
    "hvp_fwd": lambda m, lf: fl.hvp(
        m, lf, {n: torch.ones_like(p) for n, p in m.named_parameters()}, method="forward_over_reverse"
    ),
    "eigs": lambda m, lf: fl.hessian_eigenvalues(m, lf, k=2, max_iter=10, return_vectors=True),
    "extreme": lambda m, lf: fl.hessian_extreme_eigenvalues(m, lf, max_iter=10),
    "trace": lambda m, lf: fl.hessian_trace(m, lf, n_probes=6, method="hutch++"),
    "density": lambda m, lf: fl.spectral_density(m, lf, n_iter=5, n_vectors=2),
    "blocks": lambda m, lf: fl.per_block_breakdown(m, lf, n_probes=2, max_iter=5),
    "avg": lambda m, lf: fl.sharpness_average(m, lf, 0.1, n_samples=2),
    "avg_ad": lambda m, lf: fl.sharpness_average(m, lf, 0.1, n_samples=2, adaptive=True),
    "worst": lambda m, lf: fl.sharpness_worst(m, lf, 0.1, steps=2),
    "robust": lambda m, lf: fl.robustness_curve(m, lf, [0.0, 0.1], n_draws=2),
    "convexity": lambda m, lf: fl.convexity_map(
        m, lf, random_direction(m, 1), random_direction(m, 2), [0.0, 0.1], [0.1], max_iter=5
    ),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_weights_grads_and_flags_untouched(name):
    vit, loss = tiny_vit(dtype=torch.float32)
    vit.pos_embed.requires_grad_(False)
    vit.head.weight.grad = torch.full_like(vit.head.weight, 3.0)
    grad_obj = vit.head.weight.grad
    snap = snapshot(vit)
    out = CALLS[name](vit, loss)
    assert_same_weights(vit, snap)
    assert vit.head.weight.grad is grad_obj and bool((grad_obj == 3.0).all())
    assert all(p.grad is None for n, p in vit.named_parameters() if n != "head.weight")
    assert all(m.fused_attn is True for m in vit.modules() if hasattr(m, "fused_attn"))
    assert not vit.training
    if hasattr(out, "to_dict"):
        json.dumps(out.to_dict())


@pytest.mark.parametrize("name", ["avg", "worst", "robust", "convexity", "eigs"])
def test_weights_restored_when_the_loss_raises(name):
    model, loss = make_mlp(hidden=4, dtype=torch.float32)
    snap = snapshot(model)
    calls = []

    def flaky(m):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("data loader died")
        return loss(m)

    flaky.evaluate = lambda m: {"loss": float(flaky(m))}
    with pytest.raises(RuntimeError, match="data loader died"):
        CALLS[name](model, flaky)
        CALLS[name](model, flaky)  # the Hessian functions build one graph per call
        CALLS[name](model, flaky)
    assert_same_weights(model, snap)


def test_deterministic_for_a_seed(mlp):
    model, loss, _ = mlp
    t1 = fl.hessian_trace(model, loss, n_probes=8, seed=3)
    assert t1 == fl.hessian_trace(model, loss, n_probes=8, seed=3)
    assert t1.estimate != fl.hessian_trace(model, loss, n_probes=8, seed=4).estimate
    e1 = fl.hessian_eigenvalues(model, loss, k=2, max_iter=6, seed=1)
    assert e1.to_dict() == fl.hessian_eigenvalues(model, loss, k=2, max_iter=6, seed=1).to_dict()
    d1 = fl.spectral_density(model, loss, n_iter=4, n_vectors=2, seed=1)
    d2 = fl.spectral_density(model, loss, n_iter=4, n_vectors=2, seed=1)
    np.testing.assert_array_equal(d1.density, d2.density)
    for adaptive in (False, True):
        s1 = fl.sharpness_average(model, loss, 0.1, n_samples=3, seed=7, adaptive=adaptive)
        assert s1 == fl.sharpness_average(model, loss, 0.1, n_samples=3, seed=7, adaptive=adaptive)
        assert s1 != fl.sharpness_average(model, loss, 0.1, n_samples=3, seed=8, adaptive=adaptive)
    r = fl.robustness_curve(model, loss, [0.1], n_draws=2, seed=1)
    assert r == fl.robustness_curve(model, loss, [0.1], n_draws=2, seed=1)


def test_results_serialize_to_plain_json(mlp):
    model, loss, _ = mlp
    eig = fl.hessian_eigenvalues(model, loss, k=1, max_iter=5, return_vectors=True)
    d = eig.to_dict()
    assert "vectors" not in d and isinstance(d["values"], list)
    dens = fl.spectral_density(model, loss, n_iter=4, n_vectors=2, grid_points=11)
    dd = json.loads(json.dumps(dens.to_dict()))
    assert len(dd["grid"]) == 11 and len(dd["nodes"]) == 2
    json.dumps(fl.sharpness_worst(model, loss, 0.05, steps=1).to_dict())


def test_user_errors_are_landscape_errors(mlp):
    model, loss, _ = mlp
    with pytest.raises(LandscapeError):
        fl.hessian_eigenvalues(model, loss, which="XX")
    with pytest.raises(LandscapeError):
        fl.hessian_eigenvalues(model, lambda m: loss(m) * float("nan"))
    with pytest.raises(LandscapeError):
        fl.hvp(model, loss, {"missing": torch.zeros(1)})
    with pytest.raises(LandscapeError, match="moves none"):
        fl.sharpness_average(model, loss, 0.1, names=["0.bias"])
    assert fl.sharpness_average(model, loss, 0.1, names=["0.bias"], adaptive=True).mean != 0.0
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with pytest.raises(LandscapeError):
            fl.hessian_trace(model, loss)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
