"""How much a loss rises when the weights move: average- and worst-case sharpness within a relative radius, and
the loss (and accuracy) under random weight noise of growing size.

Only losses and, for the worst case, gradients are needed: no second derivatives. The conventions (loss functions,
parameters, no trace on the model, seeded randomness, step journals) are those of `core.geometry.hvp`.
"""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from core.errors import LandscapeError
from core.geometry.directions import random_direction
from core.geometry.hvp import LossFn, Progress, Result, Steps, Vector, mean_stderr, resolve_parameters
from core.geometry.landscape import perturbed
from core.store import NO_JOURNAL

# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SharpnessResult(Result):
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
class RobustnessResult(Result):
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
# Losses under perturbation
# --------------------------------------------------------------------------------------------------------------


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


def _sub_seed(seed: int, i: int) -> int:
    # Decorrelated seeds per draw (seed + i would make seed 0's second draw equal seed 1's first).
    return int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1)[0])


# --------------------------------------------------------------------------------------------------------------
# Sharpness and robustness
# --------------------------------------------------------------------------------------------------------------


def _filter_direction(model: torch.nn.Module, names: Sequence[str], seed: int) -> Vector:
    """The direction of `core.geometry.directions.random_direction` restricted to `names`.

    Filter-normalized, biases and norm weights ignored (they do not move).
    """
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
    - adaptive=False: e = rho * d, d the filter-normalized Gaussian direction of
      `core.geometry.directions.random_direction` (filter norm, ignore="biasbn") restricted to `names`: every filter
      (output row) of a >= 2-dim weight moves by exactly rho * ||w_filter|| in a uniformly random direction; biases
      and norm weights do not move.
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
    names, params = resolve_parameters(model, names)
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
    mean, err = mean_stderr(increases)
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
    names, params = resolve_parameters(model, names)
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

    d is `core.geometry.directions.random_direction` (filter norm, ignore="biasbn") restricted to `names`, draw j with a
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
    names, _ = resolve_parameters(model, names)
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
