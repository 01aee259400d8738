"""The server jobs of an image import: :class:`ImportJob` over one server job per chunk, their status, the wait
and one result row per input image.

:func:`parse_status` reads the three documented status shapes; :meth:`ImportJob.wait` is the core job wait
(:class:`toolkit.core.jobs.Job`): it polls the oldest unfinished jobs first (a window at a time, stopping at
the first still running — jobs started later are rarely done earlier), with the core backoff capped at
0.3 s, so it returns soon after the last job finished and costs one or two status calls per job; with a
:class:`~toolkit.livingdocs.WebhookInbox` it polls a job as soon as its webhook arrived.
:meth:`ImportJob.results` is one row per input row, in input order (docs/livingdocs.md).

A status poll that fails (a 5xx or 429 after the client's own repeats, no answer) does not end the wait and
does not fail the job — only the service's word does that (``state: failed``, or an unknown id): the job is
asked again at the next round, with a growing pause after a round whose every poll failed, all within the
wait's ``timeout`` (a round of polls is cut off there). The failed polls are counted: the ``failed_polls``
column and ``attrs["failed_polls"]`` of the status frame, its summary line, and the :class:`JobTimeout` message.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from ..core.bulk import is_transient, progress_bar
from ..core.errors import JobTimeout, ToolkitError
from ..core.frames import frame
from ..core.jobs import Backoff, Job, JobState
from ..core.journal import Journal
from ..core.redact import get_logger, redact
from ..core.sync import sync_wrappable
from .interface import ImportClient
from .rows import SERVICE, Row, id_text, whole_number

__all__ = ["ImportJob", "ServerJob", "Chunk", "parse_status", "RESULT_SCHEMA", "STATUS_SCHEMA", "STATUSES"]

log = get_logger("toolkit.livingdocs.imports")

#: the vocabulary (docs/vocabulary.md): outcome (the image's ``status`` in the job), message (its ``reason``);
#: http_status is empty (Livingdocs reports each image in the job's status, not by an HTTP answer)
RESULT_SCHEMA = {"external_id": "string", "outcome": "string", "message": "string", "title": "string",
                 "media_id": "string", "url": "string", "width": "Int64", "height": "Int64",
                 "mime_type": "string", "job_id": "string", "http_status": "Int64"}
STATUS_SCHEMA = {"job_id": "string", "state": "string", "finished": "boolean", "started_at": "string",
                 "total": "Int64", "success": "Int64", "skipped": "Int64", "failed": "Int64",
                 # status polls of this job that got no usable answer (5xx, 429, none) and were asked again
                 "failed_polls": "Int64"}
#: the outcomes of a result row, in the order the summary names them
STATUSES = ("success", "skipped", "failed", "in_doubt", "invalid")
#: the pause after a round of status polls that all failed: FAILED_POLL_PAUSE s, doubled each such round up to
#: FAILED_POLL_PAUSE_MAX s (a round with one answer goes back to the usual pace)
FAILED_POLL_PAUSE = 0.5
FAILED_POLL_PAUSE_MAX = 10.0


@dataclass
class Chunk:
    """Up to ``chunk_size`` good rows sent in one import call (one server job): the journal's item."""

    index: int
    rows: list[Row]
    job_id: str | None = None
    #: why the chunk was not sent / failed to be sent (its rows say :attr:`status` with this reason)
    error: str | None = None
    #: the status of its rows while it has no job: ``failed`` (not stored), or ``in_doubt`` (may be stored)
    status: str = "failed"
    #: a note added to every row's reason (an answer lost and sent again, re-attached from the journal)
    note: str | None = None
    #: the chunk's images as the media library holds them, position → result fields, when its import call's
    #: answer was lost and a look in the library found them all as sent (no job is known; not sent again)
    found: dict[int, dict[str, Any]] | None = None
    #: why the media library could not be searched after a lost answer (the rows say in_doubt with it)
    look_error: str | None = None
    item: str = ""
    content_hash: str = ""
    outcome: str = "pending"


