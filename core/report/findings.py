"""The findings report's content, as pure functions of plain numbers, judged by the one rule of
`core.report.verdicts`.

- Statistics shown beside the verdicts: `mean_std`, `format_mean_std`, `epochs_to_reach`, `convergence_target`.
- The report's content: `Row` (one number of A and B by seed, with its paired estimate), `Table`,
  `CorrelationRow`, `Claim` (its primary numbers, declared with a reason, decide its verdict), `Findings`, and the
  markdown, `render_markdown`.
- `premise_estimates`: the premise's primary numbers (pre-trained vs scratch, paired by seed, averaged over label
  budgets), shared by docs/FINDINGS.md and the Overview's briefing so that both read the same runs the same way.

`core.studies.reproduce` measures and fills these; `core.studies.regimes` and `core.studies.generalization` add claims
with the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from core.report.verdicts import (
    ALPHA,
    MARGINS,
    READINGS,
    UNDETERMINED,
    ClaimVerdict,
    Correlation,
    Estimate,
    claim_verdict,
    correlation,
    correlation_verdict,
    format_estimate,
    judge_correlations,
    paired,
    reading_sentence,
)

# --------------------------------------------------------------------------------------------------------------------
# Statistics shown beside the verdicts (pure)


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


def premise_pairs(
    acc: Mapping[str, Mapping[object, Mapping[int, float]]],
) -> dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[int, ...]]]:
    """Per pre-trained kind ("mae", "rcmae") present: its validation accuracy and scratch's, each averaged over the
    label budgets, by seed (NaN for a seed missing any budget on either side: the rule drops that pair).

    Args:
        acc: kind ("mae", "rcmae", "scratch") -> budget -> seed -> validation accuracy (a fraction).

    Returns:
        kind -> (A by seed, scratch by seed, seeds).
    """
    scratch = acc.get("scratch") or {}
    budgets = list(scratch)
    seeds = tuple(sorted({s for by_seed in scratch.values() for s in by_seed}))

    def mean_over_budgets(side: Mapping[object, Mapping[int, float]], seed: int) -> float:
        vals = [float(side.get(b, {}).get(seed, math.nan)) for b in budgets]
        return float(np.mean(vals)) if vals and all(math.isfinite(v) for v in vals) else math.nan

    return {
        kind: (
            tuple(mean_over_budgets(acc[kind], s) for s in seeds),
            tuple(mean_over_budgets(scratch, s) for s in seeds),
            seeds,
        )
        for kind in ("mae", "rcmae")
        if acc.get(kind)
    }


PREMISE_LABEL = {"mae": "MAE vs scratch", "rcmae": "RC-MAE vs scratch"}


def premise_estimates(acc: Mapping[str, Mapping[object, Mapping[int, float]]]) -> tuple[Estimate, ...]:
    """The premise's primary numbers, one per pre-trained kind present (`premise_pairs`): the paired accuracy
    difference to scratch averaged over the label budgets, with the accuracy margin. Judge them together with
    `claim_verdict` (Holm over the kinds): docs/FINDINGS.md's premise and the Overview's briefing both do."""
    return tuple(
        paired(PREMISE_LABEL[kind], a, b, "higher", MARGINS["accuracy"], seeds)
        for kind, (a, b, seeds) in premise_pairs(acc).items()
    )


@dataclass(frozen=True)
class Row:
    """One number compared between model A and model B, by seed.

    Attributes:
        name: what the number is.
        a: A's value per seed. b: B's value per seed (the same seeds, in the same order).
        better: the claim's direction for A ("higher" / "lower"), or "" for a number shown without a reading.
        primary: whether it is (one of) its claim's primary number(s), which alone decide the verdict; the others
            are shown with their intervals and readings, never counted.
        fmt: format of the values.
        margin: the `core.report.verdicts.MARGINS` key: its scale (log-ratio or difference) and equivalence margin.
        seeds: the seed ids of the values (default 0..n-1).
        context: where the number is from, added to its estimate's name (e.g. "linear-probe loss").
    """

    name: str
    a: tuple[float, ...]
    b: tuple[float, ...]
    better: str = ""
    primary: bool = False
    fmt: str = ".3g"
    margin: str = "ratio"
    seeds: tuple[int, ...] = ()
    context: str = ""

    @cached_property
    def estimate(self) -> Estimate | None:
        """The paired comparison of A with B (None for a number without a direction)."""
        if not self.better:
            return None
        name = f"{self.name.split(' (')[0]}, {self.context}" if self.context else self.name
        return paired(name, self.a, self.b, self.better, MARGINS[self.margin], self.seeds or None)

    @property
    def reading(self) -> str:
        """The unadjusted reading ("" without a direction); a primary's verdict reading is after Holm."""
        return self.estimate.reading if self.estimate is not None else ""


