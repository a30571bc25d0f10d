"""The Vision Transformer (Dosovitskiy et al., 2021), weight-compatible with timm and torchvision.

An image is cut into non-overlapping patches, each patch is projected to a token, a learnable [CLS] token is
prepended, learnable position embeddings are added, and a stack of pre-norm Transformer blocks mixes the
tokens with multi-head self-attention. The classifier reads the final [CLS] token (``global_pool="token"``) or
the mean of the patch tokens (``global_pool="avg"``).

Parameter names and ``state_dict`` keys are timm's (``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.{i}.norm1``, ``blocks.{i}.attn.qkv``, ``blocks.{i}.attn.proj``, ``blocks.{i}.norm2``,
``blocks.{i}.mlp.fc1``, ``blocks.{i}.mlp.fc2``, ``norm`` or ``fc_norm``, ``head``), so a timm checkpoint
loads with ``strict=True``; :func:`from_timm` and :func:`from_torchvision` convert the reference models.

Attention rollout (Abnar & Zuidema, 2020) turns the per-layer attention maps into one map of how much each
output token draws on each input token: :func:`attention_rollout`, :func:`cls_rollout_map`.

Shapes: B batch, C channels, H x W image, P patch size, (gh, gw) patch grid, N = 1 + gh * gw tokens,
D embedding width, nh heads.
"""

from __future__ import annotations

import math
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
import torch.nn as nn

from .attention import MultiHeadSelfAttention

__all__ = [
    "Block",
    "Mlp",
    "PatchEmbed",
    "PretrainedUnavailableError",
    "VisionTransformer",
    "attention_rollout",
    "cls_attention_map",
    "cls_rollout_map",
    "from_timm",
    "from_torchvision",
    "load_pretrained_timm",
    "vit_base",
    "vit_huge",
    "vit_large",
    "vit_small",
    "vit_tiny",
]

Size2 = Union[int, tuple[int, int]]
LN_EPS = 1e-6  # timm's and torchvision's ViT LayerNorm eps; PyTorch's default 1e-5 moves logits by ~5e-3


def _pair(value: Size2, name: str) -> tuple[int, int]:
    """``16 -> (16, 16)``; a pair passes through. Rejects anything that is not a positive int or int pair."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"{name}={value!r} must be a positive int or a pair of positive ints")
    return pair  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------
class PatchEmbed(nn.Module):
    """Cut an image into P x P patches and project each one to a D-dim token: (B, C, H, W) -> (B, gh*gw, D).

    A Conv2d with kernel = stride = P is exactly "flatten each patch and multiply by a learned matrix E"
    (its weight is E reshaped to (D, C, P, P)); einops writes the flattening as
    ``'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'``.
    """

    def __init__(self, img_size: Size2 = 224, patch_size: Size2 = 16, in_chans: int = 3,
                 embed_dim: int = 768):
        super().__init__()
        self.img_size = _pair(img_size, "img_size")
        self.patch_size = _pair(patch_size, "patch_size")
        for side, (i, p) in zip(("height", "width"), zip(self.img_size, self.patch_size)):
            if i % p:
                raise ValueError(f"img_size={img_size!r} is not divisible by patch_size={patch_size!r} "
                                 f"(image {side} {i} % patch {p} = {i % p}); "
                                 f"use a size that is a multiple of {p}")
        self.in_chans = in_chans
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected an image batch of shape (B, C, H, W), got a {x.ndim}-D tensor of "
                             f"shape {tuple(x.shape)}; add a batch dimension with x.unsqueeze(0) for one "
                             "image")
        _, c, h, w = x.shape
        if c != self.in_chans:
            raise ValueError(f"input has {c} channels but the model was built with in_chans={self.in_chans}")
        if (h, w) != self.img_size:
            raise ValueError(f"input size {h}x{w} does not match the model's img_size={self.img_size[0]}x"
                             f"{self.img_size[1]}; resize the image (the position embeddings are per patch)")
        x = self.proj(x)  # (B, D, gh, gw)
        return x.flatten(2).transpose(1, 2)  # (B, gh*gw, D)


class Mlp(nn.Module):
    """The Transformer's position-wise MLP: Linear -> exact GELU -> Linear, (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()  # exact erf GELU, as in timm and torchvision (the tanh one moves logits ~7e-4)
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))  # (B, N, D)


