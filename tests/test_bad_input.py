"""Acceptance spec of issue 11: bad input never gives a silently wrong answer.

Run it alone with ``python -m pytest -m badinput tests/test_bad_input.py -q``.

Conventions every row of the table checks (decided here, for the whole public API):

* ``TypeError``: the argument is not of an accepted Python type (a list, a NumPy array or a str where a
  tensor or a module is needed, a str where a number is needed, a ResNet where a ViT is needed).
* ``ValueError``: the type is right but the value is not: a number out of range, a tensor of the wrong
  dtype, shape or layout (e.g. channels-last), a float 0/1 mask, a file whose *content* is wrong
  (truncated, empty, not a checkpoint, another architecture, a hash mismatch, damaged JSON). A
  course-specific error for checkpoints may subclass ``ValueError``.
* ``FileNotFoundError`` for a path that does not exist; ``OSError`` (``IsADirectoryError``,
  ``NotADirectoryError``, ``PermissionError``...) for a path that exists but cannot be read or written
  as a file.
* ``KeyError`` for an unknown name in a registry (bundled models, exercise ids).
* ``RuntimeError`` for a valid device that is not available on this machine (CUDA, MPS).
* The command lines raise ``SystemExit`` with a non-zero code; the message is in the exception or on stderr.
* ``exercises.check()`` is documented never to raise: for a wrong answer *object* (None, a name, an
  instance instead of a class...) it returns a failed result whose feedback says what was given and what
  is expected (rows with ``exc=None``). Usage errors of ``hint`` raise.

A message must contain, case-insensitively, every fragment of its row: the parameter's name, the
offending value (or its dtype / shape), and a word of what is accepted. A fragment given as a tuple is
satisfied by any one of its alternatives.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import pytest
import torch
from torch import nn

from course_pkg import attention as att
from course_pkg import (
    attention_maps,
    bundled,
    cbam,
    checkpoint,
    checkpoint_manifest,
    cnn,
    data,
    datasets,
    env,
    model_registry,
    photos,
    plotting,
    resnet,
    squeeze_excite,
    train,
    vit,
    viz,
    weights,
    widgets,
)
from course_pkg import exercises as exmod
from course_pkg.cli import train as train_cli
from course_pkg.exercises import ch01, ch02, ch04
from course_pkg.to_device import to_device
from course_pkg.train.history import History
from course_pkg.train.optim import cosine_schedule, param_groups
from course_pkg.train.step import train_step

pytestmark = pytest.mark.badinput

Fragment = Union[str, tuple[str, ...]]
NO_CUDA = not torch.cuda.is_available()
HAS_MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


@dataclass
class Row:
    id: str
    call: Callable[[Path], Any]
    exc: Optional[type[BaseException] | tuple[type[BaseException], ...]]
    fragments: tuple[Fragment, ...]
    skip: Optional[str] = None
    kind: str = "boundary (issue 11)"


CASES: list[Row] = []
N_WORD = r"re:\bn\b"


def xname(owner: str) -> tuple[str, str]:
    """The input's name: the parameter ``x`` as a word, or the module / function that rejects it."""
    return (r"re:\bx\b", owner)


def row(
    id: str,
    call: Callable[[Path], Any],
    exc: Any,
    *fragments: Fragment,
    skip: Optional[str] = None,
    kind: Optional[str] = None,
) -> None:
    assert id not in {r.id for r in CASES}, id
    CASES.append(Row(id, call, exc, fragments, skip, kind or "boundary (issue 11)"))


# ---------------------------------------------------------------------------------------------------
# small shared objects (built once; all models in eval mode and never mutated by a row)
# ---------------------------------------------------------------------------------------------------
@functools.cache
def mhsa() -> nn.Module:
    torch.manual_seed(0)
    return att.MultiHeadSelfAttention(16, 4).eval()


@functools.cache
def se() -> nn.Module:
    return squeeze_excite.SqueezeExcitation(16, reduction=4).eval()


@functools.cache
def cbam_m() -> nn.Module:
    return cbam.CBAM(16, reduction=4).eval()


@functools.cache
def chan_att() -> nn.Module:
    return cbam.ChannelAttention(16, reduction=4).eval()


@functools.cache
def spat_att() -> nn.Module:
    return cbam.SpatialAttention().eval()


@functools.cache
def rn() -> nn.Module:
    torch.manual_seed(0)
    return resnet.resnet_small(num_classes=3, widths=(4, 8, 8)).eval()


@functools.cache
def small_vit() -> nn.Module:
    torch.manual_seed(0)
    return vit.VisionTransformer(
        img_size=32, patch_size=8, num_classes=3, embed_dim=16, depth=1, num_heads=2
    ).eval()


@functools.cache
def patch_embed() -> nn.Module:
    return vit.PatchEmbed(img_size=32, patch_size=8, in_chans=3, embed_dim=16).eval()


@functools.cache
def timm_vit(num_heads: int = 6, img_size: Any = 32, tanh: bool = False) -> nn.Module:
    from functools import partial

    from timm.models.vision_transformer import VisionTransformer as TimmViT

    torch.manual_seed(0)
    kw: dict[str, Any] = {}
    if tanh:
        kw["act_layer"] = partial(nn.GELU, approximate="tanh")
    return TimmViT(
        img_size=img_size, patch_size=8, embed_dim=192, depth=1, num_heads=num_heads, num_classes=5, **kw
    ).eval()


@functools.cache
def tv_vit() -> nn.Module:
    from torchvision.models import VisionTransformer as TvViT

    torch.manual_seed(0)
    return TvViT(
        image_size=32, patch_size=8, num_layers=1, num_heads=6, hidden_dim=192, mlp_dim=384, num_classes=5
    ).eval()


def img(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def tokens() -> torch.Tensor:
    return torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))


