"""A real browser on the built book: every page, as a reader opens it.

Headless Debian Chromium, driven by Playwright, opens each page of the built book (served over HTTP from
127.0.0.1) at 1280 px wide and checks:

* **No console errors and no failed requests** on any page (any ``console.error``, uncaught page error,
  failed request or HTTP status >= 400; a request outside 127.0.0.1 that the npm mirror below cannot answer).
* **Chapter 6's explorers work on the static page**, with no kernel: the widgets render from the widget state
  saved in the page; moving each slider with the keyboard and the mouse and clicking the head selector changes
  the picture to the right frame (the bytes of the ``<img>`` shown are compared with the PNG buffers saved in
  the widget state).
* **Widget fallbacks** with the CDN blocked: each widget shows its first frame as an image and one line saying
  the page needs its scripts (``course_pkg/widget_fallback.py``); with the scripts loaded the stand-in is
  hidden; progress bars are static lines of text.
* **Accessibility**: axe-core finds no serious or critical violation; every figure ``<img>`` has alt text
  (not a file name).
* **Column fit**: no element sticks out of the article column except inside an intended scroll box
  (``.course-scroll``).
* **Figure text at 9 px or more**: each executed figure's PNG records the size of its smallest text in PNG
  pixels (``course:min_text_px``, written by ``course_pkg.figure_text``); scaled by the rendered width over
  the natural width, it must be >= 9 CSS px.
* **A phone, 390 px wide** (every page again, as a touch screen): the page never scrolls sideways; nothing is
  cut off (what is wider than the column, a long equation, a table, a printed table, a figure, lies in a box
  that scrolls sideways); figure text and the explorers' frames stay >= 9 px, and a figure wider than the
  screen says so in a line under it; chapter 6's slider values are on screen.
* **Formulas offline**: with every outside request refused, every page's maths is typeset by the MathJax
  that the book serves itself (``course_pkg/book_mathjax.py``), with no raw TeX left and no failed request.

The pages load require.js and the html-manager from jsDelivr (``_config.yml``); MathJax comes with the book. This machine has no
internet, so every request to ``https://cdn.jsdelivr.net/npm/<pkg>@<ver>/<path>`` is answered from
``node_modules/<pkg>/<path>``, the same files installed from npm by ``.ci/run`` (the version must match, and
the integrity hashes on the page must accept them); axe-core comes from there too (``test_tools`` in
``_config.yml``). Any other outside request is aborted and logged; the log is part of every failure message.

Under ``CI=true`` a missing browser, Playwright or npm folder is a failure; elsewhere the test skips and says
what is missing. Screenshots go to ``$COURSE_SCREENSHOTS`` (default: the test's temporary folder).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTER = "book/06_vision_transformers.html"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CDN = re.compile(r"^https://cdn\.jsdelivr\.net/npm/((?:@[^/@]+/)?[^/@]+)@([^/]+)/(.+)$")
CONTENT_TYPES = {".js": "application/javascript", ".css": "text/css", ".json": "application/json",
                 ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".svg": "image/svg+xml"}


def _missing(reason: str) -> None:
    """Fail under CI (the browser test is part of the contract there), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _chromium() -> str:
    path = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        _missing("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    return path


def _node_modules() -> Path:
    nm = Path(os.environ.get("COURSE_NODE_MODULES", ROOT / "node_modules"))
    if not (nm / "@jupyter-widgets" / "html-manager").is_dir():
        _missing(f"the widget JavaScript is not installed in {nm} (.ci/run installs it with npm at the versions "
                 "named in _config.yml's nb_ipywidgets_js)")
    return nm


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server(built_book: dict) -> Iterator[str]:
    """The built book over HTTP on 127.0.0.1 (a random free port); yields the site's base URL."""
    html = Path(built_book["html"])
    page = html / CHAPTER
    if not page.is_file():
        pytest.fail(f"the build made no {CHAPTER} (return code {built_book['returncode']}); build log tail:\n"
                    + built_book["log"][-3000:], pytrace=False)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def site(server: str) -> str:
    """Chapter 6's URL (its explorers)."""
    return server + CHAPTER


# ------------------------------------------------------------------------------------------------
# The widget state saved in the page: which frames each explorer holds
# ------------------------------------------------------------------------------------------------
def _widget_state(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', html, re.S)
    assert m, "the page holds no widget state: the notebook's widgets were not saved at execution"
    return json.loads(m.group(1))["state"]


def _model_id(ref: str) -> str:
    return ref.removeprefix("IPY_MODEL_")


def _image_sha(state: dict[str, Any], model_id: str) -> str:
    """SHA-256 of the PNG bytes of an Image model (kept as a base64 buffer in the state)."""
    model = state[model_id]
    assert model["model_name"] == "ImageModel", model["model_name"]
    buffers = {tuple(b["path"]): b for b in model.get("buffers", [])}
    buf = buffers[("value",)]
    data = base64.b64decode(buf["data"]) if buf.get("encoding", "base64") == "base64" else buf["data"].encode()
    return hashlib.sha256(data).hexdigest()


def _explorer(state: dict[str, Any], dom_class: str) -> dict[str, Any]:
    """The explorer whose top VBox carries ``dom_class``: its slider, its stack and the frames per page."""
    tops = [mid for mid, m in state.items() if dom_class in m["state"].get("_dom_classes", [])]
    assert len(tops) == 1, f"expected one widget with class {dom_class}, found {len(tops)}"
    _title, slider, stack = (_model_id(c) for c in state[tops[0]]["state"]["children"])
    return {"slider": slider, "stack": stack, "options": state[slider]["state"]["_options_labels"],
            "index": state[slider]["state"]["index"],
            "pages": [_model_id(c) for c in state[stack]["state"]["children"]]}


def _links(state: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    out = set()
    for m in state.values():
        if m["model_name"] == "LinkModel":
            (s, sa), (t, ta) = m["state"]["source"], m["state"]["target"]
            out.add((_model_id(s), sa, _model_id(t), ta))
    return out


# ------------------------------------------------------------------------------------------------
# The browser
# ------------------------------------------------------------------------------------------------
class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.served: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def __str__(self) -> str:
        return "browser log (requests, console, errors):\n  " + "\n  ".join(self.lines[-80:])


def _route_cdn(nm: Path, log: _Log):
    def handle(route: Any) -> None:
        url = route.request.url
        m = CDN.match(url)
        if m:
            package, version, path = m.groups()
            pkg_dir = nm / package
            manifest = pkg_dir / "package.json"
            installed = json.loads(manifest.read_text())["version"] if manifest.is_file() else None
            file = pkg_dir / path
            if installed == version and file.is_file():
                log.add(f"served from npm: {url}")
                log.served.append(url)
                ctype = CONTENT_TYPES.get(file.suffix, "application/octet-stream")
                route.fulfill(status=200, path=str(file),
                              headers={"Content-Type": ctype, "Access-Control-Allow-Origin": "*"})
                return
            log.add(f"NOT SERVED (npm has {package}@{installed}, file present: {file.is_file()}): {url}")
        else:
            log.add(f"aborted (outside request): {url}")
        route.abort()
    return handle


def _shown_sha(page: Any, selector: str) -> Optional[str]:
    """SHA-256 of the bytes behind the visible ``<img>`` inside ``selector`` (None when there is none)."""
    return page.evaluate(
        """async (sel) => {
            const imgs = [...document.querySelectorAll(sel + ' img')].filter(i => i.offsetParent !== null);
            if (imgs.length !== 1) return imgs.length === 0 ? null : 'many:' + imgs.length;
            const buf = await (await fetch(imgs[0].src)).arrayBuffer();
            const digest = await crypto.subtle.digest('SHA-256', buf);
            return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
        }""", selector)


def _wait_for_sha(page: Any, selector: str, want: str, log: _Log, what: str) -> None:
    got = None
    for _ in range(50):
        got = _shown_sha(page, selector)
        if got == want:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"{what}: the page shows image {got} but frame {want} was expected\n{log}")


def _head_button(page: Any, box: str, label: str) -> Any:
    """The visible toggle button labelled exactly ``label`` in the head explorer (the selected head count's)."""
    return page.locator(f"{box} .widget-toggle-button:visible", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))


def test_explorers_work_in_a_real_browser(site: str, built_book: dict, tmp_path: Path) -> None:
    chromium = _chromium()
    nm = _node_modules()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed (pip install playwright; no browser download "
                 "is needed, the test drives Debian's chromium)")
    shots = Path(os.environ.get("COURSE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    html = (Path(built_book["html"]) / CHAPTER).read_text(encoding="utf-8")
    state = _widget_state(html)
    patch = _explorer(state, "course-patch-explorer")
    heads = _explorer(state, "course-head-explorer")
    links = _links(state)
    assert (patch["slider"], "index", patch["stack"], "selected_index") in links
    assert (heads["slider"], "index", heads["stack"], "selected_index") in links
    patch_frames = [_image_sha(state, _model_id(state[p]["state"]["children"][0])) for p in patch["pages"]]
    assert len(set(patch_frames)) == len(patch_frames) >= 3, "the patch explorer's frames are not all different"

    log = _Log()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda m: log.add(f"console.{m.type}: {m.text}"))
            page.on("pageerror", lambda e: log.add(f"page error: {e}"))
            page.on("requestfailed", lambda r: log.add(f"request failed: {r.url} ({r.failure})"))
            page.on("response", lambda r: r.status >= 400 and log.add(f"HTTP {r.status}: {r.url}"))
            page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), _route_cdn(nm, log))
            page.goto(site, wait_until="load")

            # ---- the patch-size explorer -------------------------------------------------------------
            box = ".course-patch-explorer"
            try:
                page.wait_for_selector(f"{box} .noUi-handle", timeout=60_000)
                page.wait_for_selector(f"{box} img", timeout=30_000)
            except Exception as err:
                raise AssertionError(f"the patch explorer did not render ({err})\n{log}") from None
            widget_js = [u for u in log.served if "html-manager" in u or "requirejs" in u]
            assert len(widget_js) >= 2, f"require.js and the html-manager were not both loaded\n{log}"
            explorer = page.locator(box)
            explorer.scroll_into_view_if_needed()
            i = patch["index"]
            _wait_for_sha(page, box, patch_frames[i], log, f"patch explorer at start ({patch['options'][i]})")
            explorer.screenshot(path=str(shots / "patch_explorer_start.png"))
            before_png = explorer.screenshot()

            handle = page.locator(f"{box} .noUi-handle").first
            handle.focus()
            steps = [("ArrowLeft", i - 1), ("ArrowLeft", i - 2), ("ArrowRight", i - 1)] if i >= 2 else \
                [("ArrowRight", i + 1), ("ArrowRight", i + 2), ("ArrowLeft", i + 1)]
            for key, want in steps:
                page.keyboard.press(key)
                _wait_for_sha(page, box, patch_frames[want], log, f"patch explorer after {key} "
                              f"(expected {patch['options'][want]})")
                readout = page.locator(f"{box} .widget-readout").first.inner_text()
                assert readout.strip() == patch["options"][want], (readout, patch["options"][want])
            explorer.screenshot(path=str(shots / "patch_explorer_moved.png"))
            assert explorer.screenshot() != before_png, f"the patch explorer looks the same after moving\n{log}"

            # the mouse: click the left end of the slider's track -> the first patch size
            track = page.locator(f"{box} .noUi-target").first.bounding_box()
            assert track is not None
            page.mouse.click(track["x"] + 2, track["y"] + track["height"] / 2)
            _wait_for_sha(page, box, patch_frames[0], log, "patch explorer after a click at the track's left end")
            page.wait_for_timeout(500)  # let the handle's slide animation finish before the picture is taken
            explorer.screenshot(path=str(shots / "patch_explorer_smallest.png"))

            # ---- the head-count explorer -------------------------------------------------------------
            hbox = ".course-head-explorer"
            page.wait_for_selector(f"{hbox} .noUi-handle", timeout=30_000)
            hexp = page.locator(hbox)
            hexp.scroll_into_view_if_needed()

            def head_frames(k: int) -> list[str]:
                _info, _selector, inner = state[heads["pages"][k]]["state"]["children"]
                return [_image_sha(state, _model_id(c)) for c in state[_model_id(inner)]["state"]["children"]]

            k = heads["index"]
            _wait_for_sha(page, hbox, head_frames(k)[0], log, "head explorer at start (all heads)")
            hexp.screenshot(path=str(shots / "head_explorer_start.png"))
            hbefore = hexp.screenshot()
            # choose one head with the (visible) toggle buttons of this head count
            _head_button(page, hbox, "1").click()
            _wait_for_sha(page, hbox, head_frames(k)[2], log, "head explorer after clicking head 1")
            hexp.screenshot(path=str(shots / "head_explorer_head1.png"))
            assert hexp.screenshot() != hbefore
            # move the head-count slider with the keyboard: the page switches to the other model's heads
            page.locator(f"{hbox} .noUi-handle").first.focus()
            key, k2 = ("ArrowRight", k + 1) if k + 1 < len(heads["pages"]) else ("ArrowLeft", k - 1)
            page.keyboard.press(key)
            _wait_for_sha(page, hbox, head_frames(k2)[0], log, f"head explorer after {key} on the head count")
            n_heads = heads["options"][k2]
            info = page.locator(f"{hbox} .widget-html:visible").last.inner_text()
            assert f"H = {n_heads} head" in info, info
            _head_button(page, hbox, "0").click()
            _wait_for_sha(page, hbox, head_frames(k2)[1], log, f"head explorer, {n_heads} heads, head 0")
            hexp.screenshot(path=str(shots / "head_explorer_moved.png"))
            page.screenshot(path=str(shots / "page.png"), full_page=False)
        finally:
            browser.close()
    errors = _problems(log)
    assert not errors, "errors on the page:\n  " + "\n  ".join(errors) + f"\n{log}"


