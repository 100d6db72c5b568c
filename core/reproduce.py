"""`python -m core reproduce`: re-test the paper's findings with the project's own models and write the evidence
to a generated report (docs/FINDINGS.md).

What is measured, for every seed (the model seed; directions, masks and images are the same for every model):
- MAE, RC-MAE and the supervised ViT are trained (cached by config), and a linear probe (same protocol for all
  three: frozen cls feature, BatchNorm, linear layer) is trained on each encoder.
- 2-D filter-normalized random slices of: each model's own training objective (RC-MAE: its MAE term, so that MAE
  and RC-MAE are compared on one and the same function; the full objective with the consistency term is shown
  too), and the linear-probe loss of each model with the encoder and the probe head moving.
- The Hessian's top eigenvalue (Lanczos) and trace (Hutchinson) of the same objectives.
- Convergence from the checkpoints' training histories.

Scales: MAE's pixel MSE and cross-entropy live on different scales, so models compared on different functions
(MAE vs Sup-ViT on their own objectives) are compared by relative numbers: the basin / flat-area threshold is a
fraction of each surface's centre loss, and increases, curvatures and Hessian numbers are divided by the centre loss.
Models compared on one and the same function (RC-MAE vs MAE, every probe loss) are compared directly, with one
absolute threshold for both (the same fraction of their mean centre loss); dividing by each model's own centre loss
there would reward a worse fit.

The verdict logic, the statistics and the report's markdown are pure functions of plain numbers in `core.findings`;
this module measures and fills them.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.comparison import compared_function
from core.errors import LandscapeError
from core.findings import (
    Claim,
    CorrelationRow,
    Findings,
    Row,
    Table,
    convergence_target,
    epochs_to_reach,
    format_mean_std,
    render_markdown,
)
from core.train import ProbeConfig, TrainConfig

KINDS = ("mae", "rcmae", "sup")
LABEL = {"mae": "MAE", "rcmae": "RC-MAE", "sup": "Sup-ViT"}
# Probe landscapes and Hessians move the encoder and the probe head, not what the probe does not use: a supervised
# ViT's own classifier, and an MAE's decoder (LinearProbe already fixes the latter; named so that the key says so).
PROBE_EXCLUDE = ("decoder_", "mask_token", "encoder.head.*")


LogFn = Callable[[str], None]
# An extension of the report (see `reproduce`): (findings, results, report folder, log) -> findings
Extension = Callable[["Findings", "RunResults", Path, LogFn], "Findings"]


# --------------------------------------------------------------------------------------------------------------------
# The run


@dataclass(frozen=True)
class ReproduceSpec:
    """Everything the reproduction depends on (defaults: the full run on the default models)."""

    seeds: int = 3  # model seeds 0..seeds-1
    data: str = "digits"
    preset: str = "tiny"
    epochs: int = 30  # the TrainConfig defaults: seed 0 is the dashboard's default trio
    batch_size: int = 128
    warmup_epochs: int = 3
    n_snapshots: int = 6
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    grid: int = 33  # 2**k + 1: nests with the dashboard's coarser grids
    span: float = 0.5  # the default models' basins are ~0.1 wide; the loss is 1.6-3x its centre at 0.5
    samples: int = 128  # evaluation images for landscapes and Hessians (the same images)
    rel_threshold: float = 0.1  # basin / flat area: increase under this fraction of the centre loss
    radii: tuple[float, ...] = (0.1, 0.25)
    direction_seed: int = 0
    data_seed: int = 0
    mask_seed: int = 0
    hessian_iter: int = 40  # Lanczos steps for the top eigenvalue
    trace_probes: int = 32  # Hutchinson probes
    # Claim 2's convex area (core.convexity): a coarser grid nested in `grid`, 0 skips it. Each point is a Lanczos
    # run (measured on the tiny models at 128 images: ~14 Hessian-vector products to converge), so 5x5 keeps the 12
    # maps (4 objectives x 3 seeds) at 6.0 min on 2 cores (measured, README); 9x9 would take ~3x longer.
    convexity_grid: int = 5
    convexity_iter: int = 20
    device: str = "auto"
    quick: bool = False
    note: str = ""  # a paragraph shown at the top of the report (e.g. why fewer seeds were used)
    regimes: bool = True  # claim 2 again over teacher momentum x training length (core.regimes)
    # The regime cells' landscape grid, nested in `grid` (its points are claim 2's; 0: `grid` itself). 17x17 keeps
    # the full report under 45 min on 2 cores (measured: 41.5 min, against 51 min with 33x33 cells, README), at a
    # coarser resolution: the (auto, epochs) cell is then claim 2 read on the 17x17 points of its 33x33 grid.
    regime_grid: int = 17

    def __post_init__(self):
        if self.seeds < 1:
            raise LandscapeError(f"--seeds must be at least 1, got {self.seeds}")
        if self.regime_grid < 0 or (
            self.regime_grid and (self.regime_grid < 3 or (self.regime_grid - 1) & (self.regime_grid - 2))
        ):
            raise LandscapeError(f"--regime-grid must be 0 or 2**k + 1 (3, 5, 9, 17, 33, ...), got {self.regime_grid}")

    @property
    def cell_grid(self) -> int:
        """The regime cells' grid: `regime_grid` where it is nested in `grid` (every cell point is one of the report's,
        e.g. 17 in 33), else `grid` itself (0, a coarser grid that does not nest, or one no coarser)."""
        g, n = self.regime_grid, self.grid
        return g if 3 <= g < n and (n - 1) % (g - 1) == 0 else n

    def train_config(self, kind: str, seed: int) -> TrainConfig:
        return TrainConfig(
            kind=kind,
            data=self.data,
            preset=self.preset,
            epochs=self.epochs,
            batch_size=self.batch_size,
            warmup_epochs=self.warmup_epochs,
            n_snapshots=self.n_snapshots,
            seed=seed,
        )


def quick_spec(seeds: int = 2, **overrides) -> ReproduceSpec:
    """A small version for CI (< 1 min): micro models on synthetic data, 3 epochs, 5x5 grids, 32 images."""
    base = ReproduceSpec(
        seeds=seeds,
        data="synthetic",
        preset="micro",
        epochs=3,
        batch_size=32,
        warmup_epochs=1,
        n_snapshots=3,
        probe=ProbeConfig(epochs=10, batch_size=64),
        grid=5,
        samples=32,
        hessian_iter=8,
        trace_probes=4,
        convexity_grid=3,
        convexity_iter=6,
        quick=True,
    )
    return replace(base, **overrides)


@dataclass(frozen=True)
class Measure:
    """One objective measured on one model kind."""

    key: str
    kind: str
    loss: str  # own | pretrain | probe
    rcmae_terms: str = "full"
    title: str = ""

    @property
    def is_probe(self) -> bool:
        return self.loss == "probe"


MEASURES = (
    Measure("mae_own", "mae", "own", title="MAE, pre-training loss"),
    Measure("rcmae_mae", "rcmae", "pretrain", "mae", "RC-MAE, pre-training loss (MAE term)"),
    Measure("rcmae_full", "rcmae", "pretrain", "full", "RC-MAE, full objective (MAE + consistency)"),
    Measure("sup_own", "sup", "own", title="Sup-ViT, cross-entropy"),
    Measure("mae_probe", "mae", "probe", title="MAE, linear-probe loss"),
    Measure("rcmae_probe", "rcmae", "probe", title="RC-MAE, linear-probe loss"),
    Measure("sup_probe", "sup", "probe", title="Sup-ViT, linear-probe loss"),
)


def _stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Clock:
    """A log function that prefixes the seconds since the run started."""

    def __init__(self, log: LogFn):
        self.t0 = time.perf_counter()
        self.log = log

    def __call__(self, msg: str) -> None:
        self.log(f"[reproduce {time.perf_counter() - self.t0:7.1f} s] {msg}")


def _quarters(log: LogFn, what: str) -> Callable[[int, int], None]:
    """A progress(done, total) callback that logs at 25% steps."""
    last = [-1]

    def progress(done: int, total: int) -> None:
        q = done * 4 // max(1, total)
        if q != last[0]:
            last[0] = q
            log(f"{what}: {done}/{total} points")

    return progress


def hessian_numbers(
    checkpoint: str | Path,
    loss: str,
    spec: ReproduceSpec,
    *,
    rcmae_terms: str = "full",
    exclude: tuple[str, ...] = (),
    store=None,
) -> dict[str, float]:
    """Top Hessian eigenvalue, trace and the centre loss of one objective (cached in the store, kind 'hessian').

    For a probe the Hessian covers the encoder (RC-MAE: its EMA teacher) and the head, less `exclude`.
    """
    from core.attention import attention_for_second_derivatives
    from core.checkpoints import load_checkpoint
    from core.flatness import hessian_eigenvalues, hessian_trace
    from core.flatness_run import cached_stage
    from core.objectives import ObjectiveSpec, build_objective
    from core.params import select_parameters
    from core.store import Store
    from core.train import pick_device

    store = store or Store()
    ck = load_checkpoint(checkpoint)
    obj_spec = ObjectiveSpec(
        loss=loss, samples=spec.samples, data_seed=spec.data_seed, mask_seed=spec.mask_seed, rcmae_terms=rcmae_terms
    )
    obj = build_objective(ck, obj_spec, pick_device(spec.device))
    names = select_parameters(obj.module, "all", exclude=exclude)
    if not names:
        raise LandscapeError(f"no parameters to take the Hessian over in {Path(checkpoint).name}")
    key = {
        "v": 1,
        "objective": obj.key(),
        "params": names,
        "max_iter": spec.hessian_iter,
        "probes": spec.trace_probes,
        "seed": spec.direction_seed,
    }
    seed = spec.direction_seed

    def compute(journal) -> dict[str, float]:
        with attention_for_second_derivatives(obj.module):
            centre = obj.evaluate(obj.module)["loss"]
            eig = hessian_eigenvalues(
                obj.module, obj, k=1, names=names, max_iter=spec.hessian_iter, seed=seed, journal=journal.scope("top/")
            )
            tr = hessian_trace(
                obj.module, obj, names=names, n_probes=spec.trace_probes, seed=seed, journal=journal.scope("trace/")
            )
        return {
            "centre_loss": float(centre),
            "lambda_max": float(eig.values[0]),
            "converged": bool(eig.converged[0]),
            "trace": float(tr.estimate),
            "trace_stderr": float(tr.stderr),
            "n_params": int(tr.n_params),
        }

    return dict(cached_stage(store, key, compute, kind="hessian")[0])


@dataclass
class Measured:
    """One objective of one model: its landscape and its Hessian numbers."""

    xs: np.ndarray
    ys: np.ndarray
    loss: np.ndarray
    hessian: dict[str, float]


def landscape_numbers(
    m: Measured, spec: ReproduceSpec, *, relative: bool, threshold: float | None = None
) -> dict[str, float]:
    """The flatness numbers of one measured objective.

    Args:
        m: the landscape and Hessian numbers.
        spec: radii and the relative threshold.
        relative: divide increases, curvatures and Hessian numbers by the centre loss, and use a threshold of
            `spec.rel_threshold` x the centre loss (for comparisons across different loss functions).
        threshold: the absolute basin / flat-area threshold when not `relative` (one value for every model compared).
    """
    from core.surface_metrics import surface_metrics

    sm = surface_metrics(
        m.xs,
        m.ys,
        m.loss,
        radii=spec.radii,
        threshold=None if relative else threshold,
        rel_threshold=spec.rel_threshold,
    )
    c = sm.centre_loss
    k = 1.0 / c if relative else 1.0
    kh = 1.0 / m.hessian["centre_loss"] if relative else 1.0
    out = {
        "centre_loss": c,
        "basin_width": sm.basin_width,
        "basin_at_edge": float(any(sm.basin_at_edge)),
        "flat_fraction": sm.flat_fraction,
        "curvature_max": sm.curvature_max * k,
        "curvature_min": sm.curvature_min * k,
        "convex_fraction": sm.convex_fraction,
        "lambda_max": m.hessian["lambda_max"] * kh,
        "trace": m.hessian["trace"] * kh,
        "lambda_max_raw": m.hessian["lambda_max"],
        "trace_raw": m.hessian["trace"],
        "lambda_max_rel": m.hessian["lambda_max"] / m.hessian["centre_loss"],
        "trace_rel": m.hessian["trace"] / m.hessian["centre_loss"],
    }
    for r, v in zip(sm.radii, sm.increase_at_radius, strict=True):
        out[f"increase_r{r:g}"] = v * k
    if not relative:
        own = surface_metrics(m.xs, m.ys, m.loss, radii=(), rel_threshold=spec.rel_threshold)
        out["basin_width_own"] = own.basin_width
    return out


@dataclass(frozen=True)
class NumberDef:
    key: str
    name: str
    flatter: str  # "higher" / "lower": the flatter side; "" for numbers shown without a reading
    counted: bool = True
    fmt: str = ".3g"


def number_defs(spec: ReproduceSpec, relative: bool, threshold_text: str = "") -> tuple[NumberDef, ...]:
    """The rows of a comparison table, in order (`landscape_numbers` keys)."""
    per = " / L(centre)" if relative else ""
    thr = f"{spec.rel_threshold:.0%} of L(centre)" if relative else threshold_text
    defs = [
        NumberDef("basin_width", f"basin width (increase < {thr})", "higher"),
        NumberDef("flat_fraction", f"flat-area fraction (increase < {thr})", "higher"),
        NumberDef("curvature_max", f"centre curvature, sharpest axis{per}", "lower"),
        NumberDef("curvature_min", f"centre curvature, flattest axis{per}", "", counted=False),
        NumberDef("convex_fraction", "convex fraction of the slice", "higher"),
    ]
    defs += [NumberDef(f"increase_r{r:g}", f"loss increase at radius {r:g}{per}", "lower") for r in spec.radii]
    defs += [
        NumberDef("lambda_max", f"Hessian top eigenvalue{per}", "lower"),
        NumberDef("trace", f"Hessian trace{per}", "lower"),
    ]
    if relative:
        defs += [
            NumberDef("lambda_max_raw", "Hessian top eigenvalue (raw)", "lower", counted=False),
            NumberDef("trace_raw", "Hessian trace (raw)", "lower", counted=False),
        ]
    else:
        defs += [
            NumberDef(
                "basin_width_own",
                f"basin width (increase < {spec.rel_threshold:.0%} of each model's own L(centre))",
                "higher",
                counted=False,
            ),
            NumberDef("lambda_max_rel", "Hessian top eigenvalue / L(centre)", "lower", counted=False),
            NumberDef("trace_rel", "Hessian trace / L(centre)", "lower", counted=False),
        ]
    defs.append(NumberDef("centre_loss", "loss at the centre", "", counted=False, fmt=".4g"))
    return tuple(defs)


def measure(measure_def: Measure, model_ckpt: str, probe_ckpt: str | None, spec: ReproduceSpec, log: LogFn) -> Measured:
    """The landscape and Hessian numbers of one objective of one trained model (both cached)."""
    from core.surfaces import compute_surface

    path = probe_ckpt if measure_def.is_probe else model_ckpt
    exclude = PROBE_EXCLUDE if measure_def.is_probe else ()
    sspec = surface_spec_of(measure_def, model_ckpt, probe_ckpt, spec)
    s = compute_surface(sspec, progress=_quarters(log, f"landscape {measure_def.title}"))
    log(f"Hessian {measure_def.title}")
    h = hessian_numbers(path, sspec.loss, spec, rcmae_terms=measure_def.rcmae_terms, exclude=exclude)
    return Measured(np.asarray(s.xs), np.asarray(s.ys), np.asarray(s.loss), h)


def surface_spec_of(measure_def: Measure, model_ckpt: str, probe_ckpt: str | None, spec: ReproduceSpec):
    """The slice one objective is measured on (landscape and convexity map share it)."""
    from core.surfaces import SurfaceSpec

    is_probe = measure_def.is_probe
    return SurfaceSpec(
        checkpoint=str(probe_ckpt if is_probe else model_ckpt),
        loss="own" if is_probe else measure_def.loss,
        dim=2,
        grid=spec.grid,
        span=spec.span,
        exclude=PROBE_EXCLUDE if is_probe else (),
        seed=spec.direction_seed,
        samples=spec.samples,
        data_seed=spec.data_seed,
        mask_seed=spec.mask_seed,
        rcmae_terms=measure_def.rcmae_terms,
        device=spec.device,
    )


@dataclass
class RunResults:
    """Everything measured, by seed."""

    spec: ReproduceSpec
    seeds: tuple[int, ...]
    ckpts: dict[tuple[str, int], str]  # (kind, seed) -> model checkpoint
    probes: dict[tuple[str, int], str]  # (kind, seed) -> probe checkpoint
    histories: dict[tuple[str, int], list[dict]]
    probe_acc: dict[tuple[str, int], float]
    classifier_acc: dict[int, float]  # Sup-ViT's own classifier, by seed
    measured: dict[tuple[str, int], Measured]  # (measure key, seed) -> numbers
    setup_facts: dict[str, str]
    convexity: dict = field(default_factory=dict)  # (measure key, seed) -> core.convexity.ConvexityMap (claim 2)


def run_measurements(spec: ReproduceSpec, log: LogFn) -> RunResults:
    """Train (or find) every model and probe, then measure every objective (all cached)."""
    from core.checkpoints import load_checkpoint
    from core.train import Progress, train_model, train_probe

    seeds = tuple(range(spec.seeds))
    ckpts, probes, hist, pacc, cacc = {}, {}, {}, {}, {}
    for seed in seeds:
        for kind in KINDS:
            cfg = spec.train_config(kind, seed)
            name = f"{LABEL[kind]} seed {seed}"
            log(f"train {name} ({cfg.epochs} epochs, {cfg.preset}, {cfg.data}; cached by config)")
            last = [0]

            def on_step(p: Progress, name=name, last=last) -> None:
                quarter = p.epoch * 4 // p.epochs
                if p.step == p.steps and quarter != last[0]:
                    last[0] = quarter
                    log(f"train {name}: epoch {p.epoch}/{p.epochs}, loss {p.loss:.4f}")

            path = train_model(cfg, progress=on_step, device=spec.device)
            log(f"linear probe on {name}")
            probe = train_probe(path, spec.probe, device=spec.device)
            ckpts[kind, seed], probes[kind, seed] = str(path), str(probe)
            hist[kind, seed] = list(load_checkpoint(path).meta.get("history") or [])
            ph = load_checkpoint(probe).meta.get("history") or []
            pacc[kind, seed] = float(ph[-1]["val_acc"]) if ph else math.nan
            if kind == "sup":
                cacc[seed] = float(hist[kind, seed][-1].get("val_acc", math.nan)) if hist[kind, seed] else math.nan
    measured = {}
    total = len(seeds) * len(MEASURES)
    for seed in seeds:
        for m in MEASURES:
            log(f"measure {len(measured) + 1}/{total}: {m.title}, seed {seed}")
            measured[m.key, seed] = measure(m, ckpts[m.kind, seed], probes[m.kind, seed], spec, log)
    first = load_checkpoint(ckpts["mae", 0])
    c = first.config
    facts = {
        "architecture": (
            f"{c.img_size}px images, patch {c.patch_size}, encoder dim {c.embed_dim}, depth {c.depth}, "
            f"{c.num_heads} heads; MAE decoder dim {c.decoder_embed_dim}, depth {c.decoder_depth}"
        ),
        "data": _data_fact(first.meta.get("data") or {}),
        "ema": _ema_fact(load_checkpoint(ckpts["rcmae", seeds[0]]).meta.get("train") or {}),
    }
    from core.convexity import reproduce_maps

    slices = {
        (m.key, s): surface_spec_of(m, ckpts[m.kind, s], probes[m.kind, s], spec) for s in seeds for m in MEASURES
    }
    convexity = reproduce_maps(slices, spec, log)
    return RunResults(spec, seeds, ckpts, probes, hist, pacc, cacc, measured, facts, convexity)


def _ema_fact(train: dict) -> str:
    from core.models import EMA_RULE, ema_description

    text = ema_description(train)
    return f"{text}; {EMA_RULE}" if train.get("ema_momentum") == "auto" else text


def _data_fact(d: dict) -> str:
    return (
        f"`{d.get('spec')}`, {d.get('n_train')} training / {d.get('n_val')} validation images "
        f"(split seed {d.get('split_seed')}, the same for every model), {d.get('num_classes')} classes"
    )


# --------------------------------------------------------------------------------------------------------------------
# From measurements to claims


def common_threshold(r: RunResults, keys: Sequence[str]) -> float:
    """One absolute threshold for models compared on the same loss: rel_threshold x their mean centre loss."""
    centres = [float(surface_centre(r.measured[k, s])) for k in keys for s in r.seeds]
    return r.spec.rel_threshold * float(np.mean(centres))


def surface_centre(m: Measured) -> float:
    from core.plots import centre_index

    return float(m.loss[centre_index(m.xs, m.ys)])


def comparison_table(
    r: RunResults,
    title: str,
    a: str,
    b: str,
    a_label: str,
    b_label: str,
    *,
    relative: bool,
    counted: bool,
    note: str = "",
) -> Table:
    """Every flatness number of measure `a` against measure `b`, A claimed to be the flatter one.

    `relative` for different loss functions (see `landscape_numbers`); otherwise both use one absolute threshold.
    """
    thr = None if relative else common_threshold(r, (a, b))
    thr_text = "" if relative else f"{thr:.4g}, {r.spec.rel_threshold:.0%} of the mean L(centre) of both"
    nums = {
        (k, s): landscape_numbers(r.measured[k, s], r.spec, relative=relative, threshold=thr)
        for k in (a, b)
        for s in r.seeds
    }
    rows = []
    for d in number_defs(r.spec, relative, thr_text):
        va = tuple(nums[a, s][d.key] for s in r.seeds)
        vb = tuple(nums[b, s][d.key] for s in r.seeds)
        rows.append(Row(d.name, va, vb, d.flatter, counted and d.counted, d.fmt))
    return Table(title, a_label, b_label, tuple(rows), note)


def convergence_table(r: RunResults) -> Table:
    """Epochs until each pre-training run reaches a shared validation loss / ridge-probe accuracy."""
    h_mae = [r.histories["mae", s] for s in r.seeds]
    h_rc = [r.histories["rcmae", s] for s in r.seeds]
    t_loss = convergence_target(h_mae + h_rc, "val_loss", "below")
    t_acc = convergence_target(h_mae + h_rc, "probe_acc", "above")

    def per_seed(hs: list[list[dict]], key: str, target: float, mode: str) -> tuple[float, ...]:
        return tuple(epochs_to_reach(h, key, target, mode) for h in hs)

    def final(hs: list[list[dict]], key: str) -> tuple[float, ...]:
        return tuple(float(h[-1].get(key, math.nan)) if h else math.nan for h in hs)

    rows = (
        Row(
            f"epochs to reach validation pre-training loss {t_loss:.4g}",
            per_seed(h_rc, "val_loss", t_loss, "below"),
            per_seed(h_mae, "val_loss", t_loss, "below"),
            "lower",
        ),
        Row(
            f"epochs to reach ridge-probe accuracy {t_acc:.4f}",
            per_seed(h_rc, "probe_acc", t_acc, "above"),
            per_seed(h_mae, "probe_acc", t_acc, "above"),
            "lower",
        ),
        Row(
            "final validation pre-training loss",
            final(h_rc, "val_loss"),
            final(h_mae, "val_loss"),
            "lower",
            False,
            ".4g",
        ),
        Row("final ridge-probe accuracy", final(h_rc, "probe_acc"), final(h_mae, "probe_acc"), "higher", False, ".4f"),
    )
    note = (
        "From the training histories: the validation MAE loss (RC-MAE: of the student) with masks fixed by seed 0, "
        "and a ridge classifier on frozen features of the deployed encoder (RC-MAE: the teacher), after every "
        "epoch. Each target is the level every MAE and RC-MAE run reaches at some epoch (the worst run's best value)."
    )
    return Table("Convergence (counted)", "RC-MAE", "MAE", rows, note)


# Which function each kind is compared on (RC-MAE: its MAE term): decided by core.comparison, as on the dashboard.
OWN_MEASURE = {k: compared_function(k) for k in KINDS}


def flatness_points(r: RunResults) -> tuple[list[tuple[str, int]], dict[str, dict[tuple[str, int], dict]]]:
    """Per (kind, seed): the probe-loss numbers (one absolute threshold for all, the same loss type) and the
    own-objective numbers (relative: the losses differ)."""
    points = [(k, s) for k in KINDS for s in r.seeds]
    thr = common_threshold(r, [f"{k}_probe" for k in KINDS])
    fam = {
        "probe loss": {
            p: landscape_numbers(r.measured[f"{p[0]}_probe", p[1]], r.spec, relative=False, threshold=thr)
            for p in points
        },
        "own objective": {
            p: landscape_numbers(r.measured[compared_function(p[0]), p[1]], r.spec, relative=True) for p in points
        },
    }
    return points, fam


def generalization_claim(r: RunResults, figures: tuple[tuple[str, str], ...]) -> Claim:
    spec = r.spec
    acc = {k: tuple(r.probe_acc[k, s] for s in r.seeds) for k in KINDS}
    lines = [
        "| model | linear-probe validation accuracy |",
        "|---|---|",
        *[f"| {LABEL[k]} | {format_mean_std(acc[k], '.4f')} |" for k in KINDS],
        f"| Sup-ViT's own classifier (reference) | {format_mean_std([r.classifier_acc[s] for s in r.seeds], '.4f')} |",
    ]
    points, fam = flatness_points(r)
    y = tuple(r.probe_acc[p] for p in points)
    rows = []
    for family, nums in fam.items():
        relative = family == "own objective"
        for d in number_defs(spec, relative, "one threshold for all models"):
            if d.counted and d.flatter:
                x = tuple(float(nums[p][d.key]) for p in points)
                name = f"{d.name.split(' (')[0]} ({family})"
                rows.append(CorrelationRow(name, x, y, 1 if d.flatter == "higher" else -1))
    text = "\n".join(lines) + (
        f"\n\nEach point is one model and seed: n = {len(points)} (3 model kinds x {len(r.seeds)} seeds), which is "
        "small; the points also cluster by model kind, so a correlation can reflect the kind rather than flatness. "
        f"Probe-loss numbers use one absolute threshold ({spec.rel_threshold:.0%} of the mean probe centre loss) "
        "and raw increases, curvatures and Hessian numbers (one loss type for all models; dividing by the centre "
        "loss would tie the numbers to accuracy by construction). Own-objective numbers are relative (MSE and "
        "cross-entropy differ in scale; RC-MAE: its MAE term). Expected sign: the one under which a flatter "
        "landscape goes with higher accuracy."
    )
    return Claim(
        title="Follow-up: flatter models generalize better",
        statement=(
            "Not a finding of the paper, which names it as future work: flatness numbers should correlate with "
            "generalization (here linear-probe validation accuracy; the seed's 'more stable' reading)."
        ),
        correlations=tuple(rows),
        figures=figures,
        text=text,
    )


def build_findings(r: RunResults, figures: dict[str, tuple[tuple[str, str], ...]], command: str) -> Findings:
    """The report's content from the measurements."""
    from core.convexity import convexity_table

    rel = (
        "MAE's pixel MSE and cross-entropy live on different scales, so every number is relative: the threshold is "
        "a fraction of each surface's centre loss, and increases, curvatures and Hessian numbers are divided by the "
        "centre loss."
    )
    same = (
        "Both models are measured on the same loss function, so the numbers are compared directly, with one "
        "absolute threshold for both; the relative versions are shown below them, not counted."
    )
    claim1 = Claim(
        title="MAE's pre-training landscape is flatter and wider than the supervised ViT's",
        statement=(
            "The paper (finding 1): MAE-ViT has a smoother, wider overall loss curvature than a supervised ViT, "
            "each on its own training objective."
        ),
        tables=(
            comparison_table(
                r,
                "Own training objective (counted)",
                "mae_own",
                "sup_own",
                "MAE",
                "Sup-ViT",
                relative=True,
                counted=True,
                note="MAE: masked-patch pixel MSE; Sup-ViT: cross-entropy. " + rel,
            ),
            comparison_table(
                r,
                "Linear-probe loss (shown, not counted)",
                "mae_probe",
                "sup_probe",
                "MAE",
                "Sup-ViT",
                relative=False,
                counted=False,
                note="Both through a linear probe trained on the frozen encoder by the same protocol (for the Sup-ViT "
                "a probe on its encoder, not its own classifier); the encoder and the probe head move. " + same,
            ),
        ),
        figures=figures.get("claim1", ()),
    )
    claim2 = Claim(
        title="RC-MAE widens the convex, flat region and converges faster than MAE",
        statement=(
            "The paper (finding 2): RC-MAE's EMA teacher widens the region of convexity of both the pre-training "
            "and the linear-probing landscape, and the model converges faster."
        ),
        tables=(
            comparison_table(
                r,
                "Pre-training loss (counted)",
                compared_function("rcmae", "mae"),
                compared_function("mae", "rcmae"),
                "RC-MAE",
                "MAE",
                relative=False,
                counted=True,
                note="The masked-patch MSE for both (for RC-MAE its MAE term, the student moving). " + same,
            ),
            comparison_table(
                r,
                "Linear-probe loss (counted)",
                "rcmae_probe",
                "mae_probe",
                "RC-MAE",
                "MAE",
                relative=False,
                counted=True,
                note="RC-MAE's probe reads its deployed EMA teacher; the encoder and the probe head move. " + same,
            ),
            convergence_table(r),
            comparison_table(
                r,
                "RC-MAE's full objective vs MAE's loss (shown, not counted)",
                "rcmae_full",
                "mae_own",
                "RC-MAE",
                "MAE",
                relative=True,
                counted=False,
                note="RC-MAE's training objective adds the consistency term to the fixed teacher: a different "
                "function from MAE's loss, hence relative numbers.",
            ),
            *convexity_table(r),
        ),
        figures=figures.get("claim2", ()),
    )
    claim3 = generalization_claim(r, figures.get("generalization", ()))
    return Findings(
        title="Findings: the loss-landscape claims, re-measured",
        command=command,
        setup=setup_items(r),
        claims=(claim1, claim2, claim3),
        notes=caveats(r),
        preface=r.spec.note,
    )


