"""Folder upload of ``<cpr>.jpg`` photos — the replacement for the vendor's ``image-uploader-1.0.0.jar``.

``await upload_folder(client, folder, concurrency="auto", dry_run=False, journal=None)`` (or
``ud.upload_folder(folder)``) checks every file before anything is sent, then uploads the good ones
concurrently and returns **one row per file** (``file, cpr, outcome, message, http_status``).

Rows: **every entry** directly in ``folder`` becomes one row (sorted by name), as the core folder scanner
(:mod:`toolkit.core.folders`) sees it: a sub-folder (``folder``, not searched), a symbolic link (``link``:
never followed, whether it points to a photo, outside the folder or nowhere — nothing outside the folder
is ever read), a device or pipe (``not_a_file``), a name starting with ``.`` such as ``.0101901234.jpg``
(``hidden``: rename it to upload it). Only the journal's own files (``.uddata-upload.sqlite`` and its
``-wal``/``-shm``/``-journal`` companions, or those of the ``journal=`` file when it lies in the folder)
get no row. A file is sent only when

* its name is ``<cpr>.jpg`` or ``<cpr>.jpeg`` in any case, ``DDMMYYSSSS`` or ``DDMMYY-SSSS``, and the CPR
  number is valid (a real date, not in the future; modulus 11 is not required);
* no other file in the folder is for the same CPR (all files of such a CPR are flagged ``duplicate``:
  keep the right one and run again);
* it is a real JPEG: not empty, at most 10 MB, opened by Pillow with only the JPEG format allowed,
  at most ``max_pixels`` pixels, and a reduced-size decode succeeds (this catches truncated files).

Outcomes: ``uploaded`` (201), ``already_uploaded`` (the journal says this exact photo was stored; not
sent again), ``would_upload`` (dry run), ``invalid_name``, ``invalid_image``, ``duplicate``, ``hidden``,
``folder``, ``link``, ``not_a_file``, ``unknown_cpr`` (404), ``forbidden`` (403), ``unauthorized`` (401),
``rejected`` (400/413 from the service), ``failed`` (not stored: no answer or a service error after the
retries), ``in_doubt`` (the answer was lost and Uddata+ could not be asked whether it stored the photo: a
re-run looks before sending), ``deferred`` (not tried: the service failed repeatedly, run again later).

Exactly once, on the core write protocol (:mod:`toolkit.core.writes`) with its journal, by default
``<folder>/.uddata-upload.sqlite``, keyed by destination (base URL, API version, institution), CPR and the
SHA-256 of the photo: uploading the same folder to another environment or institution sends it there.
Two runs on one journal (threads, or two kernels) never send a photo twice. A re-run skips photos
already uploaded, sends a changed photo again, and retries failures. A photo an earlier run may have
stored — its answer was lost, or the process died between Uddata+'s answer and the journal's record — is
first looked up on the service (``GET billeder/{cpr}``, same bytes) and not sent again when it is there;
after a lost answer in this run the same look decides whether the row says ``uploaded`` or ``failed``.
``dry_run=True`` sends nothing and writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.bulk import ItemFailed, check_concurrency, failure, run_bulk
from ..core.errors import (BadRequest, Forbidden, NotFound, ToolkitError, Unauthorized,
                           ValidationError)
from ..core.folders import Entry, UnreadableEntry, read
from ..core.frames import ToolkitFrame, ToolkitSeries, frame, series
from ..core.redact import get_logger, redact
from ..core.writes import ALREADY, BUSY, FOUND, IN_DOUBT, SENT, Settled, Stored, WriteRun, in_doubt_message
from . import cpr as _cpr
from .photos import JOURNAL_NAME, JPEG_SUFFIXES, MAX_BYTES, Candidate, scan_folder

if TYPE_CHECKING:
    from .interface import PhotoClient

__all__ = ["upload_folder", "put_one", "UPLOAD_SCHEMA", "MAX_BYTES", "JOURNAL_NAME", "check_image",
           "EXIT_CODES", "exit_code", "scan_folder"]

log = get_logger("toolkit.uddata.upload")

UPLOAD_SCHEMA = {"file": "string", "cpr": "string", "outcome": "string", "message": "string", "http_status": "Int64"}
MASKED = {"cpr": "cpr", "file": "text"}
#: the outcomes of the checks of ``prepare=True`` (see :mod:`toolkit.uddata.prepare`)
PREPARE_CHECKS = ("duplicate_photo", "not_a_picture", "damaged", "pixel_bomb", "too_small", "too_large")
LABELS = ("uploaded", "already_uploaded", "would_upload", "invalid_name", "invalid_image", "duplicate",
          *PREPARE_CHECKS, "hidden", "folder", "link", "not_a_file", "unknown_cpr", "forbidden", "unauthorized",
          "rejected", "failed", "in_doubt", "deferred")
INVALID = {"invalid_name", "invalid_image", "duplicate", "hidden", "folder", "link", "not_a_file", *PREPARE_CHECKS}
FAILED = {"unknown_cpr", "forbidden", "unauthorized", "rejected", "failed", "in_doubt", "deferred"}
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
    return series(row, UPLOAD_SCHEMA, masked=MASKED, kind="assets", service="uddata")




def exit_code(result: Any) -> int:
    """The command line's exit code for an upload result: 0 all uploaded, 1 some failed, 2 some invalid."""
    outcomes = set(result["outcome"].dropna())
    if outcomes & FAILED:
        return EXIT_CODES["failed"]
    if outcomes & INVALID:
        return EXIT_CODES["invalid"]
    return EXIT_CODES["ok"]


