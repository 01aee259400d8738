"""Uploading to Mediaflow: one file (``upload``) or a whole folder (``upload_folder``), exactly once.

The two steps of the contract: ``POST file`` ``{"filename", "filesize", "toFolder"}`` answers a signed
upload URL (valid ``expiresIn`` seconds); a ``PUT`` of the raw bytes to that URL, with ``Content-Length``
equal to ``filesize`` and **no** ``Authorization`` header, stores the file (``201 [file]``).

Every upload runs on the toolkit's one write protocol (:class:`toolkit.core.writes.WriteRun`: claim in the
journal, send, settle, finish). What is Mediaflow's own is **send** (the two steps and their repeats, below)
and **recognise**: whether the folder already holds this very file — same file name, same size, and the
same MD5 when Mediaflow gives a 32-hex-digit ``checksum`` (:func:`find_stored`). A look that fails (an
error, an answer that is not the folder's JSON list) is never taken as "not there".

The rules that keep every file stored exactly once, also when answers are lost:

* **The upload URL is a secret** (it is signed): registered with the redactor the moment it arrives, never
  logged, shown, put in a row, a journal or an error message.
* **A PUT is repeated to the same upload URL** while it is valid (a 503/429 — after ``Retry-After`` —, a
  500/502/504, a dropped connection): a repeated PUT to one URL keeps the same file, so this is safe.
* **A second upload URL is asked for only when the first one is of no more use**: it expired
  (``403 "Upload URL has expired"``). If an earlier PUT may have been stored (its answer was lost or was a
  5xx), the folder is looked at first: a file found there is the upload, and nothing is sent again.
* **``POST file`` itself stores nothing** (the file exists only after a PUT), but it is not idempotent:
  a 429 or 503 (Mediaflow did not take it) is asked again after ``Retry-After``; a lost answer or a
  500/502/504 is asked again only when the folder does not already hold the file — otherwise that file is
  reported and nothing more is sent.
* **When the repeats give up**, a file one of whose PUTs may have been stored is looked for in the folder
  once more (by the protocol): found, the row is ``uploaded``; not there, ``failed``; the look failing too,
  ``in_doubt`` ("may have been stored; a re-run checks before sending") — never "not uploaded" for a file
  Mediaflow may hold. Only when every PUT was surely refused (429/503) or never left is the row ``failed``
  without a look.
* **A forbidden folder** (``403`` on ``POST file``) is a ``forbidden`` row with Mediaflow's own message,
  and nothing is sent; in ``upload_folder`` the other files of the run get the same row without asking
  again.

``upload_folder`` reads the folder with the core folder scanner (:mod:`toolkit.core.folders`): **one row
per directory entry**, sorted by name. Only regular files directly in the folder are read and sent; every
other entry is a row whose outcome is its kind, with the plain reason: ``hidden`` (the name starts with a
dot), ``folder`` (sub-folders are not searched), ``link`` (a symbolic link is never followed, wherever it
points: nothing outside the folder is ever read), ``not_a_file`` (a device, a pipe, a socket). A file
replaced by a link between the scan and the read is refused, not read (a ``not_a_file`` row). Only the
toolkit's own journal files get no row.

It is resumable with the core journal (:mod:`toolkit.core.journal`), by default
``<folder>/.mediaflow-upload.sqlite``: destination = service + base URL + folder id, item = the file name,
hash = SHA-256 of the bytes. A re-run sends nothing for files already stored (``already_uploaded``), sends
a changed file again, and looks in the folder first for a file an interrupted or killed run may have
stored. ``dry_run=True`` sends no request at all and writes nothing.

Outcomes: ``uploaded``, ``already_uploaded``, ``would_upload`` (dry run), ``in_doubt`` (may have been
stored: run again, the re-run looks before sending), ``hidden``, ``folder``, ``link``, ``not_a_file``
(entries that are not sent), ``forbidden`` (403), ``not_found`` (404: no such folder), ``rejected`` (400),
``unauthorized`` (credentials refused), ``failed`` (not stored: no answer or a service error after the
retries: run again, nothing is sent twice), ``deferred`` (not tried: Mediaflow failed repeatedly).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from ..core import folders
from ..core.bulk import ItemFailed, check_concurrency, failure, pool_size, run_bulk
from ..core.errors import (MAYBE_DELIVERED, UNSENT, BadRequest, Forbidden, NotFound, ToolkitError, TransportError,
                           Unauthorized, ValidationError, may_have_arrived)
from ..core.frames import ToolkitFrame, ToolkitSeries, frame, series
from ..core.http import json_or_none, parse_error_body, parse_retry_after
from ..core.redact import SECRET_KEYS, get_logger, redact, register_secret
from ..core.writes import ALREADY, BUSY, FAILED as SETTLED_FAILED, FOUND, IN_DOUBT, SENT, Settled, Stored, WriteRun
from ..core.writes import in_doubt_message
from .assets import array_of, int_id
from .shapes import as_int

if TYPE_CHECKING:
    from .interface import UploadClient

__all__ = ["UPLOAD_SCHEMA", "JOURNAL_NAME", "LABELS", "EXIT_CODES", "upload", "upload_folder", "exit_code",
           "find_stored", "send"]

log = get_logger("toolkit.mediaflow.uploads")

SERVICE = "mediaflow"
#: the item, its outcome and message first; ``bytes`` is the size sent (Mediaflow's ``filesize``)
UPLOAD_SCHEMA = {"file": "string", "outcome": "string", "message": "string", "id": "Int64", "folder_id": "Int64",
                 "filename": "string", "bytes": "Int64", "http_status": "Int64"}
MASKED = {"file": "text", "filename": "text"}
JOURNAL_NAME = ".mediaflow-upload.sqlite"
#: the entries of a folder that are never read (core folder scanner kinds), each its own outcome
NOT_SENT = ("hidden", "folder", "link", "not_a_file")
LABELS = ("uploaded", "already_uploaded", "would_upload", "in_doubt", *NOT_SENT, "forbidden", "not_found",
          "rejected", "unauthorized", "failed", "deferred")
FAILED = {"in_doubt", "forbidden", "not_found", "rejected", "unauthorized", "failed", "deferred"}
#: the command line's exit codes
EXIT_CODES = {"ok": 0, "failed": 1, "not_sent": 2}
EXPIRED_TEXT = "upload url has expired"
#: how many times one file may ask for a new upload URL after the previous one expired
MAX_RENEWALS = 3
#: attempts of one PUT to one upload URL, and of one POST file
PUT_ATTEMPTS = 8
POST_ATTEMPTS = 6

FORBIDDEN_HINT = ("choose a folder the integration may upload to, or ask the Mediaflow administrator for the "
                  "right to upload to this one")
RETRY_HINT = "Mediaflow is failing or unreachable: run the upload again later (nothing is sent twice)."


class _Stop(ToolkitError):
    """An answer that ends one file's upload with a row (not a transient failure; nothing was stored)."""

    def __init__(self, outcome: str, status: int | None, message: str) -> None:
        super().__init__(message, service=SERVICE, status=status)
        self.outcome = outcome


