"""Dokus client: basic auth over :class:`toolkit.core.http.HttpClient`, written once, async.

    dk = toolkit.dokus.connect(subdomain="mittfirma", email="ole@example.no", password="…")
    dk.products.list()                      # sync facade (SyncWrapper) for notebooks

    async with toolkit.dokus.AsyncClient(base_url=..., email=..., password=...) as dk:
        df = await dk.products.list()

Every request carries ``Accept: application/json`` (Dokus answers 406 without it); create and update
send ``Content-Type: application/json``. Dokus answers invalid values with HTTP 401 and a body of field
errors (the documented quirk); the client turns that into :class:`toolkit.ValidationError` listing each
field and message, and a 401 for wrong credentials into :class:`toolkit.Unauthorized` saying to check the
e-mail and password. A 400 with field errors is treated the same way.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Mapping

from ..core import service as _service
from ..core.client import ServiceClient
from ..core.credentials import Secret, reveal
from ..core.errors import APIError, Unauthorized, ValidationError
from ..core.http import Timeouts
from ..core.redact import get_logger, redact, register_secret
from ..core.registry import Field, ServiceSpec, register
from ..core.sync import sync_class
from .resources import RESOURCES, Resource, ResourceSpec

__all__ = ["AsyncClient", "Client", "connect", "base_url_for", "FIELDS"]

log = get_logger("toolkit.dokus")

CREDENTIALS_HINT = ("Check the e-mail and password of your Dokus user (the ones you log in to Dokus with) and "
                    "connect again; also check the subdomain or base URL.")
HINTS = {
    403: "Your Dokus user may not do this: ask the account's administrator.",
    404: "No such item on Dokus: check the id (it may have been deleted), or the subdomain/base URL.",
    405: "Dokus does not allow this on this resource (sent invoices, for one, cannot be changed).",
    406: "Dokus needs the header Accept: application/json (the toolkit sends it; check any proxy in between).",
    415: "Dokus needs Content-Type: application/json on create and update.",
}
_FIELD_ERROR_STATUSES = (400, 401, 422)

#: the connection fields (``connect()`` arguments, ``TOOLKIT_DOKUS_<NAME>``, CLI flags, the form)
FIELDS = [
    Field("subdomain", "Subdomain", required=False, help="https://SUBDOMAIN.dokus.no"),
    Field("base_url", "Base URL", required=False, help="overrides the subdomain"),
    Field("email", "E-mail"),
    Field("password", "Password", secret=True),
]


def base_url_for(subdomain: str | None = None, base_url: str | None = None) -> str:
    """``https://SUBDOMAIN.dokus.no``, or ``base_url`` when given."""
    if base_url:
        return str(base_url).rstrip("/")
    if not subdomain:
        raise ValidationError("give subdomain= (the part before .dokus.no) or base_url=", service="dokus",
                              hint="e.g. toolkit.dokus.connect(subdomain='mittfirma', email=…, password=…)")
    sub = str(subdomain).strip()
    if sub.startswith(("http://", "https://")):
        return sub.rstrip("/")
    sub = sub.removesuffix(".dokus.no")
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", sub):
        raise ValidationError(f"{subdomain!r} is not a Dokus subdomain", service="dokus",
                              hint="Give only the part before .dokus.no, e.g. 'mittfirma'.")
    return f"https://{sub.lower()}.dokus.no"


def field_errors(body: Any) -> dict[str, list[str]] | None:
    """Field errors of an error body: ``{"errors": {field: [msg]}}`` (also a bare ``{field: [msg]}``)."""
    if not isinstance(body, Mapping):
        return None
    errors = body.get("errors", None)
    if errors is None and body and "detail" not in body and all(
            isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body.values()):
        errors = body
    if isinstance(errors, Mapping) and errors:
        return {str(k): [str(m) for m in (v if isinstance(v, (list, tuple)) else [v])] for k, v in errors.items()}
    if isinstance(errors, (list, tuple)) and errors:
        return {"__all__": [str(m) for m in errors]}
    if isinstance(errors, str) and errors:
        return {"__all__": [errors]}
    return None


