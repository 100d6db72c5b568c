"""The stability claim's primary numbers and its one plain sentence (EN / JA), pure functions of plain numbers.

The primary number (declared before measuring, `STABILITY_PRIMARY`): per pre-trained kind (MAE-FT, RC-MAE-FT), the
relative accuracy drop under the corruption suite, (clean - mean corrupted) / clean, minus scratch's, paired by seed,
at `PRIMARY_BUDGET` labels per class; both kinds must hold (Holm over the two), as for the premise. docs/FINDINGS.md
(`core.studies.stability`) and the Overview (`stability_sentence`) both read it through `stability_estimates`, so they
judge the same runs the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from core.report.verdicts import (
    CONTRADICTED,
    MARGINS,
    NO_DIFFERENCE,
    REPRODUCED,
    ClaimVerdict,
    Estimate,
    claim_verdict,
    paired,
)

PRIMARY_BUDGET = 10  # labels per class of the primary number (a study without it: its smallest numeric budget)
STABILITY_LABEL = {"mae": "MAE-FT vs scratch, relative drop", "rcmae": "RC-MAE-FT vs scratch, relative drop"}
STABILITY_PRIMARY = (
    "the relative accuracy drop under the whole corruption suite, (clean - mean corrupted) / clean, at the "
    "10-labels-per-class budget (the smallest numeric budget when a study lacks 10), per pre-trained kind minus "
    "scratch's, paired by seed, Holm over the two kinds; both must hold. A relative drop, not the corrupted accuracy "
    "itself: the premise already shows that pre-trained models are more accurate on clean images, and the question "
    "here is how much of their own accuracy each model keeps; 10 labels per class is the regime the Overview speaks "
    "of, where fine-tuning is not yet saturated. Margin: the accuracy margin (3 points of the clean accuracy kept), "
    "since the relative drop is a share of accuracy."
)


def primary_budget(budgets) -> int | None:
    """`PRIMARY_BUDGET` when present, else the smallest numeric budget (None: every image only)."""
    nums = [b for b in budgets if b is not None]
    if PRIMARY_BUDGET in nums or not nums:
        return PRIMARY_BUDGET if nums else None
    return min(nums)


def stability_pairs(
    drops: Mapping[str, Mapping[int, float]],
) -> dict[str, tuple[tuple[float, ...], tuple[float, ...], tuple[int, ...]]]:
    """kind ("mae", "rcmae") -> (its relative drop by seed, scratch's by seed, seeds); NaN where a side is missing.

    Args:
        drops: kind ("mae", "rcmae", "scratch") -> seed -> relative drop at the primary budget.
    """
    scratch = drops.get("scratch") or {}
    out = {}
    for kind in ("mae", "rcmae"):
        mine = drops.get(kind) or {}
        if not mine:
            continue
        seeds = tuple(sorted(set(mine) | set(scratch)))
        out[kind] = (
            tuple(float(mine.get(s, math.nan)) for s in seeds),
            tuple(float(scratch.get(s, math.nan)) for s in seeds),
            seeds,
        )
    return out


def stability_estimates(drops: Mapping[str, Mapping[int, float]]) -> tuple[Estimate, ...]:
    """The primary numbers: per pre-trained kind its relative drop minus scratch's, paired by seed (lower is better),
    with the accuracy margin; judge them together with `claim_verdict` (Holm over the kinds)."""
    return tuple(
        paired(STABILITY_LABEL[kind], a, b, "lower", MARGINS["accuracy"], seeds)
        for kind, (a, b, seeds) in stability_pairs(drops).items()
    )


def stability_verdict(drops: Mapping[str, Mapping[int, float]]) -> ClaimVerdict:
    return claim_verdict(stability_estimates(drops))


def _kept(values) -> float:
    v = [1.0 - float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else math.nan


_SENTENCE = {
    "en": {
        REPRODUCED: "Under noise, blur, shifts and occlusion the pre-trained models kept {pre} of their accuracy "
        "against {scratch} from scratch ({budget} labels per class, {n}): more stable in operation.",
        CONTRADICTED: "Under noise, blur, shifts and occlusion the pre-trained models kept {pre} of their accuracy "
        "against {scratch} from scratch ({budget} labels per class, {n}): pre-training did not make them more "
        "stable; the scratch model kept more.",
        NO_DIFFERENCE: "Under noise, blur, shifts and occlusion the pre-trained models kept {pre} of their accuracy "
        "and the model from scratch {scratch} ({budget} labels per class, {n}): no difference larger than 3 points.",
        "undetermined": "Under noise, blur, shifts and occlusion the pre-trained models kept {pre} of their accuracy "
        "against {scratch} from scratch ({budget} labels per class, {n}); not decided yet{needed}.",
        "needed": ": about {m} seeds would decide it",
        "none": "Stability under input corruptions (noise, blur, shifts, occlusion) is not measured yet.",
        "seeds": "{n} seed(s)",
        "pair": "{mae} (MAE-FT) and {rcmae} (RC-MAE-FT)",
    },
    "ja": {
        REPRODUCED: "ノイズ・ぼかし・ずれ・遮蔽の下で、事前学習モデルは精度の{pre}を保ち、スクラッチは{scratch}でした"
        "（1クラス{budget}ラベル、{n}）。運用時により安定です。",
        CONTRADICTED: "ノイズ・ぼかし・ずれ・遮蔽の下で、事前学習モデルは精度の{pre}を保ち、スクラッチは{scratch}でした"
        "（1クラス{budget}ラベル、{n}）。事前学習で安定にはならず、スクラッチの方が多く保ちました。",
        NO_DIFFERENCE: "ノイズ・ぼかし・ずれ・遮蔽の下で、事前学習モデルは精度の{pre}、"
        "スクラッチは{scratch}を保ちました（1クラス{budget}ラベル、{n}）。3ポイントを超える差はありません。",
        "undetermined": "ノイズ・ぼかし・ずれ・遮蔽の下で、事前学習モデルは精度の{pre}を保ち、"
        "スクラッチは{scratch}でした（1クラス{budget}ラベル、{n}）。まだ決まっていません{needed}。",
        "needed": "（約{m}シードで決まる見込み）",
        "none": "入力の劣化（ノイズ・ぼかし・ずれ・遮蔽）に対する安定性はまだ測定されていません。",
        "seeds": "{n}シード",
        "pair": "{mae}（MAE-FT）と{rcmae}（RC-MAE-FT）",
    },
}


def stability_sentence(facts: Mapping | None, lang: str = "en") -> str:
    """The Overview's stability sentence, composed from the measured facts and following their verdict.

    Args:
        facts: `core.app.stability_tasks.stability_facts`'s dict ({"labels_per_class", "seeds", "relative_drop":
            kind -> [one per seed]}) or None when nothing is measured.
        lang: "en" or "ja".
    """
    table = _SENTENCE.get(lang, _SENTENCE["en"])
    if not facts or not facts.get("seeds"):
        return table["none"]
    seeds = list(facts["seeds"])
    drops = {k: dict(zip(seeds, v, strict=True)) for k, v in (facts.get("relative_drop") or {}).items()}
    verdict = stability_verdict(drops)
    pct = {k: _kept(drops.get(k, {}).values()) for k in ("mae", "rcmae", "scratch")}

    def p(k: str) -> str:
        return f"{pct[k]:.0%}" if math.isfinite(pct[k]) else "?"

    key = verdict.verdict if verdict.verdict in (REPRODUCED, CONTRADICTED, NO_DIFFERENCE) else "undetermined"
    needed = table["needed"].format(m=verdict.seeds_needed) if key == "undetermined" and verdict.seeds_needed else ""
    return table[key].format(
        pre=table["pair"].format(mae=p("mae"), rcmae=p("rcmae")),
        scratch=p("scratch"),
        budget=facts.get("labels_per_class", PRIMARY_BUDGET),
        n=table["seeds"].format(n=len(seeds)),
        needed=needed,
    )
