"""concurrency="auto": the adaptive limit of each host (toolkit.core.limits) — no timings asserted.

The limit's moves are driven with explicit latencies and a fake clock; what a bulk call does with it is
counted at an in-process service (``canned()`` with an async handler that holds each request a moment)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from toolkit.core import bulk
from toolkit.core.bulk import check_concurrency, run_bulk
from toolkit.core.errors import ValidationError
from toolkit.core.http import Asked, HttpClient, RetryPolicy, canned, reply
from toolkit.core.limits import AdaptiveLimit, HostLimits, LimitPolicy, Share, kind_of, leave, pause_of

HOST = "svc.test"
BASE = f"https://{HOST}/api"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(**policy: Any) -> tuple[AdaptiveLimit, Clock, Share]:
    clock = Clock()
    return AdaptiveLimit("uddata", HOST, LimitPolicy(clock=clock, **policy)), clock, Share()


def answer(limit: AdaptiveLimit, share: Share, rtt: float, status: int = 200, n: int = 1,
           headers: dict[str, str] | None = None, retry_after: float | None = None, busy: float = 0.0,
           fresh: bool = False) -> None:
    """``n`` requests that hold a slot each and are answered after ``rtt`` seconds (``busy``: the share of it
    the client's own loop was working; ``fresh``: on connections opened for them)."""

    async def go() -> None:
        permits = [await limit.acquire(share) for _ in range(min(n, limit.limit))]
        for permit in permits:
            limit.answered(permit, status, headers or {}, rtt, retry_after, "GET /photos/* 0", busy=busy,
                           fresh=fresh)
            limit.release(permit)

    asyncio.run(go())


# -- the limit's moves, with explicit latencies ------------------------------------------------------------
def test_it_rises_while_answers_come_at_the_base_latency_and_never_passes_its_maximum() -> None:
    limit, _, share = limiter(initial=4, maximum=64)
    seen = [limit.limit]
    for _ in range(60):
        answer(limit, share, 0.020, n=64)
        seen.append(limit.limit)
    assert seen[0] == 4 and seen[-1] == 64  # grew to the maximum
    assert seen == sorted(seen) and max(seen) == 64  # only up, never above the maximum


def test_an_idle_limit_does_not_grow() -> None:
    limit, _, share = limiter(initial=8)
    for _ in range(50):
        answer(limit, share, 0.020, n=1)  # one request at a time: the limit of 8 was never in use
    assert limit.limit == 8


@pytest.mark.parametrize("status", [429, 503])
def test_it_halves_on_an_answer_that_asks_to_slow_down_once_per_round(status: int) -> None:
    limit, _, share = limiter(initial=16)

    async def go() -> None:
        permits = [await limit.acquire(share) for _ in range(16)]
        for permit in permits:  # all sent under the limit of 16: one decrease, every answer counted
            limit.answered(permit, status, {}, 0.02, None, "GET /x 0")
            limit.release(permit)

    asyncio.run(go())
    assert limit.limit == 8 and limit.slowdowns == 16 and share.slowdowns == 16
    answer(limit, share, 0.02, status=status, n=1)  # sent after the decrease: a new round, halved again
    assert limit.limit == 4


def test_it_falls_when_latency_climbs_clearly_above_its_base_and_noise_is_no_signal() -> None:
    limit, _, share = limiter(initial=20)
    for _ in range(3):
        answer(limit, share, 0.050, n=20)
    grown = limit.limit
    assert grown > 20
    for rtt in (0.060, 0.045, 0.070, 0.052, 0.058) * 4:  # jitter around the base: no decrease
        answer(limit, share, rtt, n=1)
    assert limit.limit == grown
    answer(limit, share, 0.250, n=10)  # five times the base, answer after answer: too many in flight at the service
    assert int(grown * 0.5) <= limit.limit <= int(grown * 0.8)  # × base / latency (the gradient), at most half
    limit2, _, share2 = limiter(initial=20)
    answer(limit2, share2, 0.050, n=20)
    before = limit2.limit
    answer(limit2, share2, 0.100, n=10)  # twice the base: back to what the service serves at its base
    assert limit2.limit == int(before * 0.5)
    assert limit.slowdowns == 0  # latency is not an answer asking to slow down


def test_latency_of_the_clients_own_work_or_of_opening_connections_does_not_lower_the_limit() -> None:
    """Answers that waited for the client's own loop (an import, a burst of items starting, a client at the end
    of its CPU) or that include opening their connection are no sign of a queue at the service: the limit does
    not fall (a lower limit would not make them faster), and slow start goes on. The same latency while the
    client was idle is the service queueing, and the limit falls."""
    limit, _, share = limiter(initial=8)
    answer(limit, share, 0.020, n=8)  # the base: 20 ms
    started = limit.limit
    answer(limit, share, 0.040, n=8, busy=0.95)  # twice the base, the client working through almost all of it
    answer(limit, share, 0.200, n=8, fresh=True)  # ten times, each opening its connection
    assert limit.limit >= started and limit.epoch == 0 and limit.slow_start
    answer(limit, share, 0.020, n=limit.limit)
    assert limit.limit > started  # slow start went on
    grown = limit.limit
    answer(limit, share, 0.040, n=3, busy=0.05)  # a few slow answers, the client idle (a cold cache): no queue
    answer(limit, share, 0.020, n=2)
    assert limit.limit >= grown and limit.epoch == 0
    grown = limit.limit
    answer(limit, share, 0.040, n=grown, busy=0.05)  # the same latency with the client idle: the service queues
    assert limit.limit < grown and limit.epoch == 1


def test_slow_start_spreads_its_sends_over_the_round_and_only_slow_start() -> None:
    """A round's answers come at once, and slow start would send the next round, half as large again, in one
    burst (at a rate limit all of it past an empty bucket is answered 429 before the first 429 is read). So
    while it lasts each request takes a turn, 1 / (2 × limit / base) apart; after the first decrease, and
    before any latency is known, nothing waits."""
    limit, clock, share = limiter(initial=8)
    assert limit.pace() == 0.0  # no base latency yet
    answer(limit, share, 0.020, n=8)
    turns = [limit.pace() for _ in range(4)]  # the clock stands still
    gap = 0.020 / (2 * limit._limit)
    assert turns[0] == 0.0 and all(abs(b - a - gap) < 1e-9 for a, b in zip(turns, turns[1:]))
    answer(limit, share, 0.02, status=503, n=1)  # the first decrease ends slow start
    assert not limit.slow_start and limit.rate is None
    clock.now += 1.0
    assert [limit.pace() for _ in range(4)] == [0.0] * 4


def test_latency_is_compared_within_one_kind_of_request() -> None:
    """A photo's GET (fast) and PUT (slow) of one item are not one signal: the PUT is not 'congestion'."""
    limit, _, share = limiter(initial=10)

    async def go() -> None:
        for _ in range(10):
            permits = [await limit.acquire(share) for _ in range(limit.limit)]
            for i, permit in enumerate(permits):
                slow = i % 2 == 1
                limit.answered(permit, 200, {}, 0.400 if slow else 0.010, None,
                               kind_of("PUT" if slow else "GET", f"/photos/{i:010d}", 3_000_000 if slow else 0))
                limit.release(permit)

    asyncio.run(go())
    assert limit.limit > 10 and limit.epoch == 0
    assert kind_of("GET", "/person/0101901234/photo", 0) == "GET /person/*/photo 0"  # no CPR kept


def test_rate_limit_headers_and_retry_after_pause_the_host() -> None:
    assert pause_of(429, {}, 7.0) == (True, 7.0)
    assert pause_of(200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "12"}, None) == (True, 12.0)
    assert pause_of(200, {"ratelimit-remaining": "3", "ratelimit-reset": "12"}, None) == (False, None)
    assert pause_of(200, {"ratelimit": "limit=10, remaining=0, reset=5"}, None) == (True, 5.0)
    assert pause_of(200, {"ratelimit": '"default";r=0;t=9'}, None) == (True, 9.0)
    slow, pause = pause_of(200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(2_000_000_000)}, None)
    assert slow and pause is not None and pause > 60  # a Unix time: seconds until then

    limit, clock, share = limiter(initial=8)
    answer(limit, share, 0.02, status=429, retry_after=30.0)
    assert limit.pause_left() == 30.0
    clock.now += 29
    assert limit.pause_left() == 1.0
    clock.now += 1
    answer(limit, share, 0.02, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "3600"})
    assert limit.pause_left() == 60.0  # capped: an hour's quota is the service's error to say, not a silent hour


