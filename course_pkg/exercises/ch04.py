"""Chapter 4 exercises: Squeeze-and-Excitation, one step at a time, then the whole block.

1. ``squeeze``: global average pooling, ``(B, C, H, W) -> (B, C)``.
2. ``excitation``: FC -> ReLU -> FC -> sigmoid, one weight in (0, 1) per channel.
3. ``SEBlock``: the module, with ``self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)`` and
   ``self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)`` (with bias): 1x1 convolutions on
   the squeezed ``(B, C, 1, 1)`` map, exactly like the chapter's ``course_pkg.SqueezeExcitation`` (a 1x1
   convolution on a 1 x 1 map is a fully connected layer; this layout loads torchvision's and timm's SE weights).
4. ``se_ablation``: an ablation: a tiny SE classifier's accuracy with its gates, and with every gate set to 1.
"""

from __future__ import annotations

import torch
from torch import nn

from .core import Case, CheckFailure, Exercise, Mistake, check_in_unit_interval
from .registry import register
from .solutions import ch04 as ref


def _in_unit_interval(out: object, args: tuple) -> None:
    check_in_unit_interval(out, "each channel weight", "End with a sigmoid.")


def _excitation_args(c: int, hidden: int, batch: int, negative: bool = False):  # type: ignore[no-untyped-def]
    def make() -> tuple:
        z = torch.rand(batch, c) if negative else torch.randn(batch, c)
        w1 = torch.randn(hidden, c)
        b1 = torch.randn(hidden) - (3.0 if negative else 0.0)   # negative: most hidden units below zero
        return z, w1, b1, torch.randn(c, hidden), torch.randn(c)
    return make


squeeze = register(Exercise(
    id="ch04.squeeze",
    title="Squeeze: global average pooling",
    reference=ref.squeeze,
    cases=[
        Case("constant channels", lambda: (torch.arange(3.0).view(1, 3, 1, 1).expand(1, 3, 4, 4).clone(),),
             "a channel that is constant squeezes to that constant"),
        Case("one bright pixel", lambda: (torch.zeros(2, 3, 4, 5).index_put_((torch.tensor([0]), torch.tensor([1]),
                                          torch.tensor([2]), torch.tensor([3])), torch.tensor(20.0)),),
             "the squeeze averages over all H x W positions: one bright pixel of 20 in a 4 x 5 map gives 1"),
        Case("a batch of maps", lambda: (torch.randn(4, 6, 7, 3),),
             "(B, C, H, W) -> (B, C): average over height and width, keep batch and channels"),
    ],
    hints=[
        "Each channel of each image becomes one number: the mean of its H x W values.",
        "x.mean(dim=(2, 3)) averages over the two spatial axes.",
    ],
    mistakes=[
        Mistake(lambda x: x.amax(dim=(2, 3)), "averages over all H x W", "max pooling",
                "the squeeze is an average over the H x W positions (x.mean(dim=(2, 3))), not a max."),
        Mistake(lambda x: x.mean(dim=1), "shape", "averages over the channels",
                "x.mean(dim=1) averages over the channels; the squeeze averages over the positions: "
                "x.mean(dim=(2, 3)), (B, C, H, W) -> (B, C)."),
        Mistake(lambda x: x.mean(dim=(2, 3), keepdim=True), "expected shape", "keeps the 1 x 1 axes",
                "drop the 1 x 1 axes: x.mean(dim=(2, 3)) without keepdim gives (B, C)."),
        Mistake(lambda x: x.sum(dim=(2, 3)), "averages over all H x W", "sums instead of averaging",
                "the squeeze is an average, not a sum: divide by H * W, or use x.mean(dim=(2, 3))."),
        Mistake(lambda x: x.mean(dim=(1, 2)), "shape", "averages over the wrong axes",
                "average over the two spatial axes, height and width: dim=(2, 3), so (B, C, H, W) -> (B, C)."),
        Mistake(lambda x: x.mean(dim=-1), "shape", "averages over the width only",
                "average over height and width together: dim=(2, 3), so (B, C, H, W) -> (B, C)."),
        Mistake(lambda x: x.mean(dim=(2, 3), keepdim=True).squeeze(), "shape", "squeeze() drops the batch axis",
                ".squeeze() drops every axis of size 1, the batch axis of a single image included: use "
                "x.mean(dim=(2, 3)), or squeeze only dims (2, 3)."),
    ],
))

