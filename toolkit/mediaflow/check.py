"""What the toolkit assumes of Mediaflow, asked of the service: ``mf.check()``, ``toolkit.check("mediaflow")``,
``toolkit mediaflow check``. Read-only, and only calls the client makes itself: the token, one small page of
``file/latest`` (two files: the list's shape, the files' fields, the paging, the clock), one file by id
(``file/{id}``) and the folder tree (``foldertree``). The machinery and the columns are
:mod:`toolkit.core.check`'s.

The fields come from the client's own tables: a file's from :data:`~toolkit.mediaflow.assets.FILE_COLUMNS` for
the fields the client asks for (:data:`~toolkit.mediaflow.assets.DEFAULT_FIELDS`), a folder's from
:data:`~toolkit.mediaflow.assets.FOLDER_SCHEMA`. Mediaflow's own clients and the first contract disagree on
some types, and the client reads both (docs/mediaflow.md, "One dtype per column"): so both are the contract
here (:data:`KINDS`, after :mod:`toolkit.mediaflow.shapes`).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..core.check import Answer, Checker, Expect, expects_of, records_in
from .assets import DEFAULT_FIELDS, FILE_COLUMNS, FOLDER_SCHEMA, PAGE_SIZE

__all__ = ["check", "FILE_FIELDS", "FOLDER_FIELDS", "KINDS", "SAMPLE_SIZE"]

SERVICE = "mediaflow"
SAMPLE_SIZE = 2
#: column dtype → the JSON kinds Mediaflow may send it in and the client reads (toolkit.mediaflow.shapes)
KINDS = {"Int64": "integer|integer-text", "Float64": "number|number-text", "boolean": "bool|0/1|bool-text",
         "string": "text|integer|number|bool|object", "datetime": "datetime|number", "object": "any"}
#: the client also reads a whole number written as a float (300.0), and a number as a float's text
ALSO = {"Int64": "number|number-text"}


def _file_fields() -> dict[str, Expect]:
    """A file as ``file/latest`` and ``file/{id}`` send it, for the fields the client asks for: one field of
    several columns (``type``: ``type``, ``extension`` …) is an object (the type also as text), the others
    have the kinds of their column's dtype."""
    out: dict[str, Expect] = {}
    for name in DEFAULT_FIELDS:
        columns = FILE_COLUMNS[name]
        if len(columns) > 1:
            out[name] = Expect.of("object", also="text")
        else:
            out[name] = next(iter(expects_of(columns, {c: name for c in columns}, kinds=KINDS, also=ALSO).values()))
    return out


FILE_FIELDS: dict[str, Expect] = _file_fields()
#: a folder of ``foldertree`` → the columns of FOLDER_SCHEMA (``path`` is the client's own: not on the wire)
FOLDER_WIRE = {"id": "id", "name": "name", "parent": "parent", "depth": "depth", "has_children": "hasChildren",
               "archived": "archived", "type": "type", "created_by": "createdBy", "parents": "parents"}
FOLDER_FIELDS: dict[str, Expect] = {
    **expects_of({c: FOLDER_SCHEMA[c] for c in FOLDER_WIRE if c != "parents"}, FOLDER_WIRE, kinds=KINDS, also=ALSO),
    "parents": Expect.of("list")}

TOKEN = ("POST {path} (a form: grant_type=refresh_token, client_id, client_secret, refresh_token — never in the "
         "address) answers JSON with access_token (text), token_type Bearer and expires_in (seconds)")
LATEST = (f"GET file/latest?type=image&processed=true&page=1&per_page={SAMPLE_SIZE}&fields=… answers a JSON "
          "array of files (every GET of Mediaflow answers an array)")
ONE = "GET file/{id} answers a JSON array of the one file, with the fields asked for"
FOLDERS = "GET foldertree?fields=all answers a JSON array of every folder"
PAGING = (f"file/latest pages by page and per_page (up to {PAGE_SIZE} a page): a page holds at most per_page files "
          f"(asked {SAMPLE_SIZE})")
CONSEQUENCE = "mf.latest(), files(), file() and search() will hold these columns empty or wrong."


async def check(client: Any) -> Any:
    """The rows of Mediaflow's contract check (see the module docstring) as a frame."""
    c = Checker(SERVICE)
    return await c.run(_rows(c, client))


async def _rows(c: Checker, client: Any) -> None:
    await c.token("token", TOKEN.format(path="oauth2/token"), client, "oauth2/token")
    fields = ",".join(DEFAULT_FIELDS)
    params = {"type": "image", "fields": fields, "processed": "true", "page": 1, "per_page": SAMPLE_SIZE}
    latest = await c.call("latest files", LATEST, client.http, "file/latest", params=params,
                          what="list the latest files")
    files: list[Mapping[str, Any]] = []
    if latest is None:
        for name, text in (("file fields", "each file has its fields"), ("paging", PAGING), ("one file", ONE)):
            c.skipped(name, text, "file/latest could not be read")
    else:
        body = latest.json()
        c.envelope("latest files", LATEST, body, "array",
                   consequence="The toolkit reads an object as ONE file: mf.latest() gives one wrong row. ")
        files = records_in(body)
        if files:
            c.fields("file fields", "each file", files, FILE_FIELDS, fold=True, noun="file", consequence=CONSEQUENCE)
        else:
            c.note("file/latest holds no processed image: the files' fields and one file were not compared")
        _paging(c, len(files))
        await _one(c, client, files, fields)
    await _folders(c, client)
    c.clock(latest)


def _paging(c: Checker, count: int) -> None:
    said = f"{count} file{'s' if count != 1 else ''} on the page"
    if count <= SAMPLE_SIZE:
        c.add("paging", PAGING, said, "ok")
    else:
        c.add("paging", PAGING, said, "differs",
              "The toolkit stops at a page that is not full and counts pages by per_page: with a service that "
              "ignores per_page, mf.latest(limit=…) may read too much or stop early. Tell the toolkit's "
              "maintainers what this row says.")


async def _one(c: Checker, client: Any, files: list[Mapping[str, Any]], fields: str) -> None:
    ident = next((f.get("id") for f in files if isinstance(f.get("id"), (int, str)) and
                  str(f.get("id")).lstrip("-").isdigit()), None)
    if ident is None:
        if files:
            c.skipped("one file", ONE, "no file of the page has an id that is a whole number")
        return
    answer: Answer | None = await c.call("one file", ONE, client.http, f"file/{ident}", params={"fields": fields},
                                         what="read one file")
    if answer is None:
        return
    body = answer.json()
    if not isinstance(body, list):
        c.envelope("one file", ONE, body, "array", copes=isinstance(body, Mapping))
        return
    c.fields("one file", f"{ONE}; the file", records_in(body)[:1], FILE_FIELDS, fold=True, noun="file",
             consequence=CONSEQUENCE)


async def _folders(c: Checker, client: Any) -> None:
    answer = await c.call("folder tree", FOLDERS, client.http, "foldertree", params={"fields": "all"},
                          what="read the folder tree")
    if answer is None:
        return
    body = answer.json()
    if not isinstance(body, list):
        c.envelope("folder tree", FOLDERS, body, "array",
                   consequence="The toolkit reads an object as ONE folder: mf.folders() gives one wrong row. ")
        return
    c.fields("folder tree", f"{FOLDERS}; each folder", records_in(body)[:5], FOLDER_FIELDS, noun="folder",
             consequence="mf.folders() will hold these columns empty or wrong (and the paths built from them).")
