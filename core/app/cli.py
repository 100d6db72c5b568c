"""`python -m core`: the engine from the command line.

Every command prints progress to stderr and its result's path as the last line of stdout, so scripts can chain
them. User mistakes give one line on stderr (`error: ...`) and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from core.app.briefing_html import write_briefing
from core.app.generalization_cli import add_commands
from core.app.profiles import overview_defaults
from core.app.robustness_cli import add_commands as add_robustness
from core.app.roi_cli import add_command as add_roi_command
from core.errors import LandscapeError, human_bytes, write_error
from core.geometry import IGNORES, NORMS, SCOPES
from core.measure import (
    ConvexitySpec,
    FlatnessSpec,
    SurfaceSpec,
    compute_convexity,
    compute_flatness,
    compute_surface,
    describe_map,
    export_convexity,
    export_entry,
    export_landscape,
    export_surface,
    format_report,
    prepare_checkpoint,
)
from core.models import (
    LOSS_KINDS,
    MODEL_KINDS,
    PRESETS,
    ProbeConfig,
    TrainConfig,
    checkpoint_overrides,
    load_checkpoint,
    train_model,
    train_probe,
)
from core.store import Store, apply_cache_cap, cache_size, list_items, parse_age, parse_size, prune
from core.studies import (
    ReproduceSpec,
    add_premise_to_findings,
    add_regimes_to_findings,
    add_roi_to_findings,
    quick_spec,
    reproduce,
    resolve_workers,
)

EPILOG = """examples:
  python -m core train --model mae --epochs 30          # pre-train the tiny MAE on the embedded digits
  python -m core probe cache/checkpoints/mae_*.pt       # linear probe on its encoder
  python -m core info CKPT                              # what a checkpoint is
  python -m core landscape CKPT --grid 21 --span 0.5    # 2-D filter-normalized slice of its own loss
  torchrun --nproc_per_node=2 -m core landscape CKPT    # the same, split over 2 processes
  python -m core convexity CKPT --grid 9 --span 0.5     # |lambda_min/lambda_max| of the Hessian on that slice
  python -m core cache list                             # what the cache holds
  python -m core briefing --lang ja --out brief.html    # the Overview's briefing as one HTML file
"""


def _tqdm_progress(desc: str, unit: str = "pt"):
    """A progress(done, total) callback: a tqdm bar on a terminal, a line per 10% otherwise (logs, CI)."""
    state: dict = {"bar": None, "last": -1}

    def progress(done: int, total: int) -> None:
        if not sys.stderr.isatty():
            tenth = done * 10 // max(1, total)
            if tenth != state["last"]:
                state["last"] = tenth
                print(f"{desc}: {done}/{total} {unit}", file=sys.stderr, flush=True)
            return
        if state["bar"] is None:
            state["bar"] = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)
        bar = state["bar"]
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return progress


# --------------------------------------------------------------------------------------------------------------------


def _ema_momentum(text: str) -> float | str:
    """--ema-momentum: 'auto' or a number (range checked by TrainConfig)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {text!r}") from None


def cmd_train(a: argparse.Namespace) -> str:

    cfg = TrainConfig(
        kind=a.model,
        data=a.data,
        preset=a.preset,
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        mask_ratio=a.mask_ratio,
        ema_momentum=a.ema_momentum,
        ema_schedule=a.ema_schedule,
        gamma=a.gamma,
        norm_pix_loss=a.norm_pix_loss,
        seed=a.seed,
        max_train=a.max_train,
    )
    bar = _tqdm_progress(f"train {a.model}", unit="step")

    def progress(p) -> None:
        if p.message:  # "resumed after epoch N"
            print(f"train {a.model}: {p.message}", file=sys.stderr, flush=True)
        bar(p.done, p.total)

    path = train_model(
        cfg,
        progress=progress,
        device=a.device,
        force=a.force,
        path=Path(a.out) if a.out else None,
    )
    return str(path)


