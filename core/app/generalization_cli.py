"""The `finetune` and `generalization` commands of `python -m core` (parsers and handlers; `core.app.cli` adds them).

- `python -m core finetune CKPT [--from-scratch] [--labels-per-class N|all] [--epochs E] [--seed K]
  [--use teacher|student] [--data SPEC] [--device auto] [--json]`: fine-tune a checkpoint's encoder (or train its
  architecture from scratch) on a labeled subset; progress on stderr, with `--json` one JSON object of the final
  numbers, then the checkpoint's path as the last line of stdout.
- `python -m core generalization [--quick] [--seeds 3] [--budgets 5 10 20 50 all] [--json]`: the label-efficiency
  study (`core.studies.generalization`) as a readable table (and its JSON with `--json`); the study's JSON file is
  written and its path is the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from core.models import FinetuneConfig, finetune, finetune_summary
from core.studies import StudySpec, quick_study, resolve_workers, run_study, study_path, write_json


def parse_budget(text: str) -> int | None:
    """'all' -> None, a positive whole number -> itself (argparse type)."""
    if text.strip().lower() == "all":
        return None
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of labels per class or 'all', got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"labels per class must be at least 1, got {v}")
    return v


def cmd_finetune(a: argparse.Namespace) -> str:

    changes = {k: v for k, v in (("epochs", a.epochs), ("steps_per_epoch", a.steps_per_epoch)) if v is not None}
    cfg = FinetuneConfig(
        labels_per_class=a.labels_per_class,
        seed=a.seed,
        from_scratch=a.from_scratch,
        use=a.use,
        data=a.data,
        **changes,
    )
    what = "train from scratch" if cfg.from_scratch else "fine-tune"
    bar = a.progress_factory(what, unit="step")

    def progress(p) -> None:
        if p.message:
            print(f"{what}: {p.message}", file=sys.stderr, flush=True)
        bar(p.done, p.total)

    path = finetune(
        a.checkpoint, cfg, progress=progress, device=a.device, force=a.force, path=Path(a.out) if a.out else None
    )
    s = finetune_summary(path)
    print(
        f"{what}: {s['n_labels']} labeled images, {s['steps']} steps: validation accuracy {s['val_acc']:.4f}, "
        f"training accuracy {s['train_acc']:.4f} (gap {s['gap_acc']:+.4f})",
        file=sys.stderr,
    )
    if a.json:
        print(json.dumps(s))
    return str(path)


def cmd_generalization(a: argparse.Namespace) -> str:

    spec = quick_study(seeds=a.seeds or 2) if a.quick else StudySpec(seeds=a.seeds or 3)
    changes: dict = {"device": a.device, "flatness": not a.no_flatness, "workers": resolve_workers(a.workers)}
    if a.budgets:
        changes["budgets"] = tuple(a.budgets)
    if a.data:
        changes["data"] = a.data
    if a.epochs is not None:
        changes["finetune"] = replace(spec.finetune, epochs=a.epochs)
    spec = replace(spec, **changes)
    bar = a.progress_factory("generalization study", unit="run")
    result = run_study(spec, progress=bar)
    print(result.format_table())
    if a.json:
        print(json.dumps(result.to_dict(), default=str))
    return str(write_json(result, Path(a.out) if a.out else study_path(spec)))


def add_commands(sub, progress_factory: Callable) -> None:
    """Add `finetune` and `generalization` to `python -m core`'s subparsers.

    Args:
        sub: the subparsers action of the main parser.
        progress_factory: progress_factory(desc, unit=...) -> progress(done, total) (the CLI's tqdm bars).
    """
    ft = sub.add_parser(
        "finetune",
        help="fine-tune a checkpoint's encoder end to end on a labeled subset (or its architecture from scratch)",
    )
    ft.add_argument("checkpoint", help="MAE, RC-MAE or supervised ViT checkpoint (ours, official MAE / RC-MAE, timm)")
    ft.add_argument(
        "--from-scratch",
        action="store_true",
        help="take only the architecture and data from CKPT: random weights, the same subset, steps and recipe",
    )
    ft.add_argument(
        "--labels-per-class",
        type=parse_budget,
        default=None,
        metavar="N",
        help="class-balanced labeled budget, nested across budgets for one seed (default all)",
    )
    ft.add_argument("--epochs", type=int, default=None, help="epochs of 10 steps each (default 20)")
    ft.add_argument("--steps-per-epoch", type=int, default=None, help="optimizer steps per epoch (default 10)")
    ft.add_argument("--seed", type=int, default=0, help="labeled subset, head init, batch order (default 0)")
    ft.add_argument("--use", choices=("teacher", "student"), default="teacher", help="RC-MAE: which encoder")
    ft.add_argument("--data", default=None, help="data spec (default: the checkpoint's own)")
    ft.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    ft.add_argument("--force", action="store_true", help="train again even if cached")
    ft.add_argument("--out", default=None, help="checkpoint path (default: under the cache, named by content hash)")
    ft.add_argument("--json", action="store_true", help="the final numbers as one JSON object before the path")
    ft.set_defaults(func=cmd_finetune, progress_factory=progress_factory)

    g = sub.add_parser(
        "generalization",
        help="label-efficiency study: MAE-FT, RC-MAE-FT and scratch over budgets and seeds, flatness vs gap",
    )
    g.add_argument("--quick", action="store_true", help="a small version (micro models, synthetic data)")
    g.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; 2 with --quick)")
    g.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes, one seed each (default 0: one per core; 1 shows the progress bar); the numbers do "
        "not depend on it",
    )
    g.add_argument(
        "--budgets",
        type=parse_budget,
        nargs="+",
        default=None,
        metavar="N",
        help="labels per class, 'all' for every image (default 5 10 20 50 all; 4 all with --quick)",
    )
    g.add_argument("--data", default=None, help="data spec (default digits; synthetic with --quick)")
    g.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs of 10 steps (default 20)")
    g.add_argument("--no-flatness", action="store_true", help="skip the Hessian / sharpness numbers")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda")
    g.add_argument("--out", default=None, help="the study's JSON file (default: under the cache)")
    g.add_argument("--json", action="store_true", help="also print the study as JSON on stdout")
    g.set_defaults(func=cmd_generalization, progress_factory=progress_factory)
