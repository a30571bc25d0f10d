"""Weights from elsewhere: conversion from the reference implementations and pretrained downloads.

* **ViT** (:func:`from_timm`, :func:`from_torchvision`): the course ViT's keys are timm's, so a timm state dict
  loads as it is (and ``model.state_dict()`` loads back into timm); torchvision's keys map one to one.
* **ResNets with SE or CBAM** (:func:`convert_timm_resnet_state_dict`): timm calls every block's attention
  module ``se``; ours is ``attn``.
* **CBAM** (:func:`convert_timm_cbam_state_dict`, :func:`convert_official_cbam_state_dict`): timm nests the
  spatial convolution one level deeper; the official code (Jongchan/attention-module) uses Linear layers and
  pools ``[max, mean]``.
* **Pretrained ImageNet ViTs** (:func:`load_pretrained_timm`) with their preprocessing settings
  (:func:`preprocessing`, :func:`preprocess`), failing fast and clearly when offline.

Nothing here builds a model of its own: the converters return course models or state dicts for them.
"""

from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .network import reachable

if TYPE_CHECKING:  # pragma: no cover
    from .vit import VisionTransformer

__all__ = [
    "PretrainedUnavailableError",
    "convert_official_cbam_state_dict",
    "convert_timm_cbam_state_dict",
    "convert_timm_resnet_state_dict",
    "from_timm",
    "from_torchvision",
    "load_pretrained_timm",
    "preprocess",
    "preprocessing",
]

LN_EPS = 1e-6  # the eps of timm's and torchvision's ViT LayerNorms (course_pkg.vit.LN_EPS)


# ------------------------------------------------------------------------------------------------
# CBAM and ResNets
# ------------------------------------------------------------------------------------------------
def convert_timm_cbam_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of a timm ``CbamModule`` state dict (alone or inside a model) to ours.

    ``<prefix>spatial.conv.conv.weight -> <prefix>spatial.conv.weight`` and
    ``<prefix>spatial.conv.bn.* -> <prefix>spatial.bn.*``; every other key is kept as it is
    (``channel.fc1``/``channel.fc2`` already match).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = re.sub(r"(^|\.)spatial\.conv\.conv\.", r"\1spatial.conv.", key)
        key = re.sub(r"(^|\.)spatial\.conv\.bn\.", r"\1spatial.bn.", key)
        out[key] = value
    return out


