"""The README's first command, `./run lab`, starts JupyterLab on notebooks/ with the sandbox running."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from .conftest import stop_process_group

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        urls = json.loads(sandbox_file.read_text())["urls"]
        assert urls and all(u.startswith("http://127.0.0.1:") for u in urls.values())
        for url in urls.values():  # every emulator answers (any HTTP status counts)
            try:
                get(url)
            except urllib.error.HTTPError as exc:
                assert exc.code < 600
    finally:
        stop_process_group(proc, 20)
        log.close()
