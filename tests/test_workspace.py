"""python -m course_pkg.workspace: the learner's copies live outside the tracked files and survive a rerun."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_pkg import workspace

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.name for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb"))


def _fake_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    (root / "book").mkdir(parents=True)
    for name in CHAPTERS:
        shutil.copyfile(ROOT / "book" / name, root / "book" / name)
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def test_copies_every_chapter_into_an_ignored_folder_and_keeps_the_learners_work(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path)
    ws = workspace.make_workspace(root=root)
    assert ws.dest == (root / "learner").resolve() and ws.copied == CHAPTERS and not ws.readable
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=root,
                            capture_output=True, text=True, check=True).stdout
    assert "learner" not in status, f"git sees the learner's folder:\n{status}"
    mine = ws.dest / CHAPTERS[0]
    mine.write_text("my answers")
    again = workspace.make_workspace(root=root)
    assert again.kept == CHAPTERS and not again.copied and mine.read_text() == "my answers"
    forced = workspace.make_workspace(root=root, force=True)
    assert forced.copied == CHAPTERS and mine.read_bytes() == (root / "book" / CHAPTERS[0]).read_bytes()


def test_uses_the_readable_copies_when_they_are_fresh(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path)
    colab = root / "_build" / "colab" / "book"
    colab.mkdir(parents=True)
    for name in CHAPTERS:
        (colab / name).write_text("readable")
    ws = workspace.make_workspace(tmp_path / "mine", root=root)
    assert ws.readable and (tmp_path / "mine" / CHAPTERS[0]).read_text() == "readable"
    # one chapter edited after the copies were made: the copies are stale, so none is used
    later = (root / "book" / CHAPTERS[0]).stat().st_mtime + 10
    os.utime(root / "book" / CHAPTERS[0], (later, later))
    ws = workspace.make_workspace(tmp_path / "other", root=root)
    assert not ws.readable and (tmp_path / "other" / CHAPTERS[1]).read_text() != "readable"


def test_refuses_the_tracked_folder_and_a_wheel_install(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path)
    with pytest.raises(ValueError, match="tracked chapters' folder"):
        workspace.make_workspace(root / "book", root=root)
    with pytest.raises(FileNotFoundError, match="installed from a wheel"):
        workspace.find_checkout(tmp_path / "site-packages")


def test_command_prints_the_jupyter_lab_line_with_allow_root_for_root(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = _fake_checkout(tmp_path)
    monkeypatch.setattr(workspace, "find_checkout", lambda start=None: root)
    monkeypatch.setattr(workspace, "_is_root", lambda: True)
    assert workspace.main(["--dest", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert f"jupyter lab {(tmp_path / 'w').resolve()} --allow-root" in out
    monkeypatch.setattr(workspace, "_is_root", lambda: False)
    workspace.main(["--dest", str(tmp_path / "w")])
    out = capsys.readouterr().out
    assert "--allow-root" not in out and "kept as they were" in out


def test_runs_as_a_module(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "course_pkg.workspace", "--help"], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0 and "--dest" in proc.stdout
