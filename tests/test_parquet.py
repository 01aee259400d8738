"""Results larger than memory: the Boknett report streamed page by page into one Parquet file (the same
frame as the in-memory pull, no file under the final name after a failure part-way, a plain message
without pyarrow), and the CPR dtype through Parquet (raw values in the file, masked again when read back;
a reader without the toolkit: tests/test_cpr_idioms.py).

The pulls go through the public ``bk.objects(out=…)`` / ``bk.changes(out=…)``."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pyarrow.parquet as pq
import pytest

import toolkit
from toolkit.boknett.objects import SUMMARY_SCHEMA
from toolkit.core.cpr_dtype import CprDtype
from toolkit.core.errors import TransportError, ValidationError
from toolkit.core.http import RetryPolicy
from toolkit.core.memory import small_pages, thp_disabled
from toolkit.sandbox import Sandbox
from toolkit.sandbox.boknett import BoknettEmulator
from toolkit.testing import broken_request

pytestmark = pytest.mark.integration

FAST = RetryPolicy(base=0.02, cap=0.2, retry_after_cap=0.1)


@pytest.fixture(scope="module")
def psb() -> Iterator[Sandbox]:
    with toolkit.sandbox.start(services=["boknett", "uddata"], seed=5) as sandbox:
        yield sandbox


@pytest.fixture
def emu(psb: Sandbox) -> Iterator[BoknettEmulator]:
    emulator = psb.emulator("boknett")
    assert isinstance(emulator, BoknettEmulator)
    emulator.object_count = 300
    yield emulator
    emulator.object_count = 300


@pytest.fixture
def bk(psb: Sandbox, emu: BoknettEmulator) -> Iterator[Any]:
    client = toolkit.boknett.connect(**psb.credentials("boknett"), retry=FAST)
    yield client
    client.close()


def since_start(emu: BoknettEmulator) -> datetime:
    return datetime.fromtimestamp(emu.now() - 100 * 86400, timezone.utc).replace(microsecond=0)


def objects(bk: Any, **kw: Any) -> Any:
    """``bk.objects(**kw)``, the public method (``out=`` streams to Parquet)."""
    return bk.objects(**kw)


def report_calls(emu: BoknettEmulator) -> int:
    return sum(1 for r in emu.requests if r.path == "/metadata/export/object")


def test_streamed_file_reads_back_as_the_in_memory_frame(bk: Any, emu: BoknettEmulator, tmp_path: Path) -> None:
    after = since_start(emu)
    in_memory = objects(bk, after=after, pagesize=37)
    out = tmp_path / "report.parquet"
    summary = objects(bk, after=after, pagesize=37, out=out)
    # the summary instead of the rows
    assert list(summary.columns) == list(SUMMARY_SCHEMA) and len(summary) == 1
    row = summary.iloc[0]
    assert row["path"] == str(out) and row["rows"] == 300 == len(in_memory)
    assert row["pages"] == in_memory.attrs["pages"] == 9 and row["bytes"] == out.stat().st_size
    assert summary.attrs["next"] == row["next"] and in_memory.attrs["next"]  # (a cursor carries its issue time)
    start, stop = emu.add_objects(7)
    assert objects(bk, next=summary.attrs["next"])["isbn13"].tolist() == [r["isbn13"] for r in
                                                                          emu.records(start, stop)]
    emu.object_count = 300
    assert summary.attrs["kind"] == "assets" and summary.attrs["service"] == "boknett"
    # pandas reads the file back as the same frame: names, order, string dtypes, values (the references are
    # issued per request, so they are compared apart from the rest)
    back = pd.read_parquet(out)
    assert list(back.columns) == list(in_memory.columns)
    assert back.dtypes.tolist() == in_memory.dtypes.tolist() and all(str(t) == "string" for t in back.dtypes)
    fixed = [c for c in in_memory.columns if c != "url"]
    pd.testing.assert_frame_equal(back[fixed], pd.DataFrame(in_memory[fixed]), check_frame_type=False)
    truth = emu.records()
    assert back["vareeier_kode"].tolist() == [r["vareeier_kode"] for r in truth]  # leading zeros kept
    assert back["vareeier_kode"].str.startswith("0").any() and back["fssn"].str.startswith("00").any()
    assert [r.split("id=")[0] for r in back["url"]] == [r["reference"].split("id=")[0] for r in truth]
    assert back["url"].str.contains("%2B|%2F|%3D").any()  # percent-encoding untouched
    # pyarrow reads it as it is: every column text, one row group per page
    meta = pq.ParquetFile(out)
    assert meta.metadata.num_rows == 300 and meta.metadata.num_row_groups == 9
    assert all(str(field.type) in ("string", "large_string") for field in meta.schema_arrow)
    assert pq.read_table(out).column("isbn13").to_pylist() == [r["isbn13"] for r in truth]
    assert [p.name for p in tmp_path.iterdir()] == ["report.parquet"]  # no temporary file left
    assert back.attrs["kind"] == "assets" and back.attrs["service"] == "boknett"  # it says what it holds


@pytest.mark.skipif(thp_disabled() is None, reason="needs Linux prctl (the flag does not exist elsewhere)")
def test_a_streamed_pull_faults_its_pages_in_small_pages_and_restores_the_flag(
        bk: Any, emu: BoknettEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow's allocator takes transparent huge pages: a streamed pull turns them off while it runs (a
    benchmark measured 12 MB of mostly empty huge pages otherwise) and leaves the process as it found it."""
    import toolkit.boknett.objects as module

    during: list[bool | None] = []
    real_parse = module.parse_columns

    def parse(data: bytes) -> Any:
        during.append(thp_disabled())
        return real_parse(data)

    monkeypatch.setattr(module, "parse_columns", parse)
    before = thp_disabled()  # False as a rule; True if whoever started the process set it
    objects(bk, after=since_start(emu), pagesize=100, out=tmp_path / "r.parquet")
    assert during == [True] * 3 and thp_disabled() is before


