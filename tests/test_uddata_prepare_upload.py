"""``upload_folder(prepare=True)`` over loopback: what the Uddata+ emulator stores is upright, a JPEG of at most
10 MB without EXIF/XMP/GPS; duplicates and broken files are not sent; originals stay as they were; re-runs and
lost answers send nothing twice."""

from __future__ import annotations

import hashlib
import io
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import toolkit
from toolkit.core.credentials import reveal
from toolkit.testing import run_killed
from toolkit.uddata import prepare as prep

from .test_uddata_prepare import (STORED_AS, XMP, assert_no_metadata, assert_same_picture, big_jpeg, camera_exif,
                                  encode, phone_jpeg, reference, sha)

pytestmark = pytest.mark.integration


def the_folder(folder: Path, roster: list[str]) -> tuple[dict[str, str], dict[str, Image.Image]]:
    """The issue's folder: every orientation, a HEIC, a 16-bit PNG, a CMYK JPEG, a 15 MB JPEG, a corrupt file
    and one photo re-saved and resized under two more CPR numbers. Returns (file → outcome, CPR → upright
    picture the service must end up holding)."""
    folder.mkdir(parents=True)
    files: dict[str, tuple[bytes, str]] = {}
    upright: dict[str, Image.Image] = {}
    for o in range(1, 9):
        cpr = roster[o]
        upright[cpr] = reference(100 + o)
        files[f"{cpr}.jpg"] = (phone_jpeg(upright[cpr], o), "uploaded")
    heic, png16, cmyk, big, broken, a, b, c = roster[9:17]
    upright[heic] = reference(120)
    files[f"{heic}.heic"] = (encode(STORED_AS[6](upright[heic]), "HEIF", quality=92, exif=camera_exif(6), xmp=XMP),
                             "uploaded")
    ramp = (np.linspace(0, 65535, 480 * 600).reshape(600, 480) * np.linspace(0.2, 1, 480)).astype(np.uint16)
    upright[png16] = Image.fromarray((ramp / 257).round().astype(np.uint8), "L")
    files[f"{png16}.png"] = (encode(Image.fromarray(ramp), "PNG"), "uploaded")
    upright[cmyk] = reference(121)
    files[f"{cmyk}.jpg"] = (encode(upright[cmyk].convert("CMYK"), quality=95), "uploaded")
    files[f"{big}.jpg"] = (big_jpeg(15), "uploaded")
    files[f"{broken}.jpg"] = (encode(reference(122), quality=90)[:7000], "damaged")
    files[f"{a}.jpg"] = (encode(reference(123), quality=92, exif=camera_exif(1)), "duplicate_photo")
    files[f"{b}.jpg"] = (encode(reference(123), quality=55), "duplicate_photo")                  # re-saved
    files[f"{c}.jpg"] = (encode(reference(123).resize((360, 450)), quality=85), "duplicate_photo")  # resized
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: outcome for name, (_, outcome) in files.items()}, upright


def test_what_the_service_stores_is_upright_jpeg_small_and_clean(make_sandbox, tmp_path: Path) -> None:
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    roster = emu.roster()
    folder = tmp_path / "photos"
    expected, upright = the_folder(folder, roster)
    originals = {p.name: sha(p) for p in folder.iterdir()}
    with toolkit.uddata.connect(**sbx.credentials("uddata")) as ud:
        result = ud.upload_folder(folder, prepare=True, progress=False)
    assert dict(zip(result["file"].astype(str), result["outcome"])) == expected
    assert {p.name: sha(p) for p in folder.iterdir() if p.name in originals} == originals  # originals unchanged
    sent = {str(c) for c, o in zip(result["cpr"], result["outcome"]) if o == "uploaded"}
    assert sent == set(upright) | {roster[12]}
    for cpr in sent:
        stored = emu.images[cpr]
        assert stored.startswith(b"\xff\xd8") and len(stored) <= 10 * 1024 * 1024
        assert_no_metadata(stored)
        if cpr in upright:
            assert_same_picture(stored, upright[cpr], tolerance=30)
    big = Image.open(io.BytesIO(emu.images[roster[12]]))
    assert max(big.size) == 2000 and (folder / f"{roster[12]}.jpg").stat().st_size > 14 * 1024 * 1024
    for cpr in roster[13:17]:  # the broken file and the three copies of one photo: nothing sent
        assert emu.put_counts[cpr] == 0 and cpr not in emu.images
    actions = dict(zip(result["cpr"].astype(str), result["actions"]))
    assert "rotated upright (EXIF orientation 6" in actions[roster[6]] and "GPS" in actions[roster[6]]
    assert "converted from HEIC to JPEG" in actions[roster[9]]
    assert "16 bits per channel reduced to 8" in actions[roster[10]]
    assert "scaled down from" in actions[roster[12]]


