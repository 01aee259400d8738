"""Download links and download formats of Mediaflow files.

``await client.download_urls(files, format=0)`` asks Mediaflow for one download link per file and gives one
row per file, in the order given (and, for a DataFrame, with its index, so
``images["download_url"] = mf.download_urls(images)["download_url"]`` lines up):

    id, format_id, format, filetype, expires_in, download_url, watermark, is_preview, download_warning,
    http_status, message

**The path.** Mediaflow's own file selector asks ``GET file/{id}/downloads/{formatId}`` (singular ``file``:
``fileselector-web``, ``src/js/fileselector.js`` and ``src/js/modules/cropperview.js``); the Rust crate
``mediaflow`` and the contract as first researched ask ``files/{id}/downloads/{formatId}`` (``src/api.rs``).
The vendor's client wins: the link is asked for in its form first; a 404 there is asked again in the other
form, and once a form has answered a link it is the one used for the rest of the connection (a 404 is then a
file or format Mediaflow does not have — a row, not an exception; one request per file).

**Formats.** ``format`` is a Mediaflow format id: 0 (or ``"original"``) is the original file (the file
selector's own "Original" entry), another id one of :func:`formats` (``GET formats``, the file selector's form,
else ``GET format``, the crate's): ``id, name, suffix, filetype, width, height, keep_ratio`` (-1 for a width
or height keeps the original's). A format Mediaflow does not offer for a file is a 404 row.

**Warnings.** ``downloadWarning`` is a bool in the crate (``FileDownloadFull``) and was ``""`` in the first
contract; the ``download_warning`` column is ``boolean`` either way, and a true warning is said in plain words
in ``message`` (never the text ``True``). A file the integration may not download (403) is a row with
Mediaflow's message.

A download link is **signed** (anyone holding it can fetch the file until it expires), so it is a secret
here: every link is registered with :func:`toolkit.core.redact.register_secret` (logs, messages and
errors mask it) and the ``download_url`` column has the ``"redacted"`` dtype — shown masked in the notebook,
in ``print(df)`` and in a value's ``repr``, while code gets the real link: ``df["download_url"].tolist()``,
``str(v)``, ``f"{v}"``, ``row.download_url`` to hand to another service (Livingdocs fetches them) or to
an HTTP request.

Notice: a link may differ each time it is asked for (it expires: ``expires_in`` seconds). Livingdocs
recognises an unchanged image by its id **and** its URL, so importing again with new links updates the
images instead of skipping them; a stable source (the preview links) re-imports as ``skipped``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd

from ..core.bulk import Gate, check_concurrency
from ..core.errors import ValidationError
from ..core.frames import ToolkitFrame, frame
from ..core.http import json_or_none
from ..core.redact import register_secret
from . import shapes
from .assets import array_of, int_id

#: the Mediaflow AsyncClient (duck-typed here, not imported: the client imports this module)
AsyncClient = Any

__all__ = ["DOWNLOAD_SCHEMA", "FORMAT_SCHEMA", "FORMATS", "PATH_FORMS", "download_urls", "formats", "file_ids",
           "as_file_id"]

SERVICE = "mediaflow"
#: format name → Mediaflow format id
FORMATS = {"original": 0}
DOWNLOAD_SCHEMA = {"id": "Int64", "format_id": "Int64", "format": "string", "filetype": "string",
                   "expires_in": "Float64", "download_url": "redacted", "watermark": "boolean", "is_preview": "boolean",
                   "download_warning": "boolean", "http_status": "Int64", "message": "string"}
FIELDS = "id,format,watermark,ispreview,filetype,expiresin,downloadurl,downloadwarning"
#: the two paths of a download link, the vendor's file selector's first
PATH_FORMS = ("file/{id}/downloads/{format}", "files/{id}/downloads/{format}")
#: ``GET formats`` (the file selector) or ``GET format`` (the crate)
FORMAT_PATHS = ("formats", "format")
FORMAT_SCHEMA = {"id": "Int64", "name": "string", "suffix": "string", "filetype": "string", "width": "Int64",
                 "height": "Int64", "keep_ratio": "boolean"}
FORMAT_FIELDS = "id,name,suffix,filetype,width,height,keepratio"
WARNING = ("Mediaflow warns about using this file (downloadWarning): check its license and rights before "
           "publishing it")


def _format_id(format: Any) -> int:
    if isinstance(format, str) and format.strip().lower() in FORMATS:
        return FORMATS[format.strip().lower()]
    if isinstance(format, int) and not isinstance(format, bool):
        return int(format)
    if isinstance(format, str) and format.strip().lstrip("-").isdigit():
        return int(format.strip())
    raise ValidationError(f"format must be a Mediaflow format id (a whole number; 0 or \"original\" is the "
                          f"original file), not {format!r}", service=SERVICE,
                          hint="Use format=0 for the original file; mf.formats() lists the other formats.")


def file_ids(files: Any) -> tuple[list[Any], pd.Index | None]:
    """The file ids of ``files`` and, for a DataFrame/Series of files, the index to give the rows."""
    if isinstance(files, pd.DataFrame):
        if "id" not in files.columns:
            raise ValidationError("the table has no id column", service=SERVICE,
                                  hint="Give a table of mf.files()/mf.latest(), or a list of file ids.")
        return list(files["id"]), files.index
    if isinstance(files, pd.Series) and "id" in files.index and not pd.api.types.is_integer_dtype(files.dtype):
        return [files["id"]], None  # one file (a row of mf.file())
    if isinstance(files, (int, str)) and not isinstance(files, bool):
        return [files], None
    if isinstance(files, pd.Series):
        return list(files), files.index
    return list(files), None


def as_file_id(value: Any) -> int:
    """A file id (a whole number, may be negative; never 1.5 taken as file 1), else a ValidationError."""
    if value is pd.NA or (isinstance(value, float) and value != value):
        value = None
    return int_id(value.strip() if isinstance(value, str) else value, "file id")


def _warning(value: Any) -> tuple[bool | None, str | None]:
    """``downloadWarning`` as (flag, plain message): a bool (the crate), ``""`` (the first contract: none), or
    a text of Mediaflow's own, which is then the message."""
    flag = shapes.as_bool(value)
    if flag is not None or value is None or value == "":
        return bool(flag), (WARNING if flag else None)
    return True, f"Mediaflow warns: {value}"


