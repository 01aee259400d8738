"""Reading Mediaflow: latest files, search, folder tree, files of a folder, one file, previews.

Every successful GET of Mediaflow answers a JSON array (even for one object). Files become rows with
snake_case columns: camelCase keys are converted (``uploadedBy`` → ``uploaded_by``, ``hasPreview`` →
``has_preview``, ``smallPreview`` → ``small_preview``), the nested ``type`` object becomes ``type`` (its
``type``: image, video, document …), ``extension``, ``type_description`` and ``type_id``; ``geodata``
becomes ``latitude``/``longitude`` and ``focus`` ``focus_x``/``focus_y``. Times (``uploaded``,
``added_to_folder``) are UTC without a time zone. Fields the toolkit does not know are kept with their
name in snake_case. Four fields have the vocabulary's name (docs/vocabulary.md): ``name`` is ``title``,
``filesize`` ``bytes``, ``uploaded`` ``created`` and ``mediumPreview`` ``url``; these four columns are in every
file frame, empty when their field was not asked for. The columns depend only on the fields asked for, so an
empty result keeps them.
Every column has one dtype whatever JSON type the service gives a value in (a number or its text, ``""``
or a bool …): see :mod:`toolkit.mediaflow.shapes`.
"""

from __future__ import annotations

import asyncio
import io
import re
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from ..core.bulk import Gate, check_concurrency
from ..core.errors import ToolkitError, ValidationError
from ..core.frames import ToolkitFrame, ToolkitSeries, frame
from ..core.http import PagePaging, json_or_none
from . import shapes

#: the Mediaflow AsyncClient (duck-typed here, not imported: the client imports this module)
AsyncClient = Any

__all__ = ["FILE_COLUMNS", "FOLDER_SCHEMA", "DEFAULT_FIELDS", "PREVIEW_SIZES", "SEARCH_LANG", "snake", "file_columns",
           "file_records", "latest", "search", "folders", "files", "file", "previews", "array_of", "int_id"]

SERVICE = "mediaflow"
PAGE_SIZE = 100  # Mediaflow's largest per_page
PREVIEW_SIZES = ("thumb", "small", "medium")
#: the ``lang`` of a search (one of those Mediaflow's file selector sends: sv-SE, en-GB, fi-FI, nb-NO, de-DE)
SEARCH_LANG = "sv-SE"
#: at most this many pages of one search (a guard against a service that never gives a short page)
MAX_SEARCH_PAGES = 1000

#: Mediaflow field (lower-case, as ``fields=`` names it) → the columns it becomes, with their dtypes
FILE_COLUMNS: dict[str, dict[str, str]] = {
    "id": {"id": "Int64"},
    "name": {"title": "string"},
    "filename": {"filename": "string"},
    "type": {"type": "string", "extension": "string", "type_description": "string", "type_id": "Int64"},
    "filesize": {"bytes": "Int64"},
    "checksum": {"checksum": "string"},
    "width": {"width": "Int64"},
    "height": {"height": "Int64"},
    "length": {"length": "Float64"},
    "dpi": {"dpi": "Int64"},
    "rating": {"rating": "Int64"},
    "nrdownloads": {"nr_downloads": "Int64"},
    "uploaded": {"created": "datetime"},
    "mark": {"mark": "Int64"},
    "uploadedby": {"uploaded_by": "string"},
    "addedtofolder": {"added_to_folder": "datetime"},
    "photographer": {"photographer": "string"},
    "description": {"description": "string"},
    "instructions": {"instructions": "string"},
    "processed": {"processed": "boolean"},
    "haspreview": {"has_preview": "boolean"},
    "hasversions": {"has_versions": "boolean"},
    "hashistory": {"has_history": "boolean"},
    "locked": {"locked": "boolean"},
    "comment": {"comment": "string"},
    "gdprstatus": {"gdpr_status": "string"},
    "gdprtype": {"gdpr_type": "string"},
    "mediaid": {"media_id": "string"},
    "alpha": {"alpha": "boolean"},
    "alttext": {"alttext": "string"},
    "folderid": {"folder_id": "Int64"},
    "geodata": {"latitude": "Float64", "longitude": "Float64"},
    "focus": {"focus_x": "Float64", "focus_y": "Float64"},
    "icon": {"icon": "string"},
    "thumbpreview": {"thumb_preview": "string"},
    "smallpreview": {"small_preview": "string"},
    "mediumpreview": {"url": "string"},
    "previews": {"previews": "object"},
}

