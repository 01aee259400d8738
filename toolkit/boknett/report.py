"""Parse Boknett's object report and error XML: fast, and safe against XML attacks. No network here.

* :func:`parse_objects` turns ``<OBJECTS><OBJECT>…</OBJECT></OBJECTS>`` into a DataFrame with the columns
  of :data:`OBJECT_SCHEMA`, every value text exactly as served (leading zeros kept, the ``REFERENCE`` link
  untouched in ``url``, surrounding whitespace stripped); an element that is missing, empty (``<ISBN13/>``) or blank is ``<NA>``
  alike (Bokbasen's SDK names such an object's file by its EAN); an empty ``<OBJECTS/>`` keeps its columns.
* Speed: lxml's pull parser filtered on ``OBJECT``, fed about 128 KB at a time, each piece ending right after
  an ``</OBJECT>`` where there is one, so that a piece's objects have all ended when it is read. The objects
  of a piece are read as a batch when one XPath count says each has exactly the six fields, one of each
  (texts taken per field name in document order, then the batch deleted from the tree); any other shape
  (an unknown, missing or repeated element, another namespace, a piece that ends inside an object, as in
  UTF-16) is read object by object as before, with the same result. Texts are stripped and blank → ``<NA>``
  after the parse, by :func:`toolkit.core.frames.text_frame`: with pandas' Arrow-backed ``string`` dtype as
  Arrow compute over whole columns, else in Python.
  ``benchmarks/boknett_report.py`` compares it with ``pandas.read_xml`` and a bare lxml parse.
* Safety: lxml never expands entities, never loads a DTD, never touches the network, and refuses huge
  trees; a document that declares entities (billion laughs, an external entity naming a local file) or
  names an external DTD is refused with :class:`~toolkit.core.errors.ValidationError` before any value is
  read. Malformed XML is a ``ValidationError`` naming Boknett.
"""

from __future__ import annotations

import io
from functools import lru_cache
from operator import attrgetter
from typing import Any

from ..core.errors import ValidationError
from ..core.frames import text_frame

__all__ = ["parse_columns", "OBJECT_SCHEMA", "TYPE_NAMES", "FIELDS", "parse_objects", "parse_errors", "ENTITY_MESSAGE"]

OBJECT_SCHEMA = {
    "isbn13": "string", "ean": "string", "fssn": "string", "vareeier_kode": "string",
    "type": "string", "type_name": "string",
    # the vocabulary (docs/vocabulary.md): url is the report's REFERENCE (the short-lived download link)
    "url": "string",
}
TYPE_NAMES = {"ly": "audio file", "ol": "small cover", "os": "large cover", "org": "original cover"}
#: element name in the report → column
FIELDS = {"ISBN13": "isbn13", "EAN": "ean", "FSSN": "fssn", "VAREEIER_KODE": "vareeier_kode", "TYPE": "type",
          "REFERENCE": "url"}
ENTITY_MESSAGE = "the report contained entity declarations and was refused"
_EXTERNAL_DTD_MESSAGE = "the report referred to an external DTD and was refused"
_HINT = ("Boknett never sends these; the answer did not come from the real service or was tampered with. "
         "Check the base URL, then pull again.")
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
         (b"\xfe\xff", "utf-16-be"))


def _refuse_entities(data: bytes) -> None:
    """Refuse entity declarations by a byte scan (before lxml reads anything)."""
    text: Any = data
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            break
    needle = "<!ENTITY" if isinstance(text, str) else b"<!ENTITY"
    # a one-byte search first (memchr: a report of 28 MB in under a millisecond; most hold no "!" at all)
    if (isinstance(text, str) or b"!" in text) and needle in text:
        raise ValidationError(ENTITY_MESSAGE, service="boknett", hint=_HINT)


