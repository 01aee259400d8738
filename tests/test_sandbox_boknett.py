"""The Boknett emulator over loopback with urllib: login, Date checks, cursor paging, downloads, expiry."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formatdate, parsedate_to_datetime
from typing import Any, Iterator

import pytest
from lxml import etree

import toolkit
from toolkit.sandbox import Sandbox
from toolkit.sandbox.boknett import BoknettEmulator

pytestmark = pytest.mark.integration
#: a paging loop that has not ended after this many pages never will: the test fails instead of waiting
MAX_PAGES = 200


@pytest.fixture(scope="module")
def bsb() -> Iterator[Sandbox]:
    with toolkit.sandbox.start(services=["boknett"], seed=5) as sandbox:
        yield sandbox


@pytest.fixture
def emu(bsb: Sandbox) -> Iterator[BoknettEmulator]:
    emulator = bsb.emulator("boknett")
    assert isinstance(emulator, BoknettEmulator)
    emulator.object_count = 300
    with emulator.restored():
        yield emulator
    emulator.object_count = 300


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        values = self.headers.get_all(name) or []
        return values[-1] if values else None  # the emulator's own value comes last

    def error_code(self) -> str:
        return etree.fromstring(self.body).findtext("error/code")

    def error_message(self) -> str:
        return etree.fromstring(self.body).findtext("error/message")


def call(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
         ) -> Answer:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.headers, exc.read())


def login(emu: BoknettEmulator, creds: dict[str, Any] | None = None) -> str:
    creds = creds or emu.credentials()
    form = urllib.parse.urlencode({"username": creds["username"], "password": creds["password"]}).encode()
    answer = call(creds["login_url"] + "/v1/tickets", method="POST", data=form,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 201, answer.body
    return answer.header("Boknett-TGT")


def signed(tgt: str, offset: float = 0.0, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Boknett {tgt}", "Date": formatdate(time.time() + offset, usegmt=True), **extra}


def report(emu: BoknettEmulator, tgt: str, query: str, **kw: Any) -> Answer:
    return call(f"{emu.base_url}/metadata/export/object?{query}", headers=signed(tgt, **kw))


def after_days(days: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - days * 86400))


def isbns(body: bytes) -> list[tuple[str, str]]:
    root = etree.fromstring(body)
    return [(o.findtext("ISBN13"), o.findtext("REFERENCE")) for o in root.iter("OBJECT")]


def pull(emu: BoknettEmulator, tgt: str, query: str) -> tuple[list[Any], list[Answer]]:
    """Follow Link headers from ``query``; returns the objects and every page's answer."""
    got, pages = [], []
    url = f"{emu.base_url}/metadata/export/object?{query}"
    for _ in range(MAX_PAGES):
        answer = call(url, headers=signed(tgt))
        assert answer.status == 200, answer.body
        pages.append(answer)
        got.extend(isbns(answer.body))
        link = answer.header("Link")
        if not link:
            return got, pages
        url = link[link.index("<") + 1:link.index(">")]
    raise AssertionError(f"still a Link header after {MAX_PAGES} pages: the emulator never ends the paging")


# -- login ---------------------------------------------------------------------------------------------------
def test_login_gives_a_ticket_with_a_form_encoded_password(emu: BoknettEmulator) -> None:
    creds = emu.credentials()
    assert creds["login_url"] == creds["base_url"] == emu.base_url
    assert all(c in creds["password"] for c in "&=%+ ")
    before = emu.logins
    form = urllib.parse.urlencode({"username": creds["username"], "password": creds["password"]}).encode()
    answer = call(emu.base_url + "/v1/tickets", method="POST", data=form)
    assert answer.status == 201 and answer.body == b""
    tgt = answer.header("Boknett-TGT")
    assert tgt.startswith("TGT-") and tgt.endswith("-login.boknett.no")
    assert answer.header("Location") == f"{emu.base_url}/v1/tickets/{tgt}"
    assert emu.logins == before + 1 and tgt in emu.secrets() and creds["password"] in emu.secrets()
    # the password sent without form encoding is wrong
    raw = f"username={creds['username']}&password={creds['password']}".encode()
    wrong = call(emu.base_url + "/v1/tickets", method="POST", data=raw)
    assert wrong.status == 400 and wrong.error_code() == "INVALID_CREDENTIALS"


