"""Plotly figures of stability under input corruptions: accuracy against severity per corruption (models side by
side), a gallery of one validation image at every severity, and the weight-noise proxy beside the input corruptions.

Pure functions of plain values (no streamlit, no torch), following `core.report.plots`' conventions: spreads are
drawn and named (±1 sample std over seeds), a `caption` states how the numbers were made, missing values are gaps.
The text is English; `core.report.plots.localize` translates it (phrases in
`core.report.i18n_stability.FIGURE_PHRASES_JA`).

A *curve series* is, per model label: {"kind" (colour key), "curves": {corruption: {"mean": [...], "std": [...],
"n": [...]}}} over severities 0 (clean) .. 5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.report.plots import PlotInputError, captions, grid_shape, rgba, series_color

STAB_COLORS = {"mae": "#1f77b4", "rcmae": "#d62728", "scratch": "#7f7f7f", "sup": "#2ca02c", "probe": "#9467bd"}


def _ok(v) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(float(v))


def plot_corruption_curves(
    series: dict[str, dict],
    severities: Sequence[int],
    units: dict[str, str],
    title: str | None = None,
    *,
    caption: str = "",
) -> go.Figure:
    """Accuracy against severity, one panel per corruption, one line per model (band: ±1 std over seeds).

    Args:
        series: model label -> {"kind", "curves": corruption -> {"mean", "std"} over `severities`}.
        severities: the x values (0 is the clean image).
        units: corruption -> the unit of its levels (the panel's title says it).
        title: figure title.
        caption: how it was measured.

    Raises:
        PlotInputError: no corruption, or a curve whose length differs from the severities.
    """
    names = list(dict.fromkeys(c for s in series.values() for c in s.get("curves", {})))
    if not names:
        raise PlotInputError("no corruption to plot")
    rows, cols = grid_shape(len(names))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{n.replace('_', ' ')}<br><sup>{units.get(n, '')}</sup>" for n in names],
        shared_yaxes=True,
        vertical_spacing=0.12,
        horizontal_spacing=0.04,
    )
    xs = [int(s) for s in severities]
    for i, (label, s) in enumerate(series.items()):
        color = STAB_COLORS.get(s.get("kind", ""), series_color(i))
        for j, name in enumerate(names):
            c = s.get("curves", {}).get(name)
            if c is None:
                continue
            mean, std = list(c.get("mean") or []), list(c.get("std") or [])
            if len(mean) != len(xs) or (std and len(std) != len(xs)):
                raise PlotInputError(f"{label} / {name}: {len(mean)} values for {len(xs)} severities")
            row, col = j // cols + 1, j % cols + 1
            stds = std or [math.nan] * len(xs)
            band = [(x, m, d) for x, m, d in zip(xs, mean, stds, strict=True) if _ok(m) and _ok(d)]
            if band:
                bx = [x for x, _, _ in band]
                fig.add_trace(
                    go.Scatter(
                        x=bx + bx[::-1],
                        y=[m + d for _, m, d in band] + [m - d for _, m, d in band][::-1],
                        fill="toself",
                        mode="lines",
                        fillcolor=rgba(color, 0.15),
                        line=dict(width=0),
                        hoverinfo="skip",
                        legendgroup=label,
                        showlegend=False,
                        name=f"{label} +-1 std",
                    ),
                    row=row,
                    col=col,
                )
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[float(m) if _ok(m) else None for m in mean],
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=j == 0,
                    line=dict(color=color),
                    marker=dict(size=6),
                ),
                row=row,
                col=col,
            )
    fig.update_xaxes(tickvals=xs, ticktext=[str(x) for x in xs])
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text="accuracy (mean over seeds)" if r == (rows + 1) // 2 else None, row=r, col=1)
    fig.update_xaxes(title_text="severity (0: clean)", row=rows)
    fig.update_layout(
        title=dict(text=title or "Accuracy under input corruptions, by severity"), height=260 * rows + 120
    )
    captions(fig, [caption] if caption else [])
    return fig


def _tile(img: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W, 3) uint8."""
    a = np.asarray(img, dtype=float)
    if a.ndim == 2:
        a = a[None]
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    return (np.clip(a[:3], 0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8)


def plot_gallery(
    images: dict[str, Sequence[np.ndarray]],
    severities: Sequence[int],
    level_text: dict[str, Sequence[str]],
    title: str | None = None,
    *,
    caption: str = "",
    scale: int = 4,
) -> go.Figure:
    """One image at every severity of every corruption: rows are corruptions, columns severities, the level under
    each tile in its unit.

    Args:
        images: corruption -> one (C, H, W) array in [0, 1] per severity.
        severities: the column headers (0: clean).
        level_text: corruption -> the level of each severity in words (e.g. "3 px").
        title: figure title.
        caption: what the image is.
        scale: pixels per image pixel (nearest neighbour, so the pixels stay visible).

    Raises:
        PlotInputError: no image, or a row with another number of tiles.
    """
    names = list(images)
    if not names:
        raise PlotInputError("no image to show")
    first = _tile(images[names[0]][0])
    h, w = first.shape[0] * scale, first.shape[1] * scale
    pad = max(2, scale)
    n_cols = len(severities)
    mosaic = np.full((len(names) * (h + pad), n_cols * (w + pad), 3), 255, dtype=np.uint8)
    for r, n in enumerate(names):
        tiles = list(images[n])
        if len(tiles) != n_cols:
            raise PlotInputError(f"{n}: {len(tiles)} images for {n_cols} severities")
        for c, img in enumerate(tiles):
            t = np.kron(_tile(img), np.ones((scale, scale, 1), dtype=np.uint8))
            mosaic[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = t
    fig = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    for r, n in enumerate(names):
        for c in range(n_cols):
            texts = list(level_text.get(n, []))
            if c < len(texts) and texts[c]:
                fig.add_annotation(
                    x=c * (w + pad) + w / 2,
                    y=r * (h + pad) + h + pad / 2,
                    text=texts[c],
                    showarrow=False,
                    font=dict(size=9),
                    yanchor="top",
                )
    fig.update_xaxes(
        tickvals=[c * (w + pad) + w / 2 for c in range(n_cols)],
        ticktext=[("severity 0: clean" if s == 0 else f"severity {s}") for s in severities],
        side="top",
        showgrid=False,
    )
    fig.update_yaxes(
        tickvals=[r * (h + pad) + h / 2 for r in range(len(names))],
        ticktext=[n.replace("_", " ") for n in names],
        showgrid=False,
    )
    fig.update_layout(
        title=dict(text=title or "What each severity looks like"),
        height=int(len(names) * (h + pad + 14) + 160),
        margin=dict(t=110),
    )
    captions(fig, [caption] if caption else [])
    return fig


def plot_proxy_vs_inputs(rows: Sequence[dict], title: str | None = None, *, caption: str = "") -> go.Figure:
    """Accuracy kept under weight noise (the flatness proxy) beside accuracy kept under input corruptions, per model.

    Args:
        rows: {"label", "weight_kept", "input_kept"} (fractions of the clean accuracy; None: not measured).
        title: figure title.
        caption: how each was measured.
    """
    if not rows:
        raise PlotInputError("no model to compare")
    labels = [str(r["label"]) for r in rows]
    fig = go.Figure()
    for key, name, color in (
        ("weight_kept", "under weight noise (proxy)", "#8c564b"),
        ("input_kept", "under input corruptions", "#17becf"),
    ):
        vals = [float(r[key]) if _ok(r.get(key)) else None for r in rows]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=vals,
                name=name,
                marker_color=color,
                text=[f"{v:.0%}" if v is not None else "not measured" for v in vals],
                textposition="outside",
            )
        )
    fig.update_yaxes(title_text="share of the clean accuracy kept", tickformat=".0%", rangemode="tozero")
    fig.update_layout(barmode="group", title=dict(text=title or "Weight noise (proxy) vs input corruptions"))
    captions(fig, [caption] if caption else [])
    return fig
