"""The row checks of an image import: what each input row would send, or why it is not sent.

:func:`check_images` turns a DataFrame or a list of records into one :class:`Row` per input row — its
payload (``url``, ``id``, ``fileName``, ``metadata``, ``mediaType``) or the reason it is ``invalid`` — and
:func:`prepare` checks the call's own arguments. Nothing here talks to the service. The rules are in
docs/livingdocs.md ("Checks before sending").
"""

from __future__ import annotations

import json
import math
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from ..core.bulk import check_concurrency
from ..core.errors import ValidationError

__all__ = ["Row", "check_images", "prepare", "id_text", "whole_number", "CONTEXT_MAX_BYTES"]

SERVICE = "livingdocs"
#: the largest ``context`` Livingdocs takes, in bytes of compact UTF-8 JSON
CONTEXT_MAX_BYTES = 8192


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _first(record: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in record and not _missing(record[key]):
            return record[key]
    return None


def id_text(value: Any) -> str | None:
    """An id as text: ``None`` for a missing one, whole floats without ``.0`` (``12.0`` → ``"12"``)."""
    if _missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            value = value.item()
            if isinstance(value, float) and value.is_integer():
                value = int(value)
        except (TypeError, ValueError):
            pass
    text = str(value).strip()
    return text or None


def whole_number(value: Any) -> int | None:
    """A size, count or version as a whole number, whether the service sent a JSON number or text (``1600``,
    ``1600.0``, ``"1600"``, ``" 1600.0 "`` → ``1600``); ``None`` for a missing, non-numeric or fractional value.
    One declared dtype (``Int64``) whatever the shape (docs/livingdocs.md, "Shapes")."""
    if value is None or isinstance(value, bool):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        try:
            value = value.item()
        except (TypeError, ValueError):
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


@dataclass
class Row:
    """One input image."""

    position: int
    external_id: str | None
    title: str | None
    payload: dict[str, Any] | None = None  # what is sent (None: invalid)
    reason: str | None = None              # why it is invalid


def _check_url(value: Any) -> tuple[str | None, str | None]:
    if type(value) is str and value[:4] == "http" and value == value.strip():  # the common case, fast
        head, sep, rest = value.partition("://")
        if sep and head in ("http", "https") and rest and rest[0] not in "/?#" and " " not in rest:
            return value, None
    if _missing(value):
        return None, "not sent: the row has no url"
    if not isinstance(value, str):
        return None, f"not sent: the url must be text, not {type(value).__name__}"
    url = value.strip()
    if url.lower().startswith("data:"):
        return None, "not sent: data: URLs are not accepted by Livingdocs; give an http(s) URL of the image"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None, "not sent: the url is not an http(s) URL"
    return url, None


def _metadata(record: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    meta = record.get("metadata")
    if type(meta) is dict and not any(type(k) is str and k.startswith("metadata.") for k in record):
        return dict(meta), None
    out: dict[str, Any] = {}
    if not _missing(meta):
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError:
                return None, "not sent: metadata is text that is not a JSON object"
        if not isinstance(meta, Mapping):
            return None, "not sent: metadata must be an object (a dict), not " + type(meta).__name__
        out.update(meta)
    for key, value in record.items():
        if isinstance(key, str) and key.startswith("metadata.") and len(key) > 9 and not _missing(value):
            out[key[9:]] = value.item() if hasattr(value, "item") and not isinstance(value, str) else value
    return out, None


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _records(images: Any) -> list[Any]:
    if isinstance(images, pd.DataFrame):
        return images.to_dict("records")
    if isinstance(images, (str, bytes, os.PathLike)):
        raise ValidationError("images must be a DataFrame or a list of records, not a file name", service=SERVICE,
                              hint="Read the file first, e.g. images = pandas.read_csv('images.csv').")
    if isinstance(images, Mapping):
        raise ValidationError("images must be a DataFrame or a list of records (dicts), not one dict",
                              service=SERVICE, hint="Wrap one image in a list: [{'url': …, 'id': …}].")
    try:
        return list(images)
    except TypeError:
        raise ValidationError(f"images must be a DataFrame or a list of records, not {type(images).__name__}",
                              service=SERVICE) from None


def check_images(images: Any) -> list[Row]:
    """The rows of ``images`` with what would be sent, or why not (see the module docstring)."""
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for i, record in enumerate(_records(images)):
        if not isinstance(record, Mapping):
            rows.append(Row(i, None, None, reason=f"not sent: row {i} is not a record (a dict) but "
                                                  f"{type(record).__name__}"))
            continue
        raw_id = record.get("id")
        ext = raw_id.strip() if type(raw_id) is str and raw_id.strip() else \
            id_text(_first(record, "id", "externalId", "external_id"))
        name = record.get("fileName")
        if type(name) is not str or not name:
            name = _first(record, "fileName", "file_name", "title")
        title = None if name is None else str(name)
        url, problem = _check_url(record.get("url"))
        if problem is None and ext is None:
            problem = "not sent: the row has no id (the image's id in the source system)"
        if problem is None and ext in seen:
            problem = (f"not sent: the id {ext!r} was already given in row {seen[ext]} of this import "
                       f"(that first row is sent); give each image its own id")
        meta = None
        if problem is None:
            meta, problem = _metadata(record)
        media_type = _first(record, "mediaType", "media_type")
        if problem is None and media_type is not None and not isinstance(media_type, str):
            problem = "not sent: mediaType must be the handle of a media type (text), e.g. 'image'"
        if problem is not None:
            rows.append(Row(i, ext, title, reason=problem))
            continue
        assert ext is not None and url is not None
        seen[ext] = i
        if title is None:
            title = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or ext
        payload: dict[str, Any] = {"url": url, "id": ext, "fileName": title, "metadata": meta or {}}
        if media_type:
            payload["mediaType"] = media_type.strip()
        rows.append(Row(i, ext, title, payload=payload))
    # one JSON check for all rows (fast); only when it fails, find the rows at fault
    if not _json_ok([r.payload for r in rows if r.payload is not None]):
        for r in rows:
            if r.payload is not None and not _json_ok(r.payload):
                r.payload = None
                r.reason = "not sent: metadata holds values that are not JSON (numbers, text, lists, objects)"
                if r.external_id is not None and seen.get(r.external_id) == r.position:
                    del seen[r.external_id]
    return rows


def _context_bytes(context: Any) -> int:
    return len(json.dumps(context, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8"))


def prepare(system_name: Any, webhook: Any, context: Any, chunk_size: Any, concurrency: Any) -> tuple[str, str | None]:
    """Check the call's own arguments; returns (system name, webhook URL)."""
    if not isinstance(system_name, str) or not system_name.strip():
        raise ValidationError("system_name is required: the name of the source system (e.g. 'archive')",
                              service=SERVICE, hint="Pass system_name='…'; with the image ids it identifies each "
                                                    "image, so importing again updates instead of duplicating.")
    url = getattr(webhook, "url", webhook)
    if url is not None:
        if not isinstance(url, str) or urllib.parse.urlsplit(url.strip()).scheme.lower() not in ("http", "https") \
                or not urllib.parse.urlsplit(url.strip()).netloc:
            raise ValidationError("webhook must be an http(s) URL (or a WebhookInbox)", service=SERVICE)
        url = url.strip()
    if context is not None:
        if not isinstance(context, Mapping):
            raise ValidationError("context must be an object (a dict)", service=SERVICE)
        try:
            size = _context_bytes(context)
        except (TypeError, ValueError):
            raise ValidationError("context must hold only JSON values (text, numbers, lists, objects)",
                                  service=SERVICE) from None
        if size > CONTEXT_MAX_BYTES:
            raise ValidationError(f"context is {size} bytes as JSON; Livingdocs takes at most {CONTEXT_MAX_BYTES}",
                                  service=SERVICE, hint="Put less in context (e.g. an id of your own that points "
                                                        "to the rest); nothing was sent.")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValidationError(f"chunk_size must be a whole number of at least 1, not {chunk_size!r}", service=SERVICE)
    check_concurrency(concurrency, SERVICE, default=4)
    return system_name.strip(), url
