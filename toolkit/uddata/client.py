"""The Uddata+ client: roster, photos, audit and folder upload.

    ud = toolkit.uddata.connect(environment="production", institution="123456", api_version="0.7.5",
                                client_id="my.ist.api_client.id", client_secret=Secret(...))
    ud.students()                  # DataFrame of the roster, CPR masked on display
    ud.get_image("0101901234")     # PIL image, or None when there is no photo
    ud.audit(cprs)                 # who lacks a photo
    ud.upload_folder("photos/")    # upload <cpr>.jpg files, resumable

Written once, async (:class:`AsyncClient`); the sync :class:`Client` that ``connect()`` returns runs it on
the toolkit's private event loop. The contract's choices (token URL, path layout, environments) are the
defaults and each can be changed on ``connect()``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..core.credentials import Secret, reveal
from ..core.errors import ValidationError
from ..core.frames import ToolkitFrame, ToolkitSeries, frame
from ..core.http import HttpClient, RetryPolicy, ServiceClient, Timeouts, TokenAuth
from ..core.redact import get_logger, redact
from ..core.sync import SyncWrapper
from . import cpr as _cpr

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["AsyncClient", "Client", "connect", "ENVIRONMENTS", "UddataAuth", "STUDENT_SCHEMA"]

log = get_logger("toolkit.uddata")

SERVICE = "uddata"

#: environment name → base URL. The vendor's host names are not public: set yours here, in
#: ``TOOLKIT_UDDATA_ENVIRONMENTS`` (JSON object) or pass ``environments=`` / ``base_url=`` to ``connect()``.
#: ``"sandbox"`` means the toolkit's running sandbox (in this process, or ``TOOLKIT_SANDBOX_FILE``).
ENVIRONMENTS: dict[str, str] = {
    "production": "https://api.uddataplus.dk",
    "test": "https://api.test.uddataplus.dk",
}

#: where api_version and institution go (contract Part 1): a path prefix before each resource
DEFAULT_PATH_PREFIX = "{api_version}/{institution}"

STUDENT_SCHEMA = {
    "cpr": "string", "cpr_nr": "string", "indi_id": "string", "fornavn": "string", "efternavn": "string", "stamhold": "string",
    "uddannelse": "string", "startdato": "date", "slutdato": "date",
}

HINTS = {
    401: "The client id/secret are not valid (or the token expired and could not be renewed): check them.",
    403: "The credentials are valid but lack the right for this (uploading pictures needs a right granted by "
         "Uddata+ support), or they are not valid for this institution number.",
}


class UddataAuth(TokenAuth):
    """OAuth2 client credentials: ``POST {token_url}`` form → ``Authorization: Bearer …``."""

    def __init__(self, token_url: str, client_id: str, client_secret: "str | Secret") -> None:
        super().__init__()
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret if isinstance(client_secret, Secret) else Secret(client_secret)

    async def fetch_headers(self, http: HttpClient) -> tuple[dict[str, str], float | None]:
        response = await http.request(
            "POST", self.token_url, authenticate=False, idempotent=True, what="get an access token for the client",
            data={"grant_type": "client_credentials", "client_id": self.client_id,
                  "client_secret": self._secret.reveal()},
            hints={401: "The client id or client secret is wrong: check them (Uddata+ support issues them).",
                   400: "The token service refused the request: check the token URL and the client id."})
        try:
            body = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise ValidationError("the token service answered without an access_token", service=SERVICE,
                                  url=self.token_url, hint="Check the token URL (token_url=…).") from None
        Secret(token)  # registers it for redaction
        lifetime = body.get("expires_in")
        try:
            seconds = float(lifetime) if lifetime is not None else None
        except (TypeError, ValueError):
            seconds = None
        scheme = str(body.get("token_type") or "Bearer")
        scheme = "Bearer" if scheme.lower() == "bearer" else scheme
        return {"Authorization": f"{scheme} {token}"}, seconds


def _sandbox_url() -> str | None:
    try:
        from ..sandbox.server import running_sandboxes

        for sb in running_sandboxes():
            if SERVICE in sb.urls:
                return sb.urls[SERVICE]
    except ImportError:  # pragma: no cover
        pass
    path = os.environ.get("TOOLKIT_SANDBOX_FILE")
    if path and Path(path).is_file():
        try:
            return json.loads(Path(path).read_text().splitlines()[0])["urls"][SERVICE]
        except (ValueError, KeyError, IndexError):
            return None
    return None


def resolve_base_url(environment: str | None, base_url: str | None,
                     environments: Mapping[str, str] | None = None) -> str:
    """The base URL from ``base_url``, else the ``environment`` name through the mapping."""
    if base_url:
        return str(base_url).rstrip("/")
    mapping = dict(ENVIRONMENTS)
    extra = os.environ.get("TOOLKIT_UDDATA_ENVIRONMENTS")
    if extra:
        try:
            mapping.update(json.loads(extra))
        except ValueError:
            raise ValidationError("TOOLKIT_UDDATA_ENVIRONMENTS is not a JSON object", service=SERVICE) from None
    mapping.update(environments or {})
    name = (environment or "production").strip()
    if name == "sandbox" and "sandbox" not in mapping:
        url = _sandbox_url()
        if url:
            return url
        raise ValidationError("no sandbox is running", service=SERVICE,
                              hint="Start one with toolkit.sandbox.start() or `toolkit sandbox`, or give base_url.")
    if name.startswith(("http://", "https://")):
        return name.rstrip("/")
    if name not in mapping:
        raise ValidationError(f"unknown environment {name!r}", service=SERVICE,
                              hint=f"Use one of {', '.join(sorted(mapping))}, pass environments={{name: url}}, "
                                   "or give base_url=….")
    return mapping[name].rstrip("/")


class AsyncClient(ServiceClient):
    """Async Uddata+ client (``await`` its methods); see the module docstring and :func:`connect`."""

    def __init__(
        self,
        environment: str | None = None,
        institution: str | int | None = None,
        api_version: str = "0.7.5",
        client_id: str | None = None,
        client_secret: "str | Secret | None" = None,
        base_url: str | None = None,
        token_url: str | None = None,
        *,
        environments: Mapping[str, str] | None = None,
        path_prefix: str = DEFAULT_PATH_PREFIX,
        max_pixels: int = 40_000_000,
        transport: Any = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        missing = [n for n, v in (("institution", institution), ("client_id", client_id),
                                  ("client_secret", client_secret)) if v in (None, "")]
        if missing:
            raise ValidationError("missing connection fields", service=SERVICE,
                                  errors={m: ["required"] for m in missing},
                                  hint="Pass them to connect(), or set TOOLKIT_UDDATA_<FIELD> in the environment.")
        self.base_url = resolve_base_url(environment, base_url, environments)
        self.environment = environment
        self.institution = str(institution).strip()
        self.api_version = str(api_version).strip()
        self.client_id = str(client_id)
        self.path_prefix = path_prefix.format(api_version=self.api_version, institution=self.institution).strip("/")
        self.token_url = token_url or f"{self.base_url}/oauth/token"
        self.max_pixels = int(max_pixels)
        secret = client_secret if isinstance(client_secret, Secret) else Secret(reveal(client_secret) or "")
        self.auth = UddataAuth(self.token_url, self.client_id, secret)
        self.http = HttpClient(SERVICE, self.base_url, auth=self.auth, transport=transport, timeouts=timeouts,
                               retry=retry, hints=HINTS, max_connections=16)

    # -- paths ------------------------------------------------------------------------------------------
    def path(self, resource: str) -> str:
        return f"{self.path_prefix}/{resource.lstrip('/')}" if self.path_prefix else resource.lstrip("/")

    # -- roster -----------------------------------------------------------------------------------------
    async def students(self, expand: str | None = None) -> ToolkitFrame:
        """The institution's students (``/elever``) as a DataFrame. ``cpr`` is the CPR number as 10 digits
        (text, leading zeros kept), ``cpr_nr`` the value exactly as Uddata+ delivered it; both are masked on
        display. ``expand="uddannelser"`` adds the educations as a list column."""
        params = {"expand": expand} if expand else None
        response = await self.http.request("GET", self.path("elever"), params=params, what="read the students")
        try:
            body = response.json()
        except ValueError:
            raise ValidationError("the student list is not JSON", service=SERVICE) from None
        if isinstance(body, dict):  # tolerate an envelope
            body = next((v for v in body.values() if isinstance(v, list)), [])
        records = []
        for item in body or []:
            record = dict(item)
            raw = record.get("cpr_nr", record.get("cpr"))
            text = _cpr._text(raw).strip() if raw is not None else None
            record["cpr_nr"] = text  # as the service delivered it
            try:  # the normalised 10 digits, which audit() and upload_folder() use
                record["cpr"] = _cpr.normalize(text) if text else None
            except ValidationError:
                record["cpr"] = text
            records.append(record)
        return frame(records, STUDENT_SCHEMA, masked=["cpr", "cpr_nr"], extra="keep")

    # -- photos -----------------------------------------------------------------------------------------
    async def get_image_bytes(self, cpr: Any) -> bytes | None:
        """The stored JPEG bytes of one person, or ``None`` when there is no photo (404)."""
        number = _cpr.normalize(cpr)
        response = await self.http.request("GET", self.path(f"billeder/{number}"), allow=(404,),
                                           what="fetch the photo")
        if response.status_code == 404:
            return None
        return response.content

    async def get_image(self, cpr: Any) -> "Image.Image | None":
        """The photo of one person as a ``PIL.Image.Image``, or ``None`` when there is none."""
        data = await self.get_image_bytes(cpr)
        if data is None:
            return None
        from PIL import Image, UnidentifiedImageError

        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            raise ValidationError("the stored photo is not a readable image", service=SERVICE,
                                  hint="Upload a new JPEG for this person.") from None
        return img

    async def put_image(self, cpr: Any, path_or_bytes: "str | os.PathLike[str] | bytes") -> ToolkitSeries:
        """Upload (or replace) one person's photo; returns one result row
        (``file, cpr, outcome, http_status, message``) like a row of :meth:`upload_folder`."""
        from .upload import put_one

        return await put_one(self, cpr, path_or_bytes)

    async def audit(self, cprs: Any, concurrency: int = 16, progress: bool = True) -> ToolkitFrame:
        """Which CPR numbers lack a photo; see :func:`toolkit.uddata.audit.audit`."""
        from .audit import audit

        return await audit(self, cprs, concurrency=concurrency, progress=progress)

    async def upload_folder(self, folder: "str | os.PathLike[str]", concurrency: int = 8, dry_run: bool = False,
                            journal: "str | os.PathLike[str] | None" = None, progress: bool = True) -> ToolkitFrame:
        """Upload every ``<cpr>.jpg`` of a folder, resumably; see :func:`toolkit.uddata.upload.upload_folder`."""
        from .upload import upload_folder

        return await upload_folder(self, folder, concurrency=concurrency, dry_run=dry_run, journal=journal,
                                   progress=progress)

    # -- lifecycle --------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return redact(f"<Uddata+ client {self.base_url} institution={self.institution} "
                      f"api_version={self.api_version} client_id={self.client_id}>")


class Client(SyncWrapper):
    """Sync Uddata+ client for notebooks (what :func:`connect` returns); ``.aio`` is the async client.

    Methods: ``students()``, ``get_image(cpr)``, ``get_image_bytes(cpr)``, ``put_image(cpr, path_or_bytes)``,
    ``audit(cprs, concurrency=16)``, ``upload_folder(folder, concurrency=8, dry_run=False, journal=None)``.
    Ctrl-C cancels a running call.
    """

    def __init__(self, async_client: AsyncClient) -> None:
        super().__init__(async_client)


def connect(environment: str | None = None, institution: str | int | None = None, api_version: str = "0.7.5",
            client_id: str | None = None, client_secret: "str | Secret | None" = None,
            base_url: str | None = None, token_url: str | None = None, **options: Any) -> Client:
    """Connect to Uddata+ and return the sync client (nothing is sent until the first call).

    ``environment`` (``production``, ``test``, ``sandbox`` …) maps to a base URL through
    :data:`ENVIRONMENTS`; ``base_url`` overrides it. The token is fetched on first use from ``token_url``
    (default ``{base_url}/oauth/token``). ``client_secret`` may be a str or a :class:`toolkit.Secret`.
    Further options: ``environments={name: url}``, ``path_prefix="{api_version}/{institution}"``,
    ``max_pixels``, ``transport``, ``timeouts``, ``retry``.
    """
    return Client(AsyncClient(environment, institution, api_version, client_id, client_secret, base_url,
                              token_url, **options))
