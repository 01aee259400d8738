"""The one resumable journal of every bulk write (uploads, downloads, imports, applies): SQLite in WAL mode.

An entry is keyed by **destination + item + content hash**:

* ``destination`` — where the item goes: service, base URL and account (institution, folder, project …),
  built by :func:`destination`; never a secret. Uploading a folder to a second environment or institution
  is a different destination, so nothing is reported as "already uploaded" there.
* ``item`` — what the analyst names (a CPR number, a file name, an external id, a download id).
* ``content_hash`` — what was sent (a changed photo is sent again).

States: ``sending`` (claimed by a run; the request may be on its way), ``done`` (the service stored it),
``failed`` (the service refused it; a re-run tries again), ``in_doubt`` (sent, no answer: look on the
service before sending again).

**Claims are atomic in the journal itself** (``BEGIN IMMEDIATE``): two runs on one journal — threads of
one kernel or two kernels — never both send an item. :meth:`Journal.claim` answers

* ``claimed`` — this run sends it (``previous`` tells what an earlier run left: ``in_doubt`` or a stale
  ``sending`` of a run that died means "look on the service first");
* ``done`` — already stored (not sent again);
* ``busy`` — another live run is sending it right now; :meth:`Journal.wait_settled` waits for its end.

Runs (one per bulk call) are recorded in ``runs`` for :func:`toolkit.runs`. A journal written by the first
version of the toolkit (table ``uploads`` keyed by CPR and SHA-256 only) is migrated on open, with a line
saying so; its entries carry no destination, so they are kept as ``legacy`` and an item found there is
looked up on the service before it is skipped — never silently skipped for a new destination.

A journal path that cannot be used (missing folder, a directory, a file that is not a journal) is a
:class:`~toolkit.core.errors.ValidationError` naming the path.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ValidationError
from .redact import get_logger, redact

__all__ = ["Journal", "Claim", "destination", "LEGACY", "state_dir", "known_journals", "runs", "run_rows"]

log = get_logger("toolkit.journal")

SCHEMA_VERSION = 2
LEGACY = "legacy"
#: a ``sending`` claim older than this (seconds) is considered abandoned even if its process lives
DEFAULT_LEASE = 15 * 60

_HOST = socket.gethostname()


def state_dir() -> Path:
    """Where the toolkit keeps its own state (the index of journals): ``TOOLKIT_STATE_DIR``, else
    ``$XDG_STATE_HOME/toolkit``, else ``~/.local/state/toolkit``."""
    named = os.environ.get("TOOLKIT_STATE_DIR")
    if named:
        return Path(named).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "toolkit"


def _index() -> Path:
    return state_dir() / "journals.txt"


def _remember(path: Path) -> None:
    """Add a journal to the index that :func:`runs` reads (best effort: a read-only home is no error)."""
    try:
        index = _index()
        line = str(path.resolve())
        if index.is_file() and line in index.read_text(encoding="utf-8").splitlines():
            return
        index.parent.mkdir(parents=True, exist_ok=True)
        with open(index, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError:
        pass


def known_journals() -> list[Path]:
    """Every journal this machine's toolkit wrote (that still exists), oldest first."""
    try:
        lines = _index().read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    seen: dict[str, Path] = {}
    for line in lines:
        if line.strip() and line not in seen and Path(line).is_file():
            seen[line] = Path(line)
    return list(seen.values())


