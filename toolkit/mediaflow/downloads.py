"""Download links of Mediaflow files: ``GET files/{id}/downloads/{formatId}`` (contract §4.5).

``await client.download_urls(files, format="original")`` asks Mediaflow for one download link per file and
gives one row per file, in the order given (and, for a DataFrame, with its index, so
``images["download_url"] = mf.download_urls(images)["download_url"]`` lines up):

    id, format_id, format, filetype, expires_in, download_url, http_status, message

A download link is **signed** (anyone holding it can fetch the file until it expires), so it is a secret
here: every link is registered with :func:`toolkit.core.redact.register_secret` (logs, messages and
errors mask it) and the ``download_url`` column has the ``"redacted"`` dtype — shown masked in the notebook,
in ``print(df)`` and in a value's ``repr``, while code gets the real link: ``df["download_url"].tolist()``,
``str(v)``, ``f"{v}"``, ``row.download_url`` to hand to another service (Livingdocs fetches them) or to
an HTTP request. A file Mediaflow does not know, or a format it does not offer for that file, is a
row with ``http_status`` 404 and Mediaflow's message, not an exception.

``format``: ``"original"`` (format id 0, the original file: undocumented but used by the Rust SDK) or a
format id from Mediaflow's ``GET format`` list (a whole number).

Notice: a link may differ each time it is asked for (it expires: ``expires_in`` seconds). Livingdocs
recognises an unchanged image by its id **and** its URL, so importing again with new links updates the
images instead of skipping them; a stable source (the preview links) re-imports as ``skipped``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd

from ..core.bulk import check_concurrency
from ..core.errors import ValidationError
from ..core.frames import ToolkitFrame, frame
from ..core.http import json_or_none
from ..core.redact import register_secret

#: the Mediaflow AsyncClient (duck-typed here, not imported: the client imports this module)
AsyncClient = Any

__all__ = ["DOWNLOAD_SCHEMA", "FORMATS", "download_urls"]

SERVICE = "mediaflow"
#: format name → Mediaflow format id
FORMATS = {"original": 0}
DOWNLOAD_SCHEMA = {"id": "Int64", "format_id": "Int64", "format": "string", "filetype": "string",
                   "expires_in": "Float64", "download_url": "redacted", "http_status": "Int64", "message": "string"}
FIELDS = "id,format,watermark,ispreview,filetype,expiresin,downloadurl,downloadwarning"


def _format_id(format: Any) -> int:
    if isinstance(format, str) and format.strip().lower() in FORMATS:
        return FORMATS[format.strip().lower()]
    if isinstance(format, int) and not isinstance(format, bool):
        return format
    if isinstance(format, str) and format.strip().lstrip("-").isdigit():
        return int(format.strip())
    raise ValidationError(f"format must be \"original\" or a Mediaflow format id (a whole number), not {format!r}",
                          service=SERVICE, hint="Use format=\"original\" for the original file.")


def _file_ids(files: Any) -> tuple[list[Any], pd.Index | None]:
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


def _as_id(value: Any) -> int:
    try:
        if value is None or value is pd.NA or isinstance(value, bool):
            raise ValueError
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{value!r} is not a Mediaflow file id (a whole number; ids may be negative)",
                              service=SERVICE) from None


async def download_urls(client: AsyncClient, files: Any, format: Any = "original",
                        concurrency: int = 8) -> ToolkitFrame:
    """One download link per file (see the module docstring). Raises ValidationError for a bad ``format``,
    ``concurrency`` or file id (before anything is sent); Unauthorized when the credentials are refused."""
    format_id = _format_id(format)
    concurrency = check_concurrency(concurrency, SERVICE)
    raw_ids, index = _file_ids(files)
    ids = [_as_id(v) for v in raw_ids]
    await client.http.ensure_pool(concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def one(fid: int) -> dict[str, Any]:
        async with gate:
            response = await client.http.request("GET", f"files/{fid}/downloads/{format_id}",
                                                 params={"fields": FIELDS}, allow=(404,),
                                                 what=f"ask for a download link of file {fid}")
        row: dict[str, Any] = {"id": fid, "format_id": format_id, "http_status": response.status_code}
        body = json_or_none(response)
        if response.status_code == 404:
            message = body.get("error") if isinstance(body, dict) else None
            row["message"] = f"Mediaflow: {message or 'no such file or format'} — check the file id and the format"
            return row
        item = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
        url = item.get("downloadURL") or None
        if url:
            register_secret(url)
            if "signature=" in url:
                register_secret(url.rsplit("signature=", 1)[-1].split("&", 1)[0])
        row.update(format=item.get("format"), filetype=item.get("filetype"), expires_in=item.get("expiresIn"),
                   download_url=url, message=item.get("downloadWarning") or
                   (None if url else "Mediaflow gave no download link for this file and format"))
        return row

    rows = await asyncio.gather(*(one(fid) for fid in ids))
    df = frame(list(rows), DOWNLOAD_SCHEMA, kind="assets", service=SERVICE)
    if index is not None:
        df.index = index
    return df
