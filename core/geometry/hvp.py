"""Hessian-vector products of a loss at the model's current weights, and the conventions shared by the Hessian
(`core.geometry.hessian`) and sharpness (`core.geometry.sharpness`) kernels built on them.

Conventions:
- A loss function is `loss_fn(model) -> scalar tensor`, differentiable in the parameters. It may have
  `loss_fn.evaluate(model) -> dict[str, float]` with "loss" and maybe "acc"; `core.geometry.sharpness.robustness_curve`
  uses it when present. The caller sets the model's train/eval mode; nothing here changes it.
- The parameters considered are `names` (None: every trainable parameter, `core.geometry.params.select_parameters`).
  Frozen parameters (requires_grad=False) never count, even when named. The Hessian is the block of those
  parameters; all other parameters stay fixed.
- Nothing here leaves a trace on the model: parameters are restored bit for bit (also on exceptions), `.grad` is
  never touched (only `torch.autograd.grad` is used) and attention flags are restored.
- Randomness comes from seeded CPU `torch.Generator`s (moved to the parameter device afterwards): results are
  deterministic for a seed.
- Second derivatives need an attention path that supports double backward: every Hessian function runs the
  forward under `core.geometry.attention.attention_for_second_derivatives`, so users never set environment variables.
- Resume: every long function takes `journal` (a `core.store.journal.Journal` or a scope of one). Each expensive step
  (a Lanczos step, a trace probe, a sharpness draw, a robustness evaluation) is recorded there; a rerun after a
  kill replays the recorded steps and finishes bit for bit like an uninterrupted run. Hessian-vector products
  replayed from a journal still count in `n_hvp` (the number the result rests on).
"""

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.errors import LandscapeError
from core.geometry.attention import attention_for_second_derivatives
from core.geometry.params import select_parameters
from core.store import Journal, JournalScope, NoJournal

LossFn = Callable[[torch.nn.Module], torch.Tensor]
Progress = Callable[[int, int], None] | None
Vector = dict[str, torch.Tensor]
Steps = Journal | JournalScope | NoJournal

HVP_METHODS = ("double_backward", "forward_over_reverse", "auto")


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


def plain(x: Any) -> Any:
    """`x` with arrays, tensors and numpy scalars turned into lists and Python numbers, recursively (JSON-able)."""
    if isinstance(x, np.ndarray | torch.Tensor):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Mapping):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain(v) for v in x]
    return x


class Result:
    """Base of the kernels' frozen result dataclasses: `to_dict` for JSON (fields with metadata json=False left out)."""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-able plain values (lists, floats, ints, bools, strings, None)."""
        return {
            f.name: plain(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.metadata.get("json", True)
        }


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """The mean of `values` and its standard error (std with ddof=1 / sqrt(n); 0.0 for one value, NaNs for none)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan
    stderr = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else 0.0
    return float(arr.mean()), stderr


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------


def resolve_parameters(
    model: torch.nn.Module, names: Sequence[str] | None
) -> tuple[list[str], list[torch.nn.Parameter]]:
    """The trainable parameters among `names` (None: `select_parameters(model)`), as (names, parameters).

    Raises:
        LandscapeError: a name the model does not have, or nothing trainable left.
    """
    named = dict(model.named_parameters())
    if names is None:
        chosen = select_parameters(model)
    else:
        if isinstance(names, str):
            names = [names]
        unknown = [n for n in names if n not in named]
        if unknown:
            raise LandscapeError(f"the model has no parameter {unknown[0]!r}")
        chosen = [n for n in dict.fromkeys(names) if named[n].requires_grad]
    if not chosen:
        raise LandscapeError("no trainable parameters selected")
    return chosen, [named[n] for n in chosen]


class NonFiniteLoss(LandscapeError):
    """The loss is NaN or infinite (a convexity map records NaN there instead of stopping)."""


def _check_loss(loss: Any, where: str = "at the current weights") -> torch.Tensor:
    if not torch.is_tensor(loss) or loss.numel() != 1:
        raise LandscapeError("the loss function must return a scalar tensor")
    if not bool(torch.isfinite(loss.detach()).all()):
        raise NonFiniteLoss(f"the loss is not finite {where}")
    return loss.reshape(())


# --------------------------------------------------------------------------------------------------------------
# Hessian-vector products
# --------------------------------------------------------------------------------------------------------------


class LossModule(torch.nn.Module):
    """Wraps `loss_fn(model)` as a module without inputs, so `torch.func.functional_call` can swap parameters."""

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self) -> torch.Tensor:
        return self.loss_fn(self.model)


