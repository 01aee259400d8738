"""Audit: which CPR numbers lack a photo in Uddata+.

``await audit(client, cprs)`` (or ``ud.audit(cprs)``) accepts a list, a pandas Series,
a DataFrame (its ``cpr``/``cpr_nr`` column, else its first column) or a path to a CSV/Excel/text file
(CPR numbers read as text, leading zeros kept). Every input becomes one row, in input order:

===============  ========================================================================================
``cpr``          the normalised 10-digit number (the input as given when it is not a CPR number)
``outcome``      what the check found, one of :data:`STATUSES` (below)
``message``      why a row has no answer (invalid number, service error), a note for duplicates, or
                 that the number is not on the roster; empty for a plain answer
``valid``        whether it is a CPR number (modulus 11 is not required); invalid ones are not sent
``has_image``    True/False: whether Uddata+ holds a photo for the number; empty when not checked
``width``, ``height``, ``bytes``  of the stored photo (width/height from the JPEG header only)
``http_status``  the service's answer (200, 404 …)
===============  ========================================================================================

Outcomes (the 404 body's ``message`` says whether the person or the photo is missing, contract Part 1):

* ``with_photo`` — 200, the person has a photo (``has_image`` True);
* ``no_photo`` — 404 "the person has no photo": a student to photograph (``has_image`` False);
* ``unknown_cpr`` — 404 "no person with this CPR number": not on the institution's roster. ``has_image``
  is False (Uddata+ holds no photo for the number) and ``message`` says to check the number or enrol the
  student; :func:`missing` leaves these rows out, since no photo can be uploaded for them;
* ``not_found`` — a 404 whose message names neither (a real service may word it otherwise):
  ``has_image`` False, ``message`` quotes the message;
* ``invalid`` — not a CPR number, not sent; ``error`` — the check failed (a 404 of a wrong API version or
  endpoint, 401/403, no answer); ``deferred`` — not tried (the service failed repeatedly: re-run later);
* ``duplicate`` — the CPR was given before: checked once, the row copies the first answer and ``message``
  says ``duplicate of input row N``.

The one-line summary is the bulk runner's (``Uddata+: photo audit: N items — with_photo …, no_photo …,
unknown_cpr … in 1.2 s``): printed once when ``progress`` is on (never printed a second time in other
words) and kept in ``df.attrs["summary"]`` (``df.summary``). CPR numbers are masked on display, in the
progress bar and in the summary. ``concurrency`` is ``"auto"`` (the default: the adaptive limit of
:mod:`toolkit.core.limits`) or a whole number from 1 to 64 (else :class:`toolkit.ValidationError`).
"""

from __future__ import annotations

import asyncio
import importlib
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd

# check_concurrency is core's one check, also importable from here (the folder upload used to import it so)
from ..core.bulk import check_concurrency, run_bulk
from ..core.errors import APIError, ToolkitError, ValidationError
from ..core.frames import ToolkitFrame, frame
from ..core.redact import redact
from ..core.tables import read_table
from . import cpr as _cpr

if TYPE_CHECKING:
    from .interface import PhotoClient

__all__ = ["audit", "read_cprs", "AUDIT_SCHEMA", "STATUSES", "missing", "check_concurrency"]

AUDIT_SCHEMA = {
    # the vocabulary (docs/vocabulary.md): outcome (was ``status``), message (was ``error``)
    "cpr": "string", "outcome": "string", "message": "string", "valid": "boolean", "has_image": "boolean",
    "width": "Int64", "height": "Int64", "bytes": "Int64", "http_status": "Int64",
}
#: the values of the ``outcome`` column (see the module docstring), in summary order
STATUSES = ("with_photo", "no_photo", "unknown_cpr", "not_found", "invalid", "error", "duplicate", "deferred")
LABELS = STATUSES
UNKNOWN_CPR_NOTE = ("not on the roster: Uddata+ has no person with this CPR number (404); check the number, "
                    "or enrol the student first")


def _status_of_404(response: Any) -> tuple[str | None, str | None]:
    """(status, note) of a 404 from ``GET billeder/{cpr}``; status None when it is an error (wrong
    version or endpoint)."""
    try:
        body = response.json()
        message = str(body.get("message") or "") if isinstance(body, dict) else ""
    except ValueError:
        message = ""
    text = message.lower()
    if "no person" in text or "cpr" in text:
        return "unknown_cpr", UNKNOWN_CPR_NOTE
    if "version" in text or "endpoint" in text:
        return None, (f"Uddata+ answered 404: {message}; check the API version (the picture endpoints "
                      "exist since 0.7.5) and the base URL")
    if "photo" in text or "picture" in text or "billede" in text or "image" in text:
        return "no_photo", None
    return "not_found", f"Uddata+ answered 404 ({message or 'no message'}): no photo, or no such person"
