"""Tests for course_pkg.vit: parity with timm and torchvision, shapes, rollout, errors, conversions."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest
import torch
import torch.nn as nn
import torchvision.models.vision_transformer as tv_vit
from helpers import randomise_

from course_pkg import pretrained as P
from course_pkg import vit as V
from course_pkg.attention_maps import attention_rollout, cls_attention_map, cls_rollout_map
from course_pkg.network import reachable
from course_pkg.pretrained import PretrainedUnavailableError
from course_pkg.vit import PatchEmbed, VisionTransformer
from course_pkg.weights import from_timm, from_torchvision

try:
    import timm
except ImportError:  # a test requirement; without it only the tests that compare with timm are skipped
    timm = None
needs_timm = pytest.mark.skipif(timm is None, reason="needs timm (pip install timm)")

SMALL = dict(img_size=32, patch_size=8, in_chans=3, num_classes=7, embed_dim=48, depth=2, num_heads=4,
             mlp_ratio=2.0)


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random parameters: the references start heads and some embeddings at zero."""
    return randomise_(model, seed, scale=0.2)


def timm_small(global_pool: str = "token", **kw) -> nn.Module:
    cfg = {**SMALL, "global_pool": global_pool, **kw}
    return randomize_(timm.models.vision_transformer.VisionTransformer(**cfg)).double().eval()


def tv_small() -> nn.Module:
    model = tv_vit.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=48,
                                     mlp_dim=96, num_classes=7)
    return randomize_(model).double().eval()


def images(b: int = 3, c: int = 3, size: int = 32, dtype: torch.dtype = torch.float64, seed: int = 1):
    return torch.randn(b, c, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# ------------------------------------------------------------------------------------------------
# Parity with the reference libraries
# ------------------------------------------------------------------------------------------------
@needs_timm
@pytest.mark.parametrize("global_pool", ["token", "avg"])
def test_timm_parity_strict_state_dict(global_pool: str) -> None:
    ref = timm_small(global_pool)
    ours = VisionTransformer(**SMALL, global_pool=global_pool).double().eval()
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-10)
        torch.testing.assert_close(ours.forward_features(x), ref.forward_features(x), rtol=0, atol=1e-10)
        pooled = ours.forward_head(ours.forward_features(x), pre_logits=True)
        torch.testing.assert_close(pooled, ref.forward_head(ref.forward_features(x), pre_logits=True),
                                   rtol=0, atol=1e-10)


@needs_timm
def test_timm_parity_without_qkv_bias_and_head() -> None:
    ref = timm_small(qkv_bias=False, num_classes=0)
    ours = from_timm(ref).eval()
    assert ours.num_classes == 0 and isinstance(ours.head, nn.Identity)
    assert ours.blocks[0].attn.qkv.bias is None
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-10)


def test_torchvision_parity() -> None:
    ref = tv_small()
    ours = from_torchvision(ref).eval()
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-10)
    with torch.inference_mode():  # torchvision may take nn.MultiheadAttention's fused fast path here
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-10)


@needs_timm
def test_vit_b16_keys_and_outputs_match_timm_and_torchvision() -> None:
    torch.manual_seed(0)
    ref = timm.create_model("vit_base_patch16_224", pretrained=False).eval()
    ours = V.vit_base().eval()
    ref_sd = ref.state_dict()
    shapes = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in ref_sd.items()}
    ours.load_state_dict(ref_sd, strict=True)
    with torch.no_grad():
        for p in (ref.head.weight, ref.head.bias):  # timm's head starts at zero: make the logits informative
            p.normal_(0, 0.02)
    ours = from_timm(ref).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)
    del ref
    tv = tv_vit.vit_b_16(weights=None).eval()
    converted = from_torchvision(tv).eval()
    assert converted.num_heads == 12 and converted.grid_size == (14, 14)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), tv(x), rtol=1e-4, atol=1e-4)


