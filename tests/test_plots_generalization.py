"""core/report/plots_generalization.py: the label-efficiency, gap and flatness-vs-gap figures from plain values."""

from __future__ import annotations

import math

import pytest

from core.report.plots import PlotInputError, localize
from core.report.plots_generalization import plot_flatness_vs_gap, plot_gap, plot_label_efficiency


def series(std_scratch=0.02):
    return {
        "mae": {"label": "MAE-FT", "x": [5.0, 10.0, 143.7], "tick": ["5", "10", "all (~144)"],
                "mean": [0.6, 0.7, 0.9], "std": [0.05, 0.03, 0.01], "n": [3, 3, 3]},
        "scratch": {"label": "scratch", "x": [5.0, 10.0, 143.7], "tick": ["5", "10", "all (~144)"],
                    "mean": [0.5, math.nan, 0.88], "std": [std_scratch, math.nan, std_scratch], "n": [3, 0, 3]},
    }  # fmt: skip


def caption_text(fig) -> str:
    return " ".join(a.text for a in fig.layout.annotations if a.name == "caption")


def test_label_efficiency_log_x_bands_and_ticks():
    fig = plot_label_efficiency(series(), caption="regime: 200 steps")
    assert fig.layout.xaxis.type == "log"
    assert list(fig.layout.xaxis.ticktext) == ["5", "10", "all (~144)"]
    assert list(fig.layout.xaxis.tickvals) == [5.0, 10.0, 143.7]
    bands = [t for t in fig.data if t.fill == "toself"]
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["MAE-FT", "scratch"] and len(bands) == 2
    mae_band = bands[0]
    assert list(mae_band.y[:3]) == pytest.approx([0.65, 0.73, 0.91])  # mean + std, then back along mean - std
    assert list(mae_band.y[3:]) == pytest.approx([0.89, 0.67, 0.55])
    # The unmeasured budget of scratch is a gap, not a made-up point.
    assert list(lines[1].x) == [5.0, 143.7]
    assert "band: +-1 std over seeds" in fig.layout.yaxis.title.text
    assert "regime: 200 steps" in caption_text(fig)


def test_label_efficiency_one_seed_has_no_band_and_says_so():
    s = series()
    s["mae"]["std"] = [math.nan] * 3
    fig = plot_label_efficiency(s)
    assert [t.name for t in fig.data if t.fill == "toself"] == ["scratch +-1 std"]
    assert "one seed: no spread (MAE-FT)" in caption_text(fig)
    s["mae"]["x"] = [5.0]
    with pytest.raises(PlotInputError, match="differ in length"):
        plot_label_efficiency(s)


def test_gap_bars_with_error_bars_in_budget_order():
    fig = plot_gap(series(), "gap_loss", caption="c")
    assert [t.type for t in fig.data] == ["bar", "bar"] and fig.layout.barmode == "group"
    assert list(fig.layout.xaxis.categoryarray) == ["5", "10", "all (~144)"]
    assert list(fig.data[0].error_y.array) == pytest.approx([0.05, 0.03, 0.01])
    assert fig.data[1].y[1] is None  # not measured: no bar
    assert "loss gap" in fig.layout.yaxis.title.text
    with pytest.raises(PlotInputError):
        plot_gap(series(), "gap_nonsense")


def test_flatness_vs_gap_states_the_statistic_and_counts_dropped_points():
    pts = [
        {"kind": "mae", "x": 1.0, "y": 0.1, "label": "a"},
        {"kind": "rcmae", "x": 2.0, "y": 0.2, "label": "b"},
        {"kind": "scratch", "x": 3.0, "y": 0.4, "label": "c"},
        {"kind": "scratch", "x": None, "y": 0.4, "label": "d"},
    ]
    stat = {"n": 3.0, "spearman": 1.0, "p_spearman": 0.33}
    fig = plot_flatness_vs_gap(pts, "top eigenvalue", "accuracy gap (train - val)", stat)
    assert [t.name for t in fig.data] == ["MAE-FT", "RC-MAE-FT", "from scratch"]
    assert "Spearman rho = +1.00, permutation p = 0.33, n = 3" in fig.layout.title.text
    assert "1 run(s) left out" in caption_text(fig)
    few = plot_flatness_vs_gap(pts[:2], "x", "y", {"n": 2})
    assert "n too small" in few.layout.title.text


def test_japanese_figure_text():
    fig = localize(plot_label_efficiency(series()), "ja")
    assert fig.layout.xaxis.title.text == "1クラスあたりのラベル数 (対数目盛)"
    assert "検証精度" in fig.layout.yaxis.title.text and "標準偏差" in fig.layout.yaxis.title.text
    assert fig.layout.title.text == "1クラスあたりのラベル数に対する検証精度"
    assert [t.name for t in fig.data if t.mode == "lines+markers"] == ["MAE-FT", "スクラッチ"]  # model names stay
    gap = localize(plot_gap(series()), "ja")
    assert "精度のギャップ" in gap.layout.yaxis.title.text
    sc = localize(plot_flatness_vs_gap([{"kind": "scratch", "x": 1, "y": 2}] * 3, "x", "y", {"n": 3}), "ja")
    assert "スクラッチ" in [t.name for t in sc.data]
