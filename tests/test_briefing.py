"""The stakeholder briefing: short sentences and the meeting sentence are composed from the verdicts (a changed
measurement changes them), stay within the length limits in both languages over many combinations, use the
fine-tuning measurement when the facts carry it (and say so when they do not), say what would settle an inconclusive
point; the HTML export is self-contained, holds every figure, and is in the chosen language; the CLI."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from core.report.briefing import MAX_CHARS, MAX_WORDS, compose, generalization_verdict, within_limit
from core.report.summary import ModelFacts

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
CONTEXT = {"preset": "micro", "epochs": 3, "data": "synthetic"}


def _rob(drop: float, sigmas=(0.0, 0.1, 0.3)) -> dict:
    return {"sigmas": list(sigmas), "acc_mean": [0.8, 0.8 - drop / 2, 0.8 - drop], "acc_std": [0.0, 0.01, 0.01]}


def _model(kind: str, times=(2.0, 2.1, 1.9), flat: float = 1.0, function: str = "", **kw) -> ModelFacts:
    base = dict(
        label=f"{kind}{'@' + function if function else ''}",
        kind=kind,
        params_deployed=212_000,
        params_training=800_000 if kind == "rcmae" else 400_000,
        flops_per_image=1_200_000,
        latency_ms=(0.40, 0.02),
        epoch_times=tuple(times),
        probe_acc=0.6,
        top_eigenvalue=10.0 * flat,
        trace=100.0 * flat,
        sharpness=0.02 * flat,
        robustness=_rob(0.1 * flat),
        basin_width=0.5 / flat,
        centre_loss=1.0,
        function=function,
    )
    return ModelFacts(**(base | kw))


def _facts(cost=(2.4, 2.35, 2.45), rc_flat=0.5, sup_flat=3.0, inf: dict | None = None, gen: dict | None = None):
    """The first-run job's facts: MAE, RC-MAE (own objective and MAE term), Sup-ViT, optional fine-tuning."""
    inf = inf or {}
    rc = _model("rcmae", cost, flat=2.0, **inf)  # its full objective: not what is compared
    out = {
        "rcmae": rc,
        "mae": _model("mae"),
        "sup": _model("sup", flat=sup_flat),
        "rcmae@rcmae_mae": replace(
            rc,
            label="rc-term",
            function="rcmae_mae",
            top_eigenvalue=10.0 * rc_flat,
            trace=100.0 * rc_flat,
            sharpness=0.02 * rc_flat,
            robustness=_rob(0.1 * rc_flat),
            basin_width=0.5 / rc_flat,
        ),
    }
    if gen is not None:
        out["generalization"] = gen
    return out


def _gen(scratch=(0.70, 0.72, 0.71), mae=(0.80, 0.82, 0.81), rcmae=(0.84, 0.85, 0.83)) -> dict:
    n = len(scratch)
    return {
        "labels_per_class": 10,
        "seeds": list(range(n)),
        "val_acc": {"scratch": list(scratch), "mae": list(mae), "rcmae": list(rcmae)},
        "gap_acc": {"scratch": [0.2] * n, "mae": [0.1] * n, "rcmae": [0.08] * n},
        "epochs": 20,
        "steps": 200,
        "data": "digits",
        "note": "pre-training used all training images without labels",
    }


def _sentences(text: str, lang: str) -> int:
    if lang == "ja":
        return text.count("。")
    return len([s for s in re.split(r"(?<=[.!?:])\s+(?=[A-Z])", text) if s.strip()])


# --------------------------------------------------------------------------------------------------------------------
# Composed from the verdicts


def test_short_sentences_and_headlines_follow_the_measurements():
    slower = compose(_facts(cost=(2.4, 2.35, 2.45)), "en", CONTEXT).points[0]
    faster = compose(_facts(cost=(1.5, 1.55, 1.45)), "en", CONTEXT).points[0]
    same = compose(_facts(cost=(2.0, 2.2, 1.8)), "en", CONTEXT).points[0]
    assert (slower.verdict, faster.verdict, same.verdict) == ("supports", "contradicts", "inconclusive")
    assert "20.0% slower" in slower.short and "2.00x the parameters" in slower.short
    assert "faster" in faster.short and "no extra training cost" in faster.short
    assert "within the measurement spread" in same.short
    assert slower.headline.value == "1.20x" and slower.headline.spread.startswith("95% interval ± 0.")
    assert slower.headline.delta == "+20.0% vs MAE"
    # a different measurement, a different number in the sentence
    other = compose(_facts(cost=(2.6, 2.55, 2.65)), "en", CONTEXT).points[0]
    assert other.short != slower.short and "30.0% slower" in other.short
    # inference: a bigger deployed encoder changes verdict, sentence and headline delta
    big = compose(_facts(inf={"params_deployed": 424_000, "flops_per_image": 2_400_000}), "en").points[2]
    assert big.verdict == "contradicts" and "2.00x MAE's parameters" in big.short


