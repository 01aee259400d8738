"""Uploading to Mediaflow: one file (``upload``) or a whole folder (``upload_folder``), exactly once.

The two steps of the contract: ``POST file`` ``{"filename", "filesize", "toFolder"}`` answers a signed
upload URL (valid ``expiresIn`` seconds); a ``PUT`` of the raw bytes to that URL, with ``Content-Length``
equal to ``filesize`` and **no** ``Authorization`` header, stores the file (``201 [file]``).

The rules that keep every file stored exactly once, also when answers are lost:

* **The upload URL is a secret** (it is signed): registered with the redactor the moment it arrives, never
  logged, shown, put in a row, a journal or an error message.
* **A PUT is repeated to the same upload URL** while it is valid (a 503/429 — after ``Retry-After`` —, a
  500/502/504, a dropped connection): a repeated PUT to one URL keeps the same file, so this is safe.
* **A second upload URL is asked for only when the first one is of no more use**: it expired
  (``403 "Upload URL has expired"``). If an earlier PUT to the expired URL may have been stored (its
  answer was lost or was a 5xx), the folder is looked at first (file name + size, and the checksum when
  Mediaflow gives one): a file found there is the upload, and nothing is sent again.
* **``POST file`` itself stores nothing** (the file exists only after a PUT), but it is not idempotent:
  a 429 or 503 (Mediaflow did not take it) is asked again after ``Retry-After``; a lost answer or a
  500/502/504 is asked again only when the folder does not already hold the file (name + size +
  checksum) — otherwise that file is reported and nothing more is sent.
* **A forbidden folder** (``403`` on ``POST file``) is a ``forbidden`` row with Mediaflow's own message,
  and nothing is sent; in ``upload_folder`` the other files of the run get the same row without asking
  again.

``upload_folder`` gives **one row per directory entry** (sub-folders, hidden files and anything that is not
a regular file get a ``skipped`` row saying why; only the toolkit's own journal files are left out). It
is resumable with the core journal (:mod:`toolkit.core.journal`), by default
``<folder>/.mediaflow-upload.sqlite``: destination = service + base URL + folder id, item = the file name,
hash = SHA-256 of the bytes. A re-run sends nothing for files already stored (``already_uploaded``), sends
a changed file again, and looks in the folder first for a file an interrupted run may have stored.
``dry_run=True`` sends no request at all and writes nothing.

Outcomes: ``uploaded``, ``already_uploaded``, ``would_upload`` (dry run), ``skipped``, ``forbidden`` (403),
``not_found`` (404: no such folder), ``rejected`` (400), ``unauthorized`` (credentials refused),
``failed`` (no answer or a service error after the retries: run again, nothing is sent twice),
``deferred`` (not tried: Mediaflow failed repeatedly).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.bulk import failure, is_transient, run_bulk
from ..core.errors import (MAYBE_DELIVERED, BadRequest, Forbidden, NotFound, ToolkitError, TransportError,
                           Unauthorized, ValidationError)
from ..core.frames import ToolkitFrame, ToolkitSeries, frame
from ..core.http import json_or_none, parse_error_body, parse_retry_after
from ..core.journal import Journal
from ..core.redact import SECRET_KEYS, get_logger, redact, register_secret
from .assets import _array

#: the Mediaflow AsyncClient (duck-typed here, not imported: the client imports this module)
AsyncClient = Any

__all__ = ["UPLOAD_SCHEMA", "JOURNAL_NAME", "LABELS", "upload", "upload_folder", "exit_code"]

log = get_logger("toolkit.mediaflow.uploads")

SERVICE = "mediaflow"
UPLOAD_SCHEMA = {"file": "string", "folder_id": "Int64", "id": "Int64", "filename": "string", "filesize": "Int64",
                 "outcome": "string", "http_status": "Int64", "message": "string", "bytes": "Int64"}
MASKED = {"file": "text", "filename": "text"}
JOURNAL_NAME = ".mediaflow-upload.sqlite"
LABELS = ("uploaded", "already_uploaded", "would_upload", "skipped", "forbidden", "not_found", "rejected",
          "unauthorized", "failed", "deferred")
FAILED = {"forbidden", "not_found", "rejected", "unauthorized", "failed", "deferred"}
EXPIRED_TEXT = "upload url has expired"
#: how many times one file may ask for a new upload URL after the previous one expired
MAX_RENEWALS = 3
#: attempts of one PUT to one upload URL, and of one POST file
PUT_ATTEMPTS = 8
POST_ATTEMPTS = 6

FORBIDDEN_HINT = ("choose a folder the integration may upload to, or ask the Mediaflow administrator for the "
                  "right to upload to this one")


class _Stop(Exception):
    """An answer that ends one file's upload with a row (not a transient failure)."""

    def __init__(self, outcome: str, status: int | None, message: str) -> None:
        super().__init__(message)
        self.outcome, self.status, self.message = outcome, status, message


