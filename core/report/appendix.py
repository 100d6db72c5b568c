"""The briefing's appendix in words: each number a point holds, labelled with what it is and its unit, EN and JA.

The points of `core.report.briefing` keep their numbers under internal keys ("rcmae_vs_mae_top_eigenvalue",
"mae_vs_scratch_lo_pts", ...). A reader of the HTML briefing sees none of those: `appendix_rows` turns each key into
a label from the tables below ("RC-MAE vs MAE: top eigenvalue, ratio"), each value into a number with its unit, a
reading into the verdict's words, and a missing value into "not measured". `unknown_keys` lists keys no table names,
so a test can keep the tables complete.
"""

from __future__ import annotations

import math
import re
from typing import Any

_KINDS = {
    "en": {"rcmae": "RC-MAE", "mae": "MAE", "sup": "Sup-ViT", "scratch": "from scratch"},
    "ja": {"rcmae": "RC-MAE", "mae": "MAE", "sup": "教師ありViT", "scratch": "スクラッチ"},
}
# The part of a key after its models: (English, Japanese, unit). Units: "x" ratio, "pts" points, "%" percent, "s"
# seconds, "ms", "n" a count, "" as it is.
_NAMES: dict[str, tuple[str, str, str]] = {
    "top_eigenvalue": ("top Hessian eigenvalue, ratio", "ヘッセ行列の最大固有値の比", "x"),
    "trace": ("Hessian trace, ratio", "ヘッセ行列のトレースの比", "x"),
    "sharpness": ("average sharpness, ratio", "平均シャープネスの比", "x"),
    "basin_width": ("basin width, ratio", "盆地の幅の比", "x"),
    "acc_drop": ("accuracy drop under weight noise, difference", "重みノイズでの精度低下の差", ""),
    "sigma": ("weight-noise level σ", "重みノイズの大きさσ", ""),
    "estimate": ("primary number, ratio", "主指標の比", "x"),
    "lo": ("95% interval, low end", "95%区間の下端", "x"),
    "hi": ("95% interval, high end", "95%区間の上端", "x"),
    "n": ("seeds compared", "比較したシード数", "n"),
    "primary": ("primary number", "主指標", ""),
    "verdict": ("reading", "判定", ""),
    "seeds_needed": ("seeds that would decide it", "決着に必要なシード数", "n"),
    "pts": ("accuracy difference", "精度の差", "pts"),
    "lo_pts": ("accuracy difference, 95% interval low end", "精度の差 95%区間の下端", "pts"),
    "hi_pts": ("accuracy difference, 95% interval high end", "精度の差 95%区間の上端", "pts"),
    "val_acc": ("validation accuracy (mean over seeds)", "検証精度(シード平均)", "acc"),
    "val_acc_std": ("validation accuracy, std over seeds", "検証精度のシード間標準偏差", "acc"),
    "seeds": ("seeds", "シード数", "n"),
    "epoch_s": ("seconds per training epoch", "1エポックの学習時間", "s"),
    "params_training": ("parameters while training", "学習中のパラメータ数", "count"),
    "params_deployed": ("parameters deployed", "配備するパラメータ数", "count"),
    "flops_per_image": ("FLOPs per image", "1画像あたりのFLOPs", "count"),
}
# Keys that name no model.
_PLAIN: dict[str, tuple[str, str, str]] = {
    "epoch_time_ratio": ("time per epoch, RC-MAE / MAE", "1エポックの時間 RC-MAE / MAE", "x"),
    "epoch_time_ratio_lo": ("time per epoch, 95% interval low end", "1エポックの時間 95%区間の下端", "x"),
    "epoch_time_ratio_hi": ("time per epoch, 95% interval high end", "1エポックの時間 95%区間の上端", "x"),
    "epoch_time_seeds_needed": ("epoch pairs that would decide it", "決着に必要なエポック組数", "n"),
    "extra_pct": ("extra training time per epoch", "1エポックあたりの追加学習時間", "%"),
    "n_epoch_pairs": ("epoch pairs timed", "測定したエポックの組数", "n"),
    "training_params_ratio": ("parameters while training, RC-MAE / MAE", "学習中のパラメータ数 RC-MAE / MAE", "x"),
    "stability_n": ("seeds behind the flatness verdict", "平坦さの判定の根拠シード数", "n"),
    "stability_seeds_needed": ("seeds that would decide flatness", "平坦さの決着に必要なシード数", "n"),
    "gen_n": ("seeds behind the generalization verdict", "汎化の判定の根拠シード数", "n"),
    "gen_seeds_needed": ("seeds that would decide generalization", "汎化の決着に必要なシード数", "n"),
    "gen_verdict_text": ("generalization verdict in words", "汎化の判定(文章)", ""),
    "labels_per_class": ("labels per class", "1クラスあたりのラベル数", "n"),
    "params_ratio": ("parameters deployed, RC-MAE / MAE", "配備パラメータ数 RC-MAE / MAE", "x"),
    "flops_ratio": ("FLOPs per image, RC-MAE / MAE", "1画像あたりFLOPs RC-MAE / MAE", "x"),
    "same_architecture": ("same deployed architecture", "配備する構造が同じ", ""),
    "latency_ratio": ("latency, RC-MAE / MAE (interleaved, paired)", "推論時間 RC-MAE / MAE(交互測定、対応比較)", "x"),
    "latency_ratio_lo": ("latency ratio, 95% interval low end", "推論時間の比 95%区間の下端", "x"),
    "latency_ratio_hi": ("latency ratio, 95% interval high end", "推論時間の比 95%区間の上端", "x"),
    "latency_rounds": ("latency rounds timed", "推論時間の測定回数", "n"),
    "latency_reading": ("latency reading (shown, not deciding)", "推論時間の判定(参考)", ""),
}
_WORDS = {
    "en": {
        "supports": "supports the claim",
        "contradicts": "contradicts the claim",
        "no meaningful difference": "no meaningful difference",
        "undetermined": "undetermined",
        "not measured": "not measured",
        "yes": "yes",
        "no": "no",
        "full": "RC-MAE's full objective",
        "vs": "{a} vs {b}",
        "reading": "{x}: reading",
        "missing": "not measured",
    },
    "ja": {
        "supports": "主張を支持",
        "contradicts": "主張と矛盾",
        "no meaningful difference": "意味のある差なし",
        "undetermined": "未決定",
        "not measured": "未測定",
        "yes": "はい",
        "no": "いいえ",
        "full": "RC-MAEの目的関数全体",
        "vs": "{a}対{b}",
        "reading": "{x}: 判定",
        "missing": "未測定",
    },
}
_PAIR = re.compile(r"^(full_)?(rcmae|mae|sup|scratch)_vs_(rcmae|mae|sup|scratch)(?:_(.+))?$")
_ONE = re.compile(r"^(rcmae|mae|sup|scratch)_(.+)$")


