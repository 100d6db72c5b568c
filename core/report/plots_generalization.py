"""Plotly figures of the label-efficiency study: accuracy vs labels per class, the generalization gap per budget, and
flatness against the gap over every cached run.

Pure functions of plain values (no streamlit, no torch), following `core.report.plots`' conventions: titles and axis
titles spell the quantity out, spreads are drawn and named (±1 sample std over seeds), a `caption` states how the
numbers were made (regime, setting) below the plot, missing values are gaps and are counted, never invented. The
text is English; `core.report.plots.localize` translates it (phrases in
`core.report.i18n_generalization.FIGURE_PHRASES_JA`).

A *series* is what `core.studies.generalization.study_series` returns for one metric: per model kind a dict
{"label", "x" (labels per class), "tick" (its axis text), "mean", "std", "n" (seeds)}, one entry per budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.report.plots import PlotInputError, captions, finite_or_none, rgba

GEN_COLORS = {"mae": "#1f77b4", "rcmae": "#d62728", "scratch": "#7f7f7f"}
GEN_NAMES = {"mae": "MAE-FT", "rcmae": "RC-MAE-FT", "scratch": "from scratch"}
# Two lines: a y-axis title longer than the plot's height runs into the chart title at 1280x800.
GAP_NAMES = {
    "gap_acc": "accuracy gap, train - validation<br>(mean, bar: +-1 std over seeds)",
    "gap_loss": "loss gap, train - validation<br>(mean, bar: +-1 std over seeds)",
}


def _finite(v) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(float(v))


def plot_label_efficiency(
    series: dict[str, dict], title: str | None = None, *, caption: str = "", y_name: str | None = None
) -> go.Figure:
    """Validation accuracy against labels per class (log x), one line per model kind with a ±1 std band over seeds.

    Args:
        series: kind -> {"x", "tick", "mean", "std", "n"} (lists over budgets; NaN / None where not measured).
        title: figure title.
        caption: the regime and setting.
        y_name: the y-axis title (default: validation accuracy with its band named).

    Returns:
        The figure: per kind a band trace (no legend entry, only where std is known) and a mean line.

    Raises:
        PlotInputError: a series whose lists differ in length.
    """
    fig = go.Figure()
    ticks: dict[float, str] = {}
    one_seed = []
    for kind, s in series.items():
        x, mean, std = list(s.get("x") or []), list(s.get("mean") or []), list(s.get("std") or [])
        if not (len(x) == len(mean) == len(std)):
            raise PlotInputError(f"series {kind!r}: x, mean and std differ in length")
        color = GEN_COLORS.get(kind, "#9467bd")
        name = s.get("label") or GEN_NAMES.get(kind, kind)
        for xv, t in zip(x, s.get("tick") or [], strict=False):
            if _finite(xv):
                ticks[float(xv)] = str(t)
        pts = [
            (float(a), float(m), float(d) if _finite(d) else math.nan)
            for a, m, d in zip(x, mean, std, strict=True)
            if _finite(a) and _finite(m)
        ]
        if not pts:
            continue
        band = [(a, m, d) for a, m, d in pts if math.isfinite(d)]
        if band:
            xs = [a for a, _, _ in band]
            fig.add_trace(
                go.Scatter(
                    x=xs + xs[::-1],
                    y=[m + d for _, m, d in band] + [m - d for _, m, d in band][::-1],
                    fill="toself",
                    mode="lines",
                    fillcolor=rgba(color, 0.18),
                    line=dict(width=0),
                    hoverinfo="skip",
                    legendgroup=kind,
                    showlegend=False,
                    name=f"{name} +-1 std",
                )
            )
        if len(band) < len(pts):
            one_seed.append(name)
        fig.add_trace(
            go.Scatter(
                x=[a for a, _, _ in pts],
                y=[m for _, m, _ in pts],
                mode="lines+markers",
                name=name,
                legendgroup=kind,
                line=dict(color=color),
                marker=dict(size=8),
            )
        )
    vals = sorted(ticks)
    fig.update_xaxes(
        title_text="labels per class (log scale)", type="log", tickvals=vals, ticktext=[ticks[v] for v in vals]
    )
    fig.update_yaxes(title_text=y_name or "validation accuracy<br>(mean, band: +-1 std over seeds)")
    fig.update_layout(title=dict(text=title or "Validation accuracy vs labels per class"), height=440)
    notes = [caption] if caption else []
    if one_seed:
        notes.append(f"one seed: no spread ({', '.join(one_seed)})")
    captions(fig, notes)
    return fig


def plot_gap(
    series: dict[str, dict], metric: str = "gap_acc", title: str | None = None, *, caption: str = ""
) -> go.Figure:
    """The generalization gap (train - validation) per budget: grouped bars per model kind, ±1 std error bars.

    Args:
        series: kind -> {"tick", "mean", "std", "n"} over budgets (as for `plot_label_efficiency`).
        metric: "gap_acc" or "gap_loss" (names the axis).
        title: figure title.
        caption: the regime and setting.

    Raises:
        PlotInputError: an unknown metric.
    """
    if metric not in GAP_NAMES:
        raise PlotInputError(f"unknown gap {metric!r}; choose gap_acc or gap_loss")
    fig = go.Figure()
    order: list[str] = []
    for s in series.values():
        for t in s.get("tick") or []:
            if str(t) not in order:
                order.append(str(t))
    for kind, s in series.items():
        ticks = [str(t) for t in s.get("tick") or []]
        mean = finite_or_none(s.get("mean"))
        std = [float(v) if _finite(v) else 0.0 for v in (s.get("std") or [])]
        if not any(v is not None for v in mean):
            continue
        fig.add_trace(
            go.Bar(
                x=ticks,
                y=mean,
                error_y=dict(type="data", array=std, visible=True),
                name=s.get("label") or GEN_NAMES.get(kind, kind),
                marker_color=GEN_COLORS.get(kind, "#9467bd"),
                hovertext=[f"n = {n}" for n in (s.get("n") or [])],
            )
        )
    fig.update_xaxes(title_text="labels per class", type="category", categoryorder="array", categoryarray=order)
    fig.update_yaxes(title_text=GAP_NAMES[metric], zeroline=True)
    fig.update_layout(barmode="group", title=dict(text=title or "Generalization gap per budget"), height=420)
    captions(fig, [caption] if caption else [])
    return fig


def plot_flatness_vs_gap(
    points: Sequence[dict],
    x_name: str,
    y_name: str,
    stat: dict | None = None,
    title: str | None = None,
    *,
    log_x: bool = False,
    caption: str = "",
) -> go.Figure:
    """One point per fine-tuned or from-scratch run: a flatness number against its generalization gap.

    Args:
        points: dicts with "kind" (mae | rcmae | scratch), "x", "y" and "label" (e.g. "10/class · seed 0"); points
            with a missing value are left out and counted in the caption.
        x_name, y_name: the axis titles.
        stat: `core.report.findings.correlation` of the points ({"n", "spearman", "p_spearman", ...}); stated in the
            title.
            title.
        title: figure title (default: both names and the statistic).
        log_x: logarithmic x axis.
        caption: how the numbers were made.
    """
    usable = [p for p in points if _finite(p.get("x")) and _finite(p.get("y"))]
    dropped = len(points) - len(usable)
    fig = go.Figure()
    kinds = list(dict.fromkeys(str(p.get("kind", "other")) for p in usable))
    for kind in kinds:
        sel = [p for p in usable if str(p.get("kind", "other")) == kind]
        fig.add_trace(
            go.Scatter(
                x=[float(p["x"]) for p in sel],
                y=[float(p["y"]) for p in sel],
                mode="markers",
                hovertext=[str(p.get("label", "")) for p in sel],
                name=GEN_NAMES.get(kind, kind),
                marker=dict(size=10, color=GEN_COLORS.get(kind, "#9467bd"), opacity=0.85),
            )
        )
    n = len(usable)
    st = stat or {}
    if n < 3 or not _finite(st.get("spearman")):
        text = f"n = {n}: n too small for a correlation (need at least 3 runs)"
    else:
        p = st.get("p_spearman")
        text = (
            f"Spearman rho = {st['spearman']:+.2f}, permutation p = {p:.3g}, n = {n}"
            if _finite(p)
            else (f"Spearman rho = {st['spearman']:+.2f}, n = {n}")
        )
    fig.update_xaxes(title_text=x_name, type="log" if log_x else "linear")
    xs = np.array([float(p["x"]) for p in usable])
    if not log_x and xs.size and np.ptp(xs) > 0:
        pad = 0.08 * float(np.ptp(xs))
        fig.update_xaxes(range=[float(xs.min()) - pad, float(xs.max()) + pad])
    fig.update_yaxes(title_text=y_name, zeroline=True)
    fig.update_layout(title=dict(text=(title or f"{y_name} vs {x_name}") + f"<br><sub>{text}</sub>"), height=460)
    notes = [caption] if caption else []
    if dropped:
        notes.append(f"{dropped} run(s) left out: not measured")
    captions(fig, notes)
    return fig
