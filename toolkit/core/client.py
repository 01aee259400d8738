"""The base of every service's async client: :class:`ServiceClient`.

A service's ``AsyncClient`` subclasses it, sets ``service`` (its registered name) and, in ``__init__``,
opens its connection with the one set-up method::

    class AsyncClient(ServiceClient):
        service = SERVICE

        def __init__(self, base_url, token, *, transport=None, timeouts=None, retry=None):
            self.auth = BearerToken(token)
            self.http = self._open_http(base_url, auth=self.auth, transport=transport, timeouts=timeouts,
                                        retry=retry, hints=HINTS)

``_open_http`` makes an :class:`~toolkit.core.http.HttpClient` named after the service and remembers it, so
the base closes it (``await client.aclose()``, ``async with``) and sizes its pool (:meth:`ensure_pool`). A
client that needs a second connection (Mediaflow's ``transfer``, for signed upload URLs without the access
token) opens it the same way. The set-up method starts with ``_`` so that the generated sync client, which
mirrors every public method for the analyst, does not offer it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .http import HttpClient, RetryPolicy, Timeouts

__all__ = ["ServiceClient"]


class ServiceClient:
    """Base of the async service clients: owns the service's :class:`~toolkit.core.http.HttpClient`
    connections (``self.http``, and any other opened with :meth:`_open_http`) and closes them
    (``await client.aclose()`` or ``async with``). Subclasses set ``service`` (the registered name)."""

    service: str = ""
    http: HttpClient
    #: every connection opened with :meth:`_open_http`, in order
    _connections: tuple[HttpClient, ...] = ()

    def _open_http(
        self,
        base_url: str,
        *,
        auth: Any = None,
        headers: Mapping[str, str] | None = None,
        basic_auth: "tuple[str, Any] | None" = None,
        transport: Any = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 16,
        hints: Mapping[int, str] | None = None,
        attempt_headers: Sequence[Callable[[], Mapping[str, str]]] = (),
    ) -> HttpClient:
        """A new connection of this service to ``base_url`` (``""`` for absolute URLs only), closed and sized
        with the client's others. The arguments are those of :class:`~toolkit.core.http.HttpClient`:
        ``auth`` a credential flow of :mod:`toolkit.core.auth` (or ``basic_auth=(user, password)``), ``headers``
        sent on every request, ``transport`` for tests and the sandbox, ``hints`` status → what to do."""
        http = HttpClient(self.service, base_url, auth=auth, headers=headers, basic_auth=basic_auth,
                          transport=transport, timeouts=timeouts, retry=retry, max_connections=max_connections,
                          hints=hints, attempt_headers=attempt_headers)
        self._connections = (*self._connections, http)
        return http

    async def ensure_pool(self, concurrency: "int | str") -> None:
        """Make every connection's pool hold at least ``concurrency`` connections (``"auto"``: the adaptive
        limit's maximum; a bulk call does this before it starts; see
        :meth:`toolkit.core.http.HttpClient.ensure_pool`)."""
        for http in self._connections:
            await http.ensure_pool(concurrency)

    async def check_credentials(self) -> None:
        """Fetch the credential now (one token request): raises the service's refusal in plain words."""
        if getattr(self.http, "auth", None) is not None:
            await self.http.auth.headers(self.http)

    async def aclose(self) -> None:
        """Close every connection of this client (those of this event loop; see ``HttpClient.aclose``)."""
        for http in self._connections:
            await http.aclose()

    async def __aenter__(self) -> "ServiceClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
