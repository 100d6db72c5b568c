"""The stakeholder briefing: the seed's question, three verdicts in plain words, a sentence for the meeting.

Built on the executive summary (`core.report.summary`, which decides the verdicts and writes the full measured text)
and, when the first-run job carries it, the fine-tuning measurement (facts key "generalization", see
/work/notes/contract.md). Nothing here is canned: every sentence is composed from the verdicts and the numbers at
hand, and says so plainly when a point is undetermined, contradicted or not measured yet.

- `compose(facts, lang, context)` -> `Briefing`: per point a verdict, one short sentence (at most `MAX_WORDS` words
  in English, `MAX_CHARS` characters in Japanese), one headline number with its interval and the comparison as a
  delta, the full measured text, the numbers, and, when undetermined, what would settle it; then the meeting
  sentence (one or two sentences).
- Every verdict is the one rule of `core.report.verdicts`. The generalization point uses fine-tuning when measured:
  pre-trained vs from scratch, validation accuracy paired by seed, exactly as docs/FINDINGS.md's premise
  (`core.report.premise_estimates`, Holm over the two kinds); else the flatness comparison of `core.report.summary`.

The HTML export lives in `core.app.briefing_html`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import LandscapeError
from core.report.comparison import comparisons
from core.report.findings import PREMISE_LABEL, premise_estimates
from core.report.summary import LANGS, ModelFacts, Point, Summary, executive_summary, fmt, fmt_count
from core.report.verdicts import (
    CONTRADICTS,
    MARGINS,
    NO_DIFFERENCE,
    POINT_READING,
    SUPPORTS,
    UNDETERMINED,
    claim_verdict,
    reading_sentence,
)

MAX_WORDS = 25  # English short sentences
MAX_CHARS = 60  # Japanese short sentences


@dataclass(frozen=True)
class Headline:
    """One number in `st.metric` style.

    Attributes:
        label: what it is.
        value: the number, formatted (short: it is drawn large).
        delta: the comparison, formatted with a sign ("" when there is none).
        color: "normal" (up is good), "inverse" (up is bad) or "off".
        spread: its spread ("± 0.42"), or why it is unknown.
    """

    label: str
    value: str
    delta: str = ""
    color: str = "off"
    spread: str = ""


@dataclass(frozen=True)
class BriefPoint:
    """One of the three points of the briefing.

    Attributes:
        key: "cost", "general" or "inf".
        title: a short heading.
        verdict: "supports" | "contradicts" | "no meaningful difference" | "undetermined" (of the seed's claim,
            `core.report.verdicts`).
        short: one plain sentence.
        headline: the one number.
        details: the full measured text (paragraphs).
        numbers: the numbers behind it (name -> value).
        why: for an undetermined verdict, what would settle it ("" otherwise).
        measured: False when the point has nothing measured yet.
    """

    key: str
    title: str
    verdict: str
    short: str
    headline: Headline
    details: tuple[str, ...]
    numbers: dict[str, float | str]
    why: str = ""
    measured: bool = True


@dataclass(frozen=True)
class Briefing:
    """The question, the three points, the meeting sentence, the language (and the summary behind it)."""

    question: str
    points: tuple[BriefPoint, ...]
    meeting: str
    lang: str
    summary: Summary
    context: dict = field(default_factory=dict)


T: dict[str, dict[str, Any]] = {
    "en": {
        "question": "Is RC-MAE worth it? What its EMA teacher costs in training, buys in generalization and "
        "stability, and costs at inference.",
        "t_cost": "Training cost",
        "t_general": "Generalization",
        "t_stab": "Stability (flatness)",
        "t_inf": "Inference cost",
        # training cost
        "cost_supports": "RC-MAE trains {x} slower per epoch than MAE{params}.",
        "cost_params": " and holds {r} the parameters while training",
        "cost_contradicts": "RC-MAE trained {x} faster per epoch than MAE: no extra training cost here.",
        "cost_same": "RC-MAE's time per epoch is within 5% of MAE's ({sx}): no meaningful extra cost.",
        "cost_open": "RC-MAE's time per epoch is not yet told apart from MAE's ({sx}).",
        "cost_missing": "Training cost is not measured yet.",
        "h_cost": "Time per epoch, RC-MAE / MAE",
        "vs_mae": "{d} vs MAE",
        "spread_unknown": "spread unknown",
        # generalization (fine-tuning)
        "gen_supports": "With {n} labels per class, pre-training lifts accuracy: {accs}, from scratch {s}.",
        "gen_contradicts": "With {n} labels per class, training from scratch did better: {s} vs {accs}.",
        "gen_same": "With {n} labels per class, pre-training made no difference over 3 points: {accs}, scratch {s}.",
        "gen_open": "With {n} labels per class, pre-training's gain is not settled: {accs}, from scratch {s}.",
        "gen_acc": "{k} {a}",
        "h_gen": "Fine-tuned accuracy, {k}",
        "vs_scratch": "{d} pts vs scratch",
        "gen_detail": "Fine-tuned on {n} labels per class ({data}; {epochs} epochs, {steps} steps; seeds {seeds}): "
        "validation accuracy {rows}. Train minus validation accuracy (the gap): {gaps}. {note}",
        "gen_row": "{k} {m} ± {s}",
        "gen_vs": "{k} vs from scratch, paired by seed: {est} → {reading}",
        "gen_missing": "Fine-tuning is not measured yet: the verdict below is on flatness alone.",
        "flat_line": "Flatness: {short}",
        # stability (flatness)
        "pair_supports": "{A} is flatter than {B}",
        "pair_contradicts": "{B} is flatter than {A}",
        "pair_no meaningful difference": "{A} vs {B}: no meaningful difference",
        "pair_undetermined": "{A} vs {B} is not settled",
        "pair_missing": "{A} vs {B} is not measured",
        "stab_short": "Flatness on one function: {pairs}.",
        "stab_missing": "Stability (flatness) is not measured yet.",
        "h_stab": "Top eigenvalue, RC-MAE / MAE",
        "h_stab_sub": "on MAE's loss",
        "one_seed": "one seed: no interval",
        "one_epoch": "one epoch pair: no interval",
        "n_seeds": "{n} seeds",
        "n_epochs": "{n} epoch pairs",
        "sp_interval": "95% interval [{lo}, {hi}], {n}",
        "sp_repeats": "± {e} (std over repeats)",
        # inference
        "inf_supports": "RC-MAE deploys an encoder the same size as MAE's ({p} parameters): no extra inference cost.",
        "inf_contradicts": "RC-MAE's deployed encoder has {r} MAE's parameters and {f} its FLOPs: it costs more to "
        "run.",
        "inf_smaller": "RC-MAE's deployed encoder is no larger than MAE's ({r} the parameters): no extra inference "
        "cost.",
        "inf_missing": "Inference cost is not measured yet.",
        "h_inf": "Latency per image, RC-MAE",
        "h_inf_params": "Deployed parameters, RC-MAE",
        # why undetermined
        "why_cost": "Timed over {n} epoch pairs, the difference is not yet told apart from 5%.",
        "why_cost_more": " About {m} epoch pairs would decide it.",
        "why_cost_one": "One epoch per model was timed: time at least two for an interval.",
        "why_gen": "{said}",
        "why_regime": " The regime is small ({regime}); the paper's claims are about ViT-B trained for 1600 epochs on "
        "ImageNet, so a longer run may move the verdict.",
        "why_flat": "{said}",
        "why_flat_missing": "RC-MAE on MAE's loss is not measured yet: the first-run job computes it.",
        "why_missing": "Not measured yet: open the Overview or run `python -m core briefing` to prepare it.",
        # meeting
        "m_cost": {
            "supports": "a little more training cost ({x} per epoch)",
            "contradicts": "no extra training cost ({x} faster per epoch)",
            "no meaningful difference": "about the same training time (within 5%)",
            "undetermined": "a training cost not yet settled",
            "missing": "a training cost we have not measured yet",
        },
        "m_gen": {
            "supports": "better accuracy after fine-tuning (+{d} points over training from scratch)",
            "contradicts": "no accuracy gain from pre-training (from scratch did better)",
            "no meaningful difference": "no accuracy difference over 3 points after fine-tuning",
            "undetermined": "an accuracy gain we cannot confirm yet",
            "missing": "a generalization gain we have not measured yet",
        },
        "m_stab": {
            "supports": "a flatter, more stable model",
            "contradicts": "no stability gain (the flatness numbers point the other way)",
            "no meaningful difference": "no meaningful difference in flatness",
            "undetermined": "a stability gain we cannot confirm yet",
            "missing": "a stability gain we have not measured yet",
        },
        "m_inf": {
            "supports": "the same inference cost",
            "contradicts": "a higher inference cost",
            "undetermined": "an inference cost to re-measure",
            "missing": "an inference cost not measured yet",
        },
        "m_one": "On our models, RC-MAE means {cost}, {gen}, and {inf}.",
        "m_open": " Not settled yet: {items}.",
        "m_against": " The measurements contradict the claim on {items}.",
        "m_both": " The measurements contradict the claim on {against}; not settled yet: {open}.",
        "m_all": " All three points are measured and agree with the claim.",
        "m_items": {"cost": "training cost", "general": "generalization", "stab": "stability", "inf": "inference cost"},
        "and": " and ",
        "sep": ", ",
    },
    "ja": {
        "question": "RC-MAEは使う価値があるか: EMA教師の学習コスト、汎化と安定性への効果、推論コスト。",
        "t_cost": "学習コスト",
        "t_general": "汎化性能",
        "t_stab": "安定性(平坦さ)",
        "t_inf": "推論コスト",
        "cost_supports": "RC-MAEの学習はMAEより1エポックあたり{x}遅い{params}。",
        "cost_params": "(学習中のパラメータは{r})",
        "cost_contradicts": "RC-MAEはMAEより1エポックあたり{x}速く、追加コストなし。",
        "cost_same": "RC-MAEの1エポックの時間はMAEとの差{sx}で5%以内。意味のある追加コストなし。",
        "cost_open": "RC-MAEの1エポックの時間はMAEとの差{sx}で、まだ区別できない。",
        "cost_missing": "学習コストはまだ測定されていません。",
        "h_cost": "1エポックの時間 RC-MAE / MAE",
        "vs_mae": "{d}(MAE比)",
        "spread_unknown": "ばらつき不明",
        "gen_supports": "1クラス{n}枚で事前学習が精度を向上: {accs}、スクラッチ{s}。",
        "gen_contradicts": "1クラス{n}枚ではスクラッチの方が高精度: {s}対{accs}。",
        "gen_same": "1クラス{n}枚で事前学習の差は3ポイント以内: {accs}、スクラッチ{s}。",
        "gen_open": "1クラス{n}枚で事前学習の効果は未決定: {accs}、スクラッチ{s}。",
        "gen_acc": "{k} {a}",
        "h_gen": "微調整後の精度 {k}",
        "vs_scratch": "{d}ポイント(スクラッチ比)",
        "gen_detail": "1クラス{n}枚のラベルでファインチューニング({data}、{epochs}エポック、{steps}ステップ、"
        "シード{seeds}): "
        "検証精度 {rows}。学習精度と検証精度の差: {gaps}。{note}",
        "gen_row": "{k} {m} ± {s}",
        "gen_vs": "{k}とスクラッチの差(シードごとの対応比較): {est} → {reading}",
        "gen_missing": "ファインチューニングはまだ測定されていません。判定は平坦さのみによります。",
        "flat_line": "平坦さ: {short}",
        "pair_supports": "{A}は{B}より平坦",
        "pair_contradicts": "{B}の方が{A}より平坦",
        "pair_no meaningful difference": "{A}と{B}に意味のある差なし",
        "pair_undetermined": "{A}と{B}の差は未決定",
        "pair_missing": "{A}と{B}は未測定",
        "stab_short": "同じ関数での平坦さ: {pairs}。",
        "stab_missing": "安定性(平坦さ)はまだ測定されていません。",
        "h_stab": "最大固有値 RC-MAE / MAE",
        "h_stab_sub": "MAEの損失",
        "one_seed": "シード1つ: 区間なし",
        "one_epoch": "エポック1組: 区間なし",
        "n_seeds": "{n}シード",
        "n_epochs": "{n}組のエポック",
        "sp_interval": "95%区間 [{lo}, {hi}]、{n}",
        "sp_repeats": "± {e}(繰り返しの標準偏差)",
        "inf_supports": "RC-MAEの配備モデルはMAEと同じ大きさ({p}パラメータ)で推論コスト増なし。",
        "inf_contradicts": "RC-MAEの配備モデルはMAEの{r}のパラメータ、{f}の演算量で、推論コストが増える。",
        "inf_smaller": "RC-MAEの配備モデルはMAE以下の大きさ(パラメータ{r})で推論コスト増なし。",
        "inf_missing": "推論コストはまだ測定されていません。",
        "h_inf": "1画像あたりの推論時間 RC-MAE",
        "h_inf_params": "配備パラメータ数 RC-MAE",
        "why_cost": "{n}組のエポックで測定しましたが、差はまだ5%と区別できません。",
        "why_cost_more": "約{m}組で決まる見込みです。",
        "why_cost_one": "各モデル1エポックしか測定していません。区間には2エポック以上が必要です。",
        "why_gen": "{said}",
        "why_regime": "規模も小さい({regime})ため、論文の主張(ImageNetでViT-Bを1600エポック学習)とは条件が"
        "大きく異なり、長い学習で判定が変わる可能性があります。",
        "why_flat": "{said}",
        "why_flat_missing": "MAEの損失でのRC-MAEはまだ測定されていません。初回の準備ジョブが計算します。",
        "why_missing": "まだ測定されていません。Overviewを開くか `python -m core briefing` を実行すると準備されます。",
        "m_cost": {
            "supports": "学習コストは少し増え(1エポックあたり{x})",
            "contradicts": "学習コストは増えず(1エポックあたり{x}速い)",
            "no meaningful difference": "学習時間はほぼ同じで(5%以内)",
            "undetermined": "学習コストはまだ決まらず",
            "missing": "学習コストは未測定で",
        },
        "m_gen": {
            "supports": "ファインチューニング後の精度が上がり(スクラッチより+{d}ポイント)",
            "contradicts": "事前学習による精度向上は見られず(スクラッチの方が高精度)",
            "no meaningful difference": "ファインチューニング後の精度差は3ポイント以内で",
            "undetermined": "精度向上はまだ確認できず",
            "missing": "汎化性能は未測定で",
        },
        "m_stab": {
            "supports": "より平坦で安定したモデルになり",
            "contradicts": "安定性の向上は見られず(平坦さの数値は逆)",
            "no meaningful difference": "平坦さに意味のある差はなく",
            "undetermined": "安定性の向上はまだ確認できず",
            "missing": "安定性は未測定で",
        },
        "m_inf": {
            "supports": "推論コストは変わりません",
            "contradicts": "推論コストは増えます",
            "undetermined": "推論コストは再測定が必要です",
            "missing": "推論コストは未測定です",
        },
        "m_one": "私たちのモデルでは、RC-MAEは{cost}、{gen}、{inf}。",
        "m_open": "未確定: {items}。",
        "m_against": "測定は{items}について主張と逆の結果です。",
        "m_both": "測定は{against}について主張と逆の結果で、{open}は未確定です。",
        "m_all": "3点すべてを測定し、いずれも主張と一致しました。",
        "m_items": {"cost": "学習コスト", "general": "汎化性能", "stab": "安定性", "inf": "推論コスト"},
        "and": "と",
        "sep": "、",
    },
}
_KIND = {
    "en": {"mae": "MAE", "rcmae": "RC-MAE", "sup": "the supervised ViT"},
    "ja": {"mae": "MAE", "rcmae": "RC-MAE", "sup": "教師ありViT"},
}
_SCRATCH = {"en": "from scratch", "ja": "スクラッチ"}


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


def _cost_point(p: Point, lang: str) -> BriefPoint:
    t, n = T[lang], p.numbers
    if "epoch_time_ratio" not in n:
        head = Headline(t["h_cost"], "n/a")
        return BriefPoint(
            "cost", p.title, p.verdict, t["cost_missing"], head, (p.sentence,), n, t["why_missing"], False
        )
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
    head = Headline(t["h_cost"], _ratio(ratio, lang), t["vs_mae"].format(d=_signed_pct(extra)), "inverse", spread)
    why = ""
    if p.verdict == UNDETERMINED:
        needed = n.get("epoch_time_seeds_needed")
        if pairs < 2:
            why = t["why_cost_one"]
        else:
            more = t["why_cost_more"].format(m=int(needed)) if _finite(needed) else ""
            why = t["why_cost"].format(n=pairs) + more
    return BriefPoint("cost", p.title, p.verdict, short, head, (p.sentence,), n, why)


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


def _stab_headline(p: Point, lang: str) -> Headline:
    """RC-MAE's top eigenvalue relative to MAE's, both on MAE's loss (the counted comparison's function and its
    primary), paired by seed, with its interval."""
    t, n = T[lang], p.numbers
    label = t["h_stab"]
    ratio = n.get("rcmae_vs_mae_estimate")
    if n.get("rcmae_vs_mae_primary") != "top_eigenvalue" or not _finite(ratio):
        return Headline(label, "n/a", spread=t["h_stab_sub"])
    ratio = float(ratio)
    k = int(n.get("rcmae_vs_mae_n", 0))
    spread = _interval(float(n.get("rcmae_vs_mae_lo", math.nan)), float(n.get("rcmae_vs_mae_hi", math.nan)), k, lang)
    spread = f"{t['h_stab_sub']}; {spread}"
    return Headline(label, _ratio(ratio, lang), t["vs_mae"].format(d=_signed_pct((ratio - 1) * 100)), "inverse", spread)


def _stab_point(p: Point, lang: str, context: dict) -> BriefPoint:
    t = T[lang]
    pairs, phrase = _stab_pairs(p, lang)
    measured = any(v for _, _, v in pairs)
    short = t["stab_short"].format(pairs=phrase) if measured else t["stab_missing"]
    why = ""
    if p.verdict == UNDETERMINED:
        n = p.numbers
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
    head = _stab_headline(p, lang)
    return BriefPoint("general", t["t_stab"], p.verdict, short, head, (p.sentence,), p.numbers, why, measured)


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


def _gen_point(gen: dict, stab: BriefPoint, lang: str, context: dict) -> BriefPoint:
    t, kn = T[lang], _KIND[lang]
    verdict, n = generalization_verdict(gen)
    stats = _gen_stats(gen)
    kinds = [k for k in ("rcmae", "mae") if k in stats]
    lpc = gen.get("labels_per_class", "?")
    accs = t["sep"].join(t["gen_acc"].format(k=kn[k], a=_acc(stats[k][0])) for k in kinds)
    s_acc = _acc(stats["scratch"][0]) if "scratch" in stats else "n/a"
    key = {SUPPORTS: "gen_supports", CONTRADICTS: "gen_contradicts", NO_DIFFERENCE: "gen_same"}.get(verdict, "gen_open")
    short = t[key].format(n=lpc, accs=accs, s=s_acc)
    lead = "rcmae" if "rcmae" in stats else (kinds[0] if kinds else None)
    if lead is None or f"{lead}_vs_scratch_pts" not in n:
        head = Headline(t["h_gen"].format(k=kn.get(lead or "rcmae")), "n/a")
    else:
        m = stats[lead][0]
        d = float(n[f"{lead}_vs_scratch_pts"])
        spread = _interval(n[f"{lead}_vs_scratch_lo_pts"], n[f"{lead}_vs_scratch_hi_pts"], int(n["gen_n"]), lang, ".1f")
        head = Headline(t["h_gen"].format(k=kn[lead]), _acc(m), t["vs_scratch"].format(d=f"{d:+.1f}"), "normal", spread)
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
    details = (detail, t["sep"].join(vs), t["flat_line"].format(short=stab.short), *stab.details)
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
    numbers = n | {f"flatness_{k}": v for k, v in stab.numbers.items()}
    return BriefPoint(
        "general", t["t_general"], verdict, short, head, tuple(d for d in details if d), numbers, why.strip()
    )


_READING = {
    "en": {},
    "ja": {
        SUPPORTS: "支持",
        CONTRADICTS: "矛盾",
        NO_DIFFERENCE: "意味のある差なし",
        UNDETERMINED: "未決定",
    },
}


def _inf_point(p: Point, lang: str) -> BriefPoint:
    t, n = T[lang], p.numbers
    if "params_ratio" not in n:
        head = Headline(t["h_inf"], "n/a")
        return BriefPoint("inf", p.title, p.verdict, t["inf_missing"], head, (p.sentence,), n, t["why_missing"], False)

    pr = float(n["params_ratio"])
    if p.verdict == CONTRADICTS:
        short = t["inf_contradicts"].format(r=_ratio(pr, lang), f=_ratio(float(n["flops_ratio"]), lang))
    elif n.get("same_architecture") == "no":  # smaller: no extra cost, but not the same size
        short = t["inf_smaller"].format(r=_ratio(pr, lang))
    else:
        short = t["inf_supports"].format(p=fmt_count(float(n["rcmae_params_deployed"])))
    if _finite(n.get("rcmae_latency_ms")):
        la, sa, lr = float(n["rcmae_latency_ms"]), float(n["rcmae_latency_std_ms"]), float(n["latency_ratio"])
        delta = t["vs_mae"].format(d=_signed_pct((lr - 1) * 100))
        head = Headline(t["h_inf"], f"{fmt(la)} ms", delta, "inverse", t["sp_repeats"].format(e=f"{fmt(sa)} ms"))
    else:
        head = Headline(
            t["h_inf_params"],
            fmt_count(float(n["rcmae_params_deployed"])),
            t["vs_mae"].format(d=_signed_pct((pr - 1) * 100)),
            "inverse",
        )
    return BriefPoint("inf", p.title, p.verdict, short, head, (p.sentence,), n)


# --------------------------------------------------------------------------------------------------------------------
# The meeting sentence


def meeting_sentence(points: Sequence[BriefPoint], lang: str, uses_finetuning: bool) -> str:
    """One or two sentences from the verdicts: what RC-MAE gives, then what is open or contradicted."""
    t = T[lang]
    cost, gen, inf = points

    def state(p: BriefPoint) -> str:
        return p.verdict if p.measured else "missing"

    x = _pct(float(cost.numbers.get("extra_pct", math.nan))) if cost.measured else ""
    d = f"{float(gen.numbers.get('rcmae_vs_scratch_pts', gen.numbers.get('mae_vs_scratch_pts', math.nan))):.1f}"
    gen_table = t["m_gen"] if uses_finetuning else t["m_stab"]
    first = t["m_one"].format(
        cost=t["m_cost"][state(cost)].format(x=x),
        gen=gen_table[state(gen)].format(d=d),
        inf=t["m_inf"][state(inf)],
    )
    item = {
        p.key: t["m_items"]["general" if uses_finetuning else "stab"] if p.key == "general" else t["m_items"][p.key]
        for p in points
    }
    against = [item[p.key] for p in points if p.measured and p.verdict == "contradicts" and p.key != "cost"]
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
        second = t["m_all"] if all(p.verdict == "supports" for p in points) else ""
    return (first + second).strip()


# --------------------------------------------------------------------------------------------------------------------


def compose(facts: dict, lang: str = "en", context: dict | None = None) -> Briefing:
    """The briefing from the facts the first-run job gathers (`core.app.first_run.gather_facts`).

    Args:
        facts: label -> `ModelFacts` (any kinds, RC-MAE also on its MAE term), plus optionally "generalization"
            (the fine-tuning measurement, plain dict) — absent means not measured yet.
        lang: "en" or "ja".
        context: models / data / regime for the text ("preset", "epochs", "data").
    """
    if lang not in LANGS:
        raise LandscapeError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    context = dict(context or {})
    models = {k: f for k, f in facts.items() if isinstance(f, ModelFacts)}
    s = executive_summary(models, lang)
    stab = _stab_point(s.points[1], lang, context)
    gen = facts.get("generalization")
    if isinstance(gen, dict) and gen.get("val_acc"):
        second = _gen_point(gen, stab, lang, context)
    else:
        t = T[lang]
        second = BriefPoint(
            "general",
            stab.title,
            stab.verdict,
            stab.short,
            stab.headline,
            (t["gen_missing"], *stab.details),
            stab.numbers,
            stab.why,
            stab.measured,
        )
    points = (_cost_point(s.points[0], lang), second, _inf_point(s.points[2], lang))
    uses_ft = isinstance(gen, dict) and bool(gen.get("val_acc"))
    return Briefing(T[lang]["question"], points, meeting_sentence(points, lang, uses_ft), lang, s, context)
