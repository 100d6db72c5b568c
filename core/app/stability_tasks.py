"""The dashboard's stability work: accuracy under input corruptions of the label-efficiency study's runs as background
jobs, what is cached read back at once, a gallery image, the flatness page's proxy-vs-real comparison, and the
Overview's stability facts.

Nothing here imports streamlit. The numbers are `core.studies.stability`'s (`stability_numbers`, cached per
checkpoint by `core.measure.input_robustness`), so the CLI (`python -m core robustness`, `generalization`,
`reproduce`) and the dashboard share every entry.

- `with_stability(result)`: the study result with the stability numbers this process has looked up (no model built);
  `stability_unknown(result)` lists the runs not looked up yet; `stability_lookup_task` looks them up (cached only).
- `stability_task(spec)`: measure every cached run of the page's study (seconds per run on the tiny models).
- `gallery_of(spec, index, seed)`: one validation image of the study's data at every severity of every corruption.
- `classifier_for(path)` / `input_kept(path, seed)`: the classifier the flatness page's weight-noise curve reads (the
  supervised ViT, or the default probe of an MAE / RC-MAE) and its cached share of accuracy kept under corruptions.
- `first_run_stability(ctx, paths, profile, lo, hi)` / `stability_facts(paths, profile, ckpts)`: for the Overview,
  the first-run cell's stability (`FIRST_RUN_BUDGET` labels per class) computed and read back as a plain dict;
  `core.report.stability_text.stability_sentence(facts, lang)` turns it into the sentence.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.app.generalization_tasks import cached_study, first_run_spec
from core.errors import LandscapeError
from core.measure import CORRUPTIONS, SEVERITIES, InputRobustnessSpec, compute_input_robustness, gallery, to_pixels
from core.models import ProbeConfig, dataset_for, load_checkpoint, probe_path
from core.report import msg, stability_estimates, stability_verdict
from core.studies import LABEL, StudyResult, StudySpec, budget_label, stability_numbers

_LOCK = threading.Lock()
_STAB: dict[tuple, dict] = {}  # (path, size, mtime, seed, flatness) -> stability numbers
_MISS: set[tuple] = set()  # the same keys found not cached (rechecked by a lookup job)


def _memo_key(spec: StudySpec, path: str, seed: int) -> tuple | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, seed, bool(spec.flatness))


def with_stability(result: StudyResult) -> StudyResult:
    """The result with the stability numbers known to this process filled in (computes and loads nothing)."""
    runs = []
    for r in result.runs:
        k = _memo_key(result.spec, r.path, r.seed)
        got = _STAB.get(k) if k is not None else None
        runs.append(replace(r, stability=dict(got)) if got is not None and not r.stability else r)
    return replace(result, runs=tuple(runs))


def stability_unknown(result: StudyResult) -> list[str]:
    """Paths of the result's runs whose stability numbers were neither found nor found missing in this process."""
    out = []
    for r in result.runs:
        k = _memo_key(result.spec, r.path, r.seed)
        if k is not None and k not in _STAB and k not in _MISS:
            out.append(r.path)
    return out


def _remember(spec: StudySpec, path: str, seed: int, nums: dict | None) -> None:
    k = _memo_key(spec, path, seed)
    if k is None:
        return
    with _LOCK:
        if nums is not None:
            _STAB[k] = dict(nums)
            _MISS.discard(k)
        else:
            _MISS.add(k)


def stability_lookup_task(spec: StudySpec, ckpts: dict | None = None) -> Callable[[Any], int]:
    """A job reading the cached stability numbers of the study's cached runs (computes nothing); result: found."""

    def run(ctx: Any) -> int:
        found = 0
        result = cached_study(spec, ckpts)
        for i, r in enumerate(result.runs):
            if ctx.should_stop():
                raise LandscapeError("stopped")
            ctx.progress(i / max(1, len(result.runs)), msg("job.stab_lookup", done=i, total=len(result.runs)))
            nums = stability_numbers(spec, r.path, r.seed, cached_only=True)
            _remember(spec, r.path, r.seed, nums)
            found += nums is not None
        return found

    return run


def stability_task(spec: StudySpec, ckpts: dict | None = None) -> Callable[[Any], StudyResult]:
    """A job measuring every cached run of the study under the corruption suite; partial and result: the study with
    the stability numbers found so far."""

    def run(ctx: Any) -> StudyResult:
        result = cached_study(spec, ckpts)
        n = len(result.runs)
        for i, r in enumerate(result.runs):
            if ctx.should_stop():
                raise LandscapeError("stopped; finished runs are cached, rerun to continue")
            ctx.progress(
                i / max(1, n),
                msg("job.stab_run", model=LABEL[r.kind], n=budget_label(r.budget), seed=r.seed, done=i, total=n),
            )
            _remember(spec, r.path, r.seed, stability_numbers(spec, r.path, r.seed))
            ctx.set_partial(with_stability(result))
        return with_stability(result)

    return run


def gallery_of(spec: StudySpec, index: int = 0, seed: int = 0) -> dict[str, list]:
    """Corruption -> one validation image of the study's data ((C, H, W) numpy arrays in [0, 1]) at severities 0..5,
    with seed `seed`'s draws."""
    ds = dataset_for(spec.train_config("mae", 0))
    i = int(index) % len(ds.val_y)
    x = to_pixels(ds.val_x[i : i + 1], ds.mean, ds.std)[0]
    return {n: [t.numpy() for t in imgs] for n, imgs in gallery(x, seed=seed).items()}