_CPR_COLUMNS = ("cpr", "cpr_nr", "cprnr", "cpr_nummer", "cpr-nr", "personnummer")


def _pick_column(df: pd.DataFrame) -> pd.Series:
    if df.shape[1] == 0:
        return pd.Series([], dtype=object)
    by_name = {str(c).strip().lower(): c for c in df.columns}
    for name in _CPR_COLUMNS:
        if name in by_name:
            return df[by_name[name]]
    return df.iloc[:, 0]


def _read_table(path: Path) -> pd.DataFrame:
    """The table of a CSV/Excel file of CPR numbers (core :func:`~toolkit.core.tables.read_table`: plain
    messages for an empty or malformed file); a first row that is itself a CPR number is no header."""
    df = read_table(path, service="uddata", what="one CPR number per row")
    if df.shape[1] and _cpr.validate(str(df.columns[0])).valid:  # no header row
        df = read_table(path, service="uddata", header=None, what="one CPR number per row")
    return df


def read_cprs(source: Any) -> list[Any]:
    """The CPR values of ``source`` (list, Series, DataFrame, Index or file path), raw, in order."""
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and _looks_like_cpr(source)):
        return list(_pick_column(_read_table(Path(source).expanduser())))
    if isinstance(source, str):
        return [source]
    if isinstance(source, pd.DataFrame):
        return list(_pick_column(source))
    if isinstance(source, (pd.Series, pd.Index)):
        return list(source)
    if isinstance(source, Iterable):
        return list(source)
    raise ValidationError(f"cannot read CPR numbers from a {type(source).__name__}", service="uddata",
                          hint="Give a list, a Series, a DataFrame column or a CSV/Excel path.")


def _looks_like_cpr(text: str) -> bool:
    stripped = text.strip().replace("-", "").replace(" ", "")
    return stripped.isascii() and stripped.isdigit() and len(stripped) <= 12


def _header_size(data: bytes) -> tuple[int | None, int | None, str | None]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only, no decoding
            return img.width, img.height, None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None, None, "the stored photo is not a readable image"


def _error_row(number: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ToolkitError):
        message = str(exc.message)
        if exc.hint:
            message += f" — {exc.hint}"
        status = exc.status if isinstance(exc, APIError) else None
    else:
        message = f"unexpected error ({type(exc).__name__}): {redact(exc)}"
        status = None
    return {"cpr": number, "valid": True, "has_image": None, "http_status": status, "width": None, "height": None,
            "bytes": None, "message": redact(message), "outcome": "error"}


