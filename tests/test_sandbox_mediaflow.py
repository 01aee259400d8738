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


# -- what Mediaflow's own clients call (issue 19) -----------------------------------------------------------
def post_json(em: MediaflowEmulator, path: str, body: Any, auth: dict[str, str] | None = None,
              **params: Any) -> tuple[int, Any]:
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    return call("POST", f"{em.credentials()['base_url']}/{path}{query}", json.dumps(body).encode(),
                {**(auth if auth is not None else bearer(em)), "Content-Type": "application/json"})


def an_image(em: MediaflowEmulator) -> dict[str, Any]:
    return next(f for f in em._newest_first(list(em.files.values())) if f["type"]["type"] == "image")


def test_download_links_in_both_path_forms_and_a_form_turned_off_is_404(em: MediaflowEmulator) -> None:
    """The file selector asks ``file/{id}/downloads/0`` (singular): 404 before, only ``files/…`` was served."""
    auth, fid = bearer(em), an_image(em)["id"]
    status, single = api(em, f"file/{fid}/downloads/0", auth)
    assert status == 200 and len(single) == 1 and single[0]["id"] == 0 and single[0]["format"] == "Original"
    assert api(em, f"files/{fid}/downloads/0", auth)[1] == single  # the same signed link either way
    status, every = api(em, f"file/{fid}/downloads", auth)
    assert status == 200 and [d["id"] for d in every] == [0, 11, 12, 13]
    assert all(isinstance(d["downloadWarning"], bool) and isinstance(d["watermark"], bool) for d in every)
    em.download_path_forms = ("files",)
    status, body = api(em, f"file/{fid}/downloads/0", auth)
    assert status == 404 and body["error"] == "No such endpoint"
    assert api(em, f"files/{fid}/downloads/0", auth)[0] == 200
    em.download_path_forms = ("file",)
    assert api(em, f"files/{fid}/downloads/0", auth)[0] == 404 and api(em, f"file/{fid}/downloads/0", auth)[0] == 200


def test_formats_and_a_converted_download(em: MediaflowEmulator) -> None:
    auth, f = bearer(em), an_image(em)
    status, crate = api(em, "format", auth)  # the Rust crate: GET format, id/name/width/height
    assert status == 200 and all(set(x) == {"id", "name", "width", "height"} for x in crate)
    status, selector = api(em, "formats", auth, fields="id,name,suffix,filetype,width,height,keepRatio")
    assert status == 200 and [x["id"] for x in selector] == [x["id"] for x in crate]
    assert all(isinstance(x["keepRatio"], bool) and isinstance(x["width"], int) for x in selector)
    square = next(x for x in selector if not x["keepRatio"])
    link = api(em, f"file/{f['id']}/downloads/{square['id']}", auth)[1][0]
    assert link["filetype"] == square["filetype"] and link["format"] == square["name"]
    status, raw = call("GET", link["downloadURL"])  # no auth: the signed link
    with Image.open(io.BytesIO(raw)) as img:
        assert status == 200 and img.size == (square["width"], square["height"])
    assert call("GET", link["downloadURL"].replace("signature=", "signature=x"))[0] == 403
    document = next(x for x in em.files.values() if x["type"]["type"] == "document")
    assert api(em, f"file/{document['id']}/downloads/{square['id']}", auth)[0] == 404  # only the original
    assert [d["id"] for d in api(em, f"file/{document['id']}/downloads", auth)[1]] == [0]


def test_a_warning_is_a_bool_and_a_locked_file_is_403(em: MediaflowEmulator) -> None:
    from toolkit.sandbox.mediaflow_data import WARNING_MARK

    auth = bearer(em)
    warned = next(f for f in em.files.values() if f["mark"] == WARNING_MARK)
    assert api(em, f"file/{warned['id']}/downloads/0", auth)[1][0]["downloadWarning"] is True
    f = an_image(em)
    assert api(em, f"file/{f['id']}/checkpermissions", auth)[1] == [{"allowDownload": True,
                                                                      "allowDownloadReason": None}]
    f["locked"] = True
    try:
        status, body = api(em, f"file/{f['id']}/downloads/0", auth)
        assert status == 403 and "permission" in body["error"]
        assert api(em, f"file/{f['id']}/checkpermissions", auth)[1][0] == {"allowDownload": False,
                                                                            "allowDownloadReason": "FILE_DENIED"}
    finally:
        f["locked"] = False