def test_meeting_sentence_follows_the_verdicts_in_both_languages():
    good = compose(_facts(gen=_gen()), "en", CONTEXT)
    assert [p.verdict for p in good.points] == ["supports"] * 3
    assert "a little more training cost (20.0% per epoch)" in good.meeting
    assert "better accuracy after fine-tuning" in good.meeting and "the same inference cost" in good.meeting
    assert "Not settled" not in good.meeting and "contradict" not in good.meeting
    # stability not clear (RC-MAE on MAE's loss as sharp as MAE's, no fine-tuning): said plainly
    open_ = compose(_facts(rc_flat=1.0), "en", CONTEXT)
    assert open_.points[1].verdict == "inconclusive"
    assert "cannot confirm" in open_.meeting and "Not settled yet: stability" in open_.meeting
    # contradicted: the supervised ViT flatter than MAE and RC-MAE sharper than MAE
    against = compose(_facts(rc_flat=2.0, sup_flat=0.3), "en", CONTEXT)
    assert against.points[1].verdict == "contradicts"
    assert "contradict the claim on stability" in against.meeting and "point the other way" in against.meeting
    ja = compose(_facts(rc_flat=2.0, sup_flat=0.3), "ja", CONTEXT)
    assert "逆" in ja.meeting and JAPANESE.search(ja.meeting)
    assert ja.meeting != compose(_facts(gen=_gen()), "ja", CONTEXT).meeting


def test_generalization_uses_fine_tuning_when_present_and_says_when_absent():
    absent = compose(_facts(), "en", CONTEXT).points[1]
    assert absent.title == "Stability (flatness)"
    assert "Fine-tuning is not measured yet" in absent.details[0]
    present = compose(_facts(gen=_gen()), "en", CONTEXT).points[1]
    assert present.title == "Generalization" and present.verdict == "supports"
    assert present.numbers["rcmae_vs_scratch_pts"] == pytest.approx(13.0)
    assert present.headline.value == "84.0%" and present.headline.spread == "± 1.0 (std over seeds)"
    assert present.headline.delta == "+13.0 pts vs scratch"
    assert "10 labels per class" in present.short and "84.0%" in present.short
    assert any("Flatness on one function" in d for d in present.details)  # the flatness verdict stays one click away
    assert any("pre-training used all training images" in d for d in present.details)
    # from scratch better: contradicts, and the sentence says so
    worse = compose(_facts(gen=_gen(scratch=(0.9, 0.91, 0.92))), "en", CONTEXT).points[1]
    assert worse.verdict == "contradicts" and "from scratch did better" in worse.short
    # one seed: the tolerance decides, the reason names the missing spread
    one = _gen(scratch=(0.80,), mae=(0.81,), rcmae=(0.82,))
    p = compose(_facts(gen=one), "en", CONTEXT).points[1]
    assert p.verdict == "inconclusive" and "One seed per model" in p.why
    verdict, numbers = generalization_verdict(_gen())
    assert verdict == "supports" and numbers["mae_vs_scratch"] == "better"


def test_why_inconclusive_says_what_would_settle_it_with_the_numbers_at_hand():
    cost = compose(_facts(cost=(2.1, 2.3, 1.9)), "en", CONTEXT).points[0]
    assert cost.verdict == "inconclusive"
    assert "times as many epochs" in cost.why and "3 timed epochs" in cost.why
    one = compose(_facts(cost=(2.0,)), "en", CONTEXT).points[0]
    assert one.verdict in ("supports", "inconclusive")
    if one.verdict == "inconclusive":
        assert "Only one epoch" in one.why
    flat = compose(_facts(rc_flat=1.02), "en", CONTEXT).points[1]
    assert flat.verdict == "inconclusive"
    assert "seeds" in flat.why and "micro ViT, 3 epochs, synthetic data" in flat.why and "1600 epochs" in flat.why
    gen = compose(_facts(gen=_gen(rcmae=(0.70, 0.78, 0.74))), "en", CONTEXT).points[1]
    assert gen.verdict == "inconclusive" and "seeds would resolve" in gen.why
    assert compose(_facts(gen=_gen()), "en", CONTEXT).points[1].why == ""  # settled: nothing to add
    ja = compose(_facts(rc_flat=1.02), "ja", CONTEXT).points[1]
    assert "シード" in ja.why


def test_lengths_stay_within_the_limits_over_many_combinations():
    costs = [(2.4, 2.35, 2.45), (1.5, 1.55, 1.45), (2.0, 2.2, 1.8), (2.0,), (123.4, 120.1, 125.9)]
    flats = [(0.5, 3.0), (1.0, 1.0), (2.0, 0.3), (0.5, 0.3)]
    infs = [
        {},
        {"params_deployed": 424_000, "flops_per_image": 2_400_000},
        {"latency_ms": (0.9, 0.02)},
        {"latency_ms": (float("nan"), float("nan"))},
    ]
    gens = [
        None,
        _gen(),
        _gen(scratch=(0.9, 0.91, 0.92)),
        _gen(rcmae=(0.70, 0.78, 0.74)),
        _gen((0.8,), (0.81,), (0.82,)),
    ]
    n = 0
    for (cost, (rc, sup), inf, gen), lang in itertools.product(
        itertools.product(costs, flats, infs, gens), ("en", "ja")
    ):
        b = compose(_facts(cost, rc, sup, inf, gen), lang, CONTEXT)
        for p in b.points:
            assert within_limit(p.short, lang), (lang, p.key, p.short)
            assert (JAPANESE.search(p.short) is not None) == (lang == "ja"), p.short
        assert 1 <= _sentences(b.meeting, lang) <= 2, b.meeting
        n += 1
    assert n == len(costs) * len(flats) * len(infs) * len(gens) * 2
    # the limits are what the issue asks
    assert (MAX_WORDS, MAX_CHARS) == (25, 60)


