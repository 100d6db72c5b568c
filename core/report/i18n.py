"""The dashboard's text in English and Japanese.

Every visible string of the dashboard is `t(key, lang)`; a missing Japanese entry falls back to English and a
missing key shows the key itself (so a gap is visible, never an exception). Background jobs report progress as
`msg(key, **args)` strings, which the dashboard turns into text with `render_message(message, lang)` in the
reader's language: the same job can be watched from an English and a Japanese session.

This module holds the shared tables (navigation, fields, options, captions, job messages) and merges the per-page
ones: `core.report.i18n_overview`, `i18n_landscapes`, `i18n_generalization`, `i18n_runs`, `i18n_stability`,
`i18n_roi`, and `i18n_naming` (what each measure is called).
"""

from __future__ import annotations

import json
import string
from typing import Any

LANGS = ("en", "ja")
LANG_NAMES = {"en": "English", "ja": "日本語"}

EN: dict[str, str] = {
    # app
    "app.language": "Language",
    "app.no_jobs": "No background jobs running.",
    "app.jobs": "Background jobs: {n}",
    "app.queued": "Queued",
    "nav.overview": "Overview",
    "nav.models": "Models",
    "nav.landscapes": "Landscapes",
    "nav.flatness": "Flatness",
    "nav.whatif": "What-if",
    "nav.runs": "Runs",
    "common.no_models": "No trained models yet. Open the Overview page: it prepares the default models.",
    # jobs
    "job.cancel": "Cancel",
    "job.cancelled": "{label}: cancelled.",
    "job.queued_msg": "waiting to start",
    "job.waiting": "waiting for {n} job(s) ahead",
    "job.train_start": "training {model}: starting",
    "job.train": "training {model}: epoch {epoch}/{epochs}, loss {loss}",
    "job.probe": "linear probe on {model}",
    "job.trained": "{model} is trained",
    "job.seed_done": "seed {seed} measured: the briefing now stands on {n} of {target} seeds",
    "label.seeds": "Add seeds to the briefing (to {n})",
    "job.surface": "landscape of {model}: {grid}x{grid} grid, point {done}/{total}",
    "job.flatness": "flatness of {model}: {stage} ({done}/{total})",
    "job.surfaces_done": "landscapes done",
    "job.estimate": "landscape of {model}: {grid}x{grid} grid, {points} new points, about {seconds} s",
    "job.convexity": "convexity map of {model}: {grid}x{grid} grid, point {done}/{total}",
    "job.cvx_estimate": "convexity map of {model}: {grid}x{grid} grid, {points} new points, about {seconds} s",
    "job.convexity_done": "convexity maps done",
    "job.summary": "writing the summary",
    "job.ready": "ready",
    "job.loading": "loading {name}",
    "arg.stage.eigenvalues": "top Hessian eigenvalues",
    "arg.stage.trace": "Hessian trace",
    "arg.stage.density": "spectral density",
    "arg.stage.per_block": "per-block curvature",
    "arg.stage.sharpness": "sharpness",
    "arg.stage.robustness": "robustness to weight noise",
    "label.prepare": "Preparing the default models",
    "label.train": "Training {model}",
    "label.inspect": "Loading {name}",
    "label.surfaces": "Landscapes of {n} model(s)",
    "label.flatness": "Flatness of {n} model(s)",
    "label.convexity": "Convexity maps of {n} model(s)",
    "label.whatif": "What-if: {model}",
    # overview
    # a short first line and a smaller second one: the figure sits in a half-width column at 1280x800
    "stage.train": "Train MAE, RC-MAE and the supervised ViT (plus linear probes)",
    "stage.landscapes": "Compute their loss landscapes (coarse grid first)",
    "stage.flatness": "Measure flatness (Hessian, sharpness, robustness)",
    "stage.summary": "Write the summary",
    "verdict.supports": "Supports the claim",
    "verdict.contradicts": "Contradicts the claim",
    "verdict.no meaningful difference": "No meaningful difference",
    "verdict.undetermined": "Undetermined",
    # captions
    "cap.surface": "{grid} grid over [-{span}, {span}], loss: {loss}, on {samples} held-out images, direction seed "
    "{seed}, mask seed {mask_seed}, normalization: {norm}, biases and norm weights: {ignore}, moving: {scope}",
    "cap.partial": "(still computing)",
    "cap.coarse": "Showing the finished {n} sub-grid so far.",
    "cap.curves": "Per-epoch values recorded during training (probe accuracy: ridge probe on frozen features).",
    "cap.robustness": "Mean over {draws} random filter-normalized noise draws per size, {samples} held-out images, "
    "seed {seed}; band: +-1 std.",
    "cap.eig": "Lanczos ({iters} iterations) on {samples} images, seed {seed}.",
    "cap.density": "Stochastic Lanczos quadrature: {vectors} probe vectors x {steps} steps, {samples} images.",
    "cap.blocks": "Per parameter group: Lanczos and Hutchinson on {samples} images, seed {seed}.",
    "cap.scatter": "Every cached flatness result ({n} model(s)); accuracy: linear probe (MAE, RC-MAE) or classifier.",
    # models
    "models.title": "Models",
    "models.intro": "Trained checkpoints in the cache, their training curves, training a new one, and loading a "
    "checkpoint file from the server.",
    "models.cached": "Cached models",
    "models.none": "No checkpoints in the cache yet.",
    "models.curves_for": "Training curves of",
    "models.metric": "Quantity",
    "models.curves_title": "Training curves: {metric}",
    "models.describe": "Describe",
    "models.details": "Details of {name}",
    "models.train": "Train a new model",
    "models.train_go": "Train",
    "models.trained": "Saved: {path}",
    "models.load": "Load a checkpoint by path",
    "models.load_help": "A file on the server, inside the cache or project folder or a folder listed in "
    "LANDSCAPE_ALLOWED_ROOTS. Official MAE / RC-MAE files and timm ViTs load too, as do transformers / timm model "
    "folders (save_pretrained) and hub ids from the local Hugging Face cache: hf:facebook/vit-mae-base, "
    "timm:vit_base_patch16_224.mae.",
    "models.inspect": "Load and describe",
    "models.added": "Added to the model lists of this session as “{label}”.",
    "col.model": "Model",
    "col.kind": "Kind",
    "col.data": "Data",
    "col.epochs": "Epochs",
    "col.probe_acc": "Linear-probe accuracy (whole val. split; Sup-ViT: classifier)",
    "col.params": "Parameters",
    "col.epoch_time": "s / epoch",
    "col.file": "File",
    "col.ema": "EMA momentum (RC-MAE)",
    "col.size": "Size",
    "col.what": "What",
    "col.finished": "Finished",
    "col.created": "Created",
    "field.kind": "Model kind",
    "field.data": "Data",
    "field.preset": "Size",
    "field.epochs": "Epochs",
    "field.seed": "Seed",
    "field.max_train": "Training images (0 = all)",
    "field.mask_ratio": "Mask ratio",
    "field.ema": "EMA momentum (RC-MAE)",
    "field.ema_schedule": "EMA schedule (RC-MAE)",
    "ema.auto": "auto (the paper's horizon in epochs)",
    "ema.constant": "constant",
    "ema.cosine": "cosine to 1 over the run",
    "field.path": "Checkpoint path",
    "field.models": "Models",
    "field.loss": "Loss",
    "field.dim": "Slice",
    "field.grid": "Grid points per axis",
    "field.span": "Span",
    "field.norm": "Direction normalization",
    "field.ignore": "Biases and norms",
    "field.scope": "Parameters moved",
    "field.dir_seed": "Direction seed",
    "field.samples": "Images",
    "field.view": "View",
    "field.relative": "Relative",
    "field.log": "Log scale",
    "field.log_x": "Log x axis",
    "field.top_k": "Top eigenvalues",
    "field.rho": "Sharpness radius",
    "field.trace": "Hessian trace",
    "field.density": "Spectral density",
    "field.per_block": "Per block",
    "field.robustness": "Robustness curve",
    "help.mask_ratio": "Share of image patches hidden from the encoder (MAE's default 0.75).",
    "help.ema": "How slowly RC-MAE's teacher follows the student. auto: m = 0.996^(312/S), S = optimizer steps per "
    "epoch (312 is ImageNet-1k at batch 4096): the paper's teacher horizon in epochs, by the EMA scaling rule of "
    "Busbridge et al. 2023. 0.996 is the paper's value as it is: on a short run it makes the teacher lag most of "
    "the run.",
    "help.ema_schedule": "constant, or cosine from the momentum to 1 over the whole run as the RC-MAE paper "
    "describes (its official code indexes the schedule by the step within the epoch, so it stays at ~m).",
    "whatif.ema_base": "Base model's EMA momentum: {text}.",
    "help.max_train": "Train on fewer images to see how the landscape changes with data size.",
    "help.grid": "Odd sizes; 5, 9, 17, 33 refine each other without recomputation.",
    "help.span": "Coordinates run over [-span, span] in units of the filter-normalized directions.",
    "help.relative": "Relative to the centre: plot L - L(centre), so models with different loss scales share one "
    "colour scale.",
    "help.log": "log10 of the (clipped) loss increase: shows both the flat centre and the steep walls.",
    "help.rho": "Relative size of the weight perturbation (0 skips sharpness).",
    "help.density": "Slower: stochastic Lanczos quadrature.",
    "data.digits": "Digits (8x8 handwritten, 1,797 images)",
    "data.synthetic": "Synthetic shapes",
    "preset.tiny": "tiny (about 1 minute per model)",
    "preset.micro": "micro (seconds)",
    # landscapes
    "field.allow_long": "Run even if estimated over 10 min",
    "help.allow_long": "Each model's cost is estimated before it starts (one timed evaluation times the points). "
    "Longer jobs are not started unless this is ticked; jobs that cannot fit in memory are always refused.",
    "loss.own": "own training loss",
    "loss.pretrain": "MAE reconstruction",
    "loss.supervised": "classification",
    "loss.probe": "linear probe",
    "dim.1": "1-D",
    "dim.2": "2-D",
    "norm.filter": "filter",
    "norm.layer": "layer",
    "norm.weight": "weight",
    "norm.none": "none",
    "ignore.biasbn": "keep fixed",
    "ignore.none": "move too",
    "scope.all": "all",
    "scope.encoder": "encoder",
    "scope.decoder": "decoder",
    "scope.head": "head",
    "view.contour": "Contour",
    "view.heatmap": "Heatmap",
    "view.surface": "3-D",
    "view.slices": "1-D slices",
    "view.difference": "Difference",
    "view.convexity": "Convexity",
    "cap.convexity": "{grid}x{grid} convexity grid, at most {iters} Lanczos steps per point, {unconverged} point(s) "
    "not converged (their |λmin| is a lower bound); contours: the loss on the same slice.",
    # flatness
    "flat.title": "Flatness",
    "flat.intro": "Curvature of each model's own training loss at its trained weights (smaller eigenvalues, trace "
    "and sharpness = flatter), and how much accuracy it loses when its weights are perturbed.",
    "flat.go": "Compute",
    "flat.numbers": "Flatness numbers",
    "flat.resumed": "Resumed an interrupted computation ({items} steps replayed from its journal); the numbers "
    "equal those of an uninterrupted run.",
    "flat.eig_title": "Top Hessian eigenvalues",
    "flat.rob_title": "Robustness to weight noise",
    "flat.rob_metric": "Robustness shown as",
    "flat.density_title": "Hessian eigenvalue density",
    "flat.block_title": "Curvature per block",
    "flat.block_metric": "Per-block number",
    "flat.same": "Same-function comparisons",
    "flat.same_help": "RC-MAE is compared with MAE on MAE's masked-patch MSE (its MAE term, computed here too); MAE "
    "with the supervised ViT on numbers divided by each model's loss at the centre (the sharpness stage's), as "
    "docs/FINDINGS.md does; RC-MAE's full objective is shown, not counted. Models of one kind are pooled.",
    "flat.scatter": "Flatness vs accuracy, every cached result",
    "flat.scatter_help": "Does a flatter model generalize better here? One point per model with cached flatness "
    "numbers.",
    "flat.scatter_title": "Linear-probe accuracy vs {x}",
    "flat.no_points": "No flatness results cached yet.",
    "flat.x": "Flatness number",
    "num.lambda_max": "λ max",
    "num.lambda_min": "λ min",
    "num.trace": "trace",
    "num.sharp_avg": "sharpness (average)",
    "num.sharp_adaptive": "sharpness (adaptive)",
    "num.sharp_worst": "sharpness (worst case)",
    "num.probe_acc": "probe accuracy without noise (evaluation images)",
    "num.acc_drop": "accuracy drop at largest noise",
    "num.n_params": "parameters",
    "num.loss": "loss",
    "metric.train_loss": "training loss",
    "metric.val_loss": "validation loss",
    "metric.probe_acc": "ridge-probe accuracy during training",
    "metric.val_acc": "validation accuracy",
    "metric.time_s": "seconds per epoch",
    "metric.lambda_max": "top eigenvalue",
    "metric.trace": "trace",
    "metric.top_eigenvalue": "top Hessian eigenvalue",
    "metric.sharpness": "sharpness",
    "metric.acc_drop": "accuracy drop under noise",
    "metric.basin_width": "basin width",
    "metric.r_acc": "accuracy",
    "metric.r_loss": "loss",
    # what-if
    "whatif.title": "What if we trained it differently?",
    "whatif.intro": "Retrain a variant of a model with another mask ratio, EMA momentum, number of epochs or "
    "training-set size, and compare it with the original on the same directions, images and masks.",
    "whatif.base": "Base model",
    "whatif.with_flatness": "Also measure flatness",
    "whatif.go": "Train the variant and compare",
    "whatif.same": "The variant is the same as the base model: change at least one setting.",
    "whatif.fig_title": "Base vs variant",
    "whatif.same_dirs": "Both panels use the same direction seed, grid, images and masks: they differ only by the "
    "weights.",
    # runs
    "whatif.start": "Pick a base model, change a setting and press the button: the variant is trained in the "
    "background and compared with its base here.",
}

