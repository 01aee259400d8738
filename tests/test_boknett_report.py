"""Boknett's XML report parser: values as served, empty pages keep columns, XML attacks refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import toolkit
from toolkit.boknett.report import OBJECT_SCHEMA, TYPE_NAMES, parse_errors, parse_objects
from toolkit.core.frames import frame
from toolkit.sandbox.boknett_data import make_report

REPORT = b"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<OBJECTS>
  <OBJECT>
    <ISBN13>9788202437930</ISBN13>
    <EAN>9788202437930</EAN>
    <FSSN>  007157628 </FSSN>
    <VAREEIER_KODE>0008</VAREEIER_KODE>
    <TYPE>os</TYPE>
    <REFERENCE>https://api.boknett.no/metadata/export/object/download?id=xpgZ1kLI%2Fab%2B%3D%3D</REFERENCE>
  </OBJECT>
  <OBJECT>
    <EAN>9790000000001</EAN>
    <ISBN13>9790000000001</ISBN13>
    <TYPE>ly</TYPE>
    <VAREEIER_KODE>0017</VAREEIER_KODE>
    <REFERENCE>https://api.boknett.no/metadata/export/object/download?id=b&amp;c</REFERENCE>
    <EXTRA>ignored</EXTRA>
  </OBJECT>
</OBJECTS>
"""


def test_values_are_text_exactly_as_served() -> None:
    df = parse_objects(REPORT)
    assert list(df.columns) == list(OBJECT_SCHEMA)
    assert all(str(t) == "string" for t in df.dtypes)
    first, second = df.iloc[0], df.iloc[1]
    assert first["vareeier_kode"] == "0008" and first["fssn"] == "007157628"  # leading zeros, whitespace stripped
    assert first["isbn13"] == "9788202437930" and first["type_name"] == "large cover"
    assert first["url"].endswith("id=xpgZ1kLI%2Fab%2B%3D%3D")  # percent-encoding untouched
    # elements in another order, one missing, an unknown one
    assert second["isbn13"] == "9790000000001" and second["vareeier_kode"] == "0017"
    assert second["type_name"] == TYPE_NAMES["ly"] == "audio file"
    assert second["url"].endswith("id=b&c")
    assert second.isna()["fssn"]


def _documented(lead: str) -> list[str]:
    """The column list docs/boknett.md gives after ``lead`` (a backquoted, comma-separated list)."""
    import re

    text = (Path(__file__).resolve().parent.parent / "docs" / "boknett.md").read_text(encoding="utf-8")
    found = re.search(re.escape(lead) + r"\s+`([^`]+)`", text)
    assert found, f"docs/boknett.md no longer says {lead!r}"
    return [c.strip() for c in found.group(1).split(",")]


def test_the_docs_list_the_columns_the_frames_have() -> None:
    """docs/boknett.md and the frames agree: the object report's seven columns (the link once, as ``url``)
    and the download rows' columns, in order."""
    from toolkit.boknett.downloads import DOWNLOAD_SCHEMA

    df = parse_objects(REPORT)
    assert _documented("Result: a DataFrame with") == list(df.columns) == list(OBJECT_SCHEMA)
    assert len(df.columns) == 7 and "reference" not in df.columns
    assert _documented("One row per input object, in input order:") == list(DOWNLOAD_SCHEMA)


def test_an_isbn13_missing_empty_or_blank_is_na_alike_and_the_ean_stays() -> None:
    """php-sdk-met-api's DefaultDownloadFileFormatter names a file by the EAN when ISBN13 is missing or empty
    (its v1.0.0 fix): the report can carry such objects. Every shape of "no ISBN-13" lands as <NA> in the one
    string column (a blank element was "" before), next to text ISBNs."""
    def obj(isbn: str) -> str:
        return (f"<OBJECT>{isbn}<EAN>9788202437930</EAN><FSSN>007157628</FSSN><VAREEIER_KODE>0008</VAREEIER_KODE>"
                "<TYPE>ol</TYPE><REFERENCE>https://api.boknett.no/metadata/export/object/download?id=a</REFERENCE>"
                "</OBJECT>")

    shapes = ["", "<ISBN13/>", "<ISBN13></ISBN13>", "<ISBN13>  \n </ISBN13>", "<ISBN13>9788202437930</ISBN13>"]
    body = ("<OBJECTS>" + "".join(obj(x) for x in shapes) + "</OBJECTS>").encode()
    df = parse_objects(body)
    assert all(str(t) == "string" for t in df.dtypes)
    assert df["isbn13"].isna().tolist() == [True, True, True, True, False]
    assert df["isbn13"].iloc[4] == "9788202437930" and (df["ean"] == "9788202437930").all()
    blank_fssn = parse_objects(b"<OBJECTS>" + obj("").replace("007157628", " ").encode() + b"</OBJECTS>")
    assert blank_fssn["fssn"].isna().all() and blank_fssn["vareeier_kode"].tolist() == ["0008"]


def test_same_frame_as_the_frame_layer_gives() -> None:
    data = make_report(50, seed=3)
    df = parse_objects(data)
    assert len(df) == 50 and isinstance(df, toolkit.core.frames.ToolkitFrame)
    expected = frame(df.astype(object).to_dict("records"), OBJECT_SCHEMA)
    assert df.dtypes.tolist() == expected.dtypes.tolist()
    assert df.equals(expected)
    assert df["vareeier_kode"].str.fullmatch(r"\d{4}").all()
    assert df["vareeier_kode"].str.startswith("0").any() and df["fssn"].str.startswith("00").any()
    assert set(df["type"]) <= set(TYPE_NAMES)


@pytest.mark.parametrize("body", [b"<OBJECTS/>", b'<?xml version="1.0"?>\n<OBJECTS>\n</OBJECTS>\n'])
def test_empty_page_keeps_its_columns(body: bytes) -> None:
    df = parse_objects(body)
    assert len(df) == 0
    assert list(df.columns) == list(OBJECT_SCHEMA)
    assert all(str(t) == "string" for t in df.dtypes)


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE OBJECTS [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<OBJECTS><OBJECT><ISBN13>&lol9;</ISBN13><TYPE>os</TYPE></OBJECT></OBJECTS>
"""


def _xxe(path: Path, encoding: str = "utf-8") -> bytes:
    text = (f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n'
            f'<!DOCTYPE OBJECTS [<!ENTITY xxe SYSTEM "file://{path}">]>\n'
            "<OBJECTS><OBJECT><ISBN13>&xxe;</ISBN13><EAN>1</EAN><TYPE>&xxe;</TYPE>"
            "<REFERENCE>&xxe;</REFERENCE></OBJECT></OBJECTS>\n")
    return text.encode(encoding)


def test_entity_bomb_refused_quickly() -> None:
    start = time.monotonic()
    with pytest.raises(toolkit.ValidationError) as info:
        parse_objects(BOMB)
    assert time.monotonic() - start < 5  # generous: the check is a byte scan, the refusal is immediate
    assert info.value.service == "boknett"
    assert "boknett" in str(info.value).lower() and "entity declarations" in str(info.value)
    with pytest.raises(toolkit.ValidationError, match="entity declarations"):
        parse_errors(BOMB.replace(b"OBJECTS", b"errors"))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_external_entity_never_reads_the_local_file(tmp_path: Path, encoding: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("LOCAL-FILE-CONTENT-4711")
    with pytest.raises(toolkit.ValidationError) as info:
        parse_objects(_xxe(secret, encoding))
    assert "LOCAL-FILE-CONTENT-4711" not in str(info.value) and "entity declarations" in str(info.value)
    with pytest.raises(toolkit.ValidationError):
        parse_errors(_xxe(secret, encoding).replace("OBJECTS".encode(encoding), "errors".encode(encoding)))


def test_second_line_of_defence_never_expands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even with the byte scan switched off, lxml neither expands nor fetches, and the DOCTYPE is refused."""
    from toolkit.boknett import report

    secret = tmp_path / "secret.txt"
    secret.write_text("LOCAL-FILE-CONTENT-4711")
    monkeypatch.setattr(report, "_refuse_entities", lambda data: None)
    for data in (_xxe(secret), BOMB):
        with pytest.raises(toolkit.ValidationError, match="entity declarations"):
            parse_objects(data)
    external = b'<!DOCTYPE OBJECTS SYSTEM "file://' + str(secret).encode() + b'"><OBJECTS/>'
    with pytest.raises(toolkit.ValidationError, match="external DTD"):
        parse_objects(external)


def test_undeclared_entity_and_malformed_xml_name_boknett() -> None:
    for data in (b"<OBJECTS><OBJECT><ISBN13>978</ISBN13></OBJECTS>", b"<OBJECTS><OBJECT><ISBN13>&x;</ISBN13>"
                 b"</OBJECT></OBJECTS>", b"not xml at all", b""):
        with pytest.raises(toolkit.ValidationError) as info:
            parse_objects(data)
        assert "Boknett" in str(info.value) and info.value.service == "boknett"
    with pytest.raises(toolkit.ValidationError, match="not well-formed"):
        parse_objects(b"<OBJECTS><OBJECT><ISBN13>978</ISBN13></OBJECTS>")


def test_an_error_answer_is_not_a_report() -> None:
    body = b"<errors><error><code>DATE_SKEW</code><message>too far</message></error></errors>"
    with pytest.raises(toolkit.ValidationError, match="not an object report"):
        parse_objects(body)


def test_parse_errors() -> None:
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<errors><error><code> DATE_SKEW </code>'
            b"<message>the Date header differs &amp; more</message><extra>x</extra></error>"
            b"<error><code>SECOND</code><message/></error></errors>")
    assert parse_errors(body) == [("DATE_SKEW", "the Date header differs & more"), ("SECOND", "")]
    assert parse_errors(b"<errors/>") == []
    with pytest.raises(toolkit.ValidationError, match="Boknett"):
        parse_errors(b"<errors><error>")
