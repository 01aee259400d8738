"""Every entry of an upload folder becomes one row (broken links, folders, hidden names), over loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import toolkit
from toolkit.sandbox.uddata_data import make_photo
from toolkit.uddata.upload import JOURNAL_NAME, scan_folder

pytestmark = pytest.mark.integration


def odd_folder(folder: Path, roster: list[str]) -> dict[str, str]:
    """A folder with one entry of each awkward kind; returns name → expected outcome."""
    a, b, c, d, e = roster[70:75]
    folder.mkdir()
    (folder / f"{a}.jpg").write_bytes(make_photo(21))
    (folder / f"{b}.jpg").mkdir()                                  # a directory named like a photo
    os.symlink(folder / "gone.jpg", folder / f"{c}.jpg")            # a broken symlink
    (folder / f"..{d}.jpg").write_bytes(make_photo(22))             # hidden (two dots)
    (folder / f".{e}.jpg").write_bytes(make_photo(23))              # hidden
    (folder / "sub").mkdir()
    (folder / "sub" / f"{e}.jpg").write_bytes(make_photo(24))       # inside a sub-folder: not searched
    (folder / "notes.txt").write_text("x")
    os.symlink(folder / f"{a}.jpg", folder / f"{e}.JPG")            # a link, even to a photo: not followed
    return {f"{a}.jpg": "uploaded", f"{b}.jpg": "folder", f"{c}.jpg": "link",
            f"..{d}.jpg": "hidden", f".{e}.jpg": "hidden", "sub": "folder", "notes.txt": "invalid_name",
            f"{e}.JPG": "link"}


def test_every_entry_of_the_folder_is_one_row(sb, tmp_path):
    emu = sb.emulator("uddata")
    folder = tmp_path / "odd"
    expected = odd_folder(folder, emu.roster())
    with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
        result = ud.upload_folder(folder, progress=False)
        again = ud.upload_folder(folder, progress=False)  # the journal now lies in the folder
    assert dict(zip(result["file"], result["outcome"])) == expected
    assert len(again) == len(expected)  # the journal's own files get no row
    assert not any(str(f).startswith(JOURNAL_NAME) for f in again["file"])
    messages = dict(zip(result["file"], result["message"]))
    b, c = emu.roster()[71:73]
    assert "folder" in messages[f"{b}.jpg"] and "link" in messages[f"{c}.jpg"]
    assert "hidden" in messages[f"..{emu.roster()[73]}.jpg"]
    assert emu.roster()[73] not in emu.put_counts and emu.roster()[74] not in emu.put_counts


def test_scan_counts_one_candidate_per_entry(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(27):
        (folder / f"file{i:02d}.jpg").write_bytes(b"x")
    (folder / "0101901234.jpg").mkdir()
    os.symlink(folder / "missing", folder / "0202902345.jpg")
    (folder / "..0303903456.jpg").write_bytes(b"x")
    (folder / ".0404904567.jpg").write_bytes(b"x")
    (folder / "d").mkdir()
    (folder / JOURNAL_NAME).write_bytes(b"")
    (folder / (JOURNAL_NAME + "-wal")).write_bytes(b"")
    entries = [e for e in os.listdir(folder) if not e.startswith(JOURNAL_NAME)]
    assert len(entries) == 32
    candidates = scan_folder(folder)
    assert len(candidates) == 32
    assert sum(c.outcome == "folder" for c in candidates) == 2
    assert sum(c.outcome == "link" for c in candidates) == 1
    assert sum(c.outcome == "hidden" for c in candidates) == 2


def test_a_link_out_of_the_folder_is_never_read(sb, tmp_path):
    """A link to a file outside the folder (here a fake secret named like a photo's target) is a row of its
    own; its bytes never reach the service, and the same holds for a link to a photo outside the folder."""
    emu = sb.emulator("uddata")
    a, b, c = emu.roster()[80:83]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:fake-secret-line\n")
    (outside / "photo.jpg").write_bytes(make_photo(31))
    folder = tmp_path / "with-links"
    folder.mkdir()
    (folder / f"{a}.jpg").write_bytes(make_photo(32))
    os.symlink(outside / "passwd", folder / f"{b}.jpg")
    os.symlink(outside / "photo.jpg", folder / f"{c}.jpg")
    with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
        result = ud.upload_folder(folder, progress=False)
    outcomes = dict(zip(result["file"], result["outcome"]))
    assert outcomes == {f"{a}.jpg": "uploaded", f"{b}.jpg": "link", f"{c}.jpg": "link"}
    assert b not in emu.put_counts and c not in emu.put_counts
    messages = dict(zip(result["file"], result["message"]))
    assert "outside the folder" in messages[f"{b}.jpg"]
