"""The Generalization page's pre-training ladder section (`show_roi`): what the cache holds at once (figure, table,
plateau rung, where the curve flattens), and the rest of the ladder as a shared background job with progress."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.app import cached_roi, dashboard_roi, roi_label, roi_task, task_key
from core.errors import LandscapeError
from core.report import estimate_cell, plot_roi
from core.studies import PLATEAU_RULE, budget_label, flattening_text, jobs_of, roi_series
from pages._ui import chart, error_box, registry, submit, tr, watch


def _table(r) -> pd.DataFrame:
    rows = []
    for e in r.rungs:
        wall = [v for v in r.cost("mae", e, "wall_s").values()]
        for b in r.spec.budgets:
            rows.append(
                {
                    tr("roi.col_epochs"): e,
                    tr("roi.col_budget"): budget_label(b),
                    tr("roi.col_mae"): estimate_cell(r.gain("mae", e, b)),
                    tr("roi.col_rcmae"): estimate_cell(r.gain("rcmae", e, b)),
                    tr("roi.col_verdict"): tr(f"gen.v_{_verdict_key(r.gain_verdict(e, b).verdict)}"),
                    tr("roi.col_rc"): estimate_cell(r.rc_vs_mae(e, b)),
                    tr("roi.col_control"): estimate_cell(r.gain("mae", e, b, "control"))
                    if b in r.spec.control_budgets
                    else "—",
                    tr("roi.col_wall"): f"{sum(wall) / len(wall):.0f}" if wall else "—",
                    tr("roi.col_teacher"): estimate_cell(r.teacher_cost(e)),
                }
            )
    return pd.DataFrame(rows)


def _verdict_key(verdict: str) -> str:
    return {"no meaningful difference": "no_difference"}.get(verdict, verdict)


def _draw(r) -> None:
    total = len(jobs_of(r.spec))
    if not r.cells:
        st.info(tr("roi.none"))
        return
    st.caption(tr("roi.cached", done=len(r.cells), total=total))
    fig = plot_roi(roi_series(r), title=tr("roi.title"), caption=tr("roi.caption", seeds=len(r.seeds())))
    chart(fig, "roi-figure")
    st.caption(tr("roi.table"))
    st.dataframe(_table(r), width="stretch", hide_index=True)
    rung = r.plateau_rung()
    st.caption(tr("roi.plateau", rule=PLATEAU_RULE, rung=f"{rung}" if rung else tr("roi.plateau_none")))
    with st.expander(tr("roi.flattens")):
        for b in r.spec.budgets:
            for k in ("mae", "rcmae"):
                st.markdown(f"- {flattening_text(r, k, b)}")


def show_roi(profile) -> None:
    """The section: header, settings, the cached ladder at once, the job on demand."""
    st.header(tr("roi.header"))
    st.caption(tr("roi.intro"))
    base = dashboard_roi(profile)
    with st.form("roi-form"):
        c1, c2 = st.columns([3, 1])
        rungs = c1.multiselect(
            tr("roi.rungs"), list(base.pretrain_epochs), default=list(base.pretrain_epochs), key="roi.rungs"
        )
        seeds = c2.number_input(tr("roi.seeds"), 1, 10, base.seeds, key="roi.seeds")
        go = st.form_submit_button(tr("roi.go"))
    try:
        spec = replace(base, pretrain_epochs=tuple(sorted(rungs)) or base.pretrain_epochs, seeds=int(seeds))
    except LandscapeError as e:
        error_box(e)
        return
    key = task_key("roi", spec.key())
    if go:
        submit(key, roi_label(spec), roi_task(spec))
    job = registry().get(key)
    if job is not None and job.active:
        watch(key, lambda j: _draw(j.partial if j.partial is not None else cached_roi(spec)))
        return
    if job is not None and job.status == "failed":
        error_box(f"{tr('roi.go')}: {job.error}")
    try:
        _draw(cached_roi(spec))
    except LandscapeError as e:
        error_box(e)
