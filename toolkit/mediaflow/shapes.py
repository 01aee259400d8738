"""One dtype per column whatever shape Mediaflow sends a value in.

Mediaflow's own clients and the contract as first researched disagree on the JSON types of some fields
(issue 19): the Rust crate ``mediaflow`` (``mediaflow_core/src/files.rs``, ``folders.rs``,
``file_downloads.rs``) has a folder's ``type`` and ``createdBy`` and a file's ``uploadedBy`` as numbers,
``parents`` as a list of parent-folder objects, ``downloadWarning`` as a bool and a preview's ``size`` as
text; the first contract had text, a list of folder ids, ``""`` and a number. A client must read both, and
every column of a frame has ONE declared dtype, so each value is brought to the Python value of its column's
dtype before the frame is built (:func:`records`):

* ``Int64`` — a whole number, also one written as text (``"300"``) or as a float (``300.0``); ``""``, ``None``,
  a bool and any other text are missing (``<NA>``).
* ``Float64`` — a number, or one written as text.
* ``boolean`` — a bool, ``1``/``0``, or ``"true"``/``"false"``/``"1"``/``"0"``/``"yes"``/``"no"`` in any
  case; ``""``, ``None`` and anything else are missing.
* ``string`` — text as it is; a number as its digits (``17`` → ``"17"``, never ``"17.0"``); a bool as
  ``"true"``/``"false"``; an object with a ``name`` as that name (a user given as ``{"id", "name"}``).
  So an id that one source gives as a number and another as a user name is kept, not lost.
* ``datetime`` — left to the frame layer (ISO text); a number is read as seconds since 1970 (UTC).

Lists of folders (``parents``) become the list of ids, top first, from either shape (:func:`folder_ids`);
a file's ``previews`` become ``{"name", "size", "url"}`` with ``size`` a whole number (:func:`previews`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any, Iterable, Mapping

import pandas as pd

__all__ = ["as_int", "as_float", "as_bool", "as_text", "as_time", "coerce", "records", "folder_ids", "previews",
           "TRUE", "FALSE"]

TRUE = ("true", "1", "yes")
FALSE = ("false", "0", "no")
_WHOLE = re.compile(r"^[+-]?\d+$")


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def as_int(value: Any) -> int | None:
    """A whole number from a number or its text; None for anything else (see the module docstring)."""
    if _missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if _WHOLE.match(text):
            return int(text)
        number = as_float(text)
        return int(number) if number is not None and number.is_integer() else None
    return None


def as_float(value: Any) -> float | None:
    """A number from a number or its text; None for anything else."""
    if _missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))
        except ValueError:
            return None
        return None if math.isnan(number) or math.isinf(number) else number
    return None


def as_bool(value: Any) -> bool | None:
    """A bool from a bool, ``1``/``0`` or their text; None for ``""`` and anything else."""
    if _missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text in TRUE else False if text in FALSE else None
    return None


def as_text(value: Any) -> str | None:
    """Text from text, a number (its digits), a bool or a named object; None when missing."""
    if _missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return value["name"]
    return json.dumps(value, ensure_ascii=False, default=str)


def as_time(value: Any) -> Any:
    """A time as the frame layer reads it: ISO text as it is, seconds since 1970 as a UTC datetime."""
    if _missing(value) or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    return value


_CONVERT = {"Int64": as_int, "Float64": as_float, "boolean": as_bool, "string": as_text, "datetime": as_time}


def coerce(value: Any, dtype: str) -> Any:
    """``value`` as the Python value of a column of ``dtype`` (other dtypes: as it is)."""
    convert = _CONVERT.get(dtype)
    return convert(value) if convert is not None else value


def records(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each row with every column of ``schema`` it holds brought to the column's dtype (other keys kept)."""
    out = []
    for row in rows:
        rec = dict(row)
        for column, dtype in schema.items():
            if column in rec:
                rec[column] = coerce(rec[column], dtype)
        out.append(rec)
    return out


def folder_ids(value: Any) -> list[int] | None:
    """The ids of a ``parents`` list, top first, whether it holds ids (``[10, 11]``) or folder objects
    (``[{"id": 10, "name": …}, …]``); None when it is not a list."""
    if not isinstance(value, (list, tuple)):
        return None
    ids = [as_int(v.get("id")) if isinstance(v, Mapping) else as_int(v) for v in value]
    return [i for i in ids if i is not None]


def previews(value: Any) -> list[dict[str, Any]] | None:
    """A file's ``previews`` as ``{"name", "size", "url"}`` with ``size`` a whole number (the crate has it as
    text, the first contract as a number); None when it is not a list."""
    if not isinstance(value, (list, tuple)):
        return None
    return [{"name": as_text(p.get("name")), "size": as_int(p.get("size")), "url": as_text(p.get("url")) or None}
            for p in value if isinstance(p, Mapping)]
