"""Running a chapter twice prints the same numbers (chapter 1 here; every chapter seeds the same way)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def _printed(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    texts = []
    for cell in nb.cells[1:]:  # the first cell prints the environment banner, which may differ
        if cell.cell_type != "code":
            continue
        # one string per cell: the kernel may split a cell's printed text into several stream messages
        texts.append("".join(out.text if out.output_type == "stream" else out.get("data", {}).get("text/plain", "")
                             for out in cell.outputs))
    return texts


@pytest.mark.slow
def test_chapter_1_prints_the_same_numbers_twice() -> None:
    path = ROOT / "book" / "01_attention.ipynb"
    first, second = _printed(path), _printed(path)
    assert first == second
    assert any("target cell" in t for t in first)
