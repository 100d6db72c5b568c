"""The "Stability under corruptions" section of the Generalization page (AppTest, EN and JA) on the prepared quick
dashboard cache: the first-run cell's runs measured on demand, curves, the kept-accuracy table and the gallery."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.report.i18n import EN, JA

APP = str(Path(__file__).resolve().parent.parent / "app.py")


pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")  # tests/conftest.py


def idle(at: AppTest, timeout: float = 60.0) -> AppTest:
    from pages._ui import registry

    deadline = time.monotonic() + timeout
    for job in registry().jobs():
        job.wait(max(0.1, deadline - time.monotonic()))
    assert all(not j.active for j in registry().jobs())
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    kinds = ("header", "subheader", "markdown", "caption", "info", "error")
    return "\n".join(str(e.value) for k in kinds for e in getattr(at, k))


def test_section_measures_then_shows_curves_table_and_gallery_in_both_languages(
    dashboard_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = tmp_path / "copy"
    shutil.copytree(dashboard_cache, root)
    monkeypatch.setenv("LANDSCAPE_CACHE_DIR", str(root))
    monkeypatch.setenv("LANDSCAPE_DASHBOARD_PROFILE", "quick")
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/generalization.py").run()
    at = idle(at)
    body = texts(at)
    assert EN["stab.header"] in body  # the first run measured its own cell; the page's study has more runs
    go = [b for b in at.button if b.label == EN["stab.go"]]
    assert go, [b.label for b in at.button]
    go[0].click().run()
    at = idle(at)
    body = texts(at)
    assert not at.error, [e.value for e in at.error]
    assert EN["stab.progress"].format(n=3, total=3) in body and EN["stab.kept"] in body
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    curves = [f for f in figs if "Accuracy under input corruptions" in f["layout"]["title"]["text"]]
    assert curves and {t["name"] for t in curves[0]["data"]} >= {"MAE-FT", "RC-MAE-FT", "scratch"}
    gallery = [f for f in figs if f["data"] and f["data"][0].get("type") == "image"]
    assert gallery and any("3 px" in a["text"] for a in gallery[0]["layout"]["annotations"])
    radios = [r for r in at.sidebar.radio if r.key == "lang_switch"]
    if radios:
        radios[0].set_value("ja").run()
    else:  # as tests/test_app.py's set_lang: the keys the sidebar radio's callback sets
        at.session_state["lang"] = "ja"
        at.session_state["lang_switch"] = "ja"
        at.run()
    assert not at.exception
    body = texts(at)
    assert JA["stab.header"] in body and JA["stab.kept"] in body
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any("入力の劣化の下での精度" in f["layout"]["title"]["text"] for f in figs)
