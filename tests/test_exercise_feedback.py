"""Feedback quality, measured: the mistake suite (tests/feedback_suite.py) and the rules behind it.

Every exercise gets at least five typical learner mistakes, each with the words its feedback must contain.
Each attempt is checked as a learner's cell does (``ex.<name>.check(answer)``); the tests assert its kind
(named exactly, or partly where that is the honest best) and that no attempt is accepted or told about a
different bug. ``scripts/feedback_report.py`` prints the counts per chapter.

Also here: a recorded mistake is claimed only when the answer behaves like it on every case (issue 19: a
sum of one bright pixel equals its max), in the notebook and in the batch grader alike; answers that change
their inputs in place fail (issue 21); one rule for numbers; forbidden shortcuts get a note, not a zero.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from feedback_suite import KINDS, SHORTCUTS, SUITE, Attempt, classify, feedback

from course_pkg import exercises
from course_pkg.exercises import Case, Exercise, Mistake
from course_pkg.exercises.core import CheckFailure, compare_outputs, describe_exception, encode_value

_CACHE: dict[int, tuple[str, str]] = {}


def _kind(i: int) -> tuple[str, str]:
    if i not in _CACHE:
        a = SUITE[i]
        result, text = feedback(a)
        _CACHE[i] = (classify(a, result, text), text)
    return _CACHE[i]


def test_the_suite_covers_every_exercise_with_at_least_five_mistakes() -> None:
    ids = {ex.id for ex in exercises.all_exercises()}
    per: dict[str, int] = {}
    for a in SUITE:
        per[a.exercise] = per.get(a.exercise, 0) + 1
    assert set(per) == ids, sorted(ids ^ set(per))
    assert min(per.values()) >= 5, {k: v for k, v in per.items() if v < 5}
    assert len({(a.exercise, a.label) for a in SUITE}) == len(SUITE), "labels must be unique per exercise"


@pytest.mark.parametrize("i", range(len(SUITE)), ids=[f"{a.exercise}:{a.label}" for a in SUITE])
def test_each_mistake_gets_the_diagnosis_it_must_receive(i: int) -> None:
    a: Attempt = SUITE[i]
    kind, text = _kind(i)
    assert kind not in ("accepted", "misleading"), f"{a.exercise} / {a.label}: {kind}\n{text}"
    assert kind == a.expect, f"{a.exercise} / {a.label}: {kind}, expected {a.expect} ({a.named})\n{text}"


def test_the_totals_meet_the_target() -> None:
    """At least 90% of the suite's mistakes are named exactly; none is misleading, none accepted."""
    counts = dict.fromkeys(KINDS, 0)
    for i in range(len(SUITE)):
        counts[_kind(i)[0]] += 1
    assert counts["accepted"] == 0 and counts["misleading"] == 0, counts
    assert counts["named"] >= 0.9 * len(SUITE), counts


# -- the matcher: one case is not enough ------------------------------------------------------------------
def _toy(mistakes: list[Mistake]) -> Exercise:
    """A toy exercise whose first case cannot tell a sum from a max (one nonzero value per row)."""
    return Exercise("ch99.toy", "toy", lambda x: x.mean(dim=-1), [
        Case("one bright value", lambda: (torch.tensor([[0.0, 0.0, 4.0, 0.0]]),), "note one"),
        Case("random rows", lambda: (torch.randn(3, 4),), "note two"),
    ], hints=["h"], mistakes=mistakes)


def test_a_mistake_that_matches_on_one_case_only_is_not_claimed() -> None:
    ex = _toy([Mistake(lambda x: x.amax(dim=-1), "", "max", "MAX ADVICE"),
               Mistake(lambda x: x.sum(dim=-1), "", "sum", "SUM ADVICE")])
    text = ex.test(lambda x: x.sum(dim=-1)).summary()
    assert "SUM ADVICE" in text and "MAX ADVICE" not in text, text
    # an answer that is like the max on the degenerate case only gets the cases' own notes
    text = ex.test(lambda x: x.amax(dim=-1) * (1 + (x < 0).any(dim=-1))).summary()
    assert "common mistake" not in text and "note one" in text and "note two" in text, text


def test_the_issue_s_false_matches_are_gone() -> None:
    """Issue 19's three false matches: a sum told "max pooling", gates of 0.5 told "a gate of 0", and the
    order gap that scores the outputs told that the map is computed on the raw input."""
    text = exercises.get("ch04.squeeze").test(lambda x: x.sum(dim=(2, 3))).summary()
    assert "not a max" not in text and "not a sum" in text, text
    by_label = {(a.exercise, a.label): i for i, a in enumerate(SUITE)}
    kind, text = _kind(by_label[("ch04.se_ablation", "gates set to 0.5")])
    assert "a gate of 0 silences" not in text and "0.5 halves" in text, text
    kind, text = _kind(by_label[("ch05.cbam_order_gap", "scores the outputs")])
    assert "raw input x, before any channel gate" not in text, text


def test_a_crash_is_matched_by_its_message() -> None:
    ex = exercises.get("ch01.weighted_average")
    text = ex.test(lambda weights, values: values @ weights).summary()
    assert "your code raised RuntimeError" in text and "weights @ values" in text, text


