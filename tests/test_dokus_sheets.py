"""Dokus products to a spreadsheet and back (toolkit.dokus.sheets), over loopback against the emulator.

What a spreadsheet does to values on the way (prices as floats, 0042 as 42, ids as 7.0, dates as datetimes,
empty cells as NaN, whitespace, column order, re-sorted rows) must never be a change in the plan; only the
analyst's edits are. The round trips go through a real spreadsheet program, LibreOffice headless
(``soffice``; Debian package ``libreoffice-calc-nogui``): missing, those tests FAIL under CI (``CI=true``) and
are skipped with the reason elsewhere, as the browser tests are.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

import openpyxl
import pandas as pd
import pytest

import toolkit
from toolkit.dokus.sheets import read_sheet, write_sheet
from toolkit.sandbox import Sandbox

pytestmark = pytest.mark.integration

SOFFICE = os.environ.get("TOOLKIT_SOFFICE", "soffice")
#: LibreOffice's CSV filter options: comma, double quote, UTF-8 (76), from line 1 (what an analyst picks)
CSV_UTF8 = "44,34,76,1"
COLUMNS = ["id", "name", "comment", "price", "product_number", "default_vat_class_id", "modification_time"]
PLAN_COLUMNS = ["id", "field", "old", "new", "action", "message", "note", "row"]


def soffice_or_skip() -> str:
    """The LibreOffice binary. Missing: FAIL under CI (``CI=true``), otherwise skip with the reason (also as a
    warning, so pytest's summary shows why)."""
    found = shutil.which(SOFFICE)
    if found:
        return found
    message = (f"LibreOffice round trip not run: {SOFFICE} is not installed (Debian: apt-get install "
               f"libreoffice-calc-nogui)")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: the LibreOffice round trip is required)", pytrace=False)
    warnings.warn(message, pytest.PytestWarning, stacklevel=2)
    pytest.skip(message)
    raise AssertionError("unreachable")


def libreoffice(source: Path, to: str, tmp_path: Path, *, infilter: str | None = None) -> Path:
    """``source`` opened and saved by LibreOffice as ``to`` (``xlsx``, ``csv`` or ``csv:…`` with options),
    as an analyst's Save does; a fresh profile under ``tmp_path``, and a deadline."""
    binary = soffice_or_skip()
    out = tmp_path / f"lo-{to.split(':')[0]}-{source.stem}-{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    profile = (tmp_path / "lo-profile").as_uri()
    command = [binary, f"-env:UserInstallation={profile}", "--headless", "--norestore"]
    if infilter:
        command.append(f"--infilter={infilter}")
    command += ["--convert-to", to, "--outdir", str(out), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "HOME": str(tmp_path)})
    suffix = "." + to.split(":")[0]
    made = out / (source.stem + suffix)
    assert made.is_file(), f"LibreOffice made no {made.name}: {done.stdout} {done.stderr}"
    return made


@pytest.fixture
def dks(make_sandbox: Any) -> Sandbox:
    return make_sandbox(services=["dokus"], seed=5)


@pytest.fixture
def products(dk: Any) -> pd.DataFrame:
    """All products, among them product numbers with leading zeros and ones of digits only."""
    dk.products.create(name="Kaffefilter nr. 4", price="42.00", product_number="0042", comment="Lagervare")
    dk.products.create(name="Fyrstikker", price="19.90", product_number="00123")
    dk.products.create(name="Gavekort", price="500.00", product_number="1234", comment="Digitalt")
    table = dk.products.list()
    assert {"0042", "00123", "1234"} <= set(table["product_number"])
    return table


def plan_of(dk: Any, original: pd.DataFrame, edited: pd.DataFrame) -> pd.DataFrame:
    return dk.products.diff(original, edited)


def changes(plan: pd.DataFrame) -> set[tuple[int, str, Any]]:
    return {(int(r["id"]), r["field"], r["new"]) for _, r in plan.iterrows()}


