"""The Overview's newer text (English and Japanese): the four-point briefing's cards, where to cancel the shared
first-run job, the time left of a job, and where the evidence behind a card comes from.

Merged into `core.report.i18n`'s tables when it is imported (that module is long); plain dicts only: this module
imports nothing of the project.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "job.eta_min": "about {n} min left",
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
    "job.eta_min": "残り約{n}分",
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
