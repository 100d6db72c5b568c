"""What-if: retrain a variant of a model (mask ratio, EMA momentum, epochs, training-set size) and compare it with
its base on the same directions, images and masks."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.app import (
    ROI_BUDGET,
    WhatIfResult,
    checkpoint_info,
    dashboard_profile,
    describe_label,
    list_checkpoints,
    task_key,
    variant_config,
    whatif_finetune_task,
    whatif_task,
)
from core.errors import LandscapeError
from core.models import ema_description
from core.report import msg, plot_robustness, plot_slices, plot_surfaces, plot_training_curves
from pages._ui import chart, error_box, fmt_num, labeller, metrics_table, panels_of, registry, submit, tr, watch

st.title(tr("whatif.title"))
st.caption(tr("whatif.intro"))

infos = [i for i in list_checkpoints() if i.train]
if not infos:
    st.info(tr("common.no_models"))
    st.stop()

by_label = {i.label: i for i in infos}
base_label = st.selectbox(tr("whatif.base"), list(by_label), key="whatif.base")
base = by_label[base_label]
tb = base.train

with st.form("whatif-form"):
    c1, c2 = st.columns(2)
    mask_ratio = c1.slider(
        tr("field.mask_ratio"), 0.1, 0.95, float(tb.get("mask_ratio", 0.75)), 0.05, disabled=base.kind == "sup"
    )
    base_m = tb.get("ema_momentum", 0.996)  # "auto" or a number (older files: a number)
    base_m = base_m if base_m == "auto" else float(base_m)
    numbers = {0.9, 0.95, 0.99, 0.996, 0.999, 0.9999} | ({base_m} if base_m != "auto" else set())
    momentum = c2.select_slider(
        tr("field.ema"),
        options=["auto", *sorted(numbers)],
        value=base_m,
        format_func=lambda v: tr("ema.auto") if v == "auto" else f"{v:g}",
        help=tr("help.ema"),
        disabled=base.kind != "rcmae",
    )
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input(tr("field.epochs"), 1, 300, int(tb.get("epochs", 30)))
    n_train = int(base.data.get("n_train") or 0)
    max_train = c2.number_input(
        tr("field.max_train"), 0, max(n_train, 1), int(tb.get("max_train") or 0), step=50, help=tr("help.max_train")
    )
    with_flat = c3.checkbox(tr("whatif.with_flatness"), value=True)
    c1, c2 = st.columns(2)
    prof = dashboard_profile().surface
    grid = c1.select_slider(tr("field.grid"), [5, 9, 17, 33], value=int(prof["grid"]))
    span = c2.number_input(tr("field.span"), 0.01, 5.0, float(prof["span"]), step=0.05, format="%.2f")
    if base.kind == "rcmae":
        st.caption(tr("whatif.ema_base", text=ema_description(tb)))
    go = st.form_submit_button(tr("whatif.go"), type="primary")

if go:
    try:
        cfg = variant_config(
            tb,
            mask_ratio=float(mask_ratio),
            ema_momentum=momentum if momentum == "auto" else float(momentum),
            epochs=int(epochs),
            max_train=int(max_train) or None,
        )
    except LandscapeError as e:
        error_box(e)
    else:
        var_label = describe_label(cfg.kind, cfg.key())
        if var_label == base_label:
            st.warning(tr("whatif.same"))
        else:
            surface = {"grid": int(grid), "span": float(span)}
            flat = {"density": False, "per_block": False} if with_flat else None
            key = task_key("whatif", base.sha256, cfg.key(), surface, flat)
            labels = (base_label, var_label)
            submit(key, msg("label.whatif", model=var_label), whatif_task(base.path, cfg, labels, surface, flat))
            st.session_state["whatif.job"] = key
            st.session_state["whatif.labels"] = labels

if not st.session_state.get("whatif.job"):
    st.info(tr("whatif.start"))
    st.stop()

view = st.radio(
    tr("field.view"),
    ["contour", "heatmap", "surface", "slices"],
    format_func=labeller("view."),
    horizontal=True,
    key="whatif.view",
)


def render(job) -> None:
    res: WhatIfResult | None = job.result if job.ok else job.partial
    if res is None:
        return
    for label, err in {**res.surfaces.errors, **res.flatness.errors}.items():
        error_box(f"{label}: {err}")
    panels = panels_of(res.surfaces)
    if panels:
        if view == "slices":
            fig = plot_slices(panels, relative=True, title=tr("whatif.fig_title"))
        else:
            fig = plot_surfaces(panels, view=view, relative=True, title=tr("whatif.fig_title"))
        chart(fig, "whatif-land")
        st.caption(tr("whatif.same_dirs"))
        df = metrics_table(res.surfaces)
        if not df.empty:
            st.dataframe(df.T, width="stretch")
    if job.ok:
        hist = {}
        for label, path in res.paths.items():
            try:
                hist[label] = list(checkpoint_info(path).history)
            except (LandscapeError, OSError) as e:
                error_box(f"{label}: {e}")
        left, right = st.columns(2)
        with left:
            metric = "probe_acc" if any("probe_acc" in (h[-1] if h else {}) for h in hist.values()) else "val_acc"
            fig = plot_training_curves(
                hist, metric, title=tr("models.curves_title", metric=tr("metric." + metric)), caption=tr("cap.curves")
            )
            chart(fig, "whatif-curves")
        rob = {k: r.robustness for k, r in res.flatness.reports.items() if r.robustness}
        with right:
            if rob:
                spec = next(iter(res.flatness.specs.values()))
                cap = tr("cap.robustness", draws=spec.robustness_draws, samples=spec.samples, seed=spec.seed)
                chart(plot_robustness(rob, "acc", title=tr("flat.rob_title"), caption=cap), "whatif-robust")
        if res.flatness.reports:
            rows = {
                k: {
                    tr("num.lambda_max"): fmt_num(r.top_eigenvalues[0] if r.top_eigenvalues else None),
                    tr("num.trace"): fmt_num(r.trace),
                    tr("num.sharp_avg"): fmt_num((r.sharpness or {}).get("average")),
                    tr("num.probe_acc"): fmt_num(r.probe_acc),
                    tr("num.acc_drop"): fmt_num(r.robustness_drop),
                }
                for k, r in res.flatness.reports.items()
            }
            st.dataframe(pd.DataFrame.from_dict(rows, orient="index"), width="stretch")


if st.session_state.get("whatif.job"):
    watch(st.session_state["whatif.job"], render)


def render_ft(job) -> None:
    """Fine-tuned accuracy at ROI_BUDGET labels per class beside the flatness: would longer pre-training help?"""
    if not job.ok:
        return
    steps = next(iter(job.result.values()))["steps"] if job.result else 0
    st.caption(tr("whatif.ft_help", n=ROI_BUDGET, steps=steps))
    rows = {k: {tr("whatif.ft_acc"): fmt_num(v["val_acc"])} for k, v in job.result.items()}
    st.dataframe(pd.DataFrame.from_dict(rows, orient="index"), width="stretch")


# The pre-trained kinds only: fine-tune base and variant once the variant is trained (cached, shared with the studies).
done = registry().get(st.session_state["whatif.job"])
if base.kind in ("mae", "rcmae") and done is not None and done.ok and len(done.result.paths) == 2:
    st.subheader(tr("whatif.ft_header", n=ROI_BUDGET))
    ft_key = task_key("whatif-ft", sorted(done.result.paths.items()), ROI_BUDGET)
    submit(ft_key, msg("label.whatif_ft", n=ROI_BUDGET), whatif_finetune_task(dict(done.result.paths), ROI_BUDGET))
    watch(ft_key, render_ft)