@pytest.mark.skipif(thp_disabled() is None, reason="needs Linux prctl")
def test_small_pages_nests_and_leaves_a_flag_set_by_someone_else() -> None:
    import ctypes

    prctl = ctypes.CDLL(None).prctl
    before = thp_disabled()
    prctl(41, 0, 0, 0, 0)  # start from the usual state (restored at the end)
    with small_pages():
        with small_pages():
            assert thp_disabled() is True
        assert thp_disabled() is True  # the outer block still runs
    assert thp_disabled() is False
    prctl(41, 1, 0, 0, 0)  # set before: kept after the block
    try:
        with small_pages():
            assert thp_disabled() is True
        assert thp_disabled() is True
    finally:
        prctl(41, int(bool(before)), 0, 0, 0)


def test_duckdb_reads_the_streamed_file_as_it_is(bk: Any, emu: BoknettEmulator, tmp_path: Path) -> None:
    """Another engine than pandas/pyarrow queries the file with no help from the toolkit: text columns, the
    codes exactly as served (leading zeros), one row per object."""
    duckdb = pytest.importorskip("duckdb")  # installed by the test extra; a skip here is reported, not passed
    out = tmp_path / "report.parquet"
    objects(bk, after=since_start(emu), pagesize=64, out=out)
    con = duckdb.connect()
    try:
        kinds = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))",
                                 [str(out)]).fetchall())
        rows = con.execute("SELECT isbn13, vareeier_kode, fssn, type FROM read_parquet(?)", [str(out)]).fetchall()
        by_type = dict(con.execute("SELECT type, count(*) FROM read_parquet(?) GROUP BY type", [str(out)]).fetchall())
    finally:
        con.close()
    assert set(kinds.values()) == {"VARCHAR"} and list(kinds)[:3] == ["isbn13", "ean", "fssn"]
    truth = emu.records()
    assert [r[0] for r in rows] == [t["isbn13"] for t in truth]
    assert [r[1] for r in rows] == [t["vareeier_kode"] for t in truth] and any(r[1].startswith("0") for r in rows)
    assert [r[2] for r in rows] == [t["fssn"] for t in truth]
    assert sum(by_type.values()) == 300 and set(by_type) == {t["type"] for t in truth}


def test_a_pull_with_nothing_new_writes_a_file_with_the_columns(bk: Any, emu: BoknettEmulator,
                                                               tmp_path: Path) -> None:
    first = objects(bk, after=since_start(emu))
    out = tmp_path / "nothing.parquet"
    summary = objects(bk, next=first.attrs["next"], out=out)
    assert summary.iloc[0]["rows"] == 0 and summary.attrs["next"]
    back = pd.read_parquet(out)
    assert len(back) == 0 and list(back.columns) == list(first.columns)
    assert back.dtypes.tolist() == first.dtypes.tolist()


