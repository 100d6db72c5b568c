"""What things are called: one name per accuracy measure, the function a panel draws, the fields that tell cache
entries apart, and the dashboard's wording of core's CLI errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.report.i18n import t
from core.report.naming import (
    ACCURACY_MEASURES,
    accuracy_name,
    distinguishing_fields,
    function_family,
    gui_error,
)


def test_each_accuracy_measure_has_its_own_name_with_its_images():
    names = {m: accuracy_name(m, "en", n=128) for m in ACCURACY_MEASURES}
    assert len(set(names.values())) == len(ACCURACY_MEASURES)  # never one name for two measures
    assert "whole validation split" in names["linear_probe"] and "ridge" in names["ridge_training"]
    assert "128 images" in names["clean_on_n"]
    assert "classifier" in accuracy_name("linear_probe", "en", kind="sup")
    assert accuracy_name("linear_probe", "ja") != names["linear_probe"]
    with pytest.raises(ValueError, match="unknown accuracy measure"):
        accuracy_name("probe", "en")


def spec(loss: str = "own", terms: str = "full") -> SimpleNamespace:
    return SimpleNamespace(loss=loss, rcmae_terms=terms)


def test_function_family_puts_rcmae_mae_term_with_mae_and_its_full_objective_apart():
    assert function_family("mae", spec()) == function_family("rcmae", spec(terms="mae")) == "mse"
    assert function_family("rcmae", spec()) == function_family("rcmae", spec("pretrain")) == "mse_consistency"
    assert function_family("sup", spec()) == "ce"
    assert function_family("mae", spec("probe")) == function_family("sup", spec("probe")) == "probe"


def test_distinguishing_fields_name_only_what_differs():
    a = {"grid": 17, "loss": "own", "rcmae_terms": "full", "checkpoint": "x"}
    b = {"grid": 17, "loss": "own", "rcmae_terms": "mae", "checkpoint": "y"}
    c = {"grid": 17, "loss": "own", "scope": "head", "checkpoint": "z"}
    assert distinguishing_fields([a, b], skip=("checkpoint",)) == [{"rcmae_terms": "full"}, {"rcmae_terms": "mae"}]
    got = distinguishing_fields([a, c], skip=("checkpoint",))
    assert got == [{"rcmae_terms": "full", "scope": None}, {"rcmae_terms": None, "scope": "head"}]
    assert distinguishing_fields([a, dict(a)]) == [{}, {}]


def test_gui_errors_name_the_controls_not_command_line_flags():
    from core.errors import LandscapeError
    from core.models.objectives import resolve_loss

    lines = []
    for kind, loss in (("sup", "pretrain"), ("mae", "supervised"), ("mae", "probe")):
        with pytest.raises(LandscapeError) as e:
            resolve_loss(kind, loss)
        lines.append(str(e.value))
    assert any("--loss" in x for x in lines)  # the CLI keeps its wording
    for lang in ("en", "ja"):
        for line in lines:
            text = gui_error(line, lang)
            assert "--" not in text and "python -m" not in text, text
    assert t("loss.supervised", "en") in gui_error(lines[0], "en")
    assert gui_error("--seeds must be at least 1") == "the 'seeds' setting must be at least 1"
    assert gui_error("a plain error") == "a plain error"
