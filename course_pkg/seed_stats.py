"""Comparing trained networks over seeds: mean and spread, the gap between two kinds, learning curves.

One training run of each architecture cannot separate what the architecture does from what the seed
(initialisation, shuffling) does. Chapters 4 and 5 therefore compare *kinds* of network, each trained
with several seeds, and read their stored learning curves. The helpers here are the few statistics
they need:

* :func:`mean_sd`: mean and sample standard deviation over seeds;
* :func:`compare`: the difference of two kinds' means in units of its standard error, with a verdict
  in words that the prose can quote (so the text cannot claim more than the numbers show);
* :func:`epochs_to_reach` and :func:`settled_epoch`: how fast a learning curve rises, and from which
  epoch on it stays within a tolerance of its final value (the evidence that training converged).

A learning curve is a manifest entry's ``history``: a list of per-epoch records
``{"epoch": 1, "val_acc": 0.25, ...}`` in epoch order.
"""

from __future__ import annotations

import math
import numbers
import statistics
from typing import Any, NamedTuple, Optional, Sequence

__all__ = ["Comparison", "compare", "epochs_to_reach", "mean_sd", "settled_epoch"]


def _numbers(name: str, values: Any, at_least: int = 1) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{name} holds {v!r}; use finite numbers (one per seed)")
        out.append(float(v))
    if len(out) < at_least:
        raise ValueError(f"{name} has {len(out)} value(s); give at least {at_least}")
    return out


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of ``values`` (one per seed); the sd is ``nan`` for one value."""
    v = _numbers("values", values)
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else float("nan"))


class Comparison(NamedTuple):
    """What :func:`compare` returns."""

    diff: float     # mean(b) - mean(a)
    se: float       # standard error of that difference
    z: float        # |diff| / se (inf when se is 0 and the means differ, 0 when they are equal)
    verdict: str    # e.g. "B is clearly ahead" or "a difference the seeds cannot tell from their spread"


def compare(a: Sequence[float], b: Sequence[float], name_a: str = "A", name_b: str = "B",
            threshold: float = 2.0) -> Comparison:
    """Compare kind ``b`` with kind ``a`` from one score per seed each (at least two seeds each).

    The standard error of the difference of means is ``sqrt(sd_a**2 / n_a + sd_b**2 / n_b)``. The
    verdict calls ``b`` clearly ahead (behind) only when the difference is at least ``threshold``
    standard errors; otherwise it says the seeds cannot tell the difference from their spread. When every
    seed of each kind scored the same (standard error 0), a gap is clear (``z`` is infinite) and equal
    means are no difference. With three seeds this is a rough guide, not a significance test.
    """
    xa, xb = _numbers("a", a, 2), _numbers("b", b, 2)
    if not (isinstance(threshold, numbers.Real) and not isinstance(threshold, bool) and threshold > 0):
        raise ValueError(f"threshold={threshold!r} is not valid; use a positive number of standard errors")
    (ma, sa), (mb, sb) = mean_sd(xa), mean_sd(xb)
    diff = mb - ma
    se = math.sqrt(sa ** 2 / len(xa) + sb ** 2 / len(xb))
    if se > 0:
        z = abs(diff) / se
    else:   # every seed of each kind scored the same: any gap is exact, no gap is no difference
        z = math.inf if diff != 0 else 0.0
    if diff == 0:
        verdict = "no difference: the means are equal"
    elif z >= threshold:
        verdict = f"{name_b} is clearly {'ahead of' if diff > 0 else 'behind'} {name_a}"
    else:
        verdict = "a difference these seeds cannot tell from the spread between seeds"
    return Comparison(diff, se, z, verdict)


def _curve(history: Any, key: str) -> list[tuple[int, float]]:
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence) or not history:
        raise ValueError("history must be a non-empty list of per-epoch records like "
                         "{'epoch': 1, 'val_acc': 0.5}")
    try:
        return [(int(r["epoch"]), float(r[key])) for r in history]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"history must hold records with 'epoch' and {key!r} ({err!r})") from None


def _fraction_curve(curve: list[tuple[int, float]]) -> bool:
    """Every value in [0, 1]: an accuracy (or another fraction), not a percent."""
    return all(0.0 <= v <= 1.0 for _, v in curve)


def epochs_to_reach(history: Sequence[dict], level: float, key: str = "val_acc") -> Optional[int]:
    """The first epoch whose ``key`` is at least ``level``, or ``None`` if the curve never gets there.

    ``level`` is in the curve's unit: a fraction such as 0.9 for an accuracy in [0, 1] (``90`` on such a
    curve is taken for a percent and raises ``ValueError``).
    """
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not math.isfinite(level):
        raise ValueError(f"level={level!r} is not valid; use a number such as 0.9")
    curve = _curve(history, key)
    if level > 1 and _fraction_curve(curve):
        raise ValueError(f"level={level!r} is above 1, but {key!r} is a fraction in [0, 1] (an accuracy), so "
                         f"it would never be reached; if {level:g} is a percent, use level={level / 100:g}")
    return next((e for e, v in curve if v >= level), None)


def settled_epoch(history: Sequence[dict], tolerance: float = 0.02, key: str = "val_acc",
                  window: int = 1) -> int:
    """The first epoch from which every later value of ``key`` lies within ``tolerance`` of the last one.

    A curve that settles early, long before the learning rate runs out, has converged for this budget;
    one that settles only in its last epoch was still moving when training stopped. With ``window=k``
    each value is first replaced by the median of the last ``k`` epochs (fewer at the start), so that a
    one-epoch dip while the learning rate is high, recovered at the next epoch, does not count as
    "still moving".
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance!r} is not valid; use a non-negative number such as 0.02")
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1:
        raise ValueError(f"window={window!r} is not valid; use a positive number of epochs such as 5")
    window = int(window)
    curve = _curve(history, key)
    if tolerance >= 1 and _fraction_curve(curve):
        raise ValueError(f"tolerance={tolerance!r} is 1 or more, but {key!r} is a fraction in [0, 1] (an "
                         "accuracy), so every epoch would count as settled; if it is a percent, use "
                         f"tolerance={tolerance / 100:g}")
    if window > 1:
        values = [v for _, v in curve]
        curve = [(e, statistics.median(values[max(0, i - window + 1):i + 1]))
                 for i, (e, _) in enumerate(curve)]
    final = curve[-1][1]
    settled = curve[-1][0]
    for epoch, value in reversed(curve):
        if abs(value - final) > tolerance:
            break
        settled = epoch
    return settled


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
