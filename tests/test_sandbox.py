"""The sandbox: loopback only, free ports, deterministic fault injection, request recording, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any, Iterator
from urllib.parse import urlparse

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import toolkit
from toolkit.core import sync
from toolkit.core.errors import ToolkitError
from toolkit.core.http import HttpClient, RetryPolicy
from toolkit.sandbox import server

from .conftest import read_line


class EchoEmulator(server.Emulator):
    name = "echo"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.handled = 0

    def build_app(self) -> Starlette:
        async def hello(request: Any) -> JSONResponse:
            self.handled += 1
            return JSONResponse([{"n": self.handled}])

        return Starlette(routes=[Route("/hello", hello, methods=["GET", "PUT"])])

    def credentials(self) -> dict[str, Any]:
        return {"base_url": self.base_url}


@pytest.fixture
def echo() -> Iterator[None]:
    server.EMULATORS["echo"] = f"{__name__}:EchoEmulator"
    yield
    server.EMULATORS.pop("echo", None)


def statuses(sb: Any, n: int) -> Counter:
    http = HttpClient("sandbox", sb.urls["echo"], retry=RetryPolicy(attempts=1))

    async def go() -> Counter:
        seen: Counter = Counter()
        for _ in range(n):
            try:
                seen[(await http.request("GET", "/hello", allow=(429, 503))).status_code] += 1
            except ToolkitError:
                seen["dropped"] += 1
        await http.aclose()
        return seen

    return sync.run(go())


@pytest.mark.integration
def test_serves_on_loopback_and_stops(echo: None) -> None:
    with toolkit.sandbox.start(services=["echo"]) as sb:
        url = urlparse(sb.urls["echo"])
        assert url.hostname == "127.0.0.1" and url.port
        assert statuses(sb, 3) == {200: 3}
        assert sb in toolkit.sandbox.running_sandboxes()
    assert not sb.running and sb not in toolkit.sandbox.running_sandboxes()


@pytest.mark.integration
def test_fault_rates_and_determinism(echo: None) -> None:
    # Retry-After 0: the client honours a 429's Retry-After by pausing the host (core/limits.py), and 30 pauses
    # of 2 s would only make this test slow
    spec = {"503": 0.2, "429": 0.1, "drop": 0.1, "retry_after": 0}
    counts = []
    for _ in range(2):
        with toolkit.sandbox.start(services=["echo"], faults=spec, seed=7) as sb:
            counts.append(statuses(sb, 300))
            faults = Counter(r.fault for r in sb.emulator("echo").requests)
            retry_after = {r.status for r in sb.emulator("echo").requests if r.fault == "429"}
    assert counts[0] == counts[1]  # same seed, same faults
    c = counts[0]
    assert 30 <= c[503] <= 90 and 10 <= c[429] <= 55 and 10 <= c["dropped"] <= 55
    assert c[200] + c[503] + c[429] + c["dropped"] == 300
    assert faults["503"] == c[503] and retry_after == {429}


@pytest.mark.integration
def test_retries_absorb_faults_and_latency_is_added(echo: None) -> None:
    with toolkit.sandbox.start(services=["echo"], faults={"503": 0.3, "retry_after": 0}, seed=1) as sb:
        http = HttpClient("sandbox", sb.urls["echo"], retry=RetryPolicy(base=0.001, cap=0.002, attempts=8))
        for _ in range(20):
            assert sync.run(http.request("GET", "/hello")).status_code == 200
        sb.set_faults()  # off
        sb.set_latency(120)
        started = time.perf_counter()
        sync.run(http.request("GET", "/hello"))
        assert time.perf_counter() - started >= 0.12
        sync.run(http.aclose())


def test_unknown_service_and_fault_are_plain_errors() -> None:
    with pytest.raises(ToolkitError, match="no emulator for nosuch"):
        toolkit.sandbox.start(services=["nosuch"])
    with pytest.raises(ToolkitError, match="unknown fault"):
        server.FaultConfig.parse({"500": 0.1})


@pytest.mark.integration
def test_cli_serves_and_prints_urls(tmp_path) -> None:
    services = ",".join(toolkit.sandbox.available_services()) or None
    if services is None:
        pytest.fail("no emulator is available to serve")
    found = tmp_path / "sandbox.json"
    found.write_text("{}\n")
    os.chmod(found, 0o644)  # a leftover that everyone could read
    proc = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "sandbox", "--json", "--services", services],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TOOLKIT_SANDBOX_FILE": str(found)})
    try:
        line = read_line(proc)
        info = json.loads(line)
        assert set(info["urls"]) == set(services.split(","))
        assert all(u.startswith("http://127.0.0.1:") for u in info["urls"].values())
        # the discovery file holds the demo credentials: readable by its owner only
        assert json.loads(found.read_text().splitlines()[0])["urls"] == info["urls"]
        assert found.stat().st_mode & 0o777 == 0o600
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_emulator_knobs_turned_inside_restored_are_put_back() -> None:
    from toolkit.sandbox.mediaflow import MediaflowEmulator

    emulator = MediaflowEmulator(seed=0)
    before = emulator.token_lifetime
    with emulator.restored("upload_puts"):
        emulator.token_lifetime = 1
        emulator.upload_puts = 99
    assert emulator.token_lifetime == before and emulator.upload_puts != 99
