"""The Mediaflow client reads the service as Mediaflow's own clients do (issue 19, items 3, 4, 6, 7): download
links asked in the file selector's path with a fallback, download formats, search, the fields the file selector
asks for, and one dtype per column whatever JSON shape a value comes in (the vendor's, the first contract's)."""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import pytest

import toolkit
from toolkit.core.errors import ValidationError
from toolkit.core.http import Asked, Answer, RetryPolicy, canned, reply
from toolkit.mediaflow import assets
from toolkit.mediaflow.assets import FILE_COLUMNS, FOLDER_SCHEMA, file_columns
from toolkit.mediaflow.downloads import DOWNLOAD_SCHEMA, FORMAT_SCHEMA
from toolkit.sandbox.mediaflow import MediaflowEmulator
from toolkit.sandbox.mediaflow_data import WARNING_MARK
from toolkit.testing import assert_no_secrets

from .mediaflow_fixtures import em, mf, mfs  # noqa: F401 - the module's fixtures


MEDIAFLOW_SEED = 7


def images(em: MediaflowEmulator, n: int = 3) -> list[int]:
    return [f["id"] for f in em._newest_first(list(em.files.values())) if f["type"]["type"] == "image"][:n]


def download_paths(em: MediaflowEmulator, mark: int) -> list[str]:
    return [r.path for r in em.requests[mark:] if "/downloads" in r.path]


# -- item 3: the download path ---------------------------------------------------------------------------
def test_links_are_asked_in_the_file_selectors_form(mf: Any, em: MediaflowEmulator) -> None:
    """Before: ``files/{id}/downloads`` only, so a service that serves the file selector's form answered 404."""
    em.download_path_forms = ("file",)
    ids, mark = images(em), len(em.requests)
    links = mf.download_urls(ids)
    assert links["http_status"].tolist() == [200] * 3 and links["download_url"].notna().all()
    assert download_paths(em, mark) == [f"/1/file/{i}/downloads/0" for i in ids]


def test_a_404_in_one_form_is_asked_in_the_other_and_that_form_is_kept(mfs: Any, em: MediaflowEmulator) -> None:
    em.download_path_forms = ("files",)  # a service that knows only the crate's form
    ids = images(em, 4)
    with toolkit.mediaflow.connect(**mfs.credentials("mediaflow")) as client:
        mark = len(em.requests)
        first = client.download_urls(ids[0])
        assert first["http_status"].tolist() == [200]
        assert download_paths(em, mark) == [f"/1/file/{ids[0]}/downloads/0", f"/1/files/{ids[0]}/downloads/0"]
        mark = len(em.requests)
        rest = client.download_urls([*ids[1:], 123])
        assert rest["http_status"].tolist() == [200, 200, 200, 404]
        assert download_paths(em, mark) == [f"/1/files/{i}/downloads/0" for i in [*ids[1:], 123]]  # one ask each
        assert "123" in rest["message"].iloc[-1] and pd.isna(rest["download_url"].iloc[-1])


# -- item 6: formats, warnings, refusals ------------------------------------------------------------------
def test_formats_and_a_link_of_a_format(mf: Any, em: MediaflowEmulator) -> None:
    formats = mf.formats()
    assert formats.attrs["kind"] == "records" and formats.attrs["service"] == "mediaflow"
    assert {c: str(t) for c, t in formats.dtypes.items()} == {
        "id": "Int64", "name": "string", "suffix": "string", "filetype": "string", "width": "Int64",
        "height": "Int64", "keep_ratio": "boolean"}
    assert list(formats.columns) == list(FORMAT_SCHEMA) and formats["id"].tolist() == [11, 12, 13]
    assert [r.path for r in em.requests if r.path.endswith(("/format", "/formats"))][-1] == "/1/formats"
    square = formats[~formats["keep_ratio"]].iloc[0]
    ids = images(em, 2)
    document = next(f["id"] for f in em.files.values() if f["type"]["type"] == "document")
    links = mf.download_urls([*ids, document], format=int(square["id"]))
    assert links["format"].tolist()[:2] == [square["name"]] * 2 and links["filetype"].tolist()[:2] == ["png"] * 2
    assert links["format_id"].tolist() == [int(square["id"])] * 3 and links["http_status"].tolist() == [200, 200, 404]
    assert mf.download_urls(ids, format="original")["format"].tolist() == ["Original"] * 2
    assert mf.download_urls(ids)["format_id"].tolist() == [0, 0]  # format=0 is the default
    with pytest.raises(ValidationError, match="format"):
        mf.download_urls(ids, format="poster")
    mark = len(em.requests)
    with pytest.raises(ValidationError, match="file id"):
        mf.download_urls([ids[0], 1.5])  # before: asked for file 1
    assert len(em.requests) == mark
    assert_no_secrets(links.to_string() + links._repr_html_(), em.secrets(), "the links of a format")


