"""Redacted transcripts of what the toolkit sends and receives, as HAR 1.2 — and their replay.

``with toolkit.record("support.har"): …`` writes every request the toolkit makes inside the block, and its
answer, to an HTTP Archive (HAR 1.2): the format browsers' developer tools save and vendors' support
teams read. Each entry holds the method, URL, headers, status, timing and the text bodies, with

* every secret masked (``***``): ``Authorization``, cookie and other credential headers (the scheme word
  such as ``Bearer`` is kept), token, secret and password form fields, JSON fields and query parameters
  (``access_token``, ``client_secret``, ``refresh_token``, ``signature``, ``sig`` …), signed links, Boknett
  tickets and every secret the toolkit has seen (core :func:`~toolkit.core.redact.redact`, the one redaction
  function);
* every CPR number masked (``010190-****``): in URLs and headers every run of ten digits, in bodies the
  numbers :func:`~toolkit.core.redact.redact` recognises and every JSON text value that is a CPR number;
* image, file and other binary bodies (uploads, downloads, photos) replaced by their size and type: the
  entry keeps ``size`` and ``mimeType`` and says in its ``comment`` that the body was not recorded.

The file is written when the block ends (also when it ends with an error: that is when it is wanted),
in one step, so a half-written transcript never exists. In a notebook, where a block cannot span cells::

    rec = toolkit.record("support.har")      # starts recording
    …                                        # any cells
    rec.stop()                               # writes the file

A transcript replays offline: :func:`toolkit.testing.replay` answers every connection made inside its block
from the file (:class:`Replayer`), so a recorded problem becomes a test that needs no service. Requests are
matched by method and URL, a masked part matching anything (``***``) or any four digits (``010190-****``);
requests that match the same entries are answered in recorded order, and among those the one whose body
matches is preferred; a GET asked more often than recorded gets its last answer again. A body that was not
recorded comes back as that many zero bytes (a download completes; its content is not the original).

What it cannot hold: requests that got no answer (a timeout, a refused connection) — HAR entries are
exchanges; the error the toolkit raised says what happened.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import threading
from datetime import datetime, timezone
from email.message import Message
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

from .errors import TransportError, ValidationError
from .http import Answer, Exchange, observe
from .redact import MASK, get_logger, redact

__all__ = ["record", "Recording", "har_entry", "load_har", "Replayer", "ReplayMiss", "is_secret_name"]

log = get_logger("toolkit.record")

HAR_VERSION = "1.2"
#: header names whose whole value is a credential (the scheme word of Authorization is kept)
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
                            "x-auth-token", "x-amz-security-token"})
_SECRET_NAME_ENDINGS = ("token", "secret", "password", "passwd", "signature", "apikey", "serverkey", "servicekey",
                        "credential", "credentials", "tgt", "sig", "cookie", "authorization", "pin")
#: content types whose bodies are recorded as text; anything else is replaced by its size and type
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded",
               "application/javascript", "application/problem+json", "application/hal+json")
_CPR_VALUE = re.compile(r"^\s*\d{6}-?\d{4}\s*$")
_XML_SECRET = re.compile(r"(?is)(<(?:[\w.-]+:)?(?:password|passwd|secret|token|[\w-]*_token|signature)(?:\s[^>]*)?>)"
                         r"[^<]*(</)")


def is_secret_name(name: str) -> bool:
    """Whether a header, field or parameter called ``name`` holds a credential (``access_token``,
    ``clientSecret``, ``X-Api-Key``, ``signature`` …; not ``token_type``)."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return key in SECRET_HEADERS or key.endswith(_SECRET_NAME_ENDINGS) or key in ("key", "apikey", "sessionid")


# -- redaction of the parts of an exchange --------------------------------------------------------------
def _strict(text: str) -> str:
    """Secrets and every run of ten digits masked (URLs and headers: where the toolkit puts CPR numbers)."""
    return redact(text, file_name=True)


