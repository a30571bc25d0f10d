"""Chapter 3 exercises: the three kinds of attention in vision, each on a feature map.

1. ``spatial_weighting``: a spatial map (one weight per position) applied to every channel.
2. ``channel_weighting``: channel weights (one weight per channel) applied at every position.
3. ``patch_self_attention``: every patch attends to every patch (global context).
"""

from __future__ import annotations

import torch

from . import register
from .core import Case, Exercise, Mistake, check_rows_sum_to_one, swapped_pair_hint
from .solutions import ch03 as ref


def _rows_sum_to_one(out: object, args: tuple) -> None:
    if isinstance(out, (tuple, list)) and len(out) == 2:
        check_rows_sum_to_one(out[1], "each row of the attention weights should sum to one (a patch's weights "
                              "over all patches)", "Take the softmax over the last dimension (dim=-1).")


spatial_weighting = register(Exercise(
    id="ch03.spatial_weighting",
    title="Spatial attention: weight every position",
    reference=ref.spatial_weighting,
    cases=[
        Case("a map of ones", lambda: (torch.randn(1, 3, 4, 5), torch.ones(1, 4, 5)),
             "a map that weights every position by 1 leaves the features unchanged"),
        Case("keep the left half", lambda: (torch.randn(2, 3, 4, 6), torch.cat([torch.ones(2, 4, 3),
                                                                                torch.zeros(2, 4, 3)], -1)),
             "a 0/1 map keeps the positions where it is 1 and zeroes the others, in every channel"),
        Case("a soft map, batch of 2", lambda: (torch.randn(2, 5, 3, 4), torch.rand(2, 3, 4)),
             "features (B, C, H, W) and a map (B, H, W): each image gets its own map, shared by its channels"),
    ],
    hints=[
        "The map has one number per position (B, H, W); the features have C numbers per position. "
        "Every channel at a position is multiplied by the same number.",
        "Give the map a channel axis of size 1 so it broadcasts over the channels: attn_map[:, None] "
        "(or attn_map.unsqueeze(1)) has shape (B, 1, H, W).",
    ],
    mistakes=[
        Mistake(lambda f, m: f * m[..., None], "raised", "adds the axis at the end: (B, H, W, 1)"),
        Mistake(lambda f, m: f * torch.softmax(m.flatten(1), -1).view_as(m)[:, None], "values differ",
                "renormalises the map with a softmax"),
        Mistake(lambda f, m: (f * m[:, None]).sum(dim=(2, 3)), "shape", "pools the weighted map"),
    ],
))

channel_weighting = register(Exercise(
    id="ch03.channel_weighting",
    title="Channel attention: weight every channel",
    reference=ref.channel_weighting,
    cases=[
        Case("switch one channel off", lambda: (torch.randn(1, 3, 2, 5), torch.tensor([[1.0, 0.0, 1.0]])),
             "a weight of 0 silences that channel everywhere; a weight of 1 keeps it"),
        Case("as many channels as columns", lambda: (torch.randn(2, 4, 3, 4), torch.rand(2, 4)),
             "the weights belong to the channel axis (dim 1), not to the last (width) axis"),
        Case("a batch", lambda: (torch.randn(3, 6, 5, 2), torch.rand(3, 6)),
             "features (B, C, H, W) and weights (B, C): each image has its own channel weights"),
    ],
    hints=[
        "Each channel c of image b is multiplied by weights[b, c], at every position (h, w).",
        "Reshape the weights to (B, C, 1, 1) so they broadcast over height and width: "
        "weights[:, :, None, None].",
    ],
    mistakes=[
        Mistake(lambda f, w: f * w[:, None, None, :], "values differ", "broadcasts the weights over the width"),
        Mistake(lambda f, w: f * torch.softmax(w, -1)[:, :, None, None], "values differ",
                "turns the weights into a softmax"),
    ],
))

patch_self_attention = register(Exercise(
    id="ch03.patch_self_attention",
    title="Self-attention among image patches",
    reference=ref.patch_self_attention,
    cases=[
        Case("two orthogonal patches", lambda: (torch.tensor([[2.0, 0.0], [0.0, 2.0]]),),
             "scores are dot products scaled by 1/sqrt(D); a patch matches itself best"),
        Case("six patches", lambda: (torch.randn(6, 4),), "patches (N, D) -> output (N, D) and weights (N, N)"),
        Case("a batch of images", lambda: (torch.randn(2, 5, 8),),
             "(B, N, D) works too: transpose the last two axes, not the first two"),
    ],
    hints=[
        "Every patch is a query and a key and a value at once: scores = patches @ patches^T.",
        "Divide the scores by sqrt(D) (D = patches.shape[-1]) before the softmax, and take the softmax over "
        "the last dimension.",
        "For batches, use patches.transpose(-2, -1) instead of patches.T. Return (weights @ patches, weights).",
    ],
    shape_hints=[swapped_pair_hint(ref.patch_self_attention)],
    properties=[_rows_sum_to_one],
    mistakes=[
        Mistake(lambda p: tuple(reversed(ref.patch_self_attention(p))), "order is (output, weights)",
                "returns (weights, output)"),
        Mistake(lambda p: (torch.softmax(p @ p.transpose(-2, -1), -1) @ p, torch.softmax(p @ p.transpose(-2, -1), -1)),
                "values differ", "forgets the 1/sqrt(D) scale"),
        Mistake(lambda p: (torch.softmax(p @ p.transpose(-2, -1) / p.shape[-1] ** 0.5, -2) @ p,
                           torch.softmax(p @ p.transpose(-2, -1) / p.shape[-1] ** 0.5, -2)),
                "sum to one", "softmax over the wrong axis"),
        Mistake(lambda p: torch.softmax(p @ p.transpose(-2, -1), -1) @ p, "tuple", "returns only the output"),
    ],
))
