"""Authentication flows shared by every service client.

Every flow is a :class:`TokenAuth`: :class:`~toolkit.core.http.HttpClient` asks it for headers before each
attempt and tells it when the service answered 401. What the base class guarantees, for every flow:

* **lazy and single flight** — the credential is fetched on first use; N concurrent requests share one
  fetch (one token request, not N);
* **renewal before expiry** — a token with a lifetime is renewed ``leeway`` seconds before it ends, so no
  request goes out with a token known to be expired;
* **once on 401** — a 401 on a call renews the credential once (per token generation) and repeats the call;
* **a refused credential is final** — when the token/login endpoint refuses the credentials (400/401/403),
  the refusal is remembered and raised again at once for every later request of this connection, without
  asking the service again (no account-lock risk: a bulk run of 500 items makes one token request);
* **a failed fetch is shared for a moment** — when the token endpoint cannot be reached, the failure is
  raised again for ``failure_ttl`` seconds instead of being retried by every item of a bulk run.

Flows:

* :class:`ClientCredentials` — OAuth2 client credentials, form POST (Uddata+).
* :class:`RefreshTokenGrant` — OAuth2 refresh-token grant with the secrets in a POST form (never in a URL);
  a rotated refresh token in the answer is kept for the next renewal (Mediaflow).
* :class:`TicketAuth` — a login ticket (Boknett's TGT) fetched by a form POST, read from a response header,
  renewed before its lifetime.
* :class:`DateHeader` — headers computed again on every attempt (Boknett's RFC 1123 ``Date``), learning the
  offset of the server's clock from its own ``Date`` header.

Secrets stay :class:`~toolkit.core.credentials.Secret` objects until the request body is built (inside a
body factory), so a traceback that shows local variables never shows them.

This module does not import the HTTP layer: a flow receives the connection (``http``) as an argument and
calls ``http.request(...)`` on it.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any, Callable, Mapping

from .credentials import Secret
from .errors import APIError, ToolkitError, ValidationError
from .redact import get_logger, register_secret

__all__ = ["TokenAuth", "BearerToken", "ClientCredentials", "RefreshTokenGrant", "TicketAuth", "DateHeader"]

log = get_logger("toolkit.auth")

#: statuses of a token/login endpoint that mean "these credentials are refused" (final for the connection)
REFUSED = frozenset({400, 401, 403})


def _secret(value: "str | Secret | None") -> Secret:
    return value if isinstance(value, Secret) else Secret(value or "")


class TokenAuth:
    """Base class of credential flows: subclasses implement :meth:`fetch_headers`.

    See the module docstring for what every flow guarantees. ``leeway`` (seconds before the announced
    expiry at which to renew) and ``failure_ttl`` can be set per instance.
    """

    leeway: float = 60.0
    failure_ttl: float = 10.0
    #: whether a 401 on a call can be cured by fetching the credential again
    renewable: bool = True

    def __init__(self) -> None:
        self._headers: dict[str, str] | None = None
        self._expires_at = 0.0
        self._generation = 0
        self._inflight: dict[int, asyncio.Future] = {}  # event loop id -> the fetch in flight there
        self._refused: ToolkitError | None = None
        self._failed: tuple[float, ToolkitError] | None = None
        self.fetches = 0  #: how many times the credential was fetched (tests and diagnostics)

    async def fetch_headers(self, http: Any) -> tuple[dict[str, str], float | None]:
        """Return (headers to send, lifetime in seconds or None for no known expiry)."""
        raise NotImplementedError

    # -- state ------------------------------------------------------------------------------------------
    def _valid(self) -> bool:
        return self._headers is not None and not (self._expires_at and time.monotonic() >= self._expires_at)

    def reset(self) -> None:
        """Forget the credential and any remembered refusal (e.g. after fixing a secret)."""
        self._headers, self._expires_at, self._refused, self._failed = None, 0.0, None, None

    @property
    def refused(self) -> ToolkitError | None:
        """The error with which the service refused these credentials, if it did."""
        return self._refused

    # -- the interface HttpClient uses -------------------------------------------------------------------
    async def headers(self, http: Any) -> tuple[dict[str, str], int]:
        """Headers for the next attempt and the generation they belong to."""
        if not self._valid():
            await self._renew_shared(http, None)
        assert self._headers is not None
        return self._headers, self._generation

    async def invalidate(self, http: Any, generation: int) -> None:
        """The service rejected the credential of ``generation``: renew it (once per generation)."""
        if generation == self._generation:
            await self._renew_shared(http, generation)

    async def _renew_shared(self, http: Any, generation: int | None) -> None:
        self._raise_remembered()
        loop_id = id(asyncio.get_running_loop())
        pending = self._inflight.get(loop_id)
        if pending is None:
            if generation is None and self._valid():
                return
            if generation is not None and generation != self._generation:
                return  # someone else renewed it meanwhile
            pending = asyncio.get_running_loop().create_future()
            self._inflight[loop_id] = pending
            try:
                await self._renew(http)
            except BaseException as exc:
                if isinstance(exc, ToolkitError):
                    self._remember(exc)
                pending.set_exception(exc)
                pending.exception()  # mark retrieved: waiters may be none
                raise
            else:
                pending.set_result(None)
            finally:
                self._inflight.pop(loop_id, None)
            return
        await asyncio.shield(pending)

    async def _renew(self, http: Any) -> None:
        self.fetches += 1
        asked = time.monotonic()  # the lifetime counts from when we asked, not from when the answer came
        headers, lifetime = await self.fetch_headers(http)
        for value in headers.values():
            register_secret(value)
            register_secret(value.split(" ", 1)[-1])
        self._headers = dict(headers)
        self._expires_at = asked + max(lifetime / 2, lifetime - self.leeway) if lifetime else 0.0
        self._generation += 1
        self._failed = None

    def _remember(self, exc: ToolkitError) -> None:
        if isinstance(exc, APIError) and exc.status in REFUSED:
            self._refused = exc
        else:
            self._failed = (time.monotonic(), exc)

    def _raise_remembered(self) -> None:
        if self._refused is not None:
            raise _again(self._refused, "the service refused these credentials earlier in this session; "
                                        "nothing more was sent")
        if self._failed is not None:
            when, exc = self._failed
            if time.monotonic() - when < self.failure_ttl:
                raise _again(exc, f"the last attempt failed {time.monotonic() - when:.0f} s ago")
            self._failed = None

    def __repr__(self) -> str:
        state = "refused" if self._refused else ("set" if self._headers else "not fetched")
        return f"<{type(self).__name__} credential={state}>"


def _again(exc: ToolkitError, note: str) -> ToolkitError:
    """A fresh copy of a remembered error (same class, service, status and hint)."""
    copy = type(exc).__new__(type(exc))
    copy.__dict__.update(exc.__dict__)
    copy.args = exc.args
    copy.remembered = note  # type: ignore[attr-defined]
    return copy


def _json_token(response: Any, service: str, url: str, hint: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping) or not body.get("access_token"):
        raise ValidationError("the token service answered without an access_token", service=service, url=url,
                              hint=hint)
    return dict(body)


def _lifetime(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _bearer(body: Mapping[str, Any]) -> dict[str, str]:
    token = str(body["access_token"])
    Secret(token)  # registers it for redaction
    scheme = str(body.get("token_type") or "Bearer")
    scheme = "Bearer" if scheme.lower() == "bearer" else scheme
    return {"Authorization": f"{scheme} {token}"}


class BearerToken(TokenAuth):
    """A fixed access token issued elsewhere (e.g. a Livingdocs project token): ``Authorization: Bearer``.
    Nothing can renew it, so a 401 is final (no second attempt)."""

    renewable = False

    def __init__(self, token: "str | Secret", scheme: str = "Bearer") -> None:
        super().__init__()
        self._token = _secret(token)
        self.scheme = scheme

    async def fetch_headers(self, http: Any) -> tuple[dict[str, str], float | None]:
        return {"Authorization": f"{self.scheme} {self._token.reveal()}"}, None


class ClientCredentials(TokenAuth):
    """OAuth2 client credentials: ``POST {token_url}`` form ``grant_type=client_credentials&client_id&
    client_secret`` → ``Authorization: Bearer …`` for ``expires_in`` seconds."""

    def __init__(self, token_url: str, client_id: str, client_secret: "str | Secret", *,
                 scope: str | None = None, hints: Mapping[int, str] | None = None) -> None:
        super().__init__()
        self.token_url = token_url
        self.client_id = str(client_id)
        self._secret = _secret(client_secret)
        self.scope = scope
        self.hints = dict(hints or {})

    async def fetch_headers(self, http: Any) -> tuple[dict[str, str], float | None]:
        def body() -> dict[str, Any]:
            form = {"grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": self._secret.reveal()}
            if self.scope:
                form["scope"] = self.scope
            return {"data": form}

        response = await http.request("POST", self.token_url, authenticate=False, idempotent=True, body=body,
                                      what="get an access token", hints=self.hints)
        token = _json_token(response, http.service, self.token_url, "Check the token URL (token_url=…).")
        return _bearer(token), _lifetime(token.get("expires_in"))


class RefreshTokenGrant(TokenAuth):
    """OAuth2 refresh-token grant: ``POST {token_url}`` form ``grant_type=refresh_token&client_id&
    client_secret&refresh_token`` (the secrets in the form body, never in a URL). When the answer carries
    a new ``refresh_token`` (rotation), it replaces the old one for the next renewal and ``on_rotate`` is
    called with it (a :class:`Secret`)."""

    def __init__(self, token_url: str, client_id: str, client_secret: "str | Secret",
                 refresh_token: "str | Secret", *, hints: Mapping[int, str] | None = None,
                 on_rotate: Callable[[Secret], None] | None = None) -> None:
        super().__init__()
        self.token_url = token_url
        self.client_id = str(client_id)
        self._secret = _secret(client_secret)
        self._refresh = _secret(refresh_token)
        self.hints = dict(hints or {})
        self.on_rotate = on_rotate
        self.rotations = 0

    @property
    def refresh_token(self) -> Secret:
        return self._refresh

    async def fetch_headers(self, http: Any) -> tuple[dict[str, str], float | None]:
        def body() -> dict[str, Any]:
            return {"data": {"grant_type": "refresh_token", "client_id": self.client_id,
                             "client_secret": self._secret.reveal(), "refresh_token": self._refresh.reveal()}}

        response = await http.request("POST", self.token_url, authenticate=False, idempotent=True, body=body,
                                      what="get an access token", hints=self.hints)
        token = _json_token(response, http.service, self.token_url, "Check the base URL of the service.")
        rotated = token.get("refresh_token")
        if rotated and rotated != self._refresh.reveal():
            self._refresh = Secret(str(rotated))
            self.rotations += 1
            if self.on_rotate is not None:
                self.on_rotate(self._refresh)
        return _bearer(token), _lifetime(token.get("expires_in"))


class TicketAuth(TokenAuth):
    """A login ticket: ``POST {login_url}`` form ``username&password`` → ``201`` with the ticket in the
    response header ``ticket_header``; calls carry ``Authorization: {scheme} {ticket}``. The ticket is
    renewed ``renew_after`` seconds after it was issued (before its ``lifetime``)."""

    def __init__(self, login_url: str, username: str, password: "str | Secret", *, ticket_header: str,
                 scheme: str, lifetime: float, renew_after: float | None = None,
                 hints: Mapping[int, str] | None = None, expected_status: int = 201) -> None:
        super().__init__()
        self.login_url = login_url
        self.username = str(username)
        self._password = _secret(password)
        self.ticket_header = ticket_header
        self.scheme = scheme
        self.lifetime = float(lifetime)
        self.renew_after = float(renew_after) if renew_after is not None else self.lifetime * 110 / 120
        self.hints = dict(hints or {})
        self.expected_status = expected_status

    async def fetch_headers(self, http: Any) -> tuple[dict[str, str], float | None]:
        def body() -> dict[str, Any]:
            return {"data": {"username": self.username, "password": self._password.reveal()}}

        response = await http.request("POST", self.login_url, authenticate=False, idempotent=True, body=body,
                                      what="log in", hints=self.hints)
        ticket = response.headers.get(self.ticket_header)
        if response.status_code != self.expected_status or not ticket:
            raise ValidationError(f"the login service answered {response.status_code} without a ticket "
                                  f"({self.ticket_header})", service=http.service, url=self.login_url,
                                  hint="Check the login URL (login_url=…).")
        Secret(ticket)
        self.leeway = max(0.0, self.lifetime - self.renew_after)
        return {"Authorization": f"{self.scheme} {ticket}"}, self.lifetime


class DateHeader:
    """Headers computed on every attempt: an RFC 1123 ``Date`` from this machine's clock plus the learnt
    ``offset`` of the server's clock (seconds). :meth:`learn` takes a server's ``Date`` header."""

    def __init__(self, name: str = "Date", suffix: str = "GMT") -> None:
        self.name = name
        self.suffix = suffix
        self.offset = 0.0

    def __call__(self) -> dict[str, str]:
        text = email.utils.formatdate(time.time() + self.offset, usegmt=True)
        if self.suffix != "GMT":
            text = text[:-3] + self.suffix
        return {self.name: text}

    def learn(self, server_date: str | None) -> float | None:
        """Set the offset from a server's ``Date`` header; returns the new offset, or None if unreadable."""
        if not server_date:
            return None
        try:
            when = email.utils.parsedate_to_datetime(server_date.replace(" UTC", " GMT"))
        except (TypeError, ValueError):
            return None
        self.offset = when.timestamp() - time.time()
        return self.offset
