"""Landscapes: 1-4 models side by side on one spec (same direction seed, grid, images and masks)."""

from __future__ import annotations

from dataclasses import asdict, replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import streamlit as st

from core.app import (
    SurfaceBatch,
    checkpoint_info,
    coarse_view,
    convexity_task,
    dashboard_profile,
    surfaces_task,
    task_key,
)
from core.errors import LandscapeError
from core.measure import CONVEX_RATIO, ConvexitySpec, SurfaceSpec
from core.report import (
    ConvexityPanel,
    function_family,
    function_label,
    msg,
    plot_convexity,
    plot_difference,
    plot_slices,
    plot_surfaces,
    variant_label,
)
from core.store import to_plain
from pages._ui import (
    LONG_JOB_SECONDS,
    chart,
    default_selection,
    error_box,
    labeller,
    lang,
    metrics_table,
    model_choices,
    panels_of,
    registry,
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
# RC-MAE's own / pre-training loss: its MAE term alone by default (the same function as MAE's loss, so the two are
# compared directly, as core.report.comparison decides), or the full objective (+ gamma * consistency).
TERMS = ["mae", "full"]

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
    c1, c2 = st.columns([2, 3])
    terms = c1.selectbox(
        tr("field.rcmae_terms"), TERMS, format_func=labeller("terms."), help=tr("help.rcmae_terms"), key="land.terms"
    )
    allow_long = c2.checkbox(tr("field.allow_long"), value=False, help=tr("help.allow_long"), key="land.allow_long")
    go = st.form_submit_button(tr("land.go"), type="primary")


def build_specs() -> dict[str, SurfaceSpec]:
    """label -> spec; an RC-MAE on its MAE term is labelled so (its panel is a different function from its own)."""
    specs = {}
    for label in models:
        rcmae = checkpoint_info(choices[label]).kind == "rcmae" and loss in ("own", "pretrain")
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
            rcmae_terms=terms if rcmae else "full",  # other kinds keep the default (their cache keys unchanged)
        )
        spec.validate()
        specs[variant_label(label, "rcmae_mae") if rcmae and terms == "mae" else label] = spec
    return specs


def families(batch: SurfaceBatch) -> dict[str, str]:
    """label -> the function family each surface draws (`core.report.function_family`)."""
    out = {}
    for label, spec in batch.specs.items():
        try:
            kind = checkpoint_info(spec.checkpoint).kind
        except LandscapeError:
            kind = "other"
        out[label] = function_family(kind, spec)
    return out


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

VIEWS = ["contour", "heatmap", "surface", "slices", "difference", "convexity"]
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
    fam = families(batch)
    mixed = len(set(fam.values())) > 1
    if mixed and view != "difference":  # different functions: say so (the view defaults to relative values)
        items = "; ".join(f"{label}: {function_label(f, lang())}" for label, f in fam.items())
        st.info(tr("land.mixed", items=items))
        if not relative:
            st.warning(tr("land.mixed_absolute"))
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
            la, lb = (list(batch.surfaces)[names.index(n)] for n in (a, b))
            if fam.get(la) != fam.get(lb):  # a difference of two functions on two scales means nothing
                fa, fb = (function_label(fam.get(x, "other"), lang()) for x in (la, lb))
                st.info(tr("land.diff_functions", a=a, b=b, fa=fa, fb=fb))
                return
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


def loss_surfaces() -> dict:
    """The loss surfaces of the landscape job (finished or partial), by model label."""
    job = registry().get(st.session_state.get("land.job", ""))
    batch = None if job is None else (job.result if job.ok else job.partial)
    return {} if batch is None else dict(batch.surfaces)