def test_wrong_password_is_400_error_xml_as_bokbasen_documents_it(emu: BoknettEmulator) -> None:
    """Bokbasen's login lists 201, 400 and 405; php-sdk-auth's tests/Unit/LoginTest.php mocks a failed login
    as 400. The first contract's 401 stays available as a knob (the client reads both as refused)."""
    form = urllib.parse.urlencode({"username": emu.username, "password": "wrong"}).encode()
    answer = call(emu.base_url + "/v1/tickets", method="POST", data=form)
    assert answer.status == 400 and answer.header("Boknett-TGT") is None
    assert answer.error_code() == "INVALID_CREDENTIALS"
    unknown = urllib.parse.urlencode({"username": "nobody", "password": emu.password}).encode()
    assert call(emu.base_url + "/v1/tickets", method="POST", data=unknown).error_code() == "INVALID_CREDENTIALS"
    emu.wrong_password_status = 401
    answer = call(emu.base_url + "/v1/tickets", method="POST", data=form)
    assert answer.status == 401 and answer.error_code() == "INVALID_CREDENTIALS"


def test_logout_and_unknown_ticket(emu: BoknettEmulator) -> None:
    tgt = login(emu)
    assert report(emu, tgt, "after=" + after_days(1)).status == 200
    assert call(f"{emu.base_url}/v1/tickets/{tgt}", method="DELETE").status == 200
    answer = report(emu, tgt, "after=" + after_days(1))
    assert answer.status == 401 and answer.error_code() == "INVALID_TICKET"
    assert call(f"{emu.base_url}/metadata/export/object?after={after_days(1)}").status == 401


def test_ticket_expires_after_its_lifetime(emu: BoknettEmulator) -> None:
    emu.tgt_lifetime = 1.0
    tgt = login(emu)
    assert report(emu, tgt, "after=" + after_days(1)).status == 200
    time.sleep(1.3)
    answer = report(emu, tgt, "after=" + after_days(1))
    assert answer.status == 401 and answer.error_code() == "TICKET_EXPIRED"
    assert report(emu, login(emu), "after=" + after_days(1)).status == 200


# -- Date ----------------------------------------------------------------------------------------------------
def test_date_header_rules(emu: BoknettEmulator) -> None:
    tgt = login(emu)
    url = f"{emu.base_url}/metadata/export/object?after={after_days(1)}"
    missing = call(url, headers={"Authorization": f"Boknett {tgt}"})
    assert missing.status == 400 and missing.error_code() == "MISSING_DATE"
    invalid = call(url, headers={"Authorization": f"Boknett {tgt}", "Date": "2024-01-01T10:00:00Z"})
    assert invalid.status == 400 and invalid.error_code() == "INVALID_DATE"
    skewed = report(emu, tgt, f"after={after_days(1)}", offset=-16 * 60)
    assert skewed.status == 400 and skewed.error_code() == "DATE_SKEW"
    assert "server time" in skewed.error_message() and "GMT" in skewed.error_message()
    assert {skewed.error_code(), missing.error_code(), invalid.error_code()} == {"DATE_SKEW", "MISSING_DATE",
                                                                                   "INVALID_DATE"}
    utc = formatdate(time.time() - 14 * 60, usegmt=True).replace("GMT", "UTC")
    assert call(url, headers={"Authorization": f"Boknett {tgt}", "Date": utc}).status == 200


def test_clock_offset_shows_in_the_response_date(emu: BoknettEmulator) -> None:
    tgt = login(emu)
    emu.clock_offset = 3600
    answer = report(emu, tgt, f"after={after_days(1)}")
    assert answer.status == 400 and answer.error_code() == "DATE_SKEW"
    server = parsedate_to_datetime(answer.header("Date")).timestamp()
    assert abs(server - (time.time() + 3600)) < 5
    offset = server - time.time()
    assert report(emu, tgt, f"after={after_days(1)}", offset=offset).status == 200