JA: dict[str, str] = {
    "app.language": "言語",
    "app.no_jobs": "実行中のバックグラウンド処理はありません。",
    "app.jobs": "バックグラウンド処理: {n}件",
    "app.queued": "待機中",
    "nav.overview": "概要",
    "nav.models": "モデル",
    "nav.landscapes": "損失地形",
    "nav.flatness": "平坦さ",
    "nav.whatif": "もしも分析",
    "nav.runs": "実行履歴",
    "common.no_models": "学習済みモデルがまだありません。概要ページを開くと既定のモデルが準備されます。",
    "job.cancel": "中止",
    "job.cancelled": "{label}: 中止しました。",
    "job.queued_msg": "開始待ち",
    "job.waiting": "先行する{n}件の処理を待っています",
    "job.train_start": "{model}を学習中: 開始",
    "job.train": "{model}を学習中: エポック {epoch}/{epochs}、損失 {loss}",
    "job.probe": "{model}の線形プローブを学習中",
    "job.trained": "{model}の学習が完了しました",
    "job.seed_done": "シード{seed}を測定しました。ブリーフィングは{target}シード中{n}シードに基づきます",
    "label.seeds": "ブリーフィングにシードを追加({n}まで)",
    "job.surface": "{model}の損失地形: {grid}x{grid}グリッド、{done}/{total}点",
    "job.flatness": "{model}の平坦さ: {stage}({done}/{total})",
    "job.surfaces_done": "損失地形の計算が完了しました",
    "job.estimate": "{model}の損失地形: {grid}x{grid}グリッド、新規{points}点、約{seconds}秒",
    "job.convexity": "{model}の凸性マップ: {grid}x{grid}グリッド、{done}/{total}点",
    "job.cvx_estimate": "{model}の凸性マップ: {grid}x{grid}グリッド、新規{points}点、約{seconds}秒",
    "job.convexity_done": "凸性マップの計算が完了しました",
    "job.summary": "要約を作成中",
    "job.ready": "準備完了",
    "job.loading": "{name}を読み込み中",
    "arg.stage.eigenvalues": "ヘッセ行列の上位固有値",
    "arg.stage.trace": "ヘッセ行列のトレース",
    "arg.stage.density": "スペクトル密度",
    "arg.stage.per_block": "ブロックごとの曲率",
    "arg.stage.sharpness": "シャープネス",
    "arg.stage.robustness": "重みノイズへの頑健性",
    "label.prepare": "既定モデルの準備",
    "label.train": "{model}の学習",
    "label.inspect": "{name}の読み込み",
    "label.surfaces": "{n}モデルの損失地形",
    "label.flatness": "{n}モデルの平坦さ",
    "label.convexity": "{n}モデルの凸性マップ",
    "label.whatif": "もしも分析: {model}",
    "stage.train": "MAE・RC-MAE・教師ありViTを学習(線形プローブを含む)",
    "stage.landscapes": "損失地形を計算(粗いグリッドから)",
    "stage.flatness": "平坦さを測定(ヘッセ行列、シャープネス、頑健性)",
    "stage.summary": "サマリーを作成",
    "verdict.supports": "主張を支持",
    "verdict.contradicts": "主張と矛盾",
    "verdict.no meaningful difference": "意味のある差なし",
    "verdict.undetermined": "未決定",
    "cap.surface": "[-{span}, {span}]上の{grid}グリッド、損失: {loss}、保留画像{samples}枚、方向シード{seed}、"
    "マスクシード{mask_seed}、正規化: {norm}、バイアスと正規化層の重み: {ignore}、動かす範囲: {scope}",
    "cap.partial": "(計算中)",
    "cap.coarse": "現在は完成した{n}のサブグリッドを表示しています。",
    "cap.curves": "学習中にエポックごとに記録した値(プローブ精度: 固定特徴量上のリッジ回帰プローブ)。",
    "cap.robustness": "ノイズの大きさごとに{draws}回のフィルタ正規化ランダムノイズの平均、保留画像{samples}枚、"
    "シード{seed}。帯: ±1標準偏差。",
    "cap.eig": "ランチョス法({iters}反復)、画像{samples}枚、シード{seed}。",
    "cap.density": "確率的ランチョス求積: プローブベクトル{vectors}本×{steps}ステップ、画像{samples}枚。",
    "cap.blocks": "パラメータグループごと: ランチョス法とハッチンソン法、画像{samples}枚、シード{seed}。",
    "cap.scatter": "キャッシュ済みの全平坦さ結果({n}モデル)。精度: 線形プローブ(MAE、RC-MAE)または分類器。",
    "models.title": "モデル",
    "models.intro": "キャッシュ内の学習済みチェックポイントと学習曲線、新しいモデルの学習、"
    "サーバー上のチェックポイントファイルの読み込み。",
    "models.cached": "キャッシュ済みモデル",
    "models.none": "キャッシュにチェックポイントがまだありません。",
    "models.curves_for": "学習曲線を表示するモデル",
    "models.metric": "指標",
    "models.curves_title": "学習曲線: {metric}",
    "models.describe": "詳細を表示",
    "models.details": "{name}の詳細",
    "models.train": "新しいモデルを学習",
    "models.train_go": "学習開始",
    "models.trained": "保存しました: {path}",
    "models.load": "パスを指定してチェックポイントを読み込む",
    "models.load_help": "サーバー上のファイルで、キャッシュフォルダ、プロジェクトフォルダ、または"
    "LANDSCAPE_ALLOWED_ROOTSに列挙したフォルダの中にあるもの。公式のMAE / RC-MAEファイルやtimmのViTも読み込めます。"
    "transformers / timmのモデルフォルダ（save_pretrained）や、ローカルのHugging Faceキャッシュにあるハブ ID"
    "（hf:facebook/vit-mae-base、timm:vit_base_patch16_224.mae）も読み込めます。",
    "models.inspect": "読み込んで表示",
    "models.added": "このセッションのモデル一覧に「{label}」として追加しました。",
    "col.model": "モデル",
    "col.kind": "種類",
    "col.data": "データ",
    "col.epochs": "エポック数",
    "col.probe_acc": "線形プローブ精度(検証データ全体、教師ありViTは分類器)",
    "col.params": "パラメータ数",
    "col.epoch_time": "秒 / エポック",
    "col.file": "ファイル",
    "col.ema": "EMAモメンタム(RC-MAE)",
    "col.size": "サイズ",
    "col.what": "内容",
    "col.finished": "完了",
    "col.created": "作成日時",
    "field.kind": "モデルの種類",
    "field.data": "データ",
    "field.preset": "大きさ",
    "field.epochs": "エポック数",
    "field.seed": "シード",
    "field.max_train": "学習画像数(0 = すべて)",
    "field.mask_ratio": "マスク率",
    "field.ema": "EMAモメンタム(RC-MAE)",
    "field.ema_schedule": "EMAスケジュール(RC-MAE)",
    "ema.auto": "auto(論文と同じエポック単位の時定数)",
    "ema.constant": "一定",
    "ema.cosine": "学習全体で1までコサイン",
    "field.path": "チェックポイントのパス",
    "field.models": "モデル",
    "field.loss": "損失",
    "field.dim": "断面",
    "field.grid": "軸あたりのグリッド点数",
    "field.span": "範囲",
    "field.norm": "方向の正規化",
    "field.ignore": "バイアスと正規化層",
    "field.scope": "動かすパラメータ",
    "field.dir_seed": "方向のシード",
    "field.samples": "画像数",
    "field.view": "表示",
    "field.relative": "相対値",
    "field.log": "対数スケール",
    "field.log_x": "x軸を対数に",
    "field.top_k": "上位固有値の数",
    "field.rho": "シャープネスの半径",
    "field.trace": "ヘッセ行列のトレース",
    "field.density": "スペクトル密度",
    "field.per_block": "ブロックごと",
    "field.robustness": "頑健性曲線",
    "help.mask_ratio": "エンコーダから隠す画像パッチの割合(MAEの既定値は0.75)。",
    "help.ema": "RC-MAEの教師が生徒に追従する遅さ。auto: m = 0.996^(312/S)、Sは1エポックの最適化ステップ数"
    "(312はバッチ4096のImageNet-1k)。Busbridgeら(2023)のEMAスケーリング則により、論文の教師の時定数をエポック単位で"
    "保ちます。0.996は論文の値そのままで、短い学習では教師が学習の大半で遅れます。",
    "help.ema_schedule": "一定、またはRC-MAE論文の記述どおり学習全体でモメンタムから1までのコサイン"
    "(公式コードはエポック内のステップで参照するため、実際には~mのままです)。",
    "whatif.ema_base": "元のモデルのEMAモメンタム: {text}。",
    "help.max_train": "学習画像を減らして、データ量で地形がどう変わるかを見ます。",
    "help.grid": "奇数。5、9、17、33は再計算なしで互いに細かくできます。",
    "help.span": "座標はフィルタ正規化した方向の単位で[-範囲, 範囲]をとります。",
    "help.relative": "中心からの増加: L - L(中心)を表示し、損失の尺度が違うモデルも共通の色尺度で比べます。",
    "help.log": "(切り詰めた)損失増加の常用対数: 平らな中心と急な壁の両方が見えます。",
    "help.rho": "重みの摂動の相対的な大きさ(0でシャープネスを省略)。",
    "help.density": "時間がかかります: 確率的ランチョス求積。",
    "data.digits": "手書き数字(8x8、1,797枚)",
    "data.synthetic": "合成図形",
    "preset.tiny": "tiny(1モデル約1分)",
    "preset.micro": "micro(数秒)",
    "field.allow_long": "見積もりが10分を超えても実行する",
    "help.allow_long": "開始前に各モデルの計算時間を見積もります(1回の評価時間×点数)。チェックしない場合、長い計算は"
    "開始しません。メモリに収まらない計算は常に拒否します。",
    "loss.own": "自身の学習損失",
    "loss.pretrain": "MAE再構成",
    "loss.supervised": "分類",
    "loss.probe": "線形プローブ",
    "dim.1": "1次元",
    "dim.2": "2次元",
    "norm.filter": "フィルタ",
    "norm.layer": "層",
    "norm.weight": "重み",
    "norm.none": "なし",
    "ignore.biasbn": "固定する",
    "ignore.none": "一緒に動かす",
    "scope.all": "すべて",
    "scope.encoder": "エンコーダ",
    "scope.decoder": "デコーダ",
    "scope.head": "ヘッド",
    "view.contour": "等高線",
    "view.heatmap": "ヒートマップ",
    "view.surface": "3D",
    "view.slices": "1次元断面",
    "view.difference": "差分",
    "view.convexity": "凸性",
    "cap.convexity": "{grid}x{grid}の凸性グリッド、1点あたり最大{iters}回のLanczosステップ、収束しなかった点 "
    "{unconverged}(その|λmin|は下限); 等高線: 同じ断面の損失。",
    "flat.title": "平坦さ",
    "flat.intro": "学習済みの重みにおける各モデル自身の学習損失の曲率"
    "(固有値、トレース、シャープネスが小さいほど平坦)と、重みを摂動したときに失う精度。",
    "flat.go": "計算",
    "flat.numbers": "平坦さの指標",
    "flat.resumed": "中断された計算を再開しました({items}ステップをジャーナルから再生)。"
    "数値は中断のない実行と同じです。",
    "flat.eig_title": "ヘッセ行列の上位固有値",
    "flat.rob_title": "重みノイズへの頑健性",
    "flat.rob_metric": "頑健性の表示",
    "flat.density_title": "ヘッセ行列の固有値密度",
    "flat.block_title": "ブロックごとの曲率",
    "flat.block_metric": "ブロックごとの指標",
    "flat.same": "同じ関数での比較",
    "flat.same_help": "RC-MAEはMAEのマスクパッチ二乗誤差(MAE項、ここで併せて計算)でMAEと比較し、MAEと教師ありViTは"
    "各モデルの中心での損失(シャープネスの段階で計算)で割った数値で比較します(docs/FINDINGS.mdと同じ)。"
    "RC-MAEの学習目的関数は参考として表示し、判定には数えません。同じ種類のモデルはまとめて扱います。",
    "flat.scatter": "平坦さと精度(キャッシュ済みの全結果)",
    "flat.scatter_help": "ここでは平坦なモデルほど汎化するでしょうか。"
    "平坦さの数値がキャッシュされたモデルごとに1点です。",
    "flat.scatter_title": "線形プローブ精度と{x}",
    "flat.no_points": "平坦さの結果はまだキャッシュされていません。",
    "flat.x": "平坦さの指標",
    "num.lambda_max": "最大固有値 λ",
    "num.lambda_min": "最小固有値 λ",
    "num.trace": "トレース",
    "num.sharp_avg": "シャープネス(平均)",
    "num.sharp_adaptive": "シャープネス(適応的)",
    "num.sharp_worst": "シャープネス(最悪ケース)",
    "num.probe_acc": "ノイズなしのプローブ精度(評価画像)",
    "num.acc_drop": "最大ノイズでの精度低下",
    "num.n_params": "パラメータ数",
    "num.loss": "損失",
    "metric.train_loss": "学習損失",
    "metric.val_loss": "検証損失",
    "metric.probe_acc": "学習中のリッジプローブ精度",
    "metric.val_acc": "検証精度",
    "metric.time_s": "エポックあたりの秒数",
    "metric.lambda_max": "最大固有値",
    "metric.trace": "トレース",
    "metric.top_eigenvalue": "ヘッセ行列の最大固有値",
    "metric.sharpness": "シャープネス",
    "metric.acc_drop": "ノイズによる精度低下",
    "metric.basin_width": "盆地の幅",
    "metric.r_acc": "精度",
    "metric.r_loss": "損失",
    "whatif.title": "学習方法を変えたらどうなるか",
    "whatif.intro": "マスク率、EMAモメンタム、エポック数、学習データ量を変えてモデルを学習し直し、"
    "同じ方向・画像・マスクで元のモデルと比較します。",
    "whatif.base": "元のモデル",
    "whatif.with_flatness": "平坦さも測定する",
    "whatif.go": "変更版を学習して比較",
    "whatif.same": "変更版が元のモデルと同じです。設定を1つ以上変えてください。",
    "whatif.fig_title": "元のモデルと変更版",
    "whatif.same_dirs": "両方のパネルは同じ方向シード、グリッド、画像、マスクを使っており、違いは重みだけです。",
    "whatif.start": "元のモデルを選び、設定を変えてボタンを押してください。変更版がバックグラウンドで学習され、"
    "ここで元のモデルと比較されます。",
}

