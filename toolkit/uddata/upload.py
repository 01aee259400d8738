"""Folder upload of ``<cpr>.jpg`` photos — the replacement for the vendor's ``image-uploader-1.0.0.jar``.

``await upload_folder(client, folder, concurrency=8, dry_run=False, journal=None)`` (or
``ud.upload_folder(folder)``) checks every file before anything is sent, then uploads the good ones
concurrently and returns **one row per file** (``file, cpr, outcome, http_status, message``).

Rows: **every entry** directly in ``folder`` becomes one row (sorted by name): files, sub-folders (not
searched: ``not_a_file``), broken links and other non-files (``not_a_file``), names starting with ``.``
such as ``.0101901234.jpg`` or ``..0101901234.jpg`` (``hidden``, not sent: rename them to upload them).
Only the journal's own files (``.uddata-upload.sqlite`` and its ``-wal``/``-shm``/``-journal``
companions, or those of the ``journal=`` file when it lies in the folder) get no row. A link to a file
counts as that file. A file is sent only when

* its name is ``<cpr>.jpg`` or ``<cpr>.jpeg`` in any case, ``DDMMYYSSSS`` or ``DDMMYY-SSSS``, and the CPR
  number is valid (a real date, not in the future; modulus 11 is not required);
* no other file in the folder is for the same CPR (all files of such a CPR are flagged ``duplicate``:
  keep the right one and run again);
* it is a real JPEG: not empty, at most 10 MB, opened by Pillow with only the JPEG format allowed,
  at most ``max_pixels`` pixels, and a reduced-size decode succeeds (this catches truncated files).

Outcomes: ``uploaded`` (201), ``already_uploaded`` (the journal says this exact photo was stored; not
sent again), ``would_upload`` (dry run), ``invalid_name``, ``invalid_image``, ``duplicate``,
``not_a_file`` (a folder, a broken link, a device), ``hidden`` (name starts with a dot),
``unknown_cpr`` (404), ``forbidden`` (403), ``unauthorized`` (401), ``rejected`` (400/413 from the
service), ``failed`` (no answer or a service error after the retries), ``deferred`` (not tried: the
service failed repeatedly, run again later).

Resumable: the core journal (:mod:`toolkit.core.journal`, SQLite in WAL mode), by default
``<folder>/.uddata-upload.sqlite``, keyed by destination (base URL, API version, institution), CPR and the
SHA-256 of the photo: uploading the same folder to another environment or institution sends it there.
Two runs on one journal (threads, or two kernels) never send a photo twice: each photo is claimed in the
journal before it is sent, and a run that finds a photo claimed waits for the other run's answer. A re-run skips photos already uploaded, sends a changed photo again, and
retries failures. A photo whose upload was interrupted (sent, answer not received) is first looked up on
the service and not sent again when the stored photo is the same. ``dry_run=True`` sends nothing and
writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.bulk import failure, is_transient, run_bulk
from ..core.errors import (BadRequest, Forbidden, NotFound, ToolkitError, Unauthorized,
                           ValidationError)
from ..core.frames import ToolkitFrame, ToolkitSeries, frame
from ..core.journal import Journal
from ..core.redact import get_logger, redact
from . import cpr as _cpr
from .audit import check_concurrency

if TYPE_CHECKING:
    from .interface import PhotoClient

__all__ = ["upload_folder", "put_one", "UPLOAD_SCHEMA", "MAX_BYTES", "JOURNAL_NAME", "check_image",
           "EXIT_CODES", "exit_code", "scan_folder"]

log = get_logger("toolkit.uddata.upload")

UPLOAD_SCHEMA = {"file": "string", "cpr": "string", "outcome": "string", "http_status": "Int64", "message": "string"}
MASKED = {"cpr": "cpr", "file": "text"}
MAX_BYTES = 10 * 1024 * 1024
JOURNAL_NAME = ".uddata-upload.sqlite"
NAME_RE = re.compile(r"^(\d{6})-?(\d{4})$")
JPEG_SUFFIXES = (".jpg", ".jpeg")
LABELS = ("uploaded", "already_uploaded", "would_upload", "invalid_name", "invalid_image", "duplicate",
          "not_a_file", "hidden", "unknown_cpr", "forbidden", "unauthorized", "rejected", "failed", "deferred")
INVALID = {"invalid_name", "invalid_image", "duplicate", "not_a_file", "hidden"}
JOURNAL_SUFFIXES = ("", "-wal", "-shm", "-journal")
FAILED = {"unknown_cpr", "forbidden", "unauthorized", "rejected", "failed", "deferred"}
#: the command line's exit codes
EXIT_CODES = {"ok": 0, "failed": 1, "invalid": 2}

MESSAGES = {
    201: "uploaded: Uddata+ stored the photo (201)",
    404: "not uploaded: Uddata+ has no person with this CPR number (404); check the number, or enrol the "
         "student first",
    401: "not uploaded: Uddata+ did not accept the credentials (401); check the client id and secret",
    403: "not uploaded: the credentials lack the right to upload pictures (403); ask Uddata+ support for it",
    400: "not uploaded: Uddata+ says the file is not a JPEG (400)",
    413: "not uploaded: the photo is larger than Uddata+ accepts (10 MB) (413)",
}


# -- local checks ----------------------------------------------------------------------------------------
def check_image(data: bytes, max_pixels: int = 40_000_000) -> str | None:
    """``None`` when ``data`` is a JPEG the service will accept, else the plain reason."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return "the file is empty"
    if len(data) > MAX_BYTES:
        return f"the file is {len(data) / 1024 / 1024:.1f} MB; Uddata+ accepts at most 10 MB"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["JPEG"])
    except Image.DecompressionBombError:
        return f"the picture has too many pixels (at most {max_pixels:,} allowed)"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return "not a JPEG picture (only JPEG files can be uploaded)"
    with img:
        width, height = img.size
        if width <= 0 or height <= 0:
            return "the JPEG has no size"
        if width * height > max_pixels:
            return f"the picture has too many pixels ({width}×{height}; at most {max_pixels:,} allowed)"
        try:
            img.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # decode at 1/8 size: cheap
            img.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return "the JPEG is damaged or truncated (it could not be decoded)"
    return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Candidate:
    """One file of the folder and what its name says."""

    path: Path
    cpr: str | None = None
    outcome: str | None = None  # set when the file is refused by name or as a duplicate
    message: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def _parse_name(path: Path) -> Candidate:
    suffix = path.suffix.lower()
    if suffix not in JPEG_SUFFIXES:
        return Candidate(path, None, "invalid_name", "not sent: only <cpr>.jpg / <cpr>.jpeg files are uploaded")
    stem = path.stem.strip()
    if not NAME_RE.match(stem):
        return Candidate(path, None, "invalid_name",
                         "not sent: the name must be the CPR number, as DDMMYYSSSS.jpg or DDMMYY-SSSS.jpg")
    check = _cpr.validate(stem)
    if not check.valid:
        return Candidate(path, None, "invalid_name", f"not sent: the name is {check.error}")
    return Candidate(path, check.cpr)


