"""The Livingdocs emulator over real loopback HTTP (urllib): Part 1 of the contract, §2 of the research."""

from __future__ import annotations

import gzip
import http.client
import http.server
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

import pytest

import toolkit.sandbox
from toolkit.sandbox.livingdocs import LivingdocsEmulator
from toolkit.sandbox.livingdocs_data import make_test_image


@pytest.fixture(scope="module")
def lsb() -> Iterator[Any]:
    with toolkit.sandbox.start(services=["livingdocs"], seed=11) as sandbox:
        yield sandbox


@pytest.fixture
def em(lsb: Any) -> LivingdocsEmulator:
    emulator = lsb.emulator("livingdocs")
    emulator.reset()
    emulator.job_seconds = 0.1
    emulator.daily_limit = None
    emulator.max_images_per_call = 1000
    emulator.webhook_delay = 0.0
    emulator.fetch_own_images_internally = True
    emulator.numeric_media_ids = False
    lsb.set_faults("livingdocs")
    return emulator


def call(em: LivingdocsEmulator, method: str, path: str, body: Any = None, token: str | None = "write",
         ) -> tuple[int, Any, dict[str, str]]:
    tokens = {"write": em.write_token, "read": em.read_token, "expired": em.expired_token}
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {tokens.get(token, token)}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json; charset=utf-8"
    req = urllib.request.Request(em.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def start_import(em: LivingdocsEmulator, images: list[dict[str, Any]], system: str = "archive",
                 prefix: str = "/api/v1", **extra: Any) -> str:
    status, body, _ = call(em, "POST", f"{prefix}/import/images", {"systemName": system, "images": images, **extra})
    assert status == 200, body
    assert set(body) == {"id"}
    return body["id"]


def wait_job(em: LivingdocsEmulator, job_id: str, prefix: str = "/api/v1") -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, body, _ = call(em, "GET", f"{prefix}/import/images/status?id={job_id}")
        assert status == 200, body
        if body["finished"]:
            return body
        time.sleep(0.05)
    raise AssertionError("the job did not finish")


def img(em: LivingdocsEmulator, name: str, ext_id: str | None = None, **meta: Any) -> dict[str, Any]:
    return {"url": em.image_url(name), "id": ext_id or name, "fileName": f"title {name}", "metadata": meta}


# -- auth ---------------------------------------------------------------------------------------------------
def test_tokens_and_scopes(em: LivingdocsEmulator) -> None:
    images = [img(em, "ok-1.png")]
    payload = {"systemName": "archive", "images": images}
    status, body, _ = call(em, "POST", "/api/v1/import/images", payload, token=None)
    assert status == 401 and body["error"] == "Unauthorized" and "invalid" in body["error_details"]["access_token"]
    status, body, _ = call(em, "POST", "/api/v1/import/images", payload, token="not-a-real-token")
    assert (status, body["status"]) == (401, 401) and "invalid" in body["error_details"]["access_token"]
    status, body, _ = call(em, "POST", "/api/v1/import/images", payload, token="expired")
    assert status == 401 and body["error_details"]["access_token"] == "The access token expired."
    status, body, _ = call(em, "POST", "/api/v1/import/images", payload, token="read")
    assert status == 403 and body == {"status": 403, "error": "Forbidden", "error_details": {
        "access_token": "The request requires higher privileges", "scope": "public-api:write"}}
    status, body, _ = call(em, "GET", "/api/v1/import/images/status?id=x", token="read")
    assert status == 403
    assert not em.jobs  # nothing was accepted
    status, body, _ = call(em, "GET", "/api/v1/mediaLibrary?externalId=x&systemName=archive", token="read")
    assert (status, body) == (200, [])  # a bare array up to 2025-11 (the SDK's getMedia: Media[])
    assert em.credentials() == {"base_url": em.base_url, "token": em.write_token}
    assert set(em.secrets()) == {em.write_token, em.read_token, em.expired_token}
    assert em.personal_data() == []


def test_unknown_route_and_removed_version(em: LivingdocsEmulator) -> None:
    status, body, _ = call(em, "GET", "/api/v1/foo")
    assert (status, body) == (404, {"status": 404, "error": "Not Found", "error_details": {"url": "/api/v1/foo"}})
    status, body, _ = call(em, "POST", "/api/2019-01/import/images", {"systemName": "a", "images": []})
    assert status == 410 and body["status"] == 410 and body["error"] == "Gone"
    status, body, _ = call(em, "GET", "/api/2019-01/mediaLibrary/abc")
    assert status == 410


# -- validation -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload, key", [
    ({"images": [{"url": "http://x/a.png", "id": "1"}]}, "systemName"),
    ({"systemName": "archive"}, "images"),
    ({"systemName": "archive", "images": [{"id": "1", "fileName": "a"}]}, "images.0.url"),
    ({"systemName": "archive", "images": [{"url": "http://x/a.png", "fileName": "a"}]}, "images.0.id"),
    ({"systemName": "archive", "images": [{"url": "data:image/png;base64,iVBORw0KGgo=", "id": "1"}]},
     "images.0.url"),
    ({"systemName": "archive", "images": [{"url": "ftp://example.org/a.png", "id": "1"}]}, "images.0.url"),
    ({"systemName": "archive", "context": {"blob": "x" * 8200}, "images": [{"url": "http://x/a.png", "id": "1"}]},
     "context"),
])
def test_validation_400(em: LivingdocsEmulator, payload: dict[str, Any], key: str) -> None:
    status, body, _ = call(em, "POST", "/api/v1/import/images", payload)
    assert status == 400, body
    assert body["status"] == 400 and body["error"] == "Bad Request"
    assert key in body["error_details"] and isinstance(body["error_details"][key], str)
    assert not em.jobs


