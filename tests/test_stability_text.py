"""The Overview's stability sentence follows the verdict of the paired rule."""

from __future__ import annotations

from core.report.stability_text import primary_budget, stability_sentence, stability_verdict


def facts(pre: float, scratch: float, n: int = 6, rc: float = 0.01) -> dict:
    wobble = [0.01 * ((i % 3) - 1) for i in range(n)]
    return {
        "labels_per_class": 10,
        "seeds": list(range(n)),
        "relative_drop": {
            "mae": [pre + w for w in wobble],
            "rcmae": [pre + rc + w for w in wobble],
            "scratch": [scratch + w * (0.5 if rc else -1) for w in wobble],
        },
    }


def test_sentence_follows_the_verdict():
    good, bad, same = facts(0.05, 0.30), facts(0.30, 0.05), facts(0.10, 0.10, n=12, rc=0.0)
    drops = {k: dict(enumerate(v)) for k, v in good["relative_drop"].items()}
    assert stability_verdict(drops).verdict == "reproduced"
    en = stability_sentence(good, "en")
    assert "more stable" in en and "95%" in en and "70%" in en and "10 labels per class" in en
    assert "6 seed(s)" in en
    assert "安定" in stability_sentence(good, "ja") and "6シード" in stability_sentence(good, "ja")
    assert "did not make them more stable" in stability_sentence(bad, "en")
    assert "no difference larger than 3 points" in stability_sentence(same, "en")
    one = facts(0.05, 0.30, n=1)
    assert "not decided yet" in stability_sentence(one, "en")
    assert "not measured yet" in stability_sentence(None, "en") and "まだ測定" in stability_sentence({}, "ja")
    assert primary_budget((5, 10, None)) == 10 and primary_budget((4, None)) == 4 and primary_budget((None,)) is None
