"""Cached flatness reports of checkpoints: Hessian spectrum, trace, density, per-block numbers, sharpness and
robustness to weight noise, as the CLI (`python -m core flatness`) and the dashboard ask for them.

Each stage (eigenvalues, trace, density, per-block, sharpness, robustness) is its own cache entry keyed by the
objective (checkpoint hash, data, masks) and the stage's settings, so a rerun picks up finished stages at once.
Within a stage every expensive step (a Lanczos step, a trace probe, a sharpness draw, a robustness evaluation) is
recorded in a step journal (`core.journal`) next to the entry: a job killed midway loses only the step in flight,
and the rerun replays the recorded steps (`meta["reused_steps"]`) and ends bit for bit like an uninterrupted run.

Which loss: the Hessian, trace, density, per-block and sharpness numbers use the model's own training objective
(`loss`, default `own`); the robustness curve needs an accuracy, so it uses the linear-probe loss for MAE / RC-MAE
(a default probe is trained and cached if needed) and the classifier for the supervised ViT, and perturbs the
encoder's parameters only, which makes the curves of all model kinds comparable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from core.attention import attention_for_second_derivatives
from core.checkpoints import LoadedCheckpoint, code_version, load_checkpoint
from core.errors import LandscapeError
from core.flatness import (
    Steps,
    hessian_eigenvalues,
    hessian_extreme_eigenvalues,
    hessian_trace,
    per_block_breakdown,
    robustness_curve,
    sharpness_average,
    sharpness_worst,
    spectral_density,
)
from core.journal import JOURNAL_FILE, Journal
from core.objectives import Objective, ObjectiveSpec, build_objective
from core.params import select_parameters
from core.store import Store
from core.train import pick_device

StageProgress = Callable[[str, int, int], None]
STAGES = ("eigenvalues", "trace", "density", "per_block", "sharpness", "robustness")


@dataclass(frozen=True)
class FlatnessSpec:
    """Which flatness numbers to compute for one checkpoint."""

    checkpoint: str
    loss: str = "own"  # the objective for Hessian and sharpness numbers
    samples: int = 128  # images per loss evaluation: Hessian-vector products cost ~3 forwards each
    data_seed: int = 0
    mask_seed: int = 0
    data: str | None = None
    split: str = "val"  # val | train | labeled (a fine-tuned ViT's own labeled subset); the robustness curve too
    rcmae_terms: str = "full"  # RC-MAE objective: MAE + consistency to the fixed teacher, or the MAE term alone
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

    def objective_spec(self, loss: str | None = None) -> ObjectiveSpec:
        return ObjectiveSpec(
            loss=loss or self.loss,
            samples=self.samples,
            data_seed=self.data_seed,
            mask_seed=self.mask_seed,
            data=self.data,
            split=self.split,
            rcmae_terms=self.rcmae_terms,
        )


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
        return build_objective(ckpt, spec.objective_spec("own"), device)
    from core.surfaces import prepare_checkpoint
    from core.train import ProbeConfig, probe_path

    if cached_only and not probe_path(ckpt.path, ckpt.sha256, ProbeConfig()).exists():
        raise _NotCached

    probe = load_checkpoint(prepare_checkpoint(str(ckpt.path), "probe"))
    return build_objective(probe, spec.objective_spec("probe"), device)


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
    (a Hessian-vector product costs about two gradients, a forward about a third of one), and the memory of the
    Lanczos vectors kept for reorthogonalization. Returns a `core.surfaces.Estimate` (points = HVP equivalents)."""
    import torch

    from core.surfaces import Estimate, available_memory

    module = objective.module
    params = [module.get_parameter(n) for n in names]
    with attention_for_second_derivatives(module):
        torch.autograd.grad(objective(module), params)  # warm-up
        t0 = time.perf_counter()
        torch.autograd.grad(objective(module), params)
        t_grad = time.perf_counter() - t0
    hvp, fwd = 2.0, 0.35
    units = 2 * spec.max_iter * hvp
    units += spec.trace_probes * hvp if spec.trace else 0
    units += spec.density_iter * spec.density_vectors * hvp if spec.density else 0
    if spec.per_block:
        groups = objective.ckpt.config.depth + 4
        units += groups * (min(30, spec.max_iter) + max(4, spec.trace_probes // 4)) * hvp
    units += (3 * spec.sharpness_samples * fwd + 6 + 6 * fwd) if spec.sharpness_rho is not None else 0
    units += len(spec.sigmas) * spec.robustness_draws * fwd if spec.robustness else 0
    n = sum(p.numel() for p in params)
    need = n * 4 * (spec.max_iter + 8) + len(objective.x) * objective.x[0].numel() * 4 * 50
    return Estimate(int(units / hvp), units * t_grad, int(need), available_memory(objective.device))


def flatness_disk_bytes(hvps: int, n_weights: int, folder: Any) -> int:
    """What a report writes at its peak: its step journals (at most one float64 vector over the `n_weights`
    weights per Hessian-vector product, bounded by `Journal`'s cap of a quarter of the free disk) plus the stage
    results (a few KiB each)."""
    from core.errors import free_bytes
    from core.journal import DEFAULT_MAX_BYTES

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
    if not cached_only and compute_flatness(spec, store=store, cached_only=True) is None:
        est = estimate_flatness(spec, objective, names)
        n_weights = sum(module.get_parameter(n).numel() for n in names)
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
            "n_params": sum(module.get_parameter(n).numel() for n in names),
            "cached": {},
            "reused_steps": {},  # steps replayed from a killed run's journal, per stage
        }
    )

    def stop_check() -> None:
        if check_stop is not None and check_stop():
            raise LandscapeError("stopped; finished steps are kept, rerun to continue")

    def stage_progress(stage: str) -> Callable[[int, int], None]:
        # Also a stop point inside a stage: the steps finished so far are in the stage's journal.
        def report_and_check(done: int, total: int) -> None:
            if progress is not None:
                progress(stage, done, total)
            stop_check()

        return report_and_check

    def run(stage: str, params: dict, compute: Callable[[Steps], dict]) -> dict:
        stop_check()
        if progress:
            progress(stage, 0, 1)
        value, hit, replayed = cached_stage(store, {**base, "stage": stage, **params}, compute, cached_only)
        report.meta["cached"][stage] = hit
        report.meta["reused_steps"][stage] = replayed
        if progress:
            progress(stage, 1, 1)
        return value

    with attention_for_second_derivatives(module):

        def eig(journal: Steps) -> dict:
            r = hessian_eigenvalues(
                module,
                objective,
                k=spec.top_k,
                names=names,
                max_iter=spec.max_iter,
                seed=spec.seed,
                progress=stage_progress("eigenvalues"),
                journal=journal.scope("top/"),
            )
            lmax, lmin = hessian_extreme_eigenvalues(
                module, objective, names=names, max_iter=spec.max_iter, seed=spec.seed, journal=journal.scope("ends/")
            )
            return {
                "values": list(r.values),
                "converged": bool(np.all(r.converged)),
                "lambda_min": lmin,
                "lambda_max_check": lmax,
            }

        v = run("eigenvalues", {"k": spec.top_k, "max_iter": spec.max_iter}, eig)
        report.top_eigenvalues, report.lambda_min, report.eig_converged = v["values"], v["lambda_min"], v["converged"]

        if spec.trace:
            v = run(
                "trace",
                {"probes": spec.trace_probes},
                lambda journal: hessian_trace(
                    module,
                    objective,
                    names=names,
                    n_probes=spec.trace_probes,
                    seed=spec.seed,
                    progress=stage_progress("trace"),
                    journal=journal,
                ).to_dict(),
            )
            report.trace, report.trace_stderr = v["estimate"], v["stderr"]

        if spec.density:

            def dens(journal: Steps) -> dict:
                r = spectral_density(
                    module,
                    objective,
                    names=names,
                    n_iter=spec.density_iter,
                    n_vectors=spec.density_vectors,
                    seed=spec.seed,
                    progress=stage_progress("density"),
                    journal=journal,
                )
                return {"grid": np.asarray(r.grid).tolist(), "density": np.asarray(r.density).tolist()}

            report.density = run("density", {"iter": spec.density_iter, "vectors": spec.density_vectors}, dens)

        if spec.per_block:

            def blocks(journal: Steps) -> dict:
                rows = per_block_breakdown(
                    module,
                    objective,
                    k=1,
                    n_probes=max(4, spec.trace_probes // 4),
                    seed=spec.seed,
                    max_iter=min(30, spec.max_iter),
                    progress=stage_progress("per_block"),
                    journal=journal,
                )
                return {
                    "rows": [
                        {
                            "group": b.group,
                            "n_params": b.n_params,
                            "lambda_max": b.lambda_max,
                            "trace": b.trace,
                            "trace_stderr": b.trace_stderr,
                        }
                        for b in rows
                    ]
                }

            bkey = {"probes": max(4, spec.trace_probes // 4), "max_iter": min(30, spec.max_iter)}
            report.per_block = run("per_block", bkey, blocks)["rows"]

        if spec.sharpness_rho is not None:
            rho = float(spec.sharpness_rho)

            def sharp(journal: Steps) -> dict:
                n, steps = spec.sharpness_samples, 5
                tick = stage_progress("sharpness")
                kw = dict(seed=spec.seed, names=names)
                avg = sharpness_average(
                    module,
                    objective,
                    rho,
                    n_samples=n,
                    journal=journal.scope("avg/"),
                    progress=lambda d, t: tick(d, 2 * n + steps),
                    **kw,
                )
                ada = sharpness_average(
                    module,
                    objective,
                    rho,
                    n_samples=n,
                    adaptive=True,
                    journal=journal.scope("ada/"),
                    progress=lambda d, t: tick(n + d, 2 * n + steps),
                    **kw,
                )
                worst = sharpness_worst(
                    module,
                    objective,
                    rho,
                    steps=steps,
                    journal=journal.scope("worst/"),
                    progress=lambda d, t: tick(2 * n + d, 2 * n + steps),
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

            report.sharpness = run("sharpness", {"rho": rho, "samples": spec.sharpness_samples}, sharp)

    if spec.robustness:
        robj = _robustness_objective(ckpt, spec, device, cached_only)
        rnames = select_parameters(robj.module, "encoder")
        sigmas = tuple(float(s) for s in spec.sigmas)

        def robust(journal: Steps) -> dict:
            r = robustness_curve(
                robj.module,
                robj,
                sigmas,
                n_draws=spec.robustness_draws,
                seed=spec.seed,
                names=rnames,
                progress=stage_progress("robustness"),
                journal=journal,
            )
            d = r.to_dict()
            d["loss"] = robj.loss_kind
            return d

        rkey = {"sigmas": list(sigmas), "draws": spec.robustness_draws, "robust_objective": robj.key()}
        report.robustness = run("robustness", rkey, robust)
        report.probe_acc = report.robustness.get("clean_acc")
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
