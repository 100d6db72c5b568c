"""Models: the cached checkpoints with their training curves, training a new one, and loading one by path."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.app import KIND_LABEL, confined_path, describe_label, inspect_task, list_checkpoints, task_key, train_task
from core.errors import LandscapeError
from core.models import EMA_SCHEDULES, TrainConfig, ema_description
from core.report import msg, plot_training_curves
from pages._ui import chart, error_box, fmt_num, labeller, registry, submit, tr, watch

st.title(tr("models.title"))
st.caption(tr("models.intro"))


def show_description(job) -> None:
    if job.ok:
        st.code(job.result.description, language=None)


# ----------------------------------------------------------------------------------------------------------------------
st.header(tr("models.cached"))
infos = list_checkpoints()
if not infos:
    st.info(tr("models.none"))
else:
    table = pd.DataFrame(
        [
            {
                tr("col.model"): i.label,
                tr("col.kind"): KIND_LABEL.get(i.kind, i.kind),
                tr("col.data"): i.data.get("spec", "-"),
                tr("col.epochs"): len(i.history),
                tr("col.probe_acc"): fmt_num(i.probe_acc),
                tr("col.params"): f"{i.n_params:,}",
                tr("col.epoch_time"): fmt_num(i.epoch_time),
                tr("col.ema"): ema_description(i.train) if i.kind == "rcmae" else "-",
                tr("col.file"): i.name,
            }
            for i in infos
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch")

    labels = [i.label for i in infos]
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect(tr("models.curves_for"), labels, default=labels[: min(6, len(labels))], key="models.curves")
    metrics = ["train_loss", "val_loss", "probe_acc", "val_acc", "time_s"]
    metric = c2.selectbox(tr("models.metric"), metrics, format_func=labeller("metric."), key="models.metric")
    hist = {i.label: list(i.history) for i in infos if i.label in chosen}
    if hist:
        fig = plot_training_curves(
            hist, metric, title=tr("models.curves_title", metric=tr("metric." + metric)), caption=tr("cap.curves")
        )
        chart(fig, key="models-curves")

    pick = st.selectbox(tr("models.describe"), labels, key="models.describe")
    info = next(i for i in infos if i.label == pick)
    with st.expander(tr("models.details", name=info.name), expanded=True):
        dkey = task_key("inspect", info.path, info.sha256)
        submit(dkey, msg("label.inspect", name=info.name), inspect_task(info.path))
        watch(dkey, show_description)

# ----------------------------------------------------------------------------------------------------------------------
st.header(tr("models.train"))
with st.form("train-form"):
    c1, c2, c3 = st.columns(3)
    kind = c1.selectbox(tr("field.kind"), ["mae", "rcmae", "sup"], format_func=lambda k: KIND_LABEL[k])
    data = c2.selectbox(tr("field.data"), ["digits", "synthetic"], format_func=labeller("data."))
    preset = c3.selectbox(tr("field.preset"), ["tiny", "micro"], format_func=labeller("preset."))
    c1, c2, c3 = st.columns(3)
    epochs = c1.number_input(tr("field.epochs"), min_value=1, max_value=300, value=30, step=1)
    seed = c2.number_input(tr("field.seed"), min_value=0, max_value=10_000, value=1, step=1)
    max_train = c3.number_input(tr("field.max_train"), min_value=0, max_value=100_000, value=0, step=50)
    c1, c2, c3 = st.columns(3)
    mask_ratio = c1.slider(tr("field.mask_ratio"), 0.1, 0.95, 0.75, 0.05, help=tr("help.mask_ratio"))
    momentum = c2.select_slider(
        tr("field.ema"),
        options=["auto", 0.9, 0.95, 0.99, 0.996, 0.999, 0.9999],
        value="auto",
        format_func=lambda v: tr("ema.auto") if v == "auto" else f"{v:g}",
        help=tr("help.ema"),
    )
    schedule = c3.selectbox(
        tr("field.ema_schedule"), list(EMA_SCHEDULES), format_func=labeller("ema."), help=tr("help.ema_schedule")
    )
    go = st.form_submit_button(tr("models.train_go"), type="primary")

if go:
    try:
        cfg = TrainConfig(
            kind=kind,
            data=data,
            preset=preset,
            epochs=int(epochs),
            seed=int(seed),
            mask_ratio=float(mask_ratio),
            ema_momentum=momentum if momentum == "auto" else float(momentum),
            ema_schedule=schedule,
            max_train=int(max_train) or None,
        )
    except LandscapeError as e:
        error_box(e)
    else:
        label = describe_label(cfg.kind, cfg.key())
        key = task_key("train", cfg.key())
        submit(key, msg("label.train", model=label), train_task(cfg, label))
        st.session_state["models.train_key"] = key


def show_trained(job) -> None:
    if job.ok:
        st.success(tr("models.trained", path=job.result))


if st.session_state.get("models.train_key"):
    watch(st.session_state["models.train_key"], show_trained)

# ----------------------------------------------------------------------------------------------------------------------
st.header(tr("models.load"))
st.caption(tr("models.load_help"))
with st.form("load-form"):
    path_text = st.text_input(tr("field.path"), placeholder="cache/checkpoints/mae_digits_tiny_s0_....pt")
    load = st.form_submit_button(tr("models.inspect"))

if load:
    try:
        real = confined_path(path_text)
    except LandscapeError as e:
        error_box(e)
        st.session_state.pop("models.inspect_key", None)
    else:
        st_ = real.stat()
        key = task_key("inspect", str(real), st_.st_size, st_.st_mtime_ns)
        submit(key, msg("label.inspect", name=real.name), inspect_task(str(real)))
        st.session_state["models.inspect_key"] = key


def show_inspection(job) -> None:
    if not job.ok:
        return
    ins = job.result
    st.code(ins.description, language=None)
    if ins.kind in ("mae", "rcmae", "sup", "probe"):
        extra = st.session_state.setdefault("extra_ckpts", {})
        label = f"{KIND_LABEL.get(ins.kind, ins.kind)} · {ins.path.rsplit('/', 1)[-1]}"
        if ins.path not in extra.values():
            extra[label] = ins.path
        st.caption(tr("models.added", label=label))


if st.session_state.get("models.inspect_key") and registry().get(st.session_state["models.inspect_key"]):
    watch(st.session_state["models.inspect_key"], show_inspection)
