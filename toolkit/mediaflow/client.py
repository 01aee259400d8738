"""The Mediaflow client: the OAuth2 refresh-token grant as a POST form (no secret in any URL), then
``Authorization: Bearer``. ``base_url`` is the documented form that ends in the API version
(``https://customerapi.mediaflowpro.com/1``); paths such as ``oauth2/token`` are relative to it, so a
path prefix before the version (a proxy) works too.

    mf = toolkit.mediaflow.connect(client_id=…, client_secret=…, refresh_token=…)
    mf.latest(limit=50)                 # newest images first
    mf.search("sommar stockholm")       # files in the service's order
    mf.folders(); mf.files(folder_id); mf.file(file_id)
    mf.previews(files)                  # PIL images for toolkit.widgets.image_grid
    mf.formats(); mf.download_urls(files, format=0)
    mf.upload(path, folder_id); mf.upload_folder(folder, folder_id)
    mf.report_usage(files, page_url, page_name); mf.usages(files)

Written once, async (:class:`AsyncClient`); :func:`connect` returns the generated sync :class:`Client`.
See ``docs/mediaflow.md`` for the contract this implements and the choices made where it is silent.
"""

from __future__ import annotations

from dataclasses import replace

import os
import time
from typing import Any, Callable, Sequence

from ..core import service as _service
from ..core.auth import RefreshTokenGrant
from ..core.client import ServiceClient
from ..core.credentials import Secret
from ..core.frames import ToolkitFrame, ToolkitSeries
from ..core.http import RetryPolicy, Timeouts
from ..core.journal import destination
from ..core.redact import redact
from ..core.registry import Field, ServiceSpec, register
from ..core.sync import sync_class
from . import assets as _assets
from . import uploads as _uploads
from . import usage as _usage

__all__ = ["AsyncClient", "Client", "connect", "FIELDS", "DEFAULT_BASE_URL", "ENVIRONMENTS", "MediaflowTokenGrant"]

SERVICE = "mediaflow"
DEFAULT_BASE_URL = "https://customerapi.mediaflowpro.com/1"

#: environment name → base URL (both hosts are documented; same path layout). ``sandbox`` means the
#: toolkit's running sandbox.
ENVIRONMENTS = {"production": DEFAULT_BASE_URL, "api": "https://api.mediaflow.com/1"}

FIELDS = [
    Field("environment", "Environment", required=False, default="production",
          help="production (customerapi.mediaflowpro.com), api (api.mediaflow.com) or sandbox"),
    Field("base_url", "Base URL", required=False, help="ends in the API version, e.g. …/1; overrides the environment"),
    Field("client_id", "Client id"),
    Field("client_secret", "Client secret", secret=True),
    Field("refresh_token", "Refresh token (server key)", secret=True),
]

TOKEN_HINTS = {
    400: "Mediaflow refused the token request: check the client id, client secret and refresh token.",
    401: "Mediaflow did not accept the client id, client secret or refresh token (server key): check them "
         "(Mediaflow support issues them). A refresh token replaced by a newer one no longer works.",
    403: "Mediaflow refused the token request: check the client id, client secret and refresh token.",
}

HINTS = {
    401: "Mediaflow did not accept the access token even after renewing it: connect again, and check the "
         "client id, client secret and refresh token.",
    403: "The integration lacks the right for this in Mediaflow: ask the Mediaflow administrator for it.",
    404: "Mediaflow has no such file or folder: check the id (ids may be negative).",
}


class MediaflowTokenGrant(RefreshTokenGrant):
    """The refresh-token grant, renewed early enough for short lifetimes too: a token of lifetime ``L``
    is renewed ``max(L/2, L - leeway)`` seconds after the token request was *sent* (the server counts
    from when it issued it, which is later), so no call goes out with an expired token."""

    async def _renew(self, http: Any) -> None:
        started = time.monotonic()
        self._last_lifetime: float | None = None
        await super()._renew(http)
        lifetime = self._last_lifetime
        if lifetime:
            self._expires_at = started + max(lifetime / 2, lifetime - self.leeway)

    async def fetch_headers(self, http: Any) -> tuple[dict[str, str], float | None]:
        headers, lifetime = await super().fetch_headers(http)
        self._last_lifetime = lifetime
        return headers, lifetime


