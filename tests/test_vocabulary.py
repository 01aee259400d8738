"""docs/vocabulary.md against the frames: every frame-returning public method of the five services, called on
the sandbox, has the kind, service, columns and dtypes the page documents (a disagreement fails here)."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import pytest

import toolkit
from toolkit.sandbox.uddata_data import make_photo

DOC = Path(__file__).resolve().parent.parent / "docs" / "vocabulary.md"
KINDS = ("assets", "products", "records", "jobs")
SERVICES = ("uddata", "livingdocs", "boknett", "mediaflow", "dokus", "toolkit")
FOLDER = 13  # Mediaflow "Press 2025": uploads allowed


# -- the page ----------------------------------------------------------------------------------------------
def _tables(text: str) -> list[tuple[str, list[dict[str, str]]]]:
    """Every markdown table of the page with the ``##`` heading it stands under."""
    out: list[tuple[str, list[dict[str, str]]]] = []
    heading, lines = "", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            heading = line[3:].strip()
        if line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| ]+\|$", lines[i + 1].strip()):
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                assert len(cells) == len(header), f"vocabulary.md: a row of {heading!r} has the wrong cells: {lines[i]}"
                rows.append(dict(zip(header, cells)))
                i += 1
            out.append((heading, rows))
            continue
        i += 1
    return out


def read_doc() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
    """(kind → {column: dtype}, method → {kind, service, columns}) as docs/vocabulary.md states them."""
    vocabulary: dict[str, dict[str, str]] = {}
    methods: dict[str, dict[str, Any]] = {}
    for heading, rows in _tables(DOC.read_text(encoding="utf-8")):
        if heading in KINDS:
            vocabulary[heading] = {r["column"]: r["dtype"] for r in rows}
        elif rows and "method" in rows[0]:
            for r in rows:
                columns = [] if r["columns"] in ("—", "-", "") else [c.strip() for c in r["columns"].split(",")]
                methods[r["method"].strip("`")] = {"kind": r["kind"], "service": r["service"], "columns": columns}
    return vocabulary, methods


VOCABULARY, METHODS = read_doc()
#: every common column with its one dtype (a column documented with two dtypes is itself a disagreement)
COMMON: dict[str, str] = {}
for _kind, _columns in VOCABULARY.items():
    for _column, _dtype in _columns.items():
        assert COMMON.setdefault(_column, _dtype) == _dtype, f"{_column} has two dtypes in vocabulary.md"


def test_the_page_has_a_table_per_kind_and_the_frames_table() -> None:
    assert set(VOCABULARY) == {"assets", "products", "jobs"}
    assert {"title", "url", "width", "height", "bytes", "mime_type", "created", "modified", "outcome",
            "http_status", "message"} <= set(VOCABULARY["assets"])
    assert COMMON["created"] == COMMON["modified"] == "datetime64[ns]" and COMMON["bytes"] == "Int64"
    assert len(METHODS) >= 20
    for method, row in METHODS.items():
        assert row["kind"] in KINDS and row["service"] in SERVICES, method
        assert set(row["columns"]) <= set(COMMON), f"{method} lists a column that no table documents"


# -- the frames --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    with toolkit.sandbox.start(seed=0) as sb:
        yield sb


