"""Integration tests: the Uddata+ client against the sandbox over loopback HTTP."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pandas as pd
import pytest

import toolkit
from toolkit import Unauthorized
from toolkit.core.http import HttpClient
from toolkit.sandbox.uddata_data import make_photo
from toolkit.uddata.upload import JOURNAL_NAME

from .conftest import assert_clean

pytestmark = pytest.mark.integration


def write_photos(folder: Path, cprs, seed: int = 0, dashed: bool = False) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, c in enumerate(cprs):
        data = make_photo(seed * 1000 + i, size=(60, 75))
        name = f"{c[:6]}-{c[6:]}.JPG" if dashed and i % 2 else f"{c}.jpg"
        (folder / name).write_bytes(data)
        out[c] = data
    return out


def pixel_bomb() -> bytes:
    data = bytearray(make_photo(5, size=(40, 40)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    return bytes(data)


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(out, "PNG")
    return out.getvalue()


def test_audit_equals_the_sandbox_truth(sb):
    ud = toolkit.uddata.connect(**sb.credentials("uddata"))
    emu = sb.emulator("uddata")
    roster = ud.students()["cpr"].tolist()
    assert roster == emu.roster()
    result = ud.audit(roster + ["1234", roster[3]], concurrency=8, progress=False)
    assert len(result) == len(roster) + 2
    truth = emu.truth()
    assert dict(zip(result["cpr"][: len(roster)], result["has_image"][: len(roster)])) == truth
    assert 0.2 < (~result["has_image"][: len(roster)]).mean() < 0.5  # about a third without a photo
    assert result["message"][: len(roster)].isna().all()  # a 404 is a result, not an error
    assert result["valid"].tolist()[-2:] == [False, True]


def test_upload_under_faults_loses_nothing_and_stores_each_photo_once(make_sandbox, tmp_path):
    sbx = make_sandbox(services=["uddata"], faults={"503": 0.10, "429": 0.05, "drop": 0.02, "retry_after": 0.1})
    emu = sbx.emulator("uddata")
    cprs = emu.roster()[:48]
    photos = write_photos(tmp_path / "photos", cprs, seed=1, dashed=True)
    ud = toolkit.uddata.connect(**sbx.credentials("uddata"))
    ud.aio.http.retry = type(ud.aio.http.retry)(attempts=8, base=0.05, cap=0.5)
    result = ud.upload_folder(tmp_path / "photos", progress=False)
    assert len(result) == 48
    assert set(result["outcome"]) == {"uploaded"}, result["outcome"].value_counts().to_dict()
    for c, data in photos.items():
        assert emu.images[c] == data
    # a repeated store happens only where the service stored it and the answer was lost on the way back
    lost = {}
    for rec in emu.requests:
        if rec.method == "PUT" and rec.fault == "drop" and rec.status == 201:
            c = rec.query.split("cpr=")[1][:10]
            lost[c] = lost.get(c, 0) + 1
    assert {c: emu.put_counts[c] - lost.get(c, 0) for c in cprs} == {c: 1 for c in cprs}
    faults = {r.fault for r in emu.requests if r.fault}
    assert faults >= {"503", "429"}
    # a re-run sends nothing
    again = ud.upload_folder(tmp_path / "photos", progress=False)
    assert set(again["outcome"]) == {"already_uploaded"}


def test_cancelled_upload_resumes_without_sending_twice(make_sandbox, tmp_path):
    sbx = make_sandbox(services=["uddata"], latency_ms=30)
    emu = sbx.emulator("uddata")
    cprs = emu.roster()[:40]
    write_photos(tmp_path / "p", cprs, seed=2)
    creds = sbx.credentials("uddata")

    async def first_run():
        client = toolkit.uddata.AsyncClient(**creds)
        task = asyncio.create_task(client.upload_folder(tmp_path / "p", concurrency=4, progress=False))
        deadline = time.monotonic() + 120
        while sum(emu.put_counts.values()) < 12:
            assert not task.done(), f"the upload ended before 12 photos were stored: {task.exception()!r}"
            assert time.monotonic() < deadline, \
                f"only {sum(emu.put_counts.values())} of 12 photos stored within 120 s: the upload is stuck"
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.aclose()

    asyncio.run(first_run())
    stored_before = dict(emu.put_counts)
    assert 12 <= len(stored_before) < 40
    ud = toolkit.uddata.connect(**creds)
    result = ud.upload_folder(tmp_path / "p", concurrency=4, progress=False)
    assert set(result["outcome"]) <= {"uploaded", "already_uploaded"}
    assert all(emu.put_counts[c] == 1 for c in cprs), "a stored photo was sent again"
    resent = result.set_index("cpr").loc[list(stored_before), "outcome"]
    assert set(resent) == {"already_uploaded"}


def test_bad_input_folder_gives_the_right_row_for_each_file(sb, tmp_path):
    emu = sb.emulator("uddata")
    a, b, c, d, e = emu.roster()[60:65]
    folder = tmp_path / "bad"
    folder.mkdir()
    files = {
        f"{a}.jpg": make_photo(11),
        f"{b[:6]}-{b[6:]}.JPEG": make_photo(12),
        "photo of anna.jpg": make_photo(13),
        "notes.txt": b"hello",
        f"{c}.jpg": png_bytes(),
        f"{d}.jpg": make_photo(14)[:700],
        f"{e}.jpg": b"",
        "0101301234.jpg": pixel_bomb(),   # 1930: valid number, pixel bomb inside
        "3202991234.jpg": make_photo(15),  # no 32nd day
        "1512081234.jpg": make_photo(16),
        "151208-1234.jpg": make_photo(17),  # same CPR as the file above
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    ud = toolkit.uddata.connect(**sb.credentials("uddata"))
    result = ud.upload_folder(folder, progress=False)
    got = dict(zip(result["file"], result["outcome"]))
    assert got == {
        f"{a}.jpg": "uploaded",
        f"{b[:6]}-{b[6:]}.JPEG": "uploaded",
        "photo of anna.jpg": "invalid_name",
        "notes.txt": "invalid_name",
        f"{c}.jpg": "invalid_image",
        f"{d}.jpg": "invalid_image",
        f"{e}.jpg": "invalid_image",
        "0101301234.jpg": "invalid_image",
        "3202991234.jpg": "invalid_name",
        "1512081234.jpg": "duplicate",
        "151208-1234.jpg": "duplicate",
    }
    messages = dict(zip(result["file"], result["message"]))
    assert "truncated" in messages[f"{d}.jpg"] and "empty" in messages[f"{e}.jpg"]
    assert "pixels" in messages["0101301234.jpg"] and "JPEG" in messages[f"{c}.jpg"]
    assert "date" in messages["3202991234.jpg"]
    assert emu.images[a] == files[f"{a}.jpg"] and emu.images[b] == files[f"{b[:6]}-{b[6:]}.JPEG"]
    assert c not in emu.put_counts and d not in emu.put_counts
    assert a not in repr(result) and a not in result._repr_html_()


def test_dry_run_sends_nothing_then_changed_photo_is_sent_again(make_sandbox, tmp_path):
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    cprs = emu.roster()[:5]
    write_photos(tmp_path / "p", cprs, seed=3)
    ud = toolkit.uddata.connect(**sbx.credentials("uddata"))
    dry = ud.upload_folder(tmp_path / "p", dry_run=True, progress=False)
    assert set(dry["outcome"]) == {"would_upload"}
    assert not [r for r in emu.requests if r.method == "PUT"] and not (tmp_path / "p" / JOURNAL_NAME).exists()
    first = ud.upload_folder(tmp_path / "p", progress=False)
    assert set(first["outcome"]) == {"uploaded"}
    assert (tmp_path / "p" / JOURNAL_NAME).exists()
    (tmp_path / "p" / f"{cprs[0]}.jpg").write_bytes(make_photo(999))
    second = ud.upload_folder(tmp_path / "p", progress=False)
    assert dict(zip(second["cpr"], second["outcome"]))[cprs[0]] == "uploaded"
    assert (second["outcome"] == "already_uploaded").sum() == 4
    assert emu.images[cprs[0]] == make_photo(999) and emu.put_counts[cprs[0]] == 2


def test_forbidden_then_failures_are_retried_on_rerun(make_sandbox, tmp_path):
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    cprs = emu.roster()[:3]
    write_photos(tmp_path / "p", cprs + ["0101901234"], seed=4)  # the last one is not enrolled
    readonly = toolkit.uddata.connect(**emu.credentials_without_picture_right())
    first = readonly.upload_folder(tmp_path / "p", progress=False)
    assert set(first["outcome"]) == {"forbidden"} and set(first["http_status"]) == {403}
    assert "right to upload pictures" in first["message"].iloc[0]
    ud = toolkit.uddata.connect(**sbx.credentials("uddata"))
    second = ud.upload_folder(tmp_path / "p", progress=False)
    outcomes = dict(zip(second["cpr"], second["outcome"]))
    assert outcomes == {**{c: "uploaded" for c in cprs}, "0101901234": "unknown_cpr"}
    assert "no person with this CPR" in second.set_index("cpr").loc["0101901234", "message"]


def test_bad_secret_gives_unauthorized_rows_after_one_token_request(make_sandbox, tmp_path):
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    write_photos(tmp_path / "p", emu.roster()[:4], seed=5)
    ud = toolkit.uddata.connect(**{**sbx.credentials("uddata"), "client_secret": "wrong-secret-123456"})
    result = ud.upload_folder(tmp_path / "p", progress=False)
    assert set(result["outcome"]) == {"unauthorized"}
    assert len([r for r in emu.requests if r.path == "/oauth/token"]) == 1
    assert not [r for r in emu.requests if r.method == "PUT"]
    with pytest.raises(Unauthorized):
        ud.students()


def test_expired_token_is_renewed(make_sandbox):
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    ud = toolkit.uddata.connect(**sbx.credentials("uddata"))
    assert len(ud.students()) == len(emu.roster())
    emu.expire_tokens()
    assert len(ud.students()) == len(emu.roster())
    assert len([r for r in emu.requests if r.path == "/oauth/token"]) == 2


def test_emulator_statuses_and_tolerance(make_sandbox):
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    ud = toolkit.uddata.connect(**sbx.credentials("uddata"))
    http: HttpClient = ud.aio.http
    cpr = emu.roster()[0]
    path = ud.aio.path("billeder")

    async def put(**kw):
        resp = await http.request("PUT", path, allow=(400, 404, 413), **kw)
        return resp.status_code, (resp.json() if resp.content else None)

    run = toolkit.core.sync.run
    assert run(put(params={"cpr": cpr}, content=make_photo(21), headers={"content-type": "image/jpeg"}))[0] == 201
    assert emu.images[cpr] == make_photo(21)
    assert run(put(files={"billede": ("x.jpg", make_photo(22), "image/jpeg")}, data={"cpr": cpr}))[0] == 201
    assert emu.images[cpr] == make_photo(22)
    assert run(put(params={"cpr": cpr}, files={"billede": ("x.jpg", png_bytes(), "image/jpeg")}))[0] == 400
    status, body = run(put(params={"cpr": "0101901234"}, files={"billede": ("x.jpg", make_photo(1), "image/jpeg")}))
    assert status == 404 and body["error"] == "not_found"
    big = make_photo(1) + b"\0" * (10 * 1024 * 1024)
    assert run(put(params={"cpr": cpr}, files={"billede": ("x.jpg", big, "image/jpeg")}))[0] == 413
    missing_photo = next(c for c, has in emu.truth().items() if not has)
    resp = run(http.request("GET", ud.aio.path(f"billeder/{missing_photo}"), allow=(404,)))
    assert resp.status_code == 404 and resp.json()["error"] == "not_found" and "photo" in resp.json()["message"]
    resp = run(http.request("GET", ud.aio.path("billeder/0101901234"), allow=(404,)))
    assert "person" in resp.json()["message"]


def test_no_cpr_token_or_secret_in_logs_or_errors(make_sandbox, tmp_path, debug_logs):
    sbx = make_sandbox(services=["uddata"], faults={"503": 0.2, "retry_after": 0.05})
    emu = sbx.emulator("uddata")
    creds = sbx.credentials("uddata")
    ud = toolkit.uddata.connect(**creds)
    ud.aio.http.retry = type(ud.aio.http.retry)(attempts=6, base=0.02, cap=0.1)
    roster = emu.roster()
    write_photos(tmp_path / "p", roster[:6] + ["0101901234"], seed=6)
    texts = [repr(ud.audit(roster[:20] + ["bad"], progress=False)), repr(ud.upload_folder(tmp_path / "p", progress=False))]
    texts.append(repr(ud.students()))
    emu.expire_tokens()
    ud.get_image(roster[0])
    for call in (lambda: ud.get_image("3201901234"),
                 lambda: toolkit.uddata.connect(**{**creds, "client_secret": "not-the-secret-xyz"}).get_image(roster[1])):
        with pytest.raises(toolkit.ToolkitError) as info:
            call()
        texts.append(str(info.value))
        texts.append(repr(info.value))
    texts.append(repr(ud))
    logged = "\n".join(r.getMessage() for r in debug_logs.records) + "\n" + debug_logs.text
    assert any("billeder" in r.getMessage() for r in debug_logs.records)  # the scan saw the requests
    forbidden = sbx.secrets() + sbx.personal_data() + ["0101901234", "3201901234", "not-the-secret-xyz"]
    assert_clean(logged, forbidden, "logs")
    assert_clean("\n".join(texts), forbidden, "reprs and exception messages")


def test_cli_upload_and_audit(make_sandbox, tmp_path, monkeypatch, capsys):
    from toolkit.cli import main

    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    creds = emu.credentials()
    write_photos(tmp_path / "p", emu.roster()[:3], seed=7)
    monkeypatch.setenv("TOOLKIT_UDDATA_CLIENT_SECRET", creds["client_secret"])
    monkeypatch.chdir(tmp_path)
    common = ["--base-url", creds["base_url"], "--institution", creds["institution"], "--api-version", "0.7.5",
              "--client-id", creds["client_id"], "--no-progress"]
    assert main(["uddata", "upload", str(tmp_path / "p"), *common, "--report", "r.csv"]) == 0
    report = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert set(report["outcome"]) == {"uploaded"} and len(report) == 3
    (tmp_path / "p" / "junk.jpg").write_bytes(b"x")
    assert main(["uddata", "upload", str(tmp_path / "p"), *common]) == 2
    (tmp_path / "p" / "0101901234.jpg").write_bytes(make_photo(3))  # not enrolled → failed
    assert main(["uddata", "upload", str(tmp_path / "p"), *common]) == 1
    pd.DataFrame({"cpr": emu.roster()[:10]}).to_csv(tmp_path / "c.csv", index=False)
    assert main(["uddata", "audit", str(tmp_path / "c.csv"), *common, "--out", "a.csv", "--missing", "m.csv"]) == 0
    audit = pd.read_csv(tmp_path / "a.csv", dtype=str)
    assert audit["cpr"].tolist() == emu.roster()[:10]
    out = capsys.readouterr()
    assert_clean(out.out + out.err, sbx.secrets() + sbx.personal_data(), "CLI output")
    with pytest.raises(SystemExit):  # the secret is never a command-line argument
        main(["uddata", "upload", str(tmp_path / "p"), *common, "--client-secret", "x"])
