"""The Livingdocs client: a project access token sent as ``Authorization: Bearer``.

Written once, async (:class:`AsyncClient`); :func:`connect` returns the sync :class:`Client` generated
from it. Paths are ``{base_url}/api/{api_version}/…``; a base URL may carry a path prefix (a self-hosted
server, or the editor's ``…/proxy/api`` form).

    lv = toolkit.livingdocs.connect(base_url=…, token=…, api_version="v1")
    job = lv.import_images(df, system_name="archive")     # an ImportJob over one server job per chunk
    job.wait(); job.results()                              # one row per input image
    lv.job("25bzj8j")                                      # re-attach by id
    lv.jobs()                                              # the jobs this connection and its journals know
    lv.media(["img-1", "img-2"], system_name="archive")    # media library entries

Errors: an unknown token is :class:`~toolkit.Unauthorized`, an expired one :class:`~toolkit.Unauthorized`
saying it expired, a token without the scope an endpoint needs :class:`~toolkit.Forbidden` naming it
(``public-api:write`` for imports and job status, ``public-api:read`` for the media library).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from ..core import service as _service
from ..core.auth import BearerToken
from ..core.bulk import Gate, check_concurrency
from ..core.client import ServiceClient
from ..core.credentials import Secret
from ..core.errors import Forbidden, Gone, NotFound, QuotaExhausted, ToolkitError, Unauthorized, ValidationError
from ..core.frames import frame
from ..core.http import RetryPolicy, Timeouts, json_or_none, parse_error_body, parse_retry_after
from ..core.journal import Journal
from ..core.redact import get_logger, redact, register_secret
from ..core.registry import Field, ServiceSpec, register
from ..core.sync import sync_class
from .imports import ImportJob, ServerJob, parse_status, start_import
from .rows import id_text, whole_number

__all__ = ["AsyncClient", "Client", "connect", "FIELDS", "READ_SCOPE", "WRITE_SCOPE", "MEDIA_SCHEMA",
           "JOBS_SCHEMA"]

log = get_logger("toolkit.livingdocs")

SERVICE = "livingdocs"
READ_SCOPE = "public-api:read"
WRITE_SCOPE = "public-api:write"
TOKEN_HINT = "Create a token in the Livingdocs editor (Project Admin → Api Clients) and connect again with it."
#: statuses after which the import POST is repeated (the service did not take it, or an upsert makes a
#: repeat harmless): see toolkit.livingdocs.imports
IMPORT_RETRY_STATUSES = (429, 500, 502, 503, 504)

FIELDS = [
    Field("base_url", "Base URL", default="https://server.livingdocs.io",
          help="the server, with any path prefix (e.g. https://edit.livingdocs.io/proxy/api)"),
    Field("token", "Access token", secret=True, help="a project access token (Project Admin → Api Clients)"),
    Field("api_version", "API version", required=False, default="v1"),
]

#: the vocabulary (docs/vocabulary.md): bytes is the entry's ``asset.size``, created/modified its
#: ``createdAt``/``updatedAt`` as naive UTC datetimes
MEDIA_SCHEMA = {"external_id": "string", "system_name": "string", "found": "boolean", "media_id": "string",
                "version": "Int64", "media_type": "string", "title": "string", "url": "string",
                "mime_type": "string", "width": "Int64", "height": "Int64", "bytes": "Int64",
                "created": "datetime", "modified": "datetime", "metadata": "object"}
JOBS_SCHEMA = {"job_id": "string", "system_name": "string", "images": "Int64", "state": "string",
               "finished": "boolean", "source": "string", "chunk": "string", "recorded_at": "string"}


class AsyncClient(ServiceClient):
    """Async Livingdocs client; see :func:`connect` and the module docstring."""

    service = SERVICE

    def __init__(self, base_url: str | None = None, token: "str | Secret | None" = None, api_version: str = "v1",
                 *, transport: Any = None, timeouts: Timeouts | None = None, retry: RetryPolicy | None = None,
                 max_connections: int = 16, import_attempts: int | None = None) -> None:
        if not token:
            raise _service.missing_fields_error(SPEC, ["token"])
        secret = token if isinstance(token, Secret) else Secret(str(token))
        register_secret(secret.reveal())
        self.base_url = str(base_url or "https://server.livingdocs.io").rstrip("/")
        self.api_version = str(api_version or "v1").strip()
        self.auth = BearerToken(secret)
        self.http = self._open_http(self.base_url, auth=self.auth, headers={"Accept": "application/json"},
                                    transport=transport, timeouts=timeouts, retry=retry,
                                    max_connections=max_connections)
        #: how many times an import POST is tried when the service answers 429 (with Retry-After) or 5xx;
        #: by default the retry policy's ``attempts`` (its waits are the policy's too)
        self.import_attempts = max(1, int(import_attempts if import_attempts is not None else self.http.retry.attempts))
        self._known: dict[str, dict[str, Any]] = {}
        self._journals: set[str] = set()

    def path(self, resource: str) -> str:
        return f"api/{self.api_version}/{resource.lstrip('/')}"

    def __repr__(self) -> str:
        return redact(f"<Livingdocs client {self.base_url} api={self.api_version}>")

    # -- requests ---------------------------------------------------------------------------------------
    async def _request(self, method: str, resource: str, *, scope: str, what: str, **kwargs: Any) -> Any:
        """One call; 401/403/410 become messages that say what is wrong with the token or version."""
        try:
            return await self.http.request(method, self.path(resource), what=what, **kwargs)
        except Unauthorized as exc:
            expired = "expire" in str(exc.details or "").lower()
            if expired:
                raise Unauthorized(f"the access token expired (could not {what})", service=SERVICE,
                                   method=exc.method, url=exc.url, status=401, details=exc.details,
                                   hint="Create a new token in the Livingdocs editor (Project Admin → Api "
                                        "Clients) and connect again with it.") from None
            raise Unauthorized(f"the access token was not accepted (could not {what}): "
                               f"{exc.details or 'unknown or invalid token'}", service=SERVICE, method=exc.method,
                               url=exc.url, status=401, details=exc.details,
                               hint="Check that the token is one of this project and server. " + TOKEN_HINT) from None
        except Forbidden as exc:
            raise Forbidden(f"the access token lacks the scope {scope} (needed to {what})", service=SERVICE,
                            method=exc.method, url=exc.url, status=403, details=exc.details,
                            hint=f"Give the API client the permission {scope} in the Livingdocs editor (Project "
                                 f"Admin → Api Clients), or use a token that has it.") from None
        except Gone as exc:
            raise Gone(f"the API version {self.api_version!r} is not served any more (could not {what})",
                       service=SERVICE, method=exc.method, url=exc.url, status=410, details=exc.details,
                       hint="Connect with api_version='v1' or a current dated version (e.g. '2026-01').") from None

    async def post_import(self, body: Mapping[str, Any]) -> str:
        """Start one import job: ``POST import/images`` with ``body`` (``systemName``, ``images``, and
        ``webhook`` / ``context`` when given) as it is; :meth:`import_images` calls it once per chunk.

        The POST is not idempotent, so this is its one repeat loop: on a 429 with ``Retry-After`` and on a 5xx
        it is sent again (``import_attempts`` times in all, waiting as the client's retry policy says —
        harmless even if the service took it, since it upserts by system name and id); the usage limit (a
        429 with an array body, or without ``Retry-After``) is tried at most twice more. A lost answer is
        not repeated here (the caller decides).

        Returns
        -------
        str
            The new job's id.

        Raises
        ------
        QuotaExhausted
            The plan's usage limit is reached (the service's own message).
        RateLimited, ServerError
            Still 429 / 5xx after ``import_attempts`` tries.
        Unauthorized, Forbidden, ValidationError, TransportError
            As for every call (a ``TransportError`` says by ``delivery`` whether the request may have arrived).
        """
        usage_tries = 0
        attempt = 0
        while True:
            attempt += 1
            response = await self._request("POST", "import/images", scope=WRITE_SCOPE, what="start an image import",
                                           json=dict(body), idempotent=False, allow=IMPORT_RETRY_STATUSES,
                                           headers={"Content-Type": "application/json; charset=utf-8"})
            status = response.status_code
            if status < 300:
                data = json_or_none(response)
                job_id = data.get("id") if isinstance(data, Mapping) else None
                if not job_id:
                    raise ToolkitError("the import was answered without a job id", service=SERVICE,
                                       hint="The server may not be a Livingdocs server: check the base URL.")
                return str(job_id)
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            usage = status == 429 and (_is_array(response) or retry_after is None)
            if usage:
                usage_tries += 1
                if usage_tries > 2:
                    message = _usage_message(response)
                    raise QuotaExhausted(f"the usage limit of the plan is reached: {message}", service=SERVICE,
                                         method="POST", url=str(response.request.url), status=429, details=message,
                                         hint="The plan's daily import quota is used up: import the rest tomorrow, "
                                              "or ask Livingdocs for a larger plan. Nothing more was sent.")
                # the core's one backoff; the usage limit counts its own tries (Retry-After means another 429)
                await self.http.pause("POST", str(response.request.url), usage_tries, None, "HTTP 429 (usage limit)")
            else:
                if attempt >= self.import_attempts:
                    raise self.http.error_for(response, what="start an image import") from None
                await self.http.pause("POST", str(response.request.url), attempt, retry_after, f"HTTP {status}")

    async def job_status(self, job_id: str, *, allow_missing: bool = False) -> dict[str, Any] | None:
        """The status body of one import job as the service sends it (``GET import/images/status?id=``):
        ``{finished, state, startedAt}`` while it runs, with ``images`` once it finished.

        Parameters
        ----------
        job_id:
            The job's id (from :meth:`post_import`, ``ImportJob.ids``, a webhook or a journal).
        allow_missing:
            Return ``None`` for a job the service does not know instead of raising.

        Raises
        ------
        NotFound
            The service knows no such job (unless ``allow_missing``).
        """
        response = await self._request("GET", "import/images/status", scope=WRITE_SCOPE,
                                       what="read the status of an import job", params={"id": str(job_id)},
                                       allow=(404,))
        if response.status_code == 404:
            if allow_missing:
                return None
            raise NotFound(f"there is no import job {job_id!r} on this server", service=SERVICE, method="GET",
                           url=str(response.request.url), status=404, details=parse_error_body(response),
                           hint="Check the id (from job.ids, a webhook or the journal: lv.jobs()); a job of another "
                                "server or project is not found here.")
        try:
            body = response.json()
        except ValueError:
            raise ToolkitError("the job status was not JSON", service=SERVICE,
                               hint="The server may not be a Livingdocs server: check the base URL.") from None
        return body if isinstance(body, dict) else {}

    def remember_job(self, job_id: str, system_name: str | None, images: int | None, *, source: str,
                     chunk: str | None = None) -> None:
        """Add a job to those :meth:`jobs` lists (``source``: ``this connection``, ``re-attached``,
        ``journal``); a job already listed keeps its first entry. No call to the service."""
        self._known.setdefault(job_id, {"job_id": job_id, "system_name": system_name, "images": images,
                                        "source": source, "chunk": chunk,
                                        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})

    def remember_journal(self, path: Any) -> None:
        """Add a journal file whose recorded import jobs :meth:`jobs` lists. No call to the service."""
        self._journals.add(str(path))

    # -- public -----------------------------------------------------------------------------------------
    async def import_images(self, images: Any, system_name: str, webhook: Any = None, context: Any = None,
                            chunk_size: int = 100, journal: Any = None, *, concurrency: "int | str" = "auto",
                            progress: bool = True) -> ImportJob:
        """Import images by URL into the media library: one server job per chunk, all under one ImportJob.

        Parameters
        ----------
        images:
            A DataFrame or a list of records with ``url`` (http/https), ``id`` (the image's id in the source
            system), and optionally ``fileName`` (the title; also ``file_name`` or ``title``), ``metadata``
            (a dict, JSON text, or ``metadata.<name>`` columns) and ``mediaType`` (also ``media_type``).
        system_name:
            The source system; with the id it identifies each image (importing again updates it, or
            reports it ``skipped`` when nothing changed).
        webhook:
            A URL Livingdocs POSTs to when each job is done, or a :class:`WebhookInbox`.
        context:
            An object echoed in the webhook (at most 8192 bytes as JSON).
        chunk_size:
            Images per import call (one server job each); 100 by default.
        journal:
            A journal file path (or :class:`toolkit.core.journal.Journal`): each chunk sent and its job id are
            recorded, so calling again with the same rows re-attaches instead of sending again. ``None``: a
            journal in memory for this call only.
        concurrency:
            Import calls in flight at once (after the first): ``"auto"`` (the default: as many as Livingdocs
            takes, see :mod:`toolkit.core.limits`) or a whole number from 1 to 64.
        progress:
            A progress bar while many chunks are sent.

        Returns
        -------
        ImportJob
            ``ids``, ``status()``, ``wait()``, ``results()`` (one row per input image; bad rows ``invalid``,
            ``in_doubt`` the rows of a chunk whose import call may have arrived but got no answer: sending the
            same rows again is safe, the service upserts by system name and id).

        Raises
        ------
        ValidationError
            ``system_name`` missing, ``context`` too large, a bad ``webhook``/``chunk_size``; nothing was sent.
        Unauthorized, Forbidden
            The token is unknown or expired, or lacks ``public-api:write`` (nothing was imported).
        QuotaExhausted
            The plan's daily usage limit (the service's own message), when no chunk was accepted.
        """
        return await start_import(self, images, system_name, webhook, context, chunk_size, journal,
                                  concurrency=concurrency, progress=progress)

    async def job(self, job_id: "str | Iterable[str]") -> ImportJob:
        """Re-attach to import jobs by id (from a webhook, a journal, an earlier kernel).

        Parameters
        ----------
        job_id:
            One job id, or several.

        Returns
        -------
        ImportJob
            Its ``results()`` are the service's per-image results, in the service's order.

        Raises
        ------
        NotFound
            The server knows no job with this id.
        """
        ids = [job_id] if isinstance(job_id, str) else [str(j) for j in job_id]
        if not ids or any(not str(j).strip() for j in ids):
            raise ValidationError("give a job id (text), e.g. lv.job(job.ids[0])", service=SERVICE)
        bodies = await asyncio.gather(*(self.job_status(j.strip()) for j in ids))
        jobs = []
        for j, body in zip(ids, bodies):
            server = ServerJob(j.strip())
            parse_status(body, server)
            if server.images is not None:
                server.total = len(server.images) or None
            jobs.append(server)
            known = self._known.get(server.job_id)
            if known and server.total is None:
                server.total = known.get("images")
            self.remember_job(server.job_id, None, server.total, source="re-attached")
            self._known[server.job_id].update(state=server.state, finished=server.finished)
        return ImportJob(self, jobs=jobs)

    def jobs(self) -> Any:
        """The import jobs this connection started or re-attached, and those its journals recorded.

        Returns
        -------
        DataFrame
            job_id, system_name, images, state (as last seen; empty when not seen), finished, source
            (``this connection`` / ``re-attached`` / ``journal``), chunk, recorded_at. ``attrs["kind"] == "jobs"``.
        """
        rows: dict[str, dict[str, Any]] = {k: dict(v) for k, v in self._known.items()}
        prefix = f"{SERVICE}|{self.base_url}|"
        for path in sorted(self._journals):
            try:
                book = Journal(path, readonly=True, service=SERVICE)
            except ToolkitError:
                continue
            try:
                for entry in book.entries():
                    if not str(entry.get("destination", "")).startswith(prefix) or not entry.get("remote_id"):
                        continue
                    extra = json.loads(entry["extra"]) if entry.get("extra") else {}
                    job_id = str(entry["remote_id"])
                    row = rows.setdefault(job_id, {"job_id": job_id, "source": "journal"})
                    row.setdefault("system_name", extra.get("system_name"))
                    if row.get("system_name") is None:
                        row["system_name"] = extra.get("system_name")
                    if row.get("images") is None:
                        row["images"] = extra.get("images")
                    row.setdefault("chunk", entry.get("label"))
                    row.setdefault("recorded_at", entry.get("updated"))
                    if entry.get("state") == "failed":
                        row["state"], row["finished"] = "failed", True
            finally:
                book.close()
        return frame(list(rows.values()), JOBS_SCHEMA, kind="jobs", service=SERVICE)

    async def media(self, external_ids: Any, system_name: str, *, concurrency: "int | str" = "auto") -> Any:
        """Look images up in the media library by their source-system id.

        Parameters
        ----------
        external_ids:
            One id or several (a list, a Series such as ``results["external_id"]``).
        system_name:
            The source system they were imported with.

        Returns
        -------
        DataFrame
            One row per id, in order: external_id, system_name, found, media_id, version, media_type, title,
            url, mime_type, width, height, bytes (the asset's size), created, modified (naive UTC datetimes),
            metadata. ``attrs["kind"] == "assets"``. (``bytes``, ``created`` and ``modified`` replace the
            earlier ``size``, ``created_at`` and ``updated_at``.)
        """
        if isinstance(external_ids, (str, int)):
            external_ids = [external_ids]
        ids = [str(i).strip() for i in list(external_ids) if i is not None and str(i).strip()]
        if not isinstance(system_name, str) or not system_name.strip():
            raise ValidationError("system_name is required to look images up by id", service=SERVICE)
        concurrency = check_concurrency(concurrency, SERVICE)
        gate = Gate(concurrency)

        async def one(ext: str) -> dict[str, Any]:
            async with gate:
                response = await self._request("GET", "mediaLibrary", scope=READ_SCOPE,
                                               what="look up media library entries",
                                               params={"externalId": ext, "systemName": system_name.strip()})
            entries = _entries(response)
            match = next((e for e in entries if (id_text(e.get("externalId")) or ext) == ext), None)
            return _media_row(ext, system_name.strip(), match)

        rows = await asyncio.gather(*(one(i) for i in ids))
        return frame(list(rows), MEDIA_SCHEMA, kind="assets", service=SERVICE)

    async def check(self, system_name: str | None = None, external_id: str | None = None) -> Any:
        """A live contract check: a few read-only calls (a media library lookup, the status of a job that does
        not exist) and one row per assumption (``service, check, assumption, answered, verdict, what_to_do``;
        verdict ``ok``, ``differs`` or ``failed``). ``external_id`` and ``system_name`` of an imported image
        add the comparison of its entry's fields. Nothing is written. See :mod:`toolkit.livingdocs.check`."""
        from ..core.check import check_client

        return await check_client(self, system_name=system_name, external_id=external_id)

    async def fetch_image(self, url: str, *, max_bytes: int = 20 * 1024 * 1024) -> Any:
        """The picture at ``url`` (a result row's ``url``) as a PIL image, or ``None`` when it is not a picture
        Pillow reads (an SVG, say). The token is never sent with it: image URLs may be on another host
        (the image service).

        Raises
        ------
        NotFound, TransportError
            The picture cannot be fetched.
        """
        import io

        from PIL import Image, UnidentifiedImageError

        response = await self.http.request("GET", str(url), authenticate=False, what="fetch the picture")
        data = response.content[:max_bytes + 1]
        if len(data) > max_bytes:
            return None
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            return None
        return img


def _is_array(response: Any) -> bool:
    try:
        return isinstance(response.json(), list)
    except ValueError:
        return False


def _usage_message(response: Any) -> str:
    body = json_or_none(response)
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, Mapping):
            details = item.get("error_details")
            if isinstance(details, Mapping) and details.get("message"):
                return str(details["message"])
            if item.get("message"):
                return str(item["message"])
    return parse_error_body(response) or "Usage Limit Exceeded"


