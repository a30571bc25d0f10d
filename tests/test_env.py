"""course_pkg.env: device choice, seeding, the banner."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import course_pkg
from course_pkg import banner, environment, get_device, seed_everything


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cuda"


def test_get_device_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device().type == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device("cuda")


def test_seed_everything_repeats_every_generator() -> None:
    def draw() -> tuple:
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(3)
    a = draw()
    seed_everything(3)
    assert draw() == a
    seed_everything(4)
    assert draw() != a
    assert seed_everything(7) == 7


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, 2**64])
def test_seed_everything_rejects_bad_seeds(bad: object) -> None:
    # a str is the wrong type (TypeError, the convention of tests/test_bad_input.py); the rest wrong values
    with pytest.raises(TypeError if isinstance(bad, str) else ValueError,
                       match="seed must be a non-negative integer"):
        seed_everything(bad)  # type: ignore[arg-type]


def test_banner(capsys: pytest.CaptureFixture[str]) -> None:
    banner()
    out = capsys.readouterr().out
    assert f"course_pkg {course_pkg.__version__}" in out
    assert f"torch {torch.__version__}" in out
    assert "device: " in out
    assert set(environment()) >= {"course_pkg", "torch", "device"}


# -- device names: a clear error listing the accepted values -------------------------------------------
ACCEPTED = "accepted values: 'cpu', 'cuda', 'cuda:N', 'mps'"


@pytest.mark.parametrize("bad, fragment", [
    ("gpu", "for an NVIDIA GPU use 'cuda'"), ("tpu", "TPUs are not supported"), ("CPU", "lower case: 'cpu'"),
    ("Cuda", "lower case: 'cuda'"), ("cuda:", "not a device"), ("cuda:-1", "not a device"),
    ("cuda:x", "not a device"), ("cpu:0", "not a device"), ("mps:1", "not a device"), ("meta", "not a device"),
    ("xla", "TPUs are not supported"), ("cuda:１", "not a device"),
])
def test_get_device_rejects_unknown_names(bad: str, fragment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    with pytest.raises(ValueError) as info:
        get_device(bad)
    text = str(info.value)
    assert fragment in text and ACCEPTED in text and repr(bad.strip()) in text, text
    assert "Expected one of" not in text  # not torch's list of device types


def test_course_device_variable_is_checked_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match=f"COURSE_DEVICE='tpu' is not a device.*{ACCEPTED}"):
        get_device()
    assert get_device("cpu").type == "cpu"  # an explicit choice wins over the variable
    monkeypatch.setenv("COURSE_DEVICE", " ")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device().type == "cpu"  # blank means unset


def test_get_device_rejects_a_non_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    with pytest.raises(TypeError, match="device must be a string.*got 0 of type int"):
        get_device(0)  # type: ignore[arg-type]
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def test_mps_without_mps_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="'mps' was asked for, but Apple's MPS backend is not available"):
        get_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device("mps") == torch.device("mps")


def test_cuda_index_out_of_range_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert get_device("cuda:1") == torch.device("cuda:1")
    assert get_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match=r"asks for CUDA GPU 2, but this machine has 2 \(indices 0 to 1\)"):
        get_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="'cuda:0' was asked for, but CUDA is not available"):
        get_device("cuda:0")
