"""Every reference solution agrees with an independent implementation.

``test_exercises.py`` proves that each reference passes its own cases, which holds by construction (the
expected outputs come from the reference). Here each exercise is checked against an implementation that
shares no code with the reference: torch's built-ins (``F.unfold``, ``F.scaled_dot_product_attention``,
``F.linear``...) or the package's own modules (``SqueezeExcitation``, ``CBAM``, ``vit.Block``,
``MultiHeadSelfAttention``), so a wrong reference fails here.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_pkg import attention, cbam, vit
from course_pkg.attention_maps import record_attention
from course_pkg.exercises import Exercise, all_exercises
from course_pkg.squeeze_excite import SqueezeExcitation


# -- chapter 1 -------------------------------------------------------------------------------------------
def _attention_pool(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple:
    out = F.scaled_dot_product_attention(q[None], k[None], v[None], scale=1.0)[0]
    return out, torch.softmax(torch.einsum("md,nd->mn", q, k), dim=-1)


# -- chapter 2 -------------------------------------------------------------------------------------------
def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Any = None) -> tuple:
    return attention.scaled_dot_product_attention(q, k, v, mask)


class _MHSA(attention.MultiHeadSelfAttention):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__(dim, num_heads)


# -- chapter 3 -------------------------------------------------------------------------------------------
def _patch_self_attention(p: torch.Tensor) -> tuple:
    return attention.scaled_dot_product_attention(p, p, p)


def _attention_entropy(maps: torch.Tensor) -> torch.Tensor:
    return torch.distributions.Categorical(probs=maps.flatten(1)).entropy()  # normalises the map itself


# -- chapter 4 -------------------------------------------------------------------------------------------
class _SE(SqueezeExcitation):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__(channels, reduction)


def _se_ablation(features: torch.Tensor, labels: torch.Tensor, params: dict) -> tuple:
    """The package's SqueezeExcitation with the case's weights, then pooling and the head; the ablation is a
    forward hook that replaces the gate's output with ones."""
    c, hidden = params["w1"].shape[1], params["w1"].shape[0]
    se = SqueezeExcitation(c, hidden_channels=hidden)
    with torch.no_grad():
        se.fc1.weight.copy_(params["w1"][:, :, None, None])
        se.fc1.bias.copy_(params["b1"])
        se.fc2.weight.copy_(params["w2"][:, :, None, None])
        se.fc2.bias.copy_(params["b2"])

    def accuracy() -> float:
        with torch.no_grad():
            logits = F.linear(F.adaptive_avg_pool2d(se(features), 1).flatten(1), params["head_w"], params["head_b"])
        return float(torch.eq(logits.max(dim=1).indices, labels).double().mean())

    normal = accuracy()
    handle = se.gate.register_forward_hook(lambda module, inputs, output: torch.ones_like(output))
    try:
        ablated = accuracy()
    finally:
        handle.remove()
    return normal, ablated


