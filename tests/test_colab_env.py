"""Colab readiness: the chapters' first cell, the wheel's contents, and the chapters run in a fresh
environment holding only what Colab preinstalls, with course_pkg installed by that first cell.

The fresh environment (the ``slow`` test) is a virtual environment that does not see this
machine's site-packages. Its base holds what Colab ships and the chapters may rely on: torch,
torchvision, numpy, matplotlib, ipywidgets, tqdm, scikit-learn and scikit-image (all preinstalled on
Colab), plus ipykernel and nbclient to execute notebooks. Nothing else: timm, einops, pytest and the
course's own editable install are absent, so a chapter that needs them, or a file missing from the
wheel (a checkpoint, a data file), fails here rather than in a learner's Colab session.

The base is built once and cached in ``~/.cache/course_pkg/colab-env-<key>`` (the key hashes the
Python version and the requirements; delete the folder to rebuild, or set ``COURSE_COLAB_CACHE``).
torch comes from a local CPU wheel when pip's find-links has one (``COURSE_COLAB_TORCH`` may name
another requirement or wheel), so no multi-GB CUDA wheel is copied. Each run then makes a thin
environment on top of the cached base (a ``.pth`` file adds the base's site-packages), executes the
chapters there with ``COURSE_PKG_SOURCE`` set to a freshly built wheel, and throws it away: the base
is never modified, so every run installs course_pkg from scratch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]

SETUP_CELL = (ROOT / "tests" / "setup_cell.py").read_text().rstrip("\n")

# What Colab preinstalls that the course may use, plus a kernel and a notebook runner.
COLAB_PACKAGES = ["torchvision", "numpy", "matplotlib", "ipywidgets", "tqdm", "scikit-learn", "scikit-image",
                  "ipykernel", "nbclient", "nbformat"]


def _first_code_cell(nb_path: Path) -> str:
    nb = json.loads(nb_path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    src = cell["source"]
    return ("".join(src) if isinstance(src, list) else src).rstrip("\n")


# ----------------------------------------------------------------------------------------------------
# The first cell
# ----------------------------------------------------------------------------------------------------
def test_there_are_chapters() -> None:
    assert CHAPTERS and CHAPTERS[0].name == "01_attention.ipynb"


@pytest.mark.parametrize("nb", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_first_code_cell_is_the_setup_cell(nb: Path) -> None:
    assert _first_code_cell(nb) == SETUP_CELL


def test_setup_cells_install_from_the_configured_repository() -> None:
    cells = {nb.name: _first_code_cell(nb) for nb in CHAPTERS}
    assert len(set(cells.values())) == 1, "the chapters' first code cells differ"
    urls = re.findall(r'"git\+(https://[^"]+)"', next(iter(cells.values())))
    assert urls == [REPO_URL], f"first cell installs from {urls}, _config.yml says {REPO_URL}"
    assert "COURSE_PKG_SOURCE" in next(iter(cells.values()))


# ----------------------------------------------------------------------------------------------------
# The wheel
# ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of course_pkg built from a copy of the source tree (the repository is not written to)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "course_pkg", src / "course_pkg", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                           str(src), "-w", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = out.glob("course_pkg-*.whl")
    return whl


def _package_files() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "course_pkg").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def test_wheel_holds_every_package_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in _package_files() if f not in names]
    assert not missing, f"files of course_pkg missing from the wheel (add them to package-data): {missing}"


def test_wheel_holds_the_bundled_checkpoints(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = ROOT / "course_pkg" / "checkpoints" / "manifest.json"
    if not manifest.exists():
        pytest.skip("no bundled checkpoints yet")
    assert "course_pkg/checkpoints/manifest.json" in names
    for entry in json.loads(manifest.read_text()):
        assert f"course_pkg/checkpoints/{entry['file']}" in names, entry["name"]


# ----------------------------------------------------------------------------------------------------
# A fresh Colab-like environment
# ----------------------------------------------------------------------------------------------------
def _torch_requirement() -> str:
    """A local CPU wheel of torch from pip's find-links if there is one, else plain ``torch``."""
    if os.environ.get("COURSE_COLAB_TORCH"):
        return os.environ["COURSE_COLAB_TORCH"]
    dirs = os.environ.get("PIP_FIND_LINKS", "").split()
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    dirs += re.findall(r"find-links='([^']+)'", proc.stdout)
    for d in dirs:
        d = d.removeprefix("file://")
        wheels = sorted(Path(d).glob(f"torch-*+cpu-cp{sys.version_info[0]}{sys.version_info[1]}-*.whl"))
        if Path(d).is_dir() and wheels:
            return str(wheels[-1])
    return "torch"


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CONDA", "JUPYTER", "COURSE_"))}
    env.update(MPLBACKEND="Agg", PYTHONNOUSERSITE="1")
    env.update(extra or {})
    return env


