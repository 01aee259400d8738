"""The Uddata+ client: roster, photos, audit and folder upload.

    ud = toolkit.uddata.connect(environment="production", institution="123456", api_version="0.7.5",
                                client_id="my.ist.api_client.id", client_secret=Secret(...))
    ud.students()                  # DataFrame of the roster, CPR masked on display
    ud.get_image("0101901234")     # PIL image, or None when there is no photo
    ud.audit(cprs)                 # who lacks a photo
    ud.upload_folder("photos/")    # upload <cpr>.jpg files, resumable
    ud.prepare_photos("photos/")   # upright, sized, sRGB JPEG without metadata, duplicates flagged

Written once, async (:class:`AsyncClient`); the sync :class:`Client` that ``connect()`` returns runs it on
the toolkit's private event loop. The contract's choices (token URL, path layout, environments) are the
defaults and each can be changed on ``connect()``.
"""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING, Any, Mapping

from ..core import service as _service
from ..core.auth import ClientCredentials
from ..core.client import ServiceClient
from ..core.credentials import Secret, reveal
from ..core.errors import ValidationError
from ..core.frames import ToolkitFrame, ToolkitSeries, frame
from ..core.http import RetryPolicy, Timeouts
from ..core.journal import destination
from ..core.redact import get_logger, redact
from ..core.registry import Field, ServiceSpec, register
from ..core.sync import sync_class
from . import audit as _audit
from . import cpr as _cpr
from . import prepare as _prepare
from . import upload as _upload

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["AsyncClient", "Client", "connect", "ENVIRONMENTS", "UddataAuth", "STUDENT_SCHEMA", "FIELDS"]

log = get_logger("toolkit.uddata")

SERVICE = "uddata"

#: environment name → base URL. The vendor's host names are not public: set yours here, in
#: ``TOOLKIT_UDDATA_ENVIRONMENTS`` (JSON object) or pass ``environments=`` / ``base_url=`` to ``connect()``.
#: ``"sandbox"`` means the toolkit's running sandbox (``toolkit.sandbox.discover()``).
ENVIRONMENTS: dict[str, str] = {
    "production": "https://api.uddataplus.dk",
    "test": "https://api.test.uddataplus.dk",
}

#: where api_version and institution go (contract Part 1): a path prefix before each resource
DEFAULT_PATH_PREFIX = "{api_version}/{institution}"

STUDENT_SCHEMA = {
    "cpr": "string", "indi_id": "string", "fornavn": "string", "efternavn": "string", "stamhold": "string",
    "uddannelse": "string", "startdato": "date", "slutdato": "date",
}

HINTS = {
    401: "The client id/secret are not valid (or the token expired and could not be renewed): check them.",
    403: "The credentials are valid but lack the right for this (uploading pictures needs a right granted by "
         "Uddata+ support), or they are not valid for this institution number.",
}


#: the connection fields (``connect()`` arguments, ``TOOLKIT_UDDATA_<NAME>``, CLI flags, the form)
FIELDS = [
    Field("environment", "Environment", required=False, default="production",
          help="production, test … (mapped to a base URL), or sandbox; or give the base URL"),
    Field("base_url", "Base URL", required=False, help="overrides the environment"),
    Field("institution", "Institution number", help="6 digits"),
    Field("api_version", "API version", default="0.7.5"),
    Field("client_id", "Client id"),
    Field("client_secret", "Client secret", secret=True),
    Field("token_url", "Token URL", required=False, help="default {base}/oauth/token"),
]

TOKEN_HINTS = {401: "The client id or client secret is wrong: check them (Uddata+ support issues them).",
               400: "The token service refused the request: check the token URL and the client id."}


class UddataAuth(ClientCredentials):
    """OAuth2 client credentials of Uddata+ (``POST {token_url}`` form → ``Authorization: Bearer …``)."""

    def __init__(self, token_url: str, client_id: str, client_secret: "str | Secret") -> None:
        super().__init__(token_url, client_id, client_secret, hints=TOKEN_HINTS)


def resolve_base_url(environment: str | None, base_url: str | None,
                     environments: Mapping[str, str] | None = None) -> str:
    """The base URL from ``base_url``, else the ``environment`` name (see :mod:`toolkit.core.service`)."""
    values = _service.resolve_urls(SPEC, {"environment": environment or "production", "base_url": base_url},
                                   environments)
    return str(values["base_url"]).rstrip("/")