excitation = register(Exercise(
    id="ch04.excitation",
    title="Excitation: from a descriptor to channel weights",
    reference=ref.excitation,
    cases=[
        Case("all-zero weights", lambda: (torch.randn(1, 4), torch.zeros(2, 4), torch.zeros(2), torch.zeros(4, 2),
                                          torch.zeros(4)), "with all parameters zero every weight is sigmoid(0) = 0.5"),
        Case("the ReLU matters", _excitation_args(8, 4, 2, negative=True),
             "hidden units below zero must be cut to zero by the ReLU between the two layers"),
        Case("C = 16, r = 4, a batch of 3", _excitation_args(16, 4, 3),
             "z (B, C), w1 (C/r, C), w2 (C, C/r) -> (B, C); like nn.Linear, multiply by the transposed weight"),
    ],
    hints=[
        "Two fully connected layers: h = relu(z @ w1.T + b1), then s = h @ w2.T + b2.",
        "The weights are sigmoid(s): one number in (0, 1) per channel.",
        "w1 has shape (C/r, C) like an nn.Linear(C, C/r) weight, so the product is z @ w1.T.",
    ],
    properties=[_in_unit_interval],
    mistakes=[
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid((z @ w1.T + b1) @ w2.T + b2), "ReLU", "forgets the ReLU",
                "there is no ReLU between the two layers: h = torch.relu(z @ w1.T + b1)."),
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T), "values differ",
                "forgets the second bias b2", "the second layer's bias b2 is missing: s = h @ w2.T + b2."),
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.relu(z @ w1.T) @ w2.T + b2), "values differ",
                "forgets the first bias b1", "the first layer's bias b1 is missing: h = torch.relu(z @ w1.T + b1)."),
        Mistake(lambda z, w1, b1, w2, b2: torch.relu(z @ w1.T + b1) @ w2.T + b2, "(0, 1)", "forgets the sigmoid",
                "end with torch.sigmoid: each channel weight must lie in (0, 1)."),
        Mistake(lambda z, w1, b1, w2, b2: torch.softmax(torch.relu(z @ w1.T + b1) @ w2.T + b2, -1), "values differ",
                "a softmax makes the channels compete; SE uses independent sigmoids"),
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.relu(z @ w1 + b1) @ w2 + b2), "raised",
                "forgets to transpose the weights",
                "the weights are stored like nn.Linear's, (out, in): multiply by the transposes, z @ w1.T and "
                "h @ w2.T."),
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.relu(torch.relu(z @ w1.T + b1) @ w2.T + b2)),
                "values differ", "an extra ReLU after the second layer",
                "there is a ReLU after the second layer, so no weight can go below sigmoid(0) = 0.5; only the "
                "hidden layer has a ReLU: torch.sigmoid(h @ w2.T + b2)."),
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.sigmoid(z @ w1.T + b1) @ w2.T + b2), "values differ",
                "a sigmoid instead of the ReLU between the layers",
                "the hidden layer's activation is a ReLU, not a sigmoid: h = torch.relu(z @ w1.T + b1)."),
    ],
))


class _SEMaxPool(ref.SEBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.amax(dim=(2, 3), keepdim=True)))))


class _SEWeightsOnly(ref.SEBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))


class _SENoSigmoid(ref.SEBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))


class _SENoRelu(ref.SEBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(self.fc1(x.mean(dim=(2, 3), keepdim=True))))


class _SEWideBottleneck(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels * reduction, kernel_size=1)
        self.fc2 = nn.Conv2d(channels * reduction, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))


