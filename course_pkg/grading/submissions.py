"""Finding learners' submissions, their chapter, and the code units to run.

Rules (also in ``python -m course_pkg.grade --help``):

* A SUBMISSION argument is a chapter notebook (``.ipynb``), a ``.py`` file of solutions, or a
  folder. In a folder, every ``.ipynb``/``.py`` file directly inside is one learner (the learner id
  is the file name without its extension), and every sub-folder is one learner (the id is the
  sub-folder's name) whose ``.ipynb``/``.py`` files are all graded, one chapter each.
* The chapter: ``--chapter chNN`` when given (it wins; a file that says otherwise gets a note);
  else, for a notebook, its metadata ``{"course": {"chapter": "chNN"}}``, for a ``.py`` file a line
  ``CHAPTER = "chNN"``; else the file name: ``NN_anything`` or ``chNN_anything``
  (``01_attention.ipynb`` -> ``ch01``).
* What runs: in a notebook, the code cells tagged ``exercise`` (cell metadata ``tags``), in order.
  If no cell carries the tag (some editors, Colab among them, cannot add tags), the code cells that
  define an exercise's name at top level (``def name``/``class name``/``name = ...``) run instead,
  with the earlier cells that define the names those use (a helper function, an import), and a
  note says so. In a ``.py`` file, the whole module runs, one top-level statement at a time.
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
from typing import Optional, Sequence

SUFFIXES = (".ipynb", ".py")
_CHAPTER = re.compile(r"ch\d{2}")
_FILE_CHAPTER = re.compile(r"^(?:copy[ _]of[ _])?(?:ch)?(\d{2})(?:[_\-. ]|$)", re.IGNORECASE)
_IMPORT_CHAPTER = re.compile(r"course_pkg\.exercises\s+import\s+(ch\d{2})\b|course_pkg\.exercises\.(ch\d{2})\b")
_COLAB_HEADER = re.compile(r"^\s*(?:#.*\n)*\s*[\"']{3}\s*(?:copy[ _]of[ _])?(?:ch)?(\d{2})[_\-. ]",
                           re.IGNORECASE)
_PY_CHAPTER = re.compile(r"""^CHAPTER\s*(?::\s*str\s*)?=\s*["'](ch\d{2})["']\s*(?:#.*)?$""", re.MULTILINE)
_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


class SubmissionError(ValueError):
    """Raised for a command line that names no gradable submission (a usage error)."""


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


RESERVED_IDS = frozenset({"gradebook.csv", "gradebook"})  # names the output folder uses itself
# What the grader reads of one file, checked before parsing (the parsers' memory grows with the number
# of values and statements, not with the bytes): a notebook's saved outputs (figures) are never run,
# so only its code counts against the code limits.
MAX_NOTEBOOK_BYTES = 100 * 2**20
MAX_JSON_VALUES = 1_000_000  # values in a notebook's JSON (each string counts as one)
MAX_CODE_BYTES = 2 * 2**20  # a .py file, or the code cells of a notebook together
MAX_CODE_TOKENS = 300_000  # words and symbols in that code (a chapter's answers hold a few thousand)
MAX_FILE_BYTES = MAX_NOTEBOOK_BYTES  # the largest file read at all (kept for callers)


def learner_id(name: str) -> str:
    """A learner id safe as a folder name (letters, digits, ``._-``; no leading dot)."""
    safe = _SAFE_ID.sub("_", name).lstrip(".") or "learner"
    return safe[:100]


def _unique(ids: Sequence[str]) -> list[str]:
    """The same ids with ``-2``, ``-3``... added where two are equal (ignoring case, as some file systems
    do) or one is a name the output folder uses itself."""
    taken = {r.lower() for r in RESERVED_IDS}
    out = []
    for name in ids:
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def discover(paths: Sequence[str | Path]) -> list[tuple[str, list[Path]]]:
    """``[(learner, [files...])]`` for the command line's SUBMISSION arguments, in order.

    Learner ids that collide (after making them safe as folder names, ignoring case) or that clash
    with the output folder's own files get ``-2``, ``-3``... added. Raises :class:`SubmissionError`
    for a path that does not exist, a file of another type, or nothing to grade at all."""
    learners: list[tuple[str, list[Path]]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise SubmissionError(f"submission {str(raw)!r} does not exist")
        if p.is_file():
            if p.suffix not in SUFFIXES:
                raise SubmissionError(f"submission {str(raw)!r} is a {p.suffix or 'extension-less'} file; "
                                      "give .ipynb or .py files, or folders of them")
            learners.append((learner_id(p.stem), [p]))
            continue
        for entry in sorted(p.iterdir()):
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_symlink():  # a link may point anywhere (the solutions, a classmate): never followed
                learners.append((learner_id(entry.stem if entry.suffix in SUFFIXES else entry.name), []))
                continue
            if entry.is_file() and entry.suffix in SUFFIXES:
                learners.append((learner_id(entry.stem), [entry]))
            elif entry.is_dir():
                try:
                    files = sorted(f for f in entry.iterdir() if f.suffix in SUFFIXES and not f.name.startswith(".")
                                   and not f.is_symlink() and f.is_file())
                except OSError:
                    files = []
                learners.append((learner_id(entry.name), files))
    if not learners:
        raise SubmissionError("no .ipynb or .py submission was found in " + ", ".join(map(str, paths)))
    ids = _unique([name for name, _ in learners])
    return [(new, files) for new, (_, files) in zip(ids, learners)]


def chapter_from_name(path: Path) -> Optional[str]:
    """``01_attention.ipynb``, ``ch01_x.py`` or Colab's ``Copy of 01_attention.ipynb`` -> ``"ch01"``;
    None otherwise."""
    m = _FILE_CHAPTER.match(path.stem)
    return f"ch{m.group(1)}" if m else None


def _cell_source(cell: dict) -> str:
    """A cell's source as one string; parts that are not strings are left out."""
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(x for x in src if isinstance(x, str))
    return src if isinstance(src, str) else ""


def _cell_tags(cell: dict) -> list:
    meta = cell.get("metadata")
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return tags if isinstance(tags, list) else []


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


_CODE_SCAN = re.compile(r"""#[^\n]*|'\'\'|\"\"\"|'|"|\\\n|[()\[\]{}]|\n""")
_STRING_END = {q: re.compile(r"\\(?:.|\n)|" + re.escape(q) + ("" if len(q) == 3 else r"|\n"))
               for q in ("'", '"', "'''", '"""')}


def magic_lines(source: str) -> list[int]:
    """The 0-based numbers of the lines that IPython would run as magics or shell commands: a line
    starting (after its indent) with ``%`` or ``!`` where a new statement starts, i.e. not inside
    brackets, a string or after a backslash (black wraps ``a\n    % b`` and ``a\n    != b`` so)."""
    found: list[int] = []
    depth, pos, line, quote = 0, 0, 0, ""

    def at_statement_start(start: int) -> int:
        """``start`` begins line ``line`` at a statement boundary: skip it if it is a magic."""
        end = source.find("\n", start)
        end = len(source) if end < 0 else end
        if source[start:end].lstrip(" \t").startswith(("%", "!")):
            found.append(line)
            return end
        return start

    pos = at_statement_start(0)
    while True:
        if not quote:
            m = _CODE_SCAN.search(source, pos)
            if m is None:
                break
            t, pos = m.group(), m.end()
            if t in "([{":
                depth += 1
            elif t in ")]}":
                depth = max(0, depth - 1)
            elif t == "\n":
                line += 1
                if depth == 0:
                    pos = at_statement_start(pos)
            elif t == "\\\n":
                line += 1
            elif t[0] != "#":
                quote = t
        else:
            m = _STRING_END.get(quote, _STRING_END['"']).search(source, pos)
            if m is None:
                break
            line += source.count("\n", pos, m.end())
            t, pos = m.group(), m.end()
            if t == quote or t == "\n":  # a one-line string ends at its line's end (unterminated: an error)
                quote = ""
                if t == "\n" and depth == 0:
                    pos = at_statement_start(pos)
    return found


def strip_magics(source: str) -> str:
    """IPython lines (``!pip ...``, ``%matplotlib ...``; kept by Colab's .py export) become ``pass``;
    the same characters inside a wrapped expression are left alone (see :func:`magic_lines`)."""
    magic = magic_lines(source)
    if not magic:
        return source
    lines = source.split("\n")
    for i in magic:
        line = lines[i]
        stripped = line.lstrip(" \t")
        lines[i] = line[: len(line) - len(stripped)] + "pass  # IPython magic skipped by the grader"
    return "\n".join(lines)


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


def _names_used(source: str) -> set[str]:
    """Every name a cell's code reads (anywhere, function bodies included); empty if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _top_level_names(source: str) -> set[str]:
    """The names a cell binds at top level: functions, classes, assignments and imports."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
    return out


def cells_needed(sources: Sequence[str], names: set[str]) -> list[int]:
    """For a notebook without ``exercise`` tags: the indices of the cells that define an exercise's
    name, and of the earlier cells that define what those use (helpers, imports, constants), again and
    again until nothing more is needed; in notebook order."""
    defines = [_top_level_names(s) for s in sources]
    keep = {i for i, src in enumerate(sources) if _defines(src, names)}
    todo = sorted(keep)
    while todo:
        i = todo.pop()
        wanted = _names_used(sources[i]) - defines[i]
        for j in range(i - 1, -1, -1):
            if j not in keep and defines[j] & wanted:
                keep.add(j)
                todo.append(j)
            wanted -= defines[j]
            if not wanted:
                break
    return sorted(keep)


def _defines(source: str, names: set[str]) -> set[str]:
    """The exercise names a cell defines at top level (by parsing, or by a regex if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        found = set()
        for name in names:
            if re.search(rf"^(?:def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*=", source, re.MULTILINE):
                found.add(name)
        return found
    found = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names:
            found.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found |= {t.id for t in targets if isinstance(t, ast.Name) and t.id in names}
    return found


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
        code = "\n".join(_cell_source(c) for c in nb["cells"] if isinstance(c, dict) and c.get("cell_type") == "code")
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
        code = text if kind == "py" else "\n".join(_cell_source(c) for c in nb["cells"] if isinstance(c, dict))
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
        tagged = [(i, c) for i, c in cells if "exercise" in _cell_tags(c)]
        if not tagged:
            sources = [strip_magics(_cell_source(c)) for _, c in cells]
            keep = cells_needed(sources, names)
            tagged = [cells[k] for k in keep]
            defined = sorted(set().union(*(_defines(sources[k], names) for k in keep))) if keep else []
            if tagged:
                helpers = [f"cell {cells[k][0]}" for k in keep if not _defines(sources[k], names)]
                sub.notes.append("no cell is tagged 'exercise'; graded the cells that define " + ", ".join(defined)
                                 + (f", and {', '.join(helpers)} that they use" if helpers else ""))
            else:
                sub.notes.append("no cell is tagged 'exercise' and none defines an exercise's name")
        line = 1
        for i, c in tagged:  # each cell at its own lines of one text, so tracebacks and inspect agree
            source = strip_magics(_cell_source(c))
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


def mentions(unit: Unit, names: Sequence[str]) -> set[str]:
    """The exercise names a unit's source mentions (as whole words)."""
    return {n for n in names if re.search(rf"\b{re.escape(n)}\b", unit.source)}
