"""Benchmark: the landscape engine against what other tools do, on the same model, data, directions and points.

    python bench/run.py [--quick] [--device cpu|cuda] [--repeats N] [--threads T] [--checkpoint CKPT]
    python bench/run.py --model vit_b --device cuda     # ViT-B/16 MAE, random weights, 224x224 (bench/gpu.sh)

Contestants (docs/BENCHMARKS.md says what bounds each number):
1. ours: `core.geometry.landscape.evaluate_plane` with the project's `Objective` (fixed data and masks).
2. reference: what most tools do per point: a state-dict copy set to w0 + a*d1 + b*d2, `load_state_dict`, a torch
   `DataLoader` (batch 128) over the same images, the model's own forward and loss with the same fixed masks.
3. bare forward: the model's plain forward and loss over the evaluation set once per point, nothing else.
4. loss-landscapes (PyPI) `random_plane` with a Metric wrapping our loss (its own directions and points).
5. prefix-cached scopes: head-only probe and decoder-only MAE landscapes, ours against the reference loop.
6. Hessian: `core.geometry.hessian.hessian_eigenvalues` (Lanczos) against PyHessian (power iteration), same batch; and
   ours with a step journal (`ours_journaled`: every Lanczos step written to disk, as flatness reports do), whose
   ratio to plain ours is the price of resuming a killed report step by step.
7. first picture: `core.measure.surfaces.compute_surface` (the CLI path) to the first coarse 5x5 and to the full grid.

Every figure is the median of `repeats` runs after `warmup` runs, contestants interleaved round by round (the
order rotates), ratios taken per round and their median reported: the machine may be shared, so absolute times
are noisy and paired ratios are the robust numbers. The last stdout line is always
`speedup_vs_reference=X overhead_ratio=Y prefix_speedup=Z hessian_speedup=H`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python bench/run.py`
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from core.errors import LandscapeError  # noqa: E402
from core.geometry import (  # noqa: E402
    attention_for_second_derivatives,
    evaluate_plane,
    grid_axis,
    hessian_eigenvalues,
    random_direction,
)
from core.measure import SECOND_AXIS_OFFSET, SurfaceSpec, compute_surface  # noqa: E402
from core.models import (  # noqa: E402
    MAE,
    Objective,
    ObjectiveSpec,
    ProbeConfig,
    TrainConfig,
    build_objective,
    checkpoint_path,
    count_parameters,
    load_checkpoint,
    preset,
    save_checkpoint,
    train_model,
    train_probe,
)
from core.store import Journal, Store  # noqa: E402

TARGETS = {"speedup_vs_reference": 1.5, "overhead_ratio": 0.9, "prefix_speedup": 10.0, "hessian_speedup": 1.5}
SUMMARY_KEYS = tuple(TARGETS)
REFERENCE_BATCH = 128
BATCH_POINTS = 16
BATCHED_POINTS = (
    f"ours_batched: {BATCH_POINTS} grid points per vectorized forward (core.geometry.landscape.evaluate_points with "
    "points_per_batch; torch.func.vmap over functional_call), the CUDA default of the CLI and dashboard"
)


@dataclass(frozen=True)
class BenchSettings:
    """What one benchmark run measures and how often."""

    device: str = "cpu"
    mode: str = "full"  # full | quick: only names the results file
    grid: int = 21  # points per axis of the timed planes
    span: float = 1.0  # coordinates over [-span, span] in filter-normalized units
    samples: int = 256  # evaluation images (ObjectiveSpec default)
    repeats: int = 3  # timed rounds
    warmup: int = 1  # untimed rounds first (allocator, caches, lazy imports)
    threads: int = 1  # torch intra-op threads, the same for every contestant
    seed: int = 0  # direction seed (the second axis uses seed + SECOND_AXIS_OFFSET, as the CLI)
    reference_batch: int = REFERENCE_BATCH
    hessian_samples: int = 128  # the one batch both Hessian tools see (FlatnessSpec default)
    hessian_ks: tuple[int, ...] = (3, 1)  # the first is the headline: 3 is the CLI's `flatness --top-k` default
    hessian_tol: float = 1e-3  # PyHessian's default; ours gets the same number (see docs for the semantics)
    hessian_max_iter: int = 100
    surface_grid: int = 21  # first picture: the full grid (the coarse one is 5x5)
    loss_landscapes: bool = True
    pyhessian: bool = True
    prefix: bool = True
    hessian: bool = True
    first_picture: bool = True


@dataclass
class Case:
    """One landscape to time: a module, its objective, two directions and the grid."""

    name: str
    objective: Objective
    d1: dict[str, torch.Tensor]
    d2: dict[str, torch.Tensor]
    xs: np.ndarray
    ys: np.ndarray
    reference_batch: int = REFERENCE_BATCH

    @property
    def module(self) -> nn.Module:
        return self.objective.module

    @property
    def n_points(self) -> int:
        return len(self.xs) * len(self.ys)


@dataclass
class Timing:
    """Seconds of the timed rounds of one contestant."""

    times: list[float] = field(default_factory=list)

    def stats(self, points: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"median_s": _median(self.times), "min_s": min(self.times), "max_s": max(self.times)}
        out["times_s"] = list(self.times)
        if points:
            out["per_point_ms"] = 1e3 * out["median_s"] / points
        return out


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def _ratio_stats(num: Sequence[float], den: Sequence[float]) -> dict[str, float]:
    # Paired by round; a contestant dropped after an error has a prefix of the rounds.
    r = [a / b for a, b in zip(num, den, strict=False) if b > 0]
    return {"median": _median(r), "min": min(r), "max": max(r)} if r else {"median": math.nan}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------------------------------
# Cases


def make_case(
    ckpt_path: str | os.PathLike,
    settings: BenchSettings,
    *,
    name: str = "plane",
    loss: str = "own",
    scope: str = "all",
    samples: int | None = None,
    grid: int | None = None,
    data: str | None = None,
    split: str = "val",
) -> Case:
    """Load a checkpoint, build its objective (prefix caching for `scope`) and the two filter-normalized axes."""
    ck = load_checkpoint(ckpt_path)
    spec = ObjectiveSpec(loss=loss, samples=samples or settings.samples, prefix_scope=scope, data=data, split=split)
    obj = build_objective(ck, spec, settings.device)
    if obj.loss_kind not in ("pretrain", "probe", "supervised"):
        raise LandscapeError(f"the benchmark does not handle the {obj.loss_kind} loss")
    if obj.loss_kind == "pretrain" and obj.teacher_pred is not None:
        raise LandscapeError("the benchmark times plain MAE losses; give an MAE checkpoint, not RC-MAE")
    d1 = random_direction(obj.module, settings.seed, scope=scope)
    d2 = random_direction(obj.module, settings.seed + SECOND_AXIS_OFFSET, scope=scope)
    axis = grid_axis(settings.span, grid or settings.grid)
    return Case(name, obj, d1, d2, axis, axis.copy(), settings.reference_batch)


def _batch_loss(case: Case, module: nn.Module, xb: torch.Tensor, nb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """The loss of one batch through the model's own forward: what a user's training code computes."""
    if case.objective.loss_kind == "pretrain":
        return module(xb, case.objective.mask_ratio, nb)[0]
    return F.cross_entropy(module(xb).float(), yb)


def _noise_of(case: Case) -> torch.Tensor:
    obj = case.objective
    if obj.loss_kind == "pretrain":
        return obj.noise
    return torch.zeros(len(obj.x), 1, device=obj.x.device)  # unused: keeps one code path for the loaders


# --------------------------------------------------------------------------------------------------------------
# Contestants: each returns the loss array (len(ys), len(xs)) of the points it evaluated


def plane_ours(case: Case, points_per_batch: int = 1) -> np.ndarray:
    """The engine: in-place foreach perturbation, ready tensors, prefix cache when the scope allows it; optionally
    several grid points per vectorized forward."""
    return evaluate_plane(
        case.module, case.objective, case.d1, case.d2, case.xs, case.ys, points_per_batch=points_per_batch
    )


def plane_reference(case: Case) -> np.ndarray:
    """The usual loop: per point, a state-dict copy set to w0 + a*d1 + b*d2, load_state_dict, a DataLoader pass."""
    module, obj = case.module, case.objective
    device = obj.device
    w0 = copy.deepcopy(module.state_dict())  # the tool's saved original weights
    data = TensorDataset(obj.x.cpu(), _noise_of(case).cpu(), obj.y.cpu())  # the evaluation set, on the host
    loader = DataLoader(data, batch_size=case.reference_batch, shuffle=False)
    n = len(data)
    out = np.full((len(case.ys), len(case.xs)), np.nan)
    try:
        for i, b in enumerate(case.ys):
            for j, a in enumerate(case.xs):
                sd = copy.deepcopy(w0)
                for k, d in case.d1.items():
                    sd[k].add_(d, alpha=float(a)).add_(case.d2[k], alpha=float(b))
                module.load_state_dict(sd)
                module.eval()
                total = 0.0
                with torch.no_grad():
                    for xb, nb, yb in loader:
                        xb, nb, yb = xb.to(device), nb.to(device), yb.to(device)
                        total += float(_batch_loss(case, module, xb, nb, yb)) * len(xb) / n
                out[i, j] = total
    finally:
        module.load_state_dict(w0)
    return out


def _ready_batches(case: Case) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    obj = case.objective
    bs = obj.batch_size  # the objective's own chunks (CPU: at most core.models.objectives.CPU_BATCH)
    noise = _noise_of(case)
    return [(obj.x[i : i + bs], noise[i : i + bs], obj.y[i : i + bs]) for i in range(0, len(obj.x), bs)]


def _bare_loss(case: Case, batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> float:
    n = len(case.objective.x)
    with torch.no_grad():
        total = sum(_batch_loss(case, case.module, xb, nb, yb) * (len(xb) / n) for xb, nb, yb in batches)
    return float(total)


def plane_bare(case: Case) -> np.ndarray:
    """The floor: one plain forward and loss over the (ready, on-device) evaluation set per point, at the model's
    current weights. Same batches as the objective; no weights are set, so every value is the centre's loss."""
    batches = _ready_batches(case)
    vals = [_bare_loss(case, batches) for _ in range(case.n_points)]
    return np.asarray(vals, dtype=np.float64).reshape(len(case.ys), len(case.xs))