# ------------------------------------------------------------------------------------------------
# Every page: errors, fallbacks, accessibility, column fit, figure text
# ------------------------------------------------------------------------------------------------
def _toc_pages() -> list[str]:
    files = [TOC["root"]]
    for part in TOC.get("parts", [{"chapters": TOC.get("chapters", [])}]):
        files += [c["file"] for c in part["chapters"]]
    return files


# Every page of the site: the table of contents, plus the pages Sphinx makes itself.
PAGES = [f"{f}.html" for f in _toc_pages()] + ["genindex.html", "search.html"]
MIN_FIGURE_TEXT_PX = 9.0
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}  # a phone held upright (CSS px)
PROBLEM_PREFIXES = ("page error", "console.error", "request failed", "HTTP ", "NOT SERVED", "aborted")


def _problems(log: _Log) -> list[str]:
    """The log lines that are errors: console errors, page errors, failed or refused requests."""
    return [line for line in log.lines if line.startswith(PROBLEM_PREFIXES)]


def _axe_path(nm: Path) -> Path:
    url = CONFIG.get("test_tools", {}).get("axe_core", "")
    m = CDN.match(url)
    assert m and m.group(1) == "axe-core", f"_config.yml test_tools.axe_core should be a jsDelivr URL, got {url!r}"
    pkg = nm / "axe-core"
    manifest = pkg / "package.json"
    if not manifest.is_file():
        _missing(f"axe-core is not installed in {nm} (.ci/run installs axe-core@{m.group(2)} with npm)")
    installed = json.loads(manifest.read_text())["version"]
    assert installed == m.group(2), f"node_modules has axe-core {installed}, _config.yml pins {m.group(2)}"
    return pkg / m.group(3)