def cmd_probe(a: argparse.Namespace) -> str:

    cfg = ProbeConfig(epochs=a.epochs, pool=a.pool, use=a.use, seed=a.seed, lr=a.lr)
    bar = _tqdm_progress("probe", unit="step")
    path = train_probe(
        a.checkpoint,
        cfg,
        data=a.data,
        progress=lambda p: bar(p.done, p.total),
        device=a.device,
        force=a.force,
        path=Path(a.out) if a.out else None,
    )

    hist = load_checkpoint(path).meta.get("history") or []
    if hist:
        print(f"probe validation accuracy {hist[-1]['val_acc']:.4f}", file=sys.stderr)
    return str(path)


def cmd_info(a: argparse.Namespace) -> str:

    ck = load_checkpoint(a.checkpoint)
    if a.json:  # JSON only on stdout (jq reads it): the path is inside it
        out = {
            "kind": ck.kind,
            "source": ck.source,
            "sha256": ck.sha256,
            "path": str(ck.path),
            "reference": ck.reference,
            "config": ck.config.to_dict() | {"layer_norm_eps": ck.config.layer_norm_eps},
            "sources": ck.sources,
            "normalization": ck.normalization or {"source": "dataset statistics"},
            "parameters": sum(p.numel() for p in ck.model.parameters()),
            **{k: v for k, v in ck.meta.items()},
        }
        print(json.dumps(out, default=str, indent=1))
        return None
    print(ck.describe())
    return str(ck.path)


def _confirm_big_job(a: argparse.Namespace, quiet: bool = False):
    """The CLI's guard: print the estimate; a job over --max-minutes, half the free memory or the free disk of the
    cache needs --yes."""

    def confirm(est) -> bool:
        if not quiet:
            print(f"estimate: {est.describe()}", file=sys.stderr)
        big = est.seconds > a.max_minutes * 60 or (est.available is not None and est.bytes > est.available / 2)
        if getattr(est, "disk_short", False) and not a.yes:
            if not quiet:
                print("this job will not fit on the cache's disk: free space, or pass --yes", file=sys.stderr)
            return False
        if big and not a.yes:
            if not quiet:
                print(
                    f"this is a big job (over {a.max_minutes:g} min or half the free memory): pass --yes to run it",
                    file=sys.stderr,
                )
            return False
        return True

    return confirm


def _add_objective_args(p: argparse.ArgumentParser, samples: int) -> None:
    """The options that fix the loss being measured: images, data, masks, RC-MAE terms."""
    p.add_argument("--samples", type=int, default=samples, help=f"evaluation images (default {samples})")
    p.add_argument("--data-seed", type=int, default=0, help="which evaluation images (default 0)")
    p.add_argument("--mask-seed", type=int, default=0, help="MAE masking noise seed (default 0)")
    p.add_argument("--data", default=None, help="data spec (default: the checkpoint's own)")
    p.add_argument(
        "--rcmae-terms",
        choices=("full", "mae"),
        default="full",
        help="RC-MAE loss: full (MAE + consistency to the fixed teacher) or the MAE term alone",
    )


def _add_big_job_guard(parser: argparse.ArgumentParser, what: str) -> None:
    """--yes / --max-minutes, read by `_confirm_big_job`."""
    parser.add_argument("--yes", action="store_true", help="run even if the estimate exceeds --max-minutes")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=30.0,
        help=f"{what} estimated to take longer (or to need over half the free memory) need --yes",
    )


def _add_direction_args(p: argparse.ArgumentParser) -> None:
    """The options that fix the slice's directions (landscape and convexity share them)."""
    p.add_argument(
        "--directions",
        choices=("random", "pca", "hessian", "interpolate", "plane"),
        default="random",
        help="random (seeded, filter-normalized), pca (training trajectory; our checkpoints), hessian (top Hessian "
        "eigenvectors, scaled to the weights' norm), interpolate (1-D line to --other CKPT at coordinate 1) or "
        "plane (2-D, through two --other checkpoints at (1, 0) and (0, 1))",
    )
    p.add_argument(
        "--other",
        nargs="+",
        default=[],
        metavar="CKPT",
        help="checkpoints of the same architecture for --directions interpolate / plane",
    )
    p.add_argument("--norm", choices=NORMS, default="filter", help="direction normalization (default filter)")
    p.add_argument("--ignore", choices=IGNORES, default="biasbn", help="biasbn: biases/norms do not move")
    p.add_argument("--scope", choices=SCOPES, default="all", help="which parameters move (default all)")
    p.add_argument("--include", nargs="*", help="only parameters whose names match (substring or glob)")
    p.add_argument("--exclude", nargs="*", help="parameters that do not move, e.g. pos_embed cls_token")
    p.add_argument("--seed", type=int, default=0, help="direction seed (default 0)")
    p.add_argument("--orthogonal", action="store_true", help="make the second axis orthogonal to the first")


