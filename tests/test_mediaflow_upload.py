"""Mediaflow uploads over loopback: two steps (POST file, PUT without Authorization), the upload URL kept
secret, expired URLs renewed, lost answers never turned into duplicates, a forbidden folder, and
upload_folder under the fault mix: every file stored exactly once, one row per entry, journal re-runs
send nothing, dry runs send nothing."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import toolkit
from toolkit.core.errors import TransportError, ValidationError
from toolkit.core.journal import Journal
from toolkit.mediaflow.uploads import JOURNAL_NAME, UPLOAD_SCHEMA
from toolkit.sandbox.mediaflow import MediaflowEmulator

from .mediaflow_fixtures import em, mf, mfs  # noqa: F401 - the module's fixtures

FOLDER = 13  # "Press 2025": uploads allowed


MEDIAFLOW_SEED = 7


def make_files(folder: Path, n: int, prefix: str = "bild") -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(n):
        data = hashlib.sha256(f"{prefix}-{i}".encode()).digest() * (5 + i)
        (folder / f"{prefix}-{i:03d}.bin").write_bytes(data)
        out[f"{prefix}-{i:03d}.bin"] = data
    return out


def stored(em: MediaflowEmulator, name: str, folder: int = FOLDER) -> list[dict[str, Any]]:
    return [f for f in em.files.values() if f["filename"] == name and f["folderId"] == folder]


def puts(em: MediaflowEmulator, mark: int) -> list[Any]:
    return [r for r in em.requests[mark:] if r.path.startswith("/upload/")]


# -- one file -------------------------------------------------------------------------------------------
def test_upload_posts_then_puts_without_authorization(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    data = make_files(tmp_path, 1)["bild-000.bin"]
    mark = len(em.requests)
    row = mf.upload(tmp_path / "bild-000.bin", FOLDER)
    assert list(row.index) == list(UPLOAD_SCHEMA)
    assert row["outcome"] == "uploaded" and row["http_status"] == 201 and row["folder_id"] == FOLDER
    files = stored(em, "bild-000.bin")
    assert len(files) == 1 and files[0]["data"] == data and row["id"] == files[0]["id"]
    assert row["bytes"] == len(data)
    sent = puts(em, mark)
    assert len(sent) == 1 and sent[0].method == "PUT" and "authorization" not in sent[0].headers
    assert int(sent[0].headers["content-length"]) == len(data)
    post = [r for r in em.requests[mark:] if r.path == "/1/file"]
    assert len(post) == 1 and post[0].headers["authorization"].startswith("Bearer ")
    text = row.to_string() + repr(row)
    assert not [u for u in em.issued_upload_urls if u in text or u.split("signature=")[1] in text]


def test_forbidden_folder_is_a_row_with_the_service_message(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    make_files(tmp_path, 1)
    row = mf.upload(tmp_path / "bild-000.bin", em.forbidden_folder_id())
    assert row["outcome"] == "forbidden" and row["http_status"] == 403
    assert "You don't have permission to upload to this folder" in row["message"]
    assert em.upload_puts == 0 and em.uploads_requested == 0 and not em.uploaded_files()


def test_an_expired_upload_url_means_a_new_one(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    make_files(tmp_path, 1)
    transfer = mf.aio.transfer
    original = transfer.request
    state = {"n": 0}

    async def first_url_expires(method: str, url: str, **kw: Any) -> Any:
        state["n"] += 1
        if state["n"] == 1:
            em.expire_upload_urls()
        return await original(method, url, **kw)

    transfer.request = first_url_expires
    row = mf.upload(tmp_path / "bild-000.bin", FOLDER)
    assert row["outcome"] == "uploaded"
    assert em.uploads_requested == 2 and len(stored(em, "bild-000.bin")) == 1 and em.upload_puts == 1


def test_a_lost_put_answer_then_expiry_does_not_store_twice(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    make_files(tmp_path, 1)
    transfer = mf.aio.transfer
    original = transfer.request
    state = {"n": 0}

    async def stored_then_lost(method: str, url: str, **kw: Any) -> Any:
        state["n"] += 1
        response = await original(method, url, **kw)
        if state["n"] == 1:  # the service stored it; the answer never arrives, and the URL expires meanwhile
            em.expire_upload_urls()
            err = TransportError("the connection broke while reading the answer", service="mediaflow")
            err.original_type = "ReadError"
            raise err
        return response

    transfer.request = stored_then_lost
    row = mf.upload(tmp_path / "bild-000.bin", FOLDER)
    assert row["outcome"] == "uploaded" and row["id"] == stored(em, "bild-000.bin")[0]["id"]
    assert len(stored(em, "bild-000.bin")) == 1 and em.uploads_requested == 1


def test_a_lost_post_answer_asks_again_only_when_nothing_is_stored(mf: Any, em: MediaflowEmulator,
                                                                   tmp_path: Path) -> None:
    make_files(tmp_path, 1)
    http = mf.aio.http
    original = http.request
    state = {"n": 0}

    async def post_answer_lost(method: str, path: str, **kw: Any) -> Any:
        response = await original(method, path, **kw)
        if method == "POST" and path == "file" and state["n"] == 0:
            state["n"] += 1
            err = TransportError("the connection broke while reading the answer", service="mediaflow")
            err.original_type = "ReadError"
            raise err
        return response

    http.request = post_answer_lost
    mark = len(em.requests)
    row = mf.upload(tmp_path / "bild-000.bin", FOLDER)
    assert row["outcome"] == "uploaded" and len(stored(em, "bild-000.bin")) == 1
    assert em.uploads_requested == 2 and em.upload_puts == 1
    looked = [r for r in em.requests[mark:] if r.path == f"/1/folder/{FOLDER}/files"]
    assert len(looked) == 1  # the folder was checked before asking again


def test_upload_of_a_missing_path_is_a_validation_error(mf: Any, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        mf.upload(tmp_path / "nope.jpg", FOLDER)
    assert str(info.value).startswith("Mediaflow")


# -- a folder -------------------------------------------------------------------------------------------
def test_fault_mix_every_file_stored_exactly_once_and_rerun_sends_nothing(
        make_sandbox: Any, tmp_path: Path, debug_logs: Any) -> None:
    sb = make_sandbox(services=["mediaflow"], seed=11, latency_ms=5)
    em = sb.emulator("mediaflow")
    em.token_lifetime = 1  # the run lasts longer: the token is renewed on the way
    files = make_files(tmp_path / "up", 40)
    (tmp_path / "up" / "sub").mkdir()
    (tmp_path / "up" / ".DS_Store").write_bytes(b"x")
    sb.set_faults("mediaflow", **{"503": 0.10, "429": 0.05, "drop": 0.02, "retry_after": 0.2})
    started = time.monotonic()
    with toolkit.mediaflow.connect(**sb.credentials("mediaflow")) as client:
        df = client.upload_folder(tmp_path / "up", FOLDER, concurrency=4, progress=False)
        took = time.monotonic() - started
        assert list(df.columns) == list(UPLOAD_SCHEMA) and len(df) == 42
        rows = df.set_index("file")
        assert rows.loc["sub", "outcome"] == "folder" and "sub-folders are not searched" in rows.loc["sub", "message"]
        assert rows.loc[".DS_Store", "outcome"] == "hidden" and "hidden" in rows.loc[".DS_Store", "message"]
        assert (rows.loc[list(files), "outcome"] == "uploaded").all(), df[df.outcome != "uploaded"].to_string()
        for name, data in files.items():
            got = stored(em, name)
            assert len(got) == 1 and got[0]["data"] == data
            assert rows.loc[name, "id"] == got[0]["id"]
        faults = [r.fault for r in em.requests if getattr(r, "fault", None)]
        assert {"503", "429"} <= set(faults)
        assert took > 1.0 and len(em.token_requests) >= 2
        assert not [r for r in em.rejected_token_uses if r["reason"] == "expired"]
        requested, put_count = em.uploads_requested, em.upload_puts
        again = client.upload_folder(tmp_path / "up", FOLDER, concurrency=4, progress=False)
        assert em.uploads_requested == requested and em.upload_puts == put_count
        assert (again.set_index("file").loc[list(files), "outcome"] == "already_uploaded").all()
        assert len(again) == 42  # the journal's own files are not rows
        assert list(again.set_index("file").loc[list(files), "id"]) == list(rows.loc[list(files), "id"])
    secrets = em.secrets()
    journal_bytes = b"".join(p.read_bytes() for p in (tmp_path / "up").glob(JOURNAL_NAME + "*"))
    text = df.to_csv() + again.to_csv() + "\n".join(r.getMessage() for r in debug_logs.records)
    assert not [s for s in secrets if s in text or s.encode() in journal_bytes]


def test_heavy_drops_after_processing_still_store_once(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(services=["mediaflow"], seed=12)
    em = sb.emulator("mediaflow")
    files = make_files(tmp_path / "up", 15)
    sb.set_faults("mediaflow", **{"drop": 0.25, "retry_after": 0.1})
    with toolkit.mediaflow.connect(**sb.credentials("mediaflow")) as client:
        df = client.upload_folder(tmp_path / "up", FOLDER, concurrency=3, progress=False)
    ok = df[df["outcome"] == "uploaded"]["file"].tolist()
    assert len(ok) >= 13, df.to_string()
    drops = [r for r in em.requests if getattr(r, "fault", None) == "drop"]
    assert drops
    for name in files:
        assert len(stored(em, name)) == 1 if name in ok else len(stored(em, name)) <= 1


def test_dry_run_sends_nothing_and_writes_nothing(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    make_files(tmp_path, 3)
    mark = len(em.requests)
    df = mf.upload_folder(tmp_path, FOLDER, dry_run=True, progress=False)
    assert (df["outcome"] == "would_upload").all() and len(df) == 3
    assert len(em.requests) == mark and not (tmp_path / JOURNAL_NAME).exists()
    mf.upload_folder(tmp_path, FOLDER, progress=False)
    (tmp_path / "bild-001.bin").write_bytes(b"changed")
    mark = len(em.requests)
    again = mf.upload_folder(tmp_path, FOLDER, dry_run=True, progress=False).set_index("file")
    assert len(em.requests) == mark
    assert again.loc["bild-001.bin", "outcome"] == "would_upload"
    assert (again.drop("bild-001.bin")["outcome"] == "already_uploaded").all()


def test_a_changed_file_is_sent_again_and_another_folder_is_another_destination(
        mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    make_files(tmp_path, 3)
    mf.upload_folder(tmp_path, FOLDER, progress=False)
    (tmp_path / "bild-002.bin").write_bytes(b"a new version")
    before = em.uploads_requested
    df = mf.upload_folder(tmp_path, FOLDER, progress=False).set_index("file")
    assert df.loc["bild-002.bin", "outcome"] == "uploaded" and em.uploads_requested == before + 1
    other = mf.upload_folder(tmp_path, -15, progress=False)
    assert (other["outcome"] == "uploaded").all() and len(stored(em, "bild-000.bin", -15)) == 1


def test_an_interrupted_run_looks_in_the_folder_before_sending_again(mf: Any, em: MediaflowEmulator,
                                                                     tmp_path: Path) -> None:
    files = make_files(tmp_path, 2)
    mf.upload_folder(tmp_path, FOLDER, progress=False)
    book = Journal(tmp_path / JOURNAL_NAME, service="mediaflow")
    dest = mf.aio.destination(FOLDER)
    for name, data in files.items():  # as if the answers had been lost
        book.finish(dest, name, hashlib.sha256(data).hexdigest(), "in_doubt")
    book.close()
    before = em.uploads_requested
    df = mf.upload_folder(tmp_path, FOLDER, progress=False)
    assert (df["outcome"] == "already_uploaded").all() and em.uploads_requested == before
    assert all(len(stored(em, n)) == 1 for n in files)


def test_forbidden_folder_rows_and_nothing_sent(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    make_files(tmp_path, 6)
    mark = len(em.requests)
    df = mf.upload_folder(tmp_path, em.forbidden_folder_id(), concurrency=2, progress=False)
    assert (df["outcome"] == "forbidden").all() and (df["http_status"] == 403).all()
    assert df["message"].str.contains("You don't have permission to upload to this folder").all()
    assert em.upload_puts == 0 and em.uploads_requested == 0
    posts = [r for r in em.requests[mark:] if r.path == "/1/file"]
    assert 1 <= len(posts) <= 2  # after the first 403 the other files are not asked for
    missing = mf.upload_folder(tmp_path, 999999, progress=False)
    assert (missing["outcome"] == "not_found").all()


@pytest.mark.parametrize("bad", [0, -2, "4", True, 1.5, None])
def test_bad_concurrency_is_a_validation_error(mf: Any, tmp_path: Path, bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        mf.upload_folder(tmp_path, FOLDER, concurrency=bad, progress=False)
    assert "concurrency" in str(info.value)


def test_refused_credentials_one_token_request_one_answer(mfs: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    from toolkit.core.credentials import Secret

    make_files(tmp_path, 4)
    before = len(em.token_requests)
    creds = dict(mfs.credentials("mediaflow"), client_secret=Secret("wrong-secret-5a5a5a"))
    with toolkit.mediaflow.connect(**creds) as client:
        df = client.upload_folder(tmp_path, FOLDER, progress=False)
    assert (df["outcome"] == "unauthorized").all() and len(em.token_requests) - before == 1
    assert "wrong-secret-5a5a5a" not in df.to_csv()
    assert em.uploads_requested == 0


def test_journal_is_sqlite_with_the_documented_key(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    files = make_files(tmp_path / "up", 2)
    journal = tmp_path / "j.sqlite"
    mf.upload_folder(tmp_path / "up", FOLDER, journal=journal, progress=False)
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT destination, item, content_hash, state FROM items ORDER BY item").fetchall()
    base = mf.aio.base_url
    assert rows == [(f"mediaflow|{base}|folder={FOLDER}", n, hashlib.sha256(d).hexdigest(), "done")
                    for n, d in sorted(files.items())]


def test_the_uploads_wait_as_the_clients_retry_policy_says(make_sandbox: Any, tmp_path: Path, debug_logs: Any
                                                           ) -> None:
    """POST file and the PUT repeat themselves (each checks something of its own first), but their waits are
    the core's one retry policy: ``retry=RetryPolicy(retry_after_cap=…)`` holds for uploads too."""
    from toolkit.core.http import RetryPolicy

    sb = make_sandbox(services=["mediaflow"], seed=13)
    em = sb.emulator("mediaflow")
    files = make_files(tmp_path / "up", 30)  # enough requests that the 503s hit both POST file and the PUT
    sb.set_faults("mediaflow", **{"503": 0.3, "retry_after": 30})
    with toolkit.mediaflow.connect(**sb.credentials("mediaflow"),
                                   retry=RetryPolicy(attempts=8, base=0.01, cap=0.01, retry_after_cap=0.01)) as client:
        df = client.upload_folder(tmp_path / "up", FOLDER, concurrency=3, progress=False)
    assert (df["outcome"] == "uploaded").all(), df.to_string()
    assert all(len(stored(em, name)) == 1 for name in files)
    waits = [r.getMessage() for r in debug_logs.records if "retrying in" in r.getMessage()]
    posts = [w for w in waits if "POST" in w and "/file" in w]
    put_waits = [w for w in waits if "PUT" in w]
    assert posts and put_waits, "the 503s missed POST file or the PUT: pick another seed"
    assert all("retrying in 0.01 s" in w or "retrying in 0.00 s" in w for w in waits), [w for w in waits if "in 0.0" not in w]


def test_a_folder_listing_that_is_not_json_is_a_plain_error_not_a_guess() -> None:
    """After a lost POST the folder is listed to see whether the file is there; an answer that is not the
    folder's JSON list is an error saying so (before: a bare JSONDecodeError), never "not there" — that guess
    would send the file a second time."""
    import asyncio
    from types import SimpleNamespace

    from toolkit.core.errors import ToolkitError
    from toolkit.core.http import HTTPResponse, HttpClient, MockTransport
    from toolkit.mediaflow.uploads import _File, find_stored

    def handler(request: Any) -> HTTPResponse:
        return HTTPResponse(200, text="<html>maintenance</html>", headers={"Content-Type": "text/html"})

    client = SimpleNamespace(http=HttpClient("mediaflow", "https://mf.test/1", transport=MockTransport(handler)))
    with pytest.raises(ToolkitError, match="Mediaflow.*not the JSON array") as info:
        asyncio.run(find_stored(client, FOLDER, _File("a.jpg", b"x")))
    assert "JSONDecode" not in str(info.value) and info.value.__class__.__name__ == "ToolkitError"
