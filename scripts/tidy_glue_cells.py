"""Put a chapter's bookkeeping out of the reader's way: the setup cell folded, the glue calls hidden.

For each notebook given, in place:

* the first code cell (the setup cell every chapter starts with) gets the tag ``hide-input``: the page shows
  its output (versions and device) and a "show code" toggle; the cell itself is unchanged;
* a code cell made only of ``glue(...)`` calls gets the tag ``remove-input``;
* a code cell that ends with ``glue(...)`` calls (top-level statements) is split: those calls move, verbatim,
  into a new cell right after it, tagged ``remove-input``. They run at the same point with the same
  variables, so every glued value stays the same (check it by comparing the executed notebooks' glue data,
  as tests/test_chapter_layout.py does for the rule).

Cells where a ``glue`` call sits before other code, or inside a loop or a function, are left as they are and
listed, to be rearranged by hand. So are cells whose new last line would be an expression, since Jupyter
would then show its value.

Usage::

    python scripts/tidy_glue_cells.py book/04_senet.ipynb book/05_cbam.ipynb [--check]

``--check`` changes nothing and exits 1 when a notebook does not follow the rule yet.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Optional

HIDE_SETUP = "hide-input"
HIDE_GLUE = "remove-input"


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _is_glue(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "glue")


def _tags(cell: dict[str, Any]) -> list[str]:
    return cell.setdefault("metadata", {}).setdefault("tags", [])


def glue_cell_problems(nb: dict[str, Any]) -> list[str]:
    """Where ``nb`` breaks the rule: the setup cell not folded, glue calls in a cell the reader sees."""
    problems = []
    code = [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    if code and HIDE_SETUP not in code[0][1].get("metadata", {}).get("tags", []):
        problems.append(f"cell {code[0][0]} (the setup cell) is not tagged {HIDE_SETUP}")
    for i, cell in code:
        src = _source(cell)
        if "glue(" not in src:
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        if HIDE_GLUE in tags or "remove-cell" in tags:
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id == "glue"]
        if calls:
            problems.append(f"cell {i}: {len(calls)} glue call(s) in a cell the reader sees "
                            f"(first line {src.strip().splitlines()[0][:60]!r})")
    return problems


def tidy(nb: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The notebook with the rule applied, and the cells left for a hand (see the module docstring)."""
    cells: list[dict[str, Any]] = []
    left: list[str] = []
    first_code: Optional[int] = None
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            cells.append(cell)
            continue
        if first_code is None:
            first_code = i
            if HIDE_SETUP not in _tags(cell):
                _tags(cell).append(HIDE_SETUP)
            cells.append(cell)
            continue
        src = _source(cell)
        if "glue(" not in src or HIDE_GLUE in cell.get("metadata", {}).get("tags", []):
            cells.append(cell)
            continue
        tree = ast.parse(src)
        body = tree.body
        k = len(body)
        while k > 0 and _is_glue(body[k - 1]):
            k -= 1
        if k == 0:
            _tags(cell).append(HIDE_GLUE)
            cells.append(cell)
            continue
        inner = [n for stmt in body[:k] for n in ast.walk(stmt) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id == "glue"]
        if k == len(body) or inner:
            left.append(f"cell {i}: a glue call is not at the end of the cell (or is inside a block)")
            cells.append(cell)
            continue
        if isinstance(body[k - 1], ast.Expr) and not (
                isinstance(body[k - 1].value, ast.Call) and isinstance(body[k - 1].value.func, (ast.Name, ast.Attribute))
                and getattr(body[k - 1].value.func, "id", getattr(body[k - 1].value.func, "attr", "")) in
                ("print", "show", "display", "plot_attention", "check", "hint")):
            left.append(f"cell {i}: its new last line would be an expression Jupyter shows")
            cells.append(cell)
            continue
        lines = src.split("\n")
        cut = body[k].lineno - 1
        # comments right above the first moved call belong to it
        while cut > 0 and lines[cut - 1].lstrip().startswith("#") and cut - 1 >= body[k - 1].end_lineno:
            cut -= 1
        kept = "\n".join(lines[:cut]).rstrip("\n")
        moved = "\n".join(lines[cut:]).strip("\n")
        cell["source"] = kept.splitlines(keepends=True)
        new = {"cell_type": "code", "execution_count": None, "metadata": {"tags": [HIDE_GLUE]},
               "outputs": [], "source": moved.splitlines(keepends=True)}
        if "id" in cell:
            new["id"] = hashlib.sha1(f"{cell['id']}-glue".encode()).hexdigest()[:8]
        cells += [cell, new]
    nb = dict(nb, cells=cells)
    return nb, left


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 where the rule is not met")
    args = p.parse_args(argv)
    status = 0
    for path in args.notebooks:
        nb = json.loads(path.read_text())
        if args.check:
            problems = glue_cell_problems(nb)
            for line in problems:
                print(f"{path}: {line}")
            status |= bool(problems)
            continue
        new, left = tidy(nb)
        path.write_text(json.dumps(new, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        for line in left:
            print(f"{path}: left as it is: {line}")
        status |= bool(glue_cell_problems(new))
    return status


if __name__ == "__main__":
    sys.exit(main())
