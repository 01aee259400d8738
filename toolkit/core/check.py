"""The live contract check: what the toolkit assumes of a service, asked of the service itself.

    toolkit.check("uddata")                         # connects as toolkit.uddata.connect() does
    ud.check()                                      # on a client you have
    toolkit.doctor(live=True)                       # every service whose credentials are found
    toolkit uddata check --environment sandbox      # exit code 0 all ok, 1 something differs, 3 an error

A few **read-only** calls per service — the token or login, one small page of the main list, one item, the
paging headers, the server's clock — and one row per assumption (:data:`SCHEMA`): ``service``, ``check`` (a
short name), ``assumption`` (what the toolkit assumes, in words), ``answered`` (what the service answered:
the shape, field names and types, headers, clock skew, token lifetime — never a value that could be a
secret or a CPR number), ``verdict`` (:data:`VERDICTS`: ``ok``, ``differs``, ``failed``) and ``what_to_do``.

* ``differs``: the service answered otherwise than the toolkit's contract says (more fields are not a
  difference: they are named and kept). ``what_to_do`` says whether the toolkit copes with the other shape
  (the shapes a client reads too, :attr:`Expect.also`) or what goes wrong.
* ``failed``: a call failed (its error's words and hint), or an assumption could not be checked because an
  earlier call failed. A failing call is a row, never an exception.

The machinery is here, the assumptions next to each client (``toolkit/<service>/check.py``, found by its name
like the service's package: core names no service), derived from the schemas the client already has. A
client's ``check()`` is :func:`check_client`; a check module writes its rows with a :class:`Checker`: it sends the
calls (:meth:`Checker.call`, :meth:`Checker.token`), compares JSON or XML records with declared field types
(:class:`Expect`, :func:`compare`, :func:`xml_records`), reads the paging headers (:meth:`Checker.unpaged`)
and the clock skew of a ``Date`` header (:meth:`Checker.clock`), and makes the frame
(:meth:`Checker.frame`, core ``frame(kind="records", service=…)``).
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence

from .errors import ToolkitError, service_name
from .redact import redact

__all__ = ["check", "check_client", "Checker", "Answer", "Row", "Expect", "Comparison", "compare", "expects_of", "describe",
           "xml_records", "records_in", "exit_code", "add_check_command", "SCHEMA", "VERDICTS", "KINDS",
           "STRICT", "OAUTH_TOKEN", "print_rows"]

OK, DIFFERS, FAILED = "ok", "differs", "failed"
VERDICTS = (OK, DIFFERS, FAILED)
SCHEMA = {"service": "string", "check": "string", "assumption": "string", "answered": "string",
          "verdict": "string", "what_to_do": "string"}
_TEXT_COLUMNS = ("assumption", "answered", "what_to_do")
REPORT = ("Tell the toolkit's maintainers what this row says (the table holds no secret and no CPR "
          "number: it can be sent as it is).")


# -- field kinds ----------------------------------------------------------------------------------------
def _is_text_of(pattern: str) -> Callable[[Any], bool]:
    rx = re.compile(pattern)
    return lambda v: isinstance(v, str) and rx.match(v.strip()) is not None


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _is_amount(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        return Decimal(value.strip()).is_finite()
    except InvalidOperation:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: a kind of value → (how it is said, whether a JSON value is of it)
KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "text": ("text", lambda v: isinstance(v, str)),
    "integer": ("a whole number", _is_int),
    "number": ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "bool": ("true/false", lambda v: isinstance(v, bool)),
    "object": ("an object", lambda v: isinstance(v, Mapping)),
    "list": ("a list", lambda v: isinstance(v, (list, tuple))),
    "integer-text": ("a whole number as text", _is_text_of(r"^[+-]?\d+$")),
    "number-text": ("a number as text", _is_text_of(r"^[+-]?\d+([.,]\d+)?$")),
    "bool-text": ("true/false as text", lambda v: isinstance(v, str) and v.strip().lower() in
                  ("true", "false", "1", "0", "yes", "no", "")),
    "0/1": ("0 or 1", lambda v: _is_int(v) and v in (0, 1)),
    "date": ("a date as text, YYYY-MM-DD", _is_text_of(r"^\d{4}-\d{2}-\d{2}$")),
    "datetime": ("a time as text, ISO 8601", _is_datetime),
    "amount": ("an amount as text, e.g. 199.50", _is_amount),
    "url": ("an http(s) address", _is_text_of(r"^https?://\S+$")),
    "any": ("any value", lambda v: True),
}

#: frame dtype (core ``frame`` schemas) → the JSON kind the contract gives such a column
STRICT: dict[str, str] = {"string": "text", "Int64": "integer", "Float64": "number", "boolean": "bool",
                          "datetime": "datetime", "date": "date", "decimal": "amount", "object": "any",
                          "cpr": "text", "redacted": "text", "text": "text"}


@dataclass(frozen=True)
class Expect:
    """What the contract says one field holds: ``kinds`` (any of them is as assumed); ``also``, shapes the
    client reads too (a difference it copes with); ``optional``, whether the field may be left out. A
    ``null`` is as assumed for every field (the frame shows it empty)."""

    kinds: tuple[str, ...]
    also: tuple[str, ...] = ()
    optional: bool = False

    @classmethod
    def of(cls, kinds: str, also: str = "", optional: bool = False) -> "Expect":
        """``Expect.of("integer|integer-text", also="number")``: kinds separated by ``|``."""
        split = lambda text: tuple(k for k in text.split("|") if k)  # noqa: E731
        unknown = [k for k in (*split(kinds), *split(also)) if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
        return cls(split(kinds), split(also), optional)

    def fits(self, value: Any) -> bool:
        return value is None or any(KINDS[k][1](value) for k in self.kinds)

    def tolerates(self, value: Any) -> bool:
        return any(KINDS[k][1](value) for k in self.also)

    def words(self) -> str:
        said = " or ".join(KINDS[k][0] for k in self.kinds)
        return said + (", may be left out" if self.optional else "")


OAUTH_TOKEN = {"access_token": Expect.of("text"), "token_type": Expect.of("text"),
               "expires_in": Expect.of("integer", also="number|number-text")}


def expects_of(schema: Mapping[str, str], wire: Mapping[str, str] | None = None, *,
               kinds: Mapping[str, str] | None = None, also: Mapping[str, str] | None = None,
               optional: Iterable[str] = (), skip: Iterable[str] = ()) -> dict[str, Expect]:
    """The declared fields of a frame schema (column → dtype) as the service sends them: ``wire`` maps a
    column to its field name on the wire (dotted for a nested one, ``asset.url``; a column it leaves out
    keeps its name), ``kinds`` dtype → ``"kind|kind"`` (default :data:`STRICT`), ``also`` dtype or column →
    the kinds the client reads too. Columns in ``skip`` (derived ones, the vocabulary's) are left out."""
    kinds = {**STRICT, **(kinds or {})}
    also = dict(also or {})
    optional, skip = set(optional), set(skip)
    out: dict[str, Expect] = {}
    for column, dtype in schema.items():
        if column in skip:
            continue
        name = (wire or {}).get(column, column)
        out[name] = Expect.of(kinds.get(dtype, "any"), also.get(column, also.get(dtype, "")),
                              optional=column in optional or name in optional)
    return out


#: a kind in the fewest words, for what was answered
_SHORT = {"text": "text", "integer": "whole number", "number": "number", "bool": "true/false", "object": "object",
          "list": "list", "integer-text": "whole number as text", "number-text": "number as text",
          "bool-text": "true/false as text", "0/1": "0/1", "date": "date", "datetime": "time", "amount": "amount",
          "url": "address", "any": "value"}


def describe(value: Any, expect: "Expect | None" = None) -> str:
    """A JSON value's kind in a word or two (never the value itself): the first kind of ``expect`` it is
    of (``date``, ``time``, ``amount`` …), else its JSON type."""
    if value is None:
        return "empty"
    for kind in ((*expect.kinds, *expect.also) if expect is not None else ()):
        if kind != "any" and KINDS[kind][1](value):
            return _SHORT[kind]
    for kind in ("bool", "integer", "number", "text", "object", "list"):
        if KINDS[kind][1](value):
            return _SHORT[kind]
    return type(value).__name__


# -- comparing records with declared fields ------------------------------------------------------------
def _get(record: Mapping[str, Any], path: str, fold: bool) -> tuple[bool, Any]:
    """(present, value) of a field, dotted paths into nested objects; ``fold``: names in any case."""
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return False, None
        if part in node:
            node = node[part]
            continue
        match = next((k for k in node if fold and str(k).lower() == part.lower()), None)
        if match is None:
            return False, None
        node = node[match]
    return True, node


@dataclass
class Comparison:
    """How records compare with their declared fields (:func:`compare`): what each field was, which are
    missing, which came in a shape the client reads too (``tolerated``) or in another (``other``), and the
    fields the service sent beyond the declared ones (``extra``)."""

    records: int
    seen: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    tolerated: dict[str, str] = field(default_factory=dict)
    other: dict[str, str] = field(default_factory=dict)
    extra: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.missing or self.tolerated or self.other)


