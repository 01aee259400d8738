"""The sync facade: works in scripts, inside a running loop (Jupyter), in a kernel where nest_asyncio was
applied, and Ctrl-C cancels the work instead of leaving it running."""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from toolkit.core import sync
from toolkit.core.sync import SyncWrapper, sync_wrappable


@sync_wrappable
class Resource:
    def __init__(self) -> None:
        self.calls = 0

    async def double(self, x: int) -> int:
        await asyncio.sleep(0)
        self.calls += 1
        return 2 * x

    async def items(self, n: int):  # noqa: ANN201
        for i in range(n):
            yield i


class AsyncThing:
    def __init__(self) -> None:
        self.res = Resource()
        self.closed = False

    async def add(self, a: int, b: int) -> int:
        return a + b

    async def child(self) -> Resource:
        return self.res

    async def aclose(self) -> None:
        self.closed = True


def test_plain_script_call() -> None:
    thing = SyncWrapper(AsyncThing())
    assert thing.add(2, 3) == 5
    assert thing.res.double(4) == 8  # attributes marked sync_wrappable are wrapped
    assert thing.child().double(5) == 10  # so are returned ones
    assert list(thing.res.items(3)) == [0, 1, 2]
    with thing:
        pass
    assert thing.aio.closed


def test_call_from_inside_a_running_loop() -> None:
    thing = SyncWrapper(AsyncThing())

    async def notebook_cell() -> int:
        # Jupyter runs cells inside its own running loop; a sync call must still return the result
        assert asyncio.get_running_loop().is_running()
        return thing.add(40, 2)

    assert asyncio.run(notebook_cell()) == 42


def test_interrupt_cancels_the_work() -> None:
    state = {"cancelled": False, "finished": False}

    async def long_job() -> None:
        try:
            await asyncio.sleep(30)
            state["finished"] = True
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    threading.Timer(0.3, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sync.run(long_job())
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while not state["cancelled"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state["cancelled"] and not state["finished"]


NEST_ASYNCIO_CELLS = [
    "import nest_asyncio, asyncio\nnest_asyncio.apply()",
    "import toolkit\nsb = toolkit.sandbox.start()\nname = next(iter(sb.urls))",
    # a sync call through the toolkit's loop thread, after nest_asyncio patched asyncio in this kernel
    "from toolkit.core.http import HttpClient\nfrom toolkit.core import sync\n"
    "http = HttpClient(name, sb.urls[name])\n"
    "status = sync.run(http.request('GET', '/', allow=range(200, 600))).status_code\n"
    "assert 100 <= status < 600\nprint('nest-ok', status)",
    "from toolkit.core.sync import SyncWrapper\n"
    "class A:\n    async def f(self):\n        await asyncio.sleep(0.01)\n        return 7\n"
    "assert SyncWrapper(A()).f() == 7\nprint('wrapper-ok')",
    "sb.stop()",
]


@pytest.mark.notebook
def test_sync_works_in_a_kernel_with_nest_asyncio_applied(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NEST_ASYNCIO_CELLS]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "nest-ok" in out and "wrapper-ok" in out
