"""The Boknett client: a login ticket (TGT) and a fresh RFC 1123 ``Date`` on every call.

Login is a form POST to ``{login_url}/v1/tickets`` (``201``, the ticket in the ``Boknett-TGT`` header);
every metadata call carries ``Authorization: Boknett TGT-…`` and ``Date``. The ticket lives 2 hours and is
renewed after 110 minutes, and once on a 401. Paths are ``{base_url}/metadata/export/object…``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..core import service as _service
from ..core.auth import DateHeader, TicketAuth
from ..core.credentials import Secret
from ..core.http import HttpClient, RetryPolicy, ServiceClient, Timeouts
from ..core.redact import redact
from ..core.registry import Field, ServiceSpec, register
from ..core.sync import sync_class

__all__ = ["AsyncClient", "Client", "connect", "FIELDS", "ENVIRONMENTS"]

SERVICE = "boknett"

#: environment name → the login and metadata base URLs (contract §3.2)
ENVIRONMENTS: dict[str, Mapping[str, str]] = {
    "production": {"login_url": "https://login.boknett.no", "base_url": "https://api.boknett.no"},
    "test": {"login_url": "https://login.boknett.webbe.no", "base_url": "https://api.boknett.webbe.no"},
}

FIELDS = [
    Field("environment", "Environment", required=False, default="production",
          help="production or test (mapped to the login and metadata URLs), or sandbox"),
    Field("base_url", "Metadata base URL", required=False, help="overrides the environment"),
    Field("login_url", "Login base URL", required=False, help="overrides the environment"),
    Field("username", "User name"),
    Field("password", "Password", secret=True),
]

LOGIN_HINTS = {401: "Boknett did not accept the user name and password: check them (Bokbasen issues them)."}
TGT_LIFETIME = 2 * 3600
TGT_RENEW_AFTER = 110 * 60


class AsyncClient(ServiceClient):
    """Async Boknett client; see :func:`connect`."""

    service = SERVICE

    def __init__(self, username: str | None = None, password: "str | Secret | None" = None,
                 environment: str | None = None, base_url: str | None = None, login_url: str | None = None, *,
                 tgt_lifetime: float = TGT_LIFETIME, tgt_renew_after: float | None = TGT_RENEW_AFTER,
                 transport: Any = None, timeouts: Timeouts | None = None, retry: RetryPolicy | None = None,
                 max_connections: int = 16, environments: Mapping[str, Any] | None = None) -> None:
        missing = [n for n, v in (("username", username), ("password", password)) if not v]
        if missing:
            raise _service.missing_fields_error(SPEC, missing)
        urls = _service.resolve_urls(SPEC, {"environment": environment or "production", "base_url": base_url,
                                            "login_url": login_url}, environments)
        self.base_url = str(urls["base_url"]).rstrip("/")
        self.login_url = str(urls.get("login_url") or self.base_url).rstrip("/")
        self.username = str(username)
        self.clock = DateHeader()
        self.auth = TicketAuth(f"{self.login_url}/v1/tickets", self.username, password or "",
                               ticket_header="Boknett-TGT", scheme="Boknett", lifetime=tgt_lifetime,
                               renew_after=tgt_renew_after, hints=LOGIN_HINTS)
        self.http = HttpClient(SERVICE, self.base_url, auth=self.auth, transport=transport, timeouts=timeouts,
                               retry=retry, max_connections=max_connections, attempt_headers=[self.clock])

    def __repr__(self) -> str:
        return redact(f"<Boknett client {self.base_url} user={self.username}>")


Client = sync_class(AsyncClient, "Client", module=__name__)

SPEC = register(ServiceSpec(name=SERVICE, title="Boknett", fields=FIELDS, client=AsyncClient, sync=Client,
                            environments=ENVIRONMENTS, environment_field="environment",
                            url_fields=("base_url", "login_url")))


def connect(username: str | None = None, password: "str | Secret | None" = None, environment: str | None = None,
            base_url: str | None = None, login_url: str | None = None, **options: Any) -> Any:
    """Connect to Boknett and return the sync :class:`Client`. Missing fields come from
    ``TOOLKIT_BOKNETT_<FIELD>`` (environment, ``.env``, keyring); ``environment="sandbox"`` finds a running
    sandbox."""
    return _service.connect(SERVICE, username=username, password=password, environment=environment,
                            base_url=base_url, login_url=login_url, **options)
