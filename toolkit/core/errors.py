"""One exception tree for the whole toolkit.

Every message is plain, names the service, says what happened and what to do next, and is redacted
(no secret, no full CPR number, no httpx internals).

    ToolkitError
    ├── APIError (status set)
    │   ├── BadRequest (400)   ├── Unauthorized (401)  ├── Forbidden (403)  ├── NotFound (404)
    │   ├── Gone (410)         ├── Conflict (409)      ├── RateLimited (429) └── ServerError (5xx)
    │                                                   └── QuotaExhausted (429: the plan's quota is used up)
    ├── TransportError (no HTTP answer: connection refused/dropped, timeout; ``.delivery`` says whether
    │                   the request may have reached the service)
    ├── JobFailed, JobTimeout (asynchronous jobs)
    └── ValidationError (our own checks before sending; ``.errors`` maps field → messages)
"""

from __future__ import annotations

from typing import Any, Mapping

from .redact import redact

__all__ = [
    "SERVICE_NAMES", "service_name", "ToolkitError", "APIError", "BadRequest", "Unauthorized", "Forbidden",
    "NotFound", "Gone", "Conflict", "RateLimited", "ServerError", "TransportError", "JobFailed",
    "JobTimeout", "ValidationError", "error_class_for_status", "QuotaExhausted", "UNSENT", "MAYBE_DELIVERED",
    "FATAL", "may_have_arrived",
]

#: service → display name; each service package registers its own (:mod:`toolkit.core.registry`)
SERVICE_NAMES: dict[str, str] = {"sandbox": "Sandbox"}


def service_name(service: str | None) -> str:
    if not service:
        return "toolkit"
    if service not in SERVICE_NAMES and service.isidentifier():
        try:  # the package registers its display name when imported
            import importlib

            importlib.import_module(f"toolkit.{service}")
        except Exception:  # noqa: BLE001 - not a service package: use the name as it is
            pass
    return SERVICE_NAMES.get(service, service)


def _redact_details(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): _redact_details(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_details(v) for v in value)
    return value


class ToolkitError(Exception):
    """Base of every error the toolkit raises."""

    default_hint = ""

    def __init__(
        self,
        message: str,
        *,
        service: str | None = None,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        hint: str | None = None,
        details: Any = None,
        code: str | None = None,
    ) -> None:
        self.service = service
        #: the service's own error code where it gives one (e.g. Boknett's ``<code>``), else None
        self.code = code
        self.method = method
        self.url = redact(url) if url else None
        self.status = status
        self.hint = redact(hint if hint is not None else self.default_hint) or None
        self.details = _redact_details(details)
        self.message = redact(message)
        super().__init__(self._compose())

    def _compose(self) -> str:
        text = f"{service_name(self.service)}: {self.message}"
        where = " ".join(x for x in (self.method, self.url) if x)
        if where or self.status:
            parts = [where] if where else []
            if self.status:
                parts.append(f"HTTP {self.status}")
            text += f" [{' → '.join(parts)}]"
        if self.hint:
            text += f"\nWhat to do: {self.hint}"
        return text

    def __str__(self) -> str:
        return redact(super().__str__())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class APIError(ToolkitError):
    """The service answered with an error status. ``delivery`` is :data:`MAYBE_DELIVERED` when an earlier
    attempt of the same request may have reached the service (its answer was lost, or a 500/502/504)
    before the retry that got this answer; else None."""

    default_hint = "Check the request and try again; if it keeps failing, contact the service's support."

    def __init__(self, message: str, *, delivery: str | None = None, **kw: Any) -> None:
        self.delivery = delivery
        super().__init__(message, **kw)


class BadRequest(APIError):
    default_hint = "The service rejected the request as malformed: check the values you passed."


class Unauthorized(APIError):
    default_hint = ("Check the credentials (client id/secret, user name/password or token) and connect again; "
                    "a token may have expired.")


