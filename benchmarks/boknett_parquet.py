"""Benchmark: peak memory of a Boknett report pull of 2,000,000 objects, streamed to Parquet vs in memory.

``objects(after=…, out="report.parquet")`` parses each page, writes it as a row group of one Parquet file and
drops it, so the client's memory should not grow with the number of objects. Measured side by side in one
run, each pull in a fresh client process of its own that reads its peak resident set (``VmHWM`` in
``/proc/self/status``) at the end:

* the floor: the same process with the same imports (toolkit, pandas, pyarrow, lxml), logged in, no pull;
* the streamed pull (``out=``) at 500,000 and at 2,000,000 objects — it should be flat in the count;
* the in-memory DataFrame pull (no ``out``) of the same 2,000,000 objects, for comparison.

Goal: the streamed pull flat in the object count (2,000,000 within 15 MB of 500,000) and ≤ 150 MB RSS.

The Boknett emulator generates the objects lazily (``object_count``) and runs in its own CHILD process (a
sandbox per count), so only the client's memory is measured and the server's CPU does not compete with the
client for one GIL. Page size 5,000 (the service's maximum). Every child has a timeout; the run ends by
itself (a few minutes on 2 shared cores).

    .venv/bin/python benchmarks/boknett_parquet.py [BIG_COUNT] [SMALL_COUNT]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GOAL_MB = 150.0
FLAT_MB = 15.0
TIMEOUT = 900  # seconds per child process

SERVER = r"""
import json, sys, time
from datetime import datetime, timezone
import toolkit
count = int(sys.argv[1])
sb = toolkit.sandbox.start(services=["boknett"], seed=7)
emu = sb.emulator("boknett")
emu.object_count = count
after = datetime.fromtimestamp(emu.now() - 100 * 86400, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
print(json.dumps({"credentials": emu.credentials(), "after": after}), flush=True)
sys.stdin.read()  # serve until the parent closes the pipe
print(json.dumps({"pages_served": emu.pages_served}), flush=True)
sb.stop()
"""

CLIENT = r"""
import inspect, json, os, sys, time
import pandas as pd
import lxml.etree, pyarrow, pyarrow.parquet
import toolkit
from toolkit.boknett.objects import pull_objects
from toolkit.core.sync import run

def peak_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")

mode, out = sys.argv[1], sys.argv[2]
info = json.loads(sys.stdin.readline())
result = {"mode": mode}
with toolkit.boknett.connect(**info["credentials"]) as bk:
    bk.check_credentials()
    result["after_login_mb"] = peak_mb()
    started = time.perf_counter()
    if mode == "stream":
        if "out" in inspect.signature(bk.objects).parameters:
            summary = bk.objects(after=info["after"], pagesize=5000, out=out)
        else:  # the function behind bk.objects(out=…)
            summary = run(pull_objects(bk.aio, after=info["after"], pagesize=5000, out=out))
        result.update(rows=int(summary.iloc[0]["rows"]), pages=int(summary.iloc[0]["pages"]),
                      file_mb=os.path.getsize(out) / 1e6)
    elif mode == "memory":
        df = bk.objects(after=info["after"], pagesize=5000)
        result.update(rows=len(df), pages=int(df.attrs["pages"]),
                      frame_mb=float(df.memory_usage(deep=True).sum()) / 1e6)
    else:  # the floor: same imports, logged in, no pull
        result.update(rows=0, pages=0)
    result["seconds"] = time.perf_counter() - started
result["peak_mb"] = peak_mb()
print(json.dumps(result), flush=True)
"""


def _server(count: int, root: Path) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(count)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=root, env={**os.environ})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("the sandbox child process did not start")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _client(mode: str, info: dict, out: Path, root: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CLIENT, mode, str(out)], input=json.dumps(info) + "\n",
                          capture_output=True, text=True, cwd=root, env={**os.environ}, timeout=TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} client failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(big: int = 2_000_000, small: int = 500_000) -> dict:
    root = Path(__file__).resolve().parents[1]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (small, big):
            proc, info = _server(count, root)
            try:
                if count == small:
                    results["floor"] = _client("floor", info, Path(tmp) / "none.parquet", root)
                results[f"stream {count}"] = _client("stream", info, Path(tmp) / f"report-{count}.parquet", root)
                if count == big:
                    results[f"memory {count}"] = _client("memory", info, Path(tmp) / "none.parquet", root)
            finally:
                _stop(proc)
    floor = results["floor"]["peak_mb"]
    s_small, s_big, mem = results[f"stream {small}"], results[f"stream {big}"], results[f"memory {big}"]
    for r, count in ((s_small, small), (s_big, big), (mem, big)):
        assert r["rows"] == count, f"{r['mode']} pull got {r['rows']} of {count} objects"
    print(f"Boknett report -> peak RSS of the client process (VmHWM), pagesize 5000, emulator in a child process")
    print(f"  floor (imports toolkit, pandas, pyarrow, lxml; logged in; no pull): {floor:7.1f} MB")
    print(f"  streamed to Parquet, {small:>9,} objects: {s_small['peak_mb']:7.1f} MB  ({s_small['seconds']:.1f} s, "
          f"{s_small['pages']} pages, file {s_small['file_mb']:.0f} MB)")
    print(f"  streamed to Parquet, {big:>9,} objects: {s_big['peak_mb']:7.1f} MB  ({s_big['seconds']:.1f} s, "
          f"{s_big['pages']} pages, file {s_big['file_mb']:.0f} MB)")
    print(f"  in-memory DataFrame, {big:>9,} objects: {mem['peak_mb']:7.1f} MB  ({mem['seconds']:.1f} s; the frame "
          f"itself {mem['frame_mb']:.0f} MB)")
    growth = s_big["peak_mb"] - s_small["peak_mb"]
    flat = growth <= FLAT_MB
    within = s_big["peak_mb"] <= GOAL_MB
    print(f"  streamed {big:,} vs {small:,}: {growth:+.1f} MB ({'flat' if flat else 'GROWS'}, goal within "
          f"{FLAT_MB:.0f} MB); streamed peak {s_big['peak_mb']:.1f} MB (goal <= {GOAL_MB:.0f} MB) -> "
          f"{'OK' if flat and within else 'MISSES THE GOAL'}")
    print(f"  in-memory / streamed peak at {big:,}: {mem['peak_mb'] / s_big['peak_mb']:.1f}x; above the floor: "
          f"{mem['peak_mb'] - floor:.0f} MB vs {s_big['peak_mb'] - floor:.0f} MB")
    return results


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 2_000_000, int(args[1]) if len(args) > 1 else 500_000)
