"""The real dashboard in a real browser: `streamlit run app.py` on a free port with a prepared cache, every page
opened in headless chromium via Playwright; no exception box or error alert may appear. One screenshot per page
goes to test-artifacts/, plus the Overview's briefing at 1280x800 as a reader sees it (overview_fold_en/ja.png).

Skipped (with the reason) where /usr/bin/chromium or the playwright package is missing.
"""

from __future__ import annotations

import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit_server import rss_mib, serve

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1400, "height": 2200}  # tall: Streamlit scrolls inside the page, so full_page alone is short
CHROME_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# (url path, English title of the page, a selector that must appear once the page has its content)
PAGES = [
    ("", "MAE vs RC-MAE vs supervised ViT", ".js-plotly-plot"),
    ("models", "Models", ".js-plotly-plot"),
    ("landscapes", "Loss landscapes", ".js-plotly-plot"),
    ("flatness", "Flatness", ".js-plotly-plot"),
    ("what-if", "What if we trained it differently?", '[data-testid="stForm"]'),
    ("runs", "Runs and cache", '[data-testid="stDataFrame"]'),
]


def _requirements() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(_requirements() is not None, reason=_requirements() or ""),
]


SERVER_PID: dict[str, int] = {}


@pytest.fixture(scope="module")
def server(dashboard_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """A streamlit server over a copy of the prepared cache; yields its base URL."""
    cache = tmp_path_factory.mktemp("browser") / "cache"
    shutil.copytree(dashboard_cache, cache)
    with serve(cache, cache.parent / "streamlit.log") as srv:
        SERVER_PID["pid"] = srv.proc.pid
        yield srv.url
        text = srv.log_path.read_text()
        assert "Traceback" not in text, text[-4000:]  # no exception reached the server log either


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS, headless=True)
        yield b
        b.close()


