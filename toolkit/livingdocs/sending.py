"""The sending of an image import: its chunks on the one write protocol (:class:`toolkit.core.writes.WriteRun`).

Each chunk (at most ``chunk_size`` good rows) is one journal item — its first id and size, with the SHA-256
of ``{systemName, images}`` as sent — and one ``POST …/import/images``, whose job id the journal records:

* **send** is the client's :meth:`~toolkit.livingdocs.AsyncClient.post_import` (it repeats a 429 with
  ``Retry-After`` and a 5xx itself, and raises :class:`~toolkit.core.errors.QuotaExhausted` at the usage
  limit). The POST is not idempotent, so a request that may have arrived without its answer coming back (the
  connection broke, no answer in time, a 500/502/504 after the repeats) is **never sent again blindly**: the
  media library is **looked at** first (the client's :meth:`~toolkit.livingdocs.AsyncClient.media`, one id,
  then the rest — Livingdocs' public API has no list of jobs to look in). Every image there as sent (same
  metadata and title): the chunk is taken as imported, its rows say so, nothing is sent again. Not all
  there, after a lost answer: sent again (up to :data:`LOST_RESENDS` times; the service upserts by
  ``systemName`` and ``id``, so an image the unseen job stored comes back ``skipped``). The look itself
  failing (the service does not answer that either): the chunk is ``in_doubt`` and not sent again — against a
  silent service one POST per chunk, each call bounded by the client's ``Timeouts.total``.
* a chunk that **may have been stored** and was not found: its rows say ``in_doubt``, never "failed"; a
  re-run sends it again (harmless, see above).
* a chunk the journal records ``done`` **re-attaches** to its job after one status call (a job the service
  forgot, or that failed, is sent again); one another live run is sending is ``not sent`` ("run again later");
  one a killed run left ``sending`` is sent again, its rows say so.
* the first chunk goes alone (bad credentials give one answer), the rest ``concurrency`` at a time through
  the core bulk runner, whose breaker stops after 3 chunks failing in a row (2 after the first failed).
  A refusal that is the same for every chunk (token, scope, usage limit) stops the sending: raised when no
  chunk was accepted, else the chunks not sent say so.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from typing import Any, Mapping

import pandas as pd

from ..core.bulk import BulkOutcome, ItemFailed, is_transient, run_bulk
from ..core.errors import (MAYBE_DELIVERED, Forbidden, QuotaExhausted, ToolkitError, TransportError, Unauthorized,
                           may_have_arrived)
from ..core.journal import LEGACY, Journal, destination
from ..core.redact import get_logger, redact
from ..core.writes import ALREADY, BUSY, FOUND, IN_DOUBT, SENT, Settled, Stored, WriteRun
from .interface import ImportClient
from .jobs import Chunk, ImportJob, ServerJob
from .rows import SERVICE, Row, check_images, prepare

__all__ = ["start_import", "LOST_RESENDS", "make_chunks"]

log = get_logger("toolkit.livingdocs.imports")

#: how many times a chunk whose answer was lost is sent again before its rows say ``in_doubt``
LOST_RESENDS = 3
#: refusals that are the same for every chunk: the sending stops
STOPPING = (Unauthorized, Forbidden, QuotaExhausted)

LOST_NOTE = ("the answer to the first import request was lost and the media library did not hold these rows (yet), "
             "so they were sent again (the service upserts by system name and id): an image the unseen first job "
             "stored is reported skipped (already exists)")
FOUND_NOTE = ("imported: the answer to the import request was lost, and the media library holds these images as "
              "sent (looked up by id), so they were not sent again; no job id is known")
RESENT_NOTE = ("an earlier run sent these rows without getting the answer, so they were sent again; images that "
               "run stored are reported skipped (already exists)")


def in_doubt_text(error: BaseException | None, look: str | None = None) -> str:
    """The reason of the rows of a chunk that may have been stored (its answer was lost); ``look`` says why
    the media library could not tell."""
    why = getattr(error, "message", None) or (type(error).__name__ if error is not None else "interrupted")
    looked = (f"; the media library could not be searched for them either ({look}), so the request was not repeated"
              if look else "")
    return (f"in doubt — may have been imported: Livingdocs got the import request but its answer was lost ({why}), "
            f"so its job is unknown{looked}; run the import again with the same rows (and journal) when the "
            "service answers: it upserts by system name and id, so each image is stored once and one already "
            "stored is reported skipped")


class _LookFailed(Exception):
    """The media library could not be searched for a chunk whose import answer was lost; ``silent``: for want of
    an answer (no answer, 5xx, 429) rather than a refusal."""

    def __init__(self, message: str, *, silent: bool) -> None:
        super().__init__(message)
        self.silent = silent


def make_chunks(rows: list[Row], system_name: str, chunk_size: int) -> list[Chunk]:
    """The good rows in chunks of ``chunk_size``, each with its journal item and content hash."""
    good = [r for r in rows if r.payload is not None]
    chunks = [Chunk(i, good[s:s + chunk_size]) for i, s in enumerate(range(0, len(good), chunk_size))]
    for chunk in chunks:
        payload = [r.payload for r in chunk.rows]
        chunk.content_hash = hashlib.sha256(json.dumps({"systemName": system_name, "images": payload},
                                                       sort_keys=True, ensure_ascii=False,
                                                       default=str).encode("utf-8")).hexdigest()
        chunk.item = f"import chunk {chunk.rows[0].external_id} (+{len(chunk.rows) - 1})"
    return chunks


def chunk_row(chunk: Chunk) -> dict[str, Any]:
    """The bulk runner's (and the journal's run record's) row of one chunk."""
    return {"chunk": chunk.index + 1, "images": len(chunk.rows), "job_id": chunk.job_id, "outcome": chunk.outcome,
            "message": chunk.error or chunk.note}