def destination(service: str, base_url: str, **account: Any) -> str:
    """The journal key of a destination, e.g. ``uddata|https://api.example|institution=123456``."""
    parts = [service, str(base_url).rstrip("/")]
    parts += [f"{k}={account[k]}" for k in sorted(account) if account[k] not in (None, "")]
    return "|".join(redact(p) for p in parts)  # each part on its own: "url|user=a@b" is not a URL with a password


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _alive(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != _HOST or not pid_text.isdigit():
        return True  # another machine: trust the lease
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Claim:
    state: str                         #: "claimed", "done" or "busy"
    previous: str | None = None        #: the state an earlier run left ("in_doubt", "sending", "failed", "legacy")
    record: Mapping[str, Any] | None = None

    @property
    def needs_check(self) -> bool:
        """An earlier run may have stored it: look on the service before sending again."""
        return self.state == "claimed" and self.previous in ("in_doubt", "sending", LEGACY)


_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS items (
    destination TEXT NOT NULL, item TEXT NOT NULL, content_hash TEXT NOT NULL, state TEXT NOT NULL,
    label TEXT, run_id TEXT, owner TEXT, claimed_at REAL, http_status INTEGER, message TEXT,
    remote_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL, extra TEXT,
    PRIMARY KEY (destination, item, content_hash));
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, service TEXT NOT NULL, destination TEXT NOT NULL, kind TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, items INTEGER, counts TEXT, summary TEXT);
CREATE TABLE IF NOT EXISTS run_rows (
    run_id TEXT NOT NULL, position INTEGER NOT NULL, row TEXT NOT NULL, PRIMARY KEY (run_id, position));