def test_file_folders_marks_and_the_user_as_the_file_selector_reads_them(em: MediaflowEmulator) -> None:
    auth, f = bearer(em), an_image(em)
    status, folders = api(em, f"file/{f['id']}/folders", auth)
    assert status == 200 and folders[0]["id"] == f["folderId"]
    status, marks = api(em, "marks", auth)
    assert status == 200 and {m["mark"] for m in marks} == set(range(1, 7)) and all(m["name"] for m in marks)
    status, me = api(em, "users/me", auth, fields="activeModules")
    assert status == 200 and set(me[0]) == {"id", "customerId", "activeModules"}
    assert {"ai_assisted_search_default", "ai_generated_keywords"} <= set(me[0]["activeModules"])
    assert api(em, "file/123/folders", auth)[0] == 404 and api(em, "file/123/checkpermissions", auth)[0] == 404


def test_fields_the_clients_ask_for_come_back_with_the_vendor_types(em: MediaflowEmulator) -> None:
    """mark, gdprType, mediaId, alpha were asked for and never returned; the crate's numbers, objects and
    bools were strings, ints and ``""``."""
    auth = bearer(em)
    asked = "id,name,mark,uploaded,uploadedby,gdprstatus,gdprtype,mediaid,alttext,alpha"
    rows = api(em, f"folder/{an_image(em)['folderId']}/files", auth, fields=asked)[1]
    assert rows and all({"mark", "gdprType", "mediaId", "alpha", "uploadedBy"} <= set(r) for r in rows)
    full = api(em, f"file/{an_image(em)['id']}", auth, fields="all")[1][0]
    for name in ("dpi", "rating", "nrDownloads", "mark", "uploadedBy"):
        assert isinstance(full[name], int) and not isinstance(full[name], bool), name
    for name in ("hasVersions", "hasHistory", "locked", "alpha", "processed"):
        assert isinstance(full[name], bool), name
    assert isinstance(full["instructions"], str) and isinstance(full["comment"], str)
    assert all(isinstance(p["size"], str) for p in full["previews"])  # the crate's Preview.size: a String
    tree = api(em, "folders", auth, fields="all")[1]
    for folder in tree:
        assert isinstance(folder["type"], int) and isinstance(folder["createdBy"], int)
        assert all(isinstance(p, dict) and {"id", "name"} <= set(p) for p in folder["parents"])
    deep = next(x for x in tree if x["id"] == -15)
    assert [p["id"] for p in deep["parents"]] == [10, -14] and [p["name"] for p in deep["parents"]] == [
        "Bilder", "Evenemang"]
    em.legacy_shapes = True  # the contract as first researched, for tests of clients that read both
    old = api(em, f"file/{an_image(em)['id']}", auth, fields="all")[1][0]
    assert isinstance(old["uploadedBy"], str) and isinstance(old["dpi"], str)
    assert api(em, "folders", auth, fields="parents")[1][-1]["parents"] == [40]


