"""The stakeholder briefing: the seed's question, a verdict on each of its four points, a sentence for the meeting.

The seed's chain for a manager has four links, and the briefing keeps every one, whatever it measured: training cost,
stability (flatness), generalization (fine-tuned vs the same ViT from scratch) and inference cost. Built on the
executive summary (`core.report.summary`, which decides the cost, flatness and inference verdicts and writes the full
measured text) and, when the facts carry it, the fine-tuning measurement (facts key "generalization") and the paired
latency (facts key "latency_pair"). Nothing here is canned: every sentence is composed from the verdicts and the
numbers at hand, and says so plainly when a point is undetermined, contradicted or not measured yet.

- `compose(facts, lang, context)` -> `Briefing`: per point the claim it judges, a verdict, one short sentence (at most
  `MAX_WORDS` words in English, `MAX_CHARS` characters in Japanese), its headline numbers (both pre-trained kinds
  where two are compared; a delta is coloured only when its interval decides, `delta_color`), the full measured text,
  the numbers, how many seeds stand behind it and, when undetermined, what would settle it; then the meeting sentence,
  which names every point, those that contradict the paper included.
- Every verdict is the one rule of `core.report.verdicts`. Generalization: pre-trained vs from scratch, validation
  accuracy paired by seed, exactly as docs/FINDINGS.md's premise (`core.report.premise_estimates`, Holm over the two
  kinds). Inference cost rests on exact counts; latency is only shown, as an interleaved paired measurement.

The phrase tables live in `core.report.briefing_text`; the HTML export in `core.app.briefing_html`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import LandscapeError
from core.report.briefing_text import KIND as _KIND
from core.report.briefing_text import SCRATCH as _SCRATCH
from core.report.briefing_text import T
from core.report.comparison import comparisons
from core.report.findings import PREMISE_LABEL, premise_estimates
from core.report.roi_text import roi_sentence
from core.report.stability_text import stability_sentence
from core.report.summary import LANGS, ModelFacts, Point, Summary, executive_summary, fmt_count
from core.report.verdicts import (
    CONTRADICTS,
    MARGINS,
    NO_DIFFERENCE,
    POINT_READING,
    SUPPORTS,
    UNDETERMINED,
    claim_verdict,
    format_estimate,
    paired,
    reading_sentence,
)

MAX_WORDS = 25  # English short sentences
MAX_CHARS = 60  # Japanese short sentences
POINT_KEYS = ("cost", "stab", "general", "inf")  # the seed's chain, in the order a manager reads it


@dataclass(frozen=True)
class Headline:
    """One number in `st.metric` style.

    Attributes:
        label: what it is.
        value: the number, formatted (short: it is drawn large).
        delta: the comparison, formatted with a sign ("" when there is none).
        color: "normal" (up is good), "inverse" (up is bad) or "off" (`delta_color`: off unless the interval decides).
        spread: its spread ("95% interval [a, b], n seeds"), or why it is unknown.
    """

    label: str
    value: str
    delta: str = ""
    color: str = "off"
    spread: str = ""


@dataclass(frozen=True)
class BriefPoint:
    """One of the four points of the briefing.

    Attributes:
        key: "cost", "stab", "general" or "inf" (`POINT_KEYS`).
        title: a short heading.
        claim: the claim its verdict judges, in words.
        verdict: "supports" | "contradicts" | "no meaningful difference" | "undetermined" (of the seed's claim,
            `core.report.verdicts`).
        short: one plain sentence.
        headlines: its numbers (one, or one per compared pair or kind).
        details: the full measured text (paragraphs).
        numbers: the numbers behind it (name -> value).
        why: for an undetermined verdict, what would settle it ("" otherwise).
        measured: False when the point has nothing measured yet.
        seeds: how many seeds stand behind the verdict (0 when not measured or not a seed comparison).
        note: a second measured sentence shown under the short one (stability: accuracy under input corruptions,
            `core.report.stability_text`, when cached), "" otherwise.
    """

    key: str
    title: str
    claim: str
    verdict: str
    short: str
    headlines: tuple[Headline, ...]
    details: tuple[str, ...]
    numbers: dict[str, float | str]
    why: str = ""
    measured: bool = True
    seeds: int = 0
    note: str = ""

    @property
    def headline(self) -> Headline:
        """The first headline number."""
        return self.headlines[0]


@dataclass(frozen=True)
class Briefing:
    """The question, the four points, the meeting sentence, the language (and the summary behind it)."""

    question: str
    points: tuple[BriefPoint, ...]
    meeting: str
    lang: str
    summary: Summary
    context: dict = field(default_factory=dict)

    def point(self, key: str) -> BriefPoint:
        """The point under `key` (`POINT_KEYS`)."""
        return next(p for p in self.points if p.key == key)


def delta_color(reading: str | None, up_is_good: bool) -> str:
    """The colour of a delta: by its direction only when its interval decides (supports / contradicts); neutral when
    the difference is within the interval, shown as no meaningful difference, or not measured."""
    if reading not in (SUPPORTS, CONTRADICTS):
        return "off"
    return "normal" if up_is_good else "inverse"


# --------------------------------------------------------------------------------------------------------------------
# Helpers


def words(text: str) -> int:
    """English words in a sentence (numbers count as words)."""
    return len(text.split())


def within_limit(text: str, lang: str) -> bool:
    """Whether a short sentence fits the briefing's limit for its language."""
    return len(text) <= MAX_CHARS if lang == "ja" else words(text) <= MAX_WORDS


