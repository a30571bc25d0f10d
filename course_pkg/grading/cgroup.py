"""Per-sandbox resource limits with Linux control groups: memory (shared memory included), tasks, CPU.

The address-space limit that the child sets on itself does not count memory held outside its own
mappings (a ``memfd``, files in its tmpfs scratch folder, ``/dev/shm``), and nothing per process
stops a learner's code from starting thousands of threads (each takes a PID of the host). So,
wherever the grader may create control groups (it runs as root, or its cgroup v2 subtree is
delegated to it), every sandbox gets its own group:

* ``memory``: Python + torch at start-up plus the learner's budget (``Limits.memory_mb``), page
  cache and shared memory (``memfd``, tmpfs) included, no swap; the kernel kills the group's
  processes beyond it;
* ``pids``: at most ``Limits.pids`` tasks (threads count);
* ``cpu``: at most ``Limits.cpus`` CPUs' worth of time.

cgroup v2 (the unified hierarchy, ``/sys/fs/cgroup``) is used where it has the three controllers;
else cgroup v1's ``memory``, ``pids`` and ``cpu`` hierarchies (older hosts and containers). The
groups live under the grader's own group, in ``course-grade-<pid>``, and are removed, with every
process left in them killed, after each run. :func:`available` says in one line why limits cannot
be set, when they cannot.
"""

from __future__ import annotations

import atexit
import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
_COUNTER = itertools.count(1)
_LOCK = threading.Lock()


@dataclass
class Hierarchy:
    """Where the grader's groups go: ``version`` 2 (one folder for all controllers) or 1 (one folder
    per controller, ``folders[controller]``)."""

    version: int
    folders: dict[str, Path]  # controller -> the course-grade-<pid> folder in that hierarchy

    def describe(self) -> str:
        where = sorted({str(p) for p in self.folders.values()})
        return f"cgroup v{self.version} ({', '.join(where)})"


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """``/proc/self/cgroup`` -> {controller or "" for v2: the process's group path}."""
    out: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        if ctrls == "":
            out[""] = path
        for c in ctrls.split(","):
            if c:
                out[c] = path
    return out


def _mounts(mountinfo: str) -> tuple[Optional[Path], dict[str, Path]]:
    """The cgroup2 mount point and the cgroup v1 mount point of each controller, from mountinfo."""
    v2: Optional[Path] = None
    v1: dict[str, Path] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        root, mount, fstype, options = fields[3], Path(fields[4]), rfields[0], rfields[2].split(",")
        if root != "/":
            continue  # a bind mount of a sub-folder: its paths do not match /proc/self/cgroup
        if fstype == "cgroup2" and v2 is None:
            v2 = mount
        elif fstype == "cgroup":
            for c in CONTROLLERS:
                if c in options:
                    v1.setdefault(c, mount)
    return v2, v1


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _setup(sys_root: str = "/") -> tuple[Optional[Hierarchy], str]:
    """Create ``course-grade-<pid>`` in the hierarchy the grader can use; (None, why) if none."""
    root = Path(sys_root)
    try:
        own = _own_paths((root / "proc/self/cgroup").read_text())
        v2, v1 = _mounts((root / "proc/self/mountinfo").read_text())
    except OSError as exc:
        return None, f"/proc does not show this process's control groups ({exc.strerror})"
    name = f"course-grade-{os.getpid()}"
    reasons = []
    if v2 is not None and "" in own:
        base = Path(str(v2) + own[""].rstrip("/"))
        try:
            have = (base / "cgroup.controllers").read_text().split()
        except OSError as exc:
            have, reasons = [], reasons + [f"cgroup v2 at {base}: {exc.strerror}"]
        missing = [c for c in CONTROLLERS if c not in have]
        if have and missing:
            reasons.append(f"cgroup v2 at {base} lacks the {', '.join(missing)} controller(s)")
        elif not have and not reasons:
            reasons.append(f"cgroup v2 at {base} has no controllers delegated (they may be bound to cgroup v1)")
        else:
            try:
                enabled = (base / "cgroup.subtree_control").read_text().split()
                if any(c not in enabled for c in CONTROLLERS):
                    _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))
                folder = base / name
                folder.mkdir(exist_ok=True)
                _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))
                return Hierarchy(2, dict.fromkeys(CONTROLLERS, folder)), ""
            except OSError as exc:
                why = ("it holds processes, so its controllers cannot be handed to sub-groups; run the grader in "
                       "a group of its own with memory, pids and cpu delegated (e.g. systemd-run --scope -p "
                       "Delegate=yes)") if exc.errno == 16 else exc.strerror
                reasons.append(f"cgroup v2 at {base}: {why}")
    if all(c in v1 and c in own for c in CONTROLLERS):
        folders: dict[str, Path] = {}
        try:
            for c in CONTROLLERS:
                folder = Path(str(v1[c]) + own[c].rstrip("/")) / name
                folder.mkdir(exist_ok=True)
                folders[c] = folder
            return Hierarchy(1, folders), ""
        except OSError as exc:
            for f in folders.values():
                _rmdir(f)
            reasons.append(f"cgroup v1: cannot create {exc.filename} ({exc.strerror})")
    elif not reasons:
        reasons.append("no cgroup v2 or v1 hierarchy with the memory, pids and cpu controllers is mounted")
    return None, "; ".join(reasons)