def convexity_controls() -> None:
    """The convexity view's own settings: the maps are computed only when asked (each point is a Lanczos run)."""
    st.caption(tr("land.cvx_help", threshold=f"{CONVEX_RATIO:g}"))
    if int(dim) != 2:
        st.info(tr("land.cvx_need_2d"))
        return
    c1, c2, c3 = st.columns([3, 3, 2])  # the button's label is long ("Compute convexity maps"): not cut at 1280 px
    cgrid = c1.select_slider(tr("land.cvx_grid"), [5, 9, 17], value=9, key="land.cvx_grid")
    iters = c2.number_input(tr("land.cvx_iter"), 4, 200, 20, step=2, key="land.cvx_iter")
    st.caption(tr("land.cvx_prompt", iters=int(iters), points=int(cgrid) ** 2))
    if c3.button(tr("land.cvx_go"), type="primary", key="land.cvx_go"):
        if not models:
            st.warning(tr("land.pick"))
            return
        try:
            specs = {
                label: ConvexitySpec(replace(s, grid=int(cgrid)), max_iter=int(iters))
                for label, s in build_specs().items()
            }
            for s in specs.values():
                s.validate()
        except LandscapeError as e:
            error_box(e)
            return
        limit = None if allow_long else LONG_JOB_SECONDS
        key = task_key("convexity", [asdict(s) for s in specs.values()], list(specs), limit)
        submit(key, msg("label.convexity", n=len(specs)), convexity_task(specs, max_seconds=limit))
        st.session_state["land.cvx_job"] = key


def same_slice(a: dict, b: dict) -> bool:
    """Whether two surface specs (as dicts) place their points on one slice (the grid size aside)."""
    skip = ("grid", "checkpoint", "device", "batch_points")
    return to_plain({k: v for k, v in a.items() if k not in skip}) == to_plain(
        {k: v for k, v in b.items() if k not in skip}
    )


def render_convexity(job) -> None:

    batch = job.result if job.ok else job.partial
    if batch is None:
        return
    for label, err in batch.errors.items():
        error_box(f"{label}: {err}")
    surfaces = loss_surfaces()
    panels, rows = [], {}
    for label, m in batch.maps.items():
        spec = batch.specs[label]
        xs, ys, ratio = coarse_view(SimpleNamespace(xs=m.xs, ys=m.ys, loss=m.ratio, complete=m.complete))
        # Contours: the page's loss surface when it is of the same slice (finer), else the loss at the map's points.
        s = surfaces.get(label)
        if s is not None and s.loss.ndim == 2 and same_slice(s.meta.get("spec", {}), asdict(spec.surface)):
            lx, ly, loss = coarse_view(s)
        else:
            lx, ly, loss = m.xs, m.ys, m.loss
        n_unconv = int(np.sum(np.isfinite(m.lambda_max) & (m.converged == 0)))
        cap = tr("cap.convexity", grid=len(m.xs), iters=spec.max_iter, unconverged=n_unconv)
        if not m.complete:
            cap += " " + tr("cap.partial")
        title = label.replace(" · ", "<br>", 1) if len(label) > 28 else label
        panels.append(ConvexityPanel(title, xs, ys, ratio, lx, ly, loss, caption=cap))
        if m.complete:
            c = len(m.xs) // 2
            rows[label] = {
                tr("land.cvx_area", threshold=f"{CONVEX_RATIO:g}"): m.convex_area(),
                tr("land.cvx_median"): float(np.nanmedian(m.ratio)),
                tr("land.cvx_lmax"): float(m.lambda_max[c, c]),
                tr("land.cvx_lmin"): float(m.lambda_min[c, c]),
                tr("land.cvx_unconverged"): n_unconv,
            }
    if not panels:
        return
    chart(plot_convexity(panels, CONVEX_RATIO, title=tr("land.cvx_title")), key="land-convexity")
    if rows:
        st.subheader(tr("land.cvx_numbers"))
        st.dataframe(pd.DataFrame.from_dict(rows, orient="index").T, width="stretch")


if view == "convexity":
    convexity_controls()
    if "land.cvx_job" in st.session_state:
        watch(st.session_state["land.cvx_job"], render_convexity)
elif "land.job" in st.session_state:
    watch(st.session_state["land.job"], render)
