"""The chapters' copies for Colab and JupyterLab (scripts/make_colab_notebooks.py) read like the page.

Fast tests convert hand-written markdown and every real chapter (with stand-in glue values, no execution):
no MyST role or directive may survive. The ``slow`` tests convert the executed chapters of the built book
(the ``built_book`` fixture, shared with tests/test_book.py) and compare every glued number with the page.
The Colab URLs: the launch buttons open the copies' branch, which the publishing workflow writes.
"""

from __future__ import annotations

import html as htmlmod
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
SITE = "https://example.github.io/course/"

_spec = importlib.util.spec_from_file_location("make_colab_notebooks", ROOT / "scripts" / "make_colab_notebooks.py")
assert _spec and _spec.loader
mcn = importlib.util.module_from_spec(_spec)
sys.modules["make_colab_notebooks"] = mcn
_spec.loader.exec_module(mcn)

CHAPTERS = mcn.chapter_docnames(yaml.safe_load((ROOT / "_toc.yml").read_text()))


# ------------------------------------------------------------------------------------------------------------
# What counts as MyST left in a markdown cell (written here, independently of the script)
# ------------------------------------------------------------------------------------------------------------
_FENCED = re.compile(r"^ {0,3}(`{3,}|~{3,})[^`{\n]*\n.*?^ {0,3}\1\s*$", re.M | re.S)


def myst_leftovers(markdown: str) -> list[str]:
    """Every MyST-only construct in ``markdown`` that Jupyter would show as raw text (plain code blocks and
    inline code are code, and are not searched)."""
    text = _FENCED.sub("", markdown)
    text = re.sub(r"(?<![}`])(`{1,2})(?!`)[^\n]*?(?<!`)\1(?!`)", "", text)  # inline code, not a role's
    found = []
    found += re.findall(r"\{[a-zA-Z][\w:.+-]*\}`[^`]*`", text)                      # roles
    found += re.findall(r"^\s*(?:`{3,}|~{3,}|:{3,})\s*\{[^}\n]*\}.*$", text, re.M)  # directives
    found += re.findall(r"^\s*\([\w:.+-]+\)=\s*$", text, re.M)                     # targets
    found += re.findall(r"^\s*:[\w-]+:.*$", text, re.M)                            # directive options
    found += re.findall(r"^%.*$", text, re.M)                                      # comments
    found += re.findall(r"^\+\+\+.*$", text, re.M)                                 # block breaks
    found += re.findall(r"\{\{[^}]*\}\}", text)                                    # substitutions
    found += re.findall(r"\]\((?![a-z][a-z0-9+.-]*:|#)[^)]*\.(?:md|ipynb)(?:#[^)]*)?\)", text)  # book links
    return found


def test_myst_leftovers_finds_every_kind() -> None:
    """The detector can fail: each construct is reported, and the same text inside code is not."""
    for bad in ["a {glue:text}`x:.2f` b", "see {cite:p}`vaswani2017attention`", "```{admonition} T\nx\n```",
                ":::{note}\nx\n:::", "(my-label)=\n# Title", "```{note}\n:class: tip\nx\n```",
                "% a comment", "+++", "{{ version }}", "[intro](intro.md)", "[ch](02_x.ipynb#part)"]:
        assert myst_leftovers(bad), bad
    for fine in ["plain **bold** and $x^2$", "code: ``{cite:p}`key` ``", "```python\n{glue:text}`x`\n```",
                 "[site](https://x.org/intro.md)", "[below](#part-two)", "$$\na = b\n$$"]:
        assert not myst_leftovers(fine), fine