_STATE: dict[str, tuple[Optional[Hierarchy], str]] = {}  # "state"; "atexit" once registered


def available() -> tuple[Optional[Hierarchy], str]:
    """The hierarchy this grader process puts its sandboxes' groups in (set up once), or (None, why
    not, in one line)."""
    with _LOCK:
        if "state" not in _STATE:
            _STATE["state"] = _setup()
            if _STATE["state"][0] is not None and not _STATE.get("atexit"):
                atexit.register(release)  # the folder goes with this process, whoever asked for it
                _STATE["atexit"] = (None, "")
        return _STATE["state"]


def release() -> None:
    """Remove this grader's ``course-grade-<pid>`` folders (empty once every sandbox is gone)."""
    with _LOCK:
        hier, _ = _STATE.pop("state", (None, ""))
    if hier is not None:
        for folder in set(hier.folders.values()):
            _rmdir(folder)


def _rmdir(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


class SandboxGroup:
    """One sandbox's control group(s): created with limits, joined by the child, killed and removed."""

    def __init__(self, hier: Hierarchy, memory_bytes: int, pids: int, cpus: float) -> None:
        if memory_bytes < 2**20 or pids < 1 or cpus <= 0:
            raise ValueError(f"memory_bytes={memory_bytes}, pids={pids}, cpus={cpus}: need at least 1 MiB, "
                             "1 task and a positive number of CPUs")
        self.hier = hier
        n = next(_COUNTER)
        self.folders = {c: f / f"s{n}" for c, f in hier.folders.items()}
        self.memory_bytes, self.pids, self.cpus = memory_bytes, pids, cpus
        for folder in set(self.folders.values()):
            folder.mkdir()
        try:
            self.set_memory(memory_bytes)
            quota = max(1000, int(cpus * CPU_PERIOD_US))
            if hier.version == 2:
                _write(self.folders["pids"] / "pids.max", str(pids))
                _write(self.folders["cpu"] / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            else:
                _write(self.folders["pids"] / "pids.max", str(pids))
                _write(self.folders["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(self.folders["cpu"] / "cpu.cfs_quota_us", str(quota))
        except OSError:
            self.remove()
            raise

    @property
    def procs_files(self) -> list[str]:
        """The files the child writes its PID into to join (one per hierarchy folder)."""
        return [str(f / "cgroup.procs") for f in sorted(set(self.folders.values()))]

    def set_memory(self, limit: int) -> None:
        """Cap the group's memory (shared memory and tmpfs included) at ``limit`` bytes, no swap."""
        folder = self.folders["memory"]
        if self.hier.version == 2:
            _write(folder / "memory.max", str(limit))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
        else:
            memsw = folder / "memory.memsw.limit_in_bytes"
            # memsw >= memory at every moment: raise memsw first when growing, after when shrinking
            try:
                current = int((folder / "memory.limit_in_bytes").read_text())
            except (OSError, ValueError):
                current = 0
            if memsw.exists() and limit > current:
                _write(memsw, str(limit))
            _write(folder / "memory.limit_in_bytes", str(limit))
            if memsw.exists() and limit <= current:
                _write(memsw, str(limit))
        self.memory_bytes = limit

    def memory_used(self) -> int:
        """Bytes the group uses now (0 if unknown)."""
        folder = self.folders["memory"]
        name = "memory.current" if self.hier.version == 2 else "memory.usage_in_bytes"
        try:
            return int((folder / name).read_text())
        except (OSError, ValueError):
            return 0

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        folder = self.folders["memory"]
        name = "memory.events" if self.hier.version == 2 else "memory.oom_control"
        try:
            for line in (folder / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def pids_refused(self) -> int:
        """How many times a new task was refused for going over ``pids.max``."""
        try:
            text = (self.folders["pids"] / "pids.events").read_text()
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def pids_in_group(self) -> list[int]:
        pids: set[int] = set()
        for f in self.procs_files:
            try:
                pids |= {int(x) for x in Path(f).read_text().split()}
            except (OSError, ValueError):
                pass
        return sorted(pids)

    def kill(self) -> None:
        """Kill every process in the group (those that left the sandbox's session included)."""
        if self.hier.version == 2 and (self.folders["pids"] / "cgroup.kill").exists():
            try:
                _write(self.folders["pids"] / "cgroup.kill", "1")
            except OSError:
                pass
        for _ in range(100):
            pids = self.pids_in_group()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        """Kill what is left and remove the group's folders."""
        self.kill()
        for folder in set(self.folders.values()):
            _rmdir(folder)

    def describe(self) -> str:
        return (f"{self.hier.describe().split(' (')[0]}: memory {self.memory_bytes // 2**20} MB, "
                f"{self.pids} tasks, {self.cpus:g} CPU")


def join_command(procs_files: list[str]) -> list[str]:
    """A ``/bin/sh`` prefix that moves itself into the groups (``procs_files``), then ``exec``s the
    rest of the command line (so the sandbox starts inside them); exit status 125 if it cannot."""
    script = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; '
              'exec "$@"')
    return ["/bin/sh", "-c", script, "sh", str(len(procs_files)), *procs_files]