class _Transient(TransportError):
    """Mediaflow did not answer usefully after every retry; the bulk runner counts it as transient.
    ``delivery`` says whether the file may have been stored on the way (:data:`MAYBE_DELIVERED`: a PUT's
    answer was lost or was a 500/502/504, so the protocol looks in the folder) or surely not (:data:`UNSENT`:
    every PUT was refused with 429/503 or never left, or no upload URL was had)."""


def _row(file: str | None, folder_id: int | None, outcome: str, *, file_id: Any = None, filename: str | None = None,
         filesize: int | None = None, status: int | None = None, message: str = "") -> dict[str, Any]:
    return {"file": file, "outcome": outcome, "message": redact(message), "id": file_id, "folder_id": folder_id,
            "filename": filename, "bytes": filesize, "http_status": status}


def _frame(rows: list[dict[str, Any]], summary: str | None = None) -> ToolkitFrame:
    return frame(rows, UPLOAD_SCHEMA, masked=MASKED, summary=summary, kind="assets", service=SERVICE)


def _series(row: dict[str, Any]) -> ToolkitSeries:
    return series(row, UPLOAD_SCHEMA, masked=MASKED, kind="assets", service=SERVICE)


async def _wait(client: "UploadClient", method: str, url: str, attempt: int, retry_after: float | None,
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


def _classify(exc: BaseException | None) -> tuple[str, int | None, str]:
    """(outcome, http status, plain message) of an exception that ends a file's upload."""
    if isinstance(exc, _Stop):
        return exc.outcome, exc.status, exc.message
    if exc is None:
        return "failed", None, "not uploaded: the upload ended without an answer"
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

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


async def find_stored(client: "UploadClient", folder_id: int, f: _File) -> int | None:
    """The id of a file in the folder with this name and size (and checksum, when Mediaflow gives a
    32-hex-digit one), or None. Used only when an earlier request may have stored the file. An answer that
    is not the folder's list raises (never a guess that sends again)."""
    response = await client.http.request("GET", f"folder/{folder_id}/files",
                                         params={"type": "any", "fields": "id,filename,filesize,checksum"},
                                         what="look in the folder for the file")
    md5 = f.md5
    for item in array_of(response):  # sizes and ids as numbers or as their text (shapes)
        if not isinstance(item, dict) or item.get("filename") != f.name or as_int(item.get("filesize")) != f.size:
            continue
        checksum = str(item.get("checksum") or "").lower()
        if len(checksum) == 32 and all(c in "0123456789abcdef" for c in checksum) and checksum != md5:
            continue
        found = as_int(item.get("id"))
        if found is not None:
            return found
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


@dataclass
class _Attempts:
    """What one file's upload has done so far: whether any PUT may have stored it."""

    maybe_stored: bool = False


async def _request_url(client: "UploadClient", folder_id: int, f: _File) -> tuple[str | None, int | None]:
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
                     delivery=UNSENT, hint=RETRY_HINT)


