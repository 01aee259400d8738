"""Mediaflow uploads on the core write protocol, over loopback: exactly once across a kill at the worst moment,
rows that agree with what Mediaflow holds under a fault mix, a stored file whose answers were lost is never
"not uploaded", a failing look in the folder is never "not there", and a folder is read without following a
link (nothing outside it is ever read or sent)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import toolkit
from toolkit.core.errors import TransportError
from toolkit.core.http import RetryPolicy
from toolkit.mediaflow import uploads
from toolkit.mediaflow.uploads import JOURNAL_NAME, exit_code
from toolkit.sandbox.mediaflow import MediaflowEmulator
from toolkit.testing import run_killed

from .mediaflow_fixtures import em, mf, mfs  # noqa: F401 - the module's fixtures

pytestmark = pytest.mark.integration

FOLDER = 13  # "Press 2025": uploads allowed
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.02, retry_after_cap=0.02)
SECRET = b"root:x:0:0:fake-secret-for-the-test-7f3a9c:/root:/bin/bash\n"

CHILD = """
import toolkit
mf = toolkit.mediaflow.connect(**ctx["creds"])
mf.upload_folder(ctx["folder"], ctx["folder_id"], concurrency=4, progress=False)
"""


MEDIAFLOW_SEED = 17
MEDIAFLOW_CONNECT = {"retry": FAST}


def make_files(folder: Path, n: int, prefix: str = "exo") -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n):
        data = hashlib.sha256(f"{prefix}-{i}".encode()).digest() * (3 + i % 7)
        (folder / f"{prefix}-{i:03d}.bin").write_bytes(data)
        out[f"{prefix}-{i:03d}.bin"] = data
    return out


def held(em: MediaflowEmulator, name: str, folder: int = FOLDER) -> list[dict[str, Any]]:
    return [f for f in em.files.values() if f["filename"] == name and f["folderId"] == folder]


def answers_lost(transfer: Any) -> Any:
    """Every PUT reaches Mediaflow (and is stored), and every answer is lost on the way back."""
    original = transfer.request

    async def request(method: str, url: str, **kw: Any) -> Any:
        await original(method, url, **kw)
        raise TransportError("the connection broke while reading the answer (test)", service="mediaflow")

    return request


# -- a kill between Mediaflow's answer and the journal's record -----------------------------------------
@pytest.mark.parametrize("kill_at", [1, 12])
def test_a_kill_between_the_answer_and_the_journal_stores_nothing_twice(make_sandbox: Any, tmp_path: Path,
                                                                        kill_at: int) -> None:
    sbx = make_sandbox(services=["mediaflow"], seed=kill_at)
    em = sbx.emulator("mediaflow")
    sent = make_files(tmp_path / "up", 24)
    code = run_killed(CHILD, kill_at=kill_at, creds=sbx.credentials("mediaflow"), folder=str(tmp_path / "up"),
                      folder_id=FOLDER)
    assert code == -9  # killed the moment the kill_at-th file was stored, before the journal knew it
    stored_first = {n for n in sent if held(em, n)}
    assert len(stored_first) >= kill_at

    with toolkit.mediaflow.connect(**sbx.credentials("mediaflow")) as mf:
        result = mf.upload_folder(tmp_path / "up", FOLDER, concurrency=4, progress=False)
    outcomes = dict(zip(result["file"].tolist(), result["outcome"]))
    assert len(result) == len(sent) and set(outcomes) == set(sent)  # nothing lost: one row per file
    assert {n: len(held(em, n)) for n in sent} == {n: 1 for n in sent}  # 0 duplicates
    assert all(held(em, n)[0]["data"] == data for n, data in sent.items())
    # rows are true: what the killed run stored is reported as already there, the rest as uploaded now
    assert {n for n, o in outcomes.items() if o == "already_uploaded"} == stored_first
    assert {n for n, o in outcomes.items() if o == "uploaded"} == set(sent) - stored_first
    ids = dict(zip(result["file"].tolist(), result["id"].tolist()))
    assert all(ids[n] == held(em, n)[0]["id"] for n in sent)


# -- the fault mix --------------------------------------------------------------------------------------
def test_under_a_fault_mix_every_row_agrees_with_what_mediaflow_holds(make_sandbox: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """15 % each of 503, 429 and dropped connections on every data call, and few repeats (2 PUTs, 2 POSTs):
    many files end after their repeats gave up, some of them stored by a PUT whose answer was lost. No row
    may say "not uploaded" for a file Mediaflow holds (before: "could not send the file after 8 attempts")."""
    sbx = make_sandbox(services=["mediaflow"], seed=5,
                       faults={"503": 0.15, "429": 0.15, "drop": 0.15, "retry_after": 0.01,
                               "exempt": ["/1/oauth2/token"]})
    em = sbx.emulator("mediaflow")
    sent = make_files(tmp_path / "up", 100)
    monkeypatch.setattr(uploads, "PUT_ATTEMPTS", 2)
    monkeypatch.setattr(uploads, "POST_ATTEMPTS", 2)
    with toolkit.mediaflow.connect(**sbx.credentials("mediaflow"), retry=FAST) as mf:
        result = mf.upload_folder(tmp_path / "up", FOLDER, concurrency=4, progress=False)
    assert len(result) == len(sent)
    counts: dict[str, int] = {}
    for name, outcome, message, file_id in zip(result["file"], result["outcome"], result["message"], result["id"]):
        counts[outcome] = counts.get(outcome, 0) + 1
        there = held(em, name)
        assert len(there) <= 1, f"{name} stored {len(there)} times"
        if outcome in ("uploaded", "already_uploaded"):
            assert there and there[0]["data"] == sent[name], f"{outcome} but Mediaflow does not hold it: {message}"
            assert file_id == there[0]["id"]
        elif outcome == "in_doubt":
            assert "may have been stored" in message and "not uploaded" not in message
        else:
            assert not there, f"the row says {outcome} ({message}) but Mediaflow holds the file"
    assert counts.get("uploaded", 0) > 0
    stored_lost = [r for r in em.requests if r.path.startswith("/upload/") and r.fault == "drop" and r.status == 201]
    assert stored_lost, "no PUT was stored with its answer lost: pick another seed"

    # a re-run without faults settles everything: each file exactly once, every row uploaded or already there
    sbx.set_faults("mediaflow")
    with toolkit.mediaflow.connect(**sbx.credentials("mediaflow"), retry=FAST) as mf:
        again = mf.upload_folder(tmp_path / "up", FOLDER, concurrency=4, progress=False)
    assert set(again["outcome"]) <= {"uploaded", "already_uploaded"}, again[~again.outcome.str.contains("upl")]
    assert {n: len(held(em, n)) for n in sent} == {n: 1 for n in sent}


# -- answers lost, and a look that fails ----------------------------------------------------------------
def test_a_file_stored_while_every_answer_was_lost_is_uploaded_not_failed(mf: Any, em: MediaflowEmulator,
                                                                          tmp_path: Path) -> None:
    """Every PUT stores the file and every answer is lost: after its 8 attempts the row said "not uploaded:
    could not send the file after 8 attempts". Now the folder is looked at: the file is there, so uploaded."""
    make_files(tmp_path, 1)
    mf.aio.transfer.request = answers_lost(mf.aio.transfer)
    row = mf.upload(tmp_path / "exo-000.bin", FOLDER)
    assert row["outcome"] == "uploaded", row["message"]
    there = held(em, "exo-000.bin")
    assert len(there) == 1 and row["id"] == there[0]["id"] and em.uploads_requested == 1