def test_after_a_rate_limit_the_host_is_paced_below_the_rate_it_let_through() -> None:
    """A rate limit of 100/s with a bucket of 20: answers stay fast up to the 429, so the 429 is the only signal.
    The first interval (20 + 100 × 0.2 s let through) errs high by the bucket: the pace is 0.7 × it; the
    second, after the pause refilled the bucket, gives the rate as the slope between the two. The host is then
    paced at 0.9 × the rate — each request in its turn, 1/rate apart — with enough in flight for that pace; a
    long run at the pace without a 429 raises it a little."""
    limit, clock, share = limiter(initial=16)

    def interval(seconds: float, let_through: int) -> None:
        for _ in range(let_through):
            answer(limit, share, 0.020, n=1)
            clock.now += seconds / let_through
        answer(limit, share, 0.0, status=429, retry_after=1.0, n=1)

    interval(0.2, 40)
    # one interval only bounds the rate (200/s errs high by the bucket): 0.7 x that, and the next interval is longer
    assert limit.pause_left() == 1.0 and limit.rate is not None and limit.rate == pytest.approx(140, rel=0.05)
    clock.now += 1.0  # the pause is over: the bucket is full again
    interval(0.4, 60)
    assert limit.rate is not None and 85 <= limit.rate <= 95  # (60 - 40) / (0.4 - 0.2) = 100/s, × 0.9
    clock.now += 1.0
    turns = [limit.pace() for _ in range(5)]  # the clock stands still: each turn 1/rate after the last
    gaps = [b - a for a, b in zip(turns, turns[1:])]
    assert turns[0] == 0.0 and all(abs(g - 1 / limit.rate) < 1e-9 for g in gaps)
    assert limit.limit >= 4  # 2 × 90/s × 20 ms: the pace, not the limit, holds the rate
    paced = limit.rate
    for _ in range(int(30 * paced) + 1):  # 30 s worth of answers at the pace, no 429: a little faster
        answer(limit, share, 0.020, n=1)
    assert limit.rate == pytest.approx(paced * 1.05)