def tiny_set(n: int = 8, size: int = 24, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return img(n, 3, size, size), torch.arange(n) % classes


def good_ckpt(tmp: Path, name: str = "good.pt") -> Path:
    return checkpoint.save_checkpoint(tmp / name, rn(), {"note": "test"})


def truncated_ckpt(tmp: Path) -> Path:
    p = good_ckpt(tmp)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    return p


def flipped_ckpt(tmp: Path) -> Path:
    p = good_ckpt(tmp)
    raw = bytearray(p.read_bytes())
    for i in range(len(raw) // 3, len(raw) // 3 + 64):
        raw[i] ^= 0xFF
    p.write_bytes(bytes(raw))
    return p


def write(tmp: Path, name: str, content: Union[str, bytes]) -> Path:
    p = tmp / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


SMALLEST_BUNDLED = min(checkpoint_manifest.list_bundled(),
                       key=lambda n: checkpoint_manifest.checkpoint_path(n).stat().st_size)


def bundled_copy(tmp: Path) -> Path:
    """A private copy of the bundled checkpoints folder holding one model and the whole manifest."""
    d = tmp / "ckpts"
    d.mkdir()
    shutil.copy(checkpoint_manifest.checkpoint_path(SMALLEST_BUNDLED),
                d / checkpoint_manifest.get_entry(SMALLEST_BUNDLED)["file"])
    entries = [e for e in checkpoint_manifest.manifest() if e["name"] == SMALLEST_BUNDLED]
    (d / "manifest.json").write_text(json.dumps(entries))
    return d


def swapped_file_in_manifest_dir(tmp: Path) -> Path:
    """A folder whose manifest records a SHA-256 for a file that has since been replaced."""
    d = bundled_copy(tmp)
    target = d / checkpoint_manifest.get_entry(SMALLEST_BUNDLED)["file"]
    # save_checkpoint refuses a file the manifest lists (a shipped model): replace it from outside
    other = checkpoint.save_checkpoint(tmp / "other.pt", rn())
    shutil.move(str(other), str(target))
    return target


CLI_BASE = [
    "--model",
    "simple_cnn",
    "--n-train",
    "16",
    "--n-val",
    "8",
    "--n-test",
    "8",
    "--image-size",
    "24",
    "--num-classes",
    "3",
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--device",
    "cpu",
    "--kwargs",
    '{"width": 4}',
    "--no-progress",
    "--quiet",
]


def cli(*extra: str) -> Callable[[Path], Any]:
    return lambda t: train_cli.main([*CLI_BASE, *extra])


def cli_out(make: Callable[[Path], Path], *extra: str) -> Callable[[Path], Any]:
    return lambda t: train_cli.main([*CLI_BASE, "--out", str(make(t)), *extra])


def a_dir(t: Path) -> Path:
    (t / "outdir").mkdir()
    return t / "outdir"


def under_file(t: Path) -> Path:
    write(t, "afile", "x")
    return t / "afile" / "model.pt"


def mlp_check(tmp: Path, ex: Any, answer: Any) -> Any:
    return ex.check(answer)


# ===================================================================================================
# attention
# ===================================================================================================
M = mhsa
row(
    "mhsa-float-01-mask",
    lambda t: M()(tokens(), mask=torch.tril(torch.ones(5, 5))),
    ValueError,
    "mask",
    "float",
    "bool",
)
row(
    "mhsa-float-01-mask-3d",
    lambda t: M()(tokens(), mask=torch.tril(torch.ones(5, 5)).expand(1, 5, 5)),
    ValueError,
    "mask",
    "float",
    "bool",
)
row(
    "mhsa-float-01-mask-4d",
    lambda t: M()(tokens(), mask=torch.ones(2, 1, 5, 5)),
    ValueError,
    "mask",
    "float",
    "bool",
)
row(
    "mhsa-int-mask",
    lambda t: M()(tokens(), mask=torch.ones(5, 5, dtype=torch.long)),
    ValueError,
    "mask",
    "int64",
    "bool",
)
row("mhsa-list-mask", lambda t: M()(tokens(), mask=[[True] * 5] * 5), TypeError, "mask", "list", "tensor")
row(
    "mhsa-numpy-mask",
    lambda t: M()(tokens(), mask=np.ones((5, 5), bool)),
    TypeError,
    "mask",
    "ndarray",
    "tensor",
)
row(
    "mhsa-mask-wrong-n",
    lambda t: M()(tokens(), mask=torch.ones(6, 6, dtype=torch.bool)),
    ValueError,
    "mask",
    "(6, 6)",
    "(5, 5)",
)
row(
    "mhsa-mask-bnn-b3",
    lambda t: M()(tokens(), mask=torch.ones(3, 5, 5, dtype=torch.bool)),
    ValueError,
    "mask",
    "(3, 5, 5)",
    "(B",
)
row(
    # (B, N, N) with B == heads but a batch of 2: per head or per sample, it cannot be right
    "mhsa-mask-b-eq-heads-3d",
    lambda t: M()(tokens(), mask=torch.ones(4, 5, 5, dtype=torch.bool)),
    ValueError,
    "mask",
    "(4, 5, 5)",
    ("(B, 1, N, N)", "(B, 1, Nq, Nk)", "unsqueeze(1)"),
)
row(
    "mhsa-x-2d",
    lambda t: M()(torch.randn(5, 16)),
    ValueError,
    xname("MultiHeadSelfAttention"),
    "(5, 16)",
    ("(B, N", "batch B"),
)
row(
    "mhsa-x-4d-image",
    lambda t: M()(img(2, 16, 4, 4)),
    ValueError,
    xname("MultiHeadSelfAttention"),
    "(2, 16, 4, 4)",
    ("(B, N", "batch B"),
)
row(
    "mhsa-x-wrong-dim",
    lambda t: M()(torch.randn(2, 5, 8)),
    ValueError,
    xname("MultiHeadSelfAttention"),
    "8",
    "16",
)
row(
    "mhsa-x-float64",
    lambda t: M()(tokens().double()),
    ValueError,
    xname("MultiHeadSelfAttention"),
    "float64",
    "float32",
)
row(
    "mhsa-x-int",
    lambda t: M()(torch.ones(2, 5, 16, dtype=torch.long)),
    ValueError,
    xname("MultiHeadSelfAttention"),
    "int64",
    "float",
)
row(
    "mhsa-x-numpy",
    lambda t: M()(tokens().numpy()),
    TypeError,
    xname("MultiHeadSelfAttention"),
    "ndarray",
    "tensor",
)
row(
    "mhsa-x-list",
    lambda t: M()(tokens().tolist()),
    TypeError,
    xname("MultiHeadSelfAttention"),
    "list",
    "tensor",
)
row(
    "mhsa-heads-not-divisor",
    lambda t: att.MultiHeadSelfAttention(16, 5),
    ValueError,
    "num_heads",
    "5",
    "divi",
)
row("mhsa-heads-zero", lambda t: att.MultiHeadSelfAttention(16, 0), ValueError, "num_heads", "0", "positive")
row("mhsa-dim-str", lambda t: att.MultiHeadSelfAttention("16", 4), TypeError, "dim", "'16'", "int")
row(
    "mhsa-attn-drop-1.5",
    lambda t: att.MultiHeadSelfAttention(16, 4, attn_drop=1.5),
    ValueError,
    "attn_drop",
    "1.5",
    "[0, 1)",
)
row(
    "mhsa-proj-drop-neg",
    lambda t: att.MultiHeadSelfAttention(16, 4, proj_drop=-0.1),
    ValueError,
    "proj_drop",
    "-0.1",
    "[0, 1)",
)
Q = torch.randn(2, 5, 8)
row(
    "sdpa-float-01-mask",
    lambda t: att.scaled_dot_product_attention(Q, Q, Q, mask=torch.tril(torch.ones(5, 5))),
    ValueError,
    "mask",
    "float",
    "bool",
)
row(
    "sdpa-int-mask",
    lambda t: att.scaled_dot_product_attention(Q, Q, Q, mask=torch.ones(5, 5, dtype=torch.int)),
    ValueError,
    "mask",
    "int32",
    "bool",
)
row(
    "sdpa-d-mismatch",
    lambda t: att.scaled_dot_product_attention(Q, torch.randn(2, 5, 4), Q),
    ValueError,
    "q",
    "k",
    "(2, 5, 4)",
)
row(
    "sdpa-nk-mismatch",
    lambda t: att.scaled_dot_product_attention(Q, Q, torch.randn(2, 6, 8)),
    ValueError,
    "v",
    "(2, 6, 8)",
    "Nk",
)
row(
    "sdpa-dropout-1",
    lambda t: att.scaled_dot_product_attention(Q, Q, Q, dropout_p=1.0),
    ValueError,
    "dropout_p",
    "1.0",
    "[0, 1)",
)
row(
    "sdpa-q-numpy",
    lambda t: att.scaled_dot_product_attention(Q.numpy(), Q, Q),
    TypeError,
    r"re:\bq\b",
    "ndarray",
    "tensor",
)
row(
    "sdpa-q-list",
    lambda t: att.scaled_dot_product_attention(Q.tolist(), Q, Q),
    TypeError,
    r"re:\bq\b",
    "list",
    "tensor",
)
row(
    "sdpa-dtype-mix",
    lambda t: att.scaled_dot_product_attention(Q.double(), Q, Q),
    ValueError,
    "float64",
    "float32",
    "dtype",
)
row(
    "sdpa-q-1d",
    lambda t: att.scaled_dot_product_attention(torch.randn(8), Q, Q),
    ValueError,
    r"re:\bq\b",
    "(8,)",
    "(..., N, d)",
)
row(
    "sdpa-mask-wrong-shape",
    lambda t: att.scaled_dot_product_attention(Q, Q, Q, mask=torch.ones(4, 4, dtype=torch.bool)),
    ValueError,
    "mask",
    "(4, 4)",
    "(5, 5)",
)
row("causal-mask-zero", lambda t: att.causal_mask(0), ValueError, N_WORD, "0", "positive")
row("causal-mask-float", lambda t: att.causal_mask(5.0), ValueError, N_WORD, "5.0", "integer")
row("causal-mask-str", lambda t: att.causal_mask("5"), TypeError, N_WORD, "'5'", "int")
row("causal-mask-tensor-n", lambda t: att.causal_mask(torch.ones(5, 5)), TypeError, N_WORD, "tensor", "int")

# ===================================================================================================
# squeeze-excite, CBAM: channels-last, dtypes, containers, construction
# ===================================================================================================
CL_WORD = ("channels-last", "(b, h, w, c)")
for name, make, cls in [
    ("se", se, "SqueezeExcitation"),
    ("cbam", cbam_m, "CBAM"),
    ("chan", chan_att, "ChannelAttention"),
]:
    row(
        f"{name}-channels-last",
        lambda t, m=make: m()(img(2, 8, 8, 16)),
        ValueError,
        "(2, 8, 8, 16)",
        CL_WORD,
        "16",
    )
    row(f"{name}-wrong-channels", lambda t, m=make: m()(img(2, 8, 5, 5)), ValueError, "channels", "8", "16")
    row(
        f"{name}-3d",
        lambda t, m=make: m()(img(16, 5, 5)),
        ValueError,
        "(16, 5, 5)",
        "(B, C, H, W)",
        "unsqueeze(0)",
    )
    row(
        f"{name}-float64",
        lambda t, m=make: m()(img(2, 16, 5, 5).double()),
        ValueError,
        xname(cls),
        "float64",
        "float32",
    )
    row(
        f"{name}-uint8",
        lambda t, m=make: m()((img(2, 16, 5, 5) * 255).to(torch.uint8)),
        ValueError,
        xname(cls),
        "uint8",
        "float",
    )
    row(
        f"{name}-numpy",
        lambda t, m=make: m()(img(2, 16, 5, 5).numpy()),
        TypeError,
        xname(cls),
        "ndarray",
        "tensor",
    )
    row(
        f"{name}-list",
        lambda t, m=make: m()(img(2, 16, 5, 5).tolist()),
        TypeError,
        xname(cls),
        "list",
        "tensor",
    )
row(
    "spatial-float64",
    lambda t: spat_att()(img(2, 16, 5, 5).double()),
    ValueError,
    xname("SpatialAttention"),
    "float64",
    "float32",
)
row(
    "spatial-uint8",
    lambda t: spat_att()((img(2, 16, 5, 5) * 255).to(torch.uint8)),
    ValueError,
    xname("SpatialAttention"),
    "uint8",
    "float",
)
row(
    "spatial-numpy",
    lambda t: spat_att()(img(2, 16, 5, 5).numpy()),
    TypeError,
    xname("SpatialAttention"),
    "ndarray",
    "tensor",
)
row(
    "spatial-list",
    lambda t: spat_att()(img(2, 16, 5, 5).tolist()),
    TypeError,
    xname("SpatialAttention"),
    "list",
    "tensor",
)
row(
    "spatial-3d",
    lambda t: spat_att()(img(16, 5, 5)),
    ValueError,
    "(16, 5, 5)",
    "(B, C, H, W)",
    "unsqueeze(0)",
)
row(
    "spatial-kernel-even",
    lambda t: cbam.SpatialAttention(kernel_size=4),
    ValueError,
    "kernel_size",
    "4",
    "odd",
)
row(
    "spatial-kernel-zero",
    lambda t: cbam.SpatialAttention(kernel_size=0),
    ValueError,
    "kernel_size",
    "0",
    "odd",
)
row(
    "se-channels-zero", lambda t: squeeze_excite.SqueezeExcitation(0), ValueError, "channels", "0", "positive"
)
row("se-channels-str", lambda t: squeeze_excite.SqueezeExcitation("16"), TypeError, "channels", "'16'", "int")
row(
    "se-reduction-zero",
    lambda t: squeeze_excite.SqueezeExcitation(16, reduction=0),
    ValueError,
    "reduction",
    "0",
    "positive",
)
row(
    "se-hidden-zero",
    lambda t: squeeze_excite.SqueezeExcitation(16, hidden_channels=0),
    ValueError,
    "hidden_channels",
    "0",
    "positive",
)
row("cbam-channels-neg", lambda t: cbam.CBAM(-4), ValueError, "channels", "-4", "positive")
row("cbam-kernel-even", lambda t: cbam.CBAM(16, kernel_size=6), ValueError, "kernel_size", "6", "odd")
row(
    "chan-reduction-zero",
    lambda t: cbam.ChannelAttention(16, reduction=0),
    ValueError,
    "reduction",
    "0",
    "positive",
)

# ===================================================================================================
# ResNets
# ===================================================================================================
row(
    "resnet-channels-last",
    lambda t: rn()(img(2, 32, 32, 3)),
    ValueError,
    "(2, 32, 32, 3)",
    CL_WORD,
    "in_chans=3",
)
row("resnet-channels-last-no-wrong-advice", lambda t: rn()(img(2, 32, 32, 3)), ValueError, CL_WORD, "permute")
row("resnet-gray", lambda t: rn()(img(2, 1, 32, 32)), ValueError, "in_chans", "1", "3")
row("resnet-3d", lambda t: rn()(img(3, 32, 32)), ValueError, "(3, 32, 32)", "(B, C, H, W)", "unsqueeze(0)")
row(
    "resnet-float64",
    lambda t: rn()(img(2, 3, 32, 32).double()),
    ValueError,
    xname("ResNet"),
    "float64",
    "float32",
)
row(
    "resnet-uint8",
    lambda t: rn()((img(2, 3, 32, 32) * 255).to(torch.uint8)),
    ValueError,
    xname("ResNet"),
    "uint8",
    "float",
)
row(
    "resnet-numpy", lambda t: rn()(img(2, 3, 32, 32).numpy()), TypeError, xname("ResNet"), "ndarray", "tensor"
)
row("resnet-list", lambda t: rn()(img(2, 3, 32, 32).tolist()), TypeError, xname("ResNet"), "list", "tensor")
row(
    "resnet-attention-typo",
    lambda t: resnet.resnet_small(attention="senet"),
    ValueError,
    "attention",
    "senet",
    "cbam",
)
row(
    "resnet-attention-bool",
    lambda t: resnet.resnet_small(attention=True),
    TypeError,
    "attention",
    "True",
    "cbam",
)
row(
    "resnet-num-classes-zero",
    lambda t: resnet.resnet_small(num_classes=0),
    ValueError,
    "num_classes",
    "0",
    "positive",
)
row(
    "resnet-num-classes-str",
    lambda t: resnet.resnet18(num_classes="10"),
    TypeError,
    "num_classes",
    "'10'",
    "int",
)
row(
    "resnet-in-chans-zero", lambda t: resnet.resnet_small(in_chans=0), ValueError, "in_chans", "0", "positive"
)
row(
    "resnet-widths-blocks",
    lambda t: resnet.resnet_small(widths=(8, 16), blocks=(1, 1, 1)),
    ValueError,
    "widths",
    "blocks",
    "same length",
)
row(
    "resnet-reduction-zero",
    lambda t: resnet.resnet_small(attention="se", reduction=0),
    ValueError,
    "reduction",
    "0",
    "positive",
)
row(
    "resnet50-attention-typo",
    lambda t: resnet.resnet50(attention="CBAM2"),
    ValueError,
    "attention",
    "CBAM2",
    "se",
)

# ===================================================================================================
# ViT: construction, inputs, conversions, rollout
# ===================================================================================================
V = small_vit
row("vit-channels-last", lambda t: V()(img(2, 32, 32, 3)), ValueError, "(2, 32, 32, 3)", CL_WORD, "in_chans")
row(
    "vit-wrong-size",
    lambda t: V()(img(2, 3, 16, 16)),
    ValueError,
    ("(2, 3, 16, 16)", "16x16"),
    "img_size",
    "32",
)
row(
    "vit-float64",
    lambda t: V()(img(2, 3, 32, 32).double()),
    ValueError,
    xname("VisionTransformer"),
    "float64",
    "float32",
)
row(
    "vit-uint8",
    lambda t: V()((img(2, 3, 32, 32) * 255).to(torch.uint8)),
    ValueError,
    xname("VisionTransformer"),
    "uint8",
    "float",
)
row(
    "vit-numpy",
    lambda t: V()(img(2, 3, 32, 32).numpy()),
    TypeError,
    xname("VisionTransformer"),
    "ndarray",
    "tensor",
)
row(
    "vit-list",
    lambda t: V()(img(2, 3, 32, 32).tolist()),
    TypeError,
    xname("VisionTransformer"),
    "list",
    "tensor",
)
row("vit-3d", lambda t: V()(img(3, 32, 32)), ValueError, "(3, 32, 32)", "(B, C, H, W)", "unsqueeze(0)")
row(
    "patchembed-channels-last",
    lambda t: patch_embed()(img(2, 32, 32, 3)),
    ValueError,
    "(2, 32, 32, 3)",
    CL_WORD,
    "in_chans",
)
row(
    "patchembed-float64",
    lambda t: patch_embed()(img(2, 3, 32, 32).double()),
    ValueError,
    xname("PatchEmbed"),
    "float64",
    "float32",
)
row(
    "patchembed-uint8",
    lambda t: patch_embed()((img(2, 3, 32, 32) * 255).to(torch.uint8)),
    ValueError,
    xname("PatchEmbed"),
    "uint8",
    "float",
)
row(
    "patchembed-numpy",
    lambda t: patch_embed()(img(2, 3, 32, 32).numpy()),
    TypeError,
    xname("PatchEmbed"),
    "ndarray",
    "tensor",
)
row(
    "patchembed-list",
    lambda t: patch_embed()(img(2, 3, 32, 32).tolist()),
    TypeError,
    xname("PatchEmbed"),
    "list",
    "tensor",
)
row(
    "patchembed-in-chans-zero",
    lambda t: vit.PatchEmbed(32, 8, in_chans=0, embed_dim=16),
    ValueError,
    "in_chans",
    "0",
    "positive",
)
row(
    "patchembed-not-divisible",
    lambda t: vit.PatchEmbed(30, 8, embed_dim=16),
    ValueError,
    "patch_size",
    "8",
    "divi",
)
row(
    "patchembed-patch-zero",
    lambda t: vit.PatchEmbed(32, 0, embed_dim=16),
    ValueError,
    "patch_size",
    "0",
    "positive",
)
row(
    "vit-heads-not-divisor",
    lambda t: vit.VisionTransformer(32, 8, embed_dim=30, depth=1, num_heads=4),
    ValueError,
    "num_heads",
    "4",
    "divi",
)
row(
    "vit-mlp-ratio-tiny",
    lambda t: vit.VisionTransformer(32, 8, embed_dim=16, depth=1, num_heads=2, mlp_ratio=0.01),
    ValueError,
    "mlp_ratio",
    "0.01",
    "positive",
)
row(
    "vit-depth-zero",
    lambda t: vit.VisionTransformer(32, 8, embed_dim=16, depth=0, num_heads=2),
    ValueError,
    "depth",
    "0",
    "positive",
)
row(
    "vit-global-pool",
    lambda t: vit.VisionTransformer(32, 8, embed_dim=16, depth=1, num_heads=2, global_pool="max"),
    ValueError,
    "global_pool",
    "max",
    "token",
)
row(
    "vit-drop-rate",
    lambda t: vit.VisionTransformer(32, 8, embed_dim=16, depth=1, num_heads=2, drop_rate=1.0),
    ValueError,
    "drop_rate",
    "1.0",
    "[0, 1)",
)
row(
    "vit-img-str",
    lambda t: vit.VisionTransformer("32", 8, embed_dim=16, depth=1, num_heads=2),
    TypeError,
    "img_size",
    "'32'",
    "int",
)
row(
    "from-timm-sd-heads",
    lambda t: weights.from_timm(timm_vit().state_dict()),
    ValueError,
    "num_heads",
    "state dict",
    ("num_heads=", "pass"),
)
row(
    "from-timm-sd-img-size",
    lambda t: weights.from_timm(timm_vit(6, (16, 64)).state_dict(), num_heads=6),
    ValueError,
    "img_size",
    "state dict",
    ("img_size=", "pass"),
)
row(
    "from-timm-resnet",
    lambda t: weights.from_timm(rn()),
    TypeError,
    "model_or_state_dict",
    "ResNet",
    "VisionTransformer",
)
row(
    "from-timm-name",
    lambda t: weights.from_timm("vit_small_patch16_224"),
    TypeError,
    "model_or_state_dict",
    "vit_small_patch16_224",
    "load_pretrained_timm",
)
row("from-timm-none", lambda t: weights.from_timm(None), TypeError, "model_or_state_dict", "None", "module")
row(
    "from-timm-contradicting-override",
    lambda t: weights.from_timm(timm_vit(), num_heads=3),
    ValueError,
    "num_heads",
    "3",
    "6",
)
row(
    "from-tv-sd-heads",
    lambda t: weights.from_torchvision(tv_vit().state_dict()),
    ValueError,
    "num_heads",
    "state dict",
    ("num_heads=", "pass"),
)
row(
    "from-tv-resnet",
    lambda t: weights.from_torchvision(rn()),
    TypeError,
    "model_or_state_dict",
    "ResNet",
    "VisionTransformer",
)
row(
    "from-tv-name",
    lambda t: weights.from_torchvision("vit_b_16"),
    TypeError,
    "model_or_state_dict",
    "vit_b_16",
    "torchvision.models",
)
ATTS = [torch.softmax(torch.randn(1, 2, 17, 17), -1)]
row(
    "rollout-grid-mismatch",
    lambda t: attention_maps.cls_rollout_map(ATTS, (3, 3)),
    ValueError,
    "grid_size",
    "(3, 3)",
    "16",
)
row(
    "rollout-empty",
    lambda t: attention_maps.cls_rollout_map([], (4, 4)),
    ValueError,
    "attentions",
    "empty",
    ("one", "list returned"),
)
row(
    "rollout-head-fusion",
    lambda t: attention_maps.cls_rollout_map(ATTS, (4, 4), head_fusion="median"),
    ValueError,
    "head_fusion",
    "median",
    "mean",
)
row(
    "rollout-discard-ratio",
    lambda t: attention_maps.cls_rollout_map(ATTS, (4, 4), discard_ratio=1.5),
    ValueError,
    "discard_ratio",
    "1.5",
    "[0, 1)",
)
row(
    "rollout-tensor-not-list-3d",
    lambda t: attention_maps.cls_rollout_map([torch.rand(17, 17)], (4, 4)),
    ValueError,
    "attentions",
    "(17, 17)",
    ("(B, H, N, N)", "(B, heads, N, N)"),
)
row(
    "rollout-numpy",
    lambda t: attention_maps.cls_rollout_map([ATTS[0].numpy()], (4, 4)),
    TypeError,
    "attentions",
    "ndarray",
    "tensor",
)

# ===================================================================================================
# data
# ===================================================================================================
row(
    "normalize-uint8",
    lambda t: photos.normalize_imagenet((img(3, 8, 8) * 255).to(torch.uint8)),
    ValueError,
    xname("normalize_imagenet"),
    "uint8",
    ("float", "/ 255"),
)
row(
    "normalize-0-255",
    lambda t: photos.normalize_imagenet(img(3, 8, 8) * 255),
    ValueError,
    xname("normalize_imagenet"),
    "255",
    "[0, 1]",
)
row(
    "normalize-channels-last",
    lambda t: photos.normalize_imagenet(img(8, 8, 3)),
    ValueError,
    "(8, 8, 3)",
    CL_WORD,
    "3",
)
row(
    "normalize-gray",
    lambda t: photos.normalize_imagenet(img(2, 1, 8, 8)),
    ValueError,
    "(2, 1, 8, 8)",
    "3",
    "channel",
)
row(
    "normalize-numpy",
    lambda t: photos.normalize_imagenet(img(3, 8, 8).numpy()),
    TypeError,
    xname("normalize_imagenet"),
    "ndarray",
    "tensor",
)
row(
    "normalize-list",
    lambda t: photos.normalize_imagenet(img(3, 8, 8).tolist()),
    TypeError,
    xname("normalize_imagenet"),
    "list",
    "tensor",
)
row(
    "denormalize-uint8",
    lambda t: photos.denormalize_imagenet(torch.zeros(3, 8, 8, dtype=torch.uint8)),
    ValueError,
    xname("denormalize_imagenet"),
    "uint8",
    "float",
)
row("clutter-n-zero", lambda t: data.make_clutter(0), ValueError, N_WORD, "0", ("positive", ">= 1"))
row("clutter-n-float", lambda t: data.make_clutter(2.5), ValueError, N_WORD, "2.5", "integer")
row("clutter-n-str", lambda t: data.make_clutter("10"), TypeError, N_WORD, "'10'", "int")
row("clutter-classes-7", lambda t: data.make_clutter(4, num_classes=7), ValueError, "num_classes", "7", "6")
row("clutter-classes-1", lambda t: data.make_clutter(4, num_classes=1), ValueError, "num_classes", "1", "2")
row(
    "clutter-image-size-tiny",
    lambda t: data.make_clutter(4, image_size=4),
    ValueError,
    "image_size",
    "4",
    "24",
)
row(
    "clutter-noise-neg",
    lambda t: data.make_clutter(4, noise=-0.1),
    ValueError,
    "noise",
    "-0.1",
    (">= 0", "from 0"),
)
row(
    "clutter-distractors-reversed",
    lambda t: data.make_clutter(4, distractors=(6, 3)),
    ValueError,
    "distractors",
    "(6, 3)",
    ("low", "lo <= hi"),
)
row(
    "clutter-seed-neg",
    lambda t: data.make_clutter(4, seed=-1),
    ValueError,
    "seed",
    "-1",
    (">= 0", "non-negative"),
)
row("digits-split", lambda t: data.load_digits("val"), ValueError, "split", "val", "test")
row(
    "digits-fraction-tiny",
    lambda t: data.load_digits(test_fraction=0.001),
    ValueError,
    "test_fraction",
    "0.001",
    ("between", "at least"),
)
row(
    "digits-fraction-one",
    lambda t: data.load_digits(test_fraction=1.0),
    ValueError,
    "test_fraction",
    "1.0",
    ("(0, 1)", "between 0 and 1"),
)
row(
    "digits-fraction-str",
    lambda t: data.load_digits(test_fraction="0.2"),
    TypeError,
    "test_fraction",
    "'0.2'",
    ("number", "float"),
)
row("photo-unknown", lambda t: photos.load_photo("dog"), ValueError, "name", "dog", "cat")
row("photo-size-zero", lambda t: photos.load_photo("cat", size=0), ValueError, "size", "0", "positive")
row(
    "photo-size-triple",
    lambda t: photos.load_photo("cat", size=(8, 8, 3)),
    ValueError,
    "size",
    "(8, 8, 3)",
    ("(H, W)", "(height, width)"),
)
row("photo-size-str", lambda t: photos.load_photo("cat", size="64"), TypeError, "size", "'64'", "int")
row(
    "dataset-label-count",
    lambda t: datasets.ImageDataset(img(4, 3, 8, 8), torch.zeros(5, dtype=torch.long)),
    ValueError,
    "labels",
    "5",
    "4",
)
row(
    "dataset-float-labels",
    lambda t: datasets.ImageDataset(img(4, 3, 8, 8), torch.zeros(4)),
    ValueError,
    "labels",
    "float32",
    "int",
)
row(
    "dataset-labels-2d",
    lambda t: datasets.ImageDataset(img(4, 3, 8, 8), torch.zeros(4, 1, dtype=torch.long)),
    ValueError,
    "labels",
    ("(4, 1)", "[4, 1]"),
    ("(N,)", "(4,)"),
)
row(
    "dataset-images-3d",
    lambda t: datasets.ImageDataset(img(4, 8, 8), torch.zeros(4, dtype=torch.long)),
    ValueError,
    "images",
    ("(4, 8, 8)", "[4, 8, 8]"),
    "(N, C, H, W)",
)
row(
    "dataset-images-numpy",
    lambda t: datasets.ImageDataset(img(4, 3, 8, 8).numpy(), torch.zeros(4, dtype=torch.long)),
    TypeError,
    "images",
    "ndarray",
    "tensor",
)
row(
    "dataset-images-list",
    lambda t: datasets.ImageDataset(img(4, 3, 8, 8).tolist(), torch.zeros(4, dtype=torch.long)),
    TypeError,
    "images",
    "list",
    "tensor",
)
row(
    "dataset-transform-not-callable",
    lambda t: datasets.ImageDataset(img(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), transform="flip"),
    TypeError,
    "transform",
    "str",
    "callable",
)
row(
    "dataset-mask-count",
    lambda t: datasets.ImageDataset(
        img(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), masks=torch.ones(3, 8, 8, dtype=torch.bool)
    ),
    ValueError,
    "masks",
    "(3, 8, 8)",
    "(4, 8, 8)",
)
row(
    "dataset-return-mask-without",
    lambda t: datasets.ImageDataset(img(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), return_mask=True),
    ValueError,
    "return_mask",
    "masks",
    ("None", "needs"),
)


# ===================================================================================================
# train: fit / evaluate / checkpoints / CLI
# ===================================================================================================
def _fit(t: Path, **kw: Any) -> Any:
    model = cnn.simple_cnn(num_classes=3, width=4)
    args = dict(epochs=1, batch_size=4, progress=False, device="cpu")
    args.update(kw)
    val = args.pop("val_data", None)
    train_data = args.pop("train_data", tiny_set())
    return train.fit(model, train_data, val, **args)


EMPTY = (torch.zeros(0, 3, 24, 24), torch.zeros(0, dtype=torch.long))
row("fit-empty-val", lambda t: _fit(t, val_data=EMPTY), ValueError, "val_data", "empty", "None")
row("fit-empty-train", lambda t: _fit(t, train_data=EMPTY), ValueError, "train_data", "empty", "nothing")
row("fit-epochs-zero", lambda t: _fit(t, epochs=0), ValueError, "epochs", "0", "integer")
row("fit-epochs-float", lambda t: _fit(t, epochs=2.5), ValueError, "epochs", "2.5", "integer")
row("fit-batch-zero", lambda t: _fit(t, batch_size=0), ValueError, "batch_size", "0", "integer")
row("fit-lr-zero", lambda t: _fit(t, lr=0), ValueError, "lr", "0", "positive")
row("fit-lr-neg", lambda t: _fit(t, lr=-1e-3), ValueError, "lr", "-0.001", "positive")
row("fit-smoothing-1", lambda t: _fit(t, label_smoothing=1.0), ValueError, "label_smoothing", "1.0", "[0, 1)")
row("fit-grad-clip-zero", lambda t: _fit(t, grad_clip=0), ValueError, "grad_clip", "0", "positive")
row("fit-amp-typo", lambda t: _fit(t, amp="fp32"), ValueError, "amp", "fp32", "bf16")
row(
    "fit-model-str",
    lambda t: train.fit("resnet_small", tiny_set(), epochs=1),
    TypeError,
    "model",
    "str",
    "Module",
)
row("fit-data-list", lambda t: _fit(t, train_data=[1, 2, 3]), TypeError, "train_data", "list", "Dataset")
row(
    "fit-labels-mismatch",
    lambda t: _fit(t, train_data=(img(8, 3, 24, 24), torch.zeros(7, dtype=torch.long))),
    ValueError,
    ("train_data", "labels"),
    "8",
    "7",
)
row(
    "fit-device-cuda",
    lambda t: _fit(t, device="cuda"),
    RuntimeError,
    "device",
    "cuda",
    "cpu",
    skip=None if NO_CUDA else "CUDA is available here",
)
row("fit-device-tpu", lambda t: _fit(t, device="tpu"), ValueError, "device", "tpu", "cuda")
row(
    "fit-callback-not-callable", lambda t: _fit(t, callback="print"), TypeError, "callback", "str", "callable"
)
row("evaluate-empty", lambda t: train.evaluate(rn(), EMPTY), ValueError, "data", "empty", "nothing")
row(
    "evaluate-batch-zero",
    lambda t: train.evaluate(rn(), tiny_set(4, 32), batch_size=0),
    ValueError,
    "batch_size",
    "0",
    "positive",
)
row("evaluate-model-none", lambda t: train.evaluate(None, tiny_set()), TypeError, "model", "None", "Module")
row(
    "evaluate-device-tpu",
    lambda t: train.evaluate(rn(), tiny_set(4, 32), device="tpu"),
    ValueError,
    "device",
    "tpu",
    "cpu",
)
row("save-ckpt-dir", lambda t: checkpoint.save_checkpoint(a_dir(t), rn()), OSError, "path", "outdir", "directory")
row(
    "save-ckpt-under-file",
    lambda t: checkpoint.save_checkpoint(under_file(t), rn()),
    OSError,
    "path",
    "afile",
    "not a directory",
)
row(
    "save-ckpt-model-str",
    lambda t: checkpoint.save_checkpoint(t / "m.pt", "resnet_small"),
    TypeError,
    "model",
    "str",
    "Module",
)
row(
    "save-ckpt-dtype-int",
    lambda t: checkpoint.save_checkpoint(t / "m.pt", rn(), dtype=torch.int8),
    ValueError,
    "dtype",
    "int8",
    "float",
)
row(
    "save-ckpt-meta-tensor",
    lambda t: checkpoint.save_checkpoint(t / "m.pt", rn(), {"w": torch.ones(1)}),
    TypeError,
    "meta",
    "Tensor",
    "str",
)
row(
    "load-ckpt-missing",
    lambda t: checkpoint.load_checkpoint(t / "nope.pt"),
    FileNotFoundError,
    "path",
    "nope.pt",
    "does not exist",
)
row(
    "load-ckpt-dir",
    lambda t: checkpoint.load_checkpoint(a_dir(t)),
    IsADirectoryError,
    "path",
    "outdir",
    "directory",
)
row(
    "load-ckpt-truncated",
    lambda t: checkpoint.load_checkpoint(truncated_ckpt(t)),
    ValueError,
    "good.pt",
    ("truncated", "incomplete"),
    ("download", "again", "save"),
)
row(
    "load-ckpt-empty",
    lambda t: checkpoint.load_checkpoint(write(t, "empty.pt", b"")),
    ValueError,
    "empty.pt",
    "empty",
    ("0 bytes", "no data"),
)
row(
    "load-ckpt-text",
    lambda t: checkpoint.load_checkpoint(write(t, "notes.pt", "hello, this is text\n")),
    ValueError,
    "notes.pt",
    "not a checkpoint",
    "save_checkpoint",
)
row(
    "load-ckpt-html",
    lambda t: checkpoint.load_checkpoint(write(t, "page.pt", "<!DOCTYPE html><html></html>")),
    ValueError,
    "page.pt",
    ("html", "not a checkpoint"),
    ("download", "save_checkpoint"),
)
row(
    "load-ckpt-flipped",
    lambda t: checkpoint.load_checkpoint(flipped_ckpt(t)),
    ValueError,
    "good.pt",
    ("damaged", "corrupt"),
    ("download", "again"),
)
row(
    "load-ckpt-not-it-may-hold-code",
    lambda t: checkpoint.load_checkpoint(truncated_ckpt(t)),
    ValueError,
    ("truncated", "damaged", "corrupt"),
)
row(
    "load-ckpt-map-cuda",
    lambda t: checkpoint.load_checkpoint(good_ckpt(t), map_location="cuda"),
    RuntimeError,
    "map_location",
    "cuda",
    "cpu",
    skip=None if NO_CUDA else "CUDA is available here",
)
row(
    "load-ckpt-map-tpu",
    lambda t: checkpoint.load_checkpoint(good_ckpt(t), map_location="tpu"),
    ValueError,
    "map_location",
    "tpu",
    "cpu",
)
row(
    "load-ckpt-other-arch",
    lambda t: checkpoint.load_checkpoint(good_ckpt(t), cnn.simple_cnn(3, width=4)),
    ValueError,
    ("architecture", "does not match"),
    "conv1",
    ("missing", "unexpected"),
)
row(
    "load-ckpt-other-classes",
    lambda t: checkpoint.load_checkpoint(good_ckpt(t), resnet.resnet_small(num_classes=5, widths=(4, 8, 8))),
    ValueError,
    "fc.weight",
    "3",
    "5",
)
row(
    "load-ckpt-bad-format-tag",
    lambda t: checkpoint.load_checkpoint(
        (
            torch.save({"format": "someone-else/9", "state_dict": rn().state_dict(), "meta": {}}, t / "f.pt"),
            t / "f.pt",
        )[1]
    ),
    ValueError,
    "format",
    "someone-else/9",
    "course",
)
row(
    "load-ckpt-hash-mismatch",
    lambda t: checkpoint.load_checkpoint(swapped_file_in_manifest_dir(t)),
    ValueError,
    ("sha-256", "sha256", "hash"),
    "manifest",
    SMALLEST_BUNDLED,
)
row(
    "load-ckpt-model-str",
    lambda t: checkpoint.load_checkpoint(good_ckpt(t), "resnet_small"),
    TypeError,
    "model",
    "str",
    "Module",
)
row("cli-out-dir", cli_out(a_dir), SystemExit, "--out", "outdir", "directory")
row(
    "cli-out-unwritable",
    lambda t: train_cli.main([*CLI_BASE, "--out", "/proc/course_pkg_out/model.pt"]),
    SystemExit,
    "--out",
    "/proc/course_pkg_out/model.pt",
    ("writ", "cannot"),
)
row("cli-out-under-file", cli_out(under_file), SystemExit, "--out", "afile", "not a directory")
row("cli-n-val-neg", cli("--n-val", "-5"), SystemExit, "--n-val", "-5", ("0 or more", ">= 0", "non-negative"))
row("cli-n-train-zero", cli("--n-train", "0"), SystemExit, "--n-train", "0", "positive")
row("cli-epochs-zero", cli("--epochs", "0"), SystemExit, "--epochs", "0", "positive")
row("cli-lr-neg", cli("--lr", "-0.1"), SystemExit, "--lr", "-0.1", "positive")
row("cli-smoothing", cli("--label-smoothing", "1.5"), SystemExit, "--label-smoothing", "1.5", "[0, 1)")
row("cli-warmup-neg", cli("--warmup-epochs", "-1"), SystemExit, "--warmup-epochs", "-1", ">= 0")
row("cli-num-classes-7", cli("--num-classes", "7"), SystemExit, "--num-classes", "7", "2")
row("cli-device-tpu", cli("--device", "tpu"), SystemExit, "--device", "tpu", "cuda")
row("cli-model-unknown", cli("--model", "nosuch"), SystemExit, "--model", "nosuch", "resnet_small")
row("cli-kwargs-not-json", cli("--kwargs", "{width: 4}"), SystemExit, "--kwargs", "{width: 4}", "JSON")
row("cli-kwargs-list", cli("--kwargs", "[4]"), SystemExit, "--kwargs", "[4]", "object")
row("cli-kwargs-unknown-arg", cli("--kwargs", '{"bogus": 1}'), SystemExit, "--kwargs", "bogus", "simple_cnn")
row(
    "cli-attention-typo",
    cli("--model", "resnet_small", "--kwargs", "{}", "--attention", "senet"),
    SystemExit,
    "--attention",
    "senet",
    "cbam",
)
row("cli-resume-without-out", cli("--resume"), SystemExit, "--resume", "--out", "needs")

# ===================================================================================================
# bundled models and the manifest
# ===================================================================================================
row(
    "bundled-unknown",
    lambda t: bundled.load_bundled("clutter_vit_h3"),
    KeyError,
    "name",
    "clutter_vit_h3",
    SMALLEST_BUNDLED,
)
row("bundled-name-none", lambda t: bundled.load_bundled(None), TypeError, "name", "None", "str")
row(
    "bundled-device-tpu",
    lambda t: bundled.load_bundled(SMALLEST_BUNDLED, device="tpu"),
    ValueError,
    "device",
    "tpu",
    "cpu",
)
row(
    "bundled-missing-manifest",
    lambda t: bundled.load_bundled(SMALLEST_BUNDLED, directory=a_dir(t)),
    FileNotFoundError,
    "manifest.json",
    "outdir",
    ("missing", "not found", "no "),
)
row(
    "bundled-damaged-manifest",
    lambda t: bundled.load_bundled(
        SMALLEST_BUNDLED,
        directory=(lambda d: (write(d, "manifest.json", '[{"name": "x",'), d)[1])(bundled_copy(t)),
    ),
    ValueError,
    "manifest.json",
    "JSON",
    ("damaged", "line"),
)
row(
    "manifest-damaged",
    lambda t: checkpoint_manifest.manifest((lambda d: (write(d, "manifest.json", "{nope"), d)[1])(bundled_copy(t))),
    ValueError,
    "manifest.json",
    "JSON",
    ("damaged", "line"),
)
row(
    "manifest-missing-dir",
    lambda t: checkpoint_manifest.manifest(t / "nowhere"),
    FileNotFoundError,
    "directory",
    "nowhere",
    ("does not exist", "not found"),
)
row(
    "manifest-not-list",
    lambda t: checkpoint_manifest.manifest((lambda d: (write(d, "manifest.json", "{}"), d)[1])(bundled_copy(t))),
    ValueError,
    "manifest.json",
    "dict",
    "list",
)
row(
    "bundled-hash-mismatch",
    lambda t: bundled.load_bundled(SMALLEST_BUNDLED, directory=swapped_file_in_manifest_dir(t).parent),
    ValueError,
    SMALLEST_BUNDLED,
    "sha-256",
    "manifest",
)
row(
    "bundled-file-missing",
    lambda t: bundled.load_bundled(
        SMALLEST_BUNDLED, directory=(lambda d: ([p.unlink() for p in d.glob("*.pt")], d)[1])(bundled_copy(t))
    ),
    FileNotFoundError,
    SMALLEST_BUNDLED,
    "missing",
    "reinstall",
)

# ===================================================================================================
# env
# ===================================================================================================
row("device-gpu", lambda t: env.get_device("gpu"), ValueError, "prefer", "gpu", "cuda")
row("device-tpu", lambda t: env.get_device("tpu"), ValueError, "prefer", "tpu", "cpu")
row("device-cuda0-typo", lambda t: env.get_device("cuda:x"), ValueError, "prefer", "cuda:x", "cuda")
row("device-int", lambda t: env.get_device(0), TypeError, "prefer", "0", "str")
row(
    "device-mps-linux",
    lambda t: env.get_device("mps"),
    RuntimeError,
    "mps",
    "not available",
    "cpu",
    skip=None if not HAS_MPS else "MPS is available here",
)
row(
    "device-cuda-missing",
    lambda t: env.get_device("cuda"),
    RuntimeError,
    "cuda",
    "not available",
    "cpu",
    skip=None if NO_CUDA else "CUDA is available here",
)


def _env_device(t: Path) -> Any:
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSE_DEVICE", "tpu")
    try:
        return env.get_device()
    finally:
        mp.undo()


row("device-env-tpu", _env_device, ValueError, "COURSE_DEVICE", "tpu", "cuda")
row("seed-neg", lambda t: env.seed_everything(-1), ValueError, "seed", "-1", "non-negative")
row("seed-str", lambda t: env.seed_everything("1"), TypeError, "seed", "'1'", "int")
row("seed-float", lambda t: env.seed_everything(1.5), ValueError, "seed", "1.5", "integer")
row("seed-too-big", lambda t: env.seed_everything(2**64), ValueError, "seed", str(2**64), "2**32")

# ===================================================================================================
# viz and plotting
# ===================================================================================================
row(
    "overlay-mask-shape",
    lambda t: viz.plot_map_overlay(img(3, 32, 32), img(4, 4), mask=torch.ones(5, 5, dtype=torch.bool)),
    ValueError,
    "mask",
    "(5, 5)",
    "(32, 32)",
)
row(
    "overlay-map-3d",
    lambda t: viz.plot_map_overlay(img(3, 32, 32), img(2, 4, 4)),
    ValueError,
    "attention_map",
    "(2, 4, 4)",
    "(h, w)",
)
row(
    "overlay-alpha",
    lambda t: viz.plot_map_overlay(img(3, 32, 32), img(4, 4), alpha=1.5),
    ValueError,
    "alpha",
    "1.5",
    ("[0, 1]", "0-1", "0 and 1"),
)
row(
    "overlay-image-4d",
    lambda t: viz.plot_map_overlay(img(2, 3, 32, 32), img(4, 4)),
    ValueError,
    "image",
    "(2, 3, 32, 32)",
    ("(C, H, W)", "(3, H, W)"),
)
row(
    "pointing-mask-count",
    lambda t: viz.pointing_game(img(2, 4, 4), torch.ones(3, 16, 16, dtype=torch.bool)),
    ValueError,
    "masks",
    ("(3, 16, 16)", "3 masks"),
    "2",
)
row(
    "pointing-mask-2d-for-batch",
    lambda t: viz.pointing_game(img(2, 4, 4), torch.ones(16, 16, dtype=torch.bool)),
    ValueError,
    "masks",
    "(16, 16)",
    ("(B, H, W)", "(N, H, W)"),
)
row(
    "pointing-empty-mask",
    lambda t: viz.pointing_game(img(2, 4, 4), torch.zeros(2, 16, 16, dtype=torch.bool)),
    ValueError,
    "masks",
    "empty",
    "object",
)
row(
    "pointing-tolerance-neg",
    lambda t: viz.pointing_game(img(2, 4, 4), torch.ones(2, 16, 16, dtype=torch.bool), tolerance=-1),
    ValueError,
    "tolerance",
    "-1",
    (">= 0", "non-negative"),
)
row(
    "pointing-float-mask",
    lambda t: viz.pointing_game(img(2, 4, 4), img(2, 16, 16)),
    ValueError,
    "masks",
    "float",
    "bool",
)
row(
    "upsample-size-zero",
    lambda t: viz.upsample_maps(img(2, 4, 4), (0, 8)),
    ValueError,
    "size",
    "(0, 8)",
    "positive",
)
row("upsample-maps-1d", lambda t: viz.upsample_maps(img(16), (8, 8)), ValueError, "maps", "(16,)", "(h, w)")
row("upsample-maps-list-str", lambda t: viz.upsample_maps("maps", (8, 8)), TypeError, "maps", "str", "tensor")
row(
    "channel-weights-empty",
    lambda t: viz.plot_channel_weights(torch.zeros(0)),
    ValueError,
    "weights",
    "empty",
    "one",
)
row(
    "channel-weights-labels",
    lambda t: viz.plot_channel_weights(torch.rand(4), labels=["a", "b", "c"]),
    ValueError,
    "labels",
    "3",
    "1",
)
row(
    "channel-weights-names",
    lambda t: viz.plot_channel_weights(torch.rand(4), channel_names=["a", "b", "c"]),
    ValueError,
    "channel_names",
    "3",
    "4",
)
row(
    "channel-weights-highlight",
    lambda t: viz.plot_channel_weights(torch.rand(4), highlight=[7]),
    ValueError,
    "highlight",
    "7",
    "4",
)
row(
    "cbam-maps-batch",
    lambda t: viz.plot_cbam_maps(img(2, 3, 16, 16), img(3, 8), img(2, 16, 16)),
    ValueError,
    "channel_weights",
    "3",
    "2",
)
row(
    "cbam-maps-spatial-shape",
    lambda t: viz.plot_cbam_maps(img(2, 3, 16, 16), img(2, 8), img(2, 3, 16, 16)),
    ValueError,
    "spatial_maps",
    "(2, 3, 16, 16)",
    ("(B, H, W)", "(N, h, w)"),
)
row(
    "cbam-maps-titles",
    lambda t: viz.plot_cbam_maps(img(2, 3, 16, 16), img(2, 8), img(2, 16, 16), titles=["a"]),
    ValueError,
    "titles",
    "1",
    "2",
)
row(
    "cbam-maps-zero",
    lambda t: viz.plot_cbam_maps(img(0, 3, 16, 16), img(0, 8), img(0, 16, 16)),
    ValueError,
    "images",
    "0",
    "at least one",
)
row(
    "plot-attention-3d",
    lambda t: plotting.plot_attention(img(2, 4, 4)),
    ValueError,
    "weights",
    "(2, 4, 4)",
    ("plot_attention_grid", "2-D"),
)
row("plot-attention-str", lambda t: plotting.plot_attention("weights"), TypeError, "weights", "str", "tensor")
row(
    "plot-attention-labels",
    lambda t: plotting.plot_attention(img(4, 4), query_labels=list("abc")),
    ValueError,
    "query_labels",
    "3",
    "4",
)
row(
    "plot-attention-key-labels",
    lambda t: plotting.plot_attention(img(4, 5), key_labels=list("abcd")),
    ValueError,
    "key_labels",
    "4",
    "5",
)
row(
    "plot-grid-zero-panels",
    lambda t: plotting.plot_attention_grid(img(0, 4, 4)),
    ValueError,
    "weights",
    "(0, 4, 4)",
    "at least one",
)
row(
    "plot-grid-ncols-zero",
    lambda t: plotting.plot_attention_grid(img(2, 4, 4), ncols=0),
    ValueError,
    "ncols",
    "0",
    ("positive", "at least 1"),
)
row(
    "plot-grid-titles",
    lambda t: plotting.plot_attention_grid(img(2, 4, 4), titles=["a"]),
    ValueError,
    "titles",
    "1",
    "2",
)
row(
    "plot-grid-5d",
    lambda t: plotting.plot_attention_grid(img(1, 2, 2, 4, 4)),
    ValueError,
    "weights",
    "(1, 2, 2, 4, 4)",
    ("(H, N, N)", "(K, Nq, Nk)"),
)

# ===================================================================================================
# widgets
# ===================================================================================================
W_IMG = img(3, 32, 32)
row(
    "psx-accuracy-percent",
    lambda t: widgets.PatchSizeExplorer(W_IMG, [8, 16], accuracies={8: 81}),
    ValueError,
    "accuracies",
    "81",
    "[0, 1]",
)
row(
    "psx-empty-sizes",
    lambda t: widgets.PatchSizeExplorer(W_IMG, []),
    ValueError,
    "patch_sizes",
    "[]",
    "at least one",
)
row("psx-sizes-int", lambda t: widgets.PatchSizeExplorer(W_IMG, 8), TypeError, "patch_sizes", "int", "list")
row(
    "psx-size-not-divisor",
    lambda t: widgets.PatchSizeExplorer(W_IMG, [5]),
    ValueError,
    "patch_sizes",
    "5",
    "divi",
)
row(
    "psx-initial-not-option",
    lambda t: widgets.PatchSizeExplorer(W_IMG, [8, 16], initial=4),
    ValueError,
    "initial",
    "4",
    "[8, 16]",
)
row(
    "psx-mask-shape",
    lambda t: widgets.PatchSizeExplorer(W_IMG, [8], mask=np.ones((5, 5), bool)),
    ValueError,
    "mask",
    "(5, 5)",
    "(32, 32)",
)
row(
    "psx-rollout-shape",
    lambda t: widgets.PatchSizeExplorer(W_IMG, [8], rollouts={8: np.ones((3, 3))}),
    ValueError,
    "rollout",
    "(3, 3)",
    ("(4, 4)", "4x4"),
)
H_MAPS = {2: np.random.default_rng(0).random((2, 4, 4))}
row(
    "hcx-embed-str",
    lambda t: widgets.HeadCountExplorer(W_IMG, H_MAPS, embed_dim="64"),
    TypeError,
    "embed_dim",
    "'64'",
    "int",
)
row(
    "hcx-embed-not-divisible",
    lambda t: widgets.HeadCountExplorer(W_IMG, H_MAPS, embed_dim=63),
    ValueError,
    "embed_dim",
    "63",
    "divi",
)
row(
    "hcx-accuracy-percent",
    lambda t: widgets.HeadCountExplorer(W_IMG, H_MAPS, 64, accuracies={2: 91.5}),
    ValueError,
    "accuracies",
    "91.5",
    "[0, 1]",
)
row(
    "hcx-empty",
    lambda t: widgets.HeadCountExplorer(W_IMG, {}, 64),
    ValueError,
    "head_maps",
    "empty",
    "at least one",
)
row(
    "hcx-maps-wrong-heads",
    lambda t: widgets.HeadCountExplorer(W_IMG, {4: H_MAPS[2]}, 64),
    ValueError,
    "head_maps",
    "(2, 4, 4)",
    "(4, g, g)",
)
row(
    "patch-numbers-not-divisor", lambda t: widgets.patch_numbers(32, 5), ValueError, "patch_size", "5", "divi"
)
row("patch-numbers-zero-img", lambda t: widgets.patch_numbers(0, 4), ValueError, "img_size", "0", "positive")
row(
    "patch-numbers-zero-patch",
    lambda t: widgets.patch_numbers(32, 0),
    ValueError,
    "patch_size",
    "0",
    "positive",
)
row("patch-numbers-too-big", lambda t: widgets.patch_numbers(32, 64), ValueError, "patch_size", "64", "32")
row("patch-numbers-str", lambda t: widgets.patch_numbers("32", 4), TypeError, "img_size", "'32'", "int")
row(
    "patch-numbers-in-chans",
    lambda t: widgets.patch_numbers(32, 4, in_chans=0),
    ValueError,
    "in_chans",
    "0",
    "positive",
)

# ===================================================================================================
# exercises: check() never raises and says what it got; hint() usage errors raise
# ===================================================================================================
SW = ch01.softmax_weights
MH = ch02.MultiHeadSelfAttention
SEB = ch04.SEBlock


def _exits(scores: torch.Tensor) -> torch.Tensor:
    sys.exit("done")


row("check-none", lambda t: SW.check(None), None, "answer", "None", "function")
row("check-name-string", lambda t: SW.check("softmax_weights"), None, "answer", "str", ("quotes", "function"))
row(
    "check-module-instance",
    lambda t: MH.check(att.MultiHeadSelfAttention(16, 4)),
    None,
    "instance",
    "class",
    "MultiHeadSelfAttention",
)
row("check-module-lambda", lambda t: SEB.check(lambda x: x), None, "function", "class", "nn.Module")
row("check-sys-exit", lambda t: SW.check(_exits), None, ("sys.exit", "SystemExit"), "softmax_weights")
row(
    "check-by-id-none",
    lambda t: exmod.check("ch01.softmax_weights", None),
    None,
    "answer",
    "None",
    "function",
)
row(
    "check-unknown-id",
    lambda t: exmod.check("ch01.nosuch", lambda s: s),
    None,  # check() never raises (documented): it prints the problem and returns an "error" result
    "ch01.nosuch",
    "ch01.softmax_weights",
    "known",
)
row("hint-n-str", lambda t: SW.hint(n="1"), TypeError, N_WORD, "'1'", "integer")
row("hint-n-zero", lambda t: SW.hint(n=0), ValueError, N_WORD, "0", "1")
row("hint-n-too-big", lambda t: SW.hint(n=99), ValueError, N_WORD, "99", str(len(SW.hints)))
row(
    "hint-by-id-n-str", lambda t: exmod.hint("ch01.softmax_weights", "2"), TypeError, N_WORD, "'2'", "integer"
)


# ===================================================================================================
# issue 21: the long tail, by kind (the ``kind`` of each row; the closing note counts them)
# ===================================================================================================
DEVICE, LOST, SILENT, UNCLEAR = "device names", "lost work", "silently wrong", "unclear error"
GPU_WORDS = ("device", "'gpu'", "'cuda'", "torch.device")

# --- device names: one parser (env.as_device) for every device= -----------------------------------
for _id, _call in {
    "dev-load-bundled-gpu": lambda t: bundled.load_bundled(SMALLEST_BUNDLED, device="gpu"),
    "dev-test-data-gpu": lambda t: bundled.bundled_test_data(SMALLEST_BUNDLED, device="gpu"),
    "dev-causal-mask-gpu": lambda t: att.causal_mask(4, device="gpu"),
    "dev-clutterset-to-gpu": lambda t: data.make_clutter(2, 24, 2).to("gpu"),
    "dev-digits-to-gpu": lambda t: data.load_digits("test").to("gpu"),
    "dev-fit-gpu": lambda t: train.fit(cnn.simple_cnn(num_classes=3, width=4), tiny_set(), device="gpu"),
    "dev-evaluate-gpu": lambda t: train.evaluate(rn(), tiny_set(), device="gpu"),
}.items():
    row(_id, _call, ValueError, *GPU_WORDS, kind=DEVICE)
row(
    "dev-map-location-gpu",
    lambda t: checkpoint.load_checkpoint(good_ckpt(t), map_location="gpu"),
    ValueError,
    "map_location",
    "'gpu'",
    "'cuda'",
    kind=DEVICE,
)
row("dev-int-device", lambda t: att.causal_mask(4, device=0), TypeError, "device=0", "int", "cuda:N", kind=DEVICE)
row(
    "dev-fit-meta",
    lambda t: train.fit(cnn.simple_cnn(num_classes=3, width=4), tiny_set(), device=torch.device("meta")),
    ValueError,
    "device",
    "meta",
    "no numbers",
    kind=DEVICE,
)
row(
    "dev-to-device-object",
    lambda t: to_device(object(), "cpu"),
    TypeError,
    "data",
    "object",
    "tensor",
    kind=DEVICE,
)


# --- lost work: an existing --out, a shipped model's file -----------------------------------------
def finished_out(t: Path) -> Path:
    p = t / "done.pt"
    train_cli.main([*CLI_BASE, "--out", str(p)])
    return p


def stopped_out(t: Path) -> Path:
    p = t / "stopped.pt"
    model = cnn.simple_cnn(num_classes=3, width=4)
    checkpoint.save_checkpoint(p, model, {"complete": False}, train_state={"epoch": 1, "epochs": 3, "step": 0})
    return p


row(
    "lost-cli-finished-out",
    cli_out(finished_out),
    SystemExit,
    "--out",
    "finished model",
    "--overwrite",
    kind=LOST,
)
row(
    "lost-cli-stopped-out",
    cli_out(stopped_out),
    SystemExit,
    "--out",
    "stopped run",
    "--resume",
    kind=LOST,
)
row(
    "lost-cli-other-file-out",
    cli_out(lambda t: write(t, "notes.pt", "my notes")),
    SystemExit,
    "--out",
    "not a checkpoint",
    "--overwrite",
    kind=LOST,
)
row(
    "lost-cli-resume-and-overwrite",
    cli_out(stopped_out, "--resume", "--overwrite"),
    SystemExit,
    "--resume",
    "--overwrite",
    "contradict",
    kind=LOST,
)
row(
    "lost-cli-out-is-bundled",
    cli_out(lambda t: bundled_copy(t) / checkpoint_manifest.get_entry(SMALLEST_BUNDLED)["file"], "--overwrite"),
    SystemExit,
    "--out",
    SMALLEST_BUNDLED,
    "bundled",
    kind=LOST,
)
row(
    "lost-save-over-bundled",
    lambda t: checkpoint.save_checkpoint(bundled_copy(t) / checkpoint_manifest.get_entry(SMALLEST_BUNDLED)["file"],
                                         rn()),
    PermissionError,
    "path",
    SMALLEST_BUNDLED,
    "remove_from_manifest",
    kind=LOST,
)

# --- silently wrong: a clear error instead -----------------------------------------------------------
row(
    "silent-warmup-longer-than-run",
    lambda t: train.fit(rn(), tiny_set(), epochs=2, warmup_epochs=5, device="cpu", progress=False),
    ValueError,
    "warmup_epochs=5",
    "epochs=2",
    "never",
    kind=SILENT,
)
row(
    "silent-warmup-equal-to-run",
    lambda t: train.fit(rn(), tiny_set(), epochs=2, warmup_epochs=2, device="cpu", progress=False),
    ValueError,
    "warmup_epochs=2",
    "epochs=2",
    kind=SILENT,
)
row(
    "silent-schedule-warmup-steps",
    lambda t: cosine_schedule(10, 10),
    ValueError,
    "warmup_steps=10",
    "total_steps=10",
    "at most 9",
    kind=SILENT,
)
row(
    "silent-cli-warmup",
    cli("--warmup-epochs", "3"),
    SystemExit,
    "--warmup-epochs",
    "3",
    "--epochs=1",
    kind=SILENT,
)
row(
    "silent-grad-clip-true",
    lambda t: train.fit(rn(), tiny_set(), epochs=1, grad_clip=True, device="cpu", progress=False),
    TypeError,
    "grad_clip=True",
    "bool",
    "norm",
    kind=SILENT,
)
row(
    "silent-train-step-grad-clip-true",
    lambda t: train_step(
        rn(), *tiny_set(2), torch.optim.SGD(rn().parameters(), lr=0.0), grad_clip=True
    ),
    TypeError,
    "grad_clip=True",
    "norm of 1",
    kind=SILENT,
)
for _opt, _val in (("--n-train", "10"), ("--n-val", "4"), ("--n-test", "5"), ("--num-classes", "3"),
                   ("--image-size", "32")):
    row(
        f"silent-digits-drops{_opt}",
        (lambda o, v: lambda t: train_cli.main(["--dataset", "digits", "--model", "simple_cnn", o, v]))(_opt, _val),
        SystemExit,
        _opt,
        "--dataset digits",
        "ignore",
        kind=SILENT,
    )
row(
    "silent-cifar-drops-n-val",
    lambda t: train_cli.main(["--dataset", "cifar10", "--n-val", "100"]),
    SystemExit,
    "--n-val",
    "cifar10",
    "ignore",
    kind=SILENT,
)
row(
    "silent-clutter-drops-download",
    lambda t: train_cli.main(["--dataset", "clutter", "--download"]),
    SystemExit,
    "--download",
    "clutter",
    kind=SILENT,
)
row(
    "silent-kwargs-num-classes-vs-data",
    lambda t: train_cli.main([*CLI_BASE, "--kwargs", '{"width": 4, "num_classes": 6}']),
    SystemExit,
    "--kwargs",
    "num_classes=6",
    "num_classes=3",
    kind=SILENT,
)
row(
    "silent-kwargs-img-size-vs-data",
    lambda t: train_cli.main([*CLI_BASE[:-6], "--model", "vit_tiny", "--kwargs", '{"img_size": 32, "patch_size": 8}',
                          "--no-progress", "--quiet"]),
    SystemExit,
    "--kwargs",
    "img_size=32",
    "img_size=24",
    kind=SILENT,
)


def vit_heads(heads: int) -> nn.Module:
    torch.manual_seed(0)
    return vit.VisionTransformer(img_size=16, patch_size=8, num_classes=2, embed_dim=16, depth=1, num_heads=heads)


def four_head_ckpt(t: Path) -> Path:
    kwargs = {"img_size": 16, "patch_size": 8, "num_classes": 2, "embed_dim": 16, "depth": 1, "num_heads": 4}
    return checkpoint.save_checkpoint(t / "vit4.pt", vit_heads(4), {"builder": "vit", "kwargs": kwargs})


row(
    "silent-vit-heads-vs-metadata",
    lambda t: checkpoint.load_checkpoint(four_head_ckpt(t), vit_heads(2)),
    ValueError,
    "num_heads=4",
    "num_heads=2",
    "kwargs",
    kind=SILENT,
)
PRE_CFG = {"input_size": (3, 16, 16), "crop_pct": 1.0, "interpolation": "bilinear"}
for _id, _image, _words in (
    ("uint8", lambda: (img(3, 20, 20) * 255).to(torch.uint8), ("image", "uint8", "255")),
    ("float-0-255", lambda: img(3, 20, 20) * 255, ("image", "0-255", "/ 255")),
    ("normalised", lambda: photos.normalize_imagenet(img(3, 20, 20)), ("image", "already", "normalis")),
    ("nan", lambda: img(3, 20, 20).index_put_((torch.tensor([0]),) * 3, torch.tensor(float("nan"))),
     ("image", "NaN", "finite")),
):
    row(
        f"silent-preprocess-{_id}",
        (lambda im: lambda t: __import__("course_pkg.pretrained").pretrained.preprocess(im(), PRE_CFG))(_image),
        ValueError,
        *_words,
        kind=SILENT,
    )
row(
    "silent-normalize-one-nan",
    lambda t: photos.normalize_imagenet(img(3, 8, 8).index_put_((torch.tensor([1]),) * 3, torch.tensor(float("nan")))),
    ValueError,
    r"re:\bx\b",
    "NaN",
    "finite",
    kind=SILENT,
)
row(
    "silent-normalize-twice",
    lambda t: photos.normalize_imagenet(photos.normalize_imagenet(img(3, 8, 8))),
    ValueError,
    r"re:\bx\b",
    "already",
    "denormalize_imagenet",
    kind=SILENT,
)
row(
    "silent-mha-convention-causal",
    lambda t: M()(tokens(), mask=torch.ones(5, 5, dtype=torch.bool).triu(1)),
    ValueError,
    "mask",
    "True = ignore",
    "~mask",
    kind=SILENT,
)
row(
    "silent-mha-convention-padding",
    lambda t: M()(tokens(), mask=torch.zeros(2, 1, 1, 5, dtype=torch.bool)),
    ValueError,
    "mask",
    "every key",
    "~mask",
    kind=SILENT,
)
row(
    "silent-no-self-attention",
    lambda t: M()(tokens(), mask=~torch.eye(5, dtype=torch.bool)),
    ValueError,
    "mask",
    "itself",
    "diagonal",
    kind=SILENT,
)
row(
    "silent-query-sees-nothing-bool",
    lambda t: att.scaled_dot_product_attention(Q, Q, Q, mask=att.causal_mask(5).index_fill(0, torch.tensor([2]), False)),
    ValueError,
    "mask",
    "every key",
    "zero output",
    kind=SILENT,
)
row(
    "silent-query-sees-nothing-float",
    lambda t: att.scaled_dot_product_attention(
        Q, Q, Q, mask=torch.zeros(5, 5).index_fill(0, torch.tensor([2]), float("-inf"))
    ),
    ValueError,
    "mask",
    "-inf",
    "whole row",
    kind=SILENT,
)


def recorded_in_train_mode(t: Path) -> Any:
    from course_pkg.attention_maps import record_attention

    model = vit.VisionTransformer(img_size=16, patch_size=8, num_classes=2, embed_dim=16, depth=1,
                                  num_heads=2, attn_drop_rate=0.5).train()
    with record_attention(model) as maps:
        model(img(2, 3, 16, 16))
    return maps


row(
    "silent-record-attention-train-mode",
    recorded_in_train_mode,
    ValueError,
    "train()",
    "dropout",
    "eval()",
    kind=SILENT,
)


def rollout_of(weights: torch.Tensor) -> Callable[[Path], Any]:
    from course_pkg.attention_maps import attention_rollout

    return lambda t: attention_rollout([weights])


row(
    "silent-rollout-scores",
    rollout_of(torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))),
    ValueError,
    "attentions[0]",
    "sum to",
    "softmax",
    kind=SILENT,
)
row(
    "silent-rollout-dropped-out",
    rollout_of(torch.full((2, 3, 5, 5), 0.2).index_fill(-1, torch.tensor([0]), 0.0) * 2.0),
    ValueError,
    "attentions[0]",
    "sum to",
    "train()",
    kind=SILENT,
)


