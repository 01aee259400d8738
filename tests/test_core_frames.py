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


def test_times_with_an_offset_become_naive_utc_and_naive_ones_stay() -> None:
    """Services send ``…Z``, ``…+02:00`` (mixed in one answer) or naive times: one column of naive UTC, so
    frames of two services concatenate and compare (before, an offset raised TypeError in frame())."""
    df = frame([{"when": "2026-11-01T10:00:00Z"}, {"when": "2026-06-01T10:00:00+02:00"},
                {"when": "2010-04-26 11:18:35"}, {"when": ""}, {"when": "not a time"}, {"when": None}],
               {"when": "datetime"})
    assert str(df["when"].dtype) == "datetime64[ns]"
    assert df["when"].tolist()[:3] == [pd.Timestamp("2026-11-01 10:00:00"), pd.Timestamp("2026-06-01 08:00:00"),
                                       pd.Timestamp("2010-04-26 11:18:35")]
    assert df["when"].iloc[3:].isna().all()


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
    assert "010190-****" in repr(row) and "010190-****" in row.to_frame()._repr_html_()


def test_to_decimal_is_exact() -> None:
    assert to_decimal("199.50") == Decimal("199.50") and str(to_decimal("199.50")) == "199.50"
    assert to_decimal("1 234,50") == Decimal("1234.50")
    assert to_decimal(0.1) == Decimal("0.1")  # shortest repr, not the binary expansion
    with pytest.raises(ValueError):
        to_decimal("twelve")


def _shows_raw(obj: object) -> bool:
    texts = [repr(obj)] + [t for t in (getattr(obj, "_repr_html_", lambda: "")(),) if t]
    return any("0101901234" in t for t in texts)


def test_cpr_mask_travels_with_the_data_not_the_subclass() -> None:
    df = frame(ROWS, SCHEMA, masked=["cpr"])
    other = frame([{"cpr": "0101901234", "valid": True}], {"cpr": "string", "valid": "boolean"}, masked=["cpr"])
    plain = pd.DataFrame({"cpr": ["0101901234"], "note": ["x"]})
    results = {
        "merge": df.merge(other, on="cpr"), "join": df.set_index("cpr").join(other.set_index("cpr").add_suffix("_r")),
        "concat": pd.concat([df, plain]), "rename": df.rename(columns={"cpr": "CPR"}),
        "set_index": df.set_index("cpr"), "groupby": df.groupby("cpr")["width"].sum(),
        "value_counts": df["cpr"].value_counts(), "unique": df["cpr"].unique(), "DataFrame": pd.DataFrame(df),
        "transpose": df.T, "style": df.style.to_html(),
    }
    for name, result in results.items():
        assert not _shows_raw(result), name
        assert "010190-****" in repr(result), name
    assert df.merge(other, on="cpr")["cpr"].tolist() == ["0101901234"]


def test_masked_text_columns_and_schema_dtype_cpr() -> None:
    df = frame([{"file": "0101901234.jpg", "cpr": "0101901234"}], {"file": "string", "cpr": "cpr"},
               masked={"file": "text"})
    assert str(df["cpr"].dtype) == "cpr" and str(df["file"].dtype) == "redacted"
    plain = pd.DataFrame(df)
    assert "0101901234" not in repr(plain) and "010190-****.jpg" in plain._repr_html_()
    assert plain["file"].tolist() == ["0101901234.jpg"]
    odd = frame([{"file": "3201901234.jpg"}, {"file": "０１０１９０１２３４.jpg"}], {"file": "string"},
                masked={"file": "text"})
    shown = repr(pd.DataFrame(odd)) + pd.DataFrame(odd)._repr_html_()
    assert "3201901234" not in shown and "１２３４" not in shown and "320190-****.jpg" in shown


def test_free_text_shown_in_full_left_aligned_and_wrapped() -> None:
    advice = "the photo is larger than 10 MB: " + "resize it " * 10 + "and upload it again (what to do)"
    df = frame([{"cpr": "0101901234", "message": advice, "error": None}],
               {"cpr": "string", "message": "string", "error": "string"}, masked=["cpr"])
    html = df._repr_html_()
    assert advice in html and "0101901234" not in html and "010190-****" in html
    cell = html[html.index("<td", html.index("</thead>")):]
    message_cell = [c for c in cell.split("<td")[1:] if advice in c][0]
    assert "toolkit-text" in message_cell and "text-align: left" in html and "pre-wrap" in html
    indexed = df.set_index("cpr")._repr_html_()
    assert advice in indexed and "0101901234" not in indexed
    assert [c for c in indexed.split("<td")[1:] if advice in c][0].startswith(' class="toolkit-text')
    # a declared free-text column
    custom = frame([{"hint": advice}], {"hint": "string"}, text=["hint"])
    assert advice in custom._repr_html_() and "toolkit-text" in custom._repr_html_()


