"""The Mediaflow emulator implements api-contracts Part 1 over real loopback HTTP (urllib only)."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

import pytest
from PIL import Image

import toolkit
from toolkit.sandbox.mediaflow import FILE_FIELDS, TREE_FIELDS, MediaflowEmulator


@pytest.fixture(scope="module")
def mfs() -> Iterator[Any]:
    with toolkit.sandbox.start(services=["mediaflow"], seed=3) as sandbox:
        yield sandbox


@pytest.fixture
def em(mfs: Any) -> Iterator[MediaflowEmulator]:
    """The module's emulator; the knobs a test turns are put back afterwards."""
    emulator = mfs.emulator("mediaflow")
    with emulator.restored():
        yield emulator
    emulator.reset_uploads()


def call(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        status, raw, ctype = exc.code, exc.read(), exc.headers.get("content-type", "")
    return status, (json.loads(raw) if "json" in ctype else raw)


def token_form(em: MediaflowEmulator, **over: str) -> dict[str, str]:
    c = em.credentials()
    form = {"grant_type": "refresh_token", "client_id": c["client_id"], "client_secret": c["client_secret"],
            "refresh_token": c["refresh_token"]}
    form.update(over)
    return form


def post_token(em: MediaflowEmulator, **over: str) -> tuple[int, Any]:
    return call("POST", em.credentials()["base_url"] + "/oauth2/token",
                urllib.parse.urlencode(token_form(em, **over)).encode(),
                {"Content-Type": "application/x-www-form-urlencoded"})


def bearer(em: MediaflowEmulator) -> dict[str, str]:
    status, body = post_token(em)
    assert status == 200, body
    return {"Authorization": f"Bearer {body['access_token']}"}


def api(em: MediaflowEmulator, path: str, auth: dict[str, str] | None = None, **params: Any) -> tuple[int, Any]:
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    return call("GET", f"{em.credentials()['base_url']}/{path}{query}", headers=auth if auth is not None else bearer(em))


def ask_upload(em: MediaflowEmulator, auth: dict[str, str], filename: str, filesize: int, folder: int
               ) -> tuple[int, Any]:
    return call("POST", em.credentials()["base_url"] + "/file",
                json.dumps({"filename": filename, "filesize": filesize, "toFolder": folder}).encode(),
                {**auth, "Content-Type": "application/json"})


# -- token ---------------------------------------------------------------------------------------------------
def test_token_by_documented_get_and_by_post_form(em: MediaflowEmulator) -> None:
    assert em.credentials()["base_url"].endswith("/1")
    before = len(em.token_requests)
    query = urllib.parse.urlencode(token_form(em))
    status, got = call("GET", f"{em.credentials()['base_url']}/oauth2/token?{query}")
    assert status == 200 and got["token_type"] == "Bearer" and got["expires_in"] == 7200
    assert got["access_token"].count(".") == 2  # JWT-like
    status, posted = post_token(em)
    assert status == 200 and posted["access_token"] != got["access_token"]
    assert "refresh_token" not in posted  # no rotation by default
    get_rec, post_rec = em.token_requests[before:]
    assert (get_rec["method"], get_rec["secrets_in_query"]) == ("GET", True)
    assert (post_rec["method"], post_rec["secrets_in_query"], post_rec["query_keys"]) == ("POST", False, [])
    assert {got["access_token"], posted["access_token"], em.client_secret} <= set(em.secrets())
    # the same API behind a path prefix
    status, files = call("GET", em.proxied_base_url() + "/file/latest?per_page=2",
                         headers={"Authorization": f"Bearer {posted['access_token']}"})
    assert status == 200 and len(files) == 2


@pytest.mark.parametrize("field, value, words", [
    ("client_secret", "not-the-secret", "client secret"),
    ("refresh_token", "not-the-refresh-token", "refresh token"),
    ("client_id", "nobody", "client id"),
])
def test_wrong_credentials_answer_401_status_error_naming_what_is_wrong(em: MediaflowEmulator, field: str,
                                                                       value: str, words: str) -> None:
    status, body = post_token(em, **{field: value})
    assert status == 401
    assert set(body) == {"status", "error"} and body["status"] == 401
    assert words in body["error"].lower()


def test_password_grant_with_the_demo_user(em: MediaflowEmulator) -> None:
    status, body = post_token(em, grant_type="password", username=em.username, password=em.password)
    assert status == 200 and body["token_type"] == "Bearer"
    status, body = post_token(em, grant_type="password", username=em.username, password="wrong")
    assert status == 401 and "password" in body["error"]


def test_rotated_refresh_token_replaces_the_old_one(em: MediaflowEmulator) -> None:
    em.rotate_refresh_tokens = True
    old = em.credentials()["refresh_token"]
    status, body = post_token(em)
    assert status == 200 and body["refresh_token"] not in ("", old)
    assert em.credentials()["refresh_token"] == body["refresh_token"]
    assert body["refresh_token"] in em.secrets()
    status, err = post_token(em, refresh_token=old)
    assert status == 401 and "refresh token" in err["error"]
    assert post_token(em)[0] == 200  # the new one works


def test_expired_or_missing_token_answers_401(em: MediaflowEmulator) -> None:
    em.token_lifetime = 2
    auth = bearer(em)
    assert api(em, "folders", auth)[0] == 200
    time.sleep(2.1)
    status, body = api(em, "folders", auth)
    assert status == 401 and body == {"status": 401, "error": body["error"]} and "expired" in body["error"]
    em.token_lifetime = 7200
    auth = bearer(em)
    em.expire_tokens()
    assert api(em, "folders", auth)[0] == 401
    status, body = api(em, "folders", {})
    assert status == 401 and set(body) == {"status", "error"}
    assert api(em, "folders", {"Authorization": "Bearer made-up"})[0] == 401
    assert [r["reason"] for r in em.rejected_token_uses[-4:]] == ["expired", "expired", "missing", "invalid"]


def test_documented_access_token_query_parameter_works_and_is_recorded(em: MediaflowEmulator) -> None:
    token = bearer(em)["Authorization"].split()[1]
    before = len(em.query_token_uses)
    status, body = api(em, "foldertree", {}, access_token=token)
    assert status == 200 and isinstance(body, list)
    assert em.query_token_uses[before:] == ["/1/foldertree"]


# -- reads ---------------------------------------------------------------------------------------------------
def test_every_successful_get_is_an_array_and_errors_are_status_error(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    some_id = api(em, "file/latest", auth)[1][0]["id"]
    status, one = api(em, f"file/{some_id}", auth)
    assert status == 200 and isinstance(one, list) and len(one) == 1 and one[0]["id"] == some_id
    status, empty = api(em, "file/latest", auth, page=999)
    assert status == 200 and empty == []
    status, missing = api(em, "file/123", auth)
    assert status == 404 and missing["status"] == 404 and isinstance(missing["error"], str)
    status, missing = api(em, "folder/777/files", auth)
    assert status == 404 and set(missing) == {"status", "error"}
    for path in ("folders", "foldertree", "folder/10/files", "folders/10/files", "folders/10/children"):
        status, body = api(em, path, auth)
        assert status == 200 and isinstance(body, list) and body, path


def test_fields_selects_lower_case_names_and_id_always_comes(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    status, rows = api(em, "file/latest", auth, fields="name,smallpreview,uploadedby", per_page=3)
    assert status == 200 and all(set(r) == {"id", "name", "smallPreview", "uploadedBy"} for r in rows)
    for everything in ("all", "any"):
        rows = api(em, "file/latest", auth, fields=everything, per_page=2)[1]
        assert all(set(r) == set(FILE_FIELDS) for r in rows)
        assert set(rows[0]["type"]) == {"id", "type", "description", "extension"}
    default = api(em, "file/latest", auth, per_page=2)[1]
    assert "id" in default[0] and len(default[0]) < len(FILE_FIELDS)
    rows = api(em, "folders", auth, fields="name")[1]
    assert all(set(r) == {"id", "name"} for r in rows)


def test_latest_is_paged_newest_first_and_filters_type_and_processed(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    everything = api(em, "file/latest", auth, type="any", per_page=100, fields="uploaded,type,processed")[1]
    assert len(everything) == 60
    times = [r["uploaded"] for r in everything]
    assert times == sorted(times, reverse=True) and len(set(times)) == 60
    assert {r["type"]["type"] for r in everything} >= {"image", "video", "document"}
    p1 = api(em, "file/latest", auth, type="any", page=1, per_page=7)[1]
    p2 = api(em, "file/latest", auth, type="any", page=2, per_page=7)[1]
    assert [r["id"] for r in p1 + p2] == [r["id"] for r in everything[:14]]
    assert len(api(em, "file/latest", auth, type="any")[1]) == 20  # per_page defaults to 20
    images = api(em, "file/latest", auth, type="image", per_page=100, fields="type")[1]
    assert images and all(r["type"]["type"] == "image" for r in images)
    assert len(images) == sum(r["type"]["type"] == "image" for r in everything)
    done = api(em, "file/latest", auth, type="any", processed="true", per_page=100)[1]
    assert len(done) == sum(r["processed"] for r in everything) < 60
    assert api(em, "file/latest", auth, page=0)[0] == 400


def test_negative_ids_are_served(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    files = api(em, "file/latest", auth, type="any", per_page=100)[1]
    negative = [r["id"] for r in files if r["id"] < 0]
    assert negative
    status, one = api(em, f"file/{negative[0]}", auth, fields="all")
    assert status == 200 and one[0]["id"] == negative[0]
    tree = api(em, "foldertree", auth)[1]
    neg_folder = next(f["id"] for f in tree if f["id"] < 0 and not f["archived"])
    status, inside = api(em, f"folder/{neg_folder}/files", auth, fields="folderid", type="any")
    assert status == 200 and all(r["folderId"] == neg_folder for r in inside)
    assert len(inside) == sum(f["folderId"] == neg_folder for f in em.files.values())


def test_folder_tree_is_flat_three_levels_with_archived_and_consistent_parents(em: MediaflowEmulator) -> None:
    tree = api(em, "foldertree", None, fields="")[1]
    assert all(set(f) == set(TREE_FIELDS) for f in tree)
    by_id = {f["id"]: f for f in tree}
    assert {f["depth"] for f in tree} == {0, 1, 2}
    assert any(f["archived"] for f in tree)
    for f in tree:
        if f["depth"] == 0:
            assert f["parent"] == 0
        else:
            assert by_id[f["parent"]]["depth"] == f["depth"] - 1
        assert f["hasChildren"] == any(g["parent"] == f["id"] for g in tree)


# -- upload --------------------------------------------------------------------------------------------------
def test_forbidden_unknown_folder_and_bad_body(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    status, body = ask_upload(em, auth, "a.jpg", 10, em.forbidden_folder_id())
    assert (status, body) == (403, {"status": 403, "error": "You don't have permission to upload to this folder"})
    assert ask_upload(em, auth, "a.jpg", 10, 999)[0] == 404
    status, body = call("POST", em.credentials()["base_url"] + "/file", b'{"filename": "a.jpg"}',
                        {**auth, "Content-Type": "application/json"})
    assert status == 400 and set(body) == {"status", "error"}
    assert ask_upload(em, {}, "a.jpg", 10, 12)[0] == 401
    assert em.uploads_requested == 0


def _jpeg(color: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "JPEG")
    return buf.getvalue()


def test_two_step_upload_stores_once_and_is_processed_a_moment_later(em: MediaflowEmulator) -> None:
    em.processing_seconds = 0.3
    auth = bearer(em)
    data = _jpeg("red")
    status, grant = ask_upload(em, auth, "möte.jpg", len(data), -15)
    assert status == 200 and grant["expiresIn"] == 600 and grant["uploadURL"].startswith(em.base_url + "/upload/")
    assert grant["uploadURL"] in em.secrets()
    status, stored = call("PUT", grant["uploadURL"], data, {"Content-Type": "application/octet-stream"})
    assert status == 201 and isinstance(stored, list) and len(stored) == 1
    new = stored[0]
    assert (new["filename"], new["filesize"], new["processed"], new["folderId"]) == ("möte.jpg", len(data), False, -15)
    assert em.files[new["id"]]["data"] == data and em.stored_count("möte.jpg", -15) == 1
    listed = api(em, "folder/-15/files", auth, fields="processed")[1]
    assert {"id": new["id"], "processed": False} in listed
    assert new["id"] not in [r["id"] for r in api(em, "folder/-15/files", auth, processed="true")[1]]
    assert api(em, "file/latest", auth, type="any", per_page=1)[1][0]["id"] == new["id"]  # newest first
    time.sleep(0.5)
    status, now = api(em, f"file/{new['id']}", auth, fields="processed,haspreview,width")
    assert now[0]["processed"] is True and now[0]["hasPreview"] is True and now[0]["width"] == 64
    assert em.uploads_requested == 1 and em.upload_puts == 1


def test_wrong_size_is_400_and_stores_nothing(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    url = ask_upload(em, auth, "x.pdf", 10, 20)[1]["uploadURL"]
    status, body = call("PUT", url, b"123456789")
    assert status == 400 and body["status"] == 400 and "filesize" in body["error"]
    assert em.stored_count("x.pdf", 20) == 0 and em.upload_puts == 0
    assert call("PUT", url, b"1234567890")[0] == 201  # the URL stays usable


def test_expired_upload_url_is_403_with_the_contract_message(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    em.upload_url_lifetime = 1
    status, grant = ask_upload(em, auth, "late.jpg", 3, 12)
    assert grant["expiresIn"] == 1
    time.sleep(1.2)
    status, body = call("PUT", grant["uploadURL"], b"abc")
    assert (status, body) == (403, {"status": 403, "error": "Upload URL has expired"})
    em.upload_url_lifetime = 600
    url = ask_upload(em, auth, "late.jpg", 3, 12)[1]["uploadURL"]
    em.expire_upload_urls()
    assert call("PUT", url, b"abc")[1]["error"] == "Upload URL has expired"
    assert em.stored_count("late.jpg", 12) == 0
    bad = url.split("signature=")[0] + "signature=forged"
    status, body = call("PUT", bad, b"abc")
    assert status == 403 and "signature" in body["error"]


def test_repeated_put_replaces_the_same_file_but_a_second_url_duplicates(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    first, second = _jpeg("blue"), _jpeg("green")
    assert len(first) == len(second)
    url = ask_upload(em, auth, "same.jpg", len(first), 13)[1]["uploadURL"]
    a = call("PUT", url, first)[1][0]
    b = call("POST", url, second)[1][0]  # POST works like PUT
    assert a["id"] == b["id"] and em.stored_count("same.jpg", 13) == 1
    assert em.files[a["id"]]["data"] == second and em.upload_puts == 2
    url2 = ask_upload(em, auth, "same.jpg", len(first), 13)[1]["uploadURL"]
    c = call("PUT", url2, first)[1][0]
    assert c["id"] != a["id"] and em.stored_count("same.jpg", 13) == 2  # the hazard clients must avoid
    assert em.uploads_requested == 2


def test_multipart_upload_with_one_file_part(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    data = b"%PDF-1.4 sandbox"
    url = ask_upload(em, auth, "avtal.pdf", len(data), 22)[1]["uploadURL"]
    boundary = "mfboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"avtal.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    status, stored = call("PUT", url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 201 and em.files[stored[0]["id"]]["data"] == data


# -- previews ------------------------------------------------------------------------------------------------
def test_previews_are_served_without_auth_as_distinct_jpegs(em: MediaflowEmulator) -> None:
    rows = api(em, "file/latest", None, type="image", per_page=100, fields="haspreview,smallpreview,previews")[1]
    with_preview = [r for r in rows if r["hasPreview"]]
    without = [r for r in rows if not r["hasPreview"]]
    assert len(with_preview) >= 2 and without
    assert all(r["smallPreview"] == "" and r["previews"] == [] for r in without)
    pictures = []
    for r in with_preview[:2]:
        assert r["smallPreview"].startswith(em.base_url + "/previews/")
        status, raw = call("GET", r["smallPreview"])  # no Authorization header
        assert status == 200 and raw[:2] == b"\xff\xd8"
        with Image.open(io.BytesIO(raw)) as img:
            assert max(img.size) == 240
        pictures.append(raw)
    assert pictures[0] != pictures[1]
    assert call("GET", with_preview[0]["smallPreview"])[1] == pictures[0]  # cached and stable
    sizes = {p["name"]: p["url"] for p in with_preview[0]["previews"]}
    assert set(sizes) == {"thumb", "small", "medium"}
    assert len(call("GET", sizes["thumb"])[1]) < len(call("GET", sizes["medium"])[1])
    status, body = call("GET", f"{em.base_url}/previews/{without[0]['id']}/small.jpg")
    assert status == 404 and set(body) == {"status", "error"}
