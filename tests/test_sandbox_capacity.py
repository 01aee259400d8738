"""The sandbox's service limits, which the client does not know: a capacity of K requests served at once
(the rest queued, every request answered) and a rate of R requests a second (the rest answered 429 with a
Retry-After the client can use); settable and clearable at run time, through ``start(faults=…)`` and
``toolkit sandbox --faults``; reported by ``Sandbox.stats()``. Behaviour only: no test here measures speed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import toolkit
from toolkit.core import sync
from toolkit.core.errors import ToolkitError
from toolkit.core.http import HttpClient, RetryPolicy
from toolkit.sandbox import server

from .conftest import read_line

DEADLINE = 30.0  # seconds any wait of these tests may take before it fails


class GateEmulator(server.Emulator):
    """Answers ``/hold`` only once the test opens its gate, counting how many it holds at once itself
    (independently of the middleware's stats); ``/hello`` answers at once."""

    name = "gate"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.gate = threading.Event()
        self.inside = 0
        self.most_inside = 0
        self.answered = 0

    def build_app(self) -> Starlette:
        async def hold(request: Any) -> JSONResponse:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            try:
                deadline = time.monotonic() + DEADLINE
                while not self.gate.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.005)
            finally:
                self.inside -= 1
            self.answered += 1
            return JSONResponse({"ok": True})

        async def hello(request: Any) -> JSONResponse:
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/hold", hold), Route("/hello", hello)])

    def credentials(self) -> dict[str, Any]:
        return {"base_url": self.base_url}


@pytest.fixture
def gate() -> Iterator[None]:
    server.EMULATORS["gate"] = f"{__name__}:GateEmulator"
    yield
    server.EMULATORS.pop("gate", None)


def wait_for(what: Callable[[], bool], message: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not what():
        assert time.monotonic() < deadline, f"not within {DEADLINE:.0f} s: {message}"
        time.sleep(0.01)


def send_at_once(url: str, path: str, n: int) -> "concurrent.futures.Future[Counter]":
    """``n`` GETs at once from another thread (no retries: each answer counts as it came); the statuses."""
    async def go() -> Counter:
        http = HttpClient("sandbox", url, retry=RetryPolicy(attempts=1), max_connections=n)
        try:
            answers = await asyncio.gather(*(http.request("GET", path, allow=(429, 503)) for _ in range(n)))
            return Counter(a.status_code for a in answers)
        finally:
            await http.aclose()

    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(sync.run, go())
    pool.shutdown(wait=False)
    return future


async def one_get(url: str, path: str, allow: tuple[int, ...] = (404, 429, 503)) -> Any:
    """One GET on a connection of its own, no retries: the toolkit's client pauses a host after a 429 or a
    RateLimit-Remaining of 0 (core/limits.py), and these tests probe the server, not that pause."""
    http = HttpClient("sandbox", url, retry=RetryPolicy(attempts=1))
    try:
        return await http.request("GET", path, allow=allow)
    finally:
        await http.aclose()


def statuses_one_by_one(url: str, n: int, path: str = "/hello") -> list[tuple[int, str | None]]:
    """``n`` GETs one after the other, each on its own connection, no retries: (status, Retry-After) of each."""
    async def go() -> list[tuple[int, str | None]]:
        answers = [await one_get(url, path) for _ in range(n)]
        return [(a.status_code, a.headers.get("retry-after")) for a in answers]

    return sync.run(go())


@pytest.mark.integration
@pytest.mark.parametrize("k", [1, 4])
def test_capacity_serves_at_most_k_at_once_and_answers_every_request(gate: None, k: int) -> None:
    with toolkit.sandbox.start(services=["gate"], faults={"capacity": k}, latency_ms=5) as sb:
        em = sb.emulator("gate")
        sent = send_at_once(sb.urls["gate"], "/hold", 3 * k)
        # all 3K arrived: K are being served (held by the gate), the other 2K wait in the queue
        wait_for(lambda: sb.stats("gate")["waiting_now"] == 2 * k and em.inside == k, "K served, 2K queued")
        assert sb.stats("gate")["served_now"] == k
        time.sleep(0.1)  # the queue stays put while the K are served: nobody is let in past the capacity
        assert em.inside == k and sb.stats("gate")["served_now"] == k
        em.gate.set()
        assert sent.result(DEADLINE) == {200: 3 * k}  # every request answered, none refused
        stats = sb.stats("gate")
    assert em.most_inside == k and em.answered == 3 * k
    assert stats["peak_served"] == k and stats["requests"] == 3 * k
    assert stats["queued"] == 2 * k and stats["peak_queued"] == 2 * k and stats["rate_limited"] == 0
    assert stats["served_now"] == 0 and stats["waiting_now"] == 0


@pytest.mark.integration
def test_capacity_set_raised_and_cleared_at_run_time(gate: None) -> None:
    with toolkit.sandbox.start(services=["gate"]) as sb:
        em = sb.emulator("gate")
        sb.set_faults("gate", capacity=2)
        sent = send_at_once(sb.urls["gate"], "/hold", 8)
        wait_for(lambda: sb.stats("gate")["waiting_now"] == 6, "6 of 8 queued under capacity 2")
        assert em.inside == 2
        sb.set_faults("gate", capacity=5)  # raised: three more go in at once, the gate still closed
        wait_for(lambda: em.inside == 5, "5 served after the capacity was raised to 5")
        assert sb.stats("gate")["waiting_now"] == 3
        sb.set_faults("gate")  # cleared: every waiting request goes in
        wait_for(lambda: em.inside == 8, "all 8 served once the capacity was cleared")
        assert sb.stats("gate")["waiting_now"] == 0 and sb.faults["gate"].capacity == 0
        em.gate.set()
        assert sent.result(DEADLINE) == {200: 8}
        assert sb.stats("gate")["peak_served"] == 8
        # stats start again from zero when asked to
        assert sb.stats("gate", reset=True)["requests"] == 8
        assert sb.stats("gate")["requests"] == 0 and sb.stats()["gate"]["queued"] == 0


@pytest.mark.integration
def test_rate_answers_429_with_retry_after_beyond_the_rate(gate: None) -> None:
    # one request every 5 s, a bucket of 2: two at once pass, then 429 until the bucket refills
    with toolkit.sandbox.start(services=["gate"], faults={"gate": {"rate": 0.2, "burst": 2}}) as sb:
        started = time.monotonic()
        answers = statuses_one_by_one(sb.urls["gate"], 6)
        elapsed = time.monotonic() - started
        stats = sb.stats("gate")
    ok = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] == 429]
    assert answers[:2] == [(200, None), (200, None)]
    assert len(ok) <= 2 + int(elapsed * 0.2) and len(ok) + len(refused) == 6 and refused
    for _, retry_after in refused:  # whole seconds (RFC 9110 delay-seconds), at most until a request is free
        assert retry_after is not None and retry_after.isdigit() and 1 <= int(retry_after) <= 5
    assert stats["rate_limited"] == len(refused) and stats["requests"] == 6 and stats["queued"] == 0


