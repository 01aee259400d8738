"""Synthetic Mediaflow data for the sandbox: a folder tree, ~60 files, users, download formats, marks and
Pillow-made preview JPEGs.

Everything derives from the seed, so a sandbox, a test and a notebook see the same assets. Folder and
file ids may be negative (the vendor documents that numeric ids can be). Times are fixed relative to a
constant date, not to today, so listings are reproducible.

The values have the types of Mediaflow's own clients (issue 19): a folder's ``type`` and ``createdBy`` and a
file's ``uploadedBy`` are numbers (the Rust crate ``mediaflow``, ``mediaflow_core/src/folders.rs`` and
``files.rs``), ``parents`` a list of parent-folder objects (``ParentFolder`` there), and files carry ``dpi``,
``rating``, ``nrDownloads``, ``mark``, ``instructions``, ``hasVersions``, ``hasHistory``, ``locked`` and
``comment`` (``FileFull``) and ``gdprType``, ``mediaId`` and ``alpha`` (asked for by Mediaflow's file selector,
``fileselector-web`` ``src/js/modules/fileview.js``). Which number means which folder type is not known: the
sandbox serves 1 for a folder and 2 for a shared folder (its own assumption).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
from typing import Any

__all__ = ["FILE_TYPES", "PREVIEW_SIZES", "FOLDER_TYPES", "USERS", "API_USER", "FORMATS", "MARKS", "WARNING_MARK",
           "make_folders", "make_files", "make_preview", "file_type_for", "user_name"]

#: extension → the file's ``type`` object
FILE_TYPES: dict[str, dict[str, Any]] = {
    "jpg": {"id": 101, "type": "image", "description": "JPEG-bild", "extension": "jpg"},
    "jpeg": {"id": 101, "type": "image", "description": "JPEG-bild", "extension": "jpeg"},
    "png": {"id": 102, "type": "image", "description": "PNG-bild", "extension": "png"},
    "tif": {"id": 103, "type": "image", "description": "TIFF-bild", "extension": "tif"},
    "gif": {"id": 104, "type": "image", "description": "GIF-bild", "extension": "gif"},
    "pdf": {"id": 201, "type": "document", "description": "PDF-dokument", "extension": "pdf"},
    "docx": {"id": 202, "type": "document", "description": "Word-dokument", "extension": "docx"},
    "mp4": {"id": 301, "type": "video", "description": "MP4-video", "extension": "mp4"},
}

#: preview name → longest side in pixels
PREVIEW_SIZES: dict[str, int] = {"thumb": 96, "small": 240, "medium": 480}

BASE_TIME = dt.datetime(2025, 6, 2, 9, 0, 0, tzinfo=dt.timezone.utc)

#: folder kind → the number Mediaflow's ``type`` holds (the sandbox's assumption; the crate says a number)
FOLDER_TYPES: dict[str, int] = {"folder": 1, "shared": 2}

#: user id → (login, display name); ``uploadedBy`` / ``createdBy`` are the ids
USERS: dict[int, tuple[str, str]] = {
    4101: ("api.integration", "API-integration"),
    4102: ("anna.lindqvist", "Anna Lindqvist"),
    4103: ("erik.johansson", "Erik Johansson"),
    4104: ("webbredaktion", "Webbredaktionen"),
}
#: the user the sandbox's API client acts as (``users/me``)
API_USER = 4101

#: download formats (``GET format`` / ``formats``): id, name, suffix, filetype, width, height, keepRatio, dpi.
#: -1 for a width or height keeps the original's (as in the crate's ``FormatFull``); format 0, the original,
#: is not listed (the file selector adds it itself)
FORMATS: list[dict[str, Any]] = [
    {"id": 11, "name": "Webb stor", "suffix": "_stor", "filetype": "jpg", "width": 1600, "height": -1,
     "keepRatio": True, "dpi": 72},
    {"id": 12, "name": "Webb liten", "suffix": "_liten", "filetype": "jpg", "width": 480, "height": -1,
     "keepRatio": True, "dpi": 72},
    {"id": 13, "name": "Kvadrat", "suffix": "_kvadrat", "filetype": "png", "width": 400, "height": 400,
     "keepRatio": False, "dpi": 72},
]

#: markings (``GET marks``): a file's ``mark`` names one of them (0 = no mark)
MARKS: list[dict[str, Any]] = [
    {"mark": 1, "name": "Godkänd"}, {"mark": 2, "name": "Under granskning"}, {"mark": 3, "name": "Får ej publiceras"},
    {"mark": 4, "name": "Endast internt"}, {"mark": 5, "name": "Kontrollera licens"}, {"mark": 6, "name": "Favorit"},
]
#: a file with this mark has ``downloadWarning: true`` on its download links (the sandbox's assumption)
WARNING_MARK = 5

# id, name, parent (0 = top level), type, archived, upload allowed
_FOLDERS = [
    (10, "Bilder", 0, "folder", False, True),
    (11, "Press", 10, "folder", False, True),
    (12, "Press 2024", 11, "folder", False, True),
    (13, "Press 2025", 11, "folder", False, True),
    (-14, "Evenemang", 10, "folder", False, True),
    (-15, "Prisutdelning", -14, "folder", False, True),
    (20, "Dokument", 0, "folder", False, True),
    (21, "Avtal", 20, "folder", False, False),
    (22, "Arkiv 2019", 20, "folder", True, True),
    (-30, "Delat med byrån", 0, "shared", False, True),
    (-31, "Logotyper", -30, "shared", False, True),
    (-32, "Gamla logotyper", -31, "shared", True, True),
    (40, "Video", 0, "folder", False, True),
    (41, "Reklamfilmer", 40, "folder", False, True),
]

_WORDS = ["prispall", "sommar", "stockholm", "kontor", "entré", "personal", "möte", "skärgård", "göteborg",
          "logotyp", "vinter", "midsommar", "malmö", "fika", "konferens", "mässa", "utsikt", "bro", "hamn", "skog"]
_PEOPLE = ["Anna Lindqvist", "Erik Johansson", "Sara Nyström", "Johan Åberg", "Maja Holm", "Oskar Berg"]
_UPLOADERS = ["api.integration", "anna.lindqvist", "erik.johansson", "webbredaktion"]
_USER_IDS = {login: uid for uid, (login, _) in USERS.items()}
_GDPR_TYPES = ["NO_PERSONS", "NO_PERSONS", "PERSONS_WITH_CONSENT", "UNKNOWN"]


def user_name(user_id: int) -> str:
    """The display name of a sandbox user id."""
    return USERS.get(user_id, ("", f"user {user_id}"))[1]


def _parent_object(folder: dict[str, Any]) -> dict[str, Any]:
    """A parent folder as the crate's ``ParentFolder``: id, name, type, depth, parent, hasChildren."""
    return {k: folder[k] for k in ("id", "name", "type", "depth", "parent", "hasChildren")}