def pg(fn_name: str, *args: Any) -> Callable[[Path], Any]:
    def go(t: Path) -> Any:
        from course_pkg import pointing_game as pgm

        return {"pg": pgm.pointing_game, "viz": viz.pointing_game}[fn_name](*args)

    return go


_MASKS = torch.zeros(2, 16, 16, dtype=torch.bool).index_fill(1, torch.tensor([3, 4]), True)
_MAPS = img(2, 4, 4)
row("silent-pointing-swapped", pg("pg", _MASKS, _MAPS), ValueError, "maps", "bool", "swapped", kind=SILENT)
row("silent-viz-pointing-swapped", pg("viz", _MASKS, _MAPS), ValueError, "masks", "0 and 1", "order",
    kind=SILENT)
row("silent-pointing-map-as-mask", pg("pg", _MAPS, img(2, 16, 16)), ValueError, "masks", "0 and 1",
    "attention map", kind=SILENT)


def _h(values: list[float]) -> list[dict[str, Any]]:
    return [{"epoch": i + 1, "val_acc": v} for i, v in enumerate(values)]


def _seed_stats() -> Any:
    from course_pkg import seed_stats

    return seed_stats


row(
    "silent-epochs-to-reach-percent",
    lambda t: _seed_stats().epochs_to_reach(_h([0.5, 0.8, 0.95]), 90),
    ValueError,
    "level=90",
    "percent",
    "level=0.9",
    kind=SILENT,
)
row(
    "silent-settled-epoch-percent",
    lambda t: _seed_stats().settled_epoch(_h([0.5, 0.8, 0.95]), tolerance=2),
    ValueError,
    "tolerance=2",
    "percent",
    "tolerance=0.02",
    kind=SILENT,
)

