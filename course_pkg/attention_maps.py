"""Seeing attention: one recorder for the maps of every course model, and what to draw from them.

Every attention module of the course passes its map through a small identity module, an
:class:`~course_pkg.attention_tap.AttentionTap` (its attribute ``tap``). :func:`record_attention` hooks every tap of a model for the
length of a ``with`` block and collects, **by the name of the module that owns the tap**, one tensor per
module and forward pass. There are three kinds of map, one shape each:

============  =========================================  =====================================
kind          made by                                    recorded shape
============  =========================================  =====================================
``channel``   ``SqueezeExcitation``, CBAM's channel part  ``(B, C)``: one weight in (0, 1) per channel
``spatial``   CBAM's spatial part                         ``(B, H, W)``: one weight in (0, 1) per position
``token``     ``MultiHeadSelfAttention`` (ViT blocks)     ``(B, heads, N, N)``: rows sum to one
============  =========================================  =====================================

::

    with record_attention(model) as maps:
        logits = model(x)
    maps["layer3.0.attn.spatial"]          # (B, H, W) for a CBAM-ResNet
    maps.of_kind("token")                  # {"blocks.0.attn": (B, heads, N, N), ...} for a ViT, in order

The recorder uses forward hooks registered only inside the ``with`` block, so a model outside it runs
exactly as before (and traces whole under ``torch.compile``). Self-attention uses PyTorch's fused kernel,
which never builds the ``N x N`` weights; while a recorder watches a layer, the layer takes its explicit path
instead (same outputs up to float rounding) so that the weights exist.

The module also holds what the chapters compute from recorded maps: attention rollout (Abnar & Zuidema,
2020) and the [CLS] maps of a ViT on its patch grid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Optional, Union

import torch
from torch import nn

from .attention_tap import KINDS, AttentionTap, as_recorded

__all__ = [
    "AttentionRecord",
    "attention_rollout",
    "cls_attention_map",
    "cls_rollout_map",
    "record_attention",
    "taps",
    "token_maps",
]

Size2 = Union[int, tuple[int, int]]


class AttentionRecord(dict[str, torch.Tensor]):
    """The maps of one forward pass, ``{module name: map}``, in the order the modules ran.

    ``record.kinds[name]`` is the kind of each map (``"channel"``, ``"spatial"`` or ``"token"``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.kinds: dict[str, str] = {}

    def of_kind(self, kind: str) -> dict[str, torch.Tensor]:
        """The maps of one kind, ``{name: map}`` in order (e.g. ``"token"``: a ViT's layers, first first)."""
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not known; use one of {sorted(KINDS)}")
        return {name: m for name, m in self.items() if self.kinds[name] == kind}


def _owner(tap_name: str) -> str:
    return tap_name.rsplit(".", 1)[0] if "." in tap_name else ""


def taps(model: nn.Module) -> list[tuple[str, AttentionTap]]:
    """``(owner name, tap)`` for every :class:`AttentionTap` in ``model``, in module order."""
    return [(_owner(name), m) for name, m in model.named_modules() if isinstance(m, AttentionTap)]


@contextlib.contextmanager
def record_attention(model: nn.Module, detach: bool = True, *, allow_training: bool = False
                     ) -> Iterator[AttentionRecord]:
    """Record the attention maps of every forward pass run inside the ``with`` block.

    Args:
        model: any module holding course attention modules (SE, CBAM, self-attention, or models of them),
            in eval mode (``model.eval()``).
        detach: record detached maps (default); ``False`` keeps them in the autograd graph, e.g. to take
            a gradient of a map.
        allow_training: record a model in ``train()`` mode too. By default that is refused: in training
            dropout zeroes and rescales attention weights and BatchNorm uses the batch's statistics, so
            the maps would not be the model's maps. Pass True only to use the maps *in* training (e.g. an
            attention loss).

    Yields:
        An :class:`AttentionRecord` filled as the model runs: ``{owner module name: map}`` with the shapes of
        :data:`KINDS`. A module that runs twice keeps its last map.

    Raises ``ValueError`` when the model holds no attention module (a plain ResNet, a CNN).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module holding course attention modules, got a "
                        f"{type(model).__name__}")
    for flag_name, flag in (("detach", detach), ("allow_training", allow_training)):
        if not isinstance(flag, bool):
            raise TypeError(f"{flag_name}={flag!r} is a {type(flag).__name__}; use True or False")
    found = taps(model)
    if not found:
        raise ValueError(f"the {type(model).__name__} holds no course attention module (SE, CBAM or "
                         "self-attention), so there is no attention map to record; build it with "
                         "attention='se' or 'cbam', or use a ViT")
    training = _train_mode_layers(model)
    if training and not allow_training:
        raise ValueError(f"the {type(model).__name__} is in train() mode and holds layers that act "
                         f"differently in training ({training[0]!r}{' and others' if len(training) > 1 else ''}"
                         "): dropout would zero and rescale attention weights and BatchNorm would use the "
                         "batch's statistics, so the recorded maps would not be the model's. Call "
                         "model.eval() first (or pass allow_training=True to record maps while training on "
                         "purpose)")
    record = AttentionRecord()
    handles = []
    previous = [tap.recording for _, tap in found]

    def hook_for(name: str, kind: str):  # type: ignore[no-untyped-def]
        def hook(_: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            shaped = as_recorded(kind, output, detach)
            record.pop(name, None)            # a second call moves the entry to the end
            record[name] = shaped
            record.kinds[name] = kind
        return hook

    try:
        for name, tap in found:
            tap.recording = True
            handles.append(tap.register_forward_hook(hook_for(name, tap.kind)))
        yield record
    finally:
        for handle in handles:
            handle.remove()
        for (_, tap), was in zip(found, previous):
            tap.recording = was


def _train_mode_layers(model: nn.Module) -> list[str]:
    """The layers in train() mode whose output then differs: dropout with p > 0, BatchNorm."""
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.dropout import _DropoutNd

    return [name or type(model).__name__ for name, m in model.named_modules()
            if m.training and ((isinstance(m, _DropoutNd) and m.p > 0) or isinstance(m, _BatchNorm))]


# ------------------------------------------------------------------------------------------------
# What the ViT chapters draw from token maps
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
            (``list(record.of_kind("token").values())`` from :func:`record_attention`); maps whose rows are
            not softmax weights (scores, dropped-out weights) raise ``ValueError``.
        head_fusion: ``"mean"`` (the paper), ``"max"`` or ``"min"`` over the heads.
        discard_ratio: in [0, 1): in each row of each fused matrix, zero this fraction of the smallest weights
            before renormalising (a denoising trick from the rollout visualisations; 0 keeps everything).
        add_residual: add the identity for the skip connection (the paper's rollout); ``False`` multiplies the
            raw attention maps.

    Returns:
        (B, N, N) rollout matrix, rows summing to 1.
    """
    if isinstance(attentions, torch.Tensor) or not isinstance(attentions, Sequence):
        raise TypeError(f"attentions must be a list of tensors (B, heads, N, N), one per layer, got a "
                        f"{type(attentions).__name__}; pass the list returned by "
                        "model(x, return_attention=True) or list(record.of_kind('token').values())")
    if len(attentions) == 0:
        raise ValueError("attentions is empty; pass at least one map: the list returned by "
                         "model(x, return_attention=True) or the token maps recorded by record_attention, "
                         "first layer first")
    for layer, att in enumerate(attentions):
        if not isinstance(att, torch.Tensor):
            raise TypeError(f"attentions[{layer}] is a {type(att).__module__.split('.')[0]}."
                            f"{type(att).__name__}, not a torch.Tensor; convert it with torch.as_tensor")
    fuse = {"mean": lambda a: a.mean(dim=1), "max": lambda a: a.amax(dim=1), "min": lambda a: a.amin(dim=1)}
    if head_fusion not in fuse:
        raise ValueError(f"head_fusion={head_fusion!r} is not supported; use 'mean', 'max' or 'min'")
    if isinstance(discard_ratio, bool) or not isinstance(discard_ratio, (int, float)):
        raise TypeError(f"discard_ratio={discard_ratio!r} is a {type(discard_ratio).__name__}; use a fraction "
                        "in [0, 1), e.g. 0.9")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio={discard_ratio!r} must be in [0, 1)")
    if not isinstance(add_residual, bool):
        raise TypeError(f"add_residual={add_residual!r} is a {type(add_residual).__name__}; use True (the "
                        "paper's rollout) or False")
    first = attentions[0]
    if first.ndim != 4 or first.shape[-1] != first.shape[-2]:
        raise ValueError(f"attentions[0] has shape {tuple(first.shape)}; each attention map must have "
                         "shape (B, heads, N, N) (add the missing dimensions, e.g. a[None, None] for one "
                         "(N, N) map)")
    b, _, n, _ = first.shape
    eye = torch.eye(n, dtype=first.dtype, device=first.device)  # (N, N)
    rollout = eye.expand(b, n, n)  # (B, N, N)
    for layer, att in enumerate(attentions):
        if att.ndim != 4 or att.shape[0] != b or att.shape[-2:] != (n, n):
            raise ValueError(f"attentions[{layer}] has shape {tuple(att.shape)}; expected "
                             f"(B={b}, heads, {n}, {n}) like attentions[0]")
        _check_softmax_rows(att, f"attentions[{layer}]")
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


def _check_softmax_rows(att: torch.Tensor, name: str) -> None:
    """Attention weights: finite, >= 0, every row summing to 1 (within float rounding). One device sync."""
    if not att.is_floating_point():
        raise ValueError(f"{name} has dtype {att.dtype}; attention weights are floats (rows summing to 1)")
    if att.numel() == 0:
        return
    tol = 1e-3 if torch.finfo(att.dtype).bits >= 32 else 2e-2
    a = att.detach().to(torch.float32)
    sums = a.sum(dim=-1)
    lo, hi, low, finite = torch.stack([sums.min(), sums.max(), a.min(),
                                       torch.isfinite(a).all().to(torch.float32)]).tolist()
    if not finite:
        raise ValueError(f"{name} holds NaN or infinite values; pass attention weights (each row a softmax)")
    if low < -tol or lo < 1 - tol or hi > 1 + tol:
        raise ValueError(f"{name} is not a map of attention weights: its rows sum to {lo:.4g} .. {hi:.4g} "
                         f"(smallest value {low:.4g}), where a softmax's rows are >= 0 and sum to 1. Scores "
                         "before the softmax, dropped-out weights (a model in train() mode) or averaged rows "
                         "do not roll out; pass the weights recorded in eval mode (record_attention)")


def _grid(grid_size: Size2, n_tokens: int) -> tuple[int, int]:
    from .checks import pair

    gh, gw = pair(grid_size, "grid_size")
    if gh * gw != n_tokens - 1:
        raise ValueError(f"grid_size={grid_size!r} gives {gh * gw} patches but the maps have {n_tokens} "
                         f"tokens (1 [CLS] + {n_tokens - 1} patches); pass model.grid_size")
    return gh, gw


def cls_attention_map(attention: torch.Tensor, grid_size: Size2) -> torch.Tensor:
    """One layer's [CLS] -> patch attention per head, on the patch grid: (B, nh, N, N) -> (B, nh, gh, gw)."""
    from .checks import check_tensor

    check_tensor(attention, "attention", "cls_attention_map", "(B, heads, N, N)")
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


def token_maps(model: nn.Module, x: torch.Tensor, run: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``model`` (or ``run``, e.g. ``model.forward_features``) on ``x`` while recording ``model``:
    ``(output, [token map (B, heads, N, N) per layer, first first])``, with the maps in the autograd graph.

    This is what ``VisionTransformer.forward(x, return_attention=True)`` returns.
    """
    with record_attention(model, detach=False, allow_training=True) as record:
        out = (run or model)(x)
    return out, list(record.of_kind("token").values())


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
