"""Runs: every cached landscape, flatness result and checkpoint; inspect, delete, export (npz, CSV, HTML)."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import streamlit as st

from core.app import list_checkpoints, overview_defaults
from core.errors import LandscapeError, free_bytes, human_bytes
from core.paths import cache_root
from core.report import (
    Panel,
    distinguishing_fields,
    figure_html,
    localize,
    plot_density,
    plot_eigenvalues,
    plot_per_block,
    plot_robustness,
    plot_surfaces,
    surface_caption,
)
from core.store import Store, cache_size, parse_age, parse_size, prune
from pages._ui import chart, error_box, fmt_num, labeller, lang, registry, tr, watch

st.title(tr("runs.title"))
st.caption(tr("runs.intro", root=str(cache_root())))

store = Store()

# Jobs in progress, shared by every viewer: cancelling one here stops it for everyone (the Overview has no button).
active_jobs = [j for j in registry().jobs() if j.active]
if active_jobs:
    st.subheader(tr("runs.active"))
    st.caption(tr("runs.active_note"))
    for j in active_jobs:  # each polls while it runs; the page redraws once when it ends
        watch(j.key, lambda _job: None)


def housekeeping() -> None:
    """The cache's size and free disk, and `python -m core cache prune` with a dry-run preview first."""
    root = cache_root()
    free = free_bytes(root)
    st.caption(tr("runs.size", size=human_bytes(cache_size(root)), free=human_bytes(free) if free is not None else "?"))
    with st.expander(tr("runs.prune"), expanded=False):
        c1, c2, c3 = st.columns(3)
        max_size = c1.text_input(tr("runs.max_size"), value="5GB", key="runs.max_size")
        older = c2.text_input(tr("runs.older_than"), value="", placeholder="30d", key="runs.older_than")
        defaults = c3.checkbox(tr("runs.include_defaults"), value=False, key="runs.include_defaults")
        try:
            opts = dict(
                max_size=parse_size(max_size) if max_size.strip() else None,
                older_than=parse_age(older) if older.strip() else None,
                include_defaults=defaults,
            )
            plan = prune(root, dry_run=True, overview=overview_defaults(), **opts)  # the preview: nothing is deleted
        except LandscapeError as err:
            error_box(err)
            return
        st.write(plan.describe())
        if plan.removed:
            rows = [
                {
                    tr("col.what"): f"{i.kind} · {i.label or i.name}",
                    tr("col.size"): human_bytes(i.size_bytes),
                    tr("runs.last_used"): when(i.last_used),
                }
                for i in plan.removed
            ]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        ok = st.checkbox(tr("runs.prune_confirm", n=len(plan.removed)), key="runs.prune_confirm")
        if st.button(tr("runs.prune_now"), disabled=not (ok and plan.removed), key="runs.prune_now"):
            done = prune(root, overview=overview_defaults(), **opts)
            forget_finished_jobs()
            st.success(done.describe())


def when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def forget_finished_jobs() -> None:
    """Deleted results must not be served from finished jobs that still hold them."""
    reg = registry()
    for j in reg.jobs():
        reg.forget(j.key)


def describe_entry(e) -> str:
    meta = ((e.meta or {}).get("meta") or {}) if e.meta else {}
    if e.kind == "landscape":
        spec = meta.get("spec") or {}
        name = Path(str(spec.get("checkpoint", "?"))).name
        g = spec.get("grid")
        size = f"{g}x{g}" if spec.get("dim") == 2 else f"{g}"
        return (
            f"{meta.get('model_kind', '?')} · {name} · {size} · span {spec.get('span')} · {meta.get('loss_kind', '')}"
        )
    if e.kind == "flatness":
        key = e.key if isinstance(e.key, dict) else {}
        return f"{key.get('stage', '?')} · sha {str((key.get('objective') or {}).get('checkpoint', ''))[:10]}"
    return str(e.key)[:80]


