"""Livingdocs emulator: the public API's image import and media library as documented, on loopback HTTP.

Every route exists under ``/api/{version}/…`` and under the editor proxy form ``/proxy/api/api/{version}/…``.
Versions: ``v1``, ``beta`` and the dated ``2025-03`` … ``2026-11`` (odd months); any other → ``410``.

* ``POST …/import/images`` (scope ``public-api:write``) → ``200 {"id"}``; a background job (an asyncio task
  on the server's loop) fetches every image URL, detects png/jpg/gif/svg from the bytes and upserts the
  media library by (``systemName``, ``id``): same url + metadata → ``skipped`` / ``already exists``,
  changed → updated, ``success``. ``400`` validation bodies, ``429`` usage limit (an ARRAY body, no
  Retry-After).
* ``GET …/import/images/status?id=`` (scope ``public-api:write``) → the three documented shapes; each
  image carries both ``status`` and ``state``; unknown id → ``404``.
* Webhook ``POST`` when a job with ``webhook`` ends: ``{"source": "livingdocs-image-import", "id", "state",
  "overview": {"total", "details": {"success", "skipped", "failed"}}, "context"}``.
* ``GET …/mediaLibrary?externalId=&systemName=``, ``?ids=…``, ``…/mediaLibrary/{id}`` (scope
  ``public-api:read``). ``ids`` is read in every encoding a client sends: ``ids=a,b`` (the documented
  form), ``ids[0]=a&ids[1]=b`` (what ``@livingdocs/node-sdk``'s ``getMedia`` sends: ``qs.stringify``, brackets
  percent-encoded), ``ids[]=a&ids[]=b`` and ``ids=a&ids=b``; ``externalId`` likewise; empty values (``qs``
  turns a ``null`` option into ``key=``) are ignored. Lists are a bare JSON array up to 2025-11 (the SDK's
  ``getMedia`` returns the body as ``Media[]``), ``{"results": [...]}`` from 2026-01; one entry is an object.
* Unauthenticated: ``/test-images/NAME`` (see :mod:`.livingdocs_data`) and ``/media/{mediaId}`` (the
  stored picture, the "imgix" URL of an entry).

Knobs: ``job_seconds``, ``max_images_per_call``, ``daily_limit``, ``fail_next_jobs``, ``webhook_delay``,
``fetch_timeout``, ``status_error_rate`` (the share of status polls answered ``503``, from a random stream of
their own), ``import_answer_delay`` (seconds an import POST waits after starting its job before it answers:
a client with a shorter read timeout loses the answer of a request the service took), ``numeric_media_ids``
(new media library entries get whole-number ids, served as JSON numbers — the SDK's README types a media id as
``number`` — instead of the 12-character text ids of the contract as first researched).
Truth: ``media``, ``import_counts``, ``jobs``, ``webhooks_sent``, ``reset()``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .livingdocs_data import BROKEN_IMAGES, GOOD_IMAGES, make_test_image
from .server import Emulator

__all__ = ["LivingdocsEmulator", "VERSIONS", "CONTEXT_MAX_BYTES", "READ_SCOPE", "WRITE_SCOPE", "query_list"]

READ_SCOPE = "public-api:read"
WRITE_SCOPE = "public-api:write"
CONTEXT_MAX_BYTES = 8192
MAX_FETCH_BYTES = 20 * 1024 * 1024
PREFIXES = ("", "/proxy/api")

#: every API version the emulator answers; the dated ones from 2026-01 on wrap lists in ``results``
VERSIONS: tuple[str, ...] = ("v1", "beta") + tuple(
    f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13, 2) if (y, m) >= (2025, 3))
RESULTS_ENVELOPE = frozenset(v for v in VERSIONS if v >= "2026-01" and v[0].isdigit())

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_MEDIA_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SVG_SIZE = re.compile(r"""\b(width|height)\s*=\s*["']\s*([0-9.]+)""", re.I)
_SVG_VIEWBOX = re.compile(r"""\bviewBox\s*=\s*["']\s*[-0-9.]+[\s,]+[-0-9.]+[\s,]+([0-9.]+)[\s,]+([0-9.]+)""", re.I)