def compare(records: Sequence[Mapping[str, Any]], fields: Mapping[str, Expect], *,
            fold: bool = False) -> Comparison:
    """Compare each record with ``fields`` (name → :class:`Expect`); ``fold`` matches names in any case."""
    result = Comparison(len(records))
    declared_tops = {name.split(".")[0].lower() if fold else name.split(".")[0] for name in fields}
    for record in records:
        for name, expect in fields.items():
            present, value = _get(record, name, fold)
            if not present:
                if not expect.optional and name not in result.missing:
                    result.missing.append(name)
                continue
            said = describe(value, expect)
            if result.seen.get(name) in (None, "empty"):  # a value's kind wins over an empty one
                result.seen[name] = said
            if expect.fits(value):
                continue
            (result.tolerated if expect.tolerates(value) else result.other).setdefault(name, said)
        for key in record:
            top = str(key).lower() if fold else str(key)
            if top not in declared_tops and str(key) not in result.extra:
                result.extra.append(str(key))
    return result


def records_in(body: Any, keys: Sequence[str] = ()) -> list[Mapping[str, Any]]:
    """The records of a JSON answer: a list, the list under one of ``keys``, else the first list an object
    holds, else the object itself (one record)."""
    if isinstance(body, list):
        return [r for r in body if isinstance(r, Mapping)]
    if not isinstance(body, Mapping):
        return []
    for key in (*keys, *body.keys()):
        if isinstance(body.get(key), list):
            return [r for r in body[key] if isinstance(r, Mapping)]
    return [body]


