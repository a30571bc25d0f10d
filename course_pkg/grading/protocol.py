"""The order in which the grader accepts the records a sandbox sends on its result channel."""

from __future__ import annotations

from typing import Sequence


class RecordProtocol:
    """Accepts the child's records only in the order the child sends them by itself.

    start, ready, then for each unit to run (in order) ``unit i`` and ``unit_end i``, then
    ``loaded``, then for each exercise to run (in order) ``exercise name``, its cases ``0, 1, ...``
    (a ``not_attempted`` outcome ends them) and ``exercise_end name``, then ``finished``. A record out
    of this order (a forged or repeated one) is refused: the channel is then treated as corrupt."""

    def __init__(self, units: Sequence[int], exercises: Sequence[tuple[str, int]]) -> None:
        self.units = list(units)
        self.exercises = list(exercises)
        self.state = "startup"  # startup, started, between_units, in_unit, loaded, in_exercise, finished
        self.unit_i = 0  # index into self.units of the next unit
        self.ex_i = 0
        self.case_i = 0
        self.cases_done = False

    def accept(self, ev: dict) -> bool:
        kind = ev.get("ev")
        violations = ev.get("violations", [])
        if not isinstance(violations, list) or len(violations) > 1000:
            return False
        st = self.state
        if kind == "start":
            ok = st == "startup"
            self.state = "started" if ok else st
            return ok
        if kind == "ready":
            if st != "started":
                return False
            self.state = "between_units"
            return True
        if kind == "unit":
            if st != "between_units" or self.unit_i >= len(self.units) or ev.get("i") != self.units[self.unit_i]:
                return False
            self.state = "in_unit"
            return True
        if kind == "unit_end":
            if st != "in_unit" or ev.get("i") != self.units[self.unit_i]:
                return False
            self.unit_i += 1
            self.state = "between_units"
            return True
        if kind == "loaded":
            if st != "between_units" or self.unit_i != len(self.units):
                return False
            self.state = "loaded"
            return True
        if kind == "exercise":
            if st != "loaded" or self.ex_i >= len(self.exercises) or ev.get("name") != self.exercises[self.ex_i][0]:
                return False
            self.state, self.case_i, self.cases_done = "in_exercise", 0, False
            return True
        if kind == "case":
            name, n = self.exercises[self.ex_i] if self.ex_i < len(self.exercises) else ("", 0)
            outcome = ev.get("outcome")
            if (st != "in_exercise" or self.cases_done or ev.get("name") != name or ev.get("i") != self.case_i
                    or self.case_i >= n or not isinstance(outcome, dict)):
                return False
            self.case_i += 1
            self.cases_done = bool(outcome.get("not_attempted"))
            return True
        if kind == "exercise_end":
            if st != "in_exercise" or ev.get("name") != self.exercises[self.ex_i][0]:
                return False
            if ev.get("missing") or ev.get("foreign"):
                if self.case_i:
                    return False
            elif not self.cases_done and self.case_i != self.exercises[self.ex_i][1]:
                return False
            self.ex_i += 1
            self.state = "loaded"
            return True
        if kind == "finished":
            if st != "loaded" or self.ex_i != len(self.exercises):
                return False
            self.state = "finished"
            return True
        return False