_WAIT_FOR_WIDGETS = """async () => {
    const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
    for (let i = 0; i < 300; i++) {
        const done = document.querySelectorAll('.widget-subarea .jupyter-widgets').length >= views;
        const mj = window.MathJax;
        const math = !(mj && mj.startup && mj.startup.promise) || await Promise.race([
            mj.startup.promise.then(() => true), new Promise(r => setTimeout(() => r(false), 50))]);
        if (done && math) return views;
        await new Promise(r => setTimeout(r, 100));
    }
    return -views;
}"""

# Which elements stick out of the article column, grouped by the cell (or block) they belong to.
_OVERFLOW = """() => {
    const art = document.querySelector('article.bd-article') || document.querySelector('main');
    const box = art.getBoundingClientRect();
    const left = box.left + parseFloat(getComputedStyle(art).paddingLeft) - 1;
    const right = box.right - parseFloat(getComputedStyle(art).paddingRight) + 1;
    const cells = [...art.querySelectorAll('.cell')];
    const found = new Map();
    for (const el of art.querySelectorAll('*')) {
        if (el.closest('.course-scroll, mjx-assistive-mml')) continue;  // MathJax's off-screen MathML copy
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        // its box sticks out of the column, or it is a scroll box whose content needs sideways scrolling
        // (more than 4 px: MathJax's glyph boxes overhang theirs by a pixel or two)
        const cs = getComputedStyle(el);
        const scrolls = cs.overflowX !== 'visible' && el.clientWidth > 0 && cs.display === 'block';
        const hidden = scrolls ? el.scrollWidth - el.clientWidth : 0;
        if (r.right <= right && r.left >= left && hidden <= 4) continue;
        if (cs.visibility === 'hidden' || cs.display === 'none') continue;
        const cell = el.closest('.cell');
        const block = el.closest('pre, mjx-container, .math, table, img, p, li, dl, h1, h2, h3, h4') || el;
        let what;
        if (cell) {
            const src = (cell.querySelector('.cell_input pre') || {}).innerText || '';
            const part = el.closest('.cell_output') ? 'output' : 'code';
            what = `code cell ${cells.indexOf(cell) + 1} (${src.split('\\n')[0].slice(0, 50)}...): ${part}`;
        } else {
            what = `${block.tagName.toLowerCase()} "${(block.innerText || block.getAttribute('src') || '')
                .replace(/\\s+/g, ' ').slice(0, 60)}"`;
        }
        const over = Math.round(Math.max(r.right - right, left - r.left, hidden));
        found.set(what, Math.max(found.get(what) || 0, over));
    }
    return [Math.round(right - left - 2), [...found].map(([w, px]) => `${w} sticks out by ${px} px`)];
}"""