class _Uploader:
    """The Uddata+ side of one folder upload on the core write protocol (:mod:`toolkit.core.writes`): what
    "sending" a photo and "the service already holds it" mean here, and the row of each way an item ends."""

    def __init__(self, client: "PhotoClient", run: WriteRun, stop: tuple[str, int | None, str] | None,
                 prepare: Any = None, workers: int = 1) -> None:
        self.client, self.run, self.stop = client, run, stop
        #: the preparation settings (:class:`toolkit.uddata.prepare.Settings`) with ``prepare=True``
        self.prepare = prepare
        self.semaphore = asyncio.Semaphore(workers)

    async def one(self, c: Candidate) -> dict[str, Any]:
        if c.outcome:
            return _row(c.name, c.cpr, c.outcome, None, c.message or "")
        assert c.cpr is not None
        if self.prepare is not None:
            return await self._one_prepared(c)
        cpr = c.cpr
        data, outcome, problem = await asyncio.to_thread(_load, c.entry, self.client.max_pixels)
        if problem:
            return _row(c.name, cpr, outcome, None, f"not sent: {problem}")
        sha = _sha256(data)
        if self.run.dry_run:
            before = self.run.previous(cpr, sha)
            if before and before["state"] == "done":
                return _row(c.name, cpr, "already_uploaded", None, "not sent again: this photo was uploaded on "
                            f"{str(before.get('updated') or '')[:10]} (see the journal)")
            why = "a new photo" if before is None else "an earlier attempt did not finish"
            return _row(c.name, cpr, "would_upload", None, f"would be sent ({why}); dry run: nothing sent")
        if self.stop is not None:
            outcome, status, message = self.stop
            return _row(c.name, cpr, outcome, status, message.replace("not uploaded", "not sent", 1))
        settled = await self.run.write(cpr, sha, lambda: self._send(cpr, data), label=c.name,
                                       recognise=lambda entry: self._recognise(cpr, sha))
        return self._row_of(c, cpr, settled)

    async def _send(self, cpr: str, data: bytes) -> Stored:
        status = await _put(self.client, cpr, data)
        return Stored(status, http_status=status, message=MESSAGES[201])

    async def _recognise(self, cpr: str, sha: str) -> Stored | None:
        """This very photo is what Uddata+ holds for the person (an earlier attempt stored it)."""
        stored = await self.client.get_image_bytes(cpr)
        if stored is not None and _sha256(stored) == sha:
            return Stored(200, http_status=200, message="found on the service")
        return None

    def _row_of(self, c: Candidate, cpr: str, settled: Settled) -> dict[str, Any]:
        state = settled.state
        if state == SENT:
            status = settled.stored.http_status if settled.stored else None
            return _row(c.name, cpr, "uploaded", status, MESSAGES[201] if status == 201 else f"uploaded ({status})")
        if state == ALREADY:
            return _row(c.name, cpr, "already_uploaded", None,
                        "not sent again: another run on the same journal uploaded this photo at the same time"
                        if settled.by_other_run else
                        f"not sent again: this photo was uploaded on {settled.when} (see the journal)")
        if state == FOUND:
            if settled.checked:
                return _row(c.name, cpr, "uploaded", 200, "uploaded: the answer was lost, and Uddata+ holds this "
                                                          "photo (looked up afterwards)")
            return _row(c.name, cpr, "already_uploaded", 200,
                        "not sent again: an earlier run sent it and Uddata+ already holds this photo")
        if state == BUSY:
            return _row(c.name, cpr, "deferred", None, "not sent: another run on the same journal is still "
                        "sending this photo; run the upload again later")
        if state == IN_DOUBT:
            row = _row(c.name, cpr, "in_doubt", None, in_doubt_message("uddata", settled.error))
        else:
            outcome, status, message = _classify(settled.error or RuntimeError("failed"))
            if settled.checked:
                message += " (Uddata+ was asked afterwards: it does not hold this photo)"
            row = _row(c.name, cpr, outcome, status, message)
        if settled.transient:
            raise ItemFailed(row, transient=True)  # the bulk runner's breaker counts it
        return row

    def on_error(self, c: Candidate, exc: BaseException) -> dict[str, Any]:
        return _row(c.name, c.cpr, *_classify(exc))

    # -- prepare=True: each photo prepared in memory on its way (toolkit.uddata.prepare) --------------------
    async def _one_prepared(self, c: Candidate) -> dict[str, Any]:
        from . import prepare as _prepare

        cpr, look, settings = c.cpr or "", c.look, self.prepare
        key = _prepare.prepared_key(look.sha256, settings)
        planned = _prepare.planned_facts(look, settings)
        if self.run.dry_run:
            before = self.run.previous(cpr, key)
            if before and before["state"] == "done":
                return self._described(_row(c.name, cpr, "already_uploaded", None, "not sent again: this photo was "
                                            f"prepared and uploaded on {str(before.get('updated') or '')[:10]}"),
                                       _prepare.journal_facts(before) or planned)
            return self._described(_row(c.name, cpr, "would_upload", None, "would be prepared and sent; dry run: "
                                        "nothing sent"), planned)
        if self.stop is not None:
            outcome, status, message = self.stop
            return _row(c.name, cpr, outcome, status, message.replace("not uploaded", "not sent", 1))
        made: dict[str, Any] = {}
        settled = await self.run.write(cpr, key, lambda: self._send_prepared(c, made), label=c.name,
                                       recognise=lambda entry: self._recognise_prepared(c, entry, made))
        facts = made["prepared"].facts() if "prepared" in made else _prepare.journal_facts(settled.entry) or planned
        if isinstance(settled.error, _prepare.PhotoProblem):
            error = settled.error
            return _row(c.name, cpr, error.outcome, None, error.message.replace("not prepared", "not sent", 1))
        try:
            return self._described(self._row_of(c, cpr, settled), facts)
        except ItemFailed as failed:
            self._described(failed.row, facts)
            raise

    def _described(self, row: dict[str, Any], facts: Any) -> dict[str, Any]:
        from .prepare import describe

        row["actions"] = describe(facts, self.prepare)["actions"] if facts else None
        return row

    async def _prepared(self, c: Candidate, made: dict[str, Any]) -> Any:
        """The photo prepared in memory (once per item and run; at most ``workers`` at a time)."""
        from .prepare import MAX_ORIGINAL, PhotoProblem, guarded, prepare_bytes

        if "prepared" not in made:
            async with self.semaphore:
                try:
                    data = await asyncio.to_thread(read, c.entry, MAX_ORIGINAL)
                except UnreadableEntry as exc:
                    raise PhotoProblem("not_a_file", f"not prepared: {exc}") from None
                if _sha256(data) != c.look.sha256:
                    raise PhotoProblem("failed", "not prepared: the file changed while the folder was read; run "
                                                 "the upload again")
                made["prepared"] = await asyncio.to_thread(guarded, prepare_bytes, data, self.prepare, c.look)
        return made["prepared"]

    async def _send_prepared(self, c: Candidate, made: dict[str, Any]) -> Stored:
        prepared = await self._prepared(c, made)
        status = await _put(self.client, c.cpr or "", prepared.data)
        return Stored(status, http_status=status, message=MESSAGES[201], extra=prepared.facts())

    async def _recognise_prepared(self, c: Candidate, entry: Any, made: dict[str, Any]) -> Stored | None:
        """Uddata+ holds this very prepared photo (an earlier attempt stored it)."""
        from .prepare import journal_facts

        stored = await self.client.get_image_bytes(c.cpr)
        if stored is None:
            return None
        facts = journal_facts(entry)
        known = facts.get("prepared_sha256") if facts else None
        if known is None:
            facts = (await self._prepared(c, made)).facts()
            known = facts["prepared_sha256"]
        if _sha256(stored) == known:
            return Stored(200, http_status=200, message="found on the service", extra=facts)
        return None

    def on_deferred(self, c: Candidate) -> dict[str, Any]:
        if c.outcome:
            return _row(c.name, c.cpr, c.outcome, None, c.message or "")
        return _row(c.name, c.cpr, "deferred", None, "not sent: Uddata+ failed repeatedly, so the rest was "
                    "stopped; run the upload again later (nothing is sent twice)")


