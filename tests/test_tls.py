"""Corporate networks (issue 20, part B): TLS against the system trust store or a CA bundle, certificate
checks off per connection with a warning, proxies from HTTPS_PROXY / HTTP_PROXY / NO_PROXY only.

Everything runs on 127.0.0.0/8: an emulator served over HTTPS (uvicorn) with a certificate signed by a
private CA made in the test (trustme), and a small forward proxy that counts what it carried. A name such as
``dokus.corp.test`` is only ever resolved by that proxy, to a loopback address.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import select
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

import toolkit
from toolkit.core import tls
from toolkit.core.errors import FATAL
from toolkit.core.http import HttpClient, RetryPolicy
from toolkit.sandbox.server import _load_emulator
from toolkit.testing import assert_no_secrets, free_port

CORP_HOST = "dokus.corp.test"  # resolved only by the test proxy (to 127.0.0.1)
ENV = ("TOOLKIT_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "https_proxy", "HTTPS_PROXY",
       "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CA bundle or proxy variable of the machine running the tests."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Toolkit Test Corp", organization_unit_name="Inspection CA")


@pytest.fixture(scope="module")
def bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "company-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


class HttpsDokus:
    """The Dokus emulator served over HTTPS on 127.0.0.1 with a certificate of the private CA."""

    def __init__(self, ca: trustme.CA, folder: Path) -> None:
        import uvicorn

        pem = folder / "server.pem"
        ca.issue_cert("127.0.0.1", "localhost", CORP_HOST).private_key_and_cert_chain_pem.write_to_path(str(pem))
        self.emulator = _load_emulator("dokus")(seed=0)  # type: ignore[misc]
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.emulator.base_url = self.url
        config = uvicorn.Config(self.emulator.build_app(), host="127.0.0.1", port=self.port, ssl_certfile=str(pem),
                                ssl_keyfile=str(pem), log_level="critical", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            threading.Event().wait(0.01)
        assert self.server.started, "the HTTPS emulator did not start"

    def credentials(self, base_url: str | None = None) -> dict[str, Any]:
        c = self.emulator.credentials()
        return {"base_url": base_url or self.url, "email": c["email"], "password": toolkit.Secret(c["password"])}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def https_dokus(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsDokus]:
    server = HttpsDokus(ca, tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


class CountingProxy:
    """A forward proxy on 127.0.0.1: ``CONNECT host:port`` tunnels (https) and absolute-form requests
    (http, forwarded with ``Connection: close``). Every host is carried to ``upstream`` (a loopback address),
    never elsewhere. ``seen`` lists what it carried; ``login`` demands that Basic proxy login."""

    def __init__(self, upstream: str = "127.0.0.1", login: tuple[str, str] | None = None) -> None:
        assert upstream.startswith("127.")
        self.upstream = upstream
        self.login = login
        self.seen: list[tuple[str, str]] = []
        self.headers: list[str] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(32)
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                got = conn.recv(65536)
                if not got:
                    return
                head += got
            head, rest = head.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            self.headers.extend(lines[1:])
            if self.login is not None:
                want = "Basic " + base64.b64encode(f"{self.login[0]}:{self.login[1]}".encode()).decode()
                if f"proxy-authorization: {want}".lower() not in (h.lower() for h in lines[1:]):
                    conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"test\"\r\nConnection: close\r\n\r\n")
                    return
            if method == "CONNECT":
                port = int(target.rsplit(":", 1)[1])
                upstream = socket.create_connection((self.upstream, port), timeout=10)
                self.seen.append(("CONNECT", target))
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                scheme_host, _, path = target.partition("://")[2].partition("/")
                port = int(scheme_host.rsplit(":", 1)[1]) if ":" in scheme_host else 80
                upstream = socket.create_connection((self.upstream, port), timeout=10)
                self.seen.append((method, target))
                kept = [h for h in lines[1:] if not h.lower().startswith(("connection:", "proxy-"))]
                upstream.sendall("\r\n".join([f"{method} /{path} {version}", *kept, "Connection: close", "", ""])
                                 .encode("latin-1") + rest)
            self._pipe(conn, upstream)
        except OSError:
            pass
        finally:
            conn.close()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self.stopped:
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        finally:
            b.close()

    def stop(self) -> None:
        self.stopped = True
        self.thread.join(2)
        self.listener.close()


@pytest.fixture
def proxy() -> Iterator[CountingProxy]:
    p = CountingProxy()
    yield p
    p.stop()


# -- certificates ---------------------------------------------------------------------------------------
def test_a_private_ca_is_refused_in_plain_words_then_trusted_with_the_bundle(https_dokus: HttpsDokus, bundle: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    dk = toolkit.dokus.connect(**https_dokus.credentials())
    with pytest.raises(toolkit.TransportError) as info:
        dk.products.list()
    error = info.value
    text = str(error)
    assert f"the certificate of 127.0.0.1:{https_dokus.port} was refused" in text
    assert "by O=Toolkit Test Corp, OU=Inspection CA" in text  # which certificate: its issuer
    assert "unable to get local issuer certificate" in text  # why
    assert "the operating system's trust store" in text and "TOOLKIT_CA_BUNDLE" in text  # what to do
    assert "(after 1 attempt)" in text and error.delivery == FATAL and error.reason == "CertificateError"
    assert error.__cause__ is None and error.__suppress_context__  # no SSL traceback under it
    assert "Traceback" not in text and "_ssl.c" not in text and "SSLCertVerificationError" not in text
    assert_no_secrets(text + repr(error), https_dokus.emulator.secrets(), "the certificate error")
    # the bundle per connection …
    trusted = toolkit.dokus.connect(**https_dokus.credentials(), transport=toolkit.Network(ca_bundle=bundle))
    assert len(trusted.products.list()) > 0
    # … also as connect()'s own keyword, for every service through the one connect path
    assert len(toolkit.dokus.connect(**https_dokus.credentials(), ca_bundle=bundle).products.list()) > 0
    assert len(toolkit.dokus.connect(**https_dokus.credentials(), verify=str(bundle)).products.list()) > 0
    # … or for every connection, by any of the three variables
    for variable in ("TOOLKIT_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(variable, str(bundle))
        assert len(toolkit.dokus.connect(**https_dokus.credentials()).products.list()) > 0, variable
        monkeypatch.delenv(variable)


def test_a_bundle_without_the_right_root_names_itself(https_dokus: HttpsDokus, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA(organization_name="Some Other CA").cert_pem.write_to_path(str(other))
    monkeypatch.setenv("TOOLKIT_CA_BUNDLE", str(other))
    with pytest.raises(toolkit.TransportError, match=f"the CA bundle {other} \\(TOOLKIT_CA_BUNDLE\\)"):
        toolkit.dokus.connect(**https_dokus.credentials()).products.list()
    monkeypatch.setenv("TOOLKIT_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(toolkit.ValidationError, match="missing.pem given by TOOLKIT_CA_BUNDLE does not exist"):
        toolkit.dokus.connect(**https_dokus.credentials()).products.list()


def test_checks_off_for_one_connection_with_one_warning_line(https_dokus: HttpsDokus,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="toolkit")
    dk = toolkit.dokus.connect(**https_dokus.credentials(), transport=toolkit.Network(verify=False))
    assert len(dk.products.list()) > 0
    warnings = [r for r in caplog.records if "certificate checks are OFF" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "Dokus" in warnings[0].getMessage() and https_dokus.url in warnings[0].getMessage()
    with pytest.raises(toolkit.TransportError, match="was refused"):  # the next connection checks again
        toolkit.dokus.connect(**https_dokus.credentials()).products.list()


def test_the_refused_certificate_is_read_right(ca: trustme.CA) -> None:
    """The error's own certificate reader against cryptography's, on a leaf and a self-signed root."""
    leaf = ca.issue_cert("127.0.0.1", CORP_HOST, common_name="svc.corp.test")
    for pem in (leaf.cert_chain_pems[0].bytes(), ca.cert_pem.bytes()):
        cert = x509.load_pem_x509_certificate(pem)
        info = tls.describe_certificate(cert.public_bytes(Encoding.DER))
        assert info is not None

        def names(name: x509.Name) -> str:
            labels = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU"}
            return ", ".join(f"{labels[a.oid]}={a.value}" for rdn in name.rdns for a in rdn if a.oid in labels)

        assert (info.subject, info.issuer) == (names(cert.subject), names(cert.issuer))
    assert tls.describe_certificate(b"\x30\x03\x02\x01") is None


# -- proxies --------------------------------------------------------------------------------------------
def test_https_goes_through_the_proxy_with_connect(https_dokus: HttpsDokus, bundle: Path, proxy: CountingProxy,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("TOOLKIT_CA_BUNDLE", str(bundle))
    dk = toolkit.dokus.connect(**https_dokus.credentials(f"https://{CORP_HOST}:{https_dokus.port}"))
    assert len(dk.products.list()) > 0
    assert proxy.seen == [("CONNECT", f"{CORP_HOST}:{https_dokus.port}")]
    # the certificate error through a proxy names the certificate too (read through the same proxy)
    monkeypatch.delenv("TOOLKIT_CA_BUNDLE")
    with pytest.raises(toolkit.TransportError, match=f"certificate of {CORP_HOST}:{https_dokus.port} was refused "
                                                     r"\(issued to .* by O=Toolkit Test Corp"):
        toolkit.dokus.connect(**https_dokus.credentials(f"https://{CORP_HOST}:{https_dokus.port}")).products.list()


def test_http_goes_through_the_proxy_and_loopback_never_does(make_sandbox: Any, proxy: CountingProxy,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sb = make_sandbox(services=["dokus"])
    port = sb.urls["dokus"].rsplit(":", 1)[1]
    creds = sb.credentials("dokus")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")  # not read: only the three variables are
    assert len(toolkit.dokus.connect(**creds).products.list()) > 0  # 127.0.0.1: directly
    assert proxy.seen == []
    named = {**creds, "base_url": f"http://{CORP_HOST}:{port}"}
    assert len(toolkit.dokus.connect(**named).products.list()) > 0
    assert proxy.seen and all(m == "GET" and t.startswith(f"http://{CORP_HOST}:{port}/") for m, t in proxy.seen)
    # the proxy saw the request, not the password in clear (Basic auth is the service's, masked in a transcript)
    assert_no_secrets("\n".join(t for _, t in proxy.seen), sb.secrets(), "the proxied request lines")


def test_no_proxy_sends_a_host_directly(proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.2 is a loopback address, but not one that always bypasses the proxy: NO_PROXY decides."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.2", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                             b"Connection: close\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    via = CountingProxy(upstream="127.0.0.2")
    try:
        monkeypatch.setenv("http_proxy", via.url)

        def get() -> bytes:
            async def run() -> bytes:
                http = HttpClient("dokus", f"http://127.0.0.2:{port}", retry=RetryPolicy(attempts=1))
                try:
                    return (await http.request("GET", "/ping")).content
                finally:
                    await http.aclose()
            return asyncio.run(run())

        assert get() == b"ok" and len(via.seen) == 1
        monkeypatch.setenv("NO_PROXY", "example.org, 127.0.0.2")
        assert get() == b"ok" and len(via.seen) == 1  # directly this time
    finally:
        via.stop()
        stop.set()
        listener.close()


def test_a_proxy_login_is_sent_and_never_shown(https_dokus: HttpsDokus, bundle: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    password = "fake-proxy-pass-31337"
    guarded = CountingProxy(login=("analyst", password))
    try:
        monkeypatch.setenv("TOOLKIT_CA_BUNDLE", str(bundle))
        target = https_dokus.credentials(f"https://{CORP_HOST}:{https_dokus.port}")
        monkeypatch.setenv("HTTPS_PROXY", guarded.url.replace("http://", "http://analyst:wrong-pass-000@"))
        with pytest.raises(toolkit.TransportError) as info:
            toolkit.dokus.connect(**target).products.list()
        text = str(info.value)
        assert f"the proxy {guarded.url} refused the connection to {CORP_HOST}" in text
        assert "407 Proxy Authentication Required" in text and "HTTPS_PROXY" in text
        assert info.value.delivery == FATAL and "(after 1 attempt)" in text  # a refused login is not repeated
        assert_no_secrets(text + repr(info.value), ["wrong-pass-000"], "the proxy error")
        monkeypatch.setenv("HTTPS_PROXY", guarded.url.replace("http://", f"http://analyst:{password}@"))
        assert len(toolkit.dokus.connect(**target).products.list()) > 0
        assert guarded.seen == [("CONNECT", f"{CORP_HOST}:{https_dokus.port}")]
        assert repr(toolkit.Network(proxy=f"http://analyst:{password}@proxy:3128")).count(password) == 0
    finally:
        guarded.stop()


def test_proxy_variables_are_read_as_curl_reads_them() -> None:
    env = {"https_proxy": "lower:3128", "HTTPS_PROXY": "http://upper:1", "HTTP_PROXY": "http://plain:8080",
           "NO_PROXY": "corp.example, .internal.test, 10.0.0.0/8, 192.168.1.5, ::2, build:8443"}
    table = tls.proxy_table(env)
    assert table["https://"] == "http://lower:3128" and table["http://"] == "http://plain:8080"
    cases = {"https://corp.example/x": None, "https://api.corp.example": None, "https://notcorp.example": "http://lower:3128",
             "https://internal.test": "http://lower:3128", "https://a.internal.test": None,
             "http://192.168.1.5/": None, "http://10.1.2.3/": "http://plain:8080",  # ranges are not understood
             "http://[::2]/": None, "https://build:8443/": None, "https://build/": "http://lower:3128",
             "http://127.0.0.1:5/": None, "http://localhost/": None, "http://[::1]/": None}
    assert {url: tls.proxy_for(url, table) for url in cases} == cases
    assert tls.proxy_table({**env, "no_proxy": "*"}) == {}
    assert tls.proxy_table({}) == {}
    with pytest.raises(toolkit.ValidationError, match="socks5 proxy"):
        tls.proxy_table({"HTTPS_PROXY": "socks5://proxy:1080"})
    with pytest.raises(toolkit.ValidationError, match="verify must be"):
        toolkit.Network(verify=1)  # type: ignore[arg-type]


def test_the_readme_names_every_connection_variable_and_the_network_ones() -> None:
    """'Working with real services' lists each service's TOOLKIT_<SERVICE>_<FIELD> (from the registry, so a new
    field shows up here) and the variables and tools of this module and of toolkit.record."""
    from toolkit.core.credentials import env_name
    from toolkit.core.registry import spec

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Working with real services", 1)[1].split("\n## ", 1)[0]
    wanted = [env_name(name, f.name) for name in ("uddata", "dokus", "livingdocs", "boknett", "mediaflow")
              for f in spec(name).fields]
    wanted += ["TOOLKIT_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
               "toolkit.Network(ca_bundle=", "verify=False", "toolkit.record(", "replay("]
    missing = [w for w in wanted if w not in section]
    assert not missing, f"README 'Working with real services' lacks {missing}"
