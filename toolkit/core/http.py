"""HTTP layer: the only module of the toolkit that imports httpx.

* :class:`HttpClient` wraps httpx for one service connection: explicit timeouts, connection pools
  sized to the concurrency in use (:meth:`HttpClient.ensure_pool`, :data:`POOL_SIZE`), one retry policy,
  token refresh on 401, redacted DEBUG logging, and translation of every httpx exception and every
  error status into the toolkit's own exceptions (:mod:`toolkit.core.errors`).
* :class:`RetryPolicy` — the one retry policy: idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) and
  token calls only; transient = connect errors, timeouts, 408/429/500/502/503/504; 5 attempts, 0.5 s
  base, full jitter, at most 30 s a sleep, ``Retry-After`` honoured up to 60 s. A non-idempotent POST is
  repeated only when it certainly did not reach the service (connection refused, pool timeout) or the
  service said so (429).
* Paging (:meth:`HttpClient.pages` with :class:`CursorPaging` — a ``Next`` header or ``Link: rel="next"`` —
  or :class:`PagePaging` — ``page``/``per_page``) as async generators, one page in memory at a time.
* Streamed downloads (:meth:`HttpClient.download`) to a temporary file renamed when complete, with file
  names from ``Content-Disposition`` cleaned by :mod:`toolkit.core.files` so they stay in the folder.
* Credential flows live in :mod:`toolkit.core.auth`; this layer asks them for headers on every attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import json as _json
import logging
import os
import random
import ssl
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence

import httpx

from .auth import TokenAuth
from .credentials import Secret
from .errors import (FATAL, MAYBE_DELIVERED, UNSENT, APIError, ToolkitError, TransportError, error_class_for_status,
                     service_name)
from .files import content_disposition_filename, inside, safe_filename, temporary
from .redact import get_logger, redact
from . import limits as _limits
from . import tls as _tls

__all__ = ["HttpClient", "RetryPolicy", "TokenAuth", "Timeouts", "Response", "MockTransport", "ASGITransport",
           "redact", "parse_error_body", "Paging", "CursorPaging", "PagePaging", "Download"]

log = get_logger("toolkit.http")

Response = httpx.Response
#: transport classes re-exported so tests and the sandbox can put their own in place of the network
#: (a client's ``transport=``) without importing httpx
MockTransport = httpx.MockTransport
ASGITransport = httpx.ASGITransport
HTTPResponse = httpx.Response

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait. ``connect``/``read``/``write``/``pool`` bound one attempt's phases (``read``: the
    longest silence while an answer is awaited); ``total`` bounds one call with all its retries, so a
    service that takes the connection and never answers ends a call after ``total`` seconds with a
    :class:`~toolkit.core.errors.TransportError` that says so (``None``: no bound beyond the attempts).
    The body of a streamed download is not counted in ``total`` (its pieces are bounded by ``read``)."""

    connect: float = 10.0
    read: float = 30.0
    write: float = 60.0
    pool: float = 120.0
    total: float | None = 60.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)

    def deadline(self) -> float | None:
        """The monotonic time by which a call that starts now must end."""
        return None if self.total is None else time.monotonic() + self.total

    def for_attempt(self, deadline: float | None, timeout: float | None) -> Any:
        """The httpx timeout of one attempt: each phase at most what is left before ``deadline``."""
        if deadline is None:
            return timeout
        left = max(0.05, deadline - time.monotonic())
        if timeout is not None:
            return min(float(timeout), left)
        return httpx.Timeout(connect=min(self.connect, left), read=min(self.read, left),
                             write=min(self.write, left), pool=min(self.pool, left))

    @staticmethod
    def in_time(deadline: float | None, pause: float = 0.0) -> bool:
        """Whether another attempt (after ``pause`` seconds) still has a second before ``deadline``."""
        return deadline is None or deadline - time.monotonic() - pause > 1.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    retry_after_cap: float = 60.0
    statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    #: statuses a non-idempotent request may be repeated on (the service says it did not process it)
    safe_for_post: frozenset[int] = frozenset({429})
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before attempt ``attempt + 1`` (attempt counts from 1)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        return self.rng.uniform(0, min(self.cap, self.base * (2 ** (attempt - 1))))


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def json_or_none(response: httpx.Response) -> Any:
    """The body as JSON, or ``None`` when it is empty or not JSON (the caller says what it expected)."""
    try:
        return response.json()
    except ValueError:
        return None


def parse_error_body(response: httpx.Response) -> str:
    """Best-effort plain message from an error body (JSON ``error``/``message``/``detail``, or XML)."""
    text = response.text if response.content else ""
    if not text:
        return ""
    ctype = response.headers.get("content-type", "")
    if "json" in ctype or text[:1] in "[{":
        try:
            body = _json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, list) and body:
            body = body[0]
        if isinstance(body, dict):
            parts = []
            for key in ("message", "error_description", "detail", "error"):
                val = body.get(key)
                if isinstance(val, str) and val and val not in parts:
                    parts.append(val)
            details = body.get("error_details")
            if isinstance(details, dict):
                parts.extend(f"{k}: {v}" for k, v in details.items())
            errors = body.get("errors")
            if isinstance(errors, dict):
                parts.extend(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items())
            if parts:
                return "; ".join(parts)
    if "<message>" in text:
        import re

        msgs = re.findall(r"<message>(.*?)</message>", text, flags=re.S)
        if msgs:
            return "; ".join(m.strip() for m in msgs)
    if "html" in ctype:
        return ""
    return text.strip()[:300]