def test_on_a_capacity_service_the_limit_settles_near_its_capacity() -> None:
    """A service that serves K at once and queues the rest: latency = base × in flight / K beyond K. The limit
    grows while answers come at the base and falls once they queue; it stays between K and 1.5 K."""
    for capacity in (4, 12, 32):
        limit, clock, share = limiter(initial=4)
        seen = []
        for _ in range(400):
            n = limit.limit
            answer(limit, share, 0.020 * max(1.0, n / capacity), n=n)
            clock.now += 0.02
            seen.append(limit.limit)
        assert capacity <= min(seen[100:]) and max(seen[100:]) <= 1.5 * capacity, (capacity, seen[100:])
        assert limit.peak <= 1.5 * capacity + 2  # the slow start's overshoot included


def test_latency_that_a_decrease_does_not_lower_is_not_ours_and_the_limit_does_not_collapse() -> None:
    """A loaded machine or network: every answer takes twice the base whatever is in flight. The limit falls
    once; the latency did not fall with it, so it becomes the base — the limit does not halve down to 1."""
    limit, clock, share = limiter(initial=16)
    for _ in range(5):
        answer(limit, share, 0.020, n=16)
    grown = limit.limit
    for _ in range(40):
        answer(limit, share, 0.040, n=limit.limit)
        clock.now += 0.04
    assert limit.limit >= grown // 2 and limit.epoch == 1
    for _ in range(10):  # the load is gone: answers at the old base again, and the limit grows
        answer(limit, share, 0.020, n=limit.limit)
    assert limit.limit > grown // 2


