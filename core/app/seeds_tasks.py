"""The Overview's evidence job: more seeds behind the briefing, so that its verdicts sharpen as they land.

The first run measures seed 0 (the default trio). This job measures seeds 1 .. target - 1 exactly as the first run
measures seed 0: the trio trained with seed k, its default landscapes and flatness numbers with seed k's measurement
seeds (`core.app.first_run.measurement_seeds`), and the fine-tuning of seed k's MAE / RC-MAE and scratch at the
first-run budget. Each seed is published when it lands (`SeedsResult`): the briefing then composes its verdicts over
every seed with the one rule of `core.report.verdicts` (paired by seed). One job per (profile, target), shared by
every session; everything is cached, so a larger target reuses the seeds a smaller one measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.app.first_run import DefaultsResult, gather_facts, measurement_seeds
from core.app.generalization_tasks import (
    finetune_one,
    first_run_spec,
    generalization_facts_by_seed,
    pretrained_paths,
)
from core.app.profiles import Profile, dashboard_profile, default_flatness_spec, default_surface_spec, default_trio
from core.app.registry import JobContext
from core.app.roi_tasks import dashboard_roi, roi_facts
from core.app.stability_tasks import stability_facts
from core.app.tasks import FlatnessBatch, SurfaceBatch, flatness_into, surfaces_into, train_into
from core.app.zoo import KIND_LABEL
from core.measure import INPUT_ROBUSTNESS_KIND
from core.paths import cache_root
from core.report import ModelFacts, msg, same_function_specs
from core.store import files_state

SEED_TARGETS = (3, 5, 10)  # the Overview's offers: the seeds behind its verdicts
EVIDENCE_SEEDS = 16  # seeds looked up in the cache for the best evidence (the evidence job, the Generalization page)
# Shares of one seed's work, measured on the first run (training dominates, then the fine-tuning).
_SHARE_TRAIN, _SHARE_MEASURE = 0.6, 0.2


@dataclass
class SeedsResult:
    """What the evidence job measured so far.

    Attributes:
        target: seeds 0 .. target - 1 when done.
        seeds: the seeds beyond 0 measured completely, in order.
        facts: label -> ModelFacts of those seeds (seed-tagged; RC-MAE also on MAE's loss), as `gather_facts`.
        paths: (kind, seed) -> checkpoint of those seeds' trios.
    """

    target: int
    seeds: list[int] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    paths: dict[tuple[str, int], str] = field(default_factory=dict)

    def copy(self) -> SeedsResult:
        return SeedsResult(self.target, list(self.seeds), dict(self.facts), dict(self.paths))


def seed_trio(profile: Profile, seed: int) -> dict[str, Any]:
    """kind -> TrainConfig of the default trio with model seed `seed`."""
    return {kind: replace(cfg, seed=seed) for kind, cfg in default_trio(profile).items()}


def seed_label(kind: str, seed: int) -> str:
    return f"{KIND_LABEL.get(kind, kind)} (seed {seed})"


def add_seeds_task(target: int, profile: Profile | None = None):
    """The job: seeds 1 .. target - 1 of the default trio, each measured as the first run measures seed 0.

    Args:
        target: the number of seeds the briefing should stand on (one of `SEED_TARGETS`, or any n >= 2).
        profile: the dashboard profile (default: `dashboard_profile()`).
    """
    profile = profile or dashboard_profile()

    def run(ctx: JobContext) -> SeedsResult:
        out = SeedsResult(target)
        extra = list(range(1, target))
        for i, seed in enumerate(extra):
            lo, span = i / len(extra), 1 / len(extra)
            res = DefaultsResult()
            for j, (kind, cfg) in enumerate(seed_trio(profile, seed).items()):
                res.labels[kind] = seed_label(kind, seed)
                a = lo + span * _SHARE_TRAIN * j / 3
                res.paths[kind] = train_into(ctx, cfg, res.labels[kind], a, a + span * _SHARE_TRAIN / 3)
            measure = measurement_seeds(seed)
            a, b = lo + span * _SHARE_TRAIN, lo + span * (_SHARE_TRAIN + _SHARE_MEASURE)
            surface = {**profile.surface, **measure}
            specs = {res.labels[k]: default_surface_spec(p, **surface) for k, p in res.paths.items()}
            specs |= same_function_specs(res.paths, res.labels, default_surface_spec, **surface)
            surfaces_into(ctx, specs, SurfaceBatch(), a, (a + b) / 2, lambda: None)
            flat = {**profile.flatness, **measure}
            fspecs = {res.labels[k]: default_flatness_spec(p, **flat) for k, p in res.paths.items()}
            fspecs |= same_function_specs(res.paths, res.labels, default_flatness_spec, **flat, robustness=False)
            flatness_into(ctx, fspecs, FlatnessBatch(), (a + b) / 2, b, lambda: None)
            spec = first_run_spec(profile)
            bases = {k: res.paths[k] for k in ("mae", "rcmae")}
            for j, kind in enumerate(("scratch", "mae", "rcmae")):
                c = b + (lo + span - b) * j / 3
                finetune_one(ctx, spec, kind, spec.budgets[0], seed, bases, c, c + (lo + span - b) / 3)
            facts = gather_facts(res, profile, measure, generalization=False)
            out.facts |= {f"{key} #{seed}": f for key, f in facts.items()}
            out.paths |= {(k, seed): p for k, p in res.paths.items()}
            out.seeds.append(seed)
            ctx.set_partial(out.copy())
            ctx.progress(lo + span, msg("job.seed_done", seed=seed, n=len(out.seeds) + 1, target=target))
        return out

    return run


def with_seeds(
    res: DefaultsResult, extra: SeedsResult | None, profile: Profile | None = None, roi: dict | None = None
) -> DefaultsResult:
    """The first run's result with the best evidence in the cache for the same models and regime: the evidence job's
    seeds (their facts beside seed 0's), and the fine-tuning measurement over every seed whose MAE, RC-MAE and scratch
    runs at the first-run budget and recipe are cached, whichever job made them (the evidence job or a study on the
    Generalization page). The briefing composes its verdicts over all of them and says how many stand behind each."""
    profile = profile or dashboard_profile()
    out = res.copy()
    if extra is not None and extra.seeds:
        out.facts = {**res.facts, **extra.facts}
    spec = replace(first_run_spec(profile), seeds=EVIDENCE_SEEDS)
    ckpts = {ks: p for ks, p in pretrained_paths(spec).items() if ks[1] > 0}
    ckpts |= {ks: p for ks, p in (extra.paths if extra is not None else {}).items() if ks[0] in ("mae", "rcmae")}
    ckpts |= {(k, 0): p for k, p in res.paths.items() if k in ("mae", "rcmae")}
    gen = generalization_facts_by_seed(ckpts, profile)
    if gen is not None:
        out.facts["generalization"] = gen
    stab = stability_facts(ckpts=ckpts, profile=profile)
    if stab is not None:
        out.facts["stability"] = stab
    if roi is not None:  # the pre-training-length ladder, read by a light job (`roi_evidence_task`)
        out.facts["roi"] = roi
    return out


def roi_evidence_task(profile: Profile | None = None):
    """A light job: the pre-training-length ladder's facts over every seed the cache holds (`core.app.roi_facts`;
    reading a full ladder takes seconds, so the Overview never waits for it on its own thread)."""
    profile = profile or dashboard_profile()

    def run(ctx: JobContext) -> dict | None:
        return roi_facts(profile, spec=dashboard_roi(profile, seeds=EVIDENCE_SEEDS))

    return run


# Where the briefing's evidence lands: fine-tuned runs (files) and their input-corruption results (store entries,
# finished once their meta.json is written).
_EVIDENCE = (("finetune", "*.pt"), (INPUT_ROBUSTNESS_KIND, "*/meta.json"))


def evidence_signature() -> tuple[tuple[int, int], ...]:
    """What changes when evidence lands in the cache: per kind of evidence, the number of finished files and the
    newest one's mtime. The Overview recomposes its briefing when it changes, so a study run elsewhere (the evidence
    job, the Generalization page's study or its corruption section) is not missed (`core.store.files_state`)."""
    return tuple(files_state(cache_root() / folder, pattern) for folder, pattern in _EVIDENCE)


def seeds_behind(res: DefaultsResult) -> int:
    """How many seeds the briefing of `res` stands on (the model seeds of its facts)."""
    return len({f.seed for f in res.facts.values() if isinstance(f, ModelFacts) and f.seed is not None}) or 1
