"""Photos made ready before they are sent: upright, the right size and format, no hidden metadata, no mix-ups.

    ud.prepare_photos("photos/", out="photos/prepared")     # one row per folder entry: what was done
    ud.upload_folder("photos/", prepare=True)               # prepared in memory on the way to Uddata+
    toolkit.uddata.prepare_photos("photos/")                # the same without a connection

A school's folder is rarely ready to send: phone photos lie on their side (the rotation is only an EXIF
flag), photographers deliver 24-megapixel files of 8–15 MB (Uddata+ refuses over 10 MB), iPhones give HEIC
and some tools PNG, photos carry EXIF/XMP metadata (camera, time, sometimes the GPS position), and the same
photo ends up under two CPR numbers. Preparing a photo

* turns it upright from its EXIF orientation (``ImageOps.exif_transpose``; a HEIC's own rotation is applied
  by pillow-heif when it is read);
* converts HEIC/HEIF, PNG, WebP and TIFF (and CMYK or 16-bit pictures) to an 8-bit sRGB JPEG — the colour
  profile is converted to sRGB with Pillow's ImageCms, not dropped; a transparent background becomes white;
* scales it down so that its longer side is at most ``max_side`` pixels (a JPEG is decoded at reduced size
  with Pillow's ``draft()`` where that is enough) and lowers the JPEG quality — then the size — until the
  file is at most ``max_bytes``;
* removes every piece of metadata: EXIF (camera, time), GPS, XMP, IPTC, thumbnails, comments, extra images
  (MPF) and text chunks. Only the JFIF header and, where the original had a colour profile, the sRGB profile
  remain (each prepared file is checked for this before it is written or sent);
* leaves a JPEG that needs none of this as it is (its bytes are copied, not re-encoded).

The originals are never changed. ``prepare_photos`` writes ``<cpr>.jpg`` copies to ``out`` (default the
sub-folder ``prepared`` of the folder, which then gets no row of its own); ``upload_folder(prepare=True)``
prepares each photo in memory just before it is sent.

Checks — each is the row's outcome with a plain message, never a stop: ``not_a_picture``, ``damaged``
(truncated or corrupt: it could not be decoded), ``pixel_bomb`` (more than ``max_pixels`` declared: never
decoded), ``too_small`` (below ``min_size``, 200 × 250 pixels upright by default), ``too_large`` (a file over
200 MB, or one that cannot be brought under ``max_bytes``), and ``duplicate_photo``: a perceptual hash
(``imagehash.phash``, 256 bits, of the upright picture) over the whole folder, confirmed by an 8 × 8 colour
thumbnail, finds the same photo under two or more CPR numbers — also a re-saved, converted or resized copy.
All files of such a group are flagged and none is prepared or sent until the analyst decides: remove the
wrong file, or list numbers whose photos were checked and are different people in ``distinct=``. Whether
a photo shows a face at all is not checked.

Re-runs prepare nothing twice: a journal (``out/.uddata-prepare.sqlite``; for uploads the upload journal)
keys each prepared photo by the SHA-256 of the original and the settings; the photo's check results are
kept there too, so a re-run neither decodes nor re-encodes what it already prepared. A prepared copy that
was deleted or changed in ``out`` is made again; the earlier copy of a photo that is now refused (a new
duplicate, say) is removed from ``out``, so that ``out`` never holds a photo that should not be sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ..core.bulk import progress_bar
from ..core.errors import ValidationError
from ..core.folders import UnreadableEntry, read
from ..core.frames import ToolkitFrame, frame
from ..core.redact import get_logger, redact
from .photos import MAX_BYTES, OUT_NAME, PREPARE_JOURNAL_NAME, Candidate, scan_folder

if TYPE_CHECKING:
    from PIL import Image


__all__ = ["prepare_photos", "prepare_folder", "prepare_bytes", "inspect_photo", "Settings", "Look", "Prepared",
           "PhotoProblem", "find_duplicates", "PREPARE_SCHEMA", "PREPARE_LABELS", "SUFFIXES", "JOURNAL_NAME",
           "OUT_NAME", "metadata_left"]

log = get_logger("toolkit.uddata.prepare")

#: the names a photo may have when it is prepared (the upload without preparing takes .jpg/.jpeg only)
SUFFIXES = (".jpg", ".jpeg", ".heic", ".heif", ".png", ".webp", ".tif", ".tiff")
#: what Pillow may open a file as (a camera JPEG with extra images opens as MPO through JPEG)
FORMATS = ["JPEG", "HEIF", "PNG", "WEBP", "TIFF"]
JOURNAL_NAME = PREPARE_JOURNAL_NAME
#: the default ``out``: this sub-folder of the photo folder (it gets no row in the folder's scan)
#: bump when the preparation changes, so that earlier prepared copies are made again
PIPELINE_VERSION = 1
#: an original larger than this is not read at all
MAX_ORIGINAL = 200 * 1024 * 1024
#: "the same photo": perceptual hashes at most this far apart (of 256 bits) and 8 × 8 colour thumbnails at most
#: this far (of 255; see :func:`_thumb_distance`). Measured: re-saved (quality 20–95), converted (PNG, HEIC,
#: WebP) and resized (to a fifth) copies ≤ 44 and ≤ 6; different photos of one layout ≥ 17 apart in colour
PHASH_DISTANCE = 60
THUMB_DISTANCE = 12.0
HASH_SIZE = 16

PREPARE_SCHEMA = {
    "file": "string", "cpr": "string", "outcome": "string", "message": "string", "actions": "string",
    "format": "string", "width": "Int64", "height": "Int64", "bytes": "Int64", "width_before": "Int64",
    "height_before": "Int64", "bytes_before": "Int64", "rotated": "boolean", "converted": "boolean",
    "scaled": "boolean", "metadata_removed": "string", "colour": "string", "duplicate_of": "string",
    "prepared": "string",
}
MASKED = {"cpr": "cpr", "file": "text", "duplicate_of": "text", "prepared": "text"}
PREPARE_LABELS = ("prepared", "already_prepared", "would_prepare", "duplicate_photo", "not_a_picture", "damaged",
                  "pixel_bomb", "too_small", "too_large", "invalid_name", "duplicate", "hidden", "folder", "link",
                  "not_a_file", "failed")
#: the outcomes of the checks (a file that is not prepared and not sent)
CHECKS = ("not_a_picture", "damaged", "pixel_bomb", "too_small", "too_large", "duplicate_photo")

ORIENTATIONS = {2: "mirrored", 3: "turned 180°", 4: "flipped upside down", 5: "mirrored and turned",
                6: "turned 90° clockwise", 7: "mirrored and turned", 8: "turned 90° anticlockwise"}
QUALITIES = (90, 85, 80, 75, 70, 65, 60)


class PhotoProblem(ValidationError):
    """A photo that cannot be prepared: ``outcome`` is the row's outcome, the message says why."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message, service="uddata")
        self.outcome = outcome