class AsyncClient(ServiceClient):
    """Async Mediaflow client; see :func:`connect` and the module docstring."""

    service = SERVICE

    def __init__(self, client_id: str | None = None, client_secret: "str | Secret | None" = None,
                 refresh_token: "str | Secret | None" = None, base_url: str | None = None, *,
                 environment: str | None = None, transport: Any = None, timeouts: Timeouts | None = None,
                 retry: RetryPolicy | None = None, max_connections: int = 16,
                 on_rotate: Callable[[Secret], None] | None = None, environments: Any = None) -> None:
        missing = [n for n, v in (("client_id", client_id), ("client_secret", client_secret),
                                  ("refresh_token", refresh_token)) if not v]
        if missing:
            raise _service.missing_fields_error(SPEC, missing)
        if base_url is None and environment:
            base_url = _service.resolve_urls(SPEC, {"environment": environment}, environments).get("base_url")
        self.base_url = str(base_url or DEFAULT_BASE_URL).rstrip("/")
        self.environment = environment
        self.client_id = str(client_id)
        self.auth = MediaflowTokenGrant(f"{self.base_url}/oauth2/token", self.client_id, client_secret or "",
                                        refresh_token or "", hints=TOKEN_HINTS, on_rotate=on_rotate)
        self.http = self._open_http(self.base_url, auth=self.auth, headers={"Accept": "application/json"},
                                    transport=transport, timeouts=timeouts, retry=retry,
                                    max_connections=max_connections, hints=HINTS)
        # signed upload URLs live on other hosts: no auth, no base URL, and no retries of its own
        # (uploads.py decides what may be repeated: the same upload URL, never a second one blindly); the rest
        # of the analyst's policy holds, e.g. how long a Retry-After is honoured (the pause of the host too)
        self.transfer = self._open_http("", transport=transport, timeouts=timeouts,
                                        retry=replace(self.http.retry, attempts=1), max_connections=max_connections)
        #: the path form of download links that has answered on this connection (downloads.PATH_FORMS)
        self._download_form: str | None = None

    # -- plumbing ---------------------------------------------------------------------------------------
    def destination(self, folder_id: Any) -> str:
        """The journal key of an upload folder: service, base URL and folder id (never a secret)."""
        return destination(SERVICE, self.base_url, folder=int(folder_id))

    @property
    def refresh_token(self) -> Secret:
        """The refresh token in use (a rotated one replaces the one given; never printed)."""
        return self.auth.refresh_token

    # -- reading ----------------------------------------------------------------------------------------
    async def latest(self, type: str | None = "image", processed: bool = True, limit: int = 100,
                     fields: "str | Sequence[str] | None" = None) -> ToolkitFrame:
        """The latest files, newest first (``GET file/latest``, page after page until ``limit``).

        Parameters
        ----------
        type : ``"image"`` (default), ``"video"``, ``"document"`` … or ``"any"``/``None`` for every type.
        processed : only files Mediaflow has finished processing (default True; a fresh upload appears
            a moment later).
        limit : at most this many files (a whole number ≥ 1); as many pages are fetched as it needs.
        fields : Mediaflow field names (``"id,name,uploadedby"`` or a list) passed through as ``fields=``;
            ``"all"`` for every field. Default: a useful set including the preview URLs.

        Returns
        -------
        DataFrame, one row per file; snake_case columns (``uploaded_by``, ``has_preview``, ``small_preview``
        …), the nested ``type`` as ``type``/``extension``/``type_description``; ``attrs["kind"] == "assets"``.

        Raises
        ------
        ValidationError for a bad ``limit``; Unauthorized when the credentials are refused.
        """
        return await _assets.latest(self, type=type, processed=processed, limit=limit, fields=fields)

    async def search(self, text: str, type: str | None = None, folder_id: int | None = None, limit: int = 100,
                     fields: "str | Sequence[str] | None" = None) -> ToolkitFrame:
        """Files whose name, description, alt text … hold the words of ``text`` (``POST search/file``, as
        Mediaflow's file selector searches), in the order the service gives them.

        Parameters
        ----------
        text : the words to search for (every word must be found).
        type : ``"image"``, ``"video"``, ``"document"`` … to keep only files of that type (``None``: every
            type); ``folder_id`` : to keep only files directly in that folder. Both are applied to the hits,
            as the file selector does, and pages are read until ``limit`` files are kept.
        limit : at most this many files (a whole number ≥ 1).
        fields : as for :meth:`latest`.

        Returns
        -------
        DataFrame with the columns of :meth:`latest`; ``attrs["kind"] == "assets"``.

        Raises
        ------
        ValidationError for empty ``text``, a bad ``limit``, ``folder_id`` or field; Unauthorized when the
        credentials are refused.
        """
        return await _assets.search(self, text, type=type, folder_id=folder_id, limit=limit, fields=fields)

    async def folders(self) -> ToolkitFrame:
        """The folder tree as a flat DataFrame (``GET foldertree``), parents before children: ``id, name,
        parent, depth, has_children, archived, type, path, created_by, parents`` (``parent`` 0 = top level,
        also when Mediaflow sends none; ids may be negative; ``path`` is the names from the top, joined with
        " / "; ``type`` and ``created_by`` as text, ``parents`` the list of the parent folders' ids, top
        first)."""
        return await _assets.folders(self)

    async def files(self, folder_id: int, type: str | None = "any", processed: bool = False,
                    fields: "str | Sequence[str] | None" = None) -> ToolkitFrame:
        """The files of one folder (``GET folder/{id}/files``), newest first, columns as :meth:`latest`.

        Raises NotFound when the folder does not exist."""
        return await _assets.files(self, folder_id, type=type, processed=processed, fields=fields)

    async def file(self, file_id: int, fields: "str | Sequence[str] | None" = None) -> ToolkitSeries:
        """One file (``GET file/{id}``) as a Series with the columns of :meth:`latest`.

        Raises NotFound when there is no such file."""
        return await _assets.file(self, file_id, fields=fields)

    async def previews(self, files: Any, size: str = "small", concurrency: "int | str" = "auto") -> list[Any]:
        """The files' preview pictures as PIL images, in order (``None`` for a file without a preview).

        ``files``: a DataFrame of :meth:`latest`/:meth:`files` (its ``*_preview`` columns are used), a
        Series of :meth:`file`, or file ids. ``size``: ``thumb``, ``small`` or ``medium``. Previews are
        public URLs: fetched without the access token, ``concurrency`` at a time (``"auto"``: as many as the
        host takes; see :mod:`toolkit.core.limits`). Goes straight into ``toolkit.widgets.image_grid``."""
        return await _assets.previews(self, files, size=size, concurrency=concurrency)

    async def formats(self) -> ToolkitFrame:
        """The download formats (``GET formats``): ``id, name, suffix, filetype, width, height, keep_ratio``
        (-1 for a width or height keeps the original's); ``attrs["kind"] == "records"``. Format 0, the
        original file, is not listed but always there. See :mod:`toolkit.mediaflow.downloads`."""
        from . import downloads as _downloads

        return await _downloads.formats(self)

    async def download_urls(self, files: Any, format: Any = 0, concurrency: "int | str" = "auto") -> ToolkitFrame:
        """Signed download links of the files (``GET file/{id}/downloads/{formatId}``), one row per file.

        Parameters
        ----------
        files : a DataFrame of :meth:`latest`/:meth:`files` (its ``id`` column; the rows keep its index), a
            Series of :meth:`file`, or file ids.
        format : a Mediaflow format id: 0 (default, also ``"original"``) the original file, or an id of
            :meth:`formats`.
        concurrency : link requests in flight at once (``"auto"``, the default: as many as Mediaflow takes).

        Returns
        -------
        DataFrame: ``id, format_id, format, filetype, expires_in, download_url, watermark, is_preview,
        download_warning, http_status, message``. The links are secrets (anyone holding one can fetch the
        file until it expires): ``download_url`` is shown masked and registered for redaction;
        ``df["download_url"].tolist()`` gives the real links. A file or format Mediaflow does not know is a
        row with ``http_status`` 404, a file the integration may not download a 403 row; a download warning
        is ``download_warning`` and said in ``message``. See :mod:`toolkit.mediaflow.downloads`.

        Raises
        ------
        ValidationError for a bad ``format``, ``concurrency`` or file id; Unauthorized when the credentials
        are refused.
        """
        from . import downloads as _downloads

        return await _downloads.download_urls(self, files, format=format, concurrency=concurrency)

    async def usages(self, files: Any, concurrency: "int | str" = "auto") -> ToolkitFrame:
        """Where Mediaflow says the files are used (``GET file/{id}/usage``): one row per usage, ``file_id, id,
        type, url, page_name, contact, project, publish_date, amount, description, reported_at,
        reported_by``. Raises NotFound for a file Mediaflow does not have."""
        return await _usage.usages(self, files, concurrency=concurrency)

    async def check(self) -> Any:
        """A live contract check: a few read-only calls (a token, one small page of ``file/latest``, one file,
        the folder tree) and one row per assumption (``service, check, assumption, answered, verdict,
        what_to_do``; verdict ``ok``, ``differs`` or ``failed``). Nothing is written. See
        :mod:`toolkit.mediaflow.check`."""
        from ..core.check import check_client

        return await check_client(self)

    # -- writing ----------------------------------------------------------------------------------------
    async def upload(self, path: "str | os.PathLike[str]", folder_id: int) -> ToolkitSeries:
        """Upload one file to a folder: ``POST file`` for an upload URL, then ``PUT`` the bytes there.

        Returns one row (Series): ``file, outcome, message, id, folder_id, filename, bytes, http_status``.
        Every answer of the service is a row (``forbidden`` for a folder the integration may not upload
        to: nothing sent). Raises ValidationError when ``path`` is not a file."""
        return await _uploads.upload(self, path, folder_id)

    async def upload_folder(self, folder: "str | os.PathLike[str]", folder_id: int, concurrency: "int | str" = "auto",
                            dry_run: bool = False, journal: "str | os.PathLike[str] | None" = None,
                            progress: bool = True) -> ToolkitFrame:
        """Upload every file of ``folder`` to Mediaflow folder ``folder_id``, resumably; one row per
        directory entry. See :func:`toolkit.mediaflow.uploads.upload_folder`."""
        return await _uploads.upload_folder(self, folder, folder_id, concurrency=concurrency, dry_run=dry_run,
                                            journal=journal, progress=progress)

    async def report_usage(self, files: Any, page_url: str, page_name: str, project: str | None = None,
                           contact: str | None = None, types: Sequence[str] = ("web",), remove: bool = False,
                           dry_run: bool = False, journal: "str | os.PathLike[str] | None" = _usage.DEFAULT_JOURNAL,
                           concurrency: "int | str" = "auto", progress: bool = True) -> ToolkitFrame:
        """Tell Mediaflow that the files are used on a web page (or, ``remove=True``, no longer are), exactly
        once: one row per file.

        Parameters
        ----------
        files : a DataFrame with an ``id`` column, a Series of :meth:`file`, or file ids (a file given twice
            is one row).
        page_url, page_name : the page's address (http/https) and title.
        project, contact : the project and the person responsible Mediaflow shows (default ``"toolkit"``).
        types : the usage types (default ``("web",)``).
        remove : report that the files are no longer used on the page.
        dry_run : send nothing (not even a token request); rows say what would be reported.
        journal : where reports are remembered so a re-run reports nothing twice: by default
            ``mediaflow-usage.sqlite`` in the toolkit's state folder; a file path; or ``None`` (this call only).

        Returns
        -------
        DataFrame ``id, outcome, message, page_url, page_name, types, removed, http_status``; ``df.summary``.
        Outcomes: reported, already_reported, would_report, failed (with Mediaflow's message), in_doubt,
        deferred. See :mod:`toolkit.mediaflow.usage`.

        Raises
        ------
        ValidationError for a bad argument (nothing sent); Unauthorized when the credentials are refused.
        """
        return await _usage.report_usage(self, files, page_url, page_name, project=project, contact=contact,
                                         types=types, remove=remove, dry_run=dry_run, journal=journal,
                                         concurrency=concurrency, progress=progress)

    def __repr__(self) -> str:
        return redact(f"<Mediaflow client {self.base_url} client_id={self.client_id}>")


Client = sync_class(AsyncClient, "Client", module=__name__,
                    doc="Mediaflow client (sync); every method has the async method's signature and docstring.")

SPEC = register(ServiceSpec(name=SERVICE, title="Mediaflow", fields=FIELDS, client=AsyncClient, sync=Client,
                            environments=ENVIRONMENTS, environment_field="environment", url_fields=("base_url",)))


def connect(client_id: str | None = None, client_secret: "str | Secret | None" = None,
            refresh_token: "str | Secret | None" = None, base_url: str | None = None, **options: Any) -> Any:
    """Connect to Mediaflow and return the sync :class:`Client`.

    ``base_url`` ends in the API version (default ``https://customerapi.mediaflowpro.com/1``; a path
    prefix before the version works). Missing fields come from ``TOOLKIT_MEDIAFLOW_<FIELD>`` (environment,
    ``.env``, keyring); ``environment="sandbox"`` uses a running toolkit sandbox. Options: ``environment``,
    ``on_rotate`` (called with the new refresh token when Mediaflow rotates it), ``timeouts``, ``retry``.
    """
    return _service.connect(SERVICE, client_id=client_id, client_secret=client_secret,
                            refresh_token=refresh_token, base_url=base_url, **options)
