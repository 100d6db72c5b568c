"""The dashboard's first run ("prepare defaults"): train the default trio and probes, their landscapes coarse-first,
flatness, the fine-tuning measurement and the summary facts the Overview reads, published stage by stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import core.app.generalization_tasks as generalization_tasks
import core.app.stability_tasks as stability_tasks
import core.app.zoo as zoo
from core.app.generalization_tasks import generalization_facts
from core.app.profiles import Profile, dashboard_profile, default_flatness_spec, default_surface_spec, default_trio
from core.app.registry import JobContext, error_line
from core.app.tasks import FlatnessBatch, SurfaceBatch, flatness_into, surfaces_into, train_into
from core.app.zoo import KIND_LABEL
from core.errors import LandscapeError
from core.measure import SurfaceSpec, compute_surface
from core.report import from_report, msg, needs_extra, overrides, same_function_specs

log = logging.getLogger(__name__)


@dataclass
class DefaultsResult:
    """What the overview shows: the default trio, its landscapes, flatness numbers and summary facts.

    Attributes:
        paths: kind -> checkpoint path.
        labels: kind -> display label.
        surfaces: the default landscapes (`SurfaceBatch`, keyed by label).
        flatness: the default flatness reports (`FlatnessBatch`, keyed by label).
        facts: kind -> `core.report.summary.ModelFacts` (empty when they could not be gathered).
        errors: stage -> one-line reason for a stage that failed (the others still show).
        stage: "train", "landscapes", "flatness", "generalization", "summary" or "done".
    """

    paths: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    surfaces: SurfaceBatch = field(default_factory=SurfaceBatch)
    flatness: FlatnessBatch = field(default_factory=FlatnessBatch)
    facts: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stage: str = "train"

    def copy(self) -> DefaultsResult:
        return DefaultsResult(
            dict(self.paths),
            dict(self.labels),
            self.surfaces.copy(),
            self.flatness.copy(),
            dict(self.facts),
            dict(self.errors),
            self.stage,
        )


# Shares of the whole preparation: each stage's measured share of the time, so that the bar moves evenly and the
# time left it implies holds (`python bench/first_run.py`, 2026-12-05, quiet 2 cores, 96.8 s: train 40.7 s,
# landscapes 17.8 s, flatness 23.1 s, fine-tuning 9.8 s, the corruption suite 3.3 s, summary 2.0 s).
_SHARE_TRAIN, _SHARE_SURF, _SHARE_FLAT, _SHARE_GEN = 0.42, 0.18, 0.24, 0.10
_SHARE_STAB = 0.035  # the corruption suite on the three fine-tuned / scratch runs (evaluation only); summary: the rest


def measurement_seeds(seed: int) -> dict[str, int]:
    """The surface / flatness spec fields that follow model seed k (directions, evaluation images, masks, probes), as
    `core.studies.measuring.ReproduceSpec.at_seed` moves them; seed 0 (the first run) changes nothing."""
    return {"seed": seed, "data_seed": seed, "mask_seed": seed} if seed else {}


def prepare_defaults_task(profile: Profile | None = None) -> Callable[[JobContext], DefaultsResult]:
    """The first-run job: train the default MAE / RC-MAE / Sup-ViT (and probes), compute their default
    landscapes (all three at 5x5 first, then finer) and flatness numbers, and gather the summary facts. Everything
    is cached, so a second run finishes in seconds.

    Args:
        profile: what to prepare (default: `dashboard_profile()`).
    """
    profile = profile or dashboard_profile()

    def run(ctx: JobContext) -> DefaultsResult:

        out = DefaultsResult()

        def publish() -> None:
            ctx.set_partial(out.copy())

        cfgs = default_trio(profile)
        n = len(cfgs)
        for i, (kind, cfg) in enumerate(cfgs.items()):
            label = KIND_LABEL.get(kind, kind)
            out.labels[kind] = label
            lo, hi = _SHARE_TRAIN * i / n, _SHARE_TRAIN * (i + 1) / n
            out.paths[kind] = train_into(ctx, cfg, label, lo, hi)
            publish()
        out.stage = "landscapes"
        publish()
        specs = {out.labels[k]: default_surface_spec(p, **profile.surface) for k, p in out.paths.items()}
        # RC-MAE also on MAE's loss (its MAE term), so that the two are compared on one function
        # (core.report.comparison).
        specs |= same_function_specs(out.paths, out.labels, default_surface_spec, **profile.surface)
        hi = _SHARE_TRAIN + _SHARE_SURF
        surfaces_into(ctx, specs, out.surfaces, _SHARE_TRAIN, hi, publish)
        out.stage = "flatness"
        publish()
        fspecs = {out.labels[k]: default_flatness_spec(p, **profile.flatness) for k, p in out.paths.items()}
        # The accuracy under weight noise reads the probe, the same for every loss: not computed twice.
        no_noise = profile.flatness | {"robustness": False}
        fspecs |= same_function_specs(out.paths, out.labels, default_flatness_spec, **no_noise)
        flatness_into(ctx, fspecs, out.flatness, hi, hi + _SHARE_FLAT, publish)
        # Fine-tuning at a few labels per class vs the same ViT from scratch: the Overview's generalization sentence.
        out.stage = "generalization"
        publish()
        lo = hi + _SHARE_FLAT
        try:
            # looked up on the module at call time: bench/first_run.py --no-generalization swaps it out
            generalization_tasks.first_run_generalization(ctx, out.paths, profile, lo, lo + _SHARE_GEN)
        except LandscapeError as e:
            if ctx.should_stop():
                raise
            out.errors["generalization"] = error_line(e)
        # Accuracy under input corruptions of those runs: the stability sentence (core.app.stability_tasks).
        if "generalization" not in out.errors:
            try:
                stability_tasks.first_run_stability(
                    ctx, out.paths, profile, lo + _SHARE_GEN, lo + _SHARE_GEN + _SHARE_STAB
                )
            except LandscapeError as e:
                if ctx.should_stop():
                    raise
                out.errors["stability"] = error_line(e)
        out.stage = "summary"
        ctx.progress(lo + _SHARE_GEN + _SHARE_STAB, msg("job.summary"))
        publish()
        out.facts = gather_facts(out, profile)
        out.stage = "done"
        ctx.progress(1.0, msg("job.ready"))
        return out

    return run


def gather_facts(
    res: DefaultsResult, profile: Profile | None = None, measure: dict | None = None, generalization: bool = True
) -> dict[str, Any]:
    """kind -> ModelFacts for the summary (`core.app.zoo.model_facts` on the profile's specs), completed from `res`;
    plus "generalization" (a plain dict, `core.app.generalization_tasks.generalization_facts`) once fine-tuning at a few
    labels per class is cached and `generalization`.

    Args:
        res: the trio (paths, labels) and what was computed for it.
        profile: the dashboard profile.
        measure: measurement-seed overrides of the surface and flatness specs (`measurement_seeds`; seed 0: none).
        generalization: add the fine-tuning measurement of the default trio.
    """
    profile = profile or dashboard_profile()
    measure = dict(measure or {})
    surface_spec = facts_surface_spec(None, profile, measure)
    facts: dict[str, Any] = {}
    for kind, path in res.paths.items():
        f = None
        if hasattr(zoo, "model_facts"):
            try:
                f = zoo.model_facts(path, surface_spec=surface_spec, flatness_spec={**profile.flatness, **measure})
            except LandscapeError as e:
                res.errors[res.labels.get(kind, kind)] = error_line(e)
        if f is None:
            continue
        fill: dict[str, Any] = {}
        label = res.labels.get(kind, kind)
        rep = res.flatness.reports.get(label)
        if rep is not None:
            if f.top_eigenvalue is None and rep.top_eigenvalues:
                fill["top_eigenvalue"] = float(rep.top_eigenvalues[0])
            if f.trace is None and rep.trace is not None:
                fill["trace"] = float(rep.trace)
            if f.sharpness is None and rep.sharpness:
                fill["sharpness"] = float(rep.sharpness["average"])
            if f.robustness is None and rep.robustness:
                fill["robustness"] = rep.robustness
        surf = res.surfaces.surfaces.get(label)
        for key in ("basin_width", "centre_loss"):
            if getattr(f, key) is None and surf is not None and surf.metrics.get(key) is not None:
                fill[key] = float(surf.metrics[key])
        facts[kind] = replace(f, **fill) if fill else f
    facts |= same_function_facts(res, facts, profile, measure)
    if not measure and {"rcmae", "mae"} <= set(res.paths):  # latency is a property of the machine: seed 0 only
        try:
            lat = zoo.paired_latency(res.paths["rcmae"], res.paths["mae"])
            facts["latency_pair"] = {"rcmae_ms": lat["a_ms"], "mae_ms": lat["b_ms"]}
        except LandscapeError as e:
            res.errors["latency"] = error_line(e)
    if not generalization:
        return facts
    try:
        gen = generalization_facts(res.paths, profile)  # read from the cache: None until measured
    except LandscapeError as e:
        res.errors["generalization"] = error_line(e)
        gen = None
    if gen is not None:
        facts["generalization"] = gen
    try:
        stab = stability_tasks.stability_facts(res.paths, profile)  # read from the cache: None until measured
    except LandscapeError as e:
        res.errors["stability"] = error_line(e)
        stab = None
    if stab is not None:
        facts["stability"] = stab
    return facts


def same_function_facts(
    res: DefaultsResult, facts: dict[str, Any], profile: Profile, measure: dict | None = None
) -> dict[str, Any]:
    """Extra facts for the models compared on a function other than their own objective (RC-MAE on its MAE term,
    `core.report.comparison`): "<kind>@<function>" -> ModelFacts with that function's cached flatness numbers."""
    measure = dict(measure or {})
    out: dict[str, Any] = {}
    for kind, path in res.paths.items():
        extra, own = needs_extra(kind), facts.get(kind)
        if not extra or own is None:
            continue
        surface = facts_surface_spec(extra, profile, measure)
        flat = {**profile.flatness, **overrides(extra), "robustness": False, **measure}
        try:
            f = zoo.model_facts(path, surface_spec=surface, flatness_spec=flat)
        except LandscapeError as e:
            res.errors[f"{res.labels.get(kind, kind)} ({extra})"] = error_line(e)
            continue
        out[f"{kind}@{extra}"] = replace(f, function=extra, robustness=own.robustness)
    return out


def facts_surface_spec(
    function: str | None = None, profile: Profile | None = None, measure: dict | None = None
) -> dict:
    """The landscape whose basin width and centre loss stand beside a model's flatness numbers: 2-D, the profile's
    grid, span and images, on `function` (a `core.report.comparison` key; None: the model's own objective), at the
    measurement seeds. The Overview's facts (`gather_facts`, `same_function_facts`) and the Flatness page's
    comparisons (`measured_flatness`) both read this one landscape, so their numbers agree."""
    profile = profile or dashboard_profile()
    return {"loss": "own", "dim": 2, **profile.surface, **(overrides(function) if function else {}), **(measure or {})}


def measured_flatness(
    label: str,
    kind: str,
    function: str,
    report: Any,
    path: str,
    *,
    robustness: dict | None = None,
    seed: int | None = None,
    measure: dict | None = None,
) -> tuple[Any, bool]:
    """One model's flatness numbers on one function as `core.report.compare_measured` reads them, completed as the
    Overview completes its facts: the basin width and the centre loss (the scale of the relative comparisons) from
    the cached landscape of `facts_surface_spec`.

    Args:
        label, kind, function: the model's display label, kind and function key.
        report: its `core.measure.FlatnessReport` on that function.
        path: its checkpoint.
        robustness: the accuracy-under-noise curve when the report has none (it reads the probe, whatever the loss).
        seed: its training seed (the verdicts pair by seed).
        measure: the surface spec's seed fields (direction, data and mask seeds) when not 0.

    Returns:
        (the `Measured`, whether that landscape was cached). Without it the basin width is unknown and the centre
        loss is the sharpness stage's loss at the trained weights (on the flatness report's images).
    """
    m = from_report(label, kind, function, report, robustness=robustness, seed=seed)
    spec = SurfaceSpec(checkpoint=str(path), **facts_surface_spec(function, measure=measure))
    try:
        surf = compute_surface(spec, cached_only=True)
    except LandscapeError:
        surf = None
    if surf is None or not surf.metrics:
        return m, False
    centre = surf.metrics.get("centre_loss")
    return replace(
        m,
        basin_width=surf.metrics.get("basin_width"),
        centre_loss=centre if centre is not None else m.centre_loss,
    ), True