"""


class Journal:
    """One journal file; see the module docstring. ``readonly=True`` (dry runs) never writes."""

    def __init__(self, path: "str | os.PathLike[str] | None", *, readonly: bool = False,
                 service: str | None = None, lease: float = DEFAULT_LEASE) -> None:
        self.memory = path is None  # a journal of this call only (SQLite in memory): same rules, nothing kept
        self.path = Path(path).expanduser() if path is not None else Path(":memory:")
        self.readonly = readonly
        self.service = service
        self.lease = float(lease)
        self.owner = f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.migrated = 0
        self._db: sqlite3.Connection | None = None
        self._open()

    # -- opening ----------------------------------------------------------------------------------------
    def _bad(self, why: str) -> ValidationError:
        return ValidationError(f"the journal {self.path} cannot be used: {why}", service=self.service,
                               hint="Give journal= a file path in an existing, writable folder (the file is "
                                    "created), or remove a damaged journal file to start a new one.")

    def _open(self) -> None:
        if self.memory:
            self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._db.executescript(_TABLES)
            self._db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            return
        if self.path.is_dir():
            raise self._bad("it is a folder, not a file")
        if not self.path.parent.is_dir():
            raise self._bad(f"the folder {self.path.parent} does not exist")
        if self.readonly:
            if not self.path.exists():
                return
            uri = f"file:{self.path}?mode=ro"
            try:
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
                self._db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._bad(f"it is not a journal ({exc})") from None
            return
        deadline = time.monotonic() + 30
        while True:
            try:
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_TABLES)
                self._migrate()
                _remember(self.path)
                return
            except sqlite3.OperationalError as exc:
                self._close_quietly()
                # another process is creating the same journal right now (switching it to WAL needs the
                # file to itself for a moment): wait a little and open it again
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise self._bad(f"it is not a journal, or it is damaged ({exc})") from None
            except sqlite3.DatabaseError as exc:
                self._close_quietly()
                raise self._bad(f"it is not a journal, or it is damaged ({exc})") from None
            except OSError as exc:
                self._close_quietly()
                raise self._bad(str(exc)) from None

    def _close_quietly(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:  # pragma: no cover
                pass
            self._db = None

    def _migrate(self) -> None:
        assert self._db is not None
        db = self._db
        version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if version is not None:
            return
        old = db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='uploads'").fetchone()
        db.execute("BEGIN IMMEDIATE")
        try:
            if old is not None and not db.execute("SELECT value FROM meta WHERE key='schema'").fetchone():
                cur = db.execute(
                    "INSERT OR IGNORE INTO items (destination, item, content_hash, state, label, http_status, "
                    "message, attempts, updated) SELECT ?, cpr, sha256, ?, file, http_status, message, attempts, "
                    "updated FROM uploads WHERE state IN ('uploaded', 'sending', 'in_doubt')", (LEGACY, LEGACY))
                self.migrated = cur.rowcount
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if self.migrated:
            print(f"Journal {self.path.name}: migrated {self.migrated} entries of the older format; they name no "
                  "destination, so each is looked up on the service before it is skipped.", flush=True)

    # -- items ------------------------------------------------------------------------------------------
    def _row(self, dest: str, item: str, content_hash: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        try:
            cur = self._db.execute("SELECT * FROM items WHERE destination = ? AND item = ? AND content_hash = ?",
                                   (dest, item, content_hash))
        except sqlite3.OperationalError:  # a read-only journal of the old format
            return None
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row))

    @property
    def _has_legacy(self) -> bool:
        """Whether the journal holds entries migrated from the first version (looked up once)."""
        cached = getattr(self, "_legacy_cache", None)
        if cached is None:
            try:
                cached = self._db is not None and self._db.execute(
                    "SELECT 1 FROM items WHERE destination = ? LIMIT 1", (LEGACY,)).fetchone() is not None
            except sqlite3.OperationalError:
                cached = False
            self._legacy_cache = cached
        return cached

    def get(self, dest: str, item: str, content_hash: str) -> dict[str, Any] | None:
        """The entry of this destination, or a ``legacy`` entry of the same item and content."""
        found = self._row(dest, item, content_hash)
        if found is None and self._has_legacy:
            legacy = self._row(LEGACY, item, content_hash)
            if legacy is not None:
                legacy["state"] = LEGACY
                return legacy
        return found

    def claim(self, dest: str, item: str, content_hash: str, *, run_id: str | None = None,
              label: str | None = None, redo: bool = False) -> Claim:
        """Claim an item for sending, atomically (see the module docstring). ``redo=True`` claims an item
        that is ``done`` too (its result is gone: a downloaded file was deleted, say)."""
        if self._db is None or self.readonly:
            before = self.get(dest, item, content_hash)
            if before and before["state"] == "done" and not redo:
                return Claim("done", "done", before)
            return Claim("claimed", before["state"] if before else None, before)
        db = self._db
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            before = self.get(dest, item, content_hash)
            previous = before["state"] if before else None
            if previous == "done" and not redo:
                db.execute("COMMIT")
                return Claim("done", previous, before)
            if previous == "sending" and before is not None and before["owner"] != self.owner \
                    and _alive(before["owner"] or "") and now - (before["claimed_at"] or 0) < self.lease:
                db.execute("COMMIT")
                return Claim("busy", previous, before)
            db.execute(
                "INSERT INTO items (destination, item, content_hash, state, label, run_id, owner, claimed_at, "
                "attempts, updated) VALUES (?, ?, ?, 'sending', ?, ?, ?, ?, 1, ?) "
                "ON CONFLICT (destination, item, content_hash) DO UPDATE SET state = 'sending', "
                "label = excluded.label, run_id = excluded.run_id, owner = excluded.owner, "
                "claimed_at = excluded.claimed_at, attempts = items.attempts + 1, updated = excluded.updated",
                (dest, item, content_hash, label, run_id, self.owner, now, _now()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Claim("claimed", previous, before)

    def finish(self, dest: str, item: str, content_hash: str, state: str, *, http_status: int | None = None,
               message: str | None = None, remote_id: str | None = None, label: str | None = None,
               extra: Mapping[str, Any] | None = None) -> None:
        """Record the end of an attempt: ``done``, ``failed`` or ``in_doubt``."""
        if self._db is None or self.readonly:
            return
        self._db.execute(
            "INSERT INTO items (destination, item, content_hash, state, label, owner, http_status, message, "
            "remote_id, updated, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (destination, item, content_hash) DO UPDATE SET state = excluded.state, "
            "label = COALESCE(excluded.label, items.label), owner = NULL, claimed_at = NULL, "
            "http_status = excluded.http_status, message = excluded.message, "
            "remote_id = COALESCE(excluded.remote_id, items.remote_id), updated = excluded.updated, "
            "extra = COALESCE(excluded.extra, items.extra)",
            (dest, item, content_hash, state, label, None, http_status, redact(message) if message else None,
             remote_id, _now(), json.dumps(dict(extra), default=str) if extra else None))

    def note(self, dest: str, item: str, content_hash: str, extra: Mapping[str, Any]) -> None:
        """Add ``extra`` to an entry this run holds, before the service is asked: what the next run needs
        to recognise this run's result if it dies before :meth:`finish` (a download's reserved file name)."""
        if self._db is None or self.readonly:
            return
        row = self._row(dest, item, content_hash)
        merged = {**json.loads((row or {}).get("extra") or "{}"), **dict(extra)}
        self._db.execute("UPDATE items SET extra = ? WHERE destination = ? AND item = ? AND content_hash = ?",
                         (json.dumps(merged, default=str), dest, item, content_hash))

    async def wait_settled(self, dest: str, item: str, content_hash: str, *, timeout: float | None = None,
                           interval: float = 0.1) -> dict[str, Any] | None:
        """Wait while another run holds the item (``sending``); returns the entry once it settled."""
        import asyncio

        deadline = time.monotonic() + (self.lease if timeout is None else timeout)
        while True:
            row = self._row(dest, item, content_hash)
            if row is None or row["state"] != "sending" or row["owner"] == self.owner \
                    or not _alive(row["owner"] or "") or time.monotonic() >= deadline:
                return row
            await asyncio.sleep(interval)

    def entries(self, dest: str | None = None) -> list[dict[str, Any]]:
        """Every entry (of one destination), oldest first."""
        if self._db is None:
            return []
        try:
            if dest is None:
                cur = self._db.execute("SELECT * FROM items ORDER BY updated")
            else:
                cur = self._db.execute("SELECT * FROM items WHERE destination = ? ORDER BY updated", (dest,))
        except sqlite3.OperationalError:
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    # -- runs -------------------------------------------------------------------------------------------
    def start_run(self, service: str, dest: str, kind: str, items: int) -> str:
        run_id = uuid.uuid4().hex[:16]
        if self._db is not None and not self.readonly:
            self._db.execute("INSERT INTO runs (run_id, service, destination, kind, started_at, items) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (run_id, service, dest, kind, _now(), int(items)))
        return run_id

    def end_run(self, run_id: str, counts: Mapping[str, int], summary: str = "",
                rows: Iterable[Mapping[str, Any]] = ()) -> None:
        if self._db is None or self.readonly:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("UPDATE runs SET finished_at = ?, counts = ?, summary = ? WHERE run_id = ?",
                       (_now(), json.dumps(dict(counts)), redact(summary), run_id))
            db.executemany("INSERT OR REPLACE INTO run_rows (run_id, position, row) VALUES (?, ?, ?)",
                           [(run_id, i, json.dumps(dict(r), default=str)) for i, r in enumerate(rows)])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def runs(self) -> list[dict[str, Any]]:
        if self._db is None:
            return []
        try:
            cur = self._db.execute("SELECT * FROM runs ORDER BY started_at")
        except sqlite3.OperationalError:
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def run_rows(self, run_id: str) -> list[dict[str, Any]]:
        if self._db is None:
            return []
        try:
            cur = self._db.execute("SELECT row FROM run_rows WHERE run_id = ? ORDER BY position", (run_id,))
        except sqlite3.OperationalError:
            return []
        return [json.loads(r[0]) for r in cur.fetchall()]

    # -- lifecycle --------------------------------------------------------------------------------------
    def release(self) -> int:
        """Items this journal object still holds as ``sending`` (a run that was interrupted) become
        ``in_doubt``, so the next run looks on the service first instead of waiting for them."""
        if self._db is None or self.readonly:
            return 0
        cur = self._db.execute("UPDATE items SET state = 'in_doubt', owner = NULL, claimed_at = NULL, updated = ? "
                               "WHERE owner = ? AND state = 'sending'", (_now(), self.owner))
        return cur.rowcount

    def close(self) -> None:
        if self._db is not None:
            try:
                self.release()
            except sqlite3.Error:  # pragma: no cover - closing must not fail
                pass
            self._db.close()
            self._db = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Journal {self.path.name}{' read-only' if self.readonly else ''}>"


# -- the history of every run, across journals ------------------------------------------------------------
_RUN_COLUMNS = {"run_id": "string", "service": "string", "destination": "string", "kind": "string",
                "started_at": "datetime", "finished_at": "datetime", "items": "Int64", "summary": "string",
                "journal": "string"}


def runs(journals: "Iterable[str | os.PathLike[str]] | None" = None) -> Any:
    """Every bulk run the journals hold, newest first: one row per run with its service, destination
    (host and account, never a secret), kind, start and end, number of items, and one column per outcome
    with its count (``n_uploaded``, ``n_failed`` …). ``journals`` defaults to every journal this machine's
    toolkit wrote (:func:`known_journals`). A journal that cannot be read is listed as one row saying why.
    ``run_rows(run_id)`` gives a run's result rows again."""
    from .frames import frame

    records: list[dict[str, Any]] = []
    outcomes: list[str] = []
    for path in (known_journals() if journals is None else [Path(p) for p in journals]):
        try:
            with Journal(path, readonly=True) as book:
                found = book.runs()
        except ValidationError as exc:
            records.append({"journal": str(path), "summary": f"not readable: {exc.message}"})
            continue
        for run in found:
            counts = json.loads(run.get("counts") or "{}")
            for key in counts:
                if key not in outcomes:
                    outcomes.append(key)
            started, finished = run.get("started_at"), run.get("finished_at")
            records.append({**run, **{f"n_{k}": v for k, v in counts.items()}, "journal": str(path),
                            "started_at": _naive(started), "finished_at": _naive(finished)})
    schema = dict(_RUN_COLUMNS)
    schema.update({f"n_{k}": "Int64" for k in outcomes})
    # counts are n_<outcome> (n_uploaded …): an outcome such as "created" is no date
    df = frame(records, schema, kind="jobs", service="toolkit")
    if len(df):
        df = df.sort_values("started_at", ascending=False, na_position="last").reset_index(drop=True)
        df.attrs.update({"kind": "jobs", "service": "toolkit"})  # as frame() gave them, whatever the sort kept
    return df