@pytest.mark.integration
def test_a_client_that_waits_the_retry_after_is_served(gate: None) -> None:
    with toolkit.sandbox.start(services=["gate"], faults={"rate": 0.5, "burst": 1}) as sb:
        http = HttpClient("sandbox", sb.urls["gate"], retry=RetryPolicy(attempts=3))

        async def twice() -> list[int]:
            try:
                return [(await http.request("GET", "/hello")).status_code for _ in range(2)]
            finally:
                await http.aclose()

        assert sync.run(twice()) == [200, 200]
        seen = [(r.status, r.fault) for r in sb.emulator("gate").requests]
        stats = sb.stats("gate")
    # the second request was refused once, and its repeat after Retry-After was served
    assert seen == [(200, None), (429, "rate"), (200, None)]
    assert stats["rate_limited"] == 1


@pytest.mark.integration
def test_rate_set_and_cleared_at_run_time_with_optional_headers(gate: None) -> None:
    with toolkit.sandbox.start(services=["gate"]) as sb:
        url = sb.urls["gate"]
        assert [s for s, _ in statuses_one_by_one(url, 4)] == [200] * 4
        sb.set_faults("gate", rate=0.2, burst=1)
        assert [s for s, _ in statuses_one_by_one(url, 3)] == [200, 429, 429]
        sb.set_faults("gate")  # cleared
        assert [s for s, _ in statuses_one_by_one(url, 4)] == [200] * 4
        assert sb.stats("gate")["rate_limited"] == 2

        async def headers(n: int) -> list[dict[str, str]]:
            return [dict((await one_get(url, "/hello", allow=(429,))).headers) for _ in range(n)]

        assert not any(k.startswith("ratelimit-") for h in sync.run(headers(2)) for k in h)  # off by default
        sb.set_faults("gate", rate=0.2, burst=2, rate_headers=True)
        first, second, third = sync.run(headers(3))
    assert first["ratelimit-limit"] == "0.2" and first["ratelimit-remaining"] == "1"
    assert second["ratelimit-remaining"] == "0" and int(second["ratelimit-reset"]) >= 1
    assert third["retry-after"].isdigit() and third["ratelimit-remaining"] == "0"


@pytest.mark.integration
def test_cli_faults_json_sets_a_rate_limit(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("toolkit")
    env = {**os.environ, "TOOLKIT_SANDBOX_FILE": str(tmp_path / "sandbox.json")}
    proc = subprocess.Popen([str(exe), "sandbox", "--json", "--services", "uddata",
                             "--faults", json.dumps({"uddata": {"rate": 0.2, "burst": 1}})],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = json.loads(read_line(proc))["urls"]["uddata"]
        answers = statuses_one_by_one(url, 2, path="/no-such-path")
    finally:
        proc.terminate()
        proc.wait(DEADLINE)
    assert answers[0][0] == 404 and answers[1][0] == 429 and answers[1][1].isdigit()


def test_unknown_or_bad_limits_are_plain_errors(gate: None) -> None:
    with pytest.raises(ToolkitError, match="unknown fault 'capacty'"):
        server.FaultConfig.parse({"capacty": 4})
    for bad in ({"capacity": -1}, {"capacity": 2.5}, {"rate": "fast"}, {"rate": -3}, {"burst": float("inf")}):
        with pytest.raises(ToolkitError, match=f"fault '{next(iter(bad))}' must be"):
            server.FaultConfig.parse(bad)
    assert server.FaultConfig.parse({"capacity": 4.0, "rate": "100"}) == server.FaultConfig(capacity=4, rate=100.0)
    with toolkit.sandbox.start(services=["gate"]) as sb:
        with pytest.raises(ToolkitError, match="unknown fault 'ratelimit'"):
            sb.set_faults("gate", ratelimit=10)
        with pytest.raises(ToolkitError, match="does not serve 'nosuch'"):
            sb.set_faults("nosuch", capacity=2)
        with pytest.raises(ToolkitError, match="does not serve 'nosuch'"):
            sb.stats("nosuch")
        assert sb.faults["gate"] == server.FaultConfig()  # nothing changed by the refused calls
