"""Figure builders: trace types and counts, shared colour scale, relative/log transforms, NaN gaps, slices,
differences, correlations and the offline HTML export, checked against numbers computed here with numpy."""

from __future__ import annotations

import re

import numpy as np
import pytest

import core.report.plots as plots
import core.report.plots_flatness as plots_flatness
from core.report.plots import Panel

# Off-centre, non-square grid: the nearest point to 0 is x=0.1 (index 2), y=-0.2 (index 1); a transposed array or
# a wrong centre changes the numbers.
XS = np.array([-1.0, -0.45, 0.1, 0.6, 1.0])
YS = np.array([-1.0, -0.2, 0.5])
IY, IX = 1, 2


def _loss(seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return scale * (1.0 + np.add.outer(YS**2, XS**2) + 0.1 * rng.random((len(YS), len(XS))))


def _panels(n: int, nan: bool = True) -> list[Panel]:
    out = []
    for i in range(n):
        loss = _loss(i, scale=1.0 + i)
        if nan:
            loss[0, -1] = np.nan
        out.append(Panel(f"model {i}", XS, YS, loss, caption=f"5x3 grid, 64 images, direction seed {i}"))
    return out


def _z(trace) -> np.ndarray:
    return np.asarray(trace.z, dtype=float)


def _main_traces(fig, kind: str) -> list:
    return [t for t in fig.data if t.type == kind]


def _annotation_text(fig) -> str:
    return " ".join(a.text or "" for a in fig.layout.annotations)


@pytest.mark.parametrize("view,kind", [("contour", "contour"), ("heatmap", "heatmap"), ("surface", "surface")])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_trace_types_and_counts(view: str, kind: str, n: int) -> None:
    fig = plots.plot_surfaces(_panels(n), view=view)
    main = _main_traces(fig, kind)
    assert len(main) == n
    assert [t.name for t in main] == [f"model {i}" for i in range(n)]
    if view == "surface":
        assert {t.scene for t in main} == {"scene"} | {f"scene{i}" for i in range(2, n + 1)}
    else:
        # the centre is marked on every 2-D subplot
        centres = [t for t in fig.data if t.type == "scatter" and t.name == "centre"]
        assert len(centres) == n and all(tuple(t.x) == (0.0,) and tuple(t.y) == (0.0,) for t in centres)
    assert fig.layout.title.text


@pytest.mark.parametrize("view", ["contour", "heatmap", "surface"])
def test_shared_scale_is_the_global_range_of_what_is_plotted(view: str) -> None:
    panels = _panels(3)
    fig = plots.plot_surfaces(panels, view=view, relative=True)
    expected = [p.loss - p.loss[IY, IX] for p in panels]
    lo = min(np.nanmin(e) for e in expected)
    hi = max(np.nanmax(e) for e in expected)
    main = _main_traces(fig, view)
    for t in main:
        zmin, zmax = (t.cmin, t.cmax) if view == "surface" else (t.zmin, t.zmax)
        assert zmin == pytest.approx(lo) and zmax == pytest.approx(hi)
        assert t.coloraxis == "coloraxis"  # one colour bar for all panels
    if view == "surface":  # and the same height scale
        assert [list(fig.layout[f"scene{i or ''}"].zaxis.range) for i in (0, 2, 3)] == [pytest.approx([lo, hi])] * 3
    assert fig.layout.coloraxis.cmin == pytest.approx(lo)
    assert fig.layout.coloraxis.cmax == pytest.approx(hi)


def test_relative_subtracts_the_centre_and_keeps_nan() -> None:
    panels = _panels(2)
    fig = plots.plot_surfaces(panels, view="heatmap", relative=True)
    for t, p in zip(_main_traces(fig, "heatmap"), panels, strict=True):
        z = _z(t)
        np.testing.assert_allclose(z, p.loss - p.loss[IY, IX], equal_nan=True)
        assert np.isnan(z[0, -1]) and np.isfinite(z).sum() == z.size - 1
        assert z[IY, IX] == 0.0
        assert t.connectgaps is False
    text = fig.layout.coloraxis.colorbar.title.text
    assert "increase over the centre" in text
    assert "increase over the centre" in fig.layout.title.text


def test_absolute_mode_plots_the_loss_and_says_so() -> None:
    panels = _panels(2)
    fig = plots.plot_surfaces(panels, view="contour", relative=False)
    for t, p in zip(_main_traces(fig, "contour"), panels, strict=True):
        np.testing.assert_allclose(_z(t), p.loss, equal_nan=True)
    text = fig.layout.coloraxis.colorbar.title.text
    assert text == "loss" and "increase" not in fig.layout.title.text


def test_log_transform_is_applied_and_stated() -> None:
    panels = _panels(2)
    eps = 1e-3
    fig = plots.plot_surfaces(panels, view="heatmap", relative=True, log=True, eps=eps)
    for t, p in zip(_main_traces(fig, "heatmap"), panels, strict=True):
        rel = p.loss - p.loss[IY, IX]
        np.testing.assert_allclose(_z(t), np.log10(np.maximum(rel, 0) + eps), equal_nan=True)
    text = fig.layout.coloraxis.colorbar.title.text
    assert "log10" in text and "0.001" in text and "increase over the centre" in text
    # a point below the centre has no log increase: clipped to log10(eps), and the label says max(., 0)
    below = _loss(0)
    below[0, 0] = below[IY, IX] - 0.5
    z = _z(plots.plot_surfaces([Panel("dip", XS, YS, below)], view="heatmap", log=True, eps=eps).data[0])
    assert z[0, 0] == pytest.approx(np.log10(eps)) and "max(" in text
    # absolute log, default eps: the eps on the colour bar is the one used
    fig = plots.plot_surfaces(panels, view="heatmap", relative=False, log=True)
    text = fig.layout.coloraxis.colorbar.title.text
    used = float(re.search(r"\+ ([0-9.e+-]+)\)", text).group(1))
    np.testing.assert_allclose(_z(fig.data[0]), np.log10(panels[0].loss + used), rtol=1e-2, equal_nan=True)


def test_nan_centre_gives_gaps_and_a_note() -> None:
    loss = _loss(0)
    loss[IY, IX] = np.nan
    fig = plots.plot_surfaces([Panel("half done", XS, YS, loss)], view="heatmap")
    assert np.isnan(_z(fig.data[0])).all()
    assert "centre not computed yet" in _annotation_text(fig)


def test_captions_and_path_are_drawn() -> None:
    path = np.array([[0.5, 0.4], [0.2, 0.1], [0.0, 0.0]])
    panels = [Panel("a", XS, YS, _loss(0), "5x3 grid, 64 images, seed 0", path=path)]
    fig = plots.plot_surfaces(panels, view="contour")
    assert "5x3 grid, 64 images, seed 0" in _annotation_text(fig)
    traj = [t for t in fig.data if t.name == "training path"]
    assert len(traj) == 1
    np.testing.assert_allclose(traj[0].x, path[:, 0])
    np.testing.assert_allclose(traj[0].y, path[:, 1])


def test_one_dimensional_panels_are_lines() -> None:
    line = Panel("line", XS, None, XS**2 + 1.0, "5 points")
    fig = plots.plot_surfaces([line], view="surface")
    assert [t.type for t in fig.data] == ["scatter"]
    np.testing.assert_allclose(fig.data[0].y, XS**2 + 1.0 - (XS[IX] ** 2 + 1.0))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="view"):
        plots.plot_surfaces(_panels(1), view="wireframe")
    with pytest.raises(ValueError, match="shape"):
        plots.plot_surfaces([Panel("bad", XS, YS, np.zeros((len(XS), len(YS))))])
    with pytest.raises(ValueError):
        plots.plot_surfaces([])


