"""How much pre-training pays: the label-efficiency comparison, RC-MAE vs MAE and claim 1's flatness number along a
ladder of pre-training lengths, with the measured cost of each rung.

The ladder (`RoiSpec.pretrain_epochs`, default 30, 100, 300 epochs): every rung is an ordinary, complete pre-training
run of MAE and RC-MAE (`core.models.train.train_model`, cached by its config; the cosine schedule depends on the
length, so a 300-epoch run never reuses a 100-epoch run's weights). The 30-epoch rung of seed 0 is the dashboard's
default MAE / RC-MAE. At each rung and seed (`rung_seed`, one job of `core.studies.workers.map_jobs`):

- the label-efficiency comparison of `core.studies.generalization` (`study_seed` on the rung's `StudySpec`): MAE-FT,
  RC-MAE-FT and the same ViT from scratch, same labeled images, steps and recipe, paired by seed (scratch does not
  depend on the rung: one run per budget and seed serves every rung);
- "scratch, equal steps": the same ViT from scratch given as many optimizer steps on the labeled subset as
  pre-training plus fine-tuning took (`control_config`: the recipe's 20 epochs, each of ceil(total / 20) steps, so
  the warm-up stays 10% of the run; at most 19 steps more than the total, never fewer);
- claim 1's primary number: the basin width of each model's own objective (RC-MAE: its MAE term) at a relative
  threshold, on the same slice `python -m core reproduce` measures for seed k (`core.studies.measuring`), so that the
  30-epoch rung reads claim 1's MAE number;
- the measured cost: wall-clock and CPU seconds of pre-training from the checkpoint's history (per epoch `time_s`,
  `eval_s`, `cpu_s`; runs saved before CPU seconds were recorded give NaN there), an estimate of the training FLOPs
  (`pretrain_flops`), and RC-MAE's time per epoch against MAE's (its teacher's extra cost).

Every comparison is `core.report.verdicts`' paired rule. The plateau rule (`plateau`, `PLATEAU_RULE`) is stated
before any fine-tuning result is read: a run has reached its validation-loss plateau when the loss improved by less
than 2% over the last 20% of its epochs; the plateau rung is the shortest whose MAE and RC-MAE runs reach it on
average over seeds. "Where the curve flattens" is read from the data (`RoiResult.flattens`): the first rung after
which the next rung's fine-tuned accuracy is no meaningfully different (paired by seed; scratch cancels).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from core.errors import LandscapeError
from core.geometry import surface_metrics
from core.measure import compute_surface
from core.models import (
    FinetuneConfig,
    ViTConfig,
    checkpoint_path,
    finetune,
    finetune_path,
    finetune_summary,
    load_checkpoint,
)
from core.report import MARGINS, Estimate, claim_verdict, mean_std, paired
from core.studies.generalization import LABEL, RunRecord, StudyResult, StudySpec, budget_label, quick_study, study_seed
from core.studies.measuring import MEASURES, ReproduceSpec, surface_spec_of
from core.studies.workers import fixed_threads, map_jobs

LogFn = Callable[[str], None]
PRETRAINED = ("mae", "rcmae")
# Claim 1's primary number per kind: the slice of each model's own objective (RC-MAE: its MAE term).
BASIN_MEASURE = {"mae": "mae_own", "rcmae": "rcmae_mae"}

# The ladder reads accuracy, not accuracy under input corruptions (the generalization study's stability numbers).
_NO_STABILITY = {"stability": False} if "stability" in StudySpec.__dataclass_fields__ else {}

PLATEAU_TAIL = 0.2  # the last fifth of the run
PLATEAU_GAIN = 0.02  # less than 2% improvement of the validation loss over it
PLATEAU_RULE = (
    "a run has reached its validation-loss plateau when its validation pre-training loss improved by less than 2% "
    "(relative) over the last 20% of its epochs (from the last evaluation at or before 80% of the run to the last "
    "epoch); a rung reaches it when the mean of that improvement over seeds is below 2% for MAE and for RC-MAE; "
    "chosen before any fine-tuning result was read"
)


@dataclass(frozen=True)
class Plateau:
    """The plateau rule on one history: the relative improvement of `key` from `start` to `end` (epochs)."""

    reached: bool
    improvement: float
    start: int
    end: int


def plateau(history: Sequence[dict], key: str = "val_loss", tail: float = PLATEAU_TAIL, gain: float = PLATEAU_GAIN):
    """The plateau rule (`PLATEAU_RULE`) on a training history (rows with "epoch" and, where evaluated, `key`).

    The window starts at the last evaluated epoch at or before (1 - tail) x the last epoch and ends at the last
    evaluated epoch; improvement = (start value - end value) / |start value|. Fewer than two evaluations in the run,
    or a non-finite value, give improvement NaN and reached False.
    """
    pts = [(int(r["epoch"]), float(r[key])) for r in history if r.get(key) is not None]
    if len(pts) < 2 or not all(math.isfinite(v) for _, v in pts):
        return Plateau(False, math.nan, 0, 0)
    last = pts[-1][0]
    before = [p for p in pts[:-1] if p[0] <= (1.0 - tail) * last]
    start = before[-1] if before else pts[0]
    imp = (start[1] - pts[-1][1]) / abs(start[1]) if start[1] else math.nan
    return Plateau(bool(math.isfinite(imp) and imp < gain), float(imp), start[0], last)


def _block_flops(tokens: int, dim: int, mlp_ratio: float) -> int:
    """Multiply-accumulates x2 of one transformer block on `tokens` tokens (qkv, attention, projection, MLP)."""
    return (
        2 * tokens * dim * 3 * dim
        + 2 * 2 * tokens * tokens * dim
        + 2 * tokens * dim * dim
        + (2 * 2 * tokens * dim * int(dim * mlp_ratio))
    )


def pretrain_flops(cfg: ViTConfig, mask_ratio: float, kind: str) -> dict[str, float]:
    """Estimated FLOPs per training image of MAE / RC-MAE pre-training.

    Forward: patch embedding of every patch, the encoder on the visible patches and the cls token, the decoder on
    every patch, the pixel head. Training: forward + backward ~ 3 x forward. RC-MAE adds its teacher's forward on
    the same mask (no backward): + 1 x forward. Left out: norms, softmax, the loss, the optimizer and EMA updates,
    evaluation. Returns {"forward", "train", "teacher"} (teacher: RC-MAE's extra, 0 for MAE).
    """
    n = cfg.num_patches
    pix = cfg.patch_size**2 * cfg.in_chans
    vis = int(n * (1 - mask_ratio)) + 1
    fwd = 2 * n * pix * cfg.embed_dim + cfg.depth * _block_flops(vis, cfg.embed_dim, cfg.mlp_ratio)
    if cfg.decoder_depth:
        dd = cfg.decoder_embed_dim
        fwd += 2 * vis * cfg.embed_dim * dd + cfg.decoder_depth * _block_flops(n + 1, dd, cfg.mlp_ratio)
        fwd += 2 * n * dd * pix
    teacher = float(fwd) if kind == "rcmae" else 0.0
    return {"forward": float(fwd), "train": 3.0 * fwd + teacher, "teacher": teacher}


@dataclass(frozen=True)
class RoiSpec:
    """The ladder: data, architecture, rungs, budgets, seeds, fine-tuning recipe, the flatness slice."""

    data: str = "digits"
    preset: str = "tiny"
    pretrain_epochs: tuple[int, ...] = (30, 100, 300)
    # Labels per class of the comparison; fewer than the generalization page's five keep 8 seeds x 3 rungs within
    # the study's time (every fine-tune is ~10 s on a tiny ViT, and the controls are up to 17x longer).
    budgets: tuple[int | None, ...] = (5, 10, 50)
    # Budgets of "scratch, equal steps" (at 300 epochs: 3,500 steps each, 17x a fine-tune): the Overview's budget.
    control_budgets: tuple[int | None, ...] = (10,)
    seeds: int = 8
    pretrain_batch_size: int = 128
    pretrain_warmup: int = 3
    pretrain_snapshots: int = 6
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    flatness: bool = True  # claim 1's basin width per rung (a 2-D slice per model)
    surface: ReproduceSpec = field(default_factory=ReproduceSpec)  # its grid, span, images, seeds, threshold
    device: str = "auto"  # not part of any cache key
    workers: int = 1  # worker processes, one (rung, seed) each; 0: one per core; not part of any key
    quick: bool = False

    def __post_init__(self):
        if self.seeds < 1:
            raise LandscapeError(f"--seeds must be at least 1, got {self.seeds}")
        eps = self.pretrain_epochs
        if not eps or any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in eps):
            raise LandscapeError(f"--pretrain-epochs takes positive whole numbers, got {list(eps)}")
        if len(set(eps)) != len(eps) or list(eps) != sorted(eps):
            raise LandscapeError(f"--pretrain-epochs must be distinct and increasing, got {list(eps)}")
        if not self.budgets:
            raise LandscapeError("the ladder needs at least one budget")
        extra = [budget_label(b) for b in self.control_budgets if b not in self.budgets]
        if extra:
            raise LandscapeError(f"control budgets must be among the budgets; {', '.join(extra)} is not")

    def study(self, epochs: int) -> StudySpec:
        """The label-efficiency study of one rung (no Hessian numbers: the rung's flatness is the basin width)."""
        base = quick_study() if self.quick else StudySpec()
        return replace(
            base,
            data=self.data,
            preset=self.preset,
            budgets=self.budgets,
            seeds=self.seeds,
            pretrain_epochs=epochs,
            pretrain_batch_size=self.pretrain_batch_size,
            pretrain_warmup=self.pretrain_warmup,
            pretrain_snapshots=self.pretrain_snapshots,
            finetune=self.finetune,
            flatness=False,
            **_NO_STABILITY,
            device=self.device,
            workers=1,
            quick=self.quick,
        )

    def key(self) -> dict:
        """What the numbers depend on (not the device or the workers)."""
        d = asdict(self)
        d.pop("device")
        d.pop("workers")
        d["budgets"] = [budget_label(b) for b in self.budgets]
        d["control_budgets"] = [budget_label(b) for b in self.control_budgets]
        return d


def quick_roi(seeds: int = 2, **overrides) -> RoiSpec:
    """The micro version for tests and `--quick` (seconds): micro models on synthetic data, rungs of 2 and 4 epochs,
    one budget, 5x5 slices on 32 images."""
    q = quick_study()
    base = RoiSpec(
        data=q.data,
        preset=q.preset,
        pretrain_epochs=(2, 4),
        budgets=(4,),
        control_budgets=(4,),
        seeds=seeds,
        pretrain_batch_size=q.pretrain_batch_size,
        pretrain_warmup=q.pretrain_warmup,
        pretrain_snapshots=q.pretrain_snapshots,
        finetune=q.finetune,
        surface=ReproduceSpec(grid=5, samples=32, quick=True),
        quick=True,
    )
    return replace(base, **overrides)


def control_config(spec: RoiSpec, pretrain_steps: int, budget: int | None, seed: int) -> FinetuneConfig:
    """ "Scratch, equal steps": the recipe's epochs, each of ceil((pre-training + fine-tuning steps) / epochs) steps."""
    ft = spec.finetune
    per = math.ceil((pretrain_steps + ft.steps) / ft.epochs)
    return replace(ft, labels_per_class=budget, seed=seed, from_scratch=True, steps_per_epoch=per)


@dataclass(frozen=True)
class RungSeed:
    """What one (rung, seed) job measured (plain values: it crosses processes)."""

    epochs: int
    seed: int
    runs: tuple[RunRecord, ...]  # MAE-FT, RC-MAE-FT, scratch at every budget (as far as present)
    cost: dict  # kind -> {"wall_s", "cpu_s", "train_s", "eval_s", "time_per_epoch", "steps", "flops", ...}
    plateau: dict  # kind -> Plateau
    control: dict  # budget label -> {"val_acc", "steps"}
    basin: dict  # kind -> basin width (claim 1's primary number), NaN when not measured


def _cost(path: str, spec: RoiSpec, kind: str) -> tuple[dict, Plateau]:
    ck = load_checkpoint(path)
    hist = list(ck.meta.get("history") or [])
    d = ck.meta.get("data") or {}
    steps_per_epoch = max(1, int(d.get("n_train", 0)) // spec.pretrain_batch_size)
    train_s = float(sum(h.get("time_s", 0.0) for h in hist))
    eval_s = float(sum(h.get("eval_s", math.nan) for h in hist)) if hist else math.nan
    cpu = [h.get("cpu_s") for h in hist]
    flops = pretrain_flops(ck.config, float((ck.meta.get("train") or {}).get("mask_ratio", 0.75)), kind)
    steps = steps_per_epoch * len(hist)
    images = steps * spec.pretrain_batch_size
    cost = {
        "epochs": len(hist),
        "steps": steps,
        "train_s": train_s,
        "eval_s": eval_s,
        "wall_s": train_s + (eval_s if math.isfinite(eval_s) else 0.0),
        "cpu_s": float(sum(cpu)) if hist and all(c is not None for c in cpu) else math.nan,
        "time_per_epoch": train_s / len(hist) if hist else math.nan,
        "flops": flops["train"] * images,
        "teacher_flops": flops["teacher"] * images,
        "evaluations": sum("val_loss" in h for h in hist),
    }
    return cost, plateau(hist)


def _basin(spec: RoiSpec, kind: str, path: str, seed: int, cached_only: bool, log: LogFn) -> float:
    m = next(x for x in MEASURES if x.key == BASIN_MEASURE[kind])
    sspec = surface_spec_of(m, path, None, replace(spec.surface, device=spec.device).at_seed(seed))
    if not cached_only:
        log(f"basin width {kind}, seed {seed} ({sspec.grid}x{sspec.grid} slice)")
    s = compute_surface(sspec, cached_only=cached_only)
    if s is None:
        return math.nan
    sm = surface_metrics(s.xs, s.ys, np.asarray(s.loss), rel_threshold=spec.surface.rel_threshold)
    return float(sm.basin_width)


def rung_seed(
    spec: RoiSpec,
    epochs: int,
    seed: int,
    *,
    log: LogFn,
    cached_only: bool = False,
    check_stop: Callable[[], bool] | None = None,
) -> RungSeed:
    """Everything of one rung and seed (all cached): pre-train MAE / RC-MAE for `epochs`, fine-tune them and
    scratch at every budget, the equal-steps controls, the basin widths and the costs. With `cached_only`, what the
    cache holds and nothing computed (missing parts are left out or NaN)."""
    study = spec.study(epochs)
    runs = study_seed(study, seed, {}, log=log, check_stop=check_stop, cached_only=cached_only)
    cost, plat, control, basin = {}, {}, {}, {}
    for kind in PRETRAINED:
        path = checkpoint_path(study.train_config(kind, seed))
        if not path.exists():
            continue
        cost[kind], plat[kind] = _cost(str(path), spec, kind)
        if spec.flatness:
            basin[kind] = _basin(spec, kind, str(path), seed, cached_only, log)
    mae = checkpoint_path(study.train_config("mae", seed))
    if "mae" in cost:
        for b in spec.control_budgets:
            cfg = control_config(spec, cost["mae"]["steps"], b, seed)
            if cached_only:
                p = finetune_path(mae, cfg)
                if not p.exists():
                    continue
            else:
                log(f"scratch, equal steps ({cfg.steps} steps), {budget_label(b)} labels/class, seed {seed}")
                p = finetune(mae, cfg, device=spec.device, check_stop=check_stop)
            s = finetune_summary(p)
            control[budget_label(b)] = {"val_acc": float(s["val_acc"]), "steps": int(s["steps"])}
    return RungSeed(epochs, seed, tuple(runs), cost, plat, control, basin)


def _job(spec: RoiSpec, epochs: int, seed: int, *, log: LogFn) -> RungSeed:
    return rung_seed(spec, epochs, seed, log=log)


def jobs_of(spec: RoiSpec) -> list[tuple[int, int]]:
    """(epochs, seed) of every job, the longest rung first (the pool finishes with short jobs)."""
    return [(e, s) for e in sorted(spec.pretrain_epochs, reverse=True) for s in range(spec.seeds)]


def run_roi(
    spec: RoiSpec,
    *,
    log: LogFn,
    cached_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
    check_stop: Callable[[], bool] | None = None,
    on_cell: Callable[[RoiResult], None] | None = None,
) -> RoiResult:
    """Run (or read from the cache) every (rung, seed) of the ladder.

    Worker processes (`spec.workers` != 1) cannot call back `progress`, `check_stop` or `on_cell`; in this process
    every job runs with the workers' thread count, so the numbers do not depend on the number of workers.
    """
    jobs = jobs_of(spec)
    if spec.workers != 1 and not cached_only and len(jobs) > 1:
        cells = map_jobs(_job, [(spec, e, s) for e, s in jobs], spec.workers, log, [f"{e} ep s{s}" for e, s in jobs])
        return RoiResult(spec, tuple(cells))
    cells: list[RungSeed] = []
    with fixed_threads():
        for i, (e, s) in enumerate(jobs):
            cell = rung_seed(spec, e, s, log=log, cached_only=cached_only, check_stop=check_stop)
            if cell.runs or cell.cost:  # cached_only: a job with nothing cached is left out
                cells.append(cell)
            if progress is not None:
                progress(i + 1, len(jobs))
            if on_cell is not None:
                on_cell(RoiResult(spec, tuple(cells)))
    return RoiResult(spec, tuple(cells))


# --------------------------------------------------------------------------------------------------------------------
# The numbers of the picture


@dataclass(frozen=True)
class RoiResult:
    """Every (rung, seed) measured; pure functions of it give the estimates, the table and the figure's series."""

    spec: RoiSpec
    cells: tuple[RungSeed, ...]

    @property
    def rungs(self) -> tuple[int, ...]:
        return tuple(e for e in self.spec.pretrain_epochs if any(c.epochs == e for c in self.cells))

    def seeds(self, epochs: int | None = None) -> tuple[int, ...]:
        return tuple(sorted({c.seed for c in self.cells if epochs is None or c.epochs == epochs}))

    def study(self, epochs: int) -> StudyResult:
        runs = tuple(r for c in self.cells if c.epochs == epochs for r in c.runs)
        return StudyResult(self.spec.study(epochs), runs)

    def acc(self, kind: str, epochs: int, budget: int | None) -> dict[int, float]:
        """seed -> validation accuracy of `kind` (mae, rcmae, scratch, control) at a rung and budget."""
        if kind == "control":
            bl = budget_label(budget)
            return {c.seed: c.control[bl]["val_acc"] for c in self.cells if c.epochs == epochs and bl in c.control}
        return self.study(epochs).by_seed(kind, budget, "val_acc")

    def _pair(self, name, a: dict, b: dict, better: str, margin: str) -> Estimate:
        seeds = tuple(sorted(set(a) | set(b)))
        return paired(
            name,
            [a.get(s, math.nan) for s in seeds],
            [b.get(s, math.nan) for s in seeds],
            better,
            MARGINS[margin],
            seeds,
        )

    def gain(self, kind: str, epochs: int, budget: int | None, baseline: str = "scratch") -> Estimate:
        """`kind`-FT minus `baseline` (scratch, or "control": scratch with equal steps) in validation accuracy."""
        base = "scratch, equal steps" if baseline == "control" else "scratch"
        name = f"{LABEL[kind]} vs {base}, {epochs} pre-training epochs, {budget_label(budget)} labels/class"
        return self._pair(
            name, self.acc(kind, epochs, budget), self.acc(baseline, epochs, budget), "higher", "accuracy"
        )

    def gain_verdict(self, epochs: int, budget: int | None):
        """The premise's rule at one rung and budget: both pre-trained kinds vs scratch, Holm over the two."""
        return claim_verdict(tuple(self.gain(k, epochs, budget) for k in PRETRAINED))

    def rc_vs_mae(self, epochs: int, budget: int | None) -> Estimate:
        """RC-MAE-FT minus MAE-FT (the same scratch: also the change RC-MAE makes to the gain)."""
        name = f"RC-MAE-FT vs MAE-FT, {epochs} pre-training epochs, {budget_label(budget)} labels/class"
        return self._pair(
            name, self.acc("rcmae", epochs, budget), self.acc("mae", epochs, budget), "higher", "accuracy"
        )

    def step(self, kind: str, lo: int, hi: int, budget: int | None) -> Estimate:
        """The gain's change from rung `lo` to rung `hi`: fine-tuned accuracy at `hi` minus at `lo`, paired by seed
        (scratch is the same run at both rungs, so it cancels)."""
        name = f"{LABEL[kind]}, {hi} vs {lo} pre-training epochs, {budget_label(budget)} labels/class"
        return self._pair(name, self.acc(kind, hi, budget), self.acc(kind, lo, budget), "higher", "accuracy")

    def flattens(self, kind: str, budget: int | None) -> tuple[int | None, str]:
        """Where the gain curve flattens, read from the data: (rung, reading). The first rung whose step to the next
        reads "no meaningful difference"; (top rung, "still rising") when every step supports a rise; (None,
        "undetermined") when a step is undetermined before any flat one; a step that contradicts (the gain falls)
        counts as flat: (that rung, "falls after")."""
        rungs = self.rungs
        for lo, hi in zip(rungs, rungs[1:], strict=False):
            r = self.step(kind, lo, hi, budget).reading
            if r == "no meaningful difference":
                return lo, "flat after"
            if r == "contradicts":
                return lo, "falls after"
            if r != "supports":
                return None, "undetermined"
        return (rungs[-1] if rungs else None), "still rising"

    def basin(self, kind: str, epochs: int) -> dict[int, float]:
        return {c.seed: c.basin[kind] for c in self.cells if c.epochs == epochs and kind in c.basin}

    def flatter(self, kind: str, epochs: int) -> Estimate:
        """Basin width at `epochs` against the first rung, paired by seed (log-ratio): wider is flatter."""
        first = self.rungs[0]
        name = f"{LABEL[kind]} basin width, {epochs} vs {first} pre-training epochs"
        return self._pair(name, self.basin(kind, epochs), self.basin(kind, first), "higher", "ratio")

    def cost(self, kind: str, epochs: int, what: str) -> dict[int, float]:
        return {c.seed: float(c.cost[kind][what]) for c in self.cells if c.epochs == epochs and kind in c.cost}

    def teacher_cost(self, epochs: int) -> Estimate:
        """RC-MAE's training time per epoch against MAE's, paired by seed (log-ratio): its teacher's extra cost."""
        name = f"RC-MAE vs MAE training time per epoch, {epochs} epochs"
        return self._pair(
            name, self.cost("rcmae", epochs, "time_per_epoch"), self.cost("mae", epochs, "time_per_epoch"),
            "higher", "time",
        )  # fmt: skip

    def plateau_share(self, kind: str, epochs: int) -> tuple[float, float]:
        """(mean improvement over the last 20% over seeds, share of seeds whose run reached the plateau)."""
        ps = [c.plateau[kind] for c in self.cells if c.epochs == epochs and kind in c.plateau]
        imps = [p.improvement for p in ps if math.isfinite(p.improvement)]
        if not imps:
            return math.nan, math.nan
        return float(np.mean(imps)), float(np.mean([p.reached for p in ps]))

    def plateau_rung(self) -> int | None:
        """The shortest rung whose MAE and RC-MAE reach the plateau (mean improvement over seeds < 2%), or None."""
        for e in self.rungs:
            imps = [self.plateau_share(k, e)[0] for k in PRETRAINED]
            if all(math.isfinite(i) and i < PLATEAU_GAIN for i in imps):
                return e
        return None

    def series(self, budget: int | None, kind: str, baseline: str = "scratch") -> dict:
        """The figure's line: per rung the paired gain (points), its 95% interval and n."""
        out: dict = {"epochs": [], "gain": [], "lo": [], "hi": [], "n": [], "reading": []}
        for e in self.rungs:
            est = self.gain(kind, e, budget, baseline)
            out["epochs"].append(e)
            out["gain"].append(100 * est.estimate if est.n else math.nan)
            out["lo"].append(100 * est.lo if est.n > 1 else math.nan)
            out["hi"].append(100 * est.hi if est.n > 1 else math.nan)
            out["n"].append(est.n)
            out["reading"].append(est.reading)
        return out

    def basin_series(self, kind: str) -> dict:
        """Per rung: basin width mean, std and n over seeds."""
        out: dict = {"epochs": [], "mean": [], "std": [], "n": []}
        for e in self.rungs:
            mu, sd, n = mean_std(tuple(self.basin(kind, e).values()))
            out["epochs"].append(e)
            out["mean"].append(float(mu) if n else math.nan)
            out["std"].append(float(sd) if n > 1 else math.nan)
            out["n"].append(int(n))
        return out

    def cost_axis(self) -> dict:
        """Per rung: mean pre-training wall seconds and estimated FLOPs of one MAE run (the figure's 2nd axis)."""
        out: dict = {"epochs": [], "wall_s": [], "flops": [], "cpu_s": []}
        for e in self.rungs:
            out["epochs"].append(e)
            for what in ("wall_s", "flops", "cpu_s"):
                v = [x for x in self.cost("mae", e, what).values() if math.isfinite(x)]
                out[what].append(float(np.mean(v)) if v else math.nan)
        return out
