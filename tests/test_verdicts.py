"""The one verdict rule (core.report.verdicts): paired by seed, interval-based readings with an equivalence margin,
seeds needed that really give 80% power, Holm over a claim's primaries, correlations and the EN/JA wording."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from core.errors import LandscapeError
from core.report.verdicts import (
    ALPHA,
    CONTRADICTED,
    CONTRADICTS,
    MARGINS,
    MAX_SEEDS,
    NO_DIFFERENCE,
    READINGS,
    REPRODUCED,
    SUPPORTS,
    UNDETERMINED,
    Margin,
    claim_verdict,
    correlation,
    format_estimate,
    holm,
    judge,
    judge_correlations,
    paired,
    reading_of,
    reading_sentence,
)

TIGHT = Margin("test", "diff", 0.01, "a margin too small for equivalence to be reached in these tests")


def exact(n: int, mean: float, sd: float, seed: int = 0) -> np.ndarray:
    """n values with exactly this mean and sample SD."""
    z = np.random.default_rng(seed).normal(size=n)
    return mean + sd * (z - z.mean()) / z.std(ddof=1)


def with_p(p: float, better: str = "higher", n: int = 10, margin: Margin = TIGHT, sign: float = 1.0):
    """A paired estimate whose t-test p-value is exactly p (differences with SD 1 and the matching mean)."""
    mean = sign * stats.t.isf(p / 2, n - 1) / math.sqrt(n)
    return paired(f"p={p}", exact(n, mean, 1.0), np.zeros(n), better, margin)


def simulated_share(m: int, d: float, s: float, margin: Margin, reading: str, draws: int = 2000) -> float:
    """Share of `draws` experiments of m paired differences ~ Normal(d, s) that read `reading`.

    The statistics are vectorized here, read by `reading_of`; the first draws are checked against `paired` itself.
    """
    diffs = np.random.default_rng(123).normal(d, s, size=(draws, m))
    mean, se = diffs.mean(axis=1), diffs.std(axis=1, ddof=1) / math.sqrt(m)
    p = 2 * stats.t.sf(np.abs(mean / se), m - 1)
    half90 = stats.t.ppf(0.95, m - 1) * se
    rows = zip(mean, p, half90, strict=True)
    got = [reading_of(mu, pv, mu - h, mu + h, "higher", margin.half_width) for mu, pv, h in rows]
    for k in range(40):
        assert paired("sim", diffs[k], np.zeros(m), "higher", margin).reading == got[k]
    return float(np.mean([r == reading for r in got]))


def test_margins_are_declared_with_reasons():
    assert {k: (m.scale, m.width) for k, m in MARGINS.items()} == {
        "accuracy": ("diff", 0.03),
        "ratio": ("log", 1.25),
        "fraction": ("diff", 0.05),
        "epochs": ("diff", 2.0),
        "time": ("log", 1.05),
    }
    assert all(m.name == k and m.reason.endswith(".") and len(m.reason) > 40 for k, m in MARGINS.items())
    assert MARGINS["ratio"].half_width == pytest.approx(math.log(1.25))
    assert MARGINS["accuracy"].half_width == 0.03
    for bad in (("x", "lin", 1.0, ""), ("x", "diff", 0.0, ""), ("x", "log", 1.0, ""), ("x", "diff", math.nan, "")):
        with pytest.raises(LandscapeError):
            Margin(*bad)


def test_paired_effect_that_an_unpaired_test_misses():
    rng = np.random.default_rng(0)
    base = rng.normal(70.0, 5.0, size=10)
    a, b = base + 0.5 + rng.normal(0, 0.05, size=10), base
    assert stats.ttest_ind(a, b, equal_var=False).pvalue > 0.05
    e = paired("gain", a, b, "higher", Margin("test", "diff", 0.1, "test"))
    assert e.reading == SUPPORTS and e.p < 1e-6 and e.lo > 0 and e.seeds_needed is None and not e.beyond
    assert e.n == 10 and e.seeds == tuple(range(10)) and e.dropped == ()
    assert e.estimate == pytest.approx(np.mean(a - b)) and e.sd == pytest.approx(np.std(a - b, ddof=1))
    assert e.p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert e.p_improve == 1.0


def test_equivalence_inside_the_accuracy_margin():
    b = np.full(8, 0.8)
    a = b + np.array([0.002, -0.002] * 4)
    e = paired("acc", a, b, "higher", MARGINS["accuracy"])
    assert e.reading == NO_DIFFERENCE and e.seeds_needed is None
    assert -0.03 < e.lo < e.lo90 < 0 < e.hi90 < e.hi < 0.03
    # The same differences against a margin they do not fit inside stay undetermined.
    assert paired("acc", a, b, "higher", Margin("tiny", "diff", 0.001, "t")).reading == UNDETERMINED


def test_noisy_stays_undetermined_with_seeds_needed():
    a, b = [0.71, 0.90, 0.62, 0.95], [0.80, 0.62, 0.85, 0.70]
    e = paired("acc", a, b, "higher", MARGINS["accuracy"])
    assert e.reading == UNDETERMINED
    assert (e.seeds_needed is not None and e.seeds_needed > e.n) or e.beyond
    # A tiny mean difference with large spread cannot be decided at an affordable n.
    far = paired("far", exact(5, 0.001, 1.0), np.zeros(5), "higher", MARGINS["accuracy"])
    assert far.reading == UNDETERMINED and far.seeds_needed is None and far.beyond


def test_contradicts_when_a_is_clearly_on_the_other_side():
    b = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    e = paired("loss", b + np.array([1.0, 1.1, 0.9, 1.05, 0.95]), b, "lower", MARGINS["epochs"])
    assert e.reading == CONTRADICTS and e.lo > 0 and e.p_improve == 0.0
    assert paired("loss", b + 1.0 + np.array([0, 0.1, -0.1, 0.05, 0]), b, "higher", MARGINS["epochs"]).reading == (
        SUPPORTS
    )


def test_log_scale_ratios_and_non_positive_pairs():
    a, b = [2.0, 4.2, 7.6, -1.0, 6.0, 0.0], [1.0, 2.0, 4.0, 1.0, 3.0, 2.0]
    e = paired("trace", a, b, "higher", MARGINS["ratio"])
    assert e.seeds == (0, 1, 2, 4) and e.dropped == (3, 5) and e.n == 4
    assert e.estimate == pytest.approx(np.mean(np.log([2.0, 2.1, 1.9, 2.0])))
    assert e.shown == pytest.approx(math.exp(e.estimate)) and e.shown_lo < e.shown < e.shown_hi
    assert e.shown_lo == pytest.approx(math.exp(e.lo)) and e.reading == SUPPORTS
    # No spread at all: the interval is the point itself, decided when it is not 0.
    flat = paired("trace", [2.0, 4.0, 8.0], [1.0, 2.0, 4.0], "higher", MARGINS["ratio"])
    assert flat.sd == 0 and flat.lo == flat.hi == flat.estimate and flat.p == 0 and flat.reading == SUPPORTS
    assert flat.shown == pytest.approx(2.0)
    same = paired("trace", [2.0, 4.0], [2.0, 4.0], "higher", MARGINS["ratio"])
    assert same.p == 1 and same.reading == NO_DIFFERENCE


def test_nan_drops_the_pair_by_seed():
    a = np.arange(8, dtype=float) + 1.0
    b = a - 0.5
    a[2], b[4] = math.nan, math.inf
    e = paired("x", a, b, "higher", MARGINS["epochs"])
    assert e.seeds == (0, 1, 3, 5, 6, 7) and e.dropped == (2, 4) and e.n == 6
    ids = paired("x", a, b, "higher", MARGINS["epochs"], seeds=[10, 11, 12, 13, 14, 15, 16, 17])
    assert ids.seeds == (10, 11, 13, 15, 16, 17) and ids.dropped == (12, 14)
    with pytest.raises(LandscapeError):
        paired("x", a, b[:-1], "higher", MARGINS["epochs"])
    with pytest.raises(LandscapeError):
        paired("x", a, b, "better", MARGINS["epochs"])
    with pytest.raises(LandscapeError):
        paired("x", a, b, "higher", MARGINS["epochs"], seeds=[0, 1])


def test_fewer_than_two_pairs_is_undetermined():
    one = paired("x", [1.0, math.nan], [0.0, 0.0], "higher", MARGINS["epochs"])
    assert one.n == 1 and one.estimate == 1.0 and math.isnan(one.lo) and math.isnan(one.p) and math.isnan(one.sd)
    assert one.reading == UNDETERMINED and one.seeds_needed is None and not one.beyond
    none = paired("x", [], [], "higher", MARGINS["epochs"])
    assert none.n == 0 and math.isnan(none.estimate) and math.isnan(none.p_improve) and none.reading == UNDETERMINED


def test_reading_at_other_levels_and_interval_agree_with_p():
    e = with_p(0.03)
    assert e.p == pytest.approx(0.03) and e.reading == SUPPORTS == e.read(ALPHA)
    assert e.read(0.01) == UNDETERMINED and e.read_adjusted(0.06) == UNDETERMINED and e.read_adjusted(0.04) == SUPPORTS
    lo, hi = e.interval(0.01)
    assert lo < 0 < hi and (e.lo, e.hi) == pytest.approx(e.interval())
    # "p < alpha" is the same event as "the (1 - alpha) interval excludes 0", the reading rule's premise.
    rng = np.random.default_rng(5)
    for _ in range(60):
        n = int(rng.integers(2, 12))
        est = paired("x", rng.normal(rng.normal(0, 1), 1, size=n), np.zeros(n), "higher", TIGHT)
        for alpha in (0.05, 0.01, 0.2):
            lo, hi = est.interval(alpha)
            assert (est.p < alpha) == (lo > 0 or hi < 0)
    assert set(READINGS) == {SUPPORTS, CONTRADICTS, NO_DIFFERENCE, UNDETERMINED}


@pytest.mark.parametrize(("n", "d", "s"), [(10, 1.0, 2.0), (3, 1.0, 1.0)])
def test_seeds_needed_give_the_power_they_promise(n, d, s):
    e = paired("x", exact(n, d, s), np.zeros(n), "higher", TIGHT)
    assert e.reading == UNDETERMINED and e.estimate == pytest.approx(d) and e.sd == pytest.approx(s)
    m = e.seeds_needed
    assert m is not None and n < m < MAX_SEEDS
    assert 0.72 <= simulated_share(m, d, s, TIGHT, SUPPORTS) <= 0.88


def test_seeds_needed_for_equivalence():
    margin = Margin("test", "diff", 1.0, "test")
    e = paired("x", exact(3, 0.0, 1.0), np.zeros(3), "higher", margin)
    assert e.reading == UNDETERMINED and abs(e.estimate) < 1e-12
    m = e.seeds_needed
    assert m is not None and 3 < m < 30
    assert 0.70 <= simulated_share(m, 0.0, 1.0, margin, NO_DIFFERENCE) <= 0.90


def test_sign_flip_permutation_p():
    d6 = np.array([0.3, 0.5, 0.2, 0.6, 0.4, -0.1])
    e6 = paired("x", d6, np.zeros(6), "higher", TIGHT)
    assert e6.p_permutation * 64 == pytest.approx(round(e6.p_permutation * 64))
    # Exact: 2 of the 64 flips (all signs kept or all reversed) reach |mean| for all-positive differences.
    assert paired("x", np.abs(d6) + 0.1, np.zeros(6), "higher", TIGHT).p_permutation == pytest.approx(2 / 64)
    assert math.isnan(paired("x", d6[:5], np.zeros(5), "higher", TIGHT).p_permutation)
    d20 = np.random.default_rng(2).normal(0.2, 1.0, size=20)
    e20 = paired("x", d20, np.zeros(20), "higher", TIGHT)
    assert 1 / 20001 <= e20.p_permutation <= 1 and abs(e20.p_permutation - e20.p) < 0.1


def test_probability_of_improvement_counts_ties_half():
    a, b = [1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 4.0, 2.0]
    assert paired("x", a, b, "higher", TIGHT).p_improve == pytest.approx(2.5 / 4)
    assert paired("x", a, b, "lower", TIGHT).p_improve == pytest.approx(1.5 / 4)


def test_holm():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    p = np.random.default_rng(0).uniform(0, 0.3, size=12)
    q = holm(p)
    order = np.argsort(p)
    assert np.all(np.diff(q[order]) >= 0) and np.all(q >= p) and np.all(q <= 1)
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    withnan = holm([0.01, math.nan, 0.04])
    assert math.isnan(withnan[1]) and withnan[[0, 2]] == pytest.approx([0.02, 0.04])
    assert holm([]).size == 0


def test_claim_verdicts_after_holm():
    strong = [with_p(p) for p in (0.001, 0.004, 0.03)]
    v = claim_verdict(strong)
    assert v.verdict == REPRODUCED and v.n == 10
    assert [j.p_adjusted for j in v.judged] == pytest.approx([0.003, 0.008, 0.03])
    # Every primary supports alone; after Holm two of them no longer do.
    family = [with_p(p) for p in (0.001, 0.03, 0.04)]
    assert all(e.reading == SUPPORTS for e in family)
    judged = judge(family)
    assert [j.reading for j in judged] == [SUPPORTS, UNDETERMINED, UNDETERMINED]
    v = claim_verdict(family)
    assert v.verdict == UNDETERMINED and v.seeds_needed is not None and v.seeds_needed > 10 and not v.beyond
    # One primary contradicting is enough to contradict the claim.
    assert claim_verdict([with_p(0.001), with_p(0.001, better="lower")]).verdict == CONTRADICTED
    equal = paired("acc", np.full(8, 0.8) + [0.002, -0.002] * 4, np.full(8, 0.8), "higher", MARGINS["accuracy"])
    assert claim_verdict([equal, equal]).verdict == NO_DIFFERENCE
    # A mix that more seeds would not settle, and undetermined primaries taking the largest seeds needed.
    assert claim_verdict([with_p(0.001), equal]).verdict == UNDETERMINED
    noisy = [paired("x", exact(n, 1.0, s), np.zeros(n), "higher", TIGHT) for n, s in ((10, 2.0), (3, 1.0))]
    v = claim_verdict(noisy)
    assert v.verdict == UNDETERMINED and v.n == 3 and v.seeds_needed == max(e.seeds_needed for e in noisy)
    empty = claim_verdict([])
    assert empty.verdict == UNDETERMINED and empty.n == 0 and empty.judged == ()


def test_correlation():
    x = np.arange(8.0)
    c = correlation("flat", x, 2 * x + 1, expected_sign=1)
    assert c.spearman == 1 and c.pearson == pytest.approx(1) and c.p < 0.001 and c.reading == SUPPORTS
    assert c.seeds_needed is None and c.n == 8
    assert correlation("flat", x, 2 * x + 1, expected_sign=-1).reading == CONTRADICTS
    assert correlation("flat", x, np.exp(x), 1).spearman == 1  # monotone, not linear
    ties = correlation("t", [1, 2, 2, 3, 4], [1, 2, 2, 3, 4], 1)
    assert ties.spearman == pytest.approx(1)
    small = correlation("s", [1.0, 2.0, math.nan, 3.0], [1.0, 2.0, 5.0, math.nan], 1)
    assert small.n == 2 and math.isnan(small.spearman) and math.isnan(small.p) and small.reading == UNDETERMINED
    assert math.isnan(correlation("c", x, np.ones(8), 1).spearman)
    with pytest.raises(LandscapeError):
        correlation("c", x, x[:-1], 1)
    # Holm over rows changes a reading: p ~ 0.026 supports alone, not in a family of three.
    x10 = np.arange(10.0)
    mid = correlation("mid", x10, [1, 5, 0, 2, 7, 3, 4, 9, 6, 8], 1)
    assert 0.02 < mid.p < 0.035 and mid.reading == SUPPORTS
    rows = judge_correlations([c, mid, mid])
    assert rows[0][2] == SUPPORTS and rows[1][2] == rows[2][2] == UNDETERMINED
    assert rows[1][1] == pytest.approx(2 * mid.p)
    weak = correlation("weak", x10, [3, 0, 5, 1, 9, 2, 4, 8, 6, 7][::-1], 1)
    assert weak.reading == UNDETERMINED and weak.seeds_needed is not None and weak.seeds_needed > 10


def test_formatting_en_and_ja():
    log = paired("trace", 2.9 * np.array([1.05, 1 / 1.05, 1.1, 1 / 1.1, 1, 1]), [1.0] * 6, "higher", MARGINS["ratio"])
    en = format_estimate(log, fmt=".2g")
    assert en.startswith("×2.9 [") and "p < 0.001" in en and en.endswith(", 6 seeds")
    ja = format_estimate(log, fmt=".2g", lang="ja")
    assert ja.startswith("×2.9 [") and "、p < 0.001、" in ja and ja.endswith("6シード")
    acc = paired("acc", [0.84, 0.86, 0.81, 0.88], [0.80, 0.81, 0.79, 0.82], "higher", MARGINS["accuracy"])
    text = format_estimate(acc, fmt=".1f", unit="pts")
    assert text.startswith("+4.2 pts [") and "p = 0.0" in text and text.endswith("4 seeds")
    epochs = paired("e", [5, 7, 6], [4, 4, 5], "higher", MARGINS["epochs"])
    assert format_estimate(epochs, fmt=".2g").startswith("+1.7 [")
    one = paired("r", [1.3], [1.0], "higher", MARGINS["ratio"])
    assert format_estimate(one, fmt=".2g") == "×1.3 (1 seed: no interval)"
    assert format_estimate(one, fmt=".2g", lang="ja") == "×1.3（1シード：区間なし）"
    m = MARGINS["accuracy"]
    assert reading_sentence(SUPPORTS, 10, None, False, m) == "Supported at 10 seeds."
    assert reading_sentence(SUPPORTS, 10, None, False, m, "ja") == "10シードで支持。"
    assert reading_sentence(CONTRADICTS, 10, None, False, m) == "Contradicted at 10 seeds."
    assert reading_sentence(REPRODUCED, 5, None, False, m, "ja") == "5シードで再現。"
    assert reading_sentence(NO_DIFFERENCE, 10, None, False, m) == "No difference larger than 3 points (10 seeds)."
    assert reading_sentence(NO_DIFFERENCE, 10, None, False, m, "ja") == "3ポイントを超える差はない（10シード）。"
    assert "a factor of 1.25" in reading_sentence(NO_DIFFERENCE, 4, None, False, MARGINS["ratio"])
    assert "1.25倍" in reading_sentence(NO_DIFFERENCE, 4, None, False, MARGINS["ratio"], "ja")
    assert MARGINS["epochs"].words() == "2 epochs" and MARGINS["fraction"].words("ja") == "スライスの0.05"
    assert reading_sentence(UNDETERMINED, 3, 11, False, m) == "Undetermined after 3 seeds; about 11 would decide it."
    assert reading_sentence(UNDETERMINED, 3, 11, False, m, "ja") == "3シードでは未決定。約11シードで決まる見込み。"
    assert "more than 1000" in reading_sentence(UNDETERMINED, 3, None, True, m)
    assert "1000シードを超えて" in reading_sentence(UNDETERMINED, 3, None, True, m, "ja")
    assert reading_sentence(UNDETERMINED, 1, None, False, m) == (
        "Undetermined at 1 seed: at least 2 are needed for an interval."
    )
    with pytest.raises(LandscapeError):
        reading_sentence("beyond", 3, None, True, m)
