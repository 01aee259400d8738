"""Boknett downloads save each object's file exactly once, whatever happens to the process.

* A run killed (SIGKILL) after a file was renamed into place but before the journal recorded it — at the
  1st, 50th and 150th file of about 200 — then run again: one file per object under its own name (no
  ``X~X.jpg`` copy), every row true, nothing lost.
* The same after a fresh report (new references): the name the killed run reserved stays the object's.
* A run killed with a body written to its temporary but not yet renamed: the next run removes the dead
  process's temporary (never the analyst's look-alike, never a live run's) and saves the file once.
* A Parquet pull removes the ``.partial`` a dead process left.
* Under a mix of 503, 429 and dropped connections every row agrees with the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

import toolkit
from toolkit.core.files import temporary
from toolkit.core.http import RetryPolicy
from toolkit.core.journal import Journal
from toolkit.sandbox import Sandbox
from toolkit.sandbox.boknett import BoknettEmulator
from toolkit.testing import run_killed

pytestmark = pytest.mark.integration

FAST = RetryPolicy(base=0.02, cap=0.2, retry_after_cap=0.1)
#: two attempts under ~45 % faults: about one object in five ends failed, so failed rows are checked too
SHORT = RetryPolicy(attempts=2, base=0.01, cap=0.05, retry_after_cap=0.05)
JOURNAL = ".boknett-downloads.sqlite"
CONCURRENCY = 8
OK = ("downloaded", "already_downloaded")

#: the child of run_killed: one download of ctx["records"] into ctx["folder"]
DOWNLOAD = """
import toolkit
bk = toolkit.boknett.connect(**ctx["credentials"])
bk.download(ctx["records"], ctx["folder"], concurrency=%d, progress=False)
""" % CONCURRENCY


@pytest.fixture(scope="module")
def eos() -> Iterator[Sandbox]:
    with toolkit.sandbox.start(services=["boknett"], seed=21) as sandbox:
        yield sandbox


@pytest.fixture
def emu(eos: Sandbox) -> Iterator[BoknettEmulator]:
    emulator = eos.emulator("boknett")
    assert isinstance(emulator, BoknettEmulator)
    with emulator.restored():
        yield emulator
    emulator.object_count = 300
    eos.set_faults("boknett")


def files_of(folder: Path) -> list[str]:
    """The files an analyst sees (no journal, no hidden temporaries)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and not p.name.startswith(JOURNAL))


def last_positions(records: list[dict[str, str]]) -> dict[str, int]:
    """item ({isbn13}_{type}) → the position of its last row (the row that downloads it)."""
    return {f"{r['isbn13']}_{r['type']}": k for k, r in enumerate(records)}


def done_in_journal(folder: Path) -> int:
    if not (folder / JOURNAL).exists():
        return 0
    with Journal(folder / JOURNAL, readonly=True) as book:
        return sum(1 for e in book.entries() if e["state"] == "done")


def plain_credentials(eos: Sandbox) -> dict[str, Any]:
    creds = eos.credentials("boknett")
    return {k: v.reveal() if hasattr(v, "reveal") else v for k, v in creds.items()}


def check_one_file_per_object(res: Any, records: list[dict[str, str]], folder: Path, emu: BoknettEmulator) -> None:
    """One file per object under the emulator's own name (no ``~`` copy), every row true."""
    last = last_positions(records)
    assert files_of(folder) == sorted(emu.filename(k) for k in last.values())
    assert not [f for f in files_of(folder) if "~" in f]
    assert temporaries(folder) == []
    assert len(res) == len(records)
    for k, row in res.iterrows():
        if k not in last.values():
            assert row["outcome"] == "duplicate", row.to_dict()
            continue
        assert row["outcome"] in OK, row.to_dict()
        assert row["file"] == emu.filename(k)
        assert (folder / row["file"]).read_bytes() == emu.body(k)
        assert row["bytes"] == len(emu.body(k))


