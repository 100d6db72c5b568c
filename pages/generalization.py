"""Generalization: fine-tuned MAE / RC-MAE against the same ViT trained from scratch on the same few labels.

Label efficiency (validation accuracy vs labels per class), the generalization gap per budget with a verdict per
budget, fine-tuned vs from-scratch landscapes side by side on the same directions, and flatness against the gap over
every cached run. What is cached shows at once (`core.app.generalization_tasks.cached_study`, no model built); the study
runs on demand in the shared background jobs (deduplicated by its spec across sessions, cached per run).
"""

from __future__ import annotations

from dataclasses import asdict, replace

import pandas as pd
import streamlit as st

from core.app import (
    DEFAULT_SEEDS,
    cached_study,
    dashboard_profile,
    dashboard_study,
    flatness_lookup_task,
    flatness_unknown,
    gap_points,
    generalization_task,
    landscape_specs,
    study_label,
    surfaces_task,
    task_key,
    wide_study,
)
from core.errors import LandscapeError
from core.report import (
    PREMISE_LABEL,
    claim_verdict,
    estimate_cell,
    format_mean_std,
    msg,
    plot_flatness_vs_gap,
    plot_gap,
    plot_label_efficiency,
    plot_surfaces,
)
from core.studies import KINDS, budget_label, study_series
from pages._roi import show_roi
from pages._stability import show_stability
from pages._ui import (
    LONG_JOB_SECONDS,
    chart,
    error_box,
    labeller,
    panels_of,
    registry,
    submit,
    tr,
    watch,
)

st.title(tr("gen.title"))
st.caption(tr("gen.intro"))
st.info(tr("gen.setting"))

profile = dashboard_profile()
base = dashboard_study(profile)
ALL = [budget_label(b) for b in base.budgets]


def budget_of(label: str) -> int | None:
    return None if label == "all" else int(label)


def budget_text(label: str) -> str:
    return tr("gen.budget_all") if label == "all" else label


with st.form("gen-form"):
    c1, c2, c3 = st.columns([3, 1, 2])
    picked = c1.multiselect(tr("gen.budgets"), ALL, default=ALL, format_func=budget_text, key="gen.budgets")
    seeds = c2.number_input(tr("gen.seeds"), 1, 10, DEFAULT_SEEDS, help=tr("gen.seeds_help"), key="gen.seeds")
    with_flat = c3.checkbox(tr("gen.flatness"), value=False, help=tr("gen.flatness_help"), key="gen.flat")
    go = st.form_submit_button(tr("gen.go"), type="primary")

if not picked:
    st.warning(tr("gen.need_budget"))
    st.stop()
spec = replace(
    base,
    budgets=tuple(budget_of(b) for b in ALL if b in picked),
    seeds=int(seeds),
    flatness=bool(with_flat),
)
job_key = task_key("generalization", asdict(spec))
if go:
    submit(job_key, study_label(spec), generalization_task(spec))


def regime_text(result) -> str:
    f = result.facts or {}
    return tr(
        "gen.regime",
        data=f.get("data", spec.data),
        n_train=f.get("n_train", "?"),
        n_val=f.get("n_val", "?"),
        classes=f.get("num_classes", "?"),
        preset=f.get("preset", spec.preset),
        steps=f.get("steps", spec.finetune.steps),
        epochs=f.get("epochs", spec.finetune.epochs),
        per=f.get("steps_per_epoch", spec.finetune.steps_per_epoch),
        batch=f.get("batch_size", spec.finetune.batch_size),
        pre=f.get("pretrain_epochs", spec.pretrain_epochs),
        seeds=", ".join(str(s) for s in f.get("seeds", [])) or "-",
    )


# core.report.verdicts' readings and claim verdicts -> the page's words
VERDICT_KEY = {
    "reproduced": "gen.v_reproduced",
    "contradicted": "gen.v_contradicted",
    "no meaningful difference": "gen.v_no_difference",
    "undetermined": "gen.v_undetermined",
}
READING_KEY = {
    "supports": "gen.r_supports",
    "contradicts": "gen.r_contradicts",
    "no meaningful difference": "gen.r_no_difference",
    "undetermined": "gen.r_undetermined",
}