# The Generalization page's entries live in their own module (this one is long); merged here.
import core.report.i18n_generalization as _gen  # noqa: E402

EN |= _gen.EN
JA |= _gen.JA
import core.report.i18n_roi as _roi  # noqa: E402  (the pre-training ladder: core.report.i18n_roi)

EN |= _roi.EN
JA |= _roi.JA
import core.report.i18n_naming as _naming  # noqa: E402  (what things are called: core.report.naming)

EN |= _naming.EN
JA |= _naming.JA
import core.report.i18n_overview as _overview  # noqa: E402  (the Overview and its briefing)

EN |= _overview.EN
JA |= _overview.JA
import core.report.i18n_landscapes as _landscapes  # noqa: E402  (the Landscapes page)

EN |= _landscapes.EN
JA |= _landscapes.JA
import core.report.i18n_runs as _runs  # noqa: E402  (the Runs page)

EN |= _runs.EN
JA |= _runs.JA
import core.report.i18n_stability as _stab  # noqa: E402  (the "Stability under corruptions" section)

EN |= _stab.EN
JA |= _stab.JA
TEXTS = {"en": EN, "ja": JA}
_SEP = "|"


def t(key: str, lang: str = "en") -> str:
    """The text for `key` in `lang` (English when the language or the entry is missing; the key when unknown)."""
    table = TEXTS.get(lang, EN)
    if key in table:
        return table[key]
    return EN.get(key, key)