def test_the_crates_format_path_is_used_when_formats_is_404(mf: Any) -> None:
    seen: list[str] = []

    def handler(request: Asked) -> Answer:
        seen.append(request.path)
        if request.path.endswith("/oauth2/token"):
            return reply(200, json={"access_token": "t", "expires_in": 3600})
        if request.path.endswith("/formats"):
            return reply(404, json={"status": 404, "error": "No such endpoint"})
        return reply(200, json=[{"id": "5", "name": "Liten", "width": 300, "height": "-1"}])

    with toolkit.mediaflow.connect("c", "s", "r", base_url="https://mf.test/1",
                                   transport=canned(handler)) as client:
        got = client.formats()
    assert seen[-2:] == ["/1/formats", "/1/format"]
    assert got[["id", "width", "height"]].values.tolist() == [[5, 300, -1]] and pd.isna(got["keep_ratio"].iloc[0])


def test_a_download_warning_is_a_flag_said_in_words_and_a_refusal_is_a_row(mf: Any, em: MediaflowEmulator) -> None:
    warned = next(f["id"] for f in em.files.values() if f["mark"] == WARNING_MARK)
    plain = images(em, 1)[0]
    links = mf.download_urls([warned, plain])
    assert links["download_warning"].tolist() == [True, False]
    message = links["message"].iloc[0]
    assert "license" in message and "true" not in message.lower().split()  # before: the message said "True"
    assert pd.isna(links["message"].iloc[1])
    em.legacy_shapes = True  # the first contract: "" for none, a text of the service's own for one
    old = mf.download_urls([warned, plain])
    assert old["download_warning"].tolist() == [True, False] and old["message"].iloc[0].startswith("Mediaflow warns: ")
    em.legacy_shapes = False
    em.files[plain]["locked"] = True
    try:
        refused = mf.download_urls([plain]).iloc[0]
    finally:
        em.files[plain]["locked"] = False
    assert refused["http_status"] == 403 and "permission" in refused["message"]
    assert "administrator" in refused["message"] and pd.isna(refused["download_url"])


def test_the_fields_the_file_selector_asks_for_are_known(mf: Any, em: MediaflowEmulator) -> None:
    """Before: ``unknown fields: 'mark', 'gdprtype', 'mediaid', 'alpha'`` (ValidationError)."""
    asked = "id,name,filename,filesize,type,mediumpreview,smallpreview,thumbpreview,mark,uploaded,uploadedby," \
            "gdprstatus,gdprtype,mediaid,alttext,alpha"
    df = mf.files(em.files[images(em, 1)[0]]["folderId"], fields=asked)
    assert {"mark", "gdpr_type", "media_id", "alpha"} <= set(df.columns)
    assert str(df["mark"].dtype) == "Int64" and str(df["alpha"].dtype) == "boolean"
    for row in df.itertuples():
        truth = em.files[row.id]
        assert (row.mark, row.gdpr_type, row.media_id, row.alpha) == (truth["mark"], truth["gdprType"],
                                                                     truth["mediaId"], truth["alpha"])
    every = mf.file(images(em, 1)[0], fields="all")
    assert {"has_history", "comment", "instructions", "nr_downloads", "locked"} <= set(every.index)


# -- item 4: search --------------------------------------------------------------------------------------
def test_search_gives_the_services_order_as_latest_columns(mf: Any, em: MediaflowEmulator) -> None:
    truth = [f["id"] for f in em._search("sommar")]
    assert len(truth) >= 4
    df = mf.search("sommar")
    assert df["id"].tolist() == truth  # the service's order, not re-sorted
    assert list(df.columns) == list(file_columns(None)) and df.attrs["kind"] == "assets"
    assert {c: str(df[c].dtype) for c in ("title", "url", "width", "height", "bytes", "created")} == {
        "title": "string", "url": "string", "width": "Int64", "height": "Int64", "bytes": "Int64",
        "created": "datetime64[ns]"}
    sent = em.search_requests[-1]
    assert sent["term"] == "sommar" and sent["lang"] == "sv-SE" and sent["ai"] is False
    assert sent["query"]["fields"] == ",".join(assets.DEFAULT_FIELDS)
    picked = mf.search("sommar", fields="name,mark", limit=2)
    assert list(picked.columns) == ["id", "title", "mark", "bytes", "url", "created"] and len(picked) == 2
    assert mf.search("ingen-sådan-fil-finns").empty


