"""Run the mistake suite (tests/feedback_suite.py) and print how the exercise feedback fares, per chapter.

Usage: ``python scripts/feedback_report.py [-v] [chNN ...]`` from the repository root; ``-v`` also prints
every attempt that is not named exactly, with its feedback; chapters given restrict the run to them. The kinds: named exactly / partly / generic / misleading /
accepted (see tests/feedback_suite.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from feedback_suite import KINDS, SUITE, counts  # noqa: E402


def main() -> int:
    verbose = "-v" in sys.argv[1:]
    chapters = [a for a in sys.argv[1:] if a.startswith("ch")]
    details: dict = {}
    table = counts(details, chapters or None)
    print(f"{'chapter':8} {'attempts':>8} " + " ".join(f"{k:>10}" for k in KINDS))
    total = dict.fromkeys(KINDS, 0)
    for chapter in sorted(table):
        row = table[chapter]
        print(f"{chapter:8} {sum(row.values()):8d} " + " ".join(f"{row[k]:10d}" for k in KINDS))
        for k in KINDS:
            total[k] += row[k]
    n = sum(total.values())
    print(f"{'all':8} {n:8d} " + " ".join(f"{total[k]:10d}" for k in KINDS))
    print(f"named exactly: {total['named']}/{n} = {100 * total['named'] / n:.1f}%; "
          f"misleading: {total['misleading']}; accepted: {total['accepted']}")
    per_ex: dict[str, int] = {}
    for a in SUITE:
        if chapters and a.exercise.split(".")[0] not in chapters:
            continue
        per_ex[a.exercise] = per_ex.get(a.exercise, 0) + 1
    print(f"exercises: {len(per_ex)}; fewest attempts for one exercise: {min(per_ex.values())}")
    if verbose:
        for (ex, label), (kind, text) in details.items():
            if kind != "named":
                print(f"\n--- {ex} / {label}: {kind}\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
