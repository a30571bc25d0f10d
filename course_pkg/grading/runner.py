"""The grader's side: start an isolated child per submission, read its outputs, judge them.

Learner code never runs in this process. The child (``sandbox.py``, in the bubblewrap sandbox of
:mod:`.isolation`) reports raw outputs as plain data on a pipe; this module accepts the records
only in the order the child sends them (:class:`_Protocol`), caps each output by its logical size
(:func:`logical_bytes`), decodes it without executing anything (``decode_value``) and decides
every case with ``Exercise.judge`` against the reference outputs computed here. The grader's own
clock stops a cell or an exercise after ``timeout`` seconds and a whole file after
``submission_timeout``; the child's whole process tree is killed. A child that dies (crash,
``os._exit``, the memory limit) is started again for the exercises that are left, skipping the
cell or exercise that killed it, so one misbehaving answer costs only its own marks.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from ..exercises import Exercise, all_exercises
from ..exercises.core import CaseResult, CheckResult, Raised, ValueCodecError, decode_value, encode_value
from . import cgroup
from .isolation import NOBODY, bwrap_command, drop_to_nobody, kill_nobody_processes
from .submissions import Submission, count_json_values
from .text import clean

SANDBOX = Path(__file__).with_name("sandbox.py")
CORE = Path(__file__).resolve().parents[1] / "exercises" / "core.py"
PACKAGE_DIR = Path(__file__).resolve().parents[1]

# Statuses of one exercise, and whether the answer's outputs were judged.
JUDGED = ("passed", "failed", "not_attempted")
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

_JUDGE_LOCK = threading.Lock()  # judging re-seeds torch's global generator (Case.args)
MAX_MESSAGE_CHARS = 2_000  # one message from the sandbox (an exception's text, a refusal)
MAX_REASON_CHARS = 1_000  # an exercise's one-line reason
MAX_FEEDBACK_CHARS = 16_000  # an exercise's feedback (all its cases)
MAX_LOAD_NOTES = 20  # notes about failing cells or statements, per file
MAX_RECORD_VALUES = 200_000  # JSON values in one record from the sandbox, counted before parsing it


def _said(text: object) -> str:
    """A message the sandbox sent (learner-controlled): bounded, every control character but the newline
    escaped, as ``check`` shows it (each report then escapes newlines where one line is needed)."""
    return clean(text, MAX_MESSAGE_CHARS, keep="\n")


@dataclass
class Limits:
    """What one submission may use. ``timeout``: seconds for each cell and each exercise;
    ``memory_mb``: memory the learner's code may add to Python + torch (address space, and where
    control groups can be made, all memory of the sandbox: shared memory and its tmpfs included);
    ``output_mb``: the largest file it may write (its captured output included);
    ``submission_timeout``: seconds of running learner code for a whole file (restarts included,
    start-ups not); None derives it from the exercises graded, ``timeout * (exercises + 1)``;
    ``scratch_mb``: size of the sandbox's scratch folder; ``pids``/``cpus``: tasks (threads count)
    and CPUs per sandbox, where control groups can be made (see :mod:`.cgroup`);
    ``isolation``: ``"auto"`` (bubblewrap, or refuse), ``"bwrap"``, ``"uid"`` or ``"none"``."""

    timeout: float = 60.0
    memory_mb: int = 4096
    output_mb: int = 64
    startup_timeout: float = 180.0
    submission_timeout: Optional[float] = None  # all runs of one file together, by the grader's clock
    scratch_mb: int = 256  # the sandbox's scratch tmpfs
    pids: int = 64
    cpus: float = 1.0
    cgroups: bool = True  # False only in tests that need the grader without control groups
    isolation: str = "auto"  # see course_pkg.grading.isolation: auto, bwrap, uid, none
    landlock: bool = True
    audit_hook: bool = True  # turned off only by tests that prove the other layers on their own


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
    seconds: float = 0.0
    output: str = ""  # the learner's captured stdout/stderr (truncated)
    sandbox: dict = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return any(e.status in ("forbidden", "timeout", "crashed") for e in self.exercises)


@dataclass
class ChapterPlan:
    """A chapter's exercises, their cases as plain data and the reference outputs (computed once)."""

    chapter: str
    exercises: list[Exercise]
    cases: dict[str, list[dict]]  # name -> [{"name", "seed", "args"}]
    unusable: dict[str, str]  # name -> why its cases cannot be sent to a sandbox

    @property
    def names(self) -> list[str]:
        return [ex.name for ex in self.exercises]

    @classmethod
    def build(cls, chapter: str) -> ChapterPlan:
        exercises = chapter_exercises(chapter)
        cases: dict[str, list[dict]] = {}
        unusable: dict[str, str] = {}
        for ex in exercises:
            try:
                cases[ex.name] = [{"name": c.name, "seed": c.seed, "args": _plain(encode_value(c.args()))}
                                  for c in ex.cases]
                for c in ex.cases:
                    ex.expected(c)  # fill the cache now, in one thread
            except Exception as exc:  # noqa: BLE001 - an exercise the grader cannot handle is reported
                unusable[ex.name] = f"the grader cannot send this exercise's cases ({type(exc).__name__}: {exc})"
        return cls(chapter, exercises, cases, unusable)


