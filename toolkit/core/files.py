"""File names a service suggests, made safe to write: nothing ends up outside the target folder.

* :func:`content_disposition_filename` reads ``filename*=`` (RFC 5987/6266, UTF-8) or ``filename=`` of a
  ``Content-Disposition`` header.
* :func:`safe_filename` keeps only the last path component, drops control characters, NUL and the
  characters Windows forbids, strips leading dots and spaces (no hidden files, no ``..``), prefixes the
  names Windows reserves (``CON``, ``NUL`` …) and shortens names to at most 200 bytes, keeping the
  extension.
* :func:`inside` joins a cleaned name to a folder and refuses any result outside it.
* :func:`temporary` makes the temporary file a write goes to before it is renamed into place; its name says
  which process made it (``.{name}.~tk{host}-{pid}~{random}.part``), so :func:`clean_temporaries` — run by
  the next write to the same folder — removes exactly what a killed run left, never the temporary of a run
  still going.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import tempfile
import time
import unicodedata
import zlib
from email.message import Message
from pathlib import Path
from urllib.parse import unquote

from .errors import ValidationError

__all__ = ["content_disposition_filename", "safe_filename", "inside", "temporary", "clean_temporaries",
           "write_atomically",
           "process_alive"]

_FORBIDDEN = set('<>:"|?*')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
MAX_BYTES = 200


def content_disposition_filename(header: str | None) -> str | None:
    """The file name a ``Content-Disposition`` header suggests, or None."""
    if not header:
        return None
    msg = Message()
    msg["content-disposition"] = header
    star = re.search(r"filename\*\s*=\s*([^;]+)", header, flags=re.I)
    if star:
        value = star.group(1).strip().strip('"')
        charset, _, rest = value.partition("'")
        _lang, _, encoded = rest.partition("'")
        try:
            return unquote(encoded or value, encoding=charset or "utf-8", errors="replace")
        except LookupError:
            return unquote(encoded or value)
    name = msg.get_param("filename", header="content-disposition")
    if isinstance(name, tuple):  # RFC 2231 form
        name = name[2]
    return str(name) if name else None


def safe_filename(name: str | None, fallback: str = "download") -> str:
    """A file name that is safe to create in a folder (see the module docstring)."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = text.replace("\\", "/").split("/")[-1]
    text = "".join(ch for ch in text if ch.isprintable() and ch not in _FORBIDDEN and ch != "\x00")
    text = text.strip().lstrip(".").strip()
    text = text.rstrip(". ")
    if not text:
        text = safe_filename(fallback, "download") if fallback and fallback != name else "download"
    if text.split(".")[0].upper() in _RESERVED:
        text = f"_{text}"
    if len(text.encode("utf-8")) > MAX_BYTES:
        stem, dot, ext = text.rpartition(".")
        if not dot or len(ext) > 16:
            stem, ext = text, ""
        keep = MAX_BYTES - len(ext.encode()) - 1
        stem = stem.encode("utf-8")[:keep].decode("utf-8", errors="ignore")
        text = f"{stem}.{ext}" if ext else stem
    return text


@functools.lru_cache(maxsize=256)
def _resolved(folder: str) -> Path:
    return Path(folder).resolve()


def inside(folder: "str | os.PathLike[str]", name: str) -> Path:
    """``folder / name``, refusing any name that would land outside ``folder``.

    A single path component (what :func:`safe_filename` returns) is checked by its text: no separator, not
    ``.`` or ``..``, no NUL. Anything else is resolved and must have ``folder`` as its parent. (Writing by
    rename over an existing symbolic link replaces the link itself; it is never followed.)"""
    root = _resolved(os.path.abspath(os.fspath(folder)))
    if name and name not in (".", "..") and not any(ch in name for ch in ("/", "\\", "\x00")):
        return root / name
    target = (root / name).resolve()
    if target.parent != root or not name:
        raise ValidationError(f"refused to write {name!r} outside the folder", service=None,
                              hint="The service suggested an unsafe file name; nothing was written.")
    return target


# -- temporaries ------------------------------------------------------------------------------------------
_HOST_TAG = f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFF:04x}"
_OURS = re.compile(r"^\..*\.~tk([0-9a-f]{4})-(\d+)~[a-z0-9_]+\.(part|partial|tmp)$")
#: the shape of the temporaries of earlier versions (``.{name}.{8 random}.part``): removed once stale
_OLD = re.compile(r"^\..{1,60}\.[a-z0-9_]{8}\.(part|partial)$")
#: a temporary older than this (seconds) is stale whoever made it
STALE_AFTER = 6 * 3600


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (a process we may not signal counts as running)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def temporary(folder: "str | os.PathLike[str]", name: str, suffix: str = ".part") -> tuple[int, str]:
    """A new temporary file in ``folder`` for ``name`` (``os.open`` descriptor and path), named so that
    :func:`clean_temporaries` knows its maker; the folder is made again if it was removed meanwhile."""
    prefix = f".{name[:40]}.~tk{_HOST_TAG}-{os.getpid()}~"
    try:
        return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    except FileNotFoundError:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)


def write_atomically(path: "str | os.PathLike[str]", data: bytes, suffix: str = ".part") -> None:
    """``data`` to ``path`` whole or not at all: a :func:`temporary` in the same folder, fsync, renamed into
    place (``os.replace``); the temporary is removed when anything fails (the error is raised as it is)."""
    target = Path(path)
    fd, tmp = temporary(target.parent, target.name, suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clean_temporaries(folder: "str | os.PathLike[str]") -> int:
    """Remove the temporaries that runs which no longer exist left in ``folder`` (a process of this machine
    that ended — killed mid-download, say — or any older than :data:`STALE_AFTER`); returns how many. Files
    that are not the toolkit's temporaries are never touched."""
    removed = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        ours, old = _OURS.match(entry.name), _OLD.match(entry.name)
        if not (ours or old) or entry.is_symlink():
            continue
        try:
            stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER
        except OSError:
            continue
        dead = ours is not None and ours.group(1) == _HOST_TAG and not process_alive(int(ours.group(2)))
        if dead or stale:
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed
