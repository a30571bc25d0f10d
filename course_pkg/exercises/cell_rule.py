"""The one rule for answer cells, checked in the notebook the way the grader applies it.

The batch grader runs only a notebook's exercise cells, in order, in a fresh namespace that holds
``math``, ``torch``, ``nn`` and ``F``. So an answer may use those four, what its own cell or an
earlier exercise cell defines or imports (the learner's earlier answers included), and nothing else.
A name that comes from another cell of the page (a chapter's helper or variable, a module imported
at the top, ``course_pkg``) exists when ``check`` runs the answer in the notebook, but not in the
grader. :func:`names_outside_the_rule` finds such names so that ``check`` can say so at once.

It reads the cells the notebook ran from IPython's input history (``In``); outside IPython, or when
the cell that made a name cannot be found, it says nothing rather than guess.
"""

from __future__ import annotations

import ast
import dis
import inspect
import math
import sys
import types
from typing import Any, Iterable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GRADER_NAMES", "cell_rule_note", "names_outside_the_rule"]

#: what the grader imports before it runs the exercise cells (``sandbox.main`` sets the same four; the
#: sandbox imports nothing from the package, so it cannot share this constant)
GRADER_NAMES: dict[str, types.ModuleType] = {"math": math, "torch": torch, "nn": nn, "F": F}


def _functions(answer: Any) -> list[types.FunctionType]:
    """The Python functions that make up ``answer``: itself, or a class's methods and properties."""
    if inspect.isfunction(answer):
        return [answer]
    found: list[types.FunctionType] = []
    if inspect.isclass(answer):
        for value in vars(answer).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            parts = (value.fget, value.fset, value.fdel) if isinstance(value, property) else (value,)
            found += [p for p in parts if inspect.isfunction(p)]
    return found


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and every code object nested in it (inner functions, comprehensions, lambdas)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _globals_read(functions: Iterable[types.FunctionType]) -> list[str]:
    """The global names the functions read, in order of first use."""
    names: dict[str, None] = {}
    for fn in functions:
        for code in _codes(fn.__code__):
            for ins in dis.get_instructions(code):
                if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(ins.argval, str):
                    names.setdefault(ins.argval, None)
    return list(names)


def _bound(source: str) -> set[str]:
    """Every name a cell's source binds anywhere (assignments, imports, defs, loop targets...).

    Generous on purpose: a name bound only inside a function body counts too, so the rule never
    blames a name that the cell may well define."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return names


def _history() -> Optional[list[str]]:
    """The sources of the cells run so far in this IPython session, oldest first (None outside IPython)."""
    if "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:  # noqa: BLE001 - any trouble here means: no history to read
        return None
    if shell is None:
        return None
    cells = shell.user_ns.get("In")
    return [c for c in cells if isinstance(c, str)] if isinstance(cells, list) else None


def names_outside_the_rule(answer: Any, exercise_names: Iterable[str],
                           history: Optional[Sequence[str]] = None) -> list[str]:
    """The names ``answer`` reads that the grader would not have.

    Args:
        answer: the learner's function or ``nn.Module`` class, defined in the notebook.
        exercise_names: the names of the chapter's exercises (the answer cells define them).
        history: the sources of the cells run so far, oldest first; by default IPython's ``In``.

    Returns:
        The global names read by ``answer`` that are part of ``course_pkg``, or whose latest
        defining cell defines none of the exercises (so is no answer cell); ``math``, ``torch``,
        ``nn`` and ``F`` as the grader provides them are fine. Names whose defining cell cannot be
        found are left out, and so is everything outside IPython.
    """
    functions = _functions(answer)
    if not functions or any(fn.__module__ != "__main__" for fn in functions):
        return []  # only answers written in the notebook itself are judged by the rule
    cells = list(history) if history is not None else _history()
    if not cells:
        return []
    namespace = functions[0].__globals__
    exercise_names = set(exercise_names)
    bound = [_bound(src) for src in cells]
    outside = []
    for name in _globals_read(functions):
        if name not in namespace or name.startswith("__"):
            continue  # a builtin, or a name that does not exist (the check reports its NameError)
        if name in GRADER_NAMES and namespace[name] is GRADER_NAMES[name]:
            continue
        if name in exercise_names:
            continue  # an answer to an exercise of this chapter
        if _from_course_pkg(namespace[name]):
            outside.append(name)  # the grader has no course_pkg, whichever cell imported it
            continue
        made_by = next((b for b in reversed(bound) if name in b), None)
        if made_by is not None and not made_by & exercise_names:
            outside.append(name)
    return outside


def _from_course_pkg(value: Any) -> bool:
    """Whether ``value`` is the course package, one of its modules, or something defined in it."""
    try:
        module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
    except Exception:  # noqa: BLE001 - a learner's object may have a __getattr__ that raises
        return False
    return isinstance(module, str) and (module == "course_pkg" or module.startswith("course_pkg."))


def cell_rule_note(names: Sequence[str]) -> str:
    """The note ``check`` prints for the names :func:`names_outside_the_rule` found ('' for none)."""
    if not names:
        return ""
    listed = ", ".join(f"`{n}`" for n in names)
    one = len(names) == 1
    return (f"Note: your answer uses {listed}, which {'comes' if one else 'come'} from outside the answer "
            "cells. The grader runs only the answer cells (the ones with `# YOUR CODE HERE`), in order, "
            f"with math, torch, nn and F already imported, and without course_pkg: there {listed} would "
            f"not exist and this answer would fail. Define or import {'it' if one else 'them'} in an "
            "answer cell (course_pkg's code may not be used).")
