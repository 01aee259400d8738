"""What users' tests and the toolkit's own tests share.

* ``toolkit_sandbox`` — a pytest fixture (module scope) that starts the sandbox on 127.0.0.1 and stops it
  after the module; enable it with ``pytest_plugins = ["toolkit.testing"]`` in a ``conftest.py``.
  ``sandbox_factory`` starts private ones (faults, latency, another seed) and stops them after the test.
* :func:`assert_no_secrets` — fail when any secret or raw personal value appears in a text (a log, a
  repr, a notebook, a DataFrame rendering); the message never repeats the leaked value.
* :func:`free_port` — a free TCP port on 127.0.0.1.
* :func:`broken_request` — the n-th request of a client fails as a broken connection would (a failure
  part-way through a paged pull or a bulk run).
* :func:`silent_server` — a TCP server on 127.0.0.1 that takes every connection and never answers (a
  service that hangs), recording the first line of each request it was sent.
* :func:`replay` — answer every connection made inside the block from a transcript written by
  :func:`toolkit.record` (a HAR file): a recorded problem becomes an offline test.
* :func:`run_killed` — run a bulk write in a child process that is killed (``SIGKILL``, no clean-up of any
  kind) the moment the n-th item's answer has come back and before the journal records it: the worst
  moment for an exactly-once write.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Iterable, Iterator

__all__ = ["assert_no_secrets", "free_port", "broken_request", "toolkit_sandbox", "sandbox_factory", "leaks",
           "run_killed", "silent_server", "SilentServer", "replay"]


def leaks(text: str, secrets: Iterable[Any]) -> list[str]:
    """The secrets (str or :class:`toolkit.Secret`) that appear in ``text``, masked for display."""
    from .core.credentials import Secret
    from .core.redact import mask_cpr

    found = []
    for value in secrets:
        raw = value.reveal() if isinstance(value, Secret) else str(value or "")
        if raw and raw in text:
            found.append(mask_cpr(raw) if raw.isdigit() and len(raw) == 10 else f"{raw[:3]}…({len(raw)} chars)")
    return sorted(set(found))


def assert_no_secrets(text: str, secrets: Iterable[Any], where: str = "output") -> None:
    """Fail (AssertionError) when any of ``secrets`` appears in ``text``."""
    found = leaks(str(text), secrets)
    assert not found, f"{len(found)} secret/personal value(s) leaked into {where}: {', '.join(found)}"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (bind to port 0 and read what the system gave)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SilentServer:
    """What :func:`silent_server` yields: ``port``, ``url``, ``connections`` (accepted so far) and
    ``requests`` (the first line of each request received, e.g. ``"POST /api/v1/import/images HTTP/1.1"``)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.connections = 0
        self.requests: list[str] = []
        self.stopped = False

    def __getitem__(self, key: str) -> Any:  # ``silent["port"]`` reads like the fixtures that came before
        return getattr(self, key)


