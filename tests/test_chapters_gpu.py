"""Every chapter on a CUDA GPU: it runs without error and prints what it prints on the CPU.

The `gpu` test executes each chapter twice with nbclient, once with ``COURSE_DEVICE=cpu`` and once on the
GPU that :func:`course_pkg.get_device` picks, and compares the text outputs cell by cell. Cells that time
something or train a network are left out of the comparison (their numbers depend on the device and on the
machine's load by nature; they must still run); every other printed number must agree to the precision it
is printed with (one unit in the last decimal digit of slack, for TF32 and reordered float sums;
integers such as counts and shapes must be equal). A CPU-only test
checks the chapters' source for the device pattern that makes this possible.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
# Source markers of cells whose printed numbers legitimately differ between devices.
DEVICE_DEPENDENT = ("perf_counter", "best_time", "fit(", "banner(", "get_device(")
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def _texts(nb: dict) -> list[tuple[int, str]]:
    """``(cell index, text output)`` of every code cell whose output must not depend on the device."""
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or any(m in "".join(cell["source"]) for m in DEVICE_DEPENDENT):
            continue
        text = ""
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                text += "".join(o["text"])
            elif o.get("output_type") in ("execute_result", "display_data"):
                text += "".join(o.get("data", {}).get("text/plain", ""))
        out.append((i, text))
    return out


def _same_to_printed_precision(a: str, b: str) -> bool:
    """Equal text and integers; every decimal equal up to one unit of its last printed digit."""
    if NUMBER.sub("#", a) != NUMBER.sub("#", b):
        return False
    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
        if x == y:
            continue
        if "." not in x or "." not in y:
            return False                     # integers (counts, shapes, sizes) must be equal
        digits = len(x.split(".")[1].split("e")[0])
        try:
            fx, fy = float(x.replace(",", "")), float(y.replace(",", ""))
        except ValueError:
            return False
        if abs(fx - fy) > 1.01 * 10.0 ** -digits:
            return False
    return True


def test_same_to_printed_precision() -> None:
    assert _same_to_printed_precision("acc 93.7% of 300", "acc 93.8% of 300")
    assert not _same_to_printed_precision("acc 93.7% of 300", "acc 93.9% of 300")
    assert not _same_to_printed_precision("acc 93.7% of 300", "acc 93.7% of 301")
    assert not _same_to_printed_precision("square", "disk")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_use_the_picked_device(path: Path) -> None:
    """Where a chapter runs a trained or timed network, it picks ``device = get_device()`` once and
    hands it to every bundled model it loads and every training run (never a hard-coded device)."""
    source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                       if c["cell_type"] == "code")
    runs_network = any(k in source for k in ("load_bundled(", "fit(", "perf_counter"))
    if not runs_network:
        pytest.skip("this chapter runs no trained or timed network")
    assert source.count("device = get_device()") == 1, "pick the device once, visibly"
    assert 'device="cpu"' not in source and "device='cpu'" not in source
    assert ".cuda()" not in source, "use .to(device), so the chapter runs on every device"
    for call in re.findall(r"(?:load_bundled|fit)\((?:[^()]|\([^()]*\))*\)", source):
        assert "device=device" in call, f"{call!r} must pass device=device"


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_on_cuda_as_on_cpu(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    def run(device: str | None) -> dict:
        if device is None:
            monkeypatch.delenv("COURSE_DEVICE", raising=False)
        else:
            monkeypatch.setenv("COURSE_DEVICE", device)
        nb = nbformat.read(path, as_version=4)
        nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}}).execute()
        return json.loads(nbformat.writes(nb))

    on_cpu = run("cpu")
    on_gpu = run(None)                       # get_device() picks CUDA
    banner = "".join("".join(o.get("text", "")) for o in on_gpu["cells"][1].get("outputs", []))
    assert "cuda" in banner.lower(), f"the GPU run did not use CUDA; its banner says:\n{banner}"
    if os.environ.get("COURSE_KEEP_GPU_RUNS"):
        out = Path(os.environ["COURSE_KEEP_GPU_RUNS"])
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{path.stem}.cuda.ipynb").write_text(json.dumps(on_gpu))
    differ = [(i, a, b) for (i, a), (_, b) in zip(_texts(on_cpu), _texts(on_gpu))
              if not _same_to_printed_precision(a, b)]
    assert not differ, "\n\n".join(f"cell {i}\n--- CPU:\n{a}\n--- CUDA:\n{b}" for i, a, b in differ)
