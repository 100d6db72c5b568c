"""The label-efficiency study: how much does pre-training buy at N labels, and is the better-generalizing model the
flatter one?

For every seed k and labeled budget (images per class; `None` is every training image) three models are
fine-tuned on the same nested, class-balanced subset (`core.models.subsets`) with the same recipe and number of steps
(`core.models.finetune`): MAE-FT (the MAE of seed k), RC-MAE-FT (the RC-MAE of seed k, its EMA teacher) and scratch (the
same ViT from random weights). Pre-training used every training image without labels (`SETTING_NOTE`).

Reported per (budget, model kind): mean ± sample standard deviation over seeds of the validation accuracy and loss,
the training accuracy and loss on the labeled subset, and the generalization gap (train - validation). The premise's
verdict is the one rule of `core.report.verdicts`: per pre-trained kind the validation accuracy minus scratch's, paired
by seed and averaged over the budgets (`core.report.premise_estimates`, which the Overview's briefing uses too), Holm
over the two kinds; each budget alone gets a reading by the same rule, shown.

Flatness (`StudySpec.flatness`): the Hessian's top eigenvalue and trace and the average sharpness of every
fine-tuned and scratch model's supervised loss (`core.measure.flatness.compute_flatness`, loss `supervised`), over its
labeled training subset (`split="labeled"`: the loss it was trained on) and over validation, with the same seeds
and images for every model of a (budget, seed). Their rank correlations with the generalization gap across every
run come with permutation p-values (`core.report.findings.correlation`).

API: `StudySpec` / `quick_study()`, `run_study(spec) -> StudyResult` (every step cached: re-running is quick;
`cached_only=True` returns what exists and computes nothing), `StudyResult.to_dict()` (JSON) and `.format_table()`
(text), `premise_claim` / `flatness_gap_claim` (the `core.report.findings.Claim`s of docs/FINDINGS.md) and
`add_premise_to_findings` (the hook `python -m core reproduce` calls).

Stability (`StudySpec.stability`): every run's accuracy under input corruptions (`core.studies.stability`, which also
holds the stability claim and its flatness follow-up, added to docs/FINDINGS.md by `add_premise_to_findings`).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from core.errors import LandscapeError
from core.measure import FlatnessSpec, compute_flatness
from core.models import (
    SETTING_NOTE,
    FinetuneConfig,
    TrainConfig,
    check_budget,
    checkpoint_path,
    dataset_for,
    finetune,
    finetune_path,
    finetune_summary,
    load_checkpoint,
    train_model,
)
from core.paths import cache_root
from core.report import (
    Claim,
    ClaimVerdict,
    CorrelationRow,
    Estimate,
    Row,
    Table,
    claim_verdict,
    correlation,
    estimate_cell,
    format_mean_std,
    mean_std,
    plot_gap,
    plot_label_efficiency,
    premise_estimates,
    premise_pairs,
)
from core.store import atomic_write_bytes, content_hash
from core.studies.figures import write_figure
from core.studies.stability import stability_claims, stability_lines, stability_numbers
from core.studies.stability import to_dict as stability_dict
from core.studies.workers import fixed_threads, map_jobs

KINDS = ("mae", "rcmae", "scratch")
LABEL = {"mae": "MAE-FT", "rcmae": "RC-MAE-FT", "scratch": "scratch"}
METRICS = ("val_acc", "val_loss", "train_acc", "train_loss", "gap_acc", "gap_loss")
SPLITS = ("labeled", "val")
FLATNESS = {"lambda_max": "Hessian top eigenvalue", "trace": "Hessian trace", "sharpness": "average sharpness"}
GAPS = {"gap_acc": "accuracy gap (train - val)", "gap_loss": "loss gap (train - val)"}
# Expected sign of the rank correlation if sharper minima generalize worse: a sharper model (larger number) has a
# larger accuracy gap and a more negative loss gap (train loss below validation loss by more).
EXPECTED_SIGN = {"gap_acc": 1, "gap_loss": -1}

LogFn = Callable[[str], None]


def _stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def budget_label(budget: int | None) -> str:
    return "all" if budget is None else str(budget)


@dataclass(frozen=True)
class StudySpec:
    """The study: data, architecture, pre-training runs, budgets, seeds, fine-tuning recipe, flatness settings."""

    data: str = "digits"
    preset: str = "tiny"
    budgets: tuple[int | None, ...] = (5, 10, 20, 50, None)  # images per class; None: every training image
    seeds: int = 3  # seeds 0..seeds-1: pre-training seed, labeled subset, head init and batch order
    pretrain_epochs: int = 30  # the TrainConfig defaults: seed 0 is the dashboard's default MAE / RC-MAE
    pretrain_batch_size: int = 128
    pretrain_warmup: int = 3
    pretrain_snapshots: int = 6
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # its budget, seed, from_scratch are set here
    flatness: bool = True  # Hessian and sharpness numbers of every run's supervised loss
    stability: bool = True  # accuracy under input corruptions of every run (core.studies.stability; seconds)
    # The flatness numbers cost more than the fine-tuning itself (a Hessian-vector product is ~3 gradients), so
    # they are kept light: 90 reports for the default study.
    flat_samples: int = 64  # images per loss evaluation (the labeled subset when it is smaller: 5 per class = 50)
    flat_iter: int = 15  # Lanczos steps: the top eigenvalue of a tiny ViT settles well before (converged is kept)
    flat_probes: int = 8  # Hutchinson probes for the trace (stderr ~ 1/sqrt(probes))
    sharpness_rho: float | None = 0.05  # relative radius of the average sharpness; None skips it
    sharpness_samples: int = 4
    # Probes and directions of seed k: flat_seed + k, the same for every model of a (budget, seed); seed 0 measures
    # as the dashboard does.
    flat_seed: int = 0
    device: str = "auto"  # not part of any cache key
    workers: int = 1  # worker processes for the seeds (core.studies.workers; 0: one per core); not in any key
    quick: bool = False

    def __post_init__(self):
        if self.seeds < 1:
            raise LandscapeError(f"--seeds must be at least 1, got {self.seeds}")
        if not self.budgets:
            raise LandscapeError("the study needs at least one budget")
        for b in self.budgets:
            if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
                raise LandscapeError(f"budgets are positive numbers of labels per class or 'all', got {b!r}")

    def train_config(self, kind: str, seed: int) -> TrainConfig:
        """The pre-training run of MAE / RC-MAE for one seed (the same runs as `core.studies.reproduce` trains)."""
        return TrainConfig(
            kind=kind,
            data=self.data,
            preset=self.preset,
            epochs=self.pretrain_epochs,
            batch_size=self.pretrain_batch_size,
            warmup_epochs=self.pretrain_warmup,
            n_snapshots=self.pretrain_snapshots,
            seed=seed,
        )

    def finetune_config(self, kind: str, budget: int | None, seed: int) -> FinetuneConfig:
        return replace(self.finetune, labels_per_class=budget, seed=seed, from_scratch=kind == "scratch")

    def flatness_spec(self, path: str, split: str, seed: int = 0):

        return FlatnessSpec(
            checkpoint=str(path),
            loss="supervised",
            split=split,
            samples=self.flat_samples,
            top_k=1,
            max_iter=self.flat_iter,
            trace_probes=self.flat_probes,
            sharpness_rho=self.sharpness_rho,
            sharpness_samples=self.sharpness_samples,
            robustness=False,
            seed=self.flat_seed + seed,
            device=self.device,
        )


def quick_study(seeds: int = 2, **overrides) -> StudySpec:
    """A small version for tests and `--quick` (seconds): micro models on synthetic data, few steps, light Hessians.

    Its pre-training runs are `core.studies.reproduce.quick_spec`'s (and tests/conftest.py's), so they are shared.
    """
    base = StudySpec(
        data="synthetic",
        preset="micro",
        budgets=(4, None),
        seeds=seeds,
        pretrain_epochs=3,
        pretrain_batch_size=32,
        pretrain_warmup=1,
        pretrain_snapshots=3,
        finetune=FinetuneConfig(epochs=4, steps_per_epoch=4, batch_size=32, warmup_epochs=1),
        flat_samples=32,
        flat_iter=6,
        flat_probes=4,
        sharpness_samples=2,
        quick=True,
    )
    return replace(base, **overrides)


@dataclass(frozen=True)
class RunRecord:
    """One fine-tuned (or scratch) model of the study."""

    kind: str  # mae | rcmae | scratch
    budget: int | None
    seed: int
    path: str
    summary: dict  # core.models.finetune.finetune_summary
    history: tuple[dict, ...]
    flatness: dict  # split -> {"lambda_max", "trace", "sharpness"} (absent when not computed)
    stability: dict = field(default_factory=dict)  # core.studies.stability.stability_numbers (absent: not computed)


@dataclass(frozen=True)
class StudyResult:
    """Everything the study measured; pure functions of it give the tables, verdicts and correlations."""

    spec: StudySpec
    runs: tuple[RunRecord, ...]
    facts: dict = field(default_factory=dict)  # data and regime, plain strings / numbers

    def values(self, kind: str, budget: int | None, metric: str) -> tuple[float, ...]:
        """One metric per seed for a (kind, budget), in seed order (missing runs are left out)."""
        return tuple(v for _, v in sorted(self.by_seed(kind, budget, metric).items()))

    def by_seed(self, kind: str, budget: int | None, metric: str) -> dict[int, float]:
        """seed -> one metric of a (kind, budget)."""
        return {r.seed: float(r.summary[metric]) for r in self.runs if r.kind == kind and r.budget == budget}

    def accuracy(self, budgets: Sequence[int | None] | None = None) -> dict[str, dict[object, dict[int, float]]]:
        """kind -> budget -> seed -> validation accuracy, over `budgets` (default: the spec's)."""
        budgets = self.spec.budgets if budgets is None else budgets
        return {k: {b: self.by_seed(k, b, "val_acc") for b in budgets} for k in KINDS}

    def budget_estimates(self, budget: int | None) -> tuple[Estimate, ...]:
        """The premise's rule at one budget: each pre-trained kind vs scratch, paired by seed."""
        return premise_estimates(self.accuracy((budget,)))

    def budget_readings(self, budget: int | None) -> list[tuple[str, str]]:
        """(name, reading) at one budget, after Holm over the two pre-trained kinds."""
        return [(j.estimate.name, j.reading) for j in claim_verdict(self.budget_estimates(budget)).judged]

    def budget_verdict(self, budget: int | None) -> str:
        return claim_verdict(self.budget_estimates(budget)).verdict

    def premise(self) -> ClaimVerdict:
        """The premise's verdict: per pre-trained kind the paired accuracy difference to scratch averaged over every
        budget, Holm over the kinds (`core.report.premise_estimates`)."""
        return claim_verdict(premise_estimates(self.accuracy()))

    def flatness_points(self) -> list[RunRecord]:
        return [r for r in self.runs if all(s in r.flatness for s in SPLITS)]

    def correlations(self) -> list[dict]:
        """Rank correlation of each flatness number (per split) with each gap across every run that has them."""
        pts = self.flatness_points()
        out = []
        for split in SPLITS:
            for num, num_name in FLATNESS.items():
                x = [float(r.flatness[split].get(num, math.nan)) for r in pts]
                if not any(math.isfinite(v) for v in x):
                    continue
                for gap, gap_name in GAPS.items():
                    y = [float(r.summary[gap]) for r in pts]
                    out.append(
                        {
                            "number": num,
                            "split": split,
                            "gap": gap,
                            "name": f"{num_name} ({'labeled training subset' if split == 'labeled' else 'validation'})"
                            f" vs {gap_name}",
                            "x": x,
                            "y": y,
                            "expected_sign": EXPECTED_SIGN[gap],
                            **correlation_numbers(x, y, EXPECTED_SIGN[gap]),
                        }
                    )
        return out

    def to_dict(self) -> dict:
        """JSON-able: the spec, per-cell mean / std / values, verdicts, correlations and every run."""
        cells = []
        for budget in self.spec.budgets:
            for kind in KINDS:
                cell = {"budget": budget_label(budget), "kind": kind}
                for m in METRICS:
                    v = self.values(kind, budget, m)
                    mu, sd, n = mean_std(v)
                    cell[m] = {"mean": _num(mu), "std": _num(sd), "n": n, "values": list(v)}
                cells.append(cell)
        verdicts = {
            budget_label(b): {"verdict": self.budget_verdict(b), "readings": dict(self.budget_readings(b))}
            for b in self.spec.budgets
        }
        premise = self.premise()
        verdicts["premise (mean over budgets)"] = {
            "verdict": premise.verdict,
            "n": premise.n,
            "seeds_needed": premise.seeds_needed,
            "estimates": {
                j.estimate.name: {
                    "difference": _num(j.estimate.estimate),
                    "ci95": [_num(j.estimate.lo), _num(j.estimate.hi)],
                    "p": _num(j.estimate.p),
                    "p_holm": _num(j.p_adjusted),
                    "reading": j.reading,
                }
                for j in premise.judged
            },
        }
        corr = [{k: (_num(v) if isinstance(v, float) else v) for k, v in c.items()} for c in self.correlations()]
        return {
            "spec": _plain_spec(self.spec),
            "facts": self.facts,
            "note": SETTING_NOTE,
            "cells": cells,
            "verdicts": verdicts,
            "correlations": corr,
            "stability": stability_dict(self),
            "runs": [
                {
                    "kind": r.kind,
                    "budget": budget_label(r.budget),
                    "seed": r.seed,
                    "path": r.path,
                    **{m: r.summary[m] for m in METRICS},
                    "n_labels": r.summary["n_labels"],
                    "steps": r.summary["steps"],
                    "flatness": r.flatness,
                    "stability": r.stability,
                }
                for r in self.runs
            ],
        }

    def format_table(self) -> str:
        """The readable table: accuracy and gap per budget and model kind (mean ± std over seeds), verdicts, and
        the flatness-gap correlations."""
        s = self.spec
        seeds = sorted({r.seed for r in self.runs})
        head = f"{'labels/class':>12} | " + " | ".join(f"{LABEL[k]:>17}" for k in KINDS)
        lines = [
            f"Label efficiency: {s.data}, preset {s.preset}, {len(seeds)} seed(s), "
            f"{s.finetune.steps} fine-tuning steps for every model; mean ± std over seeds",
            f"({SETTING_NOTE})",
            "",
            "validation accuracy",
            head + " | verdict (pre-trained > scratch)",
        ]
        for b in s.budgets:
            cells = " | ".join(f"{format_mean_std(self.values(k, b, 'val_acc'), '.3f'):>17}" for k in KINDS)
            lines.append(f"{budget_label(b):>12} | {cells} | {self.budget_verdict(b)}")
        premise = self.premise()
        lines += ["", f"premise, mean over budgets (paired by seed, Holm over the kinds): {premise.verdict}"]
        lines += [f"  {j.estimate.name}: {estimate_cell(j.estimate)} -> {j.reading}" for j in premise.judged]
        for metric, title in (("gap_acc", "accuracy gap (train - val)"), ("gap_loss", "loss gap (train - val)")):
            lines += ["", title, head]
            for b in s.budgets:
                cells = " | ".join(f"{format_mean_std(self.values(k, b, metric), '.3f'):>17}" for k in KINDS)
                lines.append(f"{budget_label(b):>12} | {cells}")
        corr = self.correlations()
        if corr:
            lines += ["", f"flatness vs generalization gap over {len(self.flatness_points())} runs (Spearman rho, p)"]
            for c in corr:
                lines.append(f"  {c['name']}: rho {c['spearman']:+.2f}, permutation p {c['p_spearman']:.3g}")
        return "\n".join(lines + stability_lines(self))


def correlation_numbers(x: Sequence[float], y: Sequence[float], expected_sign: int) -> dict[str, float]:
    """{"n", "pearson", "spearman", "p_spearman"} of `core.report.correlation` (permutation p) as plain numbers."""
    c = correlation("", x, y, expected_sign)
    return {"n": c.n, "pearson": c.pearson, "spearman": c.spearman, "p_spearman": c.p}


def _num(v: float) -> float | None:
    return float(v) if isinstance(v, float | int) and math.isfinite(v) else None


def _plain_spec(spec: StudySpec) -> dict:
    d = asdict(spec)
    d["budgets"] = [budget_label(b) for b in spec.budgets]
    return d


# --------------------------------------------------------------------------------------------------------------------
# Running


def flatness_numbers(spec: StudySpec, path: str, split: str, seed: int = 0, cached_only: bool = False) -> dict | None:
    """{"lambda_max", "trace", "sharpness"} of one run's supervised loss on a split, measured with seed `seed`'s
    probes and directions (cached), or None when `cached_only` and not cached."""
    report = compute_flatness(spec.flatness_spec(path, split, seed), cached_only=cached_only)
    if report is None:
        return None
    return {
        "lambda_max": float(report.top_eigenvalues[0]) if report.top_eigenvalues else math.nan,
        "trace": float(report.trace) if report.trace is not None else math.nan,
        "sharpness": float(report.sharpness["average"]) if report.sharpness else math.nan,
    }


def run_study(
    spec: StudySpec,
    *,
    ckpts: dict[tuple[str, int], str] | None = None,
    log: LogFn = _stderr_log,
    progress: Callable[[int, int], None] | None = None,
    check_stop: Callable[[], bool] | None = None,
    cached_only: bool = False,
) -> StudyResult:
    """Pre-train (or find), fine-tune and measure every run of the study; everything is cached.

    Args:
        spec: the study.
        ckpts: pre-trained checkpoints to use, (kind, seed) -> path (default: `spec.train_config` runs).
        log: progress lines.
        progress: progress(runs done, runs in all).
        check_stop: polled between steps; True stops with a LandscapeError (finished runs stay cached).
        cached_only: compute nothing; the result holds the runs (and flatness numbers) already cached.
    """
    ckpts = dict(ckpts or {})
    check_budgets(spec)
    seeds = tuple(range(spec.seeds))
    total = len(seeds) * len(spec.budgets) * len(KINDS)
    if spec.workers != 1 and not cached_only and len(seeds) > 1:
        # Worker processes cannot call back `progress` / `check_stop`: the dashboard runs with one worker.
        jobs = [(spec, s, {k: p for (k, ks), p in ckpts.items() if ks == s}) for s in seeds]
        per_seed = map_jobs(study_seed, jobs, spec.workers, log, [f"study seed {s}" for s in seeds])
        runs = [rec for recs in per_seed for rec in recs]
        return StudyResult(spec, tuple(runs), _facts(spec, runs))
    runs: list[RunRecord] = []
    # In this process with the workers' thread count: the same bits as any number of workers (core.studies.workers).
    with fixed_threads():
        for i, seed in enumerate(seeds):
            base_ckpts = {k: p for (k, s), p in ckpts.items() if s == seed}
            count = (i * len(spec.budgets) * len(KINDS), total, progress)
            runs += study_seed(
                spec, seed, base_ckpts, log=log, check_stop=check_stop, cached_only=cached_only, count=count
            )
    return StudyResult(spec, tuple(runs), _facts(spec, runs))


def study_seed(
    spec: StudySpec,
    seed: int,
    ckpts: dict[str, str],
    *,
    log: LogFn,
    check_stop: Callable[[], bool] | None = None,
    cached_only: bool = False,
    count: tuple[int, int, Callable[[int, int], None] | None] | None = None,
) -> list[RunRecord]:
    """Every run of one seed: pre-train (or find) MAE / RC-MAE unless `ckpts` (kind -> path) has them, fine-tune at
    every budget and measure (all cached). `count`: (runs before this seed, runs in all, progress callback)."""
    done, total, progress = count or (0, len(spec.budgets) * len(KINDS), None)
    runs: list[RunRecord] = []
    bases: dict[str, str] = {}
    for kind in ("mae", "rcmae"):
        if kind in ckpts:
            bases[kind] = str(ckpts[kind])
            continue
        cfg = spec.train_config(kind, seed)
        if cached_only:
            if checkpoint_path(cfg).exists():
                bases[kind] = str(checkpoint_path(cfg))
            continue
        log(f"pre-train {kind} seed {seed} ({cfg.epochs} epochs, {cfg.preset}, {cfg.data}; cached by config)")
        bases[kind] = str(train_model(cfg, device=spec.device, check_stop=check_stop))
    for budget in spec.budgets:
        for kind in KINDS:
            done += 1
            base = bases.get("mae" if kind == "scratch" else kind)
            if base is None:
                continue
            rec = _one_run(spec, kind, budget, seed, base, log, check_stop, cached_only, f"{done}/{total}")
            if rec is not None:
                runs.append(rec)
            if progress is not None:
                progress(done, total)
    return runs


def _one_run(spec, kind, budget, seed, base, log, check_stop, cached_only, count) -> RunRecord | None:

    cfg = spec.finetune_config(kind, budget, seed)
    name = f"{LABEL[kind]}, {budget_label(budget)} labels/class, seed {seed}"
    if cached_only:
        path = finetune_path(base, cfg)
        if not path.exists():
            return None
    else:
        log(f"fine-tune {count}: {name}")
        path = finetune(base, cfg, device=spec.device, check_stop=check_stop)
    ck = load_checkpoint(path)
    flat = {}
    if spec.flatness:
        for split in SPLITS:
            if check_stop is not None and check_stop():
                raise LandscapeError("stopped; finished runs are cached, rerun to continue")
            if not cached_only:
                log(f"flatness {count}: {name}, {split}")
            nums = flatness_numbers(spec, str(path), split, seed, cached_only=cached_only)
            if nums is not None:
                flat[split] = nums
    if spec.stability and not cached_only:
        log(f"input corruptions {count}: {name}")
    stab = stability_numbers(spec, str(path), seed, cached_only=cached_only) if spec.stability else None
    summary, history = finetune_summary(ck), tuple(ck.meta.get("history") or ())
    return RunRecord(kind, budget, seed, str(path), summary, history, flat, stab or {})


def _facts(spec: StudySpec, runs: Sequence[RunRecord]) -> dict:
    if not runs:
        return {}

    ck = load_checkpoint(runs[0].path)
    d = ck.meta.get("data") or {}
    info = ck.meta.get("finetune") or {}
    f = spec.finetune
    return {
        "data": f"`{d.get('spec')}`: {d.get('n_train')} training / {d.get('n_val')} validation images, "
        f"{d.get('num_classes')} classes",
        "recipe": f"{f.steps} steps ({f.epochs} epochs of {f.steps_per_epoch}), batch {f.batch_size} (the whole "
        f"subset when smaller), AdamW lr {f.lr:g}, layer decay {f.layer_decay:g}, weight decay {f.weight_decay:g} "
        f"(matrices only), {f.warmup_epochs} warm-up epochs then cosine, drop-path {f.drop_path:g}, label "
        f"smoothing {f.label_smoothing:g}; the same for every model kind and budget",
        "subsets": "class-balanced, nested across budgets (per class the first N of one seeded order), the same "
        "images for every model kind of a (budget, seed)",
        "architecture": f"preset `{spec.preset}`: {ck.config.img_size}px, patch {ck.config.patch_size}, dim "
        f"{ck.config.embed_dim}, depth {ck.config.depth}; head on the cls token; "
        f"{'fixed' if info.get('fixed_pos_embed') else 'learned'} sin-cos position table",
        "setting": SETTING_NOTE,
    }


# --------------------------------------------------------------------------------------------------------------------
# The claims of docs/FINDINGS.md


def _paired_values(
    r: StudyResult, kind: str, budget: int | None, metric: str
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[int, ...]]:
    """A metric of `kind` and of scratch at one budget, aligned by seed (NaN where one side is missing)."""
    mine, scratch = r.by_seed(kind, budget, metric), r.by_seed("scratch", budget, metric)
    seeds = tuple(sorted(set(mine) | set(scratch)))
    return (
        tuple(mine.get(s, math.nan) for s in seeds),
        tuple(scratch.get(s, math.nan) for s in seeds),
        seeds,
    )


PREMISE_PRIMARY = (
    "the paired difference in validation accuracy to scratch, averaged over the label budgets, per pre-trained kind "
    "(Holm over the two): the premise is about generalization at any budget, and one number per kind keeps the "
    "budgets, which move together, from being counted several times; the per-budget rows are shown."
)


def premise_claim(r: StudyResult) -> Claim:
    """'Self-supervised pre-training generalizes better than supervised training from scratch', per budget."""
    tables = []
    primaries = premise_pairs(r.accuracy())
    for kind in ("mae", "rcmae"):
        rows = []
        if kind in primaries:
            a, s, seeds = primaries[kind]
            name = f"validation accuracy, mean over the {len(r.spec.budgets)} budgets"
            rows.append(Row(name, a, s, "higher", True, ".3f", "accuracy", seeds, f"{LABEL[kind]} vs scratch"))
        for b in r.spec.budgets:
            bl = budget_label(b)
            for m, title, better, margin in (
                ("val_acc", "validation accuracy", "higher", "accuracy"),
                ("val_loss", "validation loss", "lower", "ratio"),
                ("gap_acc", "accuracy gap (train - val)", "lower", "accuracy"),
            ):
                a, s, seeds = _paired_values(r, kind, b, m)
                rows.append(Row(f"{title}, {bl} labels/class", a, s, better, False, ".3f", margin, seeds))
        tables.append(
            Table(
                f"{LABEL[kind]} vs scratch",
                LABEL[kind],
                "scratch",
                tuple(rows),
                note=f"{LABEL[kind]}: the {'EMA teacher of RC-MAE' if kind == 'rcmae' else 'MAE encoder'} of the "
                "same seed, fine-tuned end to end; scratch: the same ViT from random weights. Same labeled images, "
                "steps and recipe.",
            )
        )
    lines = [
        "| labels / class | " + " | ".join(LABEL[k] for k in KINDS) + " | reading at this budget (shown) |",
        "|---|" + "---|" * len(KINDS) + "---|",
    ]
    for b in r.spec.budgets:
        cells = " | ".join(format_mean_std(r.values(k, b, "val_acc"), ".3f") for k in KINDS)
        lines.append(f"| {budget_label(b)} | {cells} | {r.budget_verdict(b)} |")
    facts = r.facts
    text = (
        "Validation accuracy after fine-tuning (mean ± std over seeds). The reading per budget applies the same rule "
        "at that budget alone (both pre-trained kinds vs scratch, paired by seed, Holm over the two); it is shown, "
        "the claim is decided by the mean over budgets.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + "; ".join(f"{k}: {v}" for k, v in facts.items() if k != "setting")
        + f". Note: {SETTING_NOTE}."
    )
    return Claim(
        title="Premise: self-supervised pre-training generalizes better than supervised training from scratch",
        statement=(
            "The seed's question takes it as given: a ViT pre-trained as MAE / RC-MAE and fine-tuned reaches a "
            "higher validation accuracy than the same ViT trained from scratch on the same labels."
        ),
        tables=tuple(tables),
        text=text,
        primary_reason=PREMISE_PRIMARY,
    )


def flatness_gap_claim(r: StudyResult) -> Claim | None:
    """'The better-generalizing model is the flatter one' over every fine-tuned and scratch run (None without
    flatness numbers)."""
    corr = r.correlations()
    if not corr:
        return None
    rows = tuple(CorrelationRow(c["name"], tuple(c["x"]), tuple(c["y"]), c["expected_sign"]) for c in corr)
    n = len(r.flatness_points())
    return Claim(
        title="Follow-up: the fine-tuned models that generalize better are the flatter ones",
        statement=(
            "The seed's future work, on the models of the premise: flatness numbers of each model's supervised loss "
            "should go with a smaller generalization gap."
        ),
        correlations=rows,
        correlation_title="Correlation with the generalization gap",
        text=(
            f"Each point is one model (MAE-FT, RC-MAE-FT, scratch) at one budget and seed: n = {n}. Flatness of the "
            "cross-entropy (no label smoothing) over the model's labeled training subset (the loss it was trained "
            f"on; at most {r.spec.flat_samples} images) and over {r.spec.flat_samples} validation images, the same "
            "images, probes and directions for every model of a (budget, seed). Expected sign: the one under which "
            "a sharper model (larger number) generalizes worse: a larger accuracy gap, a more negative loss gap. "
            "The points cluster by budget (smaller budgets fit their few images perfectly), so a correlation can "
            "reflect the budget rather than flatness."
        ),
    )


def study_spec_for(rspec) -> StudySpec:
    """The study that matches a `core.studies.measuring.ReproduceSpec` (same data, models, seeds; quick for quick)."""
    base = quick_study(seeds=rspec.seeds) if rspec.quick else StudySpec(seeds=rspec.seeds)
    return replace(
        base,
        data=rspec.data,
        preset=rspec.preset,
        pretrain_epochs=rspec.epochs,
        pretrain_batch_size=rspec.batch_size,
        pretrain_warmup=rspec.warmup_epochs,
        pretrain_snapshots=rspec.n_snapshots,
        device=rspec.device,
        workers=rspec.workers,
    )


def study_series(result: StudyResult, metric: str, all_label: str = "all") -> dict[str, dict]:
    """kind -> {"label", "x", "tick", "mean", "std", "n"} over the result's budgets that have any run.

    x is the budget (labels per class); for every training image ("all") the mean number of labeled images per
    class of those runs, its tick `all_label (~N)`. std is the sample standard deviation over seeds (NaN with one).
    """
    budgets = [b for b in result.spec.budgets if any(r.budget == b for r in result.runs)]
    classes = (result.facts or {}).get("num_classes") or 0
    out: dict[str, dict] = {}
    for kind in KINDS:
        s: dict = {"label": LABEL[kind], "x": [], "tick": [], "mean": [], "std": [], "n": []}
        for b in budgets:
            vals = result.values(kind, b, metric)
            mu, sd, n = mean_std(vals) if vals else (math.nan, math.nan, 0)
            if b is None:
                per = [r.summary["n_labels"] / classes for r in result.runs if r.budget is None and classes]
                x = float(sum(per) / len(per)) if per else math.nan
                tick = f"{all_label} (~{x:.0f})" if math.isfinite(x) else all_label
            else:
                x, tick = float(b), str(b)
            s["x"].append(x)
            s["tick"].append(tick)
            s["mean"].append(float(mu) if n else math.nan)
            s["std"].append(float(sd) if n > 1 else math.nan)
            s["n"].append(int(n))
        out[kind] = s
    return out


def add_premise_to_findings(findings, results, out_dir: Path | None = None, log: LogFn = _stderr_log):
    """`core.studies.reproduce`'s hook: run the study on the report's own MAE / RC-MAE checkpoints and return the
    findings with the premise claim first, then the flatness-gap follow-up, the stability claim and its follow-up
    (`core.studies.stability`)."""
    spec = study_spec_for(results.spec)
    ckpts = {k: v for k, v in results.ckpts.items() if k[0] in ("mae", "rcmae")}
    study = run_study(spec, ckpts=ckpts, log=log)
    follow = flatness_gap_claim(study)
    premise = premise_claim(study)
    if out_dir is not None:
        premise = replace(premise, figures=premise_figures(study, Path(out_dir) / "figures", "figures/"))
    claims = (premise, *findings.claims, *((follow,) if follow is not None else ()), *stability_claims(study, out_dir))
    return replace(findings, claims=claims)


def premise_figures(study: StudyResult, folder: Path, link_prefix: str) -> tuple[tuple[str, str], ...]:
    """The premise claim's figures: validation accuracy vs labels per class and the accuracy gap per budget, every
    seed (mean, ±1 std); (caption, link) pairs, the files written to `folder`."""
    caption = f"{study.spec.seeds} seeds, mean ± 1 std; {SETTING_NOTE}"
    eff = plot_label_efficiency(study_series(study, "val_acc"), caption=caption)
    gap = plot_gap(study_series(study, "gap_acc"), "gap_acc", caption=caption)
    return (
        (
            "Label efficiency: validation accuracy vs labels per class, every seed",
            link_prefix + write_figure(eff, folder, "premise_label_efficiency"),
        ),
        (
            "Generalization gap (train - validation accuracy) per budget, every seed",
            link_prefix + write_figure(gap, folder, "premise_gap"),
        ),
    )


def study_path(spec: StudySpec) -> Path:
    """Where the CLI writes a study's JSON: `<cache>/generalization/study_<hash of the spec>.json`."""
    d = _plain_spec(spec)
    d.pop("device")
    d.pop("workers")
    return cache_root() / "generalization" / f"study_{'quick_' if spec.quick else ''}{content_hash(d)[:10]}.json"


def check_budgets(spec: StudySpec) -> None:
    """A one-line error before any training when a budget is larger than the data."""
    ds = dataset_for(spec.train_config("mae", 0))
    for b in spec.budgets:
        check_budget(ds.train_y, b)


def write_json(result: StudyResult, path: str | Path) -> Path:
    """The study's JSON next to its table (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(result.to_dict(), indent=1, default=str).encode())
    return path
