"""Benchmark: Boknett's object report of 100,000 objects → DataFrame, ``parse_objects`` vs ``pandas.read_xml``.

Both parse the same bytes (made by the sandbox emulator's generator), side by side in one run, best of 3.
Peak memory of each is measured with tracemalloc (Python allocations; lxml's C tree is not counted) and
as the growth of the peak RSS, each in a fresh child process so one's high-water mark does not hide the
other's. Goal: ``parse_objects`` at least 2× faster than ``pandas.read_xml``.

    .venv/bin/python benchmarks/boknett_report.py [COUNT]
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 2.0

CHILD = r"""
import io, json, resource, sys, tracemalloc


def peak_rss_kb():
    # VmHWM is the peak of this process image (ru_maxrss can carry the parent's peak over fork + exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


import pandas as pd
from toolkit.boknett.report import parse_objects
data = open(sys.argv[2], "rb").read()
parse_objects(data[:2000].rsplit(b"<OBJECT>", 1)[0] + b"</OBJECTS>")  # import everything lxml/pandas need
pd.read_xml(io.BytesIO(b"<OBJECTS><OBJECT><EAN>1</EAN></OBJECT></OBJECTS>"), dtype=str)
before = peak_rss_kb()
tracemalloc.start()
if sys.argv[1] == "parse_objects":
    df = parse_objects(data)
else:
    df = pd.read_xml(io.BytesIO(data), dtype=str)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
after = peak_rss_kb()
print(json.dumps({"rows": len(df), "tracemalloc_mb": peak / 2**20, "rss_growth_mb": (after - before) / 1024}))
"""


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def memory(which: str, path: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, which, path], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import pandas as pd

    from toolkit.boknett.report import parse_objects
    from toolkit.sandbox.boknett_data import make_report

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data = make_report(count)
    ours = parse_objects(data)
    theirs = pd.read_xml(io.BytesIO(data), dtype=str)
    assert len(ours) == len(theirs) == count, (len(ours), len(theirs))
    assert ours["vareeier_kode"].tolist() == theirs["VAREEIER_KODE"].tolist()

    # interleaved rounds, best of 3 each
    t_ours, t_theirs = [], []
    for _ in range(3):
        t_ours.append(best_of(1, lambda: parse_objects(data)))
        t_theirs.append(best_of(1, lambda: pd.read_xml(io.BytesIO(data), dtype=str)))
    a, b = min(t_ours), min(t_theirs)
    ratio = b / a
    print(f"Boknett report: {count:,} objects, {len(data) / 2**20:.1f} MB of XML (best of 3, same bytes)")
    print(f"  parse_objects    {a:7.3f} s")
    print(f"  pandas.read_xml  {b:7.3f} s")
    print(f"  ratio            {ratio:7.2f}×   goal ≥ {GOAL:.0f}×   {'OK' if ratio >= GOAL else 'MISSED'}")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "report.xml")
        Path(path).write_bytes(data)
        peaks = {which: memory(which, path) for which in ("parse_objects", "read_xml")}
    for which, m in peaks.items():
        print(f"  peak memory {which:14s} tracemalloc {m['tracemalloc_mb']:7.1f} MB   "
              f"RSS growth {m['rss_growth_mb']:7.1f} MB")


if __name__ == "__main__":
    main()