def bare_at(case: Case, a: float, b: float) -> float:
    """The bare forward's loss at the point (a, b), weights set by hand (the honesty check's third opinion)."""
    module = case.module
    params = dict(module.named_parameters())
    saved = {k: params[k].detach().clone() for k in case.d1}
    try:
        with torch.no_grad():
            for k, w in saved.items():
                params[k].copy_(w + float(a) * case.d1[k] + float(b) * case.d2[k])
        return _bare_loss(case, _ready_batches(case))
    finally:
        with torch.no_grad():
            for k, w in saved.items():
                params[k].copy_(w)


def reference_breakdown(case: Case, n: int = 5) -> dict[str, float]:
    """Milliseconds per point of the reference loop's three parts, each timed alone (median of `n`): `weights`
    (state-dict copy set to a point, load_state_dict), `data` (one DataLoader pass, no model), `forward` (model
    forward and loss over the same batches, already collated and on the device). What bounds its ratio to ours."""
    module, obj = case.module, case.objective
    device = obj.device
    w0 = copy.deepcopy(module.state_dict())
    data = TensorDataset(obj.x.cpu(), _noise_of(case).cpu(), obj.y.cpu())
    loader = DataLoader(data, batch_size=case.reference_batch, shuffle=False)
    ready = [tuple(t.to(device) for t in batch) for batch in loader]
    a, b = float(case.xs[0]), float(case.ys[-1])

    def weights() -> None:
        sd = copy.deepcopy(w0)
        for k, d in case.d1.items():
            sd[k].add_(d, alpha=a).add_(case.d2[k], alpha=b)
        module.load_state_dict(sd)

    def data_pass() -> None:
        for batch in loader:
            for t in batch:
                t.to(device)

    def forward() -> None:
        with torch.no_grad():
            for xb, nb, yb in ready:
                float(_batch_loss(case, module, xb, nb, yb))

    out = {}
    try:
        for name, fn in (("weights", weights), ("data", data_pass), ("forward", forward)):
            fn()
            times = []
            for _ in range(n):
                _sync(device)
                t0 = time.perf_counter()
                fn()
                _sync(device)
                times.append(time.perf_counter() - t0)
            out[f"{name}_ms"] = 1e3 * _median(times)
    finally:
        module.load_state_dict(w0)
    return out


