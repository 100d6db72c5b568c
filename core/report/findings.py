"""The findings report's content and its rules, as pure functions of plain numbers.

- Statistics: `mean_std`, `correlation` (with a permutation p-value), `epochs_to_reach`, `convergence_target`.
- The verdict rule: `number_reading` (one number: supports / contradicts / inconclusive against the spread over
  seeds), `claim_verdict` (a claim from its numbers), `correlation_reading`.
- The report's content: `Row`, `Table`, `CorrelationRow`, `Claim`, `Findings` (frozen, plain values), and its
  markdown, `render_markdown`.

`core.studies.reproduce` measures and fills these; `core.studies.regimes` and `core.studies.generalization` add claims
with the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.report.plots_flatness import correlations, rankdata

SUPPORTS, CONTRADICTS, INCONCLUSIVE = "supports", "contradicts", "inconclusive"
REPRODUCED, NOT_REPRODUCED, UNDECIDED = "reproduced", "not reproduced", "inconclusive at this scale"


# --------------------------------------------------------------------------------------------------------------------
# Statistics and the verdict rule (pure)


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1; NaN for fewer than 2 values) and count of the finite values."""
    v = np.asarray([float(x) for x in values], dtype=float)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.nan, 1
    if np.ptp(v) == 0:  # equal values: exactly no spread (the float mean could leave ~1e-17)
        return float(v[0]), 0.0, n
    return float(v.mean()), float(v.std(ddof=1)), n