# -- through the HTTP layer: what a service sees ------------------------------------------------------------
class Service:
    """An in-process service that holds each request ``hold`` seconds and counts how many it holds at once."""

    def __init__(self, hold: float = 0.01, answer: Any = None) -> None:
        self.hold, self.answer = hold, answer
        self.now = self.peak = 0
        self.calls: list[Asked] = []

    async def __call__(self, asked: Asked) -> Any:
        self.calls.append(asked)
        n = len(self.calls)
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.hold)
        finally:
            self.now -= 1
        got = self.answer(asked, n) if self.answer else None
        return got or reply(200, {"ok": True})


async def no_sleep(seconds: float) -> None:
    """The client's backoff without waiting (the tests assert no timing)."""


def client(service: Service, policy: LimitPolicy | None = None, sleep: Any = no_sleep) -> HttpClient:
    http = HttpClient("uddata", BASE, transport=canned(service), retry=RetryPolicy(), max_connections=64,
                      sleep=sleep)
    if policy is not None:
        http.limits = HostLimits("uddata", policy, ceiling=64)
    return http


def bulk_of(http: HttpClient, n: int, concurrency: Any, tag: str = "a", requests: int = 1, **kw: Any) -> Any:
    async def worker(i: int) -> dict:
        for _ in range(requests):
            await http.request("GET", f"/{tag}/{i}")
        return {"item": i, "outcome": "ok"}

    return run_bulk(range(n), worker, service="uddata", desc="check", concurrency=concurrency,
                    on_error=lambda i, e: {"item": i, "outcome": "failed"},
                    on_deferred=lambda i: {"item": i, "outcome": "deferred"}, progress=False, **kw)


def test_an_auto_bulk_call_never_has_more_in_flight_than_the_limit_allows() -> None:
    service = Service(hold=0.005)
    http = client(service, LimitPolicy(initial=6, maximum=6))
    out = asyncio.run(bulk_of(http, 120, "auto", requests=2))
    assert out.counts == {"ok": 120} and len(service.calls) == 240
    assert 2 <= service.peak <= 6  # without the gate 12 items (2 × the limit) would be at the service at once
    assert http.limits[HOST].peak <= 6 and http.limits[HOST].in_flight == 0  # every slot given back


def test_two_bulk_calls_on_one_connection_share_the_limit() -> None:
    service = Service(hold=0.01)
    http = client(service, LimitPolicy(initial=5, maximum=5))

    async def both() -> Any:
        return await asyncio.gather(bulk_of(http, 60, "auto", tag="a"), bulk_of(http, 60, "auto", tag="b"))

    first, second = asyncio.run(both())
    assert first.counts == {"ok": 60} and second.counts == {"ok": 60}
    tags = [call.path.split("/")[2] for call in service.calls]
    assert tags.index("b") < len(tags) - 1 - tags[::-1].index("a")  # they ran at the same time …
    assert service.peak <= 5  # … and their sum in flight stayed within the one limit (each alone: 5 of its own)


def test_a_number_means_exactly_that_many_in_flight_and_the_limit_is_not_in_the_way() -> None:
    service = Service(hold=0.02)
    http = client(service, LimitPolicy(initial=1, maximum=2))  # a limit would hold it to 2
    out = asyncio.run(bulk_of(http, 30, 3))
    assert out.counts == {"ok": 30}
    assert service.peak == 3
    assert http.limits[HOST].peak == 0 and out.limit is None and "concurrency settled" not in out.summary