def test_without_prepare_the_upload_stays_jpeg_only(make_sandbox, tmp_path: Path) -> None:
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    folder = tmp_path / "photos"
    expected, _ = the_folder(folder, emu.roster())
    with toolkit.uddata.connect(**sbx.credentials("uddata")) as ud:
        result = ud.upload_folder(folder, progress=False)
    outcomes = dict(zip(result["file"].astype(str), result["outcome"]))
    roster = emu.roster()
    assert outcomes[f"{roster[9]}.heic"] == "invalid_name" and outcomes[f"{roster[10]}.png"] == "invalid_name"
    assert outcomes[f"{roster[12]}.jpg"] == "invalid_image" and "actions" not in result.columns
    assert set(expected) == set(outcomes)


def test_a_re_run_sends_and_prepares_nothing_twice(make_sandbox, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    folder = tmp_path / "photos"
    the_folder(folder, emu.roster())
    with toolkit.uddata.connect(**sbx.credentials("uddata")) as ud:
        dry = ud.upload_folder(folder, prepare=True, dry_run=True, progress=False)
        assert not emu.put_counts and set(dry["outcome"]) >= {"would_upload", "duplicate_photo", "damaged"}
        assert dry["actions"][dry["outcome"] == "would_upload"].notna().all()
        first = ud.upload_folder(folder, prepare=True, progress=False)
        counts = dict(emu.put_counts)
        called = []
        prepare, inspect = prep.prepare_bytes, prep.inspect_photo
        monkeypatch.setattr(prep, "prepare_bytes", lambda *a, **k: called.append(1) or prepare(*a, **k))
        monkeypatch.setattr(prep, "inspect_photo", lambda *a, **k: called.append(1) or inspect(*a, **k))
        again = ud.upload_folder(folder, prepare=True, progress=False)
        dry_again = ud.upload_folder(folder, prepare=True, dry_run=True, progress=False)
    uploaded = first["outcome"] == "uploaded"
    assert set(again["outcome"][uploaded]) == {"already_uploaded"} == set(dry_again["outcome"][uploaded])
    assert dict(emu.put_counts) == counts and all(v == 1 for v in counts.values())
    refused = int((~uploaded).sum())
    assert len(called) == 2 * refused  # two runs: only the refused files are looked at again, none prepared
    assert again["actions"][uploaded].tolist() == first["actions"][uploaded].tolist()


CHILD = """
import toolkit
ud = toolkit.uddata.connect(**ctx["creds"])
ud.upload_folder(ctx["folder"], concurrency=2, progress=False, prepare=True)
"""


def test_a_kill_after_the_service_stored_a_prepared_photo_sends_it_once(make_sandbox, tmp_path: Path) -> None:
    """The journal never heard of the stored photo: the next run prepares it again (the same bytes), finds
    exactly those bytes on the service and does not send it again."""
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    cprs = emu.roster()[20:26]
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, cpr in enumerate(cprs):
        (folder / f"{cpr}.jpg").write_bytes(phone_jpeg(reference(200 + i), 6))
    creds = sbx.credentials("uddata")
    assert run_killed(CHILD, kill_at=2, creds=creds, folder=str(folder)) == -9
    stored_first = {c for c in cprs if emu.put_counts[c]}
    assert len(stored_first) >= 2
    with toolkit.uddata.connect(**creds) as ud:
        result = ud.upload_folder(folder, prepare=True, progress=False)
    outcomes = dict(zip(result["cpr"].astype(str), result["outcome"]))
    assert {c: emu.put_counts[c] for c in cprs} == {c: 1 for c in cprs}
    assert {c for c, o in outcomes.items() if o == "already_uploaded"} == stored_first
    assert {c for c, o in outcomes.items() if o == "uploaded"} == set(cprs) - stored_first


def test_lost_answers_are_looked_up_against_the_prepared_bytes(make_sandbox, tmp_path: Path) -> None:
    sbx = make_sandbox(services=["uddata"], seed=3, faults={"drop": 0.5})
    emu = sbx.emulator("uddata")
    cprs = emu.roster()[30:42]
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, cpr in enumerate(cprs):
        (folder / f"{cpr}.png").write_bytes(encode(reference(300 + i), "PNG"))
    with toolkit.uddata.connect(**sbx.credentials("uddata")) as ud:
        result = ud.upload_folder(folder, prepare=True, progress=False)
    for cpr, outcome, message in zip(result["cpr"].astype(str), result["outcome"], result["message"]):
        held = cpr in emu.images
        if outcome == "uploaded":
            assert held and emu.put_counts[cpr] >= 1, message
        elif outcome == "in_doubt":
            assert "may have been stored" in message
        else:
            assert not held, (outcome, message)
    assert any(r.fault == "drop" and r.status == 201 for r in emu.requests)  # answers were lost after storing
    assert (result["outcome"] == "uploaded").sum() >= 1


def _put_raw(creds: dict, cpr: str, data: bytes) -> int:
    form = f"grant_type=client_credentials&client_id={creds['client_id']}&client_secret=" \
           f"{reveal(creds['client_secret'])}"
    token = json.loads(urllib.request.urlopen(urllib.request.Request(
        creds["base_url"] + "/oauth/token", data=form.encode()), timeout=30).read())["access_token"]
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"billede\"; filename=\"{cpr}.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{creds['base_url']}/{creds['api_version']}/{creds['institution']}/billeder?cpr={cpr}", data=body,
        method="PUT", headers={"Authorization": f"Bearer {token}",
                               "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        return urllib.request.urlopen(request, timeout=60).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_emulator_refuses_over_10_mb_and_keeps_what_it_stored(make_sandbox) -> None:
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    creds = sbx.credentials("uddata")
    cpr = emu.roster()[50]
    big = big_jpeg(15)
    assert _put_raw(creds, cpr, big) == 413  # the answer arrives (the body is read first), not a reset
    assert _put_raw(creds, cpr, big[:10 * 1024 * 1024 + 100]) == 413
    assert cpr not in emu.images and emu.put_counts[cpr] == 0
    small = prep.prepare_bytes(big).data
    assert _put_raw(creds, cpr, small) == 201
    assert emu.images[cpr] == small and hashlib.sha256(emu.images[cpr]).digest() == hashlib.sha256(small).digest()


def test_an_unforeseen_error_is_one_row_and_nothing_is_sent(make_sandbox, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A surprise while checking or preparing one photo is that photo's ``failed`` row (never "may have been
    stored": nothing was sent, so Uddata+ is not even asked), and the rest of the folder goes on."""
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    cprs = emu.roster()[70:73]
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, cpr in enumerate(cprs):
        (folder / f"{cpr}.jpg").write_bytes(phone_jpeg(reference(400 + i), 6))
    prepare, inspect = prep.prepare_bytes, prep.inspect_photo
    broken_prepare = {prep.inspect_photo((folder / f"{cprs[0]}.jpg").read_bytes()).sha256}
    broken_inspect = hashlib.sha256((folder / f"{cprs[1]}.jpg").read_bytes()).digest()

    def failing_prepare(data: bytes, *args: object, **kwargs: object) -> object:
        if hashlib.sha256(data).hexdigest() in broken_prepare:
            raise RuntimeError("decoder exploded")
        return prepare(data, *args, **kwargs)

    def failing_inspect(data: bytes, *args: object, **kwargs: object) -> object:
        if hashlib.sha256(data).digest() == broken_inspect:
            raise RuntimeError("hash exploded")
        return inspect(data, *args, **kwargs)

    monkeypatch.setattr(prep, "prepare_bytes", failing_prepare)
    monkeypatch.setattr(prep, "inspect_photo", failing_inspect)
    with toolkit.uddata.connect(**sbx.credentials("uddata")) as ud:
        result = ud.upload_folder(folder, prepare=True, progress=False)
        written = prep.prepare_photos(folder, progress=False)
    rows = dict(zip(result["cpr"].astype(str), zip(result["outcome"], result["message"])))
    assert rows[cprs[0]] == ("failed", "not sent: unexpected RuntimeError: decoder exploded")
    assert rows[cprs[1]][0] == "failed" and "hash exploded" in rows[cprs[1]][1]
    assert rows[cprs[2]][0] == "uploaded"
    assert set(emu.put_counts) == {cprs[2]} and not emu.get_counts  # nothing looked up: nothing was sent
    assert dict(zip(written["cpr"].astype(str), written["outcome"])) == {
        cprs[0]: "failed", cprs[1]: "failed", cprs[2]: "prepared"}
    monkeypatch.undo()
    with toolkit.uddata.connect(**sbx.credentials("uddata")) as ud:
        again = ud.upload_folder(folder, prepare=True, progress=False)
    assert dict(zip(again["cpr"].astype(str), again["outcome"])) == {   # failures are retried
        cprs[0]: "uploaded", cprs[1]: "uploaded", cprs[2]: "already_uploaded"}
