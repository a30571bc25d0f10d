"""Write the chapters as a learner opens them in Colab or JupyterLab: the executed book's prose, as Jupyter
renders it.

The chapters in ``book/`` are written for Jupyter Book (MyST Markdown): their prose quotes computed numbers
with ``{glue:text}`name:.2f``` roles, cites with ``{cite:p}`key```, and boxes text in ``{admonition}``
directives. Jupyter and Colab show all of that as raw text. This script writes, for every chapter in
``_toc.yml``, a copy in which

* every glue role (``{glue:text}``, ``{glue:md}``, ``{glue}``/``{glue:any}``) is replaced by the value the
  executed book recorded, formatted by myst-nb's own function, so the copy quotes exactly the page's number;
* every citation becomes "(Author, Year)" (``{cite:t}``: "Author (Year)"), with the labels of the references
  page, linked to that page on the published site;
* admonitions (``{admonition}``, ``{note}``, ``{tip}``, ...) become a quote headed by their title in bold;
* ``{math}`` becomes ``$...$``, ``{code-block}`` a plain fenced block, ``{only} html`` blocks, ``(label)=``
  targets and ``%`` comments are dropped, and relative links (``intro.md``, ``references.md``) point at the
  published pages;
* code cells are the chapter's own, without outputs (a learner runs them); cells the page hides
  (``hide-input``, ``remove-input``, ``remove-cell``) are collapsed in JupyterLab (``source_hidden``) and
  shown as a titled form in Colab (``cellView: form`` and a ``# @title`` line);
* a first cell says what the copy is and links to the published page.

Any other MyST role or directive stops the script with the chapter, the cell and the construct, so that a new
kind of markup cannot reach a learner as raw text (``tests/test_colab_notebooks.py`` also checks every copy).

The values come from ``<chapter>.glue.json``, which myst-nb writes next to each executed chapter in
``_build/jupyter_execute`` (the very values the page shows), or, for a notebook executed some other way
(``jupyter nbconvert --execute``), from its glue outputs.

Usage (after ``jupyter-book build .``, which leaves the executed chapters in ``_build/jupyter_execute``)::

    python scripts/make_colab_notebooks.py                 # writes _build/colab/book/NN_name.ipynb
    python scripts/make_colab_notebooks.py --executed DIR --out DIR --site-url https://.../

The copies are published by ``.github/workflows/book.yml`` on the branch named by ``repository.branch`` in
``_config.yml`` (the Colab launch buttons open that branch) and with the site under ``colab/``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Optional

import yaml

ROOT = Path(__file__).resolve().parents[1]
GLUE_PREFIX = "application/papermill.record/"

__all__ = ["ConversionError", "Context", "chapter_docnames", "cite_labels", "convert_markdown",
           "convert_notebook", "glue_data", "main", "site_url_for", "write_copies"]


class ConversionError(ValueError):
    """Something in a chapter that this script cannot turn into what Jupyter renders (or a missing value)."""


# ------------------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------------------
def site_url_for(repository_url: str) -> str:
    """The GitHub Pages address of a repository: ``https://github.com/org/repo`` -> ``https://org.github.io/repo/``.

    Raises:
        ConversionError: ``repository_url`` is not a ``https://github.com/<org>/<repo>`` address.
    """
    m = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repository_url)
    if not m:
        raise ConversionError(f"repository.url={repository_url!r} is not a https://github.com/<org>/<repo> "
                              "address; pass --site-url with the published book's address")
    return f"https://{m.group(1).lower()}.github.io/{m.group(2)}/"


def chapter_docnames(toc: dict[str, Any]) -> list[str]:
    """The notebooks of ``_toc.yml`` as document names without suffix, e.g. ``book/01_attention``."""
    entries: list[str] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "file" in item:
                entries.append(str(item["file"]))
            walk(item.get("sections", []))

    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        walk(part.get("chapters", []))
    return [e for e in entries if (ROOT / f"{e}.ipynb").exists()]


# ------------------------------------------------------------------------------------------------------------
# Values: glue data of an executed notebook, citation labels of references.bib
# ------------------------------------------------------------------------------------------------------------
def glue_data(executed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{name: mime bundle}`` of every value a code cell recorded with ``glue`` (myst-nb's format).

    Raises:
        ConversionError: a name is recorded twice (the page would quote only one of them).
    """
    found: dict[str, dict[str, Any]] = {}
    for cell in executed.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            name, prefix = meta["name"], meta.get("mime_prefix", "")
            if name in found:
                raise ConversionError(f"glue name {name!r} is recorded twice")
            found[name] = {k[len(prefix):] if k.startswith(prefix) else k: v
                           for k, v in output.get("data", {}).items()}
    return found


