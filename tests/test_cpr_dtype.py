"""The CPR mask travels with the data (its dtype), through every ordinary pandas operation."""

from __future__ import annotations

import io
import json
import pickle
from typing import Callable

import pandas as pd
import pytest

from toolkit.core.cpr_dtype import CprDtype, CprStr, RedactedDtype, raw
from toolkit.core.frames import frame

RAW = ("0101901234", "0202021234", "3112991234")
SHOWN = "010190-****"
STUDENTS = {"cpr": "string", "name": "string", "stamhold": "string"}
AUDIT = {"cpr": "string", "has_image": "boolean", "http_status": "Int64", "error": "string"}


def _students() -> pd.DataFrame:
    return frame([{"cpr": c, "name": f"n{i}", "stamhold": "1a"} for i, c in enumerate(RAW)], STUDENTS,
                 masked=["cpr"])


def _audit() -> pd.DataFrame:
    return frame([{"cpr": c, "has_image": i % 2 == 0, "http_status": 200} for i, c in enumerate(RAW)], AUDIT,
                 masked=["cpr"])


def _plain() -> pd.DataFrame:
    """A frame the analyst read from a CSV: plain text, no toolkit dtype."""
    return pd.DataFrame({"cpr": ["0101901234", "0505051234"], "note": ["x", "y"]})


def _shown(obj: object) -> list[str]:
    """What eyes see of ``obj``: its repr, its str when it is a container (a frame, a list; a str's ``str()`` is
    its text, for code), its HTML and its to_string."""
    out = [repr(obj)] if isinstance(obj, str) else [repr(obj), str(obj)]
    for name in ("_repr_html_", "to_string"):
        method = getattr(obj, name, None)
        if callable(method):
            text = method()
            if text:
                out.append(text)
    return out


OPERATIONS: dict[str, Callable[[pd.DataFrame, pd.DataFrame], object]] = {
    "frame": lambda s, a: s,
    "merge": lambda s, a: s.merge(a, on="cpr"),
    "merge_outer": lambda s, a: s.merge(a, on="cpr", how="outer"),
    "merge_with_plain": lambda s, a: s.merge(_plain(), on="cpr", how="outer"),
    "set_multiindex": lambda s, a: s.set_index(["cpr", "name"]),
    "index": lambda s, a: s.set_index("cpr").index,
    "itertuples": lambda s, a: list(s.itertuples()),
    "join": lambda s, a: s.set_index("cpr").join(a.set_index("cpr")),
    "join_on": lambda s, a: s.join(a.set_index("cpr"), on="cpr"),
    "concat_plain": lambda s, a: pd.concat([s, _plain()]),
    "concat_plain_first": lambda s, a: pd.concat([_plain(), s]),
    "rename": lambda s, a: s.rename(columns={"cpr": "CPR"}),
    "set_index": lambda s, a: s.set_index("cpr"),
    "groupby": lambda s, a: s.groupby("cpr").size(),
    "groupby_agg": lambda s, a: s.groupby(["cpr", "stamhold"]).agg(n=("name", "count")),
    "value_counts": lambda s, a: s["cpr"].value_counts(),
    "unique": lambda s, a: s["cpr"].unique(),
    "DataFrame": lambda s, a: pd.DataFrame(s),
    "Series": lambda s, a: pd.Series(s["cpr"]),
    "head": lambda s, a: s.head(),
    "filter": lambda s, a: s[s["name"] != "n2"],
    "loc": lambda s, a: s.loc[[0, 1], ["cpr", "name"]],
    "iloc_row": lambda s, a: s.iloc[0],
    "sort_values": lambda s, a: s.sort_values("cpr", ascending=False),
    "drop_duplicates": lambda s, a: pd.concat([s, s]).drop_duplicates("cpr"),
    "transpose": lambda s, a: s.T,
    "describe": lambda s, a: s["cpr"].describe(),
    "to_dict": lambda s, a: s.to_dict(),
    "to_dict_records": lambda s, a: s.to_dict("records"),
    "astype_object": lambda s, a: s.astype(object),
    "scalar": lambda s, a: s["cpr"].iloc[0],
    "named_row": lambda s, a: s.set_index("cpr").loc["0101901234"],
    "list_of_scalars": lambda s, a: list(s["cpr"]),
    "identity_map": lambda s, a: s["cpr"].map(lambda c: c),
    "style": lambda s, a: s.style.to_html(),
    "pivot": lambda s, a: s.pivot_table(index="cpr", values="name", aggfunc="count"),
    "melt": lambda s, a: s.melt(id_vars="name"),
    "fillna": lambda s, a: s.fillna("x"),
    "pickle": lambda s, a: pickle.loads(pickle.dumps(s)),
}


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_mask_survives_pandas_operations(name: str) -> None:
    result = OPERATIONS[name](_students(), _audit())
    for text in _shown(result):
        for number in RAW:
            assert number not in text, f"{name} shows a raw CPR"
    assert any(SHOWN in text for text in _shown(result)), f"{name} shows no masked CPR"


