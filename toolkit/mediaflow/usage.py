"""Telling Mediaflow where its files are used (usage reporting), exactly once, and reading it back.

``await client.report_usage(files, page_url, page_name)`` reports that the files are used on a web page, one
``POST files/multiple/usages`` per file, with the body Mediaflow's WordPress plugin sends
(``src/PingUsageController.php``; the same fields as Mediaflow's documentation page "Reporting usage")::

    {"id": [file id], "types": ["web"], "date": "YYYY-MM-DD", "contact": …, "amount": 1, "project": …,
     "removed": false, "web": {"page": page_url, "pageName": page_name}}

(Mediaflow's Wagtail integration sends the older ``POST file/{id}/usage`` with ``{contact, types, web, project,
date}``: the sandbox serves both, the client sends the one the documentation and the newer plugin use.)
``remove=True`` reports that the files are no longer used on the page (``"removed": true``).

Every report runs on the toolkit's one write protocol (:class:`toolkit.core.writes.WriteRun`: claim in the
journal, send, settle, finish). Mediaflow keeps every report it gets (a report is not idempotent), so the
journal is what keeps a re-run from reporting twice:

* **the journal** — by default ``mediaflow-usage.sqlite`` in the toolkit's state folder
  (``TOOLKIT_STATE_DIR``, else ``$XDG_STATE_HOME/toolkit`` or ``~/.local/state/toolkit``), so a re-run of the
  notebook tomorrow reports nothing twice either; ``journal=path`` for a file of your own; ``journal=None``
  for a journal of this call only (nothing is remembered: a second call reports again; the run is still
  listed in ``toolkit.runs()``). Destination = service + base URL + page URL, item = the file id, content =
  the usage types and whether it is a removal. A report after a removal of the same file and page (or a
  removal after a report) is sent again.
* **recognise** — an answer that was lost, a 500/502/504 or an interrupted run is settled by reading the file's
  usages (``GET file/{id}/usage?fields=any``, as Mediaflow's file selector reads them,
  ``fileselector-web`` ``src/js/modules/fileinfo.js``): a usage of the type on the page is there → reported;
  not there → failed (run again); the look failing too → ``in_doubt`` (a re-run looks before sending).

Rows: ``id, outcome, message, page_url, page_name, types, removed, http_status`` (``page_url`` shown through
the redactor). Outcomes: ``reported``, ``already_reported`` (the journal, or Mediaflow's list, says so: not
sent), ``would_report`` (dry run: nothing sent, not even a token request), ``failed`` (with Mediaflow's own
message: an unknown file, a refusal …), ``in_doubt`` (may have been recorded; a re-run looks first),
``deferred`` (not tried: Mediaflow failed repeatedly).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence

from ..core.bulk import Gate, ItemFailed, check_concurrency, failure, run_bulk
from ..core.errors import BadRequest, Forbidden, NotFound, Unauthorized, ValidationError
from ..core.frames import ToolkitFrame, frame
from ..core.journal import destination, state_dir
from ..core.writes import ALREADY, BUSY, FOUND, IN_DOUBT, SENT, Settled, Stored, WriteRun, in_doubt_message
from . import shapes
from .assets import array_of
from .downloads import as_file_id, file_ids

if TYPE_CHECKING:
    from .interface import UsageClient

__all__ = ["USAGE_SCHEMA", "USAGES_SCHEMA", "JOURNAL_NAME", "DEFAULT_JOURNAL", "LABELS", "report_usage", "usages",
           "journal_path"]

SERVICE = "mediaflow"
USAGE_SCHEMA = {"id": "Int64", "outcome": "string", "message": "string", "page_url": "string", "page_name": "string",
                "types": "string", "removed": "boolean", "http_status": "Int64"}
MASKED = {"page_url": "text"}
#: what ``usages()`` gives: one row per usage Mediaflow lists (``created``/``createdBy`` of a usage are when and
#: by whom it was reported, so they are ``reported_at``/``reported_by`` here, not an asset's ``created``)
USAGES_SCHEMA = {"file_id": "Int64", "id": "Int64", "type": "string", "url": "string", "page_name": "string",
                 "contact": "string", "project": "string", "publish_date": "string", "amount": "Int64",
                 "description": "string", "reported_at": "datetime", "reported_by": "string"}
JOURNAL_NAME = "mediaflow-usage.sqlite"
#: ``journal=`` default: :data:`JOURNAL_NAME` in the toolkit's state folder
DEFAULT_JOURNAL = "state folder"
LABELS = ("reported", "already_reported", "would_report", "in_doubt", "failed", "deferred")
#: who and what a report names when the caller does not say
DEFAULT_CONTACT = DEFAULT_PROJECT = "toolkit"

FAILURES = [
    (Unauthorized, "failed", "not reported: Mediaflow did not accept the client id, client secret or refresh "
                             "token ({detail}); check them and connect again"),
    (Forbidden, "failed", "not reported: Mediaflow says: {detail} (403); the integration may not report usage of "
                          "this file: ask the Mediaflow administrator"),
    (NotFound, "failed", "not reported: Mediaflow says: {detail} (404); check the file id"),
    (BadRequest, "failed", "not reported: Mediaflow rejected the report: {detail}"),
]


@dataclass(frozen=True)
class _Report:
    """What is reported: the page, the usage types and whether it is a removal."""

    page_url: str
    page_name: str
    types: tuple[str, ...]
    project: str
    contact: str
    remove: bool

    def content_hash(self, remove: bool | None = None) -> str:
        removed = self.remove if remove is None else remove
        key = {"types": sorted(t.lower() for t in self.types), "removed": removed}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def body(self, file_id: int) -> dict[str, Any]:
        body: dict[str, Any] = {"id": [file_id], "types": list(self.types),
                                "date": dt.datetime.now(dt.timezone.utc).date().isoformat(),
                                "contact": self.contact, "amount": 1, "project": self.project, "removed": self.remove}
        if "web" in (t.lower() for t in self.types):
            body["web"] = {"page": self.page_url, "pageName": self.page_name}
        return body

    def listed(self, items: Sequence[Any]) -> bool:
        """Whether Mediaflow's list of a file's usages holds this usage (every type, on this page)."""
        def has(kind: str) -> bool:
            return any(isinstance(u, dict) and str(u.get("type") or "").lower() == kind
                       and (kind != "web" or u.get("url") == self.page_url) for u in items)
        return all(has(t.lower()) for t in self.types)


def _text(value: Any, what: str, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be text, not {value!r}", service=SERVICE,
                              hint="Give e.g. page_url='https://www.example.se/nyheter/1', page_name='Nyheter'.")
    return value.strip()


def _types(types: Any) -> tuple[str, ...]:
    named = (types,) if isinstance(types, str) else tuple(types) if isinstance(types, (list, tuple)) else ()
    if not named or not all(isinstance(t, str) and t.strip() for t in named):
        raise ValidationError(f"types must name the usage types, e.g. ('web',), not {types!r}", service=SERVICE)
    return tuple(dict.fromkeys(t.strip().lower() for t in named))


def _report(page_url: Any, page_name: Any, project: Any, contact: Any, types: Any, remove: Any) -> _Report:
    kinds = _types(types)
    url = _text(page_url, "page_url")
    if "web" in kinds and not url.lower().startswith(("http://", "https://")):
        raise ValidationError(f"page_url must be the http(s) address of the page, not {page_url!r}", service=SERVICE)
    if not isinstance(remove, bool):
        raise ValidationError(f"remove must be True or False, not {remove!r}", service=SERVICE)
    return _Report(url, _text(page_name, "page_name"), kinds, _text(project, "project", DEFAULT_PROJECT),
                   _text(contact, "contact", DEFAULT_CONTACT), remove)


def journal_path(journal: Any) -> Path | None:
    """The journal file of ``journal=``: the default in the toolkit's state folder (made when missing), a
    path of the caller's, or None (a journal of this call only)."""
    if journal is None:
        return None
    if isinstance(journal, str) and journal == DEFAULT_JOURNAL:
        folder = state_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValidationError(f"the toolkit's state folder {folder} cannot be written ({exc})", service=SERVICE,
                                  hint="Give journal= a file path in a writable folder, or set "
                                       "TOOLKIT_STATE_DIR.") from None
        return folder / JOURNAL_NAME
    return Path(journal).expanduser()