# Every <img> in the article: where it comes from, its alt text and its natural and rendered widths.
_IMAGES = """() => [...(document.querySelector('article.bd-article') || document).querySelectorAll('img')]
    .filter(i => i.offsetParent !== null).map(i => ({
        src: i.getAttribute('src').slice(0, 200), alt: i.getAttribute('alt'), title: i.getAttribute('title'),
        natural: i.naturalWidth, rendered: i.getBoundingClientRect().width, complete: i.complete,
        widget: !!i.closest('.widget-subarea'), fallback: !!i.closest('.course-widget-fallback'),
        cell: [...document.querySelectorAll('.cell')].indexOf(i.closest('.cell')) + 1}))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed (pip install playwright; no browser download "
                 "is needed, the test drives Debian's chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def visits(server: str, browser: Any, built_book: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each page opened once with the CDN served from npm: its log, axe-core's findings, what sticks out of
    the column and its images. ``{page: {...}}``; a full-page screenshot of each goes to the screenshot
    folder."""
    nm = _node_modules()
    axe = _axe_path(nm)
    shots = Path(os.environ.get("COURSE_SCREENSHOTS", tmp_path_factory.mktemp("shots")))
    shots.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in PAGES:
        if not (Path(built_book["html"]) / name).is_file():
            out[name] = {"missing": True}
            continue
        log = _Log()
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.on("console", lambda m, log=log: log.add(f"console.{m.type}: {m.text}"))
            page.on("pageerror", lambda e, log=log: log.add(f"page error: {e}"))
            page.on("requestfailed", lambda r, log=log: log.add(f"request failed: {r.url} ({r.failure})"))
            page.on("response", lambda r, log=log: r.status >= 400 and log.add(f"HTTP {r.status}: {r.url}"))
            page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), _route_cdn(nm, log))
            page.goto(server + name, wait_until="load")
            views = page.evaluate(_WAIT_FOR_WIDGETS)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / (Path(name).stem + ".png")), full_page=True)
            width, overflow = page.evaluate(_OVERFLOW)
            images = page.evaluate(_IMAGES)
            fallbacks_shown = page.evaluate(
                "() => [...document.querySelectorAll('.course-widget-fallback')]"
                ".filter(f => f.checkVisibility()).length")
            page.add_script_tag(path=str(axe))
            axe_result = page.evaluate("""async () => {
                const r = await axe.run(document, {resultTypes: ['violations']});
                return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v =>
                    `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}x: ` +
                    v.nodes.slice(0, 4).map(n => n.target.join(' ')).join(' | ') + ')');
            }""")
        finally:
            page.close()
        out[name] = {"log": log, "views": views, "width": width, "overflow": overflow, "images": images,
                     "axe": axe_result, "fallbacks_shown": fallbacks_shown}
    return out