async def audit(client: "PhotoClient", cprs: Any, concurrency: "int | str" = "auto",
                progress: bool = True) -> ToolkitFrame:
    """Check which CPR numbers have a photo; one row per input (see the module docstring).

    Parameters
    ----------
    client : an Uddata+ client (``toolkit.uddata.AsyncClient``).
    cprs : list, Series, DataFrame (``cpr`` column, else the first), Index or CSV/Excel path.
    concurrency : requests at once: "auto" (adapts to the service) or a whole number from 1 to 64.
    progress : show a progress bar and print the summary.

    Returns
    -------
    A frame with one row per input: ``cpr, outcome, message, valid, has_image, width, height, bytes,
    http_status`` (``outcome`` and ``message`` were ``status`` and ``error`` before); ``df.attrs["summary"]``
    holds the one-line summary, ``attrs["kind"] == "assets"``.

    Raises
    ------
    toolkit.ValidationError — ``concurrency`` is not "auto" or a whole number from 1 to 64, or the input cannot
    be read.
    """
    concurrency = check_concurrency(concurrency, "uddata", default=16)
    # Pillow reads the photos' headers: imported now, not on the first answer, where its import (tens of ms) would
    # hold every answer in flight and read to the adaptive limit as a service slowing down
    importlib.import_module("PIL.Image")
    values = read_cprs(cprs)
    checks = [_cpr.validate(v) for v in values]
    first_row: dict[str, int] = {}
    duplicates: dict[str, int] = {}
    for i, check in enumerate(checks):
        if check.valid:
            if check.cpr in first_row:
                duplicates[check.cpr] = duplicates.get(check.cpr, 0) + 1
            else:
                first_row[check.cpr] = i
    futures: dict[str, asyncio.Future] = {c: asyncio.get_running_loop().create_future() for c in duplicates}
    items = list(enumerate(checks))

    async def fetch(number: str) -> dict[str, Any]:
        response = await client.http.request("GET", client.path(f"billeder/{number}"), allow=(404,),
                                             what="check the photo")
        if response.status_code == 404:
            status, note = _status_of_404(response)
            if status is None:
                return {"cpr": number, "valid": True, "has_image": None, "http_status": 404, "width": None,
                        "height": None, "bytes": None, "message": note, "outcome": "error"}
            return {"cpr": number, "valid": True, "has_image": False, "http_status": 404, "width": None,
                    "height": None, "bytes": None, "message": note, "outcome": status}
        data = response.content
        width, height, problem = _header_size(data)
        return {"cpr": number, "valid": True, "has_image": True, "http_status": response.status_code,
                "width": width, "height": height, "bytes": len(data), "message": problem, "outcome": "with_photo"}

    async def worker(item: tuple[int, Any]) -> dict[str, Any]:
        i, check = item
        if not check.valid:
            return {"cpr": check.cpr or None, "valid": False, "message": f"{check.error}; not sent",
                    "outcome": "invalid"}
        number = check.cpr
        if first_row[number] != i:
            try:
                first = await asyncio.shield(futures[number])
            except BaseException as exc:  # noqa: BLE001 - the first row carries the error; note it here
                if isinstance(exc, asyncio.CancelledError):
                    raise
                first = _error_row(number, exc)
            return {**first, "message": f"duplicate of input row {first_row[number] + 1}; checked once"
                    + (f" ({first['message']})" if first.get("message") else ""), "outcome": "duplicate"}
        try:
            row = await fetch(number)
        except BaseException as exc:
            if number in futures and not futures[number].done():
                futures[number].set_result(_error_row(number, exc) if not isinstance(exc, asyncio.CancelledError)
                                           else _error_row(number, ToolkitError("cancelled", service="uddata")))
            raise
        if number in futures and not futures[number].done():
            futures[number].set_result(row)
        return row

    def on_error(item: tuple[int, Any], exc: BaseException) -> dict[str, Any]:
        return _error_row(item[1].cpr, exc)

    def on_deferred(item: tuple[int, Any]) -> dict[str, Any]:
        i, check = item
        if check.cpr in futures and not futures[check.cpr].done():
            futures[check.cpr].set_result({"cpr": check.cpr, "valid": True, "message": "deferred",
                                           "outcome": "deferred"})
        if not check.valid:
            return {"cpr": check.cpr or None, "valid": False, "message": f"{check.error}; not sent",
                    "outcome": "invalid"}
        return {"cpr": check.cpr, "valid": check.valid, "has_image": None,
                "message": "not checked: the service failed repeatedly, re-run the audit later", "outcome": "deferred"}

    await client.http.ensure_pool(concurrency)
    outcome = await run_bulk(items, worker, service="uddata", desc="photo audit", concurrency=concurrency,
                             on_error=on_error, on_deferred=on_deferred, progress=progress, summary_labels=LABELS)
    # the bulk runner's line is the one summary: it printed it (when progress is on); keep the same text
    return frame(outcome.rows, AUDIT_SCHEMA, masked=["cpr"], summary=redact(outcome.summary), kind="assets",
                 service="uddata")


def missing(result: pd.DataFrame) -> pd.DataFrame:
    """The rows of an audit result whose person is on the roster and has no photo (``no_photo``, and the
    ambiguous ``not_found``; also their duplicates' first rows), one per CPR. ``unknown_cpr`` rows are left
    out: no photo can be uploaded for a number Uddata+ does not know."""
    mask = result["has_image"].fillna(True).eq(False) & result["valid"].fillna(False)
    if "outcome" in result.columns:
        unknown = result.loc[result["outcome"].eq("unknown_cpr").fillna(False).astype(bool), "cpr"]
        mask &= ~result["cpr"].isin(list(unknown)).fillna(False)
    out = result[mask.astype(bool)]
    return out.drop_duplicates("cpr")
