"""Small, transparent examples for chapter 1: a crowd to search, words that need context, and a
viewing history to summarise.

Everything here is hand-made and tiny on purpose, so that a reader can see *why* the attention
weights come out as they do. Features are interpretable (one dimension per idea), no training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = [
    "CONCEPTS",
    "Crowd",
    "ViewingHistory",
    "crowd_scene",
    "embed",
    "plot_crowd_attention",
    "viewing_history",
]


# ----------------------------------------------------------------------------------------------
# 1. Finding one person in a crowd
# ----------------------------------------------------------------------------------------------
@dataclass
class Crowd:
    """A crowd scene cut into a grid of cells, one figure per cell.

    Attributes:
        image: ``(H, W, 3)`` float RGB in [0, 1].
        features: ``(N, 3)`` per-cell features ``[red, white, stripes]``, N = grid * grid.
        target: index in ``0..N-1`` of the cell holding the striped red-and-white figure.
        grid: cells per side; cell: pixels per cell side.
    """

    image: np.ndarray
    features: torch.Tensor
    target: int
    grid: int
    cell: int

    @property
    def feature_names(self) -> list[str]:
        return ["red", "white", "stripes"]


def _cell_features(patch: np.ndarray) -> list[float]:
    r, g, b = patch[..., 0], patch[..., 1], patch[..., 2]
    red = float(np.mean((r > 0.6) & (g < 0.35) & (b < 0.35)))
    white = float(np.mean((r > 0.85) & (g > 0.85) & (b > 0.85)))
    stripes = float(np.mean(np.abs(np.diff(patch.mean(axis=2), axis=0))))  # vertical changes = horizontal stripes
    return [red, white, stripes]


def crowd_scene(grid: int = 8, cell: int = 16, seed: int = 0) -> Crowd:
    """Draw ``grid x grid`` figures in random colours; exactly one wears red and white stripes.

    Returns a :class:`Crowd` with the image and one feature vector per cell.
    """
    if grid < 2 or cell < 8:
        raise ValueError(f"grid must be >= 2 and cell >= 8, got grid={grid}, cell={cell}")
    rng = np.random.default_rng(seed)
    h = w = grid * cell
    img = np.full((h, w, 3), 0.55) + rng.normal(0, 0.03, (h, w, 3))  # grey ground with a little noise
    target = int(rng.integers(grid * grid))
    palette = np.array([[0.2, 0.4, 0.8], [0.3, 0.6, 0.3], [0.9, 0.7, 0.2], [0.5, 0.3, 0.6],
                        [0.8, 0.4, 0.1], [0.2, 0.6, 0.7], [0.7, 0.2, 0.2], [0.95, 0.95, 0.9]])
    for i in range(grid * grid):
        y0, x0 = (i // grid) * cell, (i % grid) * cell
        body = (slice(y0 + cell // 3, y0 + cell - 1), slice(x0 + cell // 4, x0 + cell - cell // 4))
        head = (slice(y0 + 1, y0 + cell // 3), slice(x0 + cell // 3, x0 + cell - cell // 3))
        img[head] = [0.95, 0.8, 0.65]
        if i == target:
            rows = np.arange(body[0].start, body[0].stop)
            for k, y in enumerate(rows):
                img[y, body[1]] = [0.85, 0.1, 0.1] if (k // 2) % 2 == 0 else [1.0, 1.0, 1.0]
        else:
            img[body] = palette[rng.integers(len(palette))]  # plain colours, some red, some white
    img = np.clip(img, 0, 1)
    feats = [_cell_features(img[(i // grid) * cell:(i // grid + 1) * cell, (i % grid) * cell:(i % grid + 1) * cell])
             for i in range(grid * grid)]
    return Crowd(img, torch.tensor(feats, dtype=torch.float32), target, grid, cell)


def plot_crowd_attention(crowd: Crowd, weights: torch.Tensor, title: str = "attention over the crowd") -> Figure:
    """The crowd next to the attention weights of its cells drawn as a heatmap over the image.

    Args:
        weights: ``(N,)`` one weight per cell.
    """
    if weights.numel() != crowd.grid ** 2:
        raise ValueError(f"weights must have one entry per cell ({crowd.grid ** 2}), got {weights.numel()}")
    fig = Figure(figsize=(8, 4), layout="constrained")
    a, b = fig.subplots(1, 2)
    a.imshow(crowd.image)
    a.set_title("the crowd")
    b.imshow(crowd.image)
    wmap = weights.detach().reshape(crowd.grid, crowd.grid).numpy()
    im = b.imshow(wmap, cmap="magma", alpha=0.75, extent=(0, crowd.image.shape[1], crowd.image.shape[0], 0),
                  interpolation="nearest")
    b.set_title(title)
    for ax in (a, b):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=b, shrink=0.8, label="weight")
    return fig


# ----------------------------------------------------------------------------------------------
# 2. Words that need context
# ----------------------------------------------------------------------------------------------
CONCEPTS = ["money", "water", "motion", "place", "animal", "time", "light"]
"""The meaning dimensions of the toy word vectors, one idea per dimension."""

_WORDS: dict[str, Sequence[float]] = {
    #            money water motion place animal time light
    "bank":     (0.6, 0.6, 0.0, 0.6, 0.0, 0.0, 0.0),   # ambiguous: a money bank or a river bank
    "withdraw": (0.9, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0),
    "money":    (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "river":    (0.0, 1.0, 0.2, 0.4, 0.0, 0.0, 0.0),
    "fish":     (0.0, 0.8, 0.3, 0.0, 0.6, 0.0, 0.0),
    "went":     (0.0, 0.0, 1.0, 0.2, 0.0, 0.1, 0.0),
    "going":    (0.0, 0.0, 1.0, 0.3, 0.0, 0.1, 0.0),
    "sat":      (0.0, 0.0, 0.1, 0.3, 0.0, 0.0, 0.0),
    "later":    (0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.3),
    "park":     (0.0, 0.1, 0.5, 1.0, 0.1, 0.0, 0.1),
    "bark":     (0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0),   # what a dog does, or a tree's skin
    "dark":     (0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 1.0),
    "barn":     (0.0, 0.0, 0.0, 0.6, 0.6, 0.0, 0.0),
    "watched":  (0.0, 0.0, 0.1, 0.0, 0.1, 0.1, 0.0),
    "the":      (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "to":       (0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0),
    "on":       (0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0),
    "of":       (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "he":       (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "she":      (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "i":        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "am":       (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
}


def embed(words: Sequence[str]) -> torch.Tensor:
    """Toy word vectors. ``len(words)`` words -> ``(len(words), len(CONCEPTS))``.

    Raises:
        KeyError: for a word outside the toy vocabulary, listing the known words.
    """
    out = []
    for w in words:
        key = w.lower().strip(".,!?")
        if key not in _WORDS:
            raise KeyError(f"word {w!r} is not in the toy vocabulary; known words: {sorted(_WORDS)}")
        out.append(_WORDS[key])
    return torch.tensor(out, dtype=torch.float32)


# ----------------------------------------------------------------------------------------------
# 3. A viewing history
# ----------------------------------------------------------------------------------------------
GENRES = ["thriller", "comedy", "romance", "documentary", "animation", "sci-fi"]


@dataclass
class ViewingHistory:
    """A viewer's history and a catalogue to recommend from (made-up titles).

    Attributes:
        titles: ``n`` watched titles; genres: ``(n, 6)`` genre mix of each (rows sum to one).
        catalogue: ``m`` candidate titles; catalogue_genres: ``(m, 6)``.
        genre_names: the six genre names.
    """

    titles: list[str]
    genres: torch.Tensor
    catalogue: list[str]
    catalogue_genres: torch.Tensor
    genre_names: list[str]


_HISTORY = [
    ("Laugh Lines", (0, 1, 0, 0, 0, 0)), ("The Quiet Witness", (1, 0, 0, 0, 0, 0)),
    ("Penguins of the South", (0, 0, 0, 1, 0, 0)), ("Love in Lisbon", (0, 0.2, 0.8, 0, 0, 0)),
    ("Robot Picnic", (0, 0.5, 0, 0, 0.5, 0)), ("Deadline at Midnight", (0.9, 0, 0, 0, 0, 0.1)),
    ("Ocean Deep", (0, 0, 0, 1, 0, 0)), ("Office Party", (0, 1, 0, 0, 0, 0)),
    ("Second Chances", (0, 0.3, 0.7, 0, 0, 0)), ("Cold Trail", (1, 0, 0, 0, 0, 0)),
    ("Mars Colony", (0.2, 0, 0, 0, 0, 0.8)), ("Family Road Trip", (0, 0.8, 0, 0, 0.2, 0)),
]
_CATALOGUE = [
    ("The Vanishing Key", (1, 0, 0, 0, 0, 0)), ("Night Train Alibi", (0.8, 0, 0, 0, 0, 0.2)),
    ("Wedding Crashers Club", (0, 0.8, 0.2, 0, 0, 0)), ("Kittens Go Camping", (0, 0.4, 0, 0, 0.6, 0)),
    ("Rainforest Year", (0, 0, 0, 1, 0, 0)), ("Starlight Romance", (0, 0, 1, 0, 0, 0)),
    ("Orbit", (0.3, 0, 0, 0, 0, 0.7)), ("Stand-up Tonight", (0, 1, 0, 0, 0, 0)),
]


def viewing_history(extra_random: int = 0, seed: int = 0) -> ViewingHistory:
    """The chapter's viewing history; ``extra_random`` appends that many random non-thriller
    titles to make the history long (to show that attention still finds the relevant few)."""
    titles = [t for t, _ in _HISTORY]
    genres = torch.tensor([g for _, g in _HISTORY], dtype=torch.float32)
    if extra_random:
        g = torch.Generator().manual_seed(seed)
        mix = torch.rand(extra_random, len(GENRES), generator=g) ** 3
        mix[:, 0] = 0.0  # no thrillers among the filler
        genres = torch.cat([genres, mix])
        titles += [f"filler #{i}" for i in range(extra_random)]
    genres = genres / genres.sum(dim=1, keepdim=True)
    cat = torch.tensor([g for _, g in _CATALOGUE], dtype=torch.float32)
    cat = cat / cat.sum(dim=1, keepdim=True)
    return ViewingHistory(titles, genres, [t for t, _ in _CATALOGUE], cat, list(GENRES))


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