def _report(per_page: dict[str, list[str]]) -> str:
    return "\n".join(f"{page}:\n    " + "\n    ".join(items) for page, items in per_page.items() if items)


def test_every_page_of_the_site_is_checked(built_book: dict) -> None:
    html = Path(built_book["html"])
    built = {str(p.relative_to(html)) for p in html.rglob("*.html")
             if not str(p.relative_to(html)).startswith(("_static", "_sources", "_images"))}
    unchecked = sorted(built - set(PAGES) - {"index.html"})  # index.html only redirects to the first page
    assert not unchecked, f"pages built but not opened by this test: {unchecked}"
    missing = sorted(set(PAGES) - built)
    assert not missing, f"pages the test expects but the build did not make: {missing}"


def test_no_console_errors_or_failed_requests_on_any_page(visits: dict) -> None:
    bad = {}
    for name, v in visits.items():
        if v.get("missing"):
            bad[name] = ["the page was not built"]
            continue
        bad[name] = _problems(v["log"])
        if v["views"] < 0:
            bad[name].append(f"only part of its {-v['views']} widgets rendered within 30 s")
    assert not any(bad.values()), "errors in the browser:\n" + _report(bad)


def test_widgets_hide_their_stand_in_once_rendered(visits: dict) -> None:
    shown = {name: v["fallbacks_shown"] for name, v in visits.items() if v.get("fallbacks_shown")}
    assert not shown, f"widget stand-ins still visible although the widgets rendered: {shown}"


def test_axe_finds_no_serious_or_critical_violation(visits: dict) -> None:
    bad = {name: v["axe"] for name, v in visits.items() if not v.get("missing")}
    assert not any(bad.values()), "axe-core, serious and critical violations:\n" + _report(bad)


_FILE_NAME = re.compile(r"(^|/)[^/\s]+\.(png|jpe?g|gif|svg|webp)$", re.I)


def test_every_figure_has_alt_text(visits: dict) -> None:
    """Executed figures and widget stand-ins need alt text that says something (myst-nb's default alt is the
    image's file name); a widget's own images need alt or a title (the Image widget's ``tooltip``)."""
    bad: dict[str, list[str]] = {}
    for name, v in visits.items():
        for img in v.get("images", []):
            text = (img["alt"] or "").strip() or ((img["title"] or "").strip() if img["widget"] else "")
            if not text or _FILE_NAME.search(text):
                where = "widget image" if img["widget"] else f"code cell {img['cell']}" if img["cell"] else "image"
                bad.setdefault(name, []).append(f"{where}: {img['src'][:80]} has alt={img['alt']!r}")
    hint = 'give the cell the metadata {"mystnb": {"image": {"alt": "what the figure shows"}}}'
    assert not bad, f"figures without alt text ({hint}; myst-nb puts it on every image the cell outputs):\n" \
        + _report(bad)


def test_nothing_is_wider_than_the_article_column(visits: dict) -> None:
    bad = {name: v["overflow"] for name, v in visits.items() if v.get("overflow")}
    width = next((v["width"] for v in visits.values() if "width" in v), "?")
    assert not bad, (f"elements wider than the {width} px article column (wrap code under the book's line "
                     "length, split long equations, draw figures for the column, or put a deliberately wide "
                     "element in a <div class=\"course-scroll\">):\n" + _report(bad))


def test_figure_text_is_at_least_9_px(visits: dict, built_book: dict) -> None:
    """Each figure's smallest text, as rendered: ``course:min_text_px`` (PNG pixels, recorded when the figure
    was saved) x rendered width / natural width."""
    from course_pkg.figure_text import KEY_PX, read_text_metadata

    html = Path(built_book["html"])
    bad: dict[str, list[str]] = {}
    for name, v in visits.items():
        for img in v.get("images", []):
            src = img["src"]
            if src.startswith("data:") or img["fallback"]:
                continue  # a widget stand-in repeats a widget frame, checked as the widget's own image
            if img["widget"]:
                where = "widget frame"
                png = None
            else:
                where = f"code cell {img['cell']}" if img["cell"] else "image"
                path = (html / name).parent / src.split("?")[0]
                png = path.read_bytes() if path.is_file() else None
            if png is None and img["widget"]:
                continue  # widget frames are blob: URLs; their PNGs are checked in the explorer test's state
            meta = read_text_metadata(png) if png else {}
            if KEY_PX not in meta:
                bad.setdefault(name, []).append(f"{where} ({src}): the PNG records no text size ({KEY_PX}); "
                                                "display figures through course_pkg (plotting.figure_png)")
                continue
            scale = img["rendered"] / img["natural"] if img["natural"] else 0.0
            px = float(meta[KEY_PX]) * scale
            if px < MIN_FIGURE_TEXT_PX:
                bad.setdefault(name, []).append(
                    f"{where} ({src}): smallest text {float(meta[KEY_PX]):.1f} px in a {img['natural']} px "
                    f"wide PNG shown {img['rendered']:.0f} px wide -> {px:.1f} px (< {MIN_FIGURE_TEXT_PX:g})")
    assert not bad, "figure text smaller than 9 px on the page:\n" + _report(bad)