# ------------------------------------------------------------------------------------------------------------
# The converter on hand-written markdown
# ------------------------------------------------------------------------------------------------------------
def _ctx(glue: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> Any:
    return mcn.Context(docname="book/01_attention", glue=glue or {}, labels=labels or {}, site_url=SITE)


def test_glue_text_uses_the_recorded_value_and_its_format() -> None:
    ctx = _ctx({"acc": {"text/plain": "0.91234"}, "n": {"text/plain": "1200"}, "name": {"text/plain": "'SE'"}})
    out = mcn.convert_markdown("acc {glue:text}`acc:.2f`, {glue:text}`acc:.1%`, n {glue:text}`n:,d`, "
                               "{glue:text}`name` and {glue:}`n`", ctx)
    assert out == "acc 0.91, 91.2%, n 1,200, SE and 1200"
    assert [name for _, name, _ in ctx.glued] == ["acc", "acc", "n", "name", "n"]


def test_an_unknown_glue_name_or_role_or_directive_stops_with_the_place() -> None:
    with pytest.raises(mcn.ConversionError, match="no glued value named 'acc'.*"):
        mcn.convert_markdown("{glue:text}`acc:.2f`", _ctx())
    with pytest.raises(mcn.ConversionError, match=r"\{numref\}"):
        mcn.convert_markdown("see {numref}`fig-1`", _ctx())
    with pytest.raises(mcn.ConversionError, match=r"\{figure\}"):
        mcn.convert_markdown("```{figure} cat.png\nA cat\n```", _ctx())
    with pytest.raises(mcn.ConversionError, match="references.bib does not have"):
        mcn.convert_markdown("{cite:p}`nobody2020`", _ctx())


def test_citations_become_author_year_linked_to_the_references_page() -> None:
    labels = {"a": "Vaswani et al., 2017", "b": "Rabe and Staats, 2021"}
    refs = SITE + "book/references.html"
    out = mcn.convert_markdown("x {cite:p}`a,b`; {cite:t}`b` showed", _ctx(labels=labels))
    assert out == f"x ([Vaswani et al., 2017; Rabe and Staats, 2021]({refs})); Rabe and Staats ([2021]({refs})) showed"


def test_admonitions_become_a_quote_with_a_bold_title() -> None:
    ctx = _ctx({"k": {"text/plain": "3"}})
    md = "Intro\n\n```{admonition} In this chapter you will\n:class: tip\n- do {glue:text}`k` things\n```\nAfter"
    assert mcn.convert_markdown(md, ctx) == "Intro\n\n> **In this chapter you will**\n>\n> - do 3 things\nAfter"
    assert mcn.convert_markdown(":::{note}\nBe careful.\n:::", ctx) == "> **Note**\n>\n> Be careful."


def test_code_stays_code_links_go_to_the_site_and_page_only_text_is_dropped() -> None:
    md = ("Use ``{cite:p}`key` `` to cite; see the [introduction](intro.md) and [refs](references.md#top).\n"
          "(sec-x)=\n% a note to authors\n```python\nprint('{glue:text}`x`')\n```\n"
          "```{only} html\nthe rocket icon at the top\n```\n$$\nx\n$$ (eq-x)\n{math}`a^2`")
    out = mcn.convert_markdown(md, _ctx())
    assert out == (f"Use ``{{cite:p}}`key` `` to cite; see the [introduction]({SITE}book/intro.html) and "
                   f"[refs]({SITE}book/references.html#top).\n```python\nprint('{{glue:text}}`x`')\n```\n"
                   "$$\nx\n$$\n$a^2$")
    assert not myst_leftovers(out)


def test_every_chapter_converts_with_nothing_left_for_jupyter_to_show_raw() -> None:
    """Every real chapter, with a stand-in value for each glue name: no MyST survives, no role unhandled."""
    labels = mcn.cite_labels(ROOT / "references.bib")
    for docname in CHAPTERS:
        nb = json.loads((ROOT / f"{docname}.ipynb").read_text())

        class AnyValue(dict):
            def __contains__(self, key: object) -> bool:
                return True

            def __getitem__(self, key: str) -> dict[str, str]:
                return {"text/plain": "0.5", "text/markdown": "x", "image/png": "iVBORw0KGgo="}

        ctx = mcn.Context(docname=docname, glue=AnyValue(), labels=labels, site_url=SITE)
        copy = mcn.convert_notebook(nb, nb, ctx)
        for i, cell in enumerate(copy["cells"]):
            if cell["cell_type"] == "markdown":
                left = myst_leftovers(cell["source"])
                assert not left, f"{docname} cell {i}: {left}"
                assert "rocket" not in cell["source"].lower(), f"{docname} cell {i} mentions the page's rocket icon"
            else:
                assert cell["outputs"] == []
        roles = sum(len(re.findall(r"\{glue(?::\w*)?\}`", "".join(c["source"]))) for c in nb["cells"]
                    if c["cell_type"] == "markdown")
        assert len(ctx.glued) == roles, docname


def test_cells_the_page_hides_are_folded_in_the_copy() -> None:
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["hide-input"]}, "outputs": [],
                     "execution_count": 3, "source": "# Setup: installs things\nimport os"},
                    {"cell_type": "code", "metadata": {"tags": ["remove-input"]}, "outputs": [],
                     "execution_count": 4, "source": "glue('a', 1)"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    out = mcn.convert_notebook(nb, nb, _ctx())
    setup, bookkeeping = out["cells"][1:]
    assert setup["source"] == "# @title Setup: installs things\nimport os"
    assert setup["metadata"]["cellView"] == "form" and setup["metadata"]["jupyter"]["source_hidden"]
    assert bookkeeping["source"].startswith("# @title ") and bookkeeping["source"].endswith("glue('a', 1)")
    assert setup["execution_count"] is None and "Setup" in out["cells"][1]["source"]
    assert out["cells"][0]["cell_type"] == "markdown" and SITE + "book/01_attention.html" in out["cells"][0]["source"]


def test_a_stale_executed_notebook_is_refused() -> None:
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# T"}], "metadata": {},
          "nbformat": 4, "nbformat_minor": 5}
    old = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Old"}]}
    with pytest.raises(mcn.ConversionError, match="build the book again"):
        mcn.convert_notebook(nb, old, _ctx())