def plane_loss_landscapes(case: Case, seed: int = 0) -> np.ndarray:
    """loss-landscapes' `random_plane` with a Metric wrapping our loss.

    Its directions are its own (uniform [0, 1) draws, the second made orthogonal to the first, per-row
    normalization of every parameter including biases, norms and the frozen position tables, then a global
    rescale); `distance = span / 2` gives roughly our [-span, span] extent. Its points are not ours (see docs).
    It needs `deepcopy_model=True` or it leaves the model at the last grid point.
    """
    from loss_landscapes import random_plane
    from loss_landscapes.metrics.metric import Metric

    obj = case.objective

    class ObjectiveMetric(Metric):
        def __call__(self, model_wrapper) -> float:
            return obj.evaluate(model_wrapper.modules[0])["loss"]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = random_plane(
            case.module,
            ObjectiveMetric(),
            distance=case.xs[-1] / 2,
            steps=len(case.xs),
            normalization="filter",
            deepcopy_model=True,
        )
    return np.asarray(out, dtype=np.float64)


def agreement(case: Case, ours: np.ndarray, reference: np.ndarray, n_bare: int = 3) -> dict[str, float]:
    """Largest absolute differences: reference vs ours over the whole grid, bare forward vs ours at the centre and
    at up to `n_bare` more grid points (bare weights set by hand)."""
    ny, nx = ours.shape
    picks = [(ny // 2, nx // 2), (0, 0), (ny - 1, nx - 1), (0, nx - 1)][: 1 + n_bare]
    bare = max(abs(bare_at(case, case.xs[j], case.ys[i]) - ours[i, j]) for i, j in picks)
    return {
        "max_abs_diff_reference": float(np.nanmax(np.abs(reference - ours))),
        "max_abs_diff_bare": float(bare),
        "bare_points_checked": len(picks),
    }


# --------------------------------------------------------------------------------------------------------------
# Timing


def time_interleaved(
    contestants: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int,
    device: torch.device,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Run every contestant once per round, `warmup` untimed rounds then `repeats` timed ones; the order rotates
    each round so none always runs first (warm caches) or last. Contestants that raise are dropped and their
    error kept.

    Returns:
        ({name: Timing}, {name: output of its last run, or the exception it raised}).
    """
    names = list(contestants)
    timings = {n: Timing() for n in names}
    last: dict[str, Any] = {}
    for r in range(warmup + repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            if isinstance(last.get(name), Exception):
                continue
            _sync(device)
            t0 = time.perf_counter()
            try:
                out = contestants[name]()
            except Exception as err:  # noqa: BLE001 - a peer that fails is reported, not fatal
                last[name] = err
                continue
            _sync(device)
            dt = time.perf_counter() - t0
            last[name] = out
            if r >= warmup:
                timings[name].times.append(dt)
            if log is not None:
                log(f"  {'warm-up' if r < warmup else f'round {r - warmup + 1}'} {name}: {dt:.3f} s")
    return {n: t for n, t in timings.items() if t.times}, last


def _fail(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def bench_plane(case: Case, settings: BenchSettings, log: Callable[[str], None]) -> dict[str, Any]:
    """Full-model landscape: ours, reference loop, bare forward, loss-landscapes, interleaved."""
    contestants: dict[str, Callable[[], Any]] = {
        "ours": lambda: plane_ours(case),
        "reference": lambda: plane_reference(case),
        "bare_forward": lambda: plane_bare(case),
        "ours_batched": lambda: plane_ours(case, BATCH_POINTS),
    }
    notes: dict[str, str] = {"ours_batched": f"{BATCH_POINTS} grid points per vectorized forward"}
    if settings.loss_landscapes:
        try:
            import loss_landscapes  # noqa: F401

            contestants["loss_landscapes"] = lambda: plane_loss_landscapes(case, settings.seed)
            notes["loss_landscapes"] = (
                "own directions (uniform draws, every parameter incl. biases, norms and frozen position tables "
                "moved) and own points (columns alternate between two offsets, see docs); times include its "
                "direction setup and model deepcopy"
            )
        except ImportError:
            notes["loss_landscapes"] = "not installed (pip install loss-landscapes)"
    timings, last = time_interleaved(contestants, settings.repeats, settings.warmup, case.objective.device, log)
    out = _report(case, timings, last, notes)
    if "reference" in timings and "bare_forward" in timings:
        # The ratio an engine with no per-point cost beyond the forward would reach against the reference.
        out["bound_reference_over_bare"] = _ratio_stats(timings["reference"].times, timings["bare_forward"].times)
    out["reference_breakdown"] = reference_breakdown(case)
    return out


def _report(case: Case, timings: dict[str, Timing], last: dict[str, Any], notes: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"points": case.n_points, "grid": [len(case.ys), len(case.xs)], "contestants": {}}
    for name, t in timings.items():
        out["contestants"][name] = t.stats(case.n_points)
    for name, val in last.items():
        entry = out["contestants"].setdefault(name, {})
        if isinstance(val, Exception):
            entry["error"] = _fail(val)
        if name in notes:
            entry["note"] = notes[name]
    for name, note in notes.items():
        out["contestants"].setdefault(name, {"note": note})
    ratios = {}
    if "ours" in timings:
        for name, t in timings.items():
            if name != "ours":
                ratios[f"{name}/ours"] = _ratio_stats(t.times, timings["ours"].times)
    out["ratios"] = ratios
    if isinstance(last.get("ours"), np.ndarray) and isinstance(last.get("reference"), np.ndarray):
        out["agreement"] = agreement(case, last["ours"], last["reference"])
        out["centre_loss"] = float(last["ours"][len(case.ys) // 2, len(case.xs) // 2])
    return out


def bench_prefix(case: Case, settings: BenchSettings, log: Callable[[str], None]) -> dict[str, Any]:
    """A prefix-cached scope: ours (prefix computed once) against the reference loop (full forwards)."""
    contestants = {"ours": lambda: plane_ours(case), "reference": lambda: plane_reference(case)}
    timings, last = time_interleaved(contestants, settings.repeats, settings.warmup, case.objective.device, log)
    out = _report(case, timings, last, {})
    out["scope"] = case.objective.spec.prefix_scope
    out["loss"] = case.objective.loss_kind
    out["moved_parameters"] = int(sum(int(bool(t.any())) * t.numel() for t in case.d1.values()))
    return out


# --------------------------------------------------------------------------------------------------------------
# Hessian


class _LossAsModel(nn.Module):
    """PyHessian wants model(inputs) and criterion(outputs, targets): the model returns our loss, the criterion
    passes it through, so both tools differentiate exactly the same function of the same parameters."""

    def __init__(self, module: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor]) -> None:
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.module)


def hessian_ours(
    obj: Objective,
    k: int,
    settings: BenchSettings,
    tol: float | None = None,
    max_iter: int | None = None,
    journaled: bool = False,
):
    """Top-k eigenvalues by Lanczos (the project's `hessian_eigenvalues`, largest algebraic as the CLI); with
    `journaled`, every step is recorded in a fresh step journal on disk (deleted afterwards)."""
    kwargs = dict(
        k=k,
        tol=settings.hessian_tol if tol is None else tol,
        max_iter=settings.hessian_max_iter if max_iter is None else max_iter,
        seed=settings.seed,
    )
    if not journaled:
        return hessian_eigenvalues(obj.module, obj, **kwargs)
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
        journal = Journal(Path(tmp) / "journal.bin")
        try:
            return hessian_eigenvalues(obj.module, obj, journal=journal, **kwargs)
        finally:
            journal.discard()


def hessian_pyhessian(obj: Objective, k: int, settings: BenchSettings) -> tuple[list[float], int]:
    """PyHessian's power iteration (with deflation for k > 1) on the same loss and batch.

    Returns:
        (eigenvalues, Hessian-vector products used).
    """
    import pyhessian  # noqa: F401 - the package's __init__ shadows the module name with the class

    ph = sys.modules["pyhessian.hessian"]
    counter = [0]
    original = ph.hessian_vector_product

    def counted(*args, **kwargs):
        counter[0] += 1
        return original(*args, **kwargs)

    model = _LossAsModel(obj.module, obj)
    ph.hessian_vector_product = counted  # instrumentation only: counts the products
    try:
        with torch.random.fork_rng(devices=[]), attention_for_second_derivatives(obj.module), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # its backward(create_graph=True) warns about a cycle
            torch.manual_seed(settings.seed)
            h = ph.hessian(model, lambda out, targets: out, data=(obj.x, obj.y), cuda=obj.device.type == "cuda")
            values, _ = h.eigenvalues(maxIter=settings.hessian_max_iter, tol=settings.hessian_tol, top_n=k)
    finally:
        ph.hessian_vector_product = original
        for p in obj.module.parameters():  # PyHessian leaves graph-holding .grad behind
            p.grad = None
    return [float(v) for v in values], counter[0]


def bench_hessian_k(obj: Objective, k: int, settings: BenchSettings, log: Callable[[str], None]) -> dict:
    """Top-k Hessian eigenvalues, ours against PyHessian, interleaved; agreement of the top eigenvalue."""
    out: dict[str, Any] = {"k": k, "samples": len(obj.x), "tol": settings.hessian_tol}
    contestants: dict[str, Callable[[], Any]] = {
        "ours": lambda: hessian_ours(obj, k, settings),
        "ours_journaled": lambda: hessian_ours(obj, k, settings, journaled=True),
    }
    if settings.pyhessian:
        try:
            import pyhessian  # noqa: F401

            contestants["pyhessian"] = lambda: hessian_pyhessian(obj, k, settings)
        except ImportError:
            out["note"] = "pyhessian not installed (pip install pyhessian)"
    timings, last = time_interleaved(contestants, settings.repeats, settings.warmup, obj.device, log)
    out["contestants"] = {n: t.stats() for n, t in timings.items()}
    # Untimed: a tightly converged answer to measure both against.
    tight = hessian_ours(obj, k, settings, tol=1e-7, max_iter=300).values
    out["tight"] = list(tight)
    for name, val in last.items():
        entry = out["contestants"].setdefault(name, {})
        if isinstance(val, Exception):
            entry["error"] = _fail(val)
            continue
        ours_like = name.startswith("ours")
        values, n_hvp = (list(val.values), val.n_hvp) if ours_like else val
        entry.update(values=values, n_hvp=n_hvp, rel_err_top_vs_tight=abs(values[0] - tight[0]) / abs(tight[0]))
        if ours_like:
            entry["converged"] = list(val.converged)
    c = out["contestants"]
    out["ratios"] = {}
    if "values" in c.get("ours_journaled", {}):
        out["ratios"]["ours_journaled/ours"] = _ratio_stats(timings["ours_journaled"].times, timings["ours"].times)
    if "values" in c.get("ours", {}) and "values" in c.get("pyhessian", {}):
        out["rel_diff_top"] = abs(c["pyhessian"]["values"][0] - c["ours"]["values"][0]) / abs(c["ours"]["values"][0])
        out["ratios"]["pyhessian/ours"] = _ratio_stats(timings["pyhessian"].times, timings["ours"].times)
    return out


def bench_hessian(ckpt_path: str | os.PathLike, settings: BenchSettings, log: Callable[[str], None]) -> dict:
    """Every k of `settings.hessian_ks` on one batch of `hessian_samples` images (one objective, one batch)."""
    ck = load_checkpoint(ckpt_path)
    obj = build_objective(ck, ObjectiveSpec(samples=settings.hessian_samples), settings.device)
    out: dict[str, Any] = {"headline_k": settings.hessian_ks[0]}
    for k in settings.hessian_ks:
        log(f" top-{k}")
        out[f"k{k}"] = bench_hessian_k(obj, k, settings, log)
    return out


# --------------------------------------------------------------------------------------------------------------
# First picture through the cached CLI path


def first_picture_once(ckpt_path: str | os.PathLike, settings: BenchSettings) -> tuple[float, float]:
    """Seconds from calling `compute_surface` (fresh cache) to the first complete coarse 5x5, and to the end."""
    grid = settings.surface_grid
    if (grid - 1) % 4:
        raise ValueError(f"the first-picture grid needs (grid - 1) divisible by 4, got {grid}")
    step = (grid - 1) // 4
    root = tempfile.mkdtemp(prefix="bench-surface-")
    first = [math.nan]
    try:
        t0 = time.perf_counter()

        def on_partial(s) -> None:
            if math.isnan(first[0]) and np.isfinite(s.loss[::step, ::step]).all():
                first[0] = time.perf_counter() - t0

        spec = SurfaceSpec(checkpoint=str(ckpt_path), grid=grid, span=settings.span, device=settings.device)
        compute_surface(spec, store=Store(root), on_partial=on_partial)
        total = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return first[0], total


def bench_first_picture(ckpt_path: str | os.PathLike, settings: BenchSettings, log: Callable[[str], None]) -> dict:
    coarse, full = Timing(), Timing()
    for r in range(settings.warmup + settings.repeats):
        a, b = first_picture_once(ckpt_path, settings)
        log(
            f"  {'warm-up' if r < settings.warmup else f'round {r - settings.warmup + 1}'} first picture: "
            f"5x5 after {a:.3f} s, {settings.surface_grid}x{settings.surface_grid} after {b:.3f} s"
        )
        if r >= settings.warmup:
            coarse.times.append(a)
            full.times.append(b)
    n = settings.surface_grid
    return {"grid": n, "coarse": coarse.stats(25), "full": full.stats(n * n)}


# --------------------------------------------------------------------------------------------------------------
# Models


def bench_checkpoints(cache_dir: Path, quick: bool, device: str, checkpoint: str | None = None) -> tuple[Path, Path]:
    """The default MAE (tiny, digits; a few epochs for --quick) and its linear probe, trained into `cache_dir`
    once and reused; or `checkpoint` and a probe on it."""
    ckpt_dir = cache_dir / "checkpoints"
    if checkpoint:
        mae = Path(checkpoint)
        if load_checkpoint(mae).kind != "mae":
            raise LandscapeError(f"{mae.name} is not an MAE checkpoint: the benchmark times the MAE pre-training loss")
    else:
        cfg = TrainConfig(kind="mae", epochs=3 if quick else TrainConfig.epochs)
        mae = train_model(cfg, device=device, path=ckpt_dir / checkpoint_path(cfg).name)
    pcfg = ProbeConfig(epochs=10) if quick else ProbeConfig()
    base = load_checkpoint(mae)
    probe = train_probe(mae, pcfg, device=device, path=ckpt_dir / f"{mae.stem}.{base.sha256[:10]}.bench_probe.pt")
    return mae, probe


def vit_b_checkpoint(cache_dir: Path, n_images: int = 320) -> tuple[Path, str]:
    """A ViT-B/16 MAE (official shapes, `vit_base_patch16` preset) with seeded random weights, and a folder of
    seeded random RGB images (two classes) it is evaluated on at 224x224. Returns (checkpoint, data spec)."""
    from PIL import Image

    root = cache_dir / "vit_b"
    data_dir = root / "images"
    if not (data_dir / "b" / f"{n_images // 2 - 1:04d}.png").exists():
        rng = np.random.default_rng(0)
        for c in ("a", "b"):
            (data_dir / c).mkdir(parents=True, exist_ok=True)
            for i in range(n_images // 2):
                arr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(arr).save(data_dir / c / f"{i:04d}.png")
    spec = f"folder:{data_dir}"
    path = root / "mae_vit_base_patch16_random.pt"
    if not path.exists():
        cfg = preset("vit_base_patch16")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = MAE(cfg).eval()
        data = {"spec": spec, "val_fraction": 0.2, "split_seed": 0}
        save_checkpoint(path, model, "mae", cfg, train={"seed": 0, "mask_ratio": 0.75}, data=data)
    return path, spec


# --------------------------------------------------------------------------------------------------------------
# Whole run


def machine_info(settings: BenchSettings) -> dict[str, Any]:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": settings.device,
    }
    with contextlib.suppress(OSError):
        info["loadavg_start"] = os.getloadavg()
    if settings.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    for pkg in ("loss_landscapes", "pyhessian", "timm"):
        try:
            from importlib.metadata import version

            info[pkg] = version(pkg.replace("_", "-"))
        except Exception:  # noqa: BLE001 - absent peers are recorded as absent
            info[pkg] = None
    return info


def summarize(results: dict[str, Any]) -> dict[str, float]:
    """The four headline ratios (median of per-round ratios); NaN where a part was not run or failed."""

    def ratio(section: dict | None, key: str) -> float:
        try:
            return float(section["ratios"][key]["median"])
        except (KeyError, TypeError):
            return math.nan

    plane = results.get("plane")
    prefix = (results.get("prefix") or {}).get("head_probe")
    hess = results.get("hessian") or {}
    return {
        "speedup_vs_reference": ratio(plane, "reference/ours"),
        "overhead_ratio": ratio(plane, "bare_forward/ours"),
        "prefix_speedup": ratio(prefix, "reference/ours"),
        "hessian_speedup": ratio(hess.get(f"k{hess.get('headline_k')}"), "pyhessian/ours"),
    }


def summary_line(summary: dict[str, float]) -> str:
    """`speedup_vs_reference=X overhead_ratio=Y prefix_speedup=Z hessian_speedup=H` (3 significant digits)."""
    return " ".join(f"{k}={summary[k]:.3g}" for k in SUMMARY_KEYS)


def run_benchmark(
    settings: BenchSettings,
    mae_ckpt: str | os.PathLike,
    probe_ckpt: str | os.PathLike | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Run every part the settings ask for and return the results as plain values (the JSON file's content)."""
    torch.set_num_threads(settings.threads)
    results: dict[str, Any] = {"settings": asdict(settings), "machine": machine_info(settings)}
    results["batched_points"] = BATCHED_POINTS
    t_start = time.perf_counter()

    log(f"full-model landscape, {settings.grid}x{settings.grid}, {settings.samples} images")
    case = make_case(mae_ckpt, settings)
    results["model"] = {
        "checkpoint": str(mae_ckpt),
        "parameters": count_parameters(case.module),
        "moved_parameters": int(sum(t.numel() for t in case.d1.values() if bool(t.any()))),
        "config": load_checkpoint(mae_ckpt).config.to_dict(),
    }
    results["plane"] = bench_plane(case, settings, log)

    if settings.prefix:
        results["prefix"] = {}
        if probe_ckpt is not None:
            log("head-only probe landscape (prefix_scope='head')")
            pcase = make_case(probe_ckpt, settings, name="head_probe", loss="probe", scope="head")
            results["prefix"]["head_probe"] = bench_prefix(pcase, settings, log)
        log("decoder-only MAE landscape (prefix_scope='decoder')")
        dcase = make_case(mae_ckpt, settings, name="decoder_mae", scope="decoder")
        results["prefix"]["decoder_mae"] = bench_prefix(dcase, settings, log)

    if settings.hessian:
        log(f"Hessian top eigenvalues, {settings.hessian_samples} images, tol {settings.hessian_tol}")
        results["hessian"] = bench_hessian(mae_ckpt, settings, log)

    if settings.first_picture:
        log(f"first picture: compute_surface {settings.surface_grid}x{settings.surface_grid}, fresh cache")
        results["first_picture"] = bench_first_picture(mae_ckpt, settings, log)

    with contextlib.suppress(OSError):
        results["machine"]["loadavg_end"] = os.getloadavg()
    results["seconds_total"] = time.perf_counter() - t_start
    results["summary"] = summarize(results)
    results["targets"] = dict(TARGETS)
    return results


def vit_b_estimate(plane: dict[str, Any], samples: int, grid: int = 51, images: int = 2048) -> dict[str, Any]:
    """Extrapolate ours' measured per-point rate to a 51x51 ViT-B landscape over 2,048 images (cost taken as
    linear in images; points split evenly over GPUs, as torchrun ranks take every world_size-th point)."""
    per_point = plane["contestants"]["ours"]["median_s"] / plane["points"]
    one = grid * grid * per_point * images / samples
    return {
        "per_point_s": per_point,
        "measured_images": samples,
        "grid": grid,
        "images": images,
        "hours_1_gpu": one / 3600,
        "hours_8_gpus": one / 8 / 3600,
    }


# --------------------------------------------------------------------------------------------------------------
# Output


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _fmt_list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.5g}" for v in values) + "]"


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table of every measured figure."""
    rows = [("part", "contestant", "median s", "min s", "max s", "ms/point", "ratio vs ours (med [min,max])")]

    def add_section(label: str, section: dict | None) -> None:
        if not section:
            return
        for name, st in section.get("contestants", {}).items():
            r = section.get("ratios", {}).get(f"{name}/ours")
            ratio = f"{r['median']:.3g} [{r['min']:.3g}, {r['max']:.3g}]" if r and "min" in r else ""
            if "error" in st or "median_s" not in st:
                rows.append((label, name, "-", "-", "-", "-", st.get("error") or st.get("note", "")))
                continue
            rows.append(
                (
                    label,
                    name,
                    _fmt(st["median_s"]),
                    _fmt(st["min_s"]),
                    _fmt(st["max_s"]),
                    _fmt(st.get("per_point_ms")),
                    ratio,
                )
            )

    plane = results.get("plane")
    add_section(f"plane {plane['grid'][0]}x{plane['grid'][1]}" if plane else "plane", plane)
    for key, sec in (results.get("prefix") or {}).items():
        add_section(f"{key} {sec['grid'][0]}x{sec['grid'][1]}", sec)
    hess = results.get("hessian") or {}
    for sec in hess.values():
        if isinstance(sec, dict):
            add_section(f"hessian top-{sec['k']} ({sec['samples']} img)", sec)
    fp = results.get("first_picture")
    if fp:
        n = fp["grid"]
        for label, st in (("to 5x5", fp["coarse"]), (f"to {n}x{n}", fp["full"])):
            rows.append(("first picture", label, _fmt(st["median_s"]), _fmt(st["min_s"]), _fmt(st["max_s"]), "", ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    extra = []
    if plane and "agreement" in plane:
        a = plane["agreement"]
        extra.append(
            f"agreement (plane): |reference - ours| <= {a['max_abs_diff_reference']:.2g}, "
            f"|bare - ours| <= {a['max_abs_diff_bare']:.2g} at {a['bare_points_checked']} points"
        )
    if plane and "reference_breakdown" in plane:
        rb = plane["reference_breakdown"]
        ours_ms = plane["contestants"].get("ours", {}).get("per_point_ms", math.nan)
        extra.append(
            f"reference per point, parts timed alone: weights {rb['weights_ms']:.3g} ms + data {rb['data_ms']:.3g} ms "
            f"+ forward {rb['forward_ms']:.3g} ms; ours {ours_ms:.3g} ms per point"
        )
    if plane and "bound_reference_over_bare" in plane:
        extra.append(
            f"bound: reference / bare forward = {plane['bound_reference_over_bare']['median']:.3g} (the speed-up an "
            "engine with no per-point cost beyond the forward would reach)"
        )
    for sec in hess.values():
        if isinstance(sec, dict) and "rel_diff_top" in sec:
            c = sec["contestants"]
            extra.append(
                f"hessian top-{sec['k']}: ours {_fmt_list(c['ours']['values'])} ({c['ours']['n_hvp']} HVPs), pyhessian "
                f"{_fmt_list(c['pyhessian']['values'])} ({c['pyhessian']['n_hvp']} HVPs); top eigenvalue relative "
                f"difference {sec['rel_diff_top']:.2g}, errors vs tight Lanczos ({sec['tight'][0]:.6g}): ours "
                f"{c['ours']['rel_err_top_vs_tight']:.2g}, pyhessian {c['pyhessian']['rel_err_top_vs_tight']:.2g}"
            )
    if "vit_b_estimate" in results:
        e = results["vit_b_estimate"]
        extra.append(
            f"ViT-B {e['grid']}x{e['grid']} over {e['images']} images: {e['per_point_s']:.3g} s/point measured on "
            f"{e['measured_images']} images -> {e['hours_1_gpu']:.2f} h on 1 GPU, {e['hours_8_gpus']:.2f} h on 8"
        )
    extra.append(f"batched grid points: {results.get('batched_points', BATCHED_POINTS)}")
    m = results.get("machine", {})
    extra.append(f"threads: torch.set_num_threads({m.get('threads')}) for every contestant; device {m.get('device')}")
    return "\n".join(lines + [""] + extra)


def write_json(results: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=float, allow_nan=True) + "\n")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------------------------
# CLI


def settings_from_args(a: argparse.Namespace) -> BenchSettings:
    s = BenchSettings(device=a.device, mode="quick" if a.quick else "full", threads=a.threads)
    if a.quick:
        s = replace(s, grid=5, repeats=3, hessian_samples=64, surface_grid=9)
    if a.model == "vit_b":
        s = replace(s, grid=3, samples=128, prefix=False, hessian=False, first_picture=False, loss_landscapes=False)
    if a.repeats is not None:
        s = replace(s, repeats=a.repeats)
    if a.grid is not None:
        s = replace(s, grid=a.grid)
    if a.samples is not None:
        s = replace(s, samples=a.samples)
    if a.warmup is not None:
        s = replace(s, warmup=a.warmup)
    return s


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5x5 grids, 3 repeats, a 3-epoch model (< 3 min on 2 cores)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3)")
    ap.add_argument("--grid", type=int, default=None, help="points per axis of the timed planes")
    ap.add_argument("--samples", type=int, default=None, help="evaluation images (default 256; vit_b 128)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds before the timed ones (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads for every contestant (default 1)")
    ap.add_argument("--checkpoint", default=None, help="an MAE checkpoint instead of training the default one")
    ap.add_argument("--model", default="tiny", choices=("tiny", "vit_b"), help="vit_b: ViT-B/16 MAE, random weights")
    ap.add_argument("--cache-dir", default=str(ROOT / "cache" / "bench"), help="where bench models are kept")
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/<device>-<quick|full>.json)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    settings = settings_from_args(a)
    if settings.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no GPU is visible to torch", file=sys.stderr)
        return 1
    torch.set_num_threads(settings.threads)
    cache_dir = Path(a.cache_dir)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        if a.model == "vit_b":
            log("ViT-B/16 MAE with random weights at 224x224 (folder of random RGB images)")
            mae, data = vit_b_checkpoint(cache_dir)
            results = run_vit_b(settings, mae, data, log)
            name = f"{settings.device}-vit_b"
        else:
            t0 = time.perf_counter()
            mae, probe = bench_checkpoints(cache_dir, a.quick, settings.device, a.checkpoint)
            log(f"models ready in {time.perf_counter() - t0:.1f} s: {mae.name}, {probe.name}")
            results = run_benchmark(settings, mae, probe, log)
            name = f"{settings.device}-{settings.mode}"
    except LandscapeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out = Path(a.out) if a.out else ROOT / "bench" / "results" / f"{name}.json"
    write_json(results, out)
    print(format_table(results))
    print(f"results: {out}")
    print(summary_line(results["summary"]))
    return 0


def run_vit_b(settings: BenchSettings, mae: Path, data: str, log: Callable[[str], None]) -> dict[str, Any]:
    """ViT-B/16: the full-model plane (ours, reference, bare forward) on a few points, and the 51x51 estimate."""
    torch.set_num_threads(settings.threads)
    results: dict[str, Any] = {"settings": asdict(settings), "machine": machine_info(settings)}
    results["batched_points"] = BATCHED_POINTS
    case = make_case(mae, settings, data=data, split="train")
    n_params = count_parameters(case.module)
    results["model"] = {"checkpoint": str(mae), "preset": "vit_base_patch16", "parameters": n_params}
    log(f"plane {settings.grid}x{settings.grid}, {len(case.objective.x)} images")
    results["plane"] = bench_plane(case, settings, log)
    results["vit_b_estimate"] = vit_b_estimate(results["plane"], len(case.objective.x))
    results["summary"] = summarize(results)
    results["targets"] = dict(TARGETS)
    return results


if __name__ == "__main__":
    sys.exit(main())