def surface_spec_from_args(a: argparse.Namespace):

    ckpt = prepare_checkpoint(a.checkpoint, a.loss, progress=None)
    return SurfaceSpec(
        checkpoint=ckpt,
        loss=a.loss,
        dim=a.dim,
        grid=a.grid,
        span=a.span,
        directions=a.directions,
        norm=a.norm,
        ignore=a.ignore,
        scope=a.scope,
        include=tuple(a.include or ()),
        exclude=tuple(a.exclude or ()),
        seed=a.seed,
        orthogonal=a.orthogonal,
        samples=a.samples,
        data_seed=a.data_seed,
        mask_seed=a.mask_seed,
        data=a.data,
        rcmae_terms=a.rcmae_terms,
        dtype=a.dtype,
        device=a.device,
        batch_points=a.batch_points,
        others=tuple(a.other),
    )


def cmd_landscape(a: argparse.Namespace) -> str:

    if a.out and Path(a.out).suffix not in (".npz", ".csv", ".h5", ".vtp"):  # before the work, not after it
        raise LandscapeError(f"--out must end in .npz, .csv, .h5 or .vtp, got {Path(a.out).name}")
    if a.out and Path(a.out).suffix == ".vtp" and a.dim != 2:
        raise LandscapeError("--out FILE.vtp needs a 2-D surface (--dim 2)")
    spec = surface_spec_from_args(a)
    rank0 = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports

    progress = _tqdm_progress(f"landscape {spec.dim}-D {spec.grid}") if rank0 else None
    s = compute_surface(spec, progress=progress, confirm=_confirm_big_job(a, quiet=not rank0))
    if not rank0:
        return None
    m = s.meta
    # A finished result served from the cache keeps the meta of the run that computed it: every point is reused now.
    reused = m["n_points"] if m.get("cached") else m.get("n_reused", 0)
    print(
        f"{m.get('model_kind')} / {m.get('loss_kind')} loss: {m['n_points']} points, {reused} from the "
        f"cache, {m.get('n_nan', 0)} not finite, {m.get('seconds', 0.0):.1f} s"
        + (" (cached result)" if m.get("cached") else ""),
        file=sys.stderr,
    )
    if a.json:
        print(json.dumps({"metrics": s.metrics, "meta": {k: v for k, v in m.items() if k != "nan_ids"}}, default=str))
    else:
        for k, v in s.metrics.items():
            if isinstance(v, float):
                print(f"  {k:24s} {v:.6g}", file=sys.stderr)
    if a.out and Path(a.out).suffix in (".h5", ".vtp"):  # the reference tool's surface file / ParaView
        return str(export_landscape(s.xs, s.ys, s.loss, s.acc, s.meta, a.out))
    if a.out:
        return str(export_surface(s, a.out))
    return str(Path(s.path) / "results.npz")


def cmd_convexity(a: argparse.Namespace) -> str:

    if a.out and Path(a.out).suffix != ".npz":  # before the work, not after it
        raise LandscapeError(f"--out must end in .npz, got {Path(a.out).name}")
    spec = ConvexitySpec(surface_spec_from_args(a), max_iter=a.max_iter, tol=a.tol, lanczos_seed=a.lanczos_seed)
    spec.validate()
    rank0 = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports
    progress = _tqdm_progress(f"convexity {spec.surface.grid}x{spec.surface.grid}") if rank0 else None
    m = compute_convexity(spec, progress=progress, confirm=_confirm_big_job(a, quiet=not rank0))
    if not rank0:
        return None
    print(describe_map(m), file=sys.stderr)
    if a.json:
        meta = {k: v for k, v in m.meta.items() if k != "nan_ids"}
        print(json.dumps({"convex_area": m.convex_area(), "meta": meta}, default=str))
    if a.out:
        return str(export_convexity(m, a.out))
    return str(Path(m.path) / "results.npz")