def cite_labels(bib_path: Path, keys: Optional[set[str]] = None) -> dict[str, str]:
    """``{key: "Vaswani et al., 2017"}``: the labels of the references page (``course_pkg.book_references``).

    Args:
        bib_path: ``references.bib``.
        keys: the cited keys (the page lists only cited works, and "2021a"/"2021b" suffixes depend on
            them); None labels every entry.
    """
    from pybtex.database import parse_file

    from course_pkg.book_references import AuthorYearStyle

    bib = parse_file(str(bib_path))
    style = AuthorYearStyle()
    chosen = [e for k, e in bib.entries.items() if keys is None or k in keys]
    entries = style.sort(chosen)
    labels = style.format_labels(entries)
    return {entry.key: label for entry, label in zip(entries, labels)}


# ------------------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """What converting one chapter's markdown needs.

    Attributes:
        docname: the chapter, e.g. ``book/01_attention`` (relative links are resolved from its folder).
        glue: ``{name: mime bundle}`` of the executed chapter.
        labels: citation labels, ``{key: "Author, Year"}``.
        site_url: the published book, ending in ``/``.
        other_glue: loads another document's glue data (for ``{glue:text}`doc::name```).
        where: the current cell, for error messages.
        glued: every glue substitution made, ``(cell index, name, text)``, in order.
    """

    docname: str
    glue: dict[str, dict[str, Any]]
    labels: dict[str, str]
    site_url: str
    other_glue: Optional[Callable[[str], dict[str, dict[str, Any]]]] = None
    where: str = ""
    cell: int = -1
    glued: list[tuple[int, str, str]] = field(default_factory=list)

    def fail(self, what: str) -> ConversionError:
        return ConversionError(f"{self.docname} {self.where}: {what}")


ADMONITIONS = {"admonition": None, "note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
               "warning": "Warning", "caution": "Caution", "attention": "Attention", "danger": "Danger",
               "error": "Error", "seealso": "See also", "margin": None, "sidebar": None, "epigraph": None}
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>.*)$")
_DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<arg>.*)$")
# a role, or an inline code span (left as it is: a role inside code is code)
_INLINE = re.compile(r"\{(?P<role>[a-zA-Z][\w:.+-]*)\}(?P<tick>`+)(?P<content>.+?)(?P=tick)"
                     r"|(?P<code>(?P<ctick>`+)(?:.+?)(?P=ctick))", re.S)
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")
_TARGET = re.compile(r"^\s*\([\w:.+-]+\)=\s*$")
_EQ_LABEL = re.compile(r"(\$\$)\s*\([\w:.+-]+\)\s*$")


def _page_url(ctx: Context, target: str) -> str:
    """A relative link of the chapter -> the published page's address (``.md``/``.ipynb`` -> ``.html``)."""
    path, _, anchor = target.partition("#")
    base = PurePosixPath(ctx.docname).parent
    parts: list[str] = []
    for piece in (base / path).parts:
        if piece == "..":
            if not parts:
                raise ctx.fail(f"the link {target!r} leaves the book")
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    resolved = "/".join(parts)
    resolved = re.sub(r"\.(md|ipynb)$", ".html", resolved)
    return ctx.site_url + resolved + (f"#{anchor}" if anchor else "")


def _glue_value(ctx: Context, key: str, kind: str, fmt: str) -> str:
    from myst_nb.core.variables import format_plain_text

    doc, sep, name = key.partition("::")
    if sep:
        if ctx.other_glue is None:
            raise ctx.fail(f"glue from another document ({key!r}) needs the other executed notebooks")
        store = ctx.other_glue(str(PurePosixPath(ctx.docname).parent / doc))
    else:
        store, name = ctx.glue, key
    if name not in store:
        raise ctx.fail(f"no glued value named {name!r} in the executed notebook (was the book built "
                       "from these chapters? is the name spelled as in the glue(...) call?)")
    data = store[name]
    if kind == "md":
        if "text/markdown" not in data:
            raise ctx.fail(f"{{glue:md}} `{key}` has no text/markdown value; it has {sorted(data)}")
        text = data["text/markdown"]
        text = "".join(text) if isinstance(text, list) else str(text)
    else:
        if "text/plain" not in data:
            raise ctx.fail(f"glue `{key}` has no text/plain value; it has {sorted(data)}")
        plain = data["text/plain"]
        plain = "".join(plain) if isinstance(plain, list) else str(plain)
        try:
            text = format_plain_text(plain, fmt)
        except (ValueError, TypeError) as err:
            raise ctx.fail(f"glue `{key}` = {plain!r} cannot be formatted with {fmt!r}: {err}") from None
    ctx.glued.append((ctx.cell, name, text))
    return text


def _cite(ctx: Context, role: str, content: str) -> str:
    keys = [k.strip() for k in content.split(",") if k.strip()]
    missing = [k for k in keys if k not in ctx.labels]
    if missing:
        raise ctx.fail(f"{{{role}}} cites {missing}, which references.bib does not have")
    refs = ctx.site_url + "book/references.html"
    if role in ("cite:p", "cite", "cite:ps"):
        inner = "; ".join(ctx.labels[k] for k in keys)
        return f"([{inner}]({refs}))"
    if role in ("cite:t", "cite:ts"):
        out = []
        for k in keys:
            who, _, year = ctx.labels[k].rpartition(", ")
            out.append(f"{who} ([{year}]({refs}))")
        return ", ".join(out[:-1]) + (" and " if len(out) > 1 else "") + out[-1]
    raise ctx.fail(f"the citation role {{{role}}} has no plain form here; use {{cite:p}} or {{cite:t}}")


def _role(ctx: Context, role: str, content: str) -> str:
    if role in ("glue:text", "glue:md", "glue", "glue:", "glue:any"):
        key, fmt = content, ""
        if role == "glue:text" and ":" in content.replace("::", "\0"):
            key, fmt = content.rsplit(":", 1)
        return _glue_value(ctx, key, "md" if role == "glue:md" else "text", fmt)
    if role.startswith("cite"):
        return _cite(ctx, role, content)
    if role == "math":
        return f"${content}$"
    if role in ("sub", "sup", "kbd"):
        return f"<{role}>{content}</{role}>"
    if role == "abbr":
        return re.sub(r"\s*\(.*\)\s*$", "", content)
    if role == "doc":
        m = re.fullmatch(r"(?:(?P<text>.+?)\s*<(?P<t1>[^>]+)>|(?P<t2>.+))", content)
        target = (m.group("t1") or m.group("t2")).strip()  # type: ignore[union-attr]
        text = (m.group("text") or target).strip()  # type: ignore[union-attr]
        return f"[{text}]({_page_url(ctx, target + '.md')})"
    raise ctx.fail(f"the MyST role {{{role}}}`{content}` has no Jupyter form in this script; add one to "
                   "scripts/make_colab_notebooks.py or write it in plain Markdown")


def _inline(ctx: Context, text: str) -> str:
    """Roles -> text; code spans untouched; relative links -> the published pages."""
    def sub(m: re.Match[str]) -> str:
        if m.group("code"):
            return m.group("code")
        return _role(ctx, m.group("role"), m.group("content"))

    out = _INLINE.sub(sub, text)

    def link(m: re.Match[str]) -> str:
        target = m.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            return m.group(0)
        if m.group("bang"):
            raise ctx.fail(f"the image {target!r} is a file of the book; Colab cannot show it from a copy: "
                           "make it with code (or glue it) instead")
        return f"[{m.group('text')}]({_page_url(ctx, target)}{m.group('title') or ''})"

    pieces = re.split(r"(`+[^`]*`+)", out)   # links inside code spans stay as written
    return "".join(p if p.startswith("`") else _LINK.sub(link, p) for p in pieces)


def _blocks(lines: list[str]) -> Iterator[tuple[str, Any]]:
    """Split markdown into ``("text", lines)``, ``("code", lines)`` (a plain fence, verbatim) and
    ``("directive", (name, argument, body lines, fence))`` pieces."""
    i = 0
    text: list[str] = []
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            text.append(lines[i])
            i += 1
            continue
        if text:
            yield "text", text
            text = []
        fence = m.group("fence")
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):   # as CommonMark: a longer outer fence nests
            j += 1
        body = lines[i + 1:j]
        d = _DIRECTIVE_INFO.match(m.group("info").strip())
        if d:
            yield "directive", (d.group("name"), d.group("arg").strip(), body, fence)
        else:
            yield "code", [lines[i], *body, *(lines[j:j + 1] or [fence])]
        i = j + 1
    if text:
        yield "text", text


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's ``:key: value`` lines (or ``---`` YAML block) and the rest of its body."""
    opts: dict[str, str] = {}
    if body and body[0].strip() == "---":
        end = next((k for k in range(1, len(body)) if body[k].strip() == "---"), None)
        if end is not None:
            loaded = yaml.safe_load("\n".join(body[1:end])) or {}
            return {str(k): str(v) for k, v in loaded.items()}, body[end + 1:]
    k = 0
    while k < len(body) and re.match(r"^:[\w-]+:", body[k]):
        key, _, value = body[k][1:].partition(":")
        opts[key] = value.strip()
        k += 1
    return opts, body[k:]


def _quote(lines: list[str]) -> list[str]:
    return [f"> {line}" if line.strip() else ">" for line in lines]


def _directive(ctx: Context, name: str, arg: str, body: list[str], fence: str) -> list[str]:
    opts, content = _options(body)
    if name in ADMONITIONS:
        title = arg or ADMONITIONS[name] or ""
        inner = convert_markdown("\n".join(content), ctx).splitlines()
        head = [f"**{_inline(ctx, title)}**", ""] if title else []
        return _quote(head + inner)
    if name == "only":
        return []              # page-only text (e.g. "the launch button at the top")
    if name in ("code-block", "code", "code-cell", "sourcecode"):
        return ["```" + arg, *content, "```"]
    if name == "math":
        return ["$$", *content, "$$"]
    if name in ("glue", "glue:any", "glue:figure", "glue:md", "glue:math"):
        key = arg
        store = ctx.glue
        if key not in store:
            raise ctx.fail(f"no glued value named {key!r} for the {{{name}}} directive")
        data = store[key]
        caption = convert_markdown("\n".join(content), ctx).strip() if content else ""
        if name == "glue:math":
            latex = data.get("text/latex") or data.get("text/plain")
            text = "".join(latex) if isinstance(latex, list) else str(latex)
            ctx.glued.append((ctx.cell, key, text))
            return ["$$", text.strip().strip("$"), "$$"]
        if name == "glue:md":
            return [_glue_value(ctx, key, "md", "")]
        for mime in ("image/png", "image/jpeg"):
            if mime in data:
                raw = data[mime]
                b64 = "".join(raw) if isinstance(raw, list) else str(raw)
                base64.b64decode(b64, validate=False)
                ctx.glued.append((ctx.cell, key, mime))
                alt = opts.get("alt", caption or key).replace("]", "")
                img = [f"![{alt}](data:{mime};base64,{b64.strip()})"]
                return img + (["", f"*{caption}*"] if caption else [])
        return [_glue_value(ctx, key, "text", "")] + (["", caption] if caption else [])
    raise ctx.fail(f"the MyST directive {{{name}}} has no Jupyter form in this script; add one to "
                   "scripts/make_colab_notebooks.py or write it in plain Markdown")


def convert_markdown(text: str, ctx: Context) -> str:
    """One markdown cell of a chapter -> the same cell as Jupyter renders it (see the module docstring).

    Raises:
        ConversionError: a role or directive with no Jupyter form, an unknown glue name or citation key.
    """
    out: list[str] = []
    for kind, piece in _blocks(text.split("\n")):
        if kind == "code":
            out += piece
        elif kind == "directive":
            out += _directive(ctx, *piece)
        else:
            kept = []
            for line in piece:
                if _TARGET.match(line) or re.match(r"^%", line) or re.match(r"^\+\+\+", line):
                    continue
                kept.append(_EQ_LABEL.sub(r"\1", line))
            out += _inline(ctx, "\n".join(kept)).split("\n")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------------------
# Notebooks
# ------------------------------------------------------------------------------------------------------------
HIDDEN_TAGS = ("hide-input", "remove-input", "remove-cell", "hide-cell")


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _title(nb: dict[str, Any]) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            m = re.search(r"^#\s+(.+)$", _source(cell), re.M)
            if m:
                return m.group(1).strip()
    return "this chapter"


def _hide(cell: dict[str, Any]) -> None:
    """Collapse a code cell the page hides: JupyterLab folds its input; Colab shows it as a titled form."""
    meta = cell.setdefault("metadata", {})
    meta.setdefault("jupyter", {})["source_hidden"] = True
    meta["cellView"] = "form"
    lines = _source(cell).split("\n")
    if lines and re.match(r"^#\s*@title", lines[0]):
        return
    if lines and re.match(r"^#\s*\S", lines[0]):
        lines[0] = "# @title " + lines[0].lstrip("#").strip()
    else:
        lines.insert(0, "# @title Show the code")
    cell["source"] = "\n".join(lines)