def test_no_request_goes_to_the_host_before_the_reset_it_was_told() -> None:
    clock = Clock()
    arrivals: list[float] = []

    async def sleep(seconds: float) -> None:  # time passes only when the client sleeps
        clock.now += seconds

    def answer_(asked: Asked, n: int) -> Any:
        arrivals.append(clock.now)
        if n == 1:
            return reply(200, {"ok": True}, headers=[("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "20")])
        return None

    service = Service(hold=0.0, answer=answer_)
    http = client(service, LimitPolicy(initial=1, clock=clock), sleep=sleep)
    out = asyncio.run(bulk_of(http, 5, "auto"))
    assert out.counts == {"ok": 5} and out.slowdowns == 1
    assert arrivals[0] == 1000.0 and all(t >= 1020.0 for t in arrivals[1:])

    arrivals.clear()
    clock.now = 2000.0

    def busy(asked: Asked, n: int) -> Any:
        arrivals.append(clock.now)
        return reply(429, {"error": "slow down"}, headers=[("Retry-After", "15")]) if n == 6 else None

    service.answer = busy
    out = asyncio.run(bulk_of(http, 4, "auto", tag="b"))
    assert out.counts == {"ok": 4} and out.slowdowns == 1
    assert arrivals[0] == 2000.0 and all(t >= 2015.0 for t in arrivals[1:])


def test_429s_that_come_at_any_pace_do_not_slow_the_pace_to_nothing() -> None:
    """A service that answers some requests 429 whatever the rate (a fault, not a rate limit): each 429 would
    lower the pace again. The pace stays at least half of what the host let through in its best second (the
    limit's halving is the answer to those 429s), so a bulk call never crawls to a stop."""
    limit, clock, share = limiter(initial=8)
    for _ in range(100):  # 100 answers in a second
        answer(limit, share, 0.020, n=1)
        clock.now += 0.01
    for _ in range(50):  # then one 429 in every 10 answers, at whatever pace the client goes
        wait = 0.0
        for _ in range(10):
            wait += limit.pace()
            answer(limit, share, 0.020, n=1)
            clock.now += 0.01
        clock.now += wait
        answer(limit, share, 0.0, status=429, retry_after=0.01, n=1)
        clock.now += 0.01
    assert limit.rate is not None and limit.rate >= 50


def test_a_rate_limited_bulk_call_is_paced_and_a_fixed_one_is_not() -> None:
    """Through the HTTP layer: after 429s with Retry-After, the requests of an auto bulk call wait their turn
    at the pace learnt (sleeps shorter than the pause), while a fixed concurrency is never paced."""
    for concurrency, paced in (("auto", True), (4, False)):
        clock, sleeps = Clock(), []

        async def record(seconds: float) -> None:
            sleeps.append(seconds)
            clock.now += seconds

        def answer_for(asked: Asked, n: int) -> Any:
            clock.now += 0.01  # the service lets 100 a second through
            return reply(429, {"error": "slow"}, headers=[("Retry-After", "1")]) if n in (20, 45) else None

        http = client(Service(hold=0.002, answer=answer_for), LimitPolicy(clock=clock), sleep=record)
        out = asyncio.run(bulk_of(http, 80, concurrency))
        assert out.counts == {"ok": 80}
        assert (http.limits[HOST].rate is not None) == paced
        turns = [s for s in sleeps if 0 < s < 0.5]  # the pause is 1 s; a turn is 1/rate
        assert bool(turns) == paced, sleeps


def test_the_summary_and_the_outcome_say_the_settled_limit_and_the_slow_downs() -> None:
    def answer_(asked: Asked, n: int) -> Any:
        return reply(429, {"error": "slow down"}, headers=[("Retry-After", "0")]) if n <= 3 else None

    service = Service(hold=0.001, answer=answer_)
    http = client(service)
    out = asyncio.run(bulk_of(http, 40, "auto"))
    assert out.counts == {"ok": 40} and out.slowdowns == 3
    assert out.limit == http.limits[HOST].limit
    assert out.summary.endswith(f"; concurrency settled at {out.limit} (3 answers asked to slow down)")


def test_the_progress_bar_shows_the_current_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    postfixes: list[str] = []

    class Bar:
        def update(self, n: int = 1) -> None:
            pass

        def set_postfix_str(self, s: str, refresh: bool = True) -> None:
            postfixes.append(s)

        def close(self) -> None:
            pass

    monkeypatch.setattr(bulk, "_progress", lambda total, desc, enabled: Bar())
    http = client(Service(hold=0.001))
    asyncio.run(bulk_of(http, 10, "auto"))
    assert len(postfixes) == 10 and all(p.startswith("ok ") and ", limit " in p for p in postfixes)
    assert postfixes[-1].endswith(f"limit {http.limits[HOST].limit}")
    postfixes.clear()
    asyncio.run(bulk_of(http, 5, 2))
    assert postfixes and not any("limit" in p for p in postfixes)


@pytest.mark.integration
def test_a_streamed_answer_keeps_its_slot_until_it_is_closed(sb: Any) -> None:
    """Over loopback: a download's body is still coming from the service, so its request is still in flight."""
    http = HttpClient("uddata", sb.urls["uddata"], retry=RetryPolicy())
    host = http.url_for("/").split("/")[2].split(":")[0]

    async def go() -> tuple[int, int]:
        tokens = Share().enter()
        try:
            response = await http.request("GET", "/no/such/path", allow=(404,), stream=True)
        finally:
            leave(tokens)
        during = http.limits[host].in_flight
        await response.aclose()
        after = http.limits[host].in_flight
        await http.aclose()
        return during, after

    assert asyncio.run(go()) == (1, 0)


def test_auto_is_accepted_and_a_bad_value_names_the_service() -> None:
    assert check_concurrency("auto", "uddata") == "auto" and check_concurrency(12, "uddata") == 12
    for bad in ("fast", "8", 0, 65, 1.5, True, None):
        with pytest.raises(ValidationError) as info:
            check_concurrency(bad, "mediaflow")
        assert "concurrency" in str(info.value) and "Mediaflow" in str(info.value)
    assert bulk.pool_size("auto") == 64 and bulk.pool_size(3) == 3


@pytest.mark.integration
def test_a_rate_limited_service_over_loopback_every_item_answered_and_every_429_counted() -> None:
    """The sandbox answers beyond 30 requests a second with 429 + Retry-After (its capacity model): the auto
    audit (the default) waits as told, every number gets its answer, and the summary counts each 429."""
    import toolkit

    with toolkit.sandbox.start(services=["uddata"], seed=0) as sb:
        sb.set_faults("uddata", rate=30, burst=3, exempt=("/oauth",))
        cprs = sb.emulator("uddata").roster()[:20]
        with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
            sb.stats("uddata", reset=True)
            result = ud.audit(cprs, progress=False)
            stats = sb.stats("uddata")
    assert stats["rate_limited"] > 0  # the service did ask to slow down …
    assert set(result["outcome"]) <= {"with_photo", "no_photo"} and len(result) == 20  # … and every item answered
    limit = int(result.summary.split("concurrency settled at ")[1].split(" ")[0])
    assert 1 <= limit <= 64
    assert result.summary.endswith(f"({stats['rate_limited']} answers asked to slow down)")


def test_items_are_let_in_in_the_order_they_asked_and_none_passes_one_that_waits() -> None:
    """A later item let in before an earlier waiting one could fill the room with items that wait for the
    earlier ones (the audit's duplicates wait for their first row): a call hung before this order."""
    async def go() -> list[int]:
        share, order = Share(), []

        async def item(i: int) -> None:
            await share.admit()
            order.append(i)

        held = [asyncio.ensure_future(share.admit()) for _ in range(share.room())]  # the room full
        await asyncio.gather(*held)
        waiting = [asyncio.ensure_future(item(i)) for i in range(5)]
        await asyncio.sleep(0)
        await share.finished()           # one place frees: the first waiting item's, not a newcomer's
        waiting.append(asyncio.ensure_future(item(99)))  # asks while 1..4 wait: goes behind them
        await asyncio.sleep(0)
        for _ in range(5):
            await share.finished()
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*waiting), 5)
        return order

    assert asyncio.run(go()) == [0, 1, 2, 3, 4, 99]


def test_an_audit_whose_duplicates_come_before_their_first_rows_can_be_let_in_finishes(sb: Any) -> None:
    """Every item fails fast (a wrong secret) and the input repeats the roster: the run ends (within a
    deadline: it hung before items were let in in order), one row per input item."""
    import threading

    import toolkit

    emulator = sb.emulator("uddata")
    cprs = (emulator.roster() * 3)[:300]
    done: list[Any] = []
    with toolkit.uddata.connect(**{**sb.credentials("uddata"), "client_secret": "not-the-secret"}) as ud:
        worker = threading.Thread(target=lambda: done.append(ud.audit(cprs, progress=False)), daemon=True)
        worker.start()
        worker.join(120)
        assert done, "the audit did not finish within 120 s"
    result = done[0]
    assert len(result) == 300 and result["http_status"].dropna().eq(401).all()
