"""The HTTP layer: one retry policy, token renewal, plain errors (unit tests through MockTransport)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import pytest

from toolkit.core.errors import RateLimited, ServerError, TransportError, Unauthorized
from toolkit.core.http import HTTPResponse, HttpClient, MockTransport, RetryPolicy, TokenAuth


def make(handler: Callable[[Any], Any], **kw: Any) -> tuple[HttpClient, list[float]]:
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    http = HttpClient("mediaflow", "https://svc.test/1", transport=MockTransport(handler), sleep=fake_sleep,
                      retry=RetryPolicy(), **kw)
    return http, sleeps


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_get_retried_on_503_then_succeeds_with_retry_after() -> None:
    calls = []

    def handler(request: Any) -> HTTPResponse:
        calls.append(request)
        if len(calls) < 3:
            return HTTPResponse(503, headers={"Retry-After": "7"}, json={"status": 503, "error": "busy"})
        return HTTPResponse(200, json=[{"id": 1}])

    http, sleeps = make(handler)
    r = run(http.request("GET", "/file/latest"))
    assert r.json() == [{"id": 1}] and len(calls) == 3
    assert sleeps == [7.0, 7.0]  # Retry-After honoured


def test_retry_after_capped_and_attempts_bounded() -> None:
    def handler(request: Any) -> HTTPResponse:
        return HTTPResponse(429, headers={"Retry-After": "3600"}, json={"status": 429, "error": "slow down"})

    http, sleeps = make(handler)
    with pytest.raises(RateLimited) as info:
        run(http.request("GET", "/x"))
    assert len(sleeps) == 4 and all(s == 60.0 for s in sleeps)  # 5 attempts, sleeps capped at 60 s
    assert "slow down" in str(info.value) and "Mediaflow" in str(info.value)


def test_backoff_is_full_jitter_within_cap() -> None:
    policy = RetryPolicy()
    for attempt in range(1, 12):
        for _ in range(20):
            d = policy.delay(attempt)
            assert 0 <= d <= min(30.0, 0.5 * 2 ** (attempt - 1))


def test_post_not_repeated_on_500_but_on_429_and_connect_error() -> None:
    seen: list[str] = []

    def handler(request: Any) -> HTTPResponse:
        seen.append(request.url.path)
        return HTTPResponse(500, json={"status": 500, "error": "Unspecified database error"})

    http, _ = make(handler)
    with pytest.raises(ServerError):
        run(http.request("POST", "/file", json={"filename": "a.jpg"}))
    assert len(seen) == 1  # not repeated blindly

    state = {"n": 0}

    def flaky(request: Any) -> HTTPResponse:
        state["n"] += 1
        if state["n"] == 1:
            raise ConnectionRefusedError  # replaced below by the transport's own error type
        if state["n"] == 2:
            return HTTPResponse(429, json={"status": 429, "error": "later"})
        return HTTPResponse(200, json={"ok": True})

    from toolkit.core import http as core_http

    def raising(request: Any) -> HTTPResponse:
        try:
            return flaky(request)
        except ConnectionRefusedError:
            raise core_http.httpx.ConnectError("refused", request=request) from None

    http2, _ = make(raising)
    assert run(http2.request("POST", "/file", json={})).json() == {"ok": True} and state["n"] == 3


def test_replayable_body_is_rebuilt_for_each_attempt() -> None:
    bodies = []

    def handler(request: Any) -> HTTPResponse:
        bodies.append(request.content)
        return HTTPResponse(503 if len(bodies) == 1 else 201)

    http, _ = make(handler)
    made = []

    def body() -> dict:
        made.append(1)
        return {"content": b"jpeg-bytes"}

    run(http.request("PUT", "/billeder", body=body))
    assert bodies == [b"jpeg-bytes", b"jpeg-bytes"] and len(made) == 2


class CountingAuth(TokenAuth):
    def __init__(self) -> None:
        super().__init__()
        self.fetched = 0

    async def fetch_headers(self, http: HttpClient) -> tuple[dict[str, str], float]:
        self.fetched += 1
        return {"Authorization": f"Bearer token-number-{self.fetched}-abcdef"}, 3600


def test_token_fetched_lazily_once_for_concurrent_calls_and_renewed_once_on_401() -> None:
    seen = []

    def handler(request: Any) -> HTTPResponse:
        auth = request.headers.get("authorization", "")
        seen.append(auth)
        if auth.endswith("number-1-abcdef") and request.url.path.endswith("/expire"):
            return HTTPResponse(401, json={"status": 401, "error": "expired"})
        return HTTPResponse(200, json=[])

    auth = CountingAuth()
    http, _ = make(handler, auth=auth)
    assert auth.fetched == 0  # lazy

    async def many() -> None:
        await asyncio.gather(*[http.request("GET", "/a") for _ in range(10)])

    run(many())
    assert auth.fetched == 1
    run(http.request("GET", "/expire"))  # 401 → one renewal → repeated with the new token
    assert auth.fetched == 2 and seen[-1].endswith("number-2-abcdef")


def test_persistent_401_raises_unauthorized_without_the_token() -> None:
    def handler(request: Any) -> HTTPResponse:
        return HTTPResponse(401, json={"status": 401, "error": "Invalid token"})

    auth = CountingAuth()
    http, _ = make(handler, auth=auth)
    with pytest.raises(Unauthorized) as info:
        run(http.request("GET", "/a", what="list the latest files"))
    assert auth.fetched == 2  # the original and exactly one renewal
    text = str(info.value)
    assert "token-number" not in text and "could not list the latest files" in text and "Invalid token" in text


def test_transport_errors_become_plain_toolkit_errors() -> None:
    from toolkit.core import http as core_http

    def handler(request: Any) -> HTTPResponse:
        raise core_http.httpx.ReadTimeout("timed out", request=request)

    http, sleeps = make(handler)
    with pytest.raises(TransportError) as info:
        run(http.request("GET", "/slow?access_token=leaky-token-1"))
    err = info.value
    assert len(sleeps) == 4  # GET retried
    assert "did not answer in time" in str(err) and "leaky-token-1" not in str(err)
    assert err.__cause__ is None and err.__suppress_context__  # no httpx internals in the chain
    assert "httpx" not in str(err) and "httpcore" not in str(err)


def test_error_body_shapes_are_parsed() -> None:
    bodies = [
        (400, {"status": 400, "error": "Bad Request", "error_details": {"images.0.url": "must be http(s)"}},
         "images.0.url: must be http(s)"),
        (404, {"error": "not_found", "message": "No photo for this person"}, "No photo for this person"),
    ]
    for status, body, expected in bodies:
        http, _ = make(lambda request, s=status, b=body: HTTPResponse(s, content=json.dumps(b).encode(),
                                                                       headers={"content-type": "application/json"}))
        with pytest.raises(Exception) as info:
            run(http.request("GET", "/x"))
        assert expected in str(info.value)
    xml = b"<errors><error><code>E12</code><message>Date header missing</message></error></errors>"
    http, _ = make(lambda request: HTTPResponse(400, content=xml, headers={"content-type": "application/xml"}))
    with pytest.raises(Exception) as info:
        run(http.request("GET", "/x"))
    assert "Date header missing" in str(info.value)


def test_allowed_status_is_returned_not_raised() -> None:
    http, _ = make(lambda request: HTTPResponse(404, json={"error": "not_found"}))
    assert run(http.request("GET", "/billeder/x", allow=(404,))).status_code == 404


def test_pool_follows_concurrency() -> None:
    http, _ = make(lambda request: HTTPResponse(200))
    run(http.ensure_pool(24))
    assert http.max_connections == 24


def test_a_pool_large_enough_keeps_its_warm_connections() -> None:
    http, _ = make(lambda request: HTTPResponse(200))

    async def main() -> tuple[Any, Any, Any]:
        await http.request("GET", "/x")
        first = http.client
        await http.ensure_pool(4)  # smaller than the 16 it has: kept as it is
        kept = http.client
        await http.ensure_pool(32)  # larger: a new pool
        return first, kept, http.client

    first, kept, grown = run(main())
    assert kept is first and grown is not first and http.max_connections == 32


def test_a_cookie_the_service_sets_is_sent_back() -> None:
    """The client reads the cookie jar only for answers that set a cookie (a CPU saving): a cookie set is
    still kept and sent with the next request, and an answer without one leaves it in place."""
    seen: list[str | None] = []

    def handler(request: Any) -> Any:
        seen.append(request.headers.get("cookie"))
        if request.url.path.endswith("/login"):
            return HTTPResponse(200, headers={"Set-Cookie": "affinity=node-7; Path=/"})
        return HTTPResponse(200)

    http, _ = make(handler)

    async def main() -> None:
        await http.request("GET", "/first")
        await http.request("GET", "/login")
        await http.request("GET", "/after")
        await http.request("GET", "/again")
        await http.aclose()

    run(main())
    assert seen == [None, None, "affinity=node-7", "affinity=node-7"]
