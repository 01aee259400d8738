"""Livingdocs client over loopback against the sandbox: checks, chunks, results, jobs, media, auth, secrets."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pandas as pd
import pytest

import toolkit
from toolkit.core.errors import Forbidden, JobTimeout, NotFound, Unauthorized, ValidationError
from toolkit.livingdocs import WebhookInbox, check_images
from toolkit.testing import assert_no_secrets

COLUMNS = ["external_id", "outcome", "message", "title", "media_id", "url", "width", "height", "mime_type", "job_id",
           "http_status"]


@pytest.fixture(scope="module")
def lsb() -> Iterator[Any]:
    with toolkit.sandbox.start(services=["livingdocs"], seed=21) as sandbox:
        yield sandbox


@pytest.fixture
def em(lsb: Any) -> Any:
    emulator = lsb.emulator("livingdocs")
    emulator.reset()
    emulator.job_seconds = 0.1
    emulator.daily_limit = None
    emulator.webhook_delay = 0.0
    lsb.set_faults("livingdocs")
    emulator.requests.clear()
    return emulator


@pytest.fixture
def lv(lsb: Any, em: Any) -> Iterator[Any]:
    client = toolkit.livingdocs.connect(**lsb.credentials("livingdocs"))
    yield client
    client.close()


def posts(em: Any) -> int:
    return sum(1 for r in em.requests if r.method == "POST" and r.path.endswith("/import/images"))


def test_one_row_per_input_in_order_bad_rows_never_sent(lv: Any, em: Any) -> None:
    images = [
        {"url": em.image_url("ok-1.png"), "id": "a1", "fileName": "First"},
        {"url": "data:image/png;base64,iVBORw0KGgo=", "id": "data-row"},
        {"url": em.image_url("missing.jpg"), "id": "a2", "fileName": "Missing"},
        {"url": "ftp://example.org/x.png", "id": "ftp-row"},
        {"url": em.image_url("photo-1.jpg"), "id": "a3"},
        {"url": em.image_url("ok-2.png"), "id": "a1", "fileName": "Repeat of a1"},
        {"url": em.image_url("old.bmp"), "id": "a4"},
        {"url": em.image_url("ok-3.png")},
        {"url": em.image_url("logo.svg"), "id": 5, "metadata": {"caption": "svg"}},
    ]
    job = lv.import_images(images, system_name="archive", chunk_size=2)
    assert len(job.ids) == 3  # 5 good rows in chunks of 2
    job.wait(timeout=60, progress=False)
    res = job.results()
    assert list(res.columns) == COLUMNS
    assert res.attrs["kind"] == "assets" and res.attrs["service"] == "livingdocs"
    assert res["external_id"].tolist()[:7] == ["a1", "data-row", "a2", "ftp-row", "a3", "a1", "a4"]
    assert res["outcome"].tolist() == ["success", "invalid", "failed", "invalid", "success", "invalid", "failed",
                                      "invalid", "success"]
    assert "data:" in res.loc[1, "message"] and "http(s)" in res.loc[3, "message"]
    assert "row 0" in res.loc[5, "message"] and "no id" in res.loc[7, "message"]
    assert "404" in res.loc[2, "message"] and "BMP" in res.loc[6, "message"]
    assert res.loc[8, "external_id"] == "5" and res.loc[8, "mime_type"] == "image/svg+xml"
    assert res.loc[0, "title"] == "First" and res.loc[0, "width"] == 48 and res.loc[0, "media_id"]
    # rows of one chunk name its job; invalid rows name none
    assert res.loc[0, "job_id"] == res.loc[2, "job_id"] == job.ids[0]
    assert res[res["outcome"] == "invalid"]["job_id"].isna().all()
    sent = [img["id"] for j in em.jobs.values() for img in j["images"]]
    assert sent == ["a1", "a2", "a3", "a4", "5"]
    assert em.entry("archive", "a1")["title"] == "First"
    st = job.status()
    assert list(st.columns) == ["job_id", "state", "finished", "started_at", "total", "success", "skipped", "failed",
                                "failed_polls"]
    assert st["job_id"].tolist() == job.ids and st["finished"].all()
    assert st["total"].tolist() == [2, 2, 1] and st["success"].sum() == 3 and st["failed"].sum() == 2


def test_dataframe_aliases_and_metadata_columns(lv: Any, em: Any) -> None:
    df = pd.DataFrame({"url": [em.image_url("ok-4.png"), em.image_url("anim.gif")], "id": [101, 102],
                       "file_name": ["Four", "Gif"], "media_type": ["image", None],
                       "metadata.caption": ["c4", None], "metadata": [None, json.dumps({"credit": "me"})]})
    res = lv.import_images(df, system_name="legacy").results()
    assert res["outcome"].tolist() == ["success", "success"] and res["title"].tolist() == ["Four", "Gif"]
    assert em.entry("legacy", "101")["metadata"] == {"caption": "c4"}
    assert em.entry("legacy", "102")["metadata"] == {"credit": "me"}
    again = lv.import_images(df, system_name="legacy").results()
    assert again["outcome"].tolist() == ["skipped", "skipped"] and again["message"].str.contains("already").all()
    assert again["media_id"].tolist() == res["media_id"].tolist()


def test_call_arguments_checked_before_sending(lv: Any, em: Any) -> None:
    good = [{"url": em.image_url("ok-1.png"), "id": "x"}]
    big = {"note": "ø" * 4100}  # 4100 characters but 8211 bytes of UTF-8
    with pytest.raises(ValidationError, match="8192"):
        lv.import_images(good, system_name="archive", context=big)
    with pytest.raises(ValidationError, match="system_name"):
        lv.import_images(good, system_name="")
    with pytest.raises(ValidationError, match="chunk_size"):
        lv.import_images(good, system_name="archive", chunk_size=0)
    with pytest.raises(ValidationError, match="webhook"):
        lv.import_images(good, system_name="archive", webhook="file:///tmp/x")
    with pytest.raises(ValidationError):
        lv.import_images("images.csv", system_name="archive")
    assert posts(em) == 0
    # exactly at the limit is sent
    ok = {"n": "x" * (8192 - len('{"n":""}'))}
    assert lv.import_images(good, system_name="archive", context=ok).results()["outcome"].tolist() == ["success"]


def test_check_images_marks_later_repeats_and_bad_metadata() -> None:
    rows = check_images([{"url": "https://x.test/a.png", "id": "1"}, {"url": "https://x.test/b.png", "id": 1.0},
                         {"url": "https://x.test/c.png", "id": "2", "metadata": [1, 2]},
                         {"url": " http://x.test/d.png ", "id": " 3 "}, "not a record"])
    assert [r.payload is not None for r in rows] == [True, False, False, True, False]
    assert rows[3].payload["url"] == "http://x.test/d.png" and rows[3].payload["id"] == "3"
    assert rows[3].payload["fileName"] == "d.png"


def test_tokens_unknown_expired_and_missing_scope(lsb: Any, em: Any) -> None:
    images = [{"url": em.image_url("ok-1.png"), "id": "t1"}]
    for creds, cls, words in [({"base_url": em.base_url, "token": "ldpat_not_a_known_token_123"}, Unauthorized,
                               "not accepted"),
                              (em.expired_credentials(), Unauthorized, "expired"),
                              (em.read_only_credentials(), Forbidden, "public-api:write")]:
        with toolkit.livingdocs.connect(**creds) as bad:
            with pytest.raises(cls, match=words) as info:
                bad.import_images(images, system_name="archive")
            assert_no_secrets(str(info.value) + repr(info.value) + repr(bad), em.secrets() + [creds["token"]])
    assert not em.jobs and not em.media
    with toolkit.livingdocs.connect(**em.read_only_credentials()) as reader:
        assert reader.media(["t1"], "archive")["found"].tolist() == [False]  # read scope suffices


def test_wait_timeout_leaves_job_waitable_and_few_status_calls(lv: Any, em: Any) -> None:
    em.job_seconds = 2.0
    job = lv.import_images(em.sample_images(3), system_name="archive")
    with pytest.raises(JobTimeout, match="still running"):
        job.wait(timeout=0.3, progress=False)
    job.wait(timeout=60, progress=False)
    calls = sum(1 for r in em.requests if r.path.endswith("/import/images/status"))
    assert calls < 12
    assert job.results()["outcome"].tolist() == ["success"] * 3


def test_failed_job_keeps_every_row_and_names_the_job(lv: Any, em: Any) -> None:
    em.fail_next_jobs = 1
    job = lv.import_images(em.sample_images(4), system_name="archive", chunk_size=2, concurrency=1)
    res = job.results()
    assert len(res) == 4
    assert res["outcome"].tolist() == ["failed", "failed", "success", "success"]
    assert res.loc[0, "job_id"] == job.ids[0] and job.ids[0] in res.loc[0, "message"]
    assert job.status()["state"].tolist() == ["failed", "success"]


def test_webhook_inbox_wakes_the_wait_even_when_it_arrives_first(lv: Any, em: Any) -> None:
    em.job_seconds = 0.0
    with WebhookInbox() as inbox:
        job = lv.import_images(em.sample_images(2), system_name="archive", webhook=inbox, context={"batch": 7})
        assert inbox.wait_for(job.ids, timeout=10)  # the webhook is in before anyone waits
        job.wait(timeout=60, inbox=inbox, progress=False)
        msgs = inbox.messages()
        assert msgs["job_id"].tolist() == job.ids and msgs["state"].tolist() == ["success"]
        assert msgs.loc[0, "context"] == {"batch": 7} and msgs.loc[0, "success"] == 2
        em.job_seconds = 1.5
        job2 = lv.import_images(em.sample_images(2, prefix="w"), system_name="archive", webhook=inbox.url)
        before = sum(1 for r in em.requests if r.path.endswith("/status"))
        job2.wait(timeout=60, inbox=inbox, progress=False)
        assert job2.ids[0] in inbox.job_ids() and job2.finished
        assert sum(1 for r in em.requests if r.path.endswith("/status")) - before <= 6
        assert "ldpat_" not in repr(inbox) + msgs.to_string()
    assert not inbox.running


def test_reattach_by_id_gives_the_same_results_and_jobs_lists_them(lsb: Any, lv: Any, em: Any) -> None:
    images = em.sample_images(5) + [{"url": em.image_url("corrupt.png"), "id": "broken"}]
    job = lv.import_images(images, system_name="archive")
    first = job.results()
    with toolkit.livingdocs.connect(**lsb.credentials("livingdocs")) as other:  # another kernel
        again = other.job(job.ids[0]).results()
        pd.testing.assert_frame_equal(pd.DataFrame(again), pd.DataFrame(first))
        with pytest.raises(NotFound, match="no import job"):
            other.job("doesnotexist")
        assert other.jobs()["job_id"].tolist() == job.ids
    jobs = lv.jobs()
    assert jobs["job_id"].tolist() == job.ids and jobs.attrs["kind"] == "jobs"
    assert jobs.loc[0, "images"] == 6 and jobs.loc[0, "system_name"] == "archive"


@pytest.mark.parametrize("prefix, version", [("", "v1"), ("/proxy/api", "2026-01"), ("/proxy/api", "beta")])
def test_path_prefix_versions_and_media_lookup(em: Any, prefix: str, version: str) -> None:
    with toolkit.livingdocs.connect(base_url=em.base_url + prefix, token=em.write_token, api_version=version) as lv:
        res = lv.import_images(em.sample_images(3), system_name="archive").results()
        media = lv.media(list(res["external_id"]) + ["unknown"], system_name="archive")
    assert media["found"].tolist() == [True, True, True, False]
    assert media["media_id"].tolist()[:3] == res["media_id"].tolist()
    assert media.loc[0, "metadata"] == {"caption": "Sandbox image 0"} and media.attrs["kind"] == "assets"
    paths = {r.path for r in em.requests}
    assert f"{prefix}/api/{version}/import/images" in paths and f"{prefix}/api/{version}/mediaLibrary" in paths


def test_no_token_in_logs_reprs_errors_or_frames(lsb: Any, lv: Any, em: Any, debug_logs: Any) -> None:
    with WebhookInbox() as inbox:
        job = lv.import_images(em.sample_images(3) + [{"url": "nope", "id": "bad"}], system_name="archive",
                               webhook=inbox)
        job.wait(timeout=60, inbox=inbox, progress=False)
        texts = [repr(lv), repr(job), job.results().to_string(), job.status().to_string(), lv.jobs().to_string(),
                 inbox.messages().to_string(), repr(inbox), json.dumps(inbox.bodies())]
    for creds in (em.expired_credentials(), em.read_only_credentials()):
        with toolkit.livingdocs.connect(**creds) as bad:
            try:
                bad.import_images(em.sample_images(1), system_name="archive")
            except toolkit.ToolkitError as exc:
                texts += [str(exc), repr(exc), repr(exc.details)]
    assert any("import/images" in r.getMessage() for r in debug_logs.records)
    assert_no_secrets("\n".join(texts) + debug_logs.text, em.secrets(), where="livingdocs output")
    assert all("token" not in r.query.lower() for r in em.requests)
