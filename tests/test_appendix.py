"""Tests for core/report/appendix.py: every number a briefing point holds gets a label in words and a value with its
unit, in English and Japanese; readings become the verdict's words and a missing value says so."""

from __future__ import annotations

import math
import re

import pytest
from test_briefing import CONTEXT, _facts, _gen

from core.report.appendix import appendix_rows, label_of, unknown_keys, value_text
from core.report.briefing import compose

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_number_of_every_point_is_labelled_in_words(lang):
    rounds = {"rcmae_ms": [1.0, 1.1, 0.9, 1.05], "mae_ms": [1.0, 1.0, 1.0, 1.0]}
    b = compose(_facts(gen=_gen()) | {"latency_pair": rounds}, lang, CONTEXT)
    for p in b.points:
        assert unknown_keys(p.numbers) == [], p.key
        rows = appendix_rows(p.numbers, lang)
        assert len(rows) == len(p.numbers)
        for label, value in rows:
            assert not SNAKE.search(label) and not SNAKE.search(value), (label, value)
            assert "nan" not in value.lower()


def test_values_carry_their_units_and_missing_values_are_said():
    assert label_of("rcmae_vs_mae_top_eigenvalue") == ("RC-MAE vs MAE: top Hessian eigenvalue, ratio", "x")
    assert label_of("mae_vs_scratch_lo_pts")[1] == "pts"
    assert label_of("something_new") is None and unknown_keys({"something_new": 1.0}) == ["something_new"]
    assert value_text(1.234, "x") == "1.23×" and value_text(1.234, "x", "ja") == "1.23倍"
    assert value_text(-2.5, "pts") == "-2.5 pts" and value_text(0.815, "acc") == "81.5%"
    assert value_text(math.nan, "x") == "not measured" and value_text(None, "n", "ja") == "未測定"
    assert value_text("supports", "") == "supports the claim" and value_text("top_eigenvalue", "").startswith("top")
