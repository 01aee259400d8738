"""The one redaction function masks secrets and CPR numbers wherever text leaves the toolkit."""

from __future__ import annotations

import logging

import pytest

from toolkit.core.credentials import Secret
from toolkit.core.redact import get_logger, mask_cpr, redact, register_secret


@pytest.mark.parametrize("text, secret", [
    ("Authorization: Bearer abcdef0123456789", "abcdef0123456789"),
    ("{'authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA=="),
    ("GET https://api.example/1/file?access_token=tok_9f8e7d6c&x=1", "tok_9f8e7d6c"),
    ("POST /token client_secret=s3cr3t-value&grant_type=refresh_token", "s3cr3t-value"),
    ('{"refresh_token": "rt-123456789"}', "rt-123456789"),
    ("Authorization: Boknett TGT-152-leeshOABMDJE-login.boknett.no", "leeshOABMDJE"),
    ("https://analyst:pa55word@host/x", "pa55word"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here", "eyJzdWIiOiIxIn0"),
])
def test_known_secret_shapes_are_masked(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_registered_secret_is_masked_anywhere() -> None:
    Secret("an-unusual-secret-value")  # registering happens when a Secret is made
    out = redact("the body said: an-unusual-secret-value was wrong")
    assert "an-unusual-secret-value" not in out and "***" in out


def test_cpr_numbers_masked_plain_and_dashed() -> None:
    out = redact("missing photo for 0101901234 and 311299-4321; isbn 9788202437930, port 8080")
    assert "0101901234" not in out and "4321" not in out
    assert "010190-****" in out and "311299-****" in out
    # an ISBN-13 or an ordinary number is not mistaken for a CPR
    assert "9788202437930" in out and "8080" in out


def test_mask_cpr_keeps_birth_date_only() -> None:
    assert mask_cpr("0101901234") == "010190-****"
    assert mask_cpr("010190-1234") == "010190-****"
    assert mask_cpr("abc") == "abc"  # not a CPR: shown as given, so the analyst sees which input was wrong
    assert mask_cpr(True) == "True" and mask_cpr("12345") == "12345" and mask_cpr(3.5) == "3.5"
    assert mask_cpr("010190123") == "*********" and mask_cpr("nr 010190 12").startswith("nr ")
    assert "010190" not in mask_cpr("nr 010190 12")
    assert "0101" not in mask_cpr("cpr: 0101 9012 345")  # digits that could be one are never shown
    assert mask_cpr(None) == ""


def test_log_records_are_redacted_for_toolkit_and_httpx(debug_logs: pytest.LogCaptureFixture) -> None:
    register_secret("log-secret-abcdef")
    get_logger("toolkit.test").debug("sent %s with %s", "log-secret-abcdef", "0101901234")
    logging.getLogger("httpx").info("HTTP Request: GET http://h/billeder/0101901234?access_token=zzzzzz9")
    logging.getLogger("httpcore.http11").debug("send_request_headers Authorization: Bearer log-secret-abcdef")
    text = "\n".join(r.getMessage() for r in debug_logs.records)
    assert "log-secret-abcdef" not in text and "0101901234" not in text and "zzzzzz9" not in text
    assert text.count("010190-****") == 2


def test_prose_about_tokens_keeps_its_words() -> None:
    assert redact("Uddata+: access token: no such endpoint") == "Uddata+: access token: no such endpoint"
    assert redact("password: hunter2-secret") == "password: ***"
    assert "tok-123456" not in redact('{"token": "tok-123456"}')
    assert "tok-123456" not in redact("token=tok-123456")


@pytest.mark.parametrize("name", [
    "3201901234.jpg",              # ten digits that do not start like a date: still a file named by a CPR
    "０１０１９０１２３４.jpg",      # fullwidth digits
    "٠١٠١٩٠١٢٣٤.jpg",              # Arabic-Indic digits
    "010190１２３４.jpeg",          # mixed
    "photos/1234567890.JPG",
])
def test_any_run_of_ten_digits_in_a_file_name_is_masked(name: str) -> None:
    from toolkit.core.redact import redact_file_name

    shown = redact_file_name(name)
    assert shown.endswith(name.rsplit(".", 1)[1]) and "-****" in shown
    assert not any(shown[i:i + 10] == name[i:i + 10] and name[i:i + 10].isdigit() for i in range(len(name)))
    assert redact(name, file_name=True) == shown


def test_unicode_digit_runs_are_masked_in_free_text_too() -> None:
    out = redact("no person with CPR ０１０１９０１２３４ (٠١٠١٩٠١٢٣٤)")
    assert "１２３４" not in out and "٢٣٤" not in out and out.count("-****") == 2


def test_ids_timestamps_and_isbns_keep_their_digits() -> None:
    text = "job 3201901234 at 1764620000, isbn 9788202437930, order 12345678901"
    assert redact(text) == text
    # in a file name an ISBN-13 or an 11-digit id is not a CPR either
    from toolkit.core.redact import redact_file_name

    assert redact_file_name("9788202437930.jpg") == "9788202437930.jpg"
    assert redact_file_name("12345678901.jpg") == "12345678901.jpg"
