"""The grader's verdicts: on one exercise (:class:`ExerciseResult`) and on one learner's file
(:class:`SubmissionResult`), with the words each status is shown in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .text import clean

# Each status of one exercise, in words (the summary, the gradebook's notes, the feedback)
STATUS_TEXT = {
    "passed": "correct",
    "failed": "some cases fail",
    "not_attempted": "not attempted",
    "missing": "no answer found",
    "forbidden": "not allowed",
    "timeout": "timed out",
    "crashed": "crashed",
    "error": "could not be graded",
}

MAX_REASON_CHARS = 1_000  # an exercise's one-line reason
MAX_FEEDBACK_CHARS = 16_000  # an exercise's feedback (all its cases)


@dataclass
class ExerciseResult:
    """The verdict on one exercise of one submission."""

    id: str
    title: str
    status: str
    score: float = 0.0
    max_score: float = 1.0
    reason: str = ""  # one line for the gradebook
    feedback: str = ""  # the full text for the learner

    def __post_init__(self) -> None:  # learner-controlled text: no control characters, bounded
        self.reason = clean(self.reason, MAX_REASON_CHARS)
        self.feedback = clean(self.feedback, MAX_FEEDBACK_CHARS, keep="\n")

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]


class ScoreTotals:
    """``score`` and ``max_score`` summed over the ``exercises`` (list of :class:`ExerciseResult`) of a result."""

    @property
    def score(self) -> float:
        return sum(e.score for e in self.exercises)  # type: ignore[attr-defined]

    @property
    def max_score(self) -> float:
        return sum(e.max_score for e in self.exercises)  # type: ignore[attr-defined]


@dataclass
class SubmissionResult(ScoreTotals):
    """Everything the grader found out about one learner's file."""

    learner: str
    path: Path
    chapter: Optional[str]
    exercises: list[ExerciseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: Optional[str] = None  # the whole file could not be graded
    seconds: float = 0.0  # wall-clock time of grading the file, sandbox start-ups included
    code_seconds: float = 0.0  # time the learner's code ran, by the grader's clock (start-ups excluded)
    output: str = ""  # the learner's captured stdout/stderr (truncated)
    sandbox: dict = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return any(e.status in ("forbidden", "timeout", "crashed") for e in self.exercises)

