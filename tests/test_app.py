"""The dashboard under `streamlit.testing.v1.AppTest`: every page with an empty cache and with a small prepared one.

The empty-cache tests run with `LANDSCAPE_JOB_WORKERS=0` (jobs queue, nothing trains), so they check the
"preparing" state without waiting for training. The prepared cache holds the session's micro checkpoints
(tests/conftest.py `dashboard_cache`: the quick profile's micro models, probes, 5x5 landscapes and light flatness
numbers, prepared once per session).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.proto.Metric_pb2 import Metric as MetricProto
from streamlit.testing.v1 import AppTest

from core.report.i18n import EN, JA, placeholders

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGES = ("overview", "models", "landscapes", "flatness", "whatif", "runs")
WAIT_S = 60.0


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")  # tests/conftest.py


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(root))
    monkeypatch.setenv("LANDSCAPE_JOB_WORKERS", "0")  # jobs queue, nothing runs
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    return root


@pytest.fixture
def prepared(dashboard_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(dashboard_cache))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    monkeypatch.delenv("LANDSCAPE_JOB_WORKERS", raising=False)
    return dashboard_cache


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page != "overview":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_idle(at: AppTest, timeout: float = WAIT_S) -> AppTest:
    """Let the background jobs finish, then rerun the script (what the polling fragment does in a browser)."""
    from pages._ui import registry

    deadline = time.monotonic() + timeout
    for job in registry().jobs():
        job.wait(max(0.1, deadline - time.monotonic()))
    assert all(not j.active for j in registry().jobs()), [(j.label, j.status) for j in registry().jobs()]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[dict]:
    """The figure JSON of every plotly chart on the page."""
    import json

    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(v) -> list:
    """A figure array as a list: plotly may encode arrays as {"dtype", "bdata" (base64)}."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def trace_types(fig: dict) -> list[str]:
    return [tr.get("type", "scatter") for tr in fig["data"]]