def _now_text(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_body(status: int, error: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "error": error, "error_details": details}


def analyse_image(data: bytes) -> dict[str, Any]:
    """Detect the type of ``data``: ``{"ok": True, mimeType, width, height, size}`` or ``{"ok": False, reason}``."""
    size = len(data)
    head = data[:16]
    pillow_format = None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        pillow_format = "PNG"
    elif head.startswith(b"\xff\xd8\xff"):
        pillow_format = "JPEG"
    elif head.startswith((b"GIF87a", b"GIF89a")):
        pillow_format = "GIF"
    from PIL import Image, UnidentifiedImageError

    if pillow_format:
        try:
            with Image.open(io.BytesIO(data), formats=[pillow_format]) as img:
                width, height = img.size
                img.load()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return {"ok": False, "reason": f"Could not upload image: the {pillow_format.lower()} file is corrupt"}
        mime = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif"}[pillow_format]
        return {"ok": True, "mimeType": mime, "width": width, "height": height, "size": size}
    text = data[:8192].decode("utf-8", "replace")
    if "<svg" in text.lower():
        width = height = None
        tag = text[text.lower().index("<svg"):]
        tag = tag[:tag.find(">") + 1] if ">" in tag else tag
        sizes = {k.lower(): v for k, v in _SVG_SIZE.findall(tag)}
        box = _SVG_VIEWBOX.search(tag)
        try:
            if "width" in sizes and "height" in sizes:
                width, height = round(float(sizes["width"])), round(float(sizes["height"]))
            elif box:
                width, height = round(float(box.group(1))), round(float(box.group(2)))
        except ValueError:
            width = height = None
        return {"ok": True, "mimeType": "image/svg+xml", "width": width, "height": height, "size": size}
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "unknown"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        fmt = None
    if fmt:
        return {"ok": False, "reason": f"Could not upload image: unsupported image type {fmt} "
                                       f"(allowed: png, jpg, gif, svg)"}
    return {"ok": False, "reason": "Could not upload image: the file is not an image"}


class LivingdocsEmulator(Emulator):
    name = "livingdocs"
    knobs = ("job_seconds", "max_images_per_call", "daily_limit", "fail_next_jobs", "webhook_delay", "fetch_timeout",
             "status_error_rate", "import_answer_delay", "fetch_attempts", "fetch_own_images_internally",
             "numeric_media_ids", "shape")
    #: ``shape`` (for the contract check, ``toolkit.check``): ``""`` as documented; ``"other_envelope"`` answers
    #: a media library lookup as ``{"data": [...]}`` whatever the API version
    shape = ""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        def digest(kind: str) -> str:
            return hashlib.sha256(f"toolkit-sandbox-livingdocs-{kind}-{seed}".encode()).hexdigest()

        self.write_token = "ldpat_" + digest("write")[:40]
        self.read_token = "ldpat_" + digest("read")[:40]
        self.expired_token = "ldpat_" + digest("expired")[:40]
        #: token → scopes (the expired one is known but rejected)
        self.tokens: dict[str, set[str]] = {self.write_token: {READ_SCOPE, WRITE_SCOPE},
                                            self.read_token: {READ_SCOPE}}
        self.expired_tokens: set[str] = {self.expired_token}
        # knobs
        self.job_seconds: float = 0.3
        self.max_images_per_call: int = 1000
        self.daily_limit: int | None = None
        self.fail_next_jobs: int = 0
        self.webhook_delay: float = 0.0
        self.fetch_timeout: float = 5.0
        self.status_error_rate: float = 0.0
        self.import_answer_delay: float = 0.0
        #: new entries get whole-number ids (JSON numbers) instead of 12-character text ids
        self.numeric_media_ids: bool = False
        self._status_rng = random.Random(f"livingdocs-status-{seed}")
        self.fetch_attempts: int = 2
        #: resolve this emulator's own ``/test-images/`` URLs in memory (no HTTP, no injected faults)
        self.fetch_own_images_internally: bool = True
        self._tasks: set[asyncio.Task] = set()
        self.reset()

    # -- truth for tests ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget jobs, the media library, counters, webhooks, the fetch cache and the day's usage.

        Jobs still running when this is called end without storing anything or sending their webhook."""
        self._generation = getattr(self, "_generation", 0) + 1
        #: (systemName, externalId) → media library entry
        self.media: dict[tuple[str, str], dict[str, Any]] = {}
        self._by_media_id: dict[str, dict[str, Any]] = {}
        self._media_bytes: dict[str, bytes] = {}
        #: how many times each (systemName, externalId) was stored or updated
        self.import_counts: Counter[tuple[str, str]] = Counter()
        #: job id → job dict (state, finished, created_at/started_at/finished_at as time.time(), results …)
        self.jobs: dict[str, dict[str, Any]] = {}
        #: webhook deliveries: {url, body, status, error, time, attempts}
        self.webhooks_sent: list[dict[str, Any]] = []
        #: URL → fetch count (the network fetches; the cache answers the rest)
        self.fetch_counts: Counter[str] = Counter()
        self._fetch_cache: dict[str, Any] = {}
        self.usage: Counter[str] = Counter()  # UTC day → images accepted
        self.fail_next_jobs = 0

    def credentials(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "token": self.write_token}

    def read_only_credentials(self) -> dict[str, Any]:
        """A valid token with ``public-api:read`` only (imports answer 403)."""
        return {"base_url": self.base_url, "token": self.read_token}

    def expired_credentials(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "token": self.expired_token}

    def secrets(self) -> list[str]:
        return [self.write_token, self.read_token, self.expired_token]

    def personal_data(self) -> list[str]:
        return []

    def expire_tokens(self) -> None:
        """Make every token expired (the next call answers 401 ``The access token expired.``)."""
        self.expired_tokens.update(self.tokens)
        self.tokens.clear()

    def image_url(self, name: str) -> str:
        """Absolute URL of a test image served by this emulator (``ok-1.png``, ``page.jpg`` …)."""
        return f"{self.base_url}/test-images/{name}"

    def good_image_names(self) -> list[str]:
        return list(GOOD_IMAGES)

    def broken_image_names(self) -> list[str]:
        return list(BROKEN_IMAGES)

    def sample_images(self, n: int, prefix: str = "img") -> list[dict[str, Any]]:
        """``n`` good image records ``{url, id, fileName, metadata}`` cycling through the test images."""
        names = list(GOOD_IMAGES)
        return [{"url": self.image_url(names[i % len(names)]), "id": f"{prefix}-{i:05d}",
                 "fileName": f"Image {i}", "metadata": {"caption": f"Sandbox image {i}"}} for i in range(n)]

    def usage_today(self) -> int:
        return self.usage[dt.datetime.now(dt.timezone.utc).date().isoformat()]

    def entry(self, system_name: str, external_id: str) -> dict[str, Any] | None:
        return self.media.get((system_name, str(external_id)))

    def processing_bounds(self, job_ids: list[str] | None = None) -> tuple[float, float] | None:
        """(first created_at, last finished_at) over the given (or all) finished jobs — the service's own span."""
        jobs = [self.jobs[j] for j in (job_ids or list(self.jobs)) if j in self.jobs]
        done = [j for j in jobs if j["finished_at"] is not None]
        if not done:
            return None
        return min(j["created_at"] for j in jobs), max(j["finished_at"] for j in done)

    # -- ids ----------------------------------------------------------------------------------------------
    def _new_id(self, alphabet: str, length: int, taken: Any) -> str:
        while True:
            value = "".join(self.rng.choice(alphabet) for _ in range(length))
            if value not in taken:
                return value

    def _new_media_id(self) -> "str | int":
        """A new media library id: 12 characters of text, or (``numeric_media_ids``) the next whole number."""
        if not self.numeric_media_ids:
            return self._new_id(_MEDIA_ALPHABET, 12, self._by_media_id)
        number = len(self._by_media_id) + 1
        while str(number) in self._by_media_id:
            number += 1
        return number

    # -- fetching -----------------------------------------------------------------------------------------
    async def _fetch(self, url: str) -> dict[str, Any]:
        """Fetch and analyse ``url`` once (cached per URL; concurrent callers share one fetch)."""
        cached = self._fetch_cache.get(url)
        if cached is None:
            cached = asyncio.ensure_future(self._fetch_uncached(url))
            self._fetch_cache[url] = cached
        result = await asyncio.shield(cached)
        if result.get("transient") and self._fetch_cache.get(url) is cached:
            del self._fetch_cache[url]  # a network failure is tried again by the next job
        return result

    async def _fetch_uncached(self, url: str) -> dict[str, Any]:
        self.fetch_counts[url] += 1
        own = f"{self.base_url}/test-images/"
        if self.fetch_own_images_internally and self.base_url and url.startswith(own):
            name = urllib.parse.unquote(url[len(own):].split("?", 1)[0])
            found = make_test_image(name)
            if found is None:
                return {"ok": False, "reason": "Could not upload image: the URL answered HTTP 404"}
            data = found[0]
        else:
            got = await asyncio.to_thread(self._download, url)
            if isinstance(got, tuple):
                return {"ok": False, "reason": got[0], "transient": got[1]}
            data = got
        result = analyse_image(data)
        if result["ok"]:
            result["data"] = data
        return result

    def _download(self, url: str) -> bytes | tuple[str, bool]:
        """The body of ``url``, or (the failure reason, whether it may be transient)."""
        reason = "Could not upload image: the URL could not be fetched"
        for attempt in range(max(1, self.fetch_attempts)):
            if attempt:
                time.sleep(0.2)
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "livingdocs-sandbox-image-import"})
                with urllib.request.urlopen(req, timeout=self.fetch_timeout) as resp:  # noqa: S310 (http/https only)
                    data = resp.read(MAX_FETCH_BYTES + 1)
                if len(data) > MAX_FETCH_BYTES:
                    return "Could not upload image: the file is larger than 20 MB", False
                return data
            except urllib.error.HTTPError as exc:
                reason = f"Could not upload image: the URL answered HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    return reason, False
            except (urllib.error.URLError, OSError, ValueError) as exc:
                why = getattr(exc, "reason", exc)
                reason = f"Could not upload image: the URL could not be fetched ({type(why).__name__})"
        return reason, True

    # -- jobs ---------------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _create_job(self, body: dict[str, Any], images: list[dict[str, Any]]) -> dict[str, Any]:
        now = time.time()
        job_id = self._new_id(_ALPHABET, 7, self.jobs)
        fail = self.fail_next_jobs > 0
        if fail:
            self.fail_next_jobs -= 1
        job = {"id": job_id, "system_name": body["systemName"], "webhook": body.get("webhook"),
               "context": body.get("context"), "images": images, "state": "started", "finished": False,
               "created_at": now, "started_at": now, "finished_at": None, "startedAt": _now_text(now),
               "results": None, "will_fail": fail, "job_seconds": float(self.job_seconds),
               "generation": self._generation}
        self.jobs[job_id] = job
        self._spawn(self._run_job(job))
        return job

    async def _run_job(self, job: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            fetched = await asyncio.gather(*(self._fetch(img["url"]) for img in job["images"]),
                                           return_exceptions=True)
        except Exception:  # noqa: BLE001 - the job fails as a whole
            fetched = None
        rest = job["job_seconds"] - (loop.time() - t0)
        if rest > 0:
            await asyncio.sleep(rest)
        if job["generation"] != self._generation:
            return  # reset() forgot this job while it ran
        if job["will_fail"] or fetched is None:
            job["state"] = "failed"
            job["results"] = []
        else:
            job["results"] = [self._store(job, img, got) for img, got in zip(job["images"], fetched)]
            job["state"] = "success"
        job["finished"] = True
        job["finished_at"] = time.time()
        if job.get("webhook"):
            self._spawn(self._send_webhook(job))

    def _store(self, job: dict[str, Any], img: dict[str, Any], got: Any) -> dict[str, Any]:
        system = job["system_name"]
        ext = img["id"]
        out: dict[str, Any] = {"externalId": ext, "systemName": system, "title": img["fileName"]}
        if isinstance(got, BaseException) or not got.get("ok"):
            reason = got["reason"] if isinstance(got, dict) else "Could not upload image"
            return {"status": "failed", "state": "failed", **out, "reason": reason}
        key = (system, ext)
        now = time.time()
        existing = self.media.get(key)
        if existing is not None and existing["_source_url"] == img["url"] and existing["metadata"] == img["metadata"]:
            return {"status": "skipped", "state": "skipped", **out, "reason": "already exists",
                    "image": self._image_info(existing)}
        asset = {"url": "", "mimeType": got["mimeType"], "width": got["width"], "height": got["height"],
                 "size": got["size"], "filename": _filename(img["url"], got["mimeType"])}
        if existing is None:
            media_id = self._new_media_id()
            entry = {"id": media_id, "version": 1, "mediaType": img["mediaType"], "asset": asset,
                     "metadata": img["metadata"], "createdAt": _iso(now), "updatedAt": _iso(now),
                     "systemName": system, "externalId": ext, "title": img["fileName"], "_source_url": img["url"]}
            self.media[key] = entry
            self._by_media_id[str(media_id)] = entry
        else:
            entry = existing
            entry.update({"version": entry["version"] + 1, "mediaType": img["mediaType"], "asset": asset,
                          "metadata": img["metadata"], "updatedAt": _iso(now), "title": img["fileName"],
                          "_source_url": img["url"]})
        asset["url"] = f"{self.base_url}/media/{entry['id']}"
        self._media_bytes[str(entry["id"])] = got["data"]
        self.import_counts[key] += 1
        return {"status": "success", "state": "success", **out, "image": self._image_info(entry)}

    @staticmethod
    def _image_info(entry: dict[str, Any]) -> dict[str, Any]:
        asset = entry["asset"]
        return {"mediaId": entry["id"], "originalUrl": entry["_source_url"], "url": asset["url"],
                "width": asset["width"], "height": asset["height"], "mimeType": asset["mimeType"],
                "imageService": "imgix"}

    def job_overview(self, job: dict[str, Any]) -> dict[str, Any]:
        total = len(job["images"])
        if job["state"] == "failed":
            return {"total": total, "details": {"success": 0, "skipped": 0, "failed": total}}
        counts = Counter(r["status"] for r in job["results"] or [])
        return {"total": total, "details": {k: counts.get(k, 0) for k in ("success", "skipped", "failed")}}

    def status_body(self, job: dict[str, Any]) -> dict[str, Any]:
        if not job["finished"]:
            return {"finished": False, "state": "started", "id": job["id"], "startedAt": job["startedAt"]}
        if job["state"] == "failed":
            return {"finished": True, "state": "failed", "id": job["id"]}
        return {"finished": True, "state": "success", "id": job["id"], "images": job["results"]}

    async def _send_webhook(self, job: dict[str, Any]) -> None:
        if self.webhook_delay > 0:
            await asyncio.sleep(self.webhook_delay)
        body = {"source": "livingdocs-image-import", "id": job["id"], "state": job["state"],
                "overview": self.job_overview(job), "context": job.get("context")}
        record: dict[str, Any] = {"job_id": job["id"], "url": job["webhook"], "body": body, "status": None,
                                  "error": None, "attempts": 0, "time": None}
        self.webhooks_sent.append(record)
        payload = json.dumps(body).encode()

        def post() -> tuple[int | None, str | None]:
            req = urllib.request.Request(job["webhook"], data=payload, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8",
                                                  "User-Agent": "livingdocs-sandbox-webhook"})
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
                    resp.read()
                    return resp.status, None
            except urllib.error.HTTPError as exc:
                return exc.code, None
            except (urllib.error.URLError, OSError, ValueError) as exc:
                return None, type(getattr(exc, "reason", exc)).__name__

        for attempt in range(3):
            if attempt:
                await asyncio.sleep(0.5 * attempt)
            record["attempts"] += 1
            status, err = await asyncio.to_thread(post)
            record.update(status=status, error=err, time=time.time())
            if status is not None and status < 500:
                return

    # -- validation ---------------------------------------------------------------------------------------
    def _validate(self, body: Any) -> tuple[dict[str, str], list[dict[str, Any]]]:
        errors: dict[str, str] = {}
        images: list[dict[str, Any]] = []
        if not isinstance(body, dict):
            return {"body": "must be a JSON object"}, images
        system = body.get("systemName")
        if not isinstance(system, str) or not system.strip():
            errors["systemName"] = "is required (a non-empty string)"
        webhook = body.get("webhook")
        if webhook is not None and not _is_http_url(webhook):
            errors["webhook"] = "must be an http(s) URL"
        if "context" in body and body["context"] is not None:
            ctx = body["context"]
            if not isinstance(ctx, dict):
                errors["context"] = "must be an object"
            elif len(json.dumps(ctx, ensure_ascii=False, separators=(",", ":")).encode()) > CONTEXT_MAX_BYTES:
                errors["context"] = f"must not be larger than {CONTEXT_MAX_BYTES} bytes"
        raw = body.get("images")
        if not isinstance(raw, list):
            errors["images"] = "is required (an array of images)"
            return errors, images
        if not raw:
            errors["images"] = "must contain at least 1 item"
        if len(raw) > self.max_images_per_call:
            errors["images"] = f"must not contain more than {self.max_images_per_call} items"
            return errors, images
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                errors[f"images.{i}"] = "must be an object"
                continue
            url = item.get("url")
            if not isinstance(url, str) or not url.strip():
                errors[f"images.{i}.url"] = "is required"
            elif url.strip().lower().startswith("data:"):
                errors[f"images.{i}.url"] = "data URLs are not allowed"
            elif not _is_http_url(url):
                errors[f"images.{i}.url"] = "must be an http(s) URL"
            ext = item.get("id")
            if isinstance(ext, bool) or not isinstance(ext, (str, int)) or not str(ext).strip():
                errors[f"images.{i}.id"] = "is required"
            metadata = item.get("metadata", {})
            if metadata is None:
                metadata = {}
            if not isinstance(metadata, dict):
                errors[f"images.{i}.metadata"] = "must be an object"
            media_type = item.get("mediaType") or "image"
            if not isinstance(media_type, str):
                errors[f"images.{i}.mediaType"] = "must be a string"
            file_name = item.get("fileName")
            if file_name is not None and not isinstance(file_name, str):
                errors[f"images.{i}.fileName"] = "must be a string"
            if not errors:
                images.append({"url": url.strip(), "id": str(ext), "fileName": file_name,
                               "metadata": metadata, "mediaType": media_type})
        return errors, images

    # -- app ------------------------------------------------------------------------------------------------
    def routes(self) -> list[Any]:
        """The unauthenticated files, then the API under ``/api/{version}`` and ``/proxy/api/api/{version}``."""
        routes = [Route("/test-images/{name}", self.get_test_image, methods=["GET", "HEAD"]),
                  Route("/media/{media_id}", self.get_media_file, methods=["GET", "HEAD"])]
        for prefix in PREFIXES:
            base = f"{prefix}/api/{{version}}"
            routes += [
                Route(f"{base}/import/images", self.post_import, methods=["POST"]),
                Route(f"{base}/import/images/status", self.get_import_status, methods=["GET"]),
                Route(f"{base}/mediaLibrary", self.get_media_lookup, methods=["GET"]),
                Route(f"{base}/mediaLibrary/{{media_id}}", self.get_media_entry, methods=["GET"]),
            ]
        return routes

    def unrouted(self, request: Request, status: int) -> Response:
        """405 names the method; 404 names the path, or is 410 when the path names an unknown API version."""
        if status == 405:
            return _error(405, "Method Not Allowed", {"method": request.method})
        path = request.url.path
        match = re.match(r"^(?:/proxy/api)?/api/([^/]+)/", path)
        if match and match.group(1) not in VERSIONS:
            return _error(410, "Gone", {"apiVersion": f"The API version '{match.group(1)}' is not supported "
                                                      f"(any more); use v1 or a dated version 2025-03 … 2026-11"})
        return _error(404, "Not Found", {"url": path})

    def _check(self, request: Request, scope: str) -> Response | None:
        """The error answer for an unknown version (410), a missing, expired or unknown token (401) or a
        token without ``scope`` (403); None when the call may go on."""
        version = request.path_params.get("version")
        if version not in VERSIONS:
            return _error(410, "Gone", {"apiVersion": f"The API version '{version}' is not supported (any more); "
                                                      f"use v1 or a dated version 2025-03 … 2026-11"})
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            return _error(401, "Unauthorized", {"access_token": "The access token is missing or invalid."})
        if value in self.expired_tokens:
            return _error(401, "Unauthorized", {"access_token": "The access token expired."})
        scopes = self.tokens.get(value)
        if scopes is None:
            return _error(401, "Unauthorized", {"access_token": "The access token is invalid."})
        if scope not in scopes:
            return _error(403, "Forbidden", {"access_token": "The request requires higher privileges",
                                             "scope": scope})
        return None

    async def post_import(self, request: Request) -> Response:
        """``POST …/import/images``: validate, count against the daily limit (429 with an array body), start
        the job and answer its ``{"id"}``."""
        denied = self._check(request, WRITE_SCOPE)
        if denied is not None:
            return denied
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Bad Request", {"body": "is not valid JSON"})
        errors, images = self._validate(body)
        if errors:
            return _error(400, "Bad Request", errors)
        if self.daily_limit is not None:
            if self.usage_today() + len(images) > self.daily_limit:
                message = (f"Your plan does not allow you to upload more than {self.daily_limit} per day. "
                           f"Please contact Livingdocs to upgrade your plan.")
                return JSONResponse([_error_body(429, "Usage Limit Exceeded", {"message": message})],
                                    status_code=429)
        self.usage[dt.datetime.now(dt.timezone.utc).date().isoformat()] += len(images)
        job = self._create_job(body, images)
        if self.import_answer_delay > 0:  # the job runs; the answer comes late (or, to a client gone, never)
            await asyncio.sleep(self.import_answer_delay)
        return JSONResponse({"id": job["id"]})

    async def get_import_status(self, request: Request) -> Response:
        """``GET …/import/images/status?id=``: the job's state (see :meth:`status_body`); unknown id → 404."""
        denied = self._check(request, WRITE_SCOPE)
        if denied is not None:
            return denied
        if self.status_error_rate and self._status_rng.random() < self.status_error_rate:
            return _error(503, "Service Unavailable", {"status": "Sandbox: injected 503 on a status poll"})
        job_id = request.query_params.get("id")
        if not job_id:
            return _error(400, "Bad Request", {"id": "is required"})
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "Not Found", {"id": f"Import job does not exist (id: '{job_id}')"})
        return JSONResponse(self.status_body(job))

    async def get_media_lookup(self, request: Request) -> Response:
        """``GET …/mediaLibrary?ids=a,b`` (or ``ids[0]=a&ids[1]=b``, ``ids[]=a&ids[]=b``, ``ids=a&ids=b``) or
        ``?externalId=…[&systemName=…]``: the entries, in the version's list envelope."""
        denied = self._check(request, READ_SCOPE)
        if denied is not None:
            return denied
        params = request.query_params
        ids = query_list(params.multi_items(), "ids")
        externals = query_list(params.multi_items(), "externalId", split=False)
        system = params.get("systemName") or None
        if not ids and not externals:
            return _error(400, "Bad Request", {"query": "ids or externalId is required"})
        found: list[dict[str, Any]] = []
        for media_id in ids:
            entry = self._by_media_id.get(media_id.strip())
            if entry is not None and entry not in found:
                found.append(entry)
        for value in externals:
            candidates = [value] if self._match(value, system) or "," not in value else value.split(",")
            for ext in candidates:
                for entry in self._match(ext, system):
                    if entry not in found:
                        found.append(entry)
        if self.shape == "other_envelope":  # the contract check's knob: an envelope no client reads
            return JSONResponse({"data": [_public(e) for e in found]})
        return _envelope(request, found)

    async def get_media_entry(self, request: Request) -> Response:
        """``GET …/mediaLibrary/{id}``: one entry; unknown → 404."""
        denied = self._check(request, READ_SCOPE)
        if denied is not None:
            return denied
        media_id = request.path_params["media_id"]
        entry = self._by_media_id.get(media_id)
        if entry is None:
            return _error(404, "Not Found", {"id": f"MediaLibrary Entry does not exist (id: '{media_id}')"})
        return JSONResponse(_public(entry))

    async def get_test_image(self, request: Request) -> Response:
        """``GET /test-images/{name}`` (no auth): a test image of :mod:`.livingdocs_data`."""
        found = make_test_image(request.path_params["name"])
        if found is None:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        return Response(found[0], media_type=found[1])

    async def get_media_file(self, request: Request) -> Response:
        """``GET /media/{mediaId}`` (no auth): the stored picture of an entry (its "imgix" URL)."""
        media_id = request.path_params["media_id"]
        entry = self._by_media_id.get(media_id)
        if entry is None or media_id not in self._media_bytes:
            return Response(b"Not Found", status_code=404, media_type="text/plain")
        return Response(self._media_bytes[media_id], media_type=entry["asset"]["mimeType"],
                        headers={"Cache-Control": "public, max-age=3600"})

    def _match(self, external_id: str, system: str | None) -> list[dict[str, Any]]:
        if system:
            entry = self.media.get((system, external_id))
            return [entry] if entry is not None else []
        return [e for (s, x), e in self.media.items() if x == external_id]


