"""Serve the emulators on 127.0.0.1 with uvicorn in a background thread, with fault injection.

Each emulator (one module per service in this package) is a real Starlette app. ``start()`` binds each
to a free loopback port, wraps it in :class:`FaultMiddleware` (latency, 503, 429 with Retry-After,
dropped connections; deterministic for a seed; and a service limit the client does not know: a capacity
of K requests served at once with the rest queued, or a rate of R requests a second beyond which it answers
429) and a request recorder, and serves them all from one uvicorn event loop on a daemon thread.
``Sandbox.stats()`` says what the limits did (queued, answered 429, the peak served at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import math
import random
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Mapping

from ..core import discovery as _discovery
from ..core.errors import ToolkitError
from ..core.redact import get_logger, install_log_redaction, redact

__all__ = ["Emulator", "FaultConfig", "FaultMiddleware", "RecordedRequest", "Sandbox", "start", "EMULATORS",
           "running_sandboxes", "discover"]

log = get_logger("toolkit.sandbox")

class _Emulators(dict):
    """service → ``"module:Class"`` of its emulator, found by scanning this package: every module of
    ``toolkit/sandbox/`` that defines an :class:`Emulator` subclass with a ``name`` serves that service
    (adding a service's emulator is adding its module). Tests may add entries of their own."""

    _scanned = False

    def _scan(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        import pkgutil

        package = __name__.rsplit(".", 1)[0]
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
            if info.name in ("server",) or info.name.endswith("_data") or info.name.startswith("_"):
                continue
            try:
                module = importlib.import_module(f"{package}.{info.name}")
            except Exception as exc:  # noqa: BLE001 - one broken emulator must not stop the others
                log.warning("sandbox: the emulator module %s could not be loaded: %s", info.name, redact(exc))
                continue
            for value in vars(module).values():
                if isinstance(value, type) and issubclass(value, Emulator) and value is not Emulator \
                        and value.__module__ == module.__name__ and value.name != Emulator.name:
                    dict.setdefault(self, value.name, f"{module.__name__}:{value.__name__}")

    def __getitem__(self, key: str) -> str:
        self._scan()
        return dict.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._scan()
        return dict.__contains__(self, key)

    def __iter__(self):  # type: ignore[override]
        self._scan()
        return dict.__iter__(self)

    def keys(self):  # type: ignore[override]
        self._scan()
        return dict.keys(self)

    def items(self):  # type: ignore[override]
        self._scan()
        return dict.items(self)

    def __len__(self) -> int:
        self._scan()
        return dict.__len__(self)


EMULATORS: dict[str, str] = _Emulators()

_running: "list[Sandbox]" = []

try:  # httptools parses HTTP in C: less server CPU per request than the pure-Python h11
    import httptools  # noqa: F401

    _HTTP_IMPL = "httptools"
except ImportError:  # pragma: no cover - h11 comes with uvicorn
    _HTTP_IMPL = "h11"


def running_sandboxes() -> "list[Sandbox]":
    return [sb for sb in _running if sb.running]


def discover(service: str | None = None) -> Any:
    """The running sandbox: one started in this process, else one started in another process
    (``toolkit sandbox``, ``./run lab``) found through its file — ``TOOLKIT_SANDBOX_FILE``, by default
    ``<temp dir>/toolkit-sandbox-<user>.json``. ``None`` when none runs. It has ``urls`` and
    ``credentials(service)``."""
    return _discovery.discover(service)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    time: float
    status: int | None = None
    fault: str | None = None

    def __repr__(self) -> str:
        return redact(f"RecordedRequest({self.method} {self.path}{'?' + self.query if self.query else ''} "
                      f"-> {self.status}{' ' + self.fault if self.fault else ''})")


class Emulator:
    """Base class of the service emulators.

    A subclass sets ``name``, writes each route as an endpoint method (``async def get_files(self,
    request)``) and lists them in :meth:`routes`, gives its error format for unknown paths and methods in
    :meth:`unrouted`, and returns the ``connect()`` keyword arguments in :meth:`credentials`.
    :meth:`build_app` makes the Starlette app of the routes with the one 404/405 handler of all emulators
    (an emulator that wraps the app, e.g. to stamp a header on every answer, extends it).
    ``self.requests`` lists what arrived.
    """

    name = "emulator"
    #: the attributes a test may turn (lifetimes, clock offsets, fault switches); :meth:`restored` puts them back
    knobs: tuple[str, ...] = ()

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.requests: list[RecordedRequest] = []
        self.base_url = ""

    def routes(self) -> list[Any]:
        """The Starlette routes of the service, e.g. ``[Route("/files", self.get_files, methods=["GET"])]``."""
        raise NotImplementedError

    def unrouted(self, request: Any, status: int) -> Any:
        """The answer to a path no route serves (``status`` 404) or to a method its route does not take
        (405), in the service's own error format (JSON for most, XML for Boknett). ``None`` (the default)
        keeps Starlette's plain-text ``Not Found`` / ``Method Not Allowed``."""
        return None

    def build_app(self) -> Any:
        """The ASGI app the sandbox serves: :meth:`routes`, with 404 and 405 answered by :meth:`unrouted`."""
        from starlette.applications import Starlette

        return Starlette(routes=self.routes(), exception_handlers={404: self._unrouted, 405: self._unrouted})

    async def _unrouted(self, request: Any, exc: Any) -> Any:
        response = self.unrouted(request, exc.status_code)
        if response is None:
            from starlette.responses import PlainTextResponse

            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        return response

    def credentials(self) -> dict[str, Any]:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Every secret value of this emulator (tests scan logs and notebooks for them)."""
        return []

    def personal_data(self) -> list[str]:
        """Raw personal data values (e.g. CPR numbers) that must never be displayed."""
        return []

    @contextlib.contextmanager
    def restored(self, *extra: str) -> Iterator["Emulator"]:
        """``with emulator.restored(): …`` — the :attr:`knobs` (and ``extra`` attributes) turned inside the
        block are put back to their values at its start (a test's changes do not leak into the next)."""
        names = tuple(dict.fromkeys((*self.knobs, *extra)))
        saved = {k: getattr(self, k) for k in names}
        try:
            yield self
        finally:
            for key, value in saved.items():
                setattr(self, key, value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"


@dataclass
class FaultConfig:
    """Fault injection of one service. Rates are probabilities per request (0–1).

    Two models of a service limit the client does not know (both off by default; ``exempt`` paths skip them
    too):

    * ``capacity`` K: at most K requests are served at once; the rest wait in arrival order (a real
      server's queue). ``latency_ms`` is the time of each served request, so a request waiting behind the
      K in service takes longer — nothing is refused.
    * ``rate`` R: at most R requests a second (a token bucket of ``burst`` requests, by default one
      second's worth, refilled at R a second). A request beyond it is answered at once, before any queue or
      latency (a gateway in front of the service), with ``429`` and ``Retry-After`` in whole seconds (RFC
      9110's delay-seconds: the time until the bucket holds a request again, rounded up). With
      ``rate_headers`` every answer also carries the IETF httpapi draft's ``RateLimit-Limit`` (R),
      ``RateLimit-Remaining`` (whole requests left in the bucket) and ``RateLimit-Reset`` (seconds until it
      is full). None of the five services documents such headers (docs/uddata.md: "Rate limits are not
      documented"), so they are off by default; elsewhere the draft's fields are sent by some APIs, and
      GitHub-style ``X-RateLimit-*`` (reset as an epoch time) by many others.
    """

    latency_ms: float = 0.0
    error_503: float = 0.0
    error_429: float = 0.0
    drop: float = 0.0
    retry_after: float = 1.0
    #: paths (prefixes) never faulted, e.g. for a test that only wants faults on data calls
    exempt: tuple[str, ...] = ()
    #: at most this many requests served at once, the rest queued (0: no limit)
    capacity: int = 0
    #: at most this many requests a second, the rest answered 429 with Retry-After (0: no limit)
    rate: float = 0.0
    #: the rate limit's bucket: requests allowed in a burst (0: one second's worth, ``rate``)
    burst: float = 0.0
    #: send RateLimit-Limit/-Remaining/-Reset with every answer of a rate-limited service
    rate_headers: bool = False

    @classmethod
    def parse(cls, spec: Mapping[str, Any] | None, latency_ms: float = 0.0) -> "FaultConfig":
        spec = dict(spec or {})
        aliases = {"503": "error_503", "429": "error_429", "dropped": "drop", "latency": "latency_ms"}
        kwargs: dict[str, Any] = {"latency_ms": latency_ms}
        for key, value in spec.items():
            key = aliases.get(str(key), str(key))
            if key not in cls.__dataclass_fields__:
                raise ToolkitError(f"unknown fault {key!r}; use 503, 429, drop, retry_after, latency_ms, exempt, "
                                   "capacity, rate, burst, rate_headers", service="sandbox")
            kwargs[key] = _fault_value(key, value)
        return cls(**kwargs)


def _fault_value(key: str, value: Any) -> Any:
    """One fault setting as its field wants it; a value that cannot be is a plain error naming the key."""
    if key == "exempt":
        return (value,) if isinstance(value, str) else tuple(value)
    if key == "rate_headers":
        return bool(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if key == "capacity" and number >= 0 and number == int(number):
        return int(number)
    if key != "capacity" and number >= 0 and math.isfinite(number):
        return number
    what = "a whole number of requests (0: no limit)" if key == "capacity" else "a number of at least 0"
    raise ToolkitError(f"fault {key!r} must be {what}, not {value!r}", service="sandbox")


@dataclass
class _Stats:
    """What one service's fault middleware did since the last reset (``Sandbox.stats()``)."""

    requests: int = 0
    #: requests that waited for one of the ``capacity`` places
    queued: int = 0
    peak_queued: int = 0
    #: the most requests served at once (also without a capacity)
    peak_served: int = 0
    #: requests answered 429 by the ``rate`` limit
    rate_limited: int = 0
    #: requests answered 503/429 or dropped by the injected faults
    injected: dict[str, int] = field(default_factory=lambda: {"503": 0, "429": 0, "drop": 0})

    def as_dict(self, served: int, waiting: int) -> dict[str, Any]:
        return {"requests": self.requests, "queued": self.queued, "peak_queued": self.peak_queued,
                "peak_served": self.peak_served, "rate_limited": self.rate_limited,
                "injected": dict(self.injected), "served_now": served, "waiting_now": waiting}


class _Dropped(Exception):
    """Raised inside the ASGI app to make uvicorn close the connection mid-response."""


class FaultMiddleware:
    """The one fault layer in front of an emulator: records each request, then applies the service limits
    (``rate``, ``capacity``), the latency and the injected faults of its :class:`FaultConfig`. ``config``
    may be swapped at run time (``Sandbox.set_faults``); the queue, the bucket and the stats stay here and
    are touched on the sandbox's event loop only."""

    def __init__(self, app: Any, emulator: Emulator, config: FaultConfig, rng: random.Random) -> None:
        self.app = app
        self.emulator = emulator
        self.config = config
        self.rng = rng
        self.stats = _Stats()
        self.served = 0  # requests in service now (past the rate limit and the capacity queue)
        self.waiting: deque[asyncio.Future] = deque()
        self.bucket: tuple[float, float] | None = None  # the rate limit's (requests left, monotonic time)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rec = RecordedRequest(scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"),
                              headers, time.time())
        self.emulator.requests.append(rec)
        self.stats.requests += 1
        cfg = self.config
        exempt = any(scope["path"].startswith(p) for p in cfg.exempt)
        limit_headers: dict[str, str] = {}
        if cfg.rate and not exempt:
            wait, limit_headers = self._take_token(cfg)
            if wait is not None:
                rec.fault = "rate"
                self.stats.rate_limited += 1
                await _send_json(send, 429, {"error": "rate_limited", "message": "Sandbox: over the rate limit"},
                                 rec, {"retry-after": str(max(1, math.ceil(wait))), **limit_headers})
                return
        await self._enter(cfg.capacity if not exempt else 0)
        try:
            await self._serve(scope, receive, send, rec, exempt, limit_headers)
        finally:
            self._leave()

    # -- the service limits ----------------------------------------------------------------------------
    def _take_token(self, cfg: FaultConfig) -> tuple[float | None, dict[str, str]]:
        """Take one request from the rate limit's bucket: ``(None, headers)`` when there was one, else the
        seconds until there is one. The headers are the RateLimit fields when ``rate_headers`` is on."""
        burst = cfg.burst or cfg.rate
        now = time.monotonic()
        tokens, then = self.bucket or (burst, now)  # a new limit starts with a full bucket
        tokens = min(burst, tokens + (now - then) * cfg.rate)
        wait = None if tokens >= 1 else (1 - tokens) / cfg.rate
        if wait is None:
            tokens -= 1
        self.bucket = (tokens, now)
        if not cfg.rate_headers:
            return wait, {}
        return wait, {"ratelimit-limit": _fmt(cfg.rate), "ratelimit-remaining": str(int(tokens)),
                      "ratelimit-reset": str(math.ceil((burst - tokens) / cfg.rate))}

    async def _enter(self, capacity: int) -> None:
        """Take a place among the requests served at once; with a ``capacity`` wait in arrival order for
        one. A place is handed from the request leaving to the first waiting (:meth:`admit`)."""
        if capacity and (self.served >= capacity or self.waiting):
            future = asyncio.get_running_loop().create_future()
            self.waiting.append(future)
            self.stats.queued += 1
            self.stats.peak_queued = max(self.stats.peak_queued, len(self.waiting))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._leave()  # the place was handed over already: pass it on
                elif future in self.waiting:
                    self.waiting.remove(future)
                raise
            return
        self.served += 1
        self.stats.peak_served = max(self.stats.peak_served, self.served)

    def _leave(self) -> None:
        self.served -= 1
        self.admit()

    def admit(self) -> None:
        """Let waiting requests in while there is room (after one left, or the capacity was raised or
        cleared). On the sandbox's event loop only."""
        capacity = self.config.capacity
        while self.waiting and (not capacity or self.served < capacity):
            future = self.waiting.popleft()
            if future.done():
                continue
            self.served += 1
            self.stats.peak_served = max(self.stats.peak_served, self.served)
            future.set_result(None)

    def snapshot(self, reset: bool = False) -> dict[str, Any]:
        """The stats as a dict (on the sandbox's event loop); ``reset`` starts them again from zero."""
        stats = self.stats.as_dict(self.served, len(self.waiting))
        if reset:
            self.stats = _Stats(peak_served=self.served, peak_queued=len(self.waiting))
        return stats

    # -- one served request: latency, injected faults, the emulator ------------------------------------
    async def _serve(self, scope: dict, receive: Callable, send: Callable, rec: RecordedRequest, exempt: bool,
                     limit_headers: Mapping[str, str]) -> None:
        cfg = self.config
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000)
        roll = self.rng.random() if not exempt else 1.0
        if roll < cfg.error_503:
            rec.fault = "503"
            self.stats.injected["503"] += 1
            await _send_json(send, 503, {"error": "service_unavailable", "message": "Sandbox: injected 503"}, rec,
                             {"retry-after": _fmt(cfg.retry_after)} if self.rng.random() < 0.5 else {})
            return
        roll -= cfg.error_503
        if roll < cfg.error_429:
            rec.fault = "429"
            self.stats.injected["429"] += 1
            await _send_json(send, 429, {"error": "rate_limited", "message": "Sandbox: injected 429"}, rec,
                             {"retry-after": _fmt(cfg.retry_after)})
            return
        roll -= cfg.error_429
        if roll < cfg.drop:
            rec.fault = "drop"
            self.stats.injected["drop"] += 1
            await self._drop(scope, receive, send, rec)
        extra = [(k.encode(), v.encode()) for k, v in limit_headers.items()]

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                rec.status = message["status"]
                if extra:
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, recording_send)

    async def _drop(self, scope: dict, receive: Callable, send: Callable, rec: RecordedRequest) -> None:
        """Close the connection: before the service saw the request, or after it answered (raises)."""
        if self.rng.random() < 0.5:
            # the request never reaches the service
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"1000")]})
            raise _Dropped()

        # the service processes it, the answer is lost on the way back
        async def lossy_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                rec.status = message["status"]
                await send({**message, "headers": [(k, v) for k, v in message.get("headers", [])
                                                   if k.lower() != b"content-length"]
                            + [(b"content-length", b"100000")]})
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                raise _Dropped()
        await self.app(scope, receive, lossy_send)
        raise _Dropped()


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


