"""Tests of core.geometry.hvp against independently computed answers: full Hessians from
torch.autograd.functional.hessian and finite differences."""

import math

import pytest
import torch
from curvature_models import (
    assert_same_weights,
    check_leaves_no_trace,
    make_mlp,
    snapshot,
    tiny_vit,
)

from core.errors import LandscapeError
from core.geometry.hvp import HvpOperator, hvp

# --------------------------------------------------------------------------------------------------------------
# Hessian-vector products
# --------------------------------------------------------------------------------------------------------------


def test_hvp_matches_full_hessian(mlp):
    model, loss, h = mlp
    gen = torch.Generator().manual_seed(1)
    v = {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in model.named_parameters()}
    flat_v = torch.cat([t.reshape(-1) for t in v.values()])
    expect = h @ flat_v
    for method in ("double_backward", "forward_over_reverse", "auto"):
        out = hvp(model, loss, v, method=method)
        got = torch.cat([out[n].reshape(-1) for n, _ in model.named_parameters()])
        torch.testing.assert_close(got, expect, rtol=1e-9, atol=1e-11)
    # A missing entry counts as zero; the result covers every parameter considered.
    only = hvp(model, loss, {"2.weight": v["2.weight"]})
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    start = sum(sizes[: names.index("2.weight")])
    cols = slice(start, start + sizes[names.index("2.weight")])
    expect_only = h[:, cols] @ v["2.weight"].reshape(-1)
    torch.testing.assert_close(torch.cat([only[n].reshape(-1) for n in names]), expect_only, rtol=1e-9, atol=1e-11)
    # A subset of names gives the diagonal block.
    sub = hvp(model, loss, v, names=["2.weight"])
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
    out = hvp(vit, loss, v)
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
    fwd = hvp(vit, loss, v, method="forward_over_reverse")
    torch.testing.assert_close(torch.cat([fwd[n].reshape(-1) for n in names]), got, rtol=1e-8, atol=1e-10)


def test_hvp_operator_reuses_one_graph_and_counts():
    model, loss = make_mlp(hidden=4)
    calls = []

    def counting(m):
        calls.append(1)
        return loss(m)

    with HvpOperator(model, counting) as op:
        for _ in range(3):
            op(torch.ones(op.n, dtype=op.dtype))
        assert op.n_hvp == 3 and len(calls) == 1 and op.loss == pytest.approx(float(loss(model).detach()))
    assert op._grads is None


# --------------------------------------------------------------------------------------------------------------
# No trace on the model, errors
# --------------------------------------------------------------------------------------------------------------


CALLS = {
    "hvp": lambda m, lf: hvp(m, lf, {n: torch.ones_like(p) for n, p in m.named_parameters()}),
    "hvp_fwd": lambda m, lf: hvp(
        m, lf, {n: torch.ones_like(p) for n, p in m.named_parameters()}, method="forward_over_reverse"
    ),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_weights_grads_and_flags_untouched(name):
    check_leaves_no_trace(CALLS[name])


def test_user_errors_are_landscape_errors(mlp):
    model, loss, _ = mlp
    with pytest.raises(LandscapeError):
        hvp(model, loss, {"missing": torch.zeros(1)})