def _error(status: int, name: str, details: dict[str, Any]) -> Response:
    return JSONResponse(_error_body(status, name, details), status_code=status)


def _envelope(request: Request, entries: list[dict[str, Any]]) -> Response:
    """A list of entries: ``{"results": …}`` from version 2026-01, the bare array before (what the SDK's
    ``getMedia`` returns as ``Media[]``; the vendor's 2026-01 changelog says these lists were arrays)."""
    listed = [_public(e) for e in entries]
    if request.path_params["version"] in RESULTS_ENVELOPE:
        return JSONResponse({"results": listed})
    return JSONResponse(listed)


_INDEXED = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<index>\d*)\]$")


def query_list(items: Any, name: str, *, split: bool = True) -> list[str]:
    """The values of query parameter ``name`` in every encoding clients use: ``name=a,b`` (comma separated,
    when ``split``), repeated ``name=a&name=b``, ``name[]=a&name[]=b`` and the ``qs`` indices
    ``name[0]=a&name[1]=b`` (in index order). ``items`` are the decoded (key, value) pairs in request order;
    blank values are left out (split parts are stripped; a value not split is kept as it is)."""
    plain: list[str] = []
    indexed: list[tuple[int, int, str]] = []
    for position, (key, value) in enumerate(items):
        match = _INDEXED.match(key)
        if key == name:
            plain.append(value)
        elif match and match.group("name") == name:
            if match.group("index"):
                indexed.append((int(match.group("index")), position, value))
            else:
                plain.append(value)
    values = plain + [value for _, _, value in sorted(indexed)]
    parts = [part for value in values for part in (value.split(",") if split else [value])]
    return [part.strip() if split else part for part in parts if part.strip()]


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in entry.items() if not k.startswith("_")}


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urllib.parse.urlsplit(value.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _filename(url: str, mime: str) -> str:
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or "image"
    if "." not in name:
        name += {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/svg+xml": ".svg"}.get(mime, "")
    return name
