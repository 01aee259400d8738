"""Image import: check the rows, send them in chunks (one server job each), follow the jobs, one row per image.

``await client.import_images(images, system_name, webhook=None, context=None, chunk_size=100, journal=None)``
returns an :class:`ImportJob` over every server job it started:

1. **checks before sending** — every row needs an http(s) ``url`` (no ``data:`` URL) and an ``id`` not given
   by an earlier row of the same call; a bad row becomes an ``invalid`` result row and is never sent.
   ``context`` larger than 8192 bytes (compact UTF-8 JSON), a missing ``system_name``, a bad ``webhook``
   or ``chunk_size`` raise :class:`~toolkit.core.errors.ValidationError` before anything is sent.
2. **chunks** of at most ``chunk_size`` good rows, one ``POST /api/{v}/import/images`` each. The first
   chunk goes alone (bad credentials give one answer), the rest ``concurrency`` at a time through the core
   bulk runner, whose breaker stops after 3 chunks failing in a row (a service that is down ends the import
   in seconds, with rows that say so).
3. **the import POST is not idempotent**. It is repeated when the service says it did not take it (429 with
   ``Retry-After``, 500/502/503/504) — harmless even if it had, because the service upserts by
   (``systemName``, ``id``). When the answer of a POST is lost (the connection broke after sending), the
   chunk is recorded ``in_doubt`` in the journal and sent once more: the images the unseen first job stored
   come back ``skipped`` / ``already exists`` in the new job, and their rows say that the first answer was
   lost. The daily usage limit (429 with an array body, no ``Retry-After``) is tried at most twice more,
   then raised as :class:`~toolkit.core.errors.RateLimited` with the service's own message (or, when some
   chunks were already accepted, kept as rows of the chunks not sent).
4. **the journal** (``journal=`` a path; :mod:`toolkit.core.journal`) records each chunk and its job id
   before the call returns, keyed by destination (base URL, API version, system name), the chunk's first id
   and the hash of what is sent. Calling ``import_images`` again with the same rows and journal — after a
   kernel restart, say — re-attaches to the recorded jobs instead of sending again.

:meth:`ImportJob.wait` is the core job wait (:class:`toolkit.core.jobs.Job`): it polls the oldest unfinished
jobs first (a window at a time, stopping at the first still running — jobs started later are rarely done
earlier), with the core backoff capped at 0.5 s, so it returns within about half a second of the last job
finishing and costs one or two status calls per job; with a :class:`~toolkit.livingdocs.WebhookInbox` it
polls a job as soon as its webhook arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import pandas as pd

from ..core.bulk import is_transient, run_bulk
from ..core.errors import (MAYBE_DELIVERED, APIError, Forbidden, JobTimeout, NotFound, QuotaExhausted, RateLimited,
                           ToolkitError, TransportError, Unauthorized, ValidationError)
from ..core.frames import frame
from ..core.jobs import Backoff, Job, JobState
from ..core.journal import Journal, destination
from ..core.redact import get_logger, redact
from ..core.sync import sync_wrappable

#: the service's AsyncClient, duck-typed (not imported: the client imports this module)
AsyncClient = Any

__all__ = ["ImportJob", "RESULT_SCHEMA", "STATUS_SCHEMA", "CONTEXT_MAX_BYTES", "check_images", "prepare"]

log = get_logger("toolkit.livingdocs.imports")

SERVICE = "livingdocs"
CONTEXT_MAX_BYTES = 8192
RESULT_SCHEMA = {"external_id": "string", "title": "string", "status": "string", "reason": "string",
                 "media_id": "string", "url": "string", "width": "Int64", "height": "Int64",
                 "mime_type": "string", "job_id": "string",
                 # the vocabulary (docs/vocabulary.md): outcome = status, message = reason; http_status is
                 # empty (Livingdocs reports each image in the job's status, not by an HTTP answer)
                 "outcome": "string", "http_status": "Int64", "message": "string"}
STATUS_SCHEMA = {"job_id": "string", "state": "string", "finished": "boolean", "started_at": "string",
                 "total": "Int64", "success": "Int64", "skipped": "Int64", "failed": "Int64"}
STATUSES = ("success", "skipped", "failed", "invalid")
LOST_RESENDS = 3


# -- rows ------------------------------------------------------------------------------------------------
def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _first(record: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in record and not _missing(record[key]):
            return record[key]
    return None


def _id_text(value: Any) -> str | None:
    if _missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            value = value.item()
            if isinstance(value, float) and value.is_integer():
                value = int(value)
        except (TypeError, ValueError):
            pass
    text = str(value).strip()
    return text or None


@dataclass
class Row:
    """One input image."""

    position: int
    external_id: str | None
    title: str | None
    payload: dict[str, Any] | None = None  # what is sent (None: invalid)
    reason: str | None = None              # why it is invalid


def _check_url(value: Any) -> tuple[str | None, str | None]:
    if type(value) is str and value[:4] == "http" and value == value.strip():  # the common case, fast
        head, sep, rest = value.partition("://")
        if sep and head in ("http", "https") and rest and rest[0] not in "/?#" and " " not in rest:
            return value, None
    if _missing(value):
        return None, "not sent: the row has no url"
    if not isinstance(value, str):
        return None, f"not sent: the url must be text, not {type(value).__name__}"
    url = value.strip()
    if url.lower().startswith("data:"):
        return None, "not sent: data: URLs are not accepted by Livingdocs; give an http(s) URL of the image"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None, "not sent: the url is not an http(s) URL"
    return url, None


def _metadata(record: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    meta = record.get("metadata")
    if type(meta) is dict and not any(type(k) is str and k.startswith("metadata.") for k in record):
        return dict(meta), None
    out: dict[str, Any] = {}
    if not _missing(meta):
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError:
                return None, "not sent: metadata is text that is not a JSON object"
        if not isinstance(meta, Mapping):
            return None, "not sent: metadata must be an object (a dict), not " + type(meta).__name__
        out.update(meta)
    for key, value in record.items():
        if isinstance(key, str) and key.startswith("metadata.") and len(key) > 9 and not _missing(value):
            out[key[9:]] = value.item() if hasattr(value, "item") and not isinstance(value, str) else value
    return out, None


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _records(images: Any) -> list[Any]:
    if isinstance(images, pd.DataFrame):
        return images.to_dict("records")
    if isinstance(images, (str, bytes, os.PathLike)):
        raise ValidationError("images must be a DataFrame or a list of records, not a file name", service=SERVICE,
                              hint="Read the file first, e.g. images = pandas.read_csv('images.csv').")
    if isinstance(images, Mapping):
        raise ValidationError("images must be a DataFrame or a list of records (dicts), not one dict",
                              service=SERVICE, hint="Wrap one image in a list: [{'url': …, 'id': …}].")
    try:
        return list(images)
    except TypeError:
        raise ValidationError(f"images must be a DataFrame or a list of records, not {type(images).__name__}",
                              service=SERVICE) from None


def check_images(images: Any) -> list[Row]:
    """The rows of ``images`` with what would be sent, or why not (see the module docstring)."""
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for i, record in enumerate(_records(images)):
        if not isinstance(record, Mapping):
            rows.append(Row(i, None, None, reason=f"not sent: row {i} is not a record (a dict) but "
                                                  f"{type(record).__name__}"))
            continue
        raw_id = record.get("id")
        ext = raw_id.strip() if type(raw_id) is str and raw_id.strip() else \
            _id_text(_first(record, "id", "externalId", "external_id"))
        name = record.get("fileName")
        if type(name) is not str or not name:
            name = _first(record, "fileName", "file_name", "title")
        title = None if name is None else str(name)
        url, problem = _check_url(record.get("url"))
        if problem is None and ext is None:
            problem = "not sent: the row has no id (the image's id in the source system)"
        if problem is None and ext in seen:
            problem = (f"not sent: the id {ext!r} was already given in row {seen[ext]} of this import "
                       f"(that first row is sent); give each image its own id")
        meta = None
        if problem is None:
            meta, problem = _metadata(record)
        media_type = _first(record, "mediaType", "media_type")
        if problem is None and media_type is not None and not isinstance(media_type, str):
            problem = "not sent: mediaType must be the handle of a media type (text), e.g. 'image'"
        if problem is not None:
            rows.append(Row(i, ext, title, reason=problem))
            continue
        assert ext is not None and url is not None
        seen[ext] = i
        if title is None:
            title = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or ext
        payload: dict[str, Any] = {"url": url, "id": ext, "fileName": title, "metadata": meta or {}}
        if media_type:
            payload["mediaType"] = media_type.strip()
        rows.append(Row(i, ext, title, payload=payload))
    # one JSON check for all rows (fast); only when it fails, find the rows at fault
    if not _json_ok([r.payload for r in rows if r.payload is not None]):
        for r in rows:
            if r.payload is not None and not _json_ok(r.payload):
                r.payload = None
                r.reason = "not sent: metadata holds values that are not JSON (numbers, text, lists, objects)"
                if r.external_id is not None and seen.get(r.external_id) == r.position:
                    del seen[r.external_id]
    return rows


def _context_bytes(context: Any) -> int:
    return len(json.dumps(context, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8"))


def prepare(system_name: Any, webhook: Any, context: Any, chunk_size: Any, concurrency: Any) -> tuple[str, str | None]:
    """Check the call's own arguments; returns (system name, webhook URL)."""
    if not isinstance(system_name, str) or not system_name.strip():
        raise ValidationError("system_name is required: the name of the source system (e.g. 'archive')",
                              service=SERVICE, hint="Pass system_name='…'; with the image ids it identifies each "
                                                    "image, so importing again updates instead of duplicating.")
    url = getattr(webhook, "url", webhook)
    if url is not None:
        if not isinstance(url, str) or urllib.parse.urlsplit(url.strip()).scheme.lower() not in ("http", "https") \
                or not urllib.parse.urlsplit(url.strip()).netloc:
            raise ValidationError("webhook must be an http(s) URL (or a WebhookInbox)", service=SERVICE)
        url = url.strip()
    if context is not None:
        if not isinstance(context, Mapping):
            raise ValidationError("context must be an object (a dict)", service=SERVICE)
        try:
            size = _context_bytes(context)
        except (TypeError, ValueError):
            raise ValidationError("context must hold only JSON values (text, numbers, lists, objects)",
                                  service=SERVICE) from None
        if size > CONTEXT_MAX_BYTES:
            raise ValidationError(f"context is {size} bytes as JSON; Livingdocs takes at most {CONTEXT_MAX_BYTES}",
                                  service=SERVICE, hint="Put less in context (e.g. an id of your own that points "
                                                        "to the rest); nothing was sent.")
    for name, value in (("chunk_size", chunk_size), ("concurrency", concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"{name} must be a whole number of at least 1, not {value!r}", service=SERVICE)
    return system_name.strip(), url


# -- chunks and server jobs ------------------------------------------------------------------------------
@dataclass
class Chunk:
    index: int
    rows: list[Row]
    job_id: str | None = None
    #: why the chunk was not sent / failed to be sent (its rows say failed with this reason)
    error: str | None = None
    #: a note added to every row's reason (an answer lost and sent again, re-attached from the journal)
    note: str | None = None
    item: str = ""
    content_hash: str = ""
    outcome: str = "pending"


@dataclass
class ServerJob:
    job_id: str
    total: int | None = None
    finished: bool = False
    state: str = "started"
    started_at: str | None = None
    images: list[dict[str, Any]] | None = None
    reason: str | None = None  # why every row failed (a failed job, an unknown id)
    chunk: Chunk | None = None
    polls: int = 0
    #: journal coordinates, to record a failed job so that a re-run sends its chunk again
    journal: Any = None
    #: the result rows of its chunk, position → row (made once the job finished)
    rows: dict[int, dict[str, Any]] | None = None


def _image_status(value: Any) -> str:
    text = str(value or "").strip().lower()
    if text in ("success", "succeeded", "ok", "done", "created", "updated"):
        return "success"
    if text in ("skipped", "skip", "exists"):
        return "skipped"
    if text in ("failed", "failure", "error"):
        return "failed"
    return text or "failed"


def parse_status(body: Any, job: ServerJob) -> None:
    """Update ``job`` from a status body (the three documented shapes)."""
    if not isinstance(body, Mapping):
        return
    state = str(body.get("state") or "").strip().lower() or job.state
    finished = body.get("finished")
    if finished is None:
        finished = state in ("success", "failed", "completed", "done", "error")
    job.state = state
    job.started_at = str(body["startedAt"]) if body.get("startedAt") else job.started_at
    if bool(finished):
        job.finished = True
        images = body.get("images")
        job.images = list(images) if isinstance(images, list) else []
        if state in ("failed", "error"):
            job.state = "failed"
            job.reason = (f"not imported: the import job {job.job_id} failed on the service (state "
                          f"'{state}'); no image of its chunk was reported — run the import again for these rows")
        elif not job.images and job.total:
            job.reason = f"not imported: the import job {job.job_id} finished without reporting this image"


def _counts(job: ServerJob) -> dict[str, int | None]:
    if not job.finished:
        return {"success": None, "skipped": None, "failed": None}
    if job.state == "failed":
        return {"success": 0, "skipped": 0, "failed": job.total or 0}
    counts = {"success": 0, "skipped": 0, "failed": 0}
    for img in job.images or []:
        status = _image_status(img.get("status") or img.get("state") if isinstance(img, Mapping) else None)
        counts[status if status in counts else "failed"] += 1
    return counts


def _result_row(ext: str | None, title: str | None, job: ServerJob, img: Mapping[str, Any] | None,
                note: str | None) -> dict[str, Any]:
    if img is None:
        reason = job.reason or f"not imported: the import job {job.job_id} did not report this image"
        return {"external_id": ext, "title": title, "status": "failed", "reason": _join(reason, note),
                "job_id": job.job_id}
    status = _image_status(img.get("status") or img.get("state"))
    image = img.get("image") if isinstance(img.get("image"), Mapping) else {}
    reason = img.get("reason")
    if status not in ("success", "skipped", "failed"):
        reason = _join(f"the service reported the status {status!r}", reason)
        status = "failed"
    return {"external_id": ext if ext is not None else _id_text(img.get("externalId") or img.get("id")),
            "title": img.get("title") if img.get("title") not in (None, "") else title,
            "status": status, "reason": _join(reason, note),
            "media_id": image.get("mediaId") or image.get("id"), "url": image.get("url") or image.get("originalUrl"),
            "width": image.get("width"), "height": image.get("height"),
            "mime_type": image.get("mimeType") or image.get("mime_type"), "job_id": job.job_id}


def _join(*parts: Any) -> str | None:
    texts = [str(p) for p in parts if p not in (None, "")]
    return " — ".join(texts) if texts else None


def _missing_value(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


# -- the job ---------------------------------------------------------------------------------------------
@sync_wrappable
class ImportJob(Job):
    """All server jobs of one ``import_images`` call (or of ``lv.job(id)``).

    ``ids`` — the server job ids; ``status()`` — one row per server job; ``wait(timeout=600, inbox=None)``
    — the core job wait; ``results()`` — one row per input image, in input order.
    """

    def __init__(self, client: "AsyncClient", *, rows: Sequence[Row] = (), chunks: Sequence[Chunk] = (),
                 jobs: Sequence[ServerJob] = (), system_name: str | None = None) -> None:
        super().__init__(service=SERVICE, backoff=_FollowBackoff(self))
        self._client = client
        self._rows = list(rows)
        self._chunks = list(chunks)
        self._jobs: list[ServerJob] = list(jobs)
        self.system_name = system_name
        self.window = 16
        #: whether the last poll found a job that had just finished (its neighbours are likely next)
        self._progressed = False
        self._inbox: Any = None
        self.status_calls = 0

    # -- public -----------------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """The server job ids, one per chunk sent (in chunk order)."""
        return [j.job_id for j in self._jobs]

    @property
    def finished(self) -> bool:
        """Whether every server job has finished (as last seen)."""
        return all(j.finished for j in self._jobs)

    def describe(self) -> str:
        if len(self._jobs) == 1:
            return f"the import job {self._jobs[0].job_id}"
        return f"the import ({len(self._jobs)} jobs)"

    async def status(self) -> Any:
        """Ask the service about every unfinished job and return one row per server job.

        Returns
        -------
        DataFrame
            job_id, state (``started`` / ``success`` / ``failed``), finished, started_at, total, success,
            skipped, failed (the counts are empty while a job runs). ``attrs["kind"] == "jobs"``.
        """
        await asyncio.gather(*(self._refresh(j) for j in self._jobs if not j.finished))
        return self.status_frame()

    def status_frame(self) -> Any:
        """The last-known state of each server job (no call to the service)."""
        rows = [{"job_id": j.job_id, "state": j.state, "finished": j.finished, "started_at": j.started_at,
                 "total": j.total, **_counts(j)} for j in self._jobs]
        df = frame(rows, STATUS_SCHEMA)
        df.attrs.update(kind="jobs", service=SERVICE)
        return df

    async def wait(self, timeout: float | None = 600, inbox: Any = None, *, progress: bool = True) -> Any:
        """Wait until every server job finished; returns :meth:`status_frame`.

        Parameters
        ----------
        timeout:
            Seconds to wait (``None``: no limit). On expiry :class:`toolkit.JobTimeout` is raised; the jobs
            keep running on the service and ``wait()`` can be called again.
        inbox:
            A :class:`~toolkit.livingdocs.WebhookInbox` whose URL was given as ``webhook=``: a job is polled
            as soon as its webhook arrived (also one that arrived before this call).
        progress:
            Show a progress bar of the images whose job finished.

        Raises
        ------
        JobTimeout
            Still running after ``timeout`` seconds. A job that failed on the service does not raise: its
            rows in :meth:`results` say failed and name the job.
        """
        self._inbox = inbox
        # with an inbox the webhook wakes the wait; polling only covers a webhook that never comes
        saved = self.backoff
        if inbox is not None:
            self.backoff = Backoff(first=0.5, factor=1.5, max_interval=3.0)
        bar = _bar(sum(j.total or 0 for j in self._jobs), progress and bool(self._jobs))

        def callback(state: JobState) -> None:
            if bar is not None:
                bar.n = state.done or 0
                bar.set_postfix_str(state.state, refresh=False)
                bar.refresh()

        try:
            await super().wait(timeout, callback=callback, wake=_InboxWake(self, inbox) if inbox is not None else None)
        except JobTimeout:
            raise JobTimeout(f"{self.describe()} is still running after {timeout:g} s "
                             f"({sum(j.finished for j in self._jobs)} of {len(self._jobs)} jobs finished)",
                             service=SERVICE) from None
        finally:
            if bar is not None:
                bar.close()
            self._inbox = None
            self.backoff = saved
        return self.status_frame()

    async def results(self, timeout: float | None = 600) -> Any:
        """One row per input image, in input order (waits first while a job still runs).

        Returns
        -------
        DataFrame
            external_id, title, status (``success`` / ``skipped`` / ``failed`` / ``invalid``), reason,
            media_id, url, width, height, mime_type, job_id, then the vocabulary's outcome (= status),
            http_status (empty) and message (= reason). ``attrs["kind"] == "assets"``; the counts are in
            ``attrs["summary"]``.
        """
        if not self.finished:
            await self.wait(timeout, progress=False)
        rows = self._result_rows()
        counts = pd.Series([r["status"] for r in rows], dtype="string").value_counts()
        parts = ", ".join(f"{k} {int(counts[k])}" for k in STATUSES if k in counts)
        summary = f"Livingdocs: image import: {len(rows)} image{'s' if len(rows) != 1 else ''}" + \
                  (f" — {parts}" if parts else "") + f" in {len(self._jobs)} job{'s' if len(self._jobs) != 1 else ''}"
        rows = [{**r, "outcome": r.get("status"), "message": r.get("reason")} for r in rows]
        df = frame(rows, RESULT_SCHEMA, summary=summary)
        df.attrs.update(kind="assets", service=SERVICE)
        return df

    # -- polling ----------------------------------------------------------------------------------------
    async def _refresh(self, job: ServerJob) -> None:
        if job.finished:
            return
        job.polls += 1
        self.status_calls += 1
        body = await self._client._job_status(job.job_id, allow_missing=True)
        if body is None:  # the service no longer knows the job
            job.finished, job.state, job.images = True, "failed", []
            job.reason = (f"not imported: the service does not know the import job {job.job_id} (any more); "
                          "run the import again for these rows")
        else:
            parse_status(body, job)
        if job.finished and job.state == "failed":
            self._journal_failed(job)
        if job.finished and job.chunk is not None:
            job.rows = self._chunk_rows(job.chunk, job)  # now, while waiting, not when results() is asked

    def _journal_failed(self, job: ServerJob) -> None:
        if job.journal is None or job.chunk is None:
            return
        path, dest = job.journal
        try:
            with Journal(path, service=SERVICE) as book:
                book.finish(dest, job.chunk.item, job.chunk.content_hash, "failed", remote_id=job.job_id,
                            message=job.reason)
        except ToolkitError as exc:  # pragma: no cover - the journal became unusable meanwhile
            log.warning("%s", redact(exc))

    async def poll(self) -> JobState:
        """One round: jobs whose webhook arrived, then the oldest unfinished jobs a window at a time."""
        pending = [j for j in self._jobs if not j.finished]
        before = len(pending)
        if self._inbox is not None and pending:
            hooked = self._inbox.job_ids() if hasattr(self._inbox, "job_ids") else set()
            await asyncio.gather(*(self._refresh(j) for j in pending if j.job_id in hooked))
            pending = [j for j in pending if not j.finished]
        for start in range(0, len(pending), self.window):
            batch = pending[start:start + self.window]
            await asyncio.gather(*(self._refresh(j) for j in batch))
            if not all(j.finished for j in batch):
                break
        done = [j for j in self._jobs if j.finished]
        self._progressed = len(self._jobs) - len(done) < before
        failed = [j for j in done if j.state == "failed"]
        finished = len(done) == len(self._jobs)
        state = (("failed" if len(failed) == len(done) else "partly failed") if failed else "success") \
            if finished else f"{len(done)}/{len(self._jobs)} jobs finished"
        return JobState(finished=finished, failed=bool(failed), state=state,
                        done=sum(j.total or 0 for j in done), total=sum(j.total or 0 for j in self._jobs))

    # -- results ----------------------------------------------------------------------------------------
    def _result_rows(self) -> list[dict[str, Any]]:
        if not self._rows:  # re-attached by id: the service's own order
            out = []
            for job in self._jobs:
                if job.images:
                    out += [_result_row(None, None, job, img, None) for img in job.images if isinstance(img, Mapping)]
                elif job.state == "failed":
                    out.append({"status": "failed", "reason": job.reason, "job_id": job.job_id})
            return out
        by_row: dict[int, dict[str, Any]] = {}
        jobs = {id(j.chunk): j for j in self._jobs if j.chunk is not None}
        for chunk in self._chunks:
            job = jobs.get(id(chunk))
            if job is not None and job.rows is not None:
                by_row.update(job.rows)
            else:
                by_row.update(self._chunk_rows(chunk, job))
        out = []
        for row in self._rows:
            if row.payload is None:
                out.append({"external_id": row.external_id, "title": row.title, "status": "invalid",
                            "reason": row.reason, "job_id": None})
            else:
                out.append(by_row.get(row.position) or {"external_id": row.external_id, "title": row.title,
                                                        "status": "failed", "reason": "not sent", "job_id": None})
        return out

    @staticmethod
    def _chunk_rows(chunk: Chunk, job: ServerJob | None) -> dict[int, dict[str, Any]]:
        if job is None:
            return {row.position: {"external_id": row.external_id, "title": row.title, "status": "failed",
                                   "reason": _join(chunk.error, chunk.note), "job_id": None} for row in chunk.rows}
        lookup: dict[str, Mapping[str, Any]] = {}
        for img in job.images or []:
            if isinstance(img, Mapping):
                key = _id_text(img.get("externalId") if img.get("externalId") is not None else img.get("id"))
                if key is not None:
                    lookup.setdefault(key, img)
        return {row.position: _result_row(row.external_id, row.title, job, lookup.get(row.external_id or ""),
                                          chunk.note) for row in chunk.rows}

    def __repr__(self) -> str:
        done = sum(j.finished for j in self._jobs)
        images = len(self._rows) if self._rows else sum(j.total or 0 for j in self._jobs)
        return f"<Livingdocs ImportJob: {len(self._jobs)} job(s), {done} finished, {images} image(s)>"


class _FollowBackoff(Backoff):
    """The core backoff (0.2 s growing by 1.35 to 0.3 s), except right after a poll that found a job just
    finished: then the next poll comes after ``follow`` seconds, since jobs started together end together
    (only the oldest unfinished window is asked, so this costs a few calls, not one per job)."""

    def __init__(self, job: "ImportJob", follow: float = 0.1) -> None:
        super().__init__(first=0.2, factor=1.35, max_interval=0.3)
        self.job, self.follow = job, follow

    def pauses(self) -> Any:
        regular = super().pauses()
        while True:
            if self.job._progressed and len(self.job._jobs) > 1:
                yield self.follow
            else:
                yield next(regular)


class _InboxWake:
    """The ``wake`` of the core wait: fires when the inbox holds a message for a job still pending."""

    def __init__(self, job: ImportJob, inbox: Any) -> None:
        self.job, self.inbox = job, inbox

    async def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            pending = {j.job_id for j in self.job._jobs if not j.finished}
            if pending & self.inbox.job_ids():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(0.02, left))


def _bar(total: int, enabled: bool) -> Any:
    if not enabled or total <= 0:
        return None
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="Livingdocs: import jobs", unit="image", leave=True, dynamic_ncols=True)
    except Exception:  # noqa: BLE001 - no progress bar is no reason to fail
        return None


