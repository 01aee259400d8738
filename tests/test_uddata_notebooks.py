"""Notebooks 00–02: committed clean, never stop the sandbox in Run All, one audit summary, a coverage table
with bars and no CPR numbers, the statuses shown, and the credentials form not prefilled with 'production'
next to the sandbox's 127.0.0.1 address."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

import toolkit

from .conftest import assert_clean

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {n: ROOT / "notebooks" / f"{n}.ipynb" for n in ("00_start_here", "01_uddata_audit", "02_uddata_upload")}


def execute(path: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    before = os.environ.get("TOOLKIT_MODE")
    os.environ["TOOLKIT_MODE"] = "sandbox"
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if before is None:
            os.environ.pop("TOOLKIT_MODE", None)
        else:
            os.environ["TOOLKIT_MODE"] = before
    return nb


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        for value in (out.get("data") or {}).values():
            parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


def stop_calls(nb: nbformat.NotebookNode) -> list[str]:
    lines = [line.split("#", 1)[0] for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()]
    return [line for line in lines if re.search(r"\.stop\(\)", line)]


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_committed_clean_and_run_all_keeps_the_sandbox(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS[name], as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "outputs committed"
    assert "widgets" not in nb.metadata, "widget state committed"
    assert not stop_calls(nb), "a cell that Run All executes stops the sandbox"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "sb.stop()" in markdown and "restart the kernel" in markdown.lower()  # says how to stop it


def test_start_here_says_where_the_demo_secret_is() -> None:
    nb = nbformat.read(NOTEBOOKS["00_start_here"], as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert 'sb.credentials("uddata")' in markdown and "toolkit sandbox" in markdown
    assert "fake" in markdown.lower()


@pytest.mark.notebook
def test_start_here_form_is_not_prefilled_with_production_next_to_loopback() -> None:
    nb = execute(NOTEBOOKS["00_start_here"])
    states = [m.get("state", {}) for m in nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {}).values()]
    values = [str(s.get("value")) for s in states if "value" in s]
    assert any(v.startswith("http://127.0.0.1") for v in values), "the form shows the sandbox's base URL"
    assert "production" not in values
    assert "sandbox" in values


@pytest.mark.notebook
def test_audit_notebook_summary_once_coverage_bars_and_statuses() -> None:
    nb = execute(NOTEBOOKS["01_uddata_audit"])
    with toolkit.sandbox.start(seed=0, services=["uddata"]) as sb:
        forbidden = sb.personal_data() + sb.secrets()
    texts = [outputs_text(c) for c in nb.cells if c.cell_type == "code"]
    everything = "\n".join(texts)
    assert len(re.findall(r"Uddata\+: photo audit: \d+ items", everything)) == 1, "the summary shows once"
    styled = [t for t in texts if "linear-gradient" in t]  # Styler.bar draws the bars as CSS gradients
    assert len(styled) == 2, "one coverage table with bars per class and per education"
    assert "stamhold" in styled[0] and "uddannelse" in styled[1]
    assert_clean("\n".join(styled), forbidden + ["****"], "the coverage tables")  # not even masked CPRs
    status_cell = next(t for t in texts if "unknown_cpr" in t and "no_photo" in t and "with_photo" in t)
    assert status_cell
    assert_clean(everything, forbidden, "the executed audit notebook")
