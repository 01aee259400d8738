"""How the toolkit's connections reach a service on a company network: TLS trust and proxies.

No httpx here (that stays in :mod:`toolkit.core.http`): this module builds the plain pieces the HTTP layer
hands to httpx — an :class:`ssl.SSLContext` and a table of proxies — and words the errors.

**Which certificates are trusted.** By default the operating system's trust store, through the
``truststore`` package (as pip and conda do): a company root certificate that IT installed on the computer
is trusted without any setting. A CA bundle (a ``.pem`` file) replaces it — as it does for curl, requests
and pip — when one is named, first match wins:

1. per connection: ``transport=toolkit.Network(ca_bundle="corp.pem")`` (or ``verify="corp.pem"``);
2. ``TOOLKIT_CA_BUNDLE``; 3. ``REQUESTS_CA_BUNDLE``; 4. ``SSL_CERT_FILE``.

``transport=toolkit.Network(verify=False)`` turns the check off for that one connection, with a warning line
when the connection is made; there is no variable that turns it off everywhere.

**Proxies.** ``HTTPS_PROXY`` (for https URLs) and ``HTTP_PROXY`` (for http URLs), lower case first, as curl
reads them; ``NO_PROXY`` lists hosts that are reached directly (``example.com`` also covers its subdomains,
``.example.com`` only them, ``*`` all; IP addresses as they are; address ranges are not understood and are
ignored). 127.0.0.1, ``localhost`` and ``::1`` are always reached directly. Only these variables are read:
the HTTP client itself is made with ``trust_env=False``, so no other variable (``ALL_PROXY``, ``.netrc``,
``SSL_CERT_DIR`` …) changes what a connection does. A proxy login goes in its URL
(``http://user:password@proxy:3128``) and is never printed.

**When the check fails** the HTTP layer raises a :class:`~toolkit.core.errors.TransportError` worded by
:func:`certificate_problem`: which host, which certificate (to whom and by whom it was issued, read by a
second handshake that does not check it), why it was refused, where the trusted certificates came from and
what to do. No SSL traceback reaches the analyst.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

from .errors import ValidationError
from .redact import get_logger, redact

__all__ = ["Network", "CA_BUNDLE_VARIABLES", "PROXY_VARIABLES", "ssl_context", "ca_bundle_from_environment",
           "proxy_table", "proxy_for", "tls_failure", "certificate_problem", "proxy_problem", "peer_certificate",
           "CertificateInfo", "refused_certificate", "describe_certificate",
           "proxy_hint"]

log = get_logger("toolkit.tls")

#: variables naming a CA bundle, in the order they are read
CA_BUNDLE_VARIABLES = ("TOOLKIT_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
#: proxy variables, in the order they are read (lower case first, as curl)
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY")

_FROM_ENVIRONMENT: Any = object()


def _env(*names: str, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The first of ``names`` set to a non-empty value: (name, value)."""
    env = os.environ if environ is None else environ
    for name in names:
        value = (env.get(name) or "").strip()
        if value:
            return name, value
    return None


# -- trust ----------------------------------------------------------------------------------------------
def ca_bundle_from_environment(environ: Mapping[str, str] | None = None) -> tuple[str, Path] | None:
    """(variable, path) of the CA bundle the environment names (:data:`CA_BUNDLE_VARIABLES`), or None."""
    found = _env(*CA_BUNDLE_VARIABLES, environ=environ)
    return None if found is None else (found[0], Path(found[1]).expanduser())


_contexts: dict[Any, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def _system_context() -> ssl.SSLContext:
    """The operating system's trust store (truststore; the OpenSSL defaults where truststore is missing)."""
    try:
        import truststore
    except ImportError:  # pragma: no cover - a dependency; the plain default context is the fallback
        return ssl.create_default_context()
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _bundle_context(path: Path, source: str) -> ssl.SSLContext:
    if not path.is_file():
        raise ValidationError(f"the CA bundle {path} given by {source} does not exist or is not a file",
                              hint="Point it at the .pem file of your organisation's root certificate(s), or "
                                   "unset it to use the computer's trust store.")
    try:
        return ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError):
        raise ValidationError(f"the CA bundle {path} given by {source} holds no readable certificate",
                              hint="It must be a PEM file (text with -----BEGIN CERTIFICATE----- blocks).") from None


