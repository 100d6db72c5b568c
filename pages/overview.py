"""Overview: the stakeholder briefing (the question, four verdicts, a sentence for the meeting, an HTML export) on
the default MAE / RC-MAE / Sup-ViT, prepared on first run by one background job. The composition is in
`core.report.briefing` (sentences) and `core.app.briefing_html` (figures, export); this page only draws them."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import streamlit as st

from core.app import (
    SEED_TARGETS,
    DefaultsResult,
    add_seeds_task,
    briefing_figures,
    briefing_html,
    briefing_of,
    dashboard_profile,
    default_trio,
    evidence_signature,
    flatness_rows,
    prepare_defaults_task,
    roi_evidence_task,
    seeds_behind,
    task_key,
    with_seeds,
)
from core.report import ModelFacts, appendix_rows, msg
from pages._ui import POLL_S, error_box, lang, registry, say, status_line, submit, tr, watch

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
trio_keys = [c.key() for c in default_trio(profile).values()]
key = task_key("prepare-defaults", asdict(profile), trio_keys)
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
    st.markdown(" · ".join(marks))  # one line: the first picture, below, stays above the fold


@st.cache_resource(show_spinner=False, max_entries=8)
def _merged(evidence: str, _res: DefaultsResult, _extra, _roi: dict | None) -> DefaultsResult:
    """The first-run result with the best evidence in the cache (`core.app.with_seeds`, a few tenths of a second over
    a full cache), merged once per state of the evidence (`evidence`) instead of on every rerun; never mutated."""
    return with_seeds(_res, _extra, profile, _roi)


@st.cache_data(show_spinner=False, max_entries=8)
def _briefing(job_id: str, code: str, _res: DefaultsResult):
    """The briefing of a finished first-run result with the evidence job's seeds so far (composed once per job,
    evidence version and language)."""
    return briefing_of(_res, code)


def seeds_key(n: int) -> str:
    """The evidence job to n seeds: one per profile, trio and target, shared by every session."""
    return task_key("add-seeds", asdict(profile), trio_keys, n)


def evidence_job():
    """The evidence job whose seeds the briefing uses: the largest target asked for (active or done)."""
    for n in sorted(SEED_TARGETS, reverse=True):
        j = registry().get(seeds_key(n))
        if j is not None and (j.active or j.ok or j.partial is not None):
            return j
    return None


def roi_evidence() -> dict | None:
    """The pre-training ladder's facts when cached, read by a light job (seconds for a full ladder) keyed by the
    cache's state: None until it has run."""
    key = task_key("roi-facts", asdict(profile), evidence_signature())
    j = registry().get(key) or submit(key, msg("label.roi_facts"), roi_evidence_task(profile), light=True)
    return j.result if j.ok else None


def evidence_block(res: DefaultsResult, ev) -> None:
    """How many seeds the verdicts stand on, the evidence job's progress, and the offers to add seeds."""
    n = seeds_behind(res)
    st.caption(tr("overview.seeds_now", n=n))
    if ev is not None and ev.active:
        status_line(ev)
        return
    if ev is not None and ev.status == "failed":
        status_line(ev)
    offers = [t for t in SEED_TARGETS if t > n]
    if not offers:
        return
    cols = st.columns(len(offers) + 1)
    cols[0].markdown(tr("overview.seeds_offer"), help=tr("overview.seeds_help"))
    for col, t in zip(cols[1:], offers, strict=True):
        if col.button(tr("overview.seeds_button", n=t), key=f"overview.seeds.{t}"):
            submit(seeds_key(t), msg("label.seeds", n=t), add_seeds_task(t, profile))
            st.rerun()


