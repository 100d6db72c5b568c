"""Plotly figure builders for landscapes: surfaces, slices and differences, and what every figure shares (panels,
captions, colours, localization). Flatness and training figures are in `core.report.plots_flatness`.

Pure functions: plain values in, a `plotly.graph_objects.Figure` out (no streamlit, no torch). Conventions every
figure follows:

- a title and axis labels, and the quantity on the colour bar or y axis spelled out ("loss increase over the
  centre (L - L(centre))" versus "loss"), including any log transform and its epsilon;
- an approximation (a grid, a subset of images, a random direction) carries its `caption` as an annotation
  below the plot, so an exported picture still says how it was made;
- NaN means "not computed yet" or "not finite" and is drawn as a gap, never interpolated over;
- side-by-side panels share one colour scale (one colour bar), because the comparison is the point.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.errors import LandscapeError
from core.report.i18n import FIGURE_TEXT, figure_text

VIEWS = ("contour", "heatmap", "surface")
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
KIND_COLORS = {"mae": "#1f77b4", "rcmae": "#d62728", "sup": "#2ca02c"}
KIND_NAMES = {"mae": "MAE", "rcmae": "RC-MAE", "sup": "supervised ViT"}
METRIC_NAMES = {
    "train_loss": "training loss",
    "val_loss": "validation loss",
    "val_acc": "validation accuracy",
    "probe_acc": "ridge-probe accuracy during training",  # the training history's key (core.report.naming)
    "linear_probe_acc": "linear-probe accuracy (whole validation split)",
    "clean_acc": "probe accuracy without weight noise",
    "time_s": "wall time per epoch (s)",
    "lr": "learning rate",
    "lambda_max": "top Hessian eigenvalue",
    "trace": "Hessian trace",
    "top_eigenvalue": "top Hessian eigenvalue",
    "sharpness": "sharpness (mean loss increase at a radius)",
    "basin_width": "basin width",
    "acc_drop": "accuracy drop under weight noise",
}
RELATIVE_NAME = "loss increase over the centre (L - L(centre))"
ABSOLUTE_NAME = "loss"
SURFACE_CAMERA = dict(eye=dict(x=1.6, y=1.6, z=1.0), center=dict(x=0, y=0, z=-0.1), up=dict(x=0, y=0, z=1))
_CAPTION_SHIFT = -62  # pixels below the bottom of the plot area: under the tick labels and the x-axis title


class PlotInputError(LandscapeError, ValueError):
    """Inputs a figure cannot be drawn from (mismatched grids, no panels): a user-facing reason."""


@dataclass(frozen=True, eq=False)
class Panel:
    """One model's surface (2-D) or line (1-D) on a grid of direction coefficients.

    Attributes:
        label: the legend / subplot name, e.g. "MAE (seed 0)".
        xs: coefficients along direction 1, shape (nx,).
        ys: coefficients along direction 2, shape (ny,), or None for a 1-D line.
        loss: values, shape (ny, nx) or (nx,); NaN where not computed (yet) or not finite.
        caption: how the numbers were made, e.g. "21x21 grid, 256 images, direction seed 0, filter-normalized".
        path: (S, 2) training trajectory projected on the plane, drawn on 2-D views when given.
    """

    label: str
    xs: np.ndarray
    ys: np.ndarray | None
    loss: np.ndarray
    caption: str = ""
    path: np.ndarray | None = None

    @property
    def is_2d(self) -> bool:
        return self.ys is not None


# --------------------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------------------


def _arrays(p: Panel) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The panel's arrays as floats, with the shape checked."""
    xs = np.asarray(p.xs, dtype=float).ravel()
    ys = None if p.ys is None else np.asarray(p.ys, dtype=float).ravel()
    loss = np.asarray(p.loss, dtype=float)
    want = (len(xs),) if ys is None else (len(ys), len(xs))
    if loss.shape != want:
        raise PlotInputError(f"panel {p.label!r}: loss has shape {loss.shape}, expected {want} from its grid")
    return xs, ys, loss