# -- chapter 5 -------------------------------------------------------------------------------------------
def _channel_attention(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    def mlp(v: torch.Tensor) -> torch.Tensor:
        return F.linear(F.relu(F.linear(v, w1)), w2)
    avg = F.adaptive_avg_pool2d(x, 1).flatten(1)
    mx = F.adaptive_max_pool2d(x, 1).flatten(1)
    return torch.sigmoid(mlp(avg) + mlp(mx))


def _spatial_map(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    pooled = torch.stack([x.mean(1), x.max(1).values], dim=1)
    return torch.sigmoid(F.conv2d(pooled, weight, bias, padding="same"))[:, 0]


class _CBAM(nn.Module):
    """The exercise's parameter names and shapes; the computation is the package's CBAM."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction, bias=False)
        self.fc2 = nn.Linear(channels // reduction, channels, bias=False)
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        self.args = (channels, reduction, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = cbam.CBAM(*self.args, mlp_bias=False, spatial_norm=False)
        with torch.no_grad():
            m.channel.fc1.weight.copy_(self.fc1.weight[:, :, None, None])
            m.channel.fc2.weight.copy_(self.fc2.weight[:, :, None, None])
            m.spatial.conv.weight.copy_(self.conv.weight)
            m.spatial.conv.bias.copy_(self.conv.bias)
        return m.eval()(x)


def _cbam_order_gap(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, conv_w: torch.Tensor,
                    conv_b: torch.Tensor, masks: torch.Tensor) -> tuple:
    """The package's CBAM parts (paper variant: no MLP bias, no BatchNorm), applied in both orders."""
    k = conv_w.shape[-1]
    m = cbam.CBAM(x.shape[1], kernel_size=k, hidden_channels=w1.shape[0], mlp_bias=False,
                  spatial_norm=False).eval()
    with torch.no_grad():
        m.channel.fc1.weight.copy_(w1[:, :, None, None])
        m.channel.fc2.weight.copy_(w2[:, :, None, None])
        m.spatial.conv.weight.copy_(conv_w)
        m.spatial.conv.bias.copy_(conv_b)
        with record_attention(m.spatial) as rec:
            out_cf = m.spatial(m.channel(x))
        map_cf = rec[""]
        with record_attention(m.spatial) as rec:
            out_sf = m.channel(m.spatial(x))
        map_sf = rec[""]

    def score(maps: torch.Tensor) -> float:
        hits = 0
        for b in range(len(maps)):
            i, j = torch.unravel_index(maps[b].argmax(), maps[b].shape)
            hits += bool(masks[b, i, j])
        return hits / len(maps)

    return score(map_cf), score(map_sf), float(torch.linalg.vector_norm(out_cf - out_sf) / torch.linalg.vector_norm(out_cf))


# -- chapter 6 -------------------------------------------------------------------------------------------
def _count_patches(img_size: int, patch_size: int, in_chans: int = 3) -> tuple:
    per_side = len(range(0, img_size - patch_size + 1, patch_size))
    return per_side ** 2, in_chans * patch_size ** 2, per_side ** 2 + 1


def _patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    return F.unfold(images, patch_size, stride=patch_size).transpose(1, 2)


def _embed_patches(images: torch.Tensor, w: torch.Tensor, b: torch.Tensor, cls: torch.Tensor,
                   pos: torch.Tensor) -> torch.Tensor:
    tokens = F.linear(_patchify(images, w.shape[-1]), w.flatten(1), b)
    return torch.cat([cls.expand(images.shape[0], -1, -1), tokens], dim=1) + pos


class _Block(vit.Block):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__(dim, num_heads, mlp_ratio)


def _train_attention_pool(tokens: torch.Tensor, labels: torch.Tensor, init: dict, steps: int, lr: float) -> tuple:
    """nn.Linear layers holding the initial values, and a hand-written SGD update."""
    d, k = tokens.shape[-1], init["head_w"].shape[0]
    score, head = nn.Linear(d, 1, bias=False), nn.Linear(d, k)
    with torch.no_grad():
        score.weight.copy_(init["query"][None])
        head.weight.copy_(init["head_w"])
        head.bias.copy_(init["head_b"])
    params = [score.weight, head.weight, head.bias]
    losses = torch.empty(steps)
    for step in range(steps):
        weights = score(tokens).squeeze(-1).softmax(dim=1)
        loss = F.cross_entropy(head(torch.bmm(weights[:, None], tokens)[:, 0]), labels)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)
        losses[step] = loss.detach()
    with torch.no_grad():
        return score(tokens).squeeze(-1).softmax(dim=1), losses


INDEPENDENT: dict[str, Callable[..., Any]] = {
    "ch01.softmax_weights": lambda s: torch.softmax(s, dim=-1),
    "ch01.weighted_average": lambda w, v: torch.einsum("...n,nd->...d", w, v),
    "ch01.attention_pool": _attention_pool,
    "ch02.scaled_dot_product_attention": _sdpa,
    "ch02.split_heads": lambda x, h: torch.stack(x.chunk(h, dim=-1), dim=1),
    "ch02.merge_heads": lambda x: torch.cat(x.unbind(1), dim=-1),
    "ch02.MultiHeadSelfAttention": _MHSA,
    "ch03.spatial_weighting": lambda f, m: torch.einsum("bchw,bhw->bchw", f, m),
    "ch03.channel_weighting": lambda f, w: torch.einsum("bchw,bc->bchw", f, w),
    "ch03.patch_self_attention": _patch_self_attention,
    "ch03.attention_entropy": _attention_entropy,
    "ch04.squeeze": lambda x: F.adaptive_avg_pool2d(x, 1).flatten(1),
    "ch04.excitation": lambda z, w1, b1, w2, b2: torch.sigmoid(F.linear(F.relu(F.linear(z, w1, b1)), w2, b2)),
    "ch04.SEBlock": _SE,
    "ch04.se_ablation": _se_ablation,
    "ch05.channel_attention": _channel_attention,
    "ch05.spatial_map": _spatial_map,
    "ch05.CBAMBlock": _CBAM,
    "ch05.cbam_order_gap": _cbam_order_gap,
    "ch06.count_patches": _count_patches,
    "ch06.patchify": _patchify,
    "ch06.embed_patches": _embed_patches,
    "ch06.EncoderBlock": _Block,
    "ch06.train_attention_pool": _train_attention_pool,
}

ALL = all_exercises()


def test_every_exercise_has_an_independent_implementation() -> None:
    assert sorted(INDEPENDENT) == sorted(ex.id for ex in ALL)


@pytest.mark.parametrize("ex", ALL, ids=[ex.id for ex in ALL])
def test_the_reference_agrees_with_an_independent_implementation(ex: Exercise) -> None:
    result = ex.test(INDEPENDENT[ex.id])
    assert result.passed, result.summary()


def test_a_wrong_reference_would_be_caught() -> None:
    """The comparison above can fail: an exercise whose reference forgets the softmax's max shift on
    a stable case still passes its own cases but not against torch.softmax."""
    softmax = next(ex for ex in ALL if ex.id == "ch01.softmax_weights")
    wrong = Exercise(softmax.id, softmax.title, lambda s: torch.exp(s) / torch.exp(s).sum(-1, keepdim=True),
                     softmax.cases)
    assert wrong.test(wrong.reference).passed  # a reference always passes its own cases...
    assert not wrong.test(INDEPENDENT[softmax.id]).passed  # ...but not against the independent one
