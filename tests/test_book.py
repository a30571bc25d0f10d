"""The published book: it builds with warnings as errors, and every chapter page exists with its
executed figures, launch buttons and the exercises' feedback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def toc_files() -> list[str]:
    files = []
    for part in TOC.get("parts", [{"chapters": TOC.get("chapters", [])}]):
        files += [c["file"] for c in part["chapters"]]
    return files


CHAPTERS = [f for f in toc_files() if re.match(r"book/\d\d_", f)]


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists() -> None:
    notebooks = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "book").glob("*.ipynb"))
    assert notebooks == sorted(CHAPTERS)
    for f in toc_files() + [TOC["root"]]:
        assert list(ROOT.glob(f + ".*")), f"_toc.yml lists {f} but no such file exists"


def test_config_executes_every_notebook_and_sets_launch_buttons() -> None:
    assert CONFIG["execute"]["execute_notebooks"] in {"force", "cache"}
    assert CONFIG["execute"]["timeout"] >= 60
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["repository"]["url"].startswith("https://github.com/")
    assert CONFIG["bibtex_bibfiles"] == ["references.bib"]


@pytest.mark.slow
def test_book_builds_without_warnings(built_book: dict) -> None:
    log = built_book["log"]
    assert built_book["returncode"] == 0, log[-4000:]
    warnings = [line for line in log.splitlines() if "WARNING" in line and "Kernel is running over TCP" not in line]
    assert not warnings, "\n".join(warnings)
    assert (built_book["html"] / "index.html").exists()


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_has_executed_figures_and_launch_buttons(built_book: dict, chapter: str) -> None:
    page = built_book["html"] / f"{chapter}.html"
    assert page.exists(), f"no page for {chapter}"
    html = page.read_text()
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    assert images, f"{chapter} shows no executed figure"
    for src in images:
        assert (page.parent / src).resolve().exists(), f"{chapter}: missing image {src}"
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]    # the Colab copies' branch (tests/test_colab_notebooks.py)
    assert f"colab.research.google.com/github/{repo}/blob/{branch}/{chapter}.ipynb" in html, "no Colab launch button"
    assert CONFIG["repository"]["url"] in html, "no repository button"
    assert "Traceback" not in html, f"{chapter} shows a traceback"
    # the exercises' checks ran and printed their feedback (stubs: not attempted, never an exception)
    assert "not attempted yet" in html


@pytest.mark.slow
def test_landing_and_references_pages(built_book: dict) -> None:
    html = built_book["html"]
    intro = (html / "book" / "intro.html").read_text()
    assert "How the exercises work" in intro and "Colab" in intro
    refs = (html / "book" / "references.html").read_text()
    assert "attention is all you need" in refs.lower()
    # one style: the list is labelled author-year, as the text cites ({cite:p} with author_year)
    labels = re.findall(r'<span class="fn-bracket">\[</span>(.*?)<span class="fn-bracket">\]</span>', refs)
    labels = [re.sub(r"<[^>]+>", "", label) for label in labels]
    assert labels and all(re.fullmatch(r"[^,]+(?: et al\.| and [^,]+)?, \d{4}[a-z]?", lb) for lb in labels), labels
    assert "Vaswani et al., 2017" in labels and "Rabe and Staats, 2021" in labels
    # maths in a reference is typeset, never shown as raw dollars
    entries = re.search(r'<div role="list" class="citation-list">(.*?)</section>', refs, re.S)
    assert entries, "no bibliography list on the references page"
    text = re.sub(r"<[^>]+>", "", entries.group(1))
    assert "$" not in text, [line for line in text.splitlines() if "$" in line]
    assert r'<span class="math notranslate nohighlight">\(O(n^2)\)</span>' in refs


# ------------------------------------------------------------------------------------------------
# A build never publishes an error message
# ------------------------------------------------------------------------------------------------
# stderr output that may appear in a chapter without being an error, as (regex, why) pairs. Empty today:
# every chapter runs with a clean stderr. Add an entry only with the reason it is harmless.
KNOWN_HARMLESS_STDERR: tuple[tuple[str, str], ...] = ()
# An exception report inside ordinary output: "SomethingError: ...", "[Errno -2] ...", a traceback header.
_ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(Error|Exception|Warning): |\[Errno -?\d+\]")


def _output_text(output: dict) -> str:
    if output["output_type"] == "stream":
        text = output.get("text", "")
    else:
        data = output.get("data", {})
        text = data.get("text/plain", "") or data.get("text/html", "") or data.get("text/markdown", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _harmless(text: str) -> bool:
    return bool(KNOWN_HARMLESS_STDERR) and all(
        any(re.search(rx, line) for rx, _why in KNOWN_HARMLESS_STDERR) for line in text.splitlines() if line.strip())


def chapter_errors(nb: dict) -> list[str]:
    """What an executed notebook would publish as an error: error outputs, stderr that is not known to be
    harmless, and exception reports printed to stdout or returned as output."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        first = "".join(cell.get("source", "")).strip().splitlines()[:1]
        where = f"cell {i} ({first[0][:60] if first else ''})"
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "error":
                found.append(f"{where}: {output.get('ename')}: {output.get('evalue', '')[:200]}")
                continue
            text = _output_text(output)
            if kind == "stream" and output.get("name") == "stderr" and not _harmless(text):
                found.append(f"{where}: stderr: {text.strip()[:300]}")
            elif _ERROR_TEXT.search(text):
                line = next(ln for ln in text.splitlines() if _ERROR_TEXT.search(ln))
                found.append(f"{where}: prints an error: {line.strip()[:300]}")
    return found