def centre_index(xs: np.ndarray, ys: np.ndarray | None) -> tuple[int, ...]:
    """Index of the grid point nearest (0, 0): (iy, ix) for a 2-D grid, (ix,) for a line."""
    ix = int(np.argmin(np.abs(np.asarray(xs, dtype=float))))
    if ys is None:
        return (ix,)
    return int(np.argmin(np.abs(np.asarray(ys, dtype=float)))), ix


def panel_values(p: Panel, relative: bool = True) -> np.ndarray:
    """The values a figure draws for one panel: L - L(centre) when `relative`, else L (NaN kept).

    A NaN centre makes every relative value NaN (there is nothing to subtract yet).
    """
    xs, ys, loss = _arrays(p)
    if not relative:
        return loss.copy()
    return loss - loss[centre_index(xs, ys)]


def _log_eps(values: Sequence[np.ndarray], eps: float | None) -> float:
    """Epsilon added before log10: given, or 1e-4 of the largest finite value (a 4-decade range below it)."""
    if eps is not None:
        return float(eps)
    finite = [v[np.isfinite(v)] for v in values]
    top = max((float(np.max(np.maximum(f, 0.0))) for f in finite if f.size), default=0.0)
    return top * 1e-4 if top > 0 else 1e-12


def _transform(
    values: list[np.ndarray], relative: bool, log: bool, eps: float | None
) -> tuple[list[np.ndarray], str, str]:
    """Apply the optional log transform.

    Returns:
        The values, the full name of the plotted quantity (titles, colour bars) and a short one (axis titles).
    """
    if not log:
        return (
            values,
            (RELATIVE_NAME if relative else ABSOLUTE_NAME),
            ("loss increase over the centre" if relative else "loss"),
        )
    e = _log_eps(values, eps)
    # Negative increases (a point below the centre) have no logarithm: clip at 0 and say so.
    out = [np.log10(np.maximum(v, 0.0) + e) for v in values]
    short = f"log10({'max(L - L(centre), 0)' if relative else 'loss'} + {e:.2g})"
    return out, short + (" (log of the loss increase over the centre)" if relative else ""), short


def _range(values: list[np.ndarray]) -> tuple[float, float] | None:
    """Global finite (min, max) over all arrays, or None when nothing is finite."""
    finite = [v[np.isfinite(v)] for v in values]
    finite = [f for f in finite if f.size]
    if not finite:
        return None
    return float(min(f.min() for f in finite)), float(max(f.max() for f in finite))


def captions(fig: go.Figure, captions: Sequence[str]) -> None:
    """Captions as one annotation below the plot (duplicates shown once)."""
    lines = list(dict.fromkeys(c for c in captions if c))
    if not lines:
        return
    fig.add_annotation(
        text="<br>".join(lines),
        xref="paper",
        yref="paper",
        x=0.0,
        y=0.0,
        yshift=_CAPTION_SHIFT,
        xanchor="left",
        yanchor="top",
        showarrow=False,
        align="left",
        font=dict(size=11, color="#555"),
        name="caption",
    )
    fig.update_layout(margin=dict(b=90 + 16 * len(lines)))


def wrap_captions(fig: go.Figure, chars: int = 72) -> go.Figure:
    """Break long caption lines (at spaces; CJK text, twice as wide per character, at half the count) so that a
    caption fits a half-width chart; grows the bottom margin to match. Apply after `localize`, which matches
    whole phrases. Returns the figure itself."""
    for ann in fig.layout.annotations:
        if ann.name != "caption" or not ann.text:
            continue
        lines = []
        for line in ann.text.split("<br>"):
            width = chars if line.isascii() else chars // 2
            lines += textwrap.wrap(line, width=width, break_on_hyphens=False) or [""]
        ann.text = "<br>".join(lines)
        fig.update_layout(margin=dict(b=90 + 16 * len(lines)))
    return fig


def panel_captions(panels: Sequence[Panel]) -> list[str]:
    caps = [p.caption for p in panels if p.caption]
    if len(set(caps)) <= 1:
        return caps[:1]
    return [f"{p.label}: {p.caption}" for p in panels if p.caption]


def grid_shape(n: int) -> tuple[int, int]:
    cols = min(n, 4)
    return math.ceil(n / cols), cols


def series_color(i: int) -> str:
    return COLORS[i % len(COLORS)]


