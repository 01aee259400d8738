"""The value rules of Dokus: how a cell is read, compared, checked and sent (no HTTP, no resources).

Used by :mod:`toolkit.dokus.edits` (plans), :mod:`toolkit.dokus.resources` (create/update, filters) and the
product editor alike, so a value means the same everywhere.

Money (:func:`parse_money`): amounts are :class:`~decimal.Decimal`, sent as strings with two decimals.
What an analyst types is read only when it can mean one thing:

* ``199.50``, ``199,50`` (Norwegian decimal comma), ``1 500,50``, ``1.500,50`` and ``1,500.50`` (thousands
  grouped in threes, the other sign as decimal sign) are read as you would read them;
* ``1,500`` and ``1.500`` are refused: they mean 1500 to some readers and 1.50 to others (write
  ``1500.00`` or ``1,50``);
* exponent forms (``1e3``), ``NaN`` and ``inf`` are refused, and so are amounts beyond Dokus' 10 digits;
* a negative amount is read, and flagged: a plan marks it (``note="negative price"``) and apply sends it
  only with that mark; ``create``/``update`` refuse it (use a plan so the sign is seen before sending).

Cells by the field's type (:func:`normalize`, :func:`equal`) — what a spreadsheet (Excel, LibreOffice,
``pd.read_excel``, a CSV) does to a value on the way is not a change:

* empty: ``None``, NaN, NaT, ``pd.NA`` and blank text are all "empty" in every column;
* text: leading and trailing spaces are dropped and line ends read as ``\n``; a whole number that reached a
  text column (``1234.0``) is its digits (``"1234"``); text of digits equals the same number written with
  leading zeros (``"42"`` equals ``"0042"``: a spreadsheet drops them from product numbers, zip codes,
  organisation numbers), and a number that replaces such digits gets their width back (151 for ``0150`` is
  ``"0151"``, :func:`keep_zeros`);
* whole numbers (ids): ``7``, ``7.0`` and ``"7"`` are 7;
* money: a float is read from its shortest repr (``199.0`` is 199.00) and says so only when it had to be
  rounded;
* dates and times: date and datetime cells, ``pd.Timestamp`` and the text forms ``2024-03-31`` (with a time
  or not) and ``31.03.2024`` (Norwegian, day first); other text (``03/04/2024`` — March or April?) and
  numbers (a spreadsheet's day count) are refused with what to write;
* booleans: ``True``/``False``, ``1``/``0``, ``TRUE``/``FALSE``, ``ja``/``nei``, ``yes``/``no``;
* lists (group members, invoice lines): also as JSON text, as a sheet holds them.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Mapping, Protocol

import numpy as np
import pandas as pd

__all__ = ["BadValue", "FieldSpec", "MONEY_STEP", "TIME_FORMAT", "NEGATIVE_NOTE", "round_money", "parse_money", "read_amount", "is_negative_money",
           "is_missing", "is_blank", "plain", "normalize", "same", "equal", "keep_zeros", "to_wire", "check",
           "text_key", "filter_text",
           "read_only_message", "as_id", "stamp"]

MONEY_STEP = Decimal("0.01")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: the plan's ``note`` for a negative amount: apply sends a negative amount only when its plan row says so
NEGATIVE_NOTE = "negative price"
#: Dokus keeps money with at most 10 digits, 2 of them decimals
MAX_INTEGER_DIGITS = 8


class BadValue(ValueError):
    """A value that cannot be sent; the message says why and what to write instead."""


class FieldSpec(Protocol):
    """What the value rules need to know of a resource (a :class:`toolkit.dokus.ResourceSpec` has it)."""

    name: str
    label: str
    schema: Mapping[str, str]
    relations: Mapping[str, Mapping[str, str]]
    list_relations: Mapping[str, Mapping[str, str]]
    editable: tuple[str, ...]
    money: tuple[str, ...]
    required: tuple[str, ...]


# -- missing values and plain scalars -------------------------------------------------------------------
def is_missing(value: Any) -> bool:
    """An empty cell: None, pd.NA, NaT or a float NaN (a Decimal NaN is *not* empty: it is refused)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, np.generic) and not isinstance(value, np.bool_) and pd.isna(value):
        return True
    return False


def is_blank(value: Any) -> bool:
    """An empty cell as a sheet has it: :func:`is_missing`, blank text, or an empty list."""
    value = plain(value)
    if isinstance(value, (list, tuple, dict)):
        return not value
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def plain(value: Any) -> Any:
    """numpy scalars → Python scalars (a numpy date or time → ``pd.Timestamp``, never its nanosecond count)."""
    if isinstance(value, (np.datetime64, np.timedelta64)):
        return pd.NaT if np.isnat(value) else (pd.Timestamp(value) if isinstance(value, np.datetime64)
                                                 else pd.Timedelta(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- money ----------------------------------------------------------------------------------------------
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009\u2007]+")
_NOT_NUMBERS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "snan"}


