"""A service that takes the connection and never answers: every call ends within its bound with a plain
TransportError, over a real socket on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

import toolkit
from toolkit.core.errors import TransportError
from toolkit.core.http import HttpClient, RetryPolicy, Timeouts
from toolkit.core.sync import run
from toolkit.testing import silent_server


@pytest.fixture
def silent() -> Iterator[Any]:
    """A TCP server on 127.0.0.1 that accepts every connection, reads, and never answers."""
    with silent_server() as server:
        yield server


def test_the_default_bound_of_one_call_is_60_seconds():
    assert Timeouts().total == 60 and Timeouts().read < Timeouts().total  # a silent service gets retried once


def test_a_silent_service_ends_the_call_within_its_bound_with_a_plain_error(silent):
    http = HttpClient("uddata", f"http://127.0.0.1:{silent['port']}", timeouts=Timeouts(read=1.0, total=2.5),
                      retry=RetryPolicy(attempts=8, base=0.01, cap=0.05))
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        run(http.request("GET", "elever", what="read the students"))
    took = time.monotonic() - started
    run(http.aclose())
    assert took < 2.5 + 2  # the bound holds although the policy would allow 8 attempts of 1 s
    assert silent.connections <= 3
    text = str(info.value)
    assert "Uddata+" in text and "no answer within 2.5 s" in text and "What to do" in text
    assert "httpx" not in text and "ReadTimeout" not in text


def test_a_client_connected_to_a_silent_service_gives_up_within_its_bound(silent):
    ud = toolkit.uddata.connect(base_url=f"http://127.0.0.1:{silent['port']}", institution="123456",
                                client_id="demo", client_secret=toolkit.Secret("fake-secret"),
                                token_url=f"http://127.0.0.1:{silent['port']}/token",
                                timeouts=Timeouts(read=0.5, total=1.5))
    started = time.monotonic()
    with pytest.raises(TransportError, match="no answer within 1.5 s"):
        ud.students()
    assert time.monotonic() - started < 1.5 * 2 + 2  # the token call and the call itself, each bounded
    ud.close()
