"""Training and measuring for `python -m core reproduce`: every model and linear probe of every seed, then each
objective's landscape (a 2-D filter-normalized slice) and Hessian numbers (Lanczos top eigenvalue, Hutchinson trace),
all cached. `ReproduceSpec` says what is run (it lives here, at the bottom of the run's modules, because every one of
them reads it); `RunResults` holds what was measured; `core.studies.claims` turns it into claims,
`core.studies.figures` into figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.device import pick_device
from core.errors import LandscapeError
from core.geometry import attention_for_second_derivatives, hessian_eigenvalues, hessian_trace, select_parameters
from core.measure import SurfaceSpec, cached_stage, compute_surface, reproduce_maps
from core.models import (
    EMA_RULE,
    ObjectiveSpec,
    ProbeConfig,
    Progress,
    TrainConfig,
    build_objective,
    ema_description,
    load_checkpoint,
    train_model,
    train_probe,
)
from core.store import Store
from core.studies.workers import map_jobs

KINDS = ("mae", "rcmae", "sup")
LABEL = {"mae": "MAE", "rcmae": "RC-MAE", "sup": "Sup-ViT"}
# Probe landscapes and Hessians move the encoder and the probe head, not what the probe does not use: a supervised
# ViT's own classifier, and an MAE's decoder (LinearProbe already fixes the latter; named so that the key says so).
PROBE_EXCLUDE = ("decoder_", "mask_token", "encoder.head.*")

LogFn = Callable[[str], None]  # receives the run's progress lines


@dataclass(frozen=True)
class ReproduceSpec:
    """Everything the reproduction depends on (defaults: the full run on the default models)."""

    seeds: int = 8  # model seeds 0..seeds-1: enough for the paired intervals to decide (core.report.verdicts)
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
    # Measurement seeds of seed k are these plus k (`at_seed`): directions, evaluation images, masks and the probe
    # follow the model seed, so that the spread over seeds covers them too, and every model of seed k shares them.
    # Seed 0 measures with these, as the dashboard does.
    direction_seed: int = 0
    data_seed: int = 0
    mask_seed: int = 0
    hessian_iter: int = 40  # Lanczos steps for the top eigenvalue
    trace_probes: int = 32  # Hutchinson probes
    # Claim 2's convex area (core.measure.convexity): a coarser grid nested in `grid`, 0 skips it. Each point is a
    # Lanczos run (measured on the tiny models at 128 images: ~14 Hessian-vector products to converge), so 5x5 keeps
    # the 12 maps (4 objectives x 3 seeds) at 6.0 min on 2 cores (measured, README); 9x9 would take ~3x longer.
    convexity_grid: int = 5
    convexity_iter: int = 20
    device: str = "auto"
    # Worker processes for the independent (seed) jobs, 0: one per core (`core.studies.workers`). Not part of any
    # cache key: the numbers are the same for any number.
    workers: int = 0
    quick: bool = False
    note: str = ""  # a paragraph shown at the top of the report (e.g. why fewer seeds were used)
    regimes: bool = True  # claim 2 again over teacher momentum x training length (core.studies.regimes)
    # The regime cells' landscape grid, nested in `grid` (its points are claim 2's; 0: `grid` itself). 17x17 keeps
    # the full report under 45 min on 2 cores (measured: 41.5 min, against 51 min with 33x33 cells, README), at a
    # coarser resolution: the (auto, epochs) cell is then claim 2 read on the 17x17 points of its 33x33 grid.
    regime_grid: int = 17
    # Seeds of the regime grid (the first min(seeds, regime_seeds)): its 6 cells cost ~6x a seed of claims 1-2, and
    # it asks how claim 2 moves with the regime, not claim 2 itself; the report states its n.
    regime_seeds: int = 3

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

    def at_seed(self, seed: int) -> ReproduceSpec:
        """The spec that measures seed `seed`: every measurement seed (directions, evaluation images, masks, the
        probe's init and order, the Hessians' start vectors) moved by `seed`; seed 0 is the spec itself."""
        if not seed:
            return self
        return replace(
            self,
            direction_seed=self.direction_seed + seed,
            data_seed=self.data_seed + seed,
            mask_seed=self.mask_seed + seed,
            probe=replace(self.probe, seed=self.probe.seed + seed),
        )

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


def measure(measure_def: Measure, model_ckpt: str, probe_ckpt: str | None, spec: ReproduceSpec, log: LogFn) -> Measured:
    """The landscape and Hessian numbers of one objective of one trained model (both cached)."""
    path = probe_ckpt if measure_def.is_probe else model_ckpt
    exclude = PROBE_EXCLUDE if measure_def.is_probe else ()
    sspec = surface_spec_of(measure_def, model_ckpt, probe_ckpt, spec)
    s = compute_surface(sspec, progress=_quarters(log, f"landscape {measure_def.title}"))
    log(f"Hessian {measure_def.title}")
    h = hessian_numbers(path, sspec.loss, spec, rcmae_terms=measure_def.rcmae_terms, exclude=exclude)
    return Measured(np.asarray(s.xs), np.asarray(s.ys), np.asarray(s.loss), h)


def surface_spec_of(measure_def: Measure, model_ckpt: str, probe_ckpt: str | None, spec: ReproduceSpec):
    """The slice one objective is measured on (landscape and convexity map share it)."""
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
    convexity: dict = field(
        default_factory=dict
    )  # (measure key, seed) -> core.measure.convexity.ConvexityMap (claim 2)


@dataclass
class SeedRun:
    """Everything one seed trained and measured (a worker's result: plain values)."""

    ckpts: dict[str, str]  # kind -> model checkpoint
    probes: dict[str, str]  # kind -> probe checkpoint
    histories: dict[str, list[dict]]
    probe_acc: dict[str, float]
    classifier_acc: float
    measured: dict[str, Measured]  # measure key -> numbers
    convexity: dict  # (measure key, seed) -> ConvexityMap


def run_seed(spec: ReproduceSpec, seed: int, *, log: LogFn) -> SeedRun:
    """Train (or find) every model and probe of one seed, then measure every objective (all cached); the
    measurement seeds follow the seed (`ReproduceSpec.at_seed`)."""
    sspec = spec.at_seed(seed)
    ckpts, probes, hist, pacc = {}, {}, {}, {}
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
        probe = train_probe(path, sspec.probe, device=spec.device)
        ckpts[kind], probes[kind] = str(path), str(probe)
        hist[kind] = list(load_checkpoint(path).meta.get("history") or [])
        ph = load_checkpoint(probe).meta.get("history") or []
        pacc[kind] = float(ph[-1]["val_acc"]) if ph else math.nan
    cacc = float(hist["sup"][-1].get("val_acc", math.nan)) if hist["sup"] else math.nan
    measured = {}
    for i, m in enumerate(MEASURES, 1):
        log(f"measure {i}/{len(MEASURES)}: {m.title}, seed {seed}")
        measured[m.key] = measure(m, ckpts[m.kind], probes[m.kind], sspec, log)
    slices = {(m.key, seed): surface_spec_of(m, ckpts[m.kind], probes[m.kind], sspec) for m in MEASURES}
    convexity = reproduce_maps(slices, spec, log)
    return SeedRun(ckpts, probes, hist, pacc, cacc, measured, convexity)


def run_measurements(spec: ReproduceSpec, log: LogFn) -> RunResults:
    """Train (or find) every model and probe, then measure every objective (all cached): one job per seed, over
    `spec.workers` processes (`core.studies.workers`; the numbers do not depend on how many)."""
    seeds = tuple(range(spec.seeds))
    runs = map_jobs(run_seed, [(spec, s) for s in seeds], spec.workers, log, [f"seed {s}" for s in seeds])
    by_seed = dict(zip(seeds, runs, strict=True))
    ckpts = {(k, s): r.ckpts[k] for s, r in by_seed.items() for k in KINDS}
    probes = {(k, s): r.probes[k] for s, r in by_seed.items() for k in KINDS}
    hist = {(k, s): r.histories[k] for s, r in by_seed.items() for k in KINDS}
    pacc = {(k, s): r.probe_acc[k] for s, r in by_seed.items() for k in KINDS}
    cacc = {s: r.classifier_acc for s, r in by_seed.items()}
    measured = {(m.key, s): r.measured[m.key] for s, r in by_seed.items() for m in MEASURES}
    convexity = {key: v for r in runs for key, v in r.convexity.items()}
    first = load_checkpoint(ckpts["mae", seeds[0]])
    c = first.config
    facts = {
        "architecture": (
            f"{c.img_size}px images, patch {c.patch_size}, encoder dim {c.embed_dim}, depth {c.depth}, "
            f"{c.num_heads} heads; MAE decoder dim {c.decoder_embed_dim}, depth {c.decoder_depth}"
        ),
        "data": _data_fact(first.meta.get("data") or {}),
        "ema": _ema_fact(load_checkpoint(ckpts["rcmae", seeds[0]]).meta.get("train") or {}),
    }
    return RunResults(spec, seeds, ckpts, probes, hist, pacc, cacc, measured, facts, convexity)


def _ema_fact(train: dict) -> str:

    text = ema_description(train)
    return f"{text}; {EMA_RULE}" if train.get("ema_momentum") == "auto" else text


def _data_fact(d: dict) -> str:
    return (
        f"`{d.get('spec')}`, {d.get('n_train')} training / {d.get('n_val')} validation images "
        f"(split seed {d.get('split_seed')}, the same for every model), {d.get('num_classes')} classes"
    )
