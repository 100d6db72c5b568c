"""The pre-training ladder's report: the markdown section (tables, "where the curve flattens", the plateau rung),
its JSON, its figure file, and the section `python -m core reproduce` adds to docs/FINDINGS.md.

`reproduce` does not run the ladder (8 seeds x 3 rungs take longer than the report's hour): it reads what the cache
holds for the report's data, models and seeds (`cached_only`) and says how to complete it (`python -m core roi`);
`--quick` runs the micro ladder (seconds).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from core.models import SETTING_NOTE
from core.paths import cache_root
from core.report import estimate_cell, format_mean_std, plot_roi, rule_text
from core.store import atomic_write_bytes, content_hash
from core.studies.figures import write_figure
from core.studies.generalization import LABEL, budget_label
from core.studies.measuring import LogFn, ReproduceSpec, RunResults
from core.studies.roi import PLATEAU_RULE, PRETRAINED, RoiResult, RoiSpec, jobs_of, quick_roi, run_roi

ROI_TITLE = "How much pre-training pays: the pre-training-length ladder"


def _num(v) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(float(v)) else None


def _human(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _flops(v: float) -> str:
    if not math.isfinite(v):
        return "n/a"
    for unit, k in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9)):
        if v >= k:
            return f"{v / k:.3g} {unit}"
    return f"{v:.3g} FLOP"


def flattening_text(r: RoiResult, kind: str, budget) -> str:
    """Where the gain curve of `kind` at `budget` flattens, in words, from `RoiResult.flattens`."""
    rung, how = r.flattens(kind, budget)
    name = f"{LABEL[kind]}, {budget_label(budget)} labels/class"
    if len(r.rungs) < 2:
        return f"{name}: one rung measured, no curve yet"
    steps = "; ".join(
        f"{lo} → {hi}: {estimate_cell(r.step(kind, lo, hi, budget))} ({r.step(kind, lo, hi, budget).reading})"
        for lo, hi in zip(r.rungs, r.rungs[1:], strict=False)
    )
    if how == "still rising":
        head = f"still rising at the top rung ({rung} epochs)"
    elif how == "undetermined":
        head = "undetermined (a step between rungs is not decided)"
    elif how == "falls after":
        head = f"falls after {rung} epochs"
    else:
        head = f"flattens after {rung} epochs"
    return f"{name}: {head}. Steps (fine-tuned accuracy, paired by seed; scratch cancels): {steps}"


def roi_markdown(r: RoiResult, figures: tuple[tuple[str, str], ...] = ()) -> str:
    """The section's markdown: setting, cost table, gain tables per budget, flatness table, the readings."""
    s = r.spec
    seeds = r.seeds()
    done, total = len(r.cells), len(jobs_of(s))
    ft = s.finetune
    out = [
        f"Pre-training lengths {', '.join(map(str, s.pretrain_epochs))} epochs for MAE and RC-MAE on `{s.data}` "
        f"(preset `{s.preset}`), {len(seeds)} seed(s); {done} of {total} (rung, seed) jobs measured. Each rung is a "
        "complete run of its length (its own cosine schedule), cached by its config. At each rung: MAE-FT and "
        "RC-MAE-FT (its EMA teacher) against the same ViT from scratch on the same labeled images, "
        f"{ft.steps} fine-tuning steps and recipe (paired by seed; the same scratch run serves every rung); "
        '"scratch, equal steps": the same ViT from scratch given as many optimizer steps on the labeled subset as '
        "pre-training plus fine-tuning took; claim 1's primary number (basin width of the model's own objective, "
        f"{s.surface.rel_threshold:.0%} of the centre loss, on claim 1's slice of seed k). {SETTING_NOTE}.",
        "",
        f"Plateau rule: {PLATEAU_RULE}.",
        "",
    ]
    if not r.cells:
        out.append("Nothing measured yet.")
        return "\n".join(out)
    out += [
        "**Cost per rung** (pre-training, per run, mean over seeds; wall-clock and CPU seconds measured on this "
        "machine with one torch thread per job, evaluation included; FLOPs estimated: 3 x forward per training "
        "image, RC-MAE + 1 forward of its teacher, evaluation left out)",
        "",
        "| epochs | MAE wall | MAE CPU | RC-MAE wall | MAE FLOPs | RC-MAE FLOPs | RC-MAE / MAE time per epoch "
        "| evaluations | val-loss improvement over the last 20% (MAE; RC-MAE) | plateau |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in r.rungs:
        mae_wall = [v for v in r.cost("mae", e, "wall_s").values()]
        rc_wall = [v for v in r.cost("rcmae", e, "wall_s").values()]
        cpu = [v for v in r.cost("mae", e, "cpu_s").values() if math.isfinite(v)]
        fl = {k: list(r.cost(k, e, "flops").values()) for k in PRETRAINED}
        ev = list(r.cost("mae", e, "evaluations").values())
        imp = [r.plateau_share(k, e) for k in PRETRAINED]
        reached = all(math.isfinite(i) and i < 0.02 for i, _ in imp)
        out.append(
            f"| {e} | {_human(_mean(mae_wall))} | {_human(_mean(cpu))} | {_human(_mean(rc_wall))} "
            f"| {_flops(_mean(fl['mae']))} | {_flops(_mean(fl['rcmae']))} | {estimate_cell(r.teacher_cost(e))} "
            f"| {_mean(ev):.0f} | {imp[0][0]:+.1%}; {imp[1][0]:+.1%} | {'reached' if reached else 'not reached'} |"
        )
    pr = r.plateau_rung()
    out += ["", f"Plateau rung: {pr} epochs." if pr else "Plateau rung: none of the rungs reaches the plateau."]
    out += [_plateau_vs_gain(r, pr), ""]
    for b in s.budgets:
        control = budget_label(b) in {budget_label(c) for c in s.control_budgets}
        out += [
            f"**{budget_label(b)} labels per class**: validation accuracy (mean ± std over seeds) and the gain over "
            "scratch (paired by seed, points, 95% interval, p, seeds; verdict: both kinds vs scratch, Holm over the "
            "two)",
            "",
            "| epochs | MAE-FT | RC-MAE-FT | scratch | MAE-FT − scratch | RC-MAE-FT − scratch | verdict | RC-MAE-FT − "
            "MAE-FT |"
            + (" scratch, equal steps | MAE-FT − equal steps | RC-MAE-FT − equal steps |" if control else ""),
            "|---|---|---|---|---|---|---|---|" + ("---|---|---|" if control else ""),
        ]
        for e in r.rungs:
            accs = [format_mean_std(tuple(r.acc(k, e, b).values()), ".3f") for k in ("mae", "rcmae", "scratch")]
            row = (
                f"| {e} | {' | '.join(accs)} | {estimate_cell(r.gain('mae', e, b))} | "
                f"{estimate_cell(r.gain('rcmae', e, b))} | {r.gain_verdict(e, b).verdict} | "
                f"{estimate_cell(r.rc_vs_mae(e, b))} |"
            )
            if control:
                row += (
                    f" {format_mean_std(tuple(r.acc('control', e, b).values()), '.3f')} | "
                    f"{estimate_cell(r.gain('mae', e, b, 'control'))} | "
                    f"{estimate_cell(r.gain('rcmae', e, b, 'control'))} |"
                )
            out.append(row)
        out += ["", *[f"- {flattening_text(r, k, b)}." for k in PRETRAINED], ""]
    if s.flatness:
        out += [
            "**Flatness along the ladder** (claim 1's primary number: basin width of each model's own objective; "
            "RC-MAE: its MAE term; against the first rung, paired by seed, log-ratio)",
            "",
            "| epochs | MAE basin width | vs first rung | RC-MAE basin width | vs first rung |",
            "|---|---|---|---|---|",
        ]
        for e in r.rungs:
            cells = []
            for k in PRETRAINED:
                cells.append(format_mean_std(tuple(r.basin(k, e).values()), ".3g"))
                cells.append("—" if e == r.rungs[0] else estimate_cell(r.flatter(k, e)))
            out.append(f"| {e} | {' | '.join(cells)} |")
        out.append("")
    out += [f"Verdict rule: {rule_text()}", ""]
    for caption, link in figures:
        out += [f"![{caption}]({link})", ""]
    return "\n".join(out)


def _mean(v) -> float:
    v = [x for x in v if isinstance(x, int | float) and math.isfinite(x)]
    return float(sum(v) / len(v)) if v else math.nan


def roi_figures(r: RoiResult, folder: Path, link_prefix: str) -> tuple[tuple[str, str], ...]:
    """The ladder's figure (gain over scratch per budget and flatness against pre-training epochs) written to
    `folder`; (caption, link) pairs."""
    if not r.cells:
        return ()
    fig = plot_roi(roi_series(r), caption=f"{len(r.seeds())} seed(s); {SETTING_NOTE}")
    return (
        ("Gain over scratch and flatness against pre-training length", link_prefix + write_figure(fig, folder, "roi")),
    )


def roi_series(r: RoiResult) -> dict:
    """Plain values for `core.report.plot_roi`: gains per (kind, budget) with intervals, basin widths, cost axis."""
    gains = {
        f"{LABEL[k]}, {budget_label(b)} labels/class": {"kind": k, "budget": budget_label(b), **r.series(b, k)}
        for b in r.spec.budgets
        for k in PRETRAINED
    }
    basins = {LABEL[k]: {"kind": k, **r.basin_series(k)} for k in PRETRAINED} if r.spec.flatness else {}
    return {"gains": gains, "basins": basins, "cost": r.cost_axis()}


def to_dict(r: RoiResult) -> dict:
    """JSON-able: the spec, per (rung, budget) the gains, controls and verdicts, costs, basins and every cell."""

    def est(e) -> dict:
        return {"estimate": _num(e.estimate), "ci95": [_num(e.lo), _num(e.hi)], "n": e.n, "reading": e.reading}

    rungs = []
    for e in r.rungs:
        row: dict = {"epochs": e, "teacher_cost": est(r.teacher_cost(e)), "budgets": {}}
        for k in PRETRAINED:
            row[k] = {
                "wall_s": _num(_mean(r.cost(k, e, "wall_s").values())),
                "cpu_s": _num(_mean(r.cost(k, e, "cpu_s").values())),
                "flops": _num(_mean(r.cost(k, e, "flops").values())),
                "plateau_improvement": _num(r.plateau_share(k, e)[0]),
                "basin_width": list(r.basin(k, e).values()),
            }
        for b in r.spec.budgets:
            row["budgets"][budget_label(b)] = {
                "mae": est(r.gain("mae", e, b)),
                "rcmae": est(r.gain("rcmae", e, b)),
                "verdict": r.gain_verdict(e, b).verdict,
                "rcmae_vs_mae": est(r.rc_vs_mae(e, b)),
                "control": {k: est(r.gain(k, e, b, "control")) for k in PRETRAINED},
            }
        rungs.append(row)
    return {"spec": r.spec.key(), "plateau_rung": r.plateau_rung(), "rungs": rungs}


def roi_path(spec: RoiSpec) -> Path:
    """Where the CLI writes the ladder's JSON: `<cache>/roi/roi_<hash of the spec>.json`."""
    return cache_root() / "roi" / f"roi_{'quick_' if spec.quick else ''}{content_hash(spec.key())[:10]}.json"


def write_json(r: RoiResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(to_dict(r), indent=1, default=str).encode())
    return path


def roi_spec_for(rspec: ReproduceSpec) -> RoiSpec:
    """The ladder matching a reproduce run (data, models, seeds, claim 1's slice)."""
    base = quick_roi(seeds=rspec.seeds) if rspec.quick else RoiSpec(seeds=rspec.seeds)
    return replace(base, data=rspec.data, preset=rspec.preset, surface=rspec, device=rspec.device, workers=1)


def add_roi_to_findings(findings, results: RunResults, out_dir: Path, log: LogFn):
    """`core.studies.reproduce`'s extension: the ladder as its own section, from the cache (`--quick`: computed)."""
    spec = roi_spec_for(results.spec)
    r = run_roi(spec, log=log, cached_only=not spec.quick)
    text = roi_markdown(r, roi_figures(r, Path(out_dir) / "figures", "figures/"))
    missing = len(jobs_of(spec)) - len(r.cells)
    if not spec.quick and (missing or not r.cells):
        text = (
            f"This section reads the cache; {missing} of {len(jobs_of(spec))} (rung, seed) jobs are not there yet. "
            f"`python -m core roi --seeds {spec.seeds}` measures them (about 90 min on 2 cores), then rerun "
            "`python -m core reproduce` (it reuses every cached run).\n\n" + text
        )
    return replace(findings, sections=findings.sections + ((ROI_TITLE, text),))


def _plateau_vs_gain(r, pr: int | None) -> str:
    """Whether the plateau rule's rung is where the fine-tuned accuracy stops rising, read from the data (MAE-FT at 10
    labels per class, or the smallest budget); "" when they agree or either is unknown."""
    nums = [b for b in r.spec.budgets if b is not None]
    budget = 10 if 10 in nums or not nums else min(nums)
    rung, how = r.flattens("mae", budget)
    if pr is None or rung is None or how == "undetermined":
        return ""
    stops = rung if how in ("flat after", "falls after") else None
    if stops == pr:
        return ""
    where = f"after {stops} epochs" if stops is not None else f"still rising at the top rung ({rung} epochs)"
    return (
        f"The rule's plateau rung ({pr} epochs) is not where MAE-FT's accuracy with {budget_label(budget)} labels per "
        f"class stops rising ({where}). A within-run plateau of the validation loss, which the cosine schedule's "
        "annealing produces at the end of any run, did not mark where longer pre-training stopped paying here. The "
        "rule stays as declared before measuring; the accuracy steps below are what the data says."
    )