def test_context_limit_counts_utf8_bytes_and_batch_cap(em: LivingdocsEmulator) -> None:
    one = [img(em, "ok-1.png")]
    # 4000 two-byte characters = 8000 bytes + the JSON around them: under the limit
    start_import(em, one, context={"k": "ø" * 4000})
    status, body, _ = call(em, "POST", "/api/v1/import/images",
                           {"systemName": "archive", "images": one, "context": {"k": "ø" * 4100}})
    assert status == 400 and "8192" in body["error_details"]["context"]
    em.max_images_per_call = 3
    status, body, _ = call(em, "POST", "/api/v1/import/images",
                           {"systemName": "archive", "images": em.sample_images(4)})
    assert status == 400 and "3" in body["error_details"]["images"]
    start_import(em, em.sample_images(3))


# -- jobs -------------------------------------------------------------------------------------------------------
def test_job_with_good_and_broken_images(em: LivingdocsEmulator) -> None:
    em.job_seconds = 0.4
    names = ["ok-1.png", "ok-2.png", "photo-1.jpg", "anim.gif", "logo.svg",
             "missing.jpg", "page.jpg", "old.bmp", "corrupt.png"]
    images = [img(em, n) for n in names]
    del images[0]["fileName"], images[1]["metadata"]  # tolerated, like the vendor's own examples
    job_id = start_import(em, images)
    status, body, _ = call(em, "GET", f"/api/v1/import/images/status?id={job_id}")
    assert body["finished"] is False and body["state"] == "started" and body["id"] == job_id
    time.strptime(body["startedAt"], "%Y-%m-%d %H:%M:%S")
    done = wait_job(em, job_id)
    assert done["state"] == "success" and done["id"] == job_id
    rows = {r["externalId"]: r for r in done["images"]}
    assert [r["externalId"] for r in done["images"]] == names
    for r in done["images"]:
        assert r["status"] == r["state"] and r["systemName"] == "archive"
    expected_mime = {"ok-1.png": "image/png", "ok-2.png": "image/png", "photo-1.jpg": "image/jpeg",
                     "anim.gif": "image/gif", "logo.svg": "image/svg+xml"}
    for name, mime in expected_mime.items():
        r = rows[name]
        assert r["status"] == "success" and "reason" not in r, r
        assert r["image"]["mimeType"] == mime and r["image"]["imageService"] == "imgix"
        assert r["image"]["originalUrl"] == em.image_url(name)
    assert (rows["ok-1.png"]["image"]["width"], rows["ok-1.png"]["image"]["height"]) == (48, 34)
    assert (rows["ok-2.png"]["image"]["width"], rows["ok-2.png"]["image"]["height"]) == (56, 38)
    assert (rows["logo.svg"]["image"]["width"], rows["logo.svg"]["image"]["height"]) == (120, 40)
    assert rows["ok-2.png"]["title"] == "title ok-2.png"
    reasons = {n: rows[n]["reason"] for n in ["missing.jpg", "page.jpg", "old.bmp", "corrupt.png"]}
    assert all(rows[n]["status"] == "failed" and "image" not in rows[n] for n in reasons)
    assert "404" in reasons["missing.jpg"]
    assert "not an image" in reasons["page.jpg"]
    assert "BMP" in reasons["old.bmp"]
    assert "corrupt" in reasons["corrupt.png"]
    assert set(em.media) == {("archive", n) for n in expected_mime}
    assert em.media[("archive", "ok-2.png")]["metadata"] == {}
    assert em.media[("archive", "ok-1.png")]["mediaType"] == "image"
    job = em.jobs[job_id]
    assert job["created_at"] <= job["started_at"] < job["finished_at"]
    # the stored picture is served at the entry's url
    with urllib.request.urlopen(rows["photo-1.jpg"]["image"]["url"], timeout=5) as resp:
        assert resp.read() == make_test_image("photo-1.jpg")[0]


