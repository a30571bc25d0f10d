"""A torch/torchvision pair that cannot work together is named in one line (banner, CLI, pretrained loader)."""

from __future__ import annotations

import importlib.abc
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from course_pkg import env
from course_pkg.env import torch_pair_problem

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("torch_v, vision_v, system", [
    ("2.5.1+cpu", "0.20.1+cpu", "Linux"), ("2.5.1", "0.20.1", "Linux"), ("2.5.1+cu124", "0.20.1+cu124", "Linux"),
    ("2.5.1+cu124", "0.20.1", "Linux"), ("2.5.1+cpu", "0.20.1", "Darwin"), ("2.14.1+cu130", "0.29.1", "Linux"),
    ("2.2.0", "0.17.2", "Windows")])
def test_matching_pairs_pass(torch_v: str, vision_v: str, system: str) -> None:
    assert torch_pair_problem(torch_v, vision_v, system) is None


@pytest.mark.parametrize("torch_v, vision_v, system, words", [
    ("2.5.1+cpu", "0.20.1", "Linux", "CPU build"),           # the case that broke chapter 6
    ("2.5.1+cpu", "0.20.1+cu121", "Linux", "CPU build"),
    ("2.5.1+cu121", "0.20.1+cpu", "Linux", "CUDA build"),
    ("2.5.1+cu121", "0.20.1+cu124", "Linux", "different CUDA versions"),
    ("2.5.1", "0.19.0", "Linux", "needs torchvision 0.20")])
def test_mismatched_pairs_are_named_in_one_line(torch_v: str, vision_v: str, system: str, words: str) -> None:
    line = torch_pair_problem(torch_v, vision_v, system)
    assert line is not None and words in line and "\n" not in line
    assert torch_v in line and vision_v in line and "pip install" in line


def test_banner_prints_the_problem_as_a_second_line(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(env, "torch_pair_problem", lambda: "torch 2.5.1+cpu ... do not match")
    env.banner()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1] == "warning: torch 2.5.1+cpu ... do not match"
    monkeypatch.setattr(env, "torch_pair_problem", lambda: None)
    env.banner()
    assert len(capsys.readouterr().out.splitlines()) == 1


class _BrokenTimm(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "timm":
            raise RuntimeError("operator torchvision::nms does not exist")
        return None


def test_pretrained_loader_turns_a_broken_import_into_its_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from course_pkg.pretrained import PretrainedUnavailableError, load_pretrained_timm

    for mod in [m for m in sys.modules if m == "timm" or m.startswith("timm.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [_BrokenTimm(), *sys.meta_path])
    monkeypatch.setattr(env, "torch_pair_problem", lambda: "torch X and torchvision Y do not match")
    with pytest.raises(PretrainedUnavailableError, match="timm cannot be imported here: torch X and torchvision Y"):
        load_pretrained_timm("vit_small_patch16_224")


def test_training_cli_names_the_mismatch_first(tmp_path: Path) -> None:
    """The CLI prints the line before anything else (here with a faked pair: a CPU torch, PyPI's torchvision)."""
    code = ("import course_pkg.env as e, sys; "
            "e.torch_pair_problem = lambda: 'torch 2.5.1+cpu is the CPU build but torchvision 0.20.1 is ...'; "
            "from course_pkg.cli.train import main; sys.argv = ['x', '--help']; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.stderr.splitlines()[0].startswith("warning: torch 2.5.1+cpu is the CPU build"), proc.stderr