def _verdict_row(label: str, verdict) -> dict:
    """One row: per pre-trained kind the paired estimate and its reading after Holm, then the verdict."""
    row = {tr("gen.col_budget"): label}
    by_name = {j.estimate.name: j for j in verdict.judged}
    for kind in ("mae", "rcmae"):
        j = by_name.get(PREMISE_LABEL[kind])
        row[tr(f"gen.col_{kind}")] = f"{estimate_cell(j.estimate)} → {tr(READING_KEY[j.reading])}" if j else "—"
    text = tr(VERDICT_KEY[verdict.verdict])
    if verdict.verdict == "undetermined" and verdict.seeds_needed:
        text += f" (~{verdict.seeds_needed} {tr('gen.col_seeds')})"
    row[tr("gen.col_verdict")] = text
    row[tr("gen.col_seeds")] = verdict.n
    return row


def verdict_table(result) -> pd.DataFrame:
    rows = []
    for b in result.spec.budgets:
        if any(r.budget == b for r in result.runs):
            rows.append(_verdict_row(budget_text(budget_label(b)), claim_verdict(result.budget_estimates(b))))
    if rows:
        rows.append(_verdict_row(tr("gen.mean_budgets"), result.premise()))
    return pd.DataFrame(rows)


def numbers_table(result) -> pd.DataFrame:
    rows = {}
    for b in result.spec.budgets:
        if not any(r.budget == b for r in result.runs):
            continue
        row = {}
        for kind in KINDS:
            for metric in ("val_acc", "gap_acc"):
                name = f"{tr('gen.kind.' + kind)}: {tr('metric.val_acc') if metric == 'val_acc' else tr('gen.gap_acc')}"
                row[name] = format_mean_std(result.values(kind, b, metric), ".3f")
        rows[budget_text(budget_label(b))] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def show_study(result) -> None:
    total = spec.seeds * len(spec.budgets) * len(KINDS)
    st.caption(tr("gen.progress", n=len(result.runs), total=total))
    if not result.runs:
        st.info(tr("gen.none_yet", total=total, seconds=10 if profile.name == "full" else 1))
        return
    regime = regime_text(result)
    st.subheader(tr("gen.eff_header"))
    series = study_series(result, "val_acc", tr("gen.budget_all"))
    fig = plot_label_efficiency(series, title=tr("gen.eff_title"), caption=regime)
    chart(fig, "gen-efficiency")
    st.caption(tr("gen.table"))
    st.dataframe(numbers_table(result), width="stretch")
    st.subheader(tr("gen.verdicts"))
    st.caption(regime)
    st.caption(tr("gen.verdicts_help"))
    st.dataframe(verdict_table(result), width="stretch", hide_index=True)
    st.subheader(tr("gen.gap_header"))
    gap = st.radio(
        tr("gen.gap_metric"), ["gap_acc", "gap_loss"], format_func=labeller("gen."), horizontal=True, key="gen.gap"
    )
    fig = plot_gap(study_series(result, gap, tr("gen.budget_all")), gap, title=tr("gen.gap_header"), caption=regime)
    chart(fig, "gen-gap")


job = registry().get(job_key)
if job is not None and job.active:
    watch(job_key, lambda j: show_study(j.partial if j.partial is not None else cached_study(spec)))
else:
    if job is not None and job.status == "failed":
        error_box(f"{tr('gen.go')}: {job.error}")
    try:
        result = cached_study(spec)
    except LandscapeError as e:
        error_box(e)
        st.stop()
    show_study(result)

# ----------------------------------------------------------------------------------------------------------------------
# Fine-tuned vs from scratch on the same directions
st.header(tr("gen.land_header"))
st.caption(tr("gen.land_help"))
try:
    now = cached_study(spec)
except LandscapeError as e:
    error_box(e)
    st.stop()
full_cells = sorted(
    {
        (r.budget, r.seed)
        for r in now.runs
        if all(any(o.kind == k and o.budget == r.budget and o.seed == r.seed for o in now.runs) for k in KINDS)
    },
    key=lambda c: (float("inf") if c[0] is None else c[0], c[1]),
)
if not full_cells:
    st.info(tr("gen.land_need"))
