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


def _zeros_like(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return torch.zeros_like(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_zeros_like(v) for v in value)
    return type(value)(0) if isinstance(value, (int, float)) else value


@pytest.mark.parametrize("ex", [ex for ex in ALL if ex.kind == "function"],
                         ids=[ex.id for ex in ALL if ex.kind == "function"])
def test_the_cases_reject_an_answer_of_the_right_shape_but_wrong_values(ex: Exercise) -> None:
    """The reference passing its own cases proves little by itself (the expected outputs are its
    outputs; tests/test_exercise_references.py compares it with independent implementations). Here:
    the cases do catch an answer with the right structure and wrong values, so they can fail."""
    result = ex.test(lambda *args: _zeros_like(ex.reference(*args)))
    assert result.status == "failed", result.summary()


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
        # the checks' own diagnostics, without the recorded mistakes' advice, must already be specific
        result = ex.test(mistake.answer, mistake_notes=False)
        assert result.status == "failed", f"{ex.id}: the mistake '{mistake.why}' passed"
        text = result.summary()
        assert "case '" in text, text  # names the failing case
        assert mistake.expect in text, f"{ex.id}: '{mistake.why}' feedback lacks {mistake.expect!r}:\n{text}"


def _same_output(ex: Exercise, a: object, b: object) -> bool:
    try:
        ex._compare(a, b)
    except CheckFailure:
        return False
    return True


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_each_mistake_gets_its_own_advice(ex: Exercise) -> None:
    """Feedback is chosen per mistake: a recorded mistake's answer is told that mistake's advice on at
    least one case, and on every failing case only the advice of a mistake that gives the very same
    output there (never a note that blames something else)."""
    cases = {c.name: c for c in ex.cases}
    for i, mistake in enumerate(ex.mistakes):
        result = ex.test(mistake.answer)
        failing = [c for c in result.cases if not c.passed and "your code raised" not in c.message]
        own = [c for c in failing if f"common mistake: {mistake.advice}" in c.message]
        assert own or not failing, f"{ex.id}: '{mistake.why}' never gets its own advice:\n{result.summary()}"
        for c in failing:
            case = cases[c.name]
            mine = ex.mistake_output(i, case)
            allowed = {m.advice for j, m in enumerate(ex.mistakes)
                       if _same_output(ex, mine, ex.mistake_output(j, case))}
            shown = [m.advice for m in ex.mistakes if f"common mistake: {m.advice}" in c.message]
            assert shown and set(shown) <= allowed, f"{ex.id}: '{mistake.why}' on '{c.name}':\n{c.message}"


def test_feedback_follows_the_mistake_not_the_case() -> None:
    """The two cases of the issue: ch04 excitation without b2 is not told about the ReLU, and ch06's
    LayerNorm with PyTorch's default eps is not told about the MLP width."""
    excitation = exercises.get("ch04.excitation")
    text = excitation.test(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T)).summary()
    assert "b2 is missing" in text and "cut to zero by the ReLU" not in text, text
    block = exercises.get("ch06.EncoderBlock")
    wrong_eps = next(m.answer for m in block.mistakes if "eps" in m.why)
    text = block.test(wrong_eps).summary()
    assert "eps=1e-6" in text and "hidden width is int(dim * mlp_ratio)" not in text, text
    # an answer that matches no recorded mistake gets the case's note, not a mistake's advice
    text = excitation.test(lambda z, w1, b1, w2, b2: torch.full((z.shape[0], w2.shape[0]), 0.3)).summary()
    assert "common mistake" not in text and "This case checks" in text, text


@pytest.mark.parametrize("ex", ALL, ids=IDS)
def test_hints_one_at_a_time_and_solution(ex: Exercise, capsys: pytest.CaptureFixture[str]) -> None:
    total = len(ex.hints)
    assert total, f"{ex.id} has no hint"
    fresh = Exercise(ex.id, ex.title, ex.reference, ex.cases, ex.hints, ex.kind)  # its own hint counter
    for i in range(1, total):  # hint() walks through the gentle hints, one per call
        fresh.hint()
        out = capsys.readouterr().out
        assert out.startswith(f"Hint {i}/{total}: {ex.hints[i - 1]}"), out
        assert ex.hints[-1] not in out or total == 1
        assert ("1 hint left" if i == total - 1 else f"{total - i} hints left") in out
    fresh.hint()  # the last hint gives the answer away: only on request
    out = capsys.readouterr().out
    assert ex.hints[-1] not in out and f".hint({total})" in out, out
    fresh.hint(total)
    assert f"Hint {total}/{total}: {ex.hints[-1]}" in capsys.readouterr().out
    fresh.hint(1)  # any hint again on request
    assert f"Hint 1/{total}: {ex.hints[0]}" in capsys.readouterr().out
    ex.solution()
    out = capsys.readouterr().out
    assert "def " in out or "class " in out
    assert ex.name in ex.solution_source()


@pytest.mark.parametrize("bad, error, fragment", [
    ("1", TypeError, "n must be an integer from 1 to"), (1.0, TypeError, "got 1.0 of type float"),
    (True, TypeError, "n must be an integer"), (0, ValueError, "n must be from 1 to"),
    (99, ValueError, "got 99"), (-1, ValueError, "n must be from 1 to"),
])
def test_hint_rejects_a_bad_number(bad: object, error: type, fragment: str) -> None:
    ex = exercises.get("ch01.softmax_weights")
    with pytest.raises(error, match=fragment):
        ex.hint(bad)  # type: ignore[arg-type]
    with pytest.raises(error, match=fragment):
        exercises.hint("ch01.softmax_weights", bad)  # type: ignore[arg-type]


def test_hint_state_is_per_exercise(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = exercises.get("ch01.softmax_weights"), exercises.get("ch01.attention_pool")
    a._hints_shown = b._hints_shown = 0
    a.hint()
    a.hint()
    b.hint()
    out = capsys.readouterr().out.splitlines()
    assert [line[:10] for line in out if line.startswith("Hint")] == ["Hint 1/3: ", "Hint 2/3: ", "Hint 1/3: "]
    a._hints_shown = b._hints_shown = 0


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
    ex._hints_shown = 0
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