def _entry_candidate(entry: "os.DirEntry[str]") -> Candidate:
    """The candidate of one directory entry: refused at once unless it is a visible file."""
    path = Path(entry.path)
    if entry.name.startswith("."):
        return Candidate(path, None, "hidden", "not sent: a hidden file (its name starts with a dot); rename it "
                                               "to <cpr>.jpg to upload it")
    try:
        is_dir = entry.is_dir()  # follows links: a link to a folder is a folder
        is_file = entry.is_file()
    except OSError:
        is_dir = is_file = False
    if is_dir:
        return Candidate(path, None, "not_a_file", "not sent: a folder (sub-folders are not searched; move the "
                                                   "photos into this folder)")
    if not is_file:
        if entry.is_symlink():
            return Candidate(path, None, "not_a_file", "not sent: a broken link (the file it points to does not "
                                                       "exist)")
        return Candidate(path, None, "not_a_file", "not sent: not a regular file")
    return _parse_name(path)


def scan_folder(folder: Path, journal: "Path | None" = None) -> list[Candidate]:
    """One candidate per entry of ``folder`` sorted by name (see the module docstring), duplicates of one
    CPR flagged. The journal's own files (``journal``, default ``folder/.uddata-upload.sqlite``) are left out."""
    folder = Path(folder)
    skip = {JOURNAL_NAME + s for s in JOURNAL_SUFFIXES}
    if journal is not None:
        journal = Path(journal)
        try:
            if journal.parent.resolve() == folder.resolve():
                skip |= {journal.name + s for s in JOURNAL_SUFFIXES}
        except OSError:
            pass
    entries = sorted((e for e in os.scandir(folder) if e.name not in skip), key=lambda e: e.name)
    candidates = [_entry_candidate(e) for e in entries]
    by_cpr: dict[str, list[Candidate]] = {}
    for c in candidates:
        if c.cpr:
            by_cpr.setdefault(c.cpr, []).append(c)
    for group in by_cpr.values():
        if len(group) > 1:
            for c in group:
                c.outcome = "duplicate"
                c.message = (f"not sent: {len(group)} files in the folder are for the same CPR number; "
                             "keep the right one and run again")
    return candidates


