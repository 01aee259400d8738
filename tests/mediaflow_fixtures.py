"""The Mediaflow test modules' fixtures, in one place: a module's own sandbox (``mfs``, its seed from the module's
``MEDIAFLOW_SEED``), the emulator with its knobs put back and its uploads cleared around each test (``em``),
and a connected client (``mf``, with the module's ``MEDIAFLOW_CONNECT`` options, e.g. a fast retry policy).
A module uses them with ``from .mediaflow_fixtures import em, mf, mfs``."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

import toolkit
from toolkit.sandbox.mediaflow import MediaflowEmulator

__all__ = ["mfs", "em", "mf"]


@pytest.fixture(scope="module")
def mfs(request: pytest.FixtureRequest) -> Iterator[Any]:
    with toolkit.sandbox.start(services=["mediaflow"], seed=getattr(request.module, "MEDIAFLOW_SEED", 7)) as sandbox:
        yield sandbox


@pytest.fixture
def em(mfs: Any) -> Iterator[MediaflowEmulator]:
    emulator = mfs.emulator("mediaflow")
    emulator.reset_uploads()
    with emulator.restored():
        yield emulator
    emulator.reset_uploads()


@pytest.fixture
def mf(mfs: Any, em: MediaflowEmulator, request: pytest.FixtureRequest) -> Iterator[Any]:
    client = toolkit.mediaflow.connect(**mfs.credentials("mediaflow"), **getattr(request.module, "MEDIAFLOW_CONNECT", {}))
    yield client
    client.close()
