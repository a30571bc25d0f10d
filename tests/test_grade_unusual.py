"""The grader against a second hostile class (issue 21): honest but unusual learners get full marks,
a fabricated training run gets none, reports hold no control character and stay small, the time and
memory the grader gives one file are bounded, and each sandbox gets its own memory, task and CPU
limits where control groups can be made.

One class is graded once (``unusual``); the resource limits get a class of their own
(``limited``), graded only where control groups can be made here (CI runs as root).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import time
import tracemalloc
from pathlib import Path

import pytest
import torch
from grading_helpers import GradedClass

from course_pkg.exercises import ch06
from course_pkg.exercises.solutions import ch06 as ch06_ref
from course_pkg.grading import batch, cgroup, samples
from course_pkg.grading.batch import grade
from course_pkg.grading.cells import cells_needed, magic_lines, strip_magics
from course_pkg.grading.isolation import bwrap_problem
from course_pkg.grading.limits import Limits
from course_pkg.grading.plan import chapter_exercises
from course_pkg.grading.report import MAX_CELL_CHARS, csv_cell
from course_pkg.grading.submissions import MAX_CODE_TOKENS, count_json_values, load
from course_pkg.grading.text import cap, escape_controls

CH = "ch01"
NAMES = [ex.name for ex in chapter_exercises(CH)]
KNOWN = {CH: NAMES}
ISOLATION = "auto" if bwrap_problem() is None else "none"  # the verdicts below are the same in both
SOL = samples.solution_sources(CH)
ANSWERS = "\n\n".join(SOL[n] for n in NAMES)
TIMEOUT = 60  # generous: an honest import of matplotlib takes long on a loaded machine
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # any control character but \t and \n


def _fn(name: str, body: str) -> str:
    sig = {"softmax_weights": "(scores)", "weighted_average": "(weights, values)",
           "attention_pool": "(query, keys, values)"}[name]
    return f"def {name}{sig}:\n" + "".join(f"    {line}\n" for line in body.strip("\n").split("\n"))


def _with(**replace: str) -> dict[str, str]:
    srcs = dict(SOL)
    srcs.update(replace)
    return srcs


def _ex(r, name):  # noqa: ANN001, ANN202
    return next(e for e in r.exercises if e.name == name)


# ----------------------------------------------------------------------------------------------------
# The class
# ----------------------------------------------------------------------------------------------------
PLOT = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "fig = plt.figure()\nplt.plot([1, 2, 3])\nplt.close(fig)\n")
WRAPPED = '''def weighted_average(weights, values):
    steps = (weights.shape[-1]
             % 7)
    same = (steps
            != -1)
    assert same
    return weights @ values
'''
JIT = '''@torch.jit.script
def _shift(scores: torch.Tensor) -> torch.Tensor:
    return scores - scores.max(dim=-1, keepdim=True).values


def softmax_weights(scores):
    e = torch.exp(_shift(scores))
    return e / e.sum(dim=-1, keepdim=True)
'''
HELPER_CELLS = [  # an untagged (Colab) notebook: a helper in its own cell, an import, a cell never needed
    ("code", "import math as m\nimport torch"),
    ("code", "def stable_exp(x):\n    return torch.exp(x - x.max(dim=-1, keepdim=True).values)"),
    ("code", "while True:\n    pass  # a long experiment the grader must not run"),
    ("code", "def softmax_weights(scores):\n    e = stable_exp(scores)\n    return e / e.sum(dim=-1, keepdim=True)"),
    ("code", SOL["weighted_average"]),
    ("code", SOL["attention_pool"]),
    ("code", "softmax_weights(torch.zeros(2))"),
]
ESC_NAME = "01_evil\x1b[2J\x1b[31m\ngraded forged (forged.py): 3 of 3 in 0.1 s"


def _cells_notebook(path: Path, cells: list[tuple[str, str]], outputs: list | None = None) -> None:
    nb_cells = []
    for i, (kind, src) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": src}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    if outputs:
        nb_cells[0]["outputs"] = outputs
    nb = {"cells": nb_cells, "metadata": {"course": {"chapter": CH}}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")


@pytest.fixture(scope="module")
def unusual(tmp_path_factory: pytest.TempPathFactory) -> GradedClass:
    u = GradedClass(tmp_path_factory.mktemp("unusual"))
    s = u.subs
    # honest learners
    (s / "colab_plot.py").write_text(f'CHAPTER = "ch01"\n{PLOT}import torchvision\n{ANSWERS}\n'
                                     "print(torchvision.__version__ != '')\n")
    samples.write_notebook(s / "plot_in_answer.ipynb", CH, _with(softmax_weights=_fn(
        "softmax_weights", PLOT + "return torch.softmax(scores, dim=-1)")), metadata_chapter=CH)
    samples.write_py(s / "wrapped.py", CH, _with(weighted_average=WRAPPED))
    (s / "form_feed.py").write_text('CHAPTER = "ch01"\n' + "\n\x0c\n".join(SOL[n] for n in NAMES) + "\n")
    (s / "latin1.py").write_bytes(("# -*- coding: latin-1 -*-\nCHAPTER = 'ch01'\n# café, naïve\n"
                                   f"{ANSWERS}\nNOTE = 'déjà vu'\n").encode("latin-1"))
    (s / "bom.py").write_bytes(b"\xef\xbb\xbf" + f'CHAPTER = "ch01"\n{ANSWERS}\n'.encode())
    samples.write_py(s / "jit.py", CH, _with(softmax_weights=JIT))
    big_png = base64.b64encode(os.urandom(24 * 2**20)).decode()  # a 32 MB figure, saved but never run
    nb = samples.notebook(CH, SOL, metadata_chapter=CH)
    nb["cells"][1]["outputs"] = [{"output_type": "display_data", "metadata": {},
                                  "data": {"image/png": big_png, "text/plain": "<Figure>"}}]
    (s / "figures.ipynb").write_text(json.dumps(nb))
    del big_png, nb
    _cells_notebook(s / "colab_helper.ipynb", HELPER_CELLS)
    # the reports: escapes in a file name and in messages, huge messages, one note per failing statement
    (s / f"{ESC_NAME}.py").write_text(
        f'CHAPTER = "ch01"\n{ANSWERS}\n\n' + _fn("weighted_average", "raise RuntimeError("
                                                 "'\\x1b[2J\\x1b]0;owned\\x07\\ngraded x')"))
    samples.write_notebook(s / "huge_message.ipynb", CH, _with(weighted_average=_fn(
        "weighted_average", "return 'x' * 4_000_000")), metadata_chapter=CH)
    (s / "many_failures.py").write_text(f'CHAPTER = "ch01"\n{ANSWERS}\n' + "undefined_name_here\n" * 3000)
    # the grader's memory: an in-order forged record of millions of values
    forge = ("import os\nrec = b'{\"ev\": \"case\", \"name\": \"weighted_average\", \"i\": 0, \"outcome\": "
             "{\"output\": {\"t\": \"list\", \"v\": [' + b'{},' * 3_000_000 + b'{}]}}}\\n'\n"
             "for fd in range(3, 40):\n    try:\n        os.write(fd, rec)\n    except OSError:\n        pass\n"
             "return weights @ values")
    samples.write_notebook(s / "forged_record.ipynb", CH, _with(weighted_average=_fn("weighted_average", forge)),
                           metadata_chapter=CH)
    t0 = time.monotonic()
    results = grade([s], u.out, limits=Limits(timeout=TIMEOUT, memory_mb=1024, isolation=ISOLATION), jobs=2,
                    echo=u.log.append)
    u.seconds = time.monotonic() - t0
    u.results = {r.learner: r for r in results}
    return u


HONEST = ["colab_plot", "plot_in_answer", "wrapped", "form_feed", "latin1", "bom", "jit", "figures", "colab_helper"]


@pytest.mark.parametrize("learner", HONEST)
def test_unusual_honest_learners_get_full_marks(unusual: GradedClass, learner: str) -> None:
    r = unusual.results[learner]
    assert r.score == len(NAMES), (learner, r.all_notes(), [e.feedback for e in r.exercises])
    assert r.status == "ok", (learner, r.all_notes())


def test_colab_fallback_runs_the_helpers_the_answers_use_and_nothing_else(unusual: GradedClass) -> None:
    notes = " ".join(unusual.results["colab_helper"].all_notes())
    assert "no cell is tagged 'exercise'" in notes and "cell 1, cell 2 that they use" in notes, notes
    assert "cell 3" not in notes  # the endless experiment never ran (the file took well under its timeout)
    assert unusual.results["colab_helper"].submissions[0].seconds < 3 * TIMEOUT


def test_sleeping_in_every_statement_uses_up_the_budget(tmp_path: Path) -> None:
    """Each statement sleeps just under --timeout: the file's budget (--timeout x (exercises + 1) of
    running code) runs out while it loads, so no exercise scores."""
    timeout = 5
    sleepy = "\n".join(["import time"] + [f"time.sleep({timeout - 1})"] * 6)
    sub = tmp_path / "class" / "sleepy.py"
    sub.parent.mkdir()
    sub.write_text(f'CHAPTER = "ch01"\n{ANSWERS}\n{sleepy}\n')
    (r,) = grade([sub], tmp_path / "out", limits=Limits(timeout=timeout, isolation=ISOLATION), jobs=1,
                 echo=lambda s: None)
    assert r.score == 0, r.all_notes()
    assert {e.status for e in r.exercises} == {"timeout"}
    budget = timeout * (len(NAMES) + 1)
    assert all(f"time budget ({budget:g} s in all)" in e.reason for e in r.exercises), r.all_notes()


def test_no_control_character_reaches_any_report(unusual: GradedClass) -> None:
    u = unusual
    evil = next(r for r in u.results.values() if r.submissions and "evil" in r.submissions[0].path.name)
    assert _ex(evil, "weighted_average").status == "failed"
    for line in u.log:
        for part in line.split("\n"):
            assert not CONTROL.search(part), repr(part)
            assert not part.startswith(("graded forged (", "graded x")), part
    raw = (u.out / "gradebook.csv").read_text()
    assert not CONTROL.search(raw.replace("\r\n", "\n"))
    with open(u.out / "gradebook.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert all("\n" not in cell for row in rows for cell in row)
    for folder in u.out.iterdir():
        if folder.is_dir():
            data = json.loads((folder / "results.json").read_text())
            for text in [data["output"]] + [t["output"] for t in data["tests"]]:
                assert not CONTROL.search(text), (folder.name, text[:200])
            assert not CONTROL.search((folder / "output.txt").read_text())
    assert "\\x1b[2J" in " ".join(evil.all_notes() + [e.feedback for e in evil.exercises])


def test_reports_stay_small(unusual: GradedClass) -> None:
    u = unusual
    huge = u.results["huge_message"]
    assert _ex(huge, "weighted_average").status == "failed"
    assert (u.out / "huge_message" / "results.json").stat().st_size < 200_000
    with open(u.out / "gradebook.csv", newline="") as f:
        rows = {row["learner"]: row for row in csv.DictReader(f)}
    assert all(len(cell) <= MAX_CELL_CHARS for row in rows.values() for cell in row.values())
    many = u.results["many_failures"]
    assert many.score == len(NAMES)
    assert "and 2980 more cells or statements failed" in " ".join(many.all_notes())


def test_a_forged_record_of_millions_of_values_is_refused_before_parsing(unusual: GradedClass) -> None:
    r = unusual.results["forged_record"]
    e = _ex(r, "weighted_average")
    assert e.status == "crashed" and "more than 200,000 values" in e.reason, e
    assert all(x.status == "passed" for x in r.exercises if x.name != "weighted_average")


# ----------------------------------------------------------------------------------------------------
# Without a sandbox: parsing, counting, escaping, the fabricated training run
# ----------------------------------------------------------------------------------------------------
def test_magics_only_where_a_statement_starts() -> None:
    src = ("!pip install x\n%matplotlib inline\ny = (a\n     % b)\nz = (c\n     != d)\nw = a \\\n    != b\n"
           's = """\n%not a magic\n"""\nif x:\n    %time f()\nt = "!"  # (\n!ls\n')
    assert magic_lines(src) == [0, 1, 12, 14]
    out = strip_magics(src)
    assert "     % b)" in out and "     != d)" in out and "    != b" in out and "%not a magic" in out
    assert out.count("pass  # IPython magic") == 4


def test_untagged_fallback_keeps_the_cells_the_answers_need() -> None:
    sources = [src for _, src in HELPER_CELLS]
    assert cells_needed(sources, set(NAMES)) == [0, 1, 3, 4, 5]


def test_json_values_are_counted_without_parsing() -> None:
    assert count_json_values('{"a": [1, 2, "x,y[{"], "b": {}}') == 7
    assert count_json_values(b"[" + b"{}," * 1000 + b"{}]") == 1 + 1001 + 1000 + 1  # [, {s, commas


def test_a_py_file_of_a_million_statements_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "million.py"
    path.write_text('CHAPTER = "ch01"\n' + "a\n" * 1_000_000)
    tracemalloc.start()
    try:
        sub = load("x", path, None, KNOWN)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sub.problem and f"more than {MAX_CODE_TOKENS:,} words and symbols" in sub.problem
    assert peak < 50 * 2**20, peak  # reading and counting: a few times the file, no parse tree


def test_a_notebook_of_millions_of_values_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "values.ipynb"
    path.write_text('{"cells": [' + "{}," * 3_000_000 + '{}], "metadata": {}}')
    tracemalloc.start()
    try:
        sub = load("x", path, CH, KNOWN)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sub.problem and "JSON values" in sub.problem and "clear its outputs" in sub.problem
    assert peak < 100 * 2**20, peak


def test_escaping_and_capping_text() -> None:
    assert escape_controls("a\x1b[2Jb\nc\td\x7f\u202e") == "a\\x1b[2Jb\\nc\\td\\x7f\\u202e"
    assert escape_controls("a\nb\tc\x1b", keep="\n\t") == "a\nb\tc\\x1b"
    assert len(cap("x" * 100_000, 1000)) == 1000 and cap("short", 1000) == "short"
    cell = csv_cell("=cmd\n" + "y" * 100_000)
    assert cell.startswith("'=cmd\\n") and len(cell) <= MAX_CELL_CHARS and "\n" not in cell
    with pytest.raises(ValueError, match="limit=3"):
        cap("abc", 3)


def _fabricated_run(tokens, labels, init, steps, lr):  # noqa: ANN001, ANN202
    """Two real SGD updates, then an invented loss curve, and one-hot weights read off the marker."""
    first = ch06._sgd_losses(tokens, labels, init, lr, 3)
    losses = torch.tensor(first + [first[2] * 0.9 ** k for k in range(1, steps - 2)])
    marked = tokens[..., 0].argmax(dim=-1)
    return torch.nn.functional.one_hot(marked, tokens.shape[1]).float(), losses


def _real_losses_fake_weights(tokens, labels, init, steps, lr):  # noqa: ANN001, ANN202
    _, losses = ch06_ref.train_attention_pool(tokens, labels, init, steps, lr)
    marked = tokens[..., 0].argmax(dim=-1)
    return torch.nn.functional.one_hot(marked, tokens.shape[1]).float(), losses


@pytest.mark.parametrize("answer, fragment", [
    (_fabricated_run, "must come from the training run itself"),
    (_real_losses_fake_weights, "are not softmax(tokens @ query)"),
])
def test_a_fabricated_training_run_gets_no_marks(answer, fragment: str) -> None:  # noqa: ANN001
    result = ch06.train_attention_pool.test(answer)
    assert result.status == "failed" and result.score == 0, result.summary()
    assert fragment in result.summary()
    assert ch06.train_attention_pool.test(ch06_ref.train_attention_pool).status == "passed"


# ----------------------------------------------------------------------------------------------------
# Control groups: memory (shared memory included), tasks and CPU per sandbox
# ----------------------------------------------------------------------------------------------------
CGROUPS, NO_CGROUPS = cgroup.available()
needs_cgroups = pytest.mark.skipif(CGROUPS is None, reason=f"no control groups here: {NO_CGROUPS}")
MEMFD = ("import os\nblock = b'x' * 2**20\nheld = []\n"  # 48 files of 32 MB: each under the file-size limit
         "for i in range(48):\n    fd = os.memfd_create(f'hoard{i}')\n    held.append(fd)\n"
         "    for _ in range(32):\n        os.write(fd, block)\nreturn weights @ values")
THREADS = ("import threading, time\nstop = threading.Event()\nstarted = []\n"
           "try:\n    for _ in range(200):\n        t = threading.Thread(target=stop.wait)\n        t.start()\n"
           "        started.append(t)\nfinally:\n    stop.set()\nreturn weights @ values")


@needs_cgroups
def test_each_sandbox_gets_memory_task_and_cpu_limits(tmp_path: Path) -> None:
    subs = tmp_path / "class"
    samples.write_notebook(subs / "memfd.ipynb", CH, _with(weighted_average=_fn("weighted_average", MEMFD)),
                           metadata_chapter=CH)
    samples.write_notebook(subs / "threads.ipynb", CH, _with(weighted_average=_fn("weighted_average", THREADS)),
                           metadata_chapter=CH)
    log: list[str] = []
    results = {r.learner: r for r in grade([subs], tmp_path / "out", jobs=2, echo=log.append, limits=Limits(
        timeout=60, memory_mb=512, pids=48, isolation=ISOLATION))}
    assert any(line.startswith("resource limits per sandbox: cgroup v") for line in log), log
    for learner, fragment in (("memfd", "more memory than its limit"), ("threads", "can't start new thread")):
        r = results[learner]
        e = _ex(r, "weighted_average")
        assert e.score == 0 and fragment in e.feedback, (learner, e.status, e.feedback)
        assert all(x.status == "passed" for x in r.exercises if x.name != "weighted_average"), r.all_notes()
        info = r.submissions[0].sandbox["cgroup"]
        assert re.search(r"cgroup v[12]: memory \d+ MB, 48 tasks, 1 CPU", info), info
    # the groups are gone, with every process that was in them
    hier, _ = cgroup.available()
    assert hier is not None
    for folder in hier.folders.values():
        assert not folder.exists() or not list(folder.glob("s*")), folder


def test_the_grader_says_plainly_when_it_cannot_limit_resources(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setattr(batch, "available", lambda: (None, "cgroup v2 at /x has no controllers delegated"))
    bad = tmp_path / "broken.py"
    bad.write_text("CHAPTER = 'ch01'\ndef (:\n")  # needs no sandbox: it does not parse
    log: list[str] = []
    grade([bad], tmp_path / "out", limits=Limits(isolation=ISOLATION), jobs=1, echo=log.append)
    lines = [line for line in log if "NO per-sandbox memory/task/CPU limits" in line]
    assert len(lines) == 1 and "no controllers delegated" in lines[0], log


def test_cgroup_files_are_written_as_each_version_expects(tmp_path: Path) -> None:
    """The limits land in the files each cgroup version reads (a fake hierarchy: no kernel needed)."""
    for version in (1, 2):
        root = tmp_path / f"v{version}"
        folders = {c: root / (c if version == 1 else "") / "course-grade-1" for c in cgroup.CONTROLLERS}
        for f in folders.values():
            f.mkdir(parents=True, exist_ok=True)
        group = cgroup.SandboxGroup(cgroup.Hierarchy(version, folders), 300 * 2**20, 32, 0.5)
        files = {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}
        if version == 2:
            want = {"course-grade-1/s{n}/memory.max": str(300 * 2**20), "course-grade-1/s{n}/pids.max": "32",
                    "course-grade-1/s{n}/cpu.max": "50000 100000"}
        else:
            want = {"memory/course-grade-1/s{n}/memory.limit_in_bytes": str(300 * 2**20),
                    "pids/course-grade-1/s{n}/pids.max": "32",
                    "cpu/course-grade-1/s{n}/cpu.cfs_quota_us": "50000",
                    "cpu/course-grade-1/s{n}/cpu.cfs_period_us": "100000"}
        n = next(iter(group.folders.values())).name[1:]
        assert files == {k.format(n=n): v for k, v in want.items()}, files
        assert group.describe() == f"cgroup v{version}: memory 300 MB, 32 tasks, 0.5 CPU"
        with pytest.raises(ValueError, match="pids=0"):
            cgroup.SandboxGroup(cgroup.Hierarchy(version, folders), 300 * 2**20, 0, 1.0)


def test_cgroup_mounts_and_own_paths_are_read_from_proc() -> None:
    mountinfo = ("30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
                 "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
                 "32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                 "33 25 0:29 /sub /mnt/pids rw - cgroup cgroup rw,pids\n")
    v2, v1 = cgroup._mounts(mountinfo)
    assert v2 == Path("/sys/fs/cgroup/unified")
    assert v1 == {"memory": Path("/sys/fs/cgroup/memory"), "cpu": Path("/sys/fs/cgroup/cpu,cpuacct")}
    own = cgroup._own_paths("4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/user.slice\n")
    assert own == {"memory": "/a/b", "cpu": "/c", "cpuacct": "/c", "": "/user.slice"}
