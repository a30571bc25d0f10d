"""The exercise framework's behaviour with odd answers: wrong kinds of answer, answers that exit or
raise KeyboardInterrupt, a real Ctrl-C, the learner's random states, structure before properties,
the preview around the largest difference, integer outputs, and the module-level helpers."""

from __future__ import annotations

import os
import random
import signal
import sys

import numpy as np
import pytest
import torch
from torch import nn

from course_pkg import exercises
from course_pkg.exercises import CheckFailure
from course_pkg.exercises.core import compare_outputs

SOFTMAX = exercises.get("ch01.softmax_weights")
SE = exercises.get("ch04.SEBlock")


# -- the wrong kind of answer -----------------------------------------------------------------------------
@pytest.mark.parametrize("answer, fragments", [
    (None, ["got None", ".check(softmax_weights)"]),
    ("softmax_weights", ["got the string 'softmax_weights'", "without quotes"]),
    (torch.zeros(3), ["got a Tensor", "pass the function itself"]),
    (3, ["got a int", "pass the function itself"]),
    (nn.Linear, ["got the class Linear", "def softmax_weights("]),
])
def test_a_function_exercise_explains_a_wrong_kind_of_answer(answer: object, fragments: list[str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    result = SOFTMAX.check(answer)
    out = capsys.readouterr().out
    assert result.status == "failed" and result.score == 0.0 and not result.passed
    assert out.count("check() ") == 1, out  # one cause, said once for all the cases
    for fragment in fragments:
        assert fragment in out, out
    assert "TypeError" not in out and "your code raised" not in out, out


class _Builds(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()


@pytest.mark.parametrize("answer, fragments", [
    (None, ["got None", "class (an nn.Module subclass)"]),
    ("SEBlock", ["got the string 'SEBlock'", "without quotes"]),
    (_Builds(8), ["an instance of _Builds", "not `.check(_Builds(...))`"]),
    (lambda channels, reduction: nn.Identity(), ["got a function <lambda>", "class SEBlock(nn.Module)"]),
    (int, ["the class int, which is not an nn.Module subclass"]),
])
def test_a_module_exercise_explains_a_wrong_kind_of_answer(answer: object, fragments: list[str]) -> None:
    result = SE.test(answer)
    assert result.status == "failed" and result.score == 0.0
    text = result.summary()
    for fragment in fragments:
        assert fragment in text, text
    assert "TypeError" not in text, text


def test_the_grader_path_gets_the_same_message_as_a_check_failure() -> None:
    with pytest.raises(CheckFailure, match="an instance of _Builds"):
        SE.run_case(_Builds(8), SE.cases[0])
    with pytest.raises(CheckFailure, match="got None"):
        SOFTMAX.run_case(None, SOFTMAX.cases[0])


def test_module_level_check_and_hint_by_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert exercises.check("ch01.softmax_weights", SOFTMAX.reference).passed
    result = exercises.check("softmax_weights", SOFTMAX.reference)  # the short name
    out = capsys.readouterr().out
    assert result.status == "error" and "did you mean 'ch01.softmax_weights'" in out, out
    result = exercises.check(SOFTMAX.reference)  # type: ignore[call-arg]
    out = capsys.readouterr().out
    assert result.status == "error" and "check(exercise_id, answer)" in out, out
    with pytest.raises(KeyError, match="did you mean 'ch01.softmax_weights'"):
        exercises.get("softmax_weights")


# -- answers that stop Python, and a real Ctrl-C ---------------------------------------------------------
def _exits(scores: torch.Tensor) -> torch.Tensor:
    sys.exit(3)


def _raises_interrupt(scores: torch.Tensor) -> torch.Tensor:
    raise KeyboardInterrupt


def test_sys_exit_and_a_raised_keyboard_interrupt_are_the_learners_errors(capsys: pytest.CaptureFixture[str]) -> None:
    result = SOFTMAX.check(_exits)
    assert result.status == "failed" and "called sys.exit(3)" in capsys.readouterr().out
    result = SOFTMAX.check(_raises_interrupt)
    assert result.status == "failed" and "raised KeyboardInterrupt itself" in capsys.readouterr().out


def test_a_real_ctrl_c_still_interrupts_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    calls = []

    def hangs_until_interrupted(scores: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C (or Jupyter's interrupt button) sends
        for _ in range(1000):
            torch.ones(1)  # let the signal be handled
        raise AssertionError("not interrupted")

    with pytest.raises(KeyboardInterrupt):
        SOFTMAX.check(hangs_until_interrupted)
    assert calls == [1]  # stopped at the first case
    assert signal.getsignal(signal.SIGINT) is before


# -- the learner's random states ---------------------------------------------------------------------------
def _draw() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def _reseeds(scores: torch.Tensor) -> torch.Tensor:
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    torch.rand(5)
    return torch.softmax(scores, -1)


@pytest.mark.parametrize("answer", [SOFTMAX.reference, _reseeds, _exits, None])
def test_check_keeps_the_learners_random_states(answer: object, capsys: pytest.CaptureFixture[str]) -> None:
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = _draw()
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    SOFTMAX.check(answer)
    SE.check(SE.reference)
    for case in SOFTMAX.cases:
        SOFTMAX.judge(case, torch.zeros(2))
    assert _draw() == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_check_keeps_the_cuda_random_state() -> None:
    torch.cuda.manual_seed_all(77)
    expected = torch.rand(4, device="cuda")
    torch.cuda.manual_seed_all(77)

    def draws_on_cuda(scores: torch.Tensor) -> torch.Tensor:
        torch.cuda.manual_seed_all(5)
        torch.rand(100, device="cuda")
        return torch.softmax(scores, -1)

    SOFTMAX.check(draws_on_cuda)
    assert torch.equal(torch.rand(4, device="cuda"), expected)


# -- the order of the checks, and the messages ---------------------------------------------------------------
def test_structure_is_checked_before_properties() -> None:
    pool = exercises.get("ch01.attention_pool")
    swapped = pool.test(lambda q, k, v: tuple(reversed(pool.reference(q, k, v))), mistake_notes=False)
    text = swapped.summary()
    assert "sum to one" not in text and "order is (output, weights)" in text, text
    # without the swap hint: a non-square case is told the shape, not that the weights do not sum to one
    def half_swapped(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple:
        out, w = pool.reference(q, k, v)
        return w, 2 * out

    first = pool.test(half_swapped, mistake_notes=False).cases[0]
    assert "output[0] has shape (1, 3) but the expected shape is (1, 1)" in first.message, first.message
    # a 3-tuple is told its length, not a property of its items
    text = pool.test(lambda q, k, v: (*pool.reference(q, k, v), None)).summary()
    assert "should be a tuple of 2 items but has 3" in text and "sum to one" not in text, text


def test_preview_shows_the_values_around_the_largest_difference() -> None:
    expected = torch.zeros(3, 20)
    got = expected.clone()
    got[2, 14] = 0.5
    with pytest.raises(CheckFailure) as info:
        compare_outputs(got, expected)
    text = str(info.value)
    assert "largest difference 0.5 at index [2, 14]" in text
    assert "index [2, 11] to [2, 16]" in text
    assert "got      [..., 0, 0, 0, 0.5, 0, 0, ...]" in text, text
    # small differences on large values are shown with enough digits to see them
    with pytest.raises(CheckFailure, match=r"got      \[12\.74\]\nexpected \[12\.7413\]"):
        compare_outputs(torch.tensor([12.74]), torch.tensor([12.7413]))
    with pytest.raises(CheckFailure, match=r"the first at index \[1\]"):
        compare_outputs(torch.tensor([1, 5, 7]), torch.tensor([1, 2, 7]))


def test_an_integer_must_come_back_as_an_integer() -> None:
    with pytest.raises(CheckFailure, match="integer division //"):
        compare_outputs(196.0, 196)
    compare_outputs(196, 196)
    compare_outputs(1, 1.0)  # an int is a fine float
    # one rule for numbers (issue 19): a number the exercise returns is a plain Python number, so a
    # tensor, even a 0-d one, is refused with the way out, whether an int or a float is expected
    for got, expected in [(torch.tensor(196), 196), (torch.tensor(0.35), 0.35), (torch.tensor([0.35]), 0.35)]:
        with pytest.raises(CheckFailure, match=r"is a tensor .* but a Python (int|float) is expected: call \.item\(\)"):
            compare_outputs(got, expected)
    with pytest.raises(CheckFailure, match="should be a Python int but is a bool"):
        compare_outputs(True, 1)
    count = exercises.get("ch06.count_patches")
    text = count.test(lambda s, p, c=3: ((s / p) ** 2, p * p * c, (s / p) ** 2 + 1)).summary()
    assert "output[0] = 196.0, output[2] = 197.0: floats" in text, text


def test_a_global_max_softmax_is_told_about_the_per_row_maximum() -> None:
    text = SOFTMAX.test(lambda s: torch.exp(s - s.max()) / torch.exp(s - s.max()).sum(-1, keepdim=True)).summary()
    assert "4 of 5 cases pass" in text, text
    assert "NaN" in text and "each row's own maximum" in text, text


def test_duplicate_case_names_and_bad_kinds_are_refused() -> None:
    from course_pkg.exercises import Case, Exercise

    case = Case("x", lambda: (torch.zeros(1),))
    with pytest.raises(ValueError, match="case names must be unique"):
        Exercise("ch99.f", "f", lambda x: x, [case, case])
    with pytest.raises(ValueError, match="kind must be"):
        Exercise("ch99.f", "f", lambda x: x, [case], kind="fn")  # type: ignore[arg-type]
