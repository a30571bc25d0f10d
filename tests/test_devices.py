"""Every ``device=`` of the public API, on a machine without a GPU (issue 21, part 1).

A chapter that runs on the CPU can still crash on a GPU: a function may forget to move a field, or hand a
device name straight to torch. ``torch.device("meta")`` is a device that is not the CPU and exists on
every machine (its tensors have shapes and dtypes but no values), so moving every device-taking function
to it here catches that class of bug without a GPU.

* :func:`test_every_device_parameter_is_listed`: the functions and methods that take ``device=`` (or
  ``map_location=``) are found with ``inspect`` over every module of ``course_pkg``; each must have a
  row in :data:`META_CALLS`, so a new one cannot be forgotten.
* :func:`test_meta_device`: each row runs with ``torch.device("meta")``; every tensor it returns (inside
  models, data sets, tuples, dicts) must be on it, or, for the functions that compute numbers (a loss,
  an accuracy), it must refuse the meta device with a clear error.
* :func:`test_every_data_container_has_the_same_to`: every ``NamedTuple`` of tensors the package returns
  has ``.to(device)``, moving every tensor field and keeping the others.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, Callable, NamedTuple, Optional

import pytest
import torch
from torch import nn

import course_pkg
from course_pkg import (
    attention,
    bundled,
    checkpoint,
    checkpoint_manifest,
    cnn,
    cued_textures,
    data,
    textures,
    train,
)
from course_pkg.to_device import to_device

META = torch.device("meta")
DEVICE_PARAMS = {"device", "map_location"}


def _public_callables() -> dict[str, Callable[..., Any]]:
    """``{"module.function": f, "module.Class.method": f}`` for everything public in ``course_pkg``."""
    out: dict[str, Callable[..., Any]] = {}
    for info in pkgutil.walk_packages(course_pkg.__path__, "course_pkg."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                out[f"{module.__name__}.{name}"] = obj
            elif inspect.isclass(obj):
                for attr, fn in vars(obj).items():
                    if (attr == "__init__" or not attr.startswith("_")) and inspect.isfunction(fn):
                        out[f"{module.__name__}.{name}.{attr}"] = fn
    return out


def _takes_device(fn: Callable[..., Any]) -> bool:
    try:
        return bool(DEVICE_PARAMS & set(inspect.signature(fn).parameters))
    except (TypeError, ValueError):
        return False


def _smallest(prefix: str = "") -> str:
    names = [n for n in checkpoint_manifest.list_bundled() if n.startswith(prefix)]
    return min(names, key=lambda n: checkpoint_manifest.checkpoint_path(n).stat().st_size)


def _saved(tmp: Any) -> str:
    torch.manual_seed(0)
    return str(checkpoint.save_checkpoint(tmp / "m.pt", cnn.simple_cnn(num_classes=3, width=4)))


class Call(NamedTuple):
    run: Callable[[Any, torch.device], Any]   # (tmp_path, device) -> result
    refuses: Optional[str] = None            # for functions that compute numbers: the error's words


#: One row per public function or method that takes ``device=`` / ``map_location=``.
META_CALLS: dict[str, Call] = {
    "course_pkg.attention.causal_mask": Call(lambda t, d: attention.causal_mask(4, device=d)),
    "course_pkg.bundled.bundled_test_data": Call(
        lambda t, d: bundled.bundled_test_data(_smallest("textures_"), device=d)),
    "course_pkg.bundled.load_bundled": Call(lambda t, d: bundled.load_bundled(_smallest(), device=d)),
    "course_pkg.checkpoint.load_checkpoint": Call(lambda t, d: checkpoint.load_checkpoint(_saved(t), map_location=d)),
    "course_pkg.data.ClutterSet.to": Call(lambda t, d: data.make_clutter(2, 24, 2).to(d)),
    "course_pkg.data.LabelledImages.to": Call(lambda t, d: data.load_digits("test").to(d)),
    "course_pkg.to_device.to_device": Call(
        lambda t, d: to_device({"x": torch.ones(2), "pair": (torch.zeros(1), "label")}, d)),
    "course_pkg.textures.cat_on_grass": Call(lambda t, d: textures.cat_on_grass(2, device=d)),
    "course_pkg.cued_textures.make_cued_textures": Call(
        lambda t, d: cued_textures.make_cued_textures(2, device=d)),
    "course_pkg.textures.make_textures": Call(lambda t, d: textures.make_textures(2, device=d)),
    "course_pkg.textures.TextureSet.to": Call(lambda t, d: textures.make_textures(2).to(d)),
    "course_pkg.train.evaluation.evaluate": Call(
        lambda t, d: train.evaluate(cnn.simple_cnn(num_classes=2, width=4), data.make_clutter(4, 24, 2),
                                    device=d), refuses="meta"),
    "course_pkg.train.fitting.fit": Call(
        lambda t, d: train.fit(cnn.simple_cnn(num_classes=2, width=4), data.make_clutter(4, 24, 2),
                               epochs=1, device=d, progress=False), refuses="meta"),
}


def test_every_device_parameter_is_listed() -> None:
    found = {name for name, fn in _public_callables().items() if _takes_device(fn)}
    missing = sorted(found - set(META_CALLS))
    assert not missing, f"these take device= but have no row in META_CALLS (add one): {missing}"
    stale = sorted(set(META_CALLS) - found - {"course_pkg.textures.TextureSet.to"})
    assert not stale, f"these rows name no function that takes device= (remove them): {stale}"


def _tensors(obj: Any, where: str = "result") -> list[tuple[str, torch.Tensor]]:
    """Every tensor inside ``obj``: a tensor, a module's parameters and buffers, tuples, lists, dicts."""
    if isinstance(obj, torch.Tensor):
        return [(where, obj)]
    if isinstance(obj, nn.Module):
        return [(f"{where}.{k}", v) for k, v in [*obj.named_parameters(), *obj.named_buffers()]]
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return [t for f in obj._fields for t in _tensors(getattr(obj, f), f"{where}.{f}")]
    if isinstance(obj, (tuple, list)):
        return [t for i, v in enumerate(obj) for t in _tensors(v, f"{where}[{i}]")]
    if isinstance(obj, dict):
        return [t for k, v in obj.items() for t in _tensors(v, f"{where}[{k!r}]")]
    if hasattr(obj, "state_dict") and hasattr(obj, "meta"):   # a Checkpoint
        return _tensors(obj.state_dict, f"{where}.state_dict")
    return []


