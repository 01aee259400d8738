"""Project hygiene an analyst relies on: installable from its own files, one httpx module, the README's
commands are the ones CI runs, notebooks committed clean."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_runtime_dependencies_of_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r) for r in pyproject["project"]["dependencies"]}
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    conda_names = {"python-duckdb": "duckdb"}  # conda-forge's name for the same package
    conda = {conda_names.get(n, n) for n in
             (_name(line.strip()[2:]) for line in text.splitlines() if line.strip().startswith("- "))}
    missing = runtime - conda
    assert not missing, f"environment.yml lacks runtime dependencies: {sorted(missing)}"
    extras = {_name(r) for rs in pyproject["project"]["optional-dependencies"].values() for r in rs}
    unknown = conda - runtime - extras - {"python", "pip", "nest-asyncio"}
    assert not unknown, f"environment.yml lists packages pyproject.toml does not: {sorted(unknown)}"


def test_httpx_is_imported_in_one_module_only() -> None:
    pattern = re.compile(r"^\s*(import httpx|from httpx)", re.M)
    offenders = [str(p.relative_to(ROOT)) for folder in ("toolkit", "tests", "benchmarks")
                 for p in (ROOT / folder).rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == ["toolkit/core/http.py"]


def test_readme_commands_and_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./run lab" in readme and "./run test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec \./run test\b", ci, re.M), ".ci/run must call the README's test command"


def test_committed_notebooks_have_no_outputs_or_widget_state() -> None:
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60).stdout.split()
    notebooks = sorted(set(tracked) | {str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb")})
    assert notebooks, "no notebooks found"
    for name in notebooks:
        nb = json.loads((ROOT / name).read_text())
        outputs = sum(len(c.get("outputs", [])) for c in nb["cells"] if c["cell_type"] == "code")
        counts = [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"]
        assert outputs == 0 and "widgets" not in nb.get("metadata", {}), name
        assert all(n is None for n in counts), name