# --- unclear errors made clear ----------------------------------------------------------------------
row(
    "unclear-labels-out-of-range-fit",
    lambda t: train.fit(
        resnet.resnet_small(num_classes=3, widths=(4, 8, 8)),
        (img(8, 3, 24, 24), torch.arange(8)),
        epochs=1,
        device="cpu",
        progress=False,
    ),
    ValueError,
    "labels",
    "class 7",
    "num_classes=8",
    kind=UNCLEAR,
)
row(
    "unclear-labels-negative-evaluate",
    lambda t: train.evaluate(rn(), (img(4, 3, 24, 24), torch.tensor([0, 1, -1, 2])), device="cpu"),
    ValueError,
    "labels",
    "class -1",
    "0..2",
    kind=UNCLEAR,
)
row(
    "unclear-labels-float-train-step",
    lambda t: train_step(rn(), img(2, 3, 24, 24), torch.tensor([0.0, 1.0]),
                               torch.optim.SGD(rn().parameters(), lr=0.0)),
    ValueError,
    "labels",
    "float32",
    "long()",
    kind=UNCLEAR,
)
row(
    "unclear-numpy-float-epochs",
    lambda t: train.fit(rn(), tiny_set(), epochs=np.float64(2.5), device="cpu", progress=False),
    ValueError,
    "epochs",
    "2.5",
    "integer",
    kind=UNCLEAR,
)
row(
    "unclear-str-lr",
    lambda t: train.fit(rn(), tiny_set(), lr="1e-3", device="cpu", progress=False),
    TypeError,
    "lr='1e-3'",
    "str",
    "number",
    kind=UNCLEAR,
)
row(
    "unclear-wilson-z",
    lambda t: __import__("course_pkg.pointing_game").pointing_game.wilson_interval(3, 10, z=-1),
    ValueError,
    "z=-1",
    "positive",
    kind=UNCLEAR,
)
for _id, _call, _typo, _good in (
    ("fit", lambda t: train.fit(rn(), tiny_set(), learning_rate=1e-3), "learning_rate", "lr"),
    ("fit-epoch", lambda t: train.fit(rn(), tiny_set(), num_epochs=2), "num_epochs", "epochs"),
    ("make-clutter", lambda t: data.make_clutter(4, num_class=3), "num_class", "num_classes"),
    ("mhsa", lambda t: att.MultiHeadSelfAttention(16, heads=4), "heads", "num_heads"),
    ("vit", lambda t: vit.VisionTransformer(image_size=32), "image_size", "img_size"),
    ("resnet", lambda t: resnet.resnet_small(n_classes=3), "n_classes", "num_classes"),
    ("load-bundled", lambda t: bundled.load_bundled(SMALLEST_BUNDLED, devise="cpu"), "devise", "device"),
    ("load-checkpoint", lambda t: checkpoint.load_checkpoint(good_ckpt(t), device="cpu"), "device", "map_location"),
    ("pointing", lambda t: viz.pointing_game(_MAPS, mask=_MASKS), "mask", "masks"),
):
    row(f"unclear-typo-{_id}", _call, TypeError, f"'{_typo}'", f"did you mean '{_good}'", kind=UNCLEAR)


