"""Core mechanisms every service builds on: auth flows, jobs, paging, downloads, the journal."""

from __future__ import annotations

import asyncio
import email.utils
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from toolkit.core.auth import ClientCredentials, DateHeader, RefreshTokenGrant, TicketAuth
from toolkit.core.credentials import Secret
from toolkit.core.errors import JobTimeout, TransportError, Unauthorized, ValidationError
from toolkit.core.http import CursorPaging, HTTPResponse, HttpClient, MockTransport, PagePaging, RetryPolicy
from toolkit.core.jobs import Backoff, Job, JobState
from toolkit.core.journal import Journal, destination
from toolkit.testing import assert_no_secrets, free_port


def make(handler: Any, **kw: Any) -> HttpClient:
    async def no_sleep(_s: float) -> None:
        return None

    return HttpClient("uddata", "https://svc.test", transport=MockTransport(handler), sleep=no_sleep,
                      retry=RetryPolicy(attempts=3), **kw)


def form(request: Any) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(request.content.decode()))


# -- auth --------------------------------------------------------------------------------------------------
def test_concurrent_requests_share_one_token_request() -> None:
    tokens: list[Any] = []

    async def main() -> None:
        def handler(request: Any) -> HTTPResponse:
            if request.url.path == "/token":
                tokens.append(request)
                return HTTPResponse(200, json={"access_token": "tok-1", "expires_in": 3600})
            assert request.headers["authorization"] == "Bearer tok-1"
            return HTTPResponse(200, json={})

        http = make(handler, auth=ClientCredentials("https://svc.test/token", "id", Secret("sec-xyz")))
        await asyncio.gather(*(http.request("GET", f"/x/{i}") for i in range(30)))

    asyncio.run(main())
    assert len(tokens) == 1
    assert form(tokens[0]) == {"grant_type": "client_credentials", "client_id": "id", "client_secret": "sec-xyz"}
    assert "sec-xyz" not in str(tokens[0].url)


def test_refused_credentials_are_final_and_need_no_second_token_request() -> None:
    tokens: list[Any] = []

    def handler(request: Any) -> HTTPResponse:
        tokens.append(request)
        return HTTPResponse(401, json={"error": "invalid_client"})

    async def main() -> None:
        http = make(handler, auth=ClientCredentials("https://svc.test/token", "id", "bad"))
        results = await asyncio.gather(*(http.request("GET", "/x") for _ in range(50)), return_exceptions=True)
        assert all(isinstance(r, Unauthorized) for r in results)

    asyncio.run(main())
    assert len(tokens) == 1


def test_token_is_renewed_before_expiry_and_once_on_401() -> None:
    issued: list[str] = []
    seen: list[str] = []

    def handler(request: Any) -> HTTPResponse:
        if request.url.path == "/token":
            issued.append(f"t{len(issued)}")
            return HTTPResponse(200, json={"access_token": issued[-1], "expires_in": 2})
        seen.append(request.headers["authorization"])
        if request.url.path == "/reject" and seen[-1] == "Bearer t0":
            return HTTPResponse(401, json={"error": "expired"})
        return HTTPResponse(200, json={})

    async def main() -> None:
        http = make(handler, auth=ClientCredentials("https://svc.test/token", "id", "s"))
        await http.request("GET", "/reject")  # 401 → one renewal → repeated with t1
        assert seen == ["Bearer t0", "Bearer t1"]
        await asyncio.sleep(1.1)  # a 2 s token is renewed at half its life
        await http.request("GET", "/ok")
        assert seen[-1] == "Bearer t2"

    asyncio.run(main())


