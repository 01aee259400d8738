"""The README's first command, `./run lab`, starts JupyterLab on notebooks/ with the sandbox running."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from .conftest import stop_process_group
from toolkit.testing import free_port

ROOT = Path(__file__).resolve().parents[1]


def get(url: str, timeout: float = 2) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return r.status, r.read()


@pytest.mark.integration
def test_run_lab_starts_jupyterlab_and_the_sandbox(tmp_path: Path) -> None:
    port, token = free_port(), secrets.token_hex(16)
    log = (tmp_path / "lab.log").open("w")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    sandbox_file = ROOT / os.environ.get("TOOLKIT_VENV", ".venv") / "sandbox.json"
    sandbox_file.unlink(missing_ok=True)
    proc = subprocess.Popen([str(ROOT / "run"), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--ServerApp.token={token}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body = get(f"http://127.0.0.1:{port}/api/contents?token={token}")
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200, (tmp_path / "lab.log").read_text()[-2000:]
        names = {item["name"] for item in json.loads(body)["content"]}
        assert "00_start_here.ipynb" in names  # JupyterLab serves the notebooks folder
        assert get(f"http://127.0.0.1:{port}/lab?token={token}")[0] == 200
        printed = (tmp_path / "lab.log").read_text()
        assert sandbox_file.exists() and sandbox_file.read_text().strip(), f"no sandbox started:\n{printed[-2000:]}"
        urls = json.loads(sandbox_file.read_text())["urls"]
        assert urls and all(u.startswith("http://127.0.0.1:") for u in urls.values())
        # the terminal names every service with its address (once a blank "Sandbox running:" line) and
        # never prints the demo credentials that sandbox.json also holds
        assert "Sandbox running" in printed, printed[-2000:]
        for name, url in urls.items():
            assert any(name in line and url in line for line in printed.splitlines()), (name, url, printed[-2000:])
        creds = json.loads(sandbox_file.read_text())["credentials"]
        secret_values = [str(v) for c in creds.values() for k, v in c.items()
                         if any(word in k for word in ("password", "secret", "token"))]
        assert secret_values and not [v for v in secret_values if v in printed], "a secret printed by ./run lab"
        for url in urls.values():  # every emulator answers (any HTTP status counts)
            try:
                get(url)
            except urllib.error.HTTPError as exc:
                assert exc.code < 600
        # the sandbox's own discovery file: what `toolkit … --environment sandbox` in JupyterLab's terminals and
        # toolkit.sandbox.discover() in its kernels read (./run lab exports TOOLKIT_SANDBOX_FILE for them)
        found = subprocess.run([sys.executable, "-c", "import json, toolkit; "
                                "print(json.dumps(dict(toolkit.sandbox.discover().urls)))"],
                               env={**os.environ, "TOOLKIT_SANDBOX_FILE": str(sandbox_file)},
                               capture_output=True, text=True, timeout=60)
        assert found.returncode == 0 and json.loads(found.stdout) == urls, found.stderr[-2000:]
    finally:
        stop_process_group(proc, 20)
        log.close()
    deadline = time.monotonic() + 15  # the sandbox stops its servers, then removes its file: no stale addresses
    while sandbox_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sandbox_file.exists(), "the sandbox of ./run lab left its discovery file behind"


@pytest.mark.parametrize("args", [[], ["help"], ["--help"]])
def test_run_without_a_command_prints_readable_help(args: list[str]) -> None:
    result = subprocess.run([str(ROOT / "run"), *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("Usage: ./run COMMAND"), text
    for command in ("lab", "test", "sandbox", "bench", "setup"):  # each command with what it does
        assert any(line.strip().startswith(command + " ") and len(line.split()) > 3 for line in text.splitlines()), \
            (command, text)
    assert "set -euo" not in text and "$VENV" not in text and "#" not in text  # words, not shell lines


def test_run_with_an_unknown_command_names_it_and_shows_the_help() -> None:
    result = subprocess.run([str(ROOT / "run"), "labb"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "unknown command 'labb'" in result.stderr and "Usage: ./run COMMAND" in result.stderr, result.stderr
    assert result.stdout == ""  # nothing started, nothing installed