def _am() -> Any:
    from course_pkg import attention_maps

    return attention_maps


_SOFT = torch.full((1, 2, 5, 5), 0.2)
_OPT = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.0)
# a truthy string where a flag is wanted was taken as True: silently wrong
for _id, _call, _name in (
    ("rollout-add-residual-str", lambda t: _am().attention_rollout([_SOFT], add_residual="no"), "add_residual"),
    ("load-photo-normalize-str", lambda t: photos.load_photo("cat", normalize="yes"), "normalize"),
    ("load-checkpoint-strict-str", lambda t: checkpoint.load_checkpoint(good_ckpt(t), rn(), strict="no"), "strict"),
    ("record-detach-str", lambda t: _am().record_attention(se(), detach="no").__enter__(), "detach"),
):
    row(f"silent-{_id}", _call, TypeError, _name, "str", "or False", kind=SILENT)
# arguments that reached torch or Python unchecked
for _id, _call, _words in (
    ("cls-map-list", lambda t: _am().cls_attention_map([[1.0]], 2), ("attention", "list", "tensor")),
    ("rollout-discard-str", lambda t: _am().attention_rollout([_SOFT], discard_ratio="0.1"),
     ("discard_ratio", "str", "[0, 1)")),
    ("handmade-kernel-float", lambda t: viz.handmade_features(img(3, 16, 16), kernel_size=15.0),
     ("kernel_size", "float", "odd int")),
    ("preprocessing-crop-str", lambda t: __import__("course_pkg.pretrained").pretrained.preprocess(
        img(3, 8, 8), {"crop_pct": "x"}), ("crop_pct", "'x'", "fraction")),
    ("preprocessing-size-2", lambda t: __import__("course_pkg.pretrained").pretrained.preprocess(
        img(3, 8, 8), {"input_size": (224, 224)}), ("input_size", "(224, 224)", "(3, H, W)")),
    ("pointing-chance-int-size", lambda t: __import__("course_pkg.pointing_game").pointing_game.pointing_chance(
        _MASKS, 4), ("map_size", "4", "pair")),
    ("param-groups-none", lambda t: param_groups(None, 0.1), ("model", "NoneType", "Module")),
    ("param-groups-wd-str", lambda t: param_groups(rn(), "0.1"), ("weight_decay", "'0.1'", "number")),
    ("train-step-x-list", lambda t: train_step(rn(), [1.0], torch.tensor([0]), _OPT),
     (r"re:\bx\b", "list", "tensor")),
    ("train-step-no-optimizer", lambda t: train_step(rn(), img(2, 3, 24, 24), torch.tensor([0, 1]), None),
     ("optimizer", "NoneType", "torch.optim")),
    ("build-model-kwargs-list", lambda t: model_registry.build_model("simple_cnn", [1]), ("kwargs", "list", "dict")),
):
    row(f"unclear-{_id}", _call, (TypeError, ValueError), *_words, kind=UNCLEAR)