def _check_docinfo(tree: Any) -> None:
    """Second line of defence (any encoding): lxml's view of the DOCTYPE."""
    docinfo = tree.docinfo
    dtd = docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise ValidationError(ENTITY_MESSAGE, service="boknett", hint=_HINT)
    if docinfo.system_url or docinfo.public_id:
        raise ValidationError(_EXTERNAL_DTD_MESSAGE, service="boknett", hint=_HINT)


_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                       dtd_validation=False, remove_blank_text=True, remove_comments=True, remove_pis=True)
_EXPECTED = list(FIELDS)  # the documented order of an object's elements
_SLOT = {tag: k for k, tag in enumerate(FIELDS)}
_TEXT = attrgetter("text")


def _iterparse(data: bytes, tag: str) -> Any:
    from lxml import etree

    return etree.iterparse(io.BytesIO(data), events=("end",), tag=tag, **_PARSER_OPTIONS)


def _malformed(exc: Exception, what: str) -> ValidationError:
    if "amplification" in str(exc):  # libxml2's own guard against entity bombs
        return ValidationError(ENTITY_MESSAGE, service="boknett", hint=_HINT)
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return ValidationError(f"the {what} from Boknett is not well-formed XML ({detail})", service="boknett",
                           hint="Pull it again; if it keeps failing, contact Bokbasen's support.")


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[1] if tag.startswith("{") else tag


def parse_objects(data: bytes) -> Any:
    """The object report as a DataFrame (columns :data:`OBJECT_SCHEMA`, all text)."""
    return text_frame(_raw_columns(data), columns=list(OBJECT_SCHEMA), codes={"type_name": ("type", TYPE_NAMES)})


def parse_columns(data: bytes) -> dict[str, list[Any]]:
    """The object report as plain column lists (``str`` or ``None``), in :data:`OBJECT_SCHEMA` order — what
    a streamed pull writes without a DataFrame (:func:`parse_objects` gives the same values as a frame)."""
    return _cleaned(_raw_columns(data))


