"""One batch run of the grader: check the options, read every learner's files, grade them in
sandboxes (``--jobs`` at a time) and write the reports.

The command line (:mod:`.cli`) and the Gradescope autograder (:mod:`.gradescope`) both run the
grader through :func:`grade` or :func:`grade_learners`; the rules and the safety model are in
:mod:`.cli`'s docstring.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..exercises import all_exercises
from .cgroup import available, release
from .child import PACKAGE_DIR
from .discovery import discover
from .isolation import choose, python_roots
from .limits import Limits
from .plan import ChapterPlan
from .report import (
    STALE_FOLDER,
    LearnerResult,
    Scrubber,
    exercise_columns,
    set_aside_stale,
    summary_table,
    write_gradebook,
    write_learner,
)
from .results import SubmissionResult
from .runner import grade_submission
from .submissions import Submission, load
from .text import escape_controls

__all__ = ["grade", "grade_learners", "known_chapters"]


def known_chapters() -> dict[str, list[str]]:
    """Each chapter with exercises -> its exercise names."""
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

    Raises :class:`~course_pkg.grading.discovery.SubmissionError` for paths that name nothing
    gradable, :class:`~course_pkg.grading.isolation.IsolationUnavailable` when the isolation asked
    for (``limits.isolation``) cannot be had, and ``ValueError`` for bad options."""
    learner_files = discover(paths, out=out, echo=_console(echo))
    return grade_learners(learner_files, out, chapter=chapter, limits=limits, jobs=jobs, echo=echo,
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
    """Grade ``[(learner id, [files])]`` (ids unique) and write the reports into ``out``; an earlier
    run's reports there of learners not in ``learner_files`` are moved into ``out/stale/`` first."""
    limits = limits or Limits()
    known = known_chapters()
    _check_options(limits, jobs, chapter, known)
    mode = choose(limits.isolation)
    if mode == "uid":
        jobs = 1  # the leftover-process sweep kills every process of uid 65534
    if mode == "none":
        echo("WARNING: learners' code runs WITHOUT isolation (--unsafe-no-isolation): only for trusted code.")
    echo = _console(echo)

    if limits.cgroups:
        hier, why = available()
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
    moved, stuck = set_aside_stale(out, {lr.learner for lr in learners})
    if moved:
        echo(f"moved an earlier run's reports of {len(moved)} learner(s) with no submission now to "
             f"{out / STALE_FOLDER} (they are not in this gradebook)")
    if stuck:
        echo(f"could not move an earlier run's reports of {len(stuck)} learner(s) with no submission now "
             f"(they are not in this gradebook): {'; '.join(stuck)}")
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
        release()
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
