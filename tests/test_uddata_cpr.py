"""Unit tests of toolkit.uddata.cpr: the rules analysts rely on for CPR numbers."""

from __future__ import annotations

import datetime as dt

import pytest

from toolkit import ValidationError
from toolkit.core.redact import mask_cpr
from toolkit.uddata import cpr


def test_normalize_accepts_dash_and_spaces_and_keeps_leading_zero():
    assert cpr.normalize(" 010190-1234 ") == "0101901234"
    assert cpr.normalize("010190 1234") == "0101901234"
    # an Excel column that lost the leading zero
    assert cpr.normalize(101901234) == "0101901234"


@pytest.mark.parametrize("value, reason", [
    ("320190-1234", "real date"),      # day 32
    ("011390-1234", "real date"),      # month 13
    ("290201-1234", "real date"),      # 29 Feb 1901 (7th digit 1 → 1900s)
    ("12345", "10"),
    ("01019O1234", "digits"),
    ("", "empty"),
])
def test_validate_rejects_with_a_plain_reason(value, reason):
    check = cpr.validate(value)
    assert not check
    assert reason in check.error


def test_century_from_seventh_digit_and_future_dates_refused():
    # 7th digit 4 with year 30 means 2030: in the future, so not valid (until 2030)
    if dt.date.today() < dt.date(2030, 1, 1):
        assert "future" in cpr.validate("0101304000").error
    assert cpr.validate("0101300000").birth_date == dt.date(1930, 1, 1)
    assert cpr.validate("0101054000").birth_date == dt.date(2005, 1, 1)


def test_modulus11_is_information_only():
    # 0101901234 fails modulus 11 but is a valid CPR number
    assert cpr.modulus11("0101901234") is False
    check = cpr.validate("0101901234")
    assert check.valid and check.modulus11 is False
    assert cpr.validate("2110625629").modulus11 is True


def test_mask_delegates_to_the_one_masking_rule():
    for value in ("0101901234", "010190-1234", "junk", "", None):
        assert cpr.mask(value) == mask_cpr(value)
    assert cpr.mask("0101901234") == "010190-****"


def test_nothing_shows_the_full_number():
    check = cpr.validate("0101901234")
    assert "1234" not in repr(check) and "1234" not in str(check)
    with pytest.raises(ValidationError) as info:
        cpr.normalize("3201901234")
    assert "3201901234" not in str(info.value)
    assert "Uddata+" in str(info.value)


@pytest.mark.parametrize("value", [
    "０１０１９０１２３４",                      # fullwidth digits
    "٠١٠١٩٠١٢٣٤",                              # Arabic-Indic digits
    "۰۱۰۱۹۰۱۲۳۴",                              # extended Arabic-Indic digits
    "010190１２３４",                          # mixed
])
def test_only_ascii_digits_make_a_cpr(value):
    check = cpr.validate(value)
    assert not check and "digits" in check.error
    assert not cpr.is_valid(value) and cpr.modulus11(value) is False
    with pytest.raises(ValidationError):
        cpr.normalize(value)


def test_every_integer_type_is_zero_padded_alike():
    import numpy as np
    import pandas as pd

    values = [101901234, np.int64(101901234), np.int32(101901234), np.uint32(101901234), np.uint64(101901234),
              pd.array([101901234], dtype="Int64")[0], pd.Series([101901234], dtype="Int64").iloc[0],
              np.array(101901234), 101901234.0, np.float64(101901234.0)]
    for value in values:
        assert cpr.normalize(value) == "0101901234", type(value)
        assert cpr.mask(value) == "010190-****", type(value)
    # a column read from a CSV loses the leading zero on about a third of the numbers: all come back
    column = pd.read_csv(__import__("io").StringIO("cpr\n0101901234\n1212121234\n0203041234\n"))["cpr"]
    assert [cpr.normalize(v) for v in column.to_numpy()] == ["0101901234", "1212121234", "0203041234"]
    assert all(cpr.validate(v) for v in column)
    assert not cpr.validate(101901234.5) and not cpr.validate(np.float64("nan"))


def test_a_value_from_a_cpr_column_is_its_raw_number():
    from toolkit.core.frames import frame

    value = frame([{"cpr": "0101901234"}], {"cpr": "cpr"})["cpr"].iloc[0]
    assert repr(value) == "'010190-****'" and str(value) == "0101901234"  # shown masked, the number for code
    assert cpr.normalize(value) == "0101901234" and type(cpr.normalize(value)) is str
    assert cpr.mask(value) == "010190-****"


def test_mask_masks_any_ten_digit_value():
    assert cpr.mask("3201901234") == "320190-****"  # not a real date: still masked, not shown
    assert cpr.mask(9999999999) == "999999-****"
    import numpy as np

    assert cpr.mask(np.int64(101901234)) == "010190-****"  # a numpy integer that lost its leading zero
    assert "1234" not in cpr.mask("０１０１９０１２３４")
