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
  and a note says so. In a ``.py`` file, the whole module runs, one top-level statement at a time.
"""

from __future__ import annotations

import ast
import json
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
MAX_FILE_BYTES = 20 * 2**20


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


def strip_magics(source: str) -> str:
    """IPython lines (``!pip ...``, ``%matplotlib ...``; kept by Colab's .py export) become ``pass``."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            lines[i] = line[: len(line) - len(stripped)] + "pass  # IPython magic skipped by the grader"
    return "\n".join(lines)


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
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            sub.problem = f"{path.name} is larger than {MAX_FILE_BYTES // 2**20} MB"
            return sub
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        sub.problem = f"{path.name} could not be read ({type(exc).__name__}: {exc})"
        return sub
    nb: dict = {}
    declared = None
    if kind == "notebook":
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
    else:
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
            tagged = [(i, c) for i, c in cells if _defines(_cell_source(c), names)]
            if tagged:
                sub.notes.append("no cell is tagged 'exercise'; graded the cells that define "
                                 + ", ".join(sorted(set().union(*(_defines(_cell_source(c), names)
                                                                  for _, c in tagged)))))
            else:
                sub.notes.append("no cell is tagged 'exercise' and none defines an exercise's name")
        sub.units = [Unit(f"cell {i}", strip_magics(_cell_source(c))) for i, c in tagged]
    else:
        text = strip_magics(text)  # Colab's "Download .py" keeps !pip and %magic lines
        try:
            tree = ast.parse(text, filename=path.name)
        except SyntaxError as exc:
            sub.problem = f"{path.name} is not valid Python (SyntaxError at line {exc.lineno}: {exc.msg})"
            return sub
        lines = text.splitlines()
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
