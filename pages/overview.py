"""Overview: the executive summary of MAE vs RC-MAE vs Sup-ViT, prepared on first run by one background job."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import streamlit as st

from core.i18n import msg
from core.jobs import DefaultsResult, dashboard_profile, default_trio, prepare_defaults_task, task_key
from core.plots import plot_robustness, plot_surfaces
from pages._ui import chart, error_box, fmt_num, lang, panels_of, registry, say, submit, tr, watch

VERDICT_ICON = {
    "supports": ":material/check_circle:",
    "contradicts": ":material/cancel:",
    "inconclusive": ":material/help:",
}
STAGES = ("train", "landscapes", "flatness", "summary", "done")

st.title(tr("overview.title"))
st.caption(tr("overview.intro"))

profile = dashboard_profile()
key = task_key("prepare-defaults", asdict(profile), [c.key() for c in default_trio(profile).values()])
job = registry().get(key)
if job is None:
    job = submit(key, msg("label.prepare"), prepare_defaults_task(profile))
else:
    res = job.result if job.ok else None
    partly = res is not None and bool(res.errors or res.surfaces.errors or res.flatness.errors)
    if job.status in ("failed", "cancelled") or partly:
        # A finished job is shared and kept; retrying means forgetting it (finished stages are cached on disk).
        if st.button(tr("overview.retry"), type="primary"):
            registry().forget(key)
            submit(key, msg("label.prepare"), prepare_defaults_task(profile))
            st.rerun()


def stage_list(res: DefaultsResult | None, active: bool) -> None:
    """Which step the preparation is in, as a checklist."""
    current = res.stage if res is not None else "train"
    idx = STAGES.index(current) if current in STAGES else 0
    marks = []
    for i, s in enumerate(STAGES[:-1]):
        done = i < idx or not active
        mark = ":material/check_circle:" if done else (":material/pending:" if i == idx else ":material/circle:")
        marks.append(f"{mark} {tr('stage.' + s)}")
    st.markdown("  \n".join(marks))


def landscape_figure(res: DefaultsResult) -> None:
    panels = panels_of(res.surfaces)
    if not panels:
        return
    st.subheader(tr("overview.landscapes"))
    fig = plot_surfaces(panels, view="contour", relative=True, title=tr("overview.landscape_title"))
    chart(fig, key="overview-landscapes")
    st.caption(tr("overview.landscape_note"))


def robustness_figure(res: DefaultsResult) -> None:
    curves = {label: r.robustness for label, r in res.flatness.reports.items() if r.robustness}
    if not curves:
        return
    st.subheader(tr("overview.robustness"))
    spec = next(iter(res.flatness.specs.values()))
    cap = tr("cap.robustness", draws=spec.robustness_draws, samples=spec.samples, seed=spec.seed)
    chart(plot_robustness(curves, "acc", title=tr("overview.robustness_title"), caption=cap), key="overview-robust")


def flatness_table(res: DefaultsResult) -> None:
    st.subheader(tr("overview.flatness"))
    rows = {}
    for label, r in res.flatness.reports.items():
        surf = res.surfaces.surfaces.get(label)
        rows[label] = {
            tr("num.lambda_max"): fmt_num(r.top_eigenvalues[0] if r.top_eigenvalues else None),
            tr("num.trace"): fmt_num(r.trace),
            tr("num.sharp_avg"): fmt_num((r.sharpness or {}).get("average")),
            tr("metric.basin_width"): fmt_num(surf.metrics.get("basin_width") if surf is not None else None),
            tr("num.probe_acc"): fmt_num(r.probe_acc),
            tr("num.acc_drop"): fmt_num(r.robustness_drop),
        }
    st.dataframe(pd.DataFrame.from_dict(rows, orient="index").T, width="stretch")
    st.caption(tr("overview.flatness_note"))


def summary_block(res: DefaultsResult) -> None:
    if len(res.facts) < 2:
        st.info(tr("overview.no_facts"))
        return
    from core.summary import executive_summary

    s = executive_summary({res.labels.get(k, k): f for k, f in res.facts.items()}, lang=lang())
    st.subheader(tr("overview.summary"))
    st.success(s.takeaway, icon=":material/lightbulb:")
    cols = st.columns(len(s.points))
    for col, p in zip(cols, s.points, strict=True):
        with col.container(border=True):
            st.markdown(f"**{p.title}**")
            st.markdown(f"{VERDICT_ICON.get(p.verdict, '')} {tr('verdict.' + p.verdict)}")
            st.write(p.sentence)
    rows = []
    for p in s.points:
        for name, value in p.numbers.items():
            rows.append(
                {tr("overview.col_point"): p.title, tr("overview.col_number"): name, tr("overview.col_value"): value}
            )
    with st.expander(tr("overview.numbers"), expanded=False):
        df = pd.DataFrame(rows)
        if not df.empty:
            df[tr("overview.col_value")] = df[tr("overview.col_value")].map(
                lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
            )
        st.dataframe(df, hide_index=True, width="stretch")


def render(j) -> None:
    res: DefaultsResult | None = j.result if j.ok else j.partial
    if j.active:
        st.info(tr("overview.preparing"), icon=":material/hourglass_top:")
        stage_list(res, True)
    if res is None:
        return
    for where, err in {**res.errors, **res.surfaces.errors, **res.flatness.errors}.items():
        error_box(f"{where}: {err}")
    if j.ok:
        summary_block(res)
    landscape_figure(res)
    if res.flatness.reports:
        left, right = st.columns(2)
        with left:
            robustness_figure(res)
        with right:
            flatness_table(res)


if job is not None:
    watch(job.key, render)
    if not job.active and job.ok:
        st.caption(tr("overview.cached", s=f"{job.elapsed:.1f}"))
    elif job.status in ("failed", "cancelled"):
        st.caption(say(job.message))