def test_a_failure_part_way_leaves_no_file_under_the_final_name(bk: Any, emu: BoknettEmulator,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "report.parquet"
    with broken_request(bk.aio.http, 4, path_endswith="/metadata/export/object") as calls:
        with pytest.raises(TransportError):
            objects(bk, after=since_start(emu), pagesize=50, out=out)
        assert calls["n"] == 4  # three pages were written to the temporary file before the failure
        assert list(tmp_path.iterdir()) == []
        # an earlier file under that name stays byte for byte
        out.write_bytes(b"the earlier report")
        calls["n"] = 0
        with pytest.raises(TransportError):
            objects(bk, after=since_start(emu), pagesize=50, out=out)
        assert out.read_bytes() == b"the earlier report" and [p.name for p in tmp_path.iterdir()] == [out.name]
    summary = objects(bk, after=since_start(emu), pagesize=50, out=out)
    assert summary.iloc[0]["rows"] == 300 and len(pd.read_parquet(out)) == 300


def test_changes_to_parquet_saves_the_cursor_only_after_the_file(bk: Any, emu: BoknettEmulator,
                                                                tmp_path: Path) -> None:
    state, out = tmp_path / "boknett.cursor", tmp_path / "changes.parquet"
    first = bk.changes(state=state, after=since_start(emu), out=out)
    assert first.iloc[0]["rows"] == 300 and state.read_text().strip() == first.attrs["next"]
    before = state.read_bytes()
    start, stop = emu.add_objects(80)
    with broken_request(bk.aio.http, 2), pytest.raises(TransportError):
        bk.changes(state=state, pagesize=30, out=tmp_path / "next.parquet")
    assert state.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boknett.cursor", "changes.parquet"]
    again = bk.changes(state=state, pagesize=30, out=tmp_path / "next.parquet")
    back = pd.read_parquet(tmp_path / "next.parquet")
    assert again.iloc[0]["rows"] == 80 and back["isbn13"].tolist() == [r["isbn13"] for r in emu.records(start, stop)]
    assert state.read_text().strip() == again.attrs["next"] != before.decode().strip()


def test_without_pyarrow_a_plain_message_and_nothing_sent(bk: Any, emu: BoknettEmulator, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # ``import pyarrow`` raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    calls = report_calls(emu)
    for pull in (lambda: objects(bk, after=since_start(emu), out=tmp_path / "r.parquet"),
                 lambda: bk.changes(state=tmp_path / "s", after=since_start(emu), out=tmp_path / "r.parquet")):
        with pytest.raises(ValidationError) as info:
            pull()
        message = str(info.value)
        assert "pip install toolkit[parquet]" in message and "pyarrow" in message and "Boknett" in message
        assert "Traceback" not in message
    assert report_calls(emu) == calls and list(tmp_path.iterdir()) == []
    # without out= the pull does not need pyarrow
    assert len(objects(bk, after=since_start(emu))) == 300


def test_out_must_be_a_file_path(bk: Any, emu: BoknettEmulator, tmp_path: Path) -> None:
    calls = report_calls(emu)
    with pytest.raises(ValidationError, match="folder"):
        objects(bk, after=since_start(emu), out=tmp_path)
    with pytest.raises(ValidationError, match="not a file path"):
        objects(bk, after=since_start(emu), out=42)
    assert report_calls(emu) == calls


# -- the CPR dtype through Parquet ------------------------------------------------------------------------------
def test_cpr_dtype_round_trips_through_parquet_masked_again(psb: Sandbox, tmp_path: Path) -> None:
    with toolkit.uddata.connect(**psb.credentials("uddata")) as ud:
        students = ud.students()
    assert isinstance(students["cpr"].dtype, CprDtype) and len(students) >= 3
    raw = [str.__str__(v) if v is not pd.NA else None for v in students["cpr"]]
    assert all(v and len(v) == 10 for v in raw)
    path = tmp_path / "students.parquet"
    students.to_parquet(path)
    # the raw numbers are in the file as plain strings (pyarrow, or any Parquet reader, sees the values)
    table = pq.read_table(path)
    assert str(table.schema.field("cpr").type) == "string"
    assert table.column("cpr").to_pylist() == raw
    # read back by pandas with the toolkit imported: the cpr dtype again, values intact, shown masked
    back = pd.read_parquet(path)
    assert isinstance(back["cpr"].dtype, CprDtype)
    assert [str.__str__(v) for v in back["cpr"]] == raw
    assert back["cpr"].tolist() == students["cpr"].tolist()
    shown = repr(back) + back.to_string() + back.to_html() + repr(back["cpr"]) + repr(back["cpr"].iloc[0])
    assert all(v not in shown for v in raw)
    assert f"{raw[0][:6]}-****" in shown
    assert str(back["cpr"].iloc[0]) == f"{back['cpr'].iloc[0]}" == raw[0]  # the number for code
    # the file is plain text to any reader: the dtype's name is a marker beside the column, not its type
    column = {c["name"]: c for c in table.schema.pandas_metadata["columns"]}["cpr"]
    assert column["numpy_type"] == "object" and column["metadata"] == {"toolkit_dtype": "cpr"}
