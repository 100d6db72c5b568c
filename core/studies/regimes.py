"""Claim 2 across training regimes: RC-MAE against MAE for each teacher momentum x training length.

The seed's claim 2 (RC-MAE's EMA teacher widens the convex, flat region and converges faster) is measured by
`core.studies.reproduce` on one regime. This module repeats the claim's comparison over a small grid, so that
the report says where, if anywhere, the claim holds at this scale:

- momentum: "auto" (the paper's teacher horizon in epochs, `core.models.vit.resolve_ema_momentum`), 0.99 and 0.996 (the
  paper's value taken as it is: at ~11 steps per epoch a horizon of ~250 steps, most of a short run);
- training length: the report's epochs and 3x that (MAE is retrained at each length: its baseline);
- every cell: the report's seeds, its landscapes (same grid, span, directions, images and masks) and Hessian numbers.

Each cell is judged as claim 2 is: the same tables (`core.studies.claims.comparison_table` on the MAE reconstruction
loss, the same function for both models: RC-MAE's MAE term with its student moving; the linear-probe loss;
`convergence_table`) and the same rule (`core.report.verdicts`: claim 2's three primaries, Holm-corrected over every
primary of the grid, `judge_grid`), with the slice's convex fraction standing in for the convex area. Only
claim 2's convex-area table (`core.measure.convexity`: a Lanczos run per map point) is left out of the cells: its cost.
Every training, probe, landscape and Hessian is cached by content, so the cell of the default regime (auto, the
report's epochs) reuses the report's own runs and points, and a rerun costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.models import load_checkpoint, train_model, train_probe
from core.report import (
    COLORS,
    Claim,
    ClaimVerdict,
    Findings,
    Table,
    captions,
    estimate_cell,
    format_mean_std,
    judge,
    judgement_text,
    mean_std,
    verdict_of,
)
from core.studies.claims import CLAIM2_PRIMARY, comparison_table, convergence_table
from core.studies.figures import write_figure
from core.studies.measuring import MEASURES, LogFn, Measured, ReproduceSpec, RunResults, measure
from core.studies.workers import map_jobs

MOMENTA: tuple[float | str, ...] = ("auto", 0.99, 0.996)  # auto first: the default regime
LENGTH_FACTORS: tuple[int, ...] = (1, 3)  # the report's epochs and 3x that
QUICK_FACTORS: tuple[int, ...] = (1, 2)  # --quick: shorter
CELL_MEASURES = ("mae_own", "rcmae_mae", "mae_probe", "rcmae_probe")  # claim 2's comparisons


def momentum_label(m: float | str) -> str:
    return "auto" if m == "auto" else f"{float(m):g}"


@dataclass
class Cell:
    """One regime: RC-MAE trained with `momentum` for `epochs` epochs, against MAE trained as long.

    Attributes:
        momentum: "auto" or the explicit value asked for.
        epochs: training length of both models.
        resolved: the momentum RC-MAE trained with (auto resolved for the run's steps per epoch).
        claim: claim 2's tables for this regime, with its three primaries (`cell_claim`).
        results: the measurements behind it (as `core.studies.measuring.RunResults`).
        judgement: the cell's verdict, its primaries read after Holm over every cell's primaries (`judge_grid`).
    """

    momentum: float | str
    epochs: int
    resolved: float
    claim: Claim
    results: RunResults
    judgement: ClaimVerdict | None = None

    @property
    def verdict(self) -> str:
        return (self.judgement or self.claim.judgement).verdict

    def verdict_text(self) -> str:
        return judgement_text(self.judgement or self.claim.judgement)


def judge_grid(cells: Sequence[Cell]) -> None:
    """Set every cell's `judgement`: Holm over the primaries of every cell of the grid (one family: the grid asks
    where, if anywhere, claim 2 holds), then each cell's verdict from its own primaries."""
    primaries = [r.estimate for c in cells for r in c.claim.primary_rows()]
    judged = judge(primaries)
    i = 0
    for c in cells:
        k = len(c.claim.primary_rows())
        c.judgement = verdict_of(judged[i : i + k])
        i += k


