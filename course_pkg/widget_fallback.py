"""What the published book shows when its widget scripts cannot load, and progress bars as plain text.

A Sphinx extension (listed in ``_config.yml``), run on every page of the Jupyter Book build after myst-nb has
turned a notebook into a document. It reads the widget state that myst-nb saved for the page (the same JSON
the browser gets) and changes each widget output:

* **Progress bars** (``tqdm.auto`` in a kernel draws an ``HBox`` of ``HTML``, ``FloatProgress``, ``HTML``)
  become one line of text, as ``tqdm`` prints it in a terminal, e.g.
  ``training: 100%|██████████| 40/40 [00:03<00:00, 12.1batch/s]``. A finished bar needs no script.
* **Every other widget** (the explorers of chapter 6) gets a static picture in front of it: the images the
  widget shows first (the first frame: the selected page of every ``Stack``/``Tab``/``Accordion``), with alt
  text, and one line saying that the page needs its scripts for the slider. ``book/_static/course.css`` hides
  this picture as soon as the widget has rendered (``:has()``), so no script is needed for the fallback: a
  reader behind a firewall or during a CDN outage sees the picture and the note instead of nothing.

Pages left with no widget view lose the widget scripts (they would load for nothing). The extension also

* points require.js at the html-manager's own folder on the CDN (``var require = {paths: ...}`` before
  require.js loads), so that the widget CSS's font files are fetched from there, not relative to the page;
* drops script tags that a page would otherwise carry twice (sphinx-thebe's inline configuration is added
  twice by the Jupyter Book build: ``Identifier 'THEBE_JS_URL' has already been declared``).

Pure functions (:func:`widget_tree_images`, :func:`progress_text`, :func:`fallback_html`) take the widget
state dictionary ``{model_id: {"model_name": ..., "state": {...}, "buffers": [...]}}`` and are tested
without Sphinx.
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import re
from typing import Any, Mapping, Optional

from .figure_text import png_width

__all__ = [
    "FALLBACK_CLASS",
    "PROGRESS_CLASS",
    "fallback_html",
    "progress_text",
    "setup",
    "widget_tree_images",
]

FALLBACK_CLASS = "course-widget-fallback"
PROGRESS_CLASS = "course-progress"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_VIEW_SCRIPT = re.compile(r'<script type="application/vnd\.jupyter\.widget-view\+json">(.*?)</script>', re.S)
_BOXES = {"VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel"}
_SELECTORS = {"StackModel", "TabModel", "AccordionModel"}
_PROGRESS = {"FloatProgressModel", "IntProgressModel"}
_CONTROLS = {
    "slider": ("SliderModel", "RangeSliderModel"),
    "buttons": ("ToggleButtonsModel", "ButtonModel", "ToggleButtonModel"),
    "menu": ("DropdownModel", "SelectModel", "RadioButtonsModel"),
}

State = Mapping[str, Mapping[str, Any]]


def _ref(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("IPY_MODEL_"):
        raise ValueError(f"expected a widget reference 'IPY_MODEL_<id>', got {value!r}")
    return value.removeprefix("IPY_MODEL_")


def _model(state: State, model_id: str) -> Mapping[str, Any]:
    if model_id not in state:
        raise KeyError(f"widget model {model_id!r} is not in the page's widget state ({len(state)} models)")
    return state[model_id]


def _text(html_value: str) -> str:
    """Visible text of a small HTML fragment: tags dropped, entities decoded, spaces collapsed."""
    text = re.sub(r"<[^>]+>", " ", html_value)
    return re.sub(r"\s+", " ", html_lib.unescape(text)).strip()


def _png(model: Mapping[str, Any]) -> Optional[bytes]:
    """The PNG bytes of an ``ImageModel`` (kept as a base64 buffer in the saved state), else None."""
    if model.get("state", {}).get("format", "png") != "png":
        return None
    for buf in model.get("buffers", []):
        if list(buf.get("path", [])) == ["value"]:
            data = buf["data"]
            return base64.b64decode(data) if buf.get("encoding", "base64") == "base64" else data.encode()
    return None


def _walk(state: State, model_id: str, seen: set[str]) -> list[tuple[str, Mapping[str, Any]]]:
    """``(model_id, model)`` of every widget a reader sees first, in document order (hidden stack pages
    skipped)."""
    if model_id in seen:
        raise ValueError(f"widget model {model_id!r} contains itself")
    seen = seen | {model_id}
    model = _model(state, model_id)
    out = [(model_id, model)]
    name, st = model.get("model_name", ""), model.get("state", {})
    children = [_ref(c) for c in st.get("children", [])]
    if name in _SELECTORS:
        index = st.get("selected_index")
        if name == "AccordionModel" and index is None:
            children = []
        else:
            children = children[index or 0:(index or 0) + 1]
    elif name not in _BOXES:
        children = []
    for child in children:
        out += _walk(state, child, seen)
    return out


def widget_tree_images(state: State, model_id: str) -> list[bytes]:
    """The PNG images that the widget ``model_id`` shows when the page opens (its first frame).

    Args:
        state: the page's widget state, ``{model_id: model}``.
        model_id: the displayed (top) widget.

    Returns:
        PNG bytes in document order; empty when the widget shows no image.
    """
    images = []
    for _mid, model in _walk(state, model_id, set()):
        if model.get("model_name") == "ImageModel":
            png = _png(model)
            if png is not None:
                images.append(png)
    return images


def _progress_parts(state: State, model_id: str) -> Optional[tuple[str, Mapping[str, Any], str]]:
    """``(left text, progress state, right text)`` when ``model_id`` is a tqdm-style bar, else None."""
    model = _model(state, model_id)
    name, st = model.get("model_name"), model.get("state", {})
    if name in _PROGRESS:
        return "", st, ""
    if name not in _BOXES:
        return None
    kids = [_model(state, _ref(c)) for c in st.get("children", [])]
    names = [k.get("model_name") for k in kids]
    if len(kids) == 3 and names[0] == "HTMLModel" and names[1] in _PROGRESS and names[2] == "HTMLModel":
        return (_text(kids[0]["state"].get("value", "")), kids[1]["state"],
                _text(kids[2]["state"].get("value", "")))
    return None


def progress_text(state: State, model_id: str, width: int = 10) -> Optional[str]:
    """A progress bar widget as the one line of text ``tqdm`` prints in a terminal, else None.

    ``tqdm.auto`` in a kernel shows ``HBox([HTML(description + percentage), FloatProgress, HTML(counts and
    rates)])``; the saved state holds its last values, so the line shows how the run ended, e.g.
    ``training: 100%|██████████| 40/40 [00:03<00:00, 12.1batch/s]``.

    Args:
        state: the page's widget state.
        model_id: the displayed widget.
        width: characters of the bar between the ``|``.

    Returns:
        The text line, or None when ``model_id`` is not a progress bar.
    """
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width={width!r} is not valid; use a positive int")
    parts = _progress_parts(state, model_id)
    if parts is None:
        return None
    left, bar, right = parts
    lo, hi, value = float(bar.get("min", 0)), float(bar.get("max", 100)), float(bar.get("value", 0))
    frac = 0.0 if hi <= lo else min(1.0, max(0.0, (value - lo) / (hi - lo)))
    eighths = round(frac * width * 8)
    full, part = divmod(eighths, 8)
    cells = "\u2588" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    cells = cells.ljust(width)
    if not left and not right:  # a bare progress widget: show the percentage as tqdm would
        left = f"{100 * frac:3.0f}%"
    return f"{left}|{cells}| {right}".rstrip()


def _controls(state: State, model_id: str) -> list[str]:
    kinds = []
    for _mid, model in _walk(state, model_id, set()):
        name = model.get("model_name", "")
        for kind, suffixes in _CONTROLS.items():
            if name.endswith(suffixes) and kind not in kinds:
                kinds.append(kind)
    return kinds


def fallback_html(state: State, model_id: str) -> Optional[str]:
    """The static stand-in shown before a widget (and instead of it when the widget scripts cannot load).

    Holds the widget's first frame (:func:`widget_tree_images`) as ``<img>`` elements with alt text made from
    the widget's first HTML text (its title), and one line saying what needs the page's scripts. None when the
    widget shows no image (nothing useful to stand in).

    Args:
        state: the page's widget state.
        model_id: the displayed widget.
    """
    images = widget_tree_images(state, model_id)
    if not images:
        return None
    title = ""
    for _mid, model in _walk(state, model_id, set()):
        if model.get("model_name") in {"HTMLModel", "LabelModel", "HTMLMathModel"}:
            title = _text(model.get("state", {}).get("value", ""))
            if title:
                break
    title = title.split(";")[0].strip() or "interactive figure"
    controls = _controls(state, model_id) or ["controls"]
    what = " and ".join(controls)
    tags = []
    for i, png in enumerate(images):
        try:
            w = png_width(png)
        except ValueError:
            w = 0  # not a PNG: shown without a width
        size = f' width="{w}"' if w else ""
        alt = f"{title}: first frame" + (f" ({i + 1} of {len(images)})" if len(images) > 1 else "")
        tags.append(f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}"{size} '
                    f'alt="{html_lib.escape(alt)}">')
    verb = "needs" if len(controls) == 1 and not controls[0].endswith("s") else "need"
    note = (f"{html_lib.escape(title)}: its {what} {verb} this page's scripts, which did not load; "
            "above is its first frame.")
    return (f'<div class="{FALLBACK_CLASS}">{"".join(tags)}'
            f'<p class="{FALLBACK_CLASS}-note">{note}</p></div>')


# ------------------------------------------------------------------------------------------------
# The Sphinx side
# ------------------------------------------------------------------------------------------------
def _page_state(env: Any, docname: str) -> Optional[dict[str, Any]]:
    js = getattr(env, "nb_metadata", {}).get(docname, {}).get("js_files", {})
    entry = js.get("ipywidgets_state")
    if not entry:
        return None
    body = entry[1].get("body", "")
    return json.loads(body.replace("<\\/", "</"))["state"]


def _process_doctree(app: Any, doctree: Any) -> None:
    """``doctree-read``: progress bars to text, a static stand-in before every other widget view."""
    from docutils import nodes

    env = app.env
    state = _page_state(env, env.docname)
    if state is None:
        return
    left = 0
    for raw in list(doctree.findall(nodes.raw)):
        m = _VIEW_SCRIPT.fullmatch(raw.astext().strip())
        if not m:
            continue
        model_id = json.loads(m.group(1).replace("<\\/", "</"))["model_id"]
        line = progress_text(state, model_id)
        if line is not None:
            block = nodes.literal_block(line, line, classes=["output", "text_plain", PROGRESS_CLASS])
            block["language"] = "none"
            raw.replace_self(block)
            continue
        left += 1
        stand_in = fallback_html(state, model_id)
        if stand_in is not None:
            raw.parent.insert(raw.parent.index(raw), nodes.raw("", stand_in, format="html"))
    if left == 0:  # no widget view left on the page: no widget scripts, no state
        js = env.nb_metadata[env.docname]["js_files"]
        for key in [k for k in js if k.startswith("ipywidgets")]:
            del js[key]


def _require_paths(config: Any) -> Optional[str]:
    """``var require = {paths: ...}`` mapping the html-manager's AMD modules to its folder on the CDN."""
    for url in getattr(config, "nb_ipywidgets_js", {}) or {}:
        m = re.match(r"^(https://.+/@jupyter-widgets/html-manager@[^/]+/dist/)embed-amd\.js$", url)
        if m:
            base = m.group(1)
            names = ["@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/base7",
                     "@jupyter-widgets/controls7", "@jupyter-widgets/output", "@jupyter-widgets/html-manager",
                     "@jupyter-widgets/html-manager/dist/libembed-amd"]
            paths = {n: base + n.rsplit("/", 1)[-1] for n in names}
            return f"var require = {json.dumps({'paths': paths})};"
    return None


def _page_context(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """``html-page-context`` (after myst-nb's): require.js paths on widget pages; no duplicate scripts."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for js in scripts:
        # an inline script is filed under None once and "" once (added to Sphinx's registry and builder)
        key = (getattr(js, "filename", js) or "", tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique
    loads_require = any("require" in str(getattr(js, "filename", "") or "") for js in scripts)
    body = _require_paths(app.config)
    if loads_require and body:
        app.add_js_file(None, body=body, priority=499)


def setup(app: Any) -> dict[str, Any]:
    """Register the extension with Sphinx (``sphinx: extra_extensions`` in ``_config.yml``)."""
    app.connect("doctree-read", _process_doctree)
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
