"""The one statistical rule behind every verdict the dashboard and the reports show.

Seed k is the unit of evidence: every number comes by seed, and A is compared with B pair by pair (the same seed on
both sides), so seed-to-seed variation shared by both sides cancels. On the analysis scale (plain differences, or
log-ratios for positive scale-free numbers) the paired differences D_k give a mean, a 95% t-interval and a paired
t-test; a number then reads:

- supports: the 95% interval excludes 0 on the claimed side (equivalently the paired t-test's p < ALPHA);
- contradicts: it excludes 0 on the other side;
- no meaningful difference: the 90% interval lies inside the margin (TOST, 5% each side);
- undetermined: anything else (including fewer than two pairs), with the seeds that would decide it at POWER.

`reading_of` is the only implementation of that rule: it reads "excludes 0" as p < alpha, which for the t-test is the
same event as the (1 - alpha) interval excluding 0, so one function serves the unadjusted reading, a reading at another
level and the Holm-adjusted reading (p_adjusted < ALPHA). Claims with several primary numbers are a conjunction, read
after Holm's correction over their primaries (`claim_verdict`). Correlations (does flatness predict accuracy) use a
permutation test of Spearman's rho and the same rule without the equivalence branch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from core.errors import LandscapeError

SUPPORTS, CONTRADICTS = "supports", "contradicts"
NO_DIFFERENCE, UNDETERMINED = "no meaningful difference", "undetermined"
READINGS = (SUPPORTS, CONTRADICTS, NO_DIFFERENCE, UNDETERMINED)
REPRODUCED, CONTRADICTED = "reproduced", "contradicted"
CLAIM_VERDICTS = (REPRODUCED, CONTRADICTED, NO_DIFFERENCE, UNDETERMINED)
# A claim's verdict as the reading of one point (the Overview's points speak of readings).
POINT_READING = {
    REPRODUCED: SUPPORTS,
    CONTRADICTED: CONTRADICTS,
    NO_DIFFERENCE: NO_DIFFERENCE,
    UNDETERMINED: UNDETERMINED,
}
ALPHA = 0.05  # two-sided level of every interval and test; equivalence uses the 90% interval (TOST, 5% each side)
POWER = 0.8  # the power at which "seeds needed" is computed
MAX_SEEDS = 1000  # beyond this, "seeds needed" is reported as not affordable

_EXACT_FLIPS = 16  # up to 2**16 sign flips are enumerated; above, Monte-Carlo flips
_MC_FLIPS = 20000
_MIN_PERMUTATION_N = 6  # below, a sign-flip test cannot reach p < 0.05 (2 / 2**5 = 0.0625)
_TOL = 1e-12  # ties in the permutation tests despite rounding


@dataclass(frozen=True)
class Margin:
    """The smallest difference that matters for one kind of number.

    Attributes:
        name: its key in MARGINS (picks the wording of `words`).
        scale: "log" compares log-ratios (positive, scale-free numbers); "diff" compares plain differences.
        width: for "diff", ± width in the number's own units; for "log", a factor > 1 (the margin is ± log(width)).
        reason: one sentence shown in reports saying why this width.
    """

    name: str
    scale: str
    width: float
    reason: str

    def __post_init__(self) -> None:
        if self.scale not in ("log", "diff"):
            raise LandscapeError(f"margin {self.name!r}: scale must be 'log' or 'diff', not {self.scale!r}")
        if not (math.isfinite(self.width) and self.width > 0):
            raise LandscapeError(f"margin {self.name!r}: width must be a positive number, not {self.width!r}")
        if self.scale == "log" and self.width <= 1:
            raise LandscapeError(f"margin {self.name!r}: a log-scale width is a factor and must be > 1")

    @property
    def half_width(self) -> float:
        """The margin on the analysis scale: width, or log(width)."""
        return math.log(self.width) if self.scale == "log" else self.width

    def words(self, lang: str = "en") -> str:
        """The margin in words, e.g. "3 points" / "3ポイント" or "a factor of 1.25" / "1.25倍"."""
        en, ja, factor = _MARGIN_WORDS.get(self.name, _MARGIN_WORDS[f"_{self.scale}"])
        return (ja if lang == "ja" else en).format(w=f"{self.width * factor:g}")


_MARGIN_WORDS: dict[str, tuple[str, str, float]] = {
    "accuracy": ("{w} points", "{w}ポイント", 100.0),
    "ratio": ("a factor of {w}", "{w}倍", 1.0),
    "fraction": ("{w} of the slice", "スライスの{w}", 1.0),
    "epochs": ("{w} epochs", "{w}エポック", 1.0),
    "time": ("a factor of {w}", "{w}倍", 1.0),
    "_diff": ("{w}", "{w}", 1.0),
    "_log": ("a factor of {w}", "{w}倍", 1.0),
}

MARGINS: dict[str, Margin] = {
    "accuracy": Margin(
        "accuracy",
        "diff",
        0.03,
        "Accuracies differing by less than 3 points are within what a different labeled subset or fine-tuning order "
        "moves on models this small, and too small to act on.",
    ),
    "ratio": Margin(
        "ratio",
        "log",
        1.25,
        "Flatness numbers within a factor of 1.25 are within the estimator noise of Hutchinson traces and Lanczos at "
        "these settings, while the paper's pictures differ by much more.",
    ),
    "fraction": Margin(
        "fraction",
        "diff",
        0.05,
        "A slice-area fraction differing by less than 0.05 is about one point of a 5x5 convexity map (1/25 = 0.04).",
    ),
    "epochs": Margin(
        "epochs",
        "diff",
        2.0,
        "Histories are recorded once per epoch, so two epochs is the smallest difference in time-to-target the "
        "recording can show beyond rounding.",
    ),
    "time": Margin(
        "time",
        "log",
        1.05,
        "Training times within 5% of each other are within what the load of a shared machine moves, and too small "
        "to change a training budget.",
    ),
}


def rule_text() -> str:
    """The rule and every margin with its reason, in one paragraph (the reports state it)."""
    margins = "; ".join(
        f"{m.name}: {'±' if m.scale == 'diff' else 'a factor of '}{m.width:g}"
        f"{' (on the log-ratio)' if m.scale == 'log' else ''}, {m.reason[0].lower()}{m.reason[1:].rstrip('.')}"
        for m in MARGINS.values()
    )
    return (
        "seed k is the unit of evidence: every run of seed k shares its init (where architectures match), data order, "
        "masks, labeled subset, evaluation images, directions, probe and Hessian start vectors, and A is compared "
        "with B pair by pair (log-ratios for positive scale-free numbers, differences for accuracies, fractions and "
        "epochs; a NaN drops that seed's pair). A number supports the claim when the 95% paired t-interval excludes 0 "
        "on the claimed side, contradicts it when it excludes 0 on the other, reads no meaningful difference when the "
        "90% interval lies inside the margin (two one-sided tests), and is undetermined otherwise, with the seeds "
        f"that would decide it at {POWER:.0%} power. From {_MIN_PERMUTATION_N} seeds a sign-flip permutation p is "
        "shown as a check (it does not decide). A claim is decided by its primary number(s) alone, declared with "
        "their reason: several primaries must all hold and are Holm-corrected; correlations decide by a permutation "
        f"p-value, Holm over the rows. Margins, declared before measuring: {margins}"
    )


def _orient(better: str) -> int:
    if better not in ("higher", "lower"):
        raise LandscapeError(f"better must be 'higher' or 'lower', not {better!r}")
    return 1 if better == "higher" else -1


def reading_of(
    estimate: float, p: float, lo90: float, hi90: float, better: str, half_width: float, alpha: float = ALPHA
) -> str:
    """The reading (one of READINGS) of one number: THE rule every verdict uses.

    `estimate` is A minus B on the analysis scale (or a correlation coefficient), `p` its two-sided p-value for "no
    difference" (NaN: not decidable), `lo90`/`hi90` its 90% interval (NaN: no equivalence reading), `half_width` the
    margin on the analysis scale. "The (1 - alpha) t-interval excludes 0" is tested as p < alpha, the same event for
    the paired t-test, so the Holm-adjusted reading passes its adjusted p with alpha = ALPHA. A decided direction takes
    precedence over equivalence.
    """
    s = _orient(better)
    if p < alpha and estimate != 0:  # NaN p compares False
        return SUPPORTS if s * estimate > 0 else CONTRADICTS
    if -half_width < lo90 and hi90 < half_width:
        return NO_DIFFERENCE
    return UNDETERMINED


def _interval(n: int, estimate: float, sd: float, alpha: float) -> tuple[float, float]:
    if n < 2:
        return math.nan, math.nan
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    return estimate - half, estimate + half


@dataclass(frozen=True)
class Estimate:
    """A paired comparison of A with B over seeds (see `paired`); all numbers on the analysis scale.

    Attributes:
        name: what is compared.
        better: "higher" | "lower", the claimed direction of A relative to B.
        margin: the smallest difference that matters.
        n: pairs used.
        seeds: seed ids of the pairs used.
        dropped: seed ids dropped because either side was NaN/inf (or not > 0 on the log scale).
        estimate: mean paired difference (diff: a - b; log: mean of log a - log b).
        lo: lower end of the 95% t-interval (NaN when n < 2).
        hi: upper end of the 95% t-interval.
        lo90: lower end of the 90% interval, for the equivalence reading.
        hi90: upper end of the 90% interval.
        p: two-sided paired t-test p-value for "no difference" (NaN when n < 2).
        sd: sample SD (ddof 1) of the paired differences (NaN when n < 2).
        p_permutation: sign-flip permutation p-value (n >= 6, else NaN); a distribution-free check that does not decide.
        p_improve: share of pairs where A beats B in the claimed direction, ties half (Bouthillier et al. 2021).
        seeds_needed: seeds that would decide the number at POWER; None when decided or not computable.
        beyond: True when more than MAX_SEEDS would be needed.
        reading: one of READINGS at level ALPHA, unadjusted.
    """

    name: str
    better: str
    margin: Margin
    n: int
    seeds: tuple[int, ...]
    dropped: tuple[int, ...]
    estimate: float
    lo: float
    hi: float
    lo90: float
    hi90: float
    p: float
    sd: float
    p_permutation: float
    p_improve: float
    seeds_needed: int | None
    beyond: bool
    reading: str

    def _display(self, x: float) -> float:
        return math.exp(x) if self.margin.scale == "log" else x

    @property
    def shown(self) -> float:
        """The estimate on the number's display scale (the ratio A/B on the log scale)."""
        return self._display(self.estimate)

    @property
    def shown_lo(self) -> float:
        """The lower end of the 95% interval on the display scale."""
        return self._display(self.lo)

    @property
    def shown_hi(self) -> float:
        """The upper end of the 95% interval on the display scale."""
        return self._display(self.hi)

    def interval(self, alpha: float = ALPHA) -> tuple[float, float]:
        """The (1 - alpha) t-interval of the mean paired difference (analysis scale)."""
        return _interval(self.n, self.estimate, self.sd, alpha)

    def read(self, alpha: float = ALPHA) -> str:
        """The reading at another two-sided level (the equivalence part always uses the 90% interval)."""
        return reading_of(self.estimate, self.p, self.lo90, self.hi90, self.better, self.margin.half_width, alpha)

    def read_adjusted(self, p_adjusted: float) -> str:
        """The reading with a multiplicity-adjusted p-value in place of p (decided iff p_adjusted < ALPHA)."""
        return reading_of(self.estimate, p_adjusted, self.lo90, self.hi90, self.better, self.margin.half_width)