def test_killed_between_rename_and_journal_at_1_50_150_saves_no_file_twice(eos: Sandbox, emu: BoknettEmulator,
                                                                          tmp_path: Path) -> None:
    emu.object_count = 200
    records = emu.records(0, 200)
    items = len(last_positions(records))
    folder = tmp_path / "covers"
    context = {"credentials": plain_credentials(eos), "records": records, "folder": str(folder)}
    fetches_before = sum(emu.downloads_by_position.values())
    for target in (1, 50, 150):  # the n-th file of the whole download is the one killed
        kill_at = max(1, target - done_in_journal(folder))
        assert run_killed(DOWNLOAD, kill_at=kill_at, **context) == -9
    assert 0 < done_in_journal(folder) < items  # the kills cut the download short
    with toolkit.boknett.connect(**eos.credentials("boknett"), retry=FAST) as bk:
        res = bk.download(records, folder, concurrency=CONCURRENCY, progress=False)
    check_one_file_per_object(res, records, folder, emu)
    recognised = res[res["message"].str.contains("interrupted", na=False)]
    assert len(recognised) >= 1  # the killed run's last file: found complete, not fetched again
    assert done_in_journal(folder) == items
    # each kill loses at most the bodies in flight; a file already in place is never fetched again
    assert sum(emu.downloads_by_position.values()) - fetches_before <= items + 3 * CONCURRENCY
    with toolkit.boknett.connect(**eos.credentials("boknett"), retry=FAST) as bk:
        again = bk.download(records, folder, concurrency=CONCURRENCY, progress=False)
    assert set(again["outcome"]) <= {"already_downloaded", "duplicate"}


def test_a_fresh_report_after_a_kill_replaces_the_reserved_name_instead_of_a_copy(
        eos: Sandbox, emu: BoknettEmulator, tmp_path: Path) -> None:
    emu.object_count = 40
    first = emu.records(0, 40)
    folder = tmp_path / "covers"
    assert run_killed(DOWNLOAD, kill_at=1, credentials=plain_credentials(eos), records=first,
                      folder=str(folder)) == -9
    assert files_of(folder)  # the killed run's file is in place, the journal does not know it
    fresh = [emu.object_record(i, issued=emu.now() + 1) for i in range(40)]  # next day's report: new ids
    assert fresh[0]["reference"] != first[0]["reference"]
    with toolkit.boknett.connect(**eos.credentials("boknett"), retry=FAST) as bk:
        res = bk.download(fresh, folder, concurrency=CONCURRENCY, progress=False)
    check_one_file_per_object(res, fresh, folder, emu)
    assert not res["message"].str.contains("saved as", na=False).any()


#: the child: killed with the body written to its temporary, before the rename into place
KILLED_BEFORE_RENAME = """
import os, signal
import toolkit
_replace = os.replace
def replace(src, dst, *a, **kw):
    if str(src).endswith(".part"):
        os.kill(os.getpid(), signal.SIGKILL)
    return _replace(src, dst, *a, **kw)
os.replace = replace
bk = toolkit.boknett.connect(**ctx["credentials"])
bk.download(ctx["records"], ctx["folder"], progress=False)
"""


def test_a_temporary_of_a_killed_download_is_removed_by_the_next_run(eos: Sandbox, emu: BoknettEmulator,
                                                                     tmp_path: Path) -> None:
    emu.big_object_bytes = 8 * 1024 * 1024  # streamed, not written in one step
    folder = tmp_path / "audio"
    folder.mkdir()
    (folder / "notes.part").write_text("the analyst's own notes")
    (folder / ".notes.abcdefgh.part").write_text("looks like an old temporary, but is new and the analyst's")
    fd, live = temporary(folder, "in-use.mp3")  # a temporary of a run that is still going (this process)
    os.close(fd)
    record = emu.big_object_record()
    assert run_killed(KILLED_BEFORE_RENAME, kill_at=10**6, credentials=plain_credentials(eos), records=[record],
                      folder=str(folder)) == -9
    dead = [n for n in temporaries(folder) if n.endswith(".part") and n != Path(live).name and "notes" not in n]
    assert len(dead) == 1 and os.path.getsize(folder / dead[0]) == 8 * 1024 * 1024  # the killed run's body
    with toolkit.boknett.connect(**eos.credentials("boknett"), retry=FAST) as bk:
        res = bk.download([record], folder, progress=False)
    assert not (folder / dead[0]).exists()
    assert (folder / "notes.part").read_text() == "the analyst's own notes"
    assert (folder / ".notes.abcdefgh.part").exists() and Path(live).exists()
    assert res["outcome"].tolist() == ["downloaded"] and res["file"][0] == emu.filename(0)
    assert files_of(folder) == sorted([emu.filename(0), "notes.part"])
    assert (folder / emu.filename(0)).stat().st_size == 8 * 1024 * 1024