row(
    "unclear-train-step-smoothing-2",
    lambda t: train_step(rn(), img(2, 3, 24, 24), torch.tensor([0, 1]), _OPT, label_smoothing=2),
    ValueError,
    "label_smoothing=2",
    "[0, 1)",
    kind=UNCLEAR,
)


# ===================================================================================================
# the table test
# ===================================================================================================
def _matches(text: str, fragment: Fragment) -> bool:
    """Case-insensitive; an option written ``"re:..."`` is a regular expression (e.g. a whole word)."""
    options = (fragment,) if isinstance(fragment, str) else fragment
    return any(
        re.search(o[3:], text, re.I) if o.startswith("re:") else o.lower() in text.lower() for o in options
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import matplotlib.pyplot as plt

    if case.skip:
        pytest.skip(case.skip)
    try:
        if case.exc is None:  # exercises.check: must not raise, must explain in its feedback
            result = case.call(tmp_path)
            out = capsys.readouterr()
            text = f"{result.summary()}\n{out.out}\n{out.err}"
            assert not result.passed, "a wrong answer object passed the check"
        else:
            with pytest.raises(case.exc) as info:
                case.call(tmp_path)
            out = capsys.readouterr()
            text = f"{info.value}\n{out.err}"
            if isinstance(info.value, SystemExit):
                assert info.value.code not in (0, None), "the command line exited with status 0"
    finally:
        plt.close("all")
    missing = [f for f in case.fragments if not _matches(text, f)]
    assert not missing, f"the message lacks {missing}:\n{text}"


def test_enough_cases() -> None:
    assert len(CASES) >= 170


def test_uppercase_device_is_refused_with_the_lower_case_name() -> None:
    """``get_device('CPU')``: a ValueError naming the lower-case spelling and the accepted values (not
    torch's list of device types)."""
    with pytest.raises(ValueError, match=r"prefer='CPU'.*lower case: 'cpu'.*accepted values") as info:
        env.get_device("CPU")
    assert "privateuseone" not in str(info.value).lower()


# ===================================================================================================
# "silently wrong": no input is accepted with a wrong result
# ===================================================================================================
def _manual_attention(m: nn.Module, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Per-sample attention weights written out: x (B, N, D), keep (B, N, N) bool -> (B, H, N, N)."""
    b, n, d = x.shape
    h = m.num_heads
    qkv = m.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    s = q @ k.transpose(-2, -1) / (d // h) ** 0.5
    s = s.masked_fill(~keep[:, None], float("-inf"))
    return s.softmax(-1)


FLOAT_01 = r"float \(torch.float32\) mask of only 0s and 1s.*mask\.bool\(\)"


def test_float_01_mask_never_silently_additive() -> None:
    """A float 0/1 causal mask is refused (as an additive bias it would mask nothing); its bool twin works."""
    x = tokens()
    with pytest.raises(ValueError, match=FLOAT_01):
        mhsa()(x, mask=torch.tril(torch.ones(5, 5)), return_attention=True)
    _, w = mhsa()(x, mask=torch.tril(torch.ones(5, 5)).bool(), return_attention=True)
    assert w.triu(1).abs().max().item() == 0.0


def test_float_01_mask_sdpa_never_silently_additive() -> None:
    with pytest.raises(ValueError, match=FLOAT_01):
        att.scaled_dot_product_attention(Q, Q, Q, mask=torch.tril(torch.ones(5, 5)))


def test_per_sample_mask_when_batch_equals_heads() -> None:
    """A (B, N, N) padding mask with B == num_heads is applied per *sample* (a 3-D mask always is)."""
    torch.manual_seed(0)
    m = att.MultiHeadSelfAttention(16, 4).eval()
    x = torch.randn(4, 5, 16)
    lengths = torch.tensor([5, 4, 3, 2])
    keep_keys = torch.arange(5)[None, :] < lengths[:, None]  # (B, N)
    keep = keep_keys[:, None, :].expand(4, 5, 5)  # (B, N, N)
    _, w = m(x, mask=keep, return_attention=True)
    with torch.no_grad():
        ref = _manual_attention(m, x, keep)
    padded = (~keep_keys)[:, None, None, :].expand_as(w)
    assert w[padded].abs().max().item() == 0.0, "padded keys got weight: the mask was applied per head"
    torch.testing.assert_close(w, ref)


def _asks_for(convert: Callable[[], nn.Module], *missing: str) -> None:
    """The conversion refuses to guess: a ValueError that names what to pass."""
    with pytest.raises(ValueError) as info:
        convert()
    for name in missing:
        assert name in str(info.value), f"the error does not ask for {name}: {info.value}"


def _exact(convert: Callable[[], nn.Module], source: nn.Module, x: torch.Tensor) -> None:
    """The conversion reads the configuration from the source model and computes what it computes."""
    with torch.no_grad():
        torch.testing.assert_close(convert().eval()(x), source(x), rtol=1e-4, atol=1e-5)


def test_from_timm_state_dict_6_heads() -> None:
    src = timm_vit(6)
    _asks_for(lambda: weights.from_timm(src.state_dict()), "num_heads", "img_size", "gelu")


def test_from_timm_state_dict_with_heads_given_is_exact() -> None:
    """Given what a state dict does not record, the conversion is exact; without ``gelu`` it asks for it."""
    src = timm_vit(6)
    _asks_for(lambda: weights.from_timm(src.state_dict(), num_heads=6, img_size=32), "gelu")
    _exact(lambda: weights.from_timm(src.state_dict(), num_heads=6, img_size=32, gelu="exact"), src,
           img(2, 3, 32, 32))


def test_from_timm_state_dict_non_square() -> None:
    src = timm_vit(6, (16, 64))
    _asks_for(lambda: weights.from_timm(src.state_dict(), num_heads=6), "img_size", "16 x 64")


def test_from_timm_module_non_square_and_6_heads() -> None:
    src = timm_vit(6, (16, 64))
    _exact(lambda: weights.from_timm(src), src, img(2, 3, 16, 64))


def test_from_timm_tanh_gelu_module() -> None:
    src = timm_vit(6, 32, tanh=True)
    _asks_for(lambda: weights.from_timm(src), "GELU", "tanh")


def test_from_timm_tanh_gelu_state_dict() -> None:
    """A state dict does not record the activation: the conversion asks for it instead of guessing."""
    src = timm_vit(6, 32, tanh=True)
    _asks_for(lambda: weights.from_timm(src.state_dict(), num_heads=6, img_size=32), "gelu=", "tanh GELU")


def test_from_torchvision_state_dict_6_heads() -> None:
    src = tv_vit()
    _asks_for(lambda: weights.from_torchvision(src.state_dict()), "num_heads")


def test_from_torchvision_module_6_heads() -> None:
    src = tv_vit()
    _exact(lambda: weights.from_torchvision(src), src, img(2, 3, 32, 32))


def test_normalize_uint8_never_inf() -> None:
    """An 8-bit image is refused with the conversion to use, never normalised as 0-255 numbers."""
    x = (img(3, 8, 8) * 255).to(torch.uint8)
    with pytest.raises(ValueError, match=r"dtype torch.uint8.*x\.float\(\) / 255"):
        photos.normalize_imagenet(x)


def test_normalize_0_255_float_never_huge() -> None:
    x = img(3, 8, 8) * 255
    with pytest.raises(ValueError, match=r"looks like a 0-255 image.*divide by 255"):
        photos.normalize_imagenet(x)


def test_channels_last_square_ambiguity_detected_where_possible() -> None:
    """(B, H, W, C) with H == W == 16 into a 16-channel SE: shape cannot tell; a (B, 8, 8, 3) image into
    a 3-channel ResNet can (dim 1 is 8, not 3): that must raise and mention the layout."""
    with pytest.raises(ValueError) as info:
        rn()(img(2, 8, 8, 3))
    assert _matches(str(info.value), CL_WORD)


def test_inputs_never_mutated_by_rejected_calls() -> None:
    x = img(2, 32, 32, 3)
    before = x.clone()
    with pytest.raises(ValueError):
        rn()(x)
    assert torch.equal(x, before)


# ===================================================================================================
# a stopped run never loses its work
# ===================================================================================================
class _StopAfter:
    """A callback that raises KeyboardInterrupt after epoch ``k`` (as Ctrl-C would)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, record: dict[str, Any]) -> None:
        if record["epoch"] >= self.k:
            raise KeyboardInterrupt


def test_interrupted_fit_returns_history_and_eval_mode() -> None:
    torch.manual_seed(0)
    model = cnn.simple_cnn(num_classes=3, width=4)
    try:
        hist = train.fit(
            model,
            tiny_set(16),
            tiny_set(8),
            epochs=4,
            batch_size=4,
            progress=False,
            device="cpu",
            callback=_StopAfter(2),
        )
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped fit: the History of the finished epochs was lost")
    assert isinstance(hist, History)
    assert [r["epoch"] for r in hist.records] == [1, 2]
    assert not model.training


RESUME_ARGS = [
    "--model",
    "simple_cnn",
    "--kwargs",
    '{"width": 4}',
    "--n-train",
    "16",
    "--n-val",
    "8",
    "--n-test",
    "8",
    "--image-size",
    "24",
    "--num-classes",
    "3",
    "--epochs",
    "3",
    "--batch-size",
    "8",
    "--seed",
    "3",
    "--device",
    "cpu",
    "--amp",
    "off",
    "--no-progress",
    "--quiet",
]


def test_cli_ctrl_c_then_resume_gives_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    full = tmp_path / "full.pt"
    train_cli.main([*RESUME_ARGS, "--out", str(full)])

    cut = tmp_path / "cut.pt"
    globals_of_main = train_cli.main.__globals__
    real_fit = globals_of_main["fit"]

    def fit_with_ctrl_c(*args: Any, **kwargs: Any) -> Any:
        inner = kwargs.get("callback")

        def cb(record: dict[str, Any]) -> None:
            if inner is not None:
                inner(record)
            if record["epoch"] >= 2:
                raise KeyboardInterrupt

        kwargs["callback"] = cb
        return real_fit(*args, **kwargs)

    monkeypatch.setitem(globals_of_main, "fit", fit_with_ctrl_c)
    capsys.readouterr()
    try:
        train_cli.main([*RESUME_ARGS, "--out", str(cut)])
    except SystemExit:
        pass
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C after epoch 2 escaped the command line as a raw KeyboardInterrupt")
    out = capsys.readouterr()
    assert "--resume" in out.out + out.err, "the interrupted run does not print the command that resumes"
    assert cut.is_file(), "the interrupted run saved nothing"
    monkeypatch.setitem(globals_of_main, "fit", real_fit)

    train_cli.main([*RESUME_ARGS, "--out", str(cut), "--resume"])
    a = checkpoint.load_checkpoint(full).state_dict
    b = checkpoint.load_checkpoint(cut).state_dict
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0, msg=f"{k} differs after resuming")