def cmd_flatness(a: argparse.Namespace) -> str:

    spec = FlatnessSpec(
        checkpoint=prepare_checkpoint(a.checkpoint, a.loss),
        loss=a.loss,
        samples=a.samples,
        data_seed=a.data_seed,
        mask_seed=a.mask_seed,
        data=a.data,
        rcmae_terms=a.rcmae_terms,
        seed=a.seed,
        scope=a.scope,
        top_k=a.top_k,
        max_iter=a.max_iter,
        sharpness_samples=a.sharpness_samples,
        robustness_draws=a.draws,
        trace=a.trace,
        trace_probes=a.probes,
        density=a.density,
        per_block=a.per_block,
        sharpness_rho=None if a.no_sharpness else a.sharpness,
        robustness=a.robustness,
        sigmas=tuple(a.sigmas),
        device=a.device,
    )
    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = _tqdm_progress(stage, unit="step")
        bars[stage](done, total)

    report = compute_flatness(spec, progress=progress, confirm=_confirm_big_job(a))
    if a.json:
        print(json.dumps(report.to_dict(), default=str))
    else:
        print(format_report(report))
    return None


def cmd_cache(a: argparse.Namespace) -> str:

    store = Store()
    if a.action == "prune":
        return _cache_prune(a, store)
    if a.action == "list":
        if a.all:
            return _cache_list_all(a, store)
        rows = store.list(a.kind)
        for r in rows:
            done = f"{r.n_steps_logged} steps" if r.n_steps_logged else f"{r.n_points_logged} points"
            state = "done" if r.finished else f"partial ({done})"
            used = _when(r.path.stat().st_mtime if r.path.exists() else r.created)
            line = f"{r.kind:10s} {r.key_hash[:20]}  {r.size_bytes / 1024:8.1f} KiB  used {used}  {state}"
            print(line, file=sys.stderr)
        return str(store.root)
    if not a.hash:
        raise LandscapeError(f"cache {a.action} needs an entry hash (see `python -m core cache list`)")
    kind = a.kind or "landscape"
    if a.action == "delete":
        store.delete(kind, a.hash)
        return a.hash
    if not a.file or Path(a.file).suffix not in (".npz", ".csv", ".h5", ".vtp"):
        raise LandscapeError("cache export needs a file name ending in .npz, .csv, .h5 or .vtp")
    entry = store.get(kind, a.hash)
    if Path(a.file).suffix in (".h5", ".vtp"):  # landscapes: the reference tool's surface file / ParaView
        res = entry.result()
        if res is None:
            raise LandscapeError(f"no finished {kind} result for {a.hash}")
        return str(export_entry(res.arrays, res.meta, a.file))
    return str(entry.export_csv(a.file) if a.file.endswith(".csv") else entry.export_npz(a.file))


