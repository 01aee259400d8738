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
    assert scope["job"].results()["outcome"].tolist() == ["success"]
    assert len(scope["objs"]) > 0 and scope["objs"].attrs["next"]
    assert 0 < len(scope["latest"]) <= 10 and scope["latest"].attrs["kind"] == "assets"


LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<a\s[^>]*href=\"([^\"]+)\"")


def documentation_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def relative_links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold examples, not links
    found = [a or b for a, b in LINK.findall(text)]
    return [link for link in found if not re.match(r"^[a-z][a-z0-9+.-]*:", link) and not link.startswith("#")]


def test_every_relative_link_in_the_readme_and_docs_resolves_inside_the_repository() -> None:
    files = documentation_files()
    assert (ROOT / "docs" / "architecture.md") in files, "docs/architecture.md is missing"
    broken, outside = [], []
    for path in files:
        for link in relative_links(path):
            target = (path.parent / link.split("#", 1)[0]).resolve()
            if ROOT not in target.parents and target != ROOT:
                outside.append(f"{path.name}: {link}")
            elif not target.is_file():
                broken.append(f"{path.name}: {link}")
    assert not outside, f"links that leave the repository: {outside}"
    assert not broken, f"links to files that do not exist: {broken}"


def test_no_document_names_a_path_outside_the_repository() -> None:
    """Not as a link (above) and not in the text: no ``../`` that climbs out of the repository, and no
    absolute path into the folder the repository sits in."""
    around = f"{ROOT.parent.as_posix()}/" if ROOT.parent != Path(ROOT.anchor) else None
    for path in documentation_files():
        text = path.read_text(encoding="utf-8")
        assert around is None or around not in text, f"{path.name} names a path outside the repository ({around}…)"
        for climb in re.findall(r"(?:\.\./)+[\w.-]*", text):
            target = (path.parent / climb).resolve()
            assert target == ROOT or ROOT in target.parents, f"{path.name}: {climb} leaves the repository"


def test_the_readme_links_the_architecture_and_every_service_contract() -> None:
    links = set(relative_links(ROOT / "README.md"))
    expected = {"docs/architecture.md", "docs/uddata.md", "docs/dokus.md", "docs/livingdocs.md", "docs/boknett.md",
                "docs/mediaflow.md"}
    assert expected <= links, sorted(expected - links)
