"""Running the child once: the sandboxed process that runs a learner's code for one job.

:func:`run_child` starts ``sandbox.py`` in isolation (bubblewrap, uid 65534 or none; see
:mod:`.isolation`), in a control group of its own where one can be made (:mod:`.cgroup`), and
reads its records from a pipe: each is counted before it is parsed (:data:`MAX_RECORD_VALUES`) and
accepted only in order (:class:`~.protocol.RecordProtocol`). The grader's own clock (:class:`Clock`)
stops a cell or an exercise after ``Limits.timeout`` and the whole file after its budget; the
child's process tree is then killed. :func:`death_reason` says in words why a child stopped early.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .cgroup import SandboxGroup, available, join_command
from .isolation import bwrap_command, drop_to_nobody, kill_nobody_processes
from .limits import Limits
from .protocol import RecordProtocol
from .submissions import count_json_values

SANDBOX = Path(__file__).with_name("sandbox.py")
CORE = Path(__file__).resolve().parents[1] / "exercises" / "core.py"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
MAX_RECORD_VALUES = 200_000  # JSON values in one record from the sandbox, counted before parsing it


@dataclass
class Run:
    """What one run of the child sent (the accepted records, in order) and how it ended."""

    events: list[dict]
    ended: str  # "finished", "timeout", "budget", "exit", "corrupt", "too_much_output", "too_many_values"
    returncode: Optional[int]
    phase: tuple  # ("startup",), ("unit", i), ("loaded",), ("exercise", name), ("between",)
    how: str = ""  # the isolation mode it ran in
    oom_kills: int = 0  # processes the control group's memory limit killed
    memory_limit: int = 0  # the control group's memory limit once the sandbox was ready (bytes)
    cgroup: str = ""  # the control group's limits, in words, or why there were none


@dataclass
class Clock:
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
    """The child's whole environment: caches and temporary files in its scratch folder, one thread, no GPU."""
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


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the child's whole process group (it started a session of its own) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    proc.wait()


def prepare_grader_dir(workdir: Path) -> Path:
    """Copies of the child script and of the exercise framework (no solution), readable by the child."""
    gdir = workdir / "grader"
    gdir.mkdir(exist_ok=True)
    shutil.copyfile(SANDBOX, gdir / "sandbox.py")
    shutil.copyfile(CORE, gdir / "course_grade_core.py")
    for f in gdir.iterdir():
        f.chmod(0o644)
    gdir.chmod(0o755)
    return gdir


def _sandbox_group(limits: Limits) -> tuple[Optional[SandboxGroup], str]:
    """A control group with the sandbox's limits, or (None, why there is none)."""
    if not limits.cgroups:
        return None, "none (turned off)"
    hier, why = available()
    if hier is None:
        return None, f"none ({why})"
    try:
        # until the sandbox is ready, room for Python + torch; then what they use + the learner's budget
        group = SandboxGroup(hier, (limits.memory_mb + 1024) * 2**20, limits.pids, limits.cpus)
    except OSError as exc:
        return None, f"none (creating the group failed: {exc.strerror})"
    return group, group.describe()


def run_child(job: dict, workdir: Path, limits: Limits, mode: str, submission: Path, clock: Clock,
              max_stream: int = 512 * 2**20, max_line: int = 128 * 2**20) -> Run:
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
            argv = join_command(group.procs_files) + argv
    units = [i for i in range(len(job["units"])) if i not in set(job["skip_units"])]
    exercises = [(e["name"], len(e["cases"])) for e in job["exercises"] if e["name"] in job["todo"]]
    protocol = RecordProtocol(units, exercises)
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
            _kill_tree(proc)
        if mode == "uid":
            kill_nobody_processes()
        oom = 0
        if group is not None:
            oom = group.oom_kills()
            group.remove()  # every process left in it is killed first
    return Run(events, ended, proc.returncode, phase, mode, oom, memory_limit, group_text)


def death_reason(run: Run, limits: Limits, stderr_tail: str, budget: float) -> str:
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


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` bytes of a captured output file, as text ("" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            text = f.read().decode("utf-8", errors="replace")
        return ("[... earlier output cut ...]\n" if size > limit else "") + text
    except OSError:
        return ""

