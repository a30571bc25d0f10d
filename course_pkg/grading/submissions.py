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
_FILE_CHAPTER = re.compile(r"^(?:ch)?(\d{2})(?:[_\-. ]|$)", re.IGNORECASE)
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


def learner_id(name: str) -> str:
    """A learner id safe as a folder name (letters, digits, ``._-``; no leading dot)."""
    safe = _SAFE_ID.sub("_", name).lstrip(".") or "learner"
    return safe[:100]


def discover(paths: Sequence[str | Path]) -> list[tuple[str, list[Path]]]:
    """``[(learner, [files...])]`` for the command line's SUBMISSION arguments, in order.

    Raises :class:`SubmissionError` for a path that does not exist, a file of another type, or two
    learners with the same id."""
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
            if entry.is_file() and entry.suffix in SUFFIXES:
                learners.append((learner_id(entry.stem), [entry]))
            elif entry.is_dir():
                files = sorted(f for f in entry.iterdir() if f.is_file() and f.suffix in SUFFIXES
                               and not f.name.startswith("."))
                learners.append((learner_id(entry.name), files))
    seen: dict[str, int] = {}
    for name, _ in learners:
        seen[name] = seen.get(name, 0) + 1
    dupes = sorted(n for n, c in seen.items() if c > 1)
    if dupes:
        raise SubmissionError(f"several submissions have the same learner id: {', '.join(dupes)}; "
                              "rename the files or put each learner's files in a folder of their own")
    if not learners:
        raise SubmissionError("no .ipynb or .py submission was found in " + ", ".join(map(str, paths)))
    return learners


def chapter_from_name(path: Path) -> Optional[str]:
    """``01_attention.ipynb`` or ``ch01_x.py`` -> ``"ch01"``; None otherwise."""
    m = _FILE_CHAPTER.match(path.stem)
    return f"ch{m.group(1)}" if m else None


def _cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _defines(source: str, names: set[str]) -> set[str]:
    """The exercise names a cell defines at top level (by parsing, or by a regex if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
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
    """Read one file: decide its chapter and cut it into units. Problems are recorded, not raised.

    ``known`` maps each chapter with exercises to its exercise names."""
    kind = "notebook" if path.suffix == ".ipynb" else "py"
    sub = Submission(learner, path, kind)
    try:
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
        course = meta.get("course", {}) if isinstance(meta, dict) else {}
        declared = course.get("chapter") if isinstance(course, dict) else None
        if declared is not None and not (isinstance(declared, str) and _CHAPTER.fullmatch(declared)):
            sub.notes.append(f"ignored the notebook's metadata course.chapter={declared!r} (expected 'chNN')")
            declared = None
    else:
        m = _PY_CHAPTER.search(text)
        declared = m.group(1) if m else None
    found = declared or chapter_from_name(path)
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
        tagged = [(i, c) for i, c in cells
                  if "exercise" in ((c.get("metadata") or {}).get("tags") or [])]
        if not tagged:
            tagged = [(i, c) for i, c in cells if _defines(_cell_source(c), names)]
            if tagged:
                sub.notes.append("no cell is tagged 'exercise'; graded the cells that define "
                                 + ", ".join(sorted(set().union(*(_defines(_cell_source(c), names)
                                                                  for _, c in tagged)))))
            else:
                sub.notes.append("no cell is tagged 'exercise' and none defines an exercise's name")
        sub.units = [Unit(f"cell {i}", _cell_source(c)) for i, c in tagged]
    else:
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