def test_slices_pick_the_centre_row_and_column() -> None:
    panels = _panels(2, nan=False)
    fig = plots.plot_slices(panels, relative=True)
    assert len(fig.data) == 4  # two models x two subplots
    for i, p in enumerate(panels):
        along_x, along_y = fig.data[2 * i], fig.data[2 * i + 1]
        c = p.loss[IY, IX]
        np.testing.assert_allclose(along_x.x, XS)
        np.testing.assert_allclose(along_x.y, p.loss[IY, :] - c)
        np.testing.assert_allclose(along_y.x, YS)
        np.testing.assert_allclose(along_y.y, p.loss[:, IX] - c)
        assert along_x.xaxis == "x" and along_y.xaxis == "x2"
        assert along_x.name == along_y.name == p.label
    assert sum(bool(t.showlegend) for t in fig.data) == 2  # one legend entry per model
    absolute = plots.plot_slices(panels, relative=False)
    np.testing.assert_allclose(absolute.data[0].y, panels[0].loss[IY, :])
    assert "increase" not in absolute.layout.yaxis.title.text


def test_slices_of_lines_have_one_subplot() -> None:
    fig = plots.plot_slices([Panel("a", XS, None, XS**2), Panel("b", XS, None, 2 * XS**2)], log=True, eps=1e-2)
    assert len(fig.data) == 2 and {t.xaxis for t in fig.data} == {"x"}
    np.testing.assert_allclose(fig.data[1].y, np.log10(np.maximum(2 * XS**2 - 2 * XS[IX] ** 2, 0) + 1e-2))
    assert "log10" in fig.layout.yaxis.title.text