def _settle(page, selector: str, timeout_s: float = 90.0) -> None:
    """Wait until the app has rendered `selector` and no script run or job progress is on screen."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        progress = page.locator('[data-testid="stProgress"]').count() > 0
        if not running and not progress and page.locator(selector).count() > 0:
            time.sleep(1.0)  # let plotly finish drawing
            if page.locator('[data-testid="stProgress"]').count() == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"the page did not settle: {selector} never appeared or a job kept running")


def _problems(page) -> list[str]:
    found = []
    for sel in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        loc = page.locator(sel)
        for i in range(loc.count()):
            found.append(loc.nth(i).inner_text()[:300])
    return found


def test_several_browser_sessions_at_once(server: str, browser):
    """Four sessions (separate browser contexts: separate Streamlit sessions) open cached pages at the same time
    on a freshly started server (the first test of this module, so nobody has visited it yet and all four race
    to start the shared first-run job, which replays from the cache): every one renders its charts without an
    error, and the server stays healthy."""
    contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(4)]
    try:
        pages = [c.new_page() for c in contexts]
        targets = ["", "landscapes", "", "landscapes"]
        for page, path in zip(pages, targets, strict=True):  # all four connect before any has settled
            page.goto(f"{server}/{path}", wait_until="commit")
        for page in pages:
            _settle(page, ".js-plotly-plot")
            assert not _problems(page), _problems(page)
        with urllib.request.urlopen(f"{server}/_stcore/health", timeout=10) as r:
            assert r.status == 200
    finally:
        for c in contexts:
            c.close()


def test_every_page_renders_without_errors(server: str, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=VIEWPORT)
    console_errors: list[str] = []
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    for path, title, selector in PAGES:
        page.goto(f"{server}/{path}", wait_until="domcontentloaded")
        _settle(page, selector)
        assert not _problems(page), (path, _problems(page))
        h1 = page.locator("h1").first.inner_text()
        assert title in h1, (path, h1)
        name = path or "overview"
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert not console_errors, console_errors


def test_overview_shows_summary_and_side_by_side(server: str, browser):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server, wait_until="domcontentloaded")
    _settle(page, ".js-plotly-plot")
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "Say it in the meeting" in body
    # Three landscape panels (one contour subplot each) in the first chart.
    fig = page.evaluate(
        "() => { const d = document.querySelector('.js-plotly-plot');"
        " return {types: d.data.map(t => t.type), notes: (d.layout.annotations || []).map(a => a.text)}; }"
    )
    assert [t for t in fig["types"] if t == "contour"] == ["contour"] * 3, fig["types"]
    assert any("MAE" in t for t in fig["notes"]) and any("Sup-ViT" in t for t in fig["notes"]), fig["notes"]
    assert any("grid" in t and "direction seed" in t for t in fig["notes"]), fig["notes"]  # the approximation


FOLD = {"width": 1280, "height": 800}
VERDICTS = {
    "en": ("Supports the claim", "Contradicts the claim", "No meaningful difference", "Undetermined"),
    "ja": ("主張を支持", "主張と矛盾", "意味のある差なし", "未決定"),
}


def _visible_boxes(page, selector: str) -> list[dict]:
    loc = page.locator(selector)
    boxes = [loc.nth(i).bounding_box() for i in range(loc.count())]
    return [b for b in boxes if b and b["width"] > 0 and b["height"] > 0]


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_briefing_above_the_fold(server: str, browser, lang: str):
    """At 1280x800 the four verdicts (one per point of the chain) and the download button are on screen without
    scrolling, in English and in Japanese; the screenshot of exactly that view goes to
    test-artifacts/overview_fold_<lang>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=FOLD)
    page.goto(server, wait_until="domcontentloaded")
    _settle(page, '[data-testid="stCode"]')
    if lang == "ja":
        page.locator('[data-testid="stSidebar"]').get_by_text("日本語").click()
        page.wait_for_function(
            "document.querySelector('h1') && document.querySelector('h1').innerText.includes('比較')"
        )
        _settle(page, '[data-testid="stCode"]')
    page.evaluate("() => document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    time.sleep(0.5)
    page.screenshot(path=str(ARTIFACTS / f"overview_fold_{lang}.png"), full_page=False)
    assert not _problems(page), _problems(page)
    main = page.locator('[data-testid="stMain"]')
    found = []
    for text in VERDICTS[lang]:
        loc = main.get_by_text(text)  # the badge: its icon and its text
        for i in range(loc.count()):
            box = loc.nth(i).bounding_box()
            if box and box["height"] > 0:
                found.append((text, box))
    on_screen = [(t, b) for t, b in found if b["y"] >= 0 and b["y"] + b["height"] <= FOLD["height"]]
    assert len(on_screen) >= 4, (found, "four verdict badges above the fold")
    download = _visible_boxes(page, '[data-testid="stDownloadButton"]')
    assert download and download[0]["y"] + download[0]["height"] <= FOLD["height"], download
    code = _visible_boxes(page, '[data-testid="stCode"]')
    assert code, "the meeting sentence"
    text = page.locator('[data-testid="stCode"]').first.inner_text()
    assert text.startswith("私たちのモデルでは" if lang == "ja" else "On our models, RC-MAE means"), text
    metrics = _visible_boxes(page, '[data-testid="stMetric"]')
    assert len(metrics) == 6, metrics


def test_language_switch_in_the_browser(server: str, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(server, wait_until="domcontentloaded")
    _settle(page, ".js-plotly-plot")
    page.locator('[data-testid="stSidebar"]').get_by_text("日本語").click()
    page.wait_for_function("document.querySelector('h1') && document.querySelector('h1').innerText.includes('比較')")
    _settle(page, ".js-plotly-plot")
    assert not _problems(page)
    # The figure's own text (colour bar, axes) follows the language too.
    bar = page.evaluate("() => document.querySelector('.js-plotly-plot').layout.coloraxis.colorbar.title.text")
    assert "中心からの損失の増加" in bar, bar
    page.screenshot(path=str(ARTIFACTS / "overview_ja.png"), full_page=True)
    # Another page keeps the language, and the switch stays in the sidebar.
    page.locator('[data-testid="stSidebarNav"]').get_by_text("損失地形").click()
    page.wait_for_function(
        "document.querySelector('h1') && document.querySelector('h1').innerText.includes('損失地形')"
    )
    _settle(page, ".js-plotly-plot")
    assert page.locator('[data-testid="stSidebar"]').get_by_text("English").count() == 1
    assert not _problems(page)
    page.screenshot(path=str(ARTIFACTS / "landscapes_ja.png"), full_page=True)


def test_landscapes_convexity_view_in_the_browser(server: str, browser):
    """The Landscapes page's convexity view: nothing until asked, then a background job draws one ratio heatmap
    with loss contours per model (few Lanczos steps: this checks the page, not the numbers)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{server}/landscapes", wait_until="domcontentloaded")
    _settle(page, ".js-plotly-plot")
    page.locator('[data-testid="stMain"]').get_by_text("Convexity", exact=True).click()
    page.get_by_role("button", name="Compute convexity maps").wait_for(timeout=30_000)
    steps = page.get_by_label("Lanczos steps per point")
    steps.fill("4")
    steps.press("Enter")
    time.sleep(1.0)
    page.get_by_role("button", name="Compute convexity maps").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(d => (d.data || [])"
        ".some(t => t.type === 'heatmap') && ((d.layout.coloraxis || {}).colorbar || {title: {text: ''}})"
        ".title.text.includes('lambda_min'))",
        timeout=240_000,
    )
    _settle(page, ".js-plotly-plot", timeout_s=240)
    assert not _problems(page), _problems(page)
    types = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map(d => d.data.map(t => t.type))"
        ".find(ts => ts.includes('heatmap') && ts.includes('contour'))"
    )
    assert types and types.count("heatmap") == types.count("contour") == 3, types
    page.screenshot(path=str(ARTIFACTS / "landscapes_convexity.png"), full_page=True)


def test_server_memory_stays_flat_across_reruns(server: str, browser):
    """Reloading a page full of charts again and again (new sessions, full reruns) must not grow the server without
    bound, with Streamlit's per-run gc.collect turned off (Python's own GC still runs)."""
    page = browser.new_page(viewport=VIEWPORT)
    for _ in range(3):  # warm-up: imports, caches, the first sessions
        page.goto(f"{server}/landscapes", wait_until="domcontentloaded")
        _settle(page, ".js-plotly-plot")
    before = rss_mib(SERVER_PID["pid"])
    for _ in range(12):
        page.reload(wait_until="domcontentloaded")
        _settle(page, ".js-plotly-plot")
    grown = rss_mib(SERVER_PID["pid"]) - before
    print(f"server RSS {before:.0f} MiB, grown {grown:.1f} MiB over 12 reloads")
    assert grown < 100, f"server memory grew {grown:.0f} MiB over 12 reloads"


SLOW_S = 300.0  # a fresh server replays the first-run job from the cache first; on a shared machine that takes a while


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_generalization_page_renders_its_charts(server: str, browser, lang: str):
    """The Generalization page, opened from the navigation as a reader does, shows the first-run job's fine-tuned
    and from-scratch runs at once: the label-efficiency chart (log x) draws without an error, in English and in
    Japanese (figure text included)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=VIEWPORT)
    console_errors: list[str] = []
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.goto(server, wait_until="domcontentloaded")
    _settle(page, ".js-plotly-plot", timeout_s=SLOW_S)
    if lang == "ja":
        page.locator('[data-testid="stSidebar"]').get_by_text("日本語").click()
        page.wait_for_function(
            "document.querySelector('h1') && document.querySelector('h1').innerText.includes('比較')"
        )
    title = "汎化" if lang == "ja" else "Generalization"
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.wait_for_function(
        f"document.querySelector('h1') && document.querySelector('h1').innerText.includes('{title}')"
    )
    _settle(page, ".js-plotly-plot", timeout_s=SLOW_S)
    assert not _problems(page), _problems(page)
    fig = page.evaluate(
        "() => { const d = document.querySelector('.js-plotly-plot');"
        " return {type: d.layout.xaxis.type, x: d.layout.xaxis.title.text, lines: d.data.filter("
        "t => t.mode === 'lines+markers').map(t => t.name)}; }"
    )
    scratch = "スクラッチ" if lang == "ja" else "scratch"  # legend names follow the language (model names stay)
    assert fig["type"] == "log" and fig["lines"] == ["MAE-FT", "RC-MAE-FT", scratch], fig
    assert ("ラベル数" if lang == "ja" else "labels per class") in fig["x"], fig
    page.screenshot(path=str(ARTIFACTS / f"generalization_{lang}.png"), full_page=True)
    assert not console_errors, console_errors