def shape_of(body: Any) -> str:
    """A JSON answer's shape in words: ``a JSON array of 2 objects`` or ``an object with products (a list
    of 2), count (a whole number)``."""
    if isinstance(body, list):
        return f"a JSON array of {len(body)} item{'s' if len(body) != 1 else ''}"
    if isinstance(body, Mapping):
        parts = [f"{k} ({'a list of ' + str(len(v)) if isinstance(v, list) else describe(v)})"
                 for k, v in list(body.items())[:8]]
        more = f" and {len(body) - 8} more" if len(body) > 8 else ""
        return "an object with " + (", ".join(parts) + more if parts else "no fields")
    return "not JSON" if body is None else f"JSON {describe(body)}"


def xml_records(data: bytes, record: str) -> tuple[str | None, list[dict[str, Any]]]:
    """``(root element, records)`` of an XML answer: each ``record`` element as ``{child: text or None}``
    (names without namespace). Safe: no entities, no DTD, no network; a document declaring entities or a
    DTD, or not XML at all, gives ``(None, [])``."""
    if not data or b"<!ENTITY" in data or b"<!DOCTYPE" in data:
        return None, []
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return None, []
    local = lambda tag: tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""  # noqa: E731
    found = [{local(kid.tag): ((kid.text or "").strip() or None) for kid in element}
             for element in root.iter() if local(element.tag) == record]
    return local(root.tag), found


