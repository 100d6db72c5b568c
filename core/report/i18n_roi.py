"""The pre-training ladder's text (English and Japanese) on the Generalization page, its job messages and its figure
phrases, merged into `core.report.i18n`'s tables as `core.report.i18n_generalization` is.
Plain dicts only: this module imports nothing of the project.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "label.roi": "Pre-training ladder ({n} rung x seed jobs, {seeds} seed(s))",
    "job.roi": "pre-training ladder: {done}/{total} rung x seed jobs",
    "job.roi_step": "pre-training ladder: {step}",
    "roi.header": "How much pre-training pays",
    "roi.intro": "The same comparison along pre-training length: MAE and RC-MAE pre-trained for each rung's epochs "
    "(a complete run of that length, cached), fine-tuned on few labels, against the same ViT from scratch and "
    "against scratch given as many steps as pre-training plus fine-tuning took. Claim 1's basin width on the right. "
    "Every number is measured here and paired by seed; the top axis gives the measured seconds and estimated FLOPs "
    "of one MAE run.",
    "roi.rungs": "Pre-training epochs (rungs)",
    "roi.seeds": "Seeds",
    "roi.go": "Run the ladder in the background",
    "roi.cached": "Cached: {done} of {total} rung x seed jobs. Running the rest takes minutes per job (a 300-epoch "
    "rung: about 3 min per seed on 2 cores); `python -m core roi` shares every run.",
    "roi.none": "Nothing of this ladder is cached yet: press the button, or run `python -m core roi`.",
    "roi.plateau": "Plateau rule (chosen before any fine-tuning result): {rule}. Plateau rung: {rung}.",
    "roi.plateau_none": "none of the rungs",
    "roi.title": "Gain over scratch and flatness against pre-training length",
    "roi.caption": "{seeds} seed(s); gain: fine-tuned minus scratch validation accuracy, paired by seed, bar: 95% "
    "interval; pre-training used every training image without labels, fine-tuning only the labeled subset.",
    "roi.table": "Per rung and budget: the paired gain over scratch, over scratch with equal steps, and RC-MAE-FT "
    "minus MAE-FT (points, 95% interval, p, seeds), and the measured cost.",
    "roi.col_epochs": "epochs",
    "roi.col_budget": "labels / class",
    "roi.col_mae": "MAE-FT − scratch",
    "roi.col_rcmae": "RC-MAE-FT − scratch",
    "roi.col_verdict": "verdict",
    "roi.col_rc": "RC-MAE-FT − MAE-FT",
    "roi.col_control": "MAE-FT − scratch, equal steps",
    "roi.col_wall": "MAE pre-training (s)",
    "roi.col_teacher": "RC-MAE / MAE time per epoch",
    "roi.flattens": "Where the curve flattens",
    "job.whatif_ft": "fine-tuning {model} at {n} labels per class",
    "label.whatif_ft": "Fine-tuned accuracy at {n} labels per class",
    "whatif.ft_header": "Would longer pre-training help? Fine-tuned accuracy at {n} labels per class",
    "whatif.ft_help": "Each pre-trained model fine-tuned end to end on {n} labels per class ({steps} steps, the "
    "Generalization page's recipe, the model's own seed), and the same ViT from scratch with the same steps: one "
    "seed, no interval (the Generalization page's ladder pairs seeds).",
    "whatif.ft_acc": "validation accuracy after fine-tuning",
}

JA: dict[str, str] = {
    "label.roi": "事前学習の長さの段階 ({n} 段階×シードのジョブ、{seeds} シード)",
    "job.roi": "事前学習の段階: {done}/{total} 段階×シードのジョブ",
    "job.roi_step": "事前学習の段階: {step}",
    "roi.header": "事前学習はどれだけ見合うか",
    "roi.intro": "同じ比較を事前学習の長さに沿って行います。MAE と RC-MAE を各段階のエポック数だけ事前学習し"
    "（その長さの完全な学習、キャッシュ済み）、少数のラベルでファインチューニングして、同じ ViT のスクラッチ学習、"
    "および事前学習とファインチューニングの合計と同じステップ数を与えたスクラッチ学習と比べます。右は主張1の盆地の幅です。"
    "数値はすべてここで測定し、シードごとに対にしています。上の軸は MAE 1回の実測秒数と推定 FLOPs です。",
    "roi.rungs": "事前学習のエポック数（段階）",
    "roi.seeds": "シード数",
    "roi.go": "バックグラウンドで段階を実行",
    "roi.cached": "キャッシュ済み: {total} 件中 {done} 件の段階×シードのジョブ。残りは1件あたり数分かかります"
    "（300エポックの段階は2コアで1シードあたり約3分）。`python -m core roi` とすべての実行を共有します。",
    "roi.none": "この段階のキャッシュはまだありません。ボタンを押すか、`python -m core roi` を実行してください。",
    "roi.plateau": "プラトーの規則（ファインチューニングの結果を見る前に決定）: {rule}。プラトーに達した段階: {rung}。",
    "roi.plateau_none": "どの段階も達していない",
    "roi.title": "事前学習の長さに対するスクラッチからの向上と平坦さ",
    "roi.caption": "{seeds} シード。向上: ファインチューニングとスクラッチの検証精度の差（シードごとの対）、"
    "棒: 95% 区間。事前学習はラベルなしで全学習画像を、ファインチューニングはラベル付きサブセットのみを使用。",
    "roi.table": "段階と予算ごと: スクラッチに対する向上、同じステップ数のスクラッチに対する向上、"
    "RC-MAE-FT と MAE-FT の差"
    "（ポイント、95% 区間、p、シード数）、および実測コスト。",
    "roi.col_epochs": "エポック",
    "roi.col_budget": "ラベル / クラス",
    "roi.col_mae": "MAE-FT − スクラッチ",
    "roi.col_rcmae": "RC-MAE-FT − スクラッチ",
    "roi.col_verdict": "判定",
    "roi.col_rc": "RC-MAE-FT − MAE-FT",
    "roi.col_control": "MAE-FT − 同ステップのスクラッチ",
    "roi.col_wall": "MAE 事前学習 (秒)",
    "roi.col_teacher": "RC-MAE / MAE のエポックあたり時間",
    "roi.flattens": "曲線が平らになる所",
    "job.whatif_ft": "{model} を1クラス{n}ラベルでファインチューニング中",
    "label.whatif_ft": "1クラス{n}ラベルでのファインチューニング精度",
    "whatif.ft_header": "事前学習を長くすると良くなるか: 1クラス{n}ラベルでのファインチューニング精度",
    "whatif.ft_help": "各事前学習モデルを1クラス{n}ラベルでエンドツーエンドにファインチューニングし（{steps}ステップ、"
    "汎化ページと同じレシピ、モデル自身のシード）、同じステップ数のスクラッチ学習と比べます。1シードのため区間は"
    "ありません（汎化ページの段階比較はシードを対にします）。",
    "whatif.ft_acc": "ファインチューニング後の検証精度",
}

# Phrases of core.report.plots_roi's figure (longest first is handled by core.report.i18n).
FIGURE_PHRASES_JA: dict[str, str] = {
    "How much pre-training pays": "事前学習はどれだけ見合うか",
    "Gain over scratch": "スクラッチからの向上",
    "Basin width (claim 1)": "盆地の幅 (主張1)",
    "pre-training epochs": "事前学習のエポック数",
    "validation accuracy gain over scratch (points; bar: 95% interval)": "スクラッチに対する検証精度の向上 "
    "(ポイント、棒: 95% 区間)",
    "basin width (mean, bar: +-1 std over seeds)": "盆地の幅 (平均、棒: シード間の ±1 標準偏差)",
    "pre-training cost per MAE run: seconds here, estimated FLOPs": "MAE 1回の事前学習コスト: ここでの秒数、推定 FLOPs",
    "labels/class": "ラベル/クラス",
    "basin width": "盆地の幅",
}
