"""Which code of a learner's file runs: IPython's magic lines left out, and, in a notebook without
``exercise`` tags, the cells that define the exercises' names and the earlier cells they use."""

from __future__ import annotations

import ast
import re
from typing import Sequence


def cell_source(cell: dict) -> str:
    """A cell's source as one string; parts that are not strings are left out."""
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(x for x in src if isinstance(x, str))
    return src if isinstance(src, str) else ""


def cell_tags(cell: dict) -> list:
    meta = cell.get("metadata")
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return tags if isinstance(tags, list) else []


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
    keep = {i for i, src in enumerate(sources) if exercises_defined(src, names)}
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


def exercises_defined(source: str, names: set[str]) -> set[str]:
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

