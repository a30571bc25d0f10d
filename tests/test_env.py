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


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seeds(bad: object) -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        seed_everything(bad)  # type: ignore[arg-type]


def test_banner(capsys: pytest.CaptureFixture[str]) -> None:
    banner()
    out = capsys.readouterr().out
    assert f"course_pkg {course_pkg.__version__}" in out
    assert f"torch {torch.__version__}" in out
    assert "device: " in out
    assert set(environment()) >= {"course_pkg", "torch", "device"}
