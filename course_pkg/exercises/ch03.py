"""Chapter 3 exercises: the three kinds of attention in vision, each on a feature map.

1. ``spatial_weighting``: a spatial map (one weight per position) applied to every channel.
2. ``channel_weighting``: channel weights (one weight per channel) applied at every position.
3. ``patch_self_attention``: every patch attends to every patch (global context).
4. ``attention_entropy``: interpret a map: how spread out is it (0 = one position, log(H*W) = even)?
"""

from __future__ import annotations

import math

import torch

from .core import Case, CheckFailure, Exercise, Mistake, check_rows_sum_to_one, swapped_pair_hint
from .registry import register
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
        Mistake(lambda f, m: f * m[..., None], "raised", "adds the axis at the end: (B, H, W, 1)",
                "attn_map[..., None] has shape (B, H, W, 1), which lines up with the wrong axes of the features; "
                "the channel axis goes second: attn_map[:, None] has shape (B, 1, H, W)."),
        Mistake(lambda f, m: f * torch.softmax(m.flatten(1), -1).view_as(m)[:, None], "values differ",
                "renormalises the map with a softmax",
                "the map is used as it is: a softmax would renormalise it (a map of ones would no longer keep "
                "the features). Multiply by attn_map[:, None]."),
        Mistake(lambda f, m: (f * m[:, None]).sum(dim=(2, 3)), "shape", "pools the weighted map",
                "the output keeps every position: (B, C, H, W), the features multiplied by the map, not pooled."),
        Mistake(lambda f, m: f * m, "raised", "multiplies by the map without a channel axis",
                "the map (B, H, W) needs a channel axis in second place to broadcast over the channels: "
                "attn_map[:, None] has shape (B, 1, H, W). Without it (or with attn_map[None]) the map's batch "
                "axis lines up with the channels, which works by accident for a single image only."),
        Mistake(lambda f, m: f + m[:, None], "values differ", "adds the map",
                "the map weights the features: multiply, features * attn_map[:, None], do not add."),
        Mistake(lambda f, m: (f * m[:, None]).sum(dim=1), "shape", "sums over the channels",
                "keep the channels: the output has the features' shape (B, C, H, W); multiply, do not sum."),
        Mistake(lambda f, m: f * torch.sigmoid(m)[:, None], "values differ", "squashes the map with a sigmoid",
                "the map is already weights: multiply by it as it is, without a sigmoid."),
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
        Mistake(lambda f, w: f * w[:, None, None, :], "values differ", "broadcasts the weights over the width",
                "weights[:, None, None, :] lines the weights up with the width axis; they belong to the channels "
                "(dim 1): weights[:, :, None, None] has shape (B, C, 1, 1)."),
        Mistake(lambda f, w: f * torch.softmax(w, -1)[:, :, None, None], "values differ",
                "turns the weights into a softmax",
                "the weights are already weights: multiply by them as they are, without a softmax."),
        Mistake(lambda f, w: f * w[:, :, None], "raised", "adds one axis instead of two",
                "weights[:, :, None] has shape (B, C, 1), which lines up with the last three axes (C, H, W) of "
                "the features; add two axes: weights[:, :, None, None] has shape (B, C, 1, 1)."),
        Mistake(lambda f, w: (f * w[:, :, None, None]).sum(dim=1), "shape", "sums over the channels",
                "keep the channels: the output has the features' shape (B, C, H, W); multiply, do not sum."),
        Mistake(lambda f, w: f + w[:, :, None, None], "values differ", "adds the weights",
                "the weights scale the channels: multiply, features * weights[:, :, None, None], do not add."),
        Mistake(lambda f, w: f * torch.sigmoid(w)[:, :, None, None], "values differ",
                "squashes the weights with a sigmoid",
                "the weights are already weights: multiply by them as they are, without a sigmoid."),
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
        Mistake(lambda p: (torch.softmax(p @ p.T / p.shape[-1] ** 0.5, -1) @ p,
                           torch.softmax(p @ p.T / p.shape[-1] ** 0.5, -1)), "raised", "patches.T on a batch",
                "patches.T reverses every axis of a batch (B, N, D); transpose only the last two: "
                "patches.transpose(-2, -1)."),
        Mistake(lambda p: (torch.softmax(p @ p.transpose(-2, -1) / p.shape[-1], -1) @ p,
                           torch.softmax(p @ p.transpose(-2, -1) / p.shape[-1], -1)), "values differ",
                "divides the scores by D",
                "the scores are divided by sqrt(D), not D: / math.sqrt(patches.shape[-1])."),
    ],
))


