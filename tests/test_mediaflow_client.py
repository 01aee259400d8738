"""Mediaflow client over loopback: token by POST form, Bearer, renewal before expiry and once on 401,
refused credentials in plain words, rotation, a path prefix, latest across pages, folders, files, file,
previews without the token, snake_case columns, fields passed through, empty results keep columns."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

import toolkit
from toolkit.core.credentials import Secret
from toolkit.core.errors import NotFound, Unauthorized, ValidationError
from toolkit.mediaflow.assets import FOLDER_SCHEMA, file_columns
from toolkit.sandbox.mediaflow import MediaflowEmulator

from .mediaflow_fixtures import em, mf, mfs  # noqa: F401 - the module's fixtures


MEDIAFLOW_SEED = 5


def _since(em: MediaflowEmulator, mark: int, prefix: str = "") -> list[Any]:
    return [r for r in em.requests[mark:] if r.path.startswith(prefix)]


# -- auth ---------------------------------------------------------------------------------------------
def test_token_is_a_post_form_and_calls_carry_bearer(mf: Any, em: MediaflowEmulator) -> None:
    tokens_before, mark = len(em.token_requests), len(em.requests)
    mf.latest(limit=3)
    new = em.token_requests[tokens_before:]
    assert new and all(t["method"] == "POST" and not t["secrets_in_query"] and not t["query_keys"] for t in new)
    assert {"client_secret", "refresh_token", "client_id", "grant_type"} <= set(new[0]["form_keys"])
    calls = _since(em, mark, "/1/file")
    assert calls and all(r.headers.get("authorization", "").startswith("Bearer ") for r in calls)
    assert all("access_token" not in r.query and "secret" not in r.query for r in em.requests[mark:])
    assert not em.query_token_uses


def test_a_path_prefix_before_the_version_works(mfs: Any, em: MediaflowEmulator) -> None:
    creds = dict(mfs.credentials("mediaflow"), base_url=em.proxied_base_url())
    mark = len(em.requests)
    with toolkit.mediaflow.connect(**creds) as client:
        assert len(client.latest(limit=2)) == 2
    paths = [r.path for r in em.requests[mark:]]
    assert "/proxy/mf/1/oauth2/token" in paths and "/proxy/mf/1/file/latest" in paths
    assert not any(p.startswith("/1/") for p in paths)


def test_token_renewed_before_expiry_no_call_with_an_expired_token(mf: Any, em: MediaflowEmulator) -> None:
    em.token_lifetime = 1
    rejected_before, tokens_before = len(em.rejected_token_uses), len(em.token_requests)
    started = time.monotonic()
    while time.monotonic() - started < 3.2:  # three token lifetimes of calls
        mf.folders()
        time.sleep(0.05)
    assert len(em.token_requests) - tokens_before >= 3  # renewed, not reused past its lifetime
    assert not [r for r in em.rejected_token_uses[rejected_before:] if r["reason"] == "expired"]


def test_a_401_renews_the_token_exactly_once(mf: Any, em: MediaflowEmulator) -> None:
    mf.folders()
    tokens_before = len(em.token_requests)
    em.expire_tokens()
    assert len(mf.folders()) == len(em.folders)
    assert len(em.token_requests) - tokens_before == 1


@pytest.mark.parametrize("field", ["client_secret", "refresh_token"])
def test_wrong_secret_or_refresh_token_is_unauthorized_in_plain_words(mfs: Any, em: MediaflowEmulator,
                                                                       field: str) -> None:
    fake = "wrong-" + field.replace("_", "-") + "-8d1f3a"
    creds = dict(mfs.credentials("mediaflow"), **{field: Secret(fake)})
    before = len(em.token_requests)
    with toolkit.mediaflow.connect(**creds) as client:
        with pytest.raises(Unauthorized) as info:
            client.latest()
        text = str(info.value)
        assert text.startswith("Mediaflow") and "refresh token" in text and "check" in text.lower()
        assert fake not in text and fake not in repr(info.value) and fake not in repr(client)
        with pytest.raises(Unauthorized):
            client.folders()  # remembered: not asked again
    assert len(em.token_requests) - before == 1


def test_a_rotated_refresh_token_is_kept(mfs: Any, em: MediaflowEmulator) -> None:
    em.rotate_refresh_tokens = True
    seen: list[Secret] = []
    creds = mfs.credentials("mediaflow")
    try:
        with toolkit.mediaflow.connect(**creds, on_rotate=seen.append) as client:
            for _ in range(3):
                client.folders()
                em.expire_tokens()  # the next call needs a new token, from the rotated refresh token
            assert len(client.folders()) == len(em.folders)
            assert client.refresh_token.reveal() == em.current_refresh_token
            assert len(seen) >= 3 and seen[-1].reveal() == em.current_refresh_token
            assert em.current_refresh_token not in repr(client.refresh_token)
    finally:
        em.rotate_refresh_tokens = False
        em._valid_refresh.add(em.refresh_token)  # the module's other clients use the first one


# -- reading ------------------------------------------------------------------------------------------
def _truth_latest(em: MediaflowEmulator, kind: str = "image") -> list[int]:
    files = [em._refresh(f) for f in em.files.values()]
    files = [f for f in files if f["processed"] and (kind == "any" or f["type"]["type"] == kind)]
    return [f["id"] for f in em._newest_first(files)]


def test_latest_newest_first_across_pages_as_the_limit_needs(mf: Any, em: MediaflowEmulator) -> None:
    mark = len(em.requests)
    df = mf.latest(type="any", limit=45)
    pages = _since(em, mark, "/1/file/latest")
    assert df["id"].tolist() == _truth_latest(em, "any")[:45]
    assert len(pages) == 1 and "per_page=45" in pages[0].query
    all_images = mf.latest(limit=1000)
    truth = _truth_latest(em)
    assert all_images["id"].tolist() == truth  # fewer than 1000: every page read, stops on a short page
    assert all_images["created"].is_monotonic_decreasing
    assert (all_images["type"] == "image").all() and all_images["processed"].all()


def test_latest_pages_until_the_limit(mf: Any, em: MediaflowEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit.mediaflow.assets as assets

    monkeypatch.setattr(assets, "PAGE_SIZE", 7)
    mark = len(em.requests)
    df = mf.latest(type="any", limit=30)
    pages = _since(em, mark, "/1/file/latest")
    assert [("page=%d" % n) in r.query for n, r in enumerate(pages, 1)] == [True] * 5
    assert len(pages) == 5  # 7+7+7+7+7 ≥ 30
    assert df["id"].tolist() == _truth_latest(em, "any")[:30]


def test_snake_case_columns_type_split_and_attrs(mf: Any) -> None:
    df = mf.latest(limit=5)
    assert list(df.columns) == list(file_columns(None))
    for name in ("uploaded_by", "has_preview", "small_preview", "extension", "type_description"):
        assert name in df.columns
    assert not any(c != c.lower() for c in df.columns)
    assert df.attrs["kind"] == "assets" and df.attrs["service"] == "mediaflow"
    assert str(df["id"].dtype) == "Int64" and str(df["created"].dtype).startswith("datetime64")
    assert set(df["extension"]) <= {"jpg", "jpeg", "png", "tif", "gif"}


def test_fields_pass_through(mf: Any, em: MediaflowEmulator) -> None:
    mark = len(em.requests)
    df = mf.latest(limit=4, fields=["name", "uploadedBy", "gdprstatus"])
    query = _since(em, mark, "/1/file/latest")[0].query
    assert "fields=name%2Cuploadedby%2Cgdprstatus" in query or "fields=name,uploadedby,gdprstatus" in query
    assert list(df.columns) == ["id", "title", "uploaded_by", "gdpr_status", "bytes", "url", "created"]
    assert df["uploaded_by"].notna().all() and df["gdpr_status"].notna().all()
    everything = mf.latest(limit=2, fields="all")
    assert {"folder_id", "photographer", "alttext", "checksum"} <= set(everything.columns)


def test_folders_tree_with_negative_ids_and_archived(mf: Any, em: MediaflowEmulator) -> None:
    df = mf.folders()
    assert list(df.columns) == list(FOLDER_SCHEMA)
    assert df.attrs["service"] == "mediaflow"
    assert sorted(df["id"]) == sorted(f["id"] for f in em.folders)
    assert (df["id"] < 0).any()
    truth = {f["id"]: f for f in em.folders}
    for row in df.itertuples():
        assert row.parent == truth[row.id]["parent"] and row.archived == truth[row.id]["archived"]
        assert row.has_children == any(f["parent"] == row.id for f in em.folders)
    child = df[df["id"] == -15].iloc[0]
    assert child["path"] == "Bilder / Evenemang / Prisutdelning" and child["depth"] == truth[-15]["depth"]


def test_files_of_a_folder_and_one_file_with_negative_ids(mf: Any, em: MediaflowEmulator) -> None:
    folder = next(fid for fid in (f["id"] for f in em.folders if f["id"] < 0)
                  if any(x["folderId"] == fid for x in em.files.values()))
    df = mf.files(folder)
    assert sorted(df["id"]) == sorted(x["id"] for x in em.files.values() if x["folderId"] == folder)
    negative = next(i for i in em.files if i < 0)
    row = mf.file(negative)
    assert isinstance(row, pd.Series) and row["id"] == negative
    assert row["filename"] == em.files[negative]["filename"]
    assert row["type"] == em.files[negative]["type"]["type"]


def test_empty_results_keep_their_columns(mf: Any, em: MediaflowEmulator) -> None:
    empty_folder = next(f["id"] for f in em.folders if not any(x["folderId"] == f["id"] for x in em.files.values()))
    df = mf.files(empty_folder)
    assert len(df) == 0 and list(df.columns) == list(file_columns(None))
    assert df.attrs["kind"] == "assets"
    picked = mf.files(empty_folder, fields="name,uploadedby")
    assert len(picked) == 0 and list(picked.columns) == ["id", "title", "uploaded_by", "bytes", "url", "created"]


def test_missing_file_and_bad_arguments(mf: Any) -> None:
    with pytest.raises(NotFound) as info:
        mf.file(-987654)
    assert str(info.value).startswith("Mediaflow") and "-987654" in str(info.value)
    for bad in (0, -1, "10", True, 2.5):
        with pytest.raises(ValidationError):
            mf.latest(limit=bad)
    with pytest.raises(ValidationError):
        mf.files("not-a-number")
    with pytest.raises(ValidationError):
        mf.previews([1], size="huge")


def test_previews_are_pictures_none_without_preview_and_sent_without_the_token(mf: Any, em: MediaflowEmulator
                                                                                 ) -> None:
    df = mf.latest(type="any", limit=20, processed=False)
    assert not df["has_preview"].all() and df["has_preview"].any()
    mark = len(em.requests)
    images = mf.previews(df, size="small")
    assert len(images) == len(df)
    for has, img in zip(df["has_preview"], images):
        assert (img is not None) == bool(has)
        if img is not None:
            assert isinstance(img, Image.Image) and max(img.size) == 240
    fetched = _since(em, mark, "/previews/")
    assert len(fetched) == int(df["has_preview"].sum())
    assert all("authorization" not in r.headers for r in fetched)
    # by id, and a Series of file(): the preview URL is looked up first
    one = int(df[df["has_preview"].astype(bool)]["id"].iloc[0])
    by_id = mf.previews([one], size="thumb")
    assert max(by_id[0].size) == 96
    assert max(mf.previews(mf.file(one), size="medium")[0].size) == 480
    from toolkit.widgets import image_grid

    grid = image_grid(images, labels=list(df["title"]))
    assert grid is not None


def test_no_secret_in_logs_repr_or_frames(mfs: Any, em: MediaflowEmulator, debug_logs: Any) -> None:
    em.token_lifetime = 1
    with toolkit.mediaflow.connect(**mfs.credentials("mediaflow")) as client:
        df = client.latest(limit=3)
        time.sleep(0.6)
        client.folders()
        text = repr(client) + df.to_csv() + repr(client.aio.auth) + repr(client.aio.http)
    logs = "\n".join(r.getMessage() for r in debug_logs.records)
    secrets = em.secrets()
    assert secrets and debug_logs.records
    assert not [s for s in secrets if s in text or s in logs]
    assert all(r.levelno >= logging.DEBUG for r in debug_logs.records)


def test_garbage_input_is_refused_in_plain_words_before_anything_is_sent(mf: Any, em: MediaflowEmulator,
                                                                         tmp_path: Path) -> None:
    from decimal import Decimal

    from toolkit.core.errors import ValidationError

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 not really a photo")
    (tmp_path / "c").mkdir()
    mark = len(em.requests)
    cases = {
        "unknown field: 'nonexistent'": lambda: mf.latest(fields=["nonexistent"]),
        "did you mean 'uploadedby'": lambda: mf.latest(fields="id,uploadedbye"),
        "Decimal('13.7')": lambda: mf.upload(photo, Decimal("13.7")),  # was uploaded to folder 13
        "'13.7'": lambda: mf.upload(photo, "13.7"),
        "needs files, not None": lambda: mf.previews(None),  # was [None]
        "c is a folder, not a file": lambda: mf.upload(tmp_path / "c", 1),  # was "no such file: c"
        "not NoneType": lambda: mf.upload(None, 1),
    }
    for says, call in cases.items():
        with pytest.raises(ValidationError) as info:
            call()
        assert says in str(info.value) and str(info.value).startswith("Mediaflow:"), str(info.value)
    assert [r for r in em.requests[mark:] if r.method != "POST" or "token" not in r.path] == []
    assert mf.latest(fields=["id", "uploaded_by"], limit=1).columns[:2].tolist() == ["id", "uploaded_by"]