def _when(ts: float) -> str:
    """A timestamp as local `YYYY-MM-DD HH:MM` ("-" for none)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _cache_list_all(a: argparse.Namespace, store) -> str:
    """Every item (store entries, checkpoints and the other folders), least recently used first, and the total."""
    for i in list_items(store.root, overview_defaults()):
        if a.kind and i.kind != a.kind:
            continue
        flags = ",".join(f for f, on in (("in use", i.in_use), ("default", i.default)) if on)
        state = ("done" if i.finished else "partial") + (f" [{flags}]" if flags else "")
        print(
            f"{i.kind:11s} {i.name[:40]:40s} {human_bytes(i.size_bytes):>10s}  used {_when(i.last_used)}  {state}"
            + (f"  {i.label}" if i.label else ""),
            file=sys.stderr,
        )
    print(f"total {human_bytes(cache_size(store.root))} in {store.root}", file=sys.stderr)
    return str(store.root)


def _cache_prune(a: argparse.Namespace, store) -> str:

    res = prune(
        store.root,
        max_size=parse_size(a.max_size) if a.max_size else None,
        older_than=parse_age(a.older_than) if a.older_than else None,
        dry_run=a.dry_run,
        include_defaults=a.include_defaults,
        overview=overview_defaults(),
    )
    verb = "would remove" if a.dry_run else "removed"
    for i in res.removed:
        note = f"  (failed: {res.failed[i.name]})" if i.name in res.failed else ""
        line = f"{verb} {i.kind} {i.name}  {human_bytes(i.size_bytes)}  used {_when(i.last_used)}{note}"
        print(line, file=sys.stderr)
    print(res.describe(), file=sys.stderr)
    return str(store.root)


def cmd_reproduce(a: argparse.Namespace) -> str:

    spec = quick_spec(seeds=a.seeds or 2) if a.quick else ReproduceSpec(seeds=a.seeds or ReproduceSpec.seeds)
    opts = (("grid", a.grid), ("span", a.span), ("samples", a.samples))
    opts += (("convexity_grid", a.convexity_grid), ("regime_grid", a.regime_grid), ("regime_seeds", a.regime_seeds))
    changes = {k: v for k, v in opts if v is not None}
    workers = resolve_workers(a.workers)
    spec = replace(spec, device=a.device, note=a.note or "", regimes=not a.no_regimes, workers=workers, **changes)
    # claim 2 across regimes (a section; skipped by --no-regimes), then the premise claim and its follow-up
    extend = (add_regimes_to_findings, add_premise_to_findings, add_roi_to_findings)  # the ladder: from the cache
    return str(reproduce(spec, a.out, extend=extend))


def cmd_briefing(a: argparse.Namespace) -> str:

    return str(write_briefing(a.lang, a.out, log=lambda m: print(m, file=sys.stderr, flush=True)))


# --------------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:

    p = argparse.ArgumentParser(
        prog="python -m core",
        description="Loss landscapes and flatness of MAE, RC-MAE and supervised ViTs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model (cached by its config); prints the checkpoint path")
    t.add_argument("--model", choices=MODEL_KINDS, required=True, help="mae, rcmae (EMA teacher) or sup (supervised)")
    t.add_argument("--data", default="digits", help="digits (default), synthetic, folder:<path>, cifar10:<path>")
    t.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="architecture (default tiny)")
    t.add_argument("--epochs", type=int, default=30, help="default 30")
    t.add_argument("--batch-size", type=int, default=128, help="default 128")
    t.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (default 2e-3)")
    t.add_argument("--mask-ratio", type=float, default=0.75, help="MAE / RC-MAE masking ratio (default 0.75)")
    t.add_argument(
        "--ema-momentum",
        type=_ema_momentum,
        default="auto",
        metavar="auto|FLOAT",
        help="RC-MAE teacher momentum (default auto: 0.996 ** (312 / steps per epoch), the paper's horizon in epochs)",
    )
    t.add_argument(
        "--ema-schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="constant (default) or cosine from the momentum to 1 over the whole run",
    )
    t.add_argument("--gamma", type=float, default=1.0, help="RC-MAE consistency weight (default 1.0)")
    t.add_argument("--norm-pix-loss", action="store_true", help="per-patch normalized reconstruction targets")
    t.add_argument("--max-train", type=int, default=None, help="use at most this many training images")
    t.add_argument("--seed", type=int, default=0, help="weights, batch order and masks (default 0)")
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    t.add_argument("--force", action="store_true", help="retrain even if this config is cached")
    t.add_argument("--out", default=None, help="checkpoint path (default: under the cache, named by config hash)")
    t.set_defaults(func=cmd_train)

    pr = sub.add_parser("probe", help="train a linear probe on a checkpoint's frozen encoder")
    pr.add_argument("checkpoint")
    pr.add_argument("--epochs", type=int, default=50, help="default 50 (features are precomputed: fast)")
    pr.add_argument("--lr", type=float, default=1e-2, help="default 1e-2")
    pr.add_argument("--pool", choices=("cls", "mean"), default="cls", help="feature: cls token or mean of patches")
    pr.add_argument("--use", choices=("teacher", "student"), default="teacher", help="RC-MAE: which encoder")
    pr.add_argument("--data", default=None, help="data spec (default: the encoder's own training data)")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--device", default="auto")
    pr.add_argument("--force", action="store_true", help="retrain even if cached")
    pr.add_argument("--out", default=None, help="probe checkpoint path (default: next to the encoder's)")
    pr.set_defaults(func=cmd_probe)

    i = sub.add_parser("info", help="describe any supported checkpoint, and where each architecture value came from")
    i.add_argument("checkpoint", help="a file, a transformers / timm model folder, hf:ORG/NAME or timm:NAME")
    i.add_argument("--json", action="store_true", help="machine-readable output: JSON only on stdout (path inside)")
    i.set_defaults(func=cmd_info)

    ls = sub.add_parser("landscape", help="a 1-D or 2-D loss landscape (cached, resumable, torchrun-aware)")
    ls.add_argument("checkpoint")
    ls.add_argument(
        "--loss",
        choices=LOSS_KINDS,
        default="own",
        help="own (default: the model's training loss), pretrain, supervised, probe (trains a default "
        "probe on an encoder checkpoint if needed)",
    )
    ls.add_argument("--dim", type=int, choices=(1, 2), default=2, help="1-D curve or 2-D surface (default 2)")
    ls.add_argument("--grid", type=int, default=21, help="points per axis (default 21; 2**k+1 grids nest)")
    ls.add_argument("--span", type=float, default=1.0, help="coordinates over [-span, span] (default 1)")
    _add_direction_args(ls)
    _add_objective_args(ls, samples=256)
    ls.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="bf16 autocast for wide plots")
    ls.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ls.add_argument(
        "--batch-points",
        type=int,
        default=0,
        help="grid points per vectorized forward (default 0: 16 on CUDA, 1 on CPU)",
    )
    ls.add_argument(
        "--out",
        default=None,
        help="also write the result to FILE.npz, FILE.csv, FILE.h5 (the loss-landscape tool's surface file) or "
        "FILE.vtp (ParaView)",
    )
    ls.add_argument("--json", action="store_true", help="print the landscape numbers as JSON on stdout")
    _add_big_job_guard(ls, "jobs")
    ls.set_defaults(func=cmd_landscape)

    cx = sub.add_parser(
        "convexity",
        help="|lambda_min/lambda_max| of the full Hessian at each point of a 2-D slice (cached, resumable, torchrun)",
    )
    cx.add_argument("checkpoint")
    cx.add_argument(
        "--loss", choices=LOSS_KINDS, default="own", help="the loss whose Hessian is taken (default own; as landscape)"
    )
    cx.add_argument(
        "--grid", type=int, default=9, help="points per axis (default 9; 2**k+1 grids nest, also with landscape's)"
    )
    cx.add_argument("--span", type=float, default=1.0, help="coordinates over [-span, span] (default 1)")
    _add_direction_args(cx)
    _add_objective_args(cx, samples=128)
    cx.add_argument("--max-iter", type=int, default=20, help="Lanczos steps (Hessian-vector products) per point (20)")
    cx.add_argument("--tol", type=float, default=1e-3, help="relative Ritz residual to stop a point early (1e-3)")
    cx.add_argument("--lanczos-seed", type=int, default=0, help="Lanczos start vector, the same at every point (0)")
    cx.add_argument("--device", default="auto", help="auto, cpu or cuda")
    cx.add_argument("--out", default=None, help="also write the map to FILE.npz")
    cx.add_argument("--json", action="store_true", help="print the convex area and the meta as JSON on stdout")
    _add_big_job_guard(cx, "maps")
    cx.set_defaults(func=cmd_convexity, dim=2, dtype="fp32", batch_points=0)

    f = sub.add_parser("flatness", help="Hessian spectrum, trace, sharpness and robustness to weight noise")
    f.add_argument("checkpoint")
    f.add_argument("--loss", choices=LOSS_KINDS, default="own", help="objective for the Hessian (default own)")
    f.add_argument("--top-k", type=int, default=3, help="top Hessian eigenvalues (default 3)")
    f.add_argument("--trace", action=argparse.BooleanOptionalAction, default=True, help="Hutchinson trace (default on)")
    f.add_argument("--probes", type=int, default=32, help="Hutchinson probes (default 32)")
    f.add_argument("--density", action="store_true", help="spectral density by stochastic Lanczos quadrature")
    f.add_argument("--per-block", action="store_true", help="top eigenvalue and trace per transformer block")
    f.add_argument(
        "--sharpness",
        type=float,
        default=0.05,
        metavar="RHO",
        help="average, adaptive and worst-case sharpness at relative radius RHO (default 0.05)",
    )
    f.add_argument("--no-sharpness", action="store_true", help="skip the sharpness numbers")
    f.add_argument(
        "--robustness",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="accuracy and loss under weight noise (default on)",
    )
    f.add_argument(
        "--sigmas",
        type=float,
        nargs="+",
        default=[0.0, 0.05, 0.1, 0.2, 0.3],
        help="relative noise sizes for --robustness",
    )
    f.add_argument("--max-iter", type=int, default=40, help="Lanczos steps for the eigenvalues (default 40)")
    f.add_argument("--sharpness-samples", type=int, default=8, help="random draws for average sharpness (default 8)")
    f.add_argument("--draws", type=int, default=5, help="noise draws per size for --robustness (default 5)")
    _add_objective_args(f, samples=128)
    f.add_argument("--scope", choices=SCOPES, default="all", help="parameters the Hessian is taken over")
    f.add_argument("--seed", type=int, default=0, help="probe / noise seed (default 0)")
    f.add_argument("--device", default="auto")
    f.add_argument("--json", action="store_true", help="the whole report as JSON on stdout")
    _add_big_job_guard(f, "reports")
    f.set_defaults(func=cmd_flatness)

    c = sub.add_parser("cache", help="list, delete, export or prune cached results")
    c.add_argument("action", choices=("list", "delete", "export", "prune"))
    c.add_argument("hash", nargs="?", help="entry hash (delete / export)")
    c.add_argument("file", nargs="?", help="export target: FILE.npz, FILE.csv, or for a landscape FILE.h5 / FILE.vtp")
    c.add_argument("--kind", default=None, help="entry kind (landscape, flatness, ...)")
    c.add_argument("--all", action="store_true", help="list: checkpoints and every other folder too, and the total")
    c.add_argument("--max-size", default=None, help="prune: least recently used first until at most this (e.g. 5GB)")
    c.add_argument("--older-than", default=None, help="prune: everything unused for longer than this (e.g. 30d)")
    c.add_argument("--dry-run", action="store_true", help="prune: only say what would be removed")
    c.add_argument(
        "--include-defaults", action="store_true", help="prune: the Overview's default models and results too"
    )
    c.set_defaults(func=cmd_cache)

    rp = sub.add_parser(
        "reproduce",
        help="re-test the paper's claims on MAE, RC-MAE and Sup-ViT over seeds; writes docs/FINDINGS.md",
    )
    rp.add_argument("--quick", action="store_true", help="a small version for CI (micro models, synthetic data)")
    rp.add_argument(
        "--seeds", type=int, default=None, help=f"model seeds 0..N-1 (default {ReproduceSpec.seeds}; 2 with --quick)"
    )
    rp.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes for the independent seed jobs (default 0: one per core); the numbers do not depend "
        "on it",
    )
    rp.add_argument("--out", default=None, help="the report (default: docs/FINDINGS.md of the repository)")
    rp.add_argument("--grid", type=int, default=None, help="points per axis (default 33; 5 with --quick)")
    rp.add_argument("--span", type=float, default=None, help="coordinates over [-span, span] (default 0.5)")
    rp.add_argument("--samples", type=int, default=None, help="evaluation images (default 128; 32 with --quick)")
    rp.add_argument(
        "--convexity-grid",
        type=int,
        default=None,
        help="claim 2's convexity maps: points per axis (default 5; 3 with --quick; 0 skips them)",
    )
    rp.add_argument("--note", default=None, help="a paragraph to put at the top of the report")
    rp.add_argument(
        "--no-regimes",
        action="store_true",
        help="skip claim 2 over teacher momentum {auto, 0.99, 0.996} x training length {epochs, 3x} "
        "(core.studies.regimes)",
    )
    rp.add_argument(
        "--regime-grid",
        type=int,
        default=None,
        help="landscape grid of the regime cells, 2**k + 1 (default 17); used where it nests in --grid, else "
        "--grid itself (0: always --grid)",
    )
    rp.add_argument(
        "--regime-seeds",
        type=int,
        default=None,
        help=f"seeds of the regime grid, the first min(--seeds, N) (default {ReproduceSpec.regime_seeds})",
    )
    rp.add_argument("--device", default="auto", help="auto, cpu or cuda")
    rp.set_defaults(func=cmd_reproduce)

    add_commands(sub, _tqdm_progress)  # finetune, generalization (core/app/generalization_cli.py)
    add_roi_command(sub, _tqdm_progress)  # roi: the pre-training ladder (core/app/roi_cli.py)
    add_robustness(sub, _tqdm_progress)  # robustness: accuracy under input corruptions (core/app/robustness_cli.py)

    br = sub.add_parser(
        "briefing",
        help="the Overview's stakeholder briefing as one self-contained HTML file (prepares what the cache lacks)",
    )
    br.add_argument("--lang", default="en", help="en or ja (default en)")
    br.add_argument("--out", default=None, help="FILE.html (default: <cache>/briefing/briefing_<lang>.html)")
    br.set_defaults(func=cmd_briefing)
    _add_checkpoint_overrides(sub)
    return p


def _add_checkpoint_overrides(sub) -> None:
    """--num-heads / --decoder-num-heads / --norm-pix-loss on every command that reads a checkpoint (a `checkpoint`
    argument), applied by `main` to every load of the command through `checkpoint_overrides`."""
    for parser in dict.fromkeys(sub.choices.values()):
        dests = {act.dest for act in parser._actions}
        if "checkpoint" not in dests or "num_heads" in dests:  # no checkpoint, or the command has its own flags
            continue
        g = parser.add_argument_group("architecture of files that do not say it (official MAE / RC-MAE, timm, hub)")
        g.add_argument("--num-heads", type=int, default=None, help="encoder attention heads")
        g.add_argument("--decoder-num-heads", type=int, default=None, help="MAE decoder attention heads")
        g.add_argument(
            "--norm-pix-loss",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="whether the MAE reconstructed per-patch normalized pixels (official files without args)",
        )
        parser.set_defaults(checkpoint_overrides=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    warnings.simplefilter("default")
    started = time.time()
    over = {k: getattr(a, k, None) for k in ("num_heads", "decoder_num_heads", "norm_pix_loss")}
    if not getattr(a, "checkpoint_overrides", False):
        over = {}  # `train --norm-pix-loss` is a training option, not an override
    try:
        with checkpoint_overrides(**over):
            out = a.func(a)
    except LandscapeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a writer that did not go through the store's helpers: still one line, never a traceback
        print(f"error: {write_error(e, what=None)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished points are in the cache; rerun the same command to resume", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; use fewer --samples or a smaller --grid", file=sys.stderr)
        return 1
    if a.command != "cache" and os.environ.get("LANDSCAPE_CACHE_MAX"):  # the size cap, after each job
        capped = apply_cache_cap(job_started=started, overview=overview_defaults())  # what this command used is kept
        if capped is not None and capped.removed:
            print(f"cache cap LANDSCAPE_CACHE_MAX: {capped.describe()}", file=sys.stderr)
    if out is not None:
        print(out)
    return 0
