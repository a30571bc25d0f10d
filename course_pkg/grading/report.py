"""The grader's outputs: a class gradebook (CSV), one Gradescope ``results.json`` per learner, and
a summary table for the terminal.

The output folder holds ``gradebook.csv`` and one ``<learner>/`` folder (``results.json``,
``output.txt``) per learner of the latest run; the folders an earlier run wrote for learners who
have no submission now are moved into ``stale/`` (:func:`set_aside_stale`), never reported again."""

from __future__ import annotations

import csv
import json
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Mapping, Optional

from .plan import chapter_exercises
from .results import STATUS_TEXT, ExerciseResult, ScoreTotals, SubmissionResult
from .text import cap, escape_controls
from .text import clean as clean_text

MAX_NOTE_CHARS = 1_000  # one note (a file's problem, an exercise's reason)
MAX_CELL_CHARS = 32_000  # a gradebook cell (spreadsheets refuse more than 32,767 characters)
STALE_FOLDER = "stale"  # OUT/stale/<learner>/: an earlier run's reports of a learner not graded now
LEARNER_FILES = frozenset({"results.json", "output.txt"})  # what write_learner puts in OUT/<learner>/


@dataclass
class LearnerResult(ScoreTotals):
    """All of one learner's graded files (one per chapter) and the notes about them."""

    learner: str
    submissions: list[SubmissionResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: Optional[str] = None  # nothing of this learner could be graded
    columns: list[str] = field(default_factory=list)  # every exercise id of the graded chapters

    @property
    def exercises(self) -> list[ExerciseResult]:
        return [e for s in self.submissions for e in s.exercises]

    @property
    def max_score(self) -> float:
        """One point per exercise of every chapter graded in the batch (the same for every learner,
        so totals compare), or of the learner's own files when no columns are set."""
        if self.columns:
            return float(len(self.columns))
        return sum(e.max_score for e in self.exercises)

    @property
    def status(self) -> str:
        """``ok``; ``flagged`` (an answer hung, crashed or did something not allowed, or protected
        files changed while it ran); ``error`` (a file could not be graded at all)."""
        if self.error or any(s.error for s in self.submissions) or not self.submissions:
            return "error"
        if any(s.flagged for s in self.submissions):
            return "flagged"
        return "ok"

    def all_notes(self) -> list[str]:
        """One line per note (control characters escaped, each at most ``MAX_NOTE_CHARS``)."""
        notes = ([self.error] if self.error else []) + list(self.notes)
        if not self.error and not self.submissions:
            notes.append("nothing was graded")
        for s in self.submissions:
            if s.error:
                notes.append(f"{s.path.name}: {(s.error.splitlines() or [''])[0]}")
            notes.extend(f"{s.path.name}: {n}" for n in s.notes)
            for e in s.exercises:
                if e.status != "passed":
                    notes.append(f"{e.name}: {STATUS_TEXT.get(e.status, e.status)}"
                                 + (f" - {e.reason}" if e.reason and e.reason != STATUS_TEXT.get(e.status) else ""))
        return [clean_text(n, MAX_NOTE_CHARS) for n in notes]


def _fmt(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def exercise_columns(chapters: list[str]) -> list[str]:
    """Every exercise id of the graded chapters, in chapter then registry order."""
    return [ex.id for ch in chapters for ex in chapter_exercises(ch)]


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: object) -> str:
    """A text cell that a spreadsheet shows as text, on one line and within a spreadsheet's cell size:
    control characters escaped (``\x1b``, ``\n``), at most ``MAX_CELL_CHARS`` characters, and one
    starting like a formula (``= + - @``, tab, carriage return) gets a leading apostrophe (OWASP's
    advice for CSV injection)."""
    raw = str(value)
    text = cap(escape_controls(raw), MAX_CELL_CHARS - 1)
    return "'" + text if raw.startswith(_FORMULA_START) or text.startswith(_FORMULA_START) else text


class Scrubber:
    """Replaces the instructor's absolute paths (keys) in learner-visible text by short names (values)."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self.table = sorted(((k.rstrip("/"), v) for k, v in table.items() if k.rstrip("/")),
                            key=lambda kv: -len(kv[0]))

    def __call__(self, text: str) -> str:
        for path, name in self.table:
            text = text.replace(path, name)
        return text


def write_gradebook(path: Path, results: list[LearnerResult], columns: list[str]) -> None:
    """``learner, <one column per exercise id>, total, max_score, status, notes``; an exercise of a
    chapter the learner did not hand in is left empty."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["learner", *columns, "total", "max_score", "status", "notes"])
        for r in results:
            scores = {e.id: e for e in r.exercises}
            w.writerow([csv_cell(r.learner), *(_fmt(scores[c].score) if c in scores else "" for c in columns),
                        _fmt(r.score), _fmt(r.max_score), r.status, csv_cell(" | ".join(r.all_notes()))])


def gradescope_json(r: LearnerResult, seconds: float, scrub: Optional[Scrubber] = None) -> dict:
    """Gradescope's autograder ``results.json`` (score, execution_time, output, tests with name,
    score, max_score, status "passed"/"failed", output, visibility), plus ``max_score`` and
    ``extra_data`` with the grader's own status of each exercise. Every exercise of the graded
    chapters is a test (one not handed in scores 0). ``scrub`` cleans the instructor's paths out of
    the learner-visible texts."""
    clean = scrub or (lambda t: t)
    tests = []
    done = {e.id: e for e in r.exercises}
    ids = list(r.columns) + [e.id for e in r.exercises if e.id not in r.columns]
    for number, ex_id in enumerate(ids, start=1):
        e = done.get(ex_id)
        if e is None:
            tests.append({"name": ex_id, "number": str(number), "score": 0.0, "max_score": 1.0,
                          "status": "failed", "output": f"[x] {ex_id}: not handed in", "visibility": "visible"})
            continue
        tests.append({
            "name": f"{e.id}: {e.title}" if e.title else e.id,
            "number": str(number),
            "score": float(round(e.score, 4)),
            "max_score": float(e.max_score),
            "status": "passed" if e.status == "passed" else "failed",
            "output": clean(e.feedback),
            "visibility": "visible",
        })
    notes = [clean(n) for n in r.all_notes()]
    output = f"Score: {_fmt(r.score)} / {_fmt(r.max_score)}"
    if notes:
        output += "\n" + "\n".join(f"- {n}" for n in notes)
    return {
        "score": float(round(r.score, 4)),
        "max_score": float(r.max_score),
        "execution_time": round(seconds, 1),
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {
            "learner": r.learner,
            "status": r.status,
            "files": [escape_controls(s.path.name) for s in r.submissions],
            "exercises": {e.id: e.status for e in r.exercises},
            "sandbox": {escape_controls(s.path.name): {k: v for k, v in s.sandbox.items() if k != "memory_limit"}
                        for s in r.submissions},
        },
    }


def write_learner(out: Path, r: LearnerResult, scrub: Optional[Scrubber] = None) -> Path:
    """``OUT/<learner>/results.json`` and ``OUT/<learner>/output.txt`` (the learner's captured
    output), both learner-visible, so cleaned with ``scrub``."""
    clean = scrub or (lambda t: t)
    folder = out / r.learner
    folder.mkdir(parents=True, exist_ok=True)
    seconds = sum(s.seconds for s in r.submissions)
    path = folder / "results.json"
    path.write_text(json.dumps(gradescope_json(r, seconds, scrub), indent=2), encoding="utf-8")
    text = "".join(f"===== {escape_controls(s.path.name)} =====\n{clean(s.output)}\n" for s in r.submissions)
    (folder / "output.txt").write_text(text, encoding="utf-8")
    return path


def summary_table(results: list[LearnerResult], columns: list[str], width: int = 110) -> str:
    """A plain-text table: one row per learner, one column per exercise, total and status; then the
    notes of every learner who did not get full marks."""
    short = [c.split(".", 1)[1] for c in columns] if len({c.split(".")[0] for c in columns}) == 1 else columns
    name_w = max([7] + [len(r.learner) for r in results])
    col_w = [max(5, len(s)) for s in short]
    head = "learner".ljust(name_w) + "  " + "  ".join(s.rjust(w) for s, w in zip(short, col_w)) + "   total  status"
    lines = [head, "-" * len(head)]
    for r in results:
        scores = {e.id: e for e in r.exercises}
        cells = []
        for c, w in zip(columns, col_w):
            e = scores.get(c)
            cell = "" if e is None else (_fmt(e.score) if e.status in ("passed", "failed") else
                                         {"not_attempted": "-", "missing": "?", "forbidden": "X", "timeout": "T",
                                          "crashed": "C", "error": "E"}.get(e.status, "!"))
            cells.append(cell.rjust(w))
        total = f"{_fmt(r.score)}/{_fmt(r.max_score)}"
        lines.append(r.learner.ljust(name_w) + "  " + "  ".join(cells) + f"  {total:>6}  {r.status}")
    lines.append("")
    lines.append("Legend: a number is the fraction of cases passed; - not attempted, ? no answer found, "
                 "X not allowed (score 0), T timed out, C crashed, E could not be graded.")
    noted = [r for r in results if r.all_notes() and (r.status != "ok" or r.score < r.max_score)]
    if noted:
        lines.append("")
        lines.append("Notes:")
        for r in noted:
            for n in r.all_notes():
                # the whole note, wrapped (never cut: its end is often the part that says what to fix)
                lines += textwrap.wrap(f"  {r.learner}: {n}", width, subsequent_indent="      ",
                                       break_long_words=False, break_on_hyphens=False) or [""]
    return "\n".join(lines)


def set_aside_stale(out: Path, learners: Collection[str]) -> tuple[list[str], list[str]]:
    """Move the ``OUT/<learner>/`` folders of an earlier run whose learner is not in ``learners`` into
    ``OUT/stale/`` (replacing an older copy there), so the reports in ``out`` are this run's only.

    Only folders that hold nothing but what :func:`write_learner` writes (``results.json`` and maybe
    ``output.txt``) are moved; anything else in ``out`` is left alone. Returns (the learners moved,
    the ones that could not be moved, with why)."""
    moved: list[str] = []
    failed: list[str] = []
    if not out.is_dir():
        return moved, failed
    for folder in sorted(out.iterdir()):
        if folder.name in learners or folder.name == STALE_FOLDER or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            names = {f.name for f in folder.iterdir()}
            if "results.json" not in names or not names <= LEARNER_FILES:
                continue
            target = out / STALE_FOLDER / folder.name
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(exist_ok=True)
            folder.rename(target)
            moved.append(folder.name)
        except OSError as exc:
            failed.append(f"{folder.name} ({exc})")
    return moved, failed