def test_chapter_errors_are_found() -> None:
    """The check below can fail: each kind of published error is reported, plain output is not."""
    cell = {"source": "x = 1", "cell_type": "code"}
    def nb(*outputs: dict) -> dict:
        return {"cells": [dict(cell, outputs=list(outputs))]}
    assert chapter_errors(nb({"output_type": "stream", "name": "stdout", "text": "loss 0.25\n"})) == []
    assert chapter_errors(nb({"output_type": "stream", "name": "stdout",
                              "text": 'raise ValueError(f"bad {x}")\n'})) == []
    assert chapter_errors(nb({"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": []}))
    assert chapter_errors(nb({"output_type": "stream", "name": "stderr", "text": "UserWarning: slow\n"}))
    assert chapter_errors(nb({"output_type": "stream", "name": "stdout",
                              "text": "reason: (URLError: [Errno -2] Name or service not known)\n"}))
    assert chapter_errors(nb({"output_type": "execute_result", "execution_count": 1,
                              "data": {"text/plain": "Traceback (most recent call last):\n ..."}, "metadata": {}}))


@pytest.mark.slow
def test_no_chapter_publishes_an_error_or_stderr(built_book: dict) -> None:
    executed = Path(built_book["html"]).parent / "jupyter_execute"
    notebooks = {str(p.relative_to(executed).with_suffix("")): p for p in executed.rglob("*.ipynb")}
    assert sorted(notebooks) == sorted(CHAPTERS), f"executed notebooks {sorted(notebooks)} != chapters {CHAPTERS}"
    bad = {name: chapter_errors(json.loads(path.read_text())) for name, path in sorted(notebooks.items())}
    bad = {name: errs for name, errs in bad.items() if errs}
    assert not bad, "chapters that would publish an error:\n" + "\n".join(
        f"{name}:\n    " + "\n    ".join(errs) for name, errs in bad.items())
    for chapter in CHAPTERS:
        html = (Path(built_book["html"]) / f"{chapter}.html").read_text()
        for css in ("output stderr", "output error", "output traceback"):
            assert f'class="{css}' not in html and f' {css}' not in html, f"{chapter} shows a {css} block"
