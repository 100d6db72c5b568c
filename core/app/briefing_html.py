"""The briefing's figures and its export: one self-contained HTML file (plotly.js inlined once, every figure embedded,
no external resource), in one language, stamped with the date, the models, the data and the code version, laid out
to print cleanly to PDF from a browser.

The Overview page and `python -m core briefing` use the same functions: `context_of(res)` (what the briefing is
about), `briefing_figures(res, lang)` (every figure the Overview shows) and `briefing_html(res, lang)`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import html
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.offline

from core.app.first_run import prepare_defaults_task
from core.app.generalization_tasks import first_run_spec
from core.app.profiles import dashboard_profile
from core.app.stability_tasks import gallery_of, level_texts
from core.app.tasks import coarse_view
from core.app.zoo import checkpoint_info
from core.errors import LandscapeError
from core.models import code_version
from core.paths import cache_root
from core.report import (
    LANGS,
    Briefing,
    Panel,
    appendix_rows,
    compared_function,
    compose,
    localize,
    needs_extra,
    plot_gallery,
    plot_robustness,
    plot_surfaces,
    render_message,
    surface_caption,
    t,
    variant_label,
    wrap_captions,
)
from core.store import atomic_write_bytes, ensure_folder

VERDICT_MARK = {"supports": "✔", "contradicts": "✘", "no meaningful difference": "=", "undetermined": "?"}
VERDICT_COLOR = {
    "supports": "#1a7f37",
    "contradicts": "#cf222e",
    "no meaningful difference": "#57606a",
    "undetermined": "#9a6700",
}

_T = {
    "en": {
        "made": "Made {date} · code {code}",
        "models": "Models",
        "data": "Data",
        "meeting": "Say it in the meeting",
        "why": "What would settle it",
        "details": "The measurements",
        "numbers": "Numbers",
        "figures": "Figures",
        "number": "number",
        "value": "value",
        "flatness": "Flatness numbers per model",
        "claim": "Claim judged: {c}",
    },
    "ja": {
        "made": "作成 {date} · コード {code}",
        "models": "モデル",
        "data": "データ",
        "meeting": "会議でのひとこと",
        "why": "結論を出すには",
        "details": "測定結果",
        "numbers": "数値",
        "figures": "図",
        "number": "指標",
        "value": "値",
        "flatness": "モデルごとの平坦さの指標",
        "claim": "判定する主張: {c}",
    },
}


@functools.lru_cache(maxsize=1)
def _code_version() -> str:

    return code_version()


def context_of(res: Any) -> dict[str, Any]:
    """What the briefing is about, from a `core.app.first_run.DefaultsResult`: models (label, file, sha256 prefix,
    training settings), data, the regime (preset, epochs) and the code version."""
    models, data, presets, epochs = [], [], [], []
    for kind, path in res.paths.items():
        info = checkpoint_info(path)
        train = info.train or {}
        models.append(
            {"kind": kind, "label": res.labels.get(kind, info.label), "file": info.name, "sha": info.sha256[:12]}
        )
        for lst, key in ((data, "data"), (presets, "preset"), (epochs, "epochs")):
            v = train.get(key)
            if v is not None and v not in lst:
                lst.append(v)
    return {
        "models": models,
        "data": ", ".join(map(str, data)),
        "preset": ", ".join(map(str, presets)),
        "epochs": ", ".join(map(str, epochs)),
        "code": _code_version(),
    }


def briefing_of(res: Any, lang: str) -> Briefing:
    """The briefing of a prepared first-run result (facts gathered by `core.app.first_run.gather_facts`)."""
    return compose(res.facts, lang, context_of(res))


# --------------------------------------------------------------------------------------------------------------------
# Figures (the Overview draws the same ones)


def _panels(batch: Any, labels: list[str], lang: str) -> list:

    panels = []
    for label in labels:
        s = batch.surfaces.get(label)
        if s is None:
            continue
        xs, ys, loss = coarse_view(s)  # while it is still filling in: the finest complete sub-grid
        spec = batch.specs.get(label)
        cap = surface_caption(spec, lang) if spec is not None else ""
        if not s.complete:
            cap += " " + t("cap.partial", lang)
            if loss.shape != s.loss.shape:
                n = len(xs)
                cap += " " + t("cap.coarse", lang).format(n=f"{n}x{n}" if loss.ndim == 2 else str(n))
        title = label.replace(" · ", "<br>", 1) if len(label) > 28 else label
        panels.append(Panel(title, xs, ys, loss, caption=cap, path=s.path_coords if s.complete else None))
    return panels


def briefing_figures(res: Any, lang: str) -> list[tuple[str, Any]]:
    """(key, localized plotly figure) for every figure of the briefing, in order: the three landscapes on each
    model's own objective, RC-MAE vs MAE on one function (MAE's loss), accuracy under weight noise."""
    figs: list[tuple[str, Any]] = []
    own = [res.labels[k] for k in res.paths if k in res.labels]
    panels = _panels(res.surfaces, own, lang)
    if panels:
        title = t("overview.landscape_title", lang)
        figs.append(("landscapes", plot_surfaces(panels, view="contour", relative=True, title=title)))
    same = []
    for kind in ("mae", "rcmae"):
        if kind in res.labels:
            extra = needs_extra(kind)
            same.append(variant_label(res.labels[kind], compared_function(kind)) if extra else res.labels[kind])
    panels = _panels(res.surfaces, same, lang) if len(same) == 2 else []
    if len(panels) == 2:
        title = t("overview.same_title", lang)
        figs.append(("same-function", plot_surfaces(panels, view="contour", relative=True, title=title)))
    curves = {label: r.robustness for label, r in res.flatness.reports.items() if r.robustness}
    if curves:
        spec = next(iter(res.flatness.specs.values()))
        cap = t("cap.robustness", lang).format(draws=spec.robustness_draws, samples=spec.samples, seed=spec.seed)
        title = t("overview.robustness_title", lang)
        figs.append(("robustness", plot_robustness(curves, "acc", title=title, caption=cap)))
    if res.facts.get("stability"):  # what "severity 3 blur" means, beside the stability sentence
        spec = first_run_spec(dashboard_profile())
        title = t("stab.gallery", lang)
        figs.append(("gallery", plot_gallery(gallery_of(spec, 0, seed=0), list(range(6)), level_texts(), title)))
    return [(k, wrap_captions(localize(f, lang))) for k, f in figs]


def flatness_rows(res: Any, lang: str) -> dict[str, dict[str, str]]:
    """label -> {number name: formatted value} for every flatness report (the table behind the stability point)."""

    def f(x: Any) -> str:
        try:
            v = float(x)
        except (TypeError, ValueError):
            return "-"
        return f"{v:.4g}" if v == v and abs(v) != float("inf") else "-"

    rows = {}
    for label, r in res.flatness.reports.items():
        surf = res.surfaces.surfaces.get(label)
        rows[label] = {
            t("num.lambda_max", lang): f(r.top_eigenvalues[0] if r.top_eigenvalues else None),
            t("num.trace", lang): f(r.trace),
            t("num.sharp_avg", lang): f((r.sharpness or {}).get("average")),
            t("metric.basin_width", lang): f(surf.metrics.get("basin_width") if surf is not None else None),
            t("num.probe_acc", lang): f(r.probe_acc),
            t("num.acc_drop", lang): f(r.robustness_drop),
        }
    return rows


# --------------------------------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Hiragino Sans","Noto Sans JP",sans-serif;margin:24px auto;
max-width:1100px;color:#1f2328;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin:0 0 .2em}h2{font-size:1.25em;margin:1.4em 0 .5em;border-bottom:1px solid #d0d7de}
.meta{color:#57606a;font-size:.9em}.question{font-size:1.15em;margin:.6em 0 1em}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}\n.claim{color:#57606a;font-size:.8em;margin-top:.3em}
.card{border:1px solid #d0d7de;border-radius:8px;padding:12px;break-inside:avoid}
.badge{display:inline-block;border-radius:12px;padding:1px 10px;color:#fff;font-size:.85em;font-weight:600}
.metric-label{color:#57606a;font-size:.85em;margin-top:.6em}.metric-value{font-size:1.5em;font-weight:600}
.metric-delta{font-size:.9em;color:#57606a}.metric-spread{font-size:.8em;color:#57606a}
.meeting{background:#f6f8fa;border-left:4px solid #0969da;padding:10px 14px;margin:16px 0;font-size:1.05em}
.why{color:#57606a}table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left}.fig{break-inside:avoid;margin:12px 0}
@media print{body{margin:0;max-width:none}.fig{page-break-inside:avoid}h2{page-break-after:avoid}
.cards{grid-template-columns:repeat(2,1fr)}}
"""


