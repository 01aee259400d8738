"""The Boknett client: a login ticket (TGT) and a fresh RFC 1123 ``Date`` on every call.

Login is a form POST to ``{login_url}/v1/tickets`` (``201``, the ticket in the ``Boknett-TGT`` header);
every metadata call carries ``Authorization: Boknett TGT-…`` and ``Date``. The ticket lives 2 hours and is
renewed after 110 minutes, and once on a 401. Paths are ``{base_url}/metadata/export/object…``.

The clock: Boknett refuses a ``Date`` more than 15 minutes off its own clock (``400 DATE_SKEW``). The
client then learns the offset from the server's ``Date`` header and repeats the call once; if the server
still refuses, a :class:`~toolkit.core.errors.ValidationError` names the two clocks.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable, Mapping

from ..core import service as _service
from ..core.auth import DateHeader, TicketAuth
from ..core.client import ServiceClient
from ..core.credentials import Secret
from ..core.errors import BadRequest, ToolkitError, Unauthorized, ValidationError
from ..core.http import Download, RetryPolicy, Timeouts
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

#: a refused login (400 as Bokbasen documents it, 401 as first researched); worded so that no "password: …"
#: reads as a secret to the redaction (the hint was shown as "password: *** them")
LOGIN_HINTS = {401: "Boknett did not accept the user name and password. Check them (Bokbasen issues them).",
               400: "Boknett did not accept the user name and password. Check them (Bokbasen issues them)."}
#: statuses of metadata calls → what to do
HINTS = {401: "Boknett refused the login ticket even after logging in again: check the user name and password.",
         403: "This Boknett user may not read this: ask Bokbasen for access to the object export."}
#: 400 codes of the error XML → (plain message, what to do)
CODE_HINTS = {
    "INVALID_PAGESIZE": "Give pagesize= from 1 to 5000.",
    "AFTER_TOO_OLD": "Give an after= date within the last 180 days.",
    "INVALID_AFTER": "Give after= as a date, a datetime or yyyyMMddHHmmss.",
    "CURSOR_EXPIRED": "The saved cursor is older than 180 days: delete the state file and pull once with after=….",
    "INVALID_CURSOR": "The cursor is not one Boknett issued: delete the state file and pull once with after=….",
    "INVALID_PARAMETERS": "Give exactly one of after= or next=.",
}
CLOCK_CODES = ("DATE_SKEW", "MISSING_DATE", "INVALID_DATE")
#: what a download sends as ``Accept``: the file's type, served under either reading of the service (the first
#: contract: 406 to anything else; Bokbasen's SDK sends no Accept at all — docs/boknett.md, Sources)
DOWNLOAD_ACCEPT = {"Accept": "application/octet-stream"}
#: statuses of a download → what to do
DOWNLOAD_HINTS = {
    401: HINTS[401],
    403: "The id belongs to another Boknett user: download with the user name that pulled the report.",
    404: "Boknett knows no object with this id: pull the report again.",
    410: "The id has expired (Boknett's download ids live 24 hours): pull the report again (objects() or "
         "changes()) and download from the new rows.",
}
TGT_LIFETIME = 2 * 3600
TGT_RENEW_AFTER = 110 * 60


class _Login(TicketAuth):
    """Boknett's ticket login. A refused login is :class:`Unauthorized` whether Boknett answers ``400`` (what
    Bokbasen documents for its login — 201, 400, 405 — and what its PHP SDK's own test mocks for a failed
    login) or ``401`` (the contract as first researched): the client always sends both fields, so a 400 of
    the login is the credentials refused. It stays remembered for the connection (nothing more is sent)."""

    async def fetch_headers(self, http: Any) -> tuple[dict[str, str], float | None]:
        try:
            return await super().fetch_headers(http)
        except BadRequest as exc:
            if exc.status != 400:
                raise
            raise Unauthorized(exc.message, service=exc.service, method=exc.method, url=exc.url,
                               status=exc.status, hint=LOGIN_HINTS[401], details=exc.details,
                               code=exc.code) from None


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
        self.auth = _Login(f"{self.login_url}/v1/tickets", self.username, password or "",
                           ticket_header="Boknett-TGT", scheme="Boknett", lifetime=tgt_lifetime,
                           renew_after=tgt_renew_after, hints=LOGIN_HINTS)
        self.http = self._open_http(self.base_url, auth=self.auth, transport=transport, timeouts=timeouts,
                                    retry=retry, max_connections=max_connections, attempt_headers=[self.clock])

        self._clock_lock: asyncio.Lock | None = None
        self._clock_loop: Any = None
        self.clock_adjustments = 0  #: how often the server's clock was learnt (diagnostics, tests)

    def __repr__(self) -> str:
        return redact(f"<Boknett client {self.base_url} user={self.username}>")

    # -- the clock ----------------------------------------------------------------------------------------
    def server_now(self) -> float:
        """Boknett's time as this connection knows it: this computer's clock corrected by the offset learnt
        from Boknett's answers (epoch seconds). A date ``after=`` is checked against it."""
        return time.time() + self.clock.offset

    async def report_page(self, params: Mapping[str, Any]) -> Any:
        """One page of the object report (``GET`` of the report with ``params``: ``after``/``next`` and
        ``pagesize``), with the ticket and ``Date``; a clock refusal learns Boknett's clock and repeats once.
        Returns the answer whose body is the page's XML; :meth:`objects` and :meth:`changes` page with it."""
        from .objects import REPORT_PATH

        return await self._get(REPORT_PATH, params=params, what="pull the object report")

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._clock_lock is None or self._clock_loop is not loop:
            self._clock_lock, self._clock_loop = asyncio.Lock(), loop
        return self._clock_lock

    def _clock_error(self, server_date: str | None) -> ValidationError:
        return ValidationError(
            "Boknett refused the Date header of the request: this computer's clock and Boknett's clock "
            f"(server Date: {server_date or 'not given'}) differ by more than 15 minutes, also after the toolkit "
            f"adjusted its Date by {self.clock.offset:+.0f} s", service=SERVICE,
            hint="Set this computer's clock right (automatic time / NTP), then run again.")

    def _clock_refused(self, response: Any, codes: list[str]) -> bool:
        """Whether a 400 is about the ``Date``: its code says so, or the server's own ``Date`` header is more
        than 15 minutes from the time this client sends (whatever the code)."""
        if "DATE_SKEW" in codes:
            return True
        server = DateHeader()
        learnt = server.learn(response.headers.get("date"))
        return learnt is not None and abs(learnt - self.clock.offset) > 15 * 60

    async def _learn_clock(self, response: Any, sent_offset: float) -> bool:
        """Learn the server's clock from ``response`` (a DATE_SKEW answer); True if the call may be repeated."""
        async with self._lock():
            if self.clock.offset != sent_offset:
                return True  # another request learnt it meanwhile
            before = self.clock.offset
            learnt = self.clock.learn(response.headers.get("date"))
            if learnt is None or abs(learnt - before) < 1:
                return False
            self.clock_adjustments += 1
            from ..core.redact import get_logger
            get_logger("toolkit.boknett").info("Boknett: the server's clock differs from this computer's by "
                                               "%+.0f s; the Date header is adjusted", learnt)
            return True

    def _api_error(self, response: Any, what: str) -> ToolkitError:
        """The toolkit exception of a 400 answer, with a plain hint per error code."""
        from .report import parse_errors

        try:
            codes = parse_errors(response.content)
        except ToolkitError:
            codes = []
        code = codes[0][0] if codes else ""
        if code in CLOCK_CODES:
            return self._clock_error(response.headers.get("date"))
        hint = CODE_HINTS.get(code)
        return self.http.error_for(response, what=what, hints={400: hint} if hint else None, code=code or None)

    async def _get(self, path: str, *, params: Mapping[str, Any] | None = None, what: str,
                  headers: Mapping[str, str] | None = None) -> Any:
        """GET with the ticket and ``Date``; a clock refusal learns the server's clock and repeats once."""
        for attempt in (1, 2):
            offset = self.clock.offset
            response = await self.http.request("GET", path, params=params, headers=headers, what=what,
                                               allow=(400,), hints=HINTS)
            if response.status_code != 400:
                return response
            from .report import parse_errors

            try:
                codes = [c for c, _ in parse_errors(response.content)]
            except ToolkitError:
                codes = []
            if attempt == 1 and self._clock_refused(response, codes) and await self._learn_clock(response, offset):
                continue
            raise self._api_error(response, what)
        raise AssertionError("unreachable")  # pragma: no cover

    async def download_file(self, reference: str, folder: "str | os.PathLike[str]", *,
                            name: Callable[[str], str] | None = None, default_name: str = "download.bin",
                            overwrite: bool = False) -> Download:
        """Download one object file: the ``url`` of one report row, fetched as served, into ``folder``.

        The building block of :meth:`download`, which adds what a folder of many files needs (names that
        never clash, the journal, one row per object): use that one for report rows. The request carries
        ``Accept: application/octet-stream``, the ticket and a fresh ``Date``; the body goes to a temporary
        file in ``folder`` (``.{name}.~tk…~….part``) renamed to its name only when complete. A clock refusal
        (``400 DATE_SKEW``) is probed once (the same URL, its body read), the server's clock learnt and the
        download repeated once.

        Parameters
        ----------
        reference:
            the ``url`` of a row of :meth:`objects` / :meth:`changes` (Boknett's ``REFERENCE``).
        folder:
            where the file goes (created).
        name:
            called with Boknett's file name (``Content-Disposition``, cleaned so it stays inside ``folder``) as
            soon as the headers are in, before the body is written; returns the name to save under (cleaned
            again). Default: Boknett's name.
        default_name:
            the name when Boknett gives none.
        overwrite:
            replace a file already there under that name (otherwise it is kept and the body not read).

        Returns
        -------
        :class:`toolkit.core.http.Download`: ``path``, ``filename``, ``bytes``, ``status``, ``skipped`` (an
        existing file kept), ``suggested`` (Boknett's cleaned name).

        Raises
        ------
        Gone: 410, the id expired (pull the report again). Forbidden: 403, another user's id. NotFound: 404.
        ValidationError: a clock Boknett refuses even after the toolkit adjusted its ``Date``; another 400.
        TransportError: the connection failed (after the retry policy).
        """
        what = "download the object file"
        for attempt in (1, 2):
            offset = self.clock.offset
            try:
                return await self.http.download(reference, folder, headers=DOWNLOAD_ACCEPT, overwrite=overwrite,
                                                name=name, default_name=default_name, what=what,
                                                hints=DOWNLOAD_HINTS)
            except BadRequest:
                if attempt == 2:
                    raise
            # why the 400? (the download keeps no body): probe the same URL and learn the clock if that is it
            probe = await self.http.request("GET", reference, headers=DOWNLOAD_ACCEPT, allow=(400,), stream=True,
                                            what=what, hints=DOWNLOAD_HINTS)
            try:
                if probe.status_code != 400:
                    continue
                await probe.aread()
                from .report import parse_errors

                try:
                    codes = [c for c, _ in parse_errors(probe.content)]
                except ToolkitError:
                    codes = []
                if not (self._clock_refused(probe, codes) and await self._learn_clock(probe, offset)):
                    raise self._api_error(probe, what)
            finally:
                await probe.aclose()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the API ------------------------------------------------------------------------------------------
    async def objects(self, after: Any = None, next: str | None = None, pagesize: int = 5000,
                      out: "str | os.PathLike[str] | None" = None) -> Any:
        """The report of changed objects (covers, audio samples …) since ``after`` or since a cursor.

        Parameters
        ----------
        after:
            a date, a datetime or a string (``"2026-11-01"``, ``"2026-11-01T08:00"``, ``"20261101080000"``);
            a date or naive datetime is UTC. At most 180 days ago.
        next:
            a cursor from an earlier pull (its ``attrs["next"]``) instead of ``after``.
        pagesize:
            objects per page, 1 … 5000.
        out:
            a Parquet file path: the pull streams into it page by page in constant memory (needs pyarrow,
            ``pip install toolkit[parquet]``); written under a temporary name and renamed when complete.

        Returns
        -------
        DataFrame with isbn13, ean, fssn, vareeier_kode, type, type_name, reference — every value text,
        exactly as Boknett served it. ``attrs["next"]`` is the cursor for the next pull (also when the
        pull was empty); ``attrs["kind"] == "assets"``. With ``out``: a one-row summary (path, rows,
        pages, bytes, next) instead of the rows; ``pandas.read_parquet(out)`` gives the rows.

        Raises
        ------
        ValidationError: both or neither of after/next, after older than 180 days, bad pagesize (nothing
        sent); a cursor Boknett refuses; a clock that Boknett refuses. Unauthorized: a wrong password.
        """
        from .objects import pull_objects

        return await pull_objects(self, after=after, next=next, pagesize=pagesize, out=out)

    async def changes(self, state: "str | os.PathLike[str]" = "boknett.cursor", after: Any = None,
                      pagesize: int = 5000, out: "str | os.PathLike[str] | None" = None) -> Any:
        """The incremental pull: what changed since the cursor saved in ``state``.

        Parameters
        ----------
        state:
            the file holding the cursor (created on the first pull). It is written — atomically — only
            after every page arrived; a failure part-way leaves it unchanged, so the next run gets exactly
            what it missed.
        after:
            where to start when ``state`` does not exist yet (a date, datetime or string); ignored once the
            file holds a cursor.
        pagesize:
            objects per page, 1 … 5000.
        out:
            a Parquet file path to stream the rows into (as in :meth:`objects`); the cursor is saved only
            after the file is complete.

        Returns
        -------
        The DataFrame of :meth:`objects` (with ``out``: its one-row summary); ``attrs["state"]`` is the file, ``attrs["previous"]`` the cursor
        the pull started from.

        Raises
        ------
        ValidationError: no state file and no ``after``; a state file without a cursor; an expired cursor.
        """
        from .objects import pull_changes

        return await pull_changes(self, state=state, after=after, pagesize=pagesize, out=out)

    async def download(self, objs: Any, folder: "str | os.PathLike[str]", concurrency: "int | str" = "auto",
                       overwrite: bool = False, progress: bool = True,
                       journal: "str | os.PathLike[str] | None" = None) -> Any:
        """Download the files of report rows into ``folder``; one result row per object.

        Parameters
        ----------
        objs:
            the DataFrame of :meth:`objects`/:meth:`changes` (or records with isbn13, type, url).
        folder:
            where the files go (created). Files are named by Boknett's ``Content-Disposition``, cleaned so
            nothing lands outside ``folder``; a name another object of the run (or a file not written for
            this object) already holds gets the suffix ``~{isbn13}_{type}`` (the row says so).
        concurrency:
            downloads in flight at once: ``"auto"`` (the default: as many as Boknett takes, see
            :mod:`toolkit.core.limits`) or a whole number from 1 to 64.
        overwrite:
            fetch every object again, also those the journal says are already on disk.
        progress:
            show a progress bar.
        journal:
            the journal file (default ``folder/.boknett-downloads.sqlite``).

        Returns
        -------
        DataFrame isbn13, type, outcome, message, file, bytes, http_status. Outcomes: ``downloaded``,
        ``already_downloaded`` (nothing fetched: the journal's file is still there, or an interrupted run had
        saved it complete), ``forbidden`` (403), ``not_found`` (404), ``expired`` (410: pull the report
        again), ``unauthorized``, ``refused`` (a url on another host), ``duplicate`` (the same
        isbn13/type again in the input), ``invalid``, ``failed``, ``in_doubt``, ``deferred``. Each object's
        file is saved once, also when a run was killed part-way (docs/boknett.md).

        Raises
        ------
        ValidationError: bad ``concurrency`` or ``objs``. Unauthorized: a wrong password (before any file).
        """
        from .downloads import download_objects

        return await download_objects(self, objs, folder, concurrency=concurrency, overwrite=overwrite,
                                      progress=progress, journal=journal)

    async def check(self) -> Any:
        """A live contract check: a few read-only calls (the login, one small page of the object report) and
        one row per assumption (``service, check, assumption, answered, verdict, what_to_do``; verdict ``ok``,
        ``differs`` or ``failed``). Nothing is written or downloaded. See :mod:`toolkit.boknett.check`."""
        from ..core.check import check_client

        return await check_client(self)


Client = sync_class(AsyncClient, "Client", module=__name__,
                    doc="Boknett client (sync): objects(), changes(), download(); see toolkit.boknett.connect.")

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
