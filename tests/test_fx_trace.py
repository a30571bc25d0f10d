"""Every course model traces with ``torch.fx.symbolic_trace`` and keeps its input checks in the graph.

The input checks read only shapes and dtypes, but ``torch.fx`` traces with placeholders that have neither,
so each model file registers its check with ``torch.fx.wrap``: the check becomes one call in the graph and
runs on the real input when the traced module runs, with the same message as the eager model. Options that
choose a code path (``return_attention``, ``mask``) are fixed to their defaults while tracing
(:func:`course_pkg.checks.fixed_when_traced`) and the graph refuses any other value. ``torch.compile``
(``test_compile.py``) is unaffected.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from course_pkg.attention import MultiHeadSelfAttention, causal_mask
from course_pkg.cbam import CBAM, ChannelAttention, SpatialAttention
from course_pkg.checks import fixed_when_traced
from course_pkg.resnet import BasicBlock, Bottleneck, ResNet, resnet_small
from course_pkg.squeeze_excite import SqueezeExcitation
from course_pkg.vit import Block, PatchEmbed, VisionTransformer

VIT = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=10)
IMAGE = (2, 3, 32, 32)
MAP = (2, 8, 6, 6)
TOKENS = (2, 5, 16)

# name -> (builder, input shape)
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "squeeze-excitation": (lambda: SqueezeExcitation(8, reduction=2), MAP),
    "channel attention": (lambda: ChannelAttention(8, reduction=2), MAP),
    "spatial attention": (lambda: SpatialAttention(), MAP),
    "cbam": (lambda: CBAM(8, reduction=2), MAP),
    "attention": (lambda: MultiHeadSelfAttention(16, 4), TOKENS),
    "vit block": (lambda: Block(16, 4), TOKENS),
    "patch embed": (lambda: PatchEmbed(32, 8, 3, 16), IMAGE),
    "resnet_small": (lambda: resnet_small(), IMAGE),
    "resnet_small se": (lambda: resnet_small(attention="se", widths=(8, 16), blocks=(1, 1)), IMAGE),
    "resnet_small cbam": (lambda: resnet_small(attention="cbam", widths=(8, 16), blocks=(1, 1)), IMAGE),
    "resnet basic imagenet stem": (lambda: ResNet(BasicBlock, (1, 1), widths=(8, 16), num_classes=10), IMAGE),
    "resnet bottleneck se": (lambda: ResNet(Bottleneck, (1, 1), widths=(8, 16), num_classes=10, attention="se",
                                            reduction=4), IMAGE),
    "resnet bottleneck cbam": (lambda: ResNet(Bottleneck, (1, 1), widths=(8, 16), num_classes=10,
                                              attention="cbam", reduction=4), IMAGE),
    "vit": (lambda: VisionTransformer(**VIT), IMAGE),
    "vit avg pool": (lambda: VisionTransformer(**VIT, global_pool="avg"), IMAGE),
}


def _traced(name: str) -> tuple[nn.Module, torch.fx.GraphModule, torch.Tensor]:
    build, shape = MODELS[name]
    torch.manual_seed(0)
    model = build().eval()
    return model, torch.fx.symbolic_trace(model), torch.randn(*shape)


def _called(graph_module: torch.fx.GraphModule) -> set[str]:
    return {getattr(n.target, "__name__", str(n.target)) for n in graph_module.graph.nodes
            if n.op == "call_function"}


@pytest.mark.parametrize("name", list(MODELS))
def test_traces_and_computes_what_the_model_computes(name: str) -> None:
    model, traced, x = _traced(name)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)
        torch.testing.assert_close(traced(2 * x[:1]), model(2 * x[:1]), rtol=0, atol=0)  # another batch size
    assert any(c.startswith(("check_", "_check_")) for c in _called(traced)), _called(traced)


@pytest.mark.parametrize("name, bad, message", [
    ("squeeze-excitation", torch.randn(2, 7, 6, 6), "input has 7 channels"),
    ("cbam", torch.randn(2, 7, 6, 6), "input has 7 channels"),
    ("spatial attention", torch.randn(8, 6, 6), "4-D input"),
    ("spatial attention", torch.randn(2, 8, 6, 6).double(), "dtype torch.float64"),
    ("attention", torch.randn(2, 5, 15), "last dimension 15"),
    ("attention", torch.randn(5, 16), "expected 3"),
    ("vit", torch.randn(2, 3, 40, 40), "does not match the model's img_size"),
    ("vit", torch.randn(2, 32, 32, 3), "channels-last"),
    ("resnet_small", torch.randn(2, 1, 32, 32), "in_chans=3"),
    ("resnet bottleneck cbam", (torch.rand(2, 3, 32, 32) * 255).to(torch.uint8), "/ 255"),
])
def test_the_traced_graph_keeps_the_input_checks(name: str, bad: torch.Tensor, message: str) -> None:
    """The same ValueError, with the same message, from the eager model and from its trace."""
    model, traced, _ = _traced(name)
    with torch.no_grad():
        with pytest.raises(ValueError, match=message) as eager:
            model(bad)
        with pytest.raises(ValueError, match=message) as graph:
            traced(bad)
    assert str(graph.value) == str(eager.value)


@pytest.mark.parametrize("name, kwargs, message", [
    ("vit", {"return_attention": True}, "return_attention=True cannot be used"),
    ("vit block", {"return_attention": True}, "return_attention=True cannot be used"),
    ("attention", {"return_attention": True}, "return_attention=True cannot be used"),
    ("attention", {"mask": causal_mask(5)}, "mask .* cannot be used with this module"),
])
def test_options_are_fixed_to_their_defaults_and_the_graph_refuses_others(name: str, kwargs: dict,
                                                                          message: str) -> None:
    """A graph holds one path: the default one. Another value raises instead of being ignored."""
    model, traced, x = _traced(name)
    with torch.no_grad():
        with pytest.raises(ValueError, match=message):
            traced(x, **kwargs)
        model(x, **kwargs)                                 # the eager model still takes the option
        defaults = {k: None if k == "mask" else False for k in kwargs}
        torch.testing.assert_close(traced(x, **defaults), model(x), rtol=0, atol=0)


def test_fixed_when_traced_returns_the_value_outside_tracing() -> None:
    mask = causal_mask(3)
    assert fixed_when_traced(True, "return_attention", False) is True
    assert fixed_when_traced(mask, "mask", None) is mask


def test_a_traced_model_can_be_transformed_and_trained() -> None:
    """What tracing is for: the graph can be rewritten (here: every ReLU becomes a GELU) and trained."""
    torch.manual_seed(0)
    model = resnet_small(attention="se", widths=(8, 16), blocks=(1, 1))
    traced = torch.fx.symbolic_trace(model)
    relus = [n for n in traced.graph.nodes if n.op == "call_module"
             and isinstance(traced.get_submodule(n.target), nn.ReLU)]
    assert relus
    for node in relus:
        with traced.graph.inserting_after(node):
            gelu = traced.graph.call_function(F.gelu, node.args)
        node.replace_all_uses_with(gelu)
        traced.graph.erase_node(node)
    traced.recompile()
    x = torch.randn(4, 3, 16, 16)
    loss = traced.train()(x).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in traced.parameters())
    with torch.no_grad():
        assert not torch.allclose(traced.eval()(x), model.eval()(x))