def _two(amount: Decimal) -> str:
    return format(amount.quantize(MONEY_STEP, ROUND_HALF_UP), "f")


def _grouped(text: str, sep: str) -> bool:
    """``1.500.000`` with ``sep="."``: digits grouped in threes after a first group of 1–3 digits."""
    return re.fullmatch(rf"\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+", text) is not None


def _read_text(original: Any, text: str) -> Decimal:
    shown = repr(original)
    text = text.strip().replace("\u2212", "-")
    if text.lower() in _NOT_NUMBERS:
        raise BadValue(f"{shown} is not a number: write an amount such as 199.50")
    sign = ""
    if text[:1] in "+-":
        sign, text = ("-" if text[0] == "-" else ""), text[1:].strip()
    if re.fullmatch(r"[\d.,]*\d[\d.,]*[eE][+-]?\d+", text):
        digits = None
        try:
            digits = Decimal(text.replace(",", "."))
            example = format(digits.quantize(MONEY_STEP), "f") if digits.adjusted() < MAX_INTEGER_DIGITS else None
        except (InvalidOperation, ArithmeticError):
            example = None
        hint = f"write it in full, e.g. {sign}{example}" if example else "write the amount in full, e.g. 1000.00"
        raise BadValue(f"{shown} is written with an exponent: {hint}")
    spaced = _SPACES.sub(" ", text)
    if " " in spaced:
        match = re.fullmatch(r"([\d ]+?)([.,]\d+)?", spaced)
        if not match or not _grouped(match.group(1), " "):
            raise BadValue(f"{shown} is not an amount: group thousands in threes, e.g. 1 500,50, or write 1500.50")
        return _decimal(sign + match.group(1).replace(" ", "") + (match.group(2) or "").replace(",", "."), shown)
    if not re.fullmatch(r"[\d.,]+", text) or not re.search(r"\d", text):
        raise BadValue(f"{shown} is not an amount: write e.g. 199.50 or 199,50")
    dots, commas = text.count("."), text.count(",")
    if dots and commas:
        last = "." if text.rfind(".") > text.rfind(",") else ","
        other = "," if last == "." else "."
        head, _, tail = text.rpartition(last)
        if text.count(last) != 1 or not _grouped(head, other) or not tail:
            raise BadValue(f"{shown} is not an amount: write e.g. 1500.50 (or 1 500,50)")
        return _decimal(sign + head.replace(other, "") + "." + tail, shown)
    if dots + commas == 0:
        return _decimal(sign + text, shown)
    sep = "." if dots else ","
    if dots + commas > 1:
        if _grouped(text, sep):
            return _decimal(sign + text.replace(sep, ""), shown)
        raise BadValue(f"{shown} is not an amount: write e.g. 1500.50 (or 1 500,50)")
    head, _, tail = text.partition(sep)
    if not head or not tail:
        raise BadValue(f"{shown} is not an amount: write e.g. 0.50 or 199,50")
    if len(tail) == 3 and 1 <= len(head) <= 3 and head != "0" and not head.startswith("0"):
        whole = head + tail
        small = Decimal(f"{head}.{tail}").quantize(MONEY_STEP, ROUND_HALF_UP)
        raise BadValue(f"{shown} is ambiguous: it may mean {whole} or {head}.{tail}; write {sign}{whole}.00 or "
                       f"{sign}{format(small, 'f').replace('.', ',')}")
    return _decimal(sign + head + "." + tail, shown)


def _decimal(text: str, shown: str) -> Decimal:
    try:
        return Decimal(text)
    except (InvalidOperation, ArithmeticError):
        raise BadValue(f"{shown} is not an amount: write e.g. 199.50 or 199,50") from None


def read_amount(value: Any) -> Decimal | None:
    """An exact amount (not rounded) from a cell: ``None`` when empty, :class:`BadValue` when not readable."""
    value = plain(value)
    if is_missing(value):
        return None
    shown = repr(value)
    if isinstance(value, bool):
        raise BadValue(f"{shown} is not an amount")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BadValue(f"{shown} is not a number: write an amount such as 199.50")
        amount = Decimal(repr(value))  # the shortest repr, never the binary expansion
    elif isinstance(value, str):
        if not value.strip():
            return None
        amount = _read_text(value, value)
    else:
        raise BadValue(f"{shown} is not an amount: write e.g. 199.50")
    if not amount.is_finite():
        raise BadValue(f"{shown} is not a number: write an amount such as 199.50")
    if amount and amount.adjusted() >= MAX_INTEGER_DIGITS:
        raise BadValue(f"{shown} is too large: Dokus keeps at most {MAX_INTEGER_DIGITS} digits before the "
                       f"decimal sign (write e.g. 1500000.00)")
    return amount