def ssl_context(verify: "bool | str | os.PathLike[str] | ssl.SSLContext" = True,
                ca_bundle: "str | os.PathLike[str] | None" = None,
                environ: Mapping[str, str] | None = None) -> "ssl.SSLContext | bool":
    """The context that checks a service's certificate (``False``: no check). Contexts are made once per
    process and bundle (a changed bundle file is read again) and shared by every connection."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        return False
    source, path = _trust_source(verify, ca_bundle, environ)
    if path is None:
        key: Any = "system"
    else:
        try:
            stat = path.stat()
            key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = None
    with _contexts_lock:
        ctx = _contexts.get(key) if key is not None else None
        if ctx is None:
            ctx = _system_context() if path is None else _bundle_context(path, source)
            if key is not None:
                _contexts[key] = ctx
    return ctx


def _trust_source(verify: Any, ca_bundle: Any, environ: Mapping[str, str] | None) -> tuple[str, Path | None]:
    """(where the trusted certificates come from, in words; the bundle path or None for the system store)."""
    if ca_bundle:
        return "ca_bundle=", Path(ca_bundle).expanduser()
    if isinstance(verify, (str, os.PathLike)) and not isinstance(verify, bool):
        return "verify=", Path(verify).expanduser()
    found = ca_bundle_from_environment(environ)
    if found is not None:
        return found[0], found[1]
    return "the operating system's trust store", None


# -- proxies --------------------------------------------------------------------------------------------
def _proxy_url(value: str, variable: str) -> str:
    url = value if "://" in value else f"http://{value}"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ValidationError(f"{variable} names a {scheme} proxy, which the toolkit does not support",
                              hint="Use an http:// proxy address (ask IT for it), or unset the variable.")
    return url


def _no_proxy_entries(value: str) -> list[str]:
    return [e.strip() for e in value.split(",") if e.strip()]


def proxy_table(environ: Mapping[str, str] | None = None, *, proxy: Any = _FROM_ENVIRONMENT,
                no_proxy: Any = _FROM_ENVIRONMENT) -> dict[str, str | None]:
    """Which proxy each URL goes through, as URL patterns → proxy URL (None: directly), the form httpx's
    ``mounts`` take: ``{"https://": "http://proxy:3128", "all://*example.com": None, …}``. ``proxy`` (one
    proxy for every scheme, or None for none) and ``no_proxy`` (a comma-separated text) replace the
    variables."""
    table: dict[str, str | None] = {}
    if proxy is _FROM_ENVIRONMENT:
        for scheme in ("https", "http"):
            found = _env(f"{scheme}_proxy", f"{scheme.upper()}_PROXY", environ=environ)
            if found is not None:
                table[f"{scheme}://"] = _proxy_url(found[1], found[0])
    elif proxy:
        url = _proxy_url(str(proxy), "proxy=")
        table = {"https://": url, "http://": url}
    if not table:
        return {}
    if no_proxy is _FROM_ENVIRONMENT:
        found = _env("no_proxy", "NO_PROXY", environ=environ)
        entries = _no_proxy_entries(found[1]) if found else []
    else:
        entries = _no_proxy_entries(str(no_proxy or ""))
    for entry in entries:
        if entry == "*":
            return {}
        pattern = _no_proxy_pattern(entry)
        if pattern is not None:
            table[pattern] = None
    for host in ("127.0.0.1", "localhost", "[::1]"):
        table[f"all://{host}"] = None
    return table


def _no_proxy_pattern(entry: str) -> str | None:
    """One ``NO_PROXY`` entry as an httpx URL pattern (None: not understood, ignored)."""
    if "://" in entry:
        return entry
    host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
    if not port.isdigit():
        host, port = entry, ""
    if "/" in host:  # an address range (10.0.0.0/8): httpx patterns cannot say it
        log.debug("NO_PROXY entry %s ignored: address ranges are not understood", entry)
        return None
    suffix = f":{port}" if port else ""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return f"all://[{address}]{suffix}" if address.version == 6 else f"all://{address}{suffix}"
    if host.lower() == "localhost":
        return f"all://localhost{suffix}"
    if host.startswith("."):
        return f"all://*{host}{suffix}"  # .example.com: only the subdomains
    return f"all://*{host}{suffix}"  # example.com: the host and its subdomains


def proxy_for(url: str, table: Mapping[str, str | None]) -> str | None:
    """The proxy ``url`` goes through by ``table`` (:func:`proxy_table`), or None (directly). The same
    rules as httpx's patterns: the most specific pattern that matches wins."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not table:
        return None
    best: tuple[tuple[int, int, int], str | None] | None = None
    for pattern, proxy in table.items():
        p = urlsplit(pattern)
        scheme = "" if p.scheme == "all" else p.scheme
        if scheme and scheme != parts.scheme:
            continue
        phost = (p.hostname or "").lower()
        if pattern.startswith("all://[") and p.hostname:  # an IPv6 address: urlsplit drops the brackets
            phost = p.hostname.lower()
        if phost:
            if phost.startswith("*."):
                if not host.endswith(phost[1:]):
                    continue
            elif phost.startswith("*"):
                if host != phost[1:] and not host.endswith("." + phost[1:]):
                    continue
            elif host != phost:
                continue
        if p.port is not None and p.port != (parts.port or (443 if parts.scheme == "https" else 80)):
            continue
        rank = (1 if p.port is not None else 0, len(phost), len(scheme))
        if best is None or rank > best[0]:
            best = (rank, proxy)
    return None if best is None else best[1]


