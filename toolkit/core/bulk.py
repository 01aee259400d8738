"""The one bulk runner: bounded concurrency, progress, one result row per item, a circuit breaker.

``run_bulk`` feeds items to at most ``concurrency`` workers (the HTTP pool is sized to match, so never
more requests are in flight than the pool holds). ``concurrency="auto"`` (the default of every bulk call)
runs up to 64 workers, each HTTP request takes a slot of its host's adaptive limit
(:mod:`toolkit.core.limits`), shared with every other auto bulk call on the connection, and at most twice
the limit of items are in progress; the progress bar shows the limit and the summary says where it settled
and how many answers asked to slow down. A number N runs exactly N items at once, as it says.
Each item ends as exactly one row, in input order:

* the worker's row when it succeeds,
* ``on_error(item, exc)`` when it raises a :class:`~toolkit.core.errors.ToolkitError` (or anything else),
* ``on_deferred(item)`` once the circuit breaker has opened: after ``breaker`` consecutive transient
  failures (no answer, 429, 5xx — after the retry policy gave up) the rest is not attempted, so a
  service that is down is not hammered; the analyst re-runs later.

A ``tqdm.auto`` progress bar (a widget in Jupyter, text in a terminal) counts outcomes; it never shows an
item's name (items may be CPR numbers). A one-line summary is printed at the end and returned.
Cancellation (Ctrl-C through the sync facade) cancels the workers; rows finished so far are lost to the
caller but anything that writes keeps its own journal.
"""

from __future__ import annotations

import asyncio
import numbers
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

from . import limits
from .errors import (APIError, RateLimited, ServerError, ToolkitError, TransportError, ValidationError,
                     service_name)
from .redact import get_logger, redact

__all__ = ["run_bulk", "progress_bar", "BulkOutcome", "is_transient", "failure", "check_concurrency", "ItemFailed",
           "AUTO", "Gate", "pool_size"]

log = get_logger("toolkit.bulk")
T = TypeVar("T")

Row = dict[str, Any]


#: the largest concurrency a bulk call accepts (more only costs the client: see docs/architecture.md)
MAX_CONCURRENCY = 64
#: ``concurrency="auto"``: the adaptive limit of :mod:`toolkit.core.limits`
AUTO = limits.AUTO


def check_concurrency(value: Any, service: str, *, maximum: int = MAX_CONCURRENCY, default: int = 8) -> "int | str":
    """``"auto"``, or ``value`` as an int when it is a whole number from 1 to ``maximum``; else a
    :class:`~toolkit.core.errors.ValidationError` naming ``concurrency`` and the service (before anything is
    read or sent). Every bulk call checks its ``concurrency=`` here."""
    hint = (f'Leave concurrency="auto" (the default: it adapts to what the service takes), or give a number of '
            f"requests at once, e.g. concurrency={default}.")
    if is_auto(value):
        return AUTO
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(f'concurrency must be "auto" or a whole number of at least 1, not {value!r}',
                              service=service, hint=hint)
    number = int(value)
    if not 1 <= number <= maximum:
        raise ValidationError(f"concurrency must be from 1 to {maximum}, not {number}", service=service, hint=hint)
    return number


def is_auto(concurrency: Any) -> bool:
    """Whether ``concurrency`` asks for the adaptive limit (``"auto"``, in any case)."""
    return isinstance(concurrency, str) and concurrency.strip().lower() == AUTO


def pool_size(concurrency: "int | str") -> int:
    """The connections a bulk call of this ``concurrency`` needs: the number, or 64 for ``"auto"``."""
    return MAX_CONCURRENCY if is_auto(concurrency) else max(1, int(concurrency))


class Gate:
    """The bound of a bulk call that gathers its items itself (lookups, previews): ``async with gate:`` around
    each item. A number N lets N items in at once; ``"auto"`` lets items in as the adaptive limit allows, and
    every request inside takes a slot of its host's limit (the same slots as every other auto bulk call on
    the connection)."""

    def __init__(self, concurrency: "int | str") -> None:
        self.share = limits.Share() if is_auto(concurrency) else None
        self._fixed = None if self.share is not None else asyncio.Semaphore(pool_size(concurrency))
        self._tokens: dict[Any, Any] = {}

    async def __aenter__(self) -> "Gate":
        if self.share is None:
            await self._fixed.acquire()  # type: ignore[union-attr]
            self._tokens[asyncio.current_task()] = limits.sharing(None)
            return self
        await self.share.admit()
        self._tokens[asyncio.current_task()] = self.share.enter()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        token = self._tokens.pop(asyncio.current_task())
        if self.share is None:
            limits.regated(token)
            self._fixed.release()  # type: ignore[union-attr]
            return
        limits.leave(token)
        await self.share.finished()


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (TransportError, RateLimited, ServerError))


#: one entry of a :func:`failure` table: an exception class or an HTTP status → (outcome, message)
FailureRule = tuple["type[BaseException] | int", str, str]


def failure(exc: BaseException, rules: Sequence[FailureRule], *, verb: str) -> tuple[str, int | None, str]:
    """``(outcome, http status, message)`` of the exception that ended one item of a bulk run — what each
    service's result row says. The first rule that matches (``isinstance`` for a class, the status for an
    int) gives the outcome and the message, in which ``{detail}`` is the service's own words and
    ``{message}`` the error's message; any other toolkit error is ``failed`` with its message and what to
    do, anything else ``failed`` as unexpected (redacted). ``verb`` completes "not …" ("uploaded")."""
    status = exc.status if isinstance(exc, APIError) else None
    for key, outcome, message in rules:
        hit = (status == key) if isinstance(key, int) else isinstance(exc, key)
        if hit:
            if "{" in message:
                detail = str(getattr(exc, "details", "") or getattr(exc, "message", "") or "")
                message = message.format(detail=detail, message=getattr(exc, "message", ""))
            return outcome, status if status is not None else (key if isinstance(key, int) else None), message
    if isinstance(exc, ToolkitError):
        hint = f" — {exc.hint}" if exc.hint else ""
        return "failed", status, f"not {verb}: {exc.message}{hint}"
    return "failed", None, f"not {verb}: unexpected {type(exc).__name__}: {redact(exc)}"


class ItemFailed(Exception):
    """A worker's way to hand back the row of a failed item *and* have the circuit breaker count it:
    ``raise ItemFailed(row, transient=True)`` (a failure that is no answer, a 429 or a 5xx)."""

    def __init__(self, row: "Row", *, transient: bool) -> None:
        super().__init__("item failed")
        self.row, self.transient = row, transient


@dataclass
class BulkOutcome:
    """What :func:`run_bulk` returns: the rows in input order, the summary line, the outcome counts, and for
    ``concurrency="auto"`` the limit it settled at (None: a number was given, or nothing was sent) and how
    many answers asked it to slow down."""

    rows: list[Row]
    summary: str
    counts: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    breaker_open: bool = False
    limit: int | None = None
    slowdowns: int = 0


#: the bar's text without the rate (``12.3item/s``), so that the counts (and the limit) fit beside the bar
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"