def test_raw_values_for_the_code_that_asks() -> None:
    df = _students()
    column = df["cpr"]
    assert str(column.dtype) == "cpr" and isinstance(column.dtype, CprDtype)
    assert column.tolist() == list(RAW) and all(type(v) is str for v in column.tolist())
    assert list(column.to_numpy()) == list(RAW) and all(type(v) is str for v in column.to_numpy())
    assert column.astype(str).tolist() == list(RAW)
    assert column.astype("string").tolist() == list(RAW)
    assert df.to_csv(index=False).splitlines()[1].startswith("0101901234,")
    assert json.loads(df.to_json(orient="records"))[0]["cpr"] == "0101901234"
    first = column.iloc[0]
    assert first == "0101901234" and hash(first) == hash("0101901234") and first + ".jpg" == "0101901234.jpg"
    assert raw(first) == "0101901234" and type(raw(first)) is str and first.raw == "0101901234"
    assert (column == "0101901234").tolist() == [True, False, False]
    assert column.isin(["0202021234"]).tolist() == [False, True, False]
    assert df.set_index("cpr").loc["0202021234", "name"] == "n1"
    assert df.merge(_plain(), on="cpr")["name"].tolist() == ["n0"]  # merge keys compare raw values


def test_missing_values_are_na_and_shown_as_na() -> None:
    df = frame([{"cpr": None}, {"cpr": "0101901234"}], {"cpr": "cpr"})
    assert str(df["cpr"].dtype) == "cpr" and df["cpr"].isna().tolist() == [True, False]
    assert df["cpr"].iloc[0] is pd.NA and "<NA>" in repr(df)


def test_schema_dtype_cpr_and_read_csv_dtype() -> None:
    df = frame([{"cpr": 101901234}], {"cpr": "cpr"})  # an integer that lost its leading zero
    assert df["cpr"].tolist() == ["0101901234"] and SHOWN in repr(df)
    read = pd.read_csv(io.StringIO("cpr\n0101901234\n"), dtype={"cpr": "cpr"})
    assert read["cpr"].tolist() == ["0101901234"] and SHOWN in repr(read)


def test_parquet_round_trip_keeps_dtype_and_values() -> None:
    pytest.importorskip("pyarrow")
    df = frame([{"cpr": "0101901234", "file": "0101901234.jpg"}, {"cpr": None, "file": None}],
               {"cpr": "string", "file": "string"}, masked={"cpr": "cpr", "file": "text"})
    buffer = io.BytesIO()
    df.to_parquet(buffer)
    buffer.seek(0)
    back = pd.read_parquet(buffer)
    assert isinstance(back["cpr"].dtype, CprDtype) and isinstance(back["file"].dtype, RedactedDtype)
    assert back["cpr"].tolist()[0] == "0101901234" and back["cpr"].isna().tolist() == [False, True]
    assert back["file"].tolist()[0] == "0101901234.jpg"
    assert "0101901234" not in repr(back)


def test_text_mask_travels_with_file_names() -> None:
    df = frame([{"file": "0101901234.jpg", "cpr": "0101901234"}], {"file": "string", "cpr": "string"},
               masked={"cpr": "cpr", "file": "text"})
    assert str(df["file"].dtype) == "redacted"
    for result in (pd.DataFrame(df), df.rename(columns={"file": "name"}), df.set_index("file"),
                   df["file"].value_counts(), pd.concat([df, pd.DataFrame({"file": ["x.jpg"]})]), df.iloc[0]):
        for text in _shown(result):
            assert "0101901234" not in text
        assert any("010190-****.jpg" in text for text in _shown(result))
    assert df["file"].tolist() == ["0101901234.jpg"]


def test_scalar_is_the_number_for_code_and_masked_for_eyes() -> None:
    value = _students()["cpr"].iloc[0]
    assert isinstance(value, CprStr) and isinstance(value, str)
    assert str(value) == "0101901234" and type(str(value)) is str and f"{value}" == "0101901234"
    assert f"{value:>12}" == "  0101901234" and "%s" % value == "0101901234" == "{}".format(value)
    assert repr(value) == repr(SHOWN) and value.masked == SHOWN and value._repr_html_() == SHOWN
    assert "0101901234" not in repr([value]) and "0101901234" not in str({"cpr": value})
