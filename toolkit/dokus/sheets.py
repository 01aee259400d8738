"""Dokus items to a spreadsheet and back: what an analyst edits in Excel or LibreOffice.

    products = dk.products.export("products.xlsx")           # list, write; returns the table as read
    # … the analyst edits products.xlsx in Excel or LibreOffice and saves it …
    plan = dk.products.diff(products, read_sheet("products.xlsx"))   # or pd.read_excel("products.xlsx")
    dk.products.apply(plan)

:func:`write_sheet` writes the id and the columns an analyst may edit (``editable`` of the resource's row
in :data:`toolkit.dokus.RESOURCES`), headed by the frame's own column names so the sheet reads back as the
same table. In ``.xlsx`` every text column (product numbers, zip codes, organisation numbers) is written as
TEXT cells in columns formatted as text (``@``), so a spreadsheet keeps leading zeros (``0042``) and never
reads a formula into a name that starts with ``=``; money is a number with two decimals (``0.00``), dates
are date cells shown ``yyyy-mm-dd``, lists (group members, invoice lines) JSON text. A ``.csv`` is UTF-8
with a byte-order mark (Excel then reads æøå), comma-separated, money with two decimals and a point. The file
is written whole or not at all (a temporary file in the same folder renamed into place, core
:func:`toolkit.core.files.temporary`).

:func:`read_sheet` reads it back with the one table reader, :func:`toolkit.core.tables.read_table`: an
``.xlsx`` with each cell as the spreadsheet typed it (``typed_cells=True``: text stays text with its leading
zeros, numbers numbers, dates datetimes), a ``.csv`` with every cell as text. What a spreadsheet — or a plain
``pd.read_excel``, which also turns a column of digit texts into numbers — does to values on the way
(prices as floats, ``0042`` as 42, ids as 7.0, dates as datetimes, empty cells as NaN, whitespace, column
order, re-sorted rows) is absorbed by :func:`toolkit.dokus.edits.diff`, which compares each cell by its
field's type (:func:`toolkit.dokus.values.normalize`, :func:`~toolkit.dokus.values.equal` and
:func:`~toolkit.dokus.values.keep_zeros`): only real edits are planned, and ``read_sheet(path)`` and
``pd.read_excel(path)`` give the same plan.
"""

from __future__ import annotations

import io
import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import ValidationError
from ..core.files import clean_temporaries, write_atomically
from ..core.tables import read_table
from .specs import RESOURCES, ResourceSpec
from .values import as_id, is_blank, is_missing, plain, stamp

__all__ = ["write_sheet", "read_sheet", "sheet_columns", "SHEET_SUFFIXES"]

#: the files :func:`write_sheet` writes
SHEET_SUFFIXES = (".xlsx", ".csv")
_TEXT_FORMAT = "@"
_MONEY_FORMAT = "0.00"
_DATE_FORMAT = "yyyy-mm-dd"
_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def _spec_of(df: pd.DataFrame, resource: "str | ResourceSpec | None") -> ResourceSpec | None:
    """The resource row of a frame: given, else ``attrs["resource"]``, else ``attrs["kind"] == "products"``."""
    if isinstance(resource, ResourceSpec):
        return resource
    name = resource or df.attrs.get("resource") or ("products" if df.attrs.get("kind") == "products" else None)
    if name is None:
        return None
    if name not in RESOURCES:
        raise ValidationError(f"{name!r} is not a Dokus resource", service="dokus",
                              hint=f"Use one of: {', '.join(RESOURCES)}.")
    return RESOURCES[name]


#: the read-only column a sheet carries last: the time each item was read, so a plan made from the sheet later
#: knows the items changed on Dokus since (by a colleague) and apply refuses those as conflicts
STAMP = "modification_time"


def sheet_columns(df: pd.DataFrame, spec: ResourceSpec | None) -> list[str]:
    """The columns a sheet gets: ``id``, the editable columns the frame has (all columns without a spec) and,
    last, ``modification_time`` (read-only: the time each item was read)."""
    if spec is None:
        return [str(c) for c in df.columns if c != "id"]
    return [c for c in spec.editable if c in df.columns] + ([STAMP] if STAMP in df.columns else [])


def _table(df: pd.DataFrame, spec: ResourceSpec | None) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise ValidationError("write_sheet needs a DataFrame (as dk.products.list() returns it)", service="dokus")
    table = pd.DataFrame(df)
    if "id" not in table.columns:
        if table.index.name != "id":
            raise ValidationError("the table has no id (neither an id column nor an index named id), so the "
                                  "sheet could not be read back to the same items", service="dokus",
                                  hint="Write the table as dk.products.list() returned it.")
        table = table.reset_index()
    return table[["id", *sheet_columns(table, spec)]]


def _dtype(spec: ResourceSpec | None, column: str) -> str:
    if column == "id":
        return "Int64"
    if column == STAMP:
        return "stamp"
    if spec is None:
        return "object"
    return "money" if column in spec.money else spec.schema.get(column, "object")


def _cell(value: Any, dtype: str) -> Any:
    """One value as the spreadsheet cell gets it (None for an empty cell)."""
    value = plain(value)
    if dtype == "stamp":  # text exactly as the plan keeps it: a spreadsheet must not turn it into a date
        return stamp(value) or None
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if is_missing(value):
        return None
    if dtype in ("money", "decimal") and not isinstance(value, str):
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        return amount if amount.is_finite() else str(value)  # a NaN/inf Decimal as text: the plan refuses it
    if dtype == "Int64":
        return as_id(value) if as_id(value) is not None else str(value)
    if dtype == "date" and isinstance(value, (pd.Timestamp, datetime, date)):
        return pd.Timestamp(value).date()
    if dtype == "datetime" and isinstance(value, (pd.Timestamp, datetime)):
        return pd.Timestamp(value).to_pydatetime()
    if dtype == "string":
        return str(value)
    if isinstance(value, (Decimal, bool, int, float, datetime, date)):
        return value
    return str(value)