#: what ``latest``/``files``/``file`` ask for when ``fields`` is not given
DEFAULT_FIELDS = ("id", "name", "filename", "type", "filesize", "width", "height", "uploaded", "uploadedby",
                  "processed", "haspreview", "thumbpreview", "smallpreview", "mediumpreview")

#: the vocabulary columns (docs/vocabulary.md) of every file frame, each in place of Mediaflow's field:
#: bytes ← filesize, title ← name, created ← uploaded, url ← mediumPreview (a file's JSON has no original
#: or download URL; the medium preview is the URL a reader fetches). Empty when that field was not asked for.
VOCABULARY_COLUMNS = {"bytes": "Int64", "title": "string", "url": "string", "created": "datetime"}
#: Mediaflow's field (snake_case) → the vocabulary column it becomes
RAW_NAMES = {"filesize": "bytes", "name": "title", "medium_preview": "url", "uploaded": "created"}

FOLDER_SCHEMA = {"id": "Int64", "name": "string", "parent": "Int64", "depth": "Int64", "has_children": "boolean",
                 "archived": "boolean", "type": "string", "path": "string", "created_by": "string", "parents": "object"}

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """``uploadedBy`` → ``uploaded_by``; ``hasPreview`` → ``has_preview``."""
    return _CAMEL.sub(r"_\1", str(name)).lower()


def _field_list(fields: "str | Sequence[str] | None") -> list[str] | None:
    if fields is None:
        return None
    names = fields.split(",") if isinstance(fields, str) else [str(f) for f in fields]
    names = [n.strip().lower().replace("_", "") for n in names if str(n).strip()]
    if not names:
        raise ValidationError("fields is empty", service=SERVICE,
                              hint='Give Mediaflow field names, e.g. fields="id,name,uploadedby", or "all".')
    unknown = [n for n in names if n not in FILE_COLUMNS and n != "all"]
    if unknown:
        import difflib

        near = {n: difflib.get_close_matches(n, list(FILE_COLUMNS), n=1) for n in unknown}
        said = ", ".join(f"{n!r}" + (f" (did you mean {near[n][0]!r}?)" if near[n] else "") for n in unknown)
        raise ValidationError(f"unknown field{'s' if len(unknown) > 1 else ''}: {said}", service=SERVICE,
                              hint="Give fields Mediaflow has: " + ", ".join(FILE_COLUMNS) + ', or "all".')
    return names


def _fields_param(names: list[str] | None) -> str:
    return ",".join(names if names is not None else DEFAULT_FIELDS)


def file_columns(names: list[str] | None) -> dict[str, str]:
    """The schema of a file frame for the fields asked for (``id`` always first)."""
    if names is None:
        wanted = list(DEFAULT_FIELDS)
    elif any(n in ("all", "any") for n in names):
        wanted = list(FILE_COLUMNS)
    else:
        wanted = ["id", *[n for n in names if n != "id"]]
    schema: dict[str, str] = {}
    for n in wanted:
        schema.update(FILE_COLUMNS.get(n, {snake(n): "object"}))
    schema.update({c: d for c, d in VOCABULARY_COLUMNS.items() if c not in schema})
    return schema