@dataclass
class ServerJob:
    """One job on the service (one chunk's import call), as last seen."""

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
    #: status polls that got no usable answer (asked again later)
    failed_polls: int = 0


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
        return {"external_id": ext, "title": title, "outcome": "failed", "message": _join(reason, note),
                "job_id": job.job_id}
    status = _image_status(img.get("status") or img.get("state"))
    image = img.get("image") if isinstance(img.get("image"), Mapping) else {}
    reason = img.get("reason")
    if status not in ("success", "skipped", "failed"):
        reason = _join(f"the service reported the status {status!r}", reason)
        status = "failed"
    return {"external_id": ext if ext is not None else id_text(img.get("externalId") or img.get("id")),
            "title": img.get("title") if img.get("title") not in (None, "") else title,
            "outcome": status, "message": _join(reason, note),
            "media_id": id_text(image.get("mediaId") if image.get("mediaId") is not None else image.get("id")),
            "url": image.get("url") or image.get("originalUrl"),
            "width": whole_number(image.get("width")), "height": whole_number(image.get("height")),
            "mime_type": image.get("mimeType") or image.get("mime_type"), "job_id": job.job_id}


def _join(*parts: Any) -> str | None:
    texts = [str(p) for p in parts if p not in (None, "")]
    return " — ".join(texts) if texts else None