@needs_timm
@pytest.mark.parametrize("size", ["tiny", "small", "base", "large"])
def test_parameter_counts_equal_timm(size: str) -> None:
    factory = getattr(V, f"vit_{size}")
    with torch.device("meta"):  # no memory, no initialisation: counting only
        ours = sum(p.numel() for p in factory(16).parameters())
        ref = sum(p.numel() for p in timm.create_model(f"vit_{size}_patch16_224").parameters())
    assert ours == ref


@needs_timm
def test_huge_parameter_count_equals_timm_and_factories_take_any_patch_size() -> None:
    with torch.device("meta"):
        ours = sum(p.numel() for p in V.vit_huge(14, num_classes=0).parameters())
        ref = sum(p.numel() for p in timm.create_model("vit_huge_patch14_224", num_classes=0).parameters())
    assert ours == ref
    model = V.vit_tiny(patch_size=4, img_size=32, num_classes=10, depth=1)
    assert model.grid_size == (8, 8) and model.pos_embed.shape == (1, 65, 192)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# ------------------------------------------------------------------------------------------------
# Conversions and round trips
# ------------------------------------------------------------------------------------------------
@needs_timm
@pytest.mark.parametrize("global_pool", ["token", "avg"])
def test_from_timm_state_dict_infers_the_config(global_pool: str) -> None:
    ref = timm_small(global_pool)
    ours = from_timm(ref.state_dict(), num_heads=4, img_size=32, gelu="exact").eval()
    config = (ours.img_size, ours.patch_size, ours.embed_dim, len(ours.blocks), ours.global_pool)
    assert config == ((32, 32), (8, 8), 48, 2, global_pool) and ours.num_classes == 7
    assert ours.pos_embed.dtype == torch.float64
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-10)


@needs_timm
def test_round_trip_course_to_timm_and_torchvision_keys() -> None:
    ours = randomize_(VisionTransformer(**SMALL)).double().eval()
    ref = timm.models.vision_transformer.VisionTransformer(**SMALL).double().eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    back = from_timm(ref.state_dict(), num_heads=4, img_size=32, gelu="exact").eval()
    # torchvision state dict built by renaming our keys the other way
    inverse = {"cls_token": "class_token", "pos_embed": "encoder.pos_embedding"}
    tv_sd = {}
    for k, v in ours.state_dict().items():
        name = inverse.get(k, k)
        name = name.replace("patch_embed.proj.", "conv_proj.").replace("head.", "heads.head.")
        if name.startswith("norm."):
            name = "encoder.ln." + name[len("norm."):]
        if name.startswith("blocks."):
            _, i, rest = name.split(".", 2)
            rest = (rest.replace("norm1.", "ln_1.").replace("norm2.", "ln_2.")
                    .replace("attn.qkv.weight", "self_attention.in_proj_weight")
                    .replace("attn.qkv.bias", "self_attention.in_proj_bias")
                    .replace("attn.proj.", "self_attention.out_proj.")
                    .replace("mlp.fc1.", "mlp.0.").replace("mlp.fc2.", "mlp.3."))
            name = f"encoder.layers.encoder_layer_{i}.{rest}"
        tv_sd[name] = v
    tv = tv_vit.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=48,
                                  mlp_dim=96, num_classes=7).double().eval()
    tv.load_state_dict(tv_sd, strict=True)
    from_tv = from_torchvision(tv.state_dict(), num_heads=4).eval()
    x = images()
    with torch.no_grad():
        expected = ours(x)
        for model in (ref, back, tv, from_tv):
            torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-10)


@needs_timm
def test_from_timm_rejects_what_it_cannot_represent() -> None:
    with pytest.raises(ValueError, match="Unsupported keys: .*reg_token"):
        from_timm(timm_small(reg_tokens=1))
    with pytest.raises(ValueError, match="Unsupported keys: .*ls1.gamma"):
        from_timm(timm_small(init_values=1e-5))
    with pytest.raises(ValueError, match="no_embed_class"):
        from_timm(timm_small(no_embed_class=True))
    with pytest.raises(ValueError, match="GELU"):
        from_timm(timm_small(act_layer="gelu_tanh"))
    with pytest.raises(ValueError, match=r"does not record num_heads, img_size, gelu.*pass num_heads=\.\.\."):
        from_timm(timm_small().state_dict())
    with pytest.raises(ValueError, match="has no 'cls_token'"):
        from_timm({"pos_embed": torch.zeros(1, 5, 8)})