def test_difference_is_a_minus_b() -> None:
    a, b = _panels(2)
    fig = plots.plot_difference(a, b, relative=True)
    expected = (a.loss - a.loss[IY, IX]) - (b.loss - b.loss[IY, IX])
    heat = _main_traces(fig, "heatmap")[0]
    np.testing.assert_allclose(_z(heat), expected, equal_nan=True)
    assert heat.zmid == 0 and heat.zmin == -heat.zmax
    assert heat.zmax == pytest.approx(np.nanmax(np.abs(expected)))
    assert "A minus B" in fig.layout.title.text and "model 0" in fig.layout.title.text
    assert "increase over the centre" in fig.layout.title.text
    absolute = plots.plot_difference(a, b, relative=False)
    np.testing.assert_allclose(_z(absolute.data[0]), a.loss - b.loss, equal_nan=True)
    assert "absolute" in absolute.layout.title.text


def test_difference_rejects_mismatched_grids() -> None:
    a = _panels(1)[0]
    other = Panel("coarse", np.linspace(-1, 1, 3), YS, np.ones((len(YS), 3)))
    with pytest.raises(ValueError, match="grids differ"):
        plots.plot_difference(a, other)
    shifted = Panel("shifted", XS + 0.1, YS, a.loss)
    with pytest.raises(ValueError, match="grids differ"):
        plots.plot_difference(a, shifted)
    with pytest.raises(ValueError, match="line"):
        plots.plot_difference(a, Panel("line", XS, None, XS))


def test_figure_html_is_self_contained() -> None:
    fig = plots.plot_surfaces(_panels(1), title="export me")
    html = plots.figure_html(fig)
    assert "plotly" in html.lower() and "export me" in html
    assert not re.search(r"<script[^>]+src=", html)  # no external script: works offline
    assert len(html) > 1_000_000  # plotly.js itself is inlined


def _every_figure() -> list:
    """One figure of each kind, in every mode whose English text differs, with labels free of English words."""
    panels = [Panel(f"M{i}", XS, YS, _loss(i), "") for i in range(2)]
    path = np.array([[0.5, 0.4], [0.0, 0.0]])
    nan_centre = _loss(0)
    nan_centre[IY, IX] = np.nan
    figs = []
    for view in ("contour", "heatmap", "surface"):
        for relative, log in ((True, False), (False, False), (True, True), (False, True)):
            figs.append(plots.plot_surfaces(panels, view=view, relative=relative, log=log))
    figs.append(plots.plot_surfaces([Panel("P", XS, YS, _loss(0), "", path=path), Panel("Q", XS, YS, nan_centre)]))
    figs.append(plots.plot_surfaces([Panel("L", XS, None, _loss(0)[IY])]))
    figs += [plots.plot_slices(panels), plots.plot_slices([Panel("L", XS, None, _loss(0)[IY])], log=True)]
    figs += [plots.plot_difference(*panels), plots.plot_difference(*panels, relative=False)]
    hist = {"M": [{"epoch": 1, **{m: 1.0 for m in plots.METRIC_NAMES}}]}
    figs += [plots_flatness.plot_training_curves(hist, metric=m) for m in plots.METRIC_NAMES]
    curves = {
        "M": {"sigmas": [0, 0.1], "acc_mean": [0.9, 0.7], "acc_std": [0, 0.1], "loss_mean": [1, 2], "loss_std": [0, 1]}
    }
    figs += [plots_flatness.plot_robustness(curves, metric=m) for m in ("acc", "loss")]
    figs += [
        plots_flatness.plot_density({"M": {"grid": [0, 1], "density": [0.5, 0.5]}}, log=log) for log in (True, False)
    ]
    figs.append(plots_flatness.plot_eigenvalues({"M": [2.0, 1.0]}))
    figs += [plots_flatness.plot_per_block({"M": [{"group": "g", m: 1.0}]}, metric=m) for m in ("lambda_max", "trace")]
    pts = [
        {"label": f"M{i}", "kind": k, "trace": float(i + 1), "probe_acc": 0.5 + i / 10}
        for i, k in enumerate(["mae", "rcmae", "sup"])
    ]
    for x in ("trace", "top_eigenvalue", "sharpness", "basin_width"):
        figs.append(plots_flatness.plot_flatness_vs_accuracy([p | {x: p["trace"]} for p in pts], x=x))
    figs.append(
        plots_flatness.plot_flatness_vs_accuracy(
            pts[:2] + [{"label": "M9", "kind": "sup", "probe_acc": 0.1}], x="trace"
        )
    )
    figs.append(plots_flatness.plot_flatness_vs_accuracy([p | {"trace": 1.0} for p in pts], x="trace"))
    return figs


