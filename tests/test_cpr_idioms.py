"""A CPR value is the number for code and masked for eyes (issue 18).

Every conversion to text that code uses — ``str(v)``, f-strings, ``%s``, ``format``, ``apply(str)``, a path, a
query string, JSON, CSV, Excel, SQL, Parquet — gives the ten digits; ``repr(v)`` and every display of a frame,
a series or a row (text and HTML) show ``010190-****``. The numbers here are synthetic
(:func:`toolkit.sandbox.uddata_data.make_cpr`) or made up; none is a real person's.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import logging
import pickle
import random
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pandas as pd
import pytest

from toolkit.core.cpr_dtype import CprDtype, CprStr, RedactedDtype, RedactedStr
from toolkit.core.frames import frame
from toolkit.core.redact import get_logger, register_secret
from toolkit.sandbox.uddata_data import make_cpr, make_photo
from toolkit.uddata.client import STUDENT_SCHEMA
from toolkit.uddata.upload import MASKED as UPLOAD_MASKED, UPLOAD_SCHEMA

ROOT = Path(__file__).resolve().parent.parent


# -- the roster of the analyst's notebook: 80 students born on 8 days (10 share each birth date) ------------
def _roster(count: int = 80, days: int = 8) -> pd.DataFrame:
    rng = random.Random("test-cpr-idioms")
    born = [dt.date(2001, 9, 1) + dt.timedelta(days=7 * d) for d in range(days)]
    numbers: list[str] = []
    while len(numbers) < count:
        number = make_cpr(rng, born[len(numbers) % days], modulus11=rng.random() < 0.5)
        if number not in numbers:
            numbers.append(number)
    records = [{"cpr": c, "indi_id": str(1000 + i), "fornavn": f"Elev{i}", "efternavn": "Test", "stamhold": "1.a",
                "uddannelse": "STX", "startdato": "2024-08-12", "slutdato": "2027-06-30"}
               for i, c in enumerate(numbers)]
    return frame(records, STUDENT_SCHEMA, masked=["cpr"], kind="records", service="uddata")


def _masked(number: str) -> str:
    return f"{number[:6]}-****"


@pytest.fixture(scope="module")
def students() -> pd.DataFrame:
    return _roster()


@pytest.fixture
def small() -> pd.DataFrame:
    """Three students (two born the same day, one with a leading zero) and a missing number."""
    return frame([{"cpr": c, "fornavn": n, "klasse": k} for c, n, k in
                  [("0109011234", "Anna", 1), ("0109015678", "Bo", 1), ("1204031111", "Cecilie", 2),
                   (None, "Dorte", 2)]],
                 {"cpr": "string", "fornavn": "string", "klasse": "Int64"}, masked=["cpr"])


RAW = ["0109011234", "0109015678", "1204031111"]


def _eyes(obj: Any) -> str:
    """Everything a person sees of ``obj``: repr, print (str of a container), to_string and the notebook HTML."""
    shown = [repr(obj)]
    if not isinstance(obj, str):
        shown.append(str(obj))
    for name in ("to_string", "_repr_html_", "to_html"):
        method = getattr(obj, name, None)
        if callable(method):
            text = method()
            if text:
                shown.append(text)
    return "\n".join(shown)


def _assert_masked(obj: Any, numbers: list[str] = RAW) -> None:
    text = _eyes(obj)
    assert not [n for n in numbers if n in text], f"a raw CPR is shown:\n{text}"
    assert any(_masked(n) in text for n in numbers), f"no masked CPR is shown:\n{text}"


# -- 1. the photos: one file per student, named after the number -------------------------------------------
def test_photos_saved_with_an_fstring_name_one_file_per_student(students: pd.DataFrame, tmp_path: Path) -> None:
    photos = {c: make_photo(i) for i, c in enumerate(students["cpr"].tolist())}
    out = tmp_path / "photos"
    out.mkdir()
    for row in students.itertuples():
        (out / f"{row.cpr}.jpg").write_bytes(photos[row.cpr])
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == len(students) == 80  # before: 80 photos became 79 files (…-****.jpg), and fewer
    assert files == sorted(f"{c}.jpg" for c in photos)
    for number, data in photos.items():
        assert (out / f"{number}.jpg").read_bytes() == data  # each file holds its own student's photo
    # the same with the other idioms of a notebook
    for name in (str(row["cpr"]) + ".jpeg" for _, row in students.head(3).iterrows()):
        assert name[:10] in photos
    assert [f"{c}.jpg" for c in students["cpr"]] == [f"{c}.jpg" for c in photos]


def test_the_upload_results_file_column_opens_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "0109011234.jpg").write_bytes(b"jpeg")
    result = frame([{"file": "0109011234.jpg", "cpr": "0109011234", "outcome": "uploaded", "http_status": 201}],
                   UPLOAD_SCHEMA, masked=UPLOAD_MASKED)
    assert isinstance(result["file"].dtype, RedactedDtype)
    row = next(result.itertuples())
    assert (folder / row.file).read_bytes() == b"jpeg" and str(folder / row.file).endswith("0109011234.jpg")
    assert f"{row.file}" == "0109011234.jpg" and str(result["file"].iloc[0]) == "0109011234.jpg"
    assert repr(row.file) == "'010901-****.jpg'"
    _assert_masked(result, ["0109011234"])


# -- 2. every conversion code uses gives the digits ---------------------------------------------------------
IDIOMS: dict[str, Callable[[pd.DataFrame], list[str]]] = {
    "str": lambda df: [str(v) for v in df["cpr"].dropna()],
    "fstring": lambda df: [f"{v}" for v in df["cpr"].dropna()],
    "fstring_spec": lambda df: [f"{v:>10}" for v in df["cpr"].dropna()],
    "percent": lambda df: ["%s" % v for v in df["cpr"].dropna()],
    "format": lambda df: ["{}".format(v) for v in df["cpr"].dropna()],
    "join": lambda df: ",".join(df["cpr"].dropna()).split(","),
    "apply_str": lambda df: df["cpr"].dropna().apply(str).tolist(),
    "map_fstring": lambda df: [s[:-4] for s in df["cpr"].dropna().map(lambda c: f"{c}.jpg")],
    "path": lambda df: [(Path("out") / f"{v}.jpg").stem for v in df["cpr"].dropna()],
    "itertuples": lambda df: [f"{row.cpr}" for row in df.dropna().itertuples()],
    "iterrows": lambda df: [str(row["cpr"]) for _, row in df.dropna().iterrows()],
    "row": lambda df: [str(df.iloc[i]["cpr"]) for i in range(3)],
    "to_dict": lambda df: [f"{r['cpr']}" for r in df.dropna().to_dict("records")],
    "transpose": lambda df: [str(v) for v in df.T.loc["cpr"].dropna()],
    "urlencode": lambda df: [parse_qs(urlencode({"cpr": v}))["cpr"][0] for v in df["cpr"].dropna()],
    "json": lambda df: [json.loads(json.dumps({"cpr": v}))["cpr"] for v in df["cpr"].dropna()],
    "to_json": lambda df: [r["cpr"] for r in json.loads(df.dropna().to_json(orient="records"))],
    "csv_writer": lambda df: _csv_rows(df),
    "to_csv": lambda df: pd.read_csv(io.StringIO(df.dropna().to_csv(index=False)), dtype=str)["cpr"].tolist(),
    "sqlite3": lambda df: _sqlite(df),
    "to_sql": lambda df: _to_sql(df),
    "tolist": lambda df: df["cpr"].dropna().tolist(),
    "astype_str": lambda df: df["cpr"].dropna().astype(str).tolist(),
}


def _csv_rows(df: pd.DataFrame) -> list[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for v in df["cpr"].dropna():
        writer.writerow([v])
    return [line[0] for line in csv.reader(io.StringIO(buffer.getvalue()))]


def _sqlite(df: pd.DataFrame) -> list[str]:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE s (cpr TEXT)")
    con.executemany("INSERT INTO s VALUES (?)", [(v,) for v in df["cpr"].dropna()])
    con.execute("INSERT INTO s VALUES (:cpr)", {"cpr": df["cpr"].iloc[0]})
    rows = [r[0] for r in con.execute("SELECT cpr FROM s")]
    assert rows[-1] == RAW[0]
    return rows[:-1]


def _to_sql(df: pd.DataFrame) -> list[str]:
    con = sqlite3.connect(":memory:")
    df.to_sql("students", con, index=False)
    return [r[0] for r in con.execute("SELECT cpr FROM students WHERE cpr IS NOT NULL")]


def test_every_conversion_code_uses_gives_the_digits(small: pd.DataFrame) -> None:
    """All idioms at once (json, csv, sqlite3, tolist … gave the digits before too; str(), f-strings, %s,
    format, apply(str), paths, urlencode, rows did not): the message lists each idiom that does not."""
    wrong = {}
    for idiom, conversion in IDIOMS.items():
        got = [v.strip() for v in conversion(small)]
        if got != RAW:
            wrong[idiom] = got
    assert wrong == {}


def test_the_scalar_is_the_number_for_code_and_masked_for_eyes(small: pd.DataFrame) -> None:
    v = small["cpr"].iloc[0]
    assert isinstance(v, CprStr) and v == "0109011234" and hash(v) == hash("0109011234")
    assert str(v) == f"{v}" == "%s" % v == "{}".format(v) == v + "" == "0109011234"
    assert type(str(v)) is str and type(f"{v}") is str
    assert repr(v) == "'010901-****'" and v._repr_html_() == "010901-****" and v.masked == "010901-****"
    assert "%r" % v == "'010901-****'" and repr([v]) == "['010901-****']"
    assert pickle.loads(pickle.dumps(v)) == v and str(pickle.loads(pickle.dumps(v))) == "0109011234"


def test_excel_holds_the_digits_and_reads_back_as_text(small: pd.DataFrame, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    path = tmp_path / "students.xlsx"
    small.to_excel(path, index=False)  # before: the cells held 010901-****
    sheet = openpyxl.load_workbook(path).active
    assert [c.value for c in sheet["A"]] == ["cpr", *RAW, None]
    assert pd.read_excel(path, dtype=str)["cpr"].dropna().tolist() == RAW  # leading zeros kept
    csv_path = tmp_path / "students.csv"
    small.to_csv(csv_path, index=False)
    assert pd.read_csv(csv_path, dtype=str)["cpr"].dropna().tolist() == RAW


def test_a_signed_download_link_is_the_link_for_code_and_masked_for_eyes() -> None:
    from toolkit.mediaflow.downloads import DOWNLOAD_SCHEMA

    url = "https://media.example.test/f/42/original.jpg?expires=1700000000&signature=s1gnedL1nkForTests"
    register_secret(url)
    links = frame([{"id": 42, "format_id": 0, "download_url": url, "http_status": 200}], DOWNLOAD_SCHEMA)
    link = links["download_url"].iloc[0]
    assert isinstance(link, RedactedStr)
    assert str(link) == f"{link}" == url and next(links.itertuples()).download_url == url  # before: '***'
    assert urlsplit(str(link)).query.endswith("signature=s1gnedL1nkForTests")
    assert "s1gnedL1nk" not in repr(link) and "s1gnedL1nk" not in _eyes(links) and "***" in repr(link)


# -- 3. an HTTP query built from a CPR value sends the number --------------------------------------------------
@pytest.fixture
def loopback() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            paths.append(self.path)
            body = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_query_sends_the_digits(small: pd.DataFrame, loopback: tuple[str, list[str]]) -> None:
    from toolkit.core.http import HttpClient

    base, paths = loopback
    v = small["cpr"].iloc[0]

    async def ask() -> None:
        http = HttpClient("uddata", base)
        try:
            await http.request("GET", "/elever", params={"cpr": v}, what="look up a student")
            await http.request("GET", f"/billeder/{v}", what="fetch the photo")
        finally:
            await http.aclose()

    asyncio.run(ask())
    assert [urlsplit(p).query for p in paths][0] == "cpr=0109011234"  # before: cpr=010901-%2A%2A%2A%2A
    assert urlsplit(paths[1]).path == "/billeder/0109011234"


# -- 4. eyes: repr, display, logs ------------------------------------------------------------------------------
def test_repr_and_display_are_masked(small: pd.DataFrame, caplog: pytest.LogCaptureFixture) -> None:
    _assert_masked(small)
    _assert_masked(small["cpr"])
    _assert_masked(small["cpr"].iloc[0], RAW[:1])
    _assert_masked(pd.DataFrame(small))
    v = small["cpr"].iloc[2]
    assert f"{v}" == RAW[2]  # the number for code, in the same breath
    with caplog.at_level(logging.INFO, logger="toolkit.test_cpr_idioms"):
        get_logger("toolkit.test_cpr_idioms").info("photo of %s saved", v)
        get_logger("toolkit.test_cpr_idioms").info("photo of %(cpr)s saved", {"cpr": v})
    assert caplog.messages[-2:] == ["photo of 120403-**** saved"] * 2
    assert RAW[2] not in caplog.text


# -- 5. the .str accessor and + on a cpr (and a redacted) column: plain results --------------------------------
def test_str_methods_work_and_give_plain_results(small: pd.DataFrame) -> None:
    cpr = small["cpr"]
    starts = cpr.str.startswith("01")  # before: AttributeError: 'CprArray' object has no attribute '_str_startswith'
    assert starts.tolist() == [True, True, False, pd.NA] and str(starts.dtype) == "boolean"
    born = cpr.str[:6]
    assert born.tolist()[:3] == ["010901", "010901", "120403"] and str(born.dtype) == "string"
    assert "010901" in born.to_string()  # plain text, no longer a CPR: shown as it is
    assert cpr.str.len().tolist()[:3] == [10, 10, 10] and str(cpr.str.len().dtype) == "Int64"
    assert cpr.str.slice(6).tolist()[:3] == ["1234", "5678", "1111"]
    assert cpr.str.contains("^0109").tolist()[:3] == [True, True, False]
    assert cpr.str.zfill(11).tolist()[0] == "00109011234" and cpr.str.upper().tolist()[0] == "0109011234"
    assert cpr.str.extract(r"^(\d{6})")[0].tolist()[:3] == ["010901", "010901", "120403"]
    assert small[cpr.str.startswith("12").fillna(False)]["fornavn"].tolist() == ["Cecilie"]
    for result in (born, starts, cpr.str.len()):
        assert not isinstance(result.dtype, (CprDtype, RedactedDtype))
    files = frame([{"file": "0109011234.jpg"}], {"file": "string"}, masked={"file": "text"})["file"]
    assert files.str.replace(".jpg", "", regex=False).tolist() == ["0109011234"]
    assert files.str.endswith(".jpg").tolist() == [True] and files.str[:10].tolist() == ["0109011234"]


def test_plus_gives_plain_strings(small: pd.DataFrame) -> None:
    names = small["cpr"] + ".jpg"  # before: TypeError
    assert names.tolist()[:3] == [f"{c}.jpg" for c in RAW] and names.isna().tolist()[3]
    assert str(names.dtype) == "string" and "0109011234.jpg" in names.to_string()
    assert (".jpg" + small["cpr"]).tolist()[0] == ".jpg0109011234"
    assert ("photos/" + small["cpr"] + ".jpg").tolist()[2] == "photos/1204031111.jpg"
    files = frame([{"file": "0109011234.jpg"}], {"file": "string"}, masked={"file": "text"})["file"]
    assert (files + ".bak").tolist() == ["0109011234.jpg.bak"]


# -- 6. Parquet: any reader reads the digits; with the toolkit the column is masked again ---------------------
def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def _write_parquet(small: pd.DataFrame, tmp_path: Path) -> Path:
    pytest.importorskip("pyarrow")
    df = small.assign(file=[f"{c}.jpg" if isinstance(c, str) else None for c in small["cpr"].tolist()])
    df = frame(df, {"cpr": "string", "fornavn": "string", "klasse": "Int64", "file": "string"},
               masked={"cpr": "cpr", "file": "text"})
    path = tmp_path / "students.parquet"
    df.to_parquet(path)
    df.set_index("cpr").to_parquet(tmp_path / "indexed.parquet")
    return path


def test_a_reader_without_the_toolkit_and_duckdb_read_the_digits(small: pd.DataFrame, tmp_path: Path) -> None:
    path = _write_parquet(small, tmp_path)
    code = (
        "import json, sys, pandas as pd\n"
        f"df = pd.read_parquet({str(path)!r})\n"
        f"ix = pd.read_parquet({str(tmp_path / 'indexed.parquet')!r})\n"
        "text = lambda values: [v if isinstance(v, str) else None for v in values]\n"
        "print(json.dumps({'toolkit': sorted(m for m in sys.modules if m.split('.')[0] == 'toolkit'),\n"
        "    'cpr': text(df['cpr']), 'file': text(df['file']), 'index': text(ix.index),\n"
        "    'dtype': str(df['cpr'].dtype), 'shown': repr(df)}))\n"
    )
    seen = json.loads(_run(code))  # before: TypeError: data type 'cpr' not understood
    assert seen["toolkit"] == []  # the subprocess never imported the toolkit
    assert seen["cpr"] == [*RAW, None] and seen["index"] == [*RAW, None]  # text, leading zeros kept
    assert seen["file"] == [f"{c}.jpg" for c in RAW] + [None]
    assert seen["dtype"] in ("str", "object", "string") and "0109011234" in seen["shown"]
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT cpr, file, typeof(cpr) FROM read_parquet(?) WHERE cpr IS NOT NULL",
                           [str(path)]).fetchall()
        born = con.execute("SELECT count(*) FROM read_parquet(?) WHERE cpr LIKE '010901%'", [str(path)]).fetchone()
    finally:
        con.close()
    assert [r[0] for r in rows] == RAW and [r[1] for r in rows] == [f"{c}.jpg" for c in RAW]
    assert {r[2] for r in rows} == {"VARCHAR"} and born == (2,)


def test_after_import_toolkit_alone_the_column_reads_back_masked(small: pd.DataFrame, tmp_path: Path) -> None:
    path = _write_parquet(small, tmp_path)
    code = (
        "import json, sys, pandas as pd\n"
        "import toolkit\n"
        f"df = pd.read_parquet({str(path)!r})\n"
        f"ix = pd.read_parquet({str(tmp_path / 'indexed.parquet')!r})\n"
        "print(json.dumps({'uddata': 'toolkit.uddata' in sys.modules,\n"
        "    'dtypes': [str(df['cpr'].dtype), str(df['file'].dtype), str(ix.index.dtype)],\n"
        "    'cpr': [str(v) for v in df['cpr'].dropna()], 'shown': repr(df) + df.to_html() + repr(ix)}))\n"
    )
    seen = json.loads(_run(code))  # before: TypeError: data type 'cpr' not understood (uddata not imported)
    assert seen["uddata"] is False
    assert seen["dtypes"] == ["cpr", "redacted", "cpr"] and seen["cpr"] == RAW
    assert not [n for n in RAW if n in seen["shown"]] and "010901-****" in seen["shown"]


def test_parquet_in_this_process_round_trips_the_dtype(small: pd.DataFrame, tmp_path: Path) -> None:
    path = _write_parquet(small, tmp_path)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert str(table.schema.field("cpr").type) == "string" and table.column("cpr").to_pylist() == [*RAW, None]
    meta = {c["name"]: c for c in table.schema.pandas_metadata["columns"]}
    assert meta["cpr"]["numpy_type"] == "object" and meta["cpr"]["metadata"] == {"toolkit_dtype": "cpr"}
    back = pd.read_parquet(path)
    assert isinstance(back["cpr"].dtype, CprDtype) and isinstance(back["file"].dtype, RedactedDtype)
    assert [str(v) for v in back["cpr"].dropna()] == RAW and back["cpr"].isna().tolist() == [False] * 3 + [True]
    _assert_masked(back)
    indexed = pd.read_parquet(tmp_path / "indexed.parquet")
    assert isinstance(indexed.index.dtype, CprDtype) and indexed.index.tolist()[:3] == RAW
    _assert_masked(indexed)
    assert isinstance(pd.read_parquet(path, dtype_backend="pyarrow")["cpr"].dtype, CprDtype)
    assert str(pd.read_parquet(path, columns=["fornavn"])["fornavn"].dtype) != "cpr"


# -- 7. the mask holds on display after pandas operations; the values stay the number -------------------------
def _plain() -> pd.DataFrame:
    """A frame read from a CSV: plain text, no toolkit dtype."""
    return pd.DataFrame({"cpr": ["0109011234", "1204031111"], "note": ["x", "y"]})


OPERATIONS: dict[str, Callable[[pd.DataFrame], Any]] = {
    "merge": lambda s: s.merge(s[["cpr", "klasse"]], on="cpr"),
    "merge_plain": lambda s: s.merge(_plain(), on="cpr", how="left"),
    "join": lambda s: s.set_index("cpr").join(_plain().astype({"cpr": "cpr"}).set_index("cpr")),
    "concat_plain": lambda s: pd.concat([s, _plain()], ignore_index=True),
    "concat_plain_first": lambda s: pd.concat([_plain(), s], ignore_index=True),
    "rename": lambda s: s.rename(columns={"cpr": "CPR"}),
    "set_index": lambda s: s.set_index("cpr"),
    "set_multiindex": lambda s: s.set_index(["cpr", "fornavn"]),
    "groupby": lambda s: s.groupby("cpr").size(),
    "groupby_agg": lambda s: s.groupby(["klasse", "cpr"]).agg(n=("fornavn", "count")),
    "value_counts": lambda s: s["cpr"].value_counts(),
    "unique": lambda s: s["cpr"].unique(),
    "pivot_table": lambda s: s.pivot_table(index="cpr", columns="klasse", values="fornavn", aggfunc="count"),
    "melt": lambda s: s.melt(id_vars="fornavn", value_vars=["cpr"]),
    "pickle": lambda s: pickle.loads(pickle.dumps(s)),
    "row": lambda s: s.iloc[0],
    "named_row": lambda s: s.set_index("cpr").loc["0109011234"],
    "transpose": lambda s: s.T,
    "astype_object": lambda s: s.astype(object),
    "describe": lambda s: s["cpr"].describe(),
    "to_dict": lambda s: s.to_dict(),
    "to_dict_records": lambda s: s.to_dict("records"),
    "itertuples": lambda s: list(s.itertuples()),
    "list": lambda s: list(s["cpr"]),
    "style": lambda s: s.style,
}


def _values(obj: Any) -> list[Any]:
    """The CPR values held in an operation's result, as code takes them out (tuples of a MultiIndex opened)."""
    return [w for v in _held(obj) for w in (v if isinstance(v, tuple) else (v,))]


