"""The pre-training ladder's figure: what pre-training buys against how long it ran.

Left: the gain in validation accuracy over the same ViT from scratch (percentage points, paired by seed; bars: the
95% paired t-interval) against pre-training epochs (log x), one line per model kind (MAE blue, RC-MAE red) and label
budget (dash), with the measured pre-training seconds and estimated FLOPs of an MAE run as the top axis' ticks.
Right: claim 1's basin width against the same x (mean, bar: ±1 std over seeds). Pure function of plain values
(`core.studies.roi_report.roi_series`); English text, translated by `core.report.plots.localize` (phrases in
`core.report.i18n_roi.FIGURE_PHRASES_JA`).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.report.plots import captions, finite_or_none

ROI_COLORS = {"mae": "#1f77b4", "rcmae": "#d62728"}
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


def _cost_tick(seconds: float, flops: float) -> str:
    s = "n/a" if not math.isfinite(seconds) else (f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min")
    f = "" if not math.isfinite(flops) else f"{flops / 1e12:.2g} TFLOP"
    return f"{s}<br>{f}" if f else s


def plot_roi(series: dict, title: str | None = None, *, caption: str = "") -> go.Figure:
    """The ladder's figure.

    Args:
        series: {"gains": name -> {"kind", "budget", "epochs", "gain", "lo", "hi", "n"}, "basins": name -> {"kind",
            "epochs", "mean", "std", "n"}, "cost": {"epochs", "wall_s", "flops"}} (points; NaN where not measured).
        title: the figure's title.
        caption: how the numbers were made.
    """
    basins = series.get("basins") or {}
    fig = make_subplots(
        rows=1,
        cols=2 if basins else 1,
        column_widths=[0.62, 0.38] if basins else None,
        subplot_titles=(("Gain over scratch", "Basin width (claim 1)") if basins else ("Gain over scratch",)),
        horizontal_spacing=0.1,
    )
    budgets = list(dict.fromkeys(g["budget"] for g in series.get("gains", {}).values()))
    for name, g in series.get("gains", {}).items():
        gain = finite_or_none(g["gain"])
        if not any(v is not None for v in gain):
            continue
        hi = [None if h is None or m is None else h - m for h, m in zip(finite_or_none(g["hi"]), gain, strict=True)]
        lo = [None if v is None or m is None else m - v for v, m in zip(finite_or_none(g["lo"]), gain, strict=True)]
        fig.add_trace(
            go.Scatter(
                x=g["epochs"],
                y=gain,
                mode="lines+markers",
                name=name,
                line=dict(color=ROI_COLORS.get(g["kind"], "#9467bd"), dash=DASHES[budgets.index(g["budget"]) % 5]),
                error_y=dict(type="data", array=hi, arrayminus=lo, visible=True, thickness=1),
                customdata=g["n"],
                hovertemplate="%{x} epochs: %{y:+.1f} points (%{customdata} seeds)<extra>" + name + "</extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_hline(y=0, line=dict(color="#888", width=1, dash="dot"), row=1, col=1)
    for name, b in basins.items():
        fig.add_trace(
            go.Scatter(
                x=b["epochs"],
                y=finite_or_none(b["mean"]),
                mode="lines+markers",
                name=f"{name} basin width",
                line=dict(color=ROI_COLORS.get(b["kind"], "#9467bd")),
                error_y=dict(type="data", array=finite_or_none(b["std"]), visible=True, thickness=1),
            ),
            row=1,
            col=2,
        )
    cost = series.get("cost") or {}
    ticks = [_cost_tick(s, f) for s, f in zip(cost.get("wall_s", []), cost.get("flops", []), strict=False)]
    for col in (1, 2) if basins else (1,):
        fig.update_xaxes(type="log", title_text="pre-training epochs", row=1, col=col, tickvals=cost.get("epochs"))
    fig.update_yaxes(title_text="validation accuracy gain over scratch (points; bar: 95% interval)", row=1, col=1)
    if basins:
        fig.update_yaxes(title_text="basin width (mean, bar: +-1 std over seeds)", row=1, col=2)
    if ticks:  # the measured cost of each rung: a second x axis over the gain panel
        fig.add_trace(
            go.Scatter(x=cost["epochs"], y=[None] * len(ticks), xaxis="x9", showlegend=False, hoverinfo="skip")
        )
        fig.update_layout(
            xaxis9=dict(
                overlaying="x",
                side="top",
                type="log",
                tickvals=cost["epochs"],
                ticktext=ticks,
                matches="x",
                title=dict(text="pre-training cost per MAE run: seconds here, estimated FLOPs", standoff=2),
                showgrid=False,
            )
        )
    fig.update_layout(
        title=dict(text=title or "How much pre-training pays"),
        height=500,
        margin=dict(t=130),
        legend=dict(orientation="h", y=-0.25),
    )
    captions(fig, [caption])
    return fig
