"""Grading one learner's file: run it in a sandboxed child, again for what is left when the child
dies, and decide every exercise.

Learner code never runs in this process. Each run of the child (:mod:`.child`) reports raw outputs
as plain data; they are judged here (:mod:`.judge`) against the reference outputs of the chapter's
plan (:mod:`.plan`). A child that dies (crash, ``os._exit``, the memory limit, a timeout) is
started again for the exercises that are left, skipping the cell or exercise that killed it, so one
misbehaving answer costs only its own marks.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from .child import Clock, death_reason, prepare_grader_dir, read_tail, run_child
from .isolation import NOBODY
from .judge import describe_violations, verdict
from .limits import Limits
from .plan import ChapterPlan
from .results import STATUS_TEXT, ExerciseResult, SubmissionResult
from .submissions import Submission
from .text import clean, said

MAX_LOAD_NOTES = 20  # notes about failing cells or statements, per file


def grade_submission(sub: Submission, plan: ChapterPlan, limits: Limits, workroot: Path,
                     deny_read: Sequence[str], mode: str = "bwrap") -> SubmissionResult:
    """Grade one file (already loaded by :func:`~course_pkg.grading.submissions.load`) in isolation
    ``mode`` (see :mod:`~course_pkg.grading.isolation`)."""
    started = time.monotonic()
    result = SubmissionResult(sub.learner, sub.path, plan.chapter, notes=list(sub.notes))
    workdir = Path(tempfile.mkdtemp(prefix="sub-", dir=workroot))
    scratch = workdir / "scratch"
    scratch.mkdir()
    copy_dir = workdir / "submission"
    copy_dir.mkdir()
    submission = copy_dir / ("notebook.ipynb" if sub.kind == "notebook" else "submission.py")
    if sub.units:  # the learner's code units, as the sandbox runs them (the original is never in view)
        submission.write_text("\n\n".join(u.source for u in sub.units), encoding="utf-8")
    else:
        submission.write_text("", encoding="utf-8")
    prepare_grader_dir(workdir)
    if mode == "uid":
        os.chown(scratch, NOBODY, NOBODY)
        for d in (workroot, workdir, copy_dir):
            d.chmod(0o711)
        submission.chmod(0o644)
    names = plan.names

    outcomes: dict[str, dict[int, dict]] = {n: {} for n in names}
    ex_violations: dict[str, list[dict]] = {n: [] for n in names}
    final: dict[str, tuple[str, str]] = {}  # name -> (status, reason) decided without judging outputs
    unit_info: dict[int, dict] = {}
    for n, why in plan.unusable.items():
        final[n] = ("error", why)
    skip_units: set[int] = set()
    todo = [n for n in names if n not in final]
    # the whole file's time: the exercises graded, one --timeout each, and one more for loading its code
    budget = limits.submission_timeout or limits.timeout * (len(todo) + 1)
    clock = Clock(budget, extra=2 * limits.startup_timeout)
    attempts = 0
    while todo and attempts < len(sub.units) + len(names) + 2:
        attempts += 1
        if clock.used_up():
            why = f"the submission used up its time budget ({budget:g} s in all)"
            for n in todo:
                final.setdefault(n, ("timeout", why))
            break
        job = {
            "scratch": str(scratch), "memory_mb": limits.memory_mb,
            "fsize_mb": limits.output_mb, "deny_read": [] if mode == "bwrap" else [str(p) for p in deny_read],
            "landlock": limits.landlock, "audit_hook": limits.audit_hook, "source_kind": sub.kind,
            "filename": sub.path.name[-200:], "units": [u.__dict__ for u in sub.units],
            "skip_units": sorted(skip_units),
            "exercises": [{"id": ex.id, "name": ex.name, "kind": ex.kind, "cases": plan.cases[ex.name],
                           "shortcuts": [[list(sc.names), sc.note, list(sc.modules or ())] for sc in ex.shortcuts]}
                          for ex in plan.exercises if ex.name in todo],
            "todo": todo,
        }
        run = run_child(job, workdir, limits, mode, submission, clock)
        progressed = False
        current_unit: Optional[int] = None
        for ev in run.events:
            kind = ev["ev"]
            violations = [v for v in ev.get("violations", []) if isinstance(v, dict)]
            if kind == "ready":
                result.sandbox = {k: ev.get(k) for k in ("landlock", "audit_hook", "memory_limit")}
                result.sandbox["isolation"] = mode
                result.sandbox["cgroup"] = run.cgroup
            elif kind == "unit":
                current_unit = ev.get("i")
            elif kind == "unit_end" and isinstance(ev.get("i"), int) and 0 <= ev["i"] < len(sub.units):
                error = ev.get("error")
                unit_info.setdefault(ev["i"], {"error": said(error) if error else None,
                                               "violations": violations})
                current_unit = None
            elif kind in ("case", "exercise_end") and ev.get("name") in outcomes:
                name = ev["name"]
                if kind == "case" and isinstance(ev.get("i"), int) and isinstance(ev.get("outcome"), dict):
                    outcomes[name].setdefault(ev["i"], ev["outcome"])
                    if violations and "error" in ev["outcome"]:  # refused, and the case then raised
                        ex_violations[name].extend(violations)
                elif kind == "exercise_end" and name not in final:
                    progressed = True
                    if ev.get("missing"):
                        final[name] = ("missing", f"no function or class named {name} was found")
                    elif ev.get("foreign"):
                        final[name] = ("forbidden", f"the answer is not the learner's own code: "
                                                    f"{said(ev['foreign'])[:300]}")
                    else:
                        final[name] = ("judge", "")
            elif violations and current_unit is not None:
                unit_info.setdefault(current_unit, {"error": None, "violations": []})["violations"].extend(violations)
        if run.ended != "finished":
            why = death_reason(run, limits, read_tail(workdir / "stderr.txt", 4000), budget)
            phase = run.phase
            if run.ended == "budget":
                for n in names:
                    final.setdefault(n, ("timeout", why))
                break
            if phase == ("startup",):
                result.error = f"the sandbox could not start: {why}"
                tail = read_tail(workdir / "stderr.txt", 1500).strip()
                if tail:
                    result.error += f"\n{clean(tail, 1500, keep=chr(10))}"
                break
            if phase[0] == "unit" and isinstance(phase[1], int):
                skip_units.add(phase[1])
                unit_info.setdefault(phase[1], {"error": None, "violations": []})["error"] = why
                progressed = True
            elif phase[0] == "exercise" and phase[1] in outcomes and phase[1] not in final:
                status = "timeout" if run.ended == "timeout" else "crashed"
                final[phase[1]] = (status, why)
                progressed = True
            if not progressed:  # it died between steps twice in a row: give up on what is left
                for n in todo:
                    final.setdefault(n, ("crashed", why))
        todo = [n for n in names if n not in final]

    # -- decide each exercise ------------------------------------------------------------------------------
    # A call the audit hook refused costs nothing by itself: the kernel's isolation is the boundary, and
    # the refused call gave the code nothing (matplotlib carries on without fc-list, torchvision without
    # its C library). It costs the exercise when a case of it raised after a refusal in that case: the
    # verdict is then "not allowed", naming the refusal. A cell that failed names its error.
    load_errors = [f"{sub.units[i].label} failed: {info['error']}"
                   for i, info in sorted(unit_info.items()) if info.get("error")]
    if len(load_errors) > MAX_LOAD_NOTES:  # one note per failing statement would flood the gradebook
        more = len(load_errors) - MAX_LOAD_NOTES
        load_errors = load_errors[:MAX_LOAD_NOTES] + [f"and {more} more cells or statements failed"]
    result.notes.extend(load_errors)
    for ex in plan.exercises:
        name = ex.name
        status, reason = final.get(name, ("error", "the grader lost track of this exercise"))
        refused = ex_violations[name]
        if status == "judge":
            check = verdict(ex, outcomes[name])
            passed = sum(c.passed for c in check.cases)
            score = round(check.score, 4) if check.status != "not_attempted" else 0.0
            reason = {"passed": "", "not_attempted": "not attempted"}.get(
                check.status, f"{passed} of {len(check.cases)} cases pass")
            if not (refused and check.status == "failed"):
                result.exercises.append(ExerciseResult(ex.id, ex.title, check.status, score, 1.0, reason,
                                                       check.summary()))
                continue
            status, reason = "forbidden", f"{describe_violations(refused)} ({reason})"
            extra = "\n" + check.summary()
        else:
            extra = ""
        if status == "missing" and load_errors:
            reason += " (" + "; ".join(load_errors)[:300] + ")"
        feedback = f"[x] {ex.id}: {STATUS_TEXT.get(status, status)}: {reason}"
        if status == "forbidden":
            feedback += ("\nGraded code may not use the course's own code, start programs, send signals, use "
                         "ctypes or write files outside its own folder; this exercise gets no marks.")
        result.exercises.append(ExerciseResult(ex.id, ex.title, status, 0.0, 1.0, reason, feedback + extra))
    output = read_tail(workdir / "stdout.txt", 32_000) + read_tail(workdir / "stderr.txt", 16_000)
    result.output = clean(output, 200_000, keep="\n\t")
    result.seconds = time.monotonic() - started
    result.code_seconds = clock.spent
    return result