def chapter_exercises(chapter: str) -> list[Exercise]:
    """A chapter's exercises in the order its module defines them (the order of the chapter)."""
    exercises = all_exercises(chapter)
    try:
        module = importlib.import_module(f"..exercises.{chapter}", __package__)
        order = {id(v): i for i, v in enumerate(vars(module).values()) if isinstance(v, Exercise)}
    except ImportError:
        return exercises
    return sorted(exercises, key=lambda ex: order.get(id(ex), len(order)))


def _plain(data: Any) -> Any:
    """Fail early (ValueCodecError) on arguments that are not plain data: opaque values cannot be sent."""
    text = json.dumps(data)
    if '"t": "opaque"' in text:
        raise ValueCodecError("an argument is not a tensor, number, string, None, tuple, list or dict")
    return data


# ------------------------------------------------------------------------------------------------------
# Judging
# ------------------------------------------------------------------------------------------------------
def verdict(ex: Exercise, outcomes: dict[int, dict]) -> CheckResult:
    """Decide an exercise from its cases' raw outcomes exactly as ``Exercise.test`` does."""
    results: list[CaseResult] = []
    outputs: dict[str, Any] = {}  # what Exercise.explain needs to name a recorded mistake
    known_notes = [sc.note for sc in ex.shortcuts]
    notes: list[str] = []  # the shortcut notes the sandbox reported (only the exercise's own count)
    for i, case in enumerate(ex.cases):
        o = outcomes.get(i)
        if isinstance(o, dict) and isinstance(o.get("notes"), list):
            notes.extend(n for n in known_notes if n in o["notes"] and n not in notes)
        if o is None:
            results.append(CaseResult(case.name, False, "this case did not run"))
        elif o.get("not_attempted"):
            return CheckResult(ex.id, "not_attempted", [CaseResult(c.name, False, "not attempted") for c in ex.cases])
        elif "check_failure" in o:
            results.append(CaseResult(case.name, False, _said(o["check_failure"])))
        elif "error" in o:
            results.append(CaseResult(case.name, False, f"your code raised {_said(o['error'])}"
                                      + (f"\nThis case checks: {case.note}" if case.note else "")))
            outputs[case.name] = Raised(str(o['error']))
        elif "encode_error" in o:
            results.append(CaseResult(case.name, False, f"the output could not be sent to the grader "
                                                        f"({_said(o['encode_error'])})"))
        else:
            data = o.get("output")
            size = logical_bytes(data)
            if size is None or size > MAX_OUTPUT_BYTES:
                what = "is malformed" if size is None else f"holds {size} bytes once expanded"
                results.append(CaseResult(case.name, False, f"the output {what}; the grader reads at most "
                                                            f"{MAX_OUTPUT_BYTES // 2**20} MB per case"))
                continue
            try:
                got = decode_value(data)
            except (ValueCodecError, MemoryError, RecursionError) as exc:
                results.append(CaseResult(case.name, False, f"the output could not be read ({exc})"))
                continue
            with _JUDGE_LOCK:
                try:
                    r = ex.judge(case, got)
                    results.append(CaseResult(r.name, r.passed, clean(r.message, MAX_MESSAGE_CHARS, keep="\n"))
                                   if isinstance(r.message, str) else r)
                    outputs[case.name] = got
                except (MemoryError, RecursionError) as exc:
                    results.append(CaseResult(case.name, False, f"the output could not be compared "
                                                                f"({type(exc).__name__})"))
    with _JUDGE_LOCK:
        try:
            results = ex.explain(results, outputs)
        except (MemoryError, RecursionError):
            pass  # the advice is optional; the verdicts stand
    status = "passed" if all(r.passed for r in results) else "failed"
    return CheckResult(ex.id, status, results, notes=notes)