def test_search_pages_until_the_limit_and_filters_type_and_folder(mf: Any, em: MediaflowEmulator,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "PAGE_SIZE", 2)
    truth = em._search("sommar")
    mark = len(em.search_requests)
    assert mf.search("sommar", limit=3)["id"].tolist() == [f["id"] for f in truth[:3]]
    assert [r["query"]["page"] for r in em.search_requests[mark:]] == ["1", "2"]
    videos = [f["id"] for f in truth if f["type"]["type"] == "video"]
    assert videos and mf.search("sommar", type="video")["id"].tolist() == videos
    folder = em.files[truth[0]["id"]]["folderId"]
    inside = [f["id"] for f in truth if f["folderId"] == folder]
    assert mf.search("sommar", folder_id=folder)["id"].tolist() == inside
    for bad in ("", "   ", None, 5):
        with pytest.raises(ValidationError):
            mf.search(bad)
    with pytest.raises(ValidationError):
        mf.search("sommar", limit=0)
    with pytest.raises(ValidationError):
        mf.search("sommar", folder_id=1.5)


def test_a_service_that_ignores_the_paging_gives_every_hit_once(mf: Any) -> None:
    """The file selector sends no paging: a service that answers every hit at once is read once, cut to the
    limit; one that answers page 1 again is not read in a loop."""
    hits = [{"id": i, "name": f"hit-{i}", "type": {"type": "image"}} for i in range(1, 8)]
    asked: list[dict[str, Any]] = []

    def handler(request: Asked) -> Answer:
        if request.path.endswith("/oauth2/token"):
            return reply(200, json={"access_token": "t", "expires_in": 3600})
        asked.append({"query": dict(request.params), "body": request.json()})
        per = int(request.params["per_page"])
        return reply(200, json=hits if per == 5 else hits[:per])

    with toolkit.mediaflow.connect("c", "s", "r", base_url="https://mf.test/1", transport=canned(handler),
                                   retry=RetryPolicy(attempts=1)) as client:
        assert client.search("hit", limit=5)["id"].tolist() == [1, 2, 3, 4, 5] and len(asked) == 1
        asked.clear()
        assert client.search("hit", limit=50)["id"].tolist() == [1, 2, 3, 4, 5, 6, 7] and len(asked) == 1
        asked.clear()
        assert client.search("hit", limit=3)["id"].tolist() == [1, 2, 3]
    assert asked[0]["body"] == {"searchTerm": "hit", "lang": "sv-SE", "ai": False}


# -- item 7: one dtype per column, whatever the shape -------------------------------------------------------
def test_the_vendors_shapes_and_the_first_contracts_give_the_same_frames(mf: Any, em: MediaflowEmulator) -> None:
    """Numbers or their text, objects or ids, bools or "" / "1": every column keeps its one declared dtype (before,
    the vendor's numbers, lists of objects and bools broke or changed the frames)."""
    vendor_files, vendor_tree = mf.latest(limit=6, fields="all"), mf.folders()
    em.legacy_shapes = True
    legacy_files, legacy_tree = mf.latest(limit=6, fields="all"), mf.folders()
    for vendor, legacy, schema in ((vendor_files, legacy_files, file_columns(["all"])),
                                   (vendor_tree, legacy_tree, FOLDER_SCHEMA)):
        assert list(vendor.columns) == list(legacy.columns) == list(schema)
        want = {c: ("datetime64[ns]" if d == "datetime" else d) for c, d in schema.items()}
        assert {c: str(t) for c, t in vendor.dtypes.items()} == want == {c: str(t) for c, t in legacy.dtypes.items()}
    same = ["dpi", "nr_downloads", "has_versions", "has_history", "alpha", "processed", "width"]
    pd.testing.assert_frame_equal(vendor_files[same], legacy_files[same])
    for column in ("mark", "rating"):  # the first contract sent "" for none: missing, not 0
        pd.testing.assert_series_equal(legacy_files[column], vendor_files[column].mask(vendor_files[column] == 0))
    assert [p["size"] for p in vendor_files["previews"].iloc[0]] == [96, 240, 480] == \
           [p["size"] for p in legacy_files["previews"].iloc[0]]
    assert vendor_files["locked"].eq(False).all() and legacy_files["locked"].isna().all()  # "" is unknown
    assert vendor_files["uploaded_by"].str.fullmatch(r"\d+").all()  # the user id's digits
    assert legacy_files["uploaded_by"].str.fullmatch(r"[a-z.]+").all()  # the user name, kept
    for tree in (vendor_tree, legacy_tree):
        row = tree[tree["id"] == -15].iloc[0]
        assert row["parents"] == [10, -14] and row["path"] == "Bilder / Evenemang / Prisutdelning"
    assert set(vendor_tree["type"]) == {"1", "2"} and set(legacy_tree["type"]) == {"folder", "shared"}


