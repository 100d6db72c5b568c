"""The dashboard: `streamlit run app.py`.

Sets the page, the language switch (English / Japanese, every visible string goes through `core.report.i18n`), a small
panel of background jobs, and the navigation over the pages under pages/.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from core.report import LANG_NAMES, LANGS, t  # noqa: E402
from pages._ui import registry, say, tr  # noqa: E402

st.set_page_config(page_title="ViT loss landscapes", page_icon=":material/landscape:", layout="wide")

if st.session_state.get("lang") not in LANGS:
    st.session_state["lang"] = "en"


def _set_lang() -> None:
    # A plain session key (not the widget's own) survives page switches and widget clean-up.
    st.session_state["lang"] = st.session_state["lang_switch"]


with st.sidebar:
    # Both names in both languages, so a reader who cannot read the current one still finds the switch.
    st.radio(
        f"{t('app.language', 'en')} / {t('app.language', 'ja')}",
        LANGS,
        index=LANGS.index(st.session_state["lang"]),
        format_func=lambda code: LANG_NAMES[code],
        key="lang_switch",
        on_change=_set_lang,
        horizontal=True,
    )


def _jobs_panel() -> None:
    active = [j for j in registry().jobs() if j.active]

    def body() -> None:
        jobs = [j for j in registry().jobs() if j.active]
        if not jobs:
            st.caption(tr("app.no_jobs"))
            if active:
                st.rerun()  # everything finished: redraw the page (new models, results) and stop polling
            return
        st.caption(tr("app.jobs", n=len(jobs)))
        for j in jobs[:4]:
            if j.status == "running":
                st.progress(j.fraction, text=f"{say(j.label)}: {say(j.message)}")
            else:
                st.caption(f"{tr('app.queued')}: {say(j.label)}")

    st.fragment(body, run_every=2.0 if active else None)()


PAGES = [
    ("pages/overview.py", "nav.overview", ":material/summarize:", "overview"),
    ("pages/models.py", "nav.models", ":material/model_training:", "models"),
    ("pages/landscapes.py", "nav.landscapes", ":material/landscape:", "landscapes"),
    ("pages/flatness.py", "nav.flatness", ":material/show_chart:", "flatness"),
    ("pages/generalization.py", "nav.generalization", ":material/school:", "generalization"),
    ("pages/whatif.py", "nav.whatif", ":material/science:", "what-if"),
    ("pages/runs.py", "nav.runs", ":material/folder_open:", "runs"),
]

nav = st.navigation(
    [
        st.Page(str(ROOT / path), title=tr(key), icon=icon, url_path=url, default=(i == 0))
        for i, (path, key, icon, url) in enumerate(PAGES)
    ]
)
try:
    nav.run()
finally:
    # After the page, so that a job the page just submitted is listed (also when the page called st.stop()).
    with st.sidebar:
        _jobs_panel()