class Block(nn.Module):
    """One pre-norm encoder layer: x + MSA(LN(x)), then x + MLP(LN(x)); (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = MultiHeadSelfAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                           proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Returns the new tokens (B, N, D), plus the attention weights (B, nh, N, N) on request."""
        if return_attention:
            y, weights = self.attn(self.norm1(x), return_attention=True)  # (B, N, D), (B, nh, N, N)
            x = x + y
        else:
            x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return (x, weights) if return_attention else x


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------
class VisionTransformer(nn.Module):
    """Vision Transformer classifier with a [CLS] token and learned position embeddings.

    Args:
        img_size: input size, an int (square) or (H, W); must be a multiple of ``patch_size``.
        patch_size: side P of the square (or (Ph, Pw)) non-overlapping patches.
        in_chans: image channels C.
        num_classes: number of logits; 0 gives no head (``forward`` returns the pooled features).
        embed_dim: token width D; must be divisible by ``num_heads``.
        depth: number of encoder blocks.
        num_heads: attention heads per block (head width D / num_heads).
        mlp_ratio: MLP hidden width as a multiple of D.
        qkv_bias: bias in the fused q, k, v projection.
        global_pool: ``"token"`` classifies the final [CLS] token (after the final LayerNorm ``norm``);
            ``"avg"`` classifies the mean of the patch tokens (the LayerNorm then sits after the pooling and
            is called ``fc_norm``, as in timm).
        drop_rate: dropout after the position embeddings, inside the MLPs, after each attention projection and
            before the head.
        attn_drop_rate: dropout on the attention weights.

    Shapes: ``forward`` maps (B, C, H, W) to logits (B, num_classes); with ``return_attention=True`` it also
    returns a list of ``depth`` tensors (B, num_heads, N, N), N = 1 + number of patches, [CLS] first.
    """

    def __init__(self, img_size: Size2 = 224, patch_size: Size2 = 16, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, global_pool: str = "token",
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0):
        super().__init__()
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool={global_pool!r} is not supported; use 'token' ([CLS] token) or "
                             "'avg' (mean of the patch tokens)")
        for name, value in (("in_chans", in_chans), ("embed_dim", embed_dim), ("depth", depth),
                            ("num_heads", num_heads)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive int")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes={num_classes!r} must be a non-negative int (0: no head)")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}; each head "
                             f"gets embed_dim / num_heads channels, so pick num_heads among the divisors of "
                             f"{embed_dim}")
        if mlp_ratio <= 0:
            raise ValueError(f"mlp_ratio={mlp_ratio!r} must be positive")
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.global_pool = global_pool
        self.num_prefix_tokens = 1  # the [CLS] token

        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.img_size, self.patch_size = self.patch_embed.img_size, self.patch_embed.patch_size
        self.grid_size, self.num_patches = self.patch_embed.grid_size, self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_patches, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate,
                                            attn_drop_rate) for _ in range(depth)])
        use_fc_norm = global_pool == "avg"
        self.norm = nn.Identity() if use_fc_norm else nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.fc_norm = nn.LayerNorm(embed_dim, eps=LN_EPS) if use_fc_norm else nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm's default initialisation: truncated normals (std 0.02) for embeddings and Linear weights."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor, return_attention: bool = False
                         ) -> Union[torch.Tensor, tuple[torch.Tensor, list[torch.Tensor]]]:
        """Image (B, C, H, W) -> tokens (B, N, D) after the last block and final norm (+ attention maps)."""
        x = self.patch_embed(x)  # (B, N-1, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, N, D)
        x = self.pos_drop(x)
        if not return_attention:
            return self.norm(self.blocks(x))
        attentions = []
        for block in self.blocks:
            x, weights = block(x, return_attention=True)  # (B, N, D), (B, nh, N, N)
            attentions.append(weights)
        return self.norm(x), attentions

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens (B, N, D) -> logits (B, num_classes), or the pooled features (B, D) if ``pre_logits``."""
        x = x[:, 0] if self.global_pool == "token" else x[:, self.num_prefix_tokens:].mean(dim=1)  # (B, D)
        x = self.head_drop(self.fc_norm(x))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> Union[torch.Tensor, tuple[torch.Tensor, list[torch.Tensor]]]:
        """Image (B, C, H, W) -> logits (B, num_classes) [, per-layer attention (B, nh, N, N) x depth]."""
        if return_attention:
            tokens, attentions = self.forward_features(x, return_attention=True)
            return self.forward_head(tokens), attentions
        return self.forward_head(self.forward_features(x))

    def extra_repr(self) -> str:
        return (f"img_size={self.img_size}, patch_size={self.patch_size}, grid={self.grid_size}, "
                f"global_pool={self.global_pool!r}")


# ------------------------------------------------------------------------------------------------
# The standard sizes (Dosovitskiy et al., Table 1; Tiny and Small from DeiT)
# ------------------------------------------------------------------------------------------------
_SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16),
}


def _vit(size: str, patch_size: Size2, img_size: Size2, num_classes: int, **kw: Any) -> VisionTransformer:
    return VisionTransformer(img_size=img_size, patch_size=patch_size, num_classes=num_classes,
                             **{**_SIZES[size], **kw})


def vit_tiny(patch_size: Size2 = 16, img_size: Size2 = 224, num_classes: int = 1000,
             **kw: Any) -> VisionTransformer:
    """ViT-Ti: D=192, 12 blocks, 3 heads (5.7 M parameters at patch 16, 224 px, 1000 classes)."""
    return _vit("tiny", patch_size, img_size, num_classes, **kw)


def vit_small(patch_size: Size2 = 16, img_size: Size2 = 224, num_classes: int = 1000,
              **kw: Any) -> VisionTransformer:
    """ViT-S: D=384, 12 blocks, 6 heads (22 M parameters at patch 16)."""
    return _vit("small", patch_size, img_size, num_classes, **kw)


def vit_base(patch_size: Size2 = 16, img_size: Size2 = 224, num_classes: int = 1000,
             **kw: Any) -> VisionTransformer:
    """ViT-B: D=768, 12 blocks, 12 heads (86 M parameters at patch 16)."""
    return _vit("base", patch_size, img_size, num_classes, **kw)


def vit_large(patch_size: Size2 = 16, img_size: Size2 = 224, num_classes: int = 1000,
              **kw: Any) -> VisionTransformer:
    """ViT-L: D=1024, 24 blocks, 16 heads (304 M parameters at patch 16)."""
    return _vit("large", patch_size, img_size, num_classes, **kw)


def vit_huge(patch_size: Size2 = 16, img_size: Size2 = 224, num_classes: int = 1000,
             **kw: Any) -> VisionTransformer:
    """ViT-H: D=1280, 32 blocks, 16 heads (632 M parameters at patch 14)."""
    return _vit("huge", patch_size, img_size, num_classes, **kw)


# ------------------------------------------------------------------------------------------------
# Attention rollout (Abnar & Zuidema, 2020)
# ------------------------------------------------------------------------------------------------
def attention_rollout(attentions: Sequence[torch.Tensor], head_fusion: str = "mean",
                      discard_ratio: float = 0.0, add_residual: bool = True) -> torch.Tensor:
    """Roll attention through the layers: how much each output token draws on each input token.

    Attention rollout of Abnar & Zuidema (2020, bibliography key ``abnar2020quantifying``).

    Each layer's heads are fused into one (B, N, N) matrix A_l; the residual connection is accounted for as
    0.5 * A_l + 0.5 * I; rows are renormalised to sum to 1; the layers are chained by matrix products,
    R = A_L ... A_2 A_1. Row i of R is a distribution over the input tokens.

    Args:
        attentions: per-layer attention weights, first layer first, each (B, nh, N, N) with rows summing to 1
            (``model(x, return_attention=True)[1]``).
        head_fusion: ``"mean"`` (the paper), ``"max"`` or ``"min"`` over the heads.
        discard_ratio: in [0, 1): in each row of each fused matrix, zero this fraction of the smallest weights
            before renormalising (a denoising trick from the rollout visualisations; 0 keeps everything).
        add_residual: add the identity for the skip connection (the paper's rollout); ``False`` multiplies the
            raw attention maps.

    Returns:
        (B, N, N) rollout matrix, rows summing to 1.
    """
    if len(attentions) == 0:
        raise ValueError("attentions is empty; pass the list returned by model(x, return_attention=True)[1]")
    fuse = {"mean": lambda a: a.mean(dim=1), "max": lambda a: a.amax(dim=1), "min": lambda a: a.amin(dim=1)}
    if head_fusion not in fuse:
        raise ValueError(f"head_fusion={head_fusion!r} is not supported; use 'mean', 'max' or 'min'")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio={discard_ratio!r} must be in [0, 1)")
    first = attentions[0]
    if first.ndim != 4 or first.shape[-1] != first.shape[-2]:
        raise ValueError(f"each attention map must have shape (B, heads, N, N), got {tuple(first.shape)}")
    b, _, n, _ = first.shape
    eye = torch.eye(n, dtype=first.dtype, device=first.device)  # (N, N)
    rollout = eye.expand(b, n, n)  # (B, N, N)
    for layer, att in enumerate(attentions):
        if att.ndim != 4 or att.shape[0] != b or att.shape[-2:] != (n, n):
            raise ValueError(f"attentions[{layer}] has shape {tuple(att.shape)}; expected "
                             f"(B={b}, heads, {n}, {n}) like attentions[0]")
        a = fuse[head_fusion](att)  # (B, N, N)
        k = int(n * discard_ratio)  # < n, so every row keeps at least one weight
        if k > 0:
            smallest = a.topk(k, dim=-1, largest=False).indices  # (B, N, k)
            a = a.scatter(-1, smallest, 0.0)
        if add_residual:
            a = 0.5 * a + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(a.dtype).tiny)  # rows sum to 1
        rollout = a @ rollout  # (B, N, N)
    return rollout


def _grid(grid_size: Size2, n_tokens: int) -> tuple[int, int]:
    gh, gw = _pair(grid_size, "grid_size")
    if gh * gw != n_tokens - 1:
        raise ValueError(f"grid_size={grid_size!r} gives {gh * gw} patches but the maps have {n_tokens} "
                         f"tokens (1 [CLS] + {n_tokens - 1} patches); pass model.grid_size")
    return gh, gw


def cls_attention_map(attention: torch.Tensor, grid_size: Size2) -> torch.Tensor:
    """One layer's [CLS] -> patch attention per head, on the patch grid: (B, nh, N, N) -> (B, nh, gh, gw)."""
    if attention.ndim != 4:
        raise ValueError(f"attention must have shape (B, heads, N, N), got {tuple(attention.shape)}")
    gh, gw = _grid(grid_size, attention.shape[-1])
    return attention[:, :, 0, 1:].reshape(attention.shape[0], attention.shape[1], gh, gw)


def cls_rollout_map(attentions: Sequence[torch.Tensor], grid_size: Size2, head_fusion: str = "mean",
                    discard_ratio: float = 0.0, add_residual: bool = True) -> torch.Tensor:
    """The rolled-out [CLS] -> patch weights on the patch grid, (B, gh, gw): where the classifier "looks".

    The values are row 0 of :func:`attention_rollout` without its [CLS] entry, so they sum to 1 minus the
    [CLS] token's weight on itself. Upsample to the image size to overlay it.
    """
    rollout = attention_rollout(attentions, head_fusion, discard_ratio, add_residual)  # (B, N, N)
    gh, gw = _grid(grid_size, rollout.shape[-1])
    return rollout[:, 0, 1:].reshape(rollout.shape[0], gh, gw)


# ------------------------------------------------------------------------------------------------
# Weights from the reference libraries
# ------------------------------------------------------------------------------------------------
_STANDARD_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}  # head count of the standard widths


