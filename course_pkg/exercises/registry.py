"""The registry of exercises: every chapter module registers its exercises here, by id.

A chapter module (``chNN``) builds each exercise and registers it as it defines it::

    softmax_weights = register(Exercise(id="ch01.softmax_weights", ...))

:func:`all_exercises` and :func:`get` load every chapter module first, so the registry is complete
whichever chapter was imported. The registry reads an exercise's ``id``, ``name`` and ``chapter`` only
(:class:`Registered`); it does not import the framework (:mod:`course_pkg.exercises.core`), which asks it
for the exercises of a chapter (the cell rule's note in ``Exercise.check``): the two form no circle.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Optional, Protocol, TypeVar

__all__ = ["Registered", "all_exercises", "get", "register"]


class Registered(Protocol):
    """What the registry reads of an exercise; every registered one is a ``core.Exercise``."""

    @property
    def id(self) -> str: ...      # "ch01.softmax_weights"

    @property
    def name(self) -> str: ...    # "softmax_weights", the answer's name in the notebook

    @property
    def chapter(self) -> str: ...  # "ch01", the chapter module that registers it


_E = TypeVar("_E", bound=Registered)
_REGISTRY: dict[str, Registered] = {}


def register(exercise: _E) -> _E:
    """Add an exercise to the registry (ids must be unique); returns it for assignment."""
    if exercise.id in _REGISTRY and _REGISTRY[exercise.id] is not exercise:
        raise ValueError(f"exercise id {exercise.id!r} is registered twice")
    if "." not in exercise.id or not exercise.id.startswith("ch"):
        raise ValueError(f"exercise id must look like 'ch01.name', got {exercise.id!r}")
    _REGISTRY[exercise.id] = exercise
    return exercise


def _load_all() -> None:
    """Import every chapter module (``chNN``) of the package, which registers its exercises."""
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if mod.name.startswith("ch"):
            importlib.import_module(f"{__package__}.{mod.name}")


def all_exercises(chapter: Optional[str] = None) -> list[Registered]:
    """Every registered exercise (optionally of one chapter, e.g. ``"ch01"``), in id order."""
    _load_all()
    return [ex for key, ex in sorted(_REGISTRY.items()) if chapter is None or ex.chapter == chapter]


def get(exercise_id: str) -> Registered:
    """Look an exercise up by id (``"ch01.softmax_weights"``), with a helpful error: a ``KeyError``
    that suggests the full id for a bare name and lists the known ids."""
    _load_all()
    if isinstance(exercise_id, str) and exercise_id in _REGISTRY:
        return _REGISTRY[exercise_id]
    known = ", ".join(sorted(_REGISTRY))
    if not isinstance(exercise_id, str):
        raise KeyError(f"an exercise id is a string such as 'ch01.softmax_weights', got a "
                       f"{type(exercise_id).__name__}; known ids: {known}")
    close = [key for key in sorted(_REGISTRY) if key.split(".", 1)[1] == exercise_id]
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    raise KeyError(f"unknown exercise id {exercise_id!r}{guess}; known ids: {known}")
