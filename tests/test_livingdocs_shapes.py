"""The Livingdocs client reads both shapes of what the sources disagree on, with one declared dtype per column.

The vendor's SDK (@livingdocs/node-sdk, README.md) types a media id as a number and returns the media list as
a bare array; the vendor's reference and the sandbox by default give text ids, and the lists of 2026-01 on come
as ``{"results": [...]}`` (``{"mediaLibraryEntries": [...]}`` in the reference's example). Whichever comes,
``media_id`` is text (``string``) and the sizes whole numbers (``Int64``). docs/livingdocs.md, "Shapes".
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pandas as pd
import pytest

import toolkit
from toolkit.core.http import Timeouts

SYSTEM = "archive"


# -- against the sandbox: text ids (the research) and number ids (the SDK) ----------------------------------------
@pytest.fixture(scope="module")
def lsb() -> Iterator[Any]:
    with toolkit.sandbox.start(services=["livingdocs"], seed=31) as sandbox:
        yield sandbox


@pytest.fixture
def em(lsb: Any) -> Iterator[Any]:
    emulator = lsb.emulator("livingdocs")
    emulator.reset()
    lsb.set_faults("livingdocs")
    with emulator.restored():  # numeric_media_ids and the rest are put back afterwards
        emulator.job_seconds = 0.1
        emulator.daily_limit = None
        yield emulator


@pytest.mark.parametrize("numeric", [False, True], ids=["text-ids", "number-ids"])
def test_media_ids_land_as_text_whether_served_as_text_or_numbers(lsb: Any, em: Any, numeric: bool) -> None:
    em.numeric_media_ids = numeric
    images = [{"url": em.image_url(name), "id": ext, "fileName": name}
              for name, ext in [("ok-1.png", "a1"), ("photo-2.jpg", 7), ("logo.svg", "a3")]]
    with toolkit.livingdocs.connect(**lsb.credentials("livingdocs")) as lv:
        res = lv.import_images(images, system_name=SYSTEM, progress=False).results(timeout=30)
        media = lv.media(res["external_id"], SYSTEM)
    served = [em.entry(SYSTEM, ext)["id"] for ext in ("a1", "7", "a3")]
    assert all(isinstance(i, int) for i in served) is numeric  # the sandbox served the shape asked for
    expected = [str(i) for i in served]
    for df in (res, media):
        assert str(df["media_id"].dtype) == "string" and str(df["width"].dtype) == "Int64"
        assert df["media_id"].tolist() == expected
    assert media["found"].all() and media["external_id"].tolist() == ["a1", "7", "a3"]
    assert media["width"].tolist() == res["width"].tolist() == [48, 160, 120]
    assert media["version"].tolist() == [1, 1, 1] and str(media["version"].dtype) == "Int64"


# -- a canned service on loopback: the shapes the sandbox does not serve ------------------------------------------
def _entry(media_id: Any, ext: Any, width: Any, height: Any, size: Any, version: Any) -> dict[str, Any]:
    return {"id": media_id, "version": version, "mediaType": "image", "systemName": SYSTEM, "externalId": ext,
            "asset": {"url": f"https://images.example/{media_id}.jpg", "mimeType": "image/jpeg", "width": width,
                      "height": height, "size": size},
            "metadata": {"title": f"image {ext}"}, "createdAt": "2020-12-27T09:19:00.928Z",
            "updatedAt": "2020-12-27T09:19:00.928Z"}


#: externalId → the body of ``GET mediaLibrary?externalId=…``: each list shape, numbers as JSON numbers or text
LOOKUPS: dict[str, Any] = {
    "n1": [_entry(123, "n1", 1600, 900, 21000, 1)],                                         # SDK: Media[], number id
    "t1": {"mediaLibraryEntries": [_entry("asze63i9", "t1", "1600", "900", "21000", "2")]},  # numbers as text
    "r1": {"results": [_entry("2er11b3i", "r1", 1600.0, " 900 ", "21000.0", 3)]},           # 2026-01 on
    "7": [_entry(4567, 7, "1600", 900, None, "1")],                                         # number externalId
    "none": [],
}
STATUS = {"finished": True, "state": "success", "id": 42, "images": [
    {"status": "success", "externalId": "n1", "image": {"mediaId": 123, "width": 1600, "height": 900}},
    {"state": "success", "externalId": "t1", "image": {"mediaId": "asze63i9", "width": "1600", "height": "900"}},
    {"status": "skipped", "externalId": 7, "reason": "already exists",
     "image": {"mediaId": 4567, "width": "1600.0", "height": 900.0}},
]}


def _serve(answer: Callable[[str, str], tuple[int, Any]]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            status, body = answer(self.command, self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _canned(method: str, path: str) -> tuple[int, Any]:
    url = urllib.parse.urlsplit(path)
    query = dict(urllib.parse.parse_qsl(url.query))
    if method == "POST" and url.path == "/api/v1/import/images":
        return 200, {"id": 42}  # a job id as a number
    if url.path == "/api/v1/import/images/status" and query.get("id") == "42":
        return 200, STATUS
    if url.path == "/api/v1/mediaLibrary" and query.get("externalId") in LOOKUPS:
        return 200, LOOKUPS[query["externalId"]]
    return 404, {"status": 404, "error": "Not Found", "error_details": {"url": url.path}}


@pytest.fixture
def canned() -> Iterator[Any]:
    server, base_url = _serve(_canned)
    lv = toolkit.livingdocs.connect(base_url=base_url, token="ldpat_canned-not-a-token", timeouts=Timeouts(total=10))
    try:
        yield lv
    finally:
        lv.close()
        server.shutdown()
        server.server_close()


def test_media_lookup_reads_every_list_shape_and_numbers_given_as_text(canned: Any) -> None:
    media = canned.media(["n1", "t1", "r1", "7", "none"], SYSTEM)
    assert media["found"].tolist() == [True, True, True, True, False]
    assert media["media_id"].tolist()[:4] == ["123", "asze63i9", "2er11b3i", "4567"]
    assert media["width"].tolist()[:4] == [1600] * 4 and media["height"].tolist()[:4] == [900] * 4
    assert media["bytes"].tolist()[:3] == [21000] * 3 and pd.isna(media["bytes"].iloc[3])
    assert media["version"].tolist()[:4] == [1, 2, 3, 1]
    dtypes = {c: str(media[c].dtype) for c in ("media_id", "width", "height", "version", "bytes")}
    assert dtypes == {"media_id": "string", "width": "Int64", "height": "Int64", "version": "Int64", "bytes": "Int64"}


def test_import_results_read_number_or_text_ids_and_sizes(canned: Any) -> None:
    images = [{"url": "https://images.example/a.jpg", "id": "n1"}, {"url": "https://images.example/b.jpg", "id": "t1"},
              {"url": "https://images.example/c.jpg", "id": 7}]
    job = canned.import_images(images, system_name=SYSTEM, progress=False)
    assert job.ids == ["42"]
    res = job.results(timeout=10)
    assert res["outcome"].tolist() == ["success", "success", "skipped"]
    assert res["media_id"].tolist() == ["123", "asze63i9", "4567"] and str(res["media_id"].dtype) == "string"
    assert res["width"].tolist() == [1600] * 3 and res["height"].tolist() == [900] * 3
    assert str(res["width"].dtype) == str(res["height"].dtype) == "Int64"
    assert res["job_id"].tolist() == ["42"] * 3
