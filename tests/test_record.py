"""Redacted transcripts (toolkit.record) and offline replays (toolkit.testing.replay) — issue 20, part A.

Every transcript written here is checked by a reader that did not write it: ``jsonschema`` against the
HAR 1.2 schema below (transcribed from the HAR 1.2 specification: required fields, types, custom fields only
with a leading underscore, ``text``/``params`` of postData mutually exclusive), plus the spec's rules the
schema cannot say (``time`` is the sum of the timings, dates are ISO 8601, the query string is the URL's).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import pandas as pd
import pytest

import toolkit
from toolkit.core.http import Exchange, HttpClient, RetryPolicy
from toolkit.core.record import ReplayMiss, har_entry, load_har
from toolkit.testing import assert_no_secrets, replay

# -- HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) as a JSON schema ---------------------------
_CUSTOM = {"^_": {}}


def _obj(required: list[str], props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": {**props, "comment": {"type": "string"}},
            "patternProperties": _CUSTOM, "additionalProperties": False}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_NUM = {"type": "number"}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}
_RECORD = _obj(["name", "value"], {"name": _STR, "value": _STR})
_COOKIE = _obj(["name", "value"], {"name": _STR, "value": _STR, "path": _STR, "domain": _STR, "expires": _STR,
                                   "httpOnly": {"type": "boolean"}, "secure": {"type": "boolean"}})
_POST_DATA = {**_obj(["mimeType"], {
    "mimeType": _STR, "text": _STR,
    "params": {"type": "array", "items": _obj(["name"], {"name": _STR, "value": _STR, "fileName": _STR,
                                                         "contentType": _STR})}}),
    "not": {"required": ["text", "params"]}}
_CACHE_ENTRY = {"oneOf": [{"type": "null"}, _obj(["lastAccess", "eTag", "hitCount"], {
    "expires": _STR, "lastAccess": _STR, "eTag": _STR, "hitCount": _INT})]}
_TIMING_OPTIONAL = {"type": "number", "minimum": -1}
_TIMING = {"type": "number", "minimum": 0}
HAR_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object", "required": ["log"], "additionalProperties": False,
    "properties": {"log": _obj(["version", "creator", "entries"], {
        "version": {"const": "1.2"},
        "creator": _obj(["name", "version"], {"name": _STR, "version": _STR}),
        "browser": _obj(["name", "version"], {"name": _STR, "version": _STR}),
        "pages": {"type": "array", "items": _obj(["startedDateTime", "id", "title", "pageTimings"], {
            "startedDateTime": _DATE, "id": _STR, "title": _STR,
            "pageTimings": _obj([], {"onContentLoad": _NUM, "onLoad": _NUM})})},
        "entries": {"type": "array", "items": _obj(
            ["startedDateTime", "time", "request", "response", "cache", "timings"], {
                "pageref": _STR, "startedDateTime": _DATE, "time": {"type": "number", "minimum": 0},
                "request": _obj(["method", "url", "httpVersion", "cookies", "headers", "queryString", "headersSize",
                                 "bodySize"], {
                    "method": _STR, "url": {"type": "string", "pattern": "^https?://"}, "httpVersion": _STR,
                    "cookies": {"type": "array", "items": _COOKIE}, "headers": {"type": "array", "items": _RECORD},
                    "queryString": {"type": "array", "items": _RECORD}, "postData": _POST_DATA,
                    "headersSize": _INT, "bodySize": _INT}),
                "response": _obj(["status", "statusText", "httpVersion", "cookies", "headers", "content",
                                  "redirectURL", "headersSize", "bodySize"], {
                    "status": _INT, "statusText": _STR, "httpVersion": _STR,
                    "cookies": {"type": "array", "items": _COOKIE}, "headers": {"type": "array", "items": _RECORD},
                    "content": _obj(["size", "mimeType"], {"size": _INT, "compression": _INT, "mimeType": _STR,
                                                           "text": _STR, "encoding": _STR}),
                    "redirectURL": _STR, "headersSize": _INT, "bodySize": _INT}),
                "cache": _obj([], {"beforeRequest": _CACHE_ENTRY, "afterRequest": _CACHE_ENTRY}),
                "timings": _obj(["send", "wait", "receive"], {
                    "blocked": _TIMING_OPTIONAL, "dns": _TIMING_OPTIONAL, "connect": _TIMING_OPTIONAL,
                    "send": _TIMING, "wait": _TIMING, "receive": _TIMING, "ssl": _TIMING_OPTIONAL}),
                "serverIPAddress": _STR, "connection": _STR})},
    })},
}


def assert_valid_har(path: Path) -> dict[str, Any]:
    """The file parsed, after the schema and the spec's further rules were checked."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(HAR_SCHEMA)
    errors = sorted(jsonschema.Draft7Validator(HAR_SCHEMA).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    for entry in doc["log"]["entries"]:
        datetime.fromisoformat(entry["startedDateTime"])
        timings = entry["timings"]
        total = sum(v for k, v in timings.items() if k in ("blocked", "dns", "connect", "send", "wait", "receive")
                    and v != -1)  # ssl is counted in connect
        assert entry["time"] == pytest.approx(total, abs=0.01)
        request = entry["request"]
        assert [(q["name"], q["value"]) for q in request["queryString"]] == \
            parse_qsl(urlsplit(request["url"]).query, keep_blank_values=True)
        content = entry["response"]["content"]
        if "text" not in content:  # a body not recorded says so
            assert "not recorded" in content.get("comment", "")
    return doc


def test_the_schema_catches_what_is_not_har(tmp_path: Path) -> None:
    """The checker can fail: a field without an underscore, a missing timing, text and params together."""
    good = {"log": {"version": "1.2", "creator": {"name": "x", "version": "1"}, "entries": []}}
    (tmp_path / "good.har").write_text(json.dumps(good))
    assert_valid_har(tmp_path / "good.har")
    entry = har_entry(_exchange(method="POST", url="https://svc.example/x",
                                request_headers=[("Content-Type", "application/x-www-form-urlencoded")],
                                request_body=b"a=1"))
    for broken in ({**entry, "service": "x"}, {**entry, "timings": {"send": 0, "wait": 1}},
                   {**entry, "request": {**entry["request"], "postData": {"mimeType": "a", "text": "", "params": []}}}):
        (tmp_path / "bad.har").write_text(json.dumps({"log": {**good["log"], "entries": [broken]}}))
        with pytest.raises(AssertionError):
            assert_valid_har(tmp_path / "bad.har")


# -- redaction of single exchanges (fake secrets) ---------------------------------------------------------
FAKE_TOKEN = "fake-access-token-7f3a9c1d2e"
FAKE_SECRET = "fake-client-secret-0b1c2d3e"
FAKE_PASSWORD = "fake-pass-word-98765"
FAKE_SIGNATURE = "c2lnbmF0dXJlLWZha2UtMTIz"
FAKE_COOKIE = "sess-fake-cookie-4455"
CPR = "0101901234"
CPR_REPLACEMENT = "6101901234"  # a replacement number (day + 60) does not start like a date


def _exchange(**kw: Any) -> Exchange:
    base: dict[str, Any] = dict(service="uddata", method="GET", url="https://svc.example/api", http_version="HTTP/1.1",
                                request_headers=[], request_body=None, status=200, reason="OK",
                                response_headers=[("Content-Type", "application/json")], response_body=b"{}",
                                started=1_700_000_000.0, elapsed_ms=12.5)
    base.update(kw)
    return Exchange(**base)


def _record(tmp_path: Path, *exchanges: Exchange) -> tuple[str, dict[str, Any]]:
    """The exchanges written as a transcript the way record() writes one: (file text, parsed and checked)."""
    from toolkit.core import http

    path = tmp_path / "t.har"
    with toolkit.record(path):
        for exchange in exchanges:
            for callback in list(http._observers):
                callback(exchange)
    return path.read_text(encoding="utf-8"), assert_valid_har(path)


def test_credential_headers_and_cookies_are_masked(tmp_path: Path) -> None:
    text, doc = _record(tmp_path, _exchange(
        request_headers=[("Authorization", f"Bearer {FAKE_TOKEN}"), ("Cookie", f"session={FAKE_COOKIE}; lang=da"),
                         ("X-Api-Key", FAKE_SECRET), ("Proxy-Authorization", f"Basic {FAKE_SECRET}")],
        response_headers=[("Set-Cookie", f"session={FAKE_COOKIE}; Path=/; HttpOnly"), ("Boknett-TGT", "TGT-123-abc"),
                          ("Content-Type", "text/plain")], response_body=b"ok"))
    assert_no_secrets(text, [FAKE_TOKEN, FAKE_SECRET, FAKE_COOKIE, "TGT-123-abc"], "the transcript")
    headers = {h["name"]: h["value"] for h in doc["log"]["entries"][0]["request"]["headers"]}
    assert headers["Authorization"] == "Bearer ***"  # the scheme stays: support sees which kind was sent
    assert headers["Cookie"] == "session=***; lang=***"
    entry = doc["log"]["entries"][0]
    assert entry["request"]["cookies"] == [{"name": "session", "value": "***"}, {"name": "lang", "value": "***"}]
    assert entry["response"]["cookies"] == [{"name": "session", "value": "***"}]
    assert entry["_service"] == "uddata" and entry["response"]["content"]["text"] == "ok"


def test_token_fields_and_signed_links_are_masked(tmp_path: Path) -> None:
    form = (f"grant_type=client_credentials&client_id=my.client&client_secret={FAKE_SECRET}"
            f"&password={FAKE_PASSWORD}").encode()
    body = json.dumps({"access_token": FAKE_TOKEN, "token_type": "Bearer", "expires_in": 3600,
                       "refreshToken": FAKE_SECRET, "links": {"download": f"https://cdn.example/f?sig={FAKE_SIGNATURE}"},
                       "price": 19.90}).replace("19.9", "19.90").encode()
    text, doc = _record(tmp_path, _exchange(
        method="POST", url=f"https://svc.example/oauth/token?signature={FAKE_SIGNATURE}&token={FAKE_TOKEN}&page=2",
        request_headers=[("Content-Type", "application/x-www-form-urlencoded")], request_body=form,
        response_body=body))
    assert_no_secrets(text, [FAKE_TOKEN, FAKE_SECRET, FAKE_PASSWORD, FAKE_SIGNATURE], "the transcript")
    request = doc["log"]["entries"][0]["request"]
    assert request["url"] == "https://svc.example/oauth/token?signature=***&token=***&page=2"
    assert {p["name"]: p["value"] for p in request["postData"]["params"]} == {
        "grant_type": "client_credentials", "client_id": "my.client", "client_secret": "***", "password": "***"}
    answer = json.loads(doc["log"]["entries"][0]["response"]["content"]["text"])
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3600  # what is no secret stays
    assert answer["access_token"] == answer["refreshToken"] == "***"
    assert '"price": 19.90' in doc["log"]["entries"][0]["response"]["content"]["text"]  # numbers as sent


def test_cpr_numbers_are_masked_in_urls_bodies_and_headers(tmp_path: Path) -> None:
    roster = json.dumps([{"cpr_nr": CPR, "navn": "A"}, {"cpr_nr": "010190-5678"}, {"cpr": CPR_REPLACEMENT}]).encode()
    text, doc = _record(
        tmp_path,
        _exchange(url=f"https://svc.example/billeder/{CPR_REPLACEMENT}", response_body=roster,
                  request_headers=[("X-Person", CPR)],
                  response_headers=[("Content-Type", "application/json"),
                                    ("Content-Disposition", f'attachment; filename="{CPR_REPLACEMENT}.jpg"')]),
        _exchange(method="POST", url="https://svc.example/search", request_headers=[("Content-Type", "text/plain")],
                  request_body=f"who is 010190-5678 and {CPR}?".encode(), response_body=b"{}"))
    assert_no_secrets(text, [CPR, CPR_REPLACEMENT, "0101905678", "010190-5678", "610190-1234"], "the transcript")
    first, second = doc["log"]["entries"]
    assert first["request"]["url"].endswith("/billeder/610190-****")
    assert "010190-****" in second["request"]["postData"]["text"]


def test_image_and_file_bodies_are_replaced_by_their_size_and_type(tmp_path: Path) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40
    text, doc = _record(
        tmp_path,
        _exchange(url="https://svc.example/photo", response_headers=[("Content-Type", "image/jpeg")], response_body=jpeg),
        _exchange(method="PUT", url="https://upload.example/f", request_headers=[("Content-Type", "image/png"),
                                                                                  ("Content-Length", "5")],
                  request_body=b"\x89PNG\x00"),
        _exchange(method="POST", url="https://svc.example/files",
                  request_headers=[("Content-Type", "multipart/form-data; boundary=x"), ("Content-Length", "4096")]),
        _exchange(url="https://svc.example/download", response_body=None,
                  response_headers=[("Content-Type", "application/octet-stream"), ("Content-Length", "123456")]))
    photo, put, multipart, download = doc["log"]["entries"]
    assert photo["response"]["content"] == {"size": len(jpeg), "mimeType": "image/jpeg", "comment": photo[
        "response"]["content"]["comment"]} and "image/jpeg" in photo["response"]["content"]["comment"]
    assert put["request"]["bodySize"] == 5 and "text" not in put["request"]["postData"]
    assert "4096 bytes" in multipart["request"]["postData"]["comment"] and multipart["request"]["bodySize"] == -1
    assert download["response"]["content"]["size"] == 123456 and "text" not in download["response"]["content"]
    assert "\\u00ff" not in text and "\\ufffd" not in text  # no binary smuggled in as text


def test_the_file_is_written_when_the_block_fails(tmp_path: Path) -> None:
    path = tmp_path / "support.har"
    with pytest.raises(RuntimeError):
        with toolkit.record(path):
            raise RuntimeError("the problem to send to support")
    assert assert_valid_har(path)["log"]["entries"] == []


def test_recording_across_notebook_cells_and_plain_errors(tmp_path: Path) -> None:
    rec = toolkit.record(tmp_path / "cells.har")  # starts at once
    assert rec.recording and "recording" in repr(rec)
    assert rec.stop() == tmp_path / "cells.har" and not rec.recording
    assert_valid_har(tmp_path / "cells.har")
    with pytest.raises(toolkit.ValidationError, match="does not exist"):
        toolkit.record(tmp_path / "no" / "such" / "folder.har")
    (tmp_path / "not.har").write_text("{}")
    with pytest.raises(toolkit.ValidationError, match="not a HAR transcript"):
        load_har(tmp_path / "not.har")


# -- replay (hand-made transcripts) ---------------------------------------------------------------------
def _write(tmp_path: Path, *exchanges: Exchange) -> Path:
    _record(tmp_path, *exchanges)
    return tmp_path / "t.har"


def _get(http: HttpClient, *calls: tuple[str, str, dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        out = []
        for method, path, kw in calls:
            response = await http.request(method, path, allow=range(400, 600), **kw)
            out.append((response.status_code, response.content))
        await http.aclose()
        return out

    return asyncio.run(run())


def test_replay_answers_repeated_requests_in_recorded_order(tmp_path: Path) -> None:
    url = "https://svc.example/jobs/7"
    path = _write(tmp_path, *(_exchange(url=url, response_body=json.dumps({"state": s}).encode())
                              for s in ("queued", "running", "done")))
    with replay(path) as replayer:
        http = HttpClient("livingdocs", "https://svc.example", retry=RetryPolicy(attempts=1))
        got = _get(http, *[("GET", "/jobs/7", {})] * 4)
    assert [json.loads(body)["state"] for _, body in got] == ["queued", "running", "done", "done"]
    assert replayer.answered == 4 and replayer.unused == 0 and replayer.misses == []


def test_replay_matches_masked_parts_as_wildcards_and_prefers_the_matching_body(tmp_path: Path) -> None:
    form = "application/x-www-form-urlencoded"
    path = _write(
        tmp_path,
        _exchange(method="POST", url=f"https://svc.example/oauth/token?sig={FAKE_SIGNATURE}",
                  request_headers=[("Content-Type", form)], request_body=f"client_secret={FAKE_SECRET}".encode(),
                  response_body=json.dumps({"access_token": FAKE_TOKEN, "expires_in": 60}).encode()),
        _exchange(url=f"https://svc.example/billeder/{CPR}", response_body=b'{"who": "first"}'),
        _exchange(method="PUT", url="https://svc.example/products/1", request_headers=[("Content-Type", "application/json")],
                  request_body=b'{"price": "10.00"}', response_body=b'{"answer": "ten"}'),
        _exchange(method="PUT", url="https://svc.example/products/1", request_headers=[("Content-Type", "application/json")],
                  request_body=b'{"price": "12.00"}', response_body=b'{"answer": "twelve"}'))
    with replay(path) as replayer:
        http = HttpClient("uddata", "https://svc.example", retry=RetryPolicy(attempts=1))
        got = _get(http,
                   ("POST", "/oauth/token", {"params": {"sig": "another-signature"}, "data": {"client_secret": "other"}}),
                   ("GET", "/billeder/0101909999", {}),  # another CPR of the same birth date: the mask matches it
                   ("PUT", "/products/1", {"json": {"price": "12.00"}}),  # recorded second, matched by its body
                   ("PUT", "/products/1", {"json": {"price": "10.00"}}))
    assert json.loads(got[0][1])["access_token"] == "***" and json.loads(got[0][1])["expires_in"] == 60
    assert json.loads(got[1][1]) == {"who": "first"}
    assert [json.loads(body)["answer"] for _, body in got[2:]] == ["twelve", "ten"]
    assert replayer.misses == []


def test_a_request_the_transcript_lacks_is_a_plain_error(tmp_path: Path) -> None:
    path = _write(tmp_path, _exchange(method="POST", url="https://svc.example/imports", request_body=b"{}",
                                      request_headers=[("Content-Type", "application/json")]))
    with replay(path) as replayer:
        http = HttpClient("livingdocs", "https://svc.example", retry=RetryPolicy(attempts=1))
        _get(http, ("POST", "/imports", {"json": {}}))
        with pytest.raises(ReplayMiss) as info:  # a POST is not answered twice from one recording
            _get(http, ("POST", "/imports", {"json": {}}))
        with pytest.raises(ReplayMiss, match=r"no answer for GET https://svc.example/billeder/010190-\*\*\*\*"):
            _get(http, ("GET", f"/billeder/{CPR}", {}))
    assert isinstance(info.value, toolkit.TransportError) and "recorded 1 time" in str(info.value)
    assert CPR not in " ".join(replayer.misses) and len(replayer.misses) == 2


# -- against the sandbox --------------------------------------------------------------------------------
def _issued(sb: Any) -> list[str]:
    """Every secret and personal value of the sandbox, CPR numbers in both their forms."""
    personal = sb.personal_data()
    return [*sb.secrets(), *personal, *(re.sub(r"\D", "", p) for p in personal)]


@pytest.mark.integration
def test_a_transcript_of_all_five_services_is_valid_har_without_a_secret_or_cpr(make_sandbox: Any,
                                                                                tmp_path: Path) -> None:
    sb = make_sandbox(seed=3)
    photo = tmp_path / "upload" / "bild.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8\xff\xe0fake jpeg for the transcript")
    lv_em = sb.emulator("livingdocs")
    path = tmp_path / "support.har"
    with toolkit.record(path) as rec:
        ud = toolkit.uddata.connect(**sb.credentials("uddata"))
        roster = ud.students()
        audit = ud.audit(roster["cpr"].tolist()[:8], progress=False)
        dk = toolkit.dokus.connect(**sb.credentials("dokus"))
        dk.products.list()
        lv = toolkit.livingdocs.connect(**sb.credentials("livingdocs"))
        lv.import_images([{"url": lv_em.image_url("ok-1.png"), "id": "rec-1", "fileName": "One"}],
                         system_name="archive").wait(timeout=60, progress=False)
        bk = toolkit.boknett.connect(**sb.credentials("boknett"))
        objs = bk.objects(after=pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=30))
        bk.download(objs.head(2), tmp_path / "covers")
        mf = toolkit.mediaflow.connect(**sb.credentials("mediaflow"))
        latest = mf.latest(limit=2)
        mf.download_urls(latest)
        mf.upload(photo, 13)
    doc = assert_valid_har(path)
    text = path.read_text(encoding="utf-8")
    assert_no_secrets(text, _issued(sb), "the transcript")
    entries = doc["log"]["entries"]
    assert len(entries) == len(rec.entries) and rec.failed == 0
    assert {e["_service"] for e in entries} == {"uddata", "dokus", "livingdocs", "boknett", "mediaflow"}
    # the redaction did its work (the scan above is not passing for want of material)
    assert audit["outcome"].eq("with_photo").any()
    photos = [e for e in entries if "/billeder/" in e["request"]["url"] and e["response"]["status"] == 200]
    assert photos and all(re.search(r"/billeder/\d{6}-\*{4}$", e["request"]["url"]) for e in photos)
    assert all("text" not in e["response"]["content"] and e["response"]["content"]["mimeType"].startswith("image/")
               and e["response"]["content"]["size"] > 0 for e in photos)
    auth = [h["value"] for e in entries for h in e["request"]["headers"] if h["name"].lower() == "authorization"]
    assert {"Bearer ***", "Basic ***", "Boknett ***"} <= set(auth)
    assert "010190-" not in text or "-****" in text
    assert any('"cpr_nr": "' in (e["response"]["content"].get("text") or "") and "-****" in e["response"]["content"]["text"]
               for e in entries)


@pytest.mark.integration
def test_notebook_05_replays_offline_with_the_same_frames(make_sandbox: Any, tmp_path: Path) -> None:
    """Notebook 05's main calls recorded against the sandbox; the sandbox stopped; the same calls answered
    from the transcript give the same frames (the downloaded files by name and size)."""
    sb = make_sandbox(seed=0, services=["boknett"])
    creds = sb.credentials("boknett")
    since = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=30)
    path = tmp_path / "05.har"

    def notebook(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        bk = toolkit.boknett.connect(**creds)
        objs = bk.objects(after=since)
        per_type = objs.groupby(["type", "type_name"]).size().rename("objects").reset_index()
        covers = objs[objs["type"].isin(["ol", "os", "org"])].head(12)
        files = bk.download(covers, folder, concurrency=4)
        return objs, per_type, files

    with toolkit.record(path):
        objs, per_type, files = notebook(tmp_path / "live")
    sb.stop()
    assert (files["outcome"] == "downloaded").sum() >= 6
    with pytest.raises(toolkit.TransportError):  # nothing answers any more
        toolkit.boknett.connect(**creds).objects(after=since)
    shutil.rmtree(tmp_path / "live")
    with replay(path) as replayer:
        objs2, per_type2, files2 = notebook(tmp_path / "replayed")
    assert replayer.misses == [] and replayer.unused == 0
    pd.testing.assert_frame_equal(objs2, objs)
    pd.testing.assert_frame_equal(per_type2, per_type)
    pd.testing.assert_frame_equal(files2.drop(columns=[c for c in files2 if c in ("path", "message")]),
                                  files.drop(columns=[c for c in files if c in ("path", "message")]))
    for name, size in zip(files2["file"], files2["bytes"]):
        assert (tmp_path / "replayed" / name).stat().st_size == size