@contextlib.contextmanager
def silent_server() -> Iterator[SilentServer]:
    """A service that accepts every connection on 127.0.0.1, reads each request's head, and never answers;
    stopped (every connection closed) when the block ends."""
    import threading

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    state = SilentServer(listener.getsockname()[1])
    held: list[socket.socket] = []
    lock = threading.Lock()

    def read(conn: socket.socket) -> None:
        data = b""
        conn.settimeout(0.2)
        while not state.stopped and b"\r\n\r\n" not in data:
            try:
                got = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not got:
                return
            data += got
        if b"\r\n" in data:
            with lock:
                state.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1"))

    def serve() -> None:
        while not state.stopped:
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            state.connections += 1
            held.append(conn)  # kept open, never answered
            threading.Thread(target=read, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopped = True
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


@contextlib.contextmanager
def replay(path: Any) -> Iterator[Any]:
    """``with replay("support.har") as r:`` — every connection made (or first used) inside the block is
    answered from the transcript at ``path`` instead of the network (matching rules:
    :mod:`toolkit.core.record`). Yields the :class:`~toolkit.core.record.Replayer` (``answered``, ``misses``,
    ``unused``). A request the transcript holds no answer for raises
    :class:`~toolkit.core.record.ReplayMiss`. Connect inside the block: a connection already used keeps the
    network."""
    from .core.http import answer_with
    from .core.record import Replayer

    replayer = Replayer.from_file(path)
    answer_with(replayer)
    try:
        yield replayer
    finally:
        answer_with(None)


_KILL_PRELUDE = """
import json, os, signal, sys
from toolkit.core import journal as _journal
_finish, _seen, _at = _journal.Journal.finish, {"n": 0}, int(os.environ["TOOLKIT_TEST_KILL_AT"])
def _killing_finish(self, dest, item, content_hash, state, **kw):
    if state == "done":
        _seen["n"] += 1
        if _seen["n"] == _at:  # the service answered; the journal does not know yet
            os.kill(os.getpid(), signal.SIGKILL)
    return _finish(self, dest, item, content_hash, state, **kw)
_journal.Journal.finish = _killing_finish
ctx = json.loads(os.environ["TOOLKIT_TEST_CONTEXT"])
"""


def run_killed(code: str, *, kill_at: int, timeout: float = 120, **context: Any) -> int:
    """Run ``code`` (Python text) in a child process that kills itself with ``SIGKILL`` the moment the
    ``kill_at``-th item of a bulk write is settled *done* — after the service (or the disk) has it, before
    the journal records it. ``context`` (JSON-able values: URLs, fake sandbox credentials as text, paths) is
    the dict ``ctx`` in the child. Returns the child's exit code (``-9`` when it was killed); a child that
    runs past ``timeout`` seconds is killed and raises ``TimeoutError``."""
    import json
    import os
    import subprocess
    import sys

    from .core.credentials import Secret

    def plain(value: Any) -> Any:
        if isinstance(value, Secret):
            return value.reveal()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    env = {**os.environ, "TOOLKIT_TEST_KILL_AT": str(int(kill_at)),
           "TOOLKIT_TEST_CONTEXT": json.dumps(plain(context), default=str)}
    try:
        done = subprocess.run([sys.executable, "-c", _KILL_PRELUDE + "\n" + code], env=env, timeout=timeout,
                              capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"the child process ran past {timeout} s") from None
    if done.returncode not in (0, -9):
        raise AssertionError(f"the child process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.returncode


@contextlib.contextmanager
def broken_request(http: Any, nth: int, *, path_endswith: str | None = None) -> Iterator[dict[str, int]]:
    """While the block runs, the ``nth`` request of ``http`` (a core ``HttpClient``; counting only those
    whose path ends in ``path_endswith`` when given) raises the ``TransportError`` of a broken connection.
    Yields the counter (``{"n": requests counted}``; set it to 0 to count again); restored on exit."""
    from .core.errors import TransportError

    original = http.request
    calls = {"n": 0}

    async def request(method: str, path: str, **kw: Any) -> Any:
        if path_endswith is None or path.endswith(path_endswith):
            calls["n"] += 1
            if calls["n"] == nth:
                raise TransportError("the connection broke (test)", service=http.service)
        return await original(method, path, **kw)

    http.request = request
    try:
        yield calls
    finally:
        http.request = original


try:  # the fixtures exist only where pytest is installed
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:
    @pytest.fixture(scope="module")
    def toolkit_sandbox() -> Iterator[Any]:
        """A sandbox (seed 0, no faults) for the tests of one module."""
        from .sandbox import start

        with start(seed=0) as sb:
            yield sb

    @pytest.fixture
    def sandbox_factory() -> Iterator[Any]:
        """``sandbox_factory(latency_ms=…, faults=…, seed=…)`` → a private sandbox, stopped after the test."""
        from .sandbox import start

        made: list[Any] = []

        def factory(**kwargs: Any) -> Any:
            sb = start(**kwargs)
            made.append(sb)
            return sb

        yield factory
        for sb in made:
            sb.stop()
