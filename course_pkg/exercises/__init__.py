"""Exercises for every chapter, with checks, hints and solutions.

In a chapter::

    from course_pkg.exercises import ch01 as ex

    def softmax_weights(scores):
        raise NotImplementedError  # your code here

    ex.softmax_weights.check(softmax_weights)   # feedback; never raises
    ex.softmax_weights.hint()                   # a nudge
    ex.softmax_weights.solution()               # the reference answer

The same checks are available by id: ``check("ch01.softmax_weights", softmax_weights)``.
Each chapter's exercises live in a module ``chNN`` here, registered with :func:`register`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Optional

from .core import Case, CaseResult, CheckFailure, CheckResult, Exercise, Mistake, NotAttempted

__all__ = [
    "Case", "CaseResult", "CheckFailure", "CheckResult", "Exercise", "Mistake", "NotAttempted",
    "all_exercises", "check", "get", "hint", "register", "solution",
]

_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (ids must be unique); returns it for assignment."""
    if exercise.id in _REGISTRY and _REGISTRY[exercise.id] is not exercise:
        raise ValueError(f"exercise id {exercise.id!r} is registered twice")
    if "." not in exercise.id or not exercise.id.startswith("ch"):
        raise ValueError(f"exercise id must look like 'ch01.name', got {exercise.id!r}")
    _REGISTRY[exercise.id] = exercise
    return exercise


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("ch"):
            importlib.import_module(f"{__name__}.{mod.name}")


def all_exercises(chapter: Optional[str] = None) -> list[Exercise]:
    """Every registered exercise (optionally of one chapter, e.g. ``"ch01"``), in id order."""
    _load_all()
    return [ex for key, ex in sorted(_REGISTRY.items()) if chapter is None or ex.chapter == chapter]


def get(exercise_id: str) -> Exercise:
    """Look an exercise up by id, with a helpful error listing the known ids."""
    _load_all()
    try:
        return _REGISTRY[exercise_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown exercise id {exercise_id!r}; known ids: {known}") from None


def check(exercise_id: str, answer: Any) -> CheckResult:
    """Check ``answer`` against exercise ``exercise_id`` and print feedback (never raises)."""
    return get(exercise_id).check(answer)


def hint(exercise_id: str, n: Optional[int] = None) -> None:
    """Print the hints of an exercise (or hint ``n`` only)."""
    get(exercise_id).hint(n)


def solution(exercise_id: str) -> None:
    """Show the reference solution of an exercise."""
    get(exercise_id).solution()
