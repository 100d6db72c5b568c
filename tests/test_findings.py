"""Tests for core/report/findings.py: the report's content judged by the one rule of core/report/verdicts.py
(primaries decide, other numbers are shown), the statistics shown beside it and the markdown (pure functions of plain
numbers, checked against independent formulas and exact enumeration)."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import replace

import numpy as np
import pytest

from core.report.findings import (
    Claim,
    CorrelationRow,
    Findings,
    Row,
    Table,
    convergence_target,
    epochs_to_reach,
    format_mean_std,
    mean_std,
    premise_estimates,
    premise_pairs,
    render_markdown,
)
from core.report.verdicts import (
    CONTRADICTED,
    CONTRADICTS,
    NO_DIFFERENCE,
    REPRODUCED,
    SUPPORTS,
    UNDETERMINED,
    claim_verdict,
    correlation,
    paired,
)

# --------------------------------------------------------------------------------------------------------------------
# Statistics shown beside the verdicts


def test_mean_std_matches_statistics_module():
    vals = [0.3, 1.7, 0.9, float("nan")]
    m, s, n = mean_std(vals)
    assert n == 3
    assert m == pytest.approx(statistics.mean([0.3, 1.7, 0.9]))
    assert s == pytest.approx(statistics.stdev([0.3, 1.7, 0.9]))
    assert math.isnan(mean_std([2.0])[1]) and mean_std([2.0])[0] == 2.0
    assert mean_std([])[2] == 0


# --------------------------------------------------------------------------------------------------------------------
# Statistics


def _pearson(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    xm, ym = x - x.mean(), y - y.mean()
    return float((xm * ym).sum() / math.sqrt((xm**2).sum() * (ym**2).sum()))


def test_correlation_against_independent_formulas():
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [1.0, 8.0, 27.0, 64.0, 125.0, 216.0]  # monotone, not linear
    c = correlation("c", x, y, +1, n_perm=2000)
    assert c.n == 6
    assert c.spearman == pytest.approx(1.0)
    assert c.pearson == pytest.approx(_pearson(x, y))
    assert c.pearson < 0.99
    # Exact two-sided permutation p for a perfect rank correlation of 6: 2 of 720 orders reach |rho| = 1.
    assert c.p == pytest.approx(2 / 720, abs=0.004)
    # Ties get average ranks; NaN pairs are dropped.
    x2 = [1.0, 2.0, 2.0, 3.0, float("nan"), 5.0]
    y2 = [3.0, 1.0, 2.0, 5.0, 9.0, 4.0]
    c2 = correlation("c2", x2, y2, +1, n_perm=500)
    assert c2.n == 5
    rx, ry = [1.0, 2.5, 2.5, 4.0, 5.0], [3.0, 1.0, 2.0, 5.0, 4.0]  # ranks by hand
    assert c2.spearman == pytest.approx(_pearson(rx, ry))
    assert 0.0 < c2.p <= 1.0
    small = correlation("small", [1.0, 2.0], [2.0, 1.0], +1)
    assert math.isnan(small.pearson) and math.isnan(small.p)


def test_correlation_p_value_matches_exact_enumeration():
    x = [0.1, 0.4, 0.2, 0.9, 0.5]
    y = [1.0, 2.0, 4.0, 3.0, 5.0]
    rho = correlation("c", x, y, +1, n_perm=10).spearman
    ry = np.argsort(np.argsort(y)) + 1.0
    rx = np.argsort(np.argsort(x)) + 1.0
    exact = np.mean([abs(_pearson(rx, ry[list(p)])) >= abs(rho) - 1e-12 for p in itertools.permutations(range(5))])
    assert correlation("c", x, y, +1, n_perm=20000).p == pytest.approx(exact, abs=0.015)


def test_epochs_to_reach_and_targets():
    fast = [{"epoch": e, "val_loss": v, "probe_acc": a} for e, v, a in [(1, 1.0, 0.5), (2, 0.6, 0.7), (3, 0.5, 0.8)]]
    slow = [{"epoch": e, "val_loss": v, "probe_acc": a} for e, v, a in [(1, 1.2, 0.4), (2, 0.9, 0.6), (3, 0.7, 0.65)]]
    t = convergence_target([fast, slow], "val_loss", "below")
    assert t == 0.7  # the slow run's best
    assert epochs_to_reach(fast, "val_loss", t, "below") == 2
    assert epochs_to_reach(slow, "val_loss", t, "below") == 3
    ta = convergence_target([fast, slow], "probe_acc", "above")
    assert ta == 0.65
    assert epochs_to_reach(fast, "probe_acc", ta, "above") == 2
    assert math.isnan(epochs_to_reach(slow, "probe_acc", 0.99, "above"))


# --------------------------------------------------------------------------------------------------------------------
# The report


def _findings() -> Findings:
    # Claim one: MAE's basin is ~2x wider on every seed (primary, supports); the curvature row points the same way
    # but is shown only. Claim two: RC-MAE's trace is 5x MAE's on every seed (primary, contradicts).
    t1 = Table(
        "Own objective",
        "MAE",
        "Sup-ViT",
        (
            Row("basin width", (0.20, 0.22, 0.21), (0.10, 0.11, 0.09), "higher", primary=True),
            Row("curvature", (1.0, 1.1, 0.9), (3.0, 3.2, 2.8), "lower"),
            Row("loss at the centre", (0.4, 0.41, 0.39), (0.2, 0.2, 0.2)),
        ),
    )
    t2 = Table("Other", "RC-MAE", "MAE", (Row("trace", (5.0, 6.0, 7.0), (1.0, 1.2, 1.4), "lower", primary=True),))
    x = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    c3 = CorrelationRow("basin width (probe loss)", x, tuple(v / 10 for v in x), +1, n_perm=2000)
    return Findings(
        title="Test findings",
        command="python -m core reproduce --seeds 3",
        setup=(("seeds", "3 model seeds"),),
        claims=(
            Claim(
                "Claim one",
                "MAE is flatter.",
                tables=(t1,),
                figures=(("a figure", "figures/a.html"),),
                primary_reason="the picture.",
            ),
            Claim("Claim two", "RC-MAE is flatter.", tables=(t2,)),
            Claim("Claim three", "Flat is good.", correlations=(c3,)),
        ),
        notes=("n is small.",),
        preface="Run with fewer seeds.",
    )


def test_render_markdown_tables_and_verdicts():
    f = _findings()
    md = render_markdown(f)
    lines = md.splitlines()
    assert lines[0] == "# Test findings"
    assert "Run with fewer seeds." in md
    one, two, three = f.claims
    assert (one.verdict, two.verdict, three.verdict) == (REPRODUCED, CONTRADICTED, REPRODUCED)
    assert any(line.startswith("| Claim one | **reproduced at 3 seeds** | basin width: ×") for line in lines)
    assert any(line.startswith("| Claim two | **contradicted at 3 seeds** | trace: ×5") for line in lines)
    assert "| Claim three | **reproduced at 8 points** | strongest: basin width (probe loss), rho 1.00" in md
    assert "**Verdict: reproduced at 3 seeds.**" in md and "Reproduced at 3 seeds." in md
    assert "Why this primary: the picture." in md
    want = (
        f"| **basin width (primary)** | {format_mean_std((0.20, 0.22, 0.21))} | {format_mean_std((0.10, 0.11, 0.09))} |"
    )
    assert any(line.startswith(want) for line in lines)
    assert format_mean_std((0.20, 0.22, 0.21)) == f"{0.21:.3g} ± {statistics.stdev([0.20, 0.22, 0.21]):.3g}"
    assert "| loss at the centre | 0.4 ± 0.01 | 0.2 ± 0 | — | — | — | — |" in md
    assert "| MAE higher | ×2" in md and "| RC-MAE lower | ×5" in md
    assert md.count("| supports |") == 3 and "| contradicts |" in md  # basin width, curvature, rho; trace
    assert "[a figure](figures/a.html)" in md
    assert "| basin width (probe loss) | 8 | 1.00 | 1.00 |" in md
    assert "- n is small." in md
    # Each section follows the summary in order.
    assert md.index("## 1. Claim one") < md.index("## 2. Claim two") < md.index("## 3. Claim three")


def test_only_primaries_decide_and_secondary_rows_are_shown_with_their_reading():
    # x is a clear win on every seed; y a clear loss: x primary reproduces, y primary contradicts, whatever the other.
    x = Row("x", (2.0, 2.1, 2.3), (1.0, 1.1, 1.2), "higher")
    y = Row("y", (0.5, 0.6, 0.7), (5.0, 5.1, 5.3), "higher")
    c = Claim("c", "s", tables=(Table("T", "A", "B", (replace(x, primary=True), y)),))
    assert c.verdict == REPRODUCED and y.reading == CONTRADICTS
    assert "| y | " in render_markdown(Findings("t", "cmd", (), (c,))) and "| contradicts |" in render_markdown(
        Findings("t", "cmd", (), (c,))
    )
    c2 = Claim("c", "s", tables=(Table("T", "A", "B", (x, replace(y, primary=True))),))
    assert c2.verdict == CONTRADICTED
    assert Claim("none", "s", tables=(Table("T", "A", "B", (x, y)),)).verdict == UNDETERMINED  # no primary


def test_primary_row_equals_the_rule_on_the_same_pairs():
    # A NaN drops that seed's pair (by seed), on either side; the row's estimate is `paired` on the same values.
    a, b = (1.0, 2.0, math.nan, 4.0, 5.0), (0.5, 1.1, 2.0, math.nan, 2.4)
    row = Row("n", a, b, "higher", True, seeds=(3, 4, 5, 6, 7))
    e = paired("n", a, b, "higher", row.estimate.margin, (3, 4, 5, 6, 7))
    assert row.estimate.seeds == (3, 4, 7) and row.estimate.dropped == (5, 6)
    assert (row.estimate.estimate, row.estimate.lo, row.estimate.hi, row.reading) == (e.estimate, e.lo, e.hi, e.reading)
    assert Claim("c", "s", tables=(Table("T", "A", "B", (row,)),)).judgement == claim_verdict([e])


def test_premise_pairs_average_over_budgets_by_seed_and_drop_incomplete_seeds():
    acc = {
        "scratch": {5: {0: 0.5, 1: 0.6, 2: 0.55}, None: {0: 0.8, 1: 0.82, 2: 0.81}},
        "mae": {5: {0: 0.6, 1: 0.7, 2: 0.66}, None: {0: 0.85, 1: 0.86}},  # seed 2 lacks "all"
        "rcmae": {5: {0: 0.61, 1: 0.69, 2: 0.65}, None: {0: 0.84, 1: 0.88, 2: 0.86}},
    }
    pairs = premise_pairs(acc)
    a, b, seeds = pairs["mae"]
    assert seeds == (0, 1, 2) and a[0] == pytest.approx((0.6 + 0.85) / 2) and math.isnan(a[2])
    assert b[1] == pytest.approx((0.6 + 0.82) / 2)
    mae, rcmae = premise_estimates(acc)
    assert (mae.name, mae.seeds, mae.dropped) == ("MAE vs scratch", (0, 1), (2,))
    assert rcmae.n == 3 and rcmae.margin.name == "accuracy" and rcmae.better == "higher"
    assert [e.name for e in premise_estimates({"scratch": acc["scratch"], "rcmae": acc["rcmae"]})] == [
        "RC-MAE vs scratch"
    ]


def test_an_equivalent_claim_reads_no_meaningful_difference():
    same = tuple(0.8 + 0.001 * k for k in range(8))
    row = Row("acc", same, tuple(v + 0.0005 * (-1) ** k for k, v in enumerate(same)), "higher", True, margin="accuracy")
    c = Claim("c", "s", tables=(Table("T", "A", "B", (row,)),))
    assert c.verdict == NO_DIFFERENCE
    assert "No difference larger than 3 points (8 seeds)." in render_markdown(Findings("t", "cmd", (), (c,)))


def test_an_undetermined_claim_names_the_seeds_that_would_decide_it():
    row = Row("w", (1.0, 1.4, 0.9), (1.1, 1.0, 1.2), "higher", True)
    c = Claim("c", "s", tables=(Table("T", "A", "B", (row,)),))
    j = c.judgement
    assert j.verdict == UNDETERMINED and j.seeds_needed is None or j.seeds_needed > 3
    assert c.verdict_text().startswith("undetermined at 3 seeds")
    assert SUPPORTS not in c.verdict_text()