def entry_fields(e) -> dict:
    """The fields that define an entry (a landscape's spec and objective, a flatness stage's key), flattened."""
    if e.kind == "landscape":
        meta = ((e.meta or {}).get("meta") or {}) if e.meta else {}
        src = {"spec": meta.get("spec") or {}, "objective": meta.get("objective") or {}}
    else:
        src = e.key if isinstance(e.key, dict) else {"key": e.key}
    out: dict = {}

    def walk(prefix: str, v) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(k if prefix in ("", "spec", "objective") else f"{prefix}.{k}", x)
        else:
            out.setdefault(prefix, v if isinstance(v, str | int | float | bool | type(None)) else str(v))

    walk("", src)
    return out


# Fields that never tell two entries apart for a reader (hashes, paths, devices).
_NOT_SHOWN = ("checkpoint", "device", "batch_points", "path")


def descriptions(entries: list) -> dict[str, str]:
    """key hash -> the entry's short description, plus the fields in which it differs from entries that would
    otherwise read the same (loss terms, scope, normalization, ...)."""
    base = {e.key_hash: describe_entry(e) for e in entries}
    groups: dict[str, list] = {}
    for e in entries:
        groups.setdefault(base[e.key_hash], []).append(e)
    out = dict(base)
    for text, group in groups.items():
        if len(group) < 2:
            continue
        for e, diff in zip(group, distinguishing_fields([entry_fields(x) for x in group], _NOT_SHOWN), strict=True):
            if diff:
                out[e.key_hash] = f"{text} · {tr('runs.differs')}: " + ", ".join(f"{k}={v}" for k, v in diff.items())
    return out


def value_arrays(value: dict) -> dict[str, np.ndarray]:
    """The numbers of a flatness stage as named arrays (nested dicts flattened with dots, lists of dicts by row)."""
    out: dict[str, np.ndarray] = {}

    def walk(prefix: str, v) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for i, x in enumerate(v):
                walk(f"{prefix}.{i}", x)
        elif isinstance(v, bool | int | float) or (isinstance(v, list) and all(isinstance(x, int | float) for x in v)):
            out[prefix] = np.asarray(v, dtype=float)

    walk("", value)
    return out


def flatness_figure(stage: str, value: dict, label: str):
    """A figure of one cached flatness stage, or None for stages that are single numbers."""
    if stage == "eigenvalues" and value.get("values"):
        return plot_eigenvalues({label: value["values"]}, title=tr("flat.eig_title"))
    if stage == "robustness" and value.get("sigmas"):
        return plot_robustness({label: value}, "acc" if value.get("acc_mean") else "loss", title=tr("flat.rob_title"))
    if stage == "density" and value.get("grid"):
        return plot_density({label: value}, title=tr("flat.density_title"))
    if stage == "per_block" and value.get("rows"):
        return plot_per_block({label: value["rows"]}, "lambda_max", title=tr("flat.block_title"))
    return None


def downloads(store: Store, kind: str, e, name: str) -> None:
    """npz / CSV / HTML of a finished entry, and a preview."""
    entry = store.get(kind, e.key_hash)
    c1, c2, c3 = st.columns(3)
    fig = None
    if kind == "landscape":
        with tempfile.TemporaryDirectory(prefix="landscape-export-") as tmp:
            npz = entry.export_npz(Path(tmp) / f"{name}.npz").read_bytes()
            csv = entry.export_csv(Path(tmp) / f"{name}.csv").read_bytes()
        res = entry.result()
        if res is not None and "loss" in res.arrays:
            a = res.arrays
            spec = (res.meta or {}).get("spec") or {}
            two = a["loss"].ndim == 2
            fields = {"dim": 2 if two else 1, "grid": "?", "span": 0.0, "samples": "?", "seed": "?", "mask_seed": "?"}
            fields |= {"norm": "filter", "ignore": "biasbn", "scope": "all", "loss": "own"} | spec
            cap = surface_caption(SimpleNamespace(**fields), lang())  # option names, in the reader's language
            panel = Panel(describe_entry(e), a["xs"], a.get("ys") if two else None, np.asarray(a["loss"]), cap)
            fig = plot_surfaces([panel], view="contour")
    else:
        value = ((e.meta or {}).get("meta") or {}).get("value") or {}
        arrays = value_arrays(value)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        npz = buf.getvalue()
        rows = ["name,i,value"] + [
            f"{k},{i},{x!r}" for k, arr in arrays.items() for i, x in enumerate(arr.ravel().tolist())
        ]
        csv = ("\n".join(rows) + "\n").encode()
        fig = flatness_figure((e.key or {}).get("stage", ""), value, describe_entry(e))
    c1.download_button(tr("runs.download", fmt="npz"), npz, file_name=f"{name}.npz", key="runs.dl_npz")
    c2.download_button(tr("runs.download", fmt="CSV"), csv, file_name=f"{name}.csv", key="runs.dl_csv")
    if fig is not None:
        c3.download_button(
            tr("runs.download", fmt="HTML"),
            figure_html(localize(fig, lang())).encode(),  # the download reads like the preview
            file_name=f"{name}.html",
            mime="text/html",
            key="runs.dl_html",
        )
        st.subheader(tr("runs.preview"))
        chart(fig, key="runs-preview")
    elif kind == "flatness":
        st.subheader(tr("runs.preview"))
        st.json(((e.meta or {}).get("meta") or {}).get("value"), expanded=True)


