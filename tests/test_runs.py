"""toolkit.runs(): the history of every bulk run the journals hold, across services."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import toolkit
from toolkit.sandbox.uddata_data import make_photo
from toolkit.testing import assert_no_secrets


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("TOOLKIT_STATE_DIR", str(folder))
    return folder


def test_runs_of_three_services_are_listed_with_their_rows(sb: Any, state: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    cprs = sb.emulator("uddata").roster()[:3]
    for i, cpr in enumerate(cprs):
        (photos / f"{cpr}.jpg").write_bytes(make_photo(500 + i, size=(40, 50)))
    with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
        ud.upload_folder(photos, progress=False)
    with toolkit.mediaflow.connect(**sb.credentials("mediaflow")) as mf:
        folder_id = int(mf.folders().query("not archived")["id"].iloc[0])
        files = tmp_path / "files"
        files.mkdir()
        (files / "a.jpg").write_bytes(make_photo(1, size=(30, 30)))
        mf.upload_folder(files, folder_id, progress=False)
    with toolkit.boknett.connect(**sb.credentials("boknett")) as bk:
        objs = bk.objects(after=pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=30))
        bk.download(objs.head(3), tmp_path / "covers", progress=False)

    history = toolkit.runs()
    assert {"uddata", "mediaflow", "boknett"} <= set(history["service"])
    assert history.attrs["kind"] == "jobs"
    uddata = history[history["service"] == "uddata"].iloc[0]
    assert uddata["kind"] == "photo upload" and uddata["items"] == 3 and uddata["n_uploaded"] == 3
    assert str(uddata["finished_at"]) >= str(uddata["started_at"])
    rows = toolkit.run_rows(uddata)  # a row of runs() is enough
    assert len(rows) == 3 and set(rows["outcome"]) == {"uploaded"}
    assert rows["cpr"].tolist() == sorted(cprs) or sorted(rows["cpr"].tolist()) == sorted(cprs)
    assert_no_secrets(repr(rows) + rows._repr_html_(), cprs, "the rows of a run")  # masked on display
    assert_no_secrets(history.to_csv(), sb.secrets(), "the history")


def test_a_bulk_write_without_a_journal_is_listed_too(sb: Any, state: Path) -> None:
    """"What did I send last week" finds an import made without journal=: its run is recorded in the
    toolkit's history journal in the state folder."""
    em = sb.emulator("livingdocs")
    images = [{"url": em.image_url("ok-1.png"), "id": f"runs-{i}", "fileName": f"Runs {i}"} for i in range(3)]
    with toolkit.livingdocs.connect(**sb.credentials("livingdocs")) as lv:
        job = lv.import_images(images, system_name="runs-history")
        job.wait(timeout=60, progress=False)
    history = toolkit.runs()
    livingdocs = history[history["service"] == "livingdocs"]
    assert len(livingdocs) == 1 and livingdocs["kind"].iloc[0] == "image import"
    assert livingdocs["journal"].iloc[0].startswith(str(state))
    assert livingdocs["items"].iloc[0] >= 1


def test_an_old_or_damaged_journal_says_so_plainly(state: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE uploads (cpr TEXT, sha256 TEXT, state TEXT, updated TEXT)")
    db.commit()
    db.close()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database at all" * 50)
    history = toolkit.runs([old, bad])
    assert len(history) == 1 and "not readable" in history["summary"].iloc[0]
    assert history["journal"].iloc[0] == str(bad)


def test_no_journal_gives_an_empty_history_with_its_columns(state: Path) -> None:
    history = toolkit.runs()
    assert len(history) == 0 and {"service", "destination", "kind", "started_at", "items"} <= set(history.columns)


def test_a_dokus_apply_is_in_the_history(sb: Any, state: Path) -> None:
    from decimal import Decimal

    with toolkit.dokus.connect(**sb.credentials("dokus")) as dk:
        products = dk.products.list()
        edited = products.copy()
        first = edited.index[0]
        edited.loc[first, "price"] = products.loc[first, "price"] + Decimal("1.00")
        result = dk.products.apply(dk.products.diff(products, edited), progress=False)
        fresh = dk.products.list()
        back = fresh.copy()
        back.loc[first, "price"] = products.loc[first, "price"]  # put it back for the other tests
        dk.products.apply(dk.products.diff(fresh, back), progress=False)
    history = toolkit.runs()
    applies = history[history["kind"] == "Dokus apply"]
    assert len(applies) == 2 and set(applies["service"]) == {"dokus"}
    assert (applies["n_updated"] == 1).all()
    assert "resource=products" in applies["destination"].iloc[0]
    assert_no_secrets(history.to_csv(), sb.secrets(), "the history")  # the user is named, the password never
    rows = toolkit.run_rows(applies.iloc[-1])
    assert rows["outcome"].tolist() == result["outcome"].tolist()
