"""The one rule for answer cells, the same in the chapters, in ``check`` and in the grader.

The rule (every chapter states it in the same words): the grader runs only the answer cells, in order,
with ``math``, ``torch``, ``nn`` and ``F`` imported, so an answer may use those and what the answer
cells define or import, but nothing else from the page and nothing from ``course_pkg``. The grader
applies it by construction; ``check`` runs in the notebook, where every name of the page exists, so it
says when an answer reads a name the grader would not have (course_pkg.exercises.cell_rule).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest
import torch
from IPython.core.interactiveshell import InteractiveShell

from course_pkg.exercises.cell_rule import names_outside_the_rule
from course_pkg.grading import samples
from course_pkg.grading.batch import grade
from course_pkg.grading.isolation import bwrap_problem
from course_pkg.grading.limits import Limits

ROOT = Path(__file__).resolve().parents[1]
SETUP = ("import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
         "import numpy as np\nfrom course_pkg import examples\n"
         "from course_pkg.exercises import ch01 as ex\nscale = 1.0\n")
SOFTMAX = ("def softmax_weights(scores):\n"
           "    e = torch.exp(scores - scores.max(-1, keepdim=True).values){extra}\n"
           "    return e / e.sum(-1, keepdim=True)\n")
AVERAGE = "def weighted_average(weights, values):\n    return weights @ values\n"
# the last answer uses both earlier answers, a helper and an import from an earlier answer cell
POOL = ("def attention_pool(query, keys, values):\n"
        "    w = softmax_weights(query @ keys.T * one)\n"
        "    return weighted_average(w, values), w\n")


@pytest.fixture()
def shell() -> Iterator[InteractiveShell]:
    """A real IPython shell that keeps its input history, as a Jupyter kernel does."""
    sh = InteractiveShell.instance()
    yield sh
    InteractiveShell.clear_instance()


def _run(sh: InteractiveShell, *cells: str) -> None:
    for cell in cells:
        result = sh.run_cell(cell, store_history=True)
        assert result.success, (cell, result.error_in_exec or result.error_before_exec)


def _check(sh: InteractiveShell, capsys: pytest.CaptureFixture[str], name: str) -> str:
    capsys.readouterr()
    _run(sh, f"_result = ex.{name}.check({name})")
    return capsys.readouterr().out


def test_a_page_variable_passes_in_the_notebook_but_is_named(shell: InteractiveShell,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    _run(shell, SETUP, SOFTMAX.format(extra=" * scale"))
    out = _check(shell, capsys, "softmax_weights")
    assert "[ok] ch01.softmax_weights" in out  # right in the notebook...
    assert "Note: your answer uses `scale`" in out  # ...but the grader would not have `scale`
    assert "only the answer cells" in out


@pytest.mark.parametrize("extra, named", [
    (" * float(np.ones(1)[0])", "np"),                   # a module imported at the top of the page
    (" * len(examples.CONCEPTS) / 7", "examples"),       # the course's own code
])
def test_page_modules_and_course_pkg_are_named(shell: InteractiveShell, capsys: pytest.CaptureFixture[str],
                                               extra: str, named: str) -> None:
    _run(shell, SETUP, SOFTMAX.format(extra=extra))
    assert f"Note: your answer uses `{named}`" in _check(shell, capsys, "softmax_weights")


def test_course_pkg_imported_in_the_answer_cell_is_named(shell: InteractiveShell,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    answer = ("from course_pkg.attention import scaled_dot_product_attention as sdpa\n"
              "def softmax_weights(scores):\n    return torch.softmax(scores, -1) + 0 * len(str(sdpa))\n")
    _run(shell, SETUP, answer)
    assert "Note: your answer uses `sdpa`" in _check(shell, capsys, "softmax_weights")


def test_what_the_answer_cells_define_is_allowed(shell: InteractiveShell,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # a helper and an import in an earlier answer cell, the earlier answers themselves, and
    # math, torch, nn and F as the grader provides them
    _run(shell, SETUP, "import numpy as np\none = 1.0\n" + SOFTMAX.format(extra=" * float(np.float32(1))"),
         AVERAGE, POOL)
    for name in ("softmax_weights", "weighted_average", "attention_pool"):
        out = _check(shell, capsys, name)
        assert "[ok]" in out and "Note:" not in out, out


def test_a_class_answer_is_read_method_by_method(shell: InteractiveShell) -> None:
    _run(shell, "import torch\nfrom torch import nn\nwidth = 4\n",
         "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
         "        self.fc = nn.Linear(width, 2)\n\n    @property\n    def size(self):\n        return bias\n")
    net = shell.user_ns["Net"]
    shell.user_ns["bias"] = 0.0  # made outside any cell: no cell to blame, so not named
    assert names_outside_the_rule(net, {"Other"}) == ["width"]


def test_outside_ipython_nothing_is_claimed() -> None:
    def answer(x: torch.Tensor) -> torch.Tensor:
        return x * ROOT.stat().st_size

    assert names_outside_the_rule(answer, {"answer"}) == []
    assert names_outside_the_rule(answer, {"answer"}, history=["ROOT = 1"]) == []  # not notebook code


def test_every_chapter_states_the_same_rule() -> None:
    rules = {}
    for nb_path in sorted((ROOT / "book").glob("0*.ipynb")):
        cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
        text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        found = re.findall(r"\*\*The rule for answer cells\*\*.*?(?:\n\n|$)", text, flags=re.S)
        if found:
            rules[nb_path.name] = " ".join(found[0].split())
    for name in ("01_attention.ipynb", "02_self_attention.ipynb", "03_attention_in_vision.ipynb",
                 "06_vision_transformers.ipynb"):
        assert name in rules, f"{name} does not state the rule for answer cells"
    assert len(set(rules.values())) == 1, rules


# -- the grader applies the same rule -----------------------------------------------------------------
def test_the_grader_applies_the_rule(tmp_path: Path) -> None:
    isolation = "auto" if bwrap_problem() is None else "none"
    sources = {"softmax_weights": "import numpy as np\none = 1.0\n" + SOFTMAX.format(extra=" * float(np.float32(1))"),
               "weighted_average": AVERAGE, "attention_pool": POOL}
    samples.write_notebook(tmp_path / "class" / "rule_kept.ipynb", "ch01", sources, metadata_chapter="ch01")
    broken = dict(sources, softmax_weights=SOFTMAX.format(extra=" * scale"))
    path = samples.write_notebook(tmp_path / "class" / "page_variable.ipynb", "ch01", broken,
                                  metadata_chapter="ch01")
    nb = json.loads(path.read_text())
    nb["cells"].insert(1, {"cell_type": "code", "execution_count": None, "id": "page", "metadata": {},
                           "outputs": [], "source": "scale = 1.0\n"})  # a page cell: never run by the grader
    path.write_text(json.dumps(nb))
    results = {r.learner: r for r in grade([tmp_path / "class"], tmp_path / "out",
                                           limits=Limits(timeout=120, isolation=isolation), jobs=2,
                                           echo=lambda _: None)}
    kept = {e.name: (e.status, e.score) for e in results["rule_kept"].exercises}
    assert kept == {n: ("passed", 1.0) for n in sources}, kept
    broken_result = {e.name: e for e in results["page_variable"].exercises}
    sw = broken_result["softmax_weights"]
    assert (sw.status, sw.score) == ("failed", 0.0) and "NameError: name 'scale' is not defined" in sw.feedback
