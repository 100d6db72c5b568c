"""The figures of `python -m core reproduce`: the surfaces compared by each claim, the convexity maps, the
convergence curves and probe accuracy against flatness, written next to the report (PNG with kaleido, else HTML).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.measure import convexity_figures
from core.report import Panel, plot_flatness_vs_accuracy, plot_surfaces, plot_training_curves
from core.studies.claims import flatness_points, surface_centre
from core.studies.measuring import LABEL, RunResults


def _kaleido() -> bool:
    """Whether kaleido (optional: PNG export) is installed; imported here only to probe for it."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return True


def write_figure(fig, folder: Path, stem: str) -> str:
    """Write a figure as PNG (when kaleido is installed) or as HTML sharing one plotly.min.js; returns its name."""
    folder.mkdir(parents=True, exist_ok=True)
    if _kaleido():
        name = f"{stem}.png"
        fig.write_image(str(folder / name), width=1100, height=fig.layout.height or 500)
    else:
        name = f"{stem}.html"
        fig.write_html(str(folder / name), include_plotlyjs="directory", full_html=True)
    return name


def _surface_figure(r: RunResults, keys: Sequence[tuple[str, str]], title: str):

    s = r.seeds[0]
    panels = []
    for mkey, label in keys:
        m = r.measured[mkey, s]
        c = surface_centre(m)
        cap = (
            f"{len(m.xs)}x{len(m.ys)} grid, {r.spec.samples} images, direction seed {r.spec.direction_seed}, "
            "filter-normalized; each loss divided by its centre value"
        )
        panels.append(Panel(f"{label} (seed {s}, L(centre) {c:.3g})", m.xs, m.ys, m.loss / c, cap))
    fig = plot_surfaces(panels, view="contour", relative=True, title=title)
    fig.update_layout(coloraxis_colorbar_title_text="relative increase<br>(L - L(centre)) / L(centre)")
    return fig


def make_figures(r: RunResults, folder: Path, link_prefix: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Every figure of the report, written to `folder`; returns claim -> ((caption, link), ...)."""
    out: dict[str, list[tuple[str, str]]] = {"claim1": [], "claim2": [], "generalization": []}
    s0 = r.seeds[0]

    def add(claim: str, fig, stem: str, caption: str) -> None:
        out[claim].append((caption, link_prefix + write_figure(fig, folder, stem)))

    surfaces = (
        (
            "claim1",
            "claim1_own_objective",
            "MAE vs Sup-ViT, own training objective",
            [("mae_own", "MAE, pixel MSE"), ("sup_own", "Sup-ViT, cross-entropy")],
        ),
        (
            "claim1",
            "claim1_probe_loss",
            "MAE vs Sup-ViT, linear-probe loss",
            [("mae_probe", "MAE probe"), ("sup_probe", "Sup-ViT probe")],
        ),
        (
            "claim2",
            "claim2_pretrain_loss",
            "RC-MAE vs MAE, pre-training loss (MAE term)",
            [("mae_own", "MAE"), ("rcmae_mae", "RC-MAE (MAE term)")],
        ),
        (
            "claim2",
            "claim2_probe_loss",
            "RC-MAE vs MAE, linear-probe loss",
            [("mae_probe", "MAE probe"), ("rcmae_probe", "RC-MAE probe")],
        ),
    )
    for claim, stem, title, keys in surfaces:
        add(claim, _surface_figure(r, keys, title), stem, f"{title}: relative loss increase, seed {s0}")
    for fig, stem, caption in convexity_figures(r):
        add("claim2", fig, stem, caption)
    hist = {f"{LABEL[k]} seed {s}": r.histories[k, s] for k in ("mae", "rcmae") for s in r.seeds}
    for metric, cap in (("val_loss", "validation pre-training loss"), ("probe_acc", "ridge-probe accuracy")):
        fig = plot_training_curves(hist, metric, f"Convergence: {cap}", caption="per epoch, from the training history")
        add("claim2", fig, f"claim2_convergence_{metric}", f"Convergence: {cap} per epoch, every seed")
    points, fam = flatness_points(r)
    for family, stem in (("probe loss", "probe"), ("own objective", "own")):
        for nkey, xname in (("basin_width", "basin width"), ("lambda_max", "Hessian top eigenvalue")):
            if family == "own objective" and nkey == "lambda_max":
                xname += " / L(centre)"
            x = f"{xname} ({family})"
            pts = [
                {"label": f"s{s}", "kind": k, "probe_acc": r.probe_acc[k, s], x: fam[family][k, s][nkey]}
                for k, s in points
            ]
            fig = plot_flatness_vs_accuracy(pts, x, log_x=nkey == "lambda_max", caption="one point per model and seed")
            add("generalization", fig, f"generalization_{stem}_{nkey}", f"Probe accuracy vs {x}, every seed")
    return {k: tuple(v) for k, v in out.items()}
