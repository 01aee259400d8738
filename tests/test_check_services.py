"""The live contract check of each of the five services against its emulator (issue 20, part A): all ``ok``
on the sandbox; each shape knob of an emulator turns exactly its row(s) to ``differs`` and leaves the others
``ok``; only read-only calls (GET/HEAD and the token or login POST) reach the service; a failing call is a
``failed`` row, never an exception; no secret and no CPR number in the frame's display, repr, CSV or logs."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

import toolkit
from toolkit.core.check import SCHEMA
from toolkit.core.http import RetryPolicy
from toolkit.sandbox import Sandbox
from toolkit.testing import assert_no_secrets, free_port

SERVICES = ("uddata", "dokus", "livingdocs", "boknett", "mediaflow")
#: the rows of each service's check on the sandbox, in order
ROWS = {
    "uddata": ["token", "roster", "student fields", "photo", "paging", "clock"],
    "dokus": ["login", "product list", "product fields", "one product", "paging", "clock"],
    "livingdocs": ["token", "write scope", "media list", "paging", "clock"],
    "boknett": ["login", "report page", "object fields", "paging", "clock"],
    "mediaflow": ["token", "latest files", "file fields", "paging", "one file", "folder tree", "clock"],
}
#: the POSTs a check may send: the token or login call, nothing else
TOKEN_PATHS = {"uddata": "/oauth/token", "boknett": "/v1/tickets", "mediaflow": "/1/oauth2/token"}
#: (service, knob, value) → the rows that must differ (every other row stays ok)
KNOBS = [
    ("uddata", "shape", "ids_as_numbers", {"student fields"}),
    ("uddata", "shape", "envelope", {"roster"}),
    ("dokus", "shape", "ids_as_text", {"product fields", "one product"}),
    ("dokus", "shape", "skewed_clock", {"clock"}),
    ("livingdocs", "shape", "other_envelope", {"media list"}),
    ("boknett", "shape", "link_without_next", {"paging"}),
    ("boknett", "clock_offset", 3600.0, {"clock"}),
    ("mediaflow", "shape", "envelope", {"latest files"}),
    ("mediaflow", "legacy_shapes", True, set()),  # the first contract's types: the client reads both
]


@pytest.fixture(scope="module")
def sbc() -> Iterator[Sandbox]:
    """This module's own sandbox (its knobs are turned and put back; Livingdocs gets images imported)."""
    with toolkit.sandbox.start(seed=7) as sandbox:
        yield sandbox


def _check(sb: Sandbox, service: str, **extra: Any) -> Any:
    return toolkit.check(service, **sb.credentials(service), **extra)


def _verdicts(result: Any) -> dict[str, str]:
    return dict(zip(result["check"], result["verdict"]))


@pytest.mark.parametrize("service", SERVICES)
def test_the_check_of_the_sandbox_is_all_ok(sbc: Sandbox, service: str) -> None:
    result = _check(sbc, service)
    assert list(result.columns) == list(SCHEMA)
    assert result.attrs["kind"] == "records" and result.attrs["service"] == service
    assert list(result["check"]) == ROWS[service]
    assert set(result["verdict"]) == {"ok"}, result[result["verdict"] != "ok"][["check", "answered"]].to_dict("records")
    assert set(result["service"]) == {service}
    assert result["assumption"].str.len().min() > 20 and result["answered"].str.len().min() > 5
    assert f"{len(ROWS[service])} ok, 0 differ, 0 failed" in result.summary


@pytest.mark.parametrize("service,knob,value,differ", KNOBS, ids=[f"{s}-{k}-{v}" for s, k, v, _ in KNOBS])
def test_each_shape_knob_turns_exactly_its_rows_to_differs(sbc: Sandbox, service: str, knob: str, value: Any,
                                                          differ: set[str]) -> None:
    em = sbc.emulator(service)
    assert knob in em.knobs
    before = getattr(em, knob)
    with em.restored():
        setattr(em, knob, value)
        result = _check(sbc, service)
    verdicts = _verdicts(result)
    assert list(verdicts) == ROWS[service]
    assert {name for name, v in verdicts.items() if v == "differs"} == differ
    assert {name for name, v in verdicts.items() if v != "differs"} == set(ROWS[service]) - differ
    assert all(verdicts[name] == "ok" for name in set(ROWS[service]) - differ)
    for row in result[result["verdict"] == "differs"].itertuples():
        assert row.what_to_do and row.what_to_do != "Nothing."
    assert getattr(em, knob) == before  # put back


def test_uddata_numbers_for_ids_are_named_with_what_the_toolkit_does(sbc: Sandbox) -> None:
    em = sbc.emulator("uddata")
    with em.restored():
        em.shape = "ids_as_numbers"
        row = _check(sbc, "uddata").set_index("check").loc["student fields"]
    assert "cpr_nr: whole number, assumed text" in row["answered"]
    assert "indi_id: whole number, assumed text" in row["answered"]
    assert "reads cpr_nr, indi_id in this shape too" in row["what_to_do"]


def test_boknett_link_without_next_says_what_breaks(sbc: Sandbox) -> None:
    em = sbc.emulator("boknett")
    with em.restored():
        em.shape = "link_without_next"
        row = _check(sbc, "boknett").set_index("check").loc["paging"]
    assert 'Next header: none; Link rel="next": present' in row["answered"]
    assert "without a Next cursor" in row["what_to_do"]


