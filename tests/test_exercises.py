"""Every exercise of every chapter: the reference passes, the stub is 'not attempted' without
raising, and each recorded plausible mistake fails with a helpful, specific message."""

from __future__ import annotations

import pytest
import torch

from course_pkg import exercises
from course_pkg.exercises import Case, CheckFailure, Exercise, Mistake

ALL = exercises.all_exercises()
IDS = [ex.id for ex in ALL]


def test_every_chapter_has_enough_exercises() -> None:
    by_chapter: dict[str, int] = {}
    for ex in ALL:
        by_chapter[ex.chapter] = by_chapter.get(ex.chapter, 0) + 1
    assert by_chapter.get("ch01", 0) >= 3
    for chapter, n in by_chapter.items():
        assert n >= 3, f"{chapter} has only {n} exercises"


def _nudge(out: object) -> object:
    """The output with every floating tensor moved by 1e-3 (relative and absolute): a near miss."""
    if isinstance(out, torch.Tensor) and out.is_floating_point():
        return out * 1.001 + 1e-3
    if isinstance(out, (tuple, list)):
        return type(out)(_nudge(o) for o in out)
    if isinstance(out, dict):
        return {k: _nudge(v) for k, v in out.items()}
    return out


def _has_float_tensor(out: object) -> bool:
    if isinstance(out, torch.Tensor):
        return out.is_floating_point()
    if isinstance(out, (tuple, list)):
        return any(_has_float_tensor(o) for o in out)
    if isinstance(out, dict):
        return any(_has_float_tensor(v) for v in out.values())
    return False


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_reference_passes_and_a_near_miss_of_it_does_not(ex: Exercise,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The reference passes (it is tied to the package and timm in test_solutions.py), and the judge is
    strict enough to reject the reference's own output nudged by 1e-3."""
    result = ex.check(ex.reference)
    assert result.passed, result.summary()
    assert result.score == 1.0
    assert "correct" in capsys.readouterr().out
    case = ex.cases[-1]
    got = ex.run_case(ex.reference, case)
    if _has_float_tensor(got):
        assert not ex.judge(case, _nudge(got)).passed, f"{ex.id}: a 1e-3 error passed the judge"


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_stub_is_not_attempted_and_does_not_raise(ex: Exercise, capsys: pytest.CaptureFixture[str]) -> None:
    result = ex.check(ex.stub())
    assert result.status == "not_attempted"
    assert result.score == 0.0
    assert "not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_each_mistake_fails_with_a_specific_message(ex: Exercise) -> None:
    assert ex.mistakes, f"{ex.id} records no plausible mistake"
    for mistake in ex.mistakes:
        result = ex.test(mistake.answer)
        assert result.status == "failed", f"{ex.id}: the mistake '{mistake.why}' passed"
        text = result.summary()
        assert "case '" in text, text  # names the failing case
        assert mistake.expect in text, f"{ex.id}: '{mistake.why}' feedback lacks {mistake.expect!r}:\n{text}"


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_hints_and_solution(ex: Exercise, capsys: pytest.CaptureFixture[str]) -> None:
    assert ex.hints, f"{ex.id} has no hint"
    ex.hint()
    out = capsys.readouterr().out
    assert f"Hint 1/{len(ex.hints)}" in out
    ex.hint(99)  # clamps to the last hint
    assert f"Hint {len(ex.hints)}/{len(ex.hints)}" in capsys.readouterr().out
    ex.solution()
    out = capsys.readouterr().out
    assert "def " in out or "class " in out
    assert ex.name in ex.solution_source()


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, torch.nn.Module):
        return _same(a.state_dict(), b.state_dict()) if isinstance(b, torch.nn.Module) else False
    return a == b


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_outputs_are_deterministic(ex: Exercise) -> None:
    """Two runs of a case give bitwise-equal outputs (the grade must not depend on the run)."""
    case = ex.cases[-1]
    assert _same(ex.run_case(ex.reference, case), ex.run_case(ex.reference, case))


def test_lookup_by_id_and_helpful_unknown_id(capsys: pytest.CaptureFixture[str]) -> None:
    ex = exercises.get("ch01.softmax_weights")
    assert exercises.check("ch01.softmax_weights", ex.reference).passed
    exercises.hint("ch01.softmax_weights", 1)
    assert "Hint 1/" in capsys.readouterr().out
    with pytest.raises(KeyError, match="known ids: .*ch01.softmax_weights"):
        exercises.get("ch01.nope")


def test_an_answer_that_crashes_is_reported_not_raised() -> None:
    ex = exercises.get("ch01.softmax_weights")
    result = ex.test(lambda s: 1 / 0)
    assert result.status == "failed"
    assert "ZeroDivisionError" in result.summary()


def test_compare_outputs_messages() -> None:
    from course_pkg.exercises.core import compare_outputs

    with pytest.raises(CheckFailure, match=r"shape \(2, 3\) but the expected shape is \(3, 2\)"):
        compare_outputs(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(CheckFailure, match="dtype torch.int64"):
        compare_outputs(torch.zeros(2, dtype=torch.long), torch.zeros(2))
    with pytest.raises(CheckFailure, match=r"largest difference 0.5 at index \[1\]"):
        compare_outputs(torch.tensor([0.0, 0.5]), torch.tensor([0.0, 0.0]))
    with pytest.raises(CheckFailure, match="should be a torch.Tensor"):
        compare_outputs([1.0], torch.zeros(1))
    with pytest.raises(CheckFailure, match=r"output\[1\]"):
        compare_outputs((torch.zeros(1), torch.ones(1)), (torch.zeros(1), torch.zeros(1)))
    compare_outputs({"a": 1.0}, {"a": 1.0 + 1e-9})


def test_module_exercises_compare_parameter_names() -> None:
    from torch import nn

    class Ref(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.fc = nn.Linear(dim, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x).relu()

    class Renamed(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.linear = nn.Linear(dim, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x).relu()

    ex = Exercise("ch99.ref", "a module", Ref, [Case("x", lambda: ({"dim": 4}, (torch.randn(2, 4),)))],
                  hints=["h"], kind="module", mistakes=[Mistake(Renamed, "missing parameters")])
    assert ex.test(Ref).passed
    res = ex.test(Renamed)
    assert not res.passed and "missing parameters ['fc.bias', 'fc.weight']" in res.summary()
    assert ex.test(ex.stub()).status == "not_attempted"
