"""Batch grader: score a class's chapter notebooks or .py files with the chapters' own checks.

Usage::

    python -m course_pkg.grade SUBMISSION... [--out DIR] [--chapter chNN] [--timeout S]
                                             [--memory MB] [--jobs N] [--unsafe-no-isolation]
    python -m course_pkg.grade --gradescope-autograder CHAPTER -o autograder.zip

(also installed as ``course-grade``). For every learner it writes ``OUT/<learner>/results.json``
in Gradescope's autograder format and ``OUT/<learner>/output.txt`` (what their code printed), then
``OUT/gradebook.csv`` for the class (learner, one column per exercise, total, max_score, status,
notes), and prints a summary table.

What is graded
--------------
* A SUBMISSION is a chapter notebook (``.ipynb``), a ``.py`` file of solutions, or a folder of
  them. In a folder, each file directly inside is one learner (id = file name without extension)
  and each sub-folder is one learner (id = folder name) whose files are all graded, one chapter per
  file (a second file for the same chapter is skipped with a note). Ids that collide get ``-2``,
  ``-3``...; links are never followed.
* The chapter: ``--chapter chNN`` if given (it wins); else a notebook's metadata
  ``{"course": {"chapter": "chNN"}}`` or a ``.py`` file's line ``CHAPTER = "chNN"``; else the file
  name, ``NN_anything`` or ``chNN_anything`` (``01_attention.ipynb`` is ``ch01``; Colab's
  ``Copy of 01_attention.ipynb`` too); else the contents (``from course_pkg.exercises import
  chNN``, Colab's export header, or the exercise names the file defines).
* Colab's File > Download > .py export is graded as it is: its ``!pip``/``%magic`` lines are
  skipped, and ``import course_pkg`` / ``ex.name.check(fn)`` run against a harmless stand-in.
* In a notebook only the code cells tagged ``exercise`` run, in order (if no cell is tagged, the
  cells that define an exercise's name at top level, and the earlier cells that define what those
  use, such as a helper function or an import; a note says so). A ``.py`` file runs top to
  bottom, one top-level statement at a time (its ``__name__`` is ``"submission"``, so a
  ``if __name__ == "__main__":`` block does not run). Either way ``math``, ``torch``, ``nn`` and
  ``F`` are already imported, and a cell or statement that raises is reported and skipped.
* Each exercise's answer is the function or class named like the part of its id after the dot
  (``ch01.softmax_weights`` -> ``softmax_weights``). It runs on the same cases as the chapter's
  ``check``; its score is the fraction of cases passed (0 to 1 per exercise).
* Files are read as Python reads them (a ``# -*- coding: ... -*-`` line, a byte-order mark, form
  feeds); a notebook's saved outputs never count against its code. What is read is bounded before
  it is parsed: a notebook of at most 100 MB and 1,000,000 JSON values, and at most 2 MB and
  300,000 words and symbols of code per file.

Safety and its limits (the threat model)
----------------------------------------
Learners' code is untrusted. Each submission runs in its own child process, isolated by the
kernel with bubblewrap (``--isolation auto``, the default; see :mod:`course_pkg.grading.isolation`):
new user, mount, pid, network, IPC and UTS namespaces, uid 65534, no capabilities. Its file system
shows only ``/usr``, the Python installation (every copy of ``course_pkg`` in it masked), the
grader's child script with the exercise framework (no solution), the learner's own copied code
and a size-capped tmpfs scratch folder; the course's solutions, the checkout, classmates' files,
other learners' jobs, the output folder and the instructor's files are not there at all. It has no
network (not even DNS), and its whole process tree dies with it. Inside, Landlock (Linux 5.13+)
again refuses writes outside scratch, program starts, TCP and signals; the address space, file
sizes and core dumps are limited; an audit hook turns refused actions into friendly messages.
Where bubblewrap cannot run, the grader refuses to grade unless ``--unsafe-no-isolation`` is given
(then only Landlock and the audit hook stand, which a determined attacker can defeat).

The audit hook is no boundary (PEP 578 says so), so a call it refuses costs nothing by itself:
matplotlib carries on without ``fc-list``, torchvision without its C library. An exercise gets
"not allowed" (0) only when one of its cases raised after a refusal in that case; a cell that
failed is named in the notes. The same attempt gets the same verdict wherever the course and the
submissions lie: the sandbox's writable scratch folder is a path no host folder can name.

Resources: wherever the grader can create control groups (as root, or in a delegated cgroup v2
subtree; cgroup v1 is used where v2 has no controllers), each sandbox gets its own: memory
(Python and torch at start-up plus ``--memory``, shared memory, ``memfd`` and tmpfs files
included, no swap), 64 tasks (threads count) and one CPU; every process left in it is killed
after each run. Where it cannot, the grader says so in one line at the start, and then only the
time limits and the per-process address-space limit stop a fork bomb or memory held outside the
process.

Scores are decided in the grader's own process, from the outputs the child sends as plain data
(JSON; tensors as raw bytes with dtype and shape; nothing is unpickled; each output is capped by
its logical size), against reference outputs computed here. The records are accepted only in the
order the child sends them; the grader's own clock stops each cell and exercise after
``--timeout`` s and a whole file after ``--submission-timeout`` s (by default ``--timeout`` times
the chapter's exercises plus one, counting the time learner code runs, start-ups excluded, so
sleeping just under ``--timeout`` in every statement runs out of time). Records are counted before they are
parsed (at most 200,000 values each). So printing "passed", patching
torch or the checks, or writing to the result channel can change only what the learner's own
answers appear to output. ``import course_pkg`` and ``ex.name.check(fn)`` calls run against a
harmless stand-in inside the sandbox.

What a misbehaving answer gets: an exercise whose code hangs, crashes the process, exits, runs out
of memory, or tries something refused above gets 0 for that exercise, with the reason in the
summary, the gradebook and ``results.json``; the other exercises of the same file still run, and
so does the rest of the class: every step for a file or a learner records its errors, and the
gradebook is always written. Copying the solution's text (which ``.solution()`` shows by design)
cannot be told from writing it. Every report line, CSV cell and ``results.json`` text has its
control characters escaped (an ANSI sequence or a newline in a file name or an exception cannot
drive the terminal or forge a line) and is capped (a message at 2,000 characters, an exercise's
feedback at 16,000, a gradebook cell under the 32,767 spreadsheets accept, at most 20 notes about
failing cells per file). Kernel bugs are outside what bubblewrap handles: for a hostile class,
also run the grader in a container or VM (Gradescope does: ``--gradescope-autograder``).

Exit status: 0 when the class was graded (whatever the scores), 2 for a bad command line or when
no isolation is available.
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

from ..exercises import all_exercises
from . import cgroup
from .isolation import MODES, IsolationUnavailable, choose, python_roots
from .report import (
    LearnerResult,
    Scrubber,
    exercise_columns,
    summary_table,
    write_gradebook,
    write_learner,
)
from .runner import PACKAGE_DIR, ChapterPlan, Limits, SubmissionResult, grade_submission
from .submissions import Submission, SubmissionError, discover, load
from .text import escape_controls

__all__ = ["Limits", "LearnerResult", "grade", "grade_learners", "main"]


def _known_chapters() -> dict[str, list[str]]:
    known: dict[str, list[str]] = {}
    for ex in all_exercises():
        known.setdefault(ex.chapter, []).append(ex.name)
    return known


def _deny_read(subs: Sequence[Submission], out: Path, workroot: Path) -> list[str]:
    """Folders the audit hook refuses to read from (a friendly message; the boundary is the kernel's)."""
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


def _scrubber(paths: Sequence[Path], out: Path, workroot: Path) -> Scrubber:
    table = {str(PACKAGE_DIR.parent): "<course>", str(out.resolve()): "<out>", str(workroot): "<work>",
             str(workroot.resolve()): "<work>", str(Path.home()): "<home>"}
    for p in paths:
        p = Path(p).resolve()
        table[str(p.parent if p.is_file() else p)] = "<submissions>"
    for r in python_roots():
        if str(r) not in ("/", "/usr"):
            table[str(r)] = "<python>"
    return Scrubber(table)


def grade(paths: Sequence[str | Path], out: str | Path, *, chapter: Optional[str] = None,
          limits: Optional[Limits] = None, jobs: int = 2,
          echo: Callable[[str], None] = print) -> list[LearnerResult]:
    """Grade every submission under ``paths``, write the reports into ``out`` and return the results.

    Raises :class:`~course_pkg.grading.submissions.SubmissionError` for paths that name nothing
    gradable, :class:`~course_pkg.grading.isolation.IsolationUnavailable` when the isolation asked
    for (``limits.isolation``) cannot be had, and ``ValueError`` for bad options."""
    return grade_learners(discover(paths), out, chapter=chapter, limits=limits, jobs=jobs, echo=echo,
                          scrub_paths=[Path(p) for p in paths])


def _console(echo: Callable[[str], None]) -> Callable[[str], None]:
    """``echo`` for lines that may hold learner text: each line's control characters are escaped, so
    no ANSI sequence reaches the terminal and no newline inside a name forges a line."""
    def say(line: str) -> None:
        echo("\n".join(escape_controls(part, keep="\t") for part in str(line).split("\n")))
    return say


def _check_options(limits: Limits, jobs: int, chapter: Optional[str], known: dict) -> None:
    if jobs < 1:
        raise ValueError(f"jobs={jobs} must be at least 1")
    if limits.timeout <= 0:
        raise ValueError(f"timeout={limits.timeout} must be a positive number of seconds")
    if limits.submission_timeout is not None and limits.submission_timeout <= 0:
        raise ValueError(f"submission_timeout={limits.submission_timeout} must be a positive number of seconds "
                         "(or None: --timeout x (exercises + 1))")
    if limits.pids < 8:
        raise ValueError(f"pids={limits.pids} is too small for Python and torch; give at least 8 (default 64)")
    if not limits.cpus > 0:
        raise ValueError(f"cpus={limits.cpus} must be a positive number of CPUs (default 1)")
    if limits.memory_mb < 64:
        raise ValueError(f"memory={limits.memory_mb} MB is too small; give at least 64 (default 4096)")
    if limits.scratch_mb < 1:
        raise ValueError(f"scratch_mb={limits.scratch_mb} must be at least 1")
    if chapter is not None and chapter not in known:
        raise ValueError(f"chapter={chapter!r} has no exercises; chapters with exercises: {', '.join(sorted(known))}")


def grade_learners(learner_files: Sequence[tuple[str, Sequence[Path]]], out: str | Path, *,
                   chapter: Optional[str] = None, limits: Optional[Limits] = None, jobs: int = 2,
                   echo: Callable[[str], None] = print,
                   scrub_paths: Sequence[Path] = ()) -> list[LearnerResult]:
    """Grade ``[(learner id, [files])]`` (ids unique) and write the reports into ``out``."""
    limits = limits or Limits()
    known = _known_chapters()
    _check_options(limits, jobs, chapter, known)
    mode = choose(limits.isolation)
    if mode == "uid":
        jobs = 1  # the leftover-process sweep kills every process of uid 65534
    if mode == "none":
        echo("WARNING: learners' code runs WITHOUT isolation (--unsafe-no-isolation): only for trusted code.")
    echo = _console(echo)

    if limits.cgroups:
        hier, why = cgroup.available()
        echo(f"resource limits per sandbox: {hier.describe()}: memory {limits.memory_mb} MB, {limits.pids} tasks, "
             f"{limits.cpus:g} CPU" if hier else
             f"NO per-sandbox memory/task/CPU limits (control groups unavailable: {why}); only the time "
             "limits and the per-process address-space limit apply")
    out = Path(out)
    started = time.monotonic()
    learners: list[LearnerResult] = []
    subs: list[tuple[LearnerResult, Submission]] = []
    for learner, files in learner_files:
        lr = LearnerResult(learner)
        learners.append(lr)
        if not files:
            lr.error = "nothing to grade: the submission holds no .ipynb or .py file (links are not followed)"
            continue
        seen: dict[str, Path] = {}
        for f in files:
            sub = load(learner, Path(f), chapter, known)
            if sub.chapter and sub.chapter in seen:
                lr.notes.append(f"{sub.path.name} skipped: {seen[sub.chapter].name} was already graded "
                                f"for {sub.chapter}")
                continue
            if sub.chapter:
                seen[sub.chapter] = sub.path
            subs.append((lr, sub))
    chapters = sorted({s.chapter for _, s in subs if s.chapter})
    plans = {ch: ChapterPlan.build(ch) for ch in chapters}
    out.mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="course-grade-"))
    deny = _deny_read([s for _, s in subs], out, workroot)
    scrub = _scrubber(list(scrub_paths) + [s.path for _, s in subs], out, workroot)
    by_sub: dict[int, SubmissionResult] = {}

    def work(i: int, sub: Submission) -> SubmissionResult:
        t0 = time.monotonic()
        try:
            if sub.problem or not sub.chapter:
                return SubmissionResult(sub.learner, sub.path, sub.chapter, notes=list(sub.notes),
                                        error=sub.problem or "no chapter")
            return grade_submission(sub, plans[sub.chapter], limits, workroot, deny, mode)
        except (Exception, RecursionError, MemoryError) as exc:  # noqa: BLE001 - the batch always finishes
            return SubmissionResult(sub.learner, sub.path, sub.chapter, notes=list(sub.notes),
                                    error=f"the grader failed on this file ({type(exc).__name__}: {exc})",
                                    seconds=time.monotonic() - t0)

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(work, i, s): i for i, (_, s) in enumerate(subs)}
            for fut in concurrent.futures.as_completed(futures):
                i = futures[fut]
                by_sub[i] = res = fut.result()
                total = f"{res.score:g}/{res.max_score:g}" if not res.error else "error"
                echo(f"graded {res.learner} ({escape_controls(res.path.name)}): {total} in {res.seconds:.1f} s")
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
        cgroup.release()
    for i, (lr, _) in enumerate(subs):
        lr.submissions.append(by_sub[i])
    columns = exercise_columns(chapters)
    for lr in learners:
        lr.columns = list(columns)
    try:
        write_gradebook(out / "gradebook.csv", learners, columns)
    except OSError as exc:  # e.g. a folder in the way: write it next to it, never lose it
        fallback = out / f"gradebook-{os.getpid()}.csv"
        echo(f"could not write {out / 'gradebook.csv'} ({exc}); writing {fallback}")
        write_gradebook(fallback, learners, columns)
    for lr in learners:
        try:
            write_learner(out, lr, scrub)
        except (OSError, ValueError) as exc:
            echo(f"could not write the reports of {lr.learner}: {exc}")
    echo("")
    echo(summary_table(learners, columns))
    echo("")
    echo(f"{len(learners)} learner(s), {len(subs)} file(s) graded in {time.monotonic() - started:.1f} s "
         f"(isolation: {mode}); gradebook: {out / 'gradebook.csv'}")
    return learners