# -- sending ---------------------------------------------------------------------------------------------
class _Stop(Exception):
    """A refusal that is the same for every chunk (credentials, scope, usage limit)."""

    def __init__(self, error: ToolkitError) -> None:
        super().__init__(str(error))
        self.error = error


def _chunk_keys(system_name: str, chunk: Chunk) -> None:
    payload = [r.payload for r in chunk.rows]
    digest = hashlib.sha256(json.dumps({"systemName": system_name, "images": payload}, sort_keys=True,
                                       ensure_ascii=False, default=str).encode("utf-8")).hexdigest()
    first = chunk.rows[0].external_id
    chunk.item = f"import chunk {first} (+{len(chunk.rows) - 1})"
    chunk.content_hash = digest


async def start_import(client: "AsyncClient", images: Any, system_name: str, webhook: Any = None,
                       context: Any = None, chunk_size: int = 100, journal: Any = None, *, concurrency: int = 4,
                       progress: bool = True) -> ImportJob:
    """See :meth:`toolkit.livingdocs.AsyncClient.import_images`."""
    system, webhook_url = prepare(system_name, webhook, context, chunk_size, concurrency)
    rows = check_images(images)
    good = [r for r in rows if r.payload is not None]
    chunks = [Chunk(i, good[s:s + chunk_size]) for i, s in enumerate(range(0, len(good), chunk_size))]
    for chunk in chunks:
        _chunk_keys(system, chunk)
    job = ImportJob(client, rows=rows, chunks=chunks, system_name=system)
    if not chunks:
        return job
    book: Journal | None = None
    journal_path = None
    if journal is not None:
        if isinstance(journal, Journal):
            book, journal_path = journal, journal.path
        else:
            journal_path = os.fspath(os.path.expanduser(journal))
            book = Journal(journal_path, service=SERVICE)
        client._journals.add(str(journal_path))
    dest = destination(SERVICE, client.base_url, api_version=client.api_version, system=system)
    run_id = book.start_run(SERVICE, dest, "image import", len(chunks)) if book is not None else None
    stop: dict[str, Any] = {"error": None}

    def payload(chunk: Chunk) -> dict[str, Any]:
        body: dict[str, Any] = {"systemName": system, "images": [r.payload for r in chunk.rows]}
        if webhook_url:
            body["webhook"] = webhook_url
        if context is not None:
            body["context"] = dict(context)
        return body

    def attach(chunk: Chunk, job_id: str, source: str = "this connection") -> None:
        chunk.job_id = job_id
        server = ServerJob(job_id, total=len(chunk.rows), chunk=chunk,
                           journal=(journal_path, dest) if book is not None else None)
        job._jobs.append(server)
        client._remember(job_id, system, len(chunk.rows), source=source, chunk=chunk.item)

    async def send(chunk: Chunk) -> dict[str, Any]:
        if stop["error"] is not None:
            chunk.error = f"not sent: {stop['error'].message}"
            chunk.outcome = "not sent"
            return _chunk_row(chunk)
        claim = None
        if book is not None:
            claim = book.claim(dest, chunk.item, chunk.content_hash, run_id=run_id, label=chunk.item)
            if claim.state == "busy":
                await book.wait_settled(dest, chunk.item, chunk.content_hash)
                claim = book.claim(dest, chunk.item, chunk.content_hash, run_id=run_id, label=chunk.item)
                if claim.state == "busy":
                    chunk.error = "not sent: another run on the same journal is still sending these rows; run again later"
                    chunk.outcome = "not sent"
                    return _chunk_row(chunk)
            if claim.state == "done":
                recorded = (claim.record or {}).get("remote_id")
                if recorded and await client._job_status(recorded, allow_missing=True) is not None:
                    chunk.note = f"re-attached to the job {recorded} recorded in the journal (not sent again)"
                    chunk.outcome = "re-attached"
                    attach(chunk, recorded, "journal")
                    return _chunk_row(chunk)
                book.finish(dest, chunk.item, chunk.content_hash, "failed", remote_id=recorded,
                            message="the recorded job is unknown to the service")
                claim = book.claim(dest, chunk.item, chunk.content_hash, run_id=run_id, label=chunk.item)
            if claim.needs_check:
                chunk.note = ("an earlier run sent these rows without getting the answer, so they were sent again; "
                              "images that run stored are reported skipped (already exists)")
        lost = 0
        while True:
            try:
                job_id = await client._post_import(payload(chunk))
            except TransportError as exc:
                kind = exc.reason
                if exc.delivery == MAYBE_DELIVERED and lost < LOST_RESENDS:
                    lost += 1
                    if book is not None:
                        book.finish(dest, chunk.item, chunk.content_hash, "in_doubt", message=exc.message)
                        book.claim(dest, chunk.item, chunk.content_hash, run_id=run_id, label=chunk.item)
                    log.info("Livingdocs: the answer to an import request was lost (%s); sending chunk %d again",
                             kind, chunk.index + 1)
                    chunk.note = ("the answer to the first import request was lost, so these rows were sent again "
                                  "(the service upserts by system name and id): an image the unseen first job "
                                  "stored is reported skipped (already exists)")
                    continue
                _record_failure(book, dest, chunk, exc, "in_doubt" if exc.delivery == MAYBE_DELIVERED else "failed")
                raise
            except (Unauthorized, Forbidden) as exc:
                _record_failure(book, dest, chunk, exc, "failed")
                stop["error"] = exc
                raise _Stop(exc) from None
            except RateLimited as exc:
                _record_failure(book, dest, chunk, exc, "failed")
                if isinstance(exc, QuotaExhausted):
                    stop["error"] = exc
                    raise _Stop(exc) from None
                raise
            except ToolkitError as exc:
                _record_failure(book, dest, chunk, exc, "failed")
                raise
            except BaseException:
                if book is not None:
                    book.finish(dest, chunk.item, chunk.content_hash, "in_doubt", message="interrupted")
                raise
            break
        if book is not None:
            book.finish(dest, chunk.item, chunk.content_hash, "done", http_status=200, remote_id=job_id,
                        message=f"import job {job_id}", extra={"job_id": job_id, "system_name": system,
                                                              "images": len(chunk.rows)})
        chunk.outcome = "sent"
        attach(chunk, job_id)
        return _chunk_row(chunk)

    def on_error(chunk: Chunk, exc: BaseException) -> dict[str, Any]:
        err = exc.error if isinstance(exc, _Stop) else exc
        text = err.message if isinstance(err, ToolkitError) else f"{type(err).__name__}: {redact(err)}"
        hint = getattr(err, "hint", None)
        chunk.error = f"not imported: {text}" + (f" — {hint}" if hint and is_transient(err) else "")
        chunk.outcome = "failed"
        return _chunk_row(chunk)

    def on_deferred(chunk: Chunk) -> dict[str, Any]:
        chunk.error = ("not sent: Livingdocs failed repeatedly for the chunks before, so the rest was not sent; "
                       "run the import again later" + (" with the same journal (nothing is sent twice)"
                                                        if book is not None else ""))
        chunk.outcome = "deferred"
        return _chunk_row(chunk)

    chunk_rows: list[dict[str, Any]] = []
    try:
        first = chunks[0]
        try:
            chunk_rows.append(await send(first))
        except _Stop as stopped:
            chunk_rows.append(on_error(first, stopped))
            for chunk in chunks[1:]:
                chunk.error = f"not sent: {stopped.error.message}"
                chunk.outcome = "not sent"
            raise stopped.error from None
        except ToolkitError as exc:
            chunk_rows.append(on_error(first, exc))
        rest = chunks[1:]
        if rest:
            if first.job_id is None and first.outcome == "failed":
                pass  # the breaker below starts counting with the first chunk's failure
            outcome = await run_bulk(rest, send, service=SERVICE, desc="sending import chunks",
                                     concurrency=concurrency, on_error=on_error, on_deferred=on_deferred,
                                     breaker=2 if first.job_id is None else 3, progress=progress and len(rest) > 20,
                                     summary_labels=("sent", "re-attached", "failed", "deferred"))
            chunk_rows += outcome.rows
        if stop["error"] is not None and not job._jobs:
            raise stop["error"]
        if stop["error"] is not None:
            log.warning("Livingdocs: %s — the chunks after it were not sent (see their rows)",
                        redact(stop["error"].message))
        job._jobs.sort(key=lambda j: j.chunk.index if j.chunk is not None else 0)
    finally:
        if book is not None:
            if run_id is not None:
                counts: dict[str, int] = {}
                for c in chunks:
                    counts[c.outcome] = counts.get(c.outcome, 0) + 1
                book.end_run(run_id, counts, f"Livingdocs: image import of {len(good)} images in {len(chunks)} "
                                             f"chunks", [_chunk_row(c) for c in chunks])
            if not isinstance(journal, Journal):
                book.close()
    return job


def _chunk_row(chunk: Chunk) -> dict[str, Any]:
    return {"chunk": chunk.index + 1, "images": len(chunk.rows), "job_id": chunk.job_id, "outcome": chunk.outcome,
            "message": chunk.error or chunk.note}


def _record_failure(book: Journal | None, dest: str, chunk: Chunk, exc: ToolkitError, state: str) -> None:
    if book is not None:
        book.finish(dest, chunk.item, chunk.content_hash, state, http_status=getattr(exc, "status", None),
                    message=exc.message)
