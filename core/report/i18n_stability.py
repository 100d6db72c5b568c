"""The "Stability under corruptions" section's text (English and Japanese) and its figure phrases, merged into
`core.report.i18n`'s tables as `core.report.i18n_generalization` is.

Plain dicts only: this module imports nothing of the project.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "label.stab_lookup": "Reading cached stability numbers",
    "label.stab_run": "Stability under input corruptions ({n} runs)",
    "label.stab_models": "Input corruptions of the selected models",
    "job.stab_lookup": "reading cached stability numbers ({done}/{total})",
    "job.stab_run": "input corruptions of {model}, {n} labels/class, seed {seed} ({done}/{total})",
    "job.stab_model": "input corruptions of {model}",
    "stab.header": "Stability under corruptions",
    "stab.intro": "How much of its accuracy each model keeps when its inputs are degraded: sensor noise, blur, a "
    "shifted or rotated object, lower contrast or brightness, part of the object hidden, a coarser image. Every "
    "fine-tuned and scratch model of the study is evaluated on the same validation images, corrupted in pixel space "
    "before the model's normalization, at five severities each (seed k's images and draws for every model of seed "
    "k).",
    "stab.go": "Measure stability of the cached runs",
    "stab.none": "No run of this study has been measured under input corruptions yet ({n} cached runs): press the "
    "button (seconds per run on the tiny models).",
    "stab.no_runs": "The study has no cached run yet: run the study above first.",
    "stab.looking_up": "Reading the cached stability numbers of {n} run(s)...",
    "stab.progress": "{n} of {total} cached runs measured under input corruptions.",
    "stab.budget": "Labels per class",
    "stab.curves_title": "Accuracy under input corruptions, {n} labels per class",
    "stab.curves_caption": "Mean over seeds, band: ±1 std; {images} validation images per run; severity 0 is the "
    "clean image. Units per panel.",
    "stab.kept": "Share of the clean accuracy kept (1 - relative drop), mean ± std over seeds",
    "stab.col_budget": "labels / class",
    "stab.verdict": "Verdict at {n} labels per class (relative drop, pre-trained minus scratch, paired by seed, "
    "Holm over the two kinds): {verdict}",
    "stab.gallery": "What the severities look like",
    "stab.gallery_help": "One validation image at every severity of every corruption, with each level in its unit "
    "(sigma and shifts in pixels of the {size} px image, degrees, fractions of the image side or intensity range).",
    "stab.image": "Validation image",
    "stab.proxy_header": "Weight noise (proxy) vs input corruptions",
    "stab.proxy_help": "The accuracy under weight noise above stands in for stability; here it is beside the real "
    "thing, the accuracy kept when the inputs are corrupted (the same classifier: the probe of an MAE / RC-MAE, the "
    "ViT itself).",
    "stab.proxy_go": "Measure input corruptions of these models",
    "stab.proxy_none": "No input-corruption result is cached for these models yet.",
    "stab.proxy_caption": "Weight noise: mean accuracy over relative noise sizes > 0 divided by the clean accuracy on "
    "the flatness report's images; input corruptions: mean accuracy over every corruption and severity divided by the "
    "clean accuracy on up to 512 validation images.",
}

JA: dict[str, str] = {
    "label.stab_lookup": "キャッシュ済みの安定性の値を読み込み中",
    "label.stab_run": "入力の劣化に対する安定性（{n}実行）",
    "label.stab_models": "選択したモデルの入力劣化",
    "job.stab_lookup": "キャッシュ済みの安定性の値を読み込み中（{done}/{total}）",
    "job.stab_run": "{model}の入力劣化、1クラス{n}ラベル、シード{seed}（{done}/{total}）",
    "job.stab_model": "{model}の入力劣化",
    "stab.header": "入力の劣化に対する安定性",
    "stab.intro": "入力が劣化したとき各モデルが精度をどれだけ保つか：センサーのノイズ、ぼけ、物体のずれや回転、"
    "コントラストや明るさの変化、物体の一部の遮蔽、粗い画像。研究の全ての微調整モデルとスクラッチモデルを、"
    "モデルの正規化の前に画素空間で劣化させた同じ検証画像で、それぞれ5段階の強さで評価します"
    "（シードkの全モデルにシードkの画像と乱数）。",
    "stab.go": "キャッシュ済みの実行の安定性を測定",
    "stab.none": "この研究の実行はまだ入力の劣化で測定されていません（キャッシュ済み{n}実行）。"
    "ボタンを押してください（小さなモデルで1実行あたり数秒）。",
    "stab.no_runs": "この研究にはまだキャッシュ済みの実行がありません。先に上の研究を実行してください。",
    "stab.looking_up": "{n}実行のキャッシュ済みの安定性の値を読み込み中...",
    "stab.progress": "キャッシュ済み{total}実行のうち{n}実行を入力の劣化で測定済み。",
    "stab.budget": "1クラスあたりのラベル数",
    "stab.curves_title": "入力の劣化の下での精度、1クラス{n}ラベル",
    "stab.curves_caption": "シード間の平均、帯: ±1 標準偏差。1実行あたり検証画像{images}枚。強さ0は劣化なしの画像。"
    "単位は各パネルに記載。",
    "stab.kept": "劣化なしの精度のうち保たれた割合（1 - 相対低下）、シード間の平均 ± 標準偏差",
    "stab.col_budget": "ラベル / クラス",
    "stab.verdict": "1クラス{n}ラベルでの判定（相対低下、事前学習 - スクラッチ、シードごとの対応比較、"
    "2種類でHolm補正）: {verdict}",
    "stab.gallery": "各段階の劣化の見え方",
    "stab.gallery_help": "1枚の検証画像を全ての劣化の全ての強さで表示し、各段階の値をその単位で示します"
    "（{size}ピクセル画像での標準偏差とずれのピクセル数、角度、画像の辺や輝度範囲に対する割合）。",
    "stab.image": "検証画像",
    "stab.proxy_header": "重みのノイズ（代理指標）と入力の劣化",
    "stab.proxy_help": "上の重みのノイズ下の精度は安定性の代理指標です。ここでは本来の量、入力が劣化したときに"
    "保たれる精度と並べます（同じ分類器：MAE / RC-MAEはそのプローブ、ViTはそれ自身）。",
    "stab.proxy_go": "これらのモデルの入力劣化を測定",
    "stab.proxy_none": "これらのモデルの入力劣化の結果はまだキャッシュにありません。",
    "stab.proxy_caption": "重みのノイズ：ノイズの大きさ > 0 での平均精度を劣化なしの精度で割った値（平坦さの"
    "レポートの画像上）。入力の劣化：全ての劣化と強さでの平均精度を劣化なしの精度で割った値（最大512枚の検証画像）。",
}

FIGURE_PHRASES_JA: dict[str, str] = {
    "Accuracy under input corruptions, by severity": "入力の劣化の下での精度（強さ別）",
    "severity (0: clean)": "強さ (0: 劣化なし)",
    "What each severity looks like": "各段階の劣化の見え方",
    "Weight noise (proxy) vs input corruptions": "重みのノイズ（代理指標）と入力の劣化",
    "under weight noise (proxy)": "重みのノイズ下（代理指標）",
    "under input corruptions": "入力の劣化下",
    "share of the clean accuracy kept": "劣化なしの精度のうち保たれた割合",
    "severity 0: clean": "強さ0: 劣化なし",
    **{f"severity {k}": f"強さ{k}" for k in range(1, 6)},
    "gaussian noise": "ガウスノイズ",
    "shot noise": "ショットノイズ",
    "gaussian blur": "ガウスぼかし",
    "translate": "平行移動",
    "rotate": "回転",
    "accuracy (mean over seeds)": "精度 (シード間の平均)",
    "contrast": "コントラスト",
    "brightness": "明るさ",
    "occlusion": "遮蔽",
    "sigma, fraction of the intensity range": "標準偏差、輝度範囲に対する割合",
    "photons per unit intensity (fewer is noisier)": "単位輝度あたりの光子数（少ないほどノイズ大）",
    "blur sigma in pixels": "ぼかしの標準偏差（ピクセル）",
    "shift in pixels": "ずれ（ピクセル）",
    "rotation in degrees": "回転角（度）",
    "share of the contrast kept": "保たれたコントラストの割合",
    "intensity added": "加えた輝度",
    "grey square, side as a fraction of the image": "灰色の正方形、辺の長さ（画像に対する割合）",
}
