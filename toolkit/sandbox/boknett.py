"""Boknett emulator: the login and metadata export API as documented, on loopback HTTP.

One app serves the login and the metadata paths (``credentials()`` gives the same URL for both):

* ``POST /v1/tickets`` (form ``username``, ``password``) → ``201``, empty body, headers ``Boknett-TGT`` and
  ``Location``. The form is read as ``application/x-www-form-urlencoded`` also when the request has no
  ``Content-Type`` (Bokbasen's PHP SDK sends none). Wrong credentials → ``wrong_password_status`` (``400``, as
  Bokbasen documents its login and as the SDK's own test mocks it; ``401`` was the first contract) with error
  XML ``INVALID_CREDENTIALS``; no username or password field → ``400 MISSING_CREDENTIALS``.
  ``DELETE /v1/tickets/{tgt}`` logs out. A TGT lives ``tgt_lifetime`` seconds (server clock); unknown or
  expired → ``401``.
* Every metadata call needs ``Authorization: Boknett TGT-…`` and an RFC 1123 ``Date`` (``GMT``/``UTC``) within
  15 minutes of the server clock, else ``400`` (codes ``MISSING_DATE``, ``INVALID_DATE``, ``DATE_SKEW``).
  The server clock is ``time.time() + clock_offset``; every response carries it in its ``Date`` header.
* ``GET /metadata/export/object?after=yyyyMMddHHmmss | next=<cursor>[&pagesize=N]`` → ``application/xml``
  ``<OBJECTS>…</OBJECTS>``. The cursor is a position in the list of changes (opaque, urlsafe base64), so a
  pull gets exactly what it missed; every page has ``Next``, pages with more to come also ``Link``.
* ``GET /metadata/export/object/download?id=…`` → the file (``application/octet-stream``) with
  ``Content-Disposition``. Content negotiation as HTTP has it (RFC 9110 §12.5.1): no ``Accept`` (the SDK
  sends none), ``*/*``, ``application/*`` or ``application/octet-stream`` — also in a list with q-values —
  serve the file; only an ``Accept`` that excludes ``application/octet-stream`` (``image/jpeg`` alone, or
  ``q=0`` on its most specific range) → ``406``. ``403`` another user's id, ``404`` unknown, ``410`` expired.
* ``subscription=`` on the report is accepted and ignored (the SDK sends ``extended``; what it changes on the
  real service is not known).

Test hooks: ``object_count`` (settable), ``add_objects(n)``, ``tgt_lifetime``, ``download_lifetime``,
``wrong_password_status``, ``clock_offset``, ``hostile_names``, ``big_object_bytes`` / ``big_object_reference()``,
``cut_download_after``, ``logins`` / ``failed_logins``, ``download_counts``, ``expire_tickets()``,
``object_record(i)``, ``reference(i)``, ``cursor(position)``, ``second_user_credentials()``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import re
import secrets as _secrets
import string
import struct
import time
from collections import Counter
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .boknett_data import (HOSTILE_NAMES, audio_bytes, cover_bytes, file_extension, object_fields,
                           render_objects)
from .server import Emulator

__all__ = ["BoknettEmulator", "MAX_PAGESIZE", "MAX_AGE_DAYS", "MAX_SKEW_SECONDS", "acceptable"]

MAX_PAGESIZE = 5000
MAX_AGE_DAYS = 180
MAX_SKEW_SECONDS = 15 * 60
SPREAD_DAYS = 90
_DAY = 86400.0
#: the type every object file is served as
FILE_TYPE = "application/octet-stream"

_DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                      r"(\d{4}) (\d{2}):(\d{2}):(\d{2}) (GMT|UTC)$")
_MONTHS = {m: k + 1 for k, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
_ALNUM = string.ascii_letters + string.digits


def http_date(epoch: float) -> str:
    """RFC 1123 date of an epoch time, ``GMT`` suffix."""
    return formatdate(epoch, usegmt=True)


def parse_http_date(text: str) -> float | None:
    m = _DATE_RE.match(text.strip())
    if not m:
        return None
    try:
        dt = datetime(int(m[4]), _MONTHS[m[3]], int(m[2]), int(m[5]), int(m[6]), int(m[7]), tzinfo=timezone.utc)
    except ValueError:
        return None
    return dt.timestamp()


def acceptable(accept: str | None, media_type: str) -> bool:
    """Whether an ``Accept`` header allows ``media_type`` (RFC 9110 §12.5.1): no header (or one without a
    readable media range) allows anything; otherwise the most specific matching range decides
    (``type/subtype`` over ``type/*`` over ``*/*``), and it allows the type unless its ``q`` is 0. A range
    that matches nothing does not allow it."""
    if accept is None:
        return True
    kind, _, sub = media_type.strip().lower().partition("/")
    best: tuple[int, float] | None = None
    readable = False
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        rtype, slash, rsub = fields[0].lower().partition("/")
        if not slash or not rtype or not rsub:
            continue
        readable = True
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 1.0  # an unreadable weight: the range counts as given
        if rtype == "*" and rsub == "*":
            rank = 0
        elif rtype == kind and rsub == "*":
            rank = 1
        elif rtype == kind and rsub == sub:
            rank = 2
        else:
            continue
        if best is None or rank > best[0]:
            best = (rank, q)
    if not readable:
        return True
    return best is not None and best[1] > 0


async def _login_form(request: Request) -> dict[str, str]:
    """The login form's fields: the body read as urlencoded when the request says no ``Content-Type`` (as
    Bokbasen's PHP SDK sends it), else as its ``Content-Type`` says (urlencoded or multipart)."""
    if not request.headers.get("content-type", "").strip():
        raw = await request.body()
        return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _error_xml(code: str, message: str) -> bytes:
    from xml.sax.saxutils import escape

    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<errors><error><code>{escape(code)}</code>'
            f"<message>{escape(message)}</message></error></errors>\n").encode()


