"""Adaptive concurrency: how many requests of bulk work go to one host at once, learnt from its answers.

``concurrency="auto"`` (the default of every bulk call) does not guess a number: each host of a connection
has an :class:`AdaptiveLimit`, and every request of an auto bulk call takes one of its slots. The limit moves
as TCP's congestion window does (AIMD: additive increase, multiplicative decrease), with the signals of
Netflix's concurrency-limits (a Vegas/gradient-like latency test):

* **increase** while answers come back near the base latency of their kind (the median of the last 5 within
  ``fast`` × base + ``slack``): +½ per answer (slow start, × 1.5 a round, also per fast answer before there
  are 5 for a median) until the first decrease, then +1 per round (``1/limit`` per answer) — only while the
  limit is in use (at least half of it in flight), so an idle connection does not grow a limit nobody tried;
* **halve** on an answer that asks to slow down — 429, 503, a ``Retry-After``, a rate-limit header with
  nothing remaining — and on a lost answer (a timeout, a broken connection, 504);
* **the gradient** when the service's latency climbs clearly above its base: the median of the last 5 answers
  of a kind (method, path with ids as ``*``, size class — a GET of a photo and the PUT of one are not compared
  with each other) above ``tolerance`` × the smallest seen recently (+ ``slack``, so loopback noise is no
  signal), answer after answer for 5 answers (a cold cache's few slow answers are no queue): × base/median
  (between 0.5 and 0.8), what the service serves at its base latency (Gradient2, TCP Vegas);
* **the client's own time is not the service's**: an answer's latency counts less the half of its flight
  the client's own event loop spent working (its thread's CPU time: a burst of items starting, an import, a
  client at the end of its CPU — a lower limit would not make those answers faster), and an answer on a
  connection opened for it (its time holds the connect) is no latency sample at all;
* **probe for the base** when a whole window of answers of a kind stayed above it (BBR's ProbeRTT): the
  limit sat where the service queues, and taking that window's latency as the base would let it creep up;
  the limit drops by base/latency and does not grow for a window, and only a second such window becomes the
  new base (the service itself got slower) — judged on the service's latency, less the client's own part;
* **a pace for a rate limit**: answers stay fast up to the 429, so the 429 is its only signal, and a limit of
  requests in flight is too coarse for a rate (at 20 ms, 2 in flight is 100/s and 3 is 150/s). At each 429
  (or a header saying nothing remains) the host's rate is estimated from what it let through in each
  interval (from the first request, then from the end of each pause, when its bucket has refilled: answers =
  burst + rate × seconds; one interval only bounds it from above, and the pace starts at ``guess`` × that
  bound; two of clearly different lengths give the slope), and the requests of auto bulk calls go out one turn
  apart at ``pace`` × that rate (a token bucket on the client's side, kept by the connection, so the next bulk
  call starts at the pace learnt). The pace only falls at a 429, never below half the host's best second; after
  ``probe`` seconds' worth of answers at the pace without one it rises by 5 %. After a pause the limit grows
  one step per ``hold`` of wall time, not per round;
* at most one decrease per round: answers to requests sent before the last decrease (they were in flight
  under the old limit) are counted but do not decrease it again;
* bounded by ``maximum`` (64, and never more than the connection's pool) and ``minimum`` (1).

The service's own words come first: ``Retry-After`` on a 429/503 and ``RateLimit-Remaining: 0`` /
``X-RateLimit-Remaining: 0`` with their ``-Reset`` (or the combined ``RateLimit`` header) pause every new
request to that host until then (at most ``pause_cap`` seconds), bulk or not.

One limit per host of a connection (:class:`HostLimits` on the :class:`~toolkit.core.http.HttpClient`), shared
by every bulk call running on it at once. Which requests are gated is said by the context: a bulk call in auto
mode opens a :class:`Share` (``run_bulk`` and ``bulk.Gate`` do), and the HTTP layer gates the requests made
inside it; a bulk call with a number N runs exactly N items at once and its requests are not gated. Waiting
requests are served in the order their items started, so an item that is half done (a GET answered, its
PUT waiting) finishes before new items start.

No well-kept Python library does this (aiolimiter and asyncio-throttle are fixed-rate leaky buckets); the
algorithm is small and the tests in ``tests/test_core_limits.py`` drive it with a fake clock.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import heapq
import itertools
import math
import re
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

__all__ = ["AUTO", "LimitPolicy", "AdaptiveLimit", "HostLimits", "Share", "Permit", "pause_of", "kind_of"]

#: the value of ``concurrency=`` that asks for the adaptive limit
AUTO = "auto"

#: answers that ask the client to slow down
SLOW_DOWN = frozenset({429, 503})
#: answers that say the request was lost on the way (a gateway gave up waiting)
LOST = frozenset({504})


@dataclass(frozen=True)
class LimitPolicy:
    """The limiter's constants (see the module docstring); ``clock`` is ``time.monotonic`` unless a test
    gives its own."""

    initial: int = 4
    minimum: int = 1
    maximum: int = 64
    backoff: float = 0.5          # on 429/503, Retry-After, nothing remaining, a lost answer
    latency_backoff: float = 0.8  # on latency clearly above its base: × base/median, at most this, at least backoff
    tolerance: float = 1.3        # median above tolerance × base (+ slack): too many in flight
    fast: float = 1.15            # median within fast × base (+ slack): room to grow
    slack: float = 0.003          # seconds: differences below this are noise, not a signal
    samples: int = 5              # answers of a kind in the median
    window: int = 250             # answers of a kind per window of the base (the smallest of two windows)
    pause_cap: float = 60.0       # the longest pause a header can impose
    admit: float = 2.0            # items in progress per slot of the limit (auto bulk calls)
    drift: float = 1.02           # a window whose lowest latency is above drift × base asks for a probe
    hold: float = 1.0             # after a pause the service asked for: seconds (at least) per step of growth
    pace: float = 0.9             # a rate-limited host is paced at this share of the rate it let through
    guess: float = 0.7            # ... or, before two intervals give the rate, at this share of the bound on it
    spread: float = 2.0           # slow start sends at most this × limit / base latency a second (no bursts)
    probe: float = 30.0           # paced this many seconds' worth of answers without a 429: the pace × 1.05
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)


DEFAULT_POLICY = LimitPolicy()

_share: contextvars.ContextVar["Share | None"] = contextvars.ContextVar("toolkit_limit_share", default=None)
_priority: contextvars.ContextVar[float | None] = contextvars.ContextVar("toolkit_limit_priority", default=None)
#: the time up to which this task has already waited (the retry's own sleep on a Retry-After serves the pause)
_served: contextvars.ContextVar[float] = contextvars.ContextVar("toolkit_limit_served", default=0.0)
_order = itertools.count()
_IDS = re.compile(r"[^/]*\d[^/]*")


def kind_of(method: str, path: str, size: int) -> str:
    """The class of a request whose latencies are compared with each other: method, path with every segment
    holding a digit as ``*`` (ids, CPR numbers: none is kept), and the size of both bodies in powers of 4
    from 16 KiB (a 5 MB upload is not compared with a 50 KB one)."""
    size_class = 0 if size <= 16384 else int(math.log(size / 16384, 4)) + 1
    return f"{method} {_IDS.sub('*', path)} {size_class}"


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None and value.strip() else None
    except ValueError:
        return None


def _reset_seconds(value: float | None, now: float) -> float | None:
    """A ``-Reset`` value in seconds from now: seconds, or (above 10⁹) a Unix time."""
    if value is None:
        return None
    return max(0.0, value - now) if value > 1e9 else max(0.0, value)


def pause_of(status: int, headers: Mapping[str, str], retry_after: float | None) -> tuple[bool, float | None]:
    """(whether the answer asks to slow down, seconds to pause the host or None) from its status, its
    ``Retry-After`` (parsed by the caller) and its rate-limit headers. ``headers`` is case-insensitive."""
    pause = retry_after if status in SLOW_DOWN else None
    remaining = _number(headers.get("ratelimit-remaining") or headers.get("x-ratelimit-remaining"))
    reset = _number(headers.get("ratelimit-reset") or headers.get("x-ratelimit-reset"))
    combined = headers.get("ratelimit")
    if combined and remaining is None:  # RateLimit: limit=10, remaining=0, reset=5  /  "p";r=0;t=5
        found = dict(re.findall(r"\b(remaining|reset|r|t)=(\d+(?:\.\d+)?)", combined))
        remaining = _number(found.get("remaining", found.get("r")))
        reset = _number(found.get("reset", found.get("t"))) if reset is None else reset
    if remaining is not None and remaining <= 0:
        wait = _reset_seconds(reset, time.time())
        if wait is not None:
            pause = wait if pause is None else max(pause, wait)
        return True, pause
    return status in SLOW_DOWN, pause


class _Latency:
    """The latencies of one kind of request: its base (the smallest of this and the last window) and its
    last few answers since the last decrease.

    A window whose every answer was above the base (``congested``) does not become the base at once: the
    limit sat where the service queues, and a base learnt from queued answers would let the limit creep up
    window after window. Such a window asks for a probe instead (as BBR's ProbeRTT does): the limit drops to
    what the service serves at its base for the next window; if that window too stays above the old base,
    the service itself got slower, and its latency is the new base. The limit does not grow while it probes."""

    __slots__ = ("recent", "net", "low", "net_low", "previous", "count", "probed", "fell", "over")

    def __init__(self, samples: int) -> None:
        self.recent: deque[float] = deque(maxlen=samples)
        self.net: deque[float] = deque(maxlen=samples)   # their latency less the client's expected part of it
        self.low, self.previous, self.count, self.probed = math.inf, math.inf, 0, False
        self.net_low = math.inf
        self.fell: float | None = None  # the median that made the limit fall on latency, until it grows again
        self.over = 0  # answers in a row whose median was above the tolerance

    def add(self, rtt: float, net: float, window: int, drift: float) -> float | None:
        """Count one answer (``net``: its latency less the client's own part); at the end of a window whose
        every answer's service latency stayed above ``drift`` × the base, that lowest latency (a probe)."""
        self.low = min(self.low, rtt)
        self.net_low = min(self.net_low, net)
        self.count += 1
        if self.count < window:
            return None
        low, net_low, base = self.low, self.net_low, self.base
        self.low, self.net_low, self.count = math.inf, math.inf, 0
        if not self.probed and math.isfinite(base) and net_low > drift * base:
            self.probed = True
            return net_low
        self.previous, self.probed = low, False
        return None

    @property
    def base(self) -> float:
        return min(self.low, self.previous)


@dataclass(eq=False)
class Permit:
    """One request's passage through a host's limit: ``slot`` when it holds one of its slots, ``epoch`` the
    limit's round when it was sent, ``busy`` whether the limit was in use then."""

    limit: "AdaptiveLimit"
    share: "Share | None"
    slot: bool = False
    epoch: int = 0
    busy: bool = False
    sent: float = 0.0


class AdaptiveLimit:
    """The adaptive concurrency limit of one host of one connection (see the module docstring). Safe to use
    from several event loops and threads: waiters are woken on their own loop."""

    def __init__(self, service: str, host: str, policy: LimitPolicy = DEFAULT_POLICY, *, ceiling: int = 64) -> None:
        self.service, self.host, self.policy = service, host, policy
        self._ceiling = max(1, int(ceiling))
        self._limit = float(min(policy.initial, self.maximum))
        self.in_flight = 0
        self.peak = 0               # the most requests ever in flight at once (tests read it)
        self.slowdowns = 0          # answers that asked to slow down, over the connection's life
        self.epoch = 0              # bumped by every decrease
        self.slow_start = True      # until the first decrease
        self.paused_until = 0.0     # monotonic time before which no new request goes out
        self.step = 0.0             # after a pause was asked for: seconds of wall time per +1 (0: per round)
        self.grown = 0.0            # monotonic time of the last increase (or of the pause's end)
        #: the pace of a rate-limited host: requests a second (None: not paced) and the next free send time
        self.rate: float | None = None
        self._next_send = 0.0
        # what the host let through in each interval (from the first request, then from the end of each pause
        # it asked for): [start, end (inf while open), answers that went well to requests sent in it]
        self._intervals: deque[list[float]] = deque(maxlen=6)
        self._kind = ""       # the kind of request whose base latency sizes the limit for the pace
        self._estimate = 0.0  # the time from which the last interval's answers are all in (0: none pending)
        self._at_429: float | None = None  # the pace that met the last 429
        self._second: deque[float] = deque()  # when the answers of the last second came
        self._best = 0  # the most answers that went well in one second, over the connection's life
        self._paced = 0  # answers that went well at the current pace
        self._kinds: dict[str, _Latency] = {}
        self._waiters: list[list[Any]] = []
        self._lock = threading.Lock()

    # -- the limit --------------------------------------------------------------------------------------
    @property
    def maximum(self) -> int:
        return max(self.policy.minimum, min(self.policy.maximum, self._ceiling))

    @property
    def limit(self) -> int:
        """The number of requests let through at once now."""
        return max(self.policy.minimum, min(int(self._limit), self.maximum))

    def set_ceiling(self, ceiling: int) -> None:
        """The connection's pool holds ``ceiling`` connections: the limit never goes above it."""
        with self._lock:
            self._ceiling = max(1, int(ceiling))
            self._limit = min(self._limit, float(self.maximum))
            self._wake()

    def _increase(self) -> None:
        if self.step:  # a service that asked for a pause grows by one per step of wall time, not per round
            now = self.policy.clock()
            if now < self.grown + self.step:
                return
            self.grown, step = now, 1.0
        else:
            step = 0.5 if self.slow_start else 1.0 / max(1.0, self._limit)
        self._limit = min(float(self.maximum), self._limit + step)
        self._wake()

    def _paused(self, pause: float) -> None:
        """The service asked for a pause: no growth before it ends, then one step per ``hold`` (or per pause,
        if longer) — a rate limit's bucket refills during the pause, and a limit growing per round would pass
        the rate again within a fraction of a second and be paused again. Each pause after the first (the
        limit grew past the rate again) doubles the time per step, up to ``pause_cap``."""
        now, cap = self.policy.clock(), self.policy.pause_cap
        if self.step and now >= self.paused_until:  # paused again after growing: grow half as often
            self.step = min(2 * self.step, cap)
        self.paused_until = max(self.paused_until, now + min(pause, cap))
        self.step = max(self.step, self.policy.hold, min(pause, cap))
        self.grown = max(self.grown, self.paused_until)

    def _decrease(self, factor: float) -> None:
        self._limit = max(float(self.policy.minimum), self._limit * factor)
        self.epoch += 1
        self.slow_start = False
        for stats in self._kinds.values():
            stats.recent.clear()
            stats.net.clear()
            stats.over = 0

    # -- slots ------------------------------------------------------------------------------------------
    async def acquire(self, share: "Share | None", priority: float | None = None) -> Permit:
        """A permit; with a ``share`` (an auto bulk call) it holds a slot, waiting for one in the order of
        ``priority`` (smaller first: the time the item started)."""
        permit = Permit(self, share, sent=self.policy.clock())
        if share is None:
            permit.epoch = self.epoch
            return permit
        share.used(self)
        with self._lock:
            if self.in_flight < self.limit and not self._waiters:
                self._grant(permit)
                return permit
            loop = asyncio.get_running_loop()
            entry = [time.monotonic() if priority is None else priority, next(_order), loop,
                     loop.create_future(), permit, False]
            heapq.heappush(self._waiters, entry)
        try:
            await entry[3]
        except asyncio.CancelledError:
            with self._lock:
                entry[5] = True  # cancelled: skipped when its turn comes
                if permit.slot:  # granted just before the cancel: give the slot back
                    self._release(permit)
            raise
        return permit

    def _grant(self, permit: Permit) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        permit.slot, permit.epoch = True, self.epoch
        permit.busy = 2 * self.in_flight >= self.limit

    def _wake(self) -> None:
        """Hand free slots to the first waiters (under the lock)."""
        while self._waiters and self.in_flight < self.limit:
            entry = heapq.heappop(self._waiters)
            if entry[5]:
                continue
            self._grant(entry[4])
            loop, future = entry[2], entry[3]
            if asyncio._get_running_loop() is loop:
                loop.call_soon(_resolve, future)
            else:
                loop.call_soon_threadsafe(_resolve, future)

    def _release(self, permit: Permit) -> None:
        if permit.slot:
            permit.slot = False
            self.in_flight -= 1
            self._wake()

    def release(self, permit: Permit) -> None:
        """Give the permit's slot back (once; a permit without a slot is nothing to give back)."""
        with self._lock:
            self._release(permit)

    # -- what the answers say ---------------------------------------------------------------------------
    def pause_left(self) -> float:
        """Seconds before a new request may go to this host (0: now)."""
        return max(0.0, self.paused_until - self.policy.clock())

    def answered(self, permit: Permit, status: int, headers: Mapping[str, str], rtt: float,
                 retry_after: float | None, kind: str, cap: float | None = None, busy: float = 0.0,
                 fresh: bool = False) -> None:
        """One answer: its headers may pause the host; with a slot, its status and latency move the limit.
        ``cap``: the longest pause the client honours (its retry policy's ``retry_after_cap``); ``busy``: the
        share of the answer's flight (``rtt``) the client's own event loop spent working (its CPU time);
        ``fresh``: the request opened its connection (its time holds the connect: no latency sample)."""
        slow, pause = pause_of(status, headers, retry_after)
        if pause is not None and cap is not None:
            pause = min(pause, cap)
        with self._lock:
            if pause is not None:
                self._paused(pause)
            if permit.share is None:
                return
            if not self._intervals:
                self._intervals.append([permit.sent, math.inf, 0.0])
            if slow:
                self.slowdowns += 1
                permit.share.slowdowns += 1
                self._signal(permit, self.policy.backoff)
                if status == 429 or status < 400:  # a rate limit (a 429, or a header: nothing remaining)
                    self._rate_limited(permit, kind)
            elif status in LOST:
                self._signal(permit, self.policy.backoff)
            else:
                permit.share.answered += status < 500
                now = self.policy.clock()
                self._second.append(now)
                while self._second[0] <= now - 1.0:
                    self._second.popleft()
                self._best = max(self._best, len(self._second))
                for interval in reversed(self._intervals):  # counted in the interval it was sent in
                    if interval[0] <= permit.sent <= interval[1]:
                        interval[2] += 1
                        break
                    if permit.sent > interval[1]:
                        break
                if self.rate is not None:
                    self._paced += 1
                    if self._paced >= self.policy.probe * self.rate:  # long without a 429: the pace goes up a little
                        self.rate *= 1.05
                        self._paced = 0
                if not fresh:
                    self._latency(permit, rtt, kind, busy)

    def lost(self, permit: Permit) -> None:
        """No answer (a timeout, a broken connection): as a slow-down, without counting as an answer."""
        if permit.share is not None:
            with self._lock:
                self._signal(permit, self.policy.backoff)

    def _rate_limited(self, permit: Permit, kind: str) -> None:
        """A rate limit answered 429 (or said nothing remains): the interval ends at this request's sending, the
        next starts when the pause ends (its bucket refilled), and the host is paced at ``pace`` × its rate —
        estimated now, and again once the answers of the requests sent in the interval are all in."""
        last = self._intervals[-1]
        if last[1] == math.inf and permit.sent >= last[0]:  # (a 429 to a request of an earlier interval: counted)
            last[1] = permit.sent
            self._intervals.append([max(self.policy.clock(), self.paused_until), math.inf, 0.0])
            self._estimate = max(self.policy.clock(), self.paused_until)
            self._at_429 = self.rate
        self._kind = kind
        self._learn_rate(final=False)

    def _learn_rate(self, final: bool = True) -> None:
        """Each interval let through its burst and then its rate until the 429: answers = burst + rate ×
        seconds. Two or more intervals of clearly different lengths give the rate as the slope between them
        (least squares), and the pace is ``pace`` × that. One interval (or intervals too alike for a slope)
        only bounds it from above (answers / seconds errs high by the burst): the pace is ``guess`` × that, or
        ``guess`` × the pace that met the 429 — a step down that also makes the next interval longer, so the
        slope can be read. At the 429 the last interval's answers are not all in: that estimate only lowers the
        pace for the pause; the one made when they are in (``final``) sets it, below the pace that met the 429
        (the rate is below it). The limit of requests in flight is kept at what the pace needs (twice the rate
        × the base latency), so the pace, not the limit, holds the rate. Intervals of fewer than 4 answers say
        nothing."""
        seen = [(end - start, got) for start, end, got in self._intervals
                if start < end < math.inf and got >= 4]
        if not seen:
            return
        paced = None
        times = [t for t, _ in seen]
        if len(seen) >= 2 and max(times) - min(times) >= 0.5 * min(times):
            mean_t = sum(times) / len(seen)
            mean_a = sum(a for _, a in seen) / len(seen)
            slope = sum((t - mean_t) * (a - mean_a) for t, a in seen) / sum((t - mean_t) ** 2 for t in times)
            if slope > 0:
                paced = self.policy.pace * slope
        if paced is None:
            paced = self.policy.guess * (seen[-1][1] / seen[-1][0] if self._at_429 is None else self._at_429)
        if final:
            paced = paced if self._at_429 is None else min(paced, self.policy.pace * self._at_429)
        elif self.rate is not None:
            paced = min(self.rate, paced)
        # never below half of what the host let through in its best second: 429s that come at any pace (a fault,
        # not a rate) must not ratchet the pace down to nothing; the limit's halving answers those
        self.rate = max(paced, 0.5 * self._best, 0.1)
        self._paced = 0
        stats = self._kinds.get(self._kind) or self._kinds.get(self._kind.split(" ", 1)[0])
        if stats is not None and math.isfinite(stats.base):  # enough in flight to keep the pace
            self._limit = min(float(self.maximum), max(self._limit, math.ceil(2 * self.rate * stats.base)))
        self._next_send = max(self._next_send, self.paused_until)

    def pace(self) -> float:
        """Seconds the next request waits for its turn at the host's pace (0: not paced or its turn is now);
        the turn is taken. Without a rate learnt, slow start is paced at ``spread`` × limit / base latency: a
        round's answers come at once and would send the next, half as large again, in one burst — at a rate
        limit all of it past the empty bucket answered 429 before the client reads the first 429; spread over
        the round, the first 429 pauses the rest. It never binds at the pace the limit itself allows."""
        with self._lock:
            if self._estimate and self.policy.clock() >= self._estimate:  # the last interval's answers are in
                self._estimate = 0.0
                self._learn_rate()
            rate = self.rate
            if rate is None:
                base = min((k.base for k in self._kinds.values()), default=math.inf) if self.slow_start else 0
                if not 0 < base < math.inf:
                    return 0.0
                rate = self.policy.spread * self._limit / base
            now = self.policy.clock()
            at = max(now, self._next_send)
            self._next_send = at + 1.0 / rate
            return at - now

    def _signal(self, permit: Permit, factor: float) -> None:
        if permit.epoch == self.epoch:  # one decrease per round
            self._decrease(factor)

    def _latency(self, permit: Permit, rtt: float, kind: str, busy: float = 0.0) -> None:
        stats = self._kinds.get(kind)
        if stats is None:
            if len(self._kinds) >= 256:  # a path with a new name per request: keep the table bounded
                kind = kind.split(" ", 1)[0]
                stats = self._kinds.get(kind)
            if stats is None:
                stats = self._kinds[kind] = _Latency(self.policy.samples)
        p = self.policy
        # an answer that came while the client's own loop was working waited for it, on average half of that
        # work: what is left is the service's (and the network's) latency, the signal of its queue
        net = rtt * (1 - busy / 2)
        probe = stats.add(rtt, net, p.window, p.drift)
        if probe is not None:  # a whole window queued: back to what the service serves at its base
            self._decrease(max(p.backoff, stats.base / max(probe, rtt)))
            return
        if permit.epoch != self.epoch:  # sent under the old limit: no signal about the new one
            return
        stats.recent.append(rtt)
        stats.net.append(net)
        grow = permit.busy and not stats.probed
        if len(stats.recent) < self.policy.samples:  # too few for a median: slow start goes on per fast answer
            if self.slow_start and grow and rtt <= p.fast * stats.base + p.slack:
                self._increase()
            return
        smooth, base = statistics.median(stats.recent), stats.base
        service = statistics.median(stats.net)
        if service > p.tolerance * base + p.slack:
            stats.over += 1
            if stats.over < p.samples:  # a few slow answers (a cold cache, a pause of the machine) are no queue
                return
            stats.over = 0
            if stats.fell is not None and service > 0.9 * stats.fell:
                # the last decrease did not lower it: the latency is not our requests queueing (the machine,
                # the network, a slower service) — it is the new base, and the limit does not fall again
                stats.low = stats.previous = service
                stats.fell = None
                return
            stats.fell = service  # the gradient: what was in flight × base / latency
            self._decrease(max(p.backoff, min(p.latency_backoff, base / service)))
        elif grow and smooth <= p.fast * base + p.slack:
            stats.fell, stats.over = None, 0
            self._increase()
        elif grow and self.slow_start and service <= p.fast * base + p.slack:
            stats.over = 0  # slower answers, but for the client's own work: slow start goes on
            self._increase()
        else:
            stats.over = 0

    def __repr__(self) -> str:
        return (f"<AdaptiveLimit {self.service} {self.host} limit={self.limit} in_flight={self.in_flight} "
                f"slowdowns={self.slowdowns}>")


def _resolve(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class HostLimits:
    """The limits of one connection, one per host (created on first use), all capped at the pool's size."""

    def __init__(self, service: str, policy: LimitPolicy = DEFAULT_POLICY, ceiling: int = 64) -> None:
        self.service, self.policy, self._ceiling = service, policy, ceiling
        self._hosts: dict[str, AdaptiveLimit] = {}
        self._lock = threading.Lock()

    def __getitem__(self, host: str) -> AdaptiveLimit:
        limit = self._hosts.get(host)
        if limit is None:
            with self._lock:
                limit = self._hosts.setdefault(host, AdaptiveLimit(self.service, host, self.policy,
                                                                   ceiling=self._ceiling))
        return limit

    def __iter__(self) -> Iterator[AdaptiveLimit]:
        return iter(list(self._hosts.values()))

    def set_ceiling(self, ceiling: int) -> None:
        self._ceiling = ceiling
        for limit in self:
            limit.set_ceiling(ceiling)

    async def enter(self, host: str, sleep: Callable[[float], Any]) -> Permit:
        """Before one request to ``host``: in an auto bulk call take a slot, and wait out a pause the service
        asked for (one sleep: ``sleep`` may be a test's that does not let time pass)."""
        limit = self[host]
        permit = await limit.acquire(_share.get(), _priority.get())
        try:
            for _ in range(3):  # a pause, then its turn at the pace; again if a pause came while it waited its turn
                wait = limit.pause_left()
                if wait > 0 and limit.paused_until > _served.get():
                    self.sleeping(wait)
                    await sleep(wait)
                wait = limit.pace() if permit.slot else 0.0  # a paced host: each request in its turn
                if wait <= 0:
                    break
                await sleep(wait)
                if limit.pause_left() <= 0:  # no pause asked for while it waited its turn
                    break
        except BaseException:
            limit.release(permit)
            raise
        permit.sent = limit.policy.clock()
        return permit

    def sleeping(self, seconds: float) -> None:
        """This task sleeps ``seconds`` now (the retry's backoff): a pause ending before then is served."""
        _served.set(max(_served.get(), self.policy.clock() + seconds))



class Share:
    """One auto bulk call: the limits its requests went through, how many answers asked it to slow down, and
    how many of its items may be in progress (``admit`` × the limit, so a slow service does not get 64 items
    claimed, read into memory and waiting)."""

    def __init__(self, policy: LimitPolicy = DEFAULT_POLICY, workers: int | None = None) -> None:
        self.policy = policy
        self.workers = workers or policy.maximum
        self.limits: dict[int, AdaptiveLimit] = {}
        self.slowdowns = 0
        self.answered = 0  # answers that neither asked to slow down nor failed on the service's side
        self.busy = 0
        self._waiting: collections.deque[asyncio.Future] = collections.deque()  # items in admit(), in order

    def used(self, limit: AdaptiveLimit) -> None:
        self.limits.setdefault(id(limit), limit)

    @property
    def limit(self) -> int | None:
        """The limit of the narrowest host this call's requests went to (None before the first request)."""
        return min((limit.limit for limit in self.limits.values()), default=None)

    def room(self) -> int:
        """Items that may be in progress: ``admit`` × the limit once the service has answered well, just the
        limit before that or after it asked to slow down (a service that is down then gets few items tried
        before the bulk call's circuit breaker stops it)."""
        limit = self.limit or self.policy.initial
        admit = self.policy.admit if self.answered and not self.slowdowns else 1.0
        return max(1, min(self.workers, int(admit * limit)))

    async def admit(self) -> None:
        """Wait until one more item may start, in the order the items asked (the bulk runner asks in input
        order). No item passes one that waits: an item may wait for an earlier one (the audit's duplicate
        waits for its first row), so a later item let in first could fill the room and wait forever."""
        if self.busy < self.room() and not self._waiting:
            self.busy += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn  # let in by _let_in, which counted it in busy
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # let in just before the cancel: pass the place on
                self.busy -= 1
            else:
                self._waiting.remove(turn)
            self._let_in()
            raise

    def _let_in(self) -> None:
        while self._waiting and self.busy < self.room():
            turn = self._waiting.popleft()
            if not turn.done():
                self.busy += 1
                turn.set_result(None)

    async def finished(self) -> None:
        """One item is done: let the next ones in (in order)."""
        self.busy -= 1
        self._let_in()

    def enter(self) -> tuple[contextvars.Token, contextvars.Token]:
        """Requests made in this context from now on are this call's, served in the order of now."""
        return _share.set(self), _priority.set(time.monotonic())


def leave(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    _priority.reset(tokens[1])
    _share.reset(tokens[0])


def ungated() -> contextvars.Token:
    """Requests made in this context from now on take no slot (a token fetch while a bulk call waits for it:
    the requests waiting for the token must not hold the slots it needs). Undo with :func:`regated`."""
    return _share.set(None)


def regated(token: contextvars.Token) -> None:
    _share.reset(token)


def sharing(share: "Share | None") -> contextvars.Token:
    """Tasks created in this context from now on belong to ``share`` (None: to no auto call)."""
    return _share.set(share)