class _Transient(TransportError):
    """Mediaflow did not answer usefully after every retry; the bulk runner counts it as transient."""


def _row(file: str | None, folder_id: int | None, outcome: str, *, file_id: Any = None, filename: str | None = None,
         filesize: int | None = None, status: int | None = None, message: str = "") -> dict[str, Any]:
    return {"file": file, "folder_id": folder_id, "id": file_id, "filename": filename, "filesize": filesize,
            "outcome": outcome, "http_status": status, "message": redact(message), "bytes": filesize}


def _frame(rows: list[dict[str, Any]], summary: str | None = None) -> ToolkitFrame:
    df = frame(rows, UPLOAD_SCHEMA, masked=MASKED, summary=summary)
    df.attrs.update({"kind": "assets", "service": SERVICE})
    return df


def _series(row: dict[str, Any]) -> ToolkitSeries:
    df = _frame([row])
    out = df.iloc[0]
    out.attrs.update(df.attrs)
    return out


async def _wait(client: "AsyncClient", method: str, url: str, attempt: int, retry_after: float | None,
                reason: str) -> None:
    """The core's one backoff (the client's retry policy; ``Retry-After`` honoured), with its log line."""
    await client.http.pause(method, url, attempt, retry_after, reason)


#: the failures of one upload (core ``failure`` rules); ``{detail}`` is Mediaflow's own message
FAILURES = [
    (Unauthorized, "unauthorized", "not sent: Mediaflow did not accept the client id, client secret or refresh "
                                   "token ({detail}); check them and connect again"),
    (Forbidden, "forbidden", "not sent: Mediaflow says: {detail} (403); " + FORBIDDEN_HINT),
    (NotFound, "not_found", "not sent: Mediaflow says: {detail} (404); check the folder id (see mf.folders())"),
    (BadRequest, "rejected", "not sent: Mediaflow rejected the upload: {detail}"),
]


def _classify(exc: BaseException) -> tuple[str, int | None, str]:
    """(outcome, http status, plain message) of an exception that ends a file's upload."""
    if isinstance(exc, _Stop):
        return exc.outcome, exc.status, exc.message
    return failure(exc, FAILURES, verb="uploaded")


@dataclass
class _File:
    """What is sent: the name, the bytes and their checksums."""

    name: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()  # noqa: S324 - Mediaflow's checksum, not security


async def find_stored(client: "AsyncClient", folder_id: int, f: _File) -> int | None:
    """The id of a file in the folder with this name and size (and checksum, when Mediaflow gives a
    32-hex-digit one), or None. Used only when an earlier request may have stored the file."""
    response = await client.http.request("GET", f"folder/{folder_id}/files",
                                         params={"type": "any", "fields": "id,filename,filesize,checksum"},
                                         what="look in the folder for the file")
    md5 = f.md5
    for item in _array(response):  # not the folder's list: an error row, never a guess that sends again
        if not isinstance(item, dict) or item.get("filename") != f.name or item.get("filesize") != f.size:
            continue
        checksum = str(item.get("checksum") or "").lower()
        if len(checksum) == 32 and all(c in "0123456789abcdef" for c in checksum) and checksum != md5:
            continue
        return int(item["id"])
    return None


