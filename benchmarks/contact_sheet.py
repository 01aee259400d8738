"""Benchmark: ``toolkit.contact_sheet`` pages against a naive open-and-resize of the same files.

Generates 200 JPEGs of 12 megapixels (4000 x 3000, quality 85; cached in a temp folder between runs),
then times, in one run:

* naive: ``Image.open(p).convert("RGB").resize((thumb, thumb))`` for every file, pasted on sheets of 36,
  each sheet saved as JPEG quality 85;
* toolkit: every page of ``contact_sheets(paths)`` (draft decoding, EXIF orientation, thread pool,
  byte budget) encoded as JPEG.

Prints both times, the ratio and the bytes per page. Goal: ratio >= 3 and every page <= 300 KB.

    .venv/bin/python benchmarks/contact_sheet.py [--count 200] [--folder FOLDER]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from toolkit.widgets.images import DEFAULT_MAX_BYTES, contact_sheets  # noqa: E402

WIDTH, HEIGHT = 4000, 3000
THUMB, COLUMNS, PER_PAGE = 160, 6, 36


def make_photo(i: int) -> Image.Image:
    """A photo-like 12 MP picture: smooth colour fields plus fine grain (not pure noise, not flat)."""
    base = Image.effect_noise((40, 30), 90).convert("RGB")
    tint = Image.new("RGB", base.size, ((i * 53) % 256, (i * 97) % 256, (i * 31) % 256))
    base = Image.blend(base, tint, 0.5).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
    grain = Image.effect_noise((WIDTH // 2, HEIGHT // 2), 32).resize((WIDTH, HEIGHT), Image.Resampling.NEAREST)
    grain = grain.filter(ImageFilter.SMOOTH).convert("RGB")
    return Image.blend(base, grain, 0.25)


def ensure_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i:03d}.jpg" for i in range(count)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"generating {len(missing)} images of {WIDTH}x{HEIGHT} in {folder} (once) ...", flush=True)
        started = time.perf_counter()
        for p in missing:
            i = int(p.stem.split("_")[1])
            tmp = p.with_suffix(".tmp")
            make_photo(i).save(tmp, "JPEG", quality=85)
            os.replace(tmp, p)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    return paths


def naive(paths: list[Path]) -> list[int]:
    """What one writes first: full decode, resize, paste, save."""
    sizes = []
    for start in range(0, len(paths), PER_PAGE):
        chunk = paths[start:start + PER_PAGE]
        rows = math.ceil(len(chunk) / COLUMNS)
        sheet = Image.new("RGB", (COLUMNS * THUMB, rows * THUMB), "white")
        for i, p in enumerate(chunk):
            thumb = Image.open(p).convert("RGB").resize((THUMB, THUMB))
            sheet.paste(thumb, ((i % COLUMNS) * THUMB, (i // COLUMNS) * THUMB))
        buf = io.BytesIO()
        sheet.save(buf, "JPEG", quality=85)
        sizes.append(len(buf.getvalue()))
    return sizes


def toolkit_pages(paths: list[Path], workers: int | None) -> list[int]:
    pages = contact_sheets(paths, columns=COLUMNS, thumb=THUMB, per_page=PER_PAGE, workers=workers)
    return [len(pages.jpeg(i)) for i in range(len(pages))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "toolkit-bench-12mp")
    args = parser.parse_args()
    paths = ensure_images(args.folder, args.count)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"{len(paths)} JPEGs of {WIDTH}x{HEIGHT} ({mb:.0f} MB), thumbnails {THUMB} px, {PER_PAGE} a page, "
          f"{os.cpu_count()} cores")

    started = time.perf_counter()
    naive_sizes = naive(paths)
    t_naive = time.perf_counter() - started
    print(f"naive open+resize:           {t_naive:7.2f} s  ({len(naive_sizes)} pages, "
          f"max {max(naive_sizes) / 1000:.0f} KB a page)")

    started = time.perf_counter()
    single = toolkit_pages(paths, workers=1)
    t_single = time.perf_counter() - started
    print(f"contact_sheet, 1 thread:     {t_single:7.2f} s  ({len(single)} pages, "
          f"max {max(single) / 1000:.0f} KB a page)   {t_naive / t_single:5.1f}x")

    started = time.perf_counter()
    sizes = toolkit_pages(paths, workers=None)
    t_tool = time.perf_counter() - started
    print(f"contact_sheet (default):     {t_tool:7.2f} s  ({len(sizes)} pages, "
          f"max {max(sizes) / 1000:.0f} KB a page)   {t_naive / t_tool:5.1f}x")
    print(f"bytes per page: {', '.join(f'{s / 1000:.0f} KB' for s in sizes)} (budget {DEFAULT_MAX_BYTES // 1000} KB)")
    ok = t_naive / t_tool >= 3 and max(sizes) <= DEFAULT_MAX_BYTES
    print(f"ratio {t_naive / t_tool:.1f}x (goal >= 3x), largest page {max(sizes)} bytes (goal <= "
          f"{DEFAULT_MAX_BYTES}): {'OK' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
