"""Argument checks shared by the package: one message per kind of mistake, naming the parameter and value.

Conventions (the same for the whole public API):

* ``TypeError``: the argument is not of an accepted Python type (a list, a NumPy array or a str where a
  tensor is needed, a str where a number is needed).
* ``ValueError``: the type is right but the value is not (out of range, wrong dtype, shape or layout).

Every message names the parameter, shows the value (or its dtype / shape) and says what is accepted, and
where the likely cause is known (a channels-last image, a 0-255 ``uint8`` image, a NumPy array) it says so.
The tensor checks read only shapes and dtypes: they never copy the tensor or wait for the device.

Compilers and tracers. Under ``torch.compile`` the checks become guards on static shapes and dtypes (checks
that read tensor values are skipped while it traces, :func:`is_compiling`). ``torch.fx.symbolic_trace``
traces with placeholders that have no shape, so every model file registers its input check with
``torch.fx.wrap``: the check is kept as one call in the traced graph and runs, with the same message, on the
real input each time the graph runs. Options that choose a code path (``return_attention``, ``mask``) are
fixed to their defaults while tracing and the graph refuses any other value (:func:`fixed_when_traced`). A
traced graph has the attention taps inlined (they are identities), so ``record_attention`` watches the
untraced model.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Optional, Union

import torch

__all__ = [
    "add_keyword_suggestions",
    "check_dtype_matches",
    "check_image_batch",
    "check_probability",
    "check_tensor",
    "describe",
    "fixed_when_traced",
    "int_in_range",
    "is_compiling",
    "pair",
    "positive_int",
    "suggest_keywords",
    "unknown_keyword_message",
]


def is_compiling() -> bool:
    """True while ``torch.compile`` traces: data-dependent checks (that read tensor values) are skipped."""
    return bool(torch.compiler.is_compiling())


def fixed_when_traced(value: Any, name: str, default: Any) -> Any:
    """``value`` itself, except while ``torch.fx.symbolic_trace`` traces the module that takes it.

    ``torch.fx`` turns every argument of the traced ``forward`` into a placeholder, including options such as
    ``return_attention=False`` or ``mask=None`` that choose a code path or the output's structure; a graph
    cannot hold both paths. Such an option is then fixed to its ``default`` (what ``concrete_args`` would
    do), and the graph checks when it runs that the option is still ``default``: a traced model called with
    another value raises a ``ValueError``, never gives a silently different answer. In eager mode and
    under ``torch.compile`` this returns ``value`` unchanged.

    Args:
        value: the argument as the module received it.
        name: its parameter name, for the message.
        default: the value a trace is specialised to: the parameter's default, ``False`` or ``None``.
    """
    if isinstance(value, torch.fx.Proxy):
        value.tracer.create_proxy("call_function", _check_traced_option, (value, name, default), {})
        return default
    return value


def _check_traced_option(value: Any, name: str, default: Any) -> None:
    """Run by a module traced with :func:`fixed_when_traced`: refuse another value than ``default``."""
    same = value is None if default is None else (isinstance(value, bool) and value == default)
    if not same:
        raise ValueError(f"{describe(value, name)} cannot be used with this module: it was traced by "
                         f"torch.fx.symbolic_trace with {name}={default!r}, the only value its graph "
                         "handles; call the untraced module (eagerly or under torch.compile) instead")


def describe(value: Any, name: str) -> str:
    """``name=value`` for a message if the value's repr is short, else ``name`` and its type (and shape)."""
    if isinstance(value, torch.Tensor):
        return f"{name} (a Tensor of shape {tuple(value.shape)} and dtype {value.dtype})"
    text = repr(value)
    return f"{name}={text}" if len(text) <= 60 else f"{name} (a {_type_name(value)})"


def _type_name(value: Any) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__.split('.')[0]}.{t.__name__}"


def positive_int(name: str, value: Any, hint: str = "") -> int:
    """``value`` as an ``int`` if it is a positive integer (Python or NumPy), else an error naming ``name``.

    A value that is not a number at all (a str, a tensor, ``None``, a ``bool``) raises ``TypeError``; a
    number that is not a positive integer (``0``, ``-3``, ``5.0``) raises ``ValueError``.

    Args:
        name: the parameter's name, for the message.
        value: what the caller passed.
        hint: an optional sentence appended to the message (e.g. the paper's value).
    """
    extra = f"; {hint}" if hint else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{describe(value, name)} is a {_type_name(value)}; use a positive int"
                        f"{extra}")
    if not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} is not valid; use a positive integer{extra}")
    return int(value)