def _pct(x: float) -> str:
    return f"{abs(x):.1f}%"


def _signed_pct(x: float) -> str:
    return f"{x:+.1f}%"


def _acc(x: float) -> str:
    return f"{100 * x:.1f}%" if x <= 1.0 else f"{x:.1f}%"


def _ratio(x: float, lang: str) -> str:
    return f"{x:.2f}" + ("倍" if lang == "ja" else "x")


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _join(items: Sequence[str], t: dict) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return t["sep"].join(items[:-1]) + t["and"] + items[-1]


def regime_text(context: dict, lang: str) -> str:
    """'micro models, 3 epochs, synthetic data' from the context (models' training settings)."""
    parts = []
    if context.get("preset"):
        parts.append(f"{context['preset']} ViT" if lang == "en" else f"{context['preset']} ViT")
    if context.get("epochs"):
        parts.append(f"{context['epochs']} epochs" if lang == "en" else f"{context['epochs']}エポック")
    if context.get("data"):
        parts.append(f"{context['data']} data" if lang == "en" else f"{context['data']}データ")
    return (", " if lang == "en" else "、").join(parts) or ("these models" if lang == "en" else "このモデル")


# --------------------------------------------------------------------------------------------------------------------
# The points


def _interval(lo: float, hi: float, n: int, lang: str, fmt_: str = ".2f", unit: str = "seed") -> str:
    """ "95% interval [lo, hi], n seeds" (or n epoch pairs: `unit` "epoch"), or why there is none."""
    t = T[lang]
    if n < 2 or not (_finite(lo) and _finite(hi)):
        return t[f"one_{unit}"]
    count = t[f"n_{unit}s"].format(n=n)
    return t["sp_interval"].format(lo=format(lo, fmt_), hi=format(hi, fmt_), n=count)


def _claim(key: str, lang: str) -> str:
    return T[lang][f"claim_{key}"]


def _not_measured(key: str, p: Point, label: str, lang: str) -> BriefPoint:
    """A summary point with nothing measured yet: "<key>_missing" as its sentence, "n/a" under its headline label."""
    t = T[lang]
    head = (Headline(t[label], "n/a"),)
    short = t[f"{key}_missing"]
    return BriefPoint(
        key, p.title, _claim(key, lang), p.verdict, short, head, (p.sentence,), p.numbers, t["why_missing"], False
    )