class _SELinear(nn.Module):
    """nn.Linear layers: the same function, but the parameters do not have the 1x1 convolutions' shapes."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * w[:, :, None, None]


SEBlock = register(Exercise(
    id="ch04.SEBlock",
    title="The Squeeze-and-Excitation block as a module",
    reference=ref.SEBlock,
    kind="module",
    cases=[
        Case("C = 8, r = 2", lambda: ({"channels": 8, "reduction": 2}, (torch.randn(2, 8, 5, 5),)),
             "squeeze -> fc1 -> ReLU -> fc2 -> sigmoid -> scale; the output has the input's shape"),
        Case("C = 16, r = 4, non-square map", lambda: ({"channels": 16, "reduction": 4}, (torch.randn(1, 16, 3, 7),)),
             "the bottleneck has channels // reduction units"),
        Case("r = 1", lambda: ({"channels": 6, "reduction": 1}, (torch.randn(3, 6, 4, 4) * 3,)),
             "reduction 1 keeps the width; the block still re-weights each channel by a number in (0, 1)"),
    ],
    hints=[
        "In __init__: self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1) and "
        "self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1), as in the chapter's module.",
        "In forward: s = x.mean(dim=(2, 3), keepdim=True) has shape (B, C, 1, 1), so the 1x1 convolutions apply "
        "directly: w = torch.sigmoid(self.fc2(torch.relu(self.fc1(s)))), also (B, C, 1, 1).",
        "Scale: return x * w, the input with each channel multiplied by its weight (w broadcasts over H and W).",
    ],
    mistakes=[
        Mistake(_SEMaxPool, "values differ", "squeezes with a max instead of a mean",
                "the squeeze is an average over the positions (x.mean(dim=(2, 3), keepdim=True)), not a max."),
        Mistake(_SEWeightsOnly, "expected shape", "returns the weights instead of the scaled map",
                "return the input scaled by the weights, x * w, not the weights themselves."),
        Mistake(_SEWideBottleneck, "wrong shapes", "multiplies by the reduction instead of dividing",
                "the bottleneck has channels // reduction units: it is narrower than the input."),
        Mistake(_SELinear, "wrong shapes", "nn.Linear layers instead of 1x1 convolutions",
                "build fc1 and fc2 as nn.Conv2d(..., kernel_size=1), as in the chapter's SqueezeExcitation "
                "(their weights have shape (out, in, 1, 1)); squeeze with keepdim=True so they apply directly."),
        Mistake(_SENoSigmoid, "values differ", "forgets the sigmoid",
                "the channel weights end with a sigmoid, each in (0, 1): "
                "w = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))."),
        Mistake(_SENoRelu, "values differ", "forgets the ReLU",
                "there is a ReLU between fc1 and fc2: self.fc2(torch.relu(self.fc1(s)))."),
    ],
))


# -- se_ablation ------------------------------------------------------------------------------------------
def _se_classifier(c: int, b: int, hidden: int, k: int, *, distractor: bool = False, open_gates: bool = False):  # type: ignore[no-untyped-def]
    """A case: features, labels and the parameters of a tiny SE classifier.

    ``distractor``: channel 0 carries the label, channel 1 loud noise, the head reads both and the SE gate
    (hand-set, as training would) closes channel 1; a hidden unit that only the ReLU keeps silent would
    open it. ``open_gates``: every gate is sigmoid(10), about 1."""
    def make() -> tuple:
        labels = torch.randint(0, k, (b,))
        x = torch.randn(b, c, 4, 4) * 0.5
        params = {"w1": torch.randn(hidden, c) * 0.3, "b1": torch.zeros(hidden), "w2": torch.randn(c, hidden) * 0.3,
                  "b2": torch.zeros(c), "head_w": torch.randn(k, c), "head_b": torch.randn(k) * 0.5}
        if distractor:
            x[:, 0] += (labels.float() * 2 - 1)[:, None, None]        # the signal: +1 or -1
            x[:, 1] += 3 * torch.randn(b)[:, None, None]                # loud noise
            params["head_w"] = torch.zeros(k, c)
            params["head_w"][1, :2] = 1.0                               # class 1 when channels 0 + 1 are high
            params["head_w"][0, :2] = -1.0
            params["head_b"] = torch.tensor([0.2, -0.2])
            params["b2"] = torch.tensor([4.0, -6.0] + [0.0] * (c - 2))  # keep channel 0, close channel 1
            params["w1"][0] = 0.0                                       # hidden unit 0 is always -5, which the
            params["b1"][0] = -5.0                                      # ReLU cuts to 0; without the ReLU it
            params["w2"][1, 0] = -2.0                                   # would open channel 1 (the noise)
        if open_gates:
            params["w2"] = torch.zeros(c, hidden)
            params["b2"] = torch.full((c,), 10.0)
        return x, labels, params
    return make


def _no_sigmoid(features: torch.Tensor, labels: torch.Tensor, params: dict) -> tuple[float, float]:
    """Mistake: the gates are the excitation's raw outputs, without the sigmoid."""
    z = features.mean(dim=(2, 3))
    gates = torch.relu(z @ params["w1"].T + params["b1"]) @ params["w2"].T + params["b2"]

    def accuracy(g: torch.Tensor) -> float:
        logits = (features * g[:, :, None, None]).mean(dim=(2, 3)) @ params["head_w"].T + params["head_b"]
        return (logits.argmax(dim=1) == labels).sum().item() / len(labels)
    return accuracy(gates), accuracy(torch.ones_like(gates))


def _ablation_accuracy(features: torch.Tensor, labels: torch.Tensor, params: dict, g: torch.Tensor) -> float:
    logits = (features * g[:, :, None, None]).mean(dim=(2, 3)) @ params["head_w"].T + params["head_b"]
    return (logits.argmax(dim=1) == labels).sum().item() / len(labels)


def _ablate_with(replace):  # type: ignore[no-untyped-def]
    """Mistake: the ablation replaces each gate by ``replace(gates)`` instead of by 1."""
    def answer(features: torch.Tensor, labels: torch.Tensor, params: dict) -> tuple[float, float]:
        z = features.mean(dim=(2, 3))
        gates = torch.sigmoid(torch.relu(z @ params["w1"].T + params["b1"]) @ params["w2"].T + params["b2"])
        return (_ablation_accuracy(features, labels, params, gates),
                _ablation_accuracy(features, labels, params, replace(gates)))
    return answer


