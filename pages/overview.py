"""Overview: the stakeholder briefing (the question, three verdicts, a sentence for the meeting, an HTML export) on
the default MAE / RC-MAE / Sup-ViT, prepared on first run by one background job. The composition is in
`core.report.briefing` (sentences) and `core.app.briefing_html` (figures, export); this page only draws them."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import streamlit as st

from core.app import (
    DefaultsResult,
    briefing_figures,
    briefing_html,
    briefing_of,
    dashboard_profile,
    default_trio,
    flatness_rows,
    prepare_defaults_task,
    task_key,
)
from core.report import ModelFacts, msg
from pages._ui import error_box, lang, registry, say, submit, tr, watch

VERDICT_ICON = {
    "supports": ":material/check_circle:",
    "contradicts": ":material/cancel:",
    "no meaningful difference": ":material/drag_handle:",
    "undetermined": ":material/help:",
}
VERDICT_COLOR = {
    "supports": "green",
    "contradicts": "red",
    "no meaningful difference": "gray",
    "undetermined": "orange",
}
STAGES = ("train", "landscapes", "flatness", "generalization", "summary", "done")

st.title(tr("overview.title"))
# The briefing is read at a glance: less padding above the title keeps the verdicts and the meeting sentence in view.
st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem}</style>")

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


@st.cache_data(show_spinner=False, max_entries=8)
def _briefing(job_id: str, code: str, _res: DefaultsResult):
    """The briefing of a finished first-run result (composed once per job and language)."""
    return briefing_of(_res, code)


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def point_card(p) -> None:
    with st.container(border=True):
        st.markdown(f"**{p.title}**")
        st.badge(tr("verdict." + p.verdict), icon=VERDICT_ICON[p.verdict], color=VERDICT_COLOR[p.verdict])
        st.markdown(p.short)
        h = p.headline
        st.metric(h.label, h.value, h.delta or None, delta_color=h.color if h.delta else "off")
        if h.spread:
            st.caption(h.spread)
        with st.expander(tr("overview.details")):
            if p.why:
                st.markdown(f"**{tr('overview.why')}:** {p.why}")
            for d in p.details:
                st.write(d)
            if p.numbers:
                df = pd.DataFrame(
                    [{tr("overview.col_number"): k, tr("overview.col_value"): _value(v)} for k, v in p.numbers.items()]
                )
                st.dataframe(df, hide_index=True, width="stretch")


def briefing_block(res: DefaultsResult, job_id: str) -> None:

    if sum(isinstance(f, ModelFacts) for f in res.facts.values()) < 2:
        st.info(tr("overview.no_facts"))
        return
    code = lang()
    b = _briefing(job_id, code, res)
    st.markdown(f"##### {b.question}")
    for col, p in zip(st.columns(len(b.points)), b.points, strict=True):
        with col:
            point_card(p)
    st.markdown(f"**{tr('overview.meeting')}**", help=tr("overview.meeting_help"))
    st.code(b.meeting, language=None, wrap_lines=True)

    def export() -> str:

        return briefing_html(res, code, briefing=b)

    st.download_button(
        tr("overview.export"),
        data=export,
        file_name=f"briefing_{code}.html",
        mime="text/html",
        icon=":material/download:",
        help=tr("overview.export_help"),
        on_click="ignore",
        key="overview.export",
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _figures(snapshot: str, code: str, _res: DefaultsResult) -> tuple[dict, dict]:
    """The figures and flatness rows of one published result, built once per snapshot and language instead of on
    every poll of every session (building them is ~0.2-0.7 s; twenty viewers polling each second starved the job)."""
    return dict(briefing_figures(_res, code)), flatness_rows(_res, code)


def more_block(res: DefaultsResult, snapshot: str) -> None:
    """The figures (the same as the export's) and the flatness numbers per model."""
    st.subheader(tr("overview.more"))
    st.caption(tr("overview.intro"))
    figs, rows = _figures(snapshot, lang(), res)
    if "landscapes" in figs:
        st.plotly_chart(figs["landscapes"], key="overview-landscapes", width="stretch")
        st.caption(tr("overview.landscape_note"))
    left, right = st.columns(2)
    with left:
        if "same-function" in figs:
            st.plotly_chart(figs["same-function"], key="overview-same", width="stretch")
    with right:
        if "robustness" in figs:
            st.plotly_chart(figs["robustness"], key="overview-robust", width="stretch")
    if rows:
        st.markdown(f"**{tr('overview.flatness')}**")
        st.dataframe(pd.DataFrame.from_dict(rows, orient="index").T, width="stretch")
        st.caption(tr("overview.flatness_note"))


def render(j) -> None:
    version = "done" if j.ok else str(j.partial_version)  # read before the partial: it may be newer, never older
    res: DefaultsResult | None = j.result if j.ok else j.partial
    if j.active:
        st.caption(tr("overview.intro"))
        st.info(tr("overview.preparing"), icon=":material/hourglass_top:")
        stage_list(res, True)
    if res is None:
        return
    for where, err in {**res.errors, **res.surfaces.errors, **res.flatness.errors}.items():
        error_box(f"{where}: {err}")
    if j.ok:
        briefing_block(res, f"{j.key}:{j.created}")
    more_block(res, f"{j.key}:{j.created}:{version}")


if job is not None:
    watch(job.key, render)
    if not job.active and job.ok:
        st.caption(tr("overview.cached", s=f"{job.elapsed:.1f}"))
    elif job.status in ("failed", "cancelled"):
        st.caption(say(job.message))
