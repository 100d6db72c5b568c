"""The Runs page's text (English and Japanese): the cache's entries, their previews, exports and pruning.

Merged into `core.report.i18n`'s tables when it is imported (that module is long); plain dicts only: this module
imports nothing of the project.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "runs.title": "Runs and cache",
    "runs.intro": "Everything computed so far, kept under {root}.",
    "runs.kind": "Show",
    "runs.kind_landscape": "Landscapes",
    "runs.kind_flatness": "Flatness results",
    "runs.kind_checkpoints": "Checkpoints",
    "runs.pick": "Entry",
    "runs.meta": "Key and metadata",
    "runs.empty": "Nothing of this kind cached yet.",
    "runs.partial": "partial ({n} points)",
    "runs.confirm": "Yes, delete {name}",
    "runs.delete": "Delete",
    "runs.deleted": "Deleted {name}.",
    "runs.outside": "Refusing to delete a file outside the cache's checkpoint folder.",
    "runs.download_ckpt": "Download checkpoint",
    "runs.download": "Download {fmt}",
    "runs.points": "Points or steps logged",
    "runs.preview": "Preview",
    "runs.size": "The cache holds {size}; {free} free on its disk.",
    "runs.prune": "Free space: remove least recently used results",
    "runs.max_size": "Keep at most (e.g. 5GB)",
    "runs.older_than": "Remove unused for longer than (e.g. 30d)",
    "runs.include_defaults": "Also the default models of the Overview",
    "runs.last_used": "Last used",
    "runs.prune_confirm": "Yes, remove these {n} items",
    "runs.prune_now": "Remove",
}

JA: dict[str, str] = {
    "runs.title": "実行履歴とキャッシュ",
    "runs.intro": "これまでに計算したものすべて({root}に保存)。",
    "runs.kind": "表示",
    "runs.kind_landscape": "損失地形",
    "runs.kind_flatness": "平坦さの結果",
    "runs.kind_checkpoints": "チェックポイント",
    "runs.pick": "項目",
    "runs.meta": "キーとメタデータ",
    "runs.empty": "この種類のキャッシュはまだありません。",
    "runs.partial": "途中({n}点)",
    "runs.confirm": "{name}を削除してよい",
    "runs.delete": "削除",
    "runs.deleted": "{name}を削除しました。",
    "runs.outside": "キャッシュのチェックポイントフォルダ外のファイルは削除できません。",
    "runs.download_ckpt": "チェックポイントをダウンロード",
    "runs.download": "{fmt}をダウンロード",
    "runs.points": "記録済みの点数・ステップ数",
    "runs.preview": "プレビュー",
    "runs.size": "キャッシュは{size}使用中。ディスクの空きは{free}。",
    "runs.prune": "空き容量を作る:最近使っていない結果から削除",
    "runs.max_size": "上限サイズ(例: 5GB)",
    "runs.older_than": "この期間使われていないものを削除(例: 30d)",
    "runs.include_defaults": "概要ページの既定モデルも含める",
    "runs.last_used": "最終使用",
    "runs.prune_confirm": "この{n}件を削除してよい",
    "runs.prune_now": "削除",
}
