"""The convexity figure: |lambda_min / lambda_max| of the Hessian as a heatmap with the loss contours over it, side by
side for several models (the picture of Li et al. 2018, Fig. 7; numbers from `core.measure.convexity`).

Pure: plain arrays in, a plotly figure out, following `core.report.plots`' conventions (one shared colour scale, NaN
drawn as a gap, the caption below the plot, English text localized by `core.report.plots.localize`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.report.plots import PlotInputError, captions, centre_index, grid_shape, panel_captions

RATIO_NAME = "|lambda_min / lambda_max| of the Hessian"
CONTOUR_NAME = "loss contours (L - L(centre))"


@dataclass(frozen=True, eq=False)
class ConvexityPanel:
    """One model's convexity map and the loss surface of the same slice.

    Attributes:
        label: the subplot name.
        xs, ys: the map's coordinates, (nx,) and (ny,).
        ratio: (ny, nx) |lambda_min / lambda_max|; NaN where not computed (yet) or undefined.
        loss_xs, loss_ys, loss: the loss surface drawn as contours (its own, possibly finer, grid over the same
            span), or None for no contours.
        caption: how the numbers were made.
    """

    label: str
    xs: np.ndarray
    ys: np.ndarray
    ratio: np.ndarray
    loss_xs: np.ndarray | None = None
    loss_ys: np.ndarray | None = None
    loss: np.ndarray | None = None
    caption: str = ""


def _colorscale(threshold: float, zmax: float) -> list:
    """Blues below the threshold (counted convex), yellow to red above it."""
    cut = min(max(threshold / zmax, 0.0), 1.0) if zmax > 0 else 1.0
    if cut >= 1.0:
        return [[0.0, "#08306b"], [1.0, "#6baed6"]]
    return [[0.0, "#08306b"], [cut, "#6baed6"], [cut, "#fee391"], [1.0, "#b30000"]]


def plot_convexity(
    panels: list[ConvexityPanel],
    threshold: float,
    title: str | None = None,
    *,
    ncontours: int = 12,
    axis_labels: tuple[str, str] = ("direction 1 (alpha)", "direction 2 (beta)"),
) -> go.Figure:
    """Convexity maps side by side on one colour scale, each with its loss contours.

    Args:
        panels: 1-4 panels (more wrap to further rows of four).
        threshold: the ratio below which a point is counted convex (the colour scale turns there).
        title: figure title (default names the quantities).
        ncontours: loss contour levels over the shared range of L - L(centre).
        axis_labels: names of the two direction axes.

    Raises:
        PlotInputError: no panels, or a ratio whose shape does not match its grid.
    """
    if not panels:
        raise PlotInputError("no convexity maps to plot")
    for p in panels:
        want = (len(p.ys), len(p.xs))
        if np.shape(p.ratio) != want:
            raise PlotInputError(f"panel {p.label!r}: ratio has shape {np.shape(p.ratio)}, expected {want}")
    ratios = [np.asarray(p.ratio, dtype=float) for p in panels]
    finite = [r[np.isfinite(r)] for r in ratios]
    zmax = max([float(f.max()) for f in finite if f.size] + [2 * threshold])
    rel = []
    for p in panels:
        if p.loss is None:
            rel.append(None)
            continue
        loss = np.asarray(p.loss, dtype=float)
        rel.append(loss - loss[centre_index(p.loss_xs, p.loss_ys)])
    lfin = [r[np.isfinite(r)] for r in rel if r is not None]
    lfin = [f for f in lfin if f.size]
    lo, hi = (min(f.min() for f in lfin), max(f.max() for f in lfin)) if lfin else (0.0, 0.0)
    rows, cols = grid_shape(len(panels))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p.label for p in panels], horizontal_spacing=0.06)
    cbar = dict(title=dict(text=RATIO_NAME + f"<br>(blue: below {threshold:g}, counted convex)", side="right"))
    fig.update_layout(coloraxis=dict(colorscale=_colorscale(threshold, zmax), cmin=0.0, cmax=zmax, colorbar=cbar))
    for i, (p, r, lr) in enumerate(zip(panels, ratios, rel, strict=True)):
        row, col = i // cols + 1, i % cols + 1
        fig.add_trace(
            go.Heatmap(x=p.xs, y=p.ys, z=r, coloraxis="coloraxis", name=RATIO_NAME, connectgaps=False), row=row, col=col
        )
        if lr is not None and hi > lo:
            fig.add_trace(
                go.Contour(
                    x=p.loss_xs,
                    y=p.loss_ys,
                    z=lr,
                    autocontour=False,
                    contours=dict(coloring="lines", start=lo, end=hi, size=(hi - lo) / ncontours, showlabels=True),
                    line=dict(color="white", width=1),
                    showscale=False,
                    connectgaps=False,
                    name=CONTOUR_NAME,
                    hoverinfo="skip",
                ),
                row=row,
                col=col,
            )
        fig.add_trace(
            go.Scatter(
                x=[0.0],
                y=[0.0],
                mode="markers",
                marker=dict(symbol="x", size=10, color="black"),
                name="centre (trained weights)",
                showlegend=False,
            ),
            row=row,
            col=col,
        )
        fig.update_xaxes(title_text=axis_labels[0], row=row, col=col)
        if col == 1:
            fig.update_yaxes(title_text=axis_labels[1], row=row, col=col)
    fig.update_layout(
        title=dict(text=title or f"Convexity map: {RATIO_NAME}; {CONTOUR_NAME}"),
        height=440 * rows + 60,
        showlegend=False,
    )
    captions(fig, panel_captions(panels))
    return fig