# -- report paging -------------------------------------------------------------------------------------------
def test_paging_gets_every_change_exactly_once(emu: BoknettEmulator) -> None:
    tgt = login(emu)
    got, pages = pull(emu, tgt, f"after={after_days(100)}&pagesize=70")
    assert len(pages) == 5 and len(got) == 300
    refs = [ref for _, ref in got]
    assert len(set(refs)) == 300  # nothing twice
    assert [isbn for isbn, _ in got] == [r["isbn13"] for r in emu.records()]
    assert all(p.header("Next") for p in pages)
    assert all(p.header("Link") and 'rel="next"' in p.header("Link") and "pagesize=70" in p.header("Link")
               for p in pages[:-1])
    assert pages[-1].header("Link") is None
    assert all(p.headers.get_content_type() == "application/xml" for p in pages)
    # the last Next: nothing new yet → an empty page that keeps the cursor
    empty = report(emu, tgt, "next=" + pages[-1].header("Next"))
    assert empty.status == 200 and etree.fromstring(empty.body).tag == "OBJECTS" and not isbns(empty.body)
    assert b"<OBJECTS/>" in empty.body and empty.header("Next") and empty.header("Link") is None
    # new changes: the next pull gets exactly those
    start, stop = emu.add_objects(12)
    assert (start, stop) == (300, 312) and emu.object_count == 312
    new, _ = pull(emu, tgt, "next=" + empty.header("Next"))
    assert [isbn for isbn, _ in new] == [r["isbn13"] for r in emu.records(300, 312)]


def test_after_selects_recent_changes(emu: BoknettEmulator) -> None:
    tgt = login(emu)
    everything, _ = pull(emu, tgt, f"after={after_days(100)}")
    recent, _ = pull(emu, tgt, f"after={after_days(45)}")
    assert 100 < len(recent) < 200 and [i for i, _ in recent] == [i for i, _ in everything[-len(recent):]]
    future = report(emu, tgt, "after=" + time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 86400)))
    assert future.status == 200 and not isbns(future.body) and future.header("Next")


def test_report_values_are_text_with_leading_zeros(emu: BoknettEmulator) -> None:
    tgt = login(emu)
    root = etree.fromstring(report(emu, tgt, f"after={after_days(100)}").body)
    objects = root.findall("OBJECT")
    codes = [o.findtext("VAREEIER_KODE") for o in objects]
    assert "0008" in codes and all(len(c) == 4 for c in codes)
    assert any(o.findtext("FSSN").startswith("0") for o in objects)
    isbn_list = [o.findtext("ISBN13") for o in objects]
    for isbn in isbn_list:
        assert isbn[:3] in ("978", "979") and len(isbn) == 13
        assert sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(isbn)) % 10 == 0
    assert len(set(isbn_list)) < len(isbn_list)  # historical objects: some ISBNs come again
    assert {o.findtext("TYPE") for o in objects} == {"ly", "ol", "os", "org"}


@pytest.mark.parametrize("query,code", [
    ("pagesize=10", "INVALID_PARAMETERS"),
    ("after={recent}&next=abc", "INVALID_PARAMETERS"),
    ("after={recent}&pagesize=5001", "INVALID_PAGESIZE"),
    ("after={old}", "AFTER_TOO_OLD"),
    ("after=2024-01-01", "INVALID_AFTER"),
    ("next=not-a-cursor", "INVALID_CURSOR"),
    ("next={old_cursor}", "CURSOR_EXPIRED"),
])
def test_refused_queries_are_400(emu: BoknettEmulator, query: str, code: str) -> None:
    tgt = login(emu)
    old_cursor = emu.cursor(10, issued=time.time() - 181 * 86400)
    answer = report(emu, tgt, query.format(recent=after_days(1), old=after_days(181), old_cursor=old_cursor))
    assert answer.status == 400 and answer.error_code() == code
    assert report(emu, tgt, f"after={after_days(179)}&pagesize=5000").status == 200


def test_a_page_of_5000_is_served(emu: BoknettEmulator) -> None:
    emu.object_count = 2_000_000  # lazily generated: nothing is stored per object
    tgt = login(emu)
    answer = report(emu, tgt, f"after={after_days(100)}&pagesize=5000")
    assert answer.status == 200 and len(isbns(answer.body)) == 5000 and answer.header("Link")
    last = report(emu, tgt, "next=" + emu.cursor(2_000_000 - 3))
    assert len(isbns(last.body)) == 3 and last.header("Link") is None