# -- answers and rows -----------------------------------------------------------------------------------
@dataclass
class Answer:
    """One answer the check got, as plain data: status, headers (lower-case names), body, when it was sent
    and when it came, and the ``rel`` → URL of its ``Link`` header."""

    status: int
    headers: list[tuple[str, str]]
    content: bytes
    sent: float
    received: float
    links: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.content) if self.content else None
        except ValueError:
            return None


def _answer(response: Any, sent: float, read: bool = True) -> Answer:
    links = {rel: str(link.get("url", "")) for rel, link in response.links.items()} if "link" in response.headers \
        else {}
    return Answer(response.status_code, [(k.lower(), v) for k, v in response.headers.multi_items()],
                  response.content if read else b"", sent, time.time(), links)


@dataclass
class Row:
    check: str
    assumption: str
    answered: str
    verdict: str
    what_to_do: str = ""


def _duration(seconds: float) -> str:
    """``45 s``, ``59 min``, ``2 h``, ``1 h 59 min``."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


class Checker:
    """The rows of one service's check, and the calls that make them (see the module docstring)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.title = service_name(service)
        self.rows: list[Row] = []
        self.notes: list[str] = []

    # -- rows ---------------------------------------------------------------------------------------------
    def add(self, check: str, assumption: str, answered: str, verdict: str, what_to_do: str = "") -> Row:
        assert verdict in VERDICTS, verdict
        row = Row(check, redact(assumption), redact(answered), verdict,
                  redact(what_to_do or ("Nothing." if verdict == OK else REPORT)))
        self.rows.append(row)
        return row

    def failed(self, check: str, assumption: str, problem: Any, what_to_do: str = "") -> Row:
        """A ``failed`` row: ``problem`` is the error of the call (its words and hint) or a text."""
        if isinstance(problem, ToolkitError):
            status = f" (HTTP {problem.status})" if getattr(problem, "status", None) else ""
            return self.add(check, assumption, f"{problem.message}{status}", FAILED,
                            what_to_do or problem.hint or "Run the check again later; if it keeps failing, "
                                                          "check the connection fields.")
        if isinstance(problem, BaseException):  # the check itself could not read the answer
            problem = f"the answer could not be read ({type(problem).__name__}: {problem})"
        return self.add(check, assumption, str(problem), FAILED, what_to_do)

    def skipped(self, check: str, assumption: str, because: str) -> Row:
        """An assumption not checked because an earlier call failed (a ``failed`` row that says so)."""
        return self.failed(check, assumption, f"not checked: {because}", "See the row above that failed.")

    def note(self, text: str) -> None:
        """A sentence for the summary (e.g. an assumption left out: nothing to compare)."""
        self.notes.append(redact(text))

    # -- calls --------------------------------------------------------------------------------------------
    async def call(self, check: str, assumption: str, http: Any, path: str, *, params: Any = None,
                   allow: Iterable[int] = (), what: str | None = None, body: bool = True) -> Answer | None:
        """One read-only ``GET`` on a client's connection; ``None`` (and a failed row) when it fails.
        ``body=False`` keeps the body of a 200 unread (a photo)."""
        return await self.attempt(check, assumption, lambda: http.request(
            "GET", path, params=params, allow=allow, what=what, stream=not body), body=body)

    async def attempt(self, check: str, assumption: str, send: Callable[[], Awaitable[Any]], *,
                      body: bool = True) -> Answer | None:
        """Await ``send()`` (a client method that returns the HTTP answer); ``None`` and a failed row when it
        raises (a refusal, no answer, an answer the client could not read)."""
        sent = time.time()
        try:
            response = await send()
        except ToolkitError as exc:
            self.failed(check, assumption, exc)
            return None
        if body:
            return _answer(response, sent)
        try:
            read = response.status_code != 200
            if read:
                await response.aread()
            return _answer(response, sent, read)
        finally:
            await response.aclose()

    @contextlib.contextmanager
    def _watch(self, path: str) -> Iterator[list[dict[str, Any]]]:
        """Summaries of this service's POSTs to ``path`` while the block runs (the token or login call, seen
        through the HTTP layer's observers). Only shapes are kept: field names and kinds, ``expires_in``,
        ``token_type``, header names — never a token."""
        from . import http as _http

        seen: list[dict[str, Any]] = []

        def watch(exchange: Any) -> None:
            if exchange.service == self.service and exchange.method == "POST" and \
                    exchange.url.split("?", 1)[0].rstrip("/").endswith(path.rstrip("/")):
                seen.append(_token_summary(exchange))

        stop = _http.observe(watch)
        try:
            yield seen
        finally:
            stop()

    async def token(self, check: str, assumption: str, client: Any, path: str, *,
                    login: str | None = None) -> dict[str, Any] | None:
        """Ask the client's credential flow for a fresh credential (it forgets the one it holds: renewing
        is what it does anyway) and write the row: an OAuth token answer (:data:`OAUTH_TOKEN`, its lifetime)
        or, with ``login`` (the ticket header), a login that answers the ticket in a header."""
        auth = client.http.auth
        with self._watch(path) as seen:
            try:
                auth.reset()
                await client.check_credentials()
            except ToolkitError as exc:
                self.failed(check, assumption, exc)
                return None
        if not seen:
            self.add(check, assumption, "a credential was had, but its answer was not seen (a replay?)", OK)
            return None
        summary = seen[-1]
        if login is not None:
            self._login_row(check, assumption, summary, login)
        else:
            self._token_row(check, assumption, summary, getattr(auth, "leeway", 60.0))
        return summary

    def _token_row(self, check: str, assumption: str, summary: dict[str, Any], leeway: float) -> None:
        fields, lifetime, kind = summary["fields"], summary.get("expires_in"), summary.get("token_type")
        said = ", ".join(f"{k} {kind}" if k == "token_type" and kind else
                         f"{k} {_duration(lifetime)}" if k == "expires_in" and isinstance(lifetime, (int, float))
                         else f"{k} ({v})" for k, v in fields.items())
        problems = []
        if "access_token" not in fields or fields["access_token"] != "text":
            problems.append("no access_token as text")
        if str(kind or "").lower() != "bearer":
            problems.append(f"token_type is {kind!r}, not Bearer" if kind else "no token_type")
        if not isinstance(lifetime, (int, float)) or lifetime <= 0:
            problems.append("no expires_in in seconds: the toolkit cannot renew the token before it ends (it "
                            "renews it once on a 401)")
        answered = f"HTTP {summary['status']}, JSON: {said}"
        if isinstance(lifetime, (int, float)) and lifetime > 0:
            renew = max(lifetime / 2, lifetime - leeway)
            answered += f"; a token lives {_duration(lifetime)}, the toolkit renews it after {_duration(renew)}"
        if summary.get("rotated"):
            answered += "; the answer carried a new refresh token (the toolkit keeps it for the next renewal)"
        if problems:
            self.add(check, assumption, f"{answered} — {'; '.join(problems)}", DIFFERS)
        else:
            self.add(check, assumption, answered, OK)

    def _login_row(self, check: str, assumption: str, summary: dict[str, Any], header: str) -> None:
        names = summary["headers"]
        answered = f"HTTP {summary['status']}, the ticket in the {header} header (not shown)"
        if header.lower() in names and summary["status"] == 201:
            self.add(check, assumption, answered, OK)
        else:
            self.add(check, assumption, f"HTTP {summary['status']}, headers: {', '.join(sorted(names))}", DIFFERS)

    # -- comparisons --------------------------------------------------------------------------------------
    def fields(self, check: str, what: str, records: Sequence[Mapping[str, Any]], expected: Mapping[str, Expect],
               *, fold: bool = False, consequence: str = "", noun: str = "record") -> Comparison:
        """The row comparing ``records`` with their declared fields: ``what`` names them ("each file"),
        ``consequence`` says what goes wrong in the toolkit when a field is missing or of another kind."""
        assumption = f"{what} has " + ", ".join(f"{name} ({e.words()})" for name, e in expected.items())
        result = compare(records, expected, fold=fold)
        count = f"{len(records)} {noun}{'s' if len(records) != 1 else ''}"
        answered = f"{count}: " + ", ".join(f"{k} ({v})" for k, v in result.seen.items())
        diffs = [f"missing: {', '.join(result.missing)}"] if result.missing else []
        diffs += [f"{k}: {v}, assumed {expected[k].words()}" for k, v in {**result.tolerated, **result.other}.items()]
        if result.extra:
            answered += f"; also sent (kept as they come): {', '.join(result.extra)}"
        if not result.differs:
            self.add(check, assumption, answered, OK)
            return result
        todo = []
        if result.tolerated:
            todo.append(f"The toolkit reads {', '.join(result.tolerated)} in this shape too: its frames are right.")
        if result.missing or result.other:
            todo.append(consequence or f"The columns of {', '.join([*result.missing, *result.other])} will be "
                                       "empty or wrong in the toolkit's frames: do not rely on them.")
        self.add(check, assumption, f"{answered} — {'; '.join(diffs)}", DIFFERS, " ".join([*todo, REPORT]))
        return result

    def envelope(self, check: str, assumption: str, body: Any, expected: str, *, copes: bool = False,
                 consequence: str = "") -> bool:
        """The row of a list's shape: ``expected`` is ``"array"`` or the key of an object holding the list.
        ``copes``: the client reads the other shape too. Returns whether it is as assumed."""
        good = isinstance(body, list) if expected == "array" else \
            isinstance(body, Mapping) and isinstance(body.get(expected), list)
        if good:
            self.add(check, assumption, shape_of(body), OK)
        else:
            todo = "The toolkit reads this shape too: nothing breaks. " if copes else \
                (consequence or "The toolkit cannot read this list: its frames of it will be empty or wrong. ")
            self.add(check, assumption, shape_of(body), DIFFERS, todo + REPORT)
        return good

    def unpaged(self, check: str, what: str, answer: Answer, body: Any = None) -> None:
        """The row of a list the toolkit reads in one answer: no paging header (``Link``, ``Next``,
        ``X-Total-Count`` …) and no paging field (``next``, ``page``, ``total`` …) in an object around it."""
        assumption = f"{what} comes whole in one answer: no paging header (Link, Next, X-Total-Count) or field"
        headers = [h for h in ("link", "next", "x-next", "x-total-count", "x-page", "x-next-page", "x-per-page")
                   if answer.header(h) is not None]
        keys = [k for k in ("next", "next_page", "nextPage", "page", "total", "count", "cursor", "has_more",
                            "hasMore") if isinstance(body, Mapping) and k in body]
        if not headers and not keys:
            self.add(check, assumption, "no paging header or field", OK)
            return
        found = ", ".join([*(f"header {h}" for h in headers), *(f"field {k}" for k in keys)])
        self.add(check, assumption, f"the answer pages: {found}", DIFFERS,
                 f"The toolkit reads only this first answer, so it may miss the rest of {what.lower()}. " + REPORT)

    def clock(self, answer: Answer | None, *, tolerance: float = 300.0, relies: str = "") -> None:
        """The row of the service's clock against this computer's, from the ``Date`` of ``answer``:
        ``tolerance`` seconds of skew are as assumed; ``relies`` says what in the toolkit depends on the
        clock (then a missing ``Date`` differs too)."""
        assumption = (f"{self.title}'s clock and this computer's agree within {_duration(tolerance)} (from the "
                      f"Date header of its answer)" + (f"; {relies}" if relies else ""))
        if answer is None:
            self.skipped("clock", assumption, "no answer to read the Date of")
            return
        date = answer.header("date")
        skew = _skew(date, answer.sent, answer.received)
        if skew is None:
            verdict = DIFFERS if relies else OK
            self.add("clock", assumption, "no readable Date header" + ("" if relies else ": nothing to compare"),
                     verdict, "" if verdict == OK else REPORT)
            return
        ahead = "ahead of" if skew > 0 else "behind"
        answered = "in step with this computer's (under a second apart)" if abs(skew) < 1 else \
            f"{_duration(skew)} {ahead} this computer's clock"
        if abs(skew) <= tolerance:
            self.add("clock", assumption, answered, OK)
        else:
            self.add("clock", assumption, answered, DIFFERS,
                     "Set this computer's clock right (automatic time / NTP); if it is right, the service's "
                     "clock is off: tell its support.")

    # -- the result ---------------------------------------------------------------------------------------
    async def run(self, rows: Awaitable[Any]) -> Any:
        """Await a service's rows (a coroutine that writes them here) and give the frame. Whatever the check
        meets that it did not foresee (an answer it cannot read) ends it as one ``failed`` row, never as an
        exception."""
        try:
            await rows
        except Exception as exc:  # noqa: BLE001 - the check reports, it does not raise
            self.failed("check", f"the check of {self.title} runs to its end", exc)
        return self.frame()

    def frame(self) -> Any:
        """The rows as a frame (:data:`SCHEMA`, ``attrs["kind"] == "records"``), with a summary line."""
        from .frames import frame

        counts = {v: sum(r.verdict == v for r in self.rows) for v in VERDICTS}
        summary = (f"{self.title}: {len(self.rows)} assumptions checked — {counts[OK]} ok, {counts[DIFFERS]} "
                   f"differ, {counts[FAILED]} failed" + "".join(f"; {n}" for n in self.notes))
        records = [{"service": self.service, **r.__dict__} for r in self.rows]
        return frame(records, SCHEMA, kind="records", service=self.service, summary=summary,
                     text=_TEXT_COLUMNS)