def point_card(p) -> None:
    """One point of the chain: its title, the verdict badge and the claim it judges, its numbers, its sentence."""
    with st.container(border=True):
        st.markdown(f"**{p.title}**")
        st.badge(tr("verdict." + p.verdict), icon=VERDICT_ICON[p.verdict], color=VERDICT_COLOR[p.verdict])
        st.caption(tr("overview.claim", c=p.claim))
        for h in p.headlines:
            st.metric(h.label, h.value, h.delta or None, delta_color=h.color if h.delta else "off", help=h.spread)
        st.markdown(p.short)
        if p.note:
            st.caption(p.note)
        if p.seeds:
            st.caption(tr("overview.seeds_card", n=p.seeds))
        with st.expander(tr("overview.details")):
            if p.why:
                st.markdown(f"**{tr('overview.why')}:** {p.why}")
            for h in p.headlines:
                if h.spread:
                    st.caption(f"{h.label}: {h.spread}")
            for d in p.details:
                st.write(d)
            rows = appendix_rows(p.numbers, lang())
            if rows:
                df = pd.DataFrame([{tr("overview.col_number"): k, tr("overview.col_value"): v} for k, v in rows])
                st.dataframe(df, hide_index=True, width="stretch")


def briefing_block(res: DefaultsResult, job_id: str) -> None:
    if sum(isinstance(f, ModelFacts) for f in res.facts.values()) < 2:
        st.info(tr("overview.no_facts"))
        return
    code = lang()
    b = _briefing(job_id, code, res)
    # The question and the download on one row: both stay above the fold at 1280x800.
    q, dl = st.columns([3, 1], vertical_alignment="center")
    q.markdown(f"##### {b.question}")

    def export() -> str:
        return briefing_html(res, code, briefing=b)

    dl.download_button(
        tr("overview.export"),
        data=export,
        file_name=f"briefing_{code}.html",
        mime="text/html",
        icon=":material/download:",
        help=tr("overview.export_help"),
        on_click="ignore",
        key="overview.export",
    )
    for col, p in zip(st.columns(len(b.points)), b.points, strict=True):
        with col:
            point_card(p)
    st.markdown(f"**{tr('overview.meeting')}**", help=tr("overview.meeting_help"))
    st.code(b.meeting, language=None, wrap_lines=True)


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
    if "gallery" in figs:  # what the stability sentence's corruptions look like, as in the HTML briefing
        st.plotly_chart(figs["gallery"], key="overview-gallery", width="stretch")
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
        waiting = sum(1 for x in registry().jobs() if x.active and x.key != j.key)
        st.caption(tr("overview.cancel_where", n=waiting))
        stage_list(res, True)
    if res is None:
        return
    for where, err in {**res.errors, **res.surfaces.errors, **res.flatness.errors}.items():
        error_box(f"{where}: {err}")
    if j.ok:
        ev = evidence_job()
        extra = (ev.result if ev.ok else ev.partial) if ev is not None else None
        roi = roi_evidence()
        evidence = f"{ev.key}:{ev.partial_version}:{ev.status}" if ev is not None else "-"
        # A study run on the Generalization page adds evidence too; the ladder's facts arrive from a light job.
        evidence += f":{evidence_signature()}:{roi is not None}"
        key = f"{j.key}:{j.created}:{evidence}"
        merged = _merged(key, res, extra, roi)
        briefing_block(merged, key)
        evidence_block(merged, ev)
    more_block(res, f"{j.key}:{j.created}:{version}")


if job is not None:
    watch(job.key, render, cancel=False)  # shared by every viewer: cancelled from the Runs page
    ev = evidence_job() if job.ok else None
    if ev is not None and ev.active:
        seen = ev.partial_version

        def poll_evidence() -> None:
            """A full rerun when a seed lands or the evidence job ends: the briefing above recomposes."""
            e = registry().get(ev.key)
            if e is None or not e.active or e.partial_version != seen:
                st.rerun()

        st.fragment(poll_evidence, run_every=POLL_S)()
    if not job.active and job.ok:
        st.caption(tr("overview.cached", s=f"{job.elapsed:.1f}"))
    elif job.status in ("failed", "cancelled"):
        st.caption(say(job.message))