def _heads_for(embed_dim: int, source: str) -> int:
    if embed_dim not in _STANDARD_HEADS:
        raise ValueError(f"{source}: the number of heads cannot be read from a state dict and "
                         f"embed_dim={embed_dim} is not a standard width ({sorted(_STANDARD_HEADS)}); "
                         "pass num_heads=...")
    return _STANDARD_HEADS[embed_dim]


def _build_and_load(state_dict: dict[str, torch.Tensor], config: dict[str, Any], source: str
                    ) -> VisionTransformer:
    """Build a course ViT from ``config`` and load ``state_dict`` strictly, with a readable error."""
    model = VisionTransformer(**config).to(next(iter(state_dict.values())).dtype)
    ours = set(model.state_dict())
    unexpected, missing = sorted(set(state_dict) - ours), sorted(ours - set(state_dict))
    if unexpected or missing:
        raise ValueError(f"{source}: the weights do not fit a plain ViT (class token, learned position "
                         "embedding, global_pool 'token' or 'avg', no layer scale / qk-norm / register "
                         "tokens). "
                         f"Unsupported keys: {unexpected[:6]}; missing keys: {missing[:6]}")
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{source}: a tensor's shape does not fit the config {config}: {err}") from err
    return model


def _from_state_dict(state_dict: dict[str, torch.Tensor], known: dict[str, Any], source: str
                     ) -> VisionTransformer:
    """Infer a config from the shapes of a timm-keyed state dict (``known`` entries win); build and load."""
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight"):
        if key not in state_dict:
            raise ValueError(f"{source}: the state dict has no {key!r}; is this a ViT with a class token?")
    d, c, ph, pw = state_dict["patch_embed.proj.weight"].shape  # (D, C, Ph, Pw)
    num_patches = state_dict["pos_embed"].shape[1] - 1  # pos_embed: (1, 1 + gh*gw, D)
    g = math.isqrt(num_patches)
    config: dict[str, Any] = dict(
        patch_size=ph if ph == pw else (ph, pw), in_chans=c, embed_dim=d,
        depth=len({k.split(".")[1] for k in state_dict if k.startswith("blocks.")}),
        mlp_ratio=state_dict["blocks.0.mlp.fc1.weight"].shape[0] / d,
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        num_classes=state_dict["head.weight"].shape[0] if "head.weight" in state_dict else 0,
        global_pool="avg" if "fc_norm.weight" in state_dict else "token",
    )
    if g * g == num_patches:
        config["img_size"] = g * ph if ph == pw else (g * ph, g * pw)
    config.update(known)
    if "img_size" not in config:
        raise ValueError(f"{source}: {num_patches} patches is not a square grid; pass img_size=(H, W)")
    if "num_heads" not in config:
        config["num_heads"] = _heads_for(d, source)
    return _build_and_load(state_dict, config, source)


