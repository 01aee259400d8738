"""The machinery of the live contract check (``toolkit/core/check.py``): comparing JSON and XML records with
declared field types (more, fewer and other fields), clock skew from a ``Date`` header, the rows and their
frame; the command line's ``check`` verb (exit codes 0/1/3, help on every option); ``toolkit.doctor(live=True)``
for the services whose credentials are found."""

from __future__ import annotations

import argparse
import email.utils
import time
from typing import Any, Iterator

import pytest

import toolkit
from toolkit.cli import build_parser, main
from toolkit.core.check import (Answer, Checker, Expect, SCHEMA, compare, expects_of, exit_code, records_in,
                                xml_records)
from toolkit.sandbox import Sandbox
from toolkit.widgets.doctor import check_live
from toolkit.testing import assert_no_secrets

SERVICES = ("uddata", "dokus", "livingdocs", "boknett", "mediaflow")
FIELDS = {"id": Expect.of("integer"), "name": Expect.of("text"), "when": Expect.of("datetime"),
          "price": Expect.of("amount", also="number"), "note": Expect.of("text", optional=True)}


@pytest.fixture(scope="module")
def sbk() -> Iterator[Sandbox]:
    with toolkit.sandbox.start(seed=11) as sandbox:
        yield sandbox


# -- comparing records ------------------------------------------------------------------------------------
def test_records_as_declared_compare_equal() -> None:
    result = compare([{"id": 1, "name": "a", "when": "2026-01-02 08:00:00", "price": "199.50"},
                      {"id": 2, "name": "b", "when": "2026-01-02T08:00:00Z", "price": "1", "note": None}], FIELDS)
    assert not result.differs
    assert result.seen == {"id": "whole number", "name": "text", "when": "time", "price": "amount", "note": "empty"}


def test_more_fields_are_named_not_a_difference() -> None:
    result = compare([{"id": 1, "name": "a", "when": "2026-01-02", "price": "2", "colour": "red"}], FIELDS)
    assert not result.differs and result.extra == ["colour"]


def test_fewer_fields_are_missing_and_differ() -> None:
    result = compare([{"id": 1, "when": "2026-01-02", "price": "2"}], FIELDS)  # no name; note is optional
    assert result.differs and result.missing == ["name"]


def test_other_types_differ_and_tolerated_ones_are_told_apart() -> None:
    result = compare([{"id": "7", "name": "a", "when": "yesterday", "price": 19.5}], FIELDS)
    assert result.other == {"id": "text", "when": "text"}
    assert result.tolerated == {"price": "number"}
    assert result.differs


def test_nested_fields_and_names_in_any_case() -> None:
    fields = {"asset.width": Expect.of("integer"), "hasPreview": Expect.of("bool")}
    assert not compare([{"asset": {"width": 3}, "haspreview": True}], fields, fold=True).differs
    assert compare([{"asset": {"width": 3}, "haspreview": True}], fields).missing == ["hasPreview"]
    assert compare([{"asset": "x", "hasPreview": True}], fields).missing == ["asset.width"]


def test_expects_of_a_frame_schema() -> None:
    fields = expects_of({"id": "Int64", "cpr": "string", "born": "date", "bytes": "Int64"}, {"cpr": "cpr_nr"},
                        also={"string": "integer"}, skip=("bytes",))
    assert list(fields) == ["id", "cpr_nr", "born"]
    assert fields["cpr_nr"] == Expect(("text",), ("integer",)) and fields["born"].kinds == ("date",)
    with pytest.raises(ValueError):
        Expect.of("texts")


def test_records_in_an_answer() -> None:
    assert records_in([{"a": 1}, 2]) == [{"a": 1}]
    assert records_in({"count": 2, "products": [{"a": 1}]}, ("products",)) == [{"a": 1}]
    assert records_in({"data": [{"a": 1}]}) == [{"a": 1}]
    assert records_in({"a": 1}) == [{"a": 1}] and records_in("x") == []


def test_xml_records_and_what_is_refused() -> None:
    root, rows = xml_records(b"<OBJECTS><OBJECT><ISBN13>978</ISBN13><EAN/></OBJECT></OBJECTS>", "OBJECT")
    assert root == "OBJECTS" and rows == [{"ISBN13": "978", "EAN": None}]
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><OBJECTS>&a;</OBJECTS>'
    assert xml_records(bomb, "OBJECT") == (None, [])
    assert xml_records(b"{not xml", "OBJECT") == (None, [])


# -- rows -------------------------------------------------------------------------------------------------
def _answer(date: str | None, **headers: str) -> Answer:
    now = time.time()
    pairs = [("date", date)] if date else []
    return Answer(200, pairs + [(k.lower(), v) for k, v in headers.items()], b"", now, now)