def test_masked_view_is_plain_masked_text() -> None:
    from toolkit.core.frames import masked_view

    df = frame([{"cpr": "0101901234", "file": "0101901234.jpg", "width": 1}],
               {"cpr": "string", "file": "string", "width": "Int64"}, masked={"cpr": "cpr", "file": "text"})
    view = masked_view(df.set_index("width"))
    assert view["cpr"].tolist() == ["010190-****"] and view["file"].tolist() == ["010190-****.jpg"]
    assert "0101901234" not in view.to_html() and str(view["cpr"].dtype) == "string"
    assert masked_view(df.set_index("cpr")).index.tolist() == ["010190-****"]


# -- the notebook's tables (IPython's text/html formatter; JupyterLab and VS Code show it) ------------------
LONG_ADVICE = ("You don't have permission to upload to this folder: ask the folder's owner in Mediaflow for "
               "upload rights, or choose another folder (what to do)")


@pytest.fixture
def shell() -> object:
    """A stand-in for the running IPython shell: IPython's own DisplayFormatter with the toolkit's HTML."""
    from types import SimpleNamespace

    from IPython.core.formatters import DisplayFormatter

    from toolkit.core.frames import install_notebook_html

    fake = SimpleNamespace(display_formatter=DisplayFormatter())
    assert install_notebook_html(fake)
    return fake


def shown(shell: object, value: object) -> tuple[str, str]:
    """What the notebook gets for ``value``: its HTML and its text/plain."""
    data, _ = shell.display_formatter.format(value)  # type: ignore[attr-defined]
    return data.get("text/html", ""), data["text/plain"]


def test_series_are_small_tables_without_a_dtype_footer(shell: object) -> None:
    df = frame([{"outcome": "uploaded"}, {"outcome": "uploaded"}, {"outcome": "failed"}], {"outcome": "string"})
    html, plain = shown(shell, df["outcome"].value_counts())
    assert "<table" in html and ">count</th>" in html and ">outcome</th>" in html and ">uploaded</th>" in html
    assert "dtype" not in html and "Name:" not in html
    assert "Name: count, dtype" in plain  # text/plain, str() and to_string() stay pandas' own
    row = frame([{"id": 7, "outcome": "forbidden", "message": LONG_ADVICE}],
                {"id": "Int64", "outcome": "string", "message": "string"}).iloc[0]
    html, plain = shown(shell, row)
    assert LONG_ADVICE.replace("'", "&#x27;") in html or LONG_ADVICE.replace("'", "&#39;") in html \
        or LONG_ADVICE in html  # in full, not "You don't have permi…"
    assert "dtype" not in html and "Name: 0, dtype: object" in plain and plain == repr(row)


def test_every_frame_gets_the_table_and_its_text_stays_pandas_own(shell: object) -> None:
    plain_df = pd.DataFrame({"reason": [LONG_ADVICE, None], "status": ["forbidden", "ok"]})
    html, plain = shown(shell, plain_df)
    assert plain == repr(plain_df) and "this fo..." in plain  # text/plain stays pandas' own (cut at 50)
    assert 'class="toolkit-table-' in html and "overflow-x: auto" in html  # a box that scrolls sideways
    # headers on one line (no column narrower than its header); long text wraps between a floor and a ceiling
    assert "table thead th {white-space: nowrap;}" in html
    assert "min-width: 24ch; max-width: 52ch;" in html and "overflow-wrap: anywhere" in html
    cells = dict(zip(["reason", "status"], html.split("<tbody>")[1].split("<td")[1:3]))
    assert "toolkit-long" in cells["reason"] and LONG_ADVICE.split(":")[0][12:] in cells["reason"]
    assert "toolkit-long" not in cells["status"]  # a short column keeps its own width, unwrapped
    assert "..." not in html.split("<tbody>")[1]  # nothing cut at pandas' max_colwidth
    # each output's style applies to that output only
    assert shown(shell, plain_df)[0].split('class="')[1] != html.split('class="')[1]
    with pd.option_context("display.notebook_repr_html", False):
        assert shown(shell, plain_df)[0] == ""


def test_the_notebook_table_masks_cprs(shell: object) -> None:
    df = frame([{"cpr": "0101901234", "file": "0101901234.jpg", "n": 1},
                {"cpr": "0202901234", "file": "x.jpg", "n": 2}],
               {"cpr": "string", "file": "string", "n": "Int64"}, masked={"cpr": "cpr", "file": "text"})
    plain = pd.DataFrame(df)
    views = {"frame": df, "plain frame": plain, "column": df["cpr"], "row": df.iloc[0],
             "cpr index": plain.set_index("cpr"), "row named by a cpr": df.set_index("cpr").loc["0101901234"],
             "transposed": plain.set_index("cpr").T, "object columns": plain.astype(object).set_index("cpr").T,
             "value_counts": plain["cpr"].value_counts(), "MultiIndex": plain.set_index(["cpr", "file"]),
             "MultiIndex columns": plain.pivot_table(columns=["cpr", "file"], values="n")}
    for name, view in views.items():
        html, text = shown(shell, view)
        assert "0101901234" not in html and "0202901234" not in html, name
        assert "010190-****" in html and "******-" not in html, name  # masked once, not twice
        assert "0101901234" not in text, name


