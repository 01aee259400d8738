"""Tables the analyst gives as files (CSV, Excel, JSON), read with plain messages instead of library tracebacks.

``read_table(path, service=…)`` reads a ``.csv``/``.txt``/``.tsv`` (separator found from the first line:
``;``, tab or ``,``; a UTF-8 byte-order mark is fine), ``.xlsx``/``.xlsm``/``.xls`` or ``.json`` file with
every cell as text (leading zeros kept). Whatever pandas, openpyxl or the json reader says about a file —
empty, not a table, a row with more fields than the header, a spreadsheet that is not one — becomes a
:class:`~toolkit.core.errors.ValidationError` that names the service, the file and, where known, the
line, and says what to do.
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
               what: str = "a table with a header row") -> pd.DataFrame:
    """The table in ``path`` with every cell as text (see the module docstring)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValidationError(f"no such file: {p.name}", service=service,
                              hint=f"Give the path of a CSV, Excel or JSON file with {what}.")
    suffix = p.suffix.lower()
    fix = f"Give a CSV, Excel or JSON file with {what}."
    if p.stat().st_size == 0:
        raise _problem(p, service, "it is empty (0 bytes)", fix)
    try:
        if suffix in EXCEL_SUFFIXES:
            return pd.read_excel(p, dtype=str, header=header)
        if suffix == ".json":
            return pd.read_json(p, dtype=str)
        return pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True, sep=_separator(p),
                           encoding="utf-8-sig", header=header)
    except pd.errors.EmptyDataError:
        raise _problem(p, service, "it holds no columns (an empty file, or only blank lines)", fix) from None
    except pd.errors.ParserError as exc:
        line = _LINE.findall(str(exc))
        where = f"line {line[-1]} has more fields than the header" if line else "its rows do not line up"
        raise _problem(p, service, where, "Look at that line: a value with the separator in it needs quotes, "
                                          "or a column is missing from the header.") from None
    except (ValueError, OSError, KeyError, UnicodeDecodeError) as exc:
        kind = "spreadsheet" if suffix in EXCEL_SUFFIXES else "JSON table" if suffix == ".json" else "text table"
        raise _problem(p, service, f"it is not a {kind} ({type(exc).__name__})", fix) from None
    except Exception as exc:  # noqa: BLE001 - e.g. a zip file named .xlsx: openpyxl's own errors
        raise _problem(p, service, f"it is not a readable file of its kind ({type(exc).__name__})", fix) from None
