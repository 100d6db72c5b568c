"""The stakeholder briefing: the seed's question, three verdicts in plain words, a sentence for the meeting.

Built on the executive summary (`core.report.summary`, which decides the verdicts and writes the full measured text)
and, when the first-run job carries it, the fine-tuning measurement (facts key "generalization", see
/work/notes/contract.md). Nothing here is canned: every sentence is composed from the verdicts and the numbers at
hand, and says so plainly when a point is inconclusive, contradicted or not measured yet.

- `compose(facts, lang, context)` -> `Briefing`: per point a verdict, one short sentence (at most `MAX_WORDS` words
  in English, `MAX_CHARS` characters in Japanese), one headline number with its spread and the comparison as a
  delta, the full measured text, the numbers, and, when inconclusive, what would settle it; then the meeting
  sentence (one or two sentences).
- The generalization point uses fine-tuning when measured (pre-trained vs from scratch, validation accuracy over
  seeds; a difference counts beyond two standard errors of the difference of means, or beyond `tolerance` of the
  larger with one seed), else the flatness comparison of `core.report.summary` (on the functions
  `core.report.comparison` picks).

The HTML export lives in `core.app.briefing_html`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import LandscapeError
from core.report.comparison import comparison_of, comparisons
from core.report.summary import LANGS, ModelFacts, Point, Summary, executive_summary, fmt, fmt_count, group_facts

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
        verdict: "supports" | "contradicts" | "inconclusive" (of the seed's claim).
        short: one plain sentence.
        headline: the one number.
        details: the full measured text (paragraphs).
        numbers: the numbers behind it (name -> value).
        why: for an inconclusive verdict, what would settle it ("" otherwise).
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
        "cost_inconclusive": "RC-MAE's time per epoch is within the measurement spread of MAE's ({sx}).",
        "cost_missing": "Training cost is not measured yet.",
        "h_cost": "Time per epoch, RC-MAE / MAE",
        "vs_mae": "{d} vs MAE",
        "spread_unknown": "spread unknown",
        # generalization (fine-tuning)
        "gen_supports": "With {n} labels per class, pre-training lifts accuracy: {accs}, from scratch {s}.",
        "gen_contradicts": "With {n} labels per class, training from scratch did better: {s} vs {accs}.",
        "gen_inconclusive": "With {n} labels per class, pre-training's gain is not clear: {accs}, from scratch {s}.",
        "gen_acc": "{k} {a}",
        "h_gen": "Fine-tuned accuracy, {k}",
        "vs_scratch": "{d} pts vs scratch",
        "gen_detail": "Fine-tuned on {n} labels per class ({data}; {epochs} epochs, {steps} steps; seeds {seeds}): "
        "validation accuracy {rows}. Train minus validation accuracy (the gap): {gaps}. {note}",
        "gen_row": "{k} {m} ± {s}",
        "gen_vs": "{k} vs from scratch: {d} points, 95% interval ±{e}",
        "gen_vs_unknown": "{k} vs from scratch: {d} points (one seed: spread unknown)",
        "gen_missing": "Fine-tuning is not measured yet: the verdict below is on flatness alone.",
        "flat_line": "Flatness: {short}",
        # stability (flatness)
        "pair_supports": "{A} is flatter than {B}",
        "pair_contradicts": "{B} is flatter than {A}",
        "pair_inconclusive": "{A} vs {B} is unclear",
        "pair_missing": "{A} vs {B} is not measured",
        "stab_short": "Flatness on one function: {pairs}.",
        "stab_missing": "Stability (flatness) is not measured yet.",
        "h_stab": "Top eigenvalue, RC-MAE / MAE",
        "h_stab_sub": "on MAE's loss",
        "one_model": "one model: spread unknown",
        "one_seed": "one seed: spread unknown",
        "sp_interval": "95% interval ± {e}",
        "sp_seeds": "± {e} (std over seeds)",
        "sp_repeats": "± {e} (std over repeats)",
        # inference
        "inf_supports": "RC-MAE deploys an encoder the same size as MAE's ({p} parameters): no extra inference cost.",
        "inf_contradicts": "RC-MAE's deployed encoder has {r} MAE's parameters: it costs more to run.",
        "inf_inconclusive": "Same architecture as MAE, yet latency measured {r} MAE's: re-measure before concluding.",
        "inf_missing": "Inference cost is not measured yet.",
        "h_inf": "Latency per image, RC-MAE",
        "h_inf_params": "Deployed parameters, RC-MAE",
        # why inconclusive
        "why_cost_spread": "The {sx} difference is inside the 95% interval (±{e}) of {n} timed epochs per model. "
        "About {k} times as many epochs, timed on a quiet machine, would resolve a difference this size.",
        "why_cost_zero": "The times are equal within ±{e}: a real difference would be smaller than that.",
        "why_cost_one": "Only one epoch per model was timed, so the spread is unknown: time several epochs.",
        "why_gen": "The gain of {d} points for {k} is inside its 95% interval (±{e}) over {n} seed(s); about {m} "
        "seeds would resolve a gain this size.",
        "why_gen_one": "One seed per model: the spread is unknown. Run at least 3 seeds.",
        "why_regime": " The regime is small ({regime}); the paper's claims are about ViT-B trained for 1600 epochs on "
        "ImageNet, so a longer run may move the verdict.",
        "why_flat": "RC-MAE vs MAE on one function: {a} of {n} numbers favour RC-MAE, {b} favour MAE, {t} are within "
        "the spread. With {m} model(s) per kind there is {spread}: train more seeds (at least 3) to see whether the "
        "differences hold.",
        "why_flat_missing": "RC-MAE on MAE's loss is not measured yet: the first-run job computes it.",
        "spread_seeds": "a spread across seeds",
        "spread_none": "no spread across seeds (only the measurement's own)",
        "why_inf": "The architectures are equal, so the cost should be equal; the latency gap exceeds its spread. "
        "Re-measure on an idle machine with more repeats.",
        "why_missing": "Not measured yet: open the Overview or run `python -m core briefing` to prepare it.",
        # meeting
        "m_cost": {
            "supports": "a little more training cost ({x} per epoch)",
            "contradicts": "no extra training cost ({x} faster per epoch)",
            "inconclusive": "about the same training time",
            "missing": "a training cost we have not measured yet",
        },
        "m_gen": {
            "supports": "better accuracy after fine-tuning (+{d} points over training from scratch)",
            "contradicts": "no accuracy gain from pre-training (from scratch did better)",
            "inconclusive": "an accuracy gain we cannot confirm yet",
            "missing": "a generalization gain we have not measured yet",
        },
        "m_stab": {
            "supports": "a flatter, more stable model",
            "contradicts": "no stability gain (the flatness numbers point the other way)",
            "inconclusive": "a stability gain we cannot confirm yet",
            "missing": "a stability gain we have not measured yet",
        },
        "m_inf": {
            "supports": "the same inference cost",
            "contradicts": "a higher inference cost",
            "inconclusive": "an inference cost to re-measure",
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
        "cost_inconclusive": "RC-MAEの1エポックの時間はMAEとの差{sx}で、ばらつきの範囲内。",
        "cost_missing": "学習コストはまだ測定されていません。",
        "h_cost": "1エポックの時間 RC-MAE / MAE",
        "vs_mae": "{d}(MAE比)",
        "spread_unknown": "ばらつき不明",
        "gen_supports": "1クラス{n}枚で事前学習が精度を向上: {accs}、スクラッチ{s}。",
        "gen_contradicts": "1クラス{n}枚ではスクラッチの方が高精度: {s}対{accs}。",
        "gen_inconclusive": "1クラス{n}枚で事前学習の効果は不明確: {accs}、スクラッチ{s}。",
        "gen_acc": "{k} {a}",
        "h_gen": "微調整後の精度 {k}",
        "vs_scratch": "{d}ポイント(スクラッチ比)",
        "gen_detail": "1クラス{n}枚のラベルでファインチューニング({data}、{epochs}エポック、{steps}ステップ、"
        "シード{seeds}): "
        "検証精度 {rows}。学習精度と検証精度の差: {gaps}。{note}",
        "gen_row": "{k} {m} ± {s}",
        "gen_vs": "{k}とスクラッチの差: {d}ポイント、95%区間 ±{e}",
        "gen_vs_unknown": "{k}とスクラッチの差: {d}ポイント(シード1つのためばらつき不明)",
        "gen_missing": "ファインチューニングはまだ測定されていません。判定は平坦さのみによります。",
        "flat_line": "平坦さ: {short}",
        "pair_supports": "{A}は{B}より平坦",
        "pair_contradicts": "{B}の方が{A}より平坦",
        "pair_inconclusive": "{A}と{B}の差は不明確",
        "pair_missing": "{A}と{B}は未測定",
        "stab_short": "同じ関数での平坦さ: {pairs}。",
        "stab_missing": "安定性(平坦さ)はまだ測定されていません。",
        "h_stab": "最大固有値 RC-MAE / MAE",
        "h_stab_sub": "MAEの損失",
        "one_model": "モデル1つ: ばらつき不明",
        "one_seed": "シード1つ: ばらつき不明",
        "sp_interval": "95%区間 ± {e}",
        "sp_seeds": "± {e}(シード間の標準偏差)",
        "sp_repeats": "± {e}(繰り返しの標準偏差)",
        "inf_supports": "RC-MAEの配備モデルはMAEと同じ大きさ({p}パラメータ)で推論コスト増なし。",
        "inf_contradicts": "RC-MAEの配備モデルはMAEの{r}のパラメータで、推論コストが増える。",
        "inf_inconclusive": "構造はMAEと同じだが推論時間はMAEの{r}。結論の前に再測定を。",
        "inf_missing": "推論コストはまだ測定されていません。",
        "h_inf": "1画像あたりの推論時間 RC-MAE",
        "h_inf_params": "配備パラメータ数 RC-MAE",
        "why_cost_spread": "差{sx}は、各モデル{n}エポックの測定の95%区間(±{e})の内側です。"
        "負荷の少ないマシンで約{k}倍のエポックを測れば、この大きさの差を判別できます。",
        "why_cost_zero": "時間は±{e}の範囲で等しく、実際の差があってもそれより小さいと言えます。",
        "why_cost_one": "各モデル1エポックしか測定していないため、ばらつきが分かりません。"
        "複数エポックを測定してください。",
        "why_gen": "{k}の{d}ポイントの向上は、シード{n}個での95%区間(±{e})の内側です。"
        "この大きさの差を判別するには約{m}個のシードが必要です。",
        "why_gen_one": "各モデルのシードが1つのため、ばらつきが分かりません。3つ以上のシードで測定してください。",
        "why_regime": "規模も小さい({regime})ため、論文の主張(ImageNetでViT-Bを1600エポック学習)とは条件が"
        "大きく異なり、長い学習で判定が変わる可能性があります。",
        "why_flat": "同じ関数でのRC-MAEとMAEの比較では、{n}項目のうちRC-MAEが平坦なのは{a}項目、MAEが平坦なのは{b}"
        "項目、ばらつきの範囲内が{t}項目です。各種類{m}モデルのため{spread}。差が保たれるか確かめるには、"
        "シードを増やして(3つ以上)学習してください。",
        "why_flat_missing": "MAEの損失でのRC-MAEはまだ測定されていません。初回の準備ジョブが計算します。",
        "spread_seeds": "シード間のばらつきで判定しています",
        "spread_none": "シード間のばらつきは分かりません(測定そのもののばらつきのみ)",
        "why_inf": "構造が同じなので推論コストは等しいはずですが、推論時間の差がばらつきを超えています。"
        "負荷のないマシンで繰り返し回数を増やして再測定してください。",
        "why_missing": "まだ測定されていません。Overviewを開くか `python -m core briefing` を実行すると準備されます。",
        "m_cost": {
            "supports": "学習コストは少し増え(1エポックあたり{x})",
            "contradicts": "学習コストは増えず(1エポックあたり{x}速い)",
            "inconclusive": "学習時間はほぼ同じで",
            "missing": "学習コストは未測定で",
        },
        "m_gen": {
            "supports": "ファインチューニング後の精度が上がり(スクラッチより+{d}ポイント)",
            "contradicts": "事前学習による精度向上は見られず(スクラッチの方が高精度)",
            "inconclusive": "精度向上はまだ確認できず",
            "missing": "汎化性能は未測定で",
        },
        "m_stab": {
            "supports": "より平坦で安定したモデルになり",
            "contradicts": "安定性の向上は見られず(平坦さの数値は逆)",
            "inconclusive": "安定性の向上はまだ確認できず",
            "missing": "安定性は未測定で",
        },
        "m_inf": {
            "supports": "推論コストは変わりません",
            "contradicts": "推論コストは増えます",
            "inconclusive": "推論コストは再測定が必要です",
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


def _seeds_to_resolve(n: int, interval: float, diff: float) -> int:
    """Samples per side for a 95% interval half-width below |diff|, from the current one (shrinks as 1/sqrt(n))."""
    if diff == 0 or not _finite(interval):
        return 0
    return max(n + 1, math.ceil(n * (interval / abs(diff)) ** 2))


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


def _cost_point(p: Point, lang: str) -> BriefPoint:
    t, n = T[lang], p.numbers
    if "epoch_time_ratio" not in n:
        head = Headline(t["h_cost"], "n/a")
        return BriefPoint(
            "cost", p.title, p.verdict, t["cost_missing"], head, (p.sentence,), n, t["why_missing"], False
        )
    ratio, err, extra = float(n["epoch_time_ratio"]), float(n["epoch_time_ratio_se"]), float(n["extra_pct"])
    params = ""
    if _finite(n.get("training_params_ratio")):
        params = t["cost_params"].format(r=_ratio(float(n["training_params_ratio"]), lang))
    if p.verdict == "supports":
        short = t["cost_supports"].format(x=_pct(extra), params=params)
    elif p.verdict == "contradicts":
        short = t["cost_contradicts"].format(x=_pct(extra))
    else:
        short = t["cost_inconclusive"].format(sx=_signed_pct(extra))
    spread = t["sp_interval"].format(e=f"{2 * err:.2f}") if _finite(err) else t["spread_unknown"]
    head = Headline(t["h_cost"], _ratio(ratio, lang), t["vs_mae"].format(d=_signed_pct(extra)), "inverse", spread)
    why = ""
    if p.verdict == "inconclusive":
        k = int(min(n["n_epochs_rcmae"], n["n_epochs_mae"]))
        if not _finite(err):
            why = t["why_cost_one"]
        elif abs(extra) < 1e-9:
            why = t["why_cost_zero"].format(e=_pct(200 * err))
        else:
            need = _seeds_to_resolve(k, 200 * err, extra)
            why = t["why_cost_spread"].format(sx=_signed_pct(extra), e=_pct(200 * err), n=k, k=max(2, round(need / k)))
    return BriefPoint("cost", p.title, p.verdict, short, head, (p.sentence,), n, why)


def _stab_pairs(p: Point, lang: str) -> tuple[list[tuple[str, str, str | None]], str]:
    """[(a, b, verdict or None)] of the counted comparisons, and the short phrase listing them."""
    t, kn = T[lang], _KIND[lang]
    out, phrases = [], []
    for c in comparisons(counted=True):
        v = p.numbers.get(f"{c.a}_vs_{c.b}_verdict")
        v = None if v in (None, "not measured") else str(v)
        out.append((c.a, c.b, v))
        phrases.append(t[f"pair_{v or 'missing'}"].format(A=kn[c.a], B=kn[c.b]))
    return out, t["sep"].join(phrases)


def _stab_headline(facts: dict, lang: str) -> Headline:
    """RC-MAE's top eigenvalue relative to MAE's, both on MAE's loss (the counted comparison's function)."""
    t = T[lang]
    c = comparison_of("rcmae", "mae")
    _, by_fn = group_facts(facts)
    label = t["h_stab"]
    va = [float(f.top_eigenvalue) for f in by_fn.get(c.fa, []) if _finite(f.top_eigenvalue)]
    vb = [float(f.top_eigenvalue) for f in by_fn.get(c.fb, []) if _finite(f.top_eigenvalue)]
    if not va or not vb:
        return Headline(label, "n/a", spread=t["h_stab_sub"])
    ma, mb = float(np.mean(va)), float(np.mean(vb))
    ratio = ma / mb if mb else math.nan
    if len(va) > 1 and len(vb) > 1:
        sa, sb = np.std(va, ddof=1), np.std(vb, ddof=1)
        spread = t["sp_seeds"].format(e=f"{abs(ratio) * math.hypot(sa / ma, sb / mb):.2f}")
    else:
        spread = t["one_model"]
    spread = f"{t['h_stab_sub']}; {spread}"
    return Headline(label, _ratio(ratio, lang), t["vs_mae"].format(d=_signed_pct((ratio - 1) * 100)), "inverse", spread)


def _stab_point(p: Point, facts: dict, lang: str, context: dict) -> BriefPoint:
    t = T[lang]
    pairs, phrase = _stab_pairs(p, lang)
    measured = any(v for _, _, v in pairs)
    short = t["stab_short"].format(pairs=phrase) if measured else t["stab_missing"]
    why = ""
    if p.verdict == "inconclusive":
        n = p.numbers
        if n.get("rcmae_vs_mae_verdict") in (None, "not measured"):
            why = t["why_flat_missing"]
        else:
            groups, _ = group_facts(facts)
            m = min(len(groups.get("rcmae", [])), len(groups.get("mae", []))) or 1
            why = t["why_flat"].format(
                a=int(n.get("rcmae_vs_mae_rcmae_flatter", 0)),
                b=int(n.get("rcmae_vs_mae_mae_flatter", 0)),
                t=int(n.get("rcmae_vs_mae_within_spread", 0)),
                n=int(n.get("rcmae_vs_mae_measured", 0)),
                m=m,
                spread=t["spread_seeds"] if m > 1 else t["spread_none"],
            )
        why += t["why_regime"].format(regime=regime_text(context, lang))
    if not measured:
        why = t["why_missing"]
    head = _stab_headline(facts, lang)
    return BriefPoint("general", t["t_stab"], p.verdict, short, head, (p.sentence,), p.numbers, why, measured)


def _gen_stats(gen: dict) -> dict[str, tuple[float, float, int]]:
    out = {}
    for k, vals in (gen.get("val_acc") or {}).items():
        v = [float(x) for x in vals if _finite(x)]
        if v:
            out[k] = (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, len(v))
    return out


def generalization_verdict(gen: dict, tolerance: float = 0.05) -> tuple[str, dict[str, float | str]]:
    """Whether pre-training (MAE, RC-MAE) beats training from scratch on fine-tuned validation accuracy.

    Per pre-trained kind: the difference of means in points and its 95% interval (two standard errors of the
    difference of means; with one seed per side, `tolerance` of the larger mean instead). Supports when every
    measured pre-trained kind is better beyond the interval, contradicts when every one is worse beyond it.

    Returns:
        (verdict, numbers): numbers hold per kind `<k>_val_acc`, `<k>_val_acc_std`, `<k>_vs_scratch_pts`,
        `<k>_vs_scratch_interval_pts` and `<k>_vs_scratch` (the reading).
    """
    stats = _gen_stats(gen)
    numbers: dict[str, float | str] = {"labels_per_class": float(gen.get("labels_per_class", math.nan))}
    for k, (m, s, n) in stats.items():
        numbers[f"{k}_val_acc"], numbers[f"{k}_val_acc_std"], numbers[f"{k}_seeds"] = m, s, float(n)
    if "scratch" not in stats:
        return "inconclusive", numbers
    ms, ss, ns = stats["scratch"]
    scale = 100.0 if max(v[0] for v in stats.values()) <= 1.0 else 1.0
    readings = []
    for k in ("mae", "rcmae"):
        if k not in stats:
            continue
        m, s, n = stats[k]
        d = (m - ms) * scale
        if _finite(s) and _finite(ss):
            e = 2 * math.hypot(s / math.sqrt(n), ss / math.sqrt(ns)) * scale
        else:
            e = tolerance * max(abs(m), abs(ms)) * scale
        reading = "better" if d > e else "worse" if -d > e else "within"
        numbers |= {f"{k}_vs_scratch_pts": d, f"{k}_vs_scratch_interval_pts": e, f"{k}_vs_scratch": reading}
        readings.append(reading)
    if readings and all(r == "better" for r in readings):
        return "supports", numbers
    if readings and all(r == "worse" for r in readings):
        return "contradicts", numbers
    return "inconclusive", numbers


def _gen_point(gen: dict, stab: BriefPoint, lang: str, context: dict, tolerance: float) -> BriefPoint:
    t, kn = T[lang], _KIND[lang]
    verdict, n = generalization_verdict(gen, tolerance)
    stats = _gen_stats(gen)
    kinds = [k for k in ("rcmae", "mae") if k in stats]
    lpc = gen.get("labels_per_class", "?")
    accs = t["sep"].join(t["gen_acc"].format(k=kn[k], a=_acc(stats[k][0])) for k in kinds)
    s_acc = _acc(stats["scratch"][0]) if "scratch" in stats else "n/a"
    short = t[f"gen_{verdict}"].format(n=lpc, accs=accs, s=s_acc)
    lead = "rcmae" if "rcmae" in stats else (kinds[0] if kinds else None)
    if lead is None or "scratch" not in stats:
        head = Headline(t["h_gen"].format(k=kn.get(lead or "rcmae")), "n/a")
    else:
        m, s, _ = stats[lead]
        scale = 100.0 if m <= 1.0 else 1.0
        spread = t["sp_seeds"].format(e=f"{s * scale:.1f}") if _finite(s) else t["one_seed"]
        d = float(n[f"{lead}_vs_scratch_pts"])
        delta = t["vs_scratch"].format(d=f"{d:+.1f}")
        head = Headline(t["h_gen"].format(k=kn[lead]), _acc(m), delta, "normal", spread)
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
            d, e = float(n[f"{k}_vs_scratch_pts"]), float(n[f"{k}_vs_scratch_interval_pts"])
            both = _finite(stats[k][1]) and _finite(stats.get("scratch", (0, math.nan))[1])
            key = "gen_vs" if both else "gen_vs_unknown"
            vs.append(t[key].format(k=kn[k], d=f"{d:+.1f}", e=f"{e:.1f}"))
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
    if verdict == "inconclusive":
        worst = None
        for k in kinds:
            if n.get(f"{k}_vs_scratch") != "better":
                worst = k
                break
        if worst is not None and "scratch" in stats:
            m, s, ns = stats[worst]
            if not (_finite(s) and _finite(stats["scratch"][1])):
                why = t["why_gen_one"]
            else:
                d, e = float(n[f"{worst}_vs_scratch_pts"]), float(n[f"{worst}_vs_scratch_interval_pts"])
                need = _seeds_to_resolve(ns, e, d) if d else 0
                why = t["why_gen"].format(k=kn[worst], d=f"{d:+.1f}", e=f"{e:.1f}", n=ns, m=need or "many")
        why += t["why_regime"].format(regime=regime_text(context, lang))
    numbers = n | {f"flatness_{k}": v for k, v in stab.numbers.items()}
    return BriefPoint(
        "general", t["t_general"], verdict, short, head, tuple(d for d in details if d), numbers, why.strip()
    )


def _inf_point(p: Point, lang: str) -> BriefPoint:
    t, n = T[lang], p.numbers
    if "params_ratio" not in n:
        head = Headline(t["h_inf"], "n/a")
        return BriefPoint("inf", p.title, p.verdict, t["inf_missing"], head, (p.sentence,), n, t["why_missing"], False)

    pr = float(n["params_ratio"])
    if p.verdict == "supports":
        short = t["inf_supports"].format(p=fmt_count(float(n["rcmae_params_deployed"])))
    elif p.verdict == "contradicts":
        short = t["inf_contradicts"].format(r=_ratio(pr, lang))
    else:
        short = t["inf_inconclusive"].format(r=_ratio(float(n.get("latency_ratio", math.nan)), lang))
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
    why = t["why_inf"] if p.verdict == "inconclusive" else ""
    return BriefPoint("inf", p.title, p.verdict, short, head, (p.sentence,), n, why)


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
    open_ = [item[p.key] for p in points if (not p.measured or p.verdict == "inconclusive") and p.key != "cost"]
    # Training cost: "contradicts" means no extra cost (good news); "inconclusive" means about the same, not open.
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


def compose(facts: dict, lang: str = "en", context: dict | None = None, *, tolerance: float = 0.05) -> Briefing:
    """The briefing from the facts the first-run job gathers (`core.app.first_run.gather_facts`).

    Args:
        facts: label -> `ModelFacts` (any kinds, RC-MAE also on its MAE term), plus optionally "generalization"
            (the fine-tuning measurement, plain dict) — absent means not measured yet.
        lang: "en" or "ja".
        context: models / data / regime for the text ("preset", "epochs", "data").
        tolerance: the relative difference that counts when no spread is known.
    """
    if lang not in LANGS:
        raise LandscapeError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    context = dict(context or {})
    models = {k: f for k, f in facts.items() if isinstance(f, ModelFacts)}
    s = executive_summary(models, lang, tolerance=tolerance)
    stab = _stab_point(s.points[1], models, lang, context)
    gen = facts.get("generalization")
    if isinstance(gen, dict) and gen.get("val_acc"):
        second = _gen_point(gen, stab, lang, context, tolerance)
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
