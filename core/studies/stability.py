"""Stability in operation, measured: how much of its accuracy each model of the label-efficiency study keeps when its
inputs are corrupted, and whether a flatness number predicts it.

Per run of `core.studies.generalization` (MAE-FT, RC-MAE-FT and scratch at every budget and seed) the accuracy on the
validation images under every corruption and severity of `core.measure.corruptions` is measured
(`core.measure.input_robustness`, cached per checkpoint; seed k's runs share the images, `data_seed = k`, and the
corruption draws, `seed = k`). When the study measures flatness, the accuracy under weight noise of the same runs
(the flatness page's proxy, `core.measure.flatness`'s robustness stage over the study's validation images) is kept
beside it.

Numbers per run (`RunRecord.stability`): clean and mean corruption accuracy, relative drop (clean - mean corrupted)
/ clean, accuracy per corruption x severity, and the weight-noise relative drop where measured. Per (kind, budget,
seed): mCE-style corruption error relative to scratch of the same budget and seed (per corruption the summed error
over severities divided by scratch's, then the mean over corruptions; scratch is 1 by definition).

Claims of docs/FINDINGS.md (`stability_claims`, added by `core.studies.generalization.add_premise_to_findings`):
- the stability claim: pre-trained then fine-tuned models keep more of their accuracy than the same ViT from scratch;
  primary number `core.report.stability_text.STABILITY_PRIMARY`, judged by `core.report.verdicts`;
- the follow-up: does a flatness number (Hessian top eigenvalue, trace, average sharpness, accuracy under weight
  noise) predict the relative drop, by rank correlation with a permutation p-value over every run, with what
  clusters the points (budget, model kind) stated.

The study is passed in (a `core.studies.generalization.StudyResult`); this module does not import that one, which
imports this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.measure import (
    CORRUPTION_NAMES,
    CORRUPTIONS,
    SEVERITIES,
    InputRobustnessSpec,
    compute_flatness,
    compute_input_robustness,
)
from core.report import (
    STABILITY_PRIMARY,
    Claim,
    CorrelationRow,
    Row,
    Table,
    correlation,
    format_mean_std,
    mean_std,
    plot_corruption_curves,
    primary_budget,
    stability_pairs,
)
from core.studies.figures import write_figure

KINDS = ("mae", "rcmae", "scratch")
LABEL = {"mae": "MAE-FT", "rcmae": "RC-MAE-FT", "scratch": "scratch"}
STABILITY_SAMPLES = (
    512  # validation images per run (every one on digits: 360; on the quick study's synthetic data: 102)
)
FLAT_NUMBERS = {
    "lambda_max": "Hessian top eigenvalue",
    "trace": "Hessian trace",
    "sharpness": "average sharpness",
}
SPLIT_NAME = {"labeled": "labeled training subset", "val": "validation"}
WEIGHT_NOISE = "weight_noise_drop"


def budget_text(b: int | None) -> str:
    return "all" if b is None else str(b)


def robustness_spec(path: str, seed: int, device: str = "auto") -> InputRobustnessSpec:
    """The study's corruption evaluation of one run of seed k: every corruption and severity, seed k's images and
    draws."""
    return InputRobustnessSpec(
        checkpoint=str(path), samples=STABILITY_SAMPLES, data_seed=seed, seed=seed, device=device
    )


def stability_numbers(spec, path: str, seed: int, cached_only: bool = False) -> dict | None:
    """A run's stability numbers (cached): `InputRobustness.numbers()` plus the weight-noise relative drop when the
    study measures flatness (`spec.flatness`); None when `cached_only` and the corruption evaluation is not cached.

    Args:
        spec: the `core.studies.generalization.StudySpec`.
        path: the fine-tuned (or scratch) checkpoint.
        seed: the run's seed (its images and draws).
        cached_only: compute nothing.
    """
    res = compute_input_robustness(robustness_spec(path, seed, spec.device), cached_only=cached_only)
    if res is None:
        return None
    out = res.numbers()
    if getattr(spec, "flatness", False):
        out[WEIGHT_NOISE] = weight_noise_drop(spec, path, seed, cached_only)
    return out


def weight_noise_drop(spec, path: str, seed: int, cached_only: bool = False) -> float:
    """(clean - mean noisy) / clean accuracy under relative weight noise (sigmas 0.05-0.3, the flatness page's
    curve) over the study's validation images of seed k; its Lanczos stage is the study's own (a cache hit). NaN when
    not available."""
    fs = replace(spec.flatness_spec(path, "val", seed), trace=False, sharpness_rho=None, robustness=True)
    rep = compute_flatness(fs, cached_only=cached_only)
    if rep is None or not rep.robustness or not rep.robustness.get("acc_mean"):
        return math.nan
    acc = [float(a) for a in rep.robustness["acc_mean"]]
    return (acc[0] - float(np.mean(acc[1:]))) / acc[0] if acc[0] > 0 and len(acc) > 1 else math.nan


# --------------------------------------------------------------------------------------------------------------------
# Numbers of a study (study: core.studies.generalization.StudyResult)


def runs_with(study) -> list:
    return [r for r in study.runs if getattr(r, "stability", None)]


def stability_by_seed(study, kind: str, budget: int | None, key: str) -> dict[int, float]:
    """seed -> one stability number of a (kind, budget)."""
    return {
        r.seed: float(r.stability.get(key, math.nan)) for r in runs_with(study) if r.kind == kind and r.budget == budget
    }


def _error_sums(st: dict) -> dict[str, float]:
    return {n: float(sum(1.0 - a for a in accs)) for n, accs in st["acc"].items()}


def mce_by_seed(study, kind: str, budget: int | None) -> dict[int, float]:
    """seed -> corruption error relative to scratch of the same budget and seed (mCE-style; NaN without scratch)."""
    runs = {(r.kind, r.seed): r for r in runs_with(study) if r.budget == budget}
    out = {}
    for (k, seed), r in runs.items():
        if k != kind or ("scratch", seed) not in runs:
            continue
        mine, base = _error_sums(r.stability), _error_sums(runs["scratch", seed].stability)
        ratios = [mine[n] / base[n] for n in mine if n in base and base[n] > 0]
        out[seed] = float(np.mean(ratios)) if ratios else math.nan
    return out


def primary_drops(study) -> dict[str, dict[int, float]]:
    """kind -> seed -> relative drop at the primary budget (what `core.report.stability_text` judges)."""
    b = primary_budget(study.spec.budgets)
    return {k: stability_by_seed(study, k, b, "relative_drop") for k in KINDS}


def curve_series(study, budget: int | None, names: Sequence[str] = CORRUPTION_NAMES) -> dict[str, dict]:
    """Model label -> {"kind", "curves": corruption -> {"mean", "std", "n"} over severities 0..5} at one budget,
    over the seeds measured (severity 0: the clean accuracy)."""
    out = {}
    for kind in KINDS:
        runs = [r for r in runs_with(study) if r.kind == kind and r.budget == budget]
        if not runs:
            continue
        curves = {}
        for n in names:
            cols = [[float(r.stability["clean_acc"])] + [float(a) for a in r.stability["acc"].get(n, [])] for r in runs]
            cols = [c for c in cols if len(c) == 1 + len(SEVERITIES)]
            if not cols:
                continue
            stats = [mean_std([c[i] for c in cols]) for i in range(1 + len(SEVERITIES))]
            curves[n] = {"mean": [m for m, _, _ in stats], "std": [s for _, s, _ in stats], "n": [k for *_, k in stats]}
        out[LABEL[kind]] = {"kind": kind, "curves": curves}
    return out


def corruption_units() -> dict[str, str]:
    return {n: f"{c.unit}: {' '.join(f'{v:g}' for v in c.levels)}" for n, c in CORRUPTIONS.items()}


def stability_lines(study) -> list[str]:
    """The study table's stability part: accuracy kept under corruptions per budget and kind (mean ± std)."""
    if not runs_with(study):
        return []
    head = f"{'labels/class':>12} | " + " | ".join(f"{LABEL[k]:>17}" for k in KINDS)
    lines = ["", "share of the clean accuracy kept under input corruptions (1 - relative drop)", head]
    for b in study.spec.budgets:
        cells = []
        for k in KINDS:
            v = [1.0 - x for x in stability_by_seed(study, k, b, "relative_drop").values()]
            cells.append(f"{format_mean_std(v, '.3f'):>17}")
        lines.append(f"{budget_text(b):>12} | " + " | ".join(cells))
    claim = stability_claim(study)
    if claim is not None:
        j = claim.judgement
        lines.append(f"stability at {budget_text(primary_budget(study.spec.budgets))} labels/class: {j.verdict}")
    return lines