else:
    surf = profile.surface
    with st.form("gen-land-form"):
        c1, c2, c3, c4 = st.columns(4)
        budgets_ok = list(dict.fromkeys(budget_label(b) for b, _ in full_cells))
        land_budget = c1.selectbox(tr("gen.land_budget"), budgets_ok, format_func=budget_text, key="gen.land_budget")
        seeds_ok = sorted({s for _, s in full_cells})  # a pair without all three models gets a one-line error
        land_seed = c2.selectbox(tr("gen.land_seed"), seeds_ok, key="gen.land_seed")
        split = c3.radio(
            tr("gen.land_split"), ["labeled", "val"], format_func=labeller("arg.split."), key="gen.land_split"
        )
        grids = sorted({5, 9, 17, int(surf["grid"])})
        grid = c4.select_slider(tr("field.grid"), grids, value=int(surf["grid"]), key="gen.land_grid")
        land_go = st.form_submit_button(tr("gen.land_go"))
    if land_go:
        try:
            specs = landscape_specs(
                now,
                budget_of(land_budget),
                int(land_seed),
                split,
                grid=int(grid),
                span=float(surf["span"]),
                samples=int(surf["samples"]),
            )
        except LandscapeError as e:
            error_box(e)
        else:
            key = task_key("surfaces", [asdict(s) for s in specs.values()], list(specs), LONG_JOB_SECONDS)
            submit(key, msg("label.gen_surfaces"), surfaces_task(specs, max_seconds=LONG_JOB_SECONDS))
            st.session_state["gen.land_job"] = key

    def render_land(j) -> None:
        batch = j.result if j.ok else j.partial
        if batch is None:
            return
        for label, err in batch.errors.items():
            error_box(f"{label}: {err}")
        panels = panels_of(batch)
        if panels:
            try:
                fig = plot_surfaces(panels, view="contour", relative=True, title=tr("gen.land_header"))
            except LandscapeError as e:
                error_box(e)
                return
            chart(fig, "gen-land")

    if "gen.land_job" in st.session_state:
        watch(st.session_state["gen.land_job"], render_land)

show_stability(spec)  # "Stability under corruptions" (pages/_stability.py)

# ----------------------------------------------------------------------------------------------------------------------
# Flatness against the generalization gap over every cached run of this recipe
st.header(tr("gen.scatter_header"))
st.caption(tr("gen.scatter_help"))
try:
    every = cached_study(wide_study(spec))
    unknown = flatness_unknown(every.spec, every)
except LandscapeError as e:
    error_box(e)
    st.stop()
if unknown:
    lookup_key = task_key("gen-flat-lookup", asdict(every.spec), sorted(unknown))
    submit(lookup_key, msg("label.gen_lookup"), flatness_lookup_task(every.spec, unknown), light=True)
    st.caption(tr("gen.looking_up", n=len(unknown)))
    watch(lookup_key, lambda j: None)
if not any(r.flatness for r in every.runs):
    st.info(tr("gen.no_flat"))
else:
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1])
    number = c1.radio(
        tr("gen.scatter_x"), ["lambda_max", "trace", "sharpness"], format_func=labeller("gen.num_"), key="gen.sc_x"
    )
    fsplit = c2.radio(
        tr("gen.scatter_split"), ["labeled", "val"], format_func=labeller("arg.split."), key="gen.sc_split"
    )
    gap_y = c3.radio(tr("gen.scatter_y"), ["gap_acc", "gap_loss"], format_func=labeller("gen."), key="gen.sc_y")
    log_x = c4.toggle(tr("field.log_x"), value=False, key="gen.sc_log")
    points, stat = gap_points(every, number, fsplit, gap_y)
    fs = every.spec
    x_name = f"{tr('gen.num_' + number)} ({tr('arg.split.' + fsplit)})"
    cap = (
        tr("gen.flat_caption", samples=fs.flat_samples, iters=fs.flat_iter, probes=fs.flat_probes, seed=fs.flat_seed)
        + " "
        + regime_text(every)
    )
    fig = plot_flatness_vs_gap(
        points, x_name, tr("gen." + gap_y), stat, title=tr("gen.scatter_header"), log_x=log_x, caption=cap
    )
    chart(fig, "gen-scatter")

show_roi(profile)  # how much pre-training pays: the pre-training-length ladder (pages/_roi.py)