# A label's first part names the model kind (core.app's labels: "RC-MAE · seed 0 · ...", "Sup-ViT · ...").
_LABEL_KIND = {"MAE": "mae", "RC-MAE": "rcmae", "Sup-ViT": "sup", "MAE-FT": "mae", "RC-MAE-FT": "rcmae"}


def label_kind(label: str) -> str | None:
    """The model kind a display label names by its first part, or None."""
    return _LABEL_KIND.get(str(label).replace("<br>", " · ").split(" ·")[0].strip())


def model_colors(labels: Sequence[str]) -> dict[str, str]:
    """One colour per label, the same palette on every page: a model of a known kind gets its kind's colour
    (KIND_COLORS); further models of the same kind get lighter shades of it; anything else the remaining colours."""
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    spare = [c for c in COLORS if c not in KIND_COLORS.values()]
    k = 0
    for label in labels:
        kind = label_kind(label)
        if kind in KIND_COLORS:
            n = seen[kind] = seen.get(kind, -1) + 1
            out[label] = KIND_COLORS[kind] if n == 0 else _lighter(KIND_COLORS[kind], min(0.25 * n, 0.7))
        else:
            out[label] = spare[k % len(spare)]
            k += 1
    return out


def _lighter(hex_color: str, amount: float) -> str:
    """The colour mixed with white by `amount` (0: unchanged)."""
    h = hex_color.lstrip("#")
    rgb = [int(h[i : i + 2], 16) for i in (0, 2, 4)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[k : k + 2], 16) for k in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def finite_or_none(seq: Sequence | None) -> list:
    """A list with non-finite entries replaced by None (plotly gaps)."""
    if seq is None:
        return []
    out = []
    for v in seq:
        out.append(float(v) if v is not None and np.isfinite(float(v)) else None)
    return out


# --------------------------------------------------------------------------------------------------------------
# Landscapes
# --------------------------------------------------------------------------------------------------------------


