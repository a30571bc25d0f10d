"""The batch grader (python -m course_pkg.grade): full marks for right answers, zero for stubs, and
each kind of misbehaviour costs only its own exercise, never the grader, the batch or other files.

Submissions are built here from the registered chapter 1 exercises (course_pkg.grading.samples),
so they follow the exercises when those change. One class of learners is graded once per module
(``graded_class``); each test then reads its learner's verdicts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from course_pkg import exercises
from course_pkg.exercises.core import ValueCodecError, decode_value, encode_value
from course_pkg.grading import samples, sandbox
from course_pkg.grading.batch import grade
from course_pkg.grading.child import PACKAGE_DIR
from course_pkg.grading.cli import main
from course_pkg.grading.discovery import SubmissionError, discover
from course_pkg.grading.isolation import bwrap_problem
from course_pkg.grading.judge import verdict
from course_pkg.grading.limits import Limits
from course_pkg.grading.plan import chapter_exercises
from course_pkg.grading.report import LearnerResult
from course_pkg.grading.submissions import chapter_from_name, load

ROOT = Path(__file__).resolve().parents[1]
CH = "ch01"
NAMES = [ex.name for ex in chapter_exercises(CH)]
# A self-contained attention_pool, so a broken softmax_weights does not drag it down with it.
AP_SELF = '''def attention_pool(query, keys, values):
    weights = torch.softmax(query @ keys.T, dim=-1)
    return weights @ values, weights
'''
SOLUTIONS_FILE = PACKAGE_DIR / "exercises" / "solutions" / f"{CH}.py"
# The kernel sandbox where this machine has it (CI installs bubblewrap); else the rest is still tested.
KERNEL = bwrap_problem() is None
ISOLATION = "auto" if KERNEL else "none"
TIMEOUT = 8.0  # seconds for each cell and exercise of the class (the default is 60)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fn(name: str, body: str) -> str:
    """A function with the exercise's name and signature whose body is ``body``."""
    sig = {"softmax_weights": "(scores)", "weighted_average": "(weights, values)",
           "attention_pool": "(query, keys, values)"}[name]
    return f"def {name}{sig}:\n" + "".join(f"    {line}\n" for line in body.strip("\n").split("\n"))


def _with(**replace: str) -> dict[str, str]:
    srcs = samples.solution_sources(CH)
    srcs["attention_pool"] = AP_SELF
    srcs.update(replace)
    return srcs