def test_a_parquet_partial_of_a_dead_process_is_removed_by_the_next_pull(eos: Sandbox, emu: BoknettEmulator,
                                                                         tmp_path: Path) -> None:
    emu.object_count = 30
    out = tmp_path / "report.parquet"
    made = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, sys
        from toolkit.core.files import temporary
        fd, path = temporary(sys.argv[1], "report.parquet", ".partial")
        os.write(fd, b"PAR1 half a file")
        os.close(fd)
        print(path)
    """), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    left = Path(made.stdout.strip())
    assert left.name.startswith(".report.parquet.~tk") and left.name.endswith(".partial") and left.exists()
    (tmp_path / "report.parquet.partial").write_text("the analyst's")
    with toolkit.boknett.connect(**eos.credentials("boknett"), retry=FAST) as bk:
        summary = bk.objects(after=datetime.fromtimestamp(emu.now() - 100 * 86400, timezone.utc), out=out)
    assert int(summary["rows"][0]) == 30 and out.exists()
    assert not left.exists()
    assert (tmp_path / "report.parquet.partial").read_text() == "the analyst's"


def test_under_503_429_and_dropped_connections_every_row_agrees_with_the_folder(make_sandbox: Any,
                                                                                tmp_path: Path) -> None:
    sandbox = make_sandbox(services=["boknett"], seed=22)
    emu = sandbox.emulator("boknett")
    emu.object_count = 120
    records = emu.records(0, 120)
    last = last_positions(records)
    sandbox.set_faults("boknett", **{"503": .15, "429": .15, "drop": .15, "retry_after": 0.02,
                                     "exempt": ["/v1/tickets"]})
    folder = tmp_path / "covers"
    with toolkit.boknett.connect(**sandbox.credentials("boknett"), retry=SHORT) as bk:
        res = bk.download(records, folder, concurrency=CONCURRENCY, progress=False)
    assert {r.fault for r in emu.requests} >= {"503", "429", "drop"}
    assert (res["outcome"] == "failed").any()
    assert len(res) == len(records)
    stored = res[res["outcome"].isin(OK)]
    doubtful = res[res["outcome"] == "in_doubt"]
    for k, row in stored.iterrows():
        assert (folder / row["file"]).read_bytes() == emu.body(k)
    # a row that says "not downloaded" has no file in the folder, under any name
    on_disk = set(files_of(folder))
    assert set(stored["file"]) <= on_disk
    assert on_disk - set(stored["file"]) <= {emu.filename(k) for k in doubtful.index}
    for k, row in res[~res["outcome"].isin([*OK, "in_doubt", "duplicate"])].iterrows():
        assert row["message"].startswith("not downloaded"), row.to_dict()
        assert not any(f == emu.filename(k) or f"~{row['isbn13']}_{row['type']}" in f for f in on_disk)
    assert temporaries(folder) == []
    missing = len(last) - len(stored)
    sandbox.set_faults("boknett")
    before = sum(emu.downloads_by_position.values())
    with toolkit.boknett.connect(**sandbox.credentials("boknett"), retry=FAST) as bk:
        again = bk.download(records, folder, concurrency=CONCURRENCY, progress=False)
    check_one_file_per_object(again, records, folder, emu)
    assert sum(emu.downloads_by_position.values()) - before <= missing  # nothing stored is fetched twice
    assert (again.loc[stored.index, "outcome"] == "already_downloaded").all()