def plot_surfaces(
    panels: list[Panel],
    view: str = "contour",
    relative: bool = True,
    log: bool = False,
    title: str | None = None,
    *,
    eps: float | None = None,
    axis_labels: tuple[str, str] = ("direction 1 (alpha)", "direction 2 (beta)"),
    ncontours: int = 20,
) -> go.Figure:
    """Landscapes side by side on one shared colour scale.

    Args:
        panels: 1-4 panels (more wrap to further rows of four).
        view: "contour", "heatmap" or "surface" (3-D). 1-D panels are drawn as lines in any view.
        relative: plot L - L(centre) per panel (centre = the grid point nearest (0, 0)); else the loss itself.
        log: plot log10(value + eps) (relative values clipped at 0 first); the colour bar states it.
        title: figure title (default names the quantity).
        eps: the epsilon of the log transform (default 1e-4 of the largest value plotted).
        axis_labels: names of the two direction axes.
        ncontours: contour levels over the shared range.

    Returns:
        The figure; 2-D panels share zmin/zmax (cmin/cmax for surfaces) and one colour bar.
    """
    if view not in VIEWS:
        raise PlotInputError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if not panels:
        raise PlotInputError("no surfaces to plot")
    raw = [panel_values(p, relative) for p in panels]
    values, qname, short = _transform(raw, relative, log, eps)
    rows, cols = grid_shape(len(panels))
    surface = view == "surface"
    specs = [
        [
            {"type": "scene" if surface and i < len(panels) and panels[i].is_2d else "xy"}
            for i in range(r * cols, (r + 1) * cols)
        ]
        for r in range(rows)
    ]
    titles = []
    for p, v in zip(panels, values, strict=True):
        no_centre = relative and not np.isfinite(v).any() and np.isfinite(np.asarray(p.loss, dtype=float)).any()
        titles.append(p.label + (" (centre not computed yet)" if no_centre else ""))
    # Room between the panels for the tick labels of both neighbours ("0.5" and "-0.5" must not run together).
    fig = make_subplots(rows=rows, cols=cols, specs=specs, subplot_titles=titles, horizontal_spacing=0.1)
    span_2d = _range([v for p, v in zip(panels, values, strict=True) if p.is_2d])
    span_1d = _range([v for p, v in zip(panels, values, strict=True) if not p.is_2d])
    zmin, zmax = span_2d if span_2d else (None, None)
    cbar = dict(title=dict(text=qname.replace(" (", "<br>(", 1), side="right"))
    fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=zmin, cmax=zmax, colorbar=cbar))
    for i, (p, v) in enumerate(zip(panels, values, strict=True)):
        r, c = i // cols + 1, i % cols + 1
        xs, ys, _ = _arrays(p)
        if not p.is_2d:
            fig.add_trace(
                go.Scatter(x=xs, y=v, mode="lines+markers", name=p.label, connectgaps=False, showlegend=False),
                row=r,
                col=c,
            )
            fig.update_xaxes(title_text=axis_labels[0], row=r, col=c)
            fig.update_yaxes(
                title_text=short if c == 1 else None, range=list(span_1d) if span_1d else None, row=r, col=c
            )
            continue
        common = dict(x=xs, y=ys, z=v, name=p.label, coloraxis="coloraxis", connectgaps=False)
        if view == "contour":
            size = (zmax - zmin) / ncontours if span_2d and zmax > zmin else None
            contours = dict(start=zmin, end=zmax, size=size) if size else {}
            fig.add_trace(
                go.Contour(**common, zmin=zmin, zmax=zmax, autocontour=size is None, contours=contours),
                row=r,
                col=c,
            )
        elif view == "heatmap":
            fig.add_trace(go.Heatmap(**common, zmin=zmin, zmax=zmax), row=r, col=c)
        else:
            fig.add_trace(go.Surface(**common, cmin=zmin, cmax=zmax), row=r, col=c)
            iy, ix = centre_index(xs, ys)
            if np.isfinite(v[iy, ix]):
                fig.add_trace(
                    go.Scatter3d(
                        x=[xs[ix]],
                        y=[ys[iy]],
                        z=[v[iy, ix]],
                        mode="markers",
                        marker=dict(size=4, color="red"),
                        name="centre",
                        showlegend=False,
                    ),
                    row=r,
                    col=c,
                )
            continue
        _mark_centre_and_path(fig, p, r, c)
        fig.update_xaxes(title_text=axis_labels[0], nticks=5, row=r, col=c)
        if c == 1:  # the neighbours share the meaning; repeated titles collide with the next subplot
            fig.update_yaxes(title_text=axis_labels[1], row=r, col=c)
        if _equal_spans(xs, ys):  # a square slice is drawn square, not stretched to the panel's shape
            x_anchor = fig.get_subplot(r, c).xaxis.plotly_name.replace("axis", "")
            fig.update_yaxes(scaleanchor=x_anchor, scaleratio=1, constrain="domain", row=r, col=c)
            fig.update_xaxes(constrain="domain", row=r, col=c)
    if surface:
        z_short = "L - L(centre)" if relative and not log else short  # 3-D axis titles have little room
        fig.update_scenes(xaxis_title_text="alpha", yaxis_title_text="beta", zaxis_title_text=z_short)
        # One camera for every panel (the same view of each model), far enough out that no corner is clipped.
        fig.update_scenes(camera=SURFACE_CAMERA, aspectmode="cube")
        if span_2d:  # the same height scale in every panel, like the colours
            fig.update_scenes(zaxis_range=list(span_2d))
    fig.update_layout(
        title=dict(text=title or f"Loss landscape: {qname}"),
        height=(500 if surface else 420) * rows + 60,
        showlegend=False,
    )
    captions(fig, panel_captions(panels))
    return fig


def _equal_spans(xs: np.ndarray, ys: np.ndarray | None) -> bool:
    """Whether a 2-D grid covers the same range along both directions (then one unit is one unit on screen)."""
    if ys is None or not xs.size or not ys.size:
        return False
    return bool(np.isclose(np.ptp(xs), np.ptp(ys), rtol=1e-6) and np.ptp(xs) > 0)


