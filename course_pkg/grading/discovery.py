"""Finding the learners: which files of the SUBMISSION arguments are whose.

Rules (also in ``python -m course_pkg.grade --help``): a SUBMISSION argument is a chapter notebook
(``.ipynb``), a ``.py`` file of solutions, or a folder. In a folder, every ``.ipynb``/``.py`` file
directly inside is one learner (the learner id is the file name without its extension), and every
sub-folder is one learner (the id is the sub-folder's name) whose ``.ipynb``/``.py`` files are all
graded, one chapter each. Links are never followed; names starting with ``.`` or ``_`` are skipped,
and so is the output folder (``--out``) wherever it lies: its reports are never a learner's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional, Sequence

SUFFIXES = (".ipynb", ".py")
_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


class SubmissionError(ValueError):
    """Raised for a command line that names no gradable submission (a usage error)."""


# names the output folder uses itself (the gradebook; report.STALE_FOLDER)
RESERVED_IDS = frozenset({"gradebook.csv", "gradebook", "stale"})


def learner_id(name: str) -> str:
    """A learner id safe as a folder name (letters, digits, ``._-``; no leading dot)."""
    safe = _SAFE_ID.sub("_", name).lstrip(".") or "learner"
    return safe[:100]


def _unique(ids: Sequence[str]) -> list[str]:
    """The same ids with ``-2``, ``-3``... added where two are equal (ignoring case, as some file systems
    do) or one is a name the output folder uses itself."""
    taken = {r.lower() for r in RESERVED_IDS}
    out = []
    for name in ids:
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def discover(paths: Sequence[str | Path], *, out: Optional[str | Path] = None,
             echo: Callable[[str], None] = print) -> list[tuple[str, list[Path]]]:
    """``[(learner, [files...])]`` for the command line's SUBMISSION arguments, in order.

    Learner ids that collide (after making them safe as folder names, ignoring case) or that clash
    with the output folder's own files get ``-2``, ``-3``... added. The output folder ``out`` is
    skipped where a SUBMISSION argument or a folder's entry is it (one line to ``echo`` each), so
    ``--out`` inside the submissions folder never grades an earlier run's reports. Raises
    :class:`SubmissionError` for a path that does not exist, a file of another type, or nothing to
    grade at all."""
    own = Path(out).resolve() if out is not None else None
    skipped: list[Path] = []

    def is_out(path: Path) -> bool:
        if own is None or path.resolve() != own:
            return False
        skipped.append(path)
        echo(f"skipped {path}: it is the output folder (--out); its reports are never a learner's submission")
        return True

    learners: list[tuple[str, list[Path]]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise SubmissionError(f"submission {str(raw)!r} does not exist")
        if is_out(p):
            continue
        if p.is_file():
            if p.suffix not in SUFFIXES:
                raise SubmissionError(f"submission {str(raw)!r} is a {p.suffix or 'extension-less'} file; "
                                      "give .ipynb or .py files, or folders of them")
            learners.append((learner_id(p.stem), [p]))
            continue
        for entry in sorted(p.iterdir()):
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_symlink():  # a link may point anywhere (the solutions, a classmate): never followed
                learners.append((learner_id(entry.stem if entry.suffix in SUFFIXES else entry.name), []))
                continue
            if is_out(entry):
                continue
            if entry.is_file() and entry.suffix in SUFFIXES:
                learners.append((learner_id(entry.stem), [entry]))
            elif entry.is_dir():
                try:
                    files = sorted(f for f in entry.iterdir() if f.suffix in SUFFIXES and not f.name.startswith(".")
                                   and not f.is_symlink() and f.is_file())
                except OSError:
                    files = []
                learners.append((learner_id(entry.name), files))
    if not learners:
        why = f" (the output folder {skipped[0]} is never graded: give --out another folder)" if skipped else ""
        raise SubmissionError("no .ipynb or .py submission was found in " + ", ".join(map(str, paths)) + why)
    ids = _unique([name for name, _ in learners])
    return [(new, files) for new, (_, files) in zip(ids, learners)]