@dataclass
class RegimeResults:
    """Every cell of the grid, momentum-major within each training length (`lengths` ascending)."""

    spec: ReproduceSpec
    seeds: tuple[int, ...]
    momenta: tuple[float | str, ...]
    lengths: tuple[int, ...]
    cells: list[Cell]

    @property
    def grid(self) -> int:
        """The cells' landscape grid (points per axis)."""
        return self.spec.cell_grid

    def cell(self, momentum: float | str, epochs: int) -> Cell:
        for c in self.cells:
            if c.momentum == momentum and c.epochs == epochs:
                return c
        raise KeyError((momentum, epochs))


def lengths(spec: ReproduceSpec, factors: Sequence[int] = LENGTH_FACTORS) -> tuple[int, ...]:
    """The training lengths of the grid (epochs): the report's epochs times each factor."""
    return tuple(spec.epochs * f for f in factors)


def cell_spec(spec: ReproduceSpec, epochs: int) -> ReproduceSpec:
    """The spec of the cells of one training length: `epochs`, and the landscape grid `spec.cell_grid` (a coarser
    2**k + 1 grid nested in the report's reuses its points: cheaper, but coarser numbers)."""
    return replace(spec, epochs=epochs, grid=spec.cell_grid)


def _train(cfg, spec: ReproduceSpec, name: str, log: LogFn) -> tuple[str, str, list[dict], float]:
    """Train (or find) one model and its probe (`spec` is the seed's, `ReproduceSpec.at_seed`): (checkpoint, probe,
    history, probe accuracy)."""
    log(f"regimes: train {name} ({cfg.epochs} epochs; cached by config)")
    path = train_model(cfg, device=spec.device)
    probe = train_probe(path, spec.probe, device=spec.device)
    hist = list(load_checkpoint(path).meta.get("history") or [])
    ph = load_checkpoint(probe).meta.get("history") or []
    return str(path), str(probe), hist, float(ph[-1]["val_acc"]) if ph else math.nan


def regime_seed(spec: ReproduceSpec, epochs: int, seed: int, momenta: tuple, *, log: LogFn) -> dict:
    """One job of the grid: MAE and every RC-MAE momentum trained `epochs` epochs with seed `seed`, and the cells'
    measures (all cached). Returns {"mae": trained, "rc": momentum -> trained, "measured": momentum -> key ->
    Measured}, a trained model being (checkpoint, probe, history, probe accuracy)."""
    s_len = cell_spec(spec, epochs)
    ss = s_len.at_seed(seed)
    by_key = {m.key: m for m in MEASURES}
    mae = _train(s_len.train_config("mae", seed), ss, f"MAE seed {seed}", log)
    out: dict = {"mae": mae, "rc": {}, "measured": {}}
    mae_measured: dict[str, Measured] = {}
    for m in momenta:
        cfg = replace(s_len.train_config("rcmae", seed), ema_momentum=m)
        rc = _train(cfg, ss, f"RC-MAE m {momentum_label(m)} seed {seed}", log)
        measured = {}
        for key in CELL_MEASURES:
            kind = by_key[key].kind
            if kind == "mae" and key in mae_measured:
                measured[key] = mae_measured[key]
                continue
            ckpt, probe = (mae if kind == "mae" else rc)[:2]
            log(f"regimes: measure {by_key[key].title}, {epochs} epochs, m {momentum_label(m)}, seed {seed}")
            measured[key] = measure(by_key[key], ckpt, probe, ss, log)
            if kind == "mae":
                mae_measured[key] = measured[key]
        out["rc"][m], out["measured"][m] = rc, measured
    return out


def cell_claim(r: RunResults) -> Claim:
    """Claim 2 on one regime's measurements: the tables of claim 2 (the pre-training loss on one function for both,
    the linear-probe loss, convergence) except the convex-area table of `core.measure.convexity`, whose maps cost a
    Lanczos run per point: too much for every cell. Its three primaries are claim 2's, the slice's convex fraction
    standing in for the convex area (`core.studies.claims.CLAIM2_PRIMARY`)."""
    primary = "convex_fraction"
    tables = (
        comparison_table(
            r, "Pre-training loss", "rcmae_mae", "mae_own", "RC-MAE", "MAE", relative=False, primary=primary
        ),
        comparison_table(
            r, "Linear-probe loss", "rcmae_probe", "mae_probe", "RC-MAE", "MAE", relative=False, primary=primary
        ),
        convergence_table(r),
    )
    return Claim(title="RC-MAE vs MAE", statement="", tables=tables, primary_reason=CLAIM2_PRIMARY)