def progress_bar(total: int, desc: str, unit: str = "item", leave: bool = True) -> Any:
    """The toolkit's ``tqdm.auto`` progress bar (a widget in Jupyter, text in a terminal), shaped so that it
    reads in JupyterLab and VS Code at any width: the bar (at least 6em) and its counts on one row, never
    wrapped apart; where the row is too narrow for the description too, the description goes above the bar
    (tqdm's own widget wraps the counts under a squeezed bar). Raises what tqdm raises."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, bar_format=BAR_FORMAT)
    parts = getattr(getattr(bar, "container", None), "children", ())
    if len(parts) == 3:  # tqdm.notebook: an HBox of description, bar, counts
        label, meter, counts = parts
        # laid out from the right (counts, bar, description) and wrapped upwards: the description is the
        # one that leaves the row, and goes above it
        bar.container.layout.display, bar.container.layout.flex_flow = "flex", "row-reverse wrap-reverse"
        bar.container.layout.justify_content, bar.container.layout.align_items = "flex-end", "center"
        counts.layout.order, meter.layout.order, label.layout.order = "1", "2", "3"
        label.layout.flex, counts.layout.flex, counts.layout.min_width = "0 0 auto", "0 1 auto", "0"
        counts.layout.max_width = "calc(100% - 7em)"  # room for the bar on the counts' row, always
        meter.layout.flex, meter.layout.min_width = "1 1 6em", "6em"
        # tqdm's widget joins the words with non-breaking spaces: counts longer than the row (five outcomes
        # at 1000 px) may break after a comma, beside the bar, instead of running past the output's edge
        setter = bar.set_postfix_str
        bar.set_postfix_str = lambda s="", refresh=True: setter(str(s).replace(", ", ",\u200b "), refresh)
    return bar


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        return progress_bar(total, desc)
    except Exception:  # noqa: BLE001 - e.g. no tqdm or no widgets front end: fall back to text
        return _TextProgress(total, desc)


class _TextProgress:
    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n, self._last = total, desc, 0, 0.0

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last > 2 or self.n == self.total:
            self._last = now
            print(f"{self.desc}: {self.n}/{self.total}", flush=True)

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def _summary(service: str, desc: str, total: int, counts: Counter, labels: Sequence[str], seconds: float,
             stopped: bool, limit: int | None = None, slowdowns: int = 0) -> str:
    """The one-line summary of a bulk run: counts in the order of ``labels``, then the rest; for an auto run
    the limit it settled at and how many answers asked it to slow down."""
    order = list(labels) + sorted(k for k in counts if k not in labels)
    parts = ", ".join(f"{k} {counts[k]}" for k in order if counts.get(k))
    summary = f"{service_name(service)}: {desc}: {total} item{'s' if total != 1 else ''}" \
              f"{' — ' + parts if parts else ''} in {seconds:.1f} s"
    if limit is not None:
        asked = {0: "no answer asked", 1: "1 answer asked"}.get(slowdowns, f"{slowdowns} answers asked")
        summary += f"; concurrency settled at {limit} ({asked} to slow down)"
    if stopped:
        summary += " (stopped early after repeated failures: re-run later to process the deferred items)"
    return summary


class _Run:
    """One call of :func:`run_bulk`: its rows, counts, progress bar and circuit breaker."""

    def __init__(self, items: list[Any], worker: Callable[[Any], Awaitable[Row]], *, service: str, desc: str,
                 concurrency: "int | str", on_error: Callable[[Any, BaseException], Row],
                 on_deferred: Callable[[Any], Row], outcome_key: str, breaker: int | None, progress: bool) -> None:
        self.items, self.worker, self.service = items, worker, service
        self.on_error, self.on_deferred, self.outcome_key, self.breaker = on_error, on_deferred, outcome_key, breaker
        self.rows: list[Row | None] = [None] * len(items)
        self.counts: Counter = Counter()
        self.consecutive, self.open = 0, False
        self.share = limits.Share() if is_auto(concurrency) else None
        self.workers = max(1, min(pool_size(concurrency), len(items) or 1))
        self.bar = _progress(len(items), f"{service_name(service)}: {desc}", progress and len(items) > 0)
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(items)):
            self.queue.put_nowait(i)

    def record(self, i: int, row: Row) -> None:
        self.rows[i] = row
        self.counts[str(row.get(self.outcome_key))] += 1
        if self.bar is not None:
            self.bar.update(1)
            postfix = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
            limit = self.share.limit if self.share is not None else None
            self.bar.set_postfix_str(postfix + (f", limit {limit}" if limit is not None else ""), refresh=False)

    def count(self, transient: bool) -> None:
        """The circuit breaker: opens after ``breaker`` transient failures in a row."""
        self.consecutive = self.consecutive + 1 if transient else 0
        if transient and self.breaker and self.consecutive >= self.breaker and not self.open:
            self.open = True
            log.warning("%s: %d transient failures in a row; deferring the remaining items",
                        service_name(self.service), self.consecutive)

    async def one(self, item: Any) -> tuple[Row, bool]:
        """The item's row, and whether it is a transient failure."""
        try:
            return await self.worker(item), False
        except asyncio.CancelledError:
            raise
        except ItemFailed as failed:
            return failed.row, failed.transient
        except Exception as exc:  # noqa: BLE001 - every failure becomes a row
            if not isinstance(exc, ToolkitError):
                log.debug("%s: unexpected %s in bulk worker: %s", service_name(self.service), type(exc).__name__,
                          redact(exc))
            return self.on_error(item, exc), is_transient(exc)

    async def one_shared(self, item: Any) -> tuple[Row, bool] | None:
        """:meth:`one` as an item of the auto call: admitted as the limit allows, its requests take slots.
        None when the circuit breaker opened while it waited to be let in (it is deferred, never sent)."""
        share = self.share
        assert share is not None
        await share.admit()
        if self.open:
            await share.finished()
            return None
        tokens = share.enter()
        try:
            return await self.one(item)
        finally:
            limits.leave(tokens)
            await share.finished()

    async def run_worker(self) -> None:
        while True:
            try:
                i = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if self.open:
                self.record(i, self.on_deferred(self.items[i]))
                continue
            done = await (self.one(self.items[i]) if self.share is None else self.one_shared(self.items[i]))
            if done is None:
                self.record(i, self.on_deferred(self.items[i]))
                continue
            self.count(done[1])
            self.record(i, done[0])

    async def run(self) -> None:
        token = limits.sharing(None)  # a fixed run inside an auto one: its requests are not gated
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(self.workers):
                    tg.create_task(self.run_worker())
        finally:
            limits.regated(token)
            if self.bar is not None:
                self.bar.close()


async def run_bulk(
    items: Sequence[T] | Iterable[T],
    worker: Callable[[T], Awaitable[Row]],
    *,
    service: str,
    desc: str,
    concurrency: "int | str" = AUTO,
    on_error: Callable[[T, BaseException], Row],
    on_deferred: Callable[[T], Row],
    outcome_key: str = "outcome",
    breaker: int | None = 20,
    progress: bool = True,
    summary_labels: Sequence[str] = (),
) -> BulkOutcome:
    """Run ``worker`` over ``items``; see the module docstring. Rows come back in input order."""
    started = time.perf_counter()
    run = _Run(list(items), worker, service=service, desc=desc, concurrency=concurrency, on_error=on_error,
               on_deferred=on_deferred, outcome_key=outcome_key, breaker=breaker, progress=progress)
    await run.run()
    seconds = time.perf_counter() - started
    limit = run.share.limit if run.share is not None else None
    slowdowns = run.share.slowdowns if run.share is not None else 0
    summary = _summary(service, desc, len(run.items), run.counts, summary_labels, seconds, run.open, limit,
                       slowdowns)
    log.info("%s", summary)
    if progress:
        print(redact(summary), flush=True)
    return BulkOutcome(rows=[r for r in run.rows if r is not None], summary=summary, counts=run.counts,
                       seconds=seconds, breaker_open=run.open, limit=limit, slowdowns=slowdowns)
