"""MathJax shipped inside the built book, so that formulas render with no network.

A Sphinx extension (listed in ``_config.yml``). The book's pages load MathJax 3 from ``_static/mathjax/``
(``mathjax_path: mathjax/tex-mml-chtml.js``), never from a CDN: a book built on a laptop shows its formulas
offline, and the published site serves the same files itself.

The files come from the pip package ``django-static-mathjax`` (``requirements.txt``), a plain copy of
MathJax's npm release that installs as the Python package ``mathjax`` (Django is neither needed nor
installed). At the end of an HTML build this copies the part of MathJax's ``es5`` folder that the book's
pages can ask for: the combined ``tex-mml-chtml.js``, the CHTML web fonts, the TeX and MathML extensions it
loads on demand, and the menu's accessibility and speech parts (about 7 MB), with MathJax's licence.

A build without the package stops with one line that says how to install it, instead of pages that show
raw TeX.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path
from typing import Any, Optional

from sphinx.errors import ExtensionError

__all__ = ["DIST", "PARTS", "TARGET", "mathjax_source", "setup"]

DIST = "django-static-mathjax"
TARGET = "mathjax"  # the folder under _static/ (mathjax_path in _config.yml names its tex-mml-chtml.js)
PARTS = (  # what the pages can load, relative to MathJax's es5/ folder
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "input/mml/extensions",
    "ui",
    "a11y",
    "sre",
)
_INSTALL = f"pip install '{DIST}>=3.2.2,<4'"


def mathjax_source() -> Path:
    """MathJax's ``es5`` folder inside the installed ``django-static-mathjax``.

    Raises:
        ExtensionError: the package is missing or holds no ``es5/tex-mml-chtml.js``; the message gives the
            pip command that installs it.
    """
    try:
        import mathjax  # the import name of django-static-mathjax
    except ImportError:
        raise ExtensionError(f"the book serves MathJax itself and takes it from the pip package {DIST}, "
                             f"which is not installed; run: {_INSTALL} (it is in requirements.txt)") from None
    root = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (root / PARTS[0]).is_file():
        raise ExtensionError(f"the installed package 'mathjax' ({root.parent}) is not {DIST}'s copy of "
                             f"MathJax 3 (no es5/{PARTS[0]}); run: {_INSTALL}")
    return root


def _version() -> str:
    try:
        return importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


def _check(app: Any, config: Any) -> None:
    if str(config.mathjax_path) != f"{TARGET}/{PARTS[0]}":
        raise ExtensionError(f"course_pkg.book_mathjax copies MathJax to _static/{TARGET}/, but mathjax_path is "
                             f"{config.mathjax_path!r}; set mathjax_path: \"{TARGET}/{PARTS[0]}\" in _config.yml")
    mathjax_source()  # fail before executing the chapters, not after


def _copy(app: Any, exception: Optional[BaseException]) -> None:
    if exception is not None or app.builder.format != "html":
        return
    src = mathjax_source()
    dest = Path(app.outdir) / "_static" / TARGET
    for part in PARTS:
        s, d = src / part, dest / part
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            shutil.copy2(s, d)
    licence = src.parents[2] / "LICENSE"  # mathjax/LICENSE when present; else the dist-info's copy
    if not licence.is_file():
        dist = importlib.metadata.distribution(DIST)
        found = [f for f in dist.files or () if f.name == "LICENSE"]
        licence = Path(dist.locate_file(found[0])) if found else licence
    if licence.is_file():
        shutil.copy2(licence, dest / "LICENSE")
    from sphinx.util import logging

    logging.getLogger(__name__).info(f"MathJax ({DIST} {_version()}) copied to _static/{TARGET}/")


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _check)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
