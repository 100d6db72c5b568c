"""The `roi` command of `python -m core` (parser and handler; `core.app.cli` adds it with one line).

    python -m core roi [--pretrain-epochs 30 100 300] [--budgets 5 10 50] [--control-budgets 10] [--seeds 8]
                       [--workers 0] [--no-flatness] [--quick] [--out FILE.md] [--json]

The pre-training ladder (`core.studies.roi`): at each rung the gain of MAE-FT / RC-MAE-FT over scratch, "scratch,
equal steps", RC-MAE vs MAE, claim 1's basin width and the measured cost, as a markdown section (printed, and
written with its figure; default `<cache>/roi/ROI.md`). The ladder's JSON goes next to it; the markdown's path is
the last line of stdout. Every run is cached: a rerun, or a run with more seeds or rungs, reuses what exists.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from core.app.generalization_cli import parse_budget
from core.errors import LandscapeError
from core.paths import cache_root
from core.store import atomic_write_bytes
from core.studies import (
    RoiSpec,
    quick_roi,
    resolve_workers,
    roi_figures,
    roi_markdown,
    roi_path,
    roi_to_dict,
    run_roi,
    write_roi_json,
)


def cmd_roi(a: argparse.Namespace) -> str:

    spec = quick_roi(seeds=a.seeds or 2) if a.quick else RoiSpec(seeds=a.seeds or RoiSpec.seeds)
    changes: dict = {"device": a.device, "workers": resolve_workers(a.workers), "flatness": not a.no_flatness}
    for name in ("pretrain_epochs", "budgets", "control_budgets"):
        v = getattr(a, name)
        if v:
            changes[name] = tuple(v)
    if a.budgets and not a.control_budgets:  # the default control budget only when it is among the budgets
        changes["control_budgets"] = tuple(b for b in spec.control_budgets if b in a.budgets)
    spec = replace(spec, **changes)
    out = Path(a.out) if a.out else cache_root() / "roi" / ("ROI_quick.md" if a.quick else "ROI.md")
    if out.suffix != ".md":
        raise LandscapeError(f"--out must be a .md file, got {out.name}")
    t0 = time.perf_counter()

    def log(m: str) -> None:
        print(f"[roi {time.perf_counter() - t0:7.1f} s] {m}", file=sys.stderr, flush=True)

    bar = a.progress_factory("pre-training ladder", unit="job") if spec.workers == 1 else None
    result = run_roi(spec, log=log, progress=bar)
    took = time.perf_counter() - t0
    text = roi_markdown(result, roi_figures(result, out.parent / "figures", "figures/"))
    text += f"\nThis run took {took / 60:.1f} min ({spec.workers} worker(s)); cached parts are reused.\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, text.encode())
    write_roi_json(result, roi_path(spec))
    print(text)
    if a.json:
        print(json.dumps(roi_to_dict(result), default=str))
    log(f"done in {took / 60:.1f} min; JSON {roi_path(spec)}")
    return str(out)


def add_command(sub, progress_factory: Callable) -> None:
    """Add `roi` to `python -m core`'s subparsers (progress_factory: the CLI's tqdm bars)."""
    r = sub.add_parser(
        "roi",
        help="how much pre-training pays: gain over scratch, flatness and cost along pre-training lengths",
    )
    r.add_argument(
        "--pretrain-epochs",
        type=int,
        nargs="+",
        default=None,
        metavar="E",
        help="the ladder's rungs, increasing (default 30 100 300; 2 4 with --quick)",
    )
    r.add_argument(
        "--budgets",
        type=parse_budget,
        nargs="+",
        default=None,
        metavar="N",
        help="labels per class, 'all' for every image (default 5 10 50; 4 with --quick)",
    )
    r.add_argument(
        "--control-budgets",
        type=parse_budget,
        nargs="+",
        default=None,
        metavar="N",
        help="budgets of 'scratch, equal steps' (default 10), among --budgets",
    )
    r.add_argument("--seeds", type=int, default=None, help=f"seeds 0..N-1 (default {RoiSpec.seeds}; 2 with --quick)")
    r.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes, one (rung, seed) each (default 0: one per core; 1 shows a progress bar); the "
        "numbers do not depend on it",
    )
    r.add_argument("--no-flatness", action="store_true", help="skip claim 1's basin width per rung")
    r.add_argument("--quick", action="store_true", help="the micro version (seconds): micro models, synthetic data")
    r.add_argument("--device", default="auto", help="auto, cpu or cuda")
    r.add_argument("--out", default=None, help="the markdown section (default <cache>/roi/ROI.md)")
    r.add_argument("--json", action="store_true", help="also print the ladder's numbers as JSON")
    r.set_defaults(func=cmd_roi, progress_factory=progress_factory)