# ----------------------------------------------------------------------------------------------------
# The class: one learner per behaviour
# ----------------------------------------------------------------------------------------------------
class Class:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.subs = root / "class"
        self.out = root / "out"
        self.decoy = root / "outside" / "decoy.txt"  # a file outside every sandbox
        self.decoy.parent.mkdir(parents=True)
        self.decoy.write_text("untouched")
        self.results: dict[str, LearnerResult] = {}
        self.log: list[str] = []
        self.seconds = 0.0

    def nb(self, learner: str, sources: dict[str, str], extra_cells: tuple = (), **kw: object) -> Path:
        path = samples.write_notebook(self.subs / f"{learner}.ipynb", CH, sources, metadata_chapter=CH, **kw)
        if extra_cells:
            nb = json.loads(path.read_text())
            for where, src in extra_cells:
                cell = {"cell_type": "code", "execution_count": None, "id": f"x{where}",
                        "metadata": {"tags": ["exercise"]}, "outputs": [], "source": src}
                nb["cells"].insert(where, cell)
            path.write_text(json.dumps(nb))
        return path

    def py(self, learner: str, sources: dict[str, str], prelude: str = "") -> Path:
        path = samples.write_py(self.subs / f"{learner}.py", CH, sources)
        if prelude:
            text = path.read_text().replace("import math\n", "import math\n" + prelude + "\n", 1)
            path.write_text(text)
        return path


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory: pytest.TempPathFactory) -> Class:
    c = Class(tmp_path_factory.mktemp("grading"))
    sol = samples.solution_sources(CH)
    victim = c.subs / "good_py.py"

    # right answers, as a learner would hand them in
    c.nb("good_nb", sol)
    c.py("good_py", sol)
    c.nb("untagged", sol, tagged=False)
    # stubs: generated, and the chapter as shipped (chapter taken from the file name)
    c.nb("stubs", samples.stub_sources(CH))
    shipped = ROOT / "book" / "01_attention.ipynb"
    if shipped.exists():
        (c.subs / "shipped").mkdir(parents=True)
        (c.subs / "shipped" / shipped.name).write_bytes(shipped.read_bytes())
    # hangs, crashes, exits, memory
    c.nb("hang", _with(weighted_average=_fn("weighted_average", "while True:\n    pass")))
    c.nb("hang_load", _with(), extra_cells=((2, "import time\nwhile True:\n    time.sleep(0.05)\n"),))
    c.nb("segfault", _with(weighted_average=_fn("weighted_average", "import faulthandler\nfaulthandler._sigsegv()")))
    c.nb("os_exit", _with(weighted_average=_fn("weighted_average", "import os\nos._exit(3)")))
    c.nb("sys_exit", _with(weighted_average=_fn("weighted_average", "import sys\nsys.exit(1)")))
    c.py("raise_at_import", _with(), prelude='raise RuntimeError("boom at import")')
    c.py("exit_at_import", _with(), prelude="import sys\nsys.exit(0)")
    c.py("segfault_at_import", _with(), prelude="import faulthandler\nfaulthandler._sigsegv()")
    c.nb("memory", _with(weighted_average=_fn("weighted_average",
                                               "hoard = []\nwhile True:\n    hoard.append(torch.ones(2**26))")))
    # lies and patches
    c.nb("fake_pass", _with(softmax_weights=_fn("softmax_weights", (
        'print("[ok] ch01.softmax_weights: correct, all 4 cases pass.")\nprint("passed")\n'
        'print(\'{"ev": "case", "name": "softmax_weights", "i": 0, "outcome": {}}\')\nreturn scores'))))
    c.nb("patch_torch", _with(softmax_weights=_fn("softmax_weights", "return scores")), extra_cells=((2, (
        "torch.allclose = lambda *a, **k: True\ntorch.Tensor.allclose = lambda *a, **k: True\n"
        "torch.equal = lambda *a, **k: True\ntorch.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)\n")),))
    c.nb("patch_checks", _with(softmax_weights=_fn("softmax_weights", "return scores")), extra_cells=((2, (
        "import sys\ncore = sys.modules['course_grade_core']\n"
        "core.compare_outputs = lambda *a, **k: None\n"
        "core.Exercise.judge = lambda self, case, got: core.CaseResult(case.name, True)\n")),))
    c.nb("forge_channel", _with(softmax_weights=_fn("softmax_weights", (
        "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'{\"ev\": \"finished\"}\\n garbage\\n')\n"
        "    except OSError:\n        pass\n"
        "e = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)\nreturn e / e.sum(dim=-1, keepdim=True)"))))
    # writes outside the scratch folder
    c.nb("write_outside", _with(weighted_average=_fn("weighted_average", (
        f"open({str(victim)!r}, 'a').write('# pwned')\nreturn weights @ values"))))
    c.nb("write_at_load", _with(attention_pool=AP_SELF + f"\nopen({str(c.decoy)!r}, 'w').write('pwned')\n"))
    c.nb("remove_course_file", _with(weighted_average=_fn("weighted_average", (
        f"import os\nos.remove({str(PACKAGE_DIR / 'exercises' / 'no_such_file.py')!r})\nreturn weights @ values"))))
    # the course's own code handed back
    c.nb("ref_import", _with(softmax_weights=f"from course_pkg.exercises.solutions.{CH} import softmax_weights\n"))
    c.nb("ref_wrapper", _with(weighted_average=_fn("weighted_average", (
        f"from course_pkg.exercises.solutions.{CH} import weighted_average as ref\nreturn ref(weights, values)"))))
    c.nb("ref_source", _with(weighted_average=_fn("weighted_average", (
        f"ns = {{}}\nexec(open({str(SOLUTIONS_FILE)!r}).read(), ns)\nreturn ns['weighted_average'](weights, values)"))))
    copy = c.root / "site" / "course_pkg" / "exercises" / "solutions" / f"{CH}.py"  # another copy of the course
    copy.parent.mkdir(parents=True)
    copy.write_text(SOLUTIONS_FILE.read_text())
    c.nb("ref_copy", _with(weighted_average=_fn("weighted_average", (
        f"import importlib.util\nspec = importlib.util.spec_from_file_location('x', {str(copy)!r})\n"
        "m = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\n"
        "return m.weighted_average(weights, values)"))))
    # other escapes
    c.nb("subprocess", _with(weighted_average=_fn("weighted_average", (
        "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'print(1)'])\nreturn weights @ values"))))
    c.nb("ctypes", _with(weighted_average=_fn("weighted_average", (
        "import ctypes\nctypes.CDLL(None).getpid()\nreturn weights @ values"))))
    c.nb("signal", _with(weighted_average=_fn("weighted_average", (
        "import os\nos.kill(os.getppid(), 0)\nreturn weights @ values"))))
    # files that cannot be graded at all
    (c.subs / "broken.ipynb").write_text("{ not json")
    (c.subs / "mystery.py").write_text("def helper(s):\n    return s\n")

    c.victim_digest = _digest(victim)
    t0 = time.monotonic()
    limits = Limits(timeout=TIMEOUT, memory_mb=1024, isolation=ISOLATION)
    results = grade([c.subs], c.out, limits=limits, jobs=2, echo=c.log.append)
    c.seconds = time.monotonic() - t0
    c.results = {r.learner: r for r in results}
    return c


