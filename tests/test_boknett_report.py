"""Boknett's XML report parser: values as served, empty pages keep columns, XML attacks refused."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
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


def _one_by_one(data: bytes) -> dict[str, list]:
    """The report read the plain way, as the oracle of the batched parser: the whole tree, each OBJECT's
    children by local name (the last of a repeated one wins), ``.text`` stripped, blank → None."""
    from lxml import etree

    fields = {"ISBN13": "isbn13", "EAN": "ean", "FSSN": "fssn", "VAREEIER_KODE": "vareeier_kode", "TYPE": "type",
              "REFERENCE": "url"}
    columns: dict[str, list] = {name: [] for name in fields.values()}
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, remove_blank_text=True))
    for obj in root.iter("{*}OBJECT"):
        row = dict.fromkeys(fields.values())
        for kid in obj:
            name = fields.get(etree.QName(kid).localname) if isinstance(kid.tag, str) else None
            if name:
                row[name] = (kid.text.strip() or None) if kid.text is not None else None
        for name, value in row.items():
            columns[name].append(value)
    return columns


ODD_OBJECTS = [  # shapes the batch check must send to the object-by-object path
    lambda o: o.replace("<EAN>", "<EXTRA>x</EXTRA><EAN>", 1),                      # an unknown element
    lambda o: o.replace("<FSSN>", "<ISBN13>repeated</ISBN13><FSSN>", 1),           # a field twice
    lambda o: o.replace("<TYPE>", "<NOTYPE>", 1).replace("</TYPE>", "</NOTYPE>", 1),  # a field missing
    lambda o: o.replace("</ISBN13>", "<EAN>nested</EAN></ISBN13>", 1),             # a field inside a field
    lambda o: o.replace("<EAN>", "<ns:EAN xmlns:ns='urn:x'>", 1).replace("</EAN>", "</ns:EAN>", 1),
    lambda o: o.replace("<EAN>", "<TYPE>first</TYPE><EAN>", 1),                    # out of order, repeated
    lambda o: o.replace("<ISBN13>", "<ISBN13/><ISBN13>", 1),                         # an empty one first
    lambda o: o.replace("<FSSN>", "<FSSN>\u3000 ", 1).replace("<TYPE>", "<TYPE>\u2028", 1),  # odd whitespace
    lambda o: o.replace("<REFERENCE>", "<REFERENCE><![CDATA[ cd ]]>&amp;", 1),
]


@pytest.mark.parametrize("chunk", [700, 4096, None])
def test_batches_and_odd_objects_give_what_one_by_one_gives(monkeypatch: pytest.MonkeyPatch, chunk: int | None
                                                            ) -> None:
    """The parser reads regular objects in batches and anything else alone: a report of 1,500 objects with odd
    ones here and there (every shape of ODD_OBJECTS, a stray element between objects, pieces that end inside
    an object) gives the values the plain one-object-at-a-time reading gives, row for row."""
    from toolkit.boknett import report

    if chunk:
        monkeypatch.setattr(report, "_CHUNK", chunk)
    parts = make_report(1500, seed=4).decode().split("<OBJECT>")
    for k, odd in enumerate(ODD_OBJECTS * 3):
        i = 1 + (k * 97) % (len(parts) - 1)
        parts[i] = odd(parts[i])
    parts[0] = parts[0].replace("<OBJECTS>", "<OBJECTS><FOO><ISBN13>not an object</ISBN13></FOO>")
    data = "<OBJECT>".join(parts).encode()
    expected = _one_by_one(data)
    df = parse_objects(data)
    assert len(df) == 1500
    for name, values in expected.items():
        assert [None if pd.isna(v) else v for v in df[name].tolist()] == values, name
        assert report.parse_columns(data)[name] == values, name
    # the odd shapes did land: a repeated field's last value, a missing one <NA>, the first of two TYPEs lost
    assert (df["isbn13"] == "repeated").sum() == 3 and df["type"].isna().sum() == 3
    assert (df["type"] == "first").sum() == 0 and (df["url"].str.startswith("cd &")).sum() == 3
    assert (df["fssn"].str.startswith("\u3000") | df["fssn"].str.endswith(" ")).sum() == 0


def test_odd_objects_whose_counts_add_up_are_read_alone() -> None:
    """Shapes where every field still appears once per object on average, in one batch of ten objects: one
    object with two ISBN13 and no EAN next to one with two EAN and no ISBN13; and one with two of every field
    next to one with none. Each gives what the one-object-at-a-time reading gives."""
    parts = make_report(10, seed=8).decode().split("<OBJECT>")  # parts[k] is row k - 1
    isbn, ean = re.compile(r"<ISBN13>[^<]*</ISBN13>"), re.compile(r"<EAN>[^<]*</EAN>")
    parts[3] = ean.sub(isbn.search(parts[3]).group(0).replace(">9", ">twice 9"), parts[3])
    parts[4] = isbn.sub(ean.search(parts[4]).group(0).replace(">9", ">twice 9"), parts[4])
    fields = parts[8].rsplit("</OBJECT>", 1)[0]
    parts[7], parts[8] = fields.replace(">9", ">twice 9") + parts[7], "</OBJECT>\n  "
    data = "<OBJECT>".join(parts).encode()
    df = parse_objects(data)
    for name, values in _one_by_one(data).items():
        assert [None if pd.isna(v) else v for v in df[name].tolist()] == values, name
    assert df.loc[2, "isbn13"].startswith("twice") and df.loc[2, "ean"] is pd.NA
    assert df.loc[3, "isbn13"] is pd.NA and df.loc[3, "ean"].startswith("9")  # the later of two EAN wins
    assert not df.loc[6, "isbn13"].startswith("twice") and df.loc[7].isna().all() and len(df) == 10


def test_a_regular_report_is_read_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual report (six fields in order) never goes the slow way, object by object; and after an odd
    object, only its own batch does (about 450 objects of 128 KB), not the rest of the report."""
    from toolkit.boknett import report

    alone: list[int] = []
    read_each = report._read_each
    monkeypatch.setattr(report, "_read_each", lambda events, appends: (alone.append(len(events)),
                                                                        read_each(events, appends)))
    df = parse_objects(make_report(3000, seed=6))
    assert len(df) == 3000 and sum(alone) == 0
    parts = make_report(3000, seed=6).decode().split("<OBJECT>")
    parts[5] = parts[5].replace("<EAN>", "<EXTRA/><EAN>", 1)
    df = parse_objects("<OBJECT>".join(parts).encode())
    assert len(df) == 3000 and 0 < sum(alone) < 1000


def test_the_whitespace_stripped_in_arrow_is_what_str_strip_strips() -> None:
    import sys

    from toolkit.core.frames import _whitespace

    assert not any(chr(c).isspace() for c in range(0x3001, sys.maxunicode + 1))
    assert _whitespace() == "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace())
    legal = "".join(ch for ch in _whitespace() if ch in "\t\n\r" or ch >= " ")  # what XML 1.0 may carry
    text = legal + "x" + legal
    body = f"<OBJECTS><OBJECT><ISBN13>{text}</ISBN13><EAN>{legal}</EAN></OBJECT></OBJECTS>".encode()
    df = parse_objects(body)
    assert df["isbn13"].tolist() == [text.strip()] == ["x"] and df["ean"].isna().all()