def test_from_torchvision_rejects_unknown_keys() -> None:
    sd = dict(tv_small().state_dict())
    sd["heads.pre_logits.weight"] = torch.zeros(3, 48)
    with pytest.raises(ValueError, match="heads.pre_logits.weight"):
        from_torchvision(sd, num_heads=4)


# ------------------------------------------------------------------------------------------------
# Attention maps and rollout
# ------------------------------------------------------------------------------------------------
def test_return_attention_shapes_rows_and_same_logits() -> None:
    torch.manual_seed(0)
    model = VisionTransformer(**SMALL).eval()
    x = images(dtype=torch.float32)
    with torch.no_grad():
        plain = model(x)
        logits, atts = model(x, return_attention=True)
    torch.testing.assert_close(logits, plain, rtol=1e-5, atol=1e-5)  # explicit path == fused SDPA path
    assert len(atts) == 2
    for a in atts:
        assert a.shape == (3, 4, 17, 17)
        torch.testing.assert_close(a.sum(-1), torch.ones(3, 4, 17))
    tokens, atts2 = model.forward_features(x, return_attention=True)
    assert tokens.shape == (3, 17, 48) and len(atts2) == 2


def test_attention_rollout_matches_a_hand_computation() -> None:
    g = torch.Generator().manual_seed(0)
    atts = [torch.softmax(torch.randn(2, 3, 5, 5, generator=g), -1) for _ in range(3)]
    eye = torch.eye(5)
    expected = eye.expand(2, 5, 5)
    for a in atts:
        step = 0.5 * a.mean(1) + 0.5 * eye
        step = step / step.sum(-1, keepdim=True)
        expected = step @ expected
    out = attention_rollout(atts)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 5))
    raw = attention_rollout(atts, add_residual=False)
    torch.testing.assert_close(raw, atts[2].mean(1) @ atts[1].mean(1) @ atts[0].mean(1))


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard", [0.0, 0.5, 0.9])
def test_rollout_rows_normalised_and_discard(fusion: str, discard: float) -> None:
    torch.manual_seed(0)
    model = VisionTransformer(**SMALL).eval()
    with torch.no_grad():
        _, atts = model(images(dtype=torch.float32), return_attention=True)
    out = attention_rollout(atts, head_fusion=fusion, discard_ratio=discard)
    assert out.shape == (3, 17, 17)
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(3, 17))
    if discard > 0:  # one layer, no residual: each row keeps n - floor(n * discard) weights
        single = attention_rollout(atts[:1], head_fusion=fusion, discard_ratio=discard, add_residual=False)
        assert ((single > 0).sum(-1) <= 17 - int(17 * discard)).all()
    grid = cls_rollout_map(atts, model.grid_size, head_fusion=fusion, discard_ratio=discard)
    assert grid.shape == (3, 4, 4)
    torch.testing.assert_close(grid.flatten(1), out[:, 0, 1:])
    per_head = cls_attention_map(atts[-1], model.grid_size)
    assert per_head.shape == (3, 4, 4, 4)
    torch.testing.assert_close(per_head[:, 2].flatten(1), atts[-1][:, 2, 0, 1:])


def test_rollout_of_identity_attention_is_identity() -> None:
    atts = [torch.eye(4).expand(1, 2, 4, 4)] * 3
    torch.testing.assert_close(attention_rollout(atts), torch.eye(4).expand(1, 4, 4))


def test_rollout_errors() -> None:
    a = torch.softmax(torch.randn(1, 2, 5, 5), -1)
    with pytest.raises(ValueError, match="attentions is empty"):
        attention_rollout([])
    with pytest.raises(ValueError, match="head_fusion='median'"):
        attention_rollout([a], head_fusion="median")
    with pytest.raises(ValueError, match=r"discard_ratio=1.0 must be in \[0, 1\)"):
        attention_rollout([a], discard_ratio=1.0)
    with pytest.raises(ValueError, match=r"attentions\[1\] has shape \(1, 2, 4, 4\)"):
        attention_rollout([a, torch.softmax(torch.randn(1, 2, 4, 4), -1)])
    with pytest.raises(ValueError, match=r"shape \(B, heads, N, N\)"):
        attention_rollout([a[0]])
    with pytest.raises(ValueError, match="grid_size=3 gives 9 patches but the maps have 5 tokens"):
        cls_rollout_map([a], 3)
    with pytest.raises(ValueError, match="grid_size=3 gives 9 patches"):
        cls_attention_map(a, 3)