# -- the settings of one connection ---------------------------------------------------------------------
class Network:
    """How one connection reaches its service: which certificates it trusts and which proxy it uses. Give
    it to ``connect()`` as ``transport=``::

        ud = toolkit.uddata.connect(transport=toolkit.Network(ca_bundle="corporate-ca.pem"))
        dk = toolkit.dokus.connect(..., transport=toolkit.Network(verify=False))   # a warning line; avoid

    ``verify``: True (check against the trust source), False (no check for this connection), a path to a CA
    bundle, or an :class:`ssl.SSLContext`. ``ca_bundle``: a CA bundle file, which replaces the system's trust
    store. ``proxy``: a proxy URL for every request of this connection, or None for none (by default the
    proxy variables decide); ``no_proxy``: hosts reached directly (by default ``NO_PROXY``). The variables are
    read when the connection is made. A connection made without a ``Network`` behaves as ``Network()``."""

    def __init__(self, *, verify: "bool | str | os.PathLike[str] | ssl.SSLContext" = True,
                 ca_bundle: "str | os.PathLike[str] | None" = None, proxy: Any = _FROM_ENVIRONMENT,
                 no_proxy: Any = _FROM_ENVIRONMENT) -> None:
        if not isinstance(verify, (bool, str, os.PathLike, ssl.SSLContext)):
            raise ValidationError(f"verify must be True, False, a CA bundle path or an ssl.SSLContext, not "
                                  f"{type(verify).__name__}")
        self.verify = verify
        self.ca_bundle = ca_bundle
        self._proxy = proxy
        self._no_proxy = no_proxy

    @property
    def verifies(self) -> bool:
        return self.verify is not False

    def ssl_context(self) -> "ssl.SSLContext | bool":
        """The context that checks certificates (``False``: none); see :func:`ssl_context`."""
        return ssl_context(self.verify, self.ca_bundle)

    def trust_source(self) -> str:
        """Where the trusted certificates come from, in words (for messages and ``doctor()``)."""
        if not self.verifies:
            return "nothing: certificate checks are off for this connection (verify=False)"
        if isinstance(self.verify, ssl.SSLContext):
            return "the ssl.SSLContext given as verify="
        source, path = _trust_source(self.verify, self.ca_bundle, None)
        return source if path is None else f"the CA bundle {path} ({source})"

    def proxies(self) -> dict[str, str | None]:
        """URL pattern → proxy URL or None; see :func:`proxy_table`."""
        return proxy_table(proxy=self._proxy, no_proxy=self._no_proxy)

    def proxy_for(self, url: str) -> str | None:
        return proxy_for(url, self.proxies())

    def __repr__(self) -> str:
        parts = [f"trust={self.trust_source()}"]
        if self._proxy is not _FROM_ENVIRONMENT:
            parts.append(f"proxy={redact(self._proxy) if self._proxy else None}")
        return redact(f"Network({', '.join(parts)})")


