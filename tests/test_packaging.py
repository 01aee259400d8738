"""Project hygiene an analyst relies on: installable from its own files, one httpx module, the README's
commands are the ones CI runs, notebooks committed clean."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / ".ci" / "lowest-constraints.txt"


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


def _lower_bounds(reqs: list[str]) -> dict[str, str]:
    """``{name: version}`` of each requirement's ``>=`` bound (a requirement without one is an error)."""
    found = {}
    for req in reqs:
        bound = re.search(r">=\s*([0-9][^,;\s]*)", req)
        assert bound, f"{req!r} has no lower bound (name>=version)"
        found[_name(req)] = bound[1]
    return found


def test_environment_yml_has_the_lower_bounds_of_pyproject() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = _lower_bounds([r for rs in [pyproject["project"]["dependencies"],
                                           *pyproject["project"]["optional-dependencies"].values()] for r in rs])
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    conda_names = {"python-duckdb": "duckdb"}
    lines = [line.strip()[2:] for line in text.splitlines() if line.strip().startswith("- ")]
    conda = {conda_names.get(_name(line), _name(line)): line for line in lines}
    differ = {name: (conda[name], f"{name}>={version}") for name, version in declared.items()
              if name in conda and f">={version}" not in conda[name].replace(" ", "")}
    assert not differ, f"environment.yml and pyproject.toml differ in lower bounds (yml, pyproject): {differ}"


def test_lowest_constraints_pin_every_runtime_dependency_at_its_lower_bound() -> None:
    """.ci/lowest-constraints.txt (the CI run at the lowest versions) follows pyproject.toml: a bound that
    changes without it fails here, so the bounds CI proves are the declared ones."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    wanted = _lower_bounds(pyproject["project"]["dependencies"] + extras["parquet"] + extras["lab"])
    pinned = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pinned[_name(name)] = version.strip()
    expected = "\n".join(f"{name}=={version}" for name, version in wanted.items())
    assert pinned == wanted, f"{CONSTRAINTS.name} must pin exactly (one a line):\n{expected}"


def test_httpx_is_imported_in_one_module_only() -> None:
    pattern = re.compile(r"^\s*(import httpx|from httpx)", re.M)
    offenders = [str(p.relative_to(ROOT)) for folder in ("toolkit", "tests", "benchmarks")
                 for p in (ROOT / folder).rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == ["toolkit/core/http.py"]


def test_readme_commands_and_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./run lab" in readme and "./run test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"\./run test\b", ci), ".ci/run must call the README's test command"
    # the second run: every runtime dependency at its lowest declared version, on a venv of its own
    lowest = re.search(r"^suite lowest .*$", ci, re.M)
    assert lowest, ".ci/run must run the suite at the lowest versions"
    assert f"TOOLKIT_CONSTRAINTS={CONSTRAINTS.relative_to(ROOT)}" in lowest[0] and "TOOLKIT_VENV=" in lowest[0]
    assert "ensure_venv" in (ROOT / "run").read_text() and '-c "$constraints"' in (ROOT / "run").read_text()


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