@dataclass(frozen=True)
class Table:
    title: str
    a_label: str
    b_label: str
    rows: tuple[Row, ...]
    note: str = ""


@dataclass(frozen=True)
class CorrelationRow:
    """The correlation of one flatness number with accuracy (or a gap) across models and seeds."""

    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    expected_sign: int  # +1: larger is flatter and is expected to go with higher accuracy; -1: the opposite
    n_perm: int = 10000

    @cached_property
    def stats(self) -> Correlation:
        return correlation(self.name, self.x, self.y, self.expected_sign, n_perm=self.n_perm)


@dataclass(frozen=True)
class Claim:
    """One claim: what is claimed, its primary number(s) with the reason, the evidence tables and figures, and (for
    a follow-up) correlations.

    The verdict (`judgement`) is `core.report.verdicts.claim_verdict` over the primary rows (Holm across them, a
    conjunction); a claim of correlations only is `correlation_verdict` over its rows (Holm across them).
    """

    title: str
    statement: str
    tables: tuple[Table, ...] = ()
    correlations: tuple[CorrelationRow, ...] = ()
    figures: tuple[tuple[str, str], ...] = ()  # (caption, link)
    text: str = ""  # markdown shown before the tables
    correlation_title: str = "Correlation with linear-probe accuracy"  # what `correlations` correlate with
    primary_reason: str = ""  # why the primary number(s) were chosen, declared before measuring

    def primary_rows(self) -> list[Row]:
        return [r for t in self.tables for r in t.rows if r.primary and r.better]

    @cached_property
    def judgement(self) -> ClaimVerdict:
        rows = self.primary_rows()
        if rows:
            return claim_verdict([r.estimate for r in rows])
        if self.correlations:
            return correlation_verdict([c.stats for c in self.correlations])
        return ClaimVerdict(UNDETERMINED, (), 0, None, False)

    @property
    def verdict(self) -> str:
        return self.judgement.verdict

    def verdict_text(self) -> str:
        """The verdict with its evidence (`judgement_text`)."""
        if self.correlations and not self.primary_rows():
            rows = judge_correlations([c.stats for c in self.correlations])
            return judgement_text(self.judgement, "points", [r for _, _, r in rows], "rows")
        return judgement_text(self.judgement)


def judgement_text(
    j: ClaimVerdict, unit: str = "seeds", readings: Sequence[str] | None = None, what: str = "parts"
) -> str:
    """A claim's verdict with its evidence: "reproduced at 8 seeds", "undetermined at 8 seeds (about 23 needed)",
    "undetermined at 8 seeds: its parts disagree (1 supports, 1 no meaningful difference, 1 undetermined)".

    Args:
        j: the verdict.
        unit: what n counts ("seeds"; "points" for correlations).
        readings: the readings of its parts (default: its primaries' after Holm), counted when they disagree.
        what: the parts' name in the sentence ("parts", "rows").
    """
    if unit == "seeds" and j.n == 1:
        unit = "seed"
    text = f"{j.verdict} at {j.n} {unit}"
    if j.verdict != UNDETERMINED:
        return text
    if j.beyond:
        return text + " (more than 1000 needed)"
    if j.seeds_needed:
        return text + f" (about {j.seeds_needed} needed)"
    readings = [x.reading for x in j.judged] if readings is None else list(readings)
    counts = {r: readings.count(r) for r in READINGS if readings.count(r)}
    if len(counts) > 1:
        text += f": its {what} disagree ({', '.join(f'{k} {r}' for r, k in counts.items())})"
    return text


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


# Display formats of the paired estimates by margin (accuracy in points).
_ESTIMATE_FMT = {"accuracy": ".1f", "epochs": ".1f", "fraction": ".2f"}


def estimate_cell(e: Estimate | None) -> str:
    """The paired estimate for a markdown cell: "×2.9 [2.4, 3.5], p = 0.004, 8 seeds" (accuracies in points)."""
    if e is None:
        return "—"
    unit = "pts" if e.margin.name == "accuracy" else ""
    return format_estimate(e, _ESTIMATE_FMT.get(e.margin.name, ".3g"), unit)


