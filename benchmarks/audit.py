"""Benchmark: audit 2,000 CPR numbers at 20 ms sandbox latency, concurrency 16, side by side with its floors.

The sandbox runs in a separate process (``toolkit sandbox --json --latency-ms 20``) so that the server
and the client do not share one GIL. In 3 interleaved rounds (medians compared, every round printed):

* ``ud.audit(cprs, concurrency=16)`` — the toolkit (one row per number, validation, the 404 body read);
* the same 2,000 GETs through the client's HTTP layer alone (``HttpClient.request``: retry policy, error
  mapping, limiter hooks; no rows) at the same concurrency;
* the same 2,000 GETs through the bare httpx client underneath (``HttpClient.client``, the token's headers
  given once; no retry, no mapping) at the same concurrency — the floor of any httpx-based client on this
  machine at this latency.

Each is compared with the bound 2,000 × 20 ms / 16 = 2.5 s, with the client process's CPU time per request.
Then the cost of concurrency itself: 1,500 GETs at concurrency 16 and 64 (same latency, the bound 4 × lower
at 64), audit and bare httpx, CPU per request — with ``--profile`` also the share of the client's time in
httpcore's connection pool bookkeeping (cProfile). A sequential loop of ``get_image`` (a sample,
extrapolated) gives the speed-up. Goals: audit ≤ 1.1 × the bound, ≥ 12 × faster than the sequential loop.
And the floor under the bound: 200 GETs one at a time through the HTTP layer and through bare httpx give the
time of one request alone — the service's 20 ms plus the software's own per request (httpx, the sandbox's
uvicorn, loopback) — and N × that / 16 is the best any client at concurrency 16 can do here.

    .venv/bin/python benchmarks/audit.py [--profile]
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import toolkit
from toolkit.core.sync import run
from toolkit.sandbox.uddata_data import make_cpr

N, LATENCY_MS, CONCURRENCY, SAMPLE, ROUNDS = 2000, 20, 16, 200, 3
GOAL_BOUND, GOAL_SPEEDUP = 1.1, 12
GROWTH_N, GROWTH_CONCURRENCY = 1500, (16, 64)


def start_sandbox() -> tuple[subprocess.Popen, dict]:
    exe = Path(sys.executable).with_name("toolkit")
    proc = subprocess.Popen([str(exe), "sandbox", "--json", "--latency-ms", str(LATENCY_MS), "--services", "uddata"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, json.loads(line)


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process — the client's private event loop thread included)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def gets(ud: Any, cprs: list[str], concurrency: int, bare: bool) -> None:
    """The audit's GETs without the audit: through the HTTP layer, or through the bare httpx client."""
    http = ud.aio.http

    async def all_of_them() -> None:
        sem = asyncio.Semaphore(concurrency)
        headers = (await http.auth.headers(http))[0] if bare else None
        raw = http.bare_client(concurrency) if bare else None  # one httpx pool of that many connections

        async def one(cpr: str) -> None:
            async with sem:
                if raw is not None:
                    response = await raw.get(http.url_for(ud.aio.path(f"billeder/{cpr}")), headers=headers)
                else:
                    response = await http.request("GET", ud.aio.path(f"billeder/{cpr}"), allow=(404,))
                assert response.status_code in (200, 404), response.status_code

        await asyncio.gather(*(one(c) for c in cprs))
        if raw is not None:
            await raw.aclose()

    run(all_of_them())


