"""The batch grader's parts: the command line and the whole run (:mod:`.cli`, also
``python -m course_pkg.grade``), finding submissions (:mod:`.submissions`), the kernel sandbox
(:mod:`.isolation`, bubblewrap), the child that runs learner code (:mod:`.sandbox`), running and
judging (:mod:`.runner`), the reports (:mod:`.report`), the Gradescope autograder bundle
(:mod:`.gradescope`), and sample submissions built from the exercises (:mod:`.samples`)."""