def make_folders(seed: int) -> list[dict[str, Any]]:
    """The folder tree as a flat list (parents before children): every field of the contract, with the
    crate's types (``type`` and ``createdBy`` numbers, ``parents`` parent-folder objects from the top), plus
    ``uploadAllowed`` (emulator-only)."""
    by_id = {f[0]: f for f in _FOLDERS}
    rng = random.Random(f"mediaflow-folders-{seed}")
    out: list[dict[str, Any]] = []
    made: dict[int, dict[str, Any]] = {}
    for fid, name, parent, ftype, archived, allowed in _FOLDERS:
        parents = []
        p = parent
        while p:
            parents.insert(0, p)
            p = by_id[p][2]
        created = BASE_TIME - dt.timedelta(days=400 + rng.randrange(300))
        folder = {
            "id": fid, "name": name, "type": FOLDER_TYPES[ftype], "depth": len(parents), "parent": parent,
            "created": created.isoformat(timespec="seconds"), "createdBy": _USER_IDS[rng.choice(_UPLOADERS)],
            "hasChildren": any(f[2] == fid for f in _FOLDERS), "archived": archived,
            "viewLayout": "grid", "separator": False, "parents": [_parent_object(made[i]) for i in parents],
            "uploadAllowed": allowed,
        }
        made[fid] = folder
        out.append(folder)
    return out


def file_type_for(filename: str) -> dict[str, Any]:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext in FILE_TYPES:
        return dict(FILE_TYPES[ext])
    return {"id": 0, "type": "other", "description": "Okänd filtyp", "extension": ext}


