"""Reading one learner's file: its chapter, and the code units to run.

Rules (also in ``python -m course_pkg.grade --help``; which files are whose: :mod:`.discovery`):

* The chapter: ``--chapter chNN`` when given (it wins; a file that says otherwise gets a note);
  else, for a notebook, its metadata ``{"course": {"chapter": "chNN"}}``, for a ``.py`` file a line
  ``CHAPTER = "chNN"``; else the file name: ``NN_anything`` or ``chNN_anything``
  (``01_attention.ipynb`` -> ``ch01``); else its contents (:func:`chapter_from_contents`).
* What runs (:mod:`.cells`): in a notebook, the code cells tagged ``exercise`` (cell metadata
  ``tags``), in order. If no cell carries the tag (some editors, Colab among them, cannot add
  tags), the code cells that define an exercise's name at top level (``def name``/``class
  name``/``name = ...``) run instead, with the earlier cells that define the names those use (a
  helper function, an import), and a note says so. In a ``.py`` file, the whole module runs, one
  top-level statement at a time.
* Reading: a .py file as Python reads it (its ``coding`` line, a byte-order mark, line ends;
  form feeds do not end lines); sizes are bounded before anything is parsed (see the ``MAX_``
  constants), and a notebook's saved outputs count only against the notebook's size.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .cells import cell_source, cell_tags, cells_needed, exercises_defined, strip_magics

_CHAPTER = re.compile(r"ch\d{2}")
_FILE_CHAPTER = re.compile(r"^(?:copy[ _]of[ _])?(?:ch)?(\d{2})(?:[_\-. ]|$)", re.IGNORECASE)
_IMPORT_CHAPTER = re.compile(r"course_pkg\.exercises\s+import\s+(ch\d{2})\b|course_pkg\.exercises\.(ch\d{2})\b")
_COLAB_HEADER = re.compile(r"^\s*(?:#.*\n)*\s*[\"']{3}\s*(?:copy[ _]of[ _])?(?:ch)?(\d{2})[_\-. ]",
                           re.IGNORECASE)
_PY_CHAPTER = re.compile(r"""^CHAPTER\s*(?::\s*str\s*)?=\s*["'](ch\d{2})["']\s*(?:#.*)?$""", re.MULTILINE)


@dataclass
class Unit:
    """One piece of learner code run as a whole: a notebook cell or a top-level statement."""

    label: str
    source: str
    first_line: int = 1


@dataclass
class Submission:
    """One file to grade for one learner."""

    learner: str
    path: Path
    kind: str  # "notebook" or "py"
    chapter: Optional[str] = None
    units: list[Unit] = field(default_factory=list)
    problem: Optional[str] = None  # why it cannot be graded at all
    notes: list[str] = field(default_factory=list)


# What the grader reads of one file, checked before parsing (the parsers' memory grows with the number
# of values and statements, not with the bytes): a notebook's saved outputs (figures) are never run,
# so only its code counts against the code limits.
MAX_NOTEBOOK_BYTES = 100 * 2**20
MAX_JSON_VALUES = 1_000_000  # values in a notebook's JSON (each string counts as one)
MAX_CODE_BYTES = 2 * 2**20  # a .py file, or the code cells of a notebook together
MAX_CODE_TOKENS = 300_000  # words and symbols in that code (a chapter's answers hold a few thousand)


def chapter_from_name(path: Path) -> Optional[str]:
    """``01_attention.ipynb``, ``ch01_x.py`` or Colab's ``Copy of 01_attention.ipynb`` -> ``"ch01"``;
    None otherwise."""
    m = _FILE_CHAPTER.match(path.stem)
    return f"ch{m.group(1)}" if m else None


def chapter_from_contents(text: str, known: dict[str, list[str]]) -> Optional[str]:
    """The chapter a file's text names: ``from course_pkg.exercises import chNN``, Colab's export
    header (a docstring starting ``01_attention.ipynb``), else the chapter most of whose exercise
    names the file defines (``def name``/``class name``) when exactly one chapter leads."""
    m = _IMPORT_CHAPTER.search(text)
    if m:
        return m.group(1) or m.group(2)
    m = _COLAB_HEADER.match(text)
    if m:
        return f"ch{m.group(1)}"
    counts = {}
    for ch, names in known.items():
        n = sum(1 for name in names if re.search(rf"^\s*(?:def|class)\s+{re.escape(name)}\b", text, re.MULTILINE))
        if n:
            counts[ch] = n
    if counts:
        best = max(counts.values())
        leaders = [ch for ch, n in counts.items() if n == best]
        if len(leaders) == 1:
            return leaders[0]
    return None


_TOKEN = re.compile(r"\w+|[^\w\s]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def count_tokens(code: str) -> int:
    """An upper bound on the tokens of ``code`` (words and symbols), counted without parsing it."""
    return sum(1 for _ in _TOKEN.finditer(code))


def count_json_values(text: str | bytes) -> int:
    """An upper bound on the values a JSON text holds (containers, commas), counted without parsing
    it: what ``json.loads`` would allocate objects for. Strings count as one value each."""
    if isinstance(text, bytes):
        rest = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", text)
        return rest.count(b"[") + rest.count(b"{") + rest.count(b",") + 1
    rest = _JSON_STRING.sub("", text)
    return rest.count("[") + rest.count("{") + rest.count(",") + 1


def decode_python(data: bytes) -> str:
    """A .py file's text as Python reads it: its ``# -*- coding: ... -*-`` line or UTF-8, without a
    byte-order mark, with ``\r\n`` and ``\r`` line ends turned into ``\n``."""
    import io
    import tokenize

    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = data.decode(encoding)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_code_size(name: str, code: str) -> Optional[str]:
    if len(code.encode("utf-8", "surrogatepass")) > MAX_CODE_BYTES:
        return f"{name}: its code is larger than {MAX_CODE_BYTES // 2**20} MB"
    tokens = count_tokens(code)
    if tokens > MAX_CODE_TOKENS:
        return f"{name}: its code holds more than {MAX_CODE_TOKENS:,} words and symbols ({tokens:,})"
    return None


def load(learner: str, path: Path, chapter_override: Optional[str], known: dict[str, list[str]]) -> Submission:
    """Read one file: decide its chapter and cut it into units. Problems are recorded, never raised
    (whatever the file holds: bad JSON, wrong types, nesting that exhausts the parser's memory or
    recursion).

    ``known`` maps each chapter with exercises to its exercise names."""
    kind = "notebook" if path.suffix == ".ipynb" else "py"
    try:
        return _load(learner, path, chapter_override, known, kind)
    except (Exception, RecursionError, MemoryError) as exc:  # noqa: BLE001 - one bad file never stops the batch
        sub = Submission(learner, path, kind)
        sub.problem = f"{path.name} could not be read ({type(exc).__name__}{': ' + str(exc)[:200] if str(exc) else ''})"
        return sub


def _load(learner: str, path: Path, chapter_override: Optional[str], known: dict[str, list[str]],
          kind: str) -> Submission:
    sub = Submission(learner, path, kind)
    limit = MAX_NOTEBOOK_BYTES if kind == "notebook" else MAX_CODE_BYTES
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # read(n) allocates n bytes first: ask for the file's size (+1 to see it grow), never the limit
            data = f.read(size + 1) if size <= limit else b""
        if size > limit or len(data) > limit:
            sub.problem = f"{path.name} is larger than {limit // 2**20} MB"
            return sub
        text = data.decode("utf-8-sig") if kind == "notebook" else decode_python(data)
        del data
    except (OSError, UnicodeDecodeError, SyntaxError, LookupError) as exc:
        sub.problem = f"{path.name} could not be read ({type(exc).__name__}: {exc})"
        return sub
    nb: dict = {}
    declared = None
    if kind == "notebook":
        values = count_json_values(text)
        if values > MAX_JSON_VALUES:
            sub.problem = (f"{path.name} holds more than {MAX_JSON_VALUES:,} JSON values ({values:,}); clear its "
                           "outputs (Edit > Clear all outputs) and hand it in again")
            return sub
        try:
            nb = json.loads(text)
            if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
                raise ValueError("no list of cells")
        except ValueError as exc:
            sub.problem = f"{path.name} is not a valid notebook ({exc})"
            return sub
        meta = nb.get("metadata", {})
        course = meta.get("course") if isinstance(meta, dict) else None
        declared = course.get("chapter") if isinstance(course, dict) else None
        if declared is not None and not (isinstance(declared, str) and _CHAPTER.fullmatch(declared)):
            sub.notes.append(f"ignored the notebook's metadata course.chapter={declared!r} (expected 'chNN')")
            declared = None
        code = "\n".join(cell_source(c) for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") == "code")
        problem = _check_code_size(path.name, code)
        if problem:
            sub.problem = problem
            return sub
    else:
        problem = _check_code_size(path.name, text)
        if problem:
            sub.problem = problem
            return sub
        m = _PY_CHAPTER.search(text)
        declared = m.group(1) if m else None
    found = declared or chapter_from_name(path)
    if not found:
        code = text if kind == "py" else "\n".join(cell_source(c) for c in nb["cells"] if isinstance(c, dict))
        found = chapter_from_contents(code, known)
    if chapter_override:
        if found and found != chapter_override:
            sub.notes.append(f"{path.name} looks like {found} but was graded as {chapter_override} (--chapter)")
        found = chapter_override
    if not found:
        how = ('metadata {"course": {"chapter": "chNN"}}' if kind == "notebook" else 'a line CHAPTER = "chNN"')
        sub.problem = (f"cannot tell the chapter of {path.name}: give --chapter chNN, name the file like "
                       f"01_attention{path.suffix}, or add {how}")
        return sub
    if found not in known:
        sub.problem = (f"{path.name} is for {found}, which has no exercises; chapters with exercises: "
                       f"{', '.join(sorted(known))}")
        return sub
    sub.chapter = found
    names = set(known[found])
    if kind == "notebook":
        cells = [(i, c) for i, c in enumerate(nb["cells"], start=1)
                 if isinstance(c, dict) and c.get("cell_type") == "code"]
        tagged = [(i, c) for i, c in cells if "exercise" in cell_tags(c)]
        if not tagged:
            sources = [strip_magics(cell_source(c)) for _, c in cells]
            keep = cells_needed(sources, names)
            tagged = [cells[k] for k in keep]
            defined = sorted(set().union(*(exercises_defined(sources[k], names) for k in keep))) if keep else []
            if tagged:
                helpers = [f"cell {cells[k][0]}" for k in keep if not exercises_defined(sources[k], names)]
                sub.notes.append("no cell is tagged 'exercise'; graded the cells that define " + ", ".join(defined)
                                 + (f", and {', '.join(helpers)} that they use" if helpers else ""))
            else:
                sub.notes.append("no cell is tagged 'exercise' and none defines an exercise's name")
        line = 1
        for i, c in tagged:  # each cell at its own lines of one text, so tracebacks and inspect agree
            source = strip_magics(cell_source(c))
            sub.units.append(Unit(f"cell {i}", source, first_line=line))
            line += source.count("\n") + 2
    else:
        text = strip_magics(text)  # Colab's "Download .py" keeps !pip and %magic lines
        try:
            tree = ast.parse(text, filename=path.name)
        except SyntaxError as exc:
            sub.problem = f"{path.name} is not valid Python (SyntaxError at line {exc.lineno}: {exc.msg})"
            return sub
        lines = text.split("\n")  # as the parser counts lines (not at form feeds, as splitlines() does)
        spans: list[list[int]] = []
        for node in tree.body:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            end = node.end_lineno or node.lineno
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        sub.units = [Unit(f"line {a}", "\n".join(lines[a - 1:b]), first_line=a) for a, b in spans]
    return sub
