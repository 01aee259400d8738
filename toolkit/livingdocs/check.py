"""What the toolkit assumes of Livingdocs, asked of the service: ``lv.check()``, ``toolkit.check("livingdocs")``,
``toolkit livingdocs check``. Read-only: one media library lookup (the token and its read scope, the list's
envelope for the API version, its paging headers, the clock), the status of a job that does not exist (the
write scope: ``404`` is the answer assumed), and — when ``external_id`` (and ``system_name``) name an image in
the library — that entry's fields. Without them the lookup asks for an id no image has, and the entry's
fields are not compared (the summary says so). The machinery and the columns are :mod:`toolkit.core.check`'s.

An entry's fields come from the client's :data:`~toolkit.livingdocs.client.MEDIA_SCHEMA` at the names
``lv.media()`` reads them from; the shapes it reads too (a media id as a number, sizes as text) are a
difference it copes with (docs/livingdocs.md, "Shapes").
"""

from __future__ import annotations

from typing import Any, Mapping

from ..core.check import Checker, Expect, expects_of, records_in
from .client import MEDIA_SCHEMA, READ_SCOPE, WRITE_SCOPE

__all__ = ["check", "ENTRY_FIELDS", "PROBE", "RESULTS_FROM"]

SERVICE = "livingdocs"
#: the id and system name a lookup without ``external_id`` asks for (no image has them)
PROBE = "toolkit-contract-check"
#: the first dated API version whose lists are ``{"results": [...]}`` (before: a bare array)
RESULTS_FROM = "2026-01"
#: the envelopes ``lv.media()`` reads a list from (besides a bare array)
READ_ENVELOPES = ("results", "mediaLibraryEntries", "entries", "items")
#: a media library entry's columns of :data:`MEDIA_SCHEMA` → where the lookup's entry holds them
ENTRY_WIRE = {"media_id": "id", "system_name": "systemName", "external_id": "externalId", "version": "version",
              "media_type": "mediaType", "title": "title", "url": "asset.url", "mime_type": "asset.mimeType",
              "width": "asset.width", "height": "asset.height", "bytes": "asset.size", "created": "createdAt",
              "modified": "updatedAt", "metadata": "metadata"}
ENTRY_FIELDS: dict[str, Expect] = expects_of({c: MEDIA_SCHEMA[c] for c in ENTRY_WIRE}, ENTRY_WIRE,
                                             kinds={"object": "object"},
                                             also={"media_id": "integer", "Int64": "integer-text|number"},
                                             optional=("title",))

TOKEN = (f"the project token (Authorization: Bearer) is accepted and has {READ_SCOPE}: GET …/mediaLibrary?"
         "externalId=…&systemName=… answers 200; a project token has no lifetime the toolkit renews")
WRITE = (f"the token has {WRITE_SCOPE} (imports and job status need it): GET …/import/images/status?id= of a job "
         "that does not exist answers 404")
PAGING = "The media library lookup"


def envelope_of(api_version: str) -> str:
    """The list envelope of an API version: a bare ``"array"`` up to 2025-11 (and ``v1``, ``beta``), the
    key ``"results"`` from :data:`RESULTS_FROM`."""
    dated = api_version[:1].isdigit()
    return "results" if dated and api_version >= RESULTS_FROM else "array"


async def check(client: Any, system_name: str | None = None, external_id: str | None = None) -> Any:
    """The rows of Livingdocs' contract check (see the module docstring) as a frame."""
    c = Checker(SERVICE)
    return await c.run(_rows(c, client, system_name, external_id))


async def _rows(c: Checker, client: Any, system_name: str | None = None, external_id: str | None = None) -> None:
    params = {"externalId": external_id or PROBE, "systemName": system_name or PROBE}
    lookup = await c.call("token", TOKEN, client.http, client.path("mediaLibrary"), params=params, allow=(403,),
                          what="look up media library entries")
    if lookup is not None and lookup.status == 200:
        c.add("token", TOKEN, f"HTTP 200: the token is accepted with {READ_SCOPE}", "ok")
    elif lookup is not None:
        c.add("token", TOKEN, f"HTTP {lookup.status}: the token lacks {READ_SCOPE}", "differs",
              f"Give the API client {READ_SCOPE} in the Livingdocs editor (Project Admin → Api Clients): "
              "lv.media() and the import's look-ups after a lost answer need it.")
    await _write_scope(c, client)
    listing = (f"GET …/api/{client.api_version}/mediaLibrary answers "
               + ("a bare JSON array" if envelope_of(client.api_version) == "array" else '{"results": [...]}')
               + f" for API version {client.api_version}")
    if lookup is None or lookup.status != 200:
        for name, text in (("media list", listing), ("paging", f"{PAGING} comes whole")):
            c.skipped(name, text, "the media library could not be read")
        c.clock(lookup)
        return
    _listing(c, client, lookup.json(), listing, external_id)
    c.unpaged("paging", PAGING, lookup, lookup.json())
    c.clock(lookup)


def _listing(c: Checker, client: Any, body: Any, listing: str, external_id: str | None) -> None:
    expected = envelope_of(client.api_version)
    copes = isinstance(body, list) or (isinstance(body, Mapping) and
                                       any(isinstance(body.get(k), list) for k in READ_ENVELOPES))
    c.envelope("media list", listing, body, expected, copes=copes,
               consequence="lv.media() reads this answer as no entry: every image looks missing, and an import "
                           "whose answer was lost is sent again instead of being found. ")
    entries = [e for e in records_in(body, READ_ENVELOPES) if "id" in e or "asset" in e]
    if entries:
        c.fields("entry fields", "a media library entry", entries[:5], ENTRY_FIELDS, noun="entry",
                 consequence="lv.media() and the import's results will lack these columns or hold them empty.")
    elif external_id:
        c.note("the library holds no image with the external id asked for: its fields were not compared")
    else:
        c.note("no external_id given: a media library entry's fields were not compared (give external_id= and "
               "system_name= of an imported image)")


async def _write_scope(c: Checker, client: Any) -> None:
    answer = await c.call("write scope", WRITE, client.http, client.path("import/images/status"),
                          params={"id": PROBE}, allow=(403, 404), what="read the status of an import job")
    if answer is None:
        return
    if answer.status == 403:
        c.add("write scope", WRITE, f"HTTP 403: the token lacks {WRITE_SCOPE}", "differs",
              f"Give the API client {WRITE_SCOPE} in the Livingdocs editor (Project Admin → Api Clients), or "
              "use a token that has it: lv.import_images() is refused without it.")
    else:
        c.add("write scope", WRITE, f"HTTP {answer.status}: the token is accepted with {WRITE_SCOPE}", "ok")
