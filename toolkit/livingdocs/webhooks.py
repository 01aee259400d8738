"""A small webhook receiver on 127.0.0.1 for notebooks and tests: :class:`WebhookInbox`.

    with toolkit.livingdocs.WebhookInbox() as inbox:
        job = lv.import_images(df, system_name="archive", webhook=inbox.url)
        job.wait(inbox=inbox)          # returns as soon as the job's webhook arrived (one status call)
        inbox.messages()               # DataFrame: received_at, job_id, state, source, total, success, …

The inbox keeps every message it receives, whether or not a job id is known yet: Livingdocs may post the
webhook before the import call's answer (with the job id) reached us, so a job looks its message up in
the inbox when it waits, never the other way round. It is an ``http.server`` on a daemon thread bound to
127.0.0.1 only (a Livingdocs server elsewhere cannot reach it: it is for the sandbox and for tests).
Livingdocs signs nothing (contract §2.5), so the inbox accepts any JSON ``POST``; bodies over 1 MB and
non-JSON bodies are refused with ``400``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable

from ..core.frames import frame
from ..core.redact import get_logger, redact

__all__ = ["WebhookInbox", "MESSAGE_SCHEMA"]

log = get_logger("toolkit.livingdocs.webhooks")

MAX_BODY = 1 << 20
MESSAGE_SCHEMA = {"received_at": "datetime", "job_id": "string", "state": "string", "source": "string",
                  "total": "Int64", "success": "Int64", "skipped": "Int64", "failed": "Int64", "context": "object"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    inbox: "WebhookInbox"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server API
        log.debug("webhook inbox: %s", redact(format % args))

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._answer(400, {"error": "the body must have a Content-Length of at most 1 MB"})
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._answer(400, {"error": "the body is not JSON"})
            return
        self.server.inbox._receive(body, self.path)
        self._answer(200, {"ok": True})

    def do_GET(self) -> None:  # noqa: N802 - a health check
        self._answer(200, {"messages": len(self.server.inbox._messages)})


class WebhookInbox:
    """A webhook receiver on ``127.0.0.1`` (see the module docstring).

    Parameters
    ----------
    port:
        The port to listen on; ``0`` (default) takes a free one. ``inbox.url`` is the address to give as
        ``webhook=`` (or pass the inbox itself: ``import_images(..., webhook=inbox)``).
    """

    def __init__(self, port: int = 0) -> None:
        self._messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._server = _Server(("127.0.0.1", int(port)), _Handler)
        self._server.inbox = self
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/livingdocs-webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"livingdocs-webhook-inbox-{self.port}", daemon=True)
        self._thread.start()
        self.running = True

    # -- receiving --------------------------------------------------------------------------------------
    def _receive(self, body: Any, path: str) -> None:
        record = {"received_at": datetime.now(timezone.utc).replace(tzinfo=None), "body": body, "path": path,
                  "monotonic": time.monotonic()}
        with self._cond:
            self._messages.append(record)
            self._cond.notify_all()
        job = body.get("id") if isinstance(body, dict) else None
        log.debug("webhook inbox: message for job %s", redact(job))

    # -- reading ----------------------------------------------------------------------------------------
    def bodies(self) -> list[Any]:
        """The raw JSON bodies received, oldest first."""
        with self._cond:
            return [m["body"] for m in self._messages]

    def __len__(self) -> int:
        with self._cond:
            return len(self._messages)

    def message_for(self, job_id: str) -> dict[str, Any] | None:
        """The last body received for ``job_id`` (``None`` when none arrived yet)."""
        with self._cond:
            for m in reversed(self._messages):
                body = m["body"]
                if isinstance(body, dict) and str(body.get("id")) == str(job_id):
                    return body
        return None

    def job_ids(self) -> set[str]:
        """The job ids that webhooks were received for."""
        with self._cond:
            return {str(m["body"].get("id")) for m in self._messages
                    if isinstance(m["body"], dict) and m["body"].get("id") is not None}

    def messages(self) -> Any:
        """A DataFrame of the messages: received_at, job_id, state, source, total, success, skipped, failed,
        context (one row per webhook, oldest first)."""
        rows = []
        with self._cond:
            records = list(self._messages)
        for m in records:
            body = m["body"] if isinstance(m["body"], dict) else {}
            overview = body.get("overview") if isinstance(body.get("overview"), dict) else {}
            details = overview.get("details") if isinstance(overview.get("details"), dict) else {}
            rows.append({"received_at": m["received_at"], "job_id": body.get("id"), "state": body.get("state"),
                         "source": body.get("source"), "total": _int(overview.get("total")),
                         "success": _int(details.get("success")), "skipped": _int(details.get("skipped")),
                         "failed": _int(details.get("failed")), "context": body.get("context")})
        return frame(rows, MESSAGE_SCHEMA, kind="jobs", service="livingdocs")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a new message arrives (True) or ``timeout`` seconds passed (False)."""
        with self._cond:
            seen = len(self._messages)
            return self._cond.wait_for(lambda: len(self._messages) > seen, timeout)

    def wait_for(self, job_ids: Iterable[str], timeout: float | None = None) -> bool:
        """Block until a message for every one of ``job_ids`` arrived (True) or the timeout (False)."""
        wanted = {str(j) for j in job_ids}
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if wanted <= self.job_ids():
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            with self._cond:
                self._cond.wait(0.2 if left is None else min(0.2, left))

    def clear(self) -> None:
        """Forget the messages received so far."""
        with self._cond:
            self._messages.clear()

    # -- lifecycle --------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop listening (the messages stay readable)."""
        if self.running:
            self.running = False
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)

    close = stop

    def __enter__(self) -> "WebhookInbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.stop()
        except Exception:  # noqa: BLE001
            pass

    def __repr__(self) -> str:
        state = "listening" if self.running else "stopped"
        return f"<Livingdocs WebhookInbox {state} at {self.url}: {len(self)} message(s)>"


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
