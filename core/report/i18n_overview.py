"""The Overview's text (English and Japanese): the page, the four-point briefing's cards, where to cancel the shared
first-run job, the time left of a job, and where the evidence behind a card comes from.

Merged into `core.report.i18n`'s tables when it is imported (that module is long); plain dicts only: this module
imports nothing of the project.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "overview.title": "MAE vs RC-MAE vs supervised ViT",
    "overview.intro": "Three small Vision Transformers trained here on handwritten digits: a masked autoencoder "
    "(MAE), RC-MAE (MAE plus a slowly-moving EMA teacher) and a supervised ViT. The numbers below are measured on "
    "them, not copied from the paper.",
    "overview.preparing": "First run: training the three default models, then their loss landscapes and flatness "
    "numbers. This happens once (a few minutes on a laptop CPU); afterwards everything loads from the cache in "
    "seconds. Pictures appear as soon as they exist.",
    "overview.retry": "Try again",
    "overview.cached": "Prepared in {s} s (everything cached).",
    "overview.landscapes": "Loss landscapes side by side",
    "overview.landscape_title": "Loss increase around each trained model (flat and wide = stable)",
    "overview.landscape_note": "Each panel shows how much the model's own training loss rises when its weights are "
    "moved along two random (filter-normalized) directions; the red cross is the trained model. A wider dark region "
    "means a flatter, more stable minimum. The colour scale is shared.",
    "overview.robustness": "Accuracy under random weight noise",
    "overview.robustness_title": "Linear-probe accuracy when the weights are perturbed",
    "overview.summary": "Executive summary",
    "overview.flatness": "Flatness numbers",
    "overview.flatness_note": "Smaller λ max, trace, sharpness and accuracy drop, and a wider basin, mean a flatter "
    "minimum. Each model is measured on its own training loss; accuracy: linear probe or classifier.",
    "overview.no_facts": "The summary appears once the default models and their measurements are ready.",
    "overview.numbers": "The numbers behind the summary",
    "overview.col_point": "Point",
    "overview.col_number": "Number",
    "overview.col_value": "Value",
    "overview.same_title": "RC-MAE vs MAE on one function<br><sub>MAE's masked-patch MSE (RC-MAE: its MAE term, "
    "student moving)</sub>",
    "overview.meeting": "Say it in the meeting",
    "overview.details": "The measurements behind it",
    "overview.why": "What would settle it",
    "overview.seeds_now": "These verdicts stand on {n} seed(s): each seed trains the three models again and is "
    "compared with the others of its seed (paired), so intervals narrow as seeds are added.",
    "overview.seeds_offer": "Add seeds:",
    "overview.seeds_button": "to {n} seeds",
    "overview.seeds_help": "A background job shared by every session: seeds 1, 2, ... of the default models, trained "
    "and measured as the first run measured seed 0 (a few minutes per seed on a laptop CPU). The verdicts update as "
    "each seed lands.",
    "overview.export_help": "One self-contained file in this language: every figure embedded, works offline, prints "
    "to PDF from a browser.",
    "overview.more": "Figures and numbers per model",
    "job.eta_min": "about {n} min left",
    "label.roi_facts": "Reading the pre-training ladder",
    "runs.active": "Jobs in progress",
    "runs.active_note": "Shared by everyone viewing this dashboard: cancelling a job stops it for every viewer.",
    "job.eta_s": "about {n} s left",
    "overview.cancel_where": "This preparation is shared by everyone viewing the dashboard ({n} job(s) waiting): to "
    "stop it, use the Runs page.",
    "overview.claim": "Claim: {c}",
    "overview.export": "Briefing (HTML)",
    "overview.seeds_card": "{n} seed(s) behind this card",
    "overview.meeting_help": "Composed from the four verdicts, the ones that contradict the paper included; the copy "
    "button is at the right of the box.",
}

JA: dict[str, str] = {
    "overview.title": "MAE・RC-MAE・教師ありViTの比較",
    "overview.intro": "手書き数字でここで学習した3つの小さなVision Transformer(マスク付きオートエンコーダMAE、"
    "ゆっくり追従するEMA教師を加えたRC-MAE、教師ありViT)を比べます。以下の数値は論文からの引用ではなく、"
    "これらのモデルで実測したものです。",
    "overview.preparing": "初回の準備中です: 既定の3モデルを学習し、損失地形と平坦さの指標を計算します。"
    "これは一度だけです(ノートPCのCPUで数分)。2回目以降はキャッシュから数秒で表示されます。"
    "図はできた時点から表示されます。",
    "overview.retry": "再試行",
    "overview.cached": "{s}秒で準備しました(すべてキャッシュ済み)。",
    "overview.landscapes": "損失地形の比較",
    "overview.landscape_title": "学習済みモデル周辺の損失の増加(平らで広い = 安定)",
    "overview.landscape_note": "各パネルは、重みを2つのランダムな(フィルタ正規化した)方向に動かしたときに、"
    "そのモデル自身の学習損失がどれだけ増えるかを示します。赤い×印が学習済みモデルです。暗い領域が広いほど、"
    "平坦で安定した最小値です。色の尺度は共通です。",
    "overview.robustness": "重みにランダムなノイズを加えたときの精度",
    "overview.robustness_title": "重みを摂動したときの線形プローブ精度",
    "overview.summary": "エグゼクティブサマリー",
    "overview.flatness": "平坦さの指標",
    "overview.flatness_note": "最大固有値、トレース、シャープネス、精度低下が小さく、"
    "盆地の幅が広いほど平坦な最小値です。各モデルはそれぞれの学習損失で測定。精度は線形プローブまたは分類器のものです。",
    "overview.no_facts": "既定モデルとその測定が揃うとサマリーが表示されます。",
    "overview.numbers": "サマリーの根拠となる数値",
    "overview.col_point": "項目",
    "overview.col_number": "指標",
    "overview.col_value": "値",
    "overview.same_title": "同じ関数でのRC-MAEとMAE<br><sub>MAEのマスクパッチ二乗誤差"
    "(RC-MAEはMAE項、生徒モデルを動かす)</sub>",
    "overview.meeting": "会議でのひとこと",
    "overview.details": "根拠となる測定",
    "overview.why": "結論を出すには",
    "overview.seeds_now": "これらの判定は{n}シードに基づきます。シードごとに3つのモデルを学習し直し、同じシードの"
    "モデル同士を対応させて比べるため、シードを増やすと区間が狭まります。",
    "overview.seeds_offer": "シードを追加:",
    "overview.seeds_button": "{n}シードまで",
    "overview.seeds_help": "全セッションで共有されるバックグラウンドジョブです。既定モデルのシード1、2、…を、初回の"
    "準備がシード0を測ったのと同じ方法で学習・測定します(ノートPCのCPUで1シード数分)。シードが揃うたびに判定が"
    "更新されます。",
    "overview.export_help": "この言語の単一ファイルです。図をすべて埋め込み、オフラインで開け、"
    "ブラウザからPDFに印刷できます。",
    "overview.more": "図とモデルごとの数値",
    "job.eta_min": "残り約{n}分",
    "label.roi_facts": "事前学習の長さの比較を読み込み中",
    "runs.active": "実行中のジョブ",
    "runs.active_note": "ダッシュボードを見ている全員で共有しています。中止すると全員のジョブが止まります。",
    "job.eta_s": "残り約{n}秒",
    "overview.cancel_where": "この準備はダッシュボードを見ている全員で共有しています(待機中のジョブ{n}件)。"
    "中止するには「実行履歴」ページを使ってください。",
    "overview.claim": "判定する主張: {c}",
    "overview.export": "報告書(HTML)",
    "overview.seeds_card": "このカードの根拠: {n}シード",
    "overview.meeting_help": "論文と逆の結果も含め、4つの判定から組み立てた文です。右のボタンでコピーできます。",
}
