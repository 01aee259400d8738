"""Benchmark: audit 2,000 CPR numbers at 20 ms sandbox latency, concurrency 16.

The sandbox runs in a separate process (``toolkit sandbox --json --latency-ms 20``) so that the server
and the client do not share one GIL. Prints the audit time, the bound 2,000 × 20 ms / 16, a sequential
loop of ``get_image`` over the same sandbox (a sample, extrapolated), and both ratios.
Goals: audit ≤ 1.3 × the bound, and ≥ 12 × faster than the sequential loop.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import toolkit
from toolkit.sandbox.uddata_data import make_cpr

N, LATENCY_MS, CONCURRENCY, SAMPLE = 2000, 20, 16, 200


def start_sandbox() -> tuple[subprocess.Popen, dict]:
    exe = Path(sys.executable).with_name("toolkit")
    proc = subprocess.Popen([str(exe), "sandbox", "--json", "--latency-ms", str(LATENCY_MS), "--services", "uddata"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, json.loads(line)


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
        started, cpu = time.perf_counter(), time.process_time()
        result = ud.audit(cprs, concurrency=CONCURRENCY, progress=False)
        audit_s, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert len(result) == N
        bound = N * LATENCY_MS / 1000 / CONCURRENCY
        started = time.perf_counter()
        for c in cprs[:SAMPLE]:
            ud.get_image(c)
        sample_s = time.perf_counter() - started
        seq_s = sample_s * N / SAMPLE
        print(f"audit of {N} CPRs, {LATENCY_MS} ms latency, concurrency {CONCURRENCY}: {audit_s:.2f} s")
        print(f"  (client process CPU during the audit: {cpu:.2f} s; the machine's other load adds noise)")
        print(f"bound {N} x {LATENCY_MS} ms / {CONCURRENCY}:                         {bound:.2f} s")
        print(f"sequential get_image loop: {sample_s:.2f} s for a sample of {SAMPLE}, "
              f"extrapolated to {N}: {seq_s:.2f} s")
        print(f"audit / bound = {audit_s / bound:.2f}  (goal <= 1.3)")
        print(f"sequential / audit = {seq_s / audit_s:.1f}x  (goal >= 12)")
        print(result.summary)
        ud.close()
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
