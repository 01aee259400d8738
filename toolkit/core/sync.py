"""Run the async core from sync code: a private event loop on a daemon thread.

The sync clients analysts use in notebooks hand every coroutine to this loop and wait for it. That works
in a plain script, inside Jupyter's already running loop, and in a kernel where someone applied
``nest_asyncio`` (library code never applies it). Ctrl-C (KeyboardInterrupt) while waiting cancels the
work on the private loop, so nothing keeps running behind the analyst's back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import threading
from typing import Any, AsyncIterator, Awaitable, Iterator, TypeVar

from .redact import redact

__all__ = ["run", "iterate", "loop_thread", "SyncWrapper", "sync_wrappable", "sync_class", "wrap"]

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def main() -> None:
                    asyncio.set_event_loop(loop)
                    ready.set()
                    loop.run_forever()

                thread = threading.Thread(target=main, name="toolkit-loop", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread


loop_thread = _LoopThread()


def run(coro: Awaitable[T], *, poll: float = 0.1) -> T:
    """Run ``coro`` on the private loop and return its result; Ctrl-C cancels it."""
    loop = loop_thread.loop()
    if threading.current_thread() is loop_thread.thread:
        raise RuntimeError("toolkit: a sync call was made from the toolkit's own loop; use the async client")
    future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), loop)
    try:
        while True:
            try:
                return future.result(timeout=poll)
            except concurrent.futures.TimeoutError:
                continue
    except KeyboardInterrupt:
        future.cancel()
        try:
            future.result(timeout=10)
        except BaseException:  # noqa: BLE001 - the cancellation's own outcome does not matter
            pass
        raise
    except concurrent.futures.CancelledError:
        raise KeyboardInterrupt("toolkit: the work was cancelled") from None


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


def iterate(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item at a time, on the private loop."""
    iterator = agen.__aiter__()
    while True:
        try:
            yield run(iterator.__anext__())
        except StopAsyncIteration:
            return


def sync_wrappable(cls: type) -> type:
    """Mark a class whose instances the sync facade wraps (resource objects, jobs …)."""
    cls._toolkit_sync = True  # type: ignore[attr-defined]
    return cls


class SyncWrapper:
    """Sync facade over an async object: coroutine methods run on the private loop, async generators
    become iterators, attributes that are themselves async objects (``sync_wrappable``) are wrapped.

    :func:`sync_class` generates a subclass per async class whose methods are real attributes with the
    async methods' signatures and docstrings (``help()``, Jupyter's Shift-Tab, IDEs); ``__getattr__``
    remains the fallback for anything else.
    """

    def __init__(self, async_obj: Any) -> None:
        object.__setattr__(self, "_async", async_obj)

    @property
    def aio(self) -> Any:
        """The async object underneath (``await`` its methods in your own event loop)."""
        return self._async

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        attr = getattr(self._async, name)
        return _wrap(attr)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._async, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | {n for n in dir(self._async) if not n.startswith("_")})

    def __repr__(self) -> str:
        return redact(repr(self._async))

    def __enter__(self) -> "SyncWrapper":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections (the sync client can be used as ``with … as client:``)."""
        closer = getattr(self._async, "aclose", None)
        if closer is not None:
            run(closer())


_GENERATED: dict[type, type] = {}


def _sync_method(name: str, func: Any) -> Any:
    if inspect.iscoroutinefunction(func):
        @functools.wraps(func)
        def method(self: SyncWrapper, *args: Any, **kwargs: Any) -> Any:
            return _wrap_value(run(getattr(self._async, name)(*args, **kwargs)))
    elif inspect.isasyncgenfunction(func):
        @functools.wraps(func)
        def method(self: SyncWrapper, *args: Any, **kwargs: Any) -> Any:
            return iterate(getattr(self._async, name)(*args, **kwargs))
    else:
        @functools.wraps(func)
        def method(self: SyncWrapper, *args: Any, **kwargs: Any) -> Any:
            return _wrap_value(getattr(self._async, name)(*args, **kwargs))
    method.__qualname__ = f"{name}"
    return method


def _sync_property(name: str, prop: property) -> property:
    def getter(self: SyncWrapper) -> Any:
        return _wrap_value(getattr(self._async, name))

    getter.__doc__ = prop.__doc__
    getter.__name__ = name
    return property(getter, doc=prop.__doc__)


def sync_class(async_cls: type, name: str | None = None, doc: str | None = None, module: str | None = None) -> type:
    """Generate the sync facade class of ``async_cls``: a :class:`SyncWrapper` subclass with one real
    method per public method of the async class (same signature and docstring; coroutines run on the
    private loop, async generators become iterators) and one property per public property."""
    if async_cls in _GENERATED and name is None:
        return _GENERATED[async_cls]
    namespace: dict[str, Any] = {}
    for klass in reversed(async_cls.__mro__):
        if klass is object:
            continue
        for attr, value in vars(klass).items():
            if attr.startswith("_") or attr in ("aio", "close"):
                continue
            if isinstance(value, property):
                namespace[attr] = _sync_property(attr, value)
            elif isinstance(value, (staticmethod, classmethod)):
                namespace[attr] = value
            elif inspect.isfunction(value):
                namespace[attr] = _sync_method(attr, value)
    for attr, value in list(namespace.items()):
        if inspect.isfunction(value):
            value.__qualname__ = f"{name or async_cls.__name__}.{attr}"
    namespace["__doc__"] = doc or (f"Sync facade of :class:`{async_cls.__module__}.{async_cls.__name__}` "
                                   f"(each call blocks until done; Ctrl-C cancels it).\n\n"
                                   + (inspect.getdoc(async_cls) or ""))
    namespace["__module__"] = module or async_cls.__module__
    namespace["_async_class"] = async_cls
    cls = type(name or f"Sync{async_cls.__name__}", (SyncWrapper,), namespace)
    if name is None:
        _GENERATED[async_cls] = cls
    return cls


def wrap(async_obj: Any) -> SyncWrapper:
    """The sync facade of one async object (its class's generated facade)."""
    return sync_class(type(async_obj))(async_obj)


def _wrap(attr: Any) -> Any:
    if inspect.iscoroutinefunction(attr):
        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return _wrap_value(run(attr(*args, **kwargs)))
        return call
    if inspect.isasyncgenfunction(attr):
        @functools.wraps(attr)
        def gen(*args: Any, **kwargs: Any) -> Iterator[Any]:
            return iterate(attr(*args, **kwargs))
        return gen
    if getattr(type(attr), "_toolkit_sync", False):
        return wrap(attr)
    if callable(attr) and not isinstance(attr, type):
        # a plain method may return an async object (e.g. a job): wrap its result
        if inspect.ismethod(attr) or inspect.isfunction(attr):
            @functools.wraps(attr)
            def plain(*args: Any, **kwargs: Any) -> Any:
                return _wrap_value(attr(*args, **kwargs))
            return plain
    return attr


def _wrap_value(value: Any) -> Any:
    if getattr(type(value), "_toolkit_sync", False):
        return wrap(value)
    return value
