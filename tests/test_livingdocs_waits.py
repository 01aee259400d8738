"""Livingdocs waits and sends that stay bounded when the service misbehaves: failing status polls, an import
answer that never comes, a service that takes the connection and never answers (private sandboxes and a
silent TCP server on 127.0.0.1)."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

import toolkit
from toolkit.core.errors import JobTimeout, Unauthorized
from toolkit.core.http import RetryPolicy, Timeouts
from toolkit.core.sync import run
from toolkit.livingdocs.jobs import ImportJob, ServerJob
from toolkit.testing import silent_server

STATUS_PATH = "/api/v1/import/images/status"
IMPORT_PATH = "/api/v1/import/images"
SYSTEM = "archive"

#: no repeat inside one status call: every 503 the emulator gives is a failed poll of the wait (the
#: production case is five 503s in a row with the default policy; this makes it happen at 30 %)
ONE_TRY = RetryPolicy(attempts=1, base=0.01, cap=0.01, retry_after_cap=0.01)


def status_503s(em: Any) -> int:
    return sum(1 for r in em.requests if r.path == STATUS_PATH and r.status == 503)


def posts(em: Any) -> int:
    return sum(1 for r in em.requests if r.method == "POST" and r.path == IMPORT_PATH)


# -- 1. failing status polls ------------------------------------------------------------------------------
def test_failing_status_polls_do_not_end_the_wait_and_are_counted(make_sandbox: Any) -> None:
    """30 % of the status polls answer 503: the wait returns every job's result, and says how many polls
    failed (before: the first poll that failed raised ServerError 503 out of wait())."""
    sb = make_sandbox(services=["livingdocs"], seed=21)
    em = sb.emulator("livingdocs")
    em.job_seconds = 0.6
    em.status_error_rate = 0.3
    images = em.sample_images(30)
    with toolkit.livingdocs.connect(**sb.credentials("livingdocs"), retry=ONE_TRY) as lv:
        job = lv.import_images(images, system_name=SYSTEM, chunk_size=2, progress=False)
        assert len(job.ids) == 15
        status = job.wait(timeout=120, progress=False)
        res = job.results()
    assert status["finished"].all() and set(status["state"]) == {"success"}
    failed = status_503s(em)
    assert failed >= 1, "no status poll failed: pick another seed"
    assert status.attrs["failed_polls"] == int(status["failed_polls"].sum()) == failed
    assert f"{failed} status poll" in status.attrs["summary"] and "asked again" in status.attrs["summary"]
    assert "503" in status.attrs["summary"]
    assert len(res) == 30 and (res["outcome"] == "success").all()
    assert res.attrs["failed_polls"] == failed and "status poll" in res.attrs["summary"]


def test_status_polls_that_keep_failing_end_in_job_timeout_and_the_jobs_go_on(make_sandbox: Any) -> None:
    """Every status poll fails: JobTimeout after the timeout (saying why), no job is called failed, and a
    later wait gets the results."""
    sb = make_sandbox(services=["livingdocs"], seed=22)
    em = sb.emulator("livingdocs")
    em.job_seconds = 0.1
    em.status_error_rate = 1.0
    with toolkit.livingdocs.connect(**sb.credentials("livingdocs"), retry=ONE_TRY) as lv:
        job = lv.import_images(em.sample_images(6), system_name=SYSTEM, chunk_size=2, progress=False)
        started = time.monotonic()
        with pytest.raises(JobTimeout) as info:
            job.wait(timeout=2, progress=False)
        took = time.monotonic() - started
        assert took < 2 + 5
        text = str(info.value)
        assert "still running after 2 s" in text and "status polls failed" in text and "503" in text
        # the growing pause after rounds that all failed: a handful of rounds, not one every 0.3 s
        assert status_503s(em) <= 3 * 6
        st = job.status_frame()
        assert not st["finished"].any() and set(st["state"]) == {"started"}
        em.status_error_rate = 0.0
        res = job.results(timeout=30)
    assert (res["outcome"] == "success").all()


def test_a_refused_status_poll_still_raises(make_sandbox: Any) -> None:
    """Only transient failures are asked again: a token the service no longer takes ends the wait."""
    sb = make_sandbox(services=["livingdocs"], seed=23)
    em = sb.emulator("livingdocs")
    em.job_seconds = 0.5
    with toolkit.livingdocs.connect(**sb.credentials("livingdocs")) as lv:
        job = lv.import_images(em.sample_images(2), system_name=SYSTEM, progress=False)
        em.expire_tokens()
        with pytest.raises(Unauthorized, match="expired"):
            job.wait(timeout=30, progress=False)


# -- a TCP server that takes every connection and never answers ------------------------------------------
@pytest.fixture
def silent() -> Iterator[Any]:
    """127.0.0.1, a free port: accepts, reads each request's head (its first line is recorded), never answers."""
    with silent_server() as server:
        yield server


