"""The grader against a hostile class (issue 14): isolation by the kernel, a batch that always ends
with a gradebook, fairness to honest learners (print, Colab exports and copies), clean reports, and
the Gradescope autograder bundle run locally in Gradescope's layout.

One small class is graded once (``attack_class``); the kernel-isolation proof runs with the audit
hook removed, so only bubblewrap and Landlock stand between the learner and the files.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
from grading_helpers import CH, ISOLATION, NAMES, GradedClass
from grading_helpers import answer as _fn
from grading_helpers import exercise_result as _ex
from grading_helpers import sources_with as _with

from course_pkg.grading import samples
from course_pkg.grading.batch import grade
from course_pkg.grading.child import PACKAGE_DIR
from course_pkg.grading.discovery import discover
from course_pkg.grading.isolation import IsolationUnavailable, bwrap_problem, choose
from course_pkg.grading.judge import logical_bytes
from course_pkg.grading.limits import Limits
from course_pkg.grading.plan import chapter_exercises
from course_pkg.grading.protocol import RecordProtocol
from course_pkg.grading.report import csv_cell
from course_pkg.grading.submissions import load

SOLUTIONS_FILE = PACKAGE_DIR / "exercises" / "solutions" / f"{CH}.py"
needs_bwrap = pytest.mark.skipif(bwrap_problem() is not None, reason=f"no bubblewrap here: {bwrap_problem()}")


# ----------------------------------------------------------------------------------------------------
# The kernel's isolation on its own: no audit hook
# ----------------------------------------------------------------------------------------------------
PROBE = '''
import os, socket, subprocess, sys, time
def attempt(label, fn):
    try:
        fn()
        print(f"ATTACK {label}: SUCCEEDED")
    except BaseException as exc:
        print(f"ATTACK {label}: blocked ({type(exc).__name__})")
attempt("read solutions", lambda: open(SOLUTIONS).read())
attempt("read checkout", lambda: open(CHECKOUT).read())
attempt("read classmate", lambda: open(CLASSMATE).read())
attempt("read instructor", lambda: open(INSTRUCTOR).read())
def job_folders():
    if not any(n.startswith("course-grade-") for n in os.listdir(TMP)):
        raise FileNotFoundError("no job folder in view")
attempt("see job folders", job_folders)
attempt("write outside scratch", lambda: open(DECOY, "w").write("pwned"))
attempt("write usr", lambda: open("/usr/pwned", "w").write("pwned"))
attempt("start program", lambda: subprocess.run(["/bin/true"], check=True))
attempt("dns", lambda: socket.getaddrinfo("example.com", 80))
def unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(path)
attempt("unix socket", lambda: unix(SOCKET_PATH))
attempt("abstract unix socket", lambda: unix(ABSTRACT))
attempt("signal grader", lambda: os.kill(GRADER_PID, 0))
attempt("fill the disk", lambda: [open(f"/tmp/fill{i}", "wb").write(b"x" * 8_000_000) for i in range(4)])
attempt("fill shared memory", lambda: [open(f"/dev/shm/f{i}", "wb").write(b"x" * 8_000_000) for i in range(4)])
attempt("write dev", lambda: open("/dev/pwned", "w").write("pwned"))
if os.fork() == 0:  # a process that would outlive the sandbox
    time.sleep(60)
    os._exit(0)
print("PROBE DONE", os.listdir("/tmp"), os.getuid())
'''


@needs_bwrap
def test_kernel_isolation_holds_without_the_audit_hook(tmp_path: Path) -> None:
    subs = tmp_path / "class"
    subs.mkdir()
    classmate = samples.write_py(subs / "classmate.py", CH, samples.solution_sources(CH))
    instructor = tmp_path / "instructor" / "secret.txt"
    instructor.parent.mkdir()
    instructor.write_text("instructor secret")
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("untouched")
    sock_path = str(tmp_path / "grader.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(1)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0course-grade-test-" + str(os.getpid()))
    abstract.listen(1)
    consts = {"SOLUTIONS": str(SOLUTIONS_FILE), "CHECKOUT": str(PACKAGE_DIR.parent / "pyproject.toml"),
              "CLASSMATE": str(classmate), "INSTRUCTOR": str(instructor), "TMP": tempfile.gettempdir(),
              "DECOY": str(decoy), "SOCKET_PATH": sock_path,
              "ABSTRACT": "\0course-grade-test-" + str(os.getpid()), "GRADER_PID": os.getpid()}
    prelude = "".join(f"{k} = {v!r}\n" for k, v in consts.items())
    src = _with(attention_pool=samples.solution_sources(CH)["attention_pool"] + "\n" + prelude + PROBE)
    learner = samples.write_notebook(subs / "attacker.ipynb", CH, src, metadata_chapter=CH)
    try:
        results = grade([learner, classmate], tmp_path / "out", limits=Limits(timeout=30, audit_hook=False, scratch_mb=16),
                        jobs=1, echo=lambda s: None)
    finally:
        listener.close()
        abstract.close()
    r = next(x for x in results if x.learner == "attacker")
    assert r.submissions[0].sandbox["isolation"] == "bwrap"
    assert r.submissions[0].sandbox["audit_hook"] is False
    text = (tmp_path / "out" / "attacker" / "output.txt").read_text()
    assert "PROBE DONE" in text, text
    attacks = [line for line in text.splitlines() if line.startswith("ATTACK ")]
    assert len(attacks) == 15, text
    assert not [a for a in attacks if "SUCCEEDED" in a], text
    assert "instructor secret" not in text and "def softmax_weights" not in text
    assert decoy.read_text() == "untouched"
    assert r.score == len(NAMES)  # the probe's own answers still count
    # no process of this grader's sandboxes outlived it (the forked one slept 60 s); other graders'
    # sandboxes on the same machine are not this test's business
    leftovers = [pid for pid in _descendants(os.getpid())
                 if b"/grader/sandbox.py" in _read(f"/proc/{pid}/cmdline")]
    assert not leftovers


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _descendants(root: int) -> list[int]:
    """The processes below ``root`` in the process tree (from /proc/<pid>/stat's parent field)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            if stat:
                ppid = int(stat.rsplit(b")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def test_no_isolation_is_refused_unless_asked_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from course_pkg.grading import isolation
    from course_pkg.grading.cli import main

    monkeypatch.setattr(isolation, "bwrap_problem", lambda: "bubblewrap (bwrap) is not installed")
    with pytest.raises(IsolationUnavailable, match="apt-get install bubblewrap"):
        choose("auto")
    sub = samples.write_py(tmp_path / "s.py", CH, {})
    assert main([str(sub), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "will not run learners' code without isolation" in err and "--unsafe-no-isolation" in err
    assert not (tmp_path / "o").exists()
    assert choose("none") == "none"
    with pytest.raises(ValueError, match="isolation='maybe'"):
        choose("maybe")


# ----------------------------------------------------------------------------------------------------
# One class of honest learners, cheats and faults, graded once
# ----------------------------------------------------------------------------------------------------
COLAB_EXPORT = '''# -*- coding: utf-8 -*-
"""Copy of 01_attention.ipynb

Automatically generated by Colab.

Original file is located at
    https://colab.research.google.com/drive/abc
"""

!pip install -q course_pkg
%matplotlib inline

import importlib.util, os, subprocess, sys
if importlib.util.find_spec("course_pkg") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "course_pkg"], check=True)

import torch
from course_pkg import seed_everything
from course_pkg.plotting import plot_attention
seed_everything(0)

"""## Exercise 1"""

from course_pkg.exercises import ch01 as ex

{answers}

ex.softmax_weights.check(softmax_weights)
ex.weighted_average.check(weighted_average)
ex.attention_pool.check(attention_pool)
ex.attention_pool.hint()
print(torch.ones(2))
'''


@pytest.fixture(scope="module")
def attack_class(tmp_path_factory: pytest.TempPathFactory) -> GradedClass:
    a = GradedClass(tmp_path_factory.mktemp("attacks"))
    s = a.subs
    sol = samples.solution_sources(CH)
    # honest learners
    printer = _fn("softmax_weights", "print(scores)\nprint(torch.ones(2, 3))\nreturn torch.softmax(scores, dim=-1)")
    samples.write_notebook(s / "printer.ipynb", CH, _with(softmax_weights=printer), metadata_chapter=CH)
    answers = "\n\n".join(sol[n] for n in NAMES)
    (s / "colab_export.py").write_text(COLAB_EXPORT.replace("{answers}", answers))
    samples.write_notebook(s / "Copy of 01_attention.ipynb", CH, sol, tagged=False)
    (s / "two_chapters").mkdir()
    samples.write_notebook(s / "two_chapters" / "01_attention.ipynb", CH, sol)
    samples.write_notebook(s / "two_chapters" / "02_x.ipynb", "ch02", samples.stub_sources("ch02"))
    # the result channel and the clock
    pipe_bomb = ("import os\nfor fd in range(3, 40):\n    try:\n        os.write(fd, b'[' * 200000 + b'\\n')\n"
                 "    except OSError:\n        pass\nreturn weights @ values")
    stall = ("import os, time, json\nfor _ in range(40):\n    for fd in range(3, 40):\n        try:\n"
             "            os.write(fd, (json.dumps({'ev': 'exercise', 'name': 'weighted_average'}) + '\\n').encode())\n"
             "        except OSError:\n            pass\n    time.sleep(0.5)\nreturn weights @ values")
    forge = ("import os, json\nrec = {'ev': 'case', 'name': 'attention_pool', 'i': 0, 'outcome': {'output': None}}\n"
             "for fd in range(3, 40):\n    try:\n        os.write(fd, (json.dumps(rec) + '\\n').encode())\n"
             "    except OSError:\n        pass\nreturn weights @ values")
    expand = "return torch.zeros(1).expand(2**20, 2**12)"
    samples.write_notebook(s / "pipe_bomb.ipynb", CH, _with(weighted_average=_fn("weighted_average", pipe_bomb)),
                           metadata_chapter=CH)
    samples.write_notebook(s / "stall.ipynb", CH, _with(weighted_average=_fn("weighted_average", stall)),
                           metadata_chapter=CH)
    samples.write_notebook(s / "forge.ipynb", CH, _with(weighted_average=_fn("weighted_average", forge)),
                           metadata_chapter=CH)
    samples.write_notebook(s / "expand.ipynb", CH, _with(weighted_average=_fn("weighted_average", expand)),
                           metadata_chapter=CH)
    # files that make a parser or reader raise, and names that collide
    (s / "deep.py").write_text('CHAPTER = "ch01"\nx = ' + "-" * 100000 + "1\n")
    (s / "deep_json.ipynb").write_text("[" * 100000 + "]" * 100000)
    nb = samples.notebook(CH, sol, metadata_chapter=CH)
    nb["metadata"]["course"] = ["ch01"]
    nb["cells"][1]["metadata"] = "tags"
    nb["cells"][2]["source"] = [1, 2, None]
    nb["cells"].append("not a cell")
    nb["cells"].append({"cell_type": "code", "metadata": {"tags": "exercise"}, "source": 42})
    (s / "01_types.ipynb").write_text(json.dumps(nb))
    samples.write_py(s / "a b.py", CH, sol)
    (s / "a_b.py").write_text("CHAPTER = 'ch01'\ndef (:\n")  # these two need no sandbox: they do not parse
    (s / "gradebook.csv.py").write_text("CHAPTER = 'ch01'\ndef (:\n")
    (s / "=HYPERLINK(1)").mkdir()
    (s / "=HYPERLINK(1)" / "=cmd.py").write_text("CHAPTER = 'ch01'\ndef f(:\n")
    (s / "empty").mkdir()
    (s / "linked").symlink_to(SOLUTIONS_FILE.parent, target_is_directory=True)
    t0 = time.monotonic()
    results = grade([s], a.out, limits=Limits(timeout=10, memory_mb=1024, isolation=ISOLATION), jobs=2, echo=a.log.append)
    a.seconds = time.monotonic() - t0
    a.results = {r.learner: r for r in results}
    with open(a.out / "gradebook.csv", newline="") as f:
        a.rows = {row["learner"]: row for row in csv.DictReader(f)}
    return a


def test_honest_learners_get_full_marks(attack_class: GradedClass) -> None:
    res = attack_class.results
    for learner in ("printer", "colab_export", "Copy_of_01_attention"):
        assert res[learner].status == "ok", (learner, res[learner].all_notes())
        assert res[learner].score == len(NAMES), (learner, res[learner].all_notes())
    printed = (attack_class.out / "printer" / "output.txt").read_text()
    assert "tensor([[1., 1., 1.]" in printed
    colab = (attack_class.out / "colab_export" / "output.txt").read_text()
    assert "check(...) skipped" in colab and "tensor([1., 1.])" in colab


def test_chapters_found_from_contents() -> None:
    known = {CH: NAMES, "ch02": ["other"]}
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for name, text in [("export.py", COLAB_EXPORT.replace("{answers}", "")),
                       ("mine.py", "from course_pkg.exercises import ch01 as ex\n"),
                       ("answers.py", "".join(samples.solution_sources(CH).values()))]:
        path = tmp / f"course-grade-test-{os.getpid()}-{name}"
        path.write_text(text)
        try:
            assert load("x", path, None, known).chapter == CH, name
        finally:
            path.unlink()


def test_the_batch_survives_every_bad_file(attack_class: GradedClass) -> None:
    res, rows = attack_class.results, attack_class.rows
    assert set(rows) >= {"deep", "deep_json", "01_types", "a_b", "a_b-2", "gradebook.csv-2", "empty", "linked"}
    assert res["deep"].status == "error" and res["deep"].all_notes()
    assert res["deep_json"].status == "error" and "could not be read" in " ".join(res["deep_json"].all_notes())
    assert res["01_types"].score == len(NAMES)  # wrong metadata types are ignored, the answers still graded
    assert res["a_b"].score == len(NAMES) and res["a_b-2"].status == "error"  # ids made unique, none lost
    assert "not valid Python" in rows["gradebook.csv-2"]["notes"]
    assert (attack_class.out / "gradebook.csv").is_file() and (attack_class.out / "gradebook.csv-2").is_dir()
    for learner in ("empty", "linked"):  # a link to the solutions folder is never followed
        assert res[learner].status == "error" and "nothing to grade" in rows[learner]["notes"]
        assert rows[learner]["total"] == "0"


def test_result_channel_and_clock_attacks_cost_only_their_exercise(attack_class: GradedClass) -> None:
    res = attack_class.results
    for learner in ("pipe_bomb", "forge", "stall"):
        e = _ex(res[learner], "weighted_average")
        assert e.status == "crashed" and e.score == 0 and "result channel" in e.reason, (learner, e)
        others = [x for x in res[learner].exercises if x.name != "weighted_average"]
        assert all(x.status == "passed" for x in others), (learner, res[learner].all_notes())
    stall = res["stall"].submissions[0]
    assert stall.seconds < 10 + 60  # records on the pipe no longer restart the clock (it would take 20 s+)
    e = _ex(res["expand"], "weighted_average")
    assert e.status == "failed" and "once expanded" in e.feedback


def test_per_submission_budget(tmp_path: Path) -> None:
    hang = "while True:\n    pass"
    src = _with(softmax_weights=_fn("softmax_weights", hang), weighted_average=_fn("weighted_average", hang),
                attention_pool=_fn("attention_pool", hang))
    sub = samples.write_notebook(tmp_path / "s" / "hang3.ipynb", CH, src, metadata_chapter=CH)
    (r,) = grade([sub], tmp_path / "o", limits=Limits(timeout=6, submission_timeout=9, isolation=ISOLATION), jobs=1,
                 echo=lambda s: None)
    statuses = [e.status for e in r.exercises]
    assert statuses == ["timeout"] * 3
    assert any("time budget" in e.reason for e in r.exercises)
    # the budget counts running code; start-ups (slow on a loaded machine) are extra
    assert r.submissions[0].seconds < 9 + 2 * Limits().startup_timeout  # two start-ups at most


def test_protocol_accepts_records_only_in_order() -> None:
    p = RecordProtocol([0, 2], [("a", 2), ("b", 1)])
    seq = [{"ev": "start"}, {"ev": "ready"}, {"ev": "unit", "i": 0}, {"ev": "unit_end", "i": 0},
           {"ev": "unit", "i": 2}, {"ev": "unit_end", "i": 2}, {"ev": "loaded"}, {"ev": "exercise", "name": "a"},
           {"ev": "case", "name": "a", "i": 0, "outcome": {}}, {"ev": "case", "name": "a", "i": 1, "outcome": {}},
           {"ev": "exercise_end", "name": "a"}, {"ev": "exercise", "name": "b"},
           {"ev": "case", "name": "b", "i": 0, "outcome": {"not_attempted": True}},
           {"ev": "exercise_end", "name": "b"}, {"ev": "finished"}]
    assert all(p.accept(ev) for ev in seq)
    for bad_at, bad in [(2, {"ev": "unit", "i": 1}), (8, {"ev": "case", "name": "a", "i": 1, "outcome": {}}),
                        (8, {"ev": "case", "name": "b", "i": 0, "outcome": {}}), (8, {"ev": "exercise", "name": "a"}),
                        (10, {"ev": "case", "name": "a", "i": 0, "outcome": {}}), (7, {"ev": "finished"}),
                        (15, {"ev": "finished"}), (3, {"ev": "ready"})]:
        p = RecordProtocol([0, 2], [("a", 2), ("b", 1)])
        assert all(p.accept(ev) for ev in seq[:bad_at])
        assert not p.accept(bad), (bad_at, bad)


def test_outputs_are_capped_by_logical_size() -> None:
    import torch

    from course_pkg.exercises.core import encode_value

    small = encode_value(torch.zeros(1).expand(2**20, 2**12))
    assert len(json.dumps(small)) < 1000
    assert logical_bytes(small) == 2**32 * 4
    assert logical_bytes(encode_value((torch.ones(3), "ab"))) == 14
    assert logical_bytes({"t": "list", "v": [{"t": "tensor", "shape": [-1]}]}) is None
    nested: dict = {"t": "none"}
    for _ in range(100):
        nested = {"t": "list", "v": [nested]}
    assert logical_bytes(nested) is None


# ----------------------------------------------------------------------------------------------------
# Clean reports
# ----------------------------------------------------------------------------------------------------
def test_reports_are_clean(attack_class: GradedClass) -> None:
    a = attack_class
    rows = a.rows
    bad = next(k for k in rows if "HYPERLINK" in k or k.startswith("'"))
    for row in rows.values():
        for key in ("learner", "notes"):
            assert not row[key].startswith(("=", "+", "-", "@")), row[key]
    assert rows[bad]["notes"].startswith("'=cmd.py")
    assert csv_cell("=1+2") == "'=1+2" and csv_cell("-3") == "'-3" and csv_cell("ok") == "ok"
    # max_score counts every exercise of every graded chapter, for everyone
    n_all = len(NAMES) + len(chapter_exercises("ch02"))
    assert {row["max_score"] for row in rows.values()} == {str(n_all)}
    # every error has a reason; no learner-visible file holds the instructor's paths
    for learner, r in a.results.items():
        if r.status == "error":
            assert rows[learner]["notes"].strip(), learner
        folder = a.out / learner
        text = (folder / "results.json").read_text() + (folder / "output.txt").read_text()
        for secret in (str(a.root), str(PACKAGE_DIR.parent), str(Path.home()), sys.prefix):
            assert secret not in text, (learner, secret)
        data = json.loads((folder / "results.json").read_text())
        assert data["max_score"] == n_all and len(data["tests"]) == n_all


# ----------------------------------------------------------------------------------------------------
# The Gradescope bundle, run locally in Gradescope's layout
# ----------------------------------------------------------------------------------------------------
@needs_bwrap
def test_gradescope_bundle_runs_in_gradescope_layout(tmp_path: Path) -> None:
    from course_pkg.grading.cli import main

    bundle = tmp_path / "autograder.zip"
    assert main(["--gradescope-autograder", CH, "-o", str(bundle), "--timeout", "20"]) == 0
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        assert {"setup.sh", "run_autograder", "course_pkg/grading/cli.py",
                f"course_pkg/exercises/solutions/{CH}.py"} <= set(names)
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pt")]
        zf.extractall(root / "source")
    setup = (root / "source" / "setup.sh").read_text()
    assert "bubblewrap" in setup and "chmod -R go-rwx /autograder/source" in setup
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    samples.write_notebook(root / "submission" / "Copy of 01_attention.ipynb", CH,
                           samples.solution_sources(CH), tagged=False)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AUTOGRADER_ROOT=str(root), COURSE_PYTHON=sys.executable)
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == float(len(NAMES)) and len(data["tests"]) == len(NAMES)
    assert all(t["status"] == "passed" and t["max_score"] == 1.0 for t in data["tests"])
    assert str(root) not in json.dumps(data)


def test_gradescope_run_writes_results_for_an_empty_submission(tmp_path: Path) -> None:
    from course_pkg.grading.gradescope import run_autograder

    (tmp_path / "submission").mkdir()
    path = run_autograder(CH, tmp_path, Limits())
    data = json.loads(path.read_text())
    assert data["score"] == 0.0 and "no .ipynb or .py file" in data["output"]
    assert len(data["tests"]) == len(NAMES)


def test_discover_never_follows_links(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.py").symlink_to(SOLUTIONS_FILE)
    assert discover([tmp_path / "c"]) == [("x", [])]


@needs_bwrap
def test_installed_copies_of_the_course_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of course_pkg installed in a visible package folder (``pip install .``) shows up empty."""
    from course_pkg.grading import isolation

    site_dir = tmp_path / "prefix" / "site-packages"
    (site_dir / "course_pkg" / "exercises" / "solutions").mkdir(parents=True)
    (site_dir / "course_pkg" / "exercises" / "solutions" / "ch01.py").write_text("SECRET = 1\n")
    (site_dir / "course_pkg-0.1.0.dist-info").mkdir()
    (site_dir / "other.py").write_text("VISIBLE = 1\n")
    real_roots = isolation.python_roots()
    monkeypatch.setattr(isolation, "python_roots", lambda: [*real_roots, tmp_path / "prefix"])
    monkeypatch.setattr(isolation, "_site_dirs", lambda: [site_dir])
    gdir = tmp_path / "grader"
    gdir.mkdir()
    sub = tmp_path / "submission.py"
    sub.write_text("")
    cmd = isolation.bwrap_command(sys.executable, grader_dir=gdir, submission=sub, scratch_mb=4, hidden=[])
    code = (f"import os, json; print(json.dumps([sorted(os.listdir({str(site_dir)!r})), "
            f"os.listdir({str(site_dir / 'course_pkg')!r}), sorted(os.listdir('/'))]))")
    done = subprocess.run([*cmd, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed, inside, top = json.loads(done.stdout)
    assert "other.py" in listed and inside == []
    # the whole top level: system folders, the Python installation, the grader's and the learner's files
    allowed = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "proc", "dev", "scratch", "tmp",
               "grader", "submission"} | {r.parts[1] for r in real_roots} | {tmp_path.parts[1]}
    assert set(top) <= allowed, set(top) - allowed


def _python_runs_as_nobody() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    from course_pkg.grading.isolation import drop_to_nobody

    try:
        done = subprocess.run([sys.executable, "-I", "-c", "import torch"], preexec_fn=drop_to_nobody,  # noqa: PLW1509
                              capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@pytest.mark.skipif(not _python_runs_as_nobody(), reason="needs root and a Python that uid 65534 can run")
def test_uid_mode_runs_the_learner_as_nobody(tmp_path: Path) -> None:
    """The fallback for a one-submission container without user namespaces (Gradescope's)."""
    src = _with(softmax_weights=_fn("softmax_weights", "import os\nprint('UID', os.getuid())\n"
                                                       "return torch.softmax(scores, dim=-1)"))
    sub = samples.write_notebook(tmp_path / "s" / "who.ipynb", CH, src, metadata_chapter=CH)
    (r,) = grade([sub], tmp_path / "o", limits=Limits(timeout=30, isolation="uid"), jobs=1, echo=lambda s: None)
    assert r.score == len(NAMES), r.all_notes()
    assert r.submissions[0].sandbox["isolation"] == "uid"
    assert "UID 65534" in (tmp_path / "o" / "who" / "output.txt").read_text()
