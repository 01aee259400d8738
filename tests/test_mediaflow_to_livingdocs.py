"""DAM → CMS (notebook 07) in plain Python: a Mediaflow folder's images imported into Livingdocs over real
loopback HTTP (the Livingdocs emulator fetches the Mediaflow previews itself, on 127.0.0.1), the results joined
back onto the Mediaflow frame, the same import again all ``skipped``, and no secret anywhere in the outputs."""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import urlsplit

import pandas as pd
import pytest

import toolkit
from toolkit.testing import assert_no_secrets

FOLDER_ID = 12  # the notebook's folder: four images, one still being processed, two with negative ids
PREVIEW_FOLDER_ID = -31  # six images, one without a preview
SYSTEM_NAME = "mediaflow"
ID_PREFIX = "mediaflow-"
PROCESSING = "Mediaflow is still processing this file"


# -- the notebook's flow, cell by cell --------------------------------------------------------------------
def text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) or str(value) == "" else str(value)


def folder_images(mf: Any, folder_id: int) -> pd.DataFrame:
    images = mf.files(folder_id, type="image", fields="all")
    return images[images["type"] == "image"].reset_index(drop=True)


def carry(mf: Any, images: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    carried = images.assign(external_id=ID_PREFIX + images["id"].astype("string"))
    if source == "original":
        links = mf.download_urls(carried)
        carried["url"] = links["download_url"]
        no_link = links["message"].fillna("Mediaflow gave no download link for this file")
    else:  # the files' url is their medium preview
        no_link = pd.Series("Mediaflow has no preview of this file (yet), so there is no link to send",
                            index=carried.index, dtype="string")
    has_link = carried["url"].notna() & (carried["url"].astype("string") != "")
    still_processing = carried["processed"].fillna(False) == False  # noqa: E712
    carried["not_sent_reason"] = pd.Series(pd.NA, index=carried.index, dtype="string")
    carried.loc[~has_link, "not_sent_reason"] = no_link[~has_link]
    carried.loc[still_processing, "not_sent_reason"] = f"{PROCESSING}: run the notebook again in a few minutes"
    rows = [{"id": r.external_id, "url": r.url, "fileName": r.filename,
             "metadata": {"description": text(r.description), "photographer": text(r.photographer),
                          "alttext": text(r.alttext), "mediaflow_id": int(r.id)}}
            for r in carried[carried["not_sent_reason"].isna()].itertuples()]
    return carried, rows


def import_to_livingdocs(lv: Any, rows: list[dict[str, Any]]) -> pd.DataFrame:
    job = lv.import_images(rows, system_name=SYSTEM_NAME, progress=False)
    job.wait(timeout=120)
    return job.results()


def join(carried: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    lv_columns = (results[["external_id", "outcome", "message", "media_id", "url", "width", "height", "mime_type"]]
                  .rename(columns={c: f"livingdocs_{c}" for c in ("media_id", "url", "width", "height", "mime_type")}))
    joined = carried.merge(lv_columns, on="external_id", how="left", validate="one_to_one")
    not_sent = joined["outcome"].isna()
    joined["outcome"] = joined["outcome"].fillna("not_sent")
    joined.loc[not_sent, "message"] = joined.loc[not_sent, "not_sent_reason"]
    return joined


@pytest.fixture
def pair(make_sandbox: Any) -> Iterator[tuple[Any, Any, Any]]:
    sb = make_sandbox(seed=0, services=["mediaflow", "livingdocs"])
    mf = toolkit.mediaflow.connect(**sb.credentials("mediaflow"))
    lv = toolkit.livingdocs.connect(**sb.credentials("livingdocs"))
    try:
        yield sb, mf, lv
    finally:
        mf.close()
        lv.close()


def run_twice_and_check(sb: Any, mf: Any, lv: Any, folder_id: int, source: str) -> pd.DataFrame:
    """The notebook's flow twice; checks what every analyst relies on and gives the joined frame."""
    mfe, lve = sb.emulator("mediaflow"), sb.emulator("livingdocs")
    images = folder_images(mf, folder_id)
    truth = {f["id"]: f for f in mfe.files.values() if f["folderId"] == folder_id and f["type"]["type"] == "image"}
    assert sorted(images["id"].tolist()) == sorted(truth)
    sendable = {i for i, f in truth.items() if f["processed"] and (source == "original" or f["hasPreview"])}
    assert 0 < len(sendable) < len(truth), "the folder should hold images that are sent and one that is not"

    carried, rows = carry(mf, images, source)
    first = import_to_livingdocs(lv, rows)
    joined = join(carried, first)

    # one row per Mediaflow image, in the Mediaflow order, each id once
    assert len(joined) == len(images) and joined["id"].tolist() == images["id"].tolist()
    assert joined["external_id"].is_unique
    assert dict(zip(joined["id"], joined["outcome"])) == {i: ("success" if i in sendable else "not_sent") for i in truth}
    reasons = joined.loc[joined["outcome"] == "not_sent", "message"]
    assert reasons.notna().all() and reasons.str.contains("processing|no preview").all()

    # what Livingdocs holds: the carried id, name and metadata, fetched over HTTP from Mediaflow on 127.0.0.1
    for fid in sendable:
        f = truth[fid]
        entry = lve.entry(SYSTEM_NAME, f"{ID_PREFIX}{fid}")
        assert entry is not None
        assert entry["title"] == f["filename"]
        assert entry["metadata"] == {"description": f["description"] or None, "photographer": f["photographer"] or None,
                                     "alttext": f["alttext"] or None, "mediaflow_id": fid}
        source_url = entry["_source_url"]
        if source == "original":
            assert source_url.startswith(f"{mfe.base_url}/download/{fid}/0?signature=")
            assert (entry["asset"]["width"], entry["asset"]["height"]) == (f["width"], f["height"])
        else:
            assert source_url == f"{mfe.base_url}/previews/{fid}/medium.jpg"
        assert urlsplit(source_url).hostname == "127.0.0.1"
        assert lve.fetch_counts[source_url] == 1
        row = joined[joined["id"] == fid].iloc[0]
        assert row["livingdocs_media_id"] == entry["id"]
        assert urlsplit(row["livingdocs_url"]).hostname == "127.0.0.1"
    if source == "original":
        assert mfe.download_gets == len(sendable)

    # the same import again: every image skipped, the library unchanged (each image exactly once)
    second = import_to_livingdocs(lv, rows)
    assert second["outcome"].tolist() == ["skipped"] * len(rows)
    assert second["media_id"].tolist() == first["media_id"].tolist()
    stored = [ext for (system, ext) in lve.media if system == SYSTEM_NAME]
    assert sorted(stored) == sorted(f"{ID_PREFIX}{i}" for i in sendable)
    assert all(lve.import_counts[(SYSTEM_NAME, ext)] == 1 for ext in stored)
    library = lv.media(joined["external_id"], SYSTEM_NAME)
    assert library["found"].tolist() == [i in sendable for i in joined["id"]]
    assert library.loc[library["found"], "version"].tolist() == [1] * len(sendable)

    # what landed can be shown: Livingdocs' own links give the pictures at the stored size
    landed = joined[joined["outcome"].isin(["success", "skipped"])]
    pictures = [lv.fetch_image(url) for url in landed["livingdocs_url"]]
    assert [(p.width, p.height) for p in pictures] == list(zip(landed["livingdocs_width"], landed["livingdocs_height"]))

    # every table the notebook shows (the rows sent hold the real links: the notebook does not show them)
    shown = {"carried": carried.to_string() + carried._repr_html_(), "first": first.to_string(),
             "joined": joined.to_string() + joined._repr_html_(), "second": second.to_string(),
             "failed": joined[~joined["outcome"].isin(["success", "skipped"])].to_string(),
             "library": library.to_string(), "clients": repr(mf) + repr(lv)}
    for name, text_shown in shown.items():
        assert_no_secrets(text_shown, sb.secrets(), f"the {name} output")
    return joined


def test_originals_land_once_with_their_metadata_and_the_second_run_is_all_skipped(pair: Any) -> None:
    sb, mf, lv = pair
    joined = run_twice_and_check(sb, mf, lv, FOLDER_ID, "original")
    assert joined.loc[joined["outcome"] == "not_sent", "message"].str.startswith(PROCESSING).all()
    assert sb.emulator("mediaflow").issued_download_urls  # links were signed secrets, and none was shown


def test_previews_land_too_and_a_file_without_a_preview_is_not_sent(pair: Any) -> None:
    sb, mf, lv = pair
    joined = run_twice_and_check(sb, mf, lv, PREVIEW_FOLDER_ID, "preview")
    assert joined.loc[joined["outcome"] == "not_sent", "has_preview"].tolist() == [False]


def test_a_link_livingdocs_cannot_fetch_is_a_failed_row_with_the_reason(pair: Any) -> None:
    sb, mf, lv = pair
    carried, rows = carry(mf, folder_images(mf, FOLDER_ID), "original")
    broken = rows[0]["id"]
    good = rows[0]["url"]
    rows[0] = {**rows[0], "url": good.replace("signature=", "signature=x")}  # a link Mediaflow refuses (403)
    joined = join(carried, import_to_livingdocs(lv, rows))
    assert len(joined) == len(carried)
    row = joined[joined["external_id"] == broken].iloc[0]
    assert row["outcome"] == "failed"
    assert "403" in row["message"]
    failed = joined[~joined["outcome"].isin(["success", "skipped"])]
    assert set(failed["outcome"]) == {"failed", "not_sent"}
    assert (joined["outcome"] == "success").sum() == len(rows) - 1
    assert_no_secrets(joined.to_string() + failed.to_string(), sb.secrets(), "the joined frame")


def test_download_urls_one_row_per_file_signed_links_masked_and_a_missing_file_is_a_row(pair: Any) -> None:
    sb, mf, lv = pair
    mfe = sb.emulator("mediaflow")
    images = folder_images(mf, FOLDER_ID).set_index("title")
    links = mf.download_urls(images)
    assert links.index.tolist() == images.index.tolist()  # lines up with the files given
    assert links["id"].tolist() == images["id"].tolist()
    assert links["http_status"].tolist() == [200] * len(images)
    assert set(links["format"]) == {"Original"} and links["format_id"].tolist() == [0] * len(images)
    raw = links["download_url"].tolist()
    assert all(str(u).startswith(f"{mfe.base_url}/download/") and "signature=" in str(u) for u in raw)
    shown = links.to_string() + links._repr_html_() + links.iloc[0].to_string()
    assert "signature=" not in shown
    assert_no_secrets(shown, mfe.secrets(), "the download links frame")
    assert "signature=" not in toolkit.core.redact.redact(f"GET {raw[0]} failed")  # logs and messages mask it
    # the link works without a token and gives the original (the file's own size); a forged one is 403
    import io
    import urllib.error
    import urllib.request

    from PIL import Image

    with urllib.request.urlopen(str(raw[0]), timeout=10) as resp:
        data = resp.read()
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (images["width"].iloc[0], images["height"].iloc[0])
    with pytest.raises(urllib.error.HTTPError) as forged:
        urllib.request.urlopen(str(raw[0]).replace("signature=", "signature=x"), timeout=10)
    assert forged.value.code == 403
    # the same link each time it is asked for (so a re-import is skipped); unknown file → a 404 row
    again = mf.download_urls([int(images["id"].iloc[0]), 123])
    assert again["download_url"].tolist()[0] == raw[0]
    assert again["http_status"].tolist() == [200, 404]
    assert pd.isna(again["download_url"].iloc[1]) and "123" in again["message"].iloc[1]
    with pytest.raises(toolkit.core.errors.ValidationError, match="format"):
        mf.download_urls(images, format="poster")
