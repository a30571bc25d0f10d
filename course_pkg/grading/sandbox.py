"""The child side of the batch grader: runs one learner's code and reports raw outputs.

The grader starts this file as a script in a fresh interpreter (``python -I -B sandbox.py
JOB.json``) with a scratch folder as its working directory. It imports nothing from
``course_pkg``: the exercise framework (``core.py``) is loaded from its file under another name,
so no reference solution is ever in this process's memory. In order, it

1. reads the job (the learner's code units, each exercise's name, kind and case arguments as
   plain data, the limits), sets the core-dump and file-size limits, imports torch;
2. sets the address-space limit (what torch needs plus the learner's budget);
3. locks the process down from the inside, as a second layer behind the kernel's isolation
   (bubblewrap, set up by the grader, see ``isolation.py``): Landlock (Linux >= 5.13), where the
   kernel has it, so that files can be created, written or removed only inside the scratch folder,
   no program can be executed, no TCP connection made and no signal sent outside the process; then
   an audit hook (``sys.addaudithook``) that turns reads of the course's files, writes outside the
   scratch folder, new processes, signals, ``ctypes``, ``gc`` referrer walks and resource-limit
   changes into refusals with a friendly message (it is no security boundary: PEP 578 says so);
   ``import course_pkg`` gives a harmless stand-in (``ex.name.check(fn)`` prints a line);
4. runs the learner's units (notebook cells tagged ``exercise``, or a .py file's top-level
   statements) one by one in a module called ``submission``, with ``math``, ``torch``, ``nn`` and
   ``F`` already imported; a unit that raises is reported and the next one runs;
5. for each exercise, looks the answer up by name and runs every case with
   ``Exercise.run_case``, sending the raw output back as plain data (``encode_value``).

Everything goes back as JSON lines on a pipe the grader opened (``result_fd``); the learner's
own stdout and stderr go to files the grader never parses. Nothing is judged here: the grader
compares the outputs with the reference's in its own process, so code that patches torch, the
checks, or forges this channel can only change what its own answers appear to output.

The functions :func:`run_exercise` and :func:`describe_exception` are importable (no side
effects at import) so the tests can prove that the grader's verdicts equal ``Exercise.check``'s.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterator

# -- protocol -------------------------------------------------------------------------------------------
_OUT_FD = -1
_LOG: list = []  # violations noticed by the audit hook, drained into every record


def _emit(record: dict) -> None:
    import json

    if _LOG:
        record.setdefault("violations", []).extend(_LOG)
        del _LOG[:]
    data = (json.dumps(record, allow_nan=True) + "\n").encode("utf-8")
    view = memoryview(data)
    while view:
        n = os.write(_OUT_FD, view)
        view = view[n:]


def describe_exception(exc: BaseException) -> str:
    """``"TypeName: message"``, robust to exceptions whose ``__str__`` misbehaves."""
    name = type(exc).__name__
    if isinstance(exc, SystemExit):
        return f"SystemExit: the code called sys.exit({exc.code!r}); graded code must return, not exit"
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - a learner's exception class may raise anything
        text = "(the exception's message could not be printed)"
    if isinstance(exc, MemoryError):
        text = (text + " " if text else "") + "(the code ran out of memory; the grader limits each submission)"
    return f"{name}: {text}"[:4000]


# -- running one exercise -------------------------------------------------------------------------------
def run_exercise(core: Any, exercise_id: str, kind: str, cases: list[tuple[str, int, tuple]],
                 answer: Any, shortcuts: Any = ()) -> Iterator[tuple[int, dict]]:
    """Run ``answer`` on each case like ``Exercise.test`` does, yielding ``(index, outcome)``.

    ``cases`` holds ``(name, seed, args)``; ``shortcuts`` the exercise's ``Shortcut`` fields as plain
    data, ``[names, note, modules]``. An outcome is one of ``{"output": plain data}``,
    ``{"error": "Type: message"}``, ``{"check_failure": message}``, ``{"not_attempted": True}``
    (then no further case runs) or ``{"encode_error": message}``; an outcome also carries
    ``"notes"`` when the answer called one of the shortcuts on that case.
    """
    case_objs = [core.Case(name, (lambda a=args: a), seed=seed) for name, seed, args in cases]
    known = [core.Shortcut(tuple(n), str(note), tuple(m) if m else None) for n, note, m in shortcuts]
    ex = core.Exercise(id=exercise_id, title="", reference=None, cases=case_objs, kind=kind, shortcuts=known)
    for i, case in enumerate(case_objs):
        used: list[str] = []
        try:
            out = ex.run_case(answer, case, used=used)
        except core.NotAttempted:
            yield i, {"not_attempted": True}
            return
        except core.CheckFailure as exc:
            yield i, {"check_failure": describe_exception(exc).split(": ", 1)[-1]}
            continue
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the learner's too
            yield i, {"error": describe_exception(exc)}
            continue
        try:
            yield i, {"output": core.encode_value(out), **({"notes": used} if used else {})}
        except BaseException as exc:  # noqa: BLE001
            yield i, {"encode_error": describe_exception(exc)}


def _foreign(answer: Any, core_name: str, course_dirs: tuple) -> str | None:
    """Why ``answer`` is not the learner's own code, or None."""
    if type(answer) is _StandIn:
        return f"it is the course's own code ({object.__getattribute__(answer, '_course_path')})"
    try:
        module = getattr(answer, "__module__", None)
    except BaseException:  # noqa: BLE001
        module = None
    if isinstance(module, str) and (module == "course_pkg" or module.startswith("course_pkg.")
                                    or module == core_name):
        return f"it is the course's own code (from {module})"
    try:
        filename = answer.__code__.co_filename
    except BaseException:  # noqa: BLE001
        filename = None
    if isinstance(filename, str) and (any(filename.startswith(d + os.sep) for d in course_dirs)
                                      or (os.sep + "course_pkg" + os.sep) in filename):
        return f"its code comes from the course package ({filename})"
    return None