async def _put(client: "UploadClient", url: str, f: _File, tried: _Attempts) -> tuple[str, Any]:
    """PUT the bytes to one upload URL, repeating it while useful → ("stored", file dict) or
    ("expired", None), or raises; ``tried.maybe_stored`` is set when a PUT's answer was lost or a 5xx."""
    last = "no answer"
    for attempt in range(1, PUT_ATTEMPTS + 1):
        retry_after = None
        try:
            response = await client.transfer.request(
                "PUT", url, content=f.data, authenticate=False, headers={"Content-Type": "application/octet-stream"},
                allow=(400, 403, 404, 408, 409, 410, 413, 429, 500, 502, 503, 504), what="send the file")
        except TransportError as exc:
            if exc.delivery == MAYBE_DELIVERED:
                tried.maybe_stored = True  # the bytes may have arrived; a repeat to this URL is safe
            last = exc.message
        else:
            status = response.status_code
            if status < 300:
                answer = json_or_none(response)
                item = answer[0] if isinstance(answer, list) and answer else answer
                return "stored", item if isinstance(item, dict) else {}
            detail = parse_error_body(response)
            if status == 403 and EXPIRED_TEXT in detail.lower():
                return "expired", None
            if status in (400, 409, 413):
                raise _Stop("rejected", status, f"not uploaded: Mediaflow rejected the bytes: {detail}")
            if status in (403, 404, 410):
                return "expired", None  # the URL is of no more use: ask for a new one
            last = f"HTTP {status}: {detail}"
            if status in (429, 503):
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            else:
                tried.maybe_stored = True
        if attempt < PUT_ATTEMPTS:
            await _wait(client, "PUT", url, attempt, retry_after, last)
    raise _Transient(f"could not send the file after {PUT_ATTEMPTS} attempts ({last})", service=SERVICE,
                     delivery=MAYBE_DELIVERED if tried.maybe_stored else UNSENT, hint=RETRY_HINT)


def _found_row(f: _File, folder_id: int, file_id: Any, outcome: str, message: str) -> dict[str, Any]:
    return _row(f.name, folder_id, outcome, file_id=file_id, filename=f.name, filesize=f.size, message=message)


