"""File names a service suggests, made safe to write: nothing ends up outside the target folder.

* :func:`content_disposition_filename` reads ``filename*=`` (RFC 5987/6266, UTF-8) or ``filename=`` of a
  ``Content-Disposition`` header.
* :func:`safe_filename` keeps only the last path component, drops control characters, NUL and the
  characters Windows forbids, strips leading dots and spaces (no hidden files, no ``..``), prefixes the
  names Windows reserves (``CON``, ``NUL`` …) and shortens names to at most 200 bytes, keeping the
  extension.
* :func:`inside` joins a cleaned name to a folder and refuses any result outside it.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from email.message import Message
from pathlib import Path
from urllib.parse import unquote

from .errors import ValidationError

__all__ = ["content_disposition_filename", "safe_filename", "inside"]

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