def from_timm(model_or_state_dict: Union[nn.Module, dict[str, torch.Tensor]], **config_overrides: Any
              ) -> VisionTransformer:
    """A course ViT with the weights (and so the outputs) of a timm ``VisionTransformer``.

    Args:
        model_or_state_dict: a timm ``VisionTransformer`` (its config is read from it) or its ``state_dict``
            (the config is inferred from the tensor shapes: width, depth, patch size, square image size, MLP
            ratio, qkv bias, classes, pooling; the head count from the standard widths unless given).
        **config_overrides: ``VisionTransformer`` arguments that replace the inferred ones (e.g.
            ``num_heads``, ``img_size`` for a non-square model, ``drop_rate``).
    """
    source = "from_timm"
    if not isinstance(model_or_state_dict, nn.Module):
        return _from_state_dict(dict(model_or_state_dict), config_overrides, source)
    tm = model_or_state_dict
    for attr, what in (("no_embed_class", "position embeddings without the class token"),
                       ("dynamic_img_size", "dynamic image size"),
                       ("pool_include_prefix", "pooling that includes the [CLS] token")):
        if getattr(tm, attr, False):
            raise ValueError(f"{source}: {what} ({attr}={getattr(tm, attr)!r}) is not supported")
    eps_ok = all(abs(m.eps - LN_EPS) < 1e-12 for m in tm.modules() if isinstance(m, nn.LayerNorm))
    gelu_ok = all(isinstance(m, nn.GELU) and m.approximate == "none"
                  for m in tm.modules() if "gelu" in type(m).__name__.lower())
    if not (eps_ok and gelu_ok):
        raise ValueError(f"{source}: this model uses a LayerNorm eps other than 1e-6 or a GELU other than "
                         "the exact one; the course ViT's outputs would differ")
    known = dict(img_size=tuple(tm.patch_embed.img_size), num_heads=tm.blocks[0].attn.num_heads,
                 global_pool=tm.global_pool)
    return _from_state_dict(tm.state_dict(), {**known, **config_overrides}, source)