def _statuses(r: LearnerResult) -> dict[str, str]:
    return {e.name: e.status for e in r.exercises}


def _ex(r: LearnerResult, name: str):  # noqa: ANN202
    return next(e for e in r.exercises if e.name == name)


def _others_pass(r: LearnerResult, bad: str) -> None:
    for e in r.exercises:
        if e.name != bad:
            assert e.status == "passed" and e.score == 1.0, (e.name, e.status, e.feedback)


def _zero(r: LearnerResult, name: str, status: str, *fragments: str) -> None:
    e = _ex(r, name)
    assert e.status == status and e.score == 0.0, (e.status, e.feedback)
    for f in fragments:
        assert f in e.reason or f in e.feedback, (f, e.reason, e.feedback)


# -- right answers and stubs ---------------------------------------------------------------------------
@pytest.mark.parametrize("learner", ["good_nb", "good_py", "untagged"])
def test_reference_solutions_score_full_marks(graded_class: Class, learner: str) -> None:
    r = graded_class.results[learner]
    assert [e.name for e in r.exercises] == NAMES
    assert r.score == r.max_score == len(NAMES), _statuses(r)
    assert r.status == "ok"


def test_untagged_notebook_falls_back_to_defining_cells_with_a_note(graded_class: Class) -> None:
    notes = " ".join(graded_class.results["untagged"].all_notes())
    assert "no cell is tagged 'exercise'" in notes


@pytest.mark.parametrize("learner", ["stubs", "shipped"])
def test_stubs_score_zero_not_attempted(graded_class: Class, learner: str) -> None:
    if learner not in graded_class.results:
        pytest.skip("book/01_attention.ipynb is not there yet")
    r = graded_class.results[learner]
    assert _statuses(r) == {n: "not_attempted" for n in NAMES}
    assert r.score == 0 and r.status == "ok"
    assert all("not attempted" in e.feedback for e in r.exercises)


def test_every_shipped_chapter_is_not_attempted(tmp_path: Path) -> None:
    """Each chapter as shipped grades to "not attempted" everywhere: its exercise cells are stubs that
    need nothing from other cells."""
    chapters = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    for nb in chapters:
        (tmp_path / "class").mkdir(exist_ok=True)
        (tmp_path / "class" / nb.name).write_bytes(nb.read_bytes())
    results = grade([tmp_path / "class"], tmp_path / "out", limits=Limits(timeout=60, isolation=ISOLATION), jobs=2, echo=lambda s: None)
    assert len(results) == len(chapters)
    for r in results:
        (sub,) = r.submissions
        want = {ex.name for ex in chapter_exercises(sub.chapter)}
        assert sub.chapter == "ch" + r.learner[:2] and want
        assert _statuses(r) == dict.fromkeys(want, "not_attempted"), (r.learner, r.all_notes())


def test_reference_solutions_of_every_chapter_score_full_marks(tmp_path: Path) -> None:
    """What ``.solution()`` shows, pasted into the exercise cells, gets full marks in the grader: every
    chapter's solutions are self-contained (the grader runs exercise cells alone, without course_pkg).
    One learner hands in one notebook per chapter."""
    chapters = sorted({ex.chapter for ex in exercises.all_exercises()})
    for ch in chapters:
        samples.write_notebook(tmp_path / "class" / "sam" / f"{ch[2:]}_answers.ipynb", ch,
                               samples.solution_sources(ch))
    (r,) = grade([tmp_path / "class"], tmp_path / "out", limits=Limits(timeout=60, isolation=ISOLATION), jobs=2, echo=lambda s: None)
    assert [s.chapter for s in r.submissions] == chapters
    failing = [f"{e.id}: {e.feedback}" for e in r.exercises if e.status != "passed"]
    assert not failing, "\n\n".join(failing)
    assert r.score == r.max_score == len(exercises.all_exercises())


# -- misbehaviour costs only its own exercise ----------------------------------------------------------
def test_hanging_exercise_times_out_alone(graded_class: Class) -> None:
    r = graded_class.results["hang"]
    _zero(r, "weighted_average", "timeout", f"more than {TIMEOUT:g} s")
    _others_pass(r, "weighted_average")
    assert r.status == "flagged"


def test_hanging_cell_is_skipped_and_reported(graded_class: Class) -> None:
    r = graded_class.results["hang_load"]
    assert r.score == len(NAMES)
    assert any(f"failed: it ran for more than {TIMEOUT:g} s" in n for n in r.all_notes()), r.all_notes()