def run_regimes(
    spec: ReproduceSpec,
    log: LogFn,
    *,
    momenta: Sequence[float | str] = MOMENTA,
    factors: Sequence[int] = LENGTH_FACTORS,
) -> RegimeResults:
    """Train (or find) every model of the grid and measure claim 2 in each cell (all cached).

    Args:
        spec: the report's spec: seeds, data, preset, epochs (the first length), landscapes, Hessians, probes.
        log: progress lines.
        momenta: RC-MAE teacher momenta ("auto" or floats).
        factors: training lengths as multiples of `spec.epochs`.
    """
    seeds = tuple(range(min(spec.seeds, spec.regime_seeds)))
    momenta = tuple(momenta)
    jobs = [(spec, epochs, s, momenta) for epochs in lengths(spec, factors) for s in seeds]
    names = [f"regime {epochs} epochs seed {s}" for epochs in lengths(spec, factors) for s in seeds]
    done = dict(zip([(j[1], j[2]) for j in jobs], map_jobs(regime_seed, jobs, spec.workers, log, names), strict=True))
    cells = []
    for epochs in lengths(spec, factors):
        s_len = cell_spec(spec, epochs)
        for m in momenta:
            runs = {s: done[epochs, s] for s in seeds}
            trained = {
                (k, s): runs[s]["mae"] if k == "mae" else runs[s]["rc"][m] for k in ("mae", "rcmae") for s in seeds
            }
            measured = {(key, s): runs[s]["measured"][m][key] for key in CELL_MEASURES for s in seeds}
            ckpts = {ks: t[0] for ks, t in trained.items()}
            probes = {ks: t[1] for ks, t in trained.items()}
            hist = {ks: t[2] for ks, t in trained.items()}
            pacc = {ks: t[3] for ks, t in trained.items()}
            r = RunResults(s_len, seeds, ckpts, probes, hist, pacc, {}, measured, {})
            train = load_checkpoint(ckpts["rcmae", seeds[0]]).meta.get("train") or {}
            resolved = float(train.get("ema_momentum_resolved", m if m != "auto" else math.nan))
            cells.append(Cell(m, epochs, resolved, cell_claim(r), r))
    judge_grid(cells)
    for c in cells:
        log(f"regimes: {c.epochs} epochs, m {momentum_label(c.momentum)}: {c.verdict_text()}")
    return RegimeResults(spec, seeds, tuple(momenta), lengths(spec, factors), cells)


# --------------------------------------------------------------------------------------------------------------------
# Key numbers, the table and the figure


def _row(t: Table, prefix: str):
    for row in t.rows:
        if row.name.startswith(prefix):
            return row
    raise KeyError(prefix)


def key_numbers(cell: Cell) -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """name -> (RC-MAE per seed, MAE per seed) of the numbers the regime table shows."""
    pre, probe, conv = cell.claim.tables
    r = cell.results
    out = {
        "final validation MAE loss": (_row(conv, "final validation").a, _row(conv, "final validation").b),
        "epochs to the shared loss": (
            _row(conv, "epochs to reach validation").a,
            _row(conv, "epochs to reach valid").b,
        ),
        "basin width (pre-training)": (_row(pre, "basin width (").a, _row(pre, "basin width (").b),
        "Hessian top eigenvalue (pre-training)": (_row(pre, "Hessian top").a, _row(pre, "Hessian top").b),
        "basin width (probe)": (_row(probe, "basin width (").a, _row(probe, "basin width (").b),
        "linear-probe accuracy": (
            tuple(r.probe_acc["rcmae", s] for s in r.seeds),
            tuple(r.probe_acc["mae", s] for s in r.seeds),
        ),
    }
    return out


