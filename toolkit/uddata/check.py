"""What the toolkit assumes of Uddata+, asked of the service: ``ud.check()``, ``toolkit.check("uddata")``,
``toolkit uddata check``. Read-only: the token, the roster, the photo of the roster's first student (its
headers only: the picture is not read), the paging headers and the clock. The machinery and the columns are
:mod:`toolkit.core.check`'s.

The roster's fields come from the client's own :data:`~toolkit.uddata.client.STUDENT_SCHEMA` (``cpr`` as
delivered, ``cpr_nr``); the photo's 404 is read by the audit's own reading of it. Shapes the client reads too
(a CPR number or an id sent as a JSON number: padded to ten digits, or read as text; a time where a date is
assumed) are a difference it copes with.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlsplit

from ..core.check import Checker, Expect, expects_of, records_in
from ..core.errors import ValidationError
from . import cpr as _cpr
from .audit import _status_of_404
from .client import STUDENT_SCHEMA

__all__ = ["check", "STUDENT_FIELDS"]

SERVICE = "uddata"

#: a student as ``GET …/elever`` sends it: the roster schema with ``cpr`` as delivered (``cpr_nr``); a number
#: for text is read too (a CPR number padded to ten digits, an id as its digits), a time for a date
STUDENT_FIELDS: dict[str, Expect] = expects_of(STUDENT_SCHEMA, {"cpr": "cpr_nr"},
                                               also={"string": "integer|number", "date": "datetime"})

TOKEN = ("POST {path} (a form: grant_type=client_credentials, client_id, client_secret) answers JSON with "
         "access_token (text), token_type Bearer and expires_in (seconds)")
ROSTER = "GET …/{version}/{institution}/elever answers a JSON array of the students (no envelope, no paging)"
PHOTO = ("GET …/billeder/{cpr} answers 200 with the photo as image/jpeg, or 404 whose message says whether the "
         "person or the photo is missing (asked for the roster's first student; the picture is not read)")
CONSEQUENCE = ("ud.students() will lack these columns or hold them empty, and the audit and the upload key "
               "students by cpr_nr: do not rely on them until the toolkit reads this shape.")


async def check(client: Any) -> Any:
    """The rows of Uddata+'s contract check (see the module docstring) as a frame."""
    c = Checker(SERVICE)
    return await c.run(_rows(c, client))


async def _rows(c: Checker, client: Any) -> None:
    path = urlsplit(client.token_url).path or client.token_url
    await c.token("token", TOKEN.format(path=path), client, path)
    roster = await c.call("roster", ROSTER, client.http, client.path("elever"), what="read the students")
    if roster is None:
        for name, text in (("student fields", "each student has the roster's fields"), ("photo", PHOTO),
                           ("paging", "the roster comes whole")):
            c.skipped(name, text, "the roster could not be read")
        c.clock(None)
        return
    body = roster.json()
    c.envelope("roster", ROSTER, body, "array", copes=isinstance(body, Mapping))
    students = records_in(body)
    if students:
        c.fields("student fields", "each student", students[:5], STUDENT_FIELDS, noun="student",
                 consequence=CONSEQUENCE)
    else:
        c.note("the roster is empty: the students' fields and the photo were not compared")
    await _photo(c, client, students)
    c.unpaged("paging", "The roster", roster, body)
    c.clock(roster)


def _first_cpr(students: list[Mapping[str, Any]]) -> str | None:
    for student in students[:20]:
        raw = student.get("cpr_nr", student.get("cpr"))
        try:
            return _cpr.normalize(_cpr.as_text(raw).strip()) if raw is not None else None
        except ValidationError:
            continue
    return None


async def _photo(c: Checker, client: Any, students: list[Mapping[str, Any]]) -> None:
    number = _first_cpr(students)
    if number is None:
        if students:
            c.note("no student of the roster has a CPR number the toolkit reads: the photo call was not tried")
        return
    answer = await c.call("photo", PHOTO, client.http, client.path(f"billeder/{number}"), allow=(404,),
                          what="fetch the photo", body=False)
    if answer is None:
        return
    kind = (answer.header("content-type") or "no Content-Type").split(";")[0].strip()
    if answer.status == 200:
        size = answer.header("content-length")
        said = f"HTTP 200, {kind}" + (f", {int(size):,} bytes" if size and size.isdigit() else "")
        c.add("photo", PHOTO, said, "ok" if kind == "image/jpeg" else "differs",
              "" if kind == "image/jpeg" else "ud.get_image() reads the picture whatever its type; the audit's "
              "width and height come from a JPEG header only. Tell the toolkit's maintainers.")
        return
    status, _note = _status_of_404(answer)
    if status in ("no_photo", "unknown_cpr"):
        missing = "the photo" if status == "no_photo" else "the person"
        c.add("photo", PHOTO, f"HTTP 404 saying {missing} is missing (the audit reads it as {status})", "ok")
    else:
        c.add("photo", PHOTO, "HTTP 404 whose message names neither the person nor the photo"
              + (" but an API version or endpoint" if status is None else ""), "differs",
              "ud.audit() reports such numbers as not_found (or error): it cannot tell a student without a "
              "photo from an unknown number. Check the API version and the base URL; tell the toolkit's "
              "maintainers the message Uddata+ gives.")
