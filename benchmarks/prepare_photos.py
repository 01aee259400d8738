"""Benchmark: preparing photographer's files of 24 megapixels with ``toolkit.uddata.prepare.prepare_photos``.

200 JPEGs of 6000 × 4000 pixels and 8–15 MB are generated (25 different pictures, each stored with the eight
EXIF orientations and a camera's EXIF with GPS, so that no two files show the same photo). Then, each in a
fresh child process (peak RSS is a high-water mark):

* side by side on the same 50 files, one thread each: a plain loop — ``Image.open``, ``ImageOps.exif_transpose``,
  ``thumbnail`` to 2000 pixels, save as JPEG quality 90 — against ``prepare_photos(workers=1)`` (which also
  checks each file, hashes it for duplicates, strips metadata, converts colours and journals the result);
* ``prepare_photos`` with its default workers on 50 and on 200 files: peak memory must stay flat.

Prints the time per photo of both, their ratio, and the peak memory of 50 against 200 files. Goals: at most
1.0 × the plain loop's time per photo (the reduced-size JPEG decode pays for the extra work), and the
200-file peak ≤ 1.2 × the 50-file peak. Runs in about 2 minutes on 2 cores.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASES = 25
FILES = 200
SMALL = 50
SIZE = (6000, 4000)


def _cpr(i: int) -> str:
    """A made-up CPR number (a real date; the sequence digits need no checksum)."""
    day, month = 1 + i % 28, 1 + (i // 28) % 12
    return f"{day:02d}{month:02d}05{4000 + i:04d}"


def _with_exif(jpeg: bytes, orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0110] = orientation, "CameraMaker", "Pro 24"
    exif[0x0132] = "2025:08:14 09:12:33"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (55.0, 40.0, 12.5), "E", (12.0, 34.0, 56.0)
    payload = exif.tobytes()
    return jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def _base(seed: int) -> bytes:
    """A 24-megapixel picture with a photo's fine grain (so it weighs what a photographer's file weighs)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    shapes = Image.fromarray(rng.integers(0, 255, (12, 18, 3), dtype=np.uint8)).resize(SIZE, Image.Resampling.BICUBIC)
    grain = 14 + seed % 10
    noise = rng.integers(0, 2 * grain, (SIZE[1], SIZE[0], 1), dtype=np.uint8)
    pixels = np.clip(np.asarray(shapes, dtype=np.int16) + noise - grain, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=92)
    return out.getvalue()


def make_folders(root: Path) -> tuple[Path, Path]:
    """``root/all`` with 200 files and ``root/small`` with the first 50 (hard links: the same bytes)."""
    full, small = root / "all", root / "small"
    full.mkdir()
    small.mkdir()
    bases = [_base(seed) for seed in range(BASES)]
    for i in range(FILES):
        name = f"{_cpr(i)}.jpg"
        (full / name).write_bytes(_with_exif(bases[i % BASES], 1 + i // BASES))
        if i < SMALL:
            os.link(full / name, small / name)
    return full, small


# -- children -----------------------------------------------------------------------------------------------
def plain(folder: Path, out: Path) -> dict:
    from PIL import Image, ImageOps

    out.mkdir()
    started = time.perf_counter()
    files = sorted(folder.glob("*.jpg"))
    for path in files:
        with Image.open(path) as img:
            upright = ImageOps.exif_transpose(img).convert("RGB")
        upright.thumbnail((2000, 2000))
        upright.save(out / path.name, "JPEG", quality=90)
    return {"seconds": time.perf_counter() - started, "photos": len(files)}


def ours(folder: Path, out: Path, workers: int | None) -> dict:
    from toolkit.uddata.prepare import prepare_photos

    started = time.perf_counter()
    result = prepare_photos(folder, out, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    counts = result["outcome"].value_counts().to_dict()
    return {"seconds": seconds, "photos": len(result), "outcomes": counts,
            "largest": int(result["bytes"].max()), "side": int(result[["width", "height"]].max().max())}


def peak_kb() -> int:
    """This process's peak resident memory in kB: VmHWM (which, unlike ``ru_maxrss``, does not carry the high
    mark of the process that started this one across ``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(kind: str, folder: str, out: str, workers: str) -> None:
    if kind == "make":
        make_folders(Path(folder))
        return
    import toolkit.uddata.prepare  # noqa: F401 - imports before the measured part, the same for both sizes

    before = peak_kb()
    if kind == "plain":
        report = plain(Path(folder), Path(out))
    else:
        report = ours(Path(folder), Path(out), int(workers) or None)
    report.update(kind=kind, rss_kb=peak_kb(), rss_before_kb=before)
    print(json.dumps(report))


def run_child(kind: str, folder: Path, out: Path, workers: int = 0) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(folder), str(out), str(workers)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]) if kind != "make" else {}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prepare-bench-") as tmp:
        root = Path(tmp)
        run_child("make", root, root)  # in a child: the generator's memory stays out of the measured processes
        full, small = root / "all", root / "small"
        sizes = sorted(p.stat().st_size for p in full.iterdir())
        print(f"{FILES} files of {SIZE[0]}×{SIZE[1]} ({SIZE[0] * SIZE[1] / 1e6:.0f} megapixels), "
              f"{sizes[0] / 1e6:.1f}–{sizes[-1] / 1e6:.1f} MB, made in {time.perf_counter() - began:.0f} s")
        base = run_child("plain", small, root / "plain")
        one = run_child("ours", small, root / "ours-1", workers=1)
        fifty = run_child("ours", small, root / "ours-50")
        every = run_child("ours", full, root / "ours-200")
    for name, r in (("plain loop, 1 thread", base), ("prepare_photos, 1 worker", one),
                    ("prepare_photos, 50 files", fifty), ("prepare_photos, 200 files", every)):
        extra = f"; outcomes {r['outcomes']}; largest {r['largest'] / 1e6:.2f} MB, side {r['side']}" \
            if "outcomes" in r else ""
        print(f"{name:<26} {r['seconds'] / r['photos'] * 1000:6.0f} ms per photo ({r['photos']} in "
              f"{r['seconds']:.1f} s); peak RSS {r['rss_kb'] / 1024:.0f} MB (after imports "
              f"{r['rss_before_kb'] / 1024:.0f} MB){extra}")
    ratio = (one["seconds"] / one["photos"]) / (base["seconds"] / base["photos"])
    print(f"time per photo, prepare_photos / plain loop (same 50 files, one thread each) = {ratio:.2f}  (goal <= 1.0)")
    print(f"peak RSS 200 / 50 files = {every['rss_kb'] / fifty['rss_kb']:.2f}  ({every['rss_kb'] / 1024:.0f} MB vs "
          f"{fifty['rss_kb'] / 1024:.0f} MB; goal <= 1.2)")
    print(f"benchmark ran {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