# -- the job ---------------------------------------------------------------------------------------------
@sync_wrappable
class ImportJob(Job):
    """All server jobs of one ``import_images`` call (or of ``lv.job(id)``).

    ``ids`` — the server job ids; ``status()`` — one row per server job; ``wait(timeout=600, inbox=None)``
    — the core job wait; ``results()`` — one row per input image, in input order.
    """

    def __init__(self, client: ImportClient, *, rows: Sequence[Row] = (), chunks: Sequence[Chunk] = (),
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
        #: rounds of polls in a row in which every poll failed (the pause after them grows)
        self._failed_rounds = 0
        #: the monotonic time the running wait ends (a round of polls is cut off there); None: no wait
        self._deadline: float | None = None
        #: why the most recent failed status poll failed
        self._last_poll_error: str | None = None

    # -- public -----------------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """The server job ids, one per chunk sent (in chunk order)."""
        return [j.job_id for j in self._jobs]

    @property
    def finished(self) -> bool:
        """Whether every server job has finished (as last seen)."""
        return all(j.finished for j in self._jobs)

    def add_job(self, server: ServerJob) -> None:
        """Add a server job started (or re-attached) for one of this import's chunks; kept in chunk order."""
        bisect.insort(self._jobs, server, key=lambda j: j.chunk.index if j.chunk is not None else 0)

    @property
    def failed_polls(self) -> int:
        """Status polls (of every server job) that got no usable answer and were asked again."""
        return sum(j.failed_polls for j in self._jobs)

    def describe(self) -> str:
        if len(self._jobs) == 1:
            return f"the import job {self._jobs[0].job_id}"
        return f"the import ({len(self._jobs)} jobs)"

    def _failed_polls_text(self) -> str:
        """"N status polls failed and were asked again (the last: …)", or "" when none failed."""
        count = self.failed_polls
        if not count:
            return ""
        last = self._last_poll_error
        return (f"{count} status poll{'s' if count != 1 else ''} failed and {'were' if count != 1 else 'was'} "
                f"asked again" + (f" (the last: {last})" if last else ""))

    async def status(self) -> Any:
        """Ask the service about every unfinished job and return one row per server job.

        A poll that gets no usable answer (5xx, 429, none) leaves its job as last seen and is counted in
        ``failed_polls``; a refusal (the token, its scope) raises.

        Returns
        -------
        DataFrame
            job_id, state (``started`` / ``success`` / ``failed``), finished, started_at, total, success,
            skipped, failed (the counts are empty while a job runs), failed_polls. ``attrs["kind"] == "jobs"``,
            ``attrs["failed_polls"]`` the total, ``attrs["summary"]`` one line.
        """
        await self._ask([j for j in self._jobs if not j.finished])
        return self.status_frame()

    def status_frame(self) -> Any:
        """The last-known state of each server job (no call to the service)."""
        rows = [{"job_id": j.job_id, "state": j.state, "finished": j.finished, "started_at": j.started_at,
                 "total": j.total, **_counts(j), "failed_polls": j.failed_polls} for j in self._jobs]
        done = [j for j in self._jobs if j.finished]
        states = pd.Series([j.state for j in done], dtype="string").value_counts()
        summary = (f"Livingdocs: import jobs: {len(done)} of {len(self._jobs)} finished"
                   + (f" ({', '.join(f'{k} {int(v)}' for k, v in states.items())})" if len(done) else ""))
        polls = self._failed_polls_text()
        out = frame(rows, STATUS_SCHEMA, kind="jobs", service=SERVICE,
                    summary=summary + (f"; {polls}" if polls else ""))
        out.attrs["failed_polls"] = self.failed_polls
        return out

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

        A status poll that gets no usable answer (5xx or 429 after the client's repeats, no answer) is asked
        again at the next round (with a growing pause when every poll of a round failed): it neither ends the
        wait nor fails its job. The returned frame's ``failed_polls`` column, ``attrs["failed_polls"]`` and
        summary say how many failed.

        Raises
        ------
        JobTimeout
            Still running after ``timeout`` seconds (failing status polls included: the message says how many
            failed). A job that failed on the service does not raise: its rows in :meth:`results` say failed
            and name the job.
        Unauthorized, Forbidden
            The token is refused for the status calls (no use asking again).
        """
        self._inbox = inbox
        self._deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
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
            polls = self._failed_polls_text()
            raise JobTimeout(f"{self.describe()} is still running after {timeout:g} s "
                             f"({sum(j.finished for j in self._jobs)} of {len(self._jobs)} jobs finished"
                             + (f"; {polls}" if polls else "") + ")", service=SERVICE) from None
        finally:
            if bar is not None:
                bar.close()
            self._inbox = None
            self._deadline = None
            self.backoff = saved
        out = self.status_frame()
        if self.failed_polls:
            log.info("%s", out.attrs.get("summary"))
        return out

    async def results(self, timeout: float | None = 600) -> Any:
        """One row per input image, in input order (waits first while a job still runs).

        Returns
        -------
        DataFrame
            external_id, outcome (``success`` / ``skipped`` / ``failed`` / ``in_doubt`` / ``invalid``;
            ``in_doubt``: the import call's answer was lost, the images may be stored), message (the reason
            Livingdocs or the toolkit gives), title, media_id, url, width, height, mime_type, job_id and
            http_status (empty). ``outcome`` and ``message`` were ``status`` and ``reason`` before.
            ``attrs["kind"] == "assets"``; the counts are in ``attrs["summary"]``.
        """
        if not self.finished:
            await self.wait(timeout, progress=False)
        rows = self.result_rows()
        counts = pd.Series([r["outcome"] for r in rows], dtype="string").value_counts()
        parts = ", ".join(f"{k} {int(counts[k])}" for k in STATUSES if k in counts)
        summary = f"Livingdocs: image import: {len(rows)} image{'s' if len(rows) != 1 else ''}" + \
                  (f" — {parts}" if parts else "") + f" in {len(self._jobs)} job{'s' if len(self._jobs) != 1 else ''}"
        polls = self._failed_polls_text()
        if polls:
            summary += f"; {polls}"
        out = frame(rows, RESULT_SCHEMA, summary=summary, kind="assets", service=SERVICE)
        out.attrs["failed_polls"] = self.failed_polls
        return out

    # -- polling ----------------------------------------------------------------------------------------
    async def _ask(self, jobs: Sequence[ServerJob]) -> None:
        """Poll ``jobs`` at once; the polls still waiting for an answer when the running wait's time is up
        are cut off and counted as failed. A refusal (not a transient failure) is raised."""
        if not jobs:
            return
        tasks = [asyncio.ensure_future(self._refresh(j)) for j in jobs]
        left = None if self._deadline is None else max(0.1, self._deadline - time.monotonic())
        try:
            done, pending = await asyncio.wait(tasks, timeout=left)
        except BaseException:  # cancelled or interrupted: take the polls along
            for task in tasks:
                task.cancel()
            raise
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            for job, task in zip(jobs, tasks):
                if task in pending:
                    self._poll_failed(job, "no answer before the wait's timeout")
        errors = [t.exception() for t in tasks if t in done and t.exception() is not None]
        if errors:
            raise errors[0]

    def _poll_failed(self, job: ServerJob, why: str) -> None:
        job.failed_polls += 1
        self._last_poll_error = why
        log.info("Livingdocs: the status of the import job %s could not be read (%s); asking again", job.job_id, why)

    async def _refresh(self, job: ServerJob) -> None:
        if job.finished:
            return
        job.polls += 1
        self.status_calls += 1
        try:
            body = await self._client.job_status(job.job_id, allow_missing=True)
        except ToolkitError as exc:
            if not is_transient(exc):
                raise
            # no usable answer: the job is as last seen (only the service's word fails it); asked again
            self._poll_failed(job, redact(f"HTTP {exc.status}: {exc.message}" if exc.status else exc.message))
            return
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
        failed_before = self.failed_polls
        asked = 0
        if self._inbox is not None and pending:
            hooked = self._inbox.job_ids() if hasattr(self._inbox, "job_ids") else set()
            batch = [j for j in pending if j.job_id in hooked]
            await self._ask(batch)
            asked += len(batch)
            pending = [j for j in pending if not j.finished]
        for start in range(0, len(pending), self.window):
            batch = pending[start:start + self.window]
            await self._ask(batch)
            asked += len(batch)
            if not all(j.finished for j in batch):
                break
        # a round whose every poll failed: pause longer before the next (the service may be down a while)
        failed_now = self.failed_polls - failed_before
        self._failed_rounds = self._failed_rounds + 1 if asked and failed_now >= asked else 0
        retry_after = min(FAILED_POLL_PAUSE_MAX, FAILED_POLL_PAUSE * 2 ** (self._failed_rounds - 1)) \
            if self._failed_rounds else None
        done = [j for j in self._jobs if j.finished]
        self._progressed = len(self._jobs) - len(done) < before
        failed = [j for j in done if j.state == "failed"]
        finished = len(done) == len(self._jobs)
        state = (("failed" if len(failed) == len(done) else "partly failed") if failed else "success") \
            if finished else f"{len(done)}/{len(self._jobs)} jobs finished"
        return JobState(finished=finished, failed=bool(failed), state=state, retry_after=retry_after,
                        done=sum(j.total or 0 for j in done), total=sum(j.total or 0 for j in self._jobs))

    # -- results ----------------------------------------------------------------------------------------
    def result_rows(self) -> list[dict[str, Any]]:
        """The result rows as known now (no call to the service): one dict per input row, in input order;
        a row whose job has not finished yet says ``failed`` "did not report this image"."""
        if not self._rows:  # re-attached by id: the service's own order
            out = []
            for job in self._jobs:
                if job.images:
                    out += [_result_row(None, None, job, img, None) for img in job.images if isinstance(img, Mapping)]
                elif job.state == "failed":
                    out.append({"outcome": "failed", "message": job.reason, "job_id": job.job_id})
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
                out.append({"external_id": row.external_id, "title": row.title, "outcome": "invalid",
                            "message": row.reason, "job_id": None})
            else:
                out.append(by_row.get(row.position) or {"external_id": row.external_id, "title": row.title,
                                                        "outcome": "failed", "message": "not sent", "job_id": None})
        return out

    @staticmethod
    def _chunk_rows(chunk: Chunk, job: ServerJob | None) -> dict[int, dict[str, Any]]:
        if job is None and chunk.found is not None:  # the answer was lost; the library holds them as sent
            return {row.position: {"external_id": row.external_id, "title": row.title, "outcome": "success",
                                   **chunk.found.get(row.position, {}), "message": chunk.note, "job_id": None}
                    for row in chunk.rows}
        if job is None:
            return {row.position: {"external_id": row.external_id, "title": row.title, "outcome": chunk.status,
                                   "message": _join(chunk.error, chunk.note), "job_id": None} for row in chunk.rows}
        lookup: dict[str, Mapping[str, Any]] = {}
        for img in job.images or []:
            if isinstance(img, Mapping):
                key = id_text(img.get("externalId") if img.get("externalId") is not None else img.get("id"))
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
        return progress_bar(total, "Livingdocs: import jobs", unit="image")
    except Exception:  # noqa: BLE001 - no progress bar is no reason to fail
        return None