def _table(rows: list[tuple[str, str]], head: tuple[str, str]) -> str:
    body = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td></tr>" for a, b in rows)
    return f"<table><tr><th>{html.escape(head[0])}</th><th>{html.escape(head[1])}</th></tr>{body}</table>"


def delta_css(h: Any) -> str:
    """The CSS colour of a headline's delta, as `st.metric` draws it: grey when its colour is "off" (its interval does
    not decide), else green for good news and red for bad by the sign and `h.color` ("normal": up is good)."""
    if h.color == "off" or not h.delta:
        return "#57606a"
    up = not h.delta.lstrip().startswith(("-", "−"))
    good = up if h.color == "normal" else not up
    return "#1a7f37" if good else "#cf222e"


def render_html(b: Briefing, figures: list[tuple[str, Any]], flatness: dict[str, dict[str, str]], *, date: str) -> str:
    """The briefing as one HTML document: plotly.js inlined once, then every figure as a div and its data."""
    lang, tx, e = b.lang, _T[b.lang], html.escape
    ctx = b.context
    parts = [
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{e(t('overview.title', lang))}</title><style>{_CSS}</style>",
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head><body>',
        f"<h1>{e(t('overview.title', lang))}</h1>",
        f'<div class="meta">{e(tx["made"].format(date=date, code=ctx.get("code", "?")))}<br>',
        f"{e(tx['models'])}: "
        + e("; ".join(f"{m['label']} ({m['file']}, sha256 {m['sha']})" for m in ctx.get("models", [])))
        + f"<br>{e(tx['data'])}: {e(str(ctx.get('data', '')))}</div>",
        f'<p class="question">{e(b.question)}</p><div class="cards">',
    ]
    for p in b.points:
        heads = "".join(
            f'<div class="metric-label">{e(h.label)}</div>'
            f'<div class="metric-value">{e(h.value)}</div><div class="metric-spread">{e(h.spread)}</div>'
            f'<div class="metric-delta" data-color="{h.color}" style="color:{delta_css(h)}">{e(h.delta)}</div>'
            for h in p.headlines
        )
        parts.append(
            f'<div class="card" data-verdict="{p.verdict}" data-point="{p.key}"><strong>{e(p.title)}</strong><br>'
            f'<span class="badge" style="background:{VERDICT_COLOR[p.verdict]}">'
            f"{VERDICT_MARK[p.verdict]} {e(t('verdict.' + p.verdict, lang))}</span>"
            f'<div class="claim">{e(tx["claim"].format(c=p.claim))}</div>'
            f"<p>{e(p.short)}</p>" + (f'<p class="claim">{e(p.note)}</p>' if p.note else "") + f"{heads}</div>"
        )
    parts.append(f'</div><h2>{e(tx["meeting"])}</h2><div class="meeting">{e(b.meeting)}</div>')
    parts.append(f"<h2>{e(tx['details'])}</h2>")
    for p in b.points:
        parts.append(f"<h3>{e(p.title)}: {e(t('verdict.' + p.verdict, lang))}</h3>")
        parts += [f"<p>{e(d)}</p>" for d in p.details]
        if p.why:
            parts.append(f'<p class="why"><strong>{e(tx["why"])}:</strong> {e(p.why)}</p>')
        if p.numbers:
            parts.append(_table(appendix_rows(p.numbers, lang), (tx["number"], tx["value"])))
    if flatness:
        cols = list(next(iter(flatness.values())))
        head = "".join(f"<th>{e(c)}</th>" for c in ["", *cols])
        body = "".join(
            f"<tr><td>{e(label)}</td>" + "".join(f"<td>{e(row.get(c, '-'))}</td>" for c in cols) + "</tr>"
            for label, row in flatness.items()
        )
        parts.append(f"<h2>{e(tx['flatness'])}</h2><table><tr>{head}</tr>{body}</table>")
    if figures:
        parts.append(f"<h2>{e(tx['figures'])}</h2>")
    for key, fig in figures:
        div = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})
        parts.append(f'<div class="fig" data-figure="{e(key)}">{div}</div>')
    parts.append("</body></html>")
    return "\n".join(parts)


