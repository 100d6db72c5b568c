"""Curvature and flatness of a loss at the model's current weights.

Hessian-vector products, Lanczos eigenvalues, Hutchinson / Hutch++ traces, stochastic Lanczos quadrature
(spectral density), a per-block breakdown, average- and worst-case sharpness, robustness to weight noise and
convexity maps over a 2-D slice.

Conventions:
- A loss function is `loss_fn(model) -> scalar tensor`, differentiable in the parameters. It may have
  `loss_fn.evaluate(model) -> dict[str, float]` with "loss" and maybe "acc"; `robustness_curve` uses it when
  present. The caller sets the model's train/eval mode; nothing here changes it.
- The parameters considered are `names` (None: every trainable parameter, `core.params.select_parameters`).
  Frozen parameters (requires_grad=False) never count, even when named. The Hessian is the block of those
  parameters; all other parameters stay fixed.
- Nothing here leaves a trace on the model: parameters are restored bit for bit (also on exceptions), `.grad` is
  never touched (only `torch.autograd.grad` is used) and attention flags are restored.
- Randomness comes from seeded CPU `torch.Generator`s (moved to the parameter device afterwards): results are
  deterministic for a seed.
- Second derivatives need an attention path that supports double backward: every Hessian function runs the
  forward under `core.attention.attention_for_second_derivatives`, so users never set environment variables.
- Memory: Lanczos keeps all its vectors (full reorthogonalization), i.e. iterations x parameters numbers, and
  the double-backward graph of one forward/backward is held while a Hessian function runs. Fine for the small
  ViTs of this project; for ViT-B scale use few iterations.
- Resume: every long function takes `journal` (a `core.journal.Journal` or a scope of one). Each expensive step
  (a Lanczos step, a trace probe, a sharpness draw, a robustness evaluation) is recorded there; a rerun after a
  kill replays the recorded steps and finishes bit for bit like an uninterrupted run. Hessian-vector products
  replayed from a journal still count in `n_hvp` (the number the result rests on).
"""

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.attention import attention_for_second_derivatives
from core.directions import random_direction
from core.errors import LandscapeError
from core.journal import NO_JOURNAL, Journal, JournalScope, NoJournal
from core.landscape import perturbed
from core.params import select_parameters

LossFn = Callable[[torch.nn.Module], torch.Tensor]
Progress = Callable[[int, int], None] | None
Vector = dict[str, torch.Tensor]
Steps = Journal | JournalScope | NoJournal

HVP_METHODS = ("double_backward", "forward_over_reverse", "auto")
WHICH = ("LA", "SA", "LM")
TRACE_METHODS = ("hutchinson", "hutch++")


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


def _plain(x: Any) -> Any:
    if isinstance(x, np.ndarray | torch.Tensor):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


class _Result:
    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-able plain values (lists, floats, ints, bools, strings, None)."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.metadata.get("json", True)
        }


@dataclasses.dataclass(frozen=True, eq=False)
class EigenResult(_Result):
    """Hessian eigenvalues from Lanczos.

    Attributes:
        values: the eigenvalues found, in descending order.
        residuals: Ritz residual norms ||H y - theta y|| of each value (same order).
        converged: whether each residual met the tolerance (same order).
        iterations: Lanczos steps taken.
        n_hvp: Hessian-vector products used.
        n_params: dimension of the Hessian.
        which: "LA" (largest algebraic), "SA" (smallest algebraic) or "LM" (largest magnitude).
        vectors: unit eigenvectors as {name: tensor} (same order), only with `return_vectors=True`; left out of
            `to_dict`.
    """

    values: tuple[float, ...]
    residuals: tuple[float, ...]
    converged: tuple[bool, ...]
    iterations: int
    n_hvp: int
    n_params: int
    which: str
    vectors: tuple[Vector, ...] | None = dataclasses.field(default=None, repr=False, metadata={"json": False})


@dataclasses.dataclass(frozen=True)
class TraceResult(_Result):
    """A stochastic estimate of the Hessian trace.

    Attributes:
        estimate: the trace estimate.
        stderr: its standard error (std of the probe values / sqrt(number of random probes)); for Hutch++ only
            the random residual part contributes.
        n_probes: the probe budget asked for.
        n_hvp: Hessian-vector products used.
        n_params: dimension of the Hessian.
        method: "hutchinson" or "hutch++".
    """

    estimate: float
    stderr: float
    n_probes: int
    n_hvp: int
    n_params: int
    method: str