_TV_KEYS = [  # torchvision name -> timm name (regular expressions on the state_dict keys)
    (r"^class_token$", "cls_token"),
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^encoder\.pos_embedding$", "pos_embed"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.", r"blocks.\1.norm1."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)$",
     r"blocks.\1.attn.qkv.\2"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.", r"blocks.\1.attn.proj."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.", r"blocks.\1.norm2."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.0\.", r"blocks.\1.mlp.fc1."),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.3\.", r"blocks.\1.mlp.fc2."),
    (r"^encoder\.ln\.", "norm."),
    (r"^heads\.head\.", "head."),
]


def _torchvision_to_timm_key(key: str) -> str:
    for pattern, replacement in _TV_KEYS:
        new, hits = re.subn(pattern, replacement, key)
        if hits:
            return new
    raise ValueError(f"from_torchvision: key {key!r} has no counterpart in a plain ViT (a conv stem or a "
                     "pre-logits layer is not supported)")


def from_torchvision(model_or_state_dict: Union[nn.Module, dict[str, torch.Tensor]], **config_overrides: Any
                     ) -> VisionTransformer:
    """A course ViT with the weights (and so the outputs) of a torchvision ``VisionTransformer``.

    The keys map one to one (``conv_proj`` -> ``patch_embed.proj``, ``encoder.layers.encoder_layer_{i}.ln_1``
    -> ``blocks.{i}.norm1``, ``self_attention.in_proj_*`` -> ``attn.qkv.*`` with the same [q; k; v] packing,
    ``mlp.0``/``mlp.3`` -> ``mlp.fc1``/``mlp.fc2``, ``encoder.ln`` -> ``norm``, ``heads.head`` -> ``head``).
    The head count is read from a model, or from the standard widths for a bare state dict.
    """
    source = "from_torchvision"
    config: dict[str, Any] = {}
    if isinstance(model_or_state_dict, nn.Module):
        tv = model_or_state_dict
        if any(abs(m.eps - LN_EPS) > 1e-12 for m in tv.modules() if isinstance(m, nn.LayerNorm)):
            raise ValueError(f"{source}: this model's LayerNorm eps is not 1e-6; its outputs would differ")
        config["num_heads"] = tv.encoder.layers[0].self_attention.num_heads
        state_dict = tv.state_dict()
    else:
        state_dict = dict(model_or_state_dict)
    converted = {_torchvision_to_timm_key(k): v for k, v in state_dict.items()}
    if "cls_token" not in converted:
        raise ValueError(f"{source}: the state dict has no 'class_token'; is this a torchvision ViT?")
    return _from_state_dict(converted, {**config, **config_overrides}, source)