BodyFactory = Callable[[], Mapping[str, Any]]


# -- the seam for transcripts and replays (toolkit.record, toolkit.testing.replay) ---------------------------
@dataclass
class Exchange:
    """One request and its answer in plain data (no httpx object leaves this module): what a transcript
    records. ``response_body`` is None for a streamed answer (a download), whose size is in its headers;
    ``request_body`` None when the request had none. Nothing here is redacted yet: observers redact."""

    service: str
    method: str
    url: str
    http_version: str
    request_headers: list[tuple[str, str]]
    request_body: bytes | None
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    response_body: bytes | None
    started: float  # epoch seconds
    elapsed_ms: float


@dataclass
class Answer:
    """A canned answer for a replay: ``answer_with(fn)`` makes every connection ask ``fn(method, url, headers,
    body)`` instead of the network."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass
class Asked:
    """A request as a canned transport's handler sees it, in plain data: ``method``, ``url``, ``path``,
    ``params`` (the query, last value of each name), ``headers`` and ``body``; ``json()`` reads the body."""

    method: str
    url: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return _json.loads(self.body or b"null")


def reply(status: int, json: Any = None, *, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> Answer:
    """An :class:`Answer` with a JSON body (or raw ``body``), for canned transports."""
    if json is not None:
        return Answer(status, [("content-type", "application/json"), *headers], _json.dumps(json).encode())
    return Answer(status, list(headers), body)


def canned(handler: "Callable[[Asked], Answer | Awaitable[Answer]]") -> Any:
    """A transport (pass it as ``transport=`` to a client or connect()) that answers every request with
    ``handler(asked)`` instead of the network: the test seam of services that answer in shapes the sandbox
    does not serve. Tests write handlers in plain data; httpx stays inside this module. An ``async`` handler
    may take its time (a slow service: tests count the requests it holds at once)."""

    def handle(request: httpx.Request) -> Any:
        asked = Asked(request.method, str(request.url), request.url.path, dict(request.url.params),
                      dict(request.headers), request.read())
        got = handler(asked)
        if not isinstance(got, Answer):
            async def later() -> httpx.Response:
                answer = await got  # type: ignore[misc]
                return httpx.Response(answer.status, headers=answer.headers, content=answer.body)
            return later()
        return httpx.Response(got.status, headers=got.headers, content=got.body)

    return httpx.MockTransport(handle)


_observers: list[Callable[[Exchange], None]] = []
_answerer: list[Callable[[str, str, list[tuple[str, str]], bytes], Answer]] = []


def observe(callback: Callable[[Exchange], None]) -> Callable[[], None]:
    """Call ``callback(exchange)`` for every request any connection of this process completes, until the
    returned function is called. A failing observer never fails the request."""
    _observers.append(callback)
    return lambda: _observers.remove(callback) if callback in _observers else None


def answer_with(answerer: "Callable[[str, str, list[tuple[str, str]], bytes], Answer] | None") -> None:
    """Answer every request of connections made from now on with ``answerer`` (None: the network again)."""
    _answerer.clear()
    if answerer is not None:
        _answerer.append(answerer)


def _replay_transport() -> Any:
    """The transport of a replay (an httpx mock transport over the answerer), or None."""
    if not _answerer:
        return None
    answerer = _answerer[0]

    def handle(request: httpx.Request) -> httpx.Response:
        body = request.read()
        got = answerer(request.method, str(request.url), list(request.headers.multi_items()), body)
        return httpx.Response(got.status, headers=got.headers, content=got.body)

    return httpx.MockTransport(handle)


def _answered(permit: "_limits.Permit", request: httpx.Request, response: httpx.Response, rtt: float,
              cap: float, busy: float, fresh: bool) -> None:
    """Tell the host's limit what the answer said (its status, rate-limit headers and time to the headers,
    ``busy`` the share of that time this thread worked, ``fresh`` whether it opened its connection); a pause
    it asks for is honoured up to ``cap`` seconds, as the retry policy honours ``Retry-After``."""
    size = sum(int(v) for v in (request.headers.get("content-length"), response.headers.get("content-length"))
               if v and v.isdigit())
    permit.limit.answered(permit, response.status_code, response.headers, rtt,
                          parse_retry_after(response.headers.get("retry-after")),
                          _limits.kind_of(request.method, request.url.path, size), cap, busy, fresh)


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, read only for answers that set a cookie: httpx hands every answer to the standard
    library's cookie jar through request and response adapters, ~6 % of the client's CPU per request, although
    the services here set none."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class _AsyncClient(httpx.AsyncClient):
    """httpx's client with :class:`_Cookies` as its jar."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jar = _Cookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _Cookies(cookies)


