"""Sandbox discovery: how a client finds a running sandbox, apart from connecting to it.

A sandbox started in this process (``toolkit.sandbox.start()``) announces itself here (:func:`announce`,
:func:`withdraw` when it stops). One started in another process (``toolkit sandbox``, ``./run lab``)
writes one JSON line ``{"urls": …, "credentials": …, "pid": …}`` to the file named by
``TOOLKIT_SANDBOX_FILE``, by default ``<temp dir>/toolkit-sandbox-<user>.json`` (:func:`sandbox_file`),
and removes it when it stops. :func:`discover` finds either: the connect path
(:mod:`toolkit.core.service`) asks it when the environment is ``sandbox``. No client imports the sandbox
package.
"""

from __future__ import annotations

import getpass
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from .credentials import Secret
from .registry import spec

__all__ = ["discover", "announce", "withdraw", "sandbox_file", "SandboxInfo", "SANDBOX_FILE_VAR", "publish"]

SANDBOX_FILE_VAR = "TOOLKIT_SANDBOX_FILE"
_announced: list[Any] = []


def sandbox_file() -> Path:
    """The file through which a sandbox in another process is found."""
    named = os.environ.get(SANDBOX_FILE_VAR)
    if named:
        return Path(named)
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"toolkit-sandbox-{user}.json"


def publish(line: str, path: Path | None = None) -> Path:
    """Write the discovery file (one JSON line: URLs, the fake demo credentials, the pid) readable and
    writable by its owner only (mode 0600, also where the umask would let others read it), atomically:
    a reader never sees half a line. Returns the path."""
    target = Path(path) if path is not None else sandbox_file()
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode applies to a new file only; a leftover keeps its own
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


class SandboxInfo:
    """A sandbox running in another process, as read from its file: ``urls``, ``credentials(service)``."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self.urls: dict[str, str] = dict(data.get("urls") or {})
        self._credentials: dict[str, dict[str, Any]] = dict(data.get("credentials") or {})
        self.pid = data.get("pid")
        self.source = source
        self.running = True

    def credentials(self, service: str) -> dict[str, Any]:
        found = dict(self._credentials.get(service) or {})
        secret = {f.name for f in spec(service).fields if f.secret}
        return {k: Secret(v) if k in secret and isinstance(v, str) else v for k, v in found.items()}

    def __repr__(self) -> str:
        return f"<sandbox in another process ({self.source}): {', '.join(self.urls)}>"


def announce(sandbox: Any) -> None:
    """A sandbox of this process announces itself (``toolkit.sandbox.start()`` calls this)."""
    if sandbox not in _announced:
        _announced.append(sandbox)


def withdraw(sandbox: Any) -> None:
    """A sandbox of this process that stops is no longer found."""
    if sandbox in _announced:
        _announced.remove(sandbox)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def discover(service: str | None = None) -> Any:
    """The running sandbox (of this process first, else the one named by the sandbox file), or None.
    With ``service``, only a sandbox that serves it."""
    for sb in reversed(_announced):
        if getattr(sb, "running", True) and (service is None or service in sb.urls):
            return sb
    path = sandbox_file()
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        data = json.loads(first)
    except (OSError, IndexError, ValueError):
        return None
    if not isinstance(data, Mapping) or not _pid_alive(data.get("pid")):
        return None
    info = SandboxInfo(data, str(path))
    if service is not None and service not in info.urls:
        return None
    return info