def file_records(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Mediaflow file objects → flat snake_case records (see the module docstring)."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        rec: dict[str, Any] = {}
        for key, value in item.items():
            low = str(key).lower()
            if low == "type" and isinstance(value, dict):
                rec["type"] = value.get("type")
                rec["extension"] = value.get("extension")
                rec["type_description"] = value.get("description")
                rec["type_id"] = value.get("id")
            elif low == "geodata" and isinstance(value, dict):
                rec["latitude"], rec["longitude"] = value.get("latitude"), value.get("longitude")
            elif low == "focus" and isinstance(value, dict):
                rec["focus_x"], rec["focus_y"] = value.get("x"), value.get("y")
            elif low in ("uploaded", "addedtofolder"):
                rec[snake(key)] = value or None  # a time; frame() makes it naive UTC
            elif low in ("thumbpreview", "smallpreview", "mediumpreview", "icon"):
                rec[snake(key)] = value or None  # "" = no preview
            elif low == "previews":
                rec["previews"] = shapes.previews(value)
            else:
                rec[snake(key)] = value
        for raw, column in RAW_NAMES.items():  # one column per meaning: the vocabulary's name only
            if raw in rec:
                rec[column] = rec.pop(raw)
        out.append(rec)
    return out


def _file_frame(items: Sequence[Any], names: list[str] | None) -> ToolkitFrame:
    schema = file_columns(names)
    return frame(shapes.records(file_records(items), schema), schema, kind="assets", service=SERVICE)


def array_of(response: Any) -> list[Any]:
    """The JSON array of a Mediaflow answer (one object counts as an array of one). An answer that is not
    JSON, or JSON that is neither, is a :class:`~toolkit.core.errors.ToolkitError` saying so — never an
    empty list, so a caller looking for something (the upload's check for a stored file) never takes a
    broken answer for "not there"."""
    body = json_or_none(response)
    if isinstance(body, dict):  # the documented root is an array; accept one object too
        body = [body]
    if not isinstance(body, list):
        raise ToolkitError("the answer was not the JSON array Mediaflow sends", service=SERVICE,
                           hint="Check the base URL: it must end in the API version, e.g. …/1.")
    return body


def int_id(value: Any, what: str) -> int:
    """``value`` as a Mediaflow id (a whole number, may be negative); else a ValidationError naming ``what``."""
    where = "mf.folders()" if "folder" in what else "the id column of mf.latest(), mf.files() or mf.search()"
    hint = f"Give the {what} as a whole number, e.g. 12 or -14 (see {where})."
    if isinstance(value, bool) or value is None:
        raise ValidationError(f"{what} must be a whole number, not {value!r}", service=SERVICE, hint=hint)
    try:
        number = int(value)
        whole = number == value if not isinstance(value, str) else str(number) == value.strip().lstrip("+")
    except (TypeError, ValueError, ArithmeticError):
        whole = False
    if not whole:  # 13.7, Decimal("13.7"), "13.7", "abc": never rounded to another folder
        raise ValidationError(f"{what} must be a whole number (ids may be negative), not {value!r}",
                              service=SERVICE, hint=hint)
    return number


def _type_param(type: str | None) -> str:
    return "any" if type in (None, "", "all") else str(type).lower()


def _check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be a whole number of at least 1, not {limit!r}", service=SERVICE,
                              hint="Give limit=100, for example.")
    return limit


async def latest(client: "AsyncClient", type: str | None = "image", processed: bool = True, limit: int = 100,
                 fields: "str | Sequence[str] | None" = None) -> ToolkitFrame:
    _check_limit(limit)
    names = _field_list(fields)
    params: dict[str, Any] = {"type": _type_param(type), "fields": _fields_param(names)}
    if processed:
        params["processed"] = "true"
    paging = PagePaging(count=lambda r: len(array_of(r)), size=PAGE_SIZE, limit=limit)
    items: list[Any] = []
    async for response in client.http.pages("file/latest", paging, params=params, what="list the latest files"):
        items.extend(array_of(response))
        if len(items) >= limit:
            break
    return _file_frame(items[:limit], names)


def _search_fields(names: list[str] | None, *needed: str) -> str:
    """The ``fields=`` of a search: those asked for (or the default) and the ones a filter needs."""
    asked = list(names) if names is not None else list(DEFAULT_FIELDS)
    if any(n in ("all", "any") for n in asked):
        return ",".join(asked)
    return ",".join([*asked, *(n for n in needed if n not in asked)])


