"""HTTP layer: the only module of the toolkit that imports httpx.

* :class:`HttpClient` wraps one ``httpx.AsyncClient`` per service connection: explicit timeouts, a
  connection pool sized to the concurrency in use (:meth:`HttpClient.ensure_pool`), one retry policy,
  token refresh on 401, redacted DEBUG logging, and translation of every httpx exception and every
  error status into the toolkit's own exceptions (:mod:`toolkit.core.errors`).
* :class:`RetryPolicy` — the one retry policy: idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) and
  token calls only; transient = connect errors, timeouts, 408/429/500/502/503/504; 5 attempts, 0.5 s
  base, full jitter, at most 30 s a sleep, ``Retry-After`` honoured up to 60 s. A non-idempotent POST is
  repeated only when it certainly did not reach the service (connection refused, pool timeout) or the
  service said so (429).
* :class:`TokenAuth` — base for bearer-style auth that fetches a token lazily and renews it once on 401.
"""

from __future__ import annotations

import asyncio
import email.utils
import json as _json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping

import httpx

from .errors import ToolkitError, TransportError, error_class_for_status, service_name
from .redact import get_logger, redact, register_secret

__all__ = ["HttpClient", "RetryPolicy", "TokenAuth", "Timeouts", "Response", "MockTransport", "ASGITransport",
           "redact", "parse_error_body"]

log = get_logger("toolkit.http")

Response = httpx.Response
#: transport classes re-exported for tests and the sandbox (the seam of DESIGN.md)
MockTransport = httpx.MockTransport
ASGITransport = httpx.ASGITransport
HTTPResponse = httpx.Response

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 120.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


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


class TokenAuth:
    """Base class of token-based auth: subclasses implement :meth:`fetch_headers`.

    The token is fetched lazily (on the first request), shared by concurrent requests (one fetch at a
    time), renewed when it is about to expire, and renewed once when the service answers 401.
    """

    #: renew this many seconds before the announced expiry
    leeway: float = 60.0

    def __init__(self) -> None:
        self._headers: dict[str, str] | None = None
        self._expires_at: float = 0.0
        self._lock: asyncio.Lock | None = None
        self._generation = 0

    async def fetch_headers(self, http: "HttpClient") -> tuple[dict[str, str], float | None]:
        """Return (headers to send, lifetime in seconds or None)."""
        raise NotImplementedError

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def headers(self, http: "HttpClient") -> tuple[dict[str, str], int]:
        if self._headers is None or (self._expires_at and time.monotonic() >= self._expires_at):
            async with self._get_lock():
                if self._headers is None or (self._expires_at and time.monotonic() >= self._expires_at):
                    await self._renew(http)
        assert self._headers is not None
        return self._headers, self._generation

    async def _renew(self, http: "HttpClient") -> None:
        headers, lifetime = await self.fetch_headers(http)
        for value in headers.values():
            register_secret(value)
            register_secret(value.split(" ", 1)[-1])
        self._headers = headers
        self._expires_at = time.monotonic() + max(1.0, lifetime - self.leeway) if lifetime else 0.0
        self._generation += 1

    async def invalidate(self, http: "HttpClient", generation: int) -> None:
        """The service rejected the token of ``generation``: fetch a new one (once per generation)."""
        async with self._get_lock():
            if self._generation == generation:
                await self._renew(http)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} token={'set' if self._headers else 'not fetched'}>"


BodyFactory = Callable[[], Mapping[str, Any]]


