"""course_pkg: the companion package of the open course on attention in deep learning.

The chapters of the book import everything they run from here; each module holds one concept.
"""

from __future__ import annotations

__version__ = "0.1.0"

import sys  # noqa: E402

from .env import banner, environment, get_device, seed_everything  # noqa: E402

if "IPython" in sys.modules:  # in Jupyter or Colab: figures returned by the helpers show once
    from .plotting import enable_notebook_display

    enable_notebook_display()

__all__ = ["__version__", "banner", "environment", "get_device", "seed_everything"]
