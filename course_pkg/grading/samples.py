"""Sample submissions built from the registered exercises, for trying the grader out (and its tests).

``write_notebook(path, "ch01", solution_sources("ch01"))`` writes a notebook whose ``exercise``
cells hold the reference solutions, as a learner who got everything right would hand in;
``stub_sources`` gives the unattempted stubs instead. Any source can be swapped for another to
model a particular learner.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Mapping, Optional

from ..exercises import Exercise
from .plan import chapter_exercises

__all__ = ["notebook", "solution_sources", "stub_source", "stub_sources", "write_notebook", "write_py"]


def solution_sources(chapter: str) -> dict[str, str]:
    """``{name: source}`` of each exercise's reference solution (what ``.solution()`` shows)."""
    return {ex.name: ex.solution_source() for ex in chapter_exercises(chapter)}


def _plain_signature(obj: object) -> str:
    sig = inspect.signature(obj)  # type: ignore[arg-type]
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def stub_source(ex: Exercise) -> str:
    """The unattempted stub of an exercise, as a chapter ships it."""
    if ex.kind == "module":
        init = _plain_signature(ex.reference.__init__)
        return (f"class {ex.name}(nn.Module):\n"
                f"    def __init__{init}:\n"
                f"        super().__init__()\n"
                f"        # YOUR CODE HERE\n"
                f"        raise NotImplementedError\n\n"
                f"    def forward(self, x):\n"
                f"        raise NotImplementedError\n")
    return (f"def {ex.name}{_plain_signature(ex.reference)}:\n"
            f"    # YOUR CODE HERE\n"
            f"    raise NotImplementedError\n")


def stub_sources(chapter: str) -> dict[str, str]:
    """``{name: stub source}`` for every exercise of a chapter."""
    return {ex.name: stub_source(ex) for ex in chapter_exercises(chapter)}


def notebook(chapter: str, sources: Mapping[str, str], *, tagged: bool = True,
             metadata_chapter: Optional[str] = None) -> dict:
    """A chapter-like notebook (nbformat 4, no outputs): an untagged set-up cell that must not run in
    the grader, then per exercise a prompt, a cell with ``sources[name]`` (tagged ``exercise``
    unless ``tagged=False``) and an untagged check cell. Names missing from ``sources`` get no cell."""

    def code(src: str, tags: Optional[list] = None) -> dict:
        return {"cell_type": "code", "execution_count": None, "id": f"c{len(cells)}",
                "metadata": {"tags": tags} if tags else {}, "outputs": [], "source": src}

    cells: list[dict] = [{"cell_type": "markdown", "id": "title", "metadata": {},
                          "source": f"# Sample submission for {chapter}"}]
    cells.append(code("raise RuntimeError('untagged cells never run in the grader')\n"
                      f"from course_pkg.exercises import {chapter} as ex"))
    for ex in chapter_exercises(chapter):
        if ex.name not in sources:
            continue
        cells.append({"cell_type": "markdown", "id": f"m{len(cells)}", "metadata": {},
                      "source": f"## Exercise: {ex.title}"})
        cells.append(code(sources[ex.name], ["exercise"] if tagged else None))
        cells.append(code(f"ex.{ex.name}.check({ex.name})"))
    meta: dict = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                  "language_info": {"name": "python"}}
    if metadata_chapter:
        meta["course"] = {"chapter": metadata_chapter}
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def write_notebook(path: str | Path, chapter: str, sources: Mapping[str, str], **kwargs: object) -> Path:
    """Write :func:`notebook` to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = notebook(chapter, sources, **kwargs)  # type: ignore[arg-type]
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def write_py(path: str | Path, chapter: str, sources: Mapping[str, str], *, declare: bool = True) -> Path:
    """Write a ``.py`` submission: an optional ``CHAPTER = "chNN"`` line, the usual imports, then
    each source in exercise order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f'"""A learner\'s answers to {chapter}."""', ""]
    if declare:
        parts.append(f'CHAPTER = "{chapter}"')
    parts += ["import math", "", "import torch", "import torch.nn as nn", "import torch.nn.functional as F", ""]
    for ex in chapter_exercises(chapter):
        if ex.name in sources:
            parts += ["", sources[ex.name].rstrip("\n"), ""]
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