@pytest.mark.parametrize("learner, fragment", [("segfault", "SIGSEGV"), ("os_exit", "exited with code 3")])
def test_crash_costs_only_that_exercise(graded_class: Class, learner: str, fragment: str) -> None:
    r = graded_class.results[learner]
    _zero(r, "weighted_average", "crashed", fragment)
    _others_pass(r, "weighted_average")


def test_sys_exit_in_an_answer_fails_that_exercise(graded_class: Class) -> None:
    r = graded_class.results["sys_exit"]
    _zero(r, "weighted_average", "failed", "sys.exit(1)")
    _others_pass(r, "weighted_average")


@pytest.mark.parametrize("learner, fragment", [
    ("raise_at_import", "RuntimeError: boom at import"),
    ("exit_at_import", "sys.exit(0)"),
    ("segfault_at_import", "SIGSEGV"),
])
def test_a_failing_statement_at_import_is_reported_and_the_rest_graded(graded_class: Class, learner: str,
                                                                        fragment: str) -> None:
    r = graded_class.results[learner]
    assert r.score == len(NAMES), _statuses(r)
    assert any(fragment in n for n in r.all_notes()), r.all_notes()


def test_memory_exhaustion_fails_that_exercise(graded_class: Class) -> None:
    r = graded_class.results["memory"]
    e = _ex(r, "weighted_average")
    assert e.score == 0 and e.status in ("failed", "crashed", "timeout"), (e.status, e.feedback)
    if e.status != "timeout":  # on a heavily loaded machine filling 1 GB can outlast the 8 s timeout
        assert re.search(r"memory|allocate|SIGKILL", e.feedback), e.feedback
    _others_pass(r, "weighted_average")


def test_printed_fake_passes_do_nothing(graded_class: Class) -> None:
    r = graded_class.results["fake_pass"]
    _zero(r, "softmax_weights", "failed")
    _others_pass(r, "softmax_weights")
    assert (graded_class.out / "fake_pass" / "output.txt").read_text().count("[ok] ch01.softmax_weights") >= 1


@pytest.mark.parametrize("learner", ["patch_torch", "patch_checks"])
def test_patching_torch_or_the_checks_cannot_pass_a_wrong_answer(graded_class: Class, learner: str) -> None:
    r = graded_class.results[learner]
    _zero(r, "softmax_weights", "failed", "cases pass")
    _others_pass(r, "softmax_weights")


def test_forging_the_result_channel_costs_that_exercise(graded_class: Class) -> None:
    r = graded_class.results["forge_channel"]
    _zero(r, "softmax_weights", "crashed", "result channel")
    _others_pass(r, "softmax_weights")


def test_writing_outside_the_scratch_folder_is_refused(graded_class: Class) -> None:
    """The same verdict wherever the course and the class lie (under /tmp or not), with the kernel
    sandbox or without it: the refusal is worded by the audit hook, nothing outside changes, and a
    refused write that the code survives (at load time here) costs nothing."""
    c = graded_class
    r = c.results["write_outside"]
    _zero(r, "weighted_average", "forbidden", "for writing")
    _others_pass(r, "weighted_average")
    assert _digest(c.subs / "good_py.py") == c.victim_digest  # another learner's file is untouched
    assert c.results["good_py"].score == len(NAMES)
    r = c.results["write_at_load"]  # at load time: the cell fails and says why, the answers are graded
    assert r.score == len(NAMES) and r.status == "ok", r.all_notes()
    assert any("failed: PermissionError" in n and "for writing" in n for n in r.all_notes()), r.all_notes()
    assert c.decoy.read_text() == "untouched"
    r = c.results["remove_course_file"]
    _zero(r, "weighted_average", "forbidden", "os.remove")
    _others_pass(r, "weighted_average")


def test_the_same_attempt_gets_the_same_verdict_wherever_the_class_lies(tmp_path: Path) -> None:
    """One attempt (write next to the submission, remove a course file, read the solutions), graded
    from a class folder under /tmp and from one inside the checkout: the same status and reason."""
    attempts = {
        "weighted_average": "open(__file__ + '.pwned', 'w')\nreturn weights @ values",
        "softmax_weights": (f"import os\nos.remove({str(PACKAGE_DIR / 'exercises' / 'no_such_file.py')!r})\n"
                            "return torch.softmax(scores, -1)"),
        "attention_pool": (f"exec(open({str(SOLUTIONS_FILE)!r}).read(), {{}})\n"
                           "return torch.softmax(query @ keys.T, -1) @ values, None"),
    }
    verdicts = []
    inside = Path(tempfile.mkdtemp(prefix=".test-grade-", dir=ROOT))
    try:
        for where in (tmp_path, inside):
            sub = where / "class" / "learner.ipynb"
            sources = {n: _fn(n, b).replace("__file__", repr(str(sub))) for n, b in attempts.items()}
            samples.write_notebook(sub, CH, sources, metadata_chapter=CH)
            (r,) = grade([sub], where / "out", limits=Limits(timeout=30, isolation=ISOLATION), jobs=1,
                         echo=lambda s: None)
            verdicts.append({e.name: (e.status, e.reason.replace(str(where), "<where>")) for e in r.exercises})
    finally:
        shutil.rmtree(inside, ignore_errors=True)
    assert verdicts[0] == verdicts[1]
    assert {status for status, _ in verdicts[0].values()} == {"forbidden"}, verdicts[0]


