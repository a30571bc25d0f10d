"""Execute every chapter once, top to bottom, and print its wall-clock run time as a Markdown table
(the table in the README comes from this script).

    python scripts/time_chapters.py            # all chapters
    python scripts/time_chapters.py book/01_attention.ipynb
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(argv: list[str]) -> None:
    paths = [Path(a) for a in argv] or sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
    print("| chapter | CPU run time (s) |\n|---|---|")
    for p in paths:
        title = nbformat.read(p, as_version=4).cells[0].source.splitlines()[0].lstrip("# ")
        print(f"| {title} (`{p.name}`) | {run(p):.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