def _load(entry: Entry, max_pixels: int) -> tuple[bytes, str, str | None]:
    """(bytes, outcome, problem) of one photo file, read without following links; problem None when good."""
    try:
        data = read(entry, MAX_BYTES)
    except UnreadableEntry as exc:
        return b"", "not_a_file", str(exc)
    if len(data) > MAX_BYTES:
        size = entry.size or len(data)
        return b"", "invalid_image", f"the file is {size / 1024 / 1024:.1f} MB; Uddata+ accepts at most 10 MB"
    return data, "invalid_image", check_image(data, max_pixels)


async def _credentials_problem(client: "PhotoClient", candidates: list[Candidate]) -> tuple[str, int | None, str] | None:
    """One token fetch up front: bad credentials give one clear answer, not one per file."""
    if not any(c.outcome is None for c in candidates):
        return None
    try:
        await client.check_credentials()
    except ToolkitError as exc:
        return _classify(exc)
    return None


async def _check_prepared(candidates: list[Candidate], settings: Any, run: WriteRun, progress: bool,
                          distinct: Any) -> int:
    """``prepare=True``: pass 1 of :mod:`toolkit.uddata.prepare` over the folder (checks, duplicate photos);
    photos this journal already holds prepared are not decoded again. Returns the decoding workers."""
    from .prepare import check_folder, default_workers, journal_facts, prepared_key

    workers = default_workers()
    await check_folder(candidates, settings, workers=workers, progress=progress, distinct=distinct, verb="sent",
                       cached=lambda cpr, sha: journal_facts(run.previous(cpr, prepared_key(sha, settings))))
    return workers