def pool_share(fn: Callable[[], Any]) -> float:
    """The share of the client's time (cProfile, every thread of the private loop) in httpcore's pool
    bookkeeping (``AsyncConnectionPool._assign_requests_to_connections``)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    run(_enable(profile))
    try:
        fn()
    finally:
        run(_disable(profile))
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = max((v[3] for v in stats.values()), default=0.0)
    pool = sum(v[3] for k, v in stats.items() if k[2] == "_assign_requests_to_connections")
    return pool / total if total else float("nan")


async def _enable(profile: Any) -> None:
    profile.enable()


async def _disable(profile: Any) -> None:
    profile.disable()


def main() -> None:
    proc, info = start_sandbox()
    try:
        creds = info["credentials"]["uddata"]
        ud = toolkit.uddata.connect(**creds)
        roster = ud.students()["cpr"].tolist()
        rng = random.Random(1)
        import datetime as dt

        cprs = list(roster)
        while len(cprs) < N:  # not enrolled → 404, same latency
            cprs.append(make_cpr(rng, dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(3000)), rng.random() < .5))
        ud.audit(cprs[:50], concurrency=CONCURRENCY, progress=False)  # warm up the pool and the token
        bound = N * LATENCY_MS / 1000 / CONCURRENCY
        rounds: dict[str, list[tuple[float, float]]] = {"audit": [], "layer": [], "bare": []}
        for _ in range(ROUNDS):
            rounds["audit"].append(timed(lambda: ud.audit(cprs, concurrency=CONCURRENCY, progress=False)))
            rounds["layer"].append(timed(lambda: gets(ud, cprs, CONCURRENCY, bare=False)))
            rounds["bare"].append(timed(lambda: gets(ud, cprs, CONCURRENCY, bare=True)))
        started = time.perf_counter()
        for c in cprs[:SAMPLE]:
            ud.get_image(c)
        seq_s = (time.perf_counter() - started) * N / SAMPLE
        # one request alone (nothing else in flight): the service's 20 ms + the software's own time per request
        alone = {bare: statistics.median(timed(lambda: gets(ud, cprs[:SAMPLE], 1, bare=bare))[0] for _ in range(3))
                 / SAMPLE for bare in (False, True)}
        med = {k: statistics.median(w for w, _ in v) for k, v in rounds.items()}
        print(f"audit of {N} CPRs, {LATENCY_MS} ms latency, concurrency {CONCURRENCY}; bound {N} x {LATENCY_MS} ms / "
              f"{CONCURRENCY} = {bound:.2f} s (median of {ROUNDS} interleaved rounds; the machine's other load adds noise)")
        names = {"audit": "ud.audit", "layer": "HTTP layer only", "bare": "bare httpx client"}
        for key, label in names.items():
            walls = ", ".join(f"{w:.2f}" for w, _ in rounds[key])
            cpu = statistics.median(c for _, c in rounds[key]) / N * 1e6
            print(f"  {label:18s} {med[key]:5.2f} s = {med[key] / bound:4.2f}x the bound  ({walls}; client CPU "
                  f"{cpu:4.0f} us/request)")
        floor = N * alone[False] / CONCURRENCY
        print(f"  one request alone: {alone[False] * 1e3:.1f} ms through the HTTP layer, {alone[True] * 1e3:.1f} ms "
              f"through bare httpx, for a service that takes {LATENCY_MS} ms (the rest is httpx's and the sandbox's "
              f"uvicorn's own time per request and loopback); N x that / {CONCURRENCY} = {floor:.2f} s = "
              f"{floor / bound:.2f}x the bound: no client at this concurrency does better; the audit = "
              f"{med['audit'] / floor:.2f}x of it")
        ratio = med["audit"] / bound
        print(f"  audit / bound = {ratio:.2f} (goal <= {GOAL_BOUND}: {'OK' if ratio <= GOAL_BOUND else 'MISSED'}); "
              f"audit / bare httpx = {med['audit'] / med['bare']:.2f}")
        print(f"  sequential get_image loop, extrapolated to {N}: {seq_s:.2f} s = {seq_s / med['audit']:.1f}x the "
              f"audit (goal >= {GOAL_SPEEDUP})")
        growth(ud, cprs[:GROWTH_N], profile="--profile" in sys.argv)
        ud.close()
    finally:
        proc.terminate()
        proc.wait(10)


def growth(ud: Any, cprs: list[str], profile: bool) -> None:
    """The client's own cost per request at concurrency 16 and 64 (audit and bare httpx, same latency)."""
    print(f"cost of concurrency: {len(cprs)} GETs, {LATENCY_MS} ms latency")
    for concurrency in GROWTH_CONCURRENCY:
        bound = len(cprs) * LATENCY_MS / 1000 / concurrency
        run(ud.aio.http.ensure_pool(concurrency))
        ud.audit(cprs[:2 * concurrency], concurrency=concurrency, progress=False)  # its connections open
        for label, fn in (("ud.audit", lambda: ud.audit(cprs, concurrency=concurrency, progress=False)),
                          ("bare httpx client", lambda: gets(ud, cprs, concurrency, bare=True))):
            wall, cpu = timed(fn)
            share = f"; {pool_share(fn):.0%} of the client's time in httpcore's pool bookkeeping" if profile else ""
            print(f"  concurrency {concurrency:2d} {label:18s} {wall:5.2f} s = {wall / bound:5.2f}x its bound "
                  f"{bound:.2f} s; client CPU {cpu / len(cprs) * 1e6:5.0f} us/request{share}")


if __name__ == "__main__":
    main()
