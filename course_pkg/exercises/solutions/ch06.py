"""Reference solutions of chapter 6's exercises (shown by ``.solution()``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def count_patches(img_size: int, patch_size: int, in_chans: int = 3) -> tuple[int, int, int]:
    """``(number of patches, length of one flattened patch, sequence length with [CLS])``."""
    per_side = img_size // patch_size              # patches along one side (stride = patch size)
    num_patches = per_side * per_side              # the grid is per_side x per_side
    patch_dim = patch_size * patch_size * in_chans  # every pixel of the patch, every channel
    return num_patches, patch_dim, num_patches + 1  # + 1 for the [CLS] token


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping patches and flatten each one.

    ``(B, C, H, W) -> (B, N, C * P * P)``, N = (H / P) * (W / P); patches in row-major order (left to right,
    then top to bottom), each flattened channel first, then rows, then columns (the order of a Conv2d weight).
    """
    B, C, H, W = images.shape
    P = patch_size
    x = images.reshape(B, C, H // P, P, W // P, P)  # (B, C, gh, P, gw, P)
    x = x.permute(0, 2, 4, 1, 3, 5)                 # (B, gh, gw, C, P, P)
    return x.reshape(B, (H // P) * (W // P), C * P * P)  # (B, N, C*P*P)


def embed_patches(images: torch.Tensor, proj_weight: torch.Tensor, proj_bias: torch.Tensor,
                  cls_token: torch.Tensor, pos_embed: torch.Tensor) -> torch.Tensor:
    """Patch embedding, [CLS] token and position embeddings: the ViT's input sequence.

    Shapes: images ``(B, C, H, W)``, proj_weight ``(D, C, P, P)``, proj_bias ``(D,)``, cls_token ``(1, 1, D)``,
    pos_embed ``(1, 1 + N, D)`` -> tokens ``(B, 1 + N, D)``.
    """
    P = proj_weight.shape[-1]
    x = F.conv2d(images, proj_weight, proj_bias, stride=P)  # (B, D, gh, gw): one D-vector per patch
    x = x.flatten(2).transpose(1, 2)                         # (B, N, D), patches in row-major order
    cls = cls_token.expand(x.shape[0], -1, -1)               # (B, 1, D): the same [CLS] for every image
    x = torch.cat([cls, x], dim=1)                           # (B, 1 + N, D): [CLS] first
    return x + pos_embed                                     # every position, [CLS] included, gets its vector


class EncoderBlock(nn.Module):
    """A pre-norm Transformer encoder layer: ``x + MSA(LN(x))``, then ``x + MLP(LN(x))``. (B, N, D) -> (B, N, D).

    Self-contained (the grader runs it without course_pkg): the attention is chapter 2's multi-head
    self-attention written inline, with timm's parameter names ``attn.qkv`` and ``attn.proj``.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.ModuleDict({"qkv": nn.Linear(dim, 3 * dim), "proj": nn.Linear(dim, dim)})
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(dim, hidden), "fc2": nn.Linear(hidden, dim)})

    def attention(self, x):
        B, N, C = x.shape
        H = self.num_heads
        qkv = self.attn["qkv"](x).reshape(B, N, 3, H, C // H)  # (B, N, 3, H, hd): [q; k; v], heads side by side
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)        # each (B, H, N, hd)
        out = F.scaled_dot_product_attention(q, k, v)          # (B, H, N, hd): softmax(q k^T / sqrt(hd)) v
        out = out.transpose(1, 2).reshape(B, N, C)             # heads concatenated
        return self.attn["proj"](out)                          # heads mixed

    def forward(self, x):
        x = x + self.attention(self.norm1(x))                                # tokens exchange information
        x = x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x))))      # each token transformed alone
        return x


def train_attention_pool(tokens: torch.Tensor, labels: torch.Tensor, init: dict, steps: int,
                         lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Train an attention-pooling classifier with plain SGD from the given initial parameters.

    The model: ``weights = softmax(tokens @ query)`` over the N tokens, ``pooled = weights @ tokens``,
    ``logits = pooled @ head_w.T + head_b``; the loss is the cross-entropy. ``tokens (B, N, D)``,
    ``labels (B,)``, ``init = {"query": (D,), "head_w": (K, D), "head_b": (K,)}``.
    Returns the trained attention weights ``(B, N)`` on ``tokens`` and the loss of every step ``(steps,)``.
    """
    query = init["query"].clone().requires_grad_()          # copies: the caller's tensors stay as they are
    head_w = init["head_w"].clone().requires_grad_()
    head_b = init["head_b"].clone().requires_grad_()
    optimizer = torch.optim.SGD([query, head_w, head_b], lr=lr)

    def attend(t: torch.Tensor) -> torch.Tensor:            # (B, N, D) -> (B, N), rows sum to one
        return torch.softmax(t @ query, dim=-1)

    losses = []
    for _ in range(steps):
        pooled = (attend(tokens)[..., None] * tokens).sum(dim=1)    # (B, D): attention-weighted average
        loss = F.cross_entropy(pooled @ head_w.T + head_b, labels)
        optimizer.zero_grad()                                       # forget the previous step's gradients
        loss.backward()
        optimizer.step()
        losses.append(loss.item())                                  # the loss before this step's update
    with torch.no_grad():
        weights = attend(tokens)                                    # the trained attention
    return weights, torch.tensor(losses)