def placeholders(text: str) -> set[str]:
    """The `{name}` fields of a format string."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def msg(key: str, **args: Any) -> str:
    """A message for `render_message`: the key and its arguments as one plain string (`key|{json}`)."""
    return f"{key}{_SEP}{json.dumps(args, ensure_ascii=False, sort_keys=True, default=str)}"


def render_message(message: str, lang: str = "en") -> str:
    """The text of a `msg(...)` string in `lang`; any other string is returned unchanged.

    A string argument `v` of name `a` is translated when an entry `arg.<a>.<v>` exists (e.g. flatness stages).
    """
    if not message or _SEP not in message:
        return message or ""
    key, _, raw = message.partition(_SEP)
    if key not in EN:
        return message
    try:
        args = json.loads(raw) if raw else {}
    except ValueError:
        return message
    if not isinstance(args, dict):
        return message
    for name, v in list(args.items()):
        if isinstance(v, str) and f"arg.{name}.{v}" in EN:
            args[name] = t(f"arg.{name}.{v}", lang)
    try:
        return t(key, lang).format(**args)
    except (KeyError, IndexError, ValueError):
        return t(key, lang)


# ----------------------------------------------------------------------------------------------------------------------
# Figure text. core/report/plots.py writes its axis titles, colour bars, legends and default titles in English; a
# Japanese page passes its figures through `core.report.plots.localize`, which replaces these phrases (whole strings
# first, then the longest phrases inside longer strings). Model labels and numbers are left alone.

FIGURE_WHOLE_JA: dict[str, str] = {
    "loss": "損失",
    "accuracy": "精度",
    "epoch": "エポック",
    "centre": "中心",
}

FIGURE_PHRASES_JA: dict[str, str] = {
    "loss increase over the centre (L - L(centre))": "中心からの損失の増加 (L - L(中心))",
    "log of the loss increase over the centre": "中心からの損失増加の対数",
    "loss increase over the centre": "中心からの損失の増加",
    "max(L - L(centre), 0)": "max(L - L(中心), 0)",
    "L - L(centre)": "L - L(中心)",
    "log10(loss": "log10(損失",
    ": loss": ": 損失",
    "absolute loss": "損失の絶対値",
    "(centre not computed yet)": "(中心は未計算)",
    "centre (trained weights)": "中心 (学習済みの重み)",
    "training path": "学習の軌跡",
    "snapshot": "スナップショット",
    "Loss landscape": "損失地形",
    "Slices through the centre": "中心を通る断面",
    "along direction 1 (beta = 0)": "方向 1 に沿って (beta = 0)",
    "along direction 2 (alpha = 0)": "方向 2 に沿って (alpha = 0)",
    "along the direction": "方向に沿って",
    "coefficient direction 1": "方向 1 の係数",
    "coefficient direction 2": "方向 2 の係数",
    "coefficient the direction": "方向の係数",
    "direction 1 (alpha)": "方向 1 (alpha)",
    "direction 2 (beta)": "方向 2 (beta)",
    "A minus B": "A 引く B",
    " minus ": " 引く ",
    "red: A higher, blue: B higher": "赤: A が高い、青: B が高い",
    "Training curves": "学習曲線",
    "training loss": "学習損失",
    "validation loss": "検証損失",
    "validation accuracy": "検証精度",
    "linear-probe accuracy": "線形プローブ精度",
    "wall time per epoch (s)": "1 エポックの実時間 (秒)",
    "learning rate": "学習率",
    "top Hessian eigenvalue": "ヘッセ行列の最大固有値",
    "Top Hessian eigenvalues": "ヘッセ行列の上位固有値",
    "Hessian eigenvalue spectral density": "ヘッセ行列の固有値スペクトル密度",
    "Hessian eigenvalue": "ヘッセ行列の固有値",
    "Hessian trace": "ヘッセ行列のトレース",
    "sharpness (mean loss increase at a radius)": "鋭さ (半径での平均損失増加)",
    "basin width": "盆地の幅",
    "accuracy drop under weight noise": "重みノイズによる精度低下",
    "Robustness to weight noise: accuracy": "重みノイズへの頑健性: 精度",
    "Robustness to weight noise: loss": "重みノイズへの頑健性: 損失",
    "relative noise size sigma": "相対的なノイズの大きさ sigma",
    "accuracy (mean, band: +-1 std over draws)": "精度 (平均、帯: 抽選間の ±1 標準偏差)",
    "loss (mean, band: +-1 std over draws)": "損失 (平均、帯: 抽選間の ±1 標準偏差)",
    "+-1 std": "±1 標準偏差",
    "spectral density": "スペクトル密度",
    "(log scale)": "(対数目盛)",
    "eigenvalue rank": "固有値の順位",
    "parameter group": "パラメータ群",
    "Per-block": "ブロック別",
    "n too small for a correlation (need at least 3 models)": "相関を出すにはモデルが少なすぎます (3 つ以上必要)",
    "n too small for a correlation (need at least 5 models)": "相関を出すにはモデルが少なすぎます (5 つ以上必要)",
    "mixed functions on the x axis": "x軸に異なる関数が混在",
    "not one scale": "同じ尺度ではありません",
    "masked-patch MSE + consistency": "マスクパッチ二乗誤差 + 一貫性",
    "masked-patch MSE": "マスクパッチ二乗誤差",
    "linear-probe cross-entropy": "線形プローブの交差エントロピー",
    "cross-entropy": "交差エントロピー",
    "ridge-probe accuracy during training": "学習中のリッジプローブ精度",
    "linear-probe accuracy (whole validation split)": "線形プローブ精度 (検証データ全体)",
    "probe accuracy without weight noise": "重みノイズなしのプローブ精度",
    "correlation undefined (no spread in one of the numbers)": "相関は定義できません (どちらかの値にばらつきがない)",
    "model(s) left out": "モデルを除外",
    "not measured": "未測定",
    " or ": " または ",
    " vs ": " 対 ",
    "supervised ViT": "教師あり ViT",
    "|lambda_min / lambda_max| of the Hessian": "ヘッセ行列の |λmin / λmax|",
    "loss contours (L - L(centre))": "損失の等高線 (L - L(中心))",
    "counted convex": "凸と数える",
    "blue: below": "青: 次の値未満",
    "Convexity map": "凸性マップ",
}

FIGURE_PHRASES_JA |= _gen.FIGURE_PHRASES_JA
FIGURE_PHRASES_JA |= _roi.FIGURE_PHRASES_JA
FIGURE_PHRASES_JA |= _stab.FIGURE_PHRASES_JA
FIGURE_TEXT: dict[str, tuple[dict[str, str], dict[str, str]]] = {"ja": (FIGURE_WHOLE_JA, FIGURE_PHRASES_JA)}


def figure_text(text: str, lang: str) -> str:
    """One string of a figure in `lang` (see FIGURE_TEXT; unchanged for English or unknown text)."""
    table = FIGURE_TEXT.get(lang)
    if table is None or not text:
        return text
    whole, phrases = table
    if text in whole:
        return whole[text]
    for phrase in _sorted_phrases(lang):
        if phrase in text:
            text = text.replace(phrase, phrases[phrase])
    return text


_PHRASE_ORDER: dict[str, list[str]] = {}


def _sorted_phrases(lang: str) -> list[str]:
    if lang not in _PHRASE_ORDER:
        _PHRASE_ORDER[lang] = sorted(FIGURE_TEXT[lang][1], key=len, reverse=True)
    return _PHRASE_ORDER[lang]


# ----------------------------------------------------------------------------------------------------------------------
# Landscape numbers (core.geometry.surface_metrics keys) as table rows

_SURFACE_METRICS = {
    "en": {
        "centre_loss": "loss at the trained weights",
        "centre_x": "centre x",
        "centre_y": "centre y",
        "threshold": "basin threshold (loss)",
        "increase_r": "mean loss increase at radius {r}",
        "basin_extent_": "basin extent towards {d}",
        "basin_width_x": "basin width along x",
        "basin_width_y": "basin width along y",
        "basin_width": "basin width",
        "flat_fraction": "flat fraction of the grid",
        "curvature_min": "smallest curvature at the centre",
        "curvature_max": "largest curvature at the centre",
        "fit_radius": "radius of the curvature fit",
        "fit_points": "points in the curvature fit",
        "convex_fraction": "locally convex fraction",
        "n_points": "grid points",
        "n_nan": "points not finite",
    },
    "ja": {
        "centre_loss": "学習済み重みでの損失",
        "centre_x": "中心 x",
        "centre_y": "中心 y",
        "threshold": "盆地のしきい値(損失)",
        "increase_r": "半径{r}での平均損失増加",
        "basin_extent_": "{d}方向の盆地の広がり",
        "basin_width_x": "x方向の盆地の幅",
        "basin_width_y": "y方向の盆地の幅",
        "basin_width": "盆地の幅",
        "flat_fraction": "グリッドの平坦な割合",
        "curvature_min": "中心での最小曲率",
        "curvature_max": "中心での最大曲率",
        "fit_radius": "曲率フィットの半径",
        "fit_points": "曲率フィットの点数",
        "convex_fraction": "局所的に凸な割合",
        "n_points": "グリッド点数",
        "n_nan": "有限でない点数",
    },
}


def surface_metric_name(key: str, lang: str = "en") -> str:
    """A readable row name for a `core.geometry.surface_metrics` key, with the key itself in parentheses (researchers
    search for it); unknown keys are returned as they are."""
    table = _SURFACE_METRICS.get(lang, _SURFACE_METRICS["en"])
    if key in table:
        name = table[key]
    elif key.startswith("increase_r"):
        name = table["increase_r"].format(r=key[len("increase_r") :])
    elif key.startswith("basin_extent_"):
        name = table["basin_extent_"].format(d=key[len("basin_extent_") :])
    else:
        return key
    return f"{name} ({key})"


def surface_caption(spec: Any, lang: str = "en") -> str:
    """How a landscape was made (grid, span, images, seeds, normalization, scope, loss) for a `SurfaceSpec`."""
    grid = f"{spec.grid}x{spec.grid}" if spec.dim == 2 else f"{spec.grid}"
    loss = t(f"loss.{spec.loss}", lang)
    if getattr(spec, "rcmae_terms", "full") == "mae":  # set for RC-MAE models only (the Landscapes page's choice)
        loss += f" ({t('terms.mae', lang)})"
    return t("cap.surface", lang).format(
        grid=grid,
        span=f"{spec.span:g}",
        samples=spec.samples,
        seed=spec.seed,
        mask_seed=spec.mask_seed,
        norm=t(f"norm.{spec.norm}", lang),  # option names, not the raw values ("filter" in a Japanese caption)
        ignore=t(f"ignore.{spec.ignore}", lang),
        scope=t(f"scope.{spec.scope}", lang),
        loss=loss,
    )