def test_cli_bad_out_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--out is checked before any data is made or any epoch runs, and leaves no stray .tmp file."""
    globals_of_main = train_cli.main.__globals__
    calls: list[int] = []
    real_fit = globals_of_main["fit"]

    def counting_fit(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setitem(globals_of_main, "fit", counting_fit)
    out = a_dir(tmp_path)
    with pytest.raises(SystemExit):
        train_cli.main([*CLI_BASE, "--out", str(out)])
    assert not calls, "the run trained before finding that --out cannot be written"
    assert not list(tmp_path.glob("*.tmp")), "a stray .tmp file was left"


# ===================================================================================================
# issue 21: lost work cannot happen
# ===================================================================================================
def test_refused_cli_run_keeps_the_finished_model_and_overwrite_replaces_it(tmp_path: Path) -> None:
    out = finished_out(tmp_path)
    before = out.read_bytes()
    with pytest.raises(SystemExit) as info:
        train_cli.main([*CLI_BASE, "--seed", "1", "--out", str(out)])
    assert info.value.code == 2 and "finished model" in str(info.value)
    assert out.read_bytes() == before, "a refused run changed the finished model"
    result = train_cli.main([*CLI_BASE, "--seed", "1", "--out", str(out), "--overwrite"])
    assert out.read_bytes() != before and checkpoint.load_checkpoint(out).meta["seed"] == 1
    assert "--overwrite" not in result["command"], "the recorded command would overwrite on a re-run"


def test_second_cli_run_on_the_same_out_is_refused_while_one_writes_it(tmp_path: Path) -> None:
    from course_pkg.cli.train import _OutLock

    out = tmp_path / "busy.pt"
    holder = _OutLock(str(out))
    assert holder.acquire()
    try:
        with pytest.raises(SystemExit) as info:
            train_cli.main([*CLI_BASE, "--out", str(out)])
        assert "another training run" in str(info.value)
        assert not out.exists()
    finally:
        holder.release()
    train_cli.main([*CLI_BASE, "--out", str(out)])   # free again once the first run is over
    assert out.is_file()


def test_two_writers_on_one_path_never_share_a_temporary_file(tmp_path: Path) -> None:
    """Two runs saving the same checkpoint at once both finish, and the file is always a whole one."""
    import threading

    path = tmp_path / "shared.pt"
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        torch.manual_seed(seed)
        model = cnn.simple_cnn(num_classes=3, width=4)
        try:
            for _ in range(15):
                checkpoint.save_checkpoint(path, model, {"seed": seed})
        except BaseException as err:  # noqa: BLE001 - collected for the assertion
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (0, 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, f"a writer died: {errors[0]!r}"
    assert checkpoint.load_checkpoint(path).meta["seed"] in (0, 1)
    assert not list(tmp_path.glob("*.tmp")), "a temporary file was left behind"


def test_full_disk_is_reported_as_a_full_disk(tmp_path: Path) -> None:
    """A write that stops part-way (here: a file-size limit) says so, not torch's 'unexpected pos'."""
    import subprocess
    import textwrap

    pytest.importorskip("resource")
    target = tmp_path / "big.pt"
    target.write_bytes(b"old")
    code = textwrap.dedent(f"""
        import resource, signal, sys, torch
        from course_pkg import checkpoint
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        try:
            checkpoint.save_checkpoint({str(target)!r}, {{"w": torch.zeros(100_000)}})
        except OSError as err:
            print("OSError:", err)
        except Exception as err:
            print("OTHER", type(err).__name__, err)
    """)
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    text = out.stdout + out.stderr
    assert text.startswith("OSError:"), text
    assert "path=" in text and "disk is full" in text and "unexpected pos" not in text.split("(torch:")[0]
    assert target.read_bytes() == b"old", "the old file was damaged"
    assert not list(tmp_path.glob("*.tmp")), "a temporary file was left behind"