def _mark_centre_and_path(fig: go.Figure, p: Panel, row: int, col: int) -> None:
    """A cross at (0, 0) and the projected training trajectory, on a 2-D subplot."""
    fig.add_trace(
        go.Scatter(
            x=[0.0],
            y=[0.0],
            mode="markers",
            marker=dict(symbol="x", size=10, color="red", line=dict(width=1, color="white")),
            name="centre",
            hovertext="centre (trained weights)",
            showlegend=False,
        ),
        row=row,
        col=col,
    )
    if p.path is None:
        return
    path = np.asarray(p.path, dtype=float)
    if path.ndim != 2 or path.shape[1] != 2:
        raise PlotInputError(f"panel {p.label!r}: path must have shape (S, 2), got {path.shape}")
    fig.add_trace(
        go.Scatter(
            x=path[:, 0],
            y=path[:, 1],
            mode="lines+markers",
            line=dict(color="white", width=2),
            marker=dict(size=5, color="white", line=dict(width=1, color="black")),
            name="training path",
            hovertext=[f"snapshot {k}" for k in range(len(path))],
            showlegend=False,
        ),
        row=row,
        col=col,
    )


def slices(p: Panel, relative: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """1-D slices through the centre: [(xs, values at y = 0), (ys, values at x = 0)] for 2-D, [(xs, values)] for 1-D."""
    v = panel_values(p, relative)
    xs, ys, _ = _arrays(p)
    if ys is None:
        return [(xs, v)]
    iy, ix = centre_index(xs, ys)
    return [(xs, v[iy, :]), (ys, v[:, ix])]


def plot_slices(
    panels: list[Panel],
    relative: bool = True,
    log: bool = False,
    title: str | None = None,
    *,
    eps: float | None = None,
) -> go.Figure:
    """1-D slices through the centre, every model overlaid.

    2-D panels give two subplots (along direction 1 at beta = 0, along direction 2 at alpha = 0); 1-D panels are
    drawn in the first. One trace per model per subplot, one legend entry per model.

    Args:
        panels: the panels.
        relative: L - L(centre) when True, else L.
        log: log10(value + eps) (relative values clipped at 0 first), stated on the y axis.
        title: figure title.
        eps: the log epsilon (default 1e-4 of the largest value plotted).

    Returns:
        The figure.
    """
    if not panels:
        raise PlotInputError("no slices to plot")
    cuts = [slices(p, relative) for p in panels]
    flat = [v for cut in cuts for _, v in cut]
    tvals, qname, short = _transform(flat, relative, log, eps)
    two = any(p.is_2d for p in panels)
    names = ["along direction 1 (beta = 0)", "along direction 2 (alpha = 0)"] if two else ["along the direction"]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08, shared_yaxes=True)
    k = 0
    colors = model_colors([p.label for p in panels])
    for p, cut in zip(panels, cuts, strict=True):
        for j, (x, _) in enumerate(cut):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=tvals[k],
                    mode="lines+markers",
                    name=p.label,
                    legendgroup=p.label,
                    showlegend=j == 0,
                    line=dict(color=colors[p.label]),
                    connectgaps=False,
                ),
                row=1,
                col=j + 1,
            )
            k += 1
    span = _range(tvals)
    for j in range(len(names)):
        fig.update_xaxes(title_text=f"coefficient {names[j].split(' (')[0].replace('along ', '')}", row=1, col=j + 1)
        fig.update_yaxes(title_text=short if j == 0 else None, range=_padded(span), row=1, col=j + 1)
    fig.update_layout(title=dict(text=title or f"Slices through the centre: {qname}"), height=440)
    captions(fig, panel_captions(panels))
    return fig


def _padded(span: tuple[float, float] | None) -> list[float] | None:
    """A y range 5% wider than the data on both sides (shared by the subplots)."""
    if span is None:
        return None
    lo, hi = span
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
    return [lo - pad, hi + pad]