def _site_packages(prefix: Path) -> Path:
    return prefix / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


@pytest.fixture(scope="module")
def colab_base() -> dict:
    """The cached base environment: built when missing (``cold``), reused otherwise."""
    reqs = [_torch_requirement(), *COLAB_PACKAGES]
    key = hashlib.sha256(json.dumps([sys.version, reqs]).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("COURSE_COLAB_CACHE", Path.home() / ".cache" / "course_pkg"))
    base = cache / f"colab-env-{key}"
    t0 = time.monotonic()
    cold = not (base / "ready.json").exists()
    if cold:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"colab-env-{key}.building-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(tmp)], timeout=300)
        py = tmp / "bin" / "python"
        _run([str(py), "-m", "pip", "install", "--quiet", *reqs], env=_clean_env(), timeout=1800)
        (tmp / "ready.json").write_text(json.dumps({"requirements": reqs}))
        try:
            tmp.rename(base)  # atomic: a run that loses a race keeps the other one's base
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"prefix": base, "cold": cold, "seconds": time.monotonic() - t0, "requirements": reqs}


_DRIVER = textwrap.dedent('''
    """Execute a notebook in this interpreter's kernel, then report where course_pkg came from."""
    import json, sys, time
    import nbformat
    from nbclient import NotebookClient

    src, dst, kernel = sys.argv[1], sys.argv[2], sys.argv[3]
    nb = nbformat.read(src, as_version=4)
    probe = ("import json, sys, importlib.util, course_pkg\\n"
             "print('PROBE ' + json.dumps({'prefix': sys.prefix, 'course_pkg': course_pkg.__file__, "
             "'timm': importlib.util.find_spec('timm') is not None, 'path': sys.path}))")
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    t0 = time.monotonic()
    NotebookClient(nb, timeout=600, kernel_name=kernel, resources={"metadata": {"path": "."}}).execute()
    nbformat.write(nb, dst)
    print("SECONDS", time.monotonic() - t0)
''')


@pytest.fixture(scope="module")
def colab_env(colab_base: dict, wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A throw-away environment on top of the cached base, with its own kernel spec."""
    t0 = time.monotonic()
    env_dir = tmp_path_factory.mktemp("colab") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], timeout=300)
    base_site = _site_packages(colab_base["prefix"])
    (_site_packages(env_dir) / "_colab_base.pth").write_text(f"import site; site.addsitedir({str(base_site)!r})\n")
    py = env_dir / "bin" / "python"
    kernels = env_dir / "share" / "jupyter" / "kernels" / "colab-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab-like test env", "language": "python"}))
    (env_dir / "driver.py").write_text(_DRIVER)
    work = env_dir.parent / "book"
    shutil.copytree(ROOT / "book", work, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    return {"python": py, "prefix": env_dir, "work": work, "wheel": wheel, "base": colab_base,
            "seconds": time.monotonic() - t0}


@pytest.mark.slow
@pytest.mark.parametrize("nb", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_in_a_fresh_colab_like_env(colab_env: dict, nb: Path) -> None:
    env = _clean_env({"COURSE_PKG_SOURCE": str(colab_env["wheel"]),
                      "JUPYTER_PATH": str(colab_env["prefix"] / "share" / "jupyter"),
                      "PATH": f"{colab_env['prefix'] / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"})
    out = colab_env["work"] / f"{nb.stem}.executed.ipynb"
    t0 = time.monotonic()
    proc = subprocess.run([str(colab_env["python"]), str(colab_env["prefix"] / "driver.py"),
                           str(colab_env["work"] / nb.name), str(out), "colab-test"],
                          cwd=colab_env["work"], env=env, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, f"{nb.name} failed in the Colab-like env:\n{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}"
    executed = json.loads(out.read_text())
    texts = [o.get("text", "") for o in executed["cells"][-1]["outputs"]]
    probe_text = "".join("".join(t) if isinstance(t, list) else t for t in texts)
    probe = json.loads(probe_text.split("PROBE ", 1)[1])
    site = str(_site_packages(colab_env["prefix"]))
    assert probe["prefix"] == str(colab_env["prefix"]), probe  # the kernel ran in the fresh env
    assert probe["course_pkg"].startswith(site), probe  # course_pkg came from the wheel, not the checkout
    assert not probe["timm"], "timm is visible: the fresh env sees other site-packages"
    system_site = str(Path(yaml.__file__).resolve().parents[1])
    assert not any(p.startswith(system_site) for p in probe["path"]), probe["path"]
    base = colab_env["base"]
    print(f"\nColab-like env: base {'built (cold)' if base['cold'] else 'reused (warm)'} in {base['seconds']:.1f} s; "
          f"{nb.name} (with the first cell's install when course_pkg was missing) ran in {seconds:.1f} s")
