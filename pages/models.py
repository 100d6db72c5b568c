"""Models: the cached checkpoints with their training curves, training a new one, and loading one by path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core.app import (
    KIND_LABEL,
    describe_label,
    error_line,
    inspect_task,
    list_checkpoints,
    task_key,
    train_task,
    typed_checkpoint,
)
from core.errors import LandscapeError
from core.models import EMA_SCHEDULES, TrainConfig, ema_description, is_hub_reference
from core.report import msg, plot_training_curves
from pages._ui import chart, error_box, fmt_num, labeller, registry, submit, tr, watch

st.title(tr("models.title"))
st.caption(tr("models.intro"))

# An error of a user action (train, load) stays until the user acts again: the page reruns whenever a background
# job finishes, and an error drawn only in the run that raised it would vanish with that rerun.
ERRORS = "models.errors"


def _stamp(path: Path) -> tuple[int, int]:
    """(size, newest mtime) of a file, or of the files of a model folder: a changed file is inspected again."""
    files = [path] if path.is_file() else [f for f in path.iterdir() if f.is_file()]
    stats = [f.stat() for f in files]
    return sum(st_.st_size for st_ in stats), max((st_.st_mtime_ns for st_ in stats), default=0)


def remember_error(action: str, e: BaseException | str) -> None:
    st.session_state.setdefault(ERRORS, {})[action] = e if isinstance(e, str) else error_line(e)


def forget_error(action: str) -> None:
    st.session_state.setdefault(ERRORS, {}).pop(action, None)


def show_error(action: str) -> None:
    text = st.session_state.get(ERRORS, {}).get(action)
    if text:
        error_box(text)


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
            {  # probe accuracy: the linear probe on the whole validation split (core.report.naming)
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
        submit(dkey, msg("label.inspect", name=info.name), inspect_task(info.path), light=True)
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
    forget_error("train")
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
        remember_error("train", e)
    else:
        label = describe_label(cfg.kind, cfg.key())
        key = task_key("train", cfg.key())
        submit(key, msg("label.train", model=label), train_task(cfg, label))
        st.session_state["models.train_key"] = key
show_error("train")


def show_trained(job) -> None:
    if job.ok:
        st.success(tr("models.trained", path=job.result))


if st.session_state.get("models.train_key"):
    watch(st.session_state["models.train_key"], show_trained)

# ----------------------------------------------------------------------------------------------------------------------
st.header(tr("models.load"))
st.caption(tr("models.load_help"))
with st.form("load-form"):
    path_text = st.text_input(
        tr("field.path"), placeholder="cache/checkpoints/mae_....pt · a model folder · hf:org/name · timm:name"
    )
    load = st.form_submit_button(tr("models.inspect"))

if load:
    forget_error("load")
    try:
        real = typed_checkpoint(path_text)  # a file, a model folder or a hub id (hf:..., timm:...)
    except LandscapeError as e:
        remember_error("load", e)
        st.session_state.pop("models.inspect_key", None)
    else:
        stamp = (0, 0) if is_hub_reference(real) else _stamp(Path(real))
        key = task_key("inspect", real, *stamp)
        submit(key, msg("label.inspect", name=Path(real).name), inspect_task(real), light=True)
        st.session_state["models.inspect_key"] = key
show_error("load")


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