def plot_difference(a: Panel, b: Panel, relative: bool = True, title: str | None = None) -> go.Figure:
    """Heatmap (line for 1-D panels) of a - b on a diverging scale centred at 0.

    Args:
        a: the first panel.
        b: the second panel, on the same grid.
        relative: subtract each panel's own centre first (compares shapes, not loss levels).
        title: figure title (default "A minus B: ...").

    Returns:
        The figure.

    Raises:
        PlotInputError (a ValueError): the grids differ.
    """
    xa, ya, la = _arrays(a)
    xb, yb, lb = _arrays(b)
    if (ya is None) != (yb is None):
        raise PlotInputError(f"cannot subtract {b.label!r} from {a.label!r}: one is a 2-D surface, the other a line")
    same = la.shape == lb.shape and np.allclose(xa, xb)
    same = same and (ya is None or np.allclose(ya, yb))
    if not same:
        raise PlotInputError(
            f"cannot subtract {b.label!r} from {a.label!r}: the grids differ "
            f"({_grid_text(xa, ya)} vs {_grid_text(xb, yb)}); compute both on the same grid"
        )
    diff = panel_values(a, relative) - panel_values(b, relative)
    what = "loss increase over the centre" if relative else "absolute loss"
    qname = f"A - B ({what})"
    fig = go.Figure()
    if ya is None:
        fig.add_trace(go.Scatter(x=xa, y=diff, mode="lines+markers", name="A - B", connectgaps=False))
        fig.add_hline(y=0, line=dict(color="grey", dash="dot"))
        fig.update_xaxes(title_text="direction 1 (alpha)")
        fig.update_yaxes(title_text=qname)
    else:
        finite = diff[np.isfinite(diff)]
        lim = float(np.max(np.abs(finite))) if finite.size else 1.0
        lim = lim if lim > 0 else 1.0
        fig.add_trace(
            go.Heatmap(
                x=xa,
                y=ya,
                z=diff,
                zmid=0.0,
                zmin=-lim,
                zmax=lim,
                colorscale="RdBu_r",
                connectgaps=False,
                colorbar=dict(title=dict(text=qname.replace(" (", "<br>("), side="right")),
                name="A - B",
            )
        )
        fig.add_trace(
            go.Scatter(x=[0.0], y=[0.0], mode="markers", marker=dict(symbol="x", size=10, color="black"), name="centre")
        )
        fig.update_xaxes(title_text="direction 1 (alpha)")
        fig.update_yaxes(title_text="direction 2 (beta)")
    default = f"A minus B: {a.label} minus {b.label} ({what}; red: A higher, blue: B higher)"
    fig.update_layout(title=dict(text=title or default), showlegend=False, height=480)
    captions(fig, panel_captions([a, b]))
    return fig


def _grid_text(xs: np.ndarray, ys: np.ndarray | None) -> str:
    lo, hi = (float(xs.min()), float(xs.max())) if xs.size else (math.nan, math.nan)
    size = f"{len(xs)}" if ys is None else f"{len(xs)}x{len(ys)}"
    return f"{size} points over [{lo:g}, {hi:g}]"


# --------------------------------------------------------------------------------------------------------------
# Training, robustness and Hessian figures
# --------------------------------------------------------------------------------------------------------------


def figure_html(fig: go.Figure) -> str:
    """A self-contained interactive HTML page of the figure (plotly.js inlined: works offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True)


# --------------------------------------------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------------------------------------------

_TEXT_KEYS = ("text", "name", "hovertext", "title")


def localize(fig: go.Figure, lang: str) -> go.Figure:
    """The figure with its axis titles, colour bars, legend names, hover texts and default titles in `lang`.

    The figures are built in English; this replaces the phrases listed in `core.report.i18n.FIGURE_TEXT` (model labels,
    numbers and data are untouched). English (or a language without a table) returns `fig` itself.
    """
    if lang not in FIGURE_TEXT:
        return fig

    def texts(node):
        """The same structure holding only the translated text fields (lists keep their length)."""
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k in _TEXT_KEYS and isinstance(v, str):
                    out[k] = figure_text(v, lang)
                elif k in _TEXT_KEYS and isinstance(v, list | tuple) and v and all(isinstance(x, str) for x in v):
                    out[k] = [figure_text(x, lang) for x in v]
                elif isinstance(v, dict | list | tuple):
                    sub = texts(v)
                    if sub:
                        out[k] = sub
            return out
        if isinstance(node, list | tuple) and any(isinstance(v, dict) for v in node):
            subs = [texts(v) if isinstance(v, dict) else {} for v in node]
            return subs if any(subs) else None
        return None

    out = go.Figure(fig)
    out.update(texts(fig.to_dict()))
    return out