def parse_money(value: Any) -> tuple[Decimal | None, str | None]:
    """An amount rounded half up to øre, and a note when it had to be rounded (see the module docstring).

    ``None`` for an empty cell; :class:`BadValue` (saying what to write) for an ambiguous, exponent,
    NaN/inf or too large value. Negative amounts are returned as they are: the caller marks them."""
    value = plain(value)
    amount = read_amount(value)
    if amount is None:
        return None, None
    note = None
    rounded = amount.quantize(MONEY_STEP, ROUND_HALF_UP)
    if rounded == amount:  # also a float such as 199.5 from a spreadsheet: nothing to say
        note = None
    elif isinstance(value, float):
        note = f"a float ({value!r}) reached the table: sent as {rounded} (rounded half up to øre)"
    else:
        note = f"{amount} rounded half up to øre: {rounded}"
    return rounded, note


def round_money(value: Any) -> Decimal | None:
    """An amount rounded half up to whole øre (two decimals): ``Decimal("209.475")`` → ``209.48``.

    Text is read by the rules of :func:`parse_money`; a refused form raises :class:`toolkit.ValidationError`."""
    try:
        return parse_money(value)[0]
    except BadValue as exc:
        from ..core.errors import ValidationError

        raise ValidationError(str(exc), service="dokus") from None


# -- cells ----------------------------------------------------------------------------------------------
def normalize(spec: FieldSpec, column: str, value: Any) -> tuple[Any, str | None]:
    """The canonical value of a cell (for comparing and sending) and a note when it had to be rounded.

    Read by the column's type in ``spec.schema`` (see the module docstring); :class:`BadValue` says what to
    write when a cell cannot be read."""
    value = plain(value)
    dtype = spec.schema.get(column, "object")
    if column in spec.money:
        return parse_money(value)
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        return None, None
    reader = _READERS.get(dtype)
    if reader is not None:
        return reader(value), None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):  # a list as a sheet holds it (JSON text)
        try:
            return json.loads(value), None
        except ValueError:
            pass
    return value, None


def _whole(value: Any) -> int:
    if isinstance(value, bool):
        raise BadValue(f"{value!r} is not a whole number")
    if isinstance(value, Mapping) and "id" in value:  # a relation given as the full object
        value = value["id"]
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise BadValue(f"{value!r} is not a whole number") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise BadValue(f"{value!r} is not a whole number")
    return int(number)


def _text(value: Any) -> str | None:
    if isinstance(value, float) and value.is_integer():  # a spreadsheet's number in a text column
        value = int(value)
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    return text or None


_ISO_TIME = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_NORWEGIAN = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})((?: \d{1,2}:\d{2}(?::\d{2})?)?)")


def _time(value: Any, *, day: bool) -> pd.Timestamp:
    what, example = ("date", "2024-03-31") if day else ("time", "2024-03-31 14:30:00")
    if isinstance(value, (pd.Timestamp, datetime, date)):
        stamp_ = pd.Timestamp(value)
    elif isinstance(value, str):
        text = value.strip()
        norwegian = _NORWEGIAN.fullmatch(text)
        if norwegian:
            d, m, y, clock = norwegian.groups()
            text = f"{y}-{int(m):02d}-{int(d):02d}{clock}"
        elif not _ISO_TIME.fullmatch(text):
            raise BadValue(f"{value!r} is not a {what} Dokus can read: write it as {example} (or 31.03.2024)")
        try:
            stamp_ = pd.Timestamp(text)
        except (TypeError, ValueError):
            raise BadValue(f"{value!r} is not a {what}: no such day or time (write e.g. {example})") from None
    else:
        raise BadValue(f"{value!r} is not a {what}: format the cell as a date, or write e.g. {example}")
    if stamp_.tzinfo is not None:
        stamp_ = stamp_.tz_convert(None)
    return stamp_.normalize() if day else stamp_


_TRUE = {"true", "1", "yes", "ja", "sann"}     # SANN/USANN: TRUE/FALSE in a Norwegian LibreOffice
_FALSE = {"false", "0", "no", "nei", "usann"}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    if re.fullmatch(r"[01]\.0*", text):
        return text.startswith("1")
    raise BadValue(f"{value!r} is not yes or no: write TRUE or FALSE (or 1 or 0)")