def test_a_look_that_fails_is_in_doubt_never_not_there(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    """The answers are lost and the folder cannot be listed either: the row is in_doubt (never "not
    uploaded"), a re-run that still cannot look sends nothing, and one that can look finds the file."""
    sent = make_files(tmp_path / "up", 1)
    http, transfer = mf.aio.http, mf.aio.transfer
    original_get, original_put = http.request, transfer.request

    async def listing_fails(method: str, path: str, **kw: Any) -> Any:
        if method == "GET" and path.endswith("/files"):
            raise TransportError("the folder listing broke (test)", service="mediaflow")
        return await original_get(method, path, **kw)

    http.request, transfer.request = listing_fails, answers_lost(transfer)
    first = mf.upload_folder(tmp_path / "up", FOLDER, progress=False).iloc[0]
    assert first["outcome"] == "in_doubt" and "may have been stored" in first["message"]
    assert "not uploaded" not in first["message"] and exit_code(pd.DataFrame([first])) == 1
    assert len(held(em, "exo-000.bin")) == 1  # Mediaflow does hold it

    transfer.request = original_put
    asked = em.uploads_requested
    second = mf.upload_folder(tmp_path / "up", FOLDER, progress=False).iloc[0]
    assert second["outcome"] == "in_doubt" and em.uploads_requested == asked  # cannot look: not sent blindly

    http.request = original_get
    third = mf.upload_folder(tmp_path / "up", FOLDER, progress=False).iloc[0]
    assert third["outcome"] == "already_uploaded" and em.uploads_requested == asked
    there = held(em, "exo-000.bin")
    assert len(there) == 1 and there[0]["data"] == sent["exo-000.bin"] and third["id"] == there[0]["id"]


# -- the folder: one row per entry, links never followed ------------------------------------------------
def test_a_link_to_a_file_outside_the_folder_is_a_link_row_and_never_read(mf: Any, em: MediaflowEmulator,
                                                                          tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(SECRET)
    up = tmp_path / "up"
    up.mkdir()
    (up / "photo.jpg").write_bytes(b"\xff\xd8 a photo \xff\xd9")
    (up / "passwd").symlink_to(outside / "passwd")
    (up / "elsewhere").symlink_to(outside)
    (up / "broken").symlink_to(tmp_path / "nothing-here")
    (up / "sub").mkdir()
    (up / ".hidden.jpg").write_bytes(b"hidden")
    os.mkfifo(up / "pipe")
    df = mf.upload_folder(up, FOLDER, progress=False)
    rows = df.set_index("file")
    assert sorted(rows.index) == [".hidden.jpg", "broken", "elsewhere", "passwd", "photo.jpg", "pipe", "sub"]
    assert dict(rows["outcome"]) == {".hidden.jpg": "hidden", "broken": "link", "elsewhere": "link",
                                     "passwd": "link", "photo.jpg": "uploaded", "pipe": "not_a_file",
                                     "sub": "folder"}
    assert "symbolic link" in rows.loc["passwd", "message"] and "not sent" in rows.loc["passwd", "message"]
    assert not (set(df["outcome"]) & {"skipped"})
    # the secret's bytes never reached Mediaflow: one file asked for and stored, and it is the photo
    assert em.uploads_requested == 1 and em.upload_puts == 1
    assert [u["filename"] for u in em.uploads.values()] == ["photo.jpg"]
    assert not [f for f in em.files.values() if SECRET in bytes(f.get("data") or b"")]
    assert exit_code(df) == 2  # some entries were not sent because of their kind


def test_a_file_swapped_for_a_link_after_the_scan_is_refused_not_read(mf: Any, em: MediaflowEmulator,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "passwd").write_bytes(SECRET)
    up = tmp_path / "up"
    up.mkdir()
    (up / "photo.jpg").write_bytes(b"a photo")
    real_scan = uploads.folders.scan

    def scan_then_swap(*args: Any, **kw: Any) -> Any:
        entries = real_scan(*args, **kw)
        (up / "photo.jpg").unlink()
        (up / "photo.jpg").symlink_to(tmp_path / "passwd")  # between the scan and the read
        return entries

    monkeypatch.setattr(uploads.folders, "scan", scan_then_swap)
    row = mf.upload_folder(up, FOLDER, progress=False).iloc[0]
    assert row["outcome"] == "not_a_file" and "changed since the folder was read" in row["message"]
    assert em.uploads_requested == 0 and em.upload_puts == 0
    assert not [f for f in em.files.values() if SECRET in bytes(f.get("data") or b"")]


def test_exit_codes() -> None:
    def result(*outcomes: str) -> pd.DataFrame:
        return pd.DataFrame({"outcome": list(outcomes)})

    assert exit_code(result("uploaded", "already_uploaded")) == 0
    assert exit_code(result("uploaded", "link", "hidden")) == 2
    assert exit_code(result("uploaded", "link", "in_doubt")) == 1
    assert exit_code(result("failed", "folder")) == 1
    assert JOURNAL_NAME == ".mediaflow-upload.sqlite"