def _type_of(item: dict[str, Any]) -> str | None:
    kind = item.get("type")
    kind = kind.get("type") if isinstance(kind, dict) else kind
    return str(kind).lower() if kind is not None else None


async def _search_pages(client: "AsyncClient", body: dict[str, Any], fields: str, keep: Any, limit: int,
                        per_page: int) -> list[dict[str, Any]]:
    """The hits that ``keep`` accepts, page after page (``page``/``per_page`` as ``file/latest``), until
    ``limit``, a short page, a page longer than asked (the service ignored the paging and gave every hit:
    the file selector sends none) or a page of hits already seen (it ignored ``page``)."""
    found: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for page in range(1, MAX_SEARCH_PAGES + 1):
        response = await client.http.request("POST", "search/file", json=body, idempotent=True,
                                             params={"fields": fields, "page": page, "per_page": per_page},
                                             what="search Mediaflow")
        batch = [item for item in array_of(response) if isinstance(item, dict)]
        fresh = [item for item in batch if item.get("id") not in seen]
        seen.update(item.get("id") for item in batch)
        found.extend(item for item in fresh if keep(item))
        if len(found) >= limit or len(batch) != per_page or not fresh:
            break
    return found


async def search(client: "AsyncClient", text: Any, type: str | None = None, folder_id: Any = None,
                 limit: int = 100, fields: "str | Sequence[str] | None" = None) -> ToolkitFrame:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"search() needs the text to search for, not {text!r}", service=SERVICE,
                              hint='Give words, e.g. mf.search("sommar stockholm").')
    _check_limit(limit)
    names = _field_list(fields)
    fid = None if folder_id is None else int_id(folder_id, "folder id")
    kind = None if type in (None, "", "any", "all") else str(type).lower()
    needed = [n for n, on in (("type", kind is not None), ("folderid", fid is not None)) if on]

    def keep(item: dict[str, Any]) -> bool:  # the file selector filters its hits the same way, after the search
        return (kind is None or _type_of(item) == kind) and (fid is None or shapes.as_int(item.get("folderId")) == fid)

    body = {"searchTerm": text.strip(), "lang": SEARCH_LANG, "ai": False}
    per_page = PAGE_SIZE if needed else min(PAGE_SIZE, limit)
    items = await _search_pages(client, body, _search_fields(names, *needed), keep, limit, per_page)
    return _file_frame(items[:limit], names)


def _folder_path(f: dict[str, Any], by_id: dict[Any, dict[str, Any]]) -> str:
    """The names from the top, joined by " / ": up the parents of the listing, or — for a parent the listing
    does not hold — from the folder's own ``parents`` objects (the crate's shape), which name them all."""
    above = [p for p in (f.get("parents") or []) if isinstance(p, dict) and p.get("name") is not None]
    names, seen, node = [], set(), f
    while node is not None and node.get("id") not in seen:
        seen.add(node.get("id"))
        names.append(str(node.get("name", "")))
        parent = shapes.as_int(node.get("parent"))
        if parent in (None, 0):
            break
        node = by_id.get(parent)
        if node is None and above:
            return " / ".join([str(p["name"]) for p in above] + [str(f.get("name", ""))])
    return " / ".join(reversed(names))


async def folders(client: "AsyncClient") -> ToolkitFrame:
    response = await client.http.request("GET", "foldertree", params={"fields": "all"}, what="read the folder tree")
    items = [f for f in array_of(response) if isinstance(f, dict)]
    by_id = {shapes.as_int(f.get("id")): f for f in items}
    records = [{"id": f.get("id"), "name": f.get("name"),
                "parent": 0 if f.get("parent") is None else f.get("parent"),  # null = top level, as 0 is
                "depth": f.get("depth"), "has_children": f.get("hasChildren"), "archived": f.get("archived"),
                "type": f.get("type"), "path": _folder_path(f, by_id), "created_by": f.get("createdBy"),
                "parents": shapes.folder_ids(f.get("parents"))} for f in items]
    return frame(shapes.records(records, FOLDER_SCHEMA), FOLDER_SCHEMA, kind="records", service=SERVICE)


