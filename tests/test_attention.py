"""Tests of core.geometry.attention: the context that gives attention double backward, and restores the flags."""

import pytest
import torch
import torch.nn.functional as F
from curvature_models import tiny_vit
from torch import nn

from core.geometry.attention import attention_for_second_derivatives


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