def convert_official_cbam_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a state dict of the official CBAM code (Jongchan/attention-module) to ours.

    The official module (inside a ResNet block it is the attribute ``cbam``) has the keys
    ``ChannelGate.mlp.1.*`` and ``ChannelGate.mlp.3.*`` (``nn.Linear`` layers with bias) and
    ``SpatialGate.spatial.conv.weight``, ``SpatialGate.spatial.bn.*``. They become
    ``channel.fc1.*``, ``channel.fc2.*`` (weights reshaped to 1x1 convolutions), ``spatial.conv.weight``
    (flipped along the input channels, because the official code pools ``[max, mean]`` and we pool
    ``[mean, max]``) and ``spatial.bn.*``. Build the target with ``mlp_bias=True`` (and the default
    ``spatial_norm=True``). A prefix ending in ``cbam.`` becomes ``attn.`` (our ResNet blocks' name).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = re.sub(r"(^|\.)cbam\.", r"\1attn.", key)
        new = re.sub(r"ChannelGate\.mlp\.1\.", "channel.fc1.", new)
        new = re.sub(r"ChannelGate\.mlp\.3\.", "channel.fc2.", new)
        new = re.sub(r"SpatialGate\.spatial\.conv\.", "spatial.conv.", new)
        new = re.sub(r"SpatialGate\.spatial\.bn\.", "spatial.bn.", new)
        if re.search(r"channel\.fc[12]\.weight$", new) and value.dim() == 2:
            value = value[:, :, None, None]                       # Linear (out, in) -> 1x1 conv (out, in, 1, 1)
        if new.endswith("spatial.conv.weight") and "SpatialGate" in key:
            value = value.flip(1)                                 # [max, mean] -> [mean, max]
        out[new] = value
    return out


def convert_timm_resnet_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert the state dict of a timm ResNet (``resnet50``, ``seresnet50``, or one built with
    ``block_args=dict(attn_layer="cbam")``) to the keys of :mod:`course_pkg.resnet`: the blocks' ``se.``
    becomes ``attn.`` and CBAM's spatial keys are renamed (:func:`convert_timm_cbam_state_dict`)."""
    renamed = {k.replace(".se.", ".attn."): v for k, v in state_dict.items()}
    return convert_timm_cbam_state_dict(renamed)


# ------------------------------------------------------------------------------------------------
# ViT
# ------------------------------------------------------------------------------------------------
_TRAINING_ONLY = ("drop_rate", "attn_drop_rate")  # overrides a source model does not fix
_GELU_KINDS = ("exact", "tanh")


def _check_source(obj: Any, source: str, module_ok: bool, kind: str, name_advice: str) -> None:
    """``TypeError`` unless ``obj`` is a state dict (a Mapping) or, when ``module_ok``, an ``nn.Module``."""
    if isinstance(obj, Mapping) or (module_ok and isinstance(obj, nn.Module)):
        return
    if isinstance(obj, str):
        raise TypeError(f"{source}: model_or_state_dict={obj!r} is a model name (a str), not a model; "
                        f"{name_advice}")
    raise TypeError(f"{source}: model_or_state_dict={obj!r} is a {type(obj).__name__}; pass a {kind} "
                    "module or its state_dict()")


def _config_from_shapes(state_dict: Mapping[str, torch.Tensor], source: str) -> tuple[dict[str, Any], int]:
    """What the tensor shapes of a timm-keyed state dict determine exactly, and the number of patches.

    The head count, the image size (for a given number of patches) and the GELU kind are *not* recorded in
    a state dict; they are left out here.
    """
    for key in ("cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.mlp.fc1.weight"):
        if key not in state_dict:
            raise ValueError(f"{source}: the state dict has no {key!r}; is this a ViT with a class token?")
    d, c, ph, pw = state_dict["patch_embed.proj.weight"].shape  # (D, C, Ph, Pw)
    num_patches = state_dict["pos_embed"].shape[1] - 1  # pos_embed: (1, 1 + gh*gw, D)
    config: dict[str, Any] = dict(
        patch_size=(ph, pw), in_chans=c, embed_dim=d,
        depth=len({k.split(".")[1] for k in state_dict if k.startswith("blocks.")}),
        mlp_hidden_dim=state_dict["blocks.0.mlp.fc1.weight"].shape[0],   # exact, whatever the ratio
        qkv_bias="blocks.0.attn.qkv.bias" in state_dict,
        num_classes=state_dict["head.weight"].shape[0] if "head.weight" in state_dict else 0,
        global_pool="avg" if "fc_norm.weight" in state_dict else "token",
    )
    return config, num_patches


def _same(key: str, a: Any, b: Any) -> bool:
    """Whether two values of a ViT argument are the same (``32`` and ``(32, 32)`` are)."""
    if key in ("img_size", "patch_size"):
        from .checks import pair

        return pair(a, key) == pair(b, key)
    return bool(a == b)


def _merge_overrides(config: dict[str, Any], overrides: dict[str, Any], source: str, what: str
                     ) -> dict[str, Any]:
    """Apply ``overrides`` to the ``config`` read from the source; one that contradicts it is an error."""
    out = dict(config)
    accepted = sorted({*config, *_TRAINING_ONLY, "mlp_ratio"})
    for key, value in overrides.items():
        if key in _TRAINING_ONLY:
            out[key] = value
        elif key == "mlp_ratio":
            hidden = int(config["embed_dim"] * value)
            if hidden != config["mlp_hidden_dim"]:
                raise ValueError(f"{source}: mlp_ratio={value!r} gives {hidden} MLP units but {what} has "
                                 f"{config['mlp_hidden_dim']}; leave mlp_ratio out")
        elif key in config:
            if not _same(key, value, config[key]):
                raise ValueError(f"{source}: {key}={value!r} contradicts {what}, which has "
                                 f"{key}={config[key]!r}; leave {key} out (it is read from {what})")
        else:
            raise TypeError(f"{source}: unexpected argument {key}={value!r}; accepted: {accepted}")
    return out


def _gelu_kind(act: nn.Module) -> Optional[str]:
    """``"exact"``, ``"tanh"`` or ``None`` (not a GELU) for an activation module of timm or PyTorch."""
    if isinstance(act, nn.GELU):
        return "tanh" if act.approximate == "tanh" else "exact"
    name = type(act).__name__
    if name == "GELU":      # timm.layers.activations.GELU: F.gelu, exact
        return "exact"
    if name == "GELUTanh":  # timm.layers.activations.GELUTanh
        return "tanh"
    return None


def _check_gelu(gelu: Any, source: str) -> None:
    if gelu not in _GELU_KINDS:
        raise ValueError(f"{source}: gelu={gelu!r} is not known; use 'exact' (nn.GELU(), timm's default) or "
                         "'tanh' (act_layer='gelu_tanh')")
    if gelu == "tanh":
        raise ValueError(f"{source}: the source uses the tanh approximation of GELU; the course ViT uses the "
                         "exact GELU (nn.GELU()), so its outputs would differ: this model cannot be converted")


def _build_and_load(state_dict: dict[str, torch.Tensor], config: dict[str, Any], source: str
                    ) -> VisionTransformer:
    """Build a course ViT from ``config`` and load ``state_dict`` strictly, with a readable error."""
    from .vit import VisionTransformer

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


def _from_state_dict(state_dict: dict[str, torch.Tensor], given: dict[str, Any], source: str,
                     needed: tuple[str, ...], why: dict[str, str]) -> VisionTransformer:
    """Build and load from a timm-keyed state dict: the shapes give most of the config; ``needed`` keys
    (not recorded in a state dict) must be in ``given``; the rest of ``given`` must agree with the shapes."""
    config, num_patches = _config_from_shapes(state_dict, source)
    missing = [k for k in needed if k not in given]
    if missing:
        example = ", ".join(f"{k}=..." for k in missing)
        reasons = "; ".join(why[k] for k in missing)
        raise ValueError(f"{source}: a state dict does not record {', '.join(missing)}, and guessing could "
                         f"give a model with other outputs: pass {example} ({reasons}). Or pass the model "
                         "itself, whose configuration is read from it")
    given = dict(given)
    if "gelu" in needed:
        _check_gelu(given.pop("gelu"), source)
    read = {k: given.pop(k) for k in needed if k in given}
    if "num_heads" in read:
        from .checks import positive_int

        positive_int("num_heads", read["num_heads"])
    if "img_size" in read:
        from .checks import pair

        h, w = pair(read["img_size"], "img_size")
        ph, pw = config["patch_size"]
        if h % ph or w % pw or (h // ph) * (w // pw) != num_patches:
            raise ValueError(f"{source}: img_size={read['img_size']!r} gives a grid of {h / ph:g} x {w / pw:g} "
                             f"patches of {ph}x{pw}, but the state dict's position embedding holds "
                             f"{num_patches} patches; pass the image size the model was trained at")
    config.update(read)
    config = _merge_overrides(config, given, source, "the state dict")
    return _build_and_load(dict(state_dict), config, source)


_WHY = {
    "num_heads": "the qkv weights have the same shape for any head count",
    "img_size": "the position embedding gives the number of patches, not the grid's shape: "
                "16 patches of 8 px are 32 x 32 or 16 x 64",
    "gelu": "gelu='exact' for nn.GELU(), timm's default; a model built with act_layer='gelu_tanh' uses "
            "the tanh GELU, which the course ViT does not have",
}


def from_timm(model_or_state_dict: Union[nn.Module, Mapping[str, torch.Tensor]], **config_overrides: Any
              ) -> VisionTransformer:
    """A course ViT with the weights (and so the outputs) of a timm ``VisionTransformer``. Nothing is guessed.

    Args:
        model_or_state_dict: a timm ``VisionTransformer`` (its whole configuration is read from it: image
            size, patch size, heads, pooling, GELU kind, widths) or its ``state_dict()``. A state dict
            records the widths, depth, patch size, classes and pooling in its shapes but not the head
            count, the image size or the GELU kind: pass ``num_heads=``, ``img_size=`` (an int or (H, W))
            and ``gelu="exact"`` (timm's default ``nn.GELU()``) with it, or get a ``ValueError`` that asks.
        **config_overrides: ``drop_rate`` / ``attn_drop_rate`` (for fine-tuning), and for a state dict the
            arguments above. A value that contradicts the source model is a ``ValueError``.

    Raises:
        TypeError: a model name (use :func:`load_pretrained_timm`), ``None``, or a module that is not a ViT.
        ValueError: a missing or contradicting argument, or a model the course ViT cannot represent exactly
            (tanh GELU, another LayerNorm eps, layer scale, register tokens...).
    """
    source = "from_timm"
    _check_source(model_or_state_dict, source, True, "timm VisionTransformer",
                  f"for pretrained weights use load_pretrained_timm({model_or_state_dict!r}), or pass "
                  f"timm.create_model({model_or_state_dict!r}) or its state_dict()")
    if not isinstance(model_or_state_dict, nn.Module):
        return _from_state_dict(dict(model_or_state_dict), config_overrides, source,
                                ("num_heads", "img_size", "gelu"), _WHY)
    tm = model_or_state_dict
    if not all(hasattr(tm, a) for a in ("patch_embed", "blocks", "cls_token", "pos_embed")):
        raise TypeError(f"{source}: model_or_state_dict is a {type(tm).__name__}, not a timm "
                        "VisionTransformer (it has no patch_embed, blocks, cls_token or pos_embed)")
    for attr, what in (("no_embed_class", "position embeddings without the class token"),
                       ("dynamic_img_size", "dynamic image size"),
                       ("pool_include_prefix", "pooling that includes the [CLS] token")):
        if getattr(tm, attr, False):
            raise ValueError(f"{source}: {what} ({attr}={getattr(tm, attr)!r}) is not supported")
    if not all(abs(m.eps - LN_EPS) < 1e-12 for m in tm.modules() if isinstance(m, nn.LayerNorm)):
        raise ValueError(f"{source}: this model uses a LayerNorm eps other than 1e-6; the course ViT's "
                         "outputs would differ")
    kinds = {_gelu_kind(b.mlp.act) for b in tm.blocks if hasattr(b, "mlp") and hasattr(b.mlp, "act")}
    if kinds != {"exact"}:
        acts = sorted({type(b.mlp.act).__name__ for b in tm.blocks if hasattr(b, "mlp")})
        raise ValueError(f"{source}: this model's MLP activation is {acts} ({sorted(map(str, kinds))}); the "
                         "course ViT uses the exact GELU (nn.GELU()), so its outputs would differ")
    heads = {b.attn.num_heads for b in tm.blocks}
    if len(heads) != 1:
        raise ValueError(f"{source}: the blocks have different head counts {sorted(heads)}; not supported")
    config, _ = _config_from_shapes(tm.state_dict(), source)
    config.update(img_size=tuple(tm.patch_embed.img_size), patch_size=tuple(tm.patch_embed.patch_size),
                  num_heads=heads.pop(), global_pool=tm.global_pool)
    overrides = dict(config_overrides)
    if "gelu" in overrides and overrides.pop("gelu") != "exact":
        raise ValueError(f"{source}: gelu contradicts the source model, which uses the exact GELU")
    config = _merge_overrides(config, overrides, source, "the source model")
    return _build_and_load(tm.state_dict(), config, source)


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


def from_torchvision(model_or_state_dict: Union[nn.Module, Mapping[str, torch.Tensor]], **config_overrides: Any
                     ) -> VisionTransformer:
    """A course ViT with the weights (and so the outputs) of a torchvision ``VisionTransformer``.

    The keys map one to one (``conv_proj`` -> ``patch_embed.proj``, ``encoder.layers.encoder_layer_{i}.ln_1``
    -> ``blocks.{i}.norm1``, ``self_attention.in_proj_*`` -> ``attn.qkv.*`` with the same [q; k; v] packing,
    ``mlp.0``/``mlp.3`` -> ``mlp.fc1``/``mlp.fc2``, ``encoder.ln`` -> ``norm``, ``heads.head`` -> ``head``).
    From a model, the configuration is read from it. A state dict does not record the head count: pass
    ``num_heads=`` with it (the image size follows from the position embedding, since torchvision's ViT
    is square; its GELU is always the exact one). An override that contradicts the source is an error.
    """
    source = "from_torchvision"
    name = model_or_state_dict
    _check_source(name, source, True, "torchvision VisionTransformer",
                  f"build it with torchvision.models.{name}(weights=...) and pass the module or its "
                  "state_dict()")
    config: dict[str, Any] = {}
    if isinstance(model_or_state_dict, nn.Module):
        tv = model_or_state_dict
        if not all(hasattr(tv, a) for a in ("conv_proj", "encoder", "class_token")):
            raise TypeError(f"{source}: model_or_state_dict is a {type(tv).__name__}, not a torchvision "
                            "VisionTransformer (it has no conv_proj, encoder or class_token)")
        if any(abs(m.eps - LN_EPS) > 1e-12 for m in tv.modules() if isinstance(m, nn.LayerNorm)):
            raise ValueError(f"{source}: this model's LayerNorm eps is not 1e-6; its outputs would differ")
        config = dict(num_heads=tv.encoder.layers[0].self_attention.num_heads, img_size=tv.image_size,
                      patch_size=tv.patch_size)
        state_dict = tv.state_dict()
    else:
        state_dict = dict(model_or_state_dict)
    converted = {_torchvision_to_timm_key(k): v for k, v in state_dict.items()}
    if "cls_token" not in converted:
        raise ValueError(f"{source}: the state dict has no 'class_token'; is this a torchvision ViT?")
    shapes, num_patches = _config_from_shapes(converted, source)
    if not config:  # a state dict: the square grid gives the image size; the head count must be given
        g = math.isqrt(num_patches)
        ph, pw = shapes["patch_size"]
        if g * g != num_patches or ph != pw:
            raise ValueError(f"{source}: {num_patches} patches of {ph}x{pw} is not the square grid of a "
                             "torchvision ViT")
        given = dict(config_overrides)
        given.setdefault("img_size", g * ph)
        given["gelu"] = "exact"
        return _from_state_dict(converted, given, source, ("num_heads", "img_size", "gelu"), _WHY)
    config = _merge_overrides({**shapes, **config}, config_overrides, source, "the source model")
    return _build_and_load(converted, config, source)


# ------------------------------------------------------------------------------------------------
# Pretrained weights through timm (needs the Hugging Face Hub, or weights already in its cache)
# ------------------------------------------------------------------------------------------------
class PretrainedUnavailableError(ConnectionError):
    """Pretrained weights cannot be fetched: offline, and not in the local Hugging Face cache."""




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
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} is a {type(name).__name__}; use a timm model name (a str) such as "
                        "'vit_small_patch16_224'; to convert a model you already have, use from_timm(model)")
    try:
        import timm
    except ImportError as err:
        raise PretrainedUnavailableError("load_pretrained_timm needs timm: pip install timm") from err
    except (RuntimeError, OSError) as err:   # timm imports torchvision, whose operators may not load
        from .env import torch_pair_problem

        raise PretrainedUnavailableError(f"timm cannot be imported here: {torch_pair_problem() or err}") from err
    if not timm.is_model(name.split(".")[0]):
        raise ValueError(f"name={name!r} is not a timm model; try e.g. 'vit_small_patch16_224'")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    problem = "HF_HUB_OFFLINE is set" if offline else reachable(endpoint, timeout)
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


