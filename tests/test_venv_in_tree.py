"""The README's set-up puts a virtual environment inside the checkout (``python -m venv .venv``); the book
must still build. Sphinx walks into every folder, hidden ones included, and reads each Markdown file there
as a page (a package's template with Jinja front matter stops the build with a YAML traceback), unless
``_config.yml`` excludes it.

The test builds a one-page book with the course's own ``_config.yml`` (its extensions, bibliography and
static files) in a temporary folder that holds such templates inside ``.venv``, ``venv`` and ``env``
(about 6 s of CPU, no chapter executed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a template as huggingface_hub ships one: its front matter is Jinja, not YAML
TEMPLATE = "---\n{{ card_data }}\n---\n\n# {{ model_id | default('Model', true) }}\n"
ENV_FOLDERS = (".venv/lib/python3.11/site-packages/huggingface_hub/templates",
               "venv/lib/python3.11/site-packages/pkg/templates", "env/share/doc", ".tox/py311/doc")


@pytest.mark.slow
def test_the_book_builds_with_virtual_environments_in_the_tree(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "book").mkdir(parents=True)
    shutil.copy2(ROOT / "_config.yml", tree / "_config.yml")
    shutil.copy2(ROOT / "references.bib", tree / "references.bib")
    shutil.copytree(ROOT / "book" / "_static", tree / "book" / "_static")
    (tree / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (tree / "book" / "intro.md").write_text("# A page\n\nThe only page of this book.\n")
    for folder in ENV_FOLDERS:
        (tree / folder).mkdir(parents=True)
        (tree / folder / "modelcard_template.md").write_text(TEMPLATE)
    jb = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
    proc = subprocess.run([jb, "build", str(tree), "--path-output", str(tmp_path / "out")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, "the book does not build with a venv in the tree:\n" + log[-3000:]
    html = tmp_path / "out" / "_build" / "html"
    pages = sorted(str(p.relative_to(html)) for p in html.rglob("*.html") if "_static" not in p.parts)
    assert pages == ["book/intro.html", "genindex.html", "index.html", "search.html"], pages
    assert "modelcard_template" not in log, log[-3000:]