# ------------------------------------------------------------------------------------------------
# Pretrained weights through timm (needs the Hugging Face Hub, or weights already in its cache)
# ------------------------------------------------------------------------------------------------
class PretrainedUnavailableError(ConnectionError):
    """Pretrained weights cannot be fetched: offline, and not in the local Hugging Face cache."""


def _reachable(url: str, timeout: float) -> Optional[str]:
    """None if ``url`` answers an HTTP HEAD request (any status) within ``timeout`` seconds, else why not.

    A full request, not just a TCP connection: some networks accept every connection and then stay silent.
    It runs in a daemon thread, so that not even a stalled DNS lookup holds the caller past ``timeout``.
    Proxies set in the environment (``HTTPS_PROXY``) are used, as a download would use them.
    """
    result: list[Optional[str]] = [f"no answer within {timeout:g} s"]

    def attempt() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            result[0] = None
        except urllib.error.HTTPError:  # the server answered (401, 404, ...): it is reachable
            result[0] = None
        except Exception as err:  # URLError, timeouts, refused connections, SSL errors
            result[0] = f"{type(err).__name__}: {getattr(err, 'reason', err)}"

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0]


def _cached_weights(name: str) -> Optional[str]:
    """The path of ``name``'s weights in the local Hugging Face cache, or None."""
    try:
        import timm
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cfg = timm.models.get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(hub_id, filename)
        if isinstance(path, str):
            return path
    return None