# -- downloads -----------------------------------------------------------------------------------------------
def download(url: str, tgt: str, accept: str | None = "application/octet-stream") -> Answer:
    headers = signed(tgt)
    if accept is not None:
        headers["Accept"] = accept
    return call(url, headers=headers)


def test_download_gives_the_file_with_its_name(emu: BoknettEmulator) -> None:
    from PIL import Image
    import io

    tgt = login(emu)
    objects = isbns(report(emu, tgt, f"after={after_days(100)}&pagesize=40").body)
    kinds = etree.fromstring(report(emu, tgt, f"after={after_days(100)}&pagesize=40").body).findall("OBJECT/TYPE")
    seen = {}
    for (isbn, ref), kind in zip(objects, (k.text for k in kinds)):
        if kind in seen:
            continue
        answer = download(ref, tgt)
        assert answer.status == 200
        disposition = answer.header("Content-Disposition")
        ext = "mp3" if kind == "ly" else ("png" if disposition.endswith('.png"') else "jpg")
        assert disposition == f'attachment; filename="{isbn}_{kind}.{ext}"'
        if kind == "ly":
            assert answer.body.startswith(b"ID3")
        else:
            with Image.open(io.BytesIO(answer.body)) as img:
                assert img.format == ("PNG" if ext == "png" else "JPEG")
                if kind == "ol":
                    assert img.width == 120
                if kind == "os":
                    assert img.height == 450
        seen[kind] = answer.body
    assert set(seen) == {"ly", "ol", "os", "org"}
    assert emu.download_counts[urllib.parse.unquote(objects[0][1].split("id=")[1])] >= 1


def test_download_refusals(emu: BoknettEmulator) -> None:
    tgt = login(emu)
    ref = emu.reference(5)
    assert download(ref, tgt, accept=None).status == 200  # no Accept means anything (the SDK sends none)
    refused = download(ref, tgt, accept="image/jpeg")
    assert refused.status == 406 and refused.error_code() == "NOT_ACCEPTABLE"
    assert "application/octet-stream" in refused.error_message()
    other = login(emu, emu.second_user_credentials())
    theirs = isbns(report(emu, other, f"after={after_days(100)}&pagesize=3").body)[0][1]
    assert download(theirs, other).status == 200
    forbidden = download(theirs, tgt)
    assert forbidden.status == 403 and forbidden.error_code() == "FORBIDDEN"
    assert download(emu.base_url + "/metadata/export/object/download?id=AAAA", tgt).status == 404
    assert download(emu.reference(10_000), tgt).status == 404  # beyond the report
    assert download(ref, tgt, ).status == 200
    emu.download_lifetime = 1.0
    fresh = emu.reference(6)
    time.sleep(1.2)
    gone = download(fresh, tgt)
    assert gone.status == 410 and gone.error_code() == "GONE" and "report again" in gone.error_message()
    assert download(ref.replace("download?id=", "download?id=x"), tgt).status == 404


def test_hostile_names_big_and_cut_downloads(emu: BoknettEmulator) -> None:
    tgt = login(emu)
    emu.hostile_names = True
    names = set()
    for i in range(3, 7 * 10, 7):
        answer = download(emu.reference(i), tgt)
        assert answer.status == 200
        names.add(answer.header("Content-Disposition"))
    assert 'attachment; filename="../../evil.jpg"' in names and 'attachment; filename="/etc/passwd"' in names
    assert any("%00" in n for n in names) and any(len(n) > 300 for n in names)
    emu.big_object_bytes = 3 * 1024 * 1024 + 17
    big = download(emu.big_object_reference(), tgt)
    assert big.status == 200 and len(big.body) == 3 * 1024 * 1024 + 17
    emu.cut_download_after = 1000
    with pytest.raises(Exception):  # the connection closes after 1,000 of the announced bytes
        download(emu.big_object_reference(), tgt)
    emu.cut_download_after = None
    assert download(emu.reference(1), tgt).status == 200  # the service serves on


