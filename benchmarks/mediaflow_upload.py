"""Benchmark: uploading 200 files to Mediaflow at 20 ms latency, measured side by side in one run.

* ``upload_folder(..., concurrency=8)`` — the toolkit's folder upload (two requests per file: POST file for
  an upload URL, then the PUT of the bytes);
* the bound ``200 × 20 ms × 2 requests / 8`` = 1.0 s (goal: the folder upload ≤ 1.5 × the bound);
* a sequential loop of ``mf.upload(path, folder_id)`` (goal: the folder upload ≥ 4 × faster).

The sandbox runs in this process on 127.0.0.1 (its latency is an ``asyncio.sleep``). Run:
``.venv/bin/python benchmarks/mediaflow_upload.py [files] [latency_ms]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import toolkit


def main(n: int = 200, latency_ms: float = 20.0, concurrency: int = 8) -> int:
    with tempfile.TemporaryDirectory() as tmp, toolkit.sandbox.start(services=["mediaflow"], seed=0,
                                                                      latency_ms=latency_ms) as sb:
        folder = Path(tmp) / "files"
        folder.mkdir()
        for i in range(n):
            (folder / f"file-{i:04d}.bin").write_bytes(bytes([i % 256]) * (2000 + i))
        em = sb.emulator("mediaflow")
        with toolkit.mediaflow.connect(**sb.credentials("mediaflow")) as mf:
            mf.folders()  # token fetched, connections warm: both runs start alike
            started = time.perf_counter()
            df = mf.upload_folder(folder, 13, concurrency=concurrency, journal=Path(tmp) / "j1.sqlite",
                                  progress=False)
            bulk = time.perf_counter() - started
            assert (df["outcome"] == "uploaded").all(), df["outcome"].value_counts()
            em.reset_uploads()
            started = time.perf_counter()
            for path in sorted(folder.iterdir()):
                row = mf.upload(path, 13)
                assert row["outcome"] == "uploaded"
            sequential = time.perf_counter() - started
    bound = n * latency_ms / 1000 * 2 / concurrency
    print(f"{n} files, {latency_ms:g} ms latency, concurrency {concurrency}")
    print(f"upload_folder:     {bulk:6.2f} s")
    print(f"bound (n×lat×2/c): {bound:6.2f} s   ratio upload_folder / bound = {bulk / bound:.2f} (goal ≤ 1.5)")
    print(f"sequential loop:   {sequential:6.2f} s   speed-up sequential / upload_folder = {sequential / bulk:.2f} "
          "(goal ≥ 4)")
    return 0


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:]]
    sys.exit(main(int(args[0]) if args else 200, args[1] if len(args) > 1 else 20.0))
