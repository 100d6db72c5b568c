"""Which attention implementation a model runs: a context manager for paths that higher-order autodiff and
`torch.func.vmap` can go through.

It sits below both users, `core.geometry.hvp` (Hessian-vector products need double backward) and
`core.geometry.landscape` (batched grid points vmap over `functional_call`), so neither imports the other for it.
"""

import contextlib
from collections.abc import Iterator

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel


@contextlib.contextmanager
def attention_for_second_derivatives(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Context manager: every attention path of the model supports double backward and forward-over-reverse.

    Fused scaled-dot-product kernels (e.g. the CPU flash kernel) have no second derivative. Inside the block,
    modules with a boolean `fused_attn` attribute (timm `Attention`) compute attention explicitly, and direct
    `F.scaled_dot_product_attention` calls use the math backend. The flags are restored on exit, also on an
    exception. A graph built inside the block can be differentiated twice after it.

    Yields:
        The model.
    """
    saved = []
    for module in model.modules():
        flag = getattr(module, "fused_attn", None)
        if isinstance(flag, bool):
            saved.append((module, flag))
    try:
        for module, _ in saved:
            module.fused_attn = False
        with sdpa_kernel(SDPBackend.MATH):
            yield model
    finally:
        for module, flag in saved:
            module.fused_attn = flag