async def upload_folder(client: "PhotoClient", folder: "str | os.PathLike[str]",
                        concurrency: "int | str" = "auto", dry_run: bool = False,
                        journal: "str | os.PathLike[str] | None" = None, progress: bool = True,
                        prepare: bool = False, max_side: int = 2000, max_bytes: int | None = None,
                        min_size: tuple[int, int] = (200, 250), quality: int = 90,
                        distinct: Any = ()) -> ToolkitFrame:
    """Check and upload every ``<cpr>.jpg`` of ``folder``; one row per entry (see the module docstring).

    ``prepare=True`` also takes ``<cpr>.heic/.heif/.png/.webp/.tif/.tiff`` and prepares each photo in memory
    before it is sent (upright, sRGB JPEG within ``max_side`` and ``max_bytes``, no metadata; the checks and
    the duplicate-photo search of :mod:`toolkit.uddata.prepare`, with ``min_size``, ``quality`` and
    ``distinct`` as there); the rows then have an ``actions`` column saying what was done.

    Raises :class:`toolkit.ValidationError` when ``folder`` is not a folder, ``concurrency`` is not
    "auto" or an int from 1 to 64, or a preparation setting is wrong (before anything is read or sent)."""
    concurrency = check_concurrency(concurrency, "uddata")
    settings = None
    if prepare:
        from .prepare import SUFFIXES, Settings

        settings = Settings.of(max_side, max_bytes, min_size, quality)
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValidationError(f"no such folder: {root.name}", service="uddata",
                              hint="Give the folder that holds the <cpr>.jpg photos.")
    journal_path = Path(journal).expanduser() if journal else root / JOURNAL_NAME
    candidates = scan_folder(root, journal=journal_path, suffixes=SUFFIXES if prepare else JPEG_SUFFIXES)
    with WriteRun("uddata", client.destination, "photo upload", journal=journal_path, items=len(candidates),
                  dry_run=dry_run) as run:
        workers = 1 if settings is None else await _check_prepared(candidates, settings, run, progress, distinct)
        stop = None if dry_run else await _credentials_problem(client, candidates)
        upload = _Uploader(client, run, stop, settings, workers)
        if not dry_run:
            await client.http.ensure_pool(concurrency)
        outcome = await run_bulk(candidates, upload.one, service="uddata",
                                 desc="photo upload (dry run)" if dry_run else "photo upload",
                                 concurrency=concurrency, on_error=upload.on_error, on_deferred=upload.on_deferred,
                                 progress=progress, summary_labels=LABELS)
        run.end(outcome)
    schema = {**UPLOAD_SCHEMA, "actions": "string"} if prepare else UPLOAD_SCHEMA
    return frame(outcome.rows, schema, masked=MASKED, summary=outcome.summary, kind="assets", service="uddata")
