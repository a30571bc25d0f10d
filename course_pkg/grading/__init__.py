"""The batch grader's parts: finding submissions (:mod:`.submissions`), the sandboxed child
(:mod:`.sandbox`), running and judging (:mod:`.runner`), the reports (:mod:`.report`), and
sample submissions built from the exercises (:mod:`.samples`). The command line is
``python -m course_pkg.grade`` (:mod:`course_pkg.grade`)."""
