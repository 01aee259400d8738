"""The bulk runner: bounded concurrency, one row per item in input order, failures as rows, breaker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from toolkit.core.bulk import run_bulk
from toolkit.core.errors import NotFound, ServerError, TransportError


def rows_for(results: Any) -> list[dict]:
    return results.rows


def test_concurrency_bound_order_and_failure_rows(capsys: pytest.CaptureFixture[str]) -> None:
    in_flight = {"now": 0, "max": 0}

    async def worker(i: int) -> dict:
        in_flight["now"] += 1
        in_flight["max"] = max(in_flight["max"], in_flight["now"])
        await asyncio.sleep(0.001 * (i % 5))
        in_flight["now"] -= 1
        if i % 7 == 3:
            raise NotFound("no such item", service="uddata")
        if i == 11:
            raise RuntimeError("unexpected")
        return {"item": i, "outcome": "ok"}

    out = asyncio.run(run_bulk(
        range(40), worker, service="uddata", desc="check", concurrency=5,
        on_error=lambda i, e: {"item": i, "outcome": "failed", "error": str(e)},
        on_deferred=lambda i: {"item": i, "outcome": "deferred"}, progress=True))
    assert in_flight["max"] <= 5 and in_flight["max"] > 1
    assert [r["item"] for r in out.rows] == list(range(40))  # every item, input order
    failed = [r["item"] for r in out.rows if r["outcome"] == "failed"]
    assert failed == sorted({i for i in range(40) if i % 7 == 3} | {11})
    assert out.counts["ok"] == 40 - len(failed)
    printed = capsys.readouterr()
    assert "Uddata+: check: 40 items" in printed.out and f"failed {len(failed)}" in printed.out


def test_circuit_breaker_defers_the_rest_after_consecutive_transient_failures() -> None:
    attempted = []

    async def worker(i: int) -> dict:
        attempted.append(i)
        if i >= 3:
            raise (TransportError if i % 2 else ServerError)("down", service="uddata")
        return {"item": i, "outcome": "ok"}

    out = asyncio.run(run_bulk(
        list(range(100)), worker, service="uddata", desc="upload", concurrency=1, breaker=5,
        on_error=lambda i, e: {"item": i, "outcome": "failed"},
        on_deferred=lambda i: {"item": i, "outcome": "deferred"}, progress=False))
    assert len(out.rows) == 100 and out.breaker_open
    assert out.counts == {"ok": 3, "failed": 5, "deferred": 92}
    assert len(attempted) == 8  # nothing attempted once the breaker opened
    assert "re-run later" in out.summary


def test_non_transient_failures_do_not_open_the_breaker() -> None:
    async def worker(i: int) -> dict:
        raise NotFound("missing", service="uddata")

    out = asyncio.run(run_bulk(
        range(30), worker, service="uddata", desc="audit", concurrency=2, breaker=3,
        on_error=lambda i, e: {"outcome": "missing"}, on_deferred=lambda i: {"outcome": "deferred"}, progress=False))
    assert out.counts == {"missing": 30} and not out.breaker_open


def test_empty_input_gives_no_rows() -> None:
    async def worker(i: int) -> dict:
        raise AssertionError

    out = asyncio.run(run_bulk([], worker, service="dokus", desc="apply", on_error=lambda i, e: {},
                               on_deferred=lambda i: {}, progress=False))
    assert out.rows == [] and "0 items" in out.summary


def test_failure_rules_give_one_plain_row_per_error() -> None:
    from toolkit.core.bulk import failure
    from toolkit.core.errors import BadRequest, Forbidden, NotFound, ServerError, TransportError

    rules = [(NotFound, "unknown", "not sent: no such person"), (413, "rejected", "too large"),
             (BadRequest, "rejected", "refused: {detail}")]
    assert failure(NotFound("x", service="uddata", status=404), rules, verb="sent") == \
        ("unknown", 404, "not sent: no such person")
    assert failure(BadRequest("bad", service="uddata", status=413), rules, verb="sent")[:2] == ("rejected", 413)
    assert failure(BadRequest("bad", service="uddata", status=400, details="not a JPEG"), rules, verb="sent") == \
        ("rejected", 400, "refused: not a JPEG")
    outcome, status, message = failure(Forbidden("no right", service="uddata", status=403, hint="ask support"),
                                       rules, verb="sent")
    assert (outcome, status) == ("failed", 403) and "not sent: no right" in message and "ask support" in message
    assert failure(TransportError("down", service="uddata"), rules, verb="sent")[:2] == ("failed", None)
    outcome, _, message = failure(KeyError("token=abc123secret"), rules, verb="sent")
    assert outcome == "failed" and "unexpected KeyError" in message and "abc123secret" not in message
    assert failure(ServerError("boom", service="uddata", status=503), rules, verb="sent")[1] == 503
