"""Flatness and training figures: training curves, robustness bands, density / eigenvalues / per-block bars and
flatness vs accuracy with its rank correlations, checked against numbers computed here with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

import core.report.plots_flatness as plots_flatness


def _annotation_text(fig) -> str:
    return " ".join(a.text or "" for a in fig.layout.annotations)


def test_training_curves_skip_models_without_the_metric() -> None:
    hist = {
        "MAE": [{"epoch": 1, "train_loss": 1.0, "time_s": 2.0}, {"epoch": 2, "train_loss": 0.5, "time_s": 2.1}],
        "Sup": [{"epoch": 1, "train_loss": 2.0, "val_acc": 0.5}],
        "Old": [{"epoch": 1}],
    }
    fig = plots_flatness.plot_training_curves(hist, metric="time_s")
    assert [t.name for t in fig.data] == ["MAE"]
    assert list(fig.data[0].y) == [2.0, 2.1] and list(fig.data[0].x) == [1, 2]
    assert "Sup" in _annotation_text(fig) and "Old" in _annotation_text(fig)
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.yaxis.title.text


def test_robustness_draws_mean_and_band() -> None:
    curves = {
        "MAE": {
            "sigmas": [0, 0.1],
            "acc_mean": [0.9, 0.7],
            "acc_std": [0, 0.05],
            "loss_mean": [1, 2],
            "loss_std": [0, 1],
        },
        "RC-MAE": {"sigmas": [0, 0.1], "acc_mean": None, "acc_std": None, "loss_mean": [1, 1.5], "loss_std": [0, 0.5]},
    }
    fig = plots_flatness.plot_robustness(curves, metric="acc", caption="5 draws, 64 images")
    assert len(fig.data) == 2  # band + mean for MAE only
    band, mean = fig.data
    assert band.fill == "toself"
    np.testing.assert_allclose(band.y, [0.9, 0.75, 0.65, 0.9])
    assert list(mean.y) == [0.9, 0.7]
    assert "RC-MAE" in _annotation_text(fig) and "5 draws" in _annotation_text(fig)
    assert "noise" in fig.layout.xaxis.title.text
    assert len(plots_flatness.plot_robustness(curves, metric="loss").data) == 4


def test_density_eigenvalues_and_per_block() -> None:
    fig = plots_flatness.plot_density({"MAE": {"grid": [0, 1, 2], "density": [0.1, 0.5, 0.01]}})
    assert fig.layout.yaxis.type == "log" and fig.data[0].type == "scatter"
    assert plots_flatness.plot_density({"MAE": {"grid": [0], "density": [1]}}, log=False).layout.yaxis.type == "linear"
    fig = plots_flatness.plot_eigenvalues({"MAE": [5.0, 3.0, 1.0], "Sup": [9.0, 2.0, 1.0]})
    assert [t.type for t in fig.data] == ["bar", "bar"] and fig.layout.barmode == "group"
    assert list(fig.data[1].y) == [9.0, 2.0, 1.0]
    rows = {
        "MAE": [{"group": "block 0", "lambda_max": 1.0}, {"group": "head", "lambda_max": 3.0}],
        "Sup": [{"group": "block 0", "lambda_max": 2.0}, {"group": "block 1", "lambda_max": 4.0}],
    }
    fig = plots_flatness.plot_per_block(rows)
    assert list(fig.data[0].x) == ["block 0", "head", "block 1"]
    assert list(fig.data[0].y) == [1.0, 3.0, None] and list(fig.data[1].y) == [2.0, None, 4.0]


def _spearman_by_hand(x, y) -> float:
    # average ranks of ties, then Pearson of the ranks
    def ranks(v):
        v = list(v)
        s = sorted(v)
        return [np.mean([i + 1 for i, w in enumerate(s) if w == u]) for u in v]

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def test_correlations_match_numpy_and_handle_ties() -> None:
    x = [1.0, 2.0, 2.0, 3.5, 10.0, 4.0]
    y = [0.5, 0.4, 0.45, 0.3, 0.1, 0.35]
    c = plots_flatness.correlations(x, y)
    assert c["n"] == 6
    assert c["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert c["spearman"] == pytest.approx(_spearman_by_hand(x, y))
    np.testing.assert_allclose(plots_flatness.rankdata([3, 1, 3, 2]), [3.5, 1, 3.5, 2])
    try:
        from scipy import stats
    except ImportError:
        pass
    else:
        assert c["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert math.isnan(plots_flatness.correlations([1, 2], [3, 4])["pearson"])
    assert math.isnan(plots_flatness.correlations([1, 1, 1], [3, 4, 5])["spearman"])


def test_flatness_vs_accuracy_states_the_correlation() -> None:
    pts = [
        {"label": "MAE s0", "kind": "mae", "trace": 10.0, "probe_acc": 0.6},
        {"label": "MAE s1", "kind": "mae", "trace": 12.0, "probe_acc": 0.55},
        {"label": "RC s0", "kind": "rcmae", "trace": 8.0, "probe_acc": 0.65},
        {"label": "RC s1", "kind": "rcmae", "trace": 9.0, "probe_acc": 0.6},
        {"label": "Sup", "kind": "sup", "trace": 30.0, "probe_acc": 0.5},
        {"label": "No trace", "kind": "sup", "trace": None, "probe_acc": 0.7},
    ]
    fig = plots_flatness.plot_flatness_vs_accuracy(pts, x="trace")
    assert [t.name for t in fig.data] == ["MAE", "RC-MAE", "supervised ViT"]
    assert sum(len(t.x) for t in fig.data) == 5
    xs, ys = [10, 12, 8, 9, 30], [0.6, 0.55, 0.65, 0.6, 0.5]
    title = fig.layout.title.text
    assert f"Pearson r = {np.corrcoef(xs, ys)[0, 1]:.2f}" in title
    assert f"Spearman rho = {_spearman_by_hand(xs, ys):.2f}" in title and "n = 5" in title
    assert "1 model(s) left out" in _annotation_text(fig)
    # Below five models: the points, no coefficient (three points fit some line whatever the truth).
    small = plots_flatness.plot_flatness_vs_accuracy(pts[:4], x="trace")
    assert "n too small" in small.layout.title.text and "Pearson" not in small.layout.title.text
    assert sum(len(t.x) for t in small.data) == 4
    # A loss-unit x over several functions says so; the basin width (a relative number) does not need to.
    mixed = [p | {"function": "cross-entropy" if p["kind"] == "sup" else "masked-patch MSE"} for p in pts]
    assert "mixed functions on the x axis" in _annotation_text(plots_flatness.plot_flatness_vs_accuracy(mixed, "trace"))
    one = [p | {"function": "masked-patch MSE"} for p in pts]
    assert "mixed functions" not in _annotation_text(plots_flatness.plot_flatness_vs_accuracy(one, "trace"))
