"""Livingdocs import: time to the last result vs the service's own processing time, and status calls per job.

10,000 images in chunks of 100 (100 server jobs) against the sandbox with 20 ms latency and 2 s jobs.
The bound is the service's own span (``emulator.processing_bounds``: first job created → last job finished);
the client's time runs from ``import_images`` to ``results()`` returned. Goals: ≤ 1.2× the bound, and
fewer than 12 status calls per job.

The sandbox runs in a child process (as in ``benchmarks/audit.py``) so that the server and the client do
not share one GIL; the child answers ``processing_bounds`` and the status-call count over a pipe.

    .venv/bin/python benchmarks/livingdocs_import.py [--images 10000] [--chunk 100] [--job-seconds 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import toolkit


def serve(conn, latency_ms: float, job_seconds: float) -> None:
    """The child: a sandbox with the Livingdocs emulator; answers questions about its truth."""
    with toolkit.sandbox.start(services=["livingdocs"], latency_ms=latency_ms, seed=1) as sb:
        em = sb.emulator("livingdocs")
        em.job_seconds = job_seconds
        # the sandbox's demo token is fake; it crosses the pipe to the parent only
        conn.send((em.base_url, em.write_token))
        while True:
            cmd, arg = conn.recv()
            if cmd == "bounds":
                conn.send(em.processing_bounds(arg))
            elif cmd == "status_calls":
                conn.send(sum(1 for r in em.requests if r.path.endswith("/import/images/status")))
            else:
                conn.send(None)
                return


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--chunk", type=int, default=100)
    p.add_argument("--job-seconds", type=float, default=2.0)
    p.add_argument("--latency-ms", type=float, default=20.0)
    args = p.parse_args()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(child, args.latency_ms, args.job_seconds),
                                           daemon=True)
    proc.start()
    try:
        base_url, token = parent.recv()
        lv = toolkit.livingdocs.connect(base_url=base_url, token=token)
        names = ["ok-1.png", "ok-2.png", "photo-1.jpg", "anim.gif", "logo.svg", "ok-3.png"]
        images = [{"url": f"{base_url}/test-images/{names[i % len(names)]}", "id": f"img-{i:05d}",
                   "fileName": f"Image {i}", "metadata": {"caption": f"image {i}"}} for i in range(args.images)]
        started = time.perf_counter()
        job = lv.import_images(images, system_name="bench", chunk_size=args.chunk, progress=False)
        sent = time.perf_counter() - started
        res = job.results()
        client_seconds = time.perf_counter() - started
        parent.send(("bounds", job.ids))
        first, last = parent.recv()
        bound = last - first
        parent.send(("status_calls", None))
        status_calls = parent.recv()
        jobs = len(job.ids)
        ok = int(res["outcome"].isin(["success", "skipped"]).sum())
        lv.close()
    finally:
        parent.send(("stop", None))
        parent.recv()
        proc.join(10)
    ratio = client_seconds / bound
    per_job = status_calls / jobs
    print(f"Livingdocs import: {args.images} images, {jobs} jobs of {args.chunk}, {args.job_seconds:g} s jobs, "
          f"{args.latency_ms:g} ms latency; {ok} imported")
    print(f"  sending the chunks:         {sent:6.2f} s")
    print(f"  client, to the last result: {client_seconds:6.2f} s")
    print(f"  service's own span (bound): {bound:6.2f} s")
    print(f"  ratio client / bound:       {ratio:6.2f}x   (goal <= 1.2x)  {'OK' if ratio <= 1.2 else 'MISSED'}")
    print(f"  status calls:               {status_calls} = {per_job:.2f} per job   (goal < 12)  "
          f"{'OK' if per_job < 12 else 'MISSED'}")
    return 0 if ratio <= 1.2 and per_job < 12 else 1


if __name__ == "__main__":
    raise SystemExit(main())
