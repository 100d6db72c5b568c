"""EN / JA entries for what things are called (`core.report.naming`): the accuracy measures, the loss functions a
landscape draws, the dashboard's wording of core's CLI errors, and the pages' notes when panels or runs differ.
Merged into `core.report.i18n`'s tables."""

EN: dict[str, str] = {
    # accuracy measures (core.report.naming.accuracy_name)
    "acc.linear_probe": "linear-probe accuracy (whole validation split)",
    "acc.linear_probe_sup": "classifier accuracy (whole validation split)",
    "acc.ridge_training": "ridge-probe accuracy during training",
    "acc.clean_on_n": "probe accuracy without noise ({n} images)",
    "acc.clean_on_n_sup": "classifier accuracy without noise ({n} images)",
    "acc.models_help": "A linear probe trained on the frozen encoder, scored on the whole validation split (Sup-ViT: "
    "its classifier). The training curves' ridge probe is a different, quicker estimate.",
    # loss functions of a panel (core.report.naming.function_family)
    "fn.mse": "masked-patch MSE",
    "fn.mse_consistency": "masked-patch MSE + consistency",
    "fn.ce": "cross-entropy",
    "fn.probe": "linear-probe cross-entropy",
    "fn.other": "another loss",
    # RC-MAE's terms on the Landscapes page
    "field.rcmae_terms": "RC-MAE's loss",
    "terms.mae": "MAE term only",
    "terms.full": "MAE + consistency (full RC-MAE objective)",
    "help.rcmae_terms": "For RC-MAE models with the own or MAE loss. 'MAE term only' is the same function as MAE's "
    "loss, so the two can be compared directly; the full objective adds γ·consistency to the frozen teacher, whose "
    "curvature (about 2γJᵀJ) makes it sharper by construction.",
    "land.mixed": "These panels are different functions ({items}). Their loss levels are not on one scale, so compare "
    "shapes: the view is relative to each model's centre.",
    "land.mixed_absolute": "Absolute values of different functions share one colour scale here: a lower colour does "
    "not mean a flatter model.",
    "land.diff_functions": "No difference across different functions: {a} is {fa}, {b} is {fb}. Pick two panels on "
    "one function (e.g. RC-MAE with 'MAE term only' beside MAE), or compare shapes side by side.",
    # the dashboard's wording of core's CLI errors (core.report.naming.gui_error)
    "gui.use_loss_or_probe": "choose the loss '{loss}' or '{probe}'",
    "gui.use_probe": "choose the loss '{probe}' instead",
    "gui.train_probe": "(the first run trains one for each default model)",
    "gui.setting": "the '{name}' setting",
    # the flatness scatter
    "flat.scatter_small": "{n} model(s): too few for a correlation (at least {min} needed); the points are shown "
    "without one.",
    "flat.scatter_mixed": "Mixed functions on the x axis: {items}. A curvature number has the scale of its loss, "
    "so these x values are not comparable across functions.",
    "flat.same_seeds": "Here: {n} seed(s) of the models chosen above, the Overview's numbers at the same settings "
    "(the same cached landscape for the basin width and the centre loss). The Overview pairs every seed it has "
    "cached, so its counts can be larger.",
    # runs
    "runs.differs": "differs in",
    # generalization numbers table
    "gen.kind.mae": "MAE-FT",
    "gen.kind.rcmae": "RC-MAE-FT",
    "gen.kind.scratch": "scratch",
}

JA: dict[str, str] = {
    "acc.linear_probe": "線形プローブ精度(検証データ全体)",
    "acc.linear_probe_sup": "分類器の精度(検証データ全体)",
    "acc.ridge_training": "学習中のリッジプローブ精度",
    "acc.clean_on_n": "ノイズなしのプローブ精度({n}枚)",
    "acc.clean_on_n_sup": "ノイズなしの分類器の精度({n}枚)",
    "acc.models_help": "凍結したエンコーダに学習した線形プローブを検証データ全体で評価した精度です(教師ありViTは"
    "分類器)。学習曲線のリッジプローブは別の簡易な推定です。",
    "fn.mse": "マスクパッチ二乗誤差",
    "fn.mse_consistency": "マスクパッチ二乗誤差 + 一貫性",
    "fn.ce": "交差エントロピー",
    "fn.probe": "線形プローブの交差エントロピー",
    "fn.other": "別の損失",
    "field.rcmae_terms": "RC-MAEの損失",
    "terms.mae": "MAE項のみ",
    "terms.full": "MAE + 一貫性(RC-MAEの学習目的関数全体)",
    "help.rcmae_terms": "自身の損失またはMAE損失を使うRC-MAEモデルに適用します。「MAE項のみ」はMAEの損失と"
    "同じ関数なので直接比較できます。目的関数全体は凍結した教師への一貫性項(γ倍)を加え、その曲率(約2γJᵀJ)により構造上鋭くなります。",
    "land.mixed": "これらのパネルは異なる関数です({items})。損失の水準は同じ尺度ではないため、形を比べてください。"
    "表示は各モデルの中心からの相対値です。",
    "land.mixed_absolute": "異なる関数の絶対値が一つの色尺度を共有しています。色が低くても平坦なモデルとは限りません。",
    "land.diff_functions": "異なる関数どうしの差分は表示しません: {a}は{fa}、{b}は{fb}です。同じ関数の2つのパネル"
    "(例: 「MAE項のみ」のRC-MAEとMAE)を選ぶか、並べて形を比べてください。",
    "gui.use_loss_or_probe": "損失「{loss}」または「{probe}」を選んでください",
    "gui.use_probe": "代わりに損失「{probe}」を選んでください",
    "gui.train_probe": "(初回の準備で既定モデルごとに学習します)",
    "gui.setting": "設定「{name}」",
    "flat.scatter_small": "{n}モデル: 相関を出すには少なすぎます({min}以上必要)。相関なしで点のみ表示します。",
    "flat.scatter_mixed": "x軸に異なる関数が混在しています: {items}。曲率の値は損失の尺度を持つため、関数をまたいで"
    "比較できません。",
    "flat.same_seeds": "ここでは上で選んだモデルの{n}シード分で、概要ページと同じ設定の数値です(盆地の幅と中心の損失は"
    "同じキャッシュ済みの損失地形から)。概要ページはキャッシュ済みの全シードを対にするため、数が多いことがあります。",
    "runs.differs": "違い",
    "gen.kind.mae": "MAE-FT",
    "gen.kind.rcmae": "RC-MAE-FT",
    "gen.kind.scratch": "スクラッチ",
}
