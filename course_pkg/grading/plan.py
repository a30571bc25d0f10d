"""What the grader needs of a chapter before it runs anyone's code: its exercises in the chapter's
order, their cases as plain data for the sandbox, and the reference outputs (computed once)."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any

from ..exercises import Exercise, all_exercises
from ..exercises.core import ValueCodecError, encode_value


@dataclass
class ChapterPlan:
    """A chapter's exercises, their cases as plain data and the reference outputs (computed once)."""

    chapter: str
    exercises: list[Exercise]
    cases: dict[str, list[dict]]  # name -> [{"name", "seed", "args"}]
    unusable: dict[str, str]  # name -> why its cases cannot be sent to a sandbox

    @property
    def names(self) -> list[str]:
        return [ex.name for ex in self.exercises]

    @classmethod
    def build(cls, chapter: str) -> ChapterPlan:
        exercises = chapter_exercises(chapter)
        cases: dict[str, list[dict]] = {}
        unusable: dict[str, str] = {}
        for ex in exercises:
            try:
                cases[ex.name] = [{"name": c.name, "seed": c.seed, "args": _plain(encode_value(c.args()))}
                                  for c in ex.cases]
                for c in ex.cases:
                    ex.expected(c)  # fill the cache now, in one thread
            except Exception as exc:  # noqa: BLE001 - an exercise the grader cannot handle is reported
                unusable[ex.name] = f"the grader cannot send this exercise's cases ({type(exc).__name__}: {exc})"
        return cls(chapter, exercises, cases, unusable)


def chapter_exercises(chapter: str) -> list[Exercise]:
    """A chapter's exercises in the order its module defines them (the order of the chapter)."""
    exercises = all_exercises(chapter)
    try:
        module = importlib.import_module(f"..exercises.{chapter}", __package__)
        order = {id(v): i for i, v in enumerate(vars(module).values()) if isinstance(v, Exercise)}
    except ImportError:
        return exercises
    return sorted(exercises, key=lambda ex: order.get(id(ex), len(order)))


def _plain(data: Any) -> Any:
    """Fail early (ValueCodecError) on arguments that are not plain data: opaque values cannot be sent."""
    text = json.dumps(data)
    if '"t": "opaque"' in text:
        raise ValueCodecError("an argument is not a tensor, number, string, None, tuple, list or dict")
    return data