MAX_OUTPUT_BYTES = 64 * 2**20
_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "complex64": 8, "complex128": 16,
             "uint8": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "bool": 1}


def logical_bytes(data: Any, max_nodes: int = 1_000_000) -> Optional[int]:
    """The bytes an encoded output takes once decoded, counting every tensor by its *logical* size
    (``numel * itemsize``, so an ``expand``ed tensor of 4 stored bytes counts as what comparing it
    would allocate); None for data that is not an encoded value or is too large to walk."""
    total = 0
    stack = [(data, 0)]
    nodes = 0
    while stack:
        d, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes or depth > 70 or not isinstance(d, dict):
            return None
        tag, v = d.get("t"), d.get("v")
        if tag == "tensor":
            shape = d.get("shape")
            if not isinstance(shape, list) or len(shape) > 32 or not all(_int(n) and n >= 0 for n in shape):
                return None
            total += math.prod(shape) * _ITEMSIZE.get(str(d.get("dtype")), 16)
        elif tag in ("tuple", "list") and isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)
        elif tag == "dict" and isinstance(v, list):
            for pair in v:
                if not (isinstance(pair, list) and len(pair) == 2):
                    return None
                stack.extend((x, depth + 1) for x in pair)
        elif isinstance(v, str):
            total += len(v)
        if total > 2**62:
            return total
    return total


def _describe_violations(violations: Sequence[dict]) -> str:
    seen: list[str] = []
    for v in violations[:1000]:
        text = _said(v.get("detail", v))[:400]
        if text not in seen:
            seen.append(text)
    more = f" (and {len(seen) - 3} more)" if len(seen) > 3 else ""
    return "; ".join(seen[:3]) + more


# ------------------------------------------------------------------------------------------------------
# Running a child
# ------------------------------------------------------------------------------------------------------
@dataclass
class _Run:
    events: list[dict]
    ended: str  # "finished", "timeout", "budget", "exit", "corrupt", "too_much_output", "too_many_values"
    returncode: Optional[int]
    phase: tuple  # ("startup",), ("unit", i), ("loaded",), ("exercise", name), ("between",)
    how: str = ""  # the isolation mode it ran in
    oom_kills: int = 0  # processes the control group's memory limit killed
    memory_limit: int = 0  # the control group's memory limit once the sandbox was ready (bytes)
    cgroup: str = ""  # the control group's limits, in words, or why there were none


@dataclass
class _Clock:
    """The per-file budget: ``seconds`` of running learner code in all, summed over the runs from
    the moment each sandbox reported ready (a start-up has its own limit, so a loaded machine's
    slow restarts cost the learner nothing); and, against endless restarts, a wall-clock end
    ``seconds + extra`` after the first ready."""

    seconds: float
    extra: float = 0.0
    spent: float = 0.0
    resumed_at: Optional[float] = None
    hard_end: Optional[float] = None

    def resume(self) -> None:
        now = time.monotonic()
        self.resumed_at = now
        if self.hard_end is None:
            self.hard_end = now + self.seconds + self.extra

    def pause(self) -> None:
        if self.resumed_at is not None:
            self.spent += time.monotonic() - self.resumed_at
            self.resumed_at = None

    @property
    def end(self) -> Optional[float]:
        ends = [e for e in (self.hard_end, None if self.resumed_at is None else
                            self.resumed_at + self.seconds - self.spent) if e is not None]
        return min(ends) if ends else None

    def cap(self, t: float) -> float:
        end = self.end
        return t if end is None else min(t, end)

    def used_up(self) -> bool:
        return self.spent >= self.seconds or (self.hard_end is not None and time.monotonic() >= self.hard_end)


