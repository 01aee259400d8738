"""The photos of an Uddata+ folder as their names say: one :class:`Candidate` per directory entry (the core
folder scanner's entry, the CPR number its name gives, or why it is refused), duplicates of one CPR flagged.
The folder upload and the preparation of photos both read a folder through :func:`scan_folder`; the
toolkit's own entries (the journals and the folder of prepared copies) get no candidate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.folders import Entry, own_files, scan
from . import cpr as _cpr

__all__ = ["Candidate", "scan_folder", "JOURNAL_NAME", "PREPARE_JOURNAL_NAME", "OUT_NAME", "NAME_RE",
           "JPEG_SUFFIXES", "MAX_BYTES"]

#: the upload's journal in the photo folder
JOURNAL_NAME = ".uddata-upload.sqlite"
#: the preparation's journal (in the folder of prepared copies) and that folder's default name
PREPARE_JOURNAL_NAME = ".uddata-prepare.sqlite"
OUT_NAME = "prepared"
NAME_RE = re.compile(r"^(\d{6})-?(\d{4})$")
JPEG_SUFFIXES = (".jpg", ".jpeg")
#: the largest photo Uddata+ accepts (it answers 413 over it)
MAX_BYTES = 10 * 1024 * 1024


@dataclass
class Candidate:
    """One entry of the folder (core :class:`~toolkit.core.folders.Entry`) and what its name says."""

    entry: Entry
    cpr: str | None = None
    outcome: str | None = None  # set when the entry is refused by its kind, its name or as a duplicate
    message: str | None = None
    #: with ``prepare=True``: what the check of the photo found (:class:`toolkit.uddata.prepare.Look`)
    look: Any = None
    #: with ``prepare=True``: the other files that hold the same photo under another CPR number
    duplicate_of: str | None = None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def path(self) -> Path:
        return self.entry.path


def _parse_name(entry: Entry, suffixes: tuple[str, ...] = JPEG_SUFFIXES) -> Candidate:
    path = entry.path
    if path.suffix.lower() not in suffixes:
        if suffixes == JPEG_SUFFIXES:
            return Candidate(entry, None, "invalid_name", "not sent: only <cpr>.jpg / <cpr>.jpeg files are uploaded "
                                                          "(HEIC, PNG, WebP and TIFF photos with prepare=True)")
        return Candidate(entry, None, "invalid_name", "not sent: only photos named <cpr> with "
                                                      f"{', '.join(suffixes)} are taken")
    stem = path.stem.strip()
    if not NAME_RE.match(stem):
        return Candidate(entry, None, "invalid_name",
                         "not sent: the name must be the CPR number, as DDMMYYSSSS.jpg or DDMMYY-SSSS.jpg")
    check = _cpr.validate(stem)
    if not check.valid:
        return Candidate(entry, None, "invalid_name", f"not sent: the name is {check.error}")
    return Candidate(entry, check.cpr)


def _candidate(entry: Entry, suffixes: tuple[str, ...] = JPEG_SUFFIXES) -> Candidate:
    """The candidate of one directory entry: refused by its kind unless it is a regular file."""
    if not entry.readable:
        return Candidate(entry, None, entry.kind, entry.reason)
    return _parse_name(entry, suffixes)


def _own(folder: Path, journal: "Path | None", out: "Path | None") -> set[str]:
    """The toolkit's own entries of ``folder``: the upload and preparation journals with their companions,
    and the folder of prepared copies (``out`` when it lies in the folder, else a ``prepared`` folder that
    holds a preparation journal)."""
    own = own_files(folder, journal, JOURNAL_NAME) | own_files(folder, None, PREPARE_JOURNAL_NAME)
    try:
        if out is not None and Path(out).expanduser().resolve().parent == folder.resolve():
            own.add(Path(out).name)
    except OSError:
        pass
    if (folder / OUT_NAME / PREPARE_JOURNAL_NAME).is_file():
        own.add(OUT_NAME)
    return own


def scan_folder(folder: Path, journal: "Path | None" = None, suffixes: tuple[str, ...] = JPEG_SUFFIXES,
                out: "Path | None" = None) -> list[Candidate]:
    """One candidate per entry of ``folder`` sorted by name (the core folder scanner), duplicates of one
    CPR flagged. The toolkit's own entries get none: the journal's files (``journal``, default
    ``folder/.uddata-upload.sqlite``), the preparation journal's and the folder of prepared copies (``out``).
    ``suffixes`` are the names taken (``.jpg``/``.jpeg``; with preparing also HEIC, PNG, WebP and TIFF)."""
    root = Path(folder)
    own = _own(root, journal, out)
    candidates = [_candidate(e, suffixes) for e in scan(folder, own=own, service="uddata")]
    by_cpr: dict[str, list[Candidate]] = {}
    for c in candidates:
        if c.cpr:
            by_cpr.setdefault(c.cpr, []).append(c)
    for group in by_cpr.values():
        if len(group) > 1:
            for c in group:
                c.outcome = "duplicate"
                c.message = (f"not sent: {len(group)} files in the folder are for the same CPR number; "
                             "keep the right one and run again")
    return candidates