# -- failures -------------------------------------------------------------------------------------------
def tls_failure(exc: BaseException) -> "ssl.SSLError | None":
    """The :class:`ssl.SSLError` behind a connection failure (following ``__cause__``/``__context__``), or
    None when the failure was not one of TLS."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        current = current.__cause__ or current.__context__
    return None


@dataclass(frozen=True)
class CertificateInfo:
    """To whom and by whom a certificate was issued (``CN=…, O=…``)."""

    subject: str
    issuer: str

    @property
    def self_signed(self) -> bool:
        return self.subject == self.issuer


def peer_certificate(host: str, port: int, proxy: str | None = None, timeout: float = 3.0
                     ) -> CertificateInfo | None:
    """The certificate ``host:port`` presents, read by a handshake that does not check it (through
    ``proxy`` with ``CONNECT`` when one is given); None when it cannot be read. Used only to word an error:
    nothing is sent after the handshake."""
    try:
        if proxy:
            p = urlsplit(proxy)
            sock = socket.create_connection((p.hostname or "", p.port or 80), timeout=timeout)
            head = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            if p.username is not None:
                login = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                head += f"Proxy-Authorization: Basic {base64.b64encode(login).decode()}\r\n"
            sock.sendall((head + "\r\n").encode("latin-1"))
            answer = b""
            while b"\r\n\r\n" not in answer and len(answer) < 65536:
                got = sock.recv(4096)
                if not got:
                    break
                answer += got
            if answer.split(b" ", 2)[1:2] != [b"200"]:
                sock.close()
                return None
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ValueError, IndexError):
        return None
    return describe_certificate(der) if der else None


_refused: dict[tuple[str, int, str | None], tuple[float, CertificateInfo | None]] = {}


def refused_certificate(url: str, proxy: str | None = None) -> CertificateInfo | None:
    """:func:`peer_certificate` of ``url``'s host, remembered for a minute (a bulk run that fails on every
    item asks once)."""
    import time

    parts = urlsplit(url)
    host = parts.hostname or ""
    key = (host, parts.port or (443 if parts.scheme == "https" else 80), proxy)
    now = time.monotonic()
    cached = _refused.get(key)
    if cached is not None and now - cached[0] < 60:
        return cached[1]
    info = peer_certificate(host, key[1], proxy)
    _refused[key] = (now, info)
    return info


_NAME_OIDS = {bytes.fromhex("550403"): "CN", bytes.fromhex("55040a"): "O", bytes.fromhex("55040b"): "OU"}


def _der(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER item at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    items = []
    while start < end:
        item = _der(data, start)
        items.append(item)
        start = item[2]
    return items


def _name(data: bytes, start: int, end: int) -> str:
    parts = []
    for _set_tag, s0, s1 in _children(data, start, end):
        for _seq_tag, a0, a1 in _children(data, s0, s1):
            kids = _children(data, a0, a1)
            if len(kids) == 2 and kids[0][0] == 0x06:
                label = _NAME_OIDS.get(data[kids[0][1]:kids[0][2]])
                if label:
                    raw = data[kids[1][1]:kids[1][2]]
                    text = raw.decode("utf-16-be" if kids[1][0] == 0x1E else "utf-8", "replace")
                    parts.append(f"{label}={text}")
    return ", ".join(parts)


def describe_certificate(der: bytes) -> CertificateInfo | None:
    """Subject and issuer of a DER certificate (common name, organisation, unit), or None."""
    try:
        _tag, c0, c1 = _der(der, 0)
        _tag, t0, t1 = _children(der, c0, c1)[0]
        fields = _children(der, t0, t1)
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject
        issuer, subject = fields[2], fields[4]
        return CertificateInfo(subject=_name(der, subject[1], subject[2]) or "(no name)",
                               issuer=_name(der, issuer[1], issuer[2]) or "(no name)")
    except (ValueError, IndexError):
        return None


def certificate_problem(url: str, error: "ssl.SSLError | None", network: Network | None = None,
                        certificate: CertificateInfo | None = None) -> tuple[str, str]:
    """(what happened, what to do) for a TLS failure reaching ``url``: the host, which certificate was
    refused and why, where the trusted certificates came from, and the ways to trust the right one."""
    network = network or Network()
    parts = urlsplit(url)
    host = parts.hostname or "the service"
    where = f"{host}:{parts.port}" if parts.port else host
    verify_failed = isinstance(error, ssl.SSLCertVerificationError)
    reason = ""
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = str(error.verify_message or "").strip()
    elif error is not None:
        reason = str(getattr(error, "reason", "") or "").replace("_", " ").lower()
    if verify_failed:
        what = f"the certificate of {where} was refused"
        if certificate is not None:
            what += (f" (a self-signed certificate for {certificate.subject}" if certificate.self_signed else
                     f" (issued to {certificate.subject} by {certificate.issuer}")
            what += f": {reason})" if reason else ")"
        elif reason:
            what += f" ({reason})"
        trusted = network.trust_source()
        hint = (f"The certificates trusted come from {trusted}. If your organisation inspects HTTPS traffic "
                "(a company proxy or firewall), ask IT for its root certificate as a .pem file and either "
                "install it in the computer's trust store, or set TOOLKIT_CA_BUNDLE=/path/to/company-ca.pem "
                "(REQUESTS_CA_BUNDLE and SSL_CERT_FILE are read too), or connect with "
                "transport=toolkit.Network(ca_bundle='/path/to/company-ca.pem'). A bundle replaces the trust "
                "store, so it must hold every root certificate you need. If the address is wrong, correct it.")
    else:
        what = f"the secure connection (TLS) to {where} could not be set up" + (f" ({reason})" if reason else "")
        hint = ("Check that the address starts with https:// only where the service speaks TLS, and that no "
                "proxy or firewall is in the way (HTTPS_PROXY, NO_PROXY); then try again.")
    return redact(what), redact(hint)


def proxy_problem(url: str, proxy: str | None, detail: str) -> tuple[str, str]:
    """(what happened, what to do) when the proxy refused to carry a request to ``url``."""
    host = urlsplit(url).hostname or "the service"
    shown = _proxy_display(proxy)
    what = f"the proxy {shown} refused the connection to {host}" + (f" ({detail})" if detail else "")
    hint = ("Check HTTPS_PROXY / HTTP_PROXY: a proxy that wants a login takes it in its address "
            "(http://user:password@proxy:port; the toolkit never prints it). A host that must be reached "
            "directly goes into NO_PROXY.")
    return redact(what), redact(hint)


def _proxy_display(proxy: str | None) -> str:
    """A proxy URL without its login (``http://proxy:3128``)."""
    if not proxy:
        return "(none)"
    p = urlsplit(proxy)
    host = p.hostname or ""
    return f"{p.scheme}://{host}{f':{p.port}' if p.port else ''}"


def proxy_hint(url: str, network: Network | None) -> str | None:
    """A sentence for a connection failure of a request that went through a proxy (None: it did not)."""
    proxy = (network or Network()).proxy_for(url)
    if not proxy:
        return None
    return (f"The request went through the proxy {_proxy_display(proxy)} (HTTPS_PROXY / HTTP_PROXY): check that "
            "it runs and lets this host through, or put the host into NO_PROXY to reach it directly.")
