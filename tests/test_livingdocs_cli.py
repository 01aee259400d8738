"""``toolkit livingdocs import`` against the sandbox (in-process, over loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

import toolkit
from toolkit.cli import main
from toolkit.testing import assert_no_secrets


def test_cli_import_wait_report_and_exit_codes(make_sandbox: Any, tmp_path: Path, monkeypatch: Any,
                                               capsys: Any) -> None:
    sb = make_sandbox(services=["livingdocs"], seed=6)
    em = sb.emulator("livingdocs")
    em.job_seconds = 0.1
    csv = tmp_path / "archive.csv"
    pd.DataFrame({"url": [em.image_url("ok-1.png"), em.image_url("page.jpg"), "not a url", em.image_url("ok-2.png")],
                  "id": ["001", "002", "003", "004"], "fileName": ["One", "Html", "Bad", "Two"],
                  "metadata.caption": ["a", "b", "c", "d"]}).to_csv(csv, index=False)
    monkeypatch.setenv("TOOLKIT_LIVINGDOCS_TOKEN", em.write_token)
    report = tmp_path / "report.csv"
    code = main(["livingdocs", "import", str(csv), "--system-name", "archive", "--base-url", em.base_url, "--wait",
                 "--report", str(report), "--no-progress"])
    out = capsys.readouterr()
    assert code == 1  # one image failed (an HTML page named .jpg)
    rows = pd.read_csv(report, dtype=str)
    assert rows["external_id"].tolist() == ["001", "002", "003", "004"]  # leading zeros kept
    assert rows["outcome"].tolist() == ["success", "failed", "invalid", "success"]
    assert em.entry("archive", "001")["metadata"] == {"caption": "a"}
    assert "success 2, failed 1, invalid 1" in out.out
    assert_no_secrets(out.out + out.err + report.read_text(), em.secrets())
    # the same rows again: unchanged images are skipped
    code = main(["livingdocs", "import", str(csv), "--system-name", "archive", "--base-url", em.base_url, "--wait",
                 "--no-progress"])
    assert code == 1 and "skipped 2" in capsys.readouterr().out
    # a token without the write scope: one plain error, exit 3, no secret
    monkeypatch.setenv("TOOLKIT_LIVINGDOCS_TOKEN", em.read_token)
    code = main(["livingdocs", "import", str(csv), "--system-name", "archive", "--base-url", em.base_url])
    out = capsys.readouterr()
    assert code == 3 and "public-api:write" in out.err + out.out
    assert_no_secrets(out.out + out.err, em.secrets())
