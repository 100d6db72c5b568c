"""Which function is compared: RC-MAE vs MAE on the MAE term, MAE vs Sup-ViT relative, RC-MAE's full objective a
secondary line; and one rule (`core.report.comparison.COMPARISONS`, read through `compared_function` / `comparisons`)
decides it for the summary behind the Overview, the Flatness page and docs/FINDINGS.md (core.studies.claims): change
it and all three follow."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

import core.report.comparison as comparison
import core.report.summary as summary
import core.studies.claims as claims
from core.report.comparison import (
    COMPARISONS,
    Comparison,
    compared_function,
    comparisons,
    function_of_spec,
    needs_extra,
    overrides,
    variant_label,
)
from core.report.summary import ModelFacts, executive_summary

APP = Path(__file__).resolve().parent.parent / "app.py"


def test_the_rule():
    assert [compared_function(k) for k in ("mae", "rcmae", "sup")] == ["mae_own", "rcmae_mae", "sup_own"]
    assert compared_function("rcmae", "mae") == "rcmae_mae" and compared_function("mae", "sup") == "mae_own"
    assert claims.OWN_MEASURE == {"mae": "mae_own", "rcmae": "rcmae_mae", "sup": "sup_own"}
    same, rel = comparisons(counted=True)
    assert (same.a, same.b, same.same_function, same.relative) == ("rcmae", "mae", True, False)
    assert (rel.a, rel.b, rel.same_function, rel.relative) == ("mae", "sup", False, True)
    (full,) = comparisons(counted=False)
    assert full.fa == "rcmae_full" and full.relative and "positive semi-definite" in full.reason
    assert overrides("rcmae_mae") == {"rcmae_terms": "mae"} and overrides("mae_own") == {}
    assert needs_extra("rcmae") == "rcmae_mae" and needs_extra("mae") is None and needs_extra("probe") is None
    assert variant_label("RC-MAE", "rcmae_mae") == "RC-MAE · MAE term"
    with pytest.raises(KeyError):
        compared_function("probe")
    spec = SimpleNamespace(loss="own", rcmae_terms="mae")
    assert function_of_spec("rcmae", spec) == "rcmae_mae"
    assert function_of_spec("rcmae", replace_ns(spec, rcmae_terms="full")) == "rcmae_full"
    assert function_of_spec("mae", replace_ns(spec, loss="probe")) is None


def replace_ns(ns: SimpleNamespace, **kw) -> SimpleNamespace:
    return SimpleNamespace(**(vars(ns) | kw))


def _facts(kind: str, flat: float, function: str = "", seed: int = 0) -> ModelFacts:
    return ModelFacts(
        label=f"{kind}{function} s{seed}",
        kind=kind,
        params_deployed=1,
        params_training=1,
        flops_per_image=1,
        latency_ms=(0.4, 0.0),
        epoch_times=(1.0,),
        probe_acc=None,
        top_eigenvalue=10.0 * flat,
        trace=100.0 * flat,
        sharpness=0.02 * flat,
        basin_width=0.5 / flat,
        centre_loss=1.0,
        function=function,
        seed=seed,
    )


@pytest.fixture
def swapped(monkeypatch: pytest.MonkeyPatch):
    """The rule changed in its one place: RC-MAE counted on its full objective (what the issue says not to do)."""
    changed = tuple(replace(c, fa="rcmae_full") if c.counted and c.a == "rcmae" else c for c in COMPARISONS)
    monkeypatch.setattr(comparison, "COMPARISONS", changed)
    return changed


JITTER = (1.0, 1.05, 0.96)  # seed-to-seed variation of MAE's numbers (the rule decides from 2 seeds on)
FACTS = {  # RC-MAE flatter than MAE on its MAE term, sharper on its full objective; three seeds each
    f.label: f
    for k in range(3)
    for f in (
        _facts("rcmae", 2.0, seed=k),
        _facts("rcmae", 0.5, "rcmae_mae", seed=k),
        _facts("mae", JITTER[k], seed=k),
        _facts("sup", 3.0, seed=k),
    )
}


def test_the_summary_behind_the_overview_follows_the_rule(swapped):
    from core.report.briefing import compose

    p = executive_summary(FACTS).points[1]
    assert p.numbers["rcmae_vs_mae_verdict"] == "contradicts"  # now decided on the full objective
    assert compose(FACTS).points[1].verdict == "contradicts"


def test_the_summary_under_the_default_rule():
    p = executive_summary(FACTS).points[1]
    assert p.numbers["rcmae_vs_mae_verdict"] == "supports" and p.numbers["full_rcmae_vs_mae_verdict"] == "contradicts"


def test_compare_measured_follows_the_rule(swapped):
    items = [  # three seeds each, paired in label order (Measured carries no seed)
        m
        for k, j in enumerate(JITTER)
        for m in (
            comparison.Measured(f"rc {k}", "rcmae", "rcmae_full", 20.0, 200.0, 0.04, None, None, 1.0),
            comparison.Measured(f"rc {k} · MAE term", "rcmae", "rcmae_mae", 5.0, 50.0, 0.01, None, None, 1.0),
            comparison.Measured(f"mae {k}", "mae", "mae_own", 10.0 * j, 100.0 * j, 0.02 * j, None, None, 1.0),
        )
    ]
    first = summary.compare_measured(items)[0]
    assert first[0].fa == "rcmae_full" and first[2] == "contradicts"
    assert summary.compare_measured(items[:3])[0][2] == "undetermined"  # one seed each: nothing decided


def test_the_overview_and_flatness_pages_follow_the_rule(dashboard_cache, monkeypatch: pytest.MonkeyPatch, swapped):
    """Both pages, rendered under the changed rule, no longer compare RC-MAE with MAE on one function (under the
    default rule they do: tests/test_app.py test_overview_prepared / test_flatness_prepared)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from pages._ui import registry

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    monkeypatch.delenv("LANDSCAPE_JOB_WORKERS", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        for job in registry().jobs():
            job.wait(60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        overview = "\n".join(m.value for m in at.markdown)
        assert "Secondary line, not counted" in overview  # the stability details are drawn
        assert "On one function" not in overview  # the stability details now rank the full objective
        at.switch_page("pages/flatness.py").run()
        for job in registry().jobs():
            job.wait(60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        flat = "\n".join(m.value for m in at.markdown)
        assert "RC-MAE vs MAE, each on its own objective, relative numbers (counted)" in flat
        assert "On one function" not in flat
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()


def test_findings_follow_the_rule(swapped, monkeypatch: pytest.MonkeyPatch):
    """reproduce's claim-2 table and its flatness points read the function `compared_function` names."""
    seen: list[tuple[str, str]] = []

    def table(r, title, a, b, *args, **kw):
        seen.append((title, a, b))
        return SimpleNamespace(title=title)

    monkeypatch.setattr(claims, "comparison_table", table)
    for name in ("convergence_table", "setup_items", "caveats"):
        monkeypatch.setattr(claims, name, lambda *a, **k: ())
    monkeypatch.setattr(claims, "generalization_claim", lambda *a, **k: None)
    r = SimpleNamespace(spec=SimpleNamespace(note=""), seeds=(0,), convexity={})
    claims.build_findings(r, {}, "cmd")
    counted = {title: (a, b) for title, a, b in seen}
    assert counted["Pre-training loss"] == ("rcmae_full", "mae_own")
    # flatness points: each kind's own-objective numbers come from the measure compared_function names
    monkeypatch.setattr(claims, "common_threshold", lambda *a, **k: 0.0)
    monkeypatch.setattr(claims, "landscape_numbers", lambda m, spec, relative, threshold=None: {"m": m})
    measured = {(k, 0): k for k in ("mae_own", "rcmae_mae", "rcmae_full", "sup_own")}
    measured |= {(f"{k}_probe", 0): k for k in ("mae", "rcmae", "sup")}
    r = SimpleNamespace(spec=None, seeds=(0,), measured=measured)
    _, fam = claims.flatness_points(r)
    assert fam["own objective"][("rcmae", 0)]["m"] == "rcmae_full"


def test_findings_under_the_default_rule(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(claims, "common_threshold", lambda *a, **k: 0.0)
    monkeypatch.setattr(claims, "landscape_numbers", lambda m, spec, relative, threshold=None: {"m": m})
    measured = {(k, 0): k for k in ("mae_own", "rcmae_mae", "rcmae_full", "sup_own")}
    measured |= {(f"{k}_probe", 0): k for k in ("mae", "rcmae", "sup")}
    _, fam = claims.flatness_points(SimpleNamespace(spec=None, seeds=(0,), measured=measured))
    assert {k: fam["own objective"][(k, 0)]["m"] for k in ("mae", "rcmae", "sup")} == claims.OWN_MEASURE


def test_a_comparison_is_frozen():
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        COMPARISONS[0].fa = "x"  # type: ignore[misc]
    assert isinstance(COMPARISONS[0], Comparison)
