"""The book build's own extensions, without Sphinx: widget stand-ins and progress lines
(course_pkg.widget_fallback), author-year references (course_pkg.book_references), the figure text-size
record (course_pkg.figure_text), figures that stop shrinking where their text would fall under 9 px
(course_pkg.book_figures) and MathJax served with the book (course_pkg.book_mathjax)."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from pybtex.database import Entry, Person  # noqa: E402

from course_pkg import (
    book_figures,  # noqa: E402
    book_mathjax,  # noqa: E402
    figure_text,  # noqa: E402
)
from course_pkg import book_references as refs  # noqa: E402
from course_pkg import widget_fallback as wf  # noqa: E402
from course_pkg.plotting import figure_png  # noqa: E402


def _png(width: int, height: int = 3) -> bytes:
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _image(png: bytes) -> dict:
    return {"model_name": "ImageModel", "state": {"format": "png"},
            "buffers": [{"path": ["value"], "encoding": "base64", "data": base64.b64encode(png).decode()}]}


def _explorer_state() -> tuple[dict, bytes, bytes]:
    first, second = _png(40), _png(60)
    state = {
        "top": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_title", "IPY_MODEL_slider",
                                                                  "IPY_MODEL_stack"]}},
        "title": {"model_name": "HTMLModel", "state": {"value": "<b>Patch size explorer</b> &mdash; a 32&times;32 "
                                                                 "image; move the slider"}},
        "slider": {"model_name": "SelectionSliderModel", "state": {"index": 1}},
        "stack": {"model_name": "StackModel", "state": {"children": ["IPY_MODEL_p0", "IPY_MODEL_p1"],
                                                        "selected_index": 1}},
        "p0": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_img0"]}},
        "p1": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_img1"]}},
        "img0": _image(second),
        "img1": _image(first),
    }
    return state, first, second


def _tqdm_state(value: float, total: float) -> dict:
    return {
        "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]}},
        "l": {"model_name": "HTMLModel", "state": {"value": "training: 100%"}},
        "p": {"model_name": "FloatProgressModel", "state": {"min": 0, "max": total, "value": value}},
        "r": {"model_name": "HTMLModel", "state": {"value": "&nbsp;40/40 [00:03&lt;00:00, 12.1batch/s]"}},
    }


def test_the_first_frame_is_the_selected_stack_page() -> None:
    state, first, _second = _explorer_state()
    assert wf.widget_tree_images(state, "top") == [first]


def test_the_stand_in_shows_the_first_frame_with_alt_text_and_a_note() -> None:
    state, first, _ = _explorer_state()
    html = wf.fallback_html(state, "top")
    assert html is not None and f'class="{wf.FALLBACK_CLASS}"' in html
    assert base64.b64encode(first).decode() in html and 'width="40"' in html
    assert 'alt="Patch size explorer — a 32×32 image: first frame"' in html
    assert "its slider needs this page's scripts" in html
    assert wf.progress_text(state, "top") is None


def test_a_tqdm_bar_becomes_its_text_line() -> None:
    assert wf.progress_text(_tqdm_state(40, 40), "bar") == \
        "training: 100%|██████████| 40/40 [00:03<00:00, 12.1batch/s]"
    half = wf.progress_text(_tqdm_state(5, 10), "bar")
    assert half is not None and "|█████     |" in half
    assert wf.fallback_html(_tqdm_state(1, 2), "bar") is None  # no image: nothing to stand in


def test_bad_widget_state_is_reported() -> None:
    state, *_ = _explorer_state()
    with pytest.raises(KeyError, match="nope"):
        wf.widget_tree_images(state, "nope")
    state["p1"]["state"]["children"] = ["p1"]
    with pytest.raises(ValueError, match="IPY_MODEL_"):
        wf.widget_tree_images(state, "top")
    with pytest.raises(ValueError, match="width"):
        wf.progress_text(_tqdm_state(1, 2), "bar", width=0)


def _entry(key: str, authors: list[str], year: str = "2021") -> Entry:
    e = Entry("article", fields={"title": "T", "year": year})
    e.key = key
    e.persons["author"] = [Person(a) for a in authors]
    return e


def test_author_year_labels_match_the_citations() -> None:
    assert refs.author_year_label(_entry("a", ["Hu, Jie"], "2018")) == "Hu, 2018"
    assert refs.author_year_label(_entry("b", ["Rabe, Markus N.", "Staats, Charles"])) == "Rabe and Staats, 2021"
    assert refs.author_year_label(_entry("c", ["Vaswani, A.", "Shazeer, N.", "Parmar, N."], "2017")) == \
        "Vaswani et al., 2017"
    labels = list(refs.AuthorYearLabelStyle().format_labels([_entry("d", ["Li, X."]), _entry("e", ["Li, X."])]))
    assert labels == ["Li, 2021a", "Li, 2021b"]
    with pytest.raises(ValueError, match="needs an author"):
        refs.author_year_label(_entry("f", []))


def test_inline_maths_in_a_reference_is_split_out() -> None:
    assert refs.split_inline_math("Does Not Need $O(n^2)$ Memory") == \
        [("Does Not Need ", False), ("O(n^2)", True), (" Memory", False)]
    assert refs.split_inline_math("plain") == [("plain", False)]
    with pytest.raises(ValueError, match="unbalanced"):
        refs.split_inline_math("costs $5")


def test_figure_png_records_its_smallest_text() -> None:
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    ax.set_title("title", fontsize=14)
    ax.tick_params(labelsize=7.2)
    meta = figure_text.read_text_metadata(figure_png(fig, dpi=100))
    assert float(meta[figure_text.KEY_PT]) == pytest.approx(7.2)
    assert float(meta[figure_text.KEY_PX]) == pytest.approx(7.2 * 100 / 72, abs=0.01)
    assert figure_text.text_metadata(Figure(), 100) == {}  # no text: nothing to be too small
    with pytest.raises(ValueError, match="dpi"):
        figure_text.text_metadata(fig, 0)
    with pytest.raises(ValueError, match="PNG"):
        figure_text.read_text_metadata(b"GIF89a")


def _png_with_text(px: float, width: int = 600) -> bytes:
    fig = Figure(figsize=(width / 100, 2), dpi=100)
    fig.text(0.1, 0.5, "label", fontsize=px * 72 / 100)
    return figure_png(fig, dpi=100)


def test_readable_width_is_where_the_smallest_text_reaches_9_px() -> None:
    for text_px in (6.0, 18.0, 27.0):
        png = _png_with_text(text_px)
        width = figure_text.png_width(png)
        recorded = float(figure_text.read_text_metadata(png)[figure_text.KEY_PX])
        assert recorded == pytest.approx(text_px, abs=0.05)
        # 6 px text: 9 px only wider than the PNG, so its own width (a figure is never blown up);
        # 18 px: half the width; 27 px: a third
        assert figure_text.readable_width(png) == min(width, math.ceil(width * 9 / recorded))
        assert figure_text.readable_width(png, min_css_px=12) == min(width, math.ceil(width * 12 / recorded))
    assert figure_text.readable_width(_png_with_text(6.0)) == figure_text.png_width(_png_with_text(6.0))
    assert figure_text.readable_width(_png(80)) == 80  # no text recorded: its own width
    with pytest.raises(ValueError, match="min_css_px=0"):
        figure_text.readable_width(png, min_css_px=0)
    with pytest.raises(ValueError, match="not a PNG"):
        figure_text.readable_width(b"GIF89a")


def test_figure_images_get_their_readable_min_width() -> None:
    body = ('<img alt="a" src="../_images/abc.png" />\n<img alt="b" src="../_images/other.png">\n'
            '<img src="../_static/logo.png" />\n<img style="width: 5px" src="../_images/abc.png" />')
    out = book_figures.with_min_widths(body, {"abc.png": 420})
    lines = out.splitlines()
    assert lines[0] == ('<img alt="a" src="../_images/abc.png" style="min-width: 420px" '
                        f'{book_figures.READABLE_ATTR}="420" />')
    assert lines[1:] == body.splitlines()[1:]  # unknown image, not a figure, a style of its own: unchanged
    assert book_figures.with_min_widths(out, {"abc.png": 420}) == out  # idempotent


def test_the_book_names_its_own_mathjax_and_the_package_it_comes_from() -> None:
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "_config.yml").read_text())
    assert config["sphinx"]["config"]["mathjax_path"] == f"{book_mathjax.TARGET}/{book_mathjax.PARTS[0]}"
    assert "course_pkg.book_mathjax" in config["sphinx"]["extra_extensions"]
    src = book_mathjax.mathjax_source()
    assert all((src / part).exists() for part in book_mathjax.PARTS)


def test_a_missing_mathjax_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from sphinx.errors import ExtensionError

    monkeypatch.setitem(sys.modules, "mathjax", None)  # import mathjax -> ImportError
    with pytest.raises(ExtensionError, match=r"pip install 'django-static-mathjax>=3\.2\.2,<4'"):
        book_mathjax.mathjax_source()
