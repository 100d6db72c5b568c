"""`python -m core reproduce`: re-test the paper's findings with the project's own models and write the evidence
to a generated report (docs/FINDINGS.md).

What is measured, for every seed (the model seed; directions, masks and images are the same for every model):
- MAE, RC-MAE and the supervised ViT are trained (cached by config), and a linear probe (same protocol for all
  three: frozen cls feature, BatchNorm, linear layer) is trained on each encoder.
- 2-D filter-normalized random slices of: each model's own training objective (RC-MAE: its MAE term, so that MAE
  and RC-MAE are compared on one and the same function; the full objective with the consistency term is shown
  too), and the linear-probe loss of each model with the encoder and the probe head moving.
- The Hessian's top eigenvalue (Lanczos) and trace (Hutchinson) of the same objectives.
- Convergence from the checkpoints' training histories.

Scales: MAE's pixel MSE and cross-entropy live on different scales, so models compared on different functions
(MAE vs Sup-ViT on their own objectives) are compared by relative numbers: the basin / flat-area threshold is a
fraction of each surface's centre loss, and increases, curvatures and Hessian numbers are divided by the centre loss.
Models compared on one and the same function (RC-MAE vs MAE, every probe loss) are compared directly, with one
absolute threshold for both (the same fraction of their mean centre loss); dividing by each model's own centre loss
there would reward a worse fit.

The verdict logic, the statistics and the report's markdown are pure functions of plain numbers in
`core.report.findings`. This module holds the command (`quick_spec`, the command line, the orchestration):
`core.studies.measuring` holds the run's `ReproduceSpec` and trains and measures, `core.studies.claims` fills the
claims, `core.studies.figures` draws the figures.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from core.errors import LandscapeError
from core.models import ProbeConfig
from core.paths import PROJECT_ROOT
from core.report import Findings, render_markdown
from core.store import atomic_write_bytes
from core.studies.claims import build_findings
from core.studies.figures import make_figures
from core.studies.measuring import LogFn, ReproduceSpec, RunResults, run_measurements

# An extension of the report (see `reproduce`): (findings, results, report folder, log) -> findings
Extension = Callable[["Findings", "RunResults", Path, LogFn], "Findings"]


def quick_spec(seeds: int = 2, **overrides) -> ReproduceSpec:
    """A small version for CI (< 1 min): micro models on synthetic data, 3 epochs, 5x5 grids, 32 images."""
    base = ReproduceSpec(
        seeds=seeds,
        data="synthetic",
        preset="micro",
        epochs=3,
        batch_size=32,
        warmup_epochs=1,
        n_snapshots=3,
        probe=ProbeConfig(epochs=10, batch_size=64),
        grid=5,
        samples=32,
        hessian_iter=8,
        trace_probes=4,
        convexity_grid=3,
        convexity_iter=6,
        quick=True,
    )
    return replace(base, **overrides)


def stderr_log(msg: str) -> None:
    """Print one progress line to stderr (the default log of `reproduce`)."""
    print(msg, file=sys.stderr, flush=True)


class _Clock:
    """A log function that prefixes the seconds since the run started."""

    def __init__(self, log: LogFn):
        self.t0 = time.perf_counter()
        self.log = log

    def __call__(self, msg: str) -> None:
        self.log(f"[reproduce {time.perf_counter() - self.t0:7.1f} s] {msg}")


# --------------------------------------------------------------------------------------------------------------------


def default_out() -> Path:
    """docs/FINDINGS.md of the repository."""
    return PROJECT_ROOT / "docs" / "FINDINGS.md"


def command_line(spec: ReproduceSpec) -> str:
    parts = ["python -m core reproduce"]
    if spec.quick:
        parts.append("--quick")
    parts.append(f"--seeds {spec.seeds}")
    base = quick_spec() if spec.quick else ReproduceSpec()
    for name in ("grid", "span", "samples"):
        if getattr(spec, name) != getattr(base, name):
            parts.append(f"--{name} {getattr(spec, name)}")
    if not spec.regimes:
        parts.append("--no-regimes")
    elif spec.cell_grid != replace(spec, regime_grid=base.regime_grid).cell_grid:
        parts.append(f"--regime-grid {spec.cell_grid}")
    return " ".join(parts)


def reproduce(
    spec: ReproduceSpec,
    out: str | Path | None = None,
    *,
    log: LogFn = stderr_log,
    extend: Sequence[Extension] = (),
) -> Path:
    """Train, measure, judge and write the report (figures go to `figures/` next to it).

    Args:
        spec: what to run.
        out: the report's path (default `default_out()`); must end in .md.
        log: receives progress lines (default: stderr).
        extend: add claims or sections measured elsewhere on the same models, in order. They live in modules
            above this one (no import circle), so the CLI passes them: `core.studies.add_regimes_to_findings` (claim 2
            across regimes, when `spec.regimes`) and `core.studies.add_premise_to_findings` (the premise claim and
            its flatness follow-up). See `core.app.cli.cmd_reproduce`.

    Returns:
        The report's path.
    """
    out = Path(out) if out is not None else default_out()
    if out.suffix != ".md":
        raise LandscapeError(f"--out must be a .md file, got {out.name}")
    clock = _Clock(log)
    results = run_measurements(spec, clock)
    clock("figures")
    figures = make_figures(results, out.parent / "figures", "figures/")
    findings = build_findings(results, figures, command_line(spec))
    for add in extend:
        findings = add(findings, results, out.parent, clock)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, render_markdown(findings).encode())
    for c in findings.claims:
        clock(f"verdict: {c.title}: {c.verdict}")
    clock(f"wrote {out}")
    return out
