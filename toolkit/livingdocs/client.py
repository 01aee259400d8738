"""The Livingdocs client: a project access token sent as ``Authorization: Bearer``.

Written once, async (:class:`AsyncClient`); :func:`connect` returns the sync :class:`Client` generated
from it. Paths are ``{base_url}/api/{api_version}/…``; a base URL may carry a path prefix (a self-hosted
server, or the editor's ``…/proxy/api`` form).
"""

from __future__ import annotations

from typing import Any

from ..core import service as _service
from ..core.auth import BearerToken
from ..core.credentials import Secret
from ..core.http import HttpClient, RetryPolicy, ServiceClient, Timeouts
from ..core.redact import redact
from ..core.registry import Field, ServiceSpec, register
from ..core.sync import sync_class

__all__ = ["AsyncClient", "Client", "connect", "FIELDS"]

SERVICE = "livingdocs"

FIELDS = [
    Field("base_url", "Base URL", default="https://server.livingdocs.io",
          help="the server, with any path prefix (e.g. https://edit.livingdocs.io/proxy/api)"),
    Field("token", "Access token", secret=True, help="a project access token (Project Admin → Api Clients)"),
    Field("api_version", "API version", required=False, default="v1"),
]


class AsyncClient(ServiceClient):
    """Async Livingdocs client; see :func:`connect`."""

    service = SERVICE

    def __init__(self, base_url: str | None = None, token: "str | Secret | None" = None, api_version: str = "v1",
                 *, transport: Any = None, timeouts: Timeouts | None = None, retry: RetryPolicy | None = None,
                 max_connections: int = 16) -> None:
        if not token:
            raise _service.missing_fields_error(SPEC, ["token"])
        self.base_url = str(base_url or "https://server.livingdocs.io").rstrip("/")
        self.api_version = str(api_version or "v1")
        self.auth = BearerToken(token)
        self.http = HttpClient(SERVICE, self.base_url, auth=self.auth, headers={"Accept": "application/json"},
                               transport=transport, timeouts=timeouts, retry=retry, max_connections=max_connections)

    def path(self, resource: str) -> str:
        return f"api/{self.api_version}/{resource.lstrip('/')}"

    def __repr__(self) -> str:
        return redact(f"<Livingdocs client {self.base_url} api={self.api_version}>")


Client = sync_class(AsyncClient, "Client", module=__name__)

SPEC = register(ServiceSpec(name=SERVICE, title="Livingdocs", fields=FIELDS, client=AsyncClient, sync=Client))


def connect(base_url: str | None = None, token: "str | Secret | None" = None, api_version: str | None = None,
            **options: Any) -> Any:
    """Connect to Livingdocs and return the sync :class:`Client`. Missing fields come from
    ``TOOLKIT_LIVINGDOCS_BASE_URL`` / ``_TOKEN`` / ``_API_VERSION`` (environment, ``.env``, keyring)."""
    return _service.connect(SERVICE, base_url=base_url, token=token, api_version=api_version, **options)