@dataclasses.dataclass(frozen=True, eq=False)
class DensityResult(_Result):
    """Eigenvalue density of the Hessian from stochastic Lanczos quadrature.

    Attributes:
        grid: eigenvalue axis (grid_points,).
        density: smoothed density on `grid`; integrates to 1 up to the trapezoid error (grid step <= sigma).
        nodes: per probe vector, the Ritz values (quadrature nodes), ascending.
        weights: per probe vector, the quadrature weights (squared first components of the Ritz vectors; each
            probe's weights sum to 1).
        sigma: width of the Gaussian kernel.
        n_iter: Lanczos steps per probe vector (capped at the number of parameters).
        n_vectors: probe vectors.
        n_params: dimension of the Hessian.
        n_hvp: Hessian-vector products used.
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: tuple[np.ndarray, ...]
    weights: tuple[np.ndarray, ...]
    sigma: float
    n_iter: int
    n_vectors: int
    n_params: int
    n_hvp: int


@dataclasses.dataclass(frozen=True)
class BlockFlatness(_Result):
    """Curvature of one group of parameters (the diagonal Hessian block of that group).

    Attributes:
        group: the group's name ("embed", "block 0", ..., "norm", "decoder", "head", "other" or a user name).
        names: the parameter names in the group.
        n_params: number of parameters in the group.
        eigenvalues: top eigenvalues of the block, descending.
        trace: Hutchinson estimate of the block's trace.
        trace_stderr: its standard error.
    """

    group: str
    names: tuple[str, ...]
    n_params: int
    eigenvalues: tuple[float, ...]
    trace: float
    trace_stderr: float

    @property
    def lambda_max(self) -> float:
        """The largest eigenvalue of the block."""
        return self.eigenvalues[0]


@dataclasses.dataclass(frozen=True)
class SharpnessResult(_Result):
    """Loss increase under weight perturbations of relative size rho.

    Attributes:
        kind: "average" or "worst".
        rho: the radius.
        adaptive: whether the perturbation was scaled elementwise by |w|.
        base_loss: the loss at the unperturbed weights.
        mean: the sharpness: mean increase over draws (average) or the largest increase found (worst).
        stderr: standard error of the mean over draws (average); 0.0 for worst.
        n: number of draws (average) or of loss evaluations along the ascent (worst).
        samples: the individual increases (per draw, or per ascent iterate starting at 0).
    """

    kind: str
    rho: float
    adaptive: bool
    base_loss: float
    mean: float
    stderr: float
    n: int
    samples: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class RobustnessResult(_Result):
    """Loss (and accuracy) under filter-normalized random weight noise of relative size sigma.

    Attributes:
        sigmas: the noise sizes.
        loss_mean: mean loss over draws, per sigma.
        loss_std: standard deviation over draws (ddof=1; 0.0 with one draw or sigma = 0), per sigma.
        acc_mean: mean accuracy per sigma, or None when `loss_fn.evaluate` gives no "acc".
        acc_std: its standard deviation, or None.
        clean_loss: the unperturbed loss.
        clean_acc: the unperturbed accuracy, or None.
        n_draws: random directions per sigma (the same directions for every sigma).
    """

    sigmas: tuple[float, ...]
    loss_mean: tuple[float, ...]
    loss_std: tuple[float, ...]
    acc_mean: tuple[float, ...] | None
    acc_std: tuple[float, ...] | None
    clean_loss: float
    clean_acc: float | None
    n_draws: int


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------


def _resolve(model: torch.nn.Module, names: Sequence[str] | None) -> tuple[list[str], list[torch.nn.Parameter]]:
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


class _NonFiniteLoss(LandscapeError):
    """The loss is NaN or infinite (a convexity map records NaN there instead of stopping)."""


def _check_loss(loss: Any, where: str = "at the current weights") -> torch.Tensor:
    if not torch.is_tensor(loss) or loss.numel() != 1:
        raise LandscapeError("the loss function must return a scalar tensor")
    if not bool(torch.isfinite(loss.detach()).all()):
        raise _NonFiniteLoss(f"the loss is not finite {where}")
    return loss.reshape(())


def _loss_value(model: torch.nn.Module, loss_fn: LossFn) -> float:
    with torch.no_grad():
        out = loss_fn(model)
    return float(out.item()) if torch.is_tensor(out) else float(out)


def _metrics(model: torch.nn.Module, loss_fn: LossFn) -> dict[str, float]:
    evaluate = getattr(loss_fn, "evaluate", None)
    if callable(evaluate):
        with torch.no_grad():
            raw = evaluate(model)
        if "loss" not in raw:
            raise LandscapeError("loss_fn.evaluate must return a dict with a 'loss' entry")
        return {str(k): float(v) for k, v in raw.items()}
    return {"loss": _loss_value(model, loss_fn)}


def _mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return math.nan, math.nan
    stderr = float(arr.std(ddof=1) / math.sqrt(arr.size)) if arr.size > 1 else 0.0
    return float(arr.mean()), stderr


def _sub_seed(seed: int, i: int) -> int:
    # Decorrelated seeds per draw (seed + i would make seed 0's second draw equal seed 1's first).
    return int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1)[0])


# --------------------------------------------------------------------------------------------------------------
# Hessian-vector products
# --------------------------------------------------------------------------------------------------------------


class _LossModule(torch.nn.Module):
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
        self.names, self.params = _resolve(model, names)
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
        wrapper = _LossModule(self.model, self.loss_fn)
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


# --------------------------------------------------------------------------------------------------------------
# Lanczos
# --------------------------------------------------------------------------------------------------------------


def _randn(n: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.randn(n, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)


def _rademacher(n: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return (torch.randint(0, 2, (n,), generator=gen) * 2 - 1).to(dtype=dtype, device=device)


@dataclasses.dataclass
class _Krylov:
    alphas: list[float]
    betas: list[float]  # betas[j] couples q_j and q_{j+1}; the last one is the norm of the final residual
    basis: list[torch.Tensor]

    def ritz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ritz values (ascending), the tridiagonal matrix's eigenvectors and the Ritz residual norms."""
        a = np.asarray(self.alphas, dtype=np.float64)
        b = np.asarray(self.betas[:-1], dtype=np.float64)
        t = np.diag(a) + np.diag(b, 1) + np.diag(b, -1)
        theta, s = np.linalg.eigh(t)
        resid = np.abs(self.betas[-1] * s[-1, :])
        return theta, s, resid


def _orthogonalize(w: torch.Tensor, basis: list[torch.Tensor]) -> torch.Tensor:
    q = torch.stack(basis)
    for _ in range(2):  # "twice is enough" (Kahan / Parlett) for full reorthogonalization in floating point
        w = w - q.T @ (q @ w)
    return w


