"""Where a learner's code runs: a bubblewrap sandbox built by the kernel, or (by explicit choice) less.

Modes:

* ``"bwrap"`` (the default whenever it works): Debian's ``bubblewrap`` puts the child in new user,
  mount, pid, network, IPC, UTS and cgroup namespaces, as an unprivileged user (uid 65534). Its
  file system holds only ``/usr`` (system libraries), the Python installation the grader runs on
  (with every copy of ``course_pkg`` in it masked), the grader's child script and the exercise
  framework (``core.py`` alone, no solution), the learner's own copied file at ``/submission``,
  and a size-capped tmpfs at ``/scratch`` (also ``TMPDIR`` and ``HOME``; ``/dev/shm`` has the same cap;
  ``/tmp`` is a separate 1 MB tmpfs, so that no path of the host, wherever the course or the
  submissions lie, ever names a place inside the scratch folder; everything else is read-only).
  Everything else (the
  course's solutions, the checkout and its ``.git``, classmates' files, other learners' jobs, the
  output folder, the instructor's home) is not in its view at all. There is no network device
  but a down loopback, so no connection and no DNS; the whole process tree dies when the grader
  kills it or exits (``--unshare-pid --die-with-parent``).
* ``"uid"`` (root only; for a disposable container with one submission, e.g. Gradescope's, where
  user namespaces are often blocked): the child runs as uid/gid 65534 with no supplementary
  groups; what it may read is then decided by file permissions, so the bundle's ``setup.sh``
  makes the course and the results folder unreadable to others. One job at a time; every process
  of that uid is killed after each run.
* ``"none"``: the child runs as the grader's own user with only Landlock (where the kernel has it)
  and the audit hook. Only with an explicit ``--unsafe-no-isolation``.

Every mode also puts the child in a control group of its own (memory with shared memory, tasks and
CPU; see :mod:`.cgroup`) wherever the grader can create one (as root, or in a delegated cgroup v2
subtree); where it cannot, the grader says so in one line, and then only the time limits and the
per-process address-space limit stop a fork bomb or memory held outside the process (``memfd``).
What still needs a container or a virtual machine around the grader: protection from kernel bugs,
and hiding bubblewrap's own arguments (``/proc/1/cmdline`` shows the paths it mounts, not their contents).
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

MODES = ("auto", "bwrap", "uid", "none")
NOBODY = 65534
HOW_TO_ISOLATE = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) on a "
    "Linux kernel that allows unprivileged user namespaces, or run the grader inside a container or VM "
    "with no network and the course mounted read-only; --unsafe-no-isolation runs learners' code "
    "without isolation (only for code you trust)")


class IsolationUnavailable(RuntimeError):
    """Raised when the isolation asked for (or any, for ``"auto"``) cannot be had here."""


def _bwrap_binary() -> Optional[str]:
    return shutil.which("bwrap")


@functools.cache
def bwrap_problem() -> Optional[str]:
    """None when bubblewrap can build the sandbox here, else why not (in words)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    exe = _bwrap_binary()
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    probe = [exe, "--unshare-all", "--die-with-parent", "--unshare-user", "--uid", str(NOBODY), "--gid",
             str(NOBODY), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--size", "1048576",
             "--tmpfs", "/tmp", "true"]
    try:
        done = subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not run ({type(exc).__name__}: {exc})"
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return ("bubblewrap cannot create its namespaces here (" + (err[-1] if err else f"exit {done.returncode}")
                + "); unprivileged user namespaces may be turned off")
    return None


@functools.cache
def _bwrap_supports(option: str) -> bool:
    exe = _bwrap_binary()
    if exe is None:
        return False
    done = subprocess.run([exe, "--help"], capture_output=True, text=True)
    return option in (done.stdout + done.stderr)


def choose(requested: str) -> str:
    """The mode to use for ``requested`` (one of :data:`MODES`); raises :class:`IsolationUnavailable`."""
    if requested not in MODES:
        raise ValueError(f"isolation={requested!r} is not one of {', '.join(MODES)}")
    if requested == "none":
        return "none"
    if requested == "uid":
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            raise IsolationUnavailable("isolation='uid' needs the grader to run as root (it drops the child to "
                                       f"uid {NOBODY})")
        return "uid"
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    raise IsolationUnavailable(f"the grader will not run learners' code without isolation: {problem}. "
                               f"To fix it, {HOW_TO_ISOLATE}.")