@pytest.mark.parametrize("learner, name, status, fragment", [
    ("ref_import", "softmax_weights", "forbidden", "course's own code (course_pkg.exercises.solutions"),
    ("ref_wrapper", "weighted_average", "failed", "not available while grading"),
    # the files are not in the sandbox's view at all; the audit hook words the refusal
    ("ref_source", "weighted_average", "forbidden", "the course's own files"),
    ("ref_copy", "weighted_average", "forbidden", "a copy of the course's own files"),
])
def test_handing_back_the_reference_gets_no_marks(graded_class: Class, learner: str, name: str, status: str,
                                                 fragment: str) -> None:
    r = graded_class.results[learner]
    _zero(r, name, status, fragment)
    _others_pass(r, name)


@pytest.mark.parametrize("learner, fragment", [
    ("subprocess", "may not start programs"), ("ctypes", "ctypes"), ("signal", "signals"),
])
def test_processes_ctypes_and_signals_are_refused(graded_class: Class, learner: str, fragment: str) -> None:
    r = graded_class.results[learner]
    _zero(r, "weighted_average", "forbidden", fragment)
    _others_pass(r, "weighted_average")


def test_ungradable_files_are_reported_and_the_batch_goes_on(graded_class: Class) -> None:
    res = graded_class.results
    assert res["broken"].status == "error" and "not a valid notebook" in " ".join(res["broken"].all_notes())
    assert res["mystery"].status == "error" and "cannot tell the chapter" in " ".join(res["mystery"].all_notes())
    assert res["good_nb"].score == len(NAMES)


# -- the reports -------------------------------------------------------------------------------------
def test_gradebook_csv(graded_class: Class) -> None:
    with open(graded_class.out / "gradebook.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header == ["learner", *(f"{CH}.{n}" for n in NAMES), "total", "max_score", "status", "notes"]
    by = {r["learner"]: r for r in rows}
    assert set(by) == set(graded_class.results)
    assert by["good_nb"]["total"] == str(len(NAMES)) and by["good_nb"]["status"] == "ok"
    assert by["hang"][f"{CH}.weighted_average"] == "0" and by["hang"][f"{CH}.softmax_weights"] == "1"
    assert by["hang"]["status"] == "flagged" and "timed out" in by["hang"]["notes"]
    assert by["ref_import"]["status"] == "flagged" and "course_pkg" in by["ref_import"]["notes"]
    assert {r["max_score"] for r in rows} == {str(len(NAMES))}  # the same for everyone, errors included
    assert by["broken"]["status"] == "error"


def test_results_json_follows_gradescope_format(graded_class: Class) -> None:
    for learner in ("good_py", "hang", "broken"):
        data = json.loads((graded_class.out / learner / "results.json").read_text())
        assert isinstance(data["score"], float) and isinstance(data["max_score"], float)
        assert isinstance(data["output"], str) and isinstance(data["execution_time"], float)
        assert sum(t["score"] for t in data["tests"]) == pytest.approx(data["score"])
        for t in data["tests"]:
            assert set(t) >= {"name", "score", "max_score", "output", "status"}
            assert t["status"] in ("passed", "failed")
            assert (t["status"] == "passed") == (t["score"] == t["max_score"])
    hang = json.loads((graded_class.out / "hang" / "results.json").read_text())
    assert hang["extra_data"]["exercises"][f"{CH}.weighted_average"] == "timeout"
    assert "timed out" in next(t["output"] for t in hang["tests"] if "weighted_average" in t["name"])


def test_summary_table_is_printed(graded_class: Class) -> None:
    text = "\n".join(graded_class.log)
    assert re.search(r"^good_nb\s+1\s+1\s+1\s+3/3\s+ok$", text, re.MULTILINE), text
    assert re.search(r"^hang\s+1\s+T\s+1\s+2/3\s+flagged$", text, re.MULTILINE), text
    assert "Legend:" in text


def test_class_took_a_reasonable_time(graded_class: Class) -> None:
    """Each learner's code ran, by the grader's clock (``code_seconds``; sandbox start-ups, which a loaded
    machine stretches, are not counted), about as long as the fastest learner's, and at most one ``--timeout``
    more where one step hangs or works long (``hang``, ``hang_load``; ``memory`` may time out on a loaded
    machine). A grader that ignores ``--timeout`` (its default is 60 s) or waits out the limit on steps that
    finished breaks these bounds."""
    ran = {name: sum(s.code_seconds for s in r.submissions) for name, r in graded_class.results.items()
           if r.submissions and not any(s.error for s in r.submissions)}
    timed_out = {name for name, r in graded_class.results.items()
                 if any(e.status == "timeout" for e in r.exercises)
                 or any("ran for more than " in n for n in r.all_notes())}
    long_step = {"hang", "hang_load", "memory"}
    fastest = min(ran.values())
    print(f"\n{len(graded_class.results)} submissions graded in {graded_class.seconds:.1f} s with --jobs 2; "
          "learner code ran (s): " + ", ".join(f"{n} {s:.1f}" for n, s in sorted(ran.items(), key=lambda kv: kv[1])))
    assert {"hang", "hang_load"} <= timed_out <= long_step, timed_out
    assert fastest < TIMEOUT, f"even the fastest learner's code ran {fastest:.1f} s: every step waits for its limit?"
    slow = {n: round(s, 1) for n, s in ran.items() if n not in long_step and s > fastest + TIMEOUT}
    assert not slow, f"finished steps waited for the timeout? fastest {fastest:.1f} s, slow: {slow}"
    hung = {n: round(s, 1) for n, s in ran.items() if n in long_step}
    assert all(s <= fastest + 2 * TIMEOUT for s in hung.values()), (
        f"--timeout {TIMEOUT:g} not applied? fastest {fastest:.1f} s, long steps: {hung}")
    assert all(ran[n] >= TIMEOUT for n in timed_out), f"stopped before --timeout {TIMEOUT:g} s? {hung}"


# ----------------------------------------------------------------------------------------------------
# Each protection layer on its own, and the integrity check behind them
# ----------------------------------------------------------------------------------------------------
def _grade_one(tmp_path: Path, sources: dict[str, str], limits: Limits) -> LearnerResult:
    sub = samples.write_notebook(tmp_path / "subs" / "learner.ipynb", CH, sources, metadata_chapter=CH)
    (res,) = grade([sub], tmp_path / "out", limits=limits, jobs=1, echo=lambda s: None)
    return res


def _landlock_available() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1) >= 1
    except (OSError, AttributeError):
        return False