def journal_path(journal: Any) -> str | None:
    """The journal file of ``journal=`` (a path or a :class:`Journal`); ``None``: a journal of this call only."""
    if journal is None:
        return None
    if isinstance(journal, Journal):
        return None if journal.memory else str(journal.path)
    return os.fspath(os.path.expanduser(journal))


class Sender:
    """Sends the chunks of one ``import_images`` call through one :class:`WriteRun`."""

    def __init__(self, client: ImportClient, run: WriteRun, job: ImportJob, *, system: str, body: Mapping[str, Any],
                 journal: tuple[str, str] | None) -> None:
        self.client, self.run, self.job, self.system = client, run, job, system
        self.body = dict(body)  # systemName, webhook, context: all but the images
        self.journal = journal
        #: a refusal that is the same for every chunk: nothing more is sent
        self.stop: ToolkitError | None = None
        #: why no more chunks are sent: the service answered neither an import request nor the look after it
        self.silent: str | None = None
        #: job ids the journal records but the service no longer has (or that failed): sent again
        self.gone: set[str] = set()

    # -- one chunk --------------------------------------------------------------------------------------
    async def send_chunk(self, chunk: Chunk) -> dict[str, Any]:
        """The bulk worker: claim, send, settle and finish one chunk; its row (``ItemFailed`` when the
        breaker should count it)."""
        if self.stop is not None:
            return self.not_sent(chunk, f"not sent: {self.stop.message}")
        if self.silent is not None:
            return self.not_sent(chunk, self.silent)
        previous = self.run.previous(chunk.item, chunk.content_hash) or {}
        await self.check_recorded(previous)
        resent = previous.get("state") in ("in_doubt", "sending", LEGACY)

        async def send() -> Stored:
            return await self.post(chunk, resent)

        settled = await self.run.write(chunk.item, chunk.content_hash, send, label=chunk.item, keep=self.keep)
        return self.settled_row(chunk, settled)

    async def check_recorded(self, entry: Mapping[str, Any]) -> None:
        """One status call for a chunk the journal calls done: is its job still there (and not failed)?"""
        recorded = entry.get("remote_id")
        if entry.get("state") != "done" or not recorded:
            return
        try:
            body = await self.client.job_status(str(recorded), allow_missing=True)
        except ToolkitError as exc:  # cannot ask now: trust the journal (the wait asks again)
            log.info("Livingdocs: could not check the recorded job %s (%s)", recorded, redact(exc))
            return
        if body is None or str((body or {}).get("state") or "").lower() in ("failed", "error"):
            self.gone.add(str(recorded))

    def keep(self, entry: Mapping[str, Any]) -> bool:
        """Whether a chunk the journal calls done still has its job on the service (else it is sent again)."""
        recorded = entry.get("remote_id")
        return bool(recorded) and str(recorded) not in self.gone

    async def post(self, chunk: Chunk, resent: bool) -> Stored:
        """The protocol's ``send()``: POST the chunk; after an answer that may have been lost, look in the
        media library before anything else (see the module docstring)."""
        if resent:
            chunk.note = RESENT_NOTE
        body = {**self.body, "images": [r.payload for r in chunk.rows]}
        lost = 0
        while True:
            try:
                job_id = await self.client.post_import(body)
                break
            except ToolkitError as exc:
                if not may_have_arrived(exc):
                    raise
                try:
                    found = await self.look(chunk)
                except _LookFailed as look:
                    chunk.look_error = str(look)
                    if look.silent and self.silent is None:  # neither the import nor the look was answered
                        log.warning("Livingdocs: no answer to the import request of chunk %d nor to the look in the "
                                    "media library after it; no further chunk is sent", chunk.index + 1)
                        self.silent = (
                            f"not sent: Livingdocs answered neither the import request of chunk {chunk.index + 1} "
                            f"nor the look in the media library after it ({look}), so no further chunk was sent; "
                            "run the import again later" + (" with the same journal" if self.journal else ""))
                    raise exc from None  # settled in_doubt by the protocol: not sent again
                if found is not None:
                    log.info("Livingdocs: the answer to the import request of chunk %d was lost; the media library "
                             "holds its images, so it is not sent again", chunk.index + 1)
                    chunk.found, chunk.note = found, FOUND_NOTE
                    return Stored(value=None, message="found in the media library after the answer was lost",
                                  extra={"system_name": self.system, "images": len(chunk.rows),
                                         "found_in_library": True})
                resend = isinstance(exc, TransportError) and exc.delivery == MAYBE_DELIVERED
                if not resend or lost >= LOST_RESENDS:
                    raise
                lost += 1
                log.info("Livingdocs: the answer to an import request was lost (%s) and the media library does not "
                         "hold its images; sending chunk %d again", exc.reason, chunk.index + 1)
                chunk.note = LOST_NOTE
        return Stored(value=job_id, http_status=200, remote_id=job_id, message=f"import job {job_id}",
                      extra={"job_id": job_id, "system_name": self.system, "images": len(chunk.rows)})

    async def look(self, chunk: Chunk) -> dict[int, dict[str, Any]] | None:
        """The chunk's images as the media library holds them (position → result fields) when every one is
        there as sent; ``None`` when one is missing or differs. One id is asked first (a missing one ends
        the look after one call), then the rest. Raises :class:`_LookFailed` when the library cannot be asked."""
        found: dict[int, dict[str, Any]] = {}
        for rows in (chunk.rows[:1], chunk.rows[1:]):
            if not rows:
                continue
            try:
                media = await self.client.media([r.external_id for r in rows], self.system)
            except ToolkitError as exc:
                raise _LookFailed(exc.message, silent=is_transient(exc)) from None
            by_id = {str(e["external_id"]): e for e in media.to_dict("records")} if len(media) else {}
            for row in rows:
                entry = by_id.get(str(row.external_id))
                if entry is None or not _as_sent(entry, row.payload or {}):
                    return None
                found[row.position] = {k: _plain(entry.get(k)) for k in ("media_id", "url", "width", "height",
                                                                           "mime_type")}
        return found

    def settled_row(self, chunk: Chunk, settled: Settled) -> dict[str, Any]:
        """The chunk's row from how the protocol settled it."""
        if settled.state in (SENT, FOUND) and settled.stored is not None and chunk.found is not None:
            chunk.outcome = "found"  # in the media library after a lost answer: no job to attach
        elif settled.state in (SENT, FOUND) and settled.stored is not None:
            chunk.outcome = "sent"
            self.attach(chunk, str(settled.stored.remote_id))
        elif settled.state == ALREADY:
            recorded = str((settled.entry or {}).get("remote_id"))
            chunk.note = f"re-attached to the job {recorded} recorded in the journal (not sent again)"
            chunk.outcome = "re-attached"
            self.attach(chunk, recorded, "journal")
        elif settled.state == BUSY:
            return self.not_sent(chunk, "not sent: another run on the same journal is still sending these rows; "
                                        "run again later")
        elif settled.state == IN_DOUBT:
            chunk.status, chunk.outcome, chunk.note = "in_doubt", "in_doubt", None
            chunk.error = in_doubt_text(settled.error, chunk.look_error)
        else:
            return self.failed_row(chunk, settled.error)
        row = chunk_row(chunk)
        if settled.transient:
            raise ItemFailed(row, transient=True)
        return row

    def failed_row(self, chunk: Chunk, error: BaseException | None) -> dict[str, Any]:
        """The row of a chunk the service did not take (a refusal the same for every chunk stops the rest)."""
        text = error.message if isinstance(error, ToolkitError) else f"{type(error).__name__}: {redact(error)}"
        hint = getattr(error, "hint", None)
        transient = error is not None and is_transient(error)
        chunk.error = f"not imported: {text}" + (f" — {hint}" if hint and transient else "")
        chunk.outcome = "failed"
        row = chunk_row(chunk)
        if isinstance(error, STOPPING):
            self.stop = self.stop or error
            return row
        if transient:
            raise ItemFailed(row, transient=True)
        return row

    def attach(self, chunk: Chunk, job_id: str, source: str = "this connection") -> None:
        chunk.job_id = job_id
        self.job.add_job(ServerJob(job_id, total=len(chunk.rows), chunk=chunk, journal=self.journal))
        self.client.remember_job(job_id, self.system, len(chunk.rows), source=source, chunk=chunk.item)

    @staticmethod
    def not_sent(chunk: Chunk, reason: str) -> dict[str, Any]:
        chunk.error, chunk.outcome = reason, "not sent"
        return chunk_row(chunk)

    def on_error(self, chunk: Chunk, exc: BaseException) -> dict[str, Any]:
        """A worker that raised (a bug, not a chunk's failure: the protocol settles those)."""
        try:
            return self.failed_row(chunk, exc)
        except ItemFailed as failed:
            return failed.row

    def on_deferred(self, chunk: Chunk) -> dict[str, Any]:
        chunk.error = ("not sent: Livingdocs failed repeatedly for the chunks before, so the rest was not sent; "
                       "run the import again later" + (" with the same journal (nothing is sent twice)"
                                                        if self.journal is not None else ""))
        chunk.outcome = "deferred"
        return chunk_row(chunk)

    # -- every chunk ------------------------------------------------------------------------------------
    async def send_all(self, chunks: list[Chunk], *, concurrency: "int | str", progress: bool) -> None:
        """The first chunk alone, then the rest through the bulk runner (see the module docstring)."""
        first, rest = chunks[0], chunks[1:]
        try:
            await self.send_chunk(first)
        except ItemFailed:
            pass
        if self.stop is not None:
            for chunk in rest:
                self.not_sent(chunk, f"not sent: {self.stop.message}")
            raise self.stop
        if self.silent is not None:
            for chunk in rest:
                self.not_sent(chunk, self.silent)
            return
        if rest:
            await run_bulk(rest, self.send_chunk, service=SERVICE, desc="sending import chunks",
                           concurrency=concurrency, on_error=self.on_error, on_deferred=self.on_deferred,
                           breaker=2 if first.job_id is None else 3, progress=progress and len(rest) > 20,
                           summary_labels=("sent", "found", "re-attached", "failed", "in_doubt", "deferred"))
        if self.stop is not None and not self.job.ids:
            raise self.stop
        if self.stop is not None:
            log.warning("Livingdocs: %s — the chunks after it were not sent (see their rows)", redact(self.stop.message))


