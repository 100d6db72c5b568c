"""The dashboard's generalization work: the label-efficiency study as a background job, its cached runs read at once,
fine-tuned vs from-scratch landscapes, and the first-run job's one measured sentence for the Overview.

Nothing here imports streamlit. The numbers are `core.studies.generalization`'s (`StudySpec`, `StudyResult`,
`RunRecord`) and `core.models.finetune`'s (cache keys, checkpoints, summaries); this module only schedules them for
`core.app.registry.JobRegistry` and reads the cache fast enough for a page rerun:

- `dashboard_study(profile)`: the study the page starts from: `StudySpec()` for the "full" profile (its seed 0 uses
  the Overview's default MAE / RC-MAE), `quick_study()` for "quick" (micro models, the tests' checkpoints).
- `cached_study(spec)`: every run of the study that is in the cache, as a `StudyResult`, without building a model:
  each cell's exact cache key comes from `core.models.finetune.finetune_key` on a weightless view of the pre-trained
  checkpoint (`_light`), and a run's numbers from `core.models.finetune.finetune_summary` on a weightless view of its
  file (both memoized by path, size and mtime). Flatness numbers come from an in-process memo filled by the jobs below;
  `flatness_unknown(spec, result)` lists the runs not looked up yet, and `flatness_lookup_task` looks them up
  (`core.studies.generalization.flatness_numbers(..., cached_only=True)`, which builds the objective: too slow for a
  page).
- `generalization_task(spec)`: pre-train (or find) the study's MAE / RC-MAE per seed, fine-tune every (budget, model
  kind, seed) and measure its flatness when asked, with live progress as `core.report.i18n.msg` keys and a partial
  `StudyResult` after every run. The cache entries are those `python -m core generalization` makes (the same
  functions and keys), so the CLI and the dashboard share every run.
- `first_run_generalization` / `generalization_facts`: the Overview's measurement (`FIRST_RUN_BUDGET` labels per class,
  `FIRST_RUN_SEEDS`, the study's recipe): one cell of the page's study, computed by the first-run job and read back as
  the plain dict of /work/notes/contract.md (key "generalization" of `core.app.first_run.gather_facts`).

Setting, stated wherever these numbers are shown: pre-training used every training image without labels; fine-tuning
and training from scratch used only the labeled subset (`core.models.finetune.SETTING_NOTE`).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from core.app.zoo import KIND_LABEL
from core.errors import LandscapeError
from core.measure import STAGES, SurfaceSpec, compute_flatness
from core.models import (
    FORMAT,
    SETTING_NOTE,
    FinetuneConfig,
    LoadedCheckpoint,
    Progress,
    ViTConfig,
    checkpoint_path,
    file_sha256,
    finetune,
    finetune_dataset,
    finetune_key,
    finetune_summary,
    read_state_file,
    train_model,
)
from core.paths import cache_root
from core.report import msg
from core.store import content_hash, files_state
from core.studies import (
    EXPECTED_SIGN,
    KINDS,
    LABEL,
    SPLITS,
    RunRecord,
    StudyResult,
    StudySpec,
    budget_label,
    check_budgets,
    correlation_numbers,
    flatness_numbers,
    quick_study,
)

FIRST_RUN_BUDGET = 10  # labels per class of the Overview's sentence (a profile whose study lacks it: its smallest)
FIRST_RUN_SEEDS = (0,)  # the default trio is seed 0; seed 1 would pre-train another MAE and RC-MAE (~35 s more)
DEFAULT_SEEDS = 3  # the page's study: the minimum for a spread

_MEMO_LOCK = threading.Lock()
_LIGHT: dict[tuple[str, int, int], Any] = {}  # (path, size, mtime_ns) -> weightless LoadedCheckpoint
_SUMMARY: dict[tuple[str, int, int], tuple[dict, tuple[dict, ...], dict]] = {}  # -> (summary, history, key)
_DATA: dict[tuple, Any] = {}  # (spec, image size, channels, val fraction, split seed) -> Dataset
_FLAT: dict[tuple[str, str, str], dict] = {}  # (run sha256, split, settings hash) -> flatness numbers
_FLAT_MISS: dict[tuple[str, str, str], int] = {}  # same key -> flatness store signature when found missing


def dashboard_study(profile: Any = None, **overrides: Any) -> StudySpec:
    """The page's study under a dashboard profile (a `core.app.profiles.Profile` or its name; default: env
    `LANDSCAPE_DASHBOARD_PROFILE`, else "full", as `core.app.profiles.dashboard_profile` reads it).

    "full": `StudySpec()` (digits, tiny, the TrainConfig defaults: its seed 0 is the default trio's MAE / RC-MAE);
    "quick": `quick_study()` (micro models on synthetic data, the tests' checkpoints). `DEFAULT_SEEDS` seeds unless
    overridden. (Not importing core.app.profiles, which imports this module.)
    """
    name = getattr(profile, "name", profile) or os.environ.get("LANDSCAPE_DASHBOARD_PROFILE") or "full"
    base = quick_study(seeds=DEFAULT_SEEDS) if name == "quick" else StudySpec(seeds=DEFAULT_SEEDS)
    return replace(base, **overrides)


def first_run_budget(spec: StudySpec) -> int:
    """`FIRST_RUN_BUDGET` when the study has it, else its smallest numeric budget (a cell of the page's chart)."""
    nums = [b for b in spec.budgets if b is not None]
    if FIRST_RUN_BUDGET in nums or not nums:
        return FIRST_RUN_BUDGET
    return min(nums)


# ----------------------------------------------------------------------------------------------------------------------
# Reading the cache without building models


def _stat_key(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _light(path: str | Path):
    """A `LoadedCheckpoint` of one of our files without its model (kind, config, meta, sha256), memoized.

    Enough for `finetune_key`, `finetune_dataset` and `finetune_summary`, which read only those fields.

    Raises:
        LandscapeError: unreadable, or not one of our checkpoints.
    """
    path = Path(path)
    sk = _stat_key(path)
    if sk is None:
        raise LandscapeError(f"checkpoint not found: {path}")
    with _MEMO_LOCK:
        hit = _LIGHT.get(sk)
    if hit is not None:
        return hit
    raw = read_state_file(path)
    if raw.get("format") != FORMAT or not isinstance(raw.get("config"), dict):
        raise LandscapeError(f"{path.name} is not one of this project's checkpoints")
    keep = ("train", "data", "history", "seed", "code_version", "finetune")
    meta = {k: raw.get(k) for k in keep if raw.get(k) is not None}
    ck = LoadedCheckpoint(str(raw.get("kind")), None, ViTConfig.from_dict(raw["config"]), meta, path, file_sha256(path))
    with _MEMO_LOCK:
        _LIGHT[sk] = ck
    return ck


def _dataset(base: Any, cfg: FinetuneConfig):
    """`core.models.finetune.finetune_dataset` memoized by what it depends on (the data is loaded once per process)."""
    d = base.meta.get("data") or {}
    k = (
        cfg.data or d.get("spec") or "digits",
        base.config.img_size,
        base.config.in_chans,
        d.get("val_fraction", 0.2),
        d.get("split_seed", 0),
        d.get("fingerprint"),
    )
    with _MEMO_LOCK:
        hit = _DATA.get(k)
    if hit is None:
        hit = finetune_dataset(base, cfg)
        with _MEMO_LOCK:
            _DATA[k] = hit
    return hit


def pretrained_paths(spec: StudySpec, ckpts: dict[tuple[str, int], str] | None = None) -> dict[tuple[str, int], str]:
    """(kind, seed) -> the study's pre-trained checkpoint that exists (given ones first)."""
    out: dict[tuple[str, int], str] = {}
    for seed in range(spec.seeds):
        for kind in ("mae", "rcmae"):
            given = (ckpts or {}).get((kind, seed))
            p = Path(given) if given else checkpoint_path(spec.train_config(kind, seed))
            if p.exists():
                out[kind, seed] = str(p)
    return out


def cell_keys(spec: StudySpec, ckpts: dict[tuple[str, int], str] | None = None) -> dict[tuple, dict]:
    """(kind, budget, seed) -> the exact `core.models.finetune` cache key of that run, for every cell whose pre-trained
    checkpoint exists (scratch runs take the MAE's architecture and data, as `core.studies.generalization` does)."""
    bases = pretrained_paths(spec, ckpts)
    out: dict[tuple, dict] = {}
    for seed in range(spec.seeds):
        for kind in KINDS:
            src = bases.get(("mae" if kind == "scratch" else kind, seed))
            if src is None:
                continue
            base = _light(src)
            for budget in spec.budgets:
                cfg = spec.finetune_config(kind, budget, seed)
                out[kind, budget, seed] = finetune_key(base, cfg, _dataset(base, cfg))
    return out


def _run_numbers(path: Path) -> tuple[dict, tuple[dict, ...], dict] | None:
    """(finetune_summary, history, cache key) of one fine-tuned file, memoized; None when unreadable."""
    sk = _stat_key(path)
    if sk is None:
        return None
    with _MEMO_LOCK:
        hit = _SUMMARY.get(sk)
    if hit is not None:
        return hit
    try:
        ck = _light(path)
        info = ck.meta.get("finetune") or {}
        out = (finetune_summary(ck), tuple(ck.meta.get("history") or ()), info.get("key") or {})
    except LandscapeError:
        return None
    with _MEMO_LOCK:
        _SUMMARY[sk] = out
    return out


def _finetune_files() -> dict[str, Path]:
    """Hash suffix (the 10 hex digits `core.models.finetune` puts before `.pt`) -> file, for every fine-tuned
    checkpoint."""
    folder = cache_root() / "finetune"
    if not folder.is_dir():
        return {}
    return {p.stem.rsplit("_", 1)[-1]: p for p in folder.glob("*.pt")}


def cached_study(spec: StudySpec, ckpts: dict[tuple[str, int], str] | None = None) -> StudyResult:
    """Every run of `spec` already in the cache, with the flatness numbers known to this process (computes nothing).

    The same runs `core.studies.generalization.run_study(spec, cached_only=True)` finds, in its order, read in
    milliseconds once memoized (no model is built, the data is loaded once per process).
    """
    files = _finetune_files()
    runs: list[RunRecord] = []
    if files:
        for (kind, budget, seed), key in cell_keys(spec, ckpts).items():
            path = files.get(content_hash(key)[:10])
            got = _run_numbers(path) if path is not None else None
            if got is None or got[2] != key:
                continue
            summary, history, _ = got
            sha = _light(path).sha256
            flat = {s: _FLAT[k] for s in SPLITS if (k := _flat_key(spec, sha, s)) in _FLAT}
            runs.append(RunRecord(kind, budget, seed, str(path), summary, history, flat))
    order = {(s, b, k): i for i, (s, b, k) in enumerate(_cell_order(spec))}
    runs.sort(key=lambda r: order.get((r.seed, r.budget, r.kind), 0))
    return StudyResult(spec, tuple(runs), regime(spec, runs))


def _cell_order(spec: StudySpec) -> list[tuple[int, int | None, str]]:
    return [(s, b, k) for s in range(spec.seeds) for b in spec.budgets for k in KINDS]


def regime(spec: StudySpec, runs: list[RunRecord] | tuple[RunRecord, ...]) -> dict:
    """The regime stated beside every verdict: data (images), steps and epochs, seeds, the setting (plain values)."""
    f = spec.finetune
    out: dict[str, Any] = {
        "data": spec.data,
        "preset": spec.preset,
        "epochs": f.epochs,
        "steps": f.steps,
        "steps_per_epoch": f.steps_per_epoch,
        "batch_size": f.batch_size,
        "pretrain_epochs": spec.pretrain_epochs,
        "seeds": sorted({r.seed for r in runs}),
        "setting": SETTING_NOTE,
    }
    if runs:
        d = _light(runs[0].path).meta.get("data") or {}
        out |= {"n_train": d.get("n_train"), "n_val": d.get("n_val"), "num_classes": d.get("num_classes")}
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Flatness numbers: an in-process memo (found numbers never change; a miss is rechecked when the store changes)


def _flat_settings(spec: StudySpec) -> str:

    d = asdict(spec.flatness_spec("", "val"))
    for k in ("checkpoint", "split", "device"):
        d.pop(k, None)
    return content_hash(d)[:16]


def _flat_key(spec: StudySpec, sha: str, split: str) -> tuple[str, str, str]:
    return (sha, split, _flat_settings(spec))


def _flat_signature() -> int:
    """Changes when a flatness result is finished, rewritten or removed (the finished entries of `<cache>/flatness`
    and the newest one's mtime, `core.store.files_state`; an entry still running does not count)."""
    return hash(files_state(cache_root() / "flatness", "*/meta.json"))


def flatness_unknown(spec: StudySpec, result: StudyResult) -> list[str]:
    """Paths of the result's runs whose flatness numbers this process has not looked up since the store changed."""
    sig = _flat_signature()
    out = []
    for r in result.runs:
        sha = _light(r.path).sha256
        for split in SPLITS:
            k = _flat_key(spec, sha, split)
            if k not in _FLAT and _FLAT_MISS.get(k) != sig:
                out.append(r.path)
                break
    return out


def _remember_flatness(spec: StudySpec, path: str, split: str, nums: dict | None, sig: int) -> None:
    k = _flat_key(spec, _light(path).sha256, split)
    with _MEMO_LOCK:
        if nums is not None:
            _FLAT[k] = dict(nums)
            _FLAT_MISS.pop(k, None)
        else:
            _FLAT_MISS[k] = sig


def flatness_lookup_task(spec: StudySpec, paths: list[str]) -> Callable[[Any], int]:
    """A job looking up the cached flatness numbers of some runs (computes nothing); result: how many were found."""

    def run(ctx: Any) -> int:
        found = 0
        sig = _flat_signature()
        for i, path in enumerate(paths):
            if ctx.should_stop():
                raise LandscapeError("stopped")
            ctx.progress(i / max(1, len(paths)), msg("job.gen_lookup", done=i, total=len(paths)))
            for split in SPLITS:
                nums = flatness_numbers(spec, path, split, cached_only=True)
                _remember_flatness(spec, path, split, nums, sig)
                found += nums is not None
        return found

    return run


# ----------------------------------------------------------------------------------------------------------------------
# The study as a background job


def study_label(spec: StudySpec) -> str:

    return msg("label.generalization", n=spec.seeds * len(spec.budgets) * len(KINDS), seeds=spec.seeds)


def generalization_task(
    spec: StudySpec, ckpts: dict[tuple[str, int], str] | None = None
) -> Callable[[Any], StudyResult]:
    """A job running the study (`core.studies.generalization` semantics and cache entries); result and partial: the
    `cached_study` of everything finished so far.

    Args:
        spec: the study (budgets, seeds, recipe, flatness or not).
        ckpts: pre-trained checkpoints to use, (kind, seed) -> path (default: the spec's pre-training runs).
    """

    def run(ctx: Any) -> StudyResult:

        check_budgets(spec)
        seeds = list(range(spec.seeds))
        cells = _cell_order(spec)
        flat_units = 2 * len(SPLITS) if spec.flatness else 0  # a fine-tune weighs about as much as one split's Hessian
        per_seed = 2 * 2 + len(spec.budgets) * len(KINDS) * (2 + flat_units)
        total = float(per_seed * len(seeds))
        done = 0.0
        for seed in seeds:
            bases: dict[str, str] = {}
            for kind in ("mae", "rcmae"):
                bases[kind] = _pretrain(ctx, spec, kind, seed, ckpts, done / total, (done + 2) / total)
                done += 2
            for s, budget, kind in cells:
                if s != seed:
                    continue
                path = finetune_one(ctx, spec, kind, budget, seed, bases, done / total, (done + 2) / total)
                done += 2
                if spec.flatness:
                    for split in SPLITS:
                        hi = done + flat_units / len(SPLITS)
                        _flatness_one(ctx, spec, path, kind, budget, seed, split, done / total, hi / total)
                        done = hi
                ctx.set_partial(cached_study(spec, ckpts))
        return cached_study(spec, ckpts)

    return run


def _pretrain(ctx, spec: StudySpec, kind: str, seed: int, ckpts, lo: float, hi: float) -> str:

    given = (ckpts or {}).get((kind, seed))
    if given:
        return str(given)
    cfg = spec.train_config(kind, seed)
    name = KIND_LABEL.get(kind, kind)

    def prog(p: Progress) -> None:
        ctx.progress(
            lo + (hi - lo) * p.fraction, msg("job.gen_pretrain", model=name, seed=seed, epoch=p.epoch, epochs=p.epochs)
        )

    ctx.progress(lo, msg("job.gen_pretrain", model=name, seed=seed, epoch=0, epochs=cfg.epochs))
    return str(train_model(cfg, progress=prog, device=spec.device, check_stop=ctx.should_stop))


def finetune_one(ctx, spec: StudySpec, kind: str, budget, seed: int, bases: dict, lo: float, hi: float) -> Path:

    cfg = spec.finetune_config(kind, budget, seed)
    n = budget_label(budget)

    def prog(p: Progress) -> None:
        ctx.progress(
            lo + (hi - lo) * p.fraction,
            msg("job.gen_finetune", model=LABEL[kind], n=n, seed=seed, epoch=p.epoch, epochs=p.epochs),
        )

    ctx.progress(lo, msg("job.gen_finetune", model=LABEL[kind], n=n, seed=seed, epoch=0, epochs=cfg.epochs))
    base = bases["mae" if kind == "scratch" else kind]
    return finetune(base, cfg, progress=prog, device=spec.device, check_stop=ctx.should_stop)


def _flatness_one(ctx, spec: StudySpec, path: Path, kind: str, budget, seed: int, split: str, lo, hi) -> None:

    n = budget_label(budget)

    def prog(stage: str, d: int, t: int) -> None:
        k = STAGES.index(stage) if stage in STAGES else 0
        f = lo + (hi - lo) * min(1.0, (k + d / max(1, t)) / len(STAGES))
        ctx.progress(
            f, msg("job.gen_flatness", model=LABEL[kind], n=n, seed=seed, split=split, stage=stage, done=d, total=t)
        )

    sig = _flat_signature()
    compute_flatness(spec.flatness_spec(str(path), split), progress=prog, check_stop=ctx.should_stop)
    _remember_flatness(spec, str(path), split, flatness_numbers(spec, str(path), split, cached_only=True), sig)


# ----------------------------------------------------------------------------------------------------------------------
# Fine-tuned vs from-scratch landscapes (the shared surfaces job on their supervised loss)


def landscape_specs(
    result: StudyResult, budget: int | None, seed: int, split: str = "labeled", **surface: Any
) -> dict[str, Any]:
    """Label -> SurfaceSpec of the supervised loss of MAE-FT, RC-MAE-FT and scratch at one (budget, seed): the same
    direction seed, grid, span and images for every model (one architecture, so the same raw directions).

    Raises:
        LandscapeError: none of those runs is cached yet.
    """
    runs = {r.kind: r for r in result.runs if r.budget == budget and r.seed == seed}
    if not runs:
        raise LandscapeError(f"no cached run at {budget_label(budget)} labels per class, seed {seed}: run the study")
    base = dict(loss="supervised", dim=2, split=split) | surface
    return {
        f"{LABEL[k]} · {budget_label(budget)}/class · seed {seed}": SurfaceSpec(checkpoint=runs[k].path, **base)
        for k in KINDS
        if k in runs
    }


# ----------------------------------------------------------------------------------------------------------------------
# The Overview's measurement (first-run job)


def first_run_spec(profile: Any = None) -> StudySpec:
    """The study cell the first-run job measures: the page's study at `first_run_budget`, seeds `FIRST_RUN_SEEDS`,
    no flatness (the Overview's sentence is about accuracy)."""
    spec = dashboard_study(profile)
    return replace(spec, budgets=(first_run_budget(spec),), seeds=max(FIRST_RUN_SEEDS) + 1, flatness=False)


def _trio_ckpts(paths: dict[str, str]) -> dict[tuple[str, int], str]:
    return {(k, 0): str(paths[k]) for k in ("mae", "rcmae") if k in paths}


def first_run_generalization(ctx: Any, paths: dict[str, str], profile: Any, lo: float, hi: float) -> None:
    """Fine-tune the default MAE and RC-MAE (seed 0) and train the same ViT from scratch at `first_run_budget`
    labels per class, for the Overview's sentence (cached: a second first run finishes at once).

    Raises:
        LandscapeError: a budget larger than the data, a diverged or stopped run.
    """
    spec = first_run_spec(profile)
    ckpts = _trio_ckpts(paths)
    budget = spec.budgets[0]
    cells = [(s, k) for s in FIRST_RUN_SEEDS for k in KINDS]
    bases = {k: ckpts[k, 0] for k in ("mae", "rcmae") if (k, 0) in ckpts}
    if set(bases) != {"mae", "rcmae"}:
        raise LandscapeError("the default MAE and RC-MAE are needed to measure fine-tuning")
    for i, (seed, kind) in enumerate(cells):
        a, b = lo + (hi - lo) * i / len(cells), lo + (hi - lo) * (i + 1) / len(cells)
        finetune_one(ctx, spec, kind, budget, seed, bases, a, b)


def generalization_facts(paths: dict[str, str], profile: Any = None) -> dict | None:
    """The Overview's measurement as the plain dict of the helpers' contract, read from the cache (computes
    nothing); None unless every model kind was measured for every seed of `FIRST_RUN_SEEDS`.

    Keys: labels_per_class, seeds, val_acc / gap_acc (kind -> one float per seed; kinds "scratch", "mae", "rcmae"),
    epochs, steps, data, note.
    """
    out = generalization_facts_by_seed(_trio_ckpts(paths), profile)
    return out if out is not None and set(out["seeds"]) >= set(FIRST_RUN_SEEDS) else None


def generalization_facts_by_seed(ckpts: dict[tuple[str, int], str], profile: Any = None) -> dict | None:
    """`generalization_facts` over every seed k whose MAE / RC-MAE of seed k (`ckpts`: (kind, seed) -> path) were
    fine-tuned, with scratch, at the first-run budget (the Overview's evidence job adds seeds 1, 2, ...); the seeds
    listed are those with all three kinds measured. None when there is none."""
    seeds = sorted({s for (k, s) in ckpts if k == "mae"} & {s for (k, s) in ckpts if k == "rcmae"})
    if not seeds:
        return None
    spec = replace(first_run_spec(profile), seeds=max(seeds) + 1)
    res = cached_study(spec, {ks: p for ks, p in ckpts.items() if ks[0] in ("mae", "rcmae")})
    budget = spec.budgets[0]
    got = {(r.kind, r.seed): r for r in res.runs if r.budget == budget}
    full = [
        s
        for s in seeds
        if all(
            (k, s) in got and math.isfinite(float(got[k, s].summary["val_acc"])) for k in ("scratch", "mae", "rcmae")
        )
    ]
    if not full:
        return None
    kinds = ("scratch", "mae", "rcmae")
    return {
        "labels_per_class": int(budget),
        "seeds": full,
        "val_acc": {k: [float(got[k, s].summary["val_acc"]) for s in full] for k in kinds},
        "gap_acc": {k: [float(got[k, s].summary["gap_acc"]) for s in full] for k in kinds},
        "epochs": int(spec.finetune.epochs),
        "steps": int(spec.finetune.steps),
        "data": str(spec.data),
        "note": SETTING_NOTE,
    }


# ----------------------------------------------------------------------------------------------------------------------
# Plain values for the figures (core.report.plots_generalization)


def wide_study(spec: StudySpec, seeds: int = 10) -> StudySpec:
    """`spec` over every standard budget and up to `seeds` seeds: the scatter's "every cached run" of that recipe
    (cells whose pre-trained model does not exist are skipped at no cost)."""
    budgets = list(spec.budgets)
    for b in StudySpec().budgets + quick_study().budgets:
        if b not in budgets:
            budgets.append(b)
    budgets.sort(key=lambda b: math.inf if b is None else b)
    return replace(spec, budgets=tuple(budgets), seeds=max(spec.seeds, seeds))


def gap_points(result: StudyResult, number: str, split: str, gap: str) -> tuple[list[dict], dict]:
    """(points, correlation) of one flatness number on one split against one gap over the result's runs that have
    it: points {"kind", "x", "y", "label"}; `core.studies.correlation_numbers` (Spearman rho, permutation p)."""
    pts = []
    for r in result.runs:
        nums = r.flatness.get(split)
        if not nums:
            continue
        pts.append(
            {
                "kind": r.kind,
                "x": nums.get(number),
                "y": r.summary.get(gap),
                "label": f"{LABEL[r.kind]} · {budget_label(r.budget)}/class · seed {r.seed}",
            }
        )
    ok = [p for p in pts if p["x"] is not None and p["y"] is not None]
    x, y = [float(p["x"]) for p in ok], [float(p["y"]) for p in ok]
    stat = correlation_numbers(x, y, EXPECTED_SIGN.get(gap, 1)) if len(ok) >= 3 else {"n": len(ok)}
    return pts, stat
