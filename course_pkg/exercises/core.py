"""The exercise framework: exercises with cases, checks, hints and solutions.

An :class:`Exercise` is a small, self-contained test suite for one thing a learner writes
(a function or an ``nn.Module`` class). It is used in three places:

* in a chapter, ``ex.check(answer)`` prints friendly feedback and never raises;
* in ``pytest``, the same cases prove that the reference solution passes and that
  common mistakes fail with a helpful message;
* in the batch grader (``python -m course_pkg.grade``), the answer is run case by case in a
  sandboxed process (:meth:`Exercise.run_case`) and its plain-data outputs are judged in the
  grader's own process (:meth:`Exercise.judge`).

Everything here is deterministic: each case builds its inputs from a fixed seed.
"""

from __future__ import annotations

import base64
import inspect
import math
import re
import textwrap
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Sequence

import torch
from torch import nn

__all__ = [
    "Case",
    "CaseResult",
    "CheckFailure",
    "CheckResult",
    "Exercise",
    "Mistake",
    "NotAttempted",
    "OpaqueValue",
    "ValueCodecError",
    "check_in_unit_interval",
    "check_rows_sum_to_one",
    "compare_outputs",
    "decode_value",
    "encode_value",
    "fill_parameters",
    "run_function",
    "run_module",
]


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
        """Build this case's arguments deterministically."""
        torch.manual_seed(self.seed)
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
            return (f"[ ] {self.exercise_id}: not attempted yet. Replace the "
                    "`raise NotImplementedError` line with your code, then run this cell again.")
        if self.status == "passed":
            return f"[ok] {self.exercise_id}: correct, all {len(self.cases)} cases pass."
        lines = [f"[x] {self.exercise_id}: {sum(c.passed for c in self.cases)} of {len(self.cases)} cases pass."]
        if self.message:
            lines.append(self.message)
        for c in self.cases:
            if not c.passed:
                lines.append(f"  - case '{c.name}': " + c.message.replace("\n", "\n    "))
        lines.append("Stuck? Call .hint() for a nudge.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CheckResult({self.exercise_id!r}, status={self.status!r}, score={self.score:.2f})"

    def _ipython_display_(self) -> None:
        """Show nothing when it ends a notebook cell: ``check`` has already printed the feedback."""


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer and a fragment its feedback must contain (used by the tests)."""

    answer: Any
    expect: str
    why: str = ""


# ----------------------------------------------------------------------------------------------
# Comparing outputs
# ----------------------------------------------------------------------------------------------
def _fmt_shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ("," if t.dim() == 1 else "") + ")"


def _preview(t: torch.Tensor, n: int = 6) -> str:
    flat = t.detach().flatten()[:n].tolist()
    more = ", ..." if t.numel() > n else ""
    return "[" + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat) + more + "]"


def compare_outputs(got: Any, expected: Any, *, rtol: float = 1e-4, atol: float = 1e-5,
                    where: str = "output") -> None:
    """Compare a learner's output with the expected one, raising :class:`CheckFailure` with a
    specific message (type, length, shape, dtype or values, with the tolerance used).

    Tensors are compared by shape, then dtype kind (floating vs integer vs bool), then values
    with ``torch.allclose(rtol, atol)``. Tuples, lists and dicts are compared item by item.
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
        g = got.detach().to("cpu")
        e = expected.detach().to("cpu")
        if e.dtype.is_floating_point:
            g64, e64 = g.double(), e.double()
            if not torch.isfinite(g64).all() and torch.isfinite(e64).all():
                raise CheckFailure(f"{where} contains NaN or inf values: {_preview(g)}. "
                                   "Look for a division by zero or an exp() that overflows.")
            if not torch.allclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True):
                diff = (g64 - e64).abs()
                i = int(torch.nan_to_num(diff, nan=math.inf).flatten().argmax())
                idx = tuple(int(v) for v in torch.unravel_index(torch.tensor(i), e.shape)) if e.dim() else ()
                raise CheckFailure(
                    f"{where} values differ from the expected ones (tolerance rtol={rtol:g}, atol={atol:g}).\n"
                    f"got      {_preview(g)}\nexpected {_preview(e)}\n"
                    f"largest difference {float(diff.flatten()[i]):.3g} at index {list(idx)}."
                )
        elif not torch.equal(g, e):
            raise CheckFailure(f"{where} values differ.\ngot      {_preview(g)}\nexpected {_preview(e)}")
        return
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            raise CheckFailure(f"{where} should be a {type(expected).__name__} of {len(expected)} items "
                               f"but is a {type(got).__name__}.")
        if len(got) != len(expected):
            raise CheckFailure(f"{where} should have {len(expected)} items but has {len(got)}.")
        for i, (g, e) in enumerate(zip(got, expected)):
            compare_outputs(g, e, rtol=rtol, atol=atol, where=f"{where}[{i}]")
        return
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            raise CheckFailure(f"{where} should be a dict but is a {type(got).__name__}.")
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        if missing or extra:
            raise CheckFailure(f"{where} keys differ: missing {missing}, unexpected {extra}.")
        for k in expected:
            compare_outputs(got[k], expected[k], rtol=rtol, atol=atol, where=f"{where}[{k!r}]")
        return
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if got != expected:
            raise CheckFailure(f"{where} is {got!r} but {expected!r} is expected.")
        return
    if isinstance(expected, (int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise CheckFailure(f"{where} should be a number but is a {type(got).__name__}.")
        if not math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol):
            raise CheckFailure(f"{where} is {got!r} but {expected!r} is expected.")
        return
    if got != expected:
        raise CheckFailure(f"{where} is {got!r} but {expected!r} is expected.")


def check_rows_sum_to_one(w: object, what: str, advice: str) -> None:
    """Property check for weights: each row (last dimension) of a finite float tensor sums to one.

    Raises :class:`CheckFailure` saying ``"{what} ... but the sums are [...]. {advice}"``; anything that is
    not a finite float tensor is left to the comparison, which explains it better."""
    if isinstance(w, torch.Tensor) and w.is_floating_point() and torch.isfinite(w).all():
        sums = w.sum(dim=-1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            raise CheckFailure(f"{what}, but the sums are {[round(v, 4) for v in sums.flatten()[:4].tolist()]}. "
                               f"{advice}")


def check_in_unit_interval(out: object, what: str, advice: str, *, open_interval: bool = True) -> None:
    """Property check for gates: every value of a finite float tensor lies in (0, 1) (or [0, 1])."""
    if isinstance(out, torch.Tensor) and out.is_floating_point() and torch.isfinite(out).all():
        outside = ((out <= 0) | (out >= 1)) if open_interval else ((out < 0) | (out > 1))
        if outside.any():
            raise CheckFailure(f"{what} must lie in (0, 1), but the values range from "
                               f"{out.min().item():.3g} to {out.max().item():.3g}. {advice}")


# ----------------------------------------------------------------------------------------------
# Running answers
# ----------------------------------------------------------------------------------------------
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


def _compare_module_output(got: Any, expected: Any, rtol: float, atol: float) -> None:
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
        compare_outputs(got.get("output"), expected["output"], rtol=rtol, atol=atol, where="forward output")
        return
    compare_outputs(got, expected, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------------
# The exercise
# ----------------------------------------------------------------------------------------------
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
            learner's output before the comparison (e.g. "rows sum to one"), for clearer feedback.
        mistakes: plausible wrong answers with the feedback they must get (proved by the tests).
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

    @property
    def name(self) -> str:
        """The name the answer must have in the learner's notebook or file."""
        return self.id.split(".", 1)[1]

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]

    # -- the pieces the grader uses ------------------------------------------------------------
    def run_case(self, answer: Any, case: Case) -> Any:
        """Run ``answer`` on one case and return its raw output (may raise anything).

        Raises :class:`NotAttempted` when the answer raises ``NotImplementedError``."""
        args = case.args()
        torch.manual_seed(case.seed)
        try:
            if self.kind == "module":
                return run_module(answer, args)
            return run_function(answer, args)
        except NotImplementedError as exc:
            raise NotAttempted(str(exc)) from None

    def expected(self, case: Case) -> Any:
        """The reference solution's output on a case (computed once, then cached)."""
        if case.name not in self._expected:
            self._expected[case.name] = self.run_case(self.reference, case)
        return self._expected[case.name]

    def judge(self, case: Case, got: Any) -> CaseResult:
        """Decide one case from the learner's output alone (no learner code runs here)."""
        try:
            for prop in self.properties:
                prop(got, case.args())
            if self.kind == "module":
                _compare_module_output(got, self.expected(case), self.rtol, self.atol)
            else:
                compare_outputs(got, self.expected(case), rtol=self.rtol, atol=self.atol)
        except CheckFailure as exc:
            msg = str(exc)
            if case.note:
                msg += f"\nThis case checks: {case.note}"
            return CaseResult(case.name, False, msg)
        except Exception as exc:  # a malformed output must not crash the judge
            return CaseResult(case.name, False, f"the output could not be compared ({type(exc).__name__}: {exc}).")
        return CaseResult(case.name, True)

    def test(self, answer: Any) -> CheckResult:
        """Run every case on ``answer`` and judge it; never raises for a learner's error."""
        results: list[CaseResult] = []
        for case in self.cases:
            try:
                got = self.run_case(answer, case)
            except NotAttempted:
                return CheckResult(self.id, "not_attempted", [CaseResult(c.name, False, "not attempted")
                                                               for c in self.cases])
            except CheckFailure as exc:
                results.append(CaseResult(case.name, False, str(exc)))
                continue
            except Exception as exc:
                results.append(CaseResult(case.name, False,
                                          f"your code raised {type(exc).__name__}: {exc}" +
                                          (f"\nThis case checks: {case.note}" if case.note else "")))
                continue
            results.append(self.judge(case, got))
        status: Status = "passed" if all(r.passed for r in results) else "failed"
        return CheckResult(self.id, status, results)

    # -- the pieces the learner uses -----------------------------------------------------------
    def check(self, answer: Any) -> CheckResult:
        """Check ``answer`` and print feedback. Never raises: an unattempted stub prints
        "not attempted yet"."""
        result = self.test(answer)
        print(result.summary())
        return result

    def hint(self, n: Optional[int] = None) -> None:
        """Print hint ``n`` (1-based); with no argument, print all hints in order."""
        if not self.hints:
            print(f"No hints for {self.id}.")
            return
        chosen = range(len(self.hints)) if n is None else [min(max(n, 1), len(self.hints)) - 1]
        for i in chosen:
            print(f"Hint {i + 1}/{len(self.hints)}: {self.hints[i]}")

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