async def _send_json(send: Callable, status: int, body: Any, rec: RecordedRequest,
                     headers: Mapping[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    rec.status = status
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": payload})


def _load_emulator(service: str) -> type[Emulator] | None:
    target = EMULATORS[service]
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    return getattr(module, cls_name)


def available_services() -> list[str]:
    return [s for s in EMULATORS if _load_emulator(s) is not None]


class Sandbox:
    """Running emulators: ``urls``, ``credentials(service)``, ``emulator(service)``, ``stop()``."""

    def __init__(self, *, latency_ms: float = 0, faults: Mapping[str, Any] | None = None, seed: int = 0,
                 services: list[str] | None = None, host: str = "127.0.0.1", ports: Mapping[str, int] | None = None
                 ) -> None:
        self.seed = seed
        self.host = host
        names = services or available_services()
        unknown = [s for s in names if s not in EMULATORS]
        if unknown:
            raise ToolkitError(f"no emulator for {', '.join(unknown)}; available: {', '.join(available_services())}",
                               service="sandbox")
        self.emulators: dict[str, Emulator] = {}
        self.faults: dict[str, FaultConfig] = {}
        self.urls: dict[str, str] = {}
        self._middlewares: dict[str, FaultMiddleware] = {}
        self._servers: list[Any] = []
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        for i, name in enumerate(names):
            cls = _load_emulator(name)
            if cls is None:
                raise ToolkitError(f"the {name} emulator is not part of this version", service="sandbox")
            emulator = cls(seed=seed)
            self.emulators[name] = emulator
            self.faults[name] = FaultConfig.parse(_faults_for(faults, name), latency_ms)
            # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
            # IPPROTO_TCP; with proto 0 every response stalls 40 ms (Nagle + delayed ACK)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, (ports or {}).get(name, 0)))
            sock.listen(1024)
            sock.setblocking(False)
            self._sockets.append(sock)
            port = sock.getsockname()[1]
            emulator.base_url = f"http://{host}:{port}"
            self.urls[name] = emulator.base_url
        self._start()

    # -- lifecycle ------------------------------------------------------------------------------------
    def _start(self) -> None:
        import uvicorn

        install_log_redaction()
        configs = []
        for (name, emulator), sock in zip(self.emulators.items(), self._sockets):
            mw = FaultMiddleware(emulator.build_app(), emulator, self.faults[name],
                                 random.Random(f"{self.seed}-{name}-faults"))
            self._middlewares[name] = mw
            config = uvicorn.Config(mw, log_level="critical", access_log=False, lifespan="off", loop="asyncio",
                                    http=_HTTP_IMPL, ws="none", timeout_keep_alive=60, backlog=1024,
                                    date_header=False)
            server = uvicorn.Server(config)
            self._servers.append(server)
            configs.append((server, sock))
        ready = threading.Event()
        errors: list[BaseException] = []

        async def serve_all() -> None:
            self._loop = asyncio.get_running_loop()
            tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in configs]
            while not all(s.started for s in self._servers):
                if any(t.done() for t in tasks):
                    break
                await asyncio.sleep(0.005)
            ready.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        def main() -> None:
            try:
                asyncio.run(serve_all())
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                ready.set()

        self._thread = threading.Thread(target=main, name="toolkit-sandbox", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors or not all(s.started for s in self._servers):
            self.stop()
            raise ToolkitError(f"the sandbox did not start ({errors[0] if errors else 'timeout'})", service="sandbox")
        _running.append(self)
        _discovery.announce(self)
        log.info("sandbox serving %s", ", ".join(f"{k} at {v}" for k, v in self.urls.items()))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass
        if self in _running:
            _running.remove(self)
        _discovery.withdraw(self)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if self.running:
                self.stop()
        except Exception:  # noqa: BLE001
            pass

    # -- access -----------------------------------------------------------------------------------------
    def emulator(self, service: str) -> Emulator:
        try:
            return self.emulators[service]
        except KeyError:
            raise ToolkitError(f"this sandbox does not serve {service!r}; it serves {', '.join(self.emulators)}",
                               service="sandbox") from None

    def credentials(self, service: str) -> dict[str, Any]:
        """Keyword arguments for ``toolkit.<service>.connect()`` (secrets wrapped in ``Secret``)."""
        from ..core.credentials import Secret
        from ..core.registry import spec

        creds = dict(self.emulator(service).credentials())
        try:
            secret_fields = {f.name for f in spec(service).fields if f.secret}
        except ToolkitError:  # an emulator without a client (tests)
            secret_fields = set()
        return {k: Secret(v) if k in secret_fields and not isinstance(v, Secret) else v for k, v in creds.items()}

    def secrets(self) -> list[str]:
        return [s for e in self.emulators.values() for s in e.secrets()]

    def personal_data(self) -> list[str]:
        return [s for e in self.emulators.values() for s in e.personal_data()]

    def set_faults(self, service: str | None = None, **spec: Any) -> None:
        """Change fault injection at run time, e.g. ``sb.set_faults("uddata", **{"503": 0.1})``, or a service
        limit: ``sb.set_faults("uddata", capacity=4)`` (4 served at once, the rest queued) or
        ``sb.set_faults("uddata", rate=100)`` (100 requests a second, the rest answered 429 with
        Retry-After); see :class:`FaultConfig`. Each call replaces the service's faults and limits; no spec
        turns them off (latency is kept unless given). Requests queued for a capacity that grew or was
        cleared go in at once; a changed rate starts with a full bucket."""
        spec = dict(spec)
        latency = spec.pop("latency_ms", None)
        for name in self._names(service):
            old = self.faults[name]
            self._configure(name, FaultConfig.parse(spec, old.latency_ms if latency is None else float(latency)))

    def set_latency(self, latency_ms: float, service: str | None = None) -> None:
        for name in self._names(service):
            self._configure(name, replace(self.faults[name], latency_ms=float(latency_ms)))

    def stats(self, service: str | None = None, *, reset: bool = False) -> dict[str, Any]:
        """What the faults and limits did, per service since the start (or the last ``reset=True``):
        ``requests``, ``queued`` (waited for a place under ``capacity``), ``peak_queued``, ``peak_served``
        (the most served at once), ``rate_limited`` (answered 429 by ``rate``), ``injected`` (503/429/drop
        counts), and ``served_now``/``waiting_now``. One service's dict when ``service`` is given, else
        ``{service: dict}``."""
        names = self._names(service)
        found = {name: self._on_loop(lambda mw=self._middlewares[name]: mw.snapshot(reset)) for name in names}
        return found[service] if service else found

    def _names(self, service: str | None) -> list[str]:
        if service is None:
            return list(self.emulators)
        self.emulator(service)  # an unknown service is a plain error
        return [service]

    def _configure(self, name: str, config: FaultConfig) -> None:
        self.faults[name] = config
        mw = self._middlewares.get(name)
        if mw is None:
            return

        def apply() -> None:
            if (config.rate, config.burst) != (mw.config.rate, mw.config.burst):
                mw.bucket = None  # a changed rate starts with a full bucket
            mw.config = config
            mw.admit()

        self._on_loop(apply)

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the sandbox's event loop (where the middlewares' queues and stats live), waited for;
        directly when the loop is not running or this is its thread."""
        loop = self._loop
        if loop is None or not loop.is_running() or not self.running:
            return fn()
        try:
            if asyncio.get_running_loop() is loop:
                return fn()
        except RuntimeError:
            pass

        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(10)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Sandbox {state} seed={self.seed} " + " ".join(f"{k}={v}" for k, v in self.urls.items()) + ">"


def _faults_for(faults: Mapping[str, Any] | None, name: str) -> Mapping[str, Any]:
    if not faults:
        return {}
    if name in faults and isinstance(faults[name], Mapping):
        return faults[name]
    if any(k in EMULATORS for k in faults):
        return {}
    return faults


def start(latency_ms: float = 0, faults: Mapping[str, Any] | None = None, seed: int = 0,
          services: list[str] | None = None, **kwargs: Any) -> Sandbox:
    """Serve every emulator on 127.0.0.1 (free ports) in a background thread; see :class:`Sandbox`.

    ``faults`` is ``{"503": rate, "429": rate, "drop": rate, "retry_after": s}`` for all services, or
    ``{"uddata": {...}, "dokus": {...}}`` per service; a service limit is ``{"capacity": K}`` (K served at
    once, the rest queued) or ``{"rate": R}`` (R requests a second, the rest answered 429 with Retry-After),
    see :class:`FaultConfig`; ``Sandbox.stats()`` reports what they did. Use as a context manager or call ``stop()``.
    """
    return Sandbox(latency_ms=latency_ms, faults=faults, seed=seed, services=services, **kwargs)