def _cost_point(p: Point, lang: str) -> BriefPoint:
    t, n = T[lang], p.numbers
    claim = _claim("cost", lang)
    if "epoch_time_ratio" not in n:
        return _not_measured("cost", p, "h_cost", lang)
    ratio, extra = float(n["epoch_time_ratio"]), float(n["extra_pct"])
    params = ""
    if _finite(n.get("training_params_ratio")):
        params = t["cost_params"].format(r=_ratio(float(n["training_params_ratio"]), lang))
    if p.verdict == SUPPORTS:
        short = t["cost_supports"].format(x=_pct(extra), params=params)
    elif p.verdict == CONTRADICTS:
        short = t["cost_contradicts"].format(x=_pct(abs(extra)))
    elif p.verdict == NO_DIFFERENCE:
        short = t["cost_same"].format(sx=_signed_pct(extra))
    else:
        short = t["cost_open"].format(sx=_signed_pct(extra))
    pairs = int(n.get("n_epoch_pairs", 0))
    lo, hi = float(n.get("epoch_time_ratio_lo", math.nan)), float(n.get("epoch_time_ratio_hi", math.nan))
    spread = _interval(lo, hi, pairs, lang, unit="epoch")
    delta = t["vs_mae"].format(d=_signed_pct(extra))
    head = (Headline(t["h_cost"], _ratio(ratio, lang), delta, delta_color(p.verdict, up_is_good=False), spread),)
    why = ""
    if p.verdict == UNDETERMINED:
        needed = n.get("epoch_time_seeds_needed")
        if pairs < 2:
            why = t["why_cost_one"]
        else:
            more = t["why_cost_more"].format(m=int(needed)) if _finite(needed) else ""
            why = t["why_cost"].format(n=pairs) + more
    return BriefPoint("cost", p.title, claim, p.verdict, short, head, (p.sentence,), n, why)


def _stab_pairs(p: Point, lang: str) -> tuple[list[tuple[str, str, str | None]], str]:
    """[(a, b, reading or None)] of the counted comparisons, and the short phrase listing them."""
    t, kn = T[lang], _KIND[lang]
    out, phrases = [], []
    for c in comparisons(counted=True):
        v = p.numbers.get(f"{c.a}_vs_{c.b}_verdict")
        v = None if v in (None, "not measured") else str(v)
        out.append((c.a, c.b, v))
        phrases.append(t[f"pair_{v or 'missing'}"].format(A=kn[c.a], B=kn[c.b]))
    return out, t["sep"].join(phrases)


def _pair_headline(n: dict, vs: str, primary: str, label: str, sub: str, smaller_better: bool, lang: str) -> Headline:
    """A counted comparison's primary as A / B, paired by seed, with its interval; its delta coloured only when the
    interval decides."""
    t = T[lang]
    ratio = n.get(f"{vs}_estimate")
    if n.get(f"{vs}_primary") != primary or not _finite(ratio):
        return Headline(label, "n/a", spread=sub)
    ratio = float(ratio)
    k = int(n.get(f"{vs}_n", 0))
    spread = f"{sub}; " + _interval(float(n.get(f"{vs}_lo", math.nan)), float(n.get(f"{vs}_hi", math.nan)), k, lang)
    reading = str(n.get(f"{vs}_verdict"))
    # The reading says whether A is flatter as claimed; the delta's colour says whether the change is good news.
    color = delta_color(reading, up_is_good=not smaller_better)
    delta = t["vs_mae"].format(d=_signed_pct((ratio - 1) * 100)) if vs.startswith("rcmae") else f"{(ratio - 1):+.0%}"
    return Headline(label, _ratio(ratio, lang), delta, color, spread)