def _no_relu_gates(features: torch.Tensor, labels: torch.Tensor, params: dict) -> tuple[float, float]:
    """Mistake: the gates without the ReLU between the two layers."""
    z = features.mean(dim=(2, 3))
    gates = torch.sigmoid((z @ params["w1"].T + params["b1"]) @ params["w2"].T + params["b2"])
    return (_ablation_accuracy(features, labels, params, gates),
            _ablation_accuracy(features, labels, params, torch.ones_like(gates)))


def _accuracies(out: object, args: tuple) -> None:
    features, labels, params = args
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        return  # the structure check explains it
    b = len(labels)
    values = []
    for i, v in enumerate(out):
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return
        if not 0.0 <= v <= 1.0:
            raise CheckFailure(f"output[{i}] = {v:.4g} is not an accuracy in [0, 1]: divide the number of correct "
                               f"predictions by the number of images ({b}).")
        if abs(v * b - round(v * b)) > 1e-4:
            raise CheckFailure(f"output[{i}] = {v:.4g} is not a whole number of images out of {b}: the prediction "
                               "is the class with the largest logit (logits.argmax(dim=1)), compared with labels.")
        values.append(float(v))
    gates_open = torch.all(params["b2"] >= 10) and torch.all(params["w2"] == 0)
    if gates_open and abs(values[0] - values[1]) > 1e-6:
        raise CheckFailure(f"every gate here is sigmoid(10) = 0.99995, so setting the gates to 1 changes nothing, "
                           f"yet the accuracies are {values[0]:.4g} and {values[1]:.4g}: the ablation replaces each "
                           "gate by 1 (the block passes the features unchanged), not by 0 or by 0.5.")


se_ablation = register(Exercise(
    id="ch04.se_ablation",
    title="An ablation: what does the SE gate do for the classifier?",
    reference=ref.se_ablation,
    cases=[
        Case("SE closes a noisy channel", _se_classifier(4, 32, 2, 2, distractor=True),
             "the gates keep channel 0 (the signal) and close channel 1 (noise); with every gate replaced by 1 "
             "(the block passes the features unchanged) the head hears the noise too"),
        Case("gates wide open", _se_classifier(6, 24, 3, 3, open_gates=True),
             "every gate is about 1: switching SE off changes nothing"),
        Case("an input-dependent gate", _se_classifier(8, 40, 4, 3),
             "features (B, C, H, W), labels (B,), params w1 (C/r, C), b1, w2 (C, C/r), b2, head_w (K, C), head_b (K,)"),
    ],
    hints=[
        "Compute the gates once, as in the excitation exercise: z = features.mean(dim=(2, 3)), then "
        "gates = sigmoid(relu(z @ w1.T + b1) @ w2.T + b2), shape (B, C).",
        "Write one helper accuracy(gates): scale the features by gates[:, :, None, None], average over H and W, "
        "apply the head (@ head_w.T + head_b), take argmax(dim=1) and compare with labels; the fraction is "
        "(pred == labels).float().mean().item().",
        "Return (accuracy(gates), accuracy(torch.ones_like(gates))): the ablation replaces every gate by 1.",
    ],
    properties=[_accuracies],
    mistakes=[
        Mistake(lambda x, y, p: (ref.se_ablation(x, y, p)[0],
                                 ((p["head_b"].expand(len(y), -1)).argmax(1) == y).float().mean().item()),
                "not by 0", "switches SE off by setting the gates to 0",
                "a gate of 0 silences its channel; the ablation removes the gate: replace every gate by 1."),
        Mistake(lambda x, y, p: tuple(v * len(y) for v in ref.se_ablation(x, y, p)), "divide the number of correct",
                "counts the correct predictions instead of the fraction"),
        Mistake(lambda x, y, p: tuple(reversed(ref.se_ablation(x, y, p))), "output[0] is",
                "returns (ablated, with SE)", "the order is (accuracy with SE, accuracy with the gates set to 1)."),
        Mistake(_no_sigmoid, "output[0] is", "forgets the sigmoid (gates outside (0, 1))",
                "the gates are sigmoid(...) of the excitation, each in (0, 1), as in the SE block."),
        Mistake(_ablate_with(lambda g: torch.full_like(g, 0.5)), "output[1] is", "sets the gates to 0.5",
                "a gate of 0.5 halves every channel, it does not switch SE off; the ablation removes the gate: "
                "replace every gate by 1 (torch.ones_like(gates))."),
        Mistake(_ablate_with(lambda g: g), "", "uses the same gates twice",
                "both numbers are the same accuracy twice: the second one uses gates all set to 1 "
                "(torch.ones_like(gates)), the block switched off."),
        Mistake(_no_relu_gates, "", "forgets the ReLU in the gates",
                "the gates are sigmoid(relu(z @ w1.T + b1) @ w2.T + b2): the ReLU between the two layers is "
                "missing."),
    ],
))
