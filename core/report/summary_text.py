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
        "cost_detail": "{a} s vs {b} s per epoch, {spread}; epochs measured: RC-MAE {na}, MAE {nb}",
        "spread_known": "95% interval ±{e}",
        "spread_unknown": "spread unknown with one epoch per model",
        "cost_more": "RC-MAE costs {x} more per training epoch than MAE ({detail}).",
        "cost_less": "RC-MAE takes {x} less time per training epoch than MAE ({detail}): on this data RC-MAE "
        "showed no extra training cost, unlike the small extra cost expected.",
        "cost_same": "RC-MAE's time per training epoch is within the measurement spread of MAE's ({sign}{x}; "
        "{detail}): no clear extra training cost.",
        "cost_params": " During training it holds {r} MAE's parameters ({a} vs {b}: student and EMA teacher).",
        "pair_missing": "{A} vs {B}: flatness is not measured yet.",
        "pair_nomodel": "{A} vs {B}: not measured yet (no {C} loaded).",
        "pair_all": "{A} is flatter than {B} on {all} ({details}).",
        "pair_none": "{B} is flatter than {A} on {all} ({details}): the opposite of the paper's claim.",
        "pair_most": "{A} is flatter than {B} on {k} of {n} measured numbers, the rest within the spread ({details}).",
        "pair_mostnone": "{B} is flatter than {A} on {k} of {n} measured numbers, the rest within the spread "
        "({details}): the opposite of the paper's claim.",
        "pair_mixed": "{A} vs {B} is inconclusive: of {n} measured numbers, {a} favour {A}, {b} favour {B} and "
        "{t} are within the spread ({details}).",
        "all_n": "all {n} measured numbers",
        "all_1": "the only measured number",
        "all_2": "both measured numbers",
        "detail": "{name}: {a} vs {b}",
        "at_sigma": " at σ = {s}",
        "pts": " pt",
        "tie": " (within spread)",
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
        "{fb} ({r} the parameters): it costs more to run.",
        "lat": "Measured latency: {a} ± {sa} ms vs {b} ± {sb} ms per image (ratio {r})",
        "lat_noise": ", within the measurement spread: no extra inference cost.",
        "lat_end": ".",
        "lat_faster": "; RC-MAE measured faster, within what the same architecture allows: no extra inference cost.",
        "lat_slower": ", higher for RC-MAE although the architecture is the same: likely measurement noise "
        "(a busy machine); re-measure before concluding.",
        "lat_missing": " Latency is not measured yet.",
        "k_cost": {
            "supports": "Training costs about {x} more per epoch",
            "contradicts": "Training took no extra time per epoch ({x} less)",
            "inconclusive": "Training time per epoch was about the same",
            "missing": "Training cost is not measured yet",
        },
        "k_stab": {
            "supports": "{who}",
            "contradicts": "the flatness numbers say the opposite of the paper's stability claim",
            "inconclusive": "the stability gain is not clear yet",
            "missing": "stability is not measured yet",
        },
        "k_stab_who": ("{A} is flatter (more stable) than {B}", "{A} than {B}", ", and "),
        "k_inf": {
            "supports": "inference costs nothing extra",
            "contradicts": "inference costs more",
            "inconclusive": "inference cost is not confirmed yet",
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
        "cost_detail": "1エポックあたり{a}秒対{b}秒、{spread}、測定エポック数はRC-MAE {na}、MAE {nb}",
        "spread_known": "95%区間 ±{e}",
        "spread_unknown": "各1エポックのみのためばらつきは不明",
        "cost_more": "RC-MAEは1エポックあたりMAEより約{x}多く時間がかかります({detail})。",
        "cost_less": "RC-MAEは1エポックあたりMAEより約{x}短い時間で学習できました({detail})。このデータでは"
        "学習コストの増加は見られず、想定された追加コストとは逆の結果です。",
        "cost_same": "RC-MAEの1エポックあたりの学習時間は、MAEとの差({sign}{x})が測定のばらつきの範囲内です"
        "({detail})。明確な追加コストは見られません。",
        "cost_params": "学習中に保持するパラメータ数はMAEの{r}です({a}対{b}、生徒モデルとEMA教師モデル)。",
        "pair_missing": "{A}と{B}の平坦さはまだ測定されていません。",
        "pair_nomodel": "{A}と{B}の比較はまだ測定されていません({C}のモデルがありません)。",
        "pair_all": "{all}で{A}は{B}より平坦です({details})。",
        "pair_none": "{all}で{B}の方が{A}より平坦です({details})。これは論文の主張とは逆の結果です。",
        "pair_most": "測定した{n}項目のうち{k}項目で{A}は{B}より平坦で、残りはばらつきの範囲内です({details})。",
        "pair_mostnone": "測定した{n}項目のうち{k}項目で{B}の方が{A}より平坦で、残りはばらつきの範囲内です"
        "({details})。これは論文の主張とは逆の結果です。",
        "pair_mixed": "{A}と{B}の比較は結論が出ていません。測定した{n}項目のうち、{A}の方が平坦なのは{a}項目、"
        "{B}の方が平坦なのは{b}項目、差がばらつきの範囲内なのは{t}項目です({details})。",
        "all_n": "測定した{n}項目すべて",
        "all_1": "測定した唯一の項目",
        "all_2": "測定した2項目の両方",
        "detail": "{name}:{a}対{b}",
        "at_sigma": "(σ={s})",
        "pts": "ポイント",
        "tie": "(ばらつきの範囲内)",
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
        "比べてパラメータ数が{r}です。推論コストが増えます。",
        "lat": "実測の推論時間は1画像あたり{a} ± {sa} ms対{b} ± {sb} ms(比{r})",
        "lat_noise": "で、測定のばらつきの範囲内です。推論コストの増加はありません。",
        "lat_faster": "で、RC-MAEの方が速く測定されましたが、同じ構造の範囲内の差です。推論コストの増加はありません。",
        "lat_slower": "で、構造は同じにもかかわらずRC-MAEの方が遅く測定されました。測定の揺らぎ(マシンの負荷など)の"
        "可能性が高いため、結論の前に再測定してください。",
        "lat_missing": "推論時間はまだ測定されていません。",
        "lat_end": "です。",
        "k_cost": {
            "supports": "学習は1エポックあたり約{x}余分にかかります",
            "contradicts": "学習時間の増加はありませんでした(約{x}短縮)",
            "inconclusive": "1エポックあたりの学習時間はほぼ同じでした",
            "missing": "学習コストは未測定です",
        },
        "k_stab": {
            "supports": "{who}平坦(安定)でした",
            "contradicts": "平坦さの数値は論文の安定性の主張と逆でした",
            "inconclusive": "安定性の向上はまだはっきりしません",
            "missing": "安定性は未測定です",
        },
        "k_stab_who": ("{A}は{B}より", "{A}は{B}より", "、"),
        "k_inf": {
            "supports": "推論コストは増えません",
            "contradicts": "推論コストが増えます",
            "inconclusive": "推論コストは未確認です",
        },
        "k_rec": {
            "good": "学習への小さな投資で、より安定したモデルが得られます。",
            "bad": "これらのモデルでは安定性の利点は確認できませんでした。",
            "wait": "判断の前に安定性を追加で測定しましょう。",
        },
        "k_join": "{cost}。{stab}。{inf}。{rec}",
    },
}