def make_files(seed: int, count: int = 60) -> list[dict[str, Any]]:
    """``count`` files, newest first, with the §4.5 fields (preview URLs are filled in by the emulator)."""
    rng = random.Random(f"mediaflow-files-{seed}")
    image_folders = [f[0] for f in _FOLDERS if f[0] not in (20, 21, 22, 40, 41)]
    files = []
    t = BASE_TIME
    used_ids: set[int] = set()
    for i in range(count):
        t -= dt.timedelta(minutes=rng.randint(7, 600))
        roll = rng.random()
        ext = "pdf" if roll < 0.12 else "mp4" if roll < 0.2 else "png" if roll < 0.3 else "jpg"
        if i in (0, 1, 3):  # the newest files are JPEGs, whatever the seed
            ext = "jpg"
        while True:
            fid = rng.randint(100000, 999999) * (-1 if rng.random() < 0.1 else 1)
            if fid not in used_ids and -fid not in used_ids:
                used_ids.add(fid)
                break
        if i == 3:  # one negative id near the top of the latest list, whatever the seed
            fid = -abs(fid)
        name = f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}-{i + 1:02d}"
        ftype = file_type_for(f"x.{ext}")
        folder = rng.choice([20, 21, 22] if ext == "pdf" else [40, 41] if ext == "mp4" else image_folders)
        width, height = {"jpg": rng.choice([(960, 540), (1920, 1280), (1200, 1600), (800, 800)]),
                         "png": rng.choice([(512, 512), (1024, 300)]),
                         "mp4": (1920, 1080), "pdf": (0, 0)}[ext]
        has_preview = ext in ("jpg", "png", "mp4") and not (ext != "mp4" and rng.random() < 0.1)
        if i == 1:  # one image without a preview near the top, whatever the seed
            has_preview = False
        elif i in (0, 3):
            has_preview = True
        size = rng.randint(40_000, 6_000_000) if ext != "mp4" else rng.randint(5_000_000, 90_000_000)
        files.append({
            "id": fid, "name": name, "filename": f"{name}.{ext}", "type": ftype, "filesize": size,
            "checksum": hashlib.md5(f"{seed}-{fid}".encode()).hexdigest(),
            "width": width, "height": height,
            "uploaded": t.isoformat(timespec="seconds"), "uploadedBy": _USER_IDS[rng.choice(_UPLOADERS)],
            "addedToFolder": t.isoformat(timespec="seconds"),
            "photographer": rng.choice(_PEOPLE) if ext in ("jpg", "png") else "",
            "description": f"{name.replace('-', ' ').capitalize()}" if rng.random() < 0.7 else "",
            "processed": not (i in (5, 17)),  # two files still processing
            "hasPreview": has_preview,
            "gdprStatus": rng.choice(["OK", "OK", "OK", "NOT_CHECKED"]),
            "alttext": f"Bild: {name.replace('-', ' ')}" if ext in ("jpg", "png") and rng.random() < 0.6 else "",
            "folderId": folder,
            "icon": f"https://static.mediaflowpro.com/images/icon{ftype['id']}.gif",
            "data": None,
        })
    _add_details(seed, files)
    return files


def _add_details(seed: int, files: list[dict[str, Any]]) -> None:
    """The fields of the crate's ``FileFull`` and the file selector that the first files had not, from a
    random stream of their own (so the files above stay what they were for every seed)."""
    rng = random.Random(f"mediaflow-file-details-{seed}")
    for i, f in enumerate(files):
        ext = f["type"]["extension"]
        image = f["type"]["type"] == "image"
        mark = rng.choice([0, 0, 0, 1, 1, 2, 3, 4, 6])
        if i == 2:  # one file near the top whose download links carry a warning, whatever the seed
            mark = WARNING_MARK
        f.update({
            "dpi": rng.choice([72, 300]) if image else 0, "rating": rng.randint(0, 5),
            "nrDownloads": rng.randint(0, 40), "mark": mark,
            "instructions": "Endast för redaktionellt bruk" if rng.random() < 0.15 else "",
            "hasVersions": rng.random() < 0.2, "hasHistory": rng.random() < 0.4, "locked": False,
            "comment": "Beskuren version finns" if rng.random() < 0.1 else "",
            "gdprType": rng.choice(_GDPR_TYPES) if image else "NO_PERSONS",
            "mediaId": hashlib.sha256(f"mediaflow-media-{seed}-{f['id']}".encode()).hexdigest()[:12],
            "alpha": ext == "png" and rng.random() < 0.5,
        })


def make_preview(key: str, width: int, height: int, size: str, source: bytes | None = None) -> bytes:
    """A JPEG preview (longest side from :data:`PREVIEW_SIZES`), different for every ``key``; made from
    ``source`` when it is a picture Pillow can read (an uploaded image)."""
    from PIL import Image, ImageDraw

    side = PREVIEW_SIZES[size]
    if source:
        try:
            with Image.open(io.BytesIO(source)) as img:
                img = img.convert("RGB")
                img.thumbnail((side, side))
                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=80)
                return buf.getvalue()
        except Exception:  # noqa: BLE001 - not a picture: draw one
            pass
    w, h = (width or 4), (height or 3)
    scale = side / max(w, h)
    w, h = max(8, round(w * scale)), max(8, round(h * scale))
    rng = random.Random(f"mediaflow-preview-{key}")
    a = tuple(rng.randrange(256) for _ in range(3))
    b = tuple(rng.randrange(256) for _ in range(3))
    img = Image.new("RGB", (w, h), a)
    draw = ImageDraw.Draw(img)
    for y in range(0, h, 2):
        t = y / h
        draw.rectangle([0, y, w, y + 1], fill=tuple(round(a[c] + (b[c] - a[c]) * t) for c in range(3)))
    for _ in range(4):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        r = rng.randint(side // 12, side // 4)
        draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=tuple(rng.randrange(256) for _ in range(3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()
