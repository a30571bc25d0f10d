"""The package's shape: its import graph has no circle and one upward arrow, and every module reads in one
sitting.

The graph is read from the source (every ``import`` and ``from ... import`` statement, at module level or
inside a function), so a lazy import that closes a circle counts too. An *upward arrow* is a module that
imports its own package's ``__init__`` (``from . import x`` where ``x`` is not a submodule, or
``from .. import y``): the one allowed is ``course_pkg.env`` reading ``__version__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "course_pkg"
MAX_LINES = 450
# load as single files in the grader's sandbox, so they stay whole
WHOLE = {"exercises/core.py", "grading/sandbox.py"}
ALLOWED_UPWARD = {("course_pkg.env", "course_pkg")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _targets(module: str, path: Path, node: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The course_pkg modules an import statement loads (a name imported from a package that is one of
    its submodules counts as that submodule, not as the package)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in modules:
                found.add(alias.name)
        return found
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base not in modules:
        return found
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        found.add(sub if sub in modules else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(name, path, node, modules)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]], ignore: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), without the ``ignore`` edges."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if (v, w) in ignore:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_reader_sees_lazy_imports_and_submodules() -> None:
    graph = _graph()
    assert "course_pkg.attention_tap" in graph["course_pkg.attention"]
    assert "course_pkg.env" in graph["course_pkg"]                      # __init__ -> env (downward)
    assert "course_pkg" in graph["course_pkg.env"]                      # env's lazy `from . import __version__`


def test_no_module_imports_its_own_package_except_env_for_the_version() -> None:
    graph = _graph()
    upward = sorted((m, t) for m, ts in graph.items() for t in ts
                    if m.startswith(t + ".") and (m, t) not in ALLOWED_UPWARD)
    assert not upward, f"modules importing their own package's __init__ (import the submodule instead): {upward}"


def test_the_import_graph_has_no_circle() -> None:
    cycles = _cycles(_graph(), ignore=ALLOWED_UPWARD)
    assert not cycles, f"import circles: {cycles}"


def test_every_module_reads_in_one_sitting() -> None:
    long = sorted((str(p.relative_to(PACKAGE)), n) for p in PACKAGE.rglob("*.py")
                  if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
                  and str(p.relative_to(PACKAGE)) not in WHOLE)
    assert not long, f"modules over {MAX_LINES} lines (split them by concept): {long}"