def _lanczos(
    op: HvpOperator,
    start: torch.Tensor,
    steps: int,
    gen: torch.Generator,
    *,
    should_stop: Callable[[_Krylov], bool] | None = None,
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> _Krylov:
    """Symmetric Lanczos with full reorthogonalization; keeps every Lanczos vector (steps x n numbers).

    When the Krylov space is exhausted (an invariant subspace was found) before `steps`, the run continues from
    a fresh random vector orthogonal to all previous ones with a zero coupling, so T stays the projection of H.
    Each step (alpha, beta and the orthogonalized residual) goes through `journal`; a restart's random draw
    happens outside the step, so a replay draws it again and the generator stays in step.
    """
    steps = min(steps, op.n)
    q = start / start.norm()
    run = _Krylov([], [], [q])
    finfo = torch.finfo(op.dtype)
    for j in range(steps):

        def one_step(q: torch.Tensor = q, j: int = j) -> dict[str, Any]:
            w = op(q)
            alpha = float(torch.dot(w, q))
            w = w - alpha * q
            if j > 0 and run.betas[-1] != 0.0:
                w = w - run.betas[-1] * run.basis[-2]
            w = _orthogonalize(w, run.basis)
            return {"alpha": alpha, "beta": float(w.norm()), "w": w}

        rec = journal.step(f"lanczos{j}", one_step)
        if journal.last_replayed:
            op.n_hvp += 1
        alpha, beta, w = rec["alpha"], rec["beta"], rec["w"].to(op.device)
        run.alphas.append(alpha)
        run.betas.append(beta)
        if progress is not None:
            progress(j + 1, steps)
        if j + 1 == steps or (should_stop is not None and should_stop(run)):
            break
        scale = max(max(abs(a) for a in run.alphas), max(run.betas))
        if beta <= 100 * finfo.eps * scale:
            w = _orthogonalize(_randn(op.n, gen, op.dtype, op.device), run.basis)
            run.betas[-1] = 0.0
            beta = float(w.norm())
        q = w / beta
        run.basis.append(q)
    return run


def _pick(theta: np.ndarray, which: str, k: int) -> np.ndarray:
    order = np.argsort(theta)
    if which == "LA":
        return order[::-1][:k]
    if which == "SA":
        return order[:k]
    if which == "LM":
        return np.argsort(-np.abs(theta), kind="stable")[:k]
    if which == "BE":  # both ends: the largest and the smallest
        return np.array([order[-1], order[0]])
    raise ValueError(which)


def _converged(theta: np.ndarray, resid: np.ndarray, idx: np.ndarray, tol: float) -> np.ndarray:
    # Relative to |theta|, with a floor at 1e-3 of the spectral scale so near-zero eigenvalues can converge too.
    scale = float(np.max(np.abs(theta))) if theta.size else 0.0
    return resid[idx] <= tol * np.maximum(np.abs(theta[idx]), 1e-3 * scale)


def _eigs(
    op: HvpOperator,
    k: int,
    which: str,
    *,
    max_iter: int,
    tol: float,
    seed: int,
    return_vectors: bool,
    progress: Progress,
    journal: Steps = NO_JOURNAL,
) -> EigenResult:
    if k < 1:
        raise LandscapeError(f"k must be at least 1, got {k}")
    if max_iter < 1:
        raise LandscapeError(f"max_iter must be at least 1, got {max_iter}")
    k = min(k, op.n)
    need = 2 if which == "BE" else k
    gen = torch.Generator().manual_seed(int(seed))
    start = _randn(op.n, gen, op.dtype, op.device)

    def should_stop(run: _Krylov) -> bool:
        if len(run.alphas) < min(need, op.n):
            return False
        theta, _, resid = run.ritz()
        return bool(_converged(theta, resid, _pick(theta, which, k), tol).all())

    steps = min(max(max_iter, need), op.n)
    run = _lanczos(op, start, steps, gen, should_stop=should_stop, progress=progress, journal=journal)
    if progress is not None:
        progress(steps, steps)
    theta, s, resid = run.ritz()
    idx = _pick(theta, which, k)
    conv = _converged(theta, resid, idx, tol)
    if which != "BE":
        order = np.argsort(-theta[idx], kind="stable")
        idx, conv = idx[order], conv[order]
    vectors = None
    if return_vectors:
        basis = torch.stack(run.basis[: len(run.alphas)])
        coeffs = torch.from_numpy(s[:, idx]).to(dtype=op.dtype, device=op.device)
        ys = basis.T @ coeffs
        vectors = tuple(op.to_dict(ys[:, i] / ys[:, i].norm()) for i in range(len(idx)))
    return EigenResult(
        values=tuple(float(theta[i]) for i in idx),
        residuals=tuple(float(resid[i]) for i in idx),
        converged=tuple(bool(c) for c in conv),
        iterations=len(run.alphas),
        n_hvp=op.n_hvp,
        n_params=op.n,
        which=which,
        vectors=vectors,
    )


def hessian_eigenvalues(
    model: torch.nn.Module,
    loss_fn: LossFn,
    k: int = 1,
    names: Sequence[str] | None = None,
    *,
    max_iter: int = 50,
    tol: float = 1e-4,
    seed: int = 0,
    which: str = "LA",
    return_vectors: bool = False,
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> EigenResult:
    """Extreme Hessian eigenvalues by Lanczos with full reorthogonalization.

    One Lanczos run from a seeded Gaussian start vector; after each step the Ritz values are computed from the
    tridiagonal matrix (numpy.linalg.eigh) and the run stops when the k wanted Ritz values all have residual
    |beta_m s_mi| <= tol * max(|theta_i|, 1e-3 * max_j |theta_j|), or after `max_iter` steps (then `converged`
    says which ones made it). All Lanczos vectors are kept: memory is iterations x parameters. A single start
    vector sees one copy of a repeated eigenvalue only.

    Args:
        model: the model.
        loss_fn: `loss_fn(model) -> scalar tensor`.
        k: how many eigenvalues.
        names: parameters of the Hessian (None: every trainable parameter).
        max_iter: most Lanczos steps (= Hessian-vector products); at least k are taken.
        tol: relative residual tolerance.
        seed: seed of the start vector.
        which: "LA" largest algebraic, "SA" smallest algebraic, "LM" largest magnitude.
        return_vectors: also return the unit Ritz vectors as {name: tensor}.
        progress: `progress(done, total)` after each step.
        journal: where finished steps are recorded / replayed from (see the module docstring).

    Returns:
        An `EigenResult` with the values in descending order.
    """
    if which not in WHICH:
        raise LandscapeError(f"unknown eigenvalue selection {which!r}; expected one of {', '.join(WHICH)}")
    with HvpOperator(model, loss_fn, names) as op:
        return _eigs(
            op,
            k,
            which,
            max_iter=max_iter,
            tol=tol,
            seed=seed,
            return_vectors=return_vectors,
            progress=progress,
            journal=journal,
        )


def hessian_extreme_eigenvalues(
    model: torch.nn.Module,
    loss_fn: LossFn,
    names: Sequence[str] | None = None,
    *,
    max_iter: int = 50,
    tol: float = 1e-4,
    seed: int = 0,
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> tuple[float, float]:
    """The largest and the smallest (most negative) Hessian eigenvalue from one Lanczos run.

    Both ends converge in the same Krylov space; the run stops when both meet the tolerance of
    `hessian_eigenvalues`. |lambda_min / lambda_max| near 0 means locally convex.

    Returns:
        (lambda_max, lambda_min).
    """
    with HvpOperator(model, loss_fn, names) as op:
        res = _eigs(
            op, 1, "BE", max_iter=max_iter, tol=tol, seed=seed, return_vectors=False, progress=progress, journal=journal
        )
    return res.values[0], res.values[-1]


# --------------------------------------------------------------------------------------------------------------
# Trace and spectral density
# --------------------------------------------------------------------------------------------------------------


def _trace(
    op: HvpOperator, n_probes: int, seed: int, method: str, progress: Progress, journal: Steps = NO_JOURNAL
) -> TraceResult:
    if method not in TRACE_METHODS:
        raise LandscapeError(f"unknown trace method {method!r}; expected one of {', '.join(TRACE_METHODS)}")
    gen = torch.Generator().manual_seed(int(seed))
    if method == "hutchinson":
        if n_probes < 2:
            raise LandscapeError("Hutchinson needs at least 2 probes")
        values = []
        for i in range(n_probes):
            z = _rademacher(op.n, gen, op.dtype, op.device)  # drawn on replay too: the generator stays in step
            values.append(_product(op, journal, f"probe{i}", lambda z=z: float(torch.dot(z, op(z)))))
            if progress is not None:
                progress(i + 1, n_probes)
        est, err = _mean_stderr(values)
        return TraceResult(est, err, n_probes, op.n_hvp, op.n, method)
    # Hutch++ (Meyer et al. 2021): exact trace on the span of Q = orth(H S), Hutchinson on the rest.
    if n_probes < 3:
        raise LandscapeError("Hutch++ needs at least 3 probes")
    n_s = n_probes // 3
    n_g = n_probes - 2 * n_s
    total = n_s + min(n_s, op.n) + n_g
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    hs = []
    for i in range(n_s):
        s = _rademacher(op.n, gen, op.dtype, op.device)
        rec = journal.step(f"sketch{i}", lambda s=s: {"hs": op(s)})
        op.n_hvp += journal.last_replayed
        hs.append(rec["hs"].to(op.device).to(torch.float64))
        tick()
    q, _ = torch.linalg.qr(torch.stack(hs, dim=1))  # n x min(n, n_s), kept in memory
    exact = 0.0
    for j in range(q.shape[1]):
        qj = q[:, j]
        exact += _product(op, journal, f"exact{j}", lambda qj=qj: float(torch.dot(qj, op(qj.to(op.dtype)).double())))
        tick()
    values = []
    for i in range(n_g):
        g = _rademacher(op.n, gen, torch.float64, op.device)
        pg = g - q @ (q.T @ g)
        values.append(
            _product(op, journal, f"rest{i}", lambda pg=pg: float(torch.dot(pg, op(pg.to(op.dtype)).double())))
        )
        tick()
    mean, err = _mean_stderr(values)
    if n_g == 1:
        err = 0.0 if q.shape[1] >= op.n else math.nan
    return TraceResult(exact + mean, err, n_probes, op.n_hvp, op.n, method)


def _product(op: HvpOperator, journal: Steps, key: str, compute: Callable[[], float]) -> float:
    """One scalar built on a Hessian-vector product, through the journal (a replay still counts the product)."""
    rec = journal.step(key, lambda: {"v": compute()})
    op.n_hvp += journal.last_replayed
    return rec["v"]


def hessian_trace(
    model: torch.nn.Module,
    loss_fn: LossFn,
    names: Sequence[str] | None = None,
    *,
    n_probes: int = 64,
    seed: int = 0,
    method: str = "hutchinson",
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> TraceResult:
    """Stochastic estimate of the Hessian trace with Rademacher probes from a seeded generator.

    "hutchinson": mean of z^T H z over `n_probes` probes, stderr = std / sqrt(n_probes).
    "hutch++" (Meyer et al. 2021): with m = n_probes, Q = orth(H S) for m/3 probes S, then
    tr(Q^T H Q) + mean of (P g)^T H (P g) over the remaining probes g, P = I - Q Q^T; stderr from the residual
    probes only. Exact once m/3 >= the number of parameters. Keeps the m/3 vectors of Q in memory.

    Args:
        model: the model.
        loss_fn: `loss_fn(model) -> scalar tensor`.
        names: parameters of the Hessian (None: every trainable parameter).
        n_probes: Hessian-vector product budget (Hutch++ may use fewer when Q spans everything).
        seed: seed of the probes.
        method: "hutchinson" or "hutch++".
        progress: `progress(done, total)` after each product.
        journal: where finished probes are recorded / replayed from.

    Returns:
        A `TraceResult`.
    """
    with HvpOperator(model, loss_fn, names) as op:
        return _trace(op, n_probes, seed, method, progress, journal)


def spectral_density(
    model: torch.nn.Module,
    loss_fn: LossFn,
    names: Sequence[str] | None = None,
    *,
    n_iter: int = 30,
    n_vectors: int = 4,
    seed: int = 0,
    grid_points: int = 200,
    sigma: float | None = None,
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> DensityResult:
    """Eigenvalue density of the Hessian by stochastic Lanczos quadrature (Ghorbani et al. 2019).

    Per probe vector v (Rademacher, normalized) a Lanczos run of `n_iter` steps gives T = S diag(theta) S^T;
    the quadrature nodes are theta_j and the weights tau_j = S_0j^2 (summing to 1), so that
    sum_j tau_j f(theta_j) ~ v^T f(H) v. The density is the probe average of sum_j tau_j N(t; theta_j, sigma^2)
    on a grid spanning [min node - 5 sigma, max node + 5 sigma]; it integrates to 1 up to the trapezoid error
    (small when the grid step is below sigma). Memory: the n_iter vectors of one probe at a time (full
    reorthogonalization), freed before the next probe.

    Args:
        model: the model.
        loss_fn: `loss_fn(model) -> scalar tensor`.
        names: parameters of the Hessian (None: every trainable parameter).
        n_iter: Lanczos steps per probe (capped at the number of parameters).
        n_vectors: probe vectors.
        seed: seed of the probes.
        grid_points: points of the eigenvalue grid.
        sigma: kernel width; default 2% of the node range (or 1e-3 * max(1, |node|) if the range is 0).
        progress: `progress(done, total)` after each probe vector.
        journal: where finished Lanczos steps are recorded / replayed from.

    Returns:
        A `DensityResult`.
    """
    if n_iter < 1 or n_vectors < 1 or grid_points < 2:
        raise LandscapeError("spectral density needs n_iter >= 1, n_vectors >= 1 and grid_points >= 2")
    if sigma is not None and not sigma > 0:
        raise LandscapeError(f"sigma must be positive, got {sigma}")
    gen = torch.Generator().manual_seed(int(seed))
    nodes, weights = [], []
    with HvpOperator(model, loss_fn, names) as op:
        steps = min(n_iter, op.n)
        for i in range(n_vectors):
            v = _rademacher(op.n, gen, op.dtype, op.device)
            theta, s, _ = _lanczos(op, v, steps, gen, journal=journal.scope(f"v{i}/")).ritz()
            nodes.append(theta)
            weights.append(s[0, :] ** 2)
            if progress is not None:
                progress(i + 1, n_vectors)
        n_params, n_hvp = op.n, op.n_hvp
    all_nodes = np.concatenate(nodes)
    lo, hi = float(all_nodes.min()), float(all_nodes.max())
    if sigma is None:
        sigma = 0.02 * (hi - lo) if hi > lo else 1e-3 * max(1.0, abs(hi))
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, grid_points)
    density = np.zeros_like(grid)
    for theta, tau in zip(nodes, weights, strict=True):
        z = (grid[:, None] - theta[None, :]) / sigma
        density += (np.exp(-0.5 * z**2) * tau[None, :]).sum(axis=1)
    density /= n_vectors * sigma * math.sqrt(2 * math.pi)
    return DensityResult(
        grid=grid,
        density=density,
        nodes=tuple(nodes),
        weights=tuple(weights),
        sigma=float(sigma),
        n_iter=steps,
        n_vectors=n_vectors,
        n_params=n_params,
        n_hvp=n_hvp,
    )


# --------------------------------------------------------------------------------------------------------------
# Per-block breakdown
# --------------------------------------------------------------------------------------------------------------

_BLOCK = re.compile(r"blocks\.(\d+)\.")


def group_of(name: str) -> str:
    """The default group of a ViT parameter name (a leading "encoder." is ignored).

    "patch_embed.*", "cls_token", "pos_embed", "reg_token" -> "embed"; "blocks.{i}.*" -> "block i"; "norm.*",
    "fc_norm.*" -> "norm"; "decoder_*", "mask_token" -> "decoder"; "head.*" -> "head"; anything else -> "other".
    """
    if name.startswith("encoder."):
        name = name[len("encoder.") :]
    if name.startswith("decoder_") or name == "mask_token":
        return "decoder"
    if name.startswith("patch_embed.") or name in ("cls_token", "pos_embed", "reg_token"):
        return "embed"
    m = _BLOCK.match(name)
    if m:
        return f"block {int(m.group(1))}"
    if name.startswith(("norm.", "fc_norm.")):
        return "norm"
    if name.startswith("head.") or name == "head":
        return "head"
    return "other"


def default_groups(names: Sequence[str]) -> dict[str, list[str]]:
    """Names grouped by `group_of`, groups in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(group_of(name), []).append(name)
    return groups


def per_block_breakdown(
    model: torch.nn.Module,
    loss_fn: LossFn,
    groups: Mapping[str, Sequence[str]] | None = None,
    *,
    k: int = 1,
    n_probes: int = 16,
    seed: int = 0,
    max_iter: int = 50,
    tol: float = 1e-4,
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> list[BlockFlatness]:
    """Top eigenvalues and trace of each group's diagonal Hessian block (the other parameters held fixed).

    Args:
        model: the model.
        loss_fn: `loss_fn(model) -> scalar tensor`.
        groups: {group: parameter names}; None groups every trainable parameter with `default_groups`. Frozen
            names are dropped; groups left empty are skipped.
        k: eigenvalues per group (Lanczos as in `hessian_eigenvalues`).
        n_probes: Hutchinson probes per group.
        seed: seed of the start vectors and probes (the same for every group).
        max_iter: most Lanczos steps per group.
        tol: Lanczos tolerance.
        progress: `progress(done, total)` after each group.
        journal: where finished Lanczos steps and probes are recorded / replayed from.

    Returns:
        One `BlockFlatness` per non-empty group, in the groups' order.
    """
    named = dict(model.named_parameters())
    if groups is None:
        groups = default_groups(select_parameters(model))
    cleaned: dict[str, list[str]] = {}
    for group, members in groups.items():
        unknown = [n for n in members if n not in named]
        if unknown:
            raise LandscapeError(f"group {group!r} names {unknown[0]!r}, which is not a parameter of the model")
        kept = [n for n in dict.fromkeys(members) if named[n].requires_grad]
        if kept:
            cleaned[group] = kept
    if not cleaned:
        raise LandscapeError("no group holds a trainable parameter")
    out = []
    for i, (group, members) in enumerate(cleaned.items()):
        with HvpOperator(model, loss_fn, members) as op:
            scope = journal.scope(f"g{i}/")
            eig = _eigs(
                op, k, "LA", max_iter=max_iter, tol=tol, seed=seed, return_vectors=False, progress=None, journal=scope
            )
            tr = _trace(op, n_probes, seed, "hutchinson", None, scope)
        out.append(BlockFlatness(group, tuple(members), op.n, eig.values, tr.estimate, tr.stderr))
        if progress is not None:
            progress(i + 1, len(cleaned))
    return out


# --------------------------------------------------------------------------------------------------------------
# Sharpness and robustness
# --------------------------------------------------------------------------------------------------------------


def _filter_direction(model: torch.nn.Module, names: Sequence[str], seed: int) -> Vector:
    """`core.directions.random_direction` (filter norm, biases / norm weights ignored) restricted to `names`."""
    d = random_direction(model, seed)
    keep = set(names)
    d = {n: t for n, t in d.items() if n in keep}
    if not any(bool(t.any()) for t in d.values()):
        raise LandscapeError(
            "the filter-normalized direction moves none of the selected parameters (biases and "
            "norm weights are ignored); select weight matrices or use adaptive=True"
        )
    return d


def _global_norm(tensors: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float(t.detach().double().pow(2).sum()) for t in tensors))


def _adaptive_direction(params: Sequence[torch.Tensor], gen: torch.Generator) -> list[torch.Tensor]:
    """|w| * z / ||z|| with z ~ N(0, I) over all the parameters jointly: ||e / |w| || = 1."""
    zs = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    znorm = _global_norm(zs)
    return [(z / znorm).to(dtype=p.dtype, device=p.device) * p.detach().abs() for z, p in zip(zs, params, strict=True)]


def sharpness_average(
    model: torch.nn.Module,
    loss_fn: LossFn,
    rho: float,
    *,
    n_samples: int = 8,
    seed: int = 0,
    adaptive: bool = False,
    names: Sequence[str] | None = None,
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> SharpnessResult:
    """Average-case sharpness: mean over draws of L(w + e) - L(w).

    Definition of e (rho is a relative size):
    - adaptive=False: e = rho * d, d the filter-normalized Gaussian direction of `core.directions.random_direction`
      (filter norm, ignore="biasbn") restricted to `names`: every filter (output row) of a >= 2-dim weight moves
      by exactly rho * ||w_filter|| in a uniformly random direction; biases and norm weights do not move.
    - adaptive=True (Andriushchenko et al. 2023): e = rho * |w| * z / ||z||, z ~ N(0, I) over all the selected
      parameters jointly, i.e. uniform on the sphere ||e / |w| ||_2 = rho of the |w|-scaled norm.
    Both lie in the ball of `sharpness_worst` with the same rho, so worst >= average.

    Args:
        model: the model.
        loss_fn: `loss_fn(model) -> scalar tensor`.
        rho: the radius (>= 0).
        n_samples: draws.
        seed: seed of the draws (draw i uses a seed derived from (seed, i)).
        adaptive: scale the perturbation elementwise by |w|.
        names: parameters perturbed (None: every trainable parameter).
        progress: `progress(done, total)` after each draw.
        journal: where finished draws are recorded / replayed from.

    Returns:
        A `SharpnessResult` (mean, stderr over draws, n = n_samples).
    """
    if not rho >= 0 or n_samples < 1:
        raise LandscapeError("sharpness needs rho >= 0 and n_samples >= 1")
    names, params = _resolve(model, names)
    base = _loss_value(model, loss_fn)
    if not math.isfinite(base):
        raise LandscapeError("the loss is not finite at the current weights")
    gen = torch.Generator().manual_seed(int(seed))
    increases = []
    for i in range(n_samples):
        # The adaptive draw comes from the shared generator: drawn on replay too, so later draws stay the same.
        drawn = dict(zip(names, _adaptive_direction(params, gen), strict=True)) if adaptive else None

        def increase(drawn: Vector | None = drawn, i: int = i) -> dict[str, Any]:
            e = drawn if drawn is not None else _filter_direction(model, names, _sub_seed(seed, i))
            with perturbed(model, [e], [float(rho)]):
                return {"v": _loss_value(model, loss_fn) - base}

        increases.append(journal.step(f"draw{i}", increase)["v"])
        if progress is not None:
            progress(i + 1, n_samples)
    mean, err = _mean_stderr(increases)
    return SharpnessResult("average", float(rho), adaptive, base, mean, err, n_samples, tuple(increases))


def sharpness_worst(
    model: torch.nn.Module,
    loss_fn: LossFn,
    rho: float,
    *,
    steps: int = 5,
    step_size: float | None = None,
    adaptive: bool = False,
    names: Sequence[str] | None = None,
    seed: int = 0,
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> SharpnessResult:
    """Worst-case sharpness: the largest L(w + e) - L(w) found by projected gradient ascent in a ball.

    Ball: ||e||_2 <= rho * ||w||_2 (adaptive=False; w = the selected parameters jointly), or
    ||e / |w| ||_2 <= rho (adaptive=True, Andriushchenko et al. 2023). Writing e = s * u with s = 1 or |w|, the
    ascent runs on u in the ball ||u|| <= r (r = rho ||w|| or rho): starting at u = 0, each step moves u by
    step_size * r along the normalized gradient s * dL/dw (a seeded random direction if that gradient is zero,
    e.g. at an exact minimum) and projects back onto the ball. The loss is evaluated at u = 0, after each step
    and at the end; the result is the largest increase seen (>= 0, a lower bound of the true maximum).

    Args:
        model: the model.
        loss_fn: `loss_fn(model) -> scalar tensor`.
        rho: the radius (>= 0).
        steps: ascent steps (each one forward + backward).
        step_size: step length as a fraction of the radius; default 2.5 / steps (Madry et al.'s PGD recipe).
        adaptive: use the |w|-scaled ball.
        names: parameters perturbed (None: every trainable parameter).
        seed: seed of the random direction used when the gradient vanishes.
        progress: `progress(done, total)` after each step.
        journal: where finished ascent steps (the increase, the new u and the generator state) are recorded.

    Returns:
        A `SharpnessResult` (mean = the largest increase, stderr 0.0, n = loss evaluations).
    """
    if not rho >= 0 or steps < 1:
        raise LandscapeError("sharpness needs rho >= 0 and steps >= 1")
    names, params = _resolve(model, names)
    w = [p.detach().clone() for p in params]
    scale = [t.abs() for t in w] if adaptive else [torch.ones_like(t) for t in w]
    radius = float(rho) if adaptive else float(rho) * _global_norm(w)
    alpha = (2.5 / steps if step_size is None else float(step_size)) * radius
    gen = torch.Generator().manual_seed(int(seed))
    base = _loss_value(model, loss_fn)
    if not math.isfinite(base):
        raise LandscapeError("the loss is not finite at the current weights")
    u = [torch.zeros_like(t) for t in w]
    increases = []

    def delta() -> Vector:
        return {n: s * x for n, s, x in zip(names, scale, u, strict=True)}

    def ascent_step() -> dict[str, Any]:
        with perturbed(model, [delta()], [1.0]):
            loss = loss_fn(model)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        gu = [s * (torch.zeros_like(s) if g is None else g.detach()) for s, g in zip(scale, grads, strict=True)]
        gnorm = _global_norm(gu)
        if not (math.isfinite(gnorm) and gnorm > 0):
            gu = [s * torch.randn(s.shape, generator=gen, dtype=torch.float64).to(s) for s in scale]
            gnorm = _global_norm(gu)
        new = u
        if gnorm > 0:
            new = [x + (alpha / gnorm) * g for x, g in zip(u, gu, strict=True)]
        unorm = _global_norm(new)
        if unorm > radius:
            new = [x * (radius / unorm) for x in new]
        rec: dict[str, Any] = {f"u{k}": x for k, x in enumerate(new)}
        return rec | {"increase": float(loss.detach()) - base, "gen": gen.get_state()}

    for i in range(steps):
        rec = journal.step(f"ascent{i}", ascent_step)
        increases.append(rec["increase"])
        u = [rec[f"u{k}"].to(x.device) for k, x in enumerate(u)]
        gen.set_state(rec["gen"])
        if progress is not None:
            progress(i + 1, steps)

    def final() -> dict[str, Any]:
        with perturbed(model, [delta()], [1.0]):
            return {"v": _loss_value(model, loss_fn) - base}

    increases.append(journal.step("final", final)["v"])
    finite = [x for x in increases if math.isfinite(x)]
    worst = max(finite) if finite else math.nan
    return SharpnessResult("worst", float(rho), adaptive, base, worst, 0.0, len(increases), tuple(increases))


def robustness_curve(
    model: torch.nn.Module,
    loss_fn: LossFn,
    sigmas: Sequence[float],
    *,
    n_draws: int = 5,
    seed: int = 0,
    names: Sequence[str] | None = None,
    progress: Progress = None,
    journal: Steps = NO_JOURNAL,
) -> RobustnessResult:
    """Loss (and accuracy) at w + sigma * d for filter-normalized random directions d, per noise size sigma.

    d is `core.directions.random_direction` (filter norm, ignore="biasbn") restricted to `names`, draw j with a
    seed derived from (seed, j); the same n_draws directions serve every sigma (common random numbers, so the
    curve is smooth in sigma). sigma = 0 is the unperturbed model, evaluated once. Metrics come from
    `loss_fn.evaluate(model)` when it exists (every key it gives; "acc" is reported), else from `loss_fn(model)`
    under no_grad.

    Args:
        model: the model.
        loss_fn: `loss_fn(model) -> scalar tensor`, maybe with `evaluate`.
        sigmas: relative noise sizes.
        n_draws: random directions.
        seed: seed of the directions.
        names: parameters perturbed (None: every trainable parameter).
        progress: `progress(done, total)` after each evaluation.
        journal: where finished evaluations are recorded / replayed from.

    Returns:
        A `RobustnessResult`.
    """
    if n_draws < 1:
        raise LandscapeError("n_draws must be at least 1")
    sigmas = [float(s) for s in sigmas]
    names, _ = _resolve(model, names)
    clean = journal.step("clean", lambda: _metrics(model, loss_fn))
    has_acc = "acc" in clean
    directions = [_filter_direction(model, names, _sub_seed(seed, j)) for j in range(n_draws)]
    total = sum(1 if s == 0 else n_draws for s in sigmas)
    done = 0
    loss_mean, loss_std, acc_mean, acc_std = [], [], [], []
    for si, sigma in enumerate(sigmas):
        if sigma == 0:
            rows = [clean]
        else:
            rows = []
            for j, d in enumerate(directions):

                def noisy(d: Vector = d, sigma: float = sigma) -> dict[str, Any]:
                    with perturbed(model, [d], [sigma]):
                        return _metrics(model, loss_fn)

                rows.append(journal.step(f"s{si}d{j}", noisy))
                done += 1
                if progress is not None:
                    progress(done, total)
        losses = np.array([r["loss"] for r in rows])
        loss_mean.append(float(losses.mean()))
        loss_std.append(float(losses.std(ddof=1)) if len(rows) > 1 else 0.0)
        if has_acc:
            accs = np.array([r.get("acc", math.nan) for r in rows])
            acc_mean.append(float(accs.mean()))
            acc_std.append(float(accs.std(ddof=1)) if len(rows) > 1 else 0.0)
        if sigma == 0:
            done += 1
            if progress is not None:
                progress(done, total)
    return RobustnessResult(
        sigmas=tuple(sigmas),
        loss_mean=tuple(loss_mean),
        loss_std=tuple(loss_std),
        acc_mean=tuple(acc_mean) if has_acc else None,
        acc_std=tuple(acc_std) if has_acc else None,
        clean_loss=clean["loss"],
        clean_acc=clean.get("acc"),
        n_draws=n_draws,
    )


def convexity_map(
    model: torch.nn.Module,
    loss_fn: LossFn,
    d1: Mapping[str, torch.Tensor],
    d2: Mapping[str, torch.Tensor],
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    names: Sequence[str] | None = None,
    max_iter: int = 20,
    tol: float = 1e-3,
    seed: int = 0,
    progress: Progress = None,
) -> np.ndarray:
    """|lambda_min / lambda_max| of the Hessian at every point of a 2-D slice (Li et al. 2018).

    Expensive: every grid point needs its own forward, gradient graph and a Lanczos run of up to `max_iter`
    Hessian-vector products (`hessian_extreme_eigenvalues`), so a 51 x 51 map costs ~2,600 such runs. Near 0:
    locally convex (no negative curvature relative to the positive); large: strongly non-convex. lambda_min is
    the smallest algebraic eigenvalue, so a positive-definite point gives lambda_min / lambda_max > 0 (the
    inverse condition number, ~0 for network Hessians). NaN where lambda_max is 0 or the loss is not finite.

    Args:
        model: the model (restored bit for bit afterwards).
        loss_fn: `loss_fn(model) -> scalar tensor`.
        d1: x-axis direction {name: tensor} (as from `core.directions`).
        d2: y-axis direction.
        xs: coefficients of d1 (columns).
        ys: coefficients of d2 (rows).
        names: parameters of the Hessian (None: every trainable parameter).
        max_iter: most Lanczos steps per point.
        tol: Lanczos tolerance.
        seed: seed of the Lanczos start vector (the same at every point).
        progress: `progress(done, total)` after each point.

    Returns:
        Array (len(ys), len(xs)): out[i, j] at w + xs[j] * d1 + ys[i] * d2, the layout of
        `core.landscape.evaluate_plane`.
    """
    xs = [float(x) for x in xs]
    ys = [float(y) for y in ys]
    out = np.full((len(ys), len(xs)), np.nan)
    total = len(xs) * len(ys)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            point = convexity_point(
                model, loss_fn, [d1, d2], [x, y], names=names, max_iter=max_iter, tol=tol, seed=seed
            )
            out[i, j] = point["ratio"]
            if progress is not None:
                progress(i * len(xs) + j + 1, total)
    return out


def convexity_point(
    model: torch.nn.Module,
    loss_fn: LossFn,
    directions: Sequence[Mapping[str, torch.Tensor]],
    coeffs: Sequence[float],
    *,
    names: Sequence[str] | None = None,
    max_iter: int = 20,
    tol: float = 1e-3,
    seed: int = 0,
) -> dict[str, float]:
    """The extreme Hessian eigenvalues at w + sum_k coeffs[k] * directions[k] (one Lanczos run, both ends).

    The point of `convexity_map` (and of `core.convexity`, which caches maps point by point). The model is
    restored bit for bit afterwards.

    Returns:
        {"lambda_max", "lambda_min", "ratio" (|lambda_min / lambda_max|), "loss" (at the point), "iterations"
        (Lanczos steps = Hessian-vector products), "converged" (1.0 when both ends met `tol`, else 0.0)}; every value
        NaN where the loss is not finite, the ratio NaN where lambda_max is 0.
    """
    nan = math.nan
    with perturbed(model, directions, coeffs):
        try:
            with HvpOperator(model, loss_fn, names) as op:
                res = _eigs(op, 1, "BE", max_iter=max_iter, tol=tol, seed=seed, return_vectors=False, progress=None)
                loss = op.loss
        except _NonFiniteLoss:
            return dict.fromkeys(("lambda_max", "lambda_min", "ratio", "loss", "iterations", "converged"), nan)
    lmax, lmin = float(res.values[0]), float(res.values[-1])
    return {
        "lambda_max": lmax,
        "lambda_min": lmin,
        "ratio": abs(lmin / lmax) if lmax != 0 else nan,
        "loss": float(loss) if loss is not None else nan,
        "iterations": float(res.iterations),
        "converged": float(all(res.converged)),
    }