def setup_items(r: RunResults) -> tuple[tuple[str, str], ...]:
    from core.checkpoints import code_version

    spec = r.spec
    p = spec.probe
    converged = np.mean([bool(m.hessian.get("converged")) for m in r.measured.values()])
    default_runs = " (for seed 0 the same runs as the dashboard's default models)" if not spec.quick else ""
    return (
        (
            "models",
            f"MAE, RC-MAE (EMA teacher, momentum {r.setup_facts.get('ema', TrainConfig.ema_momentum)}, gamma "
            f"{TrainConfig.gamma}) and a "
            f"supervised ViT (Sup-ViT), preset `{spec.preset}`: {r.setup_facts['architecture']}",
        ),
        (
            "training",
            f"{spec.epochs} epochs, batch {spec.batch_size}, AdamW lr {TrainConfig.lr}, {spec.warmup_epochs} warm-up "
            f"epochs, mask ratio {TrainConfig.mask_ratio}; cached by config{default_runs}",
        ),
        (
            "seeds",
            f"{len(r.seeds)} model seeds ({', '.join(map(str, r.seeds))}); tables give mean ± sample standard "
            "deviation over them",
        ),
        ("data", r.setup_facts["data"]),
        (
            "linear probes",
            f"frozen cls feature, BatchNorm1d (no affine) + Linear, AdamW lr {p.lr}, {p.epochs} epochs; the same "
            "protocol on all three encoders (RC-MAE: the EMA teacher); accuracy on the whole validation split",
        ),
        (
            "landscapes",
            f"2-D slices L(theta + a d1 + b d2) on a {spec.grid}x{spec.grid} grid over [-{spec.span:g}, "
            f"{spec.span:g}]^2; random Gaussian directions, filter-normalized, biases and norm scales fixed, direction "
            f"seed {spec.direction_seed} for every model; {spec.samples} validation images (data seed "
            f"{spec.data_seed}), MAE masks fixed by mask seed {spec.mask_seed}; eval mode, fp32",
        ),
        (
            "numbers",
            "basin width: mean over the 4 axis directions of the distance from the centre at which the loss "
            "increase first reaches the threshold; flat-area fraction: share of grid points under the threshold; "
            "centre curvature: eigenvalues of a quadratic fit within radius 0.25; convex fraction: share of interior "
            "points whose finite-difference Hessian is positive definite; increase at radius r: mean over a circle",
        ),
        (
            "Hessian",
            f"top eigenvalue by Lanczos ({spec.hessian_iter} steps; converged in {converged:.0%} of the "
            f"objectives), trace by Hutchinson ({spec.trace_probes} Rademacher probes); the same parameters and "
            "images as the landscape",
        ),
        (
            "verdict rule",
            "a number supports a claim when the means differ in the claimed direction by more than the combined "
            "spread (the sum of the two standard deviations over seeds), contradicts it when they differ the other "
            "way by more than that, and is inconclusive otherwise (always with a single seed); a correlation "
            "supports when its permutation p-value is under the Bonferroni level with the expected sign. A claim is "
            "reproduced when at least half of its counted numbers support it and supporters outnumber "
            "contradictors 3 to 1, not reproduced in the mirror case, and inconclusive at this scale otherwise",
        ),
        ("code version", f"`{code_version()}`"),
    )