# -- limits and lock-down -----------------------------------------------------------------------------------
def _set_early_limits(job: dict) -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Linux/macOS
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = int(job["fsize_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _set_memory_limit(job: dict) -> int:
    """Cap the address space at what is mapped now (Python + torch) plus the learner's budget."""
    try:
        import resource
    except ImportError:  # pragma: no cover
        return 0
    mapped = _vm_size()
    if not mapped:  # no /proc: the address-space limit is not set (it is unreliable off Linux anyway)
        return 0
    limit = mapped + int(job["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


def _landlock(scratch: str) -> str:
    """Let the kernel refuse file creation/writes/removal outside ``scratch``, exec, TCP and signals
    to other processes. Returns what was done, for the record; never raises."""
    if not sys.platform.startswith("linux"):
        return "unavailable (not Linux)"
    try:
        import ctypes
        import platform

        if platform.machine() not in ("x86_64", "aarch64", "riscv64", "loongarch64"):
            return f"unavailable (syscall numbers unknown on {platform.machine()})"
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        create, add_rule, restrict = 444, 445, 446
        abi = libc.syscall(create, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
        if abi < 1:
            return "unavailable (the kernel has no Landlock)"
        execute, write_file = 1 << 0, 1 << 1
        writes = write_file | sum(1 << b for b in range(4, 13))  # remove dir/file, make char/dir/reg/sock/fifo/block/sym
        if abi >= 2:
            writes |= 1 << 13  # refer (links and renames across folders)
        if abi >= 3:
            writes |= 1 << 14  # truncate
        handled_fs = execute | writes
        handled_net = 0b11 if abi >= 4 else 0  # bind and connect TCP
        scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets and signals

        class RulesetAttr(ctypes.Structure):
            _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                        ("scoped", ctypes.c_uint64)]

        class PathBeneath(ctypes.Structure):
            _pack_ = 1
            _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

        attr = RulesetAttr(handled_fs, handled_net, scoped)
        size = 24 if abi >= 6 else (16 if abi >= 4 else 8)
        ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        if ruleset < 0:
            return f"not applied (create_ruleset: {os.strerror(ctypes.get_errno())})"
        try:
            for path, access in ((scratch, writes), ("/dev/null", write_file | ((1 << 14) if abi >= 3 else 0))):
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                try:
                    rule = PathBeneath(access, fd)
                    if libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule),
                                    ctypes.c_uint32(0)) != 0:
                        return f"not applied (add_rule {path}: {os.strerror(ctypes.get_errno())})"
                finally:
                    os.close(fd)
            if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS, required by restrict_self
                return f"not applied (no_new_privs: {os.strerror(ctypes.get_errno())})"
            if libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
                return f"not applied (restrict_self: {os.strerror(ctypes.get_errno())})"
        finally:
            os.close(ruleset)
        return f"applied (ABI {abi})"
    except Exception as exc:  # noqa: BLE001 - the audit hook still applies
        return f"not applied ({type(exc).__name__}: {exc})"


_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                             "os.forkpty", "pty.spawn", "os.startfile"})
_SIGNAL_EVENTS = frozenset({"os.kill", "os.killpg", "signal.pthread_kill"})
_INTROSPECTION_EVENTS = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.addaudithook"})
_LIMIT_EVENTS = frozenset({"resource.setrlimit", "resource.prlimit"})
_NETWORK_EVENTS = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"})
# events whose arguments at these positions are paths that will be created, changed or removed
_PATH_WRITE_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.truncate": (0,),
                      "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,), "os.mkdir": (0,), "os.mkfifo": (0,),
                      "os.mknod": (0,), "os.symlink": (1,), "os.link": (0, 1), "shutil.rmtree": (0,),
                      "os.chflags": (0,), "os.lchflags": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
                      "sqlite3.connect": (0,)}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _resolve_path(p: Any, dir_fd: Any = None, _fspath: Any = os.fspath, _fsdecode: Any = os.fsdecode,
                  _realpath: Any = os.path.realpath, _join: Any = os.path.join, _getcwd: Any = os.getcwd,
                  _readlink: Any = os.readlink, _sep: str = os.sep, _int: type = int, _bytes: type = bytes,
                  _OSError: type = OSError, _Exception: type = Exception) -> str | None:
    """The real path an event's path argument names (None for an open file descriptor)."""
    if isinstance(p, _int):
        return None
    try:
        p = _fspath(p)
        if isinstance(p, _bytes):
            p = _fsdecode(p)
        if not p.startswith(_sep):
            base = _getcwd()
            if isinstance(dir_fd, _int):
                base = _readlink(f"/proc/self/fd/{dir_fd}")
            p = _join(base, p)
        return _realpath(p)
    except _Exception:  # noqa: BLE001 - an unreadable path is treated as outside everything allowed
        return "?"


