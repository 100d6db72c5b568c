"""Landscapes: 1-4 models side by side on one spec (same direction seed, grid, images and masks)."""

from __future__ import annotations

from dataclasses import asdict

import streamlit as st

from core.errors import LandscapeError
from core.i18n import msg
from core.jobs import SurfaceBatch, dashboard_profile, surfaces_task, task_key
from core.plots import plot_difference, plot_slices, plot_surfaces
from core.surfaces import SurfaceSpec
from pages._ui import (
    LONG_JOB_SECONDS,
    chart,
    default_selection,
    error_box,
    labeller,
    metrics_table,
    model_choices,
    panels_of,
    submit,
    tr,
    watch,
)

st.title(tr("land.title"))
st.caption(tr("land.intro"))

choices = model_choices()
if not choices:
    st.info(tr("common.no_models"))
    st.stop()

LOSSES = ["own", "pretrain", "supervised", "probe"]
NORMS = ["filter", "layer", "weight", "none"]
IGNORES = ["biasbn", "none"]
SCOPES = ["all", "encoder", "decoder", "head"]

defaults = dashboard_profile().surface
with st.form("land-form"):
    models = st.multiselect(
        tr("field.models"),
        list(choices),
        default=default_selection(choices),
        max_selections=4,
        key="land.models",
    )
    c1, c2, c3, c4 = st.columns(4)
    loss = c1.selectbox(tr("field.loss"), LOSSES, format_func=labeller("loss."), key="land.loss")
    dim = c2.radio(tr("field.dim"), [2, 1], format_func=labeller("dim."), horizontal=True, key="land.dim")
    grid = c3.slider(tr("field.grid"), 5, 51, int(defaults["grid"]), step=2, help=tr("help.grid"), key="land.grid")
    span = c4.number_input(
        tr("field.span"),
        0.01,
        5.0,
        float(defaults["span"]),
        step=0.05,
        format="%.2f",
        help=tr("help.span"),
        key="land.span",
    )
    c1, c2, c3, c4, c5 = st.columns(5)
    norm = c1.selectbox(tr("field.norm"), NORMS, format_func=labeller("norm."), key="land.norm")
    ignore = c2.selectbox(tr("field.ignore"), IGNORES, format_func=labeller("ignore."), key="land.ignore")
    scope = c3.selectbox(tr("field.scope"), SCOPES, format_func=labeller("scope."), key="land.scope")
    seed = c4.number_input(tr("field.dir_seed"), 0, 1_000_000, 0, step=1, key="land.seed")
    samples = c5.select_slider(
        tr("field.samples"), [64, 128, 256, 512, 1024], value=int(defaults["samples"]), key="land.samples"
    )
    allow_long = st.checkbox(tr("field.allow_long"), value=False, help=tr("help.allow_long"), key="land.allow_long")
    go = st.form_submit_button(tr("land.go"), type="primary")


def build_specs() -> dict[str, SurfaceSpec]:
    specs = {}
    for label in models:
        spec = SurfaceSpec(
            checkpoint=choices[label],
            loss=loss,
            dim=int(dim),
            grid=int(grid),
            span=float(span),
            norm=norm,
            ignore=ignore,
            scope=scope,
            seed=int(seed),
            samples=int(samples),
        )
        spec.validate()
        specs[label] = spec
    return specs


# The first visit shows the default trio at the overview's settings (already cached by the first-run job).
if go or "land.job" not in st.session_state:
    if not models:
        st.warning(tr("land.pick"))
    else:
        try:
            specs = build_specs()
        except LandscapeError as e:
            error_box(e)
        else:
            limit = None if allow_long else LONG_JOB_SECONDS
            key = task_key("surfaces", [asdict(s) for s in specs.values()], list(specs), limit)
            submit(key, msg("label.surfaces", n=len(specs)), surfaces_task(specs, max_seconds=limit))
            st.session_state["land.job"] = key

VIEWS = ["contour", "heatmap", "surface", "slices", "difference"]
c1, c2, c3 = st.columns([3, 1, 1])
view = c1.radio(tr("field.view"), VIEWS, format_func=labeller("view."), horizontal=True, key="land.view")
relative = c2.toggle(tr("field.relative"), value=True, help=tr("help.relative"), key="land.relative")
log = c3.toggle(tr("field.log"), value=False, help=tr("help.log"), key="land.log")


def render(job) -> None:
    batch: SurfaceBatch | None = job.result if job.ok else job.partial
    if batch is None:
        return
    for label, err in batch.errors.items():
        error_box(f"{label}: {err}")
    for label, s in batch.surfaces.items():
        n_nan = int(s.meta.get("n_nan") or 0)
        if n_nan and s.complete:
            st.warning(tr("land.nan_note", model=label, n=n_nan, total=s.meta.get("n_points", s.loss.size)))
    panels = panels_of(batch)
    if not panels:
        return
    try:
        if view in ("contour", "heatmap", "surface"):
            fig = plot_surfaces(panels, view=view, relative=relative, log=log, title=tr("land.fig_title"))
        elif view == "slices":
            fig = plot_slices(panels, relative=relative, log=log, title=tr("land.slices_title"))
        else:
            names = [p.label.replace("<br>", " · ") for p in panels]
            if len(names) < 2:
                st.info(tr("land.diff_need_two"))
                return
            a_col, b_col = st.columns(2)
            a = a_col.selectbox("A", names, index=0, key="land.diff_a")
            b = b_col.selectbox("B", names, index=1, key="land.diff_b")
            pa, pb = (panels[names.index(n)] for n in (a, b))
            fig = plot_difference(pa, pb, relative=relative, title=tr("land.diff_title", a=a, b=b))
    except LandscapeError as e:
        error_box(e)
        return
    chart(fig, key=f"land-{view}")
    df = metrics_table(batch)
    if not df.empty:
        st.subheader(tr("land.numbers"))
        st.caption(tr("land.numbers_help"))
        st.dataframe(df.T, width="stretch")


if "land.job" in st.session_state:
    watch(st.session_state["land.job"], render)