def test_briefing_download_works_offline_and_prints(server: str, browser, tmp_path: Path):
    """The Overview's download button gives one HTML file that renders every figure with the network off (nothing
    is requested but the file itself) and prints to PDF."""
    page = browser.new_page(viewport=FOLD)
    page.goto(server, wait_until="domcontentloaded")
    _settle(page, '[data-testid="stCode"]')
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Briefing (HTML)").click()
    path = tmp_path / "briefing.html"
    info.value.save_as(str(path))
    ctx = browser.new_context(offline=True, viewport={"width": 1100, "height": 900})
    try:
        view = ctx.new_page()
        requests: list[str] = []
        view.on("request", lambda r: requests.append(r.url))
        view.goto(path.as_uri(), wait_until="load")
        view.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3", timeout=30_000)
        n = view.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
        gallery = view.locator('[data-figure="gallery"]').count()  # with the stability measurement: its gallery
        assert n == 3 + gallery, n  # the landscapes, RC-MAE vs MAE on one function, accuracy under weight noise
        appendix = "".join(view.locator("table").all_inner_texts())
        assert appendix and "_vs_" not in appendix and " nan" not in appendix.lower()  # labelled in words
        assert [u for u in requests if not u.startswith("file://")] == [], requests
        assert "Say it in the meeting" in view.locator("body").inner_text()
        pdf = view.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2
        view.screenshot(path=str(ARTIFACTS / "briefing_export.png"), full_page=False)
    finally:
        ctx.close()