# -- attention_entropy: properties any right answer has, checked before the values -----------------------
def _entropy_properties(out: object, args: tuple) -> None:
    (maps,) = args
    if not (isinstance(out, torch.Tensor) and out.is_floating_point() and out.shape == maps.shape[:1]):
        return  # the structure check has explained it
    n = maps.shape[1] * maps.shape[2]
    flat = maps.flatten(1)
    if not torch.isfinite(out).all():
        b = int((~torch.isfinite(out)).nonzero()[0])
        zeros = int((flat[b] == 0).sum())
        raise CheckFailure(f"the entropy of map {b} is {out[b].item()}" + (
            f"; that map has {zeros} positions of weight 0, and 0 * log(0) gives NaN in floating point. "
            "In an entropy 0 * log(0) counts as 0: use torch.special.xlogy(p, p) for p * log(p), or "
            "p * torch.log(p.clamp_min(1e-12))." if zeros else "."))
    log_n = math.log(n)
    for b in range(len(flat)):
        row, got = flat[b], out[b].item()
        if torch.all(row == row[0]) and row[0] > 0 and not math.isclose(got, log_n, rel_tol=1e-4):
            if math.isclose(got, math.log2(n), rel_tol=1e-4):
                extra = f" ({got:.4g} = log2({n}): use the natural logarithm, torch.log, for nats)"
            elif math.isclose(got, -log_n, rel_tol=1e-4):
                extra = ": check the minus sign, H = -sum p log p"
            else:
                extra = " (read the map as a distribution first: divide it by its sum)"
            raise CheckFailure(f"map {b} is constant: it spreads its weight evenly over all {n} positions, so its "
                               f"entropy is log({n}) = {log_n:.4g} nats, but got {got:.4g}{extra}.")
        if int((row != 0).sum()) == 1 and abs(got) > 1e-5:
            raise CheckFailure(f"map {b} has a single nonzero position: all its weight is in one place, so its "
                               f"entropy is 0, but got {got:.4g}. Normalise by dividing by the map's sum "
                               "(a softmax over the map's values would give every position some weight).")
    p = flat / flat.sum(dim=1, keepdim=True)
    keys = torch.sort(p, dim=1).values
    for i in range(len(p)):
        for j in range(i):
            if torch.allclose(keys[i], keys[j], atol=1e-6) and not math.isclose(out[i].item(), out[j].item(),
                                                                                rel_tol=1e-4, abs_tol=1e-6):
                raise CheckFailure(f"maps {j} and {i} put the same weights on their positions, up to a scale and "
                                   f"a reordering, but get entropies {out[j].item():.4g} and {out[i].item():.4g}: "
                                   "the entropy must not depend on the map's scale or on where each weight is. "
                                   "Divide each map by its sum over the H * W positions first.")
    if (out < -1e-5).any():
        raise CheckFailure(f"an entropy is never negative (it is -sum p log p with 0 <= p <= 1), but map "
                           f"{int((out < -1e-5).nonzero()[0])} gets {out.min().item():.4g}: check the minus sign.")
    if (out > log_n * (1 + 1e-4) + 1e-5).any():
        raise CheckFailure(f"the entropy of a distribution over {n} positions is at most log({n}) = {log_n:.4g}, "
                           f"but got {out.max().item():.4g}: divide each map by its sum before taking p log p.")