def test_reimport_skips_and_changes_update(em: LivingdocsEmulator) -> None:
    first = [img(em, "ok-1.png", "a", caption="x"), img(em, "ok-2.png", "b", caption="y")]
    wait_job(em, start_import(em, first))
    media_id = em.media[("archive", "a")]["id"]
    again = wait_job(em, start_import(em, first))
    assert [(r["status"], r["state"], r["reason"]) for r in again["images"]] == [("skipped", "skipped",
                                                                                   "already exists")] * 2
    assert again["images"][0]["image"]["mediaId"] == media_id
    assert em.import_counts[("archive", "a")] == 1
    changed = [img(em, "ok-1.png", "a", caption="new caption"), img(em, "ok-3.png", "b", caption="y")]
    third = wait_job(em, start_import(em, changed))
    assert [r["status"] for r in third["images"]] == ["success", "success"]
    entry = em.media[("archive", "a")]
    assert entry["id"] == media_id and entry["version"] == 2 and entry["metadata"] == {"caption": "new caption"}
    assert em.media[("archive", "b")]["asset"]["width"] == 64  # ok-3.png
    assert em.import_counts == {("archive", "a"): 2, ("archive", "b"): 2}
    # another system is another entry
    wait_job(em, start_import(em, first, system="other"))
    assert len(em.media) == 4


def test_proxy_prefix_and_versions(em: LivingdocsEmulator) -> None:
    job_id = start_import(em, [img(em, "ok-4.png", "p1")], prefix="/proxy/api/api/2026-01")
    done = wait_job(em, job_id, prefix="/proxy/api/api/v1")
    media_id = done["images"][0]["image"]["mediaId"]
    q = "externalId=p1&systemName=archive"
    for version, key in [("v1", None), ("beta", None), ("2025-03", None), ("2025-11", None),
                         ("2026-01", "results"), ("2026-11", "results")]:
        status, body, _ = call(em, "GET", f"/api/{version}/mediaLibrary?{q}", token="read")
        if key is None:  # up to 2025-11 the list itself (what the SDK's getMedia returns as Media[])
            assert status == 200 and isinstance(body, list), (version, body)
        else:
            assert status == 200 and list(body) == [key], (version, body)
            body = body[key]
        assert [e["id"] for e in body] == [media_id]
    status, body, _ = call(em, "GET", f"/proxy/api/api/2026-01/mediaLibrary?ids={media_id},nope")
    assert [e["externalId"] for e in body["results"]] == ["p1"]
    status, entry, _ = call(em, "GET", f"/api/v1/mediaLibrary/{media_id}", token="read")
    assert status == 200
    assert {"id", "version", "mediaType", "asset", "metadata", "createdAt", "updatedAt", "systemName",
            "externalId", "title"} <= set(entry)
    assert {"url", "mimeType", "width", "height", "size"} <= set(entry["asset"])
    status, body, _ = call(em, "GET", "/api/v1/mediaLibrary/nope", token="read")
    assert status == 404 and "MediaLibrary Entry does not exist (id: 'nope')" in json.dumps(body)