def briefing_html(res: Any, lang: str, *, briefing: Briefing | None = None, date: str | None = None) -> str:
    """The self-contained HTML briefing of a prepared first-run result, in `lang`."""
    b = briefing or briefing_of(res, lang)
    date = date or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return render_html(b, briefing_figures(res, lang), flatness_rows(res, lang), date=date)


# --------------------------------------------------------------------------------------------------------------------
# `python -m core briefing`


def default_out(lang: str) -> Path:
    """Where the CLI writes the briefing by default: <cache>/briefing/briefing_<lang>.html."""
    return Path(cache_root()) / "briefing" / f"briefing_{lang}.html"


def check_out(out: str | os.PathLike[str]) -> Path:
    """The output path, refused in one line before any work: not .html, a folder, or a folder that cannot be
    written."""
    path = Path(out)
    if path.suffix.lower() not in (".html", ".htm"):
        raise LandscapeError(f"--out must end in .html, got {path.name}")
    if path.is_dir():
        raise LandscapeError(f"--out {path} is a folder; give a file name ending in .html")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise LandscapeError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise LandscapeError(f"cannot write {path}: permission denied")
    return path


class _LoggingContext:
    """A `core.app.registry.JobContext` for a job run in the caller's thread: progress goes to `say` as one line per new
    message (in `lang`), partial results are dropped, and it never asks to stop (Ctrl-C interrupts instead)."""

    def __init__(self, say: Callable[[str], None], lang: str) -> None:
        self._say, self._lang, self._last = say, lang, ""

    @property
    def key(self) -> str:
        return "briefing"

    def progress(self, fraction: float, message: str = "") -> None:

        text = render_message(message or "", self._lang)
        if text and text != self._last:
            self._last = text
            f = min(1.0, max(0.0, float(fraction))) if fraction == fraction else 0.0
            self._say(f"[{f:4.0%}] {text}")

    def set_partial(self, obj: Any) -> None:
        pass

    def should_stop(self) -> bool:
        return False