def texts(at: AppTest) -> str:
    """All markdown, captions, titles, headers and alert texts of the page, joined."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success", "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def button(at: AppTest, label: str):
    """The (form submit) button with this label."""
    found = [b for b in at.button if b.label == label]
    assert found, [b.label for b in at.button]
    return found[0]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# ----------------------------------------------------------------------------------------------------------------------
# i18n


def test_every_key_has_both_languages_with_the_same_fields():
    assert set(EN) == set(JA), (sorted(set(EN) - set(JA)), sorted(set(JA) - set(EN)))
    for key in EN:
        assert placeholders(EN[key]) == placeholders(JA[key]), key


def test_every_key_used_by_the_pages_exists():
    import re

    used = set()
    for f in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        used |= set(re.findall(r"""\btr\(\s*["']([a-z_]+\.[a-z_0-9]+)["']\s*[,)]""", f.read_text()))
        used |= set(re.findall(r"""\bmsg\(\s*["']([a-z_]+\.[a-z_0-9]+)["']\s*[,)]""", f.read_text()))
    jobs_src = "".join(p.read_text() for p in sorted((ROOT / "core" / "app").glob("*.py")))
    used |= set(re.findall(r"""\bmsg\(\s*["']([a-z_]+\.[a-z_0-9]+)["']\s*[,)]""", jobs_src))
    assert used, "found no keys: the pattern is broken"
    missing = sorted(k for k in used if k not in EN)
    assert not missing, missing


def test_job_messages_render_in_the_readers_language():
    from core.report.i18n import msg, render_message, t

    m = msg("job.flatness", model="RC-MAE", stage="trace", done=3, total=32)
    assert render_message(m, "en") == "flatness of RC-MAE: Hessian trace (3/32)"
    assert render_message(m, "ja") == "RC-MAEの平坦さ: ヘッセ行列のトレース(3/32)"
    assert render_message("plain text from elsewhere", "ja") == "plain text from elsewhere"
    assert render_message("", "en") == ""
    assert render_message("unknown.key|{}", "en") == "unknown.key|{}"
    assert render_message(msg("job.train", model="MAE"), "en") == EN["job.train"]  # missing args: the template
    assert t("no.such.key", "ja") == "no.such.key"
    assert t("nav.models", "fr") == EN["nav.models"]


# ----------------------------------------------------------------------------------------------------------------------
# Empty cache: nothing trains (no workers); every page says what is going on


def test_empty_cache_overview_shows_preparing_and_queues_one_job(empty_cache: Path):
    at = open_page("overview")
    assert EN["overview.preparing"] in texts(at)
    from pages._ui import registry

    jobs = registry().jobs()
    assert [j.status for j in jobs] == ["queued"]  # one job, waiting
    assert jobs[0].key.startswith("prepare-defaults:")
    # The sidebar lists it (rendered after the page, so the page's own job is already there).
    assert any(EN["label.prepare"] in c.value for c in at.sidebar.caption), [c.value for c in at.sidebar.caption]
    # A rerun (another session, a page switch) shares the job instead of adding one.
    at.run()
    at2 = AppTest.from_file(APP, default_timeout=60).run()
    assert not at2.exception
    assert len(registry().jobs()) == 1
    # The stage checklist is shown.
    assert EN["stage.train"] in texts(at)


def test_overview_failed_preparation_shows_one_line_and_retries(empty_cache: Path, monkeypatch: pytest.MonkeyPatch):
    from dataclasses import asdict

    from core.app.profiles import dashboard_profile, default_trio, task_key
    from core.errors import LandscapeError
    from pages._ui import registry

    monkeypatch.setenv("LANDSCAPE_JOB_WORKERS", "1")
    profile = dashboard_profile()
    key = task_key("prepare-defaults", asdict(profile), [c.key() for c in default_trio(profile).values()])

    def broken(ctx):
        raise LandscapeError("the digits data could not be read\nsecond line")

    reg = registry()  # the app's singleton (the same object the script sees)
    reg.submit(key, "label.prepare|{}", broken).wait(WAIT_S)
    at = open_page("overview")
    errs = errors(at)
    assert len(errs) == 1 and errs[0].endswith("the digits data could not be read"), errs
    retry = button(at, EN["overview.retry"])
    retry.click().run()
    assert not at.exception
    job = reg.get(key)
    assert job.status in ("queued", "running")  # a fresh job replaced the failed one
    reg.cancel(key)  # do not train for real in a test
    assert job.wait(WAIT_S) and job.status == "cancelled"


@pytest.mark.parametrize("page", PAGES[1:])
def test_empty_cache_other_pages(empty_cache: Path, page: str):
    at = open_page(page)
    body = texts(at)
    expected = {
        "models": EN["models.none"],
        "landscapes": EN["common.no_models"],
        "flatness": EN["common.no_models"],
        "whatif": EN["common.no_models"],
        "runs": EN["runs.empty"],
    }[page]
    assert expected in body
    assert not errors(at)


def set_lang(at: AppTest, code: str) -> AppTest:
    """Switch the language. The sidebar radio is used when the harness shows it; AppTest (1.67) drops the
    entrypoint's sidebar elements from its tree after the first run of an st.navigation app, so later switches set
    the same session keys the radio's callback sets."""
    radios = [r for r in at.sidebar.radio if r.key == "lang_switch"]
    if radios:
        return radios[0].set_value(code).run()
    at.session_state["lang"] = code
    at.session_state["lang_switch"] = code
    return at.run()


def test_language_switch_changes_all_text(empty_cache: Path):
    at = open_page("overview")
    assert at.title[0].value == EN["overview.title"]
    assert [r.key for r in at.sidebar.radio] == ["lang_switch"]
    at.sidebar.radio[0].set_value("ja").run()  # the real widget
    assert not at.exception
    assert at.title[0].value == JA["overview.title"]
    assert JA["overview.preparing"] in texts(at)
    assert EN["overview.preparing"] not in texts(at)
    assert JA["stage.train"] in texts(at)
    set_lang(at, "en")
    assert at.title[0].value == EN["overview.title"]
    assert EN["stage.train"] in texts(at)
    # The language sticks across pages, widgets' option labels included.
    set_lang(at, "ja")
    at.switch_page("pages/runs.py").run()
    assert at.title[0].value == JA["runs.title"]
    assert at.radio(key="runs.kind").options[0] == JA["runs.kind_landscape"]


def test_models_page_refuses_paths_outside_the_allowed_roots(empty_cache: Path, tmp_path: Path):
    outside = tmp_path.parent / "elsewhere.pt"
    at = open_page("models")
    at.text_input[0].set_value(str(outside))
    button(at, EN["models.inspect"]).click().run()
    assert not at.exception
    errs = errors(at)
    assert errs and "outside the allowed folders" in errs[0]
    assert "\n" not in errs[0] and "Traceback" not in errs[0]
    # The error stays until the user acts: a rerun (a background job finishing reruns the page) keeps it.
    at.run()
    assert errors(at) == errs


# ----------------------------------------------------------------------------------------------------------------------
# Prepared cache


def test_overview_prepared(prepared: Path):
    at = wait_idle(open_page("overview"))
    assert EN["overview.preparing"] not in texts(at)
    figs = charts(at)
    land = [f for f in figs if "contour" in trace_types(f)]
    assert land, [trace_types(f) for f in figs]
    assert trace_types(land[0]).count("contour") == 3  # MAE, RC-MAE, Sup-ViT side by side
    titles = [a["text"] for a in land[0]["layout"]["annotations"]]
    assert any("MAE" in x for x in titles) and any("Sup-ViT" in x for x in titles)
    # The caption states the approximation.
    assert any("5x5 grid" in a["text"] and "direction seed 0" in a["text"] for a in land[0]["layout"]["annotations"])
    # The briefing: the question, the four points of the chain (training cost, flatness, generalization, inference)
    # each with a verdict badge naming its claim, a sentence and its numbers (both pre-trained kinds against scratch;
    # the full measured text and its table one click away), the meeting sentence with a copy button, the export.
    from core.report.briefing import T as BRIEF

    assert BRIEF["en"]["question"] in texts(at)
    # the first-run job measured fine-tuning (core.app.generalization_tasks): flatness and generalization both show
    assert BRIEF["en"]["t_general"] in texts(at) and BRIEF["en"]["gen_missing"] not in texts(at)
    assert BRIEF["en"]["t_stab"] in texts(at)
    for key in ("cost", "stab", "general", "inf"):
        assert EN["overview.claim"].format(c=BRIEF["en"][f"claim_{key}"]) in texts(at), key
    # the stability details compare RC-MAE with MAE on one function, the full objective as a secondary line
    assert "On one function, MAE's masked-patch MSE" in texts(at) and "Secondary line, not counted" in texts(at)
    labels = [m.label for m in at.metric]
    assert len(labels) == 6, labels  # cost 1, flatness 2 (RC-MAE/MAE, MAE/Sup-ViT), generalization 2 (MAE, RC-MAE), 1
    assert "MAE fine-tuned" in labels and "RC-MAE fine-tuned" in labels
    verdicts = [EN[f"verdict.{v}"] for v in ("supports", "contradicts", "no meaningful difference", "undetermined")]
    badges = [m.value for m in at.markdown if "badge[" in m.value]  # st.badge is markdown ":color-badge[...]"
    assert len(badges) == 4 and all(any(v in b for v in verdicts) for b in badges), badges
    assert [e.label for e in at.expander][:4] == [EN["overview.details"]] * 4
    assert "_vs_" not in texts(at) and "snake" not in texts(at)  # the numbers are labelled in words
    assert at.dataframe, "the numbers behind each point"
    code = [c.value for c in at.code]
    assert len(code) == 1 and code[0].startswith("On our models, RC-MAE means"), code
    assert at.get("download_button"), "the HTML export"
    # The cached Overview is fast: a rerun draws everything from the cache.
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    print(f"cached Overview rerun: {min(times):.2f} s (best of 3; all {[round(x, 2) for x in times]})")
    assert min(times) < 2.0, times
    # Japanese: the same page, other words.
    set_lang(at, "ja")
    assert at.title[0].value == JA["overview.title"]
    assert not at.exception
    assert BRIEF["ja"]["question"] in texts(at)
    assert [c.value for c in at.code][0].startswith("私たちのモデルでは")
    ja_verdicts = [JA[f"verdict.{v}"] for v in ("supports", "contradicts", "no meaningful difference", "undetermined")]
    assert sum(texts(at).count(v) for v in ja_verdicts) >= 4


def test_overview_uses_fine_tuning_when_the_facts_carry_it(prepared: Path, monkeypatch: pytest.MonkeyPatch):
    """The generalization point reads the fine-tuning measurement when the cache holds it (the first-run job's or any
    other job's runs of the same models and recipe), and says that fine-tuning is not measured yet when it does not."""
    import core.app.first_run as first_run
    import core.app.seeds_tasks as seeds_tasks
    from core.report.briefing import T as BRIEF

    real = first_run.gather_facts

    def without(res, profile=None, *args, **kwargs):
        return {k: v for k, v in real(res, profile, *args, **kwargs).items() if k != "generalization"}

    monkeypatch.setattr(first_run, "gather_facts", without)
    monkeypatch.setattr(seeds_tasks, "generalization_facts_by_seed", lambda *a, **k: None)  # none in the cache
    at = wait_idle(open_page("overview"))
    # without fine-tuning the flatness verdict still shows, and generalization says it is not measured yet
    assert BRIEF["en"]["t_stab"] in texts(at) and BRIEF["en"]["gen_missing_short"] in texts(at)
    badges = [m.value for m in at.markdown if "badge[" in m.value]
    assert len(badges) == 4
    st.cache_data.clear()
    st.cache_resource.clear()  # a fresh registry: the first-run job replays from the cache with other facts
    gen = {
        "labels_per_class": 10,
        "seeds": [0, 1, 2],
        "val_acc": {"scratch": [0.50, 0.52, 0.51], "mae": [0.70, 0.72, 0.71], "rcmae": [0.74, 0.75, 0.73]},
        "gap_acc": {"scratch": [0.3] * 3, "mae": [0.1] * 3, "rcmae": [0.1] * 3},
        "epochs": 5,
        "steps": 50,
        "data": "synthetic",
        "note": "pre-training used all training images without labels",
    }
    monkeypatch.setattr(
        first_run, "gather_facts", lambda res, profile=None: without(res, profile) | {"generalization": gen}
    )
    at = wait_idle(open_page("overview"))  # a fresh registry: the first-run job replays with the new facts
    assert BRIEF["en"]["t_general"] in texts(at) and BRIEF["en"]["gen_missing"] not in texts(at)
    head = [m for m in at.metric if m.value.startswith("74.0%")]
    assert head and head[0].delta == "+23.0 pts vs scratch", [(m.label, m.value, m.delta) for m in at.metric]
    mae = [m for m in at.metric if m.label == "MAE fine-tuned"]
    assert mae and mae[0].value == "71.0%" and mae[0].delta == "+20.0 pts vs scratch"  # both kinds, not the better
    assert mae[0].proto.color == MetricProto.MetricColor.GREEN  # decided: coloured
    assert "better accuracy after fine-tuning" in at.code[0].value
    # MAE worse than scratch, within its interval: its delta is neutral, never green (and RC-MAE's beside it stays)
    st.cache_data.clear()
    st.cache_resource.clear()
    worse = gen | {"val_acc": gen["val_acc"] | {"mae": [0.45, 0.56, 0.49]}}
    monkeypatch.setattr(
        first_run, "gather_facts", lambda res, profile=None: without(res, profile) | {"generalization": worse}
    )
    at = wait_idle(open_page("overview"))
    mae = [m for m in at.metric if m.label == "MAE fine-tuned"]
    assert mae and mae[0].delta.startswith("-1.0 pts") and mae[0].proto.color == MetricProto.MetricColor.GRAY
    assert "MAE -1.0, RC-MAE +23.0 points" in at.code[0].value  # the meeting sentence names both


def test_overview_adds_seeds_in_the_background_and_the_verdicts_follow(
    dashboard_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """After the first run (one seed) the Overview offers more seeds; the job (shared, in the background) trains and
    measures seeds 1, 2 as the first run did seed 0, and the briefing then stands on three seeds."""
    root = tmp_path / "copy"
    shutil.copytree(dashboard_cache, root)  # the job writes models and measurements: a copy
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(root))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    at = wait_idle(open_page("overview"))
    assert EN["overview.seeds_now"].format(n=1) in texts(at)
    buttons = {b.label: b for b in at.button}
    assert set(buttons) >= {EN["overview.seeds_button"].format(n=n) for n in (3, 5, 10)}
    buttons[EN["overview.seeds_button"].format(n=3)].click().run()
    from pages._ui import registry

    assert any(j.key.startswith("add-seeds:") for j in registry().jobs())
    at = wait_idle(at, 240)
    assert EN["overview.seeds_now"].format(n=3) in texts(at), texts(at)
    assert EN["overview.seeds_button"].format(n=3) not in {b.label for b in at.button}  # 3 reached: 5 and 10 left
    # the generalization point's details now pair three seeds
    assert "seeds 0, 1, 2" in texts(at)


def test_models_prepared(prepared: Path):
    at = wait_idle(open_page("models"))
    df = at.dataframe[0].value
    assert len(df) == 3 and set(df[EN["col.kind"]]) == {"MAE", "RC-MAE", "Sup-ViT"}
    from core.app import list_checkpoints
    from pages._ui import fmt_num

    known = {i.label: fmt_num(i.probe_acc) for i in list_checkpoints()}  # the one source (see test_flatness_prepared)
    assert dict(zip(df[EN["col.model"]], df[EN["col.probe_acc"]], strict=True)) == known
    ema = dict(zip(df[EN["col.kind"]], df[EN["col.ema"]], strict=True))  # the momentum as resolved for the run
    assert ema["MAE"] == "-" and ema["RC-MAE"].startswith("auto = ") and "steps/epoch" in ema["RC-MAE"], ema
    figs = charts(at)
    assert len(figs) == 1 and trace_types(figs[0]) == ["scatter"] * 3
    y_before = figs[0]["layout"]["yaxis"]["title"]["text"]
    at.selectbox(key="models.metric").set_value("val_loss").run()
    y_after = charts(at)[0]["layout"]["yaxis"]["title"]["text"]
    assert y_before != y_after and "validation loss" in y_after
    # The describe() text of the selected checkpoint (loaded by a background job).
    at = wait_idle(at)
    assert any("parameters:" in c.value for c in at.code)


def test_models_inspect_error_is_one_line(prepared: Path):
    at = open_page("models")
    at.text_input[0].set_value(str(ROOT / "pyproject.toml"))
    button(at, EN["models.inspect"]).click().run()
    at = wait_idle(at)
    errs = errors(at)
    assert errs, texts(at)
    assert "Traceback" not in errs[-1] and "\n" not in errs[-1]


def test_landscapes_prepared_views(prepared: Path):
    at = wait_idle(open_page("landscapes"))
    assert at.multiselect(key="land.models").value  # the default trio is preselected
    figs = charts(at)
    assert trace_types(figs[0]).count("contour") == 3
    assert at.dataframe, "the landscape numbers table"
    df = at.dataframe[0].value
    assert "basin width (basin_width)" in df.index and df.shape[1] == 3  # readable names, keys kept
    assert "mean loss increase at radius 0.25 (increase_r0.25)" in df.index
    expected = {"heatmap": "heatmap", "surface": "surface", "slices": "scatter", "difference": "heatmap"}
    for view, trace in expected.items():
        at.radio(key="land.view").set_value(view).run()
        assert not at.exception, view
        types = trace_types(charts(at)[0])
        assert trace in types, (view, types)
    # The difference is one heatmap of A - B.
    assert trace_types(charts(at)[0]).count("heatmap") == 1
    # Log scale changes the plotted quantity (stated on the colour bar).
    at.radio(key="land.view").set_value("contour").run()
    at.toggle(key="land.log").set_value(True).run()
    cbar = charts(at)[0]["layout"]["coloraxis"]["colorbar"]["title"]["text"]
    assert "log10" in cbar


def test_landscapes_convexity_view(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The convexity view computes on demand in the background: a ratio heatmap with the loss contours over it per
    model, and the convex area in a table."""
    cache = tmp_path / "cache"  # the maps are written to the cache: a copy, not the shared prepared one
    shutil.copytree(prepared, cache)
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    at = wait_idle(open_page("landscapes"))
    at.multiselect(key="land.models").set_value(at.multiselect(key="land.models").value[:2])
    at = wait_idle(button(at, EN["land.go"]).click().run())  # the form's choices apply on submit
    at.radio(key="land.view").set_value("convexity").run()
    assert not at.exception and EN["land.cvx_go"] in [b.label for b in at.button]
    assert not charts(at), "nothing is computed before it is asked for"
    at.select_slider(key="land.cvx_grid").set_value(5)
    at.number_input(key="land.cvx_iter").set_value(4)
    button(at, EN["land.cvx_go"]).click().run()
    at = wait_idle(at)
    assert not errors(at), errors(at)
    fig = charts(at)[0]
    types = trace_types(fig)
    assert types.count("heatmap") == 2 and types.count("contour") == 2, types
    heat = next(t for t in fig["data"] if t["type"] == "heatmap")
    assert len(values(heat["x"])) == 5
    assert "|lambda_min / lambda_max|" in fig["layout"]["coloraxis"]["colorbar"]["title"]["text"]
    df = at.dataframe[0].value
    area = EN["land.cvx_area"].format(threshold="0.1")
    assert area in df.index and df.shape[1] == 2 and all(0.0 <= v <= 1.0 for v in df.loc[area])
    # Japanese: the same view, its words translated (figure text included).
    set_lang(at, "ja")
    assert JA["land.cvx_go"] in [b.label for b in at.button]
    assert "ヘッセ行列の |λmin / λmax|" in charts(at)[0]["layout"]["coloraxis"]["colorbar"]["title"]["text"]


def test_landscapes_recompute_1d(prepared: Path):
    at = wait_idle(open_page("landscapes"))
    at.multiselect(key="land.models").set_value(at.multiselect(key="land.models").value[:2])
    at.radio(key="land.dim").set_value(1)
    at.slider(key="land.grid").set_value(7)
    button(at, EN["land.go"]).click().run()
    at = wait_idle(at)
    fig = charts(at)[0]
    assert trace_types(fig) == ["scatter", "scatter"]  # two 1-D curves
    xs = values(fig["data"][0]["x"])
    assert len(xs) == 7 and xs[0] == pytest.approx(-0.5) and xs[-1] == pytest.approx(0.5)


def test_flatness_prepared(prepared: Path):
    at = wait_idle(open_page("flatness"))
    assert not errors(at) or all("trainable" in e for e in errors(at)), errors(at)
    figs = charts(at)
    kinds = [set(trace_types(f)) for f in figs]
    assert {"bar"} in kinds, kinds  # top eigenvalues
    assert at.dataframe
    assert EN["num.lambda_max"] in at.dataframe[0].value.columns
    # Same function: RC-MAE also on its MAE term (cached by the first-run job), compared with MAE on MAE's loss; MAE
    # vs Sup-ViT on relative numbers; RC-MAE's full objective a secondary line with its reason.
    assert any(str(x).endswith(" · MAE term") for x in at.dataframe[0].value.index)
    assert EN["flat.same"] in texts(at)
    body = texts(at)
    assert "On one function, MAE's masked-patch MSE (RC-MAE's student" in body
    assert "/ L(centre)" in body and "Secondary line, not counted" in body and "positive semi-definite" in body
    # One computation with the Overview: the basin width (MAE vs Sup-ViT's primary) read from the same landscape.
    assert "Not measured yet: basin width" not in body and "the supervised ViT, decided by the basin width" in body
    # Accuracy measures named with their images: the table's is without noise on the report's images.
    assert any("without noise" in str(c) and "images" in str(c) for c in at.dataframe[0].value.columns)
    # The flatness-vs-accuracy scatter over every cached result, and its x axis follows the control: three models
    # are shown without a correlation, and a loss-unit x over three objectives says so.
    scatter = figs[-1]
    assert "linear-probe accuracy (whole validation split)" in scatter["layout"]["yaxis"]["title"]["text"]
    assert "Pearson" not in scatter["layout"]["title"]["text"]
    # one measure, one source: the scatter's accuracy of each model is the Models page's (its checkpoint's linear
    # probe on the whole validation split, core.app.checkpoint_info)
    from core.app import list_checkpoints

    known = {i.label: i.probe_acc for i in list_checkpoints()}
    shown = {lab: y for tr in scatter["data"] for lab, y in zip(tr["text"], values(tr["y"]), strict=True)}
    assert shown and all(y == pytest.approx(known[lab]) for lab, y in shown.items()), (shown, known)
    assert "too few for a correlation" in body and "Mixed functions on the x axis" in body
    at.radio(key="flat.x").set_value("trace").run()
    assert "trace" in charts(at)[-1]["layout"]["xaxis"]["title"]["text"].lower()


def test_whatif_prepared(prepared: Path):
    at = open_page("whatif")
    assert at.selectbox(key="whatif.base").value
    assert not errors(at)
    rc = next(o for o in at.selectbox(key="whatif.base").options if o.startswith("RC-MAE"))
    at.selectbox(key="whatif.base").set_value(rc).run()
    assert at.select_slider[0].value == "auto" and any("EMA momentum: auto = " in c.value for c in at.caption)
    at.selectbox(key="whatif.base").set_value(
        next(o for o in at.selectbox(key="whatif.base").options if o.startswith("MAE"))
    ).run()
    at.number_input[0].set_value(1)  # epochs: a 1-epoch variant
    at.checkbox[0].set_value(False)  # no flatness: keep it short
    button(at, EN["whatif.go"]).click().run()
    at = wait_idle(at, timeout=120)
    fig = charts(at)[0]
    assert trace_types(fig).count("contour") == 2  # base and variant on the same directions
    assert not errors(at)


def test_runs_prepared(prepared: Path):
    at = open_page("runs")
    assert at.dataframe and len(at.dataframe[0].value) >= 3  # the landscapes
    assert len(at.get("download_button")) >= 2  # npz and CSV (and HTML for a landscape)
    at.radio(key="runs.kind").set_value("flatness").run()
    assert not at.exception and at.dataframe
    at.radio(key="runs.kind").set_value("checkpoints").run()
    assert not at.exception
    names = set(at.dataframe[0].value[EN["col.file"]])
    assert any(".probe_" in n for n in names) and len(names) >= 5


def test_landscapes_say_which_function_each_panel_is(prepared: Path):
    """RC-MAE on its MAE term by default (beside MAE: one function); mixed functions are stated, and a difference
    across two functions is refused."""
    at = wait_idle(open_page("landscapes"))
    assert at.selectbox(key="land.terms").value == "mae"
    body = texts(at)
    note = next(str(i.value) for i in at.info if str(i.value).startswith(EN["land.mixed"].split("(")[0]))
    assert "MAE term: masked-patch MSE" in note and "cross-entropy" in note and "consistency" not in note, body
    at.radio(key="land.view").set_value("difference").run()
    opts = at.selectbox(key="land.diff_b").options
    at.selectbox(key="land.diff_b").set_value(next(o for o in opts if o.startswith("Sup-ViT"))).run()
    assert "No difference across different functions" in texts(at) and not charts(at)
    at.selectbox(key="land.diff_b").set_value(next(o for o in opts if "MAE term" in o)).run()
    assert charts(at) and "No difference across" not in texts(at)  # MAE minus RC-MAE's MAE term: one function
    # Runs: the two RC-MAE landscapes read the same but for the loss terms, and say so.
    at.switch_page("pages/runs.py").run()
    what = list(at.dataframe[0].value[EN["col.what"]])
    assert any("differs in: rcmae_terms=mae" in w for w in what) and any("rcmae_terms=full" in w for w in what)


def test_runs_delete_entry(dashboard_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "copy"
    shutil.copytree(dashboard_cache, root)
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(root))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    from core.store.store import Store

    before = len(Store().list("landscape"))
    at = open_page("runs")
    assert at.button(key="runs.del_entry").disabled  # needs the confirmation first
    at.checkbox(key="runs.confirm_entry").check().run()
    at.button(key="runs.del_entry").click().run()
    assert not at.exception
    assert not errors(at), errors(at)
    assert len(Store().list("landscape")) == before - 1


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_many_sessions_on_cached_results_keep_working_and_memory_stays_bounded(prepared: Path):
    # Several sessions at once (independent AppTest instances share the process, its caches and job registry, as
    # browser sessions share a server): every one renders the cached overview with its three panels.
    sessions = [wait_idle(open_page("overview")) for _ in range(4)]
    for at in sessions:
        land = [f for f in charts(at) if "contour" in trace_types(f)]
        assert land and trace_types(land[0]).count("contour") == 3
    from pages._ui import registry

    n_jobs = len(registry().jobs())
    # Reruns of cached pages submit nothing new and do not grow memory without bound.
    at = sessions[0]
    for _ in range(5):
        at.run()
    before = _rss_bytes()
    for _ in range(20):
        at.run()
        assert not at.exception
    grown = _rss_bytes() - before
    assert len(registry().jobs()) == n_jobs
    assert grown < 60 * 2**20, f"memory grew by {grown / 2**20:.1f} MiB over 20 reruns"


def test_server_config_keeps_polling_cheap():
    """Streamlit's default full gc.collect() after every script run (each progress poll included) took ~0.2 s
    with torch and plotly loaded; four sessions watching a job on a fresh server then never settled."""
    import tomllib

    cfg = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert cfg["runner"]["postScriptGC"] is False
    assert cfg["server"]["fileWatcherType"] == "none"


def test_flatness_page_says_when_a_report_resumed(dashboard_cache: Path, tmp_path: Path, monkeypatch):
    """A report stopped midway leaves its finished steps in a journal; the page's job for the same report replays
    them and says so."""
    from core.app.profiles import default_flatness_spec
    from core.errors import LandscapeError
    from core.measure.flatness import compute_flatness
    from pages._ui import model_choices

    cache = tmp_path / "cache"
    shutil.copytree(dashboard_cache, cache)
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(cache))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    monkeypatch.delenv("LANDSCAPE_JOB_WORKERS", raising=False)
    label = next(k for k in model_choices(include_extra=False) if k.startswith("MAE"))
    path = model_choices(include_extra=False)[label]
    page_spec = default_flatness_spec(path, top_k=4, sharpness_rho=0.05, seed=0, trace=True, robustness=True)
    seen = []
    with pytest.raises(LandscapeError, match="stopped"):
        compute_flatness(
            page_spec, progress=lambda s, d, t: seen.append(s == "eigenvalues"), check_stop=lambda: sum(seen) >= 3
        )
    at = open_page("flatness")
    at.multiselect(key="flat.models").set_value([label])
    at.number_input(key="flat.top_k").set_value(4)
    button(at, EN["flat.go"]).click().run()
    at = wait_idle(at)
    shown = [c.value for c in at.caption]
    assert any(c.startswith("Resumed an interrupted computation") and f"{label}: " in c for c in shown), shown


# ----------------------------------------------------------------------------------------------------------------------
# Generalization page


def test_generalization_empty_cache_says_what_to_do(empty_cache: Path):
    at = open_page("generalization")
    assert at.title[0].value == EN["gen.title"]
    assert EN["gen.setting"] in texts(at)  # the setting is stated before any number
    assert EN["gen.none_yet"].split("{")[0] in texts(at) and EN["gen.land_need"] in texts(at)
    assert not charts(at) and not errors(at)
    set_lang(at, "ja")
    assert at.title[0].value == JA["gen.title"] and JA["gen.setting"] in texts(at)
    assert not at.exception and not errors(at)


def test_generalization_prepared_shows_the_first_run_cell_at_once(prepared: Path):
    """The first-run job fine-tuned MAE / RC-MAE and trained scratch at the quick study's smallest budget (seed 0):
    the page shows that cell without computing anything (no study job is submitted)."""
    at = wait_idle(open_page("generalization"))
    from pages._ui import registry

    assert not [j for j in registry().jobs() if j.key.startswith("generalization:")]
    assert not errors(at), errors(at)
    body = texts(at)
    from core.app.generalization_tasks import dashboard_study

    spec = dashboard_study()
    assert EN["gen.progress"].format(n=3, total=3 * spec.seeds * len(spec.budgets)) in body
    assert "Regime: synthetic (" in body and "every model 16 optimizer steps (4 epochs of 4)" in body
    figs = charts(at)
    eff = figs[0]
    assert eff["layout"]["xaxis"]["type"] == "log" and eff["layout"]["xaxis"]["ticktext"] == ["4"]
    lines = [t for t in eff["data"] if t.get("mode") == "lines+markers"]
    assert [t["name"] for t in lines] == ["MAE-FT", "RC-MAE-FT", "scratch"]
    assert any("one seed: no spread" in a["text"] for a in eff["layout"]["annotations"])
    assert "bar" in trace_types(figs[1])
    verdicts = at.dataframe[1].value
    # one seed: no interval, undetermined; the budget's row, then the mean over budgets (the same one budget)
    assert verdicts[EN["gen.col_verdict"]].tolist() == [EN["gen.v_undetermined"]] * 2
    assert verdicts[EN["gen.col_budget"]].tolist()[-1] == EN["gen.mean_budgets"]
    assert "(1 seed: no interval)" in verdicts[EN["gen.col_mae"]].tolist()[0]
    at.radio(key="gen.gap").set_value("gap_loss").run()
    assert "loss gap" in charts(at)[1]["layout"]["yaxis"]["title"]["text"]
    set_lang(at, "ja")
    assert at.title[0].value == JA["gen.title"] and not at.exception and not errors(at)
    eff = charts(at)[0]
    assert eff["layout"]["xaxis"]["title"]["text"] == "1クラスあたりのラベル数 (対数目盛)"
    assert "条件: synthetic" in texts(at)


def test_generalization_runs_the_study_then_landscapes_and_the_scatter(
    dashboard_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = tmp_path / "copy"
    shutil.copytree(dashboard_cache, root)  # the runs are written to the cache: a copy
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(root))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    at = wait_idle(open_page("generalization"))
    at.multiselect(key="gen.budgets").set_value(["4"])
    at.number_input(key="gen.seeds").set_value(1)
    at.checkbox(key="gen.flat").check()
    button(at, EN["gen.go"]).click().run()
    at = wait_idle(at, timeout=120)
    assert not errors(at), errors(at)
    figs = charts(at)
    scatter = figs[-1]
    assert [t["name"] for t in scatter["data"]] == ["MAE-FT", "RC-MAE-FT", "from scratch"]
    assert "n = 3" in scatter["layout"]["title"]["text"]
    at.radio(key="gen.sc_x").set_value("trace").run()
    assert EN["gen.num_trace"] in charts(at)[-1]["layout"]["xaxis"]["title"]["text"]
    # Fine-tuned vs from scratch on the same directions: three contour panels, supervised loss.
    button(at, EN["gen.land_go"]).click().run()
    at = wait_idle(at)
    land = [f for f in charts(at) if "contour" in trace_types(f)]
    assert land and trace_types(land[0]).count("contour") == 3, [trace_types(f) for f in charts(at)]
    notes = " ".join(a["text"] for a in land[0]["layout"]["annotations"])
    assert "scratch" in notes and f"loss: {EN['loss.supervised']}" in notes  # the option's name, not its value
    set_lang(at, "ja")
    assert not at.exception and not errors(at)
    assert "スクラッチ" in [t["name"] for t in charts(at)[-1]["data"]]


# ----------------------------------------------------------------------------------------------------------------------
# Generalization page: the pre-training ladder (pages/_roi.py)


def _ladder(spec):
    """A ladder result of plain values (the page draws it as it would draw the cached one; no model is trained)."""
    from core.studies.generalization import RunRecord
    from core.studies.roi import Plateau, RoiResult, RungSeed

    cells = []
    for e in spec.pretrain_epochs:
        for s in range(spec.seeds):
            acc = {"mae": 0.6 + 0.1 * e / 4 + 0.01 * s, "rcmae": 0.62 + 0.1 * e / 4, "scratch": 0.55 + 0.02 * s}
            runs = tuple(RunRecord(k, 4, s, "x", {"val_acc": a}, (), {}) for k, a in acc.items())
            base = {"wall_s": 10.0 * e, "cpu_s": 9.0 * e, "flops": 1e12 * e}
            cost = {k: dict(base, time_per_epoch=1.0 + 0.3 * (k == "rcmae") + 0.01 * s) for k in ("mae", "rcmae")}
            plat = {k: Plateau(e == 4, 0.05 / e, 1, e) for k in ("mae", "rcmae")}
            control = {"4": {"val_acc": 0.58, "steps": 40}}
            cells.append(RungSeed(e, s, runs, cost, plat, control, {"mae": 0.2 + 0.01 * s, "rcmae": 0.21}))
    return RoiResult(spec, tuple(cells))


def test_generalization_shows_the_cached_ladder_en_ja(empty_cache: Path, monkeypatch: pytest.MonkeyPatch):
    from core.app import roi_tasks

    # the page reads the cache through core.app.roi_tasks.cached_roi, which reads it with run_roi
    monkeypatch.setattr(roi_tasks, "run_roi", lambda spec, **kw: _ladder(spec))
    monkeypatch.setattr(roi_tasks, "_MEMO", {})
    at = open_page("generalization")
    assert not errors(at), errors(at)
    assert EN["roi.header"] in texts(at) and "Plateau rung: 4" in texts(at)
    fig = next(f for f in charts(at) if f["layout"]["title"]["text"] == EN["roi.title"])
    gains = [t for t in fig["data"] if t.get("name", "").endswith("labels/class")]
    assert [t["name"] for t in gains] == ["MAE-FT, 4 labels/class", "RC-MAE-FT, 4 labels/class"]
    assert fig["layout"]["xaxis"]["type"] == "log" and "TFLOP" in " ".join(fig["layout"]["xaxis9"]["ticktext"])
    assert any(t.get("name", "").endswith("basin width") for t in fig["data"])
    assert at.dataframe[-1].value[EN["roi.col_epochs"]].tolist() == [2, 4]
    set_lang(at, "ja")
    at.run()
    assert not at.exception and not errors(at) and JA["roi.header"] in texts(at)
    fig = next(f for f in charts(at) if f["layout"]["title"]["text"] == JA["roi.title"])
    assert fig["layout"]["xaxis"]["title"]["text"] == "事前学習のエポック数"