def test_a_skewed_clock_is_measured(sbc: Sandbox) -> None:
    em = sbc.emulator("boknett")
    with em.restored():
        em.clock_offset = -2 * 3600.0
        row = _check(sbc, "boknett").set_index("check").loc["clock"]
    assert row["verdict"] == "differs" and row["answered"] == "2 h behind this computer's clock"
    with em.restored():
        em.clock_offset = 10 * 60.0  # within Boknett's 15 minutes
        row = _check(sbc, "boknett").set_index("check").loc["clock"]
    assert row["verdict"] == "ok" and row["answered"] == "10 min ahead of this computer's clock"


def test_livingdocs_compares_an_imported_entry_and_names_number_ids(sbc: Sandbox) -> None:
    em = sbc.emulator("livingdocs")
    lv = toolkit.livingdocs.connect(**sbc.credentials("livingdocs"))
    try:
        lv.import_images([{"url": em.image_url("ok-1.png"), "id": "c-1", "fileName": "One"}],
                         system_name="contract", progress=False).wait(timeout=30, progress=False)
        with em.restored():
            em.numeric_media_ids = True
            lv.import_images([{"url": em.image_url("ok-2.png"), "id": "c-2", "fileName": "Two"}],
                             system_name="contract", progress=False).wait(timeout=30, progress=False)
    finally:
        lv.close()
    text_ids = _check(sbc, "livingdocs", system_name="contract", external_id="c-1")
    assert list(text_ids["check"]) == ["token", "write scope", "media list", "entry fields", "paging", "clock"]
    assert set(text_ids["verdict"]) == {"ok"}
    number_ids = _verdicts(_check(sbc, "livingdocs", system_name="contract", external_id="c-2"))
    assert {k for k, v in number_ids.items() if v != "ok"} == {"entry fields"}
    assert number_ids["entry fields"] == "differs"


@pytest.mark.parametrize("service", SERVICES)
def test_the_check_sends_no_write(sbc: Sandbox, service: str) -> None:
    em = sbc.emulator(service)
    start = len(em.requests)
    result = _check(sbc, service)
    sent = em.requests[start:]
    assert len(sent) >= 2 and set(result["verdict"]) == {"ok"}
    writes = [(r.method, r.path) for r in sent
              if r.method not in ("GET", "HEAD") and not (r.method == "POST" and r.path == TOKEN_PATHS.get(service))]
    assert not writes, f"the check of {service} sent {writes}"
    assert any(r.method == "GET" for r in sent)


def _wrong(sb: Sandbox, service: str) -> dict[str, Any]:
    creds = dict(sb.credentials(service))
    secret = {"uddata": "client_secret", "dokus": "password", "livingdocs": "token", "boknett": "password",
              "mediaflow": "client_secret"}[service]
    creds[secret] = toolkit.Secret("not-the-right-secret-at-all")
    return creds


@pytest.mark.parametrize("service", SERVICES)
def test_refused_credentials_are_failed_rows_not_an_exception(sbc: Sandbox, service: str) -> None:
    result = toolkit.check(service, **_wrong(sbc, service))
    assert list(result.columns) == list(SCHEMA)
    first = result.iloc[0]
    assert first["verdict"] == "failed" and first["what_to_do"]
    assert (result["verdict"] == "failed").sum() >= len(ROWS[service]) - 1  # (Dokus' clock: its 401 has no Date)
    assert "failed" in result.summary


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_that_does_not_answer_is_failed_rows(service: str, sbc: Sandbox) -> None:
    creds = dict(sbc.credentials(service))
    gone = f"http://127.0.0.1:{free_port()}"
    creds.update({k: gone + ("/1" if service == "mediaflow" else "") for k in ("base_url", "login_url") if k in creds})
    once = {} if service == "dokus" else {"retry": RetryPolicy(attempts=1)}  # Dokus' connect() has no retry=
    result = toolkit.check(service, **creds, **once)
    assert set(result["verdict"]) == {"failed"}
    assert "could not connect" in result.iloc[0]["answered"]


@pytest.mark.parametrize("service", SERVICES)
def test_no_secret_or_cpr_in_the_frame_its_csv_or_the_logs(sbc: Sandbox, service: str, tmp_path: Any,
                                                           debug_logs: pytest.LogCaptureFixture) -> None:
    forbidden = sbc.secrets() + sbc.personal_data()
    assert sbc.emulator("uddata").personal_data()
    results = [_check(sbc, service), toolkit.check(service, **_wrong(sbc, service))]
    for result in results:
        result.to_csv(tmp_path / "rows.csv", index=False)
        shown = [repr(result), str(result), result._repr_html_(), result.to_string(),
                 (tmp_path / "rows.csv").read_text(), repr(result.to_dict("records")), result.summary]
        assert_no_secrets("\n".join(shown), forbidden, f"the check frame of {service}")
    assert debug_logs.records, "nothing was logged: the scan would prove nothing"
    logged = "\n".join(r.getMessage() for r in debug_logs.records)
    assert_no_secrets(logged, forbidden, f"the logs of {service}'s check")


def test_client_check_is_the_same_check(sbc: Sandbox) -> None:
    mf = toolkit.mediaflow.connect(**sbc.credentials("mediaflow"))
    try:
        mf.latest(limit=1)  # a token is held already: the check asks for a fresh one to see its answer
        result = mf.check()
        assert list(result["check"]) == ROWS["mediaflow"] and set(result["verdict"]) == {"ok"}
        assert "a token lives 2 h" in result.set_index("check").loc["token", "answered"]
        assert len(mf.latest(limit=1)) == 1  # the client goes on working after its check
    finally:
        mf.close()
