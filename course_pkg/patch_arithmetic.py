"""The token arithmetic of a Vision Transformer: what one patch size means for one square image.

Cutting an ``S x S`` image with ``C`` channels into ``P x P`` patches (stride ``P``: no overlap, no
leftover, so ``P`` must divide ``S``) gives a ``g x g`` grid with ``g = S / P``; each patch flattens to
``P * P * C`` numbers; with [CLS] the encoder sees ``N = g * g + 1`` tokens, and each attention matrix has
``N * N`` entries per head and layer. :func:`patch_numbers` computes all of these at once
(:class:`PatchNumbers`), :func:`patch_size_options` lists the patch sizes that divide an image.

Pure integer arithmetic: no model, no tensor, no picture. Chapter 6's patch explorer
(:class:`course_pkg.widgets.PatchSizeExplorer`) shows these numbers; ``course_pkg.widgets`` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .checks import positive_int

__all__ = ["PatchNumbers", "patch_numbers", "patch_size_options"]


def patch_size_options(img_size: int, min_size: int = 1, max_size: Optional[int] = None) -> list[int]:
    """The patch sizes that cut an ``img_size x img_size`` image into whole patches: its divisors.

    Args:
        img_size: the image side in pixels.
        min_size, max_size: keep only divisors in ``[min_size, max_size]`` (default: all of them).

    Returns:
        The divisors in increasing order, e.g. ``patch_size_options(32) == [1, 2, 4, 8, 16, 32]``.
    """
    img_size = positive_int("img_size", img_size)
    hi = img_size if max_size is None else positive_int("max_size", max_size)
    lo = positive_int("min_size", min_size)
    sizes = [p for p in range(lo, min(hi, img_size) + 1) if img_size % p == 0]
    if not sizes:
        raise ValueError(f"no patch size in [{lo}, {hi}] divides img_size={img_size}; "
                         f"its divisors are {patch_size_options(img_size)}")
    return sizes


@dataclass(frozen=True)
class PatchNumbers:
    """What one patch size means for one image (all the numbers the patch explorer shows).

    Attributes:
        img_size, patch_size, in_chans: the input.
        grid: patches per side, ``img_size // patch_size``.
        num_patches: ``grid ** 2``.
        patch_dim: length of one flattened patch, ``patch_size ** 2 * in_chans``.
        seq_len: tokens the encoder sees, ``num_patches + 1`` ([CLS] included).
        attn_entries: entries of one attention matrix, ``seq_len ** 2`` (per head, per layer).
        reference_patch: the patch size the cost is compared with (16 unless told).
        relative_cost: ``attn_entries`` divided by the same number at ``reference_patch``.
    """

    img_size: int
    patch_size: int
    in_chans: int
    grid: int
    num_patches: int
    patch_dim: int
    seq_len: int
    attn_entries: int
    reference_patch: int
    relative_cost: float

    def rows(self) -> list[tuple[str, str]]:
        """``(label, value)`` pairs, in the order the explorer shows them."""
        p, g = self.patch_size, self.grid
        return [
            ("patch grid", f"{self.img_size} / {p} = {g} per side &rarr; {g} &times; {g} = "
                           f"<b>{self.num_patches:,}</b> patches"),
            ("one flattened patch", f"{p} &times; {p} &times; {self.in_chans} = <b>{self.patch_dim:,}</b> numbers"),
            ("sequence length", f"{self.num_patches:,} + 1 [CLS] = <b>{self.seq_len:,}</b> tokens"),
            ("attention matrix", f"{self.seq_len:,} &times; {self.seq_len:,} = <b>{self.attn_entries:,}</b> "
                                 "entries per head and layer"),
            (f"attention cost vs {self.reference_patch}&times;{self.reference_patch}",
             f"<b>{_format_ratio(self.relative_cost)}</b>"),
        ]

    def to_html(self) -> str:
        """The numbers as a small HTML table."""
        cells = "".join(f"<tr><td style='padding:1px 10px 1px 0;color:#555'>{k}</td><td>{v}</td></tr>"
                        for k, v in self.rows())
        return f"<table style='font-size:0.95em;border-collapse:collapse'>{cells}</table>"


def _format_ratio(r: float) -> str:
    if r >= 10:
        return f"{r:,.0f}&times;"
    if r >= 1:
        return f"{r:.2f}&times;"
    return f"{r:.3g}&times; (1/{1 / r:,.0f})"


def _typed_int(name: str, value: Any) -> int:
    """A positive int, a ``TypeError`` for a non-number (a str...), a ``ValueError`` for a bad number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}={value!r} is a {type(value).__name__}; use an int, a positive integer")
    return positive_int(name, value)



def patch_numbers(img_size: int, patch_size: int, in_chans: int = 3, reference_patch: int = 16) -> PatchNumbers:
    """The token arithmetic of a ViT for a square image.

    Example: ``patch_numbers(224, 16)`` gives 14 x 14 = 196 patches of 16 * 16 * 3 = 768 numbers, 197 tokens
    with [CLS], and a 197 x 197 attention matrix (relative cost 1).

    Args:
        img_size: image side in pixels.
        patch_size: patch side; must divide ``img_size`` (stride = patch size: no overlap, no leftover).
        in_chans: channels per pixel.
        reference_patch: the patch size the attention cost is compared with; must divide ``img_size`` too.

    Raises:
        ValueError: a size is not a positive integer or does not divide ``img_size``.
    """
    img_size = _typed_int("img_size", img_size)
    patch_size = _typed_int("patch_size", patch_size)
    in_chans = _typed_int("in_chans", in_chans)
    reference_patch = _typed_int("reference_patch", reference_patch)
    for name, p in (("patch_size", patch_size), ("reference_patch", reference_patch)):
        if img_size % p:
            raise ValueError(f"img_size={img_size} is not divisible by {name}={p}; use one of the sizes that "
                             f"divide it: {patch_size_options(img_size)}")
    grid = img_size // patch_size
    n = grid * grid
    seq = n + 1
    ref_seq = (img_size // reference_patch) ** 2 + 1
    return PatchNumbers(img_size=img_size, patch_size=patch_size, in_chans=in_chans, grid=grid, num_patches=n,
                        patch_dim=patch_size * patch_size * in_chans, seq_len=seq, attn_entries=seq * seq,
                        reference_patch=reference_patch, relative_cost=(seq * seq) / (ref_seq * ref_seq))



# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
