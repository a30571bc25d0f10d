"""Chapter 5 exercises: CBAM's two attention maps, then the whole module.

1. ``channel_attention``: a shared MLP on the average- and max-pooled descriptors -> ``(B, C)`` weights.
2. ``spatial_map``: [mean; max] across channels -> a k x k convolution -> sigmoid -> ``(B, H, W)``.
3. ``CBAMBlock``: the module (``self.fc1``, ``self.fc2``, ``self.conv``): channel, then spatial.
4. ``cbam_order_gap``: swap CBAM's order (spatial, then channel) and compare: where each order's spatial map
   points (the pointing game) and how much the outputs differ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .core import Case, CheckFailure, Exercise, Mistake, check_in_unit_interval
from .registry import register
from .solutions import ch05 as ref


def _in_unit_interval(out: object, args: tuple) -> None:
    check_in_unit_interval(out, "attention weights", "Add the two MLP outputs first, then apply one sigmoid.",
                           open_interval=False)


def _spatial_in_unit_interval(out: object, args: tuple) -> None:
    check_in_unit_interval(out, "the spatial map's values", "End with torch.sigmoid.", open_interval=False)


def _channel_args(b: int, c: int, hidden: int, h: int, w: int, spike: bool = False):  # type: ignore[no-untyped-def]
    def make() -> tuple:
        x = torch.randn(b, c, h, w)
        if spike:
            x[:, :, 1, 2] += 6.0                      # one bright position: the max moves, the mean barely
        return x, torch.randn(hidden, c) * 0.5, torch.randn(c, hidden) * 0.5
    return make


def _spatial_args(b: int, c: int, h: int, w: int, k: int):  # type: ignore[no-untyped-def]
    def make() -> tuple:
        return torch.randn(b, c, h, w), torch.randn(1, 2, k, k) * 0.3, torch.randn(1)
    return make


channel_attention = register(Exercise(
    id="ch05.channel_attention",
    title="CBAM's channel attention",
    reference=ref.channel_attention,
    cases=[
        Case("constant map", lambda: (torch.ones(1, 4, 3, 3) * torch.arange(4.0).view(1, 4, 1, 1),
                                      torch.randn(2, 4), torch.randn(4, 2)),
             "when mean and max agree, the result is sigmoid(2 * MLP(descriptor))"),
        Case("one bright position", _channel_args(2, 8, 2, 4, 5, spike=True),
             "a bright spot changes the max-pooled descriptor much more than the average: both must feed the MLP"),
        Case("C = 16, r = 4", _channel_args(3, 16, 4, 6, 6),
             "x (B, C, H, W), w1 (C/r, C), w2 (C, C/r) -> weights (B, C)"),
    ],
    hints=[
        "Pool twice over the positions: avg = x.mean(dim=(2, 3)) and mx = x.amax(dim=(2, 3)), both (B, C).",
        "One MLP for both: mlp(v) = relu(v @ w1.T) @ w2.T (no biases, as in the paper's equation).",
        "Add the two MLP outputs, then one sigmoid: torch.sigmoid(mlp(avg) + mlp(mx)).",
    ],
    properties=[_in_unit_interval],
    mistakes=[
        Mistake(lambda x, w1, w2: torch.sigmoid(F.relu(x.mean((2, 3)) @ w1.T) @ w2.T), "max-pooled",
                "uses the average-pooled descriptor only (that is SE)",
                "only the average-pooled descriptor feeds the MLP (that is SE); CBAM adds the max-pooled one: "
                "sigmoid(mlp(avg) + mlp(max))."),
        Mistake(lambda x, w1, w2: torch.sigmoid(F.relu(x.mean((2, 3)) @ w1.T) @ w2.T)
                + torch.sigmoid(F.relu(x.amax((2, 3)) @ w1.T) @ w2.T), "(0, 1)", "one sigmoid per branch, then adds",
                "each branch has its own sigmoid and the two are added (so a weight can reach 2): add the two MLP "
                "outputs first, then apply one sigmoid."),
        Mistake(lambda x, w1, w2: torch.sigmoid(F.relu((x.mean((2, 3)) + x.amax((2, 3))) @ w1.T) @ w2.T),
                "values differ", "adds the descriptors before the MLP",
                "send each descriptor through the MLP on its own and add the two outputs, sigmoid(mlp(avg) + "
                "mlp(max)); the MLP is not linear, so adding the descriptors first is not the same."),
        Mistake(lambda x, w1, w2: torch.sigmoid(F.relu(x.amax((2, 3)) @ w1.T) @ w2.T), "values differ",
                "uses the max-pooled descriptor only",
                "only the max-pooled descriptor feeds the MLP; CBAM uses the average-pooled one too: "
                "sigmoid(mlp(avg) + mlp(max))."),
        Mistake(lambda x, w1, w2: torch.sigmoid(x.mean((2, 3)) @ w1.T @ w2.T + x.amax((2, 3)) @ w1.T @ w2.T),
                "values differ", "forgets the MLP's ReLU",
                "the shared MLP has a ReLU between its two layers: mlp(v) = torch.relu(v @ w1.T) @ w2.T."),
        Mistake(lambda x, w1, w2: x.max(dim=(2, 3)), "raised", "x.max over two dimensions",
                "x.max(dim=...) takes a single dimension (and returns values and indices); for the max over the "
                "positions use x.amax(dim=(2, 3))."),
        Mistake(lambda x, w1, w2: torch.sigmoid(F.relu(x.mean((2, 3)) @ w1) @ w2 + F.relu(x.amax((2, 3)) @ w1) @ w2),
                "raised", "forgets to transpose the weights",
                "w1 (C/r, C) and w2 (C, C/r) are stored like nn.Linear weights, (out, in): multiply by the "
                "transposes, v @ w1.T, then @ w2.T."),
    ],
))

def _mean_max(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)


spatial_map = register(Exercise(
    id="ch05.spatial_map",
    title="CBAM's spatial attention map",
    reference=ref.spatial_map,
    cases=[
        Case("a 1x1 kernel", lambda: (torch.randn(1, 3, 4, 4), torch.tensor([[[[1.0]], [[0.0]]]]), torch.zeros(1)),
             "a 1x1 kernel that keeps only the first pooled map gives sigmoid(mean over channels)"),
        Case("3x3 kernel, [mean, max] order", _spatial_args(2, 5, 6, 7, 3),
             "the two pooled maps are stacked in the order [mean, max] (paper, timm) along dim 1"),
        Case("the paper's 7x7 kernel", _spatial_args(2, 8, 9, 9, 7),
             "padding k // 2 keeps the map H x W; the output is (B, H, W)"),
    ],
    hints=[
        "Pool across the channels at every position: x.mean(dim=1, keepdim=True) and x.amax(dim=1, keepdim=True), "
        "each (B, 1, H, W).",
        "Stack them as [mean, max] with torch.cat(..., dim=1) -> (B, 2, H, W), then "
        "F.conv2d(pooled, weight, bias, padding=k // 2).",
        "Finish with torch.sigmoid and drop the channel axis: [:, 0] gives (B, H, W).",
    ],
    properties=[_spatial_in_unit_interval],
    mistakes=[
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1),
                                                       w, b, padding=w.shape[-1] // 2))[:, 0],
                "[mean, max]", "stacks [max, mean], the official code's order",
                "stack the pooled maps as [mean, max] (the paper's and timm's order), not [max, mean]."),
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1),
                                                       w, b))[:, 0],
                "shape", "forgets the padding",
                "without padding the k x k convolution shrinks the map: pass padding=k // 2."),
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1),
                                                       w, b, padding=w.shape[-1] // 2)),
                "expected shape", "keeps the channel axis",
                "drop the channel axis of the (B, 1, H, W) map: [:, 0] gives (B, H, W)."),
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(_mean_max(x), w, padding=w.shape[-1] // 2))[:, 0],
                "values differ", "forgets the convolution's bias",
                "the convolution's bias is left out: F.conv2d(pooled, weight, bias, padding=k // 2)."),
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(torch.cat([x.sum(1, keepdim=True), x.amax(1, keepdim=True)], 1),
                                                       w, b, padding=w.shape[-1] // 2))[:, 0],
                "values differ", "sums over the channels instead of averaging",
                "the first pooled map is the mean over the channels, x.mean(dim=1, keepdim=True), not their sum."),
        Mistake(lambda x, w, b: F.conv2d(_mean_max(x), w, b, padding=w.shape[-1] // 2)[:, 0], "(0, 1)",
                "forgets the sigmoid", "the map ends with torch.sigmoid, so each value lies in (0, 1)."),
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(_mean_max(x), w, b, padding=3))[:, 0], "shape",
                "pads by 3 whatever the kernel",
                "the padding that keeps the map H x W is k // 2 for a k x k kernel (weight.shape[-1] // 2), not a "
                "fixed 3."),
    ],
))


class _SpatialFirst(ref.CBAMBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        x = x * torch.sigmoid(self.conv(pooled))
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
        mc = torch.sigmoid(self.fc2(torch.relu(self.fc1(avg))) + self.fc2(torch.relu(self.fc1(mx))))
        return x * mc[:, :, None, None]


class _SpatialOnInput(ref.CBAMBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
        mc = torch.sigmoid(self.fc2(torch.relu(self.fc1(avg))) + self.fc2(torch.relu(self.fc1(mx))))
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # on the input
        return x * mc[:, :, None, None] * torch.sigmoid(self.conv(pooled))


class _ChannelOnly(ref.CBAMBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
        mc = torch.sigmoid(self.fc2(torch.relu(self.fc1(avg))) + self.fc2(torch.relu(self.fc1(mx))))
        return x * mc[:, :, None, None]


class _MaxMean(ref.CBAMBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
        x = x * torch.sigmoid(self.fc2(torch.relu(self.fc1(avg))) + self.fc2(torch.relu(self.fc1(mx))))[:, :, None, None]
        return x * torch.sigmoid(self.conv(torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], 1)))


class _TwoSigmoids(ref.CBAMBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
        mc = torch.sigmoid(self.fc2(torch.relu(self.fc1(avg)))) + torch.sigmoid(self.fc2(torch.relu(self.fc1(mx))))
        x = x * mc[:, :, None, None]
        return x * torch.sigmoid(self.conv(_mean_max(x)))


class _NoPadding(ref.CBAMBlock):
    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__(channels, reduction, kernel_size)
        self.conv = torch.nn.Conv2d(2, 1, kernel_size)


CBAMBlock = register(Exercise(
    id="ch05.CBAMBlock",
    title="The CBAM module",
    reference=ref.CBAMBlock,
    kind="module",
    cases=[
        Case("C = 8, r = 2, 3x3 kernel", lambda: ({"channels": 8, "reduction": 2, "kernel_size": 3},
                                                (torch.randn(2, 8, 5, 5),)),
             "channel attention first, then the spatial map computed on the channel-refined features"),
        Case("C = 16, r = 4, 7x7 kernel", lambda: ({"channels": 16, "reduction": 4, "kernel_size": 7},
                                                 (torch.randn(1, 16, 8, 6),)),
             "padding kernel_size // 2 keeps the map's size; the output has the input's shape"),
        Case("default kernel", lambda: ({"channels": 4, "reduction": 2}, (torch.randn(3, 4, 9, 9),)),
             "kernel_size defaults to 7, as in the paper"),
    ],
    hints=[
        "In __init__: self.fc1 = nn.Linear(channels, channels // reduction, bias=False), "
        "self.fc2 = nn.Linear(channels // reduction, channels, bias=False), "
        "self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2).",
        "Channel step: mc = sigmoid(mlp(avg) + mlp(max)) with mlp(v) = fc2(relu(fc1(v))); x = x * mc[:, :, None, None].",
        "Spatial step on that new x: pooled = cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1); "
        "return x * sigmoid(self.conv(pooled)).",
    ],
    mistakes=[
        Mistake(_SpatialFirst, "channel attention first", "spatial attention before channel attention",
                "channel attention comes first, then the spatial map computed on the channel-refined features."),
        Mistake(_SpatialOnInput, "values differ", "computes the spatial map on the input, not on the refined map"),
        Mistake(_NoPadding, "raised", "no padding: the map shrinks and no longer fits the features",
                "no padding: the map shrinks and no longer fits the features; build the convolution with "
                "padding=kernel_size // 2."),
        Mistake(_ChannelOnly, "values differ", "forgets the spatial step",
                "the spatial step is missing: after the channel step, pool [mean, max] across the channels and "
                "return x * torch.sigmoid(self.conv(pooled))."),
        Mistake(_MaxMean, "values differ", "stacks [max, mean]",
                "stack the pooled maps as [mean, max] (the paper's and timm's order), not [max, mean]."),
        Mistake(_TwoSigmoids, "values differ", "one sigmoid per branch of the channel step",
                "the channel step adds the two MLP outputs and applies one sigmoid: "
                "torch.sigmoid(mlp(avg) + mlp(max))."),
    ],
))


# -- cbam_order_gap ---------------------------------------------------------------------------------------
def _blob(h: int, w: int, i: int, j: int) -> torch.Tensor:
    """A 3 x 3 square of ones centred on (i, j) in an h x w map of zeros."""
    m = torch.zeros(h, w)
    m[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2] = 1.0
    return m


def _distractor_case(b: int, c: int, h: int, w: int):  # type: ignore[no-untyped-def]
    """Channel 0 holds a target square (the mask), channel 1 a brighter distractor square elsewhere; the channel
    MLP closes channel 1, and the spatial convolution sums [max] over a 3 x 3 window."""
    def make() -> tuple:
        x = torch.randn(b, c, h, w) * 0.1
        masks = torch.zeros(b, h, w, dtype=torch.bool)
        for n in range(b):
            ti, tj = int(torch.randint(1, h - 1, ())), int(torch.randint(1, w // 2 - 1, ()))
            di, dj = int(torch.randint(1, h - 1, ())), int(torch.randint(w // 2 + 2, w - 1, ()))
            x[n, 0] += 2.0 * _blob(h, w, ti, tj)          # the target
            x[n, 1] += 4.0 * _blob(h, w, di, dj)          # a brighter distractor, in another channel
            masks[n] = _blob(h, w, ti, tj).bool()
        w1 = torch.zeros(2, c)
        w1[0, 1] = 1.0                                     # the MLP reads channel 1's descriptors...
        w2 = torch.zeros(c, 2)
        w2[1, 0] = -8.0                                    # ...and closes that channel
        conv_w = torch.zeros(1, 2, 3, 3)
        conv_w[0, 1] = 0.2                                 # the map follows the local max over channels
        return x, w1, w2, conv_w, torch.zeros(1), masks
    return make


def _random_cbam_case(b: int, c: int, hidden: int, h: int, w: int, k: int, *, equal_gates: bool = False):  # type: ignore[no-untyped-def]
    def make() -> tuple:
        x = torch.randn(b, c, h, w)
        w1, w2 = torch.randn(hidden, c) * 0.5, torch.randn(c, hidden) * 0.5
        if equal_gates:
            w2 = torch.zeros(c, hidden)                    # every channel gate is sigmoid(0) = 0.5
        conv_w = torch.randn(1, 2, k, k) * 0.3
        conv_b = torch.zeros(1) if equal_gates else torch.randn(1)
        return x, w1, w2, conv_w, conv_b, torch.rand(b, h, w) < 0.4
    return make


def _order_properties(out: object, args: tuple) -> None:
    x, w1, w2, conv_w, conv_b, masks = args
    if not (isinstance(out, (tuple, list)) and len(out) == 3):
        return  # the structure check explains it
    values = []
    for v in out:
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return
        values.append(float(v))
    b = len(x)
    for i, name in enumerate(["score_channel_first", "score_spatial_first"]):
        v = values[i]
        if not 0.0 <= v <= 1.0 or abs(v * b - round(v * b)) > 1e-4:
            raise CheckFailure(f"output[{i}] ({name}) = {v:.4g} is not a pointing-game score, a fraction of the "
                               f"{b} images: count the images whose spatial map peaks inside the mask, divide by {b}.")
    if not (values[2] >= 0.0 and values[2] < float("inf")):
        raise CheckFailure(f"output[2] (gap) = {values[2]:.4g} must be a finite norm ratio, >= 0.")
    if torch.all(w2 == 0) and torch.all(conv_b == 0) and values[0] != values[1]:
        raise CheckFailure(f"here every channel gate is sigmoid(0) = 0.5 and the convolution has no bias, so the "
                           "channel step only halves the features and cannot move the spatial map's peak; yet the "
                           f"scores are {values[0]:.4g} and {values[1]:.4g}. Score each order's own spatial map, "
                           "found with argmax over the H * W positions (flatten(1).argmax(dim=1)).")


def _order_scores_same_map(x, w1, w2, conv_w, conv_b, masks):  # type: ignore[no-untyped-def]
    """Mistake: the spatial-first score uses the spatial map of the refined features (the paper's order)."""
    cf, _, gap = ref.cbam_order_gap(x, w1, w2, conv_w, conv_b, masks)
    return cf, cf, gap


def _order_gates(t, w1, w2):  # type: ignore[no-untyped-def]
    """The mistakes' shared channel step: CBAM's gates ``(B, C, 1, 1)`` for ``t`` ``(B, C, H, W)``."""
    def mlp(v):  # type: ignore[no-untyped-def]
        return F.relu(v @ w1.T) @ w2.T
    return torch.sigmoid(mlp(t.mean(dim=(2, 3))) + mlp(t.amax(dim=(2, 3))))[:, :, None, None]


def _order_spatial(t, conv_w, conv_b):  # type: ignore[no-untyped-def]
    """The mistakes' shared spatial step: CBAM's map ``(B, 1, H, W)`` for ``t`` ``(B, C, H, W)``."""
    pooled = torch.cat([t.mean(1, keepdim=True), t.amax(1, keepdim=True)], 1)
    return torch.sigmoid(F.conv2d(pooled, conv_w, conv_b, padding=conv_w.shape[-1] // 2))


def _order_swapped_on_refined(x, w1, w2, conv_w, conv_b, masks):  # type: ignore[no-untyped-def]
    """Mistake: the swapped order computes its spatial map on the channel-refined features too."""
    def gates(t):  # type: ignore[no-untyped-def]
        return _order_gates(t, w1, w2)

    def spatial(t):  # type: ignore[no-untyped-def]
        return _order_spatial(t, conv_w, conv_b)

    def pointing(m):  # type: ignore[no-untyped-def]
        peak = m.flatten(1).argmax(dim=1)
        return masks.flatten(1)[torch.arange(len(peak)), peak].float().mean().item()

    y = x * gates(x)
    map_cf = spatial(y)
    out_cf = y * map_cf
    z = x * map_cf
    out_sf = z * gates(z)
    return pointing(map_cf), pointing(map_cf), ((out_cf - out_sf).norm() / out_cf.norm()).item()


def _order_unravel_with_height(x, w1, w2, conv_w, conv_b, masks):  # type: ignore[no-untyped-def]
    """Mistake: the peak's row and column from the flat index with H instead of W."""
    h = x.shape[2]

    def gates(t):  # type: ignore[no-untyped-def]
        return _order_gates(t, w1, w2)

    def spatial(t):  # type: ignore[no-untyped-def]
        return _order_spatial(t, conv_w, conv_b)

    def pointing(m):  # type: ignore[no-untyped-def]
        peak = m.flatten(1).argmax(1)
        rows, cols = (peak // h).clamp(max=masks.shape[1] - 1), peak % h
        return masks[torch.arange(len(peak)), rows, cols].float().mean().item()

    y = x * gates(x)
    _, _, gap = ref.cbam_order_gap(x, w1, w2, conv_w, conv_b, masks)
    return pointing(spatial(y)), pointing(spatial(x)), gap


def _order_scores_swapped(x, w1, w2, conv_w, conv_b, masks):  # type: ignore[no-untyped-def]
    """Mistake: returns (score_spatial_first, score_channel_first, gap)."""
    cf, sf, gap = ref.cbam_order_gap(x, w1, w2, conv_w, conv_b, masks)
    return sf, cf, gap


def _order_gap_over_sf(x, w1, w2, conv_w, conv_b, masks):  # type: ignore[no-untyped-def]
    """Mistake: the gap divided by ||out_sf|| instead of ||out_cf||."""
    def gates(t):  # type: ignore[no-untyped-def]
        return _order_gates(t, w1, w2)

    def spatial(t):  # type: ignore[no-untyped-def]
        return _order_spatial(t, conv_w, conv_b)

    cf, sf, _ = ref.cbam_order_gap(x, w1, w2, conv_w, conv_b, masks)
    y = x * gates(x)
    out_cf = y * spatial(y)
    z = x * spatial(x)
    out_sf = z * gates(z)
    return cf, sf, ((out_cf - out_sf).norm() / out_sf.norm()).item()


def _order_absolute_gap(x, w1, w2, conv_w, conv_b, masks):  # type: ignore[no-untyped-def]
    """Mistake: the gap is ||out_cf - out_sf||, not divided by ||out_cf||."""
    cf, sf, gap = ref.cbam_order_gap(x, w1, w2, conv_w, conv_b, masks)
    y = x * torch.sigmoid(F.relu(x.mean((2, 3)) @ w1.T) @ w2.T + F.relu(x.amax((2, 3)) @ w1.T) @ w2.T)[:, :, None, None]
    pooled = torch.cat([y.mean(1, keepdim=True), y.amax(1, keepdim=True)], 1)
    out_cf = y * torch.sigmoid(F.conv2d(pooled, conv_w, conv_b, padding=conv_w.shape[-1] // 2))
    return cf, sf, gap * out_cf.norm().item()


cbam_order_gap = register(Exercise(
    id="ch05.cbam_order_gap",
    title="Does CBAM's order matter? Swap it and compare",
    reference=ref.cbam_order_gap,
    cases=[
        Case("a bright distractor in another channel", _distractor_case(6, 4, 7, 10),
             "channel first, the MLP closes the distractor's channel before the spatial map is computed, so the "
             "map peaks on the target; spatial first, the map sees the raw input, where the distractor is brightest"),
        Case("equal channel gates", _random_cbam_case(5, 6, 3, 8, 8, 3, equal_gates=True),
             "with every channel gate 0.5 and no convolution bias, both orders' maps peak at the same place"),
        Case("a random CBAM, 7x7 kernel", _random_cbam_case(5, 8, 2, 9, 11, 7),
             "x (B, C, H, W), w1 (C/r, C), w2 (C, C/r), conv_w (1, 2, k, k), conv_b (1,), masks (B, H, W) bool; "
             "returns (score_channel_first, score_spatial_first, gap)"),
    ],
    hints=[
        "Reuse your channel_attention and spatial_map (or write them inline). Paper's order: y = x * "
        "channel_attention(x, w1, w2)[:, :, None, None]; map_cf = spatial_map(y, conv_w, conv_b); "
        "out_cf = y * map_cf[:, None].",
        "Swapped order: map_sf = spatial_map(x, conv_w, conv_b); z = x * map_sf[:, None]; "
        "out_sf = z * channel_attention(z, w1, w2)[:, :, None, None]. "
        "The gap is ((out_cf - out_sf).norm() / out_cf.norm()).item().",
        "The pointing game: peak = m.flatten(1).argmax(dim=1) is each map's flat peak index; "
        "hits = masks.flatten(1)[torch.arange(B), peak]; the score is hits.float().mean().item(). "
        "Return (score of map_cf, score of map_sf, gap).",
    ],
    properties=[_order_properties],
    mistakes=[
        Mistake(_order_scores_same_map, "output[1] is", "scores the paper's map for both orders",
                "in the swapped order the spatial map is computed on the raw input x, before any channel gate."),
        Mistake(_order_swapped_on_refined, "output[1] is", "the swapped order's map on the refined features",
                "in the swapped order the spatial map is computed on the raw input x, before any channel gate: "
                "map_sf = spatial_map(x, ...), not the map of the channel-refined features."),
        Mistake(_order_unravel_with_height, "output[0] is", "finds the peak's row and column with H instead of W",
                "a flat index i over an H x W map is row i // W, column i % W (or index masks.flatten(1))."),
        Mistake(_order_absolute_gap, "output[2] is", "the gap is not divided by ||out_cf||",
                "the gap is relative: ||out_cf - out_sf|| / ||out_cf||."),
        Mistake(_order_scores_swapped, "output[0] is", "returns the two scores in the other order",
                "the order is (score of map_cf, score of map_sf, gap): the paper's order (channel first) first."),
        Mistake(_order_gap_over_sf, "output[2] is", "divides the gap by ||out_sf||",
                "the gap is measured against the paper's order: ||out_cf - out_sf|| / ||out_cf||."),
    ],
))
