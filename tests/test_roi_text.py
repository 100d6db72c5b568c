"""Tests for core.report.roi_text: the Overview's ROI sentence says what the data says, in English and Japanese."""

from __future__ import annotations

import math

from core.report import roi_sentence


def _rung(epochs: int, gain: float, lo: float, hi: float, reading: str, n: int = 8) -> dict:
    return {
        "epochs": epochs, "wall_s": 2.0 * epochs, "gain": gain, "lo": lo, "hi": hi, "n": n, "reading": reading,
        "rc_gain": -0.5, "rc_lo": -2.0, "rc_hi": 1.0, "rc_reading": "no meaningful difference",
    }  # fmt: skip


def _facts(*rungs: dict) -> dict:
    return {"budget": 10, "rungs": list(rungs), "teacher": {"ratio": 1.31, "lo": 1.25, "hi": 1.38, "n": 8}, "seeds": 8}


def test_the_sentence_follows_the_readings():
    s = roi_sentence(
        _facts(
            _rung(30, 1.2, -3.0, 5.4, "undetermined"),
            _rung(100, 0.4, -1.0, 1.8, "no meaningful difference"),
            _rung(300, 22.5, 18.0, 27.0, "supports"),
        )
    )
    assert "30 epochs (60 s here) left the gain with 10 labels per class undetermined (+1.2 points [-3.0, 5.4])" in s
    assert "100 epochs (3.3 min here) gave no gain measured" in s
    assert "300 epochs (10.0 min here) lifted accuracy with 10 labels per class by +22.5 points [18.0, 27.0]" in s
    assert (
        "teacher cost ×1.31 [1.25, 1.38]" in s and "at 300 epochs by -0.5 [-2.0, 1.0] points" in s and "8 seed(s)" in s
    )
    worse = roi_sentence(_facts(_rung(30, -5.0, -8.0, -2.0, "contradicts")))
    assert "lowered accuracy with 10 labels per class by 5.0 points" in worse
    one = roi_sentence(_facts(_rung(30, 3.0, math.nan, math.nan, "undetermined", n=1)))
    assert "(1 seed)" in one
    ja = roi_sentence(_facts(_rung(300, 22.5, 18.0, 27.0, "supports")), "ja")
    assert "押し上げた" in ja and "RC-MAEの教師" in ja and "+22.5" in ja
    assert roi_sentence(None) == "" and roi_sentence({"rungs": []}) == ""
