"""``toolkit boknett pull`` over loopback: the cursor in --state, --after for the first run, --download,
--report, the password from TOOLKIT_BOKNETT_PASSWORD (never a flag), --environment sandbox, exit codes."""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from toolkit.cli import main
from toolkit.testing import assert_no_secrets

pytestmark = pytest.mark.integration


def _after(emu: Any) -> str:
    return datetime.fromtimestamp(emu.now() - 100 * 86400, timezone.utc).strftime("%Y-%m-%d")


def test_pull_with_password_from_environment_download_and_report(make_sandbox: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    sandbox = make_sandbox(services=["boknett"], seed=21)
    emu = sandbox.emulator("boknett")
    emu.object_count = 40
    creds = emu.credentials()
    monkeypatch.setenv("TOOLKIT_BOKNETT_PASSWORD", creds["password"])
    state, folder, report = tmp_path / "bk.cursor", tmp_path / "files", tmp_path / "report.csv"
    argv = ["boknett", "pull", "--state", str(state), "--username", creds["username"], "--base-url",
            creds["base_url"], "--login-url", creds["login_url"], "--no-progress"]
    assert main(argv + ["--after", _after(emu), "--download", str(folder), "--report", str(report)]) == 0
    out = capsys.readouterr()
    assert "40 changed objects" in out.out and str(state) in out.out
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [r["isbn13"] for r in rows] == [r["isbn13"] for r in emu.records()]
    assert {r["outcome"] for r in rows} <= {"downloaded", "duplicate"}
    assert all(r["vareeier_kode"] == t["vareeier_kode"] for r, t in zip(rows, emu.records()))  # "0008" kept
    assert sum(1 for r in rows if r["outcome"] == "downloaded") == len(list(folder.glob("*_*.*")))
    cursor = state.read_text()
    start, stop = emu.add_objects(3)
    assert main(argv + ["--download", str(folder), "--report", str(report)]) == 0
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [r["isbn13"] for r in rows] == [r["isbn13"] for r in emu.records(start, stop)]
    assert state.read_text() != cursor
    out = capsys.readouterr()
    assert_no_secrets(out.out + out.err, emu.secrets())


def test_pull_environment_sandbox_and_expired_ids_exit_1(make_sandbox: Any, tmp_path: Path, capsys: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOOLKIT_BOKNETT_PASSWORD", raising=False)
    sandbox = make_sandbox(services=["boknett"], seed=22)
    emu = sandbox.emulator("boknett")
    emu.object_count = 12
    emu.download_lifetime = 0.0
    state = tmp_path / "s"
    code = main(["boknett", "pull", "--state", str(state), "--after", _after(emu), "--environment", "sandbox",
                 "--download", str(tmp_path / "f"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "expired" in out and "pull the report again" in out
    assert state.exists()


def test_first_pull_without_after_and_no_password_are_plain_errors(make_sandbox: Any, tmp_path: Path, capsys: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = make_sandbox(services=["boknett"], seed=23)
    creds = sandbox.emulator("boknett").credentials()
    monkeypatch.delenv("TOOLKIT_BOKNETT_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    code = main(["boknett", "pull", "--state", str(tmp_path / "s"), "--username", creds["username"],
                 "--base-url", creds["base_url"], "--login-url", creds["login_url"]])
    err = capsys.readouterr().err
    assert code == 3 and "TOOLKIT_BOKNETT_PASSWORD" in err
    code = main(["boknett", "pull", "--state", str(tmp_path / "s"), "--environment", "sandbox"])
    err = capsys.readouterr().err
    assert code == 3 and "after" in err and not (tmp_path / "s").exists()


def test_password_from_a_hidden_prompt(make_sandbox: Any, tmp_path: Path, capsys: Any,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = make_sandbox(services=["boknett"], seed=24)
    emu = sandbox.emulator("boknett")
    emu.object_count = 5
    creds = emu.credentials()
    asked: list[str] = []
    monkeypatch.delenv("TOOLKIT_BOKNETT_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": asked.append(prompt) or creds["password"])
    code = main(["boknett", "pull", "--state", str(tmp_path / "s"), "--after", _after(emu), "--username",
                 creds["username"], "--base-url", creds["base_url"], "--login-url", creds["login_url"]])
    assert code == 0 and len(asked) == 1 and "hidden" in asked[0]
    assert "5 changed objects" in capsys.readouterr().out
