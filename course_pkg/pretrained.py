"""Pretrained ImageNet ViTs through timm, and the preprocessing they expect.

* :func:`load_pretrained_timm` downloads timm's weights (from the Hugging Face Hub, or its local cache) and
  converts them into a course ViT (:func:`course_pkg.weights.from_timm`); offline, it fails fast and clearly
  with :class:`PretrainedUnavailableError` instead of letting a download hang.
* :func:`preprocessing` reads a pretrained model's settings (input size, mean, std, crop, interpolation) and
  :func:`preprocess` applies timm's evaluation transform: ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1] ->
  ``(B, 3, h, w)`` normalised.

Converting weights you already have (timm, torchvision, official CBAM code) lives in :mod:`course_pkg.weights`.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .network import reachable
from .weights import from_timm

if TYPE_CHECKING:  # pragma: no cover
    from .vit import VisionTransformer

__all__ = ["PretrainedUnavailableError", "load_pretrained_timm", "preprocess", "preprocessing"]


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