def python_roots() -> list[Path]:
    """The folders that hold the running Python and its packages (made visible read-only)."""
    roots: list[Path] = []
    for p in (sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix):
        rp = Path(p).resolve()
        if rp.is_dir() and not any(rp == r or r in rp.parents for r in roots):
            roots = [r for r in roots if rp not in r.parents] + [rp]
    return roots


def _site_dirs() -> list[Path]:
    """This Python's package folders, and every other Python's under ``/usr`` (visible too)."""
    dirs = []
    try:
        dirs += [Path(d) for d in site.getsitepackages()]
    except AttributeError:  # pragma: no cover - old virtualenv's site module
        pass
    dirs += [Path(p) for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    for pattern in ("lib/python3*/site-packages", "lib/python3*/dist-packages", "local/lib/python3*/site-packages",
                    "local/lib/python3*/dist-packages", "lib/python3/dist-packages"):
        dirs += list(Path("/usr").glob(pattern))
    return sorted({d.resolve() for d in dirs if d.is_dir()})


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def masked_paths(roots: Sequence[Path], hidden: Sequence[Path]) -> list[Path]:
    """What must be hidden inside the visible ``roots``: every ``course_pkg`` entry of a site folder
    (an installed copy, an editable install's finder and ``.pth``), and ``hidden`` paths."""
    out: list[Path] = []
    for d in _site_dirs():
        if not _under(d, roots):
            continue
        for entry in d.iterdir():
            if "course_pkg" in entry.name.lower().replace("-", "_"):
                out.append(entry)
    for h in hidden:
        h = h.resolve()
        if h.exists() and _under(h, roots):
            out.append(h)
    return sorted(set(out))


def bwrap_command(python: str, *, grader_dir: Path, submission: Path, scratch_mb: int,
                  hidden: Sequence[Path], keep_fds: Sequence[int] = ()) -> list[str]:
    """The ``bwrap`` argument list that runs ``python`` in the sandbox described in the module docs.

    ``grader_dir`` (the child script, ``core.py`` and the job, copied per submission) appears at
    ``/grader``, ``submission`` (a copy of the learner's file) at ``/submission/<name>``; the
    scratch tmpfs of ``scratch_mb`` MB at ``/scratch``."""
    exe = _bwrap_binary()
    if exe is None:
        raise IsolationUnavailable(f"bubblewrap is not installed; {HOW_TO_ISOLATE}")
    cmd = [exe, "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
           "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox"]
    if _bwrap_supports("--disable-userns"):
        cmd.append("--disable-userns")
    for top in ("/usr",):
        cmd += ["--ro-bind", top, top]
    for link in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(link)
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(p), link]
        elif p.is_dir():
            cmd += ["--ro-bind", link, link]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/alternatives"):
        cmd += ["--ro-bind-try", f, f]
    roots = [r for r in python_roots() if not _under(r, [Path("/usr")])]
    cmd += ["--size", str(int(scratch_mb) * 2**20), "--tmpfs", "/scratch"]
    # /tmp is not the scratch folder (nor a link to it): a host path under /tmp (a checkout, a class
    # folder) must not name a writable place in the sandbox, or the verdict on the same attempt would
    # depend on where the course lies. Temporary files go to TMPDIR (the scratch folder).
    cmd += ["--size", "1048576", "--tmpfs", "/tmp"]  # a Python installed under /tmp is bound below
    for r in roots:
        cmd += ["--ro-bind", str(r), str(r)]
    for m in masked_paths(roots + [Path("/usr")], hidden):
        cmd += (["--tmpfs", str(m)] if m.is_dir() and not m.is_symlink() else ["--ro-bind", "/dev/null", str(m)])
    cmd += ["--proc", "/proc", "--dev", "/dev",
            "--size", str(int(scratch_mb) * 2**20), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
            "--ro-bind", str(grader_dir), "/grader",
            "--ro-bind", str(submission), f"/submission/{submission.name}",
            "--remount-ro", "/", "--chdir", "/scratch"]
    for fd in keep_fds:
        os.set_inheritable(fd, True)
    return cmd + ["--", python]


def drop_to_nobody() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn`` for the ``"uid"`` mode."""
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def kill_nobody_processes() -> None:
    """In the ``"uid"`` mode, kill every process left running as uid 65534 (forked by the learner)."""
    code = "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
    try:
        subprocess.run([sys.executable, "-I", "-S", "-c", code], preexec_fn=drop_to_nobody,  # noqa: PLW1509
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30)
    except (OSError, subprocess.SubprocessError):
        pass
