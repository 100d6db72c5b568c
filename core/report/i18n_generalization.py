"""The Generalization page's text (English and Japanese) and its figure phrases, merged into `core.report.i18n`'s
tables.

Kept apart from core/report/i18n.py (already past the project's ~800-line mark); `core.report.i18n` adds these
entries to `EN`, `JA` and its Japanese figure phrases when it is imported, so pages use them through `tr()` / `t()`
as any other key.
Plain dicts only: this module imports nothing of the project.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "nav.generalization": "Generalization",
    "stage.generalization": "Fine-tune on a few labels, and the same ViT from scratch",
    # job labels and progress
    "label.generalization": "Label-efficiency study ({n} runs, {seeds} seed(s))",
    "label.gen_lookup": "Reading cached flatness numbers",
    "label.gen_surfaces": "Fine-tuned vs from-scratch landscapes",
    "job.gen_pretrain": "pre-training {model} seed {seed}: epoch {epoch}/{epochs}",
    "job.gen_finetune": "fine-tuning {model}, {n} labels/class, seed {seed}: epoch {epoch}/{epochs}",
    "job.gen_flatness": "flatness of {model}, {n} labels/class, seed {seed} ({split}): {stage} ({done}/{total})",
    "job.gen_lookup": "reading cached flatness numbers ({done}/{total})",
    "arg.split.labeled": "labeled training subset",
    "arg.split.val": "validation",
    "arg.n.all": "all",
    # page
    "gen.title": "Generalization: what pre-training buys",
    "gen.intro": "End-to-end fine-tuning of the self-supervised encoders (MAE-FT, RC-MAE-FT: its EMA teacher) against "
    "the same ViT trained from scratch on exactly the same labeled images, with the same number of steps and the "
    "same recipe. Accuracy against the number of labels, the generalization gap, their landscapes side by side, and "
    "whether the better-generalizing model is the flatter one.",
    "gen.setting": "Setting: pre-training used every training image without labels; fine-tuning and training from "
    "scratch used only the labeled subset (semi-supervised). Subsets are class-balanced, seeded and nested across "
    "budgets, the same for every model kind.",
    "gen.form": "The study",
    "gen.budgets": "Labels per class",
    "gen.seeds": "Seeds",
    "gen.seeds_help": "Seed k: the MAE / RC-MAE pre-trained with seed k, the labeled subset, the head's "
    "initialization and the batch order. Seeds other than 0 pre-train their own MAE and RC-MAE first.",
    "gen.flatness": "Also measure flatness (Hessian, sharpness; slower)",
    "gen.flatness_help": "Top Hessian eigenvalue, trace and average sharpness of every run's supervised loss, over its "
    "labeled training subset and over validation: the points of the flatness-vs-gap scatter.",
    "gen.go": "Run the study",
    "gen.need_budget": "Pick at least one budget.",
    "gen.progress": "{n} of {total} runs cached for this choice.",
    "gen.none_yet": "Nothing of this study is cached yet. Press the button to compute it in the background: {total} "
    "fine-tuning runs (about {seconds} s each on two CPU cores).",
    "gen.budget_all": "all",
    "gen.regime": "Regime: {data} ({n_train} training / {n_val} validation images, {classes} classes), preset "
    "{preset}; every model {steps} optimizer steps ({epochs} epochs of {per}), batch {batch}; pre-training {pre} "
    "epochs; seeds {seeds}.",
    "gen.eff_header": "Label efficiency",
    "gen.eff_title": "Validation accuracy vs labels per class",
    "gen.gap_header": "Generalization gap per budget",
    "gen.gap_metric": "Gap of",
    "gen.gap_acc": "accuracy (train - validation)",
    "gen.gap_loss": "loss (train - validation)",
    "gen.verdicts": "Verdict: pre-trained vs scratch, paired by seed",
    "gen.verdicts_help": "The rule of docs/FINDINGS.md: validation accuracy of each pre-trained kind minus scratch's, "
    "paired by seed, with its 95% interval; supported when the interval excludes 0, no meaningful difference when "
    "the 90% interval lies within ±3 points, otherwise undetermined (with about how many seeds would decide it); Holm "
    "over the two kinds. The last row, the mean over budgets, decides the premise; the budgets alone are shown.",
    "gen.mean_budgets": "mean over the budgets (decides)",
    "gen.col_budget": "labels per class",
    "gen.col_verdict": "verdict (pre-trained > scratch)",
    "gen.col_mae": "MAE-FT vs scratch",
    "gen.col_rcmae": "RC-MAE-FT vs scratch",
    "gen.col_seeds": "seeds",
    "gen.v_reproduced": "pre-training generalizes better",
    "gen.v_contradicted": "scratch generalizes better",
    "gen.v_no_difference": "no difference larger than 3 points",
    "gen.v_undetermined": "undetermined",
    "gen.r_supports": "higher",
    "gen.r_contradicts": "lower",
    "gen.r_no_difference": "no meaningful difference",
    "gen.r_undetermined": "undetermined",
    "gen.table": "Mean ± std over seeds",
    "gen.land_header": "Fine-tuned vs from scratch: landscapes on the same directions",
    "gen.land_help": "The supervised cross-entropy of MAE-FT, RC-MAE-FT and scratch at one budget and seed, on the "
    "same direction seed, grid and images (one architecture: the same raw directions, filter-normalized per model).",
    "gen.land_budget": "Budget",
    "gen.land_seed": "Seed",
    "gen.land_split": "Loss over",
    "gen.land_go": "Compute the landscapes",
    "gen.land_need": "Run the study first: no budget has its fine-tuned and from-scratch models cached yet.",
    "gen.scatter_header": "Flatness vs generalization gap, every cached run",
    "gen.scatter_help": "One point per fine-tuned or from-scratch model at one budget and seed. Spearman rho with a "
    "permutation p-value. Points cluster by budget (small budgets fit their few images perfectly), so a correlation "
    "can reflect the budget rather than flatness.",
    "gen.scatter_x": "Flatness number",
    "gen.scatter_y": "Gap",
    "gen.scatter_split": "Flatness over",
    "gen.no_flat": "No flatness numbers of these runs are cached yet: tick 'Also measure flatness' and run the study.",
    "gen.looking_up": "Reading the cached flatness numbers of {n} run(s)...",
    "gen.flat_caption": "Flatness of each run's cross-entropy (no label smoothing): at most {samples} images, "
    "{iters} Lanczos steps, {probes} Hutchinson probes, seed {seed}, the same for every model.",
    "gen.num_lambda_max": "top Hessian eigenvalue",
    "gen.num_trace": "Hessian trace",
    "gen.num_sharpness": "average sharpness",
}

JA: dict[str, str] = {
    "nav.generalization": "汎化",
    "stage.generalization": "少数ラベルでファインチューニングし、同じViTをスクラッチからも学習",
    "label.generalization": "ラベル効率の調査({n}回、シード{seeds}個)",
    "label.gen_lookup": "キャッシュ済みの平坦さの数値を読み込み",
    "label.gen_surfaces": "ファインチューニング済みとスクラッチの損失地形",
    "job.gen_pretrain": "{model}の事前学習 シード{seed}: エポック {epoch}/{epochs}",
    "job.gen_finetune": "{model}のファインチューニング、1クラス{n}枚、シード{seed}: エポック {epoch}/{epochs}",
    "job.gen_flatness": "{model}の平坦さ、1クラス{n}枚、シード{seed}({split}): {stage}({done}/{total})",
    "job.gen_lookup": "キャッシュ済みの平坦さの数値を読み込み中({done}/{total})",
    "arg.split.labeled": "ラベル付き学習サブセット",
    "arg.split.val": "検証データ",
    "arg.n.all": "全",
    "gen.title": "汎化: 事前学習で何が得られるか",
    "gen.intro": "自己教師ありエンコーダ(MAE-FT、RC-MAE-FT: EMA教師)をエンドツーエンドでファインチューニングし、"
    "まったく同じラベル付き画像・同じステップ数・同じレシピでスクラッチから学習した同じViTと比べます。"
    "ラベル数に対する精度、汎化ギャップ、損失地形の並列表示、そして汎化の良いモデルほど平坦かを示します。",
    "gen.setting": "設定: 事前学習はラベルなしで全学習画像を使い、ファインチューニングとスクラッチ学習は"
    "ラベル付きサブセットだけを使いました(半教師あり)。サブセットはクラス均衡・シード固定で、予算間で入れ子になり、"
    "どのモデルでも同じです。",
    "gen.form": "調査の設定",
    "gen.budgets": "1クラスあたりのラベル数",
    "gen.seeds": "シード数",
    "gen.seeds_help": "シードk: シードkで事前学習したMAE / RC-MAE、ラベル付きサブセット、ヘッドの初期化、"
    "バッチ順。0以外のシードでは、まずそのシードのMAEとRC-MAEを事前学習します。",
    "gen.flatness": "平坦さも測定する(ヘッセ行列・シャープネス、時間がかかります)",
    "gen.flatness_help": "各モデルの教師あり損失について、ラベル付き学習サブセットと検証データ上の"
    "ヘッセ行列の最大固有値・トレース・平均シャープネス。平坦さとギャップの散布図の点になります。",
    "gen.go": "調査を実行",
    "gen.need_budget": "予算を1つ以上選んでください。",
    "gen.progress": "この選択の{total}回のうち{n}回がキャッシュ済みです。",
    "gen.none_yet": "この調査はまだキャッシュにありません。ボタンを押すとバックグラウンドで計算します: "
    "ファインチューニング{total}回(2 CPUコアで1回あたり約{seconds}秒)。",
    "gen.budget_all": "全",
    "gen.regime": "条件: {data}(学習画像{n_train}枚/検証画像{n_val}枚、{classes}クラス)、プリセット{preset}。"
    "どのモデルも最適化{steps}ステップ({per}ステップ×{epochs}エポック)、バッチ{batch}。事前学習{pre}エポック。"
    "シード{seeds}。",
    "gen.eff_header": "ラベル効率",
    "gen.eff_title": "1クラスあたりのラベル数に対する検証精度",
    "gen.gap_header": "予算ごとの汎化ギャップ",
    "gen.gap_metric": "ギャップの対象",
    "gen.gap_acc": "精度(学習 - 検証)",
    "gen.gap_loss": "損失(学習 - 検証)",
    "gen.verdicts": "判定: 事前学習とスクラッチ(シードごとの対応比較)",
    "gen.verdicts_help": "docs/FINDINGS.mdの規則: 事前学習した各モデルの検証精度からスクラッチの精度を引いた差を"
    "シードごとに対応させ、95%区間を示します。区間が0を含まなければ支持、90%区間が±3ポイント以内なら意味のある差なし、"
    "それ以外は未決定(決着に必要なシード数の目安つき)。2種類のモデルにHolm補正。最後の行(予算の平均)が前提を判定し、"
    "予算ごとの行は参考です。",
    "gen.mean_budgets": "予算の平均(判定に使用)",
    "gen.col_budget": "1クラスあたりのラベル数",
    "gen.col_verdict": "判定(事前学習 > スクラッチ)",
    "gen.col_mae": "MAE-FT 対 スクラッチ",
    "gen.col_rcmae": "RC-MAE-FT 対 スクラッチ",
    "gen.col_seeds": "シード",
    "gen.v_reproduced": "事前学習の方が汎化が良い",
    "gen.v_contradicted": "スクラッチの方が汎化が良い",
    "gen.v_no_difference": "3ポイントを超える差はない",
    "gen.v_undetermined": "未決定",
    "gen.r_supports": "高い",
    "gen.r_contradicts": "低い",
    "gen.r_no_difference": "意味のある差なし",
    "gen.r_undetermined": "未決定",
    "gen.table": "シード間の平均 ± 標準偏差",
    "gen.land_header": "ファインチューニング済みとスクラッチ: 同じ方向での損失地形",
    "gen.land_help": "ある予算・シードでのMAE-FT、RC-MAE-FT、スクラッチの教師あり交差エントロピーを、"
    "同じ方向シード・グリッド・画像で描きます(同じアーキテクチャなので生の方向は同じで、モデルごとにフィルタ正規化)。",
    "gen.land_budget": "予算",
    "gen.land_seed": "シード",
    "gen.land_split": "損失の対象",
    "gen.land_go": "損失地形を計算",
    "gen.land_need": "先に調査を実行してください。ファインチューニング済みとスクラッチのモデルがそろった予算が"
    "まだありません。",
    "gen.scatter_header": "平坦さと汎化ギャップ(キャッシュ済みの全実行)",
    "gen.scatter_help": "点は1つの予算・シードでのファインチューニング済みまたはスクラッチのモデルです。"
    "スピアマンのrhoと並べ替え検定のp値。点は予算ごとに固まる(少ない予算では少数の画像に完全に適合する)ため、"
    "相関は平坦さではなく予算を反映していることがあります。",
    "gen.scatter_x": "平坦さの指標",
    "gen.scatter_y": "ギャップ",
    "gen.scatter_split": "平坦さの対象",
    "gen.no_flat": "これらの実行の平坦さはまだキャッシュにありません。「平坦さも測定する」を選んで"
    "調査を実行してください。",
    "gen.looking_up": "{n}回分のキャッシュ済みの平坦さを読み込み中...",
    "gen.flat_caption": "各実行の交差エントロピー(ラベル平滑化なし)の平坦さ: 画像は最大{samples}枚、"
    "ランチョス{iters}ステップ、ハッチンソン{probes}プローブ、シード{seed}、全モデル共通。",
    "gen.num_lambda_max": "ヘッセ行列の最大固有値",
    "gen.num_trace": "ヘッセ行列のトレース",
    "gen.num_sharpness": "平均シャープネス",
}

# core/report/plots_generalization.py's English figure text -> Japanese (whole strings and phrases, as the tables of
# core.report.i18n).
FIGURE_PHRASES_JA: dict[str, str] = {
    "Validation accuracy vs labels per class": "1クラスあたりのラベル数に対する検証精度",
    "labels per class (log scale)": "1クラスあたりのラベル数 (対数目盛)",
    "validation accuracy (mean, band: +-1 std over seeds)": "検証精度 (平均、帯: シード間の ±1 標準偏差)",
    "Generalization gap per budget": "予算ごとの汎化ギャップ",
    "accuracy gap, train - validation (mean, bar: +-1 std over seeds)": "精度のギャップ、学習 - 検証 "
    "(平均、棒: シード間の ±1 標準偏差)",
    "loss gap, train - validation (mean, bar: +-1 std over seeds)": "損失のギャップ、学習 - 検証 "
    "(平均、棒: シード間の ±1 標準偏差)",
    "labels per class": "1クラスあたりのラベル数",
    # the halves of the two-line y-axis titles
    "(mean, band: +-1 std over seeds)": "(平均、帯: シード間の ±1 標準偏差)",
    "(mean, bar: +-1 std over seeds)": "(平均、棒: シード間の ±1 標準偏差)",
    "accuracy gap, train - validation": "精度のギャップ、学習 - 検証",
    "loss gap, train - validation": "損失のギャップ、学習 - 検証",
    "accuracy gap (train - val)": "精度のギャップ (学習 - 検証)",
    "loss gap (train - val)": "損失のギャップ (学習 - 検証)",
    "Hessian top eigenvalue": "ヘッセ行列の最大固有値",
    "average sharpness": "平均シャープネス",
    "labeled training subset": "ラベル付き学習サブセット",
    "over the validation images": "検証画像上",
    "over the labeled training subset": "ラベル付き学習サブセット上",
    "from scratch": "スクラッチ",
    # the legend name of core.studies.generalization's LABEL (after "from scratch": longest first)
    "scratch": "スクラッチ",
    "all labels": "全ラベル",
    "seed(s)": "シード",
    "Spearman rho": "スピアマン rho",
    "permutation p": "並べ替え検定 p",
    "n too small for a correlation (need at least 3 runs)": "相関を出すには実行が少なすぎます (3 つ以上必要)",
    "run(s) left out": "実行を除外",
    "not measured": "未測定",
    "one seed: no spread": "シード 1 つ: ばらつきなし",
    "steps per run": "ステップ/実行",
    "every model": "全モデル",
}