def _register_url(url: str) -> None:
    """Make the redactor mask this upload URL. A signature in a query parameter the redactor masks by
    name (``signature``, ``sig``, ``token`` …) is masked already — registering every one of hundreds of
    URLs would make each registration slower (core recompiles one pattern of all secrets); any other
    URL is registered whole."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    if any(k.lower() in SECRET_KEYS and all(query[k]) for k in query):
        return
    register_secret(url)


async def _request_url(client: "AsyncClient", folder_id: int, f: _File) -> tuple[str | None, int | None]:
    """``POST file`` → (upload URL, None), or (None, id) when the folder turned out to hold the file."""
    body = {"filename": f.name, "filesize": f.size, "toFolder": folder_id}
    last = "no answer"
    for attempt in range(1, POST_ATTEMPTS + 1):
        maybe_taken = False
        try:
            response = await client.http.request(
                "POST", "file", json=body, idempotent=False, allow=(500, 502, 503, 504),
                headers={"Content-Type": "application/json"}, what="ask Mediaflow for an upload URL")
        except TransportError as exc:
            if exc.delivery != MAYBE_DELIVERED:
                raise  # the HTTP layer already repeated a request that surely was not sent
            maybe_taken, last = True, exc.message
            retry_after = None
        else:
            status = response.status_code
            if status < 300:
                answer = json_or_none(response)
                url = answer.get("uploadURL") if isinstance(answer, dict) else None
                if not isinstance(url, str) or not url:
                    raise _Stop("failed", status, "not uploaded: Mediaflow answered without an upload URL")
                _register_url(url)
                return url, None
            last = f"HTTP {status}: {parse_error_body(response)}"
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            maybe_taken = status != 503  # 503: the service did not take it
        if attempt == POST_ATTEMPTS:
            break
        if maybe_taken:
            found = await find_stored(client, folder_id, f)
            if found is not None:
                return None, found
        await _wait(client, "POST", client.http.url_for("file"), attempt, retry_after, last)
    raise _Transient(f"could not get an upload URL after {POST_ATTEMPTS} attempts ({last})", service=SERVICE,
                     hint="Mediaflow is failing or unreachable: run the upload again later (nothing is sent twice).")


async def _put(client: "AsyncClient", url: str, f: _File) -> tuple[str, Any, bool]:
    """PUT the bytes to one upload URL, repeating it while useful → ("stored", file dict, _),
    ("expired", None, maybe_stored) or raises."""
    maybe_stored = False
    last = "no answer"
    for attempt in range(1, PUT_ATTEMPTS + 1):
        retry_after = None
        try:
            response = await client.transfer.request(
                "PUT", url, content=f.data, authenticate=False, headers={"Content-Type": "application/octet-stream"},
                allow=(400, 403, 404, 408, 409, 410, 413, 429, 500, 502, 503, 504), what="send the file")
        except TransportError as exc:
            if exc.delivery == MAYBE_DELIVERED:
                maybe_stored = True  # the bytes may have arrived; a repeat to this URL is safe
            last = exc.message
        else:
            status = response.status_code
            if status < 300:
                answer = json_or_none(response)
                item = answer[0] if isinstance(answer, list) and answer else answer
                return "stored", item if isinstance(item, dict) else {}, maybe_stored
            detail = parse_error_body(response)
            if status == 403 and EXPIRED_TEXT in detail.lower():
                return "expired", None, maybe_stored
            if status in (400, 409, 413):
                raise _Stop("rejected", status, f"not uploaded: Mediaflow rejected the bytes: {detail}")
            if status in (403, 404, 410):
                return "expired", None, maybe_stored  # the URL is of no more use: ask for a new one
            last = f"HTTP {status}: {detail}"
            if status in (429, 503):
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            else:
                maybe_stored = True
        if attempt < PUT_ATTEMPTS:
            await _wait(client, "PUT", url, attempt, retry_after, last)
    raise _Transient(f"could not send the file after {PUT_ATTEMPTS} attempts ({last})", service=SERVICE,
                     hint="Mediaflow is failing or unreachable: run the upload again later (nothing is sent twice).")


async def send(client: "AsyncClient", folder_id: int, f: _File, *, check_first: bool = False) -> dict[str, Any]:
    """Store one file in the folder exactly once; returns the row, raises for failures (see module doc)."""
    def stored_row(file_id: Any, how: str, status: int | None = None) -> dict[str, Any]:
        return _row(f.name, folder_id, "uploaded" if status else "already_uploaded", file_id=file_id,
                    filename=f.name, filesize=f.size, status=status, message=how)

    if check_first:
        found = await find_stored(client, folder_id, f)
        if found is not None:
            return stored_row(found, "not sent again: an earlier run sent it and the folder already holds it")
    renewals = 0
    while True:
        url, found = await _request_url(client, folder_id, f)
        if url is None:
            return stored_row(found, "not sent again: the folder already holds a file with this name, size and "
                                     "checksum")
        state, item, maybe_stored = await _put(client, url, f)
        del url
        if state == "stored":
            return _row(f.name, folder_id, "uploaded", file_id=item.get("id"), filename=item.get("filename", f.name),
                        filesize=item.get("filesize", f.size), status=201,
                        message="uploaded: Mediaflow stored the file (201); it is processed a moment later")
        if maybe_stored:
            found = await find_stored(client, folder_id, f)
            if found is not None:
                return stored_row(found, "uploaded: the answer was lost, and the folder holds the file", 201)
        renewals += 1
        if renewals > MAX_RENEWALS:
            raise _Transient(f"the upload URL expired {renewals} times before the file was sent", service=SERVICE,
                             hint="The connection is too slow for the URL's lifetime: lower the concurrency.")
        log.debug("Mediaflow: the upload URL expired before the file was sent; asking for a new one")


def _read(path: Path) -> _File:
    return _File(path.name, path.read_bytes())


def _folder_id(value: Any) -> int:
    from .assets import _int_id

    return _int_id(value, "folder id")


async def upload(client: "AsyncClient", path: "str | os.PathLike[str]", folder_id: Any) -> ToolkitSeries:
    """One file → one row (see the module docstring)."""
    fid = _folder_id(folder_id)
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValidationError(f"no such file: {redact(p.name)}", service=SERVICE,
                              hint="Give the path of a file to upload.")
    f = await asyncio.to_thread(_read, p)
    try:
        row = await send(client, fid, f)
    except Exception as exc:  # noqa: BLE001 - every answer is a row
        outcome, status, message = _classify(exc)
        row = _row(f.name, fid, outcome, filename=f.name, filesize=f.size, status=status, message=message)
    return _series(row)


def exit_code(result: Any) -> int:
    """The command line's exit code: 0 all stored (or nothing to do), 1 some failed."""
    return 1 if set(result["outcome"].dropna()) & FAILED else 0