def preprocessing(model_or_cfg: Union[nn.Module, Mapping[str, Any]]) -> dict[str, Any]:
    """The preprocessing a pretrained model expects, from its timm ``pretrained_cfg``.

    Returns ``{"input_size": (3, H, W), "mean": (3 floats), "std": (3 floats), "crop_pct": float,
    "interpolation": str}`` (timm's defaults where the config is silent: ImageNet mean/std, crop 0.875,
    bicubic).
    """
    cfg = getattr(model_or_cfg, "pretrained_cfg", model_or_cfg)
    if not isinstance(cfg, Mapping):
        raise ValueError("model_or_cfg has no pretrained_cfg; pass a model from load_pretrained_timm or its "
                         "pretrained_cfg dict")
    out = {"input_size": cfg.get("input_size", (3, 224, 224)), "mean": cfg.get("mean", (0.485, 0.456, 0.406)),
           "std": cfg.get("std", (0.229, 0.224, 0.225)), "crop_pct": cfg.get("crop_pct", 0.875),
           "interpolation": cfg.get("interpolation", "bicubic")}
    size = out["input_size"]
    if not (isinstance(size, (tuple, list)) and len(size) == 3 and size[0] == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise ValueError(f"pretrained_cfg['input_size']={size!r} is not valid; use (3, H, W), e.g. (3, 224, 224)")
    for key in ("mean", "std"):
        v = out[key]
        if not (isinstance(v, (tuple, list)) and len(v) == 3 and all(isinstance(c, (int, float)) for c in v)
                and (key == "mean" or all(c > 0 for c in v))):
            raise ValueError(f"pretrained_cfg[{key!r}]={v!r} is not valid; use three numbers, one per channel"
                             + (" (all positive)" if key == "std" else ""))
    crop = out["crop_pct"]
    if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0 < crop <= 1:
        raise ValueError(f"pretrained_cfg['crop_pct']={crop!r} is not valid; use a fraction in (0, 1], e.g. 0.875")
    if not isinstance(out["interpolation"], str):
        raise ValueError(f"pretrained_cfg['interpolation']={out['interpolation']!r} is not valid; use 'bicubic', "
                         "'bilinear' or 'nearest'")
    return {"input_size": tuple(size), "mean": tuple(out["mean"]), "std": tuple(out["std"]),
            "crop_pct": float(crop), "interpolation": out["interpolation"]}


def preprocess(image: torch.Tensor, model_or_cfg: Union[nn.Module, Mapping[str, Any]]) -> torch.Tensor:
    """timm's evaluation transform for a pretrained model: resize, centre crop, normalise.

    Args:
        image: ``(3, H, W)`` or ``(B, 3, H, W)`` floats in [0, 1] (a ``uint8`` or 0-255 image, an image
            already normalised or one with NaN raises ``ValueError``: the result would be wrong silently).
        model_or_cfg: a model from :func:`load_pretrained_timm`, or its ``pretrained_cfg``.

    Returns:
        ``(B, 3, h, w)`` (a batch of one for a single image) at the model's ``input_size``: the shorter side
        is resized to ``size / crop_pct``, the centre ``size`` is cut out, then ``(x - mean) / std``.
    """
    from .checks import check_tensor
    from .photos import _check_image

    p = preprocessing(model_or_cfg)
    check_tensor(image, "image", "preprocess", "(3, H, W) or (B, 3, H, W)")
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"image must be (3, H, W) or (B, 3, H, W) in [0, 1], got shape {tuple(image.shape)}")
    _check_image(x, "preprocess", name="image")  # float in [0, 1]: not uint8, 0-255, normalised, NaN
    _, h_out, w_out = p["input_size"]
    scale = math.floor(h_out / p["crop_pct"]) / min(x.shape[-2:])
    size = (max(h_out, round(x.shape[-2] * scale)), max(w_out, round(x.shape[-1] * scale)))
    mode = p["interpolation"] if p["interpolation"] in ("bilinear", "bicubic", "nearest") else "bilinear"
    x = F.interpolate(x.float(), size=size, mode=mode, align_corners=False if mode != "nearest" else None,
                      antialias=mode != "nearest")
    top, left = (size[0] - h_out) // 2, (size[1] - w_out) // 2
    x = x[..., top:top + h_out, left:left + w_out]
    mean = torch.tensor(p["mean"], dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(p["std"], dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
