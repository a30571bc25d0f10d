"""Helpers shared by the grader's tests: learners' sources built from chapter 1's registered exercises.

Imported as ``from grading_helpers import ...`` (pytest puts tests/ on the path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from course_pkg.grading import samples
from course_pkg.grading.isolation import bwrap_problem
from course_pkg.grading.plan import chapter_exercises

CH = "ch01"
NAMES = [ex.name for ex in chapter_exercises(CH)]
# The kernel sandbox where this machine has it (CI installs bubblewrap); else the rest is still tested.
KERNEL = bwrap_problem() is None
ISOLATION = "auto" if KERNEL else "none"
# A self-contained attention_pool, so a broken softmax_weights does not drag it down with it.
AP_SELF = '''def attention_pool(query, keys, values):
    weights = torch.softmax(query @ keys.T, dim=-1)
    return weights @ values, weights
'''
_SIGNATURES = {"softmax_weights": "(scores)", "weighted_average": "(weights, values)",
               "attention_pool": "(query, keys, values)"}


def answer(name: str, body: str) -> str:
    """The source of a function with the chapter 1 exercise's name and signature whose body is ``body``."""
    return f"def {name}{_SIGNATURES[name]}:\n" + "".join(f"    {line}\n" for line in body.strip("\n").split("\n"))


def sources_with(**replace: str) -> dict[str, str]:
    """``{name: source}``: chapter 1's reference solutions with some answers replaced."""
    srcs = samples.solution_sources(CH)
    srcs.update(replace)
    return srcs


def exercise_result(result: Any, name: str) -> Any:
    """The :class:`~course_pkg.grading.results.ExerciseResult` of exercise ``name`` in a learner's result."""
    return next(e for e in result.exercises if e.name == name)


class GradedClass:
    """A class of submissions to grade in a test: ``subs`` the learners' folder, ``out`` the grader's output
    folder (made by the grader), ``log`` what the test printed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.subs = root / "class"
        self.subs.mkdir(parents=True)
        self.out = root / "out"
        self.log: list[str] = []
