"""Tables the analyst gives as files (CSV, Excel, JSON), read with plain messages instead of library tracebacks.

``read_table(path, service=…)`` reads a ``.csv``/``.txt``/``.tsv`` (separator found from the first line:
``;``, tab or ``,``; a UTF-8 byte-order mark is fine), ``.xlsx``/``.xlsm``/``.xls`` or ``.json`` file with
every cell as text (leading zeros kept), or — ``typed_cells=True`` — a spreadsheet's cells as the spreadsheet
typed them (text stays text with its leading zeros, numbers stay numbers, dates datetimes: pandas guesses
nothing, where a plain ``pd.read_excel`` turns a column of digit texts into numbers). Whatever pandas,
openpyxl or the json reader says about a file — empty, not a table, a row with more fields than the header,
a spreadsheet that is not one — becomes a :class:`~toolkit.core.errors.ValidationError` that names the
service, the file and, where known, the line, and says what to do.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ValidationError

__all__ = ["read_table", "EXCEL_SUFFIXES"]

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
_LINE = re.compile(r"line (\d+)")


def _problem(path: Path, service: str | None, why: str, hint: str) -> ValidationError:
    return ValidationError(f"the file {path.name} cannot be read: {why}", service=service, hint=hint)


def _separator(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline()
    return next((s for s in (";", "\t", ",") if s in first), ",")


def read_table(path: "str | os.PathLike[str]", *, service: str | None, header: "int | None" = 0,
               what: str = "a table with a header row", text: "tuple[str, ...] | None" = None,
               typed_cells: bool = False) -> pd.DataFrame:
    """The table in ``path`` (see the module docstring). ``text=None`` reads every cell as text; ``text``
    naming columns reads those as text (ids with leading zeros) and types the others as the file does
    (numbers stay numbers, a JSON file's objects stay objects). ``typed_cells=True`` reads a spreadsheet's
    cells with the types its cells have (a CSV's cells are all text)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValidationError(f"no such file: {p.name}", service=service,
                              hint=f"Give the path of a CSV, Excel or JSON file with {what}.")
    suffix = p.suffix.lower()
    fix = f"Give a CSV (UTF-8, with a header row), Excel or JSON file with {what}."
    if p.stat().st_size == 0:
        raise _problem(p, service, "it is empty (0 bytes)", fix)
    dtype: Any = str if text is None else {c: str for c in text}
    if typed_cells:
        dtype, text = (object, ()) if suffix in EXCEL_SUFFIXES else (str, None)
    try:
        if suffix in EXCEL_SUFFIXES:
            return pd.read_excel(p, dtype=dtype, header=header)
        if suffix == ".json":
            return pd.read_json(p, dtype=dtype)
        return pd.read_csv(p, dtype=dtype, keep_default_na=text is not None, skipinitialspace=text is None,
                           sep=_separator(p), encoding="utf-8-sig", header=header)
    except pd.errors.EmptyDataError:
        raise _problem(p, service, "it holds no columns (an empty file, or only blank lines)", fix) from None
    except pd.errors.ParserError as exc:
        raise _problem(p, service, _misaligned(str(exc)), "Look at that line: a value holding the separator (a "
                       "comma in a title, say) needs double quotes around it, or the header lacks a column; fix "
                       "it and run again.") from None
    except UnicodeDecodeError:
        raise _problem(p, service, "it is not UTF-8 text", "Save it as 'CSV UTF-8' (Excel: File → Save As), or "
                                                           "give the .xlsx file.") from None
    except ImportError as exc:  # an Excel format whose reader is not installed (.xls needs xlrd)
        raise _problem(p, service, f"the reader for {suffix} files is not installed ({exc.name or 'a package'})",
                       "Save it as .xlsx or CSV UTF-8 and run again.") from None
    except Exception:  # noqa: BLE001 - ValueError, OSError, a zip file named .xlsx (openpyxl's own errors)
        kind = "an Excel workbook" if suffix in EXCEL_SUFFIXES else \
            'a JSON table (a list of records such as [{"a": …, "b": …}])' if suffix == ".json" else \
            "a text table (CSV)"
        raise _problem(p, service, f"it is not {kind}", fix) from None


def _misaligned(said: str) -> str:
    """Where pandas' parser says the rows do not line up, in plain words."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", said)
    if found:
        expected, line, saw = found.groups()
        return f"line {line} has {saw} fields but the header has {expected}"
    line = _LINE.findall(said)
    return f"line {line[-1]} does not line up with the header" if line else "its rows do not line up"