@pytest.mark.parametrize("accept,status", [
    (None, 200),
    ("*/*", 200),
    ("application/*", 200),
    ("application/octet-stream", 200),
    ("APPLICATION/Octet-Stream", 200),
    ("application/octet-stream;q=0.5", 200),
    ("image/jpeg, application/*;q=0.2", 200),
    ("text/html;q=0.9, */*;q=0.1", 200),
    ("application/octet-stream, */*;q=0", 200),
    ("image/jpeg", 406),
    ("text/html, image/*", 406),
    ("application/json", 406),
    ("application/octet-stream;q=0", 406),
    ("*/*;q=0", 406),
    ("application/octet-stream;q=0, */*", 406),
    ("application/*;q=0, */*;q=1", 406),
])
def test_download_content_negotiation_follows_http(emu: BoknettEmulator, accept: str | None, status: int) -> None:
    """RFC 9110 §12.5.1: no Accept means anything, */* and application/* include the file's type, and the most
    specific range decides; only an Accept that excludes application/octet-stream is 406."""
    tgt = login(emu)
    answer = download(emu.reference(7), tgt, accept=accept)
    assert answer.status == status, (accept, answer.body[:200])
    if status == 200:
        assert answer.body == emu.body(7)
        assert answer.header("Content-Type") == "application/octet-stream"
    else:
        assert answer.error_code() == "NOT_ACCEPTABLE"


@pytest.mark.parametrize("accept", [None, "", " ", "garbage", "*/*", "application/*;q=oops"])
def test_accept_without_a_readable_exclusion_allows_the_file(accept: str | None) -> None:
    from toolkit.sandbox.boknett import acceptable

    assert acceptable(accept, "application/octet-stream")
    assert not acceptable("image/jpeg", "application/octet-stream")
    assert not acceptable("application/octet-stream;q=0.000", "application/octet-stream")


# -- exactly what Bokbasen's PHP SDK sends ----------------------------------------------------------------------
# php-sdk-auth 2.x src/Auth/Login.php: the login is POST {url} with the body http_build_query(username,
# password) and no headers of its own (Guzzle, the SDK's usual client, adds no Content-Type to a raw body);
# every call carries Authorization "Boknett {TGT}" and Date gmdate('D, d M Y H:i:s e') ("… UTC").
# php-sdk-met-api src/Export/ExportBase.php + Object.php (through php-api-client 1.x Client::get(url, null) and
# executeHttpRequest('GET', [], null, REFERENCE)): the report is GET …/metadata/export/object?
# subscription=extended&pagesize=N&after=YmdHis | next=<Next>, paged while a page has an <OBJECT>; a download
# is a GET of the REFERENCE with the auth headers only — no Accept.
SDK_AGENT = "GuzzleHttp/6.5.5 curl/7.68.0 PHP/7.4.3"


def sdk_date() -> str:
    return formatdate(time.time(), usegmt=True).replace(" GMT", " UTC")


