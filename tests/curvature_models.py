"""Small models with exactly known Hessians, shared by the tests of the curvature kernels (test_hvp, test_hessian,
test_sharpness): independent reference computations (full Hessians from torch.autograd.functional.hessian),
quadratics with a known spectrum, a tiny ViT, and the checks that a kernel leaves no trace on the model."""

import json
import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
from torch import nn


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


SPECTRUM = [-2.0, -0.5, 0.1, 0.3, 0.7, 1.0, 1.5, 2.5, 4.0, 10.0]
PD_SPECTRUM = [0.05, 0.1, 0.3, 0.7, 1.0, 1.5, 2.5, 4.0, 6.0, 10.0]


def check_leaves_no_trace(call: Callable) -> None:
    """`call(model, loss_fn)` on a tiny ViT leaves weights, .grad, attention flags and the mode as they were."""
    vit, loss = tiny_vit(dtype=torch.float32)
    vit.pos_embed.requires_grad_(False)
    vit.head.weight.grad = torch.full_like(vit.head.weight, 3.0)
    grad_obj = vit.head.weight.grad
    snap = snapshot(vit)
    out = call(vit, loss)
    assert_same_weights(vit, snap)
    assert vit.head.weight.grad is grad_obj and bool((grad_obj == 3.0).all())
    assert all(p.grad is None for n, p in vit.named_parameters() if n != "head.weight")
    assert all(m.fused_attn is True for m in vit.modules() if hasattr(m, "fused_attn"))
    assert not vit.training
    if hasattr(out, "to_dict"):
        json.dumps(out.to_dict())


def check_weights_restored_when_the_loss_raises(call: Callable) -> None:
    """`call(model, loss_fn)` with a loss that raises on its third call restores the weights bit for bit."""
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
        call(model, flaky)
        call(model, flaky)  # the Hessian functions build one graph per call
        call(model, flaky)
    assert_same_weights(model, snap)