async def files(client: "AsyncClient", folder_id: Any, type: str | None = "any", processed: bool = False,
                fields: "str | Sequence[str] | None" = None) -> ToolkitFrame:
    fid = int_id(folder_id, "folder id")
    names = _field_list(fields)
    params: dict[str, Any] = {"type": _type_param(type), "fields": _fields_param(names)}
    if processed:
        params["processed"] = "true"
    response = await client.http.request("GET", f"folder/{fid}/files", params=params,
                                         what=f"list the files of folder {fid}")
    return _file_frame(array_of(response), names)


async def file(client: "AsyncClient", file_id: Any, fields: "str | Sequence[str] | None" = None) -> ToolkitSeries:
    fid = int_id(file_id, "file id")
    names = _field_list(fields)
    response = await client.http.request("GET", f"file/{fid}", params={"fields": _fields_param(names)},
                                         what=f"read file {fid}")
    df = _file_frame(array_of(response)[:1], names)
    if not len(df):
        from ..core.errors import NotFound

        raise NotFound(f"Mediaflow answered no file for id {fid}", service=SERVICE, status=404,
                       hint="Check the file id (ids may be negative).")
    row = df.iloc[0]
    row.attrs.update(df.attrs)
    return row


def _decode(data: bytes) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data), formats=["JPEG", "PNG", "GIF", "WEBP"])
        img.load()
        return img
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


async def previews(client: "AsyncClient", files_: Any, size: str = "small",
                   concurrency: "int | str" = "auto") -> list[Any]:
    if size not in PREVIEW_SIZES:
        raise ValidationError(f"size must be one of {', '.join(PREVIEW_SIZES)}, not {size!r}", service=SERVICE)
    concurrency = check_concurrency(concurrency, SERVICE)
    column = "url" if size == "medium" else f"{size}_preview"  # the medium preview is a file's url
    if files_ is None or isinstance(files_, (bool, float)) or (isinstance(files_, str) and not files_.strip()):
        raise ValidationError(f"previews() needs files, not {files_!r}", service=SERVICE,
                              hint="Give a frame of files (mf.latest(), mf.files(folder_id)), a row of one, or "
                                   "file ids.")
    if isinstance(files_, pd.DataFrame):
        ids = list(files_["id"]) if "id" in files_.columns else [None] * len(files_)
        urls = list(files_[column]) if column in files_.columns else [None] * len(files_)
        flags = list(files_["has_preview"]) if "has_preview" in files_.columns else [None] * len(files_)
        known = column in files_.columns
    elif isinstance(files_, pd.Series) and "id" in files_.index:
        ids, urls = [files_["id"]], [files_.get(column)]
        flags, known = [files_.get("has_preview")], column in files_.index
    else:
        ids = list(files_) if isinstance(files_, (list, tuple, pd.Series, pd.Index)) else [files_]
        urls, flags, known = [None] * len(ids), [None] * len(ids), False
    semaphore = Gate(concurrency)

    async def one(file_id: Any, url: Any, flag: Any) -> Any:
        async with semaphore:
            if not known and file_id is not None and not pd.isna(file_id):
                info = await file(client, file_id, fields=[f"{size}preview", "haspreview"])
                url, flag = info.get(column), info.get("has_preview")
            if flag is False or not isinstance(url, str) or not url:
                return None
            # a public URL, possibly on another host: never send the access token with it
            response = await client.http.request("GET", url, authenticate=False, allow=(404, 410),
                                                     headers={"Accept": "image/*"}, what="fetch a preview")
            if response.status_code != 200:
                return None
            return _decode(response.content)

    return list(await asyncio.gather(*(one(i, u, f) for i, u, f in zip(ids, urls, flags))))
