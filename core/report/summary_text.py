"""The executive summary's phrase tables (EN/JA): model and metric names and every sentence template.

Kept apart from `core.report.summary`, which composes the verdicts, so that the rules and the words can be read (and
translated) on their own.
"""

from __future__ import annotations

KIND = {
    "en": {"mae": "MAE", "rcmae": "RC-MAE", "sup": "the supervised ViT"},
    "ja": {"mae": "MAE", "rcmae": "RC-MAE", "sup": "教師ありViT"},
}
METRIC = {
    "en": {
        "top_eigenvalue": "top Hessian eigenvalue",
        "trace": "Hessian trace",
        "sharpness": "sharpness",
        "basin_width": "basin width",
        "acc_drop": "accuracy drop under weight noise",
    },
    "ja": {
        "top_eigenvalue": "ヘッセ行列の最大固有値",
        "trace": "ヘッセ行列のトレース",
        "sharpness": "シャープネス",
        "basin_width": "盆地の幅",
        "acc_drop": "重みノイズによる精度低下",
    },
}
T = {
    "en": {
        "t_cost": "Training cost",
        "t_stab": "Stability (flatness)",
        "t_inf": "Inference cost",
        "cost_missing": "Training cost is not measured yet: no per-epoch times for {who}.",
        "cost_detail": "{a} s vs {b} s per epoch; RC-MAE / MAE, paired epoch by epoch: {est} ({n} epoch pairs)",
        "cost_more": "RC-MAE costs {x} more per training epoch than MAE ({detail}).",
        "cost_less": "RC-MAE takes {x} less time per training epoch than MAE ({detail}): on this data RC-MAE "
        "showed no extra training cost, unlike the small extra cost expected.",
        "cost_same": "RC-MAE's time per training epoch is within 5% of MAE's ({detail}): no meaningful extra training "
        "cost.",
        "cost_open": "RC-MAE's time per training epoch is not yet told apart from MAE's ({detail}).",
        "cost_params": " During training it holds {r} MAE's parameters ({a} vs {b}: student and EMA teacher).",
        "pair_missing": "{A} vs {B}: the {name} is not measured yet.",
        "pair_nomodel": "{A} vs {B}: not measured yet (no {C} loaded).",
        "pair_rule": "{A} vs {B}, decided by the {name} ({A} / {B}, paired by seed): {est}. {said}",
        "pair_other": "{name} {est} ({reading})",
        "pair_others": " Shown, not counted: {others}.",
        "r": {
            "supports": "flatter as claimed",
            "contradicts": "the other way",
            "no meaningful difference": "no meaningful difference",
            "undetermined": "undetermined",
        },
        "at_sigma": " at σ = {s}",
        "sep": "; ",
        "list_sep": ", ",
        "not_yet": " Not measured yet: {names}.",
        "pair_nofunction": "{A} vs {B}: not measured yet on one function ({C} on MAE's masked-patch MSE).",
        "cmp_same": "On one function, MAE's masked-patch MSE ({moving}): ",
        "cmp_full": " Secondary line, not counted: RC-MAE's full objective (MAE term + γ·consistency) vs MAE's loss: "
        "{pair} Why not counted: {reason}.",
        "cmp_full_missing": " Secondary line, not counted: RC-MAE's full objective is not measured yet.",
        "caveat": " (Each model is measured on its own training loss: loss-unit numbers are divided by each model's "
        "loss at the centre, and the comparison is indicative.)",
        "inf_missing": "Inference cost is not measured yet: no {who} loaded.",
        "inf_same": "RC-MAE deploys only its EMA teacher's encoder, the same architecture as MAE's: {p} parameters "
        "and {f} FLOPs per image for both.",
        "inf_diff": "RC-MAE's deployed encoder has {pa} parameters and {fa} FLOPs per image versus MAE's {pb} and "
        "{fb} ({r} the parameters)",
        "inf_more": ": it costs more to run.",
        "inf_less": ": it costs no more to run.",
        "k_cost": {
            "supports": "Training costs about {x} more per epoch",
            "contradicts": "Training took no extra time per epoch ({x} less)",
            "no meaningful difference": "Training time per epoch was the same within 5%",
            "undetermined": "The extra training time is not settled yet",
            "missing": "Training cost is not measured yet",
        },
        "k_stab": {
            "supports": "{who}",
            "contradicts": "the flatness numbers say the opposite of the paper's stability claim",
            "no meaningful difference": "the flatness numbers show no meaningful difference",
            "undetermined": "the stability gain is not settled yet",
            "missing": "stability is not measured yet",
        },
        "k_stab_who": ("{A} is flatter (more stable) than {B}", "{A} than {B}", ", and "),
        "k_inf": {
            "supports": "inference costs nothing extra",
            "contradicts": "inference costs more",
            "undetermined": "inference cost is not confirmed yet",
            "missing": "inference cost is not measured yet",
        },
        "k_rec": {
            "good": "a small training investment for a steadier model.",
            "bad": "on these models the stability benefit did not show.",
            "wait": "measure stability further before deciding.",
        },
        "k_join": "{cost}; {stab}; {inf}: {rec}",
    },
    "ja": {
        "t_cost": "学習コスト",
        "t_stab": "安定性(平坦さ)",
        "t_inf": "推論コスト",
        "cost_missing": "学習コストはまだ測定されていません({who}の1エポックあたりの時間がありません)。",
        "cost_detail": "1エポックあたり{a}秒対{b}秒。RC-MAE / MAE(エポックごとの対応比較): {est}({n}組)",
        "cost_more": "RC-MAEは1エポックあたりMAEより約{x}多く時間がかかります({detail})。",
        "cost_less": "RC-MAEは1エポックあたりMAEより約{x}短い時間で学習できました({detail})。このデータでは"
        "学習コストの増加は見られず、想定された追加コストとは逆の結果です。",
        "cost_same": "RC-MAEの1エポックあたりの学習時間はMAEとの差が5%以内です({detail})。意味のある追加コストは"
        "ありません。",
        "cost_open": "RC-MAEの1エポックあたりの学習時間は、まだMAEと区別できません({detail})。",
        "cost_params": "学習中に保持するパラメータ数はMAEの{r}です({a}対{b}、生徒モデルとEMA教師モデル)。",
        "pair_missing": "{A}と{B}の{name}はまだ測定されていません。",
        "pair_nomodel": "{A}と{B}の比較はまだ測定されていません({C}のモデルがありません)。",
        "pair_rule": "{A}と{B}は{name}で判定({A} / {B}、シードごとの対応比較): {est}。{said}",
        "pair_other": "{name} {est}({reading})",
        "pair_others": "参考(判定には数えない): {others}。",
        "r": {
            "supports": "主張どおり平坦",
            "contradicts": "逆向き",
            "no meaningful difference": "意味のある差なし",
            "undetermined": "未決定",
        },
        "at_sigma": "(σ={s})",
        "sep": "、",
        "list_sep": "、",
        "not_yet": "未測定の項目:{names}。",
        "pair_nofunction": "{A}と{B}の同じ関数での比較はまだ測定されていません({C}のMAEマスクパッチ二乗誤差)。",
        "cmp_same": "同じ関数(MAEのマスクパッチ二乗誤差、{moving})での比較: ",
        "cmp_full": "参考(判定には数えない): RC-MAEの学習目的関数(MAE項 + γ·一貫性項)とMAEの損失の比較: {pair}"
        "数えない理由: {reason}。",
        "cmp_full_missing": "参考(判定には数えない): RC-MAEの学習目的関数での数値はまだ測定されていません。",
        "caveat": "(各モデルはそれぞれの学習損失で測定しているため、損失の単位を持つ数値は中心での損失で割って"
        "比較しています。この比較は参考値です。)",
        "inf_missing": "推論コストはまだ測定されていません({who}のモデルがありません)。",
        "inf_same": "RC-MAEはEMA教師モデルのエンコーダだけを配備し、MAEと同じ構造です。"
        "パラメータ数はどちらも{p}、1画像あたりの演算量はどちらも{f} FLOPsです。",
        "inf_diff": "RC-MAEの配備エンコーダはパラメータ数{pa}、1画像あたり{fa} FLOPsで、MAEの{pb}、{fb} FLOPsと"
        "比べてパラメータ数が{r}です。",
        "inf_more": "推論コストが増えます。",
        "inf_less": "推論コストは増えません。",
        "k_cost": {
            "supports": "学習は1エポックあたり約{x}余分にかかります",
            "contradicts": "学習時間の増加はありませんでした(約{x}短縮)",
            "no meaningful difference": "1エポックあたりの学習時間の差は5%以内でした",
            "undetermined": "学習時間の増加はまだ決まっていません",
            "missing": "学習コストは未測定です",
        },
        "k_stab": {
            "supports": "{who}平坦(安定)でした",
            "contradicts": "平坦さの数値は論文の安定性の主張と逆でした",
            "no meaningful difference": "平坦さの数値に意味のある差はありませんでした",
            "undetermined": "安定性の向上はまだ決まっていません",
            "missing": "安定性は未測定です",
        },
        "k_stab_who": ("{A}は{B}より", "{A}は{B}より", "、"),
        "k_inf": {
            "supports": "推論コストは増えません",
            "contradicts": "推論コストが増えます",
            "undetermined": "推論コストは未確認です",
            "missing": "推論コストは未測定です",
        },
        "k_rec": {
            "good": "学習への小さな投資で、より安定したモデルが得られます。",
            "bad": "これらのモデルでは安定性の利点は確認できませんでした。",
            "wait": "判断の前に安定性を追加で測定しましょう。",
        },
        "k_join": "{cost}。{stab}。{inf}。{rec}",
    },
}