class _Reporting:
    """One ``report_usage`` run: the rows of its files."""

    def __init__(self, client: "UsageClient", report: _Report, run: WriteRun) -> None:
        self.client, self.report, self.run = client, report, run

    def row(self, fid: int, outcome: str, message: str, status: int | None = None) -> dict[str, Any]:
        r = self.report
        return {"id": fid, "page_url": r.page_url, "page_name": r.page_name, "types": ",".join(r.types),
                "removed": r.remove, "outcome": outcome, "http_status": status, "message": message}

    def keep(self, entry: Mapping[str, Any]) -> bool:
        """A report the journal calls done still holds unless the opposite (a removal after it, or a report
        after a removal) was done later."""
        other = self.run.previous(str(entry.get("item")), self.report.content_hash(not self.report.remove))
        return not (other and other.get("state") == "done" and str(other.get("updated")) > str(entry.get("updated")))

    def recogniser(self, fid: int) -> Callable[[Any], Awaitable[Stored | None]]:
        async def recognise(entry: Mapping[str, Any]) -> Stored | None:
            response = await self.client.http.request("GET", f"file/{fid}/usage", params={"fields": "any"},
                                                      what=f"read the usages of file {fid}")
            listed = self.report.listed(array_of(response))
            if listed != self.report.remove:
                return Stored(message="Mediaflow lists the usage" if listed else "Mediaflow no longer lists it")
            return None
        return recognise

    async def send(self, fid: int) -> Stored:
        response = await self.client.http.request("POST", "files/multiple/usages", json=self.report.body(fid),
                                                  idempotent=False, what=f"report the usage of file {fid}")
        return Stored(http_status=response.status_code, message="reported")

    async def one(self, fid: int) -> dict[str, Any]:
        """The worker of the bulk run."""
        item, content = str(fid), self.report.content_hash()
        if self.run.dry_run:
            before = self.run.previous(item, content)
            if before and before.get("state") == "done" and self.keep(dict(before, item=item)):
                return self.row(fid, "already_reported", f"not reported again: reported on "
                                f"{str(before.get('updated'))[:10]} (see the journal)")
            return self.row(fid, "would_report", "would be reported; dry run: nothing sent")
        settled = await self.run.write(item, content, lambda: self.send(fid), label=item,
                                       recognise=self.recogniser(fid), keep=lambda e: self.keep(dict(e, item=item)))
        row = self.settled_row(fid, settled)
        if settled.transient:
            raise ItemFailed(row, transient=True)  # the circuit breaker counts it
        return row

    def settled_row(self, fid: int, settled: Settled) -> dict[str, Any]:
        """The row of one file from how the write protocol settled it."""
        done = "reported to Mediaflow: " + ("no longer used on the page" if self.report.remove else
                                            f"used on {self.report.page_name}")
        state, stored = settled.state, settled.stored
        if state == SENT and stored is not None:
            return self.row(fid, "reported", done, stored.http_status)
        if state == ALREADY:
            return self.row(fid, "already_reported", "not reported again: another run on the same journal reported "
                            "it meanwhile" if settled.by_other_run else
                            f"not reported again: reported on {settled.when} (see the journal)")
        if state == FOUND:
            if settled.checked:
                return self.row(fid, "reported", f"{done} (the answer was lost; {stored.message if stored else ''})")
            return self.row(fid, "already_reported", "not reported again: an earlier run sent it and "
                            f"{stored.message if stored else 'Mediaflow has it'}")
        if state == BUSY:
            return self.row(fid, "deferred", "not reported: another run on the same journal is reporting this file; "
                                             "run it again later")
        if state == IN_DOUBT:
            return self.row(fid, "in_doubt", in_doubt_message(SERVICE, settled.error),
                            getattr(settled.error, "status", None))
        outcome, status, message = failure(settled.error or RuntimeError("no answer"), FAILURES, verb="reported")
        if settled.checked:
            message += " (a look at the file's usages afterwards did not find it)"
        return self.row(fid, outcome, message, status)

    def on_error(self, fid: int, exc: BaseException) -> dict[str, Any]:
        outcome, status, message = failure(exc, FAILURES, verb="reported")
        return self.row(fid, outcome, message, status)

    def on_deferred(self, fid: int) -> dict[str, Any]:
        return self.row(fid, "deferred", "not reported: Mediaflow failed repeatedly, so the rest was stopped; run "
                                         "it again later (nothing is reported twice)")