TABLE_NUMBERS = (
    ("final validation MAE loss", ".4g"),
    ("basin width (pre-training)", ".3g"),
    ("Hessian top eigenvalue (pre-training)", ".3g"),
    ("linear-probe accuracy", ".3f"),
)


def regime_markdown(rr: RegimeResults, figures: Sequence[tuple[str, str]] = ()) -> str:
    """The regime section of the report: what was run, one row per cell, figures."""
    lines = [
        f"Claim 2 measured again for every teacher momentum in {{{', '.join(momentum_label(m) for m in rr.momenta)}}} "
        f"x training length in {{{', '.join(map(str, rr.lengths))}}} epochs, {len(rr.seeds)} seeds each; MAE is "
        "retrained at "
        "each length as the baseline. Each cell is judged as claim 2 is, with the same verdict rule, on claim 2's "
        "numbers from the pre-training landscape on the MAE reconstruction loss (the same function for both; "
        "RC-MAE's student moves), the linear-probe landscape and convergence; the convex-area maps are left out "
        f"(a Lanczos run per point is too costly for every cell). Landscapes on a {rr.grid}x{rr.grid} grid"
        + (
            f" (nested in claim 2's {rr.spec.grid}x{rr.spec.grid}: some of its points, for time; the "
            f"{rr.spec.epochs}-epoch `auto` cell is claim 2's run read on those points, so its numbers differ a little "
            "from claim 2's table). "
            if rr.grid < rr.spec.grid
            else ". "
        )
        + "`auto` is m = 0.996 ** (312 / S) "
        "(S = optimizer steps per epoch; 312 is ImageNet-1k at batch 4096): the paper's teacher horizon in epochs, "
        "by the EMA scaling rule of Busbridge et al. 2023; 0.996 is the paper's value taken as it is, a horizon of "
        "~250 steps, which here is most of the run. Numbers are mean ± sample standard deviation over seeds "
        f"(RC-MAE / MAE). Each cell's verdict is decided by claim 2's three primaries (the slice's convex fraction "
        f"standing in for the convex area), Holm-corrected over every primary of the {len(rr.cells)} cells (one "
        f"family: the grid asks where, if anywhere, the claim holds), with {len(rr.seeds)} seeds, fewer than the "
        "claims' (the grid costs about six times a seed of claims 1-2).",
        "",
        "| momentum (used) | epochs | verdict (Holm over the grid) | primaries, RC-MAE vs MAE paired | "
        + " | ".join(f"{name}: RC-MAE / MAE" for name, _ in TABLE_NUMBERS)
        + " |",
        "|---|---|---|---|" + "---|" * len(TABLE_NUMBERS),
    ]
    for cell in rr.cells:
        nums = key_numbers(cell)
        j = cell.judgement or cell.claim.judgement
        prim = "; ".join(f"{_short(x.estimate.name)}: {estimate_cell(x.estimate)} → {x.reading}" for x in j.judged)
        m = momentum_label(cell.momentum)
        used = f"{m} ({cell.resolved:.4g})" if cell.momentum == "auto" else m
        vals = [
            f"{format_mean_std(nums[name][0], fmt)} / {format_mean_std(nums[name][1], fmt)}"
            for name, fmt in TABLE_NUMBERS
        ]
        lines.append(f"| {used} | {cell.epochs} | **{cell.verdict_text()}** | {prim} | " + " | ".join(vals) + " |")
    lines.append("")
    verdicts = {c.verdict for c in rr.cells}
    lines.append(
        "Across the grid: "
        + "; ".join(
            f"{v} in {sum(c.verdict == v for c in rr.cells)} of {len(rr.cells)} cells" for v in sorted(verdicts)
        )
        + "."
    )
    lines.append("")
    if figures:
        lines += ["Figures:", ""]
        lines += [f"- [{cap}]({link})" for cap, link in figures]
        lines.append("")
    return "\n".join(lines)


def _short(name: str) -> str:
    """A primary's name without its threshold details, for the grid's table cells."""
    return name.replace("convex fraction of the slice", "convex fraction").replace(
        "epochs to reach validation pre-training loss", "epochs to the shared loss"
    )