# -- sending -----------------------------------------------------------------------------------------------
def _row(file: str | None, cpr: str | None, outcome: str, status: int | None, message: str) -> dict[str, Any]:
    return {"file": file, "cpr": cpr, "outcome": outcome, "http_status": status, "message": redact(message)}


#: the failures of one upload (core ``failure`` rules): outcome and plain message per error
FAILURES = [(NotFound, "unknown_cpr", MESSAGES[404]), (Forbidden, "forbidden", MESSAGES[403]),
            (Unauthorized, "unauthorized", MESSAGES[401]), (413, "rejected", MESSAGES[413]),
            (BadRequest, "rejected", MESSAGES[400] + ": {message}")]


def _classify(exc: BaseException) -> tuple[str, int | None, str]:
    """(outcome, http status, plain message) of a failed upload."""
    return failure(exc, FAILURES, verb="uploaded")


async def _put(client: "PhotoClient", cpr: str, data: bytes) -> int:
    """PUT one photo (the one retry policy of HttpClient applies); returns the status or raises."""
    response = await client.http.request(
        "PUT", client.path("billeder"), params={"cpr": cpr},
        body=lambda: {"files": {"billede": (f"{cpr}.jpg", data, "image/jpeg")}},
        what="upload the photo", hints={403: MESSAGES[403], 404: MESSAGES[404]})
    return response.status_code


async def put_one(client: "PhotoClient", cpr: Any, path_or_bytes: Any) -> ToolkitSeries:
    """Upload one photo; a result row for every answer of the service. Our own checks (an invalid CPR,
    a file that is not an acceptable JPEG) raise :class:`toolkit.ValidationError` before sending."""
    number = _cpr.normalize(cpr)
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data, file = bytes(path_or_bytes), None
    else:
        path = Path(path_or_bytes).expanduser()
        if not path.is_file():
            raise ValidationError(f"no such file: {redact(path.name)}", service="uddata",
                                  hint="Give the path of a JPEG file, or its bytes.")
        if path.stat().st_size > MAX_BYTES:
            raise ValidationError("the file is larger than 10 MB", service="uddata",
                                  hint="Uddata+ accepts photos up to 10 MB: make it smaller.")
        data, file = await asyncio.to_thread(path.read_bytes), path.name
    problem = await asyncio.to_thread(check_image, data, client.max_pixels)
    if problem:
        raise ValidationError(f"the photo was not sent: {problem}", service="uddata",
                              hint="Give a JPEG photo of at most 10 MB.")
    try:
        status = await _put(client, number, data)
        row = _row(file, number, "uploaded", status, MESSAGES[201] if status == 201 else f"uploaded ({status})")
    except Exception as exc:  # noqa: BLE001 - every answer is a row
        row = _row(file, number, *_classify(exc))
    return _series(row)


def _series(row: dict[str, Any]) -> ToolkitSeries:
    df = frame([row], UPLOAD_SCHEMA, masked=MASKED)
    df.attrs.update(kind="assets", service="uddata")
    out = df.iloc[0]
    out.attrs.update(df.attrs)
    return out


def exit_code(result: Any) -> int:
    """The command line's exit code for an upload result: 0 all uploaded, 1 some failed, 2 some invalid."""
    outcomes = set(result["outcome"].dropna())
    if outcomes & FAILED:
        return EXIT_CODES["failed"]
    if outcomes & INVALID:
        return EXIT_CODES["invalid"]
    return EXIT_CODES["ok"]