async def report_usage(client: "UsageClient", files: Any, page_url: Any, page_name: Any, project: Any = None,
                       contact: Any = None, types: Any = ("web",), remove: Any = False, dry_run: bool = False,
                       journal: "str | os.PathLike[str] | None" = DEFAULT_JOURNAL, concurrency: "int | str" = "auto",
                       progress: bool = True) -> ToolkitFrame:
    """Report where the files are used, one row per file (see the module docstring). Raises ValidationError
    for a bad argument (before anything is sent) and Unauthorized when the credentials are refused."""
    report = _report(page_url, page_name, project, contact, types, remove)
    concurrency = check_concurrency(concurrency, SERVICE, default=4)
    ids = list(dict.fromkeys(as_file_id(v) for v in file_ids(files)[0]))  # a file given twice is one row
    path = journal_path(journal)
    if not dry_run and ids:
        await client.check_credentials()  # refused credentials: one answer, not one per file
        await client.ensure_pool(concurrency)
    dest = destination(SERVICE, client.base_url, page=report.page_url)
    with WriteRun(SERVICE, dest, "usage report", journal=path, items=len(ids), dry_run=dry_run) as run:
        job = _Reporting(client, report, run)
        outcome = await run_bulk(ids, job.one, service=SERVICE, concurrency=concurrency, on_error=job.on_error,
                                 on_deferred=job.on_deferred, progress=progress, summary_labels=LABELS,
                                 desc="usage report (dry run)" if dry_run else "usage report")
        run.end(outcome)
    return frame(outcome.rows, USAGE_SCHEMA, masked=MASKED, summary=outcome.summary, kind="assets", service=SERVICE)