def caveats(r: RunResults) -> tuple[str, ...]:
    spec = r.spec
    notes = [
        f"Scale: `{spec.preset}` models on `{spec.data}` with {len(r.seeds)} seed(s); the paper used ViT-B on "
        "ImageNet. A verdict here says what these small models show, not what holds at scale.",
        "Random 2-D slices mostly reflect the Hessian trace and rarely show saddles (Boettcher & Wheeler 2022); "
        "one direction seed is used for every model.",
        "Filter normalization is used throughout; other normalizations of the directions can change the picture.",
    ]
    edge = sum(bool(landscape_numbers(m, spec, relative=True)["basin_at_edge"]) for m in r.measured.values())
    if edge:
        notes.append(
            f"In {edge} of {len(r.measured)} surfaces the basin (at {spec.rel_threshold:.0%} of the centre loss) "
            "reached the grid edge along some axis: there the basin width is a lower bound."
        )
    if spec.quick:
        notes.append("This is the --quick version (micro models, synthetic data, coarse grids): a smoke test only.")
    return tuple(notes)


# --------------------------------------------------------------------------------------------------------------------
# Figures


def _kaleido() -> bool:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return True


def write_figure(fig, folder: Path, stem: str) -> str:
    """Write a figure as PNG (when kaleido is installed) or as HTML sharing one plotly.min.js; returns its name."""
    folder.mkdir(parents=True, exist_ok=True)
    if _kaleido():
        name = f"{stem}.png"
        fig.write_image(str(folder / name), width=1100, height=fig.layout.height or 500)
    else:
        name = f"{stem}.html"
        fig.write_html(str(folder / name), include_plotlyjs="directory", full_html=True)
    return name


