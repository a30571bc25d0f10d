"""Chapter 6's planted mistakes: wrong answers that the exercises of :mod:`course_pkg.exercises.ch06` recognise.

Each is a plausible wrong answer to one exercise (a function with the exercise's signature, or an
``nn.Module`` class built like the answer); the exercise's :class:`~course_pkg.exercises.core.Mistake`
entries pair it with the words its failure must show and the advice for a learner whose answer behaves
the same way. The tests prove that every one of them fails its exercise with that feedback. The mistakes
that fit in a lambda stay inline in the chapter module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..solutions import ch06 as ref


# -- patchify ---------------------------------------------------------------------------------------------
def patchify_permuted(*perm: int):  # type: ignore[no-untyped-def]
    """Mistake: the right reshape with the axes permuted as ``perm`` (a wrong order of patches or pixels)."""
    def answer(x: torch.Tensor, p: int) -> torch.Tensor:
        B, C, H, W = x.shape
        return x.reshape(B, C, H // p, p, W // p, p).permute(*perm).reshape(B, -1, C * p * p)
    return answer


def patchify_square(x: torch.Tensor, p: int) -> torch.Tensor:
    """Mistake: assumes a square image (splits the width with H // P)."""
    B, C, H, W = x.shape
    return x.reshape(B, C, H // p, p, H // p, p).permute(0, 2, 4, 1, 3, 5).reshape(B, -1, C * p * p)


# -- embed_patches ----------------------------------------------------------------------------------------
def embed_without_positions(x, w, b, cls, pos):
    """Mistake: forgets the position embeddings."""
    t = F.conv2d(x, w, b, stride=w.shape[-1]).flatten(2).transpose(1, 2)
    return torch.cat([cls.expand(x.shape[0], -1, -1), t], dim=1)


def embed_cls_last(x, w, b, cls, pos):
    """Mistake: appends [CLS] at the end."""
    t = F.conv2d(x, w, b, stride=w.shape[-1]).flatten(2).transpose(1, 2)
    return torch.cat([t, cls.expand(x.shape[0], -1, -1)], dim=1) + pos


def embed_positions_before_cls(x, w, b, cls, pos):
    """Mistake: adds the positions to the patches only, not to [CLS]."""
    t = F.conv2d(x, w, b, stride=w.shape[-1]).flatten(2).transpose(1, 2) + pos[:, 1:]
    return torch.cat([cls.expand(x.shape[0], -1, -1), t], dim=1)


def embed_cls_not_expanded(x, w, b, cls, pos):
    """Mistake: does not expand [CLS] to the batch."""
    t = F.conv2d(x, w, b, stride=w.shape[-1]).flatten(2).transpose(1, 2)
    return torch.cat([cls, t], dim=1) + pos


def embed_stride_one(x, w, b, cls, pos):
    """Mistake: convolves with stride 1, so the patches overlap."""
    t = F.conv2d(x, w, b).flatten(2).transpose(1, 2)
    return torch.cat([cls.expand(x.shape[0], -1, -1), t], dim=1) + pos


def embed_no_transpose(x, w, b, cls, pos):
    """Mistake: keeps (B, D, N) without the transpose."""
    t = F.conv2d(x, w, b, stride=w.shape[-1]).flatten(2)
    return torch.cat([cls.expand(x.shape[0], -1, -1), t], dim=1) + pos


# -- EncoderBlock -----------------------------------------------------------------------------------------
class PostNormBlock(ref.EncoderBlock):
    """Mistake: the original Transformer's post-norm order (LayerNorm after the residual sum)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](x))))


class NoResidualBlock(ref.EncoderBlock):
    """Mistake: no skip connection around the attention."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(self.norm1(x))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x))))


class ReluBlock(ref.EncoderBlock):
    """Mistake: ReLU in the MLP instead of GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp["fc2"](torch.relu(self.mlp["fc1"](self.norm2(x))))


class TanhGeluBlock(ref.EncoderBlock):
    """Mistake: the tanh approximation of GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x)), approximate="tanh"))


class NoMlpResidualBlock(ref.EncoderBlock):
    """Mistake: no skip connection around the MLP."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x))))


class UnscaledBlock(ref.EncoderBlock):
    """Mistake: attention scores not divided by sqrt(head_dim)."""

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = self.attn["qkv"](x).reshape(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4).unbind(0)
        out = torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
        return self.attn["proj"](out.transpose(1, 2).reshape(B, N, C))


class DefaultEpsBlock(ref.EncoderBlock):
    """Mistake: nn.LayerNorm's default eps (1e-5) instead of timm's 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__(dim, num_heads, mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)


class RenamedBlock(nn.Module):
    """Mistake: other submodule names (the checker fills parameters by name)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


# -- train_attention_pool ---------------------------------------------------------------------------------
def train_no_zero_grad(tokens, labels, init, steps, lr):  # type: ignore[no-untyped-def]
    """Mistake: forgets optimizer.zero_grad(), so the gradients of every step add up."""
    query = init["query"].clone().requires_grad_()
    head_w = init["head_w"].clone().requires_grad_()
    head_b = init["head_b"].clone().requires_grad_()
    optimizer = torch.optim.SGD([query, head_w, head_b], lr=lr)
    losses = []
    for _ in range(steps):
        pooled = (torch.softmax(tokens @ query, dim=-1)[..., None] * tokens).sum(dim=1)
        loss = F.cross_entropy(pooled @ head_w.T + head_b, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        return torch.softmax(tokens @ query, dim=-1), torch.tensor(losses)


def train_weights_before(tokens, labels, init, steps, lr):  # type: ignore[no-untyped-def]
    """Mistake: returns the attention weights computed before the loop (the initial, uniform ones)."""
    _, losses = ref.train_attention_pool(tokens, labels, init, steps, lr)
    return torch.softmax(tokens @ init["query"], dim=-1), losses


def train_softmax_over_batch(tokens, labels, init, steps, lr):  # type: ignore[no-untyped-def]
    """Mistake: the softmax runs over the batch (dim 0) instead of the tokens."""
    query = init["query"].clone().requires_grad_()
    head_w = init["head_w"].clone().requires_grad_()
    head_b = init["head_b"].clone().requires_grad_()
    optimizer = torch.optim.SGD([query, head_w, head_b], lr=lr)
    losses = []
    for _ in range(steps):
        pooled = (torch.softmax(tokens @ query, dim=0)[..., None] * tokens).sum(dim=1)
        loss = F.cross_entropy(pooled @ head_w.T + head_b, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        return torch.softmax(tokens @ query, dim=0), torch.tensor(losses)


def train_no_step(tokens, labels, init, steps, lr):  # type: ignore[no-untyped-def]
    """Mistake: computes the gradients but never updates the parameters."""
    query = init["query"].clone().requires_grad_()
    head_w = init["head_w"].clone().requires_grad_()
    head_b = init["head_b"].clone().requires_grad_()
    losses = []
    for _ in range(steps):
        pooled = (torch.softmax(tokens @ query, dim=-1)[..., None] * tokens).sum(dim=1)
        loss = F.cross_entropy(pooled @ head_w.T + head_b, labels)
        loss.backward()
        losses.append(loss.item())
    with torch.no_grad():
        return torch.softmax(tokens @ query, dim=-1), torch.tensor(losses)