async def _send(client: "UploadClient", folder_id: int, f: _File, tried: _Attempts) -> dict[str, Any]:
    renewals = 0
    while True:
        url, found = await _request_url(client, folder_id, f)
        if url is None:
            return _found_row(f, folder_id, found, "already_uploaded", "not sent again: the folder already holds a "
                              "file with this name, size and checksum")
        state, item = await _put(client, url, f, tried)
        del url
        if state == "stored":
            return _row(f.name, folder_id, "uploaded", file_id=item.get("id"), filename=item.get("filename", f.name),
                        filesize=item.get("filesize", f.size), status=201,
                        message="uploaded: Mediaflow stored the file (201); it is processed a moment later")
        if tried.maybe_stored:
            found = await find_stored(client, folder_id, f)
            if found is not None:
                return _found_row(f, folder_id, found, "uploaded", "uploaded: the answer was lost, and the folder "
                                                                   "holds the file")
        renewals += 1
        if renewals > MAX_RENEWALS:
            raise _Transient(f"the upload URL expired {renewals} times before the file was sent", service=SERVICE,
                             delivery=UNSENT,
                             hint="The connection is too slow for the URL's lifetime: lower the concurrency.")
        log.debug("Mediaflow: the upload URL expired before the file was sent; asking for a new one")


async def send(client: "UploadClient", folder_id: int, f: _File) -> dict[str, Any]:
    """Store one file in the folder (the two steps and their repeats; see the module docstring): the row,
    or raises. A failure after a PUT that may have stored the file is raised as one that *may have arrived*
    (:func:`toolkit.core.errors.may_have_arrived`), so the write protocol looks in the folder before the row
    says anything."""
    tried = _Attempts()
    try:
        return await _send(client, folder_id, f, tried)
    except ToolkitError as exc:
        if tried.maybe_stored and not may_have_arrived(exc):
            raise _Transient(f"{exc.message} (an earlier attempt may have stored the file)", service=SERVICE,
                             delivery=MAYBE_DELIVERED, status=exc.status, hint=RETRY_HINT) from exc
        raise


def _recogniser(client: "UploadClient", folder_id: int, f: _File) -> Callable[[Any], Awaitable[Stored | None]]:
    """The protocol's ``recognise``: the file in the folder (:func:`find_stored`), or None; a failing look
    raises (the protocol then says ``in_doubt``, never "not there")."""
    async def recognise(entry: Mapping[str, Any]) -> Stored | None:
        found = await find_stored(client, folder_id, f)
        if found is None:
            return None
        return Stored(value=found, remote_id=str(found), message="found in the folder (name, size and checksum)")
    return recognise