class AsyncClient(ServiceClient):
    """Async Uddata+ client (``await`` its methods); see the module docstring and :func:`connect`."""

    service = SERVICE

    def __init__(
        self,
        environment: str | None = None,
        institution: str | int | None = None,
        api_version: str | None = "0.7.5",
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
            raise _service.missing_fields_error(SPEC, missing)
        self.base_url = resolve_base_url(environment, base_url, environments)
        self.environment = environment
        self.institution = str(institution).strip()
        self.api_version = str(api_version or "0.7.5").strip()
        self.client_id = str(client_id)
        self.path_prefix = path_prefix.format(api_version=self.api_version, institution=self.institution).strip("/")
        self.token_url = token_url or f"{self.base_url}/oauth/token"
        self.max_pixels = int(max_pixels)
        self.auth = UddataAuth(self.token_url, self.client_id,
                               client_secret if isinstance(client_secret, Secret) else Secret(reveal(client_secret) or ""))
        self.http = self._open_http(self.base_url, auth=self.auth, transport=transport, timeouts=timeouts,
                                    retry=retry, hints=HINTS, max_connections=16)

    # -- paths ------------------------------------------------------------------------------------------
    @property
    def destination(self) -> str:
        """Where uploads go, as the journal keys it: service, base URL, API version and institution."""
        return destination(SERVICE, self.base_url, api_version=self.api_version, institution=self.institution)

    def path(self, resource: str) -> str:
        return f"{self.path_prefix}/{resource.lstrip('/')}" if self.path_prefix else resource.lstrip("/")

    # -- roster -----------------------------------------------------------------------------------------
    async def students(self, expand: str | None = None) -> ToolkitFrame:
        """The institution's students (``/elever``) as a DataFrame.

        ``cpr`` is the one CPR column: the number as 10 digits (text, leading zeros kept, the ``cpr``
        dtype, masked on display), as :meth:`audit` and :meth:`upload_folder` use it. Uddata+ delivers it
        as ``cpr_nr``; that field is not repeated as a column of its own. Only when some delivered value
        differs from its normalised number (e.g. ``010190-1234``) is a column ``cpr_as_delivered`` added,
        holding the delivered text in those rows only (empty elsewhere; masked too). A value that is not
        a CPR number stays as delivered in ``cpr``. ``expand="uddannelser"`` adds the educations as a list
        column."""
        params = {"expand": expand} if expand else None
        response = await self.http.request("GET", self.path("elever"), params=params, what="read the students")
        try:
            body = response.json()
        except ValueError:
            raise ValidationError("the student list is not JSON", service=SERVICE) from None
        if isinstance(body, dict):  # tolerate an envelope
            body = next((v for v in body.values() if isinstance(v, list)), [])
        records = []
        differs = False
        for item in body or []:
            record = dict(item)
            raw = record.pop("cpr_nr", record.get("cpr"))
            text = _cpr.as_text(raw).strip() if raw is not None else None
            try:  # the normalised 10 digits, which audit() and upload_folder() use
                record["cpr"] = _cpr.normalize(text) if text else None
            except ValidationError:
                record["cpr"] = text
            if text and record["cpr"] != text:
                record["cpr_as_delivered"] = text
                differs = True
            records.append(record)
        schema = {**STUDENT_SCHEMA, "cpr_as_delivered": "string"} if differs else STUDENT_SCHEMA
        masked = ["cpr", "cpr_as_delivered"] if differs else ["cpr"]
        return frame(records, schema, masked=masked, extra="keep", kind="records", service=SERVICE)

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
        (``file, cpr, outcome, message, http_status``) like a row of :meth:`upload_folder`."""
        return await _upload.put_one(self, cpr, path_or_bytes)

    async def audit(self, cprs: Any, concurrency: "int | str" = "auto", progress: bool = True) -> ToolkitFrame:
        """Which CPR numbers lack a photo; see :func:`toolkit.uddata.audit.audit`."""
        return await _audit.audit(self, cprs, concurrency=concurrency, progress=progress)

    async def upload_folder(self, folder: "str | os.PathLike[str]", concurrency: "int | str" = "auto",
                            dry_run: bool = False, journal: "str | os.PathLike[str] | None" = None,
                            progress: bool = True, prepare: bool = False, max_side: int = 2000,
                            max_bytes: int | None = None, min_size: tuple[int, int] = (200, 250),
                            quality: int = 90, distinct: Any = ()) -> ToolkitFrame:
        """Upload every ``<cpr>.jpg`` of a folder, resumably; see :func:`toolkit.uddata.upload.upload_folder`.
        ``prepare=True`` also takes HEIC/PNG/WebP/TIFF and prepares each photo in memory on its way (upright,
        sRGB JPEG within ``max_side`` and ``max_bytes``, no metadata, duplicate photos flagged); see
        :meth:`prepare_photos` for the settings."""
        return await _upload.upload_folder(self, folder, concurrency=concurrency, dry_run=dry_run, journal=journal,
                                           progress=progress, prepare=prepare, max_side=max_side,
                                           max_bytes=max_bytes, min_size=min_size, quality=quality,
                                           distinct=distinct)

    async def prepare_photos(self, folder: "str | os.PathLike[str]", out: "str | os.PathLike[str] | None" = None,
                             max_side: int = 2000, max_bytes: int | None = None,
                             min_size: tuple[int, int] = (200, 250), quality: int = 90, distinct: Any = (),
                             dry_run: bool = False, workers: int | None = None,
                             progress: bool = True) -> ToolkitFrame:
        """Make every photo of a folder ready to send — upright, an sRGB JPEG of at most ``max_side`` pixels
        and ``max_bytes`` (10 MB), no metadata — into ``out`` (default ``folder/prepared``); the originals are
        never changed, a re-run prepares nothing twice, and the same photo under two CPR numbers is flagged
        ``duplicate_photo`` (not prepared). One row per folder entry; nothing is sent to Uddata+. See
        :func:`toolkit.uddata.prepare.prepare_photos` for every parameter and column."""
        settings = _prepare.Settings.of(max_side, max_bytes, min_size, quality)
        return await _prepare.prepare_folder(folder, out, settings=settings, dry_run=dry_run, distinct=distinct,
                                             workers=workers, progress=progress)

    async def check(self) -> ToolkitFrame:
        """A live contract check: a few read-only calls (a token, the roster, one photo's headers) and one
        row per assumption (``service, check, assumption, answered, verdict, what_to_do``; verdict ``ok``,
        ``differs`` or ``failed``). Nothing is written. See :mod:`toolkit.uddata.check`."""
        from ..core.check import check_client

        return await check_client(self)

    # -- lifecycle --------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return redact(f"<Uddata+ client {self.base_url} institution={self.institution} "
                      f"api_version={self.api_version} client_id={self.client_id}>")


Client = sync_class(AsyncClient, "Client", module=__name__, doc="""Sync Uddata+ client for notebooks (what
:func:`connect` returns); every method is the :class:`AsyncClient` method of the same name, run to the end
on the toolkit's private event loop (Ctrl-C cancels it). ``.aio`` is the async client underneath.""")

SPEC = register(ServiceSpec(
    name=SERVICE, title="Uddata+", fields=FIELDS, client=AsyncClient, sync=Client, environments=ENVIRONMENTS,
    environment_field="environment", url_fields=("base_url",)))


def connect(environment: str | None = None, institution: str | int | None = None, api_version: str | None = None,
            client_id: str | None = None, client_secret: "str | Secret | None" = None,
            base_url: str | None = None, token_url: str | None = None, **options: Any) -> Any:
    """Connect to Uddata+ and return the sync :class:`Client` (nothing is sent until the first call).

    Parameters
    ----------
    environment : ``production``, ``test`` … mapped to a base URL through :data:`ENVIRONMENTS`,
        ``TOOLKIT_UDDATA_ENVIRONMENTS`` (JSON) or ``environments={name: url}``; ``sandbox`` finds a running
        sandbox (``toolkit.sandbox.discover()``) and takes its demo credentials for missing fields.
    institution : the 6-digit institution number. api_version : default ``0.7.5``.
    client_id, client_secret : the API client (``client_secret`` a str or a :class:`toolkit.Secret`).
    base_url : overrides the environment. token_url : default ``{base_url}/oauth/token``.
    options : ``environments``, ``path_prefix``, ``max_pixels``, ``transport``, ``timeouts``, ``retry``.

    Every missing field is read from ``TOOLKIT_UDDATA_<FIELD>`` (environment or ``.env``) or the keyring.

    Returns
    -------
    Client — ``students()``, ``get_image(cpr)``, ``put_image(cpr, path_or_bytes)``, ``audit(cprs)``,
    ``upload_folder(folder)``, ``prepare_photos(folder)``.

    Raises
    ------
    toolkit.ValidationError — a field is missing (the message names the argument, the variable and the
    CLI flag) or the environment is unknown.
    """
    return _service.connect(SERVICE, environment=environment, institution=institution, api_version=api_version,
                            client_id=client_id, client_secret=client_secret, base_url=base_url,
                            token_url=token_url, **options)