def test_missing_models_say_not_measured():
    b = compose({"sup": _model("sup")}, "en")
    assert [p.measured for p in b.points] == [False, False, False]
    assert "not measured yet" in b.points[0].short and "not measured" in b.meeting
    with pytest.raises(Exception, match="language"):
        compose({}, "fr")


# --------------------------------------------------------------------------------------------------------------------
# The export


@pytest.fixture(scope="module")
def prepared_result(dashboard_cache: Path):
    """The first-run job's result on the session's prepared quick cache (everything replays from the cache)."""
    from core.app.briefing_html import _LoggingContext
    from core.app.first_run import prepare_defaults_task
    from core.app.profiles import dashboard_profile

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
        mp.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
        return prepare_defaults_task(dashboard_profile("quick"))(_LoggingContext(lambda m: None, "en"))


def _outside_plotly(text: str) -> str:
    import plotly.offline

    js = plotly.offline.get_plotlyjs()
    assert text.count(js) == 1, "plotly.js is inlined exactly once, verbatim"
    return text.replace(js, "")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_html_is_self_contained_holds_every_figure_and_is_in_the_language(
    prepared_result, dashboard_cache, lang, monkeypatch
):
    from core.app.briefing_html import briefing_figures, briefing_html
    from core.report.i18n import t

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
    res = prepared_result
    text = briefing_html(res, lang, date="2026-12-01 12:00 UTC")
    rest = _outside_plotly(text)
    # nothing is fetched: no URL at all outside the (unmodified) plotly.js library, no src / href attributes
    assert not re.search(r"https?://|//cdn|url\(", rest, re.I), re.findall(r".{40}https?://.{40}", rest)
    assert not re.search(r"\s(src|href)\s*=", rest, re.I)
    # every figure the Overview draws, with its data
    figs = briefing_figures(res, lang)
    assert [k for k, _ in figs] == ["landscapes", "same-function", "robustness"]
    assert re.findall(r'data-figure="([^"]+)"', rest) == [k for k, _ in figs]
    assert rest.count("Plotly.newPlot(") == len(figs)
    contours = [sum(tr.type == "contour" for tr in f.data) for _, f in figs]
    assert contours == [3, 2, 0]  # the trio, then MAE vs RC-MAE on one function, then the robustness curves
    for _, f in figs:  # each figure's own (localized) title is embedded with it
        title = f.layout.title.text
        assert json.dumps(title)[1:-1] in rest, title
        assert (JAPANESE.search(title) is not None) == (lang == "ja"), title
    # the language, the date, the models, the data, the code version
    assert f'<html lang="{lang}">' in rest
    assert t("overview.title", lang) in rest and "2026-12-01 12:00 UTC" in rest
    for kind in ("mae", "rcmae", "sup"):
        assert Path(res.paths[kind]).name in rest
    assert "synthetic" in rest and "0.1" in rest  # data spec, code version
    verdicts = [t(f"verdict.{v}", lang) for v in ("supports", "contradicts", "inconclusive")]
    assert sum(rest.count(v) for v in verdicts) >= 3
    if lang == "ja":
        assert "会議でのひとこと" in rest and "Say it in the meeting" not in rest
    else:
        assert not JAPANESE.search(rest), JAPANESE.findall(rest)[:10]
    assert "@media print" in rest


def test_cli_writes_the_briefing_and_prints_its_path_last(dashboard_cache, tmp_path, monkeypatch, capsys):
    from core.app.cli import main

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    out = tmp_path / "brief.html"
    assert main(["briefing", "--lang", "ja", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert cap.out.strip().splitlines()[-1] == str(out)
    assert "ready" in cap.err and "[100%]" in cap.err  # progress on stderr
    text = out.read_text(encoding="utf-8")
    assert '<html lang="ja">' in text and "会議でのひとこと" in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--lang", "fr"], "unknown language 'fr'"),
        (["--out", "/nonexistent-folder/b.html"], "does not exist"),
        (["--out", "brief.pdf"], "must end in .html"),
    ],
)
def test_cli_errors_are_one_line(args, expected, tmp_path, monkeypatch, capsys):
    from core.app.cli import main

    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["briefing", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "cache").exists()  # refused before any work


def test_cli_refuses_a_folder_it_cannot_write(tmp_path, monkeypatch, capsys):
    import os

    from core.app.cli import main

    if os.geteuid() == 0:
        folder = tmp_path / "a-file"
        folder.write_text("x")  # a file where the folder should be
        target = folder / "b.html"
    else:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o500)
        target = folder / "b.html"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["briefing", "--out", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write") and "\n" not in err
