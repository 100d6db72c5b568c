"""Flatness: Hessian eigenvalues, trace, density, per-block numbers, sharpness and robustness, per model side by
side, and flatness against probe accuracy over every cached result."""

from __future__ import annotations

from dataclasses import asdict
from types import SimpleNamespace

import pandas as pd
import streamlit as st

from core.app import (
    FlatnessBatch,
    checkpoint_info,
    default_flatness_spec,
    flatness_points,
    flatness_task,
    measured_flatness,
    task_key,
)
from core.errors import LandscapeError
from core.report import (
    LOSS_SCALED,
    MIN_CORRELATION_N,
    accuracy_name,
    compare_measured,
    function_family,
    function_label,
    function_of_spec,
    msg,
    needs_extra,
    overrides,
    plot_density,
    plot_eigenvalues,
    plot_flatness_vs_accuracy,
    plot_per_block,
    plot_robustness,
    title_text,
    variant_label,
)
from pages._stability import show_proxy_vs_inputs
from pages._ui import (
    LONG_JOB_SECONDS,
    chart,
    default_selection,
    error_box,
    fmt_num,
    labeller,
    lang,
    model_choices,
    submit,
    tr,
    watch,
)

st.title(tr("flat.title"))
st.caption(tr("flat.intro"))

choices = model_choices()
if not choices:
    st.info(tr("common.no_models"))
    st.stop()

base = default_flatness_spec("")  # the profile's settings: the first visit shows the cached default numbers
with st.form("flat-form"):
    models = st.multiselect(
        tr("field.models"), list(choices), default=default_selection(choices), max_selections=6, key="flat.models"
    )
    c1, c2, c3, c4 = st.columns(4)
    samples = c1.select_slider(tr("field.samples"), [32, 64, 128, 256], value=base.samples, key="flat.samples")
    top_k = c2.number_input(tr("field.top_k"), 1, 10, base.top_k, key="flat.top_k")
    rho = c3.select_slider(
        tr("field.rho"), [0.0, 0.01, 0.02, 0.05, 0.1], value=0.05, help=tr("help.rho"), key="flat.rho"
    )
    seed = c4.number_input(tr("field.seed"), 0, 1_000_000, 0, key="flat.seed")
    c1, c2, c3, c4 = st.columns(4)
    trace = c1.checkbox(tr("field.trace"), value=True, key="flat.trace")
    density = c2.checkbox(tr("field.density"), value=False, help=tr("help.density"), key="flat.density")
    per_block = c3.checkbox(tr("field.per_block"), value=False, key="flat.per_block")
    robust = c4.checkbox(tr("field.robustness"), value=True, key="flat.robust")
    allow_long = st.checkbox(tr("field.allow_long"), value=False, help=tr("help.allow_long"), key="flat.allow_long")
    go = st.form_submit_button(tr("flat.go"), type="primary")

if go or "flat.job" not in st.session_state:
    if not models:
        st.warning(tr("land.pick"))
    else:
        try:
            settings = dict(
                samples=int(samples),
                top_k=int(top_k),
                sharpness_rho=float(rho) or None,
                seed=int(seed),
                trace=bool(trace),
                density=bool(density),
                per_block=bool(per_block),
            )
            specs = {
                label: default_flatness_spec(choices[label], robustness=bool(robust), **settings) for label in models
            }
            # RC-MAE also on MAE's loss (its MAE term), so that it is compared with MAE on one function; the
            # accuracy under weight noise reads the probe (the same for every loss) and is not computed twice.
            for label in models:
                extra = needs_extra(checkpoint_info(choices[label]).kind)
                if extra:
                    specs[variant_label(label, extra)] = default_flatness_spec(
                        choices[label], robustness=False, **settings, **overrides(extra)
                    )
        except LandscapeError as e:
            error_box(e)
        else:
            limit = None if allow_long else LONG_JOB_SECONDS
            key = task_key("flatness", [asdict(s) for s in specs.values()], list(specs), limit)
            submit(key, msg("label.flatness", n=len(specs)), flatness_task(specs, max_seconds=limit))
            st.session_state["flat.job"] = key