def _child_env(scratch: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": scratch,
        "XDG_CACHE_HOME": scratch + "/.cache",
        "MPLCONFIGDIR": scratch + "/.matplotlib",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "LANG": "C.UTF-8",
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH", "SYSTEMROOT"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    proc.wait()


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class _Protocol:
    """Accepts the child's records only in the order the child sends them by itself.

    start, ready, then for each unit to run (in order) ``unit i`` and ``unit_end i``, then
    ``loaded``, then for each exercise to run (in order) ``exercise name``, its cases ``0, 1, ...``
    (a ``not_attempted`` outcome ends them) and ``exercise_end name``, then ``finished``. A record out
    of this order (a forged or repeated one) is refused: the channel is then treated as corrupt."""

    def __init__(self, units: Sequence[int], exercises: Sequence[tuple[str, int]]) -> None:
        self.units = list(units)
        self.exercises = list(exercises)
        self.state = "startup"  # startup, started, between_units, in_unit, loaded, in_exercise, finished
        self.unit_i = 0  # index into self.units of the next unit
        self.ex_i = 0
        self.case_i = 0
        self.cases_done = False

    def accept(self, ev: dict) -> bool:
        kind = ev.get("ev")
        violations = ev.get("violations", [])
        if not isinstance(violations, list) or len(violations) > 1000:
            return False
        st = self.state
        if kind == "start":
            ok = st == "startup"
            self.state = "started" if ok else st
            return ok
        if kind == "ready":
            if st != "started":
                return False
            self.state = "between_units"
            return True
        if kind == "unit":
            if st != "between_units" or self.unit_i >= len(self.units) or ev.get("i") != self.units[self.unit_i]:
                return False
            self.state = "in_unit"
            return True
        if kind == "unit_end":
            if st != "in_unit" or ev.get("i") != self.units[self.unit_i]:
                return False
            self.unit_i += 1
            self.state = "between_units"
            return True
        if kind == "loaded":
            if st != "between_units" or self.unit_i != len(self.units):
                return False
            self.state = "loaded"
            return True
        if kind == "exercise":
            if st != "loaded" or self.ex_i >= len(self.exercises) or ev.get("name") != self.exercises[self.ex_i][0]:
                return False
            self.state, self.case_i, self.cases_done = "in_exercise", 0, False
            return True
        if kind == "case":
            name, n = self.exercises[self.ex_i] if self.ex_i < len(self.exercises) else ("", 0)
            outcome = ev.get("outcome")
            if (st != "in_exercise" or self.cases_done or ev.get("name") != name or ev.get("i") != self.case_i
                    or self.case_i >= n or not isinstance(outcome, dict)):
                return False
            self.case_i += 1
            self.cases_done = bool(outcome.get("not_attempted"))
            return True
        if kind == "exercise_end":
            if st != "in_exercise" or ev.get("name") != self.exercises[self.ex_i][0]:
                return False
            if ev.get("missing") or ev.get("foreign"):
                if self.case_i:
                    return False
            elif not self.cases_done and self.case_i != self.exercises[self.ex_i][1]:
                return False
            self.ex_i += 1
            self.state = "loaded"
            return True
        if kind == "finished":
            if st != "loaded" or self.ex_i != len(self.exercises):
                return False
            self.state = "finished"
            return True
        return False


def _prepare_grader_dir(workdir: Path) -> Path:
    """Copies of the child script and of the exercise framework (no solution), readable by the child."""
    gdir = workdir / "grader"
    gdir.mkdir(exist_ok=True)
    shutil.copyfile(SANDBOX, gdir / "sandbox.py")
    shutil.copyfile(CORE, gdir / "course_grade_core.py")
    for f in gdir.iterdir():
        f.chmod(0o644)
    gdir.chmod(0o755)
    return gdir


def _sandbox_group(limits: Limits) -> tuple[Optional[cgroup.SandboxGroup], str]:
    """A control group with the sandbox's limits, or (None, why there is none)."""
    if not limits.cgroups:
        return None, "none (turned off)"
    hier, why = cgroup.available()
    if hier is None:
        return None, f"none ({why})"
    try:
        # until the sandbox is ready, room for Python + torch; then what they use + the learner's budget
        group = cgroup.SandboxGroup(hier, (limits.memory_mb + 1024) * 2**20, limits.pids, limits.cpus)
    except OSError as exc:
        return None, f"none (creating the group failed: {exc.strerror})"
    return group, group.describe()


def _run_child(job: dict, workdir: Path, limits: Limits, mode: str, submission: Path, clock: _Clock,
               max_stream: int = 512 * 2**20, max_line: int = 128 * 2**20) -> _Run:
    """Run the child once for ``job`` in isolation ``mode``; read and check its records."""
    gdir = workdir / "grader"
    read_fd, write_fd = os.pipe()
    inside = mode == "bwrap"
    scratch = "/scratch" if inside else job["scratch"]
    job = dict(job, result_fd=write_fd, scratch=scratch,
               core_path="/grader/course_grade_core.py" if inside else str(gdir / "course_grade_core.py"))
    job_path = gdir / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    job_path.chmod(0o644)
    script = "/grader/sandbox.py" if inside else str(gdir / "sandbox.py")
    job_arg = "/grader/job.json" if inside else str(job_path)
    argv = [sys.executable, "-I", "-B", script, job_arg]
    preexec = None
    if mode == "bwrap":
        argv = bwrap_command(sys.executable, grader_dir=gdir, submission=submission, scratch_mb=limits.scratch_mb,
                             hidden=[PACKAGE_DIR]) + argv[1:]
    elif mode == "uid":
        preexec = drop_to_nobody
    group, group_text = _sandbox_group(limits)
    if group is not None:
        if mode == "uid":
            procs = group.procs_files

            def preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
                for f in procs:
                    fd = os.open(f, os.O_WRONLY)
                    os.write(fd, str(os.getpid()).encode())
                    os.close(fd)
                drop_to_nobody()
        else:
            argv = cgroup.join_command(group.procs_files) + argv
    units = [i for i in range(len(job["units"])) if i not in set(job["skip_units"])]
    exercises = [(e["name"], len(e["cases"])) for e in job["exercises"] if e["name"] in job["todo"]]
    protocol = _Protocol(units, exercises)
    with open(workdir / "stdout.txt", "ab") as out, open(workdir / "stderr.txt", "ab") as err:
        try:
            proc = subprocess.Popen(argv, cwd=job["scratch"] if not inside else "/", env=_child_env(scratch),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, pass_fds=(write_fd,),
                                    start_new_session=True, preexec_fn=preexec)  # noqa: PLW1509
        finally:
            os.close(write_fd)
    events: list[dict] = []
    phase: tuple = ("startup",)
    deadline = clock.cap(time.monotonic() + limits.startup_timeout)
    buf = bytearray()
    total = 0
    ended = "exit"
    memory_limit = 0

    def restart_clock() -> float:  # the grader's own clock: only accepted steps start a new period
        return clock.cap(time.monotonic() + limits.timeout)

    try:
        # Read until the child closes the pipe (it exits): a "finished" record proves nothing by itself,
        # since learner code can write to the pipe too.
        while ended == "exit":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                ended = "budget" if clock.end is not None and deadline >= clock.end else "timeout"
                break
            ready, _, _ = select.select([read_fd], [], [], min(remaining, 1.0))
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > max_stream:
                ended = "too_much_output"
                break
            buf += chunk
            if b"\n" not in chunk and len(buf) > max_line:
                ended = "too_much_output"
                break
            while ended == "exit" and b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                buf = bytearray(rest)
                if len(line) > 65536 and count_json_values(line) > MAX_RECORD_VALUES:
                    ended = "too_many_values"  # counted before parsing: json.loads would allocate them all
                    break
                try:
                    ev = json.loads(line)
                except (ValueError, RecursionError, MemoryError):
                    ev = None
                if not isinstance(ev, dict) or not protocol.accept(ev):
                    ended = "corrupt"
                    break
                events.append(ev)
                kind = ev["ev"]
                if kind == "ready":
                    clock.resume()
                    phase, deadline = ("between",), restart_clock()
                    if group is not None:  # the learner's budget on top of what Python + torch use now
                        memory_limit = group.memory_used() + limits.memory_mb * 2**20
                        try:
                            group.set_memory(memory_limit)
                        except OSError:
                            memory_limit = group.memory_bytes
                        group_text = group.describe()
                elif kind == "unit":
                    phase, deadline = ("unit", ev["i"]), restart_clock()
                elif kind == "loaded":
                    phase, deadline = ("loaded",), restart_clock()
                elif kind == "exercise":
                    phase, deadline = ("exercise", ev["name"]), restart_clock()
                elif kind in ("unit_end", "exercise_end"):
                    phase = ("between",)
        if ended == "exit":
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                ended = "timeout"
        if ended == "exit" and buf:
            ended = "corrupt"  # a last record without its newline
        if ended == "exit" and proc.returncode == 0 and protocol.state == "finished":
            ended = "finished"
    finally:
        clock.pause()
        os.close(read_fd)
        if proc.poll() is None:
            _kill(proc)
        if mode == "uid":
            kill_nobody_processes()
        oom = 0
        if group is not None:
            oom = group.oom_kills()
            group.remove()  # every process left in it is killed first
    return _Run(events, ended, proc.returncode, phase, mode, oom, memory_limit, group_text)


def _death(run: _Run, limits: Limits, stderr_tail: str, budget: float) -> str:
    """Why a child stopped before finishing, in words."""
    if run.ended == "timeout":
        if run.phase == ("startup",):
            return f"the sandbox did not start within {limits.startup_timeout:g} s"
        return f"it ran for more than {limits.timeout:g} s and was stopped"
    if run.ended == "budget":
        return f"the submission used up its time budget ({budget:g} s in all) and was stopped"
    if run.oom_kills:
        return (f"it used more memory than its limit ({limits.memory_mb} MB on top of Python and torch, shared "
                "memory and files in its scratch folder included) and was stopped")
    if run.ended == "corrupt":
        return "it wrote to the grader's result channel (records out of order or corrupted)"
    if run.ended == "too_much_output":
        return "it sent more output than the grader accepts"
    if run.ended == "too_many_values":
        return (f"it sent the grader's result channel a record of more than {MAX_RECORD_VALUES:,} values "
                "(an output that large, or a forged record); the grader reads at most that many per case")
    rc = run.returncode
    if rc is not None and 128 < rc < 128 + 65 and "bwrap" in run.how:  # bwrap reports a signal as 128 + n
        rc = 128 - rc
    if rc is not None and rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        hint = {"SIGSEGV": " (a segmentation fault)", "SIGKILL": " (killed, perhaps out of memory)",
                "SIGXFSZ": " (it wrote a file larger than the limit)", "SIGABRT": " (aborted)"}.get(name, "")
        return f"the process crashed with {name}{hint}"
    if "Fatal Python error" in stderr_tail:
        return "the Python interpreter crashed (Fatal Python error)"
    return f"the process exited with code {rc} (os._exit or a crash) before the grader got its results"


def _tail(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            text = f.read().decode("utf-8", errors="replace")
        return ("[... earlier output cut ...]\n" if size > limit else "") + text
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------------------
# Grading one submission
# ------------------------------------------------------------------------------------------------------
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
    _prepare_grader_dir(workdir)
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
    clock = _Clock(budget, extra=2 * limits.startup_timeout)
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
            "filename": sub.path.name[-200:], "units": [u.__dict__ for u in sub.units], "skip_units": sorted(skip_units),
            "exercises": [{"id": ex.id, "name": ex.name, "kind": ex.kind, "cases": plan.cases[ex.name],
                           "shortcuts": [[list(sc.names), sc.note, list(sc.modules or ())] for sc in ex.shortcuts]}
                          for ex in plan.exercises if ex.name in todo],
            "todo": todo,
        }
        run = _run_child(job, workdir, limits, mode, submission, clock)
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
                unit_info.setdefault(ev["i"], {"error": _said(error) if error else None,
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
                                                    f"{_said(ev['foreign'])[:300]}")
                    else:
                        final[name] = ("judge", "")
            elif violations and current_unit is not None:
                unit_info.setdefault(current_unit, {"error": None, "violations": []})["violations"].extend(violations)
        if run.ended != "finished":
            why = _death(run, limits, _tail(workdir / "stderr.txt", 4000), budget)
            phase = run.phase
            if run.ended == "budget":
                for n in names:
                    final.setdefault(n, ("timeout", why))
                break
            if phase == ("startup",):
                result.error = f"the sandbox could not start: {why}"
                tail = _tail(workdir / "stderr.txt", 1500).strip()
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
            status, reason = "forbidden", f"{_describe_violations(refused)} ({reason})"
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
    result.output = clean(_tail(workdir / "stdout.txt", 32_000) + _tail(workdir / "stderr.txt", 16_000), 200_000,
                          keep="\n\t")
    result.seconds = time.monotonic() - started
    return result
