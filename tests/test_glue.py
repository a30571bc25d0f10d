"""course_pkg.glue records values exactly as myst-nb's own glue does, without needing myst-nb."""

from __future__ import annotations

from typing import Any

import IPython
import IPython.display
import pytest

from course_pkg.glue import glue


def _captured(monkeypatch: pytest.MonkeyPatch, fn: Any, *args: Any, **kwargs: Any) -> list[tuple]:
    calls: list[tuple] = []

    def fake_display(*a: Any, **k: Any) -> None:
        calls.append((a, k))

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    mystnb_glue = pytest.importorskip("myst_nb.ext.glue")
    monkeypatch.setattr(mystnb_glue, "ipy_display", fake_display)
    fn(*args, **kwargs)
    return calls


@pytest.mark.parametrize("value", [0.937, 12, "ResNet", [1, 2]])
@pytest.mark.parametrize("display", [False, True])
def test_same_output_as_myst_nb(monkeypatch: pytest.MonkeyPatch, value: Any, display: bool) -> None:
    from myst_nb import glue as mystnb_glue

    ours = _captured(monkeypatch, glue, "x", value, display=display)
    theirs = _captured(monkeypatch, mystnb_glue, "x", value, display=display)
    assert ours == theirs and len(ours) == 1


def test_outside_ipython_it_records_nothing_and_does_not_fail() -> None:
    assert glue("acc", 0.5) is None


@pytest.mark.parametrize("name", ["", "a b", "acc-1", None, 3])
def test_bad_names_are_refused(name: Any) -> None:
    with pytest.raises(ValueError, match="name="):
        glue(name, 1.0)