class Forbidden(APIError):
    default_hint = "The credentials are valid but lack the right for this action: ask the service's support for it."


class NotFound(APIError):
    default_hint = "Check the id or number you passed; it does not exist on the service."


class Gone(APIError):
    default_hint = "The link or id has expired: request it again."


class Conflict(APIError):
    default_hint = "The item was changed by someone else: read it again, then repeat your change."


class RateLimited(APIError):
    default_hint = "The service is limiting requests: wait a little, or lower the concurrency, and try again."


class QuotaExhausted(RateLimited):
    """The plan's quota (a daily import limit, say) is used up: waiting minutes does not help."""

    default_hint = "The plan's quota is used up: continue tomorrow, or ask the service for a larger plan."


class ServerError(APIError):
    default_hint = "The service had a problem on its side: try again in a few minutes."


#: :attr:`TransportError.delivery`: the request surely did not leave (connection refused, connect timeout,
#: no free connection) — repeating it cannot store anything twice
UNSENT = "unsent"
#: the request may have reached the service (the connection broke, or no answer came in time)
MAYBE_DELIVERED = "maybe_delivered"
#: the request could not even be built (not an http(s) URL, an invalid URL): not sent, and repeating won't help
FATAL = "fatal"


class TransportError(ToolkitError):
    """No HTTP answer: connection refused or dropped, DNS failure, timeout.

    ``delivery`` is the HTTP layer's own word on whether the request may have reached the service —
    :data:`UNSENT`, :data:`MAYBE_DELIVERED` or :data:`FATAL` — and ``reason`` the kind of failure
    (``"ConnectError"``, ``"ReadTimeout"`` …). Code that decides whether to send again reads these, never
    class names."""

    default_hint = ("Check the address and your network connection; if the service is slow, "
                    "try again later or raise the timeout.")

    def __init__(self, message: str, *, delivery: str = MAYBE_DELIVERED, reason: str = "", **kw: Any) -> None:
        if delivery not in (UNSENT, MAYBE_DELIVERED, FATAL):
            raise ValueError(f"unknown delivery {delivery!r}")
        self.delivery = delivery
        self.reason = reason
        super().__init__(message, **kw)


def may_have_arrived(exc: BaseException) -> bool:
    """Whether a write that ended in ``exc`` may have been stored by the service: a request whose answer was
    lost (:data:`MAYBE_DELIVERED`), a 500/502/504 (the service may have stored it before failing) or any
    exception that is not the toolkit's (an interruption). A refusal (4xx), a 429 or 503 (the service did not
    take it), a request never sent and our own checks are not — unless an earlier attempt of the same request
    may have arrived (the HTTP layer's retries: ``delivery`` says so)."""
    if isinstance(exc, TransportError):
        return exc.delivery == MAYBE_DELIVERED
    if isinstance(exc, APIError):
        return exc.delivery == MAYBE_DELIVERED or exc.status in (500, 502, 504) or (exc.status or 0) > 504
    return not isinstance(exc, ToolkitError)


class JobFailed(ToolkitError):
    default_hint = "Look at the job's results for the reason of each failed item."


class JobTimeout(ToolkitError):
    default_hint = "The job is still running on the service: call wait() again later, or raise the timeout."


class ValidationError(ToolkitError):
    """Our own checks (or the service's field errors) before/after sending; nothing was changed."""

    default_hint = "Correct the values named above and try again."

    def __init__(self, message: str, *, errors: Mapping[str, list[str]] | None = None, **kw: Any) -> None:
        self.errors = {str(k): [redact(m) for m in (v if isinstance(v, (list, tuple)) else [v])]
                       for k, v in (errors or {}).items()}
        if self.errors:
            listed = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in self.errors.items())
            message = f"{message} — {listed}"
        super().__init__(message, **kw)


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone, 429: RateLimited,
}


def error_class_for_status(status: int) -> type[APIError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return APIError
