"""A Gradescope autograder for one chapter: the bundle, and what runs in Gradescope's container.

``python -m course_pkg.grade --gradescope-autograder ch01 -o autograder.zip`` writes a zip with

* ``setup.sh``: run once when Gradescope builds the image (Ubuntu, as root): installs Python,
  bubblewrap and CPU-only PyTorch into ``/opt/course-venv``, then makes ``/autograder/source``
  (which holds the solutions) readable by root only;
* ``run_autograder``: run for every submission: grades the files in ``/autograder/submission``
  with this package's grader and writes ``/autograder/results/results.json``;
* ``course_pkg/``: the package (with the solutions, which never enter the sandbox) and
  ``requirements-autograder.txt``.

Gradescope starts a fresh container for each submission. Inside it the learner's code runs in the
bubblewrap sandbox when the container allows user namespaces, otherwise as uid 65534, which can
read neither the course (``chmod 700``) nor write the results folder. ``AUTOGRADER_ROOT`` (default
``/autograder``) and ``COURSE_PYTHON`` let the same ``run_autograder`` run locally in a copy of that
layout, which is how the tests check it.
"""

from __future__ import annotations

import json
import os
import stat
import time
import zipfile
from pathlib import Path

from .batch import grade_learners, known_chapters
from .child import PACKAGE_DIR
from .discovery import SUFFIXES
from .isolation import IsolationUnavailable, bwrap_problem
from .limits import Limits
from .plan import chapter_exercises
from .report import LearnerResult, gradescope_json
from .submissions import chapter_from_contents, chapter_from_name

__all__ = ["run_autograder", "write_bundle"]

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, on its Ubuntu image, to build the autograder.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
python3 -m venv /opt/course-venv
/opt/course-venv/bin/pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch
/opt/course-venv/bin/pip install --no-cache-dir -r /autograder/source/requirements-autograder.txt
# the package holds the solutions: readable by root (the grader) only, never by the learner's code
chown -R root:root /autograder/source
chmod -R go-rwx /autograder/source
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission (files in $ROOT/submission, results to $ROOT/results).
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PY="${{COURSE_PYTHON:-/opt/course-venv/bin/python}}"
mkdir -p "$ROOT/results"
chmod 755 "$ROOT/results"
cd "$ROOT/source"
exec "$PY" -m course_pkg.grade --gradescope-run {chapter} --autograder-root "$ROOT" \\
    --timeout {timeout} --memory {memory_mb}
"""

REQUIREMENTS = "numpy>=1.23\n"


def write_bundle(chapter: str, path: str | Path, *, timeout: float = 60.0, memory_mb: int = 4096) -> Path:
    """Write the autograder zip for ``chapter`` to ``path``; returns the path.

    Raises ``ValueError`` for a chapter without exercises."""
    known = known_chapters()
    if chapter not in known:
        raise ValueError(f"chapter={chapter!r} has no exercises; chapters with exercises: {', '.join(sorted(known))}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def add(zf: zipfile.ZipFile, name: str, text: str | bytes, mode: int = 0o644) -> None:
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = (stat.S_IFREG | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, text)

    with zipfile.ZipFile(path, "w") as zf:
        add(zf, "setup.sh", SETUP_SH, 0o755)
        add(zf, "run_autograder", RUN_AUTOGRADER.format(chapter=chapter, timeout=f"{timeout:g}",
                                                        memory_mb=int(memory_mb)), 0o755)
        add(zf, "requirements-autograder.txt", REQUIREMENTS)
        for f in sorted(PACKAGE_DIR.rglob("*")):
            rel = f.relative_to(PACKAGE_DIR.parent)
            if not f.is_file() or "__pycache__" in rel.parts or f.suffix in (".pyc", ".pt", ".pth", ".safetensors"):
                continue
            if "checkpoints" in rel.parts:
                continue
            add(zf, rel.as_posix(), f.read_bytes())
    return path


def run_autograder(chapter: str, root: Path, limits: Limits) -> Path:
    """Grade ``root/submission`` as one learner's ``chapter`` and write ``root/results/results.json``.

    Always writes the results file, also when nothing could be graded (then with the reason)."""
    started = time.monotonic()
    submission = root / "submission"
    results = root / "results"
    results.mkdir(parents=True, exist_ok=True)
    if limits.isolation == "auto" and bwrap_problem() is not None and hasattr(os, "geteuid") and os.geteuid() == 0:
        # Gradescope's container is the outer boundary; inside it, drop the learner's code to uid 65534
        limits.isolation = "uid"
    files: list[Path] = []
    if submission.is_dir():
        files = sorted(p for p in submission.rglob("*") if p.suffix in SUFFIXES and p.is_file()
                       and not p.is_symlink() and ".ipynb_checkpoints" not in p.parts
                       and not any(part.startswith(".") for part in p.relative_to(submission).parts))
    learner = "submission"
    out = root / "grader-output"
    try:
        if not files:
            lr = LearnerResult(learner, error="no .ipynb or .py file was found in the submission")
            lr.columns = [ex.id for ex in chapter_exercises(chapter)]
            data = gradescope_json(lr, time.monotonic() - started)
        else:
            (lr,) = grade_learners([(learner, files[:1] if len(files) == 1 else _pick(files, chapter))], out,
                                   chapter=chapter, limits=limits, jobs=1, scrub_paths=[root])
            data = json.loads((out / lr.learner / "results.json").read_text(encoding="utf-8"))
    except IsolationUnavailable as exc:
        data = {"score": 0.0, "output": f"The autograder could not isolate the submission: {exc}",
                "tests": [], "visibility": "visible"}
    target = results / "results.json"
    target.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return target


def _pick(files: list[Path], chapter: str) -> list[Path]:
    """Of several files, the one for ``chapter`` (by name or contents), else the first."""
    known = known_chapters()
    for f in files:
        if chapter_from_name(f) == chapter:
            return [f]
    for f in files:
        try:
            if chapter_from_contents(f.read_text(encoding="utf-8", errors="replace"), known) == chapter:
                return [f]
        except OSError:
            continue
    return [files[0]]