def _held(obj: Any) -> list[Any]:
    if isinstance(obj, pd.DataFrame):
        out = [v for column in obj.columns for v in obj[column].tolist()] + list(obj.index) + list(obj.columns)
        return out + [v for column in obj.columns for v in obj[column]]
    if isinstance(obj, (pd.Series, pd.Index)):
        return [*obj, *obj.index, obj.name] if isinstance(obj, pd.Series) else list(obj)
    if isinstance(obj, dict):
        return [w for v in obj.values() for w in (v.values() if isinstance(v, dict) else [v])]
    if isinstance(obj, list):
        return [w for v in obj for w in (v.values() if isinstance(v, dict) else v if isinstance(v, tuple) else [v])]
    if hasattr(obj, "data") and isinstance(obj.data, pd.DataFrame):  # a Styler
        return _held(obj.data)
    return list(obj)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_the_mask_holds_on_display_and_code_gets_the_number(small: pd.DataFrame, name: str) -> None:
    result = OPERATIONS[name](small)
    shown = result.to_html() if name == "style" else result
    text = _eyes(shown)
    assert not [n for n in RAW if n in text], f"{name} shows a raw CPR:\n{text}"
    assert "010901-****" in text, f"{name} shows no masked CPR:\n{text}"
    numbers = {f"{v}" for v in _values(result) if isinstance(v, str) and v[:6].isdigit()} | \
        {str(v) for v in _values(result) if isinstance(v, str) and v[:6].isdigit()}
    assert numbers and numbers <= set(RAW), f"{name}: code got {numbers}"  # before: {'010901-****', …}


def test_a_roster_shows_masked_in_the_notebook(students: pd.DataFrame) -> None:
    numbers = students["cpr"].tolist()
    for shown in (students, students.head(3).T, students.iloc[5], students.set_index("cpr"), students.describe()):
        text = _eyes(shown)
        assert not [n for n in numbers if n in text]
    assert students.iloc[5]["cpr"] == numbers[5] and f"{students.iloc[5]['cpr']}" == numbers[5]
