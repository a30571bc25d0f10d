"""The environment: pick a device, seed every generator, print a banner in each chapter."""

from __future__ import annotations

import numbers
import os
import platform
import random
from typing import Optional

import numpy as np
import torch

__all__ = ["as_device", "banner", "environment", "get_device", "seed_everything", "torch_pair_problem"]


ACCEPTED_DEVICES = ("cpu", "cuda", "cuda:N", "mps")


def _parse_device(choice: object, source: str) -> torch.device:
    """Turn a device name into a ``torch.device`` the course supports, or raise a clear error.

    ``source`` names where the value came from (``"device"`` or ``"COURSE_DEVICE"``) for the message.
    """
    accepted = ", ".join(repr(a) for a in ACCEPTED_DEVICES)
    if isinstance(choice, torch.device):
        name = str(choice)
    elif isinstance(choice, str):
        name = choice.strip()
    else:
        raise TypeError(f"{source}={choice!r} is not valid: the device must be a string such as 'cpu' or "
                        f"'cuda:0' (or a torch.device), got "
                        f"{choice!r} of type {type(choice).__name__}; accepted values: {accepted}")
    hints = {"gpu": " (for an NVIDIA GPU use 'cuda', for Apple silicon 'mps')",
             "tpu": " (TPUs are not supported by this course; use 'cpu' or a GPU)",
             "xla": " (TPUs are not supported by this course; use 'cpu' or a GPU)"}
    kind, colon, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (colon and kind != "cuda") or (
            colon and not (index.isdigit() and index.isascii())):
        if kind.lower() in ("cpu", "cuda", "mps") and kind != kind.lower():
            hint = f" (device names are lower case: {name.lower()!r})"
        else:
            hint = hints.get(kind.lower(), "")
        raise ValueError(f"{source}={name!r} is not a device this course supports{hint}; accepted values: "
                         f"{accepted} or a torch.device, with N the index of a CUDA GPU")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"{source}={name!r} was asked for, but CUDA is not available here; "
                               "use 'cpu' or leave it unset to pick automatically.")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise ValueError(f"{source}={name!r} asks for CUDA GPU {int(index)}, but this machine has {count} "
                             f"(indices 0 to {count - 1}); use one of "
                             + ", ".join(f"'cuda:{i}'" for i in range(count)) + " or 'cuda'")
        return torch.device(f"cuda:{int(index)}" if index else "cuda")
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError(f"{source}={name!r} was asked for, but Apple's MPS backend is not available here "
                               "(it needs a Mac with Apple silicon and a PyTorch built with MPS); use 'cpu', "
                               "'cuda' on an NVIDIA GPU, or leave it unset to pick automatically.")
    return torch.device(kind)


def as_device(value: object, name: str = "device",
              default: Optional[str | torch.device] = "cpu") -> torch.device:
    """The one device parser for every public ``device=`` argument: a ``torch.device`` or a clear error.

    Args:
        value: what the caller passed: ``None`` (``default``), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
            ``"mps"``, ``"auto"`` (:func:`get_device`'s choice) or a ``torch.device`` (any type, including
            ``torch.device("meta")``, which holds shapes but no numbers).
        name: the parameter's name, for the message (``"device"``, ``"map_location"``, ``"--device"``).
        default: what ``None`` means: a device name, or ``None`` for :func:`get_device`'s choice
            (CUDA, then MPS, then the CPU; ``COURSE_DEVICE`` overrides it).

    Raises:
        ValueError: a name that is not a device (``'gpu'``, ``'CPU'``, ``'cuda:x'``) or a GPU index this
            machine does not have; the message names ``name``, the value and the accepted values.
        TypeError: neither a string, a ``torch.device`` nor ``None`` (e.g. an int or a tensor).
        RuntimeError: a valid device that is not available here (CUDA without a GPU, MPS off a Mac).
    """
    if value is None or (isinstance(value, str) and value.strip() == "auto"):
        if default is None or (isinstance(value, str) and value.strip() == "auto"):
            return get_device()
        value = default
    if isinstance(value, torch.device):
        if value.type in ("cuda", "mps"):
            return _parse_device(value, name)   # available here, and the index exists
        return value
    if isinstance(value, str):
        if value.strip() == "meta":
            return torch.device("meta")
        return _parse_device(value, name)
    raise TypeError(f"{name}={value!r} is a {type(value).__name__}; use a device name "
                    f"({', '.join(repr(a) for a in ACCEPTED_DEVICES)}) or a torch.device"
                    + (" (an int is not a device: use 'cuda:N' for GPU number N)"
                       if isinstance(value, int) and not isinstance(value, bool) else ""))


