"""Danish CPR numbers: normalise, validate and mask (built on python-stdnum's ``stdnum.dk.cpr``).

    >>> from toolkit.uddata import cpr
    >>> cpr.normalize(" 010190-1234 ")
    '0101901234'
    >>> check = cpr.validate("0101901234")
    >>> bool(check), check.error          # a CprCheck is truthy when the number is valid
    (True, None)
    >>> cpr.mask("0101901234")
    '010190-****'

Rules (the same everywhere in the toolkit):

* a CPR number is **text** of 10 ASCII digits (``DDMMYYSSSS``; ``DDMMYY-SSSS`` and spaces are accepted
  and removed); fullwidth (``０１０１９０１２３４``) or Arabic-Indic digits are not a CPR number;
* a number given as an integer (Python, numpy, pandas nullable ``Int64``) or a whole float lost its
  leading zero and is zero-padded to 10 digits, alike for every integer type; leading zeros are kept;
* the first six digits are a real date, the century comes from the 7th digit (stdnum's rule), and the
  date is not in the future;
* modulus 11 is **only informational** (``CprCheck.modulus11``): numbers issued since 2007 often fail it,
  so a number is never rejected for that.

``mask`` delegates to :func:`toolkit.core.redact.mask_cpr` (one masking rule for the whole toolkit).

A CPR value is the number for code and masked for eyes: a value taken out of a ``cpr`` column
(:class:`toolkit.core.cpr_dtype.CprStr`) converts to its ten digits (``str(v)``, ``f"{v}.jpg"``) and shows
``010190-****`` only where a person looks (``repr``, the frame's display, logs). Every function here takes
it as the number; ``mask(v)`` is the text for a label.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from decimal import Decimal as _Decimal
from typing import Any

import numpy as _np

from stdnum.dk import cpr as _stdcpr
from stdnum.exceptions import ValidationError as _StdnumError

from ..core.errors import ValidationError
from ..core.redact import mask_cpr

__all__ = ["CprCheck", "normalize", "validate", "is_valid", "mask", "modulus11", "birth_date", "as_text"]

_SEPARATORS = re.compile(r"[\s\-]")


@dataclass(frozen=True)
class CprCheck:
    """The outcome of :func:`validate`. Truthy when the number is valid; ``repr`` never shows it.

    ``cpr`` is the normalised 10-digit text (or the stripped input when it could not be normalised),
    ``error`` a plain reason when invalid, ``birth_date`` the date encoded in a valid number and
    ``modulus11`` whether the old check digit rule holds (information only, never a reason to reject).
    """

    cpr: str
    valid: bool
    error: str | None = None
    birth_date: _dt.date | None = None
    modulus11: bool | None = None

    def __bool__(self) -> bool:
        return self.valid

    def __repr__(self) -> str:
        state = "valid" if self.valid else f"invalid: {self.error}"
        return f"CprCheck({mask(self.cpr)!r}, {state})"

    __str__ = __repr__


def as_text(value: Any) -> str:
    """Text of a CPR given as str, or as an integer/float that lost its leading zero (Excel, CSV).

    Every integer type is padded alike: Python ``int``, numpy ``int64``/``int32``/``uint…``, the scalars of
    pandas' nullable ``Int64`` and 0-d numpy arrays; a float counts when it is a whole number. A value taken
    out of a ``cpr`` column (:class:`toolkit.core.cpr_dtype.CprStr`) gives its raw text, not its display.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return str.__str__(value)  # the raw text of a str subclass (a masked CprStr), never its display
    if isinstance(value, (bool, _np.bool_)):
        return str(value)
    if isinstance(value, _np.ndarray) and value.ndim == 0:
        return as_text(value.item())
    if isinstance(value, (int, _np.integer)):
        number = int(value)
        return str(number).zfill(10) if 0 <= number < 10**10 else str(number)
    if isinstance(value, (float, _np.floating, _Decimal)):
        if value != value:  # NaN
            return ""
        try:
            whole = value == int(value)
        except (OverflowError, ValueError):  # inf
            return str(value)
        if whole and 0 <= value < 10**10:
            return str(int(value)).zfill(10)
        return str(value)
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def _digits(text: str) -> bool:
    """Only the ASCII digits 0-9 make a CPR (``str.isdigit`` also accepts fullwidth and Arabic-Indic ones)."""
    return text.isascii() and text.isdigit()


def _compact(value: Any) -> str:
    return _SEPARATORS.sub("", as_text(value).strip())


def validate(value: Any) -> CprCheck:
    """Check one CPR number; returns a :class:`CprCheck` (never raises for bad input)."""
    text = _compact(value)
    if not text:
        return CprCheck(text, False, "empty: no CPR number given")
    if not _digits(text):
        if any(ch.isdigit() for ch in text) and all(ch.isdigit() for ch in text):
            return CprCheck(text, False, "not a CPR number: only the digits 0-9 are allowed (this one is written "
                                         "with other digits, e.g. fullwidth or Arabic-Indic ones)")
        return CprCheck(text, False, "not a CPR number: only digits (DDMMYYSSSS or DDMMYY-SSSS) are allowed")
    if len(text) != 10:
        return CprCheck(text, False, f"not a CPR number: it has {len(text)} digits, a CPR number has 10")
    try:
        born = _stdcpr.get_birth_date(text)
    except _StdnumError:
        return CprCheck(text, False, "not a CPR number: the first six digits are not a real date (DDMMYY)")
    if born > _dt.date.today():
        return CprCheck(text, False, "not a CPR number: the birth date it encodes is in the future")
    try:
        _stdcpr.validate(text)
    except _StdnumError as exc:  # pragma: no cover - the checks above cover stdnum's rules
        return CprCheck(text, False, f"not a CPR number: {exc}")
    return CprCheck(text, True, None, born, _stdcpr.checksum(text) == 0)


def is_valid(value: Any) -> bool:
    """``True`` when :func:`validate` accepts the number."""
    return validate(value).valid


def normalize(value: Any) -> str:
    """The 10-digit text of a valid CPR number; raises :class:`toolkit.ValidationError` otherwise."""
    check = validate(value)
    if not check.valid:
        raise ValidationError(f"{mask(check.cpr)} is {check.error}", service="uddata",
                              hint="Give the CPR number as 10 digits (DDMMYYSSSS or DDMMYY-SSSS), as text.")
    return check.cpr


def mask(value: Any) -> str:
    """The display form of a CPR number: ``010190-****`` (delegates to ``toolkit.core.redact.mask_cpr``)."""
    return mask_cpr(as_text(value))


def modulus11(value: Any) -> bool:
    """Whether the old modulus 11 check holds (information only; never a reason to reject)."""
    text = _compact(value)
    return len(text) == 10 and _digits(text) and _stdcpr.checksum(text) == 0


def birth_date(value: Any) -> _dt.date:
    """The birth date of a valid CPR number (raises :class:`toolkit.ValidationError` when invalid)."""
    check = validate(value)
    if not check.valid or check.birth_date is None:
        normalize(value)  # raises with the reason
    assert check.birth_date is not None
    return check.birth_date
