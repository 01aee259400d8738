"""Shared fixtures: a session-wide sandbox on loopback, and a factory for sandboxes with faults."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from typing import Any, Iterator

import pytest

# the toolkit's own state (the index of journals that toolkit.runs() reads) goes to a folder of this test
# session, also for the notebook kernels and subprocesses started by the tests, never to the user's home
os.environ.setdefault("TOOLKIT_STATE_DIR", __import__("tempfile").mkdtemp(prefix="toolkit-state-"))

import toolkit  # noqa: E402
from toolkit.sandbox import Sandbox  # noqa: E402
from toolkit.testing import assert_no_secrets  # noqa: E402


@pytest.fixture(scope="session")
def sb() -> Iterator[Sandbox]:
    """One sandbox (seed 0, no faults, no latency) for tests that only read or that restore state."""
    with toolkit.sandbox.start(seed=0) as sandbox:
        yield sandbox


@pytest.fixture
def make_sandbox() -> Iterator[Any]:
    """Factory for a private sandbox (faults, latency, another seed); stopped after the test."""
    made: list[Sandbox] = []

    def factory(**kwargs: Any) -> Sandbox:
        sandbox = toolkit.sandbox.start(**kwargs)
        made.append(sandbox)
        return sandbox

    yield factory
    for sandbox in made:
        sandbox.stop()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record at DEBUG (toolkit, httpx, httpcore) for secret/CPR scans."""
    caplog.set_level(logging.DEBUG)
    for name in ("toolkit", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def assert_clean(text: str, forbidden: list[str], where: str = "output") -> None:
    """Fail if any forbidden value (a secret or a raw CPR) appears in ``text`` (``toolkit.testing``)."""
    assert_no_secrets(text, forbidden, where)


def widget_tree(root: Any) -> list[Any]:
    """The widget and all its descendants (``children`` recursively)."""
    found, stack = [], [root]
    while stack:
        widget = stack.pop()
        found.append(widget)
        stack.extend(getattr(widget, "children", ()))
    return found


def read_line(proc: "subprocess.Popen[str]", timeout: float = 60, what: str = "its first line") -> str:
    """The next line ``proc`` writes to its stdout, waited for at most ``timeout`` seconds: a child that hangs
    without writing is killed and the test fails saying so (a bare ``readline()`` would wait forever)."""
    got: list[str] = []
    stdout: Any = proc.stdout
    reader = threading.Thread(target=lambda: got.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        proc.kill()  # ends the read too
        reader.join(5)
        raise AssertionError(f"the child process did not write {what} within {timeout:.0f} s (killed): {proc.args}")
    return got[0]


def stop_process_group(proc: "subprocess.Popen[Any]", timeout: float = 20) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started (TERM, then KILL)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture
def dk(dks: Sandbox) -> Iterator[Any]:
    """A Dokus client on the requesting module's own ``dks`` sandbox (each module picks its seed)."""
    client = toolkit.dokus.connect(**dks.credentials("dokus"))
    yield client
    client.close()
