"""Tests for core/report/findings.py: the verdict rule, the statistics and the report's markdown (pure functions of
plain numbers, checked against independent formulas and exact enumeration)."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest

from core.report.findings import (
    CONTRADICTS,
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    SUPPORTS,
    UNDECIDED,
    Claim,
    CorrelationRow,
    Findings,
    Row,
    Table,
    claim_verdict,
    convergence_target,
    correlation,
    correlation_reading,
    epochs_to_reach,
    format_mean_std,
    mean_std,
    number_reading,
    render_markdown,
)

# --------------------------------------------------------------------------------------------------------------------
# The verdict rule


def test_mean_std_matches_statistics_module():
    vals = [0.3, 1.7, 0.9, float("nan")]
    m, s, n = mean_std(vals)
    assert n == 3
    assert m == pytest.approx(statistics.mean([0.3, 1.7, 0.9]))
    assert s == pytest.approx(statistics.stdev([0.3, 1.7, 0.9]))
    assert math.isnan(mean_std([2.0])[1]) and mean_std([2.0])[0] == 2.0
    assert mean_std([])[2] == 0


def test_number_reading_supports_contradicts_inconclusive():
    a, b = (1.0, 1.1, 0.9), (0.5, 0.6, 0.4)  # means 1.0 vs 0.5, spread 0.1 + 0.1
    assert number_reading(a, b, "higher") == SUPPORTS
    assert number_reading(a, b, "lower") == CONTRADICTS
    assert number_reading(b, a, "lower") == SUPPORTS
    overlapping = (0.55, 1.0, 0.45)  # mean 0.667, std 0.29: the difference 0.33 is under the spread 0.39
    assert number_reading(a, overlapping, "higher") == INCONCLUSIVE
    assert number_reading((1.0,), (0.0,), "higher") == INCONCLUSIVE  # one seed: no spread
    assert number_reading((1.0, float("nan")), (0.0, 0.1), "higher") == INCONCLUSIVE
    assert number_reading((2.0, 2.0), (1.0, 1.0), "higher") == SUPPORTS  # no spread at all, a real difference
    assert number_reading((1.0, 1.0), (1.0, 1.0), "higher") == INCONCLUSIVE
    with pytest.raises(ValueError):
        number_reading(a, b, "bigger")


def test_number_reading_agrees_with_the_rule_on_random_numbers():
    rng = np.random.default_rng(3)
    for _ in range(200):
        a, b = rng.normal(0, 1, 3) + rng.normal(0, 2), rng.normal(0, 1, 3)
        d = statistics.mean(a) - statistics.mean(b)
        s = statistics.stdev(a) + statistics.stdev(b)
        want = SUPPORTS if d > s else CONTRADICTS if -d > s else INCONCLUSIVE
        assert number_reading(tuple(a), tuple(b), "higher") == want


def test_claim_verdict_counts():
    S, C, I = SUPPORTS, CONTRADICTS, INCONCLUSIVE  # noqa: E741
    assert claim_verdict([S, S, S, I, I, I]) == REPRODUCED  # half support, none against
    assert claim_verdict([S, S, S, C, I, I]) == REPRODUCED  # 3 to 1
    assert claim_verdict([S, S, S, C, C, I]) == UNDECIDED  # not 3 to 1
    assert claim_verdict([S, S, I, I, I, I]) == UNDECIDED  # under half
    assert claim_verdict([C, C, C, I, I, I]) == NOT_REPRODUCED
    assert claim_verdict([C, C, C, C, S, I, I, I]) == NOT_REPRODUCED
    assert claim_verdict([I, I]) == UNDECIDED
    assert claim_verdict([]) == UNDECIDED


# --------------------------------------------------------------------------------------------------------------------
# Statistics


def _pearson(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    xm, ym = x - x.mean(), y - y.mean()
    return float((xm * ym).sum() / math.sqrt((xm**2).sum() * (ym**2).sum()))


def test_correlation_against_independent_formulas():
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [1.0, 8.0, 27.0, 64.0, 125.0, 216.0]  # monotone, not linear
    c = correlation(x, y, n_perm=2000)
    assert c["n"] == 6
    assert c["spearman"] == pytest.approx(1.0)
    assert c["pearson"] == pytest.approx(_pearson(x, y))
    assert c["pearson"] < 0.99
    # Exact two-sided permutation p for a perfect rank correlation of 6: 2 of 720 orders reach |rho| = 1.
    assert c["p_spearman"] == pytest.approx(2 / 720, abs=0.004)
    # Ties get average ranks; NaN pairs are dropped.
    x2 = [1.0, 2.0, 2.0, 3.0, float("nan"), 5.0]
    y2 = [3.0, 1.0, 2.0, 5.0, 9.0, 4.0]
    c2 = correlation(x2, y2, n_perm=500)
    assert c2["n"] == 5
    rx, ry = [1.0, 2.5, 2.5, 4.0, 5.0], [3.0, 1.0, 2.0, 5.0, 4.0]  # ranks by hand
    assert c2["spearman"] == pytest.approx(_pearson(rx, ry))
    assert 0.0 < c2["p_spearman"] <= 1.0
    small = correlation([1.0, 2.0], [2.0, 1.0])
    assert math.isnan(small["pearson"]) and math.isnan(small["p_spearman"])


def test_correlation_p_value_matches_exact_enumeration():
    x = [0.1, 0.4, 0.2, 0.9, 0.5]
    y = [1.0, 2.0, 4.0, 3.0, 5.0]
    rho = correlation(x, y, n_perm=10)["spearman"]
    ry = np.argsort(np.argsort(y)) + 1.0
    rx = np.argsort(np.argsort(x)) + 1.0
    exact = np.mean([abs(_pearson(rx, ry[list(p)])) >= abs(rho) - 1e-12 for p in itertools.permutations(range(5))])
    assert correlation(x, y, n_perm=20000)["p_spearman"] == pytest.approx(exact, abs=0.015)


def test_correlation_reading():
    assert correlation_reading(0.9, 0.001, +1, 0.01) == SUPPORTS
    assert correlation_reading(-0.9, 0.001, +1, 0.01) == CONTRADICTS
    assert correlation_reading(0.9, 0.02, +1, 0.01) == INCONCLUSIVE
    assert correlation_reading(float("nan"), float("nan"), +1, 0.01) == INCONCLUSIVE


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
    t1 = Table(
        "Own objective (counted)",
        "MAE",
        "Sup-ViT",
        (
            Row("basin width", (0.20, 0.22, 0.21), (0.10, 0.11, 0.09), "higher"),
            Row("curvature", (1.0, 1.1, 0.9), (3.0, 3.2, 2.8), "lower"),
            Row("loss at the centre", (0.4, 0.41, 0.39), (0.2, 0.2, 0.2)),
        ),
    )
    t2 = Table("Other", "RC-MAE", "MAE", (Row("trace", (5.0, 6.0, 7.0), (1.0, 1.1, 1.2), "lower"),))
    x = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    c3 = CorrelationRow("basin width (probe loss)", x, tuple(v / 10 for v in x), +1, n_perm=2000)
    return Findings(
        title="Test findings",
        command="python -m core reproduce --seeds 3",
        setup=(("seeds", "3 model seeds"),),
        claims=(
            Claim("Claim one", "MAE is flatter.", tables=(t1,), figures=(("a figure", "figures/a.html"),)),
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
    assert "| Claim one | **reproduced** | 2 / 0 / 0 |" in md
    assert "| Claim two | **not reproduced** | 0 / 1 / 0 |" in md
    assert "| Claim three | **reproduced** | 1 / 0 / 0 |" in md
    assert "**Verdict: reproduced.** Of 2 counted numbers: 2 support the claim, 0 contradict it, 0 inconclusive." in md
    assert "**Verdict: not reproduced.**" in md
    want = f"| basin width | {format_mean_std((0.20, 0.22, 0.21))} | {format_mean_std((0.10, 0.11, 0.09))} |"
    assert any(line.startswith(want) for line in lines)
    assert format_mean_std((0.20, 0.22, 0.21)) == f"{0.21:.3g} ± {statistics.stdev([0.20, 0.22, 0.21]):.3g}"
    assert "| loss at the centre | 0.4 ± 0.01 | 0.2 ± 0 | — | — |" in md
    assert "| MAE higher | supports |" in md and "| RC-MAE lower | contradicts |" in md
    assert "[a figure](figures/a.html)" in md
    assert "| basin width (probe loss) | 8 | 1.00 | 1.00 |" in md
    assert "- n is small." in md
    # Each section follows the summary in order.
    assert md.index("## 1. Claim one") < md.index("## 2. Claim two") < md.index("## 3. Claim three")


def test_uncounted_rows_do_not_change_the_verdict():
    t = Table(
        "T", "A", "B", (Row("x", (2.0, 2.1), (1.0, 1.1), "higher"), Row("y", (0.0, 0.1), (5.0, 5.1), "higher", False))
    )
    c = Claim("c", "s", tables=(t,))
    assert c.verdict == REPRODUCED
    assert "contradicts (not counted)" in render_markdown(Findings("t", "cmd", (), (c,)))