#: how a cell of each schema type is read (money is read by :func:`parse_money`; other types as they come)
_READERS: dict[str, Any] = {
    "Int64": _whole, "string": _text, "date": lambda v: _time(v, day=True),
    "datetime": lambda v: _time(v, day=False), "boolean": _boolean,
    "decimal": read_amount,
}


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def same(a: Any, b: Any) -> bool:
    """Whether two canonical values are equal (lists and dicts compared as JSON)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (list, dict, tuple)) or isinstance(b, (list, dict, tuple)):
        return _canon(a) == _canon(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return _canon(a) == _canon(b)


def equal(spec: FieldSpec, column: str, a: Any, b: Any) -> bool:
    """Whether two canonical values (of :func:`normalize`) of ``column`` are the same, by the field's type:
    :func:`same`, and text of digits equal to the same digits with leading zeros (``"0042"`` and ``"42"``:
    a spreadsheet drops them)."""
    if same(a, b):
        return True
    if spec.schema.get(column) == "string" and isinstance(a, str) and isinstance(b, str):
        return a.isascii() and b.isascii() and a.isdigit() and b.isdigit() and a.lstrip("0") == b.lstrip("0")
    return False


def keep_zeros(spec: FieldSpec, column: str, old: Any, new: Any, raw: Any) -> Any:
    """The new canonical value of a text column, given back the leading zeros a spreadsheet took: a number
    (``raw``, the cell as read: 151) replacing digits with leading zeros (``old`` ``"0150"``) becomes
    ``"0151"``; anything else is ``new`` as it is (text the analyst typed is never padded)."""
    raw = plain(raw)
    if (spec.schema.get(column) == "string" and isinstance(raw, (int, float)) and not isinstance(raw, bool)
            and isinstance(old, str) and isinstance(new, str) and old.isascii() and old.isdigit()
            and old.startswith("0") and new.isascii() and new.isdigit() and len(new) < len(old)):
        return new.zfill(len(old))
    return new


def to_wire(spec: FieldSpec, column: str, value: Any) -> Any:
    """A canonical value → JSON for Dokus (money "209.48", dates "YYYY-MM-DD", relations by id)."""
    dtype = spec.schema.get(column, "object")
    if value is None:
        return "" if dtype == "string" else None
    if isinstance(value, Decimal):
        return _two(value) if column in spec.money else format(value, "f")
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.strftime("%Y-%m-%d") if dtype == "date" else value.strftime(TIME_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return json.loads(json.dumps(value, default=_json_default))
    return plain(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def check(spec: FieldSpec, column: str, value: Any, *, creating: bool) -> str | None:
    """Checks made before sending (the service checks again and answers with field errors)."""
    if value is None:
        if column in spec.required:
            return f"{column} is required"
        return None
    if spec.schema.get(column) == "Int64" and column.endswith("_id") and value <= 0:
        return f"{column} must be a positive id"
    if column == "email" or column.endswith("_email"):
        text = str(value)
        if "@" not in text or text.startswith("@") or text.endswith("@"):
            return f"{value!r} is not an e-mail address"
    return None


def is_negative_money(spec: FieldSpec, column: str, value: Any) -> bool:
    return column in spec.money and isinstance(value, Decimal) and value < 0


def text_key(value: Any) -> str:
    """A value as text for exact matching (``1234``, ``1234.0`` and ``"1234 "`` all give ``"1234"``)."""
    value = plain(value)
    if is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def filter_text(value: Any) -> str:
    """A filter value as sent on the list URL."""
    value = plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.strftime("%Y-%m-%d") if value == value.replace(hour=0, minute=0, second=0) \
            else value.strftime(TIME_FORMAT)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping) and "id" in value:
        return str(value["id"])
    return text_key(value)


def read_only_message(spec: FieldSpec, column: str) -> str:
    """Why a column cannot be changed, and which one to edit instead."""
    for cols in {**spec.relations, **spec.list_relations}.values():
        if column in cols.values() and cols.get("id") != column:
            target = cols.get("id")
            if target in spec.editable:
                return f"read-only (it follows the relation): edit {target} instead"
            return "read-only: set by Dokus"
    if column in spec.schema:
        return "read-only: set by Dokus, it cannot be changed"
    return f"not a field of a Dokus {spec.label}; editable: {', '.join(spec.editable)}"


def as_id(value: Any) -> int | None:
    """A Dokus id from a table label or cell (None for a new row's label such as ``"new 1"`` or pd.NA)."""
    value = plain(value)
    if is_missing(value) or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)


def stamp(value: Any) -> str:
    """A modification time as the plan keeps it (``YYYY-MM-DD HH:MM:SS``)."""
    value = plain(value)
    if is_missing(value):
        return ""
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.strftime(TIME_FORMAT)
    return str(value)