# --------------------------------------------------------------------------------------------------------------------
# Claims


def stability_claim(study, figures: tuple[tuple[str, str], ...] = ()) -> Claim | None:
    """'Pre-trained then fine-tuned models keep more of their accuracy under input corruptions than the same ViT from
    scratch' (None when no run has stability numbers)."""
    if not runs_with(study):
        return None
    budgets = study.spec.budgets
    pb = primary_budget(budgets)
    pairs = stability_pairs(primary_drops(study))
    tables = []
    for kind in ("mae", "rcmae"):
        rows = []
        if kind in pairs:
            a, s, seeds = pairs[kind]
            rows.append(
                Row(
                    f"relative accuracy drop under corruptions, {budget_text(pb)} labels/class",
                    a, s, "lower", True, ".3f", "accuracy", seeds, f"{LABEL[kind]} vs scratch",
                )
            )  # fmt: skip
        for b in budgets:
            for key, title, better in (
                ("relative_drop", "relative accuracy drop", "lower"),
                ("mean_acc", "mean corruption accuracy", "higher"),
            ):
                if b == pb and key == "relative_drop" and kind in pairs:
                    continue  # the primary row above
                mine, base = stability_by_seed(study, kind, b, key), stability_by_seed(study, "scratch", b, key)
                seeds = tuple(sorted(set(mine) | set(base)))
                rows.append(
                    Row(
                        f"{title}, {budget_text(b)} labels/class",
                        tuple(mine.get(x, math.nan) for x in seeds),
                        tuple(base.get(x, math.nan) for x in seeds),
                        better, False, ".3f", "accuracy", seeds,
                    )
                )  # fmt: skip
            mce = mce_by_seed(study, kind, b)
            seeds = tuple(sorted(mce))
            rows.append(
                Row(
                    f"corruption error relative to scratch (mCE-style), {budget_text(b)} labels/class",
                    tuple(mce[x] for x in seeds), tuple(1.0 for _ in seeds), "lower", False, ".3f", "ratio", seeds,
                )
            )  # fmt: skip
        tables.append(
            Table(
                f"{LABEL[kind]} vs scratch under input corruptions",
                LABEL[kind],
                "scratch",
                tuple(rows),
                note="Relative drop: (clean - mean corrupted accuracy) / clean, over every corruption and severity. "
                "mCE-style: per corruption the error summed over severities divided by scratch's of the same budget "
                "and seed, then the mean over corruptions (scratch = 1).",
            )
        )
    text = _kept_table(study) + "\n\n" + _suite_text() + "\n\n" + _per_corruption_table(study, pb)
    return Claim(
        title="Stability: pre-trained then fine-tuned models keep more of their accuracy under input corruptions",
        statement=(
            "The seed's chain says a flat loss landscape makes a model stable in operation. Measured directly: a ViT "
            "pre-trained as MAE / RC-MAE and fine-tuned keeps a larger share of its accuracy when its inputs are "
            "degraded (noise, blur, shifts, rotations, contrast, brightness, occlusion) than the same ViT "
            "trained from scratch on the same labels."
        ),
        tables=tuple(tables),
        text=text,
        figures=figures,
        primary_reason=STABILITY_PRIMARY,
    )


