"""Batch grader: score a class's chapter notebooks or .py files with the chapters' own checks.

Usage::

    python -m course_pkg.grade SUBMISSION... [--out DIR] [--chapter chNN] [--timeout S]
                                             [--memory MB] [--jobs N] [--unsafe-no-isolation]
    python -m course_pkg.grade --gradescope-autograder CHAPTER -o autograder.zip

(also installed as ``course-grade``). For every learner it writes ``OUT/<learner>/results.json``
in Gradescope's autograder format and ``OUT/<learner>/output.txt`` (what their code printed), then
``OUT/gradebook.csv`` for the class (learner, one column per exercise, total, max_score, status,
notes), and prints a summary table. The gradebook and the ``OUT/<learner>/`` folders are those of
this run's learners only: reports an earlier run left in OUT for learners who have no submission
now are moved into ``OUT/stale/`` (one line says how many). OUT may lie inside a submissions
folder: it is never graded as a learner (one line says so).

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
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .batch import grade
from .discovery import SubmissionError
from .gradescope import run_autograder, write_bundle
from .isolation import MODES, IsolationUnavailable
from .limits import Limits

__all__ = ["main"]


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
            path = write_bundle(args.gradescope_autograder, args.out or "autograder.zip",
                                timeout=args.timeout, memory_mb=args.memory)
            print(f"wrote the Gradescope autograder for {args.gradescope_autograder}: {path}")
            return 0
        if args.gradescope_run:
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
