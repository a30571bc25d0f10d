"""course_pkg.seed_stats: statistics over seeds and learning curves."""

from __future__ import annotations

import math
import statistics

import pytest

from course_pkg.seed_stats import compare, epochs_to_reach, mean_sd, settled_epoch


def _history(values: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "val_acc": v} for i, v in enumerate(values)]


def test_mean_sd() -> None:
    assert mean_sd([0.9, 0.8, 1.0]) == pytest.approx((0.9, statistics.stdev([0.9, 0.8, 1.0])))
    m, sd = mean_sd([0.5])
    assert m == 0.5 and math.isnan(sd)


def test_compare_verdicts() -> None:
    far = compare([0.80, 0.81, 0.79], [0.90, 0.91, 0.89], "plain", "SE")
    assert far.diff == pytest.approx(0.10) and far.z > 2
    assert far.verdict == "SE is clearly ahead of plain"
    behind = compare([0.90, 0.91, 0.89], [0.80, 0.81, 0.79], "plain", "SE")
    assert behind.verdict == "SE is clearly behind plain"
    close = compare([0.80, 0.90, 0.85], [0.82, 0.92, 0.80], "plain", "SE")
    assert close.z < 2 and "cannot tell" in close.verdict
    se = math.sqrt(statistics.variance([0.80, 0.90, 0.85]) / 3 + statistics.variance([0.82, 0.92, 0.80]) / 3)
    assert close.se == pytest.approx(se)
    same = compare([0.5, 0.5], [0.5, 0.5])
    assert same.z == 0 and same.diff == 0 and "no difference" in same.verdict
    # every seed tied within each kind, with a clear gap between the kinds: a clear verdict (issue 21)
    tied = compare([0.5, 0.5, 0.5], [0.9, 0.9, 0.9], "plain", "SE")
    assert math.isinf(tied.z) and tied.verdict == "SE is clearly ahead of plain"


def test_learning_curve_measures() -> None:
    h = _history([0.25, 0.5, 0.8, 0.93, 0.95, 0.94, 0.96, 0.95])
    assert epochs_to_reach(h, 0.9) == 4
    assert epochs_to_reach(h, 0.99) is None
    assert settled_epoch(h, 0.02) == 4          # 0.93 ... 0.95 all within 0.02 of 0.95
    assert settled_epoch(h, 0.0) == 8
    assert settled_epoch(_history([0.2, 0.4, 0.6]), 0.05) == 3    # still rising at the end
    assert settled_epoch([{"epoch": 1, "train_acc": 0.5}], 0.01, key="train_acc") == 1
    dip = _history([0.3, 0.9, 0.97, 0.98, 0.6, 0.98, 0.99, 0.98])   # one bad epoch at 5
    assert settled_epoch(dip, 0.02) == 6
    assert settled_epoch(dip, 0.02, window=3) == 4       # medians .3 .6 .9 .97 .97 .98 .98 .98


@pytest.mark.parametrize("call, match", [
    (lambda: mean_sd([]), "at least 1"),
    (lambda: mean_sd("0.5"), "list of numbers"),
    (lambda: mean_sd([0.5, float("nan")]), "finite numbers"),
    (lambda: compare([0.5], [0.5, 0.6]), "a has 1 value"),
    (lambda: compare([0.5, 0.6], [0.5, 0.6], threshold=0), "threshold=0"),
    (lambda: epochs_to_reach([], 0.9), "non-empty list"),
    (lambda: epochs_to_reach(_history([0.5]), "0.9"), "level='0.9'"),
    (lambda: settled_epoch([{"epoch": 1}], 0.02), "'val_acc'"),
    (lambda: settled_epoch(_history([0.5]), -1), "tolerance=-1"),
    (lambda: settled_epoch(_history([0.5]), 0.02, window=0), "window=0"),
])
def test_bad_input_is_named(call, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        call()
