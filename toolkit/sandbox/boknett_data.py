"""Synthetic, deterministic Boknett objects: object ``i`` of a seed is computed from ``(seed, i)`` alone.

Nothing is stored per object, so a report of 2,000,000 changes costs no memory; a page of 5,000 is
rendered with string joins. Also the downloadable bodies: covers as small real JPEG/PNG pictures
(different per ISBN, cached) and audio samples as fake MP3 bytes (``ID3`` header).
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Iterator

__all__ = ["TYPES", "HOSTILE_NAMES", "isbn13", "object_fields", "file_extension",
           "cover_bytes", "audio_bytes", "render_objects", "make_report"]

#: type code → weight (percent) in the synthetic report
TYPES = (("os", 35), ("ol", 30), ("org", 20), ("ly", 15))
OWNERS = ("0008", "0017", "0042", "0123", "1001", "0002", "0310")
#: file names some objects get when the emulator's ``hostile_names`` is on
HOSTILE_NAMES = (
    "../../evil.jpg",
    "/etc/passwd",
    "a/b\\c.jpg",
    "CON.jpg",
    "evil\x00.jpg",
    "bad\x1b[31mname\r\n.jpg",
    "x" * 296 + ".jpg",
    "..",
    "C:\\Windows\\evil.jpg",
    "Blåbærsyltetøy \"omslag\".jpg",
)

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64: a cheap, well-spread 64-bit hash of an int."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def isbn13(book: int, seed: int = 0) -> str:
    """A valid ISBN-13 (978-82… or 979-82…), unique per book number below 10,000,000."""
    prefix = "979" if book % 11 == 5 else "978"
    body = f"{prefix}82{(book * 7_368_787 + seed * 97 + 1_000_003) % 10_000_000:07d}"
    total = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _type_of(r: int) -> str:
    roll = r % 100
    for code, weight in TYPES:
        if roll < weight:
            return code
        roll -= weight
    return TYPES[-1][0]  # pragma: no cover


def object_fields(seed: int, i: int) -> tuple[str, str, str, str, str, int]:
    """``(isbn13, ean, fssn, vareeier_kode, type, book)`` of change ``i``.

    About one change in ten is a historical object: a new delivery for a book an earlier change
    already named (same ISBN, maybe the same type).
    """
    r = _mix(seed * 1_000_003 + i)
    book = i
    if i > 10 and (r >> 8) % 10 == 0:
        book = (r >> 16) % i
    isbn = isbn13(book, seed)
    fssn_mod = 10 ** 7 if book % 3 == 0 else 10 ** 9
    fssn = f"{((book * 2_654_435_761) ^ (seed * 40503)) % fssn_mod:09d}"
    return isbn, isbn, fssn, OWNERS[book % len(OWNERS)], _type_of(r), book


def file_extension(kind: str, book: int) -> str:
    if kind == "ly":
        return "mp3"
    if kind == "org":
        return "png" if book % 2 else "jpg"
    return "jpg"


_OBJECT = ("  <OBJECT>\n    <ISBN13>{0}</ISBN13>\n    <EAN>{1}</EAN>\n    <FSSN>{2}</FSSN>\n"
           "    <VAREEIER_KODE>{3}</VAREEIER_KODE>\n    <TYPE>{4}</TYPE>\n    <REFERENCE>{5}</REFERENCE>\n"
           "  </OBJECT>\n")
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def render_objects(rows: Iterator[tuple[str, str, str, str, str, str]]) -> bytes:
    """The report body for ``(isbn13, ean, fssn, vareeier_kode, type, reference)`` rows; ``<OBJECTS/>`` if none."""
    fmt = _OBJECT.format
    parts = [fmt(*row) for row in rows]
    if not parts:
        return (XML_HEAD + "<OBJECTS/>\n").encode()
    return (XML_HEAD + "<OBJECTS>\n" + "".join(parts) + "</OBJECTS>\n").encode()


def make_report(count: int, seed: int = 0, base_url: str = "http://127.0.0.1:9") -> bytes:
    """A report of ``count`` objects as the emulator serves it (opaque-looking references), e.g. for benchmarks."""
    ref = f"{base_url}/metadata/export/object/download?id="

    def rows() -> Iterator[tuple[str, str, str, str, str, str]]:
        for i in range(count):
            isbn, ean, fssn, owner, kind, _ = object_fields(seed, i)
            yield isbn, ean, fssn, owner, kind, f"{ref}{_mix(i) & 0xFFFFFFFFFFFF:012x}%2B{_mix(~i & _MASK) % 10**9}%3D"

    return render_objects(rows())


# -- bodies ---------------------------------------------------------------------------------------------------
_SIZES = {"ol": (120, 180), "os": (300, 450), "org": (240, 360)}


@lru_cache(maxsize=512)
def cover_bytes(isbn: str, kind: str, ext: str) -> bytes:
    """A small real picture, different per ISBN: ``ol`` width 120, ``os`` height 450, ``org`` the original."""
    from PIL import Image, ImageDraw

    width, height = _SIZES.get(kind, _SIZES["os"])
    h = _mix(int(isbn))
    background = (h & 0xFF, (h >> 8) & 0xFF, (h >> 16) & 0xFF)
    accent = (255 - background[0], 255 - background[1], 255 - background[2])
    img = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(img)
    band = height // 5
    top = (h >> 24) % (height - band)
    draw.rectangle([0, top, width, top + band], fill=accent)
    draw.ellipse([width // 4, height // 8, 3 * width // 4, height // 8 + width // 2], outline=accent, width=3)
    draw.text((6, height - 18), isbn, fill=accent)
    out = io.BytesIO()
    if ext == "png":
        img.save(out, format="PNG", optimize=False, compress_level=1)
    else:
        img.save(out, format="JPEG", quality=80)
    return out.getvalue()


@lru_cache(maxsize=512)
def audio_bytes(isbn: str) -> bytes:
    """Fake MP3 bytes: an ID3v2 header and MPEG frame headers with deterministic filler (4–12 KB)."""
    h = _mix(int(isbn))
    frames = 10 + h % 20
    filler = bytes((h >> (k % 56)) & 0xFF for k in range(413))
    return b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"".join(b"\xff\xfb\x90\x64" + filler for _ in range(frames))