class AsyncClient(ServiceClient):
    """Async Dokus client; ``dk.products``, ``dk.customers``, … are :class:`~toolkit.dokus.resources.Resource`."""

    service = "dokus"

    def __init__(
        self,
        subdomain: str | None = None,
        *,
        email: str | None = None,
        password: "str | Secret | None" = None,
        base_url: str | None = None,
        timeout: float | None = None,
        max_connections: int = 8,
        transport: Any = None,
        resources: Mapping[str, Mapping[str, Any] | ResourceSpec] | None = None,
    ) -> None:
        missing = [n for n, v in (("email", email), ("password", password)) if not v]
        if missing:
            raise _service.missing_fields_error(SPEC, missing)
        self.base_url = base_url_for(subdomain, base_url)
        self.email = str(email)
        secret = password if isinstance(password, Secret) else Secret(reveal(password) or "")
        register_secret(base64.b64encode(f"{self.email}:{secret.reveal()}".encode()).decode())
        timeouts = Timeouts() if timeout is None else Timeouts(connect=min(10.0, timeout), read=timeout,
                                                               write=timeout, pool=max(timeout, 30.0))
        self.http = self._open_http(self.base_url, headers={"Accept": "application/json"},
                                    basic_auth=(self.email, secret), timeouts=timeouts,
                                    max_connections=max_connections, transport=transport, hints=HINTS)
        self.specs = _specs(resources)
        self._resources = {name: Resource(self, spec) for name, spec in self.specs.items()}

    # -- resources --------------------------------------------------------------------------------------
    @property
    def products(self) -> Resource:
        return self._resources["products"]

    @property
    def customers(self) -> Resource:
        return self._resources["customers"]

    @property
    def customer_groups(self) -> Resource:
        return self._resources["customer_groups"]

    @property
    def invoices(self) -> Resource:
        """Draft invoices (including credit notes and reminders not yet sent)."""
        return self._resources["invoices"]

    @property
    def sent_invoices(self) -> Resource:
        """Sent invoices: read-only."""
        return self._resources["sent_invoices"]

    @property
    def recurring_invoices(self) -> Resource:
        return self._resources["recurring_invoices"]

    @property
    def vat_classes(self) -> Resource:
        return self._resources["vat_classes"]

    def resource(self, name: str) -> Resource:
        """A resource by name (``"products"``, ``"customer_groups"`` …)."""
        try:
            return self._resources[name]
        except KeyError:
            raise ValidationError(f"unknown Dokus resource {name!r}; known: {', '.join(self._resources)}",
                                  service="dokus") from None

    # -- requests ---------------------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                      idempotent: bool | None = None, what: str) -> Any:
        """One call; returns the parsed JSON body (None for 204). Field errors → ValidationError."""
        headers = {"Content-Type": "application/json"} if method.upper() == "POST" else None
        response = await self.http.request(method, path, params=params, json=json, headers=headers,
                                           idempotent=idempotent, allow=_FIELD_ERROR_STATUSES, what=what)
        status = response.status_code
        body = _parse(response.content)
        if status in _FIELD_ERROR_STATUSES:
            errors = field_errors(body)
            where = {"service": "dokus", "method": method.upper(), "url": str(response.request.url), "status": status}
            if errors:
                raise ValidationError(f"could not {what}: Dokus refused the values", errors=errors, **where)
            if status == 401:
                raise Unauthorized(f"could not {what}: Dokus did not accept the e-mail and password",
                                   hint=CREDENTIALS_HINT, **where)
            raise self.http.error_for(response, what=what)
        if status == 204 or not response.content:
            return None
        if body is None:
            raise APIError(f"could not {what}: the answer is not JSON", service="dokus", method=method.upper(),
                           url=str(response.request.url), status=status,
                           hint="Check the subdomain or base URL: it should point at your Dokus address.")
        return body

    async def check(self) -> Any:
        """A live contract check: a few read-only calls (the product list, one product) and one row per
        assumption (``service, check, assumption, answered, verdict, what_to_do``; verdict ``ok``,
        ``differs`` or ``failed``). Nothing is written. See :mod:`toolkit.dokus.check`."""
        from ..core.check import check_client

        return await check_client(self)

    def __repr__(self) -> str:
        return redact(f"<Dokus client {self.base_url} user={self.email}>")


def _parse(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


def _specs(overrides: Mapping[str, Mapping[str, Any] | ResourceSpec] | None) -> dict[str, ResourceSpec]:
    from dataclasses import replace

    specs = dict(RESOURCES)
    for name, change in (overrides or {}).items():
        if isinstance(change, ResourceSpec):
            specs[name] = change
        elif name in specs:
            specs[name] = replace(specs[name], **dict(change))
        else:
            raise ValidationError(f"unknown Dokus resource {name!r} in resources=; known: {', '.join(specs)}",
                                  service="dokus")
    return specs


Client = sync_class(AsyncClient, "Client", module=__name__, doc="""Sync Dokus client for notebooks (each call
blocks until done; Ctrl-C cancels).

``dk.products``, ``dk.customers``, ``dk.customer_groups``, ``dk.invoices``, ``dk.sent_invoices``,
``dk.recurring_invoices``, ``dk.vat_classes``: ``list(**filters)``, ``get(id)``, ``create(**fields)``,
``update(id, **fields)``, ``delete(id)``, ``diff(original, edited)``, ``apply(plan)``.
``dk.aio`` is the :class:`AsyncClient` underneath.""")

SPEC = register(ServiceSpec(name="dokus", title="Dokus", fields=FIELDS, client=AsyncClient, sync=Client,
                            url_fields=("base_url", "subdomain")))


def connect(subdomain: str | None = None, email: str | None = None, password: "str | Secret | None" = None,
            base_url: str | None = None, **kwargs: Any) -> Any:
    """Connect to Dokus and return the sync :class:`Client`.

    Parameters
    ----------
    subdomain : the part before ``.dokus.no`` (or give ``base_url``).
    email, password : your Dokus user (``password`` a str or a :class:`toolkit.Secret`).
    kwargs : ``timeout`` (seconds), ``max_connections``, ``transport`` and ``resources`` (per-resource
        overrides of paths and envelope keys, e.g. ``{"customer_groups": {"path": "/groups/"}}``).

    Missing fields are read from ``TOOLKIT_DOKUS_SUBDOMAIN``/``_BASE_URL``/``_EMAIL``/``_PASSWORD``
    (environment or ``.env``) or the keyring.

    Raises
    ------
    toolkit.ValidationError — the e-mail or password is missing, or the subdomain is not one.
    """
    return _service.connect("dokus", subdomain=subdomain, email=email, password=password, base_url=base_url,
                            **kwargs)