def _name(rest: str, lang: str) -> tuple[str, str] | None:
    """(label, unit) of a key's tail; "<x>_reading" is the reading of <x>."""
    i = 0 if lang == "en" else 1
    if rest in _NAMES:
        return _NAMES[rest][i], _NAMES[rest][2]
    if rest.endswith("_reading") and rest.removesuffix("_reading") in _NAMES:
        return _WORDS[lang]["reading"].format(x=_NAMES[rest.removesuffix("_reading")][i]), ""
    return None


def label_of(key: str, lang: str = "en") -> tuple[str, str] | None:
    """(label, unit) of one number's key, or None when no table names it."""
    i = 0 if lang == "en" else 1
    if key in _PLAIN:
        return _PLAIN[key][i], _PLAIN[key][2]
    kinds, w = _KINDS[lang], _WORDS[lang]
    m = _PAIR.match(key)
    if m:
        full, a, b, rest = m.groups()
        head = w["vs"].format(a=w["full"] if full else kinds[a], b=kinds[b])
        if rest is None:
            return head, ""
        found = _name(rest, lang)
        return (f"{head}: {found[0]}", found[1]) if found else None
    m = _ONE.match(key)
    if m:
        found = _name(m.group(2), lang)
        return (f"{kinds[m.group(1)]}: {found[0]}", found[1]) if found else None
    return None


def unknown_keys(numbers: dict[str, Any]) -> list[str]:
    """The keys of `numbers` that no table names (a test keeps this empty for every point)."""
    return [k for k in numbers if label_of(k) is None]


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def value_text(value: Any, unit: str, lang: str = "en") -> str:
    """A value with its unit; a reading in the verdict's words; a missing value in words."""
    w = _WORDS[lang]
    if isinstance(value, str):
        if value in w:
            return w[value]
        found = _name(value, lang)  # a primary's name ("top_eigenvalue")
        return found[0] if found else value
    if not _finite(value):
        return w["missing"]
    v = float(value)
    if unit == "x":
        return f"{v:.3g}" + ("倍" if lang == "ja" else "×")
    if unit == "pts":
        return f"{v:+.1f}" + ("ポイント" if lang == "ja" else " pts")
    if unit == "%":
        return f"{v:+.1f}%"
    if unit == "acc":
        return f"{100 * v:.1f}%" if abs(v) <= 1 else f"{v:.1f}%"
    if unit in ("n", "count"):
        return f"{int(round(v)):,}"
    if unit == "s":
        return f"{v:.3g} s"
    return f"{v:.4g}"


def appendix_rows(numbers: dict[str, Any], lang: str = "en") -> list[tuple[str, str]]:
    """(label, value) for each number of a point, in words; keys no table names are left out (see
    `unknown_keys`)."""
    rows = []
    for key, value in numbers.items():
        found = label_of(key, lang)
        if found is not None:
            rows.append((found[0], value_text(value, found[1], lang)))
    return rows