# ------------------------------------------------------------------------------------------------
# Bad configurations and inputs
# ------------------------------------------------------------------------------------------------
def test_bad_configs_have_clear_errors() -> None:
    with pytest.raises(ValueError, match="img_size=30 is not divisible by patch_size=16"):
        VisionTransformer(img_size=30, patch_size=16)
    with pytest.raises(ValueError, match=r"img_size=\(32, 30\) is not divisible by patch_size=8 \(image wid"):
        PatchEmbed((32, 30), 8)
    with pytest.raises(ValueError, match="embed_dim=50 is not divisible by num_heads=4"):
        VisionTransformer(32, 8, embed_dim=50, num_heads=4, depth=1)
    with pytest.raises(ValueError, match="global_pool='max' is not supported"):
        VisionTransformer(32, 8, global_pool="max")
    with pytest.raises(ValueError, match="patch_size=0 must be a positive int"):
        VisionTransformer(32, 0)
    with pytest.raises(ValueError, match="depth=0 is not valid; use a positive integer"):
        VisionTransformer(32, 8, depth=0)
    with pytest.raises(ValueError, match="num_classes=-1"):
        VisionTransformer(32, 8, num_classes=-1)


def test_bad_inputs_have_clear_errors() -> None:
    model = VisionTransformer(**SMALL).eval()
    with pytest.raises(ValueError, match="input size 48x48 does not match the model's img_size=32x32"):
        model(torch.randn(1, 3, 48, 48))
    with pytest.raises(ValueError, match="built for in_chans=3 but the input has 1 channels"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"got a 3-D tensor of shape \(3, 32, 32\).*unsqueeze\(0\)"):
        model(torch.randn(3, 32, 32))