# -- what @livingdocs/node-sdk sends (client/http-client.js), byte for byte -------------------------------------
SDK_USER_AGENT = "livingdocs-node-sdk/2.0.0 Node.js/18.19.0"


def sdk_get(em: LivingdocsEmulator, path: str) -> tuple[int, Any]:
    """``GET path`` as the SDK sends it: node-fetch with only the SDK's ``User-Agent`` and ``Authorization``
    (node-fetch adds ``Accept: */*``, gzip and keep-alive; no ``Accept: application/json``, no version header).
    ``path`` is given already encoded, as ``qs.stringify`` writes it (brackets as ``%5B``/``%5D``)."""
    parts = urllib.parse.urlsplit(em.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in [("Accept", "*/*"), ("User-Agent", SDK_USER_AGENT),
                            ("Authorization", f"Bearer {em.read_token}"), ("Accept-Encoding", "gzip,deflate"),
                            ("Connection", "keep-alive"), ("Host", parts.netloc)]:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        data = resp.read()
        if resp.getheader("content-encoding") == "gzip":
            data = gzip.decompress(data)
        return resp.status, json.loads(data)
    finally:
        conn.close()


def test_sdk_get_media_by_ids_in_every_encoding(em: LivingdocsEmulator) -> None:
    """getMedia({ids: [a, b]}) sends qs indices (``ids%5B0%5D=a&ids%5B1%5D=b``); the documented comma list,
    qs' other array formats and a null option (``id=``) are read alike. Before: 400 "ids or externalId is
    required" for the bracket forms, and the list came in an envelope the SDK does not expect."""
    done = wait_job(em, start_import(em, [img(em, "ok-1.png", "s1"), img(em, "ok-2.png", "s2")]))
    a, b = [r["image"]["mediaId"] for r in done["images"]]
    for query in [f"ids%5B0%5D={a}&ids%5B1%5D={b}",         # qs default (arrayFormat: indices): the SDK
                  f"ids%5B1%5D={b}&ids%5B0%5D={a}",         # indices out of order: index order wins
                  f"id=&ids%5B0%5D={a}&ids%5B1%5D={b}",     # getMedia({id: null, ids})
                  f"ids%5B%5D={a}&ids%5B%5D={b}",           # qs arrayFormat: brackets
                  f"ids={a}&ids={b}",                       # qs arrayFormat: repeat
                  f"ids={a}%2C{b}",                         # qs arrayFormat: comma / ids given as text
                  f"ids={a},{b}"]:                          # the documented form (our research)
        status, body = sdk_get(em, f"/api/v1/mediaLibrary?{query}")
        assert status == 200 and isinstance(body, list), (query, body)
        assert [e["id"] for e in body] == [a, b], query
    status, body = sdk_get(em, f"/api/v1/mediaLibrary?ids%5B0%5D=nope&ids%5B1%5D={b}")
    assert (status, [e["externalId"] for e in body]) == (200, ["s2"])
    status, body = sdk_get(em, f"/api/2026-01/mediaLibrary?ids%5B0%5D={a}")
    assert status == 200 and [e["id"] for e in body["results"]] == [a]
    # getMedia({}) and getMedia({ids: []}) (qs leaves an empty array out): the SDK reads the error body as JSON
    for path in ("/api/v1/mediaLibrary", "/api/v1/mediaLibrary?id=&externalId="):
        status, body = sdk_get(em, path)
        assert status == 400 and body["status"] == 400 and body["error"] == "Bad Request"


def test_sdk_get_media_by_external_id_and_by_id(em: LivingdocsEmulator) -> None:
    """getMedia({externalId, systemName}) and getMedia({id}) as the SDK sends them; a miss is a JSON body
    with ``status`` and ``error`` (what the SDK's own test/client/client.test.js reads)."""
    done = wait_job(em, start_import(em, [img(em, "ok-3.png", "ex 1"), img(em, "ok-4.png", "ex-2")]))
    first, second = [r["image"]["mediaId"] for r in done["images"]]
    status, body = sdk_get(em, "/api/v1/mediaLibrary?externalId=ex%201&systemName=archive")
    assert status == 200 and [e["id"] for e in body] == [first] and body[0]["externalId"] == "ex 1"
    status, body = sdk_get(em, "/api/v1/mediaLibrary?externalId%5B0%5D=ex-2&externalId%5B1%5D=ex%201")
    assert status == 200 and [e["id"] for e in body] == [second, first]
    status, body = sdk_get(em, "/api/v1/mediaLibrary?externalId=ex-2&systemName=other")
    assert (status, body) == (200, [])
    status, entry = sdk_get(em, f"/api/v1/mediaLibrary/{second}")
    assert status == 200 and entry["id"] == second and entry["externalId"] == "ex-2"
    status, body = sdk_get(em, "/api/v1/mediaLibrary/nope")
    assert status == 404 and (body["status"], body["error"]) == (404, "Not Found")


def test_numeric_media_ids(em: LivingdocsEmulator) -> None:
    """``numeric_media_ids``: entries get whole-number ids, served as JSON numbers (the SDK's README types a
    media id as ``number``), found by every ids encoding, by path and under ``/media/``."""
    em.numeric_media_ids = True
    try:
        done = wait_job(em, start_import(em, [img(em, "ok-5.png", "n1"), img(em, "ok-6.png", "n2")]))
    finally:
        em.numeric_media_ids = False
    ids = [r["image"]["mediaId"] for r in done["images"]]
    assert ids == [1, 2] and em.entry("archive", "n2")["id"] == 2
    for query in ("ids%5B0%5D=1&ids%5B1%5D=2", "ids=1,2", "ids%5B%5D=1&ids%5B%5D=2", "ids=1&ids=2"):
        status, body = sdk_get(em, f"/api/v1/mediaLibrary?{query}")
        assert (status, [e["id"] for e in body]) == (200, [1, 2]), query
    status, entry = sdk_get(em, "/api/v1/mediaLibrary/2")
    assert (status, entry["id"], entry["externalId"]) == (200, 2, "n2")
    with urllib.request.urlopen(entry["asset"]["url"], timeout=10) as resp:
        assert resp.read() == make_test_image("ok-6.png")[0]
    # a text id imported after stays text; the two kinds live side by side
    done = wait_job(em, start_import(em, [img(em, "ok-7.png", "t1")]))
    assert isinstance(done["images"][0]["image"]["mediaId"], str)


def test_unknown_job_is_404(em: LivingdocsEmulator) -> None:
    status, body, _ = call(em, "GET", "/api/v1/import/images/status?id=zzzzzzz")
    assert status == 404 and body["status"] == 404 and body["error"] == "Not Found"


def test_failed_job_stores_nothing(em: LivingdocsEmulator) -> None:
    em.fail_next_jobs = 1
    failed = wait_job(em, start_import(em, [img(em, "ok-1.png", "f1")]))
    assert failed == {"finished": True, "state": "failed", "id": failed["id"]}
    assert not em.media and not em.import_counts
    ok = wait_job(em, start_import(em, [img(em, "ok-1.png", "f1")]))
    assert ok["state"] == "success" and ("archive", "f1") in em.media


def test_jobs_run_concurrently(em: LivingdocsEmulator) -> None:
    em.job_seconds = 0.5
    ids = [start_import(em, em.sample_images(20, prefix=f"c{k}")) for k in range(4)]
    for job_id in ids:
        wait_job(em, job_id)
    jobs = [em.jobs[j] for j in ids]
    # every job was still running when the last one started: they overlapped instead of queueing
    assert max(j["started_at"] for j in jobs) < min(j["finished_at"] for j in jobs)
    assert len(em.media) == 80


def test_usage_limit_is_429_with_array_body(em: LivingdocsEmulator) -> None:
    em.daily_limit = 5
    start_import(em, em.sample_images(4))
    status, body, headers = call(em, "POST", "/api/v1/import/images",
                                 {"systemName": "archive", "images": em.sample_images(2, prefix="more")})
    assert status == 429 and isinstance(body, list) and len(body) == 1
    assert body[0]["status"] == 429 and body[0]["error"] == "Usage Limit Exceeded"
    assert "more than 5 per day" in body[0]["error_details"]["message"]
    assert "retry-after" not in {k.lower() for k in headers}
    start_import(em, em.sample_images(1, prefix="last"))  # still within the quota


# -- over the network: webhooks, images on other hosts --------------------------------------------------------
class _Receiver(http.server.BaseHTTPRequestHandler):
    posts: list[dict[str, Any]] = []
    png = make_test_image("ok-5.png")[0]

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length", 0))
        type(self).posts.append({"path": self.path, "headers": dict(self.headers),
                                 "body": json.loads(self.rfile.read(length))})
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/pic.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(self.png)))
            self.end_headers()
            self.wfile.write(self.png)
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.posts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _wait_posts(n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while len(_Receiver.posts) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return _Receiver.posts


def test_webhook_delivered(em: LivingdocsEmulator, receiver: str) -> None:
    images = [img(em, "ok-1.png", "w1"), img(em, "old.bmp", "w2")]
    job_id = start_import(em, images, webhook=f"{receiver}/hook", context={"batch": 7, "name": "Ærø"})
    posts = _wait_posts(1)
    assert len(posts) == 1 and posts[0]["path"] == "/hook"
    assert posts[0]["body"] == {"source": "livingdocs-image-import", "id": job_id, "state": "success",
                                "overview": {"total": 2, "details": {"success": 1, "skipped": 0, "failed": 1}},
                                "context": {"batch": 7, "name": "Ærø"}}
    assert "authorization" not in {k.lower() for k in posts[0]["headers"]}
    # the emulator records the delivery once the receiver's answer is back, a moment after the receiver saw it
    deadline = time.monotonic() + 10
    while (not em.webhooks_sent or em.webhooks_sent[0]["status"] is None) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert em.webhooks_sent[0]["status"] == 204 and em.webhooks_sent[0]["job_id"] == job_id
    em.fail_next_jobs = 1
    failed_id = start_import(em, images, webhook=f"{receiver}/hook")
    posts = _wait_posts(2)
    assert posts[1]["body"]["id"] == failed_id and posts[1]["body"]["state"] == "failed"


def test_images_fetched_over_http_from_any_loopback_host(em: LivingdocsEmulator, receiver: str) -> None:
    em.fetch_own_images_internally = False  # fetch its own test images over HTTP too
    images = [{"url": f"{receiver}/pic.png", "id": "h1", "fileName": "a", "metadata": {}},
              {"url": f"{receiver}/gone.png", "id": "h2", "fileName": "b", "metadata": {}},
              img(em, "photo-2.jpg", "h3"), img(em, "missing.jpg", "h4"), img(em, "page.jpg", "h5")]
    done = wait_job(em, start_import(em, images))
    got = {r["externalId"]: r for r in done["images"]}
    assert got["h1"]["status"] == "success" and got["h1"]["image"]["width"] == 80
    assert got["h2"]["status"] == "failed" and "404" in got["h2"]["reason"]
    assert got["h3"]["status"] == "success" and got["h3"]["image"]["mimeType"] == "image/jpeg"
    assert got["h4"]["status"] == "failed" and "404" in got["h4"]["reason"]
    assert got["h5"]["status"] == "failed" and "not an image" in got["h5"]["reason"]
    # a second job with the same URLs is answered from the cache
    wait_job(em, start_import(em, images, system="again"))
    assert em.fetch_counts[f"{receiver}/pic.png"] == 1


def test_job_survives_a_dropped_answer(lsb: Any, em: LivingdocsEmulator) -> None:
    lsb.set_faults("livingdocs", drop=1.0)
    for k in range(8):
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
            call(em, "POST", "/api/v1/import/images",
                 {"systemName": "archive", "images": [img(em, "ok-1.png", f"d{k}")]})
    lsb.set_faults("livingdocs")
    assert em.jobs, "no request was processed before its answer was lost"
    for job_id in list(em.jobs):
        assert wait_job(em, job_id)["state"] == "success"
    assert len(em.media) == len(em.jobs)