def _skew(date: str | None, sent: float, received: float) -> float | None:
    """Seconds the server's ``Date`` is ahead of this computer's clock (at the middle of the exchange;
    a ``Date`` has whole seconds, so under a second is no skew)."""
    if not date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(date.replace(" UTC", " GMT")).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    middle = (sent + received) / 2
    skew = when - middle
    return 0.0 if abs(skew) < 1.5 else skew


def _token_summary(exchange: Any) -> dict[str, Any]:
    """The shape of a token or login answer, without the token: status, header names, JSON field kinds,
    ``expires_in``, ``token_type``, whether a new refresh token came."""
    import json

    summary: dict[str, Any] = {"status": exchange.status,
                               "headers": {k.lower() for k, _ in exchange.response_headers}, "fields": {}}
    try:
        body = json.loads(exchange.response_body) if exchange.response_body else None
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        summary["fields"] = {str(k): describe(v) for k, v in body.items()}
        lifetime = body.get("expires_in")
        if isinstance(lifetime, str):
            try:
                lifetime = float(lifetime)
            except ValueError:
                lifetime = None
        summary["expires_in"] = lifetime if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) \
            else None
        kind = body.get("token_type")
        summary["token_type"] = kind if isinstance(kind, str) and len(kind) <= 20 else None
        summary["rotated"] = bool(body.get("refresh_token"))
    return summary


