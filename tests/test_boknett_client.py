"""The Boknett client over loopback against the sandbox emulator: login, ticket renewal, the Date header
and the server's clock, the object report (values, paging, after/pagesize checks), the incremental pull
with its state file, and no secret anywhere."""

from __future__ import annotations

import time
import traceback
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

import toolkit
from toolkit.core.errors import TransportError, Unauthorized, ValidationError
from toolkit.core.http import RetryPolicy
from toolkit.sandbox import Sandbox
from toolkit.sandbox.boknett import BoknettEmulator
from toolkit.testing import assert_no_secrets, broken_request

pytestmark = pytest.mark.integration

COLUMNS = ["isbn13", "ean", "fssn", "vareeier_kode", "type", "type_name", "url"]
FAST = RetryPolicy(base=0.02, cap=0.2, retry_after_cap=0.1)
#: under injected faults (~17 % of calls) eight attempts make a give-up about 1 in a million per call
PATIENT = RetryPolicy(attempts=8, base=0.02, cap=0.2, retry_after_cap=0.1)
SEED = 11


@pytest.fixture(scope="module")
def bks() -> Iterator[Sandbox]:
    with toolkit.sandbox.start(services=["boknett"], seed=SEED) as sandbox:
        yield sandbox


@pytest.fixture
def emu(bks: Sandbox) -> Iterator[BoknettEmulator]:
    emulator = bks.emulator("boknett")
    assert isinstance(emulator, BoknettEmulator)
    emulator.object_count = 300
    with emulator.restored():
        yield emulator
    emulator.object_count = 300
    bks.set_faults("boknett")


@pytest.fixture
def bk(bks: Sandbox, emu: BoknettEmulator) -> Iterator[Any]:
    client = toolkit.boknett.connect(**bks.credentials("boknett"), retry=FAST)
    yield client
    client.close()


def since_start(emu: BoknettEmulator) -> datetime:
    """A moment before every change of the emulator (its changes span the last 90 days)."""
    return datetime.fromtimestamp(emu.now() - 100 * 86400, timezone.utc).replace(microsecond=0)