def _stab_point(p: Point, lang: str, context: dict, inputs: dict | None = None) -> BriefPoint:
    t, n = T[lang], p.numbers
    pairs, phrase = _stab_pairs(p, lang)
    measured = any(v for _, _, v in pairs)
    short = t["stab_short"].format(pairs=phrase) if measured else t["stab_missing"]
    why = ""
    if p.verdict == UNDETERMINED:
        if n.get("rcmae_vs_mae_verdict") in (None, "not measured"):
            why = t["why_flat_missing"]
        else:
            k = int(n.get("stability_n", n.get("rcmae_vs_mae_n", 0)))
            needed = n.get("stability_seeds_needed")
            said = reading_sentence(
                UNDETERMINED, k, int(needed) if _finite(needed) else None, False, MARGINS["ratio"], lang
            )
            why = t["why_flat"].format(said=said)
        why += t["why_regime"].format(regime=regime_text(context, lang))
    if not measured:
        why = t["why_missing"]
    heads = (
        _pair_headline(n, "rcmae_vs_mae", "top_eigenvalue", t["h_stab"], t["h_stab_sub"], True, lang),
        _pair_headline(n, "mae_vs_sup", "basin_width", t["h_stab_sup"], t["h_stab_sup_sub"], False, lang),
    )
    seeds = int(n.get("stability_n", 0)) if measured else 0
    claim = _claim("stab", lang)
    # Stability in operation (accuracy kept under input corruptions, pre-trained vs scratch): its own claim and rule,
    # shown beside the flatness verdict, never folded into it.
    note = stability_sentence(inputs, lang) if inputs else ""
    return BriefPoint("stab", t["t_stab"], claim, p.verdict, short, heads, (p.sentence,), n, why, measured, seeds, note)


def _gen_stats(gen: dict) -> dict[str, tuple[float, float, int]]:
    out = {}
    for k, vals in (gen.get("val_acc") or {}).items():
        v = [float(x) for x in vals if _finite(x)]
        if v:
            out[k] = (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, len(v))
    return out


def generalization_accuracy(gen: dict) -> dict[str, dict[object, dict[int, float]]]:
    """The fine-tuning measurement as `core.report.premise_estimates` reads it: kind -> budget -> seed -> accuracy."""
    seeds = [int(s) for s in gen.get("seeds") or []]
    budget = gen.get("labels_per_class")
    out: dict[str, dict[object, dict[int, float]]] = {}
    for k, vals in (gen.get("val_acc") or {}).items():
        ids = seeds if len(seeds) == len(vals) else list(range(len(vals)))
        out[k] = {budget: {s: float(v) for s, v in zip(ids, vals, strict=True) if _finite(v)}}
    return out


def generalization_verdict(gen: dict) -> tuple[str, dict[str, float | str]]:
    """Whether pre-training (MAE, RC-MAE) beats training from scratch on fine-tuned validation accuracy: the premise's
    rule of docs/FINDINGS.md on this measurement (`core.report.premise_estimates`: paired by seed, Holm over the
    kinds, every measured kind must support).

    Returns:
        (verdict, numbers): numbers hold per kind `<k>_val_acc`, `<k>_val_acc_std`, `<k>_seeds`, the paired
        difference in points `<k>_vs_scratch_pts` with its interval `<k>_vs_scratch_lo_pts` / `_hi_pts`, its reading
        after Holm `<k>_vs_scratch`, and `gen_n` / `gen_seeds_needed` of the verdict.
    """
    stats = _gen_stats(gen)
    numbers: dict[str, float | str] = {"labels_per_class": float(gen.get("labels_per_class", math.nan))}
    for k, (m, s, n) in stats.items():
        numbers[f"{k}_val_acc"], numbers[f"{k}_val_acc_std"], numbers[f"{k}_seeds"] = m, s, float(n)
    if "scratch" not in stats:
        return UNDETERMINED, numbers
    cv = claim_verdict(premise_estimates(generalization_accuracy(gen)))
    kind_of = {label: kind for kind, label in PREMISE_LABEL.items()}
    for j in cv.judged:
        kind = kind_of[j.estimate.name]
        e = j.estimate
        numbers |= {
            f"{kind}_vs_scratch_pts": 100 * e.estimate,
            f"{kind}_vs_scratch_lo_pts": 100 * e.lo,
            f"{kind}_vs_scratch_hi_pts": 100 * e.hi,
            f"{kind}_vs_scratch": j.reading,
        }
    numbers |= {"gen_n": float(cv.n), "gen_seeds_needed": float(cv.seeds_needed) if cv.seeds_needed else math.nan}
    numbers["gen_verdict_text"] = reading_sentence(cv.verdict, cv.n, cv.seeds_needed, cv.beyond, MARGINS["accuracy"])
    return POINT_READING[cv.verdict], numbers