def write_briefing(
    lang: str = "en",
    out: str | os.PathLike[str] | None = None,
    *,
    log: Callable[[str], None] | None = None,
    profile: Any = None,
) -> Path:
    """Prepare (or find in the cache) what the dashboard's first-run job prepares, then write the HTML briefing.

    Runs `core.app.first_run.prepare_defaults_task` synchronously (the same job as the dashboard: whatever the cache
    holds is reused), reporting its progress through `log` (one line per message; stderr in the CLI).

    Raises:
        LandscapeError: an unknown language, an unwritable `out`, or a failed preparation (one line).
    """
    if lang not in LANGS:
        raise LandscapeError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    path = check_out(out) if out is not None else default_out(lang)
    say = log or (lambda m: None)
    profile = profile or dashboard_profile()
    ctx = _LoggingContext(say, "en")  # progress in the CLI's language; the file in `lang`
    started = time.monotonic()
    res = prepare_defaults_task(profile)(ctx)  # synchronously, in this thread: the dashboard's first-run job
    for where, err in {**res.errors, **res.surfaces.errors, **res.flatness.errors}.items():
        say(f"warning: {where}: {err}")
    say(f"prepared in {time.monotonic() - started:.1f} s; writing the briefing ({lang})")
    text = briefing_html(res, lang)
    if out is None:
        ensure_folder(path.parent)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
