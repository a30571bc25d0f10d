"""Numbers for the book's prose: record a value computed in a chapter so the text can quote it.

The book is built with myst-nb, whose ``{glue:text}`name``` role inserts a value that a code cell of the
same page recorded. This module records values the way myst-nb reads them (a display output whose
metadata carries ``scrapbook.name``), without importing myst-nb, so the chapters also run where it is not
installed (Colab, a bare laptop). There the recorded value is invisible, and nothing else changes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GLUE_PREFIX", "glue"]

# The MIME-type prefix myst-nb gives values that are recorded but not shown (``display=False``).
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name:.2f``` or ``{glue:}`name``` in the prose.

    Args:
        name: a name unique within the chapter (letters, digits and ``_``).
        value: what the prose quotes: a number, a string, a figure...
        display: also show the value below the cell.
    """
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise ValueError(f"name={name!r} is not valid; use letters, digits and underscores, e.g. 'test_acc'")
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
        from IPython.display import display as ipy_display
    except ImportError:                      # plain Python: nothing to record into
        return
    if get_ipython() is None:
        return
    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
