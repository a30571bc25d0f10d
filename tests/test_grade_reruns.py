"""The grader run again on the same folders (issue 21): what a second run grades and reports.

* ``--out`` inside the submissions folder: the second run must not grade the first run's reports
  (the output folder would otherwise be one more learner, with nothing to grade).
* A learner who left: a re-run's reports are this run's learners only; the earlier run's folder of a
  learner with no submission now is moved into ``OUT/stale/``, never left beside the others.

Each class holds one learner graded in the sandbox and learners whose file does not parse (graded
without one), so a run takes one sandbox start-up.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from grading_helpers import CH, ISOLATION, sources_with

from course_pkg.grading import samples
from course_pkg.grading.batch import grade
from course_pkg.grading.cli import main
from course_pkg.grading.discovery import RESERVED_IDS
from course_pkg.grading.limits import Limits
from course_pkg.grading.report import STALE_FOLDER

LIMITS = Limits(timeout=60, isolation=ISOLATION)  # generous: only what is graded matters here
BROKEN = f"CHAPTER = {CH!r}\ndef (:\n"  # does not parse: graded (as an error) without a sandbox


def _class(folder: Path, *broken: str) -> Path:
    """``ada.py`` with chapter 1's solutions, and a learner per name in ``broken`` whose file does not parse."""
    folder.mkdir(parents=True)
    samples.write_py(folder / "ada.py", CH, sources_with())
    for name in broken:
        (folder / f"{name}.py").write_text(BROKEN)
    return folder


def _learners(gradebook: Path) -> list[str]:
    with open(gradebook, newline="", encoding="utf-8") as f:
        return [row["learner"] for row in csv.DictReader(f)]


def test_an_out_folder_inside_the_submissions_is_never_graded(tmp_path: Path) -> None:
    subs = _class(tmp_path / "class", "bob")
    out = subs / "results"
    first_log: list[str] = []
    first = grade([subs], out, limits=LIMITS, jobs=1, echo=first_log.append)
    first_book = (out / "gradebook.csv").read_text(encoding="utf-8")
    assert [r.learner for r in first] == ["ada", "bob"]
    assert first[0].score == first[0].max_score > 0, first[0].all_notes()

    log: list[str] = []
    second = grade([subs], out, limits=LIMITS, jobs=1, echo=log.append)
    assert [r.learner for r in second] == ["ada", "bob"], [r.learner for r in second]
    assert (out / "gradebook.csv").read_text(encoding="utf-8") == first_book
    assert not (out / "results").exists()
    said = [line for line in log if "output folder" in line]
    assert len(said) == 1 and str(out) in said[0], log
    assert not [line for line in first_log if "output folder" in line]  # nothing to skip the first time


def test_the_submissions_folder_itself_as_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its learners' report folders would be learners of the next run: nothing is graded, exit status 2."""
    subs = _class(tmp_path / "class")
    unsafe = [] if ISOLATION == "auto" else ["--unsafe-no-isolation"]
    assert main([str(subs), "--out", str(subs), *unsafe]) == 2
    captured = capsys.readouterr()
    assert "output folder" in captured.err and "give --out another folder" in captured.err, captured
    assert sorted(p.name for p in subs.iterdir()) == ["ada.py"]


def test_a_rerun_reports_only_the_learners_handed_in_now(tmp_path: Path) -> None:
    subs = _class(tmp_path / "class", "bob", "cy")
    out = tmp_path / "grades"
    grade([subs], out, limits=LIMITS, jobs=1, echo=lambda line: None)
    assert _learners(out / "gradebook.csv") == ["ada", "bob", "cy"]
    (subs / "bob.py").unlink()  # bob left the class
    notes = out / "instructor_notes"  # not the grader's: left alone
    notes.mkdir()
    (notes / "results.json").write_text("{}")
    (notes / "todo.txt").write_text("mark by Friday")

    log: list[str] = []
    second = grade([subs], out, limits=LIMITS, jobs=1, echo=log.append)
    assert [r.learner for r in second] == ["ada", "cy"]
    assert _learners(out / "gradebook.csv") == ["ada", "cy"]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["ada", "cy", "instructor_notes", STALE_FOLDER]
    assert sorted(p.name for p in (out / STALE_FOLDER).iterdir()) == ["bob"]
    assert (out / STALE_FOLDER / "bob" / "results.json").is_file()
    assert (notes / "todo.txt").read_text() == "mark by Friday"
    said = [line for line in log if STALE_FOLDER in line]
    assert len(said) == 1 and "1 learner(s)" in said[0], log

    (subs / "cy.py").unlink()
    log.clear()
    grade([subs], out, limits=LIMITS, jobs=1, echo=log.append)
    assert _learners(out / "gradebook.csv") == ["ada"]
    assert sorted(p.name for p in (out / STALE_FOLDER).iterdir()) == ["bob", "cy"]
    assert len([line for line in log if STALE_FOLDER in line and "1 learner(s)" in line]) == 1, log


def test_no_learner_is_named_like_the_stale_folder() -> None:
    assert STALE_FOLDER in RESERVED_IDS