def _naive(value: Any) -> Any:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def run_rows(run_id: "str | Mapping[str, Any]", journals: "Iterable[str | os.PathLike[str]] | None" = None) -> Any:
    """The result rows of one run (a ``run_id``, or a row of :func:`runs`), as they were returned; CPR
    numbers are masked on display and file names redacted, as in the original result."""
    from .frames import frame

    if isinstance(run_id, Mapping) or hasattr(run_id, "get"):
        journal_hint = run_id.get("journal")  # type: ignore[union-attr]
        run_id = str(run_id.get("run_id"))  # type: ignore[union-attr]
        paths = [Path(journal_hint)] if journal_hint else None
    else:
        paths = None
    for path in (paths or (known_journals() if journals is None else [Path(p) for p in journals])):
        try:
            with Journal(path, readonly=True) as book:
                found = [r for r in book.runs() if r["run_id"] == run_id]
                if found:
                    rows = book.run_rows(str(run_id))
                    run = found[0]
                    break
        except ValidationError:
            continue
    else:
        raise ValidationError(f"no run {run_id!r} in the journals", hint="Take a run_id from toolkit.runs().")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    masked = {c: "cpr" for c in columns if c == "cpr"}
    masked.update({c: "text" for c in columns if c in ("file", "filename")})
    df = frame(rows, {c: "object" for c in columns}, masked=masked, kind="jobs", service=run["service"])
    for c in columns:
        if c in ("http_status", "bytes", "width", "height", "id", "folder_id", "filesize"):
            try:
                df[c] = df[c].astype("Int64")
            except (TypeError, ValueError):
                pass
        elif c not in masked and df[c].map(lambda v: v is None or isinstance(v, str)).all():
            df[c] = df[c].astype("string")
    df.attrs.update({"run_id": run_id, "summary": run.get("summary") or ""})
    return df