def int_in_range(name: str, value: Any, lo: int, hi: Optional[int] = None, hint: str = "") -> int:
    """``value`` as an ``int`` if it is an integer (Python or NumPy) from ``lo`` to ``hi`` (inclusive; no upper
    bound when ``hi`` is None).

    A non-number is a ``TypeError``, a number out of range or not whole a ``ValueError``; both name ``name``,
    the value and the accepted range, followed by ``hint``.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name}={value!r} is a {type(value).__name__}; use an int"
                        + (f" >= {lo}" if hi is None else f" from {lo} to {hi}") + hint)
    if not isinstance(value, numbers.Integral) or value < lo or (hi is not None and value > hi):
        accepted = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
        raise ValueError(f"{name}={value!r} is not valid; use {accepted}{hint}")
    return int(value)                           # a NumPy integer becomes a Python int


def check_probability(name: str, value: Any) -> float:
    """``value`` as a float if it is a probability in ``[0, 1)`` (a dropout rate), else an error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{describe(value, name)} is a {_type_name(value)}; use a float in [0, 1)")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={value!r} is out of range; use a dropout probability in [0, 1)")
    return float(value)


def pair(value: Union[int, tuple[int, int], Any], name: str) -> tuple[int, int]:
    """``16 -> (16, 16)``; a pair of positive ints passes through; a str, a float or ``None`` raises
    ``TypeError``, a wrong number of entries or a non-positive entry ``ValueError``."""
    if isinstance(value, str) or value is None or isinstance(value, (bool, float)):
        raise TypeError(f"{name}={value!r} is a {_type_name(value)}; use a positive int or a pair of "
                        "positive ints (H, W)")
    if isinstance(value, numbers.Integral):
        p: tuple[Any, ...] = (int(value), int(value))
    else:
        try:
            p = tuple(value)
        except TypeError:
            raise TypeError(f"{describe(value, name)} is a {_type_name(value)}; use a positive int or a "
                            "pair of positive ints (H, W)") from None
    if len(p) != 2 or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
                              for v in p):
        raise ValueError(f"{name}={value!r} must be a positive int or a pair of positive ints")
    return int(p[0]), int(p[1])


def check_tensor(x: Any, name: str = "x", owner: str = "", expected: str = "") -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a ``torch.Tensor``; the message says how to convert.

    Args:
        x: the argument.
        name: its parameter name (``"x"``, ``"mask"``, ``"q"``...).
        owner: the module or function that takes it, for the message (``"ResNet"``).
        expected: the expected shape, e.g. ``"(B, C, H, W)"``.
    """
    if isinstance(x, torch.Tensor):
        return x
    who = f"{owner}: " if owner else ""
    shape = f" of shape {expected}" if expected else ""
    kind = _type_name(x)
    if kind == "numpy.ndarray":
        how = f"convert it with torch.from_numpy({name}) (then .float() if it holds float64)"
    elif isinstance(x, (list, tuple)):
        how = f"convert it with torch.as_tensor({name}, dtype=torch.float32)"
    else:
        how = "pass a tensor"
    raise TypeError(f"{who}{name} must be a torch.Tensor{shape}, got a {kind}; {how}")


def check_dtype_matches(x: torch.Tensor, expected: torch.dtype, name: str = "x", owner: str = "") -> None:
    """Raise ``ValueError`` unless ``x`` is floating point and (outside autocast) of the ``expected`` dtype.

    The advice names the likely cause: ``uint8`` is an 8-bit image (``x.float() / 255``), ``float64`` comes
    from NumPy (``x.float()``), an integer tensor needs ``x.float()``.
    """
    if x.dtype == expected:
        return
    who = f"{owner}: " if owner else ""
    if not x.is_floating_point():
        if x.dtype == torch.uint8:
            how = (f"an 8-bit image holds 0-255: use {name}.float() / 255 for values in [0, 1] "
                   "(and normalise as the model expects)")
        else:
            how = f"convert it with {name}.float()"
        raise ValueError(f"{who}{name} has dtype {x.dtype}; a float tensor ({expected}, the dtype of the "
                         f"weights) is accepted: {how}")
    if torch.is_autocast_enabled(x.device.type):
        return  # autocast casts the inputs of each operation itself
    if x.dtype == torch.float64:
        how = (f"use {name}.float() (torch.from_numpy keeps NumPy's float64)" if expected == torch.float32
               else f"use {name}.to({expected})")
    else:
        how = f"use {name}.to({expected}), or convert the model with .to({x.dtype}), or run under autocast"
    raise ValueError(f"{who}{name} has dtype {x.dtype} but the weights are {expected}; {how}")


def check_image_batch(x: Any, channels: int, name: str = "x", owner: str = "",
                      param: str = "channels", dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Check that ``x`` is an image batch or feature map ``(B, channels, H, W)``; return it unchanged.

    Raises ``TypeError`` for a list or NumPy array, ``ValueError`` for a 3-D tensor (one image without its
    batch dimension), a channels-last ``(B, H, W, C)`` tensor (detected when dim 1 does not match and the
    last dim does), a wrong channel count, or a dtype other than ``dtype`` (the weights' dtype).

    Args:
        x: the input.
        channels: the channel count the module was built for.
        name: the parameter's name, for the message.
        owner: the module's name (and configuration), for the message.
        param: the constructor argument that fixed ``channels`` (``"channels"``, ``"in_chans"``).
        dtype: the weights' dtype; ``None`` skips the dtype check.
    """
    x = check_tensor(x, name, owner, f"(B, {channels}, H, W)")
    who = f"{owner}: " if owner else ""
    subject = owner or name
    shape = tuple(x.shape)
    if x.dim() != 4:
        one = (f"add a batch dimension with {name}.unsqueeze(0) for a single image or map"
               if x.dim() == 3 else "pass a batch of shape (B, C, H, W)")
        raise ValueError(f"{subject} expects a 4-D input (B, C, H, W), got a {x.dim()}-D tensor of shape "
                         f"{shape}; {one}")
    if shape[1] != channels:
        if shape[-1] == channels:
            raise ValueError(
                f"{who}{name} has shape {shape}, which looks channels-last (B, H, W, C) with "
                f"C={channels}; this module was built with {param}={channels} and expects (B, C, H, W): "
                f"use {name}.permute(0, 3, 1, 2)")
        raise ValueError(f"{subject} was built for {param}={channels} but the input has {shape[1]} channels "
                         f"(shape {shape}); pass (B, {channels}, H, W), or build it with "
                         f"{param}={shape[1]}")
    if dtype is not None:
        check_dtype_matches(x, dtype, name, owner)
    return x