def test_progress_bars_are_static_text(built_book: dict) -> None:
    """Every tqdm bar that a chapter displayed while it ran is a line of text on its page, not a widget."""
    from course_pkg.widget_fallback import PROGRESS_CLASS, progress_text

    html = Path(built_book["html"])
    executed = html.parent / "jupyter_execute"
    bad, seen = [], 0
    for nb_path in sorted(executed.rglob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        state = nb.get("metadata", {}).get("widgets", {}).get(
            "application/vnd.jupyter.widget-state+json", {}).get("state", {})
        bars = []
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                view = output.get("data", {}).get("application/vnd.jupyter.widget-view+json")
                if view and view["model_id"] in state and progress_text(state, view["model_id"]) is not None:
                    bars.append(view["model_id"])
        if not bars:
            continue
        page = html / nb_path.relative_to(executed).with_suffix(".html")
        text = page.read_text(encoding="utf-8")
        lines = re.findall(rf'<div class="[^"]*{PROGRESS_CLASS}[^"]*">.*?<pre>(.*?)</pre>', text, re.S)
        seen += len(lines)
        if len(lines) != len(bars) or not all("%|" in ln for ln in lines):
            bad.append(f"{page.name}: {len(bars)} progress bars ran, {len(lines)} text lines shown: {lines}")
        for model_id in bars:
            if f'"model_id": "{model_id}"' in text:
                bad.append(f"{page.name}: progress bar {model_id} is still a widget")
    assert not bad, "\n".join(bad)
    assert seen, "no chapter showed a progress bar: this test checks nothing (chapters 2, 4 and 6 have one)"


def test_widget_fallbacks_show_with_the_cdn_blocked(server: str, browser: Any, built_book: dict,
                                                     tmp_path: Path) -> None:
    """With every outside request refused (a firewall, a CDN outage), each widget shows its first frame and
    one line saying it needs the page's scripts."""
    html = Path(built_book["html"])
    shots = Path(os.environ.get("COURSE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    pages = [p for p in PAGES if (html / p).is_file()
             and 'type="application/vnd.jupyter.widget-view+json"' in (html / p).read_text(encoding="utf-8")]
    assert CHAPTER in pages, f"{CHAPTER} has no widget: nothing to fall back from"
    bad: dict[str, list[str]] = {}
    for name in pages:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())
            page.goto(server + name, wait_until="load")
            page.wait_for_timeout(1500)
            found = page.evaluate("""() => [...document.querySelectorAll(
                    'script[type="application/vnd.jupyter.widget-view+json"]')].map(s => {
                const f = s.parentElement.querySelector('.course-widget-fallback');
                if (!f) return {missing: true};
                const imgs = [...f.querySelectorAll('img')];
                const note = f.querySelector('.course-widget-fallback-note');
                return {visible: f.checkVisibility(), images: imgs.length,
                        loaded: imgs.every(i => i.complete && i.naturalWidth > 0 && i.checkVisibility()),
                        alt: imgs.every(i => (i.alt || '').trim().length > 0),
                        note: note && note.checkVisibility() ? note.innerText : ''};
            })""")
            for i, f in enumerate(found):
                problems = (["no stand-in"] if f.get("missing") else
                            [k for k, ok in (("hidden", f["visible"]), ("no image", f["images"] > 0),
                                             ("image not shown", f["loaded"]), ("no alt", f["alt"]),
                                             ("no note about the scripts", "scripts" in f["note"])) if not ok])
                if problems:
                    bad.setdefault(name, []).append(f"widget {i + 1}: " + ", ".join(problems))
            first = page.locator(".course-widget-fallback").first
            if first.count():
                first.scroll_into_view_if_needed()
                first.screenshot(path=str(shots / f"fallback_{Path(name).stem}.png"))
        finally:
            page.close()
    assert not bad, "widget stand-ins with the CDN blocked:\n" + _report(bad)


# ------------------------------------------------------------------------------------------------
# A phone: every page at 390 px
# ------------------------------------------------------------------------------------------------
# What a 390 px screen shows: whether the page scrolls sideways, what is cut off (sticks out of the column
# and is not inside a box that scrolls sideways within it), figures wider than their box with no line saying
# so, the slider values, and every visible image's natural and rendered widths (widget frames with their
# PNG bytes, read back from their blob: URLs).
_PHONE = """async () => {
    const art = document.querySelector('article.bd-article') || document.querySelector('main');
    const box = art.getBoundingClientRect();
    const left = box.left + parseFloat(getComputedStyle(art).paddingLeft) - 1;
    const right = box.right - parseFloat(getComputedStyle(art).paddingRight) + 1;
    const scrollsX = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
    const cut = new Map();
    for (const el of art.querySelectorAll('*')) {
        if (el.closest('mjx-assistive-mml')) continue;  // MathJax's off-screen MathML copy
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        const cs = getComputedStyle(el);
        if (cs.visibility === 'hidden' || cs.display === 'none') continue;
        if (r.right <= right && r.left >= left) continue;
        // it sticks out of the column: fine inside a box that scrolls sideways and itself fits the column
        let a = el.parentElement, ok = false;
        while (a && a !== art) {
            const ar = a.getBoundingClientRect();
            if (scrollsX(a) && ar.right <= right + 1 && ar.left >= left - 1) { ok = true; break; }
            const ao = getComputedStyle(a).overflowX;
            // a clipping box cuts it off unless it lies inside (4 px: MathJax's glyphs overhang their boxes)
            if ((ao === 'hidden' || ao === 'clip') && (r.right > ar.right + 4 || r.left < ar.left - 4)) break;
            a = a.parentElement;
        }
        if (ok) continue;
        const block = el.closest('pre, mjx-container, table, img, p, li, h1, h2, h3, .cell') || el;
        const what = `${block.tagName.toLowerCase()} "${(block.innerText || block.getAttribute('src') || '')
            .replace(/\\s+/g, ' ').slice(0, 60)}"`;
        cut.set(what, Math.max(cut.get(what) || 0, Math.round(Math.max(r.right - right, left - r.left))));
    }
    const silent = [], images = [];
    for (const img of art.querySelectorAll('img')) {
        if (!img.checkVisibility() || img.closest('.course-widget-fallback')) continue;
        const widget = img.closest('.widget-subarea');
        const anchor = widget || img.closest('.cell_output');
        const rendered = img.getBoundingClientRect().width;
        let bytes = null;
        if (widget && img.src.startsWith('blob:')) {
            const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
            bytes = btoa(Array.from(buf, b => String.fromCharCode(b)).join(''));
        }
        images.push({src: img.getAttribute('src').slice(0, 200), natural: img.naturalWidth, rendered,
                     widget: !!widget, bytes, alt: (img.alt || '').slice(0, 60)});
        if (!anchor) continue;
        const frame = widget ? (img.closest('.widget-box') || anchor) : anchor;
        if (rendered <= frame.clientWidth + 1) continue;
        const note = anchor.nextElementSibling;
        if (!(note && note.classList.contains('course-wide-note') && note.checkVisibility()))
            silent.push(img.alt || img.src.slice(0, 60));
    }
    const readouts = [...document.querySelectorAll('.widget-readout')].filter(e => e.checkVisibility())
        .map(e => { const r = e.getBoundingClientRect();
                    return {text: e.innerText, left: Math.round(r.left), right: Math.round(r.right)}; });
    return {scroll: [document.scrollingElement.scrollWidth, window.innerWidth],
            cut: [...cut].map(([w, px]) => `${w} is cut off or sticks out by ${px} px`),
            silent, images, readouts};
}"""


@pytest.fixture(scope="module")
def phone_visits(server: str, browser: Any, built_book: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each page opened on a 390 px touch screen (the CDN served from npm, so the widgets render):
    ``{page: what _PHONE found, plus the log}``; a full-page screenshot of each goes to the screenshot folder
    as ``phone_<page>.png``."""
    nm = _node_modules()
    shots = Path(os.environ.get("COURSE_SCREENSHOTS", tmp_path_factory.mktemp("phone")))
    shots.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for name in PAGES:
        if not (Path(built_book["html"]) / name).is_file():
            out[name] = {"missing": True}
            continue
        log = _Log()
        context = browser.new_context(**PHONE)
        page = context.new_page()
        try:
            page.on("pageerror", lambda e, log=log: log.add(f"page error: {e}"))
            page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), _route_cdn(nm, log))
            page.goto(server + name, wait_until="load")
            page.evaluate(_WAIT_FOR_WIDGETS)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(300)
            out[name] = page.evaluate(_PHONE)
            out[name]["log"] = log
            page.screenshot(path=str(shots / f"phone_{Path(name).stem}.png"), full_page=True)
        finally:
            context.close()
    return out


def test_a_phone_never_scrolls_the_page_sideways(phone_visits: dict) -> None:
    bad = {name: [f"the page is {v['scroll'][0]} px wide on a {v['scroll'][1]} px screen"]
           for name, v in phone_visits.items() if not v.get("missing") and v["scroll"][0] > v["scroll"][1]}
    assert not bad, "pages that scroll sideways at 390 px:\n" + _report(bad)


def test_a_phone_cuts_nothing_off(phone_visits: dict) -> None:
    """What is wider than a phone's column lies in a box that scrolls sideways inside the column."""
    bad = {name: v["cut"] for name, v in phone_visits.items() if v.get("cut")}
    assert not bad, ("at 390 px, elements cut off or pushing out of the column (put them in a box that scrolls "
                     "sideways: book/_static/course.css):\n" + _report(bad))


def test_a_phone_shows_figure_text_at_9_px_or_more(phone_visits: dict, built_book: dict) -> None:
    """Executed figures and the explorers' frames: smallest text x rendered / natural width >= 9 CSS px."""
    from course_pkg.figure_text import KEY_PX, read_text_metadata

    html = Path(built_book["html"])
    bad: dict[str, list[str]] = {}
    seen = 0
    for name, v in phone_visits.items():
        for img in v.get("images", []):
            if img["src"].startswith("data:"):
                continue
            if img["widget"]:
                png = base64.b64decode(img["bytes"]) if img["bytes"] else None
            else:
                path = (html / name).parent / img["src"].split("?")[0]
                png = path.read_bytes() if path.is_file() and path.suffix == ".png" else None
            if png is None:
                continue
            meta = read_text_metadata(png)
            if KEY_PX not in meta:
                continue  # test_figure_text_is_at_least_9_px names figures that record no text size
            seen += 1
            px = float(meta[KEY_PX]) * img["rendered"] / img["natural"]
            if px < MIN_FIGURE_TEXT_PX:
                bad.setdefault(name, []).append(f"{img['alt'] or img['src'][:60]}: {px:.1f} px")
    assert seen, "no figure with a recorded text size was shown at 390 px: this test checks nothing"
    assert not bad, "figure text under 9 px on a 390 px screen:\n" + _report(bad)


def test_a_phone_says_when_a_figure_is_wider_than_the_screen(phone_visits: dict) -> None:
    bad = {name: v["silent"] for name, v in phone_visits.items() if v.get("silent")}
    assert not bad, ("figures wider than a 390 px screen with no line under them saying they scroll "
                     "(course.js adds .course-wide-note):\n" + _report(bad))


def test_a_phone_shows_the_slider_values(phone_visits: dict) -> None:
    """Chapter 6's explorers: each slider's current value is on the screen, not off its right edge."""
    v = phone_visits[CHAPTER]
    assert v["readouts"], f"no slider value shown on {CHAPTER} at 390 px"
    off = [r for r in v["readouts"] if r["left"] < 0 or r["right"] > PHONE["viewport"]["width"] or not r["text"]]
    assert not off, f"slider values off a 390 px screen or empty: {off}"


# ------------------------------------------------------------------------------------------------
# Formulas with no network
# ------------------------------------------------------------------------------------------------
_MATH = r"""async () => {
    const mj = window.MathJax;
    if (!mj || !mj.startup || !mj.startup.promise) return {loaded: false};
    await Promise.race([mj.startup.promise, new Promise(r => setTimeout(r, 20000))]);
    const art = document.querySelector('article.bd-article') || document.body;
    const sources = art.querySelectorAll('.math').length;  // Sphinx's math nodes (inline and display)
    const typeset = art.querySelectorAll('.math mjx-container').length;
    const errors = [...art.querySelectorAll('mjx-merror')].map(e => e.innerText.slice(0, 80));
    const walker = document.createTreeWalker(art, NodeFilter.SHOW_TEXT);
    const raw = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (n.parentElement.closest('pre, code, script, mjx-container, .highlight')) continue;
        if (/\\\(|\\\[|\\frac|\\mathrm/.test(n.nodeValue)) raw.push(n.nodeValue.trim().slice(0, 60));
    }
    return {loaded: true, version: mj.version, sources, typeset, errors, raw};
}"""


def test_formulas_render_with_every_cdn_blocked(server: str, browser: Any, built_book: dict) -> None:
    """Every page's formulas, with every outside request refused (a laptop offline): the book's own MathJax
    (``_static/mathjax/``) typesets each one; no raw TeX, no MathJax error, no failed request."""
    html = Path(built_book["html"])
    bad: dict[str, list[str]] = {}
    formulas = 0
    for name in PAGES:
        if not (html / name).is_file():
            continue
        log = _Log()
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            page.on("requestfailed", lambda r, log=log: r.url.startswith(server) and log.add(
                f"request failed: {r.url} ({r.failure})"))
            page.on("response", lambda r, log=log: r.status >= 400 and log.add(f"HTTP {r.status}: {r.url}"))
            page.on("request", lambda r, log=log: "mathjax" in r.url.lower() and not r.url.startswith(server)
                    and log.add(f"MathJax requested from outside: {r.url}"))
            page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda route: route.abort())
            page.goto(server + name, wait_until="load")
            found = page.evaluate(_MATH)
            page.wait_for_load_state("networkidle")
        finally:
            page.close()
        problems = [line for line in log.lines if not line.startswith("request failed: " + server + "_static/")
                    or "mathjax" in line]
        if not found["loaded"]:
            if 'class="math' in (html / name).read_text(encoding="utf-8"):
                problems.append("MathJax did not load")  # pages with no maths do not load it
        else:
            formulas += found["sources"]
            if found["typeset"] < found["sources"]:
                problems.append(f"{found['sources'] - found['typeset']} of {found['sources']} formulas not typeset")
            problems += [f"MathJax error: {e}" for e in found["errors"]]
            problems += [f"raw TeX on the page: {t!r}" for t in found["raw"]]
        if problems:
            bad[name] = problems
    assert formulas > 50, f"only {formulas} formulas found on the whole site: this test checks little"
    assert not bad, "formulas with the CDN blocked:\n" + _report(bad)
