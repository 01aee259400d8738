"""Mediaflow emulator: the documented REST API (files, folders, uploads, downloads), on loopback HTTP.

Every API route exists under ``/1/…`` and, for a deployment behind a proxy, under ``/proxy/mf/1/…``;
``credentials()["base_url"]`` is the documented form that ends in the API version (``…/1``).

* ``GET /1/oauth2/token?grant_type=refresh_token&client_id&client_secret&refresh_token`` (as documented)
  and the same ``POST`` form-encoded; ``grant_type=password`` with ``username``/``password`` of the demo
  user too → ``{"access_token", "token_type": "Bearer", "expires_in"}`` (plus a new ``refresh_token`` when
  ``rotate_refresh_tokens`` is on; the old one then stops working). Wrong client id, client secret,
  refresh token or password → ``401 {"status": 401, "error": "…"}`` saying which.
* Calls carry ``Authorization: Bearer …`` (the documented ``access_token`` query parameter works too and
  is recorded in ``query_token_uses``); invalid or expired → ``401 {"status", "error"}``.
* Errors are always ``{"status", "error"}``; every successful GET is a JSON array. ``fields=`` (lower-case,
  comma-separated; ``all``/``any`` for every field) selects fields, ``id`` always comes back.
* ``GET /1/file/latest`` (``processed``, ``page`` from 1, ``per_page`` default 20 max 100, ``type``),
  ``GET /1/file/{id}``, ``GET /1/folders`` (alias ``/1/folder``), ``GET /1/foldertree``,
  ``GET /1/folders/{id}/children``, ``GET /1/folder/{id}/files`` and ``/1/folders/{id}/files``.
* Previews without auth at ``/previews/{file_id}/{thumb|small|medium}.jpg``.
* Download links (§4.5): ``GET /1/file/{id}/downloads/{formatId}`` (singular ``file``: how Mediaflow's file
  selector asks, ``fileselector-web`` ``src/js/fileselector.js``/``modules/cropperview.js``) and
  ``GET /1/files/{id}/downloads/{formatId}`` (plural: the contract as first researched and the Rust crate
  ``mediaflow``, ``src/api.rs``), both also without the format id for every format of the file →
  ``[{"id", "format", "watermark", "isPreview", "filetype", "expiresIn", "downloadURL", "downloadWarning"}]``
  with ``downloadWarning`` a bool (the crate's ``FileDownloadFull``; true for a file whose ``mark`` is
  :data:`~toolkit.sandbox.mediaflow_data.WARNING_MARK`). Format 0 is the original; an image also has the
  formats of ``GET /1/format`` (alias ``/1/formats``). ``downloadURL`` is signed (``/download/{id}/{format}?
  signature=…``, no auth needed, a secret) and the same link each time it is asked for (an assumption: the
  documentation is silent); a bad signature → 403; a ``locked`` file → 403. The knob
  ``download_path_forms`` (``("file", "files")``) turns a form off (it then answers 404 ``No such endpoint``).
* Also as the vendor's clients call them: ``GET /1/file/{id}/folders`` (the folders holding the file),
  ``GET /1/file/{id}/checkpermissions`` (``[{"allowDownload", "allowDownloadReason"}]``), ``GET /1/marks``
  (``[{"mark", "name"}]``), ``GET /1/users/me`` (``id``, ``customerId`` always; ``fields=activeModules``: the
  knob ``active_modules``).
* Search: ``POST /1/search/file?fields=…`` with JSON ``{"searchTerm", "lang", "ai"}`` (the file selector,
  ``modules/fileview.js``): every file whose name, file name, description, alt text or photographer holds
  every word of ``searchTerm`` (any case); files with more words in the name first, then newest first. The
  file selector sends no paging and gets every hit; ``page``/``per_page`` page the hits as ``file/latest``
  does. ``lang`` must be one of :data:`SEARCH_LANGS`; ``ai`` is accepted and changes nothing here. Every call
  is in ``search_requests``.
* Usage reporting: ``POST /1/file/{id}/usage`` ``{"contact", "types": ["web"], "web": {"page", "pageName"},
  "project", "date"}`` (the Wagtail integration, ``mediaflowvideo/wagtail_hooks.py``) and
  ``POST /1/files/multiple/usages`` ``{"id": [...], "types", "date", "contact", "amount", "project",
  "removed", "web"}`` (the WordPress plugin, ``src/PingUsageController.php``; ``amount`` and ``removed`` as
  numbers/bools or as the documented strings ``"1"``/``"false"``) → ``200`` and the usages made (``[]`` for a
  removal). ``GET /1/file/{id}/usage`` lists a file's usages as the file selector reads them
  (``modules/fileinfo.js``: ``type`` ``"WEB"``, ``url``, ``pageName``, ``contact``, ``project``,
  ``publishDate``, ``created``, ``createdBy {id, name}``). A report is not idempotent here (each POST adds a
  usage: an assumption, the documentation is silent); ``removed: true`` deletes the file's usages of that
  type and page. Truth: ``usages`` (file id → list), ``usage_posts``.
* Upload: ``POST /1/file`` ``{"filename", "filesize", "toFolder"}`` → ``{"expiresIn", "uploadURL"}``; then
  ``PUT`` (or ``POST``) of the raw bytes (or one multipart file part) to ``uploadURL``, no auth needed →
  ``201 [file]`` with ``processed: false`` (true ``processing_seconds`` later). A repeated PUT to the same
  valid URL replaces the bytes of the same file; every ``POST /1/file`` is a new pending upload.

Values have the types of Mediaflow's own clients (see :mod:`toolkit.sandbox.mediaflow_data`): numbers for a
folder's ``type``/``createdBy`` and a file's ``uploadedBy``, parent-folder objects in ``parents``, a preview's
``size`` as text (the crate's ``Preview``). The knob ``legacy_shapes`` serves the shapes of the contract as first
researched instead (text for those, a list of ids, ``downloadWarning: ""``), so a test can feed a client both.

Test truth: ``files``, ``stored_count()``, ``uploads_requested``, ``upload_puts``, ``download_gets``, ``token_requests``,
``query_token_uses``, ``rejected_token_uses``, ``usages``, ``usage_posts``, ``search_requests``, ``expire_tokens()``,
``expire_upload_urls()``, ``reset_uploads()``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets as _secrets
import time
from typing import Any, Callable
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from .forms import read_form
from .mediaflow_data import (API_USER, FORMATS, MARKS, PREVIEW_SIZES, USERS, WARNING_MARK, file_type_for, make_files,
                             make_folders, make_preview, user_name)
from .server import Emulator

__all__ = ["MediaflowEmulator", "FILE_FIELDS", "FOLDER_FIELDS", "FORMAT_FIELDS", "USAGE_FIELDS", "SEARCH_LANGS",
           "PROXY_PREFIX"]

PROXY_PREFIX = "/proxy/mf"

#: public file fields (camelCase), in output order
FILE_FIELDS = ("id", "name", "filename", "type", "filesize", "checksum", "width", "height", "uploaded",
               "uploadedBy", "addedToFolder", "photographer", "description", "processed", "hasPreview", "icon",
               "previews", "smallPreview", "mediumPreview", "thumbPreview", "gdprStatus", "alttext", "folderId",
               "dpi", "rating", "nrDownloads", "mark", "instructions", "hasVersions", "hasHistory", "locked", "comment",
               "gdprType", "mediaId", "alpha")
DEFAULT_FILE_FIELDS = ("id", "name", "filename", "type", "filesize", "uploaded", "processed", "hasPreview")
FOLDER_FIELDS = ("id", "name", "type", "depth", "parent", "created", "createdBy", "hasChildren", "archived",
                 "viewLayout", "separator", "parents")
DEFAULT_FOLDER_FIELDS = ("id", "name", "type", "parent", "depth")
TREE_FIELDS = ("id", "name", "type", "depth", "archived", "parent", "hasChildren", "separator")
DOWNLOAD_FIELDS = ("id", "format", "watermark", "isPreview", "filetype", "expiresIn", "downloadURL", "downloadWarning")
#: ``GET format``: the crate asks ``id,name,width,height``, the file selector also ``suffix,filetype,keepRatio``
FORMAT_FIELDS = ("id", "name", "suffix", "filetype", "width", "height", "keepRatio", "dpi")
DEFAULT_FORMAT_FIELDS = ("id", "name", "width", "height")
USER_FIELDS = ("id", "name", "email", "customerId", "activeModules")
DEFAULT_USER_FIELDS = ("id", "name", "customerId")
USAGE_FIELDS = ("id", "type", "url", "pageName", "contact", "project", "publishDate", "amount", "description",
                "created", "createdBy")
#: the languages the file selector sends (it falls back to en-GB for any other locale)
SEARCH_LANGS = ("sv-SE", "en-GB", "fi-FI", "nb-NO", "de-DE")
CUSTOMER_ID = 4711
DOWNLOAD_FORBIDDEN = "You don't have permission to download this file"

FORBIDDEN_MESSAGE = "You don't have permission to upload to this folder"
EXPIRED_MESSAGE = "Upload URL has expired"
MAX_UPLOAD = 200 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _derive(seed: int, label: str, n: int) -> str:
    digest = hashlib.sha256(f"toolkit-sandbox-mediaflow-{seed}-{label}".encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    value = int.from_bytes(digest, "big")
    out = []
    for _ in range(n):
        value, r = divmod(value, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


class MediaflowEmulator(Emulator):
    name = "mediaflow"
    knobs = ("token_lifetime", "upload_url_lifetime", "processing_seconds", "rotate_refresh_tokens",
             "download_path_forms", "active_modules", "legacy_shapes", "shape")
    api_version = "1"
    #: ``shape`` (for the contract check, ``toolkit.check``): ``""`` as documented; ``"envelope"`` answers
    #: ``file/latest`` as ``{"files": [...]}`` instead of the array every GET of Mediaflow answers
    shape = ""

    def __init__(self, seed: int = 0, files: int = 60) -> None:
        super().__init__(seed)
        self.client_id = "sbx" + hashlib.sha256(f"mediaflow-id-{seed}".encode()).hexdigest()[:6]
        self.client_secret = _derive(seed, "client-secret", 31)
        self.refresh_token = _derive(seed, "refresh-token", 30)  # the one credentials() hands out first
        self.username = "demo@sandbox.example"
        self.password = _derive(seed, "demo-password", 16)
        #: seconds announced in ``expires_in`` (and enforced)
        self.token_lifetime: float = 7200
        #: seconds an upload URL stays valid (``expiresIn``)
        self.upload_url_lifetime: float = 600
        #: seconds after a stored upload until the file is ``processed``
        self.processing_seconds: float = 0.3
        #: when True each refresh_token grant answers a new refresh token and revokes the old one
        self.rotate_refresh_tokens: bool = False
        self._key = hashlib.sha256(f"mediaflow-signing-{seed}".encode()).digest()
        self._valid_refresh: set[str] = {self.refresh_token}
        self.current_refresh_token = self.refresh_token
        self.issued_refresh_tokens: list[str] = [self.refresh_token]
        self._tokens: dict[str, float] = {}  # access token → monotonic expiry
        self.issued_tokens: list[str] = []
        #: every token call: {"method", "grant_type", "secrets_in_query", "form_keys", "query_keys", "status", "time"}
        self.token_requests: list[dict[str, Any]] = []
        #: paths of API calls that authenticated with the ``access_token`` query parameter
        self.query_token_uses: list[str] = []
        #: API calls answered 401: {"path", "reason": "missing" | "invalid" | "expired", "time"}
        self.rejected_token_uses: list[dict[str, Any]] = []
        self.folders: list[dict[str, Any]] = make_folders(seed)
        self._folders = {f["id"]: f for f in self.folders}
        self._seeded = make_files(seed, files)
        #: file id → file dict (the public camelCase fields, ``folderId``, and ``data``: stored bytes or None)
        self.files: dict[int, dict[str, Any]] = {}
        self._ready_at: dict[int, float] = {}  # uploaded file id → monotonic time it becomes processed
        self._order: dict[int, int] = {}  # file id → insertion counter (ties in ``uploaded``)
        self._counter = 0
        self.uploads: dict[str, dict[str, Any]] = {}  # upload id → pending/used upload
        self.issued_upload_urls: list[str] = []
        self.uploads_requested = 0  # POST /1/file that answered an upload URL
        self.upload_puts = 0  # PUT/POST to an upload URL that stored bytes
        self._previews: dict[tuple[int, str], bytes] = {}
        #: seconds announced in a download link's ``expiresIn``
        self.download_url_lifetime: float = 3600
        self.issued_download_urls: list[str] = []
        self.download_gets = 0  # originals served through a download link
        self._originals: dict[int, bytes] = {}
        self._converted: dict[tuple[int, int], bytes] = {}
        self._next_file_id = 1_000_001
        #: which download paths are served: ``file/{id}/downloads`` and/or ``files/{id}/downloads``
        self.download_path_forms: tuple[str, ...] = ("file", "files")
        #: ``users/me`` ``activeModules``
        self.active_modules: tuple[str, ...] = ("ai_assisted_search_default", "ai_generated_keywords")
        #: serve the shapes of the contract as first researched (text ids, a list of parent ids,
        #: ``downloadWarning: ""``) instead of the vendor clients' types
        self.legacy_shapes: bool = False
        #: file id → its usages (as ``GET file/{id}/usage`` lists them)
        self.usages: dict[int, list[dict[str, Any]]] = {}
        #: every usage report: {"path", "body", "status"}
        self.usage_posts: list[dict[str, Any]] = []
        #: every search: {"term", "lang", "ai", "query"}
        self.search_requests: list[dict[str, Any]] = []
        self._usage_counter = 0
        self.reset_uploads()

    # -- truth for tests --------------------------------------------------------------------------------
    def credentials(self) -> dict[str, Any]:
        return {"base_url": f"{self.base_url}/{self.api_version}", "client_id": self.client_id,
                "client_secret": self.client_secret, "refresh_token": self.current_refresh_token}

    def proxied_base_url(self) -> str:
        """The base URL of the same API behind the path prefix ``/proxy/mf``."""
        return f"{self.base_url}{PROXY_PREFIX}/{self.api_version}"

    def secrets(self) -> list[str]:
        sigs = [u["signature"] for u in self.uploads.values()]
        return [self.client_secret, self.password, *self.issued_refresh_tokens, *self.issued_tokens,
                *self.issued_upload_urls, *sigs, *self.issued_download_urls,
                # every file's download signatures, issued or not: they depend on the seed only, so a scan
                # with the secrets of another sandbox of the same seed finds a leaked link too
                *(self._download_signature(fid, fmt) for fid in self.files for fmt in (0, *(f["id"] for f in FORMATS)))]

    def personal_data(self) -> list[str]:
        return []

    def stored_count(self, filename: str, folder_id: int) -> int:
        """How many distinct files named ``filename`` the folder holds."""
        return sum(1 for f in self.files.values() if f["filename"] == filename and f["folderId"] == int(folder_id))

    def uploaded_files(self) -> list[dict[str, Any]]:
        """Files stored through the upload URLs (not the seeded ones), oldest first."""
        return [self.files[i] for i in sorted(self._ready_at, key=lambda i: self._order[i]) if i in self.files]

    def folder(self, folder_id: int) -> dict[str, Any]:
        return self._folders[int(folder_id)]

    def forbidden_folder_id(self) -> int:
        """A folder where uploads answer 403."""
        return next(f["id"] for f in self.folders if not f["uploadAllowed"])

    def expire_tokens(self) -> None:
        """Every issued access token is expired from now on (the next call answers 401)."""
        for token in self._tokens:
            self._tokens[token] = 0.0

    def expire_upload_urls(self) -> None:
        """Every issued upload URL is past its lifetime from now on (403 "Upload URL has expired")."""
        for upload in self.uploads.values():
            upload["expires"] = 0.0

    def reset_uploads(self) -> None:
        """Forget uploaded files, upload URLs, usages and counters; the seeded files stay."""
        self.usages = {}
        self.usage_posts = []
        self.search_requests = []
        self.files = {}
        self._order = {}
        for f in self._seeded:
            self._add_file(dict(f))
        self._ready_at.clear()
        self.uploads.clear()
        self.uploads_requested = 0
        self.upload_puts = 0
        self._previews = {k: v for k, v in self._previews.items() if k[0] in self.files}

    # -- helpers ------------------------------------------------------------------------------------------
    def _add_file(self, f: dict[str, Any]) -> None:
        self._counter += 1
        self.files[f["id"]] = f
        self._order[f["id"]] = self._counter

    def _refresh(self, f: dict[str, Any]) -> dict[str, Any]:
        ready = self._ready_at.get(f["id"])
        if ready is not None and not f["processed"] and time.monotonic() >= ready:
            f["processed"] = True
            f["hasPreview"] = f["type"]["type"] in ("image", "video")
        return f

    def _public(self, f: dict[str, Any]) -> dict[str, Any]:
        out = {k: f[k] for k in FILE_FIELDS if k in f}
        if f["hasPreview"]:
            urls = {s: f"{self.base_url}/previews/{f['id']}/{s}.jpg" for s in PREVIEW_SIZES}
            # the size as text, as the crate's ``Preview`` has it
            out["previews"] = [{"name": s, "size": str(PREVIEW_SIZES[s]), "url": u} for s, u in urls.items()]
            out["smallPreview"], out["mediumPreview"], out["thumbPreview"] = urls["small"], urls["medium"], urls["thumb"]
        else:
            out["previews"], out["smallPreview"], out["mediumPreview"], out["thumbPreview"] = [], "", "", ""
        if self.legacy_shapes:  # the contract as first researched: a user name, text flags and numbers
            out.update(uploadedBy=USERS.get(out["uploadedBy"], ("", ""))[0] or str(out["uploadedBy"]),
                       dpi=str(out["dpi"]), rating=str(out["rating"]) if out["rating"] else "",
                       nrDownloads=str(out["nrDownloads"]), mark=str(out["mark"]) if out["mark"] else "",
                       hasVersions="true" if out["hasVersions"] else "false", locked="",
                       hasHistory=1 if out["hasHistory"] else 0, alpha="1" if out["alpha"] else "0",
                       previews=[dict(p, size=int(p["size"])) for p in out["previews"]])
        return {k: out[k] for k in FILE_FIELDS}

    def _folder(self, f: dict[str, Any]) -> dict[str, Any]:
        """A folder as served: the crate's types, or the first contract's shapes with ``legacy_shapes``."""
        if not self.legacy_shapes:
            return f
        kinds = {1: "folder", 2: "shared"}
        return dict(f, type=kinds.get(f["type"], str(f["type"])), createdBy=USERS.get(f["createdBy"], ("",))[0],
                    parents=[p["id"] for p in f["parents"]])

    def _download_signature(self, file_id: int, format_id: int) -> str:
        return _b64(hmac.new(self._key, f"download-{file_id}-{format_id}".encode(), hashlib.sha256).digest())

    def _original(self, f: dict[str, Any]) -> tuple[bytes, str]:
        """The original file's bytes and media type (stored bytes, or a picture made for a seeded file)."""
        ext = f["type"].get("extension", "")
        mime = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
                "tif": "image/tiff", "pdf": "application/pdf", "mp4": "video/mp4"}.get(ext, "application/octet-stream")
        if f.get("data") is not None:
            return f["data"], mime
        if f["id"] not in self._originals:
            if f["type"]["type"] == "image" and f["width"] and f["height"]:
                import io

                from PIL import Image

                with Image.open(io.BytesIO(make_preview(f"{self.seed}-{f['id']}", f["width"], f["height"],
                                                        "medium"))) as small:
                    big = small.convert("RGB").resize((f["width"], f["height"]))
                buf = io.BytesIO()
                fmt = {"png": "PNG", "gif": "GIF", "tif": "TIFF"}.get(ext, "JPEG")
                big.save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
                self._originals[f["id"]] = buf.getvalue()
            else:
                self._originals[f["id"]] = f"sandbox original of {f['filename']}".encode()
        return self._originals[f["id"]], mime

    def _newest_first(self, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(files, key=lambda f: (f["uploaded"], self._order[f["id"]]), reverse=True)

    def _issue_token(self) -> str:
        self._counter += 1
        exp = int(time.time() + self.token_lifetime)
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps({"serv": "17", "sub": self.client_id, "exp": exp, "jti": self._counter,
                                   "nonce": _secrets.token_hex(4)}).encode())
        sig = _b64(hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        token = f"{header}.{payload}.{sig}"
        self._tokens[token] = time.monotonic() + float(self.token_lifetime)
        self.issued_tokens.append(token)
        return token

    # -- app ------------------------------------------------------------------------------------------------
    def routes(self) -> list[Any]:
        """The API under ``/1`` and under ``/proxy/mf/1``; the upload, preview and download URLs need no auth."""
        api = [
            Route("/oauth2/token", self.oauth_token, methods=["GET", "POST"]),
            Route("/file/latest", self.get_latest, methods=["GET"]),
            Route("/file/{file_id}", self.get_file, methods=["GET"]),
            Route("/file", self.post_file, methods=["POST"]),
            Route("/files/{file_id}", self.get_file, methods=["GET"]),
            Route("/files/{file_id}/downloads", self.get_downloads, methods=["GET"]),
            Route("/files/{file_id}/downloads/{format_id}", self.get_downloads, methods=["GET"]),
            Route("/file/{file_id}/downloads", self.get_downloads, methods=["GET"]),
            Route("/file/{file_id}/downloads/{format_id}", self.get_downloads, methods=["GET"]),
            Route("/file/{file_id}/folders", self.get_file_folders, methods=["GET"]),
            Route("/file/{file_id}/checkpermissions", self.get_permissions, methods=["GET"]),
            Route("/file/{file_id}/usage", self.file_usage, methods=["GET", "POST"]),
            Route("/files/multiple/usages", self.post_usages, methods=["POST"]),
            Route("/format", self.get_formats, methods=["GET"]),
            Route("/formats", self.get_formats, methods=["GET"]),
            Route("/marks", self.get_marks, methods=["GET"]),
            Route("/users/me", self.get_me, methods=["GET"]),
            Route("/search/file", self.search_files, methods=["POST"]),
            Route("/folders", self.get_folders, methods=["GET"]),
            Route("/folder", self.get_folders, methods=["GET"]),
            Route("/foldertree", self.get_foldertree, methods=["GET"]),
            Route("/folders/{folder_id}/children", self.get_children, methods=["GET"]),
            Route("/folder/{folder_id}/children", self.get_children, methods=["GET"]),
            Route("/folder/{folder_id}/files", self.get_folder_files, methods=["GET"]),
            Route("/folders/{folder_id}/files", self.get_folder_files, methods=["GET"]),
        ]
        return [
            Mount(f"/{self.api_version}", routes=api),
            Mount(f"{PROXY_PREFIX}/{self.api_version}", routes=api),
            Route("/upload/{upload_id}", self.put_upload, methods=["PUT", "POST"]),
            Route("/previews/{file_id}/{size}.jpg", self.get_preview, methods=["GET"]),
            Route("/download/{file_id}/{format_id}", self.get_original, methods=["GET"]),
        ]

    def unrouted(self, request: Request, status: int) -> Response:
        return _error(405, "Method not allowed") if status == 405 else _error(404, "No such endpoint")

    # token ------------------------------------------------------------------------------------------------
    async def oauth_token(self, request: Request) -> Response:
        """``GET`` (as documented) or ``POST`` ``/1/oauth2/token``: a ``refresh_token`` grant (a new refresh
        token too when ``rotate_refresh_tokens`` is on) or a ``password`` grant of the demo user; every call
        is recorded in ``token_requests``."""
        query = {k: v[-1] for k, v in parse_qs(request.url.query, keep_blank_values=True).items()}
        form = await _token_form(request)
        if isinstance(form, Response):
            return form
        params = {**query, **form}
        secret_values = {self.client_secret, self.password, *self.issued_refresh_tokens}
        rec = {"method": request.method, "grant_type": params.get("grant_type"),
               "secrets_in_query": any(v in secret_values for v in query.values()) or
               any(k in query for k in ("client_secret", "refresh_token", "password")),
               "query_keys": sorted(query), "form_keys": sorted(form), "status": None, "time": time.time()}
        self.token_requests.append(rec)
        resp = self._grant(params)
        rec["status"] = resp.status_code
        return resp

    def _grant(self, params: dict[str, str]) -> Response:
        """The token answer to the parameters of a token call."""
        grant = params.get("grant_type")
        if grant not in ("refresh_token", "password"):
            return _error(400, "grant_type must be refresh_token (or password)")
        if not params.get("client_id"):
            return _error(400, "the client_id parameter is missing")
        if params["client_id"] != self.client_id:
            return _error(401, "Unknown client id")
        if not hmac.compare_digest(params.get("client_secret", ""), self.client_secret):
            return _error(401, "The client secret is wrong for this client id")
        body: dict[str, Any] = {}
        if grant == "refresh_token":
            old = params.get("refresh_token", "")
            if old not in self._valid_refresh:
                return _error(401, "The refresh token is not valid: it is wrong, or it was replaced by a newer one")
            if self.rotate_refresh_tokens:
                self._counter += 1
                new = _derive(self.seed, f"refresh-token-{self._counter}-{_secrets.token_hex(4)}", 30)
                self._valid_refresh.discard(old)
                self._valid_refresh.add(new)
                self.issued_refresh_tokens.append(new)
                self.current_refresh_token = new
                body["refresh_token"] = new
        else:
            if params.get("username") != self.username or not hmac.compare_digest(
                    params.get("password", ""), self.password):
                return _error(401, "The username or password is wrong")
        out = {"access_token": self._issue_token(), "token_type": "Bearer", "expires_in": self.token_lifetime}
        out.update(body)
        return _respond(out)

    def _check(self, request: Request) -> Response | None:
        """The 401 answer to a call without a valid access token (header, or the ``access_token`` query
        parameter, recorded in ``query_token_uses``); None when the call may go on."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            value = request.query_params.get("access_token", "")
            if value:
                self.query_token_uses.append(request.url.path)
        exp = self._tokens.get(value) if value else None
        reason = "missing" if not value else "invalid" if exp is None else \
            "expired" if time.monotonic() >= exp else None
        if reason is None:
            return None
        self.rejected_token_uses.append({"path": request.url.path, "reason": reason, "time": time.time()})
        return _error(401, {"missing": "No access token: send the header Authorization: Bearer <access_token>",
                            "invalid": "The access token is not valid",
                            "expired": "The access token has expired"}[reason])

    # files and folders ----------------------------------------------------------------------------------
    def _file_filter(self, request: Request) -> Callable[[dict[str, Any]], bool]:
        """Whether a file passes ``type`` and ``processed`` of the query (and bring ``processed`` up to date)."""
        ftype = request.query_params.get("type", "any").strip().lower() or "any"
        processed = request.query_params.get("processed", "").strip().lower() in ("true", "1", "yes")

        def keep(f: dict[str, Any]) -> bool:
            self._refresh(f)
            if processed and not f["processed"]:
                return False
            return ftype in ("any", "all") or f["type"]["type"] == ftype
        return keep

    def _file_list(self, request: Request, files: list[dict[str, Any]], default_per: int | None) -> Response:
        """``files`` filtered, newest first, one page of them, with the fields the query selects."""
        pg = _paging(request, default_per)
        if isinstance(pg, Response):
            return pg
        page, per = pg
        keep = self._file_filter(request)
        chosen = self._newest_first([f for f in files if keep(f)])
        if per is not None:
            chosen = chosen[(page - 1) * per: page * per]
        return _respond([_select(request, self._public(f), FILE_FIELDS, DEFAULT_FILE_FIELDS) for f in chosen])

    def _file_of(self, request: Request) -> tuple[int | None, dict[str, Any] | None]:
        """The path's file id and the file it names (None when there is no such file)."""
        fid = _parse_id(request.path_params["file_id"])
        return fid, (self.files.get(fid) if fid is not None else None)

    def _file_or_404(self, request: Request) -> tuple[int, dict[str, Any]] | Response:
        """The path's file id and file, or the 404 answer (as :meth:`_folder_of` for folders)."""
        fid, f = self._file_of(request)
        if f is None or fid is None:
            return _error(404, f"File {request.path_params['file_id']} does not exist")
        return fid, f

    def _folder_of(self, request: Request) -> dict[str, Any] | Response:
        """The folder the path names, or the 404 answer."""
        fid = _parse_id(request.path_params["folder_id"])
        folder = self._folders.get(fid) if fid is not None else None
        if folder is None:
            return _error(404, f"Folder {request.path_params['folder_id']} does not exist")
        return folder

    async def get_latest(self, request: Request) -> Response:
        """``GET /1/file/latest``: files newest first (``processed``, ``type``, ``page`` from 1, ``per_page``
        default 20 max 100)."""
        answer = self._check(request) or self._file_list(request, list(self.files.values()), 20)
        if self.shape == "envelope" and answer.status_code == 200:
            return _respond({"files": json.loads(answer.body)})
        return answer

    async def get_file(self, request: Request) -> Response:
        """``GET /1/file/{id}`` (and ``/1/files/{id}``): a one-element array."""
        denied = self._check(request)
        if denied:
            return denied
        found = self._file_or_404(request)
        if isinstance(found, Response):
            return found
        fid, f = found
        self._refresh(f)
        return _respond([_select(request, self._public(f), FILE_FIELDS, DEFAULT_FILE_FIELDS)])

    async def get_folders(self, request: Request) -> Response:
        """``GET /1/folders`` (alias ``/1/folder``): every folder."""
        return self._check(request) or _respond([_select(request, self._folder(f), FOLDER_FIELDS,
                                                         DEFAULT_FOLDER_FIELDS) for f in self.folders])

    async def get_foldertree(self, request: Request) -> Response:
        """``GET /1/foldertree``: every folder, with the tree fields."""
        return self._check(request) or _respond([_select(request, self._folder(f), FOLDER_FIELDS, TREE_FIELDS)
                                                 for f in self.folders])

    async def get_children(self, request: Request) -> Response:
        """``GET /1/folders/{id}/children``: the folder's subfolders."""
        denied = self._check(request)
        if denied:
            return denied
        folder = self._folder_of(request)
        if isinstance(folder, Response):
            return folder
        return _respond([_select(request, self._folder(f), FOLDER_FIELDS, DEFAULT_FOLDER_FIELDS)
                         for f in self.folders if f["parent"] == folder["id"]])

    async def get_folder_files(self, request: Request) -> Response:
        """``GET /1/folder/{id}/files`` (and ``/1/folders/{id}/files``): the folder's files, unpaged unless
        ``per_page`` is given."""
        denied = self._check(request)
        if denied:
            return denied
        folder = self._folder_of(request)
        if isinstance(folder, Response):
            return folder
        return self._file_list(request, [f for f in self.files.values() if f["folderId"] == folder["id"]], None)

    # upload -----------------------------------------------------------------------------------------------
    async def post_file(self, request: Request) -> Response:
        """``POST /1/file`` ``{"filename", "filesize", "toFolder"}``: a new pending upload →
        ``{"expiresIn", "uploadURL"}``; 403 for a folder without the upload right."""
        denied = self._check(request)
        if denied:
            return denied
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return _error(400, "The body is not valid JSON; send {\"filename\", \"filesize\", \"toFolder\"}")
        if not isinstance(body, dict):
            return _error(400, "Send a JSON object {\"filename\", \"filesize\", \"toFolder\"}")
        filename, filesize, to_folder = body.get("filename"), body.get("filesize"), body.get("toFolder")
        if not isinstance(filename, str) or not filename.strip() or "/" in filename or "\\" in filename:
            return _error(400, "filename must be a file name (text without a path)")
        if isinstance(filesize, bool) or not isinstance(filesize, int) or not 0 <= filesize <= MAX_UPLOAD:
            return _error(400, f"filesize must be a whole number of bytes from 0 to {MAX_UPLOAD}")
        if isinstance(to_folder, str) and to_folder.lstrip("-").isdigit():
            to_folder = int(to_folder)
        if isinstance(to_folder, bool) or not isinstance(to_folder, int):
            return _error(400, "toFolder must be a folder id (a whole number)")
        folder = self._folders.get(to_folder)
        if folder is None:
            return _error(404, f"Folder {to_folder} does not exist")
        if not folder["uploadAllowed"]:
            return _error(403, FORBIDDEN_MESSAGE)
        upload_id = _secrets.token_hex(8)
        signature = _b64(hmac.new(self._key, f"upload-{upload_id}".encode(), hashlib.sha256).digest())
        self.uploads[upload_id] = {"signature": signature, "filename": filename, "filesize": filesize,
                                   "folder_id": to_folder,
                                   "expires": time.monotonic() + float(self.upload_url_lifetime),
                                   "file_id": None, "puts": 0}
        url = f"{self.base_url}/upload/{upload_id}?signature={signature}"
        self.issued_upload_urls.append(url)
        self.uploads_requested += 1
        return _respond({"expiresIn": self.upload_url_lifetime, "uploadURL": url})

    async def put_upload(self, request: Request) -> Response:
        """``PUT`` (or ``POST``) ``/upload/{id}?signature=…`` (no auth): the raw bytes, or one multipart file
        part, of exactly ``filesize`` bytes → ``201 [file]``, ``processed`` ``processing_seconds`` later. A
        repeated PUT replaces the bytes of the same file."""
        upload = self.uploads.get(request.path_params["upload_id"])
        sig = request.query_params.get("signature", "")
        if upload is None or not hmac.compare_digest(sig, upload["signature"]):
            return _error(403, "The upload URL is not valid (unknown upload or bad signature)")
        if time.monotonic() >= upload["expires"]:
            return _error(403, EXPIRED_MESSAGE)
        data = await _upload_body(request, upload["filesize"])
        if isinstance(data, Response):
            return data
        if len(data) != upload["filesize"]:
            return _error(400, f"Received {len(data)} bytes but filesize is {upload['filesize']}")
        upload["puts"] += 1
        self.upload_puts += 1
        fid = upload["file_id"]
        if fid is None or fid not in self.files:
            fid = self._new_upload_file(upload, len(data))
        f = self.files[fid]
        f.update({"data": data, "filesize": len(data), "checksum": hashlib.md5(data).hexdigest(),
                  "processed": False, "hasPreview": False})
        f["width"], f["height"] = _dimensions(data)
        self._ready_at[fid] = time.monotonic() + float(self.processing_seconds)
        for size in PREVIEW_SIZES:
            self._previews.pop((fid, size), None)
        return _respond([self._public(f)], 201)

    def _new_upload_file(self, upload: dict[str, Any], size: int) -> int:
        """Add the file of the first stored upload (uploaded now, not yet processed); its id."""
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        fid = self._next_file_id
        self._next_file_id += 1
        upload["file_id"] = fid
        name = upload["filename"].rsplit(".", 1)[0]
        width = height = 0
        ftype = file_type_for(upload["filename"])
        self._add_file({
            "id": fid, "name": name, "filename": upload["filename"], "type": ftype,
            "filesize": size, "checksum": "", "width": width, "height": height,
            "uploaded": now, "uploadedBy": API_USER, "addedToFolder": now, "photographer": "",
            "description": "", "processed": False, "hasPreview": False,
            "gdprStatus": "NOT_CHECKED", "alttext": "", "folderId": upload["folder_id"],
            "icon": f"https://static.mediaflowpro.com/images/icon{ftype['id']}.gif", "data": None,
            "dpi": 0, "rating": 0, "nrDownloads": 0, "mark": 0, "instructions": "", "hasVersions": False,
            "hasHistory": False, "locked": False, "comment": "", "gdprType": "UNKNOWN",
            "mediaId": hashlib.sha256(f"mediaflow-media-{self.seed}-{fid}".encode()).hexdigest()[:12],
            "alpha": False,
        })
        return fid

    # previews and downloads -------------------------------------------------------------------------------
    async def get_preview(self, request: Request) -> Response:
        """``GET /previews/{file_id}/{thumb|small|medium}.jpg`` (no auth): a JPEG once the file has a preview."""
        fid, f = self._file_of(request)
        size = request.path_params["size"]
        if f is None or size not in PREVIEW_SIZES:
            return _error(404, "No such preview")
        self._refresh(f)
        if not f["hasPreview"]:
            return _error(404, "This file has no preview")
        key = (fid, size)
        if key not in self._previews:
            self._previews[key] = make_preview(f"{self.seed}-{fid}", f["width"], f["height"], size, f.get("data"))
        return Response(self._previews[key], media_type="image/jpeg",
                        headers={"cache-control": "public, max-age=3600"})

    def _formats_of(self, f: dict[str, Any]) -> list[int]:
        """The download formats a file has: the original (0), and for an image every format."""
        return [0, *(fmt["id"] for fmt in FORMATS)] if f["type"]["type"] == "image" else [0]

    def _download_item(self, fid: int, f: dict[str, Any], fmt: int) -> dict[str, Any]:
        """One entry of a file's download list, with its signed link (the same each time)."""
        url = f"{self.base_url}/download/{fid}/{fmt}?signature={self._download_signature(fid, fmt)}"
        if url not in self.issued_download_urls:
            self.issued_download_urls.append(url)
        spec = next((x for x in FORMATS if x["id"] == fmt), None)
        warning: Any = f.get("mark") == WARNING_MARK
        if self.legacy_shapes:
            warning = "Check the license before publishing" if warning else ""
        return {"id": fmt, "format": spec["name"] if spec else "Original", "watermark": False, "isPreview": False,
                "filetype": spec["filetype"] if spec else f["type"].get("extension", ""),
                "expiresIn": self.download_url_lifetime, "downloadURL": url, "downloadWarning": warning}

    async def get_downloads(self, request: Request) -> Response:
        """``GET /1/file/{id}/downloads[/{formatId}]`` and the same under ``/1/files/…``: the file's formats
        with their signed ``downloadURL``; an unknown format → 404, a locked file → 403; a path form the knob
        ``download_path_forms`` turned off → 404 ``No such endpoint``."""
        denied = self._check(request)
        if denied:
            return denied
        segments = request.url.path.split("/")
        form = segments[segments.index("downloads") - 2]  # …/{file|files}/{id}/downloads[/{format}]
        if form not in self.download_path_forms:
            return _error(404, "No such endpoint")
        found = self._file_or_404(request)
        if isinstance(found, Response):
            return found
        fid, f = found
        if f.get("locked"):
            return _error(403, DOWNLOAD_FORBIDDEN)
        offered = self._formats_of(f)
        wanted = request.path_params.get("format_id")
        if wanted is not None and _parse_id(wanted) not in offered:
            return _error(404, f"Format {wanted} does not exist for file {fid}")
        chosen = offered if wanted is None else [_parse_id(wanted)]
        return _respond([_select(request, self._download_item(fid, f, fmt), DOWNLOAD_FIELDS, DOWNLOAD_FIELDS)
                         for fmt in chosen if fmt is not None])

    def _converted_bytes(self, f: dict[str, Any], fmt: int) -> tuple[bytes, str]:
        """The file in download format ``fmt`` (a resized picture; the original when it is not one)."""
        key = (f["id"], fmt)
        spec = next(x for x in FORMATS if x["id"] == fmt)
        kind = "PNG" if spec["filetype"] == "png" else "JPEG"
        if key not in self._converted:
            import io

            from PIL import Image, ImageOps

            data, _ = self._original(f)
            try:
                with Image.open(io.BytesIO(data)) as img:
                    img = img.convert("RGB")
                    w, h = spec["width"], spec["height"]
                    if spec["keepRatio"] or w < 0 or h < 0:
                        scale = (w / img.width) if w > 0 else (h / img.height)
                        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
                    else:
                        img = ImageOps.fit(img, (w, h))
                    buf = io.BytesIO()
                    img.save(buf, kind)
                    self._converted[key] = buf.getvalue()
            except Exception:  # noqa: BLE001 - not a picture Pillow reads: the bytes as they are
                self._converted[key] = data
        return self._converted[key], "image/png" if kind == "PNG" else "image/jpeg"

    async def get_original(self, request: Request) -> Response:
        """``GET /download/{file_id}/{format}?signature=…`` (no auth): the original (format 0) or the file in a
        download format; a bad signature → 403."""
        fid, f = self._file_of(request)
        fmt = _parse_id(request.path_params["format_id"])
        sig = request.query_params.get("signature", "")
        if f is None or fmt is None or fmt not in self._formats_of(f) or \
                not hmac.compare_digest(sig, self._download_signature(fid, fmt)):
            return _error(403, "The download link is not valid (unknown file or bad signature)")
        data, mime = self._original(f) if fmt == 0 else self._converted_bytes(f, fmt)
        self.download_gets += 1
        name = f["filename"] if fmt == 0 else f"{f['name']}.{mime.rsplit('/', 1)[-1].replace('jpeg', 'jpg')}"
        return Response(data, media_type=mime,
                        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(name)}"})

    # more of what the vendor's clients call ---------------------------------------------------------------
    async def get_formats(self, request: Request) -> Response:
        """``GET /1/format`` (the crate) and ``/1/formats`` (the file selector): the download formats."""
        return self._check(request) or _respond([_select(request, fmt, FORMAT_FIELDS, DEFAULT_FORMAT_FIELDS)
                                                 for fmt in FORMATS])

    async def get_file_folders(self, request: Request) -> Response:
        """``GET /1/file/{id}/folders``: the folders holding the file (the file selector opens the first)."""
        denied = self._check(request)
        if denied:
            return denied
        found = self._file_or_404(request)
        if isinstance(found, Response):
            return found
        fid, f = found
        return _respond([_select(request, self._folder(self._folders[f["folderId"]]), FOLDER_FIELDS,
                                 DEFAULT_FOLDER_FIELDS)])

    async def get_permissions(self, request: Request) -> Response:
        """``GET /1/file/{id}/checkpermissions``: ``[{"allowDownload", "allowDownloadReason"}]`` (a locked file
        may not be downloaded: ``FILE_DENIED``)."""
        denied = self._check(request)
        if denied:
            return denied
        found = self._file_or_404(request)
        if isinstance(found, Response):
            return found
        fid, f = found
        locked = bool(f.get("locked"))
        return _respond([{"allowDownload": not locked, "allowDownloadReason": "FILE_DENIED" if locked else None}])

    async def get_marks(self, request: Request) -> Response:
        """``GET /1/marks``: the markings a file's ``mark`` names."""
        return self._check(request) or _respond([dict(m) for m in MARKS])

    async def get_me(self, request: Request) -> Response:
        """``GET /1/users/me``: the API user (``id`` and ``customerId`` always; ``activeModules`` when asked)."""
        denied = self._check(request)
        if denied:
            return denied
        me = {"id": API_USER, "name": user_name(API_USER), "email": "api@sandbox.example",
              "customerId": CUSTOMER_ID, "activeModules": list(self.active_modules)}
        return _respond([{**_select(request, me, USER_FIELDS, DEFAULT_USER_FIELDS), "customerId": CUSTOMER_ID}])

    # search -------------------------------------------------------------------------------------------------
    def _search(self, term: str) -> list[dict[str, Any]]:
        """The files holding every word of ``term``; more words in the name first, then newest first."""
        words = term.lower().split()

        def texts(f: dict[str, Any]) -> tuple[str, str]:
            name = f"{f['name']} {f['filename']}".lower()
            return name, " ".join(str(f.get(k) or "") for k in ("description", "alttext", "photographer")).lower()

        hits = []
        for f in self._newest_first(list(self.files.values())):
            self._refresh(f)
            name, rest = texts(f)
            if all(w in name or w in rest for w in words):
                hits.append((-sum(w in name for w in words), f))
        return [f for _, f in sorted(hits, key=lambda h: h[0])]  # a stable sort keeps newest first in a rank

    async def search_files(self, request: Request) -> Response:
        """``POST /1/search/file?fields=…`` ``{"searchTerm", "lang", "ai"}``: the files that match, in the
        service's order; paged only when ``page``/``per_page`` are given."""
        denied = self._check(request)
        if denied:
            return denied
        body = await _json_object(request, '{"searchTerm", "lang", "ai"}')
        if isinstance(body, Response):
            return body
        term, lang = body.get("searchTerm"), body.get("lang")
        self.search_requests.append({"term": term, "lang": lang, "ai": body.get("ai"),
                                     "query": dict(request.query_params)})
        if not isinstance(term, str) or not term.strip():
            return _error(400, "searchTerm is required: the text to search for")
        if lang is not None and lang not in SEARCH_LANGS:
            return _error(400, f"lang must be one of {', '.join(SEARCH_LANGS)}")
        pg = _paging(request, None)
        if isinstance(pg, Response):
            return pg
        page, per = pg
        hits = self._search(term)
        if per is not None:
            hits = hits[(page - 1) * per: page * per]
        return _respond([_select(request, self._public(f), FILE_FIELDS, DEFAULT_FILE_FIELDS) for f in hits])

    # usage ------------------------------------------------------------------------------------------------
    async def file_usage(self, request: Request) -> Response:
        """``GET /1/file/{id}/usage``: the file's usages; ``POST`` (the Wagtail integration's body): report one."""
        denied = self._check(request)
        if denied:
            return denied
        found = self._file_or_404(request)
        if isinstance(found, Response):
            return found
        fid, f = found
        if request.method == "GET":
            return _respond([_select(request, u, USAGE_FIELDS, USAGE_FIELDS) for u in self.usages.get(fid, [])])
        return await self._report(request, lambda body: [fid])

    async def post_usages(self, request: Request) -> Response:
        """``POST /1/files/multiple/usages`` (the WordPress plugin's body, ``id`` a list of file ids)."""
        return self._check(request) or await self._report(request, _usage_ids)

    async def _report(self, request: Request, ids_of: Callable[[dict[str, Any]], Any]) -> Response:
        """Record (or, with ``removed``, delete) the usage of a report; every call in ``usage_posts``."""
        body = await _json_object(request, '{"types", "web": {"page", "pageName"}, "contact", "project", "date"}')
        post: dict[str, Any] = {"path": request.url.path, "body": body if isinstance(body, dict) else None}
        self.usage_posts.append(post)
        if isinstance(body, Response):
            post["status"] = body.status_code
            return body
        ids = ids_of(body)
        usage = ids if isinstance(ids, str) else _usage_of(body)
        if isinstance(usage, str):
            post["status"] = 400
            return _error(400, usage)
        missing = [i for i in ids if i not in self.files]
        if missing:
            post["status"] = 404
            return _error(404, f"File {', '.join(map(str, missing))} does not exist")
        post["status"] = 200
        return _respond(self._apply_usage(ids, usage))

    def _apply_usage(self, ids: list[int], usage: dict[str, Any]) -> list[dict[str, Any]]:
        """Add one usage per file and type (or delete the matching ones for a removal): the usages made."""
        made = []
        for fid in ids:
            held = self.usages.setdefault(fid, [])
            for kind in usage["types"]:
                url = usage["page"] if kind == "WEB" else None
                if usage["removed"]:
                    held[:] = [u for u in held if not (u["type"] == kind and u["url"] == url)]
                    continue
                self._usage_counter += 1
                made.append({"id": self._usage_counter, "type": kind, "url": url, "pageName": usage["pageName"],
                             "contact": usage["contact"], "project": usage["project"],
                             "publishDate": usage["date"], "amount": usage["amount"],
                             "description": usage["description"],
                             "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                             "createdBy": {"id": API_USER, "name": user_name(API_USER)}})
                held.append(made[-1])
        return made


def _respond(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status_code=status,
                    media_type="application/json; charset=utf-8")


def _error(status: int, message: str) -> Response:
    return _respond({"status": status, "error": message}, status)


def _parse_id(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _select(request: Request, item: dict[str, Any], allowed: tuple[str, ...],
            default: tuple[str, ...]) -> dict[str, Any]:
    """The fields of ``item`` that ``fields=`` asks for (``default`` without it, ``all``/``any`` every
    allowed one); ``id`` always."""
    raw = request.query_params.get("fields", "")
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    if not names:
        keep = set(default)
    elif any(n in ("all", "any") for n in names):
        keep = set(allowed)
    else:
        lower = {k.lower(): k for k in allowed}
        keep = {lower[n] for n in names if n in lower}
    keep.add("id")
    return {k: item[k] for k in allowed if k in keep and k in item}


def _paging(request: Request, default: int | None) -> tuple[int, int | None] | Response:
    """``page`` (from 1) and ``per_page`` (at most 100; ``default`` without it), or the 400 answer."""
    page_s = request.query_params.get("page")
    per_s = request.query_params.get("per_page")
    try:
        page = int(page_s) if page_s not in (None, "") else 1
        per = int(per_s) if per_s not in (None, "") else default
    except ValueError:
        return _error(400, "page and per_page must be whole numbers")
    if page < 1 or (per is not None and per < 1):
        return _error(400, "page starts at 1 and per_page must be at least 1")
    if per is not None:
        per = min(per, 100)
    return page, per


async def _token_form(request: Request) -> dict[str, str] | Response:
    """The parameters in the body of a ``POST`` token call (form-encoded, or JSON), or the 400 answer."""
    if request.method != "POST":
        return {}
    ctype = request.headers.get("content-type", "")
    raw = await request.body()
    if ctype.startswith("application/json"):
        try:
            loaded = json.loads(raw or b"{}")
        except ValueError:
            return _error(400, "the body is not valid JSON")
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}


async def _upload_body(request: Request, filesize: int) -> bytes | Response:
    """The uploaded bytes (one multipart file part, or the raw body with a ``Content-Length`` of
    ``filesize``), or the 400 answer."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await read_form(request, max_files=1, max_fields=8, max_part_size=MAX_UPLOAD + 1)
        parts = [v for v in form.values() if hasattr(v, "read")]
        if len(parts) != 1:
            return _error(400, "Send exactly one file part")
        return await parts[0].read()
    length = request.headers.get("content-length")
    if length is None:
        return _error(400, f"Content-Length is required and must equal filesize ({filesize})")
    if not length.isdigit() or int(length) != filesize:
        return _error(400, f"Content-Length {length} does not equal filesize {filesize}")
    return await request.body()


def _dimensions(data: bytes) -> tuple[int, int]:
    """Width and height of an uploaded picture (0, 0 when it is not one Pillow reads)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.width, img.height
    except Exception:  # noqa: BLE001
        return 0, 0


async def _json_object(request: Request, shape: str) -> dict[str, Any] | Response:
    """The JSON object of a request's body, or the 400 answer naming the ``shape`` to send."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return _error(400, f"The body is not valid JSON; send {shape}")
    if not isinstance(body, dict):
        return _error(400, f"Send a JSON object {shape}")
    return body


def _usage_ids(body: dict[str, Any]) -> list[int] | str:
    """The file ids of a ``files/multiple/usages`` body (numbers, or numbers as text), or what is wrong."""
    ids = body.get("id")
    if not isinstance(ids, list) or not ids:
        return "id must be a list of file ids"
    out = []
    for value in ids:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            return f"id must be a list of file ids, not {value!r}"
        out.append(value)
    return out


def _flag(value: Any) -> bool | None:
    """A JSON bool, or one written as text (the documentation's ``"false"``); None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    return None


def _usage_of(body: dict[str, Any]) -> dict[str, Any] | str:
    """A usage report's fields, checked (``types`` upper-cased as ``GET usage`` lists them), or what is wrong."""
    types = body.get("types")
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t.strip() for t in types):
        return 'types must be a list of usage types, e.g. ["web"]'
    web = body.get("web") or {}
    kinds = [t.strip().upper() for t in types]
    if "WEB" in kinds and (not isinstance(web, dict) or not isinstance(web.get("page"), str) or not web["page"]):
        return "web.page (the address of the page) is required for the type web"
    removed = _flag(body.get("removed", False))
    if removed is None:
        return "removed must be true or false"
    amount = body.get("amount", 1)
    if isinstance(amount, str) and amount.strip().isdigit():
        amount = int(amount)
    if isinstance(amount, bool) or not isinstance(amount, int):
        return "amount must be a whole number"
    date = body.get("date")
    if date is not None and (not isinstance(date, str) or not date[:10].replace("-", "").isdigit()):
        return "date must be a date, e.g. 2025-05-23"
    return {"types": kinds, "page": web.get("page") if isinstance(web, dict) else None,
            "pageName": web.get("pageName") if isinstance(web, dict) else None, "removed": removed,
            "contact": body.get("contact"), "project": body.get("project"), "date": date, "amount": amount,
            "description": body.get("description")}