class _Cut(Exception):
    """Raised mid-response to make uvicorn close the connection (``cut_download_after``)."""


class _Body:
    """A streamed ASGI response: the full ``Content-Length`` is announced, chunks are sent one by one."""

    def __init__(self, status: int, headers: dict[str, str], chunks: Iterator[bytes], length: int,
                 cut: int | None) -> None:
        self.status, self.headers, self.chunks, self.length, self.cut = status, headers, chunks, length, cut

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        headers.append((b"content-length", str(self.length).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        sent = 0
        for chunk in self.chunks:
            if self.cut is not None and sent + len(chunk) > self.cut:
                await send({"type": "http.response.body", "body": chunk[: self.cut - sent], "more_body": True})
                raise _Cut("download cut by the emulator (cut_download_after)")
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _big_chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    block = (b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * (size // 256))[:size]
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield block if n == size else block[:n]
        sent += n


def content_disposition(name: str) -> str:
    """``attachment; filename="…"`` for printable ASCII names, else RFC 5987 ``filename*=UTF-8''…``."""
    if all(32 <= ord(c) < 127 for c in name):
        return 'attachment; filename="{}"'.format(name.replace("\\", "\\\\").replace('"', '\\"'))
    return "attachment; filename*=UTF-8''" + quote(name, safe="")


class BoknettEmulator(Emulator):
    name = "boknett"
    knobs = ("tgt_lifetime", "download_lifetime", "clock_offset", "hostile_names", "big_object_bytes",
             "cut_download_after", "wrong_password_status", "shape")
    #: ``shape`` (for the contract check, ``toolkit.check``): ``""`` as documented; ``"link_without_next"``
    #: answers a report page with its ``Link`` but without the ``Next`` header
    shape = ""

    def __init__(self, seed: int = 0, object_count: int = 300) -> None:
        super().__init__(seed)
        digest = hashlib.sha256(f"toolkit-sandbox-boknett-{seed}".encode()).hexdigest()
        self.username = "sandbox.boknett"
        #: form-encoding test: contains & = % + and a space
        self.password = f"Bok&nett={digest[:6]}% +{digest[6:12]} sikker"
        self.other_username = "sandbox.boknett.other"
        self.other_password = f"Annen %{digest[12:18]}&+= {digest[18:24]}"
        self._users = {self.username: (0, self.password), self.other_username: (1, self.other_password)}
        self._key = hashlib.sha256(f"boknett-ids-{seed}".encode()).digest()[:32]
        #: seconds a TGT lives (the documented value: 2 hours)
        self.tgt_lifetime: float = 7200.0
        #: seconds a download id lives after the report named it (the documented value: 24 hours)
        self.download_lifetime: float = 86400.0
        #: the server's clock runs this many seconds ahead of the real one
        self.clock_offset: float = 0.0
        self.hostile_names = False
        self.big_object_bytes: int | None = None
        self.cut_download_after: int | None = None
        #: the status of a login with a wrong user name or password: 400, as Bokbasen's documentation of the
        #: login lists (201, 400, 405) and as php-sdk-auth's tests/Unit/LoginTest.php mocks a failed login;
        #: 401 was the contract as first researched (the client reads both as a refused login)
        self.wrong_password_status = 400
        self.logins = 0
        self.failed_logins = 0
        self.logouts = 0
        self.issued_tgts: list[str] = []
        self._tickets: dict[str, tuple[int, float]] = {}  # TGT → (user index, issued at, server clock)
        self._tgt_serial = 151
        self.download_counts: Counter[str] = Counter()    # download id (as received) → 200 answers
        self.downloads_by_position: Counter[int] = Counter()
        self.pages_served = 0
        self._created = time.time()
        self._initial = int(object_count)
        self._batch_starts: list[int] = []     # positions where add_objects batches start
        self._batch_times: list[float] = []    # their timestamps
        self._added = 0

    # -- clock ------------------------------------------------------------------------------------------------
    def now(self) -> float:
        """The server's clock (epoch seconds)."""
        return time.time() + self.clock_offset

    # -- the list of changes --------------------------------------------------------------------------------------
    @property
    def object_count(self) -> int:
        """Number of changes in the report (settable: resets to that many changes over the last 90 days)."""
        return self._initial + self._added

    @object_count.setter
    def object_count(self, value: int) -> None:
        self._initial = int(value)
        self._batch_starts.clear()
        self._batch_times.clear()
        self._added = 0

    def add_objects(self, n: int) -> tuple[int, int]:
        """Append ``n`` new changes stamped "now" (server clock); returns their positions ``(start, stop)``."""
        start = self.object_count
        stamp = max(self.now(), self.timestamp(start - 1) if start else 0.0)
        self._batch_starts.append(start)
        self._batch_times.append(stamp)
        self._added += int(n)
        return start, start + int(n)

    def timestamp(self, i: int) -> float:
        """When change ``i`` happened (epoch seconds; non-decreasing in ``i``)."""
        if i < self._initial:
            spread = SPREAD_DAYS * _DAY
            return self._created - spread + spread * (i + 1) / max(self._initial, 1)
        k = bisect.bisect_right(self._batch_starts, i) - 1
        return self._batch_times[k]

    def _first_after(self, epoch: float) -> int:
        return bisect.bisect_right(range(self.object_count), epoch, key=self.timestamp)

    def filename(self, i: int) -> str:
        isbn, _, _, _, kind, book = object_fields(self.seed, i)
        if self.hostile_names and i % 7 == 3:
            return HOSTILE_NAMES[(i // 7) % len(HOSTILE_NAMES)]
        return f"{isbn}_{kind}.{file_extension(kind, book)}"

    # -- opaque ids and cursors -------------------------------------------------------------------------------------
    def _sign(self, payload: bytes) -> bytes:
        return hashlib.blake2b(payload, key=self._key, digest_size=6).digest()

    def _seal(self, payload: bytes) -> bytes:
        """``mac + payload`` masked with a keyed stream: opaque and unforgeable."""
        mac = self._sign(payload)
        mask = hashlib.blake2b(mac, key=self._key, digest_size=len(payload)).digest()
        return mac + bytes(a ^ b for a, b in zip(payload, mask))

    def _open(self, raw: bytes, size: int) -> bytes | None:
        if len(raw) != size + 6:
            return None
        mac = raw[:6]
        mask = hashlib.blake2b(mac, key=self._key, digest_size=size).digest()
        payload = bytes(a ^ b for a, b in zip(raw[6:], mask))
        return payload if _secrets.compare_digest(self._sign(payload), mac) else None

    def _make_id(self, user: int, i: int, issued_ms: int) -> str:
        return base64.b64encode(self._seal(struct.pack(">BIQ", user, i, issued_ms))).decode()

    def _read_id(self, value: str) -> tuple[int, int, int] | None:
        try:
            payload = self._open(base64.b64decode(value.encode(), validate=True), 13)
        except (binascii.Error, ValueError):
            return None
        return None if payload is None else struct.unpack(">BIQ", payload)

    def cursor(self, position: int, issued: float | None = None) -> str:
        """The opaque cursor of ``position`` (``issued``: server-clock time it was made, for expiry tests)."""
        payload = struct.pack(">QQ", position, int((self.now() if issued is None else issued) * 1000))
        return base64.urlsafe_b64encode(self._seal(payload)).decode().rstrip("=")

    def _read_cursor(self, value: str) -> tuple[int, float] | None:
        try:
            payload = self._open(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), 16)
        except (binascii.Error, ValueError):
            return None
        if payload is None:
            return None
        position, issued_ms = struct.unpack(">QQ", payload)
        return position, issued_ms / 1000

    def reference(self, i: int, user: int = 0, issued: float | None = None) -> str:
        """The download URL of change ``i`` for user 0 (main) or 1 (the second user)."""
        issued_ms = int((self.now() if issued is None else issued) * 1000)
        return f"{self.base_url}/metadata/export/object/download?id={quote(self._make_id(user, i, issued_ms), safe='')}"

    def object_record(self, i: int, user: int = 0, issued: float | None = None) -> dict[str, str]:
        """Change ``i`` as the report serves it (keys: isbn13, ean, fssn, vareeier_kode, type, reference)."""
        isbn, ean, fssn, owner, kind, _ = object_fields(self.seed, i)
        return {"isbn13": isbn, "ean": ean, "fssn": fssn, "vareeier_kode": owner, "type": kind,
                "reference": self.reference(i, user, issued)}

    def records(self, start: int = 0, stop: int | None = None) -> list[dict[str, str]]:
        """Changes ``start … stop`` (the truth tests compare a pull with; references issued now)."""
        stop = self.object_count if stop is None else min(stop, self.object_count)
        return [self.object_record(i) for i in range(start, stop)]

    def big_object_reference(self, user: int = 0) -> str:
        """Download URL of the object that streams ``big_object_bytes`` bytes (change 0)."""
        return self.reference(0, user)

    def big_object_record(self, user: int = 0) -> dict[str, str]:
        return self.object_record(0, user)

    def _page(self, start: int, stop: int, user: int) -> bytes:
        issued_ms = int(self.now() * 1000)
        ref = f"{self.base_url}/metadata/export/object/download?id="
        seed, make_id = self.seed, self._make_id

        def rows() -> Iterator[tuple[str, str, str, str, str, str]]:
            for i in range(start, stop):
                isbn, ean, fssn, owner, kind, _ = object_fields(seed, i)
                yield isbn, ean, fssn, owner, kind, ref + quote(make_id(user, i, issued_ms), safe="")

        return render_objects(rows())

    # -- truth for tests ------------------------------------------------------------------------------------------
    def credentials(self) -> dict[str, Any]:
        return {"username": self.username, "password": self.password, "login_url": self.base_url,
                "base_url": self.base_url}

    def second_user_credentials(self) -> dict[str, Any]:
        """Valid credentials of another user (downloading the first user's ids answers 403)."""
        return {**self.credentials(), "username": self.other_username, "password": self.other_password}

    def secrets(self) -> list[str]:
        return [self.password, self.other_password, *self.issued_tgts]

    def personal_data(self) -> list[str]:
        return []

    def expire_tickets(self) -> None:
        """Forget every TGT (the next call answers 401, as with an expired ticket)."""
        self._tickets.clear()

    def body(self, i: int) -> bytes:
        """The file change ``i`` downloads as (without ``big_object_bytes``)."""
        isbn, _, _, _, kind, book = object_fields(self.seed, i)
        if kind == "ly":
            return audio_bytes(isbn)
        return cover_bytes(isbn, kind, file_extension(kind, book))

    # -- app --------------------------------------------------------------------------------------------------------
    def routes(self) -> list[Any]:
        return [
            Route("/v1/tickets", self.post_ticket, methods=["POST"]),
            Route("/v1/tickets/{tgt}", self.delete_ticket, methods=["DELETE"]),
            Route("/metadata/export/object", self.get_report, methods=["GET"]),
            Route("/metadata/export/object/download", self.get_download, methods=["GET"]),
        ]

    def unrouted(self, request: Request, status: int) -> Response:
        if status == 405:
            return _error(405, "METHOD_NOT_ALLOWED", "method not allowed")
        return _error(404, "NOT_FOUND", "no such endpoint")

    def build_app(self) -> Any:
        """The routes; every response carries the server clock's ``Date``."""
        return _Dated(super().build_app(), self.now)

    def _user_of(self, request: Request) -> int | Response:
        """The user index of a valid call, or the error response (401 ticket, 400 Date)."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.strip().partition(" ")
        if not header:
            return _error(401, "MISSING_AUTHORIZATION", "the Authorization header (Boknett TGT-…) is missing")
        if scheme != "Boknett" or not value.strip().startswith("TGT-"):
            return _error(401, "INVALID_AUTHORIZATION", "the Authorization header must be 'Boknett TGT-…'")
        ticket = self._tickets.get(value.strip())
        if ticket is None:
            return _error(401, "INVALID_TICKET", "the ticket is unknown or was logged out; log in again")
        user, issued = ticket
        now = self.now()
        if now - issued > self.tgt_lifetime:
            return _error(401, "TICKET_EXPIRED", "the ticket has expired; log in again")
        date = request.headers.get("date")
        if date is None or not date.strip():
            return _error(400, "MISSING_DATE", "the Date header (RFC 1123) is missing")
        when = parse_http_date(date)
        if when is None:
            return _error(400, "INVALID_DATE", "the Date header is not an RFC 1123 date such as "
                                               "'Thu, 12 Jun 2014 13:46:16 GMT'")
        if abs(when - now) > MAX_SKEW_SECONDS:
            return _error(400, "DATE_SKEW", f"the Date header differs from the server time {http_date(now)} "
                                            f"by more than 15 minutes")
        return user

    async def post_ticket(self, request: Request) -> Response:
        """``POST /v1/tickets`` (form ``username``, ``password``; no ``Content-Type`` reads as urlencoded): log
        in → ``201``, empty body, the TGT in the headers ``Boknett-TGT`` and ``Location``; wrong credentials →
        ``wrong_password_status`` (400); a missing field → ``400 MISSING_CREDENTIALS``."""
        form = await _login_form(request)
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username:
            self.failed_logins += 1
            return _error(400, "MISSING_CREDENTIALS", "the form fields username and password are required")
        known = self._users.get(username)
        if known is None or not _secrets.compare_digest(known[1].encode(), password.encode()):
            self.failed_logins += 1
            return _error(int(self.wrong_password_status), "INVALID_CREDENTIALS", "wrong user name or password")
        self._tgt_serial += 1
        tgt = f"TGT-{self._tgt_serial}-{''.join(_secrets.choice(_ALNUM) for _ in range(40))}-login.boknett.no"
        self._tickets[tgt] = (known[0], self.now())
        self.issued_tgts.append(tgt)
        self.logins += 1
        return Response(b"", status_code=201, headers={"Boknett-TGT": tgt,
                                                       "Location": f"{self.base_url}/v1/tickets/{tgt}"})

    async def delete_ticket(self, request: Request) -> Response:
        """``DELETE /v1/tickets/{tgt}``: log out; an unknown ticket → ``404``."""
        tgt = request.path_params["tgt"]
        if self._tickets.pop(tgt, None) is None:
            return _error(404, "INVALID_TICKET", "no such ticket")
        self.logouts += 1
        return Response(b"", status_code=200)

    async def get_report(self, request: Request) -> Response:
        """``GET /metadata/export/object?after=yyyyMMddHHmmss | next=<cursor>[&pagesize=N]``: one page of the
        list of changes as ``<OBJECTS>`` XML, the next cursor in ``Next`` (and ``Link`` when more follow)."""
        user = self._user_of(request)
        if isinstance(user, Response):
            return user
        q = request.query_params
        after, nxt, size_text = q.get("after"), q.get("next"), q.get("pagesize")
        if (after is None) == (nxt is None):
            return _error(400, "INVALID_PARAMETERS", "give exactly one of the parameters after and next")
        size = MAX_PAGESIZE
        if size_text is not None:
            if not size_text.isdigit() or int(size_text) < 1:
                return _error(400, "INVALID_PAGESIZE", "pagesize must be a positive whole number")
            size = int(size_text)
            if size > MAX_PAGESIZE:
                return _error(400, "INVALID_PAGESIZE", f"pagesize must be at most {MAX_PAGESIZE}")
        oldest = self.now() - MAX_AGE_DAYS * _DAY
        start = self._start_of(after, oldest) if after is not None else self._start_at(nxt or "", oldest)
        if isinstance(start, Response):
            return start
        total = self.object_count
        start = min(start, total)
        stop = min(start + size, total)
        self.pages_served += 1
        body = self._page(start, stop, user)
        cursor = self.cursor(stop)
        headers = {"Next": cursor}
        if stop < total:
            headers["Link"] = f'<{self.base_url}/metadata/export/object?next={cursor}&pagesize={size}>; rel="next"'
        if self.shape == "link_without_next":
            del headers["Next"]
        return Response(body, media_type="application/xml", headers=headers)

    def _start_of(self, after: str, oldest: float) -> int | Response:
        """The first position after the timestamp ``after`` (not before ``oldest``), or the 400 answer."""
        if not re.fullmatch(r"\d{14}", after):
            return _error(400, "INVALID_AFTER", "after must be a timestamp yyyyMMddHHmmss")
        try:
            epoch = datetime.strptime(after, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            return _error(400, "INVALID_AFTER", "after must be a timestamp yyyyMMddHHmmss")
        if epoch < oldest:
            return _error(400, "AFTER_TOO_OLD", f"after must be within the last {MAX_AGE_DAYS} days")
        return self._first_after(epoch)

    def _start_at(self, cursor: str, oldest: float) -> int | Response:
        """The position of a ``next`` cursor (issued not before ``oldest``), or the 400 answer."""
        parsed = self._read_cursor(cursor)
        if parsed is None:
            return _error(400, "INVALID_CURSOR", "the next cursor is not valid")
        start, issued = parsed
        if issued < oldest:
            return _error(400, "CURSOR_EXPIRED", f"the next cursor is older than {MAX_AGE_DAYS} days; "
                                                 "start again with after")
        return start

    async def get_download(self, request: Request) -> Any:
        """``GET /metadata/export/object/download?id=…``: the file (``application/octet-stream``) with
        ``Content-Disposition``; ``406`` only for an ``Accept`` that excludes ``application/octet-stream``
        (none, ``*/*`` and ``application/*`` allow it), ``403`` another user's id, ``404`` unknown, ``410``
        expired."""
        user = self._user_of(request)
        if isinstance(user, Response):
            return user
        if not acceptable(request.headers.get("accept"), FILE_TYPE):
            return _error(406, "NOT_ACCEPTABLE", f"the Accept header excludes {FILE_TYPE}, the type of every "
                                                 "object file; send none, */* or " + FILE_TYPE)
        raw = request.query_params.get("id", "")
        parsed = self._read_id(raw)
        if parsed is None or parsed[1] >= self.object_count:
            return _error(404, "NOT_FOUND", "no object with this id")
        owner, i, issued_ms = parsed
        if owner != user:
            return _error(403, "FORBIDDEN", "the id belongs to another user")
        if self.now() - issued_ms / 1000 > self.download_lifetime:
            return _error(410, "GONE", "the id has expired; request the object report again")
        self.download_counts[raw] += 1
        self.downloads_by_position[i] += 1
        headers = {"Content-Disposition": content_disposition(self.filename(i)),
                   "Content-Type": FILE_TYPE}
        if i == 0 and self.big_object_bytes is not None:
            total = int(self.big_object_bytes)
            return _Body(200, headers, _big_chunks(total), total, self.cut_download_after)
        data = self.body(i)
        return _Body(200, headers, _chunks(data), len(data), self.cut_download_after)


def _error(status: int, code: str, message: str) -> Response:
    return Response(_error_xml(code, message), status_code=status, media_type="application/xml")


class _Dated:
    """ASGI wrapper: every response carries ``Date`` from ``clock`` (the server clock, epoch seconds)."""

    def __init__(self, app: Any, clock: Callable[[], float]) -> None:
        self.app, self.clock = app, clock

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_dated(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                headers.append((b"date", http_date(self.clock()).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_dated)
