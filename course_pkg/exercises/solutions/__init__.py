"""Reference solutions, one module per chapter. The exercises show them with ``.solution()``;
the grader refuses an answer that is one of them (or any other course_pkg function)."""
