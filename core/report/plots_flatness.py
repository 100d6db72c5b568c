"""Plotly figures of flatness reports and training: training curves, accuracy under weight noise, Hessian
spectral density, top eigenvalues, per-block breakdowns and flatness against probe accuracy (with its rank
correlations). The conventions of `core.report.plots` hold here too: labelled quantities, captions, NaN as gaps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.report.plots import (
    KIND_COLORS,
    KIND_NAMES,
    METRIC_NAMES,
    PlotInputError,
    captions,
    finite_or_none,
    model_colors,
    rgba,
    series_color,
)


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def plot_training_curves(
    histories: dict[str, list[dict]],
    metric: str = "train_loss",
    title: str | None = None,
    *,
    caption: str = "",
) -> go.Figure:
    """One line per model of `metric` against epoch; models without the metric are skipped and listed.

    Args:
        histories: label -> history rows (dicts with "epoch" and metrics).
        metric: the history key to plot.
        title: figure title.
        caption: how the runs were made.

    Returns:
        The figure.
    """
    fig = go.Figure()
    skipped = []
    colors = model_colors(list(histories))
    for label, rows in histories.items():
        pts = [(r.get("epoch", k + 1), r.get(metric)) for k, r in enumerate(rows or [])]
        pts = [(e, float(v)) for e, v in pts if v is not None and np.isfinite(float(v))]
        if not pts:
            skipped.append(label)
            continue
        fig.add_trace(
            go.Scatter(
                x=[e for e, _ in pts],
                y=[v for _, v in pts],
                mode="lines+markers",
                name=label,
                line=dict(color=colors[label]),
            )
        )
    name = metric_name(metric)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=name)
    fig.update_layout(title=dict(text=title or f"Training curves: {name}"), height=420)
    notes = [caption] if caption else []
    if skipped:
        notes.append(f"no {metric} recorded for: {', '.join(skipped)}")
    captions(fig, notes)
    return fig


def plot_robustness(
    curves: dict[str, dict],
    metric: str = "acc",
    title: str | None = None,
    *,
    caption: str = "",
) -> go.Figure:
    """Mean accuracy (or loss) under random weight noise against the noise size, with a +-1 std band per model.

    Args:
        curves: label -> {"sigmas", "acc_mean", "acc_std", "loss_mean", "loss_std"} (acc_* may be None).
        metric: "acc" or "loss".
        title: figure title.
        caption: how the curves were made (draws, images, seed).

    Returns:
        The figure: per model one band trace (filled, no legend entry) and one mean line.
    """
    if metric not in ("acc", "loss"):
        raise PlotInputError(f"unknown robustness metric {metric!r}; choose 'acc' or 'loss'")
    fig = go.Figure()
    skipped = []
    colors = model_colors(list(curves))
    for label, c in curves.items():
        mean = c.get(f"{metric}_mean")
        if mean is None:
            skipped.append(label)
            continue
        sig = [float(s) for s in c["sigmas"]]
        m = np.asarray(finite_or_none(mean), dtype=float)
        std = c.get(f"{metric}_std")
        s = np.zeros_like(m) if std is None else np.nan_to_num(np.asarray(finite_or_none(std), dtype=float))
        color = colors[label]
        fig.add_trace(
            go.Scatter(
                x=sig + sig[::-1],
                y=list(m + s) + list((m - s)[::-1]),
                fill="toself",
                mode="lines",
                fillcolor=rgba(color, 0.18),
                line=dict(width=0),
                hoverinfo="skip",
                legendgroup=label,
                showlegend=False,
                name=f"{label} +-1 std",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=sig,
                y=finite_or_none(mean),
                mode="lines+markers",
                name=label,
                legendgroup=label,
                line=dict(color=color),
            )
        )
    name = "accuracy" if metric == "acc" else "loss"
    fig.update_xaxes(title_text="relative noise size sigma")  # filter-normalized: the captions say so
    fig.update_yaxes(title_text=f"{name} (mean, band: +-1 std over draws)")
    fig.update_layout(title=dict(text=title or f"Robustness to weight noise: {name}"), height=440)
    notes = [caption] if caption else []
    if skipped:
        notes.append(f"no {name} measured for: {', '.join(skipped)}")
    captions(fig, notes)
    return fig


def plot_density(
    densities: dict[str, dict],
    log: bool = True,
    title: str | None = None,
    *,
    caption: str = "",
) -> go.Figure:
    """Hessian eigenvalue spectral density per model (stochastic Lanczos quadrature), log y by default.

    Args:
        densities: label -> {"grid": eigenvalue axis, "density": values}.
        log: logarithmic density axis (zeros drop out of a log axis).
        title: figure title.
        caption: how the density was estimated (probes, Lanczos steps, images).

    Returns:
        The figure.
    """
    fig = go.Figure()
    colors = model_colors(list(densities))
    for label, d in densities.items():
        fig.add_trace(
            go.Scatter(
                x=[float(g) for g in d["grid"]],
                y=finite_or_none(d["density"]),
                mode="lines",
                name=label,
                line=dict(color=colors[label]),
            )
        )
    fig.update_xaxes(title_text="Hessian eigenvalue")
    fig.update_yaxes(title_text="spectral density" + (" (log scale)" if log else ""), type="log" if log else "linear")
    fig.update_layout(title=dict(text=title or "Hessian eigenvalue spectral density"), height=420)
    captions(fig, [caption])
    return fig


def plot_eigenvalues(values: dict[str, list[float]], title: str | None = None, *, caption: str = "") -> go.Figure:
    """Grouped bars of the top-k Hessian eigenvalues, one bar series per model, in the order given.

    Args:
        values: label -> eigenvalues (largest first, as computed).
        title: figure title.
        caption: how they were computed.

    Returns:
        The figure.
    """
    fig = go.Figure()
    colors = model_colors(list(values))
    for label, vals in values.items():
        vals = list(vals or [])
        fig.add_trace(
            go.Bar(
                x=[f"lambda_{k + 1}" for k in range(len(vals))],
                y=finite_or_none(vals),
                name=label,
                marker_color=colors[label],
            )
        )
    fig.update_xaxes(title_text="eigenvalue rank")
    fig.update_yaxes(title_text="Hessian eigenvalue")
    fig.update_layout(barmode="group", title=dict(text=title or "Top Hessian eigenvalues"), height=420)
    captions(fig, [caption])
    return fig


def plot_per_block(
    rows: dict[str, list[dict]],
    metric: str = "lambda_max",
    title: str | None = None,
    *,
    caption: str = "",
) -> go.Figure:
    """Grouped bars of a per-block curvature number (x: parameter group, one series per model).

    Args:
        rows: label -> [{"group": ..., metric: ...}, ...].
        metric: the key to plot ("lambda_max", "trace", ...).
        title: figure title.
        caption: how the numbers were computed.

    Returns:
        The figure; groups keep the order of first appearance, a model missing a group gets a gap.
    """
    groups: list[str] = []
    for rs in rows.values():
        for r in rs:
            if r["group"] not in groups:
                groups.append(r["group"])
    fig = go.Figure()
    colors = model_colors(list(rows))
    for label, rs in rows.items():
        by = {r["group"]: r.get(metric) for r in rs}
        fig.add_trace(
            go.Bar(x=groups, y=finite_or_none([by.get(g) for g in groups]), name=label, marker_color=colors[label])
        )
    name = metric_name(metric)
    fig.update_xaxes(title_text="parameter group")
    fig.update_yaxes(title_text=name)
    fig.update_layout(barmode="group", title=dict(text=title or f"Per-block {name}"), height=420)
    captions(fig, [caption])
    return fig


# --------------------------------------------------------------------------------------------------------------
# Flatness versus accuracy
# --------------------------------------------------------------------------------------------------------------


MIN_CORRELATION_N = 5  # below it the scatter shows its points without a coefficient
LOSS_SCALED = ("top_eigenvalue", "lambda_min", "trace", "sharpness")  # numbers in the units of their loss


def rankdata(a: Sequence[float]) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy.stats.rankdata's default, in numpy)."""
    a = np.asarray(a, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def correlations(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Pearson r and Spearman rho (Pearson of average ranks) of paired finite values, and n.

    Returns:
        {"n", "pearson", "spearman"}; the coefficients are NaN with n < 3 or no spread in x or y.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(len(x))
    out = {"n": float(n), "pearson": math.nan, "spearman": math.nan}
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    out["pearson"] = float(np.corrcoef(x, y)[0, 1])
    out["spearman"] = float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])
    return out


