"""The batch grader's parts: the command line (:mod:`.cli`, also ``python -m course_pkg.grade``) and
one batch run (:mod:`.batch`); finding the learners (:mod:`.discovery`) and reading their files
(:mod:`.submissions`, :mod:`.cells`); the kernel sandbox (:mod:`.isolation`, bubblewrap; :mod:`.cgroup`)
and the child that runs learner code (:mod:`.sandbox`); grading one file (:mod:`.runner`: the
chapter's :mod:`.plan`, running the :mod:`.child` under its :mod:`.limits`, the record
:mod:`.protocol`, judging in :mod:`.judge`, the :mod:`.results`); the reports (:mod:`.report`,
:mod:`.text`), the Gradescope autograder bundle (:mod:`.gradescope`), and sample submissions built
from the exercises (:mod:`.samples`)."""