def _parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    rules = doc[doc.index("What is graded"):doc.index("Safety and its limits")].strip()
    p = argparse.ArgumentParser(
        prog="python -m course_pkg.grade",
        description="Grade learners' chapter notebooks or .py files with the chapters' own checks, in a sandbox.",
        epilog=rules + "\n\nSee the module docstring (python -m pydoc course_pkg.grading.cli) for the safety model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("submissions", nargs="*", metavar="SUBMISSION",
                   help="a learner's .ipynb or .py file, or a folder of them (see below)")
    p.add_argument("--out", "-o", default=None,
                   help="folder for gradebook.csv and OUT/<learner>/results.json (default: ./grades); "
                        "with --gradescope-autograder, the .zip to write (default: autograder.zip)")
    p.add_argument("--chapter", help="grade every file as this chapter, e.g. ch01 (default: from each file)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds allowed for each cell and for each exercise (default: 60)")
    p.add_argument("--submission-timeout", type=float, default=None,
                   help="seconds of running learner code allowed for one file in all, restarts included, "
                        "start-ups not (default: --timeout x (the chapter's exercises + 1))")
    p.add_argument("--memory", type=int, default=4096,
                   help="MB of address space the learner's code may add to Python + torch (default: 4096)")
    p.add_argument("--jobs", type=int, default=2, help="submissions graded at the same time (default: 2)")
    p.add_argument("--isolation", choices=[m for m in MODES if m != "none"], default="auto",
                   help="auto/bwrap: bubblewrap sandbox (refuses to run without it); uid: run as uid 65534 "
                        "(root in a one-submission container only)")
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="run learners' code without kernel isolation (only for code you trust)")
    p.add_argument("--gradescope-autograder", metavar="CHAPTER",
                   help="write a Gradescope autograder bundle for CHAPTER (to -o, default autograder.zip)")
    p.add_argument("--gradescope-run", metavar="CHAPTER", help=argparse.SUPPRESS)
    p.add_argument("--autograder-root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"),
                   help=argparse.SUPPRESS)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (``python -m course_pkg.grade`` / ``course-grade``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    isolation = "none" if args.unsafe_no_isolation else args.isolation
    limits = Limits(timeout=args.timeout, memory_mb=args.memory, submission_timeout=args.submission_timeout,
                    isolation=isolation)
    try:
        if args.gradescope_autograder:
            from .gradescope import write_bundle

            path = write_bundle(args.gradescope_autograder, args.out or "autograder.zip",
                                timeout=args.timeout, memory_mb=args.memory)
            print(f"wrote the Gradescope autograder for {args.gradescope_autograder}: {path}")
            return 0
        if args.gradescope_run:
            from .gradescope import run_autograder

            run_autograder(args.gradescope_run, Path(args.autograder_root), limits)
            return 0
        if not args.submissions:
            parser.error("give at least one SUBMISSION (or --gradescope-autograder CHAPTER)")
        grade(args.submissions, args.out or "grades", chapter=args.chapter, limits=limits, jobs=args.jobs)
    except IsolationUnavailable as exc:
        print(f"course-grade: {exc}", file=sys.stderr)
        return 2
    except (SubmissionError, ValueError) as exc:
        print(f"course-grade: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
