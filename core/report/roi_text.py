"""The Overview's one sentence on the return of pre-training, composed from `core.app.roi_tasks.roi_facts` (plain
values: gains in points with their 95% interval and reading by `core.report.verdicts`' rule), in English or Japanese.
Never canned: every number is the facts'; a gain that the rule does not support reads "no gain measured" (no
meaningful difference), "undetermined" or "lowered", as the data says.
"""

from __future__ import annotations

import math

_EN = {
    "supports": "lifted accuracy with {b} labels per class by {x} points [{lo}, {hi}]",
    "no meaningful difference": "gave no gain measured with {b} labels per class ({x} points [{lo}, {hi}])",
    "contradicts": "lowered accuracy with {b} labels per class by {neg} points [{lo}, {hi}]",
    "undetermined": "left the gain with {b} labels per class undetermined ({x} points [{lo}, {hi}])",
}
_JA = {
    "supports": "1クラス{b}ラベルでの精度を{x}ポイント [{lo}, {hi}] 押し上げた",
    "no meaningful difference": "1クラス{b}ラベルでの精度に意味のある向上は測定されなかった"
    "（{x}ポイント [{lo}, {hi}]）",
    "contradicts": "1クラス{b}ラベルでの精度を{neg}ポイント [{lo}, {hi}] 下げた",
    "undetermined": "1クラス{b}ラベルでの精度向上は未決定（{x}ポイント [{lo}, {hi}]）",
}


def _f(v: float) -> str:
    return f"{v:+.1f}" if math.isfinite(v) else "n/a"


def _b(v: float) -> str:
    """An interval's end (no sign forced)."""
    return f"{v:.1f}" if math.isfinite(v) else "n/a"


def _time(seconds: float, ja: bool) -> str:
    if not math.isfinite(seconds):
        return ""
    if seconds < 120:
        return f"（ここで{seconds:.0f}秒）" if ja else f" ({seconds:.0f} s here)"
    return f"（ここで{seconds / 60:.1f}分）" if ja else f" ({seconds / 60:.1f} min here)"


def _part(rung: dict, budget: int, lang: str) -> str:
    ja = lang == "ja"
    table = _JA if ja else _EN
    if not rung.get("n"):
        return ("{e}エポックの事前学習はまだ測定されていない" if ja else "{e} epochs are not measured yet").format(
            e=rung["epochs"]
        )
    text = table.get(rung["reading"], table["undetermined"]).format(
        b=budget, x=_f(rung["gain"]), neg=f"{-rung['gain']:.1f}", lo=_b(rung["lo"]), hi=_b(rung["hi"])
    )
    if rung["n"] < 2:
        text += "（1シード）" if ja else " (1 seed)"
    head = (
        f"{rung['epochs']}エポックの事前学習{_time(rung['wall_s'], True)}は"
        if ja
        else f"{rung['epochs']} epochs{_time(rung['wall_s'], False)} "
    )
    return head + text


def roi_sentence(facts: dict | None, lang: str = "en") -> str:
    """One sentence (two at most) from `roi_facts`; "" when there are no facts.

    E.g. "Against the same ViT from scratch, MAE pre-training for 30 epochs (20 s here) left the gain with 10 labels
    per class undetermined (+1.2 points [-3.0, 5.4]); 300 epochs (3.4 min here) lifted accuracy with 10 labels per
    class by +22.5 points [18.0, 27.0]. RC-MAE's teacher cost ×1.31 [1.25, 1.38] the time per epoch and changed the
    gain at 300 epochs by -0.8 points [-2.0, 0.4] (no meaningful difference); 8 seeds."
    """
    if not facts or not facts.get("rungs"):
        return ""
    ja = lang == "ja"
    b = facts["budget"]
    parts = [_part(r, b, lang) for r in facts["rungs"]]
    top = facts["rungs"][-1]
    tc = facts.get("teacher") or {}
    if ja:
        out = "同じViTのスクラッチ学習と比べ、MAEの" + "。".join(parts) + "。"
    else:
        out = "Against the same ViT from scratch, MAE pre-training for " + "; ".join(parts) + "."
    if tc.get("n") and math.isfinite(tc.get("ratio", math.nan)):
        rc = f"{_f(top['rc_gain'])} [{_b(top['rc_lo'])}, {_b(top['rc_hi'])}]" if top.get("n") else "n/a"
        reading = {
            "supports": ("raised", "上げた"),
            "contradicts": ("lowered", "下げた"),
            "no meaningful difference": ("no meaningful difference", "意味のある差なし"),
        }.get(top.get("rc_reading"), ("undetermined", "未決定"))
        ratio = f"×{tc['ratio']:.2f} [{tc['lo']:.2f}, {tc['hi']:.2f}]" if tc.get("n", 0) > 1 else f"×{tc['ratio']:.2f}"
        if ja:
            out += (
                f"RC-MAEの教師はエポックあたりの時間が{ratio}で、{top['epochs']}エポックでの向上を{rc}ポイント変えた"
                f"（{reading[1]}）。{facts.get('seeds', 0)}シード。"
            )
        else:
            out += (
                f" RC-MAE's teacher cost {ratio} the time per epoch and changed the gain at {top['epochs']} epochs "
                f"by {rc} points ({reading[0]}); {facts.get('seeds', 0)} seed(s)."
            )
    return out