def _inside(path: str, root: str, _sep: str = os.sep) -> bool:
    return path == root or path.startswith(root + _sep)


def _refuse(kind: str, detail: str, exc_type: type = PermissionError, _log: list = _LOG) -> None:
    _log.append({"kind": kind, "detail": detail[:300]})
    raise exc_type(f"the grader does not allow this: {detail}")


_WATCHED = (frozenset({"open"}) | _PROCESS_EVENTS | _SIGNAL_EVENTS
            | _INTROSPECTION_EVENTS | _LIMIT_EVENTS | _NETWORK_EVENTS | frozenset(_PATH_WRITE_EVENTS))


def _make_audit_hook(scratch: str, deny_read: tuple, allow_read: frozenset, pid: int) -> Callable[[str, tuple], None]:
    """The hook's whole policy lives in default arguments, here and in its helpers: immutable values
    and functions bound when it is made, so replacing module globals does not change it. It only
    makes refusals readable; the kernel (bubblewrap, Landlock) is what enforces them."""

    def course_grade_audit_hook(event: str, args: tuple, _scratch: str = scratch, _deny_read: tuple = deny_read,
                                _allow_read: frozenset = allow_read,
                                _pid: str = str(pid), _watched: frozenset = _WATCHED,
                                _resolve: Any = _resolve_path, _inside: Any = _inside, _refuse: Any = _refuse,
                                _write_flags: int = _WRITE_FLAGS, _process: frozenset = _PROCESS_EVENTS,
                                _signals: frozenset = _SIGNAL_EVENTS, _intro: frozenset = _INTROSPECTION_EVENTS,
                                _limits: frozenset = _LIMIT_EVENTS, _net: frozenset = _NETWORK_EVENTS,
                                _path_writes: tuple = tuple(_PATH_WRITE_EVENTS.items()),
                                _str: type = str, _int: type = int,
                                _len: Any = len, _any: Any = any, _isinstance: Any = isinstance,
                                _sep: str = os.sep, _isfile: Any = os.path.isfile) -> None:
        if event.startswith("ctypes."):
            if event == "ctypes.dlopen" and _len(args) and _isinstance(args[0], _str) and args[0]:
                # a library that is installed (torchvision loads its C extension so): loading it is the
                # library's own doing; calling into a library through ctypes (ctypes.dlsym) stays refused
                where = _resolve(args[0]) if _sep in args[0] else None
                if where is None or (_isfile(where) and not _inside(where, _scratch)
                                     and not where.startswith(("/proc/", "/dev/"))):
                    return
            _refuse("ctypes", f"{event} (graded code may not use ctypes)")
        if event not in _watched:
            return
        if event == "open":
            path = _resolve(args[0])
            if path is None:
                return
            flags = args[2] if _len(args) > 2 and _isinstance(args[2], _int) else 0
            mode = args[1] if _len(args) > 1 and _isinstance(args[1], _str) else ""
            if (flags & _write_flags) or _any(c in mode for c in "wax+"):
                if not (_inside(path, _scratch) or path == "/dev/null"):
                    _refuse("write", f"opening {path} for writing (only the scratch folder is writable)")
                return
            if path not in _allow_read:
                for root in _deny_read:
                    if _inside(path, root):
                        _refuse("course code", f"reading {path} (the course's own files)")
                # any other copy of the course: an installed package, an unpacked wheel, a wheel
                if (_sep + "course_pkg" + _sep) in path or path.rsplit(_sep, 1)[-1].startswith("course_pkg-"):
                    _refuse("course code", f"reading {path} (a copy of the course's own files)")
            if path.startswith("/proc/"):
                part = path[6:].split(_sep, 1)[0]
                if part.isdigit() and part != _pid:
                    _refuse("introspection", f"reading {path} (another process)")
            return
        if event == "import":
            return  # course_pkg resolves to the harmless stand-in (_StandInFinder)
        for name, positions in _path_writes:
            if name == event:
                if event in ("os.symlink", "os.link"):
                    _refuse("write", f"{event} (links are not allowed)")
                dir_fd = args[-1] if event in ("os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.utime") else None
                for i in positions:
                    if i < _len(args):
                        path = _resolve(args[i], dir_fd)
                        if path is not None and not _inside(path, _scratch):
                            _refuse("write", f"{event} on {path} (only the scratch folder is writable)")
                return
        if event in _process:
            _refuse("process", f"{event} (graded code may not start programs)")
        if event in _signals:
            _refuse("signal", f"{event} (graded code may not send signals)")
        if event in _intro:
            _refuse("introspection", event)
        if event in _limits:
            _refuse("limits", f"{event} (the grader's limits cannot be changed)")
        if event in _net:
            _refuse("network", event)

    return course_grade_audit_hook