def same_plan(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert a[PLAN_COLUMNS].astype(object).to_dict("records") == b[PLAN_COLUMNS].astype(object).to_dict("records")


# -- export ---------------------------------------------------------------------------------------------------
def test_export_writes_the_editable_columns_with_text_cells_and_reads_back_unchanged(
        dk: Any, products: pd.DataFrame, tmp_path: Path) -> None:
    xlsx, csv = tmp_path / "products.xlsx", tmp_path / "products.csv"
    listed = dk.products.export(xlsx)
    assert listed.index.tolist() == products.index.tolist() and "written to products.xlsx" in listed.summary
    write_sheet(products, csv)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["products.csv", "products.xlsx"]  # no temporaries left
    sheet = openpyxl.load_workbook(xlsx).active
    assert [c.value for c in sheet[1]] == COLUMNS
    rows = {r[0].value: r for r in sheet.iter_rows(min_row=2)}
    assert len(rows) == len(products)
    zero = int(products.index[products["product_number"] == "0042"][0])
    number_cell, price_cell = rows[zero][4], rows[zero][3]
    assert number_cell.value == "0042" and number_cell.data_type == "s" and number_cell.number_format == "@"
    assert rows[int(products.index[products["product_number"] == "1234"][0])][4].data_type == "s"
    assert price_cell.data_type == "n" and price_cell.number_format == "0.00" and price_cell.value == 42
    stamp_cell = rows[zero][6]  # read-only, last, as text: a spreadsheet must not make it a date of its own
    assert stamp_cell.data_type == "s" and stamp_cell.value == products.loc[zero, "modification_time"].strftime(
        "%Y-%m-%d %H:%M:%S")
    text = csv.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == ",".join(COLUMNS) and ",0042," in text and ",42.00," in text
    for path in (xlsx, csv):
        back = read_sheet(path)
        assert sorted(back.index.tolist()) == sorted(products.index.tolist())
        assert plan_of(dk, products, back).empty, path.name
    assert plan_of(dk, products, pd.read_excel(xlsx)).empty


def test_a_name_that_looks_like_a_formula_stays_text(dk: Any, products: pd.DataFrame, tmp_path: Path) -> None:
    pid = int(products.index[0])
    dk.products.update(pid, name="=SUM(A1:A3)")
    original = dk.products.export(tmp_path / "p.xlsx")
    cell = next(r[1] for r in openpyxl.load_workbook(tmp_path / "p.xlsx").active.iter_rows(min_row=2)
                if r[0].value == pid)
    assert cell.value == "=SUM(A1:A3)" and cell.data_type == "s"
    assert plan_of(dk, original, read_sheet(tmp_path / "p.xlsx")).empty


def test_write_sheet_refuses_other_formats_and_replaces_a_file_whole(products: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(toolkit.ValidationError, match=r"write a \.xlsx or \.csv"):
        write_sheet(products, tmp_path / "products.ods")
    target = tmp_path / "p.csv"
    target.write_text("old contents")
    write_sheet(products.iloc[:2], target)
    assert read_sheet(target).index.tolist() == products.index[:2].tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]


# -- LibreOffice round trips ------------------------------------------------------------------------------------
def test_libreoffice_resave_changes_nothing_then_exactly_three_edits(
        dk: Any, dks: Sandbox, products: pd.DataFrame, tmp_path: Path) -> None:
    exported = tmp_path / "products.xlsx"
    original = dk.products.export(exported)
    saved = libreoffice(exported, "xlsx", tmp_path)
    back = read_sheet(saved)
    assert len(back) == len(original)
    assert plan_of(dk, original, back).empty
    assert plan_of(dk, original, pd.read_excel(saved)).empty
    # the analyst changes one price, one name and one product number (to one with a leading zero)
    a, b, c = (int(i) for i in original.index[[1, 4, 7]])
    book = openpyxl.load_workbook(saved)
    rows = {r[0].value: r for r in book.active.iter_rows(min_row=2)}
    rows[a][3].value = 249.5
    rows[b][1].value = "Nytt navn på boka"
    rows[c][4].value = "0099"
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    again = libreoffice(edited, "xlsx", tmp_path)
    plan = plan_of(dk, original, read_sheet(again))
    assert changes(plan) == {(a, "price", Decimal("249.50")), (b, "name", "Nytt navn på boka"),
                             (c, "product_number", "0099")}
    assert set(plan["action"]) == {"update"}
    same_plan(plan, plan_of(dk, original, pd.read_excel(again)))
    results = dk.products.apply(plan, progress=False)
    assert set(results["outcome"]) == {"updated"}
    emulator = dks.emulator("dokus")
    assert emulator.record("products", a)["price"] == "249.50"
    assert emulator.record("products", c)["product_number"] == "0099"


def test_libreoffice_csv_round_trips_change_nothing(dk: Any, products: pd.DataFrame, tmp_path: Path) -> None:
    csv = tmp_path / "products.csv"
    write_sheet(products, csv)
    # the CSV opened in LibreOffice and saved as a workbook: 0042 becomes the number 42
    workbook = libreoffice(csv, "xlsx", tmp_path, infilter=f"CSV:{CSV_UTF8}")
    typed = pd.read_excel(workbook)
    assert 42 in typed["product_number"].tolist() and "0042" not in typed["product_number"].tolist()
    assert plan_of(dk, products, read_sheet(workbook)).empty
    assert plan_of(dk, products, typed).empty
    # a workbook saved as CSV (UTF-8), and that CSV's workbook saved as CSV again
    exported = tmp_path / "exported.xlsx"
    write_sheet(products, exported)
    for source in (exported, workbook):
        text = libreoffice(source, f"csv:Text - txt - csv (StarCalc):{CSV_UTF8}", tmp_path)
        assert plan_of(dk, products, read_sheet(text)).empty, source.name


def test_a_csv_not_in_utf8_is_a_plain_message(products: pd.DataFrame, tmp_path: Path) -> None:
    exported = tmp_path / "products.xlsx"
    write_sheet(products, exported)
    latin = libreoffice(exported, "csv:Text - txt - csv (StarCalc):44,34,12,1", tmp_path)  # 12: ISO-8859-1
    with pytest.raises(toolkit.ValidationError) as info:
        read_sheet(latin)
    assert "not UTF-8" in str(info.value) and "Dokus" in str(info.value) and "What to do" in str(info.value)


def test_zip_codes_keep_their_zeros_whether_read_as_cells_or_by_pandas(dk: Any, tmp_path: Path) -> None:
    customers = dk.customers.list()
    oslo = int(customers.index[customers["zip_code"] == "0150"][0])
    path = tmp_path / "customers.xlsx"
    write_sheet(customers, path, resource="customers")
    saved = libreoffice(path, "xlsx", tmp_path)
    guessed = pd.read_excel(saved)  # pandas turns the column of digit texts into numbers
    assert 150 in guessed["zip_code"].tolist()
    assert read_sheet(saved).loc[oslo, "zip_code"] == "0150"  # the cells are text: read as text
    assert dk.customers.diff(customers, guessed).empty and dk.customers.diff(customers, read_sheet(saved)).empty
    book = openpyxl.load_workbook(saved)
    header = [c.value for c in book.active[1]]
    row = next(r for r in book.active.iter_rows(min_row=2) if r[0].value == oslo)
    row[header.index("zip_code")].value = "0151"
    book.save(saved)
    plan = dk.customers.diff(customers, read_sheet(saved))
    assert changes(plan) == {(oslo, "zip_code", "0151")}
    same_plan(plan, dk.customers.diff(customers, pd.read_excel(saved)))  # 151 given its zero back


def test_read_table_gives_a_spreadsheets_cells_with_their_types(tmp_path: Path) -> None:
    from toolkit.core.tables import read_table

    path = tmp_path / "t.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["code", "n", "when"])
    book.active.append(["0042", 7, pd.Timestamp("2024-03-31").to_pydatetime()])
    book.save(path)
    cells = read_table(path, service="dokus", typed_cells=True).iloc[0].tolist()
    assert cells[0] == "0042" and cells[1] == 7 and isinstance(cells[1], int) and cells[2] == pd.Timestamp("2024-03-31")
    assert pd.read_excel(path)["code"].tolist() == [42]  # what the typed read avoids
    csv = tmp_path / "t.csv"
    csv.write_text("code,n\n0042,7\n")
    assert read_table(csv, service="dokus", typed_cells=True).iloc[0].tolist() == ["0042", "7"]


# -- files written by others: pandas, openpyxl ------------------------------------------------------------------
def _typed_as_a_spreadsheet(products: pd.DataFrame) -> pd.DataFrame:
    """Every column of list() as a spreadsheet types it: ids as floats, prices as floats, digits as numbers,
    times as datetimes, empty text as None, spaces around names, columns reversed, rows shuffled."""
    table = products.reset_index()
    table["id"] = table["id"].astype(float)
    table["price"] = [float(p) for p in table["price"]]
    table["product_number"] = [int(n) if str(n).isdigit() else n for n in table["product_number"]]
    table["comment"] = [None if not c or pd.isna(c) else c for c in table["comment"]]
    table["name"] = [f"  {n} " for n in table["name"]]
    table["modification_time"] = pd.to_datetime(table["modification_time"])
    order = list(range(len(table)))
    random.Random(7).shuffle(order)
    return table.iloc[order][list(reversed(table.columns))].reset_index(drop=True)


def test_an_openpyxl_sheet_with_floats_nan_dates_and_reordering_changes_nothing(
        dk: Any, products: pd.DataFrame, tmp_path: Path) -> None:
    table = _typed_as_a_spreadsheet(products)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(table.columns))
    for pos, record in enumerate(table.astype(object).to_dict("records")):
        sheet.append([None if pd.isna(v) else (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v)
                      for v in record.values()])
        if pos == 3:
            sheet.append([None] * len(table.columns))  # an empty line in the middle
    path = tmp_path / "analyst.xlsx"
    book.save(path)
    raw = pd.read_excel(path)
    assert raw["id"].dtype == float and raw["modification_time"].dtype.kind == "M"
    assert 42 in raw["product_number"].tolist()
    assert plan_of(dk, products, raw).empty
    assert plan_of(dk, products, read_sheet(path)).empty
    csv = tmp_path / "analyst.csv"
    table.to_csv(csv, index=False)  # pandas' CSV: 7.0, 199.5, 42, NaN as empty
    assert plan_of(dk, products, read_sheet(csv)).empty
    assert plan_of(dk, products, pd.read_csv(csv)).empty
    # and a real edit among all that is found
    edited = raw.copy()
    pid = int(products.index[2])
    edited.loc[edited["id"] == float(pid), "comment"] = "Utsolgt"
    assert changes(plan_of(dk, products, edited)) == {(pid, "comment", "Utsolgt")}