# -- entry points ---------------------------------------------------------------------------------------
def _options_of(client_class: Any) -> set[str]:
    import inspect

    method = getattr(client_class, "check", None)
    if method is None:
        return set()
    return {n for n, p in inspect.signature(method).parameters.items()
            if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


async def check_client(client: Any, **options: Any) -> Any:
    """The check of a service's async client: its module ``toolkit.<client.service>.check`` (imported by
    name, as the registry imports a service's package), its ``check(client, **options)``. What every
    client's ``check()`` method calls."""
    import importlib

    module = importlib.import_module(f"toolkit.{client.service}.check")
    return await module.check(client, **options)


def check(service: str, /, **arguments: Any) -> Any:
    """The live contract check of ``service``: connect as ``toolkit.<service>.connect(**arguments)`` does
    (explicit arguments, ``TOOLKIT_<SERVICE>_<FIELD>`` from the environment, ``.env`` or the keyring, an
    environment name, ``sandbox``), run ``client.check()`` and close the connection.

    A few read-only calls (the token or login, one small page of the main list, one item, the paging
    headers, the server's clock); nothing is written. Arguments the service's ``check()`` takes (e.g.
    Livingdocs' ``system_name`` and ``external_id``) go to it; the rest to ``connect()``.

    Returns a DataFrame, one row per assumption: ``service, check, assumption, answered, verdict, what_to_do``
    (``verdict``: ``ok``, ``differs``, ``failed``); ``df.summary`` counts them. A failing call is a
    ``failed`` row; a missing connection field raises :class:`~toolkit.ValidationError`, as ``connect()``
    does. See :mod:`toolkit.core.check`."""
    import importlib

    from .registry import spec

    svc = spec(service)
    wanted = _options_of(svc.client)
    options = {k: arguments.pop(k) for k in list(arguments) if k in wanted}
    client = importlib.import_module(f"toolkit.{service}").connect(**arguments)
    try:
        return client.check(**options)
    finally:
        client.close()


def exit_code(result: Any) -> int:
    """The command line's exit code of a check frame: 3 when a row failed, 1 when one differs, else 0."""
    verdicts = set(result["verdict"].dropna())
    return 3 if FAILED in verdicts else 1 if DIFFERS in verdicts else 0


def print_rows(result: Any, out: Any = None) -> None:
    """The rows as lines for a terminal: verdict, check, what was answered, and what to do when not ok."""
    import sys

    out = out or sys.stdout
    marks = {OK: "ok     ", DIFFERS: "DIFFERS", FAILED: "FAILED "}
    for row in result.itertuples(index=False):
        print(f"{marks.get(row.verdict, row.verdict)}  {row.check}: {row.answered}", file=out)
        if row.verdict != OK:
            print(f"         assumed: {row.assumption}", file=out)
            print(f"         what to do: {row.what_to_do}", file=out)
    print(result.attrs.get("summary", ""), file=out)


#: the exit codes of ``toolkit <service> check`` (with those of every verb: 2 usage, 130 Ctrl-C)
CHECK_EXIT_CODES = {0: "every assumption holds", 1: "something differs from what the toolkit assumes",
                    3: "a call failed, or an error stopped the check"}


def add_check_command(subparsers: Any, service: str, *, options: Sequence[tuple[str, str]] = ()) -> Any:
    """Add ``toolkit <service> check`` to a service's sub-commands: its connection flags (the same as every
    verb's, ``--environment sandbox`` included: :func:`toolkit.core.cli.add_connection`), ``--out``, and
    ``options`` (``(flag, help)`` pairs passed to the service's ``check()``). Exit codes
    :data:`CHECK_EXIT_CODES`."""
    from . import cli

    title = service_name(service)
    p = cli.add_verb(subparsers, "check", help=f"check what the toolkit assumes of {title} (read-only calls)",
                     description=f"A live contract check of {title}: a few read-only calls (token or login, one "
                                 "small page of the main list, one item, the paging headers, the server's clock), "
                                 "one line per assumption. Nothing is written.",
                     codes=CHECK_EXIT_CODES, func=lambda args: _cmd_check(service, args, [f for f, _ in options]))
    cli.add_connection(p, service)
    for flag, text in options:
        p.add_argument(flag, default=None, help=text)
    p.add_argument("--out", help="write the rows to this CSV file (no secret and no CPR number in it)")
    return p


def _cmd_check(service: str, args: Any, flags: Sequence[str]) -> int:
    from . import cli

    options = {f.lstrip("-").replace("-", "_"): getattr(args, f.lstrip("-").replace("-", "_")) for f in flags}
    with cli.connect(service, args) as client:
        result = client.check(**{k: v for k, v in options.items() if v is not None})
    if args.out:
        result.to_csv(args.out, index=False)
    print_rows(result)
    return exit_code(result)
