"""The batch grader's command line: ``python -m course_pkg.grade`` (also ``course-grade``).

A thin entry point; the grader lives in :mod:`course_pkg.grading` (the command line and the
safety model in :mod:`course_pkg.grading.cli`, one batch run in :mod:`course_pkg.grading.batch`)."""

from __future__ import annotations

import os
import sys

from .grading.cli import main

if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