class HvpOperator:
    """The Hessian of `loss_fn(model)` in the selected parameters, as a linear operator on flat vectors.

    With `method="double_backward"` the loss and its gradient graph (create_graph=True) are computed once, on the
    first product, and every product is one more backward through that retained graph:
    H v = d(grad . v)/dw. The graph (activations and the gradient's graph) stays in memory until `release()` or
    the end of a `with` block; the parameters must not change meanwhile. `"forward_over_reverse"` computes
    `torch.func.jvp` of `torch.func.grad` through `torch.func.functional_call` per product (no retained graph);
    `"auto"` tries that first and falls back to double backward for good if it raises.

    Flat vectors concatenate the parameters in `names` order; `flatten`, `unflatten`, `from_dict`, `to_dict`
    convert. `n_hvp` counts products.

    Args:
        model: the model (its mode is left alone).
        loss_fn: `loss_fn(model) -> scalar tensor`.
        names: parameter names (None: every trainable parameter).
        method: one of `HVP_METHODS`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: LossFn,
        names: Sequence[str] | None = None,
        *,
        method: str = "double_backward",
    ) -> None:
        if method not in HVP_METHODS:
            raise LandscapeError(f"unknown HVP method {method!r}; expected one of {', '.join(HVP_METHODS)}")
        self.model = model
        self.loss_fn = loss_fn
        self.names, self.params = resolve_parameters(model, names)
        self.method = method
        self.numels = [p.numel() for p in self.params]
        self.n = sum(self.numels)
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.n_hvp = 0
        self.loss: float | None = None  # the loss value, once the gradient graph is built
        self._grads: list[torch.Tensor | None] | None = None

    # ---- conversions ---------------------------------------------------------------------------------------

    def flatten(self, tensors: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Concatenate per-parameter tensors (None = zeros) into a flat vector of the operator's dtype."""
        parts = [
            torch.zeros(k, dtype=self.dtype, device=self.device)
            if t is None
            else t.detach().reshape(-1).to(dtype=self.dtype, device=self.device)
            for t, k in zip(tensors, self.numels, strict=True)
        ]
        return torch.cat(parts)

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Split a flat vector into tensors shaped, typed and placed like the parameters."""
        out, offset = [], 0
        for p, k in zip(self.params, self.numels, strict=True):
            out.append(flat[offset : offset + k].reshape(p.shape).to(dtype=p.dtype, device=p.device))
            offset += k
        return out

    def from_dict(self, v: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A flat vector from {name: tensor}; names not considered are ignored, missing ones count as zero."""
        named = dict(self.model.named_parameters())
        unknown = [n for n in v if n not in named]
        if unknown:
            raise LandscapeError(f"the vector has an entry {unknown[0]!r} that is not a parameter of the model")
        parts = []
        for name, p in zip(self.names, self.params, strict=True):
            t = v.get(name)
            if t is not None and tuple(t.shape) != tuple(p.shape):
                raise LandscapeError(f"the vector's {name} has shape {tuple(t.shape)}, the parameter {tuple(p.shape)}")
            parts.append(t)
        return self.flatten(parts)

    def to_dict(self, flat: torch.Tensor) -> Vector:
        """{name: tensor} from a flat vector."""
        return dict(zip(self.names, self.unflatten(flat), strict=True))

    # ---- products ------------------------------------------------------------------------------------------

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a flat vector v (length `n`)."""
        if v.shape != (self.n,):
            raise ValueError(f"expected a flat vector of length {self.n}, got shape {tuple(v.shape)}")
        self.n_hvp += 1
        if self.method != "double_backward":
            try:
                return self._forward_over_reverse(v)
            except (RuntimeError, NotImplementedError):
                if self.method == "forward_over_reverse":
                    raise
                self.method = "double_backward"
        return self._double_backward(v)

    def _build(self) -> None:
        with attention_for_second_derivatives(self.model):
            loss = _check_loss(self.loss_fn(self.model))
            if not loss.requires_grad:
                raise LandscapeError("the loss does not depend on the selected parameters (or ran under no_grad)")
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self.loss = float(loss.detach())
        # Gradients that are constant in the parameters (or absent) contribute nothing to H v.
        self._grads = [g if g is not None and g.requires_grad else None for g in grads]

    def _double_backward(self, v: torch.Tensor) -> torch.Tensor:
        if self._grads is None:
            self._build()
        assert self._grads is not None
        outputs, grad_outputs = [], []
        for g, vi in zip(self._grads, self.unflatten(v), strict=True):
            if g is not None:
                outputs.append(g)
                grad_outputs.append(vi.to(g.dtype))
        if not outputs:
            return torch.zeros_like(v)
        hv = torch.autograd.grad(outputs, self.params, grad_outputs, retain_graph=True, allow_unused=True)
        return self.flatten(list(hv))

    def _forward_over_reverse(self, v: torch.Tensor) -> torch.Tensor:
        wrapper = LossModule(self.model, self.loss_fn)
        keys = ["model." + n for n in self.names]
        primals = tuple(p.detach() for p in self.params)
        tangents = tuple(self.unflatten(v))

        def loss_of(*ps: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(wrapper, dict(zip(keys, ps, strict=True)), ()).reshape(())

        grad_fn = torch.func.grad(loss_of, argnums=tuple(range(len(primals))))
        with attention_for_second_derivatives(self.model):
            _, hv = torch.func.jvp(grad_fn, primals, tangents)
        return self.flatten([h.detach() for h in hv])

    # ---- lifetime ------------------------------------------------------------------------------------------

    def release(self) -> None:
        """Drop the retained gradient graph (it is rebuilt on the next product)."""
        self._grads = None

    def __enter__(self) -> "HvpOperator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hvp(
    model: torch.nn.Module,
    loss_fn: LossFn,
    v: Mapping[str, torch.Tensor],
    names: Sequence[str] | None = None,
    *,
    method: str = "double_backward",
) -> Vector:
    """Hessian-vector product H v of `loss_fn(model)` in the selected parameters.

    Args:
        model: the model.
        loss_fn: `loss_fn(model) -> scalar tensor`.
        v: {name: tensor}; entries for names not considered are ignored, missing entries count as zero.
        names: parameters of the Hessian (None: every trainable parameter).
        method: one of `HVP_METHODS` (see `HvpOperator`).

    Returns:
        {name: tensor} for every parameter considered, shaped and typed like the parameter.
    """
    with HvpOperator(model, loss_fn, names, method=method) as op:
        return op.to_dict(op(op.from_dict(v)))