def _plain(value: Any) -> Any:
    """A frame's cell as a plain value (``None`` for a missing one)."""
    try:
        if value is None or bool(pd.isna(value)):
            return None
    except (TypeError, ValueError):  # a dict or list cell
        return value
    return value.item() if hasattr(value, "item") else value


def _as_sent(entry: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    """Whether a media library row holds the image as ``payload`` sends it (metadata and title alike); the
    source URL is not in the public entry."""
    if not entry.get("found"):
        return False
    metadata = entry.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    if dict(metadata) != dict(payload.get("metadata") or {}):
        return False
    title = _plain(entry.get("title"))
    return title is None or str(title) == str(payload.get("fileName"))


def run_outcome(chunks: list[Chunk], images: int) -> BulkOutcome:
    """What the journal's run record keeps: one row per chunk, counts by outcome."""
    counts = Counter(c.outcome for c in chunks)
    summary = f"Livingdocs: image import of {images} images in {len(chunks)} chunks"
    return BulkOutcome(rows=[chunk_row(c) for c in chunks], summary=summary, counts=counts)


async def start_import(client: ImportClient, images: Any, system_name: str, webhook: Any = None,
                       context: Any = None, chunk_size: int = 100, journal: Any = None, *,
                       concurrency: "int | str" = "auto", progress: bool = True) -> ImportJob:
    """See :meth:`toolkit.livingdocs.AsyncClient.import_images`."""
    system, webhook_url = prepare(system_name, webhook, context, chunk_size, concurrency)
    rows = check_images(images)
    chunks = make_chunks(rows, system, chunk_size)
    job = ImportJob(client, rows=rows, chunks=chunks, system_name=system)
    if not chunks:
        return job
    path = journal_path(journal)
    if path is not None:
        client.remember_journal(path)
    dest = destination(SERVICE, client.base_url, api_version=client.api_version, system=system)
    body: dict[str, Any] = {"systemName": system}
    if webhook_url:
        body["webhook"] = webhook_url
    if context is not None:
        body["context"] = dict(context)
    with WriteRun(SERVICE, dest, "image import", journal=path, items=len(chunks)) as run:
        sender = Sender(client, run, job, system=system, body=body, journal=(path, dest) if path else None)
        try:
            await sender.send_all(chunks, concurrency=concurrency, progress=progress)
        finally:
            run.end(run_outcome(chunks, sum(len(c.rows) for c in chunks)))
    return job
