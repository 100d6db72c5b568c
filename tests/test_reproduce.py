"""Tests for core/studies/reproduce.py: an end-to-end --quick run (micro models on synthetic data, the settings of
tests/conftest.py) served from the cache the second time. The landscape numbers of a known surface are tested in
tests/test_claims.py, the verdict rule and the report's markdown in tests/test_findings.py."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from core.studies.measuring import PROBE_EXCLUDE, ReproduceSpec, hessian_numbers, run_measurements
from core.studies.reproduce import quick_spec, stderr_log

# --------------------------------------------------------------------------------------------------------------------
# End to end


def test_quick_spec_trains_the_conftest_runs():
    from tests.conftest import TINY_PROBE, tiny_train_config

    spec = quick_spec()
    for kind in ("mae", "rcmae", "sup"):
        assert spec.train_config(kind, 0).key() == tiny_train_config(kind).key()
    assert spec.probe == TINY_PROBE
    assert ReproduceSpec().train_config("mae", 1).key() == replace(ReproduceSpec().train_config("mae", 0), seed=1).key()


@pytest.mark.slow
def test_quick_run_end_to_end_and_cached(tmp_path, monkeypatch, capsys):
    from core.app.cli import main

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "docs" / "FINDINGS.md"
    t0 = time.perf_counter()
    assert main(["reproduce", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    first = time.perf_counter() - t0
    io = capsys.readouterr()
    assert io.out.strip().splitlines()[-1] == str(out)
    assert "[reproduce" in io.err and "verdict:" in io.err
    md = out.read_text()
    for title in ("## 1.", "## 2.", "## 3.", "## Setup", "## Summary"):
        assert title in md
    # + the premise claim and its flatness follow-up (core/studies/generalization.py), the stability claim under input
    # corruptions and its follow-up (core/studies/stability.py)
    assert md.count("**Verdict: ") == 7
    assert "## 6. Stability: pre-trained then fine-tuned models keep more" in md
    assert "## 7. Follow-up: flatness predicts stability under input corruptions" in md
    assert "## How much pre-training pays: the pre-training-length ladder" in md  # core/studies/roi.py
    assert md.index("## 1. Premise: self-supervised pre-training") < md.index("## 2. MAE's pre-training landscape")
    assert "| **basin width (increase < 10% of L(centre)) (primary)** |" in md
    assert "5x5 grid" in md and "2 model seeds (0, 1)" in md
    # claim 2 across regimes (core.studies.regimes, tests/test_regimes.py): 3 momenta x 2 lengths, a row and a verdict
    # each
    regimes = md.split("## Claim 2 across regimes")[1].split("\n## ")[0]
    assert sum(line.startswith(("| auto (", "| 0.99 |", "| 0.996 |")) for line in regimes.splitlines()) == 6
    assert "claim2_regimes." in regimes
    # Claim 2 counts the convex area of the full Hessian (core.measure.convexity) beside the slice's convex fraction.
    assert "### Convex region of the full Hessian" in md
    assert "| **convex area, pre-training loss (share of the 3x3 points with abs(λmin/λmax) < 0.1) (primary)** |" in md
    assert "claim2_convexity_pretrain" in md and "claim2_convexity_probe" in md
    links = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("- [")]
    assert len(links) >= 8
    for link in links:
        assert (out.parent / link).is_file(), link

    t0 = time.perf_counter()
    assert main(["reproduce", "--quick", "--out", str(out), "--device", "cpu", "--workers", "1"]) == 0
    second = time.perf_counter() - t0
    assert out.read_text() == md
    assert second < first

    # The RC-MAE probe's landscape and Hessian move its (frozen, EMA) teacher encoder as well as the head: the same
    # number of parameters as for the MAE probe.
    spec = replace(quick_spec(), device="cpu", workers=1)  # cached: read in this process, no pool to start
    r = run_measurements(spec, stderr_log)
    n_mae = r.measured["mae_probe", 0].hessian["n_params"]
    assert n_mae == r.measured["rcmae_probe", 0].hessian["n_params"]
    head_only = hessian_numbers(r.probes["rcmae", 0], "own", spec, exclude=PROBE_EXCLUDE + ("encoder.*",))
    assert head_only["n_params"] < n_mae