def test_refresh_token_grant_posts_a_form_and_keeps_a_rotated_refresh_token() -> None:
    forms: list[dict[str, str]] = []

    def handler(request: Any) -> HTTPResponse:
        if request.url.path.endswith("/oauth2/token"):
            assert request.method == "POST" and not request.url.query
            forms.append(form(request))
            n = len(forms)
            return HTTPResponse(200, json={"access_token": f"a{n}", "expires_in": 7200, "refresh_token": f"r{n}"})
        if request.headers["authorization"] == "Bearer a1":
            return HTTPResponse(401, json={"status": 401, "error": "expired"})
        return HTTPResponse(200, json=[])

    auth = RefreshTokenGrant("https://svc.test/1/oauth2/token", "cid", Secret("csec"), Secret("r0"))

    async def main() -> None:
        http = make(handler, auth=auth)
        await http.request("GET", "/1/file/latest")

    asyncio.run(main())
    assert [f["refresh_token"] for f in forms] == ["r0", "r1"]
    assert forms[0]["grant_type"] == "refresh_token" and forms[0]["client_secret"] == "csec"
    assert auth.refresh_token.reveal() == "r2" and repr(auth.refresh_token) == "Secret('***')"


def test_ticket_auth_logs_in_by_form_and_date_header_is_fresh_and_learns_the_offset() -> None:
    seen: list[Any] = []

    def handler(request: Any) -> HTTPResponse:
        if request.url.path == "/v1/tickets":
            assert form(request)["password"] == "p&=% +x"
            return HTTPResponse(201, headers={"Boknett-TGT": "TGT-1-abc-login"})
        seen.append(request)
        return HTTPResponse(200, text="<OBJECTS/>")

    clock = DateHeader()
    auth = TicketAuth("https://svc.test/v1/tickets", "user", Secret("p&=% +x"), ticket_header="Boknett-TGT",
                      scheme="Boknett", lifetime=7200, renew_after=6600)

    async def main() -> None:
        http = make(handler, auth=auth, attempt_headers=[clock])
        await http.request("GET", "/metadata/export/object")

    asyncio.run(main())
    assert seen[0].headers["authorization"] == "Boknett TGT-1-abc-login"
    sent = email.utils.parsedate_to_datetime(seen[0].headers["date"]).timestamp()
    assert abs(sent - time.time()) < 5 and seen[0].headers["date"].endswith("GMT")
    server = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert abs(clock.learn(server) - 3600) < 5
    later = email.utils.parsedate_to_datetime(clock()["Date"]).timestamp()
    assert abs(later - time.time() - 3600) < 5


def test_a_secret_is_not_in_the_locals_of_a_failing_token_request() -> None:
    import traceback

    def handler(request: Any) -> HTTPResponse:
        raise __import__("toolkit").core.http.httpx.ConnectError("refused", request=request)

    async def main() -> None:
        http = make(handler, auth=ClientCredentials("https://svc.test/token", "id", Secret("very-secret-42")))
        await http.request("GET", "/x")

    with pytest.raises(TransportError) as info:
        asyncio.run(main())
    frames = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    assert_no_secrets("".join(frames.format()), ["very-secret-42"], "a traceback with locals")
    assert_no_secrets(repr(info.value.details) + str(info.value), ["very-secret-42"], "the error")


# -- jobs --------------------------------------------------------------------------------------------------
class CountingJob(Job):
    def __init__(self, seconds: float, fail: bool = False) -> None:
        super().__init__(service="livingdocs", backoff=Backoff(first=0.05, factor=1.5, max_interval=0.2))
        self.ends = time.monotonic() + seconds
        self.fail = fail

    async def poll(self) -> JobState:
        done = time.monotonic() >= self.ends
        return JobState(finished=done, failed=done and self.fail, state="failed" if self.fail else "success")


def test_job_wait_polls_with_backoff_and_timeout_leaves_it_waitable() -> None:
    async def main() -> None:
        job = CountingJob(0.6)
        with pytest.raises(JobTimeout):
            await job.wait(timeout=0.2)
        state = await job.wait(timeout=5)
        assert state.finished and not state.failed
        assert job.polls <= 12

    asyncio.run(main())