def caption_of(batch: FlatnessBatch, what: str) -> str:
    spec = next(iter(batch.specs.values()))
    return tr(
        "cap." + what,
        samples=spec.samples,
        seed=spec.seed,
        iters=spec.max_iter,
        probes=spec.trace_probes,
        draws=spec.robustness_draws,
        vectors=spec.density_vectors,
        steps=spec.density_iter,
    )


def numbers_table(batch: FlatnessBatch) -> pd.DataFrame:
    spec = next(iter(batch.specs.values()), None)
    # the probe's (classifier's) accuracy without noise on the report's images: named with its images (naming)
    probe_col = accuracy_name("clean_on_n", lang(), n=spec.samples if spec is not None else None)
    rows = {}
    for label, r in batch.reports.items():
        sharp = r.sharpness or {}
        rows[label] = {
            tr("num.lambda_max"): fmt_num(r.top_eigenvalues[0] if r.top_eigenvalues else None),
            tr("num.lambda_min"): fmt_num(r.lambda_min),
            tr("num.trace"): (f"{fmt_num(r.trace)} ± {fmt_num(r.trace_stderr)}" if r.trace is not None else "-"),
            tr("num.sharp_avg"): fmt_num(sharp.get("average")),
            tr("num.sharp_adaptive"): fmt_num(sharp.get("adaptive_average")),
            tr("num.sharp_worst"): fmt_num(sharp.get("worst")),
            probe_col: fmt_num(r.probe_acc),
            tr("num.acc_drop"): fmt_num(r.robustness_drop),
            tr("num.n_params"): f"{r.meta.get('n_params', 0):,}",
            tr("num.loss"): r.meta.get("loss_kind", "-"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


VERDICT_ICON = {
    "supports": ":material/check_circle:",
    "contradicts": ":material/cancel:",
    "no meaningful difference": ":material/drag_handle:",
    None: ":material/remove:",
}


def same_function(batch: FlatnessBatch) -> None:
    """RC-MAE vs MAE on one function (MAE's loss), MAE vs Sup-ViT on relative numbers, RC-MAE's full objective as a
    secondary line: `core.report.comparison` decides which function, `core.report.summary` the verdict (the Overview's
    rule)."""
    items, seeds = [], set()
    for label, r in batch.reports.items():
        spec = batch.specs.get(label)
        if spec is None:
            continue
        info = checkpoint_info(spec.checkpoint)
        kind = info.kind
        fn = function_of_spec(kind, spec)
        if fn is None:
            continue
        base = next((b for lb, b in batch.reports.items() if batch.specs[lb].checkpoint == spec.checkpoint), None)
        robustness = base.robustness if base is not None else None
        seed = (info.train or {}).get("seed")
        measure = {k: getattr(spec, k) for k in ("seed", "data_seed", "mask_seed") if getattr(spec, k)}
        # The Overview's computation: the same landscape gives the basin width and the centre loss (core.app).
        m, _ = measured_flatness(label, kind, fn, r, spec.checkpoint, robustness=robustness, seed=seed, measure=measure)
        items.append(m)
        seeds.add(seed)
    found = [x for x in compare_measured(items, lang()) if x[2] is not None]
    if not found:
        return
    st.subheader(tr("flat.same"))
    st.caption(tr("flat.same_help"))
    st.caption(tr("flat.same_seeds", n=len(seeds)))
    for c, text, verdict in found:
        icon = VERDICT_ICON.get(verdict, ":material/help:")
        st.markdown(f"{icon} **{title_text(c, lang())}**: {tr('verdict.' + verdict)}")
        st.write(text)


def render(job) -> None:
    batch: FlatnessBatch | None = job.result if job.ok else job.partial
    if batch is None:
        return
    for label, err in batch.errors.items():
        error_box(f"{label}: {err}")
    if not batch.reports:
        return
    st.subheader(tr("flat.numbers"))
    st.dataframe(numbers_table(batch), width="stretch")
    same_function(batch)
    reps = batch.reports
    resumed = {k: sum(r.meta.get("reused_steps", {}).values()) for k, r in reps.items()}
    if any(resumed.values()):
        st.caption(tr("flat.resumed", items=", ".join(f"{k}: {n}" for k, n in resumed.items() if n)))
    eig = {k: r.top_eigenvalues for k, r in reps.items() if r.top_eigenvalues}
    rob = {k: r.robustness for k, r in reps.items() if r.robustness}
    metric = "acc"
    if rob:
        metric = st.radio(
            tr("flat.rob_metric"),
            ["acc", "loss"],
            format_func=labeller("metric.r_"),
            horizontal=True,
            key="flat.rob_metric",
        )
    left, right = st.columns(2)
    if eig:
        with left:
            chart(plot_eigenvalues(eig, title=tr("flat.eig_title"), caption=caption_of(batch, "eig")), "flat-eig")
    if rob:
        with right:
            fig = plot_robustness(rob, metric, title=tr("flat.rob_title"), caption=caption_of(batch, "robustness"))
            chart(fig, "flat-robust")
        show_proxy_vs_inputs(batch)  # the proxy beside accuracy under input corruptions (pages/_stability.py)
    dens = {k: r.density for k, r in reps.items() if r.density}
    blocks = {k: r.per_block for k, r in reps.items() if r.per_block}
    if dens or blocks:
        left, right = st.columns(2)
        if dens:
            with left:
                fig = plot_density(dens, title=tr("flat.density_title"), caption=caption_of(batch, "density"))
                chart(fig, "flat-density")
        if blocks:
            with right:
                bm = st.radio(
                    tr("flat.block_metric"),
                    ["lambda_max", "trace"],
                    format_func=labeller("metric."),
                    horizontal=True,
                    key="flat.block_metric",
                )
                fig = plot_per_block(blocks, bm, title=tr("flat.block_title"), caption=caption_of(batch, "blocks"))
                chart(fig, "flat-blocks")


if "flat.job" in st.session_state:
    watch(st.session_state["flat.job"], render)

# ----------------------------------------------------------------------------------------------------------------------
st.header(tr("flat.scatter"))
st.caption(tr("flat.scatter_help"))
try:
    points = flatness_points()
except LandscapeError as e:
    error_box(e)
    points = []
if not points:
    st.info(tr("flat.no_points"))
else:
    xs = ["top_eigenvalue", "trace", "sharpness", "acc_drop", "basin_width"]
    c1, c2 = st.columns([3, 1])
    x = c1.radio(tr("flat.x"), xs, format_func=labeller("metric."), horizontal=True, key="flat.x")
    log_x = c2.toggle(tr("field.log_x"), value=False, key="flat.logx")
    # Each point is on its model's own objective: name the function, so that a mixed x axis says so.
    own = SimpleNamespace(loss="own", rcmae_terms="full")
    for p in points:
        p["family"] = function_family(p["kind"], own)
        p["function"] = function_label(p["family"], "en")  # English in the figure; localize() translates it
    usable = [p for p in points if p.get(x) is not None and p.get("linear_probe_acc") is not None]
    if len(usable) < MIN_CORRELATION_N:
        st.caption(tr("flat.scatter_small", n=len(usable), min=MIN_CORRELATION_N))
    used = sorted({p["family"] for p in usable})
    if x in LOSS_SCALED and len(used) > 1:
        st.warning(tr("flat.scatter_mixed", items=", ".join(function_label(f, lang()) for f in used)))
    fig = plot_flatness_vs_accuracy(
        points,
        x,
        "linear_probe_acc",
        title=tr("flat.scatter_title", x=tr("metric." + x)),
        log_x=log_x,
        caption=tr("cap.scatter", n=len(points)),
    )
    chart(fig, "flat-scatter")