@pytest.mark.skipif(not _landlock_available(), reason="the kernel has no Landlock")
def test_landlock_alone_stops_writes_and_programs(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("untouched")
    src = _with(weighted_average=_fn("weighted_average", f"open({str(decoy)!r}, 'w')\nreturn weights @ values"),
                softmax_weights=_fn("softmax_weights", "import subprocess\nsubprocess.run(['/bin/true'])\n"
                                                       "return torch.softmax(scores, -1)"))
    r = _grade_one(tmp_path, src, Limits(timeout=30, audit_hook=False, isolation="none"))
    assert r.submissions[0].sandbox["landlock"].startswith("applied")
    assert decoy.read_text() == "untouched"
    _zero(r, "weighted_average", "failed", "PermissionError")
    _zero(r, "softmax_weights", "failed", "PermissionError")
    assert _ex(r, "attention_pool").status == "passed"


def test_audit_hook_alone_refuses_writes(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("untouched")
    src = _with(weighted_average=_fn("weighted_average", f"open({str(decoy)!r}, 'w')\nreturn weights @ values"))
    r = _grade_one(tmp_path, src, Limits(timeout=30, landlock=False, isolation="none"))
    assert r.submissions[0].sandbox["landlock"] == "disabled"
    assert decoy.read_text() == "untouched"
    _zero(r, "weighted_average", "forbidden", "for writing")


# ----------------------------------------------------------------------------------------------------
# The verdicts equal the in-notebook check, for every registered exercise (no subprocess needed)
# ----------------------------------------------------------------------------------------------------
def _sandboxed_verdict(ex: exercises.Exercise, answer: object):  # noqa: ANN202
    from course_pkg.exercises import core

    cases = [(c.name, c.seed, decode_value(json.loads(json.dumps(encode_value(c.args()))))) for c in ex.cases]
    outcomes = {i: json.loads(json.dumps(o)) for i, o in sandbox.run_exercise(core, ex.id, ex.kind, cases, answer)}
    return verdict(ex, outcomes)


ALL = exercises.all_exercises()


@pytest.mark.parametrize("ex", ALL, ids=[e.id for e in ALL])
def test_grader_verdicts_equal_check(ex: exercises.Exercise) -> None:
    answers = [ex.reference, ex.stub(), *(m.answer for m in ex.mistakes), lambda *a, **k: 1 / 0]
    for answer in answers:
        want = ex.test(answer)
        got = _sandboxed_verdict(ex, answer)
        assert (got.status, got.score) == (want.status, want.score), (ex.id, answer)
        assert got.summary() == want.summary()


@pytest.mark.parametrize("ex", ALL, ids=[e.id for e in ALL])
def test_every_case_can_be_sent_to_the_sandbox(ex: exercises.Exercise) -> None:
    for case in ex.cases:
        data = json.loads(json.dumps(encode_value(case.args())))
        assert '"opaque"' not in json.dumps(data), f"{ex.id} case {case.name!r} has arguments that are not plain data"
        back = decode_value(data)
        torch.manual_seed(case.seed)
        assert ex.judge(case, ex.run_case(ex.reference, type(case)(case.name, lambda b=back: b, seed=case.seed))).passed


# ----------------------------------------------------------------------------------------------------
# Plain-data codec, submissions, command line
# ----------------------------------------------------------------------------------------------------
def test_codec_round_trip() -> None:
    value = (torch.randn(3, 4), {"a": [1, 2.5, None, True], 3: torch.tensor(2, dtype=torch.bfloat16)},
             torch.zeros(0, 3), torch.ones(2, 2, requires_grad=True).T, float("nan"), torch.int64,
             torch.tensor([True, False]), "text")
    back = decode_value(json.loads(json.dumps(encode_value(value))))
    assert torch.equal(back[0], value[0]) and back[1]["a"] == [1, 2.5, None, True]
    assert back[1][3].dtype == torch.bfloat16 and back[2].shape == (0, 3) and back[3].requires_grad
    assert back[4] != back[4] and back[5] is torch.int64 and back[7] == "text"


def test_codec_keeps_memory_layout() -> None:
    a = torch.arange(24.0).reshape(2, 3, 4)
    for t in (a.transpose(1, 2), a[:, ::2], torch.randn(3, 1).expand(3, 4)):
        back = decode_value(json.loads(json.dumps(encode_value(t))))
        assert torch.equal(back, t) and back.stride() == t.stride() and not back.is_contiguous()
    with pytest.raises(ValueCodecError, match="needs 28 bytes but 4 came"):
        decode_value({"t": "tensor", "dtype": "float32", "shape": [2, 2], "stride": [5, 1], "data": "AAAAAA=="})
    with pytest.raises(ValueCodecError, match="malformed tensor strides"):
        decode_value({"t": "tensor", "dtype": "float32", "shape": [2, 2], "stride": [1], "data": ""})


def test_codec_turns_other_objects_into_named_placeholders() -> None:
    import numpy as np

    back = decode_value(encode_value(np.zeros(3)))
    assert type(back).__name__ == "ndarray" and back != np.zeros(3).tolist()


@pytest.mark.parametrize("data, match", [
    ({"t": "tensor", "dtype": "float32", "shape": [2], "data": "AAAA"}, "needs 8 bytes but 3 came"),
    ({"t": "tensor", "dtype": "object", "shape": [1], "data": ""}, "malformed tensor"),
    ({"t": "tensor", "dtype": "float32", "shape": [-1], "data": ""}, "malformed tensor"),
    ({"t": "pickle", "v": "gASV"}, "tag 'pickle'"),
    ([1, 2], "malformed value"),
    ({"t": "int", "v": "12"}, "malformed value"),
    ({"t": "dict", "v": [[{"t": "list", "v": []}, {"t": "none"}]]}, "not hashable"),
])
def test_codec_rejects_malformed_data(data: object, match: str) -> None:
    with pytest.raises(ValueCodecError, match=match):
        decode_value(data)


def test_codec_limits_depth_and_size() -> None:
    deep: dict = {"t": "none"}
    for _ in range(100):
        deep = {"t": "list", "v": [deep]}
    with pytest.raises(ValueCodecError, match="nested more than 64"):
        decode_value(deep)
    with pytest.raises(ValueCodecError, match="more than 100 bytes"):
        encode_value(torch.zeros(100), max_bytes=100)
    with pytest.raises(ValueCodecError, match="more than 100 bytes"):
        decode_value(encode_value(torch.zeros(100)), max_bytes=100)


@pytest.mark.parametrize("name, chapter", [("01_attention", "ch01"), ("ch03_answers", "ch03"), ("06", "ch06"),
                                           ("alice", None), ("2024_notes", None)])
def test_chapter_from_file_name(name: str, chapter: str | None) -> None:
    assert chapter_from_name(Path(name + ".ipynb")) == chapter


def test_chapter_rules(tmp_path: Path) -> None:
    known = {CH: NAMES, "ch02": ["x"]}
    py = tmp_path / "02_wrong_name.py"
    py.write_text('CHAPTER = "ch01"\nx = 1\n')
    assert load("a", py, None, known).chapter == "ch01"  # the declaration wins over the name
    sub = load("a", py, "ch02", known)  # --chapter wins over both, with a note
    assert sub.chapter == "ch02" and "graded as ch02" in sub.notes[0]
    nb = samples.write_notebook(tmp_path / "x.ipynb", CH, samples.stub_sources(CH), metadata_chapter=CH)
    sub = load("a", nb, None, known)
    assert sub.chapter == CH and [u.label for u in sub.units] == ["cell 4", "cell 7", "cell 10"]
    unknown = tmp_path / "99_later.py"
    unknown.write_text("x = 1\n")
    assert "ch99, which has no exercises" in load("a", unknown, None, known).problem
    bad = tmp_path / "01_bad.py"
    bad.write_text("def f(:\n")
    assert "not valid Python (SyntaxError at line 1" in load("a", bad, None, known).problem


def test_py_units_are_top_level_statements(tmp_path: Path) -> None:
    py = tmp_path / "01_x.py"
    py.write_text("import torch\n\n@staticmethod\ndef f(x):\n    return x\n\na = 1; b = 2\n")
    sub = load("a", py, None, {CH: NAMES})
    assert [(u.label, u.source) for u in sub.units] == [
        ("line 1", "import torch"), ("line 3", "@staticmethod\ndef f(x):\n    return x"), ("line 7", "a = 1; b = 2")]


def test_ipython_magics_become_pass_in_notebooks_and_py_files(tmp_path: Path) -> None:
    sources = dict(samples.stub_sources(CH))
    first = next(iter(sources))
    sources[first] = "%matplotlib inline\n  !pip install x\n" + sources[first]
    nb = samples.write_notebook(tmp_path / "01_x.ipynb", CH, sources, metadata_chapter=CH)
    py = tmp_path / "01_y.py"
    py.write_text("%time\nx = 1\n")
    for path in (nb, py):
        sub = load("a", path, None, {CH: NAMES})
        text = "\n".join(u.source for u in sub.units)
        assert "%" not in text and "!pip" not in text, path.name
        assert "pass  # IPython magic skipped by the grader" in text, path.name


def test_discover_learners(tmp_path: Path) -> None:
    (tmp_path / "c" / "dora").mkdir(parents=True)
    (tmp_path / "c" / "ann.ipynb").write_text("{}")
    (tmp_path / "c" / "dora" / "01_attention.ipynb").write_text("{}")
    (tmp_path / "c" / "dora" / "02_self_attention.py").write_text("")
    (tmp_path / "c" / "notes.txt").write_text("")
    found = discover([tmp_path / "c"])
    assert [(n, [f.name for f in fs]) for n, fs in found] == [
        ("ann", ["ann.ipynb"]), ("dora", ["01_attention.ipynb", "02_self_attention.py"])]


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="'nope.ipynb' does not exist"):
        discover(["nope.ipynb"])
    (tmp_path / "a.txt").write_text("")
    with pytest.raises(SubmissionError, match="is a .txt file; give .ipynb or .py"):
        discover([tmp_path / "a.txt"])
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "x" / "sam.py").write_text("")
    (tmp_path / "y" / "sam.ipynb").write_text("")
    found = discover([tmp_path / "x", tmp_path / "y"])  # the same id twice: made unique, never refused
    assert [n for n, _ in found] == ["sam", "sam-2"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionError, match="no .ipynb or .py submission was found"):
        discover([tmp_path / "empty"])


