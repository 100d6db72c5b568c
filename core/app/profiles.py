"""The dashboard's profiles (full, quick) and what follows from one: the default trio of models, their default
landscape and flatness specs, the Overview's defaults that housekeeping keeps, and the cache cap run after each job.
"""

from __future__ import annotations

import logging
import os
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.app.generalization_tasks import cached_study, first_run_spec
from core.app.registry import Job
from core.app.zoo import default_configs
from core.errors import LandscapeError
from core.measure import FlatnessSpec, SurfaceSpec
from core.models import checkpoint_path
from core.paths import cache_root
from core.store import apply_cache_cap, content_hash, to_plain

log = logging.getLogger(__name__)

DEFAULT_GRID = 17  # 2**4 + 1: the 5x5 and 9x9 pictures come first and are reused by the 17x17
# Measured on the default trio (1-D, span 1): the loss is 1.6-2.9x its centre value at |alpha| = 0.5 and 4-9x at 1,
# with basins ~0.11 wide; span 0.5 keeps the basin and its walls in view instead of wasting the grid on the cliffs.
DEFAULT_SPAN = 0.5
COARSE_LEVELS = (5, 9, 17, 33, 65, 129)


@dataclass(frozen=True)
class Profile:
    """What the dashboard prepares on first run: changes to the default trio's training, landscapes and flatness.

    Attributes:
        name: "full" (the real defaults) or "quick" (micro models on synthetic data: demos, CI, browser tests).
        train: TrainConfig fields changed from `core.app.zoo.default_configs()`.
        surface: SurfaceSpec fields for the default landscapes (grid, span, samples).
        flatness: FlatnessSpec fields for the default flatness numbers.
    """

    name: str
    train: dict
    surface: dict
    flatness: dict


PROFILES = {
    "full": Profile("full", {}, {"grid": DEFAULT_GRID, "span": DEFAULT_SPAN, "samples": 256}, {}),
    # The same runs as tests/conftest.py's `trained_ckpts` (micro, synthetic, 3 epochs): tests reuse those files.
    "quick": Profile(
        "quick",
        {"preset": "micro", "data": "synthetic", "epochs": 3, "batch_size": 32, "warmup_epochs": 1, "n_snapshots": 3},
        {"grid": 5, "span": DEFAULT_SPAN, "samples": 64},
        {
            "samples": 32,
            "top_k": 2,
            "max_iter": 10,
            "trace_probes": 4,
            "sharpness_samples": 2,
            "robustness_draws": 2,
            "sigmas": (0.0, 0.1, 0.3),
        },
    ),
}


def dashboard_profile(name: str | None = None) -> Profile:
    """The profile named, or env `LANDSCAPE_DASHBOARD_PROFILE` ("full" by default).

    Raises:
        LandscapeError: an unknown profile name.
    """
    name = name or os.environ.get("LANDSCAPE_DASHBOARD_PROFILE") or "full"
    if name not in PROFILES:
        raise LandscapeError(f"unknown dashboard profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def default_trio(profile: Profile | None = None) -> dict[str, Any]:
    """kind -> TrainConfig of the default MAE, RC-MAE and Sup-ViT under a profile."""
    profile = profile or dashboard_profile()
    return {kind: replace(cfg, **profile.train) for kind, cfg in default_configs().items()}


def overview_defaults() -> dict[str, Any]:
    """What the Overview needs, for `core.store.housekeeping` (which never prunes it unless asked): the profiles ("full"
    and the one the dashboard runs), their default trios' checkpoint paths, the default surface and flatness specs."""
    profiles = {"full": PROFILES["full"]}
    try:
        current = dashboard_profile()
        profiles[current.name] = current
    except LandscapeError:
        pass
    trios = [{k: checkpoint_path(c) for k, c in default_trio(p).items()} for p in profiles.values()]
    return {
        "profiles": list(profiles.values()),
        "trios": trios,
        "surfaces": [default_surface_spec("-", **p.surface) for p in profiles.values()],
        "flatness": [default_flatness_spec("-", **p.flatness) for p in profiles.values()],
        "derived": first_run_derived(zip(profiles.values(), trios, strict=True)),
    }


def first_run_derived(profile_trios: Any) -> list[str]:
    """The first-run job's fine-tuned runs of the default models (the Overview's generalization sentence), for each
    (profile, its trio's checkpoint paths), as `core.app.generalization_tasks` finds them in the cache; nothing if
    that measurement is absent or changed."""
    out: list[str] = []
    try:
        for profile, trio in profile_trios:
            ckpts = {(k, 0): str(trio[k]) for k in ("mae", "rcmae") if k in trio and Path(trio[k]).exists()}
            if len(ckpts) < 2:
                continue
            out += [run.path for run in cached_study(first_run_spec(profile), ckpts).runs if Path(run.path).exists()]
    except Exception:  # noqa: BLE001 - an optional measurement must never break housekeeping
        pass
    return out


def task_key(kind: str, *parts: Any) -> str:
    """A job key from plain values: two sessions asking for the same work get the same key."""
    return f"{kind}:{content_hash(to_plain([str(cache_root()), *parts]))[:24]}"


def default_surface_spec(checkpoint: str, **overrides: Any):
    """The landscape the overview shows for a model: own loss, 2-D, the profile's grid, span and images."""
    base = dict(checkpoint=str(checkpoint), loss="own", dim=2) | dashboard_profile().surface
    return SurfaceSpec(**(base | overrides))


def default_flatness_spec(checkpoint: str, **overrides: Any):
    """The flatness numbers the overview shows (Hessian top eigenvalues, trace, sharpness, robustness) under the
    profile's settings."""
    return FlatnessSpec(**({"checkpoint": str(checkpoint)} | dashboard_profile().flatness | overrides))


def nested_levels(grid: int) -> list[int]:
    """Grid sizes computed one after another for a coarse-first picture: 5, 9, ... up to `grid` when `grid` is
    2**k + 1 (the coarse levels share their points with it), else `grid` alone."""
    if grid in COARSE_LEVELS:
        return [g for g in COARSE_LEVELS if g <= grid]
    return [grid]


def cache_cap_after_job(job: Job) -> None:
    """The size cap `LANDSCAPE_CACHE_MAX` after each job, as the dashboard registry's `after_job` hook (run before
    the job is marked finished, so a waiter sees the pruned cache); what the job used is kept and the Overview's
    defaults too. Housekeeping never fails a job (`core.store.housekeeping.apply_cache_cap`)."""
    if not os.environ.get("LANDSCAPE_CACHE_MAX"):
        return

    try:
        res = apply_cache_cap(job_started=job.started, overview=overview_defaults())
    except Exception:  # noqa: BLE001 - housekeeping must never kill a worker
        log.error("cache cap after job %s failed:\n%s", job.key, traceback.format_exc())
        return
    if res is not None and res.removed:
        log.info("cache cap after job %s: %s", job.key, res.describe())