def _entries(response: Any) -> list[dict[str, Any]]:
    body = json_or_none(response)
    if isinstance(body, list):
        return [e for e in body if isinstance(e, dict)]
    if isinstance(body, Mapping):
        for key in ("results", "mediaLibraryEntries", "entries", "items"):
            if isinstance(body.get(key), list):
                return [e for e in body[key] if isinstance(e, dict)]
        if body.get("id") and body.get("asset"):
            return [dict(body)]
    return []


def _media_row(ext: str, system: str, entry: Mapping[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        return {"external_id": ext, "system_name": system, "found": False}
    asset = entry.get("asset") if isinstance(entry.get("asset"), Mapping) else {}
    metadata = entry.get("metadata")
    # the id as text and the sizes as whole numbers whichever shape came (the vendor's SDK types a media id
    # as a number, its reference and our sandbox send text): one dtype per column
    return {"external_id": ext, "system_name": entry.get("systemName") or system, "found": True,
            "media_id": id_text(entry.get("id")), "version": whole_number(entry.get("version")),
            "media_type": entry.get("mediaType"),
            "title": entry.get("title") or (metadata.get("title") if isinstance(metadata, Mapping) else None),
            "url": asset.get("url"), "mime_type": asset.get("mimeType"), "width": whole_number(asset.get("width")),
            "height": whole_number(asset.get("height")), "bytes": whole_number(asset.get("size")),
            "created": entry.get("createdAt"), "modified": entry.get("updatedAt"),  # UTC by frame()
            "metadata": metadata}


Client = sync_class(AsyncClient, "Client", module=__name__,
                    doc="Sync Livingdocs client (see toolkit.livingdocs.connect); each call blocks until done.")

SPEC = register(ServiceSpec(name=SERVICE, title="Livingdocs", fields=FIELDS, client=AsyncClient, sync=Client))


def connect(base_url: str | None = None, token: "str | Secret | None" = None, api_version: str | None = None,
            **options: Any) -> Any:
    """Connect to Livingdocs and return the sync :class:`Client`.

    Parameters
    ----------
    base_url:
        The server with any path prefix (``https://server.livingdocs.io``, ``http://localhost:9090``, the
        editor's ``https://edit.livingdocs.io/proxy/api``).
    token:
        A project access token (Project Admin → Api Clients); sent as ``Authorization: Bearer``.
    api_version:
        ``v1`` (default), ``beta`` or a dated version such as ``2026-01``.

    Missing fields come from ``TOOLKIT_LIVINGDOCS_BASE_URL`` / ``_TOKEN`` / ``_API_VERSION`` (environment,
    ``.env``, keyring).
    """
    return _service.connect(SERVICE, base_url=base_url, token=token, api_version=api_version, **options)