# -- settings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """How photos are prepared; :meth:`key` is part of every journal key (other settings: prepared again)."""

    max_side: int = 2000
    max_bytes: int = 10 * 1024 * 1024
    min_width: int = 200
    min_height: int = 250
    quality: int = 90
    max_pixels: int = 100_000_000

    def key(self) -> str:
        return (f"v{PIPELINE_VERSION}|side={self.max_side}|bytes={self.max_bytes}|min={self.min_width}x"
                f"{self.min_height}|q={self.quality}|px={self.max_pixels}")

    @classmethod
    def of(cls, max_side: Any = 2000, max_bytes: Any = None, min_size: Any = (200, 250), quality: Any = 90,
           max_pixels: Any = 100_000_000) -> "Settings":
        """Checked settings; a :class:`toolkit.ValidationError` names the wrong one."""
        side = _whole("max_side", max_side, 64, 20_000)
        limit = _whole("max_bytes", MAX_BYTES if max_bytes is None else max_bytes, 20_000, MAX_BYTES)
        try:
            width, height = (int(v) for v in min_size)
        except (TypeError, ValueError):
            raise ValidationError(f"min_size must be (width, height) in pixels, not {min_size!r}", service="uddata",
                                  hint="Give e.g. min_size=(200, 250).") from None
        width, height = _whole("min_size width", width, 1, side), _whole("min_size height", height, 1, side)
        return cls(side, limit, width, height, _whole("quality", quality, 30, 95),
                   _whole("max_pixels", max_pixels, 1_000_000, 1_000_000_000))


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be a whole number from {low:,} to {high:,}, not {value!r}",
                              service="uddata", hint="See help(toolkit.uddata.prepare_photos) for the settings.")
    return int(value)


# -- opening and looking -----------------------------------------------------------------------------------
_HEIF = {"registered": False}


def _register_heif() -> None:
    """pillow-heif's opener, registered once (Pillow then reads HEIC/HEIF everywhere, grids included)."""
    if not _HEIF["registered"]:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _HEIF["registered"] = True


