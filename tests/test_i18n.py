"""Names and phrases outside the page text tables: landscape number names and figure phrases."""

import numpy as np

from core.geometry.surface_metrics import surface_metrics
from core.report.i18n import figure_text, surface_metric_name


def test_every_landscape_number_has_a_readable_name_in_both_languages():
    xs = np.linspace(-1, 1, 9)
    keys = surface_metrics(xs, xs, np.add.outer(xs**2, xs**2) + 1).to_dict().keys()
    for key in keys:
        if key.startswith("basin_at_edge"):
            continue  # flags, not shown in the numbers table
        en, ja = surface_metric_name(key, "en"), surface_metric_name(key, "ja")
        assert en.endswith(f"({key})") and ja.endswith(f"({key})"), key
        assert en != f"({key})" and not ja.split(" (")[0].isascii(), (key, ja)
    assert surface_metric_name("something_new", "ja") == "something_new"


def test_figure_text_replaces_longest_phrases_first_and_leaves_english_alone():
    text = "Loss landscape: loss increase over the centre (L - L(centre))"
    assert figure_text(text, "en") == text
    assert figure_text(text, "ja") == "損失地形: 中心からの損失の増加 (L - L(中心))"
    assert figure_text("loss", "ja") == "損失" and figure_text("MAE · seed 0", "ja") == "MAE · seed 0"
