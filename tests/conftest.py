"""Shared test set-up: headless matplotlib, a `gpu` marker that skips without CUDA."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# ------------------------------------------------------------------------------------------------
# The built book, shared by the build test and the browser test (built once per session).
# ------------------------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build the book with warnings as errors into a temporary folder.

    Returns ``{"html": Path to _build/html, "log": build output, "returncode": int}``. Set
    ``COURSE_BUILT_BOOK=/path/to/_build/html`` to reuse a build you made by hand while developing.
    """
    reuse = os.environ.get("COURSE_BUILT_BOOK")
    if reuse:
        return {"html": Path(reuse), "log": "(reused)", "returncode": 0}
    out = tmp_path_factory.mktemp("book")
    jb = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
    proc = subprocess.run([jb, "build", str(ROOT), "-W", "-n", "--keep-going", "--path-output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return {"html": out / "_build" / "html", "log": proc.stdout + proc.stderr, "returncode": proc.returncode}


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as a terminal gives it. A suite started as a background job of a non-interactive shell
    (``cmd &`` in a script) inherits SIGINT *ignored*: Python then never raises ``KeyboardInterrupt``, and
    every process it starts ignores Ctrl-C too, so the tests of Ctrl-C handling (the exercise checks, the
    training CLI) would test nothing real. Restore Python's own handler, which children reset to the default."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