# ------------------------------------------------------------------------------------------------
# Training behaviour
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("global_pool", ["token", "avg"])
def test_gradients_reach_every_parameter(global_pool: str) -> None:
    torch.manual_seed(0)
    model = VisionTransformer(**SMALL, global_pool=global_pool)
    loss = nn.functional.cross_entropy(model(images(dtype=torch.float32)), torch.tensor([0, 1, 2]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    model = VisionTransformer(**SMALL, drop_rate=0.3, attn_drop_rate=0.3)
    x = images(dtype=torch.float32)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------
# Pretrained weights: quick, clear failure offline; the local cache is used when present
# ------------------------------------------------------------------------------------------------
@needs_timm
def test_load_pretrained_timm_fails_fast_when_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # .invalid never resolves (RFC 2606)
    monkeypatch.setattr(P, "_cached_weights", lambda name: None)
    start = time.perf_counter()
    with pytest.raises(PretrainedUnavailableError, match=r"https://hub.invalid is unreachable.*load_bundled"):
        P.load_pretrained_timm("vit_tiny_patch16_224", timeout=1.0)
    assert time.perf_counter() - start < 10


@needs_timm
def test_load_pretrained_timm_respects_hf_hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(P, "_cached_weights", lambda name: None)
    with pytest.raises(PretrainedUnavailableError, match="HF_HUB_OFFLINE is set"):
        P.load_pretrained_timm("vit_tiny_patch16_224")
    with pytest.raises(ValueError, match="name='not_a_model' is not a timm model"):
        P.load_pretrained_timm("not_a_model")


def test_reachability_check_gives_up_on_a_silent_server() -> None:
    server = socket.socket()  # accepts connections (backlog) but never answers: a download would hang
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    try:
        start = time.perf_counter()
        problem = reachable(f"http://127.0.0.1:{server.getsockname()[1]}/", timeout=0.5)
        assert problem is not None and ("0.5 s" in problem or "timed out" in problem)
        assert time.perf_counter() - start < 3
    finally:
        server.close()


def test_reachability_check_accepts_any_http_answer() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 (the http.server API)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        assert reachable(f"http://127.0.0.1:{httpd.server_port}/", timeout=5.0) is None
    finally:
        httpd.shutdown()
        httpd.server_close()


@needs_timm
def test_load_pretrained_timm_uses_cached_weights_offline(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    ref = randomize_(timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2)).eval()
    path = tmp_path / "weights.pth"
    full = timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict()
    full.update(ref.state_dict())  # a 12-block file; the model built with depth=2 reads the first blocks
    kept = {k: v for k, v in full.items() if not k.startswith("blocks.") or int(k.split(".")[1]) < 2}
    torch.save(kept, path)
    monkeypatch.setattr(P, "reachable", lambda url, timeout: "offline (test)")
    monkeypatch.setattr(P, "_cached_weights", lambda name: str(path))
    model = P.load_pretrained_timm("vit_tiny_patch16_224", depth=2)
    assert model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# GPU
# ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_cpu_and_gpu_agree() -> None:
    torch.manual_seed(0)
    model = randomize_(VisionTransformer(**SMALL)).eval()
    x = images(dtype=torch.float32)
    with torch.no_grad():
        cpu = model(x)
        gpu = model.cuda()(x.cuda())
        gpu_logits, atts = model(x.cuda(), return_attention=True)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(gpu_logits.cpu(), cpu, rtol=1e-3, atol=1e-3)
    assert all(a.is_cuda for a in atts)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_has_no_nan(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = V.vit_small(patch_size=16, img_size=64, num_classes=10).cuda()
    x = torch.randn(4, 3, 64, 64, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        logits, atts = model(x, return_attention=True)
        loss = logits.float().logsumexp(-1).mean()
    loss.backward()
    assert torch.isfinite(logits).all() and all(torch.isfinite(a).all() for a in atts)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
        fast = model.eval()(x)
    assert torch.isfinite(fast).all()


def test_initialisation_is_timms() -> None:
    """pos_embed: trunc-normal std 0.02 (not zeros); cls_token: normal std 1e-6 (not zeros); Linear weights
    trunc-normal std 0.02 with zero biases; LayerNorms at the identity. As timm's VisionTransformer."""
    torch.manual_seed(0)
    ours = VisionTransformer(img_size=32, patch_size=4, embed_dim=96, depth=2, num_heads=4, num_classes=10)
    torch.manual_seed(0)
    theirs = timm.models.vision_transformer.VisionTransformer(img_size=32, patch_size=4, embed_dim=96, depth=2,
                                                              num_heads=4, num_classes=10)
    for model in (ours, theirs):
        assert 0.018 < model.pos_embed.std().item() < 0.022
        assert 0 < model.cls_token.abs().max().item() and model.cls_token.std().item() < 1e-5
        qkv = model.blocks[0].attn.qkv
        assert 0.018 < qkv.weight.std().item() < 0.022 and qkv.bias.abs().max().item() == 0
        assert torch.equal(model.blocks[0].norm1.weight, torch.ones(96))
    ratio = ours.blocks[0].mlp.fc1.weight.std() / theirs.blocks[0].mlp.fc1.weight.std()
    assert 0.95 < ratio.item() < 1.05


def test_no_weight_decay_names_position_embedding_and_class_token() -> None:
    assert VisionTransformer(img_size=8, patch_size=4, embed_dim=8, depth=1, num_heads=2).no_weight_decay() == {
        "pos_embed", "cls_token"}


@needs_timm
def test_from_timm_accepts_a_width_that_is_not_a_round_ratio() -> None:
    ref = timm.models.vision_transformer.VisionTransformer(img_size=16, patch_size=4, embed_dim=48, depth=1,
                                                           num_heads=4, num_classes=3, mlp_ratio=2.3).eval()
    assert ref.blocks[0].mlp.fc1.out_features == 110
    ours = from_timm(ref).eval()
    assert ours.blocks[0].mlp.fc1.out_features == 110
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)