def _xlsx(table: pd.DataFrame, spec: ResourceSpec | None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = (spec.name if spec else "sheet")[:31]
    formats = {"money": _MONEY_FORMAT, "decimal": "0.00########", "date": _DATE_FORMAT, "datetime": _TIME_FORMAT,
               "string": _TEXT_FORMAT,
               "stamp": _TEXT_FORMAT}
    for col, column in enumerate(table.columns, start=1):
        head = ws.cell(row=1, column=col, value=str(column))
        head.data_type, head.font = "s", Font(bold=True)
        dtype = _dtype(spec, str(column))
        number_format = formats.get(dtype, _TEXT_FORMAT if dtype == "object" else None)
        letter = get_column_letter(col)
        if number_format:  # new rows the analyst types get it too
            ws.column_dimensions[letter].number_format = number_format
        width = len(str(column))
        for row, raw in enumerate(table[column].tolist(), start=2):
            value = _cell(raw, dtype)
            cell = ws.cell(row=row, column=col, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # text, never a formula (a name starting with "=")
            if number_format:
                cell.number_format = number_format
            width = max(width, len(str(value)) if value is not None else 0)
        ws.column_dimensions[letter].width = min(60, width + 2)
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _text(value: Any, dtype: str) -> str:
    cell = _cell(value, dtype)
    if cell is None:
        return ""
    if isinstance(cell, Decimal):
        return format(cell.quantize(Decimal("0.01")), "f") if dtype == "money" else format(cell, "f")
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell)


def _csv(table: pd.DataFrame, spec: ResourceSpec | None) -> bytes:
    text = pd.DataFrame({c: [_text(v, _dtype(spec, str(c))) for v in table[c].tolist()] for c in table.columns},
                        columns=list(table.columns))
    return text.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` to ``path`` whole or not at all, after removing what killed runs left in the folder."""
    clean_temporaries(path.parent)
    write_atomically(path, data)


def write_sheet(frame: pd.DataFrame, path: "str | os.PathLike[str]", *,
                resource: "str | ResourceSpec | None" = None) -> Path:
    """Write a Dokus frame (as ``list()`` returns it) to ``path`` (``.xlsx`` or ``.csv``) for an analyst to edit.

    ``resource`` names the resource (``"products"``, ``"customers"`` …) when the frame does not say it
    (``attrs["resource"]``; a products frame says it by its kind). Returns the path written. See the module
    docstring for what the cells hold."""
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in SHEET_SUFFIXES:
        raise ValidationError(f"cannot write {p.name}: write a .xlsx or .csv file", service="dokus",
                              hint="Give a path ending in .xlsx (Excel, LibreOffice) or .csv.")
    spec = _spec_of(frame, resource)
    table = _table(frame, spec)
    data = _xlsx(table, spec) if suffix == ".xlsx" else _csv(table, spec)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(p, data)
    except PermissionError:
        raise ValidationError(f"cannot write {p.name}: permission denied", service="dokus",
                              hint="Close the file if it is open in Excel or LibreOffice, or write to another "
                                   "folder.") from None
    except OSError as exc:
        raise ValidationError(f"cannot write {p.name}: {exc.strerror or exc}", service="dokus",
                              hint="Check the folder exists and has room, or write to another folder.") from None
    return p


def read_sheet(path: "str | os.PathLike[str]", service: str = "dokus") -> pd.DataFrame:
    """The table of a sheet written by :func:`write_sheet` (and edited), indexed by ``id`` as ``list()`` is:
    pass it to ``dk.<resource>.diff(original, read_sheet(path))``.

    An ``.xlsx``/``.xlsm``/``.xls`` is read as the spreadsheet typed its cells (text cells keep their
    leading zeros); a ``.csv`` with every cell as text. Header names are stripped of spaces; rows with no value at all
    are dropped. A sheet without an ``id`` column, or an id that is not a whole number, is a
    :class:`toolkit.ValidationError` naming the file, the row and the column; a row with an empty id is a new
    item."""
    p = Path(path).expanduser()
    table = read_table(p, service=service, typed_cells=True,
                       what="the id column and the columns to change (as write_sheet wrote them)")
    table.columns = [str(c).strip() for c in table.columns]
    if "id" not in table.columns:
        raise ValidationError(f"the sheet {p.name} has no id column, so its rows cannot be matched to Dokus "
                              f"items", service=service,
                              hint="Keep the id column as exported (an empty id is a new item); export again "
                                   "with dk.products.export(path) if it was removed.")
    blank = table.apply(lambda col: col.map(is_blank)).all(axis=1)
    table = table[~blank]
    for pos, value in zip(table.index, table["id"].tolist()):
        if not is_blank(value) and as_id(value) is None:
            line = int(pos) + 2  # the header is line 1
            raise ValidationError(f"the sheet {p.name}, row {line}, column id: {plain(value)!r} is not a Dokus "
                                  f"id (a whole number)", service=service,
                                  hint="Keep the ids as exported; leave the id empty for a new item.")
    ids = [None if is_blank(v) else as_id(v) for v in table["id"].tolist()]
    table = table.drop(columns="id")
    table.index = pd.Index(pd.array(ids, dtype="Int64"), name="id")
    table.attrs.update({"service": service, "source": p.name})
    return table

