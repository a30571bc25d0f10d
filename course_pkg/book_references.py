"""The book's references page in the same author-year style as its citations, with maths rendered.

A Sphinx extension (listed in ``_config.yml``) for sphinxcontrib-bibtex:

* The pybtex style ``course_author_year``: the ``unsrt`` entry format, sorted by author, year and title, and
  labelled the way the text cites (``bibtex_reference_style: author_year``): "Hu et al., 2018", "Rabe and
  Staats, 2021", "Vaswani et al., 2017"; two works with the same label get "2021a", "2021b".
* Inline maths in a reference, written ``$...$`` in ``references.bib`` (e.g. the title "Self-attention Does Not
  Need $O(n^2)$ Memory"), becomes a Sphinx math node, so MathJax typesets it instead of showing the dollars.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterable, Iterator

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

__all__ = ["AuthorYearLabelStyle", "AuthorYearStyle", "author_year_label", "setup", "split_inline_math"]

STYLE_NAME = "course_author_year"
_MATH = re.compile(r"\$([^$]+)\$")


def _last_names(entry: Any) -> list[str]:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = []
    for person in people:
        last = " ".join(person.prelast_names + person.last_names)
        names.append(re.sub(r"[{}]", "", last))
    return names


def author_year_label(entry: Any) -> str:
    """``"Hu, 2018"``, ``"Rabe and Staats, 2021"``, ``"Vaswani et al., 2017"`` for a pybtex entry.

    Raises:
        ValueError: the entry has no author (or editor) or no year, so no label can say who and when.
    """
    names = _last_names(entry)
    year = entry.fields.get("year", "").strip()
    if not names or not year:
        raise ValueError(f"references.bib entry {entry.key!r} needs an author (or editor) and a year for an "
                         f"author-year label; it has authors={names} and year={year!r}")
    if len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {year}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Author-year labels; equal labels get the suffixes a, b, ... in the order of the sorted entries."""

    def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
        entries = list(sorted_entries)
        labels = [author_year_label(e) for e in entries]
        counts = Counter(labels)
        seen: Counter[str] = Counter()
        for label in labels:
            if counts[label] > 1:
                suffix = "abcdefghijklmnopqrstuvwxyz"[seen[label]]
                seen[label] += 1
                yield label + suffix
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    """pybtex's ``unsrt`` format, sorted by author, year and title, with :class:`AuthorYearLabelStyle`."""

    default_label_style = AuthorYearLabelStyle
    default_sorting_style = "author_year_title"


def split_inline_math(text: str) -> list[tuple[str, bool]]:
    """``"Need $O(n^2)$ Memory"`` -> ``[("Need ", False), ("O(n^2)", True), (" Memory", False)]``.

    Raises:
        ValueError: an odd number of ``$`` (an unclosed formula would otherwise show raw).
    """
    if text.count("$") % 2:
        raise ValueError(f"unbalanced $ in a reference: {text!r}; write inline maths as $...$")
    parts: list[tuple[str, bool]] = []
    pos = 0
    for m in _MATH.finditer(text):
        if m.start() > pos:
            parts.append((text[pos:m.start()], False))
        parts.append((m.group(1), True))
        pos = m.end()
    if pos < len(text):
        parts.append((text[pos:], False))
    return parts


def _math_in_citations(app: Any, doctree: Any, docname: str) -> None:
    """``doctree-resolved``: ``$...$`` inside the bibliography's entries -> math nodes (MathJax on the page)."""
    from docutils import nodes

    found = False
    for citation in list(doctree.findall(nodes.citation)):
        for text in list(citation.findall(nodes.Text)):
            if "$" not in text.astext():
                continue
            parts = split_inline_math(text.astext())
            new = [nodes.math(s, s) if is_math else nodes.Text(s) for s, is_math in parts]
            text.parent.replace(text, new)
            found = True
    if found:  # tell sphinx.ext.mathjax that this page needs MathJax (it decided before this step)
        app.env.get_domain("math").data["has_equations"][docname] = True


def setup(app: Any) -> dict[str, Any]:
    """Register the pybtex style ``course_author_year`` and the maths step with Sphinx."""
    register_plugin("pybtex.style.formatting", STYLE_NAME, AuthorYearStyle, force=True)
    app.connect("doctree-resolved", _math_in_citations)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
