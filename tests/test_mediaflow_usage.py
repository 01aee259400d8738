"""Usage reporting (issue 19, item 5): ``mf.report_usage`` tells Mediaflow where files are used with the body of
Mediaflow's WordPress plugin, on the core write protocol: one row per file, a re-run reports nothing twice, a
lost answer is looked up in the file's usages (never sent blindly), a dry run sends nothing; ``mf.usages`` reads
them back as the file selector does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import toolkit
from toolkit.core.errors import TransportError, ValidationError
from toolkit.core.http import RetryPolicy
from toolkit.mediaflow.usage import JOURNAL_NAME, USAGE_SCHEMA
from toolkit.sandbox.mediaflow import MediaflowEmulator
from toolkit.testing import assert_no_secrets

from .mediaflow_fixtures import em, mf, mfs  # noqa: F401 - the module's fixtures

PAGE = "https://www.example.se/nyheter/sommar-2025"
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.02, retry_after_cap=0.02)


MEDIAFLOW_SEED = 11
MEDIAFLOW_CONNECT = {"retry": FAST}


def some_files(em: MediaflowEmulator, n: int = 3) -> list[int]:
    return [f["id"] for f in em._newest_first(list(em.files.values())) if f["type"]["type"] == "image"][:n]


def on_page(em: MediaflowEmulator, fid: int, page: str = PAGE) -> list[dict[str, Any]]:
    return [u for u in em.usages.get(fid, []) if u["url"] == page]


def posts(em: MediaflowEmulator) -> list[dict[str, Any]]:
    return [p for p in em.usage_posts if p["path"].endswith("/files/multiple/usages")]


def test_reported_once_with_the_wordpress_body_and_a_rerun_reports_nothing(mf: Any, em: MediaflowEmulator,
                                                                           tmp_path: Path) -> None:
    ids, journal = some_files(em), tmp_path / "usage.sqlite"
    rows = mf.report_usage(ids, PAGE, "Sommar 2025", project="Webb", contact="Redaktionen", journal=journal,
                           progress=False)
    assert list(rows.columns) == list(USAGE_SCHEMA) and rows.attrs["kind"] == "assets"
    assert rows["outcome"].tolist() == ["reported"] * 3 and rows["http_status"].tolist() == [200] * 3
    assert rows["id"].tolist() == ids and rows["message"].str.contains("used on Sommar 2025").all()
    assert all(len(on_page(em, fid)) == 1 for fid in ids)
    body = next(p["body"] for p in posts(em) if p["body"]["id"] == [ids[0]])  # posts go out concurrently
    assert body == {"id": [ids[0]], "types": ["web"], "date": dt.datetime.now(dt.timezone.utc).date().isoformat(),
                    "contact": "Redaktionen", "amount": 1, "project": "Webb", "removed": False,
                    "web": {"page": PAGE, "pageName": "Sommar 2025"}}
    again = mf.report_usage(ids, PAGE, "Sommar 2025", project="Webb", contact="Redaktionen", journal=journal,
                            progress=False)
    assert again["outcome"].tolist() == ["already_reported"] * 3 and len(posts(em)) == 3
    assert again["message"].str.contains("not reported again").all()
    assert all(len(on_page(em, fid)) == 1 for fid in ids)  # before: no report_usage at all
    listed = mf.usages(ids)
    assert listed["file_id"].tolist() == ids and listed["url"].tolist() == [PAGE] * 3
    assert listed["type"].tolist() == ["WEB"] * 3 and listed["page_name"].tolist() == ["Sommar 2025"] * 3
    assert str(listed["reported_at"].dtype) == "datetime64[ns]" and listed["reported_by"].notna().all()


def test_the_default_journal_is_in_the_state_folder_and_none_remembers_nothing(mfs: Any, em: MediaflowEmulator,
                                                                               monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("TOOLKIT_STATE_DIR", str(tmp_path / "state"))
    fid = some_files(em, 1)[0]
    with toolkit.mediaflow.connect(**mfs.credentials("mediaflow")) as first:
        assert first.report_usage(fid, PAGE, "P", progress=False)["outcome"].tolist() == ["reported"]
    assert (tmp_path / "state" / JOURNAL_NAME).is_file()
    with toolkit.mediaflow.connect(**mfs.credentials("mediaflow")) as second:  # another session, same machine
        assert second.report_usage(fid, PAGE, "P", progress=False)["outcome"].tolist() == ["already_reported"]
        assert second.report_usage(fid, PAGE, "P", journal=None, progress=False)["outcome"].tolist() == ["reported"]
    assert len(on_page(em, fid)) == 2  # journal=None: this call only, so it was reported again
    runs = toolkit.runs()
    assert (runs["kind"] == "usage report").sum() >= 3


def test_a_dry_run_sends_nothing_and_says_what_the_journal_knows(mf: Any, em: MediaflowEmulator,
                                                                 tmp_path: Path) -> None:
    ids, journal = some_files(em, 2), tmp_path / "usage.sqlite"
    mark = len(em.requests)
    plan = mf.report_usage(ids, PAGE, "P", dry_run=True, journal=journal, progress=False)
    assert plan["outcome"].tolist() == ["would_report"] * 2 and len(em.requests) == mark  # not even a token
    mf.report_usage(ids[:1], PAGE, "P", journal=journal, progress=False)
    plan = mf.report_usage(ids, PAGE, "P", dry_run=True, journal=journal, progress=False)
    assert plan["outcome"].tolist() == ["already_reported", "would_report"] and len(posts(em)) == 1


def test_an_unknown_file_fails_with_mediaflows_message_and_the_others_are_reported(mf: Any, em: MediaflowEmulator,
                                                                                   tmp_path: Path) -> None:
    fid = some_files(em, 1)[0]
    rows = mf.report_usage(pd.DataFrame({"id": [fid, 123, fid]}), PAGE, "P", journal=tmp_path / "j.sqlite",
                           progress=False)
    assert rows["id"].tolist() == [fid, 123]  # a file given twice is one row
    assert rows["outcome"].tolist() == ["reported", "failed"] and rows["http_status"].tolist() == [200, 404]
    assert "File 123 does not exist" in rows["message"].iloc[1] and rows["message"].iloc[1].startswith("not reported")
    again = mf.report_usage([fid, 123], PAGE, "P", journal=tmp_path / "j.sqlite", progress=False)
    assert again["outcome"].tolist() == ["already_reported", "failed"] and len(on_page(em, fid)) == 1


def test_a_removal_is_reported_and_a_report_after_it_is_sent_again(mf: Any, em: MediaflowEmulator,
                                                                   tmp_path: Path) -> None:
    fid, journal = some_files(em, 1)[0], tmp_path / "usage.sqlite"
    mf.report_usage(fid, PAGE, "P", journal=journal, progress=False)
    removed = mf.report_usage(fid, PAGE, "P", remove=True, journal=journal, progress=False).iloc[0]
    assert removed["outcome"] == "reported" and removed["removed"] and "no longer used" in removed["message"]
    assert posts(em)[-1]["body"]["removed"] is True and on_page(em, fid) == []
    assert mf.report_usage(fid, PAGE, "P", remove=True, journal=journal,
                           progress=False)["outcome"].tolist() == ["already_reported"]
    back = mf.report_usage(fid, PAGE, "P", journal=journal, progress=False)
    assert back["outcome"].tolist() == ["reported"] and len(on_page(em, fid)) == 1


def lose_answers(mf: Any, *, look_fails: bool = False) -> Any:
    """Every usage report reaches Mediaflow and its answer is lost; with ``look_fails`` the usage list cannot be
    read either. Returns the original request (to put back)."""
    http = mf.aio.http
    original = http.request

    async def request(method: str, path: str, **kw: Any) -> Any:
        if method == "POST" and "usage" in path:
            await original(method, path, **kw)
            raise TransportError("the connection broke while reading the answer (test)", service="mediaflow")
        if look_fails and method == "GET" and path.endswith("/usage"):
            raise TransportError("the usage list broke (test)", service="mediaflow")
        return await original(method, path, **kw)

    http.request = request
    return original


def test_a_lost_answer_is_looked_up_never_sent_twice(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    ids, journal = some_files(em, 2), tmp_path / "usage.sqlite"
    lose_answers(mf)
    rows = mf.report_usage(ids, PAGE, "P", journal=journal, progress=False)
    assert rows["outcome"].tolist() == ["reported"] * 2 and rows["message"].str.contains("answer was lost").all()
    assert len(posts(em)) == 2 and all(len(on_page(em, fid)) == 1 for fid in ids)


def test_a_look_that_fails_is_in_doubt_and_the_rerun_looks_before_sending(mf: Any, em: MediaflowEmulator,
                                                                         tmp_path: Path) -> None:
    fid, journal = some_files(em, 1)[0], tmp_path / "usage.sqlite"
    original = lose_answers(mf, look_fails=True)
    first = mf.report_usage(fid, PAGE, "P", journal=journal, progress=False).iloc[0]
    assert first["outcome"] == "in_doubt" and "may have been stored" in first["message"]
    assert len(on_page(em, fid)) == 1  # Mediaflow did record it
    second = mf.report_usage(fid, PAGE, "P", journal=journal, progress=False).iloc[0]
    assert second["outcome"] == "in_doubt" and len(posts(em)) == 1  # cannot look: not sent blindly
    mf.aio.http.request = original
    third = mf.report_usage(fid, PAGE, "P", journal=journal, progress=False).iloc[0]
    assert third["outcome"] == "already_reported" and "Mediaflow lists the usage" in third["message"]
    assert len(posts(em)) == 1 and len(on_page(em, fid)) == 1


def test_bad_arguments_are_refused_before_anything_is_sent(mf: Any, em: MediaflowEmulator) -> None:
    mark = len(em.requests)
    fid = some_files(em, 1)[0]
    for kwargs in ({"page_url": "www.example.se"}, {"page_url": None}, {"page_name": " "}, {"types": ()},
                   {"types": [""]}, {"remove": "yes"}, {"contact": 5}):
        args = {"page_url": PAGE, "page_name": "P", **kwargs}
        with pytest.raises(ValidationError):
            mf.report_usage(fid, args.pop("page_url"), args.pop("page_name"), **args, progress=False)
    with pytest.raises(ValidationError) as info:
        mf.report_usage([1.5], PAGE, "P", progress=False)  # before (download_urls too): taken as file 1
    assert "file id" in str(info.value) and "mf.search()" in str(info.value)
    assert len(em.requests) == mark


def test_the_page_address_is_shown_through_the_redactor(mf: Any, em: MediaflowEmulator, tmp_path: Path) -> None:
    page = "https://intra.example.se/sida?token=hemligt-sidtoken-42"
    rows = mf.report_usage(some_files(em, 1), page, "Intranät", journal=tmp_path / "j.sqlite", progress=False)
    assert rows["outcome"].tolist() == ["reported"] and str(rows["page_url"].iloc[0]) == page  # code gets it
    shown = rows.to_string() + rows._repr_html_()
    assert "hemligt-sidtoken-42" not in shown
    assert_no_secrets(shown + rows.summary, em.secrets(), "the usage rows")