def level_texts() -> dict[str, list[str]]:
    """Corruption -> the level of severities 0..5 in its unit ("" for 0: its column says clean)."""
    return {n: [""] + [c.describe(s) for s in SEVERITIES] for n, c in CORRUPTIONS.items()}


# ----------------------------------------------------------------------------------------------------------------------
# The flatness page: the weight-noise proxy beside the input corruptions


def classifier_for(path: str) -> str | None:
    """The classifier whose accuracy the flatness page's weight-noise curve reads: a supervised ViT or probe itself,
    an MAE / RC-MAE's default probe when it exists; None otherwise."""
    ck = load_checkpoint(path)
    if ck.kind in ("sup", "probe"):
        return str(path)
    p = probe_path(ck.path, ck.sha256, ProbeConfig())
    return str(p) if p.exists() else None


def input_spec(path: str, seed: int = 0) -> InputRobustnessSpec | None:
    clf = classifier_for(path)
    return None if clf is None else InputRobustnessSpec(checkpoint=clf, data_seed=seed, seed=seed)


def input_kept(path: str, seed: int = 0, compute: bool = False) -> float | None:
    """Share of the clean accuracy kept under the whole corruption suite by the model's classifier (cached only unless
    `compute`); None when there is no classifier or nothing is cached."""
    spec = input_spec(path, seed)
    if spec is None:
        return None
    res = compute_input_robustness(spec, cached_only=not compute)
    return None if res is None or not math.isfinite(res.kept) else float(res.kept)


def input_robustness_task(paths: dict[str, str], seed: int = 0) -> Callable[[Any], dict[str, float | None]]:
    """A job computing `input_kept` for label -> checkpoint; result: label -> kept share (None: no classifier)."""

    def run(ctx: Any) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for i, (label, p) in enumerate(paths.items()):
            if ctx.should_stop():
                raise LandscapeError("stopped")
            ctx.progress(i / max(1, len(paths)), msg("job.stab_model", model=label))
            out[label] = input_kept(p, seed, compute=True)
        return out

    return run


# ----------------------------------------------------------------------------------------------------------------------
# The Overview


def _trio(paths: dict[str, str]) -> dict[tuple[str, int], str]:
    return {(k, 0): str(paths[k]) for k in ("mae", "rcmae") if k in paths}


def first_run_stability(ctx: Any, paths: dict[str, str], profile: Any, lo: float, hi: float) -> None:
    """Measure the first-run cell's fine-tuned and scratch models under the corruption suite (after
    `core.app.generalization_tasks.first_run_generalization`; cached, so a second first run finishes at once)."""
    spec = first_run_spec(profile)
    result = cached_study(spec, _trio(paths))
    for i, r in enumerate(result.runs):
        ctx.progress(lo + (hi - lo) * i / max(1, len(result.runs)), msg("job.stab_model", model=LABEL[r.kind]))
        if ctx.should_stop():
            raise LandscapeError("stopped")
        _remember(spec, r.path, r.seed, stability_numbers(spec, r.path, r.seed))


def stability_facts(
    paths: dict[str, str] | None = None, profile: Any = None, ckpts: dict[tuple[str, int], str] | None = None
) -> dict | None:
    """The Overview's stability facts, read from the cache (computes nothing): the first-run budget's runs of every
    seed whose MAE / RC-MAE are given (`ckpts`: (kind, seed) -> path; default the trio of `paths`, seed 0).

    Returns None until every kind of at least one seed is measured, else {"labels_per_class", "seeds" (those with all
    three kinds), "relative_drop" / "kept" / "clean_acc" / "mean_acc": kind -> [one per seed], "estimates": [{"name",
    "estimate", "lo", "hi", "p", "reading"} per pre-trained kind (relative drop minus scratch's, paired by seed)],
    "verdict", "n", "seeds_needed"}.
    """
    ckpts = dict(ckpts or _trio(paths or {}))
    seeds = sorted({s for (k, s) in ckpts if k == "mae"} & {s for (k, s) in ckpts if k == "rcmae"})
    if not seeds:
        return None
    spec = replace(first_run_spec(profile), seeds=max(seeds) + 1)
    budget = spec.budgets[0]
    got: dict[tuple[str, int], dict] = {}
    for r in cached_study(spec, ckpts).runs:
        if r.budget != budget or r.seed not in seeds:
            continue
        nums = stability_numbers(spec, r.path, r.seed, cached_only=True)
        if nums is not None:
            got[r.kind, r.seed] = nums
    kinds = ("scratch", "mae", "rcmae")
    full = [s for s in seeds if all((k, s) in got for k in kinds)]
    if not full:
        return None
    drops = {k: {s: float(got[k, s]["relative_drop"]) for s in full} for k in kinds}
    verdict = stability_verdict(drops)
    by_name = {j.estimate.name: j for j in verdict.judged}
    return {
        "labels_per_class": int(budget),
        "seeds": full,
        "relative_drop": {k: [drops[k][s] for s in full] for k in kinds},
        "kept": {k: [1.0 - drops[k][s] for s in full] for k in kinds},
        "clean_acc": {k: [float(got[k, s]["clean_acc"]) for s in full] for k in kinds},
        "mean_acc": {k: [float(got[k, s]["mean_acc"]) for s in full] for k in kinds},
        "estimates": [
            {
                "name": e.name,
                "estimate": e.estimate,
                "lo": e.lo,
                "hi": e.hi,
                "p": e.p,
                "reading": by_name[e.name].reading if e.name in by_name else e.reading,
            }
            for e in stability_estimates(drops)
        ],
        "verdict": verdict.verdict,
        "n": verdict.n,
        "seeds_needed": verdict.seeds_needed,
    }