def test_search_as_the_file_selector_posts_it(em: MediaflowEmulator) -> None:
    auth = bearer(em)
    body = {"searchTerm": "sommar", "lang": "sv-SE", "ai": False}
    status, hits = post_json(em, "search/file", body, auth,
                             fields="id,name,filename,type,mark,uploaded,uploadedby,gdprtype,mediaid,alttext")
    assert status == 200 and len(hits) >= 3
    truth = {f["id"]: f for f in em.files.values()}
    assert all("sommar" in " ".join(str(truth[h["id"]][k]) for k in ("name", "filename", "description", "alttext",
                                                                      "photographer")).lower() for h in hits)
    assert len(hits) == sum("sommar" in f"{f['name']} {f['filename']} {f['description']} {f['alttext']} "
                            f"{f['photographer']}".lower() for f in truth.values())
    assert all({"mark", "gdprType", "mediaId"} <= set(h) for h in hits)
    ranks = [("sommar" in h["name"].lower()) for h in hits]
    assert ranks == sorted(ranks, reverse=True)  # hits in the name first
    p2 = post_json(em, "search/file", body, auth, fields="id", page=2, per_page=2)[1]
    assert [h["id"] for h in p2] == [h["id"] for h in hits[2:4]]
    assert em.search_requests[-1] == {"term": "sommar", "lang": "sv-SE", "ai": False,
                                      "query": {"fields": "id", "page": "2", "per_page": "2"}}
    assert post_json(em, "search/file", {"searchTerm": "sommar stockholm", "lang": "en-GB"}, auth)[0] == 200
    assert post_json(em, "search/file", {"searchTerm": " ", "lang": "sv-SE"}, auth)[0] == 400
    assert post_json(em, "search/file", {"searchTerm": "x", "lang": "xx-XX"}, auth)[0] == 400
    assert post_json(em, "search/file", body, {})[0] == 401


def test_usage_reports_of_wagtail_and_wordpress_are_recorded_and_listed(em: MediaflowEmulator) -> None:
    auth, fid = bearer(em), an_image(em)["id"]
    wagtail = {"contact": "Redaktör", "types": ["web"], "web": {"page": "https://www.example.se/a", "pageName": "A"},
               "project": "Wagtail", "date": "2025-06-01 10:00:00.123+00:00"}
    status, made = post_json(em, f"file/{fid}/usage", wagtail, auth)
    assert status == 200 and made[0]["type"] == "WEB" and made[0]["url"] == "https://www.example.se/a"
    wordpress = {"id": [fid], "types": ["web"], "date": "2025-06-02", "contact": "WP", "amount": 1,
                 "project": "WordPress", "removed": False, "web": {"page": "https://www.example.se/b", "pageName": "B"}}
    assert post_json(em, "files/multiple/usages", wordpress, auth)[0] == 200
    documented = dict(wordpress, id=[str(fid)], amount="1", removed="false", web={"page": "https://x.se/c"})
    assert post_json(em, "files/multiple/usages", documented, auth)[0] == 200  # the docs' strings
    status, listed = api(em, f"file/{fid}/usage", auth, fields="any")
    assert status == 200 and [u["url"] for u in listed] == ["https://www.example.se/a", "https://www.example.se/b",
                                                           "https://x.se/c"]
    assert listed[1]["contact"] == "WP" and listed[1]["project"] == "WordPress" and listed[1]["pageName"] == "B"
    assert listed[1]["publishDate"] == "2025-06-02" and listed[1]["createdBy"]["name"] and listed[1]["created"]
    assert len(em.usages[fid]) == 3 and len(em.usage_posts) == 3
    post_json(em, "files/multiple/usages", dict(wordpress, removed=True), auth)  # no longer used on page b
    assert [u["url"] for u in api(em, f"file/{fid}/usage", auth)[1]] == ["https://www.example.se/a", "https://x.se/c"]
    status, body = post_json(em, "files/multiple/usages", dict(wordpress, id=[fid, 123]), auth)
    assert status == 404 and "123" in body["error"] and len(em.usages[fid]) == 2  # nothing recorded
    assert post_json(em, f"file/{fid}/usage", dict(wagtail, types="web"), auth)[0] == 400
    assert post_json(em, f"file/{fid}/usage", dict(wagtail, web={}), auth)[0] == 400
    assert post_json(em, "files/multiple/usages", dict(wordpress, removed="maybe"), auth)[0] == 400
    assert post_json(em, "file/123/usage", wagtail, auth)[0] == 404