def mock_client(routes: dict[str, Any]) -> Any:
    def handler(request: Asked) -> Answer:
        if request.path.endswith("/oauth2/token"):
            return reply(200, json={"access_token": "t", "expires_in": 3600})
        for suffix, body in routes.items():
            if request.path.endswith(suffix):
                return reply(200, json=body)
        return reply(404, json={"status": 404, "error": "No such endpoint"})

    return toolkit.mediaflow.connect("c", "s", "r", base_url="https://mf.test/1",
                                     transport=canned(handler))


@pytest.mark.parametrize("shape", ["vendor", "text", "empty"])
def test_any_shape_of_a_value_lands_in_the_declared_dtype(shape: str) -> None:
    value: Callable[[Any, Any, Any], Any] = lambda number, text, empty: {"vendor": number, "text": text,
                                                                          "empty": empty}[shape]
    item = {"id": value(5, "5", 5), "name": "a", "type": {"id": value(101, "101", ""), "type": "image"},
            "filesize": value(1000, "1000", ""), "width": value(960, "960.0", None), "dpi": value(300, "300", ""),
            "rating": value(4, "4", ""), "nrDownloads": value(0, "0", ""), "mark": value(2, "2", ""),
            "uploadedBy": value(17, "anna", {"id": 17, "name": "Anna"}), "hasVersions": value(True, "true", ""),
            "hasHistory": value(False, "0", None), "locked": value(False, "false", ""), "alpha": value(True, "1", ""),
            "processed": value(True, "TRUE", ""), "instructions": value("", "", None), "comment": value("x", "x", ""),
            "geodata": {"latitude": value(59.3, "59.3", None), "longitude": value(18.1, "18,1", "")},
            "previews": [{"name": "small", "size": value(240, "240", ""), "url": "https://p.test/s.jpg"}],
            "uploaded": value("2025-06-01T10:00:00Z", "2025-06-01T12:00:00+02:00", "")}
    folder = {"id": 3, "name": "C", "type": value(1, "folder", ""), "parent": value(2, "2", None),
              "createdBy": value(4101, "anna", None), "depth": value(2, "2", 2), "hasChildren": value(False, "0", ""),
              "archived": value(False, "false", None),
              "parents": value([{"id": 1, "name": "A"}, {"id": 2, "name": "B"}], [1, 2], None)}
    with mock_client({"/file/latest": [item], "/foldertree": [folder]}) as client:
        files, tree = client.latest(fields="all"), client.folders()
    want = {c: ("datetime64[ns]" if d == "datetime" else d) for c, d in file_columns(["all"]).items()}
    assert {c: str(t) for c, t in files.dtypes.items()} == want
    assert {c: str(t) for c, t in tree.dtypes.items()} == {c: d for c, d in FOLDER_SCHEMA.items()}
    row = files.iloc[0]
    if shape != "empty":
        assert (row["dpi"], row["rating"], row["mark"], row["width"], row["type_id"]) == (300, 4, 2, 960, 101)
        assert (row["has_versions"], row["has_history"], row["alpha"], row["processed"]) == (True, False, True, True)
        assert row["latitude"] == pytest.approx(59.3) and row["longitude"] == pytest.approx(18.1)
        assert row["created"] == pd.Timestamp("2025-06-01 10:00:00")
        assert tree.iloc[0]["parents"] == [1, 2] and tree.iloc[0]["parent"] == 2
    else:
        assert all(pd.isna(row[c]) for c in ("dpi", "rating", "mark", "width", "type_id", "has_versions", "alpha",
                                             "processed", "longitude", "created"))
        assert row["uploaded_by"] == "Anna"  # a user object: its name
        assert tree.iloc[0]["parent"] == 0  # none sent: the top level, as Mediaflow's 0
    assert row["previews"][0]["size"] in (240, None) and row["uploaded_by"] in ("17", "anna", "Anna")


def test_unknown_fields_are_still_refused_and_every_known_one_has_a_dtype() -> None:
    with pytest.raises(ValidationError, match="markk"):
        assets._field_list("markk")
    assert {"mark", "gdprtype", "mediaid", "alpha", "hashistory", "comment", "dpi", "rating", "nrdownloads",
            "instructions", "hasversions", "locked"} <= set(FILE_COLUMNS)
    assert DOWNLOAD_SCHEMA["download_warning"] == "boolean" and DOWNLOAD_SCHEMA["message"] == "string"