def raw(emu: BoknettEmulator, method: str, target: str, headers: dict[str, str], body: bytes | None = None
        ) -> tuple[Answer, Any]:
    """One request over loopback with exactly ``headers`` (plus Host and, with a body, Content-Length), as
    http.client sends it; returns the answer and what the emulator recorded."""
    import http.client

    parts = urllib.parse.urlsplit(emu.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        answer = Answer(response.status, response.headers, response.read())
    finally:
        conn.close()
    return answer, emu.requests[-1]


def sdk_login(emu: BoknettEmulator, username: str, password: str) -> tuple[Answer, Any]:
    body = urllib.parse.urlencode({"username": username, "password": password}).encode()  # http_build_query
    return raw(emu, "POST", "/v1/tickets", {"User-Agent": SDK_AGENT}, body)


def sdk_get(emu: BoknettEmulator, target: str, tgt: str) -> tuple[Answer, Any]:
    return raw(emu, "GET", target, {"User-Agent": SDK_AGENT, "Authorization": f"Boknett {tgt}",
                                    "Date": sdk_date()})


def test_sdk_login_without_content_type(emu: BoknettEmulator) -> None:
    logins, failed = emu.logins, emu.failed_logins
    answer, seen = sdk_login(emu, emu.username, emu.password)
    assert "content-type" not in seen.headers and "accept" not in seen.headers
    assert answer.status == 201, answer.body
    tgt = answer.header("Boknett-TGT")
    assert tgt in emu.issued_tgts and emu.logins == logins + 1
    assert report(emu, tgt, f"after={after_days(1)}").status == 200
    # a wrong password: what the SDK gets and turns into BokbasenAuthException("Ticket not created. HTTP: 400 …")
    wrong, _ = sdk_login(emu, emu.username, emu.password + "x")
    assert wrong.status == 400 and wrong.header("Boknett-TGT") is None
    assert wrong.error_code() == "INVALID_CREDENTIALS"
    # a field truly missing is still MISSING_CREDENTIALS, with and without a Content-Type
    for body in (b"", b"username=" + urllib.parse.quote_plus(emu.username).encode(), b"password=x",
                 b"username=&password=x"):
        missing, _ = raw(emu, "POST", "/v1/tickets", {"User-Agent": SDK_AGENT}, body)
        assert missing.status == 400 and missing.error_code() == "MISSING_CREDENTIALS", body
        typed, _ = raw(emu, "POST", "/v1/tickets", {"Content-Type": "application/x-www-form-urlencoded"}, body)
        assert typed.status == 400 and typed.error_code() == "MISSING_CREDENTIALS", body
    assert emu.failed_logins == failed + 9 and emu.logins == logins + 1


def test_sdk_report_paging_until_an_empty_page_and_cursor_continuity(emu: BoknettEmulator) -> None:
    tgt = sdk_login(emu, emu.username, emu.password)[0].header("Boknett-TGT")

    def download_after(query: str) -> tuple[list[tuple[str, str]], str, int, list[Any]]:
        """The SDK's Object::downloadAfter/downloadNext loop: page while a page has an <OBJECT>."""
        got, seen = [], []
        answer, rec = sdk_get(emu, f"/metadata/export/object?{query}", tgt)
        pages = 1
        while pages <= MAX_PAGES:
            assert answer.status == 200, answer.body
            seen.append(rec)
            objects = isbns(answer.body)
            token = answer.header("Next")
            assert token
            if not objects:
                return got, token, pages, seen
            got.extend(objects)
            next_query = urllib.parse.urlencode({"subscription": "extended", "pagesize": 70, "next": token})
            answer, rec = sdk_get(emu, f"/metadata/export/object?{next_query}", tgt)
            pages += 1
        raise AssertionError(f"no empty page after {MAX_PAGES} pages: the emulator never ends the paging")

    got, token, pages, seen = download_after(f"subscription=extended&pagesize=70&after={after_days(100)}")
    assert all(r.headers["date"].endswith(" UTC") and "accept" not in r.headers for r in seen)
    assert pages == 6  # five pages of objects, then the empty page that ends the SDK's loop
    assert [isbn for isbn, _ in got] == [r["isbn13"] for r in emu.records()]
    assert len({ref for _, ref in got}) == 300  # nothing twice
    # the SDK's lastNextToken (the empty page's Next) continues exactly where the pull ended
    start, stop = emu.add_objects(9)
    query = urllib.parse.urlencode({"subscription": "extended", "pagesize": 70, "next": token})
    new, token2, pages2, _ = download_after(query)
    assert [isbn for isbn, _ in new] == [r["isbn13"] for r in emu.records(start, stop)] and pages2 == 2
    again, _, pages3, _ = download_after(urllib.parse.urlencode({"subscription": "extended", "pagesize": 70,
                                                                 "next": token2}))
    assert again == [] and pages3 == 1


def test_sdk_download_without_accept(emu: BoknettEmulator) -> None:
    tgt = sdk_login(emu, emu.username, emu.password)[0].header("Boknett-TGT")
    page, _ = sdk_get(emu, f"/metadata/export/object?subscription=extended&pagesize=8&after={after_days(100)}", tgt)
    kinds = [o.findtext("TYPE") for o in etree.fromstring(page.body).iter("OBJECT")]
    for i, ((isbn, ref), kind) in enumerate(zip(isbns(page.body), kinds)):
        parts = urllib.parse.urlsplit(ref)
        answer, seen = sdk_get(emu, f"{parts.path}?{parts.query}", tgt)
        assert "accept" not in seen.headers
        assert answer.status == 200, answer.body[:200]
        assert answer.body == emu.body(i)
        assert answer.header("Content-Disposition").startswith(f'attachment; filename="{isbn}_{kind}.')
