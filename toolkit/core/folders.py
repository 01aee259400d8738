"""The one folder scanner of every bulk read of a local folder (photo uploads, file uploads).

``scan(folder, own=…)`` gives **one entry per directory entry**, sorted by name, each with its ``kind``:

* ``file`` — a regular file directly in the folder: the only kind that is ever read;
* ``hidden`` — its name starts with a dot (``.x.jpg``, ``..x.jpg``): never read;
* ``folder`` — a sub-folder: not searched;
* ``link`` — a symbolic link, whether it points to a file, a folder, outside the folder or nowhere: never
  followed, so nothing outside the folder is ever read;
* ``not_a_file`` — anything else (a device, a pipe, a socket).

The names in ``own`` (the toolkit's own journal and its ``-wal``/``-shm``/``-journal`` companions) get no
entry. The kind is also the outcome of the entry's result row in every service, with the plain reason in
:attr:`Entry.reason`.

:func:`read` reads an entry's bytes without following a link that replaced the file after the scan
(``O_NOFOLLOW``, then a check that what was opened is a regular file): a file swapped for a link to the
system's password file between scan and read is refused, not read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .errors import ValidationError

__all__ = ["Entry", "scan", "read", "KINDS", "SKIPPED", "own_files", "UnreadableEntry"]

#: every kind of entry, in the order a summary lists them
KINDS = ("file", "hidden", "folder", "link", "not_a_file")
#: the kinds that are never read (their rows say why)
SKIPPED = frozenset(KINDS) - {"file"}

_REASONS = {
    "hidden": "not sent: a hidden file (its name starts with a dot); rename it to send it",
    "folder": "not sent: a folder (sub-folders are not searched; move the files into this folder)",
    "link": "not sent: a symbolic link (links are not followed, so nothing outside the folder is read; copy "
            "the file itself into the folder to send it)",
    "not_a_file": "not sent: not a regular file (a device, a pipe or a socket)",
}


class UnreadableEntry(Exception):
    """The entry changed since the scan (it became a link or a non-file) or cannot be read."""


@dataclass(frozen=True)
class Entry:
    """One directory entry: ``path`` inside the folder (a link is not resolved), its ``kind`` (see the module
    docstring), its ``size`` in bytes for a file, and the plain ``reason`` it is not read."""

    path: Path
    kind: str
    size: int | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def readable(self) -> bool:
        return self.kind == "file"

    @property
    def reason(self) -> str | None:
        return _REASONS.get(self.kind)


def own_files(folder: Path, journal: Path | None, default_name: str) -> set[str]:
    """The names of the toolkit's own journal files in ``folder``: ``default_name`` and, when ``journal``
    lies in the folder, that file, each with its SQLite companions."""
    names = {default_name}
    if journal is not None:
        try:
            if Path(journal).expanduser().parent.resolve() == Path(folder).resolve():
                names.add(Path(journal).name)
        except OSError:
            pass
    return {n + suffix for n in names for suffix in ("", "-wal", "-shm", "-journal")}


def _kind(entry: "os.DirEntry[str]") -> tuple[str, int | None]:
    if entry.is_symlink():
        return "link", None
    if entry.name.startswith("."):
        return "hidden", None
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return "not_a_file", None
    if stat.S_ISDIR(info.st_mode):
        return "folder", None
    if stat.S_ISREG(info.st_mode):
        return "file", info.st_size
    return "not_a_file", None


def scan(folder: "str | os.PathLike[str]", *, own: Iterable[str] = (), service: str | None = None) -> list[Entry]:
    """One :class:`Entry` per entry of ``folder`` (sorted by name), the names in ``own`` left out.

    Raises :class:`ValidationError` naming the service when ``folder`` is not a folder."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValidationError(f"no such folder: {root.name}", service=service,
                              hint="Give the local folder that holds the files.")
    skip = set(own)
    with os.scandir(root) as found:
        entries = [e for e in found if e.name not in skip]
    result = []
    for e in sorted(entries, key=lambda e: e.name):
        kind, size = _kind(e)
        result.append(Entry(Path(e.path), kind, size))
    return result


def read(entry: Entry, max_bytes: int | None = None) -> bytes:
    """The bytes of a ``file`` entry, never through a link (see the module docstring). Reads at most
    ``max_bytes + 1`` bytes when ``max_bytes`` is given (the caller sees that the file is too large)."""
    if not entry.readable:
        raise UnreadableEntry(entry.reason or "not a file")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(entry.path, flags)
    except OSError as exc:
        raise UnreadableEntry("the file changed since the folder was read (it is now a link, or gone)"
                              if os.path.islink(entry.path) else f"it cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise UnreadableEntry("the file changed since the folder was read (it is no longer a regular file)")
        return fh.read() if max_bytes is None else fh.read(max_bytes + 1)