def test_a_silent_status_poll_is_cut_off_at_the_waits_timeout(silent: dict[str, Any]) -> None:
    """A status call that would wait 30 s for its answer does not hold the wait past its timeout."""
    lv = toolkit.livingdocs.connect(base_url=f"http://127.0.0.1:{silent['port']}", token="ldpat_test-not-a-token",
                                    timeouts=Timeouts(read=30, total=60))
    job = ImportJob(lv.aio, jobs=[ServerJob("abc1234", total=3)])
    started = time.monotonic()
    with pytest.raises(JobTimeout, match="no answer before the wait's timeout"):
        run(job.wait(timeout=1, progress=False))
    assert time.monotonic() - started < 1 + 5
    assert job.status_frame()["failed_polls"].tolist() == [1]
    lv.close()


# -- 2. an import answer that never comes -----------------------------------------------------------------
def test_a_lost_import_answer_whose_images_are_in_the_library_is_not_sent_again(make_sandbox: Any) -> None:
    """The service takes every import and answers after the client gave up: the chunk's images are looked up
    in the media library, found as sent, and taken — one POST per chunk (before: sent 4 times, then in_doubt)."""
    sb = make_sandbox(services=["livingdocs"], seed=24)
    em = sb.emulator("livingdocs")
    em.job_seconds = 0.05
    em.import_answer_delay = 1.5
    images = em.sample_images(8)
    with toolkit.livingdocs.connect(**sb.credentials("livingdocs"), timeouts=Timeouts(read=0.5, total=0.9)) as lv:
        job = lv.import_images(images, system_name=SYSTEM, chunk_size=4, progress=False)
        res = job.results()
    assert posts(em) == 2 and len(em.jobs) == 2 and job.ids == []
    assert res["outcome"].tolist() == ["success"] * 8, res[["outcome", "message"]].to_string()
    assert res["message"].str.contains("media library holds these images as sent").all()
    assert res["job_id"].isna().all()
    for row in res.itertuples():
        entry = em.entry(SYSTEM, row.external_id)
        assert entry is not None and row.media_id == entry["id"] and row.width == entry["asset"]["width"]
    assert set(em.import_counts.values()) == {1}


def test_a_bulk_import_against_a_silent_service_ends_in_bounded_time_one_post_per_chunk(
        silent: dict[str, Any]) -> None:
    """A service that takes the connection and never answers: the first chunk is sent once (the look in the
    media library that must come before a second send gets no answer either) and its rows say in doubt; no
    further chunk is sent (their rows say why); the call ends within about one POST's read timeout plus one
    call's bound (before: 4 POSTs of the first chunk, then more chunks, 4 POSTs each)."""
    lv = toolkit.livingdocs.connect(base_url=f"http://127.0.0.1:{silent['port']}", token="ldpat_test-not-a-token",
                                    timeouts=Timeouts(read=0.5, total=1.5))
    images = [{"url": f"https://images.example/{i}.png", "id": f"img-{i}"} for i in range(40)]
    started = time.monotonic()
    job = lv.import_images(images, system_name=SYSTEM, chunk_size=4, progress=False)
    res = job.results(timeout=5)
    took = time.monotonic() - started
    lv.close()
    post_lines = [r for r in silent["requests"] if r.startswith("POST ")]
    assert took < 20, took  # 0.5 s (the POST) + 1.5 s (the look), generously
    assert len(res) == 40 and set(res["outcome"]) <= {"in_doubt", "failed"}
    doubt = res[res["outcome"] == "in_doubt"]
    # the chunk in doubt was sent exactly once; the others never
    assert len(post_lines) == 1 and doubt.index.tolist() == [0, 1, 2, 3]
    assert doubt["message"].str.contains("media library could not be searched").all()
    assert res.iloc[4:]["message"].str.contains("not sent: Livingdocs answered neither").all()
    gets = [r for r in silent["requests"] if r.startswith("GET ") and "mediaLibrary" in r]
    assert gets, "the library was looked at before anything was sent again"
