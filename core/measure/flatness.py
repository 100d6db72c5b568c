"""Cached flatness reports of checkpoints: Hessian spectrum, trace, density, per-block numbers, sharpness and
robustness to weight noise, as the CLI (`python -m core flatness`) and the dashboard ask for them.

A report is a table of stages (`STAGE_TABLE`: eigenvalues, trace, density, per-block, sharpness, robustness), one row
each: its name, whether the spec asks for it, its settings, the `core.geometry` kernel that computes it and the report
fields it fills. Each stage is its own cache entry keyed by the objective (checkpoint hash, data, masks) and the stage's
settings, so a rerun picks up finished stages at once. Within a stage every expensive step (a Lanczos step, a trace
probe, a sharpness draw, a robustness evaluation) is recorded in a step journal (`core.store.journal`) next to the
entry: a job killed midway loses only the step in flight, and the rerun replays the recorded steps
(`meta["reused_steps"]`) and ends bit for bit like an uninterrupted run.

Which loss: the Hessian, trace, density, per-block and sharpness numbers use the model's own training objective
(`loss`, default `own`); the robustness curve needs an accuracy, so it uses the linear-probe loss for MAE / RC-MAE
(a default probe is trained and cached if needed) and the classifier for the supervised ViT, and perturbs the
encoder's parameters only, which makes the curves of all model kinds comparable.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from core.device import pick_device
from core.errors import LandscapeError, free_bytes
from core.geometry import (
    Steps,
    attention_for_second_derivatives,
    hessian_eigenvalues,
    hessian_extreme_eigenvalues,
    hessian_trace,
    per_block_breakdown,
    robustness_curve,
    select_parameters,
    sharpness_average,
    sharpness_worst,
    spectral_density,
)
from core.measure.surfaces import Estimate, available_memory, prepare_checkpoint
from core.models import (
    LoadedCheckpoint,
    Objective,
    ObjectiveFields,
    ProbeConfig,
    build_objective,
    code_version,
    load_checkpoint,
    probe_path,
)
from core.store import DEFAULT_MAX_BYTES, JOURNAL_FILE, Journal, Store

StageProgress = Callable[[str, int, int], None]
StepProgress = Callable[[int, int], None]  # (done, total) within one stage; also a stop point
# The cost of a stage in gradients (`estimate_flatness`): a Hessian-vector product about two, a forward about a third.
HVP_COST, FORWARD_COST = 2.0, 0.35


@dataclass(frozen=True)
class FlatnessSpec(ObjectiveFields):
    """Which flatness numbers to compute for one checkpoint.

    The objective's fields (loss, samples, data_seed, mask_seed, data, split, rcmae_terms) are inherited, keyword-only:
    `loss` is the objective of the Hessian and sharpness numbers; `split` applies to the robustness curve too.
    """

    checkpoint: str
    # Images per loss evaluation, fewer than a surface's: Hessian-vector products cost ~3 forwards each.
    samples: int = field(default=128, kw_only=True)
    scope: str = "all"  # which parameters the Hessian is taken over
    top_k: int = 3  # top Hessian eigenvalues (plus the most negative one)
    max_iter: int = 40  # Lanczos iterations: plenty for the top few of a small model
    trace: bool = True
    trace_probes: int = 32  # Hutchinson probes: stderr shrinks as 1/sqrt(probes)
    density: bool = False  # stochastic Lanczos quadrature (n_vectors runs of density_iter steps)
    density_iter: int = 30
    density_vectors: int = 4
    per_block: bool = False
    sharpness_rho: float | None = 0.05  # relative radius; None skips sharpness
    sharpness_samples: int = 8
    robustness: bool = True
    sigmas: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)  # relative weight-noise sizes
    robustness_draws: int = 5
    seed: int = 0  # probes, noise draws and directions
    device: str = "auto"  # not part of the cache key


@dataclass
class FlatnessReport:
    """What `compute_flatness` returns; `None` for every stage not asked for."""

    top_eigenvalues: list[float] | None = None
    lambda_min: float | None = None
    eig_converged: bool | None = None
    trace: float | None = None
    trace_stderr: float | None = None
    density: dict | None = None  # {"grid": [...], "density": [...]}
    per_block: list[dict] | None = None  # [{"group", "n_params", "lambda_max", "trace", "trace_stderr"}]
    sharpness: dict | None = None  # {"rho", "average", "average_stderr", "worst", "adaptive_average"}
    robustness: dict | None = None  # {"sigmas", "loss_mean", "loss_std", "acc_mean", "acc_std", "loss"}
    probe_acc: float | None = None  # validation accuracy of the probe / classifier used for robustness
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def robustness_drop(self) -> float | None:
        """Accuracy lost at the largest noise size (clean minus noisy), the headline 'stability' number."""
        r = self.robustness
        if not r or not r.get("acc_mean"):
            return None
        return float(r["acc_mean"][0] - r["acc_mean"][-1])


class _NotCached(Exception):
    pass


def cached_stage(
    store: Store, key: dict, compute: Callable[[Steps], dict], cached_only: bool = False, kind: str = "flatness"
) -> tuple[dict, bool, int]:
    """A stage's result (a small JSON-able dict) from the cache, or computed and saved.

    The computation runs under the entry's lock with the entry's step journal: a run killed midway leaves its
    finished steps there, the next one replays them; the journal is deleted once the result is saved.

    Args:
        store: the cache.
        key: every input that changes the numbers.
        compute: compute(journal) -> the stage's value.
        cached_only: raise `_NotCached` instead of computing.
        kind: the store kind.

    Returns:
        (value, served from the cache, steps replayed from the journal).
    """
    entry = store.entry(kind, key)
    res = entry.result()
    if res is None and cached_only:
        raise _NotCached
    if res is None:
        with entry.lock():
            res = entry.result()
            if res is None:
                journal = Journal(entry.path / JOURNAL_FILE)
                try:
                    t0 = time.perf_counter()
                    value = compute(journal)
                    meta = {"value": value, "stage": key.get("stage"), "seconds": time.perf_counter() - t0}
                    entry.save_result({"done": np.ones(1)}, meta, code_version=code_version())
                finally:
                    journal.close()
                journal.discard()
                return value, False, journal.n_replayed
    return res.meta["value"], True, 0


def _robustness_objective(ckpt: LoadedCheckpoint, spec: FlatnessSpec, device, cached_only: bool) -> Objective:
    if ckpt.kind in ("sup", "probe"):
        return build_objective(ckpt, spec.objective_spec(loss="own"), device)

    if cached_only and not probe_path(ckpt.path, ckpt.sha256, ProbeConfig()).exists():
        raise _NotCached

    probe = load_checkpoint(prepare_checkpoint(str(ckpt.path), "probe"))
    return build_objective(probe, spec.objective_spec(loss="probe"), device)


@dataclass
class StageInputs:
    """What the stages of one report share: the spec, the objective and the parameters the Hessian is taken over."""

    spec: FlatnessSpec
    ckpt: LoadedCheckpoint
    objective: Objective
    names: list[str]
    device: torch.device
    cached_only: bool

    @functools.cached_property
    def robust(self) -> tuple[Objective, list[str]]:
        """The robustness curve's objective (probe or classifier) and its encoder's parameters, built on first use:
        after the Hessian stages, and only if the curve is asked for (it may train a default probe)."""
        robj = _robustness_objective(self.ckpt, self.spec, self.device, self.cached_only)
        return robj, select_parameters(robj.module, "encoder")


def _eigenvalues(s: StageInputs, journal: Steps, progress: StepProgress) -> dict:
    spec, module = s.spec, s.objective.module
    r = hessian_eigenvalues(
        module,
        s.objective,
        k=spec.top_k,
        names=s.names,
        max_iter=spec.max_iter,
        seed=spec.seed,
        progress=progress,
        journal=journal.scope("top/"),
    )
    lmax, lmin = hessian_extreme_eigenvalues(
        module, s.objective, names=s.names, max_iter=spec.max_iter, seed=spec.seed, journal=journal.scope("ends/")
    )
    return {
        "values": list(r.values),
        "converged": bool(np.all(r.converged)),
        "lambda_min": lmin,
        "lambda_max_check": lmax,
    }


def _trace(s: StageInputs, journal: Steps, progress: StepProgress) -> dict:
    r = hessian_trace(
        s.objective.module,
        s.objective,
        names=s.names,
        n_probes=s.spec.trace_probes,
        seed=s.spec.seed,
        progress=progress,
        journal=journal,
    )
    return r.to_dict()


def _density(s: StageInputs, journal: Steps, progress: StepProgress) -> dict:
    r = spectral_density(
        s.objective.module,
        s.objective,
        names=s.names,
        n_iter=s.spec.density_iter,
        n_vectors=s.spec.density_vectors,
        seed=s.spec.seed,
        progress=progress,
        journal=journal,
    )
    return {"grid": np.asarray(r.grid).tolist(), "density": np.asarray(r.density).tolist()}


def _block_probes(spec: FlatnessSpec) -> int:
    """Hutchinson probes per block: a quarter of the trace's, at least 4."""
    return max(4, spec.trace_probes // 4)


def _block_iter(spec: FlatnessSpec) -> int:
    """Lanczos steps per block: the report's, at most 30."""
    return min(30, spec.max_iter)


def _per_block(s: StageInputs, journal: Steps, progress: StepProgress) -> dict:
    rows = per_block_breakdown(
        s.objective.module,
        s.objective,
        k=1,
        n_probes=_block_probes(s.spec),
        seed=s.spec.seed,
        max_iter=_block_iter(s.spec),
        progress=progress,
        journal=journal,
    )
    keep = ("group", "n_params", "lambda_max", "trace", "trace_stderr")
    return {"rows": [{k: getattr(b, k) for k in keep} for b in rows]}


def _sharpness(s: StageInputs, journal: Steps, progress: StepProgress) -> dict:
    module, objective, rho = s.objective.module, s.objective, float(s.spec.sharpness_rho)
    n, steps = s.spec.sharpness_samples, 5
    kw = dict(seed=s.spec.seed, names=s.names)
    # One progress bar over the three runs: n average draws, n adaptive draws, then the worst-case steps.
    avg = sharpness_average(
        module,
        objective,
        rho,
        n_samples=n,
        journal=journal.scope("avg/"),
        progress=lambda d, t: progress(d, 2 * n + steps),
        **kw,
    )
    ada = sharpness_average(
        module,
        objective,
        rho,
        n_samples=n,
        adaptive=True,
        journal=journal.scope("ada/"),
        progress=lambda d, t: progress(n + d, 2 * n + steps),
        **kw,
    )
    worst = sharpness_worst(
        module,
        objective,
        rho,
        steps=steps,
        journal=journal.scope("worst/"),
        progress=lambda d, t: progress(2 * n + d, 2 * n + steps),
        **kw,
    )
    return {
        "rho": rho,
        "average": avg.mean,
        "average_stderr": avg.stderr,
        "worst": worst.mean,
        "adaptive_average": ada.mean,
        "adaptive_average_stderr": ada.stderr,
        "base_loss": avg.base_loss,
    }


def _sigmas(spec: FlatnessSpec) -> tuple[float, ...]:
    return tuple(float(x) for x in spec.sigmas)


def _robustness(s: StageInputs, journal: Steps, progress: StepProgress) -> dict:
    robj, rnames = s.robust
    r = robustness_curve(
        robj.module,
        robj,
        _sigmas(s.spec),
        n_draws=s.spec.robustness_draws,
        seed=s.spec.seed,
        names=rnames,
        progress=progress,
        journal=journal,
    )
    d = r.to_dict()
    d["loss"] = robj.loss_kind
    return d


@dataclass(frozen=True)
class FlatnessStage:
    """One stage of a flatness report, one row of `STAGE_TABLE`.

    Attributes:
        name: the stage's key: `key["stage"]` of its store entry, its progress label, its key in `meta["cached"]` and
            `meta["reused_steps"]`.
        wanted: spec -> whether the spec asks for the stage.
        settings: inputs -> what changes its numbers besides the objective, scope and seed: the rest of its key.
        compute: (inputs, journal, progress) -> its value, a small JSON-able dict (what the store keeps); it calls a
            `core.geometry` kernel with the journal, seeded by `spec.seed`.
        fills: value -> {`FlatnessReport` field: what it is set to}; the value may come from the cache.
        cost: (spec, objective) -> the gradient-equivalents it needs (`estimate_flatness`).
        second_order: it takes Hessian-vector products, so it runs under `attention_for_second_derivatives`.
    """

    name: str
    wanted: Callable[[FlatnessSpec], bool]
    settings: Callable[[StageInputs], dict]
    compute: Callable[[StageInputs, Steps, StepProgress], dict]
    fills: Callable[[dict], dict[str, Any]]
    cost: Callable[[FlatnessSpec, Objective], float]
    second_order: bool = True


# The stages in the order they run (and are keyed, journaled and reported). A new flatness number is a row here plus
# its kernel in core.geometry (and a field of FlatnessReport).
STAGE_TABLE: tuple[FlatnessStage, ...] = (
    FlatnessStage(
        "eigenvalues",
        wanted=lambda spec: True,
        settings=lambda s: {"k": s.spec.top_k, "max_iter": s.spec.max_iter},
        compute=_eigenvalues,
        fills=lambda v: {
            "top_eigenvalues": v["values"],
            "lambda_min": v["lambda_min"],
            "eig_converged": v["converged"],
        },
        cost=lambda spec, objective: 2 * spec.max_iter * HVP_COST,  # two Lanczos runs: the top k, both ends
    ),
    FlatnessStage(
        "trace",
        wanted=lambda spec: spec.trace,
        settings=lambda s: {"probes": s.spec.trace_probes},
        compute=_trace,
        fills=lambda v: {"trace": v["estimate"], "trace_stderr": v["stderr"]},
        cost=lambda spec, objective: spec.trace_probes * HVP_COST,
    ),
    FlatnessStage(
        "density",
        wanted=lambda spec: spec.density,
        settings=lambda s: {"iter": s.spec.density_iter, "vectors": s.spec.density_vectors},
        compute=_density,
        fills=lambda v: {"density": v},
        cost=lambda spec, objective: spec.density_iter * spec.density_vectors * HVP_COST,
    ),
    FlatnessStage(
        "per_block",
        wanted=lambda spec: spec.per_block,
        settings=lambda s: {"probes": _block_probes(s.spec), "max_iter": _block_iter(s.spec)},
        compute=_per_block,
        fills=lambda v: {"per_block": v["rows"]},
        # A group per transformer block and about four more (embeddings, norms, heads: core.geometry's groups).
        cost=lambda spec, objective: (
            (objective.ckpt.config.depth + 4) * (_block_iter(spec) + _block_probes(spec)) * HVP_COST
        ),
    ),
    FlatnessStage(
        "sharpness",
        wanted=lambda spec: spec.sharpness_rho is not None,
        settings=lambda s: {"rho": float(s.spec.sharpness_rho), "samples": s.spec.sharpness_samples},
        compute=_sharpness,
        fills=lambda v: {"sharpness": v},
        cost=lambda spec, objective: 3 * spec.sharpness_samples * FORWARD_COST + 6 + 6 * FORWARD_COST,
    ),
    FlatnessStage(
        "robustness",
        wanted=lambda spec: spec.robustness,
        settings=lambda s: {
            "sigmas": list(_sigmas(s.spec)),
            "draws": s.spec.robustness_draws,
            "robust_objective": s.robust[0].key(),
        },
        compute=_robustness,
        fills=lambda v: {"robustness": v, "probe_acc": v.get("clean_acc")},
        cost=lambda spec, objective: len(spec.sigmas) * spec.robustness_draws * FORWARD_COST,
        second_order=False,  # forwards only, over the encoder of the probe / classifier
    ),
)
STAGES = tuple(stage.name for stage in STAGE_TABLE)


def compute_flatness(
    spec: FlatnessSpec,
    *,
    store: Store | None = None,
    progress: StageProgress | None = None,
    check_stop: Callable[[], bool] | None = None,
    cached_only: bool = False,
    confirm: Callable[[Any], bool] | None = None,
) -> FlatnessReport | None:
    """Compute (or fetch) the flatness numbers a spec asks for.

    Args:
        spec: what to compute.
        store: the cache (default: `Store()`).
        progress: progress(stage, done, total) within each stage.
        check_stop: polled between stages and after each step that reports progress; True raises
            LandscapeError("stopped") (finished stages stay cached, finished steps stay in the stage's journal).
        cached_only: return the report only if every stage asked for is cached, else None (computes nothing).
        confirm: called with the cost `Estimate` (points = Hessian-vector products) before an uncached report
            starts; False stops with a LandscapeError. A report that cannot fit in memory is refused regardless.
    """
    try:
        return _compute_flatness(spec, store, progress, check_stop, cached_only, confirm)
    except _NotCached:
        return None


def estimate_flatness(spec: FlatnessSpec, objective: Objective, names: list[str]):
    """Rough cost of a report before it starts: one timed gradient times the gradient-equivalents each stage needs
    (`FlatnessStage.cost`: a Hessian-vector product about two gradients, a forward about a third), and the memory of
    the Lanczos vectors kept for reorthogonalization. Returns a `core.measure.surfaces.Estimate` (points = HVP
    equivalents)."""
    module = objective.module
    params = [module.get_parameter(n) for n in names]
    with attention_for_second_derivatives(module):
        torch.autograd.grad(objective(module), params)  # warm-up
        t0 = time.perf_counter()
        torch.autograd.grad(objective(module), params)
        t_grad = time.perf_counter() - t0
    units = sum(stage.cost(spec, objective) for stage in STAGE_TABLE if stage.wanted(spec))
    n = sum(p.numel() for p in params)
    need = n * 4 * (spec.max_iter + 8) + len(objective.x) * objective.x[0].numel() * 4 * 50
    return Estimate(int(units / HVP_COST), units * t_grad, int(need), available_memory(objective.device))


def flatness_disk_bytes(hvps: int, n_weights: int, folder: Any) -> int:
    """What a report writes at its peak: its step journals (at most one float64 vector over the `n_weights`
    weights per Hessian-vector product, bounded by `Journal`'s cap of a quarter of the free disk) plus the stage
    results (a few KiB each)."""
    free = free_bytes(folder)
    cap = DEFAULT_MAX_BYTES if free is None else min(DEFAULT_MAX_BYTES, free // 4)
    n_stages = 8
    return min(hvps * (8 * n_weights + 256), cap) + n_stages * (16 << 10)


def _compute_flatness(spec, store, progress, check_stop, cached_only, confirm=None) -> FlatnessReport:
    if spec.samples < 1 or spec.top_k < 1:
        raise LandscapeError("samples and top_k must be at least 1")
    store = store or Store()
    device = pick_device(spec.device)
    ckpt = load_checkpoint(spec.checkpoint)
    objective = build_objective(ckpt, spec.objective_spec(), device)
    module = objective.module
    names = select_parameters(module, spec.scope)
    if not names:
        raise LandscapeError(f"no trainable parameters in scope {spec.scope!r}")
    base = {"v": 1, "objective": objective.key(), "scope": spec.scope, "seed": spec.seed}
    n_weights = sum(module.get_parameter(n).numel() for n in names)
    if not cached_only and compute_flatness(spec, store=store, cached_only=True) is None:
        est = estimate_flatness(spec, objective, names)
        est = est.with_disk(flatness_disk_bytes(est.points, n_weights, store.root), store.root)
        if est.available is not None and est.bytes > est.available:
            raise LandscapeError(f"this flatness report cannot fit in memory: {est.describe()}; use fewer samples")
        if confirm is not None and not confirm(est):
            raise LandscapeError(f"not started: {est.describe()} (confirm to run it)")
    report = FlatnessReport(
        meta={
            "spec": asdict(spec),
            "model_kind": ckpt.kind,
            "loss_kind": objective.loss_kind,
            "n_params": n_weights,
            "cached": {},
            "reused_steps": {},  # steps replayed from a killed run's journal, per stage
        }
    )
    inputs = StageInputs(spec, ckpt, objective, names, device, cached_only)

    def stop_check() -> None:
        if check_stop is not None and check_stop():
            raise LandscapeError("stopped; finished steps are kept, rerun to continue")

    def stage_progress(stage: str) -> StepProgress:
        # Also a stop point inside a stage: the steps finished so far are in the stage's journal.
        def report_and_check(done: int, total: int) -> None:
            if progress is not None:
                progress(stage, done, total)
            stop_check()

        return report_and_check

    for stage in STAGE_TABLE:
        if not stage.wanted(spec):
            continue
        key = {**base, "stage": stage.name, **stage.settings(inputs)}  # builds the robustness objective on first use
        stop_check()
        if progress:
            progress(stage.name, 0, 1)
        compute = functools.partial(stage.compute, inputs, progress=stage_progress(stage.name))
        with attention_for_second_derivatives(module) if stage.second_order else contextlib.nullcontext():
            # `cached_stage` is looked up at call time: tests intercept it on this module.
            value, hit, replayed = cached_stage(store, key, compute, cached_only)
        report.meta["cached"][stage.name] = hit
        report.meta["reused_steps"][stage.name] = replayed
        if progress:
            progress(stage.name, 1, 1)
        for name, v in stage.fills(value).items():
            setattr(report, name, v)
    return report


def format_report(report: FlatnessReport) -> str:
    """A readable table of a report for the terminal."""
    lines = [
        f"flatness of a {report.meta.get('model_kind')} model, {report.meta.get('loss_kind')} loss, "
        f"{report.meta.get('n_params', 0):,} parameters"
    ]

    def row(name: str, value: str) -> None:
        lines.append(f"  {name:34s} {value}")

    reused = {k: n for k, n in report.meta.get("reused_steps", {}).items() if n}
    if reused:
        row("resumed an interrupted run", ", ".join(f"{k}: {n} steps replayed" for k, n in reused.items()))

    if report.top_eigenvalues is not None:
        row(
            "Hessian top eigenvalues",
            ", ".join(f"{v:.5g}" for v in report.top_eigenvalues)
            + ("" if report.eig_converged else "  (not converged)"),
        )
        row("Hessian most negative eigenvalue", f"{report.lambda_min:.5g}")
        if report.top_eigenvalues[0]:
            row("|lambda_min / lambda_max|", f"{abs(report.lambda_min / report.top_eigenvalues[0]):.4f}")
    if report.trace is not None:
        row("Hessian trace (Hutchinson)", f"{report.trace:.5g} +- {report.trace_stderr:.2g}")
    if report.sharpness:
        s = report.sharpness
        row(f"sharpness average (rho={s['rho']})", f"{s['average']:.5g} +- {s['average_stderr']:.2g}")
        row(f"sharpness adaptive (rho={s['rho']})", f"{s['adaptive_average']:.5g}")
        row(f"sharpness worst-case (rho={s['rho']})", f"{s['worst']:.5g}")
    if report.per_block:
        for b in report.per_block:
            row(f"  {b['group']}", f"lambda_max {b['lambda_max']:.4g}, trace {b['trace']:.4g}")
    if report.robustness:
        r = report.robustness
        for i, s in enumerate(r["sigmas"]):
            acc = f", acc {r['acc_mean'][i]:.4f} +- {r['acc_std'][i]:.3f}" if r.get("acc_mean") else ""
            row(f"weight noise {s:g} ({r.get('loss')} loss)", f"loss {r['loss_mean'][i]:.5g}{acc}")
    if report.density:
        g, d = np.asarray(report.density["grid"]), np.asarray(report.density["density"])
        row("spectral density peak at", f"{g[int(np.argmax(d))]:.4g} (range {g[0]:.3g} .. {g[-1]:.3g})")
    return "\n".join(lines)