_READING = {
    "en": {},
    "ja": {
        SUPPORTS: "支持",
        CONTRADICTS: "矛盾",
        NO_DIFFERENCE: "意味のある差なし",
        UNDETERMINED: "未決定",
    },
}


def _gen_missing(lang: str) -> BriefPoint:
    t = T[lang]
    head = (Headline(t["h_gen"].format(k=_KIND[lang]["mae"]), "n/a"),)
    return BriefPoint(
        "general",
        t["t_general"],
        _claim("general", lang),
        UNDETERMINED,
        t["gen_missing_short"],
        head,
        (t["gen_missing"],),
        {},
        t["why_missing"],
        False,
    )


def _gen_point(gen: dict, lang: str, context: dict, roi: dict | None = None) -> BriefPoint:
    t, kn = T[lang], _KIND[lang]
    verdict, n = generalization_verdict(gen)
    stats = _gen_stats(gen)
    kinds = [k for k in ("mae", "rcmae") if k in stats]
    lpc = gen.get("labels_per_class", "?")
    accs = t["sep"].join(t["gen_acc"].format(k=kn[k], a=_acc(stats[k][0])) for k in kinds)
    s_acc = _acc(stats["scratch"][0]) if "scratch" in stats else "n/a"
    key = {SUPPORTS: "gen_supports", CONTRADICTS: "gen_contradicts", NO_DIFFERENCE: "gen_same"}.get(verdict, "gen_open")
    short = t[key].format(n=lpc, accs=accs, s=s_acc)
    # Both pre-trained kinds against scratch, each coloured by its own reading after Holm: never the better one alone.
    heads = []
    for k in kinds or ["mae"]:
        label = t["h_gen_kind"].format(k=kn[k])
        if f"{k}_vs_scratch_pts" not in n:
            heads.append(Headline(label, "n/a"))
            continue
        d = float(n[f"{k}_vs_scratch_pts"])
        spread = _interval(n[f"{k}_vs_scratch_lo_pts"], n[f"{k}_vs_scratch_hi_pts"], int(n["gen_n"]), lang, ".1f")
        color = delta_color(str(n.get(f"{k}_vs_scratch")), up_is_good=True)
        heads.append(Headline(label, _acc(stats[k][0]), t["vs_scratch"].format(d=f"{d:+.1f}"), color, spread))
    scale = 100.0 if stats and max(v[0] for v in stats.values()) <= 1.0 else 1.0
    names = {**kn, "scratch": _SCRATCH[lang]}
    rows = t["sep"].join(
        t["gen_row"].format(k=names.get(k, k), m=f"{m * scale:.1f}", s=f"{s * scale:.1f}" if _finite(s) else "?")
        for k, (m, s, _) in stats.items()
    )
    gaps = []
    for k, vals in (gen.get("gap_acc") or {}).items():
        v = [float(x) for x in vals if _finite(x)]
        if v:
            gaps.append(f"{names.get(k, k)} {float(np.mean(v)) * scale:.1f}")
    vs = []
    for k in kinds:
        if f"{k}_vs_scratch_pts" in n:
            d, lo, hi = (float(n[f"{k}_vs_scratch{x}_pts"]) for x in ("", "_lo", "_hi"))
            est = f"{d:+.1f} pts [{lo:.1f}, {hi:.1f}]" if _finite(lo) else f"{d:+.1f} pts ({t['one_seed']})"
            reading = str(n[f"{k}_vs_scratch"])
            vs.append(t["gen_vs"].format(k=kn[k], est=est, reading=_READING[lang].get(reading, reading)))
    detail = (
        t["gen_detail"]
        .format(
            n=lpc,
            data=gen.get("data", "?"),
            epochs=gen.get("epochs", "?"),
            steps=gen.get("steps", "?"),
            seeds=", ".join(str(s) for s in gen.get("seeds", [])),
            rows=rows,
            gaps=t["sep"].join(gaps) or "n/a",
            note=gen.get("note", ""),
        )
        .strip()
    )
    why = ""
    if verdict == UNDETERMINED and "scratch" in stats:
        needed = n.get("gen_seeds_needed")
        said = reading_sentence(
            UNDETERMINED,
            int(n.get("gen_n", 0)),
            int(needed) if _finite(needed) else None,
            False,
            MARGINS["accuracy"],
            lang,
        )
        why = t["why_gen"].format(said=said) + t["why_regime"].format(regime=regime_text(context, lang))
    return BriefPoint(
        "general",
        t["t_general"],
        _claim("general", lang),
        verdict,
        short,
        tuple(heads),
        tuple(d for d in (detail, t["sep"].join(vs)) if d),
        n,
        why.strip(),
        True,
        int(n.get("gen_n", 0)),
        roi_sentence(roi, lang),  # how the gain moves with pre-training length, when the ladder is cached
    )