def reading_cell(e: Estimate | None) -> str:
    """The reading, with the seeds that would decide an undetermined one."""
    if e is None:
        return "—"
    if e.reading != UNDETERMINED:
        return e.reading
    if e.n < 2:
        return "undetermined (1 seed)"
    if e.beyond:
        return "undetermined (> 1000 seeds needed)"
    return f"undetermined (~{e.seeds_needed} seeds needed)" if e.seeds_needed else "undetermined"


def _table_md(t: Table) -> list[str]:
    lines = [f"### {t.title}", ""]
    if t.note:
        lines += [t.note, ""]
    lines += [
        f"| number | {t.a_label} | {t.b_label} | claimed | {t.a_label} vs {t.b_label}, paired: estimate [95% CI] | "
        f"P({t.a_label} better) | reading |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in t.rows:
        e = r.estimate
        claimed = f"{t.a_label} {r.better}" if r.better else "—"
        name = f"**{r.name} (primary)**" if r.primary and r.better else r.name
        p_imp = _fmt(e.p_improve, ".2f") if e is not None else "—"
        lines.append(
            f"| {name} | {format_mean_std(r.a, r.fmt)} | {format_mean_std(r.b, r.fmt)} | {claimed} | "
            f"{estimate_cell(e)} | {p_imp} | {reading_cell(e)} |"
        )
    lines.append("")
    return lines


def _correlations_md(c: Claim) -> list[str]:
    rows = judge_correlations([row.stats for row in c.correlations])
    lines = [
        f"### {c.correlation_title}",
        "",
        f"A rank correlation decides when its permutation p-value, Holm-adjusted over the {len(rows)} rows, is below "
        f"{ALPHA:g}; the sign says whether it supports or contradicts. Points needed: for 80% power to detect the "
        "observed rho (Fisher z).",
        "",
        "| flatness number | n | Pearson r | Spearman rho | permutation p | Holm p | expected sign | reading |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, p_adj, reading in rows:
        sign = "+" if s.expected_sign > 0 else "−"
        if reading == UNDETERMINED and s.seeds_needed:
            reading = f"undetermined (~{s.seeds_needed} points needed)"
        lines.append(
            f"| {s.name} | {s.n} | {_fmt(s.pearson, '.2f')} | {_fmt(s.spearman, '.2f')} | {_fmt(s.p, '.3g')} | "
            f"{_fmt(p_adj, '.3g')} | {sign} | {reading} |"
        )
    lines.append("")
    return lines


def _verdict_md(c: Claim) -> list[str]:
    j = c.judgement
    lines = [f"**Verdict: {c.verdict_text()}.**", ""]
    if j.judged:
        margin = j.judged[0].estimate.margin
        lines += [reading_sentence(j.verdict, j.n, j.seeds_needed, j.beyond, margin), ""]
        k = len(j.judged)
        lines += [
            "Primary number"
            + ("s (Holm over the " + str(k) + ")" if k > 1 else "")
            + ": "
            + "; ".join(
                f"{x.estimate.name}: {estimate_cell(x.estimate)}"
                + (f", Holm p = {_fmt(x.p_adjusted, '.2g')}" if k > 1 else "")
                + f" → {x.reading}"
                for x in j.judged
            )
            + ".",
            "",
        ]
    if c.primary_reason:
        lines += [f"Why this primary: {c.primary_reason}", ""]
    return lines


def _primary_cell(c: Claim) -> str:
    j = c.judgement
    if j.judged:
        return "; ".join(f"{x.estimate.name}: {estimate_cell(x.estimate)}" for x in j.judged)
    if c.correlations:
        best = min((r.stats for r in c.correlations), key=_p_key)
        return f"strongest: {best.name}, rho {_fmt(best.spearman, '.2f')}, p {_fmt(best.p, '.2g')}"
    return "—"


def _p_key(s: Correlation) -> float:
    return s.p if math.isfinite(s.p) else 2.0


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
    lines += ["## Summary", "", "| claim | verdict | primary number(s): paired estimate [95% CI] |", "|---|---|---|"]
    for c in f.claims:
        lines.append(f"| {c.title} | **{c.verdict_text()}** | {_primary_cell(c)} |")
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
