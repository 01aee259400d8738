"""The Uddata+ command line against a sandbox in another process (found through core's discovery file),
and the README's command-line examples run exactly as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest

from toolkit.sandbox.uddata_data import make_photo

from .conftest import assert_clean, read_line, stop_process_group

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN = "0101901234"  # valid, on no sandbox roster


def toolkit_command() -> list[str]:
    script = Path(sys.executable).parent / "toolkit"
    return [str(script)] if script.exists() else [sys.executable, "-c", "import sys, toolkit.cli; "
                                                                        "sys.exit(toolkit.cli.main())"]


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLKIT_")}
    env["TOOLKIT_SANDBOX_FILE"] = str(tmp_path / "sandbox.json")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    return env


@pytest.fixture
def other_process_sandbox(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``toolkit sandbox --json`` in a subprocess; yields its JSON line and the environment to find it."""
    env = clean_env(tmp_path)
    proc = subprocess.Popen([*toolkit_command(), "sandbox", "--json", "--services", "uddata"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=tmp_path)
    try:
        line = read_line(proc)
        assert line, proc.stderr.read() if proc.poll() is not None else "no JSON line"  # type: ignore[union-attr]
        info = json.loads(line)
        assert Path(env["TOOLKIT_SANDBOX_FILE"]).exists()
        yield {"info": info, "env": env}
    finally:
        stop_process_group(proc)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def roster_of(info: dict[str, Any]) -> list[str]:
    import toolkit

    creds = info["credentials"]["uddata"]
    with toolkit.uddata.connect(**creds) as ud:
        return ud.students()["cpr"].tolist()


def readme_command(words: list[str]) -> list[str]:
    """A README command line as the toolkit command it runs: ``./run toolkit …`` is ``toolkit …`` in .venv
    (tests/test_cli.py runs the run script itself)."""
    return ["toolkit", *words[2:]] if words[:2] == ["./run", "toolkit"] else words


def readme_cli_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Command line\n.*?```bash\n(.*?)```", readme, re.S)
    assert block, "the README has no 'Command line' example"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_readme_cli_examples_run_as_written(other_process_sandbox, tmp_path: Path) -> None:
    info, env = other_process_sandbox["info"], other_process_sandbox["env"]
    roster = roster_of(info)
    pd.DataFrame({"cpr": roster[:20] + [UNKNOWN]}).to_csv(tmp_path / "cprs.csv", index=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, c in enumerate(roster[:4]):
        (photos / f"{c}.jpg").write_bytes(make_photo(300 + i))
    lines = readme_cli_lines()
    examples = [readme_command(shlex.split(line, comments=True)) for line in lines]
    examples = [e for e in examples if e and e[0] == "toolkit" and e[1:2] != ["sandbox"]]
    assert len(examples) >= 3, lines
    secret = info["credentials"]["uddata"]["client_secret"]
    outputs = []
    for example in examples:
        out = run([*toolkit_command(), *example[1:]], env, tmp_path)
        assert out.returncode == 0, (example, out.stdout[-2000:], out.stderr[-2000:])
        outputs.append(out.stdout + out.stderr)
        summaries = [line for line in out.stdout.splitlines() if line.startswith("Uddata+: photo")]
        assert len(summaries) == 1, out.stdout  # the summary once
    assert_clean("\n".join(outputs), [secret, *roster], "CLI output")
    audit = pd.read_csv(tmp_path / "audit.csv", dtype=str)
    assert audit["cpr"].tolist() == roster[:20] + [UNKNOWN]
    assert audit["outcome"].iloc[-1] == "unknown_cpr"
    report = pd.read_csv(tmp_path / "report.csv", dtype=str)
    assert set(report["outcome"]) == {"uploaded"} and len(report) == 4


def test_environment_sandbox_is_found_and_missing_fields_name_cli_flags(other_process_sandbox,
                                                                        tmp_path: Path) -> None:
    env = other_process_sandbox["env"]
    pd.DataFrame({"cpr": [UNKNOWN]}).to_csv(tmp_path / "c.csv", index=False)
    found = run([*toolkit_command(), "uddata", "audit", "c.csv", "--environment", "sandbox", "--no-progress"], env,
                tmp_path)
    assert found.returncode == 0, found.stderr
    assert "no sandbox is running" not in found.stderr and "unknown_cpr 1" in found.stdout
    # no sandbox file at all: a plain message, exit 3
    gone = {**env, "TOOLKIT_SANDBOX_FILE": str(tmp_path / "none.json")}
    missing = run([*toolkit_command(), "uddata", "audit", "c.csv", "--environment", "sandbox"], gone, tmp_path)
    assert missing.returncode == 3 and "no sandbox is running" in missing.stderr
    # a real environment without fields: the error names the command-line flags, not connect() arguments
    prod = run([*toolkit_command(), "uddata", "audit", "c.csv", "--environment", "production"], gone, tmp_path)
    assert prod.returncode == 3, prod.stderr
    assert "--institution" in prod.stderr and "--client-id" in prod.stderr
    assert "TOOLKIT_UDDATA_CLIENT_SECRET" in prod.stderr
    assert "connect()" not in prod.stderr and "institution=…" not in prod.stderr
    assert "--client-secret" not in prod.stderr  # the secret never comes from the command line
