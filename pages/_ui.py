"""What every page shares: the language, the job registry singleton, job progress, charts and captions.

Pages gather choices into configs, submit work to the registry and draw what `core` returns; nothing heavy runs in
a page script. Progress is drawn by fragments that poll the registry while a job is active and stop polling (one
full rerun) when it finishes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.app import (
    Job,
    JobContext,
    JobRegistry,
    cache_cap_after_job,
    coarse_view,
    default_trio,
    error_line,
    list_checkpoints,
)
from core.errors import LandscapeError
from core.models import checkpoint_path
from core.report import Panel, gui_error, localize, render_message, surface_metric_name, t, wrap_captions
from core.report import surface_caption as core_surface_caption

POLL_S = 1.0


# ----------------------------------------------------------------------------------------------------------------------
# Language


LONG_JOB_SECONDS = 600  # jobs estimated beyond this need the "run even if long" box ticked


def lang() -> str:
    return st.session_state.get("lang", "en")


def tr(key: str, **kw: Any) -> str:
    """The UI text for `key` in the session's language, formatted with `kw`."""
    text = t(key, lang())
    return text.format(**kw) if kw else text


def labeller(prefix: str) -> Callable[[Any], str]:
    """A format_func for option `v`: the text of `prefix + str(v)` in the language of this run (bound now, since
    the test harness may call it outside the run)."""
    code = lang()
    return lambda v: t(f"{prefix}{v}", code)


def say(message: str | None) -> str:
    """A job message (an i18n key with arguments, or plain text) in the session's language."""
    return render_message(message or "", lang())


# ----------------------------------------------------------------------------------------------------------------------
# Jobs


@st.cache_resource(show_spinner=False, on_release=lambda reg: reg.shutdown(cancel=True, timeout=0))
def registry() -> JobRegistry:
    """The one job registry of this server: every session sees the same jobs (and shares identical ones).

    Env `LANDSCAPE_JOB_WORKERS` sets the worker threads (default 1: the machine has 2 cores; 0 queues only).
    """
    return JobRegistry(max_workers=int(os.environ.get("LANDSCAPE_JOB_WORKERS", "1")), after_job=cache_cap_after_job)


def submit(key: str, label: str, fn: Callable[[JobContext], Any], light: bool = False) -> Job:
    """Queue a job on the shared registry; `light` for seconds of work that must not wait behind a study."""
    return registry().submit(key, label, fn, light=light)


def eta_text(job: Job) -> str:
    """ "about 3 min left" from the job's measured rate so far (elapsed / fraction), once there is a rate to read."""
    f = job.fraction
    if job.status != "running" or f < 0.03 or f >= 1.0 or job.elapsed < 5:
        return ""
    left = job.elapsed * (1 - f) / f
    return tr("job.eta_min", n=f"{left / 60:.0f}") if left >= 90 else tr("job.eta_s", n=f"{left:.0f}")


def status_line(job: Job, cancel: bool = True) -> None:
    """A progress bar with the time left (active), an error box (failed) or a note (cancelled); a cancel button while
    active unless `cancel` is False (a job shared by every viewer, cancelled from the Runs page)."""
    if job.active:
        cols = st.columns([5, 1]) if cancel else [st.container()]
        text = say(job.message) or tr("job.queued_msg")
        if job.status == "queued":
            ahead = sum(1 for j in registry().jobs() if j.active and j.created < job.created)
            text = tr("job.waiting", n=ahead)
        eta = eta_text(job)
        when = f"{job.fraction:.0%}, {job.elapsed:.0f} s" + (f", {eta}" if eta else "")
        cols[0].progress(job.fraction, text=f"{say(job.label)} - {text} ({when})")
        if cancel and cols[1].button(tr("job.cancel"), key=f"cancel-{job.key}"):
            registry().cancel(job.key)
    elif job.status == "failed":
        st.error(f"{say(job.label)}: {gui_error(job.error or '', lang())}")
    elif job.status == "cancelled":
        st.warning(tr("job.cancelled", label=say(job.label)))