def convert_notebook(source: dict[str, Any], executed: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """A chapter (``source``, as committed) and its executed notebook -> the copy for Colab and JupyterLab.

    Raises:
        ConversionError: the executed notebook is not this chapter as committed (a stale build), or any
            error of :func:`convert_markdown`.
    """
    src_cells, ex_cells = source["cells"], executed["cells"]
    if [(_source(c), c["cell_type"]) for c in src_cells] != [(_source(c), c["cell_type"]) for c in ex_cells]:
        raise ConversionError(f"{ctx.docname}: the executed notebook's cells differ from the chapter's: the "
                              "build is older than the chapter; build the book again")
    nb = copy.deepcopy(source)
    cells: list[dict[str, Any]] = []
    page = ctx.site_url + ctx.docname + ".html"
    cells.append({"cell_type": "markdown", "metadata": {}, "source": (
        f"> This is the notebook of [{_title(source)}]({page}), from the course *Attention in Deep Learning and "
        "Computer Vision*. The numbers in the text are those of the published page, computed when the book "
        "was built; run the cells to compute them here. The first code cell installs the course package "
        "when it is missing.")})
    for index, cell in enumerate(nb["cells"]):
        ctx.cell, ctx.where = index, f"cell {index}"
        cell.pop("id", None)
        if cell["cell_type"] == "markdown":
            cell["source"] = convert_markdown(_source(cell), ctx)
        elif cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            cell["source"] = _source(cell)
            if set(cell.get("metadata", {}).get("tags", [])) & set(HIDDEN_TAGS):
                _hide(cell)
        cells.append(cell)
    nb["cells"] = cells
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    meta = nb.setdefault("metadata", {})
    meta["colab"] = {"name": Path(ctx.docname).name + ".ipynb", "provenance": [], "toc_visible": True}
    return nb


def write_copies(executed_dir: Path, out_dir: Path, site_url: str, root: Path = ROOT,
                 docnames: Optional[list[str]] = None) -> dict[str, list[tuple[int, str, str]]]:
    """Write ``out_dir/<docname>.ipynb`` for every chapter; returns each chapter's glue substitutions.

    Raises:
        ConversionError: an executed notebook is missing or stale, or a chapter holds markup with no
            Jupyter form (the message names the chapter and the cell).
    """
    import nbformat

    if docnames is None:
        docnames = chapter_docnames(yaml.safe_load((root / "_toc.yml").read_text()))
    if not site_url.endswith("/"):
        site_url += "/"
    sources = {d: json.loads((root / f"{d}.ipynb").read_text()) for d in docnames}
    cited: set[str] = set()
    for nb in sources.values():
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                for m in re.finditer(r"\{cite(?::\w+)?\}`([^`]+)`", _source(cell)):
                    cited.update(k.strip() for k in m.group(1).split(","))
    labels = cite_labels(root / "references.bib", cited)
    cache: dict[str, dict[str, dict[str, Any]]] = {}

    def executed_glue(docname: str) -> dict[str, dict[str, Any]]:
        if docname not in cache:
            path = executed_dir / f"{docname}.ipynb"
            if not path.exists():
                raise ConversionError(f"no executed notebook {path}: build the book first "
                                      "(jupyter-book build .), or pass --executed")
            saved = executed_dir / f"{docname}.glue.json"   # what myst-nb used for the page
            if saved.exists():
                cache[docname] = {k: v["data"] for k, v in json.loads(saved.read_text()).items()}
            else:                                           # a notebook executed by other means
                cache[docname] = glue_data(json.loads(path.read_text()))
        return cache[docname]

    report = {}
    for docname in docnames:
        path = executed_dir / f"{docname}.ipynb"
        if not path.exists():
            raise ConversionError(f"no executed notebook {path}: build the book first (jupyter-book build .), "
                                  "or pass --executed")
        executed = json.loads(path.read_text())
        ctx = Context(docname=docname, glue=executed_glue(docname), labels=labels, site_url=site_url,
                      other_glue=executed_glue)
        nb = convert_notebook(sources[docname], executed, ctx)
        target = out_dir / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        node = nbformat.from_dict(nb)
        nbformat.validate(node)
        nbformat.write(node, str(target))
        report[docname] = ctx.glued
    return report


def main(argv: Optional[list[str]] = None) -> int:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--executed", type=Path, default=ROOT / "_build" / "jupyter_execute",
                   help="the executed chapters (default _build/jupyter_execute, as jupyter-book leaves them)")
    p.add_argument("--out", type=Path, default=ROOT / "_build" / "colab", help="where to write the copies")
    p.add_argument("--site-url", default=None,
                   help="the published book (default: the GitHub Pages address of repository.url)")
    args = p.parse_args(argv)
    try:
        site = args.site_url or site_url_for(config["repository"]["url"])
        report = write_copies(args.executed, args.out, site)
    except ConversionError as err:
        print(f"make_colab_notebooks: {err}", file=sys.stderr)
        return 1
    for docname, glued in report.items():
        print(f"{args.out / docname}.ipynb: {len(glued)} glued values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