def test_job_wait_wakes_on_an_event() -> None:
    async def main() -> float:
        job = CountingJob(0.0)
        job.ends = time.monotonic() + 100  # finishes only when the event says so
        job.backoff = Backoff(first=30, factor=1, max_interval=30)
        event = threading.Event()

        async def fire() -> None:
            await asyncio.sleep(0.1)
            job.ends = 0
            event.set()

        started = time.monotonic()
        asyncio.get_running_loop().create_task(fire())
        await job.wait(timeout=60, wake=event)
        return time.monotonic() - started

    assert asyncio.run(main()) < 10  # woke up long before the 30 s pause


def test_failed_job_raises_only_when_asked() -> None:
    from toolkit.core.errors import JobFailed

    async def main() -> None:
        assert (await CountingJob(0, fail=True).wait()).failed
        with pytest.raises(JobFailed):
            await CountingJob(0, fail=True).wait(raise_on_failure=True)

    asyncio.run(main())


# -- paging ------------------------------------------------------------------------------------------------
def test_cursor_paging_follows_link_and_stops_on_the_last_page() -> None:
    queries: list[str] = []

    def handler(request: Any) -> HTTPResponse:
        queries.append(str(request.url.query, "ascii") if isinstance(request.url.query, bytes) else request.url.query)
        page = int(request.url.params.get("next", "0") or 0)
        headers = {"Next": str(page + 1)}
        if page < 2:
            headers["Link"] = f'<https://svc.test/objects?next={page + 1}&pagesize=2>; rel="next"'
        return HTTPResponse(200, headers=headers, text=f"<p>{page}</p>")

    async def main() -> list[str]:
        http = make(handler)
        paging = CursorPaging(header="Next", param="next", link_means_more=True)
        out = [r.text async for r in http.pages("/objects", paging, params={"after": "x", "pagesize": 2})]
        assert paging.last_cursor == "3"
        return out

    assert asyncio.run(main()) == ["<p>0</p>", "<p>1</p>", "<p>2</p>"]
    assert "after=x" in queries[0] and "after" not in queries[1]


def test_link_to_another_host_is_not_followed() -> None:
    hosts: list[str] = []

    def handler(request: Any) -> HTTPResponse:
        hosts.append(request.url.host)
        if len(hosts) > 1:
            return HTTPResponse(200, text="end")
        return HTTPResponse(200, headers={"Link": '<https://evil.test/steal?next=1>; rel="next"', "Next": "1"},
                            text="first")

    async def main() -> None:
        http = make(handler)
        async for _ in http.pages("/objects", CursorPaging(), params={}):
            pass

    asyncio.run(main())
    assert hosts == ["svc.test", "svc.test"]


def test_page_paging_stops_at_the_limit_and_on_a_short_page() -> None:
    pages: list[int] = []

    def handler(request: Any) -> HTTPResponse:
        page, per = int(request.url.params["page"]), int(request.url.params["per_page"])
        pages.append(page)
        total = 25
        items = list(range((page - 1) * per, min(total, page * per)))
        return HTTPResponse(200, json=items)

    async def collect(limit: int | None) -> list[int]:
        http = make(handler)
        out: list[int] = []
        async for r in http.pages("/1/file/latest", PagePaging(count=lambda r: len(r.json()), size=10, limit=limit)):
            out += r.json()
        return out

    assert asyncio.run(collect(None)) == list(range(25)) and pages == [1, 2, 3]
    pages.clear()
    assert len(asyncio.run(collect(15))) == 20 and pages == [1, 2]


# -- downloads ---------------------------------------------------------------------------------------------
def test_download_streams_to_the_named_file_inside_the_folder(tmp_path: Path) -> None:
    def handler(request: Any) -> HTTPResponse:
        return HTTPResponse(200, content=b"x" * 100_000,
                            headers={"Content-Disposition": 'attachment; filename="../../evil.jpg"'})

    result = asyncio.run(make(handler).download("/dl", tmp_path / "out"))
    assert result.path == (tmp_path / "out" / "evil.jpg").resolve() and result.bytes == 100_000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["evil.jpg"]
    assert not (tmp_path / "evil.jpg").exists()
    again = asyncio.run(make(handler).download("/dl", tmp_path / "out"))
    assert again.skipped