def plot_flatness_vs_accuracy(
    points: list[dict],
    x: str,
    y: str = "probe_acc",
    title: str | None = None,
    *,
    log_x: bool = False,
    caption: str = "",
    min_n: int = MIN_CORRELATION_N,
) -> go.Figure:
    """Scatter of a flatness number against accuracy, coloured by model kind, with the correlation stated.

    Args:
        points: dicts with "label", "kind" ("mae" | "rcmae" | "sup"), and the `x` and `y` keys; points missing
            either value are left out (and counted in the caption). An optional "function" names the loss the
            point's x was measured on: a loss-unit x (eigenvalues, trace, sharpness) over several functions is
            stated in the caption, since those values do not share a scale.
        x: the flatness key (e.g. "top_eigenvalue", "trace", "sharpness", "basin_width").
        y: the accuracy key.
        title: figure title (default names both quantities and the correlation).
        log_x: logarithmic x axis (eigenvalues span decades).
        caption: how the numbers were made.
        min_n: the fewest points a correlation is stated for (fewer: the points alone, "n too small").

    Returns:
        The figure; with n >= min_n the title states Pearson r, Spearman rho and n, else "n too small".
    """
    usable, dropped = [], 0
    for p in points:
        xv, yv = p.get(x), p.get(y)
        if xv is None or yv is None or not (np.isfinite(float(xv)) and np.isfinite(float(yv))):
            dropped += 1
            continue
        usable.append(p)
    fig = go.Figure()
    kinds = list(dict.fromkeys(p.get("kind", "other") for p in usable))
    for i, kind in enumerate(kinds):
        sel = [p for p in usable if p.get("kind", "other") == kind]
        fig.add_trace(
            go.Scatter(
                x=[float(p[x]) for p in sel],
                y=[float(p[y]) for p in sel],
                mode="markers+text",
                text=[str(p.get("label", "")) for p in sel],
                textposition="top center",
                cliponaxis=False,  # labels of points near an edge stay readable
                hovertext=[str(p.get("label", "")) for p in sel],
                name=KIND_NAMES.get(kind, kind),
                marker=dict(size=11, color=KIND_COLORS.get(kind, series_color(i + 3))),
            )
        )
    c = correlations([float(p[x]) for p in usable], [float(p[y]) for p in usable])
    n = int(c["n"])
    if n < max(min_n, 3):  # three points always fit some line: a coefficient over so few says nothing
        stat = f"n = {n}: n too small for a correlation (need at least {max(min_n, 3)} models)"
    elif not np.isfinite(c["pearson"]):
        stat = f"n = {n}: correlation undefined (no spread in one of the numbers)"
    else:
        stat = f"Pearson r = {c['pearson']:.2f}, Spearman rho = {c['spearman']:.2f}, n = {n}"
    xname, yname = metric_name(x), metric_name(y)
    fig.update_xaxes(title_text=xname, type="log" if log_x else "linear")
    xs = np.array([float(p[x]) for p in usable])
    if not log_x and xs.size and np.ptp(xs) > 0:  # room on both sides for the centred point labels
        pad = 0.15 * float(np.ptp(xs))
        fig.update_xaxes(range=[float(xs.min()) - pad, float(xs.max()) + pad])
    fig.update_yaxes(title_text=yname)
    fig.update_layout(title=dict(text=title or f"{yname} vs {xname}<br><sub>{stat}</sub>"), height=460)
    notes = [caption] if caption else []
    if title:
        notes.append(stat)
    if dropped:
        notes.append(f"{dropped} model(s) left out: {xname} or {yname} not measured")
    functions = list(dict.fromkeys(str(p["function"]) for p in usable if p.get("function")))
    if x in LOSS_SCALED and len(functions) > 1:
        notes.append(f"mixed functions on the x axis ({', '.join(functions)}): not one scale")
    captions(fig, notes)
    return fig
