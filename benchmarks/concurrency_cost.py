"""Benchmark: the client's cost of concurrency — 1,500 audit GETs at 16, at 64 and at ``"auto"``, side by side.

Against the sandbox's Uddata+ emulator with no limit (20 ms latency, in a separate process so server and
client do not share one GIL), ``ud.audit`` of 1,500 CPR numbers at concurrency 16 (the audit's default before
``"auto"``), 64 and ``"auto"``, each on its own connection (kept over the rounds, as in an analyst's session),
in 3 interleaved rounds; medians and the client's CPU per request (httpcore's bookkeeping costs per request
grow with the connections in the pool, idle ones too: see docs/architecture.md).
The issue's demand: a bulk call at 64 is not slower than at 16 against a service without a limit, and
``"auto"`` (goal of benchmarks/adaptive.py) within 1.05 × of 16.

    .venv/bin/python benchmarks/concurrency_cost.py
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
from typing import Any

import toolkit
from toolkit.sandbox.uddata_data import make_cpr

from audit import LATENCY_MS, start_sandbox, timed

N, ROUNDS, CONTENDERS = 1500, 3, (16, 64, "auto")


def main() -> None:
    proc, info = start_sandbox()
    try:
        creds = info["credentials"]["uddata"]
        conns = {c: toolkit.uddata.connect(**creds) for c in CONTENDERS}
        rng, cprs = random.Random(1), conns[16].students()["cpr"].tolist()
        while len(cprs) < N:  # distinct numbers (the audit asks once per number); not enrolled -> 404, same latency
            cprs.append(make_cpr(rng, dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(3000)), rng.random() < .5))
        cprs = list(dict.fromkeys(cprs))[:N]
        for c, ud in conns.items():
            ud.audit(cprs[:100], concurrency=c, progress=False)  # the token and the first connections
        walls: dict[Any, list[float]] = {c: [] for c in CONTENDERS}
        cpus: dict[Any, list[float]] = {c: [] for c in CONTENDERS}
        for _ in range(ROUNDS):
            for c, ud in conns.items():
                wall, cpu = timed(lambda: ud.audit(cprs, concurrency=c, progress=False))
                walls[c].append(wall)
                cpus[c].append(cpu)
        print(f"{N} audit GETs, {LATENCY_MS} ms latency, no service limit; {ROUNDS} interleaved rounds, medians "
              "(the machine's other load adds noise)")
        base = statistics.median(walls[16])
        for c, ud in conns.items():
            med = statistics.median(walls[c])
            print(f"  concurrency {str(c):>4}: {med:5.2f} s = {med / base:4.2f}x of 16 ("
                  + ", ".join(f"{w:.2f}" for w in walls[c])
                  + f"); client CPU {statistics.median(cpus[c]) / N * 1e6:5.0f} us/request")
        for ud in conns.values():
            ud.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