def _xfail_textureset_to(name: str) -> list[Any]:
    if name == "course_pkg.textures.TextureSet.to" and not hasattr(textures.TextureSet, "to"):
        return [pytest.mark.xfail(reason="TextureSet has no .to yet: textures.py is the lead's; the change "
                                  "is in the issue-21 report (to = to_device.to_device)", strict=True)]
    return []


@pytest.mark.parametrize("name", [pytest.param(n, marks=_xfail_textureset_to(n)) for n in META_CALLS])
def test_meta_device(name: str, tmp_path: Any) -> None:
    call = META_CALLS[name]
    if call.refuses is not None:
        with pytest.raises(ValueError, match=call.refuses) as info:
            call.run(tmp_path, META)
        assert "device" in str(info.value), info.value
        return
    result = call.run(tmp_path, META)
    tensors = _tensors(result)
    assert tensors, f"{name} returned no tensor to check ({type(result).__name__})"
    off = [(w, t.device) for w, t in tensors if t.device != META]
    assert not off, f"{name}(device=meta) left these off the meta device: {off[:5]}"


def test_default_device_is_the_cpu_for_data() -> None:
    """``None`` keeps data on the CPU (ready to plot), as documented."""
    assert attention.causal_mask(3).device.type == "cpu"
    assert to_device(torch.ones(1), None).device.type == "cpu"


