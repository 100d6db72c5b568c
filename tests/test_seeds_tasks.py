"""Tests for core/app/seeds_tasks.py: the Overview's evidence job adds seeds measured as the first run measures seed 0,
and the briefing's verdicts are composed over every seed with the one rule (paired by seed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.app.first_run import DefaultsResult, gather_facts
from core.app.profiles import dashboard_profile, default_trio
from core.app.registry import JobRegistry
from core.app.seeds_tasks import add_seeds_task, seed_trio, seeds_behind, with_seeds
from core.models import checkpoint_path
from core.report import ModelFacts, claim_verdict, compose, premise_estimates
from core.report.briefing import generalization_accuracy


@pytest.fixture(scope="module")
def evidence(dashboard_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """The quick profile's first run (copied) plus the evidence job to 2 seeds."""
    root = tmp_path_factory.mktemp("seeds") / "cache"
    shutil.copytree(dashboard_cache, root)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(root))
        mp.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
        profile = dashboard_profile("quick")
        trio = {k: str(checkpoint_path(c)) for k, c in default_trio(profile).items()}
        first = DefaultsResult(paths=trio, labels={k: k for k in trio})
        first.facts = gather_facts(first, profile)
        reg = JobRegistry()
        job = reg.submit("seeds", "seeds", add_seeds_task(2, profile))
        finished = job.wait(300)
        reg.shutdown()
        assert finished and job.ok, job.error
        merged = with_seeds(first, job.result, profile)
        yield profile, first, job.result, merged


def test_the_job_trains_seed_k_and_measures_it_with_seed_ks_measurement_seeds(evidence):
    profile, first, extra, merged = evidence
    assert extra.seeds == [1] and extra.target == 2
    for kind, cfg in seed_trio(profile, 1).items():
        assert cfg.seed == 1 and extra.paths[kind, 1] == str(checkpoint_path(cfg))
    seeds = {f.seed for f in extra.facts.values() if isinstance(f, ModelFacts)}
    assert seeds == {1}
    # the first run's facts are seed 0's, so the merged facts stand on two seeds
    assert {f.seed for f in first.facts.values() if isinstance(f, ModelFacts)} == {0}
    assert seeds_behind(first) == 1 and seeds_behind(merged) == 2
    # flatness of seed 1 was measured (the same settings as seed 0's, seed 1's probes and directions)
    mae1 = next(f for f in extra.facts.values() if isinstance(f, ModelFacts) and f.kind == "mae" and not f.function)
    mae0 = first.facts["mae"]
    assert mae1.top_eigenvalue is not None and mae1.top_eigenvalue != mae0.top_eigenvalue


def test_the_briefing_over_the_seeds_uses_the_premise_rule(evidence):
    _, first, _, merged = evidence
    gen = merged.facts["generalization"]
    assert gen["seeds"] == [0, 1] and all(len(v) == 2 for v in gen["val_acc"].values())
    b = compose(merged.facts, "en")
    general = b.point("general")
    # the same verdict as docs/FINDINGS.md's premise rule on the same numbers
    cv = claim_verdict(premise_estimates(generalization_accuracy(gen)))
    mapped = {"reproduced": "supports", "contradicted": "contradicts"}.get(cv.verdict, cv.verdict)
    assert general.verdict == mapped and general.numbers["gen_n"] == 2.0
    # one seed (the first run alone): undetermined, and the reason names the rule's requirement
    one = compose(first.facts, "en").point("general")
    assert one.verdict == "undetermined" and "at least 2 are needed" in one.why


def test_the_briefing_uses_the_best_evidence_in_the_cache_whichever_job_made_it(evidence):
    """Runs of the same models and recipe count wherever they came from (here: the evidence job's, read back from the
    cache without its result, as a study on the Generalization page would leave them); the card says how many seeds."""
    profile, first, _, _ = evidence
    assert compose(first.facts, "en").point("general").seeds == 1
    found = with_seeds(first, None, profile)
    assert found.facts["generalization"]["seeds"] == [0, 1]
    assert compose(found.facts, "en").point("general").seeds == 2