def get_device(prefer: Optional[str | torch.device] = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` (GPU number N) or ``"mps"``;
            the environment variable ``COURSE_DEVICE`` does the same for a whole session
            (``prefer`` wins when both are set; None or an empty string picks automatically).

    Raises:
        ValueError: the name is not one of the accepted values (``'gpu'``, ``'tpu'``, ``'CPU'``...),
            or ``cuda:N`` names a GPU this machine does not have.
        RuntimeError: the device is named correctly but not available here (CUDA without a GPU,
            MPS off a Mac).
        TypeError: ``prefer`` is neither a string nor a ``torch.device``.
    """
    if prefer is not None and not (isinstance(prefer, str) and prefer.strip() == ""):
        return _parse_device(prefer, "prefer")
    env = os.environ.get("COURSE_DEVICE")
    if env is not None and env.strip():
        return _parse_device(env, "COURSE_DEVICE")
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = False) -> int:
    """Seed Python's, NumPy's and PyTorch's generators (all devices) so a run repeats.

    Args:
        seed: the seed, a non-negative integer.
        deterministic: also ask PyTorch for deterministic kernels (slower on GPU).

    Returns:
        The seed, so ``seed = seed_everything(0)`` reads well.
    """
    if isinstance(seed, (str, bytes)) or seed is None:
        raise TypeError(f"seed must be a non-negative integer (an int below 2**32, e.g. seed=0), got "
                        f"seed={seed!r}, a {type(seed).__name__}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise ValueError(f"seed must be a non-negative integer below 2**32, got seed={seed!r}")
    seed = int(seed)
    if seed < 0 or seed >= 2**32:
        raise ValueError(f"seed must be a non-negative integer below 2**32 (NumPy's generator accepts no "
                         f"more), got seed={seed}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def environment() -> dict[str, str]:
    """The facts a banner shows: package, torch and Python versions, and the device."""
    from . import __version__

    dev = get_device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {
        "course_pkg": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": dev.type,
        "device_name": name,
        "threads": str(torch.get_num_threads()),
    }


def _release(version: str) -> tuple[tuple[int, ...], str]:
    """``"2.5.1+cu124"`` -> ``((2, 5, 1), "cu124")``; the local tag is ``""`` when there is none."""
    base, _, local = version.partition("+")
    numbers_ = []
    for piece in base.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        numbers_.append(int(digits))
    return tuple(numbers_), local


def torch_pair_problem(torch_version: Optional[str] = None, torchvision_version: Optional[str] = None,
                       system: Optional[str] = None) -> Optional[str]:
    """One line naming a torch/torchvision pair that cannot work together, or None when they match.

    torchvision's compiled operators (``torchvision::nms``...) load only into the torch release and build
    they were made for: torchvision 0.(N+15) goes with torch 2.N, and a CPU build (``+cpu``) with a CPU
    build. A mismatch surfaces much later as ``operator torchvision::nms does not exist`` from deep inside
    an import; this names it up front. The versions are read from the installed packages' metadata, so
    torchvision is not imported.

    Args:
        torch_version, torchvision_version: the versions to compare (default: the installed ones).
        system: ``platform.system()`` (default: this machine's); PyPI's Linux torchvision is a CUDA build.
    """
    from importlib import metadata

    if torchvision_version is None:
        try:
            torchvision_version = metadata.version("torchvision")
        except metadata.PackageNotFoundError:
            return None
    torch_version = torch_version or str(torch.__version__)
    system = system or platform.system()
    (t_num, t_tag), (v_num, v_tag) = _release(torch_version), _release(torchvision_version)
    fix = ("reinstall both from one index, e.g. pip install --force-reinstall torch torchvision "
           "--index-url https://download.pytorch.org/whl/cpu")
    if len(t_num) >= 2 and len(v_num) >= 2 and t_num[0] == 2 and v_num[0] == 0 and v_num[1] != t_num[1] + 15:
        want = f"0.{t_num[1] + 15}"
        return (f"torch {torch_version} and torchvision {torchvision_version} do not match (torch "
                f"{t_num[0]}.{t_num[1]} needs torchvision {want}): {fix}")
    t_cpu, v_cpu = t_tag.startswith("cpu"), v_tag.startswith("cpu")
    t_cuda, v_cuda = t_tag.startswith("cu"), v_tag.startswith("cu") and not v_cpu
    pypi_cuda = system == "Linux" and not v_tag      # PyPI's Linux torchvision is built for CUDA torch
    if t_cpu and (v_cuda or pypi_cuda):
        build = f"a CUDA build ({v_tag})" if v_tag else "PyPI's Linux build, made for CUDA torch"
        return (f"torch {torch_version} is the CPU build but torchvision {torchvision_version} is {build}; "
                f"its operators will not load: {fix}")
    if t_cuda and v_cpu:
        return (f"torch {torch_version} is a CUDA build but torchvision {torchvision_version} is the CPU "
                f"build; its operators will not load: {fix}")
    if t_cuda and v_cuda and t_tag != v_tag:
        return (f"torch {torch_version} and torchvision {torchvision_version} are built for different CUDA "
                f"versions ({t_tag} vs {v_tag}): {fix}")
    return None


def banner() -> None:
    """Print one line about the environment, for the first cell of every chapter (and a second line naming
    a torch/torchvision pair that does not match, see :func:`torch_pair_problem`)."""
    env = environment()
    print(f"course_pkg {env['course_pkg']} | torch {env['torch']} | python {env['python']} | "
          f"device: {env['device']} ({env['device_name']}, {env['threads']} threads)")
    problem = torch_pair_problem()
    if problem:
        print(f"warning: {problem}")


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