@pytest.mark.parametrize("size", [100_000, 3_000_000])  # read whole and written on a thread / streamed
def test_the_name_is_chosen_when_the_headers_arrive_and_cleaned_again(tmp_path: Path, size: int) -> None:
    seen: list[tuple[str, bool]] = []
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)

    def handler(request: Any) -> HTTPResponse:
        return HTTPResponse(200, content=body, headers={"Content-Disposition": 'attachment; filename="../a.jpg"'})

    def name(suggested: str) -> str:
        seen.append((suggested, any((tmp_path / "out").glob("*.part"))))  # before any file is written
        return "sub/../../b~1.jpg"  # a careless chooser is cleaned too

    result = asyncio.run(make(handler).download("/dl", tmp_path / "out", name=name))
    assert seen == [("a.jpg", False)]
    assert result.filename == "b~1.jpg" and result.suggested == "a.jpg" and result.bytes == size
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["b~1.jpg"]
    assert (tmp_path / "out" / "b~1.jpg").read_bytes() == body


@pytest.mark.parametrize("length", [100_000, 3_000_000])  # read whole in memory / streamed to a temporary file
def test_a_body_cut_mid_way_leaves_no_file(sb: Any, tmp_path: Path, length: int) -> None:
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    import toolkit
    from toolkit.sandbox.server import Emulator

    class Cut(Exception):
        pass

    async def body() -> Any:
        yield b"a" * (length // 2)
        raise Cut()

    async def route(request: Any) -> Any:
        return StreamingResponse(body(), headers={"Content-Length": str(length),
                                                  "Content-Disposition": 'attachment; filename="f.bin"'})

    class CutEmulator(Emulator):
        name = "cutter"

        def build_app(self) -> Any:
            return Starlette(routes=[Route("/dl", route)])

        def credentials(self) -> dict[str, Any]:
            return {"base_url": self.base_url}

    toolkit.sandbox.EMULATORS["cutter"] = f"{__name__}:CutEmulator"
    globals()["CutEmulator"] = CutEmulator
    try:
        with toolkit.sandbox.start(services=["cutter"]) as cut:
            http = HttpClient("uddata", cut.urls["cutter"], retry=RetryPolicy(attempts=2, base=0.01, cap=0.02))
            with pytest.raises(TransportError):
                asyncio.run(http.download("/dl", tmp_path))
    finally:
        toolkit.sandbox.EMULATORS.pop("cutter", None)
    assert list(tmp_path.iterdir()) == []


# -- journal -----------------------------------------------------------------------------------------------
def test_journal_claims_are_exclusive_between_runs(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    dest = destination("uddata", "https://x", institution="1")
    one, two = Journal(path, service="uddata"), Journal(path, service="uddata")
    assert one.claim(dest, "a", "h").state == "claimed"
    assert two.claim(dest, "a", "h").state == "busy"
    one.finish(dest, "a", "h", "done", http_status=201)
    assert two.claim(dest, "a", "h").state == "done"
    assert two.claim(destination("uddata", "https://y", institution="1"), "a", "h").state == "claimed"
    assert one.claim(dest, "b", "h").state == "claimed"
    one.close()  # an interrupted run: its claims become in_doubt, not busy forever
    claim = two.claim(dest, "b", "h")
    assert claim.state == "claimed" and claim.needs_check
    two.close()


def test_journal_keeps_runs_and_rows(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite", service="uddata") as j:
        run_id = j.start_run("uddata", "uddata|https://x", "photo upload", 2)
        j.end_run(run_id, {"uploaded": 2}, "2 items", [{"file": "a.jpg"}, {"file": "b.jpg"}])
        assert [r["kind"] for r in j.runs()] == ["photo upload"]
        assert j.run_rows(run_id) == [{"file": "a.jpg"}, {"file": "b.jpg"}]


def test_destination_never_holds_a_secret() -> None:
    dest = destination("mediaflow", "https://u:pw-secret@api.test/1?access_token=abc123", folder=5)
    assert "pw-secret" not in dest and "abc123" not in dest


def test_free_port_is_free() -> None:
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
