"""Figures on a narrow screen keep readable text: they stop shrinking and scroll sideways instead.

A Sphinx extension (listed in ``_config.yml``). The chapters' figures are drawn for the book's column, about
700 px wide; a phone's column is about 360 px, and a figure shrunk to fit it has 5-7 px text. Every figure
PNG records the size of its smallest text (``course:min_text_px``, :mod:`course_pkg.figure_text`), so when
each page is written this gives each figure ``<img>`` a ``min-width``: the width at which that text is still
9 CSS px (:func:`course_pkg.figure_text.readable_width`). On a wide screen nothing changes (the figure fits).
On a narrow one the figure stops there, its output box scrolls sideways (``book/_static/course.css``), and
the page script (``book/_static/course.js``) puts one line under it that says so.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from .figure_text import readable_width

__all__ = ["READABLE_ATTR", "setup", "with_min_widths"]

READABLE_ATTR = "data-course-readable"  # the img attribute course.js and the browser test look for
_IMG = re.compile(r'<img\b[^>]*?\bsrc="(?P<src>[^"]*?_images/(?P<name>[^"/]+\.png))"[^>]*?/?>')


def with_min_widths(body: str, widths: dict[str, int]) -> str:
    """``body`` (a page's HTML) with ``style="min-width: Npx"`` and :data:`READABLE_ATTR` on each ``<img>`` of
    an ``_images/<name>.png`` that ``widths`` (``{name: px}``) knows and that has no style of its own."""

    def add(m: re.Match[str]) -> str:
        tag, px = m.group(0), widths.get(html.unescape(m.group("name")))
        if px is None or " style=" in tag or READABLE_ATTR in tag:
            return tag
        end = -2 if tag.endswith("/>") else -1
        close = " />" if end == -2 else ">"
        return f'{tag[:end].rstrip()} style="min-width: {px}px" {READABLE_ATTR}="{px}"{close}'

    return _IMG.sub(add, body)


def _widths(app: Any) -> dict[str, int]:
    """``{name in _images/: readable width}`` for the PNGs the builder has collected so far."""
    cache: dict[str, int] = app.env.__dict__.setdefault("_course_readable_widths", {})
    for src, name in getattr(app.builder, "images", {}).items():
        if name in cache or not name.endswith(".png"):
            continue
        path = Path(app.srcdir) / src
        try:
            cache[name] = readable_width(path.read_bytes())
        except (OSError, ValueError):
            continue  # not a readable PNG: leave the figure as the theme shows it
    return cache


def _page_context(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if doctree is None or "body" not in context:
        return
    context["body"] = with_min_widths(context["body"], _widths(app))


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