def _texts(node, out: list[str]) -> list[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("text", "name", "hovertext", "title") and isinstance(v, str):
                out.append(v)
            elif k in ("text", "name", "hovertext") and isinstance(v, list | tuple):
                out += [x for x in v if isinstance(x, str)]
            else:
                _texts(v, out)
    elif isinstance(node, list | tuple):
        for v in node:
            _texts(v, out)
    return out


ENGLISH = re.compile(r"[A-Za-z]{3,}")
KEPT = {"alpha", "beta", "sigma", "lambda", "log", "max", "Pearson", "Spearman", "rho", "ViT", "MAE", "caption"}


def test_japanese_figures_have_no_english_left_and_the_same_data() -> None:
    for fig in _every_figure():
        ja = plots.localize(fig, "ja")
        shown = [re.sub(r"</?\w+>", " ", s) for s in _texts(ja.to_dict(), [])]  # <br>, <sub> are markup
        words = {w for s in shown for w in ENGLISH.findall(s)} - KEPT
        assert not words, (words, fig.layout.title.text)
        assert len(ja.data) == len(fig.data)
        for a, b in zip(ja.data, fig.data, strict=True):
            for attr in ("x", "y", "z"):
                va, vb = getattr(a, attr, None), getattr(b, attr, None)
                assert (va is None) == (vb is None)
                if va is not None:
                    assert repr(va) == repr(vb)  # NaN gaps included
    fig = plots.plot_surfaces(_panels(2))
    assert plots.localize(fig, "en") is fig
    assert plots.localize(fig, "ja").layout.title.text.startswith("損失地形")


def test_long_captions_are_wrapped_without_losing_words() -> None:
    words = [f"word{i}" for i in range(40)]
    ja = "日本語の説明" * 20
    fig = plots.plot_surfaces(_panels(1, nan=False))
    plots.captions(fig, [" ".join(words), ja])
    localized = plots.localize(fig, "ja")  # localize first: phrases are matched whole
    before = localized.layout.margin.b
    plots.wrap_captions(localized, chars=60)
    (cap,) = [a for a in localized.layout.annotations if a.name == "caption" and "word0" in a.text]
    lines = cap.text.split("<br>")
    assert all(len(line) <= 60 for line in lines if line.isascii())
    assert all(len(line) <= 30 for line in lines if not line.isascii())
    assert " ".join(x for x in lines if x.isascii()).split() == words
    assert "".join(x for x in lines if not x.isascii()).endswith(ja)
    assert localized.layout.margin.b > before


def test_layout_at_a_small_width_square_slices_one_camera_and_room_between_panels() -> None:
    square = [Panel(f"model {i}", XS, XS, np.add.outer(XS**2, XS**2) + i) for i in range(2)]
    fig = plots.plot_surfaces(square, view="contour")
    # equal spans: one unit is one unit on screen (the y axis anchored to its own x axis)
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis2.scaleanchor == "x2"
    assert fig.layout.yaxis.scaleratio == 1
    # the 5x3 test grid spans differ: drawn to the panel's shape
    assert plots.plot_surfaces(_panels(2), view="contour").layout.yaxis.scaleanchor is None
    # room between the panels: the first panel's right edge and the second's left edge do not touch
    assert fig.layout.xaxis2.domain[0] - fig.layout.xaxis.domain[1] >= 0.09
    assert fig.layout.xaxis.nticks == 5
    # 3-D: one camera for every panel
    fig3 = plots.plot_surfaces(square, view="surface")
    cams = [fig3.layout[s].camera.to_plotly_json() for s in ("scene", "scene2")]
    assert cams[0] == cams[1] and cams[0]["eye"] == plots.SURFACE_CAMERA["eye"]


def test_one_palette_by_model_kind() -> None:
    labels = ["Sup-ViT · seed 0", "MAE · seed 0", "RC-MAE · seed 0", "RC-MAE · seed 0 · MAE term", "other"]
    colors = plots.model_colors(labels)
    assert colors["MAE · seed 0"] == plots.KIND_COLORS["mae"] and colors["Sup-ViT · seed 0"] == plots.KIND_COLORS["sup"]
    assert colors["RC-MAE · seed 0"] == plots.KIND_COLORS["rcmae"]
    assert len(set(colors.values())) == len(labels)  # a second RC-MAE: a lighter red, not the same line
    # the same model gets the same colour whatever the order, in every figure that draws per-model series
    assert plots.model_colors(labels[::-1])["MAE · seed 0"] == plots.KIND_COLORS["mae"]
    hist = {lab: [{"epoch": 1, "train_loss": 1.0}] for lab in labels[:3]}
    fig = plots_flatness.plot_training_curves(hist)
    assert {tr.name: tr.line.color for tr in fig.data} == {lab: colors[lab] for lab in labels[:3]}
    bars = plots_flatness.plot_eigenvalues({lab: [1.0] for lab in labels[:3]})
    assert [tr.marker.color for tr in bars.data] == [colors[lab] for lab in labels[:3]]