@dataclass
class _Entry:
    path: Path
    skip: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def _scan(root: Path, journal_path: Path) -> list[_Entry]:
    own = {journal_path.name, *(journal_path.name + s for s in ("-wal", "-shm", "-journal"))} \
        if journal_path.parent.resolve() == root.resolve() else set()
    entries = []
    for e in sorted(os.scandir(root), key=lambda e: e.name):
        if e.name in own:
            continue
        if e.is_dir():
            why = "not sent: a sub-folder (only the files directly in the folder are uploaded)"
        elif e.name.startswith("."):
            why = "not sent: a hidden file (its name starts with a dot)"
        elif not e.is_file():
            why = "not sent: not a regular file"
        else:
            why = None
        entries.append(_Entry(Path(e.path), why))
    return entries


async def upload_folder(client: "AsyncClient", folder: "str | os.PathLike[str]", folder_id: Any,
                        concurrency: int = 4, dry_run: bool = False,
                        journal: "str | os.PathLike[str] | None" = None, progress: bool = True) -> ToolkitFrame:
    """Upload every file of ``folder`` to Mediaflow folder ``folder_id``; one row per directory entry.

    Parameters
    ----------
    folder : the local folder; its files are uploaded (not those of sub-folders).
    folder_id : the Mediaflow folder id (may be negative).
    concurrency : files in flight at once (a whole number ≥ 1).
    dry_run : send nothing (no request at all) and write nothing; rows say what would be sent.
    journal : the journal file (default ``<folder>/.mediaflow-upload.sqlite``).

    Returns
    -------
    DataFrame ``file, folder_id, id, filename, filesize, outcome, http_status, message``; ``df.summary``.

    Raises
    ------
    ValidationError for a missing folder, a bad folder id, a bad ``concurrency`` or an unusable journal.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError(f"concurrency must be a whole number of at least 1, not {concurrency!r}",
                              service=SERVICE, hint="Give concurrency=4, for example.")
    fid = _folder_id(folder_id)
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValidationError(f"no such folder: {redact(root.name)}", service=SERVICE,
                              hint="Give the local folder that holds the files to upload.")
    journal_path = Path(journal).expanduser() if journal else root / JOURNAL_NAME
    entries = _scan(root, journal_path)
    book = Journal(journal_path, readonly=dry_run, service=SERVICE)
    dest = client.destination(fid)
    run_id = book.start_run(SERVICE, dest, "file upload", len(entries))
    stop: dict[str, tuple[str, int | None, str]] = {}  # a refusal of the whole folder or of the credentials
    sendable = [e for e in entries if e.skip is None]
    if not dry_run and sendable:
        try:  # one token request up front: refused credentials give one answer, not one per file
            await client.check_credentials()
        except ToolkitError as exc:
            stop["all"] = _classify(exc)

    async def worker(e: _Entry) -> dict[str, Any]:
        if e.skip:
            return _row(e.name, fid, "skipped", message=e.skip)
        f = await asyncio.to_thread(_read, e.path)
        sha = hashlib.sha256(f.data).hexdigest()

        def row(outcome: str, message: str, **kw: Any) -> dict[str, Any]:
            return _row(e.name, fid, outcome, filename=f.name, filesize=f.size, message=message, **kw)

        def done_row(entry: Any, how: str = "") -> dict[str, Any]:
            when = str((entry or {}).get("updated") or "")[:10]
            remote = (entry or {}).get("remote_id")
            return row("already_uploaded", how or f"not sent again: this file was uploaded on {when} (see the "
                       "journal)", file_id=int(remote) if remote not in (None, "") else None)

        if dry_run:
            before = book.get(dest, e.name, sha)
            if before and before["state"] == "done":
                return done_row(before)
            why = "a new file" if before is None else "an earlier attempt did not finish"
            return row("would_upload", f"would be sent ({why}); dry run: nothing sent")
        if "all" in stop:
            outcome, status, message = stop["all"]
            return row(outcome, message, status=status)
        claim = book.claim(dest, e.name, sha, run_id=run_id, label=e.name)
        if claim.state == "busy":
            settled = await book.wait_settled(dest, e.name, sha)
            if settled is not None and settled["state"] == "done":
                return done_row(settled, "not sent again: another run on the same journal uploaded it meanwhile")
            claim = book.claim(dest, e.name, sha, run_id=run_id, label=e.name)
            if claim.state == "busy":
                return row("deferred", "not sent: another run on the same journal is still sending this file; "
                                       "run the upload again later")
        if claim.state == "done":
            return done_row(claim.record)
        try:
            result = await send(client, fid, f, check_first=claim.needs_check)
        except BaseException as exc:
            if isinstance(exc, Exception):
                outcome, status, message = _classify(exc)
                transient = is_transient(exc)
                book.finish(dest, e.name, sha, "in_doubt" if transient or outcome == "failed" else "failed",
                            http_status=status, message=message, label=e.name)
                if outcome in ("forbidden", "not_found"):
                    stop["folder"] = (outcome, status, message)
                if transient:
                    raise
                return row(outcome, message, status=status)
            book.finish(dest, e.name, sha, "in_doubt", message="interrupted", label=e.name)
            raise
        book.finish(dest, e.name, sha, "done", http_status=result["http_status"], message=result["message"],
                    remote_id=str(result["id"]) if result["id"] is not None else None, label=e.name)
        return result

    async def guarded(e: _Entry) -> dict[str, Any]:
        if e.skip is None and not dry_run and "folder" in stop and "all" not in stop:
            outcome, status, message = stop["folder"]
            return _row(e.name, fid, outcome, filename=e.name, filesize=e.path.stat().st_size, status=status,
                        message=message)
        return await worker(e)

    def on_error(e: _Entry, exc: BaseException) -> dict[str, Any]:
        outcome, status, message = _classify(exc)
        return _row(e.name, fid, outcome, filename=e.name, status=status, message=message)

    def on_deferred(e: _Entry) -> dict[str, Any]:
        if e.skip:
            return _row(e.name, fid, "skipped", message=e.skip)
        return _row(e.name, fid, "deferred", filename=e.name,
                    message="not sent: Mediaflow failed repeatedly, so the rest was stopped; run the upload "
                            "again later (nothing is sent twice)")

    try:
        # grow the pools only: a pool already larger than ``concurrency`` serves it as it is, and resizing
        # would close its warm connections (ensure_pool closes a pool of any other size)
        if not dry_run and concurrency > min(getattr(client.http, "max_connections", 0),
                                             getattr(client.transfer, "max_connections", 0)):
            await client.ensure_pool(concurrency)
        outcome = await run_bulk(entries, guarded, service=SERVICE,
                                 desc="file upload (dry run)" if dry_run else "file upload",
                                 concurrency=concurrency, on_error=on_error, on_deferred=on_deferred,
                                 progress=progress, summary_labels=LABELS)
        book.end_run(run_id, outcome.counts, outcome.summary, outcome.rows)
    finally:
        book.close()
    return _frame(outcome.rows, outcome.summary)
