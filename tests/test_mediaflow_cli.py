"""``toolkit mediaflow latest`` and ``toolkit mediaflow upload`` against a private sandbox: secrets from
TOOLKIT_MEDIAFLOW_*, never printed; a CSV out/report; dry run sends nothing; exit codes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from toolkit.cli import main


@pytest.fixture
def env(make_sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    sb = make_sandbox(services=["mediaflow"], seed=21)
    em = sb.emulator("mediaflow")
    creds = em.credentials()
    monkeypatch.chdir(tmp_path)
    for key, value in creds.items():
        monkeypatch.setenv(f"TOOLKIT_MEDIAFLOW_{key.upper()}", str(value))
    return em


def test_latest_writes_the_table_and_no_secret(env: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "latest.csv"
    assert main(["mediaflow", "latest", "--limit", "7", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 7 and {"id", "uploaded_by", "has_preview"} <= set(df.columns)
    printed = capsys.readouterr()
    assert "7 files" in printed.out
    assert not [s for s in env.secrets() if s in printed.out + printed.err + out.read_text()]
    assert all(t["method"] == "POST" and not t["secrets_in_query"] for t in env.token_requests)


def test_upload_dry_run_then_upload_then_report(env: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for i in range(3):
        (folder / f"doc-{i}.pdf").write_bytes(b"%PDF" + bytes([i]) * 50)
    assert main(["mediaflow", "upload", str(folder), "--folder-id", "-31", "--dry-run", "--no-progress"]) == 0
    assert env.uploads_requested == 0
    report = tmp_path / "report.csv"
    assert main(["mediaflow", "upload", str(folder), "--folder-id", "-31", "--report", str(report),
                 "--no-progress"]) == 0
    rows = pd.read_csv(report)
    assert list(rows["outcome"]) == ["uploaded"] * 3 and all(env.stored_count(f"doc-{i}.pdf", -31) == 1 for i in range(3))
    code = main(["mediaflow", "upload", str(folder), "--folder-id", str(env.forbidden_folder_id()), "--no-progress"])
    printed = capsys.readouterr()
    assert code == 1 and "permission" in printed.out
    assert not [s for s in env.secrets() if s in printed.out + printed.err + report.read_text()]


def test_missing_secret_without_a_terminal_is_a_plain_error(env: Any, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("TOOLKIT_MEDIAFLOW_REFRESH_TOKEN")
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    assert main(["mediaflow", "latest"]) == 3
    err = capsys.readouterr().err
    assert "Mediaflow" in err and "TOOLKIT_MEDIAFLOW_REFRESH_TOKEN" in err


def test_search_lists_the_hits_in_the_services_order(env: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "hits.csv"
    truth = [f["id"] for f in env._search("sommar")]
    assert main(["mediaflow", "search", "sommar", "--limit", "3", "--out", str(out)]) == 0
    assert pd.read_csv(out)["id"].tolist() == truth[:3]
    printed = capsys.readouterr()
    assert "3 files found" in printed.out and not [s for s in env.secrets() if s in printed.out + printed.err]
    videos = [f["id"] for f in env._search("sommar") if f["type"]["type"] == "video"]
    assert main(["mediaflow", "search", "sommar", "--type", "video", "--out", str(out)]) == 0
    assert pd.read_csv(out)["id"].tolist() == videos
    folder = env.files[truth[0]]["folderId"]
    assert main(["mediaflow", "search", "sommar", "--folder-id", str(folder), "--out", str(out)]) == 0
    assert pd.read_csv(out)["id"].tolist() == [i for i in truth if env.files[i]["folderId"] == folder]
    assert main(["mediaflow", "search", "ingen-sådan-fil"]) == 0  # nothing found is not an error
    assert "0 files found" in capsys.readouterr().out
    assert main(["mediaflow", "search", "sommar", "--limit", "0"]) == 3  # an error stopped it
    assert "limit" in capsys.readouterr().err


def test_the_readmes_mediaflow_commands_run_as_written(make_sandbox: Any, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The README's Mediaflow block, against a sandbox found with --environment sandbox (no TOOLKIT_MEDIAFLOW_*)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"Mediaflow's verbs run the same way.*?```bash\n(.*?)```", readme, re.S)
    assert block, "the README has no Mediaflow command-line example"
    examples = [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]
    examples = [["toolkit", *e[2:]] if e[:2] == ["./run", "toolkit"] else e for e in examples]
    assert {e[2] for e in examples} >= {"latest", "search"}
    sb = make_sandbox(services=["mediaflow"], seed=4)
    monkeypatch.chdir(tmp_path)
    for name in ("BASE_URL", "CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "ENVIRONMENT"):
        monkeypatch.delenv(f"TOOLKIT_MEDIAFLOW_{name}", raising=False)
    for example in examples:
        assert example[0] == "toolkit" and main(example[1:]) == 0, example
    assert len(pd.read_csv(tmp_path / "latest.csv")) == 20
    hits = pd.read_csv(tmp_path / "hits.csv")
    assert len(hits) and set(hits["type"]) == {"image"}
    printed = capsys.readouterr()
    assert not [s for s in sb.secrets() if s in printed.out + printed.err]
