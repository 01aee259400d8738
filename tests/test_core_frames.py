"""The DataFrame layer: declared columns and dtypes, empty results keep columns, CPRs masked on display."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from toolkit.core.frames import frame, series, to_decimal

SCHEMA = {"cpr": "string", "valid": "boolean", "width": "Int64", "price": "decimal", "when": "datetime"}
ROWS = [
    {"cpr": "0101901234", "valid": True, "width": 640, "price": "199.50", "when": "2010-04-26 11:18:35"},
    {"cpr": "0202020202", "valid": False, "width": None, "price": None, "when": None, "extra": 1},
]


def test_declared_columns_and_dtypes() -> None:
    df = frame(ROWS, SCHEMA, masked=["cpr"])
    assert list(df.columns) == list(SCHEMA)
    assert str(df["valid"].dtype) == "boolean" and str(df["width"].dtype) == "Int64"
    assert df["price"].iloc[0] == Decimal("199.50")
    assert pd.api.types.is_datetime64_any_dtype(df["when"])
    assert df["cpr"].iloc[1] == "0202020202"  # leading zero kept, text


def test_empty_result_keeps_columns_and_dtypes() -> None:
    df = frame([], SCHEMA)
    assert list(df.columns) == list(SCHEMA) and len(df) == 0
    assert str(df["width"].dtype) == "Int64" and str(df["valid"].dtype) == "boolean"


def test_cpr_masked_on_display_but_raw_in_data() -> None:
    df = frame(ROWS, SCHEMA, masked=["cpr"])
    for shown in (repr(df), df._repr_html_(), df.to_string(), repr(df["cpr"]), repr(df.iloc[0]),
                  repr(df[df["valid"]]), repr(df.head(1)), repr(df.sort_values("cpr"))):
        assert "0101901234" not in shown and "010190-****" in shown
    assert df["cpr"].tolist() == ["0101901234", "0202020202"]
    assert "0101901234" in df.to_csv()


def test_series_row_masks() -> None:
    row = series(ROWS[0], SCHEMA, masked=["cpr"])
    assert row["cpr"] == "0101901234" and "0101901234" not in repr(row)


def test_to_decimal_is_exact() -> None:
    assert to_decimal("199.50") == Decimal("199.50") and str(to_decimal("199.50")) == "199.50"
    assert to_decimal("1 234,50") == Decimal("1234.50")
    assert to_decimal(0.1) == Decimal("0.1")  # shortest repr, not the binary expansion
    with pytest.raises(ValueError):
        to_decimal("twelve")