def test_the_site_address_comes_from_the_repository_url() -> None:
    assert mcn.site_url_for("https://github.com/Attention-Course/attention-course") == \
        "https://attention-course.github.io/attention-course/"
    with pytest.raises(mcn.ConversionError, match="--site-url"):
        mcn.site_url_for("https://gitlab.com/a/b")


# ------------------------------------------------------------------------------------------------------------
# The Colab URLs
# ------------------------------------------------------------------------------------------------------------
def colab_url(chapter: str) -> str:
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/{CONFIG['repository']['branch']}/{chapter}.ipynb"


def test_launch_buttons_open_the_copies_branch_that_the_workflow_publishes() -> None:
    branch = CONFIG["repository"]["branch"]
    assert branch != "main", "the Colab buttons must open the readable copies, not the MyST sources on main"
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert "scripts/make_colab_notebooks.py" in workflow
    # the workflow reads the branch from _config.yml (one place) and pushes the copies there
    assert "['repository']['branch']" in workflow and 'HEAD:"$branch"' in workflow
    readme = (ROOT / "README.md").read_text()
    urls = re.findall(r"https://colab\.research\.google\.com/github/\S+?\.ipynb", readme)
    assert urls and all(u == colab_url("book/" + u.rsplit("/", 1)[1][:-6]) for u in urls), urls


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_launches_colab_on_the_copy(built_book: dict, chapter: str) -> None:
    page = (built_book["html"] / f"{chapter}.html").read_text()
    assert colab_url(chapter) in page
    assert "blob/main/" + chapter not in page, "a Colab link still opens the MyST source"


# ------------------------------------------------------------------------------------------------------------
# The copies of the executed book
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def copies(built_book: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    executed = Path(built_book["html"]).parent / "jupyter_execute"
    out = tmp_path_factory.mktemp("colab")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_colab_notebooks.py"), "--executed",
                           str(executed), "--out", str(out), "--site-url", SITE],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"out": out, "html": Path(built_book["html"]), "log": proc.stdout}


def page_glue_values(html: str) -> list[str]:
    """The glued texts of a built page, in order (myst-nb puts each in a ``pasted-text`` span)."""
    spans = re.findall(r'<span class="pasted-text">(.*?)</span>', html, re.S)
    # Sphinx's smartquotes turn ' and " into typographic quotes on the page; the copy keeps the plain ones
    quotes = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
    return [htmlmod.unescape(re.sub(r"<[^>]+>", "", s)).translate(quotes) for s in spans]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_copy_has_no_myst_and_the_pages_numbers(copies: dict, chapter: str) -> None:
    import nbformat

    nb = nbformat.read(str(copies["out"] / f"{chapter}.ipynb"), as_version=4)
    nbformat.validate(nb)
    source = json.loads((ROOT / f"{chapter}.ipynb").read_text())
    assert len(nb.cells) == len(source["cells"]) + 1
    expected = page_glue_values((copies["html"] / f"{chapter}.html").read_text())
    roles = [len(re.findall(r"\{glue(?::\w*)?\}`", "".join(c["source"]))) if c["cell_type"] == "markdown" else 0
             for c in source["cells"]]
    assert sum(roles) == len(expected), f"{chapter}: {sum(roles)} glue roles, {len(expected)} on the page"
    at = 0
    for i, (cell, n) in enumerate(zip(nb.cells[1:], roles)):
        if cell.cell_type == "code":
            assert not cell.outputs
            continue
        assert not myst_leftovers(cell.source), f"{chapter} cell {i}: {myst_leftovers(cell.source)}"
        pos = 0
        for value in expected[at:at + n]:
            # the page's text, as a whole number/word (not a prefix of a longer number), in the page's order
            m = re.compile(rf"(?<![\w.]){re.escape(value)}(?![\w]|\.\d)").search(cell.source, pos)
            assert m, f"{chapter} cell {i}: the page says {value!r}, the copy does not (after {cell.source[pos:pos+80]!r})"
            pos = m.end()
        at += n
    # every citation uses a label of the references page
    refs = (copies["html"] / "book" / "references.html").read_text()
    labels = {re.sub(r"<[^>]+>", "", lb) for lb in
              re.findall(r'<span class="fn-bracket">\[</span>(.*?)<span class="fn-bracket">\]</span>', refs)}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for group in re.findall(r"\(\[([^\]]+)\]\(" + re.escape(SITE) + r"book/references\.html\)\)", cell.source):
                if ", " not in group:       # {cite:t}: "Author ([Year](...))"
                    continue
                for label in group.split("; "):
                    assert label in labels, f"{chapter}: ({label}) is not a label of the references page"