async def usages(client: "UsageClient", files: Any, concurrency: "int | str" = "auto") -> ToolkitFrame:
    """Every usage Mediaflow lists for the files (``GET file/{id}/usage?fields=any``), one row per usage, in
    the order of the files; ``attrs["kind"] == "records"``. Raises NotFound for a file Mediaflow does not have."""
    concurrency = check_concurrency(concurrency, SERVICE)
    ids = list(dict.fromkeys(as_file_id(v) for v in file_ids(files)[0]))
    gate = Gate(concurrency)

    async def one(fid: int) -> list[dict[str, Any]]:
        async with gate:
            response = await client.http.request("GET", f"file/{fid}/usage", params={"fields": "any"},
                                                 what=f"read the usages of file {fid}")
        return [{"file_id": fid, "id": u.get("id"), "type": u.get("type"), "url": u.get("url"),
                 "page_name": u.get("pageName"), "contact": u.get("contact"), "project": u.get("project"),
                 "publish_date": u.get("publishDate"), "amount": u.get("amount"),
                 "description": u.get("description"), "reported_at": u.get("created"),
                 "reported_by": u.get("createdBy")} for u in array_of(response) if isinstance(u, dict)]

    rows = [r for batch in await asyncio.gather(*(one(fid) for fid in ids)) for r in batch]
    return frame(shapes.records(rows, USAGES_SCHEMA), USAGES_SCHEMA, kind="records", service=SERVICE)
