"""The grader's two planted bugs that no test caught (issue 22), each with its own test.

* **All-or-nothing marks.** An exercise scores the fraction of its cases that pass (the module docstring of
  :mod:`course_pkg.grading.cli` and ``Exercise.test`` say so); a grader that gives 1 or 0 still passes
  every test whose learners are either right or wrong everywhere.
* **``--timeout`` ignored by the command line.** The tests call ``grade(..., limits=Limits(timeout=8))``
  directly, so a command line that builds its ``Limits`` without ``args.timeout`` goes unnoticed.

One learner, graded once through the command line (``main``), carries both: a ``softmax_weights``
without the max shift (right on 3 of its 5 cases: it overflows on large scores) and a
``weighted_average`` that never returns.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from grading_helpers import AP_SELF, CH, KERNEL, answer, sources_with

from course_pkg.grading import samples
from course_pkg.grading.cli import main
from course_pkg.grading.limits import Limits
from course_pkg.grading.plan import chapter_exercises

TIMEOUT = 10.0                      # seconds; the default is 60
NO_SHIFT = "e = torch.exp(scores)\nreturn e / e.sum(dim=-1, keepdim=True)"


def _expected_fraction() -> float:
    """The in-notebook check's score of the unshifted softmax: a fraction strictly between 0 and 1."""
    ex = next(e for e in chapter_exercises(CH) if e.name == "softmax_weights")
    namespace: dict = {"torch": torch}
    exec(answer("softmax_weights", NO_SHIFT), namespace)  # noqa: S102 - our own test source
    return ex.test(namespace["softmax_weights"]).score


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("planted_grader")
    sources = sources_with(softmax_weights=answer("softmax_weights", NO_SHIFT),
                           weighted_average=answer("weighted_average", "while True:\n    pass"),
                           attention_pool=AP_SELF)
    sub = samples.write_py(root / "pat.py", CH, sources)
    out = root / "out"
    unsafe = [] if KERNEL else ["--unsafe-no-isolation"]
    code = main([str(sub), "--out", str(out), "--timeout", f"{TIMEOUT:g}", "--jobs", "1", *unsafe])
    results = json.loads((out / "pat" / "results.json").read_text())
    with open(out / "gradebook.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    return {"code": code, "results": results, "row": row}


def _test(results: dict, name: str) -> dict:
    return next(t for t in results["tests"] if t["name"].startswith(f"{CH}.{name}"))


def test_an_exercise_scores_the_fraction_of_its_cases_that_pass(graded: dict) -> None:
    """Bug: the grader gives 1 for an exercise whose cases all pass and 0 otherwise."""
    fraction = _expected_fraction()
    assert 0 < fraction < 1
    assert graded["code"] == 0
    softmax = _test(graded["results"], "softmax_weights")
    assert softmax["score"] == pytest.approx(fraction) and softmax["max_score"] == 1.0
    assert softmax["status"] == "failed"
    assert graded["row"][f"{CH}.softmax_weights"] == f"{fraction:g}"
    assert float(graded["row"]["total"]) == pytest.approx(fraction + 0 + 1)   # weighted_average hangs: 0
    assert graded["results"]["score"] == pytest.approx(fraction + 1)


def test_the_command_line_applies_its_timeout(graded: dict) -> None:
    """Bug: ``--timeout`` parsed but the default (60 s) used: the hanging exercise then runs 60 s."""
    assert Limits().timeout >= 6 * TIMEOUT, "the test needs a timeout well below the default"
    hang = _test(graded["results"], "weighted_average")
    assert hang["score"] == 0.0
    assert graded["results"]["extra_data"]["exercises"][f"{CH}.weighted_average"] == "timeout"
    assert f"more than {TIMEOUT:g} s" in hang["output"], hang["output"]


def test_the_command_line_refuses_a_zero_timeout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The same bug, seen without grading anyone: ``--timeout 0`` must reach the check that refuses it."""
    sub = samples.write_py(tmp_path / "s.py", CH, {})
    assert main([str(sub), "--timeout", "0", "--out", str(tmp_path / "o")]) == 2
    assert "timeout=0.0 must be a positive number of seconds" in capsys.readouterr().err
