"""Judging the outputs a sandbox sent: each case decided in the grader's own process, exactly as
``Exercise.test`` decides it, after capping the output by its logical size (:func:`logical_bytes`)
and decoding it without executing anything (``decode_value``)."""

from __future__ import annotations

import math
import threading
from typing import Any, Optional, Sequence

from ..exercises import Exercise
from ..exercises.core import CaseResult, CheckResult, Raised, ValueCodecError, decode_value
from .text import MAX_MESSAGE_CHARS, clean, said

_JUDGE_LOCK = threading.Lock()  # judging re-seeds torch's global generator (Case.args)


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
            results.append(CaseResult(case.name, False, said(o["check_failure"])))
        elif "error" in o:
            results.append(CaseResult(case.name, False, f"your code raised {said(o['error'])}"
                                      + (f"\nThis case checks: {case.note}" if case.note else "")))
            outputs[case.name] = Raised(str(o['error']))
        elif "encode_error" in o:
            results.append(CaseResult(case.name, False, f"the output could not be sent to the grader "
                                                        f"({said(o['encode_error'])})"))
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


def describe_violations(violations: Sequence[dict]) -> str:
    """The refusals the sandbox reported, in one line: the first three different ones."""
    seen: list[str] = []
    for v in violations[:1000]:
        text = said(v.get("detail", v))[:400]
        if text not in seen:
            seen.append(text)
    more = f" (and {len(seen) - 3} more)" if len(seen) > 3 else ""
    return "; ".join(seen[:3]) + more


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)

