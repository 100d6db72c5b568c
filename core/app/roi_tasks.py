"""The dashboard's pre-training ladder: the study as a background job, what the cache holds read at once, and the
Overview's measured ROI facts.

Nothing here imports streamlit. The numbers are `core.studies.roi`'s; this module schedules them for
`core.app.registry.JobRegistry` and reads the cache (`cached_roi`: `run_roi(..., cached_only=True)`, memoized by
the state of the cache's checkpoint, fine-tuning and landscape folders, so a page rerun does not reread files).

- `dashboard_roi(profile)`: the page's ladder: `RoiSpec(seeds=3)` for "full" (its 30-epoch rung of seed 0 is the
  default MAE / RC-MAE), `quick_roi()` for "quick".
- `roi_task(spec)`: a job running the ladder with progress and a partial `RoiResult` after every (rung, seed).
- `roi_facts(profile)`: the Overview's facts (plain dict, or None when nothing is cached), and
  `core.report.roi_sentence(facts, lang)` the sentence.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.models import FinetuneConfig, finetune, finetune_summary, load_checkpoint
from core.paths import cache_root
from core.report import msg
from core.store import files_state
from core.studies import RoiResult, RoiSpec, jobs_of, quick_roi, run_roi

ROI_SEEDS = 3  # the page's default: the smallest number with a spread; `python -m core roi` runs 8
ROI_BUDGET = 10  # the Overview's sentence: labels per class (the smallest budget where the spec lacks it)

_LOCK = threading.Lock()
_MEMO: dict[tuple, RoiResult] = {}


def dashboard_roi(profile: Any = None, **overrides: Any) -> RoiSpec:
    """The page's ladder under a dashboard profile (a `core.app.profiles.Profile` or its name; default: env
    `LANDSCAPE_DASHBOARD_PROFILE`, else "full")."""
    name = getattr(profile, "name", profile) or os.environ.get("LANDSCAPE_DASHBOARD_PROFILE") or "full"
    base = quick_roi(seeds=2) if name == "quick" else RoiSpec(seeds=ROI_SEEDS)
    return replace(base, **overrides)


def _signature() -> tuple:
    """Changes whenever a checkpoint, fine-tuned run or landscape is finished, rewritten or removed (one stat per
    file: `core.store.files_state`)."""
    return tuple(
        files_state(cache_root() / sub, pattern)
        for sub, pattern in (("checkpoints", "*.pt"), ("finetune", "*.pt"), ("landscape", "*/meta.json"))
    )


def cached_roi(spec: RoiSpec) -> RoiResult:
    """Every (rung, seed) of the ladder that the cache holds (nothing computed), memoized by the cache's state."""
    key = (repr(spec.key()), _signature())
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
    r = run_roi(replace(spec, workers=1), log=lambda m: None, cached_only=True)
    with _LOCK:
        _MEMO.clear()  # one ladder at a time is enough for a page
        _MEMO[key] = r
    return r


def roi_label(spec: RoiSpec) -> str:
    return msg("label.roi", n=len(jobs_of(spec)), seeds=spec.seeds)


def roi_task(spec: RoiSpec) -> Callable[[Any], RoiResult]:
    """A job running the ladder in this process (one worker: the job reports progress and can be stopped)."""

    def run(ctx: Any) -> RoiResult:
        total = len(jobs_of(spec))
        ctx.progress(0.0, msg("job.roi", done=0, total=total))

        def log(m: str) -> None:
            ctx.progress(ctx_fraction[0], msg("job.roi_step", step=m))

        ctx_fraction = [0.0]

        def progress(done: int, tot: int) -> None:
            ctx_fraction[0] = done / max(1, tot)
            ctx.progress(ctx_fraction[0], msg("job.roi", done=done, total=tot))

        return run_roi(
            replace(spec, workers=1), log=log, progress=progress, check_stop=ctx.should_stop, on_cell=ctx.set_partial
        )

    return run


def roi_facts(profile: Any = None, spec: RoiSpec | None = None) -> dict | None:
    """The Overview's measured ROI facts from the cached ladder, or None when no rung beyond the first is cached.

    Keys: "budget"; "rungs": per rung above the first {"epochs", "wall_s" (mean seconds of one MAE run), "gain" /
    "lo" / "hi" / "n" / "reading" (MAE-FT - scratch, points), "rc_gain" etc. (RC-MAE-FT - MAE-FT: how RC-MAE
    changes the gain)}, plus the first rung's under "base"; "teacher": RC-MAE's time per epoch / MAE's at the first
    rung {"ratio", "lo", "hi", "n"}; "plateau_rung"; "seeds".
    """
    spec = spec or dashboard_roi(profile)
    r = cached_roi(spec)
    if len(r.rungs) < 1:
        return None
    nums = [b for b in spec.budgets if b is not None]
    budget = ROI_BUDGET if ROI_BUDGET in nums or not nums else min(nums)

    def rung(e: int) -> dict:
        g, rc = r.gain("mae", e, budget), r.rc_vs_mae(e, budget)
        wall = [v for v in r.cost("mae", e, "wall_s").values() if math.isfinite(v)]
        return {
            "epochs": e,
            "wall_s": sum(wall) / len(wall) if wall else math.nan,
            "gain": 100 * g.estimate if g.n else math.nan,
            "lo": 100 * g.lo,
            "hi": 100 * g.hi,
            "n": g.n,
            "reading": g.reading,
            "rc_gain": 100 * rc.estimate if rc.n else math.nan,
            "rc_lo": 100 * rc.lo,
            "rc_hi": 100 * rc.hi,
            "rc_reading": rc.reading,
        }

    first = r.rungs[0]
    tc = r.teacher_cost(first)
    return {
        "budget": budget,
        "base": rung(first),
        "rungs": [rung(e) for e in r.rungs],
        "teacher": {"ratio": tc.shown if tc.n else math.nan, "lo": tc.shown_lo, "hi": tc.shown_hi, "n": tc.n},
        "plateau_rung": r.plateau_rung(),
        "seeds": len(r.seeds()),
        "kinds": ["mae", "rcmae"],
    }


def whatif_finetune_task(paths: dict[str, str], budget: int = ROI_BUDGET) -> Callable[[Any], dict[str, dict]]:
    """The What-if page's "would longer pre-training help?": each pre-trained model (label -> checkpoint) fine-tuned
    at `budget` labels per class with the study's recipe (seed: the model's own), and the same ViT from scratch;
    label -> {"val_acc", "steps", "n_labels"} (cached runs of `core.models.finetune`, shared with the studies)."""

    def run(ctx: Any) -> dict[str, dict]:
        out: dict[str, dict] = {}
        items = list(paths.items())
        for i, (label, path) in enumerate(items):
            seed = int((load_checkpoint(path).meta.get("train") or {}).get("seed") or 0)
            jobs = [(label, False)] + ([("scratch", True)] if i == 0 else [])
            for name, scratch in jobs:
                cfg = FinetuneConfig(labels_per_class=budget, seed=seed, from_scratch=scratch)
                ctx.progress(i / len(items), msg("job.whatif_ft", model=name, n=budget))
                s = finetune_summary(finetune(path, cfg, check_stop=ctx.should_stop))
                out[name] = {"val_acc": float(s["val_acc"]), "steps": int(s["steps"]), "n_labels": int(s["n_labels"])}
        return out

    return run
