"""What the toolkit assumes of Boknett, asked of the service: ``bk.check()``, ``toolkit.check("boknett")``,
``toolkit boknett check``. Read-only: the login, one small page of the object report (two objects changed
in the last 30 days: its XML, the objects' elements, the paging headers ``Next`` and ``Link``, the server's
``Date``). No file is downloaded. The machinery and the columns are :mod:`toolkit.core.check`'s.

The objects' elements come from the report parser's own table (:data:`toolkit.boknett.report.FIELDS`,
element → column of :data:`~toolkit.boknett.report.OBJECT_SCHEMA`); the ticket's lifetime and renewal from
the client's login flow; the clock's tolerance is Boknett's 15 minutes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from ..core.check import Answer, Checker, Expect, expects_of, xml_records
from .objects import format_after
from .report import FIELDS, OBJECT_SCHEMA

__all__ = ["check", "OBJECT_FIELDS", "SAMPLE_DAYS", "SAMPLE_SIZE"]

SERVICE = "boknett"
SAMPLE_DAYS = 30
SAMPLE_SIZE = 2
#: an ``<OBJECT>`` of the report: its elements, as the parser reads them into the columns of OBJECT_SCHEMA
OBJECT_FIELDS: dict[str, Expect] = expects_of({column: OBJECT_SCHEMA[column] for column in FIELDS.values()},
                                              {column: element for element, column in FIELDS.items()})
CLOCK_LIMIT = 15 * 60

LOGIN = ("POST {path} (a form: username, password) answers 201 with the ticket in the Boknett-TGT header; a ticket "
         "lives {lifetime} (the answer does not say: the toolkit renews it after {renew})")
REPORT = (f"GET /metadata/export/object?after=…&pagesize={SAMPLE_SIZE} answers XML: <OBJECTS> holding one <OBJECT> "
          f"per change (asked: the changes of the last {SAMPLE_DAYS} days, {SAMPLE_SIZE} objects)")
PAGING = ("every page carries its cursor in a Next header, and Link: <…>; rel=\"next\" while more pages follow "
          "(bk.objects() and changes() page by them; attrs['next'] is the last page's Next)")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} hours" if seconds >= 3600 else f"{seconds / 60:g} minutes"


async def check(client: Any) -> Any:
    """The rows of Boknett's contract check (see the module docstring) as a frame."""
    c = Checker(SERVICE)
    return await c.run(_rows(c, client))


async def _rows(c: Checker, client: Any) -> None:
    auth = client.auth
    path = urlsplit(auth.login_url).path or auth.login_url
    login = LOGIN.format(path=path, lifetime=_hours(auth.lifetime), renew=_hours(auth.renew_after))
    await c.token("login", login, client, path, login="Boknett-TGT")
    if c.rows[-1].verdict == "failed":
        for name, text in (("report page", REPORT), ("object fields", "each <OBJECT> has its elements"),
                           ("paging", PAGING)):
            c.skipped(name, text, "the login failed")
        c.clock(None)
        return
    since = datetime.fromtimestamp(client.server_now() - SAMPLE_DAYS * 86400, timezone.utc)
    query = {"after": format_after(since, now=client.server_now()), "pagesize": SAMPLE_SIZE}
    page = await c.attempt("report page", REPORT, lambda: client.report_page(query))
    if page is None:
        for name, text in (("object fields", "each <OBJECT> has its elements"), ("paging", PAGING)):
            c.skipped(name, text, "the report could not be read")
        c.clock(None)
        return
    objects = _report(c, page)
    if objects:
        c.fields("object fields", "each <OBJECT>", objects, OBJECT_FIELDS, noun="object",
                 consequence="bk.objects() gives these columns empty, and bk.download() cannot fetch objects "
                             "without a REFERENCE, TYPE and ISBN13 (or EAN).")
    else:
        c.note(f"no object changed in the last {SAMPLE_DAYS} days: the objects' elements were not compared")
    _paging(c, page)
    c.clock(page, tolerance=CLOCK_LIMIT,
            relies="Boknett refuses a request whose Date is further off; the toolkit then learns Boknett's clock "
                   "from its answer's Date and sends again")


def _report(c: Checker, page: Answer) -> list[dict[str, Any]]:
    root, objects = xml_records(page.content, "OBJECT")
    if root == "OBJECTS":
        c.add("report page", REPORT, f"HTTP {page.status}, XML <OBJECTS> with {len(objects)} <OBJECT>", "ok")
    else:
        said = "not XML (or XML declaring entities or a DTD)" if root is None else f"XML whose root is <{root[:40]}>"
        c.add("report page", REPORT, f"HTTP {page.status}, {said}", "differs",
              "bk.objects() refuses this answer (it reads <OBJECTS> only): check the base URL. "
              "Tell the toolkit's maintainers what this row says.")
    return objects


def _paging(c: Checker, page: Answer) -> None:
    cursor, more = page.header("next") is not None, "next" in page.links
    said = f"Next header: {'present' if cursor else 'none'}; Link rel=\"next\": " + \
        ("present (more pages follow)" if more else "none (the last page)")
    if cursor:
        c.add("paging", PAGING, said, "ok")
    elif more:
        c.add("paging", PAGING, said, "differs",
              "The toolkit takes the cursor from the Link while more pages follow, but the last page of a pull has "
              "no Link: bk.objects() and changes() stop there with 'a page of the report without a Next cursor' "
              "(and changes() cannot save where it stopped). Tell the toolkit's maintainers what this row says.")
    else:
        c.add("paging", PAGING, said, "differs",
              "Without Next the toolkit cannot continue a pull or save where it stopped (attrs['next'] is empty). "
              "Tell the toolkit's maintainers what this row says.")
