"""The exercise framework: exercises with cases, checks, hints and solutions.

An :class:`Exercise` is a small, self-contained test suite for one thing a learner writes
(a function or an ``nn.Module`` class). It is used in three places:

* in a chapter, ``ex.check(answer)`` prints friendly feedback and never raises;
* in ``pytest``, the same cases prove that the reference solution passes and that
  common mistakes fail with a helpful message;
* in the batch grader (``python -m course_pkg.grade``), the answer is run case by case in a
  sandboxed process (:meth:`Exercise.run_case`) and its plain-data outputs are judged in the
  grader's own process (:meth:`Exercise.judge`).

Everything here is deterministic: each case builds its inputs from a fixed seed. Seeding never leaks
out: :func:`preserved_rng` puts the learner's random states (Python's ``random``, NumPy's, torch's CPU
generator and, when CUDA or MPS is already in use, theirs) back as they were after every case, so
calling ``check`` in a notebook does not change what the learner's next random draw gives.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import math
import random
import re
import signal
import textwrap
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Optional, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

try:  # NumPy ships with torch's usual installs; without it there is no NumPy state to keep
    import numpy as _np
except ImportError:  # pragma: no cover
    _np = None  # type: ignore[assignment]

__all__ = [
    "Case",
    "CaseResult",
    "CheckFailure",
    "CheckResult",
    "Exercise",
    "Mistake",
    "NotAttempted",
    "OpaqueValue",
    "Raised",
    "Shortcut",
    "ValueCodecError",
    "check_in_unit_interval",
    "check_inputs_unchanged",
    "answer_problem",
    "check_rows_sum_to_one",
    "compare_outputs",
    "describe_exception",
    "decode_value",
    "encode_value",
    "fill_parameters",
    "preserved_rng",
    "run_function",
    "run_module",
    "swapped_pair_hint",
]


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block and then put every global random state back as it was before it.

    Kept: Python's ``random``, NumPy's global generator, torch's CPU generator, and the CUDA (and
    MPS) generators when that device was already initialised before the block. CUDA is never
    initialised here; if the block itself initialised it, its generators are reseeded with their
    initial seed afterwards (the state a fresh CUDA context would have had).
    """
    py_state = random.getstate()
    np_state = _np.random.get_state() if _np is not None else None
    cpu_state = torch.random.get_rng_state()
    cuda_was_initialized = torch.cuda.is_initialized()
    cuda_states = torch.cuda.get_rng_state_all() if cuda_was_initialized else None
    mps_state = None
    mps = getattr(torch, "mps", None)
    mps_backend = getattr(torch.backends, "mps", None)
    if mps is not None and mps_backend is not None and mps_backend.is_available():
        with contextlib.suppress(Exception):  # MPS's generator is created lazily
            mps_state = mps.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        if np_state is not None:
            _np.random.set_state(np_state)
        torch.random.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        elif torch.cuda.is_initialized():
            torch.cuda.manual_seed_all(torch.cuda.initial_seed())
        if mps_state is not None:
            with contextlib.suppress(Exception):
                mps.set_rng_state(mps_state)


def _seed(seed: int) -> None:
    """Seed torch's CPU generator only (``torch.manual_seed`` would also queue a CUDA reseed that
    outlives :func:`preserved_rng` when CUDA is not initialised yet)."""
    torch.random.default_generator.manual_seed(seed)


class CheckFailure(AssertionError):
    """Raised by a comparison when the learner's output is not what was expected."""


class NotAttempted(Exception):
    """Raised when the answer still raises ``NotImplementedError`` (the stub)."""


@dataclass(frozen=True)
class Case:
    """One test case of an exercise.

    Args:
        name: short human name, shown in feedback ("all scores equal").
        make_args: builds the positional arguments passed to the answer; called after seeding.
        note: what the case probes, shown when it fails ("rows must sum to one").
        seed: the seed set before ``make_args`` and before running the answer.
    """

    name: str
    make_args: Callable[[], tuple]
    note: str = ""
    seed: int = 0

    def args(self) -> tuple:
        """Build this case's arguments deterministically (the global random states are kept)."""
        with preserved_rng():
            _seed(self.seed)
            return self.make_args()


@dataclass
class CaseResult:
    """The verdict on one case: its name, whether it passed, and the feedback text."""

    name: str
    passed: bool
    message: str = ""


Status = Literal["passed", "failed", "not_attempted", "error"]