class HttpClient:
    """One service connection. Only this class talks to httpx.

    ``request()`` returns the response when its status is expected (2xx, or one listed in ``allow``),
    and raises the toolkit's exception for any other status or a transport failure.
    """

    def __init__(
        self,
        service: str,
        base_url: str,
        *,
        auth: TokenAuth | None = None,
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        transport: Any = None,
        hints: Mapping[int, str] | None = None,
        error_parser: Callable[[httpx.Response], str] = parse_error_body,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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
        self._basic = basic_auth
        if basic_auth:
            register_secret(basic_auth[1])
        self._transport = transport
        self._max_connections = max(1, int(max_connections))
        self._client: httpx.AsyncClient | None = None
        self.requests_sent = 0

    # -- pool -------------------------------------------------------------------------------------------
    @property
    def max_connections(self) -> int:
        return self._max_connections

    def _make_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self._max_connections,
                              max_keepalive_connections=self._max_connections, keepalive_expiry=30.0)
        auth = httpx.BasicAuth(*self._basic) if self._basic else None
        return httpx.AsyncClient(base_url=self.base_url, headers=self._headers, timeout=self.timeouts.to_httpx(),
                                 limits=limits, transport=self._transport, auth=auth, follow_redirects=False,
                                 trust_env=False)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def ensure_pool(self, concurrency: int) -> None:
        """Size the connection pool to ``concurrency`` (call between bulk runs, not during one)."""
        concurrency = max(1, int(concurrency))
        if concurrency != self._max_connections:
            self._max_connections = concurrency
            if self._client is not None:
                old, self._client = self._client, None
                await old.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- requests ---------------------------------------------------------------------------------------
    def url_for(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

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
    ) -> httpx.Response:
        """Send one request with the retry policy; see the class docstring.

        ``body`` is a callable returning keyword arguments (``content``/``files``/``data``/``json``) made
        anew for every attempt, so a body read from a file can be replayed after a retry.
        ``what`` is a plain description used in messages ("fetch the photo").
        """
        method = method.upper()
        url = self.url_for(path)
        retryable = (method in IDEMPOTENT_METHODS) if idempotent is None else idempotent
        allowed = set(allow)
        policy = self.retry
        refreshed_generation: int | None = None
        attempt = 0
        while True:
            attempt += 1
            send_headers = dict(headers or {})
            generation = None
            if authenticate and self.auth is not None:
                auth_headers, generation = await self.auth.headers(self)
                send_headers.update(auth_headers)
            kwargs: dict[str, Any] = {}
            if body is not None:
                kwargs.update(body())
            else:
                for key, value in (("json", json), ("data", data), ("content", content), ("files", files)):
                    if value is not None:
                        kwargs[key] = value
            started = time.perf_counter()
            try:
                extra = {"timeout": timeout} if timeout is not None else {}
                self.requests_sent += 1
                response = await self.client.request(method, url, params=params, headers=send_headers,
                                                     **kwargs, **extra)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # never reached the service: safe to repeat for every method
                if attempt < policy.attempts:
                    await self._pause(method, url, attempt, None, type(exc).__name__)
                    continue
                raise self._transport_error(exc, method, url, what, attempt) from None
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                if retryable and attempt < policy.attempts:
                    await self._pause(method, url, attempt, None, type(exc).__name__)
                    continue
                raise self._transport_error(exc, method, url, what, attempt) from None
            except httpx.HTTPError as exc:  # anything else httpx may raise (invalid URL, decoding …)
                raise self._transport_error(exc, method, url, what, attempt) from None
            status = response.status_code
            if log.isEnabledFor(logging.DEBUG):  # the filter redacts the rendered line
                log.debug("%s %s %s -> %s in %.0f ms (attempt %d)", service_name(self.service), method,
                          response.request.url, status, (time.perf_counter() - started) * 1000, attempt)
            if status == 401 and authenticate and self.auth is not None and refreshed_generation is None \
                    and status not in allowed:
                refreshed_generation = generation
                await response.aclose()
                await self.auth.invalidate(self, generation or 0)
                attempt -= 1  # a token renewal is not a retry
                continue
            if status in policy.statuses and status not in allowed and attempt < policy.attempts \
                    and (retryable or status in policy.safe_for_post):
                retry_after = parse_retry_after(response.headers.get("retry-after")) \
                    if status in (429, 503) else None
                await response.aread()
                await self._pause(method, url, attempt, retry_after, f"HTTP {status}")
                continue
            if status < 400 or status in allowed:
                return response
            await response.aread()
            raise self.error_for(response, what=what, hints=hints)

    async def _pause(self, method: str, url: str, attempt: int, retry_after: float | None, reason: str) -> None:
        delay = self.retry.delay(attempt, retry_after)
        log.debug("%s %s %s: %s, retrying in %.2f s (attempt %d of %d)", service_name(self.service), method,
                  redact(url), reason, delay, attempt + 1, self.retry.attempts)
        await self._sleep(delay)

    def _transport_error(self, exc: Exception, method: str, url: str, what: str | None,
                         attempts: int = 1) -> TransportError:
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
        }.get(type(exc).__name__, "the request failed before an answer arrived")
        prefix = f"could not {what}: " if what else ""
        hint = None
        if isinstance(exc, httpx.TimeoutException):
            hint = "The service is slow or unreachable: try again later, lower the concurrency or raise the timeout."
        err = TransportError(f"{prefix}{kind} (after {attempts} attempt{'s' if attempts != 1 else ''})",
                             service=self.service, method=method, url=url, hint=hint)
        err.original_type = type(exc).__name__  # type: ignore[attr-defined]
        return err

    def error_for(self, response: httpx.Response, *, what: str | None = None,
                  hints: Mapping[int, str] | None = None) -> ToolkitError:
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
                   status=status, hint=hint, details=detail)

    def __repr__(self) -> str:
        return f"<HttpClient {service_name(self.service)} {redact(self.base_url)} pool={self._max_connections}>"


class ServiceClient:
    """Base of the async service clients: owns one :class:`HttpClient` as ``self.http`` and closes it
    (``await client.aclose()`` or ``async with``)."""

    http: HttpClient

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> "ServiceClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