def watch(key: str, render: Callable[[Job], None], *, show_status: bool = True, cancel: bool = True) -> None:
    """Draw `render(job)` now, and again every POLL_S seconds while the job is active.

    When the job finishes the fragment asks for one full rerun, so that the page draws the final state without
    polling.
    """
    job = registry().get(key)
    if job is None:
        return
    was_active = job.active

    def body() -> None:
        j = registry().get(key)
        if j is None:
            return
        if show_status:
            status_line(j, cancel)
        render(j)
        if was_active and not j.active:
            st.rerun()

    body.__qualname__ = f"watch_{abs(hash(key))}"
    st.fragment(body, run_every=POLL_S if was_active else None)()


def error_box(e: BaseException | str) -> None:
    """A core error as one line (never a traceback), in the dashboard's words: core writes its errors for the CLI
    ("use --loss probe"); `core.report.gui_error` names the page's controls instead."""
    st.error(gui_error(e if isinstance(e, str) else error_line(e), lang()))


def guarded(fn: Callable[[], Any]) -> Any:
    """Run `fn`; a LandscapeError becomes an error box and None."""
    try:
        return fn()
    except LandscapeError as e:
        error_box(e)
        return None


# ----------------------------------------------------------------------------------------------------------------------
# Models


def model_choices(include_extra: bool = True) -> dict[str, str]:
    """Display label -> checkpoint path for every cached model (and those loaded by path in this session)."""
    out: dict[str, str] = {}
    for info in list_checkpoints():
        label = info.label
        if label in out:
            label = f"{label} ({info.name})"
        out[label] = info.path
    if include_extra:
        for label, path in st.session_state.get("extra_ckpts", {}).items():
            if path not in out.values():
                out[label] = path
    return out


def default_selection(choices: dict[str, str], n: int = 3) -> list[str]:
    """The default trio when it is in `choices` (MAE, RC-MAE, Sup-ViT at seed 0), else the first `n`."""
    wanted = {str(checkpoint_path(c)) for c in default_trio().values()}
    picked = [lab for lab, p in choices.items() if p in wanted]
    order = {"MAE": 0, "RC-MAE": 1, "Sup-ViT": 2}
    picked.sort(key=lambda lab: order.get(lab.split(" ·")[0], 9))
    return picked or list(choices)[:n]


# ----------------------------------------------------------------------------------------------------------------------
# Charts


def surface_caption(spec: Any, partial: bool = False) -> str:
    """How a landscape was made: grid, span, images, seeds, normalization (in the session's language)."""
    text = core_surface_caption(spec, lang())
    return text + (" " + tr("cap.partial") if partial else "")


def panels_of(batch: Any, relative_caption: bool = True) -> list[Panel]:
    """One plot panel per surface of a batch (coarse sub-grid while it is still filling in)."""
    panels = []
    for label, s in batch.surfaces.items():
        xs, ys, loss = coarse_view(s)
        spec = batch.specs.get(label)
        cap = surface_caption(spec, partial=not s.complete) if spec is not None else ""
        if not s.complete and loss.shape != s.loss.shape:
            n = len(xs)
            cap += " " + tr("cap.coarse", n=f"{n}x{n}" if loss.ndim == 2 else str(n))
        title = label.replace(" · ", "<br>", 1) if len(label) > 28 else label  # long labels overlap side by side
        panels.append(Panel(title, xs, ys, loss, caption=cap, path=s.path_coords if s.complete else None))
    return panels


def chart(fig: Any, key: str) -> None:
    """A plotly chart in the session's language that fills the width, under a key of its own."""
    st.plotly_chart(wrap_captions(localize(fig, lang())), key=key, width="stretch")


def metrics_table(batch: Any) -> pd.DataFrame:
    """Landscape numbers per finished surface (rows: models)."""
    rows = {}
    for label, s in batch.surfaces.items():
        if s.complete and s.metrics:
            rows[label] = {k: v for k, v in s.metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    df = pd.DataFrame.from_dict(rows, orient="index")
    return df.rename(columns=lambda k: surface_metric_name(str(k), lang()))


def fmt_num(x: Any) -> str:
    if x is None:
        return "-"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(v):
        return "-"
    return f"{v:.4g}"