# ------------------------------------------------------------------------------------------------
# One .to(device) protocol for every data container
# ------------------------------------------------------------------------------------------------
CONTAINERS: dict[str, Callable[[], Any]] = {
    "ClutterSet": lambda: data.make_clutter(2, 24, 2),
    "LabelledImages": lambda: data.load_digits("test"),
    "TextureSet": lambda: textures.make_textures(2),
}


def _data_containers() -> set[str]:
    """Every public NamedTuple class of course_pkg with an ``images`` field (a data set)."""
    names = set()
    for info in pkgutil.walk_packages(course_pkg.__path__, "course_pkg."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, tuple) and "images" in getattr(obj, "_fields", ())
                    and obj.__module__ == module.__name__ and not name.startswith("_")):
                names.add(name)
    return names


def test_every_data_container_is_listed() -> None:
    assert _data_containers() == set(CONTAINERS)


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=_xfail_textureset_to("course_pkg.textures.TextureSet.to" if n == "TextureSet" else n))
    for n in CONTAINERS])
def test_every_data_container_has_the_same_to(name: str) -> None:
    ds = CONTAINERS[name]()
    assert hasattr(ds, "to"), f"{name} has no .to(device)"
    moved = ds.to(META)
    assert type(moved) is type(ds)
    for field in ds._fields:
        before, after = getattr(ds, field), getattr(moved, field)
        if isinstance(before, torch.Tensor):
            assert after.device == META and after.shape == before.shape and after.dtype == before.dtype, field
            assert before.device.type == "cpu", f"{name}.to changed the original's {field}"
        else:
            assert after == before, f"{name}.to changed the non-tensor field {field}"
    # the same device names, and the same clear error, as every other device= of the package
    with pytest.raises(ValueError, match=r"device='gpu'.*'cuda'"):
        ds.to("gpu")


@pytest.mark.parametrize("bad, exc, words", [
    ("gpu", ValueError, ("device='gpu'", "'cuda'", "'cpu'", "'mps'", "torch.device")),
    ("CUDA", ValueError, ("device='CUDA'", "lower case")),
    ("cuda:x", ValueError, ("device='cuda:x'", "cuda:N")),
    (0, TypeError, ("device=0", "int", "'cuda:N'")),
    (torch.ones(1), TypeError, ("device=", "Tensor", "torch.device")),
])
@pytest.mark.parametrize("where", ["causal_mask", "to_device", "ClutterSet.to", "load_bundled",
                                   "bundled_test_data", "fit", "evaluate"])
def test_one_device_error_for_every_device_parameter(where: str, bad: Any, exc: type, words: tuple) -> None:
    """``'gpu'`` and friends: one message, naming ``device`` (not ``prefer``), before any work."""
    calls: dict[str, Callable[[], Any]] = {
        "causal_mask": lambda: attention.causal_mask(3, device=bad),
        "to_device": lambda: to_device(torch.ones(1), bad),
        "ClutterSet.to": lambda: data.make_clutter(2, 24, 2).to(bad),
        "load_bundled": lambda: bundled.load_bundled(_smallest(), device=bad),
        "bundled_test_data": lambda: bundled.bundled_test_data(_smallest(), device=bad),
        "fit": lambda: train.fit(cnn.simple_cnn(num_classes=2, width=4), data.make_clutter(4, 24, 2),
                                 epochs=1, device=bad, progress=False),
        "evaluate": lambda: train.evaluate(cnn.simple_cnn(num_classes=2, width=4),
                                           data.make_clutter(4, 24, 2), device=bad),
    }
    with pytest.raises(exc) as info:
        calls[where]()
    msg = str(info.value)
    assert "prefer" not in msg, msg
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} missing from: {msg}"


def test_make_textures_parses_device_like_the_rest() -> None:
    with pytest.raises(ValueError, match=r"device='gpu'.*'cuda'"):
        textures.make_textures(2, device="gpu")
