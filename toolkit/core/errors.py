"""One exception tree for the whole toolkit.

Every message is plain, names the service, says what happened and what to do next, and is redacted
(no secret, no full CPR number, no httpx internals).

    ToolkitError
    ├── APIError (status set)
    │   ├── BadRequest (400)   ├── Unauthorized (401)  ├── Forbidden (403)  ├── NotFound (404)
    │   ├── Gone (410)         ├── Conflict (409)      ├── RateLimited (429) └── ServerError (5xx)
    ├── TransportError (no HTTP answer: connection refused/dropped, timeout)
    ├── JobFailed, JobTimeout (asynchronous jobs)
    └── ValidationError (our own checks before sending; ``.errors`` maps field → messages)
"""

from __future__ import annotations

from typing import Any, Mapping

from .redact import redact

__all__ = [
    "SERVICE_NAMES", "service_name", "ToolkitError", "APIError", "BadRequest", "Unauthorized", "Forbidden",
    "NotFound", "Gone", "Conflict", "RateLimited", "ServerError", "TransportError", "JobFailed",
    "JobTimeout", "ValidationError", "error_class_for_status",
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
    ) -> None:
        self.service = service
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
    """The service answered with an error status."""

    default_hint = "Check the request and try again; if it keeps failing, contact the service's support."


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


class ServerError(APIError):
    default_hint = "The service had a problem on its side: try again in a few minutes."


class TransportError(ToolkitError):
    """No HTTP answer: connection refused or dropped, DNS failure, timeout."""

    default_hint = ("Check the address and your network connection; if the service is slow, "
                    "try again later or raise the timeout.")


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
