"""course_pkg.examples: the toy data behind chapter 1 behaves as the chapter says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
import torch
from matplotlib.figure import Figure

from course_pkg import examples

CHAPTER_1 = Path(__file__).resolve().parents[1] / "book" / "01_attention.ipynb"


def test_crowd_scene_is_deterministic_and_the_target_stands_out() -> None:
    a, b = examples.crowd_scene(seed=0), examples.crowd_scene(seed=0)
    assert (a.image == b.image).all() and a.target == b.target
    assert a.image.shape == (128, 128, 3) and a.features.shape == (64, 3)
    z = (a.features - a.features.mean(0)) / a.features.std(0)
    assert int((z @ z[a.target]).argmax()) == a.target
    assert examples.crowd_scene(seed=1).target != a.target or not (examples.crowd_scene(seed=1).image == a.image).all()


def test_crowd_bad_input_and_plot() -> None:
    with pytest.raises(ValueError, match="grid must be >= 2"):
        examples.crowd_scene(grid=1)
    crowd = examples.crowd_scene(grid=4, cell=8)
    assert isinstance(examples.plot_crowd_attention(crowd, torch.full((16,), 1 / 16)), Figure)
    with pytest.raises(ValueError, match="one entry per cell"):
        examples.plot_crowd_attention(crowd, torch.ones(5))


def _chapter_context_weights() -> Callable[..., torch.Tensor]:
    """``context_weights`` as chapter 1 defines it (the chapter is its only copy)."""
    nb = json.loads(CHAPTER_1.read_text(encoding="utf-8"))
    cell = next("".join(c["source"]) for c in nb["cells"]
                if c["cell_type"] == "code" and "".join(c["source"]).startswith("def context_weights("))
    namespace: dict = {"torch": torch, "examples": examples}
    exec(cell, namespace)
    return namespace["context_weights"]


def test_bank_draws_on_the_deciding_words() -> None:
    context_weights = _chapter_context_weights()
    money = "he went to the bank to withdraw money".split()
    river = "she sat on the bank of the river".split()
    bank = money.index("bank")
    w = context_weights(money, bank)
    assert torch.isclose(w.sum(), torch.tensor(1.0))
    assert {money[i] for i in w.topk(2).indices} == {"withdraw", "money"}
    assert w[bank] == 0  # the query word is masked: the chapter's heatmap shows 0.00 there
    w = context_weights(river, river.index("bank"))
    assert river[int(w.argmax())] == "river"
    # unmasked, "bank" draws mostly on itself (the chapter says so, with the measured share)
    w_self = context_weights(money, bank, keep_self=True)
    assert int(w_self.argmax()) == bank and w_self[bank] > 0.5


def test_autocorrect_needs_the_whole_sentence() -> None:
    context_weights = _chapter_context_weights()
    s = "i am going to the bark later".split()
    slot = s.index("bark")

    def best(window: int | None) -> str:
        fit = {c: float(examples.embed([c])[0] @ (context_weights(s, slot, query_word=c, window=window)
                                                   @ examples.embed(s)))
               for c in ["bark", "park", "dark", "barn", "bank"]}
        return max(fit, key=fit.get)

    assert best(None) == "park"
    assert best(1) == "dark"
    w = context_weights(s, slot, window=1)
    assert (w[[0, 1, 2, 3]] == 0).all() and w[slot] == 0


def test_embed_bad_input() -> None:
    with pytest.raises(KeyError, match="not in the toy vocabulary"):
        examples.embed(["zebra"])


def test_viewing_history() -> None:
    h = examples.viewing_history()
    assert h.genres.shape == (12, 6) and torch.allclose(h.genres.sum(1), torch.ones(12))
    long = examples.viewing_history(extra_random=100, seed=1)
    assert long.genres.shape == (112, 6)
    assert (long.genres[12:, 0] == 0).all()  # the filler has no thrillers
    interest = h.genres[h.titles.index("Cold Trail")]
    w = torch.softmax(long.genres @ interest / 0.2, dim=0)
    thrillers = {"The Quiet Witness", "Cold Trail", "Deadline at Midnight"}
    assert {long.titles[i] for i in w.topk(3).indices} == thrillers