def test_clock_skew_from_the_date_header() -> None:
    c = Checker("dokus")
    c.clock(_answer(email.utils.formatdate(time.time() + 3 * 3600, usegmt=True)))
    c.clock(_answer(email.utils.formatdate(time.time() - 120, usegmt=True)))
    c.clock(_answer(None))
    c.clock(_answer(None), relies="the toolkit learns the clock from it")
    c.clock(_answer("Thu, 12 Jun 2014 13:46:16 UTC"), tolerance=10 ** 10)
    verdicts = [(r.verdict, r.answered) for r in c.rows]
    assert verdicts[0] == ("differs", "3 h ahead of this computer's clock")
    assert verdicts[1] == ("ok", "2 min behind this computer's clock")
    assert verdicts[2] == ("ok", "no readable Date header: nothing to compare")
    assert verdicts[3][0] == "differs"
    assert verdicts[4][0] == "ok" and "behind" in verdicts[4][1]


def test_paging_headers_of_a_list_read_whole() -> None:
    c = Checker("uddata")
    c.unpaged("paging", "The roster", _answer(None))
    c.unpaged("paging", "The roster", _answer(None, Link='<http://x/?page=2>; rel="next"'))
    c.unpaged("paging", "The roster", _answer(None), {"elever": [], "next": "abc"})
    assert [r.verdict for r in c.rows] == ["ok", "differs", "differs"]
    assert "header link" in c.rows[1].answered and "field next" in c.rows[2].answered


def test_rows_make_a_frame_with_a_summary_and_an_exit_code() -> None:
    c = Checker("mediaflow")
    c.add("token", "a token", "fine", "ok")
    c.fields("fields", "each file", [{"id": "x", "name": "a"}], {"id": Expect.of("integer"), "name": Expect.of("text")})
    c.failed("folder tree", "a tree", toolkit.TransportError("could not connect", service="mediaflow", hint="Later."))
    df = c.frame()
    assert list(df.columns) == list(SCHEMA) and list(df["verdict"]) == ["ok", "differs", "failed"]
    assert df.attrs == {**df.attrs, "kind": "records", "service": "mediaflow"}
    assert df.summary == "Mediaflow: 3 assumptions checked — 1 ok, 1 differ, 1 failed"
    assert df.iloc[2]["what_to_do"] == "Later." and df.iloc[2]["answered"] == "could not connect"
    assert "id: text, assumed a whole number" in df.iloc[1]["answered"]
    assert exit_code(df) == 3 and exit_code(df.iloc[:2]) == 1 and exit_code(df.iloc[:1]) == 0
    with pytest.raises(AssertionError):
        c.add("x", "y", "z", "fine")


def test_what_the_check_did_not_foresee_is_a_failed_row_not_an_exception() -> None:
    import asyncio

    async def rows(c: Checker) -> None:
        c.add("token", "a token", "fine", "ok")
        raise KeyError("an answer of a shape nobody foresaw")

    c = Checker("dokus")
    df = asyncio.run(c.run(rows(c)))
    assert list(df["verdict"]) == ["ok", "failed"] and list(df["check"]) == ["token", "check"]
    assert "KeyError" in df.iloc[1]["answered"]


def test_row_texts_are_redacted() -> None:
    c = Checker("uddata")
    c.add("photo", "GET billeder/0101901234", "Authorization: Bearer abcdefghijklmnop", "ok")
    df = c.frame()
    assert_no_secrets(df.to_csv(), ["0101901234", "abcdefghijklmnop"], "the rows")