housekeeping()

kinds = ["landscape", "flatness", "checkpoints"]
kind = st.radio(tr("runs.kind"), kinds, format_func=labeller("runs.kind_"), horizontal=True, key="runs.kind")

if kind == "checkpoints":
    infos = list_checkpoints(include_probes=True)
    if not infos:
        st.info(tr("models.none"))
        st.stop()
    df = pd.DataFrame(
        [
            {
                tr("col.model"): i.label,
                tr("col.file"): i.name,
                tr("col.size"): f"{Path(i.path).stat().st_size / 1e6:.1f} MB",
                tr("col.probe_acc"): fmt_num(i.probe_acc),
            }
            for i in infos
        ]
    )
    st.dataframe(df, hide_index=True, width="stretch")
    pick = st.selectbox(tr("runs.pick"), [i.name for i in infos], key="runs.ckpt")
    info = next(i for i in infos if i.name == pick)
    st.json({"path": info.path, "sha256": info.sha256, "train": info.train, "data": info.data}, expanded=False)
    p = Path(info.path)
    if p.stat().st_size < 200e6:
        st.download_button(tr("runs.download_ckpt"), p.read_bytes(), file_name=p.name, key="runs.dl_ckpt")
    confirm = st.checkbox(tr("runs.confirm", name=p.name), key="runs.confirm_ckpt")
    if st.button(tr("runs.delete"), disabled=not confirm, key="runs.del_ckpt"):
        root = (cache_root() / "checkpoints").resolve()
        if p.resolve().parent != root:
            error_box(tr("runs.outside"))
        else:
            p.unlink(missing_ok=True)
            forget_finished_jobs()
            st.success(tr("runs.deleted", name=p.name))
            st.rerun()
    st.stop()

try:
    entries = store.list(kind)
except LandscapeError as e:
    error_box(e)
    st.stop()
if not entries:
    st.info(tr("runs.empty"))
    st.stop()

said = descriptions(entries)
table = pd.DataFrame(
    [
        {
            "id": e.key_hash[:12],
            tr("col.what"): said[e.key_hash],
            tr("col.finished"): e.finished,
            tr("runs.points"): e.n_points_logged or e.n_steps_logged,
            tr("col.created"): when(e.created),
            tr("col.size"): f"{e.size_bytes / 1e3:.1f} kB",
        }
        for e in entries
    ]
)
st.dataframe(table, hide_index=True, width="stretch")

ids = [e.key_hash for e in entries]
pick = st.selectbox(tr("runs.pick"), ids, format_func=lambda h: f"{h[:12]} · {said[h]}", key="runs.entry")
e = entries[ids.index(pick)]
with st.expander(tr("runs.meta"), expanded=False):
    st.json({"key": e.key, "meta": e.meta}, expanded=False)


if e.finished:
    try:
        downloads(store, kind, e, f"{kind}_{e.key_hash[:12]}")
    except LandscapeError as err:
        error_box(err)

confirm = st.checkbox(tr("runs.confirm", name=e.key_hash[:12]), key="runs.confirm_entry")
if st.button(tr("runs.delete"), disabled=not confirm, key="runs.del_entry"):
    try:
        store.delete(kind, e.key_hash)
    except LandscapeError as err:
        error_box(err)
    else:
        forget_finished_jobs()
        st.success(tr("runs.deleted", name=e.key_hash[:12]))
        st.rerun()