# ------------------------------------------------------------------------------------------------
# A mistyped keyword: name the closest accepted one
# ------------------------------------------------------------------------------------------------
#: Names learners bring from other libraries, and the course's name for the same thing.
KEYWORD_ALIASES: dict[str, str] = {
    "learning_rate": "lr", "n_epochs": "epochs", "num_epochs": "epochs", "epoch": "epochs",
    "batchsize": "batch_size", "bs": "batch_size", "n_classes": "num_classes", "classes": "num_classes",
    "nclasses": "num_classes", "heads": "num_heads", "n_heads": "num_heads", "dim_head": "head_dim",
    "image_size": "img_size", "img_size": "image_size", "in_channels": "in_chans", "channels": "in_chans",
    "wd": "weight_decay", "warmup": "warmup_epochs", "clip": "grad_clip", "dropout": "attn_drop",
    "map_location": "device", "device": "map_location", "random_state": "seed", "seeds": "seed",
}


def unknown_keyword_message(fn_name: str, unknown: str, accepted: list[str]) -> str:
    """``fn() got an unexpected keyword argument 'x'; did you mean 'y'? It takes: ...``."""
    import difflib

    guess = KEYWORD_ALIASES.get(unknown)
    if guess not in accepted:
        close = difflib.get_close_matches(unknown, accepted, n=1, cutoff=0.6)
        if not close:   # a different spelling of the same words: n_classes / num_classes, lr / l_r
            squashed = {a.replace("_", ""): a for a in accepted}
            close = difflib.get_close_matches(unknown.replace("_", ""), list(squashed), n=1, cutoff=0.6)
            close = [squashed[c] for c in close]
        guess = close[0] if close else None
    hint = f"; did you mean {guess!r}? It takes: " if guess else "; it takes: "
    return f"{fn_name}() got an unexpected keyword argument {unknown!r}{hint}{', '.join(accepted)}"


def suggest_keywords(fn: Callable[..., Any], owner: str = "") -> Callable[..., Any]:
    """Wrap ``fn`` so that a mistyped keyword raises ``TypeError`` naming the closest accepted name.

    Functions that take ``**kwargs`` are returned unchanged. The wrapper keeps ``fn``'s name, docstring
    and signature (``inspect.signature`` follows ``__wrapped__``) and checks only the keyword names.
    """
    import functools
    import inspect

    if getattr(fn, "__wrapped_keywords__", False):
        return fn
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn
    names = frozenset(n for n, p in params.items()
                      if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
    accepted = [n for n in params if n in names and n != "self"]
    label = owner or fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for key in kwargs:
            if key not in names:
                raise TypeError(unknown_keyword_message(label, key, accepted))
        return fn(*args, **kwargs)

    wrapper.__wrapped_keywords__ = True  # type: ignore[attr-defined]
    return wrapper


def add_keyword_suggestions(namespace: dict[str, Any]) -> None:
    """Give every public function and class of a module (its ``__all__``) :func:`suggest_keywords`.

    A module calls ``add_keyword_suggestions(globals())`` as its last line. Functions are replaced in the
    module; a class gets its own ``__init__`` wrapped (NamedTuples and enums are left alone).
    """
    module = namespace.get("__name__")
    for name in namespace.get("__all__", ()):
        obj = namespace.get(name)
        if getattr(obj, "__module__", None) != module:
            continue                                    # re-exported from elsewhere: wrapped there
        if inspect_isfunction(obj):
            namespace[name] = suggest_keywords(obj)
        elif isinstance(obj, type) and "__init__" in obj.__dict__ and not issubclass(obj, tuple):
            obj.__init__ = suggest_keywords(obj.__dict__["__init__"], obj.__name__)  # type: ignore[misc]


def inspect_isfunction(obj: Any) -> bool:
    """``inspect.isfunction`` (imported only when a module is set up)."""
    import inspect

    return inspect.isfunction(obj)
