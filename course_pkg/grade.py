"""Batch grader: score a class's chapter notebooks or .py files with the chapters' own checks.

Usage::

    python -m course_pkg.grade SUBMISSION... [--out DIR] [--chapter chNN] [--timeout S]
                                             [--memory MB] [--jobs N]

(also installed as ``course-grade``). For every learner it writes ``OUT/<learner>/results.json``
in Gradescope's autograder format and ``OUT/<learner>/output.txt`` (what their code printed), then
``OUT/gradebook.csv`` for the class (learner, one column per exercise, total, max_score, status,
notes), and prints a summary table.

What is graded
--------------
* A SUBMISSION is a chapter notebook (``.ipynb``), a ``.py`` file of solutions, or a folder of
  them. In a folder, each file directly inside is one learner (id = file name without extension)
  and each sub-folder is one learner (id = folder name) whose files are all graded, one chapter per
  file (a second file for the same chapter is skipped with a note).
* The chapter: ``--chapter chNN`` if given (it wins); else a notebook's metadata
  ``{"course": {"chapter": "chNN"}}`` or a ``.py`` file's line ``CHAPTER = "chNN"``; else the file
  name, ``NN_anything`` or ``chNN_anything`` (``01_attention.ipynb`` is ``ch01``).
* In a notebook only the code cells tagged ``exercise`` run, in order (if no cell is tagged, the
  cells that define an exercise's name at top level; a note says so). A ``.py`` file runs top to
  bottom, one top-level statement at a time (its ``__name__`` is ``"submission"``, so a
  ``if __name__ == "__main__":`` block does not run). Either way ``math``, ``torch``, ``nn`` and
  ``F`` are already imported, and a cell or statement that raises is reported and skipped.
* Each exercise's answer is the function or class named like the part of its id after the dot
  (``ch01.softmax_weights`` -> ``softmax_weights``). It runs on the same cases as the chapter's
  ``check``; its score is the fraction of cases passed (0 to 1 per exercise).

Safety and its limits (the threat model)
----------------------------------------
Learners' code is untrusted. Each submission runs in a fresh ``python -I -B`` process whose working
folder, HOME and TMPDIR are an empty scratch folder, with a time limit per cell and per exercise
(the process group is killed), an address-space limit (``--memory`` MB on top of Python + torch),
a file-size limit, no core dumps, and no GPU. Before learner code runs, the process is locked down:

* where the Linux kernel has Landlock (5.13+), the kernel refuses to create, write, rename or
  remove files outside the scratch folder, to execute programs, to open TCP connections and to
  signal other processes -- this holds whatever the Python code does;
* an audit hook (``sys.addaudithook``; it cannot be removed) refuses importing ``course_pkg``,
  reading the course's files, writing outside the scratch folder, starting processes, sending
  signals, ``ctypes``, walking ``gc`` referrers, changing resource limits and rewriting functions'
  code, and records each attempt.

The sandbox never loads the reference solutions (the exercise framework is loaded from its file
alone), so an answer cannot be, or call, the course's implementation. Scores are decided in the
grader's own process, from the outputs the child sends as plain data (JSON; tensors as raw bytes
with dtype and shape; nothing is unpickled), against reference outputs computed here. So printing
"passed", patching torch or the checks, or writing to the result channel can change only what the
learner's own answers appear to output.

What a misbehaving answer gets: an exercise whose code hangs, crashes the process, exits, runs out
of memory, or tries something refused above gets 0 for that exercise, with the reason in the
summary, the gradebook and ``results.json``; the other exercises of the same file still run (the
child is restarted without the offending cell or exercise), and so does the rest of the class. A
cell or statement that does something refused while the file loads costs the exercises it names
(all of them if it names none).

Limits of this design: the audit hook is Python code in the learner's process, and PEP 578 says
audit hooks are not a sandbox: a determined attacker who knows CPython's internals may get around
it; Landlock is what stops writes for real, and it only exists on Linux. As a further check, the
grader compares the course's grading files, the submissions and the output folder before and
after every submission and flags the learners who ran while anything changed. Copying the
solution's text (which ``.solution()`` shows by design) cannot be told from writing it. For a
hostile class, also run the grader in a container or VM without network and with the course
mounted read-only (Gradescope's autograder image is one).

Exit status: 0 when the class was graded (whatever the scores), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from .exercises import all_exercises
from .grading.report import (
    LearnerResult,
    exercise_columns,
    summary_table,
    write_gradebook,
    write_learner,
)
from .grading.runner import PACKAGE_DIR, ChapterPlan, Limits, SubmissionResult, grade_submission
from .grading.submissions import Submission, SubmissionError, discover, load

__all__ = ["Limits", "LearnerResult", "grade", "main"]


def _known_chapters() -> dict[str, list[str]]:
    known: dict[str, list[str]] = {}
    for ex in all_exercises():
        known.setdefault(ex.chapter, []).append(ex.name)
    return known


def _protected_files(subs: Sequence[Submission], chapters: Sequence[str], out: Path) -> list[Path]:
    files = [s.path for s in subs]
    files += sorted((PACKAGE_DIR / "grading").glob("*.py"))
    files += [PACKAGE_DIR / "grade.py", PACKAGE_DIR / "exercises" / "core.py", PACKAGE_DIR / "exercises" / "__init__.py"]
    for ch in chapters:
        files += [PACKAGE_DIR / "exercises" / f"{ch}.py", PACKAGE_DIR / "exercises" / "solutions" / f"{ch}.py"]
    if out.is_dir():
        files += [p for p in out.rglob("*") if p.is_file()]
    return files


def _snapshot(files: Sequence[Path]) -> dict[str, tuple]:
    snap = {}
    for f in files:
        try:
            st = f.stat()
            snap[str(f)] = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            snap[str(f)] = None
    return snap


def _deny_read(subs: Sequence[Submission], out: Path, workroot: Path) -> list[str]:
    roots = [PACKAGE_DIR]
    project = PACKAGE_DIR.parent
    if (project / "pyproject.toml").is_file() and (project / "course_pkg").is_dir():
        roots.append(project)  # a source checkout: its .git and tests hold the solutions too
    roots.append(out.resolve())
    roots += [s.path.resolve() for s in subs]
    work = workroot.resolve()
    keep = []
    for r in roots:
        r = r.resolve()
        if work == r or r in work.parents:
            continue  # never deny the folder that holds the scratch folders
        keep.append(str(r))
    return keep


def grade(paths: Sequence[str | Path], out: str | Path, *, chapter: Optional[str] = None,
          limits: Optional[Limits] = None, jobs: int = 2,
          echo: Callable[[str], None] = print) -> list[LearnerResult]:
    """Grade every submission under ``paths``, write the reports into ``out`` and return the results.

    Raises :class:`~course_pkg.grading.submissions.SubmissionError` for paths that name nothing
    gradable, and ``ValueError`` for bad options."""
    limits = limits or Limits()
    if jobs < 1:
        raise ValueError(f"jobs={jobs} must be at least 1")
    if limits.timeout <= 0:
        raise ValueError(f"timeout={limits.timeout} must be a positive number of seconds")
    if limits.memory_mb < 64:
        raise ValueError(f"memory={limits.memory_mb} MB is too small; give at least 64 (default 4096)")
    known = _known_chapters()
    if chapter is not None and chapter not in known:
        raise ValueError(f"chapter={chapter!r} has no exercises; chapters with exercises: {', '.join(sorted(known))}")
    out = Path(out)
    started = time.monotonic()
    learners: list[LearnerResult] = []
    subs: list[Submission] = []
    for learner, files in discover(paths):
        lr = LearnerResult(learner)
        learners.append(lr)
        if not files:
            lr.error = "the folder holds no .ipynb or .py file"
            continue
        seen: dict[str, Path] = {}
        for f in files:
            sub = load(learner, f, chapter, known)
            if sub.chapter and sub.chapter in seen:
                lr.notes.append(f"{f.name} skipped: {seen[sub.chapter].name} was already graded for {sub.chapter}")
                continue
            if sub.chapter:
                seen[sub.chapter] = f
            subs.append(sub)
    chapters = sorted({s.chapter for s in subs if s.chapter})
    plans = {ch: ChapterPlan.build(ch) for ch in chapters}
    out.mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="course-grade-"))
    deny = _deny_read(subs, out, workroot)
    protected = _protected_files(subs, chapters, out)
    baseline = _snapshot(protected)
    by_sub: dict[int, SubmissionResult] = {}
    spans: dict[int, list[float]] = {}
    pending_notes: dict[int, list[str]] = {}

    def work(i: int, sub: Submission) -> SubmissionResult:
        spans[i] = [time.monotonic(), float("inf")]
        try:
            if sub.problem or not sub.chapter:
                return SubmissionResult(sub.learner, sub.path, sub.chapter, notes=list(sub.notes),
                                        error=sub.problem or "no chapter")
            return grade_submission(sub, plans[sub.chapter], limits, workroot, deny)
        finally:
            spans[i][1] = time.monotonic()

    try:
        last_check = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(work, i, s): i for i, s in enumerate(subs)}
            for fut in concurrent.futures.as_completed(futures):
                i = futures[fut]
                by_sub[i] = res = fut.result()
                now = time.monotonic()
                snap = _snapshot(protected)
                changed = sorted(p for p in snap if snap[p] != baseline.get(p))
                if changed:
                    suspects = [j for j, (a, b) in spans.items() if a <= now and b >= last_check]
                    for j in suspects:
                        target = by_sub.get(j)
                        note = ("protected files changed while this submission ran (review by hand): "
                                + ", ".join(changed[:5]))
                        if target is not None:
                            target.notes.append(note)
                            target.sandbox["tampered"] = True
                        else:
                            pending_notes.setdefault(j, []).append(note)
                    baseline = snap
                last_check = now
                if i in pending_notes:
                    res.notes.extend(pending_notes.pop(i))
                    res.sandbox["tampered"] = True
                total = f"{res.score:g}/{res.max_score:g}" if not res.error else "error"
                echo(f"graded {res.learner} ({res.path.name}): {total} in {res.seconds:.1f} s")
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    for i, sub in enumerate(subs):
        lr = next(r for r in learners if r.learner == sub.learner)
        lr.submissions.append(by_sub[i])
    columns = exercise_columns(chapters)
    write_gradebook(out / "gradebook.csv", learners, columns)
    for lr in learners:
        write_learner(out, lr)
    echo("")
    echo(summary_table(learners, columns))
    echo("")
    echo(f"{len(learners)} learner(s), {len(subs)} file(s) graded in {time.monotonic() - started:.1f} s; "
         f"gradebook: {out / 'gradebook.csv'}")
    return learners



def _parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    rules = doc[doc.index("What is graded"):doc.index("Safety and its limits")].strip()
    p = argparse.ArgumentParser(
        prog="python -m course_pkg.grade",
        description="Grade learners' chapter notebooks or .py files with the chapters' own checks, in a sandbox.",
        epilog=rules + "\n\nSee the module docstring (python -m pydoc course_pkg.grade) for the safety model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                   help="a learner's .ipynb or .py file, or a folder of them (see below)")
    p.add_argument("--out", default="grades", help="folder for gradebook.csv and OUT/<learner>/results.json "
                                                   "(default: ./grades)")
    p.add_argument("--chapter", help="grade every file as this chapter, e.g. ch01 (default: from each file)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds allowed for each cell and for each exercise (default: 60)")
    p.add_argument("--memory", type=int, default=4096,
                   help="MB of address space the learner's code may add to Python + torch (default: 4096)")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded at the same time (default: 2)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (``python -m course_pkg.grade`` / ``course-grade``)."""
    args = _parser().parse_args(argv)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory)
    try:
        grade(args.submissions, args.out, chapter=args.chapter, limits=limits, jobs=args.jobs)
    except (SubmissionError, ValueError) as exc:
        print(f"course-grade: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
