"""A real browser on the built book: chapter 6's explorers work on the static page, with no kernel.

Headless Debian Chromium, driven by Playwright, opens the chapter as a reader would (served over HTTP from
127.0.0.1), waits for the widgets to render from the widget state saved in the page, moves each slider with
the keyboard and the mouse and clicks the head selector, and checks that the picture changes, and changes to
the right frame: the bytes of the ``<img>`` the browser shows are compared with the PNG buffers saved in the
page's widget state.

The page loads require.js and ``@jupyter-widgets/html-manager`` from jsDelivr (``nb_ipywidgets_js`` in
``_config.yml``). This machine has no internet, so every request to ``https://cdn.jsdelivr.net/npm/<pkg>@<ver>/
<path>`` is answered from ``node_modules/<pkg>/<path>``, the same files installed from npm by ``.ci/run``
(the version must match, and the integrity hashes on the page must accept them). Any other outside request is
aborted and logged; the log is part of every failure message.

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

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
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
def site(built_book: dict) -> Iterator[str]:
    """The built book over HTTP on 127.0.0.1 (a random free port); yields the chapter's URL."""
    html = Path(built_book["html"])
    page = html / CHAPTER
    if not page.is_file():
        pytest.fail(f"the build made no {CHAPTER} (return code {built_book['returncode']}); build log tail:\n"
                    + built_book["log"][-3000:], pytrace=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{CHAPTER}"
    finally:
        server.shutdown()
        server.server_close()


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
    errors = [line for line in log.lines if line.startswith("page error") and "widget" in line.lower()]
    assert not errors, f"widget errors on the page\n{log}"
