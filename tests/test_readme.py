"""The README's Python example runs as written (against the sandbox)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## In Python\n\n```python\n(.*?)```", readme, re.S)
    assert block, "the README has no 'In Python' example"
    (tmp_path / "photos").mkdir()  # the example's dry run reads this folder
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)  # noqa: S102 - our own documentation
    plan, result = scope["plan"], scope["result"]
    assert len(plan) == 3 and set(plan["field"]) == {"price"}
    assert list(result["cpr"]) == scope["cprs"] and result["has_image"].notna().all()
    assert result["has_image"].any() and not result["has_image"].all()  # some with, some without a photo
