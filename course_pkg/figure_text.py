"""How small the text of a figure is, written into its PNG so that the book's browser test can check it.

A figure drawn wider than the book's column is shrunk by the browser, and its labels with it. The PNG alone
does not say how big its letters are, so :func:`text_metadata` measures the figure before it is saved (every
visible, non-empty text: titles, labels, tick labels, legends, annotations) and the notebook display path
(:func:`course_pkg.plotting.figure_png`) stores the result as PNG text chunks:

* ``course:min_text_px``: the smallest font size, in pixels of the PNG (points x dpi / 72);
* ``course:min_text_pt`` and ``course:dpi``: what it was computed from.

The browser test reads ``course:min_text_px`` and scales it by the rendered width over the PNG's natural
width: the smallest text a reader sees, in CSS pixels, which must be at least 9. :func:`read_text_metadata`
reads the chunks back from PNG bytes, and :func:`readable_width` turns them into the narrowest width at which
a figure's text is still :data:`MIN_TEXT_CSS_PX` on screen: on a phone the book stops shrinking the figure
there and lets it scroll sideways (``course_pkg/book_figures.py``, and the chapter 6 explorers' frames).
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

__all__ = ["MIN_TEXT_CSS_PX", "min_text_pt", "png_width", "read_text_metadata", "readable_width",
           "text_metadata"]

KEY_PX, KEY_PT, KEY_DPI = "course:min_text_px", "course:min_text_pt", "course:dpi"
MIN_TEXT_CSS_PX = 9.0  # the smallest figure text the book shows, in CSS pixels (the browser test's bar)


def min_text_pt(fig: Any) -> float:
    """The smallest font size (points) of any visible, non-empty text in ``fig``; ``inf`` when it has none."""
    from matplotlib.text import Text

    fig.draw_without_rendering()  # tick labels get their text only when the figure is laid out
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and (t.axes is None or t.axes.get_visible())]
    return float(min(sizes)) if sizes else float("inf")


def text_metadata(fig: Any, dpi: float) -> dict[str, str]:
    """PNG text chunks for ``fig`` saved at ``dpi``: ``{course:min_text_px, course:min_text_pt, course:dpi}``.

    Empty when the figure has no text (nothing to be too small).

    Raises:
        ValueError: ``dpi`` is not a positive number.
    """
    if not isinstance(dpi, (int, float)) or isinstance(dpi, bool) or dpi <= 0:
        raise ValueError(f"dpi={dpi!r} is not valid; use a positive number (dots per inch of the PNG)")
    pt = min_text_pt(fig)
    if pt == float("inf"):
        return {}
    return {KEY_PX: f"{pt * dpi / 72:.2f}", KEY_PT: f"{pt:g}", KEY_DPI: f"{dpi:g}"}


def read_text_metadata(png: bytes) -> dict[str, str]:
    """The ``tEXt`` (and ``zTXt``/``iTXt``) chunks of a PNG, as ``{keyword: text}``.

    Raises:
        ValueError: ``png`` is not a PNG.
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image (bad signature)")
    out: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"tEXt":
            key, _, value = data.partition(b"\0")
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, rest = data.partition(b"\0")
            out[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = data.partition(b"\0")
            compressed, _method = rest[0], rest[1]
            _lang, _, rest = rest[2:].partition(b"\0")
            _tkey, _, text = rest.partition(b"\0")
            out[key.decode("latin-1")] = (zlib.decompress(text) if compressed else text).decode("utf-8")
        elif kind == b"IEND":
            break
    return out


def png_width(png: bytes) -> int:
    """The width in pixels of a PNG, from its header.

    Raises:
        ValueError: ``png`` is not a PNG.
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n" or len(png) < 24:
        raise ValueError("not a PNG image (bad signature)")
    return int.from_bytes(png[16:20], "big")


def readable_width(png: bytes, min_css_px: float = MIN_TEXT_CSS_PX) -> int:
    """The narrowest width (CSS px) at which the PNG's smallest text is still ``min_css_px`` on screen.

    ``width x min_css_px / course:min_text_px``, never more than the PNG's own width (a figure is not blown
    up); the PNG's width when it records no text size.

    Raises:
        ValueError: ``png`` is not a PNG, or ``min_css_px`` is not a positive number.
    """
    if not isinstance(min_css_px, (int, float)) or isinstance(min_css_px, bool) or not min_css_px > 0:
        raise ValueError(f"min_css_px={min_css_px!r} is not valid; use a positive number of CSS pixels")
    width = png_width(png)
    try:
        text_px = float(read_text_metadata(png).get(KEY_PX, "nan"))
    except ValueError:
        text_px = float("nan")
    if not text_px > 0:
        return width
    return min(width, math.ceil(width * min_css_px / text_px))


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
