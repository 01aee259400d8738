"""The one write protocol of every bulk write: a journaled run, **claim → send → settle → finish**.

Every bulk write of the toolkit (Uddata+ photo uploads, Mediaflow file uploads, Boknett downloads,
Livingdocs import chunks) runs on :class:`WriteRun`. A service gives only what is its own:

* ``send()`` — store one item on the service (or on disk) and return :class:`Stored`;
* ``recognise(entry)`` — optional: look whether an earlier attempt already stored this very item (same
  object, same destination, same bytes) and return :class:`Stored`, or ``None`` when it is not there;
* ``keep(entry)`` — optional: whether a result the journal calls done is still there (a downloaded file that
  was deleted is fetched again).

The protocol owns the rest, the same way for all four:

1. **claim** the item in the journal (:mod:`toolkit.core.journal`, atomic across threads and kernels): an
   item already ``done`` is not sent again; one another live run is sending is waited for, then looked at
   again (``busy`` when it is still held);
2. an item an earlier run may have stored — its answer was lost (``in_doubt``), or the run died between
   "the service has it" and "the journal knows it" (a ``sending`` entry of a process that no longer runs) —
   is **recognised** first and not sent again when the service (or the folder) holds it;
3. **send**; a failure is **settled**: a refusal (4xx), a 429/503 or a request that surely never left is
   ``failed``; an answer that was lost or a 500/502/504 *may have arrived*, so the service is looked at
   once more (``recognise``) — found, it is stored; not found, failed; the look itself failing, the row is
   ``in_doubt`` ("may have been stored; a re-run checks before sending") and never claims "not sent";
4. **finish** in the journal (``done`` / ``failed`` / ``in_doubt``); an interruption (Ctrl-C, a cancelled
   cell) leaves ``in_doubt``; a killed process leaves ``sending``, which the next run treats the same way.

The run itself: :class:`WriteRun` opens the journal (``journal=None``: one in memory for this call only),
records the run for :func:`toolkit.runs` and its rows when it ends (in the journal; for a call without one,
in the toolkit's history journal ``runs.sqlite`` in its state folder, so every bulk write is listed), and first removes the temporaries that
killed runs left in the destination folder (:func:`toolkit.core.files.clean_temporaries`). A dry run
(``dry_run=True``) reads the journal and writes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from .bulk import BulkOutcome, is_transient
from .errors import may_have_arrived, service_name
from .files import clean_temporaries
from .journal import Journal
from .redact import get_logger, redact

__all__ = ["WriteRun", "Stored", "Settled", "SENT", "ALREADY", "FOUND", "BUSY", "FAILED", "IN_DOUBT",
           "in_doubt_message"]

log = get_logger("toolkit.writes")

#: :attr:`Settled.state`: stored by this run
SENT = "sent"
#: the journal says an earlier run stored it (not sent again)
ALREADY = "already"
#: an earlier attempt's result was recognised on the service (not sent again)
FOUND = "found"
#: another live run on the same journal still holds it (not sent)
BUSY = "busy"
#: not stored (refused, never sent, or looked for after an error and not there)
FAILED = "failed"
#: may have been stored: the answer was lost and the service could not be asked
IN_DOUBT = "in_doubt"

Entry = Mapping[str, Any]


@dataclass(frozen=True)
class Stored:
    """What the service holds for one item, as ``send()`` or ``recognise()`` returns it: the caller's own
    ``value`` (a row, a file's answer …) and what the journal keeps."""

    value: Any = None
    http_status: int | None = None
    remote_id: str | None = None
    message: str | None = None
    extra: Mapping[str, Any] | None = None


@dataclass
class Settled:
    """How one item ended (see the module docstring for the states)."""

    state: str
    stored: Stored | None = None
    entry: Entry | None = None
    error: BaseException | None = None
    #: FAILED after the service was looked at and does not hold it; FOUND after an error whose answer was lost
    checked: bool = False
    #: ALREADY because another run on the same journal stored it at the same time
    by_other_run: bool = False

    @property
    def transient(self) -> bool:
        """A failure the bulk runner's circuit breaker counts (no answer, 429, 5xx)."""
        return self.error is not None and is_transient(self.error)

    @property
    def when(self) -> str:
        """The date the journal entry was written (``YYYY-MM-DD``), for "uploaded on …" messages."""
        return str((self.entry or {}).get("updated") or "")[:10]


def in_doubt_message(service: str, error: BaseException | None) -> str:
    """The plain message of an ``in_doubt`` row."""
    why = getattr(error, "message", None) or (type(error).__name__ if error is not None else "interrupted")
    return (f"may have been stored: {service_name(service)} got the request but its answer was lost ({why}), "
            "and the service could not be asked; a re-run checks on the service before sending")


class WriteRun:
    """One journaled bulk write; ``with WriteRun(...) as run:`` (see the module docstring).

    ``journal`` is the journal file (``None``: a journal in memory for this call only); ``folder`` the local
    folder a write puts temporaries in (downloads), cleaned of what killed runs left."""

    def __init__(self, service: str, destination: str, kind: str, *, journal: "str | os.PathLike[str] | None",
                 items: int, dry_run: bool = False, folder: "str | os.PathLike[str] | None" = None) -> None:
        self.service, self.destination, self.kind = service, destination, kind
        self.dry_run = dry_run
        if folder is not None and not dry_run:
            removed = clean_temporaries(Path(folder))
            if removed:
                log.info("%s: removed %d temporary file(s) an interrupted run left", service_name(service), removed)
        self.journal = Journal(journal, readonly=dry_run, service=service)
        # the run's record: in the journal, or — a call without a journal of its own — in the toolkit's history
        # journal in its state folder, so toolkit.runs() lists every bulk write, journal given or not
        self.history = self.journal if journal is not None or dry_run else _history(service)
        self.run_id = self.history.start_run(service, destination, kind, items)

    def __enter__(self) -> "WriteRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.journal.close()
        if self.history is not self.journal:
            self.history.close()

    # -- one item ---------------------------------------------------------------------------------------
    def previous(self, item: str, content_hash: str) -> Entry | None:
        """The journal's entry of this item (a dry run says from it what would happen)."""
        return self.journal.get(self.destination, item, content_hash)

    def note(self, item: str, content_hash: str, **extra: Any) -> None:
        """Record, before the service is asked, what the next run needs to recognise this attempt's result if
        this process dies before the journal knows it (e.g. a download's reserved file name)."""
        self.journal.note(self.destination, item, content_hash, extra)

    def _claim(self, item: str, content_hash: str, label: str | None, redo: bool) -> Any:
        return self.journal.claim(self.destination, item, content_hash, run_id=self.run_id, label=label, redo=redo)

    async def _claimed(self, item: str, content_hash: str, label: str | None,
                       keep: Callable[[Entry], bool] | None) -> tuple[Any, Settled | None]:
        """Claim the item; a :class:`Settled` instead when it is not to be sent (already done, or busy)."""
        claim = self._claim(item, content_hash, label, False)
        by_other = False
        if claim.state == "busy":  # another run (thread or kernel) is sending it right now: wait for its end
            await self.journal.wait_settled(self.destination, item, content_hash)
            claim = self._claim(item, content_hash, label, False)
            by_other = True
            if claim.state == "busy":
                return claim, Settled(BUSY, entry=claim.record)
        if claim.state == "done":
            if keep is None or keep(claim.record or {}):
                return claim, Settled(ALREADY, entry=claim.record, by_other_run=by_other)
            claim = self._claim(item, content_hash, label, True)
        return claim, None

    async def write(self, item: str, content_hash: str, send: Callable[[], Awaitable[Stored]], *,
                    label: str | None = None, recognise: Callable[[Entry], Awaitable[Stored | None]] | None = None,
                    keep: Callable[[Entry], bool] | None = None) -> Settled:
        """Claim, send, settle and finish one item (see the module docstring). Never raises for a failure
        of the item (it is in :attr:`Settled.error`); an interruption is recorded ``in_doubt`` and re-raised."""
        if self.dry_run:
            raise RuntimeError("a dry run sends nothing: use previous()")
        claim, settled = await self._claimed(item, content_hash, label, keep)
        if settled is not None:
            return settled
        try:
            if claim.needs_check and recognise is not None:
                try:
                    found = await recognise(claim.record or {})
                except Exception as exc:  # noqa: BLE001 - cannot look: do not send blindly
                    return self._settle(item, content_hash, label, Settled(IN_DOUBT, error=exc))
                if found is not None:
                    return self._settle(item, content_hash, label, Settled(FOUND, stored=found))
            stored = await send()
        except Exception as exc:  # noqa: BLE001 - every failure of the item is settled into a state
            settled = await self._after_error(exc, self.previous(item, content_hash) or {}, recognise)
            return self._settle(item, content_hash, label, settled)
        except BaseException:  # interrupted (Ctrl-C, cancelled): it may have been sent
            self.journal.finish(self.destination, item, content_hash, "in_doubt", message="interrupted", label=label)
            raise
        return self._settle(item, content_hash, label, Settled(SENT, stored=stored))

    async def _after_error(self, exc: Exception, entry: Entry,
                           recognise: Callable[[Entry], Awaitable[Stored | None]] | None) -> Settled:
        if not may_have_arrived(exc):
            return Settled(FAILED, error=exc)
        if recognise is None:
            return Settled(IN_DOUBT, error=exc)
        try:
            found = await recognise(entry)
        except Exception:  # noqa: BLE001 - the look failed too: the truth is unknown
            return Settled(IN_DOUBT, error=exc)
        if found is not None:
            return Settled(FOUND, stored=found, error=exc, checked=True)
        return Settled(FAILED, error=exc, checked=True)

    def _settle(self, item: str, content_hash: str, label: str | None, settled: Settled) -> Settled:
        """Finish the journal entry as ``settled`` says."""
        stored, exc = settled.stored, settled.error
        if settled.state in (SENT, FOUND) and stored is not None:
            self.journal.finish(self.destination, item, content_hash, "done", http_status=stored.http_status,
                                message=stored.message, remote_id=stored.remote_id, label=label,
                                extra=stored.extra)
        else:
            # FAILED after a look that found nothing stays in_doubt in the journal: should the request still
            # land later, the next run looks again before sending
            state = "failed" if settled.state == FAILED and not settled.checked else "in_doubt"
            status = getattr(exc, "status", None)
            message = getattr(exc, "message", None) or (redact(exc) if exc is not None else None)
            self.journal.finish(self.destination, item, content_hash, state, http_status=status,
                                message=str(message) if message else None, label=label)
        settled.entry = self.previous(item, content_hash) or settled.entry
        return settled

    # -- the run ----------------------------------------------------------------------------------------
    def end(self, outcome: BulkOutcome) -> None:
        """Record the run's counts, summary and rows (``toolkit.runs()``, ``toolkit.run_rows()``)."""
        self.history.end_run(self.run_id, outcome.counts, outcome.summary, outcome.rows)


#: the file in the toolkit's state folder that records the runs of calls made without a journal
HISTORY_NAME = "runs.sqlite"


def _history(service: str) -> Journal:
    """The toolkit's history journal (``state_dir()/runs.sqlite``); one in memory where the state folder
    cannot be written (the run is then not listed, and nothing else changes)."""
    from .errors import ValidationError
    from .journal import state_dir

    try:
        folder = state_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return Journal(folder / HISTORY_NAME, service=service)
    except (OSError, ValidationError):
        return Journal(None, service=service)