def latency_estimate(pair: dict | None):
    """The interleaved latency rounds of RC-MAE and MAE (`facts["latency_pair"]`: "rcmae_ms", "mae_ms", one value per
    round) as a paired estimate of their ratio (`core.report.verdicts.paired`, the time margin); None when absent."""
    if not pair or not pair.get("rcmae_ms") or not pair.get("mae_ms"):
        return None
    a, b = [float(x) for x in pair["rcmae_ms"]], [float(x) for x in pair["mae_ms"]]
    return paired("latency RC-MAE / MAE", a, b, "lower", MARGINS["time"])


def _inf_point(p: Point, lang: str, pair: dict | None = None) -> BriefPoint:
    t, n = T[lang], dict(p.numbers)
    claim = _claim("inf", lang)
    if "params_ratio" not in n:
        return _not_measured("inf", p, "h_inf_ratio", lang)
    pr, frat = float(n["params_ratio"]), float(n["flops_ratio"])
    if p.verdict == CONTRADICTS:
        short = t["inf_contradicts"].format(r=_ratio(pr, lang), f=_ratio(frat, lang))
    elif n.get("same_architecture") == "no":  # smaller: no extra cost, but not the same size
        short = t["inf_smaller"].format(r=_ratio(pr, lang))
    else:
        short = t["inf_supports"].format(p=fmt_count(float(n["rcmae_params_deployed"])))
    counts = t["inf_counts"].format(
        p=fmt_count(float(n["rcmae_params_deployed"])),
        q=fmt_count(float(n["mae_params_deployed"])),
        f=fmt_count(float(n["rcmae_flops_per_image"])),
        g=fmt_count(float(n["mae_flops_per_image"])),
    )
    # Exact counts: a difference is a difference (no interval), and more is worse.
    delta = "" if pr == 1.0 else t["vs_mae"].format(d=_signed_pct((pr - 1) * 100))
    head = (Headline(t["h_inf_ratio"], _ratio(pr, lang), delta, "inverse" if delta else "off", counts),)
    details = [p.sentence]
    e = latency_estimate(pair)
    if e is not None:
        reading = _READING[lang].get(e.reading, e.reading)
        details.append(t["lat_pair"].format(n=e.n, est=format_estimate(e, ".3g", "", lang, count=""), reading=reading))
        n |= {"latency_ratio": e.shown, "latency_ratio_lo": e.shown_lo, "latency_ratio_hi": e.shown_hi}
        n |= {"latency_rounds": float(e.n), "latency_reading": e.reading}
    return BriefPoint("inf", p.title, claim, p.verdict, short, head, tuple(details), n)


