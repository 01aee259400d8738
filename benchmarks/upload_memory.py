"""Benchmark: peak memory of uploading 100 and 1,000 photos with ``upload_folder``.

Each size runs in a fresh child process (peak RSS is a high-water mark) against a sandbox in another
process, so only the client's memory is measured. Prints both peaks (RSS and Python's tracemalloc) and
the ratio. Goal: the 1,000-photo run ≤ 1.2 × the 100-photo run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

SERVER = r"""
import json, sys, toolkit
from toolkit.core.credentials import Secret
sb = toolkit.sandbox.start(services=["uddata"])
emu = sb.emulator("uddata")
emu.add_students(int(sys.argv[1]))
creds = {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in sb.credentials("uddata").items()}
print(json.dumps({"credentials": creds, "roster": emu.roster()}), flush=True)
sys.stdin.read()
sb.stop()
"""


def child(n: int, creds: dict, roster: list[str]) -> None:
    from toolkit.sandbox.uddata_data import make_photo
    import toolkit

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, cpr in enumerate(roster[:n]):
            (folder / f"{cpr}.jpg").write_bytes(make_photo(i, size=(320, 400), quality=85))
        ud = toolkit.uddata.connect(**creds)
        ud.students()  # token, pool, imports: the same warm state for both sizes
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        started = time.perf_counter()
        result = ud.upload_folder(folder, concurrency=8, progress=False)
        seconds = time.perf_counter() - started
        _, peak_py = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"n": n, "rss_kb": peak, "rss_before_kb": base, "py_peak": peak_py, "seconds": seconds,
                          "uploaded": int((result["outcome"] == "uploaded").sum())}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        info = json.loads(sys.stdin.readline())
        child(int(sys.argv[2]), info["credentials"], info["roster"])
        return
    server = subprocess.Popen([sys.executable, "-c", SERVER, "1100"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        info = json.loads(server.stdout.readline())
        runs = {}
        for n in (100, 1000):
            out = subprocess.run([sys.executable, __file__, "--child", str(n)], input=json.dumps(info) + "\n",
                                 capture_output=True, text=True, check=True)
            runs[n] = json.loads(out.stdout.strip().splitlines()[-1])
        for n, r in runs.items():
            print(f"{n:>5} photos: uploaded {r['uploaded']} in {r['seconds']:.1f} s; peak RSS {r['rss_kb'] / 1024:.1f} MB "
                  f"(before the upload {r['rss_before_kb'] / 1024:.1f} MB); Python peak {r['py_peak'] / 1e6:.2f} MB")
        small, large = runs[100], runs[1000]
        print(f"peak RSS ratio 1000/100 = {large['rss_kb'] / small['rss_kb']:.2f}  (goal <= 1.2)")
        print(f"Python peak ratio 1000/100 = {large['py_peak'] / small['py_peak']:.2f}")
    finally:
        server.stdin.close()
        server.wait(20)


if __name__ == "__main__":
    main()