# -- bad input --------------------------------------------------------------------------------------------------
def test_a_sheet_without_id_column_is_refused_by_name(dk: Any, products: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "noid.xlsx"
    products.reset_index(drop=True)[["name", "price"]].to_excel(path, index=False)
    with pytest.raises(toolkit.ValidationError) as info:
        read_sheet(path)
    assert "noid.xlsx has no id column" in str(info.value) and "What to do" in str(info.value)
    with pytest.raises(toolkit.ValidationError, match="no id column"):
        dk.products.diff(products, pd.read_excel(path))


def test_an_id_that_is_not_a_number_names_the_row_and_column(products: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    write_sheet(products, path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    lines[3] = "7x" + lines[3][lines[3].index(","):]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(toolkit.ValidationError) as info:
        read_sheet(path)
    assert "row 4, column id" in str(info.value) and "'7x'" in str(info.value)


def test_a_text_in_a_price_cell_is_an_invalid_row_and_nothing_of_it_is_sent(
        dk: Any, dks: Sandbox, products: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    write_sheet(products, path)
    book = openpyxl.load_workbook(path)
    rows = {r[0].value: r for r in book.active.iter_rows(min_row=2)}
    bad, good = int(products.index[0]), int(products.index[1])
    rows[bad][3].value = "gratis"
    rows[good][2].value = "Ny kommentar"
    book.save(path)
    for edited in (read_sheet(path), pd.read_excel(path)):
        plan = plan_of(dk, products, edited)
        row = plan[plan["id"] == bad].iloc[0]
        assert (row["field"], row["action"]) == ("price", "invalid") and "not an amount" in row["message"]
        assert changes(plan[plan["action"] == "update"]) == {(good, "comment", "Ny kommentar")}
    results = dk.products.apply(plan, progress=False).set_index("id")
    assert results.loc[bad, "outcome"] == "invalid" and results.loc[good, "outcome"] == "updated"
    assert not [r for r in dks.emulator("dokus").requests if r.method == "POST" and r.path == f"/products/{bad}/"]


def test_draft_invoices_round_trip_and_a_typo_in_a_date_is_an_invalid_row(
        dk: Any, tmp_path: Path) -> None:
    drafts = dk.invoices.list()
    path = tmp_path / "invoices.xlsx"
    write_sheet(drafts, path, resource="invoices")
    saved = libreoffice(path, "xlsx", tmp_path)
    assert dk.invoices.diff(drafts, read_sheet(saved)).empty  # dates as dates, invoice lines as JSON text
    book = openpyxl.load_workbook(saved)
    header = [c.value for c in book.active[1]]
    rows = {r[0].value: r for r in book.active.iter_rows(min_row=2)}
    first, second = (int(i) for i in drafts.index[:2])
    rows[first][header.index("send_date")].value = "2025-02-30"
    rows[second][header.index("send_date")].value = "03/04/2025"
    book.save(saved)
    plan = dk.invoices.diff(drafts, read_sheet(saved)).set_index("id")
    assert plan.loc[first, "field"] == "send_date" and plan.loc[first, "action"] == "invalid"
    assert "no such day" in plan.loc[first, "message"]
    assert plan.loc[second, "action"] == "invalid" and "2024-03-31" in plan.loc[second, "message"]


# -- the value rules a sheet relies on --------------------------------------------------------------------------
@dataclass
class _Spec:
    name: str = "things"
    label: str = "thing"
    schema: Mapping[str, str] = field(default_factory=lambda: {
        "id": "Int64", "code": "string", "on": "boolean", "day": "date", "at": "datetime", "count": "Int64"})
    relations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    list_relations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    editable: tuple[str, ...] = ("code", "on", "day", "at", "count")
    money: tuple[str, ...] = ()
    required: tuple[str, ...] = ()


@pytest.mark.parametrize("column, a, b", [
    ("code", "0042", 42), ("code", "0042", "42"), ("code", "1234", 1234.0), ("code", " Kaffe\r\n", "Kaffe"),
    ("code", "", float("nan")), ("code", None, "   "), ("on", True, "TRUE"), ("on", False, 0), ("on", True, 1.0),
    ("on", False, "usann"), ("day", "2024-03-31", pd.Timestamp("2024-03-31")), ("day", "2024-03-31", "31.03.2024"),
    ("at", "2024-06-01 12:00:00", pd.Timestamp("2024-06-01 12:00")), ("count", 7, 7.0), ("count", 7, " 7 "),
    ("count", None, ""),
])
def test_a_spreadsheets_forms_are_the_same_value(column: str, a: Any, b: Any) -> None:
    from toolkit.dokus.values import equal, normalize

    spec = _Spec()
    assert equal(spec, column, normalize(spec, column, a)[0], normalize(spec, column, b)[0])


@pytest.mark.parametrize("column, a, b", [
    ("code", "0042", "0043"), ("code", "A42", "A042"), ("on", True, "FALSE"), ("day", "2024-03-31", "2024-04-01"),
    ("count", 7, 8),
])
def test_real_edits_stay_edits(column: str, a: Any, b: Any) -> None:
    from toolkit.dokus.values import equal, normalize

    spec = _Spec()
    assert not equal(spec, column, normalize(spec, column, a)[0], normalize(spec, column, b)[0])


@pytest.mark.parametrize("column, value, says", [
    ("day", "03/04/2024", "write it as 2024-03-31"), ("day", 45000, "format the cell as a date"),
    ("day", "2024-02-30", "no such day"), ("on", "kanskje", "TRUE or FALSE"), ("count", "7.5", "whole number"),
])
def test_unreadable_cells_say_what_to_write(column: str, value: Any, says: str) -> None:
    from toolkit.dokus.values import BadValue, normalize

    with pytest.raises(BadValue, match=says):
        normalize(_Spec(), column, value)


def test_missing_libreoffice_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "SOFFICE", "no-such-soffice-here")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        soffice_or_skip()
    monkeypatch.delenv("CI")
    with pytest.warns(pytest.PytestWarning), pytest.raises(pytest.skip.Exception, match="libreoffice-calc-nogui"):
        soffice_or_skip()