class _Releasing(httpx.AsyncByteStream):
    """A streamed body that gives its request's slot (and its pool's place) back when it is closed, read to the
    end or not."""

    def __init__(self, stream: Any, permit: "_limits.Permit | None", pools: "_Pools", index: int) -> None:
        self._stream, self._permit, self._pools, self._index = stream, permit, pools, index

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._index >= 0:
                self._pools.give(self._index)
                self._index = -1
            if self._permit is not None:
                self._permit, permit = None, self._permit
                permit.limit.release(permit)


#: connections per httpx pool. httpcore's pool looks at every connection it holds (idle ones too) for every
#: request it sends, so its cost per request grows with the pool: 64 connections in one pool cost 4-8 ms of
#: client CPU a request against ~1 ms in pools of 8 (benchmarks/concurrency_cost.py). A connection of many
#: connections is therefore kept as several small pools.
POOL_SIZE = 8


class _Pools:
    """The httpx clients of one event loop: ``connections`` split into pools of at most :data:`POOL_SIZE`.
    A request goes to the first pool with a free connection (else to the least busy), so a few requests at a
    time keep to the first pool's warm connections and many spread over all. Pools are made on first use; a
    larger connection adds pools and keeps those it has, with their warm connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop, make: Callable[[int], httpx.AsyncClient], connections: int,
                 own: bool) -> None:
        self.loop = weakref.ref(loop)
        #: the toolkit's own network pools are split; a caller's transport keeps its connections: one client
        self.own = own
        self._make, self.pool_size = make, POOL_SIZE if own else connections
        self.sizes: list[int] = []
        self.clients: list[httpx.AsyncClient | None] = []
        self.busy: list[int] = []
        self.streams: "weakref.WeakSet[Any]" = weakref.WeakSet()  # the connections that have answered
        self.grow(connections)

    def grow(self, connections: int) -> None:
        while sum(self.sizes) < connections:
            if self.sizes and self.sizes[-1] < self.pool_size and self.clients[-1] is None:
                self.sizes[-1] = min(self.pool_size, self.sizes[-1] + connections - sum(self.sizes))
                continue
            self.sizes.append(min(self.pool_size, connections - sum(self.sizes)))
            self.clients.append(None)
            self.busy.append(0)

    def take(self) -> int:
        best = 0
        for index, size in enumerate(self.sizes):
            if self.busy[index] < size:
                best = index
                break
            if self.busy[index] - size < self.busy[best] - self.sizes[best]:
                best = index
        self.busy[best] += 1
        return best

    def give(self, index: int) -> None:
        self.busy[index] -= 1

    def fresh(self, response: httpx.Response) -> bool:
        """Whether the answer came on a connection opened for it (its time holds the connect)."""
        stream = response.extensions.get("network_stream")
        if stream is None or stream in self.streams:
            return False
        self.streams.add(stream)
        return True

    def client(self, index: int) -> httpx.AsyncClient:
        made = self.clients[index]
        if made is None:
            made = self.clients[index] = self._make(self.sizes[index])
        return made

    def made(self) -> list[httpx.AsyncClient]:
        return [c for c in self.clients if c is not None]


def _tell(service: str, request: httpx.Request, response: httpx.Response, started: float, elapsed: float,
          stream: bool) -> None:
    """Hand one exchange to the observers (bodies as bytes; a streamed answer's body is not read here)."""
    try:
        body = request.content
    except httpx.RequestNotRead:  # a streamed body (a multipart upload): its size is in the headers
        body = None
    exchange = Exchange(service, request.method, str(request.url), response.http_version,
                        list(request.headers.multi_items()), body or None, response.status_code,
                        response.reason_phrase or "", list(response.headers.multi_items()),
                        None if stream else response.content, started, elapsed * 1000)
    for callback in list(_observers):
        try:
            callback(exchange)
        except Exception:  # noqa: BLE001 - a transcript must never break the work it records
            log.debug("an exchange observer failed", exc_info=False)


class _Failure:
    """What ``HttpClient._send`` hands back instead of raising, so that no frame holding the built request
    (headers with a token, a form with a secret) is part of the traceback of the error we raise. ``words``:
    (what happened, what to do) when the failure was worded already (TLS, proxy)."""

    __slots__ = ("kind", "name", "words")

    def __init__(self, kind: str, name: str, words: "tuple[str, str] | None" = None) -> None:
        self.kind, self.name, self.words = kind, name, words


class HttpClient:
    """One service connection. Only this class talks to httpx.

    ``request()`` returns the response when its status is expected (2xx, or one listed in ``allow``),
    and raises the toolkit's exception for any other status or a transport failure. One
    ``httpx.AsyncClient`` is kept per event loop, so the same connection works from the sync facade's
    private loop and from the analyst's own loop (``await client.aio.…``), one after another.

    ``attempt_headers`` are callables returning headers computed anew for every attempt (e.g. a ``Date``).

    ``transport`` is a transport of httpx's (tests, the sandbox) or a :class:`toolkit.core.tls.Network`: which
    certificates the connection trusts and which proxy it takes (by default the operating system's trust
    store, a CA bundle variable, and the proxy variables; see :mod:`toolkit.core.tls`).
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        auth: Any = None,
        headers: Mapping[str, str] | None = None,
        basic_auth: "tuple[str, Any] | None" = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        transport: Any = None,
        hints: Mapping[int, str] | None = None,
        error_parser: Callable[[httpx.Response], str] = parse_error_body,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        attempt_headers: Sequence[Callable[[], Mapping[str, str]]] = (),
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/") if base_url else ""
        self.auth = auth
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.hints = dict(hints or {})
        self.error_parser = error_parser
        self._sleep = sleep
        self._headers = {"User-Agent": "toolkit/0.1 (+jupyter)", **dict(headers or {})}
        self.attempt_headers = list(attempt_headers)
        self._basic: tuple[str, Secret] | None = None
        if basic_auth:
            self._basic = (str(basic_auth[0]), basic_auth[1] if isinstance(basic_auth[1], Secret)
                           else Secret(str(basic_auth[1])))
        self.network = transport if isinstance(transport, _tls.Network) else _tls.Network()
        self._transport = None if isinstance(transport, _tls.Network) else transport
        if not self.network.verifies and not getattr(self.network, "_warned", False):
            self.network._warned = True  # type: ignore[attr-defined]  # one line per Network, not per connection
            log.warning("%s: certificate checks are OFF for this connection (verify=False): anyone on the way to "
                        "%s can read and change what is sent, credentials included. Prefer "
                        "toolkit.Network(ca_bundle=...) with your organisation's root certificate.",
                        service_name(service), redact(self.base_url) or "the service")
        self._max_connections = max(1, int(max_connections))
        #: the adaptive concurrency limit of each host (``concurrency="auto"``; see :mod:`toolkit.core.limits`)
        self.limits = _limits.HostLimits(service, ceiling=self._max_connections)
        self._pools: dict[int, _Pools] = {}
        self._folders: set[Path] = set()
        self.requests_sent = 0

    # -- pool -------------------------------------------------------------------------------------------
    @property
    def max_connections(self) -> int:
        return self._max_connections

    def _make_client(self, connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                              keepalive_expiry=30.0)
        auth = httpx.BasicAuth(self._basic[0], self._basic[1].reveal()) if self._basic else None
        transport = _replay_transport() or self._transport
        network: dict[str, Any] = {}
        if transport is None:  # the network: trust and proxies as self.network says (trust_env stays False)
            verify = self.network.ssl_context()
            network["verify"] = verify
            network["mounts"] = {pattern: None if proxy is None else httpx.AsyncHTTPTransport(
                proxy=proxy, verify=verify, limits=limits, trust_env=False)
                for pattern, proxy in self.network.proxies().items()}
        return _AsyncClient(base_url=self.base_url, headers=self._headers, timeout=self.timeouts.to_httpx(),
                            limits=limits, transport=transport, auth=auth,
                            follow_redirects=False, trust_env=False, **network)

    def _loop_pools(self) -> _Pools:
        """The pools of the running event loop (made on first use in that loop)."""
        loop = asyncio.get_running_loop()
        pools = self._pools.get(id(loop))
        if pools is not None and pools.loop() is loop:
            return pools
        self._forget_dead_loops()
        # a transport of the caller's (tests, the sandbox in process, a replay) keeps its own connections: one client
        own = self._transport is None and _replay_transport() is None
        pools = _Pools(loop, self._make_client, self._max_connections, own)
        self._pools[id(loop)] = pools
        return pools

    @property
    def client(self) -> httpx.AsyncClient:
        """The first httpx client of the running event loop (made on first use in that loop)."""
        return self._loop_pools().client(0)

    def pool_sizes(self) -> list[int]:
        """The connections of each httpx pool of the running event loop (see :data:`POOL_SIZE`)."""
        return list(self._loop_pools().sizes)

    def bare_client(self, connections: int) -> httpx.AsyncClient:
        """A new httpx client with this connection's settings and one pool of ``connections`` — for measuring
        httpx's own cost beside the toolkit's (benchmarks); the caller closes it."""
        return self._make_client(connections)

    def _forget_dead_loops(self) -> None:
        for key, pools in list(self._pools.items()):
            loop = pools.loop()
            if loop is None or loop.is_closed():
                del self._pools[key]

    async def ensure_pool(self, concurrency: "int | str") -> None:
        """Make the connection hold at least ``concurrency`` connections (``"auto"``: the adaptive limit's
        maximum, 64). Connections are kept in pools of :data:`POOL_SIZE`: a larger number adds pools and keeps
        the warm connections it has. The bulk runner and the adaptive limit (never above the connections), not
        the pools, bound how many requests are in flight; httpx opens a connection only when a request needs
        one, so the connections open follow the limit in use, not the pools' size."""
        concurrency = self.limits.policy.maximum if str(concurrency).strip().lower() == _limits.AUTO \
            else max(1, int(concurrency))
        if concurrency > self._max_connections:
            self._max_connections = concurrency
            self.limits.set_ceiling(concurrency)
            for key, pools in list(self._pools.items()):
                if pools.own:  # the toolkit's own pools grow in place
                    pools.grow(concurrency)
                else:  # one client of a caller's transport: made anew at the new size
                    del self._pools[key]
                    await self._close(pools)

    async def _close(self, pools: _Pools) -> None:
        current = asyncio.get_running_loop()
        loop = pools.loop()
        for client in pools.made():
            if loop is current:
                await client.aclose()
            elif loop is not None and loop.is_running() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(client.aclose(), loop)

    async def aclose(self) -> None:
        """Close the connections of this event loop; those of other loops are closed on their loop."""
        for key, pools in list(self._pools.items()):
            del self._pools[key]
            await self._close(pools)

    # -- requests ---------------------------------------------------------------------------------------
    def url_for(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    async def _send(self, method: str, url: str, params: Any, headers: Mapping[str, str] | None,
                    body: BodyFactory | None, plain: Mapping[str, Any], timeout: float | None, stream: bool
                    ) -> "tuple[httpx.Response | _Failure, int | None]":
        """Build and send one attempt. Secrets (auth headers, form values) live only in this frame, which
        has returned before any error is raised."""
        send_headers = dict(headers or {})
        for extra in self.attempt_headers:
            send_headers.update(extra())
        generation = None
        if plain.get("authenticate") and self.auth is not None:
            outside = _limits.ungated()  # the token fetch takes no slot: the requests waiting for it hold none
            try:
                auth_headers, generation = await self.auth.headers(self)
            finally:
                _limits.regated(outside)
            send_headers.update(auth_headers)
        kwargs: dict[str, Any] = dict(body()) if body is not None else \
            {k: v for k, v in plain.items() if k in ("json", "data", "content", "files") and v is not None}
        permit, index = None, -1
        try:
            pools = self._loop_pools()
            request = pools.client(0).build_request(method, url, params=params, headers=send_headers, **kwargs,
                                                    **({"timeout": timeout} if timeout is not None else {}))
            permit = await self.limits.enter(request.url.host, self._sleep)
            self.requests_sent += 1
            started, clock, worked = time.time(), time.perf_counter(), time.thread_time()
            index = pools.take()
            response = await pools.client(index).send(request, stream=stream)
            rtt = time.perf_counter() - clock
            _answered(permit, request, response, rtt, self.retry.retry_after_cap,
                      (time.thread_time() - worked) / rtt if rtt > 0 else 0.0, pools.fresh(response))
            if stream and not response.is_closed:  # the body keeps its slot and connection until read or closed
                response.stream = _Releasing(response.stream, permit if permit.slot else None, pools, index)
                index = -1
                if permit.slot:
                    permit = None
            if _observers:
                _tell(self.service, request, response, started, time.perf_counter() - clock, stream)
            if not stream:
                # the body is read and the stream closed; httpx's stream object still points back at the
                # response (a reference cycle), so every answer would wait for the cyclic garbage collector —
                # a paged pull of large pages then holds a dozen pages at once. Cut the cycle.
                response.stream = httpx.ByteStream(b"")
            return response, generation
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            problem = _tls.tls_failure(exc)
            if problem is not None:  # the certificate was refused (or TLS failed): repeating will not help
                return _Failure("fatal", "CertificateError" if isinstance(problem, ssl.SSLCertVerificationError)
                                else "TLSError", await self._tls_words(url, problem)), generation
            return _Failure("unsent", type(exc).__name__), generation
        except httpx.ProxyError as exc:  # the proxy would not open a tunnel: the request did not leave
            detail = str(exc)[:120]
            return _Failure("fatal" if detail[:3] in ("403", "407") else "unsent", "ProxyError",
                            _tls.proxy_problem(url, self.network.proxy_for(url), detail)), generation
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            if permit is not None:  # no answer (a timeout, a broken connection): the host's limit backs off
                permit.limit.lost(permit)
            return _Failure("lost", type(exc).__name__), generation
        except httpx.HTTPError as exc:  # anything else httpx may raise (invalid URL, decoding …)
            return _Failure("fatal", type(exc).__name__), generation
        finally:
            if index >= 0:
                pools.give(index)
            if permit is not None:
                permit.limit.release(permit)
            del kwargs, send_headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        files: Mapping[str, Any] | None = None,
        body: BodyFactory | None = None,
        idempotent: bool | None = None,
        authenticate: bool = True,
        allow: Iterable[int] = (),
        hints: Mapping[int, str] | None = None,
        timeout: float | None = None,
        what: str | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send one request with the retry policy; see the class docstring.

        ``body`` is a callable returning keyword arguments (``content``/``files``/``data``/``json``) made
        anew for every attempt, so a body read from a file can be replayed after a retry, and so secrets
        in a form stay wrapped until the request is built. ``what`` is a plain description used in
        messages ("fetch the photo"). ``stream=True`` returns the response with its body unread (the
        caller reads it and closes it).
        """
        method = method.upper()
        url = self.url_for(path)
        retryable = (method in IDEMPOTENT_METHODS) if idempotent is None else idempotent
        allowed = set(allow)
        policy = self.retry
        plain = {"json": json, "data": data, "content": content, "files": files, "authenticate": authenticate}
        refreshed = False
        attempt = 0
        arrived = False  # whether an earlier attempt may have reached the service (travels on the error)
        deadline = self.timeouts.deadline()
        while True:
            attempt += 1
            started = time.perf_counter()
            outcome, generation = await self._send(method, url, params, headers, body, plain,
                                                   self.timeouts.for_attempt(deadline, timeout), stream)
            if isinstance(outcome, _Failure):
                may_repeat = outcome.kind == "unsent" or (outcome.kind == "lost" and retryable)
                if may_repeat and attempt < policy.attempts and self.timeouts.in_time(deadline):
                    arrived = arrived or outcome.kind == "lost"
                    await self.pause(method, url, attempt, None, outcome.name)
                    continue
                kind = "lost" if arrived and outcome.kind in ("unsent", "fatal") else outcome.kind
                raise self._transport_error(outcome.name, method, url, what, attempt, kind,
                                            out_of_time=not self.timeouts.in_time(deadline),
                                            words=outcome.words) from None
            response = outcome
            status = response.status_code
            if log.isEnabledFor(logging.DEBUG):  # the filter redacts the rendered line
                log.debug("%s %s %s -> %s in %.0f ms (attempt %d)", service_name(self.service), method,
                          response.request.url, status, (time.perf_counter() - started) * 1000, attempt)
            if status == 401 and authenticate and self.auth is not None and not refreshed \
                    and status not in allowed and getattr(self.auth, "renewable", True):
                refreshed = True
                await response.aclose()
                await self.auth.invalidate(self, generation or 0)
                attempt -= 1  # a token renewal is not a retry
                continue
            if status in policy.statuses and status not in allowed and attempt < policy.attempts \
                    and (retryable or status in policy.safe_for_post) and self.timeouts.in_time(deadline):
                retry_after = parse_retry_after(response.headers.get("retry-after")) \
                    if status in (429, 503) else None
                arrived = arrived or status not in (429, 503)
                await response.aclose()
                await self.pause(method, url, attempt, retry_after, f"HTTP {status}")
                continue
            if status < 400 or status in allowed:
                return response
            await response.aread()
            await response.aclose()
            error = self.error_for(response, what=what, hints=hints)
            if arrived and isinstance(error, APIError):
                error.delivery = MAYBE_DELIVERED
            raise error from None

    async def pause(self, method: str, url: str, attempt: int, retry_after: float | None, reason: str) -> None:
        """Wait before attempt ``attempt + 1`` as the retry policy says (``Retry-After`` honoured), with one
        log line. The one backoff of the toolkit: a service that repeats a request itself — after checking
        something only it knows, e.g. whether a lost POST was stored — waits here too."""
        delay = self.retry.delay(attempt, retry_after)
        self.limits.sleeping(delay)
        log.debug("%s %s %s: %s, retrying in %.2f s (attempt %d of %d)", service_name(self.service), method,
                  redact(url), reason, delay, attempt + 1, self.retry.attempts)
        await self._sleep(delay)

    async def _tls_words(self, url: str, problem: Any) -> tuple[str, str]:
        """(what happened, what to do) for a TLS failure reaching ``url``, naming the refused certificate
        (read by a second handshake that does not check it; see :mod:`toolkit.core.tls`)."""
        cert = None
        if isinstance(problem, ssl.SSLCertVerificationError):
            cert = await asyncio.to_thread(_tls.refused_certificate, url, self.network.proxy_for(url))
        return _tls.certificate_problem(url, problem, self.network, cert)

    def _transport_error(self, name: str, method: str, url: str, what: str | None,
                         attempts: int = 1, kind_of: str = "lost", out_of_time: bool = False,
                         words: "tuple[str, str] | None" = None) -> TransportError:
        kind = {
            "ConnectError": "could not connect to the service",
            "ConnectTimeout": "timed out connecting to the service",
            "ReadTimeout": "the service did not answer in time",
            "WriteTimeout": "timed out sending the request",
            "PoolTimeout": "too many requests were waiting for a free connection",
            "RemoteProtocolError": "the service closed the connection before answering completely",
            "ReadError": "the connection broke while reading the answer",
            "WriteError": "the connection broke while sending the request",
            "UnsupportedProtocol": "the address is not an http(s) URL",
            "InvalidURL": "the address is not a valid URL",
        }.get(name, "the request failed before an answer arrived")
        prefix = f"could not {what}: " if what else ""
        hint = None
        if out_of_time and "Timeout" in name and self.timeouts.total is not None:
            kind = (f"no answer within {self.timeouts.total:g} s — the service took the connection but did not "
                    "answer")
            hint = ("The service is not answering: try again later. If it is only slow, give the connection a "
                    "longer bound, e.g. timeouts=Timeouts(total=300).")
        elif "Timeout" in name:
            hint = "The service is slow or unreachable: try again later, lower the concurrency or raise the timeout."
        elif name == "ConnectError" and _is_loopback(url):
            hint = ("Nothing answers at this local address: if it is the toolkit's sandbox, it was stopped "
                    "(a notebook's last cell or sb.stop()) — start it again with toolkit.sandbox.start() and "
                    "connect again.")
        elif name == "ConnectError" and self._transport is None:
            hint = _tls.proxy_hint(url, self.network)
        if words is not None:  # a TLS or proxy failure, worded by toolkit.core.tls
            kind, hint = words
        delivery = {"unsent": UNSENT, "fatal": FATAL}.get(kind_of, MAYBE_DELIVERED)
        return TransportError(f"{prefix}{kind} (after {attempts} attempt{'s' if attempts != 1 else ''})",
                              service=self.service, method=method, url=url, hint=hint, delivery=delivery,
                              reason=name)

    def error_for(self, response: httpx.Response, *, what: str | None = None,
                  hints: Mapping[int, str] | None = None, code: str | None = None) -> ToolkitError:
        """The toolkit exception for an error response (body parsed, message redacted)."""
        status = response.status_code
        cls = error_class_for_status(status)
        detail = self.error_parser(response)
        reason = response.reason_phrase or "error"
        text = f"could not {what}" if what else f"request failed ({reason})"
        if detail:
            text += f": {detail}"
        hint = (hints or {}).get(status) or self.hints.get(status)
        return cls(text, service=self.service, method=response.request.method, url=str(response.request.url),
                   status=status, hint=hint, details=detail, code=code)

    # -- paging -----------------------------------------------------------------------------------------
    async def pages(self, path: str, paging: "Paging", *, params: Mapping[str, Any] | None = None,
                    headers: Mapping[str, str] | None = None, what: str | None = None,
                    allow: Iterable[int] = (), hints: Mapping[int, str] | None = None,
                    max_pages: int | None = None) -> AsyncIterator[httpx.Response]:
        """GET page after page (an async generator of responses, one page in memory at a time)."""
        query: dict[str, Any] | None = paging.first(dict(params or {}))
        url = self.url_for(path)
        count = 0
        while query is not None:
            response = await self.request("GET", url, params=query or None, headers=headers, what=what,
                                          allow=allow, hints=hints)
            count += 1
            yield response
            if max_pages is not None and count >= max_pages:
                return
            step = paging.next(response, query)
            if step is None:
                return
            before = (url, query)
            if isinstance(step, tuple):  # an absolute next URL: followed only on the same origin
                next_url, fallback = step
                if _same_origin(next_url, self.url_for(path)):
                    url, query = next_url, {}
                else:  # never send our credentials to another host: use the cursor on our own URL
                    url, query = self.url_for(path), fallback
            else:
                query = step
            if (url, query) == before:  # the service pointed at the page it just gave: stop, do not loop
                return

    # -- downloads --------------------------------------------------------------------------------------
    async def download(self, path: str, folder: "str | os.PathLike[str]", *, params: Mapping[str, Any] | None = None,
                       headers: Mapping[str, str] | None = None, filename: str | None = None,
                       default_name: str = "download", overwrite: bool = False,
                       name: Callable[[str], str] | None = None,
                       progress: Callable[[int], None] | None = None, chunk_size: int = 1 << 18,
                       in_memory_limit: int = 1 << 20,
                       what: str = "download the file", hints: Mapping[int, str] | None = None) -> "Download":
        """Stream one GET to ``folder``: written to a temporary file next to the target and renamed when
        complete, so a body cut mid-way leaves no partial file under the final name. The file name is
        ``filename``, else the ``Content-Disposition`` one, cleaned so it stays inside ``folder``; ``name``,
        when given, is asked for the final name with the cleaned one as soon as the headers are in (before
        the body: a caller that keeps names apart reserves it there; it is cleaned again). An existing file
        is kept (and its body not read) unless ``overwrite``. Error statuses raise.

        A body that says its length and is at most ``in_memory_limit`` bytes (1 MiB) is read whole and
        written, renamed and closed in one step on a worker thread; a larger or unknown one is streamed in
        ``chunk_size`` pieces. Either way the event loop never waits for the disk."""
        root = Path(folder).expanduser()
        if root not in self._folders:  # made once per connection, not stat'ed again for every file
            root.mkdir(parents=True, exist_ok=True)
            self._folders.add(root)
        attempt = 0
        while True:
            attempt += 1
            response = await self.request("GET", path, params=params, headers=headers, what=what, hints=hints,
                                          stream=True)
            tmp: Path | None = None
            try:
                suggested = filename or content_disposition_filename(response.headers.get("content-disposition"))
                clean = safe_filename(suggested or default_name, default_name)
                target = inside(root, safe_filename(name(clean), default_name) if name is not None else clean)
                if not overwrite and target.exists():
                    return Download(target, target.name, target.stat().st_size, response.status_code, skipped=True,
                                    suggested=clean)
                expected = response.headers.get("content-length")
                size = int(expected) if expected is not None and expected.isdigit() \
                    and "content-encoding" not in response.headers else None
                if size is not None and size <= in_memory_limit:
                    body = await response.aread()
                    if len(body) != size:
                        raise httpx.RemoteProtocolError("incomplete body")
                    # one hop to a worker thread for the whole file: create, write, rename
                    await asyncio.to_thread(_write_file, root, target, body)
                    if progress is not None:
                        progress(size)
                    return Download(target, target.name, size, response.status_code, suggested=clean)
                # creating and renaming a file can take a millisecond on a busy disk: done on a worker thread,
                # so the other downloads in flight go on meanwhile
                fd, tmp_name = await asyncio.to_thread(_temp_file, root, target.name)
                tmp = Path(tmp_name)
                written = 0
                with os.fdopen(fd, "wb") as fh:
                    async for chunk in response.aiter_bytes(chunk_size):
                        fh.write(chunk)
                        written += len(chunk)
                        if progress is not None:
                            progress(len(chunk))
                if size is not None and size != written:
                    raise httpx.RemoteProtocolError("incomplete body")
                await asyncio.to_thread(os.replace, tmp, target)
                tmp = None
                return Download(target, target.name, written, response.status_code, suggested=clean)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                name_ = type(exc).__name__
            finally:
                await response.aclose()
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
            if attempt < self.retry.attempts:
                await self.pause("GET", self.url_for(path), attempt, None, name_)
                continue
            raise self._transport_error(name_, "GET", self.url_for(path), what, attempt) from None

    def __repr__(self) -> str:
        return f"<HttpClient {service_name(self.service)} {redact(self.base_url)} pool={self._max_connections}>"


@dataclass(frozen=True)
class Download:
    """The outcome of :meth:`HttpClient.download`."""

    path: Path
    filename: str
    bytes: int
    status: int
    skipped: bool = False
    suggested: str = ""  #: the service's name for the file, cleaned (``filename`` differs when ``name`` chose)


def _temp_file(root: Path, name: str) -> tuple[int, str]:
    """A new temporary file next to ``root / name`` (core :func:`~toolkit.core.files.temporary`)."""
    return temporary(root, name)


def _write_file(root: Path, target: Path, body: bytes) -> None:
    """``body`` into a temporary file next to ``target``, renamed to ``target`` when written (removed on
    failure: nothing under either name is left half-written)."""
    fd, name = _temp_file(root, target.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def _is_loopback(url: str) -> bool:
    host = (httpx.URL(url).host if url.startswith(("http://", "https://")) else "") or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _same_origin(a: str, b: str) -> bool:
    ua, ub = httpx.URL(a), httpx.URL(b)
    return (ua.scheme, ua.host, ua.port) == (ub.scheme, ub.host, ub.port)


# -- paging strategies ----------------------------------------------------------------------------------
class Paging:
    """How to get from one page to the next: :meth:`first` gives the first query, :meth:`next` the next
    one (a dict of query parameters, or ``(absolute_url, query)``), or ``None`` after the last page."""

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def next(self, response: httpx.Response, params: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class CursorPaging(Paging):
    """Cursor paging. The next page is the ``Link: <…>; rel="next"`` URL when there is one; otherwise the
    cursor from header ``header`` sent as query parameter ``param``. With ``link_means_more`` a page
    without a ``Link`` is the last one. Paging also stops when the cursor is missing or unchanged, or
    when ``is_empty(response)`` says the page held nothing. ``drop`` lists query parameters the first
    request had that a cursor request must not repeat (e.g. ``after``)."""

    header: str | None = "Next"
    param: str = "next"
    link_means_more: bool = True
    is_empty: Callable[[httpx.Response], bool] | None = None
    drop: tuple[str, ...] = ()
    last_cursor: str | None = None

    def next(self, response: httpx.Response, params: dict[str, Any]) -> Any:
        cursor = response.headers.get(self.header) if self.header else None
        if cursor:
            self.last_cursor = cursor
        link = response.links.get("next", {}).get("url") if "link" in response.headers else None
        if self.is_empty is not None and self.is_empty(response):
            return None
        query = None
        if cursor and cursor != params.get(self.param):
            query = {k: v for k, v in params.items() if k not in self.drop}
            query[self.param] = cursor
        if link:
            return (str(response.request.url.join(link)), query)
        if self.link_means_more:
            return None
        return query


@dataclass
class PagePaging(Paging):
    """``page`` / ``per_page`` paging: stops after a page with fewer than ``size`` items (``count`` says
    how many a response holds) or when ``limit`` items have been fetched."""

    count: Callable[[httpx.Response], int]
    size: int = 100
    page_param: str = "page"
    size_param: str = "per_page"
    start: int = 1
    limit: int | None = None
    _seen: int = 0

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        self._seen = 0
        size = self.size if self.limit is None else max(1, min(self.size, self.limit))
        return {**params, self.page_param: self.start, self.size_param: size}

    def next(self, response: httpx.Response, params: dict[str, Any]) -> Any:
        n = self.count(response)
        self._seen += n
        if n < int(params[self.size_param]) or n == 0 or (self.limit is not None and self._seen >= self.limit):
            return None
        return {**params, self.page_param: int(params[self.page_param]) + 1}

