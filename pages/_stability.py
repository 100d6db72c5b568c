"""The "Stability under corruptions" section of the Generalization page and the Flatness page's proxy-vs-real
comparison (private page helpers).

What is cached shows at once (a lookup job reads the cached numbers of the study's runs; nothing is recomputed);
measuring the rest runs in the shared background jobs (`core.app.stability_tasks`).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd
import streamlit as st

from core.app import (
    cached_study,
    gallery_of,
    input_kept,
    input_robustness_task,
    level_texts,
    stability_lookup_task,
    stability_task,
    stability_unknown,
    task_key,
    with_stability,
)
from core.errors import LandscapeError
from core.report import (
    format_mean_std,
    msg,
    plot_corruption_curves,
    plot_gallery,
    plot_proxy_vs_inputs,
    primary_budget,
    stability_verdict,
)
from core.studies import (
    KINDS,
    LABEL,
    STABILITY_SAMPLES,
    corruption_units,
    curve_series,
    runs_with,
    stability_by_seed,
)
from pages._ui import chart, error_box, registry, status_line, submit, tr, watch

VERDICT_KEY = {
    "reproduced": "gen.v_reproduced",
    "contradicted": "gen.v_contradicted",
    "no meaningful difference": "gen.v_no_difference",
    "undetermined": "gen.v_undetermined",
}


def _budget_text(b) -> str:
    return tr("gen.budget_all") if b is None else str(b)


def kept_table(result) -> pd.DataFrame:
    rows = []
    for b in result.spec.budgets:
        if not any(r.budget == b for r in runs_with(result)):
            continue
        row = {tr("stab.col_budget"): _budget_text(b)}
        for k in KINDS:
            row[LABEL[k]] = format_mean_std(
                [1 - x for x in stability_by_seed(result, k, b, "relative_drop").values()], ".3f"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def show_stability(spec) -> None:
    """The section for the page's study `spec` (a `core.studies.StudySpec`)."""
    st.header(tr("stab.header"))
    st.caption(tr("stab.intro"))
    try:
        base = cached_study(spec)
    except LandscapeError as e:
        error_box(e)
        return
    if not base.runs:
        st.info(tr("stab.no_runs"))
        return
    unknown = stability_unknown(base)
    if unknown:
        key = task_key("stab-lookup", asdict(spec), sorted(unknown))
        submit(key, msg("label.stab_lookup"), stability_lookup_task(spec))
        st.caption(tr("stab.looking_up", n=len(unknown)))
        watch(key, lambda j: None)
    run_key = task_key("stability", asdict(spec))
    if st.button(tr("stab.go"), key="stab.go"):
        submit(run_key, msg("label.stab_run", n=len(base.runs)), stability_task(spec))
    job = registry().get(run_key)
    if job is not None and job.active:
        watch(run_key, lambda j: None)
    result = with_stability(base)
    measured = runs_with(result)
    st.caption(tr("stab.progress", n=len(measured), total=len(base.runs)))
    if not measured:
        st.info(tr("stab.none", n=len(base.runs)))
    else:
        budgets = [b for b in spec.budgets if any(r.budget == b for r in measured)]
        pb = primary_budget(spec.budgets)
        default = budgets.index(pb) if pb in budgets else 0
        pick = st.selectbox(tr("stab.budget"), budgets, index=default, format_func=_budget_text, key="stab.budget")
        fig = plot_corruption_curves(
            curve_series(result, pick),
            list(range(6)),
            corruption_units(),
            tr("stab.curves_title", n=_budget_text(pick)),
            caption=tr("stab.curves_caption", images=measured[0].stability.get("n_images", STABILITY_SAMPLES)),
        )
        chart(fig, "stab-curves")
        st.caption(tr("stab.kept"))
        st.dataframe(kept_table(result), width="stretch", hide_index=True)
        if pb in budgets:
            drops = {k: stability_by_seed(result, k, pb, "relative_drop") for k in KINDS}
            v = stability_verdict(drops)
            text = tr(VERDICT_KEY[v.verdict])
            if v.verdict == "undetermined" and v.seeds_needed:
                text += f" (~{v.seeds_needed} {tr('gen.col_seeds')})"
            st.markdown(tr("stab.verdict", n=_budget_text(pb), verdict=text))
    show_gallery(spec)


def show_gallery(spec) -> None:
    st.subheader(tr("stab.gallery"))
    index = st.number_input(tr("stab.image"), 0, 10_000, 0, key="stab.image")
    try:
        images = gallery_of(spec, int(index), seed=0)
    except LandscapeError as e:
        error_box(e)
        return
    size = next(iter(images.values()))[0].shape[-1]
    st.caption(tr("stab.gallery_help", size=size))
    fig = plot_gallery(images, list(range(6)), level_texts(), tr("stab.gallery"))
    chart(fig, "stab-gallery")


# ----------------------------------------------------------------------------------------------------------------------
# The Flatness page


def _weight_kept(rob: dict | None) -> float | None:
    acc = list((rob or {}).get("acc_mean") or [])
    if len(acc) < 2 or not acc[0]:
        return None
    v = float(np.mean(acc[1:])) / float(acc[0])
    return v if math.isfinite(v) else None


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_kept(path: str, seed: int, stamp: float) -> float | None:
    try:
        return input_kept(path, seed)
    except LandscapeError:
        return None


def show_proxy_vs_inputs(batch) -> None:
    """Beside the weight-noise curves of a flatness batch: the accuracy kept under input corruptions by the same
    classifier, where cached (a button computes the rest in the background)."""
    reports = {k: r for k, r in batch.reports.items() if r.robustness}
    if not reports:
        return
    st.subheader(tr("stab.proxy_header"))
    st.caption(tr("stab.proxy_help"))
    paths = {label: batch.specs[label].checkpoint for label in reports if label in batch.specs}
    key = task_key("stab-models", paths)
    job = registry().get(key)
    stamp = job.finished if job is not None and not job.active and job.finished else 0.0
    rows = []
    for label, r in reports.items():
        spec = batch.specs.get(label)
        kept = _cached_kept(spec.checkpoint, int(spec.seed), float(stamp)) if spec is not None else None
        rows.append({"label": label, "weight_kept": _weight_kept(r.robustness), "input_kept": kept})
    if st.button(tr("stab.proxy_go"), key="stab.proxy_go"):
        submit(key, msg("label.stab_models"), input_robustness_task(paths, int(next(iter(batch.specs.values())).seed)))
    if registry().get(key) is not None:
        status_line(registry().get(key))  # no polling fragment here: this runs inside the flatness job's fragment
    if not any(r["input_kept"] is not None for r in rows):
        st.info(tr("stab.proxy_none"))
        return
    fig = plot_proxy_vs_inputs(rows, tr("stab.proxy_header"), caption=tr("stab.proxy_caption"))
    chart(fig, "stab-proxy")