def _t_p(n: int, estimate: float, sd: float) -> float:
    if n < 2:
        return math.nan
    if sd == 0:
        return 0.0 if estimate != 0 else 1.0
    t = estimate / (sd / math.sqrt(n))
    return float(2 * stats.t.sf(abs(t), n - 1))


def _sign_flip_p(d: np.ndarray) -> float:
    n = d.size
    if n < _MIN_PERMUTATION_N:
        return math.nan
    observed = abs(d.mean()) - _TOL
    if n <= _EXACT_FLIPS:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        return float(np.mean(np.abs(signs @ d) / n >= observed))
    rng = np.random.default_rng(0)
    count = _count(_MC_FLIPS, n, lambda k: np.abs(rng.choice(np.array([-1.0, 1.0]), size=(k, n)) @ d) / n >= observed)
    return (1 + count) / (1 + _MC_FLIPS)


def _count(total: int, n: int, hits: Callable[[int], np.ndarray]) -> int:
    """Sum of `hits(k)` over chunks of k draws, so that a k x n matrix stays small for large n."""
    count, left = 0, total
    while left:
        k = min(left, max(1, 2_000_000 // n))
        count += int(np.sum(hits(k)))
        left -= k
    return count


def _power(m: int, d: float, s: float, h: float, alpha: float) -> float:
    """The larger of the t-test's power to exclude 0 and TOST's power to show equivalence, at m pairs."""
    df, se = m - 1, s / math.sqrt(m)
    tc = stats.t.ppf(1 - alpha / 2, df)
    nc = d / se
    excludes = stats.nct.sf(tc, df, nc) + stats.nct.cdf(-tc, df, nc)
    tc1 = stats.t.ppf(1 - ALPHA, df)
    # The usual approximation P(T2 < -tc1) - P(T1 <= tc1); a lower bound of the exact TOST power.
    equivalent = stats.nct.cdf(-tc1, df, (d - h) / se) - stats.nct.cdf(tc1, df, (d + h) / se)
    return float(max(excludes, equivalent, 0.0))


def _seeds_needed(n: int, d: float, s: float, h: float, alpha: float = ALPHA) -> tuple[int | None, bool]:
    """(seeds, beyond): the smallest m > n with power >= POWER, taking the observed d and s as the truth."""
    if n < 2 or not (math.isfinite(d) and math.isfinite(s)) or s <= 0:
        return None, False
    if n >= MAX_SEEDS or _power(MAX_SEEDS, d, s, h, alpha) < POWER:
        return None, True
    # Both powers grow with m for fixed d and s (TOST's only when |d| < h, else it never reaches POWER), so
    # an exponential then a binary search finds the smallest m.
    lo, hi = n, n + 1
    while _power(hi, d, s, h, alpha) < POWER:
        lo, hi = hi, min(MAX_SEEDS, n + 2 * (hi - n))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _power(mid, d, s, h, alpha) >= POWER:
            hi = mid
        else:
            lo = mid
    return hi, False


def paired(
    name: str,
    a: Sequence[float],
    b: Sequence[float],
    better: str,
    margin: Margin,
    seeds: Sequence[int] | None = None,
) -> Estimate:
    """Compare A with B seed by seed.

    Args:
        name: what is compared.
        a: A's values by seed.
        b: B's values by seed (the same seeds, in the same order).
        better: "higher" or "lower", the claimed direction of A relative to B.
        margin: the smallest difference that matters (its scale picks differences or log-ratios).
        seeds: seed ids of the values; default 0 .. len(a) - 1.

    Returns:
        The Estimate, its reading at ALPHA and, when undetermined, the seeds that would decide it.

    Raises:
        LandscapeError: unequal lengths, or `better` not "higher"/"lower".
    """
    s = _orient(better)
    av, bv = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    ids = tuple(range(av.size)) if seeds is None else tuple(int(k) for k in seeds)
    if not (av.size == bv.size == len(ids)):
        raise LandscapeError(f"{name}: A has {av.size} values, B {bv.size} and there are {len(ids)} seeds")
    keep = np.isfinite(av) & np.isfinite(bv)
    if margin.scale == "log":
        keep &= (av > 0) & (bv > 0)  # NaN compares False: no warning, the pair is already dropped
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.log(av[keep]) - np.log(bv[keep]) if margin.scale == "log" else av[keep] - bv[keep]
    n = int(d.size)
    estimate = float(d.mean()) if n else math.nan
    # No spread beyond rounding (log 4 - log 2 != log 2 - log 1 in floats) makes the interval the point itself.
    sd = (0.0 if np.ptp(d) <= 1e-12 * np.max(np.abs(d)) else float(d.std(ddof=1))) if n >= 2 else math.nan
    lo, hi = _interval(n, estimate, sd, ALPHA)
    lo90, hi90 = _interval(n, estimate, sd, 2 * ALPHA)
    p = _t_p(n, estimate, sd)
    h = margin.half_width
    reading = reading_of(estimate, p, lo90, hi90, better, h)
    needed, beyond = _seeds_needed(n, estimate, sd, h) if reading == UNDETERMINED else (None, False)
    p_improve = float(np.mean(np.where(s * d > 0, 1.0, np.where(d == 0, 0.5, 0.0)))) if n else math.nan
    kept = tuple(k for k, ok in zip(ids, keep, strict=True) if ok)
    dropped = tuple(k for k, ok in zip(ids, keep, strict=True) if not ok)
    return Estimate(
        name, better, margin, n, kept, dropped, estimate, lo, hi, lo90, hi90, p, sd, _sign_flip_p(d), p_improve,
        needed, beyond, reading
    )  # fmt: skip


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values; NaN stays NaN and does not count in the family size."""
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    k = order.size
    steps = np.minimum(1.0, (k - np.arange(k)) * p[order])
    out[order] = np.maximum.accumulate(steps) if k else steps
    return out


@dataclass(frozen=True)
class Judged:
    """A primary number read after Holm's correction over its claim's family.

    Attributes:
        estimate: the unadjusted comparison.
        p_adjusted: its Holm-adjusted p-value.
        reading: decided iff p_adjusted < ALPHA (the interval at the adjusted level excludes 0), in the estimate's
            direction; else no meaningful difference if the 90% interval lies inside the margin; else undetermined.
    """

    estimate: Estimate
    p_adjusted: float
    reading: str


def judge(primaries: Sequence[Estimate]) -> tuple[Judged, ...]:
    """Holm over the primaries' p-values, one Judged each (in the same order)."""
    adjusted = holm([e.p for e in primaries])
    return tuple(Judged(e, float(q), e.read_adjusted(float(q))) for e, q in zip(primaries, adjusted, strict=True))


@dataclass(frozen=True)
class ClaimVerdict:
    """The verdict on a claim whose primary numbers must all hold (a conjunction).

    Attributes:
        verdict: one of CLAIM_VERDICTS.
        judged: the primaries read after Holm.
        n: the smallest n over the primaries (0 without primaries).
        seeds_needed: for an undetermined claim, the largest seeds_needed over its undetermined primaries; None if
            any of them is beyond or unknown, or if none is undetermined, or if a part reads no meaningful difference
            (its parts disagree: no number of seeds is expected to make the conjunction hold).
        beyond: True when an undetermined primary would need more than MAX_SEEDS.
    """

    verdict: str
    judged: tuple[Judged, ...]
    n: int
    seeds_needed: int | None
    beyond: bool


def claim_verdict(primaries: Sequence[Estimate]) -> ClaimVerdict:
    """Reproduced when every primary supports after Holm, contradicted when any contradicts, no meaningful
    difference when every one reads so, else undetermined (`verdict_of` on `judge(primaries)`)."""
    return verdict_of(judge(primaries))


def verdict_of(judged: Sequence[Judged]) -> ClaimVerdict:
    """The verdict on a claim from its primaries already read after Holm (over this claim's family, or a larger
    one, e.g. every cell of a grid): see `claim_verdict`.

    Seeds needed are computed per number at ALPHA (a lower bound under the correction); a primary decided alone but
    undetermined after Holm gets them at ALPHA / family size (Bonferroni, which Holm's first step is).
    """
    judged = tuple(judged)
    readings = [j.reading for j in judged]
    n = min((j.estimate.n for j in judged), default=0)
    if judged and all(r == SUPPORTS for r in readings):
        return ClaimVerdict(REPRODUCED, judged, n, None, False)
    if any(r == CONTRADICTS for r in readings):
        return ClaimVerdict(CONTRADICTED, judged, n, None, False)
    if judged and all(r == NO_DIFFERENCE for r in readings):
        return ClaimVerdict(NO_DIFFERENCE, judged, n, None, False)
    if NO_DIFFERENCE in readings:  # a part shows no meaningful difference: more seeds are not expected to decide
        return ClaimVerdict(UNDETERMINED, judged, n, None, False)
    family = int(np.sum(~np.isnan([j.p_adjusted for j in judged])))
    needs = []
    for j in judged:
        if j.reading != UNDETERMINED:
            continue
        e = j.estimate
        if e.reading == UNDETERMINED:
            needs.append((e.seeds_needed, e.beyond))
        else:
            needs.append(_seeds_needed(e.n, e.estimate, e.sd, e.margin.half_width, ALPHA / max(family, 1)))
    beyond = any(b for _, b in needs)
    known = [m for m, _ in needs if m is not None]
    needed = max(known) if known and len(known) == len(needs) else None
    return ClaimVerdict(UNDETERMINED, judged, n, needed, beyond)


@dataclass(frozen=True)
class Correlation:
    """Does x predict y across models and seeds.

    Attributes:
        name: what is correlated.
        n: finite (x, y) points used.
        pearson: Pearson's r (NaN for n < 3 or no spread).
        spearman: Spearman's rho (average ranks for ties).
        p: two-sided permutation p-value of rho.
        expected_sign: +1 or -1, the claimed sign.
        seeds_needed: points for 80% power to detect the observed rho at ALPHA (Fisher z), at least n + 1; None when
            rho is 0/NaN or already significant.
        reading: SUPPORTS / CONTRADICTS when p < ALPHA with the expected / other sign, else UNDETERMINED.
    """

    name: str
    n: int
    pearson: float
    spearman: float
    p: float
    expected_sign: int
    seeds_needed: int | None
    reading: str

    def read_adjusted(self, p_adjusted: float) -> str:
        """The reading with an adjusted p-value (no equivalence reading for correlations)."""
        better = "higher" if self.expected_sign > 0 else "lower"
        return reading_of(self.spearman, p_adjusted, math.nan, math.nan, better, math.nan)


def correlation(
    name: str, x: Sequence[float], y: Sequence[float], expected_sign: int, n_perm: int = 10000, seed: int = 0
) -> Correlation:
    """Pearson and Spearman correlations of the finite (x, y) pairs (e.g. a flatness number and accuracy, one per
    model and seed), with a permutation test of Spearman's rho (`n_perm` shuffles of y's ranks, seeded by `seed`).

    Raises:
        LandscapeError: unequal lengths or an expected sign that is not ±1.
    """
    if expected_sign not in (1, -1):
        raise LandscapeError(f"{name}: expected_sign must be +1 or -1, not {expected_sign!r}")
    xv, yv = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if xv.size != yv.size:
        raise LandscapeError(f"{name}: x has {xv.size} values and y {yv.size}")
    keep = np.isfinite(xv) & np.isfinite(yv)
    xv, yv = xv[keep], yv[keep]
    n = int(xv.size)
    if n < 3 or np.ptp(xv) == 0 or np.ptp(yv) == 0:
        return Correlation(name, n, math.nan, math.nan, math.nan, expected_sign, None, UNDETERMINED)
    pearson = float(np.corrcoef(xv, yv)[0, 1])
    rx, ry = stats.rankdata(xv), stats.rankdata(yv)
    zx, zy = (rx - rx.mean()) / rx.std(), (ry - ry.mean()) / ry.std()
    rho = float(np.clip(zx @ zy / n, -1.0, 1.0))  # rounding can step past ±1
    rng = np.random.default_rng(seed)
    count = _count(n_perm, n, lambda k: np.abs(rng.permuted(np.tile(zy, (k, 1)), axis=1) @ zx / n) >= abs(rho) - _TOL)
    p = (1 + count) / (1 + n_perm)
    needed = None
    if rho != 0 and p >= ALPHA:
        z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)
        with np.errstate(divide="ignore"):
            needed = max(n + 1, math.ceil((z / np.arctanh(min(abs(rho), 1.0))) ** 2 + 3))
    row = Correlation(name, n, pearson, rho, p, expected_sign, needed, UNDETERMINED)
    return replace(row, reading=row.read_adjusted(p))


def judge_correlations(rows: Sequence[Correlation]) -> tuple[tuple[Correlation, float, str], ...]:
    """Holm over the rows' p-values: (row, p_adjusted, reading at the adjusted level) each."""
    adjusted = holm([r.p for r in rows])
    return tuple((r, float(q), r.read_adjusted(float(q))) for r, q in zip(rows, adjusted, strict=True))


def correlation_verdict(rows: Sequence[Correlation]) -> ClaimVerdict:
    """The verdict on a follow-up claim ("flatness predicts accuracy") from its correlation rows, Holm over them:
    reproduced when some row supports and none contradicts, contradicted in the mirror case, else undetermined (no
    equivalence reading for correlations). `n` is the smallest number of points; `seeds_needed` the points that
    would detect the strongest undecided correlation at POWER (None if no row has one)."""
    judged = judge_correlations(rows)
    readings = [r for _, _, r in judged]
    n = min((r.n for r in rows), default=0)
    if SUPPORTS in readings and CONTRADICTS not in readings:
        return ClaimVerdict(REPRODUCED, (), n, None, False)
    if CONTRADICTS in readings and SUPPORTS not in readings:
        return ClaimVerdict(CONTRADICTED, (), n, None, False)
    if SUPPORTS in readings:  # rows decided both ways: more points are not expected to settle it
        return ClaimVerdict(UNDETERMINED, (), n, None, False)
    needed = [r.seeds_needed for r, _, reading in judged if reading == UNDETERMINED and r.seeds_needed]
    return ClaimVerdict(UNDETERMINED, (), n, min(needed) if needed else None, False)


def _seeds_text(n: int, lang: str) -> str:
    if lang == "ja":
        return f"{n}シード"
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def format_estimate(e: Estimate, fmt: str = ".3g", unit: str = "", lang: str = "en", count: str | None = None) -> str:
    """The estimate, its 95% interval, p and seeds on the display scale, in `lang` ("en" or "ja").

    E.g. "×2.9 [2.4, 3.5], p = 0.004, 10 seeds" (the ratio A/B on the log scale) or "+4 pts [1, 7], p = 0.03, 10
    seeds": `fmt` formats the numbers; `unit` "pts" shows fractions as percentage points (×100), any other unit follows
    the estimate; `count` replaces "10 seeds" where the pairs are not seeds (e.g. epochs; "" leaves it out).
    """
    ja = lang == "ja"
    if e.n == 0:
        return "両方の値がそろったシードなし" if ja else "no seed with both values"
    scale = 100.0 if unit == "pts" else 1.0
    if e.margin.scale == "log":
        head, lo, hi = f"×{e.shown:{fmt}}", f"{e.shown_lo:{fmt}}", f"{e.shown_hi:{fmt}}"
    else:
        head = f"{e.estimate * scale:+{fmt}}" + (f" {unit}" if unit else "")
        lo, hi = f"{e.lo * scale:{fmt}}", f"{e.hi * scale:{fmt}}"
    if e.n < 2:
        return f"{head}（1シード：区間なし）" if ja else f"{head} (1 seed: no interval)"
    sep = "、" if ja else ", "
    n = _seeds_text(e.n, lang) if count is None else count
    return sep.join(x for x in (f"{head} [{lo}, {hi}]", _p_text(e.p), n) if x)


_SENTENCES = {  # key -> (English, Japanese)
    SUPPORTS: ("Supported at {seeds}.", "{seeds}で支持。"),
    REPRODUCED: ("Reproduced at {seeds}.", "{seeds}で再現。"),
    CONTRADICTS: ("Contradicted at {seeds}.", "{seeds}で反証。"),
    CONTRADICTED: ("Contradicted at {seeds}.", "{seeds}で反証。"),
    NO_DIFFERENCE: ("No difference larger than {words} ({seeds}).", "{words}を超える差はない（{seeds}）。"),
    "one": (
        "Undetermined at {seeds}: at least 2 are needed for an interval.",
        "{seeds}では未決定。区間には少なくとも2シードが必要。",
    ),
    "beyond": (
        "Undetermined after {seeds}; more than {max} would be needed.",
        "{seeds}では未決定。{max}シードを超えて必要な見込み。",
    ),
    "needed": (
        "Undetermined after {seeds}; about {needed} would decide it.",
        "{seeds}では未決定。約{needed}シードで決まる見込み。",
    ),
    UNDETERMINED: ("Undetermined after {seeds}.", "{seeds}では未決定。"),
}


def reading_sentence(
    reading: str, n: int, seeds_needed: int | None, beyond: bool, margin: Margin, lang: str = "en"
) -> str:
    """One sentence for a reading (READINGS) or a claim verdict (CLAIM_VERDICTS), e.g. "Supported at 10 seeds." or
    "10シードで支持。"; `seeds_needed` and `beyond` serve an undetermined one, `margin` a no meaningful difference."""
    if reading not in _SENTENCES or reading in ("one", "beyond", "needed"):
        raise LandscapeError(f"unknown reading {reading!r}")
    key = reading
    if reading == UNDETERMINED:
        key = "one" if n < 2 else "beyond" if beyond else "needed" if seeds_needed is not None else UNDETERMINED
    en, ja = _SENTENCES[key]
    return (ja if lang == "ja" else en).format(
        seeds=_seeds_text(n, lang), words=margin.words(lang), max=MAX_SEEDS, needed=seeds_needed
    )