def load_pretrained_timm(name: str = "vit_small_patch16_224", timeout: float = 3.0, **create_kwargs: Any
                         ) -> VisionTransformer:
    """ImageNet-pretrained weights from timm in a course ViT, or a quick, clear failure when offline.

    Checks first (within ``timeout`` seconds) that the Hugging Face Hub can be reached; if not, uses weights
    already in the local cache, and otherwise raises :class:`PretrainedUnavailableError` at once instead of
    letting a download hang. The returned model carries timm's ``pretrained_cfg`` dict (``mean``, ``std``,
    ``input_size``, ``interpolation``) as the attribute ``pretrained_cfg`` for preprocessing.

    Args:
        name: a timm model name such as ``"vit_small_patch16_224"`` or ``"vit_base_patch16_224.augreg_in1k"``.
        timeout: seconds allowed for the connectivity check.
        **create_kwargs: passed to ``timm.create_model`` (e.g. ``num_classes``).
    """
    try:
        import timm
    except ImportError as err:
        raise PretrainedUnavailableError("load_pretrained_timm needs timm: pip install timm") from err
    if not timm.is_model(name.split(".")[0]):
        raise ValueError(f"name={name!r} is not a timm model; try e.g. 'vit_small_patch16_224'")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    problem = "HF_HUB_OFFLINE is set" if offline else _reachable(endpoint, timeout)
    if problem is not None:
        cached = _cached_weights(name)
        if cached is None:
            raise PretrainedUnavailableError(
                f"cannot download pretrained weights for {name!r}: {endpoint} is unreachable ({problem}) and "
                "the weights are not in the local Hugging Face cache. Continue with a bundled model "
                "(course_pkg.bundled.load_bundled) or run once with network access.")
        create_kwargs["pretrained_cfg_overlay"] = dict(file=cached, custom_load=False)
    reference = timm.create_model(name, pretrained=True, **create_kwargs).eval()
    model = from_timm(reference).eval()
    model.pretrained_cfg = dict(reference.pretrained_cfg)
    return model