def number_reading(a: Sequence[float], b: Sequence[float], better: str) -> str:
    """Whether one number supports the claim "A is `better` (higher / lower) than B".

    The rule: with d the difference of the means in the claimed direction and s the combined spread (the sum of
    the two sample standard deviations over seeds), the number supports the claim if d > s, contradicts it if
    -d > s, and is inconclusive otherwise, or when either side has fewer than 2 finite values (no spread).
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    ma, sa, na = mean_std(a)
    mb, sb, nb = mean_std(b)
    if na < 2 or nb < 2:
        return INCONCLUSIVE
    d = ma - mb if better == "higher" else mb - ma
    spread = sa + sb
    if d > spread:
        return SUPPORTS
    if -d > spread:
        return CONTRADICTS
    return INCONCLUSIVE


def claim_verdict(readings: Sequence[str]) -> str:
    """A claim's verdict from the readings of its counted numbers.

    Reproduced: at least half of the numbers support it and supporting numbers outnumber contradicting ones at
    least 3 to 1. Not reproduced: the same with the roles swapped. Inconclusive at this scale: anything else
    (including no numbers).
    """
    n = len(readings)
    s = sum(r == SUPPORTS for r in readings)
    c = sum(r == CONTRADICTS for r in readings)
    if n and 2 * s >= n and s >= 3 * c:
        return REPRODUCED
    if n and 2 * c >= n and c >= 3 * s:
        return NOT_REPRODUCED
    return UNDECIDED


def correlation(x: Sequence[float], y: Sequence[float], n_perm: int = 10000, seed: int = 0) -> dict[str, float]:
    """Pearson r and Spearman rho of the finite pairs, with a two-sided permutation p-value for rho.

    p = (1 + #{permutations with |rho_perm| >= |rho|}) / (1 + n_perm), permuting y's ranks with a seeded generator.

    Returns:
        {"n", "pearson", "spearman", "p_spearman"}; NaN coefficients (and p) for n < 3 or no spread.
    """
    out = dict(correlations(x, y))
    out["p_spearman"] = math.nan
    if not np.isfinite(out["spearman"]):
        return out
    xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(xv) & np.isfinite(yv)
    rx, ry = rankdata(xv[ok]), rankdata(yv[ok])
    zx = (rx - rx.mean()) / rx.std()
    zy = (ry - ry.mean()) / ry.std()
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n_perm, len(zy))), axis=1)
    r_perm = (zx[None, :] * zy[perms]).mean(axis=1)
    hits = int(np.sum(np.abs(r_perm) >= abs(out["spearman"]) - 1e-12))
    out["p_spearman"] = (1 + hits) / (1 + n_perm)
    return out


def correlation_reading(rho: float, p: float, expected_sign: int, alpha: float) -> str:
    """Supports if the rank correlation is significant (p < alpha) with the expected sign, contradicts if
    significant with the other sign, inconclusive otherwise."""
    if not (np.isfinite(rho) and np.isfinite(p)) or p >= alpha or rho == 0:
        return INCONCLUSIVE
    return SUPPORTS if np.sign(rho) == np.sign(expected_sign) else CONTRADICTS


def epochs_to_reach(history: Sequence[dict], key: str, target: float, mode: str) -> float:
    """The first epoch whose `key` is at or below (`mode="below"`) / at or above (`"above"`) `target`; NaN if none."""
    if mode not in ("below", "above"):
        raise ValueError(f"mode must be 'below' or 'above', got {mode!r}")
    for i, row in enumerate(history):
        v = row.get(key)
        if v is None or not np.isfinite(float(v)):
            continue
        if (float(v) <= target) if mode == "below" else (float(v) >= target):
            return float(row.get("epoch", i + 1))
    return math.nan


def convergence_target(histories: Sequence[Sequence[dict]], key: str, mode: str) -> float:
    """The level every run reaches at some epoch: the worst of the runs' best values (max of the minima for
    "below", min of the maxima for "above")."""
    best = []
    for h in histories:
        vals = [float(r[key]) for r in h if r.get(key) is not None and np.isfinite(float(r[key]))]
        if vals:
            best.append(min(vals) if mode == "below" else max(vals))
    if not best:
        return math.nan
    return max(best) if mode == "below" else min(best)


# --------------------------------------------------------------------------------------------------------------------
# The report's content (plain values) and its markdown


@dataclass(frozen=True)
class Row:
    """One number compared between model A and model B over seeds.

    Attributes:
        name: what the number is.
        a: A's value per seed. b: B's value per seed.
        better: the claim's direction for A ("higher" / "lower"), or "" for a number shown without a reading.
        counted: whether the reading counts towards the claim's verdict.
        fmt: format of the values.
    """

    name: str
    a: tuple[float, ...]
    b: tuple[float, ...]
    better: str = ""
    counted: bool = True
    fmt: str = ".3g"

    @property
    def reading(self) -> str:
        return number_reading(self.a, self.b, self.better) if self.better else ""


@dataclass(frozen=True)
class Table:
    title: str
    a_label: str
    b_label: str
    rows: tuple[Row, ...]
    note: str = ""


@dataclass(frozen=True)
class CorrelationRow:
    """The correlation of one flatness number with accuracy across models and seeds."""

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    expected_sign: int  # +1: larger is flatter and is expected to go with higher accuracy; -1: the opposite
    n_perm: int = 10000

    @property
    def stats(self) -> dict[str, float]:
        return correlation(self.x, self.y, n_perm=self.n_perm)


@dataclass(frozen=True)
class Claim:
    """One claim: what is claimed, the evidence tables and figures, and (for the follow-up) correlations."""

    title: str
    statement: str
    tables: tuple[Table, ...] = ()
    correlations: tuple[CorrelationRow, ...] = ()
    alpha: float = 0.05  # family-wise level for the correlations (Bonferroni over the rows)
    figures: tuple[tuple[str, str], ...] = ()  # (caption, link)
    text: str = ""  # markdown shown before the tables
    correlation_title: str = "Correlation with linear-probe accuracy"  # what `correlations` correlate with

    def correlation_alpha(self) -> float:
        return self.alpha / max(1, len(self.correlations))

    def readings(self) -> list[tuple[str, str]]:
        """(name, reading) of every counted number."""
        out = [
            (f"{r.name.split(' (')[0]} ({t.title.split(' (')[0].lower()})", r.reading)
            for t in self.tables
            for r in t.rows
            if r.counted and r.better
        ]
        a = self.correlation_alpha()
        for c in self.correlations:
            s = c.stats
            out.append((c.name, correlation_reading(s["spearman"], s["p_spearman"], c.expected_sign, a)))
        return out

    @property
    def verdict(self) -> str:
        return claim_verdict([r for _, r in self.readings()])


@dataclass(frozen=True)
class Findings:
    title: str
    command: str
    setup: tuple[tuple[str, str], ...]
    claims: tuple[Claim, ...]
    notes: tuple[str, ...] = ()
    preface: str = ""
    sections: tuple[tuple[str, str], ...] = ()  # (title, markdown) after the claims, e.g. claim 2 across regimes


def _fmt(v: float, fmt: str) -> str:
    return "n/a" if not np.isfinite(v) else format(v, fmt)


def format_mean_std(values: Sequence[float], fmt: str = ".3g") -> str:
    """'mean ± std' over seeds ('mean' alone for one value, 'n/a' for none)."""
    m, s, n = mean_std(values)
    if n == 0:
        return "n/a"
    if n == 1:
        return _fmt(m, fmt)
    return f"{_fmt(m, fmt)} ± {_fmt(s, fmt)}"


def _table_md(t: Table) -> list[str]:
    lines = [f"### {t.title}", ""]
    if t.note:
        lines += [t.note, ""]
    lines += [
        f"| number | {t.a_label} | {t.b_label} | claimed | reading |",
        "|---|---|---|---|---|",
    ]
    for r in t.rows:
        claimed = f"{t.a_label} {r.better}" if r.better else "—"
        reading = r.reading or "—"
        if r.better and not r.counted:
            reading += " (not counted)"
        lines.append(
            f"| {r.name} | {format_mean_std(r.a, r.fmt)} | {format_mean_std(r.b, r.fmt)} | {claimed} | {reading} |"
        )
    lines.append("")
    return lines


def _correlations_md(c: Claim) -> list[str]:
    a = c.correlation_alpha()
    lines = [
        f"### {c.correlation_title}",
        "",
        f"Rank correlation counted as significant when the permutation p-value is below {c.alpha:g} / "
        f"{len(c.correlations)} = {a:.2g} (Bonferroni over the rows).",
        "",
        "| flatness number | n | Pearson r | Spearman rho | permutation p (rho) | expected sign | reading |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in c.correlations:
        s = row.stats
        reading = correlation_reading(s["spearman"], s["p_spearman"], row.expected_sign, a)
        sign = "+" if row.expected_sign > 0 else "−"
        lines.append(
            f"| {row.name} | {int(s['n'])} | {_fmt(s['pearson'], '.2f')} | {_fmt(s['spearman'], '.2f')} | "
            f"{_fmt(s['p_spearman'], '.3g')} | {sign} | {reading} |"
        )
    lines.append("")
    return lines


def _verdict_md(c: Claim) -> list[str]:
    readings = c.readings()
    n = len(readings)
    sup = [name for name, r in readings if r == SUPPORTS]
    con = [name for name, r in readings if r == CONTRADICTS]
    lines = [
        f"**Verdict: {c.verdict}.** Of {n} counted numbers: {len(sup)} support the claim, {len(con)} contradict it, "
        f"{n - len(sup) - len(con)} inconclusive.",
        "",
    ]
    if sup:
        lines += ["Supporting: " + "; ".join(sup) + ".", ""]
    if con:
        lines += ["Contradicting: " + "; ".join(con) + ".", ""]
    return lines


def render_markdown(f: Findings) -> str:
    """The report: summary of verdicts, setup, one section per claim (verdict, tables, figures), notes."""
    lines = [
        f"# {f.title}",
        "",
        f"_Generated by `{f.command}`; do not edit by hand, rerun the command (every step is cached)._",
        "",
    ]
    if f.preface:
        lines += [f.preface, ""]
    lines += ["## Summary", "", "| claim | verdict | support / contradict / inconclusive |", "|---|---|---|"]
    for c in f.claims:
        rs = [r for _, r in c.readings()]
        s, k = rs.count(SUPPORTS), rs.count(CONTRADICTS)
        lines.append(f"| {c.title} | **{c.verdict}** | {s} / {k} / {len(rs) - s - k} |")
    lines += ["", "## Setup", ""]
    lines += [f"- **{label}**: {text}" for label, text in f.setup]
    lines.append("")
    for i, c in enumerate(f.claims, 1):
        lines += [f"## {i}. {c.title}", "", f"> {c.statement}", ""]
        lines += _verdict_md(c)
        if c.text:
            lines += [c.text, ""]
        for t in c.tables:
            lines += _table_md(t)
        if c.correlations:
            lines += _correlations_md(c)
        if c.figures:
            lines += ["Figures:", ""]
            lines += [f"- [{cap}]({link})" for cap, link in c.figures]
            lines.append("")
    for title, text in f.sections:
        lines += [f"## {title}", "", text, ""]
    if f.notes:
        lines += ["## Caveats", ""]
        lines += [f"- {n}" for n in f.notes]
        lines.append("")
    return "\n".join(lines)
