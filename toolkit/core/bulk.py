"""The one bulk runner: bounded concurrency, progress, one result row per item, a circuit breaker.

``run_bulk`` feeds items to at most ``concurrency`` workers (the HTTP pool is sized to match, so never
more requests are in flight than the pool holds). Each item ends as exactly one row, in input order:

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

from .errors import (APIError, RateLimited, ServerError, ToolkitError, TransportError, ValidationError,
                     service_name)
from .redact import get_logger, redact

__all__ = ["run_bulk", "BulkOutcome", "is_transient", "failure", "check_concurrency", "ItemFailed"]

log = get_logger("toolkit.bulk")
T = TypeVar("T")

Row = dict[str, Any]


#: the largest concurrency a bulk call accepts (more only costs the client: see docs/architecture.md)
MAX_CONCURRENCY = 64


def check_concurrency(value: Any, service: str, *, maximum: int = MAX_CONCURRENCY, default: int = 8) -> int:
    """``value`` as an int when it is a whole number from 1 to ``maximum``; else a
    :class:`~toolkit.core.errors.ValidationError` naming ``concurrency`` and the service (before anything is
    read or sent). Every bulk call checks its ``concurrency=`` here."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"concurrency must be a whole number of at least 1, not {value!r}",
                              service=service, hint=f"Give e.g. concurrency={default} (how many requests run "
                                                    "at once).")
    number = int(value)
    if not 1 <= number <= maximum:
        raise ValidationError(f"concurrency must be from 1 to {maximum}, not {number}", service=service,
                              hint=f"Give e.g. concurrency={default} (how many requests run at once).")
    return number


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
    rows: list[Row]
    summary: str
    counts: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    breaker_open: bool = False


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency; keep a text fallback anyway
        return _TextProgress(total, desc)
    try:
        return tqdm(total=total, desc=desc, unit="item", leave=True, dynamic_ncols=True)
    except Exception:  # noqa: BLE001 - e.g. widgets front end unavailable: fall back to text
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
             stopped: bool) -> str:
    """The one-line summary of a bulk run: counts in the order of ``labels``, then the rest."""
    order = list(labels) + sorted(k for k in counts if k not in labels)
    parts = ", ".join(f"{k} {counts[k]}" for k in order if counts.get(k))
    summary = f"{service_name(service)}: {desc}: {total} item{'s' if total != 1 else ''}" \
              f"{' — ' + parts if parts else ''} in {seconds:.1f} s"
    if stopped:
        summary += " (stopped early after repeated failures: re-run later to process the deferred items)"
    return summary


async def run_bulk(
    items: Sequence[T] | Iterable[T],
    worker: Callable[[T], Awaitable[Row]],
    *,
    service: str,
    desc: str,
    concurrency: int = 8,
    on_error: Callable[[T, BaseException], Row],
    on_deferred: Callable[[T], Row],
    outcome_key: str = "outcome",
    breaker: int | None = 20,
    progress: bool = True,
    summary_labels: Sequence[str] = (),
) -> BulkOutcome:
    """Run ``worker`` over ``items``; see the module docstring. Rows come back in input order."""
    items = list(items)
    total = len(items)
    rows: list[Row | None] = [None] * total
    counts: Counter = Counter()
    consecutive = 0
    state = {"open": False}
    bar = _progress(total, f"{service_name(service)}: {desc}", progress and total > 0)
    started = time.perf_counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    def record(i: int, row: Row) -> None:
        rows[i] = row
        counts[str(row.get(outcome_key))] += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(", ".join(f"{k} {v}" for k, v in sorted(counts.items())), refresh=False)

    def count(transient: bool) -> None:
        """The circuit breaker: opens after ``breaker`` transient failures in a row."""
        nonlocal consecutive
        consecutive = consecutive + 1 if transient else 0
        if transient and breaker and consecutive >= breaker and not state["open"]:
            state["open"] = True
            log.warning("%s: %d transient failures in a row; deferring the remaining items",
                        service_name(service), consecutive)

    async def one(item: T) -> tuple[Row, bool]:
        """The item's row, and whether it is a transient failure."""
        try:
            return await worker(item), False
        except asyncio.CancelledError:
            raise
        except ItemFailed as failed:
            return failed.row, failed.transient
        except Exception as exc:  # noqa: BLE001 - every failure becomes a row
            if not isinstance(exc, ToolkitError):
                log.debug("%s: unexpected %s in bulk worker: %s", service_name(service), type(exc).__name__,
                          redact(exc))
            return on_error(item, exc), is_transient(exc)

    async def run_worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if state["open"]:
                record(i, on_deferred(items[i]))
                continue
            row, transient = await one(items[i])
            count(transient)
            record(i, row)

    try:
        n_workers = max(1, min(int(concurrency), total or 1))
        async with asyncio.TaskGroup() as tg:
            for _ in range(n_workers):
                tg.create_task(run_worker())
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    summary = _summary(service, desc, total, counts, summary_labels, seconds, state["open"])
    log.info("%s", summary)
    if progress:
        print(redact(summary), flush=True)
    return BulkOutcome(rows=[r for r in rows if r is not None], summary=summary, counts=counts, seconds=seconds,
                       breaker_open=state["open"])