# -- the command line -------------------------------------------------------------------------------------
def _check_parser(service: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    verbs = next(a for a in sub.choices[service]._actions if isinstance(a, argparse._SubParsersAction))
    return verbs.choices["check"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_option_of_the_check_verb_has_help(service: str) -> None:
    parser = _check_parser(service)
    options = [a for a in parser._actions if a.option_strings]
    assert {"--out", "-h"} <= {s for a in options for s in a.option_strings}
    for action in options:
        assert action.help, f"toolkit {service} check: {action.option_strings} has no help"
    assert parser.description and parser.epilog and "exit codes" in parser.epilog
    assert [line.split()[0] for line in parser.epilog.splitlines()[1:]] == ["0", "1", "2", "3", "130"]


def _cli_args(sb: Sandbox, service: str) -> list[str]:
    return ["--environment", "sandbox"]  # the same flag for every service, with or without environment names


@pytest.mark.parametrize("service", SERVICES)
def test_cli_exits_0_when_all_ok_and_writes_the_rows(sbk: Sandbox, service: str, tmp_path: Any,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rows.csv"
    assert main([service, "check", *_cli_args(sbk, service), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0 differ, 0 failed" in printed and "DIFFERS" not in printed
    import pandas as pd

    rows = pd.read_csv(out)
    assert list(rows.columns) == list(SCHEMA) and set(rows["verdict"]) == {"ok"}
    assert_no_secrets(printed + out.read_text(), sbk.secrets() + sbk.personal_data(), "the check's output")


def test_cli_exits_1_when_something_differs(sbk: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    em = sbk.emulator("boknett")
    with em.restored():
        em.shape = "link_without_next"
        assert main(["boknett", "check", "--environment", "sandbox"]) == 1
    printed = capsys.readouterr().out
    assert "DIFFERS  paging" in printed and "what to do:" in printed


def test_cli_exits_3_on_an_error(sbk: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    creds = sbk.credentials("boknett")
    monkeypatch.setenv("TOOLKIT_BOKNETT_PASSWORD", "not-the-password")
    args = ["boknett", "check", "--base-url", creds["base_url"], "--login-url", creds["login_url"],
            "--username", creds["username"]]
    assert main(args) == 3  # a refused login: a failed row
    assert "FAILED   login" in capsys.readouterr().out
    monkeypatch.delenv("TOOLKIT_BOKNETT_PASSWORD")
    monkeypatch.setattr("sys.stdin", None)  # no terminal to ask in
    assert main(["boknett", "check", "--base-url", creds["base_url"]]) == 3  # fields missing: an error
    assert "missing" in capsys.readouterr().err


def test_cli_sandbox_flag_without_a_sandbox_is_an_error(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("toolkit.core.discovery.discover", lambda service=None: None)
    assert main(["dokus", "check", "--environment", "sandbox"]) == 3
    err = capsys.readouterr().err
    assert "no sandbox is running" in err and "./run sandbox" in err and "kernel" not in err
    assert main(["dokus", "check", "--sandbox"]) == 3  # the earlier flag: still read, with a note
    err = capsys.readouterr().err
    assert "--environment sandbox" in err and "no sandbox is running" in err


def test_livingdocs_cli_passes_its_options(sbk: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["livingdocs", "check", "--environment", "sandbox", "--system-name", "none", "--external-id",
                 "none"]) == 0
    assert "media list" in capsys.readouterr().out


# -- toolkit.check and toolkit.doctor(live=True) ------------------------------------------------------------
def test_toolkit_check_connects_like_connect(sbk: Sandbox) -> None:
    by_environment = toolkit.check("mediaflow", environment="sandbox")
    assert set(by_environment["verdict"]) == {"ok"}
    with pytest.raises(toolkit.ValidationError):
        toolkit.check("dokus", email="someone@example.no")  # no password, no address: as connect() says
    with pytest.raises(toolkit.ValidationError):
        toolkit.check("nosuchservice")


def _set_dokus_env(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = sb.credentials("dokus")
    monkeypatch.setenv("TOOLKIT_DOKUS_BASE_URL", creds["base_url"])
    monkeypatch.setenv("TOOLKIT_DOKUS_EMAIL", creds["email"])
    monkeypatch.setenv("TOOLKIT_DOKUS_PASSWORD", creds["password"].reveal())


def test_doctor_live_checks_the_services_whose_credentials_are_found(sbk: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file of the repository's
    for service in SERVICES:
        for name in ("BASE_URL", "EMAIL", "PASSWORD", "TOKEN", "CLIENT_ID", "CLIENT_SECRET", "ENVIRONMENT",
                     "USERNAME", "INSTITUTION", "REFRESH_TOKEN", "SUBDOMAIN", "LOGIN_URL"):
            monkeypatch.delenv(f"TOOLKIT_{service.upper()}_{name}", raising=False)
    monkeypatch.setattr("toolkit.core.credentials._keyring_get", lambda service, field: None)
    _set_dokus_env(sbk, monkeypatch)
    monkeypatch.setenv("TOOLKIT_MEDIAFLOW_ENVIRONMENT", "sandbox")  # the sandbox's demo credentials fill the rest
    sent = {s: len(sbk.emulator(s).requests) for s in SERVICES}
    report = toolkit.doctor(live=True, sandbox=False)
    lines = {c.name: c for c in report}
    assert lines["Dokus login"].status == "ok" and lines["Mediaflow token"].status == "ok"
    for title in ("Uddata+", "Livingdocs", "Boknett"):
        assert lines[f"{title} live check"].status == "info" and "no credentials" in lines[f"{title} live check"].detail
    assert set(report.live["service"]) == {"dokus", "mediaflow"} and set(report.live["verdict"]) == {"ok"}
    assert report.ok
    assert [len(sbk.emulator(s).requests) - sent[s] for s in ("uddata", "livingdocs", "boknett")] == [0, 0, 0]
    assert_no_secrets(str(report) + report._repr_html_() + report.live.to_csv(), sbk.secrets(), "the doctor")
    assert toolkit.doctor(sandbox=False).live is None  # not live: no call at all


def test_doctor_live_says_a_difference_and_a_failure(sbk: Sandbox, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("toolkit.core.credentials._keyring_get", lambda service, field: None)
    _set_dokus_env(sbk, monkeypatch)
    em = sbk.emulator("dokus")
    with em.restored():
        em.shape = "skewed_clock"
        lines, live = check_live(["dokus"])
    assert {c.name: c.status for c in lines}["Dokus clock"] == "warning"
    monkeypatch.setenv("TOOLKIT_DOKUS_PASSWORD", "wrong")
    lines, live = check_live(["dokus"])
    assert {c.name: c.status for c in lines}["Dokus login"] == "problem"
    monkeypatch.delenv("TOOLKIT_DOKUS_PASSWORD")
    lines, live = check_live(["dokus"])
    assert lines[0].status == "warning" and "password" in lines[0].detail and live is None
