"""The Mediaflow client: the OAuth2 refresh-token grant as a POST form (no secret in any URL), then
``Authorization: Bearer``. ``base_url`` is the documented form that ends in the API version
(``https://customerapi.mediaflowpro.com/1``); paths such as ``oauth2/token`` are relative to it.
"""

from __future__ import annotations

from typing import Any

from ..core import service as _service
from ..core.auth import RefreshTokenGrant
from ..core.credentials import Secret
from ..core.http import HttpClient, RetryPolicy, ServiceClient, Timeouts
from ..core.redact import redact
from ..core.registry import Field, ServiceSpec, register
from ..core.sync import sync_class

__all__ = ["AsyncClient", "Client", "connect", "FIELDS", "DEFAULT_BASE_URL"]

SERVICE = "mediaflow"
DEFAULT_BASE_URL = "https://customerapi.mediaflowpro.com/1"

FIELDS = [
    Field("base_url", "Base URL", default=DEFAULT_BASE_URL, help="ends in the API version, e.g. …/1"),
    Field("client_id", "Client id"),
    Field("client_secret", "Client secret", secret=True),
    Field("refresh_token", "Refresh token (server key)", secret=True),
]

TOKEN_HINTS = {
    400: "Mediaflow refused the token request: check the client id, client secret and refresh token.",
    401: "Mediaflow did not accept the client id, client secret or refresh token (server key): check them "
         "(Mediaflow support issues them).",
}


class AsyncClient(ServiceClient):
    """Async Mediaflow client; see :func:`connect`."""

    service = SERVICE

    def __init__(self, client_id: str | None = None, client_secret: "str | Secret | None" = None,
                 refresh_token: "str | Secret | None" = None, base_url: str | None = None, *,
                 transport: Any = None, timeouts: Timeouts | None = None, retry: RetryPolicy | None = None,
                 max_connections: int = 16) -> None:
        missing = [n for n, v in (("client_id", client_id), ("client_secret", client_secret),
                                  ("refresh_token", refresh_token)) if not v]
        if missing:
            raise _service.missing_fields_error(SPEC, missing)
        self.base_url = str(base_url or DEFAULT_BASE_URL).rstrip("/")
        self.client_id = str(client_id)
        self.auth = RefreshTokenGrant(f"{self.base_url}/oauth2/token", self.client_id, client_secret or "",
                                      refresh_token or "", hints=TOKEN_HINTS)
        self.http = HttpClient(SERVICE, self.base_url, auth=self.auth, headers={"Accept": "application/json"},
                               transport=transport, timeouts=timeouts, retry=retry, max_connections=max_connections)

    def __repr__(self) -> str:
        return redact(f"<Mediaflow client {self.base_url} client_id={self.client_id}>")


Client = sync_class(AsyncClient, "Client", module=__name__)

SPEC = register(ServiceSpec(name=SERVICE, title="Mediaflow", fields=FIELDS, client=AsyncClient, sync=Client))


def connect(client_id: str | None = None, client_secret: "str | Secret | None" = None,
            refresh_token: "str | Secret | None" = None, base_url: str | None = None, **options: Any) -> Any:
    """Connect to Mediaflow and return the sync :class:`Client`. Missing fields come from
    ``TOOLKIT_MEDIAFLOW_<FIELD>`` (environment, ``.env``, keyring)."""
    return _service.connect(SERVICE, client_id=client_id, client_secret=client_secret,
                            refresh_token=refresh_token, base_url=base_url, **options)
