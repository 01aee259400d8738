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

FOLDER_ID = -31  # the notebook's folder: six images, one without a preview, one with a negative id
SYSTEM_NAME = "mediaflow"
ID_PREFIX = "mediaflow-"


# -- the notebook's flow, cell by cell --------------------------------------------------------------------
def text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) or str(value) == "" else str(value)


def folder_images(mf: Any, folder_id: int) -> pd.DataFrame:
    images = mf.files(folder_id, type="image", fields="all")
    images = images[images["type"] == "image"].reset_index(drop=True)
    return images.assign(external_id=ID_PREFIX + images["id"].astype("string"))


def carry(carried: pd.DataFrame) -> list[dict[str, Any]]:
    rows = [{"id": r.external_id, "url": text(r.medium_preview), "fileName": r.filename,
             "metadata": {"description": text(r.description), "photographer": text(r.photographer),
                          "alttext": text(r.alttext), "mediaflow_id": int(r.id)}}
            for r in carried.itertuples()]
    return [row for row in rows if row["url"]]


def import_to_livingdocs(lv: Any, rows: list[dict[str, Any]]) -> pd.DataFrame:
    job = lv.import_images(rows, system_name=SYSTEM_NAME, progress=False)
    job.wait(timeout=120)
    return job.results()


def join(carried: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    lv_columns = (results[["external_id", "status", "reason", "media_id", "url", "width", "height", "mime_type"]]
                  .rename(columns={c: f"livingdocs_{c}" for c in ("media_id", "url", "width", "height", "mime_type")}))
    joined = carried.merge(lv_columns, on="external_id", how="left", validate="one_to_one")
    not_sent = joined["status"].isna()
    joined["status"] = joined["status"].fillna("not_sent")
    joined.loc[not_sent, "reason"] = "Mediaflow has no preview of this file"
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


def test_a_folder_lands_once_with_its_metadata_and_the_second_run_is_all_skipped(pair: Any) -> None:
    sb, mf, lv = pair
    mfe, lve = sb.emulator("mediaflow"), sb.emulator("livingdocs")
    carried = folder_images(mf, FOLDER_ID)
    truth = {f["id"]: f for f in mfe.files.values() if f["folderId"] == FOLDER_ID and f["type"]["type"] == "image"}
    assert sorted(carried["id"].tolist()) == sorted(truth)
    with_preview = {i for i, f in truth.items() if f["hasPreview"]}
    assert 0 < len(with_preview) < len(truth), "the folder should hold images with and without a preview"

    rows = carry(carried)
    first = import_to_livingdocs(lv, rows)
    joined = join(carried, first)

    # one row per Mediaflow image, in the Mediaflow order, each id once
    assert len(joined) == len(carried) and joined["id"].tolist() == carried["id"].tolist()
    assert joined["external_id"].is_unique
    status = dict(zip(joined["id"], joined["status"]))
    assert status == {i: ("success" if i in with_preview else "not_sent") for i in truth}
    assert joined.loc[joined["status"] == "not_sent", "reason"].str.contains("no preview").all()

    # what Livingdocs holds: the carried id, name and metadata, fetched from Mediaflow's medium preview
    for fid in with_preview:
        f = truth[fid]
        entry = lve.entry(SYSTEM_NAME, f"{ID_PREFIX}{fid}")
        assert entry is not None
        assert entry["title"] == f["filename"]
        assert entry["metadata"] == {"description": f["description"] or None, "photographer": f["photographer"] or None,
                                     "alttext": f["alttext"] or None, "mediaflow_id": fid}
        source = entry["_source_url"]
        assert source == f"{mfe.base_url}/previews/{fid}/medium.jpg"
        assert urlsplit(source).hostname == "127.0.0.1"
        assert lve.fetch_counts[source] == 1  # Livingdocs fetched it from Mediaflow over HTTP, once
        row = joined[joined["id"] == fid].iloc[0]
        assert row["livingdocs_media_id"] == entry["id"]
        assert urlsplit(row["livingdocs_url"]).hostname == "127.0.0.1"

    # the same import again: every image skipped, the library unchanged (each image exactly once)
    second = import_to_livingdocs(lv, rows)
    assert second["status"].tolist() == ["skipped"] * len(rows)
    assert second["media_id"].tolist() == first["media_id"].tolist()
    stored = [ext for (system, ext) in lve.media if system == SYSTEM_NAME]
    assert sorted(stored) == sorted(f"{ID_PREFIX}{i}" for i in with_preview)
    assert all(lve.import_counts[(SYSTEM_NAME, ext)] == 1 for ext in stored)
    library = lv.media(joined["external_id"], SYSTEM_NAME)
    assert library["found"].tolist() == [i in with_preview for i in joined["id"]]
    assert library.loc[library["found"], "version"].tolist() == [1] * len(with_preview)

    # what landed can be shown: Livingdocs' own links give the pictures at the stored size
    landed = joined[joined["status"].isin(["success", "skipped"])]
    pictures = [lv.fetch_image(url) for url in landed["livingdocs_url"]]
    assert [(p.width, p.height) for p in pictures] == list(zip(landed["livingdocs_width"], landed["livingdocs_height"]))

    outputs = "\n".join([carried.to_string(), pd.DataFrame(rows).to_string(), first.to_string(),
                         joined.to_string(), second.to_string(), library.to_string(), repr(mf), repr(lv)])
    assert_no_secrets(outputs, sb.secrets(), "the DAM → CMS outputs")


def test_a_link_livingdocs_cannot_fetch_is_a_failed_row_with_the_reason(pair: Any) -> None:
    sb, mf, lv = pair
    mfe = sb.emulator("mediaflow")
    carried = folder_images(mf, FOLDER_ID)
    rows = carry(carried)
    broken = rows[0]["id"]
    rows[0] = {**rows[0], "url": f"{mfe.base_url}/previews/999999999/medium.jpg"}  # a file gone from Mediaflow
    joined = join(carried, import_to_livingdocs(lv, rows))
    assert len(joined) == len(carried)
    row = joined[joined["external_id"] == broken].iloc[0]
    assert row["status"] == "failed"
    assert "404" in row["reason"]
    failed = joined[~joined["status"].isin(["success", "skipped"])]
    assert set(failed["status"]) == {"failed", "not_sent"}
    assert (joined["status"] == "success").sum() == len(rows) - 1
    assert_no_secrets(joined.to_string(), sb.secrets(), "the joined frame")