# -- a harmless stand-in for the course package ------------------------------------------------------------
_STANDIN_NOTE = "the grader runs the checks itself"


class _StandIn:
    """What any ``course_pkg`` name is while grading: ``ex.name.check(fn)``, ``hint()``,
    ``solution()``, ``seed_everything(0)`` or a plot call print a line or do nothing and return
    None; the course's solutions and references are not available (calling them raises)."""

    def __init__(self, path: str) -> None:
        object.__setattr__(self, "_course_path", path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _StandIn(f"{object.__getattribute__(self, '_course_path')}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        path = object.__getattribute__(self, "_course_path")
        last = path.rsplit(".", 1)[-1]
        if ".solutions" in path or last in ("reference", "solution_source", "expected"):
            raise PermissionError(f"{path} is not available while grading (graded code may not use the "
                                  "course's own code)")
        if last in ("check", "test"):
            print(f"[grader] {path}(...) skipped: {_STANDIN_NOTE}")
        elif last in ("hint", "solution"):
            print(f"[grader] {path}() is not available while grading")
        return None

    def __repr__(self) -> str:
        return f"<stand-in for {object.__getattribute__(self, '_course_path')} while grading>"

    def __bool__(self) -> bool:
        return False


def _install_standin() -> None:
    """Make every ``import course_pkg...`` give stand-in modules (a meta path finder put first)."""
    import importlib.abc
    import importlib.machinery
    import types

    class StandInModule(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            return _StandIn(f"{self.__name__}.{name}")

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
            if fullname == "course_pkg" or fullname.startswith("course_pkg."):
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            return None

        def create_module(self, spec: Any) -> Any:
            module = StandInModule(spec.name, "a stand-in for the course package while grading")
            module.__path__ = []
            return module

        def exec_module(self, module: Any) -> None:
            return None

    sys.meta_path.insert(0, Finder())


# -- loading the learner's code -------------------------------------------------------------------------------
def _run_units(job: dict, namespace: dict) -> None:
    import __future__

    import ast

    flags = 0
    skip = set(job.get("skip_units", []))
    _register_source(job)
    for i, unit in enumerate(job["units"]):
        if i in skip:
            continue
        _emit({"ev": "unit", "i": i})
        error = None
        before = dict(namespace)
        # IPython magics were turned into ``pass`` by the grader (submissions.strip_magics)
        source = "\n" * (int(unit.get("first_line", 1)) - 1) + unit["source"]
        try:
            tree = ast.parse(source, filename=job["filename"])
            for node in tree.body:
                if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                    for alias in node.names:
                        feature = getattr(__future__, alias.name, None)
                        if feature is not None:
                            flags |= feature.compiler_flag
            code = compile(source, job["filename"], "exec", flags=flags, dont_inherit=True)
            exec(code, namespace)
        except BaseException as exc:  # noqa: BLE001 - a learner's unit may raise anything, even SystemExit
            error = describe_exception(exc)
        changed = sorted(k for k in namespace if k not in before or namespace[k] is not before[k])
        _emit({"ev": "unit_end", "i": i, "error": error, "defined": changed[:200]})


def _register_source(job: dict) -> None:
    """Put the units' text in ``linecache`` under the file name they are compiled with, each at its
    own lines, so ``inspect.getsource`` (and ``@torch.jit.script``, which needs it) finds the learner's
    source although the file is not in the sandbox under that name."""
    import linecache

    lines: list[str] = []
    for unit in job["units"]:
        first = int(unit.get("first_line", 1))
        body = unit["source"].split("\n")
        if len(lines) < first - 1:
            lines += ["\n"] * (first - 1 - len(lines))
        lines[first - 1:first - 1 + len(body)] = [line + "\n" for line in body]
    linecache.cache[job["filename"]] = (sum(map(len, lines)), None, lines, job["filename"])


def _load_core(path: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_grade_core", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["course_grade_core"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> None:
    global _OUT_FD
    import json

    with open(argv[1], encoding="utf-8") as f:
        job = json.load(f)
    _OUT_FD = int(job["result_fd"])
    _set_early_limits(job)
    _emit({"ev": "start", "pid": os.getpid()})

    # Everything the runner needs later is imported now, before the lock-down.
    import ast  # noqa: F401
    import base64  # noqa: F401
    import faulthandler
    import math
    import types

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)
    core = _load_core(job["core_path"])
    core.encode_value((torch.zeros(2, dtype=torch.bfloat16), 1.0, {"a": None}))  # warm up lazy imports
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # its first use imports torch._dynamo,
    # whose NamedTuples set __defaults__, which the audit hook refuses once it is in place
    exercises = []
    for spec in job["exercises"]:
        cases = [(c["name"], int(c["seed"]), core.decode_value(c["args"])) for c in spec["cases"]]
        exercises.append((spec, cases))
    faulthandler.enable(file=sys.stderr)

    module = types.ModuleType("submission")
    module.__file__ = job["filename"]
    sys.modules["submission"] = module
    namespace = module.__dict__
    namespace.update({"math": math, "torch": torch, "nn": nn, "F": F})

    _install_standin()
    memory_limit = _set_memory_limit(job)
    scratch = os.path.realpath(job["scratch"])
    landlock = _landlock(scratch) if job.get("landlock", True) else "disabled"
    if job.get("audit_hook", True):
        deny = tuple(os.path.realpath(p) for p in job["deny_read"])
        # the framework and this runner are in memory anyway; tracebacks (torch.manual_seed takes one)
        # read their lines
        allow = frozenset(os.path.realpath(p) for p in (job["core_path"], __file__))
        sys.addaudithook(_make_audit_hook(scratch, deny, allow, os.getpid()))
    _emit({"ev": "ready", "landlock": landlock, "audit_hook": bool(job.get("audit_hook", True)),
           "memory_limit": memory_limit})

    _run_units(job, namespace)
    _emit({"ev": "loaded"})

    course_dirs = tuple(os.path.realpath(p) for p in job["deny_read"])
    todo = set(job["todo"])
    for spec, cases in exercises:
        name = spec["name"]
        if name not in todo:
            continue
        _emit({"ev": "exercise", "name": name})
        if name not in namespace:
            _emit({"ev": "exercise_end", "name": name, "missing": True})
            continue
        answer = namespace[name]
        problem = _foreign(answer, "course_grade_core", course_dirs)
        if problem:
            _emit({"ev": "exercise_end", "name": name, "foreign": problem})
            continue
        for i, outcome in run_exercise(core, spec["id"], spec["kind"], cases, answer, spec.get("shortcuts", ())):
            _emit({"ev": "case", "name": name, "i": i, "outcome": outcome})
        _emit({"ev": "exercise_end", "name": name})
    _emit({"ev": "finished"})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip the learner's atexit handlers and lingering threads


if __name__ == "__main__":
    main(sys.argv)