def _open(data: bytes, settings: Settings) -> "Image.Image":
    """The picture in ``data``, opened (not decoded); a :class:`PhotoProblem` when it is none or a pixel bomb."""
    from PIL import Image, UnidentifiedImageError

    _register_heif()
    if not data:
        raise PhotoProblem("not_a_picture", "not prepared: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError:
        raise PhotoProblem("pixel_bomb", "not prepared: the file declares far more pixels than any photo has (a "
                                         "damaged or hostile file, a 'pixel bomb'); it was not decoded — replace "
                                         "it with the photo") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise PhotoProblem("not_a_picture", "not prepared: not a picture (it is not a JPEG, HEIC, PNG, WebP or TIFF "
                                            "that can be read); replace it with the photo or remove it") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise PhotoProblem("damaged", "not prepared: the picture has no size (the file is damaged)")
    if width * height > settings.max_pixels:
        raise PhotoProblem("pixel_bomb", f"not prepared: the file declares {width}×{height} pixels "
                                         f"({width * height / 1e6:.0f} megapixels), more than the "
                                         f"{settings.max_pixels / 1e6:.0f} prepared — a damaged or hostile file "
                                         "(a 'pixel bomb') or a huge scan; it was not decoded: make it smaller first")
    return img


def _orientation(img: "Image.Image") -> int:
    """The EXIF orientation (1–8) the picture is stored with; a HEIC's, which pillow-heif applies on reading."""
    if img.format == "HEIF":
        value = img.info.get("original_orientation")
    else:
        try:
            value = img.getexif().get(0x0112)
        except Exception:  # noqa: BLE001 - unreadable EXIF: treat as upright (it is removed anyway)
            value = None
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def _segments(data: bytes) -> list[tuple[int, bytes]]:
    """The marker segments of a JPEG before its image data: (marker, first bytes of the payload)."""
    found, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        found.append((marker, data[i + 4:i + 4 + min(length - 2, 40)]))
        if marker == 0xDA:  # start of scan: the image data follows
            break
        i += 2 + length
    return found


_APP_NAMES = [(0xE1, b"Exif", "EXIF"), (0xE1, b"http://ns.adobe.com/x", "XMP"), (0xED, b"", "IPTC"),
              (0xE2, b"MPF", "extra images (MPF)"), (0xE2, b"FPXR", "FlashPix data"), (0xFE, b"", "comment")]


def _jpeg_metadata(data: bytes) -> list[str]:
    """The kinds of metadata a JPEG's marker segments hold (APP0 JFIF, the colour profile and the Adobe
    colour marker are not metadata)."""
    kinds: list[str] = []
    for marker, head in _segments(data):
        if marker == 0xE0 and head.startswith(b"JFIF"):
            continue
        if (marker == 0xE2 and head.startswith(b"ICC_PROFILE")) or (marker == 0xEE and head.startswith(b"Adobe")):
            continue
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            continue
        name = next((n for m, prefix, n in _APP_NAMES if m == marker and head.startswith(prefix)), "maker data")
        if name not in kinds:
            kinds.append(name)
    return kinds


def metadata_left(data: bytes) -> list[str]:
    """What a prepared JPEG still holds besides its JFIF header and sRGB profile (empty: nothing)."""
    if not data.startswith(b"\xff\xd8"):
        return ["not a JPEG"]
    return _jpeg_metadata(data)


def _metadata(img: "Image.Image", data: bytes) -> list[str]:
    """Every kind of metadata the original holds, in plain words (EXIF, GPS, XMP, IPTC, thumbnail …)."""
    kinds = _jpeg_metadata(data) if img.format in ("JPEG", "MPO") else []
    info = img.info
    if info.get("exif") and "EXIF" not in kinds:
        kinds.append("EXIF")
    if (info.get("xmp") or info.get("XML:com.adobe.xmp")) and "XMP" not in kinds:
        kinds.append("XMP")
    if info.get("comment") and "comment" not in kinds:
        kinds.append("comment")
    if img.format == "PNG" and getattr(img, "text", None):
        kinds.append("text")
    if img.format == "TIFF" and 33723 in getattr(img, "tag_v2", {}):
        kinds.append("IPTC")
    try:
        exif = img.getexif()
        if exif.get_ifd(0x8825):
            kinds.append("GPS")
        if 0x0201 in exif.get_ifd(-1):
            kinds.append("thumbnail")
    except Exception:  # noqa: BLE001 - an unreadable EXIF block is removed like any other
        pass
    return kinds


def _profile(img: "Image.Image") -> tuple[Any, str | None]:
    """(the ICC profile, its description) of the picture; (None, None) without one."""
    icc = img.info.get("icc_profile")
    if not icc:
        return None, None
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return profile, (ImageCms.getProfileDescription(profile) or "unnamed").strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None, "unreadable"


def _is_srgb(description: str | None) -> bool:
    return bool(description) and "srgb" in str(description).lower().replace(" ", "")


@dataclass
class Look:
    """What the check of one original found (pass 1), kept in the journal so a re-run need not decode again."""

    sha256: str
    bytes: int
    format: str | None = None
    width: int | None = None   # upright
    height: int | None = None
    orientation: int = 1
    mode: str | None = None
    metadata: list[str] = field(default_factory=list)
    profile: str | None = None
    phash: str | None = None
    thumb: str | None = None
    problem: tuple[str, str] | None = None

    def facts(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("format", "width", "height", "orientation", "mode", "metadata",
                                             "profile", "phash", "thumb")}

    @classmethod
    def from_facts(cls, sha: str, size: int, facts: Mapping[str, Any]) -> "Look | None":
        try:
            return cls(sha, size, **{k: facts[k] for k in ("format", "width", "height", "orientation", "mode",
                                                           "metadata", "profile", "phash", "thumb")})
        except (KeyError, TypeError):
            return None


def inspect_photo(data: bytes, settings: Settings | None = None) -> Look:
    """Check one original without preparing it: its kind, upright size, orientation, metadata, colour
    profile and perceptual hash (from a decode at reduced size), or the ``problem`` (outcome, message)."""
    settings = settings or Settings()
    look = Look(hashlib.sha256(data).hexdigest(), len(data))
    try:
        img = _open(data, settings)
    except PhotoProblem as problem:
        look.problem = (problem.outcome, problem.message)
        return look
    with img:
        look.format, look.mode = img.format, img.mode
        width, height = img.size
        try:  # decoding comes first: reading EXIF may decode a PNG and hide its errors
            _hash(img, look)
        except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
            look.problem = ("damaged", "not prepared: the picture is damaged or truncated (it could not be decoded: "
                                       f"{redact(exc)}); get the photo again from where it came from")
            return look
        look.orientation = _orientation(img)
        if look.format != "HEIF" and look.orientation >= 5:
            width, height = height, width
        look.width, look.height = width, height
        look.metadata, look.profile = _metadata(img, data), _profile(img)[1]
    if width < settings.min_width or height < settings.min_height:
        look.problem = ("too_small", f"not prepared: {width}×{height} pixels is too small for a usable photo (at "
                                     f"least {settings.min_width}×{settings.min_height} upright); ask for a larger photo")
    return look


def _hash(img: "Image.Image", look: Look) -> None:
    """Decode at reduced size (which also proves the file is whole) and hash the upright picture."""
    from PIL import Image, ImageOps

    if img.format in ("JPEG", "MPO"):
        img.draft(None, (256, 256))
    img.load()
    small = ImageOps.exif_transpose(img) if img.format != "HEIF" else img.copy()
    small.thumbnail((256, 256), Image.Resampling.BILINEAR)
    small = _eight_bit_rgb(small, flat=True)
    import imagehash

    look.phash = str(imagehash.phash(small, hash_size=HASH_SIZE))
    look.thumb = small.resize((8, 8), Image.Resampling.BOX).tobytes().hex()


# -- preparing ---------------------------------------------------------------------------------------------
@dataclass
class Prepared:
    """One prepared photo: the JPEG ``data`` and what was done to get it."""

    data: bytes
    look: Look
    width: int
    height: int
    quality: int | None = None
    kept: bool = False                         # the original was ready: its bytes are used as they are
    colour: str | None = None                  # what was done to the colours, in plain words
    sha256: str = ""

    @property
    def scaled(self) -> bool:
        return (self.width, self.height) != (self.look.width, self.look.height)

    def facts(self) -> dict[str, Any]:
        return {**self.look.facts(), "out_width": self.width, "out_height": self.height, "out_bytes": len(self.data),
                "quality": self.quality, "kept": self.kept, "colour_done": self.colour,
                "prepared_sha256": self.sha256}


def _ready(look: Look, settings: Settings) -> bool:
    """Whether the original is already what preparing would give: sent as it is, not re-encoded."""
    return (look.format == "JPEG" and look.mode in ("RGB", "L") and look.orientation == 1 and not look.metadata
            and (look.profile is None or _is_srgb(look.profile)) and look.bytes <= settings.max_bytes
            and max(look.width or 0, look.height or 0) <= settings.max_side)


def prepare_bytes(data: bytes, settings: Settings | None = None, look: Look | None = None) -> Prepared:
    """Prepare one photo (see the module docstring): upright, sRGB JPEG, within ``max_side`` and
    ``max_bytes``, no metadata. Raises :class:`PhotoProblem` when it cannot be prepared."""
    settings = settings or Settings()
    look = look if look is not None and look.width else inspect_photo(data, settings)
    if look.problem:
        raise PhotoProblem(*look.problem)
    if _ready(look, settings):
        return Prepared(data, look, look.width or 0, look.height or 0, kept=True,
                        sha256=hashlib.sha256(data).hexdigest())
    with _open(data, settings) as img:
        upright, icc_note, icc = _decode_upright(img, look, settings)
    rgb, colour = _to_srgb(upright, icc, look.profile)
    colour = "; ".join(n for n in (icc_note, colour) if n) or None
    out, quality, (width, height) = _encode(rgb, settings, with_profile=look.profile is not None)
    left = metadata_left(out)
    if left:  # never expected: the encoder was given no metadata
        raise PhotoProblem("failed", f"not prepared: the prepared copy still held {', '.join(left)}")
    return Prepared(out, look, width, height, quality=quality, colour=colour,
                    sha256=hashlib.sha256(out).hexdigest())


def _decode_upright(img: "Image.Image", look: Look, settings: Settings) -> tuple["Image.Image", str | None, Any]:
    """The whole picture decoded (a JPEG at the smallest scale still at least ``max_side``) and upright."""
    from PIL import ImageOps

    icc, _ = _profile(img)
    note = "the colour profile could not be read: colours kept as they are" if look.profile == "unreadable" else None
    if img.format in ("JPEG", "MPO"):
        w, h = img.size
        scale = min(1.0, settings.max_side / max(w, h))
        img.draft(None, (max(1, int(w * scale)), max(1, int(h * scale))))
    try:
        img.load()
        upright = ImageOps.exif_transpose(img) if img.format != "HEIF" else img.copy()
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise PhotoProblem("damaged", f"not prepared: the picture is damaged or truncated ({redact(exc)})") from None
    return upright, note, icc


def _eight_bit_rgb(img: "Image.Image", flat: bool = True) -> "Image.Image":
    """RGB (or RGBA when not ``flat``) with 8 bits a channel: 16-bit and float pictures scaled, palettes
    expanded, transparency put on white."""
    from PIL import Image

    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        import numpy as np

        values = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        if not flat:
            return rgba
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    return img if img.mode == "RGB" else img.convert("RGB")


def _to_srgb(img: "Image.Image", icc: Any, description: str | None) -> tuple["Image.Image", str | None]:
    """The picture as 8-bit sRGB, its colour profile converted (ImageCms); a plain note of what was done."""
    from PIL import ImageCms

    notes = []
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        notes.append("16 bits per channel reduced to 8")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        notes.append("transparent background made white")
    if icc is not None and not _is_srgb(description) and img.mode in ("RGB", "RGBA", "CMYK", "L", "LA"):
        target = "RGBA" if img.mode in ("RGBA", "LA") else "RGB"
        try:
            img = ImageCms.profileToProfile(img, icc, ImageCms.createProfile("sRGB"), outputMode=target)
            notes.insert(0, f"colour profile '{description}' converted to sRGB")
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            notes.insert(0, f"colour profile '{description}' could not be converted ({exc}): colours kept")
    elif img.mode == "CMYK":
        notes.insert(0, "CMYK converted to RGB (no colour profile: a plain conversion)")
    return _eight_bit_rgb(img), "; ".join(notes) or None


def _encode(img: "Image.Image", settings: Settings, with_profile: bool) -> tuple[bytes, int, tuple[int, int]]:
    """JPEG bytes of at most ``max_bytes``: scaled to ``max_side``, then lower qualities, then smaller sizes."""
    from PIL import Image, ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() if with_profile else None
    side = min(settings.max_side, max(img.size))
    qualities = [q for q in dict.fromkeys((settings.quality, *QUALITIES)) if q <= settings.quality]
    while True:
        scaled = img
        if max(img.size) > side:
            ratio = side / max(img.size)
            size = (max(1, round(img.width * ratio)), max(1, round(img.height * ratio)))
            scaled = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        scaled.info = {}  # nothing of the original's info (comment, exif, xmp …) may reach the encoder
        for quality in qualities:
            buffer = io.BytesIO()
            scaled.save(buffer, "JPEG", quality=quality, icc_profile=icc, optimize=False)
            if buffer.tell() <= settings.max_bytes:
                return buffer.getvalue(), quality, scaled.size
        side = int(side * 0.8)
        if side < max(settings.min_width, settings.min_height):
            raise PhotoProblem("too_large", f"not prepared: the photo cannot be brought under "
                                            f"{settings.max_bytes / 1024 / 1024:.1f} MB without making it too small")


# -- what was done, in plain words -------------------------------------------------------------------------
_FORMAT_NAMES = {"HEIF": "HEIC", "PNG": "PNG", "WEBP": "WebP", "TIFF": "TIFF"}


def planned_facts(look: Look, settings: Settings) -> dict[str, Any]:
    """What preparing ``look``'s photo will do, before it is done (dry runs)."""
    w, h = look.width or 0, look.height or 0
    ratio = min(1.0, settings.max_side / max(w, h, 1))
    notes = []
    if look.profile and look.profile != "unreadable" and not _is_srgb(look.profile):
        notes.append(f"colour profile '{look.profile}' converted to sRGB")
    elif look.mode == "CMYK":
        notes.append("CMYK converted to RGB (no colour profile: a plain conversion)")
    if look.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        notes.append("16 bits per channel reduced to 8")
    if look.mode in ("RGBA", "LA", "PA"):
        notes.append("transparent background made white")
    return {**look.facts(), "out_width": round(w * ratio), "out_height": round(h * ratio), "out_bytes": None,
            "quality": None, "kept": _ready(look, settings), "colour_done": "; ".join(notes) or None}


def describe(facts: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The row's columns of what was (or will be) done: ``actions`` in plain words and one column each."""
    fmt, o = facts.get("format"), int(facts.get("orientation") or 1)
    w0, h0, w, h = facts.get("width"), facts.get("height"), facts.get("out_width"), facts.get("out_height")
    metadata = list(facts.get("metadata") or [])
    kept = bool(facts.get("kept"))
    rotated, converted = o != 1 and not kept, fmt not in ("JPEG", "MPO", None)
    scaled = None not in (w0, w) and (w0, h0) != (w, h)
    parts = []
    if kept:
        parts.append("nothing to change: already an upright JPEG within the limits and without metadata (used as "
                     "it is)")
    if rotated:
        parts.append(f"rotated upright ({'HEIC' if fmt == 'HEIF' else 'EXIF'} orientation {o}: the picture was "
                     f"stored {ORIENTATIONS.get(o, 'turned')})")
    if converted:
        parts.append(f"converted from {_FORMAT_NAMES.get(str(fmt), fmt)} to JPEG")
    if scaled:
        parts.append(f"scaled down from {w0}×{h0} to {w}×{h}")
    if metadata:
        parts.append("metadata removed: " + ", ".join(metadata))
    if facts.get("colour_done"):
        parts.append(str(facts["colour_done"]))
    quality = facts.get("quality")
    if quality and quality < settings.quality:
        parts.append(f"JPEG quality lowered to {quality} to stay within {settings.max_bytes / 1024 / 1024:.1f} MB")
    return {"actions": "; ".join(parts) or "re-encoded as JPEG", "format": fmt, "width": w, "height": h,
            "bytes": facts.get("out_bytes"), "width_before": w0, "height_before": h0, "rotated": rotated,
            "converted": converted, "scaled": scaled, "metadata_removed": ", ".join(metadata),
            "colour": facts.get("colour_done")}


def journal_facts(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The facts a journal entry of a prepared photo keeps (``None`` when it keeps none)."""
    if not entry:
        return None
    try:
        extra = json.loads(entry.get("extra") or "null")
    except (TypeError, ValueError):
        return None
    return extra if isinstance(extra, dict) and extra.get("phash") else None


def prepared_key(sha256: str, settings: Settings) -> str:
    """The upload journal's content key of a photo prepared on the way: its original and the settings."""
    return hashlib.sha256(f"{sha256}|{settings.key()}".encode()).hexdigest()


# -- duplicates ----------------------------------------------------------------------------------------------
def _thumb_distance(a: str, b: str) -> float:
    """How far two 8 × 8 colour thumbnails differ: the 90th percentile over the cells of a cell's largest
    channel difference (a copy differs a little everywhere; another photo a lot somewhere)."""
    x, y = bytes.fromhex(a), bytes.fromhex(b)
    cells = sorted(max(abs(x[i + k] - y[i + k]) for k in range(3)) for i in range(0, min(len(x), len(y)), 3))
    return float(cells[int(len(cells) * 0.9)]) if cells else 255.0


def find_duplicates(items: Sequence[tuple[Any, str, str, str]], distinct: Iterable[str] = ()) -> dict[Any, list[Any]]:
    """The same photo under two or more CPR numbers. ``items`` are ``(key, cpr, phash hex, thumb hex)``;
    returns each flagged key with the other keys of its group. Two photos are the same when their
    perceptual hashes differ in at most :data:`PHASH_DISTANCE` of 256 bits and their 8 × 8 colour thumbnails
    by at most :data:`THUMB_DISTANCE`; files of one CPR, and two numbers both in ``distinct``,
    are never a pair."""
    excused = set(distinct)
    hashes = [int(h, 16) for _, _, h, _ in items]
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            ci, cj = items[i][1], items[j][1]
            if ci == cj or (ci in excused and cj in excused):
                continue
            if (hashes[i] ^ hashes[j]).bit_count() <= PHASH_DISTANCE \
                    and _thumb_distance(items[i][3], items[j][3]) <= THUMB_DISTANCE:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(root(i), []).append(i)
    flagged: dict[Any, list[Any]] = {}
    for members in groups.values():
        if len({items[i][1] for i in members}) > 1:
            for i in members:
                flagged[items[i][0]] = [items[j][0] for j in members if j != i]
    return flagged


# -- the folder: pass 1, the checks ------------------------------------------------------------------------
def default_workers() -> int:
    """Pictures decoded at once: the processor's cores, at most 4 (each decode holds a picture in memory)."""
    return max(1, min(4, os.cpu_count() or 2))


def _bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled or not total:
        return None
    try:
        return progress_bar(total, desc, unit="photo", leave=False)
    except Exception:  # noqa: BLE001 - no progress bar is no reason to stop
        return None


def unexpected(exc: BaseException) -> str:
    """The plain message of an error nobody foresaw while preparing one photo (also logged at debug level)."""
    log.debug("unexpected %s while preparing a photo: %s", type(exc).__name__, redact(exc))
    return f"not prepared: unexpected {type(exc).__name__}: {redact(exc)}"


def guarded(work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)``, any error but a :class:`PhotoProblem` turned into one (``failed``): preparing happens
    before anything is sent, so an error there never means "may have been stored"."""
    try:
        return work(*args)
    except PhotoProblem:
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise PhotoProblem("failed", unexpected(exc)) from None


def _read(c: "Candidate") -> tuple[bytes, str] | Look:
    """Pass 1 reads one file (never through a link) and hashes it; a :class:`Look` with the problem when it
    cannot be read."""
    size = c.entry.size or 0
    if size > MAX_ORIGINAL:
        return Look("", size, problem=("too_large", f"not prepared: the file is {size / 1024 / 1024:.0f} MB; at "
                                                    f"most {MAX_ORIGINAL // 1024 // 1024} MB is read"))
    try:
        data = read(c.entry, MAX_ORIGINAL)
    except UnreadableEntry as exc:
        return Look("", 0, problem=("not_a_file", f"not prepared: {exc}"))
    return data, hashlib.sha256(data).hexdigest()


async def _look_file(c: "Candidate", settings: Settings, cached: Callable[[str, str], Any] | None) -> Look:
    """Pass 1 for one file: check it — or take the facts the journal kept from an earlier run of the same
    original and settings (asked on the event loop's thread; reading and decoding run in worker threads)."""
    got = await asyncio.to_thread(_read, c)
    if isinstance(got, Look):
        return got
    data, sha = got
    facts = cached(c.cpr or "", sha) if cached is not None and c.cpr else None
    look = Look.from_facts(sha, len(data), facts) if facts else None
    return look if look is not None else await asyncio.to_thread(inspect_photo, data, settings)


async def check_folder(candidates: Sequence["Candidate"], settings: Settings, *, workers: int, progress: bool,
                       distinct: Iterable[str] = (), cached: Callable[[str, str], Any] | None = None,
                       verb: str = "prepared") -> None:
    """Pass 1 over the folder: each photo file gets its :class:`Look`; a problem becomes the candidate's
    outcome, and so does the same photo under two or more CPR numbers (``duplicate_photo``)."""
    semaphore = asyncio.Semaphore(workers)
    todo = [c for c in candidates if c.outcome in (None, "duplicate") and c.cpr]
    bar = _bar(len(todo), "Uddata+: photo check", progress)

    async def one(c: "Candidate") -> None:
        async with semaphore:
            try:
                c.look = await _look_file(c, settings, cached)
            except Exception as exc:  # noqa: BLE001 - one file's surprise is its row, never the run's end
                c.look = Look("", 0, problem=("failed", unexpected(exc)))
        if c.look.problem and c.outcome is None:
            c.outcome, c.message = c.look.problem
            c.message = c.message.replace("not prepared", f"not {verb}", 1)
        if bar is not None:
            bar.update(1)

    try:
        await asyncio.gather(*(one(c) for c in todo))
    finally:
        if bar is not None:
            bar.close()
    _flag_duplicates(todo, distinct, verb)


def _flag_duplicates(candidates: Sequence["Candidate"], distinct: Iterable[str], verb: str) -> None:
    from . import cpr as _cpr

    excused = {_cpr.normalize(v) for v in distinct}
    hashed = [c for c in candidates if c.look is not None and c.look.phash and c.look.thumb and not c.look.problem]
    groups = find_duplicates([(i, c.cpr or "", c.look.phash, c.look.thumb) for i, c in enumerate(hashed)],
                             excused)
    for i, others in groups.items():
        c = hashed[i]
        c.duplicate_of = ", ".join(hashed[j].name for j in others)
        if c.outcome is None:
            c.outcome = "duplicate_photo"
            c.message = redact(
                f"not {verb}: the same photo as {c.duplicate_of} (a perceptual hash finds re-saved, converted "
                "and resized copies too), under another CPR number. A photo belongs to one student: remove the "
                "wrong file and run again — or, if they are different people, give both CPR numbers in distinct=")


# -- the folder: pass 2, prepared copies in ``out`` --------------------------------------------------------
def _sha_of_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _write(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` whole or not at all (a temporary file renamed into place)."""
    from ..core.files import write_atomically

    write_atomically(target, data)


class _Preparer:
    """The preparation of one folder into ``out`` on the core write protocol: "sending" a photo is writing
    its prepared copy; the journal in ``out`` says which original (and settings) each copy came from."""

    def __init__(self, run: Any, out: Path, settings: Settings, workers: int) -> None:
        self.run, self.out, self.settings = run, out, settings
        self.semaphore = asyncio.Semaphore(workers)
        self._ours: set[str] | None = None

    def row(self, c: "Candidate", outcome: str, message: str, facts: Mapping[str, Any] | None = None,
            prepared: Path | None = None) -> dict[str, Any]:
        row: dict[str, Any] = {"file": c.name, "cpr": c.cpr, "outcome": outcome, "message": redact(message),
                               "duplicate_of": getattr(c, "duplicate_of", None),
                               "prepared": str(prepared) if prepared is not None else None}
        look = getattr(c, "look", None)
        if facts is None and look is not None and look.width:
            facts = {**look.facts(), "out_width": None, "out_height": None, "kept": False}
            row.update(describe(facts, self.settings), actions=None, rotated=None, converted=None, scaled=None)
        elif facts is not None:
            row.update(describe(facts, self.settings))
        row["bytes_before"] = look.bytes if look is not None and look.bytes else None
        return row

    async def one(self, c: "Candidate") -> dict[str, Any]:
        if c.outcome:
            return self.row(c, c.outcome, (c.message or "") + self._remove_stale(c))
        assert c.cpr is not None and c.look is not None
        target = self.out / f"{c.cpr}.jpg"
        if self.run.dry_run:
            return self._dry(c, target)
        settled = await self.run.write(c.cpr, c.look.sha256, lambda: self._send(c, target), label=c.name,
                                       keep=lambda entry: _intact(target, entry))
        return self._row_of(c, settled, target)

    def _dry(self, c: "Candidate", target: Path) -> dict[str, Any]:
        before = self.run.previous(c.cpr, c.look.sha256)
        facts = journal_facts(before)
        if before and before.get("state") == "done" and facts and _intact(target, before):
            return self.row(c, "already_prepared", "not prepared again: this photo was prepared on "
                            f"{str(before.get('updated') or '')[:10]} with the same settings", facts, target)
        return self.row(c, "would_prepare", f"would be prepared to {target.parent.name}/{target.name}; dry run: "
                        "nothing written", planned_facts(c.look, self.settings))

    async def _send(self, c: "Candidate", target: Path) -> Any:
        from ..core.writes import Stored

        async with self.semaphore:
            prepared = await asyncio.to_thread(guarded, self._prepare_and_write, c, target)
        return Stored(prepared, message="prepared", extra=prepared.facts())

    def _prepare_and_write(self, c: "Candidate", target: Path) -> Prepared:
        try:
            data = read(c.entry, MAX_ORIGINAL)
        except UnreadableEntry as exc:
            raise PhotoProblem("not_a_file", f"not prepared: {exc}") from None
        if hashlib.sha256(data).hexdigest() != c.look.sha256:
            raise PhotoProblem("failed", "not prepared: the file changed while the folder was read; run again")
        prepared = prepare_bytes(data, self.settings, c.look)
        try:
            _write(target, prepared.data)
        except OSError as exc:
            raise PhotoProblem("failed", f"not prepared: the copy could not be written to {target.parent.name} "
                                         f"({exc.strerror or exc})") from None
        return prepared

    def _row_of(self, c: "Candidate", settled: Any, target: Path) -> dict[str, Any]:
        from ..core.writes import ALREADY, BUSY, SENT

        if settled.state == SENT:
            prepared = settled.stored.value
            return self.row(c, "prepared", f"prepared: written to {target.parent.name}/{target.name}",
                            prepared.facts(), target)
        if settled.state == ALREADY:
            return self.row(c, "already_prepared", "not prepared again: this photo was prepared on "
                            f"{settled.when} with the same settings, and its copy is unchanged",
                            journal_facts(settled.entry), target)
        if settled.state == BUSY:
            return self.row(c, "failed", "not prepared: another run is preparing this photo right now; run again "
                                         "later")
        error = settled.error
        if isinstance(error, PhotoProblem):
            return self.row(c, error.outcome, error.message + self._remove_stale(c))
        return self.row(c, "failed", f"not prepared: {redact(error)}")

    def on_error(self, c: "Candidate", exc: BaseException) -> dict[str, Any]:
        if isinstance(exc, PhotoProblem):
            return self.row(c, exc.outcome, exc.message)
        return self.row(c, "failed", unexpected(exc))

    def on_deferred(self, c: "Candidate") -> dict[str, Any]:
        return self.row(c, c.outcome or "failed", c.message or "not prepared: the run was stopped; run it again")

    def _remove_stale(self, c: "Candidate") -> str:
        """Remove this CPR's earlier prepared copy from ``out`` (it must not be sent now); what was done."""
        if self.run.dry_run or not c.cpr or c.outcome in ("hidden", "folder", "link", "not_a_file", "invalid_name"):
            return ""
        target = self.out / f"{c.cpr}.jpg"
        if not target.is_file() or target.is_symlink():
            return ""
        if self._ours is None:  # the copies this journal made (any settings)
            self._ours = {str(f.get("prepared_sha256")) for f in map(journal_facts, self.run.journal.entries()) if f}
        if _sha_of_file(target) not in self._ours:
            return ""
        try:
            target.unlink()
        except OSError:
            return f" (its earlier prepared copy {target.parent.name}/{target.name} could not be removed: delete it)"
        return f" (its earlier prepared copy was removed from {target.parent.name}/)"


def _intact(target: Path, entry: Mapping[str, Any]) -> bool:
    """Whether the prepared copy the journal recorded is still in ``out``, unchanged."""
    facts = journal_facts(entry)
    return bool(facts) and not target.is_symlink() and _sha_of_file(target) == facts.get("prepared_sha256")


def resolve_out(root: Path, out: "str | os.PathLike[str] | None") -> Path:
    """The folder prepared copies go to (default ``root/prepared``); never the photo folder itself."""
    target = Path(out).expanduser() if out is not None else root / OUT_NAME
    if target.exists() and not target.is_dir():
        raise ValidationError(f"out is a file, not a folder: {redact(target.name)}", service="uddata",
                              hint="Give out= a folder for the prepared copies (it is created when missing).")
    if target.resolve() == root.resolve():
        raise ValidationError("out is the photo folder itself: the originals are never changed", service="uddata",
                              hint=f"Give out= another folder, or leave it out (default: {root.name}/{OUT_NAME}).")
    return target


async def prepare_folder(folder: "str | os.PathLike[str]", out: "str | os.PathLike[str] | None" = None, *,
                         settings: Settings | None = None, dry_run: bool = False, distinct: Iterable[str] = (),
                         workers: int | None = None, progress: bool = True) -> ToolkitFrame:
    """Prepare every photo of ``folder`` into ``out``; one row per folder entry (see the module docstring)."""
    from ..core.bulk import check_concurrency, run_bulk
    from ..core.journal import destination
    from ..core.writes import WriteRun

    settings = settings or Settings()
    workers = check_concurrency(workers or default_workers(), "uddata", default=default_workers())
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValidationError(f"no such folder: {redact(root.name)}", service="uddata",
                              hint="Give the folder that holds the <cpr>.jpg / .heic / .png photos.")
    target = resolve_out(root, out)
    distinct = list(distinct)
    candidates = scan_folder(root, suffixes=SUFFIXES, out=target)
    if not dry_run:
        target.mkdir(parents=True, exist_ok=True)
    journal = target / JOURNAL_NAME if target.is_dir() else None
    where = destination("uddata", "prepare", settings=settings.key())
    with WriteRun("uddata", where, "photo preparation", journal=journal, items=len(candidates), dry_run=dry_run,
                  folder=None if dry_run else target) as run:
        await check_folder(candidates, settings, workers=workers, progress=progress, distinct=distinct,
                           cached=lambda cpr, sha: journal_facts(run.previous(cpr, sha)))
        preparer = _Preparer(run, target, settings, workers)
        outcome = await run_bulk(candidates, preparer.one, service="uddata",
                                 desc="photo preparation (dry run)" if dry_run else "photo preparation",
                                 concurrency=workers, on_error=preparer.on_error, on_deferred=preparer.on_deferred,
                                 breaker=None, progress=progress, summary_labels=PREPARE_LABELS)
        run.end(outcome)
    return frame(outcome.rows, PREPARE_SCHEMA, masked=MASKED, summary=outcome.summary, kind="assets",
                 service="uddata")


def prepare_photos(folder: "str | os.PathLike[str]", out: "str | os.PathLike[str] | None" = None, *,
                   max_side: int = 2000, max_bytes: int | None = None, min_size: tuple[int, int] = (200, 250),
                   quality: int = 90, distinct: Iterable[str] = (), dry_run: bool = False,
                   workers: int | None = None, progress: bool = True) -> ToolkitFrame:
    """Make every photo of ``folder`` ready to send; prepared ``<cpr>.jpg`` copies go to ``out``.

    Parameters
    ----------
    folder : the folder of ``<cpr>.jpg`` / ``.jpeg`` / ``.heic`` / ``.heif`` / ``.png`` / ``.webp`` / ``.tif``
        / ``.tiff`` files (it is only read).
    out : where the prepared copies go (created when missing); default ``folder/prepared``.
    max_side : the longest side of a prepared photo in pixels (larger ones are scaled down).
    max_bytes : the largest prepared file (default 10 MB, what Uddata+ accepts).
    min_size : (width, height) below which an upright photo is ``too_small``.
    quality : the JPEG quality (lowered, then the size, where a photo would exceed ``max_bytes``).
    distinct : CPR numbers whose photos you looked at and found to be of different people: two numbers both
        listed are never flagged ``duplicate_photo``.
    dry_run : check everything and say what would be done; nothing is written.
    workers : pictures prepared at once (default: the processor's cores, at most 4).

    Returns one row per folder entry: ``file, cpr, outcome, message, actions`` (what was done, in plain
    words), the prepared photo's ``width, height, bytes`` and the original's ``width_before, height_before,
    bytes_before``, ``format``, ``rotated, converted, scaled, metadata_removed, colour``, ``duplicate_of`` and
    ``prepared`` (the copy's path). See :mod:`toolkit.uddata.prepare` for every outcome.
    """
    from ..core.sync import run

    settings = Settings.of(max_side, max_bytes, min_size, quality)
    return run(prepare_folder(folder, out, settings=settings, dry_run=dry_run, distinct=distinct, workers=workers,
                              progress=progress))