def _surface_figure(r: RunResults, keys: Sequence[tuple[str, str]], title: str):
    from core.plots import Panel, plot_surfaces

    s = r.seeds[0]
    panels = []
    for mkey, label in keys:
        m = r.measured[mkey, s]
        c = surface_centre(m)
        cap = (
            f"{len(m.xs)}x{len(m.ys)} grid, {r.spec.samples} images, direction seed {r.spec.direction_seed}, "
            "filter-normalized; each loss divided by its centre value"
        )
        panels.append(Panel(f"{label} (seed {s}, L(centre) {c:.3g})", m.xs, m.ys, m.loss / c, cap))
    fig = plot_surfaces(panels, view="contour", relative=True, title=title)
    fig.update_layout(coloraxis_colorbar_title_text="relative increase<br>(L - L(centre)) / L(centre)")
    return fig


def make_figures(r: RunResults, folder: Path, link_prefix: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Every figure of the report, written to `folder`; returns claim -> ((caption, link), ...)."""
    from core.convexity import convexity_figures
    from core.plots import plot_flatness_vs_accuracy, plot_training_curves

    out: dict[str, list[tuple[str, str]]] = {"claim1": [], "claim2": [], "generalization": []}
    s0 = r.seeds[0]

    def add(claim: str, fig, stem: str, caption: str) -> None:
        out[claim].append((caption, link_prefix + write_figure(fig, folder, stem)))

    surfaces = (
        (
            "claim1",
            "claim1_own_objective",
            "MAE vs Sup-ViT, own training objective",
            [("mae_own", "MAE, pixel MSE"), ("sup_own", "Sup-ViT, cross-entropy")],
        ),
        (
            "claim1",
            "claim1_probe_loss",
            "MAE vs Sup-ViT, linear-probe loss",
            [("mae_probe", "MAE probe"), ("sup_probe", "Sup-ViT probe")],
        ),
        (
            "claim2",
            "claim2_pretrain_loss",
            "RC-MAE vs MAE, pre-training loss (MAE term)",
            [("mae_own", "MAE"), ("rcmae_mae", "RC-MAE (MAE term)")],
        ),
        (
            "claim2",
            "claim2_probe_loss",
            "RC-MAE vs MAE, linear-probe loss",
            [("mae_probe", "MAE probe"), ("rcmae_probe", "RC-MAE probe")],
        ),
    )
    for claim, stem, title, keys in surfaces:
        add(claim, _surface_figure(r, keys, title), stem, f"{title}: relative loss increase, seed {s0}")
    for fig, stem, caption in convexity_figures(r):
        add("claim2", fig, stem, caption)
    hist = {f"{LABEL[k]} seed {s}": r.histories[k, s] for k in ("mae", "rcmae") for s in r.seeds}
    for metric, cap in (("val_loss", "validation pre-training loss"), ("probe_acc", "ridge-probe accuracy")):
        fig = plot_training_curves(hist, metric, f"Convergence: {cap}", caption="per epoch, from the training history")
        add("claim2", fig, f"claim2_convergence_{metric}", f"Convergence: {cap} per epoch, every seed")
    points, fam = flatness_points(r)
    for family, stem in (("probe loss", "probe"), ("own objective", "own")):
        for nkey, xname in (("basin_width", "basin width"), ("lambda_max", "Hessian top eigenvalue")):
            if family == "own objective" and nkey == "lambda_max":
                xname += " / L(centre)"
            x = f"{xname} ({family})"
            pts = [
                {"label": f"s{s}", "kind": k, "probe_acc": r.probe_acc[k, s], x: fam[family][k, s][nkey]}
                for k, s in points
            ]
            fig = plot_flatness_vs_accuracy(pts, x, log_x=nkey == "lambda_max", caption="one point per model and seed")
            add("generalization", fig, f"generalization_{stem}_{nkey}", f"Probe accuracy vs {x}, every seed")
    return {k: tuple(v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------------------------------


def default_out() -> Path:
    """docs/FINDINGS.md of the repository."""
    return Path(__file__).resolve().parents[1] / "docs" / "FINDINGS.md"


def command_line(spec: ReproduceSpec) -> str:
    parts = ["python -m core reproduce"]
    if spec.quick:
        parts.append("--quick")
    parts.append(f"--seeds {spec.seeds}")
    base = quick_spec() if spec.quick else ReproduceSpec()
    for name in ("grid", "span", "samples"):
        if getattr(spec, name) != getattr(base, name):
            parts.append(f"--{name} {getattr(spec, name)}")
    if not spec.regimes:
        parts.append("--no-regimes")
    elif spec.cell_grid != replace(spec, regime_grid=base.regime_grid).cell_grid:
        parts.append(f"--regime-grid {spec.cell_grid}")
    return " ".join(parts)


def reproduce(
    spec: ReproduceSpec,
    out: str | Path | None = None,
    *,
    log: LogFn = _stderr_log,
    extend: Sequence[Extension] = (),
) -> Path:
    """Train, measure, judge and write the report (figures go to `figures/` next to it).

    Args:
        spec: what to run.
        out: the report's path (default `default_out()`); must end in .md.
        log: receives progress lines (default: stderr).
        extend: add claims or sections measured elsewhere on the same models, in order. They live in modules
            above this one (no import circle), so the CLI passes them: `core.regimes.add_to_findings` (claim 2
            across regimes, when `spec.regimes`) and `core.generalization.add_to_findings` (the premise claim and
            its flatness follow-up). See `core.cli.cmd_reproduce`.

    Returns:
        The report's path.
    """
    from core.store import atomic_write_bytes

    out = Path(out) if out is not None else default_out()
    if out.suffix != ".md":
        raise LandscapeError(f"--out must be a .md file, got {out.name}")
    clock = _Clock(log)
    results = run_measurements(spec, clock)
    clock("figures")
    figures = make_figures(results, out.parent / "figures", "figures/")
    findings = build_findings(results, figures, command_line(spec))
    for add in extend:
        findings = add(findings, results, out.parent, clock)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, render_markdown(findings).encode())
    for c in findings.claims:
        clock(f"verdict: {c.title}: {c.verdict}")
    clock(f"wrote {out}")
    return out
