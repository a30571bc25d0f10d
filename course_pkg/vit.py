"""The Vision Transformer (Dosovitskiy et al., 2021), weight-compatible with timm and torchvision.

An image is cut into non-overlapping patches, each patch is projected to a token, a learnable [CLS] token is
prepended, learnable position embeddings are added, and a stack of pre-norm Transformer blocks mixes the
tokens with multi-head self-attention. The classifier reads the final [CLS] token (``global_pool="token"``) or
the mean of the patch tokens (``global_pool="avg"``).

Parameter names and ``state_dict`` keys are timm's (``cls_token``, ``pos_embed``, ``patch_embed.proj``,
``blocks.{i}.norm1``, ``blocks.{i}.attn.qkv``, ``blocks.{i}.attn.proj``, ``blocks.{i}.norm2``,
``blocks.{i}.mlp.fc1``, ``blocks.{i}.mlp.fc2``, ``norm`` or ``fc_norm``, ``head``), so a timm checkpoint
loads with ``strict=True``. Converting the reference models (:func:`course_pkg.weights.from_timm`,
:func:`course_pkg.weights.from_torchvision`) lives in :mod:`course_pkg.weights`, pretrained downloads in
:mod:`course_pkg.pretrained`;
recording the attention maps and rolling them out live in :mod:`course_pkg.attention_maps`.

Shapes: B batch, C channels, H x W image, P patch size, (gh, gw) patch grid, N = 1 + gh * gw tokens,
D embedding width, nh heads.

``torch.fx.symbolic_trace(model)`` traces the ``return_attention=False`` path, the input check included
(see :mod:`course_pkg.checks`); the traced graph refuses ``return_attention=True``.
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Union

import torch
import torch.nn as nn

from .attention import MultiHeadSelfAttention
from .checks import check_image_batch, check_probability, fixed_when_traced, pair, positive_int

__all__ = [
    "Block",
    "Mlp",
    "PatchEmbed",
    "VisionTransformer",
    "vit_base",
    "vit_huge",
    "vit_large",
    "vit_small",
    "vit_tiny",
]

Size2 = Union[int, tuple[int, int]]
LN_EPS = 1e-6  # timm's and torchvision's ViT LayerNorm eps; PyTorch's default 1e-5 moves logits by ~5e-3


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------
def _check_patch_input(x: torch.Tensor, in_chans: int, img_size: tuple[int, int], dtype: torch.dtype,
                      owner: str = "PatchEmbed") -> torch.Tensor:
    """Raise a clear error unless ``x`` is an image batch ``(B, in_chans, *img_size)`` of the weights'
    ``dtype`` (channels-last, NumPy, lists, ``uint8`` and ``float64`` get their own advice); returns ``x``."""
    check_image_batch(x, in_chans, "x", owner, "in_chans", dtype)
    h, w = x.shape[-2:]
    if (h, w) != img_size:
        raise ValueError(f"input size {h}x{w} does not match the model's img_size={img_size[0]}x"
                         f"{img_size[1]} (x has shape {tuple(x.shape)}); resize the image (the "
                         "position embeddings are per patch)")
    return x


# torch.fx.symbolic_trace keeps the input check as a call in the graph (it runs on the real input then)
torch.fx.wrap("_check_patch_input")


class PatchEmbed(nn.Module):
    """Cut an image into P x P patches and project each one to a D-dim token: (B, C, H, W) -> (B, gh*gw, D).

    A Conv2d with kernel = stride = P is exactly "flatten each patch and multiply by a learned matrix E"
    (its weight is E reshaped to (D, C, P, P)); einops writes the flattening as
    ``'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'``.
    """

    def __init__(self, img_size: Size2 = 224, patch_size: Size2 = 16, in_chans: int = 3,
                 embed_dim: int = 768):
        super().__init__()
        self.img_size = pair(img_size, "img_size")
        self.patch_size = pair(patch_size, "patch_size")
        for side, (i, p) in zip(("height", "width"), zip(self.img_size, self.patch_size)):
            if i % p:
                raise ValueError(f"img_size={img_size!r} is not divisible by patch_size={patch_size!r} "
                                 f"(image {side} {i} % patch {p} = {i % p}); "
                                 f"use a size that is a multiple of {p}")
        self.in_chans = positive_int("in_chans", in_chans)
        positive_int("embed_dim", embed_dim)
        self.grid_size = (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def check_input(self, x: torch.Tensor, owner: str = "PatchEmbed") -> None:
        """Raise a clear error unless ``x`` is an image batch ``(B, in_chans, *img_size)`` of the weights'
        dtype (channels-last, NumPy, lists, ``uint8`` and ``float64`` get their own advice)."""
        _check_patch_input(x, self.in_chans, self.img_size, self.proj.weight.dtype, owner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
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
                 drop: float = 0.0, attn_drop: float = 0.0, mlp_hidden_dim: Optional[int] = None):
        super().__init__()
        hidden = int(dim * mlp_ratio) if mlp_hidden_dim is None else positive_int("mlp_hidden_dim",
                                                                                  mlp_hidden_dim)
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = MultiHeadSelfAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                           proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, hidden, drop=drop)

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Returns the new tokens (B, N, D), plus the attention weights (B, nh, N, N) on request."""
        return_attention = fixed_when_traced(return_attention, "return_attention", False)
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
        mlp_hidden_dim: the MLP's hidden width directly (overrides ``mlp_ratio``; a converted model whose
            width is not ``int(embed_dim * ratio)`` for a round ratio needs it).

    Shapes: ``forward`` maps (B, C, H, W) to logits (B, num_classes); with ``return_attention=True`` it also
    returns a list of ``depth`` tensors (B, num_heads, N, N), N = 1 + number of patches, [CLS] first.
    That list is what :func:`course_pkg.attention_maps.record_attention` records as the ``"token"`` maps
    ``blocks.{i}.attn``; new code records them directly.
    """

    def __init__(self, img_size: Size2 = 224, patch_size: Size2 = 16, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, global_pool: str = "token",
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, mlp_hidden_dim: Optional[int] = None):
        super().__init__()
        if global_pool not in ("token", "avg"):
            raise ValueError(f"global_pool={global_pool!r} is not supported; use 'token' ([CLS] token) or "
                             "'avg' (mean of the patch tokens)")
        for name, value in (("in_chans", in_chans), ("embed_dim", embed_dim), ("depth", depth),
                            ("num_heads", num_heads)):
            positive_int(name, value)
        if isinstance(num_classes, (str, bool)) or num_classes is None:
            raise TypeError(f"num_classes={num_classes!r} is a {type(num_classes).__name__}; use an int "
                            "(0: no head)")
        if not isinstance(num_classes, numbers.Integral) or num_classes < 0:
            raise ValueError(f"num_classes={num_classes!r} must be a non-negative int (0: no head)")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}; each head "
                             f"gets embed_dim / num_heads channels, so pick num_heads among the divisors of "
                             f"{embed_dim}")
        if isinstance(mlp_ratio, (str, bool)) or not isinstance(mlp_ratio, numbers.Real):
            raise TypeError(f"mlp_ratio={mlp_ratio!r} is a {type(mlp_ratio).__name__}; use a positive float "
                            "(4.0 in the paper)")
        if mlp_hidden_dim is None and int(embed_dim * mlp_ratio) < 1:
            raise ValueError(f"mlp_ratio={mlp_ratio!r} gives an MLP of int({embed_dim} * {mlp_ratio!r}) = "
                             f"{int(embed_dim * mlp_ratio)} units; use a positive ratio with at least one unit "
                             "(4.0 in the paper)")
        check_probability("drop_rate", drop_rate)
        check_probability("attn_drop_rate", attn_drop_rate)
        self.num_classes = num_classes = int(num_classes)
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
                                            attn_drop_rate, mlp_hidden_dim) for _ in range(depth)])
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

    def no_weight_decay(self) -> set[str]:
        """Parameters that take no weight decay (timm's convention, read by ``course_pkg.train``)."""
        return {"pos_embed", "cls_token"}

    def forward_features(self, x: torch.Tensor, return_attention: bool = False
                         ) -> Union[torch.Tensor, tuple[torch.Tensor, list[torch.Tensor]]]:
        """Image (B, C, H, W) -> tokens (B, N, D) after the last block and final norm.

        With ``return_attention=True`` it also returns each block's attention weights, (B, heads, N, N) per
        layer, first layer first: the maps that ``record_attention`` records as ``"token"`` maps.
        """
        self.patch_embed.check_input(x, "VisionTransformer")
        x = self.patch_embed(x)  # (B, N-1, D)
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, N, D)
        x = self.pos_drop(x)
        if not return_attention:
            return self.norm(self.blocks(x))
        maps = []
        for block in self.blocks:
            x, weights = block(x, return_attention=True)  # (B, N, D), (B, heads, N, N)
            maps.append(weights)
        return self.norm(x), maps

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens (B, N, D) -> logits (B, num_classes), or the pooled features (B, D) if ``pre_logits``."""
        x = x[:, 0] if self.global_pool == "token" else x[:, self.num_prefix_tokens:].mean(dim=1)  # (B, D)
        x = self.head_drop(self.fc_norm(x))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> Union[torch.Tensor, tuple[torch.Tensor, list[torch.Tensor]]]:
        """Image (B, C, H, W) -> logits (B, num_classes) [, per-layer attention (B, nh, N, N) x depth]."""
        return_attention = fixed_when_traced(return_attention, "return_attention", False)
        if return_attention:
            tokens, maps = self.forward_features(x, return_attention=True)
            return self.forward_head(tokens), maps
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


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
