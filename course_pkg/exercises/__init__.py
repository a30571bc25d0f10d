"""Exercises for every chapter, with checks, hints and solutions.

In a chapter::

    from course_pkg.exercises import ch01 as ex

    def softmax_weights(scores):
        raise NotImplementedError  # your code here

    ex.softmax_weights.check(softmax_weights)   # feedback; never raises (a real Ctrl-C still interrupts)
    ex.softmax_weights.hint()                   # the next hint, one per call, gentle first
    ex.softmax_weights.hint(3)                  # hint 3 (the last hint gives the answer away)
    ex.softmax_weights.solution()               # the reference answer

Answers may use ``math``, ``torch``, ``nn``, ``F`` and the learner's earlier exercise answers: the check runs
in the notebook, and the batch grader runs all the exercise cells of a notebook together, in order, without
the chapter's other cells and without ``course_pkg``.

Rules every check applies, the same in the notebook and in the batch grader:

* a number an exercise returns is a plain Python number: an ``int`` where a count is expected (``196.0``
  is refused: use ``//``), a ``float`` (or an ``int``) where a fraction is; a tensor, even a 0-d one, is
  refused with "call .item()";
* an answer must not change its inputs in place (``scores -= ...``, ``x *= w``, an optimizer stepping the
  caller's tensors): the case fails and the feedback names the input;
* a library shortcut the exercise text rules out (``torch.softmax`` in ``ch01.softmax_weights``,
  ``F.unfold`` in ``ch06.patchify``) is judged by its outputs like any answer, and the feedback adds a note;
* "This looks like a common mistake" is said only when the answer behaves like that recorded mistake on
  every case (one case can be degenerate: a sum and a max agree on an image with one bright pixel).

The same checks are available by id: ``check("ch01.softmax_weights", softmax_weights)``.
Each chapter's exercises live in a module ``chNN`` here, registered with
:func:`~course_pkg.exercises.registry.register` (:mod:`course_pkg.exercises.registry`).
"""

from __future__ import annotations

from typing import Any, Optional

from .core import Case, CaseResult, CheckFailure, CheckResult, Exercise, Mistake, NotAttempted
from .registry import all_exercises, get, register

__all__ = [
    "Case", "CaseResult", "CheckFailure", "CheckResult", "Exercise", "Mistake", "NotAttempted",
    "all_exercises", "check", "get", "hint", "register", "solution",
]


_MISSING: Any = object()


def check(exercise_id: str, answer: Any = _MISSING) -> CheckResult:
    """Check ``answer`` against exercise ``exercise_id`` and print feedback.

    Never raises for a learner's mistake: an unknown id, a missing answer or an answer of the
    wrong kind prints what is wrong and returns a result with the status ``"error"`` (see
    :meth:`Exercise.check` for the one deliberate exception, a real Ctrl-C)."""
    problem = None
    if not isinstance(exercise_id, str):
        problem = ("call it as check(exercise_id, answer), e.g. check('ch01.softmax_weights', softmax_weights); "
                   f"the first argument was a {type(exercise_id).__name__}")
    elif answer is _MISSING:
        problem = (f"call it as check(exercise_id, answer): pass your answer too, e.g. "
                   f"check({exercise_id!r}, {exercise_id.split('.')[-1]})")
    else:
        try:
            ex = get(exercise_id)
        except KeyError as exc:
            problem = str(exc.args[0])
    if problem is not None:
        result = CheckResult(str(exercise_id) if isinstance(exercise_id, str) else "?", "error", [], problem)
        print(result.summary())
        return result
    return ex.check(answer)


def hint(exercise_id: str, n: Optional[int] = None) -> None:
    """Print the next hint of an exercise, or hint ``n`` (see :meth:`Exercise.hint`)."""
    get(exercise_id).hint(n)


def solution(exercise_id: str) -> None:
    """Show the reference solution of an exercise."""
    get(exercise_id).solution()
