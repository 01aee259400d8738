"""Uddata+ emulator: the service's API as its documentation describes it, on loopback HTTP.

* ``POST /oauth/token`` (form ``grant_type=client_credentials``, ``client_id``, ``client_secret``) →
  ``{"access_token", "token_type": "Bearer", "expires_in"}``; bad credentials → ``401 invalid_client``.
* ``GET /{api_version}/{institution}/elever`` → JSON array of students (``?expand=uddannelser`` adds a list).
* ``GET /{api_version}/{institution}/billeder/{cpr}`` → ``200 image/jpeg`` or ``404 not_found`` (the
  message says whether the person or the photo is missing).
* ``PUT /{api_version}/{institution}/billeder?cpr=…`` with a multipart part ``billede`` (also tolerated:
  a raw ``image/jpeg`` body and a multipart ``cpr`` field) → ``201``; ``404`` unknown CPR, ``401`` bad
  token, ``403`` credentials without the picture right, ``400`` not a JPEG, ``413`` over 10 MB.

Latency and faults come from the sandbox's middleware. The truth stays inspectable for tests:
``images`` (CPR → the JPEG bytes exactly as stored: tests look at what a prepared upload left there),
``put_counts`` (successful stores per CPR), ``truth()``, ``expire_tokens()``,
``credentials_without_picture_right()``. A picture over 10 MB is refused with ``413`` whether the request
says its length or not, and the body is read first, so a client hears the answer instead of a reset.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets as _secrets
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .forms import read_form
from .server import Emulator
from .uddata_data import make_photo, make_students

__all__ = ["UddataEmulator", "MAX_BYTES"]

MAX_BYTES = 10 * 1024 * 1024
MIN_PICTURE_VERSION = (0, 7, 5)


def _version(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return None


class UddataEmulator(Emulator):
    name = "uddata"
    api_version = "0.7.5"
    #: ``shape`` (for the contract check, ``toolkit.check``): ``""`` as documented; ``"ids_as_numbers"``
    #: serves ``indi_id`` and ``cpr_nr`` as JSON numbers (leading zeros lost); ``"envelope"`` wraps the
    #: roster in ``{"elever": [...]}``
    knobs = ("shape",)
    shape = ""

    def __init__(self, seed: int = 0, students: int = 120) -> None:
        super().__init__(seed)
        digest = hashlib.sha256(f"toolkit-sandbox-uddata-{seed}".encode()).hexdigest()
        self.institution = str(100000 + int(digest[:8], 16) % 900000)
        self.client_id = "sandbox.uddata.api_client.id"
        self.client_secret = hashlib.sha256(f"uddata-secret-{seed}".encode()).hexdigest()[:48]
        self.readonly_client_id = "sandbox.uddata.readonly.id"
        self.readonly_client_secret = hashlib.sha256(f"uddata-readonly-secret-{seed}".encode()).hexdigest()[:48]
        #: seconds announced in ``expires_in``
        self.token_lifetime = 3600
        self._tokens: dict[str, bool] = {}  # token → has the picture right
        self.issued_tokens: list[str] = []
        self.students: list[dict[str, Any]] = make_students(seed, students)
        self._by_cpr = {s["cpr_nr"]: s for s in self.students}
        self._photo_seeds = {s["cpr_nr"]: s["photo_seed"] for s in self.students if s["has_photo"]}
        self.images: dict[str, bytes] = {}  # photos stored by PUT (the seeded ones are made lazily)
        self.put_counts: Counter[str] = Counter()
        self.get_counts: Counter[str] = Counter()

    # -- truth for tests ----------------------------------------------------------------------------------
    def credentials(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "institution": self.institution, "api_version": self.api_version,
                "client_id": self.client_id, "client_secret": self.client_secret}

    def credentials_without_picture_right(self) -> dict[str, Any]:
        """Valid credentials that lack the right to upload pictures (PUT answers 403)."""
        return {**self.credentials(), "client_id": self.readonly_client_id,
                "client_secret": self.readonly_client_secret}

    def secrets(self) -> list[str]:
        return [self.client_secret, self.readonly_client_secret, *self.issued_tokens]

    def personal_data(self) -> list[str]:
        return [s["cpr_nr"] for s in self.students]

    def roster(self) -> list[str]:
        """CPR numbers of the students, in roster order."""
        return [s["cpr_nr"] for s in self.students]

    def has_photo(self, cpr: str) -> bool:
        return cpr in self.images or cpr in self._photo_seeds

    def truth(self) -> dict[str, bool]:
        """CPR → whether the service holds a photo, for every student."""
        return {c: self.has_photo(c) for c in self.roster()}

    def photo(self, cpr: str) -> bytes | None:
        """The stored JPEG bytes of ``cpr`` (seeded photos are generated on first use)."""
        if cpr in self.images:
            return self.images[cpr]
        seed = self._photo_seeds.get(cpr)
        if seed is None:
            return None
        data = make_photo(seed)
        self.images[cpr] = data
        return data

    def add_students(self, count: int, with_photo: bool = False) -> list[str]:
        """Enrol ``count`` more synthetic students (e.g. for benchmarks); returns their CPR numbers."""
        extra = make_students(self.seed * 7919 + len(self.students) + 1, count, without_photo=0 if with_photo else 1)
        added = []
        for s in extra:
            if s["cpr_nr"] in self._by_cpr:
                continue
            s["indi_id"] = str(500000 + len(self.students))
            self.students.append(s)
            self._by_cpr[s["cpr_nr"]] = s
            if s["has_photo"]:
                self._photo_seeds[s["cpr_nr"]] = s["photo_seed"]
            added.append(s["cpr_nr"])
        return added

    def remove_photo(self, cpr: str) -> None:
        self.images.pop(cpr, None)
        self._photo_seeds.pop(cpr, None)

    def expire_tokens(self) -> None:
        """Make every issued token invalid (the next call answers 401, as with an expired token)."""
        self._tokens.clear()

    def reset(self) -> None:
        """Forget uploaded photos and counters (the seeded roster and photos stay)."""
        self.images.clear()
        self._photo_seeds = {s["cpr_nr"]: s["photo_seed"] for s in self.students if s["has_photo"]}
        self.put_counts.clear()
        self.get_counts.clear()

    # -- app ------------------------------------------------------------------------------------------------
    def routes(self) -> list[Any]:
        return [
            Route("/oauth/token", self.post_token, methods=["POST"]),
            Route("/{version}/{institution}/elever", self.get_elever, methods=["GET"]),
            Route("/{version}/{institution}/billeder/{cpr}", self.get_billede, methods=["GET"]),
            Route("/{version}/{institution}/billeder", self.put_billede, methods=["PUT"]),
        ]

    def unrouted(self, request: Request, status: int) -> Response:
        if status == 405:
            return _error(405, "method_not_allowed", "method not allowed")
        return _error(404, "not_found", "no such endpoint")

    async def post_token(self, request: Request) -> Response:
        """``POST /oauth/token``: a client-credentials grant; the read-only client gets a token without
        the picture right."""
        form = await request.form()
        grant = form.get("grant_type")
        cid, secret = form.get("client_id"), form.get("client_secret")
        if grant != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type",
                                 "message": "use grant_type=client_credentials"}, status_code=400)
        if (cid, secret) == (self.client_id, self.client_secret):
            right = True
        elif (cid, secret) == (self.readonly_client_id, self.readonly_client_secret):
            right = False
        else:
            return JSONResponse({"error": "invalid_client", "message": "unknown client id or wrong secret"},
                                status_code=401)
        value = _secrets.token_urlsafe(32)
        self._tokens[value] = right
        self.issued_tokens.append(value)
        return JSONResponse({"access_token": value, "token_type": "Bearer", "expires_in": self.token_lifetime})

    def _check(self, request: Request, picture: bool = False) -> Response | bool:
        """Return an error response, or whether the caller has the picture right."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or value not in self._tokens:
            return _error(401, "invalid_token", "the access token is missing, invalid or expired")
        version = _version(request.path_params["version"])
        if version is None:
            return _error(404, "not_found", "unknown API version")
        if picture and version < MIN_PICTURE_VERSION:
            return _error(404, "not_found", "the picture endpoints exist since API version 0.7.5")
        if request.path_params["institution"] != self.institution:
            return _error(403, "forbidden", "the credentials are not valid for this institution")
        return self._tokens[value]

    async def get_elever(self, request: Request) -> Response:
        """``GET /{version}/{institution}/elever``: the students (``?expand=uddannelser`` adds their list)."""
        ok = self._check(request)
        if isinstance(ok, Response):
            return ok
        expand = {e.strip() for e in request.query_params.get("expand", "").split(",") if e.strip()}
        fields = ("indi_id", "cpr_nr", "fornavn", "efternavn", "stamhold", "uddannelse", "startdato", "slutdato")
        body = []
        for s in self.students:
            item = {k: s[k] for k in fields}
            if "uddannelser" in expand:
                item["uddannelser"] = s["uddannelser"]
            body.append(item)
        if self.shape == "ids_as_numbers":
            body = [{**item, "indi_id": int(item["indi_id"]), "cpr_nr": int(item["cpr_nr"])} for item in body]
        served = {"elever": body} if self.shape == "envelope" else body
        return Response(json.dumps(served, ensure_ascii=False), media_type="application/json; charset=utf-8")

    async def get_billede(self, request: Request) -> Response:
        """``GET /{version}/{institution}/billeder/{cpr}``: the JPEG, or 404 saying whether the person or
        the photo is missing."""
        ok = self._check(request, picture=True)
        if isinstance(ok, Response):
            return ok
        cpr = request.path_params["cpr"]
        self.get_counts[cpr] += 1
        if cpr not in self._by_cpr:
            return _error(404, "not_found", "no person with this CPR number in the database")
        data = self.photo(cpr)
        if data is None:
            return _error(404, "not_found", "the person has no photo")
        return Response(data, media_type="image/jpeg")

    async def put_billede(self, request: Request) -> Response:
        """``PUT /{version}/{institution}/billeder?cpr=…``: store a JPEG sent as the multipart part
        ``billede`` (or a raw body; the CPR also as a multipart field) → 201."""
        ok = self._check(request, picture=True)
        if isinstance(ok, Response):
            return ok
        if ok is False:
            return _error(403, "forbidden", "the credentials lack the right to upload pictures; ask support")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BYTES + 64 * 1024:
            await _drain(request)  # read what was sent, so that the client hears the 413 (not a reset)
            return _error(413, "payload_too_large", "the picture is larger than 10 MB")
        cpr, data = await _upload(request)
        if not cpr:
            return _error(400, "bad_request", "the cpr parameter is missing")
        if not data:
            return _error(400, "bad_request", "the billede part (a JPEG picture) is missing")
        if len(data) > MAX_BYTES:
            return _error(413, "payload_too_large", "the picture is larger than 10 MB")
        if cpr not in self._by_cpr:
            return _error(404, "not_found", "no person with this CPR number in the database; "
                                            "the picture was not stored")
        if not _is_jpeg(data):
            return _error(400, "bad_request", "the picture is not a JPEG")
        self.images[cpr] = data
        self._photo_seeds.pop(cpr, None)
        self.put_counts[cpr] += 1
        return Response(status_code=201)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _drain(request: Request, limit: int = 64 * 1024 * 1024) -> None:
    """Read and drop the body of a refused request (up to ``limit`` bytes)."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            break


async def _upload(request: Request) -> tuple[Any, bytes | None]:
    """The CPR number (query, else a multipart field) and the picture (multipart part ``billede`` or the body)."""
    cpr = request.query_params.get("cpr")
    ctype = request.headers.get("content-type", "")
    data: bytes | None = None
    if ctype.startswith("multipart/form-data"):
        form = await read_form(request, max_files=4, max_fields=16, max_part_size=MAX_BYTES + 1)
        part = form.get("billede")
        if part is not None and hasattr(part, "read"):
            data = await part.read()
        elif isinstance(part, str):
            data = part.encode("latin-1", "replace")
        cpr = cpr or (form.get("cpr") if isinstance(form.get("cpr"), str) else None)
    else:
        data = await request.body()
    return cpr, data


def _is_jpeg(data: bytes) -> bool:
    if not data.startswith(b"\xff\xd8"):
        return False
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
            return img.width > 0 and img.height > 0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return False
