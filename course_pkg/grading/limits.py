"""What one submission may use: time, memory, files, tasks and CPUs, and how it is isolated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


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