# --------------------------------------------------------------------------------------------------------------------
# The meeting sentence


def _gen_deltas(gen: BriefPoint, lang: str) -> str:
    """'MAE +1.0, RC-MAE +6.3' (points vs scratch, both kinds)."""
    kn, t = _KIND[lang], T[lang]
    parts = [
        f"{kn[k]} {float(gen.numbers[f'{k}_vs_scratch_pts']):+.1f}"
        for k in ("mae", "rcmae")
        if _finite(gen.numbers.get(f"{k}_vs_scratch_pts"))
    ]
    return t["sep"].join(parts) or "n/a"


def meeting_sentence(points: Sequence[BriefPoint], lang: str) -> str:
    """One or two sentences from the verdicts: every point of the chain, then what is open or contradicted."""
    t = T[lang]
    by = {p.key: p for p in points}
    cost, stab, gen, inf = (by[k] for k in POINT_KEYS)

    def state(p: BriefPoint) -> str:
        return p.verdict if p.measured else "missing"

    x = _pct(float(cost.numbers.get("extra_pct", math.nan))) if cost.measured else ""
    inf_state = state(inf) if state(inf) in t["m_inf"] else UNDETERMINED
    first = t["m_one"].format(
        cost=t["m_cost"][state(cost)].format(x=x),
        stab=t["m_stab"][state(stab)],
        gen=t["m_gen"][state(gen)].format(d=_gen_deltas(gen, lang)),
        inf=t["m_inf"][inf_state],
    )
    item = t["m_items"]
    against = [item[p.key] for p in points if p.measured and p.verdict == CONTRADICTS and p.key != "cost"]
    open_ = [item[p.key] for p in points if (not p.measured or p.verdict == UNDETERMINED) and p.key != "cost"]
    # Training cost: "contradicts" means no extra cost (good news); "undetermined" is not a risk the meeting must
    # weigh (the cost is in the first sentence).
    if not cost.measured:
        open_.insert(0, item["cost"])
    second = ""
    if against and open_:
        second = t["m_both"].format(against=_join(against, t), open=_join(open_, t))
    elif against:
        second = t["m_against"].format(items=_join(against, t))
    elif open_:
        second = t["m_open"].format(items=_join(open_, t))
    if not against and not open_ and all(p.measured for p in points):
        second = t["m_all"] if all(p.verdict == SUPPORTS for p in points) else ""
    return (first + second).strip()


# --------------------------------------------------------------------------------------------------------------------


def compose(facts: dict, lang: str = "en", context: dict | None = None) -> Briefing:
    """The briefing from the facts the first-run job gathers (`core.app.first_run.gather_facts`).

    Args:
        facts: label -> `ModelFacts` (any kinds, RC-MAE also on its MAE term), plus optionally "generalization"
            (the fine-tuning measurement, plain dict) and "latency_pair" (interleaved latency rounds) — absent means
            not measured yet.
        lang: "en" or "ja".
        context: models / data / regime for the text ("preset", "epochs", "data").
    """
    if lang not in LANGS:
        raise LandscapeError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    context = dict(context or {})
    models = {k: f for k, f in facts.items() if isinstance(f, ModelFacts)}
    s = executive_summary(models, lang)
    gen = facts.get("generalization")
    measured = isinstance(gen, dict) and gen.get("val_acc")
    general = _gen_point(gen, lang, context, facts.get("roi")) if measured else _gen_missing(lang)
    points = (
        _cost_point(s.points[0], lang),
        _stab_point(s.points[1], lang, context, facts.get("stability")),
        general,
        _inf_point(s.points[2], lang, facts.get("latency_pair")),
    )
    return Briefing(T[lang]["question"], points, meeting_sentence(points, lang), lang, s, context)