def redact_url(url: str) -> str:
    return _strict(url)


def _header_value(name: str, value: str) -> str:
    lower = name.lower()
    if lower == "cookie":
        return "; ".join(f"{part.split('=', 1)[0].strip()}={MASK}" for part in value.split(";") if part.strip())
    if lower == "set-cookie":
        first, _, attributes = value.partition(";")
        return f"{first.split('=', 1)[0].strip()}={MASK}" + (f";{attributes}" if attributes else "")
    if lower in SECRET_HEADERS or is_secret_name(lower):
        scheme = value.strip().split(" ", 1)[0] if " " in value.strip() else ""
        # an authorization scheme (Bearer, Basic, a service's own word) stays: support sees what kind was sent
        return f"{scheme} {MASK}" if lower.endswith("authorization") and re.fullmatch(r"[A-Za-z][\w-]{0,19}", scheme) \
            else MASK
    return _strict(value)


def _headers(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": _header_value(name, value)} for name, value in pairs]


def _cookies(pairs: Iterable[tuple[str, str]], header: str) -> list[dict[str, str]]:
    out = []
    for name, value in pairs:
        if name.lower() != header:
            continue
        parts = value.split(";") if header == "cookie" else [value.split(";", 1)[0]]
        for part in parts:
            if "=" in part:
                out.append({"name": part.split("=", 1)[0].strip(), "value": MASK})
    return out


def _content_type(headers: Iterable[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.strip()
    return ""


def _header(headers: Iterable[tuple[str, str]], wanted: str) -> str | None:
    for name, value in headers:
        if name.lower() == wanted:
            return value
    return None


def _charset(content_type: str) -> str:
    message = Message()
    message["content-type"] = content_type or "application/octet-stream"
    return message.get_param("charset") or "utf-8"  # type: ignore[return-value]


def _is_text(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return base.startswith(_TEXT_TYPES) or base.endswith(("+json", "+xml"))


def _decode(body: bytes, content_type: str) -> str | None:
    """The body as text when its type is a text type and it decodes, else None (recorded by size only)."""
    if not _is_text(content_type):
        return None
    try:
        return body.decode(_charset(content_type))
    except (UnicodeDecodeError, LookupError):
        return None


def _json_masks(value: Any, key: str = "", found: dict[str, str] | None = None) -> dict[str, str]:
    """JSON text values to mask: the value of every secret-named field, and every CPR-shaped text."""
    found = {} if found is None else found
    if isinstance(value, dict):
        for k, v in value.items():
            _json_masks(v, str(k), found)
    elif isinstance(value, list):
        for v in value:
            _json_masks(v, key, found)
    elif isinstance(value, str) and value:
        if is_secret_name(key):
            found[value] = MASK
        elif _CPR_VALUE.match(value):
            digits = re.sub(r"\D", "", value)
            found[value] = f"{digits[:6]}-****"
    return found


def redact_text(text: str, content_type: str = "") -> str:
    """A text body with every secret and CPR number masked (JSON fields by name, XML secret elements, the
    rest by :func:`~toolkit.core.redact.redact`). The text keeps its layout and its numbers as sent."""
    base = content_type.split(";", 1)[0].strip().lower()
    if "json" in base or (not base and text.lstrip()[:1] in "[{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            for value, mask in sorted(_json_masks(parsed).items(), key=lambda kv: -len(kv[0])):
                for encoded in {json.dumps(value), json.dumps(value, ensure_ascii=False)}:
                    text = text.replace(encoded, json.dumps(mask))
    if "xml" in base or text.lstrip().startswith("<"):
        text = _XML_SECRET.sub(lambda m: f"{m.group(1)}{MASK}{m.group(2)}", text)
    return redact(text)


def _form_pairs(text: str, masked: bool) -> list[tuple[str, str]]:
    pairs = parse_qsl(text, keep_blank_values=True)
    if not masked:
        return pairs
    return [(k, MASK if is_secret_name(k) and v else _strict(v)) for k, v in pairs]


def _is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _omitted(kind: str, content_type: str, size: int | None) -> str:
    what = content_type.split(";", 1)[0].strip() or "no type"
    amount = f"{size} bytes" if size is not None and size >= 0 else "size unknown"
    return f"{kind} not recorded ({what}, {amount}): only text bodies are kept in a transcript"


def _post_data(exchange: Exchange) -> dict[str, Any] | None:
    content_type = _content_type(exchange.request_headers)
    body = exchange.request_body
    if body is None:
        length = _header(exchange.request_headers, "content-length")
        if not length or length == "0":
            return None
        return {"mimeType": content_type, "comment": _omitted("streamed body", content_type,
                                                              int(length) if length.isdigit() else None)}
    text = _decode(body, content_type)
    if text is None:
        return {"mimeType": content_type, "comment": _omitted("body", content_type, len(body))}
    if _is_form(content_type):
        return {"mimeType": content_type, "params": [{"name": k, "value": v} for k, v in _form_pairs(text, True)]}
    return {"mimeType": content_type, "text": redact_text(text, content_type)}


def _content(exchange: Exchange) -> dict[str, Any]:
    content_type = _content_type(exchange.response_headers)
    body = exchange.response_body
    if body is None:  # streamed (a download): its size is in the headers
        length = _header(exchange.response_headers, "content-length")
        size = int(length) if length and length.isdigit() else 0
        return {"size": size, "mimeType": content_type,
                "comment": _omitted("streamed body", content_type, size if length else None)}
    text = _decode(body, content_type) if body else ""
    if text is None:
        return {"size": len(body), "mimeType": content_type, "comment": _omitted("body", content_type, len(body))}
    return {"size": len(body), "mimeType": content_type, "text": redact_text(text, content_type) if text else ""}


def _query(url: str) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)]


def har_entry(exchange: Exchange) -> dict[str, Any]:
    """One exchange as a redacted HAR 1.2 entry (with ``_service``, the toolkit's name of the service)."""
    url = redact_url(exchange.url)
    post = _post_data(exchange)
    request: dict[str, Any] = {
        "method": exchange.method, "url": url, "httpVersion": exchange.http_version or "HTTP/1.1",
        "cookies": _cookies(exchange.request_headers, "cookie"), "headers": _headers(exchange.request_headers),
        "queryString": _query(url), "headersSize": -1,
        "bodySize": len(exchange.request_body) if exchange.request_body is not None else (0 if post is None else -1),
    }
    if post is not None:
        request["postData"] = post
    content = _content(exchange)
    location = _header(exchange.response_headers, "location")
    response = {
        "status": exchange.status, "statusText": exchange.reason or "", "httpVersion": exchange.http_version or "HTTP/1.1",
        "cookies": _cookies(exchange.response_headers, "set-cookie"), "headers": _headers(exchange.response_headers),
        "content": content, "redirectURL": redact_url(location) if location else "", "headersSize": -1,
        "bodySize": len(exchange.response_body) if exchange.response_body is not None else content["size"] or -1,
    }
    elapsed = round(max(0.0, exchange.elapsed_ms), 3)
    return {
        "startedDateTime": datetime.fromtimestamp(exchange.started, timezone.utc).isoformat(timespec="milliseconds"),
        "time": elapsed, "request": request, "response": response, "cache": {},
        "timings": {"blocked": -1, "dns": -1, "connect": -1, "ssl": -1, "send": 0, "wait": elapsed, "receive": 0},
        "_service": exchange.service,
    }


def har_document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    from .._version import __version__

    return {"log": {
        "version": HAR_VERSION, "creator": {"name": "toolkit", "version": __version__},
        "entries": entries,
        "comment": "Recorded by toolkit.record(): secrets, tokens, signed links and CPR numbers are masked (***, "
                   "DDMMYY-****); image and file bodies are replaced by their size and type.",
    }}


class Recording:
    """A transcript being recorded; see :func:`record`. ``entries`` holds the redacted entries so far;
    :meth:`stop` (or the end of the ``with`` block) writes them to ``path`` and returns the path."""

    def __init__(self, path: "str | os.PathLike[str]") -> None:
        self.path = Path(path).expanduser()
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop_observing: Any = None
        self.failed = 0  #: exchanges that could not be turned into an entry (never fails the work)

    @property
    def recording(self) -> bool:
        return self._stop_observing is not None

    def start(self) -> "Recording":
        if self._stop_observing is None:
            parent = self.path.parent
            if not parent.is_dir():
                raise ValidationError(f"cannot record to {self.path}: the folder {parent} does not exist",
                                      hint="Create the folder first, or give another path.")
            self._stop_observing = observe(self._add)
        return self

    def _add(self, exchange: Exchange) -> None:
        try:
            entry = har_entry(exchange)
        except Exception:  # noqa: BLE001 - a transcript must never break the work it records
            self.failed += 1
            log.debug("an exchange could not be recorded")
            return
        with self._lock:
            self.entries.append(entry)

    def stop(self) -> Path:
        """Stop recording and write the file (atomically); returns its path."""
        if self._stop_observing is not None:
            self._stop_observing()
            self._stop_observing = None
        with self._lock:
            entries = sorted(self.entries, key=lambda e: e["startedDateTime"])
        text = json.dumps(har_document(entries), ensure_ascii=False, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path

    def __enter__(self) -> "Recording":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "recording" if self.recording else "stopped"
        return redact(f"<Recording {self.path.name}: {len(self.entries)} exchanges, {state}>")


def record(path: "str | os.PathLike[str]") -> Recording:
    """Record every request the toolkit makes, and its answer, to ``path`` as a redacted HAR 1.2 transcript
    (see the module docstring). Use as ``with toolkit.record("support.har"): …``, or call ``.stop()`` on the
    returned :class:`Recording` in a later notebook cell. Recording starts at once."""
    return Recording(path).start()


# -- replay ---------------------------------------------------------------------------------------------
class ReplayMiss(TransportError):
    """A replayed request that the transcript holds no answer for."""

    default_hint = ("The transcript holds no answer for this request: record again with the calls you replay "
                    "(toolkit.record), or make the same calls, with the same arguments, as when recording.")


def load_har(path: "str | os.PathLike[str]") -> list[dict[str, Any]]:
    """The entries of a HAR file (a plain error when it is not one)."""
    path = Path(path).expanduser()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        entries = document["log"]["entries"]
        if not isinstance(entries, list):
            raise TypeError
    except FileNotFoundError:
        raise ValidationError(f"no transcript at {path}", hint="Record one with toolkit.record(path).") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValidationError(f"{path} is not a HAR transcript (JSON with log.entries)",
                              hint="Give a file written by toolkit.record() or a browser's 'Save all as HAR'.") from None
    return entries


def _wildcard(recorded: str) -> "re.Pattern[str]":
    """A pattern that matches what ``recorded`` was before it was masked."""
    out, pos = [], 0
    for m in re.finditer(r"(\d{6})-\*\*\*\*|\*\*\*", recorded):
        out.append(re.escape(recorded[pos:m.start()]))
        out.append(rf"{m.group(1)}-?\d{{4}}" if m.group(1) else ".*?")
        pos = m.end()
    out.append(re.escape(recorded[pos:]))
    return re.compile("".join(out), re.S)


def _canonical_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text


def _same(recorded: str, live: str, masked_live: str) -> bool:
    if recorded == masked_live or recorded == live:
        return True
    if MASK not in recorded and "-****" not in recorded:
        return False
    pattern = _wildcard(recorded)
    return bool(pattern.fullmatch(live) or pattern.fullmatch(masked_live))


class _Recorded:
    """One entry, ready to match and to answer."""

    def __init__(self, index: int, entry: Mapping[str, Any]) -> None:
        request, response = entry["request"], entry["response"]
        self.index = index
        self.method = str(request["method"]).upper()
        self.url = str(request["url"])
        post = request.get("postData") or {}
        self.content_type = str(post.get("mimeType") or "")
        if "params" in post and post.get("text") is None:
            self.body: str | None = urlencode([(p["name"], p.get("value", "")) for p in post["params"]], safe="*")
        else:
            self.body = post.get("text")
        self.status = int(response["status"])
        skip = {"content-length", "content-encoding", "transfer-encoding", "connection"}
        self.headers = [(h["name"], h["value"]) for h in response.get("headers", []) if h["name"].lower() not in skip]
        content = response.get("content") or {}
        text = content.get("text")
        if text is None:
            self.content = b"\0" * max(0, int(content.get("size") or 0))
        elif content.get("encoding") == "base64":
            self.content = base64.b64decode(text)
        else:
            self.content = str(text).encode(_charset(str(content.get("mimeType") or "")), "replace")

    def url_matches(self, url: str) -> bool:
        return _same(self.url, url, redact_url(url))

    def body_matches(self, content_type: str, body: bytes) -> bool:
        if self.body is None:
            return not body
        text = _decode(body, content_type) if body else ""
        if text is None:
            return False
        recorded = self.body
        if _is_form(content_type):
            live = urlencode(_form_pairs(text, False), safe="*")
            masked = urlencode(_form_pairs(text, True), safe="*")
        else:
            live, masked = text, redact_text(text, content_type)
            if "json" in content_type.lower():  # the same data, whatever the spacing
                live, masked, recorded = _canonical_json(live), _canonical_json(masked), _canonical_json(recorded)
        return _same(recorded, live, masked)

    def answer(self) -> Answer:
        return Answer(self.status, list(self.headers), self.content)


class Replayer:
    """Answers requests from transcript entries (what :func:`toolkit.testing.replay` installs with
    :func:`toolkit.core.http.answer_with`); see the module docstring for the matching rules. ``answered``
    counts the answers given, ``misses`` lists (redacted) the requests that found none."""

    _SAFE = ("GET", "HEAD", "OPTIONS")

    def __init__(self, entries: Iterable[Mapping[str, Any]]) -> None:
        self.entries = [_Recorded(i, e) for i, e in enumerate(entries)]
        self._used: set[int] = set()
        self._lock = threading.Lock()
        self.answered = 0
        self.misses: list[str] = []

    @classmethod
    def from_file(cls, path: "str | os.PathLike[str]") -> "Replayer":
        return cls(load_har(path))

    @property
    def unused(self) -> int:
        """How many recorded entries have not been asked for yet."""
        return len(self.entries) - len(self._used)

    def __call__(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
        method = method.upper()
        with self._lock:
            candidates = [e for e in self.entries if e.method == method and e.url_matches(url)]
            fresh = [e for e in candidates if e.index not in self._used]
            pick = None
            if fresh:
                pick = fresh[0]
                if len(fresh) > 1 and len({e.body for e in fresh}) > 1:
                    content_type = _content_type(headers)
                    pick = next((e for e in fresh if e.body_matches(content_type, body)), fresh[0])
                self._used.add(pick.index)
            elif candidates and method in self._SAFE:
                pick = candidates[-1]
            if pick is None:
                shown = f"{method} {redact_url(url)}"
                self.misses.append(shown)
                recorded = len(candidates)
                raise ReplayMiss(f"the transcript holds no answer for {shown}"
                                 + (f" (it was recorded {recorded} time{'s' if recorded != 1 else ''}, and asked "
                                    "once more)" if recorded else ""), method=method, url=url, delivery="unsent",
                                 reason="ReplayMiss")
            self.answered += 1
            return pick.answer()

    def __repr__(self) -> str:
        return f"<Replayer {len(self.entries)} entries, {self.answered} answered, {len(self.misses)} missed>"