# ===================================================================================================
# issue 21: right results for what was refused or misread
# ===================================================================================================
def test_dataparallel_and_compile_prefixes_load_into_the_plain_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = cnn.simple_cnn(num_classes=3, width=4).eval()
    x = img(2, 3, 24, 24)
    for prefix in ("module.", "_orig_mod.", "_orig_mod.module."):
        path = checkpoint.save_checkpoint(tmp_path / "p.pt", {prefix + k: v for k, v in model.state_dict().items()})
        fresh = cnn.simple_cnn(num_classes=3, width=4).eval()
        checkpoint.load_checkpoint(path, fresh)
        torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0, msg=prefix)
    # the wrapped models themselves: saved with plain keys, and loaded into
    wrapped = nn.DataParallel(model)
    path = checkpoint.save_checkpoint(tmp_path / "dp.pt", wrapped)
    assert not any(k.startswith("module.") for k in checkpoint.load_checkpoint(path).state_dict)
    compiled = torch.compile(cnn.simple_cnn(num_classes=3, width=4).eval(), backend="eager")
    checkpoint.load_checkpoint(path, compiled)
    torch.testing.assert_close(compiled._orig_mod(x), model(x), rtol=0, atol=0)


def test_numpy_numbers_work_like_python_numbers() -> None:
    from course_pkg import pointing_game as pgm
    from course_pkg import seed_stats
    from course_pkg.checks import int_in_range

    a = data.make_clutter(np.int64(3), np.int64(24), np.int64(2), np.int64(5), noise=np.float32(0.01))
    b = data.make_clutter(3, 24, 2, 5, noise=0.01)
    torch.testing.assert_close(a.images, b.images, rtol=0, atol=1e-6)
    assert type(int_in_range("n", np.int64(4), 1)) is int
    r1 = pgm.pointing_game(_MAPS, _MASKS, tolerance=np.int64(1))
    assert r1 == pgm.pointing_game(_MAPS, _MASKS, tolerance=1)
    assert pgm.wilson_interval(np.int64(3), np.int64(10)) == pgm.wilson_interval(3, 10)
    h = _h([0.5, 0.9, 0.91, 0.9])
    assert seed_stats.settled_epoch(h, np.float32(0.02), window=np.int64(1)) == seed_stats.settled_epoch(h, 0.02)
    hist = train.fit(cnn.simple_cnn(num_classes=3, width=4), tiny_set(), epochs=np.int64(1),
                     batch_size=np.int64(4), lr=np.float32(1e-3), device="cpu", progress=False)
    assert len(hist) == 1


def test_tied_seeds_with_a_clear_gap_get_a_clear_verdict() -> None:
    from course_pkg.seed_stats import compare

    c = compare([0.5, 0.5, 0.5], [0.75, 0.75, 0.75], "plain", "SE")
    assert c.verdict == "SE is clearly ahead of plain" and c.diff == pytest.approx(0.25)
    assert "no difference" in compare([0.5, 0.5], [0.5, 0.5]).verdict


def test_checkpoint_with_matching_metadata_still_loads(tmp_path: Path) -> None:
    """The num_heads check compares recorded kwargs with the model: a matching model loads exactly."""
    path = four_head_ckpt(tmp_path)
    model = vit_heads(4)
    checkpoint.load_checkpoint(path, model)
    torch.testing.assert_close(model.state_dict()["head.weight"], vit_heads(4).state_dict()["head.weight"])


# the modules whose public functions and classes suggest the closest keyword (checks.suggest_keywords);
# every other module of course_pkg is listed in NO_KEYWORD_SUGGESTIONS with the reason
KEYWORD_MODULES = (
    "attention", "attention_maps", "bundled", "cbam", "checkpoint", "checkpoint_manifest", "cnn", "cued_textures",
    "data", "datasets", "env", "examples", "explorer_frames", "figure_text", "gate_ablation", "gate_stats",
    "model_registry", "patch_arithmetic", "photos", "plotting", "pointing_game", "pretrained", "resnet", "seed_stats",
    "squeeze_excite", "textures", "to_device", "train.evaluation", "train.fitting", "train.optim", "train.step", "vit",
    "viz", "weights", "widgets",
)
NO_KEYWORD_SUGGESTIONS = {
    "checks": "the helpers themselves (internal argument checks)",
    "glue": "book build helper, no learner calls",
    "grade": "a command line (argv only)",
    "network": "internal network probe",
    "book_references": "book build helper",
    "book_figures": "book build helper",
    "book_mathjax": "book build helper",
    "widget_fallback": "internal: the widgets' offline stand-in",
    "attention_tap": "internal: the identity the models route their maps through",
    "cli": "command lines: argparse names the options",
    "exercises": "exercise checks: check() never raises, by design",
    "grading": "the grader's command line and internals",
    "workspace": "a command line (python -m course_pkg.workspace)",
}


def test_every_module_is_classified_for_keyword_suggestions() -> None:
    import pkgutil

    import course_pkg

    top = {m.name for m in pkgutil.iter_modules(course_pkg.__path__)}
    classified = {m.split(".")[0] for m in KEYWORD_MODULES} | set(NO_KEYWORD_SUGGESTIONS)
    assert top == classified, f"classify: {sorted(top ^ classified)}"


def _typo(name: str) -> str:
    return name[:-1] if len(name) > 4 else name + "s"


@pytest.mark.parametrize("module_name", KEYWORD_MODULES)
def test_mistyped_keyword_names_the_closest_one_everywhere(module_name: str) -> None:
    """Every public function and class: a keyword one letter off gets 'did you mean' and the list."""
    import importlib
    import inspect

    module = importlib.import_module(f"course_pkg.{module_name}")
    checked = 0
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name, None)
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if isinstance(obj, type):
            if issubclass(obj, tuple) or "__init__" not in obj.__dict__:
                continue
        elif not inspect.isfunction(obj):
            continue
        params = inspect.signature(obj).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not named:
            continue
        typo = _typo(named[0])
        if typo in named:
            continue
        with pytest.raises(TypeError) as info:
            obj(**{typo: 1})
        msg = str(info.value)
        assert f"'{typo}'" in msg and "did you mean" in msg and named[0] in msg, f"{name}: {msg}"
        checked += 1
    assert checked > 0 or module_name in ("figure_text",), f"{module_name}: nothing checked"


def test_record_attention_of_a_fresh_block_without_dropout_or_batchnorm_is_allowed() -> None:
    """A freshly built SE or CBAM block is in train() mode but computes the same maps: recorded."""
    from course_pkg.attention_maps import record_attention

    block = squeeze_excite.SqueezeExcitation(16, reduction=4)
    assert block.training
    x = img(2, 16, 4, 4)
    with record_attention(block) as maps:
        block(x)
    with record_attention(block.eval()) as ref:
        block(x)
    assert list(maps) == list(ref) and all(torch.equal(maps[k], ref[k]) for k in maps)
