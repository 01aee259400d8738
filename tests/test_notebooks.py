"""Every notebook runs top to bottom against the sandbox (as in CI), and its saved output — cells, logs
on stderr, widget state — holds none of the sandbox's secrets and no raw CPR number."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import toolkit

from .conftest import assert_clean

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def forbidden() -> list[str]:
    """The secrets and raw personal data of the sandbox the notebooks start (seed 0)."""
    with toolkit.sandbox.start(seed=0) as sb:
        values = sb.secrets() + sb.personal_data()
    assert values, "the sandbox reports no secrets or personal data to scan for"
    return values


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_leaks_nothing(path: Path, forbidden: list[str], tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("TOOLKIT_MODE")
    os.environ["TOOLKIT_MODE"] = "sandbox"
    try:
        client = NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        if env_before is None:
            os.environ.pop("TOOLKIT_MODE", None)
        else:
            os.environ["TOOLKIT_MODE"] = env_before
    executed = tmp_path / path.name
    nbformat.write(nb, executed)
    text = executed.read_text()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells and all(c.get("execution_count") for c in code_cells)
    assert_clean(text, forbidden, f"the executed {path.name}")
    assert_clean(json.dumps(nb.metadata.get("widgets", {})), forbidden, f"the widget state of {path.name}")