FIGURE_NUMBERS = (
    "final validation MAE loss",
    "basin width (pre-training)",
    "Hessian top eigenvalue (pre-training)",
    "linear-probe accuracy",
)


def regime_figure(rr: RegimeResults):
    """One panel per key number: RC-MAE per momentum (and MAE) on the x axis, one trace per training length, the
    mean with error bars of one sample standard deviation over seeds."""
    fig = make_subplots(rows=1, cols=len(FIGURE_NUMBERS), subplot_titles=FIGURE_NUMBERS, horizontal_spacing=0.07)
    cats = ["MAE"] + [f"RC-MAE m {momentum_label(m)}" for m in rr.momenta]
    for li, epochs in enumerate(rr.lengths):
        cells = [rr.cell(m, epochs) for m in rr.momenta]
        for col, name in enumerate(FIGURE_NUMBERS, 1):
            series = [key_numbers(cells[0])[name][1]] + [key_numbers(c)[name][0] for c in cells]
            stats = [mean_std(v) for v in series]
            fig.add_trace(
                go.Scatter(
                    x=cats,
                    y=[m if np.isfinite(m) else None for m, _, _ in stats],
                    error_y=dict(type="data", array=[s if np.isfinite(s) else 0.0 for _, s, _ in stats]),
                    mode="markers+lines",
                    line=dict(dash="dot", width=1),
                    marker=dict(size=9, color=COLORS[li % len(COLORS)]),
                    name=f"{epochs} epochs",
                    legendgroup=str(epochs),
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    auto = [c.resolved for c in rr.cells if c.momentum == "auto"]
    fig.update_layout(
        title=dict(text="Claim 2 across regimes: RC-MAE (by teacher momentum) vs MAE, per training length"),
        height=480,
    )
    captions(
        fig,
        [
            f"mean ± sample std over {len(rr.seeds)} seeds; pre-training numbers on the MAE reconstruction loss "
            f"(RC-MAE: its MAE term, the student moving); {rr.grid}x{rr.grid} grid over "
            f"[-{rr.spec.span:g}, {rr.spec.span:g}]^2",
            f"auto = 0.996 ** (312 / steps per epoch) = {auto[0]:.4g} here" if auto else "",
        ],
    )
    return fig


def regime_figures(rr: RegimeResults, folder: Path, link_prefix: str) -> tuple[tuple[str, str], ...]:
    name = write_figure(regime_figure(rr), folder, "claim2_regimes")
    return (("Claim 2 across regimes: key numbers per momentum and training length, every seed", link_prefix + name),)


def cell_numbers(cell: Cell) -> dict[str, dict[str, str]]:
    """Plain per-cell numbers for logs and JSON: name -> {"rcmae", "mae"} as 'mean ± std'."""
    return {
        name: {"rcmae": format_mean_std(a, ".4g"), "mae": format_mean_std(b, ".4g")}
        for name, (a, b) in key_numbers(cell).items()
    }


REGIME_TITLE = "Claim 2 across regimes: teacher momentum x training length"


def add_regimes_to_findings(findings: Findings, results: RunResults, out_dir: Path, log: LogFn) -> Findings:
    """`core.studies.reproduce`'s extension: the findings with claim 2 across regimes as a section after the claims."""
    if not results.spec.regimes:
        return findings
    return replace(findings, sections=findings.sections + (regime_section(results.spec, out_dir, log),))


def regime_section(spec: ReproduceSpec, out_dir: Path, log: LogFn) -> tuple[str, str]:
    """Run the grid and return the report's section (title, markdown); its figure goes to `out_dir/figures`.

    `--quick` runs the same grid of momenta at lengths {epochs, 2x} (QUICK_FACTORS): a smoke test of the grid.
    """
    rr = run_regimes(spec, log, factors=QUICK_FACTORS if spec.quick else LENGTH_FACTORS)
    figures = regime_figures(rr, out_dir / "figures", "figures/")
    return REGIME_TITLE, regime_markdown(rr, figures)
