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


# ----------------------------------------------------------------------------------------------------------------------
# No English project words left in the Japanese UI ("own損失", "filter正規化", "scratch: 検証精度")

# The project's English terms a Japanese reader should never meet; proper names (MAE, RC-MAE, ViT, FT, EMA, Lanczos,
# λmax, ...) are not in the list, and code (`...`), {fields} and snake_case keys are skipped.
ENGLISH_TERMS = frozenset(
    "own filter scratch probe layer weight weights encoder decoder head loss accuracy training validation seed grid "
    "span sharpness trace flatness landscape basin none all supervised budget labels images noise verdict relative "
    "centre consistency term objective ridge linear classifier split".split()
)


def english_terms(text: str) -> set[str]:
    """The words of ENGLISH_TERMS in `text`, outside code, format fields and identifiers."""
    import re

    text = re.sub(r"`[^`]*`|\{[^}]*\}|<[^>]*>", " ", text)
    text = re.sub(r"[A-Za-z0-9*.]*_[A-Za-z0-9_*.]*", " ", text)  # snake_case keys (researchers search for them)
    return {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]*", text)} & ENGLISH_TERMS


def test_the_english_term_check_can_fail():
    assert english_terms("own損失、filter正規化") == {"own", "filter"}
    assert english_terms("scratch: 検証精度") == {"scratch"}
    assert not english_terms("RC-MAEとMAE、centre_loss: `python -m core probe CKPT`、{loss}損失")


def test_japanese_tables_have_no_english_project_words():
    from core.report.i18n import _SURFACE_METRICS, FIGURE_PHRASES_JA, FIGURE_WHOLE_JA, JA

    tables = {
        "JA": JA,
        "figures": FIGURE_PHRASES_JA,
        "whole figures": FIGURE_WHOLE_JA,
        "numbers": _SURFACE_METRICS["ja"],
    }
    left = {(name, k): english_terms(v) for name, table in tables.items() for k, v in table.items()}
    assert not {k: v for k, v in left.items() if v}


def test_japanese_text_built_from_option_values_is_translated():
    """Captions and names filled with option values (loss, normalization, scope, kinds, measures) in Japanese."""
    from types import SimpleNamespace

    from core.report.i18n import surface_caption, t
    from core.report.naming import ACCURACY_MEASURES, accuracy_name

    for loss in ("own", "pretrain", "supervised", "probe"):
        for norm in ("filter", "layer", "weight", "none"):
            for scope in ("all", "encoder", "decoder", "head"):
                for ignore, terms in (("biasbn", "full"), ("none", "mae")):
                    spec = SimpleNamespace(
                        grid=5,
                        dim=2,
                        span=1.0,
                        samples=64,
                        seed=0,
                        mask_seed=0,
                        loss=loss,
                        norm=norm,
                        ignore=ignore,
                        scope=scope,
                        rcmae_terms=terms,
                    )
                    cap = surface_caption(spec, "ja")
                    assert not english_terms(cap), cap
    for kind in ("mae", "rcmae", "scratch"):
        assert not english_terms(t(f"gen.kind.{kind}", "ja"))
    for m in ACCURACY_MEASURES:
        for kind in ("mae", "sup"):
            assert not english_terms(accuracy_name(m, "ja", n=128, kind=kind))
