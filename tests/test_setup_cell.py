"""The chapters' first cell without a network: it gives up within about a minute, with one short message.

Each case runs the cell (``tests/setup_cell.py``, the text every chapter starts with) in IPython, the way
Jupyter and Colab run it, in a process where course_pkg is not importable (as on a fresh Colab) and inside
a network namespace of its own (``unshare``): with no network at all, and with a server that accepts the
connection and then never answers (a stalled connection).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CELL = (ROOT / "tests" / "setup_cell.py").read_text()
LIMIT_S = 75          # "about a minute"

RUNNER = textwrap.dedent('''
    import socket, sys, threading
    # as on a fresh Colab: hide the editable install of course_pkg
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path[:] = [p for p in sys.path if p not in ("", ".", {root!r})]
    import importlib.util
    assert importlib.util.find_spec("course_pkg") is None, "course_pkg is still importable"
    if {stall!r}:
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        held = []
        def accept_and_say_nothing():
            while True:
                held.append(server.accept()[0])
        threading.Thread(target=accept_and_say_nothing, daemon=True).start()
        import os
        os.environ["COURSE_PKG_SOURCE"] = f"http://127.0.0.1:{{port}}/course_pkg-0.1.0-py3-none-any.whl"
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    result = shell.run_cell(open({cell!r}).read())
    print("CELL_FAILED" if result.error_in_exec is not None else "CELL_OK")
''')


def _run(tmp_path: Path, stall: bool) -> tuple[float, str]:
    if not shutil.which("unshare"):
        _skip_or_fail("util-linux's unshare is not installed")
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        _skip_or_fail(f"this machine does not allow network namespaces: {probe.stderr.strip()}")
    script = tmp_path / "runner.py"
    script.write_text(RUNNER.format(root=str(ROOT), stall=stall, cell=str(ROOT / "tests" / "setup_cell.py")))
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_PKG_SOURCE", "PYTHONPATH")}
    # the stalled server needs a working loopback inside the namespace; "no network" keeps even that down
    inner = f"ip link set lo up && exec {sys.executable} {script}" if stall else f"exec {sys.executable} {script}"
    start = time.perf_counter()
    proc = subprocess.run(["unshare", "-rn", "sh", "-c", inner], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    return time.perf_counter() - start, proc.stdout + proc.stderr


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _check_message(out: str) -> None:
    assert "CELL_FAILED" in out, out
    assert "Could not install course_pkg" in out, out
    assert "COURSE_PKG_SOURCE" in out and "git+https://" in out, "name both ways out:\n" + out
    assert "Traceback" not in out and "CalledProcessError" not in out, "no traceback:\n" + out
    message = out[out.index("Could not install"):out.index("CELL_FAILED")]
    assert len(message.strip().splitlines()) <= 10, "one short message:\n" + message


def test_without_network_the_first_cell_fails_fast_and_clearly(tmp_path: Path) -> None:
    seconds, out = _run(tmp_path, stall=False)
    _check_message(out)
    assert seconds < LIMIT_S, f"took {seconds:.0f} s"


@pytest.mark.slow
def test_on_a_stalled_connection_the_first_cell_gives_up_within_about_a_minute(tmp_path: Path) -> None:
    if not shutil.which("ip"):
        _skip_or_fail("iproute2's ip is needed to bring the namespace's loopback up")
    seconds, out = _run(tmp_path, stall=True)
    _check_message(out)
    assert "127.0.0.1" in out
    assert seconds < LIMIT_S, f"took {seconds:.0f} s"


def test_as_a_plain_python_script_it_exits_with_the_message_alone(tmp_path: Path) -> None:
    """Outside Jupyter (``python cell.py`` in a fresh venv, no network): exit status 1, no traceback."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rn", "true"]).returncode != 0:
        _skip_or_fail("this machine does not allow network namespaces")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "v")], check=True)
    (tmp_path / "cell.py").write_text(CELL)
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_PKG_SOURCE", "PYTHONPATH")}
    start = time.perf_counter()
    proc = subprocess.run(["unshare", "-rn", str(tmp_path / "v" / "bin" / "python"), "cell.py"], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Could not install course_pkg" in out and "COURSE_PKG_SOURCE" in out, out
    assert "Could not resolve host" in out, out      # git's own reason, not a missing pip
    assert "Traceback" not in out, out
    assert time.perf_counter() - start < LIMIT_S