async def upload_folder(client: "PhotoClient", folder: "str | os.PathLike[str]", concurrency: int = 8,
                        dry_run: bool = False, journal: "str | os.PathLike[str] | None" = None,
                        progress: bool = True) -> ToolkitFrame:
    """Check and upload every ``<cpr>.jpg`` of ``folder``; one row per entry (see the module docstring).

    Raises :class:`toolkit.ValidationError` when ``folder`` is not a folder or ``concurrency`` is not an
    int ≥ 1 (before anything is read or sent)."""
    concurrency = check_concurrency(concurrency)
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValidationError(f"no such folder: {root.name}", service="uddata",
                              hint="Give the folder that holds the <cpr>.jpg photos.")
    journal_path = Path(journal).expanduser() if journal else root / JOURNAL_NAME
    candidates = scan_folder(root, journal=journal_path)
    book = Journal(journal_path, readonly=dry_run, service="uddata")
    dest = client.destination
    run_id = book.start_run("uddata", dest, "photo upload", len(candidates))
    token_problem: tuple[str, int | None, str] | None = None
    if not dry_run and any(c.outcome is None for c in candidates):
        try:  # one token fetch up front: bad credentials give one clear answer, not one per file
            await client.check_credentials()
        except ToolkitError as exc:
            token_problem = _classify(exc)

    def done_row(c: Candidate, cpr: str, entry: Any, how: str = "") -> dict[str, Any]:
        when = str((entry or {}).get("updated") or "")[:10]
        return _row(c.name, cpr, "already_uploaded", None,
                    how or f"not sent again: this photo was uploaded on {when} (see the journal)")

    async def worker(c: Candidate) -> dict[str, Any]:
        if c.outcome:
            return _row(c.name, c.cpr, c.outcome, None, c.message or "")
        assert c.cpr is not None
        cpr = c.cpr
        size = c.path.stat().st_size
        if size > MAX_BYTES:
            return _row(c.name, cpr, "invalid_image", None,
                        f"not sent: the file is {size / 1024 / 1024:.1f} MB; Uddata+ accepts at most 10 MB")
        data = await asyncio.to_thread(c.path.read_bytes)
        problem = await asyncio.to_thread(check_image, data, client.max_pixels)
        if problem:
            return _row(c.name, cpr, "invalid_image", None, f"not sent: {problem}")
        sha = _sha256(data)
        if dry_run:
            before = book.get(dest, cpr, sha)
            if before and before["state"] == "done":
                return done_row(c, cpr, before)
            why = "a new photo" if before is None else "an earlier attempt did not finish"
            return _row(c.name, cpr, "would_upload", None, f"would be sent ({why}); dry run: nothing sent")
        if token_problem is not None:
            outcome, status, message = token_problem
            return _row(c.name, cpr, outcome, status, message.replace("not uploaded", "not sent", 1))
        claim = book.claim(dest, cpr, sha, run_id=run_id, label=c.name)
        if claim.state == "busy":  # another run (thread or kernel) is sending this very photo: wait for it
            settled = await book.wait_settled(dest, cpr, sha)
            if settled is not None and settled["state"] == "done":
                return done_row(c, cpr, settled, "not sent again: another run on the same journal uploaded "
                                                 "this photo at the same time")
            claim = book.claim(dest, cpr, sha, run_id=run_id, label=c.name)
            if claim.state == "busy":
                return _row(c.name, cpr, "deferred", None, "not sent: another run on the same journal is still "
                            "sending this photo; run the upload again later")
        if claim.state == "done":
            return done_row(c, cpr, claim.record)
        try:
            if claim.needs_check:
                # an earlier run sent it without getting the answer (or the journal is of an older version
                # and names no destination): look before sending it again
                try:
                    stored = await client.get_image_bytes(cpr)
                except ToolkitError:
                    stored = None
                if stored is not None and _sha256(stored) == sha:
                    book.finish(dest, cpr, sha, "done", http_status=200, message="found on the service", label=c.name)
                    return _row(c.name, cpr, "already_uploaded", 200,
                                "not sent again: an earlier run sent it and Uddata+ already holds this photo")
            status = await _put(client, cpr, data)
        except Exception as exc:
            outcome, status_, message = _classify(exc)
            book.finish(dest, cpr, sha, "in_doubt" if outcome == "failed" else "failed", http_status=status_,
                        message=message, label=c.name)
            if is_transient(exc):
                raise  # the bulk runner counts it (circuit breaker) and makes the row with on_error
            return _row(c.name, cpr, outcome, status_, message)
        except BaseException:  # cancelled (Ctrl-C): it may have been sent
            book.finish(dest, cpr, sha, "in_doubt", message="interrupted", label=c.name)
            raise
        book.finish(dest, cpr, sha, "done", http_status=status, message=MESSAGES.get(201), label=c.name)
        return _row(c.name, cpr, "uploaded", status, MESSAGES[201] if status == 201 else f"uploaded ({status})")

    def on_error(c: Candidate, exc: BaseException) -> dict[str, Any]:
        return _row(c.name, c.cpr, *_classify(exc))

    def on_deferred(c: Candidate) -> dict[str, Any]:
        if c.outcome:
            return _row(c.name, c.cpr, c.outcome, None, c.message or "")
        return _row(c.name, c.cpr, "deferred", None, "not sent: Uddata+ failed repeatedly, so the rest was "
                    "stopped; run the upload again later (nothing is sent twice)")

    try:
        if not dry_run:
            await client.http.ensure_pool(concurrency)
        outcome = await run_bulk(candidates, worker, service="uddata",
                                 desc="photo upload (dry run)" if dry_run else "photo upload",
                                 concurrency=concurrency, on_error=on_error, on_deferred=on_deferred,
                                 progress=progress, summary_labels=LABELS)
        book.end_run(run_id, outcome.counts, outcome.summary, outcome.rows)
    finally:
        book.close()
    df = frame(outcome.rows, UPLOAD_SCHEMA, masked=MASKED, summary=outcome.summary)
    df.attrs.update(kind="assets", service="uddata")
    return df
