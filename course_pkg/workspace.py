"""A learner's own copies of the chapters, outside the files git tracks: ``python -m course_pkg.workspace``.

Opening ``book/NN_name.ipynb`` in JupyterLab rewrites it (autosave, execution counts, the learner's answers),
so the next ``git pull`` of the course conflicts. This command copies the chapters into a folder of their own
(``learner/`` in the checkout by default) that git ignores: the folder holds a ``.gitignore`` of ``*``, so it
stays out of ``git status`` wherever it is. It never overwrites a copy that is already there (that is the
learner's work) unless ``--force`` is given, and prints the ``jupyter lab`` command to start there.

It copies, for each chapter, the readable copy written by ``scripts/make_colab_notebooks.py`` (numbers and
citations written out, as in Colab) when one exists in ``_build/colab`` and is newer than the chapter, and the
chapter itself otherwise (its prose then shows the book's ``{glue:text}`` placeholders until the book is built).

Usage::

    python -m course_pkg.workspace                 # -> learner/, then: jupyter lab learner/
    python -m course_pkg.workspace --dest ~/attention-notebooks --force
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

__all__ = ["Workspace", "find_checkout", "main", "make_workspace"]

DEFAULT_DEST = "learner"


@dataclass
class Workspace:
    """What :func:`make_workspace` did.

    Attributes:
        dest: the learner's folder.
        copied: chapters written now (file names).
        kept: chapters already there and left untouched (the learner's work).
        readable: True where the copies came from the readable copies in ``_build/colab``.
    """

    dest: Path
    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    readable: bool = False


def find_checkout(start: Optional[Path] = None) -> Path:
    """The course's checkout: the folder above this package that holds ``book/`` and ``_toc.yml``.

    Raises:
        FileNotFoundError: course_pkg is installed from a wheel (no chapters next to it).
    """
    root = (start or Path(__file__).resolve().parents[1])
    if (root / "book").is_dir() and (root / "_toc.yml").is_file():
        return root
    raise FileNotFoundError(
        f"no chapters next to course_pkg ({root} has no book/ and _toc.yml): this copy of course_pkg was "
        "installed from a wheel. Clone the course (git clone <repository.url in _config.yml>), "
        "pip install -e . inside it, and run python -m course_pkg.workspace there")


def _chapters(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def make_workspace(dest: Optional[Path] = None, root: Optional[Path] = None, force: bool = False) -> Workspace:
    """Copy the chapters into ``dest`` (default ``<checkout>/learner``), which git then ignores.

    Args:
        dest: the learner's folder; created when missing.
        root: the checkout (default: found from this package, see :func:`find_checkout`).
        force: overwrite copies that are already there (the learner's answers in them are lost).

    Raises:
        FileNotFoundError: no checkout, or no chapters in it.
        ValueError: ``dest`` is the chapters' own folder ``book/`` (that is what the copies avoid).
    """
    root = find_checkout(root)
    book = root / "book"
    chapters = _chapters(book)
    if not chapters:
        raise FileNotFoundError(f"no chapters (NN_name.ipynb) in {book}")
    dest = Path(dest) if dest is not None else root / DEFAULT_DEST
    dest = dest.expanduser().resolve()
    if dest == book.resolve():
        raise ValueError(f"dest={str(dest)!r} is the tracked chapters' folder; choose another folder, e.g. "
                         f"{root / DEFAULT_DEST}")
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"dest={str(dest)!r} is a file; give a folder")
    readable_dir = root / "_build" / "colab" / "book"
    sources = []
    readable = True
    for chapter in chapters:
        copy = readable_dir / chapter.name
        fresh = copy.is_file() and copy.stat().st_mtime >= chapter.stat().st_mtime
        readable &= fresh
        sources.append(copy if fresh else chapter)
    if not readable:   # one kind for every chapter, never a mix
        sources = chapters
    dest.mkdir(parents=True, exist_ok=True)
    ignore = dest / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# a learner's copies of the chapters (python -m course_pkg.workspace): never committed\n*\n")
    done = Workspace(dest=dest, readable=readable)
    for src in sources:
        target = dest / src.name
        if target.exists() and not force:
            done.kept.append(src.name)
            continue
        shutil.copyfile(src, target)
        done.copied.append(src.name)
    return done


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_pkg.workspace",
                                description="Copy the chapters into a folder of your own that git ignores, "
                                            "then start JupyterLab there.")
    p.add_argument("--dest", type=Path, default=None,
                   help=f"the folder for your copies (default: {DEFAULT_DEST}/ in the course's checkout)")
    p.add_argument("--force", action="store_true",
                   help="overwrite copies that are already there (your answers in them are lost)")
    args = p.parse_args(argv)
    try:
        ws = make_workspace(args.dest, force=args.force)
    except (FileNotFoundError, ValueError) as err:
        print(f"course_pkg.workspace: {err}", file=sys.stderr)
        return 1
    kind = ("readable copies (numbers and citations written out)" if ws.readable else
            "the chapters as committed (build the book and run this again with --force for copies whose "
            "text shows the numbers)")
    print(f"{ws.dest}: {len(ws.copied)} chapter(s) copied, {kind}")
    if ws.kept:
        print(f"kept as they were (your work; --force overwrites): {', '.join(ws.kept)}")
    print("git ignores this folder (it holds a .gitignore of '*'). Start JupyterLab there:")
    command = f"jupyter lab {ws.dest}" + (" --allow-root" if _is_root() else "")
    print(f"    {command}")
    if _is_root():
        print("    (--allow-root: you are root, and JupyterLab refuses to start as root without it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