def _cleaned(raw: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Surrounding whitespace stripped, blank → None, and ``type_name``; in :data:`OBJECT_SCHEMA` order."""
    columns = {name: [(text.strip() or None) if text is not None else None for text in values]
               for name, values in raw.items()}
    names = TYPE_NAMES
    columns["type_name"] = [names.get(t) if t is not None else None for t in columns["type"]]
    return {name: columns[name] for name in OBJECT_SCHEMA}


# -- the parse: batches of regular objects, anything else object by object ---------------------------------
_CHUNK = 1 << 17  # bytes fed at a time: about 450 objects (16 KB pieces cost ~10 % more per object)
_END_TAG = b"</OBJECT>"


def _pieces(data: bytes) -> Any:
    """``data`` in pieces of at most ``_CHUNK`` bytes, each ending right after an ``</OBJECT>`` when the
    window holds one (otherwise, e.g. in UTF-16, plain ``_CHUNK`` pieces: then every object is read alone)."""
    start, end = 0, len(data)
    while start < end:
        stop = data.rfind(_END_TAG, start, start + _CHUNK)
        stop = start + _CHUNK if stop < 0 else stop + len(_END_TAG)
        yield data[start:stop]
        start = stop


@lru_cache(maxsize=1)
def _regular() -> Any:
    """One XPath over a batch's parent: true when its ``OBJECT`` children have ``$m`` = 6 × (children)
    child elements and each has at least one of each of the six fields — so every child is an ``OBJECT``
    with exactly the six, one of each (in any order). No per-object predicate beyond ``[1]`` (cheap)."""
    from lxml import etree

    each = " + ".join(f"count(OBJECT/{tag}[1])" for tag in FIELDS)
    return etree.XPath(f"count(OBJECT/*) = $m and {each} = $m")


def _read_batch(parent: Any, count: int, raw: list[list[Any]]) -> bool:
    """The texts of ``parent``'s ``count`` children (all ended) when they are regular objects, appended per
    field; False (nothing appended) for any other shape."""
    if not _regular()(parent, m=len(FIELDS) * count):
        return False
    texts = []
    for tag in FIELDS:
        # every element of that name below parent: exactly one per object unless one is nested in a field
        values = list(map(_TEXT, parent.iterdescendants(tag)))
        if len(values) != count:
            return False
        texts.append(values)
    for column, values in zip(raw, texts):
        column.extend(values)
    return True


def _read_one(element: Any, appends: list[Any]) -> None:
    """One object of any shape (fields by local name in any order, the last of a repeated one wins)."""
    kids = element[:]
    if [kid.tag for kid in kids] == _EXPECTED:
        for append, kid in zip(appends, kids):
            append(kid.text)
        return
    row: list[Any] = [None] * len(appends)
    for kid in kids:
        k = _SLOT.get(_local(kid.tag))
        if k is not None:
            row[k] = kid.text
    for append, value in zip(appends, row):
        append(value)


def _read_each(events: list[Any], appends: list[Any]) -> None:
    """Each event's object alone, then deleted with whatever came before it (the list is emptied as it goes:
    no proxy of a deleted element stays). The object itself goes too — it has ended — so that the next
    batch starts with no leftover and can be read as a batch again."""
    events.reverse()
    while events:
        element = events.pop()[1]
        _read_one(element, appends)
        element.clear(keep_tail=False)
        parent = element.getparent()
        if parent is not None:
            while element.getprevious() is not None:
                del parent[0]
            parent.remove(element)


def _raw_columns(data: bytes) -> dict[str, list[Any]]:
    """The six fields' texts as served (not yet stripped), per column, after every check of the document."""
    from lxml import etree

    if isinstance(data, str):
        data = data.encode("utf-8")
    _refuse_entities(data)
    raw: list[list[Any]] = [[] for _ in FIELDS]
    appends = [values.append for values in raw]
    parser = etree.XMLPullParser(events=("end",), tag="{*}OBJECT", **_PARSER_OPTIONS)
    checked = False
    try:
        for piece in _pieces(data):
            parser.feed(piece)
            events = list(parser.read_events())
            if not events:
                continue
            last = events[-1][1]
            if not checked:
                _check_docinfo(last.getroottree())
                checked = True
            parent = last.getparent()
            # the batch path only when parent's children have all ended (its last child is the last event)
            if parent is not None and parent[-1] is last and _read_batch(parent, len(parent), raw):
                del events, last  # no proxy of a deleted element alive: deleting is much slower with them
                del parent[:]
            else:
                del last
                _read_each(events, appends)
        root = parser.close()
        _read_each(list(parser.read_events()), appends)
    except etree.XMLSyntaxError as exc:
        raise _malformed(exc, "report") from None
    if root is None:
        raise ValidationError("the report from Boknett is empty (no XML document)", service="boknett",
                              hint="Pull it again; if it keeps failing, contact Bokbasen's support.")
    _check_docinfo(root.getroottree())
    if _local(root.tag) != "OBJECTS":
        raise ValidationError(f"the answer from Boknett is not an object report (its root element is "
                              f"<{_local(root.tag)[:40]}>, not <OBJECTS>)", service="boknett",
                              hint="Check the base URL and the request; pull again.")
    return dict(zip(FIELDS.values(), raw))


def parse_errors(data: bytes) -> list[tuple[str, str]]:
    """``[(code, message), …]`` of Boknett's ``<errors><error><code/><message/></error></errors>``."""
    from lxml import etree

    if isinstance(data, str):
        data = data.encode("utf-8")
    _refuse_entities(data)
    found: list[tuple[str, str]] = []
    context = _iterparse(data, "{*}error")
    try:
        for _, element in context:
            code = message = ""
            for child in element:
                name = _local(child.tag)
                if name == "code":
                    code = (child.text or "").strip()
                elif name == "message":
                    message = (child.text or "").strip()
            found.append((code, message))
            element.clear(keep_tail=False)
        root = context.root
    except etree.XMLSyntaxError as exc:
        raise _malformed(exc, "error answer") from None
    if root is not None:
        _check_docinfo(root.getroottree())
    return found