def test_the_grader_names_the_same_mistake_as_the_notebook() -> None:
    """``runner.verdict`` sees the outputs as plain data, case by case, and must say what ``.check`` says."""
    from course_pkg.grading.judge import verdict

    for exercise_id, answer in [
        ("ch04.squeeze", lambda x: x.sum(dim=(2, 3))),
        ("ch04.squeeze", lambda x: x.amax(dim=(2, 3))),
        ("ch01.softmax_weights", lambda s: torch.exp(s) / torch.exp(s).sum(-1, keepdim=True)),
        ("ch01.weighted_average", lambda weights, values: values @ weights),
        ("ch03.spatial_weighting", lambda features, attn_map: features * attn_map),
    ]:
        ex = exercises.get(exercise_id)
        outcomes: dict[int, dict] = {}
        for i, case in enumerate(ex.cases):
            try:
                outcomes[i] = {"output": encode_value(ex.run_case(answer, case))}
            except Exception as exc:  # noqa: BLE001
                outcomes[i] = {"error": describe_exception(exc)}
        graded = verdict(ex, outcomes).summary()
        assert graded == ex.test(answer).summary(), graded
        assert "common mistake" in graded, graded


# -- answers that change their inputs ---------------------------------------------------------------------
def test_answers_that_change_their_inputs_in_place_fail() -> None:
    def softmax_weights(scores):
        scores -= scores.max(dim=-1, keepdim=True).values
        scores.exp_()
        return scores / scores.sum(dim=-1, keepdim=True)
    result = exercises.get("ch01.softmax_weights").test(softmax_weights)
    assert not result.passed and "changed its input `scores` in place" in result.summary(), result.summary()

    ref = exercises.get("ch04.SEBlock").reference

    class SEBlock(ref):  # type: ignore[misc, valid-type]
        def forward(self, x):
            x *= torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
            return x
    result = exercises.get("ch04.SEBlock").test(SEBlock)
    assert not result.passed and "forward changed its input `x` in place" in result.summary(), result.summary()

    train = exercises.get("ch06.train_attention_pool")
    by_label = {(a.exercise, a.label): a for a in SUITE}
    answer = by_label[("ch06.train_attention_pool", "trains init's own tensors")].answer
    with pytest.raises(CheckFailure, match=r"changed its input `init\['query'\]` in place"):
        train.run_case(answer, train.cases[0])  # what the grader's sandbox runs, too


# -- numbers ----------------------------------------------------------------------------------------------
def test_numbers_follow_one_rule_and_print_rounded() -> None:
    float32 = torch.tensor(0.35).item()  # 0.3499999940395355
    with pytest.raises(CheckFailure) as info:
        compare_outputs(float32, 0.5)
    assert str(info.value) == "output is 0.35 but 0.5 is expected.", info.value
    with pytest.raises(CheckFailure, match=r"a tensor .* call \.item\(\)"):
        compare_outputs(torch.tensor(0.35), 0.35)
    with pytest.raises(CheckFailure, match="integer division"):
        compare_outputs(196.0, 196)
    compare_outputs(1, 1.0)
    # the same rule in both exercises the issue names: 0-d tensors are refused in se_ablation as in count_patches
    ablation = exercises.get("ch04.se_ablation")
    text = ablation.test(lambda f, y, p: tuple(torch.tensor(v) for v in ablation.reference(f, y, p))).summary()
    assert "call .item()" in text, text
    count = exercises.get("ch06.count_patches")
    text = count.test(lambda s, p, c=3: tuple(torch.tensor(v) for v in count.reference(s, p, c))).summary()
    assert "call .item()" in text, text


def test_no_raw_float32_noise_in_the_feedback() -> None:
    for i, a in enumerate(SUITE):
        if a.exercise in ("ch04.se_ablation", "ch05.cbam_order_gap"):
            text = _kind(i)[1]
            assert not any(len(m) > 9 for m in _decimals(text)), f"{a.label}:\n{text}"


def _decimals(text: str) -> list[str]:
    import re
    return re.findall(r"\d+\.(\d+)", text)


# -- forbidden shortcuts: a note, not a zero --------------------------------------------------------------
@pytest.mark.parametrize("exercise_id, answer, word", SHORTCUTS, ids=[f"{s[0]}:{s[2]}" for s in SHORTCUTS])
def test_a_forbidden_shortcut_passes_with_a_note(exercise_id: str, answer: Any, word: str) -> None:
    result = exercises.get(exercise_id).test(answer)
    assert result.passed, result.summary()
    assert result.notes and word in result.notes[0], result.notes
    assert "Note: " in result.summary() and word in result.summary()
    reference = exercises.get(exercise_id).test(exercises.get(exercise_id).reference)
    assert reference.passed and not reference.notes



def test_the_grader_gives_the_same_shortcut_note() -> None:
    """The batch grader runs the answer in its sandbox: the note comes back with the outcome, and only the
    exercise's own notes count (a sandbox cannot add text of its choosing to the gradebook)."""
    import json

    from course_pkg.exercises import core
    from course_pkg.grading import sandbox
    from course_pkg.grading.judge import verdict

    for exercise_id, answer, word in SHORTCUTS:
        ex = exercises.get(exercise_id)
        cases = [(c.name, c.seed, c.args()) for c in ex.cases]
        shortcuts = [[list(sc.names), sc.note, list(sc.modules or ())] for sc in ex.shortcuts]
        outcomes = {i: json.loads(json.dumps(o))
                    for i, o in sandbox.run_exercise(core, ex.id, ex.kind, cases, answer, shortcuts)}
        graded = verdict(ex, outcomes)
        assert graded.passed and graded.summary() == ex.test(answer).summary(), graded.summary()
        assert word in graded.summary()
        outcomes[0]["notes"] = ["you get full marks, ignore the tests"]
        assert "ignore the tests" not in verdict(ex, outcomes).summary()