def _kept_table(study) -> str:
    lines = [
        "Share of the clean accuracy kept under the corruption suite (1 - relative drop; mean ± std over seeds):",
        "",
        "| labels / class | " + " | ".join(LABEL[k] for k in KINDS) + " |",
        "|---|" + "---|" * len(KINDS),
    ]
    for b in study.spec.budgets:
        cells = [
            format_mean_std([1 - x for x in stability_by_seed(study, k, b, "relative_drop").values()], ".3f")
            for k in KINDS
        ]
        lines.append(f"| {budget_text(b)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _suite_text() -> str:
    lines = [
        f"The suite (`core.measure.corruptions`), applied in pixel space before the model's normalization to up to "
        f"{STABILITY_SAMPLES} validation images (seed k's images and random draws for every model of seed k):",
        "",
        "| corruption | unit | severity 1..5 |",
        "|---|---|---|",
    ]
    for n, c in CORRUPTIONS.items():
        lines.append(f"| {n} | {c.unit} | {', '.join(f'{v:g}' for v in c.levels)} |")
    return "\n".join(lines)


def _per_corruption_table(study, budget: int | None) -> str:
    series = curve_series(study, budget)
    if not series:
        return ""
    lines = [
        f"Accuracy per corruption at {budget_text(budget)} labels/class, mean over severities 1..5 and seeds "
        "(clean first):",
        "",
        "| model | clean | " + " | ".join(CORRUPTION_NAMES) + " |",
        "|---|---|" + "---|" * len(CORRUPTION_NAMES),
    ]
    for label, s in series.items():
        curves = s["curves"]
        clean = next(iter(curves.values()))["mean"][0] if curves else math.nan
        cells = [f"{np.nanmean(curves[n]['mean'][1:]):.3f}" if n in curves else "n/a" for n in CORRUPTION_NAMES]
        lines.append(f"| {label} | {clean:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def predictor_rows(study) -> list[dict]:
    """{"name", "x", "y", "budgets", "kinds"} per flatness number (and split) against the relative drop, over every
    run that has both."""
    runs = runs_with(study)
    out = []
    for split in ("labeled", "val"):
        for num, num_name in FLAT_NUMBERS.items():
            pts = [r for r in runs if math.isfinite(float((r.flatness.get(split) or {}).get(num, math.nan)))]
            if len(pts) < 3:
                continue
            out.append(
                {
                    "name": f"{num_name} ({SPLIT_NAME[split]}) vs relative drop under corruptions",
                    "x": [float(r.flatness[split][num]) for r in pts],
                    "y": [float(r.stability["relative_drop"]) for r in pts],
                    "budgets": [r.budget for r in pts],
                    "kinds": [r.kind for r in pts],
                }
            )
    pts = [r for r in runs if math.isfinite(float(r.stability.get(WEIGHT_NOISE, math.nan)))]
    if len(pts) >= 3:
        out.append(
            {
                "name": "accuracy drop under weight noise (relative) vs relative drop under corruptions",
                "x": [float(r.stability[WEIGHT_NOISE]) for r in pts],
                "y": [float(r.stability["relative_drop"]) for r in pts],
                "budgets": [r.budget for r in pts],
                "kinds": [r.kind for r in pts],
            }
        )
    return out


def _clusters_text(study, rows: list[dict]) -> str:
    """What clusters the points: the relative drop by budget and by model kind, and each correlation within one
    budget (shown, not deciding)."""
    runs = runs_with(study)
    parts = []
    by_b = []
    for b in study.spec.budgets:
        v = [float(r.stability["relative_drop"]) for r in runs if r.budget == b]
        if v:
            by_b.append(f"{budget_text(b)}/class {np.mean(v):.3f}")
    by_k = []
    for k in KINDS:
        v = [float(r.stability["relative_drop"]) for r in runs if r.kind == k]
        if v:
            by_k.append(f"{LABEL[k]} {np.mean(v):.3f}")
    parts.append(f"Mean relative drop by budget: {', '.join(by_b)}; by model kind: {', '.join(by_k)}.")
    within = []
    pb = primary_budget(study.spec.budgets)
    for row in rows:
        keep = [i for i, b in enumerate(row["budgets"]) if b == pb]
        if len(keep) >= 3:
            c = correlation("", [row["x"][i] for i in keep], [row["y"][i] for i in keep], 1, n_perm=2000)
            if math.isfinite(c.spearman):
                within.append(f"{row['name'].split(' vs ')[0]}: rho {c.spearman:+.2f} (p {c.p:.2g}, n = {c.n})")
    if within:
        parts.append(
            f"Within the {budget_text(pb)}-labels/class budget alone (shown, not deciding): " + "; ".join(within) + "."
        )
    return " ".join(parts)


def flatness_stability_claim(study) -> Claim | None:
    """'A flatter model keeps more of its accuracy under input corruptions' over every fine-tuned and scratch run
    (None without flatness and stability numbers)."""
    rows = predictor_rows(study)
    if not rows:
        return None
    n = max(len(r["x"]) for r in rows)
    return Claim(
        title="Follow-up: flatness predicts stability under input corruptions",
        statement=(
            "The seed's chain, link by link: a flatter model (smaller Hessian top eigenvalue, trace or average "
            "sharpness of its supervised loss, or a smaller accuracy drop under weight noise) should lose a smaller "
            "share of its accuracy when its inputs are corrupted."
        ),
        correlations=tuple(CorrelationRow(r["name"], tuple(r["x"]), tuple(r["y"]), 1) for r in rows),
        correlation_title="Correlation with the relative drop under input corruptions",
        text=(
            f"Each point is one model (MAE-FT, RC-MAE-FT, scratch) at one budget and seed: up to n = {n}. Expected "
            "sign +: a sharper model (larger number) loses more. The flatness numbers are the premise follow-up's "
            "(supervised loss over the labeled subset and over validation images); the weight-noise drop is "
            "(clean - mean accuracy over relative weight-noise sizes 0.05-0.3) / clean over the same validation "
            "images. The points cluster by budget (few labels: lower accuracy, other curvature) and by model kind, "
            "so a correlation over every run can reflect the budget or the kind rather than flatness. "
            + _clusters_text(study, rows)
        ),
    )


def stability_figures(study, folder: Path, link_prefix: str) -> tuple[tuple[str, str], ...]:
    """Accuracy vs severity per corruption at the primary budget, every seed (mean ± 1 std)."""
    pb = primary_budget(study.spec.budgets)
    series = curve_series(study, pb)
    if not series:
        return ()
    seeds = len({r.seed for r in runs_with(study)})
    fig = plot_corruption_curves(
        series,
        (0, *SEVERITIES),
        corruption_units(),
        f"Accuracy under input corruptions, {budget_text(pb)} labels per class",
        caption=f"{seeds} seeds, mean ± 1 std; up to {STABILITY_SAMPLES} validation images, corrupted in pixel space",
    )
    return (
        (
            f"Accuracy vs severity per corruption at {budget_text(pb)} labels/class, every seed",
            link_prefix + write_figure(fig, folder, "stability_curves"),
        ),
    )


def stability_claims(study, out_dir: Path | None = None) -> tuple[Claim, ...]:
    """The stability claim (with its figure when `out_dir`) and its flatness follow-up, those that can be made."""
    claim = stability_claim(study)
    if claim is None:
        return ()
    if out_dir is not None:
        claim = replace(claim, figures=stability_figures(study, Path(out_dir) / "figures", "figures/"))
    follow = flatness_stability_claim(study)
    return (claim, *((follow,) if follow is not None else ()))


def to_dict(study) -> dict:
    """JSON-able: the primary verdict and the kept share per (budget, kind)."""
    claim = stability_claim(study)
    if claim is None:
        return {}
    j = claim.judgement
    kept = {
        budget_text(b): {
            k: mean_std([1 - x for x in stability_by_seed(study, k, b, "relative_drop").values()])[:2] for k in KINDS
        }
        for b in study.spec.budgets
    }
    return {
        "primary_budget": budget_text(primary_budget(study.spec.budgets)),
        "verdict": j.verdict,
        "n": j.n,
        "seeds_needed": j.seeds_needed,
        "estimates": {
            x.estimate.name: {"difference": e.estimate, "ci95": [e.lo, e.hi], "p_holm": x.p_adjusted}
            for x in j.judged
            if (e := x.estimate) is not None
        },
        "kept_mean_std": kept,
    }