@dataclass
class CheckResult:
    """The verdict on one exercise: an overall status plus one :class:`CaseResult` per case."""

    exercise_id: str
    status: Status
    cases: list[CaseResult] = field(default_factory=list)
    message: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def score(self) -> float:
        """Fraction of cases passed, in [0, 1] (0 when not attempted)."""
        if not self.cases:
            return 0.0
        return sum(c.passed for c in self.cases) / len(self.cases)

    def summary(self) -> str:
        """A few lines of feedback for a learner."""
        if self.status == "not_attempted":
            return (f"[ ] {self.exercise_id}: not attempted yet.\n"
                    "    Replace `raise NotImplementedError` with your code, then run this cell again.")
        notes = [f"Note: {n}" for n in self.notes]
        if self.status == "passed":
            return "\n".join([f"[ok] {self.exercise_id}: correct, all {len(self.cases)} cases pass."] + notes)
        if self.status == "error":
            return f"[x] {self.exercise_id}: could not check this answer. {self.message}"
        lines = [f"[x] {self.exercise_id}: {sum(c.passed for c in self.cases)} of {len(self.cases)} cases pass."]
        if self.message:
            lines.append(self.message)
        failed = [c for c in self.cases if not c.passed]
        if len(failed) > 1 and len({c.message for c in failed}) == 1:  # one cause: say it once
            names = ", ".join(f"'{c.name}'" for c in failed)
            lines.append(f"  - cases {names}: " + failed[0].message.replace("\n", "\n    "))
            failed = []
        for c in failed:
            lines.append(f"  - case '{c.name}': " + c.message.replace("\n", "\n    "))
        lines.extend(notes)
        lines.append("Stuck? Call .hint() for a nudge.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CheckResult({self.exercise_id!r}, status={self.status!r}, score={self.score:.2f})"

    def _ipython_display_(self) -> None:
        """Show nothing when it ends a notebook cell: ``check`` has already printed the feedback."""


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer, recorded with the exercise.

    Args:
        answer: the wrong answer (a function or a class, like a learner's).
        expect: a fragment the checks' own feedback must contain for it (proved by the tests).
        why: what the mistake is, in a few words ("forgets the ReLU").
        note: the advice shown to a learner whose answer behaves like this mistake on every case
            (see :meth:`Exercise.diagnose`; defaults to ``why``). This is how feedback is chosen
            per mistake rather than per case.
    """

    answer: Any
    expect: str
    why: str = ""
    note: str = ""

    @property
    def advice(self) -> str:
        return self.note or self.why


@dataclass(frozen=True)
class Shortcut:
    """A library call the exercise text asks the learner not to use (``torch.softmax`` in an
    exercise that builds a softmax). Using it costs nothing (the answer is still judged by its
    outputs) but the feedback says so in a note.

    Args:
        names: the called functions' ``__name__`` values that count (``"softmax"``).
        note: the note shown when one of them is called.
        modules: when given, only functions whose ``__module__`` is one of these count
            (``("torch.nn.functional",)`` for ``F.unfold`` but not ``Tensor.unfold``).
    """

    names: tuple[str, ...]
    note: str
    modules: Optional[tuple[str, ...]] = None

    def matches(self, func: Any) -> bool:
        if getattr(func, "__name__", None) not in self.names:
            return False
        return self.modules is None or getattr(func, "__module__", None) in self.modules


class _CallRecorder(TorchFunctionMode):
    """Notes which :class:`Shortcut` functions the code run under it calls."""

    def __init__(self, shortcuts: Sequence[Shortcut]) -> None:
        super().__init__()
        self.shortcuts = shortcuts
        self.used: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Optional[dict] = None) -> Any:
        for sc in self.shortcuts:
            if sc.note not in self.used and sc.matches(func):
                self.used.append(sc.note)
        return func(*args, **(kwargs or {}))


# ----------------------------------------------------------------------------------------------
# Comparing outputs
# ----------------------------------------------------------------------------------------------
def _fmt_shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ("," if t.dim() == 1 else "") + ")"


def _fmt_value(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _fmt_number(v: Any, rtol: float = 1e-4) -> str:
    """A number as feedback prints it: an int as is, a float rounded to the significant digits the
    tolerance can tell apart (``0.35``, not float32's ``0.3499999940395355``)."""
    if isinstance(v, float) and math.isfinite(v):
        digits = max(4, math.ceil(-math.log10(rtol)) + 2) if rtol > 0 else 10
        return repr(float(f"{v:.{digits}g}"))
    return repr(v)


def _preview(t: torch.Tensor, n: int = 6) -> str:
    """The first ``n`` values of a tensor, flattened (used where no position stands out)."""
    flat = t.detach().flatten()[:n].tolist()
    more = ", ..." if t.numel() > n else ""
    return "[" + ", ".join(_fmt_value(v) for v in flat) + more + "]"


def _index(flat_index: int, shape: Sequence[int]) -> list[int]:
    """The multi-index of a position in a row-major flattening of ``shape``."""
    idx = []
    for size in reversed(list(shape)):
        idx.append(flat_index % size)
        flat_index //= size
    return idx[::-1]


def _around(got: torch.Tensor, expected: torch.Tensor, flat_index: int, n: int = 6) -> str:
    """Two aligned previews of ``got`` and ``expected`` around one position: up to ``n`` values of
    the last dimension's row that holds it, with the index range they cover."""
    shape = list(expected.shape)
    if not shape:
        return f"got      {_fmt_value(got.item())}\nexpected {_fmt_value(expected.item())}"
    idx = _index(flat_index, shape)
    width = shape[-1]
    j = idx[-1]
    lo = max(0, min(j - n // 2, width - n))
    hi = min(width, lo + n)
    row = flat_index - j
    g = got.detach().flatten()[row + lo:row + hi].tolist()
    e = expected.detach().flatten()[row + lo:row + hi].tolist()
    digits = 4  # enough significant digits for the difference at flat_index to show
    gi, ei = g[j - lo], e[j - lo]
    if isinstance(gi, float) and isinstance(ei, float) and math.isfinite(gi) and math.isfinite(ei) and gi != ei:
        digits = min(10, max(4, 2 + math.ceil(math.log10(max(abs(gi), abs(ei)) / abs(gi - ei)))))
    head = "[..., " if lo > 0 else "["
    tail = ", ...]" if hi < width else "]"
    prefix = "".join(f"{i}, " for i in idx[:-1])
    where = f"index [{prefix}{lo}] to [{prefix}{hi - 1}]" if hi - lo > 1 else f"index {idx}"
    return (f"around it ({where}):\n"
            f"got      {head}{', '.join(_fmt_value(v, digits) for v in g)}{tail}\n"
            f"expected {head}{', '.join(_fmt_value(v, digits) for v in e)}{tail}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def compare_outputs(got: Any, expected: Any, *, rtol: float = 1e-4, atol: float = 1e-5,
                    where: str = "output", values: bool = True) -> None:
    """Compare a learner's output with the expected one, raising :class:`CheckFailure` with a
    specific message (type, length, shape, dtype or values, with the tolerance used).

    Tensors are compared by shape, then dtype kind (floating vs integer vs bool), then values
    with ``torch.allclose(rtol, atol)``; the message shows the values around the largest
    difference, with its index. Tuples, lists and dicts are compared item by item. An ``int``
    expected must come back as an ``int`` (``196.0`` is not accepted for ``196``).

    With ``values=False`` only the structure is compared (types, lengths, keys, shapes, dtype
    kinds), never the values: the judge does that first, so a wrongly structured output is told
    so before any property of its values is checked.
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            raise CheckFailure(f"{where} should be a torch.Tensor but is a {type(got).__name__}.")
        if got.shape != expected.shape:
            raise CheckFailure(f"{where} has shape {_fmt_shape(got)} but the expected shape is "
                               f"{_fmt_shape(expected)}.")
        if got.dtype.is_floating_point != expected.dtype.is_floating_point or (got.dtype == torch.bool) != (
            expected.dtype == torch.bool
        ):
            raise CheckFailure(f"{where} has dtype {got.dtype} but a {expected.dtype} is expected.")
        if not values:
            return
        g = got.detach().to("cpu")
        e = expected.detach().to("cpu")
        if e.dtype.is_floating_point:
            g64, e64 = g.double(), e.double()
            if not torch.isfinite(g64).all() and torch.isfinite(e64).all():
                bad = int((~torch.isfinite(g64)).flatten().nonzero()[0])
                raise CheckFailure(f"{where} contains NaN or inf values, the first at index "
                                   f"{_index(bad, e.shape)}; {_around(g, e, bad)}\n"
                                   "Look for a division by zero or an exp() that overflows.")
            if not torch.allclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True):
                diff = (g64 - e64).abs()
                i = int(torch.nan_to_num(diff, nan=math.inf).flatten().argmax())
                raise CheckFailure(
                    f"{where} values differ from the expected ones (tolerance rtol={rtol:g}, atol={atol:g}).\n"
                    f"largest difference {float(diff.flatten()[i]):.3g} at index {_index(i, e.shape)}, "
                    + _around(g, e, i)
                )
        elif not torch.equal(g, e):
            i = int((g != e).flatten().nonzero()[0])
            raise CheckFailure(f"{where} values differ, the first at index {_index(i, e.shape)}, "
                               + _around(g, e, i))
        return
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            raise CheckFailure(f"{where} should be a {type(expected).__name__} of {len(expected)} items "
                               f"but is a {type(got).__name__}.")
        if len(got) != len(expected):
            raise CheckFailure(f"{where} should be a {type(expected).__name__} of {len(expected)} items "
                               f"but has {len(got)}.")
        for i, (g, e) in enumerate(zip(got, expected)):
            compare_outputs(g, e, rtol=rtol, atol=atol, where=f"{where}[{i}]", values=values)
        return
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            raise CheckFailure(f"{where} should be a dict but is a {type(got).__name__}.")
        missing = sorted(set(expected) - set(got), key=repr)
        extra = sorted(set(got) - set(expected), key=repr)
        if missing or extra:
            raise CheckFailure(f"{where} keys differ: missing {missing}, unexpected {extra}.")
        for k in expected:
            compare_outputs(got[k], expected[k], rtol=rtol, atol=atol, where=f"{where}[{k!r}]", values=values)
        return
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if not values:
            if type(got) is not type(expected):
                raise CheckFailure(f"{where} should be {expected!r} (a {type(expected).__name__}) but is a "
                                   f"{type(got).__name__}.")
            return
        if got != expected:
            raise CheckFailure(f"{where} is {got!r} but {expected!r} is expected.")
        return
    if isinstance(expected, (int, float)):
        # One rule for numbers: where the exercise returns a number it is a plain Python number. An int
        # is accepted where a float is expected, never a float where an int is (a count); a tensor,
        # even a 0-d one, is not a Python number (call .item()).
        kind = "int" if _is_int(expected) else "float"
        if isinstance(got, torch.Tensor):
            raise CheckFailure(f"{where} is a tensor ({_short(got)}) but a Python {kind} is expected: call "
                               ".item() on it. Numbers the exercises return are plain Python numbers, never "
                               "tensors (an int is fine where a float is expected, not the other way round).")
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise CheckFailure(f"{where} should be a Python {kind} but is a {type(got).__name__}"
                               + (": convert it with float(...) or .item()." if hasattr(got, "item") else "."))
        if _is_int(expected) and not _is_int(got):
            raise CheckFailure(f"{where} is {got!r}, a {type(got).__name__}, but an integer (int) is expected: "
                               "use integer division // rather than /, which always gives a float.")
        if not values:
            return
        if not math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol):
            raise CheckFailure(f"{where} is {_fmt_number(got, rtol)} but {_fmt_number(expected, rtol)} is expected.")
        return
    if values and got != expected:
        raise CheckFailure(f"{where} is {got!r} but {expected!r} is expected.")


def check_rows_sum_to_one(w: object, what: str, advice: str) -> None:
    """Property check for weights: each row (last dimension) of a finite float tensor sums to one.

    Raises :class:`CheckFailure` saying ``"{what}, but row [i] sums to s ... {advice}"``, naming the rows that
    are off; anything that is not a finite float tensor is left to the comparison, which explains it better."""
    if isinstance(w, torch.Tensor) and w.is_floating_point() and torch.isfinite(w).all():
        sums = w.sum(dim=-1)
        off = ((sums - 1).abs() > 1e-4).flatten().nonzero().flatten()
        if len(off):  # show the rows that are off, not the first rows (which may be fine)
            shown = ", ".join(f"row {_index(int(i), sums.shape)} sums to {sums.flatten()[i].item():.4g}"
                              for i in off[:3])
            more = f" ({len(off)} of {sums.numel()} rows are off)" if sums.numel() > 1 else ""
            raise CheckFailure(f"{what}, but {shown}{more}. {advice}")


def check_in_unit_interval(out: object, what: str, advice: str, *, open_interval: bool = True) -> None:
    """Property check for gates: every value of a finite float tensor lies in (0, 1) (or [0, 1])."""
    if isinstance(out, torch.Tensor) and out.is_floating_point() and torch.isfinite(out).all():
        outside = ((out <= 0) | (out >= 1)) if open_interval else ((out < 0) | (out > 1))
        if outside.any():
            raise CheckFailure(f"{what} must lie in (0, 1), but the values range from "
                               f"{out.min().item():.3g} to {out.max().item():.3g}. {advice}")


def swapped_pair_hint(reference: Callable[..., Any], first: str = "output",
                      second: str = "weights") -> Callable[[Any, tuple], None]:
    """A shape hint for exercises that return a pair ``(first, second)``: it raises
    :class:`CheckFailure` naming the order when the learner returned ``(second, first)``, whatever
    the shapes (with square inputs both orders have the same shapes)."""
    def hint(out: Any, args: tuple) -> None:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return
        expected = reference(*args)
        try:  # an answer in the right order that happens to equal the swapped pair is not told off
            compare_outputs(expected[0], expected[1], where="")
            return
        except CheckFailure:
            pass
        try:
            compare_outputs(out[0], expected[1], where="")
            compare_outputs(out[1], expected[0], where="")
        except CheckFailure:
            return
        raise CheckFailure(f"your function returns ({second}, {first}) but the order is ({first}, {second}): "
                           f"return {first}, {second}.")
    return hint


# ----------------------------------------------------------------------------------------------
# Running answers
# ----------------------------------------------------------------------------------------------
def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a learner's __repr__ may raise anything
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def answer_problem(answer: Any, kind: str, name: str) -> Optional[str]:
    """Why ``answer`` cannot be an answer of this kind, or None when it can.

    A ``"function"`` exercise needs a callable that is not a class; a ``"module"`` exercise needs
    an ``nn.Module`` subclass (the class itself, which the checker builds for every case). The
    message names what was passed and what is expected: ``None``, a string (the name in quotes),
    a tensor (the result of calling the function), an instance of the module, a function for a
    module exercise, or a class for a function exercise.
    """
    what = "function" if kind == "function" else "class (an nn.Module subclass)"
    call = f".check({name})"
    if answer is None:
        return (f"check() needs your {what} `{name}` itself as the answer, but got None. Pass it without "
                f"calling it: "
                f"`{call}`. If `{name}` is None, run the cell that defines it again (and check that no "
                f"later line assigns `{name} = ...`).")
    if isinstance(answer, str):
        return (f"check() got the string {_short(answer)} as the answer, but needs your {what} itself: "
                f"write `{call}` without quotes.")
    if kind == "module":
        if isinstance(answer, nn.Module):
            cls = type(answer).__name__
            return (f"check() got a module already built (an instance of {cls}), but needs the class "
                    f"itself: write `.check({cls})`, not `.check({cls}(...))`; the checker builds it with "
                    "each case's arguments.")
        if inspect.isclass(answer):
            if not issubclass(answer, nn.Module):
                return (f"check() got the class {answer.__name__}, which is not an nn.Module subclass: declare it as "
                        f"`class {name}(nn.Module):` and call super().__init__() first in __init__.")
            return None
        kind_name = "function" if callable(answer) else type(answer).__name__
        label = getattr(answer, "__name__", None) if callable(answer) else _short(answer)
        return (f"check() needs the class `{name}` (an nn.Module subclass with __init__ and forward), but "
                f"got a {kind_name} {label}: write `class {name}(nn.Module): ...` and pass the class.")
    if inspect.isclass(answer):
        return (f"check() needs your function `{name}`, but got the class {answer.__name__}: write "
                f"`def {name}(...):` and pass that function.")
    if not callable(answer):
        hint = (" It looks like the result of calling the function: pass the function itself, "
                f"`{call}`.") if isinstance(answer, (torch.Tensor, tuple, list, int, float)) else ""
        return (f"check() needs your function `{name}`, but got a {type(answer).__name__} "
                f"({_short(answer)}).{hint}")
    return None


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` for an exception raised by a learner's code, safe whatever it is
    (``SystemExit`` and a ``KeyboardInterrupt`` raised by the code itself are explained)."""
    name = type(exc).__name__
    if isinstance(exc, SystemExit):
        return (f"SystemExit: your code called sys.exit({_short(exc.code)}) (or exit()); an answer must "
                "return its result, not stop Python")
    if isinstance(exc, KeyboardInterrupt):
        return ("KeyboardInterrupt: your code raised KeyboardInterrupt itself (this was not a Ctrl-C); "
                "an answer must return its result")
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a learner's exception class may raise anything
        text = "(the exception's message could not be printed)"
    return f"{name}: {text}"[:4000]


@contextlib.contextmanager
def _watch_interrupts() -> Iterator[Optional[list[bool]]]:
    """Note whether a real Ctrl-C (SIGINT) arrives while the block runs.

    Yields a one-item list that becomes ``[True]`` when the signal arrived (the previous handler
    still runs, so the ``KeyboardInterrupt`` is raised as usual), or None where the handler cannot
    be installed (not the main thread, or SIGINT ignored): then every ``KeyboardInterrupt`` counts
    as a real one."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    try:
        previous = signal.getsignal(signal.SIGINT)
    except (ValueError, OSError):  # pragma: no cover - platforms without SIGINT
        yield None
        return
    if previous in (signal.SIG_IGN, None):
        yield None
        return
    arrived = [False]

    def handler(signum: int, frame: Any) -> None:
        arrived[0] = True
        if callable(previous):
            previous(signum, frame)
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # pragma: no cover
        yield None
        return
    try:
        yield arrived
    finally:
        signal.signal(signal.SIGINT, previous)


def _snapshot(value: Any) -> Any:
    """A copy of a case's arguments that an answer cannot change (tensors cloned, containers copied)."""
    if isinstance(value, torch.Tensor):
        return torch.Tensor.clone(torch.Tensor.detach(value))
    if isinstance(value, (tuple, list)):
        return [_snapshot(v) for v in value]
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    return value


def _changed(before: Any, after: Any, path: str) -> Optional[str]:
    """The path of the first tensor of ``after`` whose shape or values differ from ``before``, or None."""
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or after.shape != before.shape or after.dtype != before.dtype:
            return path
        a = torch.Tensor.detach(after)
        same = a == before
        if before.is_floating_point() or before.is_complex():
            same = same | (torch.isnan(a) & torch.isnan(before))
        return None if bool(same.all()) else path
    if isinstance(before, list):
        if not isinstance(after, (tuple, list)) or len(after) != len(before):
            return path
        for i, (b, a) in enumerate(zip(before, after)):
            where = _changed(b, a, f"{path}[{i}]")
            if where:
                return where
        return None
    if isinstance(before, dict):
        if not isinstance(after, dict) or set(after) != set(before):
            return path
        for k in before:
            where = _changed(before[k], after[k], f"{path}[{k!r}]")
            if where:
                return where
    return None


def _parameter_names(fn: Any, skip_self: bool = False) -> list[str]:
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []
    return names[1:] if skip_self and names[:1] == ["self"] else names


def check_inputs_unchanged(answer: Any, kind: str, before: Any, args: tuple) -> None:
    """Raise :class:`CheckFailure` when running ``answer`` changed its arguments in place.

    ``before`` is :func:`_snapshot` of ``args`` taken before the call. The message names the
    argument by the answer's own parameter name (``scores``, ``init['query']``)."""
    if kind == "module":
        ctor, inputs = args
        where = _changed(before[1], inputs, "")
        if where is None:
            return
        names = _parameter_names(getattr(answer, "forward", None), skip_self=True)
        i = int(where[1:].split("]")[0]) if where.startswith("[") else 0
        name = (names[i] if i < len(names) else f"input {i + 1}") + where[len(f"[{i}]"):]
        raise CheckFailure(f"forward changed its input `{name}` in place (its values are not the same after the "
                           "call): an augmented assignment such as x *= w, or an operation ending in _ (mul_, "
                           "relu_), writes into the caller's tensor, which the network still needs. Return a new "
                           "tensor instead: return x * w.")
    where = _changed(before, args, "")
    if where is None:
        return
    names = _parameter_names(answer)
    i = int(where[1:].split("]")[0])
    name = (names[i] if i < len(names) else f"argument {i + 1}") + where[len(f"[{i}]"):]
    raise CheckFailure(f"your function changed its input `{name}` in place (its values are not the same after the "
                       "call). An augmented assignment (x -= ..., x /= ...), an indexed assignment (x[...] = ...), "
                       "an operation ending in _ (exp_, masked_fill_, requires_grad_ then an optimizer step) "
                       "writes into the caller's tensor. Compute a new tensor (x = x - m), or work on a copy "
                       "(x.clone()).")


def run_function(answer: Callable[..., Any], args: tuple) -> Any:
    """Call a function answer on a case's arguments."""
    return answer(*args)


def fill_parameters(module: nn.Module, seed: int = 0, scale: float = 0.5) -> None:
    """Overwrite every parameter and floating buffer with values that depend only on
    ``(seed, name, shape)``, so two modules with the same parameter names and shapes compute
    the same function whatever their initialisation. Running statistics of BatchNorm layers are
    set to positive values."""
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.dtype.is_floating_point:
                continue
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            values = torch.randn(t.shape, generator=g, dtype=torch.float64) * scale
            if name.endswith("running_var"):
                values = values.abs() + 0.5
            t.copy_(values.to(t.dtype))


def parameter_shapes(module: nn.Module) -> dict[str, list[int]]:
    """``{name: shape}`` of a module's parameters, as plain data."""
    return {n: list(p.shape) for n, p in module.named_parameters()}


def run_module(answer: type, args: tuple) -> dict[str, Any]:
    """Build a module answer from ``args = (constructor_kwargs, inputs)``, give it the standard
    deterministic parameters (:func:`fill_parameters`), and run it in eval mode.

    Returns plain data: ``{"parameters": {name: shape}, "output": forward(*inputs)}``."""
    ctor, inputs = args
    module = answer(**ctor)
    if not isinstance(module, nn.Module):
        raise CheckFailure(f"{getattr(answer, '__name__', answer)!s}(...) should build an nn.Module "
                           f"but built a {type(module).__name__}.")
    fill_parameters(module)
    module.eval()
    with torch.no_grad():
        out = module(*inputs)
    return {"parameters": parameter_shapes(module), "output": out}


def _compare_module_output(got: Any, expected: Any, rtol: float, atol: float, values: bool = True) -> None:
    if isinstance(expected, dict) and set(expected) == {"parameters", "output"} and isinstance(got, dict):
        gp, ep = got.get("parameters", {}), expected["parameters"]
        if gp != ep:
            missing = sorted(set(ep) - set(gp))
            extra = sorted(set(gp) - set(ep))
            wrong = sorted(k for k in set(ep) & set(gp) if ep[k] != gp[k])
            parts = []
            if missing:
                parts.append(f"missing parameters {missing}")
            if extra:
                parts.append(f"unexpected parameters {extra}")
            if wrong:
                parts.append("wrong shapes " + ", ".join(f"{k}: got {gp[k]}, expected {ep[k]}" for k in wrong))
            raise CheckFailure("the module's parameters do not match the specification: " + "; ".join(parts)
                               + ". Use the layer names and sizes given in the exercise.")
        compare_outputs(got.get("output"), expected["output"], rtol=rtol, atol=atol, where="forward output",
                        values=values)
        return
    compare_outputs(got, expected, rtol=rtol, atol=atol, values=values)


# ----------------------------------------------------------------------------------------------
# The exercise
# ----------------------------------------------------------------------------------------------
class Raised:
    """Stands for the outcome of code that raised: ``text`` is :func:`describe_exception`'s
    ``"Type: message"`` (two raises match when their texts do)."""

    def __init__(self, text: str = "") -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raised({self.text!r})"


NO_OUTPUT = Raised()  # a recorded mistake raised on this case (the text is kept per case)
RAISED = NO_OUTPUT  # the same marker, for a learner's raise whose message is unknown
@dataclass
class Exercise:
    """One exercise: what to write, how it is checked, hints and a reference solution.

    Args:
        id: ``"chNN.name"``; the part after the dot is the name the learner's function or class
            must have (the grader looks it up by that name).
        title: a short title.
        reference: the reference solution (a function, or an ``nn.Module`` subclass).
        cases: the test cases.
        hints: hints from gentle to explicit.
        kind: ``"function"`` (called on each case's arguments) or ``"module"`` (built and run by
            :func:`run_module`; each case's arguments are ``(constructor_kwargs, inputs)``).
        rtol, atol: tolerances for comparing floating outputs.
        properties: extra checks ``f(output, args)`` that raise :class:`CheckFailure`, run on the
            learner's output once its structure is right and before the comparison of values
            (e.g. "rows sum to one"), for clearer feedback.
        mistakes: plausible wrong answers with the feedback they must get (proved by the tests).
            When a learner's answer behaves like a mistake on every case (:meth:`diagnose`),
            the feedback shows that mistake's advice instead of the case notes.
        shape_hints: checks ``f(output, args)`` run first, before the generic structure check,
            where a wrong structure has a known cause worth naming ("the patches should be
            along dim 1: transpose it").

        compare_values: ``False`` for answers whose values may rightly differ from the
            reference's (a training run from the learner's own initialisation): the values are then
            judged by ``properties`` alone, the structure is still compared, and a recorded mistake
            is still recognised by its output.
        shortcuts: library calls the exercise text rules out (:class:`Shortcut`): an answer that
            uses one is judged as usual, and the feedback adds a note saying so.

    The order of the checks on one case: ``shape_hints``, the structure (types, lengths, shapes
    and dtype kinds, :func:`compare_outputs` with ``values=False``), ``properties``, the values.
    """

    id: str
    title: str
    reference: Any
    cases: Sequence[Case]
    hints: Sequence[str] = ()
    kind: Literal["function", "module"] = "function"
    rtol: float = 1e-4
    atol: float = 1e-5
    properties: Sequence[Callable[[Any, tuple], None]] = ()
    mistakes: Sequence[Mistake] = ()
    _expected: dict = field(default_factory=dict, repr=False, compare=False)
    shape_hints: Sequence[Callable[[Any, tuple], None]] = ()
    _mistake_outputs: dict = field(default_factory=dict, repr=False, compare=False)
    _hints_shown: int = field(default=0, repr=False, compare=False)
    compare_values: bool = True
    shortcuts: Sequence[Shortcut] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("function", "module"):
            raise ValueError(f"Exercise {self.id!r}: kind must be 'function' or 'module', got {self.kind!r}")
        names = [c.name for c in self.cases]
        if len(set(names)) != len(names):
            raise ValueError(f"Exercise {self.id!r}: case names must be unique (outputs are cached by name), "
                             f"got {names}")

    @property
    def name(self) -> str:
        """The name the answer must have in the learner's notebook or file."""
        return self.id.split(".", 1)[1]

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]

    # -- the pieces the grader uses ------------------------------------------------------------
    def run_case(self, answer: Any, case: Case, *, used: Optional[list[str]] = None) -> Any:
        """Run ``answer`` on one case and return its raw output (may raise anything).

        Raises :class:`NotAttempted` when the answer raises ``NotImplementedError``, and
        :class:`CheckFailure` (saying what was passed and what is expected) when ``answer`` is
        not a function (``kind="function"``) or an ``nn.Module`` class (``kind="module"``), or
        when it changed its inputs in place (:func:`check_inputs_unchanged`). The global random
        states are the same afterwards (:func:`preserved_rng`). With ``used``, the notes of the
        exercise's :class:`Shortcut` functions the answer called are appended to it."""
        problem = answer_problem(answer, self.kind, self.name)
        if problem:
            raise CheckFailure(problem)
        args = case.args()
        before = _snapshot(args)
        recorder = _CallRecorder(self.shortcuts) if used is not None and self.shortcuts else None
        with preserved_rng():
            _seed(case.seed)
            try:
                with recorder if recorder is not None else contextlib.nullcontext():
                    if self.kind == "module":
                        out = run_module(answer, args)
                    else:
                        out = run_function(answer, args)
            except NotImplementedError as exc:
                raise NotAttempted(str(exc)) from None
            finally:
                if recorder is not None and used is not None:
                    used.extend(n for n in recorder.used if n not in used)
        check_inputs_unchanged(answer, self.kind, before, args)
        return out

    def expected(self, case: Case) -> Any:
        """The reference solution's output on a case (computed once, then cached)."""
        if case.name not in self._expected:
            self._expected[case.name] = self.run_case(self.reference, case)
        return self._expected[case.name]

    def _compare(self, got: Any, expected: Any, values: bool = True) -> None:
        if self.kind == "module":
            _compare_module_output(got, expected, self.rtol, self.atol, values=values)
        else:
            compare_outputs(got, expected, rtol=self.rtol, atol=self.atol, values=values)

    def mistake_output(self, index: int, case: Case) -> Any:
        """Mistake ``index``'s output on a case (computed once, then cached); a :class:`Raised`
        when that mistake raises on the case."""
        key = (index, case.name)
        if key not in self._mistake_outputs:
            try:
                with warnings.catch_warnings():  # a recorded mistake's warnings are not the learner's
                    warnings.simplefilter("ignore")
                    self._mistake_outputs[key] = self.run_case(self.mistakes[index].answer, case)
            except Exception as exc:  # noqa: BLE001 - a recorded mistake may well crash on a case
                self._mistake_outputs[key] = Raised(describe_exception(exc))
        return self._mistake_outputs[key]

    def _mistake_passes(self, index: int, case: Case) -> bool:
        key = ("passes", index, case.name)
        if key not in self._mistake_outputs:
            out = self.mistake_output(index, case)
            self._mistake_outputs[key] = not isinstance(out, Raised) and self.judge(case, out).passed
        return bool(self._mistake_outputs[key])

    def _behaves_like(self, index: int, results: Sequence[CaseResult], outputs: dict[str, Any]) -> bool:
        """Whether the learner's answer behaves like mistake ``index`` on every case: the same
        verdict on the cases it passes, and on the cases it fails the same output (within the
        tolerances) or the same exception (type and message)."""
        cases = {c.name: c for c in self.cases}
        compared = False
        for r in results:
            case = cases.get(r.name)
            if case is None or r.name not in outputs:
                return False  # a case without a known output (not run, not readable): no claim
            got = outputs[r.name]
            if r.passed:
                if not self._mistake_passes(index, case):
                    return False
                continue
            mine = self.mistake_output(index, case)
            if isinstance(got, Raised) or isinstance(mine, Raised):
                if not (isinstance(got, Raised) and isinstance(mine, Raised) and got.text
                        and got.text == mine.text):
                    return False
                compared = True
                continue
            try:
                self._compare(got, mine)
            except Exception:  # noqa: BLE001 - no match (CheckFailure) or an odd output
                return False
            compared = True
        return compared

    def diagnose(self, results: Sequence[CaseResult], outputs: dict[str, Any]) -> Optional[Mistake]:
        """The recorded mistake the learner's answer behaves like on every case, or None.

        ``results`` are the cases' verdicts; ``outputs`` maps a case's name to the learner's output
        on it, or to a :class:`Raised` where the learner's code raised. A single case is not enough:
        degenerate cases collide (a sum and a max agree on an image with one bright pixel), so a
        mistake is claimed only when it agrees with the answer on all of them."""
        if all(r.passed for r in results):
            return None
        for i, mistake in enumerate(self.mistakes):
            try:
                with preserved_rng():
                    if self._behaves_like(i, results, outputs):
                        return mistake
            except Exception:  # noqa: BLE001 - advice is optional; the verdict stands
                continue
        return None

    def explain(self, results: list[CaseResult], outputs: dict[str, Any]) -> list[CaseResult]:
        """The verdicts with the advice of the mistake :meth:`diagnose` finds in place of the case
        notes of the failing cases (unchanged when none is found)."""
        mistake = self.diagnose(results, outputs)
        if mistake is None:
            return results
        notes = {c.name: f"\nThis case checks: {c.note}" for c in self.cases if c.note}
        out = []
        for r in results:
            if r.passed or r.name not in outputs:
                out.append(r)
                continue
            msg = r.message
            suffix = notes.get(r.name, "")
            if suffix and msg.endswith(suffix):
                msg = msg[:-len(suffix)]
            out.append(CaseResult(r.name, False, f"{msg}\nThis looks like a common mistake: {mistake.advice}"))
        return out

    def judge(self, case: Case, got: Any) -> CaseResult:
        """Decide one case from the learner's output alone (no learner code runs here).

        The checks run in this order: ``shape_hints``, the structure, ``properties``, the values.
        A failure's message ends with the case's note; :meth:`explain`, which sees every case,
        replaces it with a recorded mistake's advice where the answer behaves like that mistake."""
        try:
            with preserved_rng():
                expected = self.expected(case)
                args = case.args()
                for hint in self.shape_hints:
                    hint(got, args)
                self._compare(got, expected, values=False)
                for prop in self.properties:
                    prop(got, args)
                if self.compare_values:
                    self._compare(got, expected)
        except CheckFailure as exc:
            msg = str(exc)
            if case.note:
                msg += f"\nThis case checks: {case.note}"
            return CaseResult(case.name, False, msg)
        except Exception as exc:  # a malformed output must not crash the judge
            return CaseResult(case.name, False, f"the output could not be compared ({describe_exception(exc)}).")
        return CaseResult(case.name, True)

    def test(self, answer: Any, *, mistake_notes: bool = True) -> CheckResult:
        """Run every case on ``answer`` and judge it; never raises for a learner's error.

        Anything the answer raises, ``SystemExit`` and a ``KeyboardInterrupt`` it raises itself
        included, is reported as a failed case. One exception is deliberate: a real Ctrl-C (a
        SIGINT arriving while the checks run, in the main thread) still interrupts, so a learner
        can stop an answer that never returns; the global random states are restored either way.
        An answer of the wrong kind (None, a string, an instance instead of a class...) fails every
        case with one message saying what was passed and what is expected (the grader's verdict on
        the same answer is the same, since :meth:`run_case` raises that :class:`CheckFailure`).
        """
        results: list[CaseResult] = []
        outputs: dict[str, Any] = {}
        used: list[str] = []
        with preserved_rng(), _watch_interrupts() as interrupted:
            for case in self.cases:
                try:
                    got = self.run_case(answer, case, used=used)
                except NotAttempted:
                    return CheckResult(self.id, "not_attempted", [CaseResult(c.name, False, "not attempted")
                                                                   for c in self.cases])
                except CheckFailure as exc:
                    results.append(CaseResult(case.name, False, str(exc)))
                    continue
                except BaseException as exc:  # noqa: BLE001 - SystemExit etc. are the learner's errors
                    if isinstance(exc, KeyboardInterrupt) and (interrupted is None or interrupted[0]):
                        raise  # a real Ctrl-C: the learner wants to stop
                    if isinstance(exc, GeneratorExit):
                        raise
                    results.append(CaseResult(case.name, False,
                                              f"your code raised {describe_exception(exc)}" +
                                              (f"\nThis case checks: {case.note}" if case.note else "")))
                    outputs[case.name] = Raised(describe_exception(exc))
                    continue
                outputs[case.name] = got
                results.append(self.judge(case, got))
            if mistake_notes:
                results = self.explain(results, outputs)
        status: Status = "passed" if all(r.passed for r in results) else "failed"
        return CheckResult(self.id, status, results, notes=used)

    # -- the pieces the learner uses -----------------------------------------------------------
    def check(self, answer: Any) -> CheckResult:
        """Check ``answer`` and print feedback. Never raises for anything the answer does: an
        unattempted stub prints "not attempted yet", an answer that raises (even ``SystemExit``)
        fails its case, and a wrong kind of answer (None, a string, an instance...) is explained.
        Only a real Ctrl-C by the learner interrupts it (see :meth:`test`)."""
        result = self.test(answer)
        print(result.summary())
        note = self._cell_rule_note(answer)
        if note:
            print(note)
        return result

    def _cell_rule_note(self, answer: Any) -> str:
        """What the answer reads from outside the exercise cells, which the grader would not have
        (:mod:`course_pkg.exercises.cell_rule`); '' when nothing. Imported here, not at the top:
        the grader's sandbox loads this file on its own, outside the package."""
        from .cell_rule import cell_rule_note, names_outside_the_rule
        from .registry import all_exercises

        try:
            names = [ex.name for ex in all_exercises(self.chapter)]
            return cell_rule_note(names_outside_the_rule(answer, names))
        except Exception:  # noqa: BLE001 - a note that cannot be worked out is left out; check never raises
            return ""

    def hint(self, n: Optional[int] = None) -> None:
        """Print one hint. Hints go from gentle to explicit; the last one gives the answer away.

        ``hint()`` prints the next hint not yet shown for this exercise, one per call, and says
        how many remain; it never shows the last hint by itself, but says how to ask for it.
        ``hint(n)`` prints hint ``n`` (1-based), the last one included.

        Raises:
            TypeError: ``n`` is not an integer (``hint('1')``).
            ValueError: ``n`` is not between 1 and the number of hints.
        """
        total = len(self.hints)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool)):
            raise TypeError(f"hint(n): n must be an integer from 1 to {total} (or left out for the next hint), "
                            f"got {n!r} of type {type(n).__name__}")
        if not total:
            print(f"No hints for {self.id}; .solution() shows the answer.")
            return
        if n is not None and not 1 <= n <= total:
            raise ValueError(f"hint(n): n must be from 1 to {total} ({self.id} has {total} hint"
                             f"{'s' if total > 1 else ''}), got {n}")
        if n is None:
            if self._hints_shown >= total - 1:
                print(f"No gentler hint left for {self.id}: hint {total}/{total} gives the answer away. "
                      f"Call .hint({total}) to see it, or .solution() for the full solution.")
                return
            n = self._hints_shown + 1
        self._hints_shown = max(self._hints_shown, n)
        left = total - self._hints_shown
        if n == total:
            tail = " (the last hint: it gives the answer away)"
        elif left == 1:
            tail = f"\n1 hint left, which gives the answer away: .hint({total})."
        else:
            tail = f"\n{left} hints left; call .hint() again for the next one."
        print(f"Hint {n}/{total}: {self.hints[n - 1]}{tail}")

    def solution_source(self) -> str:
        """The reference solution's source code."""
        return textwrap.dedent(inspect.getsource(self.reference))

    def solution(self) -> None:
        """Show the reference solution (as highlighted code in Jupyter, plain text elsewhere)."""
        src = self.solution_source()
        try:
            from IPython import get_ipython
            from IPython.display import Markdown, display

            if get_ipython() is not None:
                display(Markdown(f"Solution to **{self.id}**:\n\n```python\n{src}```"))
                return
        except ImportError:  # pragma: no cover - IPython ships with Jupyter
            pass
        print(f"Solution to {self.id}:\n\n{src}")

    def stub(self) -> Any:
        """An unattempted answer, as a learner first sees it (raises ``NotImplementedError``)."""
        if self.kind == "module":
            class Stub(nn.Module):
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    super().__init__()
                    raise NotImplementedError

            Stub.__name__ = self.name
            return Stub

        def stub(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

        stub.__name__ = self.name
        return stub


# ----------------------------------------------------------------------------------------------
# Plain-data form of inputs and outputs (used by the batch grader)
# ----------------------------------------------------------------------------------------------
class ValueCodecError(ValueError):
    """Raised when a value cannot be turned into plain data, or plain data is malformed."""


_CODEC_DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in ("float16", "bfloat16", "float32", "float64", "complex64", "complex128",
                 "uint8", "int8", "int16", "int32", "int64", "bool")
}
_CODEC_MAX_DEPTH = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class OpaqueValue:
    """Stands for a value the plain-data form cannot carry (a NumPy array, a module...). Its
    class is named after the original type, so feedback reads "... but is a ndarray"; it equals
    nothing but itself."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_OPAQUE_TYPES: dict[str, type] = {}


def _opaque(type_name: str, text: str) -> OpaqueValue:
    name = type_name if _IDENTIFIER.fullmatch(type_name) else "object"
    cls = _OPAQUE_TYPES.get(name)
    if cls is None:
        cls = _OPAQUE_TYPES.setdefault(name, type(name, (OpaqueValue,), {}))
    return cls(text[:200])


def encode_value(obj: Any, *, max_bytes: int = 64 * 2**20) -> Any:
    """Turn a case's arguments or an answer's output into JSON-ready plain data.

    Carries ``None``, booleans, numbers, strings, tuples, lists, dicts and dense tensors (raw
    bytes in base64 with dtype and shape; ``requires_grad`` is kept, strides and device are
    not). Anything else becomes an opaque placeholder that names its type. Reading it back with
    :func:`decode_value` executes no code (no pickle), so it is safe for untrusted outputs.

    Raises :class:`ValueCodecError` when the tensors hold more than ``max_bytes`` bytes.
    """
    budget = [max_bytes]

    def enc(x: Any, depth: int) -> Any:
        if depth > _CODEC_MAX_DEPTH:
            raise ValueCodecError(f"the value is nested more than {_CODEC_MAX_DEPTH} levels deep")
        if x is None:
            return {"t": "none"}
        if isinstance(x, bool):
            return {"t": "bool", "v": bool(x)}
        if isinstance(x, int):
            return {"t": "int", "v": int(x)}
        if isinstance(x, float):
            return {"t": "float", "v": float(x)}
        if isinstance(x, str):
            return {"t": "str", "v": str(x)}
        if isinstance(x, torch.Tensor):
            return enc_tensor(x)
        if isinstance(x, (tuple, list)):
            return {"t": "tuple" if isinstance(x, tuple) else "list", "v": [enc(v, depth + 1) for v in x]}
        if isinstance(x, dict):
            return {"t": "dict", "v": [[enc(k, depth + 1), enc(v, depth + 1)] for k, v in x.items()]}
        if isinstance(x, torch.dtype):
            return {"t": "dtype", "v": str(x).replace("torch.", "")}
        return {"t": "opaque", "type": type(x).__name__, "v": object.__repr__(x)}

    def enc_tensor(t: torch.Tensor) -> Any:
        requires_grad = bool(t.requires_grad)
        t = torch.Tensor.detach(t)
        name = str(t.dtype).replace("torch.", "")
        if t.layout != torch.strided or name not in _CODEC_DTYPES or t.device.type == "meta":
            return {"t": "opaque", "type": "Tensor", "v": f"a {t.layout} {t.dtype} tensor on {t.device}"}
        strided = t.numel() > 0 and not t.is_contiguous()
        if strided:  # keep the memory layout (a transposed or expanded input is part of the case)
            span = 1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride()))
            flat = t.as_strided((span,), (1,)).to("cpu").contiguous()
        else:
            flat = t.to("cpu").contiguous().reshape(-1)
        budget[0] -= flat.numel() * flat.element_size()
        if budget[0] < 0:
            raise ValueCodecError(f"the tensors hold more than {max_bytes} bytes")
        raw = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
        out = {"t": "tensor", "dtype": name, "shape": [int(s) for s in t.shape],
               "requires_grad": requires_grad, "data": base64.b64encode(raw).decode("ascii")}
        if strided:
            out["stride"] = [int(st) for st in t.stride()]
        return out

    return enc(obj, 0)


def decode_value(data: Any, *, max_bytes: int = 256 * 2**20) -> Any:
    """Rebuild a value from :func:`encode_value`'s plain data. Never executes code from the data;
    raises :class:`ValueCodecError` on anything malformed (unknown tags or dtypes, a byte count
    that does not match the shape, more than ``max_bytes`` of tensor data)."""
    budget = [max_bytes]

    def dec(d: Any, depth: int) -> Any:
        if depth > _CODEC_MAX_DEPTH:
            raise ValueCodecError(f"the value is nested more than {_CODEC_MAX_DEPTH} levels deep")
        if not isinstance(d, dict) or not isinstance(d.get("t"), str):
            raise ValueCodecError(f"malformed value: {str(d)[:80]}")
        tag, v = d["t"], d.get("v")
        if tag == "none":
            return None
        if tag == "bool" and isinstance(v, bool):
            return v
        if tag == "int" and isinstance(v, int) and not isinstance(v, bool):
            return v
        if tag == "float" and isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if tag == "str" and isinstance(v, str):
            return v
        if tag in ("tuple", "list") and isinstance(v, list):
            items = [dec(x, depth + 1) for x in v]
            return tuple(items) if tag == "tuple" else items
        if tag == "dict" and isinstance(v, list):
            out = {}
            for pair in v:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ValueCodecError("malformed dict item")
                key = dec(pair[0], depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise ValueCodecError("a dict key is not hashable") from None
                out[key] = dec(pair[1], depth + 1)
            return out
        if tag == "dtype" and v in _CODEC_DTYPES:
            return _CODEC_DTYPES[v]
        if tag == "opaque":
            return _opaque(str(d.get("type", "object")), str(v))
        if tag == "tensor":
            return dec_tensor(d)
        raise ValueCodecError(f"malformed value with tag {tag!r}")

    def dec_tensor(d: dict) -> torch.Tensor:
        dtype = _CODEC_DTYPES.get(d.get("dtype"))  # type: ignore[arg-type]
        shape = d.get("shape")
        if dtype is None or not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape
        ):
            raise ValueCodecError(f"malformed tensor (dtype {d.get('dtype')!r}, shape {str(shape)[:40]})")
        if len(shape) > 32:
            raise ValueCodecError("a tensor has more than 32 dimensions")
        stride = d.get("stride")
        numel = math.prod(shape)
        if stride is not None:
            if not (isinstance(stride, list) and len(stride) == len(shape) and all(
                    isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in stride)) or numel == 0:
                raise ValueCodecError(f"malformed tensor strides {str(stride)[:40]}")
            numel = 1 + sum((n - 1) * st for n, st in zip(shape, stride))  # the storage the view spans
        itemsize = torch.empty((), dtype=dtype).element_size()
        data = d.get("data")
        if not isinstance(data, str) or len(data) > 4 * (budget[0] // 3 + 4):
            raise ValueCodecError(f"the tensor data is missing or more than {max_bytes} bytes")
        raw = base64.b64decode(data.encode("ascii"), validate=True)
        if len(raw) != numel * itemsize:
            raise ValueCodecError(f"a tensor of shape {shape} and dtype {d['dtype']} needs "
                                  f"{numel * itemsize} bytes but {len(raw)} came")
        budget[0] -= len(raw)
        if budget[0] < 0:
            raise ValueCodecError(f"the tensors hold more than {max_bytes} bytes")
        t = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype) if raw else torch.empty(0, dtype=dtype)
        t = t.as_strided(shape, stride) if stride is not None else t.reshape(shape)
        if d.get("requires_grad") is True and dtype.is_floating_point:
            t.requires_grad_(True)
        return t

    try:
        return dec(data, 0)
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        if isinstance(exc, ValueCodecError):
            raise
        raise ValueCodecError(f"malformed value ({type(exc).__name__}: {exc})") from None