def _row(fid: int, format_id: int, response: Any) -> dict[str, Any]:
    """The row of one file from Mediaflow's answer (a link, a 404 or a 403)."""
    row: dict[str, Any] = {"id": fid, "format_id": format_id, "http_status": response.status_code}
    body = json_or_none(response)
    if response.status_code in (403, 404):
        said = body.get("error") if isinstance(body, dict) else None
        what = ("the integration may not download this file: ask the Mediaflow administrator"
                if response.status_code == 403 else "check the file id and the format (mf.formats())")
        row["message"] = f"Mediaflow: {said or 'no such file or format'} — {what}"
        return row
    item = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    url = item.get("downloadURL") or None
    if url:
        register_secret(url)
        if "signature=" in url:
            register_secret(url.rsplit("signature=", 1)[-1].split("&", 1)[0])
    flag, warning = _warning(item.get("downloadWarning"))
    row.update(format=item.get("format"), filetype=item.get("filetype"), expires_in=item.get("expiresIn"),
               download_url=url, watermark=item.get("watermark"), is_preview=item.get("isPreview"),
               download_warning=flag,
               message=warning or (None if url else "Mediaflow gave no download link for this file and format"))
    return row


async def _ask(client: AsyncClient, fid: int, format_id: int) -> Any:
    """Mediaflow's answer for one link: in the form that has worked on this connection, else the vendor's
    form first and the other one after a 404 (see the module docstring)."""
    known = getattr(client, "_download_form", None)
    forms = [known] if known else list(PATH_FORMS)
    response = None
    for form in forms:
        response = await client.http.request("GET", form.format(id=fid, format=format_id),
                                             params={"fields": FIELDS}, allow=(403, 404),
                                             what=f"ask for a download link of file {fid}")
        if response.status_code != 404:
            if response.status_code < 300:
                client._download_form = form
            break
    return response


async def download_urls(client: AsyncClient, files: Any, format: Any = 0,
                        concurrency: "int | str" = "auto") -> ToolkitFrame:
    """One download link per file (see the module docstring). Raises ValidationError for a bad ``format``,
    ``concurrency`` or file id (before anything is sent); Unauthorized when the credentials are refused."""
    format_id = _format_id(format)
    concurrency = check_concurrency(concurrency, SERVICE)
    raw_ids, index = file_ids(files)
    ids = [as_file_id(v) for v in raw_ids]
    await client.http.ensure_pool(concurrency)
    gate = Gate(concurrency)

    async def one(fid: int) -> dict[str, Any]:
        async with gate:
            return _row(fid, format_id, await _ask(client, fid, format_id))

    rows = await asyncio.gather(*(one(fid) for fid in ids))
    df = frame(shapes.records(rows, DOWNLOAD_SCHEMA), DOWNLOAD_SCHEMA, kind="assets", service=SERVICE)
    if index is not None:
        df.index = index
    return df


async def formats(client: AsyncClient) -> ToolkitFrame:
    """The download formats (``GET formats``, else ``GET format`` after a 404): ``id, name, suffix, filetype,
    width, height, keep_ratio``; ``attrs["kind"] == "records"``."""
    response = None
    for path in FORMAT_PATHS:
        response = await client.http.request("GET", path, params={"fields": FORMAT_FIELDS}, allow=(404,),
                                             what="list the download formats")
        if response.status_code != 404:
            break
    if response is None or response.status_code == 404:
        raise client.http.error_for(response, what="list the download formats")
    records = [{"id": f.get("id"), "name": f.get("name"), "suffix": f.get("suffix"), "filetype": f.get("filetype"),
                "width": f.get("width"), "height": f.get("height"), "keep_ratio": f.get("keepRatio")}
               for f in array_of(response) if isinstance(f, dict)]
    return frame(shapes.records(records, FORMAT_SCHEMA), FORMAT_SCHEMA, kind="records", service=SERVICE)
