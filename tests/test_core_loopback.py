"""Forced 401, 500 and timeout over real loopback HTTP: plain messages, no secret, no raw CPR —
in the exception and in every log record captured at DEBUG (toolkit, httpx, httpcore)."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import toolkit
from toolkit.core import sync
from toolkit.core.credentials import Secret, reveal
from toolkit.core.errors import ServerError, TransportError, Unauthorized
from toolkit.core.http import HttpClient, RetryPolicy, Timeouts, TokenAuth
from toolkit.sandbox import server

from .conftest import assert_clean

CPR = "0101901234"
TOKEN = "loopback-access-token-7f3a9c"
SECRET = "loopback-client-secret-55e1"


class ErrorsEmulator(server.Emulator):
    """A tiny service: a token endpoint and routes that fail on purpose."""

    name = "errors"

    def build_app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            if form.get("client_secret") != SECRET:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            return JSONResponse({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})

        async def photo(request: Request) -> JSONResponse:
            kind = request.path_params["kind"]
            if kind == "unauthorized":
                return JSONResponse({"error": "invalid_token", "message": f"token {TOKEN} rejected"}, 401)
            if kind == "boom":
                return JSONResponse({"error": "server", "message": f"failed for {CPR}"}, 500)
            if kind == "slow":
                await asyncio.sleep(2)
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/oauth/token", token, methods=["POST"]),
                                 Route("/billeder/{kind}/{cpr}", photo)])

    def credentials(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "client_secret": SECRET}


class ClientCredentials(TokenAuth):
    def __init__(self, secret: Secret) -> None:
        super().__init__()
        self.secret = secret

    async def fetch_headers(self, http: HttpClient) -> tuple[dict[str, str], float]:
        r = await http.request("POST", "/oauth/token", idempotent=True, authenticate=False,
                               data={"grant_type": "client_credentials", "client_secret": reveal(self.secret)},
                               what="get an access token")
        body = r.json()
        return {"Authorization": f"Bearer {body['access_token']}"}, float(body["expires_in"])


@pytest.fixture(scope="module")
def errors_sandbox() -> Iterator[Any]:
    server.EMULATORS["errors"] = f"{__name__}:ErrorsEmulator"
    try:
        with toolkit.sandbox.start(services=["errors"]) as sb:
            yield sb
    finally:
        server.EMULATORS.pop("errors", None)


def client(sb: Any, **kw: Any) -> HttpClient:
    return HttpClient("uddata", sb.urls["errors"], auth=ClientCredentials(Secret(SECRET)),
                      retry=RetryPolicy(base=0.01, cap=0.02), **kw)


@pytest.mark.integration
@pytest.mark.parametrize("kind, error, words", [
    ("unauthorized", Unauthorized, "check the credentials"),
    ("boom", ServerError, "try again in a few minutes"),
    ("slow", TransportError, "did not answer in time"),
])
def test_forced_failures_are_plain_and_clean(errors_sandbox: Any, debug_logs: pytest.LogCaptureFixture,
                                             kind: str, error: type, words: str) -> None:
    http = client(errors_sandbox, timeouts=Timeouts(read=0.3))
    with pytest.raises(error) as info:
        sync.run(http.request("GET", f"/billeder/{kind}/{CPR}", what="fetch the photo"))
    sync.run(http.aclose())
    text = str(info.value) + repr(info.value)
    assert text.startswith("Uddata+: could not fetch the photo") or "Uddata+: could not fetch the photo" in text
    assert words in text.lower()
    assert info.value.__cause__ is None
    logs = "\n".join(r.getMessage() for r in debug_logs.records)
    assert "010190-****" in logs  # the requests were logged (so the scan means something) …
    assert_clean(text, [CPR, TOKEN, SECRET], "the exception")
    assert_clean(logs, [CPR, TOKEN, SECRET], "the DEBUG logs")  # … with nothing secret or personal
    assert "/billeder/" in logs


@pytest.mark.integration
def test_token_is_sent_in_header_never_in_query(errors_sandbox: Any) -> None:
    http = client(errors_sandbox)
    sync.run(http.request("GET", f"/billeder/ok/{CPR}"))
    sync.run(http.aclose())
    recorded = errors_sandbox.emulator("errors").requests
    data = [r for r in recorded if r.path.startswith("/billeder/ok")]
    assert data and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in data)
    assert all(TOKEN not in r.query and SECRET not in r.query for r in recorded)


class HoldEmulator(server.Emulator):
    """Answers after 50 ms and records each request's client port and how many were in at once."""

    name = "hold"

    def build_app(self) -> Starlette:
        self.ports: list[int] = []
        self.now = self.most = 0

        async def hold(request: Request) -> JSONResponse:
            self.ports.append(request.client.port if request.client else -1)
            self.now += 1
            self.most = max(self.most, self.now)
            try:
                await asyncio.sleep(0.05)
            finally:
                self.now -= 1
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/hold/{n}", hold)])

    def credentials(self) -> dict[str, Any]:
        return {"base_url": self.base_url}


@pytest.mark.integration
def test_many_connections_all_carry_requests_and_a_larger_pool_keeps_the_warm_ones() -> None:
    """A connection of 64 is several small httpx pools (httpcore's cost per request grows with its pool):
    64 requests still go out at once over 64 connections, and growing from 16 to 64 keeps the 16 warm
    connections (their ports come back) instead of closing them."""
    from toolkit.core.http import POOL_SIZE

    server.EMULATORS["hold"] = f"{__name__}:HoldEmulator"
    try:
        with toolkit.sandbox.start(services=["hold"]) as sb:
            em = sb.emulator("hold")
            http = HttpClient("uddata", sb.urls["hold"])

            async def burst(n: int) -> set[int]:
                before = len(em.ports)
                await asyncio.gather(*(http.request("GET", f"/hold/{i}") for i in range(n)))
                return set(em.ports[before:])

            async def main() -> tuple[set[int], set[int], list[int]]:
                await http.ensure_pool(16)
                first = await burst(16)
                await http.ensure_pool(64)
                second = await burst(64)
                sizes = http.pool_sizes()
                await http.aclose()
                return first, second, sizes

            first, second, sizes = sync.run(main())
    finally:
        server.EMULATORS.pop("hold", None)
    assert len(first) == 16 and em.most == 64 and len(second) == 64
    assert first <= second  # the 16 warm connections carried requests of the second burst
    assert sizes == [POOL_SIZE] * (64 // POOL_SIZE)
