"""The `robustness` command of `python -m core` (parser and handler; `core.app.cli` adds it).

`python -m core robustness CKPT [--corruptions ...] [--severities 1 2 3 4 5] [--samples 512] [--data SPEC]
[--data-seed 0] [--seed K] [--device auto] [--json]`: the classifier's accuracy on the same validation images under
each corruption and severity of `core.measure.corruptions` (`core.measure.input_robustness`, cached by content hash,
resumable). The cost estimate goes to stderr before an uncached run, the table to stdout (with `--json` also one JSON
object), and the cached result's folder is the last line. A checkpoint without a classifier (an MAE or RC-MAE: give
its fine-tuned model or its probe) and an unknown corruption are refused in one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from core.measure import (
    CORRUPTION_NAMES,
    SEVERITIES,
    InputRobustnessSpec,
    compute_input_robustness,
)
from core.store import Store


def cmd_robustness(a: argparse.Namespace) -> str:

    spec = InputRobustnessSpec(
        checkpoint=a.checkpoint,
        corruptions=tuple(a.corruptions),
        severities=tuple(a.severities),
        samples=a.samples,
        data=a.data,
        data_seed=a.data_seed,
        seed=a.seed,
        device=a.device,
    )
    bar = a.progress_factory("input corruptions", unit="cell")
    store = Store()

    def announce(est) -> None:
        print(f"estimate: {est.describe()} (cells = corruption x severity, plus the clean images)", file=sys.stderr)

    res = compute_input_robustness(spec, store=store, progress=bar, announce=announce)
    print(res.format_table())
    if a.json:
        print(json.dumps(res.to_dict(), default=str))
    return str(res.meta["entry"])


def add_commands(sub, progress_factory: Callable) -> None:
    """Add `robustness` to `python -m core`'s subparsers.

    Args:
        sub: the subparsers action of the main parser.
        progress_factory: progress_factory(desc, unit=...) -> progress(done, total).
    """
    r = sub.add_parser(
        "robustness",
        help="accuracy of a classifier under input corruptions (noise, blur, shifts, rotation, contrast, occlusion)",
    )
    r.add_argument("checkpoint", help="a classifier: supervised ViT, fine-tuned model or linear probe")
    r.add_argument(
        "--corruptions",
        nargs="+",
        default=list(CORRUPTION_NAMES),
        metavar="NAME",
        help=f"which corruptions (default all: {' '.join(CORRUPTION_NAMES)})",
    )
    r.add_argument(
        "--severities", nargs="+", type=int, default=list(SEVERITIES), metavar="S", help="1 to 5 (default 1 2 3 4 5)"
    )
    r.add_argument("--samples", type=int, default=512, help="validation images (default 512; all when fewer)")
    r.add_argument("--data", default=None, help="data spec (default: the checkpoint's own)")
    r.add_argument("--data-seed", type=int, default=0, help="which validation images (default 0)")
    r.add_argument("--seed", type=int, default=0, help="the corruptions' random draws (default 0)")
    r.add_argument("--device", default="auto", help="auto, cpu or cuda")
    r.add_argument("--json", action="store_true", help="also print the result as one JSON object")
    r.set_defaults(func=cmd_robustness, progress_factory=progress_factory)