def _as_id(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def _already_row(name: str, folder_id: int, f: _File, entry: Mapping[str, Any] | None, how: str = "") -> dict:
    when = str((entry or {}).get("updated") or "")[:10]
    return _row(name, folder_id, "already_uploaded", file_id=_as_id((entry or {}).get("remote_id")),
                filename=f.name, filesize=f.size,
                message=how or f"not sent again: this file was uploaded on {when} (see the journal)")


def _settled_row(settled: Settled, name: str, folder_id: int, f: _File) -> dict[str, Any]:
    """The result row of one file from how the write protocol settled it."""
    def row(outcome: str, message: str, **kw: Any) -> dict[str, Any]:
        return _row(name, folder_id, outcome, filename=f.name, filesize=f.size, message=message, **kw)

    state, stored = settled.state, settled.stored
    if state == SENT and stored is not None:
        return dict(stored.value, file=name)
    if state == ALREADY:
        return _already_row(name, folder_id, f, settled.entry, "not sent again: another run on the same journal "
                            "uploaded it meanwhile" if settled.by_other_run else "")
    if state == FOUND and stored is not None:
        if settled.checked:  # an error after which the folder was looked at: the file is there
            return row("uploaded", "uploaded: the answer was lost, and the folder holds the file", file_id=stored.value)
        return row("already_uploaded", "not sent again: an earlier run sent it and the folder already holds it",
                   file_id=stored.value)
    if state == BUSY:
        return row("deferred", "not sent: another run on the same journal is still sending this file; run the "
                               "upload again later")
    if state == IN_DOUBT:
        return row("in_doubt", in_doubt_message(SERVICE, settled.error), status=getattr(settled.error, "status", None))
    outcome, status, message = _classify(settled.error)
    if settled.checked:
        message += " (a look in the folder afterwards found no such file)"
    return row(outcome, message, status=status)


async def _write(run: WriteRun, client: "UploadClient", folder_id: int, name: str, f: _File
                 ) -> tuple[dict[str, Any], Settled]:
    """One file through the write protocol → (its row, how it settled)."""
    async def sent() -> Stored:
        row = await send(client, folder_id, f)
        return Stored(value=row, http_status=row["http_status"], remote_id=None if row["id"] is None else
                      str(row["id"]), message=row["message"])

    settled = await run.write(name, f.sha256, sent, label=name, recognise=_recogniser(client, folder_id, f))
    return _settled_row(settled, name, folder_id, f), settled


def _folder_id(value: Any) -> int:
    return int_id(value, "folder id")


async def upload(client: "UploadClient", path: "str | os.PathLike[str]", folder_id: Any) -> ToolkitSeries:
    """One file → one row (see the module docstring); the write protocol with a journal of this call only."""
    fid = _folder_id(folder_id)
    if not isinstance(path, (str, os.PathLike)):
        raise ValidationError(f"upload() takes the path of one file, not {type(path).__name__}", service=SERVICE,
                              hint="Give the path of a file to upload, e.g. mf.upload('photo.jpg', folder_id).")
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValidationError(f"{redact(p.name)} is a folder, not a file", service=SERVICE,
                              hint="Upload a folder's files with mf.upload_folder(folder, folder_id).")
    if not p.is_file():
        raise ValidationError(f"no such file: {redact(p.name)}", service=SERVICE,
                              hint="Give the path of a file to upload.")
    f = _File(p.name, await asyncio.to_thread(p.read_bytes))
    with WriteRun(SERVICE, client.destination(fid), "file upload", journal=None, items=1) as run:
        row, _ = await _write(run, client, fid, p.name, f)
    return _series(row)


def exit_code(result: Any) -> int:
    """The command line's exit code: 0 all stored (or nothing to do), 1 some failed or are in doubt (run
    again), 2 some entries of the folder were not sent because of their kind (hidden, folder, link,
    not_a_file)."""
    outcomes = set(result["outcome"].dropna())
    if outcomes & FAILED:
        return EXIT_CODES["failed"]
    if outcomes & set(NOT_SENT):
        return EXIT_CODES["not_sent"]
    return EXIT_CODES["ok"]


class _FolderUpload:
    """The rows of one ``upload_folder`` run: one per directory entry."""

    def __init__(self, client: "UploadClient", folder_id: int, run: WriteRun) -> None:
        self.client, self.fid, self.run = client, folder_id, run
        #: a refusal of the credentials or of the folder: every later file gets this row without asking
        self.stop: tuple[str, int | None, str] | None = None

    async def check_credentials(self) -> None:
        """One token request up front: refused credentials give one answer, not one per file."""
        try:
            await self.client.check_credentials()
        except ToolkitError as exc:
            self.stop = _classify(exc)

    def kind_row(self, e: folders.Entry) -> dict[str, Any]:
        return _row(e.name, self.fid, e.kind, message=e.reason or "")

    async def row(self, e: folders.Entry) -> dict[str, Any]:
        """The worker of the bulk run."""
        if not e.readable:
            return self.kind_row(e)
        if self.stop is not None and not self.run.dry_run:
            outcome, status, message = self.stop
            return _row(e.name, self.fid, outcome, filename=e.name, filesize=e.size, status=status, message=message)
        try:
            f = _File(e.name, await asyncio.to_thread(folders.read, e))
        except (folders.UnreadableEntry, OSError) as exc:  # it changed since the scan: never read through a link
            return _row(e.name, self.fid, "not_a_file", filename=e.name, message=f"not sent: {exc}")
        if self.run.dry_run:
            return self.dry_row(e.name, f)
        row, settled = await _write(self.run, self.client, self.fid, e.name, f)
        if settled.state == SETTLED_FAILED and row["outcome"] in ("forbidden", "not_found"):
            self.stop = self.stop or (row["outcome"], row["http_status"], row["message"])
        if settled.transient:
            raise ItemFailed(row, transient=True)  # the circuit breaker counts it
        return row

    def dry_row(self, name: str, f: _File) -> dict[str, Any]:
        before = self.run.previous(name, f.sha256)
        if before and before["state"] == "done":
            return _already_row(name, self.fid, f, before)
        why = "a new file" if before is None else "an earlier attempt did not finish"
        return _row(name, self.fid, "would_upload", filename=f.name, filesize=f.size,
                    message=f"would be sent ({why}); dry run: nothing sent")

    def on_error(self, e: folders.Entry, exc: BaseException) -> dict[str, Any]:
        outcome, status, message = _classify(exc)
        return _row(e.name, self.fid, outcome, filename=e.name, status=status, message=message)

    def on_deferred(self, e: folders.Entry) -> dict[str, Any]:
        if not e.readable:
            return self.kind_row(e)
        return _row(e.name, self.fid, "deferred", filename=e.name,
                    message="not sent: Mediaflow failed repeatedly, so the rest was stopped; run the upload "
                            "again later (nothing is sent twice)")


async def _grow_pools(client: "UploadClient", concurrency: "int | str") -> None:
    """Grow the pools only: a pool already larger than ``concurrency`` serves it as it is, and resizing
    would close its warm connections (``ensure_pool`` closes a pool of any other size)."""
    if pool_size(concurrency) > min(client.http.max_connections, client.transfer.max_connections):
        await client.ensure_pool(concurrency)


async def upload_folder(client: "UploadClient", folder: "str | os.PathLike[str]", folder_id: Any,
                        concurrency: "int | str" = "auto", dry_run: bool = False,
                        journal: "str | os.PathLike[str] | None" = None, progress: bool = True) -> ToolkitFrame:
    """Upload every file of ``folder`` to Mediaflow folder ``folder_id``; one row per directory entry.

    Parameters
    ----------
    folder : the local folder; its regular files are uploaded (not those of sub-folders; links are never
        followed).
    folder_id : the Mediaflow folder id (may be negative).
    concurrency : files in flight at once: ``"auto"`` (the default: as many as Mediaflow takes, see
        :mod:`toolkit.core.limits`) or a whole number from 1 to 64.
    dry_run : send nothing (no request at all) and write nothing; rows say what would be sent.
    journal : the journal file (default ``<folder>/.mediaflow-upload.sqlite``).

    Returns
    -------
    DataFrame ``file, outcome, message, id, folder_id, filename, bytes, http_status``;
    ``df.summary``. Outcomes: see the module docstring.

    Raises
    ------
    ValidationError for a missing folder, a bad folder id, a bad ``concurrency`` or an unusable journal.
    """
    concurrency = check_concurrency(concurrency, SERVICE, default=4)
    fid = _folder_id(folder_id)
    root = Path(folder).expanduser()
    journal_path = Path(journal).expanduser() if journal else root / JOURNAL_NAME
    entries = folders.scan(root, own=folders.own_files(root, journal_path, JOURNAL_NAME), service=SERVICE)
    with WriteRun(SERVICE, client.destination(fid), "file upload", journal=journal_path, items=len(entries),
                  dry_run=dry_run) as run:
        job = _FolderUpload(client, fid, run)
        if not dry_run and any(e.readable for e in entries):
            await job.check_credentials()
            await _grow_pools(client, concurrency)
        outcome = await run_bulk(entries, job.row, service=SERVICE,
                                 desc="file upload (dry run)" if dry_run else "file upload",
                                 concurrency=concurrency, on_error=job.on_error, on_deferred=job.on_deferred,
                                 progress=progress, summary_labels=LABELS)
        run.end(outcome)
    return _frame(outcome.rows, outcome.summary)