@pytest.fixture(scope="module")
def results(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Each documented method called once with cheap inputs: method → its frame or result row."""
    tmp = tmp_path_factory.mktemp("vocabulary")
    ud = toolkit.uddata.connect(**sandbox.credentials("uddata"))
    lv = toolkit.livingdocs.connect(**sandbox.credentials("livingdocs"))
    bk = toolkit.boknett.connect(**sandbox.credentials("boknett"))
    mf = toolkit.mediaflow.connect(**sandbox.credentials("mediaflow"))
    dk = toolkit.dokus.connect(**sandbox.credentials("dokus"))
    clients = (ud, lv, bk, mf, dk)
    try:
        roster = sandbox.emulator("uddata").roster()
        photos = tmp / "photos"
        photos.mkdir()
        for i, cpr in enumerate(roster[1:3]):
            (photos / f"{cpr}.jpg").write_bytes(make_photo(i, size=(60, 75)))
        em = sandbox.emulator("livingdocs")
        job = lv.import_images([{"url": em.image_url("ok-1.png"), "id": "voc-1", "fileName": "One"},
                                {"url": em.image_url("missing.jpg"), "id": "voc-2"}], system_name="vocabulary")
        job.wait(timeout=60)
        inbox = toolkit.livingdocs.WebhookInbox()
        hooked = lv.import_images([{"url": em.image_url("ok-2.png"), "id": "voc-3", "fileName": "Three"}],
                                  system_name="vocabulary", webhook=inbox)
        hooked.wait(timeout=60, inbox=inbox)
        bkemu = sandbox.emulator("boknett")
        after = datetime.fromtimestamp(bkemu.now() - 100 * 86400, timezone.utc)
        objs = bk.objects(after=after)
        files = mf.files(FOLDER)
        upload_dir = tmp / "uploads"
        upload_dir.mkdir()
        (upload_dir / "vocabulary-1.jpg").write_bytes(make_photo(7, size=(40, 40)))
        single = tmp / "vocabulary-single.jpg"
        single.write_bytes(make_photo(8, size=(40, 40)))
        products = dk.products.list()
        edited = products.copy()
        edited.loc[edited.index[0], "comment"] = f"vocabulary {time.time()}"
        plan = dk.products.diff(products, edited)
        calls: dict[str, Callable[[], Any]] = {
            "ud.students()": lambda: ud.students(),
            "ud.audit(cprs)": lambda: ud.audit(roster[:4] + ["0101901234x"], progress=False),
            "ud.put_image(cpr, path)": lambda: ud.put_image(roster[0], make_photo(3, size=(60, 75))),
            "ud.upload_folder(folder)": lambda: ud.upload_folder(photos, progress=False),
            "ud.prepare_photos(folder)": lambda: ud.prepare_photos(photos, out=tmp / "prepared", progress=False),
            "job.status()": lambda: job.status(),
            "job.results()": lambda: job.results(),
            "lv.jobs()": lambda: lv.jobs(),
            "lv.media(ids, system_name)": lambda: lv.media(["voc-1", "voc-2"], "vocabulary"),
            "bk.objects(after)": lambda: objs,
            "bk.changes(state)": lambda: bk.changes(state=tmp / "boknett.cursor", after=after),
            "bk.download(objs, folder)": lambda: bk.download(objs.head(3), tmp / "covers", progress=False),
            "mf.latest()": lambda: mf.latest(limit=5),
            "mf.folders()": lambda: mf.folders(),
            "mf.files(folder_id)": lambda: files,
            "mf.file(file_id)": lambda: mf.file(int(files["id"].iloc[0])),
            "mf.upload(path, folder_id)": lambda: mf.upload(single, FOLDER),
            "mf.upload_folder(folder, folder_id)": lambda: mf.upload_folder(upload_dir, FOLDER, progress=False),
            "mf.search(text)": lambda: mf.search("a", limit=5),
            "mf.download_urls(files)": lambda: mf.download_urls(files.head(2)),
            "mf.formats()": lambda: mf.formats(),
            "mf.report_usage(files, page_url, page_name)": lambda: mf.report_usage(
                files.head(2), "https://example.org/vocabulary", "Vocabulary", journal=None),
            "mf.usages(files)": lambda: mf.usages(files.head(2)),
            "dk.products.list()": lambda: products,
            "dk.products.get(id)": lambda: dk.products.get(int(products.index[0])),
            "dk.products.diff(original, edited)": lambda: plan,
            "dk.products.apply(plan)": lambda: dk.products.apply(plan, progress=False),
            "dk.customers.list()": lambda: dk.customers.list(),
            "dk.invoices.list()": lambda: dk.invoices.list(),
            "inbox.messages()": lambda: inbox.wait_for(hooked.ids, 30) and inbox.messages(),
            "toolkit.runs()": lambda: toolkit.runs(),  # after the uploads above: their runs are in it
            'toolkit.check("mediaflow")': lambda: toolkit.check("mediaflow", **sandbox.credentials("mediaflow")),
        }
        assert set(calls) == set(METHODS), ("docs/vocabulary.md and this test list different methods: "
                                            f"{sorted(set(calls) ^ set(METHODS))}")
        yield {method: call() for method, call in calls.items()}
    finally:
        if "inbox" in locals():
            inbox.stop()
        for client in clients:
            client.close()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_frame_matches_the_page(results: dict[str, Any], method: str) -> None:
    doc, got = METHODS[method], results[method]
    assert isinstance(got, (pd.DataFrame, pd.Series)), f"{method} returned {type(got).__name__}"
    assert got.attrs.get("kind") == doc["kind"], f"{method}: attrs['kind'] is {got.attrs.get('kind')!r}"
    assert got.attrs.get("service") == doc["service"], f"{method}: attrs['service'] is {got.attrs.get('service')!r}"
    names = list(got.columns) if isinstance(got, pd.DataFrame) else list(got.index)
    # a frame across services (toolkit.runs()) or made to be concatenated across them (toolkit.check) names
    # each row's service
    if doc["service"] != "toolkit" and not method.startswith("toolkit.check"):
        assert "service" not in names, f"{method}: the service is attrs['service'], not a column"
    missing = [c for c in doc["columns"] if c not in names]
    assert not missing, f"{method}: documented columns missing from the frame: {missing}"
    undocumented = [c for c in names if c in COMMON and c not in doc["columns"]]
    assert not undocumented, f"{method}: vocabulary columns not in its row of vocabulary.md: {undocumented}"
    if isinstance(got, pd.DataFrame):
        assert len(got) > 0, f"{method}: the sandbox gave an empty frame, the check would prove nothing"
        wrong = {c: str(got[c].dtype) for c in doc["columns"] if str(got[c].dtype) != COMMON[c]}
        assert not wrong, f"{method}: dtypes differ from vocabulary.md ({ {c: COMMON[c] for c in wrong} }): {wrong}"
    else:  # a result row mixes dtypes (object); its values must still fit the documented dtype
        for c in doc["columns"]:
            converted = pd.Series([got[c]], dtype=object).astype(COMMON[c])
            assert str(converted.dtype) == COMMON[c], f"{method}: {c}"


def test_assets_of_two_services_line_up_in_one_concat(results: dict[str, Any]) -> None:
    files, media = results["mf.files(folder_id)"], results["lv.media(ids, system_name)"]
    common = ["title", "url", "width", "height", "bytes", "created"]
    both = pd.concat([files.assign(source=files.attrs["service"]), media.assign(source=media.attrs["service"])],
                     ignore_index=True)
    for column in common:
        assert str(both[column].dtype) == COMMON[column], column
    found = media[media["found"].fillna(False)]
    assert len(found) >= 1
    mine = both[both["source"] == "livingdocs"].dropna(subset=["url"])
    assert mine["title"].tolist() == found["title"].tolist()
    assert mine["bytes"].tolist() == found["bytes"].tolist() and found["bytes"].notna().all()
    theirs = both[both["source"] == "mediaflow"]
    assert theirs["bytes"].tolist() == files["bytes"].tolist() and theirs["title"].tolist() == files["title"].tolist()
    assert theirs["created"].notna().all() and theirs["url"].notna().any()


def test_the_vocabulary_columns_carry_the_services_fields(results: dict[str, Any], sandbox: Any) -> None:
    """Each vocabulary column holds the service field the tables above name (the field has no column of its own)."""
    audit = results["ud.audit(cprs)"]
    assert audit["message"].notna().any() and set(audit["outcome"].dropna()) >= {"invalid", "with_photo"}
    imported = results["job.results()"]
    assert set(imported["outcome"]) == {"success", "failed"} and imported["http_status"].isna().all()
    assert imported.loc[imported["outcome"] == "failed", "message"].notna().all()
    objs = results["bk.objects(after)"]
    assert objs["url"].str.contains("/metadata/export/object/download?id=", regex=False).all()
    assert objs["url"].str.startswith("http://127.0.0.1").all()
    media = results["lv.media(ids, system_name)"]
    found = media[media["found"].fillna(False)].iloc[0]
    assert found["bytes"] > 0 and pd.notna(found["created"]) and pd.notna(found["modified"])
    files = results["mf.files(folder_id)"]
    truth = sandbox.emulator("mediaflow").files
    for row in files.itertuples():
        raw = truth[row.id]
        assert (row.title, row.bytes) == (raw["name"], raw["filesize"])
        assert row.created == pd.Timestamp(raw["uploaded"]).tz_convert("UTC").tz_localize(None)
        assert (row.url is pd.NA) if not raw["hasPreview"] else row.url.endswith(f"/previews/{row.id}/medium.jpg")
    uploaded = results["mf.upload_folder(folder, folder_id)"]
    assert uploaded["bytes"].tolist() == [len(make_photo(7, size=(40, 40)))]  # the size of the file sent


# -- one column per meaning ---------------------------------------------------------------------------------
#: pairs of columns that mean different things although the sandbox happens to give them equal values: a
#: book's ISBN-13 is usually also its EAN (an object may have an EAN and no ISBN-13); the sandbox's media
#: entries were never changed after they were created
DIFFERENT_MEANINGS = {("isbn13", "ean"), ("created", "modified")}


def _twins(df: pd.DataFrame) -> list[tuple[str, str]]:
    """The pairs of columns of ``df`` of one dtype that hold the same values in every row. Columns with no
    value, and flags (``boolean``: two values, equal by chance on a few rows), are left out."""
    values = {str(c): (str(df[c].dtype), tuple(None if pd.isna(v) else v for v in df[c].astype(object)))
              for c in df.columns
              if df[c].notna().any() and str(df[c].dtype) != "boolean"
              and not isinstance(df[c].dropna().iloc[0], (list, dict))}
    names = list(values)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if values[a] == values[b] and (a, b) not in DIFFERENT_MEANINGS and (b, a) not in DIFFERENT_MEANINGS]


@pytest.mark.parametrize("method", sorted(m for m in METHODS if METHODS[m]["kind"] == "assets"))
def test_a_result_table_has_one_column_per_meaning(results: dict[str, Any], method: str) -> None:
    got = results[method]
    rows = got if isinstance(got, pd.DataFrame) else got.to_frame().T
    assert len(rows) > 0
    if isinstance(got, pd.DataFrame) and len(got) > 1:  # one row may give two columns equal values by chance
        assert not _twins(got), f"{method}: columns holding the same values: {_twins(got)}"
    names = list(rows.columns)
    # the important columns first: the item, then outcome and message, then the details
    if "outcome" in names and "message" in names:
        assert names.index("message") == names.index("outcome") + 1 <= 3, f"{method}: {names}"


#: the columns renamed to the vocabulary: method → (old names that are gone, vocabulary names that are there)
RENAMED = {
    "ud.audit(cprs)": (["status", "error"], ["outcome", "message"]),
    "bk.objects(after)": (["reference"], ["url"]),
    "bk.changes(state)": (["reference"], ["url"]),
    "job.results()": (["status", "reason"], ["outcome", "message"]),
    "lv.media(ids, system_name)": (["size", "created_at", "updated_at"], ["bytes", "created", "modified"]),
    **{m: (["name", "filesize", "uploaded", "medium_preview"], ["title", "bytes", "created", "url"])
       for m in ("mf.latest()", "mf.files(folder_id)", "mf.file(file_id)", "mf.search(text)")},
    "mf.upload(path, folder_id)": (["filesize"], ["bytes"]),
    "mf.upload_folder(folder, folder_id)": (["filesize"], ["bytes"]),
}


@pytest.mark.parametrize("method", sorted(RENAMED))
def test_renamed_columns_have_the_vocabulary_name_only(results: dict[str, Any], method: str) -> None:
    got = results[method]
    names = list(got.columns) if isinstance(got, pd.DataFrame) else list(got.index)
    old, new = RENAMED[method]
    assert not set(old) & set(names), f"{method}: old column names still there: {set(old) & set(names)}"
    assert set(new) <= set(names), f"{method}: vocabulary names missing: {set(new) - set(names)}"