def test_importing_the_toolkit_inside_ipython_installs_the_table() -> None:
    import subprocess
    import sys

    code = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "shell = InteractiveShell.instance()\n"
            "import pandas as pd, toolkit\n"
            "data, _ = shell.display_formatter.format(pd.Series([3], name='count'))\n"
            "print('toolkit-table-' in data['text/html'], 'dtype' in data['text/html'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["True", "False"], done.stderr[-2000:]


def test_the_first_cell_needs_no_pandas_and_pandas_gets_the_toolkit_as_soon_as_it_is_imported() -> None:
    """``import toolkit`` and ``toolkit.sandbox.start()`` (notebook 00's first cell) load neither pandas nor
    numpy nor pyarrow; once pandas is imported, the "cpr" dtype, its mask and the notebook table are there."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "shell = InteractiveShell.instance()\n"
            "import toolkit\n"
            "sb = toolkit.sandbox.start(seed=0, services=['uddata'])\n"
            "print(sorted({'pandas', 'numpy', 'pyarrow'} & set(sys.modules)))\n"
            "sb.stop()\n"
            "import pandas as pd\n"
            "s = pd.Series(['0101901234'], dtype='cpr')\n"
            "data, _ = shell.display_formatter.format(s)\n"
            "print(str(s.dtype), '0101901234' in repr(s) + data['text/html'], 'toolkit-table-' in data['text/html'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == ["[]", "cpr False True"], done.stdout + done.stderr[-2000:]


def _text_raw() -> dict[str, list[object]]:
    return {"code": [" ol\n", "\u3000xx", None, "   ", "os"], "name": ["\u2028 Per Hansen\t", "", "0042 ", None, "a b"]}


TEXT_EXPECTED = {"code": ["ol", "xx", None, None, "os"], "label": ["small", None, None, None, "large"],
                 "name": ["Per Hansen", None, "0042", None, "a b"]}


def _text_values(df: pd.DataFrame) -> dict[str, list[object]]:
    return {c: [None if v is pd.NA else v for v in df[c].tolist()] for c in df.columns}


@pytest.mark.parametrize("storage", ["pyarrow", "python"])
def test_text_frame_strips_blanks_to_na_and_looks_up_codes(storage: str) -> None:
    """Raw texts as a service served them become the frame an analyst filters on: surrounding whitespace
    (also Unicode's) gone, a blank value <NA> (so ``isna()`` finds it), leading zeros kept, labels looked up
    by code (<NA> for an unknown code), the columns in the order asked for and of frame()'s ``string`` dtype —
    with pandas' Arrow-backed string storage and with the Python one alike."""
    pytest.importorskip("pyarrow")
    from toolkit.core.frames import ToolkitFrame, text_frame

    with pd.option_context("mode.string_storage", storage):
        raw = _text_raw()
        df = text_frame(raw, columns=["code", "label", "name"],
                        codes={"label": ("code", {"ol": "small", "os": "large"})})
        template = frame([], dict.fromkeys(["code", "label", "name"], "string"))
    assert isinstance(df, ToolkitFrame) and list(df.columns) == ["code", "label", "name"]
    assert df.dtypes.tolist() == template.dtypes.tolist()
    assert _text_values(df) == TEXT_EXPECTED
    assert df["name"].isna().tolist() == [False, True, False, True, False]
    if storage == "pyarrow":
        assert raw == {}  # each list is let go as soon as its column is built (a lower memory peak)


def test_text_frame_falls_back_to_frame_when_arrow_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """An older pandas/pyarrow that refuses a step half-way gives the same frame the Arrow way gives (the
    lists it had already taken are handed back), not an error and not a half-built frame."""
    pc = pytest.importorskip("pyarrow.compute")
    from toolkit.core.frames import text_frame

    def refuse(*args: object, **kwargs: object) -> None:
        raise NotImplementedError("index_in: not in this pyarrow")

    monkeypatch.setattr(pc, "index_in", refuse)
    with pd.option_context("mode.string_storage", "pyarrow"):
        df = text_frame(_text_raw(), columns=["code", "label", "name"],
                        codes={"label": ("code", {"ol": "small", "os": "large"})})
        template = frame([], dict.fromkeys(["code", "label", "name"], "string"))
    assert _text_values(df) == TEXT_EXPECTED and df.dtypes.tolist() == template.dtypes.tolist()


def test_text_frame_keeps_empty_columns_and_refuses_unknown_names() -> None:
    from toolkit.core.frames import text_frame

    df = text_frame({"a": [], "b": []})
    assert list(df.columns) == ["a", "b"] and len(df) == 0 and str(df["a"].dtype) == "string"
    with pytest.raises(ValueError, match="'c'"):
        text_frame({"a": ["x"]}, columns=["a", "c"])
    with pytest.raises(ValueError, match="'nope'"):
        text_frame({"a": ["x"]}, codes={"label": ("nope", {})})