def without_reference(records: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [tuple(r[c] for c in ("isbn13", "ean", "fssn", "vareeier_kode", "type")) for r in records]


def pulled(df: Any) -> list[tuple[str, ...]]:
    return [tuple(r) for r in df[["isbn13", "ean", "fssn", "vareeier_kode", "type"]].itertuples(index=False)]


def report_calls(emu: BoknettEmulator, since: int) -> list[Any]:
    return [r for r in emu.requests[since:] if r.path == "/metadata/export/object"]


# -- login and the ticket ------------------------------------------------------------------------------------
def test_login_with_form_special_characters_and_every_call_carries_ticket_and_fresh_date(
        bk: Any, emu: BoknettEmulator) -> None:
    assert any(c in emu.password for c in "&=%+") and " " in emu.password
    logins, seen = emu.logins, len(emu.requests)
    df = bk.objects(after=since_start(emu), pagesize=100)
    assert len(df) == 300
    assert emu.logins == logins + 1
    calls = report_calls(emu, seen)
    assert len(calls) == 3
    for call in calls:
        assert call.headers["authorization"].startswith("Boknett TGT-")
        assert call.headers["authorization"].split(" ", 1)[1] in emu.issued_tgts
        sent = parsedate_to_datetime(call.headers["date"]).timestamp()
        assert abs(sent - call.time) < 5  # made for this attempt, not once per connection
    assert len({c.headers["date"] for c in calls}) >= 1
    assert all("password" not in c.query and "TGT" not in c.query for c in emu.requests[seen:])


@pytest.mark.parametrize("status", [400, 401])
def test_wrong_password_is_unauthorized_after_few_attempts_and_not_retried(bks: Sandbox, emu: BoknettEmulator,
                                                                           status: int) -> None:
    """400 is what Bokbasen documents for its login and what php-sdk-auth's own test mocks for a failed login;
    401 was the contract as first researched: both are the same Unauthorized, remembered for the connection."""
    emu.wrong_password_status = status
    creds = {**bks.credentials("boknett"), "password": "Bok&nett=wrong% + passord"}
    failed = emu.failed_logins
    with toolkit.boknett.connect(**creds, retry=FAST) as client:
        with pytest.raises(Unauthorized) as info:
            client.objects(after=since_start(emu))
        assert "Boknett" in str(info.value) and "password" in str(info.value).lower()
        with pytest.raises(Unauthorized):
            client.objects(after=since_start(emu))
        with pytest.raises(Unauthorized):
            client.download([emu.object_record(1)], "/tmp/never-used-boknett")
    assert 1 <= emu.failed_logins - failed <= 3
    assert info.value.status == status and "user name and password. Check them" in info.value.hint
    assert_no_secrets(str(info.value) + repr(info.value), [creds["password"], emu.password])
    frames = "".join(repr(f.f_locals) for f, _ in traceback.walk_tb(info.value.__traceback__)
                     if "/toolkit/" in f.f_code.co_filename)  # the toolkit's frames (not this test's own)
    assert frames
    assert_no_secrets(frames, [creds["password"], emu.password, *emu.issued_tgts], "traceback frames")


def test_ticket_is_renewed_before_its_lifetime(bks: Sandbox, emu: BoknettEmulator, debug_logs: Any) -> None:
    emu.tgt_lifetime = 2.0
    with toolkit.boknett.connect(**bks.credentials("boknett"), retry=FAST, tgt_lifetime=2.0,
                                 tgt_renew_after=1.0) as client:
        logins = emu.logins
        client.objects(after=since_start(emu), pagesize=5000)
        time.sleep(1.3)
        client.objects(after=since_start(emu), pagesize=5000)
        assert emu.logins == logins + 2
    assert "-> 401" not in debug_logs.text  # renewed before the server refused the old ticket


def test_ticket_renewed_exactly_once_on_401_in_the_middle_of_a_paged_pull(bk: Any, emu: BoknettEmulator) -> None:
    http = bk.aio.http
    original = http.request
    pages = {"n": 0}

    async def expiring(method: str, path: str, **kw: Any) -> Any:
        response = await original(method, path, **kw)
        if "/metadata/export/object" in str(path) and "download" not in str(path):
            pages["n"] += 1
            if pages["n"] == 2:
                emu.expire_tickets()  # the ticket dies between page 2 and page 3
        return response

    http.request = expiring
    logins, seen = emu.logins, len(emu.requests)
    df = bk.objects(after=since_start(emu), pagesize=50)
    assert pulled(df) == without_reference(emu.records())
    assert emu.logins == logins + 2  # the first login, and exactly one renewal
    statuses = [c.status for c in report_calls(emu, seen)]
    assert statuses.count(401) == 1 and statuses.count(200) == 6


def test_short_server_ticket_lifetime_renews_once_per_refusal(bk: Any, emu: BoknettEmulator) -> None:
    emu.tgt_lifetime = 0.4
    logins = emu.logins
    first = bk.objects(after=since_start(emu), pagesize=300)
    time.sleep(0.6)
    second = bk.objects(after=since_start(emu), pagesize=300)
    assert len(first) == len(second) == 300
    assert emu.logins == logins + 2


# -- the clock --------------------------------------------------------------------------------------------------
def test_server_clock_ahead_is_learnt_and_the_pull_goes_on(bks: Sandbox, emu: BoknettEmulator) -> None:
    emu.clock_offset = 3600.0  # the server runs an hour ahead
    with toolkit.boknett.connect(**bks.credentials("boknett"), retry=FAST) as client:
        seen = len(emu.requests)
        df = client.objects(after=since_start(emu), pagesize=100)
        assert len(df) == 300
        assert abs(client.aio.clock.offset - 3600) < 5
        assert client.aio.clock_adjustments == 1
        statuses = [c.status for c in report_calls(emu, seen)]
        assert statuses == [400, 200, 200, 200]  # one refusal, then every page with the server's time
        client.objects(next=df.attrs["next"])
        assert client.aio.clock_adjustments == 1


def test_a_clock_that_cannot_be_fixed_is_an_error_naming_the_clock(bks: Sandbox, emu: BoknettEmulator) -> None:
    emu.clock_offset = -7200.0
    with toolkit.boknett.connect(**bks.credentials("boknett"), retry=FAST) as client:
        client.aio.clock.learn = lambda server_date: None  # the server's Date header unreadable
        with pytest.raises(ValidationError) as info:
            client.objects(after=datetime.now(timezone.utc) - timedelta(days=1))
    text = str(info.value)
    assert "clock" in text and "Boknett" in text and "15 minutes" in text


# -- the report ---------------------------------------------------------------------------------------------------
def test_objects_values_exactly_as_served_all_text(bk: Any, emu: BoknettEmulator) -> None:
    df = bk.objects(after=since_start(emu))
    assert list(df.columns) == COLUMNS
    assert all(str(t) == "string" for t in df.dtypes)
    assert df.attrs["kind"] == "assets" and df.attrs["service"] == "boknett" and df.attrs["next"]
    assert pulled(df) == without_reference(emu.records())
    assert df["vareeier_kode"].str.startswith("0").any()  # leading zeros kept
    assert set(df["type_name"]) <= {"audio file", "small cover", "os", "large cover", "original cover"}
    assert (df.loc[df["type"] == "ly", "type_name"] == "audio file").all()
    refs = df["url"].tolist()
    assert all(r.startswith(f"{emu.base_url}/metadata/export/object/download?id=") for r in refs)
    assert any(("%2B" in r) or ("%2F" in r) or ("%3D" in r) for r in refs)  # percent escapes untouched


def test_paging_follows_next_and_stops_on_the_page_without_link(bk: Any, emu: BoknettEmulator) -> None:
    seen = len(emu.requests)
    df = bk.objects(after=since_start(emu), pagesize=50)
    assert len(df) == 300 and df["url"].is_unique
    calls = report_calls(emu, seen)
    assert len(calls) == 6  # 300 / 50: the sixth page has no Link, so no seventh request
    assert "after=" in calls[0].query and all("next=" in c.query and "after=" not in c.query for c in calls[1:])
    assert all("pagesize=50" in c.query for c in calls)


def test_cursor_gets_exactly_what_changed_and_an_empty_pull_keeps_columns(bk: Any, emu: BoknettEmulator) -> None:
    df = bk.objects(after=since_start(emu))
    empty = bk.objects(next=df.attrs["next"])
    assert len(empty) == 0 and list(empty.columns) == COLUMNS and empty.attrs["next"]
    assert empty.attrs["kind"] == "assets"
    start, stop = emu.add_objects(7)
    new = bk.objects(next=empty.attrs["next"])
    assert pulled(new) == without_reference(emu.records(start, stop))


@pytest.mark.parametrize("kind", ["date", "naive", "aware", "iso", "stamp", "pandas", "number"])
def test_after_accepts_date_datetime_and_string(bk: Any, emu: BoknettEmulator, kind: str) -> None:
    import pandas as pd

    moment = datetime.fromtimestamp(emu.now() - 30 * 86400, timezone.utc).replace(hour=0, minute=0, second=0,
                                                                                   microsecond=0)
    value = {"date": moment.date(), "naive": moment.replace(tzinfo=None),
             "aware": moment.astimezone(timezone(timedelta(hours=1))), "iso": moment.strftime("%Y-%m-%d"),
             "stamp": moment.strftime("%Y%m%d%H%M%S"), "pandas": pd.Timestamp(moment),
             "number": int(moment.strftime("%Y%m%d%H%M%S"))}[kind]  # a stamp kept as a number
    expected = sum(1 for i in range(emu.object_count) if emu.timestamp(i) > moment.timestamp())
    seen = len(emu.requests)
    df = bk.objects(after=value)
    assert 0 < len(df) == expected
    assert f"after={moment:%Y%m%d%H%M%S}" in report_calls(emu, seen)[0].query


@pytest.mark.parametrize("arguments", [
    {"after": date.today() - timedelta(days=181)},
    {"after": "2020-01-01"},
    {"after": "not a date"},
    {"after": date.today(), "pagesize": 5001},
    {"after": date.today(), "pagesize": 0},
    {"after": date.today(), "pagesize": "100"},
    {},
    {"after": date.today(), "next": "abc"},
])
def test_refused_arguments_are_validation_errors_before_sending(bk: Any, emu: BoknettEmulator,
                                                                arguments: dict[str, Any]) -> None:
    seen, logins = len(emu.requests), emu.logins
    with pytest.raises(ValidationError) as info:
        bk.objects(**arguments)
    assert "Boknett" in str(info.value)
    assert len(emu.requests) == seen and emu.logins == logins  # nothing sent, not even a login


def test_a_cursor_the_server_refuses_says_what_to_do(bk: Any, emu: BoknettEmulator) -> None:
    with pytest.raises(toolkit.core.errors.BadRequest) as info:
        bk.objects(next=emu.cursor(5, issued=emu.now() - 200 * 86400))
    assert "after" in str(info.value) and "Boknett" in str(info.value)


# -- the incremental pull -----------------------------------------------------------------------------------------
def test_changes_first_run_needs_after(bk: Any, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        bk.changes(state=tmp_path / "boknett.cursor")
    assert "after" in str(info.value)
    assert not (tmp_path / "boknett.cursor").exists()


def test_changes_gets_exactly_what_it_missed_nothing_twice(bk: Any, emu: BoknettEmulator, tmp_path: Path) -> None:
    state = tmp_path / "boknett.cursor"
    first = bk.changes(state=state, after=since_start(emu), pagesize=80)
    assert pulled(first) == without_reference(emu.records())
    assert state.read_text().strip() == first.attrs["next"]
    start, stop = emu.add_objects(37)
    second = bk.changes(state=state, pagesize=80)
    assert pulled(second) == without_reference(emu.records(start, stop))
    assert state.read_text().strip() == second.attrs["next"] != first.attrs["next"]
    third = bk.changes(state=state, after="2020-01-01")  # the saved cursor wins over after
    assert len(third) == 0 and list(third.columns) == COLUMNS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boknett.cursor"]  # no temporary file left


def test_changes_failure_part_way_leaves_the_state_file_byte_identical(bk: Any, emu: BoknettEmulator,
                                                                       tmp_path: Path) -> None:
    state = tmp_path / "boknett.cursor"
    bk.changes(state=state, after=since_start(emu))
    before = state.read_bytes()
    start, stop = emu.add_objects(120)
    with broken_request(bk.aio.http, 2), pytest.raises(TransportError):
        bk.changes(state=state, pagesize=50)
    assert state.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boknett.cursor"]
    again = bk.changes(state=state, pagesize=50)
    assert pulled(again) == without_reference(emu.records(start, stop))


def test_pull_under_faults_is_complete(bks: Sandbox, emu: BoknettEmulator, tmp_path: Path) -> None:
    bks.set_faults("boknett", **{"503": .1, "429": .05, "drop": .02, "retry_after": 0.05})
    with toolkit.boknett.connect(**bks.credentials("boknett"), retry=PATIENT) as client:
        for _ in range(3):
            df = client.objects(after=since_start(emu), pagesize=25)
            assert pulled(df) == without_reference(emu.records())
        state = tmp_path / "c"
        client.changes(state=state, after=since_start(emu), pagesize=40)
        start, stop = emu.add_objects(55)
        assert pulled(client.changes(state=state, pagesize=10)) == without_reference(emu.records(start, stop))
    assert any(r.fault for r in emu.requests[-300:])


# -- no secrets -----------------------------------------------------------------------------------------------------
def test_no_password_or_ticket_in_logs_reprs_frames_or_urls(bks: Sandbox, emu: BoknettEmulator, debug_logs: Any,
                                                             tmp_path: Path, capsys: Any) -> None:
    with toolkit.boknett.connect(**bks.credentials("boknett"), retry=FAST) as client:
        df = client.objects(after=since_start(emu), pagesize=100)
        emu.expire_tickets()
        res = client.download(df.head(5), tmp_path / "files", concurrency=2)
        emu.clock_offset = 1800
        client.changes(state=tmp_path / "state", after=since_start(emu))
        texts = [debug_logs.text, repr(client), repr(client.aio), repr(client.aio.auth), repr(client.aio.http),
                 df.to_string(), res.to_string(), capsys.readouterr().out]
    secrets = emu.secrets()
    assert len(emu.issued_tgts) >= 2
    assert "Boknett TGT" not in debug_logs.text or all(t not in debug_logs.text for t in emu.issued_tgts)
    assert_no_secrets("\n".join(texts), secrets)
    for r in emu.requests:
        assert_no_secrets(r.path + "?" + r.query, secrets, "request URL")


def test_public_names_and_signatures() -> None:
    import inspect

    assert toolkit.boknett.connect is not None
    params = inspect.signature(toolkit.boknett.connect).parameters
    assert {"username", "password", "environment", "base_url", "login_url"} <= set(params)
    sig = inspect.signature(toolkit.boknett.Client.objects).parameters
    assert list(sig)[1:] == ["after", "next", "pagesize", "out"] and sig["pagesize"].default == 5000
    sig = inspect.signature(toolkit.boknett.Client.changes).parameters
    assert sig["state"].default == "boknett.cursor" and sig["after"].default is None
    sig = inspect.signature(toolkit.boknett.Client.download).parameters
    assert list(sig)[1:5] == ["objs", "folder", "concurrency", "overwrite"]
    assert sig["concurrency"].default == "auto" and sig["overwrite"].default is False
    assert "410" in (toolkit.boknett.Client.download.__doc__ or "")


# -- dates that cannot be meant ------------------------------------------------------------------------------
@pytest.mark.parametrize("after", ["2062-11-20", "NaT", "2026-13-45", "next tuesday", None])
def test_a_date_that_cannot_be_meant_is_refused_before_anything_is_sent_and_no_cursor_is_saved(
        bk: Any, emu: BoknettEmulator, tmp_path: Path, after: Any) -> None:
    import pandas as pd

    value = pd.NaT if after == "NaT" else after
    state = tmp_path / "boknett.cursor"
    seen = len(emu.requests)
    with pytest.raises(ValidationError) as info:
        bk.changes(state=state, after=value)
    with pytest.raises(ValidationError):
        bk.objects(after=value) if value is not None else bk.objects(after=pd.NaT)
    assert report_calls(emu, seen) == []  # nothing was asked of Boknett
    assert not state.exists()  # the cursor file is never written by a refused pull
    text = str(info.value)
    assert "Boknett" in text and "after" in text and "What to do" in text
    if after == "2062-11-20":
        assert "future" in text and "2062-11-20" in text
