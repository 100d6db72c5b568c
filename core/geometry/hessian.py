"""Hessian spectra of a loss at the model's current weights, all from Hessian-vector products (`core.geometry.hvp`).

Lanczos eigenvalues, Hutchinson / Hutch++ traces, stochastic Lanczos quadrature (spectral density), a per-block
breakdown and convexity maps (|lambda_min / lambda_max|) over a 2-D slice. The conventions (loss functions,
parameters, no trace on the model, seeded randomness, step journals) are those of `core.geometry.hvp`.

Memory: Lanczos keeps all its vectors (full reorthogonalization), i.e. iterations x parameters numbers, and the
double-backward graph of one forward/backward is held while a Hessian function runs. Fine for the small ViTs of
this project; for ViT-B scale use few iterations.
"""

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.errors import LandscapeError
from core.geometry.hvp import (
    HvpOperator,
    LossFn,
    NonFiniteLoss,
    Progress,
    Result,
    Steps,
    Vector,
    mean_stderr,
)
from core.geometry.landscape import perturbed
from core.geometry.params import select_parameters
from core.store import NO_JOURNAL

WHICH = ("LA", "SA", "LM")
TRACE_METHODS = ("hutchinson", "hutch++")


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class EigenResult(Result):
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
class TraceResult(Result):
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
class DensityResult(Result):
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
class BlockFlatness(Result):
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
        journal: where finished steps are recorded / replayed from (see `core.geometry.hvp`).

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
        est, err = mean_stderr(values)
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
    mean, err = mean_stderr(values)
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
# Convexity maps
# --------------------------------------------------------------------------------------------------------------


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
        d1: x-axis direction {name: tensor} (as from `core.geometry.directions`).
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
        `core.geometry.landscape.evaluate_plane`.
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

    The point of `convexity_map` (and of `core.measure.convexity`, which caches maps point by point). The model is
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
        except NonFiniteLoss:
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
