"""Asynchronous jobs of a service: ``status()`` and ``wait()`` — one mechanism for every service.

A service's job class subclasses :class:`Job` and implements :meth:`Job.poll` (one status call, or one
round of status calls for a job made of several server jobs) returning a :class:`JobState`.
:meth:`Job.wait` then

* polls with backoff: first after ``first`` seconds, each pause ``factor`` times the previous, at most
  ``max_interval`` seconds (so it returns within about ``max_interval`` of the job's end, and a job of a
  few seconds costs about a dozen status calls), honouring a ``Retry-After`` the service sent;
* can stop early on an event: ``wake`` is an ``asyncio.Event``, a ``threading.Event``, or any object with
  ``async wait(timeout) -> bool`` (a webhook inbox) — when it fires, the job is polled at once;
* calls ``callback(state)`` after every poll (a progress bar);
* raises :class:`~toolkit.core.errors.JobTimeout` after ``timeout`` seconds — the job keeps running on the
  service and ``wait()`` can be called again — and :class:`~toolkit.core.errors.JobFailed` when the job
  failed and ``raise_on_failure`` is set (else it returns the failed state: its results say why).

Modelled on Planet's ``OrdersClient.wait()``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .errors import JobFailed, JobTimeout

__all__ = ["Job", "JobState", "Backoff"]


@dataclass
class JobState:
    """What one poll found."""

    finished: bool
    failed: bool = False
    state: str = ""
    #: seconds the service asked to wait before the next poll (``Retry-After``), if any
    retry_after: float | None = None
    #: done / total work units, when the service says (for progress)
    done: int | None = None
    total: int | None = None
    detail: Any = None


@dataclass
class Backoff:
    """The pause schedule of :meth:`Job.wait`."""

    first: float = 0.2
    factor: float = 1.35
    max_interval: float = 1.0

    def pauses(self) -> "Any":
        pause = self.first
        while True:
            yield pause
            pause = min(self.max_interval, pause * self.factor)


class Job:
    """Base of a service's asynchronous job; see the module docstring."""

    def __init__(self, *, service: str, backoff: Backoff | None = None) -> None:
        self.service = service
        self.backoff = backoff or Backoff()
        self.polls = 0
        self.last: JobState | None = None

    async def poll(self) -> JobState:
        """One status check (implemented by each service)."""
        raise NotImplementedError

    def describe(self) -> str:
        """How messages name this job (e.g. ``"import job 25bzj8j"``)."""
        return "the job"

    async def wait(self, timeout: float | None = 600, *, callback: Callable[[JobState], Any] | None = None,
                   wake: Any = None, raise_on_failure: bool = False) -> JobState:
        """Wait until the job finished; see the module docstring."""
        started = time.monotonic()
        pauses = self.backoff.pauses()
        while True:
            state = await self.poll()
            self.polls += 1
            self.last = state
            if callback is not None:
                callback(state)
            if state.finished:
                if state.failed and raise_on_failure:
                    raise JobFailed(f"{self.describe()} failed ({state.state or 'failed'})", service=self.service)
                return state
            pause = next(pauses)
            if state.retry_after is not None:
                pause = max(pause, state.retry_after)
            if timeout is not None:
                left = timeout - (time.monotonic() - started)
                if left <= 0:
                    raise JobTimeout(f"{self.describe()} is still running after {timeout:g} s", service=self.service)
                pause = min(pause, left)
            await _sleep_or_wake(pause, wake)


async def _sleep_or_wake(seconds: float, wake: Any) -> bool:
    """Sleep ``seconds``, returning early (True) when ``wake`` fires."""
    if wake is None:
        await asyncio.sleep(seconds)
        return False
    if isinstance(wake, asyncio.Event):
        try:
            await asyncio.wait_for(wake.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False
    if isinstance(wake, threading.Event):
        return await asyncio.to_thread(wake.wait, seconds)
    waiter = getattr(wake, "wait", None)
    if waiter is not None and asyncio.iscoroutinefunction(waiter):
        return bool(await waiter(seconds))
    if waiter is not None:
        return bool(await asyncio.to_thread(waiter, seconds))
    await asyncio.sleep(seconds)
    return False
