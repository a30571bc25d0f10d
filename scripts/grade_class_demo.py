"""Grade a made-up class with the batch grader and report how long it took.

    python scripts/grade_class_demo.py                     # 30 learners, chapter 1, --jobs 2
    python scripts/grade_class_demo.py --learners 60 --chapter ch04 --jobs 4 --misbehave

Builds N submissions from the chapter's registered exercises (half notebooks, half .py files; each
answer right, wrong or left as the stub, chosen by a seeded draw), optionally adds a few
misbehaving ones (a hang, a crash, an import of the course's solutions), grades them all with
``course_pkg.grading.batch.grade`` and prints the summary and the wall-clock time. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import inspect
import random
import tempfile
import time
from pathlib import Path

from course_pkg.grading import samples
from course_pkg.grading.batch import grade
from course_pkg.grading.limits import Limits
from course_pkg.grading.plan import chapter_exercises


def wrong_source(ex: object) -> str:
    """A plausible wrong answer: a function that hands back its first argument unchanged."""
    if ex.kind == "module":  # type: ignore[attr-defined]
        return samples.stub_source(ex)  # type: ignore[arg-type]
    params = list(inspect.signature(ex.reference).parameters)  # type: ignore[attr-defined]
    return f"def {ex.name}({', '.join(params)}):\n    return {params[0]}\n"  # type: ignore[attr-defined]


def build_class(folder: Path, chapter: str, n: int, misbehave: bool, seed: int = 0) -> None:
    rng = random.Random(seed)
    exercises = chapter_exercises(chapter)
    for i in range(n):
        sources = {}
        for ex in exercises:
            pick = rng.choices(["right", "wrong", "stub"], weights=[6, 2, 2])[0]
            sources[ex.name] = {"right": ex.solution_source, "wrong": lambda ex=ex: wrong_source(ex),
                                "stub": lambda ex=ex: samples.stub_source(ex)}[pick]()
        if i % 2:
            samples.write_py(folder / f"learner{i:03d}.py", chapter, sources)
        else:
            samples.write_notebook(folder / f"learner{i:03d}.ipynb", chapter, sources, metadata_chapter=chapter)
    if misbehave:
        first = exercises[0]
        sol = samples.solution_sources(chapter)
        params = ", ".join(inspect.signature(first.reference).parameters) if first.kind == "function" else "*a"
        bad = {
            "hangs": f"def {first.name}({params}):\n    while True:\n        pass\n",
            "crashes": f"def {first.name}({params}):\n    import faulthandler\n    faulthandler._sigsegv()\n",
            "copies_reference": f"from course_pkg.exercises.solutions.{chapter} import {first.name}\n",
        }
        for who, src in bad.items():
            samples.write_notebook(folder / f"{who}.ipynb", chapter, {**sol, first.name: src},
                                   metadata_chapter=chapter)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--learners", type=int, default=30)
    p.add_argument("--chapter", default="ch01")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per cell and per exercise")
    p.add_argument("--misbehave", action="store_true", help="add a hanging, a crashing and a copying learner")
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="run without the bubblewrap sandbox (to compare its cost)")
    p.add_argument("--out", type=Path, default=None,
                   help="keep the grades (gradebook.csv, one results.json per learner) in this folder; without it "
                        "they are written to a temporary folder that is deleted at the end")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="grade-demo-") as tmp:
        folder = Path(tmp) / "class"
        build_class(folder, args.chapter, args.learners, args.misbehave)
        n = len(list(folder.iterdir()))
        t0 = time.monotonic()
        isolation = "none" if args.unsafe_no_isolation else "auto"
        out = args.out or Path(tmp) / "out"
        grade([folder], out, limits=Limits(timeout=args.timeout, isolation=isolation), jobs=args.jobs)
        seconds = time.monotonic() - t0
    print(f"\nRESULT: {n} submissions of {args.chapter} graded in {seconds:.1f} s with --jobs {args.jobs} "
          f"({seconds / n:.2f} s per submission)")
    if args.out is None:
        print(f"The grades above were written to {out}, a temporary folder that is now deleted; "
              "run with --out DIR to keep them.")
    else:
        print(f"The grades are in {args.out} (gradebook.csv, and results.json per learner).")


if __name__ == "__main__":
    main()