def _constant_and_spot() -> tuple:
    spot = torch.zeros(4, 4)
    spot[1, 2] = 1.0
    return (torch.stack([torch.full((4, 4), 0.3), spot]),)


def _scaled_and_moved() -> tuple:
    m = torch.rand(1, 3, 5)
    return (torch.cat([m, 5 * m, m.flip(-1).flip(-2), m * 0.01]),)


attention_entropy = register(Exercise(
    id="ch03.attention_entropy",
    title="Interpreting a map: its entropy",
    reference=ref.attention_entropy,
    cases=[
        Case("a constant map and a single spot", _constant_and_spot,
             "a constant map has entropy log(H * W); a map with one nonzero position has entropy 0"),
        Case("the same map scaled and moved", _scaled_and_moved,
             "a map, 5 times the map, the map flipped and 0.01 times the map: all four have the same entropy"),
        Case("random maps, 8 x 8", lambda: (torch.rand(3, 8, 8),),
             "a random map in [0, 1) is close to even: its entropy is about log(64) - 0.19"),
        Case("sharp and soft maps", lambda: (torch.sigmoid(4 * torch.randn(2, 6, 7)),),
             "maps of shape (B, H, W) give one entropy per map, shape (B,), in nats"),
    ],
    hints=[
        "Read each map as a probability distribution over its H * W positions: flatten it to (B, H * W) and "
        "divide by its sum, so each row sums to one.",
        "The entropy is H = -sum_i p_i log p_i, in nats (natural log). A position of weight 0 contributes 0, "
        "but 0 * log(0) is NaN in floating point: torch.special.xlogy(p, p) computes p * log(p) with 0 for p = 0.",
        "p = attn_map.flatten(1); p = p / p.sum(dim=1, keepdim=True); return -torch.special.xlogy(p, p).sum(dim=1).",
    ],
    properties=[_entropy_properties],
    mistakes=[
        Mistake(lambda m: -torch.special.xlogy(m.flatten(1), m.flatten(1)).sum(1), "by its sum",
                "does not normalise the map", "divide each map by its sum first: the entropy is that of a "
                "distribution, so it must not change when the map is scaled."),
        Mistake(lambda m: -((m.flatten(1) / m.flatten(1).sum(1, keepdim=True))
                            * (m.flatten(1) / m.flatten(1).sum(1, keepdim=True)).log()).sum(1),
                "0 * log(0)", "p * log(p) gives NaN where p = 0"),
        Mistake(lambda m: -(torch.special.xlogy(m.flatten(1) / m.flatten(1).sum(1, keepdim=True),
                                                m.flatten(1) / m.flatten(1).sum(1, keepdim=True)) / math.log(2)).sum(1),
                "natural logarithm", "log base 2 (bits instead of nats)"),
        Mistake(lambda m: -torch.special.xlogy(torch.softmax(m.flatten(1), 1), torch.softmax(m.flatten(1), 1)).sum(1),
                "single nonzero position", "normalises with a softmax instead of dividing by the sum",
                "a softmax over the map's values is not the map's own distribution (exp(0) = 1 gives empty "
                "positions weight): divide the map by its sum."),
        Mistake(lambda m: torch.special.xlogy(m.flatten(1) / m.flatten(1).sum(1, keepdim=True),
                                              m.flatten(1) / m.flatten(1).sum(1, keepdim=True)).sum(1),
                "minus sign", "forgets the minus sign"),
        Mistake(lambda m: -torch.special.xlogy(m / m.sum(-1, keepdim=True), m / m.sum(-1, keepdim=True)).sum(-1),
                "expected shape", "one entropy per row of the map instead of per map",
                "flatten each map to its H * W positions first (attn_map.flatten(1)): one entropy per map, (B,)."),
    ],
))
