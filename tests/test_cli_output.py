"""What the training command line shows: what it is doing from the start, and lines that start on their own.

The console here is one stream that both stdout and stderr write to (as a terminal is), each write
time-stamped, so the tests see what a learner sees: the order, where each line starts, and when.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
from typing import Any, Iterator

import pytest

from course_pkg.cli.train import main
from course_pkg.train import loop

SMALL = ["--model", "simple_cnn", "--kwargs", '{"width": 4}', "--dataset", "clutter", "--n-train", "48",
         "--n-val", "16", "--n-test", "16", "--image-size", "24", "--num-classes", "3", "--batch-size", "16",
         "--device", "cpu"]


class Console(io.StringIO):
    """stdout and stderr in one, as in a terminal; ``times`` holds (seconds since start, text) per write."""

    def __init__(self) -> None:
        super().__init__()
        self.start = time.perf_counter()
        self.times: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.times.append((time.perf_counter() - self.start, text))
        return super().write(text)

    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def terminal() -> Iterator[Console]:
    """A Console in place of stdout and stderr (inside the test: pytest puts its own back before a test)."""
    con = Console()
    with contextlib.redirect_stdout(con), contextlib.redirect_stderr(con):
        yield con


def _starts_own_line(text: str, needle: str) -> bool:
    at = text.index(needle)
    return at == 0 or text[at - 1] in "\n\r"


def test_it_says_what_it_does_within_two_seconds_before_making_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    import course_pkg.cli.train as cli

    made = {}
    real = cli._load_data

    def slow_data(args: Any) -> dict:
        made["at"] = time.perf_counter() - console.start
        time.sleep(2.5)                       # as a large data set takes its time
        return real(args)

    monkeypatch.setattr(cli, "_load_data", slow_data)
    with terminal() as console:
        main([*SMALL, "--epochs", "1", "--no-progress"])
    first_t, _ = console.times[0]
    text = console.getvalue()
    assert first_t < 2.0, f"the first line came after {first_t:.1f} s"
    lines = text.splitlines()
    assert "parameters" in lines[0] and "on cpu" in lines[0], lines[:3]
    assert lines[1].startswith("making the data: clutter, 48 train, 16 validation and 16 test images of 24 px")
    said = next(t for t, s in console.times if "making the data" in s)
    assert said < made["at"], "the data was being made before the command said so"
    assert lines[2].startswith("data ready: 48 train images (")


def test_epoch_lines_start_on_their_own_line_beside_the_progress_bar() -> None:
    with terminal() as console:
        main([*SMALL, "--epochs", "2"])
    text = console.getvalue()
    assert "epoch 1/2 train_loss" in text and "%|" in text, text[-2000:]
    for needle in ("epoch 1/2 train_loss", "epoch 2/2 train_loss", "test accuracy"):
        assert _starts_own_line(text, needle), repr(text[max(text.index(needle) - 80, 0):text.index(needle) + 20])


def test_ctrl_c_message_starts_on_its_own_line_and_is_the_command_lines_own(tmp_path: Any,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    steps = {"n": 0}
    real_step = loop.train_step

    def step_then_ctrl_c(*a: Any, **k: Any) -> Any:
        steps["n"] += 1
        if steps["n"] == 4:                  # in the second epoch, with the bar on screen
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*a, **k)

    monkeypatch.setattr(loop, "train_step", step_then_ctrl_c)
    with terminal() as console, pytest.raises(SystemExit) as stop:
        main([*SMALL, "--epochs", "3", "--out", str(tmp_path / "m.pt")])
    assert stop.value.code == 130
    text = console.getvalue()
    assert "Ctrl-C: stopping at the end of this step" in text
    for needle in ("Ctrl-C: stopping", "interrupted: the finished work is saved"):
        assert _starts_own_line(text, needle), repr(text[max(text.index(needle) - 80, 0):text.index(needle) + 20])
    assert "fit was interrupted" not in text, "the notebook's note is not for the command line"


def test_grading_console_notes_are_wrapped_never_cut() -> None:
    from course_pkg.grading.report import LearnerResult, summary_table

    note = ("ch01.softmax_weights: case 3 (rows that sum to one) expected shape (4, 5), got (5, 4): did you "
            "take the softmax over the wrong dimension? use dim=-1")
    learner = LearnerResult(learner="ada", notes=[note], error="could not read the notebook")
    text = summary_table([learner], ["ch01.softmax_weights"], width=80)
    notes = text.split("Notes:\n", 1)[1]
    assert f"ada: {note}" in " ".join(part.strip() for part in notes.splitlines())
    assert all(len(line) <= 80 for line in notes.splitlines()) and "..." not in notes