def test_cli_errors_and_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.py")]) == 2
    assert "does not exist" in capsys.readouterr().err
    sub = samples.write_py(tmp_path / "s.py", CH, {})
    assert main([str(sub), "--chapter", "ch42", "--out", str(tmp_path / "o")]) == 2
    assert "chapter='ch42' has no exercises" in capsys.readouterr().err
    assert main([str(sub), "--jobs", "0", "--out", str(tmp_path / "o")]) == 2
    assert "jobs=0 must be at least 1" in capsys.readouterr().err
    assert main([str(sub), "--memory", "10", "--out", str(tmp_path / "o")]) == 2
    assert "memory=10 MB is too small" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    for rule in ("tagged ``exercise``", "CHAPTER = \"chNN\"", "01_attention.ipynb", "--timeout", "--memory"):
        assert rule in help_text, rule


def test_cli_grades_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = samples.write_py(tmp_path / "zoe.py", CH, samples.solution_sources(CH))
    unsafe = [] if KERNEL else ["--unsafe-no-isolation"]
    assert main([str(sub), "--out", str(tmp_path / "o"), "--jobs", "1", *unsafe]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^zoe\s+1\s+1\s+1\s+3/3\s+ok$", out, re.MULTILINE), out
    assert json.loads((tmp_path / "o" / "zoe" / "results.json").read_text())["score"] == 3.0
